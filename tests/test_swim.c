/* tests/test_swim.c - SWIM/Lifeguard membership: unit checks on one swim_t with scripted peers,
 * and whole clusters (up to 256 nodes) on the deterministic simulated network of sim_net.c.
 * Everything runs on simulated time; no test sleeps or touches the real network. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gossip/swim.h"
#include "tests/sim_net.h"

#define ALIVE   TRIB__MEMBER_STATE__ALIVE
#define SUSPECT TRIB__MEMBER_STATE__SUSPECT
#define DEAD    TRIB__MEMBER_STATE__DEAD
#define LEFT    TRIB__MEMBER_STATE__LEFT
#define T_PING      TRIB__MSG_TYPE__MSG_PING
#define T_ACK       TRIB__MSG_TYPE__MSG_ACK
#define T_PING_REQ  TRIB__MSG_TYPE__MSG_PING_REQ
#define T_NACK      TRIB__MSG_TYPE__MSG_NACK
#define T_PUSH_PULL TRIB__MSG_TYPE__MSG_PUSH_PULL

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Node ids: bytes 0..3 the index, byte 4 the generation, the rest pseudo-random. */
static void make_id(uint8_t id[32], uint32_t idx, uint8_t gen)
{
    uint64_t h = mix(((uint64_t)idx << 8) | gen);
    for (int i = 0; i < 32; i++) {
        if (i % 8 == 0) h = mix(h);
        id[i] = (uint8_t)(h >> (8 * (i % 8)));
    }
    memcpy(id, &idx, 4);
    id[4] = gen;
}

static Trib__Member mk_member(uint8_t id[32], const char *addr, uint64_t inc, int state)
{
    Trib__Member m = TRIB__MEMBER__INIT;
    m.id.data = id;
    m.id.len = 32;
    m.addr = (char *)addr;
    m.domain = "d";
    m.http = "";
    m.incarnation = inc;
    m.state = state;
    return m;
}

/* ================================================================ unit rig: one swim_t, scripted peers */

typedef struct {
    int type;
    bool has_id;
    uint8_t to_id[32];
    char addr[64];
    uint8_t *body;
    size_t len;
    uint64_t at;
} sent_t;

typedef struct {
    swim_t *s;
    uint64_t now;
    sent_t *out;
    size_t nout, capout;
    uint8_t self_id[32];
    uint8_t fid[16][32];          /* fake peers 1..15 (index 0 unused) */
    char faddr[16][32];
    int respond;                  /* 0 silent, 1 ack every probe, 2 nack every ping-req */
    uint8_t no_ack_for[32];       /* a peer that never acks (when set) */
    bool has_no_ack;
    int changes;
    size_t rider_len;             /* what rider_out gives (bytes 'R'), 0: none */
    int riders_asked;
    uint8_t rider_in[SWIM_MAX_RIDER + 1];
    size_t rider_in_len;
    int riders_in, rider_from;    /* riders received, from which fake peer */
    size_t acks_before_rider;     /* messages sent when the last rider came in */
} rig_t;

static void rig_send(void *ctx, const uint8_t *to_id, const char *addr, int type,
                     const uint8_t *body, size_t len)
{
    rig_t *r = ctx;
    if (r->nout == r->capout) {
        r->capout = r->capout ? r->capout * 2 : 64;
        r->out = realloc(r->out, r->capout * sizeof *r->out);
        cr_assert_not_null(r->out);
    }
    sent_t *m = &r->out[r->nout++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->has_id = to_id != NULL;
    if (to_id) memcpy(m->to_id, to_id, 32);
    snprintf(m->addr, sizeof m->addr, "%s", addr);
    m->body = malloc(len ? len : 1);
    memcpy(m->body, body, len);
    m->len = len;
    m->at = r->now;
}

static void rig_changed(void *ctx, const Trib__Member *m, int old)
{
    (void)m; (void)old;
    ((rig_t *)ctx)->changes++;
}

static int fake_of(const rig_t *r, const uint8_t *id);

static size_t rig_rider_out(void *ctx, const uint8_t *to_id, const char *addr, uint8_t *buf, size_t cap)
{
    rig_t *r = ctx;
    (void)to_id; (void)addr;
    r->riders_asked++;
    size_t n = r->rider_len < cap ? r->rider_len : cap;
    memset(buf, 'R', n);
    return n;
}

static void rig_rider_in(void *ctx, const uint8_t *from, const char *from_addr, const uint8_t *b, size_t len)
{
    rig_t *r = ctx;
    (void)from_addr;
    cr_assert_leq(len, SWIM_MAX_RIDER);
    memcpy(r->rider_in, b, len);
    r->rider_in_len = len;
    r->riders_in++;
    r->rider_from = fake_of(r, from);
    r->acks_before_rider = r->nout;
}

static void rig_clear(rig_t *r)
{
    for (size_t i = 0; i < r->nout; i++) free(r->out[i].body);
    r->nout = 0;
}

static int fake_of(const rig_t *r, const uint8_t *id)
{
    for (int k = 1; k < 16; k++)
        if (memcmp(r->fid[k], id, 32) == 0) return k;
    return -1;
}

static int rig_handle(rig_t *r, int from, int type, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = malloc(len ? len : 1);
    protobuf_c_message_pack(msg, b);
    int rc = swim_handle(r->s, r->now, r->fid[from], r->faddr[from], type, b, len);
    free(b);
    return rc;
}

/* A swim_t with fake peers 1..npeers learnt through one push-pull from peer 1. */
static void rig_init(rig_t *r, const swim_config_t *cfg, int npeers)
{
    memset(r, 0, sizeof *r);
    make_id(r->self_id, 0, 0);
    for (int k = 1; k < 16; k++) {
        make_id(r->fid[k], (uint32_t)k, 0);
        snprintf(r->faddr[k], sizeof r->faddr[k], "peer%d:7470", k);
    }
    Trib__Member self = mk_member(r->self_id, "self:7470", 0, ALIVE);
    swim_io_t io = {.ctx = r, .send = rig_send, .changed = rig_changed, .rider_out = rig_rider_out,
                    .rider_in = rig_rider_in};
    char err[200] = "";
    r->s = swim_new(cfg, &self, &io, 42, err, sizeof err);
    cr_assert_not_null(r->s, "%s", err);
    r->now = 1000;
    if (npeers) {
        Trib__Member ms[16], *mp[16];
        for (int k = 1; k <= npeers; k++) {
            ms[k - 1] = mk_member(r->fid[k], r->faddr[k], 0, ALIVE);
            mp[k - 1] = &ms[k - 1];
        }
        Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
        pp.reply = true;
        pp.members = mp;
        pp.n_members = (size_t)npeers;
        cr_assert_eq(rig_handle(r, 1, T_PUSH_PULL, &pp.base), 0);
        cr_assert_eq(swim_count(r->s, ALIVE), (size_t)npeers + 1);
    }
}

static void rig_free(rig_t *r)
{
    rig_clear(r);
    free(r->out);
    swim_destroy(&r->s);
    cr_assert_null(r->s);
}

/* Answers what the swim_t sent, as scripted by r->respond. */
static void rig_respond(rig_t *r)
{
    size_t n = r->nout;
    for (size_t i = 0; i < n; i++) {
        sent_t *m = &r->out[i];
        if (!m->has_id) continue;
        int k = fake_of(r, m->to_id);
        if (k < 0) continue;
        if (m->type == T_PING && r->respond == 1 &&
            !(r->has_no_ack && memcmp(m->to_id, r->no_ack_for, 32) == 0)) {
            Trib__Ping *p = trib__ping__unpack(NULL, m->len, m->body);
            cr_assert_not_null(p);
            if (p->probe_seq) {
                Trib__Ack a = TRIB__ACK__INIT;
                a.probe_seq = p->probe_seq;
                a.target.data = r->fid[k];
                a.target.len = 32;
                cr_assert_eq(rig_handle(r, k, T_ACK, &a.base), 0);
            }
            trib__ping__free_unpacked(p, NULL);
        } else if (m->type == T_PING_REQ && r->respond == 2) {
            Trib__PingReq *q = trib__ping_req__unpack(NULL, m->len, m->body);
            cr_assert_not_null(q);
            Trib__Nack nk = TRIB__NACK__INIT;
            nk.probe_seq = q->probe_seq;
            nk.target = q->target;
            cr_assert_eq(rig_handle(r, k, T_NACK, &nk.base), 0);
            trib__ping_req__free_unpacked(q, NULL);
        }
    }
}

/* Runs every timer due up to and including t, answering as scripted; keeps the outbox. */
static void rig_advance(rig_t *r, uint64_t t)
{
    for (;;) {
        uint64_t d = swim_next_deadline(r->s);
        if (d > t) break;
        if (d > r->now) r->now = d;
        swim_tick(r->s, r->now);
        cr_assert_gt(swim_next_deadline(r->s), r->now, "tick left a due timer behind");
        rig_respond(r);
    }
    r->now = t;
}

static int rig_state(const rig_t *r, int k)
{
    const Trib__Member *m = swim_find(r->s, r->fid[k]);
    return m ? (int)m->state : -1;
}

static int gossip_claim(rig_t *r, int from, uint8_t id[32], const char *addr, uint64_t inc, int state)
{
    Trib__Member m = mk_member(id, addr, inc, state), *mp = &m;
    Trib__Ping p = TRIB__PING__INIT;
    p.target.data = r->self_id;
    p.target.len = 32;
    p.updates = &mp;
    p.n_updates = 1;
    return rig_handle(r, from, T_PING, &p.base);
}

/* ---------------------------------------------------------------- config and construction */

Test(swim_unit, new_rejects_bad_config_and_self)
{
    swim_config_t c;
    uint8_t id[32];
    make_id(id, 1, 0);
    Trib__Member self = mk_member(id, "a:1", 0, ALIVE);
    rig_t r = {0};
    swim_io_t io = {.ctx = &r, .send = rig_send};
    char err[200];
    swim_config_default(&c);
    c.probe_timeout_ms = c.probe_interval_ms;
    err[0] = 0;
    cr_assert_null(swim_new(&c, &self, &io, 1, err, sizeof err));
    cr_assert(strstr(err, "probe_timeout_ms"), "%s", err);
    swim_config_default(&c);
    c.indirect_checks = 99;
    cr_assert_null(swim_new(&c, &self, &io, 1, err, sizeof err));
    cr_assert(strstr(err, "indirect_checks"), "%s", err);
    swim_config_default(&c);
    c.max_members = 1;
    cr_assert_null(swim_new(&c, &self, &io, 1, err, sizeof err));
    swim_config_default(&c);
    Trib__Member bad = self;
    bad.id.len = 31;
    cr_assert_null(swim_new(&c, &bad, &io, 1, err, sizeof err));
    cr_assert(strstr(err, "32-byte id"), "%s", err);
    bad = self;
    bad.addr = "has space:1";
    cr_assert_null(swim_new(&c, &bad, &io, 1, err, sizeof err));
    swim_io_t noio = {0};
    cr_assert_null(swim_new(&c, &self, &noio, 1, err, sizeof err));
    swim_t *s = swim_new(NULL, &self, &io, 1, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(swim_count(s, -1), 1);
    cr_assert_eq(swim_count(s, ALIVE), 1);
    cr_assert_eq(swim_next_deadline(s), 0, "a new swim wants its first tick now");
    swim_destroy(&s);
    swim_destroy(&s);   /* NULL-safe */
}

/* ---------------------------------------------------------------- malformed input */

typedef struct {
    const char *name;
    int type;
    uint8_t bytes[256];
    size_t len;
} garbage_t;

/* Encodes a message into a garbage_t case (for well-formed protobuf with bad contents). */
static garbage_t enc(const char *name, int type, const ProtobufCMessage *m)
{
    garbage_t g = {.name = name, .type = type};
    g.len = protobuf_c_message_get_packed_size(m);
    cr_assert_leq(g.len, sizeof g.bytes, "%s too big for the table", name);
    protobuf_c_message_pack(m, g.bytes);
    return g;
}

Test(swim_unit, malformed_bodies_are_counted_and_ignored)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 3);
    rig_advance(&r, 1000);
    rig_clear(&r);
    uint8_t id31[31] = {1}, newid[32];
    make_id(newid, 99, 0);

    Trib__Member ok = mk_member(newid, "new:1", 0, ALIVE);
    Trib__Member bad_id = ok, bad_state = ok, bad_addr = ok, empty_addr = ok, long_dom = ok, ctl_http = ok;
    bad_id.id.data = id31;
    bad_id.id.len = 31;
    bad_state.state = 7;
    bad_addr.addr = "a b:1";
    empty_addr.addr = "";
    long_dom.domain = "0123456789012345678901234567890123456789012345678901234567890123456789";
    ctl_http.http = "x\x01y";
    Trib__Member *bads[] = {&bad_id, &bad_state, &bad_addr, &empty_addr, &long_dom, &ctl_http};

    garbage_t cases[64];
    size_t nc = 0;
    /* Raw garbage for every type, including an unknown one. */
    int types[] = {T_PING, T_ACK, T_PING_REQ, T_NACK, T_PUSH_PULL};
    for (size_t t = 0; t < 5; t++) {
        garbage_t g = {.name = "0xff run", .type = types[t], .len = 8};
        memset(g.bytes, 0xff, 8);
        cases[nc++] = g;
        garbage_t h = {.name = "truncated length-delimited", .type = types[t], .len = 3,
                       .bytes = {0x12, 0x40, 0x01}};
        cases[nc++] = h;
        garbage_t u = {.name = "bad wire type", .type = types[t], .len = 2, .bytes = {0x0f, 0x00}};
        cases[nc++] = u;
    }
    garbage_t unk = {.name = "unknown type", .type = 99, .len = 0};
    cases[nc++] = unk;
    garbage_t cat = {.name = "catalog type", .type = TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, .len = 0};
    cases[nc++] = cat;

    /* Well-formed protobuf, bad contents. */
    Trib__Ping p = TRIB__PING__INIT;
    cases[nc++] = enc("ping without target", T_PING, &p.base);
    p.target.data = id31;
    p.target.len = 31;
    cases[nc++] = enc("ping target 31 bytes", T_PING, &p.base);
    p.target.data = r.self_id;
    p.target.len = 32;
    p.origin.data = id31;
    p.origin.len = 5;
    cases[nc++] = enc("ping origin 5 bytes", T_PING, &p.base);
    p.origin.len = 0;
    p.origin_addr = "bad\naddr";
    cases[nc++] = enc("ping origin_addr with newline", T_PING, &p.base);
    p.origin_addr = "";
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        Trib__Member *two[2] = {&ok, bads[i]};
        p.updates = two;
        p.n_updates = 2;
        cases[nc++] = enc("ping with one bad update", T_PING, &p.base);
    }
    p.n_updates = 0;
    Trib__Ack a = TRIB__ACK__INIT;
    a.target.data = r.self_id;
    a.target.len = 31;
    cases[nc++] = enc("ack with a short target", T_ACK, &a.base);
    a.target.len = 32;
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        Trib__Member *one[1] = {bads[i]};
        a.updates = one;
        a.n_updates = 1;
        cases[nc++] = enc("ack with bad update", T_ACK, &a.base);
    }
    Trib__PingReq q = TRIB__PING_REQ__INIT;
    q.target_addr = "x:1";
    cases[nc++] = enc("ping-req without target", T_PING_REQ, &q.base);
    q.target.data = r.fid[2];
    q.target.len = 32;
    q.target_addr = "";
    cases[nc++] = enc("ping-req without target_addr", T_PING_REQ, &q.base);
    q.target_addr = "tab\there";
    cases[nc++] = enc("ping-req target_addr with tab", T_PING_REQ, &q.base);
    Trib__Nack k = TRIB__NACK__INIT;
    k.probe_seq = 1;
    cases[nc++] = enc("nack without target", T_NACK, &k.base);
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        Trib__Member *two[2] = {&ok, bads[i]};
        Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
        pp.join = true;
        pp.members = two;
        pp.n_members = 2;
        cases[nc++] = enc("push-pull with one bad member", T_PUSH_PULL, &pp.base);
    }
    cr_assert_leq(nc, sizeof cases / sizeof *cases);

    size_t members = swim_count(r.s, -1);
    uint64_t bad = swim_stats(r.s)->msgs_malformed;
    for (size_t i = 0; i < nc; i++) {
        int rc = swim_handle(r.s, r.now, r.fid[1], r.faddr[1], cases[i].type, cases[i].bytes, cases[i].len);
        cr_expect_eq(rc, -1, "case %zu (%s, type %d) accepted", i, cases[i].name, cases[i].type);
        cr_expect_eq(swim_stats(r.s)->msgs_malformed, bad + i + 1, "case %zu not counted", i);
        cr_expect_eq(swim_count(r.s, -1), members, "case %zu (%s) changed the table", i, cases[i].name);
        cr_expect_eq(r.nout, 0, "case %zu (%s) made us send", i, cases[i].name);
    }
    /* Envelope-level checks: oversize length, NULL body with a length, bad from_addr, NULL from. */
    uint8_t small[4] = {0};
    cr_expect_eq(swim_handle(r.s, r.now, r.fid[1], "a:1", T_PING, small, SWIM_MAX_BODY + 1), -1);
    cr_expect_eq(swim_handle(r.s, r.now, r.fid[1], "a:1", T_PING, NULL, 4), -1);
    cr_expect_eq(swim_handle(r.s, r.now, r.fid[1], "bad addr", T_PUSH_PULL, small, 0), -1);
    cr_expect_eq(swim_handle(r.s, r.now, NULL, "a:1", T_PUSH_PULL, small, 0), -1);
    cr_expect_eq(swim_stats(r.s)->msgs_malformed, bad + nc + 4);
    /* Well-formed empty bodies are fine: an empty push-pull is answered, an empty ack ignored. */
    cr_expect_eq(swim_handle(r.s, r.now, r.fid[1], r.faddr[1], T_PUSH_PULL, NULL, 0), 0);
    cr_expect_eq(r.nout, 1);
    cr_expect_eq(swim_stats(r.s)->msgs_malformed, bad + nc + 4);
    /* Still healthy: a valid new member is learnt afterwards. */
    cr_expect_eq(gossip_claim(&r, 1, newid, "new:1", 0, ALIVE), 0);
    cr_expect_eq(swim_count(r.s, -1), members + 1);
    rig_free(&r);
}

