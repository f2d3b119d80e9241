/* tests/test_chartered.c - a chartered federation against real `trib agent` processes (DESIGN §12,
 * issue 10): chartered start and its refusals, per-node CURVE keys with NODE_ID@HOST:PORT seeds,
 * admission of certified keys only, catalog acceptance by certificate, and open mode's refusal to
 * listen beyond loopback without a secret. Hostile peers are played from this process with the
 * project's own transport (tests/peer_tools.h style): a rogue twin, forged, foreign, expired, not yet
 * valid and below-threshold certificates, a node of another federation, entries for a domain its
 * key is not certified for. Each refusal is checked in /metrics, and the node keeps serving.
 *
 * Owns: the charter, roots and certificates of its tests (in memory, written to temp files).
 * Must not: sleep as synchronisation (poll with deadlines), leave processes or files behind. */
#include <criterion/criterion.h>

#include <curl/curl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/entry.h"
#include "gossip/transport.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

#define DAY_MS 86400000LL
#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static identity_t R1, R2, R3;      /* roots of the federation (threshold 2) */
static charter_t ch;
static char work[64], chpath[128];
static char err[1024];

/* A new charter with roots r[0..n), threshold 2, signed by all. */
static void make_charter(charter_t *c, const identity_t *const *r, size_t n)
{
    cr_assert_eq(fx_charter(c, r, n, 2, err, sizeof err), 0, "%s", err);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2), fx_identity(&R3);
    const identity_t *roots[] = {&R1, &R2, &R3};
    make_charter(&ch, roots, 3);
    cr_assert_eq(fx_charter_dir(&ch, "chartered", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
}

static void teardown(void)
{
    h_cleanup_all();
    charter_free(&ch);
    fx_rmdir(work);
}

TestSuite(chartered, .init = setup, .fini = teardown, .timeout = 180);

/* A data dir with an identity (what `trib identity --data DIR` makes). */
static void node_dir(const char *name, char *dir, size_t cap, identity_t *id)
{
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
}

/* Issues a certificate under c (NULL: the federation's) for domain and key, valid [nb, na], signed
 * by signers; with threshold1 the issuing charter is told its threshold is 1 (so a single root's
 * signature is produced: below the real threshold). Writes it to work/FILE when file != NULL. */
static void issue(const charter_t *c, const char *domain, const uint8_t pk[32], int64_t nb, int64_t na,
                  const identity_t *const *signers, size_t n, int threshold1, const char *file, cert_t *out)
{
    charter_t tmp = *(c ? c : &ch);
    if (threshold1)
        tmp.threshold = 1;
    cr_assert_eq(cert_issue(&tmp, domain, pk, nb, na, 0, signers, n, out, err, sizeof err), 0, "%s", err);
    if (file) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", work, file);
        json_t *j = cert_to_json(out);
        unlink(path);
        cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
        json_decref(j);
    }
}

static const identity_t *const two_roots[] = {&R1, &R2};

/* Starts a chartered node of domain from dir with work/certfile and (optionally) one seed. */
static void start(h_node_t *n, const char *domain, const char *dir, const char *certfile, const char *seed)
{
    char cert[256];
    snprintf(cert, sizeof cert, "%s/%s", work, certfile);
    int rc = seed ? h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, "--seed", seed, FAST,
                                 NULL)
                  : h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, FAST, NULL);
    cr_assert_eq(rc, 0, "chartered node %s did not start; see %s", domain, n->log);
}

/* Runs `trib agent ARGS` expecting it to refuse to start: its exit status (or -1 when it was
 * still running after 15 s: then it is killed) and its output in out. */
static int agent_refuses(char *out, size_t cap, const char *const *args)
{
    char log[128];
    snprintf(log, sizeof log, "%s/refusal.log", work);
    unlink(log);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        const char *argv[40] = {h_trib_path(), "agent"};
        int k = 2;
        for (int i = 0; args[i] && k < 39; i++)
            argv[k++] = args[i];
        argv[k] = NULL;
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    cr_assert_gt(pid, 0);
    int st = 0, rc = -1;
    long deadline = h_now_ms() + 15000;
    while (h_now_ms() < deadline) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
            break;
        }
        usleep(20000);
    }
    if (rc == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    size_t len = 0;
    char *s = h_read_file(log, &len);
    snprintf(out, cap, "%s", s ? s : "");
    free(s);
    return rc;
}

/* ---------------------------------------------------------------- members and metrics */

typedef struct {
    h_node_t *n;
    int want;
} members_cond_t;

/* n lists want alive members, every one verified. */
static int all_verified(void *ctx)
{
    members_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL);
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "members");
    size_t i, alive = 0, verified = 0;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        if (!strcmp(json_string_value(json_object_get(m, "state")) ?: "", "alive"))
            alive++;
        if (json_is_true(json_object_get(m, "verified")))
            verified++;
    }
    json_decref(j);
    return (int)alive == c->want && (int)verified == c->want;
}

/* n's /v1/members as text, for a failure's message (static: one at a time). */
static const char *members_text(h_node_t *n)
{
    static char text[4096];
    json_t *j = h_get_json(n->url, "/v1/members", NULL);
    char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;
    snprintf(text, sizeof text, "%s", d ? d : "(no answer)");
    free(d);
    json_decref(j);
    return text;
}

typedef struct {
    const char *url, *series;
    double at_least;
} metric_cond_t;

static int metric_reached(void *ctx)
{
    metric_cond_t *c = ctx;
    return h_metric(c->url, c->series) >= c->at_least;
}

static void expect_metric(const char *url, const char *series, double at_least, const char *why)
{
    metric_cond_t c = {url, series, at_least};
    cr_assert(h_wait(metric_reached, &c, 15000), "%s: %s stayed at %.0f (wanted >= %.0f)", why, series,
              h_metric(url, series), at_least);
}

static void still_serves(h_node_t *n)
{
    long status = 0;
    json_t *j = h_get_json(n->url, "/v1/status", &status);
    cr_assert_eq(status, 200, "the node stopped serving after the refusal");
    json_decref(j);
}

/* ---------------------------------------------------------------- happy path */

typedef struct {
    h_node_t *n;
    const char *path;
} get_cond_t;

static int get_ok(void *ctx)
{
    get_cond_t *c = ctx;
    long status = 0;
    json_t *j = h_get_json(c->n->url, c->path, &status);
    json_decref(j);
    return status == 200;
}

Test(chartered, three_certified_nodes_join_publish_replicate_and_read_routed)
{
    char da[256], db[256], dc[256], seed[160];
    identity_t ia, ib, ic;
    cert_t ca, cb, cc;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    node_dir("c", dc, sizeof dc, &ic);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", ib.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "b.cert", &cb);
    issue(NULL, "listening", ic.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "c.cert", &cc);
    h_node_t a, b, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    start(&c, "listening", dc, "c.cert", seed);
    members_cond_t mc = {&c, 3};
    if (!h_wait(all_verified, &mc, 20000))
        cr_assert_fail("listening does not see three verified alive members: %s", members_text(&c));
    mc.n = &a;
    if (!h_wait(all_verified, &mc, 20000))
        cr_assert_fail("payments does not see three verified alive members: %s", members_text(&a));

    char manifest[512];
    snprintf(manifest, sizeof manifest, "%s/m.yaml", work);
    const char *yaml = "name: settled\ndomain: payments\nversion: 1.0.0\nstatus: active\ntitle: Settled\n"
                       "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
                       "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
                       "  - {name: id, logicalType: string, required: true}\n";
    cr_assert_eq(h_write_file(manifest, yaml, strlen(yaml)), 0);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(&a, NULL, &out, &eout, "publish", manifest, NULL);
    cr_assert_eq(rc, 0, "publish failed: %s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    char recs[512];
    snprintf(recs, sizeof recs, "%s/r.ndjson", work);
    cr_assert_eq(h_write_file(recs, "{\"id\":\"x1\"}\n{\"id\":\"x2\"}\n", 24), 0);
    rc = h_trib(&a, recs, &out, &eout, "put", "payments/settled", NULL);
    cr_assert_eq(rc, 0, "put failed: %s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);

    get_cond_t g = {&b, "/v1/products/payments/settled"};
    cr_assert(h_wait(get_ok, &g, 15000), "the product did not replicate to growth");
    g.n = &c;
    cr_assert(h_wait(get_ok, &g, 15000), "the product did not replicate to listening");
    double relayed = h_metric(c.url, "trib_read_batches_total{dir=\"received\"}");
    rc = h_trib(&c, NULL, &out, &eout, "get", "payments/settled", "--relay", NULL);
    cr_assert_eq(rc, 0, "routed read failed: %s", eout ? eout : "");
    cr_expect_gt(h_metric(c.url, "trib_read_batches_total{dir=\"received\"}"), relayed, "not read through the relay");
    cr_assert(out && strstr(out, "x1") && strstr(out, "x2"), "routed read returned: %s", out ? out : "");
    free(out), free(eout);
    /* every view says verified: members (serial and expiry), status, the product */
    rc = h_trib(&c, NULL, &out, &eout, "members", NULL);
    cr_assert_eq(rc, 0);
    char serial[17];
    cert_serial_text(ca.serial, serial);
    cr_expect(out && strstr(out, serial) && !strstr(out, "unverified"), "members: %s", out ? out : "");
    free(out), free(eout);
    json_t *j = h_get_json(b.url, "/v1/status", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "trust")) ?: "", "verified");
    json_decref(j);
    j = h_get_json(c.url, "/v1/products/payments/settled", NULL);
    cr_expect(json_is_true(json_object_get(j, "verified")), "the product is not shown as verified");
    json_decref(j);
    rc = h_trib(&c, NULL, &out, &eout, "show", "payments/settled", NULL);
    cr_expect(rc == 0 && out && strstr(out, "verified (signer certified"), "trib show: %s", out ? out : "");
    free(out), free(eout);
    cr_expect_eq(h_metric(b.url, "trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"}"), 0);
    /* a refusal counted is a message dropped: asking whether a peer's certificate is held, before
     * the hello on a new connection, is not a refusal (it was counted and logged on every join) */
    h_node_t *all[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        cr_expect_eq(h_metric(all[i]->url, "trib_trust_refused_total{kind=\"connect\",reason=\"uncertified\"}"),
                     h_metric(all[i]->url, "trib_gossip_dropped_total{reason=\"uncertified\"}"),
                     "%s counts uncertified refusals that dropped nothing", all[i]->domain);
    cr_expect_eq(h_metric(a.url, "trib_trust_chartered"), 1);
    /* a restarted node (its trust store starts again from its own certificate) is readmitted
     * and readmits the others */
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&b), 0, "growth did not restart; see %s", b.log);
    mc.n = &b;
    cr_assert(h_wait(all_verified, &mc, 20000), "the restarted node does not see three verified alive members");
    mc.n = &a;
    cr_assert(h_wait(all_verified, &mc, 20000), "payments does not see the restarted node verified and alive");
    cr_expect_gt(h_metric(a.url, "trib_cert_expiry_seconds"), 80 * 86400.0);
    cert_free(&ca), cert_free(&cb), cert_free(&cc);
}

typedef struct {
    h_node_t *n;
    long want;
} fed_cond_t;

static int fed_objects(void *ctx)
{
    fed_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/federation", NULL);
    long got = (long)json_integer_value(json_object_get(j, "objects"));
    json_decref(j);
    return got >= c->want;
}

/* A node that joins after a domain's node is gone has never met that node's key: it learns the
 * key's certificate from the federation log, where every chartered node puts its own at start.
 * Without it the newcomer refuses the domain's entries as uncertified (and a new key of the domain,
 * certified with --prev-serial, then forks the domain's log at seq 1). */
