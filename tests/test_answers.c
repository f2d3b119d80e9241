/* tests/test_answers.c - the per-peer answer budget (gossip/answers.c, gossip/budget.c) against
 * amplification: a federation member that asks again and again for what costs us megabytes.
 *  - a real `trib agent` with a small --peer-answer-rate: a hostile peer floods gap requests and
 *    digests asking for its whole catalog; it is answered up to its budget, then refused and
 *    counted, the node keeps serving, and an honest node joining meanwhile still catches up;
 *  - the node's cap over all peers (gossip/answers.c, ANSWER_NODE_PEERS): many freshly minted keys
 *    ask a real agent for its whole catalog at once; its answer bytes stay within the cap, the
 *    refusals are counted and logged once per interval in all, and an honest node joining
 *    meanwhile still catches up;
 *  - the federation log (gossip/fedlog.c) over an in-memory io: a flood of STEP_WANT naming every
 *    held object is answered up to the budget, then not at all;
 *  - the option's validation.
 * Owns: the processes and temp dirs it makes (stopped, removed). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "gossip/budget.h"
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/entry.h"
#include "gossip/fedlog.h"
#include "gossip/trust.h"
#include "storage/store.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

#define MINTED 40                /* fresh keys of the node-wide test */

static void *zctx;
static peer_client_t *c;         /* the hostile peer: closed before the context, even after a failure */
static peer_client_t *minted[MINTED];   /* the node-wide test's keys, likewise */
static void teardown(void)
{
    peer_client_destroy(&c);
    for (int i = 0; i < MINTED; i++)
        peer_client_destroy(&minted[i]);
    h_cleanup_all();
    if (zctx)
        zmq_ctx_term(zctx);
    zctx = NULL;
}
static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    zctx = zmq_ctx_new();
}
TestSuite(answers, .init = setup, .fini = teardown, .timeout = 180);

/* ------------------------------------------------------------------ a hostile peer of an agent */

#define RATE_MIB "0.1"           /* --peer-answer-rate of the node under attack */
#define RATE_BPS (0.1 * 1048576)
#define BURST_B (2 * RATE_BPS)   /* gossip/answers.c: ANSWER_BURST_S */
#define EVIL_ENTRIES 300
#define FLOOD 100

/* A signed CatalogEntry of domain at seq (a manifest with a ~1 KB title), chained on prev. */
static uint8_t *make_entry(const identity_t *id, const char *domain, uint64_t seq, const uint8_t prev[32],
                           size_t *len)
{
    char name[32], title[1001];
    snprintf(name, sizeof name, "p%llu", (unsigned long long)seq);
    memset(title, 't', sizeof title - 1);
    title[sizeof title - 1] = 0;
    return fx_manifest_entry(id, domain, name, title, seq, prev, len);
}

static void send_msg(peer_client_t *to, const identity_t *id, int type, const uint8_t *body, size_t len)
{
    peer_envelope_t env;
    peer_envelope_init(&env, id, "127.0.0.1:9", type, body, len);
    cr_assert_eq(peer_client_send_envelope(to, &env), 0);
}

/* Sends domain's entries 1..n (signed by id) in frames of 50. */
static void send_log(peer_client_t *to, const identity_t *id, const char *domain, int n)
{
    uint8_t prev[32];
    for (int first = 1; first <= n; first += 50) {
        ProtobufCBinaryData items[50];
        int k = 0;
        for (int s = first; s <= n && k < 50; s++, k++) {
            items[k].data = make_entry(id, domain, (uint64_t)s, s > 1 ? prev : NULL, &items[k].len);
            entry_t v;
            char why[200];
            cr_assert_eq(entry_verify(items[k].data, items[k].len, &v, why, sizeof why), 0, "%s", why);
            memcpy(prev, v.hash, 32);
            entry_free(&v);
        }
        Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
        msg.n_entries = (size_t)k;
        msg.entries = items;
        size_t blen = trib__catalog_entries__get_packed_size(&msg);
        uint8_t *body = malloc(blen);
        trib__catalog_entries__pack(&msg, body);
        send_msg(to, id, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, blen);
        free(body);
        for (int i = 0; i < k; i++)
            free(items[i].data);
    }
}

