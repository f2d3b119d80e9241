/* tests/test_http_fuzz.c - a bounded random-request run against the HTTP API of two real agents
 * (an owner, payments, with public, internal, confidential, restricted and retired products and
 * their records; a relay, growth, with a product of its own): requests built from the route
 * table of docs/http-api.md (every route, every method, HEAD, OPTIONS and unknown ones), mutated
 * in their path segments and query values, their headers (huge, duplicated, bad Content-Length,
 * chunked bodies good and bad, Authorization of every shape: missing, truncated, mutated,
 * expired, of a stranger's key, of another domain), their bodies (manifests, NDJSON records,
 * policy sets, grants, access requests, token requests, trust object files, rotations: valid,
 * then mutated), bytes that are not HTTP at all, requests cut off half way, and pairs of requests
 * sent at once on one keep-alive connection.
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
 * TRIB_FUZZ_VERBOSE=1 prints the answers by route, TRIB_FUZZ_TRACE=1 every request and answer.
 * 3,000 requests take 25-35 s on the shared 2-core machine, under make asan too. */
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

TestSuite(http_fuzz, .fini = h_cleanup_all, .timeout = 300);

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

#define DEFAULT_SEED 20261206u
#define DEFAULT_N 3000
#define ANSWER_MS 15000         /* a well-framed request is answered within this, or it is a failure */

static h_node_t A, B;           /* payments (the owner), growth (the relay) */

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

static size_t rn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }
static int chance(int pct) { return (int)rn(100) < pct; }
#define PICK(arr) ((arr)[rn(sizeof(arr) / sizeof *(arr))])

/* ------------------------------------------------------------------ byte buffers */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void b_put(buf_t *b, const void *d, size_t n)
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

static void b_str(buf_t *b, const char *s) { b_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void b_fmt(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    b_put(b, s, (size_t)n);
    free(s);
}

static void b_free(buf_t *b)
{
    free(b->p);
    *b = (buf_t){0};
}

/* s shown safely in a failure message: printable ASCII as is, the rest escaped, cut at max. */
static const char *shown(const char *s, size_t len, size_t max)
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

enum { B_NONE, B_MANIFEST, B_RECORDS, B_TOKEN, B_REVOKE, B_ACCESS, B_DAYS, B_REASON, B_POLICY, B_TRUST, B_ROTATE };
enum { Q_NONE, Q_PRODUCTS, Q_RECORDS, Q_STREAM, Q_DIFF, Q_CHANGES, Q_STATE, Q_LIMIT, Q_DOMAIN, Q_REVIVE };

typedef struct {
    const char *method, *pattern;   /* {d} {n}: a product id's segments; {id}: an access id */
    const char *name;
    const char *statuses;           /* documented, space-separated */
    int body, query;
    int live;                       /* a 200 may never end: read its head only */
    int access;                     /* /v1/access and /v1/audit: their refusals count in trib_access_refused_total */
} route_t;

#define PRODUCT "/v1/products/{d}/{n}"
static const route_t routes[] = {
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
    {"POST", "/v1/tokens/revoke", "tokens_revoke", "200 400 401 403 404 413", B_REVOKE, Q_NONE, 0, 0},
    {"POST", "/v1/access/requests", "access_request", "201 400 401 403 404 409 413 503", B_ACCESS, Q_NONE, 0, 1},
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
static void unescape(const char *in, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++) {
        static const char hex[] = "0123456789abcdef";
        if (in[i] == '%' && i + 2 < len && strchr(hex, tolower((unsigned char)in[i + 1])) && in[i + 1] &&
            strchr(hex, tolower((unsigned char)in[i + 2])) && in[i + 2]) {
            char h[3] = {in[i + 1], in[i + 2], 0};
            char ch = (char)strtol(h, NULL, 16);
            b_put(out, &ch, 1);
            i += 2;
        } else {
            b_put(out, in + i, 1);
        }
    }
}

/* Whether path (decoded) matches pattern: {x} one non-empty segment, a trailing '/' ignored. */
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
    return !*u || !strcmp(u, "/");
}

/* The route a request is for, from its method and decoded path: the row, or NULL with *known
 * when the path is some row's under another method (a 405). HEAD is GET's but on the reads that
 * stream records and the change feed. */
static const route_t *route_of(const char *method, const char *path, int *known)
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

enum {
    T_NONE, T_ADMIN_A, T_WRITER_A, T_USER_A, T_SCOPED_A, T_USER_B, T_ADMIN_B, T_EXPIRED_A, T_STRANGER, T_NOWHERE,
    T_COUNT
};
static char *tokens[T_COUNT];
static const char *const token_names[T_COUNT] = {"none", "admin@payments", "writer@payments", "alice@payments",
                                                 "sam@payments(pub only)", "gina@growth", "admin@growth",
                                                 "expired@payments", "stranger key for payments",
                                                 "stranger key for nowhere"};

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
    snprintf(path, sizeof path, "%s/identity.key", n->dir);
    cr_assert_eq(identity_load_file(path, id, err, sizeof err), 0, "%s", err);
}

static void make_tokens(void)
{
    identity_t a, b, stranger;
    node_key(&A, &a);
    node_key(&B, &b);
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/stranger.key", A.dir);
    cr_assert_eq(identity_create_file(path, &stranger, err, sizeof err), 0, "%s", err);
    int64_t now = clock_wall_ms(), hour = 3600000;
    tokens[T_NONE] = NULL;
    tokens[T_ADMIN_A] = strdup(A.token);
    tokens[T_WRITER_A] = issue(&a, "payments", "writer@payments", TOKEN_KIND_WRITE, "payments/*", now, now + hour);
    tokens[T_USER_A] = issue(&a, "payments", "alice@payments", TOKEN_KIND_READ, NULL, now, now + hour);
    tokens[T_SCOPED_A] = issue(&a, "payments", "sam@payments", TOKEN_KIND_READ, "payments/pub", now, now + hour);
    tokens[T_USER_B] = issue(&b, "growth", "gina@growth", TOKEN_KIND_READ, NULL, now, now + hour);
    tokens[T_ADMIN_B] = strdup(B.token);
    tokens[T_EXPIRED_A] = issue(&a, "payments", "old@payments", TOKEN_KIND_ADMIN, NULL, now - 3 * hour, now - 2 * hour);
    tokens[T_STRANGER] = issue(&stranger, "payments", "admin@payments", TOKEN_KIND_ADMIN, NULL, now, now + hour);
    tokens[T_NOWHERE] = issue(&stranger, "nowhere", "eve@nowhere", TOKEN_KIND_ADMIN, NULL, now, now + hour);
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
        snapshot(id, &A, &B, A.token, &out[i]);
    }
    snapshot("growth/exp", &B, &A, B.token, &out[5]);
}

