/* tests/test_swimsig.c - signed membership (gossip/swim_sig.c, swim.h "Signed membership";
 * issue 10, DESIGN §12): what a member says of itself (alive with its addresses, left) is signed
 * by its own key, so another member can repeat it but not invent it.
 *
 * In process (suite swimsig), one swim_t in signed mode with scripted peers holding real Ed25519
 * keys: forged LEFT and ALIVE claims about a third member are refused and counted; a genuine
 * claim is applied once, verified once however often it is repeated, and relayed with its
 * signature intact; hearsay (SUSPECT, DEAD) only at an incarnation the member announced, so its
 * refutation always wins; claims about us need our own signature to move our incarnation; a key
 * rotation's LEFT is signed by the old key; another kind's signature is not a member's; random
 * claims (and garbled bodies carrying them) never leave a fact we hold without its member's valid
 * signature.
 * Real processes (suite swimsig_fed): a certified member gossips a forged LEFT, a forged ALIVE at
 * another address and an unsigned DEAD at the highest incarnation about a third node: the others
 * keep showing it alive at its real address, count and log the refusals, keep serving; its own
 * leave is still seen.
 *
 * Must not: sleep as synchronisation (poll with deadlines), leave processes or files behind. */
#include <criterion/criterion.h>

#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/swim.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

#define ALIVE   TRIB__MEMBER_STATE__ALIVE
#define SUSPECT TRIB__MEMBER_STATE__SUSPECT
#define DEAD    TRIB__MEMBER_STATE__DEAD
#define LEFT    TRIB__MEMBER_STATE__LEFT
#define T_PING      TRIB__MSG_TYPE__MSG_PING
#define T_ACK       TRIB__MSG_TYPE__MSG_ACK
#define T_PUSH_PULL TRIB__MSG_TYPE__MSG_PUSH_PULL
#define NPEERS 4

/* ================================================================ what a member signs */

/* The wire format of swim_sig.c, written out independently: "trib/member/v1\0" || id ||
 * incarnation (8 bytes, big-endian) || kind (ALIVE or LEFT) || domain, addr, http, link, each
 * prefixed by its length in one byte. The tag is what keeps another kind's signature out. */
static size_t member_facts(uint8_t *out, const char *tag, const Trib__Member *m, int kind)
{
    size_t n = strlen(tag) + 1;
    memcpy(out, tag, n);
    memcpy(out + n, m->id.data, 32);
    n += 32;
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(m->incarnation >> (8 * i));
    out[n++] = (uint8_t)kind;
    const char *strs[] = {m->domain, m->addr, m->http, m->link};
    for (int i = 0; i < 4; i++) {
        size_t l = strs[i] ? strlen(strs[i]) : 0;
        out[n++] = (uint8_t)l;
        memcpy(out + n, strs[i] ? strs[i] : "", l);
        n += l;
    }
    return n;
}

/* Signs m's facts as kind with key (under tag) into sig, and points m->sig at it. */
static void sign_as(Trib__Member *m, const identity_t *key, const char *tag, int kind, uint8_t sig[64])
{
    uint8_t buf[1024];
    size_t n = member_facts(buf, tag, m, kind);
    cr_assert_eq(crypto_sign_detached(sig, NULL, buf, n, key->sk), 0);
    m->sig.data = sig;
    m->sig.len = 64;
}

static int kind_of(int state) { return state == LEFT ? LEFT : ALIVE; }

/* 1 when m carries its own member's valid signature of its facts (as LEFT when LEFT). */
static int self_signed(const Trib__Member *m)
{
    uint8_t buf[1024];
    size_t n = member_facts(buf, "trib/member/v1", m, kind_of((int)m->state));
    return m->sig.len == 64 && crypto_sign_verify_detached(m->sig.data, buf, n, m->id.data) == 0;
}

static Trib__Member claim(const identity_t *who, const char *addr, uint64_t inc, int state)
{
    Trib__Member m = TRIB__MEMBER__INIT;
    m.id.data = (uint8_t *)who->pk;
    m.id.len = 32;
    m.domain = "d";
    m.addr = (char *)addr;
    m.http = "127.0.0.1:8080";
    m.link = "127.0.0.1:8090";
    m.incarnation = inc;
    m.state = state;
    return m;
}

/* ================================================================ rig: one signing swim_t */

typedef struct {
    int type;
    uint8_t *body;
    size_t len;
} out_t;

typedef struct {
    swim_t *s;
    uint64_t now;
    identity_t self, peer[NPEERS + 1];      /* peers 1..NPEERS */
    char paddr[NPEERS + 1][32];
    out_t *out;
    size_t nout, cap;
    int refused[SWIM_REFUSED_COUNT];        /* io.refused calls by reason */
    int told_dead;                          /* io.changed calls with a member DEAD */
    const char *watch;                      /* messages sent to this address are counted */
    int to_watch;
    const uint8_t *retired;                 /* io.retired says yes for this id */
    uint8_t refused_from[32];
} rig_t;

static void rig_send(void *ctx, const uint8_t *to_id, const char *addr, int type, const uint8_t *body, size_t len)
{
    rig_t *r = ctx;
    (void)to_id;
    r->to_watch += r->watch && !strcmp(addr, r->watch);
    if (r->nout == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->out = realloc(r->out, r->cap * sizeof *r->out);
        cr_assert_not_null(r->out);
    }
    out_t *o = &r->out[r->nout++];
    o->type = type;
    o->body = malloc(len ? len : 1);
    memcpy(o->body, body, len);
    o->len = len;
}

static void rig_refused(void *ctx, const uint8_t *from, const Trib__Member *c, int reason)
{
    rig_t *r = ctx;
    (void)c;
    cr_assert(reason >= 0 && reason < SWIM_REFUSED_COUNT);
    r->refused[reason]++;
    memcpy(r->refused_from, from, 32);
}

static void rig_changed(void *ctx, const Trib__Member *m, int old_state)
{
    rig_t *r = ctx;
    (void)old_state;
    if (m->state == DEAD) r->told_dead++;
}

static int rig_retired(void *ctx, const uint8_t id[32])
{
    rig_t *r = ctx;
    return r->retired && !memcmp(id, r->retired, 32);
}

static void rig_clear(rig_t *r)
{
    for (size_t i = 0; i < r->nout; i++) free(r->out[i].body);
    r->nout = 0;
}

static int rig_handle(rig_t *r, int from, int type, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = malloc(len ? len : 1);
    protobuf_c_message_pack(msg, b);
    int rc = swim_handle(r->s, r->now, r->peer[from].pk, r->paddr[from], type, b, len);
    free(b);
    return rc;
}

/* Claims ups[0..n) gossiped by peer `from` on one Ping. */
static int rig_gossip(rig_t *r, int from, Trib__Member **ups, size_t n)
{
    Trib__Ping p = TRIB__PING__INIT;
    p.target.data = r->self.pk;
    p.target.len = 32;
    p.updates = ups;
    p.n_updates = n;
    return rig_handle(r, from, T_PING, &p.base);
}

