/* gossip/linkserve.c - the owner's link server (see linkserve.h).
 *
 * Owns: the listening socket and its acceptor thread, one thread per link (a slot each, joined
 * by the acceptor when done and at stop), the handshake's admission (hello = node id, chartered:
 * admitted now), the request loop of a link, the links' budget of batch room (per node id and in
 * all: a read past it gets narrow batches), the link counters with their rate-limited log, and
 * counting the buffers links free for memtrim.c, which the acceptor calls.
 * Must not: serve a live read, call the gossip loop, or keep a lock while a link reads or sends. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "gossip/clock.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/log.h"
#include "gossip/memtrim.h"

#define LOG_EVERY_MS 10000   /* a refusal of one reason is logged at most this often */
#define ACCEPT_PAUSE_MS 100  /* out of descriptors (or memory): the acceptor waits this long */
#define ADMIT_RECHECK_MS 1000 /* chartered: a read in progress asks the trust store again this often */

/* Refusal reasons: link_reason_t's, then ours. */
enum { R_SPOOFED = LINK_NREASONS, R_NOT_ADMITTED, R_BUSY, R_PER_PEER, R_BAD_FRAME, R_NO_REQUEST, R_ACCEPT, R_COUNT };

typedef struct slot {
    pthread_t th;
    int used, done;
    int fd;                      /* accepted, handshake under way (the thread owns it) */
    link_t *l;                   /* established (shut down at stop) */
    int admitted;                /* counted in links, its initiator's id in id */
    atomic_size_t held;          /* bytes its link's and page's buffers hold between requests */
    size_t room;                 /* the batch room its read holds of the budget (mu) */
    uint8_t id[32];
    struct linkserve *s;
} slot_t;

struct linkserve {
    linkserve_opts_t o;
    int lfd, port;
    int wake[2];                 /* stop: the acceptor's poll wakes */
    pthread_t acceptor;
    int started;
    pthread_mutex_t mu;
    int stopping;                /* mu */
    slot_t *slots;               /* o.max_links + o.max_handshakes of them (mu) */
    unsigned nslots;
    unsigned handshakes, links;  /* slots with a handshake under way; admitted links (mu) */
    size_t room;                 /* the batch room reads hold now, all keys (mu) */
    atomic_uint_fast64_t narrowed;   /* reads served with narrow batches (the budget was held) */
    log_limit_t narrow_log;
    atomic_uint open;            /* links whose first frame decrypted, served now */
    atomic_uint_fast64_t accepted, accepted_aes, requests, lost, refused[R_COUNT];
    log_limit_t refused_log[R_COUNT];
};

static const char *reason_name(int r)
{
    switch (r) {
    case R_SPOOFED:      return "spoofed";
    case R_NOT_ADMITTED: return "not_admitted";
    case R_BUSY:         return "busy";
    case R_PER_PEER:     return "per_peer";
    case R_ACCEPT:       return "accept";
    case R_BAD_FRAME:    return "bad_frame";
    case R_NO_REQUEST:   return "no_request";
    default:             return link_reason_name((link_reason_t)r);
    }
}

/* Counts a refusal and logs it unless one of its reason was logged lately. */
__attribute__((format(printf, 3, 4)))
static void refused(linkserve_t *s, int reason, const char *fmt, ...)
{
    atomic_fetch_add(&s->refused[reason], 1);
    uint64_t held;
    if (!log_limit(&s->refused_log[reason], LOG_EVERY_MS, &held))
        return;
    char line[400], tail[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_warn("link: refused a link (%s): %s%s", reason_name(reason), line, log_held(tail, sizeof tail, held, ""));
}

void link_prologue_open(const char *secret, uint8_t out[32])
{
    static const char tag[] = "tributary-link:";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag));
    if (!secret)
        secret = "tributary";   /* TRANSPORT_DEFAULT_SECRET */
    crypto_generichash_update(&st, (const uint8_t *)secret, strlen(secret));
    crypto_generichash_final(&st, out, 32);
}

void link_prologue_charter(const uint8_t fed_id[16], uint8_t out[32])
{
    static const char tag[] = "tributary-link-charter:";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag));
    crypto_generichash_update(&st, fed_id, 16);
    crypto_generichash_final(&st, out, 32);
}

