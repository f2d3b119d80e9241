/* gossip/charter.h - the federation charter (DESIGN.md §12) and the signed envelope every trust
 * object travels in.
 *
 * Owns: the TrustSigned envelope (a body signed by several keys, each signature over
 * TAG || body with a per-kind domain-separation tag), the verdict names used as metric labels,
 * the charter (federation id, root and governance keys, thresholds, hash-chained versions):
 * making, verifying as an anchor or as the next version of a held charter, and its JSON file
 * form (charter.json). The file forms of every trust object share one shape: readable fields
 * for people plus "signed", the exact TrustSigned bytes in base64; on load the readable fields
 * must equal what the signed bytes say, so hand edits are refused rather than half-trusted.
 * Must not: touch LMDB or the network, print, or decide what a verdict means for a peer (the
 * ZAP handler and catalog acceptance do). */
#ifndef TRIB_CHARTER_H
#define TRIB_CHARTER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/identity.h"
#include "proto/tributary.pb-c.h"

#define TRUST_MAX_BYTES   (64u << 10)   /* a TrustSigned larger than this is refused */
#define TRUST_MAX_SIGS    32
#define TRUST_FILE_MAX    (256u << 10)  /* a trust JSON file larger than this is refused */
#define TRUST_SKEW_MS     60000         /* clock skew that changes no validity verdict */
#define CHARTER_MAX_KEYS  32
#define FED_ID_LEN        16
#define TRUST_HASH_LEN    32
#define TRUST_TIME_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z: later times are refused */

typedef enum {
    TRUST_KIND_CHARTER = 1, TRUST_KIND_CERT = 2, TRUST_KIND_REVOKE = 3,
    TRUST_KIND_POLICY = 4,   /* a global policy set, tag "trib/policy/v1" (node/policy.c checks it) */
    TRUST_KIND_ROTATE = 5,   /* a key hand-over signed by the old key, tag "trib/rotate/v1" (cert.h) */
} trust_kind_t;

/* Why a trust object or a key was refused; trust_verdict_name gives the metric label. */
typedef enum {
    TRUST_OK = 0,
    TRUST_MALFORMED,         /* not decodable, wrong sizes, bad shape, oversize */
    TRUST_FORGED,            /* a signature does not verify over TAG || body */
    TRUST_BELOW_THRESHOLD,   /* fewer distinct current roots signed than the threshold */
    TRUST_WRONG_FEDERATION,  /* names another federation id */
    TRUST_WRONG_DOMAIN,      /* certificate for another domain */
    TRUST_WRONG_KEY,         /* certificate for another node key */
    TRUST_EXPIRED,           /* after not_after + skew */
    TRUST_NOT_YET_VALID,     /* before not_before - skew */
    TRUST_REVOKED,
    TRUST_STALE_VERSION,     /* charter version <= the one held (a replay) */
    TRUST_VERSION_GAP,       /* charter version > held + 1 */
    TRUST_BROKEN_CHAIN,      /* charter prev_hash is not the held charter's hash */
    TRUST_UNCERTIFIED,       /* no certificate of this key is held */
    TRUST_ROTATED,           /* the key handed its domain over and the overlap window has ended */
    TRUST_VERDICT_COUNT
} trust_verdict_t;

const char *trust_verdict_name(trust_verdict_t v);   /* "ok", "forged", ... */
const char *trust_kind_name(trust_kind_t k);         /* "charter", "certificate", "revocation", "policy" */
/* The file form's "kind": "trib.charter", "trib.cert", "trib.revocation", "trib.policy",
 * "trib.rotation"; "" else. */
const char *trust_file_kind_name(trust_kind_t k);

/* ---------------------------------------------------------------- the signed envelope */

/* The tag signed before the body, NUL included: "trib/charter/v1", "trib/cert/v1",
 * "trib/revoke/v1", "trib/policy/v1". *len gets the byte count signed (strlen + 1). */
const uint8_t *trust_tag(trust_kind_t k, size_t *len);
/* Ed25519 over TAG || body. 0 or -1. */
int trust_sign(trust_kind_t k, const uint8_t *body, size_t len, const identity_t *id, uint8_t sig[64]);
int trust_sig_ok(trust_kind_t k, const uint8_t *body, size_t len, const uint8_t pk[32],
                 const uint8_t sig[64]);

/* A TrustSigned envelope: the body signed by each of signers (n >= 1, no duplicates needed:
 * the caller's list is used as given). *out malloc'd. 0 or -1 (oversize, OOM). */
int trust_envelope_make(trust_kind_t k, const uint8_t *body, size_t len,
                        const identity_t *const *signers, size_t n, uint8_t **out, size_t *outlen);

/* Decodes an envelope received from a file or a peer: bounds the size, decodes, checks the
 * kind is want, every signer is 32 bytes, every signature 64, at most TRUST_MAX_SIGS, body
 * non-empty. Does NOT check signatures. NULL with err on failure; free with
 * trib__trust_signed__free_unpacked. */
Trib__TrustSigned *trust_envelope_parse(const uint8_t *bytes, size_t len, trust_kind_t want,
                                        char *err, size_t errlen);

/* ---------------------------------------------------------------- the charter */

typedef enum { CHARTER_ROLE_ROOT = 1, CHARTER_ROLE_GOVERNANCE = 2 } charter_role_t;

typedef struct {
    uint8_t key[ID_PK_LEN];
    charter_role_t role;
} charter_key_t;

