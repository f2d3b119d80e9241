/* gossip/link.c - the data link of gossip/link.h: the magic, the two Noise IK handshake messages
 * with their 2-byte lengths, and the encrypted frames with their 4-byte lengths, on a
 * non-blocking TCP descriptor with poll() deadlines on the monotonic clock.
 *
 * Owns: one link's descriptor, its receive buffer (filled in large reads, frames decrypted in
 * place and handed out from it, so frames already received cost no system call), its send
 * buffer (room for the length and the tag around the frame, so one send() carries a frame), its
 * two transport ciphers, and the error text of every handshake failure.
 * Must not: allocate for a length before checking it against its bound (a handshake message's
 * by the pattern and LINK_HELLO_MAX, a frame's by max_frame or the receive limit), grow a
 * buffer past what a frame needs (its limit + 20) or what the handshake needs, keep a buffer
 * grown past KEEP_MAX for a large frame once that frame is gone (the receive buffer shrinks to
 * its chunk when empty, the send buffer is freed after the frame), wait past a deadline, raise
 * SIGPIPE, use
 * a link again after a failure, or print. The Noise prologue is the magic followed by the 32
 * bytes of link_keys_t.prologue: the magic (the wire's version) is in the transcript, so a man in
 * the middle who rewrites it (a downgrade to another version's magic) fails the handshake. */
#include "gossip/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "gossip/aead.h"
#include "gossip/clock.h"
#include "gossip/noise.h"

#define MAGIC_LEN   8
#define RECV_CHUNK  (256u * 1024u)   /* the receive buffer's size when frames are smaller */
#define RECV_ROOM   4096u            /* less room than this at the end: move the rest to the front */
/* A buffer grown past this for a frame is freed once that frame is gone (a link that carried an
 * 8 MiB frame, pooled, would hold it). Room for a batch (linkserve.h: 1 MiB of records) is kept:
 * freeing it after every frame costs an allocation and its page faults per frame while a read
 * streams (bench/link with 1 MiB frames: the first round 6x slower). */
#define KEEP_MAX    ((size_t)2 << 20)
#define NEVER       UINT64_MAX
#define MSG1_MAX    (NOISE_MSG1_MIN + LINK_HELLO_MAX)
#define MSG2_MAX    (NOISE_MSG2_MIN + LINK_HELLO_MAX)
#define HELLO_BUF   512u             /* > MAGIC_LEN + 2 + MSG1_MAX: a handshake message in one read */
#define PROLOGUE_LEN (MAGIC_LEN + 32)

struct link {
    int fd;
    link_reason_t broken;            /* LINK_OK until a failure leaves the link unusable */
    int ready;                       /* the handshake is done */
    size_t max_frame;                /* the largest frame sent */
    size_t recv_max;                 /* the largest frame received (max_frame, or link_set_recv_max) */
    noise_cipher_t tx, rx;
    uint8_t peer_pk[32], hello[LINK_HELLO_MAX];
    size_t hello_len;
    uint8_t *rbuf, *wbuf;            /* rbuf[rpos, rlen): received, not yet handed out */
    size_t rcap, rpos, rlen, wcap;
    char peer[64];                   /* "10.0.0.1:7471", for error texts */
    uint64_t floor_rate, floor_allow, owed;   /* link_send_floor: bytes/s; allowance and debt in bytes */
};

const char *link_reason_name(link_reason_t r)
{
    static const char *const names[LINK_NREASONS] = {
        "ok", "timeout", "closed", "io", "garbage", "handshake", "decrypt", "oversize", "refused", "nomem", "slow",
    };
    return (unsigned)r < LINK_NREASONS ? names[r] : "unknown";
}

static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? NEVER : clock_ms() + (uint64_t)timeout_ms;
}

