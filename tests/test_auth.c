/* tests/test_auth.c - token enforcement against real `trib agent` processes (issue 11, DESIGN §13).
 *
 * Owns: DATA/admin.token (0600, refused when readable by others), writes without, with bad, with
 * another domain's, with a read and with an out-of-scope token, hostile tokens (every byte of a
 * token flipped in-process, a sample of them at the node, truncated, wrong prefix, expired,
 * not-yet-valid, signed by a key not bound to the domain), revocation of a token and of a block
 * (kept across a restart), the owner deciding on the token a relay forwards (a token revoked at
 * the owner, unknown to the relay), reads by classification (internal needs a token, restricted
 * is a stub and a 404), whoami, `trib token issue|revoke`, and random bytes as bearer tokens. Each
 * refusal: its status, its code, trib_token_refused_total{reason}, and the node still serving.
 * Must not: sleep to synchronise (polls with deadlines), or send a token where a test says none. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <unistd.h>
#include <jansson.h>

#include "gossip/charter.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "gossip/transport.h"
#include "proto/tributary.pb-c.h"
#include "node/auth.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"
#include <zmq.h>

#define HOUR 3600000LL

static void fini(void) { h_cleanup_all(); }
TestSuite(auth, .fini = fini, .timeout = 240);

/* One request with exactly this token (NULL: none); status, and the error code into kind. */
static long call(h_node_t *n, const char *method, const char *path, const char *ctype, const char *body,
                 const char *token, char kind[64])
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http_token(method, url, ctype, body, body ? strlen(body) : 0, token, &r), 0, "%s %s", method,
                 path);
    if (kind) {
        kind[0] = '\0';
        json_t *j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
        const char *k = json_string_value(json_object_get(j, "error"));
        if (k)
            snprintf(kind, 64, "%s", k);
        json_decref(j);
    }
    long st = r.status;
    h_resp_free(&r);
    return st;
}

static double refused(h_node_t *n, const char *reason)
{
    char series[128];
    snprintf(series, sizeof series, "trib_token_refused_total{reason=\"%s\"}", reason);
    return h_metric(n->url, series);
}

static void still_serves(h_node_t *n)
{
    json_t *j = h_get_json(n->url, "/v1/status", NULL);
    cr_assert_not_null(j, "the node stopped serving");
    json_decref(j);
}

/* Expects method path with token to be refused with status and code, counted under reason
 * (code, unless a 404 hides it). */
static void expect_refused(h_node_t *n, const char *method, const char *path, const char *ctype, const char *body,
                           const char *token, long status, const char *code, const char *reason)
{
    double before = refused(n, reason);
    char kind[64];
    long st = call(n, method, path, ctype, body, token, kind);
    cr_assert_eq(st, status, "%s %s: %ld %s, expected %ld %s", method, path, st, kind, status, code);
    cr_assert_str_eq(kind, code, "%s %s", method, path);
    cr_assert_eq(refused(n, reason), before + 1, "%s %s: refusal not counted as %s", method, path, reason);
    still_serves(n);
}

static char *manifest(const char *file)
{
    char *m = fx_read_example(file, NULL);
    cr_assert_not_null(m, "%s", file);
    return m;
}

static void publish(h_node_t *n, const char *file, const char *id)
{
    char *m = manifest(file), path[256];
    snprintf(path, sizeof path, "/v1/products/%s", id);
    long st = call(n, "PUT", path, "application/yaml", m, n->token, NULL);
    cr_assert(st == 200 || st == 201, "publish %s: %ld", id, st);
    free(m);
}

/* A token issued by the node (POST /v1/tokens with its admin token); malloc'd. */
static char *issue(h_node_t *n, const char *sub, const char *kind, long ttl_s, const char *product)
{
    char body[512], url[256];
    if (product)
        snprintf(body, sizeof body, "{\"sub\":\"%s\",\"kind\":\"%s\",\"ttl_s\":%ld,\"product\":\"%s\"}", sub, kind,
                 ttl_s, product);
    else
        snprintf(body, sizeof body, "{\"sub\":\"%s\",\"kind\":\"%s\",\"ttl_s\":%ld}", sub, kind, ttl_s);
    snprintf(url, sizeof url, "%s/v1/tokens", n->url);
    h_resp_t r;
    cr_assert_eq(h_http_token("POST", url, "application/json", body, strlen(body), n->token, &r), 0);
    cr_assert_eq(r.status, 201, "issue: %ld %s", r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    char *t = strdup(json_string_value(json_object_get(j, "token")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "subject")), sub);
    json_decref(j);
    h_resp_free(&r);
    return t;
}

static identity_t node_key(h_node_t *n)
{
    identity_t id;
    int created = 0;
    char err[256];
    cr_assert_eq(identity_load_or_create(n->dir, &id, &created, err, sizeof err), 0, "%s", err);
    cr_assert_eq(created, 0);
    return id;
}

#define PRODUCT "/v1/products/payments/settled-transactions"

/* payments (a), the owner of PRODUCT, published; growth (b) joined through it. */
static void owner_and_relay(h_node_t *a, h_node_t *b)
{
    cr_assert_eq(h_node_start(a, "payments", "--anti-entropy-ms", "200", NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(b, "growth", "--seed", a->peer, "--anti-entropy-ms", "200", NULL), 0,
                 "growth did not start");
    publish(a, "settled-transactions.yaml", "payments/settled-transactions");
    /* payments' entries can reach growth (pushed, or the join's first catalog round) before the
     * member entry naming payments' node does: a read routed then has no owner to go to (503
     * owner_unreachable, "no node of that domain is a member known here"). Reads through growth
     * wait for growth to list payments alive, not only for the product in its catalog. */
    cr_assert(h_wait_member(b->url, "payments", "alive", NULL, 15000), "growth does not see payments alive");
}

/* A read of path through relay via refused with status and code: the owner decided (and counted). */
static void expect_owner_refuses(h_node_t *owner, h_node_t *via, const char *path, const char *token, long status,
                                 const char *code)
{
    double owner_before = refused(owner, code), via_before = refused(via, code);
    char kind[64];
    cr_assert_eq(call(via, "GET", path, NULL, NULL, token, kind), status, "GET %s via %s: %s", path, via->domain,
                 kind);
    cr_assert_str_eq(kind, code, "GET %s via %s", path, via->domain);
    cr_assert_eq(refused(owner, code), owner_before + 1, "GET %s: the owner did not decide", path);
    cr_assert_eq(refused(via, code), via_before, "GET %s: the relay counted the owner's refusal", path);
}

/* ------------------------------------------------------------------ admin.token */

Test(auth, first_start_writes_admin_token_0600_and_the_node_refuses_one_others_can_read)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/admin.token", n.dir);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "admin.token mode %o", sb.st_mode & 0777);
    cr_assert(!strncmp(n.token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)));

    char url[256];
    snprintf(url, sizeof url, "%s/v1/whoami", n.url);
    h_resp_t r;
    cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, n.token, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(j, "subject")), "admin@payments");
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "admin");
    cr_assert_str_eq(json_string_value(json_object_get(j, "domain")), "payments");
    cr_assert_gt(json_integer_value(json_object_get(j, "expires_ms")), fx_now_ms() + 300LL * 86400000LL);
    json_decref(j);
    h_resp_free(&r);
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, NULL, 401, "token_required", "token_required");

    /* The token never reaches the log; its id may. */
    char *log = h_read_file(n.log, NULL);
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, n.token + 6), "the admin token is in the log");
    free(log);

    char keep[4200];
    snprintf(keep, sizeof keep, "%s", n.token);
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_neq(h_node_restart(&n), 0, "the node started with a world-readable admin.token");
    log = h_read_file(n.log, NULL);
    cr_assert(log && strstr(log, "admin.token"), "the refusal does not name admin.token");
    free(log);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    cr_assert_str_eq(n.token, keep, "a restart replaced the admin token");
    publish(&n, "settled-transactions.yaml", "payments/settled-transactions");
    h_node_cleanup(&n);
}

/* `trib get` of an internal product without a token: the refusal says how the CLI sends one, as a
 * write's does (it named only the HTTP header, which a CLI user does not write). */