Test(chartered, a_node_joining_after_the_publisher_is_gone_accepts_its_entries)
{
    char da[256], db[256], dc[256], seed[160];
    identity_t ia, ib, ic;
    cert_t ca, cb, cc;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    node_dir("c", dc, sizeof dc, &ic);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", ib.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "b.cert", &cb);
    issue(NULL, "listening", ic.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "c.cert", &cc);
    h_node_t a, b, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    members_cond_t mc = {&a, 2};
    cr_assert(h_wait(all_verified, &mc, 20000), "payments does not see two verified alive members");

    char manifest[512];
    snprintf(manifest, sizeof manifest, "%s/g.yaml", work);
    const char *yaml = "name: funnel\ndomain: growth\nversion: 1.0.0\nstatus: active\ntitle: Funnel\n"
                       "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
                       "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
                       "  - {name: id, logicalType: string, required: true}\n";
    cr_assert_eq(h_write_file(manifest, yaml, strlen(yaml)), 0);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(&b, NULL, &out, &eout, "publish", manifest, NULL);
    cr_assert_eq(rc, 0, "publish failed: %s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    get_cond_t g = {&a, "/v1/products/growth/funnel"};
    cr_assert(h_wait(get_ok, &g, 15000), "the product did not replicate to payments");
    /* both certificates in payments' federation log (anti-entropy brings growth's), then growth goes */
    fed_cond_t fc = {&a, 2};
    cr_assert(h_wait(fed_objects, &fc, 15000), "growth's certificate did not reach payments' federation log");
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);

    start(&c, "listening", dc, "c.cert", seed);
    g.n = &c;
    cr_assert(h_wait(get_ok, &g, 15000), "a node joining after growth left does not hold growth's entry: see %s",
              c.log);
    cr_expect_eq(h_metric(c.url, "trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"}"), 0);
    json_t *j = h_get_json(c.url, "/v1/products/growth/funnel", NULL);
    cr_expect(json_is_true(json_object_get(j, "verified")), "the product is not shown as verified");
    json_decref(j);
    cert_free(&ca), cert_free(&cb), cert_free(&cc);
}

/* ---------------------------------------------------------------- start refusals */

static void expect_start_refused(const char *dir, const char *domain, const char *certfile, const char *charter,
                                 const char *want1, const char *want2)
{
    char cert[256], out[4096], http[32], listen[32];
    snprintf(cert, sizeof cert, "%s/%s", work, certfile);
    snprintf(http, sizeof http, "127.0.0.1:%d", h_free_port());
    snprintf(listen, sizeof listen, "127.0.0.1:%d", h_free_port());
    const char *args[] = {"--data", dir, "--domain", domain, "--charter", charter ? charter : chpath, "--cert", cert,
                          "--http", http, "--listen", listen, NULL};
    int rc = agent_refuses(out, sizeof out, args);
    cr_assert(rc > 0, "the agent did not refuse to start (rc %d) with %s: %s", rc, certfile, out);
    cr_assert(strstr(out, certfile) != NULL, "the refusal does not name the file %s: %s", certfile, out);
    cr_assert(strstr(out, want1) != NULL, "the refusal does not say '%s': %s", want1, out);
    if (want2)
        cr_assert(strstr(out, want2) != NULL, "the refusal does not say '%s': %s", want2, out);
}

Test(chartered, agent_refuses_to_start_without_a_valid_certificate_of_its_own)
{
    char d[256];
    identity_t id, other;
    cert_t c;
    node_dir("n", d, sizeof d, &id);
    fx_identity(&other);
    int64_t t = fx_now_ms();
    /* a rogue twin: a certificate of another key (the real payments node's) */
    issue(NULL, "payments", other.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "other-key.cert", &c);
    cert_free(&c);
    expect_start_refused(d, "payments", "other-key.cert", NULL, "wrong_key", id.hex);
    /* a certificate for another domain */
    issue(NULL, "growth", id.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "growth.cert", &c);
    cert_free(&c);
    expect_start_refused(d, "payments", "growth.cert", NULL, "wrong_domain", NULL);
    /* expired, not yet valid */
    issue(NULL, "payments", id.pk, t - 10 * DAY_MS, t - DAY_MS, two_roots, 2, 0, "expired.cert", &c);
    cert_free(&c);
    /* a window missed may be this machine's clock: the refusal says what it reads, and which way */
    expect_start_refused(d, "payments", "expired.cert", NULL, "expired", "this machine's clock reads 20");
    expect_start_refused(d, "payments", "expired.cert", NULL, "expired", "if it is ahead, fix it (NTP)");
    issue(NULL, "payments", id.pk, t + DAY_MS, t + 10 * DAY_MS, two_roots, 2, 0, "future.cert", &c);
    cert_free(&c);
    expect_start_refused(d, "payments", "future.cert", NULL, "not_yet_valid", "if it is behind, fix it (NTP)");
    /* one root where the charter needs two */
    const identity_t *one[] = {&R1};
    issue(NULL, "payments", id.pk, t - DAY_MS, t + DAY_MS, one, 1, 1, "below.cert", &c);
    cert_free(&c);
    expect_start_refused(d, "payments", "below.cert", NULL, "below_threshold", NULL);
    /* signed by keys that are not roots of this federation (a forged certificate) */
    identity_t f1, f2;
    fx_identity(&f1), fx_identity(&f2);
    const identity_t *fake[] = {&f1, &f2};
    charter_t tmp = ch;
    memcpy(tmp.keys[0].key, f1.pk, 32);
    memcpy(tmp.keys[1].key, f2.pk, 32);
    issue(&tmp, "payments", id.pk, t - DAY_MS, t + DAY_MS, fake, 2, 0, "forged.cert", &c);
    cert_free(&c);
    expect_start_refused(d, "payments", "forged.cert", NULL, "below_threshold", NULL);
    /* a certificate of another federation */
    charter_t other_fed;
    const identity_t *roots[] = {&R1, &R2, &R3};
    make_charter(&other_fed, roots, 3);
    issue(&other_fed, "payments", id.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "otherfed.cert", &c);
    cert_free(&c);
    charter_free(&other_fed);
    expect_start_refused(d, "payments", "otherfed.cert", NULL, "wrong_federation", NULL);
}

Test(chartered, open_mode_beyond_loopback_needs_a_secret_or_a_charter)
{
    char out[4096], http[32], d[256];
    identity_t id;
    node_dir("open", d, sizeof d, &id);
    snprintf(http, sizeof http, "127.0.0.1:%d", h_free_port());
    const char *args[] = {"--data", d, "--domain", "payments", "--http", http, "--listen", "10.255.255.1:7470", NULL};
    int rc = agent_refuses(out, sizeof out, args);
    cr_assert_eq(rc, 2, "rc %d: %s", rc, out);
    cr_assert(strstr(out, "--federation-secret") && strstr(out, "--charter"), "the refusal does not name both "
              "options: %s", out);
    /* loopback stays open (tests, demo) */
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", FAST, NULL), 0);
    still_serves(&n);
    cr_expect_eq(h_metric(n.url, "trib_trust_chartered"), 0);
}

/* ---------------------------------------------------------------- hostile peers */

/* A peer played from this process: its own transport (chartered keys), presenting cert (may be
 * NULL: none) to the node at addr whose node key is node_pk. */
typedef struct {
    void *zctx;
    transport_t *t;
    identity_t id;
} rogue_t;

static void rogue_open(rogue_t *r, const identity_t *id, const cert_t *cert, const char *addr,
                       const uint8_t node_pk[32])
{
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    r->id = *id;
    r->zctx = zmq_ctx_new();
    cr_assert_not_null(r->zctx);
    r->t = transport_new(r->zctx, &r->id, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert_not_null(r->t, "%s", err);
    cr_assert_eq(transport_set_peer(r->t, addr, node_pk, 1), 0);
    static const uint8_t junk[] = {0x0a, 0x03, 'b', 'a', 'd'};
    if (cert)
        cr_assert_eq(transport_set_hello(r->t, cert->bytes, cert->len, NULL, NULL), 0);
    else
        cr_assert_eq(transport_set_hello(r->t, junk, sizeof junk, NULL, NULL), 0);
}

static void rogue_close(rogue_t *r)
{
    transport_destroy(&r->t);
    zmq_ctx_term(r->zctx);
}

/* Polls the rogue's transport (its sends, ZAP) until cond holds or 15 s pass. */
typedef struct {
    rogue_t *r;
    metric_cond_t m;
} pump_cond_t;

static int pump(void *ctx)
{
    pump_cond_t *p = ctx;
    transport_msg_t m;
    zmq_pollitem_t items[8];
    int n = transport_pollitems(p->r->t, items, 8);
    zmq_poll(items, n, 10);
    while (transport_recv(p->r->t, &m) == 1)
        transport_msg_free(&m);
    return metric_reached(&p->m);
}

static void rogue_until(rogue_t *r, const char *url, const char *series, double at_least, const char *why)
{
    pump_cond_t p = {r, {url, series, at_least}};
    cr_assert(h_wait(pump, &p, 15000), "%s: %s stayed at %.0f", why, series, h_metric(url, series));
}

/* A SignedEntry of domain at seq (a tombstone), signed by signer, in a CatalogEntries body. */
static uint8_t *entries_body_at(const identity_t *signer, const char *domain, uint64_t seq, size_t *len)
{
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    Trib__Tombstone tomb = TRIB__TOMBSTONE__INIT;
    tomb.name = "settled";
    e.domain = (char *)domain;
    uint8_t prev[32] = {0};   /* seq > 1 chains on some entry (a refusal by trust comes before the chain check) */
    e.seq = seq;
    if (seq > 1)
        e.prev_hash = (ProtobufCBinaryData){sizeof prev, prev};
    e.time_ms = fx_now_ms();
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
    e.tombstone = &tomb;
    uint8_t *signed_bytes = NULL;
    size_t slen = 0;
    cr_assert_eq(entry_sign(signer, &e, &signed_bytes, &slen), 0);
    Trib__CatalogEntries ce = TRIB__CATALOG_ENTRIES__INIT;
    ProtobufCBinaryData item = {slen, signed_bytes};
    ce.n_entries = 1;
    ce.entries = &item;
    ce.final = 1;
    *len = trib__catalog_entries__get_packed_size(&ce);
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    trib__catalog_entries__pack(&ce, b);
    free(signed_bytes);
    return b;
}

static uint8_t *entries_body(const identity_t *signer, const char *domain, size_t *len)
{
    return entries_body_at(signer, domain, 1, len);
}

static void ping(rogue_t *r, const char *addr)
{
    static const uint8_t empty[1];
    transport_send(r->t, addr, TRIB__MSG_TYPE__MSG_PUSH_PULL, empty, 0);
}

/* A certificate a peer presents in its hello goes into the federation log (stored, gossiped), not
 * only into the trust store: when that peer is gone before it could hand its own log over, a node
 * joining later still learns its key. The peer here is played from this process and has no
 * federation log at all, so the certificate can reach the newcomer only through node a. */
Test(chartered, a_certificate_met_in_a_hello_reaches_a_node_that_joins_later)
{
    char da[256], dc[256], seed[160];
    identity_t ia, ic, peer;
    cert_t ca, cc, cp;
    node_dir("a", da, sizeof da, &ia);
    node_dir("c", dc, sizeof dc, &ic);
    fx_identity(&peer);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "listening", ic.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "c.cert", &cc);
    issue(NULL, "growth", peer.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &cp);
    h_node_t a, c;
    start(&a, "payments", da, "a.cert", NULL);
    rogue_t r;
    rogue_open(&r, &peer, &cp, a.peer, ia.pk);
    ping(&r, a.peer);
    rogue_until(&r, a.url, "trib_fedlog_objects{kind=\"certificate\"}", 2,
                "the certificate of a peer met in a hello is not in the federation log");
    rogue_close(&r);

    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&c, "listening", dc, "c.cert", seed);
    metric_cond_t m = {c.url, "trib_fedlog_objects{kind=\"certificate\"}", 3};
    cr_assert(h_wait(metric_reached, &m, 15000), "the node that joined later holds %.0f certificates, not 3: see %s",
              h_metric(c.url, m.series), c.log);
    json_t *j = h_get_json(c.url, "/v1/federation", NULL);
    char hex[ID_HEX_LEN];
    identity_hex(peer.pk, hex);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "certificates"), i, o)
        found |= !strcmp(json_string_value(json_object_get(o, "node")) ?: "", hex);
    json_decref(j);
    cr_expect(found, "the peer's certificate is not among the newcomer's");
    cert_free(&ca), cert_free(&cc), cert_free(&cp);
}

#define REFUSED(kind, reason) "trib_trust_refused_total{kind=\"" kind "\",reason=\"" reason "\"}"

Test(chartered, hostile_peers_are_refused_at_connect_and_their_entries_refused)
{
    char da[256];
    identity_t ia;
    cert_t ca;
    node_dir("a", da, sizeof da, &ia);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);

    /* 1. rogue twin with no certificate: its hello is garbage, its messages are dropped */
    identity_t twin;
    fx_identity(&twin);
    rogue_t r;
    rogue_open(&r, &twin, NULL, a.peer, ia.pk);
    ping(&r, a.peer);
    rogue_until(&r, a.url, REFUSED("connect", "malformed"), 1, "a hello without a certificate");
    double unc = h_metric(a.url, "trib_gossip_dropped_total{reason=\"uncertified\"}");
    ping(&r, a.peer);
    rogue_until(&r, a.url, "trib_gossip_dropped_total{reason=\"uncertified\"}", unc + 1,
                "a message of an uncertified key");
    rogue_until(&r, a.url, REFUSED("connect", "uncertified"), 1, "a message of an uncertified key");
    rogue_close(&r);
    still_serves(&a);

    /* 2. rogue twin presenting the real node's certificate (for another key) */
    rogue_open(&r, &twin, &ca, a.peer, ia.pk);
    ping(&r, a.peer);
    rogue_until(&r, a.url, REFUSED("connect", "wrong_key"), 1, "a certificate of another key");
    rogue_close(&r);

    /* 3. expired, not yet valid, below threshold, another federation, forged */
    struct {
        const char *reason;
        int64_t nb, na;
        int below, otherfed, forged;
    } cases[] = {
        {"expired", t - 10 * DAY_MS, t - 2 * DAY_MS, 0, 0, 0},
        {"not_yet_valid", t + 2 * DAY_MS, t + 10 * DAY_MS, 0, 0, 0},
        {"below_threshold", t - DAY_MS, t + DAY_MS, 1, 0, 0},
        {"wrong_federation", t - DAY_MS, t + DAY_MS, 0, 1, 0},
        {"forged", t - DAY_MS, t + DAY_MS, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        identity_t rid;
        cert_t rc;
        fx_identity(&rid);
        charter_t other;
        const identity_t *roots[] = {&R1, &R2, &R3};
        const identity_t *one[] = {&R1};
        if (cases[i].otherfed)
            make_charter(&other, roots, 3);
        issue(cases[i].otherfed ? &other : NULL, "growth", rid.pk, cases[i].nb, cases[i].na,
              cases[i].below ? one : two_roots, cases[i].below ? 1 : 2, cases[i].below, NULL, &rc);
        if (cases[i].otherfed)
            charter_free(&other);
        if (cases[i].forged) /* flip a bit of the last signature */
            rc.bytes[rc.len - 3] ^= 0x01;
        rogue_open(&r, &rid, &rc, a.peer, ia.pk);
        ping(&r, a.peer);
        char series[160];
        snprintf(series, sizeof series, "trib_trust_refused_total{kind=\"connect\",reason=\"%s\"}", cases[i].reason);
        rogue_until(&r, a.url, series, 1, cases[i].reason);
        rogue_close(&r);
        cert_free(&rc);
        still_serves(&a);
    }

    /* 4. an expired key, already held, is refused at the handshake itself (ZAP) when it reconnects */
    double denied = h_metric(a.url, "trib_gossip_dropped_total{reason=\"zap_denied\"}");
    {
        identity_t rid;
        cert_t rc;
        fx_identity(&rid);
        issue(NULL, "growth", rid.pk, t - 10 * DAY_MS, t - 2 * DAY_MS, two_roots, 2, 0, NULL, &rc);
        rogue_open(&r, &rid, &rc, a.peer, ia.pk);
        ping(&r, a.peer);
        rogue_until(&r, a.url, REFUSED("connect", "expired"), 2, "the expired certificate");
        rogue_close(&r);
        rogue_open(&r, &rid, &rc, a.peer, ia.pk);
        ping(&r, a.peer);
        rogue_until(&r, a.url, "trib_gossip_dropped_total{reason=\"zap_denied\"}", denied + 1,
                    "the handshake of a key whose certificate expired");
        rogue_close(&r);
        cert_free(&rc);
    }

    /* 5. a certified node of another domain pushes an entry of payments signed by itself, and one
     * signed by an uncertified key: both refused, counted as entries */
    identity_t gid;
    cert_t gc;
    fx_identity(&gid);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, NULL, &gc);
    rogue_open(&r, &gid, &gc, a.peer, ia.pk);
    size_t len;
    uint8_t *body = entries_body(&gid, "payments", &len);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, len);
    free(body);
    rogue_until(&r, a.url, REFUSED("entry", "wrong_domain"), 1, "an entry of payments signed by growth's key");
    body = entries_body(&twin, "payments", &len);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, len);
    free(body);
    rogue_until(&r, a.url, REFUSED("entry", "uncertified"), 1, "an entry signed by an uncertified key");
    rogue_close(&r);
    cert_free(&gc);
    still_serves(&a);
    long status = 0;
    json_t *j = h_get_json(a.url, "/v1/products/payments/settled", &status);
    json_decref(j);
    cr_expect_eq(status, 404, "a refused entry was stored");

    /* 6. a certified peer whose clock is 5 minutes behind: admitted (the window allows it), but
     * the skew is counted and logged */
    fx_identity(&gid);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, NULL, &gc);
    rogue_open(&r, &gid, NULL, a.peer, ia.pk);
    cr_assert_eq(transport_set_hello(r.t, NULL, 0, NULL, NULL), 0); /* sends its own, skewed hello */
    Trib__CertHello h = TRIB__CERT_HELLO__INIT;
    h.cert.data = gc.bytes;
    h.cert.len = gc.len;
    h.time_ms = fx_now_ms() - 300000;
    size_t hlen = trib__cert_hello__get_packed_size(&h);
    uint8_t *hb = malloc(hlen);
    cr_assert_not_null(hb);
    trib__cert_hello__pack(&h, hb);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CERT_HELLO, hb, hlen);
    free(hb);
    rogue_until(&r, a.url, "trib_clock_skew_peers_total", 1, "a peer 5 minutes behind");
    cr_expect_geq(h_metric(a.url, "trib_clock_skew_max_seconds"), 299, "the skew is not reported in seconds");
    rogue_close(&r);
    cert_free(&gc);
    size_t loglen;
    char *log = h_read_file(a.log, &loglen);
    cr_expect(log && strstr(log, "differs from ours by"), "the skew is not logged");
    free(log);
    still_serves(&a);
    cert_free(&ca);
}

/* ---------------------------------------------------------------- uncertified keys in the member list */

/* The bytes a member signs (gossip/swim_sig.c), written out independently as tests/test_swimsig.c
 * does: "trib/member/v1\0" || id || incarnation (8, big-endian) || kind (ALIVE) || domain, addr,
 * http, link, each prefixed by its length in one byte. Fills m as an ALIVE claim of who, signed by
 * who (sig holds the signature). */
static void signed_claim(Trib__Member *m, const identity_t *who, const char *domain, const char *addr,
                         const char *http, uint8_t sig[64])
{
    trib__member__init(m);
    m->id = (ProtobufCBinaryData){32, (uint8_t *)who->pk};
    m->domain = (char *)domain;
    m->addr = (char *)addr;
    m->http = (char *)http;
    m->link = "";
    m->incarnation = 1;
    m->state = TRIB__MEMBER_STATE__ALIVE;
    uint8_t buf[1024];
    size_t n = sizeof "trib/member/v1";
    memcpy(buf, "trib/member/v1", n);
    memcpy(buf + n, who->pk, 32);
    n += 32;
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)(m->incarnation >> (8 * i));
    buf[n++] = (uint8_t)TRIB__MEMBER_STATE__ALIVE;
    const char *strs[] = {m->domain, m->addr, m->http, m->link};
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(strs[i]);
        buf[n++] = (uint8_t)l;
        memcpy(buf + n, strs[i], l);
        n += l;
    }
    cr_assert_eq(crypto_sign_detached(sig, NULL, buf, n, who->sk), 0);
    m->sig = (ProtobufCBinaryData){64, sig};
}

typedef struct {
    h_node_t *n;
    const char *id;       /* the node id looked for */
    const char *list;     /* in which array of /v1/members: "members" or "uncertified" */
} listed_cond_t;

/* n's /v1/members lists c->id in c->list. */
static int listed_in(void *ctx)
{
    listed_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL), *m;
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(j, c->list), i, m)
        found |= !strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", c->id);
    json_decref(j);
    return found;
}

/* A certified peer relays a node that announces itself (a valid self-signature) under a key the
 * federation never certified. The node gets no connection, and it is no member: /v1/members lists it
 * apart ("uncertified", saying why), `trib members` under a heading of its own, and neither
 * /v1/status's member counts nor trib_members count it. Once a certificate of its key arrives (as a
 * joining node's does, by its hello; here an operator submits it) it is a member like the others.
 * Before, it was listed among the members and counted alive, marked only "unverified". */
