/* storage/fedlog.h - the federation log's objects in LMDB: hash (32 bytes) -> kind + bytes.
 *
 * Owns: the fedlog database (storage/fedlog.c): storing verified federation objects (charter
 * updates, certificates, revocations, policy sets) by the BLAKE2b-256 of their body, reading
 * them back, listing them.
 * Must not: decode or verify the objects (gossip/fedlog.c does, before it stores), or bound the
 * set (the caller keeps count and bytes within its limits). */
#ifndef TRIB_STORAGE_FEDLOG_H
#define TRIB_STORAGE_FEDLOG_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

typedef struct {
    uint8_t hash[STORE_HASH_LEN];
    int kind;                       /* 1..255 */
    const uint8_t *bytes;
    size_t len;                     /* > 0 */
} store_fedlog_item_t;

/* Stores the items in one write transaction (one commit); an item whose hash is held already is
 * left as it is. *added (may be NULL) gets how many were new. 0 or -1 (store_last_error). */
int store_fedlog_put(store_t *st, const store_fedlog_item_t *items, size_t n, size_t *added);
/* The object under hash: 0 with *bytes malloc'd, STORE_NOTFOUND, or -1. */
int store_fedlog_get(store_t *st, const uint8_t hash[STORE_HASH_LEN], int *kind, uint8_t **bytes,
                     size_t *len);
/* Every object in hash order; fn returns non-zero to stop (passed back). -1 on a storage error. */
typedef int (*store_fedlog_fn)(void *ctx, const uint8_t hash[STORE_HASH_LEN], int kind,
                               const uint8_t *bytes, size_t len);
int store_fedlog_each(store_t *st, store_fedlog_fn fn, void *ctx);

#endif