/* A CatalogDigest body: {domain: seq} (domain NULL: no heads), reply as given. */
static uint8_t *digest_body(const char *domain, uint64_t seq, int reply, size_t *len)
{
    Trib__DomainHead h = TRIB__DOMAIN_HEAD__INIT, *hp = &h;
    h.domain = (char *)domain;
    h.seq = seq;
    Trib__CatalogDigest d = TRIB__CATALOG_DIGEST__INIT;
    d.n_heads = domain ? 1 : 0;
    d.heads = domain ? &hp : NULL;
    d.reply = reply;
    *len = trib__catalog_digest__get_packed_size(&d);
    uint8_t *b = malloc(*len ? *len : 1);
    trib__catalog_digest__pack(&d, b);
    return b;
}

typedef struct {
    const char *url, *series;
    double want;
} metric_cond_t;

static int metric_reaches(void *ctx)
{
    metric_cond_t *m = ctx;
    return h_metric(m->url, m->series) >= m->want;
}

static void wait_metric(const char *url, const char *series, double want)
{
    metric_cond_t m = {url, series, want};
    cr_assert(h_wait(metric_reaches, &m, 30000), "%s did not reach %.0f (is %.0f)", series, want,
              h_metric(url, series));
}

typedef struct {
    const char *url;
    const char *domain;
    json_int_t seq;
} head_cond_t;

/* Whether the node's /v1/status digest holds domain at seq or beyond. */
static int holds_head(void *ctx)
{
    head_cond_t *h = ctx;
    json_t *j = h_get_json(h->url, "/v1/status", NULL);
    json_t *d = j ? json_object_get(json_object_get(j, "digest"), h->domain) : NULL;
    json_int_t seq = json_is_integer(d) ? json_integer_value(d) : json_is_integer(json_object_get(d, "seq"))
                                                                      ? json_integer_value(json_object_get(d, "seq"))
                                                                      : 0;
    json_decref(j);
    return seq >= h->seq;
}

Test(answers, a_peer_flooding_requests_is_answered_up_to_its_budget_then_refused_while_the_node_serves)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", "--peer-answer-rate", RATE_MIB, NULL), 0);
    identity_t evil;
    peer_identity(&evil);
    c = peer_client_new(zctx, a.peer, &evil, NULL);
    cr_assert(c);

    /* The hostile member first gives the node a catalog worth asking for: ~330 KB of its own log. */
    send_log(c, &evil, "evil", EVIL_ENTRIES);
    wait_metric(a.url, "trib_catalog_entries_total{result=\"accepted\"}", EVIL_ENTRIES);
    double sent0 = h_metric(a.url, "trib_catalog_entries_sent_total");

    /* Then floods gap requests from seq 0: each asks for the whole log (~330 KB, over the burst). */
    size_t wlen;
    uint8_t *want = digest_body("evil", 0, 0, &wlen);
    long t0 = h_now_ms();
    for (int i = 0; i < FLOOD; i++)
        send_msg(c, &evil, TRIB__MSG_TYPE__MSG_CATALOG_WANT, want, wlen);
    free(want);
    wait_metric(a.url, "trib_catalog_gap_requests_total{dir=\"in\"}", FLOOD);
    double secs = (double)(h_now_ms() - t0) / 1000.0;
    double sent = h_metric(a.url, "trib_catalog_entries_sent_total") - sent0;
    double refused = h_metric(a.url, "trib_answers_refused_total{kind=\"catalog\",reason=\"budget\"}");
    /* What the budget lets through in that time: the burst and the refill, plus the one answer
     * admitted last (sent whole), in entries of ~1.1 KB. Without a budget: FLOOD x 300. */
    double allowed = (BURST_B + RATE_BPS * secs) / 1100.0 + EVIL_ENTRIES;
    cr_log_info("%d requests in %.2f s: %.0f entries sent (budget allows %.0f), %.0f refused", FLOOD, secs, sent,
                allowed, refused);
    cr_assert_leq(sent, allowed, "%.0f entries sent for %d requests in %.1f s: more than the budget's %.0f", sent,
                  FLOOD, secs, allowed);
    cr_assert_geq(sent, EVIL_ENTRIES, "the first request is answered (%.0f entries sent)", sent);
    cr_assert_geq(refused, 1, "no request was refused");
    cr_assert_geq(refused + sent / EVIL_ENTRIES, FLOOD - 1, "each request is answered or refused (%.0f refused)",
                  refused);

    /* Digests are refused too while the budget is spent (no answer, no digest back). */
    size_t dlen;
    uint8_t *dig = digest_body(NULL, 0, 0, &dlen);
    for (int i = 0; i < 20; i++)
        send_msg(c, &evil, TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, dig, dlen);
    free(dig);
    wait_metric(a.url, "trib_answers_refused_total{kind=\"catalog\",reason=\"budget\"}", refused + 10);

    /* The node keeps serving: its API answers, and a node joining now catches up with it (its own
     * budget is whole: a peer's flood costs another peer nothing). */
    json_t *st = h_get_json(a.url, "/v1/status", NULL);
    cr_assert_not_null(st, "the node stopped serving /v1/status");
    json_decref(st);
    h_node_t b;
    cr_assert_eq(h_node_start(&b, "orders", "--seed", a.peer, "--anti-entropy-ms", "300", NULL), 0);
    head_cond_t h = {b.url, "evil", EVIL_ENTRIES};
    cr_assert(h_wait(holds_head, &h, 60000), "the honest node did not catch up with the evil domain's log");
    h_resp_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/v1/status", a.url);
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    h_resp_free(&r);
    /* The flood's refusals are logged rate-limited: one line for the hostile peer per
     * ANSWER_LOG_MS (gossip/answers.c: 10 s) since the flood began, however long this machine
     * took, not one per request. Lines for other peers (the honest joiner's catch-up may exceed
     * its own burst) are not the flood's. */
    double elapsed_ms = (double)(h_now_ms() - t0);
    double refused_all = h_metric(a.url, "trib_answers_refused_total{kind=\"catalog\",reason=\"budget\"}");
    size_t loglen = 0;
    char *log = h_read_file(a.log, &loglen);
    cr_assert_not_null(log);
    char mine[64];
    snprintf(mine, sizeof mine, "not answering %.16s", evil.hex);
    int lines = 0, others = 0;
    for (const char *p = log; (p = strstr(p, "not answering")); p++)
        if (!strncmp(p, mine, strlen(mine)))
            lines++;
        else
            others++;
    free(log);
    int most = 1 + (int)(elapsed_ms / 10000.0);
    cr_log_info("%d refusal lines for the hostile peer in %.1f s (at most %d), %d for others, %.0f refusals counted",
                lines, elapsed_ms / 1000.0, most, others, refused_all);
    cr_assert_geq(lines, 1, "the refusal was not logged");
    cr_assert_leq(lines, most, "%d refusal lines for the hostile peer in %.1f s: not rate-limited (one per 10 s)", lines,
                  elapsed_ms / 1000.0);
    cr_assert_geq(refused_all, 10.0 * lines, "%.0f refusals and %d lines: a line per refusal", refused_all, lines);
    peer_client_destroy(&c);
}