int link_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':'), *h = addr;
    if (!colon || !colon[1])
        return -1;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        h = addr + 1;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

void link_refusal(uint8_t out[LINK_REFUSE_LEN], int reason, uint32_t retry_ms)
{
    out[0] = LINK_REFUSE;
    out[1] = (uint8_t)reason;
    out[2] = (uint8_t)(retry_ms >> 24), out[3] = (uint8_t)(retry_ms >> 16);
    out[4] = (uint8_t)(retry_ms >> 8), out[5] = (uint8_t)retry_ms;
}

int link_refusal_parse(const uint8_t *f, size_t len, int *reason, uint32_t *retry_ms)
{
    if (len != LINK_REFUSE_LEN || f[0] != LINK_REFUSE || (f[1] != LINK_REFUSE_BUSY && f[1] != LINK_REFUSE_PER_PEER))
        return -1;
    *reason = f[1];
    *retry_ms = (uint32_t)f[2] << 24 | (uint32_t)f[3] << 16 | (uint32_t)f[4] << 8 | f[5];
    return 0;
}

/* ------------------------------------------------------------------ one link */

typedef struct {
    linkserve_t *s;
    int reason;                  /* why allow refused (R_SPOOFED, R_NOT_ADMITTED) */
    uint8_t id[32];              /* the initiator's node id, once allowed */
} admit_t;

static int allow(void *ctx, const uint8_t client_pk[32], const uint8_t *hello, size_t hello_len, char *err,
                 size_t errlen)
{
    admit_t *a = ctx;
    uint8_t curve[32];
    if (hello_len != 32) {
        a->reason = R_SPOOFED;
        snprintf(err, errlen, "its hello (%zu bytes) is not a node id", hello_len);
        return -1;
    }
    if (a->s->o.trust) {
        /* Chartered: the node id certified for the key proven, byte for byte. Converting the hello
         * would not do: an Ed25519 id with its sign bit flipped converts to the same X25519 key, and
         * the id goes on to the audit as the entry node. */
        trust_info_t info;
        char why[200] = "";
        trust_verdict_t v = trust_admit_info(a->s->o.trust, client_pk, clock_wall_ms(), &info, why, sizeof why);
        if (v != TRUST_OK) {
            a->reason = R_NOT_ADMITTED;
            snprintf(err, errlen, "%s: %s", trust_verdict_name(v), why);
            return -1;
        }
        if (sodium_memcmp(info.node_key, hello, 32) != 0) {
            a->reason = R_SPOOFED;
            snprintf(err, errlen, "its hello is not the node id certified for the key it proved");
            return -1;
        }
        memcpy(a->id, info.node_key, 32);
        return 0;
    }
    /* Open: no identity binding beyond the federation secret (any holder of it may make any key and
     * call itself by it): the hello must only be the Ed25519 form of the key proven. */
    if (crypto_sign_ed25519_pk_to_curve25519(curve, hello) != 0 || sodium_memcmp(curve, client_pk, 32) != 0) {
        a->reason = R_SPOOFED;
        snprintf(err, errlen, "its hello is not the node id of the key it proved");
        return -1;
    }
    memcpy(a->id, hello, 32);
    return 0;
}

typedef struct {
    link_t *l;
    link_reason_t why;
    linkserve_t *s;              /* chartered (s->o.trust): asked again while a read goes on */
    const uint8_t *peer;
    const char *hex;
    uint64_t check_at;           /* clock_ms of the next such check */
    int revoked;                 /* the read ended as its relay is no longer admitted */
} emit_t;

static int still_admitted(linkserve_t *s, link_t *l, const uint8_t peer[32], const char *hex);

/* A batch frame: the type, the batch's other fields, then its lines as the last field (protobuf
 * takes fields in any order): the relay hands them out from the frame as they are (link_split). */
