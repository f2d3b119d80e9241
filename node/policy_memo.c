/* node/policy_memo.c - remembered regex verdicts of a policy set (node/policy_memo.h).
 *
 * Owns: an open-addressing table of (regex slot, string) -> matched, its lock and counters.
 * Must not: hold the lock while matching, or remember a string it cannot store whole. */
#include "node/policy_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t hash;           /* 0: empty */
    uint16_t slot;
    uint8_t len, match;
    char s[POLICY_MEMO_STR];
} entry_t;

struct policy_memo {
    pthread_mutex_t mu;
    size_t held;
    uint64_t hits, misses, emptied;
    entry_t e[POLICY_MEMO_ENTRIES];
};

policy_memo_t *policy_memo_new(void)
{
    policy_memo_t *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        m = NULL;
    }
    return m;
}

void policy_memo_destroy(policy_memo_t **mp)
{
    if (!mp || !*mp)
        return;
    pthread_mutex_destroy(&(*mp)->mu);
    free(*mp);
    *mp = NULL;
}

static uint32_t hash_of(unsigned slot, const char *s, size_t len)
{
    uint32_t h = 2166136261u ^ slot;   /* FNV-1a over the slot and the bytes */
    h *= 16777619u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ? h : 1;
}

/* The entry of (slot, s), or the empty one where it would go. Under mu. */
static entry_t *find_locked(policy_memo_t *m, uint32_t h, unsigned slot, const char *s, size_t len)
{
    for (size_t i = h & (POLICY_MEMO_ENTRIES - 1);; i = (i + 1) & (POLICY_MEMO_ENTRIES - 1)) {
        entry_t *e = &m->e[i];
        if (e->hash == 0 || (e->hash == h && e->slot == slot && e->len == len && memcmp(e->s, s, len) == 0))
            return e;
    }
}

int policy_memo_match(policy_memo_t *m, unsigned slot, const regex_t *re, const char *s)
{
    size_t len = strlen(s);
    if (!m || len > POLICY_MEMO_STR || slot > UINT16_MAX)
        return regexec(re, s, 0, NULL, 0) == 0;
    uint32_t h = hash_of(slot, s, len);
    pthread_mutex_lock(&m->mu);
    entry_t *e = find_locked(m, h, slot, s, len);
    if (e->hash != 0) {
        int match = e->match;
        m->hits++;
        pthread_mutex_unlock(&m->mu);
        return match;
    }
    m->misses++;
    pthread_mutex_unlock(&m->mu);
    int match = regexec(re, s, 0, NULL, 0) == 0;
    pthread_mutex_lock(&m->mu);
    if (m->held >= POLICY_MEMO_ENTRIES * 3 / 4) {   /* full: start again (the table stays short to probe) */
        memset(m->e, 0, sizeof m->e);
        m->held = 0;
        m->emptied++;
    }
    e = find_locked(m, h, slot, s, len);
    if (e->hash == 0) {   /* another thread may have put it meanwhile */
        e->hash = h;
        e->slot = (uint16_t)slot;
        e->len = (uint8_t)len;
        e->match = (uint8_t)match;
        memcpy(e->s, s, len);
        m->held++;
    }
    pthread_mutex_unlock(&m->mu);
    return match;
}

void policy_memo_stats(policy_memo_t *m, uint64_t *hits, uint64_t *misses, size_t *held, uint64_t *emptied)
{
    pthread_mutex_lock(&m->mu);
    *hits = m->hits;
    *misses = m->misses;
    *held = m->held;
    *emptied = m->emptied;
    pthread_mutex_unlock(&m->mu);
}
