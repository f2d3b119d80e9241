/* gossip/roster.c - the member list gossip_members shows (gossip/roster.h). */
#include "gossip/roster.h"

#include <stdlib.h>
#include <string.h>

static int self_first(const void *a, const void *b)
{
    const gossip_member_t *x = a, *y = b;
    if (x->self != y->self)
        return y->self - x->self;
    int c = strcmp(x->domain, y->domain);
    return c ? c : memcmp(x->id, y->id, 32);
}

void roster_sort(gossip_member_t *list, size_t n)
{
    qsort(list, n, sizeof *list, self_first);
}

/* Open mode: two live members claiming one domain with different keys are a conflict, shown as
 * such (never as two ordinary rows). Chartered mode needs no such rule: an uncertified twin is
 * never admitted. */
size_t roster_mark_conflicts(gossip_member_t *list, size_t n, roster_pair_fn each, void *ctx)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(list[i].domain, list[j].domain) || !memcmp(list[i].id, list[j].id, 32) ||
                list[i].state >= TRIB__MEMBER_STATE__DEAD || list[j].state >= TRIB__MEMBER_STATE__DEAD)
                continue;
            list[i].conflict = list[j].conflict = 1;
            found++;
            if (each)
                each(ctx, found, &list[i], &list[j]);
        }
    return found;
}

/* Chartered mode: a member whose key another member's key continues (a held key hand-over, or a
 * certificate continuing its serial: trust_handover) is that member's past, not a twin: it is left
 * out of the list. */
size_t roster_drop_handed_over(const trust_t *t, gossip_member_t *list, size_t n)
{
    if (!t)
        return n;
    uint8_t *past = calloc(n ? n : 1, 1), prev[TRUST_HANDOVER_STEPS][ID_PK_LEN];
    if (!past)
        return n;
    for (size_t j = 0; j < n; j++) {   /* one walk per member: the keys it continues */
        size_t k = trust_predecessors(t, list[j].domain, list[j].id, prev);
        for (size_t i = 0; i < n && k; i++)
            for (size_t s = 0; s < k && !past[i]; s++)
                past[i] = i != j && !list[i].self && !memcmp(list[i].id, prev[s], ID_PK_LEN) &&
                          !strcmp(list[i].domain, list[j].domain);
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!past[i])
            list[kept++] = list[i];
    free(past);
    return kept;
}