static uint64_t clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* 1: fd is ready for events (or has an error to report); 0: the deadline passed; -1: poll failed. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline != NEVER) {
            uint64_t now = clock_ms();
            if (now >= deadline)
                return 0;
            ms = deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* The receive buffer's normal size: the handshake's, or a chunk (less when frames are smaller). */
static size_t chunk_of(const link_t *l)
{
    size_t chunk = l->recv_max + 4 + NOISE_TAG;
    if (!l->ready)
        return HELLO_BUF;   /* a connection still in its handshake holds little */
    return chunk < RECV_CHUNK ? chunk : RECV_CHUNK;
}

/* Makes rbuf[rpos, rlen) hold at least need bytes, reading as much as the buffer takes each time.
 * 1 done; 0 deadline (*why LINK_TIMEOUT; the bytes stay); -1 failed (*why: LINK_CLOSED when the
 * peer closed with nothing pending, LINK_IO when inside something, LINK_NOMEM). */
static int fill(link_t *l, size_t need, uint64_t deadline, link_reason_t *why)
{
    size_t chunk = chunk_of(l);
    while (l->rlen - l->rpos < need) {
        if (l->rpos == l->rlen) {
            l->rpos = l->rlen = 0;
            if (l->rcap > KEEP_MAX) {   /* an outsized frame went: back to the normal size */
                free(l->rbuf);
                l->rbuf = malloc(chunk);
                l->rcap = l->rbuf ? chunk : 0;
            }
        }
        if (l->rcap - l->rlen < RECV_ROOM || l->rcap - l->rpos < need) {
            if (l->rpos) {
                memmove(l->rbuf, l->rbuf + l->rpos, l->rlen - l->rpos);
                l->rlen -= l->rpos;
                l->rpos = 0;
            }
            size_t want = need > chunk ? need : chunk;
            if (l->rcap < want) {
                uint8_t *nb = realloc(l->rbuf, want);
                if (!nb) {
                    *why = LINK_NOMEM;
                    return -1;
                }
                l->rbuf = nb;
                l->rcap = want;
            }
        }
        ssize_t n = recv(l->fd, l->rbuf + l->rlen, l->rcap - l->rlen, 0);
        if (n > 0) {
            l->rlen += (size_t)n;
            continue;
        }
        if (n == 0) {   /* errno 0: no stale EAGAIN in the text (io_text: "closed in the middle") */
            errno = 0;
            *why = l->rlen == l->rpos ? LINK_CLOSED : LINK_IO;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *why = LINK_IO;
            return -1;
        }
        int w = wait_fd(l->fd, POLLIN, deadline);
        if (w <= 0) {
            *why = w == 0 ? LINK_TIMEOUT : LINK_IO;
            return w == 0 ? 0 : -1;
        }
    }
    return 1;
}

static int send_all(link_t *l, const uint8_t *p, size_t n, uint64_t deadline, link_reason_t *why)
{
    while (n) {
        ssize_t w = send(l->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            l->owed = l->owed > (uint64_t)w ? l->owed - (uint64_t)w : 0;   /* taken: paid back */
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            uint64_t until = deadline, t0 = clock_ms(), u0 = clock_us();
            if (l->floor_rate) {   /* waiting is owed: wake when the allowance would be used up */
                uint64_t left = (l->floor_allow - l->owed) * 1000 / l->floor_rate + 1;
                if (deadline > t0 && left < deadline - t0)
                    until = t0 + left;
            }
            int r = wait_fd(l->fd, POLLOUT, until);
            /* owed by the microsecond: waits shorter than a millisecond add up too */
            if (l->floor_rate &&
                (l->owed += (uint64_t)((double)(clock_us() - u0) * (double)l->floor_rate / 1e6)) > l->floor_allow) {
                *why = LINK_SLOW;
                return -1;
            }
            if (r > 0 || (r == 0 && until < deadline))
                continue;
            *why = r == 0 ? LINK_TIMEOUT : LINK_IO;
            return -1;
        }
        *why = LINK_IO;   /* a peer gone (EPIPE, ECONNRESET) is an error here: a frame was cut */
        return -1;
    }
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "";
    snprintf(out, cap, "a local socket");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    }
}

static link_t *link_new(int fd, size_t max_frame)
{
    link_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->fd = fd;
    l->max_frame = l->recv_max = max_frame;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* fails on a socketpair: fine */
    peer_name(fd, l->peer, sizeof l->peer);
    return l;
}

/* A failed dial or accept: the text, the reason, the descriptor closed, the link freed. */
static link_t *refuse(link_t *l, int fd, noise_hs_t *hs, link_reason_t r, link_reason_t *why, char *err,
                      size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    *why = r;
    if (hs)
        noise_wipe_hs(hs);
    if (l)
        link_close(&l);
    else
        close(fd);
    return NULL;
}

