/* gossip/transport.h - the peer transport: ZeroMQ ROUTER in, one DEALER per peer out, CURVE + ZAP.
 *
 * Owns: the node's ROUTER (bound on its peer address, CURVE server with the federation key), the
 * ZAP handler that admits client keys, one DEALER per peer address (CURVE client with the node's
 * own key, LRU-capped), Envelope framing, and checking every received frame before it is handed
 * on (size, decode, version, shape, sender authenticated by its CURVE key, known type).
 * Must not: interpret message bodies (membership, catalog and reads do), block the caller, or
 * touch LMDB.
 *
 * Keys. Every ROUTER of a federation is a CURVE server with the same *federation key pair*,
 * derived from a shared secret string (transport_federation_keys), so a node can reach a seed
 * knowing only its HOST:PORT. Every DEALER is a CURVE client with the node's own Curve25519 key
 * (identity_t.curve_pk/curve_sk). The ZAP handler admits client keys (all, or those the allow
 * callback accepts) and records the client key as the connection's User-Id; a received Envelope
 * whose sender (Ed25519) does not convert to that CURVE key is dropped as "spoofed". So the
 * sender of a delivered message is authenticated.
 *
 * Messages are one-way (the Zyre pattern): a reply is sent with transport_send to the sender's
 * advertised address (transport_msg_t.sender_addr).
 *
 * Threads: a transport belongs to one thread (the gossip loop), transport_stats included.
 * ZeroMQ allows one ZAP handler per context, so at most one transport per ZeroMQ context. */
#ifndef TRIB_TRANSPORT_H
#define TRIB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "gossip/identity.h"

/* 2: envelopes on a connection whose routing id names the sender leave sender and sender_addr
 * out, and a direct Ack its target; a version-1 node would take both for malformed, so the two
 * refuse each other by version (counted as bad_version) instead.
 * 3: the signed member claim covers its data link address (Member.link, gossip/swim_sig.c); a
 * version-2 node would find every new claim's signature forged, so the two refuse each other by
 * version as well. */
#define TRANSPORT_PROTOCOL_VERSION 3
#define TRANSPORT_ADDR_MAX         64          /* "HOST:PORT" + NUL */
#define TRANSPORT_MAX_TYPES        32          /* message types are < this (proto MsgType) */
#define TRANSPORT_DEFAULT_SECRET   "tributary"

typedef struct transport transport_t;

typedef struct {
    size_t max_msg;                 /* largest frame accepted or sent, bytes (4 MiB). A frame up to
                                       max_msg + 64 KiB is dropped and counted as oversize; ZeroMQ
                                       (ZMQ_MAXMSGSIZE) disconnects a peer sending a larger one. */
    int hwm;                        /* ZeroMQ send/receive high-water marks, messages (1000) */
    const char *federation_secret;  /* shared by every node of a federation ("tributary") */
    /* No ZMTP heartbeats: with them libzmq 4.3.4 aborts the process (assertion !_io_error in
     * stream_engine_base.cpp) when a heartbeat timer fires on a connection whose engine already
     * stopped on an I/O error after its receive pipe filled (libzmq issues 4364, 3937, 4767).
     * SWIM detects failed members; dead TCP connections are reaped by TCP keepalive. */
    int keepalive_s;                /* TCP keepalive idle time, seconds, 0 = none (60) */
    size_t max_peers;               /* open DEALERs; the least recently used is closed (1024) */
    uint32_t priority_types;        /* bit t set: messages of type t travel on a connection of
                                       their own per peer (a second DEALER), so they never queue
                                       behind the other types' bulk in ZeroMQ or TCP (0) */
    uint32_t light_types;           /* bit t set: a message of type t whose body is at most light_max
                                       bytes goes on the priority connection too, unless the peer's
                                       other connection is open and its priority one is not (0) */
    size_t light_max;               /* bytes (0: none is light) */
    const char *advertise;          /* HOST:PORT peers reply to; NULL = the bound address */
    int pending_ms;                 /* how long a send may wait for a connection (2000) */
    int pending_max;                /* messages waiting per peer for a connection (64) */
    int unanswered_ms;              /* a connection of ours whose handshake never succeeded and that
                                       was given no message for this long is closed (ZeroMQ redials
                                       it forever, backing off from 100 ms to 2 s); 0 = never (10000) */
    int close_linger_ms;            /* ZMQ_LINGER set on DEALERs by transport_destroy (500) */
    /* Chartered mode (0): the ROUTER is a CURVE server with this node's own CURVE key instead of
     * the federation key, and a DEALER to an address uses the node key registered for it with
     * transport_set_peer as its server key (none registered: the send is dropped, counted in
     * send_no_key). No key shared by the federation exists. */
    int per_node_keys;
    size_t max_peer_keys;           /* node keys held per address; the least recently used unproven
                                       one is forgotten beyond this (65536); a proven one only for
                                       an operator's seed, else the claim is refused */
    /* Bulk sends (transport_send_bulk): bytes ZeroMQ may hold for one peer address (32 MiB) and
     * for all together (128 MiB), from the send until they are written to the kernel (a peer that
     * reads nothing holds them: ZMQ_SNDHWM counts messages, 1000 of up to max_msg). A peer with
     * nothing held may go past the total by up to a peer's budget in all, one message each. */
    size_t bulk_peer_bytes, bulk_total_bytes;
} transport_opts_t;