Test(auth, a_read_without_a_token_says_how_the_cli_sends_one)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    publish(&n, "settled-transactions.yaml", "payments/settled-transactions");
    setenv("TRIB_TOKEN", "", 1);   /* h_trib: none */
    char *out = NULL, *err = NULL;
    int rc = h_trib(&n, NULL, &out, &err, "get", "payments/settled-transactions", NULL);
    unsetenv("TRIB_TOKEN");
    cr_assert_eq(rc, 1, "a read without a token: exit %d: %s", rc, err);
    cr_assert(strstr(err, "401 token_required") && strstr(err, "trib --token, --token-file or $TRIB_TOKEN"),
              "the refusal does not say how to send a token: %s", err);
    free(out), free(err);
    h_node_cleanup(&n);
}

/* ------------------------------------------------------------------ writes */

Test(auth, writes_need_a_write_token_of_the_owners_domain_in_scope)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char *m = manifest("settled-transactions.yaml");
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, NULL, 401, "token_required", "token_required");
    char *rd = issue(&n, "maria@payments", "read", 3600, NULL);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, rd, 403, "kind_insufficient", "kind_insufficient");
    char *narrow = issue(&n, "ci@payments", "write", 3600, "payments/disputes-*");
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, narrow, 403, "out_of_scope", "out_of_scope");
    char *wr = issue(&n, "ci@payments", "write", 3600, "payments/settled-*");
    char kind[64];
    cr_assert_eq(call(&n, "PUT", PRODUCT, "application/yaml", m, wr, kind), 201, "%s", kind);
    const char *rec = "{\"txn_id\":\"t1\",\"amount_minor\":1,\"currency\":\"EUR\",\"settled_at\":\"2026-11-24T10:00:00Z\"}\n";
    expect_refused(&n, "POST", PRODUCT "/records", "application/x-ndjson", rec, NULL, 401, "token_required",
                   "token_required");
    expect_refused(&n, "POST", PRODUCT "/records", "application/x-ndjson", rec, rd, 403, "kind_insufficient",
                   "kind_insufficient");
    cr_assert_eq(call(&n, "POST", PRODUCT "/records", "application/x-ndjson", rec, wr, kind), 201, "%s", kind);
    /* a read token reads; a write token may not issue tokens; retire needs write */
    cr_assert_eq(call(&n, "GET", PRODUCT "/records", NULL, NULL, rd, kind), 200, "%s", kind);
    expect_refused(&n, "POST", "/v1/tokens", "application/json",
                   "{\"sub\":\"x@payments\",\"kind\":\"admin\",\"ttl_s\":60}", wr, 403, "kind_insufficient",
                   "kind_insufficient");
    expect_refused(&n, "DELETE", PRODUCT, NULL, NULL, rd, 403, "kind_insufficient", "kind_insufficient");
    cr_assert_eq(call(&n, "DELETE", PRODUCT, NULL, NULL, wr, kind), 200, "%s", kind);
    free(m), free(rd), free(narrow), free(wr);
    h_node_cleanup(&n);
}

/* One HTTP/1.0 exchange with exactly these header lines (ending "\r\n"): the whole answer in out. */
static void raw_request(h_node_t *n, const char *method, const char *path, const char *headers, char *out,
                        size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->http_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to %d", n->http_port);
    char req[1024];
    int len = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: t\r\n%s\r\n", method, path, headers);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < cap - 1 && poll(&p, 1, 10000) == 1) {   /* HTTP/1.0: the node closes after the answer */
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    out[got] = '\0';
    close(fd);
}

Test(auth, another_scheme_than_bearer_is_named_in_the_401)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    static const struct { const char *method, *path, *auth, *want; } cases[] = {
        {"GET", "/v1/whoami", "Authorization: Basic dXNlcjpwYXNz\r\n", "the Authorization scheme Basic is not supported"},
        {"PUT", PRODUCT, "Authorization: Basic dXNlcjpwYXNz\r\n", "the Authorization scheme Basic is not supported"},
        {"GET", "/v1/access/mine", "Authorization: Digest username=\"x\"\r\n", "the Authorization scheme Digest is not"},
        {"GET", "/v1/whoami", "Authorization: Bearer\r\n", "says Bearer but holds no token"},
        {"GET", "/v1/whoami", "Authorization: \xc3\xa9t\xc3\xa9\r\n", "is not of the form 'Bearer <token>'"},
        {"GET", "/v1/whoami", "", "this needs a token (Authorization: Bearer trib1....; trib --token"},   /* none */
    };
    char out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double before = refused(&n, "token_required");
        raw_request(&n, cases[i].method, cases[i].path, cases[i].auth, out, sizeof out);
        cr_assert(strstr(out, " 401 "), "%s %s: %s", cases[i].method, cases[i].path, out);
        cr_assert(strcasestr(out, "\r\nWWW-Authenticate: Bearer\r\n"), "%s", out);
        const char *body = strstr(out, "\r\n\r\n");
        json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
        cr_assert(json_is_object(j), "not the JSON error: %s", out);
        cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "token_required");
        const char *d = json_string_value(json_object_get(j, "detail"));
        cr_assert(d && strstr(d, cases[i].want), "%s %s: %s", cases[i].method, cases[i].path, out);
        cr_assert(i == 5 || strstr(d, "send Authorization: Bearer <token>"), "%s", d);
        json_decref(j);
        cr_assert_eq(refused(&n, "token_required"), before + 1, "case %zu not counted", i);
    }
    /* a public route ignores a header it does not need */
    raw_request(&n, "GET", "/v1/status", "Authorization: Basic dXNlcjpwYXNz\r\n", out, sizeof out);
    cr_assert(strstr(out, " 200 "), "%s", out);
    h_node_cleanup(&n);
}

Test(auth, a_token_of_domain_a_never_writes_through_node_b)
{
    h_node_t a, b;
    owner_and_relay(&a, &b);
    cr_assert(h_wait_status(b.url, PRODUCT, NULL, 200, 20000));
    char *m = manifest("settled-transactions.yaml"), *g = manifest("growth-experiments.yaml");
    /* A's admin token at B: neither A's product nor B's */
    expect_refused(&b, "PUT", PRODUCT, "application/yaml", m, a.token, 403, "wrong_domain", "wrong_domain");
    expect_refused(&b, "PUT", "/v1/products/growth/growth-experiments", "application/yaml", g, a.token, 403,
                   "wrong_domain", "wrong_domain");
    const char *rec = "{\"txn_id\":\"t1\",\"amount_minor\":1,\"currency\":\"EUR\",\"settled_at\":\"2026-11-24T10:00:00Z\"}\n";
    expect_refused(&b, "POST", PRODUCT "/records", "application/x-ndjson", rec, a.token, 403, "wrong_domain",
                   "wrong_domain");
    /* B's admin token at A */
    expect_refused(&a, "PUT", PRODUCT, "application/yaml", m, b.token, 403, "wrong_domain", "wrong_domain");
    /* B's own token at B, for A's product: told where A's node is */
    char url[256], want[96];
    snprintf(url, sizeof url, "%s%s", b.url, PRODUCT);
    h_resp_t r;
    cr_assert_eq(h_http_token("PUT", url, "application/yaml", m, strlen(m), b.token, &r), 0);
    snprintf(want, sizeof want, "(trib --node http://127.0.0.1:%d)", a.http_port);
    cr_assert(r.status == 403 && r.body && strstr(r.body, "wrong_domain") && strstr(r.body, want),
              "a write of A's product at B does not name A's node %s: %ld %s", want, r.status, r.body);
    h_resp_free(&r);
    free(m), free(g);
    h_node_cleanup(&b);
    h_node_cleanup(&a);
}

/* ------------------------------------------------------------------ hostile tokens */

static int key_ok(void *ctx, const char *domain, const uint8_t key[ID_PK_LEN], int64_t t)
{
    (void)t;
    const identity_t *id = ctx;
    return !strcmp(domain, "payments") && !memcmp(key, id->pk, ID_PK_LEN);
}

