/* gossip/link.h - the data link: a direct TCP connection between two nodes, secured by the Noise
 * IK handshake (Noise_IK_25519_AESGCM_SHA256 or Noise_IK_25519_ChaChaPoly_SHA256, gossip/noise.c),
 * then carrying
 * length-prefixed encrypted frames. Routed reads use it (the relay's HTTP thread talks to a thread
 * of the owner's, with no ZeroMQ I/O thread and no gossip loop between them); membership and the
 * catalog stay on the ZeroMQ transport.
 *
 * Wire. The initiator sends an 8-byte magic naming the protocol, "TRIBLNKA" (AESGCM) or "TRIBLNK1"
 * (ChaChaPoly), then the handshake's two messages, each as a
 * 2-byte big-endian length + the Noise message; then frames, each a 4-byte big-endian length of
 * the ciphertext (plaintext + 16) + the ciphertext, under the Noise transport keys of its
 * direction (nonce = frame count; a frame replayed, reordered, cut or altered fails to decrypt).
 * Frames above 65535 bytes are our own framing, beyond the Noise spec's message limit (its
 * 2-byte lengths): one AEAD call per frame, as the spec's cipher functions allow.
 * The Noise prologue is the magic followed by link_keys_t.prologue (32 bytes both ends must agree
 * on: which federation): both are mixed into the handshake hash, so a peer of another federation,
 * one not knowing the open federation's secret, or a magic rewritten on the way (another
 * version's) fails the handshake. Message 1 carries the initiator's static key (encrypted) and a payload (the
 * caller's: e.g. its node id); the responder's allow callback decides after it decrypts both.
 *
 * Protocols. The initiator picks (link_set_suite; by default AESGCM when its CPU runs AES in
 * hardware, else ChaChaPoly) and the responder follows the magic: every node accepts both. Both
 * are Noise's own, equally strong; AES-256-GCM with AES-NI and carry-less multiply is the cheaper
 * per byte (OpenSSL here: 4.3 GB/s against ChaCha20-Poly1305's 2.9), ChaCha20-Poly1305 the
 * cheaper without them. A magic rewritten on the way fails the handshake (it is in the prologue).
 *
 * Replays. IK's message 1 carries no proof of freshness: a recorded message 1 replayed makes
 * link_accept return a link, with the victim's static key and hello, on which the replayer can
 * never send a frame (it lacks the ephemeral secret the transport keys need). The initiator is
 * proven live only when its first frame decrypts: a responder should count and log a link as
 * accepted only then, and give the first frame a short deadline.
 *
 * Keys are X25519 (a node's identity_t curve_pk/curve_sk: its Ed25519 node key converted). The
 * initiator must know the responder's static key (the owner's node id, converted): a responder
 * with another key cannot complete the handshake.
 *
 * A link owns its descriptor (non-blocking once given; closed by link_close and by a failed
 * dial/accept). Timeouts are in ms: -1 waits forever, 0 does not wait. A link belongs to one
 * thread at a time. */
#ifndef TRIB_LINK_H
#define TRIB_LINK_H

#include <stddef.h>
#include <stdint.h>

#define LINK_MAGIC        "TRIBLNK1"   /* Noise_IK_25519_ChaChaPoly_SHA256 */
#define LINK_MAGIC_AESGCM "TRIBLNKA"   /* Noise_IK_25519_AESGCM_SHA256 */
#define LINK_HELLO_MAX 256          /* payload bytes in message 1 and 2 at most */
#define LINK_FRAME_MAX ((size_t)1 << 30)   /* max_frame at most (dial and accept refuse more: the
                                              4-byte length and the size arithmetic stay exact) */

typedef struct link link_t;

typedef struct {
    uint8_t pk[32], sk[32];        /* this end's static X25519 key pair */
    uint8_t prologue[32];          /* the federation both ends belong to */
} link_keys_t;

/* Why a link call failed: the label of trib_link_refused_total{reason} and friends. */
typedef enum {
    LINK_OK = 0,
    LINK_TIMEOUT,      /* nothing (more) within the timeout */
    LINK_CLOSED,       /* the peer closed the connection at a frame boundary (receiving) */
    LINK_IO,           /* a socket error, the connection closed inside a frame/message, or
                          the peer gone while sending */
    LINK_GARBAGE,      /* not a Tributary link: bad magic or malformed handshake message */
    LINK_HANDSHAKE,    /* the handshake did not authenticate: wrong key, wrong prologue, tampered */
    LINK_DECRYPT,      /* a frame did not decrypt: altered, replayed, reordered */
    LINK_OVERSIZE,     /* a frame longer than max_frame was announced or asked for */
    LINK_REFUSED,      /* the allow callback refused the initiator */
    LINK_NOMEM,
    LINK_SLOW,         /* the peer fell behind link_send_floor's rate by more than its allowance */
    LINK_NREASONS
} link_reason_t;

const char *link_reason_name(link_reason_t r);   /* "timeout", "closed", ... (metrics labels) */

/* The protocol link_dial asks for, for the whole process (link_accept takes either). */
enum { LINK_SUITE_AUTO = 0, LINK_SUITE_CHACHAPOLY = 1, LINK_SUITE_AESGCM = 2 };
/* The LINK_SUITE_* a name gives: "auto" (or NULL, ""), "aesgcm", "chachapoly"; -1 for any other. */
int link_suite_of(const char *name);
/* Sets it by name (link_suite_of); -1, nothing set, for an unknown name. */
int link_set_suite(const char *name);
/* The Noise protocol name of a LINK_SUITE_* (AUTO: the one link_dial picks on this CPU). */
const char *link_suite_name(int suite);