static int emit(void *ctx, const Trib__ReadBatch *b)
{
    emit_t *e = ctx;
    /* a long read is asked about again once a second: a relay revoked mid-read gets no more */
    if (e->s->o.trust && clock_ms() >= e->check_at) {
        if (!still_admitted(e->s, e->l, e->peer, e->hex)) {
            e->revoked = 1;
            return -1;
        }
        e->check_at = clock_ms() + ADMIT_RECHECK_MS;
    }
    Trib__ReadBatch h = *b;
    h.lines = (ProtobufCBinaryData){0, NULL};
    size_t hlen = trib__read_batch__get_packed_size(&h), klen = 0;
    uint8_t key[11];   /* field 9, wire type 2 (length-delimited), then the length as a varint */
    if (b->lines.len) {
        key[klen++] = 9 << 3 | 2;
        for (uint64_t v = b->lines.len; v; v >>= 7)
            key[klen++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    }
    size_t n = 1 + hlen + klen + b->lines.len;
    uint8_t *p = link_frame(e->l, n, &e->why);
    if (!p)
        return -1;
    p[0] = LINK_BATCH;
    trib__read_batch__pack(&h, p + 1);
    memcpy(p + 1 + hlen, key, klen);
    if (b->lines.len)
        memcpy(p + 1 + hlen + klen, b->lines.data, b->lines.len);
    return link_send_frame(e->l, n, -1, &e->why);   /* bounded by the link's floor (serve_link) */
}

/* Chartered: the trust store is asked again before every request, as the peer transport asks it
 * for every message (zap): a relay revoked, or whose certificate expired, while it held a link
 * reads no more over it. 1 still admitted (as the node id it proved at the handshake), else 0
 * (refused, counted as not_admitted). */
static int still_admitted(linkserve_t *s, link_t *l, const uint8_t peer[32], const char *hex)
{
    trust_info_t info;
    char why[200] = "";
    trust_verdict_t v = trust_admit_info(s->o.trust, link_peer_pk(l), clock_wall_ms(), &info, why, sizeof why);
    if (v == TRUST_OK && sodium_memcmp(info.node_key, peer, 32) == 0)
        return 1;
    refused(s, R_NOT_ADMITTED, "node %s... is no longer admitted (%s: %s): its link is closed", hex,
            v == TRUST_OK ? "another node id" : trust_verdict_name(v), v == TRUST_OK ? "its key is certified for another node" : why);
    return 0;
}

/* ------------------------------------------------------------------ the budget */

/* A read's batch room: its page (the records, storage/pager.c) and its frame (their copy, sealed),
 * which it holds until it ends, however slowly its relay takes them. */
#define ROOM_OF(batch) (2 * (batch) + 8192)

/* The batch size of sl's next read: LINK_BATCH_BYTES while its node's reads hold less than
 * room_per_key and all reads less than room_total (the room is taken: give_room), else
 * LINK_NARROW_BYTES (slower, never refused; no room taken: the link limits bound those, ~128 KiB
 * a read), counted and logged at most once per LOG_EVERY_MS. */
static size_t take_room(linkserve_t *s, slot_t *sl, const char *hex)
{
    size_t full = ROOM_OF(LINK_BATCH_BYTES), mine = 0;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < s->nslots; i++)
        mine += s->slots[i].admitted && !memcmp(s->slots[i].id, sl->id, 32) ? s->slots[i].room : 0;
    int fits = mine + full <= s->o.room_per_key && s->room + full <= s->o.room_total;
    if (fits) {
        sl->room = full;
        s->room += full;
    }
    size_t total = s->room;
    pthread_mutex_unlock(&s->mu);
    if (fits)
        return LINK_BATCH_BYTES;
    atomic_fetch_add(&s->narrowed, 1);
    uint64_t held;
    char tail[96];
    if (log_limit(&s->narrow_log, LOG_EVERY_MS, &held))
        log_warn("link: a read of node %s... served with batches of %zu bytes: reads not taken hold the links' "
                 "budget (this node's %zu of %zu bytes, all %zu of %zu)%s", hex, LINK_NARROW_BYTES, mine,
                 s->o.room_per_key, total, s->o.room_total, log_held(tail, sizeof tail, held, "reads narrowed"));
    return LINK_NARROW_BYTES;
}

static void give_room(linkserve_t *s, slot_t *sl)
{
    pthread_mutex_lock(&s->mu);
    s->room -= sl->room;
    sl->room = 0;
    pthread_mutex_unlock(&s->mu);
}