static int rig_gossip1(rig_t *r, int from, Trib__Member m)
{
    Trib__Member *mp = &m;
    return rig_gossip(r, from, &mp, 1);
}

/* A signing swim_t that learnt peers 1..NPEERS (each one's signed ALIVE at incarnation 1) in a
 * push-pull from peer 1. */
static void rig_init(rig_t *r)
{
    memset(r, 0, sizeof *r);
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&r->self);
    Trib__Member self = claim(&r->self, "self:7470", 0, ALIVE);
    swim_io_t io = {.ctx = r, .send = rig_send, .changed = rig_changed, .refused = rig_refused,
                    .retired = rig_retired};
    char err[200] = "";
    r->s = swim_new(NULL, &self, &io, 7, err, sizeof err);
    cr_assert_not_null(r->s, "%s", err);
    cr_assert_eq(swim_sign_with(r->s, r->self.sk), 0);
    cr_assert(self_signed(swim_self(r->s)), "self is not signed");
    r->now = 1000;
    Trib__Member ms[NPEERS], *mp[NPEERS];
    uint8_t sigs[NPEERS][64];
    for (int k = 1; k <= NPEERS; k++) {
        fx_identity(&r->peer[k]);
        snprintf(r->paddr[k], sizeof r->paddr[k], "peer%d:7470", k);
        ms[k - 1] = claim(&r->peer[k], r->paddr[k], 1, ALIVE);
        sign_as(&ms[k - 1], &r->peer[k], "trib/member/v1", ALIVE, sigs[k - 1]);
        mp[k - 1] = &ms[k - 1];
    }
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.reply = true;
    pp.members = mp;
    pp.n_members = NPEERS;
    cr_assert_eq(rig_handle(r, 1, T_PUSH_PULL, &pp.base), 0);
    cr_assert_eq(swim_count(r->s, ALIVE), NPEERS + 1);
    cr_assert_eq(swim_stats(r->s)->sigs_verified, NPEERS);
}

static void rig_free(rig_t *r)
{
    rig_clear(r);
    free(r->out);
    swim_destroy(&r->s);
}

static uint64_t refused_total(const rig_t *r)
{
    uint64_t n = 0;
    for (int i = 0; i < SWIM_REFUSED_COUNT; i++) n += swim_stats(r->s)->claims_refused[i];
    return n;
}

/* Every member we hold other than self carries its own valid signature of what we hold. */
static void assert_all_self_signed(const rig_t *r, const char *when);

typedef struct {
    const rig_t *r;
    const char *when;
} check_ctx_t;

static void check_one(void *ctx, const Trib__Member *m)
{
    check_ctx_t *c = ctx;
    cr_assert(self_signed(m), "%s: holds %s at %llu without its member's signature", c->when,
              swim_state_name((int)m->state), (unsigned long long)m->incarnation);
}

static void assert_all_self_signed(const rig_t *r, const char *when)
{
    check_ctx_t c = {r, when};
    swim_foreach(r->s, check_one, &c);
}

/* The Members of everything the rig sent (pings, acks, push-pulls) about id: calls fn on each. */
static size_t sent_about(rig_t *r, const uint8_t *id, void (*fn)(const Trib__Member *m, void *ctx), void *ctx)
{
    size_t seen = 0;
    for (size_t i = 0; i < r->nout; i++) {
        Trib__Member **ms = NULL;
        size_t n = 0;
        ProtobufCMessage *msg = NULL;
        if (r->out[i].type == T_PING) {
            Trib__Ping *p = trib__ping__unpack(NULL, r->out[i].len, r->out[i].body);
            msg = &p->base, ms = p->updates, n = p->n_updates;
        } else if (r->out[i].type == T_ACK) {
            Trib__Ack *a = trib__ack__unpack(NULL, r->out[i].len, r->out[i].body);
            msg = &a->base, ms = a->updates, n = a->n_updates;
        } else if (r->out[i].type == T_PUSH_PULL) {
            Trib__PushPull *pp = trib__push_pull__unpack(NULL, r->out[i].len, r->out[i].body);
            msg = &pp->base, ms = pp->members, n = pp->n_members;
        }
        cr_assert(msg || r->out[i].type == TRIB__MSG_TYPE__MSG_PING_REQ || r->out[i].type == TRIB__MSG_TYPE__MSG_NACK);
        for (size_t k = 0; k < n; k++)
            if (!memcmp(ms[k]->id.data, id, 32)) {
                seen++;
                fn(ms[k], ctx);
            }
        if (msg) protobuf_c_message_free_unpacked(msg, NULL);
    }
    return seen;
}

static void expect_self_signed(const Trib__Member *m, void *ctx)
{
    (void)ctx;
    cr_expect(self_signed(m), "sent %s at %llu without a valid signature", swim_state_name((int)m->state),
              (unsigned long long)m->incarnation);
}

/* Runs timers up to t (nobody answers). */
static void rig_advance(rig_t *r, uint64_t t)
{
    for (;;) {
        uint64_t d = swim_next_deadline(r->s);
        if (d > t) break;
        if (d > r->now) r->now = d;
        swim_tick(r->s, r->now);
    }
    r->now = t;
}

TestSuite(swimsig, .timeout = 60);

/* ---------------------------------------------------------------- forgeries */

