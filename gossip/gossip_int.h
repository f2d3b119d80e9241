/* gossip/gossip_int.h - what the parts of the federation actor share; included by the files below
 * (and zap.c) only.
 *
 *   gossip.c          the loop thread, the callbacks it gives transport, SWIM, replication and
 *                     reads, the member snapshot, lifecycle and the rest of gossip.h's API.
 *   intake.c          received catalog messages: the bounded queue, the worker thread that
 *                     verifies and stores entry frames, and own-domain sync (publishing waits);
 *                     gossip_own_synced and gossip_forks.
 *   gossip_metrics.c  gossip_metrics_render: the counters the loop publishes, for Prometheus.
 *   answers.c         the answer budget: the hooks replication and the federation log call before
 *                     and after answering a peer.
 *   conns.c           the peer connections that follow membership: warm-ups, closing a gone
 *                     member's connections.
 *   seeds.c           the seeds given at start: which were reached; a warning for those that
 *                     were not (gossip_seeds_unreached).
 *
 * Must not: be included outside those files; declare anything one of them could keep static. */
#ifndef TRIB_GOSSIP_INT_H
#define TRIB_GOSSIP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "gossip/curvememo.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/membersave.h"
#include "gossip/reads.h"
#include "gossip/swim.h"
#include "gossip/replicate.h"
#include "gossip/transport.h"
#include "gossip/trust.h"
#include "storage/store.h"

#define OWN_SYNC_MS 10000        /* how long a starting node waits for a peer's view of its own domain */

typedef struct cmsg {
    struct cmsg *next;
    transport_msg_t m;
} cmsg_t;

#define GOSSIP_HELLO_STORE_MAX 64  /* certificates from hellos queued for the federation log at most */
#define GOSSIP_GONE_MAX 64         /* members gone in one loop turn whose connections close (conns.c) */
#define GOSSIP_UNCERT_TRACK 64     /* uncertified members followed for the log at most (the rest: counted) */
#define GOSSIP_BACK_SLOTS 64       /* members back in sight remembered at once (returned.c); more: the oldest is
                                      forgotten, and an answer to it waits for the pushes as before */

#define GOSSIP_SEEDS_MAX 64        /* seeds followed (seeds.c): as many as SWIM takes */

/* A seed given at start, followed until it is reached (seeds.c). */
typedef struct {
    char given[GOSSIP_SEED_TEXT];  /* as the operator wrote it */
    char addr[SWIM_MAX_ADDR + 1];  /* its HOST:PORT */
    uint8_t pk[32];                /* chartered: the node id it names */
    int has_pk;
    int reached, warned;           /* written by the loop under smu */
} gossip_seed_t;

/* trib_trust_refused_total{kind}: connections, entries, owners of routed reads (zap.c) */
enum { TRUST_REFUSED_CONNECT = 0, TRUST_REFUSED_ENTRY = 1, TRUST_REFUSED_OWNER = 2, TRUST_REFUSED_KINDS = 3 };

typedef struct {
    uint8_t id[32];
    char refused[24];              /* why (gossip_member_t.refused): another reason is followed anew */
    uint64_t since_ms;             /* listed as uncertified (for this reason) since */
    int logged;
} gossip_unc_t;