/* The protocol link_dial asks for: LINK_SUITE_AUTO until link_set_suite says otherwise. */
static _Atomic int dial_suite = LINK_SUITE_AUTO;

static const char *const MAGICS[2] = {LINK_MAGIC, LINK_MAGIC_AESGCM};   /* by noise_suite_t */

int link_suite_of(const char *name)
{
    return !name || !*name || !strcmp(name, "auto") ? LINK_SUITE_AUTO
           : !strcmp(name, "chachapoly")            ? LINK_SUITE_CHACHAPOLY
           : !strcmp(name, "aesgcm")                ? LINK_SUITE_AESGCM
                                                    : -1;
}

int link_set_suite(const char *name)
{
    int s = link_suite_of(name);
    if (s < 0)
        return -1;
    dial_suite = s;
    return 0;
}

/* The suite link_dial uses now: the one set, or AESGCM where this CPU runs AES in hardware. */
static noise_suite_t suite_now(void)
{
    int s = dial_suite;
    if (s == LINK_SUITE_AUTO)
        return aead_aes_in_hardware() ? NOISE_AESGCM : NOISE_CHACHAPOLY;
    return s == LINK_SUITE_AESGCM ? NOISE_AESGCM : NOISE_CHACHAPOLY;
}

const char *link_suite_name(int suite)
{
    if (suite == LINK_SUITE_AUTO)
        suite = suite_now() == NOISE_AESGCM ? LINK_SUITE_AESGCM : LINK_SUITE_CHACHAPOLY;
    return suite == LINK_SUITE_AESGCM ? "Noise_IK_25519_AESGCM_SHA256" : "Noise_IK_25519_ChaChaPoly_SHA256";
}

/* The Noise prologue of k under suite's magic: the magic, then the federation's 32 bytes. */
static const uint8_t *prologue_of(const link_keys_t *k, noise_suite_t suite, uint8_t out[PROLOGUE_LEN])
{
    memcpy(out, MAGICS[suite], MAGIC_LEN);
    memcpy(out + MAGIC_LEN, k->prologue, 32);
    return out;
}

static const char *io_text(link_reason_t r)
{
    switch (r) {
    case LINK_TIMEOUT: return "timed out";
    case LINK_CLOSED: return "the connection was closed";
    case LINK_NOMEM: return "out of memory";
    default: return errno ? strerror(errno) : "the connection was closed in the middle of a message";
    }
}

