/* storage/access.h - the access index: requests, grants, denials and revocations (DESIGN §13).
 *
 * Built inside the catalog append transaction from every accepted AccessChange entry (local or a
 * peer's), so it is exactly as replicated as the logs it comes from. Rows:
 *   r/<request id>               the request (AccessRow)
 *   d/<request id>               the owner's decision on it: its grant or its denial (AccessRow)
 *   g/<grant id>                 the grant, with its revocation once one is accepted (AccessRow)
 *   s/<subject>\0<product>\0<grant id>   empty: grants by subject and product (grants_active)
 * Rules (an entry breaking one is kept in its log, which must never stall, but changes nothing
 * here, and store_access_ignored counts it): a request must be signed in the subject's home
 * domain (subject "x@D" in D's log) and its id be new; a grant or denial must be signed in the
 * product's domain and its request not be decided yet; a grant id must be new (so a replay of a
 * revoked grant can never revive it); a revocation must be signed in the product's domain of a
 * grant it holds. Time-based expiry is computed when read, never stored.
 * Must not: verify signatures (gossip/ does), decide who may ask for what (node/grants.c does),
 * or include lmdb.h in this header. */
#ifndef TRIB_STORE_ACCESS_H
#define TRIB_STORE_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

#define ACCESS_ID_MAX      32      /* "grant-" + 16 hex + NUL fits */
#define ACCESS_TEXT_MAX    512     /* purpose, reason */
#define ACCESS_FIELDS_MAX  64      /* entries of a fields allow-list */
#define ACCESS_DAYS_MAX    366

/* "req-" or "grant-" followed by 16 lowercase hex characters. */
int store_access_valid_id(const char *id, const char *prefix);
/* Subject "local@domain": local 1..64 of [a-z0-9._-], domain by the name rule; *domain set. */
int store_access_subject_domain(const char *subject, char domain[64]);

/* Checks what a replica needs of an AccessChange carried by an entry of `domain` to index it
 * (ids, sizes, the kind): 0, or -1 with err saying what and where. Semantic rules (which log may
 * sign what) are applied when indexing and never refuse an entry. */
int store_access_shape(const Trib__AccessChange *a, char *err, size_t errlen);

/* Copies row `key` ("r/…", "d/…", "g/…") decoded into *out (free with
 * trib__access_row__free_unpacked). 0, STORE_NOTFOUND or -1. */
int store_access_get(store_t *st, const char *kind, const char *id, Trib__AccessRow **out);

/* Calls fn for every row of kind ("r" or "g") in id order, until fn returns non-zero; the row
 * is valid during the call only. 0 or -1. */
typedef int (*store_access_fn)(void *ctx, const Trib__AccessRow *row);
int store_access_scan(store_t *st, const char *kind, store_access_fn fn, void *ctx);

/* Calls fn for each grant row of subject on product_id (both exact; product_id NULL: on every
 * product, in product order). 0 or -1. */
int store_access_grants_of(store_t *st, const char *subject, const char *product_id, store_access_fn fn, void *ctx);

/* Entries indexed and entries ignored by the rules above, since the process started. */
void store_access_counts(uint64_t *indexed, uint64_t *ignored);

#endif
