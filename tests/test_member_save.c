/* tests/test_member_save.c - the gossip loop never waits on LMDB's write lock (or an fsync) to save
 * member changes (gossip/membersave.c), against real `trib agent` processes on loopback.
 *
 * Three nodes; this process holds node X's LMDB write lock (as test_http_busy does: the lock lives
 * in the data dir's lock.mdb and is shared between processes) while a fourth node joins, so X has a
 * member change to save and cannot save it. Meanwhile X answers probes: neither peer shows X other
 * than alive over several probe rounds of each, and X's /v1/status answers. Once the lock is
 * released the change reaches X's members table; a change made just before X stops reaches it at
 * shutdown. No test hook in the node, no sleep.
 * And the bound on a backlog kept while a save is held: membersave_compact keeps each member's
 * newest change. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/membersave.h"
#include "proto/tributary.pb-c.h"
#include "tests/harness.h"

/* test_federation's timings: failure detection in a second or two, without flapping on a loaded
 * 2-core machine. */
#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"
#define PROBES 12                /* each peer's probes while X is held: four rounds of its three members */
#define PROBE "trib_swim_events_total{event=\"probe\"}"
#define LONGEST "trib_member_save_longest_seconds"
#define SAVE_MS 1000             /* gossip.c: x hands its changes to the saver this often */

TestSuite(member_save, .fini = h_cleanup_all, .timeout = 180);

/* A change of member `who` (a removal when tag is 0), its bytes saying tag. */
static store_member_change_t change(uint8_t who, uint8_t tag)
{
    store_member_change_t c = {.member = NULL, .len = 0};
    memset(c.id, 0, sizeof c.id);
    c.id[0] = who;
    c.id[31] = (uint8_t)(who * 7);
    if (tag) {
        uint8_t *b = malloc(1);
        cr_assert_not_null(b);
        b[0] = tag;
        c.member = b;
        c.len = 1;
    }
    return c;
}

static void free_changes(store_member_change_t *ch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)ch[i].member);
}

Test(member_save, compact_keeps_each_members_newest_change_removals_included)
{
    /* a:1, b:1, a:2, c:1, b removed, a:3, c removed, d:1 */
    store_member_change_t ch[] = {change(1, 1), change(2, 1), change(1, 2), change(3, 1),
                                  change(2, 0), change(1, 3), change(3, 0), change(4, 1)};
    size_t n = membersave_compact(ch, sizeof ch / sizeof ch[0]);
    cr_assert_eq(n, 4);
    /* the newest of each, in the order they came: b removed, a:3, c removed, d:1 */
    const uint8_t who[] = {2, 1, 3, 4}, tag[] = {0, 3, 0, 1};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ch[i].id[0], who[i], "kept #%zu is member %d", i, ch[i].id[0]);
        cr_assert_eq(ch[i].member ? ch[i].member[0] : 0, tag[i], "member %d kept the wrong change", who[i]);
        cr_assert_eq(ch[i].len, tag[i] ? 1u : 0u);
    }
    free_changes(ch, n);
    cr_assert_eq(membersave_compact(ch, 0), 0);
    store_member_change_t one = change(9, 5);
    cr_assert_eq(membersave_compact(&one, 1), 1);
    cr_assert_eq(one.member[0], 5);
    free_changes(&one, 1);
}

Test(member_save, compact_of_random_backlogs_matches_the_last_change_of_each_member)
{
    srand(7);
    enum { N = 4000, IDS = 50 };
    static store_member_change_t ch[N];
    for (int round = 0; round < 20; round++) {
        int last[IDS];   /* the tag of each member's newest change; -1 none */
        for (int i = 0; i < IDS; i++)
            last[i] = -1;
        size_t n = 1 + (size_t)rand() % N;
        int ids = 1 + rand() % IDS;
        for (size_t i = 0; i < n; i++) {
            uint8_t who = (uint8_t)(rand() % ids), tag = (uint8_t)(rand() % 4);   /* 0: a removal */
            ch[i] = change(who, tag);
            last[who] = tag;
        }
        size_t kept = membersave_compact(ch, n), expect = 0;
        for (int i = 0; i < IDS; i++)
            expect += last[i] >= 0;
        cr_assert_eq(kept, expect, "round %d: %zu kept of %zu, %zu members changed", round, kept, n, expect);
        for (size_t i = 0; i < kept; i++) {
            uint8_t who = ch[i].id[0];
            cr_assert_eq(ch[i].member ? ch[i].member[0] : 0, last[who], "round %d: member %d", round, who);
            last[who] = -2;   /* kept once */
        }
        free_changes(ch, kept);
    }
}