Test(auth, hostile_tokens_are_refused_with_their_code_and_counted)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    publish(&n, "settled-transactions.yaml", "payments/settled-transactions");
    identity_t key = node_key(&n);
    char *good = issue(&n, "ci@payments", "write", 3600, NULL);
    size_t len = strlen(good);

    /* Every byte flipped once, against the verifier with the node's key: none verifies. */
    char *t = strdup(good);
    token_claims_t c;
    for (size_t i = 0; i < len; i++) {
        t[i] ^= 0x01;
        cr_assert_neq(token_verify(t, len, fx_now_ms(), key_ok, &key, &c, NULL, 0), TOKEN_OK, "byte %zu flipped", i);
        t[i] ^= 0x01;
    }
    cr_assert_eq(token_verify(t, len, fx_now_ms(), key_ok, &key, &c, NULL, 0), TOKEN_OK);
    /* ... and a sample of them at the node: 401 token_invalid each, counted. */
    for (size_t i = 7; i < len; i += len / 12) {
        t[i] ^= 0x01;
        expect_refused(&n, "GET", PRODUCT "/records", NULL, NULL, t, 401, "token_invalid", "token_invalid");
        t[i] ^= 0x01;
    }
    /* truncated, wrong prefix */
    t[len / 2] = '\0';
    expect_refused(&n, "GET", PRODUCT "/records", NULL, NULL, t, 401, "token_invalid", "token_invalid");
    free(t);
    char wrong[4200];
    snprintf(wrong, sizeof wrong, "trib2.%s", good + 6);
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, wrong, 401, "token_invalid", "token_invalid");

    /* expired and not yet valid, signed by the node's own key */
    char *m = manifest("settled-transactions.yaml"), *tok = NULL, err[256];
    token_spec_t old = {.subject = "ci@payments", .kind = TOKEN_KIND_WRITE, .issued_ms = fx_now_ms() - 3 * HOUR,
                        .expires_ms = fx_now_ms() - 2 * HOUR};
    cr_assert_eq(token_issue(&key, "payments", &old, &tok, err, sizeof err), 0, "%s", err);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, tok, 401, "token_expired", "token_expired");
    free(tok);
    token_spec_t future = {.subject = "ci@payments", .kind = TOKEN_KIND_WRITE, .issued_ms = fx_now_ms() + 2 * HOUR,
                           .expires_ms = fx_now_ms() + 3 * HOUR};
    cr_assert_eq(token_issue(&key, "payments", &future, &tok, err, sizeof err), 0, "%s", err);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, tok, 401, "token_invalid", "token_invalid");
    free(tok);

    /* a well-formed token for payments signed by a key that is not payments' */
    identity_t rogue;
    memset(&rogue, 0, sizeof rogue);
    crypto_sign_keypair(rogue.pk, rogue.sk);
    token_spec_t spec = {.subject = "admin@payments", .kind = TOKEN_KIND_ADMIN, .issued_ms = fx_now_ms(),
                         .expires_ms = fx_now_ms() + HOUR};
    cr_assert_eq(token_issue(&rogue, "payments", &spec, &tok, err, sizeof err), 0, "%s", err);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, tok, 401, "token_invalid", "token_invalid");
    expect_refused(&n, "POST", "/v1/tokens", "application/json",
                   "{\"sub\":\"x@payments\",\"kind\":\"admin\",\"ttl_s\":60}", tok, 401, "token_invalid",
                   "token_invalid");
    free(tok);

    /* payments' own key speaking for a person of another domain (whose grants it would use) */
    token_spec_t imp = {.subject = "alice@growth", .kind = TOKEN_KIND_READ, .issued_ms = fx_now_ms(),
                        .expires_ms = fx_now_ms() + HOUR};
    cr_assert_eq(token_issue(&key, "payments", &imp, &tok, err, sizeof err), 0, "%s", err);
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, tok, 401, "token_invalid", "token_invalid");
    free(tok);
    char kind0[64];
    cr_assert_eq(call(&n, "POST", "/v1/tokens", "application/json",
                      "{\"sub\":\"alice@growth\",\"kind\":\"read\",\"ttl_s\":60}", n.token, kind0), 400);

    /* a token of a domain no member of this federation is (another federation's node) */
    token_spec_t far = {.subject = "eve@stranger", .kind = TOKEN_KIND_READ, .issued_ms = fx_now_ms(),
                        .expires_ms = fx_now_ms() + HOUR};
    cr_assert_eq(token_issue(&rogue, "stranger", &far, &tok, err, sizeof err), 0, "%s", err);
    expect_refused(&n, "GET", PRODUCT "/records", NULL, NULL, tok, 401, "token_invalid", "token_invalid");
    free(tok);

    /* an attenuation that tries to widen is refused where it is made */
    char *narrow = NULL;
    token_narrow_t nw = {.kind = TOKEN_KIND_READ};
    cr_assert_eq(token_attenuate(good, &nw, fx_now_ms(), &narrow, err, sizeof err), 0, "%s", err);
    char *wide = NULL;
    token_narrow_t up = {.kind = TOKEN_KIND_WRITE};
    cr_assert_neq(token_attenuate(narrow, &up, fx_now_ms(), &wide, err, sizeof err), 0, "read widened to write");
    token_narrow_t longer = {.expires_ms = fx_now_ms() + 48 * HOUR};
    cr_assert_neq(token_attenuate(narrow, &longer, fx_now_ms(), &wide, err, sizeof err), 0, "expiry widened");
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, narrow, 403, "kind_insufficient", "kind_insufficient");
    free(narrow);

    /* the genuine token still works and the node serves */
    char kind[64];
    cr_assert_eq(call(&n, "PUT", PRODUCT, "application/yaml", m, good, kind), 200, "%s", kind);
    free(m), free(good);
    identity_wipe(&key);
    h_node_cleanup(&n);
}

/* The 401 says which token expired, whose, and when, as a time a person reads (it said "expired
 * at 1796532020640 (unix ms)" when the token was in the node's cache, and neither the token nor
 * its subject otherwise); the same from a fresh verification and from the cache. */
static void expect_expired_detail(h_node_t *n, const char *tok, const char *tok_id, const char *when)
{
    long st = 0;
    json_t *j = h_call("GET", n->url, "/v1/whoami", tok, NULL, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "token_expired");
    const char *d = json_string_value(json_object_get(j, "detail"));
    cr_assert(d && strstr(d, tok_id) && strstr(d, "old@payments") && strstr(d, when), "detail: %s", d ? d : "-");
    json_decref(j);
}

static int whoami_refuses(void *ctx)
{
    void **a = ctx;
    long st = 0;
    json_decref(h_call("GET", ((h_node_t *)a[0])->url, "/v1/whoami", a[1], NULL, &st));
    return st == 401;
}

Test(auth, an_expired_token_is_refused_naming_it_and_when_it_expired)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    identity_t key = node_key(&n);
    char *tok = NULL, err[256], when[32];
    token_claims_t c;
    /* expired two hours ago: refused by a fresh verification */
    token_spec_t old = {.subject = "old@payments", .kind = TOKEN_KIND_READ, .issued_ms = fx_now_ms() - 3 * HOUR,
                        .expires_ms = fx_now_ms() - 2 * HOUR};
    cr_assert_eq(token_issue(&key, "payments", &old, &tok, err, sizeof err), 0, "%s", err);
    cr_assert_eq(token_inspect(tok, strlen(tok), fx_now_ms(), &c, NULL, 0), TOKEN_EXPIRED);
    trust_time_text(old.expires_ms, when);
    expect_expired_detail(&n, tok, c.id, when);
    free(tok);
    /* expired 55 s ago: still inside the 60 s clock skew, so served and cached; then refused from
     * the cache once the skew is over too */
    token_spec_t late = {.subject = "old@payments", .kind = TOKEN_KIND_READ, .issued_ms = fx_now_ms() - HOUR,
                         .expires_ms = fx_now_ms() - 55000};
    cr_assert_eq(token_issue(&key, "payments", &late, &tok, err, sizeof err), 0, "%s", err);
    cr_assert_eq(token_inspect(tok, strlen(tok), fx_now_ms(), &c, NULL, 0), TOKEN_OK);
    long st = 0;
    json_decref(h_call("GET", n.url, "/v1/whoami", tok, NULL, &st));
    cr_assert_eq(st, 200, "a token inside the clock skew allowance is served");
    void *ctx[2] = {&n, tok};
    cr_assert(h_wait(whoami_refuses, ctx, 15000), "the token was still served after its skew allowance");
    trust_time_text(late.expires_ms, when);
    expect_expired_detail(&n, tok, c.id, when);
    free(tok);
    h_node_cleanup(&n);
}

