/* gossip/returned.c - which peers missed this node's catalog pushes in flight (repl_io_t.got_pushes).
 *
 * A new entry goes at once to every member alive or suspect here (gossip.c push_entries), and for
 * REPL_ACTIVE_MS after a domain changed, digest answers leave that domain out: its pushes are on
 * their way (replicate.c). A peer that was dead, had left or was unknown when they went, or that is
 * back in sight only since, got none of them; left out, it waited for a round after the window (2 to
 * 7 s after a restart with the default timings, where docs promise its first round brings it the
 * catalog). So the loop remembers the members back in sight in the last REPL_ACTIVE_MS, and answers
 * them, and any asker that is not a live member here, in full.
 * Must not: be called but on the loop thread (g->asker and the ring are the loop's), or block. */
#include <string.h>
#include "gossip/clock.h"
#include "gossip/gossip_int.h"
#include "gossip/swim.h"

void gossip__member_back(gossip_t *g, const uint8_t id[32])
{
    memcpy(g->back[g->back_next].id, id, sizeof g->back[0].id);
    g->back[g->back_next].ms = clock_ms();
    g->back_next = (g->back_next + 1) % GOSSIP_BACK_SLOTS;
}

int gossip__asker_got_pushes(void *ctx, const char *addr)
{
    (void)addr;                  /* a claim: the asker is named by its key (the transport checked it) */
    gossip_t *g = ctx;
    if (!g->asker)
        return 1;
    const Trib__Member *m = swim_find(g->swim, g->asker);
    if (!m || (m->state != TRIB__MEMBER_STATE__ALIVE && m->state != TRIB__MEMBER_STATE__SUSPECT))
        return 0;                /* not among the members pushed to (its alive may come after its question) */
    uint64_t now = clock_ms();
    for (size_t i = 0; i < GOSSIP_BACK_SLOTS; i++)
        if (g->back[i].ms && now - g->back[i].ms < REPL_ACTIVE_MS &&
            !memcmp(g->back[i].id, g->asker, sizeof g->back[i].id))
            return 0;
    return 1;
}