Test(swim_unit, random_and_mutated_bodies_never_crash)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    cfg.max_members = 64;
    rig_t r;
    rig_init(&r, &cfg, 5);
    /* Valid seeds to mutate: a ping with updates and a push-pull. */
    uint8_t ids[8][32];
    Trib__Member ms[8], *mp[8];
    for (int i = 0; i < 8; i++) {
        make_id(ids[i], 200 + (uint32_t)i, 0);
        ms[i] = mk_member(ids[i], "m:1", (uint64_t)i, i % 4);
        mp[i] = &ms[i];
    }
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 3;
    p.target.data = r.self_id;
    p.target.len = 32;
    p.updates = mp;
    p.n_updates = 8;
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.members = mp;
    pp.n_members = 8;
    uint8_t valid[2][2048];
    size_t vlen[2] = {trib__ping__pack(&p, valid[0]), trib__push_pull__pack(&pp, valid[1])};
    int vtype[2] = {T_PING, T_PUSH_PULL};
    int types[] = {T_PING, T_ACK, T_PING_REQ, T_NACK, T_PUSH_PULL};
    uint64_t rng = 12345;
    uint8_t buf[2048];
    size_t ok = 0;
    for (int it = 0; it < 20000; it++) {
        rng = mix(rng);
        size_t len;
        int type;
        if (it % 2) {                       /* random bytes */
            len = rng % 200;
            type = types[(rng >> 20) % 5];
            uint64_t h = rng;
            for (size_t i = 0; i < len; i++) {
                if (i % 8 == 0) h = mix(h);
                buf[i] = (uint8_t)(h >> (8 * (i % 8)));
            }
        } else {                            /* a valid body with a few bytes changed or cut */
            int v = (int)((rng >> 8) % 2);
            type = vtype[v];
            len = vlen[v];
            memcpy(buf, valid[v], len);
            uint64_t h = rng;
            for (int k = 0; k < 3; k++) {
                h = mix(h);
                buf[h % len] ^= (uint8_t)(h >> 32);
            }
            if (h & 1) len = (h >> 40) % len;
        }
        int rc = swim_handle(r.s, r.now, r.fid[1 + it % 5], r.faddr[1 + it % 5], type, buf, len);
        cr_assert(rc == 0 || rc == -1);
        ok += rc == 0;
        cr_assert_leq(swim_count(r.s, -1), cfg.max_members);
        if (it % 100 == 0) rig_advance(&r, r.now + 50);
        if (it % 1000 == 0) rig_clear(&r);
    }
    cr_assert_gt(ok, 0);
    cr_assert_gt(swim_stats(r.s)->msgs_malformed, 0);
    rig_free(&r);
}

Test(swim_unit, push_pull_body_stays_under_the_limit)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    enum { BATCH = 1200, BATCHES = 3 };     /* ~600-byte members: 2 MB in all */
    char addr[SWIM_MAX_ADDR + 1], dom[SWIM_MAX_DOMAIN + 1];
    memset(addr, 'a', SWIM_MAX_ADDR);
    addr[SWIM_MAX_ADDR] = 0;
    memset(dom, 'd', SWIM_MAX_DOMAIN);
    dom[SWIM_MAX_DOMAIN] = 0;
    Trib__Member *ms = calloc(BATCH, sizeof *ms), **mp = calloc(BATCH, sizeof *mp);
    uint8_t (*ids)[32] = calloc(BATCH, 32);
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            make_id(ids[i], 1000 + (uint32_t)(b * BATCH + i), 0);
            ms[i] = mk_member(ids[i], addr, 0, ALIVE);
            ms[i].http = addr;
            ms[i].domain = dom;
            mp[i] = &ms[i];
        }
        Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
        pp.reply = true;
        pp.members = mp;
        pp.n_members = BATCH;
        size_t len = trib__push_pull__get_packed_size(&pp);
        cr_assert_leq(len, SWIM_MAX_BODY);
        uint8_t *body = malloc(len);
        trib__push_pull__pack(&pp, body);
        cr_assert_eq(swim_handle(r.s, r.now, r.fid[1], r.faddr[1], T_PUSH_PULL, body, len), 0);
        free(body);
    }
    cr_assert_eq(swim_count(r.s, -1), 1 + BATCH * BATCHES);
    rig_clear(&r);
    cr_assert_eq(swim_handle(r.s, r.now, r.fid[1], r.faddr[1], T_PUSH_PULL, NULL, 0), 0);
    cr_assert_eq(r.nout, 1);
    cr_assert_leq(r.out[0].len, SWIM_MAX_BODY);
    Trib__PushPull *rep = trib__push_pull__unpack(NULL, r.out[0].len, r.out[0].body);
    cr_assert_not_null(rep);
    cr_assert(rep->n_members > BATCH && rep->n_members < 1 + BATCH * BATCHES);
    cr_assert(memcmp(rep->members[0]->id.data, r.self_id, 32) == 0, "self first");
    trib__push_pull__free_unpacked(rep, NULL);
    free(ms);
    free(mp);
    free(ids);
    rig_free(&r);
}