Test(auth, random_bytes_as_bearer_tokens)
{
    /* in-process: the header parsers and the verifier on random input, bounded */
    unsigned char buf[600];
    for (int i = 0; i < 20000; i++) {
        size_t l = randombytes_uniform(sizeof buf - 1);
        randombytes_buf(buf, l);
        if (i % 4 == 3)
            memcpy(buf, "Basic ", l > 6 ? 6 : l);
        else if (i % 2)
            memcpy(buf, "Bearer trib1.", l > 13 ? 13 : l);
        buf[l] = '\0';
        size_t tl = 0;
        const char *t = auth_bearer((const char *)buf, &tl);
        /* what a 401 says of the header: printable text only (it goes into JSON and logs), never
         * for a header that holds a token */
        char said[300];
        if (auth_scheme_problem((const char *)buf, said, sizeof said)) {
            cr_assert_null(t, "a Bearer token was called a scheme problem: %s", said);
            cr_assert(strstr(said, "send Authorization: Bearer <token>"), "%s", said);
            for (const char *p = said; *p; p++)
                cr_assert(*p >= 0x20 && *p < 0x7f, "a byte of the header in the 401: %s", said);
        }
        if (t) {
            cr_assert_leq(tl, l);
            token_claims_t c;
            cr_assert_neq(token_verify(t, tl, fx_now_ms(), NULL, NULL, &c, NULL, 0), TOKEN_OK);
        }
    }
    /* the catalog scan's protobuf field walker on random bytes: in bounds or nothing */
    for (int i = 0; i < 20000; i++) {
        size_t l = randombytes_uniform(sizeof buf);
        randombytes_buf(buf, l);
        const uint8_t *f = NULL;
        size_t fl = 0;
        if (auth_pb_field(buf, l, 1 + randombytes_uniform(9), &f, &fl))
            cr_assert(f >= buf && f + fl <= buf + l, "field outside the message");
    }
    /* ... and it finds a revocation in a real entry */
    Trib__TokenRevocation tr = TRIB__TOKEN_REVOCATION__INIT;
    uint8_t sig[64] = {1};
    tr.revocation_id = (ProtobufCBinaryData){64, sig};
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    ce.domain = "payments";
    ce.seq = 7;
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOKEN_REVOKE;
    ce.token_revoke = &tr;
    uint8_t packed[300];
    size_t pl = trib__catalog_entry__pack(&ce, packed);
    const uint8_t *f = NULL;
    size_t fl = 0;
    cr_assert(auth_pb_field(packed, pl, 8, &f, &fl));
    Trib__TokenRevocation *back = trib__token_revocation__unpack(NULL, fl, f);
    cr_assert(back && back->revocation_id.len == 64 && back->revocation_id.data[0] == 1);
    trib__token_revocation__free_unpacked(back, NULL);
    cr_assert_not(auth_pb_field(packed, pl, 5, &f, &fl), "a manifest found in a revocation entry");
    /* at the node: base64url garbage after the prefix */
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    for (int i = 0; i < 30; i++) {
        char tok[300] = "trib1.";
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t l = 1 + randombytes_uniform(250);
        for (size_t k = 0; k < l; k++)
            tok[6 + k] = al[randombytes_uniform(64)];
        tok[6 + l] = '\0';
        expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, tok, 401, "token_invalid", "token_invalid");
    }
    h_node_cleanup(&n);
}

/* ------------------------------------------------------------------ revocation */

static void revoke_at(h_node_t *n, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/tokens/revoke", n->url);
    h_resp_t r;
    cr_assert_eq(h_http_token("POST", url, "application/json", body, strlen(body), n->token, &r), 0);
    cr_assert_eq(r.status, 200, "revoke: %ld %s", r.status, r.body);
    cr_assert(strstr(r.body, "\"state\":\"revoked\""), "%s", r.body);
    h_resp_free(&r);
}

Test(auth, revoked_tokens_and_blocks_are_refused_also_after_a_restart)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    publish(&n, "settled-transactions.yaml", "payments/settled-transactions");
    char *m = manifest("settled-transactions.yaml"), err[256], kind[64];
    char *t = issue(&n, "ci@payments", "write", 3600, NULL), *t2 = NULL;
    token_narrow_t nw = {.product = "payments/settled-*"};
    cr_assert_eq(token_attenuate(t, &nw, fx_now_ms(), &t2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(call(&n, "PUT", PRODUCT, "application/yaml", m, t2, kind), 200, "%s", kind); /* cached as valid */
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", t);
    revoke_at(&n, body);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, t, 401, "token_revoked", "token_revoked");
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, t2, 401, "token_revoked", "token_revoked");

    /* a block by its revocation id: block 0 of another token ends its attenuations too */
    char *u = issue(&n, "job@payments", "write", 3600, NULL), *u2 = NULL;
    cr_assert_eq(token_attenuate(u, &nw, fx_now_ms(), &u2, err, sizeof err), 0, "%s", err);
    token_claims_t c;
    cr_assert_eq(token_inspect(u2, strlen(u2), fx_now_ms(), &c, err, sizeof err), TOKEN_OK, "%s", err);
    char hex[2 * TOKEN_SIG_LEN + 1];
    token_revocation_hex(c.revocation_ids[0], hex);
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", hex);
    revoke_at(&n, body);
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, u2, 401, "token_revoked", "token_revoked");
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, u, 401, "token_revoked", "token_revoked");

    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", m, t, 401, "token_revoked", "token_revoked");
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, u2, 401, "token_revoked", "token_revoked");
    cr_assert_eq(call(&n, "PUT", PRODUCT, "application/yaml", m, n.token, kind), 200, "%s", kind);
    free(m), free(t), free(t2), free(u), free(u2);
    h_node_cleanup(&n);
}

/* A token revoked again (the same token, its id, its block's revocation id; also after a restart)
 * is 409 already_revoked, as a grant revoked twice is, and signs nothing: each repeat used to answer
 * 200 "revoked" and append one more TokenRevocation entry to the domain's catalog log, gossiped to
 * every node (and one more line to DATA/revoked.tokens). */
static long digest_of(h_node_t *n)
{
    json_t *s = h_get_json(n->url, "/v1/status", NULL);
    long v = (long)json_integer_value(json_object_get(json_object_get(s, "digest"), n->domain));
    json_decref(s);
    return v;
}

static void revoke_again(h_node_t *n, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/tokens/revoke", n->url);
    h_resp_t r;
    cr_assert_eq(h_http_token("POST", url, "application/json", body, strlen(body), n->token, &r), 0);
    cr_expect_eq(r.status, 409, "revoked again: %ld %s", r.status, r.body);
    cr_expect(r.body && strstr(r.body, "\"already_revoked\""), "%s", r.body);
    h_resp_free(&r);
}

Test(auth, a_token_revoked_again_is_409_and_signs_nothing)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char *t = issue(&n, "ci@payments", "read", 3600, NULL), err[256];
    token_claims_t c;
    cr_assert_eq(token_inspect(t, strlen(t), fx_now_ms(), &c, err, sizeof err), TOKEN_OK, "%s", err);
    char body[4400], byid[128], byrev[300], hex[2 * TOKEN_SIG_LEN + 1];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", t);
    snprintf(byid, sizeof byid, "{\"id\":\"%s\"}", c.id);
    token_revocation_hex(c.revocation_ids[0], hex);
    snprintf(byrev, sizeof byrev, "{\"id\":\"%s\"}", hex);
    long before = digest_of(&n);
    revoke_at(&n, body);
    cr_assert_eq(digest_of(&n), before + 1, "the revocation is one entry of the domain's log");
    revoke_again(&n, body);
    revoke_again(&n, byid);
    revoke_again(&n, byrev);
    cr_expect_eq(digest_of(&n), before + 1, "a revocation asked again signed another entry");
    /* an id of neither form is a bad request saying so; a well-formed unknown one is not found */
    char url[256];
    snprintf(url, sizeof url, "%s/v1/tokens/revoke", n.url);
    h_resp_t r;
    cr_assert_eq(h_http_token("POST", url, "application/json", "{\"id\":\"garbage\"}", 16, n.token, &r), 0);
    cr_expect_eq(r.status, 400, "a malformed id: %ld %s", r.status, r.body);
    cr_expect(r.body && strstr(r.body, "\"bad_request\"") && strstr(r.body, "'garbage' is neither a token id"),
              "%s", r.body);
    h_resp_free(&r);
    const char *unknown = "{\"id\":\"0123456789abcdef0123456789abcdef\"}";
    cr_assert_eq(h_http_token("POST", url, "application/json", unknown, strlen(unknown), n.token, &r), 0);
    cr_expect_eq(r.status, 404, "an unknown id: %ld %s", r.status, r.body);
    h_resp_free(&r);
    char *out = NULL, *errout = NULL;
    cr_expect_eq(h_trib(&n, NULL, &out, &errout, "token", "revoke", "garbage", NULL), 1);
    cr_expect(errout && strstr(errout, "400 bad_request"), "%s", errout ? errout : "");
    free(out), free(errout);
    cr_expect_eq(h_trib(&n, NULL, &out, &errout, "token", "revoke", t, NULL), 1);
    cr_expect(errout && strstr(errout, "409 already_revoked"), "%s", errout ? errout : "");
    free(out), free(errout);
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    revoke_again(&n, body);
    cr_expect_eq(digest_of(&n), before + 1, "after a restart, a revocation asked again signed another entry");
    char path[400];
    snprintf(path, sizeof path, "%s/revoked.tokens", n.dir);
    char *file = h_read_file(path, NULL);
    cr_expect(file && strlen(file) == 2 * TOKEN_SIG_LEN + 1, "revoked.tokens: %s", file ? file : "(none)");
    free(file);
    free(t);
    h_node_cleanup(&n);
}

