/* gossip/fedlog.h - the federation log (DESIGN.md §12): the set of signed federation objects a
 * node holds (charter updates, domain certificates, revocations, policy sets), each a TrustSigned
 * known by the BLAKE2b-256 of its body, verified before it is stored or passed on, persisted in
 * LMDB (storage/fedlog.h) and replicated between nodes: pushed at once to every alive member
 * (revocations first, on the priority connection), reconciled as a set by anti-entropy
 * (proto/tributary.proto, FedSync: summary, buckets, hashes, want, objects; a summary that differs
 * from a set of at most 64 objects is answered with its hashes at once, skipping the buckets).
 *
 * Owns: taking objects offered as bytes (from an operator's file through the API, or from a
 * peer), dispatching them by kind to their verifier (trust_offer_* for kinds 1-3, the policy
 * hook for kind 4, the old key's signature and certificate for kind 5, a key hand-over), the held set and its summary, the push queue, the anti-entropy exchange, the
 * refusal counters (trib_fedlog_refused_total{kind,reason}) and the status view.
 * Must not: open sockets (the gossip loop sends through fedlog_io_t), include anything from
 * node/, or hold its lock while sending.
 *
 * Threads: fedlog_offer, fedlog_status_json, fedlog_metrics_render and fedlog_summary from any
 * thread; fedlog_tick, fedlog_sync and fedlog_handle on the gossip loop only. Once attached to a
 * loop with own_thread, the trust store given to fedlog_new is changed by the loop (an operator's
 * offer from an HTTP thread is checked there) or by the commit worker (an operator's object, once
 * stored), always under the fedlog's lock; questions go through the store's own lock (the ZAP
 * handler); a caller holding pointers into it takes fedlog_lock / fedlog_unlock around them. */
#ifndef TRIB_FEDLOG_H
#define TRIB_FEDLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gossip/charter.h"
#include "gossip/trust.h"
#include "storage/store.h"

#define FEDLOG_MAX_OBJECTS 150000            /* held objects; more are refused ("full") */
#define FEDLOG_MAX_BYTES   (256u << 20)      /* their total size */
#define FEDLOG_MAX_CHARTERS 1024             /* charter versions held */
#define FEDLOG_KINDS 6                       /* kind 0 (unknown) .. 5 (key rotation hand-over) */

typedef struct fedlog fedlog_t;

/* Reasons beyond trust_verdict_t's, for refusals the fedlog itself makes. */
typedef enum {
    FEDLOG_R_OPEN_MODE = TRUST_VERDICT_COUNT,  /* a charter/cert/revocation with no charter held */
    FEDLOG_R_FULL,                             /* FEDLOG_MAX_OBJECTS or FEDLOG_MAX_BYTES reached */
    FEDLOG_R_UNKNOWN_KIND,                     /* the envelope names no kind we know */
    FEDLOG_R_POLICY,                           /* the policy hook refused a policy set */
    FEDLOG_R_STORAGE,                          /* LMDB failed (disk full ...) */
    FEDLOG_R_BUSY,                             /* the loop did not take an operator's offer in time */
    FEDLOG_R_NO_SPACE,                         /* LMDB failed for want of disk space (or map_max) */
    FEDLOG_R_KIND_MISMATCH,                    /* a file whose "kind" is not its signed bytes' kind */
    FEDLOG_R_TOO_LARGE,                        /* a file over TRUST_FILE_MAX */
    FEDLOG_R_COUNT
} fedlog_reason_t;

typedef struct {
    int kind;                                  /* trust_kind_t of the envelope, 0 if unknown */
    int added;                                 /* 1: new in the set (stored, queued for push) */
    int reason;                                /* TRUST_OK, a trust_verdict_t or a fedlog_reason_t */
    uint8_t hash[TRUST_HASH_LEN];              /* BLAKE2b-256 of the body (when decodable) */
    char err[400];                             /* why, when refused */
} fedlog_result_t;

/* The label of a reason: trust_verdict_name's, or "open_mode", "full", "unknown_kind",
 * "policy_refused", "storage", "busy", "no_space", "kind_mismatch", "too_large". */
