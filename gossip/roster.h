/* gossip/roster.h - the member list gossip_members shows, made from SWIM's table for each snapshot:
 * this node first, then by domain and key; in chartered mode without the keys a newer key of their
 * domain continues (a hand-over or a certificate's prev_serial: trust_predecessors); in open mode
 * with two live keys claiming one domain marked as a conflict.
 *
 * Must not: touch the network, the store, a clock or a lock of its own (the trust store locks
 * itself), or log: the loop calls it on every membership change, so its cost is the loop's. */
#ifndef TRIB_ROSTER_H
#define TRIB_ROSTER_H

#include <stddef.h>
#include "gossip/gossip.h"
#include "gossip/trust.h"

/* Orders list: self first, then domain, then key. The two calls below need this order. */
void roster_sort(gossip_member_t *list, size_t n);

/* Chartered (t non-NULL): drops each member (never self) whose key another member of its domain
 * continues; keeps the order. Returns the members kept. t NULL: n. */
size_t roster_drop_handed_over(const trust_t *t, gossip_member_t *list, size_t n);

/* Marks every live (alive or suspect) member that shares its domain with another live member of
 * another key (conflict = 1), calling each(ctx, nth, a, b) for the nth such pair (1, 2, ...; each
 * may be NULL). Returns how many pairs were found. */
typedef void (*roster_pair_fn)(void *ctx, size_t nth, const gossip_member_t *a, const gossip_member_t *b);
size_t roster_mark_conflicts(gossip_member_t *list, size_t n, roster_pair_fn each, void *ctx);

#endif
