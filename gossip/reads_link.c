/* gossip/reads_link.c - routed range reads over a data link, the relay's side (see reads_link.h).
 *
 * Owns: the pool of idle links (per owner id and address, LINKS_IDLE_MAX each, dropped after
 * LINKS_IDLE_MS), dialling (a non-blocking connect within LINKS_CONNECT_MS, then the handshake),
 * the owners whose link failed lately (LINKS_BACKOFF_MS), the readers (one link each, on the
 * caller's thread; a link lost mid-read replaced, RESUMES_MAX times at most) and the counters
 * trib_read_routed_total{path}, trib_link_dial_failed_total{reason},
 * trib_read_link_resumed_total and trib_read_link_resume_failed_total{reason}.
 * Must not: hold pool.mu during I/O, or accept a batch the peer transport's relay would refuse
 * (the checks are reads_relay.c's). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "gossip/clock.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/log.h"
#include "gossip/memtrim.h"
#include "gossip/reads_int.h"
#include "gossip/reads_link.h"
#include "gossip/swim.h"
#include "gossip/transport.h"

#define LINKS_IDLE_MAX 8           /* idle links kept per owner */
#define LINKS_POOL_MAX 64          /* ... and in all */
#define LINKS_IDLE_MS 20000        /* an idle link older than this is closed (the owner closes at 30 s) */
#define LINKS_CONNECT_MS 1000
#define LINKS_HANDSHAKE_MS 1000    /* the owner answers a handshake at once; a frozen one costs this much */
#define LINKS_BACKOFF_MS 10000     /* an owner whose link failed is read over the peer transport meanwhile */
#define RETRY_MIN_MS 100           /* an owner's retry-after (an authenticated refusal) taken within these */
#define RETRY_MAX_MS 60000
#define BACKOFF_MAX 64
#define RESUMES_MAX 3              /* a read's link lost mid-read is replaced this often at most */
#define RESUME_GAP_MS 1000         /* ... and not again within this long */
#define LOG_EVERY_MS 10000         /* a resumed read is logged at most this often */
#define BURST_BYTES ((size_t)8 << 20)   /* reads open at once that freed this much: memory back at once */
#define LINK_ADDR_MAX (SWIM_MAX_ADDR + 1)   /* a link address as a member claim may carry it */

/* Why a dial failed: link_reason_t's, then ours. */
enum { D_RESOLVE = LINK_NREASONS, D_CONNECT, D_CONNECT_TIMEOUT, D_BAD_KEY, D_NO_ANSWER, D_BAD_ADDR, D_LOOPBACK,
       D_BUSY, D_PER_PEER, D_COUNT };

/* Why a read whose link was lost mid-read could not go on: trib_read_link_resume_failed_total{reason}. */
enum { RF_LIMIT, RF_LINK, RF_REFUSED, RF_COUNT };
static const char *const rf_names[RF_COUNT] = {"limit", "link", "refused"};

typedef struct {
    uint8_t owner[32];
    char addr[LINK_ADDR_MAX];
    link_t *l;
    uint64_t gen;                /* the pool's key generation it was dialled under */
    uint64_t since;              /* ms: pooled at */
} idle_t;

typedef struct {
    uint8_t owner[32];
    char addr[LINK_ADDR_MAX];
    uint64_t until;              /* ms */
} backoff_t;

struct lread {
    linkpool_t *p;
    struct lread *next, *prev;   /* active readers (pool.mu) */
    link_t *l;
    uint64_t gen;                /* the key generation l was dialled under (pool_put refuses another) */
    uint8_t owner[32];
    char addr[LINK_ADDR_MAX], desc[DESC_MAX];
    uint64_t id;                 /* the stream id sent */
    uint64_t expect_batch, next_seq, records;
    Trib__ReadBatch *cur;        /* batch being copied out, from roff */
    size_t roff;
    uint64_t cur_count;          /* records in cur */
    schema_t sc, next_sc;
    uint64_t change_at;
    int done, failed, schema_end, clean;
    reads_err_t e;
    uint64_t wait_since;         /* ms: waiting for a frame since (0: not waiting) */
    int asked;                   /* the request just went: the answer cannot be there yet */
    int refusal;                 /* the owner's LINK_REFUSE reason (0: none), and its retry-after */
    uint32_t retry_ms;
    /* the request, asked again from next_seq when the link is lost mid-read (resume) */
    char product[STORE_ID_MAX];
    char peer_addr[LINK_ADDR_MAX];   /* the owner's peer address (dial: a loopback link address) */
    uint64_t from, limit;        /* the read's first seq and its limit (0: none) */
    uint8_t fkey[16];            /* hash of the owner's fields key (batch 1): a resumed read must project alike */
    int lost;                    /* the link was lost mid-read (lost_why): resume at the next call that may wait */
    link_reason_t lost_why;
    int resumes;                 /* links lost mid-read so far */
    int counted;                 /* in the pool's reads (open_reads): handed to the caller */
    uint64_t resume_at;          /* ms: not resumed again before */
    /* the owner's key stopped holding a certificate for its domain (linkpool_untrusted, another
     * thread, under pool.mu): the read ends at its reader's next call, with cut_detail */
    atomic_int cut;
    char cut_detail[ERR_MAX];
    size_t token_len;
    uint8_t token[];             /* the client's token, as forwarded */
};

struct linkpool {
    linkpool_opts_t o;
    pthread_mutex_t mu;
    idle_t idle[LINKS_POOL_MAX];
    size_t nidle;
    backoff_t backoff[BACKOFF_MAX];
    lread_t *active;
    int shutting_down;
    uint64_t gen;                /* this node's key generation: linkpool_flush (a rotation) adds one */
    uint64_t next_id;
    atomic_uint_fast64_t via_link, via_relay, pooled_used, dial_failed[D_COUNT];
    atomic_uint open_reads;      /* reads handed out and not yet closed (the last ends a burst: memtrim) */
    atomic_size_t burst_freed;   /* bytes of link buffers closed reads freed since the last burst's end */
    log_limit_t refusal_log[D_COUNT];   /* an owner's refusal (busy, per_peer): a line per LINKS_BACKOFF_MS */
    atomic_uint_fast64_t resumed, resume_failed[RF_COUNT];
    log_limit_t resume_log;      /* reads resumed over a new link */
};