const char *fedlog_reason_name(int reason);

/* A federation log over st. t: the node's trust store (chartered mode), or NULL (open mode: only
 * policy sets are held). Loads the stored objects and offers them to t (charters by version,
 * then certificates, then revocations); objects refused now stay stored (logged). NULL with err. */
fedlog_t *fedlog_new(store_t *st, trust_t *t, char *err, size_t errlen);
void fedlog_destroy(fedlog_t **fp);

/* Kind-4 objects (policy sets) go to fn (node/policy_node.c, set by the agent) at each step
 * (FEDLOG_POLICY_*): CHECK when offered (under the fedlog's lock, on the loop: verify only, 0 when
 * the set would be held, -1 with err); PEER or OPERATOR just before the durable commit (on the
 * commit worker, no lock held: verify again; a peer's set is put in force now, as a peer's other
 * objects, an operator's not yet; -1 with err: the set is not stored); then, once the commit is
 * done, on the thread that made it, STORED (durable: keep it, its files written, and put it in
 * force; its answer is not used). A failed commit calls nothing: an operator's set was never in
 * force and its submission is refused with the commit's reason (FEDLOG_R_STORAGE or _NO_SPACE);
 * a peer's stays in force until restart, and anti-entropy brings it again. Without a hook a policy set is refused
 * (policy_refused): nothing else can check its signatures. */
enum {
    FEDLOG_POLICY_CHECK = 0,
    FEDLOG_POLICY_PEER = 1,
    FEDLOG_POLICY_OPERATOR = 2,
    FEDLOG_POLICY_STORED = 3,
};
typedef int (*fedlog_policy_fn)(void *ctx, const uint8_t *bytes, size_t len, int step, char *err,
                                size_t errlen);
void fedlog_set_policy_offer(fedlog_t *f, fedlog_policy_fn fn, void *ctx);

/* Offers bytes (a TrustSigned, at most TRUST_MAX_BYTES) as an operator's submission (from NULL)
 * or from a peer's hello (its address). 0 when held (res->added says whether it is new: stored,
 * and an operator's pushed to every alive member once stored, never before; a hello's is not
 * pushed: each node presents its own, and anti-entropy carries it; an operator's answer comes
 * once it is durable, a peer's offer on a loop with own_thread returns once it is verified and in
 * force, its commit left to the worker), -1 when refused (res->reason, res->err; counted, logged
 * at most once a second per reason). An operator's object held already is "held" only when its
 * bytes are the stored ones or its signatures verify (a forged resend is refused as any forgery);
 * a peer's is taken as held by its body hash. An operator's charter older than the held one is refused
 * (stale_version); a peer's is kept as history when the held chain names its hash. */
int fedlog_offer(fedlog_t *f, const uint8_t *bytes, size_t len, const char *from, fedlog_result_t *res);
/* An operator's file refused before its bytes could be offered (by the API reading it: not a
 * JSON object, no known kind, "signed" not base64 of at most TRUST_MAX_BYTES, bytes of another
 * kind, over TRUST_FILE_MAX): counted in trib_fedlog_refused_total{kind,reason} (kind: the file's,
 * 0 when it names none) and logged at most once a second per reason, as fedlog_offer's refusals. */
void fedlog_refuse_file(fedlog_t *f, int kind, int reason, const char *err);
/* Objects from peers (the certificates their hellos presented), offered together: each as
 * fedlog_offer from a peer, but in one job, so one durable commit for all (a join brought one commit,
 * and its fsync, per certificate). from names them in log lines. Refusals are counted and logged. */
void fedlog_offer_peers(fedlog_t *f, const uint8_t *const *bytes, const size_t *lens, size_t n, const char *from);

/* Count and XOR of the held hashes (the anti-entropy summary). */
void fedlog_summary(fedlog_t *f, uint32_t *count, uint8_t hash[TRUST_HASH_LEN]);
/* 1 when an object with this body hash is held. */
int fedlog_has(fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN]);

