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

/* The end of the run of members of list[i]'s domain (the list is in roster_sort's order; self,
 * first, is a run of its own). */
static size_t run_end(const gossip_member_t *list, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && !list[j].self && strcmp(list[j].domain, list[i].domain) == 0)
        j++;
    return j;
}

/* The run of other members of self's domain (list[0] is self): [*from, *to), empty when none. */
static void self_run(const gossip_member_t *list, size_t n, size_t *from, size_t *to)
{
    size_t lo = 1, hi = n;
    while (lo < hi) {   /* the first member whose domain is not below self's */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(list[mid].domain, list[0].domain) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *from = lo;
    *to = lo < n && strcmp(list[lo].domain, list[0].domain) == 0 ? run_end(list, n, lo) : lo;
}

static int live(const gossip_member_t *m) { return m->state < TRIB__MEMBER_STATE__DEAD; }

/* One run [from, to) of a domain (with self when self is of it): when two live members have
 * different keys, every live one is marked and the pairs (first live, each live of another key)
 * reported from *found on. */
static void run_conflicts(gossip_member_t *list, size_t from, size_t to, gossip_member_t *self, roster_pair_fn each,
                          void *ctx, size_t *found)
{
    gossip_member_t *first = self && live(self) ? self : NULL;
    int other = 0;
    for (size_t j = from; j < to && !other; j++)
        if (live(&list[j])) {
            if (!first)
                first = &list[j];
            else
                other = memcmp(first->id, list[j].id, 32) != 0;
        }
    if (!other)
        return;
    first->conflict = 1;
    for (size_t j = from; j < to; j++) {
        if (!live(&list[j]) || &list[j] == first)
            continue;
        list[j].conflict = 1;
        if (memcmp(first->id, list[j].id, 32) != 0 && ++*found && each)
            each(ctx, *found, first, &list[j]);
    }
}

/* Open mode: two live members claiming one domain with different keys are a conflict, shown as
 * such (never as two ordinary rows). Chartered mode needs no such rule: an uncertified twin is
 * never admitted. One pass over the runs of a domain, self's domain first (self joins its run). */
size_t roster_mark_conflicts(gossip_member_t *list, size_t n, roster_pair_fn each, void *ctx)
{
    size_t found = 0, sfrom = 0, sto = 0;
    int has_self = n && list[0].self;
    if (has_self) {
        self_run(list, n, &sfrom, &sto);
        run_conflicts(list, sfrom, sto, &list[0], each, ctx, &found);
    }
    for (size_t i = has_self; i < n;) {
        size_t end = run_end(list, n, i);
        if (!has_self || i != sfrom || sto == sfrom)
            run_conflicts(list, i, end, NULL, each, ctx, &found);
        i = end;
    }
    return found;
}

/* The index of the member of [from, to) with key id (the run is ordered by key), or to. */
static size_t find_key(const gossip_member_t *list, size_t from, size_t to, const uint8_t id[ID_PK_LEN])
{
    size_t lo = from, hi = to;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(list[mid].id, id, ID_PK_LEN);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return to;
}

/* Marks in past the members of [from, to) whose key m's key continues. */
static void mark_past(const trust_t *t, const gossip_member_t *list, size_t from, size_t to, const gossip_member_t *m,
                      uint8_t *past)
{
    uint8_t prev[TRUST_HANDOVER_STEPS][ID_PK_LEN];
    size_t k = trust_predecessors(t, m->domain, m->id, prev);
    for (size_t s = 0; s < k; s++) {
        size_t i = find_key(list, from, to, prev[s]);
        if (i < to && &list[i] != m)
            past[i] = 1;
    }
}

/* Chartered mode: a member whose key another member's key continues (a held key hand-over, or a
 * certificate continuing its serial: trust_handover) is that member's past, not a twin: it is left
 * out of the list. Only a domain with two members or more can have one, so the walks back
 * (trust_predecessors) are made for those members only, and each key found is looked up in its
 * domain's run: near-linear in members, whatever the certificates held. */
size_t roster_drop_handed_over(const trust_t *t, gossip_member_t *list, size_t n)
{
    if (!t || n < 2)
        return n;
    uint8_t *past = calloc(n, 1);
    if (!past)
        return n;
    int has_self = list[0].self;
    size_t sfrom = 0, sto = 0;
    if (has_self)
        self_run(list, n, &sfrom, &sto);
    for (size_t i = has_self; i < n;) {
        size_t end = run_end(list, n, i);
        int with_self = has_self && i == sfrom && sto > sfrom;
        if (end - i + (size_t)with_self >= 2) {
            for (size_t j = i; j < end; j++)
                mark_past(t, list, i, end, &list[j], past);
            if (with_self)
                mark_past(t, list, i, end, &list[0], past);
        }
        i = end;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!past[i])
            list[kept++] = list[i];
    free(past);
    return kept;
}
