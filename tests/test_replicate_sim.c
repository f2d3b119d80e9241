/* tests/test_replicate_sim.c - catalog replication at scale: N real replicas in one process over sim_net.
 *
 * Owns: a harness that gives every simulated node its own LMDB store (under /dev/shm when it exists,
 * so fsyncs are free), an Ed25519 identity, a catalog_t and a replicate_t, wired to tests/sim_net.c
 * as gossip/gossip.c wires them to the transport in a large federation, but without a clock: a
 * publish is pushed to GOSSIP_NODES random alive peers, an entry accepted from a peer is forwarded
 * once to GOSSIP_NODES random alive peers, and every ANTI_ENTROPY_MS a node runs repl_sync with one
 * random alive peer. Clocked clusters (g_clocked) are wired as a federation of up to 257 members is:
 * the simulated time as the clock (pulls expire), answers final, a publish pushed to all. Membership is an oracle (the
 * peers a settled SWIM view would list as alive: joined, up, same side of a partition); SWIM itself is
 * covered by test_swim.c. Tests: convergence of N=100 under 10% loss, N=200 without loss, partition
 * then heal by anti-entropy alone, a late joiner, a byzantine forger, and (clocked) the pulls' bounds.
 * The N = 1,000 run (issue 9 item 8) is a benchmark that runs only when REPLSIM_N is set.
 * Must not: use sockets, the real clock (except to print the scale run's wall time) or real
 * randomness (runs are reproducible from the seed), or leave its temp dirs behind. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gossip/catalog.h"
#include "gossip/entry.h"
#include "gossip/log.h"
#include "gossip/replicate.h"
#include "proto/tributary.pb-c.h"
#include "tests/sim_net.h"

#define GOSSIP_NODES 3          /* swim_config_default's gossip_nodes: push / forward fan-out */
#define ANTI_ENTROPY_MS 2000    /* node/config.c's anti_entropy_ms default */
#define MAX_FRAME (64u << 10)   /* CatalogEntries body bound (gossip.c derives it from max_msg) */
#define STEP_MS 10              /* convergence is checked this often (simulated) */
#define BYZ_EVERY_MS 1000       /* the byzantine node's attack period */
#define MSG_DIGEST TRIB__MSG_TYPE__MSG_CATALOG_DIGEST
#define MSG_ENTRIES TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES

/* ---------------------------------------------------------------- cluster */

typedef struct cluster cluster_t;

/* How one published entry spread: when published, how many nodes hold it, when 99 % and all did. */
typedef struct {
    uint64_t at, t99, tall;
    uint32_t count;
} spread_t;

typedef struct {
    cluster_t *c;
    size_t idx;
    char addr[24], domain[32], dir[160];
    identity_t id;
    store_t *st;
    catalog_t *cat;
    replicate_t *repl;
    int member;                 /* joined: runs, and others see it alive */
    int byzantine;              /* forges instead of replicating */
    int group;                  /* partition side (mirrors sim_net_set_group) */
    uint64_t next_ae;           /* next anti-entropy round (byzantine: next attack) */
    uint64_t *pubs;             /* scheduled publish times, ascending */
    size_t npubs, nextpub;
    uint64_t held;              /* entries held: own publishes + accepted from peers */
    spread_t *spread;           /* publishers: per own entry (seq - 1), how it spread */
    uint64_t forged_accepted;   /* accepted entries not signed by their domain's publisher */
    uint64_t rounds;            /* anti-entropy rounds started */
    uint64_t answered;          /* bytes charged to the peers' answer budgets (io.answered) */
} node_t;

struct cluster {
    sim_net_t *net;
    node_t *nodes;
    size_t n, *cand;
    uint64_t rng;
    size_t max_frame;
    char root[96];
    identity_t mallory;         /* the byzantine node's forging key */
    size_t spread_members;      /* nodes an entry must reach (0: spread times not kept) */
    uint64_t forged_sent, forged_delivered;   /* entries in the byzantine node's frames */
    int clocked;                /* g_clocked when it was made */
};

static cluster_t *g_cluster;    /* so .fini cleans up after a failed assertion too */
static int g_lean;              /* stores without the search index (the 1,000-node run) */
/* Nodes wired as gossip.c wires them in a federation of up to 257 members: a clock (io.now, the
 * simulated time: pulls expire, domains being pushed count as active), answers marked final, and a
 * publish pushed to every alive member, marked final (repl_push_all). Without it a node has no
 * clock (a lost pull is retried at its next round) and pushes to GOSSIP_NODES peers, forwarded. */
static int g_clocked;

static uint64_t rnd(cluster_t *c)                 /* splitmix64: deterministic from the seed */
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void make_identity(identity_t *id, size_t idx, uint8_t tag)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(id, 0, sizeof *id);
    memset(seed, tag, sizeof seed);
    memcpy(seed, &idx, sizeof idx);
    cr_assert_eq(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
    identity_hex(id->pk, id->hex);
}

static uint64_t now(const cluster_t *c) { return sim_net_now(c->net); }

/* Up to k random peers of node i that a settled membership view lists as alive. */
static size_t pick_peers(cluster_t *c, size_t i, size_t k, const char **addrs)
{
    size_t m = 0;
    for (size_t j = 0; j < c->n; j++)
        if (j != i && c->nodes[j].member && sim_net_is_up(c->net, j) && c->nodes[j].group == c->nodes[i].group)
            c->cand[m++] = j;
    size_t got = 0;
    for (; got < k && got < m; got++) {               /* partial Fisher-Yates, like swim_random_alive */
        size_t j = got + (size_t)(rnd(c) % (m - got));
        size_t t = c->cand[j];
        c->cand[j] = c->cand[got];
        c->cand[got] = t;
        addrs[got] = c->nodes[t].addr;
    }
    return got;
}

/* gossip.c fanout_peers: GOSSIP_NODES random alive peers, for pushes and forwarding. */
static size_t io_peers(void *ctx, const char **addrs, size_t max)
{
    node_t *nd = ctx;
    return pick_peers(nd->c, nd->idx, max < GOSSIP_NODES ? max : GOSSIP_NODES, addrs);
}

/* gossip.c push_entry: a new entry goes to g_origin_push random alive peers (GOSSIP_NODES unless the
 * scale run is told otherwise: gossip.c itself pushes to up to 256). */
#define ORIGIN_PUSH_MAX 256
static size_t g_origin_push = GOSSIP_NODES;

static void push_entry(node_t *nd, const uint8_t *entry, size_t len)
{
    const char *addrs[ORIGIN_PUSH_MAX];
    if (nd->c->clocked) {
        size_t k = pick_peers(nd->c, nd->idx, ORIGIN_PUSH_MAX, addrs);
        repl_push_all(nd->repl, &entry, &len, 1, addrs, k);
        return;
    }
    size_t k = pick_peers(nd->c, nd->idx, g_origin_push, addrs);
    repl_push(nd->repl, entry, len, addrs, k);
}

/* gossip.c repl_now: monotonic milliseconds (never 0). */
static uint64_t io_now(void *ctx)
{
    node_t *nd = ctx;
    return sim_net_now(nd->c->net) + 1;
}

static void io_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    node_t *nd = ctx;
    cluster_t *c = nd->c;
    char *end;
    unsigned long to = strtoul(addr + 1, &end, 10);
    cr_assert(addr[0] == 'n' && *end == '\0' && to < c->n, "node %zu sends to unknown address '%s'", nd->idx, addr);
    sim_net_send(c->net, nd->idx, (size_t)to, type, body, len);
}

/* gossip.c's answered hook (gossip/answers.c charges the asker's budget): counted. */
static void io_answered(void *ctx, const char *addr, size_t bytes)
{
    (void)addr;
    ((node_t *)ctx)->answered += bytes;
}

/* The publisher of domain "team<i>" (node i, when it publishes): a lookup, not a scan (N = 1,000). */
static const identity_t *publisher_of(cluster_t *c, const char *domain)
{
    char *end;
    if (strncmp(domain, "team", 4) != 0)
        return NULL;
    unsigned long i = strtoul(domain + 4, &end, 10);
    if (*end || i >= c->n || !c->nodes[i].npubs || strcmp(c->nodes[i].domain, domain) != 0)
        return NULL;
    return &c->nodes[i].id;
}

/* One more node holds entry seq of domain ("team<i>"): 99 % and all-members times. */
static void spread_count(cluster_t *c, const char *domain, uint64_t seq)
{
    size_t i = strtoul(domain + 4, NULL, 10);
    if (i >= c->n || !c->nodes[i].spread || seq == 0 || seq > c->nodes[i].npubs)
        return;
    spread_t *s = &c->nodes[i].spread[seq - 1];
    s->count++;
    size_t members = c->spread_members;
    if (!members)
        return;
    if (!s->t99 && s->count * 100 >= members * 99)
        s->t99 = sim_net_now(c->net);
    if (!s->tall && s->count >= members)
        s->tall = sim_net_now(c->net);
}

/* gossip.c entry_accepted (replicate forwards by itself). Checks the entry is the real publisher's. */
static void io_accepted(void *ctx, const uint8_t *entry, size_t len)
{
    node_t *nd = ctx;
    nd->held++;
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, entry);
    cr_assert_not_null(se, "node %zu accepted an undecodable entry", nd->idx);
    Trib__CatalogEntry *ce = trib__catalog_entry__unpack(NULL, se->body.len, se->body.data);
    cr_assert_not_null(ce);
    const identity_t *pub = publisher_of(nd->c, ce->domain);
    if (!pub || se->signer.len != ID_PK_LEN || memcmp(se->signer.data, pub->pk, ID_PK_LEN))
        nd->forged_accepted++;
    else
        spread_count(nd->c, ce->domain, ce->seq);
    trib__catalog_entry__free_unpacked(ce, NULL);
    trib__signed_entry__free_unpacked(se, NULL);
}