typedef struct {
    uint8_t fed_id[FED_ID_LEN];
    uint64_t version;                     /* 1, 2, ... */
    uint8_t prev_hash[TRUST_HASH_LEN];    /* all zero for version 1 */
    uint8_t hash[TRUST_HASH_LEN];         /* BLAKE2b-256 of the signed body */
    size_t nkeys;
    charter_key_t keys[CHARTER_MAX_KEYS];
    uint32_t threshold;                   /* root signatures needed */
    uint32_t gov_threshold;               /* governance signatures needed (0 if no governance key) */
    int64_t issued_ms;
    size_t nsigners;                      /* distinct root keys whose signatures verified */
    uint8_t signers[TRUST_MAX_SIGS][ID_PK_LEN];
    uint8_t *bytes;                       /* the TrustSigned as made or received (store, gossip) */
    size_t len;
} charter_t;

/* Signs draft (fed_id, keys, thresholds and issued_ms filled by the caller; prev NULL for a new
 * federation, which gets version 1) with roots, filling version, prev_hash (from prev), hash,
 * signers and bytes. A new federation needs a threshold of its own roots; an update a
 * threshold of prev's roots AND a threshold of its own (so every version is also a valid
 * anchor, and the new root set is known to be able to sign). Distinct keys. 0 or -1 with err. */
int charter_sign(const charter_t *prev, charter_t *draft, const identity_t *const *roots, size_t n,
                 char *err, size_t errlen);

/* Verifies envelope bytes as a charter. With held == NULL, as a trust anchor given by the
 * operator (any version; signed by a threshold of its own roots). With held, as the next
 * version of held: same federation, version held + 1, prev_hash == held->hash, signed by a
 * threshold of held's roots (a removed root cannot sign the next) and of its own. out is
 * filled only on TRUST_OK (signers: the roots of out that signed); err says what is wrong. */
trust_verdict_t charter_verify(const charter_t *held, const uint8_t *bytes, size_t len,
                               charter_t *out, char *err, size_t errlen);
void charter_free(charter_t *c);                          /* frees bytes; accepts zeroed */

/* 0 when roots (secret keys held by the caller) may sign for c: each a root of c, distinct,
 * at least c->threshold of them; else -1 with err naming the key or the shortfall. */
int charter_roots_can_sign(const charter_t *c, const identity_t *const *roots, size_t n, char *err,
                           size_t errlen);

/* 1 when key is a root (or governance key) of c. */
int charter_is_root(const charter_t *c, const uint8_t key[ID_PK_LEN]);
int charter_is_governance(const charter_t *c, const uint8_t key[ID_PK_LEN]);

/* Counts distinct roots of c with a valid signature over TAG(k) || env->body, into signers
 * (may be NULL). TRUST_FORGED if any signature fails to verify; signatures by keys that are
 * not roots of c verify but count nothing. TRUST_BELOW_THRESHOLD when fewer than c->threshold.
 * This is the check every certificate, revocation and charter update goes through. */
trust_verdict_t charter_check_sigs(const charter_t *c, trust_kind_t k, const Trib__TrustSigned *env,
                                   size_t *nsigners, uint8_t signers[][ID_PK_LEN], char *err,
                                   size_t errlen);

/* ---------------------------------------------------------------- file form */

/* The readable JSON of a verified charter (kind, federation, version, hash, prev_hash,
 * threshold, governance_threshold, issued, keys, signed_by, signed). New reference. */
json_t *charter_to_json(const charter_t *c);
/* Loads a charter.json as a trust anchor (charter_verify with held NULL), checking the
 * readable fields against the signed bytes. err names the file. */
trust_verdict_t charter_load(const char *path, charter_t *out, char *err, size_t errlen);

/* Shared by the file forms: reads path (at most TRUST_FILE_MAX bytes) as a JSON object whose
 * "kind" is "trib.<kind>" and returns the base64-decoded "signed" bytes (malloc'd) and the
 * object (new reference). 0 or -1 with err naming the file. */
int trust_file_read(const char *path, trust_kind_t want, json_t **obj, uint8_t **bytes, size_t *len,
                    char *err, size_t errlen);
/* The base64 "signed" member of a trust object file's JSON (at most TRUST_MAX_BYTES decoded,
 * strictly base64: nothing after it), malloc'd into *bytes. 0 or -1 with why (no file name). */
int trust_signed_decode(const json_t *obj, uint8_t **bytes, size_t *len, char *why, size_t whylen);
/* Reads only the "kind" of a trust file: the kind, or 0 with err. */
trust_kind_t trust_file_kind(const char *path, char *err, size_t errlen);
/* 0 when the loaded object equals view (the readable form rebuilt from the signed bytes); else
 * -1 with err naming the first field that differs. */
int trust_file_matches(const char *path, json_t *obj, json_t *view, char *err, size_t errlen);
/* Writes obj to path (mode 0644, O_EXCL: refuses to overwrite), fsync'd. 0 or -1 with err. */
int trust_file_write(const char *path, json_t *obj, char *err, size_t errlen);

/* Text helpers shared with cert.c and the CLI. */
void trust_hex(const uint8_t *p, size_t n, char *out);            /* out: 2n + 1 bytes */
char *trust_b64(const uint8_t *p, size_t n);                      /* malloc'd base64, or NULL */
void trust_time_text(int64_t ms, char out[32]);                   /* ISO 8601 UTC with ms */
int trust_time_parse(const char *s, int64_t *ms);                 /* the same form; 0 or -1 */

#endif