Test(swimsig, a_forged_left_or_alive_about_another_member_is_refused_and_counted)
{
    rig_t r;
    rig_init(&r);
    identity_t x;
    fx_identity(&x);
    uint8_t sx[64], sf[64];
    Trib__Member ax = claim(&x, "x:7470", 3, ALIVE);
    sign_as(&ax, &x, "trib/member/v1", ALIVE, sx);
    cr_assert_eq(rig_gossip1(&r, 1, ax), 0);
    cr_assert_eq((int)swim_find(r.s, x.pk)->state, ALIVE);

    /* unsigned LEFT, at the highest incarnation: what the old code took from anyone */
    Trib__Member f = claim(&x, "x:7470", UINT64_MAX, LEFT);
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_UNSIGNED], 1);
    cr_expect_eq(r.refused[SWIM_REFUSED_UNSIGNED], 1, "io.refused not told");
    cr_expect(!memcmp(r.refused_from, r.peer[2].pk, 32), "io.refused names another sender");
    /* LEFT signed by the liar's own key */
    f = claim(&x, "x:7470", 4, LEFT);
    sign_as(&f, &r.peer[2], "trib/member/v1", LEFT, sf);
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 1);
    /* x's real ALIVE signature passed off as its LEFT at the same incarnation */
    f = claim(&x, "x:7470", 3, LEFT);
    f.sig = ax.sig;
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 2);
    /* x's real ALIVE with another address pasted in, at a higher incarnation */
    f = claim(&x, "evil:7470", 9, ALIVE);
    f.sig = ax.sig;
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 3);
    /* x's facts signed by x's key, but under another kind's tag (a key hand-over's) */
    f = claim(&x, "evil:7470", 9, ALIVE);
    sign_as(&f, &x, "trib/rotate/v1", ALIVE, sf);
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 4);
    /* ... and a member's signature is no hand-over either */
    uint8_t facts[1024];
    size_t n = member_facts(facts, "trib/member/v1", &ax, ALIVE);
    const size_t tl = sizeof "trib/member/v1";
    cr_expect(!trust_sig_ok(TRUST_KIND_ROTATE, facts + tl, n - tl, x.pk, sx), "a member signature verifies as a hand-over");
    /* a garbled signature length is a malformed body */
    f = claim(&x, "x:7470", 5, LEFT);
    f.sig.data = sf;
    f.sig.len = 63;
    uint64_t bad = swim_stats(r.s)->msgs_malformed;
    cr_assert_eq(rig_gossip1(&r, 2, f), -1);
    cr_expect_eq(swim_stats(r.s)->msgs_malformed, bad + 1);

    const Trib__Member *m = swim_find(r.s, x.pk);
    cr_assert_not_null(m);
    cr_expect_eq((int)m->state, ALIVE, "x is %s", swim_state_name((int)m->state));
    cr_expect_str_eq(m->addr, "x:7470");
    cr_expect_eq(m->incarnation, 3);
    assert_all_self_signed(&r, "after the forgeries");

    /* a forgery costs one verify per message: the rest of it that needs proof is refused unchecked */
    identity_t y;
    fx_identity(&y);
    Trib__Member many[8], *mp[8];
    uint8_t sy[64];
    for (int i = 0; i < 8; i++) {
        many[i] = claim(&y, "y:7470", (uint64_t)i + 1, ALIVE);
        sign_as(&many[i], &r.peer[3], "trib/member/v1", ALIVE, sy);
        mp[i] = &many[i];
    }
    uint64_t verified = swim_stats(r.s)->sigs_verified;
    cr_assert_eq(rig_gossip(&r, 3, mp, 8), 0);
    cr_expect_eq(swim_stats(r.s)->sigs_verified, verified + 1);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_AFTER_FORGERY], 7);
    cr_expect_null(swim_find(r.s, y.pk), "learnt a member from a forged ALIVE");
    /* the next message is judged on its own */
    sign_as(&many[0], &y, "trib/member/v1", ALIVE, sy);
    cr_assert_eq(rig_gossip(&r, 3, mp, 1), 0);
    cr_expect_not_null(swim_find(r.s, y.pk));
    rig_free(&r);
}

/* ---------------------------------------------------------------- genuine claims */

static void count_left(const Trib__Member *m, void *ctx)
{
    if (m->state == LEFT) ++*(int *)ctx;
}

Test(swimsig, a_claim_with_another_link_address_pasted_in_is_forged)
{
    rig_t r;
    rig_init(&r);
    identity_t x;
    fx_identity(&x);
    uint8_t sx[64];
    Trib__Member ax = claim(&x, "x:7470", 3, ALIVE);
    sign_as(&ax, &x, "trib/member/v1", ALIVE, sx);
    cr_assert_eq(rig_gossip1(&r, 1, ax), 0);
    /* the data link address is a signed fact: a relay must never be sent to dial an address the
     * member did not say (its records would be asked of whoever listens there) */
    Trib__Member f = claim(&x, "x:7470", 9, ALIVE);
    f.link = "evil:7471";
    f.sig = ax.sig;
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 1);
    cr_expect_str_eq(swim_find(r.s, x.pk)->link, "127.0.0.1:8090");
    identity_wipe(&x);
    rig_free(&r);
}

Test(swimsig, a_member_s_own_claims_are_relayed_intact_and_verified_once)
{
    rig_t r;
    rig_init(&r);
    identity_t x;
    fx_identity(&x);
    uint8_t sx[64], sl[64];
    Trib__Member ax = claim(&x, "x:7470", 2, ALIVE);
    sign_as(&ax, &x, "trib/member/v1", ALIVE, sx);
    uint64_t v0 = swim_stats(r.s)->sigs_verified;
    /* the same fact from every peer, on gossip and in push-pulls */
    for (int k = 1; k <= NPEERS; k++) {
        cr_assert_eq(rig_gossip1(&r, k, ax), 0);
        Trib__Member *mp = &ax;
        Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
        pp.reply = true;
        pp.members = &mp;
        pp.n_members = 1;
        cr_assert_eq(rig_handle(&r, k, T_PUSH_PULL, &pp.base), 0);
    }
    cr_expect_eq(swim_stats(r.s)->sigs_verified, v0 + 1, "verified %llu times",
                 (unsigned long long)(swim_stats(r.s)->sigs_verified - v0));
    cr_expect_eq(refused_total(&r), 0);
    const Trib__Member *m = swim_find(r.s, x.pk);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->addr, "x:7470");
    /* we pass it on (gossip, push-pull) with x's signature intact */
    rig_clear(&r);
    rig_advance(&r, r.now + 2000);
    cr_assert_eq(swim_handle(r.s, r.now, r.peer[1].pk, r.paddr[1], T_PUSH_PULL, NULL, 0), 0);
    cr_expect_gt(sent_about(&r, x.pk, expect_self_signed, NULL), 1, "x's claim was not passed on");

    /* x leaves at a higher incarnation, signing it: applied once, relayed signed */
    Trib__Member lx = claim(&x, "x:7470", 3, LEFT);
    sign_as(&lx, &x, "trib/member/v1", LEFT, sl);
    v0 = swim_stats(r.s)->sigs_verified;
    for (int k = 1; k <= NPEERS; k++) cr_assert_eq(rig_gossip1(&r, k, lx), 0);
    cr_expect_eq(swim_stats(r.s)->sigs_verified, v0 + 1);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, LEFT);
    rig_clear(&r);
    rig_advance(&r, r.now + 2000);
    cr_assert_eq(swim_handle(r.s, r.now, r.peer[2].pk, r.paddr[2], T_PUSH_PULL, NULL, 0), 0);
    int lefts = 0;
    cr_expect_gt(sent_about(&r, x.pk, expect_self_signed, NULL), 0);
    sent_about(&r, x.pk, count_left, &lefts);
    cr_expect_gt(lefts, 0, "x's LEFT was not passed on");
    assert_all_self_signed(&r, "after x left");
    rig_free(&r);
}

/* ---------------------------------------------------------------- hearsay and refutation */