Test(chartered, a_self_made_key_is_listed_apart_from_the_members_and_not_counted)
{
    char da[256], xaddr[64];
    identity_t ia, gid, x;
    cert_t ca, gc, xc;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&gid);
    fx_identity(&x);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &gc);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rogue_t r;
    rogue_open(&r, &gid, &gc, a.peer, ia.pk);
    snprintf(xaddr, sizeof xaddr, "127.0.0.1:%d", h_free_port());
    Trib__Member own, made, *ms[] = {&own, &made};
    uint8_t s1[64], s2[64];
    signed_claim(&own, &gid, "growth", transport_addr(r.t), "127.0.0.1:1", s1);
    signed_claim(&made, &x, "listening", xaddr, "127.0.0.1:2", s2);
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.join = 1;
    pp.n_members = 2;
    pp.members = ms;
    size_t len = trib__push_pull__get_packed_size(&pp);
    uint8_t *body = malloc(len);
    cr_assert_not_null(body);
    trib__push_pull__pack(&pp, body);
    cr_assert_eq(transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_PUSH_PULL, body, len), 0);
    free(body);
    listed_cond_t apart = {&a, x.hex, "uncertified"}, member = {&a, x.hex, "members"};
    pump_cond_t p = {&r, {a.url, "trib_members_uncertified", 1}};
    cr_assert(h_wait(pump, &p, 15000), "the self-made key was never counted apart: %s", members_text(&a));
    cr_assert(listed_in(&apart), "the self-made key is not listed as uncertified: %s", members_text(&a));
    cr_expect_not(listed_in(&member), "the self-made key is listed among the members: %s", members_text(&a));

    json_t *j = h_get_json(a.url, "/v1/members", NULL), *o;
    size_t i, nmembers = json_array_size(json_object_get(j, "members"));
    json_array_foreach(json_object_get(j, "uncertified"), i, o) {
        cr_expect_str_eq(json_string_value(json_object_get(o, "trust")) ?: "", "uncertified");
        cr_expect(strstr(json_string_value(json_object_get(o, "detail")) ?: "",
                         "no certificate from the federation for domain listening"), "%s", members_text(&a));
        cr_expect(!json_is_true(json_object_get(o, "verified")));
    }
    json_decref(j);
    j = h_get_json(a.url, "/v1/status", NULL);
    json_t *c = json_object_get(j, "members");
    json_int_t counted = 0;
    static const char *const states[] = {"alive", "suspect", "dead", "left"};
    for (int s = 0; s < 4; s++)
        counted += json_integer_value(json_object_get(c, states[s]));
    cr_expect_eq(counted, (json_int_t)nmembers, "status counts %lld members, /v1/members lists %zu",
                 (long long)counted, nmembers);
    cr_expect_eq(json_integer_value(json_object_get(c, "uncertified")), 1);
    json_decref(j);
    double alive = h_metric(a.url, "trib_members{state=\"alive\"}") + h_metric(a.url, "trib_members{state=\"suspect\"}") +
                   h_metric(a.url, "trib_members{state=\"dead\"}") + h_metric(a.url, "trib_members{state=\"left\"}");
    cr_expect_eq(alive, (double)nmembers, "trib_members counts %.0f, /v1/members lists %zu", alive, nmembers);
    char *out = NULL;
    cr_assert_eq(h_trib(&a, NULL, &out, NULL, "members", NULL), 0);
    const char *head = out ? strstr(out, "not members: 1 node announced without a certificate") : NULL;
    cr_expect(head, "trib members does not set the uncertified key apart:\n%s", out ? out : "");
    cr_expect(head && strstr(head, "listening") && strstr(head, "no certificate from the federation for domain listening"),
              "%s", out ? out : "");
    cr_expect(head && !memmem(out, (size_t)(head - out), "listening", 9),
              "the uncertified key is in the members' table:\n%s", out ? out : "");
    free(out);

    /* its certificate arrives (an operator submits it here; a joining node's comes by its hello) */
    issue(NULL, "listening", x.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &xc);
    json_t *file = cert_to_json(&xc);
    char *text = json_dumps(file, JSON_COMPACT), url[128];
    json_decref(file);
    snprintf(url, sizeof url, "%s/v1/federation/objects", a.url);
    h_resp_t resp;
    cr_assert_eq(h_http("POST", url, "application/json", text, strlen(text), &resp), 0);
    cr_expect_eq(resp.status, 201, "%s", resp.body ? resp.body : "");
    h_resp_free(&resp);
    free(text);
    cr_expect(h_wait(listed_in, &member, 15000), "a certified key is not listed among the members: %s",
              members_text(&a));
    cr_expect_not(listed_in(&apart), "a certified key is still listed as uncertified");
    rogue_close(&r);
    cert_free(&ca), cert_free(&gc), cert_free(&xc);
}

/* ---------------------------------------------------------------- certificates that no longer hold */

/* The objects n's federation log holds. */
static long fed_held(h_node_t *n)
{
    json_t *j = h_get_json(n->url, "/v1/federation", NULL);
    long got = (long)json_integer_value(json_object_get(j, "objects"));
    json_decref(j);
    return got;
}

/* The rogue pushes c to the node at to, as a peer's federation log pushes a new object. */
static void push_objects(rogue_t *r, const char *to, const cert_t *c)
{
    ProtobufCBinaryData obj = {c->len, c->bytes};
    Trib__FedObjects m = TRIB__FED_OBJECTS__INIT;
    m.n_objects = 1;
    m.objects = &obj;
    size_t len = trib__fed_objects__get_packed_size(&m);
    uint8_t *body = malloc(len);
    cr_assert_not_null(body);
    trib__fed_objects__pack(&m, body);
    cr_assert_eq(transport_send(r->t, to, TRIB__MSG_TYPE__MSG_FED_PUSH, body, len), 0);
    free(body);
}

typedef struct {
    rogue_t *r;
    fed_cond_t *c;
} pump_fed_t;

static int pump_until_held(void *ctx)
{
    pump_fed_t *p = ctx;
    transport_msg_t m;
    zmq_pollitem_t items[8];
    int n = transport_pollitems(p->r->t, items, 8);
    zmq_poll(items, n, 10);
    while (transport_recv(p->r->t, &m) == 1)
        transport_msg_free(&m);
    return fed_objects(p->c);
}

/* The rogue (certified as gid, domain growth) relays to the node at to an ALIVE claim of x for
 * domain, signed by x (x at a free address where nothing listens). */
static void relay_claim(rogue_t *r, const identity_t *gid, const char *to, const identity_t *x, const char *domain)
{
    char xaddr[64];
    snprintf(xaddr, sizeof xaddr, "127.0.0.1:%d", h_free_port());
    Trib__Member own, made, *ms[] = {&own, &made};
    uint8_t s1[64], s2[64];
    signed_claim(&own, gid, "growth", transport_addr(r->t), "127.0.0.1:1", s1);
    signed_claim(&made, x, domain, xaddr, "127.0.0.1:2", s2);
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.join = 1;
    pp.n_members = 2;
    pp.members = ms;
    size_t len = trib__push_pull__get_packed_size(&pp);
    uint8_t *body = malloc(len);
    cr_assert_not_null(body);
    trib__push_pull__pack(&pp, body);
    cr_assert_eq(transport_send(r->t, to, TRIB__MSG_TYPE__MSG_PUSH_PULL, body, len), 0);
    free(body);
}

/* POSTs a trust object's file form (a certificate, a revocation) to n: 201 expected. */
static void submit_json(h_node_t *n, json_t *file)
{
    char *text = json_dumps(file, JSON_COMPACT), url[128];
    json_decref(file);
    cr_assert_not_null(text);
    snprintf(url, sizeof url, "%s/v1/federation/objects", n->url);
    h_resp_t resp;
    cr_assert_eq(h_http("POST", url, "application/json", text, strlen(text), &resp), 0);
    cr_assert_eq(resp.status, 201, "POST /v1/federation/objects: %ld %s", resp.status, resp.body ? resp.body : "");
    h_resp_free(&resp);
    free(text);
}

/* The entry of /v1/members' "uncertified" whose node_id is id (a new reference), or NULL. */
static json_t *apart_entry(h_node_t *n, const char *id)
{
    json_t *j = h_get_json(n->url, "/v1/members", NULL), *m, *found = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "uncertified"), i, m)
        if (!strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", id))
            found = json_incref(m);
    json_decref(j);
    return found;
}

typedef struct {
    h_node_t *n;
    const char *id, *trust;
} apart_cond_t;

/* n lists id apart with "trust": c->trust. */
static int apart_as(void *ctx)
{
    apart_cond_t *c = ctx;
    json_t *m = apart_entry(c->n, c->id);
    int ok = m && !strcmp(json_string_value(json_object_get(m, "trust")) ?: "", c->trust);
    json_decref(m);
    return ok;
}

/* n's member counts (/v1/status, trib_members) leave the one node listed apart out. */
static void expect_counted_apart(h_node_t *n)
{
    expect_metric(n->url, "trib_members_uncertified", 1, "the member listed apart");   /* published every 250 ms */
    json_t *j = h_get_json(n->url, "/v1/members", NULL);
    size_t nmembers = json_array_size(json_object_get(j, "members"));
    cr_expect_eq(json_array_size(json_object_get(j, "uncertified")), 1, "%s", members_text(n));
    json_decref(j);
    j = h_get_json(n->url, "/v1/status", NULL);
    json_t *c = json_object_get(j, "members");
    json_int_t counted = 0;
    static const char *const states[] = {"alive", "suspect", "dead", "left"};
    for (int s = 0; s < 4; s++)
        counted += json_integer_value(json_object_get(c, states[s]));
    cr_expect_eq(counted, (json_int_t)nmembers, "status counts %lld members, /v1/members lists %zu",
                 (long long)counted, nmembers);
    cr_expect_eq(json_integer_value(json_object_get(c, "uncertified")), 1);
    json_decref(j);
    double all = h_metric(n->url, "trib_members{state=\"alive\"}") + h_metric(n->url, "trib_members{state=\"suspect\"}") +
                 h_metric(n->url, "trib_members{state=\"dead\"}") + h_metric(n->url, "trib_members{state=\"left\"}");
    cr_expect_eq(all, (double)nmembers, "trib_members counts %.0f, /v1/members lists %zu", all, nmembers);
    cr_expect_eq(h_metric(n->url, "trib_members_uncertified"), 1);
}

static int no_uncertified(void *ctx) { return h_metric(ctx, "trib_members_uncertified") == 0; }

/* How many times text occurs in n's log. */
static int log_count(h_node_t *n, const char *text)
{
    size_t len = 0;
    char *s = h_read_file(n->log, &len);
    int k = 0;
    for (const char *p = s; p && (p = strstr(p, text)); p += strlen(text))
        k++;
    free(s);
    return k;
}

typedef struct {
    h_node_t *n;
    const char *text;
} logged_cond_t;

static int logged(void *ctx)
{
    logged_cond_t *c = ctx;
    return log_count(c->n, c->text) > 0;
}

/* payments (a) publishes 'settled' (public: read without a token) with one record; growth (b) holds
 * it. Both run, certified. */
static void payments_and_growth(h_node_t *a, h_node_t *b, identity_t *ia, cert_t *ca, identity_t *ib, cert_t *cb)
{
    char da[256], db[256], seed[160];
    node_dir("a", da, sizeof da, ia);
    node_dir("b", db, sizeof db, ib);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia->pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", ca);
    issue(NULL, "growth", ib->pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "b.cert", cb);
    start(a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia->hex, a->peer);
    start(b, "growth", db, "b.cert", seed);
    members_cond_t mc = {b, 2};
    cr_assert(h_wait(all_verified, &mc, 20000), "growth does not see two verified alive members: %s", members_text(b));
    char manifest[300], recs[300], *out = NULL, *eout = NULL;
    snprintf(manifest, sizeof manifest, "%s/settled.yaml", work);
    const char *yaml = "name: settled\ndomain: payments\nversion: 1.0.0\nstatus: active\ntitle: Settled\n"
                       "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
                       "  business: a@example.com\n  technical: b@example.com\nclassification: public\nschema:\n"
                       "  - {name: id, logicalType: string, required: true}\n";
    cr_assert_eq(h_write_file(manifest, yaml, strlen(yaml)), 0);
    int rc = h_trib(a, NULL, &out, &eout, "publish", manifest, NULL);
    cr_assert_eq(rc, 0, "publish failed: %s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    snprintf(recs, sizeof recs, "%s/r.ndjson", work);
    cr_assert_eq(h_write_file(recs, "{\"id\":\"x1\"}\n", 12), 0);
    rc = h_trib(a, recs, &out, &eout, "put", "payments/settled", NULL);
    cr_assert_eq(rc, 0, "put failed: %s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    get_cond_t g = {b, "/v1/products/payments/settled"};
    cr_assert(h_wait(get_ok, &g, 15000), "the product did not replicate to growth");
}

/* The revocation of certificate c (by its serial), reason given, in its file form. */
static json_t *revocation_of(const cert_t *c, const char *reason)
{
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 0, c->serial, NULL, fx_now_ms(), reason, two_roots, 2, &rv, err, sizeof err), 0,
                 "%s", err);
    json_t *j = revocation_to_json(&rv);
    revocation_free(&rv);
    return j;
}

/* A node whose certificate is revoked is no member any more: growth lists payments apart with
 * "trust": "revoked" and a detail saying by whom, from when and why, counts it nowhere, logs it
 * once; a new certificate of its key makes it a member again, without a restart. Before, it stayed
 * among the members, marked only trust_refused, and was counted. */
Test(chartered, a_revoked_node_is_listed_apart_and_a_member_again_once_certified_anew)
{
    identity_t ia, ib;
    cert_t ca, cb, again;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    submit_json(&b, revocation_of(&ca, "laptop stolen"));
    apart_cond_t ap = {&b, ia.hex, "revoked"};
    cr_assert(h_wait(apart_as, &ap, 15000), "the revoked node is not listed apart as revoked: %s", members_text(&b));
    listed_cond_t member = {&b, ia.hex, "members"};
    cr_expect_not(listed_in(&member), "the revoked node is still listed among the members: %s", members_text(&b));
    json_t *m = apart_entry(&b, ia.hex);
    const char *detail = json_string_value(json_object_get(m, "detail")) ?: "";
    char serial[17];
    cert_serial_text(ca.serial, serial);
    cr_expect(strstr(detail, serial) && strstr(detail, "revoked from") && strstr(detail, "by the federation's roots") &&
              strstr(detail, "laptop stolen"), "detail: %s", detail);
    json_decref(m);
    expect_counted_apart(&b);
    char *out = NULL;
    cr_assert_eq(h_trib(&b, NULL, &out, NULL, "members", NULL), 0);
    const char *head = out ? strstr(out, "not members: 1 node") : NULL;
    cr_expect(head && strstr(head, "payments") && strstr(head, "revoked from"), "trib members:\n%s", out ? out : "");
    free(out);
    logged_cond_t lc = {&b, "announcing domain 'payments', is not a member: certificate"};
    cr_expect(h_wait(logged, &lc, 5000), "the revoked member was not logged; see %s", b.log);
    still_serves(&b);

    /* the roots certify its key again (a new serial): a member again, alive and verified */
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - 1000, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &again);
    submit_json(&b, cert_to_json(&again));
    members_cond_t mc = {&b, 2};
    cr_expect(h_wait(all_verified, &mc, 20000), "the node certified again is not an alive, verified member: %s",
              members_text(&b));
    cr_expect_null(apart_entry(&b, ia.hex), "still listed apart: %s", members_text(&b));
    cr_expect(h_wait(no_uncertified, b.url, 5000), "trib_members_uncertified stays at %.0f",
              h_metric(b.url, "trib_members_uncertified"));
    cr_expect_eq(log_count(&b, lc.text), 1, "the revoked member was logged more than once; see %s", b.log);
    cert_free(&ca), cert_free(&cb), cert_free(&again);
}

/* A node announced with a key whose only certificate has expired is no member either: listed apart
 * with "trust": "expired" and when it expired, counted nowhere, logged once; a renewed certificate
 * makes it a member. The node is played from this process (a real node cannot start with an expired
 * certificate, and one expiring while it runs is refused only after the 60 s of clock skew allowed):
 * a certified peer relays its signed claim, and its certificates are submitted as an operator does.
 * Before, it was listed among the members, marked only trust_refused. */