/* Both agents, their products and records, a pending access request and the tokens. */
static void setup_nodes(void)
{
    cr_assert_eq(h_node_start(&A, "payments", "--max-body-mb", "1", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, FAST, NULL), 0, "growth did not start");
    publish(&A, "pub", "1.0.0", "public", 0);
    publish(&A, "ledger", "1.0.0", "internal", 0);
    char m[2048];
    manifest(m, sizeof m, "payments", "ledger", "1.1.0", "internal", 1);   /* two versions: history, diff */
    must("PUT", &A, "/v1/products/payments/ledger", "application/json", m, 200, 201);
    publish(&A, "settled", "1.0.0", "confidential", 0);
    publish(&A, "deal", "1.0.0", "restricted", 0);
    publish(&A, "old", "1.0.0", "public", 0);
    must("DELETE", &A, "/v1/products/payments/old", NULL, NULL, 200, 200);
    publish(&B, "exp", "1.0.0", "internal", 0);
    for (int i = 0; i < 2; i++) {   /* scratch products, where the run's writes may succeed */
        publish(&A, scratch_names[i], "1.0.0", i ? "internal" : "public", 0);
        publish(&B, scratch_names[i], "1.0.0", i ? "confidential" : "public", 0);
    }
    cr_assert(h_wait_status(B.url, "/v1/products/payments/old", NULL, 200, 20000), "growth never saw payments' products");
    cr_assert(h_wait_status(A.url, "/v1/products/growth/exp", NULL, 200, 20000), "payments never saw growth/exp");
    make_tokens();
    /* a pending request the fuzzed decisions can name */
    long st = 0;
    json_t *j = h_call("POST", B.url, "/v1/access/requests", tokens[T_USER_B],
                       "{\"product\":\"payments/deal\",\"purpose\":\"fuzz\",\"days\":3}", &st);
    cr_assert_eq(st, 201, "access request: %ld", st);
    snprintf(request_id, sizeof request_id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
}

/* ------------------------------------------------------------------ building a request */

typedef enum {
    K_ROUTE,        /* a route's request, well framed, maybe mutated in path, query, headers, token, body */
    K_FRAMING,      /* the HTTP framing itself broken: bad Content-Length, bad chunks, bad header lines */
    K_RAW,          /* bytes that are not an HTTP request at all */
    K_HALF,         /* a request cut off before its end, the connection then closed */
    K_KINDS
} kind_t;
static const char *const kind_names[K_KINDS] = {"route", "framing", "raw", "half"};

typedef struct {
    kind_t kind;
    h_node_t *n;
    buf_t wire;             /* the bytes sent */
    char method[400];
    buf_t target;           /* request target as sent */
    const route_t *route;   /* the row the request is for (after mutation), NULL: 404/405 */
    const route_t *aimed;   /* the row it was built from */
    int known;              /* the path is some row's (405 for another method) */
    int token;
    int head;               /* HEAD: no body in the answer */
    int library;            /* libmicrohttpd may answer it itself (HTML, or close) */
    int clean;              /* not mutated: the route's method, credential and a body it may take */
    char mutations[256];    /* what was done to it, for the failure message */
} req_t;

/* A mutation, with probability pct, of a request that is not one of the clean ones. */
#define MUT(pct) (!q->clean && chance(pct))

static void note(req_t *q, const char *what)
{
    size_t l = strlen(q->mutations);
    snprintf(q->mutations + l, sizeof q->mutations - l, "%s%s", l ? "," : "", what);
}

static const char *const bad_bytes[] = {"%ff", "%fe%ff", "%c0%af", "%ed%a0%80", "%c3%28", "%f8%88%80%80%80",
                                        "%e2%82", "%2f", "%2e%2e", "%25", "%", "%zz", "%41", "%20", "+", "%e2%82%ac",
                                        "%00", "%0a", "%7f", "%1b"};

/* Random characters, percent-encoded or not, some of them never valid UTF-8. */
static void random_segment(buf_t *b, size_t max)
{
    size_t n = 1 + rn(max);
    for (size_t i = 0; i < n; i++) {
        switch (rn(6)) {
        case 0: b_str(b, PICK(bad_bytes)); break;
        case 1: b_fmt(b, "%%%02X", (unsigned)rn(256)); break;
        case 2: b_fmt(b, "%c", "abcxyz019-_.~"[rn(13)]); break;
        default: b_fmt(b, "%c", 'a' + (int)rn(26)); break;
        }
    }
}

static void product_segments(req_t *q, buf_t *b, const char *rest)
{
    const char *d, *name;
    int r = (int)rn(100);
    d = r < 65 ? "payments" : r < 85 ? "growth" : r < 92 ? "nowhere" : NULL;
    if (q->clean && r < 90)
        d = q->n->domain;
    int dry = !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD") ||
              (!strcmp(q->method, "POST") && !strcmp(rest, "/check"));
    if (may_write(q->token) && !dry)   /* a write that may succeed never touches what the check compares */
        name = q->clean && !strcmp(q->method, "DELETE") ? scratch_names[2 + rn(3)]   /* fz-a, fz-b stay */
             : scratch_names[rn(q->clean ? 2 : 5)];
    else if (q->clean && !strcmp(rest, "/diff") && chance(60))
        name = "ledger";   /* the one with two versions */
    else if ((r = (int)rn(100)) < 60)
        name = PICK(protected_names);
    else if (r < 70)
        name = "exp";
    else if (r < 85)
        name = PICK(scratch_names);
    else
        name = NULL;
    b_str(b, "/v1/products/");
    if (d)
        b_str(b, d);
    else
        random_segment(b, 80);
    b_str(b, "/");
    if (name)
        b_str(b, name);
    else if (chance(50))
        random_segment(b, 70);
    else
        for (size_t i = 0, k = 60 + rn(10); i < k; i++)   /* at and over the 63 characters of a name */
            b_str(b, "n");
    b_str(b, rest);
}

static const char *const num_values[] = {"", "0", "1", "2", "5", "-1", "18446744073709551615", "18446744073709551616",
                                         "99999999999999999999999", "abc", "1e3", "0x10", "%091", "%09-1", "+1",
                                         " 1", "1%00", "%ff", "4294967296", "10000001", "1.5"};

static void param(buf_t *b, int *first, const char *k, const char *v)
{
    b_str(b, *first ? "?" : "&");
    *first = 0;
    b_str(b, k);
    if (v) {
        b_str(b, "=");
        b_str(b, v);
    }
}

static void query(req_t *q, buf_t *b)
{
    int first = 1;
    const route_t *r = q->aimed;
    static const char *const versions[] = {"1.0.0", "1.1.0", "2.0.0", "9.9.9", "x", "", "1.0", "%ff"};
    switch (r->query) {
    case Q_PRODUCTS: {
        static const char *const keys[] = {"q", "domain", "tag", "owner", "status", "classification", "compliance",
                                           "limit", "offset", "classificaton", "sort"};
        static const char *const vals[] = {"settled", "payments", "fuzz", "maria@example.com", "active", "gone",
                                           "restricted", "secret", "compliant", "5", "0", "-1", "1001",
                                           "18446744073709551616", "%ff%fe", "a+b", "Payments", "%e2%82%ac"};
        for (size_t i = 0, k = rn(4); i < k; i++)
            param(b, &first, PICK(keys), PICK(vals));
        break;
    }
    case Q_RECORDS:
    case Q_STREAM:
        if (chance(70))
            param(b, &first, "from", PICK(num_values));
        if (chance(r->query == Q_RECORDS ? 60 : 10))
            param(b, &first, "limit", PICK(num_values));
        break;
    case Q_DIFF:
        if (chance(85))
            param(b, &first, "from", q->clean && chance(70) ? "1.0.0" : PICK(versions));
        if (chance(85))
            param(b, &first, "to", q->clean && chance(70) ? "1.1.0" : PICK(versions));
        break;
    case Q_CHANGES:
        if (chance(60))
            param(b, &first, "from", PICK(num_values));
        if (chance(85))
            param(b, &first, "live", chance(90) ? "0" : PICK(num_values));
        if (chance(20))
            param(b, &first, "domain", chance(50) ? "payments" : "Bad_Domain");
        if (chance(20))
            param(b, &first, "product", chance(50) ? "payments/deal" : "payments");
        break;
    case Q_STATE:
        if (chance(70))
            param(b, &first, "state", PICK(((const char *[]){"requested", "granted", "denied", "x", "", "%ff"})));
        break;
    case Q_LIMIT:
        if (chance(70))
            param(b, &first, "limit", PICK(num_values));
        break;
    case Q_DOMAIN:
        if (chance(60))
            param(b, &first, "domain", PICK(((const char *[]){"payments", "growth", "", "%ff", "x y"})));
        break;
    case Q_REVIVE:
        if (chance(20))
            param(b, &first, "revive", PICK(((const char *[]){"1", "true", "0", "yes", "%ff"})));
        break;
    }
    /* mutations of the query */
    if (MUT(8)) {   /* a parameter given twice */
        note(q, "dup-param");
        param(b, &first, PICK(((const char *[]){"from", "limit", "q", "domain", "live", "state", "to"})),
              PICK(num_values));
        param(b, &first, PICK(((const char *[]){"from", "limit", "q", "domain", "live", "state", "to"})),
              PICK(num_values));
    }
    if (MUT(6)) {
        note(q, "odd-param");
        buf_t k = {0}, v = {0};
        random_segment(&k, 20);
        random_segment(&v, 60);
        param(b, &first, k.p, chance(80) ? v.p : NULL);
        b_free(&k);
        b_free(&v);
    }
    if (MUT(3)) {
        note(q, "query-junk");
        b_str(b, PICK(((const char *[]){"&&&", "?", "=", "&=&", "#frag", "?x=1?y=2", "&from"})));
    }
}

/* The request target: the route's path (its segments filled in) and query, then mutated. */
static void target(req_t *q)
{
    buf_t *b = &q->target;
    const route_t *r = q->aimed;
    if (strstr(r->pattern, "{d}")) {
        product_segments(q, b, r->pattern + strlen(PRODUCT));
    } else if (strstr(r->pattern, "{id}")) {
        const char *pre = r->pattern, *brace = strchr(pre, '{'), *post = strchr(brace, '}') + 1;
        b_put(b, pre, (size_t)(brace - pre));
        int k = (int)rn(100);
        if (k < 35 && request_id[0])
            b_str(b, request_id);
        else if (k < 55)
            b_str(b, "req-0123456789abcdef");
        else if (k < 70)
            b_str(b, "grant-0123456789abcdef");
        else
            random_segment(b, 90);
        b_str(b, post);
    } else {
        b_str(b, r->pattern);
    }
    query(q, b);
    /* mutations of the path */
    if (MUT(6)) {   /* a byte of the path replaced by something odd */
        note(q, "path-byte");
        size_t plen = strcspn(b->p, "?");
        size_t at = 1 + rn(plen > 1 ? plen - 1 : 1);
        buf_t nb = {0};
        b_put(&nb, b->p, at);
        b_str(&nb, PICK(bad_bytes));
        b_put(&nb, b->p + at, b->len - at);
        b_free(b);
        *b = nb;
    }
    if (MUT(4)) {   /* path characters percent-encoded (the same path, decoded) */
        note(q, "encoded");
        buf_t nb = {0};
        size_t plen = strcspn(b->p, "?");
        for (size_t i = 0; i < b->len; i++)
            if (i < plen && b->p[i] != '/' && b->p[i] != '%' && chance(40))
                b_fmt(&nb, "%%%02x", (unsigned char)b->p[i]);
            else
                b_put(&nb, b->p + i, 1);
        b_free(b);
        *b = nb;
    }
    if (MUT(3)) {
        note(q, "slashes");
        size_t plen = strcspn(b->p, "?");
        buf_t nb = {0};
        b_put(&nb, b->p, plen);
        b_str(&nb, PICK(((const char *[]){"/", "//", "/.", "/..", "/./x", "/%2e%2e/status", ";x=1"})));
        b_put(&nb, b->p + plen, b->len - plen);
        b_free(b);
        *b = nb;
    }
    if (MUT(3)) {   /* overlong: past the node's 4 KiB (414, its JSON) or past the library's 32 KiB */
        note(q, "overlong");
        size_t n = chance(80) ? 200 + rn(5000) : 33000 + rn(10000);
        b_str(b, strchr(b->p, '?') ? "&pad=" : "?pad=");
        for (size_t i = 0; i < n; i++)
            b_put(b, "x", 1);
        if (b->len > 30000)
            q->library = 1;
    }
    if (MUT(2)) {   /* raw bytes over 0x7f, not encoded */
        note(q, "raw-high");
        b_str(b, PICK(((const char *[]){"\xff", "\xc3\xa9", "\xe2\x82\xac", "\xc0\xaf", "\x80"})));
    }
}

/* ---- bodies */

static void mutate_bytes(buf_t *b)
{
    int n = 1 + (int)rn(6);
    for (int i = 0; i < n && b->len; i++) {
        size_t at = rn(b->len);
        switch (rn(6)) {
        case 0: b->p[at] = (char)rn(256); break;
        case 1: b->len = at; b->p[at] = '\0'; break;   /* truncated */
        case 2: {   /* a run of random bytes inserted */
            buf_t nb = {0};
            b_put(&nb, b->p, at);
            for (size_t k = 0, m = 1 + rn(16); k < m; k++) {
                char ch = (char)rn(256);
                b_put(&nb, &ch, 1);
            }
            b_put(&nb, b->p + at, b->len - at);
            b_free(b);
            *b = nb;
            break;
        }
        case 3: {   /* an invalid UTF-8 sequence or a NUL inserted */
            static const char *const seq[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x00",
                                              "\xe2\x82"};
            const char *s = PICK(seq);
            size_t l = s[0] ? strlen(s) : 1;
            buf_t nb = {0};
            b_put(&nb, b->p, at);
            b_put(&nb, s, l);
            b_put(&nb, b->p + at, b->len - at);
            b_free(b);
            *b = nb;
            break;
        }
        case 4: {   /* a part repeated */
            size_t l = rn(b->len - at + 1);
            buf_t nb = {0};
            b_put(&nb, b->p, at + l);
            b_put(&nb, b->p + at, b->len - at);
            b_free(b);
            *b = nb;
            break;
        }
        default: b->p[at] = "{}[]\",:\n\\ 0"[rn(12)]; break;
        }
    }
}

/* A JSON value of a random type and size. */
static json_t *random_json(int depth)
{
    switch (rn(depth > 2 ? 7 : 9)) {
    case 0: return json_null();
    case 1: return json_boolean(chance(50));
    case 2: return json_integer(PICK(((json_int_t[]){0, -1, 1, 366, 367, 1000000, INT64_MAX, INT64_MIN})));
    case 3: return json_real(PICK(((double[]){1.5, -0.0, 1e300, 3.0})));
    case 4: return json_string(PICK(((const char *[]){"", "x", "payments/deal", "read", "admin", "trib.cert",
                                                      "alice@payments", "é€", "req-0123456789abcdef", "1.0.0",
                                                      "restricted"})));
    case 5: {
        char *s = malloc(70000);
        size_t l = 1 + rn(69000);
        memset(s, 'a' + (int)rn(26), l);
        s[l] = '\0';
        json_t *j = json_string(s);
        free(s);
        return j;
    }
    case 6: return json_string("");
    case 7: {
        json_t *a = json_array();
        for (size_t i = 0, n = rn(5); i < n; i++)
            json_array_append_new(a, random_json(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = 0, n = rn(4); i < n; i++)
            json_object_set_new(o, PICK(((const char *[]){"name", "id", "kind", "days", "fields", "x"})),
                                random_json(depth + 1));
        return o;
    }
    }
}

/* Replaces, adds or removes one member of the JSON object text in b (left alone when it is not). */
static void mutate_json(buf_t *b)
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
    int what = (int)rn(3);
    if (what == 0 && n)
        json_object_set_new(j, keys[rn(n)], random_json(0));
    else if (what == 1 && n)
        json_object_del(j, keys[rn(n)]);
    else
        json_object_set_new(j, PICK(((const char *[]){"unknown", "version", "domain", "token", "fields", "signed"})),
                            random_json(0));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        b->len = 0;
        b_str(b, s);
        free(s);
    }
}

