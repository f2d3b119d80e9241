/* tests/test_replicate_verify.c - a large received job verified on several threads (verify_many).
 *
 * Owns: checking that splitting a job's verification across threads changes nothing: verify_many
 * flags exactly the failing entries and keeps the last failure's text, and repl_handle_entries on a
 * job mixing good entries, forged signatures, garbage, wrong keys, gaps, duplicates, a broken chain
 * and untrusted entries gives the same counts, accepted order, messages sent and stored logs with
 * 1, 2, 3 and 4 verify threads, and the counts its construction implies; two callers at once (one
 * gets the helpers, the other verifies alone) both verify every entry; a byte-identical copy of a
 * held entry skips the signature check, and nothing else does.
 * Must not: use the network, or leave its temp dirs behind. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gossip/entry.h"
#include "gossip/log.h"
#include "gossip/replicate.h"
#include "gossip/verifymany.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"

#define NALPHA 700               /* alice's chain of domain alpha */
#define NBETA 40                 /* bob's chain of domain beta */
#define BETA_GAP_FROM 30         /* beta entries past this arrive before beta 1 .. BETA_GAP_FROM - 1 */
#define FRAME_ENTRIES 500        /* entries per received frame (the job holds several) */

static identity_t alice, bob, mallory;

static void make_identity(identity_t *id, uint8_t seedbyte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seedbyte, sizeof seed);
    memset(id, 0, sizeof *id);
    cr_assert_eq(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
    identity_hex(id->pk, id->hex);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    make_identity(&alice, 1);
    make_identity(&bob, 2);
    make_identity(&mallory, 3);
    log_set_level(-1);      /* the refusals are counted; their logs are not under test */
}

static void teardown(void)
{
    verify_many_set_threads(0);
    verify_many_stop();
}

TestSuite(replicate_verify, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- entries */

typedef struct {
    ProtobufCBinaryData *e;
    size_t n, cap;
} list_t;

static void add(list_t *l, uint8_t *data, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->e = realloc(l->e, l->cap * sizeof *l->e);
        cr_assert_not_null(l->e);
    }
    l->e[l->n++] = (ProtobufCBinaryData){.len = len, .data = data};
}

static void add_copy(list_t *l, const ProtobufCBinaryData *b)
{
    uint8_t *d = malloc(b->len);
    cr_assert_not_null(d);
    memcpy(d, b->data, b->len);
    add(l, d, b->len);
}

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].data);
    free(l->e);
}

/* An entry for domain at seq, chained on prev (NULL at seq 1), signed by id. */
static ProtobufCBinaryData sign(const identity_t *id, const char *domain, uint64_t seq, const uint8_t *prev,
                                const char *name)
{
    ProtobufCBinaryData b;
    b.data = fx_manifest_entry(id, domain, name, name, seq, prev, &b.len);
    return b;
}

/* A chain of n entries of domain signed by id into out[0 .. n), hashes[i] the hash of entry i. */
static void chain(const identity_t *id, const char *domain, size_t n, ProtobufCBinaryData *out, uint8_t (*hashes)[32])
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%zu", i % 50);
        out[i] = sign(id, domain, i + 1, i ? hashes[i - 1] : NULL, name);
        entry_t v;
        char err[256];
        cr_assert_eq(entry_verify(out[i].data, out[i].len, &v, err, sizeof err), 0, "%s", err);
        memcpy(hashes[i], v.hash, 32);
        entry_free(&v);
    }
}

/* A copy of b whose signature's last byte is flipped: its signature does not verify. */
static void add_forged(list_t *l, const ProtobufCBinaryData *b)
{
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, b->len, b->data);
    cr_assert_not_null(se);
    se->signature.data[se->signature.len - 1] ^= 1;
    size_t len = trib__signed_entry__get_packed_size(se);
    uint8_t *d = malloc(len);
    cr_assert_not_null(d);
    trib__signed_entry__pack(se, d);
    trib__signed_entry__free_unpacked(se, NULL);
    add(l, d, len);
}

/* ---------------------------------------------------------------- verify_many itself */