Test(swim_unit, unknown_sender_gets_a_push_pull_once_per_interval)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 2);
    rig_advance(&r, 1000);
    rig_clear(&r);
    uint8_t stranger[32];
    make_id(stranger, 300, 0);
    Trib__Ping p = TRIB__PING__INIT;
    p.target.data = r.self_id;
    p.target.len = 32;
    uint8_t b[128];
    size_t len = trib__ping__pack(&p, b);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(swim_handle(r.s, r.now, stranger, "stranger:1", T_PING, b, len), 0);
    size_t pps = 0;
    for (size_t i = 0; i < r.nout; i++)
        if (r.out[i].type == T_PUSH_PULL) {
            pps++;
            cr_assert(r.out[i].has_id && memcmp(r.out[i].to_id, stranger, 32) == 0);
            cr_assert_str_eq(r.out[i].addr, "stranger:1");
        }
    cr_assert_eq(pps, 1);
    rig_free(&r);
}

/* ---------------------------------------------------------------- claims and incarnations */

typedef struct {
    const char *name;
    int s0; uint64_t i0;           /* state set up first (via ALIVE i0 then the claim) */
    int s1; uint64_t i1;           /* the claim under test */
    const char *addr1;
    bool push_pull;
    int want_state; uint64_t want_inc; const char *want_addr;
} claim_case_t;

Test(swim_unit, claim_precedence_table)
{
    static const claim_case_t cases[] = {
        {"higher alive moves addr",    ALIVE, 0,   ALIVE, 1,   "b:1", false, ALIVE, 1, "b:1"},
        {"same-inc alive keeps addr",  ALIVE, 0,   ALIVE, 0,   "b:1", false, ALIVE, 0, "a:1"},
        {"suspect beats alive",        ALIVE, 0,   SUSPECT, 0, "a:1", false, SUSPECT, 0, "a:1"},
        {"alive loses to suspect",     SUSPECT, 0, ALIVE, 0,   "a:1", false, SUSPECT, 0, "a:1"},
        {"higher alive refutes",       SUSPECT, 0, ALIVE, 1,   "a:1", false, ALIVE, 1, "a:1"},
        {"dead beats alive",           ALIVE, 0,   DEAD, 0,    "a:1", false, DEAD, 0, "a:1"},
        {"alive loses to dead",        DEAD, 0,    ALIVE, 0,   "a:1", false, DEAD, 0, "a:1"},
        {"higher alive revives",       DEAD, 0,    ALIVE, 3,   "c:1", false, ALIVE, 3, "c:1"},
        {"left beats dead",            DEAD, 0,    LEFT, 0,    "a:1", false, LEFT, 0, "a:1"},
        {"dead loses to left",         LEFT, 0,    DEAD, 0,    "a:1", false, LEFT, 0, "a:1"},
        {"suspect loses to dead",      DEAD, 0,    SUSPECT, 0, "a:1", false, DEAD, 0, "a:1"},
        {"old suspect ignored",        ALIVE, 2,   SUSPECT, 1, "a:1", false, ALIVE, 2, "a:1"},
        {"old dead ignored",           ALIVE, 2,   DEAD, 1,    "a:1", false, ALIVE, 2, "a:1"},
        {"push-pull dead = suspect",   ALIVE, 0,   DEAD, 0,    "a:1", true,  SUSPECT, 0, "a:1"},
        {"push-pull left = left",      ALIVE, 0,   LEFT, 0,    "a:1", true,  LEFT, 0, "a:1"},
        {"dead claim keeps addr",      ALIVE, 0,   DEAD, 1,    "z:1", false, DEAD, 1, "a:1"},
    };
    swim_config_t cfg;
    swim_config_default(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const claim_case_t *c = &cases[i];
        rig_t r;
        rig_init(&r, &cfg, 3);
        uint8_t x[32];
        make_id(x, 50, 0);
        cr_assert_eq(gossip_claim(&r, 1, x, "a:1", c->i0, ALIVE), 0);
        if (c->s0 != ALIVE) cr_assert_eq(gossip_claim(&r, 1, x, "a:1", c->i0, c->s0), 0);
        if (c->push_pull) {
            Trib__Member m = mk_member(x, c->addr1, c->i1, c->s1), *mp = &m;
            Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
            pp.reply = true;
            pp.members = &mp;
            pp.n_members = 1;
            cr_assert_eq(rig_handle(&r, 2, T_PUSH_PULL, &pp.base), 0);
        } else {
            cr_assert_eq(gossip_claim(&r, 2, x, c->addr1, c->i1, c->s1), 0);
        }
        const Trib__Member *m = swim_find(r.s, x);
        cr_assert_not_null(m, "%s", c->name);
        cr_expect_eq((int)m->state, c->want_state, "%s: state %s", c->name, swim_state_name(m->state));
        cr_expect_eq(m->incarnation, c->want_inc, "%s: inc %llu", c->name, (unsigned long long)m->incarnation);
        cr_expect_str_eq(m->addr, c->want_addr, "%s", c->name);
        rig_free(&r);
    }
}

Test(swim_unit, unknown_members_learnt_only_from_alive)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 2);
    uint8_t x[32];
    make_id(x, 60, 0);
    int states[] = {SUSPECT, DEAD, LEFT};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gossip_claim(&r, 1, x, "x:1", 5, states[i]), 0);
        cr_expect_null(swim_find(r.s, x), "learnt a member from a %s claim", swim_state_name(states[i]));
    }
    cr_assert_eq(gossip_claim(&r, 1, x, "x:1", 0, ALIVE), 0);
    cr_expect_not_null(swim_find(r.s, x));
    rig_free(&r);
}

Test(swim_unit, accusations_about_self_are_refuted)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 3);
    rig_advance(&r, 1000);
    rig_clear(&r);
    /* A probe that carries "you are suspect": refute first, then the ack carries the news. */
    Trib__Member acc = mk_member(r.self_id, "self:7470", 0, SUSPECT), *ap = &acc;
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 77;
    p.target.data = r.self_id;
    p.target.len = 32;
    p.updates = &ap;
    p.n_updates = 1;
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    cr_assert_eq(swim_self(r.s)->incarnation, 1);
    cr_assert_eq(swim_stats(r.s)->refuted, 1);
    cr_assert_eq(swim_health(r.s), 1, "refuting costs local health");
    cr_assert_eq(r.nout, 1);
    cr_assert_eq(r.out[0].type, T_ACK);
    Trib__Ack *a = trib__ack__unpack(NULL, r.out[0].len, r.out[0].body);
    cr_assert_not_null(a);
    cr_assert_eq(a->probe_seq, 77);
    bool found = false;
    for (size_t i = 0; i < a->n_updates; i++)
        if (memcmp(a->updates[i]->id.data, r.self_id, 32) == 0)
            found = a->updates[i]->state == ALIVE && a->updates[i]->incarnation == 1;
    cr_assert(found, "the ack does not carry our refutation");
    trib__ack__free_unpacked(a, NULL);

    struct { int state; uint64_t inc; uint64_t want; } seq[] = {
        {DEAD, 5, 6},       /* dead at a higher incarnation: jump past it */
        {LEFT, 6, 7},       /* nobody else may say we left */
        {SUSPECT, 3, 7},    /* stale accusation: ignored */
        {ALIVE, 9, 10},     /* someone claims a newer us: outbid it */
        {ALIVE, 10, 10},    /* our own echo */
    };
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        cr_assert_eq(gossip_claim(&r, 2, r.self_id, "self:7470", seq[i].inc, seq[i].state), 0);
        cr_expect_eq(swim_self(r.s)->incarnation, seq[i].want, "step %zu", i);
        cr_expect_eq((int)swim_self(r.s)->state, ALIVE);
    }
    /* The incarnation saturates instead of wrapping to 0. */
    {
        rig_t q;
        rig_init(&q, &cfg, 1);
        cr_assert_eq(gossip_claim(&q, 1, q.self_id, "self:7470", UINT64_MAX, DEAD), 0);
        cr_expect_eq(swim_self(q.s)->incarnation, UINT64_MAX);
        rig_free(&q);
    }
    /* Same incarnation but another address: refuted too (our address is ours to say). */
    cr_assert_eq(gossip_claim(&r, 2, r.self_id, "elsewhere:1", 10, ALIVE), 0);
    cr_expect_eq(swim_self(r.s)->incarnation, 11);
    cr_expect_str_eq(swim_self(r.s)->addr, "self:7470");
    rig_free(&r);
}

Test(swim_unit, ping_for_another_id_is_not_acked)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 2);
    rig_advance(&r, 1000);
    rig_clear(&r);
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 5;
    p.target.data = r.fid[2];          /* the node that used to live at our address */
    p.target.len = 32;
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    cr_assert_eq(r.nout, 0);
    p.target.data = r.self_id;
    p.probe_seq = 0;                   /* a gossip carrier: never answered */
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    cr_assert_eq(r.nout, 0);
    p.probe_seq = 6;
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    cr_assert_eq(r.nout, 1);
    cr_assert_eq(r.out[0].type, T_ACK);
    cr_assert(r.out[0].has_id && memcmp(r.out[0].to_id, r.fid[1], 32) == 0);
    cr_assert_str_eq(r.out[0].addr, r.faddr[1]);
    rig_free(&r);
}