struct gossip {
    store_t *st;
    catalog_t *cat;
    identity_t id;
    gossip_opts_t o;
    char listen[256], advertise[256], http[256], domain[64];
    void *zctx;
    transport_t *tr;
    swim_t *swim;
    replicate_t *repl;
    reads_t *reads;
    struct linkserve *links;     /* the owner's link server (NULL: off) */
    struct linkpool *pool;       /* the relay's links to owners */
    uint32_t read_open_ms;       /* reads_config_t.open_timeout_ms: a routed read's whole wait for a first reply */
    char link[256];              /* the link address we gossip ("" none) */
    pthread_t thread;
    int efd;                     /* wakes the loop: queue or stop */
    atomic_int stop;
    /* this node's entries: announced (any thread -> loop), pushed up to pushed_seq (loop only) */
    atomic_int announced;
    uint64_t pushed_seq;         /* the last own seq pushed */
    int push_due;                /* announced, not pushed yet (loop only) */
    uint64_t push_next_ms;       /* paced: the next push no sooner (loop only; gossip.c PUSH_PACE_MS) */
    /* received catalog messages waiting for the loop (loop only) */
    cmsg_t *chead, *ctail;
    size_t cbytes;
    uint64_t catalog_dropped;
    /* the catalog worker: verifies and stores one job of received entry frames at a time, off the
     * loop (which meanwhile handles membership and queues more frames) */
    pthread_t wthread;
    int wstarted;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    repl_job_t *wjob;            /* handed to the worker (under wmu) */
    int wdone, wstop;            /* under wmu */
    cmsg_t *wbatch[64];          /* the job's messages (loop only) */
    size_t nwbatch;
    int wbusy;                   /* a job is out (loop only) */
    int accepted_new;            /* the job reaped accepted entries: wake readers (loop only) */
    uint64_t wstart_ms, wnext_ms; /* when the last job started; the next starts no sooner than
                                     wnext_ms (loop only; intake.c) */
    uint64_t wready_ms;          /* ... or wready_ms once enough waits (intake.c) */
    /* own domain: publishing waits until a peer confirmed our head (or OWN_SYNC_MS passed) */
    atomic_int own_synced;
    uint64_t own_deadline, own_next_ask;
    char own_why[GOSSIP_WHY_MAX];           /* under smu */
    /* member snapshot (loop -> any thread) */
    pthread_mutex_t smu;
    gossip_member_t *snap;
    size_t nsnap;
    int dirty;
    pthread_cond_t snapcv;       /* broadcast under smu when snap changes, and at reads shutdown */
    size_t snap_unconfirmed;     /* swim_unconfirmed_count when snap was made (loop only) */
    int snap_stopping;           /* gossip_reads_shutdown: no more waits on snapcv (under smu) */
    _Atomic uint64_t owner_waits; /* routed reads that waited for word of an owner restored dead or left */
    atomic_int ask_unconfirmed;   /* such a read waits: the loop asks those members now (swim_ask_unconfirmed) */
    uint64_t asked_unconfirmed_ms; /* when it last did (loop only) */
    /* member changes not handed to the saver yet: handed over together, at most once a second
     * (SAVE_MS), and saved off the loop (membersave.c), so a burst of membership news costs one
     * commit, and the loop never waits for it (loop only) */
    membersave_t *saver;
    store_member_change_t *unsaved;
    size_t nunsaved, capunsaved;
    size_t ncompacted;              /* nunsaved after the last compaction (none since the hand-over: 0) */
    uint64_t self_inc;              /* incarnation to save; 0: handed over */
    uint64_t members_unsaved;       /* changes lost: no memory, or too many members changed while a save was held */
    /* counters read by the metrics exporter */
    swim_stats_t swim_stats;
    repl_stats_t repl_stats;
    transport_stats_t tr_stats;
    size_t tr_bulk_pub;             /* transport_bulk_bytes when tr_stats was taken */
    size_t counts[4];               /* members by state, the uncertified left out */
    size_t uncert[4];               /* chartered: the uncertified, by state (gossip_member_t), in the snapshot */
    size_t snap_counts[4];          /* members by state in the snapshot (smu): counts' source */
    size_t uncert_pub;              /* their count when counts was made */
    int health;
    uint64_t catalog_dropped_pub;
    membersave_stats_t msave_stats; /* the saver's counters */
    uint64_t members_unsaved_pub;
    /* anti-entropy rides on probes (loop only): a round is due, waiting for the next probe */
    int ae_due;
    uint64_t fed_new_sync_ms;       /* when a member first in sight last started a federation-log round */
    int join_synced;                /* the catalog round at start is open (member_changed) */
    int join_retries;               /* ... asked again since, nothing of the catalog heard (loop only) */
    uint64_t join_sync_ms;          /* ... when it was last asked */
    uint64_t join_heard;            /* ... catalog messages heard then (join_heard_now) */
    char join_addr[SWIM_MAX_ADDR + 1]; /* ... of whom */
    int warm_due;                   /* a member came alive: open its priority connection (loop only) */
    uint64_t warm_next_ms;          /* ... handshakes under way: the next try no sooner */
    char gone[GOSSIP_GONE_MAX][TRANSPORT_ADDR_MAX];   /* addresses of members just gone, whose
                                                         connections close on the loop (loop only) */
    int ngone;
    uint64_t conns_closed_gone, conns_closed_gone_pub; /* connections closed so (or for one back) */
    /* certificates newly admitted from hellos, waiting to go into the federation log together (zap.c) */
    uint8_t *hcert[GOSSIP_HELLO_STORE_MAX];
    size_t hcert_len[GOSSIP_HELLO_STORE_MAX];
    int nhcert;
    uint64_t hcert_ms;              /* when the first of them was queued */
    uint64_t riders_malformed, riders_malformed_pub;   /* undecodable AntiEntropy riders */
    uint64_t hs_in, hs_out, hs_log_ms;   /* failed handshakes already logged; when */
    uint64_t claims_logged, claims_log_ms; /* refused address claims already logged; when */
    uint64_t twins_logged, twins_log_ms;   /* our key alive elsewhere (swim self_elsewhere): logged; when */
    /* a key rotation asked of the loop (gossip_rekey): under rkmu, done signalled on rkcv */
    pthread_mutex_t rkmu;
    pthread_cond_t rkcv;
    const identity_t *rk_id;
    const uint8_t *rk_cert;
    size_t rk_len;
    gossip_commit_fn rk_commit;
    void *rk_ctx;
    int rk_pending, rk_done, rk_rc;
    char rk_err[300];
    uint8_t *rk_hello;           /* the certificate presented since the last rotation (NULL: o.cert) */
    size_t rk_hello_len;
    repl_fork_t forks[REPL_FORKS_MAX];
    size_t nforks;
    /* chartered mode (zap.c): the trust store (NULL in open mode; locks itself), refusal counters
     * under tcmu, this node's certificate's expiry */
    trust_t *trust;
    int own_trust;               /* gossip made the store (and destroys it) */
    curvememo_t *curvememo;      /* members' CURVE keys for gossip__member_cert (loop only) */
    pthread_mutex_t tcmu;
    uint64_t trefused[TRUST_REFUSED_KINDS][TRUST_VERDICT_COUNT];
    log_limit_t trefused_log[TRUST_REFUSED_KINDS][TRUST_VERDICT_COUNT];   /* a line per kind and reason */
    int64_t own_not_after_ms, expiry_logged_ms;
    size_t revs_seen;            /* revocations held at the last check: more = members re-shown (loop only) */
    size_t certs_seen;           /* certificates held at the last check: another count = members re-shown */
    size_t rots_seen;            /* key hand-overs held at the last check: more = members re-shown */
    uint64_t charter_seen;       /* the charter version at the last check: another = members re-shown */
    int own_revoked_logged;      /* this node's own key was found revoked, and said so once (loop only) */
    uint64_t skewed_peers;       /* hellos whose sender's clock differed by more than TRUST_SKEW_MS (tcmu) */
    int64_t max_skew_ms;         /* the largest difference seen (tcmu) */
    log_limit_t skew_log;        /* a skewed peer clock */
    log_limit_t claim_log;       /* a peer's "refused your certificate" */
    size_t conflicts_logged;     /* open mode: conflicting domain claims already logged (loop only) */
    int64_t snap_redo_ms;        /* chartered: the first instant after the snapshot at which a trust verdict
                                    may change (trust_next_change; wall ms): from it the members are judged
                                    again (loop only; 0: none) */
    int64_t snap_judged_ms;      /* chartered: the wall time the snapshot was judged at; a clock seen
                                    below it stepped back, and the members are judged again (loop only) */
    log_limit_t step_log;        /* the wall clock stepped back */
    /* chartered: uncertified members (gossip_member_t) since when, each logged once when it stays
     * so (zap.c, gossip__uncertified_check; loop only) */
    gossip_unc_t unc[GOSSIP_UNCERT_TRACK];
    size_t nunc;
    uint64_t unc_logged_ms;
    /* chartered: the highest seq of an entry of our own domain refused as uncertified (worker
     * writes, loop reads): peers hold our log beyond it under a key we hold no certificate of yet,
     * so publishing must wait for that certificate even past OWN_SYNC_MS (intake.c) */
    _Atomic uint64_t own_uncertified_seq;
    int own_wait_logged;         /* the wait past OWN_SYNC_MS was logged (loop only) */
    /* chartered: this node's certificate continues an earlier key's serial (prev_serial) and it
     * started holding none of its domain's log: it takes over a domain whose log may exist, so it
     * never publishes before a peer has answered (own_deadline is UINT64_MAX until one has) and
     * never opens at once on a digest that knows nothing of the domain (intake.c) */
    int own_replaces;
    _Atomic uint64_t own_dismissed; /* uncertified claims outlived OWN_UNCERT_MS: publishing went on */
    /* chartered: keys of other domains' entries met before their certificate (certwait.h; NULL
     * in open mode) */
    struct certwait *certwait;
    log_limit_t swim_refused_log;        /* refused member claims: one line a second at most */
    /* the answer budget (answers.c): NULL when there is none (answer_rate 0) */
    struct budget *budget;
    const uint8_t *asker;        /* node key of the peer whose message the loop is handling (NULL: none) */
    /* members back in sight in the last REPL_ACTIVE_MS (returned.c; loop only): a ring */
    struct { uint8_t id[32]; uint64_t ms; } back[GOSSIP_BACK_SLOTS];
    size_t back_next;
    _Atomic uint64_t answers_refused[2], answer_bytes[2];   /* by kind: catalog, trust */
    _Atomic uint64_t answers_capped[2];   /* refused by the node's cap (answers.c), by kind */
    /* the seeds given at start, reached or not (seeds.c; loop only, but reached and warned: smu) */
    gossip_seed_t seeds[GOSSIP_SEEDS_MAX];
    size_t nseeds, seeds_unreached_n;
    uint64_t seeds_start_ms, seeds_warn_ms, seeds_rewarn_ms;
};

