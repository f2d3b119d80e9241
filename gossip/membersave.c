/* gossip/membersave.c - the member saver: writes the gossip loop's member changes and this node's
 * incarnation to the store on a thread of its own, so the loop, which answers probes, never waits
 * for LMDB's write lock (held by a group commit of publishes or a replication batch) or an fsync.
 *
 * One batch at a time: the loop offers a batch, the saver takes it only when it has saved the one
 * before, and saves it in one write transaction (the incarnation in a second one). While it saves,
 * the loop keeps collecting (gossip.c, unsaved_add) and offers everything collected meanwhile as the
 * next batch, so a later change of a member always commits after an earlier one.
 *
 * Owns: the thread, the batch handed over, the save counters, rate-limited logging of failed saves,
 * compacting a backlog to each member's newest change.
 * Must not: decide when a batch is offered or decode members (gossip.c does), or ever block an
 * offer without wait. */
#include "gossip/membersave.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/clock.h"
#include "gossip/log.h"

#define LOG_GAP_MS 1000          /* one line about failed saves a second at most */

struct membersave {
    store_t *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    store_member_change_t *ch;   /* the batch handed over */
    size_t n;
    uint64_t inc;
    int full;                    /* a batch is handed over and not saved yet */
    int stop;
    membersave_stats_t stats;
    log_limit_t fail_log;        /* failed saves (the saver thread) */
};

/* A failed save: a line now, or counted into the next one. */
static void log_failure(membersave_t *s, const char *what)
{
    uint64_t held;
    char tail[96];
    if (log_limit(&s->fail_log, LOG_GAP_MS, &held))
        log_warn("gossip: saving %s failed: %s%s", what, store_last_error(),
                 log_held(tail, sizeof tail, held, "failed saves"));
}

/* Not under mu: saves and frees one batch. */
static void save(membersave_t *s, store_member_change_t *ch, size_t n, uint64_t inc)
{
    uint64_t t0 = clock_ms();
    int ok = 0, failed = 0;
    if (n) {
        char what[64];
        snprintf(what, sizeof what, "%zu member change(s)", n);
        if (store_members_save(s->st, ch, n) == 0) {
            ok++;
        } else {
            failed++;
            log_failure(s, what);
        }
    }
    for (size_t i = 0; i < n; i++)
        free((void *)ch[i].member);
    free(ch);
    if (inc) {
        char v[24];
        int len = snprintf(v, sizeof v, "%" PRIu64, inc);
        if (store_meta_put(s->st, "incarnation", v, (size_t)len) == 0) {
            ok++;
        } else {
            failed++;
            log_failure(s, "this node's incarnation");
        }
    }
    uint64_t took = clock_ms() - t0;
    pthread_mutex_lock(&s->mu);
    s->stats.ok += (uint64_t)ok;
    s->stats.failed += (uint64_t)failed;
    if (took > s->stats.longest_ms)
        s->stats.longest_ms = took;
    pthread_mutex_unlock(&s->mu);
}

/* Saves each batch handed over; the last one before it stops too. */
static void *run(void *arg)
{
    membersave_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->full && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->full)
            break;
        store_member_change_t *ch = s->ch;
        size_t n = s->n;
        uint64_t inc = s->inc;
        pthread_mutex_unlock(&s->mu);
        save(s, ch, n, inc);
        pthread_mutex_lock(&s->mu);
        s->ch = NULL;
        s->n = 0;
        s->inc = 0;
        s->full = 0;
        pthread_cond_broadcast(&s->cv);   /* an offer with wait */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int by_id_then_order(const void *a, const void *b, void *ctx)
{
    const store_member_change_t *ch = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = memcmp(ch[x].id, ch[y].id, STORE_KEY_LEN);
    return c ? c : x < y ? -1 : x > y;
}

size_t membersave_compact(store_member_change_t *ch, size_t n)
{
    size_t *ix = n > 1 ? malloc(n * sizeof *ix) : NULL;
    if (!ix)
        return n;
    for (size_t i = 0; i < n; i++)
        ix[i] = i;
    qsort_r(ix, n, sizeof *ix, by_id_then_order, ch);
    for (size_t i = 0; i + 1 < n; i++)
        if (!memcmp(ch[ix[i]].id, ch[ix[i + 1]].id, STORE_KEY_LEN)) {   /* a newer one follows */
            free((void *)ch[ix[i]].member);
            ch[ix[i]].member = NULL;
            ch[ix[i]].len = SIZE_MAX;                                     /* dropped below */
        }
    free(ix);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (ch[i].len != SIZE_MAX)
            ch[kept++] = ch[i];
    return kept;
}

membersave_t *membersave_new(store_t *st)
{
    membersave_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->st = st;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    return s;
}

int membersave_offer(membersave_t *s, store_member_change_t *ch, size_t n, uint64_t inc, int wait)
{
    pthread_mutex_lock(&s->mu);
    while (wait && s->full)
        pthread_cond_wait(&s->cv, &s->mu);
    int taken = !s->full;
    if (taken) {
        s->ch = ch;
        s->n = n;
        s->inc = inc;
        s->full = 1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return taken;
}

void membersave_stats(membersave_t *s, membersave_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

void membersave_destroy(membersave_t **sp)
{
    if (!sp || !*sp)
        return;
    membersave_t *s = *sp;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    *sp = NULL;
}