/* Requests on l, one after another, until it closes, idles or fails. The first must come within
 * handshake_ms: until a frame of the initiator's decrypts it is not proven live (a replayed
 * message 1 completes the handshake too, and then sends nothing that decrypts), so the link is
 * counted accepted (and open) only then; without one it is refused as no_request. */
static void serve_link(linkserve_t *s, link_t *l, slot_t *sl)
{
    const uint8_t *peer = sl->id;
    atomic_size_t *held = &sl->held;
    store_page_t pg = {0};
    char hex[17];
    emit_t e = {.l = l, .s = s, .peer = peer, .hex = hex};
    sodium_bin2hex(hex, sizeof hex, peer, 8);
    int first = 1;
    uint64_t first_by = clock_ms() + s->o.handshake_ms;
    for (;;) {
        const uint8_t *f;
        size_t len;
        link_reason_t why = LINK_OK;
        uint64_t now = clock_ms();
        int wait_ms = !first ? (int)s->o.idle_ms : now < first_by ? (int)(first_by - now) : 0;
        /* asleep in poll until a request comes (link_recv would first try a read that finds nothing:
         * a system call per request saved, and system calls are dear in a VM) */
        struct pollfd p = {.fd = link_fd(l), .events = POLLIN};
        int rc = !link_buffered(l) && poll(&p, 1, wait_ms) == 0 ? 0 : -2;
        if (rc == -2) {
            now = clock_ms();
            wait_ms = !first ? (int)s->o.idle_ms : now < first_by ? (int)(first_by - now) : 0;
            rc = link_recv(l, &f, &len, wait_ms, &why);
        }
        if (first && rc <= 0) {
            if (rc == 0 || why == LINK_CLOSED)
                refused(s, R_NO_REQUEST, "node %s... (so its hello says; a replayed first message says the same) "
                        "sent no request within %u ms of its handshake", hex, (unsigned)s->o.handshake_ms);
            else
                refused(s, (int)why, "node %s... (so its hello says): its first frame: %s", hex,
                        link_reason_name(why));
            break;
        }
        if (rc < 0 && why == LINK_OVERSIZE)
            refused(s, LINK_OVERSIZE, "node %s... announced a frame of more than %zu bytes (requests are smaller)",
                    hex, LINK_REQ_MAX);
        if (rc <= 0)
            break;   /* idle (0), closed or failed */
        if (first) {             /* a frame of the initiator's decrypted: it is live */
            first = 0;
            atomic_fetch_add(&s->accepted, 1);
            if (link_protocol(l) == LINK_SUITE_AESGCM)
                atomic_fetch_add(&s->accepted_aes, 1);
            atomic_fetch_add(&s->open, 1);
        }
        if (s->o.trust && !still_admitted(s, l, peer, hex))
            break;
        Trib__ReadRequest *q = len > 1 && f[0] == LINK_REQ ? trib__read_request__unpack(NULL, len - 1, f + 1) : NULL;
        if (!q) {
            refused(s, R_BAD_FRAME, "node %s... sent a frame that is not a read request (%zu bytes)", hex, len);
            break;
        }
        atomic_fetch_add(&s->requests, 1);
        memtrim_freed(link_held(l));
        link_idle(l);            /* the request is unpacked (a copy): its receive buffer goes while the read is served */
        atomic_store(held, 0);   /* in use: a read's buffers */
        e.check_at = clock_ms() + ADMIT_RECHECK_MS;   /* just asked */
        link_send_floor(l, s->o.send_ms, s->o.min_rate);   /* each read its own allowance */
        rc = reads_serve(s->o.reads, peer, q, take_room(s, sl, hex), &pg, emit, &e);
        trib__read_request__free_unpacked(q, NULL);
        if (rc < 0 && e.revoked)
            break;               /* refused (counted, logged) in emit: the link is closed */
        if (rc < 0) {
            atomic_fetch_add(&s->lost, 1);
            if (e.why == LINK_SLOW)
                refused(s, LINK_SLOW, "node %s... took its read at less than %u bytes/s, %u ms behind in all "
                        "(--link-min-rate, --link-send-ms): its link is closed", hex, (unsigned)s->o.min_rate,
                        (unsigned)s->o.send_ms);
            else
                log_debug("link: a relay's link was lost while serving it (%s)", link_reason_name(e.why));
            break;
        }
        memtrim_freed(link_held(l) + pg.cap);
        link_idle(l);            /* between requests no batch's room is kept, in the link nor in pg */
        store_page_free(&pg);    /* (each up to a MiB: 256 idle links would hold half a GiB) */
        give_room(s, sl);
        atomic_store(held, link_held(l) + pg.cap);
    }
    atomic_store(held, 0);
    if (!first)
        atomic_fetch_sub(&s->open, 1);
    memtrim_freed(pg.cap + link_held(l));
    store_page_free(&pg);
    link_idle(l);                /* a read lost or refused: its frame goes before its room is given back */
    give_room(s, sl);
}