static void body_of(req_t *q, int kind, buf_t *b, const char *ctype_out[1])
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
    switch (kind) {
    case B_MANIFEST: {
        static const char *const versions[] = {"1.0.0", "1.0.1", "1.1.0", "2.0.0", "3.0.0", "0.0.1", "9.9.9", "x.y.z",
                                               ""};
        static const char *const cls[] = {"public", "internal", "confidential", "restricted", "secret", ""};
        manifest(m, sizeof m, domain, name, versions[rn(q->clean ? 7 : 9)], cls[rn(q->clean ? 4 : 6)], chance(50));
        if (chance(25)) {   /* as YAML */
            *ctype_out = "application/yaml";
            b_fmt(b, "name: %s\ndomain: %s\nversion: %s\nstatus: active\nclassification: %s\n"
                     "compatibility: %s\nowners: {business: a@example.com, technical: b@example.com}\n"
                     "description: {purpose: fuzz}\nschema:\n  - {name: id, logicalType: string, required: true}\n",
                  name, domain, PICK(versions), PICK(cls),
                  PICK(((const char *[]){"BACKWARD", "NONE", "FULL_TRANSITIVE", "SIDEWAYS"})));
        } else {
            b_str(b, m);
        }
        break;
    }
    case B_RECORDS:
        *ctype_out = "application/x-ndjson";
        for (size_t i = 0, n = 1 + rn(8); i < n; i++)
            b_fmt(b, "{\"id\":\"r%zu\",\"amount\":%s,\"note\":%s}\n", i,
                  ((const char *[]){"1", "-5", "9223372036854775807", "1.5", "\"12\"", "null", "9223372036854775808",
                                    "1e999"})[rn(q->clean ? 3 : 8)],
                  ((const char *[]){"\"x\"", "\"é\"", "\"\\u00e9\"", "\"\\u0000\"", "\"\\ud800\"", "1", "[]"})[rn(q->clean ? 3 : 7)]);
        if (chance(10))
            b_str(b, "\n\n{}\n");
        break;
    case B_TOKEN:
        b_fmt(b, "{\"sub\":\"%s\",\"kind\":\"%s\",\"ttl_s\":%s%s}",
              q->clean ? (q->n == &A ? "ci@payments" : "ci@growth")
                       : PICK(((const char *[]){"ci@payments", "ci@growth", "ci", "@payments", "a@b@payments", ""})),
              ((const char *[]){"read", "write", "admin", "root", ""})[rn(q->clean ? 3 : 5)],
              ((const char *[]){"60", "31622400", "0", "-1", "31622401", "1.5", "\"60\"", "9223372036854775807"})[rn(q->clean ? 2 : 8)],
              PICK(((const char *[]){"", ",\"product\":\"payments/*\"", ",\"product\":\"**\"", ",\"product\":7",
                                     ",\"product\":\"payments/[\""})));
        break;
    case B_REVOKE:
        if (chance(40))
            b_fmt(b, "{\"id\":\"%s\"}", PICK(((const char *[]){"0123456789abcdef0123456789abcdef", "", "zz",
                                                                  "00000000000000000000000000000000000000000000000000"
                                                                  "00000000000000000000000000000000000000000000000000"
                                                                  "0000000000000000000000000000"})));
        else if (chance(50))   /* a token of this test's own making, or a broken one: never one it uses */
            b_fmt(b, "{\"token\":\"%s\"}", PICK(((const char *[]){"trib1.", "trib1.AAAA", "x", ""})));
        else
            b_str(b, "{}");
        break;
    case B_ACCESS:
        b_fmt(b, "{\"product\":\"%s\",\"purpose\":\"%s\"%s%s}",
              PICK(((const char *[]){"payments/deal", "payments/settled", "payments/pub", "growth/exp", "nope/x", "x"})),
              PICK(((const char *[]){"fuzz", "", "tab\there", "é"})),
              PICK(((const char *[]){"", ",\"fields\":[\"id\"]", ",\"fields\":[\"nope\"]", ",\"fields\":\"id\"",
                                     ",\"fields\":[1,2]"})),
              PICK(((const char *[]){"", ",\"days\":30", ",\"days\":0", ",\"days\":367", ",\"days\":\"1\""})));
        break;
    case B_DAYS:
        b_fmt(b, "{\"days\":%s}", PICK(((const char *[]){"1", "0", "366", "367", "-1", "null", "\"3\""})));
        break;
    case B_REASON:
        b_fmt(b, "{\"reason\":%s}", PICK(((const char *[]){"\"fuzz\"", "\"\"", "7", "null", "\"\\u0000\""})));
        break;
    case B_POLICY:
        if (chance(50)) {
            *ctype_out = "application/yaml";
            b_fmt(b, "kind: governance.policyset\nversion: %s\ndescription: fuzz\nrules:\n"
                     "  - id: owners.required\n    severity: %s\n    type: required\n    paths: [owners.business]\n",
                  PICK(((const char *[]){"1", "2", "0", "-1", "x", "99999999999999999999"})),
                  PICK(((const char *[]){"warning", "error", "fatal"})));
        } else {
            b_fmt(b, "{\"kind\":\"trib.policy\",\"signed\":\"%s\"}",
                  PICK(((const char *[]){"", "AAAA", "!!!", "CAESBGZ1enoaAA=="})));
        }
        break;
    case B_TRUST:
        b_fmt(b, "{\"kind\":\"%s\",\"signed\":\"%s\"}",
              PICK(((const char *[]){"trib.cert", "trib.charter", "trib.revocation", "trib.policy", "trib.rotation",
                                     "trib.other", ""})),
              PICK(((const char *[]){"", "AAAA", "CAESBGZ1enoaAA==", "////", "=", "CAE="})));
        break;
    case B_ROTATE:
        b_str(b, PICK(((const char *[]){"{}", "{\"cert\":\"AAAA\",\"overlap_s\":60}", "{\"cert\":7}",
                                        "{\"overlap_s\":-1}", "[]"})));
        break;
    default:
        break;
    }
    if (kind != B_NONE && MUT(20)) {
        note(q, "json-member");
        mutate_json(b);
    }
    if (kind != B_NONE && MUT(20)) {
        note(q, "body-bytes");
        mutate_bytes(b);
    }
    if (MUT(2)) {   /* past --max-body-mb 1: 413 */
        note(q, "body-huge");
        for (size_t i = 0, n = (1u << 20) + 1 + rn(100000); i < n; i += 1000) {
            static char block[1000];
            memset(block, 'a' + (int)(i % 26), sizeof block);
            b_put(b, block, sizeof block);
        }
    }
    if (MUT(3)) {
        note(q, "body-deep");
        for (int i = 0; i < 5000; i++)
            b_put(b, "[", 1);
    }
}

