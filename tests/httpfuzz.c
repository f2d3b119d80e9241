/* tests/httpfuzz.c - the bounded random-request run shared by the HTTP API's fuzz suites (see
 * tests/httpfuzz.h): requests built from the route table of docs/http-api.md (every route, every
 * method, HEAD, OPTIONS and unknown ones), mutated in their path segments and query values, their
 * headers (huge, duplicated, bad Content-Length, chunked bodies good and bad, Authorization of
 * every shape: missing, truncated, mutated, expired, of a stranger's key, of another domain),
 * their bodies (manifests, NDJSON records, policy sets, grants, access requests, token requests,
 * trust object files, rotations: valid, then mutated; a suite may make some kinds itself), bytes
 * that are not HTTP at all, requests cut off half way, and pairs of requests sent at once on one
 * keep-alive connection.
 *
 * What it holds the nodes to (the house rule: garbage is refused and counted, never trusted,
 * never a crash, nothing stored lost):
 * - neither agent exits (the harness's child: waitpid after every request);
 * - every answer to a well-framed request is a well-formed HTTP response (status line, framing by
 *   Content-Length or chunks), its status one the route documents (404/405 for a path or method
 *   no route has), no 5xx but 503 (507 only where documented), and every 4xx the API's JSON error
 *   shape with a detail; JSON bodies parse, NDJSON record lines parse;
 * - afterwards every product and record stored before reads the same (on the owner and through
 *   the relay), /v1/status answers, and the refusal counters moved at least by the refusals seen.
 *
 * A share of the requests (3 in 10 of those built from a route) are clean: the route's method,
 * the credential it takes at that node and a body it may accept, so the run also goes past the
 * checks (publishes, appends, grants, tokens, policy sets); writes that may succeed go to
 * scratch products only, never to the ones compared afterwards.
 *
 * Answers libmicrohttpd gives itself (a request line or header it cannot read, a URI or head past
 * its 32 KiB) are its HTML pages or a closed connection (docs/http-api.md, Connections): taken
 * only for requests whose framing or size asks for them. Its 0.9.75 writes the head of its
 * answer to a Content-Length it cannot read twice: tolerated there, counted in the summary line.
 *
 * Bounded and deterministic in what it sends: a fixed seed (TRIB_FUZZ_SEED overrides it,
 * TRIB_FUZZ_N the number of requests), printed with the request and the answer on any failure;
 * TRIB_FUZZ_VERBOSE=1 prints the answers by route, TRIB_FUZZ_TRACE=1 every request and answer. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include "gossip/clock.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "tests/harness.h"
#include "tests/httpfuzz.h"

#define ANSWER_MS 15000         /* a well-framed request is answered within this, or it is a failure */

h_node_t hf_a, hf_b;
static const hf_mode_t *mode;   /* the suite's, for the run */

/* ------------------------------------------------------------------ random numbers */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

size_t hf_rn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }
int hf_chance(int pct) { return (int)hf_rn(100) < pct; }

/* ------------------------------------------------------------------ byte buffers */