Test(swimsig, hearsay_accuses_only_at_a_proven_incarnation_and_refutation_wins)
{
    rig_t r;
    rig_init(&r);
    identity_t x;
    fx_identity(&x);
    uint8_t s3[64], s5[64], s6[64];
    Trib__Member ax = claim(&x, "x:7470", 3, ALIVE);
    sign_as(&ax, &x, "trib/member/v1", ALIVE, s3);
    cr_assert_eq(rig_gossip1(&r, 1, ax), 0);

    /* DEAD at the highest incarnation, unsigned: would outbid any refutation; refused */
    cr_assert_eq(rig_gossip1(&r, 2, claim(&x, "x:7470", UINT64_MAX, DEAD)), 0);
    cr_assert_eq(rig_gossip1(&r, 2, claim(&x, "x:7470", UINT64_MAX, SUSPECT)), 0);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_UNSIGNED], 2);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, ALIVE);
    cr_expect_eq(swim_find(r.s, x.pk)->incarnation, 3);

    /* at the incarnation we hold, hearsay accuses: an unsigned DEAD is only a suspicion */
    cr_assert_eq(rig_gossip1(&r, 2, claim(&x, "x:7470", 3, DEAD)), 0);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, SUSPECT);
    assert_all_self_signed(&r, "dead at the held incarnation");
    /* x refutes with its signed ALIVE at 4: it wins */
    Trib__Member r4 = claim(&x, "x:7470", 4, ALIVE);
    uint8_t s4[64];
    sign_as(&r4, &x, "trib/member/v1", ALIVE, s4);
    cr_assert_eq(rig_gossip1(&r, 3, r4), 0);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, ALIVE);
    cr_expect_eq(swim_find(r.s, x.pk)->incarnation, 4);

    /* a SUSPECT at a higher incarnation that x did announce (its ALIVE signature at 5, at a new
     * address): taken, with x's facts at 5 */
    Trib__Member s = claim(&x, "x2:7470", 5, SUSPECT);
    Trib__Member a5 = claim(&x, "x2:7470", 5, ALIVE);
    sign_as(&a5, &x, "trib/member/v1", ALIVE, s5);
    s.sig = a5.sig;
    cr_assert_eq(rig_gossip1(&r, 2, s), 0);
    const Trib__Member *m = swim_find(r.s, x.pk);
    cr_expect_eq((int)m->state, SUSPECT);
    cr_expect_eq(m->incarnation, 5);
    cr_expect_str_eq(m->addr, "x2:7470");
    assert_all_self_signed(&r, "suspect at a proven incarnation");
    /* ... the same with the address changed is refused */
    Trib__Member d6 = claim(&x, "evil:7470", 6, DEAD);
    Trib__Member a6 = claim(&x, "x2:7470", 6, ALIVE);
    sign_as(&a6, &x, "trib/member/v1", ALIVE, s6);
    d6.sig = a6.sig;
    cr_assert_eq(rig_gossip1(&r, 2, d6), 0);
    cr_expect_eq(swim_find(r.s, x.pk)->incarnation, 5);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_FORGED], 1);
    /* and x's refutation at 6 ends the suspicion */
    cr_assert_eq(rig_gossip1(&r, 4, a6), 0);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, ALIVE);
    cr_expect_eq(swim_find(r.s, x.pk)->incarnation, 6);
    assert_all_self_signed(&r, "refuted");
    rig_free(&r);
}

/* A certified member re-sends "x DEAD" at whatever incarnation x last refuted with: each time
 * it is only a suspicion (never DEAD, never told upwards as DEAD), and x's refutation wins. */
Test(swimsig, a_repeated_dead_by_gossip_only_suspects_and_each_refutation_wins)
{
    rig_t r;
    rig_init(&r);
    identity_t x;
    fx_identity(&x);
    uint8_t sig[64];
    Trib__Member a = claim(&x, "x:7470", 1, ALIVE);
    sign_as(&a, &x, "trib/member/v1", ALIVE, sig);
    cr_assert_eq(rig_gossip1(&r, 1, a), 0);
    for (uint64_t inc = 1; inc <= 4; inc++) {
        /* the forged DEAD at the incarnation x last announced, unsigned and with x's own ALIVE
         * signature at it: both only suspect */
        cr_assert_eq(rig_gossip1(&r, 2, claim(&x, "x:7470", inc, DEAD)), 0);
        Trib__Member d = claim(&x, "x:7470", inc, DEAD);
        d.sig = a.sig;
        cr_assert_eq(rig_gossip1(&r, 3, d), 0);
        cr_expect_eq((int)swim_find(r.s, x.pk)->state, SUSPECT, "at %llu", (unsigned long long)inc);
        cr_expect_eq(r.told_dead, 0, "told DEAD at %llu", (unsigned long long)inc);
        /* x refutes at inc + 1 */
        a = claim(&x, "x:7470", inc + 1, ALIVE);
        sign_as(&a, &x, "trib/member/v1", ALIVE, sig);
        cr_assert_eq(rig_gossip1(&r, 4, a), 0);
        cr_expect_eq((int)swim_find(r.s, x.pk)->state, ALIVE, "x's refutation at %llu lost",
                     (unsigned long long)(inc + 1));
        cr_expect_eq(swim_find(r.s, x.pk)->incarnation, inc + 1);
    }
    /* a DEAD at a higher incarnation x announced (its signature) is also only a suspicion */
    Trib__Member hi = claim(&x, "x:7470", 9, ALIVE);
    uint8_t s9[64];
    sign_as(&hi, &x, "trib/member/v1", ALIVE, s9);
    hi.state = DEAD;
    cr_assert_eq(rig_gossip1(&r, 2, hi), 0);
    cr_expect_eq((int)swim_find(r.s, x.pk)->state, SUSPECT);
    cr_expect_eq(r.told_dead, 0);
    assert_all_self_signed(&r, "after the forged deaths");
    rig_free(&r);
}

static void is_alive_at(const Trib__Member *m, void *ctx)
{
    uint64_t *want = ctx;
    if (m->state == ALIVE && m->incarnation == *want && self_signed(m)) *want = 0;
}

Test(swimsig, claims_about_self_need_our_own_signature_to_move_our_incarnation)
{
    rig_t r;
    rig_init(&r);
    uint64_t inc = swim_self(r.s)->incarnation;
    /* an accusation at an incarnation we never announced: everyone refuses it, we ignore it */
    cr_assert_eq(rig_gossip1(&r, 2, claim(&r.self, "self:7470", UINT64_MAX, DEAD)), 0);
    Trib__Member f = claim(&r.self, "self:7470", inc + 7, ALIVE);
    uint8_t sf[64];
    sign_as(&f, &r.peer[2], "trib/member/v1", ALIVE, sf);
    cr_assert_eq(rig_gossip1(&r, 2, f), 0);
    cr_expect_eq(swim_self(r.s)->incarnation, inc, "an unproven claim moved our incarnation");
    cr_expect_eq(swim_stats(r.s)->refuted, 0);
    cr_expect_eq(refused_total(&r), 2);
    /* at our incarnation: refuted, and what goes out is signed */
    rig_clear(&r);
    cr_assert_eq(rig_gossip1(&r, 2, claim(&r.self, "self:7470", inc, SUSPECT)), 0);
    cr_expect_eq(swim_self(r.s)->incarnation, inc + 1);
    cr_expect(self_signed(swim_self(r.s)), "our refutation is not signed");
    uint64_t want = inc + 1;
    sent_about(&r, r.self.pk, is_alive_at, &want);
    cr_expect_eq(want, 0, "the accuser was not answered with our signed refutation");
    /* our own signed claim from an earlier life above our incarnation: refuted above it */
    Trib__Member old = claim(&r.self, "self:7470", inc + 10, LEFT);
    sign_as(&old, &r.self, "trib/member/v1", LEFT, sf);
    cr_assert_eq(rig_gossip1(&r, 3, old), 0);
    cr_expect_eq(swim_self(r.s)->incarnation, inc + 11);
    cr_expect_eq((int)swim_self(r.s)->state, ALIVE);
    cr_expect(self_signed(swim_self(r.s)));
    rig_free(&r);
}