static const char *dial_reason(int r)
{
    switch (r) {
    case D_RESOLVE:         return "resolve";
    case D_CONNECT:         return "connect";
    case D_CONNECT_TIMEOUT: return "connect_timeout";
    case D_BAD_KEY:         return "bad_key";
    case D_NO_ANSWER:       return "no_answer";
    case D_BAD_ADDR:        return "bad_addr";
    case D_LOOPBACK:        return "loopback";
    case D_BUSY:            return "busy";
    case D_PER_PEER:        return "per_peer";
    default:                return link_reason_name((link_reason_t)r);
    }
}

/* ================================================================== the pool */

linkpool_t *linkpool_new(const linkpool_opts_t *o)
{
    linkpool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->o = *o;
    if (!p->o.open_timeout_ms)
        p->o.open_timeout_ms = 2000;
    if (!p->o.stall_ms)
        p->o.stall_ms = 3500;
    pthread_mutex_init(&p->mu, NULL);
    randombytes_buf(&p->next_id, sizeof p->next_id);
    p->next_id >>= 1;
    return p;
}

/* Closes the idle links matching (all: every one; else older than LINKS_IDLE_MS), mu held. */
static void idle_drop(linkpool_t *p, int all, uint64_t now)
{
    for (size_t i = 0; i < p->nidle;) {
        if (all || now - p->idle[i].since >= LINKS_IDLE_MS) {
            link_close(&p->idle[i].l);
            p->idle[i] = p->idle[--p->nidle];
        } else {
            i++;
        }
    }
}

void linkpool_shutdown(linkpool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->shutting_down = 1;
    idle_drop(p, 1, 0);
    for (lread_t *rd = p->active; rd; rd = rd->next)
        if (rd->l)
            shutdown(link_fd(rd->l), SHUT_RDWR);   /* its reader wakes and ends */
    pthread_mutex_unlock(&p->mu);
}