static void publish_one(node_t *nd)
{
    char name[24], err[256] = "";
    snprintf(name, sizeof name, "p%zu", nd->nextpub + 1);
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = nd->domain;
    m.name = name;
    m.version = "1.0.0";
    m.status = "active";
    m.title = name;
    uint64_t seq = 0;
    uint8_t *out = NULL;
    size_t len = 0;
    cr_assert_eq(catalog_publish(nd->cat, &m, NULL, &seq, &out, &len, err, sizeof err), 0, "node %zu publish: %s",
                 nd->idx, err);
    cr_assert_eq(seq, nd->nextpub + 1);
    if (nd->spread)
        nd->spread[nd->nextpub] = (spread_t){.at = now(nd->c), .count = 1};
    nd->nextpub++;
    nd->held++;
    push_entry(nd, out, len);
    free(out);
}

/* ---------------------------------------------------------------- the byzantine node */

/* Two forgeries of owner's entry seq (chained on the real head when seq is the publisher's next, so
 * only the key stops them):
 * *wrong_key signed by mallory as itself, *bad_sig claiming the real signer with mallory's signature. */
static void forge_pair(cluster_t *c, const node_t *owner, uint64_t seq, ProtobufCBinaryData *wrong_key,
                       ProtobufCBinaryData *bad_sig)
{
    store_head_t h;
    int has = store_catalog_head(owner->st, owner->domain, &h) == 0;
    uint8_t prev[STORE_HASH_LEN];
    memset(prev, 0xab, sizeof prev);
    if (has && h.seq == seq - 1)
        memcpy(prev, h.hash, sizeof prev);
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = (char *)owner->domain;
    m.name = "evil";
    m.version = "6.6.6";
    m.status = "active";
    m.title = "forged";
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    ce.domain = (char *)owner->domain;
    ce.seq = seq;
    if (seq > 1) {
        ce.prev_hash.data = prev;
        ce.prev_hash.len = sizeof prev;
    }
    ce.time_ms = 1;
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    ce.manifest = &m;
    cr_assert_eq(entry_sign(&c->mallory, &ce, &wrong_key->data, &wrong_key->len), 0);

    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, wrong_key->len, wrong_key->data);
    cr_assert_not_null(se);
    Trib__SignedEntry lie = TRIB__SIGNED_ENTRY__INIT;
    lie.body = se->body;
    lie.signature = se->signature;
    lie.signer.data = (uint8_t *)owner->id.pk;
    lie.signer.len = ID_PK_LEN;
    bad_sig->len = trib__signed_entry__get_packed_size(&lie);
    bad_sig->data = malloc(bad_sig->len);
    cr_assert_not_null(bad_sig->data);
    trib__signed_entry__pack(&lie, bad_sig->data);
    trib__signed_entry__free_unpacked(se, NULL);
}

/* Sends `to` one frame with both forgeries of every publisher's domain, at the seq the peer's digest
 * says it lacks (peer != NULL) or else at the publisher's next seq. */
static void byz_send(cluster_t *c, node_t *byz, size_t to, const Trib__CatalogDigest *peer)
{
    ProtobufCBinaryData items[64];
    size_t n = 0;
    for (size_t i = 0; i < c->n && n + 2 <= 64; i++) {
        const node_t *o = &c->nodes[i];
        if (!o->npubs)
            continue;
        uint64_t seq = 0;
        if (peer) {                                   /* the next entry the peer wants */
            for (size_t k = 0; k < peer->n_heads; k++)
                if (peer->heads[k]->domain && !strcmp(peer->heads[k]->domain, o->domain))
                    seq = peer->heads[k]->seq;
        } else {                                      /* race the publisher's next entry */
            store_head_t h;
            if (store_catalog_head(o->st, o->domain, &h) == 0)
                seq = h.seq;
        }
        if (seq == 0)
            continue;                                 /* never race a domain's binding (seq 1: TOFU) */
        forge_pair(c, o, seq + 1, &items[n], &items[n + 1]);
        n += 2;
    }
    if (!n)
        return;
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.entries = items;
    msg.n_entries = n;
    size_t len = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    trib__catalog_entries__pack(&msg, buf);
    sim_net_send(c->net, byz->idx, to, MSG_ENTRIES, buf, len);
    c->forged_sent += n;
    free(buf);
    for (size_t i = 0; i < n; i++)
        free(items[i].data);
}

/* ---------------------------------------------------------------- sim_net handlers */

static void schedule(cluster_t *c, node_t *nd)
{
    uint64_t at = nd->next_ae;
    if (nd->nextpub < nd->npubs && nd->pubs[nd->nextpub] < at)
        at = nd->pubs[nd->nextpub];
    sim_net_set_wake(c->net, nd->idx, at);
}

static void on_wake(void *ctx, size_t i)
{
    cluster_t *c = ctx;
    node_t *nd = &c->nodes[i];
    uint64_t t = now(c);
    if (!nd->member)
        return;
    while (nd->nextpub < nd->npubs && nd->pubs[nd->nextpub] <= t)
        publish_one(nd);
    if (t >= nd->next_ae) {
        if (nd->byzantine) {                          /* forgeries to everyone */
            for (size_t j = 0; j < c->n; j++)
                if (j != i && c->nodes[j].member)
                    byz_send(c, nd, j, NULL);
            nd->next_ae = t + BYZ_EVERY_MS;
        } else {                                      /* gossip.c loop: anti-entropy round */
            const char *peer;
            if (pick_peers(c, i, 1, &peer) == 1) {
                repl_sync(nd->repl, peer);
                nd->rounds++;
            }
            nd->next_ae = t + ANTI_ENTROPY_MS;
        }
    }
    schedule(c, nd);
}

static void on_deliver(void *ctx, size_t to, size_t from, int type, const uint8_t *body, size_t len)
{
    cluster_t *c = ctx;
    node_t *nd = &c->nodes[to];
    if (!nd->member)
        return;
    if (nd->byzantine) {                              /* answers a digest with forgeries it "lacks" */
        if (type == MSG_DIGEST) {
            Trib__CatalogDigest *d = trib__catalog_digest__unpack(NULL, len, body);
            cr_assert_not_null(d);
            byz_send(c, nd, from, d);
            trib__catalog_digest__free_unpacked(d, NULL);
        }
        return;
    }
    if (c->nodes[from].byzantine && type == MSG_ENTRIES) {
        Trib__CatalogEntries *e = trib__catalog_entries__unpack(NULL, len, body);
        cr_assert_not_null(e);
        c->forged_delivered += e->n_entries;
        trib__catalog_entries__free_unpacked(e, NULL);
    }
    int rc = repl_handle(nd->repl, c->nodes[from].addr, type, body, len);
    cr_assert(rc == 0 || c->nodes[from].byzantine, "node %zu refused a frame (type %d) from honest node %zu", to,
              type, from);
}

/* ---------------------------------------------------------------- lifecycle */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cluster_free(cluster_t **cp)
{
    cluster_t *c = *cp;
    if (!c)
        return;
    for (size_t i = 0; c->nodes && i < c->n; i++) {
        node_t *nd = &c->nodes[i];
        repl_destroy(&nd->repl);
        catalog_destroy(&nd->cat);
        store_close(&nd->st);
        free(nd->pubs);
        free(nd->spread);
        identity_wipe(&nd->id);
    }
    sim_net_destroy(&c->net);
    if (c->root[0])
        nftw(c->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c->nodes);
    free(c->cand);
    free(c);
    *cp = NULL;
}

/* n nodes, all members and up, none publishing yet; each starts its anti-entropy timer at a random
 * phase (real nodes do not start in the same millisecond). */
static cluster_t *cluster_new(size_t n, uint64_t seed, double loss, size_t max_frame)
{
    char err[256] = "";
    cluster_t *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    g_cluster = c;
    c->n = n;
    c->rng = seed;
    c->max_frame = max_frame;
    c->clocked = g_clocked;
    c->nodes = calloc(n, sizeof *c->nodes);
    c->cand = calloc(n, sizeof *c->cand);
    cr_assert(c->nodes && c->cand);
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(c->root, sizeof c->root, "%s/trib-replsim-XXXXXX", base);
    cr_assert_not_null(mkdtemp(c->root), "mkdtemp %s", c->root);
    sim_handlers_t h = {.ctx = c, .deliver = on_deliver, .wake = on_wake};
    c->net = sim_net_new(n, seed, &h);
    cr_assert_not_null(c->net);
    sim_net_set_loss(c->net, loss);
    make_identity(&c->mallory, 0, 0xee);
    store_opts_t so = {.map_size = 1u << 20, .no_search = g_lean};
    for (size_t i = 0; i < n; i++) {
        node_t *nd = &c->nodes[i];
        nd->c = c;
        nd->idx = i;
        nd->member = 1;
        snprintf(nd->addr, sizeof nd->addr, "n%zu", i);
        snprintf(nd->domain, sizeof nd->domain, "team%zu", i);
        snprintf(nd->dir, sizeof nd->dir, "%s/%s", c->root, nd->addr);
        make_identity(&nd->id, i, 0x5a);
        nd->st = store_open(nd->dir, &so, err, sizeof err);
        cr_assert_not_null(nd->st, "store_open: %s", err);
        nd->cat = catalog_new(nd->st, &nd->id, nd->domain);
        cr_assert_not_null(nd->cat);
        repl_io_t io = {.ctx = nd, .send = io_send, .peers = io_peers, .accepted = io_accepted,
                        .answered = io_answered};
        if (c->clocked) {
            io.now = io_now;
            io.answers_final = 1;
        }
        nd->repl = repl_new(nd->st, nd->cat, c->max_frame, &io);
        cr_assert_not_null(nd->repl);
        nd->next_ae = 1 + rnd(c) % ANTI_ENTROPY_MS;
        schedule(c, nd);
    }
    return c;
}