Test(swim_unit, relays_indirect_probe_with_ack_or_nack)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 3);
    rig_advance(&r, 1000);
    rig_clear(&r);
    for (int round = 0; round < 2; round++) {
        Trib__PingReq q = TRIB__PING_REQ__INIT;
        q.probe_seq = 900 + (uint64_t)round;
        q.target.data = r.fid[2];
        q.target.len = 32;
        q.target_addr = r.faddr[2];
        cr_assert_eq(rig_handle(&r, 1, T_PING_REQ, &q.base), 0);
        cr_assert_eq(r.nout, 1);
        cr_assert_eq(r.out[0].type, T_PING);
        cr_assert(memcmp(r.out[0].to_id, r.fid[2], 32) == 0);
        Trib__Ping *p = trib__ping__unpack(NULL, r.out[0].len, r.out[0].body);
        cr_assert_not_null(p);
        cr_assert(p->probe_seq != 0);
        cr_assert(p->origin.len == 32 && memcmp(p->origin.data, r.fid[1], 32) == 0);
        uint64_t relay_seq = p->probe_seq;
        trib__ping__free_unpacked(p, NULL);
        rig_clear(&r);
        if (round == 0) {
            /* An ack from someone else than the target is not forwarded; the target's is. */
            Trib__Ack a = TRIB__ACK__INIT;
            a.probe_seq = relay_seq;
            a.target.data = r.fid[2];
            a.target.len = 32;
            cr_assert_eq(rig_handle(&r, 3, T_ACK, &a.base), 0);
            cr_assert_eq(r.nout, 0);
            cr_assert_eq(rig_handle(&r, 2, T_ACK, &a.base), 0);
            cr_assert_eq(r.nout, 1);
            cr_assert_eq(r.out[0].type, T_ACK);
            cr_assert(memcmp(r.out[0].to_id, r.fid[1], 32) == 0);
            Trib__Ack *f = trib__ack__unpack(NULL, r.out[0].len, r.out[0].body);
            cr_assert_eq(f->probe_seq, 900);
            cr_assert(memcmp(f->target.data, r.fid[2], 32) == 0);
            trib__ack__free_unpacked(f, NULL);
        } else {
            /* Silence for one probe timeout: a nack goes to the origin. */
            r.respond = 0;
            uint64_t t0 = r.now;
            size_t found = 0;
            while (!found && r.now < t0 + 2000) {
                rig_advance(&r, r.now + 10);
                for (size_t i = 0; i < r.nout; i++) {
                    if (r.out[i].type != T_NACK) continue;
                    Trib__Nack *k = trib__nack__unpack(NULL, r.out[i].len, r.out[i].body);
                    cr_assert_eq(k->probe_seq, 901);
                    cr_assert(memcmp(r.out[i].to_id, r.fid[1], 32) == 0);
                    trib__nack__free_unpacked(k, NULL);
                    found = r.now;
                }
            }
            cr_assert(found, "no nack");
            cr_expect_geq(r.now, t0 + cfg.probe_timeout_ms);
            cr_expect_leq(r.now, t0 + cfg.probe_timeout_ms + 10);
        }
        rig_clear(&r);
    }
    rig_free(&r);
}

/* ---------------------------------------------------------------- Lifeguard */

static double lifeguard_remaining(uint32_t n, uint32_t k, double min, double max)
{
    if (k == 0) return min;
    double frac = log(n + 1.0) / log(k + 1.0);
    double raw = max - frac * (max - min);
    return raw < min ? min : floor(raw);
}

Test(swim_unit, suspicion_timeout_shrinks_with_independent_confirmations)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    /* 10 members: min = 4 * log10(11) * 1 s, max = 6 * min, k = 4 - 2 = 2 confirmations. */
    double min = floor(4.0 * log10(11.0) * 1000.0), max = 6.0 * min;
    struct {
        const char *name;
        int accusers[6];            /* peers that gossip the suspicion, in order; 0 ends */
        double want;                /* ms from the first suspicion to DEAD */
    } cases[] = {
        {"one accuser",                         {2, 0},             max},
        {"one confirmation",                    {2, 3, 0},          lifeguard_remaining(1, 2, min, max)},
        {"repeats count once",                  {2, 3, 3, 2, 3, 0}, lifeguard_remaining(1, 2, min, max)},
        {"two confirmations reach the minimum", {2, 3, 4, 0},       min},
        {"more than k changes nothing",         {2, 3, 4, 5, 6, 0}, min},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rig_t r;
        rig_init(&r, &cfg, 9);
        r.respond = 1;                /* every probe acked: only gossip accuses peer 9 */
        rig_advance(&r, 5000);
        uint64_t t0 = r.now;
        for (int i = 0; cases[c].accusers[i]; i++)
            cr_assert_eq(gossip_claim(&r, cases[c].accusers[i], r.fid[9], r.faddr[9], 0, SUSPECT), 0);
        cr_assert_eq(rig_state(&r, 9), SUSPECT, "%s", cases[c].name);
        uint64_t due = t0 + (uint64_t)cases[c].want;
        rig_advance(&r, due - 1);
        cr_expect_eq(rig_state(&r, 9), SUSPECT, "%s: dead before %llu ms", cases[c].name,
                     (unsigned long long)(due - t0));
        rig_advance(&r, due);
        cr_expect_eq(rig_state(&r, 9), DEAD, "%s: not dead at %llu ms", cases[c].name,
                     (unsigned long long)(due - t0));
        for (int k = 1; k < 9; k++) cr_expect_eq(rig_state(&r, k), ALIVE, "%s: peer %d", cases[c].name, k);
        rig_free(&r);
    }
}

Test(swim_unit, small_cluster_uses_minimum_suspicion)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 2);           /* 3 members: n - 2 < k, so no confirmations are expected */
    r.respond = 1;
    rig_advance(&r, 3000);
    uint64_t t0 = r.now;
    cr_assert_eq(gossip_claim(&r, 1, r.fid[2], r.faddr[2], 0, SUSPECT), 0);
    rig_advance(&r, t0 + 3999);       /* min = 4 * max(1, log10(4)) * 1 s */
    cr_expect_eq(rig_state(&r, 2), SUSPECT);
    rig_advance(&r, t0 + 4000);
    cr_expect_eq(rig_state(&r, 2), DEAD);
    rig_free(&r);
}

/* Times of our probe pings (probe_seq > 0) in the outbox. */
static size_t probe_times(const rig_t *r, uint64_t *t, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nout && n < cap; i++) {
        if (r->out[i].type != T_PING) continue;
        Trib__Ping *p = trib__ping__unpack(NULL, r->out[i].len, r->out[i].body);
        if (p && p->probe_seq && !p->origin.len) t[n++] = r->out[i].at;
        trib__ping__free_unpacked(p, NULL);
    }
    return n;
}

Test(swim_unit, local_health_slows_probing_when_we_hear_nothing)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 9);
    r.respond = 0;                   /* nothing ever answers: the fault looks like ours */
    rig_advance(&r, 4000);
    cr_assert_geq(swim_health(r.s), 3);
    rig_advance(&r, 40000);
    cr_assert_eq(swim_health(r.s), (int)cfg.awareness_max - 1);
    uint64_t t[64];
    size_t n = probe_times(&r, t, 64);
    cr_assert_geq(n, 4);
    cr_expect_eq(t[n - 1] - t[n - 2], (uint64_t)cfg.probe_interval_ms * cfg.awareness_max,
                 "probe spacing %llu at full awareness", (unsigned long long)(t[n - 1] - t[n - 2]));
    /* The peers come back (refuting whatever we concluded) and answer again. */
    Trib__Member ms[9], *mp[9];
    for (int k = 1; k <= 9; k++) {
        ms[k - 1] = mk_member(r.fid[k], r.faddr[k], 5, ALIVE);
        mp[k - 1] = &ms[k - 1];
    }
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.reply = true;
    pp.members = mp;
    pp.n_members = 9;
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &pp.base), 0);
    cr_assert_eq(swim_count(r.s, ALIVE), 10);
    r.respond = 1;
    rig_clear(&r);
    rig_advance(&r, r.now + 60000);
    cr_expect_eq(swim_health(r.s), 0, "health did not recover");
    n = probe_times(&r, t, 64);
    cr_assert_geq(n, 3);
    cr_expect_eq(t[n - 1] - t[n - 2], (uint64_t)cfg.probe_interval_ms);
    rig_free(&r);
}

Test(swim_unit, relays_nacks_keep_local_health)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 9);
    r.respond = 1;
    make_id(r.no_ack_for, 9, 0);     /* peer 9 is gone; the relays say so with nacks */
    r.has_no_ack = true;
    /* Acks for everyone but 9 (respond = 1); the relays' nacks are sent by hand below. */
    uint64_t end = r.now + 60000;
    while (r.now < end) {
        size_t from = r.nout;
        rig_advance(&r, r.now + 50);
        for (size_t i = from; i < r.nout; i++) {
            if (r.out[i].type != T_PING_REQ) continue;
            int k = fake_of(&r, r.out[i].to_id);
            Trib__PingReq *q = trib__ping_req__unpack(NULL, r.out[i].len, r.out[i].body);
            Trib__Nack nk = TRIB__NACK__INIT;
            nk.probe_seq = q->probe_seq;
            nk.target = q->target;
            cr_assert_eq(rig_handle(&r, k, T_NACK, &nk.base), 0);
            trib__ping_req__free_unpacked(q, NULL);
        }
        cr_assert_eq(swim_health(r.s), 0, "nacked failures lowered our health at %llu",
                     (unsigned long long)r.now);
    }
    cr_expect_gt(swim_stats(r.s)->nacks, 0);
    cr_expect_eq(rig_state(&r, 9), DEAD);
    cr_expect_eq(swim_count(r.s, ALIVE), 9);
    rig_free(&r);
}

/* ---------------------------------------------------------------- caps, leave, restore */

Test(swim_unit, member_table_is_capped)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    cfg.max_members = 16;
    rig_t r;
    rig_init(&r, &cfg, 0);
    enum { N = 40 };
    uint8_t ids[N][32];
    char addrs[N][16];
    Trib__Member ms[N], *mp[N];
    for (int i = 0; i < N; i++) {
        make_id(ids[i], 100 + (uint32_t)i, 0);
        snprintf(addrs[i], sizeof addrs[i], "m%d:1", i);
        ms[i] = mk_member(ids[i], addrs[i], 0, ALIVE);
        mp[i] = &ms[i];
    }
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.join = true;
    pp.members = mp;
    pp.n_members = N;
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &pp.base), 0);
    cr_assert_eq(swim_count(r.s, -1), 16);
    cr_assert_eq(swim_stats(r.s)->members_dropped, N - 15);
    /* A dead member makes room for a new live one. */
    const Trib__Member *first = NULL;
    for (int i = 0; i < N && !first; i++) first = swim_find(r.s, ids[i]) ? swim_find(r.s, ids[i]) : NULL;
    cr_assert_not_null(first);
    uint8_t victim[32];
    memcpy(victim, first->id.data, 32);
    cr_assert_eq(gossip_claim(&r, 1, victim, first->addr, 0, DEAD), 0);
    uint8_t fresh[32];
    make_id(fresh, 500, 0);
    cr_assert_eq(gossip_claim(&r, 1, fresh, "fresh:1", 0, ALIVE), 0);
    cr_assert_not_null(swim_find(r.s, fresh));
    cr_assert_null(swim_find(r.s, victim));
    cr_assert_eq(swim_count(r.s, -1), 16);
    /* Every body we send stays bounded: a push-pull reply holds at most the cap. */
    rig_clear(&r);
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &pp.base), 0);
    cr_assert_eq(r.nout, 1);
    Trib__PushPull *rep = trib__push_pull__unpack(NULL, r.out[0].len, r.out[0].body);
    cr_assert_not_null(rep);
    cr_assert(rep->reply);
    cr_assert_eq(rep->n_members, 16);
    trib__push_pull__free_unpacked(rep, NULL);
    rig_free(&r);
}

/* A push-pull of n ALIVE members with ids first..first+n-1, packed. */
static uint8_t *pack_strangers(uint32_t first, size_t n, size_t *len)
{
    Trib__Member *ms = calloc(n, sizeof *ms), **mp = calloc(n, sizeof *mp);
    uint8_t (*ids)[32] = calloc(n, 32);
    cr_assert(ms && mp && ids);
    for (size_t i = 0; i < n; i++) {
        make_id(ids[i], first + (uint32_t)i, 0);
        ms[i] = mk_member(ids[i], "m:1", 0, ALIVE);
        mp[i] = &ms[i];
    }
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.reply = true;
    pp.members = mp;
    pp.n_members = n;
    *len = trib__push_pull__get_packed_size(&pp);
    uint8_t *b = malloc(*len);
    trib__push_pull__pack(&pp, b);
    free(ms);
    free(mp);
    free(ids);
    return b;
}