/* ------------------------------------------------------------------ reads, routed: the owner decides */

Test(auth, the_owner_decides_on_the_token_a_relay_forwards)
{
    h_node_t a, b;
    owner_and_relay(&a, &b);
    const char *rec = "{\"txn_id\":\"t1\",\"amount_minor\":1,\"currency\":\"EUR\",\"settled_at\":\"2026-11-24T10:00:00Z\"}\n";
    char kind[64];
    cr_assert_eq(call(&a, "POST", PRODUCT "/records", "application/x-ndjson", rec, a.token, kind), 201, "%s", kind);
    cr_assert(h_wait_status(b.url, PRODUCT, NULL, 200, 20000));

    /* internal: no token -> the owner's 401, counted at the owner, not the relay */
    expect_refused(&a, "GET", PRODUCT "/records", NULL, NULL, NULL, 401, "token_required", "token_required");
    expect_owner_refuses(&a, &b, PRODUCT "/records", NULL, 401, "token_required");
    cr_assert_eq(call(&b, "GET", PRODUCT "/stream", NULL, NULL, NULL, kind), 401);
    cr_assert_str_eq(kind, "token_required");

    /* a valid token of the relay's domain reads (any federation token reads internal) */
    cr_assert_eq(call(&b, "GET", PRODUCT "/records", NULL, NULL, b.token, kind), 200, "%s", kind);
    /* a tampered one is refused by the owner */
    char *t = strdup(b.token);
    t[strlen(t) - 3] ^= 0x01;
    expect_owner_refuses(&a, &b, PRODUCT "/records", t, 401, "token_invalid");
    free(t);

    /* a token the owner revoked, which the relay knows nothing of: the owner refuses it */
    char *rd = issue(&a, "maria@payments", "read", 3600, NULL);
    cr_assert_eq(call(&b, "GET", PRODUCT "/records", NULL, NULL, rd, kind), 200, "%s", kind);
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", rd);
    revoke_at(&a, body);
    expect_owner_refuses(&a, &b, PRODUCT "/records", rd, 401, "token_revoked");
    cr_assert_eq(call(&b, "GET", PRODUCT "/stream", NULL, NULL, rd, kind), 401);
    cr_assert_str_eq(kind, "token_revoked");
    /* out of scope */
    char *other = issue(&a, "maria@payments", "read", 3600, "payments/disputes-*");
    expect_owner_refuses(&a, &b, PRODUCT "/records", other, 403, "out_of_scope");
    still_serves(&a);
    still_serves(&b);
    free(rd), free(other);
    h_node_cleanup(&b);
    h_node_cleanup(&a);
}

Test(auth, restricted_products_are_stubs_and_404s_without_a_grant)
{
    h_node_t g, p;
    cr_assert_eq(h_node_start(&g, "growth", "--anti-entropy-ms", "200", NULL), 0);
    cr_assert_eq(h_node_start(&p, "payments", "--seed", g.peer, "--anti-entropy-ms", "200", NULL), 0);
    publish(&g, "signup-funnel.yaml", "growth/signup-funnel");
    cr_assert(h_wait_status(p.url, "/v1/products/growth/signup-funnel", NULL, 200, 20000));
    char url[256];
    /* anyone without a grant sees a stub, in the listing and the product */
    for (int i = 0; i < 2; i++) {
        h_node_t *n = i ? &p : &g;
        snprintf(url, sizeof url, "%.100s/v1/products/growth/signup-funnel", n->url);
        h_resp_t r;
        cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, i ? p.token : NULL, &r), 0);
        cr_assert_eq(r.status, 200);
        json_t *j = json_loads(r.body, 0, NULL);
        cr_assert(json_is_true(json_object_get(j, "stub")), "not a stub: %s", r.body);
        cr_assert_str_eq(json_string_value(json_object_get(j, "classification")), "restricted");
        cr_assert_null(json_object_get(j, "manifest"));
        cr_assert_not_null(json_object_get(j, "owners"));
        json_decref(j);
        h_resp_free(&r);
        snprintf(url, sizeof url, "%.100s/v1/products?q=signup", n->url);
        cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, NULL, &r), 0);
        cr_assert(strstr(r.body, "\"stub\":true") && !strstr(r.body, "\"tags\""), "%s", r.body);
        h_resp_free(&r);
    }
    /* trib show says what a stub is and how to ask for more (it printed "stub true" under rows of "-") */
    char *out = NULL, *err = NULL;
    cr_assert_eq(h_trib(&p, NULL, &out, &err, "show", "growth/signup-funnel", "--token", p.token, NULL), 0, "%s", err);
    cr_assert(strstr(out, "restricted: without a grant") &&
              strstr(out, "trib access request growth/signup-funnel") && !strstr(out, "stub") &&
              !strstr(out, "signer"), "%s", out);
    free(out), free(err);
    /* records: 404 to a caller without a grant, on the owner and through another node */
    double before = refused(&g, "token_required");
    char kind[64];
    cr_assert_eq(call(&g, "GET", "/v1/products/growth/signup-funnel/records", NULL, NULL, NULL, kind), 404);
    cr_assert_str_eq(kind, "not_found");
    cr_assert_eq(refused(&g, "token_required"), before + 1);
    before = refused(&g, "grant_required");
    cr_assert_eq(call(&p, "GET", "/v1/products/growth/signup-funnel/records", NULL, NULL, p.token, kind), 404);
    cr_assert_str_eq(kind, "not_found");
    cr_assert_eq(refused(&g, "grant_required"), before + 1, "the owner did not count the missing grant");
    /* the owner's own domain sees it whole */
    snprintf(url, sizeof url, "%s/v1/products/growth/signup-funnel", g.url);
    h_resp_t r;
    cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, g.token, &r), 0);
    cr_assert(!strstr(r.body, "\"stub\":true") && strstr(r.body, "\"manifest\""), "%s", r.body);
    h_resp_free(&r);
    cr_assert_eq(call(&g, "GET", "/v1/products/growth/signup-funnel/records", NULL, NULL, g.token, kind), 200, "%s",
                 kind);
    still_serves(&g);
    h_node_cleanup(&p);
    h_node_cleanup(&g);
}

/* ------------------------------------------------------------------ CLI */

Test(auth, trib_token_issue_prints_only_the_token_and_revoke_ends_it)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char *out = NULL, *err = NULL;
    int rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--sub", "ci@payments", "--kind", "write", "--ttl", "24h",
                    NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(!strncmp(out, TOKEN_PREFIX, 6), "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "more than the token on stdout: %s", out);
    out[strlen(out) - 1] = '\0';
    char *tok = out;
    free(err);
    char kind[64];
    cr_assert_eq(call(&n, "GET", "/v1/whoami", NULL, NULL, tok, kind), 200, "%s", kind);

    rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--sub", "maria@payments", "--kind", "read", "--ttl", "1h",
                "--product", "payments/settled-*", "--json", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(json_object_get(j, "id"), "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "valid");
    cr_assert_str_eq(json_string_value(json_object_get(j, "scope")), "payments/settled-*");
    json_decref(j);
    free(out), free(err);

    rc = h_trib(&n, NULL, &out, &err, "token", "revoke", tok, "--json", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    j = json_loads(out, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "revoked", "%s", out);
    json_decref(j);
    free(out), free(err);
    expect_refused(&n, "GET", "/v1/whoami", NULL, NULL, tok, 401, "token_revoked", "token_revoked");

    /* without a token the node says what is missing */
    setenv("TRIB_TOKEN", "", 1);
    rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--sub", "x@payments", "--kind", "read", "--ttl", "1h", NULL);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, "token_required"), "%s", err);
    free(out), free(err);
    /* --token-file: the admin token file itself */
    char path[400];
    snprintf(path, sizeof path, "%s/admin.token", n.dir);
    rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--token-file", path, "--sub", "x@payments", "--kind", "read",
                "--ttl", "1h", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out), free(err);
    rc = h_trib(&n, NULL, &out, &err, "status", "--token", tok, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out), free(err);
    /* each mistake named as such: a missing --ttl is not "a bad duration", a bad value is quoted,
     * and a subject of another domain is told the form this node takes */
    static const struct { const char *opt, *val, *says; int rc; } bad[] = {
        { "--kind", "read", "--ttl DURATION is required", 2 },
        { "--ttl", "1h", "--kind KIND is required", 2 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--token-file", path, "--sub", "x@payments", bad[i].opt,
                    bad[i].val, NULL);
        cr_assert_eq(rc, bad[i].rc, "%s", err);
        cr_assert(strstr(err, bad[i].says), "%s", err);
        free(out), free(err);
    }
    rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--token-file", path, "--sub", "x@payments", "--kind", "read",
                "--ttl", "5x", NULL);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "--ttl '5x'"), "%s", err);
    free(out), free(err);
    rc = h_trib(&n, NULL, &out, &err, "token", "issue", "--token-file", path, "--sub", "ana@growth", "--kind", "read",
                "--ttl", "1h", NULL);
    cr_assert_eq(rc, 1);
    /* the node's refusal as every command prints one: STATUS CODE: DETAIL */
    cr_assert(!strncmp(err, "trib: token issue: 400 bad_request: sub: ", 41) && strstr(err, "give NAME@payments"),
              "%s", err);
    free(out), free(err);
    unsetenv("TRIB_TOKEN");
    free(tok);
    h_node_cleanup(&n);
}