size_t linkpool_untrusted(linkpool_t *p, const uint8_t owner[32], const char *detail)
{
    size_t n = 0;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (lread_t *rd = p->active; rd; rd = rd->next) {
        if (memcmp(rd->owner, owner, 32) || atomic_load(&rd->cut))
            continue;
        snprintf(rd->cut_detail, sizeof rd->cut_detail, "%s", detail);
        atomic_store(&rd->cut, 1);
        if (rd->l)
            shutdown(link_fd(rd->l), SHUT_RDWR);   /* a reader waiting on the link wakes */
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

int linkpool_reads_from(linkpool_t *p, const uint8_t owner[32])
{
    int found = 0;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (lread_t *rd = p->active; rd && !found; rd = rd->next)
        found = !memcmp(rd->owner, owner, 32) && !atomic_load(&rd->cut);
    pthread_mutex_unlock(&p->mu);
    return found;
}

void linkpool_flush(linkpool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    idle_drop(p, 1, 0);
    p->gen++;                    /* links in use now go back to no pool */
    pthread_mutex_unlock(&p->mu);
}

void linkpool_free(linkpool_t **pp)
{
    if (!pp || !*pp)
        return;
    linkpool_t *p = *pp;
    pthread_mutex_lock(&p->mu);
    idle_drop(p, 1, 0);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}

void linkpool_count_relay(linkpool_t *p)
{
    if (p)
        atomic_fetch_add(&p->via_relay, 1);
}

void linkpool_metrics(linkpool_t *p, FILE *f)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    size_t idle = p->nidle, held = 0;
    for (size_t i = 0; i < p->nidle; i++)
        held += link_held(p->idle[i].l);
    pthread_mutex_unlock(&p->mu);
    fprintf(f,
            "# HELP trib_read_routed_total Routed range reads this node opened, by the path the records took: a "
            "data link to the owner, or the peer transport's relay.\n# TYPE trib_read_routed_total counter\n"
            "trib_read_routed_total{path=\"link\"} %" PRIu64 "\ntrib_read_routed_total{path=\"relay\"} %" PRIu64 "\n"
            "# HELP trib_link_pooled Idle data links to owners kept for the next read.\n"
            "# TYPE trib_link_pooled gauge\ntrib_link_pooled %zu\n"
            "# HELP trib_link_pooled_buffer_bytes Bytes the buffers of the idle data links kept hold.\n"
            "# TYPE trib_link_pooled_buffer_bytes gauge\ntrib_link_pooled_buffer_bytes %zu\n"
            "# HELP trib_link_reused_total Routed reads that took an idle data link from the pool.\n"
            "# TYPE trib_link_reused_total counter\ntrib_link_reused_total %" PRIu64 "\n"
            "# HELP trib_link_dial_failed_total Data links to owners that could not be made, by reason (the read "
            "went over the peer transport).\n# TYPE trib_link_dial_failed_total counter\n",
            (uint64_t)atomic_load(&p->via_link), (uint64_t)atomic_load(&p->via_relay), idle, held,
            (uint64_t)atomic_load(&p->pooled_used));
    for (int r = 1; r < D_COUNT; r++)
        if (r != LINK_REFUSED && r != LINK_NOMEM && r != LINK_OVERSIZE && r != LINK_DECRYPT && r != LINK_SLOW)
            fprintf(f, "trib_link_dial_failed_total{reason=\"%s\"} %" PRIu64 "\n", dial_reason(r),
                    (uint64_t)atomic_load(&p->dial_failed[r]));
    fprintf(f,
            "# HELP trib_read_link_resumed_total Data links lost in the middle of a routed read (the owner cut "
            "a slow read, restarted, or the connection broke) and replaced: the read went on from its next record "
            "over a new link.\n# TYPE trib_read_link_resumed_total counter\ntrib_read_link_resumed_total %" PRIu64
            "\n# HELP trib_read_link_resume_failed_total Routed reads whose data link was lost mid-read and that "
            "ended instead of going on, by reason: limit (lost more than %d times), link (no new link, or no answer "
            "on it), refused (the owner refused the read asked again, or its projection changed).\n"
            "# TYPE trib_read_link_resume_failed_total counter\n",
            (uint64_t)atomic_load(&p->resumed), RESUMES_MAX);
    for (int r = 0; r < RF_COUNT; r++)
        fprintf(f, "trib_read_link_resume_failed_total{reason=\"%s\"} %" PRIu64 "\n", rf_names[r],
                (uint64_t)atomic_load(&p->resume_failed[r]));
}

/* An idle link to owner at addr dialled under this node's key now (*gen its generation), or NULL. */
static link_t *pool_take(linkpool_t *p, const uint8_t owner[32], const char *addr, uint64_t *gen)
{
    link_t *l = NULL;
    pthread_mutex_lock(&p->mu);
    idle_drop(p, 0, clock_ms());
    for (size_t i = p->nidle; i-- > 0 && !l;)   /* the newest first */
        if (p->idle[i].gen == p->gen && !memcmp(p->idle[i].owner, owner, 32) && !strcmp(p->idle[i].addr, addr)) {
            l = p->idle[i].l;
            *gen = p->idle[i].gen;
            p->idle[i] = p->idle[--p->nidle];
        }
    pthread_mutex_unlock(&p->mu);
    return l;
}

/* Pools *lp (dialled under key generation gen), or closes it: a link made as a key this node no
 * longer has (a rotation since) speaks as that key to the owner, and is never reused. */
static void pool_put(linkpool_t *p, const uint8_t owner[32], const char *addr, uint64_t gen, link_t **lp)
{
    pthread_mutex_lock(&p->mu);
    size_t mine = 0;
    for (size_t i = 0; i < p->nidle; i++)
        mine += !memcmp(p->idle[i].owner, owner, 32) && !strcmp(p->idle[i].addr, addr);
    if (!p->shutting_down && gen == p->gen && mine < LINKS_IDLE_MAX && p->nidle < LINKS_POOL_MAX) {
        idle_t *it = &p->idle[p->nidle++];
        link_idle(*lp);          /* pooled: no batch's room kept (a MiB a link) */
        memcpy(it->owner, owner, 32);
        snprintf(it->addr, sizeof it->addr, "%s", addr);
        it->l = *lp;
        it->gen = gen;
        it->since = clock_ms();
        *lp = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    link_close(lp);
}

static int backed_off(linkpool_t *p, const uint8_t owner[32], const char *addr)
{
    uint64_t now = clock_ms();
    int off = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < BACKOFF_MAX && !off; i++)
        off = p->backoff[i].until > now && !memcmp(p->backoff[i].owner, owner, 32) && !strcmp(p->backoff[i].addr, addr);
    pthread_mutex_unlock(&p->mu);
    return off;
}

/* The owner's link failed or was refused (reason): counted, and not tried again for ms. An owner's
 * refusal (busy, per_peer: it may come every second) is logged at most once per LINKS_BACKOFF_MS. */
static void back_off(linkpool_t *p, const uint8_t owner[32], const char *addr, int reason, uint32_t ms,
                     const char *err)
{
    atomic_fetch_add(&p->dial_failed[reason], 1);
    uint64_t now = clock_ms();
    pthread_mutex_lock(&p->mu);
    backoff_t *slot = &p->backoff[0];
    for (int i = 0; i < BACKOFF_MAX; i++) {
        backoff_t *b = &p->backoff[i];
        if (!memcmp(b->owner, owner, 32) && !strcmp(b->addr, addr)) {
            slot = b;
            break;
        }
        if (b->until < slot->until)
            slot = b;   /* the oldest (or an unused one) */
    }
    memcpy(slot->owner, owner, 32);
    snprintf(slot->addr, sizeof slot->addr, "%s", addr);
    slot->until = now + ms;
    pthread_mutex_unlock(&p->mu);
    uint64_t held = 0;
    char tail[96];
    if ((reason == D_BUSY || reason == D_PER_PEER) && !log_limit(&p->refusal_log[reason], LINKS_BACKOFF_MS, &held))
        return;
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, owner, 8);
    log_info("link: no data link to owner %s... at %s (%s: %s): its reads go over the peer transport for %u ms%s", hex,
             addr, dial_reason(reason), err, (unsigned)ms, log_held(tail, sizeof tail, held, "refusals"));
}

/* 1 when a is HOST:PORT as a link address must be: HOST a name or IPv4 ([A-Za-z0-9.-]) or a
 * bracketed IPv6 literal ([0-9A-Fa-f:.]), PORT decimal 1..65535, shorter than LINK_ADDR_MAX. */
int link_addr_ok(const char *a)
{
    return transport_addr_valid_max(a, LINK_ADDR_MAX);
}

/* 1 for an address that reaches this host: loopback (127/8, ::1) and, as connect() treats them
 * the same, the unspecified ones (0/8, ::), either v4 family also v4-mapped */
static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24;
        return a == 127 || a == 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && (a->s6_addr[12] == 127 || a->s6_addr[12] == 0));
    }
    return 0;
}

/* A new link to owner at addr (*gen: the key generation it is dialled under), or NULL with
 * *reason and err. */