/* Lines of the node's log holding needle. */
static int log_lines(const char *path, const char *needle)
{
    size_t len = 0;
    char *log = h_read_file(path, &len);
    cr_assert_not_null(log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)); p++)
        n++;
    free(log);
    return n;
}

#define CAP_BPS (4 * RATE_BPS)   /* gossip/gossip_int.h: ANSWER_NODE_PEERS x the peer's rate */
#define CAP_BURST_B (2 * CAP_BPS)
#define ONE_ANSWER_B 450000     /* EVIL_ENTRIES in frames, a little more than ~370 KB */
#define ANSWERED "trib_answers_bytes_total{kind=\"catalog\"}"
#define CAPPED "trib_answers_refused_total{kind=\"catalog\",reason=\"node_budget\"}"

Test(answers, many_fresh_keys_asking_at_once_get_no_more_than_the_node_s_cap_and_an_honest_joiner_catches_up)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", "--peer-answer-rate", RATE_MIB, NULL), 0);
    identity_t evil;
    peer_identity(&evil);
    c = peer_client_new(zctx, a.peer, &evil, NULL);
    cr_assert(c);
    send_log(c, &evil, "evil", EVIL_ENTRIES);     /* a catalog worth asking for: ~330 KB */
    wait_metric(a.url, "trib_catalog_entries_total{result=\"accepted\"}", EVIL_ENTRIES);

    /* MINTED keys, each new (a full budget of its own), connect; then each asks for the whole log */
    identity_t ids[MINTED];
    for (int i = 0; i < MINTED; i++) {
        peer_identity(&ids[i]);
        minted[i] = peer_client_new(zctx, a.peer, &ids[i], NULL);
        cr_assert(minted[i]);
    }
    double bytes0 = h_metric(a.url, ANSWERED), wants0 = h_metric(a.url, "trib_catalog_gap_requests_total{dir=\"in\"}");
    size_t wlen;
    uint8_t *want = digest_body("evil", 0, 0, &wlen);
    long t0 = h_now_ms();
    for (int i = 0; i < MINTED; i++)
        send_msg(minted[i], &ids[i], TRIB__MSG_TYPE__MSG_CATALOG_WANT, want, wlen);
    free(want);
    /* an honest node joins meanwhile */
    h_node_t b;
    cr_assert_eq(h_node_start(&b, "orders", "--seed", a.peer, "--anti-entropy-ms", "300", NULL), 0);
    wait_metric(a.url, "trib_catalog_gap_requests_total{dir=\"in\"}", wants0 + MINTED);

    /* Every answer (the joiner's too) comes out of the cap: its burst, its refill since, and the one
     * answer admitted last (sent whole: the log, ~370 KB, taken as 450 KB). Without the cap each
     * fresh key gets its answer: MINTED x 370 KB, 15 MB. */
    double sent = h_metric(a.url, ANSWERED) - bytes0, secs = (double)(h_now_ms() - t0) / 1000.0; /* bytes first */
    double allowed = CAP_BURST_B + CAP_BPS * secs + ONE_ANSWER_B;
    double capped = h_metric(a.url, CAPPED);
    cr_log_info("%d fresh keys asked at once: %.0f bytes answered in %.2f s (the cap allows %.0f), %.0f refused by it",
                MINTED, sent, secs, allowed, capped);
    cr_assert_leq(sent, allowed, "%.0f bytes answered to %d fresh keys in %.1f s: past the node's cap of %.0f", sent,
                  MINTED, secs, allowed);
    cr_assert_geq(sent, 300000, "the first requests were not answered (%.0f bytes)", sent);
    cr_assert_geq(capped + sent / 300000, MINTED - 1, "each request is answered or refused by the cap (%.0f refused)",
                  capped);
    cr_assert_geq(capped, MINTED / 2, "%.0f of %d fresh keys' requests refused by the node's cap", capped, MINTED);

    /* The honest node catches up (its requests are answered as the cap refills), and the whole
     * while the answers stay within the cap. */
    head_cond_t h = {b.url, "evil", EVIL_ENTRIES};
    cr_assert(h_wait(holds_head, &h, 60000), "the honest node did not catch up with the evil domain's log");
    sent = h_metric(a.url, ANSWERED) - bytes0;
    secs = (double)(h_now_ms() - t0) / 1000.0;
    allowed = CAP_BURST_B + CAP_BPS * secs + ONE_ANSWER_B;
    cr_log_info("the joiner caught up in %.2f s; %.0f bytes answered (the cap allows %.0f)", secs, sent, allowed);
    cr_assert_leq(sent, allowed, "%.0f bytes answered in %.1f s: past the node's cap of %.0f", sent, secs, allowed);

    /* The cap's refusals are logged once per 10 s (gossip/answers.c: ANSWER_LOG_MS) in all, not per
     * key, and none was refused by its own budget (each asked once). */
    int lines = log_lines(a.log, "took the node's budget"), most = 1 + (int)(secs / 10.0);
    cr_log_info("%d lines for %.0f refusals by the node's cap in %.1f s (at most %d)", lines, h_metric(a.url, CAPPED),
                secs, most);
    cr_assert_geq(lines, 1, "the cap's refusals were not logged");
    cr_assert_leq(lines, most, "%d lines for the cap's refusals in %.1f s: not once per 10 s", lines, secs);
    for (int i = 0; i < MINTED; i++) {
        char mine[64];
        snprintf(mine, sizeof mine, "not answering %.16s", ids[i].hex);
        cr_assert_leq(log_lines(a.log, mine), 1, "fresh key %d has lines of its own", i);
    }
    for (int i = 0; i < MINTED; i++)
        peer_client_destroy(&minted[i]);
    peer_client_destroy(&c);
}

