/* gossip/transport.c - the peer transport: ROUTER in, DEALERs out, CURVE keys, ZAP, envelopes.
 *
 * Owns: the sockets of one node's peer transport, the ZAP handler of its ZeroMQ context, the
 * table of DEALERs (hash by address + LRU list + list of those holding waiting messages), and the
 * receive checks that stand between the network and the rest of gossip/.
 * Must not: interpret envelope bodies, block (every send and receive is ZMQ_DONTWAIT), trust a
 * byte it received before checking it, or print. Design notes: DESIGN.md section 6 and
 * gossip/transport.h. */
#include "gossip/transport.h"
#include "gossip/clock.h"
#include "gossip/sendq.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "proto/tributary.pb-c.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"   /* fixed by RFC 27 */
#define ZAP_DOMAIN     "tributary"
#define ZAP_MAX_PARTS  8
#define FED_PREFIX     "tributary-federation:"
#define WIRE_SLACK     (64u * 1024u)    /* frames in (max_msg, max_msg + slack] reach our check */
#define RECV_BATCH     256              /* frames read per transport_recv call */
#define ZAP_BATCH      64               /* ZAP requests answered per transport_recv call */
#define HANDSHAKE_MS   10000
/* A warm-up counts a connection of ours as a handshake under way (transport_warm's max_shaking)
 * for at most this long after it opened, though ZeroMQ goes on trying for HANDSHAKE_MS: four
 * addresses that accept TCP and never speak held every warm-up slot for the whole 10 s window, and
 * no healthy member was warmed meanwhile. A loopback handshake takes milliseconds, one on a busy
 * node 1-2.4 s: so warm-ups stay paced (max_shaking a second at most), and a stuck address delays
 * the others by one second, once. */
#define SHAKE_SLOT_MS  1000
/* ZeroMQ redials a DEALER whose connection is down every 100 ms by default, forever: ~7 connect
 * attempts a second to every dead member's address. Ours back off, doubling from RECONNECT_MS (plus
 * up to RECONNECT_MS of jitter) to RECONNECT_MAX_MS. libzmq keeps the backoff only across failed
 * TCP connects: a connection that came up and broke starts again at RECONNECT_MS. */
#define RECONNECT_MS     100
#define RECONNECT_MAX_MS 2000
#define SWEEP_MS       1000             /* unanswered connections are looked for this often */
/* A connection that holds bulk bytes none of which ZeroMQ could write for this long is closed with
 * them (transport_send_bulk): the peer reads nothing. A reader that takes a batch (512 KiB) every
 * 10 s is never cut; the owner's streams expire after as long a silence of their requester. */
#define BULK_STALL_MS  10000
#define REDIAL_AFTER_MS 200             /* a connection never up, this old, dials again for a new message... */
#define REDIAL_MS      10000            /* ... this often at most: a redial starts the backoff again at
                                           RECONNECT_MS, and once a second it made ~4 connects a second
                                           to a dead member SWIM still gossips to (0.45 without) */
#define CTX_SOCKETS_SLACK 64            /* ROUTER, ZAP, their monitors, other users of the context */
#define ZMQ_SOCKETS_MAX   65535         /* ZMQ_SOCKET_LIMIT of libzmq's default build */
/* A DEALER's routing id, sent once per connection in the (CURVE-encrypted) ZMTP handshake:
 * RID_MARK, our node id (32), a random nonce (8, so two DEALERs of ours never share one), our
 * advertised address. The ROUTER hands it over with every message, so envelopes on such a
 * connection leave sender and sender_addr out (51 bytes of a ~100-byte SWIM message); the
 * receiver checks the id against the connection's CURVE key exactly as it checks an envelope's.
 * Auto-generated routing ids start with a zero byte, so a peer without one is told apart. */
#define RID_MARK       'T'
#define RID_FIXED      (1 + 32 + 8)

/* ------------------------------------------------------------------ types */

typedef struct {
    zmq_msg_t msg;
    int type;
    int64_t deadline_ms;
} pend_t;

/* Chartered mode: the node key an address is dialled with. A binding is PK_NEW until a dial
 * settles it: PK_PROVEN once a CURVE handshake with that server key at that address succeeded
 * (only the key's holder can complete it), PK_FAILED once one failed with a cryptographic error,
 * or PK_FAIL_MAX in a row failed for another reason than the peer's admission check (a reset or a
 * timeout alone does not show the key wrong: anyone on the path can cause one). A claim (a
 * message's sender address, a member entry) binds an address with no key, or replaces a failed
 * one; a key already there, new or proven, is replaced only by
 * an operator's seed or by what the owner's rebind callback accepts (a signed hand-over from the
 * held key, or a held key no longer admitted). So a certified peer that claims another node's
 * address is refused and counted, and the dials to that address keep the right key. */
enum { PK_NEW, PK_PROVEN, PK_FAILED };

typedef struct peerkey {
    char addr[TRANSPORT_ADDR_MAX];
    uint8_t node_pk[32], curve_pk[32];
    int state;
    int fails;                              /* handshakes failed in a row, without detail */
    int knows_us;                           /* the node there said it holds our certificate (its
                                               accepted hello asked for none): a new connection to
                                               it opens without our hello */
    struct peerkey *next;                   /* hash chain */
    int list;                               /* which LRU list: 1 the proven ones, 0 the others */
    struct peerkey *lprev, *lnext;          /* LRU list, most recent first */
} peerkey_t;

#define PK_FAIL_MAX  3                  /* handshakes failed in a row (no detail) that show a key wrong */
#define ASK_MS       1000               /* an unadmitted sender is asked for its certificate at most this often */
#define ASK_SLOTS    256                /* ... per sender key (a direct-mapped table of the last asks) */
#define ASK_BURST    64                 /* and all of them together at most this many per second */
#define CROSS_MS     2000               /* a hello asking for ours, this soon after ours went its way
                                           on the priority lane, crossed it: ours answers it */

typedef struct {
    uint8_t pk[32];
    int64_t ms;
} ask_slot_t;

typedef struct dealer {
    char addr[TRANSPORT_ADDR_MAX];
    int lane;                               /* 1: the priority types' own connection */
    int slim;                               /* our routing id names us: envelopes omit sender, sender_addr */
    void *sock;
    struct dealer *hnext;                   /* hash chain */
    struct dealer *lprev, *lnext;           /* LRU list, most recent first */
    struct dealer *pprev, *pnext;           /* list of dealers with waiting messages */
    int in_plist;
    pend_t *pend;                           /* ring of pending_max, allocated on first use */
    int pend_head, pend_count;
    void *mon;                              /* handshake monitor until the first handshake succeeds */
    struct dealer *mprev, *mnext;           /* list of monitored dealers */
    int rehello;                            /* our hello expired unsent: send it before the next */
    uint8_t server_pk[32];                  /* the CURVE server key it dials with */
    int64_t hello_ms;                       /* when our hello was last queued on it (0: never) */
    int64_t opened_ms;                      /* when it was opened */
    sendq_t *bulk;                          /* bytes of bulk sends ZeroMQ holds for it (first one makes it) */
    int64_t used_ms;                        /* when a message was last given to it (or opened_ms) */
    int64_t redial_ms;                      /* when it last dialled again for a new message */
    int tcp_up;                             /* watched (mon): its TCP connection is up now */
    int up;                                 /* its first handshake succeeded (seen by the loop) */
    size_t bulk_freed;                      /* sendq_freed(bulk) when last looked at (sweep_bulk) */
    int64_t bulk_moved_ms;                  /* when bulk last held nothing or ZeroMQ last let go of some */
} dealer_t;

/* An Ed25519 sender key and its CURVE form (hex too): the conversion costs about as much as a
 * signature check, and every received message needs it. */
typedef struct {
    uint8_t ed[32], curve[32];
    char hex[65];                           /* "" = empty slot */
} curve_slot_t;

#define UNPROVEN_MAX 1024   /* incoming connections followed until their first handshake event */

struct transport {
    void *zctx;
    void *router, *zap;
    transport_opts_t o;
    uint8_t fed_pk[32];
    uint8_t my_pk[32];                      /* Ed25519, the sender field */
    uint8_t curve_pk[32], curve_sk[32];     /* this node's CURVE client pair */
    char addr[TRANSPORT_ADDR_MAX];          /* bound */
    char adv[TRANSPORT_ADDR_MAX];           /* advertised */
    uint64_t seq;
    transport_allow_fn allow;
    void *allow_ctx;
    dealer_t **buckets;
    size_t nbuckets, ndealers;
    dealer_t *lru_head, *lru_tail;
    dealer_t *plist;
    dealer_t *mlist;                        /* dealers whose handshakes are watched */
    void *rmon;                             /* the ROUTER's handshake monitor */
    int unproven[UNPROVEN_MAX];             /* fds of incoming connections accepted since the
                                               ROUTER's last handshake event (rmon) */
    size_t nunproven;
    uint64_t nmon;                          /* monitors made (unique inproc names) */
    transport_stats_t st;                   /* written and read on the owner thread */
    peerkey_t **pk_buckets;                 /* chartered: node key per address (nbuckets) */
    size_t npk;
    peerkey_t *pk_head[2], *pk_tail[2];     /* their LRU lists: [1] proven, [0] the others */
    transport_rebind_fn rebind;
    void *rebind_ctx;
    uint8_t *hello;                         /* our certificate (TrustSigned bytes), or NULL */
    size_t hello_len;
    transport_hello_fn hello_fn;
    void *hello_ctx;
    ask_slot_t asks[ASK_SLOTS];             /* the last certificate ask per sender key */
    int64_t ask_window_ms;                  /* asks counted in the current second (ASK_BURST) */
    int asks_in_window;
    curve_slot_t curve_cache[64];           /* sender keys seen: sender_authentic */
    sendq_t *bulk;                          /* bytes of bulk sends ZeroMQ holds, over all dealers */
    int64_t sweep_ms;                       /* the last look for unanswered connections */
    int64_t bulk_sweep_ms;                  /* the last look for connections whose bulk bytes stall */
};