static link_t *dial(linkpool_t *p, const uint8_t owner[32], const char *addr, const char *peer_addr, uint64_t *gen,
                    int *reason, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    uint8_t spk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(spk, owner) != 0) {
        *reason = D_BAD_KEY;
        snprintf(err, errlen, "the owner's node id is not a usable key");
        return NULL;
    }
    if (link_resolve(addr, &ss, &sl) != 0) {
        *reason = D_RESOLVE;
        snprintf(err, errlen, "'%s' is not a usable HOST:PORT", addr);
        return NULL;
    }
    /* a claim naming this machine's loopback would have the relay dial itself (or whatever listens
     * there): only an owner whose peer address is loopback too (all on one host) is dialled so */
    struct sockaddr_storage ps;
    socklen_t psl;
    int local_ok = peer_addr && link_resolve(peer_addr, &ps, &psl) == 0 && is_loopback(&ps);
    if (is_loopback(&ss) && !local_ok) {
        *reason = D_LOOPBACK;
        snprintf(err, errlen, "a loopback address, and the owner's peer address is not one");
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *reason = D_CONNECT;
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        if (e == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int rc;
            while ((rc = poll(&pf, 1, LINKS_CONNECT_MS)) < 0 && errno == EINTR)
                ;
            socklen_t elen = sizeof e;
            if (rc == 0) {
                close(fd);
                *reason = D_CONNECT_TIMEOUT;
                snprintf(err, errlen, "connect: no answer within %d ms", LINKS_CONNECT_MS);
                return NULL;
            }
            if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
                e = errno;
        }
        if (e) {
            close(fd);
            *reason = D_CONNECT;
            snprintf(err, errlen, "connect: %s", strerror(e));
            return NULL;
        }
    }
    /* where it went, not what it was called: a name may resolve to this host too */
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (!local_ok && (getpeername(fd, (struct sockaddr *)&got, &gl) != 0 || is_loopback(&got))) {
        close(fd);
        *reason = D_LOOPBACK;
        snprintf(err, errlen, "connected to this host, and the owner's peer address is not on it");
        return NULL;
    }
    link_keys_t k;
    uint8_t id[32];
    pthread_mutex_lock(&p->mu);
    *gen = p->gen;               /* before the keys: a rotation after this makes the link stale */
    pthread_mutex_unlock(&p->mu);
    p->o.keys(p->o.ctx, id, k.pk, k.sk);
    memcpy(k.prologue, p->o.prologue, 32);
    link_reason_t why = LINK_OK;
    link_t *l = link_dial(fd, &k, spk, id, 32, LINK_MAX_FRAME, LINKS_HANDSHAKE_MS, &why, err, errlen);
    sodium_memzero(k.sk, sizeof k.sk);
    if (!l)
        *reason = (int)why;
    return l;
}

/* ================================================================== frames */

/* One varint at p (end: its bound) into *v; the bytes it took, or 0 when malformed. */
static size_t varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < 10 && p + i < end; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80))
            return i + 1;
    }
    return 0;
}