/* Node i publishes `count` entries at random times in [from, to) (simulated ms). */
static void plan_publishes(cluster_t *c, size_t i, size_t count, uint64_t from, uint64_t to)
{
    node_t *nd = &c->nodes[i];
    nd->pubs = calloc(count, sizeof *nd->pubs);
    nd->spread = calloc(count, sizeof *nd->spread);
    cr_assert(nd->pubs && nd->spread);
    for (size_t k = 0; k < count; k++)
        nd->pubs[k] = from + rnd(c) % (to - from);
    for (size_t a = 1; a < count; a++)                /* insertion sort: a handful of times */
        for (size_t b = a; b > 0 && nd->pubs[b - 1] > nd->pubs[b]; b--) {
            uint64_t t = nd->pubs[b];
            nd->pubs[b] = nd->pubs[b - 1];
            nd->pubs[b - 1] = t;
        }
    nd->npubs = count;
    nd->nextpub = 0;
    schedule(c, nd);
}

static void set_group(cluster_t *c, size_t i, int g)
{
    c->nodes[i].group = g;
    sim_net_set_group(c->net, i, g);
}

/* A node that is absent (not a member, down) until join() is called: its first anti-entropy round is
 * one period after it starts, as in gossip.c's loop. */
static void set_absent(cluster_t *c, size_t i)
{
    c->nodes[i].member = 0;
    sim_net_set_up(c->net, i, 0);
}

static void join(cluster_t *c, size_t i)
{
    node_t *nd = &c->nodes[i];
    nd->member = 1;
    sim_net_set_up(c->net, i, 1);
    nd->next_ae = now(c) + ANTI_ENTROPY_MS;
    schedule(c, nd);
}

/* ---------------------------------------------------------------- convergence */

/* Entries held by the honest members of group g (-1: all) that should hold them: the sum of the
 * publish plans of publishers in that group. */
static uint64_t planned(const cluster_t *c, int g)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < c->n; i++)
        if (g < 0 || c->nodes[i].group == g)
            sum += c->nodes[i].npubs;
    return sum;
}

static int converged(const cluster_t *c, int by_group)
{
    uint64_t all = planned(c, -1);
    for (size_t i = 0; i < c->n; i++) {
        const node_t *nd = &c->nodes[i];
        if (!nd->member || nd->byzantine)
            continue;
        if (nd->held != (by_group ? planned(c, nd->group) : all))
            return 0;
    }
    return 1;
}

/* Runs until converged (checked every STEP_MS) or the deadline; returns the time it converged. */
static uint64_t run_until_converged(cluster_t *c, uint64_t deadline, int by_group)
{
    for (uint64_t t = now(c);; t += STEP_MS) {
        sim_net_run(c->net, t);
        if (converged(c, by_group))
            return now(c);
        if (t >= deadline)
            return UINT64_MAX;
    }
}

/* Names the first honest member that has not converged, for a failing assertion. */
static void describe_laggard(const cluster_t *c, int by_group, char *out, size_t outlen)
{
    snprintf(out, outlen, "none");
    uint64_t all = planned(c, -1);
    for (size_t i = 0; i < c->n; i++) {
        const node_t *nd = &c->nodes[i];
        uint64_t want = by_group ? planned(c, nd->group) : all;
        if (nd->member && !nd->byzantine && nd->held != want) {
            snprintf(out, outlen, "node %zu holds %" PRIu64 " of %" PRIu64 " entries", i, nd->held, want);
            return;
        }
    }
}

/* The store itself agrees: in every honest member, each publisher's domain of the same group (or every
 * publisher, when !by_group) has the publisher's head seq, hash and key, and no other group's domain. */
static void check_heads(cluster_t *c, int by_group)
{
    for (size_t p = 0; p < c->n; p++) {
        const node_t *pub = &c->nodes[p];
        if (!pub->npubs)
            continue;
        store_head_t want;
        cr_assert_eq(store_catalog_head(pub->st, pub->domain, &want), 0);
        cr_assert_eq(want.seq, pub->npubs, "publisher %zu head seq %" PRIu64 ", planned %zu", p, want.seq, pub->npubs);
        for (size_t i = 0; i < c->n; i++) {
            const node_t *nd = &c->nodes[i];
            if (!nd->member || nd->byzantine)
                continue;
            store_head_t h;
            int rc = store_catalog_head(nd->st, pub->domain, &h);
            if (by_group && nd->group != pub->group) {
                cr_assert_eq(rc, STORE_NOTFOUND, "node %zu holds %s from across the partition", i, pub->domain);
                continue;
            }
            cr_assert_eq(rc, 0, "node %zu lacks domain %s", i, pub->domain);
            cr_assert_eq(h.seq, want.seq, "node %zu: %s head %" PRIu64 ", publisher %" PRIu64, i, pub->domain, h.seq,
                         want.seq);
            cr_assert_arr_eq(h.hash, want.hash, STORE_HASH_LEN, "node %zu: %s head hash differs", i, pub->domain);
            cr_assert_arr_eq(h.key, pub->id.pk, ID_PK_LEN, "node %zu: %s bound to a key not its publisher's", i,
                             pub->domain);
        }
    }
}

typedef struct {
    uint64_t entries[CAT_RESULT_COUNT], entries_sent, digests_sent, pushes, rounds, forged_accepted, malformed;
} totals_t;

static totals_t totals(const cluster_t *c)
{
    totals_t t = {0};
    for (size_t i = 0; i < c->n; i++) {
        const node_t *nd = &c->nodes[i];
        if (nd->byzantine)
            continue;
        const repl_stats_t *s = repl_stats(nd->repl);
        for (int r = 0; r < CAT_RESULT_COUNT; r++)
            t.entries[r] += s->entries[r];
        t.entries_sent += s->entries_sent;
        t.digests_sent += s->digests_sent;
        t.malformed += s->frames_malformed;
        t.pushes += repl_stats(nd->repl)->entries_pushed;
        t.rounds += nd->rounds;
        t.forged_accepted += nd->forged_accepted;
    }
    return t;
}

/* What happened between a and b (totals at two times): messages, and entries by outcome. */
static void report(const char *what, const totals_t *a, const sim_net_stats_t *na, const cluster_t *c, uint64_t start,
                   uint64_t done)
{
    totals_t b = totals(c);
    const sim_net_stats_t *nb = sim_net_stats(c->net);
    fprintf(stderr,
            "%s: converged %" PRIu64 " ms after the last change (t=%" PRIu64 " ms). Messages: %" PRIu64
            " sent (%" PRIu64 " lost, %" PRIu64 " blocked), %" PRIu64 " KiB. Entries sent: %" PRIu64
            " pushed, %" PRIu64 " in anti-entropy answers. Digests: %" PRIu64 " (%" PRIu64
            " rounds started, the rest replies and gap requests). Received: accepted %" PRIu64 ", duplicate %" PRIu64
            ", gap %" PRIu64 ", bad_signature %" PRIu64 ", wrong_key %" PRIu64 ", bad_chain %" PRIu64 "\n",
            what, done - start, done, nb->sent - na->sent, nb->lost - na->lost, nb->blocked - na->blocked,
            (nb->bytes - na->bytes) >> 10, b.pushes - a->pushes, (b.entries_sent - b.pushes) - (a->entries_sent - a->pushes),
            b.digests_sent - a->digests_sent, b.rounds - a->rounds, b.entries[CAT_ACCEPTED] - a->entries[CAT_ACCEPTED],
            b.entries[CAT_DUPLICATE] - a->entries[CAT_DUPLICATE], b.entries[CAT_GAP] - a->entries[CAT_GAP],
            b.entries[CAT_BAD_SIGNATURE] - a->entries[CAT_BAD_SIGNATURE],
            b.entries[CAT_WRONG_KEY] - a->entries[CAT_WRONG_KEY], b.entries[CAT_BAD_CHAIN] - a->entries[CAT_BAD_CHAIN]);
}

static uint64_t last_publish(const cluster_t *c)
{
    uint64_t last = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->nodes[i].npubs && c->nodes[i].pubs[c->nodes[i].npubs - 1] > last)
            last = c->nodes[i].pubs[c->nodes[i].npubs - 1];
    return last;
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    log_set_level(LOG_ERROR); /* the forger's refusals are counted and asserted; their log lines are noise */
}

static void teardown(void) { cluster_free(&g_cluster); }

TestSuite(replicate_sim, .init = setup, .fini = teardown, .timeout = 120);

/* ---------------------------------------------------------------- tests */

/* The convergence bound after the last publish. Push alone (fan-out 3, forward once) misses about 6%
 * of nodes per entry (s = e^{-3(1-s)}), more under loss; a later entry of the same domain exposes the
 * gap, which is re-requested at once. What remains (mostly each domain's last entry) is found by
 * anti-entropy: every period a node starts a round and is picked by one peer on average, and with
 * 90% of peers holding the entry and 10% loss per message a round fails with p < 0.35, so k periods
 * leave ~0.35^k of the ~100 stragglers: 10 periods leave < 0.003. */
#define SETTLE_PERIODS 10

Test(replicate_sim, hundred_nodes_ten_percent_loss_converge)
{
    enum { N = 100, DOMAINS = 10, PER = 20 };
    cluster_t *c = cluster_new(N, 0x1001, 0.10, MAX_FRAME);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * (N / DOMAINS), PER, 1, 20000);
    uint64_t last = last_publish(c);
    uint64_t bound = last + SETTLE_PERIODS * ANTI_ENTROPY_MS;
    uint64_t t = run_until_converged(c, bound, 0);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "N=%d with 10%% loss not converged %d ms after the last publish: %s", N,
                  SETTLE_PERIODS * ANTI_ENTROPY_MS, lag);
    totals_t t0 = {0};
    sim_net_stats_t n0 = {0};
    report("N=100, 10% loss", &t0, &n0, c, last, t);
    check_heads(c, 0);
    totals_t tt = totals(c);
    cr_assert_eq(tt.entries[CAT_ACCEPTED], (uint64_t)(N - 1) * DOMAINS * PER, "each entry accepted once per node");
    cr_assert_eq(tt.entries[CAT_BAD_SIGNATURE] + tt.entries[CAT_WRONG_KEY] + tt.entries[CAT_BAD_CHAIN] +
                     tt.entries[CAT_ERROR] + tt.malformed,
                 0, "honest traffic refused");
    cr_assert_gt(sim_net_stats(c->net)->lost, 0, "the loss was injected");
}