/* The initiator's side on a connected socket fd: sends the magic and message 1 (with payload
 * hello, hello_len <= LINK_HELLO_MAX), reads message 2. server_pk: the responder's static key.
 * The responder's payload (if any) is link_peer_hello's afterwards. NULL on failure with *why
 * and err ("handshake with 10.0.0.1:7471: ..."); fd is closed then. max_frame: the largest frame's
 * plaintext either way, at most LINK_FRAME_MAX (more: LINK_OVERSIZE, nothing sent). */
link_t *link_dial(int fd, const link_keys_t *k, const uint8_t server_pk[32], const uint8_t *hello,
                  size_t hello_len, size_t max_frame, int timeout_ms, link_reason_t *why, char *err,
                  size_t errlen);

/* The responder's decision on an initiator: its static key and its payload, both authenticated.
 * 0 admits; else -1 with err (sent nowhere: the initiator only sees the connection close). A NULL
 * allow admits every initiator that completes the handshake. */
typedef int (*link_allow_fn)(void *ctx, const uint8_t client_pk[32], const uint8_t *hello, size_t hello_len,
                             char *err, size_t errlen);

/* The responder's side on an accepted socket fd: reads the magic and message 1, asks allow, sends
 * message 2 (with payload reply, reply_len <= LINK_HELLO_MAX; may be NULL). NULL on failure with
 * *why and err; fd is closed then. The whole handshake must arrive within timeout_ms. */
link_t *link_accept(int fd, const link_keys_t *k, link_allow_fn allow, void *ctx, const uint8_t *reply,
                    size_t reply_len, size_t max_frame, int timeout_ms, link_reason_t *why, char *err,
                    size_t errlen);

/* Room for a frame of len plaintext bytes inside the link, valid until the next call on l: fill
 * it, then link_send_frame(l, len, ...). Saves a copy of large frames. NULL: len > max_frame
 * (*why LINK_OVERSIZE) or out of memory. */
uint8_t *link_frame(link_t *l, size_t len, link_reason_t *why);
/* Encrypts the len bytes written at link_frame(l, len) and sends them as one frame, waiting up to
 * timeout_ms for the socket to take all of it. 0 sent; -1 failed (*why): LINK_OVERSIZE (len past
 * max_frame or past the room link_frame gave) sends nothing and leaves the link usable; any other
 * failure leaves it unusable (part of a frame may have left). */
int link_send_frame(link_t *l, size_t len, int timeout_ms, link_reason_t *why);
/* link_frame + copy + link_send_frame. */
int link_send(link_t *l, const void *buf, size_t len, int timeout_ms, link_reason_t *why);

/* The next frame: 1 with *frame and *len pointing into l (valid until the next call on l), 0 when
 * no whole frame arrived within timeout_ms (bytes of a partial one are kept), -1 failed (*why;
 * LINK_CLOSED: the peer closed between frames). Reads in large chunks: frames already received
 * are returned without a system call. */
int link_recv(link_t *l, const uint8_t **frame, size_t *len, int timeout_ms, link_reason_t *why);

/* A floor under the peer's reading, for the end that sends much (the owner): while a send waits
 * for the peer to take bytes, the time waited is owed, and every min_rate bytes the peer takes pay
 * back a second of it; owing more than allow_ms, the send fails with LINK_SLOW (the link unusable).
 * What is owed carries across frames (a peer slow one frame at a time cannot reset it); a peer that
 * keeps up owes nothing and banks nothing. A paused peer owes a second a second: allow_ms is the
 * pause it is given, and a trickle below min_rate gets little more. Each call starts afresh;
 * min_rate 0: no floor (the default). The send's own timeout still applies. */
void link_send_floor(link_t *l, uint32_t allow_ms, uint32_t min_rate);

/* Frees the buffers of a link between requests (a pooled or idle link holds no frame's room): the
 * send buffer, and the receive buffer when it holds nothing. The next frame allocates again. */
void link_idle(link_t *l);
size_t link_held(const link_t *l);             /* bytes its buffers hold now (receive and send) */

/* Lowers (or raises, up to LINK_FRAME_MAX) the largest frame l accepts from its peer; max_frame
 * stays the largest it sends. For an end that takes small requests and answers with large frames
 * (the owner: a relay could otherwise make each of its links hold a max_frame buffer). A frame
 * announced longer: link_recv fails with LINK_OVERSIZE, before its body is read. */
void link_set_recv_max(link_t *l, size_t max);

int link_fd(const link_t *l);                  /* to poll for POLLIN (check link_buffered first) */
int link_buffered(const link_t *l);            /* 1: a whole frame is already held (link_recv won't wait) */
int link_protocol(const link_t *l);            /* LINK_SUITE_AESGCM or _CHACHAPOLY: the one in use */
const uint8_t *link_peer_pk(const link_t *l);  /* the peer's static key (authenticated) */
/* The peer's handshake payload (authenticated): the initiator's hello at the responder, the
 * responder's reply at the initiator; *len 0 when there was none. */
const uint8_t *link_peer_hello(const link_t *l, size_t *len);
void link_close(link_t **lp);                  /* accepts NULL; nulls *lp; closes the descriptor */

#endif