void transport_opts_default(transport_opts_t *o);

/* The federation's CURVE server key pair: seed = BLAKE2b-256("tributary-federation:" + secret),
 * crypto_box_seed_keypair(seed). sk may be NULL. */
void transport_federation_keys(const char *secret, uint8_t pk[32], uint8_t sk[32]);

/* True when s is a plausible peer address: HOST:PORT, shorter than TRANSPORT_ADDR_MAX, HOST a
 * name/IPv4 ([A-Za-z0-9.-]) or a bracketed IPv6 literal, PORT decimal 1..65535. */
int transport_addr_valid(const char *s);
/* The same rule for an address of up to max - 1 characters (a member claim's link address). */
int transport_addr_valid_max(const char *s, size_t max);

/* Binds the ROUTER on listen_addr (HOST:PORT; port 0 or "*" takes a free port, see
 * transport_addr) and the ZAP handler in zctx. o NULL = defaults. NULL with err set on failure.
 * A wildcard host ("*", 0.0.0.0, [::]) needs o->advertise: peers cannot reply to it. */
transport_t *transport_new(void *zctx, const identity_t *id, const char *listen_addr,
                           const transport_opts_t *o, char *err, size_t errlen);
/* Closes every socket (DEALERs get close_linger_ms to flush); accepts NULL, nulls *tp. The
 * owner terminates zctx afterwards. */
void transport_destroy(transport_t **tp);

/* A key rotation, in process: from now on the node is id. Every DEALER closes (its routing id and
 * client key were the old key's; waiting messages are dropped and counted) and, with per-node keys,
 * the ROUTER binds its address again as the CURVE server of id's key: connections made under the
 * old key end, and peers dial again with the new one (waiting up to 1 s for the old listener to
 * let go of the port). 0, or -1 with err: the ROUTER may then be unbound. */
int transport_rekey(transport_t *t, const identity_t *id, char *err, size_t errlen);

/* The address actually bound, "HOST:PORT" (port resolved when 0 was asked). */
const char *transport_addr(const transport_t *t);
/* The address put in sent envelopes as sender_addr (opts advertise, else transport_addr). */
const char *transport_advertised(const transport_t *t);

/* Fills items with what the owner's loop must poll: the ROUTER and the ZAP socket (POLLIN), then
 * DEALERs holding messages that wait for their connection (POLLOUT). Returns how many (<= max,
 * max >= 2). Call before every poll: the set changes. Also expires stale waiting messages. */
int transport_pollitems(transport_t *t, zmq_pollitem_t *items, int max);

/* A delivered message: sender authenticated, type known, version checked. body points into
 * storage owned by the message (NULL when body_len is 0). */
typedef struct {
    int type;                                /* Trib__MsgType */
    uint8_t sender[32];                      /* Ed25519 public key = node id */
    char sender_addr[TRANSPORT_ADDR_MAX];    /* where to reply */
    uint64_t seq;
    const uint8_t *body;
    size_t body_len;
    void *env_;                              /* private: the unpacked Envelope */
} transport_msg_t;

