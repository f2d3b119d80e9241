/* tests/test_peerkeys.c - which node key a chartered node dials an address with (DESIGN §12, issue
 * 10: per-node CURVE keys), and who may change it.
 *
 * In process, with the project's transport: a claim (what a message or member entry says) binds an
 * address with no key and replaces one whose dial failed, but never a key there that is not known
 * to have failed, proven or not: only an operator's seed or the owner's rebind callback (a signed
 * hand-over) does; the table of keys forgets the least recently used unproven binding at its cap;
 * each unadmitted sender is asked for its certificate (the limit is per sender, not one for all).
 * Real processes: a certified peer that advertises another node's address is refused and counted,
 * logged, and cuts nobody off; nor does a node's leaving free its address for another key.
 *
 * Must not: sleep as synchronisation (poll with deadlines), leave processes or files behind. */
#include <criterion/criterion.h>

#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/transport.h"
#include "gossip/trust.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

#define DAY_MS 86400000LL
#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static char err[1024];

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

static void teardown(void) { h_cleanup_all(); }

TestSuite(peerkeys, .init = setup, .fini = teardown, .timeout = 180);

/* ---------------------------------------------------------------- in process */

typedef struct {
    void *zctx;
    transport_t *t;
    identity_t id;
} tr_t;

static void tr_open(tr_t *x, size_t max_keys)
{
    fx_identity(&x->id);
    x->zctx = zmq_ctx_new();
    cr_assert_not_null(x->zctx);
    transport_opts_t o;
    transport_opts_default(&o);
    o.per_node_keys = 1;
    if (max_keys)
        o.max_peer_keys = max_keys;
    x->t = transport_new(x->zctx, &x->id, "127.0.0.1:0", &o, err, sizeof err);
    cr_assert_not_null(x->t, "%s", err);
}

static void tr_close(tr_t *x)
{
    transport_destroy(&x->t);
    zmq_ctx_term(x->zctx);
}

/* Polls every transport of list (n of them) until cond holds or timeout_ms passes. 1 met. */
static int pump(tr_t *const *list, int n, int (*cond)(void *), void *ctx, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return 1;
        if (peer_now_ms() > end)
            return 0;
        zmq_pollitem_t items[32];
        int k = 0;
        for (int i = 0; i < n; i++)
            k += transport_pollitems(list[i]->t, items + k, 8);
        zmq_poll(items, k, 20);
        for (int i = 0; i < n; i++) {
            transport_msg_t m;
            while (transport_recv(list[i]->t, &m) == 1)
                transport_msg_free(&m);
        }
    }
}

typedef struct {
    const transport_t *t;
    size_t field;
    uint64_t want;
} stat_cond_t;

static int stat_reached(void *ctx)
{
    stat_cond_t *c = ctx;
    const transport_stats_t *s = transport_stats(c->t);
    return *(const uint64_t *)((const char *)s + c->field) >= c->want;
}

typedef struct {
    const transport_t *t;
    const char *addr;
} proven_cond_t;

static int key_proven(void *ctx)
{
    proven_cond_t *c = ctx;
    uint8_t pk[32];
    return transport_peer_key(c->t, c->addr, pk) == 1;
}

static int ping(tr_t *from, const char *addr)
{
    return transport_send(from->t, addr, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"p", 1);
}

static const uint8_t *rebind_to;   /* the one key rebind_some accepts */

static int rebind_some(void *ctx, const char *addr, const uint8_t held[32], const uint8_t claimed[32])
{
    (void)ctx, (void)addr, (void)held;
    return rebind_to && !memcmp(claimed, rebind_to, 32);
}

static const uint8_t *admit_curve;   /* the one CURVE key allow_one admits; the rest wait for a certificate */

static int allow_one(void *ctx, const uint8_t curve_pk[32], int connect)
{
    (void)ctx, (void)connect;
    return admit_curve && !memcmp(curve_pk, admit_curve, 32) ? TRANSPORT_ADMIT : TRANSPORT_PROVISIONAL;
}

/* A member's connection opened ahead of its first message (transport_warm) goes only to a key the
 * node admits now: a member entry is signed by its own key, which anyone can mint, so a hostile
 * peer gossiping many made-up members at addresses of nothing made every node dial them all, four
 * at a time, each holding the warm-ups of real members up to 10 s behind its handshake. */