/* ---- headers */

static void auth_header(req_t *q, buf_t *h)
{
    int t = q->token;
    if (t == T_NONE)
        return;
    const char *tok = tokens[t];
    if (q->clean) {
        b_fmt(h, "Authorization: Bearer %s\r\n", tok);
        return;
    }
    buf_t v = {0};
    b_str(&v, tok);
    int shape = (int)rn(100);
    if (shape < 8) {   /* truncated */
        note(q, "tok-cut");
        v.len = rn(v.len);
        v.p[v.len] = '\0';
    } else if (shape < 18) {   /* a byte or a few changed */
        note(q, "tok-flip");
        for (size_t i = 0, k = 1 + rn(3); i < k && v.len; i++)
            v.p[rn(v.len)] = "AZaz09-_.~+/=\xff "[rn(16)];
    } else if (shape < 21) {
        note(q, "tok-append");
        b_str(&v, PICK(((const char *[]){"x", ".trib1.AAAA", "\xc3", "==", ", Bearer trib1.x"})));
    }
    if (shape >= 8 && shape < 21)   /* no longer the token it was: no success expected */
        q->token = T_STRANGER;
    int form = (int)rn(100);
    if (form < 80)
        b_fmt(h, "Authorization: Bearer %s\r\n", v.p);
    else if (form < 84)
        b_fmt(h, "Authorization: bearer   %s  \r\n", v.p);
    else if (form < 87) {
        note(q, "auth-basic");
        b_str(h, "Authorization: Basic dXNlcjpwYXNz\r\n");
    } else if (form < 90) {
        note(q, "auth-empty");
        b_str(h, PICK(((const char *[]){"Authorization: Bearer\r\n", "Authorization: Bearer \r\n",
                                        "Authorization:\r\n", "Authorization: Bearertrib1.x\r\n"})));
    } else if (form < 95) {
        note(q, "auth-twice");
        static const int second[] = {T_USER_A, T_SCOPED_A, T_USER_B, T_EXPIRED_A, T_STRANGER};
        b_fmt(h, "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n", v.p, tokens[PICK(second)]);
    } else {
        note(q, "auth-long");
        b_str(h, "Authorization: Bearer trib1.");
        for (size_t i = 0, n = 100 + rn(6000); i < n; i++)
            b_put(h, &"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rn(64)], 1);
        b_str(h, "\r\n");
    }
    if (form >= 84)
        q->token = T_STRANGER;
    b_free(&v);
}

static void extra_headers(req_t *q, buf_t *h)
{
    if (MUT(5)) {
        note(q, "hdr-big");
        size_t n = chance(85) ? 500 + rn(9000) : 33000 + rn(5000);
        b_str(h, "X-Fuzz: ");
        for (size_t i = 0; i < n; i++)
            b_put(h, "y", 1);
        b_str(h, "\r\n");
        if (n > 30000)
            q->library = 1;
    }
    if (MUT(5)) {
        note(q, "hdr-dup");
        for (int i = 0; i < 2; i++)
            b_str(h, PICK(((const char *[]){"Content-Type: application/json\r\n", "Content-Type: text/plain\r\n",
                                            "Host: a\r\n", "Accept: */*\r\n", "Prefer: redirect=owner\r\n",
                                            "X-Trib: 1\r\n"})));
    }
    if (chance(6))
        b_str(h, PICK(((const char *[]){"Prefer: redirect=owner\r\n", "Prefer: redirect=owner, respond-async\r\n",
                                        "Prefer: redirect\r\n", "If-None-Match: \"x\"\r\n", "If-None-Match: *\r\n",
                                        "Accept-Encoding: gzip\r\n", "Range: bytes=0-1\r\n",
                                        "X-Forwarded-For: 10.0.0.1\r\n", "Origin: http://evil.example\r\n"})));
    if (MUT(3)) {
        note(q, "hdr-odd");
        b_str(h, PICK(((const char *[]){"X-Utf8: \xff\xfe\r\n", "X-Empty:\r\n", "X-Ctl: a\x01" "b\r\n",
                                        "x-lower: 1\r\n", "X-Spaces:     \r\n"})));
    }
}

/* ---- a request */

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "get",
                                      "FOO", "M-SEARCH", "PROPFIND"};