link_t *link_dial(int fd, const link_keys_t *k, const uint8_t server_pk[32], const uint8_t *hello,
                  size_t hello_len, size_t max_frame, int timeout_ms, link_reason_t *why, char *err,
                  size_t errlen)
{
    uint64_t deadline = deadline_of(timeout_ms);
    link_t *l = link_new(fd, max_frame);
    char peer[64];
    noise_hs_t hs;
    link_reason_t r;
    if (!l)
        return refuse(NULL, fd, NULL, LINK_NOMEM, why, err, errlen, "handshake: out of memory");
    memcpy(peer, l->peer, sizeof peer);
    if (max_frame > LINK_FRAME_MAX)
        return refuse(l, fd, NULL, LINK_OVERSIZE, why, err, errlen,
                      "handshake with %s: frames of %zu bytes asked for (at most %zu)", peer, max_frame,
                      LINK_FRAME_MAX);
    if (hello_len > LINK_HELLO_MAX)
        return refuse(l, fd, NULL, LINK_OVERSIZE, why, err, errlen,
                      "handshake with %s: a hello of %zu bytes (at most %d)", peer, hello_len,
                      LINK_HELLO_MAX);

    uint8_t out[MAGIC_LEN + 2 + MSG1_MAX];
    size_t mlen;
    noise_suite_t suite = suite_now();
    memcpy(out, MAGICS[suite], MAGIC_LEN);
    uint8_t pro[PROLOGUE_LEN];
    noise_init(&hs, suite, 1, k->pk, k->sk, server_pk, prologue_of(k, suite, pro), sizeof pro);
    if (noise_write(&hs, hello, hello_len, out + MAGIC_LEN + 2, &mlen) != NOISE_OK)
        return refuse(l, fd, &hs, LINK_HANDSHAKE, why, err, errlen,
                      "handshake with %s: the server key is not a usable X25519 key", peer);
    out[MAGIC_LEN] = (uint8_t)(mlen >> 8), out[MAGIC_LEN + 1] = (uint8_t)mlen;
    errno = 0;
    if (send_all(l, out, MAGIC_LEN + 2 + mlen, deadline, &r) != 0)
        return refuse(l, fd, &hs, r, why, err, errlen, "handshake with %s: sending: %s", peer, io_text(r));

    errno = 0;
    int got = fill(l, 2, deadline, &r);
    if (got <= 0 && (r == LINK_CLOSED || r == LINK_IO))
        return refuse(l, fd, &hs, LINK_HANDSHAKE, why, err, errlen,
                      "handshake with %s: handshake failed: the peer closed the connection without answering "
                      "(it has another key, belongs to another federation, or refused us%s)", peer,
                      suite == NOISE_AESGCM ? "; or it runs a build that takes only ChaCha20-Poly1305: "
                                              "--link-cipher chachapoly until every node is upgraded" : "");
    if (got <= 0)
        return refuse(l, fd, &hs, r, why, err, errlen, "handshake with %s: no answer: %s", peer, io_text(r));
    size_t len = (size_t)l->rbuf[l->rpos] << 8 | l->rbuf[l->rpos + 1];
    if (len < NOISE_MSG2_MIN || len > MSG2_MAX)
        return refuse(l, fd, &hs, LINK_GARBAGE, why, err, errlen,
                      "handshake with %s: not a Tributary link (an answer of %zu bytes; %d to %d expected)",
                      peer, len, NOISE_MSG2_MIN, MSG2_MAX);
    errno = 0;
    if (fill(l, 2 + len, deadline, &r) <= 0)
        return refuse(l, fd, &hs, r, why, err, errlen, "handshake with %s: reading the answer: %s", peer,
                      io_text(r));
    uint8_t payload[LINK_HELLO_MAX];
    size_t plen;
    if (noise_read(&hs, l->rbuf + l->rpos + 2, len, payload, sizeof payload, &plen) != NOISE_OK)
        return refuse(l, fd, &hs, LINK_HANDSHAKE, why, err, errlen,
                      "handshake with %s: handshake failed: the peer's key is not the one expected, "
                      "or it belongs to another federation", peer);
    l->rpos += 2 + len;
    noise_split(&hs, &l->tx, &l->rx);
    l->ready = 1;
    memcpy(l->peer_pk, server_pk, 32);
    memcpy(l->hello, payload, plen);
    l->hello_len = plen;
    *why = LINK_OK;
    return l;
}

