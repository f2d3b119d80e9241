/* gossip/linkserve.h - the owner's side of the data link (gossip/link.h): a TCP listener whose
 * links each get a thread of their own, serving routed range reads straight from the store
 * (reads_serve), with no ZeroMQ I/O thread and no gossip loop on the way.
 *
 * A link's initiator says who it is in the handshake's hello: its Ed25519 node id. Chartered, the
 * static key it proved must be admitted now (trust_admit_info; else "not_admitted") and the hello
 * must be the node id certified for that key, byte for byte (else "spoofed"). Open, the hello's
 * X25519 form must be the key proven (else "spoofed"); there is no identity binding beyond the
 * federation secret. The prologue binds the federation: the
 * open federation's secret, or the charter's federation id. On a link, one request after another:
 * a frame is a type byte and a packed protobuf, LINK_REQ (ReadRequest, never live) answered by
 * LINK_BATCH frames (ReadBatch, the last one done) as the peer transport's owner answers. TCP is
 * the flow control; a link that sends no request for idle_ms is closed. The first request must
 * come within handshake_ms of the handshake, else the link is refused as "no_request" (a replayed
 * message 1 completes a handshake but can send nothing that decrypts): a link counts as accepted
 * (trib_link_accepted_total, trib_link_open) once its first frame decrypted. Chartered, the
 * initiator's key is asked about again before every request: revoked (or no longer certified as
 * the same node id), its link is closed ("not_admitted").
 * Must not: touch the gossip loop or its sockets, hold a lock while serving, or serve more than
 * max_links links at once, max_per_peer of one node id, or hold more than max_handshakes
 * unproven connections (more handshakes are closed at once, "busy"; a link over the others is
 * answered with LINK_REFUSE, "busy" or "per_peer"), keep a read's buffers on an idle link, or give
 * a read full batches past the links' budget (room_per_key, room_total). */
#ifndef TRIB_LINKSERVE_H
#define TRIB_LINKSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include "gossip/reads.h"
#include "gossip/trust.h"

enum { LINK_REQ = 1, LINK_BATCH = 2, LINK_REFUSE = 3 };   /* a frame's first byte */
/* LINK_REFUSE: the owner's answer to the first request of a link it will not serve, being over a
 * limit: the type, the reason (LINK_REFUSE_BUSY: --link-max; LINK_REFUSE_PER_PEER: the relay holds
 * max_per_peer links already) and the milliseconds after which to dial again (4 bytes, big-endian);
 * then the owner closes the link. Sealed under the link's keys like every frame: only the owner can
 * have made it (a refusal before the handshake is a plain close, which anyone on the path can fake). */
enum { LINK_REFUSE_BUSY = 1, LINK_REFUSE_PER_PEER = 2 };
#define LINK_REFUSE_LEN 6
#define LINK_RETRY_MS 1000u                  /* the owner's retry-after: a link frees when a read ends */
#define LINK_MAX_FRAME ((size_t)8 << 20)     /* both ends: a batch (up to the peer message size) fits */
#define LINK_BATCH_BYTES ((size_t)1 << 20)   /* record bytes per batch on a link */
#define LINK_NARROW_BYTES ((size_t)56 << 10) /* ... on a read served narrow (the links' budget is held): its
                                                page and frame fit in 128 KiB */
#define LINK_REQ_MAX ((size_t)64 << 10)      /* a request frame at most (a ReadRequest and its token): the
                                                owner's links take no more (else "oversize") */

typedef struct linkserve linkserve_t;

typedef struct {
    const char *listen;          /* HOST:PORT; port 0: a free one */
    unsigned max_links;          /* admitted links served at once (256; more: "busy") */
    unsigned max_handshakes;     /* connections in their handshake at once, apart from the links (32;
                                    more are closed at accept: "busy") */
    unsigned max_per_peer;       /* admitted links of one node id at once (64, and a quarter of max_links
                                    at most, 1 at least; more: "per_peer"): each holds a thread, and
                                    reads_serve leaves the per-requester bound to us */
    uint8_t prologue[32];        /* link_prologue_open / _charter */
    trust_t *trust;              /* chartered: initiators must be admitted; NULL: open */
    /* This node's static key pair now (its identity's CURVE keys; a live key rotation changes it:
     * each handshake asks). Any thread. */
    void (*keys)(void *ctx, uint8_t pk[32], uint8_t sk[32]);
    void *ctx;
    reads_t *reads;
    uint32_t idle_ms;            /* close a link without a request this long (30000) */
    uint32_t handshake_ms;       /* the whole handshake within (2000); the first request as long after */
    /* A relay must take a read's batches at min_rate bytes/s (65536, --link-min-rate) on average,
     * and may fall behind that by send_ms in all (600000, --link-send-ms; link_send_floor): a relay
     * stops reading while its client does (a pager, a slow pipeline), which the peer transport's
     * credit lets wait indefinitely; over a link a paused read pins a thread here and its batch's
     * buffer, so a pause is given send_ms, and a relay that trickles (a slow network, or a member
     * holding threads on purpose) gets little more. Further behind, its link is closed, counted
     * "slow" (and lost). max_per_peer bounds the threads of one relay meanwhile. */
    uint32_t send_ms;
    uint32_t min_rate;
    /* The links' budget: a read is served with batches of LINK_BATCH_BYTES, holding their page and
     * frame (~2 MiB) until it ends, while the reads of its node hold less than room_per_key (22 MiB)
     * and all reads less than room_total (88 MiB); past either, with batches of LINK_NARROW_BYTES
     * (~128 KiB held; slower, never refused). With a link's thread (~28 KiB) and the link limits
     * (64 a node, 256 in all), a node whose relays read nothing costs ~32 MiB at most, all nodes
     * ~128 MiB. */
    size_t room_per_key, room_total;
} linkserve_opts_t;

/* A LINK_REFUSE frame; and its reading: 0 with *reason and *retry_ms, -1 when f is not one. */
void link_refusal(uint8_t out[LINK_REFUSE_LEN], int reason, uint32_t retry_ms);
int link_refusal_parse(const uint8_t *f, size_t len, int *reason, uint32_t *retry_ms);

/* NULL with err when the address cannot be bound. */
linkserve_t *linkserve_start(const linkserve_opts_t *o, char *err, size_t errlen);
int linkserve_port(const linkserve_t *s);                 /* the bound port */
void linkserve_metrics(linkserve_t *s, FILE *f);          /* trib_link_accepted_total ... */
/* Closes the listener and every link, joins their threads. Accepts NULL, nulls *sp. */
void linkserve_stop(linkserve_t **sp);

/* The prologue of an open federation (from its secret, NULL: the default one) or of a chartered
 * one (from its federation id). */
void link_prologue_open(const char *secret, uint8_t out[32]);
void link_prologue_charter(const uint8_t fed_id[16], uint8_t out[32]);
/* HOST:PORT (a bracketed IPv6 host allowed) resolved to a socket address; 0, or -1. */
int link_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

#endif
