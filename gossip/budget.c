/* gossip/budget.c - per-peer answer budget and its cap over all peers (see gossip/budget.h).
 *
 * A token bucket per peer key in a fixed table of slots, looked up through an open-addressed index
 * (linear probing, twice the slots, rebuilt on eviction: evictions are rare next to look-ups), the
 * least recently used slot reused for a new key. The cap is one more slot of its own, outside the
 * table (never evicted), with its own rate and burst. */
#include "gossip/budget.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char key[BUDGET_KEY_MAX + 1];       /* "" : free */
    double tokens;                      /* bytes; below zero after an answer larger than what was left */
    uint64_t at_ms;                     /* tokens as of then */
    uint64_t used;                      /* LRU stamp */
    uint64_t logged_ms, unlogged;       /* the last refusal line; refusals since */
    int logged;
} slot_t;

struct budget {
    pthread_mutex_t mu;
    double rate, burst;                 /* bytes/s, bytes */
    double cap_rate, cap_burst;         /* the cap's; cap_rate 0: no cap */
    slot_t cap;                         /* its bucket and refusal line (key unused) */
    slot_t *slots;
    size_t nslots, used_slots;
    int32_t *index;                     /* slot + 1 per bucket, 0 empty; nindex = 2 x nslots, power of 2 */
    size_t nindex;
    uint64_t stamp;
};

static uint64_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull;                  /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (uint8_t)*k) * 1099511628211ull;
    return h;
}

budget_t *budget_new(double rate, double burst, size_t slots)
{
    if (!(rate > 0) || !(burst >= 1) || slots < 1 || slots > (1u << 24))
        return NULL;
    budget_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->rate = rate;
    b->burst = burst;
    b->nslots = slots;
    for (b->nindex = 2; b->nindex < 2 * slots; b->nindex *= 2)
        ;
    b->slots = calloc(slots, sizeof *b->slots);
    b->index = calloc(b->nindex, sizeof *b->index);
    if (!b->slots || !b->index || pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b->slots);
        free(b->index);
        free(b);
        return NULL;
    }
    return b;
}

void budget_destroy(budget_t **bp)
{
    if (!bp || !*bp)
        return;
    pthread_mutex_destroy(&(*bp)->mu);
    free((*bp)->slots);
    free((*bp)->index);
    free(*bp);
    *bp = NULL;
}

/* The index bucket of key: where it is, or the empty one where it would go. */
static size_t index_pos(const budget_t *b, const char *key)
{
    size_t mask = b->nindex - 1, i = (size_t)key_hash(key) & mask;
    while (b->index[i] && strcmp(b->slots[b->index[i] - 1].key, key) != 0)
        i = (i + 1) & mask;
    return i;
}

static void index_rebuild(budget_t *b)
{
    memset(b->index, 0, b->nindex * sizeof *b->index);
    for (size_t s = 0; s < b->nslots; s++)
        if (b->slots[s].key[0])
            b->index[index_pos(b, b->slots[s].key)] = (int32_t)(s + 1);
}

int budget_cap(budget_t *b, double rate, double burst)
{
    if (!(rate > 0) || !(burst >= 1))
        return -1;
    pthread_mutex_lock(&b->mu);
    b->cap_rate = rate;
    b->cap_burst = burst;
    b->cap = (slot_t){.tokens = burst};
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static void refill(double rate, double burst, slot_t *s, uint64_t now_ms)
{
    if (now_ms > s->at_ms) {
        s->tokens += rate * (double)(now_ms - s->at_ms) / 1000.0;
        if (s->tokens > burst)
            s->tokens = burst;
        s->at_ms = now_ms;
    }
}

/* The cap refilled to now_ms; NULL when there is none. */
static slot_t *cap_get(budget_t *b, uint64_t now_ms)
{
    if (!b->cap_rate)
        return NULL;
    refill(b->cap_rate, b->cap_burst, &b->cap, now_ms);
    return &b->cap;
}

/* s is spent: 0 (a refusal counted), or -1 when it is the first in log_ms (*unlogged: those since). */
static int refusal(slot_t *s, uint64_t now_ms, uint64_t log_ms, uint64_t *unlogged)
{
    if (s->logged && now_ms - s->logged_ms < log_ms) {
        s->unlogged++;
        return 0;
    }
    if (unlogged)
        *unlogged = s->unlogged;
    s->unlogged = 0;
    s->logged = 1;
    s->logged_ms = now_ms;
    return -1;
}

/* key's slot, refilled to now_ms; a new one (full, evicting the least recently used) when create. */
static slot_t *slot_get(budget_t *b, const char *key, uint64_t now_ms, int create)
{
    char k[BUDGET_KEY_MAX + 1];
    snprintf(k, sizeof k, "%s", key);
    size_t i = index_pos(b, k);
    slot_t *s = NULL;
    if (b->index[i])
        s = &b->slots[b->index[i] - 1];
    else if (!create)
        return NULL;
    else {
        if (b->used_slots < b->nslots)
            s = &b->slots[b->used_slots++];
        else {
            s = &b->slots[0];
            for (size_t j = 1; j < b->nslots; j++)
                if (b->slots[j].used < s->used)
                    s = &b->slots[j];
        }
        int evict = s->key[0] != 0;
        *s = (slot_t){.tokens = b->burst, .at_ms = now_ms};
        memcpy(s->key, k, sizeof k);
        if (evict)
            index_rebuild(b);
        else
            b->index[i] = (int32_t)(s - b->slots + 1);
    }
    if (create)
        s->used = ++b->stamp;
    refill(b->rate, b->burst, s, now_ms);
    return s;
}

int budget_ask(budget_t *b, const char *key, uint64_t now_ms, uint64_t log_ms, uint64_t *unlogged)
{
    pthread_mutex_lock(&b->mu);
    slot_t *s = slot_get(b, key, now_ms, 1), *cap = cap_get(b, now_ms);
    int rc = BUDGET_OK;
    if (s->tokens <= 0)
        rc = refusal(s, now_ms, log_ms, unlogged) ? BUDGET_OWN_LOG : BUDGET_OWN;
    else if (cap && cap->tokens <= 0)
        rc = refusal(cap, now_ms, log_ms, unlogged) ? BUDGET_CAP_LOG : BUDGET_CAP;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void budget_take(budget_t *b, const char *key, size_t bytes, uint64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    slot_t *s = slot_get(b, key, now_ms, 1), *cap = cap_get(b, now_ms);
    s->tokens -= (double)bytes;
    if (cap)
        cap->tokens -= (double)bytes;
    pthread_mutex_unlock(&b->mu);
}

double budget_left(budget_t *b, const char *key, uint64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    double left;
    if (!key) {
        slot_t *cap = cap_get(b, now_ms);
        left = cap ? cap->tokens : 0;
    } else {
        slot_t *s = slot_get(b, key, now_ms, 0);
        left = s ? s->tokens : b->burst;
    }
    pthread_mutex_unlock(&b->mu);
    return left;
}

size_t budget_peers(budget_t *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->used_slots;
    pthread_mutex_unlock(&b->mu);
    return n;
}
