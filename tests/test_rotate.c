/* tests/test_rotate.c - key rotation of a chartered node (DESIGN §12, issue 10 item 4).
 *
 * In process: the trust store's hand-over rules (a hand-over by an uncertified key is refused; the
 * old key verifies during the overlap and is refused as "rotated" after it, once the new key is
 * certified; the domain's log may move from the old key to the new, through a chain, and not back).
 * Real processes: three chartered agents; `trib key rotate` on the running payments node makes the
 * next key, the roots certify it as a continuation, `trib key rotate --cert` completes it and the
 * agent restarts in place on the new key; records and catalog entries written before and after are
 * each read once from a peer, the next catalog entry (the new signer) is accepted everywhere, the
 * peers list one payments member with the new serial, a restart keeps the new key, and a forged
 * hand-over submitted to a peer is refused and counted. A switch whose commit point cannot be
 * written leaves the node whole on its old key and says so; a certificate not valid yet completes
 * the rotation when it becomes valid; the automatic switch keeps the --overlap asked for; a node
 * relaying routed reads for others keeps them going when it rotates. A rotated-out key is left at
 * once where its hand-over is held, and from the first round of a peer restarted after it.
 *
 * Must not: sleep as synchronisation (poll with deadlines), leave processes or files behind. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/trust.h"
#include "tests/fixtures.h"
#include "tests/harness.h"

#define DAY_MS 86400000LL
#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static identity_t R1, R2, R3;
static charter_t ch;
static char work[64], chpath[128];
static char err[1024];

static const identity_t *const two_roots[] = {&R1, &R2};

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2), fx_identity(&R3);
    const identity_t *roots[] = {&R1, &R2, &R3};
    cr_assert_eq(fx_charter(&ch, roots, 3, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_charter_dir(&ch, "rotate", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
}

static void teardown(void)
{
    h_cleanup_all();
    charter_free(&ch);
    fx_rmdir(work);
}

TestSuite(rotate, .init = setup, .fini = teardown, .timeout = 240);

/* A certificate of domain for pk, continuing prev (0: none), valid from a day ago for 90 days;
 * written to work/file when file != NULL. */
static void issue(const char *domain, const uint8_t pk[32], uint64_t prev, const char *file, cert_t *out)
{
    int64_t t = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, domain, pk, t - DAY_MS, t + 90 * DAY_MS, prev, two_roots, 2, out, err, sizeof err), 0,
                 "%s", err);
    if (file) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", work, file);
        json_t *j = cert_to_json(out);
        cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
        json_decref(j);
    }
}

/* ---------------------------------------------------------------- the trust store's rules */