Test(chartered, a_node_whose_certificate_expired_is_listed_apart_and_a_member_again_once_renewed)
{
    char da[256];
    identity_t ia, gid, x;
    cert_t ca, gc, old, renewed;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&gid);
    fx_identity(&x);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &gc);
    issue(NULL, "listening", x.pk, t - 3 * DAY_MS, t - 2 * DAY_MS, two_roots, 2, 0, NULL, &old);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rogue_t r;
    rogue_open(&r, &gid, &gc, a.peer, ia.pk);
    /* an operator's expired certificate is refused (it admits nobody); a peer's is held: entries
     * signed in its window are judged by it */
    long held = fed_held(&a);
    push_objects(&r, a.peer, &old);
    fed_cond_t fc = {&a, held + 1};
    pump_fed_t pf = {&r, &fc};
    cr_assert(h_wait(pump_until_held, &pf, 15000), "the peer's expired certificate was not held: %ld", fed_held(&a));
    relay_claim(&r, &gid, a.peer, &x, "listening");
    pump_cond_t p = {&r, {a.url, "trib_members_uncertified", 1}};
    cr_assert(h_wait(pump, &p, 15000), "the expired key was never counted apart: %s", members_text(&a));
    apart_cond_t ap = {&a, x.hex, "expired"};
    cr_assert(apart_as(&ap), "the expired key is not listed apart as expired: %s", members_text(&a));
    listed_cond_t member = {&a, x.hex, "members"};
    cr_expect_not(listed_in(&member), "the expired key is listed among the members: %s", members_text(&a));
    json_t *m = apart_entry(&a, x.hex);
    char when[32], want[64];
    trust_time_text(old.not_after_ms, when);
    snprintf(want, sizeof want, "expired at %s", when);
    const char *detail = json_string_value(json_object_get(m, "detail")) ?: "";
    cr_expect(strstr(detail, want), "detail: %s (wanted '%s')", detail, want);
    json_decref(m);
    expect_counted_apart(&a);
    logged_cond_t lc = {&a, "announcing domain 'listening', is not a member: certificate"};
    cr_expect(h_wait(logged, &lc, 5000), "the expired member was not logged; see %s", a.log);

    issue(NULL, "listening", x.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &renewed);
    submit_json(&a, cert_to_json(&renewed));
    cr_expect(h_wait(listed_in, &member, 15000), "a renewed key is not listed among the members: %s", members_text(&a));
    cr_expect_null(apart_entry(&a, x.hex), "a renewed key is still listed apart: %s", members_text(&a));
    cr_expect_eq(log_count(&a, lc.text), 1, "the expired member was logged more than once; see %s", a.log);
    rogue_close(&r);
    cert_free(&ca), cert_free(&gc), cert_free(&old), cert_free(&renewed);
}

/* The state n's /v1/members gives id, in either array ("" when not listed). */
static void state_of(h_node_t *n, const char *id, char *out, size_t cap)
{
    json_t *j = h_get_json(n->url, "/v1/members", NULL), *m;
    size_t i;
    const char *lists[] = {"members", "uncertified"};
    snprintf(out, cap, "%s", "");
    for (int k = 0; k < 2; k++)
        json_array_foreach(json_object_get(j, lists[k]), i, m)
            if (!strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", id))
                snprintf(out, cap, "%s", json_string_value(json_object_get(m, "state")) ?: "");
    json_decref(j);
}

typedef struct {
    h_node_t *n;
    const char *a, *b;
} both_dead_t;

static int both_dead(void *ctx)
{
    both_dead_t *c = ctx;
    char sa[32], sb[32];
    state_of(c->n, c->a, sa, sizeof sa);
    state_of(c->n, c->b, sb, sizeof sb);
    return !strcmp(sa, "dead") && !strcmp(sb, "dead");
}

/* Verdicts that change with time alone: a certificate dated ahead makes its node a member at its
 * not_before (60 s of skew allowed), and a revocation dated ahead makes it none at its effective
 * time, each within the loop's tick, logged once, with nothing else happening meanwhile (the node
 * and the peer that relayed it are dead by then: no member changes). Before, the member list was
 * judged again only at the next change of certificates, revocations or members. */
Test(chartered, a_certificate_and_a_revocation_dated_ahead_take_effect_at_their_time)
{
    char da[256];
    identity_t ia, gid, x;
    cert_t ca, gc, later;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&gid);
    fx_identity(&x);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &gc);
    /* valid from t + 32 s here (60 s of skew allowed before not_before), revoked from t + 38 s: the
     * played nodes are dead well before (suspicion takes ~10 s on a loaded machine) */
    int64_t valid_at = t + 32000, revoked_at = t + 38000;
    issue(NULL, "listening", x.pk, valid_at + 60000, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &later);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    submit_json(&a, cert_to_json(&later));
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 0, later.serial, NULL, revoked_at, "moved", two_roots, 2, &rv, err, sizeof err),
                 0, "%s", err);
    submit_json(&a, revocation_to_json(&rv));
    revocation_free(&rv);
    rogue_t r;
    rogue_open(&r, &gid, &gc, a.peer, ia.pk);
    relay_claim(&r, &gid, a.peer, &x, "listening");
    pump_cond_t p = {&r, {a.url, "trib_members_uncertified", 1}};
    cr_assert(h_wait(pump, &p, 15000), "the key not valid yet was never counted apart: %s", members_text(&a));
    apart_cond_t ap = {&a, x.hex, "not_yet_valid"};
    cr_assert(apart_as(&ap), "the key is not listed apart as not valid yet: %s", members_text(&a));
    rogue_close(&r);
    /* quiet: the played nodes are silent (nothing answers them), so no member change re-judges */
    both_dead_t bd = {&a, x.hex, gid.hex};
    cr_assert(h_wait(both_dead, &bd, 25000), "the played nodes are not dead: %s", members_text(&a));
    cr_assert_lt(fx_now_ms(), valid_at - 500, "too slow to test the certificate's start (%lld ms left)",
                 (long long)(valid_at - fx_now_ms()));

    listed_cond_t member = {&a, x.hex, "members"};
    cr_expect(h_wait(listed_in, &member, (int)(valid_at - fx_now_ms()) + 1500),
              "a certificate that became valid did not make its node a member: %s", members_text(&a));
    cr_expect_geq(fx_now_ms(), valid_at - 100, "a member before its certificate's start");
    cr_expect(h_wait(no_uncertified, a.url, 1500), "trib_members_uncertified stays at %.0f",
              h_metric(a.url, "trib_members_uncertified"));
    logged_cond_t lc = {&a, "announcing domain 'listening', is a member now"};
    cr_expect(h_wait(logged, &lc, 2000), "becoming a member was not logged; see %s", a.log);

    ap.trust = "revoked";
    cr_expect(h_wait(apart_as, &ap, (int)(revoked_at - fx_now_ms()) + 1500),
              "a revocation that took effect did not set its node apart: %s", members_text(&a));
    cr_expect_geq(fx_now_ms(), revoked_at - 100, "set apart before the revocation's effective time");
    expect_metric(a.url, "trib_members_uncertified", 1, "the member revoked at its time");
    logged_cond_t rl = {&a, "announcing domain 'listening', is not a member: certificate"};
    cr_expect(h_wait(logged, &rl, 2000), "the revoked member was not logged; see %s", a.log);
    cr_expect_eq(log_count(&a, "is a member now"), 1, "see %s", a.log);
    cr_expect_eq(log_count(&a, "revoked from"), 1, "the revocation was logged more than once; see %s", a.log);
    still_serves(&a);
    cert_free(&ca), cert_free(&gc), cert_free(&later);
}

/* Polls the rogue's transport until n lists the node as asked (listed_in). */
typedef struct {
    rogue_t *r;
    listed_cond_t *l;
} pump_listed_t;

static int pump_listed(void *ctx)
{
    pump_listed_t *p = ctx;
    transport_msg_t m;
    zmq_pollitem_t items[8];
    int n = transport_pollitems(p->r->t, items, 8);
    zmq_poll(items, n, 10);
    while (transport_recv(p->r->t, &m) == 1)
        transport_msg_free(&m);
    return listed_in(p->l);
}

/* Node a (payments) holds certificate cx of x (domain listening, signed by roots xr) and also
 * (NULL: none), and lists x as a member, relayed by a played certified peer (growth); both played
 * nodes are dead on return, so no member change re-judges the list after. */
static void dead_member(h_node_t *a, identity_t *x, const identity_t *const *xr, cert_t *cx, const cert_t *also)
{
    char da[256];
    identity_t ia, gid;
    cert_t ca, gc;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&gid);
    fx_identity(x);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", gid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &gc);
    issue(NULL, "listening", x->pk, t - DAY_MS, t + 90 * DAY_MS, xr, 2, 0, NULL, cx);
    start(a, "payments", da, "a.cert", NULL);
    submit_json(a, cert_to_json(cx));
    if (also)
        submit_json(a, cert_to_json(also));
    rogue_t r;
    rogue_open(&r, &gid, &gc, a->peer, ia.pk);
    relay_claim(&r, &gid, a->peer, x, "listening");
    listed_cond_t member = {a, x->hex, "members"};
    pump_listed_t pl = {&r, &member};
    cr_assert(h_wait(pump_listed, &pl, 15000), "the certified key did not become a member: %s", members_text(a));
    rogue_close(&r);
    both_dead_t bd = {a, x->hex, gid.hex};
    cr_assert(h_wait(both_dead, &bd, 25000), "the played nodes are not dead: %s", members_text(a));
    cr_assert(listed_in(&member), "the certified key is not a member: %s", members_text(a));
    cert_free(&ca), cert_free(&gc);
    identity_wipe(&ia), identity_wipe(&gid);
}

/* Writes ms to the file the wall clock shim reads (tests/shim/wallclock.c). */
static void wall_offset(const char *file, long long ms)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%lld\n", ms);
    cr_assert_eq(h_write_file(file, text, (size_t)n), 0, "cannot write %s", file);
}

/* The environment the next node started takes: its wall clock read from file wall (the shim,
 * LD_PRELOAD, next to this test binary). Returns what ASAN_OPTIONS was, for wall_env_off. */
static char *wall_env_on(const char *wall)
{
    char shim[512], asan[600];
    ssize_t len = readlink("/proc/self/exe", shim, sizeof shim - 32);
    cr_assert_gt(len, 0);
    shim[len] = '\0';
    snprintf(strrchr(shim, '/'), 32, "/wallclock.so");
    cr_assert_eq(access(shim, R_OK), 0, "%s is missing (make it: its rule is in the Makefile)", shim);
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", was ? was : "", was && *was ? ":" : "");
    char *was_copy = was ? strdup(was) : NULL;
    setenv("LD_PRELOAD", shim, 1);
    setenv("TRIB_TEST_WALL_FILE", wall, 1);
    setenv("ASAN_OPTIONS", asan, 1);
    return was_copy;
}

/* Nodes started from now on run on the real clock again (was_copy: wall_env_on's, freed). */
static void wall_env_off(char *was_copy)
{
    unsetenv("LD_PRELOAD");
    unsetenv("TRIB_TEST_WALL_FILE");
    if (was_copy)
        setenv("ASAN_OPTIONS", was_copy, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(was_copy);
}

/* A wall clock that stepped back left the member list as judged at a time the clock had not reached
 * again: a revocation that took effect before the step (at R) is, by the node's clock after it,
 * still ahead (and its own checks of connections and entries say so), yet the list kept the member
 * revoked until the next instant it had scheduled (here the certificates' ends, months away), as
 * long as no member changed: one minute back, for good. It is judged again as soon as the clock is
 * seen below the time it was judged at, and the step is logged; forward again, at R as before.
 * Node a's wall clock is moved by tests/shim/wallclock.c (LD_PRELOAD); the test's is not. */
Test(chartered, a_wall_clock_stepped_back_judges_the_members_again)
{
    char wall[300];
    snprintf(wall, sizeof wall, "%s/wall", work);
    wall_offset(wall, 0);
    char *was = wall_env_on(wall);   /* node a only: the environment its process starts with */
    h_node_t a;
    identity_t x;
    cert_t cx;
    dead_member(&a, &x, two_roots, &cx, NULL);
    wall_env_off(was);

    int64_t revoked_at = fx_now_ms() + 3000;
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 0, cx.serial, NULL, revoked_at, "moved", two_roots, 2, &rv, err, sizeof err),
                 0, "%s", err);
    submit_json(&a, revocation_to_json(&rv));
    revocation_free(&rv);
    apart_cond_t ap = {&a, x.hex, "revoked"};
    cr_assert(h_wait(apart_as, &ap, 6000), "the revocation did not take effect: %s", members_text(&a));

    wall_offset(wall, -60000);   /* a minute back: before the revocation's time */
    listed_cond_t member = {&a, x.hex, "members"};
    cr_expect(h_wait(listed_in, &member, 3000), "the clock stepped back before the revocation's time, and the "
              "member is still listed revoked: %s", members_text(&a));
    logged_cond_t lc = {&a, "clock: the wall clock stepped back"};
    cr_expect(h_wait(logged, &lc, 2000), "the step back was not logged; see %s", a.log);

    wall_offset(wall, 0);        /* forward again, past it */
    cr_expect(h_wait(apart_as, &ap, 3000), "forward again past the revocation's time, the member is not set apart: "
              "%s", members_text(&a));
    still_serves(&a);
    cert_free(&cx);
}

/* A key hand-over (its old key gives the domain to a certified new key) is a change of what the
 * member list says, now or at the end of its overlap: held after the list was last judged, with
 * nothing else happening, it makes the old key no member once the overlap ends, listed apart as
 * "rotated". Before, a hand-over was not counted as a change: neither was the list judged again
 * when it came, nor was the end of its overlap among the instants judged at (trust_next_change),
 * so the retired key stayed a member until some certificate, revocation or member changed. */
Test(chartered, a_key_handed_over_is_no_member_once_its_overlap_ends)
{
    identity_t x, next;
    cert_t cx, cn;
    h_node_t a;
    fx_identity(&next);   /* certified before: its certificate is judged with the members */
    int64_t t = fx_now_ms();
    issue(NULL, "listening", next.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &cn);
    dead_member(&a, &x, two_roots, &cx, &cn);
    /* x hands listening over to next, from now, with 4 s of overlap: nothing else changes after */
    rotation_t rot;
    int64_t from = fx_now_ms(), until = from + 4000;
    cr_assert_eq(rotation_make(&x, "listening", next.pk, from, until - from, &rot, err, sizeof err), 0, "%s", err);
    submit_json(&a, rotation_to_json(&rot));
    rotation_free(&rot);
    listed_cond_t member = {&a, x.hex, "members"};
    cr_expect(listed_in(&member) || fx_now_ms() >= until, "a member no more before its overlap ended: %s",
              members_text(&a));
    apart_cond_t ap = {&a, x.hex, "rotated"};
    cr_expect(h_wait(apart_as, &ap, (int)(until - fx_now_ms()) + 2000),
              "a key whose overlap ended is still a member: %s", members_text(&a));
    cr_expect_geq(fx_now_ms(), until - 100, "set apart before its overlap ended");
    still_serves(&a);
    cert_free(&cx), cert_free(&cn);
    identity_wipe(&x), identity_wipe(&next);
}

/* A charter update that removes a root leaves the certificates that root signed below the threshold
 * (the update re-checks them): a member certified by R1 and R3 is no member once R3 is gone, listed
 * apart as "below_threshold", with nothing else happening. Before, a charter was not counted as a
 * change of the list, which kept such a member until some certificate, revocation or member changed. */
Test(chartered, a_member_whose_certificate_a_charter_update_leaves_below_threshold_is_set_apart)
{
    identity_t x;
    cert_t cx;
    h_node_t a;
    const identity_t *const r13[] = {&R1, &R3};
    dead_member(&a, &x, r13, &cx, NULL);
    charter_t v2 = ch;   /* the roots R1 and R2: R3 removed */
    v2.bytes = NULL;
    v2.nkeys = 2;
    cr_assert_eq(charter_sign(&ch, &v2, two_roots, 2, err, sizeof err), 0, "%s", err);
    submit_json(&a, charter_to_json(&v2));
    charter_free(&v2);
    apart_cond_t ap = {&a, x.hex, "below_threshold"};
    cr_expect(h_wait(apart_as, &ap, 3000), "a member whose certificate lost its roots' threshold is still one: %s",
              members_text(&a));
    still_serves(&a);
    cert_free(&cx);
    identity_wipe(&x);
}

/* GET n.url+path with a token and a Prefer header (each NULL: none): status, the "error" and "detail" of the body, and
 * how long the answer took (ms). */
typedef struct {
    long status, ms;
    char error[64], detail[1024];
} answer_t;