Test(replicate_verify, verify_many_flags_exactly_the_failures_on_any_thread_count)
{
    enum { N = 1000 };
    static ProtobufCBinaryData good[N];
    static uint8_t hashes[N][32];
    chain(&alice, "alpha", N, good, hashes);
    list_t in = {0};
    for (size_t i = 0; i < N; i++) {
        if (i % 13 == 5)
            add_forged(&in, &good[i]);
        else if (i == N - 3) {      /* the last failure: another reason than the forgeries' */
            uint8_t *g = malloc(3);
            memcpy(g, "\xff\xff\xff", 3);
            add(&in, g, 3);
        } else
            add_copy(&in, &good[i]);
    }
    for (int round = 0; round < 2; round++)      /* the second after the helpers were stopped */
    for (int k = 1; k <= VERIFY_THREADS_MAX; k++) {
        if (k == 1)
            verify_many_stop();
        verify_many_set_threads(k);
        entry_t out[N];
        entry_t *es[N];
        size_t n = 0;
        char err[256] = "";
        const ProtobufCBinaryData *items[N];
        for (size_t i = 0; i < N; i++) {
            items[i] = &in.e[i];
            es[i] = &out[i];
        }
        cr_assert_eq(verify_many(VERIFY_DECODE, items, es, N, err, sizeof err), 1, "%d threads: only the garbage", k);
        cr_assert_str_eq(err, "entry: not a SignedEntry", "%d threads: garbage is refused when decoded: %s", k, err);
        for (size_t i = 0; i < N; i++) {
            cr_assert_eq(out[i].entry == NULL, i == N - 3, "%d threads: entry %zu", k, i);
            if (out[i].entry)
                es[n++] = &out[i];
        }
        err[0] = '\0';
        size_t bad = verify_many(VERIFY_SIGNATURE, NULL, es, n, err, sizeof err);
        size_t want = 0;
        for (size_t i = 0; i < N; i++) {
            int fails = i % 13 == 5 || i == N - 3;
            want += (size_t)(i % 13 == 5);
            cr_assert_eq(out[i].entry == NULL, fails, "%d threads: entry %zu %s", k, i,
                         fails ? "verified but is forged" : "refused but is good");
            if (!fails) {
                cr_assert_eq(out[i].entry->seq, i + 1);
                cr_assert_arr_eq(out[i].hash, hashes[i], 32);
            }
            entry_free(&out[i]);
        }
        cr_assert_eq(bad, want, "%d threads: %zu failures, expected %zu", k, bad, want);
        cr_assert_str_eq(err, "signature does not verify", "%d threads: the last failure's text: %s", k, err);
    }
    for (size_t i = 0; i < N; i++)
        free(good[i].data);
    list_free(&in);
}

/* ---------------------------------------------------------------- a job through replicate */

typedef struct {
    crypto_generichash_state accepted, sent;   /* the order of accepted entries, of messages sent */
    size_t naccepted, nsent;
    int second;                                /* run_jobs' second job */
} trace_t;

static void io_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    trace_t *t = ctx;
    t->nsent++;
    crypto_generichash_update(&t->sent, (const uint8_t *)addr, strlen(addr) + 1);
    crypto_generichash_update(&t->sent, (const uint8_t *)&type, sizeof type);
    crypto_generichash_update(&t->sent, body, len);
}

static void io_accepted(void *ctx, const uint8_t *entry, size_t len)
{
    trace_t *t = ctx;
    t->naccepted++;
    crypto_generichash_update(&t->accepted, entry, len);
}

static const char *distrusted;   /* a domain not trusted in run_jobs' second job (NULL: none) */

static int io_entry_ok(void *ctx, const Trib__CatalogEntry *e, const uint8_t signer[32], const char *from)
{
    trace_t *t = ctx;
    (void)from;
    (void)signer;
    if (t->second && distrusted && strcmp(e->domain, distrusted) == 0)
        return 0;                               /* e.g. its key revoked since */
    return strcmp(e->domain, "gamma") != 0;     /* gamma's entries are not trusted */
}

typedef struct {
    repl_stats_t stats;
    size_t naccepted, nsent, nforks;
    uint8_t accepted[32], sent[32], stored[32];
    uint64_t heads[3];
} outcome_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static const char *const domains[3] = {"alpha", "beta", "gamma"};

