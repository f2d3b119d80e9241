/* gossip/seeds.c - the seeds this node was started with: which it has reached, and a warning for
 * those it has not (gossip_int.h).
 *
 * A seed is reached once a member alive here has its address (or, chartered, the node id it
 * names), or once a connection of ours to its address has completed a handshake
 * (transport_reached: a seed given by a DNS name its node does not advertise). One not reached
 * SEEDS_WARN_MS after start is logged, with what to check, then again at a slow, growing interval
 * while any stays so (a node whose seed is wrong is alone, and said nothing: a new operator could
 * not tell); one reached after it was warned about is logged once. A healthy federation reaches its
 * seeds within its first round and logs nothing. A seed that is this node itself was never added
 * (gossip_start).
 * Must not: be called but on the loop thread (gossip_seeds_unreached: any thread, under smu), send
 * anything (SWIM joins through its seeds itself, swim_add_seed). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "gossip/clock.h"
#include "gossip/gossip_int.h"
#include "gossip/identity.h"
#include "gossip/swim.h"

#define SEEDS_WARN_MS 10000            /* the first warning, after start */
#define SEEDS_REWARN_MS 60000          /* the next, then twice as long each time ... */
#define SEEDS_REWARN_MAX_MS 1800000    /* ... up to every 30 minutes */

void gossip__seeds_add(gossip_t *g, const char *given, const char *addr, const uint8_t *pk)
{
    if (g->nseeds >= GOSSIP_SEEDS_MAX)
        return;
    for (size_t i = 0; i < g->nseeds; i++)
        if (!strcmp(g->seeds[i].addr, addr))
            return;   /* given twice: one seed (swim_add_seed) */
    gossip_seed_t *s = &g->seeds[g->nseeds++];
    memset(s, 0, sizeof *s);
    snprintf(s->given, sizeof s->given, "%s", given);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    if (pk) {
        memcpy(s->pk, pk, sizeof s->pk);
        s->has_pk = 1;
    }
    g->seeds_unreached_n++;
    g->seeds_start_ms = clock_ms();
    g->seeds_warn_ms = g->seeds_start_ms + SEEDS_WARN_MS;
    g->seeds_rewarn_ms = SEEDS_REWARN_MS;
}

/* Seed i was reached: noted (under smu, for gossip_seeds_unreached), and said when it was warned about. */
static void reached(gossip_t *g, size_t i, const char *how)
{
    gossip_seed_t *s = &g->seeds[i];
    pthread_mutex_lock(&g->smu);
    s->reached = 1;
    pthread_mutex_unlock(&g->smu);
    g->seeds_unreached_n--;
    if (s->warned)
        log_info("gossip: seed %s reached %.0f s after start (%s)", s->given,
                 (double)(clock_ms() - g->seeds_start_ms) / 1000.0, how);
}

void gossip__seeds_member(gossip_t *g, const Trib__Member *m)
{
    if (!g->seeds_unreached_n || m->state != TRIB__MEMBER_STATE__ALIVE || !m->addr || m->id.len != ID_PK_LEN)
        return;
    for (size_t i = 0; i < g->nseeds; i++) {
        gossip_seed_t *s = &g->seeds[i];
        if (!s->reached && (!strcmp(s->addr, m->addr) || (s->has_pk && !memcmp(s->pk, m->id.data, ID_PK_LEN))))
            reached(g, i, "a member alive at it");
    }
}

/* What to check, for the warning. */
static void advice(gossip_t *g, const gossip_seed_t *s, char *out, size_t cap)
{
    const transport_stats_t *ts = transport_stats(g->tr);
    char last[400] = "";
    if (!strcmp(ts->last_handshake_peer, s->addr) && ts->last_handshake_error[0])
        snprintf(last, sizeof last, "; the last handshake with %s failed: %s", s->addr, ts->last_handshake_error);
    snprintf(out, cap, "check that an agent runs there, that the address is its peer address (its --listen or "
             "--advertise, not its --http), that nothing blocks TCP to it, and %s%s",
             g->trust ? "that NODE_ID is that node's id ('trib identity --data DIR' there)"
                      : "that both run with the same --federation-secret", last);
}

void gossip__seeds_step(gossip_t *g, uint64_t now)
{
    if (!g->seeds_unreached_n)
        return;
    for (size_t i = 0; i < g->nseeds; i++)
        if (!g->seeds[i].reached && transport_reached(g->tr, g->seeds[i].addr))
            reached(g, i, "a connection to it completed its handshake");
    if (!g->seeds_unreached_n || now < g->seeds_warn_ms)
        return;
    char names[1024] = "", tip[700] = "";
    size_t at = 0, n = 0, first = g->nseeds;
    for (size_t i = 0; i < g->nseeds; i++) {
        gossip_seed_t *s = &g->seeds[i];
        if (s->reached)
            continue;
        if (first == g->nseeds)
            first = i;
        if (at < sizeof names)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", n ? ", " : "", s->given);
        n++;
        if (!s->warned) {
            pthread_mutex_lock(&g->smu);
            s->warned = 1;
            pthread_mutex_unlock(&g->smu);
        }
    }
    advice(g, &g->seeds[first], tip, sizeof tip);
    size_t alive = swim_count(g->swim, TRIB__MEMBER_STATE__ALIVE);
    char company[96];
    if (alive <= 1)
        snprintf(company, sizeof company, "this node is alone: no other member alive");
    else
        snprintf(company, sizeof company, "%zu other member(s) alive", alive - 1);
    log_warn("gossip: %zu of %zu seed(s) not reached %.0f s after start: %s (%s); %s", n, g->nseeds,
             (double)(now - g->seeds_start_ms) / 1000.0, names, company, tip);
    g->seeds_warn_ms = now + g->seeds_rewarn_ms;
    g->seeds_rewarn_ms = g->seeds_rewarn_ms * 2 > SEEDS_REWARN_MAX_MS ? SEEDS_REWARN_MAX_MS : g->seeds_rewarn_ms * 2;
}

size_t gossip_seeds_unreached(gossip_t *g, char (*out)[GOSSIP_SEED_TEXT], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nseeds && n < max; i++)
        if (g->seeds[i].warned && !g->seeds[i].reached)
            snprintf(out[n++], GOSSIP_SEED_TEXT, "%s", g->seeds[i].given);
    pthread_mutex_unlock(&g->smu);
    return n;
}