Test(answers, a_bad_rate_is_refused_with_a_clear_error)
{
    const char *bad[] = {"-1", "abc", "1e9", "0.001", "0x10", "nan", "100000", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "'%s' agent --data /nonexistent/x --domain d --peer-answer-rate '%s' 2>&1", h_trib_path(),
                 bad[i]);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        char out[512] = "";
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        int rc = pclose(p);
        cr_assert_eq(WEXITSTATUS(rc), 2, "'%s': exit %d: %s", bad[i], WEXITSTATUS(rc), out);
        cr_assert(strstr(out, "--peer-answer-rate: ") && strstr(out, "MiB/s"), "'%s': %s", bad[i], out);
    }
}

/* ------------------------------------------------------------------ the federation log's answers */

static identity_t RA, RB, RC;
static budget_t *fb;
static size_t objects_sent, objects_msgs, refusals;

static void fl_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    (void)ctx, (void)addr;
    if (type != TRIB__MSG_TYPE__MSG_FED_SYNC)
        return;
    Trib__FedSync *m = trib__fed_sync__unpack(NULL, len, body);
    cr_assert_not_null(m);
    if (m->step == 5) {          /* STEP_OBJECTS */
        objects_sent += m->n_objects;
        objects_msgs++;
    }
    trib__fed_sync__free_unpacked(m, NULL);
}