Test(replicate_sim, two_hundred_nodes_converge)
{
    enum { N = 200, DOMAINS = 10, PER = 20 };
    cluster_t *c = cluster_new(N, 0x2002, 0.0, MAX_FRAME);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * (N / DOMAINS), PER, 1, 20000);
    uint64_t last = last_publish(c);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "N=%d not converged: %s", N, lag);
    totals_t t0 = {0};
    sim_net_stats_t n0 = {0};
    report("N=200, no loss", &t0, &n0, c, last, t);
    check_heads(c, 0);
    cr_assert_eq(totals(c).entries[CAT_ACCEPTED], (uint64_t)(N - 1) * DOMAINS * PER);
}

/* What healing a partition cost: entries the nodes needed (accepted), entries pushed and entries
 * carried in anti-entropy answers (rounds and gap re-requests) meanwhile, and how long it took. */
typedef struct {
    uint64_t needed, pushed, answered, gaps, heal_ms, kib;
} heal_t;

/* n nodes in two halves; five publishers per side publish per entries each during the first 10 s and
 * each side converges on its own (no entry crosses); after a quiet second the partition heals. No entry
 * is published any more, so only anti-entropy can carry a side's catalog across (and forwarding on
 * accept spreads what crossed). Returns the cost of the heal; frees the cluster. */
static heal_t partition_then_heal(size_t n, size_t per, uint64_t seed, double loss)
{
    cluster_t *c = cluster_new(n, seed, loss, MAX_FRAME);
    for (size_t i = n / 2; i < n; i++)
        set_group(c, i, 1);
    for (size_t d = 0; d < 5; d++) {
        plan_publishes(c, d * (n / 10), per, 1, 10000);            /* side 0 */
        plan_publishes(c, n / 2 + d * (n / 10), per, 1, 10000);    /* side 1 */
    }
    uint64_t last = last_publish(c);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 1);
    char lag[128], what[96];
    describe_laggard(c, 1, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "a side of the partition did not converge on its own: %s", lag);
    totals_t t0 = {0};
    sim_net_stats_t n0 = {0};
    snprintf(what, sizeof what, "partition N=%zu, %zu entries a side, each side", n, 5 * per);
    report(what, &t0, &n0, c, last, t);
    check_heads(c, 1);

    uint64_t heal = now(c) + 1000;
    sim_net_run(c->net, heal);
    totals_t t1 = totals(c);
    sim_net_stats_t n1 = *sim_net_stats(c->net);
    for (size_t i = 0; i < n; i++)
        set_group(c, i, 0);
    t = run_until_converged(c, heal + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "not converged %d ms after the partition healed: %s",
                  SETTLE_PERIODS * ANTI_ENTROPY_MS, lag);
    snprintf(what, sizeof what, "partition N=%zu, %zu entries a side, healed", n, 5 * per);
    report(what, &t1, &n1, c, heal, t);
    check_heads(c, 0);
    totals_t t2 = totals(c);
    cr_assert_eq(t2.entries[CAT_BAD_CHAIN] + t2.entries[CAT_WRONG_KEY] + t2.entries[CAT_BAD_SIGNATURE], 0);
    heal_t h = {
        .needed = t2.entries[CAT_ACCEPTED] - t1.entries[CAT_ACCEPTED],
        .pushed = t2.pushes - t1.pushes,
        .answered = (t2.entries_sent - t2.pushes) - (t1.entries_sent - t1.pushes),
        .gaps = t2.entries[CAT_GAP] - t1.entries[CAT_GAP],
        .heal_ms = t - heal,
        .kib = (sim_net_stats(c->net)->bytes - n1.bytes) >> 10,
    };
    cr_assert_eq(h.needed, (uint64_t)n * 5 * per, "each node accepted the other side's entries once");
    cluster_free(&g_cluster);
    return h;
}

Test(replicate_sim, partition_converges_per_side_then_heals_by_anti_entropy)
{
    heal_t h = partition_then_heal(100, 10, 0x3003, 0.10);
    cr_assert_gt(h.pushed, 0, "entries that crossed are forwarded on accept");
    cr_assert_gt(h.answered, 0, "entries crossed in anti-entropy answers");
}

/* Regression: healing a partition once cost anti-entropy traffic growing with the square of the
 * backlog: entries accepted from an answer were forwarded one by one to peers picked afresh per entry,
 * so peers got seq s+1 without s (CAT_GAP), and every gap frame asked for the whole backlog again with
 * no suppression. Now a frame's accepted entries travel together and a gap asks only for the gapped
 * domains, once per head (gossip/replicate.c). Sending each missing entry a bounded number of times
 * needs about 1 answered entry per needed entry (plus the fixed fan-out of forwards); the bound allows 3. */
Test(replicate_sim, partition_heal_traffic_is_linear_in_the_backlog)
{
    heal_t small = partition_then_heal(40, 4, 0x6006, 0.0);
    heal_t big = partition_then_heal(40, 20, 0x6006, 0.0);
    double rs = (double)small.answered / (double)small.needed, rb = (double)big.answered / (double)big.needed;
    fprintf(stderr,
            "heal amplification (no loss, N=40): backlog 20 a side: %.1f entries in anti-entropy answers per "
            "entry needed (%" PRIu64 " gaps); backlog 100 a side: %.1f (%" PRIu64 " gaps, %" PRIu64 " KiB)\n",
            rs, small.gaps, rb, big.gaps, big.kib);
    cr_assert_leq(big.answered, 3 * big.needed,
                  "healing a partition sent %" PRIu64 " entries in anti-entropy answers for %" PRIu64
                  " needed (%.1f per entry; %.1f with a 5x smaller backlog): the heal is no longer linear",
                  big.answered, big.needed, rb, rs);
}

/* A node absent while everything was published joins and catches up through anti-entropy alone. Small
 * frames (2 KiB: about ten entries) make one answer's 16-frame budget smaller than the backlog, so the
 * catch-up also shows "the rest follows in the next round". */
Test(replicate_sim, late_node_catches_up_by_anti_entropy)
{
    enum { N = 100, DOMAINS = 10, PER = 20, LATE = N - 1 };
    cluster_t *c = cluster_new(N, 0x4004, 0.10, 2048);
    set_absent(c, LATE);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * 9, PER, 1, 10000);
    uint64_t last = last_publish(c);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    cr_assert_neq(t, UINT64_MAX, "the members did not converge before the late node joined");
    cr_assert_eq(c->nodes[LATE].held, 0);

    totals_t before = totals(c);
    sim_net_stats_t nb = *sim_net_stats(c->net);
    uint64_t joined = now(c) + 1000;
    sim_net_run(c->net, joined);
    join(c, LATE);
    /* Its first round is one period after start, and others pick it before that (1/99 each per period).
     * Each answer carries up to 16 frames, so 200 entries need about two rounds. */
    t = run_until_converged(c, joined + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "the late node did not catch up: %s", lag);
    totals_t after = totals(c);
    const sim_net_stats_t *na = sim_net_stats(c->net);
    fprintf(stderr,
            "late node: caught up %" PRIu64 " entries %" PRIu64 " ms after joining; %" PRIu64
            " messages meanwhile (%" PRIu64 " KiB); it forwarded %" PRIu64 " pushes of old entries, "
            "which cost the others %" PRIu64 " duplicate verifications\n",
            c->nodes[LATE].held, t - joined, na->sent - nb.sent, (na->bytes - nb.bytes) >> 10,
            repl_stats(c->nodes[LATE].repl)->entries_pushed, after.entries[CAT_DUPLICATE] - before.entries[CAT_DUPLICATE]);
    check_heads(c, 0);
    cr_assert_eq(repl_stats(c->nodes[LATE].repl)->entries[CAT_ACCEPTED], (uint64_t)DOMAINS * PER);
}

/* A digest is answered by what it lacks wherever each head stands in it: heads in reverse order, a
 * domain listed twice and tens of thousands of unknown domains (the lookup is by domain, not by
 * position, and does not cost the loop a scan per domain held). */
Test(replicate_sim, digest_in_any_order_gets_exactly_what_it_lacks)
{
    enum { N = 20, DOMAINS = 10, PER = 5, JUNK = 60000, FULL = 3 };
    cluster_t *c = cluster_new(N, 0x5005, 0.0, MAX_FRAME);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * (N / DOMAINS), PER, 1, 5000);
    uint64_t t = run_until_converged(c, last_publish(c) + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    cr_assert_neq(t, UINT64_MAX, "not converged");

    /* Junk first, then the real domains backwards, domain FULL (held to its head) listed twice. */
    const char *full = c->nodes[FULL * (N / DOMAINS)].domain;
    size_t n = 0, cap = JUNK + DOMAINS + 1;
    Trib__DomainHead *heads = calloc(cap, sizeof *heads), **ptrs = calloc(cap, sizeof *ptrs);
    char (*names)[32] = calloc(cap, sizeof *names);
    cr_assert(heads && ptrs && names);
    for (size_t k = 0; k < JUNK; k++)
        snprintf(names[n++], sizeof names[0], "zz%zu", k);
    for (size_t d = DOMAINS; d-- > 0;)
        snprintf(names[n++], sizeof names[0], "%s", c->nodes[d * (N / DOMAINS)].domain);
    snprintf(names[n++], sizeof names[0], "%s", full);
    for (size_t k = 0; k < n; k++) {
        trib__domain_head__init(&heads[k]);
        heads[k].domain = names[k];
        heads[k].seq = strcmp(names[k], full) ? 0 : PER;
        ptrs[k] = &heads[k];
    }
    Trib__CatalogDigest msg = TRIB__CATALOG_DIGEST__INIT;
    msg.heads = ptrs;
    msg.n_heads = n;
    msg.reply = 1;                                    /* no digest back: only the entries count */
    size_t len = trib__catalog_digest__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    trib__catalog_digest__pack(&msg, buf);

    node_t *nd = &c->nodes[N - 1];
    uint64_t sent = repl_stats(nd->repl)->entries_sent;
    cr_assert_eq(repl_handle(nd->repl, c->nodes[0].addr, MSG_DIGEST, buf, len), 0);
    cr_assert_eq(repl_stats(nd->repl)->entries_sent - sent, (uint64_t)(DOMAINS - 1) * PER,
                 "every domain but the one held in full");
    free(buf);
    free(heads);
    free(ptrs);
    free(names);
}

