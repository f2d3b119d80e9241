/* storage/pager.h - pages of a product's record log as NDJSON, for every reader of records: local
 * HTTP reads (node/http.c) and the owner side of routed reads (gossip/reads_owner.c).
 *
 * A page holds whole records, each followed by '\n' (a record never holds a newline: node/records.c
 * splits bodies at them), read in one short LMDB read transaction, bounded in records and bytes.
 * Must not: parse records, or keep a transaction beyond one page. */
#ifndef TRIB_PAGER_H
#define TRIB_PAGER_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

typedef struct {
    char *buf;              /* reused from page to page, freed by store_page_free */
    size_t head;            /* set by the caller: bytes kept free at the front of buf (a message
                               header goes there, and no copy of the records is made to send them) */
    size_t len, cap;        /* the NDJSON is len bytes at buf + head; cap: buf's size */
    size_t n;               /* records in the page */
    uint64_t first, next;   /* seq of the first record; seq after the last (from, when none) */
    int full;               /* a record follows that the page had no room for (its byte or
                               record bound): the log does not end with the page */
} store_page_t;

/* Fills pg (emptied first) with the records of product id from seq from: at most max_records of
 * them, and no record that would take the page past max_bytes, except a first record larger than
 * that (alone in its page). Returns pg->n (0: no record at or after from), or -1 on a storage
 * error or out of memory (store_last_error says which). */
long store_page_read(store_t *st, const char *id, uint64_t from, uint64_t max_records, size_t max_bytes,
                     store_page_t *pg);
void store_page_free(store_page_t *pg);   /* accepts NULL; leaves *pg empty */

#endif
