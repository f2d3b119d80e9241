/* node/ratelimit.c - token buckets for anonymous endpoints (see node/ratelimit.h).
 *
 * Owns: the client's key (IPv4 address, IPv6 /64), the fixed table of client buckets and the
 * global bucket. Must not: log, count, or allocate. */
#include "node/ratelimit.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define PROBE 8                     /* slots looked at for a key */

const char *ratelimit_key(const char *addr, char key[RATELIMIT_KEY])
{
    snprintf(key, RATELIMIT_KEY, "%s", addr ? addr : "");
    char a[INET6_ADDRSTRLEN];
    size_t n = strcspn(key, "%");   /* a zone: fe80::1%eth0 */
    if (n >= sizeof a)
        return key;
    memcpy(a, key, n);
    a[n] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, a, &v4) == 1) {
        inet_ntop(AF_INET, &v4, key, RATELIMIT_KEY);   /* as it is (a zone dropped) */
        return key;
    }
    if (inet_pton(AF_INET6, a, &v6) != 1)
        return key;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        memcpy(&v4, &v6.s6_addr[12], sizeof v4);
        inet_ntop(AF_INET, &v4, key, RATELIMIT_KEY);
        return key;
    }
    memset(&v6.s6_addr[8], 0, 8);   /* the interface identifier: the host's to choose */
    if (inet_ntop(AF_INET6, &v6, key, RATELIMIT_KEY - 3))
        strcat(key, "/64");         /* at most "ffff:ffff:ffff:ffff::" before it */
    return key;
}

/* Refills b at now_ms (rate per second, up to burst); its tokens then. */
static double refill(ratelimit_bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    if (!b->last_ms) {
        b->tokens = burst;
        b->last_ms = now_ms ? now_ms : 1;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    return b->tokens;
}

/* How long until a bucket with tokens (< 1) at rate holds one: ms, at least 1. */
static uint64_t wait_ms(double tokens, double rate)
{
    double ms = rate > 0 ? ceil((1.0 - tokens) * 1000.0 / rate) : 3600e3;
    return ms < 1 ? 1 : (uint64_t)ms;
}

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of key k (a full bucket when new). Under the lock. */
static ratelimit_slot_t *slot_of(ratelimit_t *r, const char *k)
{
    uint32_t h = key_hash(k);
    ratelimit_slot_t *victim = NULL;
    for (int i = 0; i < PROBE; i++) {
        ratelimit_slot_t *c = &r->slot[(h + (uint32_t)i) % RATELIMIT_SLOTS];
        if (c->b.last_ms && !strcmp(c->key, k))
            return c;
        if (!victim || (victim->b.last_ms && (!c->b.last_ms || c->b.last_ms < victim->b.last_ms)))
            victim = c;             /* the first free slot, else the least recently used */
    }
    snprintf(victim->key, sizeof victim->key, "%s", k);
    victim->b.last_ms = 0;          /* refill makes it full */
    return victim;
}

static int take(ratelimit_t *r, const char *client, uint64_t now_ms, uint64_t *retry_ms, bool global)
{
    char k[RATELIMIT_KEY];
    ratelimit_key(client, k);
    pthread_mutex_lock(&r->mu);
    ratelimit_slot_t *s = slot_of(r, k);
    global = global && r->all_rate > 0;
    double mine = refill(&s->b, r->rate, r->burst, now_ms);
    double all = global ? refill(&r->all, r->all_rate, r->all_burst, now_ms) : 1.0;
    int rc = mine < 1.0 ? RATELIMIT_CLIENT : all < 1.0 ? RATELIMIT_ALL : RATELIMIT_OK;
    if (rc == RATELIMIT_OK) {
        s->b.tokens -= 1.0;
        if (global)
            r->all.tokens -= 1.0;
    } else if (retry_ms) {
        *retry_ms = rc == RATELIMIT_CLIENT ? wait_ms(mine, r->rate) : wait_ms(all, r->all_rate);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int ratelimit_take(ratelimit_t *r, const char *client, uint64_t now_ms, uint64_t *retry_ms)
{
    return take(r, client, now_ms, retry_ms, true);
}

int ratelimit_take_own(ratelimit_t *r, const char *client, uint64_t now_ms, uint64_t *retry_ms)
{
    return take(r, client, now_ms, retry_ms, false);
}