/* A claim signed by our own key that we are alive at another address, above our incarnation (or
 * left from there at it), is another process speaking with our key: a copy of the data dir started elsewhere (a restore tried
 * on a spare machine while this node runs). It is refuted as before, and now counted with the
 * address (swim_stats: self_elsewhere, last_self_elsewhere) for the node to log: before, the two
 * fought over the node's membership and the node said nothing. Our own claims at our address (an
 * earlier life) and at our incarnation are not counted. */
Test(swimsig, our_key_alive_at_another_address_is_counted_with_the_address)
{
    rig_t r;
    rig_init(&r);
    uint64_t inc = swim_self(r.s)->incarnation;
    uint8_t sf[64];
    Trib__Member same = claim(&r.self, "self:7470", inc + 3, ALIVE);   /* an earlier life, our address */
    sign_as(&same, &r.self, "trib/member/v1", ALIVE, sf);
    cr_assert_eq(rig_gossip1(&r, 2, same), 0);
    cr_expect_eq(swim_stats(r.s)->self_elsewhere, 0, "a claim at our own address was counted");
    inc = swim_self(r.s)->incarnation;
    Trib__Member twin = claim(&r.self, "twin:7471", inc + 2, ALIVE);
    sign_as(&twin, &r.self, "trib/member/v1", ALIVE, sf);
    cr_assert_eq(rig_gossip1(&r, 2, twin), 0);
    cr_expect_eq(swim_stats(r.s)->self_elsewhere, 1);
    cr_expect_str_eq(swim_stats(r.s)->last_self_elsewhere, "twin:7471");
    cr_expect_eq(swim_self(r.s)->incarnation, inc + 3, "not refuted above the twin's incarnation");
    cr_expect_str_eq(swim_self(r.s)->addr, "self:7470");
    /* the twin's LEFT at our incarnation (it stopped): our key leaving from another address */
    inc = swim_self(r.s)->incarnation;
    Trib__Member gone = claim(&r.self, "twin:7471", inc, LEFT);
    sign_as(&gone, &r.self, "trib/member/v1", LEFT, sf);
    cr_assert_eq(rig_gossip1(&r, 3, gone), 0);
    cr_expect_eq(swim_stats(r.s)->self_elsewhere, 2);
    cr_expect_eq((int)swim_self(r.s)->state, ALIVE);
    /* an accusation at our incarnation from another address that our key did not sign is refuted
     * and counts for nothing (any admitted peer could send one: a hostile review) */
    static const Trib__MemberState kinds[] = {SUSPECT, DEAD, LEFT};
    for (size_t i = 0; i < 3; i++) {
        inc = swim_self(r.s)->incarnation;
        Trib__Member fake = claim(&r.self, "6.6.6.6:666", inc, kinds[i]);
        cr_assert_eq(rig_gossip1(&r, 3, fake), 0);
        cr_expect_eq(swim_stats(r.s)->self_elsewhere, 2, "an unsigned %d claim at another address was counted",
                     (int)kinds[i]);
        cr_expect_eq((int)swim_self(r.s)->state, ALIVE);
    }
    rig_free(&r);
}

/* ---------------------------------------------------------------- key rotation */

Test(swimsig, rekey_the_old_key_signs_its_left_and_the_new_its_alive)
{
    rig_t r;
    rig_init(&r);
    identity_t next, other;
    fx_identity(&next), fx_identity(&other);
    cr_expect_eq(swim_rekey(r.s, next.pk, other.sk, r.now), -1, "rekey took a key that is not the id's");
    cr_expect_eq(swim_rekey(r.s, next.pk, NULL, r.now), -1);
    cr_expect(!memcmp(swim_self(r.s)->id.data, r.self.pk, 32), "a refused rekey changed self");
    rig_clear(&r);
    cr_assert_eq(swim_rekey(r.s, next.pk, next.sk, r.now), 0);
    const Trib__Member *old = swim_find(r.s, r.self.pk);
    cr_assert_not_null(old);
    cr_expect_eq((int)old->state, LEFT);
    cr_expect(self_signed(old), "the old key's LEFT is not signed by it");
    cr_expect(self_signed(swim_self(r.s)), "the new key's ALIVE is not signed by it");
    /* what goes out convinces another signing node */
    rig_advance(&r, r.now + 3000);
    cr_assert_eq(swim_handle(r.s, r.now, r.peer[1].pk, r.paddr[1], T_PUSH_PULL, NULL, 0), 0);
    rig_t o;
    rig_init(&o);
    Trib__Member was = claim(&r.self, "self:7470", 0, ALIVE);
    uint8_t sw[64];
    sign_as(&was, &r.self, "trib/member/v1", ALIVE, sw);
    cr_assert_eq(rig_gossip1(&o, 1, was), 0);
    for (size_t i = 0; i < r.nout; i++)
        if (r.out[i].type == T_PUSH_PULL)
            cr_assert_eq(swim_handle(o.s, o.now, next.pk, "self:7470", T_PUSH_PULL, r.out[i].body, r.out[i].len), 0);
    cr_expect_eq(refused_total(&o), 0);
    cr_assert_not_null(swim_find(o.s, r.self.pk));
    cr_expect_eq((int)swim_find(o.s, r.self.pk)->state, LEFT);
    cr_assert_not_null(swim_find(o.s, next.pk));
    cr_expect_eq((int)swim_find(o.s, next.pk)->state, ALIVE);
    rig_free(&o);
    rig_free(&r);
}

static void count_seen(const Trib__Member *m, void *ctx)
{
    (void)m;
    ++*(int *)ctx;
}

/* A member whose key was handed over (the caller holds its signed hand-over) is left at once: not
 * probed or retried (each a claim of its old address by the key that gave it up), its ALIVE no
 * longer taken, and the LEFT we made for it, which carries no LEFT signature of its own, repeated
 * to nobody. Its own signed LEFT still replaces it, and is repeated. A stranger's ALIVE whose key
 * io.retired names is not learnt. */