static void build_route(req_t *q)
{
    q->aimed = &routes[rn(NROUTES)];
    q->token = (int)rn(T_COUNT);
    q->clean = chance(30);
    if (q->clean) {   /* the credential the route takes at this node */
        static const char *const writes[] = {"product_put", "product_delete", "records_post"};
        static const char *const admin[] = {"tokens", "tokens_revoke", "policy_post", "key_rotate", "audit",
                                            "access_list", "access_grant", "access_deny", "grant_revoke"};
        static const int readers[] = {T_NONE, T_ADMIN_A, T_USER_A, T_SCOPED_A, T_USER_B, T_ADMIN_B};
        int a = q->n == &A;
        q->token = PICK(readers);
        for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
            if (!strcmp(q->aimed->name, writes[i]))
                q->token = a ? (chance(50) ? T_ADMIN_A : T_WRITER_A) : T_ADMIN_B;
        for (size_t i = 0; i < sizeof admin / sizeof *admin; i++)
            if (!strcmp(q->aimed->name, admin[i]))
                q->token = a ? T_ADMIN_A : T_ADMIN_B;
        if (!strcmp(q->aimed->name, "access_request") || !strcmp(q->aimed->name, "access_mine"))
            q->token = a ? T_USER_A : T_USER_B;
        note(q, "clean");
    }
    snprintf(q->method, sizeof q->method, "%s", q->aimed->method);
    if (MUT(15)) {
        note(q, "method");
        snprintf(q->method, sizeof q->method, "%s", PICK(methods));
    } else if (MUT(1)) {
        note(q, "method-long");
        memset(q->method, 'M', 300);
        q->method[300] = '\0';
        q->library = 1;
    }
    target(q);
    buf_t h = {0}, body = {0};
    const char *ctype = NULL;
    int with_body = q->aimed->body != B_NONE ? q->clean || chance(92) : MUT(5);
    if (with_body)
        body_of(q, q->aimed->body ? q->aimed->body : (int)(1 + rn(10)), &body, &ctype);
    auth_header(q, &h);
    extra_headers(q, &h);
    if (ctype && (q->clean || chance(90)))
        b_fmt(&h, "Content-Type: %s\r\n", !MUT(5) ? ctype : "multipart/form-data; boundary=x");
    int chunked = with_body && chance(8);
    if (chance(3))
        b_str(&h, "Expect: 100-continue\r\n");
    b_fmt(&q->wire, "%s ", q->method);
    b_put(&q->wire, q->target.p, q->target.len);
    b_str(&q->wire, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    b_put(&q->wire, h.p ? h.p : "", h.len);
    if (chunked) {   /* the body in random chunks, well formed */
        note(q, "chunked");
        b_str(&q->wire, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t at = 0; at < body.len;) {
            size_t n = 1 + rn(body.len - at < 5000 ? body.len - at : 5000);
            b_fmt(&q->wire, "%zx\r\n", n);
            b_put(&q->wire, body.p + at, n);
            b_str(&q->wire, "\r\n");
            at += n;
        }
        b_str(&q->wire, "0\r\n\r\n");
    } else {
        if (with_body || chance(50))
            b_fmt(&q->wire, "Content-Length: %zu\r\n", body.len);
        b_str(&q->wire, "\r\n");
        b_put(&q->wire, body.p ? body.p : "", body.len);
    }
    b_free(&h);
    b_free(&body);
}

/* The framing broken: what libmicrohttpd must refuse (or read some way) without the node failing. */
static void build_framing(req_t *q)
{
    build_route(q);   /* a request to start from, its framing then broken */
    q->library = 1;
    buf_t w = {0};
    const char *end = strstr(q->wire.p, "\r\n\r\n");
    size_t head = end ? (size_t)(end - q->wire.p) + 2 : q->wire.len;
    b_put(&w, q->wire.p, head);
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
    const char *bad = PICK(broken);
    size_t blen = strcmp(bad, "X-NUL: a") ? strlen(bad) : sizeof "X-NUL: a\0b\r\n" - 1;
    note(q, !strncmp(bad, "Content-Length", 14) ? "framing,bad-length" : "framing");
    b_put(&w, bad, blen);
    if (!strstr(bad, "\r\n\r\n")) {
        b_str(&w, "\r\n");
        b_str(&w, "{\"x\":1}");
    }
    b_free(&q->wire);
    q->wire = w;
}

static void build_raw(req_t *q)
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
    if (chance(60)) {
        const char *r = PICK(raw);
        b_put(&q->wire, r, r[0] ? strlen(r) : 4);
        note(q, "raw-known");
    } else {
        note(q, "raw-random");
        for (size_t i = 0, n = 1 + rn(3000); i < n; i++) {
            char ch = (char)rn(256);
            b_put(&q->wire, &ch, 1);
        }
    }
}

static void build(req_t *q, kind_t kind)
{
    q->kind = kind;
    q->n = chance(70) ? &A : &B;
    switch (kind) {
    case K_ROUTE: build_route(q); break;
    case K_FRAMING: build_framing(q); break;
    case K_RAW: build_raw(q); break;
    case K_HALF:
        build_route(q);
        note(q, "half");
        q->library = 1;
        q->wire.len = q->wire.len > 1 ? 1 + rn(q->wire.len - 1) : 0;
        break;
    default: break;
    }
    /* which row the request is for, as the node will see it */
    if (q->target.p) {
        buf_t path = {0};
        unescape(q->target.p, strcspn(q->target.p, "?"), &path);
        q->route = route_of(q->method, path.p ? path.p : "", &q->known);
        b_free(&path);
    }
    q->head = !strcmp(q->method, "HEAD");
}

static void req_free(req_t *q)
{
    b_free(&q->wire);
    b_free(&q->target);
}

/* ------------------------------------------------------------------ sending it, reading the answer */

typedef struct {
    buf_t raw;
    long status;            /* 0: no answer */
    char ctype[128];
    int chunked;
    long clen;              /* -1: none */
    size_t body_at;         /* start of the final response's body in raw */
    buf_t body;             /* decoded */
    int complete;           /* the framing said where it ends, and it ended there */
    int double_head_ok;     /* libmicrohttpd 0.9.75 may send the head of its own 400/413 twice */
    int double_head;        /* ... and did */
    int timed_out;          /* no end of the answer within the deadline (else: the node closed) */
    int allow_more;         /* another answer may follow this one on the connection (pipelined) */
    size_t consumed;        /* ... and starts here */
    int closes;             /* Connection: close */
    char why[200];          /* how it is malformed, when it is */
} resp_t;