/* Call when any of the poll items fired. Answers ZAP requests, flushes waiting sends, then
 * reads the ROUTER: returns 1 and fills *m when a valid message arrived (free it with
 * transport_msg_free), 0 when nothing (more) is ready now, -1 when the context is terminated.
 * Invalid frames are dropped and counted. Never blocks; reads a bounded number of frames per
 * call (the ROUTER stays readable if more are queued). */
int transport_recv(transport_t *t, transport_msg_t *m);
void transport_msg_free(transport_msg_t *m);    /* accepts an already freed/zeroed message */

/* Sends one Envelope {type, body} to addr without blocking, opening a DEALER when needed.
 * Returns 0 when handed to ZeroMQ or held until the new connection is up (at most pending_max
 * messages for pending_ms), -1 when dropped (counted in send_dropped): bad address, body over
 * max_msg, peer's queue full. type must be a known MsgType (asserted). */
int transport_send(transport_t *t, const char *addr, int type, const uint8_t *body, size_t len);
/* transport_send for bulk (a read's records), under byte budgets: TRANSPORT_BUSY (counted in
 * bulk_busy), nothing sent, when the bytes of bulk sends ZeroMQ still holds for addr or for every
 * peer together would go past bulk_peer_bytes or bulk_total_bytes (a message to an empty queue
 * always goes, past the total too while it is passed by less than bulk_peer_bytes: peers holding
 * the total cannot starve one that reads). The caller tries again later: the budget frees as the
 * peers read. */
#define TRANSPORT_BUSY 1
int transport_send_bulk(transport_t *t, const char *addr, int type, const uint8_t *body, size_t len);
/* (A connection that holds bulk bytes of which ZeroMQ wrote none for 10 s is closed with them in
 * any case, counted in bulk_dropped: a peer that reads nothing holds no budget for good.)
 * The peer at addr stopped answering while ZeroMQ holds bulk bytes for it: the connection that
 * holds them closes (they are dropped, their budget freed; the next send dials again). Returns the
 * bytes it held (0: none held, nothing closed). */
size_t transport_drop_bulk(transport_t *t, const char *addr);

/* Opens the priority connection to addr ahead of its first message, so a membership message (a
 * probe, the ack answering one) never waits for a TCP + CURVE handshake, ZAP and certificate
 * hello: opened at the first message, under load (a burst of new bulk connections at once) that
 * took 1-2.4 s, longer than a probe's whole budget. Our certificate hello goes first, as a first
 * send would queue it; nothing else is sent. Returns 1 opened, 0 open already, -1 not at all: addr
 * invalid, or (chartered) without a key or with one the allow callback does not admit now (a
 * member entry of a key with no certificate, which anyone can mint: dialled, if at all, when a
 * message needs it), or the DEALER cap reached (a warm-up never closes another connection); -2 not
 * now: max_shaking connections or more opened within the last second still wait for their first
 * handshake (a warm-up adds no burst of its own to a busy node; one that is stuck, to an address
 * that accepts TCP and never speaks, frees its place after that second and goes on trying). */
int transport_warm(transport_t *t, const char *addr, int max_shaking);

/* 1 when a connection of ours to addr is open and its first handshake succeeded (seen by the
 * owner's thread: a node that speaks the transport, with the key this node dials it with, answers
 * there), else 0. A seed's address may not be the one its node advertises (a DNS name): this says
 * it was reached all the same. */
int transport_reached(const transport_t *t, const char *addr);

/* Closes the DEALERs to addr (a dead peer); waiting messages are dropped and counted. Returns how
 * many were open (0..2). The next message to addr opens a connection again. */
int transport_forget(transport_t *t, const char *addr);
/* transport_forget for the DEALERs to addr that are down (ZeroMQ has no connection to write to:
 * never up, or broken and redialling with its backoff); one that is up stays. Returns how many
 * closed (0..2). */
int transport_forget_down(transport_t *t, const char *addr);