Test(peerkeys, a_warm_up_dials_only_a_key_the_node_admits)
{
    tr_t a;
    identity_t certified, minted;
    tr_open(&a, 0);
    fx_identity(&certified);
    fx_identity(&minted);
    transport_set_allow(a.t, allow_one, NULL);
    admit_curve = certified.curve_pk;
    cr_assert_eq(transport_set_peer(a.t, "127.0.0.1:9", minted.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(transport_set_peer(a.t, "127.0.0.1:10", certified.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_warm(a.t, "127.0.0.1:9", 4), -1, "a key without a certificate was warmed");
    cr_expect_eq(transport_warm(a.t, "127.0.0.1:11", 4), -1, "an address with no key was warmed");
    cr_expect_eq(transport_stats(a.t)->peers_open, 0);
    cr_expect_eq(transport_warm(a.t, "127.0.0.1:10", 4), 1, "a certified member was not warmed");
    cr_expect_eq(transport_stats(a.t)->dealers_warmed, 1);
    /* its certificate arrives: warmed then */
    admit_curve = minted.curve_pk;
    cr_expect_eq(transport_warm(a.t, "127.0.0.1:9", 4), 1);
    admit_curve = NULL;
    tr_close(&a);
}

Test(peerkeys, a_claim_replaces_only_a_key_that_failed_and_never_one_the_address_proved)
{
    tr_t a, b;
    identity_t wrong, mallory, heir;
    tr_open(&a, 0);
    tr_open(&b, 0);
    fx_identity(&wrong), fx_identity(&mallory), fx_identity(&heir);
    tr_t *both[] = {&a, &b};
    char addr[TRANSPORT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", transport_addr(b.t));
    uint8_t held[32];
    cr_assert_eq(transport_peer_key(a.t, addr, held), -1);

    /* an operator's seed with the wrong node id: held, not proven; a claim cannot replace it
     * before a dial shows it wrong */
    cr_assert_eq(transport_set_peer(a.t, addr, wrong.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_expect_eq(transport_peer_key(a.t, addr, held), 0);
    cr_expect_eq(transport_set_peer(a.t, addr, b.id.pk, TRANSPORT_PEER_CLAIM), 1);
    cr_expect_eq(transport_stats(a.t)->peer_key_refused, 1);
    cr_expect(strstr(transport_stats(a.t)->last_key_claim, addr), "%s", transport_stats(a.t)->last_key_claim);
    cr_assert_eq(ping(&a, addr), 0);
    stat_cond_t failed = {a.t, offsetof(transport_stats_t, handshake_failed_out), 3};
    cr_assert(pump(both, 2, stat_reached, &failed, 15000), "the dial with the wrong key did not fail (3 times)");

    /* failed: the claim of the key that is there now replaces it, and the next dial proves it */
    cr_assert_eq(transport_set_peer(a.t, addr, b.id.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_stats(a.t)->peer_keys_replaced, 1);
    cr_assert_eq(ping(&a, addr), 0);
    stat_cond_t got = {b.t, offsetof(transport_stats_t, msgs_in) + TRIB__MSG_TYPE__MSG_PING * sizeof(uint64_t), 1};
    cr_assert(pump(both, 2, stat_reached, &got, 15000), "the ping with the right key did not arrive");
    proven_cond_t pc = {a.t, addr};
    cr_assert(pump(both, 2, key_proven, &pc, 15000), "a successful handshake did not prove the key");

    /* proven: another certified node's claim of the address is refused, the dials keep the key */
    cr_expect_eq(transport_set_peer(a.t, addr, mallory.pk, TRANSPORT_PEER_CLAIM), 1);
    cr_expect_eq(transport_stats(a.t)->peer_key_refused, 2);
    cr_expect_eq(transport_peer_key(a.t, addr, held), 1);
    cr_expect(!memcmp(held, b.id.pk, 32), "the address changed key");
    cr_assert_eq(ping(&a, addr), 0);
    got.want = 2;
    cr_assert(pump(both, 2, stat_reached, &got, 15000), "after the refused claim, the address was cut off");

    /* what the owner accepts (a hand-over signed by the held key) replaces it, and only that */
    transport_set_rebind(a.t, rebind_some, NULL);
    rebind_to = heir.pk;
    cr_expect_eq(transport_set_peer(a.t, addr, mallory.pk, TRANSPORT_PEER_CLAIM), 1);
    cr_expect_eq(transport_set_peer(a.t, addr, heir.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_peer_key(a.t, addr, held), 0, "a new key is not proven before its dial");
    cr_expect(!memcmp(held, heir.pk, 32));
    cr_expect_eq(transport_stats(a.t)->peer_keys_replaced, 2);
    rebind_to = NULL;
    tr_close(&a);
    tr_close(&b);
}

Test(peerkeys, the_key_table_forgets_the_least_recently_used_unproven_binding_at_its_cap)
{
    tr_t a, b;
    tr_open(&a, 3);
    tr_open(&b, 0);
    tr_t *both[] = {&a, &b};
    char addr[TRANSPORT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", transport_addr(b.t));
    cr_assert_eq(transport_set_peer(a.t, addr, b.id.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(ping(&a, addr), 0);
    proven_cond_t pc = {a.t, addr};
    cr_assert(pump(both, 2, key_proven, &pc, 15000), "the dial did not prove the key");

    identity_t k[4];
    char fake[4][32];
    uint8_t held[32];
    for (int i = 0; i < 4; i++) {
        fx_identity(&k[i]);
        snprintf(fake[i], sizeof fake[i], "127.0.0.1:%d", 1001 + i);
    }
    cr_assert_eq(transport_set_peer(a.t, fake[0], k[0].pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(transport_set_peer(a.t, fake[1], k[1].pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_stats(a.t)->peer_keys_evicted, 0);
    /* full (3): the proven key is the oldest, yet the oldest unproven one goes */
    cr_assert_eq(transport_set_peer(a.t, fake[2], k[2].pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_stats(a.t)->peer_keys_evicted, 1);
    cr_expect_eq(transport_peer_key(a.t, fake[0], held), -1, "the least recently used unproven key is kept");
    cr_expect_eq(transport_peer_key(a.t, addr, held), 1, "the proven key was forgotten");
    /* a use makes a binding recent: fake[1] used, fake[2] goes next */
    cr_assert_eq(transport_set_peer(a.t, fake[1], k[1].pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(transport_set_peer(a.t, fake[3], k[3].pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_stats(a.t)->peer_keys_evicted, 2);
    cr_expect_eq(transport_peer_key(a.t, fake[2], held), -1);
    cr_expect_eq(transport_peer_key(a.t, fake[1], held), 0);
    cr_expect_eq(transport_peer_key(a.t, fake[3], held), 0);
    tr_close(&a);
    tr_close(&b);
}

/* A listener that takes every connection and closes it at once: each dial to it fails its
 * handshake with no detail, as a reset or a timeout on the path would. */
static int closer_open(char *addr, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
    return fd;
}

typedef struct {
    tr_t *x;
    int fd;
    uint64_t want;
} closer_cond_t;

/* Closes what fd accepted; holds once x counted want failed handshakes out. */
static int closer_failed(void *ctx)
{
    closer_cond_t *c = ctx;
    for (int s; (s = accept(c->fd, NULL, NULL)) >= 0;)
        close(s);
    return transport_stats(c->x->t)->handshake_failed_out >= c->want;
}

/* A dial that fails without detail (a reset, a timeout: anyone on the path can cause one) does
 * not show the key wrong: a claim of another key is still refused. Only several in a row do. */
Test(peerkeys, a_handshake_reset_does_not_open_an_address_to_any_claim)
{
    tr_t a;
    identity_t right, mallory;
    tr_open(&a, 0);
    fx_identity(&right), fx_identity(&mallory);
    char addr[TRANSPORT_ADDR_MAX];
    int fd = closer_open(addr, sizeof addr);
    cr_assert_eq(transport_set_peer(a.t, addr, right.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(ping(&a, addr), 0);
    closer_cond_t c = {&a, fd, 1};
    tr_t *one[] = {&a};
    cr_assert(pump(one, 1, closer_failed, &c, 15000), "the dial to the closing listener did not fail");
    cr_expect_eq(transport_set_peer(a.t, addr, mallory.pk, TRANSPORT_PEER_CLAIM), 1,
                 "one reset opened the address to another key's claim");
    uint8_t held[32];
    cr_expect_eq(transport_peer_key(a.t, addr, held), 0);
    cr_expect(!memcmp(held, right.pk, 32), "the address changed key");
    /* several in a row: the key is taken for wrong (a node restarted with a new key) */
    c.want = 3;
    cr_assert(pump(one, 1, closer_failed, &c, 15000), "the dials to the closing listener did not fail again");
    cr_expect_eq(transport_set_peer(a.t, addr, mallory.pk, TRANSPORT_PEER_CLAIM), 0);
    close(fd);
    tr_close(&a);
}

typedef struct {
    tr_t *x;
    const uint8_t *from;
    int ping, push;
    char push_addr[TRANSPORT_ADDR_MAX];
    uint64_t dropped;
} claim_rx_t;

/* Reads x until from's ping and push were accounted for (delivered, or dropped and counted). */
static int claims_settled(void *ctx)
{
    claim_rx_t *c = ctx;
    transport_msg_t m;
    while (transport_recv(c->x->t, &m) == 1) {
        if (!memcmp(m.sender, c->from, 32) && m.type == TRIB__MSG_TYPE__MSG_PING)
            c->ping++;
        if (!memcmp(m.sender, c->from, 32) && m.type == TRIB__MSG_TYPE__MSG_FED_PUSH) {
            c->push++;
            snprintf(c->push_addr, sizeof c->push_addr, "%s", m.sender_addr);
        }
        transport_msg_free(&m);
    }
    c->dropped = transport_stats(c->x->t)->dropped_claimed_addr;
    return c->push + c->ping + (int)c->dropped >= 2;
}

/* A message whose sender address is refused (another node's) is not delivered under that address:
 * nothing replies to the victim or acts on its address. A federation push (signed objects) goes
 * on with no address. */
Test(peerkeys, a_message_claiming_another_node_s_address_is_not_delivered_under_it)
{
    tr_t a, b;
    identity_t mallory;
    tr_open(&a, 0);
    tr_open(&b, 0);
    peer_identity(&mallory);
    char baddr[TRANSPORT_ADDR_MAX];
    snprintf(baddr, sizeof baddr, "%s", transport_addr(b.t));
    cr_assert_eq(transport_set_peer(a.t, baddr, b.id.pk, TRANSPORT_PEER_PROVEN), 0);
    peer_client_t *pc = peer_client_new(a.zctx, transport_addr(a.t), &mallory, a.id.curve_pk);
    cr_assert_not_null(pc);
    peer_envelope_t e;
    peer_envelope_init(&e, &mallory, baddr, TRIB__MSG_TYPE__MSG_PING, (const uint8_t *)"p", 1);
    cr_assert_eq(peer_client_send_envelope(pc, &e), 0);
    peer_envelope_init(&e, &mallory, baddr, TRIB__MSG_TYPE__MSG_FED_PUSH, NULL, 0);
    cr_assert_eq(peer_client_send_envelope(pc, &e), 0);
    claim_rx_t c = {&a, mallory.pk, 0, 0, "", 0};
    int64_t end = peer_now_ms() + 15000;
    while (!claims_settled(&c) && peer_now_ms() < end) {
        zmq_pollitem_t items[8];
        zmq_poll(items, transport_pollitems(a.t, items, 8), 20);
    }
    cr_assert(claims_settled(&c), "the two messages were neither delivered nor dropped");
    cr_expect_eq(transport_stats(a.t)->peer_key_refused, 2);
    cr_expect_eq(c.ping, 0, "the ping claiming b's address was delivered");
    cr_expect_eq(c.dropped, 1);
    cr_expect_eq(c.push, 1, "the federation push was dropped");
    cr_expect_str_eq(c.push_addr, "", "the push was delivered under b's address");
    uint8_t held[32];
    cr_expect_geq(transport_peer_key(a.t, baddr, held), 0);
    cr_expect(!memcmp(held, b.id.pk, 32), "b's address changed key");
    peer_client_destroy(&pc);
    tr_close(&a);
    tr_close(&b);
}

/* A flood of claims must not push out the keys the node's dials proved: with the table full of
 * proven bindings, a claim of a new address is not held (counted); an operator's seed still is. */
Test(peerkeys, a_claim_never_evicts_a_proven_binding)
{
    tr_t a, b, c;
    tr_open(&a, 2);
    tr_open(&b, 0);
    tr_open(&c, 0);
    tr_t *all[] = {&a, &b, &c};
    char baddr[TRANSPORT_ADDR_MAX], caddr[TRANSPORT_ADDR_MAX];
    snprintf(baddr, sizeof baddr, "%s", transport_addr(b.t));
    snprintf(caddr, sizeof caddr, "%s", transport_addr(c.t));
    cr_assert_eq(transport_set_peer(a.t, baddr, b.id.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(transport_set_peer(a.t, caddr, c.id.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_assert_eq(ping(&a, baddr), 0);
    cr_assert_eq(ping(&a, caddr), 0);
    proven_cond_t pb = {a.t, baddr}, pc = {a.t, caddr};
    cr_assert(pump(all, 3, key_proven, &pb, 15000), "the dial to b did not prove its key");
    cr_assert(pump(all, 3, key_proven, &pc, 15000), "the dial to c did not prove its key");

    identity_t k;
    fx_identity(&k);
    uint8_t held[32];
    cr_expect_eq(transport_set_peer(a.t, "127.0.0.1:1001", k.pk, TRANSPORT_PEER_CLAIM), -1,
                 "a claim was held in a table full of proven keys");
    cr_expect_eq(transport_stats(a.t)->peer_key_table_full, 1);
    cr_expect_eq(transport_stats(a.t)->peer_keys_evicted, 0, "a proven key was forgotten for a claim");
    cr_expect_eq(transport_peer_key(a.t, baddr, held), 1);
    cr_expect_eq(transport_peer_key(a.t, caddr, held), 1);
    cr_expect_eq(transport_peer_key(a.t, "127.0.0.1:1001", held), -1);
    /* an operator's seed makes room: the least recently used proven key (b: c is used now) goes */
    cr_assert_eq(transport_set_peer(a.t, caddr, c.id.pk, TRANSPORT_PEER_CLAIM), 0);
    cr_expect_eq(transport_set_peer(a.t, "127.0.0.1:1002", k.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_expect_eq(transport_stats(a.t)->peer_keys_evicted, 1);
    cr_expect_eq(transport_peer_key(a.t, baddr, held), -1);
    cr_expect_eq(transport_peer_key(a.t, caddr, held), 1);
    tr_close(&a);
    tr_close(&b);
    tr_close(&c);
}

static int provisional_all(void *ctx, const uint8_t curve_pk[32], int connect)
{
    (void)ctx, (void)curve_pk, (void)connect;
    return TRANSPORT_PROVISIONAL;
}

Test(peerkeys, each_unadmitted_sender_is_asked_for_its_certificate)
{
    tr_t a, x, y;
    tr_open(&a, 0);
    tr_open(&x, 0);
    tr_open(&y, 0);
    transport_set_allow(a.t, provisional_all, NULL);
    static const uint8_t mine[] = {0x0a, 0x00};
    cr_assert_eq(transport_set_hello(a.t, mine, sizeof mine, NULL, NULL), 0);
    char addr[TRANSPORT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", transport_addr(a.t));
    cr_assert_eq(transport_set_peer(x.t, addr, a.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(transport_set_peer(y.t, addr, a.id.pk, TRANSPORT_PEER_PROVEN), 0);
    /* both senders' messages are dropped as uncertified in one stretch: each is asked (one
     * limit for all asked only the first, and a hostile sender kept every other unasked) */
    cr_assert_eq(ping(&x, addr), 0);
    cr_assert_eq(ping(&y, addr), 0);
    tr_t *all[] = {&a, &x, &y};
    stat_cond_t dropped = {a.t, offsetof(transport_stats_t, dropped_uncertified), 2};
    cr_assert(pump(all, 3, stat_reached, &dropped, 15000), "the two pings did not arrive");
    cr_expect_eq(transport_stats(a.t)->cert_asks, 2, "asked %llu of the 2 senders",
                 (unsigned long long)transport_stats(a.t)->cert_asks);
    /* and each asker's hello reaches its sender */
    stat_cond_t hx = {x.t, offsetof(transport_stats_t, hellos_in), 1}, hy = {y.t, offsetof(transport_stats_t, hellos_in), 1};
    cr_expect(pump(all, 3, stat_reached, &hx, 15000), "x was not asked");
    cr_expect(pump(all, 3, stat_reached, &hy, 15000), "y was not asked");
    tr_close(&a);
    tr_close(&x);
    tr_close(&y);
}

/* A trust store of one transport, in miniature: a key is admitted once its hello came (any
 * certificate verifies here) and until it is forgotten. */
typedef struct {
    uint8_t curve[4][32];
    int n;
} mini_trust_t;

static int mini_allow(void *ctx, const uint8_t curve_pk[32], int connect)
{
    mini_trust_t *m = ctx;
    (void)connect;
    for (int i = 0; i < m->n; i++)
        if (!memcmp(m->curve[i], curve_pk, 32))
            return TRANSPORT_ADMIT;
    return TRANSPORT_PROVISIONAL;
}

static int mini_hello(void *ctx, transport_hello_t *h)
{
    mini_trust_t *m = ctx;
    uint8_t c[32];
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(c, h->sender), 0);
    if (mini_allow(m, c, 0) != TRANSPORT_ADMIT && m->n < 4)
        memcpy(m->curve[m->n++], c, 32);
    return 1;
}

/* The next message delivered by x (others are read and dropped on the way), of type type. */
typedef struct {
    tr_t *x;
    int type, got;
} type_cond_t;

static int got_type(void *ctx)
{
    type_cond_t *c = ctx;
    transport_msg_t m;
    while (!c->got && transport_recv(c->x->t, &m) == 1) {
        c->got = m.type == c->type;
        transport_msg_free(&m);
    }
    return c->got;
}

static int pump_type(tr_t *a, tr_t *b, type_cond_t *c, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;
    while (peer_now_ms() < end) {
        if (got_type(c))
            return 1;
        zmq_pollitem_t items[16];
        int k = transport_pollitems(a->t, items, 8);
        k += transport_pollitems(b->t, items + k, 8);
        zmq_poll(items, k, 20);
        transport_msg_t m;
        tr_t *other = c->x == a ? b : a;
        while (transport_recv(other->t, &m) == 1)
            transport_msg_free(&m);
    }
    return got_type(c);
}

/* One hello per pair: a's second connection to b (the other lane) opens without a hello once b's
 * accepted hello said it holds a's certificate; and when b no longer holds it, a's message is
 * dropped, b asks, and a's answer admits it again (nothing else lets it in). */
Test(peerkeys, a_second_connection_to_a_node_that_holds_our_certificate_opens_without_a_hello)
{
    tr_t a, b;
    mini_trust_t ta = {0}, tb = {0};
    tr_t *both[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        fx_identity(&both[i]->id);
        both[i]->zctx = zmq_ctx_new();
        transport_opts_t o;
        transport_opts_default(&o);
        o.per_node_keys = 1;
        o.priority_types = 1u << TRIB__MSG_TYPE__MSG_PING | 1u << TRIB__MSG_TYPE__MSG_ACK;
        both[i]->t = transport_new(both[i]->zctx, &both[i]->id, "127.0.0.1:0", &o, err, sizeof err);
        cr_assert_not_null(both[i]->t, "%s", err);
    }
    static const uint8_t cert[] = {0x0a, 0x00};
    transport_set_allow(a.t, mini_allow, &ta);
    transport_set_allow(b.t, mini_allow, &tb);
    cr_assert_eq(transport_set_hello(a.t, cert, sizeof cert, mini_hello, &ta), 0);
    cr_assert_eq(transport_set_hello(b.t, cert, sizeof cert, mini_hello, &tb), 0);
    char aa[TRANSPORT_ADDR_MAX], ba[TRANSPORT_ADDR_MAX];
    snprintf(aa, sizeof aa, "%s", transport_addr(a.t));
    snprintf(ba, sizeof ba, "%s", transport_addr(b.t));
    cr_assert_eq(transport_set_peer(a.t, ba, b.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(transport_set_peer(b.t, aa, a.id.pk, TRANSPORT_PEER_PROVEN), 0);

    /* the first connection (priority lane): a's hello asks for b's; b's, first on b's reply, says it
     * holds a's */
    cr_assert_eq(ping(&a, ba), 0);
    type_cond_t pinged = {&b, TRIB__MSG_TYPE__MSG_PING, 0};
    cr_assert(pump_type(&a, &b, &pinged, 15000), "b did not take a's ping");
    cr_assert_eq(transport_send(b.t, aa, TRIB__MSG_TYPE__MSG_ACK, (const uint8_t *)"a", 1), 0);
    stat_cond_t answered = {a.t, offsetof(transport_stats_t, hellos_in), 1};
    cr_assert(pump(both, 2, stat_reached, &answered, 15000), "b's reply did not bring its hello");
    cr_assert_eq(transport_stats(b.t)->hellos_in, 1);

    /* the second connection (the other lane): no hello, and the message is taken */
    static const uint8_t body[] = {0x08, 0x01};
    cr_assert_eq(transport_send(a.t, ba, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, body, sizeof body), 0);
    type_cond_t summary = {&b, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, 0};
    cr_assert(pump_type(&a, &b, &summary, 15000), "b did not take a's message on the second connection");
    cr_expect_eq(transport_stats(b.t)->hellos_in, 1, "%llu hellos for one pair",
                 (unsigned long long)transport_stats(b.t)->hellos_in);
    cr_expect_eq(transport_stats(a.t)->msgs_out[TRIB__MSG_TYPE__MSG_CERT_HELLO], 1);

    /* b forgets a: a's next new connection carries no hello, its message is dropped, b asks, and a's
     * answer admits it again */
    tb.n = 0;
    transport_forget(a.t, ba);
    cr_assert_eq(transport_send(a.t, ba, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, body, sizeof body), 0);
    stat_cond_t dropped = {b.t, offsetof(transport_stats_t, dropped_uncertified), 1};
    cr_assert(pump(both, 2, stat_reached, &dropped, 15000), "b took a message of a key it does not hold");
    stat_cond_t hello_again = {b.t, offsetof(transport_stats_t, hellos_in), 2};
    cr_assert(pump(both, 2, stat_reached, &hello_again, 15000), "a did not answer b's ask");
    cr_expect_eq(transport_stats(b.t)->cert_asks, 1);
    cr_assert_eq(transport_send(a.t, ba, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, body, sizeof body), 0);
    type_cond_t again = {&b, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, 0};
    cr_expect(pump_type(&a, &b, &again, 15000), "b did not take a's message once a answered");
    tr_close(&a);
    tr_close(&b);
}

/* Two nodes meeting at once: each first hello asks for the other's certificate, and each is
 * answered by the other's own first hello, already on its way: two hellos, not four; both admitted. */
Test(peerkeys, two_nodes_meeting_at_once_exchange_one_hello_each)
{
    tr_t a, b;
    mini_trust_t ta = {0}, tb = {0};
    tr_t *both[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        fx_identity(&both[i]->id);
        both[i]->zctx = zmq_ctx_new();
        transport_opts_t o;
        transport_opts_default(&o);
        o.per_node_keys = 1;
        o.priority_types = 1u << TRIB__MSG_TYPE__MSG_PING | 1u << TRIB__MSG_TYPE__MSG_ACK;
        both[i]->t = transport_new(both[i]->zctx, &both[i]->id, "127.0.0.1:0", &o, err, sizeof err);
        cr_assert_not_null(both[i]->t, "%s", err);
    }
    static const uint8_t cert[] = {0x0a, 0x00};
    transport_set_allow(a.t, mini_allow, &ta);
    transport_set_allow(b.t, mini_allow, &tb);
    cr_assert_eq(transport_set_hello(a.t, cert, sizeof cert, mini_hello, &ta), 0);
    cr_assert_eq(transport_set_hello(b.t, cert, sizeof cert, mini_hello, &tb), 0);
    char aa[TRANSPORT_ADDR_MAX], ba[TRANSPORT_ADDR_MAX];
    snprintf(aa, sizeof aa, "%s", transport_addr(a.t));
    snprintf(ba, sizeof ba, "%s", transport_addr(b.t));
    cr_assert_eq(transport_set_peer(a.t, ba, b.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(transport_set_peer(b.t, aa, a.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(ping(&a, ba), 0);          /* both before either reads: their hellos cross */
    cr_assert_eq(ping(&b, aa), 0);
    stat_cond_t ha = {a.t, offsetof(transport_stats_t, msgs_in[TRIB__MSG_TYPE__MSG_PING]), 1};
    stat_cond_t hb = {b.t, offsetof(transport_stats_t, msgs_in[TRIB__MSG_TYPE__MSG_PING]), 1};
    cr_assert(pump(both, 2, stat_reached, &ha, 15000), "a did not take b's ping");
    cr_assert(pump(both, 2, stat_reached, &hb, 15000), "b did not take a's ping");
    /* each has read the other's hello, and queued any answer ahead of its second ping on the same
     * connection: once that ping is in, so is the answer */
    cr_assert_eq(ping(&a, ba), 0);
    cr_assert_eq(ping(&b, aa), 0);
    ha.want = hb.want = 2;
    cr_assert(pump(both, 2, stat_reached, &ha, 15000), "a did not take b's second ping");
    cr_assert(pump(both, 2, stat_reached, &hb, 15000), "b did not take a's second ping");
    cr_expect_eq(transport_stats(a.t)->hellos_in, 1, "a got %llu hellos", (unsigned long long)transport_stats(a.t)->hellos_in);
    cr_expect_eq(transport_stats(b.t)->hellos_in, 1, "b got %llu hellos", (unsigned long long)transport_stats(b.t)->hellos_in);
    cr_expect_eq(ta.n, 1, "a did not admit b");
    cr_expect_eq(tb.n, 1, "b did not admit a");
    tr_close(&a);
    tr_close(&b);
}

typedef struct {
    tr_t *to;
    const uint8_t *sender;
    int got;
} from_cond_t;

/* to delivered a message whose authenticated sender is sender (other messages are dropped). */
static int got_from(void *ctx)
{
    from_cond_t *c = ctx;
    transport_msg_t m;
    while (!c->got && transport_recv(c->to->t, &m) == 1) {
        c->got = !memcmp(m.sender, c->sender, 32);
        transport_msg_free(&m);
    }
    return c->got;
}

/* Polls a and b until b delivers a message from c->sender (a's messages are read and dropped). */
static int pump_to(tr_t *a, tr_t *b, from_cond_t *c, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;
    while (peer_now_ms() < end) {
        if (got_from(c))
            return 1;
        zmq_pollitem_t items[16];
        int k = transport_pollitems(a->t, items, 8);
        k += transport_pollitems(b->t, items + k, 8);
        zmq_poll(items, k, 20);
        transport_msg_t m;
        while (transport_recv(a->t, &m) == 1)
            transport_msg_free(&m);
    }
    return got_from(c);
}

Test(peerkeys, a_rekeyed_transport_serves_its_new_key_on_the_same_address)
{
    tr_t a, b;
    tr_open(&a, 0);
    tr_open(&b, 0);
    identity_t k2;
    fx_identity(&k2);
    char addr[TRANSPORT_ADDR_MAX], baddr[TRANSPORT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", transport_addr(a.t));
    snprintf(baddr, sizeof baddr, "%s", transport_addr(b.t));
    cr_assert_eq(transport_set_peer(b.t, addr, a.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(transport_set_peer(a.t, baddr, b.id.pk, TRANSPORT_PEER_PROVEN), 0);
    from_cond_t c = {&a, b.id.pk, 0};
    cr_assert_eq(ping(&b, addr), 0);
    cr_assert(pump_to(&b, &a, &c, 15000), "a did not hear b before the rekey");

    cr_assert_eq(transport_rekey(a.t, &k2, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(transport_addr(a.t), addr, "the address changed");
    /* b, told the new key (a hand-over would), reaches a on the same address */
    cr_assert_eq(transport_set_peer(b.t, addr, k2.pk, TRANSPORT_PEER_PROVEN), 0);
    c.got = 0;
    cr_assert_eq(ping(&b, addr), 0);
    cr_assert(pump_to(&b, &a, &c, 15000), "b could not reach a under its new key");
    proven_cond_t pc = {b.t, addr};
    tr_t *both[] = {&a, &b};
    cr_assert(pump(both, 2, key_proven, &pc, 15000), "the new key's handshake did not succeed");
    /* and a now speaks as the new key */
    from_cond_t back = {&b, k2.pk, 0};
    cr_assert_eq(ping(&a, baddr), 0);
    cr_assert(pump_to(&a, &b, &back, 15000), "a's messages do not come from its new key");
    /* the old key no longer opens a connection there */
    tr_t c3;
    tr_open(&c3, 0);
    cr_assert_eq(transport_set_peer(c3.t, addr, a.id.pk, TRANSPORT_PEER_PROVEN), 0);
    cr_assert_eq(ping(&c3, addr), 0);
    tr_t *three[] = {&a, &c3};
    stat_cond_t failed = {c3.t, offsetof(transport_stats_t, handshake_failed_out), 1};
    cr_expect(pump(three, 2, stat_reached, &failed, 15000), "a dial with the old key still succeeds");
    tr_close(&c3);
    tr_close(&a);
    tr_close(&b);
}

/* ---------------------------------------------------------------- real processes */

static identity_t R1, R2;
static charter_t ch;
static char work[64], chpath[128];

static void fed_setup(void)
{
    setup();
    fx_identity(&R1), fx_identity(&R2);
    const identity_t *roots[] = {&R1, &R2};
    cr_assert_eq(fx_charter(&ch, roots, 2, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_charter_dir(&ch, "peerkeys", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
}

static void fed_teardown(void)
{
    h_cleanup_all();
    charter_free(&ch);
    fx_rmdir(work);
}

/* A data dir with an identity and a certificate of domain for it (work/NAME.cert). */
static void certified(const char *name, const char *domain, char *dir, size_t cap, identity_t *id)
{
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
    const identity_t *const roots[] = {&R1, &R2};
    cert_t c;
    int64_t t = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, domain, id->pk, t - DAY_MS, t + 90 * DAY_MS, 0, roots, 2, &c, err, sizeof err), 0,
                 "%s", err);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.cert", work, name);
    json_t *j = cert_to_json(&c);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    cert_free(&c);
}

typedef struct {
    h_node_t *n;
    const char *id, *state;
} member_cond_t;

/* n lists the member id in state (verified). */
static int member_in(void *ctx)
{
    member_cond_t *c = ctx;
    json_t *j = h_get_json(c->n->url, "/v1/members", NULL), *m;
    size_t i;
    int ok = 0;
    json_array_foreach(json_object_get(j, "members"), i, m)
    ok |= !strcmp(json_string_value(json_object_get(m, "node_id")) ?: "", c->id) &&
          !strcmp(json_string_value(json_object_get(m, "state")) ?: "", c->state) &&
          json_is_true(json_object_get(m, "verified"));
    json_decref(j);
    return ok;
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
    char *out = NULL, *eout = NULL;
    int rc = h_trib(n, NULL, &out, &eout, "publish", path, NULL);
    cr_assert_eq(rc, 0, "publish %s failed: %s %s", version, out ? out : "", eout ? eout : "");
    free(out), free(eout);
}

static void start(h_node_t *n, const char *name, const char *domain, const char *dir, const char *seed,
                  const char *advertise)
{
    char cert[256];
    snprintf(cert, sizeof cert, "%s/%s.cert", work, name);
    int rc = advertise ? h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, "--seed", seed,
                                      "--advertise", advertise, FAST, NULL)
             : seed    ? h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, "--seed", seed,
                                      FAST, NULL)
                       : h_node_start(n, domain, "--data", dir, "--charter", chpath, "--cert", cert, FAST, NULL);
    cr_assert_eq(rc, 0, "chartered node %s did not start; see %s", domain, n->log);
}

Test(peerkeys, a_certified_peer_claiming_another_node_s_address_is_refused_and_cuts_nobody_off,
     .init = fed_setup, .fini = fed_teardown)
{
    char da[256], db[256], dm[256], seed[200];
    identity_t ia, ib, im;
    certified("a", "payments", da, sizeof da, &ia);
    certified("b", "growth", db, sizeof db, &ib);
    certified("m", "evil", dm, sizeof dm, &im);
    h_node_t a, b, m;
    start(&a, "a", "payments", da, NULL, NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "b", "growth", db, seed, NULL);
    member_cond_t ma = {&b, ia.hex, "alive"};
    cr_assert(h_wait(member_in, &ma, 20000), "growth does not see payments alive and verified");
    publish(&a, "1.0.0");
    version_cond_t vc = {&b, "/v1/products/payments/settled", "1.0.0"};
    cr_assert(h_wait(has_version, &vc, 15000), "the product did not replicate to growth");

    /* mallory, certified for its own domain, advertises payments' address as its own: every
     * message it sends, its hello and its member entry claim that address */
    snprintf(seed, sizeof seed, "%s@%s", ib.hex, b.peer);
    start(&m, "m", "evil", dm, seed, a.peer);
    metric_cond_t mc = {b.url, "trib_peer_key_refused_total", 5};
    cr_assert(h_wait(metric_reached, &mc, 20000), "growth refused %.0f claims of payments' address (wanted 5)",
              h_metric(b.url, "trib_peer_key_refused_total"));
    /* and did not take mallory's messages as payments' */
    cr_expect_geq(h_metric(b.url, "trib_gossip_dropped_total{reason=\"claimed_address\"}"), 1);

    /* growth still reaches payments at its address, with its key: a new entry of payments
     * replicates, a routed read goes through, and payments is alive */
    cr_assert(h_wait(member_in, &ma, 20000), "growth no longer sees payments alive");
    publish(&a, "1.1.0");
    vc.version = "1.1.0";
    cr_assert(h_wait(has_version, &vc, 15000), "payments' new entry did not reach growth");
    char recs[256], *out = NULL, *eout = NULL;
    snprintf(recs, sizeof recs, "%s/r.ndjson", work);
    cr_assert_eq(h_write_file(recs, "{\"id\":\"x1\"}\n", 12), 0);
    cr_assert_eq(h_trib(&a, recs, &out, &eout, "put", "payments/settled", NULL), 0, "put: %s", eout ? eout : "");
    free(out), free(eout);
    double relayed = h_metric(b.url, "trib_read_batches_total{dir=\"received\"}");
    int rc = h_trib(&b, NULL, &out, &eout, "get", "payments/settled", "--relay", NULL);
    cr_expect(rc == 0 && out && strstr(out, "x1"), "a routed read through growth failed: %s %s", out ? out : "",
              eout ? eout : "");
    cr_expect_gt(h_metric(b.url, "trib_read_batches_total{dir=\"received\"}"), relayed, "not read through the relay");
    free(out), free(eout);
    cr_expect(member_in(&ma), "growth lost payments");
    /* logged on growth, rate-limited, naming the address */
    size_t len = 0;
    char *log = NULL;
    long deadline = h_now_ms() + 15000;
    while (h_now_ms() < deadline) {
        free(log);
        log = h_read_file(b.log, &len);
        if (log && strstr(log, "claim(s) of a peer address"))
            break;
        usleep(50000);
    }
    cr_expect(log && strstr(log, "claim(s) of a peer address") && strstr(log, a.peer),
              "growth did not log the refusal (%.0f refused; %s ends: %s)", h_metric(b.url, "trib_peer_key_refused_total"),
              b.log, log ? log + (len > 1500 ? len - 1500 : 0) : "(unreadable)");
    size_t lines = 0;
    for (const char *p = log; p && (p = strstr(p, "claim(s) of a peer address")); p++)
        lines++;
    cr_expect_lt(lines, (size_t)h_metric(b.url, "trib_peer_key_refused_total"), "one line per refusal: not limited");
    free(log);
    long status = 0;
    json_t *j = h_get_json(b.url, "/v1/status", &status);
    cr_expect_eq(status, 200, "growth stopped serving");
    json_decref(j);
}

typedef struct {
    peer_client_t *pc;
    const identity_t *id;
    const cert_t *cert;
    const char *victim_addr;
    const char *url;
    double refused;
} forger_t;

/* Presents the forger's certificate, then sends a message that claims the address of a node that
 * left: holds once the node counted a refused claim more than f->refused (the first messages may
 * come before the forger is admitted, so each try sends both again). */
static int left_address_claimed(void *ctx)
{
    forger_t *f = ctx;
    Trib__CertHello h = TRIB__CERT_HELLO__INIT;
    h.cert.data = f->cert->bytes;
    h.cert.len = f->cert->len;
    h.time_ms = fx_now_ms();
    uint8_t buf[4096];
    size_t len = trib__cert_hello__pack(&h, buf);
    peer_envelope_t e;
    peer_envelope_init(&e, f->id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CERT_HELLO, buf, len);
    peer_client_send_envelope(f->pc, &e);
    peer_envelope_init(&e, f->id, f->victim_addr, TRIB__MSG_TYPE__MSG_PING, NULL, 0);
    peer_client_send_envelope(f->pc, &e);
    return h_metric(f->url, "trib_peer_key_refused_total") >= f->refused + 1;
}

/* A node that left (its own signed LEFT: a forged one is refused, test_swimsig.c) does not free
 * its address for another key: only a revoked or expired key, or a signed hand-over, does. */
Test(peerkeys, a_node_that_left_does_not_free_its_address_for_another_key, .init = fed_setup,
     .fini = fed_teardown)
{
    char da[256], db[256], dm[256], seed[200], p[300];
    identity_t ia, ib, im;
    certified("a", "payments", da, sizeof da, &ia);
    certified("b", "growth", db, sizeof db, &ib);
    certified("m", "evil", dm, sizeof dm, &im);
    h_node_t a, b;
    start(&a, "a", "payments", da, NULL, NULL);
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    start(&b, "b", "growth", db, seed, NULL);
    member_cond_t ma = {&b, ia.hex, "alive"};
    cr_assert(h_wait(member_in, &ma, 20000), "growth does not see payments alive and verified");
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0, "payments did not stop cleanly");
    member_cond_t left = {&b, ia.hex, "left"};
    cr_assert(h_wait(member_in, &left, 20000), "growth did not see payments leave");

    cert_t mc;
    snprintf(p, sizeof p, "%s/m.cert", work);
    cr_assert_eq(cert_load(p, &mc, err, sizeof err), 0, "%s", err);
    void *z = zmq_ctx_new();
    peer_client_t *pc = peer_client_new(z, b.peer, &im, ib.curve_pk);
    cr_assert_not_null(pc);
    double replaced = h_metric(b.url, "trib_peer_keys_total{event=\"replaced\"}");
    /* now mallory's messages claim payments' address */
    forger_t f = {pc, &im, &mc, a.peer, b.url, h_metric(b.url, "trib_peer_key_refused_total")};
    cr_expect(h_wait(left_address_claimed, &f, 15000), "growth did not refuse the claim of a node that left");
    cr_expect_eq(h_metric(b.url, "trib_peer_keys_total{event=\"replaced\"}"), replaced,
                 "the address of a node that left went to the claimant's key");
    peer_client_destroy(&pc);
    zmq_ctx_term(z);
    cert_free(&mc);
}

/* A node id that is a node's real key plus a point of order 8 (one of its seven "siblings") is
 * not that node's id: no certificate names it, and CURVE's key exchange, which multiplies by a
 * multiple of 8, would give the same shared secret as the real key's, so a dial to it would
 * "prove" it. transport_set_peer refuses it, as libsodium's conversion (with its subgroup check)
 * does: a seed given so is refused at start. Fails with the conversion by the map alone
 * (gossip/edcurve.h): the binding was made and proven by b's handshake. */
Test(peerkeys, a_node_id_off_by_a_small_order_point_is_refused)
{
    tr_t a, b;
    tr_open(&a, 0);
    tr_open(&b, 0);
    char addr[TRANSPORT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", transport_addr(b.t));
    uint8_t t8[32], sib[32], held[32];
    /* a point of order 8 on edwards25519 (libsodium's list of small-order points) */
    cr_assert_eq(sodium_hex2bin(t8, 32, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", 64, NULL,
                                NULL, NULL), 0);
    cr_assert_eq(crypto_core_ed25519_add(sib, b.id.pk, t8), 0);
    cr_assert_neq(memcmp(sib, b.id.pk, 32), 0);
    cr_expect_eq(transport_set_peer(a.t, addr, sib, TRANSPORT_PEER_PROVEN), -1, "the sibling key was taken");
    cr_expect_neq(transport_peer_key(a.t, addr, held), 1, "an address bound to the sibling key");
    cr_expect_eq(transport_set_peer(a.t, addr, b.id.pk, TRANSPORT_PEER_PROVEN), 0, "b's own key");
    tr_close(&a);
    tr_close(&b);
}