Test(swimsig, a_retired_member_is_left_at_once_and_never_asked_again)
{
    rig_t r;
    rig_init(&r);
    const identity_t *old = &r.peer[2];
    cr_assert_eq(swim_retire(r.s, old->pk, r.now), 1);
    cr_expect_eq((int)swim_find(r.s, old->pk)->state, LEFT);
    cr_expect_eq(swim_retire(r.s, old->pk, r.now), 0, "retired twice");
    cr_expect_eq(swim_retire(r.s, r.self.pk, r.now), 0, "self retired");
    /* two minutes: probes, gossip, push-pulls of everyone else; nothing to or about it */
    rig_clear(&r);
    r.watch = r.paddr[2];
    rig_advance(&r, r.now + 120000);
    cr_assert_eq(swim_handle(r.s, r.now, r.peer[1].pk, r.paddr[1], T_PUSH_PULL, NULL, 0), 0);
    Trib__PushPull ask = TRIB__PUSH_PULL__INIT;
    ask.join = true;
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &ask.base), 0);   /* answered with the whole table */
    cr_expect_gt(r.nout, 0);
    int seen = 0;
    cr_expect_eq(sent_about(&r, old->pk, count_seen, &seen), 0, "its made-up LEFT was repeated %d time(s)", seen);
    cr_expect_eq(r.to_watch, 0, "%d message(s) went to its address", r.to_watch);
    /* its ALIVE at any incarnation is old news; nothing refused or counted */
    uint64_t refused = refused_total(&r);
    Trib__Member a = claim(old, r.paddr[2], 9, ALIVE);
    uint8_t sa[64];
    sign_as(&a, old, "trib/member/v1", ALIVE, sa);
    cr_assert_eq(rig_gossip1(&r, 1, a), 0);
    cr_expect_eq((int)swim_find(r.s, old->pk)->state, LEFT, "a retired member came back alive");
    cr_expect_eq(refused_total(&r), refused);
    /* a forged LEFT changes nothing; its own signed LEFT replaces ours, and goes on */
    Trib__Member f = claim(old, r.paddr[2], 2, LEFT);
    uint8_t sf[64];
    sign_as(&f, &r.peer[3], "trib/member/v1", LEFT, sf);
    cr_assert_eq(rig_gossip1(&r, 1, f), 0);
    cr_expect_eq(swim_find(r.s, old->pk)->incarnation, 1);
    Trib__Member l = claim(old, r.paddr[2], 2, LEFT);
    uint8_t sl[64];
    sign_as(&l, old, "trib/member/v1", LEFT, sl);
    cr_assert_eq(rig_gossip1(&r, 1, l), 0);
    cr_expect_eq(swim_find(r.s, old->pk)->incarnation, 2);
    cr_expect_eq((int)swim_find(r.s, old->pk)->state, LEFT);
    rig_clear(&r);
    rig_advance(&r, r.now + 120000);
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &ask.base), 0);
    cr_expect_gt(sent_about(&r, old->pk, expect_self_signed, NULL), 0, "its own LEFT is not repeated");
    cr_expect_eq(r.to_watch, 0, "%d message(s) went to its address", r.to_watch);
    /* a stranger whose key io.retired names is not learnt */
    identity_t gone;
    fx_identity(&gone);
    r.retired = gone.pk;
    Trib__Member g = claim(&gone, "gone:7470", 1, ALIVE);
    uint8_t sg[64];
    sign_as(&g, &gone, "trib/member/v1", ALIVE, sg);
    cr_assert_eq(rig_gossip1(&r, 1, g), 0);
    cr_expect_null(swim_find(r.s, gone.pk), "a retired key was learnt");
    r.retired = NULL;
    cr_assert_eq(rig_gossip1(&r, 1, g), 0);
    cr_expect_not_null(swim_find(r.s, gone.pk), "the same key, not retired, was not learnt");
    rig_free(&r);
}

/* ---------------------------------------------------------------- the cost of checking */

/* A push-pull of many fresh keys, each with its own valid ALIVE: one message costs at most
 * SWIM_VERIFY_BUDGET signature checks (the rest are refused as over_budget and learnt from the
 * next message); with the table full of live members, none at all. */
Test(swimsig, one_message_costs_at_most_the_verify_budget)
{
    enum { N = 3 * SWIM_VERIFY_BUDGET + 10 };
    static identity_t ks[N];
    static Trib__Member ms[N];
    static Trib__Member *mp[N];
    static uint8_t sigs[N][64];
    static char addrs[N][32];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(crypto_sign_keypair(ks[i].pk, ks[i].sk), 0);
        snprintf(addrs[i], sizeof addrs[i], "n%d:7470", i);
        ms[i] = claim(&ks[i], addrs[i], 1, ALIVE);
        sign_as(&ms[i], &ks[i], "trib/member/v1", ALIVE, sigs[i]);
        mp[i] = &ms[i];
    }
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.members = mp;
    pp.n_members = N;

    rig_t r;
    rig_init(&r);
    uint64_t v0 = swim_stats(r.s)->sigs_verified;
    size_t n0 = (size_t)swim_count(r.s, -1);
    cr_assert_eq(rig_handle(&r, 1, T_PUSH_PULL, &pp.base), 0);
    cr_expect_eq(swim_stats(r.s)->sigs_verified - v0, SWIM_VERIFY_BUDGET);
    cr_expect_eq(swim_stats(r.s)->claims_refused[SWIM_REFUSED_OVER_BUDGET], N - SWIM_VERIFY_BUDGET);
    cr_expect_eq(r.refused[SWIM_REFUSED_OVER_BUDGET], N - SWIM_VERIFY_BUDGET);
    cr_expect_eq((size_t)swim_count(r.s, -1), n0 + SWIM_VERIFY_BUDGET);
    /* the same body again, and again: the rest are learnt, the budget at a time */
    for (int k = 0; k < 3; k++) cr_assert_eq(rig_handle(&r, 2, T_PUSH_PULL, &pp.base), 0);
    cr_expect_eq((size_t)swim_count(r.s, -1), n0 + N);
    cr_expect_eq(swim_stats(r.s)->sigs_verified - v0, N);
    assert_all_self_signed(&r, "after the budgeted push-pulls");
    rig_free(&r);

    /* a full table of live members: strangers are dropped before any check */
    swim_config_t cfg;
    swim_config_default(&cfg);
    cfg.max_members = 8;
    identity_t me;
    fx_identity(&me);
    Trib__Member self = claim(&me, "self:7470", 0, ALIVE);
    rig_t q = {0};
    swim_io_t io = {.ctx = &q, .send = rig_send, .refused = rig_refused};
    swim_t *s = swim_new(&cfg, &self, &io, 3, NULL, 0);
    cr_assert_not_null(s);
    cr_assert_eq(swim_sign_with(s, me.sk), 0);
    size_t len = protobuf_c_message_get_packed_size(&pp.base);
    uint8_t *b = malloc(len);
    protobuf_c_message_pack(&pp.base, b);
    cr_assert_eq(swim_handle(s, 1000, ks[0].pk, addrs[0], T_PUSH_PULL, b, len), 0);
    cr_assert_eq(swim_count(s, ALIVE), 8);
    uint64_t v1 = swim_stats(s)->sigs_verified, d1 = swim_stats(s)->members_dropped;
    cr_assert_eq(swim_handle(s, 1000, ks[1].pk, addrs[1], T_PUSH_PULL, b, len), 0);
    cr_expect_eq(swim_stats(s)->sigs_verified, v1, "%llu checks with the table full",
                 (unsigned long long)(swim_stats(s)->sigs_verified - v1));
    cr_expect_eq(swim_stats(s)->members_dropped - d1, N - 7);
    free(b);
    swim_destroy(&s);
    rig_clear(&q);
    free(q.out);
}