void hf_put(hf_buf_t *b, const void *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hf_str(hf_buf_t *b, const char *s) { hf_put(b, s, strlen(s)); }

void hf_fmt(hf_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    hf_put(b, s, (size_t)n);
    free(s);
}

void hf_free(hf_buf_t *b)
{
    free(b->p);
    *b = (hf_buf_t){0};
}

/* s hf_shown safely in a failure message: printable ASCII as is, the rest escaped, cut at max. */
const char *hf_shown(const char *s, size_t len, size_t max)
{
    static char out[4][2048];
    static int k;
    char *o = out[k++ % 4];
    size_t j = 0;
    for (size_t i = 0; i < len && j + 8 < sizeof out[0]; i++) {
        if (i == max) {
            j += (size_t)snprintf(o + j, sizeof out[0] - j, "...(%zu bytes)", len);
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            o[j++] = (char)ch;
        else
            j += (size_t)snprintf(o + j, sizeof out[0] - j, "\\x%02x", ch);
    }
    o[j] = '\0';
    return o;
}

/* ------------------------------------------------------------------ the route table (docs/http-api.md) */

enum { Q_NONE, Q_PRODUCTS, Q_RECORDS, Q_STREAM, Q_DIFF, Q_CHANGES, Q_STATE, Q_LIMIT, Q_DOMAIN, Q_REVIVE };


#define PRODUCT "/v1/products/{d}/{n}"
static const hf_route_t routes[] = {
    {"GET", "/v1/status", "status", "200", B_NONE, Q_NONE, 0, 0},
    {"GET", "/v1/members", "members", "200", B_NONE, Q_NONE, 0, 0},
    {"GET", "/v1/products", "products", "200 400", B_NONE, Q_PRODUCTS, 0, 0},
    {"GET", PRODUCT, "product_get", "200 400 404", B_NONE, Q_NONE, 0, 0},
    {"PUT", PRODUCT, "product_put", "200 201 400 401 403 409 410 413 422 503 507", B_MANIFEST, Q_REVIVE, 0, 0},
    {"POST", PRODUCT "/check", "check", "200 400 403 404 413 507", B_MANIFEST, Q_REVIVE, 0, 0},
    {"GET", PRODUCT "/history", "history", "200 400 404", B_NONE, Q_NONE, 0, 0},
    {"GET", PRODUCT "/diff", "diff", "200 400 404", B_NONE, Q_DIFF, 0, 0},
    {"GET", "/v1/catalog/changes", "changes", "200 400", B_NONE, Q_CHANGES, 1, 0},
    {"DELETE", PRODUCT, "product_delete", "200 400 401 403 404 409 503 507", B_NONE, Q_NONE, 0, 0},
    {"POST", PRODUCT "/records", "records_post", "201 400 401 403 404 410 413 503 507", B_RECORDS, Q_NONE, 0, 0},
    {"GET", PRODUCT "/records", "records_get", "200 307 400 401 403 404 503", B_NONE, Q_RECORDS, 0, 0},
    {"GET", PRODUCT "/stream", "stream", "200 400 401 403 404 410 503", B_NONE, Q_STREAM, 1, 0},
    {"GET", "/metrics", "metrics", "200", B_NONE, Q_NONE, 0, 0},
    {"GET", "/v1/whoami", "whoami", "200 401", B_NONE, Q_NONE, 0, 0},
    {"POST", "/v1/tokens", "tokens", "201 400 401 403 413", B_TOKEN, Q_NONE, 0, 0},
    {"POST", "/v1/tokens/revoke", "tokens_revoke", "200 400 401 403 404 409 413", B_REVOKE, Q_NONE, 0, 0},
    {"POST", "/v1/access/requests", "access_request", "200 201 400 401 403 404 409 413 503", B_ACCESS, Q_NONE, 0, 1},
    {"GET", "/v1/access/requests", "access_list", "200 400 401 403", B_NONE, Q_STATE, 0, 1},
    {"POST", "/v1/access/requests/{id}/grant", "access_grant", "200 400 401 403 404 409 413 503", B_DAYS, Q_NONE, 0, 1},
    {"POST", "/v1/access/requests/{id}/deny", "access_deny", "200 400 401 403 404 409 413 503", B_REASON, Q_NONE, 0, 1},
    {"POST", "/v1/access/grants/{id}/revoke", "grant_revoke", "200 400 401 403 404 409 413 503", B_REASON, Q_NONE, 0,
     1},
    {"GET", "/v1/access/mine", "access_mine", "200 401 403", B_NONE, Q_NONE, 0, 1},
    {"GET", "/v1/audit", "audit", "200 400 401 403", B_NONE, Q_LIMIT, 0, 1},
    {"POST", "/v1/policy", "policy_post", "200 400 401 403 409 413 422 503", B_POLICY, Q_NONE, 0, 0},
    {"GET", "/v1/policy", "policy_get", "200", B_NONE, Q_NONE, 0, 0},
    {"GET", "/v1/compliance", "compliance", "200 400", B_NONE, Q_DOMAIN, 0, 0},
    {"GET", "/v1/federation", "federation", "200 503", B_NONE, Q_NONE, 0, 0},
    {"POST", "/v1/federation/objects", "federation_objects", "200 201 400 403 409 413 422 429 503 507", B_TRUST,
     Q_NONE, 0, 0},
    {"POST", "/v1/node/key/rotate", "key_rotate", "200 202 400 401 403 409 413", B_ROTATE, Q_NONE, 0, 0},
    /* the web UI's files: 404 for a path the row matches but no file has (a trailing '/') */
    {"GET", "/", "web", "200 304 404", B_NONE, Q_NONE, 0, 0},
    {"GET", "/index.html", "web", "200 304 404", B_NONE, Q_NONE, 0, 0},
    {"GET", "/app.js", "web", "200 304 404", B_NONE, Q_NONE, 0, 0},
    {"GET", "/app.css", "web", "200 304 404", B_NONE, Q_NONE, 0, 0},
    {"GET", "/favicon.png", "web", "200 304 404", B_NONE, Q_NONE, 0, 0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static int status_listed(const char *list, long st)
{
    char s[8];
    snprintf(s, sizeof s, "%ld", st);
    for (const char *p = list; (p = strstr(p, s)); p += 3)
        if ((p == list || p[-1] == ' ') && (p[3] == ' ' || p[3] == '\0'))
            return 1;
    return 0;
}

/* The path as libmicrohttpd hands it to the node: %XX decoded, anything else as sent. */
static void unescape(const char *in, size_t len, hf_buf_t *out)
{
    for (size_t i = 0; i < len; i++) {
        static const char hex[] = "0123456789abcdef";
        if (in[i] == '%' && i + 2 < len && strchr(hex, tolower((unsigned char)in[i + 1])) && in[i + 1] &&
            strchr(hex, tolower((unsigned char)in[i + 2])) && in[i + 2]) {
            char h[3] = {in[i + 1], in[i + 2], 0};
            char ch = (char)strtol(h, NULL, 16);
            hf_put(out, &ch, 1);
            i += 2;
        } else {
            hf_put(out, in + i, 1);
        }
    }
}

/* Whether path (decoded) matches pattern: {x} one non-empty segment; a trailing '/' is no match. */
static int matches(const char *pattern, const char *path)
{
    const char *p = pattern, *u = path;
    while (*p) {
        if (*p == '{') {
            size_t ulen = strcspn(u, "/");
            if (!ulen)
                return 0;
            p = strchr(p, '}') + 1;
            u += ulen;
            continue;
        }
        if (*p++ != *u++)
            return 0;
    }
    return !*u;
}

/* The route a request is for, from its method and decoded path: the row, or NULL with *known
 * when the path is some row's under another method (a 405). HEAD is GET's but on the reads that
 * stream records and the change feed. */
static const hf_route_t *route_of(const char *method, const char *path, int *known)
{
    *known = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!matches(routes[i].pattern, path))
            continue;
        *known = 1;
        int head_ok = !strcmp(routes[i].method, "GET") && strcmp(routes[i].name, "records_get") &&
                      strcmp(routes[i].name, "stream") && strcmp(routes[i].name, "changes");
        if (!strcmp(method, routes[i].method) || (!strcmp(method, "HEAD") && head_ok))
            return &routes[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------ tokens */

char *hf_tokens[T_COUNT];
const char *hf_token_names[T_COUNT] = {"none", "admin@payments", "writer@payments", "alice@payments",
                                       "sam@payments(pub only)", "gina@growth", "admin@growth", "expired@payments",
                                       "stranger key for payments", "stranger key for nowhere", "extra 1",
                                       "extra 2", "extra 3"};

static char *issue(const identity_t *id, const char *domain, const char *subject, token_kind_t kind,
                   const char *product, int64_t from_ms, int64_t to_ms)
{
    token_spec_t sp = {.subject = subject, .kind = kind, .product = product, .issued_ms = from_ms,
                       .expires_ms = to_ms};
    char *t = NULL, err[256];
    cr_assert_eq(token_issue(id, domain, &sp, &t, err, sizeof err), 0, "%s", err);
    return t;
}

static void node_key(const h_node_t *n, identity_t *id)
{
    char path[400], err[256];
    const char *data = n->dir;   /* --data among the agent's arguments wins, as it does for the agent */
    for (int k = 0; k + 1 < n->nextra; k++)
        if (!strcmp(n->extra[k], "--data"))
            data = n->extra[k + 1];
    snprintf(path, sizeof path, "%s/identity.key", data);
    cr_assert_eq(identity_load_file(path, id, err, sizeof err), 0, "%s", err);
}

void hf_make_tokens(void)
{
    identity_t a, b, stranger;
    node_key(&hf_a, &a);
    node_key(&hf_b, &b);
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/stranger.key", hf_a.dir);   /* the harness's temp dir */
    cr_assert_eq(identity_create_file(path, &stranger, err, sizeof err), 0, "%s", err);
    int64_t now = clock_wall_ms(), hour = 3600000;
    hf_tokens[T_NONE] = NULL;
    hf_tokens[T_ADMIN_A] = strdup(hf_a.token);
    hf_tokens[T_WRITER_A] = issue(&a, "payments", "writer@payments", TOKEN_KIND_WRITE, "payments/*", now, now + hour);
    hf_tokens[T_USER_A] = issue(&a, "payments", "alice@payments", TOKEN_KIND_READ, NULL, now, now + hour);
    hf_tokens[T_SCOPED_A] = issue(&a, "payments", "sam@payments", TOKEN_KIND_READ, "payments/pub", now, now + hour);
    hf_tokens[T_USER_B] = issue(&b, "growth", "gina@growth", TOKEN_KIND_READ, NULL, now, now + hour);
    hf_tokens[T_ADMIN_B] = strdup(hf_b.token);
    hf_tokens[T_EXPIRED_A] = issue(&a, "payments", "old@payments", TOKEN_KIND_ADMIN, NULL, now - 3 * hour, now - 2 * hour);
    hf_tokens[T_STRANGER] = issue(&stranger, "payments", "admin@payments", TOKEN_KIND_ADMIN, NULL, now, now + hour);
    hf_tokens[T_NOWHERE] = issue(&stranger, "nowhere", "eve@nowhere", TOKEN_KIND_ADMIN, NULL, now, now + hour);
    identity_wipe(&a);
    identity_wipe(&b);
    identity_wipe(&stranger);
}

/* A token a write may succeed with (at its own domain's node): its writes go to scratch products only. */
static int may_write(int t) { return t == T_ADMIN_A || t == T_WRITER_A || t == T_ADMIN_B; }

/* ------------------------------------------------------------------ the products stored before */

static const char *const protected_names[] = {"pub", "ledger", "settled", "deal", "old"};
static const char *const scratch_names[] = {"fz-a", "fz-b", "fz-c", "scratch", "fz-d"};
static char request_id[64];     /* a real access request (gina@growth for payments/deal), pending at A */

static const char *manifest(char *out, size_t cap, const char *domain, const char *name, const char *version,
                            const char *cls, int extra_field)
{
    snprintf(out, cap,
             "{\"name\":\"%s\",\"domain\":\"%s\",\"version\":\"%s\",\"status\":\"active\",\"title\":\"Fuzz %s\","
             "\"classification\":\"%s\",\"tags\":[\"fuzz\",\"cards\"],"
             "\"description\":{\"purpose\":\"a product for the random-request test\"},"
             "\"owners\":{\"business\":\"maria@example.com\",\"technical\":\"team@example.com\"},"
             "\"schema\":[{\"name\":\"id\",\"logicalType\":\"string\",\"required\":true},"
             "{\"name\":\"amount\",\"logicalType\":\"integer\"},{\"name\":\"note\",\"logicalType\":\"string\"}%s]}",
             name, domain, version, name, cls, extra_field ? ",{\"name\":\"extra\",\"logicalType\":\"string\"}" : "");
    return out;
}

static void must(const char *method, h_node_t *n, const char *path, const char *ctype, const char *body, long want1,
                 long want2)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http(method, url, ctype, body, body ? strlen(body) : 0, &r), 0, "%s %s: no answer", method, url);
    cr_assert(r.status == want1 || r.status == want2, "%s %s: %ld %s", method, url, r.status, r.body);
    h_resp_free(&r);
}

static void publish(h_node_t *n, const char *name, const char *version, const char *cls, int extra)
{
    char m[2048], path[256];
    manifest(m, sizeof m, n->domain, name, version, cls, extra);
    snprintf(path, sizeof path, "/v1/products/%s/%s", n->domain, name);
    must("PUT", n, path, "application/json", m, 201, 200);
    char rec[2048] = "";
    for (int i = 1; i <= 6; i++)
        snprintf(rec + strlen(rec), sizeof rec - strlen(rec), "{\"id\":\"%s-%d\",\"amount\":%d,\"note\":\"n\\u00e9 %d\"}\n",
                 name, i, i * 100, i);
    snprintf(path, sizeof path, "/v1/products/%s/%s/records", n->domain, name);
    must("POST", n, path, "application/x-ndjson", rec, 201, 201);
}

/* What a product reads as: its manifest, version, status, catalog seq, signer and record count
 * (GET with the owner's admin token on the owner) and its records (on the owner and through the
 * other node). */
typedef struct {
    char *meta, *records, *relayed;
} snapshot_t;
static snapshot_t before[6];

static char *get_body(h_node_t *n, const char *path, const char *token, long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    int rc = h_http_token("GET", url, NULL, NULL, 0, token, &r);
    *status = rc == 0 ? r.status : 0;
    return r.body;
}

static void snapshot(const char *id, h_node_t *owner, h_node_t *relay, const char *owner_token, snapshot_t *s)
{
    char path[256];
    long st;
    snprintf(path, sizeof path, "/v1/products/%s", id);
    char *body = get_body(owner, path, owner_token, &st);
    cr_assert_eq(st, 200, "GET %s: %ld %s", path, st, body);
    json_t *j = json_loads(body, 0, NULL), *keep = json_object();
    free(body);
    static const char *const fields[] = {"manifest", "version", "status", "catalog_seq", "signer", "records",
                                         "classification", "owners"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (json_object_get(j, fields[i]))
            json_object_set(keep, fields[i], json_object_get(j, fields[i]));
    cr_assert(json_object_get(keep, "manifest") && json_object_get(keep, "records"), "GET %s: %s", path,
              json_dumps(j, 0));
    s->meta = json_dumps(keep, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    json_decref(keep);
    snprintf(path, sizeof path, "/v1/products/%s/records", id);
    s->records = get_body(owner, path, owner_token, &st);
    cr_assert_eq(st, 200, "GET %s: %ld %s", path, st, s->records);
    s->relayed = get_body(relay, path, owner_token, &st);
    cr_assert_eq(st, 200, "GET %s through %s: %ld %s", path, relay->domain, st, s->relayed);
}

static void snapshot_all(snapshot_t *out)
{
    char id[64];
    for (size_t i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "payments/%s", protected_names[i]);
        snapshot(id, &hf_a, &hf_b, hf_a.token, &out[i]);
    }
    snapshot("growth/exp", &hf_b, &hf_a, hf_b.token, &out[5]);
}

/* Both agents' products and records, a pending access request. */
void hf_setup_products(void)
{
    publish(&hf_a, "pub", "1.0.0", "public", 0);
    publish(&hf_a, "ledger", "1.0.0", "internal", 0);
    char m[2048];
    manifest(m, sizeof m, "payments", "ledger", "1.1.0", "internal", 1);   /* two versions: history, diff */
    must("PUT", &hf_a, "/v1/products/payments/ledger", "application/json", m, 200, 201);
    publish(&hf_a, "settled", "1.0.0", "confidential", 0);
    publish(&hf_a, "deal", "1.0.0", "restricted", 0);
    publish(&hf_a, "old", "1.0.0", "public", 0);
    must("DELETE", &hf_a, "/v1/products/payments/old", NULL, NULL, 200, 200);
    publish(&hf_b, "exp", "1.0.0", "internal", 0);
    for (int i = 0; i < 2; i++) {   /* scratch products, where the run's writes may succeed */
        publish(&hf_a, scratch_names[i], "1.0.0", i ? "internal" : "public", 0);
        publish(&hf_b, scratch_names[i], "1.0.0", i ? "confidential" : "public", 0);
    }
    cr_assert(h_wait_status(hf_b.url, "/v1/products/payments/old", NULL, 200, 20000), "growth never saw payments' products");
    cr_assert(h_wait_status(hf_a.url, "/v1/products/growth/exp", NULL, 200, 20000), "payments never saw growth/exp");
    /* a pending request the fuzzed decisions can name */
    long st = 0;
    json_t *j = h_call("POST", hf_b.url, "/v1/access/requests", hf_tokens[T_USER_B],
                       "{\"product\":\"payments/deal\",\"purpose\":\"fuzz\",\"days\":3}", &st);
    cr_assert_eq(st, 201, "access request: %ld", st);
    snprintf(request_id, sizeof request_id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
}

/* ------------------------------------------------------------------ building a request */

static const char *const kind_names[K_KINDS] = {"route", "framing", "raw", "half"};


/* A mutation, with probability pct, of a request that is not one of the clean ones. */
#define MUT(pct) (!q->clean && hf_chance(pct))

void hf_note(hf_req_t *q, const char *what)
{
    size_t l = strlen(q->mutations);
    snprintf(q->mutations + l, sizeof q->mutations - l, "%s%s", l ? "," : "", what);
}

static const char *const bad_bytes[] = {"%ff", "%fe%ff", "%c0%af", "%ed%a0%80", "%c3%28", "%f8%88%80%80%80",
                                        "%e2%82", "%2f", "%2e%2e", "%25", "%", "%zz", "%41", "%20", "+", "%e2%82%ac",
                                        "%00", "%0a", "%7f", "%1b"};

/* Random characters, percent-encoded or not, some of them never valid UTF-8. */
static void random_segment(hf_buf_t *b, size_t max)
{
    size_t n = 1 + hf_rn(max);
    for (size_t i = 0; i < n; i++) {
        switch (hf_rn(6)) {
        case 0: hf_str(b, HF_PICK(bad_bytes)); break;
        case 1: hf_fmt(b, "%%%02X", (unsigned)hf_rn(256)); break;
        case 2: hf_fmt(b, "%c", "abcxyz019-_.~"[hf_rn(13)]); break;
        default: hf_fmt(b, "%c", 'a' + (int)hf_rn(26)); break;
        }
    }
}

static void product_segments(hf_req_t *q, hf_buf_t *b, const char *rest)
{
    const char *d, *name;
    int r = (int)hf_rn(100);
    d = r < 65 ? "payments" : r < 85 ? "growth" : r < 92 ? "nowhere" : NULL;
    if (q->clean && r < 90)
        d = q->n->domain;
    int dry = !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD") ||
              (!strcmp(q->method, "POST") && !strcmp(rest, "/check"));
    if (may_write(q->token) && !dry)   /* a write that may succeed never touches what the check compares */
        name = q->clean && !strcmp(q->method, "DELETE") ? scratch_names[2 + hf_rn(3)]   /* fz-a, fz-b stay */
             : scratch_names[hf_rn(q->clean ? 2 : 5)];
    else if (q->clean && !strcmp(rest, "/diff") && hf_chance(60))
        name = "ledger";   /* the one with two versions */
    else if ((r = (int)hf_rn(100)) < 60)
        name = HF_PICK(protected_names);
    else if (r < 70)
        name = "exp";
    else if (r < 85)
        name = HF_PICK(scratch_names);
    else
        name = NULL;
    hf_str(b, "/v1/products/");
    if (d)
        hf_str(b, d);
    else
        random_segment(b, 80);
    hf_str(b, "/");
    if (name)
        hf_str(b, name);
    else if (hf_chance(50))
        random_segment(b, 70);
    else
        for (size_t i = 0, k = 60 + hf_rn(10); i < k; i++)   /* at and over the 63 characters of a name */
            hf_str(b, "n");
    hf_str(b, rest);
}

static const char *const num_values[] = {"", "0", "1", "2", "5", "-1", "18446744073709551615", "18446744073709551616",
                                         "99999999999999999999999", "abc", "1e3", "0x10", "%091", "%09-1", "+1",
                                         " 1", "1%00", "%ff", "4294967296", "10000001", "1.5"};

static void param(hf_buf_t *b, int *first, const char *k, const char *v)
{
    hf_str(b, *first ? "?" : "&");
    *first = 0;
    hf_str(b, k);
    if (v) {
        hf_str(b, "=");
        hf_str(b, v);
    }
}

static void query(hf_req_t *q, hf_buf_t *b)
{
    int first = 1;
    const hf_route_t *r = q->aimed;
    static const char *const versions[] = {"1.0.0", "1.1.0", "2.0.0", "9.9.9", "x", "", "1.0", "%ff"};
    switch (r->query) {
    case Q_PRODUCTS: {
        static const char *const keys[] = {"q", "domain", "tag", "owner", "status", "classification", "compliance",
                                           "limit", "offset", "classificaton", "sort"};
        static const char *const vals[] = {"settled", "payments", "fuzz", "maria@example.com", "active", "gone",
                                           "restricted", "secret", "compliant", "5", "0", "-1", "1001",
                                           "18446744073709551616", "%ff%fe", "a+b", "Payments", "%e2%82%ac"};
        for (size_t i = 0, k = hf_rn(4); i < k; i++)
            param(b, &first, HF_PICK(keys), HF_PICK(vals));
        break;
    }
    case Q_RECORDS:
    case Q_STREAM:
        if (hf_chance(70))
            param(b, &first, "from", HF_PICK(num_values));
        if (hf_chance(r->query == Q_RECORDS ? 60 : 10))
            param(b, &first, "limit", HF_PICK(num_values));
        break;
    case Q_DIFF:
        if (hf_chance(85))
            param(b, &first, "from", q->clean && hf_chance(70) ? "1.0.0" : HF_PICK(versions));
        if (hf_chance(85))
            param(b, &first, "to", q->clean && hf_chance(70) ? "1.1.0" : HF_PICK(versions));
        break;
    case Q_CHANGES:
        if (hf_chance(60))
            param(b, &first, "from", HF_PICK(num_values));
        if (hf_chance(85))
            param(b, &first, "live", hf_chance(90) ? "0" : HF_PICK(num_values));
        if (hf_chance(20))
            param(b, &first, "domain", hf_chance(50) ? "payments" : "Bad_Domain");
        if (hf_chance(20))
            param(b, &first, "product", hf_chance(50) ? "payments/deal" : "payments");
        break;
    case Q_STATE:
        if (hf_chance(70))
            param(b, &first, "state", HF_PICK(((const char *[]){"requested", "granted", "denied", "x", "", "%ff"})));
        break;
    case Q_LIMIT:
        if (hf_chance(70))
            param(b, &first, "limit", HF_PICK(num_values));
        break;
    case Q_DOMAIN:
        if (hf_chance(60))
            param(b, &first, "domain", HF_PICK(((const char *[]){"payments", "growth", "", "%ff", "x y"})));
        break;
    case Q_REVIVE:
        if (hf_chance(20))
            param(b, &first, "revive", HF_PICK(((const char *[]){"1", "true", "0", "yes", "%ff"})));
        break;
    }
    /* mutations of the query */
    if (MUT(8)) {   /* a parameter given twice */
        hf_note(q, "dup-param");
        param(b, &first, HF_PICK(((const char *[]){"from", "limit", "q", "domain", "live", "state", "to"})),
              HF_PICK(num_values));
        param(b, &first, HF_PICK(((const char *[]){"from", "limit", "q", "domain", "live", "state", "to"})),
              HF_PICK(num_values));
    }
    if (MUT(6)) {
        hf_note(q, "odd-param");
        hf_buf_t k = {0}, v = {0};
        random_segment(&k, 20);
        random_segment(&v, 60);
        param(b, &first, k.p, hf_chance(80) ? v.p : NULL);
        hf_free(&k);
        hf_free(&v);
    }
    if (MUT(3)) {
        hf_note(q, "query-junk");
        hf_str(b, HF_PICK(((const char *[]){"&&&", "?", "=", "&=&", "#frag", "?x=1?y=2", "&from"})));
    }
}

/* The request target: the route's path (its segments filled in) and query, then mutated. */
static void target(hf_req_t *q)
{
    hf_buf_t *b = &q->target;
    const hf_route_t *r = q->aimed;
    if (strstr(r->pattern, "{d}")) {
        product_segments(q, b, r->pattern + strlen(PRODUCT));
    } else if (strstr(r->pattern, "{id}")) {
        const char *pre = r->pattern, *brace = strchr(pre, '{'), *post = strchr(brace, '}') + 1;
        hf_put(b, pre, (size_t)(brace - pre));
        int k = (int)hf_rn(100);
        if (k < 35 && request_id[0])
            hf_str(b, request_id);
        else if (k < 55)
            hf_str(b, "req-0123456789abcdef");
        else if (k < 70)
            hf_str(b, "grant-0123456789abcdef");
        else
            random_segment(b, 90);
        hf_str(b, post);
    } else {
        hf_str(b, r->pattern);
    }
    query(q, b);
    /* mutations of the path */
    if (MUT(6)) {   /* a byte of the path replaced by something odd */
        hf_note(q, "path-byte");
        size_t plen = strcspn(b->p, "?");
        size_t at = 1 + hf_rn(plen > 1 ? plen - 1 : 1);
        hf_buf_t nb = {0};
        hf_put(&nb, b->p, at);
        hf_str(&nb, HF_PICK(bad_bytes));
        hf_put(&nb, b->p + at, b->len - at);
        hf_free(b);
        *b = nb;
    }
    if (MUT(4)) {   /* path characters percent-encoded (the same path, decoded) */
        hf_note(q, "encoded");
        hf_buf_t nb = {0};
        size_t plen = strcspn(b->p, "?");
        for (size_t i = 0; i < b->len; i++)
            if (i < plen && b->p[i] != '/' && b->p[i] != '%' && hf_chance(40))
                hf_fmt(&nb, "%%%02x", (unsigned char)b->p[i]);
            else
                hf_put(&nb, b->p + i, 1);
        hf_free(b);
        *b = nb;
    }
    if (MUT(3)) {
        hf_note(q, "slashes");
        size_t plen = strcspn(b->p, "?");
        hf_buf_t nb = {0};
        hf_put(&nb, b->p, plen);
        hf_str(&nb, HF_PICK(((const char *[]){"/", "//", "/.", "/..", "/./x", "/%2e%2e/status", ";x=1"})));
        hf_put(&nb, b->p + plen, b->len - plen);
        hf_free(b);
        *b = nb;
    }
    if (MUT(3)) {   /* overlong: past the node's 4 KiB (414, its JSON) or past the library's 32 KiB */
        hf_note(q, "overlong");
        size_t n = hf_chance(80) ? 200 + hf_rn(5000) : 33000 + hf_rn(10000);
        hf_str(b, strchr(b->p, '?') ? "&pad=" : "?pad=");
        for (size_t i = 0; i < n; i++)
            hf_put(b, "x", 1);
        if (b->len > 30000)
            q->library = 1;
    }
    if (MUT(2)) {   /* raw bytes over 0x7f, not encoded */
        hf_note(q, "raw-high");
        hf_str(b, HF_PICK(((const char *[]){"\xff", "\xc3\xa9", "\xe2\x82\xac", "\xc0\xaf", "\x80"})));
    }
}

/* ---- bodies */

void hf_mutate_bytes(hf_buf_t *b)
{
    int n = 1 + (int)hf_rn(6);
    for (int i = 0; i < n && b->len; i++) {
        size_t at = hf_rn(b->len);
        switch (hf_rn(6)) {
        case 0: b->p[at] = (char)hf_rn(256); break;
        case 1: b->len = at; b->p[at] = '\0'; break;   /* truncated */
        case 2: {   /* a run of random bytes inserted */
            hf_buf_t nb = {0};
            hf_put(&nb, b->p, at);
            for (size_t k = 0, m = 1 + hf_rn(16); k < m; k++) {
                char ch = (char)hf_rn(256);
                hf_put(&nb, &ch, 1);
            }
            hf_put(&nb, b->p + at, b->len - at);
            hf_free(b);
            *b = nb;
            break;
        }
        case 3: {   /* an invalid UTF-8 sequence or a NUL inserted */
            static const char *const seq[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x00",
                                              "\xe2\x82"};
            const char *s = HF_PICK(seq);
            size_t l = s[0] ? strlen(s) : 1;
            hf_buf_t nb = {0};
            hf_put(&nb, b->p, at);
            hf_put(&nb, s, l);
            hf_put(&nb, b->p + at, b->len - at);
            hf_free(b);
            *b = nb;
            break;
        }
        case 4: {   /* a part repeated */
            size_t l = hf_rn(b->len - at + 1);
            hf_buf_t nb = {0};
            hf_put(&nb, b->p, at + l);
            hf_put(&nb, b->p + at, b->len - at);
            hf_free(b);
            *b = nb;
            break;
        }
        default: b->p[at] = "{}[]\",:\n\\ 0"[hf_rn(12)]; break;
        }
    }
}

/* A JSON value of a random type and size. */
static json_t *random_json(int depth)
{
    switch (hf_rn(depth > 2 ? 7 : 9)) {
    case 0: return json_null();
    case 1: return json_boolean(hf_chance(50));
    case 2: return json_integer(HF_PICK(((json_int_t[]){0, -1, 1, 366, 367, 1000000, INT64_MAX, INT64_MIN})));
    case 3: return json_real(HF_PICK(((double[]){1.5, -0.0, 1e300, 3.0})));
    case 4: return json_string(HF_PICK(((const char *[]){"", "x", "payments/deal", "read", "admin", "trib.cert",
                                                      "alice@payments", "é€", "req-0123456789abcdef", "1.0.0",
                                                      "restricted"})));
    case 5: {
        char *s = malloc(70000);
        size_t l = 1 + hf_rn(69000);
        memset(s, 'a' + (int)hf_rn(26), l);
        s[l] = '\0';
        json_t *j = json_string(s);
        free(s);
        return j;
    }
    case 6: return json_string("");
    case 7: {
        json_t *a = json_array();
        for (size_t i = 0, n = hf_rn(5); i < n; i++)
            json_array_append_new(a, random_json(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = 0, n = hf_rn(4); i < n; i++)
            json_object_set_new(o, HF_PICK(((const char *[]){"name", "id", "kind", "days", "fields", "x"})),
                                random_json(depth + 1));
        return o;
    }
    }
}

/* Replaces, adds or removes one member of the JSON object text in b (left alone when it is not). */
static void mutate_json(hf_buf_t *b)
{
    json_t *j = json_loadb(b->p ? b->p : "", b->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    const char *keys[32];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
        if (n < 32)
            keys[n++] = k;
    int what = (int)hf_rn(3);
    if (what == 0 && n)
        json_object_set_new(j, keys[hf_rn(n)], random_json(0));
    else if (what == 1 && n)
        json_object_del(j, keys[hf_rn(n)]);
    else
        json_object_set_new(j, HF_PICK(((const char *[]){"unknown", "version", "domain", "token", "fields", "signed"})),
                            random_json(0));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        b->len = 0;
        hf_str(b, s);
        free(s);
    }
}

static void body_of(hf_req_t *q, int kind, hf_buf_t *b, const char *ctype_out[1])
{
    const char *name = "fz-a", *domain = "payments";
    char m[2048];
    static char path_name[80], path_domain[80];
    /* the manifest names what the path names (most of the time) */
    if (q->target.p && !strncmp(q->target.p, "/v1/products/", 13)) {
        const char *d = q->target.p + 13, *sl = strchr(d, '/');
        if (sl && sl - d < 70) {
            snprintf(path_domain, sizeof path_domain, "%.*s", (int)(sl - d), d);
            size_t nl = strcspn(sl + 1, "/?");
            snprintf(path_name, sizeof path_name, "%.*s", (int)(nl < 70 ? nl : 70), sl + 1);
            domain = path_domain;
            name = path_name;
        }
    }
    *ctype_out = "application/json";
    switch (mode->body && mode->body(q, kind, b, ctype_out) ? B_NONE : kind) {
    case B_MANIFEST: {
        static const char *const versions[] = {"1.0.0", "1.0.1", "1.1.0", "2.0.0", "3.0.0", "0.0.1", "9.9.9", "x.y.z",
                                               ""};
        static const char *const cls[] = {"public", "internal", "confidential", "restricted", "secret", ""};
        manifest(m, sizeof m, domain, name, versions[hf_rn(q->clean ? 7 : 9)], cls[hf_rn(q->clean ? 4 : 6)], hf_chance(50));
        if (hf_chance(25)) {   /* as YAML */
            *ctype_out = "application/yaml";
            hf_fmt(b, "name: %s\ndomain: %s\nversion: %s\nstatus: active\nclassification: %s\n"
                     "compatibility: %s\nowners: {business: a@example.com, technical: b@example.com}\n"
                     "description: {purpose: fuzz}\nschema:\n  - {name: id, logicalType: string, required: true}\n",
                  name, domain, HF_PICK(versions), HF_PICK(cls),
                  HF_PICK(((const char *[]){"BACKWARD", "NONE", "FULL_TRANSITIVE", "SIDEWAYS"})));
        } else {
            hf_str(b, m);
        }
        break;
    }
    case B_RECORDS:
        *ctype_out = "application/x-ndjson";
        for (size_t i = 0, n = 1 + hf_rn(8); i < n; i++)
            hf_fmt(b, "{\"id\":\"r%zu\",\"amount\":%s,\"note\":%s}\n", i,
                  ((const char *[]){"1", "-5", "9223372036854775807", "1.5", "\"12\"", "null", "9223372036854775808",
                                    "1e999"})[hf_rn(q->clean ? 3 : 8)],
                  ((const char *[]){"\"x\"", "\"é\"", "\"\\u00e9\"", "\"\\u0000\"", "\"\\ud800\"", "1", "[]"})[hf_rn(q->clean ? 3 : 7)]);
        if (hf_chance(10))
            hf_str(b, "\n\n{}\n");
        break;
    case B_TOKEN:
        hf_fmt(b, "{\"sub\":\"%s\",\"kind\":\"%s\",\"ttl_s\":%s%s}",
              q->clean ? (q->n == &hf_a ? "ci@payments" : "ci@growth")
                       : HF_PICK(((const char *[]){"ci@payments", "ci@growth", "ci", "@payments", "a@b@payments", ""})),
              ((const char *[]){"read", "write", "admin", "root", ""})[hf_rn(q->clean ? 3 : 5)],
              ((const char *[]){"60", "31622400", "0", "-1", "31622401", "1.5", "\"60\"", "9223372036854775807"})[hf_rn(q->clean ? 2 : 8)],
              HF_PICK(((const char *[]){"", ",\"product\":\"payments/*\"", ",\"product\":\"**\"", ",\"product\":7",
                                     ",\"product\":\"payments/[\""})));
        break;
    case B_REVOKE:
        if (hf_chance(40))
            hf_fmt(b, "{\"id\":\"%s\"}", HF_PICK(((const char *[]){"0123456789abcdef0123456789abcdef", "", "zz",
                                                                  "00000000000000000000000000000000000000000000000000"
                                                                  "00000000000000000000000000000000000000000000000000"
                                                                  "0000000000000000000000000000"})));
        else if (hf_chance(50))   /* a token of this test's own making, or a broken one: never one it uses */
            hf_fmt(b, "{\"token\":\"%s\"}", HF_PICK(((const char *[]){"trib1.", "trib1.AAAA", "x", ""})));
        else
            hf_str(b, "{}");
        break;
    case B_ACCESS:
        hf_fmt(b, "{\"product\":\"%s\",\"purpose\":\"%s\"%s%s}",
              HF_PICK(((const char *[]){"payments/deal", "payments/settled", "payments/pub", "growth/exp", "nope/x", "x"})),
              HF_PICK(((const char *[]){"fuzz", "", "tab\there", "é"})),
              HF_PICK(((const char *[]){"", ",\"fields\":[\"id\"]", ",\"fields\":[\"nope\"]", ",\"fields\":\"id\"",
                                     ",\"fields\":[1,2]"})),
              HF_PICK(((const char *[]){"", ",\"days\":30", ",\"days\":0", ",\"days\":367", ",\"days\":\"1\""})));
        break;
    case B_DAYS:
        hf_fmt(b, "{\"days\":%s}", HF_PICK(((const char *[]){"1", "0", "366", "367", "-1", "null", "\"3\""})));
        break;
    case B_REASON:
        hf_fmt(b, "{\"reason\":%s}", HF_PICK(((const char *[]){"\"fuzz\"", "\"\"", "7", "null", "\"\\u0000\""})));
        break;
    case B_POLICY:
        if (hf_chance(50)) {
            *ctype_out = "application/yaml";
            hf_fmt(b, "kind: governance.policyset\nversion: %s\ndescription: fuzz\nrules:\n"
                     "  - id: owners.required\n    severity: %s\n    type: required\n    paths: [owners.business]\n",
                  HF_PICK(((const char *[]){"1", "2", "0", "-1", "x", "99999999999999999999"})),
                  HF_PICK(((const char *[]){"warning", "error", "fatal"})));
        } else {
            hf_fmt(b, "{\"kind\":\"trib.policy\",\"signed\":\"%s\"}",
                  HF_PICK(((const char *[]){"", "AAAA", "!!!", "CAESBGZ1enoaAA=="})));
        }
        break;
    case B_TRUST:
        hf_fmt(b, "{\"kind\":\"%s\",\"signed\":\"%s\"}",
              HF_PICK(((const char *[]){"trib.cert", "trib.charter", "trib.revocation", "trib.policy", "trib.rotation",
                                     "trib.other", ""})),
              HF_PICK(((const char *[]){"", "AAAA", "CAESBGZ1enoaAA==", "////", "=", "CAE="})));
        break;
    case B_ROTATE:
        hf_str(b, HF_PICK(((const char *[]){"{}", "{\"cert\":\"AAAA\",\"overlap_s\":60}", "{\"cert\":7}",
                                        "{\"overlap_s\":-1}", "[]"})));
        break;
    default:
        break;
    }
    if (kind != B_NONE && MUT(20)) {
        hf_note(q, "json-member");
        mutate_json(b);
    }
    if (kind != B_NONE && MUT(20)) {
        hf_note(q, "body-bytes");
        hf_mutate_bytes(b);
    }
    if (MUT(2)) {   /* past --max-body-mb 1: 413 */
        hf_note(q, "body-huge");
        for (size_t i = 0, n = (1u << 20) + 1 + hf_rn(100000); i < n; i += 1000) {
            static char block[1000];
            memset(block, 'a' + (int)(i % 26), sizeof block);
            hf_put(b, block, sizeof block);
        }
    }
    if (MUT(3)) {
        hf_note(q, "body-deep");
        for (int i = 0; i < 5000; i++)
            hf_put(b, "[", 1);
    }
}

/* ---- headers */

static void auth_header(hf_req_t *q, hf_buf_t *h)
{
    int t = q->token;
    if (t == T_NONE)
        return;
    const char *tok = hf_tokens[t];
    if (q->clean) {
        hf_fmt(h, "Authorization: Bearer %s\r\n", tok);
        return;
    }
    hf_buf_t v = {0};
    hf_str(&v, tok);
    int shape = (int)hf_rn(100);
    if (shape < 8) {   /* truncated */
        hf_note(q, "tok-cut");
        v.len = hf_rn(v.len);
        v.p[v.len] = '\0';
    } else if (shape < 18) {   /* a byte or a few changed */
        hf_note(q, "tok-flip");
        for (size_t i = 0, k = 1 + hf_rn(3); i < k && v.len; i++)
            v.p[hf_rn(v.len)] = "AZaz09-_.~+/=\xff "[hf_rn(16)];
    } else if (shape < 21) {
        hf_note(q, "tok-append");
        hf_str(&v, HF_PICK(((const char *[]){"x", ".trib1.AAAA", "\xc3", "==", ", Bearer trib1.x"})));
    }
    if (shape >= 8 && shape < 21)   /* no longer the token it was: no success expected */
        q->token = T_STRANGER;
    int form = (int)hf_rn(100);
    if (form < 80)
        hf_fmt(h, "Authorization: Bearer %s\r\n", v.p);
    else if (form < 84)
        hf_fmt(h, "Authorization: bearer   %s  \r\n", v.p);
    else if (form < 87) {
        hf_note(q, "auth-basic");
        hf_str(h, "Authorization: Basic dXNlcjpwYXNz\r\n");
    } else if (form < 90) {
        hf_note(q, "auth-empty");
        hf_str(h, HF_PICK(((const char *[]){"Authorization: Bearer\r\n", "Authorization: Bearer \r\n",
                                        "Authorization:\r\n", "Authorization: Bearertrib1.x\r\n"})));
    } else if (form < 95) {
        hf_note(q, "auth-twice");
        static const int second[] = {T_USER_A, T_SCOPED_A, T_USER_B, T_EXPIRED_A, T_STRANGER};
        hf_fmt(h, "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n", v.p, hf_tokens[HF_PICK(second)]);
    } else {
        hf_note(q, "auth-long");
        hf_str(h, "Authorization: Bearer trib1.");
        for (size_t i = 0, n = 100 + hf_rn(6000); i < n; i++)
            hf_put(h, &"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[hf_rn(64)], 1);
        hf_str(h, "\r\n");
    }
    if (form >= 84)
        q->token = T_STRANGER;
    hf_free(&v);
}

static void extra_headers(hf_req_t *q, hf_buf_t *h)
{
    if (MUT(5)) {
        hf_note(q, "hdr-big");
        size_t n = hf_chance(85) ? 500 + hf_rn(9000) : 33000 + hf_rn(5000);
        hf_str(h, "X-Fuzz: ");
        for (size_t i = 0; i < n; i++)
            hf_put(h, "y", 1);
        hf_str(h, "\r\n");
        if (n > 30000)
            q->library = 1;
    }
    if (MUT(5)) {
        hf_note(q, "hdr-dup");
        for (int i = 0; i < 2; i++)
            hf_str(h, HF_PICK(((const char *[]){"Content-Type: application/json\r\n", "Content-Type: text/plain\r\n",
                                            "Host: a\r\n", "Accept: */*\r\n", "Prefer: redirect=owner\r\n",
                                            "X-Trib: 1\r\n"})));
    }
    if (hf_chance(6))
        hf_str(h, HF_PICK(((const char *[]){"Prefer: redirect=owner\r\n", "Prefer: redirect=owner, respond-async\r\n",
                                        "Prefer: redirect\r\n", "If-None-Match: \"x\"\r\n", "If-None-Match: *\r\n",
                                        "Accept-Encoding: gzip\r\n", "Range: bytes=0-1\r\n",
                                        "X-Forwarded-For: 10.0.0.1\r\n", "Origin: http://evil.example\r\n"})));
    if (MUT(3)) {
        hf_note(q, "hdr-odd");
        hf_str(h, HF_PICK(((const char *[]){"X-Utf8: \xff\xfe\r\n", "X-Empty:\r\n", "X-Ctl: a\x01" "b\r\n",
                                        "x-lower: 1\r\n", "X-Spaces:     \r\n"})));
    }
}

/* ---- a request */

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "get",
                                      "FOO", "M-SEARCH", "PROPFIND"};

static void build_route(hf_req_t *q)
{
    q->aimed = &routes[hf_rn(NROUTES)];
    if (mode->favour && hf_chance(mode->favour_pct)) {   /* the routes the suite is about, more often */
        size_t nf = 0;
        while (mode->favour[nf])
            nf++;
        const char *want = mode->favour[hf_rn(nf)];
        for (size_t i = 0; i < NROUTES; i++)
            if (!strcmp(routes[i].name, want))
                q->aimed = &routes[i];
    }
    q->token = (int)hf_rn(T_COUNT);
    if (q->token > T_NOWHERE && !hf_tokens[q->token])   /* an extra this suite has not made */
        q->token = T_NONE;
    q->clean = hf_chance(30);
    if (q->clean) {   /* the credential the route takes at this node */
        static const char *const writes[] = {"product_put", "product_delete", "records_post"};
        static const char *const admin[] = {"tokens", "tokens_revoke", "policy_post", "key_rotate", "audit",
                                            "access_list", "access_grant", "access_deny", "grant_revoke"};
        static const int readers[] = {T_NONE, T_ADMIN_A, T_USER_A, T_SCOPED_A, T_USER_B, T_ADMIN_B};
        int a = q->n == &hf_a;
        q->token = HF_PICK(readers);
        for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
            if (!strcmp(q->aimed->name, writes[i]))
                q->token = a ? (hf_chance(50) ? T_ADMIN_A : T_WRITER_A) : T_ADMIN_B;
        for (size_t i = 0; i < sizeof admin / sizeof *admin; i++)
            if (!strcmp(q->aimed->name, admin[i]))
                q->token = a ? T_ADMIN_A : T_ADMIN_B;
        if (!strcmp(q->aimed->name, "access_request") || !strcmp(q->aimed->name, "access_mine"))
            q->token = a ? T_USER_A : T_USER_B;
        hf_note(q, "clean");
    }
    snprintf(q->method, sizeof q->method, "%s", q->aimed->method);
    if (MUT(15)) {
        hf_note(q, "method");
        snprintf(q->method, sizeof q->method, "%s", HF_PICK(methods));
    } else if (MUT(1)) {
        hf_note(q, "method-long");
        memset(q->method, 'M', 300);
        q->method[300] = '\0';
        q->library = 1;
    }
    target(q);
    hf_buf_t h = {0}, body = {0};
    const char *ctype = NULL;
    int with_body = q->aimed->body != B_NONE ? q->clean || hf_chance(92) : MUT(5);
    if (with_body)
        body_of(q, q->aimed->body ? q->aimed->body : (int)(1 + hf_rn(10)), &body, &ctype);
    auth_header(q, &h);
    extra_headers(q, &h);
    if (ctype && (q->clean || hf_chance(90)))
        hf_fmt(&h, "Content-Type: %s\r\n", !MUT(5) ? ctype : "multipart/form-data; boundary=x");
    int chunked = with_body && hf_chance(8);
    if (hf_chance(3))
        hf_str(&h, "Expect: 100-continue\r\n");
    hf_fmt(&q->wire, "%s ", q->method);
    hf_put(&q->wire, q->target.p, q->target.len);
    hf_str(&q->wire, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    hf_put(&q->wire, h.p ? h.p : "", h.len);
    if (chunked) {   /* the body in random chunks, well formed */
        hf_note(q, "chunked");
        hf_str(&q->wire, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t at = 0; at < body.len;) {
            size_t n = 1 + hf_rn(body.len - at < 5000 ? body.len - at : 5000);
            hf_fmt(&q->wire, "%zx\r\n", n);
            hf_put(&q->wire, body.p + at, n);
            hf_str(&q->wire, "\r\n");
            at += n;
        }
        hf_str(&q->wire, "0\r\n\r\n");
    } else {
        if (with_body || hf_chance(50))
            hf_fmt(&q->wire, "Content-Length: %zu\r\n", body.len);
        hf_str(&q->wire, "\r\n");
        hf_put(&q->wire, body.p ? body.p : "", body.len);
    }
    hf_free(&h);
    hf_free(&body);
}

/* The framing broken: what libmicrohttpd must refuse (or read some way) without the node failing. */
static void build_framing(hf_req_t *q)
{
    build_route(q);   /* a request to start from, its framing then broken */
    q->library = 1;
    hf_buf_t w = {0};
    const char *end = strstr(q->wire.p, "\r\n\r\n");
    size_t head = end ? (size_t)(end - q->wire.p) + 2 : q->wire.len;
    hf_put(&w, q->wire.p, head);
    static const char *const broken[] = {
        "Content-Length: abc\r\n", "Content-Length: -1\r\n", "Content-Length: 18446744073709551616\r\n",
        "Content-Length: 1, 2\r\n", "Content-Length: 3\r\nContent-Length: 4\r\n", "Content-Length: 0x10\r\n",
        "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n",
        "Transfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3;ext=\"x\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        " folded-continuation\r\n", "NoColon\r\n", "Bad Name: x\r\n", ": empty-name\r\n",
        "X-Bare-LF: 1\n", "X-NUL: a\0b\r\n",
    };
    const char *bad = HF_PICK(broken);
    size_t blen = strcmp(bad, "X-NUL: a") ? strlen(bad) : sizeof "X-NUL: a\0b\r\n" - 1;
    hf_note(q, !strncmp(bad, "Content-Length", 14) ? "framing,bad-length" : "framing");
    hf_put(&w, bad, blen);
    if (!strstr(bad, "\r\n\r\n")) {
        hf_str(&w, "\r\n");
        hf_str(&w, "{\"x\":1}");
    }
    hf_free(&q->wire);
    q->wire = w;
}

static void build_raw(hf_req_t *q)
{
    q->library = 1;
    static const char *const raw[] = {
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "SSH-2.0-OpenSSH_9.6\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "GET /v1/status\r\n\r\n", "GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n", "GET /v1/status HTTP/1.1\n\n",
        "GET\r\n\r\n", "\r\n\r\n\r\n", "GET /v1/status HTTP/1.1\r\n\r\n", "G E T / HTTP/1.1\r\n\r\n",
        "GET http://evil.example/v1/status HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/status HTTP/1.0\r\n\r\n", "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
        "\0\0\0\0", "{\"json\":\"not http\"}\n",
    };
    if (hf_chance(60)) {
        const char *r = HF_PICK(raw);
        hf_put(&q->wire, r, r[0] ? strlen(r) : 4);
        hf_note(q, "raw-known");
    } else {
        hf_note(q, "raw-random");
        for (size_t i = 0, n = 1 + hf_rn(3000); i < n; i++) {
            char ch = (char)hf_rn(256);
            hf_put(&q->wire, &ch, 1);
        }
    }
}

static void build(hf_req_t *q, hf_kind_t kind)
{
    q->kind = kind;
    q->n = hf_chance(70) ? &hf_a : &hf_b;
    if (mode->spread_sources)   /* a client each: the anonymous routes' rate limits are per client */
        snprintf(q->src, sizeof q->src, "127.0.0.%d", 2 + (int)hf_rn(250));
    switch (kind) {
    case K_ROUTE: build_route(q); break;
    case K_FRAMING: build_framing(q); break;
    case K_RAW: build_raw(q); break;
    case K_HALF:
        build_route(q);
        hf_note(q, "half");
        q->library = 1;
        q->wire.len = q->wire.len > 1 ? 1 + hf_rn(q->wire.len - 1) : 0;
        break;
    default: break;
    }
    /* which row the request is for, as the node will see it */
    if (q->target.p) {
        hf_buf_t path = {0};
        unescape(q->target.p, strcspn(q->target.p, "?"), &path);
        q->route = route_of(q->method, path.p ? path.p : "", &q->known);
        hf_free(&path);
    }
    q->head = !strcmp(q->method, "HEAD");
}

static void req_free(hf_req_t *q)
{
    hf_free(&q->wire);
    hf_free(&q->target);
}

/* ------------------------------------------------------------------ sending it, reading the answer */

int hf_connect(const h_node_t *n, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    if (src && *src) {   /* any 127/8 address is this host's: another client */
        struct sockaddr_in me = {.sin_family = AF_INET};
        cr_assert_eq(inet_pton(AF_INET, src, &me.sin_addr), 1, "not an IPv4 address: %s", src);
        cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0, "bind %s: %s", src, strerror(errno));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->http_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Parses what came so far: 1 when a whole response is in (or, for a live 200, its head), 0 when
 * more is needed, -1 when it is malformed (why set). */
static int parse(hf_resp_t *r, int head_only_ok, int no_body)
{
    size_t at = 0;
    for (;;) {   /* 1xx answers (100 Continue) come before the final one */
        if (r->raw.len - at < 12)
            return 0;
        const char *s = r->raw.p + at;
        if (strncmp(s, "HTTP/1.1 ", 9) && strncmp(s, "HTTP/1.0 ", 9)) {
            snprintf(r->why, sizeof r->why, "not a status line: %s", hf_shown(s, r->raw.len - at, 60));
            return -1;
        }
        if (!isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11]) ||
            (r->raw.len - at > 12 && s[12] != ' ' && s[12] != '\r')) {
            snprintf(r->why, sizeof r->why, "bad status code: %s", hf_shown(s, 16, 16));
            return -1;
        }
        const char *end = strstr(s, "\r\n\r\n");   /* raw ends with a NUL (hf_put) */
        if (!end)
            return 0;
        long st = strtol(s + 9, NULL, 10);
        if (st >= 100 && st < 200) {   /* an interim answer: the final one is still to come */
            at = (size_t)(end + 4 - r->raw.p);
            continue;
        }
        r->status = st;
        r->ctype[0] = '\0';
        r->chunked = 0;
        r->clen = -1;
        for (const char *l = strstr(s, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
            const char *colon = memchr(l, ':', (size_t)(strstr(l, "\r\n") - l));
            if (!colon) {
                snprintf(r->why, sizeof r->why, "header line without a colon: %s", hf_shown(l, 40, 40));
                return -1;
            }
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(strstr(l, "\r\n") - v);
            if (!strncasecmp(l, "Content-Type:", 13))
                snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)(vl < 127 ? vl : 127), v);
            else if (!strncasecmp(l, "Content-Length:", 15))
                r->clen = strtol(v, NULL, 10);
            else if (!strncasecmp(l, "Retry-After:", 12))
                snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)(vl < 15 ? vl : 15), v);
            else if (!strncasecmp(l, "Connection:", 11) && !strncasecmp(v, "close", 5))
                r->closes = 1;
            else if (!strncasecmp(l, "Transfer-Encoding:", 18) && strstr(v, "chunked") && (size_t)(strstr(v, "chunked") - v) < vl)
                r->chunked = 1;
        }
        r->body_at = (size_t)(end + 4 - r->raw.p);
        /* libmicrohttpd 0.9.75 answers a request whose Content-Length it cannot read (abc, -1, 1, 2,
         * 0x10, past 2^64) with its own 400 or 413 whose head it writes twice; that is the library's
         * (no hook of the node runs for it), tolerated only where such a header was sent */
        size_t hl = r->body_at - at;
        if (r->double_head_ok && r->status >= 400 && r->raw.len - r->body_at >= hl &&
            !memcmp(r->raw.p + r->body_at, s, hl)) {
            r->double_head = 1;
            r->body_at += hl;
        }
        break;
    }
    if (no_body || r->status == 204 || r->status == 304) {
        r->complete = 1;
        r->consumed = r->body_at;
        return 1;
    }
    if (head_only_ok && r->status == 200)
        return 1;
    const char *b = r->raw.p + r->body_at;
    size_t have = r->raw.len - r->body_at;
    r->body.len = 0;
    if (r->chunked) {
        size_t i = 0;
        for (;;) {
            const char *crlf = memmem(b + i, have - i, "\r\n", 2);
            if (!crlf)
                return 0;
            char *e;
            unsigned long n = strtoul(b + i, &e, 16);
            if (e == b + i || (e != crlf && *e != ';')) {
                snprintf(r->why, sizeof r->why, "bad chunk size: %s", hf_shown(b + i, have - i, 20));
                return -1;
            }
            size_t data = (size_t)(crlf + 2 - b);
            if (n == 0) {
                if (have - data >= 2 && !memcmp(b + data, "\r\n", 2)) {
                    r->complete = 1;
                    r->consumed = r->body_at + data + 2;
                    return 1;
                }
                return 0;   /* trailers or the last CRLF still to come */
            }
            if (have < data + n + 2)
                return 0;
            if (memcmp(b + data + n, "\r\n", 2)) {
                snprintf(r->why, sizeof r->why, "chunk of %lu bytes not followed by CRLF", n);
                return -1;
            }
            hf_put(&r->body, b + data, n);
            i = data + n + 2;
        }
    }
    if (r->clen >= 0) {
        if (have < (size_t)r->clen)
            return 0;
        hf_put(&r->body, b, (size_t)r->clen);
        r->consumed = r->body_at + (size_t)r->clen;
        if (have > (size_t)r->clen && !r->allow_more) {
            snprintf(r->why, sizeof r->why, "%zu bytes past Content-Length %ld", have - (size_t)r->clen, r->clen);
            return -1;
        }
        r->complete = 1;
        return 1;
    }
    hf_put(&r->body, b, have);   /* to the end of the connection */
    return 0;
}

/* Sends q and reads the answer (none for a request cut off: the connection is closed at once). */
static void exchange(hf_req_t *q, hf_resp_t *r)
{
    memset(r, 0, sizeof *r);
    r->clen = -1;
    r->double_head_ok = q->kind == K_FRAMING && strstr(q->mutations, "bad-length");
    int fd = hf_connect(q->n, q->src);
    cr_assert_geq(fd, 0, "cannot connect to %s", q->n->url);
    size_t off = 0;
    while (off < q->wire.len) {
        ssize_t w = send(fd, q->wire.p + off, q->wire.len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;   /* the node may answer and close before reading it all (a 413, a 414) */
        off += (size_t)w;
    }
    if (q->kind == K_HALF) {
        close(fd);
        return;
    }
    /* A well-framed request has ANSWER_MS. Another may be incomplete as the node reads it (a chunk
     * announced and never sent): it gets a moment, then the end of what this side sends, then a
     * few seconds (an answer or the connection closed: either is fine). */
    long deadline = h_now_ms() + (q->kind == K_ROUTE ? ANSWER_MS : 300);
    int done = 0, half_closed = q->kind == K_ROUTE;
    while (!done) {
        long left = deadline - h_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if ((left <= 0 || poll(&p, 1, (int)left) != 1) && !half_closed) {
            shutdown(fd, SHUT_WR);
            half_closed = 1;
            deadline = h_now_ms() + 5000;
            continue;
        }
        if (left <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) {
            r->timed_out = 1;
            break;
        }
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
            if (r->raw.len && r->status && !r->complete && r->clen < 0 && !r->chunked) {
                r->complete = 1;   /* closed: the body ends here */
            }
            break;
        }
        hf_put(&r->raw, chunk, (size_t)n);
        int rc = parse(r, q->route && q->route->live, q->head);
        if (rc != 0)
            done = 1;
    }
    if (!r->status && r->raw.len)
        parse(r, 0, q->head);   /* say why, if it is malformed */
    close(fd);
}

void hf_send(h_node_t *n, const char *src, const void *wire, size_t len, hf_resp_t *r)
{
    hf_req_t q = {.kind = K_ROUTE, .n = n};
    snprintf(q.src, sizeof q.src, "%s", src ? src : "");
    hf_put(&q.wire, wire, len);
    exchange(&q, r);
    req_free(&q);
}

void hf_resp_free(hf_resp_t *r)
{
    hf_free(&r->raw);
    hf_free(&r->body);
}

/* Two requests on one connection, sent at once, the first keep-alive: each answered in turn (the
 * first request's state must not reach the second), unless the first answer closes. */
struct tally;
static void check(const hf_req_t *q, hf_resp_t *r, struct tally *t);

static void pipelined(hf_req_t *q1, hf_req_t *q2, struct tally *t)
{
    hf_buf_t w = {0};
    const char *c = strstr(q1->wire.p, "Connection: close\r\n");
    hf_put(&w, q1->wire.p, (size_t)(c - q1->wire.p));
    hf_str(&w, "Connection: keep-alive\r\n");
    hf_put(&w, c + 19, q1->wire.len - (size_t)(c + 19 - q1->wire.p));
    hf_put(&w, q2->wire.p, q2->wire.len);
    int fd = hf_connect(q1->n, q1->src);
    cr_assert_geq(fd, 0, "cannot connect to %s", q1->n->url);
    for (size_t off = 0; off < w.len;) {
        ssize_t n = send(fd, w.p + off, w.len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    hf_resp_t r1 = {.clen = -1, .allow_more = 1}, r2 = {.clen = -1};
    long deadline = h_now_ms() + 2 * ANSWER_MS;
    for (;;) {   /* to the end of the connection: the second request asked for it */
        long left = deadline - h_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char chunk[65536];
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) != 1 || (n = recv(fd, chunk, sizeof chunk, 0)) <= 0) {
            r1.timed_out = r2.timed_out = left <= 0;
            break;
        }
        hf_put(&r1.raw, chunk, (size_t)n);
    }
    close(fd);
    hf_free(&w);
    int rc = r1.raw.len ? parse(&r1, 0, q1->head) : 0;
    if (rc == 1 && r1.consumed < r1.raw.len) {
        hf_put(&r2.raw, r1.raw.p + r1.consumed, r1.raw.len - r1.consumed);
        r1.raw.len = r1.consumed;
        parse(&r2, 0, q2->head);
        if (r2.status && !r2.complete && r2.clen < 0 && !r2.chunked)
            r2.complete = 1;   /* to the end of the connection */
    }
    check(q1, &r1, t);
    if (!r1.closes)
        check(q2, &r2, t);
    hf_free(&r1.raw), hf_free(&r1.body), hf_free(&r2.raw), hf_free(&r2.body);
}

/* ------------------------------------------------------------------ the oracle */

static uint64_t seed_used;
static int request_no;

const char *hf_describe(const hf_req_t *q, const hf_resp_t *r)
{
    static char s[6000];
    const char *eoh = q->wire.p ? strstr(q->wire.p, "\r\n\r\n") : NULL;
    size_t head = eoh ? (size_t)(eoh - q->wire.p) : q->wire.len;
    snprintf(s, sizeof s,
             "seed %llu, request %d (TRIB_FUZZ_SEED=%llu reproduces it), %s to %s [%s], token %s, route %s:\n"
             "  sent %s\n  answer %ld (%s): %s",
             (unsigned long long)seed_used, request_no, (unsigned long long)seed_used, kind_names[q->kind],
             q->n->domain, q->mutations, hf_token_names[q->token], q->route ? q->route->name : q->known ? "(405)" : "(404)",
             hf_shown(q->wire.p ? q->wire.p : "", head, 1200), r->status, r->why[0] ? r->why : "well formed",
             hf_shown(r->raw.p ? r->raw.p : "", r->raw.len, 700));
    return s;
}

typedef struct tally {
    long by_status[600];
    long kinds[K_KINDS];
    long token_refusals[2];     /* error codes counted in trib_token_refused_total, at A and B */
    long access_refusals[2];    /* ... and in trib_access_refused_total */
    long answered, unanswered;
    long double_heads;          /* libmicrohttpd's doubled head (see parse) */
    long pipelined;             /* pairs of requests sent on one connection */
    long by_route[NROUTES][6];  /* answers by route and status class (1xx..5xx; [0]: none) */
} tally_t;

static void check(const hf_req_t *q, hf_resp_t *r, struct tally *t)
{
    int st = 0;
    h_node_t *dead = waitpid(hf_a.pid, &st, WNOHANG) == hf_a.pid ? &hf_a : waitpid(hf_b.pid, &st, WNOHANG) == hf_b.pid ? &hf_b : NULL;
    if (dead) {
        dead->pid = -1;
        char *log = h_read_file(dead->log, NULL);
        size_t l = log ? strlen(log) : 0;
        cr_assert_fail("%s exited (wait status 0x%x) after %s\n  its log ends: %s", dead->domain, st, hf_describe(q, r),
                       log ? log + (l > 3000 ? l - 3000 : 0) : "");
    }
    t->kinds[q->kind]++;
    if (q->kind == K_HALF)
        return;
    if (r->why[0])
        cr_assert_fail("a malformed answer: %s", hf_describe(q, r));
    if (!r->status) {
        t->unanswered++;
        cr_assert(q->library, "%s: %s", r->timed_out ? "no answer in time" : "the node closed the connection without an answer",
                  hf_describe(q, r));
        return;
    }
    t->answered++;
    t->double_heads += r->double_head;
    if (q->route && r->status >= 100 && r->status < 600)
        t->by_route[q->route - routes][r->status / 100]++;
    if (r->status < 600)
        t->by_status[r->status]++;
    cr_assert(r->complete || (q->route && q->route->live && r->status == 200), "an answer cut short: %s",
              hf_describe(q, r));
    int json = !strncmp(r->ctype, "application/json", 16);
    if (q->library && !json) {   /* libmicrohttpd's own answer: a refusal */
        cr_assert(r->status == 400 || r->status == 404 || r->status == 405 || r->status == 413 ||
                  r->status == 414 || r->status == 431 || r->status == 501 || r->status == 505 ||
                  (r->status >= 200 && r->status < 400),   /* a web file, a 304: served as asked */
                  "unexpected status from the library: %s", hf_describe(q, r));
        return;
    }
    /* the status the route documents */
    const char *allowed, *more = q->route && mode->statuses ? mode->statuses(q->route) : NULL;
    char set[200];
    if (q->route)
        snprintf(set, sizeof set, "%s %s 400 414 431%s", q->route->statuses, more ? more : "", q->library ? " 413" : "");
    else
        snprintf(set, sizeof set, "%s 400 414 431%s", q->known ? "405" : "404", q->library ? " 413" : "");
    allowed = set;
    if (q->kind != K_ROUTE || q->library)   /* the framing or the head mangled: any refusal the API gives */
        allowed = "200 201 202 204 304 307 400 401 403 404 405 409 410 413 414 422 429 431";
    cr_assert(status_listed(allowed, r->status), "status %ld is not among %s: %s", r->status, allowed,
              hf_describe(q, r));
    cr_assert(r->status < 500 || r->status == 503 || r->status == 507, "a server error: %s", hf_describe(q, r));
    if (q->head) {
        cr_assert_eq(r->body.len, 0, "a HEAD answer with a body: %s", hf_describe(q, r));
        return;
    }
    if (r->status >= 400 || json) {
        cr_assert(json, "a %ld answer that is not JSON (%s): %s", r->status, r->ctype, hf_describe(q, r));
        json_error_t je;
        json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &je);
        cr_assert_not_null(j, "a JSON answer that does not parse (%s): %s", je.text, hf_describe(q, r));
        if (r->status >= 400) {
            const char *e = json_string_value(json_object_get(j, "error"));
            const char *d = json_string_value(json_object_get(j, "detail"));
            cr_assert(json_is_object(j) && e && *e && d && *d, "an error without the error shape: %s",
                      hf_describe(q, r));
            int at = q->n == &hf_a ? 0 : 1;
            int routed_read = q->route && (!strcmp(q->route->name, "records_get") || !strcmp(q->route->name, "stream"));
            int body_token = q->route && (!strcmp(q->route->name, "tokens_revoke") ||   /* a token in the body */
                                          !strcmp(q->route->name, "federation_objects") ||
                                          !strcmp(q->route->name, "key_rotate"));
            if (h_credential_code(e) && !routed_read && !body_token)
                t->token_refusals[at]++;
            if (q->route && q->route->access &&
                (!strcmp(e, "already_decided") || !strcmp(e, "already_revoked") || !strcmp(e, "bad_query") ||
                 !strcmp(e, "bad_id") || (!strcmp(e, "not_found") && r->status == 404)))
                t->access_refusals[at]++;
        }
        json_decref(j);
    }
    if (r->status == 200 && q->route && !strcmp(q->route->name, "records_get"))   /* NDJSON: every line parses */
        for (const char *l = r->body.p; l && *l;) {
            size_t n = strcspn(l, "\n");
            json_t *j = json_loadb(l, n, 0, NULL);
            cr_assert_not_null(j, "a record line that does not parse: %s", hf_describe(q, r));
            json_decref(j);
            l += n + (l[n] == '\n');
        }
    if (mode->after)
        mode->after(q, r);
}

/* ------------------------------------------------------------------ the run */

/* The sum of trib_http_requests_total's series with a 4xx status. */
static double refused_http(h_node_t *n)
{
    char url[300];
    snprintf(url, sizeof url, "%s/metrics", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    double sum = 0;
    for (char *line = r.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, "trib_http_requests_total{", 25) && strstr(line, "status=\"4") &&
            strstr(line, "status=\"4") < strchr(line, '}'))
            sum += strtod(strchr(line, ' ') + 1, NULL);
    h_resp_free(&r);
    return sum;
}

/* A sanitizer's report in an agent's log (make asan): the agents run with it too. */
static void no_sanitizer_report(const h_node_t *n)
{
    char *log = h_read_file(n->log, NULL);
    const char *hit = NULL;
    if (log)
        hit = strstr(log, "ERROR: AddressSanitizer") ? strstr(log, "ERROR: AddressSanitizer")
            : strstr(log, "ERROR: LeakSanitizer") ? strstr(log, "ERROR: LeakSanitizer")
            : strstr(log, "runtime error:");
    cr_expect_null(hit, "%s's log has a sanitizer report (seed %llu):\n%.4000s", n->domain,
                   (unsigned long long)seed_used, hit);
    free(log);
}

static const char *compare(const snapshot_t *a, const snapshot_t *b)
{
    if (strcmp(a->meta, b->meta))
        return "metadata";
    if (strcmp(a->records, b->records))
        return "records (owner)";
    if (strcmp(a->relayed, b->relayed))
        return "records (relayed)";
    return NULL;
}


static tally_t tally;
static long run_ms, setup_ms;
static int run_total;

uint64_t hf_seed_used(void) { return seed_used; }

void hf_run(const hf_mode_t *m, uint64_t seed, int n)
{
    const char *s = getenv("TRIB_FUZZ_SEED"), *nv = getenv("TRIB_FUZZ_N");
    mode = m;
    seed_used = s && *s ? strtoull(s, NULL, 10) : seed;
    run_total = nv && *nv ? atoi(nv) : n;
    rng_state = seed_used * 2654435761u + 1;
    long t0 = h_now_ms();
    snapshot_all(before);
    double tok0[2] = {h_metric_sum(hf_a.url, "trib_token_refused_total"), h_metric_sum(hf_b.url, "trib_token_refused_total")};
    double acc0[2] = {h_metric_sum(hf_a.url, "trib_access_refused_total"), h_metric_sum(hf_b.url, "trib_access_refused_total")};
    double http0[2] = {refused_http(&hf_a), refused_http(&hf_b)};
    long t1 = h_now_ms();
    tally_t *t = &tally;
    memset(t, 0, sizeof *t);
    for (request_no = 0; request_no < run_total; request_no++) {
        int k = (int)hf_rn(100);
        hf_kind_t kind = k < 78 ? K_ROUTE : k < 87 ? K_FRAMING : k < 93 ? K_RAW : K_HALF;
        hf_req_t q = {0};
        hf_resp_t r;
        build(&q, kind);
        if (kind == K_ROUTE && hf_chance(8)) {   /* and a second request on its connection */
            hf_req_t q2 = {0};
            build(&q2, K_ROUTE);
            q2.n = q.n;
            memcpy(q2.src, q.src, sizeof q2.src);   /* one connection, one client */
            if (!q.library && !q2.library && !(q.route && q.route->live) && !(q2.route && q2.route->live) &&
                strstr(q.wire.p, "Connection: close\r\n")) {
                hf_note(&q, "pipelined-1st");
                hf_note(&q2, "pipelined-2nd");
                pipelined(&q, &q2, t);
                t->pipelined++;
                req_free(&q);
                req_free(&q2);
                continue;
            }
            req_free(&q2);
        }
        exchange(&q, &r);
        check(&q, &r, t);
        if (getenv("TRIB_FUZZ_TRACE") && q.kind == K_ROUTE)
            fprintf(stderr, "%d %s %s %.*s [%s] %s -> %ld %s\n", request_no, q.n->domain, q.method,
                    (int)(q.target.len < 150 ? q.target.len : 150), q.target.p, q.mutations, hf_token_names[q.token],
                    r.status, hf_shown(r.body.p ? r.body.p : "", r.body.len, 160));
        req_free(&q);
        hf_resp_free(&r);
    }
    long t2 = h_now_ms();
    run_ms = t2 - t1;
    setup_ms = t1 - t0;
    /* still serving, at once */
    for (int i = 0; i < 2; i++) {
        h_node_t *nd = i ? &hf_b : &hf_a;
        long a0 = h_now_ms(), st;
        char *b = get_body(nd, "/v1/status", NULL, &st);
        cr_assert_eq(st, 200, "%s: /v1/status %ld after the run (seed %llu)", nd->domain, st,
                     (unsigned long long)seed_used);
        cr_expect_lt(h_now_ms() - a0, 5000, "%s: /v1/status took %ld ms after the run", nd->domain, h_now_ms() - a0);
        free(b);
    }
    /* nothing stored before changed */
    snapshot_t after[6];
    snapshot_all(after);
    for (int i = 0; i < 6; i++) {
        const char *what = compare(&before[i], &after[i]);
        cr_expect_null(what, "%s of %s changed (seed %llu):\nbefore %s\nafter  %s", what,
                       i < 5 ? protected_names[i] : "growth/exp", (unsigned long long)seed_used, before[i].meta,
                       after[i].meta);
    }
    /* refused and counted */
    for (int i = 0; i < 2; i++) {
        h_node_t *nd = i ? &hf_b : &hf_a;
        double tok = h_metric_sum(nd->url, "trib_token_refused_total") - tok0[i];
        double acc = h_metric_sum(nd->url, "trib_access_refused_total") - acc0[i];
        double http = refused_http(nd) - http0[i];
        cr_expect_geq(tok, (double)t->token_refusals[i], "%s: %g token refusals counted, %ld seen (seed %llu)",
                      nd->domain, tok, t->token_refusals[i], (unsigned long long)seed_used);
        cr_expect_geq(acc, (double)t->access_refusals[i], "%s: %g access refusals counted, %ld seen (seed %llu)",
                      nd->domain, acc, t->access_refusals[i], (unsigned long long)seed_used);
        cr_expect_gt(tok, 0, "%s: trib_token_refused_total did not move", nd->domain);
        cr_expect_gt(http, 0, "%s: no 4xx counted in trib_http_requests_total", nd->domain);
    }
    cr_expect_gt(h_metric_sum(hf_a.url, "trib_access_refused_total") - acc0[0], 0, "trib_access_refused_total did not move");
    for (int i = 0; i < 6; i++) {
        free(before[i].meta), free(before[i].records), free(before[i].relayed);
        free(after[i].meta), free(after[i].records), free(after[i].relayed);
    }
}

void hf_stop_and_report(void)
{
    tally_t *t = &tally;
    /* clean exits (under make asan: no report in either agent's log) */
    cr_expect_eq(h_node_stop(&hf_b, SIGTERM), 0, "growth did not exit cleanly");
    cr_expect_eq(h_node_stop(&hf_a, SIGTERM), 0, "payments did not exit cleanly");
    no_sanitizer_report(&hf_a);
    no_sanitizer_report(&hf_b);
    char line[1200];
    int l = snprintf(line, sizeof line, "%s: seed %llu, %d requests (route %ld, framing %ld, raw %ld, half %ld) "
                     "in %.1f s (snapshots before: %.1f s), %ld of them pairs on one connection; answered %ld (libmicrohttpd's "
                     "doubled head: %ld), closed without an answer %ld; statuses:",
                     mode->suite, (unsigned long long)seed_used, run_total, t->kinds[K_ROUTE], t->kinds[K_FRAMING],
                     t->kinds[K_RAW], t->kinds[K_HALF], (double)run_ms / 1000, (double)setup_ms / 1000, t->pipelined,
                     t->answered, t->double_heads, t->unanswered);
    for (int i = 100; i < 600 && l < (int)sizeof line - 20; i++)
        if (t->by_status[i])
            l += snprintf(line + l, sizeof line - (size_t)l, " %d:%ld", i, t->by_status[i]);
    fprintf(stderr, "%s\n", line);
    if (getenv("TRIB_FUZZ_VERBOSE"))   /* answers by route: 2xx 3xx 4xx 5xx */
        for (size_t i = 0; i < NROUTES; i++)
            fprintf(stderr, "  %-7s %-34s %4ld %4ld %4ld %4ld\n", routes[i].method, routes[i].pattern,
                    t->by_route[i][2], t->by_route[i][3], t->by_route[i][4], t->by_route[i][5]);
    for (int i = 0; i < T_COUNT; i++) {
        free(hf_tokens[i]);
        hf_tokens[i] = NULL;
    }
}