static double cpu_ms_of_handle(rig_t *r, const uint8_t *body, size_t len)
{
    clock_t t0 = clock();
    cr_assert_eq(swim_handle(r->s, r->now, r->fid[1], r->faddr[1], T_PUSH_PULL, body, len), 0);
    return (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC;
}

/* A table full of live members refuses strangers without scanning itself for a dead one each
 * time: a 1 MB push-pull of strangers costs about what a push-pull of known members does
 * (it cost ~10x that with a scan per stranger). */
Test(swim_unit, full_table_refuses_strangers_cheaply)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    enum { COPIES = 5 };
    size_t lfill, lstr;
    uint8_t *fill = pack_strangers(100, cfg.max_members - 1, &lfill);
    cr_assert_eq(swim_handle(r.s, r.now, r.fid[1], r.faddr[1], T_PUSH_PULL, fill, lfill), 0);
    cr_assert_eq(swim_count(r.s, ALIVE), cfg.max_members);
    /* The known-members baseline: the table's members COPIES times (repeated fields
     * concatenate), each claim a table lookup; the strangers are as many. */
    const size_t strangers = COPIES * (cfg.max_members - 1);
    size_t lknown = COPIES * lfill;
    cr_assert_leq(lknown, SWIM_MAX_BODY);
    uint8_t *known = malloc(lknown);
    for (size_t k = 0; k < COPIES; k++) memcpy(known + k * lfill, fill, lfill);
    uint8_t *str = pack_strangers(100000, strangers, &lstr);
    double base = 1e9, flood = 1e9;
    for (int i = 0; i < 3; i++) {                      /* best of 3: less scheduler noise */
        double b = cpu_ms_of_handle(&r, known, lknown), f = cpu_ms_of_handle(&r, str, lstr);
        base = b < base ? b : base;
        flood = f < flood ? f : flood;
    }
    cr_assert_eq(swim_count(r.s, -1), cfg.max_members);
    cr_assert_leq(lstr, SWIM_MAX_BODY);
    cr_assert_eq(swim_stats(r.s)->members_dropped, 3 * strangers);
    cr_assert_lt(flood, 4 * base + 5, "strangers %.1f ms, known members %.1f ms", flood, base);
    free(fill);
    free(known);
    free(str);
    rig_free(&r);
}

Test(swim_unit, leave_tells_everyone_and_goes_quiet)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 5);
    cr_assert_eq(gossip_claim(&r, 1, r.fid[5], r.faddr[5], 0, DEAD), 0);
    rig_advance(&r, 2000);
    rig_clear(&r);
    swim_leave(r.s, r.now);
    cr_assert_eq((int)swim_self(r.s)->state, LEFT);
    cr_assert_eq(swim_self(r.s)->incarnation, 1);
    cr_assert_eq(r.nout, 4, "LEFT goes to the 4 live members, not the dead one");
    for (size_t i = 0; i < r.nout; i++) {
        cr_assert_eq(r.out[i].type, T_PUSH_PULL);
        Trib__PushPull *pp = trib__push_pull__unpack(NULL, r.out[i].len, r.out[i].body);
        cr_assert(pp->reply && pp->n_members == 1);
        cr_assert(memcmp(pp->members[0]->id.data, r.self_id, 32) == 0);
        cr_assert_eq(pp->members[0]->state, LEFT);
        cr_assert_eq(pp->members[0]->incarnation, 1);
        trib__push_pull__free_unpacked(pp, NULL);
    }
    cr_assert_eq(swim_next_deadline(r.s), UINT64_MAX);
    rig_clear(&r);
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 3;
    p.target.data = r.self_id;
    p.target.len = 32;
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    swim_tick(r.s, r.now + 100000);
    cr_assert_eq(r.nout, 0, "a node that left still talks");
    rig_free(&r);
}

Test(swim_unit, restored_members_are_retried_until_they_refute)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    Trib__Member m = mk_member(r.fid[3], r.faddr[3], 4, ALIVE);
    cr_assert_eq(swim_restore(r.s, r.now, &m), 0);
    Trib__Member me = mk_member(r.self_id, "self:7470", 7, ALIVE);
    cr_assert_eq(swim_restore(r.s, r.now, &me), 0);
    cr_assert_eq(swim_self(r.s)->incarnation, 7, "our persisted incarnation is kept");
    cr_assert_eq(rig_state(&r, 3), DEAD);
    Trib__Member bad = m;
    bad.id.len = 3;
    cr_assert_eq(swim_restore(r.s, r.now, &bad), -1);
    swim_tick(r.s, r.now);
    size_t pps = 0;
    for (size_t i = 0; i < r.nout; i++) {
        if (r.out[i].type != T_PUSH_PULL) continue;
        pps++;
        cr_assert(memcmp(r.out[i].to_id, r.fid[3], 32) == 0);
    }
    cr_assert_eq(pps, 1);
    /* The same incarnation does not revive it, a refutation does. */
    cr_assert_eq(gossip_claim(&r, 3, r.fid[3], r.faddr[3], 4, ALIVE), 0);
    cr_assert_eq(rig_state(&r, 3), DEAD);
    cr_assert_eq(gossip_claim(&r, 3, r.fid[3], r.faddr[3], 5, ALIVE), 0);
    cr_assert_eq(rig_state(&r, 3), ALIVE);
    /* Retries back off: 1 s, 2 s, 4 s ... for a member that stays dead. */
    cr_assert_eq(gossip_claim(&r, 2, r.fid[3], r.faddr[3], 5, DEAD), 0);
    rig_clear(&r);
    uint64_t t0 = r.now;
    rig_advance(&r, t0 + 16000);
    uint64_t at[16];
    size_t n = 0;
    for (size_t i = 0; i < r.nout && n < 16; i++)
        if (r.out[i].type == T_PUSH_PULL && r.out[i].has_id && memcmp(r.out[i].to_id, r.fid[3], 32) == 0)
            at[n++] = r.out[i].at - t0;
    cr_assert_eq(n, 4, "retries at 1, 3, 7, 15 s, got %zu", n);
    cr_expect_eq(at[0], 1000);
    cr_expect_eq(at[1], 3000);
    cr_expect_eq(at[2], 7000);
    cr_expect_eq(at[3], 15000);
    rig_free(&r);
}

/* A restored member is the last life's word until this life hears of it: news of it (its refutation),
 * or its first two retries unanswered by the third (3 x retry_base_ms on). A routed read waits
 * meanwhile. */
Test(swim_unit, restored_members_are_unconfirmed_until_heard_of_or_two_retries_go_unanswered)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    Trib__Member m3 = mk_member(r.fid[3], r.faddr[3], 4, ALIVE), m4 = mk_member(r.fid[4], r.faddr[4], 2, LEFT);
    cr_assert_eq(swim_restore(r.s, r.now, &m3), 0);
    cr_assert_eq(swim_restore(r.s, r.now, &m4), 0);
    cr_assert(swim_unconfirmed(r.s, r.fid[3]) && swim_unconfirmed(r.s, r.fid[4]));
    cr_assert(!swim_unconfirmed(r.s, r.fid[2]), "a member never restored");
    cr_assert(!swim_unconfirmed(r.s, r.self_id));
    cr_assert_eq(swim_unconfirmed_count(r.s), 2);
    uint64_t t0 = r.now;
    swim_tick(r.s, t0);                               /* the first retry of each */
    cr_assert_eq(swim_unconfirmed_count(r.s), 2, "asked, not yet unanswered");
    cr_assert_eq(gossip_claim(&r, 3, r.fid[3], r.faddr[3], 5, ALIVE), 0);
    cr_assert_eq(rig_state(&r, 3), ALIVE);
    cr_assert(!swim_unconfirmed(r.s, r.fid[3]), "its refutation is news of it");
    cr_assert(swim_unconfirmed(r.s, r.fid[4]));
    rig_clear(&r);                                    /* a read waits: each unconfirmed one asked now */
    swim_ask_unconfirmed(r.s);
    cr_assert_eq(r.nout, 1);
    cr_assert(r.out[0].type == T_PUSH_PULL && !memcmp(r.out[0].to_id, r.fid[4], 32));
    cr_assert_eq(swim_unconfirmed_count(r.s), 1, "an extra ask is not one of its retries");
    swim_tick(r.s, t0 + cfg.retry_base_ms);          /* the second retry */
    cr_assert(swim_unconfirmed(r.s, r.fid[4]), "its second retry may still be answered");
    swim_tick(r.s, t0 + 3 * cfg.retry_base_ms - 1);
    cr_assert(swim_unconfirmed(r.s, r.fid[4]));
    swim_tick(r.s, t0 + 3 * cfg.retry_base_ms);      /* the third: the first two went unanswered */
    cr_assert(!swim_unconfirmed(r.s, r.fid[4]));
    cr_assert_eq(rig_state(&r, 4), LEFT);
    cr_assert_eq(swim_unconfirmed_count(r.s), 0);
    rig_free(&r);
}

/* A restored member handed over to another key (swim_retire) is never asked again: its retries,
 * which would confirm it, never come. It stayed unconfirmed for the life of the process, so every
 * routed read to it waited its whole read_open_ms (an HTTP thread held 2 s) instead of a 503 at once,
 * and had the loop push-pull it every 200 ms. Retired, it is confirmed: its state is final. */
Test(swim_unit, a_restored_member_retired_is_no_longer_unconfirmed)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    Trib__Member m3 = mk_member(r.fid[3], r.faddr[3], 4, ALIVE);
    cr_assert_eq(swim_restore(r.s, r.now, &m3), 0);
    cr_assert(swim_unconfirmed(r.s, r.fid[3]));
    swim_retire(r.s, r.fid[3], r.now);
    for (int k = 1; k <= 8; k++)
        swim_tick(r.s, r.now + (uint64_t)k * cfg.retry_base_ms * 4);
    cr_expect(!swim_unconfirmed(r.s, r.fid[3]), "a retired key is never asked again: nothing would confirm it");
    cr_expect_eq(swim_unconfirmed_count(r.s), 0);
    rig_free(&r);
}

