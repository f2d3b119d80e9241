/* gossip/swim_table.c - the SWIM member table (see swim_int.h).
 *
 * Owns: the members and their open-addressing index by id, the probe order (a new member goes
 * to a random place in it), insertion with eviction of the oldest gone member when full,
 * removal, the piggyback queue's membership, random picks, the table summary and the read-only
 * snapshots of swim.h (swim_foreach, swim_random_alive, swim_find).
 * Must not: change a member's state or incarnation, send anything, or call an io callback but
 * io.removed; touch sockets, threads, clocks or real randomness. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gossip/swim_int.h"

int swim__set_str(char **dst, const char *src)
{
    if (*dst && strcmp(*dst, src ? src : "") == 0) return 0;
    char *d = strdup(src ? src : "");
    if (!d) return -1;
    free(*dst);
    *dst = d;
    return 0;
}

/* ================================================================ member table */

static size_t slot_of(const swim_t *s, const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (size_t)(mix64(a ^ s->hseed) ^ mix64(b + s->hseed)) & (s->tabcap - 1);
}

member_t *swim__find(const swim_t *s, const uint8_t *id)
{
    if (!s->tabcap) return NULL;
    for (size_t i = slot_of(s, id);; i = (i + 1) & (s->tabcap - 1)) {
        member_t *m = s->tab[i];
        if (!m) return NULL;
        if (id_eq(m->id, id)) return m;
    }
}

void swim__tab_put(swim_t *s, member_t *m)
{
    size_t i = slot_of(s, m->id);
    while (s->tab[i]) i = (i + 1) & (s->tabcap - 1);
    s->tab[i] = m;
}

static void tab_del(swim_t *s, member_t *m)    /* backward-shift deletion */
{
    size_t mask = s->tabcap - 1, i = slot_of(s, m->id);
    while (s->tab[i] != m) i = (i + 1) & mask;
    s->tab[i] = NULL;
    for (size_t j = (i + 1) & mask; s->tab[j]; j = (j + 1) & mask) {
        size_t k = slot_of(s, s->tab[j]->id);
        bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        s->tab[i] = s->tab[j];
        s->tab[j] = NULL;
        i = j;
    }
}

/* Grows list, bq, tmp, pubs and the index to hold `want` members. */
int swim__ensure_cap(swim_t *s, size_t want)
{
    if (want > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        while (nc < want) nc *= 2;
        if (nc > s->cfg.max_members) nc = s->cfg.max_members;
        member_t **l = realloc(s->list, nc * sizeof *l);
        if (!l) return -1;
        s->list = l;
        member_t **q = realloc(s->bq, nc * sizeof *q);
        if (!q) return -1;
        s->bq = q;
        member_t **t = realloc(s->tmp, nc * sizeof *t);
        if (!t) return -1;
        s->tmp = t;
        Trib__Member **p = realloc(s->pubs, nc * sizeof *p);
        if (!p) return -1;
        s->pubs = p;
        s->cap = nc;
    }
    if (want * 2 > s->tabcap) {
        size_t tc = s->tabcap ? s->tabcap : 32;
        while (want * 2 > tc) tc *= 2;
        member_t **tab = calloc(tc, sizeof *tab);
        if (!tab) return -1;
        free(s->tab);
        s->tab = tab;
        s->tabcap = tc;
        for (size_t i = 0; i < s->n; i++) swim__tab_put(s, s->list[i]);
    }
    return 0;
}

void swim__member_free(member_t *m)
{
    if (!m) return;
    free(m->pub.domain);
    free(m->pub.addr);
    free(m->pub.http);
    free(m->pub.link);
    free(m->susp);
    free(m);
}

member_t *swim__member_new(const Trib__Member *c)
{
    member_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    trib__member__init(&m->pub);
    memcpy(m->id, c->id.data, SWIM_ID_LEN);
    m->pub.id.data = m->id;
    m->pub.id.len = SWIM_ID_LEN;
    m->pub.domain = m->pub.addr = m->pub.http = m->pub.link = NULL;
    if (swim__set_str(&m->pub.domain, c->domain) || swim__set_str(&m->pub.addr, c->addr) ||
        swim__set_str(&m->pub.http, c->http) || swim__set_str(&m->pub.link, c->link)) {
        swim__member_free(m);
        return NULL;
    }
    m->pub.incarnation = c->incarnation;
    m->pub.state = c->state;
    return m;
}

void swim__bq_drop(swim_t *s, member_t *m)
{
    if (!m->queued) return;
    for (size_t i = 0; i < s->nbq; i++) {
        if (s->bq[i] != m) continue;
        memmove(&s->bq[i], &s->bq[i + 1], (s->nbq - i - 1) * sizeof *s->bq);
        s->nbq--;
        break;
    }
    m->queued = false;
}

/* Queues m's current state for piggybacking as the newest, never-sent update. */
void swim__bq_push(swim_t *s, member_t *m)
{
    swim__bq_drop(s, m);
    assert(s->nbq < s->cap);
    s->bq[s->nbq++] = m;
    m->queued = true;
    m->tx = 0;
}