/* The member of domain in n's view: its state into state ("" when not listed), its node id into id. */
static void member_of(const h_node_t *n, const char *domain, char state[32], char id[80])
{
    state[0] = '\0';
    if (id)
        id[0] = '\0';
    json_t *j = h_get_json(n->url, "/v1/members", NULL);
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(j, "members"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "domain")), domain) != 0)
            continue;
        snprintf(state, 32, "%s", json_string_value(json_object_get(m, "state")));
        if (id)
            snprintf(id, 80, "%s", json_string_value(json_object_get(m, "node_id")));
    }
    json_decref(j);
}

typedef struct {
    const h_node_t *n;
    const char *domain, *state;  /* NULL state: listed in any */
} sees_t;

static int sees(void *ctx)
{
    sees_t *s = ctx;
    char st[32];
    member_of(s->n, s->domain, st, NULL);
    return s->state ? !strcmp(st, s->state) : st[0] != '\0';
}

typedef struct {
    h_node_t **nodes;
    int n;
    long alive;
} all_t;

static int all_alive(void *ctx)
{
    all_t *a = ctx;
    for (int i = 0; i < a->n; i++) {
        json_t *j = h_get_json(a->nodes[i]->url, "/v1/status", NULL);
        long alive = (long)json_integer_value(json_object_get(json_object_get(j, "members"), "alive"));
        json_decref(j);
        if (alive != a->alive)
            return 0;
    }
    return 1;
}

static MDB_env *env_open(const char *dir, unsigned flags)
{
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
    int rc = mdb_env_open(env, dir, flags, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open(%s): %s", dir, mdb_strerror(rc));
    return env;
}

/* LMDB's write lock on n's store, held until mdb_txn_abort: the node's writes wait for it. */
static MDB_txn *writer_take(MDB_env *env)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {   /* the node grew the map since we opened it */
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    }
    cr_assert_eq(rc, 0, "mdb_txn_begin: %s", mdb_strerror(rc));
    return txn;
}

/* The state n's members table holds for node id_hex: a TRIB__MEMBER_STATE__*, or -1 when it holds
 * no record of it. */
static int stored_state(const h_node_t *n, const char *id_hex)
{
    uint8_t id[32];
    cr_assert_eq(strlen(id_hex), 64, "node id '%s'", id_hex);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(sscanf(id_hex + 2 * i, "%2hhx", &id[i]), 1);
    MDB_env *env = env_open(n->dir, MDB_RDONLY);
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    }
    cr_assert_eq(rc, 0, "mdb_txn_begin(read): %s", mdb_strerror(rc));
    MDB_dbi dbi;
    cr_assert_eq(mdb_dbi_open(txn, "members", 0, &dbi), 0);
    MDB_val k = {32, id}, v;
    int state = -1;
    if (mdb_get(txn, dbi, &k, &v) == 0) {
        Trib__Member *m = trib__member__unpack(NULL, v.mv_size, v.mv_data);
        cr_assert_not_null(m, "the stored member record of %.16s... does not decode", id_hex);
        state = (int)m->state;
        trib__member__free_unpacked(m, NULL);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return state;
}

typedef struct {
    const h_node_t *n;
    const char *id;
    int state;
} stored_t;

static int stored(void *ctx)
{
    stored_t *s = ctx;
    return stored_state(s->n, s->id) == s->state;
}

typedef struct {
    const h_node_t *n;
    const char *series;
    double min;
} metric_t;

static int metric_at_least(void *ctx)
{
    metric_t *m = ctx;
    return h_metric(m->n->url, m->series) >= m->min;
}