/* ------------------------------------------------------------------ revocations travel by gossip */

typedef struct {
    h_node_t *via;
    const char *token;
} revoked_ctx_t;

static int refused_revoked(void *ctx)
{
    revoked_ctx_t *r = ctx;
    char kind[64];
    return call(r->via, "GET", PRODUCT "/records", NULL, NULL, r->token, kind) == 401 &&
           !strcmp(kind, "token_revoked");
}

Test(auth, a_revocation_reaches_the_owner_of_the_product_by_gossip)
{
    h_node_t a, b;
    owner_and_relay(&a, &b);
    publish(&b, "growth-experiments.yaml", "growth/growth-experiments");
    cr_assert(h_wait_status(b.url, PRODUCT, NULL, 200, 20000));
    /* growth issues a token to its analyst, who reads payments' internal product through growth */
    char *alice = issue(&b, "alice@growth", "read", 3600, NULL), kind[64];
    cr_assert_eq(call(&b, "GET", PRODUCT "/records", NULL, NULL, alice, kind), 200, "%s", kind);
    cr_assert_eq(call(&a, "GET", PRODUCT "/records", NULL, NULL, alice, kind), 200, "%s", kind);
    /* growth revokes it: the owner, payments, learns it from growth's log and refuses it */
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", alice);
    double before = refused(&a, "token_revoked");
    revoke_at(&b, body);
    revoked_ctx_t rc = {&a, alice};
    cr_assert(h_wait(refused_revoked, &rc, 15000), "payments still accepts the token growth revoked");
    cr_assert_gt(refused(&a, "token_revoked"), before);
    revoked_ctx_t rb = {&b, alice};
    cr_assert(refused_revoked(&rb), "the read through growth was not refused by the owner");
    /* the revocation is an entry of growth's log, not a product: the catalog goes on replicating */
    json_t *st = h_get_json(a.url, "/v1/products/growth/growth-experiments", NULL);
    cr_assert_not_null(st, "growth's product is gone from payments' catalog");
    json_decref(st);
    publish(&b, "signup-funnel.yaml", "growth/signup-funnel");
    cr_assert(h_wait_status(a.url, "/v1/products/growth/signup-funnel", NULL, 200, 20000),
              "growth's log stopped replicating after the revocation entry");
    /* payments cannot revoke growth's tokens: its own revocation of a growth token is refused */
    char *bob = issue(&b, "bob@growth", "read", 3600, NULL);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", bob);
    cr_assert_eq(call(&a, "POST", "/v1/tokens/revoke", "application/json", body, a.token, kind), 403);
    cr_assert_str_eq(kind, "wrong_domain");
    cr_assert_eq(call(&a, "GET", PRODUCT "/records", NULL, NULL, bob, kind), 200, "%s", kind);
    free(alice), free(bob);
    h_node_cleanup(&b);
    h_node_cleanup(&a);
}

/* ------------------------------------------------------------------ TLS */

typedef struct {
    const char *base;
    double want, got;
} tls_metric_t;

static int tls_metric_reaches(void *ctx)
{
    tls_metric_t *t = ctx;
    t->got = h_metric(t->base, "trib_http_tls_failed_total");
    return t->got >= t->want;
}

Test(auth, the_api_over_https_with_tls_cert_and_key)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        cr_skip_test("openssl (to make a test certificate) is not installed");
    char dir[] = "/tmp/trib-tls-XXXXXX", cmd[1024], cert[128], key[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1 && chmod 600 %s",
             key, cert, key);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");

    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", "--tls-cert", cert, "--tls-key", key, NULL), 0, "no https node");
    cr_assert(!strncmp(n.url, "https://", 8));
    publish(&n, "settled-transactions.yaml", "payments/settled-transactions");
    expect_refused(&n, "PUT", PRODUCT, "application/yaml", "x", NULL, 401, "token_required", "token_required");
    /* plain HTTP to the same port gets no answer from the API */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/status", n.http_port);
    h_resp_t r;
    int rc = h_http_token("GET", url, NULL, NULL, 0, NULL, &r);
    cr_assert(rc != 0 || r.status != 200, "plain HTTP was answered on the https port");
    h_resp_free(&r);
    /* each is counted; the log says what happened, rate-limited, not libmicrohttpd's GnuTLS text */
    long t0 = h_now_ms();
    for (int i = 0; i < 20; i++) {
        rc = h_http_token("GET", url, NULL, NULL, 0, NULL, &r);
        cr_assert(rc != 0 || r.status != 200);
        h_resp_free(&r);
    }
    tls_metric_t tm = {.base = n.url, .want = 21};
    cr_assert(h_wait(tls_metric_reaches, &tm, 20000), "trib_http_tls_failed_total is %.0f, want 21", tm.got);
    long spent_s = (h_now_ms() - t0) / 1000;
    still_serves(&n);
    char *said = h_read_file(n.log, NULL);
    int lines = 0;
    for (const char *p = said; p && (p = strstr(p, "a TLS handshake failed on the HTTPS port 127.0.0.1:")); p++)
        lines++;
    cr_assert(lines >= 1 && lines <= 2 + spent_s / 10, "%d lines for 21 failed handshakes in %ld s: %s", lines, spent_s,
              said ? said : "");
    cr_assert(strstr(said, "plain HTTP sent to it? clients must use https://127.0.0.1:"), "%s", said);
    cr_assert(!strstr(said, "out of context"), "libmicrohttpd's text is logged: %s", said);
    free(said);
    /* the CLI with --cacert */
    char *out = NULL, *err = NULL;
    rc = h_trib(&n, NULL, &out, &err, "status", "--cacert", cert, NULL);
    cr_assert_eq(rc, 0, "trib status --cacert over https: %s", err);
    free(out), free(err);
    rc = h_trib(&n, NULL, &out, &err, "status", NULL);
    cr_assert_neq(rc, 0, "the CLI trusted an unknown certificate");
    cr_assert(strstr(err, "give that CA with --cacert FILE"), "%s", err);
    free(out), free(err);
    /* --cacert before the command, like --node (it was "unknown command '--cacert'") */
    rc = h_trib(&n, NULL, &out, &err, "--cacert", cert, "--node", n.url, "status", NULL);
    cr_assert_eq(rc, 0, "trib --cacert F --node URL status: %s", err);
    free(out), free(err);
    /* the wrong scheme for the node is named as such */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", n.http_port);
    rc = h_trib(&n, NULL, &out, &err, "status", "--node", url, NULL);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "if the node serves HTTPS, give its URL as https://"), "%s", err);
    free(out), free(err);
    char *started = h_read_file(n.log, NULL);
    cr_assert(started && strstr(started, "serving HTTPS on 127.0.0.1:"), "the log does not say HTTPS: %s",
              started ? started : "-");
    free(started);
    /* a key file others can read: refused at start */
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(chmod(key, 0644), 0);
    cr_assert_neq(h_node_restart(&n), 0, "started with a world-readable TLS key");
    char *log = h_read_file(n.log, NULL);
    cr_assert(log && strstr(log, "key.pem"), "the refusal does not name the key file");
    free(log);
    h_node_cleanup(&n);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------ shared live feed */