Test(rotate, trust_holds_handovers_of_certified_keys_and_retires_the_old_key_after_the_overlap)
{
    identity_t old, neu, third, stranger;
    fx_identity(&old), fx_identity(&neu), fx_identity(&third), fx_identity(&stranger);
    cert_t co, cn, ct;
    issue("payments", old.pk, 0, NULL, &co);
    trust_t *t = trust_new(&ch);
    cr_assert_not_null(t);
    int added = 0;
    cr_assert_eq(trust_offer_cert(t, co.bytes, co.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    int64_t now = fx_now_ms();

    /* a key that is not the domain's cannot hand the domain over */
    rotation_t bad;
    cr_assert_eq(rotation_make(&stranger, "payments", neu.pk, now, 0, &bad, err, sizeof err), 0, "%s", err);
    cr_expect_eq(trust_offer_rotation(t, bad.bytes, bad.len, &added, err, sizeof err), TRUST_UNCERTIFIED);
    rotation_t other;   /* the domain's key, giving away a domain it is not certified for */
    cr_assert_eq(rotation_make(&old, "growth", neu.pk, now, 0, &other, err, sizeof err), 0, "%s", err);
    cr_expect_eq(trust_offer_rotation(t, other.bytes, other.len, &added, err, sizeof err), TRUST_WRONG_DOMAIN);
    bad.bytes[bad.len - 1] ^= 1;   /* a damaged signature */
    cr_expect_neq(trust_offer_rotation(t, bad.bytes, bad.len, &added, err, sizeof err), TRUST_OK);
    cr_expect_eq(trust_rotation_count(t), 0);

    /* old -> neu, effective two minutes ago with one minute of overlap: over now */
    rotation_t r;
    cr_assert_eq(rotation_make(&old, "payments", neu.pk, now - 120000, 60000, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(trust_offer_rotation(t, r.bytes, r.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(added, 1);
    cr_expect_eq(trust_offer_rotation(t, r.bytes, r.len, &added, err, sizeof err), TRUST_OK);
    cr_expect_eq(added, 0, "the same hand-over twice is held once");
    /* until the new key is certified, the old one is not retired */
    cr_expect_eq(trust_admit_curve(t, old.curve_pk, now, NULL, err, sizeof err), TRUST_OK, "%s", err);
    issue("payments", neu.pk, co.serial, NULL, &cn);
    cr_assert_eq(trust_offer_cert(t, cn.bytes, cn.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_admit_curve(t, old.curve_pk, now, NULL, err, sizeof err), TRUST_ROTATED);
    cr_expect(strstr(err, "overlap"), "%s", err);
    cr_expect_eq(trust_entry_ok(t, "payments", old.pk, now, err, sizeof err), TRUST_ROTATED);
    /* what the old key signed before the end of the overlap stays valid */
    cr_expect_eq(trust_entry_ok(t, "payments", old.pk, now - 90000, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_admit_curve(t, neu.curve_pk, now, NULL, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_entry_ok(t, "payments", neu.pk, now, err, sizeof err), TRUST_OK, "%s", err);

    /* the log may move old -> neu, and through a chain old -> neu -> third, never back */
    cr_expect_eq(trust_handover(t, "payments", old.pk, neu.pk), 1);
    cr_expect_eq(trust_handover(t, "payments", neu.pk, old.pk), 0);
    cr_expect_eq(trust_handover(t, "growth", old.pk, neu.pk), 0);
    cr_expect_eq(trust_handover(t, "payments", stranger.pk, neu.pk), 0);
    issue("payments", third.pk, cn.serial, NULL, &ct);
    cr_assert_eq(trust_offer_cert(t, ct.bytes, ct.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    rotation_t r2;
    cr_assert_eq(rotation_make(&neu, "payments", third.pk, now, DAY_MS, &r2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(trust_offer_rotation(t, r2.bytes, r2.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_handover(t, "payments", old.pk, third.pk), 1);
    uint8_t prev[TRUST_HANDOVER_STEPS][ID_PK_LEN];
    cr_assert_eq(trust_predecessors(t, "payments", third.pk, prev), 2);
    cr_expect(!memcmp(prev[0], neu.pk, ID_PK_LEN) && !memcmp(prev[1], old.pk, ID_PK_LEN), "nearest first");
    cr_expect_eq(trust_predecessors(t, "payments", old.pk, prev), 0);
    cr_expect_eq(trust_admit_curve(t, neu.curve_pk, now, NULL, err, sizeof err), TRUST_OK, "in its overlap: %s", err);
    /* the retired old key can hand nothing over any more */
    rotation_t late;
    cr_assert_eq(rotation_make(&old, "payments", stranger.pk, now, 0, &late, err, sizeof err), 0, "%s", err);
    cr_expect_eq(trust_offer_rotation(t, late.bytes, late.len, &added, err, sizeof err), TRUST_ROTATED);

    rotation_free(&bad), rotation_free(&other), rotation_free(&r), rotation_free(&r2), rotation_free(&late);
    cert_free(&co), cert_free(&cn), cert_free(&ct);
    trust_destroy(&t);
}

Test(rotate, a_lost_key_s_successor_certified_with_prev_serial_continues_the_log)
{
    identity_t lost, neu, stranger;
    fx_identity(&lost), fx_identity(&neu), fx_identity(&stranger);
    cert_t cl, cn, cs, cg;
    issue("payments", lost.pk, 0, NULL, &cl);
    trust_t *t = trust_new(&ch);
    cr_assert_not_null(t);
    int added;
    cr_assert_eq(trust_offer_cert(t, cl.bytes, cl.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_handover(t, "payments", lost.pk, neu.pk), 0, "no certificate of the new key yet");
    issue("payments", stranger.pk, 0, NULL, &cs);   /* certified for the domain, but not as a continuation */
    cr_assert_eq(trust_offer_cert(t, cs.bytes, cs.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_handover(t, "payments", lost.pk, stranger.pk), 0);
    issue("growth", neu.pk, cl.serial, NULL, &cg);  /* continues the serial, for another domain */
    cr_assert_eq(trust_offer_cert(t, cg.bytes, cg.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_handover(t, "payments", lost.pk, neu.pk), 0);
    cr_expect_eq(trust_handover(t, "growth", lost.pk, neu.pk), 0, "the serial continued is of another domain");
    issue("payments", neu.pk, cl.serial, NULL, &cn);
    cr_assert_eq(trust_offer_cert(t, cn.bytes, cn.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_handover(t, "payments", lost.pk, neu.pk), 1);
    cr_expect_eq(trust_handover(t, "payments", neu.pk, lost.pk), 0);
    cert_free(&cl), cert_free(&cn), cert_free(&cs), cert_free(&cg);
    trust_destroy(&t);
}

/* ---------------------------------------------------------------- a running node */

static void start(h_node_t *n, const char *domain, const char *dir, const char *certfile, const char *seed)
{
    char cert[256];
    snprintf(cert, sizeof cert, "%s/%s", work, certfile);
    int rc = seed ? h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, "--seed", seed, FAST,
                                 NULL)
                  : h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, FAST, NULL);
    cr_assert_eq(rc, 0, "chartered node %s did not start; see %s", domain, n->log);
}

static void node_dir(const char *name, char *dir, size_t cap, identity_t *id)
{
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
}

typedef struct {
    h_node_t *n;
    const char *domain, *node_id, *serial;   /* exactly one member of domain, with this id and serial */
    int alive;                               /* and this many alive members in all */
} member_cond_t;

static int one_member(void *ctx)
{
    member_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL);
    json_t *arr = json_object_get(j, "members"), *m;
    size_t i;
    int of_domain = 0, match = 0, alive = 0, conflict = 0;
    json_array_foreach(arr, i, m)
    {
        const char *st = json_string_value(json_object_get(m, "state"));
        alive += st && !strcmp(st, "alive");
        conflict |= json_is_true(json_object_get(m, "conflict"));
        if (strcmp(json_string_value(json_object_get(m, "domain")) ?: "", c->domain))
            continue;
        of_domain++;
        const char *id = json_string_value(json_object_get(m, "node_id"));
        const char *ser = json_string_value(json_object_get(m, "cert_serial"));
        match = id && !strcmp(id, c->node_id) && json_is_true(json_object_get(m, "verified")) &&
                (!c->serial || (ser && !strcmp(ser, c->serial)));
    }
    json_decref(j);
    return of_domain == 1 && match && alive == c->alive && !conflict;
}

typedef struct {
    h_node_t *n;
    const char *path, *version;
} version_cond_t;

static int has_version(void *ctx)
{
    version_cond_t *c = ctx;
    long st = 0;
    json_t *j = h_get_json(c->n->url, c->path, &st);
    const char *v = json_string_value(json_object_get(json_object_get(j, "manifest"), "version"));
    if (!v)
        v = json_string_value(json_object_get(j, "version"));
    int ok = st == 200 && v && !strcmp(v, c->version);
    json_decref(j);
    return ok;
}

/* The node's admin token as it is now (a rotation re-issues it under the new key). */
static const char *token_file(const h_node_t *n)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/%s/admin.token", work, !strcmp(n->domain, "payments") ? "a" : "b");
    return path;
}

typedef struct {
    h_node_t *n;
    const char *path;
    char last[512];
} pub_cond_t;

/* Publishes; a node that just started asks its peers for its domain's head first (503
 * not_synced): a publisher retries that, as a client of a restarting node does. */
static int published(void *ctx)
{
    pub_cond_t *c = ctx;
    char *out = NULL, *eout = NULL;
    int rc = h_trib(c->n, NULL, &out, &eout, "publish", c->path, "--token-file", token_file(c->n), NULL);
    snprintf(c->last, sizeof c->last, "%s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    cr_assert(rc == 0 || strstr(c->last, "not_synced"), "publish failed: %s", c->last);
    return rc == 0;
}

static void publish(h_node_t *n, const char *version)
{
    char path[256], yaml[1024];
    snprintf(path, sizeof path, "%s/m-%s.yaml", work, version);
    snprintf(yaml, sizeof yaml,
             "name: settled\ndomain: payments\nversion: %s\nstatus: active\ntitle: Settled\n"
             "description:\n  purpose: p\n  usage: u\n  limitations: l\nowners:\n"
             "  business: a@example.com\n  technical: b@example.com\nclassification: internal\nschema:\n"
             "  - {name: id, logicalType: string, required: true}\n", version);
    cr_assert_eq(h_write_file(path, yaml, strlen(yaml)), 0);
    pub_cond_t c = {n, path, ""};
    cr_assert(h_wait(published, &c, 15000), "publish %s failed: %s", version, c.last);
}

static void put(h_node_t *n, int from, int to)
{
    char path[256], body[4096];
    size_t len = 0;
    for (int i = from; i <= to; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "{\"id\":\"r%03d\"}\n", i);
    snprintf(path, sizeof path, "%s/r-%d.ndjson", work, from);
    cr_assert_eq(h_write_file(path, body, len), 0);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(n, path, &out, &eout, "put", "payments/settled", "--token-file", token_file(n), NULL);
    cr_assert_eq(rc, 0, "put r%03d..r%03d failed: %s %s", from, to, out ? out : "", eout ? eout : "");
    free(out), free(eout);
}

typedef struct {
    h_node_t *n, *reader;
    int from, to;
    char last[600];
} put_cond_t;

static int routed_reads, routed_failed;   /* one-shot routed reads made while putting, and those that failed */

/* A routed one-shot read's output holds r001..rN, each once and in order, and nothing else: a
 * read issued during the owner's key switch succeeds whole or fails (exit != 0) saying why, its
 * output whole records still. */
static void expect_whole(const char *out, const char *eout, int rc)
{
    routed_reads++;
    if (rc != 0) {
        routed_failed++;
        cr_expect(eout && !strncmp(eout, "trib: ", 6) && strlen(eout) > 16, "a failed routed read says nothing: %s",
                  eout ? eout : "");
    }
    int n = 0;
    for (const char *p = out ? out : ""; *p; n++) {
        char want[32];
        int len = snprintf(want, sizeof want, "{\"id\":\"r%03d\"}\n", n + 1);
        if (strncmp(p, want, (size_t)len) != 0) {
            cr_expect_fail("a routed read (exit %d) is not r001..r%03d whole (at record %d): %s", rc, n, n + 1, out);
            return;
        }
        p += len;
    }
}

#define READS_MAX 400

/* A child running routed one-shot reads through n one after another (READS_MAX at most) until
 * work/reads.stop exists: read i's output, errors and exit code go to work/rd.i.{out,err,rc}. */
static pid_t reads_start(h_node_t *n)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char stop[128];
    snprintf(stop, sizeof stop, "%s/reads.stop", work);
    for (int i = 0; i < READS_MAX && access(stop, F_OK) != 0; i++) {
        char o[128], e[128], r[128];
        snprintf(o, sizeof o, "%s/rd.%d.out", work, i);
        snprintf(e, sizeof e, "%s/rd.%d.err", work, i);
        snprintf(r, sizeof r, "%s/rd.%d.rc", work, i);
        pid_t p = fork();
        if (p == 0) {
            int of = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600), ef = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(of, 1);
            dup2(ef, 2);
            setenv("TRIB_NODE", n->url, 1);
            setenv("TRIB_TOKEN", n->token, 1);
            execl(h_trib_path(), h_trib_path(), "get", "payments/settled", "--relay", (char *)NULL);
            _exit(127);
        }
        int st = 0;
        if (p < 0 || waitpid(p, &st, 0) != p)
            _exit(1);
        char rc[16];
        int len = snprintf(rc, sizeof rc, "%d", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
        int fd = open(r, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, rc, (size_t)len) != len)
            _exit(1);
        close(fd);
    }
    _exit(0);
}

static int path_exists(void *path) { return access(path, F_OK) == 0; }

/* Stops the reads of reads_start, once two are done (a loaded machine can finish the rotation
 * before a second read has), and checks each: whole, or failed with a reason. */
static void reads_check(pid_t pid)
{
    char p[160];
    snprintf(p, sizeof p, "%s/rd.1.rc", work);
    (void)h_wait(path_exists, p, 30000);   /* else the count below says so */
    snprintf(p, sizeof p, "%s/reads.stop", work);
    cr_assert_eq(h_write_file(p, "", 0), 0);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reads' child failed");
    int n = 0;
    for (; n < READS_MAX; n++) {
        snprintf(p, sizeof p, "%s/rd.%d.rc", work, n);
        char *rc = h_read_file(p, NULL);
        if (!rc)
            break;
        snprintf(p, sizeof p, "%s/rd.%d.out", work, n);
        char *o = h_read_file(p, NULL);
        snprintf(p, sizeof p, "%s/rd.%d.err", work, n);
        char *e = h_read_file(p, NULL);
        expect_whole(o, e, atoi(rc));
        free(rc), free(o), free(e);
    }
    cr_expect_geq(n, 2, "too few routed reads were made during the rotation to say anything");
}

/* 1 when record r<from> can be read through reader (a routed read: the owner has it), 0 when it
 * cannot, -1 when the read failed (the owner is restarting: unknown). */
static int stored(h_node_t *reader, int from)
{
    char *out = NULL, *eout = NULL, want[32];
    snprintf(want, sizeof want, "\"r%03d\"", from);
    int rc = h_trib(reader, NULL, &out, &eout, "get", "payments/settled", "--relay", NULL);
    expect_whole(out, eout, rc);
    int has = rc != 0 ? -1 : out && strstr(out, want) ? 1 : 0;
    free(out), free(eout);
    return has;
}

static int put_done(void *ctx)
{
    put_cond_t *c = ctx;
    int has = stored(c->reader, c->from);
    if (has != 0)
        return has == 1;   /* 1: a try whose reply was lost had stored it; -1: ask again later */
    char path[256], body[2048], *out = NULL, *eout = NULL;
    size_t len = 0;
    for (int i = c->from; i <= c->to; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "{\"id\":\"r%03d\"}\n", i);
    snprintf(path, sizeof path, "%s/r-%d.ndjson", work, c->from);
    cr_assert_eq(h_write_file(path, body, len), 0);
    char tok[300];
    snprintf(tok, sizeof tok, "%s/a/admin.token", work);   /* the node's current token, old or new */
    int rc = h_trib(c->n, path, &out, &eout, "put", "payments/settled", "--token-file", tok, NULL);
    snprintf(c->last, sizeof c->last, "%s %s", out ? out : "", eout ? eout : "");
    free(out), free(eout);
    return rc == 0;
}

static void put_retrying(h_node_t *n, h_node_t *reader, int from, int to)
{
    put_cond_t c = {n, reader, from, to, ""};
    cr_assert(h_wait(put_done, &c, 30000), "put r%03d..r%03d was never taken: %s", from, to, c.last);
}

/* A routed read from n holds r001..r<last> each exactly once. A read ends where the records'
 * schema version changes (exit 1, "resume with --from N" on stderr, as a local read): each part is
 * read on from where the last ended. */
static void read_all_once(h_node_t *n, int last)
{
    char *out = NULL, from[24] = "1";
    size_t olen = 0;
    double relayed = h_metric(n->url, "trib_read_batches_total{dir=\"received\"}");
    for (int part = 0;; part++) {
        char *o = NULL, *eout = NULL;
        int rc = h_trib(n, NULL, &o, &eout, "get", "payments/settled", "--from", from, "--relay", NULL);
        const char *r = eout ? strstr(eout, "resume with --from ") : NULL;
        cr_assert(rc == 0 || (rc == 1 && r && eout && strstr(eout, "schema_changed") && part < 8),
                  "routed read failed: %s", eout ? eout : "");
        size_t l = o ? strlen(o) : 0;
        out = realloc(out, olen + l + 1);
        cr_assert_not_null(out);
        memcpy(out + olen, o ? o : "", l + 1);
        olen += l;
        if (rc == 0) {
            free(o), free(eout);
            break;
        }
        snprintf(from, sizeof from, "%llu", strtoull(r + strlen("resume with --from "), NULL, 10));
        free(o), free(eout);
    }
    for (int i = 1; i <= last; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"r%03d\"", i);
        const char *p = out ? strstr(out, want) : NULL;
        cr_expect(p, "record r%03d lost: %s", i, out ? out : "");
        cr_expect(!p || !strstr(p + 1, want), "record r%03d read twice", i);
    }
    char beyond[32];
    snprintf(beyond, sizeof beyond, "\"r%03d\"", last + 1);
    cr_expect(!out || !strstr(out, beyond), "a record that was never written: %s", out ? out : "");
    cr_expect_gt(h_metric(n->url, "trib_read_batches_total{dir=\"received\"}"), relayed,
                 "the read did not go through %s's relay", n->url);
    free(out);
}

static int time_past(void *ctx) { return fx_now_ms() > *(int64_t *)ctx; }

typedef struct {
    const char *url, *token;
    long status;
} tok_cond_t;

static int old_token_refused(void *ctx)
{
    tok_cond_t *c = ctx;
    char url[300];
    snprintf(url, sizeof url, "%s/v1/whoami", c->url);
    h_resp_t r;
    int rc = h_http_token("GET", url, NULL, NULL, 0, c->token, &r);
    c->status = rc == 0 ? r.status : 0;
    h_resp_free(&r);
    return c->status == 401;
}

/* ---- a live subscriber on a peer, and a command run in the background */

static pid_t spawn(const char *outp, const char *errp, const char *token, const char *const *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(outp, O_WRONLY | O_CREAT | O_APPEND, 0600), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        if (token)
            setenv("TRIB_TOKEN", token, 1);
        execv(h_trib_path(), (char **)args);
        _exit(127);
    }
    cr_assert_gt(pid, 0);
    return pid;
}

typedef struct {
    h_node_t *n;
    pid_t pid;
    int runs, last;          /* subscriptions started; records wanted */
    const char *token;       /* NULL: the node's admin token */
    char out[300], err[300], from[32];
} sub_t;

static void sub_start(sub_t *s)
{
    const char *args[] = {h_trib_path(), "subscribe", "payments/settled", "--node", s->n->url, "--from", s->from, NULL};
    s->pid = spawn(s->out, s->err, s->token ? s->token : s->n->token, args);
    s->runs++;
}

/* Every record up to s->last is in the subscriber's output. A subscription that ended (its owner
 * restarted) is started again from the seq it says to resume from, as its user would. */
static int sub_has_all(void *ctx)
{
    sub_t *s = ctx;
    int st;
    if (s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == s->pid) {
        s->pid = 0;
        char *e = h_read_file(s->err, NULL);
        const char *r = e ? strstr(e, "resume with --from ") : NULL;
        cr_assert(r, "the subscriber ended without saying where to resume: %s", e ? e : "");
        snprintf(s->from, sizeof s->from, "%lld", atoll(r + strlen("resume with --from ")));
        free(e);
        sub_start(s);
    }
    char *o = h_read_file(s->out, NULL);
    int all = o != NULL;
    for (int i = 1; all && i <= s->last; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"r%03d\"", i);
        all = strstr(o, want) != NULL;
    }
    free(o);
    return all;
}

static void sub_expect_once(sub_t *s, const char *when)
{
    cr_assert(h_wait(sub_has_all, s, 20000), "%s: the subscriber on a peer did not receive r001..r%03d", when, s->last);
    char *o = h_read_file(s->out, NULL);
    for (int i = 1; i <= s->last; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"r%03d\"", i);
        const char *p = strstr(o, want);
        cr_expect(p && !strstr(p + 1, want), "%s: the subscriber received r%03d %s", when, i, p ? "twice" : "never");
    }
    free(o);
}

Test(rotate, a_running_node_rotates_its_key_and_its_domain_log_continues)
{
    char da[256], db[256], dc[256], seed[160];
    identity_t ia, ib, ic;
    cert_t ca, cb, cc, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    node_dir("c", dc, sizeof dc, &ic);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    issue("listening", ic.pk, 0, "c.cert", &cc);
    h_node_t a, b, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    start(&c, "listening", dc, "c.cert", seed);
    char old_serial[17];
    cert_serial_text(ca.serial, old_serial);
    member_cond_t mc = {&c, "payments", ia.hex, old_serial, 3};
    cr_assert(h_wait(one_member, &mc, 20000), "listening does not see payments (and three alive members)");

    publish(&a, "1.0.0");
    put(&a, 1, 10);
    version_cond_t vc = {&c, "/v1/products/payments/settled", "1.0.0"};
    cr_assert(h_wait(has_version, &vc, 15000), "the product did not replicate to listening");
    sub_t sub = {.n = &c, .last = 10, .from = "1"};
    snprintf(sub.out, sizeof sub.out, "%s/sub.out", work);
    snprintf(sub.err, sizeof sub.err, "%s/sub.err", work);
    sub_start(&sub);
    sub_expect_once(&sub, "before the rotation");
    /* a live subscriber on the rotating node itself, with a token the rotation leaves valid (one of
     * its own old key stops verifying when the overlap ends, and a live stream checks it again) */
    sub_t local = {.n = &a, .last = 10, .from = "1", .token = c.token};
    snprintf(local.out, sizeof local.out, "%s/local.out", work);
    snprintf(local.err, sizeof local.err, "%s/local.err", work);
    sub_start(&local);
    sub_expect_once(&local, "before the rotation (local)");
    pid_t apid = a.pid;

    /* 1. the running node makes its next key; its secret stays in the data dir */
    char *out = NULL, *eout = NULL;
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, NULL);
    cr_assert_eq(rc, 0, "key rotate (pending) failed: %s", eout ? eout : "");
    char next[ID_HEX_LEN] = "";
    cr_assert(out && strlen(out) >= 64, "no new node id printed: %s", out ? out : "");
    memcpy(next, out, 64);
    cr_expect(eout && strstr(eout, old_serial), "the hint names the serial to continue: %s", eout ? eout : "");
    free(out), free(eout);
    char nextp[300];
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", da);
    identity_t in;
    cr_assert_eq(identity_load_file(nextp, &in, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(in.hex, next);
    put(&a, 11, 20);   /* the node keeps serving on its old key meanwhile */

    /* a certificate for another key is refused, and nothing changes */
    char certp[300];
    snprintf(certp, sizeof certp, "%s/b.cert", work);
    rc = h_trib(NULL, NULL, NULL, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_eq(rc, 1);
    cr_expect(eout && strstr(eout, "wrong_key"), "%s", eout ? eout : "");
    free(eout);

    char *old_token = h_read_file(token_file(&a), NULL);   /* issued by the old key */
    cr_assert_not_null(old_token);
    old_token[strcspn(old_token, "\r\n")] = '\0';

    /* 2. the roots certify the new key as a continuation; the node completes the rotation */
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    char rout[300], rerr[300];
    snprintf(rout, sizeof rout, "%s/rotate.out", work);
    snprintf(rerr, sizeof rerr, "%s/rotate.err", work);
    const char *rargs[] = {h_trib_path(), "key", "rotate", "--data", da, "--node", a.url, "--cert", certp,
                           "--overlap", "2s", NULL};
    pid_t readers = reads_start(&c);   /* routed one-shot reads through listening, one after another */
    pid_t rot = spawn(rout, rerr, NULL, rargs);
    /* the publisher goes on while the node rotates: each batch is retried until the node takes it
     * (a batch whose reply was lost is first looked for, so nothing is sent twice) */
    for (int batch = 0; batch < 4; batch++)
        put_retrying(&a, &c, 21 + 5 * batch, 25 + 5 * batch);
    int st = 0;
    cr_assert_eq(waitpid(rot, &st, 0), rot);
    reads_check(readers);
    out = h_read_file(rout, NULL), eout = h_read_file(rerr, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "key rotate --cert failed: %s (see %s)", eout ? eout : "", a.log);
    cr_expect(out && !strncmp(out, next, 64), "%s", out ? out : "");
    free(out), free(eout);
    sub.last = 40;
    sub_expect_once(&sub, "across the rotation");
    /* routed: the relay's live stream follows the owner's hand-over to its new key, and the
     * subscriber's stream never ends (issue 10 item 4: no resume with --from needed) */
    cr_expect_eq(sub.runs, 1, "the routed subscription ended during the rotation (it ran %d times): %s", sub.runs,
                 sub.err);
    cr_log_info("routed one-shot reads during the rotation: %d, failed cleanly: %d", routed_reads, routed_failed);
    cr_expect_geq(h_metric(c.url, "trib_read_events_total{event=\"owner_key_followed\"}"), 1,
                  "listening's relay did not follow the owner's new key");
    json_t *j = h_get_json(a.url, "/v1/status", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "node_id")) ?: "", next);
    json_decref(j);
    /* live: the same process, its HTTP server and its local stream went on */
    cr_expect_eq(a.pid, apid);
    cr_expect_eq(kill(apid, 0), 0, "the node's process is gone");
    local.last = 40;
    sub_expect_once(&local, "across the rotation (local)");
    cr_expect_eq(local.runs, 1, "the local subscription ended during the rotation (it ran %d times)", local.runs);
    char *alog = h_read_file(a.log, NULL);
    cr_expect(alog && strstr(alog, "running on the new key") && !strstr(alog, "restarting with the rotated key"),
              "the rotation was not live: see %s", a.log);
    free(alog);

    /* the old key is refused once the 2 s overlap is over: a token it issued is refused by a node
     * that checks it afresh (a node that verified it lately keeps that verdict up to 60 s: auth.c) */
    int64_t over = fx_now_ms() + 2500;   /* the overlap began before the command returned */
    cr_assert(h_wait(time_past, &over, 10000));
    tok_cond_t tc = {b.url, old_token, 0};
    cr_assert(h_wait(old_token_refused, &tc, 15000), "the old key's token is still taken (HTTP %ld)", tc.status);
    cr_expect_geq(h_metric(b.url, "trib_token_refused_total{reason=\"token_invalid\"}"), 1);
    free(old_token);

    /* 3. peers list one payments member: the new key, the new serial, no conflict */
    char new_serial[17];
    cert_serial_text(cn.serial, new_serial);
    member_cond_t nb = {&b, "payments", next, new_serial, 3}, nc = {&c, "payments", next, new_serial, 3};
    cr_assert(h_wait(one_member, &nb, 20000), "growth does not list payments once, on its new key");
    cr_assert(h_wait(one_member, &nc, 20000), "listening does not list payments once, on its new key");

    /* 4. the domain's log continues: the next entry, signed by the new key, is accepted everywhere */
    put(&a, 41, 45);
    publish(&a, "1.1.0");
    vc.version = "1.1.0";
    cr_assert(h_wait(has_version, &vc, 15000), "listening did not accept the new key's entry");
    vc.n = &b;
    cr_assert(h_wait(has_version, &vc, 15000), "growth did not accept the new key's entry");
    cr_expect_eq(h_metric(b.url, "trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"}"), 0);
    double links = h_metric(c.url, "trib_read_routed_total{path=\"link\"}");
    read_all_once(&c, 45);
    read_all_once(&b, 45);
    /* over the data link to the new key: the owner's link server answers new handshakes as the key it
     * speaks as now (answering as the old one, the relay's handshake to the new id would fail and the
     * read would go over the peer transport) */
    cr_expect_gt(h_metric(c.url, "trib_read_routed_total{path=\"link\"}"), links,
                 "listening's reads of the rotated owner did not go over the data link");

    /* 5. a restart comes back on the new key (its certificate is DATA/identity.cert) */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0, "the rotated node did not restart; see %s", a.log);
    j = h_get_json(a.url, "/v1/status", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "node_id")) ?: "", next);
    json_decref(j);
    cr_assert(h_wait(one_member, &nc, 20000), "after the restart listening does not list payments once");
    put(&a, 46, 50);
    publish(&a, "1.2.0");
    vc.version = "1.2.0";
    cr_assert(h_wait(has_version, &vc, 15000), "growth did not accept the restarted node's entry");
    read_all_once(&c, 50);
    sub.last = 50;
    sub_expect_once(&sub, "after the restart");
    /* the old key's entries still going round after the switch are old news, not a node claiming
     * another's address: the alarm of that (counter and warning) stays quiet for a routine rotation */
    for (h_node_t *p = &b; p; p = p == &b ? &c : NULL) {
        cr_expect_eq(h_metric(p->url, "trib_peer_key_refused_total"), 0,
                     "a routine rotation counted %.0f claim(s) of another node's address (%.0f of the retired key)",
                     h_metric(p->url, "trib_peer_key_refused_total"),
                     h_metric(p->url, "trib_peer_keys_total{event=\"refused_retired\"}"));
        char *plog = h_read_file(p->log, NULL);
        cr_expect(plog && !strstr(plog, "claim(s) of a peer address held by another node's key"), "see %s", p->log);
        free(plog);
    }
    if (sub.pid > 0) {
        kill(sub.pid, SIGTERM);
        waitpid(sub.pid, NULL, 0);
    }
    if (local.pid > 0) {
        kill(local.pid, SIGTERM);
        waitpid(local.pid, NULL, 0);
    }
    cr_log_info("the subscriber ran %d time(s)", sub.runs);

    /* 6. a hand-over signed by a key that is not the domain's is refused and counted */
    identity_t stranger;
    fx_identity(&stranger);
    rotation_t forged;
    cr_assert_eq(rotation_make(&stranger, "payments", ib.pk, fx_now_ms(), 0, &forged, err,
                               sizeof err), 0, "%s", err);
    char fp[300];
    snprintf(fp, sizeof fp, "%s/forged.rotation", work);
    j = rotation_to_json(&forged);
    cr_assert_eq(trust_file_write(fp, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    rc = h_trib(&b, NULL, NULL, &eout, "fed", "submit", fp, NULL);
    cr_expect_neq(rc, 0, "a stranger's hand-over was accepted");
    /* one line naming the file and the node's verdict as every command prints one: "FILE: 403 code: detail" */
    cr_expect(eout && strstr(eout, "forged.rotation: 4") && !strstr(eout, "(HTTP") &&
              strchr(eout, '\n') == eout + strlen(eout) - 1, "%s", eout ? eout : "-");
    free(eout);
    cr_expect_geq(h_metric(b.url, "trib_fedlog_refused_total{kind=\"rotation\",reason=\"uncertified\"}"), 1);
    j = h_get_json(b.url, "/v1/status", NULL);
    cr_expect_not_null(j, "growth stopped serving");
    json_decref(j);
    cr_assert(h_wait(one_member, &nb, 20000), "the forged hand-over changed growth's members");

    rotation_free(&forged);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cc), cert_free(&cn);
}

/* ---------------------------------------------------------------- a stop in the middle of a switch */

static int file_exists(const char *dir, const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void write_json_file(const char *dir, const char *name, json_t *j)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_not_null(j);
    cr_assert_eq(trust_file_write(p, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
}

static void expect_key(const char *dir, const char *name, const identity_t *want, const char *what)
{
    char p[400];
    identity_t got;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(identity_load_file(p, &got, err, sizeof err), 0, "%s: %s", what, err);
    cr_expect_str_eq(got.hex, want->hex, "%s", what);
    identity_wipe(&got);
}

static void expect_node_id(h_node_t *n, const char *hex, const char *when)
{
    json_t *j = h_get_json(n->url, "/v1/status", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "node_id")) ?: "", hex, "%s", when);
    json_decref(j);
}

static int handover_held(void *ctx)
{
    json_t *j = h_get_json(((h_node_t *)ctx)->url, "/v1/federation", NULL);
    int ok = json_integer_value(json_object_get(j, "rotations")) >= 1;
    json_decref(j);
    return ok;
}

/* A switch is committed once the new key's certificate is written (identity.next.cert; the
 * hand-over and the old certificate before it): a stop after that point and before the switch is
 * done leaves it to the next start, which finishes it and offers the hand-over to the federation
 * log (it may never have been gossiped). The old order wrote identity.cert before the key rename
 * and gossiped the hand-over first: a stop between left the node on the old key, which its peers
 * retire when the overlap ends. */
Test(rotate, a_key_switch_a_stop_interrupted_is_finished_at_the_next_start)
{
    char da[256], db[256], p[400];
    identity_t ia, ib, na, nb;
    cert_t ca, cb, cna, cnb;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    snprintf(p, sizeof p, "%s/identity.next.key", da);
    cr_assert_eq(identity_create_file(p, &na, err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/identity.next.key", db);
    cr_assert_eq(identity_create_file(p, &nb, err, sizeof err), 0, "%s", err);
    issue("payments", na.pk, ca.serial, NULL, &cna);
    issue("growth", nb.pk, cb.serial, NULL, &cnb);
    rotation_t ra, rb;
    int64_t now = fx_now_ms();
    cr_assert_eq(rotation_make(&ia, "payments", na.pk, now, DAY_MS, &ra, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rotation_make(&ib, "growth", nb.pk, now, DAY_MS, &rb, err, sizeof err), 0, "%s", err);

    /* a: stopped at the commit point, before identity.key was touched */
    write_json_file(da, "identity.prev.cert", cert_to_json(&ca));
    write_json_file(da, "identity.handover", rotation_to_json(&ra));
    write_json_file(da, "identity.next.cert", cert_to_json(&cna));
    /* b: stopped after the key rename, before the certificate's */
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/identity.key", db);
    snprintf(to, sizeof to, "%s/identity.prev.key", db);
    cr_assert_eq(link(from, to), 0);
    snprintf(from, sizeof from, "%s/identity.next.key", db);
    snprintf(to, sizeof to, "%s/identity.key", db);
    cr_assert_eq(rename(from, to), 0);
    write_json_file(db, "identity.prev.cert", cert_to_json(&cb));
    write_json_file(db, "identity.handover", rotation_to_json(&rb));
    write_json_file(db, "identity.next.cert", cert_to_json(&cnb));

    h_node_t a, b;
    start(&a, "payments", da, "a.cert", NULL);   /* --cert still names the first key's certificate */
    expect_node_id(&a, na.hex, "a stop before the key switch: the start did not finish it");
    cr_expect(file_exists(da, "identity.cert") && !file_exists(da, "identity.next.cert") &&
              !file_exists(da, "identity.next.key"), "the switch's files were not put in place");
    expect_key(da, "identity.key", &na, "identity.key");
    expect_key(da, "identity.prev.key", &ia, "identity.prev.key");
    cr_assert(h_wait(handover_held, &a, 15000), "the hand-over was not offered to the federation log again");
    char *log = h_read_file(a.log, NULL);
    cr_expect(log && strstr(log, "finished the key switch"), "the start does not say it finished the switch");
    free(log);

    char seed[160];
    snprintf(seed, sizeof seed, "%s@%s", na.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    expect_node_id(&b, nb.hex, "a stop between the key and the certificate: the start did not finish it");
    cr_expect(file_exists(db, "identity.cert") && !file_exists(db, "identity.next.cert"));
    expect_key(db, "identity.prev.key", &ib, "identity.prev.key");
    /* both run on their new keys, certified: each lists the other verified */
    member_cond_t mb = {&b, "payments", na.hex, NULL, 2}, ma = {&a, "growth", nb.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mb, 20000), "growth does not list payments on its new key");
    cr_assert(h_wait(one_member, &ma, 20000), "payments does not list growth on its new key");
    /* a later start has nothing to finish and starts as it is */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0, "the recovered node did not restart; see %s", a.log);
    expect_node_id(&a, na.hex, "after a second start");

    rotation_free(&ra), rotation_free(&rb);
    identity_wipe(&na), identity_wipe(&nb);
    cert_free(&ca), cert_free(&cb), cert_free(&cna), cert_free(&cnb);
}

/* The hand-over is written before the commit point (identity.next.cert): a stop between leaves a
 * hand-over of a switch that never happened. The next start runs on the old key and must not offer
 * it (peers would retire the key the node still runs on once the overlap ends). */
Test(rotate, a_hand_over_of_a_switch_that_never_committed_is_not_offered)
{
    char da[256], p[400];
    identity_t ia, na;
    cert_t ca;
    node_dir("a", da, sizeof da, &ia);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    snprintf(p, sizeof p, "%s/identity.next.key", da);
    cr_assert_eq(identity_create_file(p, &na, err, sizeof err), 0, "%s", err);
    rotation_t ra;
    cr_assert_eq(rotation_make(&ia, "payments", na.pk, fx_now_ms(), DAY_MS, &ra, err, sizeof err), 0, "%s", err);
    write_json_file(da, "identity.prev.cert", cert_to_json(&ca));
    write_json_file(da, "identity.handover", rotation_to_json(&ra));   /* and no identity.next.cert */

    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    expect_node_id(&a, ia.hex, "a switch that never committed was finished");
    /* offered (or not) before HTTP serves: nothing to wait for */
    json_t *j = h_get_json(a.url, "/v1/federation", NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "rotations")), 0,
                 "the uncommitted hand-over was offered to the federation log");
    json_decref(j);
    rotation_free(&ra);
    identity_wipe(&na);
    cert_free(&ca);
}

typedef struct {
    h_node_t *n;
    const char *hex;
} id_cond_t;

static int runs_as(void *ctx)
{
    id_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/status", NULL);
    int ok = !strcmp(json_string_value(json_object_get(j, "node_id")) ?: "", c->hex);
    json_decref(j);
    return ok;
}

static int next_key_made(void *path) { return access(path, F_OK) == 0; }

typedef struct {
    pid_t pid;
    int status;   /* -1 while running */
} wait_cmd_t;

static int cmd_done(void *ctx)
{
    wait_cmd_t *c = ctx;
    int st;
    if (c->status == -1 && waitpid(c->pid, &st, WNOHANG) == c->pid)
        c->status = st;
    return c->status != -1;
}

/* Issue 10 item 4: a pending rotation completes when the new key's certificate reaches the node
 * through the federation log (submitted on another node), without `trib key rotate --cert`. */
Test(rotate, a_pending_rotation_completes_when_its_certificate_arrives_by_gossip)
{
    char da[256], db[256], seed[160];
    identity_t ia, ib;
    cert_t ca, cb, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    h_node_t a, b;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    member_cond_t mc = {&b, "payments", ia.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mc, 20000), "growth does not see payments");

    /* step 1 with --wait, in the background: it prints the new id, then waits for the switch */
    char wout[300], werr[300];
    snprintf(wout, sizeof wout, "%s/wait.out", work);
    snprintf(werr, sizeof werr, "%s/wait.err", work);
    const char *wargs[] = {h_trib_path(), "key", "rotate", "--data", da, "--node", a.url, "--wait", NULL};
    wait_cmd_t wc = {spawn(wout, werr, NULL, wargs), -1};
    char nextp[300];
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", da);
    cr_assert(h_wait(next_key_made, nextp, 20000), "key rotate --wait made no next key: see %s", werr);
    identity_t in;
    cr_assert_eq(identity_load_file(nextp, &in, err, sizeof err), 0, "%s", err);
    expect_node_id(&a, ia.hex, "pending: the node still runs on its old key");
    cr_expect(!cmd_done(&wc), "key rotate --wait returned before the switch: %s", werr);
    char *out = NULL, *eout = NULL;

    /* the roots' certificate for the next key, submitted on the OTHER node */
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    char certp[300];
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    out = eout = NULL;
    int rc = h_trib(&b, NULL, &out, &eout, "fed", "submit", certp, "--node", b.url, NULL);
    cr_assert_eq(rc, 0, "fed submit on growth failed: %s", eout ? eout : "");
    free(out), free(eout);

    id_cond_t ic = {&a, in.hex};
    cr_assert(h_wait(runs_as, &ic, 20000), "payments did not switch to its new key when the certificate arrived; "
              "see %s", a.log);
    cr_expect(!file_exists(da, "identity.next.key"), "identity.next.key is still there");
    if (!h_wait(cmd_done, &wc, 20000)) {
        kill(wc.pid, SIGKILL);
        waitpid(wc.pid, NULL, 0);
        cr_assert_fail("key rotate --wait did not return after the switch: %s", werr);
    }
    cr_expect(WIFEXITED(wc.status) && WEXITSTATUS(wc.status) == 0, "key rotate --wait failed: %s", werr);
    out = h_read_file(wout, NULL);
    cr_expect(out && !strncmp(out, in.hex, 64), "key rotate --wait printed: %s", out ? out : "");
    free(out);
    expect_key(da, "identity.key", &in, "identity.key is the new key");
    expect_key(da, "identity.prev.key", &ia, "identity.prev.key is the old key");
    /* step 3 run anyway, after the switch: it says so, and starts no new rotation */
    out = eout = NULL;
    rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_eq(rc, 0, "key rotate --cert after the switch failed: %s", eout ? eout : "");
    cr_expect(out && !strncmp(out, in.hex, 64), "%s", out ? out : "");
    cr_expect(!file_exists(da, "identity.next.key"), "key rotate --cert after the switch made a next key");
    free(out), free(eout);
    cr_assert(h_wait(handover_held, &b, 20000), "growth never held the hand-over");
    member_cond_t nc = {&b, "payments", in.hex, NULL, 2};
    cr_expect(h_wait(one_member, &nc, 20000), "growth does not list payments under its new key");
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cn);
}

/* ---------------------------------------------------------------- a switch that fails; a certificate not valid yet */

/* A certificate of domain for pk continuing prev, valid from not_before for 90 days, at work/file. */
static void issue_from(const char *domain, const uint8_t pk[32], uint64_t prev, int64_t not_before, const char *file,
                       cert_t *out)
{
    char path[256];
    cr_assert_eq(cert_issue(&ch, domain, pk, not_before, not_before + 90 * DAY_MS, prev, two_roots, 2, out, err,
                            sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/%s", work, file);
    json_t *j = cert_to_json(out);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
}

/* `trib key rotate` (pending) on n: the next key, loaded into *in. */
static void rotate_pending(h_node_t *n, const char *dir, const char *overlap, identity_t *in)
{
    char *out = NULL, *eout = NULL, nextp[300];
    int rc = overlap ? h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", dir, "--node", n->url, "--overlap",
                              overlap, NULL)
                     : h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", dir, "--node", n->url, NULL);
    cr_assert_eq(rc, 0, "key rotate (pending) failed: %s", eout ? eout : "");
    free(out), free(eout);
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", dir);
    cr_assert_eq(identity_load_file(nextp, in, err, sizeof err), 0, "%s", err);
}

/* The node's trib status field key_rotation holds want (NULL: has none). */
typedef struct {
    h_node_t *n;
    const char *want;
    char last[700];
} rot_status_t;

static int rotation_status_is(void *ctx)
{
    rot_status_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/status", NULL);
    const char *s = json_string_value(json_object_get(j, "key_rotation"));
    snprintf(c->last, sizeof c->last, "%s", s ? s : "(none)");
    int ok = j && (c->want ? s && strstr(s, c->want) != NULL : s == NULL);
    json_decref(j);
    return ok;
}

/* Issue 10 item 4, a switch that fails after the node began it: the commit point (the new key's
 * certificate renamed into place) is made to fail for real, by a directory where the file goes.
 * The gossip loop had moved to the new key by then (the listener bound again under it): it must
 * move back, and the node go on whole on its old key: peers list it once, alive, on the old key;
 * it publishes (its catalog signs with a key they take); trib status, /metrics and the log say
 * what failed; nothing of the switch is left in the data dir; run again, the rotation completes.
 * The old code wrote the certificate before moving anything and said nothing but the 500: no
 * status, no counter. */
Test(rotate, a_switch_that_fails_leaves_the_node_whole_on_its_old_key)
{
    char da[256], db[256], seed[160], p[400];
    identity_t ia, ib, in;
    cert_t ca, cb, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    h_node_t a, b;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    member_cond_t mc = {&b, "payments", ia.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mc, 20000), "growth does not see payments");
    publish(&a, "1.0.0");
    version_cond_t vc = {&b, "/v1/products/payments/settled", "1.0.0"};
    cr_assert(h_wait(has_version, &vc, 15000), "the product did not replicate to growth");

    rotate_pending(&a, da, NULL, &in);
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    char certp[300];
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    snprintf(p, sizeof p, "%s/identity.next.cert", da);
    cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s", p);   /* the commit point cannot be written */

    char *out = NULL, *eout = NULL;
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_neq(rc, 0, "key rotate --cert succeeded with its commit point blocked: %s", out ? out : "");
    cr_expect(eout && strstr(eout, "switch_failed") && strstr(eout, "old key"), "%s", eout ? eout : "");
    free(out), free(eout);

    /* whole on the old key: its id, its peers' view, its listener (a peer reaches it), its signer */
    expect_node_id(&a, ia.hex, "after the failed switch");
    rot_status_t rs = {&a, "failed", ""};
    cr_expect(h_wait(rotation_status_is, &rs, 5000), "trib status does not say the switch failed: %s", rs.last);
    cr_expect(strstr(rs.last, "cannot commit"), "trib status does not say why: %s", rs.last);
    cr_expect_eq(h_metric(a.url, "trib_key_rotation_failures_total"), 1);
    cr_expect_eq(h_metric(a.url, "trib_key_rotation_pending"), 1);
    char *alog = h_read_file(a.log, NULL);
    cr_expect(alog && strstr(alog, "the switch to the next key failed") && strstr(alog, "was not made"),
              "the log does not say the switch failed and was undone: see %s", a.log);
    cr_expect(alog && !strstr(alog, "restarting with the rotated key"), "the agent restarted: see %s", a.log);
    free(alog);
    cr_expect(!file_exists(da, "identity.next.cert.new") && !file_exists(da, "admin.token.next"),
              "the staged files of the failed switch are left in %s", da);
    expect_key(da, "identity.key", &ia, "identity.key is still the old key");
    member_cond_t still = {&b, "payments", ia.hex, NULL, 2};
    cr_expect(h_wait(one_member, &still, 20000), "growth does not list payments once, alive, on its old key");
    publish(&a, "1.1.0");   /* with the token of the old key, which the node still signs with */
    version_cond_t v2 = {&b, "/v1/products/payments/settled", "1.1.0"};
    cr_expect(h_wait(has_version, &v2, 15000), "a publish after the failed switch did not reach growth");
    cr_assert(h_wait(one_member, &still, 5000), "growth lost payments on its old key");

    /* run again with the way clear: the rotation completes, live */
    cr_assert_eq(rmdir(p), 0);
    out = eout = NULL;
    rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_assert_eq(rc, 0, "key rotate --cert failed the second time: %s (see %s)", eout ? eout : "", a.log);
    free(out), free(eout);
    expect_node_id(&a, in.hex, "after the rotation run again");
    rot_status_t clear = {&a, NULL, ""};
    cr_expect(h_wait(rotation_status_is, &clear, 5000), "trib status still shows: %s", clear.last);
    member_cond_t nb = {&b, "payments", in.hex, NULL, 2};
    cr_expect(h_wait(one_member, &nb, 20000), "growth does not list payments on its new key");
    publish(&a, "1.2.0");
    version_cond_t v3 = {&b, "/v1/products/payments/settled", "1.2.0"};
    cr_expect(h_wait(has_version, &v3, 15000), "a publish under the new key did not reach growth");
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cn);
}

/* Two nodes, payments (a) seeding growth (b), each certified; growth sees payments. */
static void two_nodes(h_node_t *a, h_node_t *b, char *da, char *db, identity_t *ia, cert_t *ca)
{
    char seed[160];
    identity_t ib;
    cert_t cb;
    node_dir("a", da, 256, ia);
    node_dir("b", db, 256, &ib);
    issue("payments", ia->pk, 0, "a.cert", ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    start(a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia->hex, a->peer);
    start(b, "growth", db, "b.cert", seed);
    member_cond_t mc = {b, "payments", ia->hex, NULL, 2};
    cr_assert(h_wait(one_member, &mc, 20000), "growth does not see payments");
    identity_wipe(&ib);
    cert_free(&cb);
}

/* `trib fed submit` of work/file on n. */
static void submit(h_node_t *n, const char *file)
{
    char certp[300], *out = NULL, *eout = NULL;
    snprintf(certp, sizeof certp, "%s/%s", work, file);
    int rc = h_trib(n, NULL, &out, &eout, "fed", "submit", certp, "--node", n->url, NULL);
    cr_assert_eq(rc, 0, "fed submit on %s failed: %s", n->domain, eout ? eout : "");
    free(out), free(eout);
}

/* The overlap of the hand-over the node in dir signed (DIR/identity.handover), in ms. */
static int64_t handover_overlap_ms(const char *dir)
{
    rotation_t rot;
    char hp[300];
    snprintf(hp, sizeof hp, "%s/identity.handover", dir);
    cr_assert_eq(rotation_load(hp, &rot, err, sizeof err), 0, "%s", err);
    int64_t v = rot.overlap_ms;
    rotation_free(&rot);
    return v;
}

/* Issue 10 item 4, a pending rotation whose certificate reaches the node by gossip before it is
 * valid (not_before beyond the 60 s skew allowance): trib status and /metrics say when the switch
 * is tried again, and at that moment it is made. The old code logged the refusal once and never
 * tried again. */
Test(rotate, a_certificate_not_valid_yet_completes_the_rotation_when_it_becomes_valid)
{
    char da[256], db[256];
    identity_t ia, in;
    cert_t ca, cn;
    h_node_t a, b;
    two_nodes(&a, &b, da, db, &ia, &ca);
    rotate_pending(&a, da, NULL, &in);
    rot_status_t rs = {&a, "pending", ""};
    cr_expect(h_wait(rotation_status_is, &rs, 5000), "trib status does not show the pending rotation: %s", rs.last);

    /* valid 20 s after the skew allowance ends (room for gossip under load): submitted on the
     * other node */
    int64_t nb_ms = fx_now_ms() + TRUST_SKEW_MS + 20000;
    issue_from("payments", in.pk, ca.serial, nb_ms, "next.cert", &cn);
    submit(&b, "next.cert");
    rot_status_t wait = {&a, "not valid until", ""};
    cr_expect(h_wait(rotation_status_is, &wait, 15000), "trib status does not say the switch waits: %s", wait.last);
    cr_expect_gt(h_metric(a.url, "trib_key_rotation_retry_at_seconds"), 0);
    expect_node_id(&a, ia.hex, "before the certificate is valid");

    id_cond_t ic = {&a, in.hex};
    cr_assert(h_wait(runs_as, &ic, 40000), "payments did not switch when its new certificate became valid; see %s",
              a.log);
    cr_expect_geq(fx_now_ms(), nb_ms - TRUST_SKEW_MS, "switched before the certificate was valid");
    rot_status_t clear = {&a, NULL, ""};
    cr_expect(h_wait(rotation_status_is, &clear, 5000), "trib status still shows: %s", clear.last);
    cr_expect_eq(h_metric(a.url, "trib_key_rotation_retry_at_seconds"), 0);
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cn);
}

/* Issue 10 item 4, the overlap: a rotation started with --overlap 7m, the agent restarted since,
 * completes by itself when its certificate arrives by gossip: the hand-over it signs carries the
 * 7 min asked, not the default 24 h (the old code's), and the kept overlap goes with the switch. */
Test(rotate, a_pending_rotation_switches_with_the_overlap_it_was_started_with)
{
    char da[256], db[256];
    identity_t ia, in;
    cert_t ca, cn;
    h_node_t a, b;
    two_nodes(&a, &b, da, db, &ia, &ca);
    rotate_pending(&a, da, "7m", &in);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);   /* the overlap asked for is kept across a restart */
    cr_assert_eq(h_node_restart(&a), 0, "payments did not start again; see %s", a.log);
    member_cond_t mc = {&b, "payments", ia.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mc, 20000), "growth does not see payments after its restart");

    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    submit(&b, "next.cert");
    id_cond_t ic = {&a, in.hex};
    cr_assert(h_wait(runs_as, &ic, 20000), "payments did not switch when its certificate arrived; see %s", a.log);
    int64_t ov = handover_overlap_ms(da);
    cr_expect_eq(ov, 7 * 60000LL, "the automatic switch used an overlap of %lld ms, not the 7 min asked",
                 (long long)ov);
    cr_expect(!file_exists(da, "identity.next.json"), "the kept overlap outlived the switch");
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cn);
}

/* The kept overlap (identity.next.json, {"overlap_s": N}: a few bytes) is read bounded, as every
 * other file the node reads (gossip/textfile.c): one past 4 KiB is refused in textfile's words,
 * logged, and the default overlap is used. The old code read it whole, whatever its size. */
Test(rotate, an_oversized_kept_overlap_is_refused_in_textfile_s_words)
{
    char da[256], db[256], path[300];
    identity_t ia, in;
    cert_t ca, cn;
    h_node_t a, b;
    two_nodes(&a, &b, da, db, &ia, &ca);
    rotate_pending(&a, da, "7m", &in);
    snprintf(path, sizeof path, "%s/identity.next.json", da);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"overlap_s\": 420}");
    for (int i = 0; i < 5000; i++)
        fputc(' ', f);
    cr_assert_eq(fclose(f), 0);

    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    submit(&b, "next.cert");
    id_cond_t ic = {&a, in.hex};
    cr_assert(h_wait(runs_as, &ic, 20000), "payments did not switch when its certificate arrived; see %s", a.log);
    int64_t ov = handover_overlap_ms(da);
    cr_expect_eq(ov, 24 * 3600000LL, "an overlap of %lld ms, not the default: the oversized file was read",
                 (long long)ov);
    char *log = h_read_file(a.log, NULL), want[400];
    snprintf(want, sizeof want, "%s: larger than 4 KiB (4096 bytes), the limit for a pending rotation's overlap file",
             path);
    cr_expect(log && strstr(log, want), "the log does not say '%s': see %s", want, a.log);
    free(log);
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cn);
}