static size_t keep_body(char *p, size_t size, size_t n, void *ctx)
{
    char *buf = ctx;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 8192) {
        memcpy(buf + have, p, add);
        buf[have + add] = '\0';
    }
    return size * n;
}

static void get_answer(h_node_t *n, const char *path, const char *token, const char *prefer, answer_t *a)
{
    char url[512], body[8192] = "", line[4400];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    struct curl_slist *l = NULL;
    if (token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", token);
        l = curl_slist_append(l, line);
    }
    if (prefer) {
        snprintf(line, sizeof line, "Prefer: %s", prefer);
        l = curl_slist_append(l, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    long t0 = h_now_ms();
    CURLcode rc = curl_easy_perform(h);
    a->ms = h_now_ms() - t0;
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(l);
    curl_easy_cleanup(h);
    json_t *j = json_loads(body, 0, NULL);
    snprintf(a->error, sizeof a->error, "%s", json_string_value(json_object_get(j, "error")) ?: "");
    snprintf(a->detail, sizeof a->detail, "%.1000s", json_string_value(json_object_get(j, "detail")) ?: body);
    json_decref(j);
}

typedef struct {
    h_node_t *n;
    const char *id, *refused;
} refused_cond_t;

/* n's /v1/members has id, in any array, with "trust_refused": c->refused. */
static int member_refused(void *ctx)
{
    refused_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL), *m;
    size_t i;
    int found = 0;
    const char *lists[] = {"members", "uncertified"};
    for (int k = 0; k < 2; k++)
        json_array_foreach(json_object_get(j, lists[k]), i, m)
            found |= !strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", c->id) &&
                     !strcmp(json_string_value(json_object_get(m, "trust_refused")) ?: "", c->refused);
    json_decref(j);
    return found;
}

/* A routed read towards a domain whose only claimant is not certified for it (here revoked) is
 * answered 503 owner_unreachable at once, saying no node certified for the domain is known and
 * naming the claimant and why: a range read, one asking for a redirect to the owner, a live stream.
 * Each is counted (trib_trust_refused_total{kind="owner"}), logged once, and the node serves on.
 * Before, the revoked node was picked as the owner: its replies were dropped as uncertified and the
 * client waited for the open timeout. */
Test(chartered, a_routed_read_whose_only_claimant_is_not_certified_is_answered_503_at_once)
{
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    submit_json(&b, revocation_of(&ca, "key lost"));
    /* growth judges payments revoked (its member says so, listed apart or not: the code before this
     * commit kept it among the members) */
    refused_cond_t rc = {&b, ia.hex, "revoked"};
    cr_assert(h_wait(member_refused, &rc, 15000), "growth does not judge payments revoked: %s", members_text(&b));
    static const struct { const char *path, *prefer; } reads[] = {
        {"/v1/products/payments/settled/records", NULL},
        {"/v1/products/payments/settled/records", "redirect=owner"},
        {"/v1/products/payments/settled/stream", NULL},
    };
    double declined = h_metric(b.url, "trib_http_redirect_declined_total{reason=\"uncertified\"}");
    char prefix[13];
    snprintf(prefix, sizeof prefix, "%.12s", ia.hex);
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++) {
        answer_t an;
        get_answer(&b, reads[i].path, NULL, reads[i].prefer, &an);
        cr_expect_eq(an.status, 503, "%s: %ld %s", reads[i].path, an.status, an.detail);
        cr_expect_str_eq(an.error, "owner_unreachable", "%s", an.detail);
        cr_expect(strstr(an.detail, "no node certified for domain 'payments' is known") && strstr(an.detail, prefix) &&
                  strstr(an.detail, "revoked from"), "%s: detail %s", reads[i].path, an.detail);
        /* at once: no wait for an owner's reply (the open timeout is 2 s) */
        cr_expect_lt(an.ms, 1000, "%s%s answered after %ld ms", reads[i].path, reads[i].prefer ? " (redirect)" : "",
                     an.ms);
    }
    cr_expect_eq(h_metric(b.url, "trib_http_redirect_declined_total{reason=\"uncertified\"}"), declined + 1);
    cr_expect_eq(h_metric(b.url, REFUSED("owner", "revoked")), 3);
    cr_expect_eq(log_count(&b, "refused owner (revoked)"), 1, "one line for three refusals within 10 s; see %s", b.log);
    still_serves(&b);
    json_t *j = h_get_json(b.url, "/v1/products/payments/settled", NULL);
    cr_expect_not_null(j, "growth stopped answering for the product");
    json_decref(j);
    cert_free(&ca), cert_free(&cb);
}

/* A raw HTTP/1.0 GET of path on n (a live stream): the connected socket. */
static int stream_open(h_node_t *n, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect to %s", n->url);
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    return fd;
}

/* Reads fd into buf (NUL-terminated, at most cap - 1 bytes) until it holds text (NULL: until the
 * end of the answer) or timeout_ms passes: 1 when found (or ended), 0 on timeout. */
static int stream_until(int fd, char *buf, size_t cap, size_t *len, const char *text, int timeout_ms)
{
    long end = h_now_ms() + timeout_ms;
    while (!(text && strstr(buf, text))) {
        long left = end - h_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t k = read(fd, buf + *len, cap - 1 - *len);
        if (k <= 0)
            return text == NULL;
        *len += (size_t)k;
        buf[*len] = '\0';
    }
    return 1;
}

/* A live stream relayed from an owner whose certificate is revoked while it runs ends at once, after
 * its last record, with the trust reason (an owner_lost line naming the revocation, as a new read is
 * answered 503 owner_unreachable), counted in trib_trust_refused_total{kind="owner"}, and the relay
 * serves on. Before, the owner's answers were dropped and the stream waited for the stall timeout,
 * then ended saying only that the owner was silent. */
Test(chartered, a_live_stream_from_an_owner_revoked_mid_stream_ends_at_once_with_the_reason)
{
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    int fd = stream_open(&b, "/v1/products/payments/settled/stream?from=1");
    static char buf[65536];
    size_t len = 0;
    buf[0] = '\0';
    cr_assert(stream_until(fd, buf, sizeof buf, &len, "\"x1\"", 15000), "the first record never came: %s", buf);
    double before = h_metric(b.url, REFUSED("owner", "revoked"));
    long t0 = h_now_ms();
    submit_json(&b, revocation_of(&ca, "key lost"));
    int ended = stream_until(fd, buf, sizeof buf, &len, NULL, 15000);
    long took = h_now_ms() - t0;
    close(fd);
    cr_assert(ended, "the stream did not end: %s", buf);
    cr_expect_lt(took, 1500, "the stream ended %ld ms after the revocation was submitted", took);
    char *last = strrchr(buf, '{');
    json_t *j = last ? json_loads(last, 0, NULL) : NULL;
    const char *kind = json_string_value(json_object_get(j, "error")) ?: "",
               *detail = json_string_value(json_object_get(j, "detail")) ?: "";
    cr_expect_str_eq(kind, "owner_lost", "last line: %s", last ? last : buf);
    char serial[17], prefix[13];
    cert_serial_text(ca.serial, serial);
    snprintf(prefix, sizeof prefix, "%.12s", ia.hex);
    cr_expect(strstr(detail, "no node certified for domain 'payments'") && strstr(detail, prefix) &&
              strstr(detail, serial) && strstr(detail, "revoked from") && strstr(detail, "key lost"),
              "detail: %s", detail);
    json_decref(j);
    /* counted by the loop right after it ends the stream: the client may see the end first */
    expect_metric(b.url, REFUSED("owner", "revoked"), before + 1, "the ended stream was not counted");
    still_serves(&b);
    cert_free(&ca), cert_free(&cb);
}

/* A range read relayed over the data link from an owner whose certificate is revoked while it runs
 * ends at once with the trust reason (an owner_lost line naming the revocation), counted in
 * trib_trust_refused_total{kind="owner"}; what the relay holds of the owner's answer is not sent on.
 * Before, the read ran to its end from the revoked owner. The read is far larger than the sockets
 * and links between owner, relay and this client hold, and this client stops reading after its
 * first bytes, so the read is still open when the revocation comes. */
#define CUT_RECORDS 400000
Test(chartered, a_range_read_from_an_owner_revoked_mid_read_ends_at_once_with_the_reason)
{
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    char recs[300], *out = NULL, *eout = NULL;
    snprintf(recs, sizeof recs, "%s/many.ndjson", work);
    for (int i = 2; i <= CUT_RECORDS;) {   /* ~100 B each, in puts of 100,000 (the node's --max-records) */
        FILE *f = fopen(recs, "w");
        cr_assert_not_null(f);
        for (int k = 0; k < 100000 && i <= CUT_RECORDS; k++, i++)
            fprintf(f, "{\"id\":\"x%d-%s\"}\n", i, "0123456789012345678901234567890123456789012345678901234567890123456789012345678");
        cr_assert_eq(fclose(f), 0);
        int rc = h_trib(&a, recs, &out, &eout, "put", "payments/settled", NULL);
        cr_assert_eq(rc, 0, "put failed: %s %s", out ? out : "", eout ? eout : "");
        free(out), free(eout);
    }
    int fd = stream_open(&b, "/v1/products/payments/settled/records?from=1");
    static char buf[65536];
    size_t len = 0;
    buf[0] = '\0';
    cr_assert(stream_until(fd, buf, sizeof buf, &len, "\"x1\"", 15000), "the first record never came: %s", buf);
    cr_assert(strstr(buf, "200 OK"), "not a 200: %.300s", buf);
    double before = h_metric(b.url, REFUSED("owner", "revoked"));
    long t0 = h_now_ms();
    submit_json(&b, revocation_of(&ca, "key lost"));
    /* the relay ends the read once it judges the owner revoked: counted then */
    metric_cond_t mc = {b.url, REFUSED("owner", "revoked"), before + 1};
    cr_assert(h_wait(metric_reached, &mc, 10000), "the open read was not ended and counted");
    long took = h_now_ms() - t0;
    /* read the rest (what the sockets held), keeping the tail, counting the records */
    size_t total = 0, records = 0;
    int ended = 0;
    for (long end = h_now_ms() + 30000; h_now_ms() < end;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if (len > sizeof buf / 2) {   /* keep the last half */
            memmove(buf, buf + len - sizeof buf / 4, sizeof buf / 4);
            len = sizeof buf / 4;
        }
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k <= 0) {
            ended = 1;
            break;
        }
        for (ssize_t i = 0; i < k; i++)
            records += buf[len + (size_t)i] == '\n';
        len += (size_t)k;
        total += (size_t)k;
        buf[len] = '\0';
    }
    close(fd);
    cr_assert(ended, "the read did not end within 30 s of the revocation");
    cr_expect_lt(took, 5000, "the read was ended %ld ms after the revocation was submitted", took);
    cr_expect_lt(records, (size_t)CUT_RECORDS - 1000, "the read ran to its end (%zu lines after the revocation)", records);
    char *last = strrchr(buf, '{');
    json_t *j = last ? json_loads(last, 0, NULL) : NULL;
    const char *kind = json_string_value(json_object_get(j, "error")) ?: "",
               *detail = json_string_value(json_object_get(j, "detail")) ?: "";
    cr_expect_str_eq(kind, "owner_lost", "last line: %.400s", last ? last : buf);
    char serial[17];
    cert_serial_text(ca.serial, serial);
    cr_expect(strstr(detail, "no node certified for domain 'payments'") && strstr(detail, serial) &&
              strstr(detail, "revoked from") && strstr(detail, "key lost"), "detail: %s", detail);
    json_decref(j);
    still_serves(&b);
    cert_free(&ca), cert_free(&cb);
}

/* GET /v1/whoami on n with token: status, and the body in out. */
static long whoami(h_node_t *n, const char *token, char *out, size_t cap)
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1/whoami", n->url);
    h_resp_t r;
    cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, token, &r), 0);
    snprintf(out, cap, "%s", r.body ? r.body : "");
    long st = r.status;
    h_resp_free(&r);
    return st;
}

typedef struct {
    h_node_t *n;
    const char *token;
} refused_tok_t;

static int token_refused(void *ctx)
{
    refused_tok_t *c = ctx;
    char body[2048];
    return whoami(c->n, c->token, body, sizeof body) == 401;
}

/* A token refused as expired at a node whose clock is ahead of its issuer's may be a new token:
 * when the node has seen a peer's clock off by more than the 60 s allowed, and by more than the
 * token is past its expiry, the refusal says so and names trib_clock_skew_max_seconds. Before, it
 * only said "expired ... 300 s ago; ask its issuer for a new one" (a new one fails the same way).
 * Growth's wall clock is 10 minutes ahead (tests/shim/wallclock.c, LD_PRELOAD). */
Test(chartered, a_token_expired_by_a_clock_ahead_says_the_clocks_differ)
{
    char wall[300], da[256], db[256], seed[160], *out = NULL, *eout = NULL;
    snprintf(wall, sizeof wall, "%s/wall", work);
    wall_offset(wall, 600000);
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", ib.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "b.cert", &cb);
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    char *was = wall_env_on(wall);   /* growth only: the environment its process starts with */
    start(&b, "growth", db, "b.cert", seed);
    wall_env_off(was);
    expect_metric(b.url, "trib_clock_skew_max_seconds", 590, "growth did not see payments' clock 10 min behind");

    int rc = h_trib(&a, NULL, &out, &eout, "token", "issue", "--sub", "job@payments", "--kind", "read", "--ttl", "5m",
                    NULL);
    cr_assert_eq(rc, 0, "token issue: %s %s", out ? out : "", eout ? eout : "");
    out[strcspn(out, "\n")] = '\0';
    char body[2048];
    cr_assert_eq(whoami(&a, out, body, sizeof body), 200, "the new token at its issuer: %s", body);
    cr_assert_eq(whoami(&b, out, body, sizeof body), 401, "the new token at a node 10 min ahead: %s", body);
    cr_assert(strstr(body, "token_expired") && strstr(body, "differs from a peer's by up to 6") &&
              strstr(body, "trib_clock_skew_max_seconds") && strstr(body, "fix the clocks (NTP)"), "%s", body);
    free(out), free(eout);
    cert_free(&ca), cert_free(&cb);
}

/* A token issued by a key the federation revoked is refused saying so: which certificate, since
 * when, the federation's reason, under its own reason in trib_token_refused_total
 * (issuer_revoked), logged once per 10 s; a cached verification (the token was used before) is
 * refused the same way. Before, it was refused as unknown_issuer: "not a key of domain". */
Test(chartered, a_token_issued_by_a_revoked_key_is_refused_naming_the_revocation)
{
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    char body[2048];
    cr_assert_eq(whoami(&b, a.token, body, sizeof body), 200, "payments' admin token on growth: %s", body);
    submit_json(&b, revocation_of(&ca, "key lost"));
    refused_tok_t rt = {&b, a.token};
    cr_assert(h_wait(token_refused, &rt, 15000), "the revoked key's token is still accepted");
    char serial[17];
    cert_serial_text(ca.serial, serial);
    h_node_t *nodes[] = {&b, &a};   /* b verified it before (cached); a, its issuer, too */
    for (int k = 0; k < 2; k++) {
        rt.n = nodes[k];   /* a's own copy of the revocation comes by the federation log */
        cr_assert(h_wait(token_refused, &rt, 15000), "the revoked key's token is accepted on %s", nodes[k]->url);
        double before = h_metric(nodes[k]->url, "trib_token_refused_total{reason=\"issuer_revoked\"}");
        double invalid = h_metric(nodes[k]->url, "trib_token_refused_total{reason=\"token_invalid\"}");
        cr_assert_eq(whoami(nodes[k], a.token, body, sizeof body), 401);
        json_t *j = json_loads(body, 0, NULL);
        const char *detail = json_string_value(json_object_get(j, "detail")) ?: "";
        cr_expect_str_eq(json_string_value(json_object_get(j, "error")) ?: "", "token_invalid", "%s", body);
        cr_expect(strstr(detail, "issuer_revoked") && strstr(detail, serial) && strstr(detail, "revoked from") &&
                  strstr(detail, "key lost") && !strstr(detail, "unknown_issuer"), "%s: detail %s", nodes[k]->url,
                  detail);
        json_decref(j);
        cr_expect_eq(h_metric(nodes[k]->url, "trib_token_refused_total{reason=\"issuer_revoked\"}"), before + 1);
        cr_expect_eq(h_metric(nodes[k]->url, "trib_token_refused_total{reason=\"token_invalid\"}"), invalid,
                     "counted as token_invalid too");
        cr_expect_eq(log_count(nodes[k], "(issuer_revoked): its issuing key"), 1, "one line per 10 s; see %s",
                     nodes[k]->log);
    }
    still_serves(&b);
    cert_free(&ca), cert_free(&cb);
}