Test(member_save, a_node_whose_store_is_write_locked_keeps_answering_probes_and_saves_members_later)
{
    h_node_t x, b, c, d;
    cr_assert_eq(h_node_start(&x, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", x.peer, FAST, NULL), 0, "growth did not start");
    cr_assert_eq(h_node_start(&c, "listening", "--seed", x.peer, FAST, NULL), 0, "listening did not start");
    h_node_t *three[] = {&x, &b, &c};
    all_t a3 = {three, 3, 3};
    cr_assert(h_wait(all_alive, &a3, 20000), "three nodes did not all see three alive members");

    MDB_env *env = env_open(x.dir, 0);
    MDB_txn *held = writer_take(env);
    /* a fourth member, seeded at b: x learns it by gossip and has a change to save */
    cr_assert_eq(h_node_start(&d, "search", "--seed", b.peer, FAST, NULL), 0, "search did not start");
    sees_t xd = {&x, "search", NULL};
    cr_assert(h_wait(sees, &xd, 20000), "x never listed the fourth member");

    /* While held, for PROBES probes of each peer (a round covers each of its three members once): x
     * stays alive in both views and its status answers. */
    double p0[2] = {h_metric(b.url, PROBE), h_metric(c.url, PROBE)};
    h_node_t *peers[2] = {&b, &c};
    long t0 = h_now_ms(), deadline = t0 + 60000;
    char bad[200] = "";
    int rounds = 0, done = 0;
    while (!bad[0] && !done && h_now_ms() < deadline) {
        done = 1;
        for (int i = 0; i < 2 && !bad[0]; i++) {
            char st[32];
            member_of(peers[i], "payments", st, NULL);
            if (strcmp(st, "alive") != 0)
                snprintf(bad, sizeof bad, "%s shows x (payments) %s %ld ms into the hold", peers[i]->domain,
                         st[0] ? st : "unlisted", h_now_ms() - t0);
            double p = h_metric(peers[i]->url, PROBE);
            done &= p >= p0[i] + PROBES;
        }
        long status = 0;
        json_t *j = h_get_json(x.url, "/v1/status", &status);
        json_decref(j);
        if (!bad[0] && status != 200)
            snprintf(bad, sizeof bad, "x's /v1/status answered %ld %ld ms into the hold", status, h_now_ms() - t0);
        rounds++;
        struct timespec pace = {0, 20 * 1000000L};   /* checks 50 times a second, not flat out */
        nanosleep(&pace, NULL);
    }
    char dstate[32], did[80];
    member_of(&x, "search", dstate, did);
    long held_ms = h_now_ms() - t0;
    mdb_txn_abort(held);
    mdb_env_close(env);
    cr_log_info("x held %ld ms (%d checks): %s", held_ms, rounds, bad[0] ? bad : "alive in both views throughout");
    cr_assert(!bad[0], "%s", bad);
    cr_assert(done, "the peers did not make %d probes each within 60 s", PROBES);
    cr_assert_str_eq(dstate, "alive", "x's own view of the fourth member while held: %s", dstate);

    /* released: the change the saver held reaches the store */
    stored_t sd = {&x, did, TRIB__MEMBER_STATE__ALIVE};
    cr_assert(h_wait(stored, &sd, 20000), "x's members table never held the fourth member alive (holds state %d)",
              stored_state(&x, did));
    /* ... after a save that waited for the lock: x handed it over within SAVE_MS of learning the
     * member, and the saver held it until the release (the test held a save, not nothing) */
    metric_t lg = {&x, LONGEST, (double)(held_ms - SAVE_MS - 1000) / 1e3};
    cr_assert(h_wait(metric_at_least, &lg, 5000), "x's longest member save is %g s, the hold %ld ms",
              h_metric(x.url, LONGEST), held_ms);
    cr_assert_eq(h_metric(x.url, "trib_member_saves_total{result=\"failed\"}"), 0);

    /* a change just before x stops is saved at shutdown */
    cr_assert_eq(h_node_stop(&d, SIGTERM), 0, "search did not leave cleanly");
    sees_t xl = {&x, "search", "left"};
    cr_assert(h_wait(sees, &xl, 20000), "x never saw the fourth member leave");
    cr_assert_eq(h_node_stop(&x, SIGTERM), 0, "x did not stop cleanly");
    cr_assert_eq(stored_state(&x, did), TRIB__MEMBER_STATE__LEFT, "x stopped without saving the departure");
}