/* A rotation started with --overlap and abandoned (its next key removed, as after a failure)
 * leaves identity.next.json behind: a later rotation without --overlap makes a new next key and
 * must not inherit that overlap (the old code kept the file until a switch). */
Test(rotate, a_new_rotation_without_overlap_drops_an_abandoned_one_s_overlap)
{
    char da[256], db[256], path[300];
    identity_t ia, in, in2;
    cert_t ca;
    h_node_t a, b;
    two_nodes(&a, &b, da, db, &ia, &ca);
    rotate_pending(&a, da, "90d", &in);
    cr_assert(file_exists(da, "identity.next.json"), "--overlap was not kept");
    snprintf(path, sizeof path, "%s/identity.next.key", da);
    cr_assert_eq(unlink(path), 0);
    rotate_pending(&a, da, NULL, &in2);
    cr_expect(memcmp(in.pk, in2.pk, sizeof in.pk) != 0, "no new next key was made");
    cr_expect(!file_exists(da, "identity.next.json"), "the abandoned rotation's overlap went with the new one");
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in), identity_wipe(&in2);
    cert_free(&ca);
}

/* Issue 10 item 4, the relay side: a node that relays routed reads for others (listening, reading
 * payments' product for its clients) rotates its own key. Its streams at the owner were opened by
 * its old key; the owner keys its streams by the requester, so the relay's credits under the new
 * key matched none, and each session stalled and failed (stall_ms, 3.5 s) and its subscriber had
 * to resume. Now its live subscriber's stream goes on, each record once, and one-shot reads made
 * meanwhile end whole or fail saying why. */