Test(swim_unit, seeds_are_joined_and_retried_with_backoff)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 0);
    cr_assert_eq(swim_add_seed(r.s, "seed:7470"), 0);
    cr_assert_eq(swim_add_seed(r.s, "seed:7470"), 0);
    cr_assert_eq(swim_add_seed(r.s, "bad seed"), -1);
    uint64_t t0 = r.now;
    rig_advance(&r, t0 + 6999);
    uint64_t at[16];
    size_t n = 0;
    for (size_t i = 0; i < r.nout; i++) {
        if (r.out[i].type != T_PUSH_PULL) continue;
        cr_assert(!r.out[i].has_id, "a seed's id is unknown");
        cr_assert_str_eq(r.out[i].addr, "seed:7470");
        Trib__PushPull *pp = trib__push_pull__unpack(NULL, r.out[i].len, r.out[i].body);
        cr_assert(pp->join && !pp->reply);
        trib__push_pull__free_unpacked(pp, NULL);
        at[n++] = r.out[i].at - t0;
    }
    cr_assert_eq(n, 3);
    cr_expect_eq(at[0], 0);
    cr_expect_eq(at[1], 1000);
    cr_expect_eq(at[2], 3000);
    /* It answers: no more join attempts while it stays alive. */
    Trib__Member sm = mk_member(r.fid[1], "seed:7470", 0, ALIVE), *sp = &sm;
    Trib__PushPull rep = TRIB__PUSH_PULL__INIT;
    rep.reply = true;
    rep.members = &sp;
    rep.n_members = 1;
    cr_assert_eq(swim_handle(r.s, r.now, r.fid[1], "seed:7470", T_PUSH_PULL,
                             (uint8_t[256]){0}, 0), 0);   /* an empty request is answered */
    size_t len = trib__push_pull__get_packed_size(&rep);
    uint8_t *b = malloc(len);
    trib__push_pull__pack(&rep, b);
    cr_assert_eq(swim_handle(r.s, r.now, r.fid[1], "seed:7470", T_PUSH_PULL, b, len), 0);
    free(b);
    r.respond = 1;
    rig_clear(&r);
    rig_advance(&r, r.now + 120000);
    for (size_t i = 0; i < r.nout; i++)
        if (r.out[i].type == T_PUSH_PULL) {
            Trib__PushPull *pp = trib__push_pull__unpack(NULL, r.out[i].len, r.out[i].body);
            cr_expect(!pp->join, "joined again although the seed is alive");
            trib__push_pull__free_unpacked(pp, NULL);
        }
    rig_free(&r);
}

Test(swim_unit, piggyback_respects_budget_and_retransmit_limit)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    cfg.max_piggyback_bytes = 400;
    rig_t r;
    rig_init(&r, &cfg, 9);            /* 10 members: limit = 4 * ceil(log10(11)) = 8 */
    r.respond = 1;
    rig_advance(&r, 60000);
    rig_clear(&r);
    uint8_t x[32];
    make_id(x, 77, 0);
    cr_assert_eq(gossip_claim(&r, 1, x, "x:1", 0, ALIVE), 0);
    rig_advance(&r, r.now + 30000);
    size_t carried = 0;
    for (size_t i = 0; i < r.nout; i++) {
        Trib__Member **u = NULL;
        size_t nu = 0, bytes = 0;
        Trib__Ping *p = NULL;
        Trib__Ack *a = NULL;
        if (r.out[i].type == T_PING) {
            p = trib__ping__unpack(NULL, r.out[i].len, r.out[i].body);
            u = p->updates;
            nu = p->n_updates;
        } else if (r.out[i].type == T_ACK) {
            a = trib__ack__unpack(NULL, r.out[i].len, r.out[i].body);
            u = a->updates;
            nu = a->n_updates;
        }
        for (size_t j = 0; j < nu; j++) {
            bytes += trib__member__get_packed_size(u[j]) + 2;
            if (memcmp(u[j]->id.data, x, 32) == 0 && u[j]->state == ALIVE) carried++;
        }
        cr_expect_leq(bytes, cfg.max_piggyback_bytes);
        if (p) trib__ping__free_unpacked(p, NULL);
        if (a) trib__ack__free_unpacked(a, NULL);
    }
    cr_expect_eq(carried, 4 * 2, "the news went out %zu times", carried);
    rig_free(&r);
}

/* ================================================================ cluster rig on sim_net */

#define MAXN 256
#define MIN_SIGNED_ELEM 36      /* an update's bytes counted against the budget, at least (swim_int.h) */

typedef struct cluster cluster_t;
typedef struct {
    cluster_t *c;
    size_t idx;
    swim_t *s;
    uint8_t id[32];
    uint8_t gen;
    char addr[32];
    bool left;
} node_t;

struct cluster {
    sim_net_t *net;
    size_t n;
    node_t nodes[MAXN];
    swim_config_t cfg;
    uint64_t seed;
    bool watch;                 /* count DEAD marks of nodes that are up */
    uint64_t false_dead, curve_drops, suspects[MAXN];
    size_t max_probe_body;
    uint64_t idle_bytes;        /* every message body sent, for the idle-traffic test */
    bool sign;                  /* signed membership: ids are Ed25519 keys (swim_sign_with) */
};

static node_t *node_by_addr(cluster_t *c, const char *addr)
{
    size_t i;
    if (sscanf(addr, "node%zu:7470", &i) != 1 || i >= c->n) return NULL;
    return &c->nodes[i];
}

static void c_send(void *ctx, const uint8_t *to_id, const char *addr, int type,
                   const uint8_t *body, size_t len)
{
    node_t *from = ctx;
    cluster_t *c = from->c;
    node_t *to = node_by_addr(c, addr);
    cr_assert_not_null(to, "send to unknown address %s", addr);
    if (to_id && memcmp(to_id, to->id, 32) != 0) {   /* CURVE would refuse the server key */
        c->curve_drops++;
        return;
    }
    if ((type == T_PING || type == T_ACK) && len > c->max_probe_body) c->max_probe_body = len;
    c->idle_bytes += len;
    sim_net_send(c->net, from->idx, to->idx, type, body, len);
}

static void c_changed(void *ctx, const Trib__Member *m, int old)
{
    node_t *me = ctx;
    cluster_t *c = me->c;
    uint32_t idx;
    memcpy(&idx, m->id.data, 4);
    if (c->sign)                                  /* a key says nothing of its index */
        for (idx = 0; idx < c->n && memcmp(c->nodes[idx].id, m->id.data, 32) != 0; idx++) {}
    if (idx >= c->n || memcmp(c->nodes[idx].id, m->id.data, 32) != 0) return;
    if (m->state == SUSPECT) c->suspects[idx]++;
    if (getenv("SWIM_TRACE") && idx == (uint32_t)atoi(getenv("SWIM_TRACE")))   /* debugging aid */
        fprintf(stderr, "t=%llu node %zu: %u %s->%s inc %llu (n=%zu)\n", (unsigned long long)sim_net_now(c->net),
                me->idx, idx, old < 0 ? "new" : swim_state_name(old), swim_state_name(m->state),
                (unsigned long long)m->incarnation, swim_count(me->s, -1));
    if (c->watch && m->state == DEAD && sim_net_is_up(c->net, idx) && !c->nodes[idx].left)
        c->false_dead++;
}

static void c_wake_node(cluster_t *c, size_t i)
{
    node_t *nd = &c->nodes[i];
    uint64_t now = sim_net_now(c->net);
    swim_tick(nd->s, now);
    uint64_t d = swim_next_deadline(nd->s);
    cr_assert_gt(d, now, "node %zu: tick left a due timer", i);
    sim_net_set_wake(c->net, i, d);
}

static void c_wake(void *ctx, size_t node) { c_wake_node(ctx, node); }

static void c_deliver(void *ctx, size_t to, size_t from, int type, const uint8_t *body, size_t len)
{
    cluster_t *c = ctx;
    node_t *t = &c->nodes[to], *f = &c->nodes[from];
    int rc = swim_handle(t->s, sim_net_now(c->net), f->id, f->addr, type, body, len);
    cr_assert_eq(rc, 0, "node %zu rejected a message of type %d from node %zu", to, type, from);
    sim_net_set_wake(c->net, to, swim_next_deadline(t->s));
}

static void node_start(cluster_t *c, size_t i, uint64_t inc)
{
    node_t *nd = &c->nodes[i];
    nd->c = c;
    nd->idx = i;
    nd->left = false;
    make_id(nd->id, (uint32_t)i, nd->gen);
    uint8_t sk[64], kseed[32];
    memcpy(kseed, nd->id, sizeof kseed);
    if (c->sign) cr_assert_eq(crypto_sign_seed_keypair(nd->id, sk, kseed), 0);   /* deterministic */
    snprintf(nd->addr, sizeof nd->addr, "node%zu:7470", i);
    char dom[16];
    snprintf(dom, sizeof dom, "team%zu", i);
    Trib__Member self = mk_member(nd->id, nd->addr, inc, ALIVE);
    self.domain = dom;
    self.http = "127.0.0.1:7480";
    swim_io_t io = {.ctx = nd, .send = c_send, .changed = c_changed};
    char err[200] = "";
    nd->s = swim_new(&c->cfg, &self, &io, mix(c->seed * 1000003u + i * 7919u + nd->gen), err, sizeof err);
    cr_assert_not_null(nd->s, "%s", err);
    if (c->sign) cr_assert_eq(swim_sign_with(nd->s, sk), 0);
    sim_net_set_up(c->net, i, 1);
    sim_net_set_wake(c->net, i, sim_net_now(c->net));
}

static cluster_t *cluster_make(size_t n, const swim_config_t *cfg, uint64_t seed, bool sign)
{
    cr_assert_leq(n, MAXN);
    cluster_t *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->n = n;
    c->sign = sign;
    /* SWIM_SEED=k explores other (still deterministic) runs of every cluster test. */
    c->seed = getenv("SWIM_SEED") ? seed ^ mix(strtoull(getenv("SWIM_SEED"), NULL, 10)) : seed;
    if (cfg) c->cfg = *cfg;
    else swim_config_default(&c->cfg);
    sim_handlers_t h = {.ctx = c, .deliver = c_deliver, .wake = c_wake};
    c->net = sim_net_new(n, c->seed, &h);
    cr_assert_not_null(c->net);
    for (size_t i = 0; i < n; i++) node_start(c, i, 0);
    return c;
}

static cluster_t *cluster_new(size_t n, const swim_config_t *cfg, uint64_t seed)
{
    return cluster_make(n, cfg, seed, false);
}

static void cluster_join(cluster_t *c, size_t seed)
{
    for (size_t i = 0; i < c->n; i++)
        if (i != seed) cr_assert_eq(swim_add_seed(c->nodes[i].s, c->nodes[seed].addr), 0);
}

static void cluster_free(cluster_t *c)
{
    for (size_t i = 0; i < c->n; i++) swim_destroy(&c->nodes[i].s);
    sim_net_destroy(&c->net);
    free(c);
}

static bool is_live(const cluster_t *c, size_t i)
{
    return sim_net_is_up(c->net, i) && !c->nodes[i].left;
}

/* Every live node counts `want` ALIVE members and sees every live node ALIVE. */
static bool converged(cluster_t *c, size_t want)
{
    for (size_t i = 0; i < c->n; i++) {
        if (!is_live(c, i)) continue;
        if (swim_count(c->nodes[i].s, ALIVE) != want) return false;
    }
    return true;
}

/* How many live nodes (other than x) see node x in `state`. */
static size_t views(cluster_t *c, size_t x, int state)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (i == x || !is_live(c, i)) continue;
        const Trib__Member *m = swim_find(c->nodes[i].s, c->nodes[x].id);
        if (m && (int)m->state == state) k++;
    }
    return k;
}

static size_t live_count(const cluster_t *c, size_t except)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) k += i != except && is_live(c, i);
    return k;
}

typedef bool (*pred_fn)(cluster_t *c, size_t arg);

/* Runs until pred holds (checked every 100 ms) or `limit` ms pass; returns the elapsed ms or
 * UINT64_MAX. */