void fedlog_lock(fedlog_t *f);
void fedlog_unlock(fedlog_t *f);
/* The trust store (NULL in open mode); read it only between fedlog_lock and fedlog_unlock. */
trust_t *fedlog_trust(fedlog_t *f);

/* ---- the gossip loop */
typedef struct {
    void *ctx;
    void (*send)(void *ctx, const char *addr, int type, const uint8_t *body, size_t len);
    /* Every alive member's address (up to max); the strings stay valid until the loop's next turn. */
    size_t (*peers)(void *ctx, const char **addrs, size_t max);
    void (*wake)(void *ctx);                   /* any thread: call fedlog_tick soon */
    size_t max_frame;                          /* bytes of objects per message */
    int own_thread;                            /* the loop is a thread of its own that owns the trust
                                                  store: operators' offers (from NULL) made on other
                                                  threads are run by it (fedlog_tick), and waited for */
    /* The answers' budget: may the peer whose sync message is being handled (reply address addr)
     * be sent hashes or objects now? 1 yes, 0 no (the hook counts and logs it). answered is told the
     * bytes of each message of such an answer. NULL: always. */
    int (*answer_ok)(void *ctx, const char *addr);
    void (*answered)(void *ctx, const char *addr, size_t bytes);
} fedlog_io_t;

/* Durability. The fsync of a commit never runs on the gossip loop: with io.own_thread the new
 * objects of an offer are committed by a worker thread of the fedlog (every job queued then in one
 * LMDB commit; a policy set's files written by the policy hook after it: FEDLOG_POLICY_STORED). Until committed an object
 * is pending: held as far as offers go (not verified twice), but not in the held set, so the
 * summary and anti-entropy count only what is stored. A peer's object is in force while pending
 * (trust store, policy set) and pushed on (an fsync per hop is not on the path from node to node;
 * its sender holds it already); when its commit fails it stays in force here (the federation
 * holds it) and anti-entropy brings it again. An operator's charter, certificate, revocation or
 * hand-over is only checked when offered and put in force (and pushed) once it is stored, so one
 * whose commit failed (the operator told so: storage, or no_space) is neither enforced here nor
 * sent to any peer: what a node enforces of its operators' objects is what it stored. An operator
 * waits until its object is durable; a peer gets no answer and after a crash anti-entropy brings
 * back what was lost.
 * Without own_thread commits run on the caller (tests, tools). */

/* Connects the loop (io NULL: disconnects; queued pushes wait; commits still queued are done and
 * the worker stops). */
void fedlog_attach(fedlog_t *f, const fedlog_io_t *io);
/* Sends the queued pushes: revocations first, each to every alive member but its sender. */
void fedlog_tick(fedlog_t *f);
/* Waits until every queued commit is done (tests; any thread but the worker). */
void fedlog_flush(fedlog_t *f);
/* Opens an anti-entropy round with peer (a summary). */
void fedlog_sync(fedlog_t *f, const char *peer);
/* fedlog_sync without the sending: the MSG_FED_SYNC summary body into buf (cap >= 64 is enough)
 * for the caller to carry. Its length, or 0 when not attached. */
size_t fedlog_sync_opener(fedlog_t *f, uint8_t *buf, size_t cap);
/* A received MSG_FED_PUSH or MSG_FED_SYNC from peer. Bad messages are counted and dropped. */
void fedlog_handle(fedlog_t *f, const char *from, int type, const uint8_t *body, size_t len);

/* ---- views */
/* {"mode","objects","bytes","charter":{...}|null,"certificates":[...],"revocations":[...],
 *  "policies":N}. New reference, or NULL on OOM. */
json_t *fedlog_status_json(fedlog_t *f);
/* trib_fedlog_objects{kind}, trib_fedlog_accepted_total{kind}, trib_fedlog_refused_total{kind,
 * reason}, trib_fedlog_pushed_total, trib_fedlog_sync_total{step}, trib_fedlog_pending (verified, not yet
 * durable), trib_fedlog_commits_total (durable commits, each of one or more objects). */
void fedlog_metrics_render(fedlog_t *f, FILE *out);

#endif