typedef struct {
    h_node_t *n;
    const char *path, *trust;
} owner_trust_t;

/* n's product page (c->path) gives its owner_node "trust": c->trust. */
static int owner_trust_is(void *ctx)
{
    owner_trust_t *c = ctx;
    json_t *j = h_get_json(c->n->url, c->path, NULL);
    int ok = !strcmp(json_string_value(json_object_get(json_object_get(j, "owner_node"), "trust")) ?: "", c->trust);
    json_decref(j);
    return ok;
}

/* A product page names what the node knows of its owner's key now: owner_node's "trust" is verified,
 * then revoked once a revocation is held, with the detail /v1/members gives a node listed apart
 * (the certificate, since when, the reason), and `trib show` says so on its owner node row. Before,
 * the page showed the owner's address as dead (or alive) and only "trust verified": the signer's
 * standing when it signed. */
Test(chartered, a_product_page_says_its_owner_is_revoked)
{
    identity_t ia, ib;
    cert_t ca, cb;
    h_node_t a, b;
    payments_and_growth(&a, &b, &ia, &ca, &ib, &cb);
    owner_trust_t ot = {&b, "/v1/products/payments/settled", "verified"};
    cr_expect(owner_trust_is(&ot), "before the revocation");
    submit_json(&b, revocation_of(&ca, "laptop stolen"));
    ot.trust = "revoked";
    cr_assert(h_wait(owner_trust_is, &ot, 15000), "the product page does not say its owner is revoked");
    json_t *j = h_get_json(b.url, ot.path, NULL);
    json_t *on = json_object_get(j, "owner_node");
    const char *detail = json_string_value(json_object_get(on, "detail")) ?: "";
    char serial[17];
    cert_serial_text(ca.serial, serial);
    cr_expect(strstr(detail, serial) && strstr(detail, "revoked from") && strstr(detail, "laptop stolen"), "detail: %s",
              detail);
    apart_cond_t ap = {&b, ia.hex, "revoked"};   /* the words of /v1/members for the same node */
    cr_expect(h_wait(apart_as, &ap, 15000), "%s", members_text(&b));
    json_t *apart = apart_entry(&b, ia.hex);
    cr_expect_str_eq(detail, json_string_value(json_object_get(apart, "detail")) ?: "", "%s", members_text(&b));
    json_decref(apart);
    cr_expect(json_is_true(json_object_get(j, "verified")), "the signature stays verified (certified when it signed)");
    json_decref(j);
    char *out = NULL;
    cr_assert_eq(h_trib(&b, NULL, &out, NULL, "show", "payments/settled", NULL), 0);
    const char *row = out ? strstr(out, "owner node") : NULL;
    cr_expect(row && strstr(row, "revoked: certificate") && strstr(row, "reads of it are refused"), "trib show:\n%s",
              out ? out : "");
    free(out);
    cert_free(&ca), cert_free(&cb);
}

/* ---------------------------------------------------------------- own-domain sync and trust */

typedef struct {
    rogue_t *r;
    const char *log;
} log_cond_t;

/* The node's log says how its own-domain wait past OWN_SYNC_MS ended: it waits on, or it went
 * ahead (pumping the rogue's transport meanwhile). */
static int own_wait_decided(void *ctx)
{
    log_cond_t *c = ctx;
    transport_msg_t m;
    zmq_pollitem_t items[8];
    int n = transport_pollitems(c->r->t, items, 8);
    zmq_poll(items, n, 10);
    while (transport_recv(c->r->t, &m) == 1)
        transport_msg_free(&m);
    size_t len = 0;
    char *s = h_read_file(c->log, &len);
    int done = s && (strstr(s, "publishing waits past") || strstr(s, "publishing anyway"));
    free(s);
    return done;
}

/* Publishes product NAME of payments on n: trib's exit status, its stderr in *eout (free it). */
static int publish_try(h_node_t *n, const char *name, char **eout)
{
    char manifest[512], yaml[1024];
    snprintf(manifest, sizeof manifest, "%s/%s.yaml", work, name);
    snprintf(yaml, sizeof yaml,
             "name: %s\ndomain: payments\nversion: 1.0.0\nstatus: active\ntitle: T\n"
             "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
             "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
             "  - {name: id, logicalType: string, required: true}\n", name);
    cr_assert_eq(h_write_file(manifest, yaml, strlen(yaml)), 0);
    char *out = NULL;
    *eout = NULL;
    int rc = h_trib(n, NULL, &out, eout, "publish", manifest, NULL);
    free(out);
    return rc;
}

static void publish_ok(h_node_t *n, const char *name)
{
    char *eout = NULL;
    int rc = publish_try(n, name, &eout);
    cr_assert_eq(rc, 0, "publish of %s failed: %s", name, eout ? eout : "");
    free(eout);
}

/* payments (node a, key ia, certificate ca in work/a.cert) publishes 'settled', which replicates to
 * growth (node b); both stop. */
static void payments_with_one_entry(h_node_t *a, h_node_t *b, char *da, identity_t *ia, cert_t *ca, identity_t *ib)
{
    char db[256], seed[160];
    cert_t cb;
    node_dir("a", da, 256, ia);
    node_dir("b", db, sizeof db, ib);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia->pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", ca);
    issue(NULL, "growth", ib->pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "b.cert", &cb);
    start(a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia->hex, a->peer);
    start(b, "growth", db, "b.cert", seed);
    members_cond_t mc = {a, 2};
    cr_assert(h_wait(all_verified, &mc, 20000), "payments does not see two verified alive members: %s",
              members_text(a));
    publish_ok(a, "settled");
    get_cond_t g = {b, "/v1/products/payments/settled"};
    cr_assert(h_wait(get_ok, &g, 15000), "the product did not replicate to growth");
    cr_assert_eq(h_node_stop(b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(a, SIGTERM), 0);
    cert_free(&cb);
}

/* Sends payments' digest at head to the node at addr from the rogue. */
static void send_digest_at(rogue_t *r, const char *addr, uint64_t seq)
{
    Trib__DomainHead head = TRIB__DOMAIN_HEAD__INIT, *heads[] = {&head};
    head.domain = "payments";
    head.seq = seq;
    Trib__CatalogDigest d = TRIB__CATALOG_DIGEST__INIT;
    d.heads = heads;
    d.n_heads = 1;
    size_t len = trib__catalog_digest__get_packed_size(&d);
    uint8_t *body = malloc(len);
    cr_assert_not_null(body);
    trib__catalog_digest__pack(&d, body);
    transport_send(r->t, addr, TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, body, len);
    free(body);
}

/* Polls the rogue's transport until the node asks it about domain alone (an only_listed digest
 * naming it), as a node asks the sender of entries it held for their key's certificate. */
typedef struct {
    rogue_t *r;
    const char *domain;
} asked_cond_t;

static int pump_asked(void *ctx)
{
    asked_cond_t *a = ctx;
    transport_msg_t m;
    zmq_pollitem_t items[8];
    int n = transport_pollitems(a->r->t, items, 8), asked = 0;
    zmq_poll(items, n, 10);
    while (transport_recv(a->r->t, &m) == 1) {
        Trib__CatalogDigest *d = m.type == TRIB__MSG_TYPE__MSG_CATALOG_DIGEST
                                     ? trib__catalog_digest__unpack(NULL, m.body_len, m.body) : NULL;
        for (size_t i = 0; d && d->only_listed && i < d->n_heads; i++)
            asked |= !strcmp(d->heads[i]->domain, a->domain) && d->heads[i]->seq == 0;
        if (d)
            trib__catalog_digest__free_unpacked(d, NULL);
        transport_msg_free(&m);
    }
    return asked;
}

/* Entries and certificates travel apart (catalog, federation log), so a node that joins or comes
 * back may meet a domain's entries just before their key's certificate. They are not refused as
 * uncertified then (a hostile event, counted and logged, on every ordinary join): the key is held,
 * its sender's log asked, and once the certificate comes the sender is asked for the domain again
 * and the entries are taken, nothing counted. Entries of a key no certificate of comes for are
 * refused after the wait (10 s), counted one by one, logged once; its later entries at once. */
Test(chartered, entries_met_before_their_key_s_certificate_are_taken_once_it_comes, .timeout = 120)
{
    char da[256];
    identity_t ia, rid, kid, xid;
    cert_t ca, rc, kc;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&rid);
    fx_identity(&kid);
    fx_identity(&xid);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "listening", rid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &rc);
    issue(NULL, "growth", kid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &kc);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rogue_t r;
    rogue_open(&r, &rid, &rc, a.peer, ia.pk);   /* a certified peer (listening) relays growth's entry */
    size_t len;
    uint8_t *growth = entries_body(&kid, "growth", &len);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, growth, len);
    rogue_until(&r, a.url, "trib_trust_entries_awaiting_certificate", 1,
                "growth's entry, met before its key's certificate, is not waiting for it");
    cr_expect_eq(h_metric(a.url, REFUSED("entry", "uncertified")), 0, "the entry was refused before its wait");

    /* the certificate comes (as a peer's federation log pushes it): the rogue is asked for growth again */
    push_objects(&r, a.peer, &kc);
    asked_cond_t ac = {&r, "growth"};
    cr_assert(h_wait(pump_asked, &ac, 15000), "the sender was not asked for growth once its key's certificate "
              "came: see %s", a.log);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, growth, len);
    free(growth);
    rogue_until(&r, a.url, "trib_catalog_entries_total{result=\"accepted\"}", 1, "growth's entry, sent again");
    cr_expect_eq(h_metric(a.url, REFUSED("entry", "uncertified")), 0);
    cr_expect_eq(h_metric(a.url, "trib_trust_certificate_waits_total{outcome=\"certified\"}"), 1);
    cr_expect_eq(h_metric(a.url, "trib_trust_entries_awaiting_certificate"), 0);
    cr_expect_eq(log_count(&a, "refused entry"), 0, "see %s", a.log);

    /* a key no certificate comes for: three entries held, then refused after the wait, logged once */
    int64_t held_at = h_now_ms();
    for (uint64_t seq = 1; seq <= 3; seq++) {
        uint8_t *b = entries_body_at(&xid, "audit", seq, &len);
        transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, b, len);
        free(b);
    }
    rogue_until(&r, a.url, "trib_trust_entries_awaiting_certificate", 3, "audit's entries are not waiting");
    rogue_until(&r, a.url, REFUSED("entry", "uncertified"), 3, "audit's entries, no certificate coming");
    cr_expect_geq(h_now_ms() - held_at, 9000, "refused before the wait ran out");
    cr_expect_eq(h_metric(a.url, "trib_trust_certificate_waits_total{outcome=\"refused\"}"), 1);
    cr_expect_eq(log_count(&a, "refused entry (uncertified): 3 entries of domain audit"), 1, "see %s", a.log);
    /* its next entry is refused at once */
    uint8_t *b = entries_body_at(&xid, "audit", 1, &len);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, b, len);
    free(b);
    rogue_until(&r, a.url, REFUSED("entry", "uncertified"), 4, "audit's later entry");
    cr_expect_eq(h_metric(a.url, "trib_trust_entries_awaiting_certificate"), 0);
    rogue_close(&r);
    still_serves(&a);
    long status = 0;
    json_t *j = h_get_json(a.url, "/v1/products/audit/settled", &status);
    json_decref(j);
    cr_expect_eq(status, 404, "a refused entry was stored");
    cert_free(&ca), cert_free(&rc), cert_free(&kc);
}

/* A certified peer that sends entries signed by ever new keys (never certified) took all 64 keys
 * the node waits for, and every key met meanwhile from anyone (a node joining) was refused at once
 * as uncertified, counted as hostile: the wait undone for the 70 s a key's slot stays taken (10 s
 * held, 60 s refused), and the peer may go on. A peer's entries hold 8 keys now; its others are
 * refused at once (counted, trib_trust_certificate_waits_total{outcome="per_sender"}), and another
 * peer's entry of a key whose certificate has not come yet still waits for it. */
Test(chartered, a_peer_signing_with_fresh_keys_leaves_room_for_the_others_keys, .timeout = 120)
{
    char da[256];
    identity_t ia, rid, hid, kid;
    cert_t ca, rc, hc;
    node_dir("a", da, sizeof da, &ia);
    fx_identity(&rid);
    fx_identity(&hid);
    fx_identity(&kid);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "listening", rid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &rc);
    issue(NULL, "relay", hid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &hc);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rogue_t r, h;
    rogue_open(&r, &rid, &rc, a.peer, ia.pk);
    rogue_open(&h, &hid, &hc, a.peer, ia.pk);
    size_t len;
    int64_t sent_at = h_now_ms();
    for (int i = 0; i < 64; i++) {
        identity_t x;
        fx_identity(&x);
        uint8_t *b = entries_body(&x, "junk", &len);
        transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, b, len);
        free(b);
    }
    /* (a message sent before the rogue's hello was taken may be lost: most, not all, are counted) */
    rogue_until(&r, a.url, "trib_trust_entries_awaiting_certificate", 8, "the peer's first 8 keys are not waiting");
    rogue_until(&r, a.url, "trib_trust_certificate_waits_total{outcome=\"per_sender\"}", 48,
                "the peer's keys past its 8 were not refused at once");
    cr_expect_lt(h_now_ms() - sent_at, 9000, "the peer's keys were refused only after their wait; see %s", a.log);
    cr_expect_eq(h_metric(a.url, "trib_trust_entries_awaiting_certificate"), 8, "see %s", a.log);

    /* another certified peer relays growth's entry, its key's certificate not here yet: it waits */
    uint8_t *growth = entries_body(&kid, "growth", &len);
    transport_send(h.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, growth, len);
    free(growth);
    rogue_until(&h, a.url, "trib_trust_entries_awaiting_certificate", 9, "growth's entry is not waiting");
    cr_expect_eq(h_metric(a.url, "trib_trust_certificate_waits_total{outcome=\"full\"}"), 0,
                 "growth's entry was refused at once, no room");
    rogue_close(&r);
    rogue_close(&h);
    still_serves(&a);
    cert_free(&ca), cert_free(&rc), cert_free(&hc);
}

/* A node restarted with its own domain's log at seq 1 hears that the log goes on (a digest at 3,
 * and seq 2 signed by a key it holds no certificate of: say the domain's key was re-certified and
 * that certificate has not reached this node). Publishing now would put a second entry at seq 2:
 * the not_synced gate must stay shut past its 10 s deadline, saying why. */
Test(chartered, own_entries_refused_as_uncertified_keep_publishing_shut_past_the_deadline)
{
    char da[256];
    identity_t ia, ib, rid, next;
    cert_t ca, rc;
    h_node_t a, b;
    payments_with_one_entry(&a, &b, da, &ia, &ca, &ib);
    fx_identity(&rid);
    fx_identity(&next);
    int64_t t = fx_now_ms();
    issue(NULL, "listening", rid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &rc);
    cr_assert_eq(h_node_restart(&a), 0);   /* holds seq 1 and a stored member: publishing waits */

    rogue_t r;
    rogue_open(&r, &rid, &rc, a.peer, ia.pk);
    send_digest_at(&r, a.peer, 3);
    size_t len;
    uint8_t *body = entries_body_at(&next, "payments", 2, &len);
    transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, len);
    free(body);
    rogue_until(&r, a.url, REFUSED("entry", "uncertified"), 1, "payments' seq 2 signed by a key without a certificate");

    log_cond_t lc = {&r, a.log};
    cr_assert(h_wait(own_wait_decided, &lc, 30000), "payments neither waited on nor went ahead in 30 s: see %s",
              a.log);
    char *eout = NULL;
    int rcode = publish_try(&a, "refunds", &eout);
    cr_assert_neq(rcode, 0, "payments published past the deadline although its log goes on beyond its head "
                  "(a fork)");
    cr_assert(eout && strstr(eout, "not_synced") && strstr(eout, "uncertified"),
              "the refusal does not say why: %s", eout ? eout : "");
    free(eout);
    rogue_close(&r);
    still_serves(&a);
    cert_free(&ca), cert_free(&rc);
}

/* The hostile side of the rule above: a certified peer (of another domain) pushes entries of
 * payments beyond its head, each under a made-up key, and never stops. The gate stays shut only for
 * the bounded wait (OWN_SYNC_MS + OWN_UNCERT_MS, 10 + 30 s) in which a genuine key's certificate
 * would have come through the federation log; then publishing goes on, counted in /metrics and
 * logged once, the refusals counted and logged rate-limited, and reads are served throughout. */