Test(rotate, a_relay_that_rotates_its_key_keeps_its_readers_going)
{
    char da[256], dc[256], seed[160];
    identity_t ia, ic, in;
    cert_t ca, cc, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("c", dc, sizeof dc, &ic);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("listening", ic.pk, 0, "c.cert", &cc);
    h_node_t a, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&c, "listening", dc, "c.cert", seed);
    member_cond_t mc = {&c, "payments", ia.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mc, 20000), "listening does not see payments");
    publish(&a, "1.0.0");
    put(&a, 1, 10);
    version_cond_t vc = {&c, "/v1/products/payments/settled", "1.0.0"};
    cr_assert(h_wait(has_version, &vc, 15000), "the product did not replicate to listening");
    sub_t sub = {.n = &c, .last = 10, .from = "1"};
    snprintf(sub.out, sizeof sub.out, "%s/sub.out", work);
    snprintf(sub.err, sizeof sub.err, "%s/sub.err", work);
    sub_start(&sub);
    sub_expect_once(&sub, "before the relay's rotation");

    rotate_pending(&c, dc, NULL, &in);
    issue("listening", in.pk, cc.serial, "next.cert", &cn);
    char certp[300];
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    pid_t readers = reads_start(&c);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", dc, "--node", c.url, "--cert", certp, NULL);
    cr_assert_eq(rc, 0, "key rotate --cert on the relay failed: %s (see %s)", eout ? eout : "", c.log);
    free(out), free(eout);
    expect_node_id(&c, in.hex, "the relay after its rotation");
    /* records appended after the switch reach the relay's subscriber, past the stall time */
    for (int batch = 0; batch < 4; batch++)
        put_retrying(&a, &c, 11 + 5 * batch, 15 + 5 * batch);
    int64_t past = fx_now_ms() + 4000;   /* beyond stall_ms (3.5 s) after the switch */
    cr_assert(h_wait(time_past, &past, 10000));
    put_retrying(&a, &c, 31, 35);
    reads_check(readers);
    sub.last = 35;
    sub_expect_once(&sub, "across the relay's rotation");
    cr_expect_eq(sub.runs, 1, "the subscription through the relay ended when it rotated (it ran %d times): %s",
                 sub.runs, sub.err);
    cr_log_info("routed one-shot reads during the relay's rotation: %d, failed cleanly: %d", routed_reads,
                routed_failed);
    read_all_once(&c, 35);
    if (sub.pid > 0) {
        kill(sub.pid, SIGTERM);
        waitpid(sub.pid, NULL, 0);
    }
    cr_assert_eq(h_node_stop(&c, SIGTERM), 0);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cc), cert_free(&cn);
}