typedef struct {
    pid_t pid;
    char out[64], err[64];
    int exited, status;
} sub_t;

static void sub_start(sub_t *s, h_node_t *via, const char *token)
{
    snprintf(s->out, sizeof s->out, "/tmp/trib-sub-out-XXXXXX");
    snprintf(s->err, sizeof s->err, "/tmp/trib-sub-err-XXXXXX");
    int fd = mkstemp(s->out), efd = mkstemp(s->err);
    cr_assert(fd >= 0 && efd >= 0);
    s->exited = 0;
    s->pid = fork();
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(efd, 2);
        setenv("TRIB_NODE", via->url, 1);
        setenv("TRIB_TOKEN", token, 1);
        execl(h_trib_path(), h_trib_path(), "subscribe", "payments/settled-transactions", "--from", "1", (char *)NULL);
        _exit(127);
    }
    close(fd);
    close(efd);
}

static int sub_lines(sub_t *s)
{
    size_t len = 0;
    char *b = h_read_file(s->out, &len);
    int n = 0;
    for (size_t i = 0; b && i < len; i++)
        n += b[i] == '\n';
    free(b);
    return n;
}

static int sub_poll_exit(sub_t *s)
{
    if (!s->exited && waitpid(s->pid, &s->status, WNOHANG) == s->pid)
        s->exited = 1;
    return s->exited;
}

typedef struct {
    sub_t *subs;
    int n, want;
} lines_ctx_t;

static int all_have(void *ctx)
{
    lines_ctx_t *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (sub_lines(&c->subs[i]) < c->want)
            return 0;
    return 1;
}

static int sub_exited(void *ctx) { return sub_poll_exit(ctx); }

static void append(h_node_t *a, int from, int count)
{
    char body[4096] = "";
    size_t off = 0;
    for (int i = 0; i < count; i++)
        off += (size_t)snprintf(body + off, sizeof body - off,
                                "{\"txn_id\":\"t%d\",\"amount_minor\":%d,\"currency\":\"EUR\",\"settled_at\":"
                                "\"2026-11-24T10:00:00Z\"}\n",
                                from + i, from + i);
    char kind[64];
    cr_assert_eq(call(a, "POST", PRODUCT "/records", "application/x-ndjson", body, a->token, kind), 201, "%s", kind);
}

Test(auth, a_revoked_subscriber_leaves_a_shared_feed_while_the_others_go_on)
{
    h_node_t a, b;
    owner_and_relay(&a, &b);
    cr_assert(h_wait_status(b.url, PRODUCT, NULL, 200, 20000));
    append(&a, 1, 3);
    char *tok[3];
    sub_t subs[3];
    for (int i = 0; i < 3; i++) {
        char sub[64];
        snprintf(sub, sizeof sub, "reader%d@payments", i);
        tok[i] = issue(&a, sub, "read", 3600, NULL);
        sub_start(&subs[i], &b, tok[i]);
    }
    lines_ctx_t lc = {subs, 3, 3};
    cr_assert(h_wait(all_have, &lc, 20000), "the three subscribers did not get the first records");
    /* one subscriber's token is revoked at the owner: its stream ends with token_revoked */
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok[0]);
    revoke_at(&a, body);
    cr_assert(h_wait(sub_exited, &subs[0], 15000), "the revoked subscriber's stream did not end");
    cr_assert(WIFEXITED(subs[0].status) && WEXITSTATUS(subs[0].status) != 0);
    char *err = h_read_file(subs[0].err, NULL);
    cr_assert(err && strstr(err, "token_revoked"), "the revoked subscriber was not told why: %s", err);
    free(err);
    /* the other two go on */
    append(&a, 4, 3);
    lines_ctx_t rest = {subs + 1, 2, 6};
    cr_assert(h_wait(all_have, &rest, 20000), "the other subscribers stopped getting records");
    cr_assert(!sub_poll_exit(&subs[1]) && !sub_poll_exit(&subs[2]));
    for (int i = 0; i < 3; i++) {
        if (!subs[i].exited) {
            kill(subs[i].pid, SIGTERM);
            waitpid(subs[i].pid, NULL, 0);
        }
        unlink(subs[i].out);
        unlink(subs[i].err);
        free(tok[i]);
    }
    h_node_cleanup(&b);
    h_node_cleanup(&a);
}

Test(auth, a_revoked_token_ends_a_local_live_stream_on_the_owner)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0);
    publish(&a, "settled-transactions.yaml", "payments/settled-transactions");
    append(&a, 1, 2);
    char *t = issue(&a, "reader@payments", "read", 3600, NULL);
    sub_t s;
    sub_start(&s, &a, t);
    lines_ctx_t lc = {&s, 1, 2};
    cr_assert(h_wait(all_have, &lc, 20000), "the subscriber did not get the first records");
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", t);
    revoke_at(&a, body);
    append(&a, 3, 1); /* the stream looks again at its next page */
    cr_assert(h_wait(sub_exited, &s, 15000), "the revoked subscriber's local stream did not end");
    char *err = h_read_file(s.err, NULL);
    cr_assert(err && strstr(err, "token_revoked"), "not told why: %s", err);
    cr_assert_eq(sub_lines(&s), 2, "a record was served after the revocation");
    free(err);
    unlink(s.out);
    unlink(s.err);
    free(t);
    h_node_cleanup(&a);
}

/* ------------------------------------------------------------------ a lying relay */

static Trib__ReadBatch *first_batch(transport_t *t, uint64_t id)
{
    long deadline = h_now_ms() + 10000;
    transport_msg_t m;
    while (h_now_ms() < deadline && peer_wait_msg(t, (int)(deadline - h_now_ms()), &m) == 1) {
        Trib__ReadBatch *b = m.type == TRIB__MSG_TYPE__MSG_READ_BATCH ? trib__read_batch__unpack(NULL, m.body_len, m.body)
                                                                      : NULL;
        transport_msg_free(&m);
        if (b && b->stream_id == id && b->batch_no != 0)
            return b;
        if (b)
            trib__read_batch__free_unpacked(b, NULL);
    }
    return NULL;
}

/* A relay is a peer that forwards whatever token it likes: here one made by hand on the peer
 * transport. The owner answers each with what that token allows, whatever the relay says. */
Test(auth, a_relay_forwarding_another_token_gets_what_that_token_allows)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0);
    publish(&a, "settled-transactions.yaml", "payments/settled-transactions");
    append(&a, 1, 2);
    char *client = issue(&a, "reader@payments", "read", 3600, NULL);
    char *revoked = issue(&a, "gone@payments", "read", 3600, NULL);
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", revoked);
    revoke_at(&a, body);
    char *forged = strdup(client);
    forged[strlen(forged) - 2] ^= 0x01;
    identity_t rogue;
    memset(&rogue, 0, sizeof rogue);
    crypto_sign_keypair(rogue.pk, rogue.sk);
    char *other = NULL, err[256];
    token_spec_t spec = {.subject = "x@payments", .kind = TOKEN_KIND_ADMIN, .issued_ms = fx_now_ms(),
                         .expires_ms = fx_now_ms() + HOUR};
    cr_assert_eq(token_issue(&rogue, "payments", &spec, &other, err, sizeof err), 0, "%s", err);

    void *z = zmq_ctx_new();
    identity_t me;
    peer_identity(&me);
    transport_t *t = transport_new(z, &me, "127.0.0.1:0", NULL, err, sizeof err);
    cr_assert(t, "%s", err);
    static const struct {
        int which;              /* 0 none, 1 the client's, 2 forged, 3 revoked, 4 another issuer's */
        uint32_t status;
        const char *kind, *reason;
    } cases[] = {
        {0, 401, "token_required", "token_required"}, {2, 401, "token_invalid", "token_invalid"},
        {3, 401, "token_revoked", "token_revoked"},    {4, 401, "token_invalid", "token_invalid"},
        {1, 0, "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *tok = cases[i].which == 1 ? client : cases[i].which == 2 ? forged
                        : cases[i].which == 3 ? revoked : cases[i].which == 4 ? other : NULL;
        double before = cases[i].reason ? refused(&a, cases[i].reason) : 0;
        Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
        q.stream_id = 900 + i;
        q.product_id = "payments/settled-transactions";
        q.from_seq = 1;
        q.credit = 4;
        if (tok)
            q.token = (ProtobufCBinaryData){strlen(tok), (uint8_t *)tok};
        size_t len = trib__read_request__get_packed_size(&q);
        uint8_t *buf = malloc(len + 1);
        trib__read_request__pack(&q, buf);
        cr_assert_eq(transport_send(t, a.peer, TRIB__MSG_TYPE__MSG_READ_REQ, buf, len), 0);
        free(buf);
        Trib__ReadBatch *b = first_batch(t, q.stream_id);
        cr_assert(b, "case %zu: no answer", i);
        cr_assert_eq(b->status, cases[i].status, "case %zu: status %u (%s)", i, b->status, b->error);
        if (cases[i].reason) {
            cr_assert_str_eq(b->error_kind, cases[i].kind, "case %zu", i);
            cr_assert_eq(b->lines.len, 0, "case %zu: records sent with a refused token", i);
            cr_assert_eq(refused(&a, cases[i].reason), before + 1, "case %zu: not counted", i);
        } else {
            cr_assert_gt(b->lines.len, 0, "the client's token read no records");
        }
        trib__read_batch__free_unpacked(b, NULL);
    }
    still_serves(&a);
    transport_destroy(&t);
    zmq_ctx_term(z);
    free(client), free(revoked), free(forged), free(other);
    identity_wipe(&me);
    h_node_cleanup(&a);
}