/* ---- zap.c: chartered admission (see zap.c for the threads and the connection rule) */
int gossip__zap_allow(void *ctx, const uint8_t curve_pk[32], int connect);    /* transport_allow_fn */
int gossip__hello(void *ctx, transport_hello_t *h);                           /* transport_hello_fn */
int gossip__rebind(void *ctx, const char *addr, const uint8_t held[32], const uint8_t claimed[32]); /* transport_rebind_fn */
int gossip__entry_ok(void *ctx, const Trib__CatalogEntry *e, const uint8_t signer[32],
                     const char *from);                                                   /* worker */
/* Chartered: judges the entries' keys held for their certificates (certwait.h). Loop only. */
void gossip__certwait_step(gossip_t *g, uint64_t now);
void gossip__member_cert(gossip_t *g, gossip_member_t *m);                    /* verified, serial, expiry */
void gossip__own_cert_check(gossip_t *g);                                     /* loop: expiry warning */
void gossip__retire_handed_over(gossip_t *g);   /* loop: members whose key a held hand-over retired */
void gossip__hello_store(gossip_t *g, int force);                              /* loop: queued hello certs */
void gossip__owners_untrusted(gossip_t *g);                                    /* loop: reads from them end */
void gossip__uncertified_check(gossip_t *g);                                   /* loop: members without one */
/* A routed read found only members not certified for the domain (gossip_member_t.uncertified):
 * counted in trib_trust_refused_total{kind="owner",reason=v}, line logged rate-limited. Any thread. */
