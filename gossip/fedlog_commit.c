/* gossip/fedlog_commit.c - the federation log's durability (see gossip/fedlog.h, Durability, and
 * gossip/fedlog_int.h).
 *
 * Owns: the pending set (objects verified, not stored yet: a peer's in force, an operator's not
 * before its commit; held as far as offers go, not in the held set), commit jobs (one offer's new
 * objects each), the worker thread that takes every job queued and makes them durable in one
 * LMDB commit (then the policy hook told of each policy set stored: it writes the set's files),
 * and fedlog_flush. What a commit means for the held set, the
 * counters and a waiting operator is fedlog.c's (fedlog__settle, fedlog__req_done).
 * Must not: verify objects, send, or commit (fsync) on the gossip loop when attached with
 * own_thread. */
#include "gossip/fedlog_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/log.h"

/* ---------------------------------------------------------------- the pending set */

static size_t pending_bucket(const uint8_t hash[TRUST_HASH_LEN])
{
    return ((size_t)hash[1] << 8 | hash[2]) % PENDING_BUCKETS;   /* hash[0] is the sync bucket */
}

citem_t *fedlog__pending_find(const fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    for (citem_t *c = f->pending[pending_bucket(hash)]; c; c = c->pnext)
        if (!memcmp(c->st.hash, hash, TRUST_HASH_LEN))
            return c;
    return NULL;
}

void fedlog__pending_add(fedlog_t *f, citem_t *c)
{
    citem_t **head = &f->pending[pending_bucket(c->st.hash)];
    c->pnext = *head;
    *head = c;
    f->npending++;
    f->pending_bytes += c->st.len;
}

static void pending_remove(fedlog_t *f, citem_t *c)
{
    for (citem_t **p = &f->pending[pending_bucket(c->st.hash)]; *p; p = &(*p)->pnext)
        if (*p == c) {
            *p = c->pnext;
            f->npending--;
            f->pending_bytes -= c->st.len;
            return;
        }
}

/* ---------------------------------------------------------------- commits */

/* Tells the policy hook of each policy set it let through that its commit is done (fedlog.h):
 * before the settling, so an operator is answered once its set is in force. On the committing
 * thread, no lock held. */
static void policy_after_commit(cjob_t *jobs, const int *why, fedlog_policy_fn policy, void *pctx)
{
    char ignored[200];
    size_t i = 0;
    for (cjob_t *j = jobs; j; j = j->next)
        for (size_t k = 0; k < j->n; k++, i++) {
            const citem_t *c = &j->items[k];
            if (policy && why && c->st.kind == TRUST_KIND_POLICY && !why[i])
                policy(pctx, c->st.bytes, c->st.len, FEDLOG_POLICY_STORED, ignored, sizeof ignored);
        }
}

/* Not under the lock: makes the jobs' objects durable, all in one commit (then the policy hook is
 * told of each policy set stored: it puts it in force and writes its files; after a failed commit
 * it is told nothing: an operator's was never in force, a peer's stays so until restart), then, under the lock,
 * settles them (fedlog__settle: what the summary and anti-entropy offer is always stored, and an
 * operator's object is put in force and pushed on only now) and tells a waiting operator. A failed
 * commit refuses the objects (counted, reason storage or no_space): an operator's was never in
 * force; a peer's stays in force in memory until restart (the federation holds it: a revocation
 * is not lifted by a full disk here) and anti-entropy brings it again, its commit tried again.
 * Frees the jobs. */