Test(swimsig, sign_with_refuses_a_key_that_is_not_self_s)
{
    identity_t a, b;
    fx_identity(&a), fx_identity(&b);
    Trib__Member self = claim(&a, "a:1", 0, ALIVE);
    rig_t r = {0};
    swim_io_t io = {.ctx = &r, .send = rig_send};
    swim_t *s = swim_new(NULL, &self, &io, 1, NULL, 0);
    cr_assert_not_null(s);
    cr_expect_eq(swim_sign_with(s, b.sk), -1);
    uint8_t pasted[64];                 /* another key's secret half with our id pasted on */
    memcpy(pasted, b.sk, 32);
    memcpy(pasted + 32, a.pk, 32);
    cr_expect_eq(swim_sign_with(s, pasted), -1);
    cr_expect_eq(swim_self(s)->sig.len, 0);
    cr_expect_eq(swim_sign_with(s, a.sk), 0);
    cr_expect(self_signed(swim_self(s)));
    swim_destroy(&s);
}

/* ---------------------------------------------------------------- bounded random input */

static uint64_t next_rand(uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return *rng >> 33;
}

Test(swimsig, random_claims_never_leave_a_fact_without_its_member_s_signature)
{
    rig_t r;
    rig_init(&r);
    enum { NX = 6 };
    identity_t xs[NX];
    for (int i = 0; i < NX; i++) fx_identity(&xs[i]);
    const char *addrs[] = {"x:1", "y:2", "evil:3"};
    uint64_t rng = 0x5eed;
#define NEXT() next_rand(&rng)
    uint8_t sigs[8][64];
    for (int it = 0; it < 3000; it++) {
        Trib__Member ms[8], *mp[8];
        size_t n = 1 + NEXT() % 8;
        for (size_t k = 0; k < n; k++) {
            int who = (int)(NEXT() % (NX + 1));
            const identity_t *id = who == NX ? &r.self : &xs[who];
            ms[k] = claim(id, addrs[NEXT() % 3], NEXT() % 6, (int)(NEXT() % 4));
            switch (NEXT() % 5) {
            case 0: break;                                          /* unsigned */
            case 1: sign_as(&ms[k], id, "trib/member/v1", kind_of((int)ms[k].state), sigs[k]); break;
            case 2: sign_as(&ms[k], id, "trib/member/v1", (int)(NEXT() % 4), sigs[k]); break;  /* any kind */
            case 3: sign_as(&ms[k], &r.peer[1], "trib/member/v1", kind_of((int)ms[k].state), sigs[k]); break;
            default:                                                /* a valid one, then a byte flipped */
                sign_as(&ms[k], id, "trib/member/v1", kind_of((int)ms[k].state), sigs[k]);
                sigs[k][NEXT() % 64] ^= (uint8_t)(1 + NEXT() % 255);
            }
            mp[k] = &ms[k];
        }
        int from = 1 + (int)(NEXT() % NPEERS);
        Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
        pp.reply = true;
        pp.members = mp;
        pp.n_members = n;
        Trib__Ping p = TRIB__PING__INIT;
        p.target.data = r.self.pk;
        p.target.len = 32;
        p.updates = mp;
        p.n_updates = n;
        bool push = NEXT() % 3 == 0;
        const ProtobufCMessage *msg = push ? &pp.base : &p.base;
        uint8_t body[4096];
        size_t len = protobuf_c_message_get_packed_size(msg);
        cr_assert_leq(len, sizeof body);
        protobuf_c_message_pack(msg, body);
        bool garbled = NEXT() % 4 == 0;           /* a few bytes changed, or cut short */
        for (int k = 0; garbled && k < 3; k++) body[NEXT() % len] ^= (uint8_t)(1 + NEXT() % 255);
        if (garbled && NEXT() % 2) len = NEXT() % len;
        int rc = swim_handle(r.s, r.now, r.peer[from].pk, r.paddr[from], push ? T_PUSH_PULL : T_PING, body, len);
        cr_assert(rc == 0 || (garbled && rc == -1), "a well-formed body refused (%d)", rc);
        assert_all_self_signed(&r, "random claims");
        if (it % 50 == 0) {
            rig_advance(&r, r.now + 300);
            rig_clear(&r);
            assert_all_self_signed(&r, "after timers");
        }
    }
#undef NEXT
    cr_expect_gt(refused_total(&r), 0);
    cr_expect_gt(swim_count(r.s, -1), NPEERS + 1, "nothing genuine was ever learnt");
    rig_free(&r);
}

/* ================================================================ real processes */

#define DAY_MS 86400000LL
#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static identity_t R1, R2;
static charter_t ch;
static char work[64], chpath[128], err[1024];

static void fed_setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2);
    const identity_t *roots[] = {&R1, &R2};
    cr_assert_eq(fx_charter(&ch, roots, 2, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_charter_dir(&ch, "swimsig", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
}

static void fed_teardown(void)
{
    h_cleanup_all();
    charter_free(&ch);
    fx_rmdir(work);
}

TestSuite(swimsig_fed, .init = fed_setup, .fini = fed_teardown, .timeout = 180);

/* A data dir with an identity and a certificate of domain for it (work/NAME.cert); *c gets the
 * certificate when not NULL. */
static void certified(const char *name, const char *domain, char *dir, size_t cap, identity_t *id, cert_t *c)
{
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
    const identity_t *const roots[] = {&R1, &R2};
    cert_t cc;
    int64_t t = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, domain, id->pk, t - DAY_MS, t + 90 * DAY_MS, 0, roots, 2, &cc, err, sizeof err), 0,
                 "%s", err);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.cert", work, name);
    json_t *j = cert_to_json(&cc);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    if (c) *c = cc;
    else cert_free(&cc);
}

static void start(h_node_t *n, const char *name, const char *domain, const char *dir, const char *seed)
{
    char cert[256];
    snprintf(cert, sizeof cert, "%s/%s.cert", work, name);
    int rc = seed ? h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, "--seed", seed, FAST,
                                 NULL)
                  : h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, FAST, NULL);
    cr_assert_eq(rc, 0, "chartered node %s did not start; see %s", domain, n->log);
}

typedef struct {
    h_node_t *n;
    const char *id, *state, *addr, *http;   /* NULL for any */
} member_cond_t;

/* n lists member id in state (at addr and http), each when given. */
static int member_is(void *ctx)
{
    member_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL), *m;
    size_t i;
    int ok = 0;
    json_array_foreach(json_object_get(j, "members"), i, m)
    ok |= !strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", c->id) &&
          (!c->state || !strcmp(json_string_value(json_object_get(m, "state")) ?: "", c->state)) &&
          (!c->addr || !strcmp(json_string_value(json_object_get(m, "addr")) ?: "", c->addr)) &&
          (!c->http || !strcmp(json_string_value(json_object_get(m, "http")) ?: "", c->http));
    json_decref(j);
    return ok;
}

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
    peer_client_t *pc[2];
    const identity_t *id;
    const cert_t *cert;
    const uint8_t *to[2];           /* the receivers' ids */
    const char *url[2];
    const identity_t *victim;
    const char *victim_addr;
    uint8_t fsig[64];
} forger_t;