Test(chartered, a_peer_pushing_uncertified_entries_of_our_domain_keeps_publishing_shut_only_for_a_bounded_time,
     .timeout = 240)
{
    char da[256];
    identity_t ia, ib, rid;
    cert_t ca, rc;
    h_node_t a, b;
    payments_with_one_entry(&a, &b, da, &ia, &ca, &ib);
    fx_identity(&rid);
    int64_t t = fx_now_ms();
    issue(NULL, "listening", rid.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &rc);
    long restarted = h_now_ms();
    cr_assert_eq(h_node_restart(&a), 0);

    rogue_t r;
    rogue_open(&r, &rid, &rc, a.peer, ia.pk);
    uint64_t seq = 2;
    int refusals = 0, published = 0;
    long shut_until = 0, deadline = h_now_ms() + 120000, next_try = h_now_ms() + 2000;
    while (!published && h_now_ms() < deadline) {
        identity_t made_up;
        fx_identity(&made_up);
        size_t len;
        uint8_t *body = entries_body_at(&made_up, "payments", seq++, &len);
        send_digest_at(&r, a.peer, seq);
        transport_send(r.t, a.peer, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, len);
        free(body);
        pump_cond_t p = {&r, {a.url, "trib_never_a_series", 1}};
        h_wait(pump, &p, 300);                      /* sends, answers; 300 ms between pushes */
        if (h_now_ms() < next_try)
            continue;
        next_try = h_now_ms() + 2000;
        char *eout = NULL;
        if (publish_try(&a, "refunds", &eout) == 0)
            published = 1;
        else {
            cr_assert(eout && strstr(eout, "not_synced"), "publish refused for another reason: %s", eout ? eout : "");
            refusals++;
            shut_until = h_now_ms();
            get_cond_t g = {&a, "/v1/products/payments/settled"};
            cr_assert(get_ok(&g), "reads are not served while publishing waits");
        }
        free(eout);
    }
    cr_assert(published, "payments never published: a peer pushing uncertified entries of its domain keeps it shut "
              "forever (see %s)", a.log);
    cr_expect_geq(refusals, 1, "publishing was never shut while the claims were fresh");
    cr_expect_geq(shut_until - restarted, 30000, "publishing opened at %ld ms, before the bounded wait ran out",
                  shut_until - restarted);
    cr_expect_eq(h_metric(a.url, "trib_catalog_own_claims_dismissed_total"), 1);
    cr_expect_geq(h_metric(a.url, REFUSED("entry", "uncertified")), 10, "the pushed entries are not counted");
    size_t loglen = 0;
    char *log = h_read_file(a.log, &loglen);
    const char *at = log ? strstr(log, "taken as unproven claims") : NULL;
    cr_expect(at && !strstr(at + 1, "taken as unproven claims"), "the going ahead is not logged exactly once");
    /* rate-limited: at most one line per 10 s (zap.c REFUSAL_LOG_MS) since the restart, and fewer
     * lines than refusals; bounded by the time, not by how many pushes a loaded machine let through */
    size_t lines = 0, most = 1 + (size_t)((h_now_ms() - restarted) / 10000);
    for (const char *l = log; l && (l = strstr(l, "trust: refused entry (uncertified)")); l++)
        lines++;
    double refused_n = h_metric(a.url, REFUSED("entry", "uncertified"));
    cr_expect(lines >= 1 && lines <= most && lines < refused_n,
              "the refusals are not logged rate-limited: %zu lines for %.0f refusals in %zu s", lines, refused_n,
              (size_t)((h_now_ms() - restarted) / 1000));
    free(log);
    rogue_close(&r);
    still_serves(&a);
    cert_free(&ca), cert_free(&rc);
}

/* A replacement key (certified with --prev-serial, taking over payments after its key was lost) on
 * a brand-new data dir holds none of the domain's log. Publishing at once would write seq 1 over
 * the log growth holds: with no peer to ask it stays shut, saying why; with a seed it fetches the
 * log first, and its first publish is seq 2, which growth accepts (no fork). */
Test(chartered, a_replacement_key_on_a_new_data_dir_publishes_only_after_fetching_its_domain_log)
{
    char da[256], dn[256], seed[160];
    identity_t ia, ib, in;
    cert_t ca, cn;
    h_node_t a, b, n, n2;
    payments_with_one_entry(&a, &b, da, &ia, &ca, &ib);
    cr_assert_eq(h_node_restart(&b), 0);
    node_dir("a2", dn, sizeof dn, &in);
    int64_t t = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, "payments", in.pk, t - DAY_MS, t + 90 * DAY_MS, ca.serial, two_roots, 2, &cn, err,
                            sizeof err), 0, "%s", err);
    char path[256];
    snprintf(path, sizeof path, "%s/a2.cert", work);
    json_t *j = cert_to_json(&cn);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);

    /* no peer to ask: shut, saying why, also past the 10 s an ordinary node waits */
    start(&n, "payments", dn, "a2.cert", NULL);
    char *eout = NULL;
    long until = h_now_ms() + 12000;
    do {
        cr_assert_neq(publish_try(&n, "refunds", &eout), 0, "a replacement key published seq 1 with nobody to ask");
        cr_assert(eout && strstr(eout, "not_synced") && strstr(eout, "replaces"), "the refusal does not say why: %s",
                  eout ? eout : "");
        free(eout);
        metric_cond_t m = {n.url, "trib_catalog_own_synced", 1};
        cr_assert(!h_wait(metric_reached, &m, 1000), "the replacement key's gate opened with nobody to ask");
    } while (h_now_ms() < until);
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);

    /* with growth as its seed: it fetches seq 1 first */
    snprintf(seed, sizeof seed, "%s@%s", ib.hex, b.peer);
    start(&n2, "payments", dn, "a2.cert", seed);
    long deadline = h_now_ms() + 40000;
    int rc;
    while ((rc = publish_try(&n2, "refunds", &eout)) != 0 && h_now_ms() < deadline) {
        cr_assert(eout && strstr(eout, "not_synced"), "publish refused for another reason: %s", eout ? eout : "");
        free(eout);
        eout = NULL;
        metric_cond_t m = {n2.url, "trib_catalog_own_synced", 1};
        h_wait(metric_reached, &m, 1000);
    }
    cr_assert_eq(rc, 0, "the replacement key never published: %s (see %s)", eout ? eout : "", n2.log);
    free(eout);
    get_cond_t g = {&n2, "/v1/products/payments/settled"};
    cr_assert(get_ok(&g), "the replacement key published before it held its domain's seq 1");
    g = (get_cond_t){&b, "/v1/products/payments/refunds"};
    cr_assert(h_wait(get_ok, &g, 15000), "growth did not accept the replacement key's first entry (a fork at seq 1?): "
              "see %s and %s", n2.log, b.log);
    cr_expect_eq(h_metric(b.url, "trib_catalog_forks_total"), 0);
    cert_free(&ca), cert_free(&cn);
}

Test(chartered, a_seed_with_the_wrong_node_id_fails_the_handshake_and_is_reported)
{
    char da[256], db[256], seed[160];
    identity_t ia, ib, wrong;
    cert_t ca, cb;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    fx_identity(&wrong);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    issue(NULL, "growth", ib.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "b.cert", &cb);
    h_node_t a, b;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", wrong.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    expect_metric(b.url, "trib_gossip_dropped_total{reason=\"handshake_failed_out\"}", 1,
                  "the connection to a seed with the wrong node id");
    char hex16[17];
    memcpy(hex16, wrong.hex, 16);
    hex16[16] = '\0';
    size_t len;
    char *log = NULL;
    long deadline = h_now_ms() + 15000;
    while (h_now_ms() < deadline) {
        free(log);
        log = h_read_file(b.log, &len);
        if (log && strstr(log, hex16) && strstr(log, a.peer))
            break;
        usleep(50000);
    }
    cr_assert(log && strstr(log, hex16) && strstr(log, "wrong node id"), "the log does not name the seed's node id");
    free(log);
    json_t *j = h_get_json(b.url, "/v1/members", NULL);
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "members");
    cr_expect_eq(json_array_size(arr), 1, "growth joined through a seed whose key it could not verify");
    json_decref(j);
    still_serves(&a);
    still_serves(&b);
    cert_free(&ca), cert_free(&cb);
}

/* ---------------------------------------------------------------- open mode: the rogue twin is a conflict */

typedef struct {
    h_node_t *n;
} conflict_cond_t;

static int conflict_shown(void *ctx)
{
    conflict_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL);
    json_t *arr = json_object_get(j, "members");
    size_t i, conflicts = 0;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        conflicts += json_is_true(json_object_get(m, "conflict"));
        cr_assert(!json_is_true(json_object_get(m, "verified")), "open mode shows a member as verified");
    }
    json_decref(j);
    size_t len;
    char *log = h_read_file(c->n->log, &len);
    int logged = log && strstr(log, "CONFLICT: domain 'payments'");
    free(log);
    return conflicts == 2 && logged;
}

Test(chartered, open_mode_rogue_twin_is_shown_and_logged_as_a_conflict_on_every_node)
{
    h_node_t a, twin, other;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0);
    cr_assert_eq(h_node_start(&twin, "payments", "--seed", a.peer, FAST, NULL), 0);
    cr_assert_eq(h_node_start(&other, "growth", "--seed", a.peer, FAST, NULL), 0);
    conflict_cond_t c = {&a};
    cr_assert(h_wait(conflict_shown, &c, 20000), "payments does not show the conflicting claim");
    c.n = &other;
    cr_assert(h_wait(conflict_shown, &c, 20000), "a third node does not show the conflicting claim");
    char *out = NULL, *eout = NULL;
    cr_assert_eq(h_trib(&other, NULL, &out, &eout, "members", NULL), 0);
    cr_expect(out && strstr(out, "CONFLICT"), "trib members: %s", out ? out : "");
    free(out), free(eout);
    json_t *j = h_get_json(other.url, "/v1/status", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "trust")) ?: "", "unverified");
    json_decref(j);
}

/* ---------------------------------------------------------------- random hellos (in process) */

static int hello_calls;

/* What gossip/zap.c does first with a hello's bytes: parse them as a certificate (bounded). */
static int parse_hello(void *ctx, transport_hello_t *h)
{
    (void)ctx;
    cert_t c;
    char e[256];
    hello_calls++;
    if (cert_parse(h->cert, h->len, &c, e, sizeof e) != 0)
        return 0;
    cert_free(&c);
    return 0;
}

static int refuse_all(void *ctx, const uint8_t curve_pk[32], int connect)
{
    (void)ctx, (void)curve_pk, (void)connect;
    return TRANSPORT_PROVISIONAL;
}

/* 2,000 hellos of random bytes, of random CertHello fields and of mutated real certificates reach
 * a chartered transport: each is taken as a hello (counted), refused, and nothing else is delivered. */
