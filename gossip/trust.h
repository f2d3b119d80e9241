/* gossip/trust.h - what a chartered node believes: the charter it holds and the certificates
 * and revocations it has verified against it, and the two questions the node asks of them.
 *
 * Owns: taking trust objects offered as bytes (from files or peers) through verification into
 * memory; re-checking held certificates when the charter changes; answering "may this CURVE
 * key connect now?" (the ZAP handler) and "may this key sign this domain's entry made at this
 * time?" (catalog acceptance) from verified state, without an Ed25519 verify per question.
 * Threads: a store may be shared (the gossip loop's ZAP and hellos, the catalog worker, the
 * federation log, HTTP): every call below takes the store's own rwlock, offers to write, questions
 * to read, so none needs outside locking. Pointers into the store (trust_charter, *cert of
 * trust_admit_curve, trust_cert_at, trust_revocation_at) stay valid only while nothing is offered:
 * a caller sharing the store copies what it needs between trust_read_lock and unlock, or asks
 * trust_admit_info, which copies.
 * Must not: touch LMDB or the network (the caller persists and gossips the bytes it is given
 * back), or hold its lock while calling out. */
#ifndef TRIB_TRUST_H
#define TRIB_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/cert.h"
#include "gossip/charter.h"

#define TRUST_MAX_CERTS 65536
#define TRUST_MAX_REVS  65536
#define TRUST_MAX_ROTS  65536
#define TRUST_HANDOVER_STEPS 16   /* rotations trust_handover follows back from a key */

typedef struct trust trust_t;

/* A store holding a copy of anchor (a verified charter, e.g. from charter_load). NULL on OOM. */
trust_t *trust_new(const charter_t *anchor);
void trust_destroy(trust_t **tp);

const charter_t *trust_charter(const trust_t *t);

/* Offers bytes as received. TRUST_OK when now held (*added 1 if new, 0 if already held); any
 * other verdict means refused, with err saying why (count it under trust_verdict_name).
 * A charter must be the next version of the held one; on success every held certificate is
 * re-checked against the new roots. Certificates are kept whatever their window (old entries
 * are judged at their own time); revocations are kept even if their signers later leave. A
 * charter, certificate or revocation whose body is held under other signed bytes is verified again
 * (ok only when its signatures are good; never held twice): a charter of the held or an older
 * version by its own roots, forged (not stale_version) when they fail. */
trust_verdict_t trust_offer_charter(trust_t *t, const uint8_t *b, size_t n, int *added, char *err,
                                    size_t errlen);
trust_verdict_t trust_offer_cert(trust_t *t, const uint8_t *b, size_t n, int *added, char *err,
                                 size_t errlen);
trust_verdict_t trust_offer_revocation(trust_t *t, const uint8_t *b, size_t n, int *added,
                                       char *err, size_t errlen);

/* Verifies bytes of kind (charter, certificate, revocation, key hand-over) as the matching
 * trust_offer_* would, against the store as it is now, and holds nothing: TRUST_OK when that offer
 * would hold it (or holds it already), else its verdict with err. For an object that must not be
 * in force before it is stored (an operator's: gossip/fedlog.c checks it, commits it, then offers
 * it). */
trust_verdict_t trust_check(trust_t *t, trust_kind_t kind, const uint8_t *b, size_t n, char *err, size_t errlen);

/* A key hand-over (kind 5, cert.h rotation_t), held when its one signature is the old key's and
 * the old key was certified for the domain at the hand-over's issued time (uncertified,
 * wrong_domain, revoked ... otherwise; forged when the signature fails). Once the new key holds a
 * certificate for the domain, the old key is refused (TRUST_ROTATED) for connections and entries
 * after effective + overlap (no skew allowance: the owner's promise); what it signed before
 * stays valid. */
trust_verdict_t trust_offer_rotation(trust_t *t, const uint8_t *b, size_t n, int *added, char *err,
                                     size_t errlen);
/* 1 when domain's log may continue under key `to` where key `from` signed its head: a chain of at
 * most TRUST_HANDOVER_STEPS steps from `to` back to `from`, each a held hand-over (rotation), or a
 * charter-backed certificate whose prev_serial names a certificate of the earlier key (the roots
 * certified the continuation: a lost key, which can sign no hand-over). 0 else. The caller still
 * checks that `to` may sign the entry (trust_entry_ok): a revoked key's later entries stay refused. */
