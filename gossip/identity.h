/* gossip/identity.h - the node's Ed25519 identity and the CURVE key derived from it.
 *
 * Owns: creating identity.key (mode 0600) in the data dir on first start, loading it after,
 * deriving the Curve25519 pair used by ZeroMQ CURVE, and the node id text form (lowercase
 * hex of the public key, 64 chars, used everywhere ids are shown).
 * Must not: touch LMDB or the network. */
#ifndef TRIB_IDENTITY_H
#define TRIB_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define ID_PK_LEN  32
#define ID_SK_LEN  64
#define ID_HEX_LEN 65   /* 64 hex chars + NUL */

typedef struct {
    uint8_t pk[ID_PK_LEN];          /* Ed25519 public key = node id */
    uint8_t sk[ID_SK_LEN];          /* Ed25519 secret key */
    uint8_t curve_pk[32];           /* Curve25519, for ZeroMQ CURVE */
    uint8_t curve_sk[32];
    char hex[ID_HEX_LEN];           /* node id as text */
} identity_t;

/* Loads DIR/identity.key or creates it (0600) when absent; *created tells which.
 * Refuses a key file that has the wrong size or is readable by group/others. */
int identity_load_or_create(const char *dir, identity_t *id, int *created, char *err, size_t errlen);
/* The same key file format at any path (`trib keygen`, root keys kept off the nodes):
 * load refuses a missing file, wrong size, type or group/other mode; create refuses to
 * overwrite (O_EXCL) and writes 0600 durably. 0 or -1 with err naming the file. */
int identity_load_file(const char *path, identity_t *id, char *err, size_t errlen);
int identity_create_file(const char *path, identity_t *id, char *err, size_t errlen);
void identity_wipe(identity_t *id);                  /* sodium_memzero of the secrets */
void identity_hex(const uint8_t pk[ID_PK_LEN], char out[ID_HEX_LEN]);
int identity_from_hex(const char *hex, uint8_t pk[ID_PK_LEN]);      /* 0 or -1 */
/* Curve25519 public key for an Ed25519 public key (a peer's CURVE server key). 0 or -1. */
int identity_curve_pk(const uint8_t pk[ID_PK_LEN], uint8_t curve_pk[32]);

#endif