/* The certificates a node's federation log holds (GET /v1/federation). */
static size_t certificates_held(h_node_t *n)
{
    json_t *j = h_get_json(n->url, "/v1/federation", NULL);
    size_t k = json_array_size(json_object_get(j, "certificates"));
    json_decref(j);
    return k;
}

static long objects_held(h_node_t *n)
{
    json_t *j = h_get_json(n->url, "/v1/federation", NULL);
    long k = (long)json_integer_value(json_object_get(j, "objects"));
    json_decref(j);
    return k;
}

/* A certificate for the next key that the federation has revoked was stored in the federation log
 * (and pushed to every member) before the rotation refused it (403 revoked), as the expired one
 * was. It is refused before anything is stored now, naming the revocation, and counted as the
 * log's refusals; the federation log holds what it held, also after a restart, and the rotation
 * stays pending. */
Test(rotate, a_revoked_certificate_for_the_next_key_is_refused_and_not_stored)
{
    char da[256], certp[300], url[300];
    identity_t ia, in;
    cert_t ca, cn;
    node_dir("a", da, sizeof da, &ia);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rotate_pending(&a, da, NULL, &in);
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 0, cn.serial, cn.node_key, fx_now_ms() - 1000, "next key leaked", two_roots, 2,
                                  &rv, err, sizeof err), 0, "%s", err);
    json_t *file = revocation_to_json(&rv);
    char *text = json_dumps(file, JSON_COMPACT);
    json_decref(file);
    revocation_free(&rv);
    snprintf(url, sizeof url, "%s/v1/federation/objects", a.url);
    h_resp_t resp;
    cr_assert_eq(h_http("POST", url, "application/json", text, strlen(text), &resp), 0);
    cr_assert_eq(resp.status, 201, "the revocation: %ld %s", resp.status, resp.body ? resp.body : "");
    h_resp_free(&resp);
    free(text);
    long objects = objects_held(&a);
    size_t certs = certificates_held(&a);
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_neq(rc, 0, "key rotate took a revoked certificate: %s", out ? out : "");
    cr_expect(eout && strstr(eout, "revoked") && strstr(eout, "next key leaked"), "%s", eout ? eout : "");
    free(out), free(eout);
    cr_expect_eq(objects_held(&a), objects, "the refused certificate was stored in the federation log");
    cr_expect_eq(certificates_held(&a), certs, "the refused certificate is held");
    cr_expect_eq(h_metric(a.url, "trib_fedlog_refused_total{kind=\"certificate\",reason=\"revoked\"}"), 1);
    expect_node_id(&a, ia.hex, "after the refused certificate");
    cr_expect_eq(h_metric(a.url, "trib_key_rotation_pending"), 1);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0, "the node did not start again; see %s", a.log);
    cr_expect_eq(objects_held(&a), objects, "after a restart, the federation log holds the refused certificate");
    cr_expect_eq(certificates_held(&a), certs);
    expect_node_id(&a, ia.hex, "after the restart");
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cn);
}