typedef struct {
    uint8_t buf[512];
    size_t len;
    int type, sent;
} captured_t;

static void capture_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    captured_t *cp = ctx;
    (void)addr;
    cr_assert_leq(len, sizeof cp->buf);
    memcpy(cp->buf, body, len);
    cp->len = len, cp->type = type, cp->sent++;
}

/* A node asking a peer about its own domain (a start before publishing: repl_ask) gets that
 * domain's entries it lacks and the peer's digest, not every domain it lacks: a joiner with an
 * empty store asked so while its first round's answer was streaming in, and received a 100,000-
 * entry catalog twice. The peer also learns nothing of its own domain from such a question. */
Test(replicate_sim, an_own_domain_ask_brings_only_that_domain)
{
    enum { N = 20, DOMAINS = 10, PER = 5 };
    cluster_t *c = cluster_new(N, 0x0a5c, 0.0, MAX_FRAME);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * (N / DOMAINS), PER, 1, 5000);
    uint64_t t = run_until_converged(c, last_publish(c) + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    cr_assert_neq(t, UINT64_MAX, "not converged");

    /* node 0 restarted on an empty store (a lost disk): it asks about its own domain, team0 */
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/fresh", c->root);
    store_opts_t so = {.map_size = 1u << 20, .no_search = 1};
    store_t *st = store_open(dir, &so, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    catalog_t *cat = catalog_new(st, &c->nodes[0].id, c->nodes[0].domain);
    captured_t cp = {0};
    repl_io_t io = {.ctx = &cp, .send = capture_send};
    replicate_t *fresh = repl_new(st, cat, MAX_FRAME, &io);
    cr_assert(cat && fresh);
    repl_set_own(fresh, c->nodes[0].domain);
    repl_ask(fresh, c->nodes[N - 1].addr);
    cr_assert_eq(cp.sent, 1);
    cr_assert_eq(cp.type, MSG_DIGEST);

    node_t *nd = &c->nodes[N - 1];
    repl_set_own(nd->repl, nd->domain);   /* the simulation's nodes do not check their own domain */
    uint64_t sent = repl_stats(nd->repl)->entries_sent, ph, oh;
    size_t heard = repl_own_heard(nd->repl, &ph, &oh);
    cr_assert_eq(repl_handle(nd->repl, c->nodes[0].addr, MSG_DIGEST, cp.buf, cp.len), 0);
    cr_expect_eq(repl_stats(nd->repl)->entries_sent - sent, (uint64_t)PER, "team0's %d entries, nothing else (%llu)",
                 PER, (unsigned long long)(repl_stats(nd->repl)->entries_sent - sent));
    cr_expect_eq(repl_own_heard(nd->repl, &ph, &oh), heard, "a question about team0 told %s of its own domain",
                 nd->domain);
    repl_destroy(&fresh);
    catalog_destroy(&cat);
    store_close(&st);
}

/* A node asking about its own domain hears where its peer holds it even while that peer pulls
 * from it (the peer sent it its digest, asking for all it lacks, and that answer is outstanding):
 * the answer to such a question is the asked domains' heads alone, never held back for the pull.
 * (Before: the peer answered with its whole digest unless a pull was in progress, and then with
 * nothing: in a two-node federation a restarted node did not hear of its own domain for PULL_MS
 * after one lost message.) */
Test(replicate_sim, an_own_domain_ask_is_answered_while_a_pull_is_in_progress)
{
    enum { A = 0, B = 1, PER = 3 };
    g_clocked = 1;
    cluster_t *c = cluster_new(2, 0x0a5d, 0.0, MAX_FRAME);
    g_clocked = 0;
    plan_publishes(c, A, PER, 1, 1000);
    plan_publishes(c, B, PER, 1, 1000);
    cr_assert_neq(run_until_converged(c, 30000, 0), UINT64_MAX, "not converged");
    node_t *a = &c->nodes[A], *b = &c->nodes[B];
    repl_set_own(a->repl, a->domain);

    /* A opens a round; B answers with its digest (lost) and holds a pull with A */
    uint8_t hash[16] = {0}, buf[64];
    Trib__CatalogSummary sum = TRIB__CATALOG_SUMMARY__INIT;
    sum.hash.data = hash;
    sum.hash.len = sizeof hash;
    sum.domains = 2;
    size_t len = trib__catalog_summary__pack(&sum, buf);
    sim_net_block(c->net, B, A, 1);
    uint64_t digests = repl_stats(b->repl)->digests_sent;
    cr_assert_eq(repl_handle(b->repl, a->addr, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, buf, len), 0);
    cr_assert_eq(repl_stats(b->repl)->digests_sent, digests + 1, "B answered the round");
    sim_net_run(c->net, now(c) + 50);
    sim_net_block(c->net, B, A, 0);

    uint64_t ph, oh;
    size_t heard = repl_own_heard(a->repl, &ph, &oh);
    repl_ask(a->repl, b->addr);
    sim_net_run(c->net, now(c) + 100);
    cr_assert_eq(repl_own_heard(a->repl, &ph, &oh), heard + 1,
                 "B answered A's question about its own domain with nothing while it pulled from A");
    cr_assert_eq(ph, (uint64_t)PER, "B's head of A's domain");
    cr_assert_eq(oh, (uint64_t)PER);
}

/* One member forges: every second it sends every node, for every domain, the next entry chained on the
 * real head but signed by its own key (wrong_key), and the same entry claiming the real signer
 * (bad_signature); it answers each digest with such forgeries of exactly the seqs the asker lacks.
 * It starts once every domain is bound everywhere (before that, TOFU binds the first key seen; that
 * is the design's stated limit, not what this test is about). */
Test(replicate_sim, byzantine_forgeries_are_never_accepted)
{
    enum { N = 60, DOMAINS = 10, PER = 20, BYZ = N - 1 };
    cluster_t *c = cluster_new(N, 0x5005, 0.10, MAX_FRAME);
    make_identity(&c->mallory, BYZ, 0xee);
    c->nodes[BYZ].byzantine = 1;
    c->nodes[BYZ].next_ae = UINT64_MAX;                      /* dormant until every domain is bound */
    sim_net_set_wake(c->net, BYZ, UINT64_MAX);
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * 5, PER, 1, 20000);
    /* Each publisher's first entry comes first: hold the rest back until it has spread. */
    uint64_t bind_by = 0;
    for (size_t d = 0; d < DOMAINS; d++) {
        node_t *p = &c->nodes[d * 5];
        p->pubs[0] = 1 + d;
        for (size_t k = 1; k < PER; k++)
            p->pubs[k] += 15000;                              /* now in [15001, 35000) */
        schedule(c, p);
    }
    for (uint64_t t = 0;; t += STEP_MS) {
        sim_net_run(c->net, t);
        int bound = 1;
        for (size_t i = 0; i < N && bound; i++)
            if (i != BYZ && c->nodes[i].held < DOMAINS)
                bound = 0;
        if (bound) {
            bind_by = t;
            break;
        }
        cr_assert_lt(t, 15000, "the first entries did not reach every node before 15 s");
    }
    c->nodes[BYZ].next_ae = now(c) + 1;
    schedule(c, &c->nodes[BYZ]);

    uint64_t last = last_publish(c);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "honest nodes did not converge under attack: %s", lag);
    sim_net_run(c->net, now(c) + 2 * ANTI_ENTROPY_MS);     /* the attack goes on after convergence */
    totals_t t0 = {0};
    sim_net_stats_t n0 = {0};
    report("byzantine", &t0, &n0, c, last, t);
    fprintf(stderr, "byzantine: domains bound everywhere by t=%" PRIu64 " ms; %" PRIu64 " forged entries sent\n",
            bind_by, c->forged_sent);
    check_heads(c, 0);
    totals_t tt = totals(c);
    cr_assert_eq(tt.forged_accepted, 0, "an honest node accepted a forged entry");
    cr_assert_eq(tt.entries[CAT_ACCEPTED], (uint64_t)(N - 2) * DOMAINS * PER, "only the real entries were accepted");
    cr_assert_eq(tt.entries[CAT_BAD_SIGNATURE], c->forged_delivered / 2, "every delivered forgery is counted");
    cr_assert_eq(tt.entries[CAT_WRONG_KEY], c->forged_delivered / 2, "every delivered forgery is counted");
    for (size_t i = 0; i < N; i++) {
        if (i == BYZ)
            continue;
        const repl_stats_t *s = repl_stats(c->nodes[i].repl);
        cr_assert_gt(s->entries[CAT_BAD_SIGNATURE], 0, "node %zu never counted a bad signature", i);
        cr_assert_gt(s->entries[CAT_WRONG_KEY], 0, "node %zu never counted a wrong key", i);
        cr_assert_eq(s->entries[CAT_BAD_CHAIN], 0, "node %zu: forgeries must stop at the key, not the chain", i);
    }
}