#define MON_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | \
                    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
/* The ROUTER's also follow connections: libzmq 4.3 drops one that breaks the protocol before a
 * security mechanism exists (random bytes, another protocol, a frame past the limit in the
 * greeting) with no handshake event, only DISCONNECTED (see closed_unproven). */
#define RMON_EVENTS (MON_EVENTS | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)
/* A DEALER's also say when its TCP connection is up (redial_unanswered). */
#define DMON_EVENTS (MON_EVENTS | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED)

/* ------------------------------------------------------------------ small helpers */

static void bump(uint64_t *x, uint64_t n)
{
    *x += n;
}

static int type_known(int type)
{
    return type > 0 && type < TRANSPORT_MAX_TYPES &&
           protobuf_c_enum_descriptor_get_value(&trib__msg_type__descriptor, type) != NULL;
}

static int is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int is_hex_or(char ch, const char *also)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           strchr(also, ch) != NULL;
}

/* Splits "HOST:PORT". listen allows port 0 / "*" and host "*". Writes host (NUL-terminated) and
 * port; *wild tells whether host is a wildcard. 0 or -1. */
static int addr_parse_max(const char *s, size_t max, int listen, char *host, size_t hostlen, long *port, int *wild)
{
    if (s == NULL) return -1;
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max) return -1;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return -1;
    size_t hl = (size_t)(colon - s);
    const char *p = colon + 1;
    int w = 0;

    if (s[0] == '[') {                              /* [IPv6] */
        if (hl < 4 || s[hl - 1] != ']') return -1;
        int colons = 0;
        for (size_t i = 1; i + 1 < hl; i++) {
            if (!is_hex_or(s[i], ":.")) return -1;
            colons += s[i] == ':';
        }
        if (colons < 2) return -1;
        w = hl == 4 && memcmp(s, "[::]", 4) == 0;
    } else if (hl == 1 && s[0] == '*') {
        if (!listen) return -1;
        w = 1;
    } else {
        for (size_t i = 0; i < hl; i++)
            if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-') return -1;
        w = hl == 7 && memcmp(s, "0.0.0.0", 7) == 0;
    }

    long v = 0;
    if (listen && strcmp(p, "*") == 0) {
        v = 0;
    } else {
        size_t pl = strlen(p);
        if (pl == 0 || pl > 5) return -1;
        for (size_t i = 0; i < pl; i++) {
            if (p[i] < '0' || p[i] > '9') return -1;
            v = v * 10 + (p[i] - '0');
        }
        if (v > 65535 || (v == 0 && !listen)) return -1;
    }
    if (host != NULL) {
        if (hl >= hostlen) return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    if (port != NULL) *port = v;
    if (wild != NULL) *wild = w;
    return 0;
}

static int addr_parse(const char *s, int listen, char *host, size_t hostlen, long *port, int *wild)
{
    return addr_parse_max(s, TRANSPORT_ADDR_MAX, listen, host, hostlen, port, wild);
}

int transport_addr_valid(const char *s)
{
    return addr_parse(s, 0, NULL, 0, NULL, NULL) == 0;
}

int transport_addr_valid_max(const char *s, size_t max)
{
    return addr_parse_max(s, max, 0, NULL, 0, NULL, NULL) == 0;
}

void transport_opts_default(transport_opts_t *o)
{
    assert(o != NULL);
    memset(o, 0, sizeof *o);
    o->max_msg = 4u << 20;
    o->hwm = 1000;
    o->federation_secret = TRANSPORT_DEFAULT_SECRET;
    o->keepalive_s = 60;
    o->max_peers = 1024;
    o->advertise = NULL;
    o->pending_ms = 2000;
    o->unanswered_ms = 10000;
    o->pending_max = 64;
    o->close_linger_ms = 500;
    o->max_peer_keys = 65536;
    o->bulk_peer_bytes = (size_t)32 << 20;
    o->bulk_total_bytes = (size_t)128 << 20;
}

void transport_federation_keys(const char *secret, uint8_t pk[32], uint8_t sk[32])
{
    uint8_t seed[crypto_box_SEEDBYTES];
    uint8_t sk_local[crypto_box_SECRETKEYBYTES];
    crypto_generichash_state st;
    if (secret == NULL) secret = TRANSPORT_DEFAULT_SECRET;
    assert(pk != NULL);
    if (sodium_init() < 0) abort();   /* libsodium unusable: nothing here can work */
    crypto_generichash_init(&st, NULL, 0, sizeof seed);
    crypto_generichash_update(&st, (const uint8_t *)FED_PREFIX, strlen(FED_PREFIX));
    crypto_generichash_update(&st, (const uint8_t *)secret, strlen(secret));
    crypto_generichash_final(&st, seed, sizeof seed);
    crypto_box_seed_keypair(pk, sk != NULL ? sk : sk_local, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk_local, sizeof sk_local);
    sodium_memzero(&st, sizeof st);
}

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

/* Options common to the ROUTER and the DEALERs. 0 or -1 (errno from ZeroMQ). */
static int set_common(const transport_t *t, void *sock, int ipv6)
{
    int ka = t->o.keepalive_s;
    if (set_int(sock, ZMQ_SNDHWM, t->o.hwm) || set_int(sock, ZMQ_RCVHWM, t->o.hwm) ||
        set_int(sock, ZMQ_LINGER, 0) || set_int(sock, ZMQ_SNDTIMEO, 0) ||
        set_int(sock, ZMQ_HANDSHAKE_IVL, HANDSHAKE_MS) || set_int(sock, ZMQ_IPV6, ipv6))
        return -1;
    if (ka > 0 && (set_int(sock, ZMQ_TCP_KEEPALIVE, 1) || set_int(sock, ZMQ_TCP_KEEPALIVE_IDLE, ka) ||
                   set_int(sock, ZMQ_TCP_KEEPALIVE_INTVL, ka / 6 > 0 ? ka / 6 : 1) ||
                   set_int(sock, ZMQ_TCP_KEEPALIVE_CNT, 3)))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ handshake monitors */

/* A PAIR connected to a monitor of sock (events), or NULL. */
static void *monitor_open(transport_t *t, void *sock, int events)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://trib-mon-%p-%llu", (void *)t, (unsigned long long)t->nmon++);
    if (zmq_socket_monitor(sock, ep, events) != 0) return NULL;
    void *pair = zmq_socket(t->zctx, ZMQ_PAIR);
    if (pair == NULL) return NULL;
    if (set_int(pair, ZMQ_LINGER, 0) || zmq_connect(pair, ep) != 0) {
        zmq_close(pair);
        zmq_socket_monitor(sock, NULL, 0);
        return NULL;
    }
    return pair;
}

static const peerkey_t *peerkey_find(const transport_t *t, const char *addr);
static void peerkey_touch(transport_t *t, peerkey_t *p);
static void peerkey_state(transport_t *t, peerkey_t *p, int state);

/* Words for a handshake failure event: what the peer would have to fix. */
static void describe_failure(const transport_t *t, const char *addr, uint16_t ev, uint32_t val,
                             char *out, size_t cap)
{
    const peerkey_t *pk = t->o.per_node_keys && addr != NULL ? peerkey_find(t, addr) : NULL;
    if (pk != NULL) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, pk->node_pk, 32);
        hex[16] = '\0';
        int w = snprintf(out, cap, "%s: the node there is not %s... (a wrong node id in the seed?) "
                         "or it refused our key", ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                         ? "refused by its admission check" : "CURVE handshake failed", hex);
        (void)w;
    } else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && val == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf(out, cap, "CURVE handshake failed (cryptographic error: the two sides do not share the "
                 "federation key; a different --federation-secret?)");
    else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(out, cap, "handshake failed: ZMTP protocol error 0x%08x (not a Tributary peer, or another "
                 "security mechanism)", val);
    else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(out, cap, "handshake refused by the peer's admission check (ZAP status %u)", val);
    else
        snprintf(out, cap, "handshake failed before completing (%s; the peer closed the connection: a "
                 "different --federation-secret, or not a Tributary peer?)", zmq_strerror((int)val));
}

/* A dial's outcome (a ZMQ_EVENT_HANDSHAKE_* event) settles the binding it was made with (still
 * the address's binding). Refused by the peer's admission check: it holds the key (it read our
 * initiate), nothing changes. */
static void peerkey_settle(transport_t *t, const dealer_t *d, uint16_t ev, uint32_t val)
{
    peerkey_t *p = (peerkey_t *)peerkey_find(t, d->addr);
    if (p == NULL || memcmp(p->curve_pk, d->server_pk, 32) != 0 || ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return;
    if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        peerkey_state(t, p, PK_PROVEN);
        p->fails = 0;
    } else if ((ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && val == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) ||
               ++p->fails >= PK_FAIL_MAX)
        peerkey_state(t, p, PK_FAILED);
}

/* An incoming connection's ACCEPTED or DISCONNECTED (fd): 1 when it closed with no handshake
 * event of the ROUTER's since it was accepted, so none of its own (its handshake event comes
 * between the two): libzmq dropped it for breaking the protocol before any security handshake.
 * Any handshake event empties the list (monitor_read), so it holds only connections accepted
 * since the last one, and one such garbage connection open while another's handshake ends is
 * not counted: a lower bound, exact while no peer connects meanwhile. */
static int closed_unproven(transport_t *t, uint16_t ev, int fd)
{
    for (size_t i = 0; i < t->nunproven; i++)
        if (t->unproven[i] == fd) {
            t->unproven[i] = t->unproven[--t->nunproven];
            if (ev == ZMQ_EVENT_DISCONNECTED)
                return 1;
            break;   /* accepted again: a number whose DISCONNECTED we missed */
        }
    if (ev == ZMQ_EVENT_ACCEPTED && t->nunproven < UNPROVEN_MAX)
        t->unproven[t->nunproven++] = fd;
    return 0;
}

/* Reads what the monitor pair of d (NULL: the ROUTER's) has. Returns 1 when a handshake
 * succeeded (the watch can end). */