/* An expired certificate for the next key was refused (403 expired) only after the node had
 * stored it in its federation log, which pushed it to every member: a refused rotation changed
 * the federation (found by test_http_fuzz_fed). It is refused before anything is stored now;
 * the rotation stays pending and completes with a valid certificate. */
Test(rotate, an_expired_certificate_for_the_next_key_is_refused_and_not_stored)
{
    char da[256], certp[300];
    identity_t ia, in;
    cert_t ca, old, cn;
    node_dir("a", da, sizeof da, &ia);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    rotate_pending(&a, da, NULL, &in);
    size_t held = certificates_held(&a);
    issue_from("payments", in.pk, ca.serial, fx_now_ms() - 100 * DAY_MS, "expired.cert", &old);
    /* the same with one base64 character of a signature changed: forged, whatever its dates
     * (its dates were checked first: refused as expired, counted as expired) */
    {
        snprintf(certp, sizeof certp, "%s/expired.cert", work);
        char *txt = h_read_file(certp, NULL);
        json_t *j = json_loads(txt, 0, NULL);
        cr_assert_not_null(j);
        free(txt);
        char *sig = strdup(json_string_value(json_object_get(j, "signed")));
        size_t sl = strlen(sig);
        sig[sl - 6] = sig[sl - 6] == 'A' ? 'B' : 'A';
        json_object_set_new(j, "signed", json_string(sig));
        free(sig);
        txt = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        snprintf(certp, sizeof certp, "%s/forged.cert", work);
        cr_assert_eq(h_write_file(certp, txt, strlen(txt)), 0);
        free(txt);
        double forged = h_metric(a.url, "trib_fedlog_refused_total{kind=\"certificate\",reason=\"forged\"}");
        char *fo = NULL, *feo = NULL;
        int frc = h_trib(NULL, NULL, &fo, &feo, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
        cr_expect_neq(frc, 0, "key rotate took a forged certificate: %s", fo ? fo : "");
        cr_expect(feo && strstr(feo, "forged") && !strstr(feo, "expired"), "%s", feo ? feo : "");
        free(fo), free(feo);
        cr_expect_eq(h_metric(a.url, "trib_fedlog_refused_total{kind=\"certificate\",reason=\"forged\"}"),
                     forged + 1, "the forged certificate was not counted as forged");
        cr_expect_eq(certificates_held(&a), held, "the forged certificate was stored in the federation log");
    }
    snprintf(certp, sizeof certp, "%s/expired.cert", work);
    char *out = NULL, *eout = NULL;
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_neq(rc, 0, "key rotate took an expired certificate: %s", out ? out : "");
    cr_expect(eout && strstr(eout, "expired"), "%s", eout ? eout : "");
    free(out), free(eout);
    cr_expect_eq(certificates_held(&a), held, "the refused certificate was stored in the federation log");
    expect_node_id(&a, ia.hex, "after the refused certificate");
    cr_expect_eq(h_metric(a.url, "trib_key_rotation_pending"), 1);
    /* a valid one still completes it */
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    out = eout = NULL;
    rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_expect_eq(rc, 0, "key rotate with a valid certificate: %s", eout ? eout : "");
    free(out), free(eout);
    expect_node_id(&a, in.hex, "after the valid certificate");
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&old), cert_free(&cn);
}