static int connect_to(const h_node_t *n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
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
static int parse(resp_t *r, int head_only_ok, int no_body)
{
    size_t at = 0;
    for (;;) {   /* 1xx answers (100 Continue) come before the final one */
        if (r->raw.len - at < 12)
            return 0;
        const char *s = r->raw.p + at;
        if (strncmp(s, "HTTP/1.1 ", 9) && strncmp(s, "HTTP/1.0 ", 9)) {
            snprintf(r->why, sizeof r->why, "not a status line: %s", shown(s, r->raw.len - at, 60));
            return -1;
        }
        if (!isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11]) ||
            (r->raw.len - at > 12 && s[12] != ' ' && s[12] != '\r')) {
            snprintf(r->why, sizeof r->why, "bad status code: %s", shown(s, 16, 16));
            return -1;
        }
        const char *end = strstr(s, "\r\n\r\n");   /* raw ends with a NUL (b_put) */
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
                snprintf(r->why, sizeof r->why, "header line without a colon: %s", shown(l, 40, 40));
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
                snprintf(r->why, sizeof r->why, "bad chunk size: %s", shown(b + i, have - i, 20));
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
            b_put(&r->body, b + data, n);
            i = data + n + 2;
        }
    }
    if (r->clen >= 0) {
        if (have < (size_t)r->clen)
            return 0;
        b_put(&r->body, b, (size_t)r->clen);
        r->consumed = r->body_at + (size_t)r->clen;
        if (have > (size_t)r->clen && !r->allow_more) {
            snprintf(r->why, sizeof r->why, "%zu bytes past Content-Length %ld", have - (size_t)r->clen, r->clen);
            return -1;
        }
        r->complete = 1;
        return 1;
    }
    b_put(&r->body, b, have);   /* to the end of the connection */
    return 0;
}

/* Sends q and reads the answer (none for a request cut off: the connection is closed at once). */
static void exchange(req_t *q, resp_t *r)
{
    memset(r, 0, sizeof *r);
    r->clen = -1;
    r->double_head_ok = q->kind == K_FRAMING && strstr(q->mutations, "bad-length");
    int fd = connect_to(q->n);
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
        b_put(&r->raw, chunk, (size_t)n);
        int rc = parse(r, q->route && q->route->live, q->head);
        if (rc != 0)
            done = 1;
    }
    if (!r->status && r->raw.len)
        parse(r, 0, q->head);   /* say why, if it is malformed */
    close(fd);
}

/* Two requests on one connection, sent at once, the first keep-alive: each answered in turn (the
 * first request's state must not reach the second), unless the first answer closes. */
struct tally;
static void check(const req_t *q, resp_t *r, struct tally *t);

static void pipelined(req_t *q1, req_t *q2, struct tally *t)
{
    buf_t w = {0};
    const char *c = strstr(q1->wire.p, "Connection: close\r\n");
    b_put(&w, q1->wire.p, (size_t)(c - q1->wire.p));
    b_str(&w, "Connection: keep-alive\r\n");
    b_put(&w, c + 19, q1->wire.len - (size_t)(c + 19 - q1->wire.p));
    b_put(&w, q2->wire.p, q2->wire.len);
    int fd = connect_to(q1->n);
    cr_assert_geq(fd, 0, "cannot connect to %s", q1->n->url);
    for (size_t off = 0; off < w.len;) {
        ssize_t n = send(fd, w.p + off, w.len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    resp_t r1 = {.clen = -1, .allow_more = 1}, r2 = {.clen = -1};
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
        b_put(&r1.raw, chunk, (size_t)n);
    }
    close(fd);
    b_free(&w);
    int rc = r1.raw.len ? parse(&r1, 0, q1->head) : 0;
    if (rc == 1 && r1.consumed < r1.raw.len) {
        b_put(&r2.raw, r1.raw.p + r1.consumed, r1.raw.len - r1.consumed);
        r1.raw.len = r1.consumed;
        parse(&r2, 0, q2->head);
        if (r2.status && !r2.complete && r2.clen < 0 && !r2.chunked)
            r2.complete = 1;   /* to the end of the connection */
    }
    check(q1, &r1, t);
    if (!r1.closes)
        check(q2, &r2, t);
    b_free(&r1.raw), b_free(&r1.body), b_free(&r2.raw), b_free(&r2.body);
}

/* ------------------------------------------------------------------ the oracle */

static uint64_t seed_used;
static int request_no;

static const char *describe(const req_t *q, const resp_t *r)
{
    static char s[6000];
    const char *eoh = q->wire.p ? strstr(q->wire.p, "\r\n\r\n") : NULL;
    size_t head = eoh ? (size_t)(eoh - q->wire.p) : q->wire.len;
    snprintf(s, sizeof s,
             "seed %llu, request %d (TRIB_FUZZ_SEED=%llu reproduces it), %s to %s [%s], token %s, route %s:\n"
             "  sent %s\n  answer %ld (%s): %s",
             (unsigned long long)seed_used, request_no, (unsigned long long)seed_used, kind_names[q->kind],
             q->n->domain, q->mutations, token_names[q->token], q->route ? q->route->name : q->known ? "(405)" : "(404)",
             shown(q->wire.p ? q->wire.p : "", head, 1200), r->status, r->why[0] ? r->why : "well formed",
             shown(r->raw.p ? r->raw.p : "", r->raw.len, 700));
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

static int credential_code(const char *code)
{
    static const char *const codes[] = {"token_required", "token_invalid", "token_expired", "token_revoked",
                                        "wrong_domain", "kind_insufficient", "out_of_scope", "grant_required"};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (!strcmp(codes[i], code))
            return 1;
    return 0;
}

static void check(const req_t *q, resp_t *r, struct tally *t)
{
    int st = 0;
    h_node_t *dead = waitpid(A.pid, &st, WNOHANG) == A.pid ? &A : waitpid(B.pid, &st, WNOHANG) == B.pid ? &B : NULL;
    if (dead) {
        dead->pid = -1;
        char *log = h_read_file(dead->log, NULL);
        size_t l = log ? strlen(log) : 0;
        cr_assert_fail("%s exited (wait status 0x%x) after %s\n  its log ends: %s", dead->domain, st, describe(q, r),
                       log ? log + (l > 3000 ? l - 3000 : 0) : "");
    }
    t->kinds[q->kind]++;
    if (q->kind == K_HALF)
        return;
    if (r->why[0])
        cr_assert_fail("a malformed answer: %s", describe(q, r));
    if (!r->status) {
        t->unanswered++;
        cr_assert(q->library, "%s: %s", r->timed_out ? "no answer in time" : "the node closed the connection without an answer",
                  describe(q, r));
        return;
    }
    t->answered++;
    t->double_heads += r->double_head;
    if (q->route && r->status >= 100 && r->status < 600)
        t->by_route[q->route - routes][r->status / 100]++;
    if (r->status < 600)
        t->by_status[r->status]++;
    cr_assert(r->complete || (q->route && q->route->live && r->status == 200), "an answer cut short: %s",
              describe(q, r));
    int json = !strncmp(r->ctype, "application/json", 16);
    if (q->library && !json) {   /* libmicrohttpd's own answer: a refusal */
        cr_assert(r->status == 400 || r->status == 404 || r->status == 405 || r->status == 413 ||
                  r->status == 414 || r->status == 431 || r->status == 501 || r->status == 505 ||
                  (r->status >= 200 && r->status < 400),   /* a web file, a 304: served as asked */
                  "unexpected status from the library: %s", describe(q, r));
        return;
    }
    /* the status the route documents */
    const char *allowed;
    char set[128];
    if (q->route)
        snprintf(set, sizeof set, "%s 400 414 431%s", q->route->statuses, q->library ? " 413" : "");
    else
        snprintf(set, sizeof set, "%s 400 414 431%s", q->known ? "405" : "404", q->library ? " 413" : "");
    allowed = set;
    if (q->kind != K_ROUTE || q->library)   /* the framing or the head mangled: any refusal the API gives */
        allowed = "200 201 202 204 304 307 400 401 403 404 405 409 410 413 414 422 429 431";
    cr_assert(status_listed(allowed, r->status), "status %ld is not among %s: %s", r->status, allowed,
              describe(q, r));
    cr_assert(r->status < 500 || r->status == 503 || r->status == 507, "a server error: %s", describe(q, r));
    if (q->head) {
        cr_assert_eq(r->body.len, 0, "a HEAD answer with a body: %s", describe(q, r));
        return;
    }
    if (r->status >= 400 || json) {
        cr_assert(json, "a %ld answer that is not JSON (%s): %s", r->status, r->ctype, describe(q, r));
        json_error_t je;
        json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &je);
        cr_assert_not_null(j, "a JSON answer that does not parse (%s): %s", je.text, describe(q, r));
        if (r->status >= 400) {
            const char *e = json_string_value(json_object_get(j, "error"));
            const char *d = json_string_value(json_object_get(j, "detail"));
            cr_assert(json_is_object(j) && e && *e && d && *d, "an error without the error shape: %s",
                      describe(q, r));
            int at = q->n == &A ? 0 : 1;
            int routed_read = q->route && (!strcmp(q->route->name, "records_get") || !strcmp(q->route->name, "stream"));
            int body_token = q->route && (!strcmp(q->route->name, "tokens_revoke") ||   /* a token in the body */
                                          !strcmp(q->route->name, "federation_objects") ||
                                          !strcmp(q->route->name, "key_rotate"));
            if (credential_code(e) && !routed_read && !body_token)
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
            cr_assert_not_null(j, "a record line that does not parse: %s", describe(q, r));
            json_decref(j);
            l += n + (l[n] == '\n');
        }
}

/* ------------------------------------------------------------------ the run */

static double family_sum(h_node_t *n, const char *family)
{
    char url[300], head[128];
    snprintf(url, sizeof url, "%s/metrics", n->url);
    snprintf(head, sizeof head, "%s{", family);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "/metrics: %ld", r.status);
    double sum = 0;
    for (char *line = r.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, head, strlen(head)))
            sum += strtod(strchr(line, ' ') + 1, NULL);
    h_resp_free(&r);
    return sum;
}

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