link_t *link_accept(int fd, const link_keys_t *k, link_allow_fn allow, void *ctx, const uint8_t *reply,
                    size_t reply_len, size_t max_frame, int timeout_ms, link_reason_t *why, char *err,
                    size_t errlen)
{
    uint64_t deadline = deadline_of(timeout_ms);
    link_t *l = link_new(fd, max_frame);
    char peer[64];
    noise_hs_t hs;
    link_reason_t r;
    if (!l)
        return refuse(NULL, fd, NULL, LINK_NOMEM, why, err, errlen, "link: out of memory");
    memcpy(peer, l->peer, sizeof peer);
    if (max_frame > LINK_FRAME_MAX)
        return refuse(l, fd, NULL, LINK_OVERSIZE, why, err, errlen,
                      "link from %s: frames of %zu bytes asked for (at most %zu)", peer, max_frame,
                      LINK_FRAME_MAX);
    if (reply_len > LINK_HELLO_MAX)
        return refuse(l, fd, NULL, LINK_OVERSIZE, why, err, errlen,
                      "link from %s: a reply of %zu bytes (at most %d)", peer, reply_len, LINK_HELLO_MAX);

    errno = 0;
    int got = fill(l, MAGIC_LEN + 2, deadline, &r);
    size_t have = l->rlen - l->rpos;
    const uint8_t *p = have ? l->rbuf + l->rpos : NULL;   /* rbuf is NULL when nothing was read */
    /* the protocol the magic names (the two share all but their last byte), whichever this CPU */
    noise_suite_t suite = have >= MAGIC_LEN && !memcmp(p, MAGICS[NOISE_AESGCM], MAGIC_LEN) ? NOISE_AESGCM
                                                                                          : NOISE_CHACHAPOLY;
    if (have && memcmp(p, MAGICS[suite], have < MAGIC_LEN ? have : MAGIC_LEN) != 0) {
        char first[16] = "";
        for (size_t i = 0, at = 0; i < have && i < 4; i++)
            at += (size_t)snprintf(first + at, sizeof first - at, i ? " %02x" : "%02x", p[i]);
        return refuse(l, fd, NULL, LINK_GARBAGE, why, err, errlen,
                      "link from %s: not a Tributary link (first bytes %s)", peer, first);
    }
    if (got <= 0)
        return refuse(l, fd, NULL, r, why, err, errlen, "link from %s: no handshake: %s", peer,
                      r == LINK_TIMEOUT ? "none within the timeout" : io_text(r));
    uint8_t pro[PROLOGUE_LEN];
    noise_init(&hs, suite, 0, k->pk, k->sk, NULL, prologue_of(k, suite, pro), sizeof pro);
    size_t len = (size_t)p[MAGIC_LEN] << 8 | p[MAGIC_LEN + 1];
    if (len < NOISE_MSG1_MIN || len > MSG1_MAX)
        return refuse(l, fd, &hs, LINK_GARBAGE, why, err, errlen,
                      "link from %s: not a Tributary link (a first message of %zu bytes; %d to %d expected)",
                      peer, len, NOISE_MSG1_MIN, MSG1_MAX);
    errno = 0;
    if (fill(l, MAGIC_LEN + 2 + len, deadline, &r) <= 0)
        return refuse(l, fd, &hs, r, why, err, errlen, "link from %s: reading the handshake: %s", peer,
                      r == LINK_TIMEOUT ? "not all of it within the timeout" : io_text(r));

    uint8_t payload[LINK_HELLO_MAX];
    size_t plen;
    if (noise_read(&hs, l->rbuf + l->rpos + MAGIC_LEN + 2, len, payload, sizeof payload, &plen) != NOISE_OK)
        return refuse(l, fd, &hs, LINK_HANDSHAKE, why, err, errlen,
                      "link from %s: handshake failed: it was not made for this node's key, or it comes "
                      "from another federation (or was altered)", peer);
    l->rpos += MAGIC_LEN + 2 + len;
    char why_not[200] = "";
    if (allow && allow(ctx, hs.rs, payload, plen, why_not, sizeof why_not) != 0)
        return refuse(l, fd, &hs, LINK_REFUSED, why, err, errlen, "link from %s: refused: %s", peer,
                      why_not[0] ? why_not : "not allowed");

    uint8_t out[2 + MSG2_MAX];
    size_t mlen;
    if (noise_write(&hs, reply, reply_len, out + 2, &mlen) != NOISE_OK)
        return refuse(l, fd, &hs, LINK_HANDSHAKE, why, err, errlen,
                      "link from %s: handshake failed: the initiator's ephemeral key is not usable", peer);
    out[0] = (uint8_t)(mlen >> 8), out[1] = (uint8_t)mlen;
    errno = 0;
    if (send_all(l, out, 2 + mlen, deadline, &r) != 0)
        return refuse(l, fd, &hs, r, why, err, errlen, "link from %s: answering: %s", peer, io_text(r));
    memcpy(l->peer_pk, hs.rs, 32);
    memcpy(l->hello, payload, plen);
    l->hello_len = plen;
    noise_split(&hs, &l->tx, &l->rx);
    l->ready = 1;
    *why = LINK_OK;
    return l;
}

static int broke(link_t *l, link_reason_t r, link_reason_t *why)
{
    l->broken = r;
    *why = r;
    return -1;
}

uint8_t *link_frame(link_t *l, size_t len, link_reason_t *why)
{
    if (l->broken) {
        *why = l->broken;
        return NULL;
    }
    if (len > l->max_frame) {
        *why = LINK_OVERSIZE;
        return NULL;
    }
    size_t need = 4 + len + NOISE_TAG;
    if (l->wcap < need) {
        uint8_t *nb = realloc(l->wbuf, need);
        if (!nb) {
            *why = LINK_NOMEM;
            return NULL;
        }
        l->wbuf = nb;
        l->wcap = need;
    }
    return l->wbuf + 4;
}