/* ---------------------------------------------------------------- the rotated-out key's entries */

typedef struct {
    h_node_t *n;
    const char *node_id;   /* this member is gone at n: left, or not listed (a left one is not) */
} left_cond_t;

static int member_left(void *ctx)
{
    left_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL);
    int listed = 0, got = j != NULL;
    const char *lists[] = {"members", "uncertified"};
    for (int l = 0; l < 2; l++) {
        json_t *m;
        size_t i;
        json_array_foreach(json_object_get(j, lists[l]), i, m)
        {
            const char *id = json_string_value(json_object_get(m, "node_id"));
            const char *st = json_string_value(json_object_get(m, "state"));
            listed |= id && st && !strcmp(id, c->node_id) && strcmp(st, "left") != 0;
        }
    }
    json_decref(j);
    return got && !listed;
}

/* Claims of the rotated node's address by its old key, refused at n (member entries gossiped or
 * probed, messages dropped). */
static double retired_claims(h_node_t *n)
{
    return h_metric(n->url, "trib_peer_keys_total{event=\"refused_retired\"}") +
           h_metric(n->url, "trib_gossip_dropped_total{reason=\"retired_key\"}");
}

typedef struct {
    h_node_t *n[2];
    double base;
} claims_cond_t;

static int claims_grew(void *ctx)
{
    claims_cond_t *c = ctx;
    return retired_claims(c->n[0]) + retired_claims(c->n[1]) > c->base + 1;
}

/* A rotated-out key's entries stop going round once a peer holds its hand-over: the peer takes the
 * old key as left at once and never probes, retries or repeats it again. Before, the old key's
 * entry stayed ALIVE until its LEFT arrived or probes of it failed, and a LEFT (or DEAD) entry was
 * retried at a backoff for a day: every probe and retry a claim of the address by the key that
 * gave it up, refused and counted (trib_peer_keys_total{event="refused_retired"}); a chartered soak
 * of 4-9 rotations counted 17-91 at each peer. A forged hand-over retires no one. */
Test(rotate, a_rotated_out_key_is_left_at_once_where_its_hand_over_is_held)
{
    char da[256], db[256], dc[256], seed[160];
    identity_t ia, ib, ic;
    cert_t ca, cb, cc, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    node_dir("c", dc, sizeof dc, &ic);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    issue("listening", ic.pk, 0, "c.cert", &cc);
    h_node_t a, b, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    start(&c, "listening", dc, "c.cert", seed);
    member_cond_t mc = {&c, "payments", ia.hex, NULL, 3}, mb = {&b, "payments", ia.hex, NULL, 3};
    cr_assert(h_wait(one_member, &mc, 20000), "listening does not see payments (and three alive members)");
    cr_assert(h_wait(one_member, &mb, 20000), "growth does not see payments (and three alive members)");

    /* a forged hand-over of growth's key (signed by a stranger) retires no one */
    identity_t stranger;
    fx_identity(&stranger);
    rotation_t forged;
    cr_assert_eq(rotation_make(&stranger, "growth", ic.pk, fx_now_ms(), 0, &forged, err, sizeof err), 0, "%s", err);
    char fp[300], *eout = NULL;
    snprintf(fp, sizeof fp, "%s/forged.rotation", work);
    json_t *j = rotation_to_json(&forged);
    cr_assert_eq(trust_file_write(fp, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    cr_expect_neq(h_trib(&c, NULL, NULL, &eout, "fed", "submit", fp, NULL), 0, "a stranger's hand-over was taken");
    free(eout);
    rotation_free(&forged);

    identity_t in;
    rotate_pending(&a, da, "1h", &in);
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    char certp[300], *out = NULL;
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_assert_eq(rc, 0, "key rotate --cert failed: %s", eout ? eout : "");
    free(out), free(eout);
    cr_assert(h_wait(handover_held, &b, 20000), "growth never held the hand-over");
    cr_assert(h_wait(handover_held, &c, 20000), "listening never held the hand-over");
    uint64_t held = (uint64_t)fx_now_ms();
    /* left at once where the hand-over is held (the old key's own LEFT may be lost on the way) */
    left_cond_t lb = {&b, ia.hex}, lc = {&c, ia.hex};
    /* (the loop retires it at its next trust check, every 250 ms: 10 s is room for a loaded host) */
    cr_expect(h_wait(member_left, &lb, 10000), "growth does not take the old key as left 10 s after the hand-over");
    cr_expect(h_wait(member_left, &lc, 10000),
              "listening does not take the old key as left 10 s after the hand-over");
    cr_log_info("old key left at both peers %llu ms after both held the hand-over",
                (unsigned long long)((uint64_t)fx_now_ms() - held));
    /* and from then on no claim of the address by the old key (FAST retries a gone member every
     * second at most: main's code counted ~1 a second at each peer) */
    claims_cond_t cc2 = {{&b, &c}, retired_claims(&b) + retired_claims(&c)};
    cr_log_info("claims of the old key refused by the peers so far: %.0f", cc2.base);
    cr_expect(!h_wait(claims_grew, &cc2, 8000), "the old key's claims went on after it was left: %.0f, then %.0f",
              cc2.base, retired_claims(&b) + retired_claims(&c));
    /* the new key is the one payments member; growth (whose hand-over was forged) is alive */
    member_cond_t nb = {&b, "payments", in.hex, NULL, 3}, nc = {&c, "payments", in.hex, NULL, 3};
    cr_expect(h_wait(one_member, &nb, 20000), "growth does not list payments once, on its new key");
    cr_expect(h_wait(one_member, &nc, 20000), "listening does not list payments once, on its new key");
    cr_expect_eq(h_metric(b.url, "trib_swim_claims_refused_total{reason=\"forged\"}"), 0);
    cr_expect_eq(h_metric(c.url, "trib_swim_claims_refused_total{reason=\"forged\"}"), 0);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cc), cert_free(&cn);
}

/* /metrics' trib_members{state} counts what /v1/status' "members" counts (docs/operators.md:
 * members are the nodes `trib members` lists): a key handed over to its successor is no member
 * once the hand-over is held, so neither counts it, left or dead. Before, the gauge counted every
 * key the membership still held (for 24 h): after a rotation one "left" more than status at every
 * node, and after a dead node's replacement (operators.md §5) one "dead" more, which an alert on
 * dead members took for a node down for a day. */
typedef struct {
    h_node_t *n;
    char last[200];
} counts_cond_t;

static int counts_agree(void *ctx)
{
    counts_cond_t *c = ctx;
    static const char *const states[] = {"alive", "suspect", "dead", "left"};
    json_t *j = h_get_json(c->n->url, "/v1/status", NULL), *m = json_object_get(j, "members");
    int ok = m != NULL;
    size_t k = 0;
    c->last[0] = 0;
    for (int i = 0; i < 4; i++) {
        char series[64];
        snprintf(series, sizeof series, "trib_members{state=\"%s\"}", states[i]);
        double gauge = h_metric(c->n->url, series);
        json_int_t status = json_integer_value(json_object_get(m, states[i]));
        ok &= gauge == (double)status;
        if (k < sizeof c->last)
            k += (size_t)snprintf(c->last + k, sizeof c->last - k, "%s %.0f/%lld ", states[i], gauge,
                                  (long long)status);
    }
    json_decref(j);
    return ok;
}

typedef struct {
    h_node_t *n;
    const char *node_id;
} gone_logged_t;

/* n's log says the member node_id went to left */
static int left_logged(void *ctx)
{
    gone_logged_t *c = ctx;
    size_t len;
    char *log = h_read_file(c->n->log, &len), want[100];
    snprintf(want, sizeof want, "(%s) at ", c->node_id);
    int found = 0;
    for (char *line = log; line && *line && !found;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        found = strstr(line, want) && strstr(line, "-> left");
        line = end ? end + 1 : NULL;
    }
    free(log);
    return found;
}

Test(rotate, the_members_gauge_counts_what_status_counts_after_a_rotation)
{
    char da[256], db[256], seed[160];
    identity_t ia, ib, in;
    cert_t ca, cb, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    h_node_t a, b;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    member_cond_t mb = {&b, "payments", ia.hex, NULL, 2};
    cr_assert(h_wait(one_member, &mb, 20000), "growth does not see payments");
    rotate_pending(&a, da, "1h", &in);
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    char certp[300], *out = NULL, *eout = NULL;
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_assert_eq(rc, 0, "key rotate --cert failed: %s", eout ? eout : "");
    free(out), free(eout);
    member_cond_t nb = {&b, "payments", in.hex, NULL, 2};
    cr_assert(h_wait(one_member, &nb, 20000), "growth does not list payments once, on its new key");
    /* the membership has the old key as left at both (its own LEFT, or the hand-over held) */
    gone_logged_t ga = {&a, ia.hex}, gb = {&b, ia.hex};
    cr_assert(h_wait(left_logged, &gb, 20000), "growth never took the old key as left; see %s", b.log);
    cr_assert(h_wait(left_logged, &ga, 20000), "payments never took its old key as left; see %s", a.log);
    counts_cond_t cb2 = {&b, ""}, ca2 = {&a, ""};
    cr_expect(h_wait(counts_agree, &cb2, 5000), "growth: trib_members/status members differ: %s", cb2.last);
    cr_expect(h_wait(counts_agree, &ca2, 5000), "payments: trib_members/status members differ: %s", ca2.last);
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cn);
}

/* The old key's claims at n since it started, each kind: refused as a retired key's (entries
 * gossiped, probes, retries) and failed handshakes (a dial of the address with the old key). */
static void claims_log(h_node_t *n, const char *name)
{
    cr_log_info("%s: refused_retired %.0f, dropped retired_key %.0f, handshakes failed out %.0f", name,
                h_metric(n->url, "trib_peer_keys_total{event=\"refused_retired\"}"),
                h_metric(n->url, "trib_gossip_dropped_total{reason=\"retired_key\"}"),
                h_metric(n->url, "trib_gossip_dropped_total{reason=\"handshake_failed_out\"}"));
}

/* A peer restarted after a rotation holds the hand-over from its federation log and the old key's
 * member from its stored member list (left, or dead when the old key's left never reached it):
 * the old key is retired before the gossip loop's first round (gossip_start judges the held
 * hand-overs once the members are restored), so no retry, probe or push-pull of the old key goes
 * out from the restarted peer, and none of its claims reaches the others. Without that pass a
 * stored member is retried at the first tick: a claim of the rotated node's address by the key
 * that gave it up. */
