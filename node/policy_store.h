/* node/policy_store.h - the policy set in force on a node, and signed policy sets (DESIGN §14).
 *
 * A signed set is a TrustSigned of kind TRUST_KIND_POLICY ("trib/policy/v1") whose body is a
 * PolicySet (federation id, version, issued time, the YAML), signed by a threshold of the
 * charter's governance keys. Its file form is the trust file shape (gossip/charter.h): readable
 * fields plus "signed", kind "trib.policy".
 *
 * Owns: signing and verifying sets, the file form, the set in force (a reference-counted
 * snapshot readers take without blocking a new set), persisting it (DATA/policy.signed, written
 * atomically) and the doors signed sets come in by: policy_take then policy_store_keep for what
 * the federation log holds (HTTP submit goes through it), and policy_offer, which takes and keeps
 * at once (its callers now are the store's tests only). In open mode the operator gives the YAML (--policy FILE): not persisted,
 * given again at each start.
 * Must not: touch LMDB or the network, print, or evaluate products (node/policy_node.c does). */
#ifndef TRIB_POLICY_STORE_H
#define TRIB_POLICY_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/charter.h"
#include "gossip/identity.h"
#include "node/policy.h"

typedef struct policy_store policy_store_t;

#define POLICY_HISTORY_MAX 32   /* sets kept to judge entries by the set in force at their time */

/* Why a set was refused (policy_verify, policy_offer, policy_store_set_open). */
enum {
    POLICY_REFUSED_BAD = -1,        /* malformed, oversize, or its own tests fail (400) */
    POLICY_REFUSED_SIGNATURE = -2,  /* a signature does not verify, below the governance threshold,
                                       another federation (403) */
    POLICY_REFUSED_STALE = -3,      /* not newer than the set in force (409) */
    POLICY_REFUSED_OPEN = -4,       /* a signed set offered to a node without a charter (409) */
    POLICY_REFUSED_CONFLICT = -5,   /* another set with the same version is held and wins the tie (409) */
    POLICY_REFUSED_STORAGE = -6,    /* its file (or its federation log commit) could not be written: not in
                                       force (500) */
    POLICY_REFUSED_NO_SPACE = -7,   /* the same, for want of disk space (507) */
    POLICY_REFUSED_BUSY = -8,       /* the federation log's loop did not take it in time: not in force yet, it
                                       may still be taken (503 with Retry-After) */
};

/* Two different signed sets with one version (governance signed twice by mistake): whichever
 * arrives first, every node keeps the one whose body hash (BLAKE2b-256 of the signed PolicySet) is
 * higher, bytewise; the other is refused as POLICY_REFUSED_CONFLICT. Each such meeting is counted
 * once (policy_store_conflicts). The same body under other signatures is the same set. */

/* What is known about a set beyond its rules. */
typedef struct {
    uint64_t version;
    int signed_set;                       /* 0: open mode, given by the operator */
    int64_t issued_ms;
    size_t nsigners;
    uint8_t signers[TRUST_MAX_SIGS][ID_PK_LEN];
    char source[64];                      /* "signed", "--policy FILE", "operator (open mode)" */
    uint8_t hash[TRUST_HASH_LEN];         /* signed: BLAKE2b-256 of the body (the tie-break); open: 0 */
} policy_info_t;

/* A verified signed set. */
typedef struct {
    policy_set_t *ps;
    policy_info_t info;
    char *text;                           /* the YAML, NUL-terminated */
    uint8_t fed_id[FED_ID_LEN];
} policy_signed_t;

/* Makes a signed set of yaml (parsed, tests run first: a set whose tests fail is not signed)
 * for the charter's federation, signed by keys (governance keys of ch, distinct, at least its
 * governance threshold). *out malloc'd envelope bytes. 0 or -1 with err. */
int policy_sign(const char *yaml, size_t len, const charter_t *ch, const identity_t *const *keys, size_t n,
                int64_t issued_ms, uint8_t **out, size_t *outlen, char *err, size_t errlen);
/* Verifies envelope bytes against ch: kind, federation, every signature, a threshold of distinct
 * governance keys, the YAML parses, its version equals the signed one, its tests pass.
 * Fills out (free with policy_signed_free). 0, or POLICY_REFUSED_* with err. */
int policy_verify(const uint8_t *bytes, size_t len, const charter_t *ch, policy_signed_t *out, char *err,
                  size_t errlen);
/* Decodes without checking signatures (for `trib policy show FILE` without a charter). */
int policy_decode(const uint8_t *bytes, size_t len, policy_signed_t *out, char *err, size_t errlen);
void policy_signed_free(policy_signed_t *s);

/* File form: {"kind":"trib.policy","federation","version","issued","signed_by","signed"}. */
json_t *policy_signed_json(const policy_signed_t *s, const uint8_t *bytes, size_t len);

/* ---------------------------------------------------------------- the set in force */

/* dir: the data dir (DATA/policy.signed is loaded when present, and verified against ch when
 * ch is given). NULL with err on a broken file. */
