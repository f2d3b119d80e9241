/* gossip/conns.c - the peer connections that follow membership: a member seen alive gets its
 * priority connection ahead of its first message (the warm-up), a member gone (dead, left) has
 * its connections closed, and a member back from gone gets fresh ones. Part of the federation
 * actor: see gossip_int.h; loop thread only.
 *
 * Owns: the warm-up pacing (WARM_SHAKING) and the queue of gone members' addresses.
 * Must not: send messages (transport_warm opens a connection, our certificate hello at most), or
 * call into the swim_t from a SWIM callback (member_changed only records; the loop acts). */
#include <stdio.h>
#include <string.h>

#include "gossip/gossip_int.h"
#include "gossip/identity.h"
#include "gossip/swim.h"

/* Membership's connections open ahead of their first message: a probe's ping, or the ack that
 * answers one, that had to wait for its connection's handshake (TCP, CURVE, ZAP, our certificate
 * hello) outlasted the probe on a busy node. Opened lazily, at the first message to each member, a
 * federation of 20 nodes still had ~130 of its 380 pairs without one when every node began to
 * publish, and those opened in the same second as ~360 bulk connections (every node pushing to
 * every member): their handshakes took 1-2.4 s and each first probe of such a pair failed, though
 * the member was alive (issue 9 item 3). So every member seen alive gets its priority connection
 * from the loop at once, but never more than WARM_SHAKING handshakes of ours under way (each
 * counted for a second at most: transport_warm): a joining federation warms as fast as its
 * handshakes finish, not as one burst, and a member that never answers one holds no place for
 * long. SWIM opens the same connections anyway within one probe round (it probes every member), so
 * this adds none. */
#define WARM_SHAKING 4
#define WARM_RETRY_MS 50

typedef struct {
    gossip_t *g;
    int busy;
} warm_t;

static void warm_one(void *ctx, const Trib__Member *m)
{
    warm_t *w = ctx;
    if (w->busy || m->state != TRIB__MEMBER_STATE__ALIVE || !m->addr || m->id.len != ID_PK_LEN ||
        !memcmp(m->id.data, w->g->id.pk, ID_PK_LEN))
        return;
    if (transport_warm(w->g->tr, m->addr, WARM_SHAKING) == -2)
        w->busy = 1;
}

void gossip__warm_step(gossip_t *g, uint64_t now)
{
    warm_t w = {g, 0};
    swim_foreach(g->swim, warm_one, &w);
    g->warm_due = w.busy;
    g->warm_next_ms = now + WARM_RETRY_MS;
}

static int gone(int state)
{
    return state == TRIB__MEMBER_STATE__DEAD || state == TRIB__MEMBER_STATE__LEFT;
}

/* A member gone is dialled no more: ZeroMQ redials a connection that is down until it is closed
 * (with a backoff, transport.c), so its connections close, on the loop, unless a member alive
 * holds the address (a rotated node's new key, where the old key left). A message to it later (SWIM
 * gossips to the dead for a while and retries them) opens one again, closed in turn when it never
 * comes up (transport unanswered_ms). A member back from gone gets fresh connections at once: one
 * left open may be deep in its backoff, and the probes of the member back would wait for its next
 * redial. Only those that are down: one that is up is not its old one but a member's alive at that
 * address (a member's address is a claim: closing those whenever a member naming it came back let a
 * key that any peer can make die and come back cut that member off at will). A queue that is full
 * (GOSSIP_GONE_MAX gone in one loop turn) leaves the rest open. */
void gossip__conns_member(gossip_t *g, const Trib__Member *m, int old_state)
{
    if (!m->addr || old_state == (int)m->state || strlen(m->addr) >= TRANSPORT_ADDR_MAX)
        return;
    if (gone((int)m->state) && g->ngone < GOSSIP_GONE_MAX)
        snprintf(g->gone[g->ngone++], TRANSPORT_ADDR_MAX, "%s", m->addr);
    else if (m->state == TRIB__MEMBER_STATE__ALIVE && gone(old_state))
        g->conns_closed_gone += (uint64_t)transport_forget_down(g->tr, m->addr);
}

static void held_alive(void *ctx, const Trib__Member *m)
{
    gossip_t *g = ctx;
    if (!m->addr || gone((int)m->state))
        return;
    for (int i = 0; i < g->ngone; i++)
        if (!strcmp(g->gone[i], m->addr))
            g->gone[i][0] = '\0';
}

void gossip__conns_step(gossip_t *g)
{
    swim_foreach(g->swim, held_alive, g);
    for (int i = 0; i < g->ngone; i++)
        if (g->gone[i][0])
            g->conns_closed_gone += (uint64_t)transport_forget(g->tr, g->gone[i]);
    g->ngone = 0;
}