/* A link over a limit (over: R_BUSY or R_PER_PEER) is told so, sealed under its keys, so that the
 * relay counts the real reason and dials again after LINK_RETRY_MS, not as after a failure. The
 * answer goes to its first request, read first (within handshake_ms: a request left unread when
 * the link closes would reset the connection, and the relay might lose the answer); a link that
 * sends none (a replayed message 1) gets nothing. */
static void answer_refusal(linkserve_t *s, link_t *l, int over)
{
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    uint8_t out[LINK_REFUSE_LEN];
    link_set_recv_max(l, LINK_REQ_MAX);
    if (link_recv(l, &f, &len, (int)s->o.handshake_ms, &why) != 1)
        return;
    link_refusal(out, over == R_BUSY ? LINK_REFUSE_BUSY : LINK_REFUSE_PER_PEER, LINK_RETRY_MS);
    link_send(l, out, sizeof out, (int)s->o.handshake_ms, &why);
}

static void *link_thread(void *arg)
{
    slot_t *sl = arg;
    linkserve_t *s = sl->s;
    admit_t a = {.s = s, .reason = -1};
    link_keys_t k;
    s->o.keys(s->o.ctx, k.pk, k.sk);   /* the key now: a rotation's new key from its next handshake */
    memcpy(k.prologue, s->o.prologue, 32);
    link_reason_t why = LINK_OK;
    char err[300] = "";
    link_t *l = link_accept(sl->fd, &k, allow, &a, NULL, 0, LINK_MAX_FRAME, (int)s->o.handshake_ms, &why, err,
                            sizeof err);
    sodium_memzero(k.sk, sizeof k.sk);
    pthread_mutex_lock(&s->mu);
    sl->fd = -1;                 /* link_accept owns it now: closed, or l's */
    int stopping = s->stopping, over = 0;
    unsigned mine = 0;
    if (l && !stopping) {        /* admitted links: max_links in all, max_per_peer of one node id */
        for (unsigned i = 0; i < s->nslots; i++)
            mine += s->slots[i].admitted && !memcmp(s->slots[i].id, a.id, 32);
        over = s->links >= s->o.max_links ? R_BUSY : mine >= s->o.max_per_peer ? R_PER_PEER : 0;
        sl->l = l;               /* stop shuts it down (a refused one too, while it is answered) */
        if (!over) {
            sl->admitted = 1;
            memcpy(sl->id, a.id, 32);
            s->links++;
        }
    }
    if (!over)
        s->handshakes--;         /* one refused over a limit keeps its place until it is answered */
    pthread_mutex_unlock(&s->mu);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, a.id, 8);
    if (!l) {
        refused(s, why == LINK_REFUSED && a.reason >= 0 ? a.reason : (int)why, "%s", err[0] ? err : "handshake failed");
    } else if (over) {
        if (over == R_BUSY)
            refused(s, R_BUSY, "%u links are served already (--link-max)", s->o.max_links);
        else
            refused(s, R_PER_PEER, "node %s... holds %u links already (a node's share: a quarter of --link-max, "
                    "64 at most)", hex, mine);
        answer_refusal(s, l, over);
        pthread_mutex_lock(&s->mu);
        sl->l = NULL;
        s->handshakes--;
        pthread_mutex_unlock(&s->mu);
    } else if (!stopping) {
        link_set_recv_max(l, LINK_REQ_MAX);   /* requests are small; batches go out up to LINK_MAX_FRAME */
        serve_link(s, l, sl);
        pthread_mutex_lock(&s->mu);
        sl->l = NULL;
        sl->admitted = 0;
        s->links--;
        pthread_mutex_unlock(&s->mu);
    }
    memtrim_freed(l ? link_held(l) : 0);
    link_close(&l);
    pthread_mutex_lock(&s->mu);
    sl->done = 1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Joins the threads of finished slots (mu held). */