static void send_one(forger_t *f, int i, Trib__Member *m)
{
    Trib__Ping p = TRIB__PING__INIT;
    p.target.data = (uint8_t *)f->to[i];
    p.target.len = 32;
    p.updates = &m;
    p.n_updates = 1;
    uint8_t buf[2048];
    size_t len = trib__ping__pack(&p, buf);
    peer_envelope_t e;
    peer_envelope_init(&e, f->id, "127.0.0.1:9", T_PING, buf, len);
    peer_client_send_envelope(f->pc[i], &e);
}

/* Presents mallory's certificate to both nodes, then gossips about the victim: LEFT at the
 * highest incarnation (unsigned), ALIVE at mallory's address signed by mallory's key, DEAD at the
 * highest incarnation (unsigned). Each on its own message (a forgery's message refuses the rest
 * unchecked). Holds once both nodes counted them: until mallory is admitted its messages may be
 * dropped, so each try sends all again. */
static int forgeries_counted(void *ctx)
{
    forger_t *f = ctx;
    int done = 1;
    for (int i = 0; i < 2; i++) {
        Trib__CertHello h = TRIB__CERT_HELLO__INIT;
        h.cert.data = f->cert->bytes;
        h.cert.len = f->cert->len;
        h.time_ms = fx_now_ms();
        uint8_t buf[4096];
        size_t len = trib__cert_hello__pack(&h, buf);
        peer_envelope_t e;
        peer_envelope_init(&e, f->id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CERT_HELLO, buf, len);
        peer_client_send_envelope(f->pc[i], &e);
        Trib__Member left = claim(f->victim, f->victim_addr, UINT64_MAX, LEFT);
        left.domain = "orders";
        send_one(f, i, &left);
        Trib__Member moved = claim(f->victim, "127.0.0.1:9", 1000, ALIVE);
        moved.domain = "orders";
        moved.http = "127.0.0.1:9";
        sign_as(&moved, f->id, "trib/member/v1", ALIVE, f->fsig);
        send_one(f, i, &moved);
        Trib__Member dead = claim(f->victim, f->victim_addr, UINT64_MAX, DEAD);
        dead.domain = "orders";
        send_one(f, i, &dead);
        done &= h_metric(f->url[i], "trib_swim_claims_refused_total{reason=\"unsigned\"}") >= 2 &&
                h_metric(f->url[i], "trib_swim_claims_refused_total{reason=\"forged\"}") >= 1;
    }
    return done;
}

Test(swimsig_fed, a_certified_member_cannot_make_others_see_a_third_leave_or_move)
{
    char da[256], db[256], dv[256], dm[256], seed[200];
    identity_t ia, ib, iv, im;
    cert_t mc;
    certified("a", "payments", da, sizeof da, &ia, NULL);
    certified("b", "growth", db, sizeof db, &ib, NULL);
    certified("v", "orders", dv, sizeof dv, &iv, NULL);
    certified("m", "evil", dm, sizeof dm, &im, &mc);
    h_node_t a, b, v;
    start(&a, "a", "payments", da, NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "b", "growth", db, seed);
    start(&v, "v", "orders", dv, seed);
    const char *vhttp = v.url + strlen("http://");
    member_cond_t on_a = {&a, iv.hex, "alive", v.peer, vhttp}, on_b = {&b, iv.hex, "alive", v.peer, vhttp};
    cr_assert(h_wait(member_is, &on_a, 20000), "payments does not see orders alive: %s", members_text(&a));
    cr_assert(h_wait(member_is, &on_b, 20000), "growth does not see orders alive: %s", members_text(&b));

    void *z = zmq_ctx_new();
    forger_t f = {{peer_client_new(z, a.peer, &im, ia.curve_pk), peer_client_new(z, b.peer, &im, ib.curve_pk)},
                  &im, &mc, {ia.pk, ib.pk}, {a.url, b.url}, &iv, v.peer, {0}};
    cr_assert(f.pc[0] && f.pc[1]);
    cr_assert(h_wait(forgeries_counted, &f, 20000), "the forgeries were not refused and counted: payments %s, growth %s",
              members_text(&a), members_text(&b));

    /* both still list orders at its real addresses, and nobody as left (a probe under load may
     * suspect it meanwhile: that is SWIM, and it refutes; so "alive" is waited for) */
    member_cond_t at_a = {&a, iv.hex, NULL, v.peer, vhttp}, at_b = {&b, iv.hex, NULL, v.peer, vhttp};
    cr_expect(member_is(&at_a), "payments: %s", members_text(&a));
    cr_expect(member_is(&at_b), "growth: %s", members_text(&b));
    for (int i = 0; i < 2; i++) {
        const char *url = i ? b.url : a.url;
        cr_expect_eq(h_metric(url, "trib_members{state=\"left\"}"), 0, "%s shows a member left", url);
        long st = 0;
        json_t *j = h_get_json(url, "/v1/status", &st);
        cr_expect_eq(st, 200, "%s stopped serving", url);
        json_decref(j);
    }
    cr_expect(h_wait(member_is, &on_a, 20000), "payments: %s", members_text(&a));
    cr_expect(h_wait(member_is, &on_b, 20000), "growth: %s", members_text(&b));
    /* logged, rate-limited, naming the claim */
    size_t len = 0;
    char *log = h_read_file(a.log, &len);
    cr_expect(log && strstr(log, "refused a member claim"), "payments did not log the refusal");
    size_t lines = 0;
    for (const char *p = log; p && (p = strstr(p, "refused a member claim")); p++) lines++;
    double refused = h_metric(a.url, "trib_swim_claims_refused_total{reason=\"unsigned\"}") +
                     h_metric(a.url, "trib_swim_claims_refused_total{reason=\"forged\"}");
    cr_expect(lines >= 1 && (double)lines <= refused, "%zu lines for %.0f refusals", lines, refused);
    free(log);
    peer_client_destroy(&f.pc[0]);
    peer_client_destroy(&f.pc[1]);
    zmq_ctx_term(z);
    cert_free(&mc);

    /* orders' own leave (signed by its key) is seen by both */
    cr_assert_eq(h_node_stop(&v, SIGTERM), 0);
    member_cond_t gone_a = {&a, iv.hex, "left", NULL, NULL}, gone_b = {&b, iv.hex, "left", NULL, NULL};
    cr_expect(h_wait(member_is, &gone_a, 20000), "payments did not see orders leave: %s", members_text(&a));
    cr_expect(h_wait(member_is, &gone_b, 20000), "growth did not see orders leave: %s", members_text(&b));
}