static int monitor_read(transport_t *t, void *pair, dealer_t *d)
{
    const char *addr = d != NULL ? d->addr : NULL;
    int ok = 0, out = d != NULL;
    for (int i = 0; i < 64; i++) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        zmq_msg_init(&ep);
        if (zmq_msg_more(&ev)) zmq_msg_recv(&ep, pair, ZMQ_DONTWAIT);
        if (zmq_msg_size(&ev) >= 6) {
            const uint8_t *b = zmq_msg_data(&ev);
            uint16_t id;
            uint32_t val;
            memcpy(&id, b, 2);
            memcpy(&val, b + 2, 4);
            if (id == ZMQ_EVENT_ACCEPTED || id == ZMQ_EVENT_DISCONNECTED || id == ZMQ_EVENT_CONNECTED) {
                if (d != NULL)
                    d->tcp_up = id == ZMQ_EVENT_CONNECTED;
                else if (closed_unproven(t, id, (int)val)) {
                    bump(&t->st.handshake_failed_in, 1);
                    snprintf(t->st.last_handshake_error, sizeof t->st.last_handshake_error,
                             "closed before any handshake: it did not speak ZMTP 3 with CURVE (garbage, "
                             "another protocol, or a frame past the limit)");
                    snprintf(t->st.last_handshake_peer, sizeof t->st.last_handshake_peer, "an incoming connection");
                }
            } else if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                if (d == NULL) t->nunproven = 0;
                ok = 1;
                if (d != NULL) peerkey_settle(t, d, id, val);
            } else {
                if (d == NULL) t->nunproven = 0;
                if (d != NULL) peerkey_settle(t, d, id, val);
                bump(out ? &t->st.handshake_failed_out : &t->st.handshake_failed_in, 1);
                describe_failure(t, addr, id, val, t->st.last_handshake_error,
                                 sizeof t->st.last_handshake_error);
                snprintf(t->st.last_handshake_peer, sizeof t->st.last_handshake_peer, "%s",
                         out ? addr : "an incoming connection");
            }
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
    }
    return ok;
}

static void mlist_remove(transport_t *t, dealer_t *d)
{
    if (d->mon == NULL) return;
    if (d->mprev) d->mprev->mnext = d->mnext; else t->mlist = d->mnext;
    if (d->mnext) d->mnext->mprev = d->mprev;
    d->mprev = d->mnext = NULL;
    zmq_socket_monitor(d->sock, NULL, 0);
    zmq_close(d->mon);
    d->mon = NULL;
}

/* d's first handshake succeeded: counted (dealers_up), its watch ends. */
static void watch_end_up(transport_t *t, dealer_t *d)
{
    d->up = 1;
    t->st.dealers_up[d->lane != 0]++;
    mlist_remove(t, d);
}

/* Reads every monitor; a dealer's watch ends at its first successful handshake. */
static void monitors_poll(transport_t *t)
{
    if (t->rmon) monitor_read(t, t->rmon, NULL);
    for (dealer_t *d = t->mlist, *next; d; d = next) {
        next = d->mnext;
        if (monitor_read(t, d->mon, d)) watch_end_up(t, d);
    }
}

/* ------------------------------------------------------------------ dealer table */

static size_t addr_hash(const char *s, int lane)
{
    uint64_t h = 1469598103934665603ull;                  /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)((h ^ (uint64_t)lane) * 1099511628211ull);
}

static dealer_t *dealer_find(const transport_t *t, const char *addr, int lane)
{
    for (dealer_t *d = t->buckets[addr_hash(addr, lane) & (t->nbuckets - 1)]; d; d = d->hnext)
        if (d->lane == lane && strcmp(d->addr, addr) == 0) return d;
    return NULL;
}

/* Chartered (per-node keys): our connection to the node whose CURVE key is curve, by its key, not
 * an address string: a dealer dials with its node's key as the server key, and only the key's
 * holder completes that handshake, so a node known by two addresses (a seed given by hostname,
 * advertised by IP) is found under either. addr's own first, then the priority lane's. NULL when
 * none. *crossed: one of them carried our hello on the priority lane within CROSS_MS (it is on its
 * way). A walk of the dealers (max_peers at most), made only for an accepted hello asking for ours. */
static dealer_t *dealer_of_key(const transport_t *t, const char *addr, const uint8_t curve[32], int64_t now,
                               int *crossed)
{
    dealer_t *best = NULL;
    int best_rank = -1;
    *crossed = 0;
    for (dealer_t *d = t->lru_head; d != NULL; d = d->lnext) {
        if (memcmp(d->server_pk, curve, 32) != 0) continue;
        if (d->lane && d->hello_ms && now - d->hello_ms < CROSS_MS) *crossed = 1;
        int rank = 2 * (strcmp(d->addr, addr) == 0) + (d->lane != 0);
        if (rank > best_rank) {
            best = d;
            best_rank = rank;
        }
    }
    return best;
}

static void lru_unlink(transport_t *t, dealer_t *d)
{
    if (d->lprev) d->lprev->lnext = d->lnext; else t->lru_head = d->lnext;
    if (d->lnext) d->lnext->lprev = d->lprev; else t->lru_tail = d->lprev;
    d->lprev = d->lnext = NULL;
}

static void lru_push_front(transport_t *t, dealer_t *d)
{
    d->lprev = NULL;
    d->lnext = t->lru_head;
    if (t->lru_head) t->lru_head->lprev = d; else t->lru_tail = d;
    t->lru_head = d;
}

static void plist_add(transport_t *t, dealer_t *d)
{
    if (d->in_plist) return;
    d->pprev = NULL;
    d->pnext = t->plist;
    if (t->plist) t->plist->pprev = d;
    t->plist = d;
    d->in_plist = 1;
}

static void plist_remove(transport_t *t, dealer_t *d)
{
    if (!d->in_plist) return;
    if (d->pprev) d->pprev->pnext = d->pnext; else t->plist = d->pnext;
    if (d->pnext) d->pnext->pprev = d->pprev;
    d->pprev = d->pnext = NULL;
    d->in_plist = 0;
}

static void pend_pop(dealer_t *d, int max)
{
    d->pend_head = (d->pend_head + 1) % max;
    d->pend_count--;
}

/* Drops every waiting message of d, counting each. */
static void pend_drop_all(transport_t *t, dealer_t *d)
{
    while (d->pend_count > 0) {
        zmq_msg_close(&d->pend[d->pend_head].msg);
        pend_pop(d, t->o.pending_max);
        bump(&t->st.send_dropped, 1);
    }
    plist_remove(t, d);
}

/* Hands waiting messages to ZeroMQ in order until one would block; drops expired ones. A
 * connection's first message, our certificate hello, lives as long as the newest message behind
 * it, and one that expires is sent again before the next message: dropped alone, it let the
 * messages after it through to a peer that drops them all as uncertified (a slow CURVE handshake
 * on a busy machine outlasts pending_ms). */
static void pend_flush(transport_t *t, dealer_t *d, int64_t now)
{
    while (d->pend_count > 0) {
        pend_t *p = &d->pend[d->pend_head];
        size_t size = zmq_msg_size(&p->msg);
        if (p->type == TRIB__MSG_TYPE__MSG_CERT_HELLO && d->pend_count > 1) {
            const pend_t *newest = &d->pend[(d->pend_head + d->pend_count - 1) % t->o.pending_max];
            if (newest->deadline_ms > p->deadline_ms) p->deadline_ms = newest->deadline_ms;
        }
        if (p->deadline_ms > now) {
            if (zmq_msg_send(&p->msg, d->sock, ZMQ_DONTWAIT) >= 0) {
                bump(&t->st.msgs_out[p->type], 1);
                bump(&t->st.bytes_out, size);
                pend_pop(d, t->o.pending_max);
                continue;
            }
            if (errno == EAGAIN || errno == EINTR) break;
        }
        if (p->type == TRIB__MSG_TYPE__MSG_CERT_HELLO) d->rehello = 1;
        zmq_msg_close(&p->msg);                  /* expired, or ZeroMQ refused it for good */
        pend_pop(d, t->o.pending_max);
        bump(&t->st.send_dropped, 1);
    }
    if (d->pend_count == 0) plist_remove(t, d);
}

static void dealer_close(transport_t *t, dealer_t *d)
{
    dealer_t **pp = &t->buckets[addr_hash(d->addr, d->lane) & (t->nbuckets - 1)];
    while (*pp != d) pp = &(*pp)->hnext;
    *pp = d->hnext;
    lru_unlink(t, d);
    pend_drop_all(t, d);
    mlist_remove(t, d);
    zmq_close(d->sock);
    sendq_release(&d->bulk);        /* its messages still held (linger) keep the count alive */
    free(d->pend);
    free(d);
    t->ndealers--;
    t->st.peers_open--;
}