static void reap(linkserve_t *s)
{
    for (unsigned i = 0; i < s->nslots; i++)
        if (s->slots[i].used && s->slots[i].done) {
            pthread_join(s->slots[i].th, NULL);
            s->slots[i].used = s->slots[i].done = 0;
        }
}

static void *acceptor(void *arg)
{
    linkserve_t *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&s->mu);
        int stop = s->stopping;
        reap(s);
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        memtrim_maybe(0);   /* links' freed buffers, on the acceptor: never on a link's thread */
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            /* out of descriptors: the connection stays queued and poll says so again at once, so
             * wait (counted, logged rate-limited) rather than spin */
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                refused(s, R_ACCEPT, "accept: %s (waiting %d ms)", strerror(e), ACCEPT_PAUSE_MS);
                struct pollfd w = {.fd = s->wake[0], .events = POLLIN};
                poll(&w, 1, ACCEPT_PAUSE_MS);
            }
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* a thread for the handshake, if fewer than max_handshakes are under way: an unproven
         * connection holds one for handshake_ms at most, and never an admitted link's place */
        pthread_mutex_lock(&s->mu);
        slot_t *sl = NULL;
        for (unsigned i = 0; i < s->nslots && !sl && s->handshakes < s->o.max_handshakes; i++)
            if (!s->slots[i].used)
                sl = &s->slots[i];
        if (sl) {
            *sl = (slot_t){.used = 1, .fd = fd, .s = s};
            if (pthread_create(&sl->th, NULL, link_thread, sl) != 0)
                sl->used = 0;
            else
                s->handshakes++;
        }
        int busy = !sl || !sl->used;
        unsigned hs = s->handshakes, links = s->links;
        pthread_mutex_unlock(&s->mu);
        if (busy) {
            close(fd);
            if (hs >= s->o.max_handshakes)
                refused(s, R_BUSY, "%u handshakes are under way already (the handshake limit)", hs);
            else if (sl)
                refused(s, R_BUSY, "no thread for a handshake (%u under way, %u links)", hs, links);
            else
                refused(s, R_BUSY, "every link slot is taken (%u links, %u handshakes under way: --link-max)",
                        links, hs);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

linkserve_t *linkserve_start(const linkserve_opts_t *o, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (link_resolve(o->listen, &ss, &sl) != 0) {
        snprintf(err, errlen, "link: '%s' is not a usable HOST:PORT to listen on", o->listen);
        return NULL;
    }
    linkserve_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->o.listen = NULL;          /* not kept */
    if (!s->o.max_links)
        s->o.max_links = 256;
    if (!s->o.max_handshakes)
        s->o.max_handshakes = 32;
    if (!s->o.max_per_peer)
        s->o.max_per_peer = 64;
    if (s->o.max_per_peer > s->o.max_links / 4)   /* a node's share: a quarter of the links at most */
        s->o.max_per_peer = s->o.max_links / 4 ? s->o.max_links / 4 : 1;
    if (!s->o.room_per_key)
        s->o.room_per_key = (size_t)22 << 20;
    if (!s->o.room_total)
        s->o.room_total = (size_t)88 << 20;
    s->nslots = s->o.max_links + s->o.max_handshakes;
    if (!s->o.idle_ms)
        s->o.idle_ms = 30000;
    if (!s->o.handshake_ms)
        s->o.handshake_ms = 2000;
    if (!s->o.send_ms)
        s->o.send_ms = 600000;
    if (!s->o.min_rate)
        s->o.min_rate = 65536;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->slots = calloc(s->nslots, sizeof *s->slots);
    s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (!s->slots || s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s->lfd, (struct sockaddr *)&ss, sl) != 0 || listen(s->lfd, 128) != 0 ||
        pipe2(s->wake, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "link: cannot listen on %s: %s", o->listen, strerror(errno));
        linkserve_stop(&s);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    getsockname(s->lfd, (struct sockaddr *)&bound, &bl);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    if (pthread_create(&s->acceptor, NULL, acceptor, s) != 0) {
        snprintf(err, errlen, "link: cannot start the acceptor thread");
        linkserve_stop(&s);
        return NULL;
    }
    s->started = 1;
    return s;
}

int linkserve_port(const linkserve_t *s) { return s ? s->port : 0; }

void linkserve_stop(linkserve_t **sp)
{
    if (!sp || !*sp)
        return;
    linkserve_t *s = *sp;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (unsigned i = 0; s->slots && i < s->nslots; i++)
        if (s->slots[i].l)
            shutdown(link_fd(s->slots[i].l), SHUT_RDWR);   /* wakes its thread */
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        if (write(s->wake[1], "x", 1) < 0)
            log_warn("link: waking the acceptor: %s", strerror(errno));
        pthread_join(s->acceptor, NULL);
    }
    for (unsigned i = 0; s->slots && i < s->nslots; i++)   /* handshakes end within handshake_ms */
        if (s->slots[i].used)
            pthread_join(s->slots[i].th, NULL);
    if (s->lfd >= 0)
        close(s->lfd);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *sp = NULL;
}