policy_store_t *policy_store_open(const char *dir, const charter_t *ch, char *err, size_t errlen);
void policy_store_close(policy_store_t **sp);
/* A chartered node's start, before policy_store_open: what it enforces is what its federation
 * log stored, and older code wrote a set's files before a commit that could then fail. Each signed
 * set file in dir (policy.signed, the history's policy.v<version>.signed) whose body hash held
 * says the log does not hold is renamed to NAME.unstored (kept for the operator to look at; never
 * loaded). Returns how many, names (cap bytes) listing them for the caller's log line, or -1 with
 * err when one cannot be renamed (it must not be loaded). */
typedef int (*policy_held_fn)(void *ctx, const uint8_t hash[TRUST_HASH_LEN]);
int policy_store_set_aside(const char *dir, policy_held_fn held, void *ctx, char *names, size_t cap, char *err,
                           size_t errlen);

/* Takes and keeps a signed set at once (no node path calls it since an operator's set goes
 * through the federation log: tests/test_policy.c does): refuses (POLICY_REFUSED_*, err) a set not verifying against ch,
 * one whose version is not above the set in force (STALE; CONFLICT for another body of that
 * version losing the tie), one whose tests fail; otherwise persists it and puts it in force (0:
 * also another body of the version in force winning the tie; STORAGE or NO_SPACE when its file
 * could not be written: not in force). ch NULL: POLICY_REFUSED_OPEN (open mode has no governance
 * keys). */
int policy_offer(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                 size_t errlen);
/* policy_offer, then (a set older than the one in force) policy_store_add_history, without writing
 * any file: for a set the federation log stores, whose files policy_store_keep writes once it is
 * stored. 0 also when the same set is held already (in force or in the history). *took (may be
 * NULL): 1 put in force, 2 added to the history, 0 held already or refused. */
int policy_take(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, int *took, char *err,
                size_t errlen);
/* Writes the files of a held set (bytes as taken): DATA/policy.signed when it is in force, and its
 * history file; a file holding these bytes already is left as it is. 0, POLICY_REFUSED_STALE when
 * the set is not held (nothing written), POLICY_REFUSED_STORAGE or _NO_SPACE with err. */
int policy_store_keep(policy_store_t *s, const uint8_t *bytes, size_t len, char *err, size_t errlen);
/* Where the signed set of bytes is held, by version and body hash (its signatures are not
 * checked here): 1 in force, 2 in the history, 0 not held. */
int policy_store_held(policy_store_t *s, const uint8_t *bytes, size_t len);
/* What policy_offer would say, without installing anything: 0 or POLICY_REFUSED_* with err. */
int policy_store_check(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                       size_t errlen);
/* A verified set older than the one in force, not yet held (a peer's, arriving after a newer
 * one): added to the history only (persisted; the generation increases, so entries of its time
 * are judged again); another body of a version held there replaces it when it wins the tie.
 * 0, or POLICY_REFUSED_* with err (STALE: in force or held already, or older than the whole
 * history kept; CONFLICT: another body of a held version, losing the tie). */
int policy_store_add_history(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                             size_t errlen);
/* Open mode: the operator's YAML (tests must pass; version above the one in force unless
 * nothing is), kept in a file first and in force only once kept. 0, POLICY_UNCHANGED (the very
 * text in force sent again: nothing written), POLICY_REFUSED_BAD, POLICY_REFUSED_STALE, or
 * POLICY_REFUSED_STORAGE / _NO_SPACE (not in force) with err. */
#define POLICY_UNCHANGED 1
int policy_store_set_open(policy_store_t *s, const char *yaml, size_t len, const char *source, char *err,
                          size_t errlen);

/* The set in force (NULL: none) with its info; every non-NULL result is given back with
 * policy_store_put. Cheap (a mutex and a reference count). */
const policy_set_t *policy_store_get(policy_store_t *s, policy_info_t *info);
void policy_store_put(policy_store_t *s, const policy_set_t *ps);
/* The set in force at time t_ms (an entry's time): of the sets that came into force on this node
 * (the last POLICY_HISTORY_MAX, kept across restarts as DATA/policy.v<version>.signed), the
 * highest version whose effective time (effective_from, else its signing time; 0 for an open
 * mode set without effective_from) is <= t_ms. NULL (info zeroed) when none was. *gen (may be
 * NULL): the generation the answer belongs to. Give a non-NULL result back with policy_store_put. */
const policy_set_t *policy_store_get_at(policy_store_t *s, int64_t t_ms, policy_info_t *info, uint64_t *gen);
/* Increases each time a set comes into force. */
uint64_t policy_store_generation(policy_store_t *s);
/* How many times a signed set met another of the same version with a different body (either side
 * of the tie), since the store was opened; a set met before (the same body again: taken once
 * verified and again once stored, or under other signatures) is not counted again. */
uint64_t policy_store_conflicts(policy_store_t *s);
/* {"version","signed","issued","signers":[hex],"source","rules","tests","hash"(signed: hex of the body
 * hash),"text"} or {"version":0}. */
json_t *policy_store_json(policy_store_t *s);

#endif