static size_t fl_peers(void *ctx, const char **addrs, size_t max) { (void)ctx, (void)addrs, (void)max; return 0; }
static void fl_wake(void *ctx) { (void)ctx; }

/* The budget on a clock that stands still: nothing refills during the flood. */
static int fl_ok(void *ctx, const char *addr)
{
    (void)ctx;
    int ok = budget_ask(fb, addr, 1, 1000, NULL) == 1;
    refusals += !ok;
    return ok;
}
static void fl_answered(void *ctx, const char *addr, size_t bytes) { (void)ctx; budget_take(fb, addr, bytes, 1); }

Test(answers, a_flood_of_wants_gets_the_federation_log_s_objects_up_to_the_budget)
{
    fx_identity(&RA), fx_identity(&RB), fx_identity(&RC);
    const identity_t *roots[] = {&RA, &RB, &RC};
    charter_t ch;
    char err[600];
    cr_assert_eq(fx_charter(&ch, roots, 3, 2, err, sizeof err), 0, "%s", err);
    char dir[64] = "/tmp/trib-answers-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    store_t *st = store_open(dir, NULL, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    trust_t *t = trust_new(&ch);
    fedlog_t *f = fedlog_new(st, t, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    /* 20 revocations held (operator's offers, committed here: not attached yet) */
    enum { HELD = 20 };
    uint8_t hashes[HELD][TRUST_HASH_LEN];
    size_t held_bytes = 0;
    for (int i = 0; i < HELD; i++) {
        identity_t n;
        fx_identity(&n);
        revocation_t rv;
        const identity_t *sig[] = {&RA, &RB};
        cr_assert_eq(revocation_issue(&ch, 1, 0, n.pk, fx_now_ms(), "test", sig, 2, &rv, err, sizeof err), 0, "%s",
                     err);
        fedlog_result_t res;
        cr_assert_eq(fedlog_offer(f, rv.bytes, rv.len, NULL, &res), 0);
        memcpy(hashes[i], rv.hash, TRUST_HASH_LEN);
        held_bytes += rv.len;
        revocation_free(&rv);
    }
    /* burst: two answers' worth; no refill while the test runs */
    fb = budget_new(1, (double)held_bytes * 2, 16);
    cr_assert_not_null(fb);
    fedlog_io_t io = {.ctx = NULL, .send = fl_send, .peers = fl_peers, .wake = fl_wake, .answer_ok = fl_ok,
                      .answered = fl_answered};
    fedlog_attach(f, &io);
    ProtobufCBinaryData want[HELD];
    for (int i = 0; i < HELD; i++)
        want[i] = (ProtobufCBinaryData){TRUST_HASH_LEN, hashes[i]};
    Trib__FedSync m = TRIB__FED_SYNC__INIT;
    m.step = 4;                  /* STEP_WANT */
    m.n_hashes = HELD;
    m.hashes = want;
    size_t len = trib__fed_sync__get_packed_size(&m);
    uint8_t *buf = malloc(len);
    trib__fed_sync__pack(&m, buf);
    for (int i = 0; i < 50; i++)
        fedlog_handle(f, "10.0.0.9:1", TRIB__MSG_TYPE__MSG_FED_SYNC, buf, len);
    /* every object costs a little more than its bytes on the wire: two answers fit, the third is
     * admitted on the last crumbs or refused; never more */
    cr_assert_geq(objects_sent, 2 * HELD, "the first answers were not sent (%zu objects)", objects_sent);
    cr_assert_leq(objects_sent, 3 * HELD, "%zu objects sent for 50 wants: past the budget", objects_sent);
    cr_assert_geq(refusals, 47, "%zu refusals", refusals);
    /* another peer has its own budget */
    size_t before = objects_sent;
    fedlog_handle(f, "10.0.0.10:1", TRIB__MSG_TYPE__MSG_FED_SYNC, buf, len);
    cr_assert_eq(objects_sent, before + HELD);
    free(buf);
    fedlog_attach(f, NULL);
    fedlog_destroy(&f);
    trust_destroy(&t);
    store_close(&st);
    budget_destroy(&fb);
    charter_free(&ch);
    fx_rmdir(dir);
}