/* Admission policy for peers' CURVE keys; NULL = open federation (any key). Runs on the owner's
 * thread inside transport_recv: at the handshake (connect 1, the ZAP request) and again for every
 * received message (connect 0; a key revoked or expired meanwhile stops being delivered).
 * Returns TRANSPORT_ADMIT; TRANSPORT_REFUSE (the handshake is refused, counted in zap_denied; a
 * message is dropped, counted in dropped_uncertified); or TRANSPORT_PROVISIONAL: a key with no
 * certificate known yet may connect, but only its MSG_CERT_HELLO is taken until it is admitted
 * (its other messages are dropped and counted in dropped_uncertified, and it is asked for its
 * certificate, at most once a second per key). connect TRANSPORT_ASK: a question before sending (do we
 * hold its certificate, or do we ask for it in our hello?): nothing was refused, nothing counts. */
enum { TRANSPORT_REFUSE = 0, TRANSPORT_ADMIT = 1, TRANSPORT_PROVISIONAL = 2 };
#define TRANSPORT_ASK 2
typedef int (*transport_allow_fn)(void *ctx, const uint8_t curve_pk[32], int connect);
void transport_set_allow(transport_t *t, transport_allow_fn allow, void *ctx);

/* Chartered mode: the node key (Ed25519) of the node at addr, whose CURVE form is the server key
 * of connections to addr. An address's key is proven once a CURVE handshake with it there
 * succeeded, failed once one failed (other than by the peer's admission check).
 * how TRANSPORT_PEER_CLAIM (what a message or member entry says): binds an address with no key
 * or a failed one; another key held there is replaced only when the rebind callback accepts the
 * new one, else the claim is refused (counted in peer_key_refused, described in last_key_claim),
 * or, when the callback says the claimed key is one the held key took over from, refused as
 * stale (peer_key_stale: a retired key still in some member table, no conflict). Every admitted
 * message claims its sender's address this way; one whose claim is refused is dropped
 * (dropped_claimed_addr, dropped_retired_key), but for a federation push, delivered with an empty
 * sender_addr (its objects verify themselves). TRANSPORT_PEER_PROVEN (an
 * operator's seed NODE_ID@HOST:PORT): replaces any key. A replaced key closes the DEALERs to
 * addr. 0 bound (or already), 1 refused, 2 refused as stale, -1 bad address or key, or a claim
 * with no room (every binding held is proven: peer_key_table_full). */
enum { TRANSPORT_PEER_CLAIM = 0, TRANSPORT_PEER_PROVEN = 1 };
int transport_set_peer(transport_t *t, const char *addr, const uint8_t node_pk[32], int how);
/* The node key held for addr into node_pk: 1 proven, 0 not (yet), -1 none held. */
int transport_peer_key(const transport_t *t, const char *addr, uint8_t node_pk[32]);
/* May claimed replace held as addr's key, though held is not known to have failed there?
 * TRANSPORT_REBIND_YES (the owner holds a hand-over signed by held to claimed, or held is no longer
 * admitted), TRANSPORT_REBIND_NO, or TRANSPORT_REBIND_STALE: no, and claimed is a key held took
 * over from (a hand-over from claimed to held), so the claim is old news, not a conflict.
 * Owner's thread, inside transport_set_peer and transport_recv. */
enum { TRANSPORT_REBIND_NO = 0, TRANSPORT_REBIND_YES = 1, TRANSPORT_REBIND_STALE = 2 };
typedef int (*transport_rebind_fn)(void *ctx, const char *addr, const uint8_t held[32], const uint8_t claimed[32]);
void transport_set_rebind(transport_t *t, transport_rebind_fn fn, void *ctx);

/* Certificate hello (chartered mode): cert (copied) is sent as a CertHello first on every new
 * connection but one to a node whose accepted hello said it holds ours (asked for none; so one hello
 * per pair, not one per connection: a node that lost it drops the message and asks), and in answer
 * to a hello asking for it when a connection of ours to its sender is open (with none, nothing of
 * ours waits there: our first message to it opens one, our hello first; none is opened for an
 * answer alone) (an unadmitted sender is asked at most once
 * a second per key, and at most 64 times a second in all). A received hello is not delivered: it is
 * given to fn (owner's thread), which returns 1 when the certificate verified and names the
 * sender (the sender is then admitted by the allow callback), else 0 with why filled (counted in
 * hellos_refused; the sender is sent our hello carrying why, at most once a second per key, so both sides
 * log the reason). */