/* Opens a DEALER to addr (already validated), evicting the least recently used beyond the cap. */
static dealer_t *dealer_open(transport_t *t, const char *addr, int lane)
{
    char ep[TRANSPORT_ADDR_MAX + 8];
    const uint8_t *server_pk = t->fed_pk;
    if (t->o.per_node_keys) {
        peerkey_t *pk = (peerkey_t *)peerkey_find(t, addr);
        if (pk == NULL) {
            bump(&t->st.send_no_key, 1);
            return NULL;
        }
        peerkey_touch(t, pk);
        server_pk = pk->curve_pk;
    }
    dealer_t *d = calloc(1, sizeof *d);
    if (d == NULL) return NULL;
    memcpy(d->server_pk, server_pk, 32);
    snprintf(d->addr, sizeof d->addr, "%s", addr);
    d->lane = lane;
    d->opened_ms = d->used_ms = clock_ms();
    snprintf(ep, sizeof ep, "tcp://%s", addr);
    d->sock = zmq_socket(t->zctx, ZMQ_DEALER);
    if (d->sock == NULL) goto err;
    uint8_t rid[RID_FIXED + TRANSPORT_ADDR_MAX];
    size_t alen = strlen(t->adv);
    rid[0] = RID_MARK;
    memcpy(rid + 1, t->my_pk, 32);
    randombytes_buf(rid + 33, 8);
    memcpy(rid + RID_FIXED, t->adv, alen);
    d->slim = alen > 0 && RID_FIXED + alen <= 255 &&
              zmq_setsockopt(d->sock, ZMQ_ROUTING_ID, rid, RID_FIXED + alen) == 0;
    if (set_common(t, d->sock, addr[0] == '[') || set_int(d->sock, ZMQ_IMMEDIATE, 1) ||
        set_int(d->sock, ZMQ_RCVHWM, 1) || set_int(d->sock, ZMQ_RECONNECT_IVL, RECONNECT_MS) ||
        set_int(d->sock, ZMQ_RECONNECT_IVL_MAX, RECONNECT_MAX_MS) ||
        zmq_setsockopt(d->sock, ZMQ_CURVE_SERVERKEY, server_pk, 32) ||
        zmq_setsockopt(d->sock, ZMQ_CURVE_PUBLICKEY, t->curve_pk, 32) ||
        zmq_setsockopt(d->sock, ZMQ_CURVE_SECRETKEY, t->curve_sk, 32))
        goto err;
    d->mon = monitor_open(t, d->sock, DMON_EVENTS);   /* before the connect, or its CONNECTED is missed */
    if (zmq_connect(d->sock, ep) != 0) goto err;
    while (t->ndealers >= t->o.max_peers && t->lru_tail != NULL) dealer_close(t, t->lru_tail);
    if (d->mon != NULL) {                   /* without it, failures go unreported */
        d->mnext = t->mlist;
        if (t->mlist) t->mlist->mprev = d;
        t->mlist = d;
    }
    size_t b = addr_hash(addr, lane) & (t->nbuckets - 1);
    d->hnext = t->buckets[b];
    t->buckets[b] = d;
    lru_push_front(t, d);
    t->ndealers++;
    t->st.peers_open++;
    t->st.dealers_opened[lane != 0]++;
    return d;
err:
    if (d->mon) {
        zmq_socket_monitor(d->sock, NULL, 0);
        zmq_close(d->mon);
    }
    if (d->sock) zmq_close(d->sock);
    free(d);
    return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

transport_t *transport_new(void *zctx, const identity_t *id, const char *listen_addr,
                           const transport_opts_t *o, char *err, size_t errlen)
{
    char host[TRANSPORT_ADDR_MAX], ep[TRANSPORT_ADDR_MAX + 16];
    uint8_t fed_sk[32];
    long port = 0;
    int wild = 0;
    size_t len;
    transport_t *t = NULL;

    assert(zctx != NULL && id != NULL);
    if (sodium_init() < 0) {
        set_err(err, errlen, "transport_new: sodium_init failed");
        return NULL;
    }
    if (addr_parse(listen_addr, 1, host, sizeof host, &port, &wild) != 0) {
        set_err(err, errlen, "transport_new: listen address '%s' is not HOST:PORT",
                listen_addr ? listen_addr : "(null)");
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        set_err(err, errlen, "transport_new: out of memory");
        return NULL;
    }
    t->zctx = zctx;
    if (o != NULL) t->o = *o; else transport_opts_default(&t->o);
    if (t->o.max_msg < 64 || t->o.max_msg > (1u << 30) || t->o.hwm < 1 || t->o.max_peers < 1 ||
        t->o.keepalive_s < 0 || t->o.keepalive_s > 86400 || t->o.pending_ms < 0 ||
        t->o.pending_max < 0 || t->o.close_linger_ms < 0 || t->o.max_peer_keys < 1 || t->o.unanswered_ms < 0 ||
        t->o.bulk_peer_bytes < 1 || t->o.bulk_total_bytes < 1) {
        set_err(err, errlen, "transport_new: option out of range (max_msg 64..1GiB, hwm >= 1, "
                "max_peers >= 1, keepalive_s 0..86400, pending, linger and unanswered >= 0, max_peer_keys >= 1, "
                "bulk budgets >= 1)");
        goto fail;
    }
    if (t->o.advertise != NULL && t->o.advertise[0] == '\0') t->o.advertise = NULL;
    if (t->o.advertise != NULL) {
        int awild = 0;
        if (addr_parse(t->o.advertise, 0, NULL, 0, NULL, &awild) != 0 || awild) {
            set_err(err, errlen, "transport_new: advertise address '%s' is not a reachable "
                    "HOST:PORT (a wildcard or port 0 cannot be reached)", t->o.advertise);
            goto fail;
        }
    } else if (wild) {
        set_err(err, errlen, "transport_new: listen address '%s' binds every interface; peers "
                "cannot reply to it: set an advertise address", listen_addr);
        goto fail;
    }
    transport_federation_keys(t->o.federation_secret, t->fed_pk, fed_sk);
    memcpy(t->my_pk, id->pk, 32);
    memcpy(t->curve_pk, id->curve_pk, 32);
    memcpy(t->curve_sk, id->curve_sk, 32);
    for (t->nbuckets = 16; t->nbuckets < 2 * t->o.max_peers && t->nbuckets < (1u << 20);)
        t->nbuckets *= 2;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    t->pk_buckets = calloc(t->nbuckets, sizeof *t->pk_buckets);
    t->bulk = sendq_new(NULL);
    if (t->buckets == NULL || t->pk_buckets == NULL || t->bulk == NULL) {
        set_err(err, errlen, "transport_new: out of memory");
        goto fail;
    }

    /* Room in the context for the cap: a DEALER is 1 socket, 3 while its handshakes are watched
     * (the monitor's PAIR and ours), and ZeroMQ's default of 1023 sockets a context ran out long
     * before max_peers (the agent's 2048): past ~340 peers not answering, or ~1000 connected, a
     * new connection failed and its message was dropped, and the LRU cap never closed one to make
     * room. Taken only by a context with no socket yet (the agent's: this is its first). */
    size_t want = 3 * t->o.max_peers + CTX_SOCKETS_SLACK;
    if (want > ZMQ_SOCKETS_MAX) want = ZMQ_SOCKETS_MAX;
    if (zmq_ctx_get(zctx, ZMQ_MAX_SOCKETS) < (int)want) (void)zmq_ctx_set(zctx, ZMQ_MAX_SOCKETS, (int)want);

    /* The ZAP handler first: a CURVE server with no handler in its context admits anyone. */
    t->zap = zmq_socket(zctx, ZMQ_REP);
    if (t->zap == NULL || set_int(t->zap, ZMQ_LINGER, 0)) {
        set_err(err, errlen, "transport_new: ZAP socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zmq_bind(t->zap, ZAP_ENDPOINT) != 0) {
        set_err(err, errlen, "transport_new: bind %s: %s (one transport per ZeroMQ context)",
                ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        goto fail;
    }

    int64_t maxmsg = (int64_t)t->o.max_msg + WIRE_SLACK;
    snprintf(ep, sizeof ep, "tcp://%s:", host);
    if (port == 0) strcat(ep, "*");
    else snprintf(ep + strlen(ep), sizeof ep - strlen(ep), "%ld", port);
    t->router = zmq_socket(zctx, ZMQ_ROUTER);
    if (t->router == NULL || set_common(t, t->router, host[0] == '[') ||
        set_int(t->router, ZMQ_CURVE_SERVER, 1) || set_int(t->router, ZMQ_ROUTER_HANDOVER, 1) ||
        zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, t->o.per_node_keys ? t->curve_sk : fed_sk,
                       32) ||
        zmq_setsockopt(t->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) ||
        zmq_setsockopt(t->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)) {
        set_err(err, errlen, "transport_new: ROUTER socket options: %s",
                zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zmq_bind(t->router, ep) != 0) {
        set_err(err, errlen, "transport_new: bind %s: %s", ep, zmq_strerror(zmq_errno()));
        goto fail;
    }
    len = sizeof ep;
    if (zmq_getsockopt(t->router, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        strncmp(ep, "tcp://", 6) != 0 || strlen(ep + 6) >= sizeof t->addr) {
        set_err(err, errlen, "transport_new: cannot read the bound address of %s",
                listen_addr);
        goto fail;
    }
    memcpy(t->addr, ep + 6, strlen(ep + 6) + 1);          /* length checked above */
    t->rmon = monitor_open(t, t->router, RMON_EVENTS);
    snprintf(t->adv, sizeof t->adv, "%s", t->o.advertise != NULL ? t->o.advertise : t->addr);
    t->o.federation_secret = NULL;     /* not kept: the caller's strings may not outlive us */
    t->o.advertise = NULL;
    sodium_memzero(fed_sk, sizeof fed_sk);
    return t;
fail:
    sodium_memzero(fed_sk, sizeof fed_sk);
    transport_destroy(&t);
    return NULL;
}

void transport_destroy(transport_t **tp)
{
    if (tp == NULL || *tp == NULL) return;
    transport_t *t = *tp;
    int64_t now = clock_ms();
    while (t->lru_head != NULL) {
        dealer_t *d = t->lru_head;
        set_int(d->sock, ZMQ_LINGER, t->o.close_linger_ms);   /* let goodbyes go out */
        pend_flush(t, d, now);
        dealer_close(t, d);
    }
    if (t->rmon) {
        zmq_socket_monitor(t->router, NULL, 0);
        zmq_close(t->rmon);
    }
    if (t->router) zmq_close(t->router);
    if (t->zap) zmq_close(t->zap);
    free(t->buckets);
    for (int l = 0; l < 2; l++)
        for (peerkey_t *p = t->pk_head[l], *next; p != NULL; p = next) {
            next = p->lnext;
            free(p);
        }
    free(t->pk_buckets);
    free(t->hello);
    sendq_release(&t->bulk);        /* freed once ZeroMQ let go of the last bulk message */
    sodium_memzero(t->curve_sk, sizeof t->curve_sk);
    free(t);
    *tp = NULL;
}

/* How long a rebind waits for the old listener to close. ZeroMQ closes it on its I/O thread, after
 * zmq_unbind returns; that takes well under 10 ms on a quiet host, but a host loaded with other
 * processes has held it past a second. Nobody can dial us meanwhile anyway (the listener is down),
 * so waiting on the loop costs nothing a peer would see; giving up costs a restart. */
#define REBIND_WAIT_MS 10000

/* The listener bound again with the socket's current secret key: *bound says whether it still
 * listens (an unbind that failed leaves the old listener). */
static int rebind(transport_t *t, int *bound, char *err, size_t errlen)
{
    char ep[TRANSPORT_ADDR_MAX + 8];
    snprintf(ep, sizeof ep, "tcp://%s", t->addr);
    if (zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, t->curve_sk, 32) != 0 ||
        (*bound && zmq_unbind(t->router, ep) != 0)) {
        set_err(err, errlen, "transport_rekey: unbind %s: %s", ep, zmq_strerror(zmq_errno()));
        return -1;
    }
    *bound = 0;
    int64_t start = clock_ms();
    while (zmq_bind(t->router, ep) != 0) {      /* the old listener closes asynchronously */
        int e = zmq_errno();
        int64_t waited = clock_ms() - start;
        if (e != EADDRINUSE || waited >= REBIND_WAIT_MS) {
            set_err(err, errlen, "transport_rekey: bind %s again: %s (after %lld ms)", ep, zmq_strerror(e),
                    (long long)waited);
            return -1;
        }
        zmq_poll(NULL, 0, 10);
    }
    *bound = 1;
    return 0;
}

int transport_rekey(transport_t *t, const identity_t *id, char *err, size_t errlen)
{
    uint8_t old[3][32];
    assert(t != NULL && id != NULL);
    memcpy(old[0], t->my_pk, 32);
    memcpy(old[1], t->curve_pk, 32);
    memcpy(old[2], t->curve_sk, 32);
    memcpy(t->my_pk, id->pk, 32);
    memcpy(t->curve_pk, id->curve_pk, 32);
    memcpy(t->curve_sk, id->curve_sk, 32);
    while (t->lru_head != NULL) dealer_close(t, t->lru_head);    /* they spoke as the old key */
    for (int l = 0; l < 2; l++)                                 /* and hold the old key's certificate */
        for (peerkey_t *p = t->pk_head[l]; p != NULL; p = p->lnext) p->knows_us = 0;
    int bound = 1, rc = 0;
    /* Per-node keys: a listener takes the socket's options when it binds: bind again under the
     * new key. Its connections end with it, and their peers dial again (with the new key once
     * they hold the hand-over: transport_set_rebind). Failed: the old key back, listening. */
    if (t->o.per_node_keys && (rc = rebind(t, &bound, err, errlen)) != 0) {
        char e2[200];
        memcpy(t->my_pk, old[0], 32);
        memcpy(t->curve_pk, old[1], 32);
        memcpy(t->curve_sk, old[2], 32);
        if (bound)      /* the unbind failed: the old listener was never touched */
            zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, t->curve_sk, 32);
        else if (rebind(t, &bound, e2, sizeof e2) != 0) {
            size_t n = err ? strlen(err) : 0;
            if (err && n < errlen)
                snprintf(err + n, errlen - n, "; listening under the old key again failed too (%s): not listening",
                         e2);
            rc = -2;
        }
    }
    sodium_memzero(old, sizeof old);
    return rc;
}

const char *transport_addr(const transport_t *t)
{
    return t->addr;
}

const char *transport_advertised(const transport_t *t)
{
    return t->adv;
}

void transport_set_allow(transport_t *t, transport_allow_fn allow, void *ctx)
{
    t->allow = allow;
    t->allow_ctx = ctx;
}

const transport_stats_t *transport_stats(const transport_t *t)
{
    return &t->st;
}

size_t transport_bulk_bytes(const transport_t *t)
{
    return t->bulk ? sendq_bytes(t->bulk) : 0;
}

/* ------------------------------------------------------------------ chartered: node keys per address */

static const peerkey_t *peerkey_find(const transport_t *t, const char *addr)
{
    for (const peerkey_t *p = t->pk_buckets[addr_hash(addr, 7) & (t->nbuckets - 1)]; p; p = p->next)
        if (strcmp(p->addr, addr) == 0) return p;
    return NULL;
}

static void pk_unlink(transport_t *t, peerkey_t *p)
{
    if (p->lprev) p->lprev->lnext = p->lnext; else t->pk_head[p->list] = p->lnext;
    if (p->lnext) p->lnext->lprev = p->lprev; else t->pk_tail[p->list] = p->lprev;
    p->lprev = p->lnext = NULL;
}

static void pk_push_front(transport_t *t, peerkey_t *p)
{
    p->list = p->state == PK_PROVEN;
    p->lprev = NULL;
    p->lnext = t->pk_head[p->list];
    if (t->pk_head[p->list]) t->pk_head[p->list]->lprev = p; else t->pk_tail[p->list] = p;
    t->pk_head[p->list] = p;
}

static void peerkey_touch(transport_t *t, peerkey_t *p)
{
    if (t->pk_head[p->list] == p) return;
    pk_unlink(t, p);
    pk_push_front(t, p);
}

/* A binding changes state: into the LRU list of its new state, as its most recent. */
static void peerkey_state(transport_t *t, peerkey_t *p, int state)
{
    pk_unlink(t, p);
    p->state = state;
    pk_push_front(t, p);
}

static void peerkey_free(transport_t *t, peerkey_t *p)
{
    peerkey_t **pp = &t->pk_buckets[addr_hash(p->addr, 7) & (t->nbuckets - 1)];
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    pk_unlink(t, p);
    free(p);
    t->npk--;
}

/* Makes room for one binding: the least recently used unproven one; a proven one only for an
 * operator's seed (how), never for a claim (a flood of claims must not push out the keys the
 * node's dials proved). Its address is learnt again from the next claim or member entry. 0, or -1
 * when none may go. */
static int peerkey_evict(transport_t *t, int how)
{
    peerkey_t *victim = t->pk_tail[0] != NULL ? t->pk_tail[0] : how == TRANSPORT_PEER_PROVEN ? t->pk_tail[1] : NULL;
    if (victim == NULL) return -1;
    peerkey_free(t, victim);
    bump(&t->st.peer_keys_evicted, 1);
    return 0;
}

/* Records a refused claim for the owner's log line (transport_stats_t.last_key_claim). */
static void claim_refused(transport_t *t, const char *addr, const uint8_t held[32], const uint8_t claimed[32])
{
    char h[65], c[65];
    sodium_bin2hex(h, sizeof h, held, 32);
    sodium_bin2hex(c, sizeof c, claimed, 32);
    bump(&t->st.peer_key_refused, 1);
    int w = snprintf(t->st.last_key_claim, sizeof t->st.last_key_claim,
                     "node %.16s... claimed address %s, which is node %.16s...'s", c, addr, h);
    (void)w;
}

int transport_set_peer(transport_t *t, const char *addr, const uint8_t node_pk[32], int how)
{
    uint8_t curve[32];
    if (!transport_addr_valid(addr)) return -1;
    peerkey_t *p = (peerkey_t *)peerkey_find(t, addr);
    if (p != NULL && memcmp(p->node_pk, node_pk, 32) == 0) {      /* the common case */
        peerkey_touch(t, p);
        return 0;
    }
    if (p != NULL && how != TRANSPORT_PEER_PROVEN && p->state != PK_FAILED) {
        int rb = t->rebind != NULL ? t->rebind(t->rebind_ctx, addr, p->node_pk, node_pk) : TRANSPORT_REBIND_NO;
        if (rb == TRANSPORT_REBIND_STALE) {
            bump(&t->st.peer_key_stale, 1);
            return 2;
        }
        if (rb != TRANSPORT_REBIND_YES) {
            claim_refused(t, addr, p->node_pk, node_pk);
            return 1;
        }
    }
    if (crypto_sign_ed25519_pk_to_curve25519(curve, node_pk) != 0) return -1;
    if (p != NULL) {
        memcpy(p->node_pk, node_pk, 32);
        memcpy(p->curve_pk, curve, 32);
        peerkey_state(t, p, PK_NEW);
        p->fails = 0;
        p->knows_us = 0;
        bump(&t->st.peer_keys_replaced, 1);
        transport_forget(t, addr);         /* its DEALERs spoke to the old key */
        return 0;
    }
    while (t->npk >= t->o.max_peer_keys)
        if (peerkey_evict(t, how) != 0) {        /* full of proven keys: the claim is not held */
            bump(&t->st.peer_key_table_full, 1);
            return -1;
        }
    if ((p = calloc(1, sizeof *p)) == NULL) return -1;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    memcpy(p->node_pk, node_pk, 32);
    memcpy(p->curve_pk, curve, 32);
    p->state = PK_NEW;
    size_t b = addr_hash(addr, 7) & (t->nbuckets - 1);
    p->next = t->pk_buckets[b];
    t->pk_buckets[b] = p;
    pk_push_front(t, p);
    t->npk++;
    return 0;
}

int transport_peer_key(const transport_t *t, const char *addr, uint8_t node_pk[32])
{
    const peerkey_t *p = transport_addr_valid(addr) ? peerkey_find(t, addr) : NULL;
    if (p == NULL) return -1;
    memcpy(node_pk, p->node_pk, 32);
    return p->state == PK_PROVEN;
}

void transport_set_rebind(transport_t *t, transport_rebind_fn fn, void *ctx)
{
    t->rebind = fn;
    t->rebind_ctx = ctx;
}

int transport_set_hello(transport_t *t, const uint8_t *cert, size_t len, transport_hello_fn fn,
                        void *ctx)
{
    uint8_t *copy = NULL;
    if (cert != NULL && len > 0) {
        if (len > t->o.max_msg / 2 || (copy = malloc(len)) == NULL) return -1;
        memcpy(copy, cert, len);
    }
    free(t->hello);
    t->hello = copy;
    t->hello_len = copy != NULL ? len : 0;
    t->hello_fn = fn;
    t->hello_ctx = ctx;
    return 0;
}

/* ------------------------------------------------------------------ sending */

static int dealer_send(transport_t *t, dealer_t *d, int type, const uint8_t *body, size_t len);
static int dealer_send_q(transport_t *t, dealer_t *d, int type, const uint8_t *body, size_t len, sendq_t *q);
static int hello_send(transport_t *t, dealer_t *d, int want_reply);
static void hello_first(transport_t *t, dealer_t *d);
static int hello_send_why(transport_t *t, dealer_t *d, int want_reply, const char *refused);

/* transport_send, and with bulk the byte budgets (see transport_send_bulk). */
static int send_to(transport_t *t, const char *addr, int type, const uint8_t *body, size_t len, int bulk)
{
    if (!transport_addr_valid(addr) || len > t->o.max_msg) {
        bump(&t->st.send_dropped, 1);
        return -1;
    }
    Trib__Envelope env = TRIB__ENVELOPE__INIT;        /* its size, before any connection opens */
    env.version = TRANSPORT_PROTOCOL_VERSION;
    env.type = (Trib__MsgType)type;
    env.sender.data = t->my_pk;
    env.sender.len = 32;
    env.sender_addr = t->adv;
    env.seq = t->seq + 1;
    env.body.data = (uint8_t *)body;
    env.body.len = len;
    int lane = (t->o.priority_types >> type) & 1;
    dealer_t *d = NULL;
    if (trib__envelope__get_packed_size(&env) > t->o.max_msg) {
        bump(&t->st.send_dropped, 1);
        return -1;
    }
    /* A light message (a small one of a type that is mostly small: a federation-log sync step) goes
     * where the membership messages go: at N = 20 a sync with each peer opened that pair's second
     * connection both ways while a federation joined. Small, it queues nothing behind it. */
    if (!lane && ((t->o.light_types >> type) & 1) && len <= t->o.light_max)
        lane = dealer_find(t, addr, 1) != NULL || dealer_find(t, addr, 0) == NULL;
    if ((d = dealer_find(t, addr, lane)) != NULL) {
        lru_unlink(t, d);
        lru_push_front(t, d);
    } else if ((d = dealer_open(t, addr, lane)) == NULL) {
        bump(&t->st.send_dropped, 1);
        return -1;
    } else if (type != TRIB__MSG_TYPE__MSG_CERT_HELLO) {
        hello_first(t, d);
    }
    if (!bulk)
        return dealer_send(t, d, type, body, len);
    if (d->bulk == NULL && (d->bulk = sendq_new(t->bulk)) == NULL) {
        bump(&t->st.send_dropped, 1);
        return -1;
    }
    /* Over a budget: not now. A peer's empty queue always takes one message (one larger than the
     * budget is not refused for ever), also past the total while all queues together hold less
     * than the total and a peer's budget: so peers that hold the total and read nothing cannot
     * stop one that reads, and the total is passed by a peer's budget and a message at most. */
    size_t held = sendq_bytes(d->bulk), all = sendq_bytes(t->bulk);
    size_t room = held > 0 ? t->o.bulk_total_bytes : t->o.bulk_total_bytes + t->o.bulk_peer_bytes;
    if ((held > 0 && held + len > t->o.bulk_peer_bytes) || (all > 0 && all + len > room)) {
        bump(&t->st.bulk_busy, 1);
        return TRANSPORT_BUSY;
    }
    if (held == 0)
        d->bulk_moved_ms = clock_ms();

    return dealer_send_q(t, d, type, body, len, d->bulk);
}

int transport_send(transport_t *t, const char *addr, int type, const uint8_t *body, size_t len)
{
    assert(t != NULL && type_known(type) && (body != NULL || len == 0));
    return send_to(t, addr, type, body, len, 0);
}

int transport_send_bulk(transport_t *t, const char *addr, int type, const uint8_t *body, size_t len)
{
    assert(t != NULL && type_known(type) && (body != NULL || len == 0));
    return send_to(t, addr, type, body, len, 1);
}

size_t transport_drop_bulk(transport_t *t, const char *addr)
{
    if (addr == NULL || strnlen(addr, TRANSPORT_ADDR_MAX) >= TRANSPORT_ADDR_MAX) return 0;
    size_t held = 0;
    for (int lane = 0; lane < 2; lane++) {
        dealer_t *d = dealer_find(t, addr, lane);
        size_t n = d != NULL && d->bulk != NULL ? sendq_bytes(d->bulk) : 0;
        if (n == 0) continue;
        held += n;
        dealer_close(t, d);
        bump(&t->st.bulk_dropped, 1);
    }
    return held;
}

/* First on a new connection (chartered): who we are, unless the node there said it holds our
 * certificate (one hello per pair, not one per connection); and theirs, unless we hold it. */
static void hello_first(transport_t *t, dealer_t *d)
{
    if (t->hello == NULL) return;
    const peerkey_t *pk = peerkey_find(t, d->addr);
    int known = pk != NULL && t->allow != NULL &&
                t->allow(t->allow_ctx, pk->curve_pk, TRANSPORT_ASK) == TRANSPORT_ADMIT;
    if (!known || !pk->knows_us || memcmp(pk->curve_pk, d->server_pk, 32) != 0)
        hello_send(t, d, !known);
}

int transport_warm(transport_t *t, const char *addr, int max_shaking)
{
    assert(t != NULL);
    if (!transport_addr_valid(addr)) return -1;
    if (dealer_find(t, addr, 1) != NULL) return 0;
    if (t->ndealers >= t->o.max_peers) return -1;
    if (t->o.per_node_keys && t->allow != NULL) {   /* chartered: a key admitted now (certified) */
        const peerkey_t *pk = peerkey_find(t, addr);
        if (pk == NULL || t->allow(t->allow_ctx, pk->curve_pk, TRANSPORT_ASK) != TRANSPORT_ADMIT) return -1;
    }
    int64_t now = clock_ms();
    int shaking = 0;
    for (const dealer_t *d = t->mlist; d; d = d->mnext)   /* watched until their first handshake */
        shaking += now - d->opened_ms < SHAKE_SLOT_MS;
    if (shaking >= max_shaking) return -2;
    dealer_t *d = dealer_open(t, addr, 1);
    if (d == NULL) return -1;
    t->st.dealers_warmed++;
    hello_first(t, d);
    return 1;
}

/* Sends our certificate on d (refused: why we refused theirs, or NULL). */
static int hello_send_why(transport_t *t, dealer_t *d, int want_reply, const char *refused)
{
    Trib__CertHello h = TRIB__CERT_HELLO__INIT;
    h.refused = (char *)(refused ? refused : "");
    h.cert.data = t->hello;
    h.cert.len = t->hello_len;
    h.want_reply = want_reply != 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    size_t n = trib__cert_hello__get_packed_size(&h);
    uint8_t *b = malloc(n);
    if (b == NULL) return -1;
    trib__cert_hello__pack(&h, b);
    int rc = dealer_send(t, d, TRIB__MSG_TYPE__MSG_CERT_HELLO, b, n);
    free(b);
    if (rc == 0) d->hello_ms = clock_ms();
    return rc;
}

static int hello_send(transport_t *t, dealer_t *d, int want_reply)
{
    return hello_send_why(t, d, want_reply, NULL);
}

/* Sends a hello to addr on the priority lane, where the membership messages that follow a hello
 * go: an answer on the other lane opened a third connection per pair while a federation joined. */
static void hello_to(transport_t *t, const char *addr, int want_reply, const char *refused)
{
    if (t->hello == NULL) return;
    dealer_t *d = dealer_find(t, addr, 1);
    if (d == NULL && (d = dealer_open(t, addr, 1)) == NULL) return;
    hello_send_why(t, d, want_reply, refused);
}

/* A message waits for a connection that never came up and has no TCP connection now (none under
 * way to abort: a slow handshake is never cut short): it dials again at once instead of at the end
 * of its backoff (up to RECONNECT_MAX_MS, longer than a short pending_ms), at most once per
 * REDIAL_MS. A node started before its seed reaches it with its next join, not one backoff later.
 * Such a connection has nothing queued in ZeroMQ (ZMQ_IMMEDIATE), so nothing is lost. */
static void redial_unanswered(transport_t *t, dealer_t *d, int64_t now)
{
    char ep[TRANSPORT_ADDR_MAX + 8];
    if (d->mon == NULL || now - d->opened_ms < REDIAL_AFTER_MS || now - d->redial_ms < REDIAL_MS) return;
    if (monitor_read(t, d->mon, d)) {       /* its handshake just succeeded */
        watch_end_up(t, d);
        return;
    }
    if (d->tcp_up) return;
    d->redial_ms = now;
    snprintf(ep, sizeof ep, "tcp://%s", d->addr);
    if (zmq_disconnect(d->sock, ep) == 0 && zmq_connect(d->sock, ep) == 0) t->st.dealers_redialled++;
}

/* Packs and hands one envelope to d, or holds it until the connection is up. */
static int dealer_send(transport_t *t, dealer_t *d, int type, const uint8_t *body, size_t len)
{
    return dealer_send_q(t, d, type, body, len, NULL);
}

/* dealer_send, the message counted in q while ZeroMQ holds it (q NULL: not counted). */
static int dealer_send_q(transport_t *t, dealer_t *d, int type, const uint8_t *body, size_t len, sendq_t *q)
{
    Trib__Envelope env = TRIB__ENVELOPE__INIT;
    zmq_msg_t msg;
    int64_t now = clock_ms();
    d->used_ms = now;
    if (d->rehello && type != TRIB__MSG_TYPE__MSG_CERT_HELLO && t->hello != NULL) {
        d->rehello = 0;
        hello_send(t, d, 1);
    }
    env.version = TRANSPORT_PROTOCOL_VERSION;
    env.type = (Trib__MsgType)type;
    if (!d->slim) {
        env.sender.data = t->my_pk;
        env.sender.len = 32;
        env.sender_addr = t->adv;
    }
    env.seq = ++t->seq;
    env.body.data = (uint8_t *)body;
    env.body.len = len;
    size_t size = trib__envelope__get_packed_size(&env);
    if (size > t->o.max_msg) goto drop;
    if ((q ? sendq_msg(q, &msg, size) : zmq_msg_init_size(&msg, size)) != 0) goto drop;
    trib__envelope__pack(&env, zmq_msg_data(&msg));

    if (d->pend_count > 0) pend_flush(t, d, now);
    if (d->pend_count == 0) {
        if (zmq_msg_send(&msg, d->sock, ZMQ_DONTWAIT) >= 0) {
            bump(&t->st.msgs_out[type], 1);
            bump(&t->st.bytes_out, size);
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR) {
            zmq_msg_close(&msg);
            goto drop;
        }
    }
    /* No connection yet (ZMQ_IMMEDIATE) or the peer's queue is full: wait a little. */
    if (d->pend_count >= t->o.pending_max) {
        zmq_msg_close(&msg);
        goto drop;
    }
    if (d->pend == NULL && (d->pend = calloc((size_t)t->o.pending_max, sizeof *d->pend)) == NULL) {
        zmq_msg_close(&msg);
        goto drop;
    }
    pend_t *p = &d->pend[(d->pend_head + d->pend_count) % t->o.pending_max];
    bump(&t->st.sends_held[d->lane != 0], 1);
    zmq_msg_init(&p->msg);
    zmq_msg_move(&p->msg, &msg);
    zmq_msg_close(&msg);
    p->type = type;
    p->deadline_ms = now + t->o.pending_ms;
    d->pend_count++;
    plist_add(t, d);
    redial_unanswered(t, d, now);
    return 0;
drop:
    bump(&t->st.send_dropped, 1);
    return -1;
}

int transport_forget(transport_t *t, const char *addr)
{
    int n = 0;
    if (addr == NULL || strnlen(addr, TRANSPORT_ADDR_MAX) >= TRANSPORT_ADDR_MAX) return 0;
    for (int lane = 0; lane < 2; lane++) {
        dealer_t *d = dealer_find(t, addr, lane);
        if (d != NULL) {
            dealer_close(t, d);
            n++;
        }
    }
    return n;
}

int transport_reached(const transport_t *t, const char *addr)
{
    assert(t != NULL);
    if (!transport_addr_valid(addr)) return 0;
    for (int lane = 0; lane < 2; lane++) {
        const dealer_t *d = dealer_find(t, addr, lane);
        if (d != NULL && d->up) return 1;
    }
    return 0;
}

int transport_forget_down(transport_t *t, const char *addr)
{
    int n = 0;
    if (addr == NULL || strnlen(addr, TRANSPORT_ADDR_MAX) >= TRANSPORT_ADDR_MAX) return 0;
    for (int lane = 0; lane < 2; lane++) {
        dealer_t *d = dealer_find(t, addr, lane);
        int ev = 0;
        size_t sz = sizeof ev;
        /* ZMQ_IMMEDIATE: a DEALER can be written to only while a connection is up */
        if (d == NULL || (zmq_getsockopt(d->sock, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLOUT))) continue;
        dealer_close(t, d);
        n++;
    }
    return n;
}

/* Closes the connections whose handshake never succeeded (still watched) and that were given
 * nothing for unanswered_ms: ZeroMQ would redial them until the process ends (a member that died,
 * an address that never answered). The next message to the address opens a connection again. */
static void sweep_unanswered(transport_t *t, int64_t now)
{
    if (t->o.unanswered_ms <= 0 || now - t->sweep_ms < SWEEP_MS) return;
    t->sweep_ms = now;
    for (dealer_t *d = t->mlist, *next; d; d = next) {
        next = d->mnext;
        if (d->pend_count == 0 && now - d->used_ms >= t->o.unanswered_ms) {
            dealer_close(t, d);
            t->st.dealers_unanswered++;
        }
    }
}

/* Closes the connections that hold bulk bytes of which ZeroMQ wrote none for BULK_STALL_MS (counted
 * in bulk_dropped): a peer that reads nothing would otherwise hold its budget and the total's for as
 * long as its connection stays open, whether or not a stream of its is still open (its streams
 * cancelled or finished, nothing expires). */
static void sweep_bulk(transport_t *t, int64_t now)
{
    if (now - t->bulk_sweep_ms < SWEEP_MS) return;
    t->bulk_sweep_ms = now;
    for (dealer_t *d = t->lru_head, *next; d; d = next) {
        next = d->lnext;
        if (d->bulk == NULL) continue;
        size_t freed = sendq_freed(d->bulk);
        if (sendq_bytes(d->bulk) == 0 || freed != d->bulk_freed) {
            d->bulk_freed = freed;
            d->bulk_moved_ms = now;
        } else if (now - d->bulk_moved_ms >= BULK_STALL_MS) {
            dealer_close(t, d);
            bump(&t->st.bulk_dropped, 1);
        }
    }
}

static void flush_all(transport_t *t, int64_t now)
{
    dealer_t *d = t->plist;
    while (d != NULL) {
        dealer_t *next = d->pnext;       /* pend_flush may unlink d */
        pend_flush(t, d, now);
        d = next;
    }
}

int transport_pollitems(transport_t *t, zmq_pollitem_t *items, int max)
{
    assert(t != NULL && items != NULL && max >= 2);
    int64_t now = clock_ms();
    flush_all(t, now);
    sweep_unanswered(t, now);
    sweep_bulk(t, now);
    items[0] = (zmq_pollitem_t){.socket = t->router, .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = t->zap, .events = ZMQ_POLLIN};
    int n = 2;
    for (dealer_t *d = t->plist; d != NULL && n < max; d = d->pnext)
        items[n++] = (zmq_pollitem_t){.socket = d->sock, .events = ZMQ_POLLOUT};
    return n;
}

/* ------------------------------------------------------------------ ZAP (RFC 27) */

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* Answers one ZAP request. 1 answered, 0 none waiting, -1 context terminated. */
static int zap_handle_one(transport_t *t)
{
    zmq_msg_t part[ZAP_MAX_PARTS];
    int n = 0, extra = 0, more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < ZAP_MAX_PARTS ? &part[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, t->zap, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(m);
            if (n == 0) return e == ETERM ? -1 : 0;
            break;                        /* cannot happen: parts of a message come together */
        }
        more = zmq_msg_more(m);
        if (m == &scratch) { zmq_msg_close(m); extra = 1; }
        else n++;
    }

    const char *status = "500", *text = "malformed ZAP request";
    char user[65] = "";
    /* version, request id, domain, address, routing id, mechanism, credentials... */
    if (!extra && n >= 6 && frame_is(&part[0], "1.0")) {
        if (!frame_is(&part[5], "CURVE")) {
            status = "400"; text = "only CURVE is accepted";
        } else if (n != 7 || zmq_msg_size(&part[6]) != 32) {
            status = "400"; text = "bad CURVE credentials";
        } else {
            const uint8_t *key = zmq_msg_data(&part[6]);
            if (t->allow == NULL || t->allow(t->allow_ctx, key, 1) != TRANSPORT_REFUSE) {
                status = "200"; text = "OK";
                sodium_bin2hex(user, sizeof user, key, 32);
            } else {
                status = "400"; text = "key not admitted";
            }
        }
    }
    if (status[0] != '2') bump(&t->st.zap_denied, 1);

    const void *rid = n >= 2 ? zmq_msg_data(&part[1]) : "";
    size_t rid_len = n >= 2 ? zmq_msg_size(&part[1]) : 0;
    int rc = 0;
    rc |= zmq_send(t->zap, "1.0", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc |= zmq_send(t->zap, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc |= zmq_send(t->zap, status, 3, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc |= zmq_send(t->zap, text, strlen(text), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc |= zmq_send(t->zap, user, strlen(user), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc |= zmq_send(t->zap, "", 0, ZMQ_DONTWAIT) < 0;
    for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
    if (rc && zmq_errno() == ETERM) return -1;
    return 1;
}

/* ------------------------------------------------------------------ receiving */

/* True when the connection's ZAP User-Id (hex CURVE key) is the CURVE form of sender. */
static int sender_authentic(transport_t *t, zmq_msg_t *frame, const uint8_t sender[32], uint8_t curve[32])
{
    const char *uid = zmq_msg_gets(frame, "User-Id");
    if (uid == NULL) return 0;
    curve_slot_t *c = &t->curve_cache[(sender[0] ^ sender[31]) % 64];
    if (!c->hex[0] || memcmp(c->ed, sender, 32) != 0) {
        if (crypto_sign_ed25519_pk_to_curve25519(c->curve, sender) != 0) {
            c->hex[0] = '\0';
            return 0;
        }
        memcpy(c->ed, sender, 32);
        sodium_bin2hex(c->hex, sizeof c->hex, c->curve, 32);
    }
    memcpy(curve, c->curve, 32);
    return strcmp(uid, c->hex) == 0;
}

/* Who sent a message: from the envelope, else from the connection's routing id. */
typedef struct {
    const uint8_t *pk;                      /* NULL when neither names a 32-byte id */
    const char *addr;
    uint8_t rid_pk[32];                     /* copies: the routing id is closed before use */
    char rid_addr[TRANSPORT_ADDR_MAX];
} from_t;

/* The id and address a routing id of ours (RID_MARK...) names, into f; nothing for others. */
static void from_rid(zmq_msg_t *rid, from_t *f)
{
    const uint8_t *r = zmq_msg_data(rid);
    size_t n = zmq_msg_size(rid);
    f->pk = NULL;
    f->addr = f->rid_addr;
    f->rid_addr[0] = '\0';
    if (n <= RID_FIXED || n - RID_FIXED >= TRANSPORT_ADDR_MAX || r[0] != RID_MARK) return;
    memcpy(f->rid_pk, r + 1, 32);
    f->pk = f->rid_pk;
    memcpy(f->rid_addr, r + RID_FIXED, n - RID_FIXED);
    f->rid_addr[n - RID_FIXED] = '\0';
}

/* Checks one payload frame. Returns the unpacked envelope (curve: the sender's CURVE key; f: the
 * sender, the envelope's fields where given, else the routing id's), or NULL having counted the
 * reason. */
static Trib__Envelope *check_frame(transport_t *t, zmq_msg_t *frame, uint8_t curve[32], from_t *f)
{
    size_t size = zmq_msg_size(frame);
    if (size > t->o.max_msg) {
        bump(&t->st.dropped_oversize, 1);
        return NULL;
    }
    Trib__Envelope *env = trib__envelope__unpack(NULL, size, zmq_msg_data(frame));
    if (env == NULL) {
        bump(&t->st.dropped_undecodable, 1);
        return NULL;
    }
    uint64_t *reason = NULL;
    if (env->sender.len) f->pk = env->sender.len == 32 ? env->sender.data : NULL;
    if (env->sender_addr && env->sender_addr[0]) f->addr = env->sender_addr;
    if (env->version != TRANSPORT_PROTOCOL_VERSION) reason = &t->st.dropped_bad_version;
    else if (f->pk == NULL || !transport_addr_valid(f->addr))
        reason = &t->st.dropped_malformed;
    else if (!sender_authentic(t, frame, f->pk, curve)) reason = &t->st.dropped_spoofed;
    else if (!type_known((int)env->type)) reason = &t->st.dropped_unknown_type;
    if (reason != NULL) {
        bump(reason, 1);
        trib__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

/* Whether sender may be asked for its certificate now: once per ASK_MS per sender key, and at most
 * ASK_BURST asks a second in all (a flood of new keys makes no flood of hellos). */
static int ask_due(transport_t *t, const uint8_t pk[32])
{
    int64_t now = clock_ms();
    ask_slot_t *a = &t->asks[pk[0] % ASK_SLOTS];
    int same = memcmp(a->pk, pk, 32) == 0;
    if (same && now - a->ms < ASK_MS) return 0;
    if (now - t->ask_window_ms >= 1000) {
        t->ask_window_ms = now;
        t->asks_in_window = 0;
    }
    if (t->asks_in_window >= ASK_BURST) return 0;
    t->asks_in_window++;
    memcpy(a->pk, pk, 32);
    a->ms = now;
    bump(&t->st.cert_asks, 1);
    return 1;
}

/* A certificate hello: offered to hello_fn; answered with ours when asked and accepted, or with
 * ours and the reason when refused (at most once per ASK_MS, never to a hello that is itself a
 * refusal, so two nodes that refuse each other do not bounce refusals). */
static void hello_recv(transport_t *t, const Trib__Envelope *env, const from_t *f, const uint8_t curve[32])
{
    bump(&t->st.hellos_in, 1);
    Trib__CertHello *h = trib__cert_hello__unpack(NULL, env->body.len, env->body.data);
    transport_hello_t in = {.sender = f->pk, .sender_addr = f->addr};
    if (h != NULL) {
        in.cert = h->cert.data;
        in.len = h->cert.len;
        in.sender_time_ms = h->time_ms;
        in.refused = h->refused;
    }
    int ok = h != NULL && t->hello_fn != NULL && t->hello_fn(t->hello_ctx, &in) == 1;
    if (!ok) {
        bump(&t->st.hellos_refused, 1);
        if (h != NULL && (h->refused == NULL || h->refused[0] == '\0') && t->hello != NULL &&
            ask_due(t, f->pk)) {
            if (t->o.per_node_keys) transport_set_peer(t, f->addr, f->pk, TRANSPORT_PEER_CLAIM);
            hello_to(t, f->addr, 0, in.why[0] ? in.why : "refused");
        }
    } else {
        /* our reply goes to its address only when that is its key's (hello_to dials the binding) */
        if (t->o.per_node_keys && transport_set_peer(t, f->addr, f->pk, TRANSPORT_PEER_CLAIM) == 0) {
            peerkey_t *p = (peerkey_t *)peerkey_find(t, f->addr);
            /* asking for ours, or saying it refused ours: it does not hold it */
            if (p != NULL) p->knows_us = !h->want_reply && (h->refused == NULL || h->refused[0] == '\0');
        }
        /* Asked for ours. Two nodes meeting at once each ask for the other's certificate in their
         * first hellos: ours, on its way, answers (an answer too doubled the hellos of a join). With
         * no connection of ours to it, nothing of ours waits to be admitted there: our first
         * message to it will open a connection with our hello first (knows_us is 0), so no
         * connection is opened for the answer alone (at N = 20 those were 50 of the ~370 a join
         * opened: the other side of every gossip Ping that gets no reply). Else the sender may be
         * dropping what we send (it lost our certificate, or asks after dropping a message): the
         * answer goes now, on the priority lane of the address we reach it by. Chartered, the
         * connection is found by the sender's key (its CURVE key, authenticated by this message's
         * handshake), not by the address it advertises: we may have dialled it by another name. */
        if (h->want_reply) {
            char to[TRANSPORT_ADDR_MAX];   /* a copy: opening the answer's dealer may close d */
            int crossed = 0, connected;
            snprintf(to, sizeof to, "%s", f->addr);
            if (t->o.per_node_keys) {
                const dealer_t *d = dealer_of_key(t, f->addr, curve, clock_ms(), &crossed);
                connected = d != NULL;
                if (d != NULL) snprintf(to, sizeof to, "%s", d->addr);
            } else {
                const dealer_t *d = dealer_find(t, f->addr, 1);
                connected = d != NULL || dealer_find(t, f->addr, 0) != NULL;
                crossed = d != NULL && d->hello_ms && clock_ms() - d->hello_ms < CROSS_MS;
            }
            if (connected && !crossed) hello_to(t, to, 0, NULL);
        }
    }
    if (h != NULL) trib__cert_hello__free_unpacked(h, NULL);
}

/* Reads one message from the ROUTER. 1 valid (m filled), 2 dropped, 0 none waiting, -1 ETERM. */
static int router_read_one(transport_t *t, transport_msg_t *m)
{
    zmq_msg_t rid, frame;
    zmq_msg_init(&rid);
    if (zmq_msg_recv(&rid, t->router, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&rid);
        return e == ETERM ? -1 : 0;
    }
    int more = zmq_msg_more(&rid);
    from_t f;
    from_rid(&rid, &f);
    zmq_msg_close(&rid);
    if (!more) {                               /* a ROUTER always prefixes the routing id */
        bump(&t->st.dropped_malformed, 1);
        return 2;
    }
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, t->router, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&frame);
        return e == ETERM ? -1 : 2;
    }
    bump(&t->st.bytes_in, zmq_msg_size(&frame));
    int extra = 0;
    for (more = zmq_msg_more(&frame); more;) {    /* an envelope is exactly one frame */
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, t->router, ZMQ_DONTWAIT) < 0) more = 0;
        else {
            bump(&t->st.bytes_in, zmq_msg_size(&x));
            more = zmq_msg_more(&x);
        }
        zmq_msg_close(&x);
        extra = 1;
    }
    if (extra) {
        bump(&t->st.dropped_malformed, 1);
        zmq_msg_close(&frame);
        return 2;
    }
    uint8_t curve[32];
    Trib__Envelope *env = check_frame(t, &frame, curve, &f);
    zmq_msg_close(&frame);
    if (env == NULL) return 2;
    if (env->type == TRIB__MSG_TYPE__MSG_CERT_HELLO) {
        hello_recv(t, env, &f, curve);
        trib__envelope__free_unpacked(env, NULL);
        return 2;
    }
    if (t->allow != NULL) {
        if (t->allow(t->allow_ctx, curve, 0) != TRANSPORT_ADMIT) {
            bump(&t->st.dropped_uncertified, 1);
            if (t->hello != NULL && ask_due(t, f.pk)) {   /* who are you? */
                if (t->o.per_node_keys) transport_set_peer(t, f.addr, f.pk, TRANSPORT_PEER_CLAIM);
                hello_to(t, f.addr, 1, NULL);
            }
            trib__envelope__free_unpacked(env, NULL);
            return 2;
        }
    }
    int claim = t->o.per_node_keys ? transport_set_peer(t, f.addr, f.pk, TRANSPORT_PEER_CLAIM) : 0;
    if (claim == 1 || claim == 2) {
        /* refused: the address is another node's, and nothing may reply to it or act on it. Signed
         * federation objects verify themselves (a rotated peer's hand-over comes this way): they go
         * on without the address; the rest is dropped. */
        if (env->type != TRIB__MSG_TYPE__MSG_FED_PUSH) {
            bump(claim == 2 ? &t->st.dropped_retired_key : &t->st.dropped_claimed_addr, 1);
            trib__envelope__free_unpacked(env, NULL);
            return 2;
        }
        f.addr = "";
    }

    m->type = (int)env->type;
    memcpy(m->sender, f.pk, 32);
    snprintf(m->sender_addr, sizeof m->sender_addr, "%s", f.addr);
    m->seq = env->seq;
    m->body = env->body.len > 0 ? env->body.data : NULL;
    m->body_len = env->body.len;
    m->env_ = env;
    bump(&t->st.msgs_in[m->type], 1);
    return 1;
}

int transport_recv(transport_t *t, transport_msg_t *m)
{
    assert(t != NULL && m != NULL);
    memset(m, 0, sizeof *m);
    for (int i = 0; i < ZAP_BATCH; i++) {
        int r = zap_handle_one(t);
        if (r < 0) return -1;
        if (r == 0) break;
    }
    if (t->plist != NULL) flush_all(t, clock_ms());
    monitors_poll(t);
    for (int i = 0; i < RECV_BATCH; i++) {
        int r = router_read_one(t, m);
        if (r == 1 || r == 0 || r == -1) return r;
    }
    return 0;
}

void transport_msg_free(transport_msg_t *m)
{
    if (m == NULL) return;
    if (m->env_ != NULL) trib__envelope__free_unpacked(m->env_, NULL);
    memset(m, 0, sizeof *m);
}