Test(rotate, a_restarted_peer_takes_a_rotated_out_key_as_left_from_its_first_round)
{
    char da[256], db[256], dc[256], seed[160];
    identity_t ia, ib, ic;
    cert_t ca, cb, cc, cn;
    node_dir("a", da, sizeof da, &ia);
    node_dir("b", db, sizeof db, &ib);
    node_dir("c", dc, sizeof dc, &ic);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    issue("growth", ib.pk, 0, "b.cert", &cb);
    issue("listening", ic.pk, 0, "c.cert", &cc);
    h_node_t a, b, c;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "growth", db, "b.cert", seed);
    start(&c, "listening", dc, "c.cert", seed);
    member_cond_t mc = {&c, "payments", ia.hex, NULL, 3}, mb = {&b, "payments", ia.hex, NULL, 3};
    cr_assert(h_wait(one_member, &mc, 20000), "listening does not see payments (and three alive members)");
    cr_assert(h_wait(one_member, &mb, 20000), "growth does not see payments (and three alive members)");

    identity_t in;
    rotate_pending(&a, da, "1h", &in);
    issue("payments", in.pk, ca.serial, "next.cert", &cn);
    char certp[300], *out = NULL, *eout = NULL;
    snprintf(certp, sizeof certp, "%s/next.cert", work);
    int rc = h_trib(NULL, NULL, &out, &eout, "key", "rotate", "--data", da, "--node", a.url, "--cert", certp, NULL);
    cr_assert_eq(rc, 0, "key rotate --cert failed: %s", eout ? eout : "");
    free(out), free(eout);
    cr_assert(h_wait(handover_held, &b, 20000), "growth never held the hand-over");
    cr_assert(h_wait(handover_held, &c, 20000), "listening never held the hand-over");
    left_cond_t lb = {&b, ia.hex};
    cr_assert(h_wait(member_left, &lb, 10000), "growth does not take the old key as left");
    member_cond_t nb = {&b, "payments", in.hex, NULL, 3};
    cr_assert(h_wait(one_member, &nb, 20000), "growth does not list payments once, on its new key");

    /* growth restarts, with the same arguments (its seed still names payments' old key) */
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&b), 0, "growth did not restart; see %s", b.log);
    claims_cond_t base = {{&a, &c}, retired_claims(&a) + retired_claims(&c)};
    cr_assert(h_wait(handover_held, &b, 10000), "growth does not hold the hand-over after its restart");
    cr_expect(h_wait(one_member, &nb, 20000), "restarted growth does not list payments once, on its new key");
    /* over the restarted peer's first rounds and its FAST retries (a gone member each second at
     * most): no claim by the old key at it, none from it at the others */
    claims_cond_t at_b = {{&b, &b}, 0};
    cr_expect(!h_wait(claims_grew, &at_b, 5000), "the restarted peer refused %.0f claims of the old key",
              retired_claims(&b));
    cr_expect_eq(retired_claims(&b), 0, "the restarted peer counted claims of the old key");
    cr_expect(!h_wait(claims_grew, &base, 1000), "the others refused the old key's claims after growth's restart");
    claims_log(&a, "payments"), claims_log(&b, "growth"), claims_log(&c, "listening");
    identity_wipe(&in);
    cert_free(&ca), cert_free(&cb), cert_free(&cc), cert_free(&cn);
}

/* ---------------------------------------------------------------- a rotation under way: Retry-After */

typedef struct {
    const char *url, *body;
    long status;
    char reply[600];
    atomic_int done;
} rotate_call_t;

/* The rotation itself, as a client keeping the contract: a 409 busy (a hammer's call held the
 * rotation lock at that moment: it is taken before the body is read) is asked again after its
 * Retry-After, a few times. */
static void *rotate_call(void *arg)
{
    rotate_call_t *rc = arg;
    h_resp_t r;
    for (int tries = 0; tries < 5; tries++) {
        if (h_http("POST", rc->url, "application/json", rc->body, strlen(rc->body), &r) != 0)
            break;
        rc->status = r.status;
        snprintf(rc->reply, sizeof rc->reply, "%s", r.body ? r.body : "");
        int again = r.status == 409 && !strcmp(r.retry_after, "1");
        h_resp_free(&r);
        if (!again)
            break;
        sleep(1);
    }
    atomic_store(&rc->done, 1);
    return NULL;
}

/* Rotate calls made while one rotation runs (rot), each with an overlap out of range: 400 once it
 * gets the rotation (nothing changes), 409 busy while the other holds it. Counted; the first
 * answer not as the contract says is kept. Checked by the test's thread (Criterion asserts there). */
typedef struct {
    const char *url;
    rotate_call_t *rot;
    atomic_int busy, bad_request, started;
    pthread_mutex_t mu;
    char wrong[700];   /* "" or the first answer not as the contract says */
} hammer_t;

static void hammer_wrong(hammer_t *h, const char *fmt, long st, const char *code, const char *ra, const char *detail)
{
    pthread_mutex_lock(&h->mu);
    if (!h->wrong[0])
        snprintf(h->wrong, sizeof h->wrong, fmt, st, code, ra, detail);
    pthread_mutex_unlock(&h->mu);
}

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    static const char bad[] = "{\"overlap_s\": -1}";
    while (!atomic_load(&h->rot->done) && atomic_load(&h->busy) < 20) {   /* 20 answers show it: no flood */
        h_resp_t r;
        if (h_http("POST", h->url, "application/json", bad, strlen(bad), &r) != 0)
            break;
        atomic_store(&h->started, 1);
        json_t *j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "error")) ?: "";
        const char *detail = json_string_value(json_object_get(j, "detail")) ?: "";
        if (r.status == 409 && !strcmp(code, "busy")) {
            atomic_fetch_add(&h->busy, 1);
            if (strcmp(r.retry_after, "1") || !strstr(detail, "already under way") || !strstr(detail, "retry in 1 s"))
                hammer_wrong(h, "%ld %s, Retry-After '%s': %s", r.status, code, r.retry_after, detail);
        } else if (r.status == 400 && !strcmp(code, "bad_request")) {
            atomic_fetch_add(&h->bad_request, 1);
            if (r.retry_after[0])
                hammer_wrong(h, "%ld %s, Retry-After '%s': %s", r.status, code, r.retry_after, detail);
        } else
            hammer_wrong(h, "%ld %s, Retry-After '%s': %s", r.status, code, r.retry_after, detail);
        json_decref(j);
        h_resp_free(&r);
    }
    return NULL;
}

static int hammer_started(void *ctx) { return atomic_load(&((hammer_t *)ctx)->started); }

#define HAMMERS 3

/* A rotate call while another holds the node's rotation (its offers to the federation log, the
 * live switch: milliseconds to a few seconds) is 409 busy: it says a rotation is under way, with a
 * Retry-After (1 s: the header, and the detail's "retry in 1 s"), so a client knows when to ask
 * again rather than take the conflict as final; before, no Retry-After. Three clients call while a
 * rotation runs, with an overlap out of range (400 once they get the rotation: nothing changes);
 * the rotation itself completes. A rotation takes a few milliseconds here: up to 8 rotations until
 * calls meet one under way. */
Test(rotate, a_rotate_call_while_another_is_under_way_is_409_busy_with_retry_after)
{
    char da[256], url[128];
    identity_t ia;
    cert_t ca, cn;
    node_dir("a", da, sizeof da, &ia);
    issue("payments", ia.pk, 0, "a.cert", &ca);
    h_node_t a;
    start(&a, "payments", da, "a.cert", NULL);
    snprintf(url, sizeof url, "%s/v1/node/key/rotate", a.url);
    uint64_t prev = ca.serial;
    int busy = 0, bad_req = 0, rotations = 0;
    for (; rotations < 8 && !busy; rotations++) {
        identity_t in;
        rotate_pending(&a, da, "1h", &in);
        char certf[32];
        snprintf(certf, sizeof certf, "next-%d.cert", rotations);
        issue("payments", in.pk, prev, certf, &cn);
        prev = cn.serial;
        char b64[4096], body[4200];
        sodium_bin2base64(b64, sizeof b64, cn.bytes, cn.len, sodium_base64_VARIANT_ORIGINAL);
        snprintf(body, sizeof body, "{\"cert\": \"%s\"}", b64);
        rotate_call_t rc = {url, body, 0, "", 0};
        hammer_t h = {.url = url, .rot = &rc, .mu = PTHREAD_MUTEX_INITIALIZER};
        pthread_t th[HAMMERS], rt;
        for (int i = 0; i < HAMMERS; i++)
            cr_assert_eq(pthread_create(&th[i], NULL, hammer, &h), 0);
        h_wait(hammer_started, &h, 5000);   /* the calls are going when the rotation starts */
        cr_assert_eq(pthread_create(&rt, NULL, rotate_call, &rc), 0);
        pthread_join(rt, NULL);
        for (int i = 0; i < HAMMERS; i++)
            pthread_join(th[i], NULL);
        cr_expect_str_eq(h.wrong, "", "an answer to a call while a rotation ran: %s", h.wrong);
        busy += atomic_load(&h.busy);
        bad_req += atomic_load(&h.bad_request);
        cr_assert_eq(rc.status, 200, "the rotation itself: %ld %s (see %s)", rc.status, rc.reply, a.log);
        expect_node_id(&a, in.hex, "after the rotation");
        identity_wipe(&in);
        cert_free(&cn);
    }
    cr_log_info("%d rotation(s): %d calls met one under way, %d did not", rotations, busy, bad_req);
    cr_expect_gt(busy, 0, "no call met a rotation under way in %d rotations", rotations);
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cert_free(&ca);
}

/* ---------------------------------------------------------------- offline preparation */

/* `trib key rotate --data DIR --domain D --out FILE` prepares a hand-over for a node that is not
 * running (docs/operators.md §6). It wrote DIR/identity.next.key under a running agent: now it
 * takes the agent's lock (DATA/agent.lock) first and is refused while the agent holds it, naming
 * the agent and the online command, writing nothing; once the agent stopped it goes ahead. */
Test(rotate, offline_preparation_is_refused_while_the_data_dir_s_agent_runs)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char out[256], nextp[300], want[64], *e = NULL;
    snprintf(out, sizeof out, "%s/offline.rot", work);
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", n.dir);
    snprintf(want, sizeof want, "(pid %d,", (int)n.pid);
    int rc = h_trib(NULL, NULL, NULL, &e, "key", "rotate", "--data", n.dir, "--domain", "payments", "--out", out, NULL);
    cr_expect_eq(rc, 1, "%s", e);
    cr_expect(e && strstr(e, "in use by a running agent") && strstr(e, want) && strstr(e, "--node URL") &&
              strstr(e, "nothing was written"), "%s", e);
    free(e);
    e = NULL;
    struct stat sb;
    cr_expect(stat(nextp, &sb) != 0, "identity.next.key was written into the running node's data dir");
    cr_expect(stat(out, &sb) != 0, "the hand-over file was written");
    /* the agent still runs, unaware, and its lock file still names it */
    json_t *st = h_get_json(n.url, "/v1/status", NULL);
    cr_expect(st != NULL, "the agent stopped answering");
    json_decref(st);

    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    char *o = NULL;
    rc = h_trib(NULL, NULL, &o, &e, "key", "rotate", "--data", n.dir, "--domain", "payments", "--out", out, NULL);
    cr_expect_eq(rc, 0, "%s", e);
    cr_expect_eq(stat(nextp, &sb), 0, "no next key once the agent stopped");
    cr_expect_eq(stat(out, &sb), 0, "no hand-over file once the agent stopped");
    free(o);
    free(e);
    /* the agent starts again on the dir the offline command held and let go */
    cr_assert_eq(h_node_restart(&n), 0);
}