typedef struct {
    const uint8_t *sender;            /* Ed25519, authenticated by the connection */
    const char *sender_addr;
    const uint8_t *cert;
    size_t len;
    int64_t sender_time_ms;           /* the sender's wall clock when it sent the hello (0: not given) */
    const char *refused;              /* non-empty: the sender says it refused our certificate, why */
    char why[160];                    /* out: why fn refused it */
} transport_hello_t;
typedef int (*transport_hello_fn)(void *ctx, transport_hello_t *h);
int transport_set_hello(transport_t *t, const uint8_t *cert, size_t len, transport_hello_fn fn,
                        void *ctx);

typedef struct {
    uint64_t msgs_in[TRANSPORT_MAX_TYPES];   /* delivered, by type */
    uint64_t msgs_out[TRANSPORT_MAX_TYPES];  /* handed to ZeroMQ, by type */
    uint64_t bytes_in, bytes_out;            /* every payload frame received / sent */
    uint64_t dropped_oversize, dropped_undecodable, dropped_bad_version, dropped_malformed,
             dropped_spoofed, dropped_unknown_type;
    uint64_t send_dropped;                   /* sends not delivered to ZeroMQ */
    uint64_t zap_denied;                     /* connection attempts refused by the ZAP handler */
    uint64_t dropped_uncertified;            /* messages of keys not (or no longer) admitted */
    uint64_t send_no_key;                    /* sends to an address with no known node key */
    uint64_t hellos_in, hellos_refused;      /* certificate hellos received; refused by fn */
    uint64_t peers_open;                     /* DEALERs open now */
    uint64_t dealers_opened[2];              /* DEALERs opened (connections dialled), by lane: [0] the
                                                bulk one, [1] the priority types' */
    uint64_t dealers_warmed;                 /* ... of those [1], by transport_warm */
    uint64_t dealers_up[2];                  /* ... of those, by lane, whose first handshake succeeded
                                                (seen by the loop: dealers without a watch not counted) */
    uint64_t dealers_unanswered;             /* closed: never came up, unused for unanswered_ms */
    uint64_t dealers_redialled;              /* connections never up, with no TCP connection, that
                                                dialled again at once for a new message (once per
                                                10 s at most) */
    uint64_t sends_held[2];                  /* messages held for a connection not up yet (or a
                                                full ZeroMQ queue), by lane as dealers_opened */
    uint64_t handshake_failed_in;            /* CURVE/ZMTP handshakes of incoming connections failed */
    uint64_t handshake_failed_out;           /* ... of our connections to peers (watched until the
                                                first one to a peer succeeds) */
    char last_handshake_error[200];          /* the last failure, in words */
    char last_handshake_peer[TRANSPORT_ADDR_MAX + 24];
    uint64_t peer_key_refused;               /* claims of an address held by another node's key */
    uint64_t peer_key_stale;                 /* claims of an address by a key its holder took over
                                                from (rotated out): refused, not a conflict */
    uint64_t peer_keys_replaced;             /* an address's key replaced (seed, hand-over, failure) */
    uint64_t peer_keys_evicted;              /* bindings forgotten at max_peer_keys */
    char last_key_claim[200];                /* the last refused claim, in words */
    uint64_t cert_asks;                      /* unadmitted senders asked for their certificate */
    uint64_t dropped_claimed_addr;           /* messages whose sender address claim was refused (a
                                                federation push goes on with no address) */
    uint64_t dropped_retired_key;            /* ... refused as stale (a rotated-out key's) */
    uint64_t peer_key_table_full;            /* claims of a new address refused: every binding held
                                                was proven (those are not forgotten for a claim) */
    uint64_t bulk_busy;                      /* bulk sends refused over a byte budget (not now) */
    uint64_t bulk_dropped;                   /* connections closed by transport_drop_bulk, or holding bulk
                                                bytes of which none was written for 10 s */
} transport_stats_t;

/* The live counters. Owner's thread only: to show them elsewhere (metrics), copy the struct on
 * the owner's thread and publish the copy (under the owner's lock). */
const transport_stats_t *transport_stats(const transport_t *t);
/* Bytes of bulk sends ZeroMQ holds now (lowered by its I/O threads as they write; any thread). */
size_t transport_bulk_bytes(const transport_t *t);

#endif