/* Hands r the entries of in as one job: frames of FRAME_ENTRIES entries, from two peers. */
static void handle(replicate_t *r, const list_t *in)
{
    size_t nfr = (in->n + FRAME_ENTRIES - 1) / FRAME_ENTRIES;
    uint8_t **bodies = calloc(nfr, sizeof *bodies);
    size_t *lens = calloc(nfr, sizeof *lens);
    const char **froms = calloc(nfr, sizeof *froms);
    cr_assert(bodies && lens && froms);
    for (size_t f = 0; f < nfr; f++) {
        Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
        msg.entries = &in->e[f * FRAME_ENTRIES];
        msg.n_entries = in->n - f * FRAME_ENTRIES < FRAME_ENTRIES ? in->n - f * FRAME_ENTRIES : FRAME_ENTRIES;
        lens[f] = trib__catalog_entries__get_packed_size(&msg);
        bodies[f] = malloc(lens[f]);
        cr_assert_not_null(bodies[f]);
        trib__catalog_entries__pack(&msg, bodies[f]);
        froms[f] = f % 2 ? "tcp://peer-b" : "tcp://peer-a";
    }
    cr_assert_eq(repl_handle_entries(r, froms, (const uint8_t *const *)bodies, lens, nfr), 0);
    for (size_t f = 0; f < nfr; f++)
        free(bodies[f]);
    free(bodies);
    free(lens);
    free(froms);
}

/* Handles the job in on a fresh store with k verify threads, after the job before (when not NULL),
 * whose counts, accepted entries and messages are not in o (its stored logs are). */