Test(chartered, random_certificate_hellos_are_refused_and_counted)
{
    identity_t node, client;
    fx_identity(&node);
    fx_identity(&client);
    void *zctx = zmq_ctx_new();
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    transport_t *t = transport_new(zctx, &node, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    transport_set_allow(t, refuse_all, NULL);
    static const uint8_t mine[] = {0x0a, 0x00};
    cr_assert_eq(transport_set_hello(t, mine, sizeof mine, parse_hello, NULL), 0);
    void *cctx = zmq_ctx_new();
    peer_client_t *c = peer_client_new(cctx, transport_addr(t), &client, node.curve_pk);
    cr_assert_not_null(c);
    cert_t real;
    int64_t now = fx_now_ms();
    issue(NULL, "growth", client.pk, now - DAY_MS, now + DAY_MS, two_roots, 2, 0, NULL, &real);
    enum { N = 2000 };
    uint8_t buf[1024];
    for (int i = 0; i < N; i++) {
        size_t len;
        uint8_t *body = buf, *packed = NULL;
        if (i % 3 == 0) {                       /* random bytes */
            len = randombytes_uniform(sizeof buf);
            randombytes_buf(buf, len);
        } else {                                /* a CertHello around random or mutated cert bytes */
            Trib__CertHello h = TRIB__CERT_HELLO__INIT;
            uint8_t cb[600];
            size_t cl = real.len < sizeof cb ? real.len : sizeof cb;
            memcpy(cb, real.bytes, cl);
            if (i % 3 == 1) {
                for (int k = 0; k < 1 + (int)randombytes_uniform(4); k++)
                    cb[randombytes_uniform((uint32_t)cl)] ^= (uint8_t)(1 + randombytes_uniform(255));
            } else {
                cl = randombytes_uniform(sizeof cb);
                randombytes_buf(cb, cl);
            }
            h.cert.data = cb;
            h.cert.len = cl;
            h.want_reply = i & 1;
            h.time_ms = (int64_t)randombytes_random() << 20;
            len = trib__cert_hello__get_packed_size(&h);
            packed = malloc(len);
            cr_assert_not_null(packed);
            trib__cert_hello__pack(&h, packed);
            body = packed;
        }
        peer_envelope_t e;
        peer_envelope_init(&e, &client, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CERT_HELLO, body, len);
        cr_assert_eq(peer_client_send_envelope(c, &e), 0);
        free(packed);
        if (i % 100 == 99) { /* keep the queue bounded: wait for this batch */
            int delivered = 0;
            cr_assert(peer_wait_stat(t, offsetof(transport_stats_t, hellos_in), (uint64_t)i + 1, 10000, &delivered),
                      "hello %d did not arrive", i);
            cr_assert_eq(delivered, 0, "a hello was delivered as a message");
        }
    }
    const transport_stats_t *st = transport_stats(t);
    cr_expect_eq(st->hellos_in, N);
    cr_expect_eq(st->hellos_refused, N);
    cr_expect_leq(hello_calls, N, "the hello function ran for %d of %d hellos", hello_calls, N);
    cert_free(&real);
    peer_client_destroy(&c);
    transport_destroy(&t);
    zmq_ctx_term(cctx);
    zmq_ctx_term(zctx);
}

/* ---------------------------------------------------------------- a hello that expired unsent */

/* Pumps both transports (a sends, b receives) until b's stat at field reaches want. */
static int pump_pair(transport_t *a, transport_t *b, size_t field, uint64_t want, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;
    for (;;) {
        transport_stats_t s = *transport_stats(b);
        if (*(const uint64_t *)((const char *)&s + field) >= want)
            return 1;
        if (peer_now_ms() > end)
            return 0;
        zmq_pollitem_t items[16];
        int n = transport_pollitems(a, items, 8);
        n += transport_pollitems(b, items + n, 8);
        zmq_poll(items, n, 20);
        transport_msg_t m;
        while (transport_recv(a, &m) == 1)
            transport_msg_free(&m);
        while (transport_recv(b, &m) == 1)
            transport_msg_free(&m);
    }
}

/* A connection's hello waits with its messages for the connection; one that expired (the peer
 * not up within pending_ms: on a busy machine a CURVE handshake can outlast it) is sent again
 * before the next message, which the peer would otherwise drop as uncertified. */
Test(chartered, a_hello_that_expired_unsent_goes_before_the_next_message)
{
    identity_t ia, ib;
    fx_identity(&ia);
    fx_identity(&ib);
    void *zctx = zmq_ctx_new(), *bctx = zmq_ctx_new();
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    o.pending_ms = 200;
    transport_t *a = transport_new(zctx, &ia, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    static const uint8_t mine[] = {0x0a, 0x00};
    cr_assert_eq(transport_set_hello(a, mine, sizeof mine, parse_hello, NULL), 0);
    char addr[32];
    int port = h_free_port();
    cr_assert_gt(port, 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    cr_assert_eq(transport_set_peer(a, addr, ib.pk, 1), 0);
    /* nobody listens at addr yet: the hello and the ping expire unsent */
    cr_assert_eq(transport_send(a, addr, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"x", 1), 0);
    int64_t end = peer_now_ms() + 10000;
    while (transport_stats(a)->send_dropped < 2 && peer_now_ms() < end) {
        zmq_pollitem_t items[8];
        int n = transport_pollitems(a, items, 8);
        zmq_poll(items, n, 20);
        transport_msg_t m;
        while (transport_recv(a, &m) == 1)
            transport_msg_free(&m);
    }
    cr_assert_geq(transport_stats(a)->send_dropped, 2, "the hello and the ping did not expire");
    transport_opts_default(&o);
    o.per_node_keys = 1;
    transport_t *b = transport_new(bctx, &ib, addr, &o, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    transport_set_allow(b, refuse_all, NULL);    /* provisional: only a hello is taken */
    cr_assert_eq(transport_set_hello(b, mine, sizeof mine, parse_hello, NULL), 0);
    cr_assert_eq(transport_send(a, addr, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"y", 1), 0);
    cr_assert(pump_pair(a, b, offsetof(transport_stats_t, dropped_uncertified), 1, 15000),
              "the second ping did not arrive");
    cr_expect_geq(transport_stats(b)->hellos_in, 1, "the ping arrived with no hello before it");
    transport_destroy(&b);
    transport_destroy(&a);
    zmq_ctx_term(bctx);
    zmq_ctx_term(zctx);
}

static int admit_hello(void *ctx, transport_hello_t *h)
{
    (void)ctx, (void)h;
    return 1;
}

/* A hello asking for ours, from a node we have no connection to, opens none for the answer: our
 * hello goes first on the connection our first message to it opens (a reply, on the priority lane
 * where the membership replies go), so a node that answers a joiner keeps one connection to it, and
 * one that never sends to it (the other end of a gossip Ping, which gets no reply) opens none. At
 * N = 20 the answers alone opened 50 of the ~370 connections of a join. */
Test(chartered, a_hello_is_answered_by_the_first_message_back_not_a_connection_of_its_own)
{
    identity_t ia, ib;
    fx_identity(&ia);
    fx_identity(&ib);
    void *actx = zmq_ctx_new(), *bctx = zmq_ctx_new();
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    o.priority_types = 1u << TRIB__MSG_TYPE__MSG_PING | 1u << TRIB__MSG_TYPE__MSG_ACK;
    transport_t *a = transport_new(actx, &ia, "127.0.0.1:0", &o, err, sizeof err);
    transport_t *b = transport_new(bctx, &ib, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert(a && b, "%s", err);
    static const uint8_t mine[] = {0x0a, 0x00};
    cr_assert_eq(transport_set_hello(a, mine, sizeof mine, admit_hello, NULL), 0);
    cr_assert_eq(transport_set_hello(b, mine, sizeof mine, admit_hello, NULL), 0);
    char baddr[64];
    snprintf(baddr, sizeof baddr, "%s", transport_addr(b));
    cr_assert_eq(transport_set_peer(a, baddr, ib.pk, 1), 0);
    cr_assert_eq(transport_send(a, baddr, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"x", 1), 0);
    cr_assert(pump_pair(a, b, offsetof(transport_stats_t, msgs_in[TRIB__MSG_TYPE__MSG_PING]), 1, 15000),
              "the hello and the ping did not arrive");
    cr_assert_eq(transport_stats(b)->hellos_in, 1);
    cr_expect_eq(transport_stats(b)->peers_open, 0, "b opened a connection to answer the hello alone");
    cr_expect_eq(transport_stats(b)->msgs_out[TRIB__MSG_TYPE__MSG_CERT_HELLO], 0);
    cr_assert_eq(transport_send(b, transport_addr(a), TRIB__MSG_TYPE__MSG_ACK, (const uint8_t *)"y", 1), 0);
    cr_assert(pump_pair(b, a, offsetof(transport_stats_t, msgs_in[TRIB__MSG_TYPE__MSG_ACK]), 1, 15000),
              "the reply did not arrive");
    cr_expect_eq(transport_stats(a)->hellos_in, 1, "b's hello did not go before its reply");
    cr_expect_eq(transport_stats(b)->peers_open, 1, "the reply opened %llu connections",
                 (unsigned long long)transport_stats(b)->peers_open);
    transport_destroy(&b);
    transport_destroy(&a);
    zmq_ctx_term(bctx);
    zmq_ctx_term(actx);
}

/* Node b holds a's certificate until it loses it (b_holds_a = 0: say b restarted from a store that
 * lacks it): until then a's messages are dropped and a is asked for its hello. */
static int b_holds_a;
static uint8_t a_curve[32];

static int allow_if_held(void *ctx, const uint8_t curve_pk[32], int connect)
{
    (void)ctx, (void)connect;
    return b_holds_a && !memcmp(curve_pk, a_curve, 32) ? TRANSPORT_ADMIT : TRANSPORT_PROVISIONAL;
}

static int hold_hello(void *ctx, transport_hello_t *h)
{
    (void)ctx, (void)h;
    b_holds_a = 1;
    return 1;
}

/* a dialled b by a seed given by hostname (localhost:PORT); b advertises 127.0.0.1:PORT. When b
 * loses a's certificate it drops a's messages and asks a for its hello (to a's address); a must
 * answer on the connection it has to b, found by b's key, though no connection of a's is under the
 * address b advertises. Before, a looked for one by that address string and answered nothing, so
 * b dropped everything a sent until a happened to dial b's advertised address. */
Test(chartered, a_peer_known_by_two_addresses_is_answered_by_its_key_not_its_address)
{
    identity_t ia, ib;
    fx_identity(&ia);
    fx_identity(&ib);
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(a_curve, ia.pk), 0);
    void *actx = zmq_ctx_new(), *bctx = zmq_ctx_new();
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    o.priority_types = 1u << TRIB__MSG_TYPE__MSG_PING | 1u << TRIB__MSG_TYPE__MSG_ACK;
    transport_t *a = transport_new(actx, &ia, "127.0.0.1:0", &o, err, sizeof err);
    transport_t *b = transport_new(bctx, &ib, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert(a && b, "%s", err);
    static const uint8_t mine[] = {0x0a, 0x00};
    cr_assert_eq(transport_set_hello(a, mine, sizeof mine, admit_hello, NULL), 0);
    cr_assert_eq(transport_set_hello(b, mine, sizeof mine, hold_hello, NULL), 0);
    transport_set_allow(b, allow_if_held, NULL);
    const char *badv = transport_addr(b);
    cr_assert(!strncmp(badv, "127.0.0.1:", 10), "b advertises %s", badv);
    char seed[64];
    snprintf(seed, sizeof seed, "localhost:%s", badv + 10);
    cr_assert_eq(transport_set_peer(a, seed, ib.pk, 1), 0);
    b_holds_a = 0;
    cr_assert_eq(transport_send(a, seed, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"x", 1), 0);
    cr_assert(pump_pair(a, b, offsetof(transport_stats_t, msgs_in[TRIB__MSG_TYPE__MSG_PING]), 1, 15000),
              "a's first hello and ping did not reach b through %s", seed);
    cr_assert_eq(transport_stats(b)->hellos_in, 1);

    b_holds_a = 0;                      /* b loses a's certificate */
    uint64_t hellos = transport_stats(b)->hellos_in;
    int64_t end = peer_now_ms() + 15000, next_ping = 0;
    while (transport_stats(b)->msgs_in[TRIB__MSG_TYPE__MSG_PING] < 2 && peer_now_ms() < end) {
        if (peer_now_ms() >= next_ping) {   /* a keeps talking to b, as its membership does */
            transport_send(a, seed, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"y", 1);
            next_ping = peer_now_ms() + 200;
        }
        zmq_pollitem_t items[16];
        int n = transport_pollitems(a, items, 8);
        n += transport_pollitems(b, items + n, 8);
        zmq_poll(items, n, 20);
        transport_msg_t m;
        while (transport_recv(a, &m) == 1)
            transport_msg_free(&m);
        while (transport_recv(b, &m) == 1)
            transport_msg_free(&m);
    }
    cr_expect_geq(transport_stats(b)->dropped_uncertified, 1, "b never dropped a message of a");
    cr_expect_geq(transport_stats(a)->hellos_in, 1, "b never asked a for its hello");
    cr_assert_geq(transport_stats(b)->msgs_in[TRIB__MSG_TYPE__MSG_PING], 2,
                  "a never answered b's ask (b took %llu hellos of a's in all): a looked for a connection to b "
                  "by the address b advertises (%s), not by b's key, reached through %s",
                  (unsigned long long)transport_stats(b)->hellos_in, badv, seed);
    cr_expect_gt(transport_stats(b)->hellos_in, hellos);
    transport_destroy(&b);
    transport_destroy(&a);
    zmq_ctx_term(bctx);
    zmq_ctx_term(actx);
}

/* ---------------------------------------------------------------- own certificate expires while running */

typedef struct {
    h_node_t *n;
    const char *manifest;
    long status;
    char body[600];
} pub_cond_t;

static int publish_refused(void *ctx)
{
    pub_cond_t *p = ctx;
    char *out = NULL, *eout = NULL;
    /* a new version each time: an unchanged manifest is answered "unchanged" and signs nothing */
    static int patch;
    char yaml[600];
    int n = snprintf(yaml, sizeof yaml,
                     "name: settled\ndomain: payments\nversion: 1.0.%d\nstatus: active\ntitle: Settled\n"
                     "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
                     "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
                     "  - {name: id, logicalType: string, required: true}\n", patch++);
    cr_assert_eq(h_write_file(p->manifest, yaml, (size_t)n), 0);
    int rc = h_trib(p->n, NULL, &out, &eout, "publish", p->manifest, NULL);
    snprintf(p->body, sizeof p->body, "%s%s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    return rc != 0 && strstr(p->body, "expired");
}

Test(chartered, a_node_whose_certificate_expires_stops_publishing_and_keeps_serving)
{
    char da[256], manifest[300];
    identity_t ia;
    cert_t ca;
    node_dir("a", da, sizeof da, &ia);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 8000, two_roots, 2, 0, "short.cert", &ca);
    h_node_t a;
    start(&a, "payments", da, "short.cert", NULL);
    snprintf(manifest, sizeof manifest, "%s/m.yaml", work);
    const char *yaml = "name: settled\ndomain: payments\nversion: 1.0.0\nstatus: active\ntitle: Settled\n"
                       "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
                       "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
                       "  - {name: id, logicalType: string, required: true}\n";
    cr_assert_eq(h_write_file(manifest, yaml, strlen(yaml)), 0);
    json_t *j = h_get_json(a.url, "/v1/status", NULL);
    cr_expect(json_string_value(json_object_get(j, "cert_warning")) != NULL, "no expiry warning in status");
    json_decref(j);
    cr_expect_eq(h_metric(a.url, "trib_cert_expiry_warning"), 1);
    pub_cond_t p = {&a, manifest, 0, ""};
    cr_assert(h_wait(publish_refused, &p, 25000), "publishing was not refused after the certificate expired: %s",
              p.body);
    /* docs/http-api.md: a node whose own certificate no longer holds has its writes refused 403
     * node_revoked (before: 503 not_synced, which tells a client to retry what no retry mends) */
    cr_expect(strstr(p.body, "403 node_revoked") && strstr(p.body, "restart the node with it as --cert"),
              "an expired node's publish is not refused 403 node_revoked saying how to renew: %s", p.body);
    still_serves(&a);
    size_t len;
    char *log = h_read_file(a.log, &len);
    /* "expires at" when the first check ran before the 8 s were over, "expired at" when a slow start
     * (a loaded machine, a sanitizer build) let them pass first: either warns of it */
    cr_expect(log && (strstr(log, "certificate expires at") || strstr(log, "certificate expired at")),
              "the log did not warn of the expiry");
    free(log);
    cert_free(&ca);
}

/* Past its certificate's end by more than the clock skew peers allow, every write of a node is
 * refused 403 node_revoked before its token is checked, a records append too (a hostile review
 * found the append stored, and then every write answered 401 unknown_issuer: the node's own tokens
 * no longer verify); it keeps answering. So also when a renewal of its key was handed in but the
 * node not restarted with it (it presents the certificate it started with: a second review found
 * the append stored and status saying the renewal was in force): status names the certificate it
 * presents and says to restart. The node's wall clock is moved (tests/shim/wallclock.c). */
Test(chartered, a_node_past_its_certificate_s_end_refuses_every_write_403)
{
    char da[256], wall[300];
    identity_t ia;
    cert_t ca, renewed;
    node_dir("a", da, sizeof da, &ia);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "day.cert", &ca);
    snprintf(wall, sizeof wall, "%s/wall", work);
    wall_offset(wall, 0);
    char *was = wall_env_on(wall);
    h_node_t a;
    start(&a, "payments", da, "day.cert", NULL);
    wall_env_off(was);

    issue(NULL, "payments", ia.pk, t - DAY_MS, t + 90 * DAY_MS, two_roots, 2, 0, NULL, &renewed);
    submit_json(&a, cert_to_json(&renewed));   /* held; the node is not restarted with it */
    wall_offset(wall, DAY_MS + 5 * 60000);     /* five minutes past the end of the one it runs on */
    static const struct { const char *method, *path, *body; } writes[] = {
        {"PUT", "/v1/products/payments/settled", "name: settled\n"},
        {"POST", "/v1/products/payments/settled/records", "{\"id\":\"1\"}\n"},
        {"DELETE", "/v1/products/payments/settled", ""},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        char url[300];
        snprintf(url, sizeof url, "%s%s", a.url, writes[i].path);
        h_resp_t r;
        long st = 0;
        for (long t0 = h_now_ms(); h_now_ms() - t0 < 10000; ) {   /* the node reads the moved clock */
            cr_assert_eq(h_http(writes[i].method, url, "application/json", writes[i].body, strlen(writes[i].body), &r),
                         0);
            st = r.status;
            if (st == 403)
                break;
            h_resp_free(&r);
        }
        cr_assert_eq(st, 403, "%s %s past the certificate's end: %ld", writes[i].method, writes[i].path, st);
        cr_expect(r.body && strstr(r.body, "node_revoked") && strstr(r.body, "restart the node with it as --cert"),
                  "%s %s: %s", writes[i].method, writes[i].path, r.body);
        h_resp_free(&r);
    }
    char serial[17];
    cert_serial_text(ca.serial, serial);
    json_t *j = h_get_json(a.url, "/v1/status", NULL);
    const char *trust = json_string_value(json_object_get(j, "trust"));
    const char *why = json_string_value(json_object_get(j, "trust_reason"));
    const char *shown = json_string_value(json_object_get(j, "cert_serial"));
    cr_expect(trust && !strcmp(trust, "expired"), "status trust: %s", trust ? trust : "(none)");
    cr_expect(why && strstr(why, "restart the node with it as --cert"), "status trust_reason: %s", why ? why : "(none)");
    cr_expect(!shown || !strcmp(shown, serial), "status names certificate %s, not the one presented (%s)", shown,
              serial);
    json_decref(j);
    still_serves(&a);
    cert_free(&ca), cert_free(&renewed);
}

/* ---------------------------------------------------------------- a real node of another federation */

Test(chartered, a_node_of_another_federation_is_refused_and_neither_side_lists_the_other)
{
    char da[256], dx[256], seed[160], otherpath[256], cert[256];
    identity_t ia, ix;
    cert_t ca, cx;
    node_dir("a", da, sizeof da, &ia);
    node_dir("x", dx, sizeof dx, &ix);
    int64_t t = fx_now_ms();
    issue(NULL, "payments", ia.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "a.cert", &ca);
    /* another federation: its own charter (same people as roots even), its own certificate */
    charter_t other;
    const identity_t *roots[] = {&R1, &R2, &R3};
    make_charter(&other, roots, 3);
    snprintf(otherpath, sizeof otherpath, "%s/other-charter.json", work);
    json_t *j = charter_to_json(&other);
    cr_assert_eq(trust_file_write(otherpath, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    issue(&other, "growth", ix.pk, t - DAY_MS, t + DAY_MS, two_roots, 2, 0, "x.cert", &cx);
    h_node_t a, x;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    snprintf(cert, sizeof cert, "%s/x.cert", work);
    cr_assert_eq(h_node_start(&x, "growth", "--data", dx, "--charter", otherpath, "--cert", cert, "--seed", seed, FAST,
                              NULL), 0, "the other federation's node did not start; see %s", x.log);
    expect_metric(a.url, REFUSED("connect", "wrong_federation"), 1, "a node of another federation");
    still_serves(&a);
    /* both sides say why: the refused node logs the refusal it was sent */
    long deadline = h_now_ms() + 15000;
    int said = 0;
    while (!said && h_now_ms() < deadline) {
        size_t len;
        char *log = h_read_file(x.log, &len);
        said = log && strstr(log, "refused this node's certificate: wrong_federation");
        free(log);
        if (!said)
            usleep(50000);
    }
    cr_expect(said, "the refused node does not log why it was refused; see %s", x.log);
    members_cond_t mc = {&a, 1};
    cr_assert(h_wait(all_verified, &mc, 5000), "payments lists the other federation's node");
    j = h_get_json(x.url, "/v1/members", NULL);
    size_t n = 0, i;
    json_t *m;
    json_array_foreach(json_object_get(j, "members"), i, m)
        n += !strcmp(json_string_value(json_object_get(m, "state")) ?: "", "alive");
    json_decref(j);
    cr_expect_eq(n, 1, "the other federation's node lists %zu alive members", n);
    charter_free(&other);
    cert_free(&ca), cert_free(&cx);
}