static void commit_jobs(fedlog_t *f, cjob_t *jobs)
{
    size_t total = 0, nst = 0;
    for (cjob_t *j = jobs; j; j = j->next)
        total += j->n;
    pthread_mutex_lock(&f->mu);
    fedlog_policy_fn policy = f->policy;
    void *pctx = f->policy_ctx;
    pthread_mutex_unlock(&f->mu);
    store_fedlog_item_t *st = malloc((total ? total : 1) * sizeof *st);
    int *why = calloc(total ? total : 1, sizeof *why);   /* 0, or the reason it is refused */
    char (*errs)[200] = calloc(total ? total : 1, sizeof *errs);
    int mem = st && why && errs;
    size_t i = 0;
    for (cjob_t *j = jobs; j; j = j->next)
        for (size_t k = 0; k < j->n; k++, i++) {
            citem_t *c = &j->items[k];
            if (!mem)
                continue;
            int step = j->from_op ? FEDLOG_POLICY_OPERATOR : FEDLOG_POLICY_PEER;
            if (c->st.kind == TRUST_KIND_POLICY &&
                (!policy || policy(pctx, c->st.bytes, c->st.len, step, errs[i], sizeof errs[i]) != 0)) {
                why[i] = FEDLOG_R_POLICY;
                continue;
            }
            st[nst++] = c->st;
        }
    int stored = mem && (nst == 0 || store_fedlog_put(f->st, st, nst, NULL) == 0);
    int full = !stored && mem && store_last_errno() == ENOSPC;   /* this thread's */
    char serr[sizeof ((fedlog_result_t *)0)->err] = "", oerr[sizeof serr] = "";
    if (!stored) {
        const char *cause = mem ? store_last_error() : "out of memory";
        uint64_t held;
        char tail[96];
        if (log_limit(&f->store_log, 1000, &held))   /* peers offer again and again on a full disk */
            log_error("fedlog: storing %zu object(s) failed: %s (an operator's object is refused and not in force; "
                      "a peer's stays in force here until restart, and anti-entropy brings it again)%s", nst, cause,
                      log_held(tail, sizeof tail, held, "failed commits"));
        snprintf(serr, sizeof serr, "storing failed: %s", cause);
        snprintf(oerr, sizeof oerr, "storing failed: %s; not in force on this node: retry once the store can be "
                 "written", cause);
    }
    if (stored)   /* none went to the hook without mem */
        policy_after_commit(jobs, mem ? why : NULL, policy, pctx);
    pthread_mutex_lock(&f->mu);
    int pushes = 0;
    i = 0;
    for (cjob_t *j = jobs; j; j = j->next) {
        const char *from = j->from_op ? NULL : j->from;
        for (size_t k = 0; k < j->n; k++, i++) {
            citem_t *c = &j->items[k];
            pending_remove(f, c);
            int reason = !stored ? (full ? FEDLOG_R_NO_SPACE : FEDLOG_R_STORAGE) : why[i];
            pushes += fedlog__settle(f, from, c, j->push_durable, reason,
                                     !stored ? (j->from_op ? oerr : serr) : reason ? errs[i] : "");
        }
        if (j->q)
            fedlog__req_done(f, j->q);
    }
    f->commits += nst > 0 && stored;
    fedlog_io_t io = f->io;
    int wake = pushes && f->attached && io.wake;
    pthread_mutex_unlock(&f->mu);
    if (wake)                     /* the loop sends what was stored just now (fedlog_tick) */
        io.wake(io.ctx);
    while (jobs) {
        cjob_t *next = jobs->next;
        for (size_t k = 0; k < jobs->n; k++)
            free((void *)jobs->items[k].st.bytes);
        free(jobs);
        jobs = next;
    }
    free(st);
    free(why);
    free(errs);
}

int fedlog__commit_or_queue(fedlog_t *f, cjob_t *j, req_t *q)
{
    if (!j)
        return 0;
    pthread_mutex_lock(&f->mu);
    if (!f->async) {
        pthread_mutex_unlock(&f->mu);
        commit_jobs(f, j);
        return 0;
    }
    for (size_t k = 0; k < j->n; k++) {   /* the caller does not wait: results go to q or nowhere */
        j->items[k].r = q ? &q->r : NULL;
        j->items[k].ok = q ? &q->ok : NULL;
    }
    j->q = q;
    if (f->jtail)
        f->jtail->next = j;
    else
        f->jhead = j;
    f->jtail = j;
    pthread_cond_broadcast(&f->wcv);
    pthread_mutex_unlock(&f->mu);
    return 1;
}

/* ---------------------------------------------------------------- the worker */

/* Takes every job queued and commits them together, so a burst costs one fsync per round however
 * many objects it brings. Drains the queue before it stops. */
static void *commit_worker(void *arg)
{
    fedlog_t *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->jhead && !f->wstop)
            pthread_cond_wait(&f->wcv, &f->mu);
        if (!f->jhead)
            break;
        cjob_t *jobs = f->jhead;
        f->jhead = f->jtail = NULL;
        f->wbusy = 1;
        pthread_mutex_unlock(&f->mu);
        commit_jobs(f, jobs);
        pthread_mutex_lock(&f->mu);
        f->wbusy = 0;
        pthread_cond_broadcast(&f->wcv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

void fedlog__worker_start(fedlog_t *f)
{
    if (!f->wstarted && pthread_create(&f->worker, NULL, commit_worker, f) == 0)
        f->wstarted = 1;        /* else commits stay on the loop */
    f->async = f->wstarted;
}

void fedlog__worker_stop(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    int started = f->wstarted;
    f->async = 0;
    f->wstop = 1;
    pthread_cond_broadcast(&f->wcv);
    pthread_mutex_unlock(&f->mu);
    if (started)
        pthread_join(f->worker, NULL);
    pthread_mutex_lock(&f->mu);
    f->wstarted = f->wstop = 0;
    pthread_mutex_unlock(&f->mu);
}

void fedlog_flush(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->jhead || f->wbusy)
        pthread_cond_wait(&f->wcv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}