static void run_jobs(const list_t *before, const list_t *in, int k, outcome_t *o)
{
    char dir[64], err[256] = "";
    snprintf(dir, sizeof dir, "/tmp/trib-replverify-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    store_t *st = store_open(dir, NULL, err, sizeof err);
    cr_assert_not_null(st, "store_open: %s", err);
    trace_t t = {0};
    crypto_generichash_init(&t.accepted, NULL, 0, 32);
    crypto_generichash_init(&t.sent, NULL, 0, 32);
    repl_io_t io = {.ctx = &t, .send = io_send, .accepted = io_accepted, .entry_ok = io_entry_ok};
    replicate_t *r = repl_new(st, NULL, 64u << 10, &io);
    cr_assert_not_null(r);
    repl_stats_t base = {0};
    size_t base_forks = 0;
    if (before) {
        handle(r, before);
        base = *repl_stats(r);
        base_forks = repl_forks(r, NULL, 0);
        t = (trace_t){.second = 1};
        crypto_generichash_init(&t.accepted, NULL, 0, 32);
        crypto_generichash_init(&t.sent, NULL, 0, 32);
    }
    verify_many_set_threads(k);
    handle(r, in);
    verify_many_set_threads(0);

    memset(o, 0, sizeof *o);
    o->stats = *repl_stats(r);
    uint64_t *now = (uint64_t *)&o->stats;         /* the struct is uint64_t counters only */
    const uint64_t *was = (const uint64_t *)&base;
    for (size_t i = 0; i < sizeof base / sizeof *was; i++)
        now[i] -= was[i];
    o->stats.verify_us = o->stats.store_us = 0;    /* times differ run to run */
    o->naccepted = t.naccepted;
    o->nsent = t.nsent;
    o->nforks = repl_forks(r, NULL, 0) - base_forks;
    crypto_generichash_final(&t.accepted, o->accepted, 32);
    crypto_generichash_final(&t.sent, o->sent, 32);
    crypto_generichash_state s;                    /* every stored log, entry by entry */
    crypto_generichash_init(&s, NULL, 0, 32);
    for (size_t d = 0; d < 3; d++) {
        store_head_t h;
        memset(&h, 0, sizeof h);
        int rc = store_catalog_head(st, domains[d], &h);
        cr_assert(rc == 0 || rc == STORE_NOTFOUND);
        o->heads[d] = rc == 0 ? h.seq : 0;
        for (uint64_t q = 1; q <= o->heads[d]; q++) {
            uint8_t *b = NULL;
            size_t len = 0;
            cr_assert_eq(store_catalog_get(st, domains[d], q, &b, &len), 0);
            crypto_generichash_update(&s, b, len);
            free(b);
        }
    }
    crypto_generichash_final(&s, o->stored, 32);

    repl_destroy(&r);
    store_close(&st);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void run_job(const list_t *in, int k, outcome_t *o) { run_jobs(NULL, in, k, o); }

/* The outcome with k verify threads (many) is the outcome with one, in every count and byte. */
static void same_outcome(const outcome_t *one, const outcome_t *many, int k)
{
    cr_assert_arr_eq(&many->stats, &one->stats, sizeof one->stats, "%d threads: other counts", k);
    cr_assert_eq(many->naccepted, one->naccepted, "%d threads", k);
    cr_assert_arr_eq(many->accepted, one->accepted, 32, "%d threads: accepted in another order", k);
    cr_assert_eq(many->nsent, one->nsent, "%d threads", k);
    cr_assert_arr_eq(many->sent, one->sent, 32, "%d threads: other messages sent", k);
    cr_assert_arr_eq(many->heads, one->heads, sizeof one->heads, "%d threads: other heads", k);
    cr_assert_arr_eq(many->stored, one->stored, 32, "%d threads: other logs stored", k);
    cr_assert_eq(many->nforks, one->nforks, "%d threads", k);
}

static void free_chains(ProtobufCBinaryData *a, ProtobufCBinaryData *b)
{
    for (size_t i = 0; i < NALPHA; i++)
        free(a[i].data);
    for (size_t i = 0; i < NBETA; i++)
        free(b[i].data);
}

Test(replicate_verify, a_large_job_has_the_same_outcome_on_one_and_on_several_threads)
{
    static ProtobufCBinaryData a[NALPHA], b[NBETA];
    static uint8_t ha[NALPHA][32], hb[NBETA][32];
    chain(&alice, "alpha", NALPHA, a, ha);
    chain(&bob, "beta", NBETA, b, hb);
    list_t in = {0};
    size_t want_forged = 0, want_wrong = 0, want_dup = 0, want_untrusted = 0, want_chain = 0;
    size_t nb = BETA_GAP_FROM;                     /* beta: the entries past the gap first */
    for (size_t i = 0; i < NALPHA; i++) {
        if (i % 9 == 4) {                          /* a forged copy first, then the real one */
            add_forged(&in, &a[i]);
            want_forged++;
        }
        if (i % 17 == 8) {                         /* mallory claims alpha's next seq */
            char name[16];
            snprintf(name, sizeof name, "m%zu", i);
            ProtobufCBinaryData m = sign(&mallory, "alpha", i + 1, i ? ha[i - 1] : NULL, name);
            add(&in, m.data, m.len);
            want_wrong++;
        }
        if (i % 23 == 11) {                        /* alice's own fork: does not chain */
            static const uint8_t zero[32];
            ProtobufCBinaryData m = sign(&alice, "alpha", i + 1, zero, "fork");
            add(&in, m.data, m.len);
            want_chain++;
        }
        add_copy(&in, &a[i]);
        if (i % 31 == 30) {                        /* a replay of an entry held */
            add_copy(&in, &a[i - 10]);
            want_dup++;
        }
        if (i % 19 == 0 && nb < NBETA)             /* beta past its head: gaps */
            add_copy(&in, &b[nb++]);
        if (i % 29 == 3) {
            char name[16];
            snprintf(name, sizeof name, "g%zu", i);
            ProtobufCBinaryData g = sign(&bob, "gamma", 1, NULL, name);
            add(&in, g.data, g.len);
            want_untrusted++;
        }
    }
    size_t want_gap = nb - BETA_GAP_FROM;
    for (size_t i = 0; i < BETA_GAP_FROM - 1; i++) /* beta 1 .. BETA_GAP_FROM - 1: its gap stays open */
        add_copy(&in, &b[i]);
    cr_assert_geq(in.n, 2 * VERIFY_SPLIT_MIN, "the job is large enough to split");

    outcome_t one, many;
    run_job(&in, 1, &one);
    cr_assert_eq(one.stats.entries[CAT_ACCEPTED], NALPHA + BETA_GAP_FROM - 1);
    cr_assert_eq(one.stats.entries[CAT_BAD_SIGNATURE], want_forged);
    cr_assert_eq(one.stats.entries[CAT_WRONG_KEY], want_wrong);
    cr_assert_eq(one.stats.entries[CAT_BAD_CHAIN], want_chain);
    cr_assert_eq(one.stats.entries[CAT_DUPLICATE], want_dup);
    cr_assert_eq(one.stats.entries[CAT_GAP], want_gap);
    cr_assert_eq(one.stats.entries[CAT_ERROR], 0);
    cr_assert_eq(one.stats.entries_untrusted, want_untrusted);
    cr_assert_eq(one.stats.batches, 1, "one write transaction for the job");
    cr_assert_eq(one.naccepted, NALPHA + BETA_GAP_FROM - 1);
    cr_assert_eq(one.heads[0], NALPHA);
    cr_assert_eq(one.heads[1], BETA_GAP_FROM - 1);
    cr_assert_eq(one.heads[2], 0, "no untrusted entry stored");
    cr_assert_gt(one.nsent, 0, "the gaps were asked for");
    cr_assert_eq(one.nforks, want_chain);
    for (int k = 2; k <= VERIFY_THREADS_MAX; k++) {
        run_job(&in, k, &many);
        same_outcome(&one, &many, k);
    }
    free_chains(a, b);
    list_free(&in);
}

/* ---------------------------------------------------------------- copies of held entries */

/* A copy of b with an unknown field (127, varint 1) appended: its signature (over the body) still
 * verifies, but its bytes are not the ones held. */
static void add_padded(list_t *l, const ProtobufCBinaryData *b)
{
    uint8_t *d = malloc(b->len + 3);
    cr_assert_not_null(d);
    memcpy(d, b->data, b->len);
    memcpy(d + b->len, "\xf8\x07\x01", 3);
    add(l, d, b->len + 3);
}

/* Epidemic push hands a node most entries several times. A byte-identical copy of an entry the
 * store holds (verified when stored) is a duplicate dropped without a second signature check
 * (copies_unverified counts them); anything else claiming a held place (a forged signature,
 * another key, the owner's own fork, the held bytes with a field appended) is verified and refused
 * as before, on any thread count. A held copy of a domain no longer trusted is still refused as
 * untrusted, not counted a duplicate. */
Test(replicate_verify, copies_of_held_entries_skip_the_signature_check_and_nothing_else_does)
{
    static ProtobufCBinaryData a[NALPHA], b[NBETA];
    static uint8_t ha[NALPHA][32], hb[NBETA][32];
    chain(&alice, "alpha", NALPHA, a, ha);
    chain(&bob, "beta", NBETA, b, hb);
    list_t held = {0}, in = {0};
    for (size_t i = 0; i < NALPHA; i++)
        add_copy(&held, &a[i]);
    size_t want_copies = 0, want_forged = 0, want_wrong = 0, want_forks = 0;
    for (size_t i = 0; i < NALPHA; i++) {
        if (i % 2 == 0) {
            add_copy(&in, &a[i]);
            want_copies++;
        }
        if (i % 9 == 4) {                          /* a held entry's bytes, its signature altered */
            add_forged(&in, &a[i]);
            want_forged++;
        }
        if (i % 17 == 8) {                         /* mallory claims a held seq of alpha */
            ProtobufCBinaryData m = sign(&mallory, "alpha", i + 1, i ? ha[i - 1] : NULL, "m");
            add(&in, m.data, m.len);
            want_wrong++;
        }
        if (i % 23 == 11) {                        /* alice signs another entry at a held seq */
            ProtobufCBinaryData m = sign(&alice, "alpha", i + 1, i ? ha[i - 1] : NULL, "fork");
            add(&in, m.data, m.len);
            want_forks++;
        }
        if (i % 29 == 13 && i % 23 != 11) {      /* the held bytes and more: verified, a fork noted */
            add_padded(&in, &a[i]);
            want_forks++;
        }
        if (i < NBETA)
            add_copy(&in, &b[i]);                  /* new to the node, verified and accepted */
    }
    cr_assert_geq(in.n, 2 * VERIFY_SPLIT_MIN, "the job is large enough to split");
    outcome_t one, many;
    run_jobs(&held, &in, 1, &one);
    cr_assert_eq(one.stats.copies_unverified, want_copies);
    cr_assert_eq(one.stats.entries[CAT_DUPLICATE], want_copies + want_forks, "a fork of a held seq is a duplicate");
    cr_assert_eq(one.stats.entries[CAT_BAD_SIGNATURE], want_forged);
    cr_assert_eq(one.stats.entries[CAT_WRONG_KEY], want_wrong);
    cr_assert_eq(one.stats.entries[CAT_ACCEPTED], NBETA);
    cr_assert_eq(one.stats.entries_untrusted, 0);
    cr_assert_eq(one.nforks, want_forks, "each fork is noted: it was verified");
    cr_assert_eq(one.naccepted, NBETA);
    cr_assert_eq(one.heads[0], NALPHA);
    cr_assert_eq(one.heads[1], NBETA);
    for (int k = 2; k <= VERIFY_THREADS_MAX; k++) {
        run_jobs(&held, &in, k, &many);
        same_outcome(&one, &many, k);
    }

    distrusted = "alpha";                          /* alpha's key, say, revoked after it was stored */
    run_jobs(&held, &in, 2, &many);
    distrusted = NULL;
    cr_assert_eq(many.stats.copies_unverified, 0);
    cr_assert_eq(many.stats.entries_untrusted, want_copies + want_wrong + want_forks,
                 "held copies, and verified claims of alpha, refused as untrusted");
    cr_assert_eq(many.stats.entries[CAT_DUPLICATE], 0);
    cr_assert_eq(many.stats.entries[CAT_BAD_SIGNATURE], want_forged);
    cr_assert_eq(many.stats.entries[CAT_ACCEPTED], NBETA);
    free_chains(a, b);
    list_free(&held);
    list_free(&in);
}

/* ---------------------------------------------------------------- two callers at once */

typedef struct {
    const ProtobufCBinaryData *const *items;
    size_t n, bad;
    entry_t *out;
} caller_t;

static void *call_verify(void *arg)
{
    caller_t *c = arg;
    char err[256] = "";
    entry_t **es = calloc(c->n, sizeof *es);
    cr_assert_not_null(es);
    for (size_t i = 0; i < c->n; i++)
        es[i] = &c->out[i];
    for (int round = 0; round < 5; round++) {
        cr_assert_eq(verify_many(VERIFY_DECODE, c->items, es, c->n, err, sizeof err), 0, "%s", err);
        c->bad = verify_many(VERIFY_SIGNATURE, NULL, es, c->n, err, sizeof err);
        if (round < 4)
            for (size_t i = 0; i < c->n; i++)
                entry_free(&c->out[i]);
    }
    free(es);
    return NULL;
}

Test(replicate_verify, two_callers_at_once_both_verify_every_entry)
{
    enum { N = 600 };
    static ProtobufCBinaryData good[N];
    static uint8_t hashes[N][32];
    static entry_t out[2][N];
    chain(&alice, "alpha", N, good, hashes);
    list_t in = {0};
    for (size_t i = 0; i < N; i++) {
        if (i % 7 == 3)
            add_forged(&in, &good[i]);
        else
            add_copy(&in, &good[i]);
    }
    const ProtobufCBinaryData *items[N];
    for (size_t i = 0; i < N; i++)
        items[i] = &in.e[i];
    verify_many_set_threads(2);
    caller_t c[2] = {{.items = items, .n = N, .out = out[0]}, {.items = items, .n = N, .out = out[1]}};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, call_verify, &c[1]), 0);
    call_verify(&c[0]);
    pthread_join(t, NULL);
    for (int w = 0; w < 2; w++) {
        cr_assert_eq(c[w].bad, (N + 3) / 7, "caller %d: %zu failures", w, c[w].bad);
        for (size_t i = 0; i < N; i++) {
            cr_assert_eq(out[w][i].entry == NULL, i % 7 == 3, "caller %d: entry %zu", w, i);
            if (out[w][i].entry)
                cr_assert_arr_eq(out[w][i].hash, hashes[i], 32);
            entry_free(&out[w][i]);
        }
    }
    for (size_t i = 0; i < N; i++)
        free(good[i].data);
    list_free(&in);
}