void gossip__owner_refused(gossip_t *g, trust_verdict_t v, const char *line);
void gossip__trust_render(gossip_t *g, FILE *f);

/* ---- conns.c (loop thread) */
void gossip__warm_step(gossip_t *g, uint64_t now);        /* members alive: their priority connections */
void gossip__conns_member(gossip_t *g, const Trib__Member *m, int old_state);   /* SWIM's changed */
void gossip__conns_step(gossip_t *g);                     /* gone members' connections close */

/* ---- answers.c (loop thread, but the init, free and render) */
#define ANSWER_BURST_S 2         /* a peer's burst of answer bytes: this many seconds of its rate */
#define ANSWER_PEERS 1024        /* peers whose budget is remembered (the least recently used is forgotten) */
#define ANSWER_NODE_PEERS 4      /* the node's cap on answers to all peers together: this many peers' rate
                                    and burst (answers.c says why) */
enum { ANSWER_CATALOG, ANSWER_TRUST, ANSWER_KINDS };
/* Makes the budget (rate bytes/s; <= 0: none). 0, or -1 out of memory. */
int gossip__answers_init(gossip_t *g, double rate);
void gossip__answers_free(gossip_t *g);
int gossip__answer_ok_catalog(void *ctx, const char *addr);        /* repl_io_t.answer_ok */
int gossip__answer_ok_trust(void *ctx, const char *addr);          /* fedlog_io_t.answer_ok */
void gossip__answered_catalog(void *ctx, const char *addr, size_t bytes);
void gossip__answered_trust(void *ctx, const char *addr, size_t bytes);
void gossip__answer_asker(void *ctx, const uint8_t *key);         /* repl_io_t.asker: sets g->asker */
void gossip__answers_render(gossip_t *g, FILE *f);

