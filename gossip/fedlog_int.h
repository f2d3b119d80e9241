/* gossip/fedlog_int.h - what the parts of the federation log share; included by gossip/fedlog.c
 * and gossip/fedlog_commit.c only.
 *
 *   fedlog.c         offers (verifying by kind), the held set and its summary, settling committed
 *                    objects into it, the push queue, anti-entropy, the views and the lifecycle.
 *   fedlog_commit.c  durability: the pending set (verified, not stored yet), commit
 *                    jobs and the worker thread that makes every job queued durable in one LMDB
 *                    commit, off the loop (fedlog.h, Durability), and fedlog_flush.
 *
 * Everything here is guarded by f->mu unless a comment says otherwise.
 * Must not: be included outside those two files; declare anything one of them could keep static. */
#ifndef TRIB_FEDLOG_INT_H
#define TRIB_FEDLOG_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/fedlog.h"
#include "gossip/log.h"
#include "storage/fedlog.h"

#define REFUSED_RING 256          /* hashes refused lately: not asked for again in a round */
#define PENDING_BUCKETS 1024

enum { STEP_SUMMARY = 1, STEP_BUCKETS, STEP_HASHES, STEP_WANT, STEP_OBJECTS, STEP_COUNT };

typedef struct {
    uint8_t hash[TRUST_HASH_LEN];
    uint8_t kind;
} held_t;

/* An operator's offer made on another thread, handed to the loop (which owns the trust store). */
typedef struct req {
    struct req *next;
    fedlog_result_t r;
    int ok, done, abandoned;   /* abandoned: the caller stopped waiting; the loop frees it */
    size_t n;
    uint8_t data[];
} req_t;

/* A verified new object waiting for its durable commit (pending: not in the held set yet). */
typedef struct citem {
    struct citem *pnext;          /* the pending chain of its bucket */
    store_fedlog_item_t st;       /* hash, kind, bytes (a copy, owned), len */
    fedlog_result_t *r;           /* the result a failed commit changes (a waiting caller's), or NULL */
    int *ok;
} citem_t;

/* One offer's new objects, committed together (with every job queued at the time). */
typedef struct cjob {
    struct cjob *next;
    char from[64];
    int from_op;                  /* an operator's (from NULL) */
    int push_durable;             /* push the items on once they are stored (an operator's) */
    req_t *q;                     /* the operator waiting for this commit, or NULL */
    size_t n;
    citem_t items[];
} cjob_t;

typedef struct push {
    struct push *next;
    char from[64];                /* not pushed back to its sender */
    size_t len;
    uint8_t data[];
} push_t;

struct fedlog {
    pthread_mutex_t mu;
    store_t *st;
    trust_t *t;
    fedlog_policy_fn policy;
    void *policy_ctx;
    held_t *held;                 /* sorted by hash */
    size_t n, cap;
    uint64_t bytes;
    size_t nkind[FEDLOG_KINDS];
    uint8_t xor_all[TRUST_HASH_LEN];
    uint32_t bcount[256];
    uint8_t bxor[256][TRUST_HASH_LEN];
    uint8_t chain[FEDLOG_MAX_CHARTERS][TRUST_HASH_LEN];   /* prev_hash of every charter held */
    size_t nchain;
    uint8_t refused[REFUSED_RING][TRUST_HASH_LEN];
    size_t nrefused, refused_at;
    push_t *qhead, *qtail;
    size_t qlen;
    req_t *rhead, *rtail;      /* operators' offers waiting for the loop */
    pthread_cond_t rcv;
    /* fedlog_commit.c's */
    citem_t *pending[PENDING_BUCKETS];   /* verified, not durable yet (a peer's in force), by hash */
    size_t npending;
    uint64_t pending_bytes;
    cjob_t *jhead, *jtail;     /* jobs for the commit worker */
    pthread_t worker;
    pthread_cond_t wcv;        /* the worker: work queued; its waiters: work done */
    int async;                 /* commits run on the worker (attached to a loop with own_thread) */
    int wstarted, wstop, wbusy;
    uint64_t commits, commit_objects;
    /* fedlog.c's */
    fedlog_io_t io;
    int attached;
    uint64_t accepted[FEDLOG_KINDS];
    uint64_t refusals[FEDLOG_KINDS][FEDLOG_R_COUNT];
    uint64_t pushed, push_dropped, bad_msgs;
    uint64_t sync_in[STEP_COUNT], sync_out[STEP_COUNT];
    log_limit_t refuse_log[FEDLOG_R_COUNT];   /* a line per reason a second at most */
    log_limit_t store_log;       /* failed commits (a full or failing disk): a line a second at most */
};

/* ---- fedlog_commit.c */
/* The pending object with this body hash, or NULL. Under the lock. */
citem_t *fedlog__pending_find(const fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN]);
/* Makes c (an item of a job not committed yet) pending. Under the lock. */
void fedlog__pending_add(fedlog_t *f, citem_t *c);
/* Commits job j (may be NULL: 0): queued for the worker (1) when commits run there, q (may be
 * NULL) told when it is done; else run here (0: the caller's results are final). Not under the
 * lock. */
int fedlog__commit_or_queue(fedlog_t *f, cjob_t *j, req_t *q);
/* Starts the worker when it does not run (commits go to it from then on, f->async), or leaves
 * commits on the caller when it cannot start. Under the lock. */
void fedlog__worker_start(fedlog_t *f);
/* Stops the worker after it committed everything queued; commits run on the caller from then on.
 * Not under the lock. */
void fedlog__worker_stop(fedlog_t *f);

/* ---- fedlog.c */
/* Settles item c of a job from `from` (NULL: an operator) once its commit is done, under the
 * lock (c is no longer pending): stored when why is 0 (added to the held set, counted, logged,
 * and when push, queued for a push to every alive member), else refused with reason why and text
 * err (counted, logged, its caller's result changed). 1 when it queued a push (the loop sends it:
 * wake it), else 0. */
int fedlog__settle(fedlog_t *f, const char *from, citem_t *c, int push, int why, const char *err);
/* Tells the operator waiting on q that its offer is done (q freed when it stopped waiting).
 * Under the lock. */
void fedlog__req_done(fedlog_t *f, req_t *q);

#endif