/* Issue 9 item 8, larger than this machine: N = 1,000 replicas, 10 publishers each publishing 100
 * entries at random times in the same 5 s, 1 % message loss. A benchmark, not a unit test (minutes
 * of Ed25519 verifications on 2 cores), so it runs only when asked:
 *   REPLSIM_N=1000 build/tests/test_replicate_sim --filter 'replicate_sim/thousand*'
 * (REPLSIM_PER changes the entries per publisher; REPLSIM_ORIGIN the peers a publisher pushes a new
 * entry to, 3 by default, up to 256 as gossip.c's origin push). Prints: time until every replica agrees after
 * the last publish, entries sent / entries needed, duplicates per accepted entry, messages per node
 * per second, and per entry the time until 99 % and 100 % of the nodes held it (bench/README.md
 * compares them with the Serf/memberlist convergence model). Stores skip the search index. */
static double pct_u64(uint64_t *v, size_t n, double p)
{
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && v[b - 1] > v[b]; b--) {
            uint64_t t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    return n ? (double)v[(rank ? rank : 1) - 1] : 0;
}

Test(replicate_sim, thousand_nodes_ten_publishers_one_percent_loss, .timeout = 7200)
{
    const char *e = getenv("REPLSIM_N");
    if (!e || atoi(e) < 20)
        cr_skip_test("a benchmark: REPLSIM_N=1000 build/tests/test_replicate_sim --filter 'replicate_sim/thousand*'");
    size_t n = (size_t)atoi(e), per = 100, pubs = 10;
    if ((e = getenv("REPLSIM_PER")) && atoi(e) > 0)
        per = (size_t)atoi(e);
    if ((e = getenv("REPLSIM_ORIGIN")) && atoi(e) > 0)
        g_origin_push = (size_t)atoi(e) < ORIGIN_PUSH_MAX ? (size_t)atoi(e) : ORIGIN_PUSH_MAX;
    enum { WINDOW_MS = 5000 };
    g_lean = 1;
    cluster_t *c = cluster_new(n, 0x8008, 0.01, MAX_FRAME);
    c->spread_members = n;
    for (size_t d = 0; d < pubs; d++)
        plan_publishes(c, d * (n / pubs), per, 1, WINDOW_MS);
    uint64_t first = UINT64_MAX;
    for (size_t d = 0; d < pubs; d++)
        if (c->nodes[d * (n / pubs)].pubs[0] < first)
            first = c->nodes[d * (n / pubs)].pubs[0];
    uint64_t last = last_publish(c);
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "N=%zu not converged %d ms after the last publish: %s", n,
                  SETTLE_PERIODS * ANTI_ENTROPY_MS, lag);
    check_heads(c, 0);
    totals_t tt = totals(c);
    uint64_t needed = (uint64_t)(n - 1) * pubs * per;
    cr_assert_eq(tt.entries[CAT_ACCEPTED], needed, "each entry accepted once per node");
    cr_assert_eq(tt.entries[CAT_BAD_SIGNATURE] + tt.entries[CAT_WRONG_KEY] + tt.entries[CAT_BAD_CHAIN] +
                     tt.entries[CAT_ERROR] + tt.malformed,
                 0, "honest traffic refused");

    size_t ne = pubs * per, k = 0;
    uint64_t *d99 = calloc(ne, sizeof *d99), *dall = calloc(ne, sizeof *dall);
    cr_assert(d99 && dall);
    for (size_t d = 0; d < pubs; d++) {
        const node_t *p = &c->nodes[d * (n / pubs)];
        for (size_t s = 0; s < per; s++, k++) {
            cr_assert(p->spread[s].tall, "entry %zu of %s never reached every node", s + 1, p->domain);
            d99[k] = p->spread[s].t99 - p->spread[s].at;
            dall[k] = p->spread[s].tall - p->spread[s].at;
        }
    }
    const sim_net_stats_t *ns = sim_net_stats(c->net);
    double secs = (double)(t - first) / 1000.0;
    totals_t t0 = {0};
    sim_net_stats_t n0 = {0};
    report("scale run", &t0, &n0, c, last, t);
    fprintf(stderr,
            "scale: N=%zu, %zu publishers x %zu entries in %d ms, %.0f%% loss, origin push to %zu: every replica agreed %" PRIu64
            " ms after the last publish (t=%" PRIu64 " ms, first publish t=%" PRIu64 " ms)\n"
            "scale: entries sent / needed = %.2f (%" PRIu64 " / %" PRIu64 "; %.2f pushed/forwarded + %.2f in "
            "anti-entropy answers); duplicates per accepted entry %.2f; gaps %" PRIu64 "\n"
            "scale: messages %" PRIu64 " (%" PRIu64 " lost), %.1f per node per second over %.1f s, %.1f KiB/s per node\n"
            "scale: per entry, time from publish until 99%% of nodes held it: p50 %.0f ms, p99 %.0f ms, max %.0f ms; "
            "until all %zu: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n"
            "scale: wall time %.1f s\n",
            n, pubs, per, WINDOW_MS, 1.0, g_origin_push, t - last, t, first, (double)tt.entries_sent / (double)needed,
            tt.entries_sent, needed, (double)tt.pushes / (double)needed,
            (double)(tt.entries_sent - tt.pushes) / (double)needed,
            (double)tt.entries[CAT_DUPLICATE] / (double)needed, tt.entries[CAT_GAP], ns->sent, ns->lost,
            (double)ns->sent / (double)n / secs, secs, (double)ns->bytes / 1024.0 / (double)n / secs,
            pct_u64(d99, ne, 50), pct_u64(d99, ne, 99), pct_u64(d99, ne, 100), n, pct_u64(dall, ne, 50),
            pct_u64(dall, ne, 99), pct_u64(dall, ne, 100),
            (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9);
    /* Serf's convergence model (hashicorp/serf's simulator, bench/README.md): one event spread by
     * push gossip, infected(x) / N = 1 / (1 + (N + 1) e^(-beta x)), beta = fanout / 2 * (1 - loss),
     * x rounds of GossipInterval 0.2 s, fanout 3: a fraction p holds it after ln((N + 1) p / (1 - p)) / beta rounds. */
    double beta = 0.5 * 3 * (1 - 0.01);
    double r99 = ceil(log((double)(n + 1) * 0.99 / 0.01) / beta), rall = ceil(log((double)(n + 1) * 0.9999 / 0.0001) / beta);
    fprintf(stderr,
            "scale: Serf/memberlist model, one event (GossipInterval 0.2 s, fanout 3, 1%% loss): 99%% of %zu in %.0f rounds "
            "= %.1f s, 99.99%% in %.0f rounds = %.1f s; here one entry reached 99%% in p50 %.2f s (%.2fx the model), "
            "all in p50 %.2f s / p99 %.2f s (%.2fx / %.2fx the model's 99.99%%)\n",
            n, r99, r99 * 0.2, rall, rall * 0.2, pct_u64(d99, ne, 50) / 1000, pct_u64(d99, ne, 50) / 1000 / (r99 * 0.2),
            pct_u64(dall, ne, 50) / 1000, pct_u64(dall, ne, 99) / 1000, pct_u64(dall, ne, 50) / 1000 / (rall * 0.2),
            pct_u64(dall, ne, 99) / 1000 / (rall * 0.2));
    free(d99);
    free(dall);
    g_lean = 0;
    g_origin_push = GOSSIP_NODES;
}

/* Node 0 (A) lacks the one entry of node 2's domain (C, down now): only node 1 (B) holds it. B
 * pushes an entry of its own every second. A's answer to B's round (its digest, asking for all it
 * lacks) is lost (the link A->B is cut until t=10 s), so the pull A registered is never answered.
 * Returns when A holds C's entry (UINT64_MAX: not by deadline). */
static uint64_t lost_answer_heal_ms(uint64_t seed, uint64_t deadline)
{
    enum { A = 0, B = 1, C = 2, PUSHES = 120 };
    g_clocked = 1;
    cluster_t *c = cluster_new(3, seed, 0.0, MAX_FRAME);
    g_clocked = 0;
    plan_publishes(c, C, 1, 100, 101);
    plan_publishes(c, B, PUSHES, 1500, 1501);
    for (size_t k = 0; k < PUSHES; k++)
        c->nodes[B].pubs[k] = 1500 + 1000 * k;       /* one a second, for two minutes */
    schedule(c, &c->nodes[B]);
    sim_net_block(c->net, C, A, 1);                   /* A misses C's push */
    sim_net_block(c->net, A, B, 1);                   /* and B gets nothing from A */
    sim_net_run(c->net, 1000);
    set_absent(c, C);
    store_head_t h;
    cr_assert_eq(store_catalog_head(c->nodes[B].st, c->nodes[C].domain, &h), 0, "B holds C's entry");
    cr_assert_neq(store_catalog_head(c->nodes[A].st, c->nodes[C].domain, &h), 0, "A lacks it");
    sim_net_run(c->net, 10000);
    cr_assert_neq(store_catalog_head(c->nodes[A].st, c->nodes[C].domain, &h), 0, "A could not ask for it yet");
    sim_net_block(c->net, A, B, 0);
    for (uint64_t t = 10000; t <= deadline; t += STEP_MS) {
        sim_net_run(c->net, t);
        if (store_catalog_head(c->nodes[A].st, c->nodes[C].domain, &h) == 0) {
            cluster_free(&g_cluster);
            return t;
        }
    }
    cluster_free(&g_cluster);
    return UINT64_MAX;
}

/* A pull whose answer never comes (lost, or a peer that answers nothing) shuts the rounds with
 * that peer for PULL_MS only, however often the peer pushes: pushes are not parts of an answer, so
 * the gap heals in the rounds after the link is back. (5d6719b: every push extended the pull, and
 * A got the entry only once B had stopped pushing, after two minutes; e0524dc: only after
 * PULL_EXTEND_MS + PULL_MS, 35-37 s.) */
