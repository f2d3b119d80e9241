/* gossip/cert.h - domain certificates and revocations of a chartered federation (DESIGN.md §12).
 *
 * Owns: issuing a certificate (domain -> node key, serial, validity window, previous serial for
 * rotation) or a revocation (of a certificate serial or a key, effective time), each signed by
 * a threshold of the charter's roots under its own tag ("trib/cert/v1", "trib/revoke/v1");
 * parsing them from bytes of any origin (bounded, shape-checked, signatures not yet trusted);
 * the verdict on a key claiming a domain at a time; a small revocation set; the JSON files
 * (NAME.cert, rev.json).
 * Must not: touch LMDB or the network, print, keep certificates per domain (the trust store
 * that the ZAP handler and catalog acceptance use is built on this, see docs/federation.md). */
#ifndef TRIB_CERT_H
#define TRIB_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/charter.h"

#define CERT_DEFAULT_DAYS 90
#define CERT_MAX_DAYS     3660
#define REVOKE_REASON_MAX 200

typedef struct {
    uint8_t fed_id[FED_ID_LEN];
    char domain[64];
    uint8_t node_key[ID_PK_LEN];
    uint64_t serial;                      /* non-zero */
    uint64_t prev_serial;                 /* 0: not a rotation */
    int64_t not_before_ms, not_after_ms, issued_ms;
    uint8_t hash[TRUST_HASH_LEN];         /* BLAKE2b-256 of the body */
    Trib__TrustSigned *env;               /* the envelope, signatures not yet trusted */
    uint8_t *bytes;                       /* the TrustSigned as made or received */
    size_t len;
    uint8_t curve[32];                    /* node_key's CURVE (X25519) form, by cert_parse */
} cert_t;

typedef struct {
    uint8_t fed_id[FED_ID_LEN];
    int by_key;                           /* 1: revokes node_key, 0: revokes serial */
    uint64_t serial;
    uint8_t node_key[ID_PK_LEN];
    int64_t effective_ms, issued_ms;
    char reason[REVOKE_REASON_MAX + 1];
    uint8_t hash[TRUST_HASH_LEN];
    Trib__TrustSigned *env;
    uint8_t *bytes;
    size_t len;
} revocation_t;

/* A set of verified revocations (append-only, deduplicated by hash). Zero-initialise. */
typedef struct {
    revocation_t *items;                  /* envelopes and bytes not kept: only the facts */
    size_t n, cap;
} revset_t;

/* ---------------------------------------------------------------- certificates */

/* Makes a certificate for domain and node_key, valid [not_before_ms, not_after_ms], with a
 * fresh random serial, signed by roots (checked: roots of ch, distinct, >= threshold).
 * 0 or -1 with err. */
int cert_issue(const charter_t *ch, const char *domain, const uint8_t node_key[ID_PK_LEN],
               int64_t not_before_ms, int64_t not_after_ms, uint64_t prev_serial,
               const identity_t *const *roots, size_t n, cert_t *out, char *err, size_t errlen);

/* Parses bytes (bounded) as a certificate: envelope of kind cert, body a DomainCert with a
 * valid domain name, a 32-byte valid Ed25519 node key, serial != 0, not_before < not_after,
 * times in range. Signatures are NOT checked (cert_valid_at does, against a charter).
 * 0 or -1 with err; out zeroed on failure. */
int cert_parse(const uint8_t *bytes, size_t len, cert_t *out, char *err, size_t errlen);
void cert_free(cert_t *c);

/* The verdict on `key` acting for `domain` at time t_ms (an entry's time, or now for a
 * connection), allowing skew_ms of clock difference on the window (TRUST_SKEW_MS):
 * wrong_federation, then forged / below_threshold (signatures against ch's current roots),
 * wrong_domain, wrong_key, revoked (revs may be NULL), not_yet_valid, expired; else ok.
 * Costs one Ed25519 verify per signature: a caller checking many entries should cache an ok
 * signature check per (cert hash, charter hash). err may be NULL. */
