/* gossip/membersave.h - the gossip loop's member changes and incarnation, written to the store on a
 * thread of their own (see membersave.c). */
#ifndef TRIB_MEMBERSAVE_H
#define TRIB_MEMBERSAVE_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

typedef struct membersave membersave_t;

typedef struct {
    uint64_t ok, failed;         /* write transactions committed, failed */
    uint64_t longest_ms;         /* the longest save, its wait for LMDB's write lock included */
} membersave_stats_t;

/* Starts the saver's thread; NULL when it cannot (out of memory, no thread). */
membersave_t *membersave_new(store_t *st);

/* Hands over one batch: the changes ch[0..n) in order (the saver takes the array and each member's
 * bytes) and this node's incarnation inc (0: none to save). Returns 1 when taken, 0 when the saver
 * still saves the previous batch (nothing taken: the caller keeps collecting and offers again). With
 * wait it waits until the saver is free instead (at stop) and always takes the batch. */
int membersave_offer(membersave_t *s, store_member_change_t *ch, size_t n, uint64_t inc, int wait);

/* Keeps the newest change of each member in ch[0..n), in place (the order between members does
 * not matter: each is a key of its own), and frees the bytes of those dropped. Returns how many
 * are kept (n when out of memory: nothing changed). */
size_t membersave_compact(store_member_change_t *ch, size_t n);

void membersave_stats(membersave_t *s, membersave_stats_t *out);

/* Saves the batch handed over last (waits for it), stops and joins the thread, frees; NULL is fine. */
void membersave_destroy(membersave_t **sp);

#endif