Test(replicate_sim, a_lost_answer_holds_a_pull_for_a_bounded_time)
{
    /* the pull (registered by t = 2 s) expired PULL_MS (5 s) later, before the link came back */
    uint64_t bound = 10000 + 3 * ANTI_ENTROPY_MS;
    for (uint64_t seed = 0x7a00; seed < 0x7a04; seed++) {
        uint64_t t = lost_answer_heal_ms(seed, 150000);
        fprintf(stderr, "lost answer (seed %#" PRIx64 "): the gap healed at t=%" PRIu64 " ms\n", seed, t);
        cr_assert_leq(t, bound, "seed %#" PRIx64 ": a lost answer kept the gap open until t=%" PRIu64
                      " ms (bound %" PRIu64 " ms): pushes held the pull open", seed, t, bound);
    }
}

/* One clocked run of twenty_clocked_nodes_ten_percent_loss_converge: 20 nodes, 5 publishers of 20
 * entries each over 20 s, 10 % loss. Asserts convergence, the publishers' heads, each entry accepted
 * once per node and no honest traffic refused; returns the time it took after the last publish. */
static uint64_t clocked_converge_ms(uint64_t seed)
{
    enum { N = 20, DOMAINS = 5, PER = 20 };
    g_clocked = 1;
    cluster_t *c = cluster_new(N, seed, 0.10, MAX_FRAME);
    g_clocked = 0;
    for (size_t d = 0; d < DOMAINS; d++)
        plan_publishes(c, d * (N / DOMAINS), PER, 1, 20000);
    uint64_t last = last_publish(c);
    uint64_t t = run_until_converged(c, last + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0);
    char lag[128];
    describe_laggard(c, 0, lag, sizeof lag);
    cr_assert_neq(t, UINT64_MAX, "seed %#" PRIx64 ": not converged %d ms after the last publish: %s", seed,
                  SETTLE_PERIODS * ANTI_ENTROPY_MS, lag);
    check_heads(c, 0);
    totals_t tt = totals(c);
    cr_assert_eq(tt.entries[CAT_ACCEPTED], (uint64_t)(N - 1) * DOMAINS * PER, "each entry accepted once per node");
    cr_assert_eq(tt.entries[CAT_BAD_SIGNATURE] + tt.entries[CAT_WRONG_KEY] + tt.entries[CAT_BAD_CHAIN] +
                     tt.entries[CAT_ERROR] + tt.malformed,
                 0, "honest traffic refused");
    cluster_free(&g_cluster);
    return t - last;
}

/* Clocked nodes (pulls held and expired, domains being pushed left out of answers, answers final)
 * converge under 10 % loss as the unclocked ones do, every entry accepted once per node, every
 * head the publisher's. In 40 seeds (clocked_convergence_mean): 5.5 s mean, 9.4 s at most after the
 * last publish (6.4 s and 10.6 s while every round held its pulls 5 s: no answer said it was
 * complete). These 4 seeds (the simulation is deterministic): 4.6 s mean, 6.6 s before. */
Test(replicate_sim, twenty_clocked_nodes_ten_percent_loss_converge)
{
    enum { SEEDS = 4, MEAN_MAX_MS = 5500 };
    uint64_t sum = 0;
    for (uint64_t seed = 0x9000; seed < 0x9000 + SEEDS; seed++)
        sum += clocked_converge_ms(seed);
    cr_assert_leq(sum / SEEDS, MEAN_MAX_MS, "converged %" PRIu64 " ms after the last publish on average: pulls held "
                  "past their answers?", sum / SEEDS);
}

/* The mean and the maximum of clocked_converge_ms over REPLSIM_SEEDS seeds from 0x9000 (a
 * measurement, not a unit test: 40 seeds take about a minute):
 *   REPLSIM_SEEDS=40 build/tests/test_replicate_sim --filter 'replicate_sim/clocked_convergence_mean' */
Test(replicate_sim, clocked_convergence_mean, .timeout = 3600)
{
    const char *e = getenv("REPLSIM_SEEDS");
    if (!e || atoi(e) < 1)
        cr_skip_test("a measurement: REPLSIM_SEEDS=40 build/tests/test_replicate_sim --filter "
                     "'replicate_sim/clocked_convergence_mean'");
    uint64_t n = (uint64_t)atoi(e), sum = 0, max = 0;
    for (uint64_t seed = 0x9000; seed < 0x9000 + n; seed++) {
        uint64_t ms = clocked_converge_ms(seed);
        if (getenv("REPLSIM_VERBOSE"))
            fprintf(stderr, "seed %#" PRIx64 ": %" PRIu64 " ms\n", seed, ms);
        sum += ms;
        max = ms > max ? ms : max;
    }
    fprintf(stderr, "clocked, 20 nodes, 10%% loss, %" PRIu64 " seeds from 0x9000: converged %.2f s after the last "
            "publish on average, %.2f s at most\n", n, (double)sum / (double)n / 1000.0, (double)max / 1000.0);
}

/* Two clocked nodes, A (0) and B (1), that hold the same catalog and start no rounds of their own. */
static cluster_t *quiet_pair(uint64_t seed)
{
    g_clocked = 1;
    cluster_t *c = cluster_new(2, seed, 0.0, MAX_FRAME);
    g_clocked = 0;
    plan_publishes(c, 0, 3, 1, 1000);
    plan_publishes(c, 1, 3, 1, 1000);
    cr_assert_neq(run_until_converged(c, 30000, 0), UINT64_MAX, "not converged");
    for (size_t i = 0; i < 2; i++)
        c->nodes[i].next_ae = UINT64_MAX / 2;
    return c;
}

/* A round opener that differs from to's digest, from from's address: to sends from its digest and
 * holds a pull with it. */
static void differing_opener(cluster_t *c, size_t to, size_t from)
{
    uint8_t hash[16] = {0}, buf[64];
    Trib__CatalogSummary sum = TRIB__CATALOG_SUMMARY__INIT;
    sum.hash.data = hash;
    sum.hash.len = sizeof hash;
    sum.domains = 2;
    size_t len = trib__catalog_summary__pack(&sum, buf);
    cr_assert_eq(repl_handle(c->nodes[to].repl, c->nodes[from].addr, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, buf, len),
                 0);
}

/* An entries frame of no entries, with these flags, from from's address (a peer naming it). */
static void flags_frame(cluster_t *c, size_t to, size_t from, int more, int answer)
{
    uint8_t buf[16];
    Trib__CatalogEntries m = TRIB__CATALOG_ENTRIES__INIT;
    m.more = more;
    m.answer = answer;
    size_t len = trib__catalog_entries__pack(&m, buf);
    cr_assert_eq(repl_handle(c->nodes[to].repl, c->nodes[from].addr, MSG_ENTRIES, buf, len), 0);
}

/* Whether nd opens a round with peer now (repl_sync sends its opener: no pull with peer held). */
static int opens_round(node_t *nd, const node_t *peer)
{
    uint64_t before = repl_stats(nd->repl)->summaries_sent;
    repl_sync(nd->repl, peer->addr);
    return repl_stats(nd->repl)->summaries_sent > before;
}

/* A pull ends when its answer's last part comes, an empty answer included (one empty frame marked
 * last): a round that found nothing to send either way holds no pull. (Before, every round held its
 * pulls PULL_MS, 5 s, however small its answer: 20 clocked nodes under 10 % loss converged in 6.4 s
 * on average over 40 seeds, 5.5 s with the mark; clocked_convergence_mean measures it.) An older
 * peer marks nothing: its answer holds the pull PULL_MS past its last part, as before. */
Test(replicate_sim, an_answer_s_last_part_ends_the_pull)
{
    enum { A = 0, B = 1 };
    cluster_t *c = quiet_pair(0x1a57);
    node_t *a = &c->nodes[A], *b = &c->nodes[B];
    /* B opens a round with A that differs: A sends B its digest, B answers with nothing (B lacks
     * nothing) and its own digest, and A answers that with nothing too */
    differing_opener(c, A, B);
    sim_net_run(c->net, now(c) + 100);
    cr_assert(opens_round(a, b), "A's pull with B outlived B's empty answer");
    cr_assert(opens_round(b, a), "B's pull with A outlived A's empty answer");

    /* an older peer: A's digest to B is lost, and an unmarked answer part comes from B's address */
    sim_net_block(c->net, A, B, 1);
    differing_opener(c, A, B);
    flags_frame(c, A, B, 0, 1);
    uint64_t t = now(c);
    sim_net_run(c->net, t + 100);
    cr_assert(!opens_round(a, b), "an unmarked answer part ended the pull");
    sim_net_run(c->net, t + 5000 + STEP_MS);          /* PULL_MS after the part */
    cr_assert(opens_round(a, b), "the pull outlived PULL_MS");
}

/* A `more` (an answer cut short: pull the rest) is followed only in a part of an answer from a peer
 * we pull from, and the digest it makes us send is charged to that peer's answer budget. Before, any
 * frame marked more made a node send its digest to the address the frame named, uncharged, and
 * restarted its pull with that address: a peer naming B's address (open mode) sending one a second
 * held our pull with B open for good (no round with B: what B lacked from us came only through
 * others) and made us send digests at will. */
Test(replicate_sim, a_more_is_followed_only_in_a_pull_and_charged)
{
    enum { A = 0, B = 1, FRAMES = 40 };
    cluster_t *c = quiet_pair(0x1a58);
    node_t *a = &c->nodes[A], *b = &c->nodes[B];
    uint64_t digests = repl_stats(a->repl)->digests_sent;
    for (int k = 0; k < FRAMES; k++) {                /* one a second, naming B's address */
        flags_frame(c, A, B, 1, 1);
        flags_frame(c, A, B, 1, 0);
        cr_assert_eq(repl_stats(a->repl)->digests_sent, digests, "A sent B its digest for a 'more' outside a pull");
        sim_net_run(c->net, now(c) + 1000);
    }
    cr_assert(opens_round(a, b), "the 'more' frames held a pull with B open");

    /* in a pull (A sent B its digest; the answer is not in yet): followed, and charged */
    sim_net_block(c->net, A, B, 1);
    differing_opener(c, A, B);
    digests = repl_stats(a->repl)->digests_sent;
    uint64_t charged = a->answered;
    flags_frame(c, A, B, 1, 0);                       /* a push is no part of the answer */
    cr_assert_eq(repl_stats(a->repl)->digests_sent, digests, "A followed a 'more' in a push");
    flags_frame(c, A, B, 1, 1);
    cr_assert_eq(repl_stats(a->repl)->digests_sent, digests + 1, "A did not follow B's cut answer");
    cr_assert_gt(a->answered, charged, "the digest a 'more' made A send was charged to nobody");
}