trust_verdict_t cert_valid_at(const charter_t *ch, const cert_t *c, const revset_t *revs,
                              const char *domain, const uint8_t key[ID_PK_LEN], int64_t t_ms,
                              int64_t skew_ms, char *err, size_t errlen);

/* The same without the federation and signature checks, for a certificate whose signatures
 * were verified against the held charter when it was stored (gossip/trust.c): domain, key,
 * revoked, not_yet_valid, expired. */
trust_verdict_t cert_check_claim(const cert_t *c, const revset_t *revs, const char *domain,
                                 const uint8_t key[ID_PK_LEN], int64_t t_ms, int64_t skew_ms,
                                 char *err, size_t errlen);

/* Serial as 16 lowercase hex digits, and back (0 or -1). */
void cert_serial_text(uint64_t serial, char out[17]);
int cert_serial_parse(const char *s, uint64_t *serial);

json_t *cert_to_json(const cert_t *c);
/* Reads NAME.cert: parse, and the readable fields must match the signed bytes. Signatures are
 * checked later against a charter (cert_valid_at). 0 or -1 with err naming the file. */
int cert_load(const char *path, cert_t *out, char *err, size_t errlen);

/* ---------------------------------------------------------------- revocations */

/* Makes a revocation of a key (by_key) or a serial, effective at effective_ms, signed by
 * roots (checked as for cert_issue). reason may be NULL. 0 or -1 with err. */
int revocation_issue(const charter_t *ch, int by_key, uint64_t serial,
                     const uint8_t node_key[ID_PK_LEN], int64_t effective_ms, const char *reason,
                     const identity_t *const *roots, size_t n, revocation_t *out, char *err,
                     size_t errlen);
/* Parses (bounded, shape only) and then verifies against ch: federation, then signatures. */
int revocation_parse(const uint8_t *bytes, size_t len, revocation_t *out, char *err, size_t errlen);
trust_verdict_t revocation_verify(const charter_t *ch, const revocation_t *r, char *err,
                                  size_t errlen);
void revocation_free(revocation_t *r);
json_t *revocation_to_json(const revocation_t *r);
int revocation_load(const char *path, revocation_t *out, char *err, size_t errlen);

/* Adds the facts of a VERIFIED revocation: 1 added, 0 already held, -1 out of memory. */
int revset_add(revset_t *s, const revocation_t *r);
/* The revocation that makes (serial, key) invalid at t_ms (effective_ms <= t_ms), or NULL. */
const revocation_t *revset_find(const revset_t *s, uint64_t serial, const uint8_t key[ID_PK_LEN],
                                int64_t t_ms);
void revset_free(revset_t *s);

/* ---------------------------------------------------------------- key rotation hand-over */

#define ROTATE_DEFAULT_OVERLAP_MS (24LL * 3600 * 1000)

/* The old key's hand-over of its domain to a new key (TrustSigned kind 5, one signature, by
 * old_key, over "trib/rotate/v1" || body). Roots then certify new_key with prev_serial. */
typedef struct {
    char domain[64];
    uint8_t old_key[ID_PK_LEN], new_key[ID_PK_LEN];
    int64_t effective_ms, overlap_ms, issued_ms;
    uint8_t hash[TRUST_HASH_LEN];
    uint8_t *bytes;
    size_t len;
} rotation_t;

/* Makes the hand-over signed by old. 0 or -1 with err. */
int rotation_make(const identity_t *old, const char *domain, const uint8_t new_key[ID_PK_LEN],
                  int64_t effective_ms, int64_t overlap_ms, rotation_t *out, char *err, size_t errlen);
/* Parses bytes (bounded, shape) AND checks the one signature is old_key's. 0 or -1 with err. */
int rotation_parse(const uint8_t *bytes, size_t len, rotation_t *out, char *err, size_t errlen);
void rotation_free(rotation_t *r);
json_t *rotation_to_json(const rotation_t *r);
/* Reads a trib.rotation file (parse + signature; readable fields must match). 0 or -1. */
int rotation_load(const char *path, rotation_t *out, char *err, size_t errlen);

#endif
