/* gossip/entry.h - signed catalog entries: make, verify, hash.
 *
 * Owns: serializing a CatalogEntry, signing the exact bytes with Ed25519, wrapping them in a
 * SignedEntry, and verifying received bytes (never re-encoding to verify).
 * Must not: decide domain binding or sequence (that is store_catalog_append's check). */
#ifndef TRIB_ENTRY_H
#define TRIB_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include "proto/tributary.pb-c.h"
#include "gossip/identity.h"

#define ENTRY_MAX_BYTES (1u << 20)   /* a signed entry larger than this is refused */

/* BLAKE2b-256 of an entry body (the chaining hash). */
void entry_hash(const uint8_t *body, size_t len, uint8_t out[32]);

/* Serializes e, signs it with id, returns the serialized SignedEntry in *out (malloc'd). */
int entry_sign(const identity_t *id, const Trib__CatalogEntry *e, uint8_t **out, size_t *len);

/* A verified entry: the decoded outer and inner messages plus the body hash. Free with entry_free
 * only (both messages are decoded into one block, arena). */
typedef struct {
    Trib__SignedEntry *signed_entry;
    Trib__CatalogEntry *entry;
    uint8_t hash[32];
    void *arena;
} entry_t;

/* Decodes bytes as a SignedEntry, checks sizes (signer 32, signature 64, body and total under
 * ENTRY_MAX_BYTES), verifies the signature over body, decodes body as a CatalogEntry and checks
 * its shape (domain id rule, seq >= 1, prev_hash empty iff seq 1 else 32 bytes, exactly one of
 * manifest/tombstone/access, manifest domain == entry domain, an access change's shape:
 * store_access_shape). On failure returns -1 with err naming
 * what is wrong and out zeroed. */
int entry_verify(const uint8_t *bytes, size_t len, entry_t *out, char *err, size_t errlen);
void entry_free(entry_t *e);                         /* frees both messages; accepts zeroed */

/* entry_verify without the signature check: the entry the bytes claim to be, for a lookup of what
 * this node already holds (a byte-identical copy of a stored entry was verified when it was stored).
 * Never to be trusted otherwise. */
int entry_decode(const uint8_t *bytes, size_t len, entry_t *out, char *err, size_t errlen);

/* Verifies the signature of an entry decoded by entry_decode (body bytes as received): then it is
 * what entry_verify gives. On failure frees e (zeroed) and returns -1 with err. */
int entry_check_signature(entry_t *e, char *err, size_t errlen);

/* True when s is a valid domain or product name (store_valid_name: STORE_NAME_RULE). */
int entry_valid_name(const char *s);
/* True when s is "domain/name" with both parts valid (store_valid_id). */
int entry_valid_product_id(const char *s);

#endif