static uint64_t run_until(cluster_t *c, pred_fn pred, size_t arg, uint64_t limit)
{
    uint64_t t0 = sim_net_now(c->net);
    for (uint64_t t = t0; t <= t0 + limit; t += 100) {
        sim_net_run(c->net, t);
        if (pred(c, arg)) return t - t0;
    }
    return UINT64_MAX;
}

static void run_for(cluster_t *c, uint64_t ms)
{
    sim_net_run(c->net, sim_net_now(c->net) + ms);
}

static bool p_converged(cluster_t *c, size_t want) { return converged(c, want); }

/* Every live node knows `want` members none of which it holds dead or left. */
static bool p_present(cluster_t *c, size_t want)
{
    for (size_t i = 0; i < c->n; i++)
        if (is_live(c, i) &&
            swim_count(c->nodes[i].s, ALIVE) + swim_count(c->nodes[i].s, SUSPECT) != want)
            return false;
    return true;
}
static bool p_dead_everywhere(cluster_t *c, size_t x) { return views(c, x, DEAD) == live_count(c, x); }
static bool p_left_everywhere(cluster_t *c, size_t x) { return views(c, x, LEFT) == live_count(c, x); }
static bool p_alive_everywhere(cluster_t *c, size_t x) { return views(c, x, ALIVE) == live_count(c, x); }

/* ---------------------------------------------------------------- convergence */

static uint64_t join_time_of(size_t n, uint64_t seed, bool sign, sim_net_stats_t *st)
{
    cluster_t *c = cluster_make(n, NULL, seed, sign);
    cluster_join(c, 0);
    uint64_t t = run_until(c, p_converged, n, 60000);
    if (st) *st = *sim_net_stats(c->net);
    if (getenv("SWIM_TRACE"))
        fprintf(stderr, "%zu nodes: converged after %llu ms, %llu messages, %llu bytes\n", n,
                (unsigned long long)t, (unsigned long long)sim_net_stats(c->net)->sent,
                (unsigned long long)sim_net_stats(c->net)->bytes);
    /* signatures ride on top of the budget (swim_send.c budget_size): at most one per update */
    size_t most = c->cfg.max_piggyback_bytes + 120;
    cr_expect_leq(c->max_probe_body, sign ? most + most / MIN_SIGNED_ELEM * 66 : most, "a ping/ack body of %zu bytes",
                  c->max_probe_body);
    cr_expect_eq(c->curve_drops, 0);
    for (size_t i = 0; sign && i < n; i++)
        cr_expect_eq(swim_stats(c->nodes[i].s)->claims_refused[SWIM_REFUSED_FORGED] +
                     swim_stats(c->nodes[i].s)->claims_refused[SWIM_REFUSED_UNSIGNED], 0, "node %zu refused claims", i);
    cluster_free(c);
    return t;
}

static uint64_t join_time(size_t n, uint64_t seed, sim_net_stats_t *st) { return join_time_of(n, seed, false, st); }

/* Body bytes per node per second of a settled, idle cluster of n over 300 s (ten push-pull periods). */
static double idle_bytes_per_node(size_t n, uint64_t seed)
{
    cluster_t *c = cluster_new(n, NULL, seed);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, n, 60000), 60000, "%zu nodes did not converge", n);
    run_for(c, 30000);
    c->idle_bytes = 0;
    run_for(c, 300000);
    double v = (double)c->idle_bytes / (double)n / 300.0;
    cluster_free(c);
    return v;
}

/* SWIM's promise: constant load per member. The periodic push-pull opens with a 16-byte summary of
 * the member table and exchanges the tables only when they differ, so idle traffic per node does not
 * grow with the federation (it carried the whole table every 30 s: O(N) bytes per node). */
Test(swim_cluster, idle_traffic_per_node_is_flat_in_n)
{
    double b5 = idle_bytes_per_node(5, 7), b40 = idle_bytes_per_node(40, 7);
    cr_log_info("idle SWIM body bytes/s per node: N=5 %.1f, N=40 %.1f", b5, b40);
    cr_assert_leq(b40, 1.2 * b5, "idle bytes/s per node grew from %.1f (N=5) to %.1f (N=40)", b5, b40);
}

Test(swim_cluster, hundred_nodes_join_through_one_seed)
{
    uint64_t t = join_time(100, 1, NULL);
    cr_assert_lt(t, 30000, "100 nodes converged after %llu ms", (unsigned long long)t);
}

/* Signed membership (swim_sig.c) costs a 66-byte signature on every member entry sent, outside
 * the piggyback budget (swim_send.c budget_size), so the same join, signed, sends as many messages
 * and converges as fast; only the bytes grow. No node refuses a claim (join_time_of). */
Test(swim_cluster, hundred_signed_nodes_join_through_one_seed_about_as_fast)
{
    sim_net_stats_t su, ss;
    uint64_t tu = join_time_of(100, 1, false, &su), ts = join_time_of(100, 1, true, &ss);
    cr_log_info("100 nodes join: unsigned %llu ms, %llu messages, %llu bytes; signed %llu ms, %llu messages, %llu bytes",
                (unsigned long long)tu, (unsigned long long)su.sent, (unsigned long long)su.bytes,
                (unsigned long long)ts, (unsigned long long)ss.sent, (unsigned long long)ss.bytes);
    cr_assert_lt(ts, 30000, "100 signed nodes converged after %llu ms", (unsigned long long)ts);
    cr_expect_leq(ts, tu + 200, "signed join %llu ms, unsigned %llu ms", (unsigned long long)ts, (unsigned long long)tu);
    cr_expect_leq(ss.sent, su.sent + su.sent / 20, "signed join: %llu messages, unsigned %llu",
                  (unsigned long long)ss.sent, (unsigned long long)su.sent);
}

Test(swim_cluster, signed_leave_is_seen_everywhere)
{
    cluster_t *c = cluster_make(20, NULL, 5, true);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, 20, 60000), 60000);
    swim_leave(c->nodes[7].s, sim_net_now(c->net));
    c->nodes[7].left = true;
    uint64_t t = run_until(c, p_left_everywhere, 7, 10000);
    cr_assert_leq(t, 100, "the signed LEFT took %llu ms", (unsigned long long)t);
    cluster_free(c);
}

Test(swim_cluster, two_hundred_fifty_six_nodes_join_through_one_seed)
{
    uint64_t t = join_time(256, 2, NULL);
    cr_assert_lt(t, 30000, "256 nodes converged after %llu ms", (unsigned long long)t);
}

Test(swim_cluster, runs_are_deterministic)
{
    sim_net_stats_t a, b;
    uint64_t ta = join_time(40, 9, &a), tb = join_time(40, 9, &b);
    cr_assert_eq(ta, tb);
    cr_assert_eq(a.sent, b.sent);
    cr_assert_eq(a.bytes, b.bytes);
    cr_assert_eq(a.delivered, b.delivered);
}

Test(swim_cluster, ten_percent_loss_marks_no_live_node_dead)
{
    cluster_t *c = cluster_new(100, NULL, 3);
    sim_net_set_loss(c->net, 0.10);
    c->watch = true;
    cluster_join(c, 0);
    /* Under constant loss some member is briefly suspect somewhere most of the time (until
     * it refutes), so convergence here means: everyone knows everyone, nobody holds a live
     * node dead. */
    uint64_t t = run_until(c, p_present, 100, 60000);
    cr_assert_lt(t, 60000, "no convergence under 10%% loss");
    run_for(c, 120000);
    cr_assert_eq(c->false_dead, 0, "%llu DEAD marks of live nodes", (unsigned long long)c->false_dead);
    cr_assert(p_present(c, 100));
    uint64_t sus = 0, ref = 0;
    for (size_t i = 0; i < c->n; i++) {
        sus += c->suspects[i];
        ref += swim_stats(c->nodes[i].s)->refuted;
    }
    cr_expect_gt(sus, 0, "loss never caused a suspicion: the test proves little");
    cr_expect_gt(ref, 0);
    /* Every suspicion is refuted: without loss all views settle on 100 alive. */
    sim_net_set_loss(c->net, 0);
    t = run_until(c, p_converged, 100, 15000);
    cr_assert_lt(t, 15000, "suspicions linger after the loss stops");
    cr_assert_eq(c->false_dead, 0);
    cluster_free(c);
}

/* ---------------------------------------------------------------- failure, return, leave */

/* Suspicion bound for n members with the default config, in ms. */
static uint64_t suspicion_max(const swim_config_t *cfg, size_t n)
{
    double scale = log10((double)n + 1.0);
    if (scale < 1.0) scale = 1.0;
    return (uint64_t)(floor(cfg->suspicion_mult * scale * cfg->probe_interval_ms) * cfg->suspicion_max_mult);
}

Test(swim_cluster, silent_node_is_suspected_then_dead_everywhere_then_returns)
{
    enum { N = 64, X = 17 };
    cluster_t *c = cluster_new(N, NULL, 4);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    c->watch = true;
    sim_net_set_up(c->net, X, 0);    /* stops responding */
    uint64_t bound = suspicion_max(&c->cfg, N) + 5000;
    uint64_t t = run_until(c, p_dead_everywhere, X, bound);
    cr_assert_leq(t, bound, "not dead everywhere within %llu ms", (unsigned long long)bound);
    cr_assert_gt(c->suspects[X], 0, "never suspected before dead");
    cr_assert_eq(c->false_dead, 0);
    for (size_t i = 0; i < N; i++)
        if (i != X) cr_assert_eq(swim_count(c->nodes[i].s, ALIVE), N - 1);

    /* It restarts with a fresh state at incarnation 0; the cluster says it is dead at >= 0,
     * so it must refute with a higher incarnation to come back. */
    swim_destroy(&c->nodes[X].s);
    node_start(c, X, 0);
    cr_assert_eq(swim_add_seed(c->nodes[X].s, c->nodes[0].addr), 0);
    t = run_until(c, p_converged, N, 20000);
    cr_assert_leq(t, 20000, "restarted node not alive everywhere");
    cr_assert_gt(swim_self(c->nodes[X].s)->incarnation, 0);
    cr_assert_eq(c->false_dead, 0);
    cluster_free(c);
}

Test(swim_cluster, paused_node_refutes_when_it_wakes)
{
    enum { N = 32, X = 5 };
    cluster_t *c = cluster_new(N, NULL, 5);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    sim_net_set_up(c->net, X, 0);    /* a long pause: it neither runs nor hears */
    cr_assert_lt(run_until(c, p_dead_everywhere, X, 60000), 60000);
    sim_net_set_up(c->net, X, 1);    /* resumes with its old state, thinking all is well */
    c_wake_node(c, X);
    uint64_t t = run_until(c, p_converged, N, 30000);
    cr_assert_lt(t, 30000, "paused node not back");
    cr_assert_gt(swim_self(c->nodes[X].s)->incarnation, 0);
    cr_assert_gt(swim_stats(c->nodes[X].s)->refuted, 0);
    cluster_free(c);
}

Test(swim_cluster, graceful_leave_is_seen_everywhere_at_once)
{
    enum { N = 50, X = 9 };
    cluster_t *c = cluster_new(N, NULL, 6);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    swim_leave(c->nodes[X].s, sim_net_now(c->net));
    c->nodes[X].left = true;
    uint64_t t = run_until(c, p_left_everywhere, X, 1000);
    cr_assert_leq(t, 100, "LEFT took %llu ms", (unsigned long long)t);
    run_for(c, 120000);               /* it stays LEFT (not suspected, not dead) */
    cr_assert(p_left_everywhere(c, X));
    cr_assert_eq(c->suspects[X], 0);
    cr_assert(converged(c, N - 1));
    cluster_free(c);
}