int trust_handover(const trust_t *t, const char *domain, const uint8_t from[ID_PK_LEN], const uint8_t to[ID_PK_LEN]);
/* The keys trust_handover walks back through from key (nearest first, at most
 * TRUST_HANDOVER_STEPS): the keys whose log key continues. Returns how many. */
size_t trust_predecessors(const trust_t *t, const char *domain, const uint8_t key[ID_PK_LEN],
                          uint8_t out[TRUST_HANDOVER_STEPS][ID_PK_LEN]);
/* 1 when a held hand-over (so signed by key, while certified) gives key's domain to another key:
 * key said it speaks no more, whatever its certificate's overlap still allows. 0 else. */
int trust_handed_over(const trust_t *t, const uint8_t key[ID_PK_LEN]);
size_t trust_rotation_count(const trust_t *t);
/* The version of the charter held now (a new one re-checks every certificate against its roots). */
uint64_t trust_charter_version(const trust_t *t);

/* ZAP: may the peer whose CURVE public key is curve_pk connect at now_ms (TRUST_SKEW_MS)?
 * On TRUST_OK, *cert is its certificate (valid until the store changes). Verdicts: ok,
 * uncertified, below_threshold (only certificates the current roots no longer back), revoked,
 * expired, not_yet_valid, rotated. */
trust_verdict_t trust_admit_curve(const trust_t *t, const uint8_t curve_pk[32], int64_t now_ms,
                                  const cert_t **cert, char *err, size_t errlen);

/* trust_admit_curve, with the facts of the certificate copied out (filled on TRUST_OK; zeroed
 * otherwise), for callers that share the store. */
typedef struct {
    char domain[64];
    uint8_t node_key[ID_PK_LEN];
    uint64_t serial;
    int64_t not_before_ms, not_after_ms;
} trust_info_t;
trust_verdict_t trust_admit_info(const trust_t *t, const uint8_t curve_pk[32], int64_t now_ms, trust_info_t *info,
                                 char *err, size_t errlen);

/* Catalog acceptance: may signer sign an entry of domain made at entry_ms? ok when a held,
 * charter-backed certificate of signer for domain covers entry_ms (skew allowed) and no
 * revocation of it or its key is effective at entry_ms. Else uncertified, wrong_domain (the key
 * is certified, for another domain: a rogue twin or a misconfigured node), below_threshold,
 * revoked, expired, not_yet_valid. The caller still checks the entry's signature, and should
 * refuse entry times that go backwards in a domain's log (a key may not backdate into an
 * earlier window) or lie beyond now + skew. */
trust_verdict_t trust_entry_ok(const trust_t *t, const char *domain, const uint8_t signer[ID_PK_LEN],
                               int64_t entry_ms, char *err, size_t errlen);

/* The verdict on c (held or not; its signatures are not checked) for key acting for domain at
 * t_ms, against the revocations held: cert_check_claim with the store's revocation set (wrong_domain,
 * wrong_key, revoked naming the revocation, not_yet_valid, expired; else ok). For a certificate an
 * operator hands in that must be refused before anything is stored. */
trust_verdict_t trust_claim(const trust_t *t, const cert_t *c, const char *domain, const uint8_t key[ID_PK_LEN],
                            int64_t t_ms, char *err, size_t errlen);

/* The first instant after now_ms (wall ms) at which a verdict of trust_admit_curve may change with
 * nothing offered: a held certificate's not_before (skew allowed) or the end of its window, a held
 * revocation's effective time, the end of a hand-over's overlap. 0 when none lies ahead. The
 * caller judges again from then on (the member list: gossip/zap.c). */
int64_t trust_next_change(const trust_t *t, int64_t now_ms);

/* Keeps offers out while a caller uses pointers into the store (read lock; it may ask questions
 * meanwhile, but must not offer). */
void trust_read_lock(const trust_t *t);
void trust_read_unlock(const trust_t *t);

/* Held objects, for persisting and gossip (bytes exactly as verified). */
size_t trust_cert_count(const trust_t *t);
const cert_t *trust_cert_at(const trust_t *t, size_t i);
size_t trust_revocation_count(const trust_t *t);
const revocation_t *trust_revocation_at(const trust_t *t, size_t i);

#endif