/* Removes m from the table (reap or eviction). */
void swim__member_remove(swim_t *s, member_t *m)
{
    assert(m != s->self);
    for (size_t i = 0; i < s->n; i++) {
        if (s->list[i] != m) continue;
        s->list[i] = s->list[--s->n];
        break;
    }
    tab_del(s, m);
    swim__bq_drop(s, m);
    swim__confirmed(s, m);
    s->count[m->pub.state]--;
    if (s->io.removed) s->io.removed(s->io.ctx, m->id);
    swim__member_free(m);
}

bool swim__room(const swim_t *s)
{
    size_t gone = s->count[DEAD] + s->count[LEFT] - (is_gone(s->self->pub.state) ? 1 : 0);
    return s->n < s->cfg.max_members || gone;
}

/* Adds a member built from claim c (validated). NULL when the table is full of live members. */
member_t *swim__member_add(swim_t *s, const Trib__Member *c)
{
    if (s->n >= s->cfg.max_members) {            /* make room: forget the oldest dead/left */
        member_t *victim = NULL;
        /* Without a gone member there is nothing to evict: say so without scanning the table,
         * or a flood of strangers costs a full scan each while the table is full. */
        size_t gone = s->count[DEAD] + s->count[LEFT] - (is_gone(s->self->pub.state) ? 1 : 0);
        for (size_t i = 0; gone && i < s->n; i++) {
            member_t *o = s->list[i];
            if (o != s->self && is_gone(o->pub.state) && (!victim || o->state_ms < victim->state_ms))
                victim = o;
        }
        if (!victim) {
            s->st.members_dropped++;
            return NULL;
        }
        swim__member_remove(s, victim);
    }
    member_t *m = NULL;
    if (swim__ensure_cap(s, s->n + 1) || !(m = swim__member_new(c))) {
        s->st.members_dropped++;
        return NULL;
    }
    size_t pos = rng_below(s, s->n + 1);       /* random place in the probe order */
    s->list[s->n] = s->list[pos];
    s->list[pos] = m;
    s->n++;
    swim__tab_put(s, m);
    s->count[m->pub.state]++;
    return m;
}

/* Up to k distinct random members passing `want`, other than self and `skip`. */
size_t swim__pick_random(swim_t *s, bool (*want)(const swim_t *, const member_t *, uint64_t),
                          uint64_t now, const uint8_t *skip, size_t k, member_t **out)
{
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++) {
        member_t *m = s->list[i];
        if (m == s->self || (skip && id_eq(m->id, skip)) || !want(s, m, now)) continue;
        s->tmp[c++] = m;
    }
    size_t got = 0;
    for (; got < k && got < c; got++) {          /* partial Fisher-Yates */
        size_t j = got + rng_below(s, c - got);
        member_t *t = s->tmp[j];
        s->tmp[j] = s->tmp[got];
        s->tmp[got] = t;
        out[got] = t;
    }
    return got;
}

bool swim__want_alive(const swim_t *s, const member_t *m, uint64_t now)
{
    (void)s; (void)now;
    return m->pub.state == ALIVE;
}

bool swim__want_gossip(const swim_t *s, const member_t *m, uint64_t now)
{
    if (!is_gone(m->pub.state)) return true;
    return m->pub.state == DEAD && now - m->state_ms < s->cfg.gossip_to_dead_ms;
}

/* An order-free hash of the member table: the XOR of BLAKE2b-128(id, incarnation, state) of each. */
void swim__table_summary(const swim_t *s, uint8_t out[SUMMARY_LEN])
{
    memset(out, 0, SUMMARY_LEN);
    for (size_t i = 0; i < s->n; i++) {
        const member_t *m = s->list[i];
        uint8_t buf[SWIM_ID_LEN + 9], h[SUMMARY_LEN];
        memcpy(buf, m->id, SWIM_ID_LEN);
        for (int b = 0; b < 8; b++)
            buf[SWIM_ID_LEN + b] = (uint8_t)(m->pub.incarnation >> (56 - 8 * b));
        buf[SWIM_ID_LEN + 8] = (uint8_t)m->pub.state;
        crypto_generichash(h, sizeof h, buf, sizeof buf, NULL, 0);
        for (int b = 0; b < SUMMARY_LEN; b++)
            out[b] ^= h[b];
    }
}


void swim_foreach(const swim_t *s, void (*fn)(void *ctx, const Trib__Member *m), void *ctx)
{
    for (size_t i = 0; i < s->n; i++) fn(ctx, &s->list[i]->pub);
}

size_t swim_random_alive(swim_t *s, size_t k, const Trib__Member **out)
{
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->list[i] != s->self && s->list[i]->pub.state == ALIVE) s->tmp[c++] = s->list[i];
    size_t got = 0;
    for (; got < k && got < c; got++) {          /* partial Fisher-Yates */
        size_t j = got + rng_below(s, c - got);
        member_t *t = s->tmp[j];
        s->tmp[j] = s->tmp[got];
        s->tmp[got] = t;
        out[got] = &t->pub;
    }
    return got;
}

const Trib__Member *swim_find(const swim_t *s, const uint8_t id[SWIM_ID_LEN])
{
    const member_t *m = swim__find(s, id);
    return m ? &m->pub : NULL;
}