/* ---- returned.c (loop thread): members back in sight, which missed the pushes meanwhile */
/* A member came alive from new, dead or left (member_changed): pushes of the last REPL_ACTIVE_MS
 * went on without it. */
void gossip__member_back(gossip_t *g, const uint8_t id[32]);
int gossip__asker_got_pushes(void *ctx, const char *addr);         /* repl_io_t.got_pushes */

/* ---- seeds.c (loop thread): which seeds were reached; a warning for those that were not */
/* A seed (given: as written; addr its HOST:PORT; pk, chartered, the node id it names, else NULL). */
void gossip__seeds_add(gossip_t *g, const char *given, const char *addr, const uint8_t *pk);
void gossip__seeds_member(gossip_t *g, const Trib__Member *m);     /* SWIM's changed: alive at a seed? */
void gossip__seeds_step(gossip_t *g, uint64_t now);                /* connections up; the warning */

/* ---- gossip.c */
/* Wakes the loop (any thread). */
void gossip__wake(gossip_t *g);
/* This node's CURVE key and certificate end as a key rotation (rekey_step, under rkmu) leaves them:
 * for any thread but the loop inside rekey_step. */
void gossip__own_key(gossip_t *g, uint8_t curve_pk[32], int64_t *not_after_ms);

/* ---- intake.c (loop thread, except gossip__worker, which is the worker thread) */
/* Queues a received catalog message for gossip__catalog_work; takes m (dropped, counted, when the
 * queue is full). */
void gossip__catalog_enqueue(gossip_t *g, transport_msg_t *m);
/* Handles queued catalog messages for a bounded time; 1 = more could be done now. */
int gossip__catalog_work(gossip_t *g);
/* Applies a finished worker job's outcomes (wait: until it finished). 1 when none is out any more. */
int gossip__job_reap(gossip_t *g, int wait);
/* When gossip__catalog_work has queued entry frames to start on (UINT64_MAX: none waiting). */
uint64_t gossip__catalog_deadline(const gossip_t *g);
/* Frees the queued catalog messages. */
void gossip__catalog_clear(gossip_t *g);
/* The catalog worker thread (arg: the gossip_t); runs until wstop is set under wmu. */
void *gossip__worker(void *arg);
/* Notes an entry of our own domain at seq refused as uncertified (the worker: gossip__entry_ok). */
void gossip__own_uncertified(gossip_t *g, uint64_t seq);
/* One step of own-domain sync: asks peers, and enables publishing once our head is current. */
void gossip__own_sync_step(gossip_t *g, uint64_t now);

#endif