/* A cut answer to a gap request is followed too (a gap request to its sender is outstanding), with
 * no round meanwhile: A misses B's first 300 entries, B's 301st shows A the gap, A asks B for it
 * (MSG_CATALOG_WANT), and B's answer, cut at 16 frames of 2 KiB, says more; A pulls the rest. */
Test(replicate_sim, a_cut_answer_to_a_gap_request_is_followed)
{
    enum { A = 0, B = 1, PER = 301 };
    g_clocked = 1;
    cluster_t *c = cluster_new(2, 0x1a59, 0.0, 2048);
    g_clocked = 0;
    node_t *a = &c->nodes[A], *b = &c->nodes[B];
    a->next_ae = b->next_ae = UINT64_MAX / 2;         /* no rounds: only the gap request and its chain */
    plan_publishes(c, B, PER, 1, 2);
    for (size_t k = 0; k < PER; k++)
        b->pubs[k] = 10 + k + (k == PER - 1 ? 2000 : 0);
    schedule(c, b);
    sim_net_block(c->net, B, A, 1);
    sim_net_run(c->net, 1000);
    sim_net_block(c->net, B, A, 0);
    cr_assert_eq(a->held, 0);
    sim_net_run(c->net, 2500);
    cr_assert_eq(a->held, (uint64_t)PER, "A holds %" PRIu64 " of B's %d entries", a->held, PER);
    const repl_stats_t *as = repl_stats(a->repl), *bs = repl_stats(b->repl);
    cr_assert_geq(bs->answers_cut, 1, "the answer was not cut: the test tests nothing");
    cr_assert_eq(as->more_refused, 0);
    cr_assert_geq(as->pulls_ended, 1, "the chain's last part did not end the pull");
}

/* A `last` ends only the pull it answers: A pulls B's 301 entries (B's answer cut at 16 frames of
 * 2 KiB, its `more` pulls the rest), while an empty frame marked last, naming B's address, reaches A
 * first (a peer naming B's, open mode; or the late last part of an answer to an earlier digest whose
 * pull had expired). Before, it ended A's pull with B, so B's `more` was refused ("no pull") and the
 * rest waited for a later round: here none comes, and A held 161 of the 301. */
Test(replicate_sim, a_last_part_not_answering_the_pull_does_not_end_it)
{
    enum { A = 0, B = 1, PER = 301 };
    g_clocked = 1;
    cluster_t *c = cluster_new(2, 0x1a5a, 0.0, 2048);
    g_clocked = 0;
    sim_net_set_delay(c->net, 5, 5);                  /* in order, as over one connection: no gaps */
    node_t *a = &c->nodes[A], *b = &c->nodes[B];
    a->next_ae = b->next_ae = UINT64_MAX / 2;         /* no rounds: only the pull and its chain */
    plan_publishes(c, B, PER, 1, 2);
    for (size_t k = 0; k < PER; k++)
        b->pubs[k] = 10 + k;
    schedule(c, b);
    sim_net_block(c->net, B, A, 1);                   /* A gets none of B's pushes */
    sim_net_run(c->net, 3000);                        /* B's domain no longer active (pushed) */
    sim_net_block(c->net, B, A, 0);
    cr_assert_eq(a->held, 0);
    differing_opener(c, A, B);                        /* A sends B its digest: a pull */
    uint8_t buf[16];
    Trib__CatalogEntries m = TRIB__CATALOG_ENTRIES__INIT;
    m.answer = 1;
    m.last = 1;
    size_t len = trib__catalog_entries__pack(&m, buf);
    cr_assert_eq(repl_handle(a->repl, b->addr, MSG_ENTRIES, buf, len), 0);
    sim_net_run(c->net, 5500);
    const repl_stats_t *as = repl_stats(a->repl), *bs = repl_stats(b->repl);
    cr_assert_geq(bs->answers_cut, 1, "the answer was not cut: the test tests nothing (A holds %" PRIu64 ")",
                  a->held);
    cr_assert_eq(a->held, (uint64_t)PER, "A holds %" PRIu64 " of B's %d entries (%" PRIu64 " 'more' refused)",
                 a->held, PER, as->more_refused);
    cr_assert_eq(as->more_refused, 0);
}

/* Bounded random input from a peer for every catalog message type, as repl_handle gets it from the
 * transport: random bytes, and well-formed messages around random contents (digests of up to 70
 * heads naming real, random, over-long and empty domains at random seqs, as questions or answers,
 * only_listed or not; entry frames of random entries with random more/answer/final flags; round
 * openers of random hashes). The reply address is a real member's, as a spoofing peer would give
 * it. Nothing is accepted, undecodable frames are counted, and the cluster still converges. */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

Test(replicate_sim, random_catalog_messages_are_refused_and_change_nothing)
{
    enum { N = 3, PER = 4, ROUNDS = 4000, HEADS = 70, ENTS = 8 };
    cluster_t *c = cluster_new(N, 0x0f22, 0.0, MAX_FRAME);
    for (size_t i = 0; i < N; i++)
        plan_publishes(c, i, PER, 1, 2000);
    cr_assert_neq(run_until_converged(c, last_publish(c) + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0), UINT64_MAX,
                  "not converged");
    node_t *nd = &c->nodes[0];
    repl_set_own(nd->repl, nd->domain);
    repl_stats_t before = *repl_stats(nd->repl);
    static const int types[] = {MSG_DIGEST, MSG_ENTRIES, TRIB__MSG_TYPE__MSG_CATALOG_WANT,
                                TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    static uint8_t buf[1 << 16], ents[ENTS][300];
    static char names[HEADS][100];
    for (int i = 0; i < ROUNDS; i++) {
        int type = types[i % 4];
        size_t len = 0;
        if (rnd_next(&s) % 3 == 0 || type == TRIB__MSG_TYPE__MSG_CATALOG_WANT) {
            len = rnd_next(&s) % 600;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd_next(&s);
        } else if (type == MSG_DIGEST) {
            Trib__DomainHead heads[HEADS], *hp[HEADS];
            size_t n = rnd_next(&s) % HEADS;
            for (size_t k = 0; k < n; k++) {
                trib__domain_head__init(&heads[k]);
                uint64_t pick = rnd_next(&s) % 4;
                if (pick == 0)
                    snprintf(names[k], sizeof names[k], "%s", c->nodes[rnd_next(&s) % N].domain);
                else {
                    size_t l = pick == 1 ? 0 : 1 + rnd_next(&s) % (sizeof names[k] - 1);
                    for (size_t j = 0; j < l; j++)
                        names[k][j] = (char)(pick == 2 ? 'a' + rnd_next(&s) % 26 : 1 + rnd_next(&s) % 255);
                    names[k][l] = '\0';
                }
                heads[k].domain = names[k];
                heads[k].seq = rnd_next(&s) % 3 ? rnd_next(&s) % 16 : rnd_next(&s);
                hp[k] = &heads[k];
            }
            Trib__CatalogDigest d = TRIB__CATALOG_DIGEST__INIT;
            d.n_heads = n;
            d.heads = hp;
            d.reply = rnd_next(&s) & 1;
            d.only_listed = rnd_next(&s) & 1;
            len = trib__catalog_digest__pack(&d, buf);
        } else if (type == MSG_ENTRIES) {
            ProtobufCBinaryData e[ENTS];
            size_t n = rnd_next(&s) % ENTS;
            for (size_t k = 0; k < n; k++) {
                e[k].len = rnd_next(&s) % sizeof ents[k];
                for (size_t j = 0; j < e[k].len; j++)
                    ents[k][j] = (uint8_t)rnd_next(&s);
                e[k].data = ents[k];
            }
            Trib__CatalogEntries m = TRIB__CATALOG_ENTRIES__INIT;
            m.n_entries = n;
            m.entries = e;
            m.final = rnd_next(&s) & 1;
            m.more = rnd_next(&s) & 1;
            m.answer = rnd_next(&s) & 1;
            len = trib__catalog_entries__pack(&m, buf);
        } else {
            uint8_t hash[16];
            for (size_t k = 0; k < sizeof hash; k++)
                hash[k] = (uint8_t)rnd_next(&s);
            Trib__CatalogSummary sum = TRIB__CATALOG_SUMMARY__INIT;
            sum.hash.data = hash;
            sum.hash.len = rnd_next(&s) % 2 ? sizeof hash : rnd_next(&s) % sizeof hash;
            sum.domains = (uint32_t)rnd_next(&s);
            len = trib__catalog_summary__pack(&sum, buf);
        }
        (void)repl_handle(nd->repl, c->nodes[1 + i % (N - 1)].addr, type, buf, len);
        if (i % 100 == 99)
            sim_net_run(c->net, now(c) + STEP_MS);   /* the answers go out, and are handled */
    }
    const repl_stats_t *after = repl_stats(nd->repl);
    cr_expect_eq(after->entries[CAT_ACCEPTED], before.entries[CAT_ACCEPTED], "random input was accepted");
    cr_expect_gt(after->frames_malformed, before.frames_malformed, "no undecodable frame was counted");
    cr_expect_gt(after->digests_sent, before.digests_sent, "no question was answered (the input reached no handler)");
    cr_assert_neq(run_until_converged(c, now(c) + SETTLE_PERIODS * ANTI_ENTROPY_MS, 0), UINT64_MAX,
                  "the cluster does not converge after the random input");
}