Test(auth, require_token_closes_discovery_too)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", "--require-token", "1", NULL), 0);
    expect_refused(&n, "GET", "/v1/products", NULL, NULL, NULL, 401, "token_required", "token_required");
    expect_refused(&n, "GET", "/v1/members", NULL, NULL, NULL, 401, "token_required", "token_required");
    char kind[64];
    cr_assert_eq(call(&n, "GET", "/v1/products", NULL, NULL, n.token, kind), 200, "%s", kind);
    cr_assert_eq(call(&n, "GET", "/v1/status", NULL, NULL, n.token, kind), 200, "%s", kind);
    cr_assert_eq(call(&n, "GET", "/v1/status", NULL, NULL, "trib1.AAAA", kind), 401);
    cr_assert_str_eq(kind, "token_invalid");
    /* the refusal says why a status or a search needs a token on this node, and how to give one
     * (it said "no token: send Authorization: Bearer trib1....", nothing of the option or the CLI) */
    char *err = NULL;
    cr_assert_eq(h_trib(&n, NULL, NULL, &err, "status", "--token", "", NULL), 1, "%s", err ? err : "");
    cr_assert(err && strstr(err, "401 token_required: this node runs with --require-token 1") &&
              strstr(err, "--token-file or $TRIB_TOKEN"), "%s", err ? err : "");
    free(err);
    h_node_cleanup(&n);
}

/* The node's revocation table holds 1,048,576: those past it are not held (a token they revoke is
 * still accepted), so each is counted in trib_token_revocations_refused_total, and the log says so
 * once per 10 s, with how many it held back. On ded5127 only the log line said so: /metrics had
 * neither series. */
Test(auth, revocations_past_the_table_are_counted_and_logged_at_most_once_per_interval)
{
    char logpath[] = "/tmp/trib-auth-revlog-XXXXXX";
    int fd = mkstemp(logpath);
    cr_assert(fd >= 0);
    int saved = dup(2);
    cr_assert_eq(dup2(fd, 2), 2);   /* log lines go to stderr */
    const size_t max = 1u << 20;
    uint8_t sig[TOKEN_SIG_LEN] = {0};
    for (size_t i = 0; i < max + 3; i++) {
        randombytes_buf(sig, sizeof sig);   /* spread over the table as signatures are */
        memcpy(sig + 56, &i, sizeof i);     /* and distinct */
        auth_revoke_add(sig);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    auth_metrics_render(m);
    fclose(m);
    cr_expect(strstr(buf, "\ntrib_token_revocations 1048576\n"), "%s", buf);
    cr_expect(strstr(buf, "\ntrib_token_revocations_refused_total 3\n"), "%s", buf);
    free(buf);
    token_claims_t c = {.nblocks = 1};      /* the last one refused is not held */
    memcpy(c.revocation_ids[0], sig, TOKEN_SIG_LEN);
    cr_expect_not(auth_is_revoked(&c));
    char *log = h_read_file(logpath, NULL);
    unlink(logpath);
    close(fd);
    cr_assert(log);
    size_t lines = 0;
    for (const char *p = log; (p = strstr(p, "token revocations: 1048576 held")); p++)
        lines++;
    cr_expect_eq(lines, 1, "one line for three refusals within 10 s: %s", log);
    cr_expect(strstr(log, "still accepted here (trib_token_revocations_refused_total)"), "%s", log);
    free(log);
}

/* A token read from a path (--token-file, trib key rotate's DATA/admin.token, the node's own
 * admin.token at start) is refused before anything is sent, in textfile's words, naming the file
 * and what is wrong; a file that is no token at all is told so rather than sent for a 401. On
 * ded5127 it said "PATH: open: No such file or directory", "PATH: not a regular file" for a
 * directory, "PATH: 10000 bytes, a token file holds at most 4098", and sent junk to the node. */
Test(auth, a_token_file_that_is_missing_unreadable_or_malformed_is_refused_naming_it)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char good[400], dir[400];
    snprintf(good, sizeof good, "%s/admin.token", n.dir);
    snprintf(dir, sizeof dir, "%s/toks", n.dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    char *out = NULL, *err = NULL;
    int rc = h_trib(&n, NULL, &out, &err, "status", "--token-file", good, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out), free(err);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    static const struct {
        const char *name, *text;   /* NULL text: none written */
        int mode;
        const char *says;          /* after "trib: status: --token-file DIR/NAME" */
    } cases[] = {
        {"missing", NULL, 0, ": no such file"},
        {"open", "trib1.AAAA\n", 0644, ": mode 0644, must be 0600 (a token is a secret: chmod 600 "},
        {"empty", "\n \n", 0600, ": empty"},
        {"big", "", 0600, ": larger than 4098 bytes, the limit for a token file"},
        {"junk", "not-a-token\n", 0600, ": not a token: a token starts with trib1."},
        {"two", "trib1.AAAA\ntrib1.BBBB\n", 0600, ": not one token: white space inside it (a token file holds one "
                                                  "token, as trib token issue prints it)"},
        {"", NULL, 0, ": is a directory, not a file"},   /* DIR itself */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[500], want[900];
        snprintf(path, sizeof path, "%s%s%s", dir, cases[i].name[0] ? "/" : "", cases[i].name);
        if (cases[i].text) {
            const char *t = strcmp(cases[i].name, "big") ? cases[i].text : big;
            cr_assert_eq(h_write_file(path, t, strlen(t)), 0);
            cr_assert_eq(chmod(path, (mode_t)cases[i].mode), 0);
        }
        rc = h_trib(&n, NULL, &out, &err, "status", "--token-file", path, NULL);
        snprintf(want, sizeof want, "trib: status: --token-file %s%s", path, cases[i].says);
        cr_expect_eq(rc, 2, "case %s: %s", cases[i].name, err);
        cr_expect(!strncmp(err, want, strlen(want)) && strchr(err, '\n') == err + strlen(err) - 1,
                  "case %s: got '%s', want '%s'", cases[i].name, err, want);
        free(out), free(err);
    }
    /* trib key rotate reads DATA/admin.token alike */
    rc = h_trib(&n, NULL, &out, &err, "key", "rotate", "--data", dir, NULL);
    char want[900];
    snprintf(want, sizeof want, "trib: key rotate: cannot read the node's admin token: %s/admin.token: no such file\n",
             dir);
    cr_expect_eq(rc, 1, "%s", err);
    cr_expect_str_eq(err, want);
    free(out), free(err);
    /* the node's own at start: a loose mode says chmod, a bad content how to get a new one */
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(chmod(good, 0640), 0);
    cr_assert_neq(h_node_restart(&n), 0, "started with a token readable by group");
    char *log = h_read_file(n.log, NULL);
    snprintf(want, sizeof want, "%s: mode 0640, must be 0600 (a token is a secret: chmod 600 %s)", good, good);
    cr_expect(log && strstr(log, want), "%s", log);
    free(log);
    cr_assert_eq(chmod(good, 0600), 0);
    cr_assert_eq(h_write_file(good, "junk\n", 5), 0);
    cr_assert_neq(h_node_restart(&n), 0, "started with a junk admin.token");
    log = h_read_file(n.log, NULL);
    snprintf(want, sizeof want, "%s: not a token: a token starts with trib1.; move it away, and the node writes a "
             "new admin token at its next start", good);
    cr_expect(log && strstr(log, want), "%s", log);
    free(log);
    h_node_cleanup(&n);
}
