/* tests/peer_tools.h - test helpers: act as a (possibly hostile) peer of a node's transport.
 *
 * Owns: in-memory identities, raw ZeroMQ clients that talk to a node's ROUTER (plain, CURVE with
 * any key, any server key), building Envelopes with arbitrary fields, and deadline-bounded
 * waiting on a transport (answering its ZAP requests meanwhile).
 * Must not: be linked into the library, sleep as synchronisation, or print. */
#ifndef TRIB_PEER_TOOLS_H
#define TRIB_PEER_TOOLS_H

#include <stddef.h>
#include <stdint.h>
#include "gossip/identity.h"
#include "gossip/transport.h"

/* A fresh random identity in memory (Ed25519 pair, its CURVE pair, hex id). */
void peer_identity(identity_t *id);

typedef struct peer_client peer_client_t;

/* A DEALER connected to addr (HOST:PORT) in zctx. id NULL: plain socket, no CURVE. Otherwise a
 * CURVE client with id's curve keys and server key server_pk (NULL: the federation key of
 * TRANSPORT_DEFAULT_SECRET). Frames sent before the connection is up are queued; frames still
 * queued when the client is destroyed are discarded, so keep it until the receiver saw them.
 * The ZeroMQ context must outlive the client; it may be the transport's own context. */
peer_client_t *peer_client_new(void *zctx, const char *addr, const identity_t *id,
                               const uint8_t server_pk[32]);
void peer_client_destroy(peer_client_t **cp);
void *peer_client_socket(peer_client_t *c);

/* Sends one frame of arbitrary bytes. 0 or -1. */
int peer_client_send_raw(peer_client_t *c, const void *data, size_t len);
/* Sends one message of n frames. 0 or -1. */
int peer_client_send_parts(peer_client_t *c, const void *const parts[], const size_t lens[], int n);

/* Envelope fields, sent as given (no checks), so tests can lie in any field. */
typedef struct {
    uint32_t version;
    int type;
    const uint8_t *sender;
    size_t sender_len;
    const char *sender_addr;
    uint64_t seq;
    const uint8_t *body;
    size_t body_len;
} peer_envelope_t;

/* A well-formed envelope from id: current version, sender id->pk, the given address/type/body. */
void peer_envelope_init(peer_envelope_t *e, const identity_t *id, const char *sender_addr,
                        int type, const uint8_t *body, size_t body_len);
/* Serializes e into *out (malloc'd, caller frees). 0 or -1. */
int peer_envelope_pack(const peer_envelope_t *e, uint8_t **out, size_t *len);
int peer_client_send_envelope(peer_client_t *c, const peer_envelope_t *e);

/* Polls t (answering ZAP, flushing its sends) until a valid message arrives: 1 and *m filled
 * (free with transport_msg_free), or 0 after timeout_ms without one. */
int peer_wait_msg(transport_t *t, int timeout_ms, transport_msg_t *m);

/* Polls t until the uint64_t counter at byte offset `field` of transport_stats_t (use offsetof)
 * reaches at least want: 1, or 0 after timeout_ms. Messages delivered meanwhile are freed and
 * added to *delivered when it is not NULL. */
int peer_wait_stat(transport_t *t, size_t field, uint64_t want, int timeout_ms, int *delivered);

/* Polls two transports alternately until `a` delivers a message (1, *m filled) or timeout (0);
 * messages `b` delivers meanwhile are freed. For exchanges where both sides must run. */
int peer_wait_msg2(transport_t *a, transport_t *b, int timeout_ms, transport_msg_t *m);

/* Milliseconds on a monotonic clock. */
int64_t peer_now_ms(void);

#endif