Test(swim_cluster, suspected_but_alive_node_refutes)
{
    enum { N = 30, X = 3, ACCUSER = 4 };
    cluster_t *c = cluster_new(N, NULL, 7);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    c->watch = true;
    /* ACCUSER believes X suspect and gossips it (a wrong local conclusion). */
    uint64_t inc = swim_self(c->nodes[X].s)->incarnation;
    Trib__Member acc = mk_member(c->nodes[X].id, c->nodes[X].addr, inc, SUSPECT), *ap = &acc;
    Trib__Ping p = TRIB__PING__INIT;
    p.target.data = c->nodes[ACCUSER].id;
    p.target.len = 32;
    p.updates = &ap;
    p.n_updates = 1;
    size_t len = trib__ping__get_packed_size(&p);
    uint8_t *b = malloc(len);
    trib__ping__pack(&p, b);
    cr_assert_eq(swim_handle(c->nodes[ACCUSER].s, sim_net_now(c->net), c->nodes[1].id, c->nodes[1].addr,
                             T_PING, b, len), 0);
    free(b);
    sim_net_set_wake(c->net, ACCUSER, swim_next_deadline(c->nodes[ACCUSER].s));
    cr_assert_eq((int)swim_find(c->nodes[ACCUSER].s, c->nodes[X].id)->state, SUSPECT);
    run_for(c, 30000);
    cr_assert_gt(swim_self(c->nodes[X].s)->incarnation, inc, "X did not refute");
    cr_assert(p_alive_everywhere(c, X));
    cr_assert_eq(c->false_dead, 0);
    for (size_t i = 0; i < N; i++) {
        const Trib__Member *m = swim_find(c->nodes[i].s, c->nodes[X].id);
        cr_assert_eq(m->incarnation, inc + 1, "node %zu holds X at %llu", i, (unsigned long long)m->incarnation);
    }
    cluster_free(c);
}

Test(swim_cluster, broken_link_is_bridged_by_indirect_probes)
{
    enum { N = 20, A = 2, X = 11 };
    cluster_t *c = cluster_new(N, NULL, 8);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    c->watch = true;
    sim_net_block(c->net, A, X, 1);
    sim_net_block(c->net, X, A, 1);
    run_for(c, 120000);
    cr_assert_eq(c->false_dead, 0);
    cr_assert(converged(c, N));
    const swim_stats_t *st = swim_stats(c->nodes[A].s);
    cr_assert_gt(st->indirect_probes, 0);
    cr_assert_gt(st->acks, st->rtt_count, "no probe succeeded through a relay");
    cluster_free(c);
}

Test(swim_cluster, partition_heals_on_its_own)
{
    enum { N = 40 };
    cluster_t *c = cluster_new(N, NULL, 10);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    for (size_t i = N / 2; i < N; i++) sim_net_set_group(c->net, i, 1);
    run_for(c, 90000);
    /* Each half declared the other dead. */
    /* Each half noticed: nearly every cross-half view is suspect or dead by now (a node may
     * still miss a few when the bounded gossip of them mostly went into the partition). */
    size_t cross_alive = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            const Trib__Member *m = swim_find(c->nodes[i].s, c->nodes[j].id);
            if ((i < N / 2) != (j < N / 2) && m && m->state == ALIVE) cross_alive++;
        }
    cr_assert_leq(cross_alive, N / 4, "%zu of %d cross-partition views still alive", cross_alive, N * N / 2);
    for (size_t i = 0; i < N; i++) sim_net_set_group(c->net, i, 0);
    uint64_t t = run_until(c, p_converged, N, 120000);
    cr_assert_leq(t, 120000, "partition did not heal");
    cluster_free(c);
}

Test(swim_cluster, lifeguard_raises_health_of_a_deaf_node_only)
{
    enum { N = 20, X = 6 };
    cluster_t *c = cluster_new(N, NULL, 11);
    cluster_join(c, 0);
    cr_assert_lt(run_until(c, p_converged, N, 30000), 30000);
    for (size_t i = 0; i < N; i++) if (i != X) sim_net_block(c->net, i, X, 1);   /* X hears nothing */
    run_for(c, 20000);
    cr_assert_eq(swim_health(c->nodes[X].s), (int)c->cfg.awareness_max - 1);
    /* The others lose a little: a point for each of X's accusations they refute and for a nack
     * X failed to send as their relay, won back by each probe that succeeds. */
    for (size_t i = 0; i < N; i++)
        if (i != X) cr_assert_leq(swim_health(c->nodes[i].s), 3, "node %zu lost health", i);
    for (size_t i = 0; i < N; i++) if (i != X) sim_net_block(c->net, i, X, 0);
    uint64_t t = run_until(c, p_converged, N, 120000);
    cr_assert_lt(t, 120000);
    run_for(c, 60000);
    for (size_t i = 0; i < N; i++) cr_assert_eq(swim_health(c->nodes[i].s), 0, "node %zu", i);
    cluster_free(c);
}

/* ---------------------------------------------------------------- riders (anti-entropy on probes) */

/* Anti-entropy openers ride on probe Pings: what io.rider_out gives goes on the probe, only on
 * probes (never on a gossip carrier or a relay's ping), and a receiver hands it to io.rider_in
 * only for a probe addressed to it, after its Ack went out; an oversize rider is malformed. */
Test(swim_unit, probe_pings_carry_riders)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 3);
    r.respond = 1;
    r.rider_len = 40;
    rig_clear(&r);
    rig_advance(&r, r.now + 3 * cfg.probe_interval_ms);
    int probes = 0, with = 0, carriers_with = 0;
    for (size_t i = 0; i < r.nout; i++) {
        if (r.out[i].type != T_PING) continue;
        Trib__Ping *p = trib__ping__unpack(NULL, r.out[i].len, r.out[i].body);
        cr_assert_not_null(p);
        if (p->probe_seq) {
            probes++;
            with += p->rider.len == 40 && p->rider.data[0] == 'R' && p->rider.data[39] == 'R';
        } else
            carriers_with += p->rider.len > 0;
        trib__ping__free_unpacked(p, NULL);
    }
    cr_assert_geq(probes, 3, "%d probes in 3 intervals", probes);
    cr_assert_eq(with, probes, "every probe carries the rider (%d of %d)", with, probes);
    cr_assert_eq(carriers_with, 0);
    cr_assert_eq(r.riders_asked, probes);

    /* Receiving: a probe for us with a rider -> Ack first, then rider_in with the bytes. */
    uint8_t rider[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 77;
    p.target.data = r.self_id;
    p.target.len = 32;
    p.rider.data = rider;
    p.rider.len = sizeof rider;
    rig_clear(&r);
    cr_assert_eq(rig_handle(&r, 2, T_PING, &p.base), 0);
    cr_assert_eq(r.riders_in, 1);
    cr_assert_eq(r.rider_from, 2);
    cr_assert_eq(r.rider_in_len, sizeof rider);
    cr_assert_arr_eq(r.rider_in, rider, sizeof rider);
    cr_assert_geq(r.acks_before_rider, 1, "the Ack goes out before the rider is handled");
    cr_assert_eq(r.out[0].type, T_ACK);

    /* Not for us (another target), or a gossip carrier: the rider is not handed on. */
    uint8_t other[32];
    make_id(other, 99, 0);
    p.target.data = other;
    cr_assert_eq(rig_handle(&r, 2, T_PING, &p.base), 0);
    p.target.data = r.self_id;
    p.probe_seq = 0;
    cr_assert_eq(rig_handle(&r, 2, T_PING, &p.base), 0);
    cr_assert_eq(r.riders_in, 1);

    /* Oversize: malformed, nothing applied, no Ack, no rider. */
    uint8_t *big = calloc(1, SWIM_MAX_RIDER + 1);
    p.probe_seq = 78;
    p.rider.data = big;
    p.rider.len = SWIM_MAX_RIDER + 1;
    rig_clear(&r);
    cr_assert_eq(rig_handle(&r, 2, T_PING, &p.base), -1);
    cr_assert_eq(r.nout, 0);
    cr_assert_eq(r.riders_in, 1);
    p.rider.len = SWIM_MAX_RIDER;   /* the bound itself is fine */
    cr_assert_eq(rig_handle(&r, 2, T_PING, &p.base), 0);
    cr_assert_eq(r.riders_in, 2);
    free(big);

    /* A node that gives no rider sends bare probes. */
    r.rider_len = 0;
    rig_clear(&r);
    rig_advance(&r, r.now + 2 * cfg.probe_interval_ms);
    for (size_t i = 0; i < r.nout; i++)
        if (r.out[i].type == T_PING) {
            Trib__Ping *q = trib__ping__unpack(NULL, r.out[i].len, r.out[i].body);
            cr_assert_eq(q->rider.len, 0);
            trib__ping__free_unpacked(q, NULL);
        }
    rig_free(&r);
}

/* A direct Ack leaves its target out (the sender names itself); it still completes the probe of
 * its sender, and only of its sender: an Ack without target from a relay is not the target's. A
 * relay's forwarded Ack names the target. */
Test(swim_unit, direct_acks_name_their_sender_by_the_envelope)
{
    swim_config_t cfg;
    swim_config_default(&cfg);
    rig_t r;
    rig_init(&r, &cfg, 3);
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = 5;
    p.target.data = r.self_id;
    p.target.len = 32;
    rig_clear(&r);
    cr_assert_eq(rig_handle(&r, 1, T_PING, &p.base), 0);
    cr_assert_eq(r.nout, 1);
    Trib__Ack *a = trib__ack__unpack(NULL, r.out[0].len, r.out[0].body);
    cr_assert_not_null(a);
    cr_assert_eq(a->probe_seq, 5);
    cr_assert_eq(a->target.len, 0, "our own Ack leaves the target out");
    trib__ack__free_unpacked(a, NULL);

    /* Our probe: an Ack without target from someone else does not end it; the target's does. */
    rig_clear(&r);
    rig_advance(&r, r.now + cfg.probe_interval_ms);
    int k = -1;
    uint64_t seq = 0;
    for (size_t i = 0; i < r.nout && k < 0; i++)
        if (r.out[i].type == T_PING) {
            Trib__Ping *q = trib__ping__unpack(NULL, r.out[i].len, r.out[i].body);
            if (q->probe_seq) k = fake_of(&r, r.out[i].to_id), seq = q->probe_seq;
            trib__ping__free_unpacked(q, NULL);
        }
    cr_assert_gt(k, 0, "a probe went out");
    uint64_t acks = swim_stats(r.s)->acks;
    Trib__Ack ack = TRIB__ACK__INIT;
    ack.probe_seq = seq;
    cr_assert_eq(rig_handle(&r, k == 1 ? 2 : 1, T_ACK, &ack.base), 0);
    cr_assert_eq(swim_stats(r.s)->acks, acks, "an Ack without target from another member is not the target's");
    cr_assert_eq(rig_handle(&r, k, T_ACK, &ack.base), 0);
    cr_assert_eq(swim_stats(r.s)->acks, acks + 1, "the target's own Ack without target ends the probe");
    rig_free(&r);
}