Test(http_fuzz, random_requests_at_every_route_are_refused_or_served_and_change_nothing_stored)
{
    const char *s = getenv("TRIB_FUZZ_SEED"), *nv = getenv("TRIB_FUZZ_N");
    seed_used = s && *s ? strtoull(s, NULL, 10) : DEFAULT_SEED;
    int total = nv && *nv ? atoi(nv) : DEFAULT_N;
    rng_state = seed_used * 2654435761u + 1;
    long t0 = h_now_ms();
    setup_nodes();
    snapshot_all(before);
    double tok0[2] = {family_sum(&A, "trib_token_refused_total"), family_sum(&B, "trib_token_refused_total")};
    double acc0[2] = {family_sum(&A, "trib_access_refused_total"), family_sum(&B, "trib_access_refused_total")};
    double http0[2] = {refused_http(&A), refused_http(&B)};
    long t1 = h_now_ms();
    tally_t t = {0};
    for (request_no = 0; request_no < total; request_no++) {
        int k = (int)rn(100);
        kind_t kind = k < 78 ? K_ROUTE : k < 87 ? K_FRAMING : k < 93 ? K_RAW : K_HALF;
        req_t q = {0};
        resp_t r;
        build(&q, kind);
        if (kind == K_ROUTE && chance(8)) {   /* and a second request on its connection */
            req_t q2 = {0};
            build(&q2, K_ROUTE);
            q2.n = q.n;
            if (!q.library && !q2.library && !(q.route && q.route->live) && !(q2.route && q2.route->live) &&
                strstr(q.wire.p, "Connection: close\r\n")) {
                note(&q, "pipelined-1st");
                note(&q2, "pipelined-2nd");
                pipelined(&q, &q2, &t);
                t.pipelined++;
                req_free(&q);
                req_free(&q2);
                continue;
            }
            req_free(&q2);
        }
        exchange(&q, &r);
        check(&q, &r, &t);
        if (getenv("TRIB_FUZZ_TRACE") && q.kind == K_ROUTE)
            fprintf(stderr, "%d %s %s %.*s [%s] %s -> %ld %s\n", request_no, q.n->domain, q.method,
                    (int)(q.target.len < 150 ? q.target.len : 150), q.target.p, q.mutations, token_names[q.token],
                    r.status, shown(r.body.p ? r.body.p : "", r.body.len, 160));
        req_free(&q);
        b_free(&r.raw);
        b_free(&r.body);
    }
    long t2 = h_now_ms();
    /* still serving, at once */
    for (int i = 0; i < 2; i++) {
        h_node_t *n = i ? &B : &A;
        long a0 = h_now_ms(), st;
        char *b = get_body(n, "/v1/status", NULL, &st);
        cr_assert_eq(st, 200, "%s: /v1/status %ld after the run (seed %llu)", n->domain, st,
                     (unsigned long long)seed_used);
        cr_expect_lt(h_now_ms() - a0, 5000, "%s: /v1/status took %ld ms after the run", n->domain, h_now_ms() - a0);
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
        h_node_t *n = i ? &B : &A;
        double tok = family_sum(n, "trib_token_refused_total") - tok0[i];
        double acc = family_sum(n, "trib_access_refused_total") - acc0[i];
        double http = refused_http(n) - http0[i];
        cr_expect_geq(tok, (double)t.token_refusals[i], "%s: %g token refusals counted, %ld seen (seed %llu)",
                      n->domain, tok, t.token_refusals[i], (unsigned long long)seed_used);
        cr_expect_geq(acc, (double)t.access_refusals[i], "%s: %g access refusals counted, %ld seen (seed %llu)",
                      n->domain, acc, t.access_refusals[i], (unsigned long long)seed_used);
        cr_expect_gt(tok, 0, "%s: trib_token_refused_total did not move", n->domain);
        cr_expect_gt(http, 0, "%s: no 4xx counted in trib_http_requests_total", n->domain);
    }
    cr_expect_gt(family_sum(&A, "trib_access_refused_total") - acc0[0], 0, "trib_access_refused_total did not move");
    /* clean exits (under make asan: no report in either agent's log) */
    cr_expect_eq(h_node_stop(&B, SIGTERM), 0, "growth did not exit cleanly");
    cr_expect_eq(h_node_stop(&A, SIGTERM), 0, "payments did not exit cleanly");
    no_sanitizer_report(&A);
    no_sanitizer_report(&B);
    char line[1200];
    int l = snprintf(line, sizeof line, "http_fuzz: seed %llu, %d requests (route %ld, framing %ld, raw %ld, half %ld) "
                     "in %.1f s (setup %.1f s), %ld of them pairs on one connection; answered %ld (libmicrohttpd's doubled head: "
                     "%ld), closed without an answer %ld; statuses:",
                     (unsigned long long)seed_used, total, t.kinds[K_ROUTE], t.kinds[K_FRAMING], t.kinds[K_RAW],
                     t.kinds[K_HALF], (double)(t2 - t1) / 1000, (double)(t1 - t0) / 1000, t.pipelined, t.answered,
                     t.double_heads,
                     t.unanswered);
    for (int i = 100; i < 600 && l < (int)sizeof line - 20; i++)
        if (t.by_status[i])
            l += snprintf(line + l, sizeof line - (size_t)l, " %d:%ld", i, t.by_status[i]);
    fprintf(stderr, "%s\n", line);
    if (getenv("TRIB_FUZZ_VERBOSE"))   /* answers by route: 2xx 3xx 4xx 5xx */
        for (size_t i = 0; i < NROUTES; i++)
            fprintf(stderr, "  %-7s %-34s %4ld %4ld %4ld %4ld\n", routes[i].method, routes[i].pattern,
                    t.by_route[i][2], t.by_route[i][3], t.by_route[i][4], t.by_route[i][5]);
    for (int i = 0; i < 6; i++) {
        free(before[i].meta), free(before[i].records), free(before[i].relayed);
        free(after[i].meta), free(after[i].records), free(after[i].relayed);
    }
    for (int i = 0; i < T_COUNT; i++)
        free(tokens[i]);
}

/* ------------------------------------------------------------------ what the run found, pinned */

/* Sends one request as written (method, target, extra header lines, body) to n and checks the
 * answer is the API's JSON error: status and error code, a detail holding detail_has. */