int link_split(const uint8_t *msg, size_t len, size_t *hdr_len, size_t *lines_off)
{
    const uint8_t *p = msg, *end = msg + len;
    while (p < end) {
        const uint8_t *field = p;
        uint64_t key, v;
        size_t n = varint(p, end, &key);
        if (!n || (key >> 3) == 0)
            return -1;
        p += n;
        switch (key & 7) {
        case 0:
            if (!(n = varint(p, end, &v)))
                return -1;
            p += n;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2:
            if (!(n = varint(p, end, &v)) || v > (uint64_t)(end - p - (ptrdiff_t)n))
                return -1;
            p += n;
            if (key >> 3 == 9) {   /* the lines: the last field, and the only one */
                if (p + v != end)
                    return -1;
                *hdr_len = (size_t)(field - msg);
                *lines_off = (size_t)(p - msg);
                return 0;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    *hdr_len = *lines_off = len;   /* no lines */
    return 0;
}

/* ================================================================== readers */

static void rd_fail(lread_t *rd, int status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rd_fail(lread_t *rd, int status, const char *kind, const char *fmt, ...)
{
    if (rd->failed)
        return;
    rd->failed = 1;
    if (!strcmp(kind, "owner_lost") && rd->p->o.reads)
        BUMP(rd->p->o.reads, fail_owner_lost, 1);
    char detail[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    reads__err_set(&rd->e, status, kind, "%s", detail);
}

/* Sends rd's request as stream rd->id: its records from rd->next_seq, as many as its limit leaves. */
static int sending_request(lread_t *rd, link_reason_t *why)
{
    Trib__ReadRequest m = TRIB__READ_REQUEST__INIT;
    m.stream_id = rd->id;
    m.product_id = rd->product;
    m.from_seq = rd->next_seq;
    m.limit = rd->limit ? rd->limit - (rd->next_seq - rd->from) : 0;   /* resume: none taken at the limit */
    m.credit = 1;
    m.token = (ProtobufCBinaryData){rd->token_len, rd->token};
    size_t n = trib__read_request__get_packed_size(&m);
    uint8_t *f = link_frame(rd->l, n + 1, why);
    if (!f)
        return -1;
    f[0] = LINK_REQ;
    trib__read_request__pack(&m, f + 1);
    rd->asked = 1;
    return link_send_frame(rd->l, n + 1, (int)rd->p->o.open_timeout_ms, why);
}

/* Frees b, whose lines point into the link's frame (next_batch), not into b. */
static void batch_free(Trib__ReadBatch *b)
{
    b->lines = (ProtobufCBinaryData){0, NULL};
    trib__read_batch__free_unpacked(b, NULL);
}

/* The next frame of rd's link as a batch of its stream: 1 (*out), 0 nothing within timeout_ms,
 * -1 the link failed (*why) or sent what is not a batch of this stream (*why LINK_GARBAGE). */
static int next_batch(lread_t *rd, int timeout_ms, Trib__ReadBatch **out, link_reason_t *why)
{
    const uint8_t *f;
    size_t len;
    if (rd->asked && timeout_ms != 0 && !link_buffered(rd->l)) {
        /* just asked: nothing can be there yet, so poll first (one read that finds nothing saved) */
        struct pollfd p = {.fd = link_fd(rd->l), .events = POLLIN};
        poll(&p, 1, timeout_ms);
    }
    rd->asked = 0;
    int rc = link_recv(rd->l, &f, &len, timeout_ms, why);
    if (rc <= 0)
        return rc;
    if (link_refusal_parse(f, len, &rd->refusal, &rd->retry_ms) == 0) {
        *why = LINK_REFUSED;     /* the owner's word, sealed: over one of its limits */
        return -1;
    }
    Trib__ReadBatch *b = NULL;
    size_t hlen, off;
    /* the lines stay in the frame (valid until the next call on the link: rd->cur is used up first) */
    if (len > 1 && f[0] == LINK_BATCH && link_split(f + 1, len - 1, &hlen, &off) == 0 &&
        (b = trib__read_batch__unpack(NULL, hlen, f + 1)) != NULL && off < len - 1)
        b->lines = (ProtobufCBinaryData){len - 1 - off, (uint8_t *)f + 1 + off};
    if (!b || b->stream_id != rd->id) {
        if (b)
            batch_free(b);
        *why = LINK_GARBAGE;
        return -1;
    }
    *out = b;
    return 1;
}

/* Takes batch b (checked like the relay's session_take); frees it unless it becomes rd->cur. */
static void take(lread_t *rd, Trib__ReadBatch *b)
{
    if (b->done && b->status) {
        reads__refusal(b, 1, rd->desc, &rd->e);
        rd->failed = 1;
        rd->clean = 1;           /* the owner ended it: the link is between requests again */
        batch_free(b);
        return;
    }
    uint64_t n;
    reads_err_t e = {0};
    if (reads__batch_check(b, rd->expect_batch, rd->next_seq, rd->desc, &n, &e)) {
        rd_fail(rd, 0, e.kind, "%s", e.detail);
        batch_free(b);
        return;
    }
    rd->expect_batch++;
    rd->next_seq += n;
    if (rd->p->o.reads) {
        BUMP(rd->p->o.reads, batches_recv, 1);
        BUMP(rd->p->o.reads, records_recv, n);
    }
    if (b->done) {
        rd->done = 1;
        rd->clean = 1;
    }
    rd->cur = b;
    rd->roff = 0;
    rd->cur_count = n;
}

/* Lists rd among the active readers (linkpool_shutdown wakes them): 0, or -1 when the pool is
 * shutting down (its shutdown ran while rd dialled, and would not wake it: not listed). */
static int active_add(lread_t *rd)
{
    linkpool_t *p = rd->p;
    pthread_mutex_lock(&p->mu);
    int stopping = p->shutting_down;
    if (!stopping) {
        rd->next = p->active;
        if (p->active)
            p->active->prev = rd;
        p->active = rd;
    }
    pthread_mutex_unlock(&p->mu);
    return stopping ? -1 : 0;
}

/* Takes rd off the active readers (when listed): 1 when the pool is shutting down. */
static int active_remove(lread_t *rd)
{
    linkpool_t *p = rd->p;
    pthread_mutex_lock(&p->mu);
    if (rd->prev)
        rd->prev->next = rd->next;
    else if (p->active == rd)
        p->active = rd->next;
    if (rd->next)
        rd->next->prev = rd->prev;
    rd->next = rd->prev = NULL;
    int stopping = p->shutting_down;
    pthread_mutex_unlock(&p->mu);
    return stopping;
}

enum { ASK_OK, ASK_NO_LINK, ASK_SILENT, ASK_STOPPING, ASK_CUT };

/* Gives rd (listed) the link *lp under the pool's lock, so linkpool_shutdown and linkpool_untrusted
 * either see it or ran before and left their mark: ASK_OK; else ASK_STOPPING or ASK_CUT (the owner
 * stopped holding a certificate while rd dialled) with *lp closed. */
static int attach(lread_t *rd, link_t **lp)
{
    linkpool_t *p = rd->p;
    pthread_mutex_lock(&p->mu);
    int rc = p->shutting_down ? ASK_STOPPING : atomic_load(&rd->cut) ? ASK_CUT : ASK_OK;
    if (rc == ASK_OK) {
        rd->l = *lp;
        *lp = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    link_close(lp);
    return rc;
}

/* Closes rd's link; rd stays listed (linkpool_untrusted may be shutting that link down right now:
 * taken off under the lock first). 1 when the pool is shutting down. */
static int detach(lread_t *rd)
{
    pthread_mutex_lock(&rd->p->mu);
    link_t *l = rd->l;
    rd->l = NULL;
    int stopping = rd->p->shutting_down;
    pthread_mutex_unlock(&rd->p->mu);
    link_close(&l);
    return stopping;
}

/* ask's loop; rd stays listed whatever it returns. */
static int ask_listed(lread_t *rd, Trib__ReadBatch **b, int *reason, uint32_t *backoff_ms, char *derr, size_t dlen)
{
    linkpool_t *p = rd->p;
    rd->refusal = 0;
    for (int attempt = 0;; attempt++) {
        link_t *l = NULL;
        int pooled = attempt == 0 && (l = pool_take(p, rd->owner, rd->addr, &rd->gen)) != NULL;
        if (!pooled && !(l = dial(p, rd->owner, rd->addr, rd->peer_addr, &rd->gen, reason, derr, dlen)))
            return atomic_load(&rd->cut) ? ASK_CUT : ASK_NO_LINK;   /* cut meanwhile: not over the relay either */
        int at = attach(rd, &l);   /* dialled while the node shut down or the owner was cut: no read starts */
        if (at != ASK_OK)
            return at;
        link_reason_t why = LINK_OK;
        int rc = sending_request(rd, &why) == 0 ? next_batch(rd, (int)p->o.open_timeout_ms, b, &why) : -1;
        if (rc == 1) {
            if (pooled)
                atomic_fetch_add(&p->pooled_used, 1);
            return ASK_OK;
        }
        if (detach(rd))
            return ASK_STOPPING;
        if (atomic_load(&rd->cut))
            return ASK_CUT;
        if (rc == 0)
            return ASK_SILENT;
        if (why == LINK_REFUSED && rd->refusal) {   /* the owner said why, and when to come again */
            *reason = rd->refusal == LINK_REFUSE_BUSY ? D_BUSY : D_PER_PEER;
            *backoff_ms = rd->retry_ms < RETRY_MIN_MS ? RETRY_MIN_MS : rd->retry_ms > RETRY_MAX_MS ? RETRY_MAX_MS
                                                                                                  : rd->retry_ms;
            snprintf(derr, dlen, "the owner is over its %s", *reason == D_BUSY ? "link limit (--link-max)"
                                                                               : "limit of links per node");
            return ASK_NO_LINK;
        }
        if (!pooled) {
            *reason = why == LINK_CLOSED || why == LINK_IO ? D_NO_ANSWER : (int)why;
            snprintf(derr, dlen, "the link closed before the owner answered (%s)", link_reason_name(why));
            return ASK_NO_LINK;
        }
    }
}

/* Gets rd (listed among the active readers, with no link: the cut or the shutdown of a read that
 * dials is not lost) a link to its owner, an idle one or else a new one, sends its request and
 * waits open_timeout_ms for the first answer (a pooled link may have been closed by the owner
 * meanwhile: then once more on a new one). ASK_OK: *b, on rd->l. Else rd->l is closed and rd taken
 * off the list: ASK_NO_LINK with back_off's reason, derr and (when the owner said when to come
 * again) *backoff_ms; ASK_SILENT, connected and no answer (the owner is slow, not the link);
 * ASK_STOPPING, the node shuts down; ASK_CUT, linkpool_untrusted ended rd meanwhile. */
static int ask(lread_t *rd, Trib__ReadBatch **b, int *reason, uint32_t *backoff_ms, char *derr, size_t dlen)
{
    int rc = ask_listed(rd, b, reason, backoff_ms, derr, dlen);
    if (rc != ASK_OK)
        active_remove(rd);
    return rc;
}

/* The hash of the projection batch b (a stream's first) names: a resumed read must project alike. */
static void fields_hash(const Trib__ReadBatch *b, uint8_t out[16])
{
    const char *k = b->fields_key ? b->fields_key : "";
    crypto_generichash(out, 16, (const uint8_t *)k, strlen(k), NULL, 0);
}

int lread_open(linkpool_t *p, const reads_open_t *o, const char *link_addr, lread_t **out, uint64_t *last_seq,
               int *status, char *kind, size_t kindlen, char *err, size_t errlen)
{
    *out = NULL;
    if (!p || !link_addr || !*link_addr || o->live)
        return 0;
    if (!link_addr_ok(link_addr)) {   /* a claim's bytes: never dialled, nor kept (they may be long) */
        atomic_fetch_add(&p->dial_failed[D_BAD_ADDR], 1);
        return 0;
    }
    if (backed_off(p, o->owner_id, link_addr))
        return 0;
    pthread_mutex_lock(&p->mu);
    int stopping = p->shutting_down;
    uint64_t id = p->next_id++;
    pthread_mutex_unlock(&p->mu);
    if (stopping)
        return 0;                /* the relay answers "shutting_down" */
    size_t tlen = o->token ? o->token_len : 0;
    lread_t *rd = strlen(o->product) < STORE_ID_MAX ? calloc(1, sizeof *rd + tlen) : NULL;
    if (!rd)
        return 0;
    rd->p = p;
    rd->id = id;
    memcpy(rd->owner, o->owner_id, 32);
    snprintf(rd->addr, sizeof rd->addr, "%s", link_addr);
    snprintf(rd->peer_addr, sizeof rd->peer_addr, "%s", o->owner_addr ? o->owner_addr : "");
    snprintf(rd->desc, sizeof rd->desc, "%s", o->owner_desc ? o->owner_desc : o->owner_addr);
    snprintf(rd->product, sizeof rd->product, "%s", o->product);
    rd->from = rd->next_seq = o->from ? o->from : 1;
    rd->limit = o->limit;
    rd->token_len = tlen;
    if (tlen)
        memcpy(rd->token, o->token, tlen);
    rd->expect_batch = 1;
    char derr[300] = "";
    int reason = 0;
    uint32_t backoff_ms = LINKS_BACKOFF_MS;
    Trib__ReadBatch *b = NULL;
    int rc = active_add(rd) != 0 ? ASK_STOPPING : ask(rd, &b, &reason, &backoff_ms, derr, sizeof derr);
    if (rc == ASK_STOPPING || rc == ASK_SILENT || rc == ASK_CUT) {
        *status = 503;
        if (rc == ASK_STOPPING) {
            snprintf(kind, kindlen, "shutting_down");
            snprintf(err, errlen, "this node is shutting down");
        } else if (rc == ASK_CUT) {   /* as a new read to that owner is refused */
            snprintf(kind, kindlen, "owner_unreachable");
            snprintf(err, errlen, "%s", rd->cut_detail);
        } else {                 /* connected, and no answer: the owner is slow, not the link */
            snprintf(kind, kindlen, "owner_unreachable");
            snprintf(err, errlen, "%s did not answer within %u ms", rd->desc, (unsigned)p->o.open_timeout_ms);
        }
        free(rd);
        return -1;
    }
    if (rc == ASK_NO_LINK) {
        back_off(p, rd->owner, rd->addr, reason, backoff_ms, derr);
        free(rd);
        return 0;
    }
    atomic_fetch_add(&p->via_link, 1);
    if (b->done && b->status) {  /* refused: the status the client gets, and the link goes back */
        reads__refusal(b, 0, rd->desc, &rd->e);
        batch_free(b);
        *status = rd->e.status;
        snprintf(kind, kindlen, "%s", rd->e.kind);
        snprintf(err, errlen, "%s", rd->e.detail);
        rd->clean = 1;
        lread_close(&rd);
        return -1;
    }
    *last_seq = b->last_seq;
    reads__schema_of(&rd->sc, b);
    fields_hash(b, rd->fkey);
    take(rd, b);
    if (rd->failed) {            /* a first batch the relay would not take either */
        *status = 502;
        snprintf(kind, kindlen, "owner_unreachable");
        snprintf(err, errlen, "%s", rd->e.detail);
        lread_close(&rd);
        return -1;
    }
    *out = rd;
    rd->counted = 1;
    atomic_fetch_add(&p->open_reads, 1);
    return 1;
}

/* ================================================================== a link lost mid-read */

/* rd's link failed mid-read (why): it is closed, and the read goes on over a new one (resume).
 * rd stays listed, so an owner cut meanwhile (linkpool_untrusted) is not resumed. */
static void lose(lread_t *rd, link_reason_t why)
{
    (void)detach(rd);   /* a shutdown ends the read at its next call */
    rd->lost = 1;
    rd->lost_why = why;
}

/* Ends rd, whose link was lost mid-read and not replaced (why: fmt), with owner_lost naming the
 * seq the client reads again from; counted by reason. */
static void resume_fail(lread_t *rd, int reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void resume_fail(lread_t *rd, int reason, const char *fmt, ...)
{
    atomic_fetch_add(&rd->p->resume_failed[reason], 1);
    char why[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    /* the seq first: the detail is cut at ERR_MAX, and the owner's description may be long */
    rd_fail(rd, 0, "owner_lost", "read again from seq %" PRIu64 ": the data link to %s was lost %d time%s (the "
            "last: %s) and %s", rd->next_seq, rd->desc, rd->resumes, rd->resumes == 1 ? "" : "s",
            link_reason_name(rd->lost_why), why);
}

/* A read went on over a new link: logged at most once per LOG_EVERY_MS, with how many did since. */
static void resume_log(lread_t *rd)
{
    uint64_t held;
    char tail[96];
    if (log_limit(&rd->p->resume_log, LOG_EVERY_MS, &held))
        log_info("link: the data link to %s was lost in the middle of a read of %s (%s): the read goes on over a "
                 "new link from seq %" PRIu64 "%s", rd->desc, rd->product, link_reason_name(rd->lost_why),
                 rd->next_seq, log_held(tail, sizeof tail, held, "reads"));
}

/* rd's link was lost mid-read (rd->lost): the read goes on over another, pooled or dialled as
 * lread_open's (an owner backed off is not dialled), as a new stream (a new id, its batches from 1)
 * asking for the records from rd->next_seq, as many as the limit leaves, with the same token; at
 * most RESUMES_MAX times a read, RESUME_GAP_MS apart. As next_batch: 1 with *b, the new stream's
 * first batch (the caller checks its schema as any batch's); 0 not now (a caller that may not
 * wait, or within the gap); -1 the read ended (rd->failed, or rd->done). */
static int resume_listed(lread_t *rd, int timeout_ms, Trib__ReadBatch **b);
static int resume(lread_t *rd, int timeout_ms, Trib__ReadBatch **b)
{
    int rc = resume_listed(rd, timeout_ms, b);
    if (rc < 0)
        active_remove(rd);       /* the read ended: no cut counts it */
    return rc;
}

static int resume_listed(lread_t *rd, int timeout_ms, Trib__ReadBatch **b)
{
    linkpool_t *p = rd->p;
    if (timeout_ms == 0)
        return 0;                /* a dial may take seconds: not on a caller that may not wait */
    pthread_mutex_lock(&p->mu);
    int stopping = p->shutting_down;
    pthread_mutex_unlock(&p->mu);
    if (stopping) {
        rd_fail(rd, 0, "shutting_down", "this node is shutting down");
        return -1;
    }
    uint64_t now = clock_ms();
    if (now < rd->resume_at) {
        uint64_t w = rd->resume_at - now;
        poll(NULL, 0, timeout_ms > 0 && w > (uint64_t)timeout_ms ? timeout_ms : (int)w);
        if (clock_ms() < rd->resume_at)
            return 0;
    }
    rd->lost = 0;
    if (++rd->resumes > RESUMES_MAX) {
        resume_fail(rd, RF_LIMIT, "is replaced %d times a read at most", RESUMES_MAX);
        return -1;
    }
    if (rd->limit && rd->next_seq - rd->from >= rd->limit) {
        rd->done = 1;            /* all taken: only the last batch's "done" was lost */
        return -1;
    }
    rd->resume_at = clock_ms() + RESUME_GAP_MS;
    if (backed_off(p, rd->owner, rd->addr)) {
        resume_fail(rd, RF_LINK, "no new one is dialled now (the owner's link failed or was refused lately)");
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    rd->id = p->next_id++;       /* a new stream: its batches count from 1 */
    pthread_mutex_unlock(&p->mu);
    rd->expect_batch = 1;
    char derr[300] = "";
    int reason = 0;
    uint32_t backoff_ms = LINKS_BACKOFF_MS;
    int rc = ask(rd, b, &reason, &backoff_ms, derr, sizeof derr);
    if (rc == ASK_STOPPING) {
        rd_fail(rd, 0, "shutting_down", "this node is shutting down");
        return -1;
    }
    if (rc == ASK_CUT) {
        rd_fail(rd, 503, "owner_lost", "%s", rd->cut_detail);
        return -1;
    }
    if (rc == ASK_NO_LINK)
        back_off(p, rd->owner, rd->addr, reason, backoff_ms, derr);
    if (rc != ASK_OK) {
        if (rc == ASK_SILENT)
            snprintf(derr, sizeof derr, "the owner did not answer within %u ms", (unsigned)p->o.open_timeout_ms);
        resume_fail(rd, RF_LINK, "no new one could be had: %s", derr);
        return -1;
    }
    if ((*b)->done && (*b)->status) {   /* the owner refused it now (a token revoked ...): the read ends so */
        atomic_fetch_add(&p->resume_failed[RF_REFUSED], 1);
        take(rd, *b);            /* the refusal, as after a first batch; the link goes back */
        *b = NULL;
        return -1;
    }
    uint8_t k[16];
    fields_hash(*b, k);
    if (memcmp(k, rd->fkey, sizeof k) != 0) {
        atomic_fetch_add(&p->resume_failed[RF_REFUSED], 1);
        rd_fail(rd, 0, "grant_changed", "the fields %s lets this token read changed while its data link was "
                "replaced: read again from seq %" PRIu64, rd->desc, rd->next_seq);
        batch_free(*b);
        *b = NULL;
        return -1;
    }
    atomic_fetch_add(&p->resumed, 1);
    if (rd->resumes == 1)
        resume_log(rd);
    return 1;
}

long lread_next(lread_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen, char *err,
                size_t errlen)
{
    for (;;) {
        if (atomic_load(&rd->cut) && !rd->done && !rd->failed) {   /* nothing more of its owner goes out */
            if (rd->cur)
                batch_free(rd->cur);
            rd->cur = NULL;
            rd_fail(rd, 503, "owner_lost", "%s", rd->cut_detail);
        }
        if (rd->cur) {
            const ProtobufCBinaryData *l = &rd->cur->lines;
            size_t n = l->len - rd->roff < cap ? l->len - rd->roff : cap;
            if (n > 0) {
                if (rd->roff == 0)    /* counted as the relay counts: a batch when its first bytes go */
                    rd->records += rd->cur_count;
                memcpy(out, l->data + rd->roff, n);
                rd->roff += n;
                return (long)n;
            }
            batch_free(rd->cur);
            rd->cur = NULL;
        }
        if (rd->schema_end)
            return READS_SCHEMA;
        if (rd->failed) {
            snprintf(kind, kindlen, "%s", rd->e.kind);
            snprintf(err, errlen, "%s", rd->e.detail);
            return READS_FAILED;
        }
        if (rd->done)
            return READS_END;
        Trib__ReadBatch *b = NULL;
        link_reason_t why = LINK_OK;
        int rc = rd->lost ? resume(rd, timeout_ms, &b) : next_batch(rd, timeout_ms, &b, &why);
        uint64_t now = clock_ms();
        if (rc == 0) {
            if (rd->lost)
                return 0;        /* resumed at a later call (not a stall: no link is waited on) */
            if (!rd->wait_since)
                rd->wait_since = now;
            if (now - rd->wait_since < rd->p->o.stall_ms)
                return 0;
            rd_fail(rd, 0, "owner_lost", "no word from %s for %" PRIu64 " ms", rd->desc, now - rd->wait_since);
            continue;
        }
        rd->wait_since = 0;
        if (rc < 0) {
            if (rd->failed || rd->done)
                continue;        /* resume ended the read */
            pthread_mutex_lock(&rd->p->mu);
            int stopping = rd->p->shutting_down;
            pthread_mutex_unlock(&rd->p->mu);
            if (stopping)
                rd_fail(rd, 0, "shutting_down", "this node is shutting down");
            else if (why == LINK_GARBAGE)
                rd_fail(rd, 0, "owner_lost", "%s sent a frame that is not a batch of this read", rd->desc);
            else if (why == LINK_CLOSED || why == LINK_IO)
                lose(rd, why);   /* mid-read (the owner cut a slow read, restarted, a reset): resumed */
            else
                rd_fail(rd, 0, "owner_lost", "the data link to %s failed (%s)", rd->desc, link_reason_name(why));
            continue;
        }
        if (b->batch_no == 0) {  /* a keepalive */
            batch_free(b);
            continue;
        }
        schema_t sc;
        reads__schema_of(&sc, b);
        if (b->lines.len && rd->sc.told && sc.told && sc.seq != rd->sc.seq && !(b->done && b->status)) {
            rd->next_sc = sc;    /* the read ends before these records, as a local one does */
            rd->change_at = b->first_seq;
            rd->schema_end = 1;
            batch_free(b);
            return READS_SCHEMA;
        }
        take(rd, b);
    }
}

int lread_schema(const lread_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version, size_t len)
{
    return reads__schema_out(&rd->sc, &rd->next_sc, rd->change_at, next, at, mseq, version, len);
}

uint64_t lread_records(const lread_t *rd) { return rd->records; }

void lread_close(lread_t **rdp)
{
    if (!rdp || !*rdp)
        return;
    lread_t *rd = *rdp;
    linkpool_t *p = rd->p;
    active_remove(rd);
    if (rd->cur)
        batch_free(rd->cur);
    size_t held = rd->l ? link_held(rd->l) : 0;   /* pooled links keep none (link_idle) */
    memtrim_freed(held);
    atomic_fetch_add(&p->burst_freed, held);
    if (rd->l && rd->clean && !rd->schema_end)
        pool_put(p, rd->owner, rd->addr, rd->gen, &rd->l);   /* the owner finished: the link is between requests */
    link_close(&rd->l);
    int counted = rd->counted;
    free(rd);
    *rdp = NULL;
    /* on the thread ending the read, after its answer went out; at once when the last read open
     * ends after reads freed BURST_BYTES, its buffers freed too (a relay that served 60 reads at once
     * kept ~40 MiB without; small reads one after another, 256 KiB each, make one every 32) */
    int burst = counted && atomic_fetch_sub(&p->open_reads, 1) == 1 && atomic_load(&p->burst_freed) >= BURST_BYTES;
    if (burst)
        atomic_store(&p->burst_freed, 0);
    memtrim_maybe(burst);
}