void linkserve_metrics(linkserve_t *s, FILE *f)
{
    if (!s)
        return;
    unsigned open = atomic_load(&s->open);
    size_t held = 0, room;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < s->nslots; i++)
        held += s->slots[i].used ? atomic_load(&s->slots[i].held) : 0;
    room = s->room;
    pthread_mutex_unlock(&s->mu);
    fprintf(f,
            "# HELP trib_read_link_promised_bytes Batch room (page and frame) the reads served on data links hold "
            "of the links' budget now.\n# TYPE trib_read_link_promised_bytes gauge\ntrib_read_link_promised_bytes %zu\n"
            "# HELP trib_read_link_narrowed_total Reads on data links served with narrow batches, the links' budget "
            "being held (by the reading node, or by all).\n"
            "# TYPE trib_read_link_narrowed_total counter\ntrib_read_link_narrowed_total %" PRIu64 "\n",
            room, (uint64_t)atomic_load(&s->narrowed));
    fprintf(f,
            "# HELP trib_link_open Data links this node serves now (as owner; their first frame decrypted).\n"
            "# TYPE trib_link_open gauge\ntrib_link_open %u\n"
            "# HELP trib_link_idle_buffer_bytes Bytes the buffers of the data links this node serves hold "
            "between requests.\n# TYPE trib_link_idle_buffer_bytes gauge\ntrib_link_idle_buffer_bytes %zu\n"
            "# HELP trib_link_accepted_total Data links accepted (handshake completed, admitted, and a first "
            "frame decrypted: the initiator is live).\n"
            "# TYPE trib_link_accepted_total counter\ntrib_link_accepted_total %" PRIu64 "\n"
            "# HELP trib_link_accepted_aesgcm_total Of those, the links whose initiator chose "
            "Noise_IK_25519_AESGCM_SHA256 (the rest: Noise_IK_25519_ChaChaPoly_SHA256).\n"
            "# TYPE trib_link_accepted_aesgcm_total counter\ntrib_link_accepted_aesgcm_total %" PRIu64 "\n"
            "# HELP trib_link_requests_total Read requests served on data links.\n"
            "# TYPE trib_link_requests_total counter\ntrib_link_requests_total %" PRIu64 "\n"
            "# HELP trib_link_lost_total Data links lost while a read was served on them.\n"
            "# TYPE trib_link_lost_total counter\ntrib_link_lost_total %" PRIu64 "\n"
            "# HELP trib_link_refused_total Data links refused, or closed by this node, by reason.\n"
            "# TYPE trib_link_refused_total counter\n",
            open, held, (uint64_t)atomic_load(&s->accepted), (uint64_t)atomic_load(&s->accepted_aes),
            (uint64_t)atomic_load(&s->requests),
            (uint64_t)atomic_load(&s->lost));
    for (int r = 1; r < R_COUNT; r++)
        if (r != LINK_OK)
            fprintf(f, "trib_link_refused_total{reason=\"%s\"} %" PRIu64 "\n", reason_name(r),
                    (uint64_t)atomic_load(&s->refused[r]));
}