static void expect_refusal(h_node_t *n, const char *method, const char *target, const char *headers,
                           const char *body, long status, const char *code, const char *detail_has)
{
    req_t q = {.kind = K_ROUTE, .n = n};
    snprintf(q.method, sizeof q.method, "%s", method);
    b_str(&q.target, target);
    b_fmt(&q.wire, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
          method, target, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    resp_t r;
    exchange(&q, &r);
    cr_assert_eq(r.status, status, "%s %s: %ld, want %ld: %s", method, target, r.status, status,
                 shown(r.raw.p ? r.raw.p : "", r.raw.len, 600));
    json_t *j = json_loadb(r.body.p ? r.body.p : "", r.body.len, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error")), *d = json_string_value(json_object_get(j, "detail"));
    cr_assert(e && !strcmp(e, code), "%s %s: error %s, want %s: %s", method, target, e, code,
              shown(r.body.p ? r.body.p : "", r.body.len, 600));
    cr_assert(d && strstr(d, detail_has), "%s %s: detail '%s' lacks '%s'", method, target, d, detail_has);
    json_decref(j);
    req_free(&q);
    b_free(&r.raw);
    b_free(&r.body);
}

/* A path, a product id or a query parameter that is not UTF-8 (%c0%af, %ff: libmicrohttpd decodes
 * them) was quoted into the error's detail as it was; jansson refuses such a string, the error
 * body came out NULL and the node closed the connection without an answer (found by the run,
 * seed 20261206, request 82: GET /v1/whoami%c0%af). Each is the API's JSON error now, the bytes
 * shown as '?'. */
Test(http_fuzz, a_path_or_parameter_that_is_not_utf8_gets_the_json_error)
{
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0);
    expect_refusal(&A, "GET", "/v1/whoami%c0%af", NULL, NULL, 404, "not_found", "no route GET /v1/whoami??");
    expect_refusal(&A, "GET", "/v1/whoami\xc0\xaf", NULL, NULL, 404, "not_found", "no route GET /v1/whoami??");
    expect_refusal(&A, "PATCH", "/v1/products/payments/%ff", NULL, NULL, 405, "method_not_allowed",
                   "PATCH /v1/products/payments/?: allowed methods are GET, HEAD, PUT, DELETE");
    expect_refusal(&A, "GET", "/v1/products/payments/%ff", NULL, NULL, 400, "bad_id", "'payments/?' is not a product id");
    expect_refusal(&A, "GET", "/v1/products?status=%ff", NULL, NULL, 400, "bad_query", "status: '?'");
    /* a parameter name cut at 40 bytes inside a two-byte character */
    expect_refusal(&A, "GET", "/v1/products?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%c3%a9=1", NULL, NULL, 400, "bad_query",
                   "unknown parameter");
    json_t *j = h_get_json(A.url, "/v1/status", NULL);
    cr_assert_not_null(j, "the node stopped serving");
    json_decref(j);
}

/* The access routes quoted a query value or an id of the path that is not UTF-8 into their
 * detail as it was: the error body came out NULL and the connection was closed without an
 * answer (found by the run, seed 20261206, request 2193: GET /v1/access/requests?state=%ff). */
Test(http_fuzz, an_access_route_quoting_bytes_that_are_not_utf8_gets_the_json_error)
{
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0);
    char h[4400];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", A.token);
    expect_refusal(&A, "GET", "/v1/access/requests?state=%ff", h, NULL, 400, "bad_query", "state: '?'");
    expect_refusal(&A, "POST", "/v1/access/requests/req-%ff%fe/grant", h, "{\"days\":1}", 400, "bad_id",
                   "'req-?\?' is not a request id");
    expect_refusal(&A, "POST", "/v1/access/grants/%c0%af/revoke", h, "{}", 400, "bad_id", "'?\?' is not a grant id");
    json_t *j = h_get_json(A.url, "/v1/status", NULL);
    cr_assert_not_null(j, "the node stopped serving");
    json_decref(j);
}

/* A manifest or policy set that is not UTF-8 text was refused as "manifest is empty": libfyaml
 * stops at the first such byte without an error, and the document read as empty (found probing
 * the bodies the run sends: PUT a manifest "\xff: [", POST /v1/policy the same). The refusal
 * names the byte and where it is. */
Test(http_fuzz, a_body_that_is_not_utf8_is_refused_as_such_not_as_empty)
{
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0);
    char h[4400];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\nContent-Type: application/yaml\r\n", A.token);
    expect_refusal(&A, "PUT", "/v1/products/payments/x", h, "\xff: [\n", 400, "bad_manifest",
                   "not UTF-8 text: byte 0xff at line 1, column 1");
    expect_refusal(&A, "PUT", "/v1/products/payments/x", h, "name: x\ndomain: payments\ntitle: caf\xc3\xa9 \xc3\n", 400,
                   "bad_manifest", "not UTF-8 text: byte 0xc3 at line 3, column 13");
    expect_refusal(&A, "POST", "/v1/products/payments/x/check", h, "name: x\n\xed\xa0\x80: 1\n", 400, "bad_manifest",
                   "not UTF-8 text: byte 0xed at line 2, column 1");
    expect_refusal(&A, "POST", "/v1/policy", h, "kind: governance.policyset\nversion: 1\n\xc0\xaf: x\n", 400, "bad_policy",
                   "not UTF-8 text: byte 0xc0 at line 3, column 1");
}

/* An empty policy set was refused as "manifest is empty" (the YAML reader's word for every empty
 * document): it names what is empty now. */
Test(http_fuzz, an_empty_policy_set_is_not_called_a_manifest)
{
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0);
    char h[4400];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\nContent-Type: application/yaml\r\n", A.token);
    expect_refusal(&A, "POST", "/v1/policy", h, "", 400, "bad_policy", "policy set: empty (no YAML document)");
    expect_refusal(&A, "POST", "/v1/policy", h, "# only a comment\n", 400, "bad_policy", "policy set: empty");
    expect_refusal(&A, "PUT", "/v1/products/payments/x", h, "# only a comment\n", 400, "bad_manifest", "manifest is empty");
}

/* Sends wire on one connection and reads to its end: the number of final (non-1xx) answers with
 * status want in it, the others counted in *other. */
static int answers_on_one_connection(h_node_t *n, const char *wire, size_t len, long want, int *other)
{
    int fd = connect_to(n);
    cr_assert_geq(fd, 0);
    cr_assert_eq(send(fd, wire, len, MSG_NOSIGNAL), (ssize_t)len);
    buf_t in = {0};
    char chunk[65536];
    ssize_t got;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, ANSWER_MS) == 1 && (got = recv(fd, chunk, sizeof chunk, 0)) > 0)
        b_put(&in, chunk, (size_t)got);
    close(fd);
    int hits = 0;
    *other = 0;
    for (const char *s = in.p; s && (s = strstr(s, "HTTP/1.1 ")); s += 9) {
        long st = strtol(s + 9, NULL, 10);
        if (st == want)
            hits++;
        else if (st >= 200)
            (*other)++;
    }
    b_free(&in);
    return hits;
}

/* A request with "Expect: 100-continue" whose body was all in (Content-Length: 0 here) when the
 * next request on the connection had already arrived got "100 Continue" and then nothing: the
 * node answered it from a call libmicrohttpd 0.9.75 makes while still reading the body, the
 * response could not be queued there, and the connection was closed ("Application reported
 * internal error"). Found by the run's pipelined pairs (seed 20261206, request 2099: GET
 * /v1/compliance?domain=%ff, Expect: 100-continue, Content-Length: 0, then a second request). */
Test(http_fuzz, a_request_expecting_100_continue_followed_by_another_on_its_connection_is_answered)
{
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0);
    static const char get2[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
                               "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int other;
    cr_expect_eq(answers_on_one_connection(&A, get2, sizeof get2 - 1, 200, &other), 2, "GET, then GET: %d others",
                 other);
    char wire[6000];
    const char *pol = "kind: governance.policyset\nversion: 3\nrules:\n  - id: owners.required\n    severity: warning\n"
                      "    type: required\n    paths: [owners.business]\n";
    int len = snprintf(wire, sizeof wire,
                       "POST /v1/policy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nExpect: 100-continue\r\n"
                       "Content-Length: %zu\r\n\r\n%sGET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       A.token, strlen(pol), pol);
    cr_expect_eq(answers_on_one_connection(&A, wire, (size_t)len, 200, &other), 2,
                 "POST with its body, then GET: %d others", other);
    json_t *j = h_get_json(A.url, "/v1/policy", NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "version")), 3, "the policy set was not taken");
    json_decref(j);
}
