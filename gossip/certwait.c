/* gossip/certwait.c - chartered: catalog entries met before their signer's certificate (certwait.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/certwait.h"

enum { FREE = 0, HELD, REFUSED };

typedef struct {
    uint8_t key[32];
    char domain[64];
    char addr[128];              /* the last peer that sent one of its entries */
    char first[128];             /* the peer whose entry took the slot: charged for it while held */
    uint64_t since, until;       /* held since; refused: refused at once until */
    uint64_t entries;            /* held: entries met, not counted yet */
    int state, asked;            /* asked: the first sender's federation log was asked */
} slot_t;

struct certwait {
    pthread_mutex_t mu;
    slot_t s[CERTWAIT_KEYS];
    uint64_t next;               /* loop: the next step */
    certwait_stats_t st;
};

certwait_t *certwait_new(void)
{
    certwait_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->next = UINT64_MAX;
    return c;
}

void certwait_free(certwait_t **cp)
{
    if (!cp || !*cp)
        return;
    pthread_mutex_destroy(&(*cp)->mu);
    free(*cp);
    *cp = NULL;
}

int certwait_hold(certwait_t *c, const uint8_t key[32], const char *domain, const char *addr, uint64_t now)
{
    if (!c || strlen(domain) >= sizeof c->s[0].domain || strlen(addr) >= sizeof c->s[0].addr)
        return 0;
    int held = 0, mine = 0;
    slot_t *hit = NULL, *room = NULL, *oldest = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < CERTWAIT_KEYS && !hit; i++) {
        slot_t *s = &c->s[i];
        if (s->state == REFUSED && now >= s->until)
            s->state = FREE;
        if (s->state == FREE)
            room = room ? room : s;
        else if (!memcmp(s->key, key, sizeof s->key) && !strcmp(s->domain, domain))
            hit = s;
        else if (s->state == REFUSED && (!oldest || s->until < oldest->until))
            oldest = s;
        else if (s->state == HELD && !strcmp(s->first, addr))
            mine++;
    }
    if (!hit && !room)
        room = oldest;           /* a refused key is forgotten early rather than a new one refused unheard */
    if (!hit && mine >= CERTWAIT_PER_SENDER) {   /* one peer may not fill the table: others keep room */
        c->st.per_sender++;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    if (hit && hit->state == HELD) {
        hit->entries++;          /* the last sender is asked for the domain once certified; the first one's
                                    log was asked (any peer that forwards entries verified their key) */
        snprintf(hit->addr, sizeof hit->addr, "%s", addr);
        held = 1;
    } else if (!hit && room) {
        *room = (slot_t){.since = now, .entries = 1, .state = HELD};
        memcpy(room->key, key, sizeof room->key);
        snprintf(room->domain, sizeof room->domain, "%s", domain);
        snprintf(room->addr, sizeof room->addr, "%s", addr);
        snprintf(room->first, sizeof room->first, "%s", addr);
        held = 1;
    } else if (!hit)
        c->st.full++;
    if (held && !hit && c->next > now)
        c->next = now;           /* a new key: its sender's log is asked at the loop's next turn */
    pthread_mutex_unlock(&c->mu);
    return held;
}

/* What step does with one slot, done after the lock is let go. */
typedef struct {
    int what;                    /* 1 sync, 2 ask, 3 refuse */
    trust_verdict_t v;
    uint64_t n;
    uint8_t key[32];
    char domain[64], addr[128], why[300];
} act_t;

void certwait_step(certwait_t *c, const certwait_io_t *io, uint64_t now)
{
    if (!c)
        return;
    act_t *acts = NULL;
    size_t na = 0;
    pthread_mutex_lock(&c->mu);
    if (now < c->next) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->next = UINT64_MAX;
    uint64_t keys = 0, entries = 0;
    int oom = 0;
    for (size_t i = 0; i < CERTWAIT_KEYS; i++) {
        slot_t *s = &c->s[i];
        if (s->state == REFUSED && now >= s->until)
            s->state = FREE;
        if (s->state != HELD)
            continue;
        if (!acts && !(acts = calloc(CERTWAIT_KEYS, sizeof *acts))) {
            oom = 1;             /* the next step tries again */
            break;
        }
        act_t *a = &acts[na];
        *a = (act_t){0};
        a->v = io->judge(io->ctx, s->domain, s->key, a->why, sizeof a->why);
        memcpy(a->key, s->key, sizeof a->key);
        snprintf(a->domain, sizeof a->domain, "%s", s->domain);
        snprintf(a->addr, sizeof a->addr, "%s", s->addr);
        if (a->v == TRUST_OK) {
            a->what = 2;
            s->state = FREE;
            c->st.certified++;
        } else if (a->v != TRUST_UNCERTIFIED || now - s->since >= CERTWAIT_MS) {
            a->what = 3;
            a->n = s->entries;
            s->state = REFUSED;
            s->until = now + CERTWAIT_FORGET_MS;
            c->st.refused++;
        } else {
            a->what = s->asked ? 0 : 1;
            s->asked = 1;
            keys++;
            entries += s->entries;
        }
        na++;
    }
    c->st.held_keys = keys;
    c->st.held_entries = entries;
    if (keys || oom)
        c->next = now + CERTWAIT_STEP_MS;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < na; i++) {
        const act_t *a = &acts[i];
        if (a->what == 1)
            io->sync(io->ctx, a->addr);
        else if (a->what == 2)
            io->ask(io->ctx, a->addr, a->domain);
        else if (a->what == 3)
            io->refuse(io->ctx, a->v, a->n, a->domain, a->key, a->why);
    }
    free(acts);
}

uint64_t certwait_deadline(certwait_t *c)
{
    if (!c)
        return UINT64_MAX;
    pthread_mutex_lock(&c->mu);
    uint64_t d = c->next;
    pthread_mutex_unlock(&c->mu);
    return d;
}

void certwait_stats(certwait_t *c, certwait_stats_t *out)
{
    *out = (certwait_stats_t){0};
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
