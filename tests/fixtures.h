/* tests/fixtures.h - test helpers: the repository's sample files under examples/, fresh node
 * identities and the wall clock that certificates and tokens are dated by.
 * Must not: be linked into the library, or assert (callers check the result). */
#ifndef TRIB_FIXTURES_H
#define TRIB_FIXTURES_H

#include <stddef.h>
#include <stdint.h>
#include "gossip/charter.h"
#include "gossip/identity.h"

/* examples/<name> (found through h_repo_path) read whole, NUL-terminated, its length in *len
 * (may be NULL); malloc'd, or NULL when it cannot be read. */
char *fx_read_example(const char *name, size_t *len);

/* A fresh identity (Ed25519 pair, its CURVE pair and hex id), as `trib identity` makes; aborts
 * only if libsodium cannot convert a key it just made. */
void fx_identity(identity_t *id);

/* Wall-clock milliseconds (CLOCK_REALTIME): what certificates, tokens and entries are dated by. */
int64_t fx_now_ms(void);

/* A new charter *c of a random federation whose roots are roots[0..n), with threshold, issued now
 * and signed by every root. 0, or -1 with err. */
int fx_charter(charter_t *c, const identity_t *const *roots, size_t n, uint32_t threshold, char *err, size_t errlen);

/* A fresh work dir /tmp/trib-NAME-XXXXXX (into work, cap >= 64) holding c as charter.json (its path
 * into chpath): what a suite of chartered nodes starts from. 0, or -1 with err. */
int fx_charter_dir(const charter_t *c, const char *name, char *work, size_t wcap, char *chpath, size_t ccap,
                   char *err, size_t errlen);

/* A signed CatalogEntry of domain at seq: a manifest of product name (title, "1.0.0", active,
 * internal, owners, one string property "id"), chained on prev (NULL at seq 1), signed by id. The
 * entry's bytes (malloc'd) and their length in *len; asserts on failure. */
uint8_t *fx_manifest_entry(const identity_t *id, const char *domain, const char *name, const char *title,
                           uint64_t seq, const uint8_t *prev, size_t *len);

/* Removes dir and everything in it (a work dir of fx_charter_dir); nothing for "". */
void fx_rmdir(const char *dir);

#endif
