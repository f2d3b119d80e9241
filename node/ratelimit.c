/* node/ratelimit.c - token buckets by client address (see node/ratelimit.h). */
#include "node/ratelimit.h"

#include <stdio.h>
#include <string.h>

#define PROBE 8                     /* slots looked at for a key */

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int ratelimit_take(ratelimit_t *r, const char *key, uint64_t now_ms)
{
    char k[RATELIMIT_KEY];
    snprintf(k, sizeof k, "%s", key ? key : "");
    uint32_t h = key_hash(k);
    pthread_mutex_lock(&r->mu);
    ratelimit_slot_t *s = NULL, *victim = NULL;
    for (int i = 0; i < PROBE && !s; i++) {
        ratelimit_slot_t *c = &r->slot[(h + (uint32_t)i) % RATELIMIT_SLOTS];
        if (c->last_ms && !strcmp(c->key, k))
            s = c;
        else if (!victim || (victim->last_ms && (!c->last_ms || c->last_ms < victim->last_ms)))
            victim = c;             /* the first free slot, else the least recently used */
    }
    if (!s) {                       /* a new key: a full bucket */
        s = victim;
        memcpy(s->key, k, sizeof k);
        s->tokens = r->burst;
        s->last_ms = now_ms ? now_ms : 1;
    }
    if (now_ms > s->last_ms) {
        s->tokens += (double)(now_ms - s->last_ms) * r->rate / 1000.0;
        if (s->tokens > r->burst)
            s->tokens = r->burst;
        s->last_ms = now_ms;
    }
    int ok = s->tokens >= 1.0;
    if (ok)
        s->tokens -= 1.0;
    pthread_mutex_unlock(&r->mu);
    return ok;
}