int link_send_frame(link_t *l, size_t len, int timeout_ms, link_reason_t *why)
{
    if (l->broken) {
        *why = l->broken;
        return -1;
    }
    if (len > l->max_frame || l->wcap < 4 + len + NOISE_TAG) {
        *why = LINK_OVERSIZE;   /* not room from link_frame: nothing sent, the link still usable */
        return -1;
    }
    put32(l->wbuf, (uint32_t)(len + NOISE_TAG));
    if (noise_seal(&l->tx, l->wbuf + 4, len) != NOISE_OK)
        return broke(l, LINK_DECRYPT, why);
    link_reason_t r;
    if (send_all(l, l->wbuf, 4 + len + NOISE_TAG, deadline_of(timeout_ms), &r) != 0)
        return broke(l, r, why);
    if (l->wcap > KEEP_MAX) {   /* an outsized frame went: its room is not kept */
        free(l->wbuf);
        l->wbuf = NULL;
        l->wcap = 0;
    }
    return 0;
}

int link_send(link_t *l, const void *buf, size_t len, int timeout_ms, link_reason_t *why)
{
    uint8_t *p = link_frame(l, len, why);
    if (!p)
        return -1;
    if (len)
        memcpy(p, buf, len);
    return link_send_frame(l, len, timeout_ms, why);
}

int link_recv(link_t *l, const uint8_t **frame, size_t *len, int timeout_ms, link_reason_t *why)
{
    if (l->broken) {
        *why = l->broken;
        return -1;
    }
    uint64_t deadline = deadline_of(timeout_ms);
    link_reason_t r;
    int got = fill(l, 4, deadline, &r);
    if (got <= 0) {
        *why = r;
        return got == 0 ? 0 : broke(l, r, why);
    }
    size_t clen = get32(l->rbuf + l->rpos);
    if (clen > l->recv_max + NOISE_TAG)
        return broke(l, LINK_OVERSIZE, why);
    if (clen < NOISE_TAG)
        return broke(l, LINK_DECRYPT, why);
    got = fill(l, 4 + clen, deadline, &r);
    if (got <= 0) {
        *why = r;
        return got == 0 ? 0 : broke(l, r == LINK_CLOSED ? LINK_IO : r, why);
    }
    uint8_t *p = l->rbuf + l->rpos + 4;
    if (noise_open(&l->rx, p, clen) != NOISE_OK)
        return broke(l, LINK_DECRYPT, why);
    l->rpos += 4 + clen;
    *frame = p;
    *len = clen - NOISE_TAG;
    *why = LINK_OK;
    return 1;
}

int link_fd(const link_t *l)
{
    return l->fd;
}

int link_buffered(const link_t *l)
{
    size_t have = l->rlen - l->rpos;
    if (l->broken)
        return 1;
    if (have < 4)
        return 0;
    size_t clen = get32(l->rbuf + l->rpos);
    return clen > l->recv_max + NOISE_TAG || clen < NOISE_TAG || have >= 4 + clen;
}

void link_send_floor(link_t *l, uint32_t allow_ms, uint32_t min_rate)
{
    l->floor_rate = min_rate;
    l->floor_allow = (uint64_t)allow_ms * min_rate / 1000;
    l->owed = 0;
}

void link_idle(link_t *l)
{
    free(l->wbuf);
    l->wbuf = NULL;
    l->wcap = 0;
    if (l->rpos == l->rlen) {
        free(l->rbuf);
        l->rbuf = NULL;
        l->rcap = l->rpos = l->rlen = 0;
    }
}

size_t link_held(const link_t *l)
{
    return l->rcap + l->wcap;
}

void link_set_recv_max(link_t *l, size_t max)
{
    l->recv_max = max < LINK_FRAME_MAX ? max : LINK_FRAME_MAX;
}

int link_protocol(const link_t *l)
{
    return l->tx.suite == NOISE_AESGCM ? LINK_SUITE_AESGCM : LINK_SUITE_CHACHAPOLY;
}

const uint8_t *link_peer_pk(const link_t *l)
{
    return l->peer_pk;
}

const uint8_t *link_peer_hello(const link_t *l, size_t *len)
{
    *len = l->hello_len;
    return l->hello;
}

void link_close(link_t **lp)
{
    link_t *l = lp ? *lp : NULL;
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    sodium_memzero(&l->tx, sizeof l->tx);
    sodium_memzero(&l->rx, sizeof l->rx);
    free(l->rbuf);
    free(l->wbuf);
    free(l);
    *lp = NULL;
}
