/* gossip/trust.c - the node's verified trust state: held charter, certificates, revocations.
 *
 * Owns: the in-memory store (arrays, deduplicated by body hash), verifying every offer before
 * it is held, re-checking certificate signatures when the charter advances, and the admission
 * and entry verdicts computed from the cached signature results.
 * Must not: touch LMDB or the network, print, or take a lock (one owning thread). */
#include "gossip/trust.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cert_t cert;
    uint8_t curve[32];     /* the node key as a CURVE key, for the ZAP lookup */
    int backed;            /* signatures reach the held charter's threshold */
} held_cert_t;

/* A held key hand-over: old_key gave domain to new_key; old_key is retired after until_ms once
 * new_key holds a certificate for the domain. */
typedef struct {
    char domain[64];
    uint8_t old_key[ID_PK_LEN], new_key[ID_PK_LEN];
    int64_t until_ms;                /* effective + overlap */
    uint8_t hash[TRUST_HASH_LEN];
} held_rot_t;

/* Open addressing, linear probing: slot = certificate index + 1, 0 empty. Keys are public
 * Ed25519/CURVE keys chosen by their owners, so a hostile owner could make them collide on
 * purpose: costs are bounded by TRUST_MAX_CERTS and the table stays at most half full. */
typedef struct {
    uint32_t *slot;
    size_t mask;           /* size - 1, size a power of two */
} index_t;

struct trust {
    charter_t charter;
    held_cert_t *certs;
    size_t ncerts, capcerts;
    index_t by_key, by_curve, by_serial;   /* by_serial: predecessor's prev_serial lookup */
    revocation_t *revs;    /* with envelopes and bytes, for gossip */
    size_t nrevs, caprevs;
    revset_t revset;       /* the facts, for lookups */
    held_rot_t *rots;      /* key hand-overs (few: one per rotation of a certified node) */
    size_t nrots, caprots;
    pthread_rwlock_t *mu;  /* offers write, questions read (a pointer: questions take a const store) */
};

static int charter_copy(charter_t *dst, const charter_t *src)
{
    *dst = *src;
    dst->bytes = malloc(src->len ? src->len : 1);
    if (dst->bytes == NULL)
        return -1;
    memcpy(dst->bytes, src->bytes, src->len);
    return 0;
}

trust_t *trust_new(const charter_t *anchor)
{
    trust_t *t = calloc(1, sizeof *t);
    if (t == NULL || sodium_init() < 0 || (t->mu = malloc(sizeof *t->mu)) == NULL ||
        pthread_rwlock_init(t->mu, NULL) != 0) {
        if (t)
            free(t->mu);
        free(t);
        return NULL;
    }
    if (charter_copy(&t->charter, anchor) != 0) {
        pthread_rwlock_destroy(t->mu);
        free(t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void trust_destroy(trust_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    trust_t *t = *tp;
    for (size_t i = 0; i < t->ncerts; i++)
        cert_free(&t->certs[i].cert);
    for (size_t i = 0; i < t->nrevs; i++)
        revocation_free(&t->revs[i]);
    free(t->certs);
    free(t->by_key.slot);
    free(t->by_curve.slot);
    free(t->by_serial.slot);
    free(t->revs);
    free(t->rots);
    revset_free(&t->revset);
    charter_free(&t->charter);
    pthread_rwlock_destroy(t->mu);
    free(t->mu);
    free(t);
    *tp = NULL;
}

const charter_t *trust_charter(const trust_t *t)
{
    return &t->charter;
}

/* ---------------------------------------------------------------- index */

static size_t bucket(const uint8_t *k, size_t mask)
{
    uint64_t v;
    memcpy(&v, k, sizeof v);
    return (size_t)((v * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

enum { BY_KEY, BY_CURVE, BY_SERIAL };

static const uint8_t *key_of(const trust_t *t, size_t i, int which)
{
    return which == BY_CURVE  ? t->certs[i].curve
         : which == BY_SERIAL ? (const uint8_t *)&t->certs[i].cert.serial
                              : t->certs[i].cert.node_key;
}

static void index_put(trust_t *t, index_t *ix, int which, size_t i)
{
    size_t b = bucket(key_of(t, i, which), ix->mask);
    while (ix->slot[b] != 0)
        b = (b + 1) & ix->mask;
    ix->slot[b] = (uint32_t)i + 1;
}

/* Room for one more certificate in both indexes (rebuilt at twice the size when half full). */
static int index_reserve(trust_t *t)
{
    size_t size = t->by_key.slot ? t->by_key.mask + 1 : 0;
    if (2 * (t->ncerts + 1) <= size)
        return 0;
    size_t nsize = size ? 2 * size : 128;
    uint32_t *a = calloc(nsize, sizeof *a), *b = calloc(nsize, sizeof *b), *c = calloc(nsize, sizeof *c);
    if (a == NULL || b == NULL || c == NULL) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    free(t->by_key.slot);
    free(t->by_curve.slot);
    free(t->by_serial.slot);
    t->by_key = (index_t){ a, nsize - 1 };
    t->by_curve = (index_t){ b, nsize - 1 };
    t->by_serial = (index_t){ c, nsize - 1 };
    for (size_t i = 0; i < t->ncerts; i++) {
        index_put(t, &t->by_key, BY_KEY, i);
        index_put(t, &t->by_curve, BY_CURVE, i);
        index_put(t, &t->by_serial, BY_SERIAL, i);
    }
    return 0;
}

/* ---------------------------------------------------------------- offers */

/* 1 when b is exactly the signed bytes held (verified when they were stored): a body held already
 * under other signatures is verified again, so a forged resend is never answered ok. */
static int same_signed(const uint8_t *held, size_t hlen, const uint8_t *b, size_t n)
{
    return held && hlen == n && memcmp(held, b, n) == 0;
}

/* Each offer below, with dry, only verifies (the store is not changed: trust_check). */
static trust_verdict_t offer_charter(trust_t *t, const uint8_t *b, size_t n, int *added, int dry, char *err,
                                    size_t errlen)
{
    charter_t next;
    if (added)
        *added = 0;
    trust_verdict_t v = charter_verify(&t->charter, b, n, &next, err, errlen);
    if (v == TRUST_STALE_VERSION && same_signed(t->charter.bytes, t->charter.len, b, n))
        return TRUST_OK;   /* the held version itself, offered again */
    if (v == TRUST_STALE_VERSION) {
        /* the held or an older version under other signed bytes: its signatures are verified again
         * by its own roots (as an anchor's), so a forged resend is refused as forged, not as stale;
         * the held version signed again by its roots is held */
        charter_t again;
        char why[300];
        trust_verdict_t s = charter_verify(NULL, b, n, &again, why, sizeof why);
        if (s != TRUST_OK) {
            snprintf(err, errlen, "%s", why);
            return s;
        }
        int same = memcmp(again.hash, t->charter.hash, TRUST_HASH_LEN) == 0;
        charter_free(&again);
        if (same)
            return TRUST_OK;
    }
    if (v != TRUST_OK)
        return v;
    if (dry) {
        charter_free(&next);
        return TRUST_OK;
    }
    charter_free(&t->charter);
    t->charter = next;
    char ignore[160];
    for (size_t i = 0; i < t->ncerts; i++)
        t->certs[i].backed = charter_check_sigs(&t->charter, TRUST_KIND_CERT, t->certs[i].cert.env,
                                                NULL, NULL, ignore, sizeof ignore) == TRUST_OK;
    if (added)
        *added = 1;
    return TRUST_OK;
}

static trust_verdict_t offer_cert(trust_t *t, const uint8_t *b, size_t n, int *added, int dry, char *err,
                                 size_t errlen)
{
    cert_t c;
    if (added)
        *added = 0;
    if (cert_parse(b, n, &c, err, errlen) != 0)
        return TRUST_MALFORMED;
    int held = 0;
    for (size_t i = 0; i < t->ncerts && !held; i++)
        if (memcmp(t->certs[i].cert.hash, c.hash, TRUST_HASH_LEN) == 0) {
            if (same_signed(t->certs[i].cert.bytes, t->certs[i].cert.len, b, n)) {
                cert_free(&c);
                return TRUST_OK;
            }
            held = 1;   /* its body under other signatures: checked, never held twice */
        }
    trust_verdict_t v = TRUST_WRONG_FEDERATION;
    if (memcmp(c.fed_id, t->charter.fed_id, FED_ID_LEN) != 0)
        snprintf(err, errlen, "certificate for %s: issued in another federation", c.domain);
    else
        v = charter_check_sigs(&t->charter, TRUST_KIND_CERT, c.env, NULL, NULL, err, errlen);
    if (held) {
        cert_free(&c);
        return v;
    }
    if (v == TRUST_OK && t->ncerts == TRUST_MAX_CERTS) {
        snprintf(err, errlen, "certificate for %s: %d certificates held already", c.domain,
                 TRUST_MAX_CERTS);
        v = TRUST_MALFORMED;
    }
    if (dry) {
        cert_free(&c);
        return v;
    }
    if (v == TRUST_OK && index_reserve(t) != 0) {
        snprintf(err, errlen, "certificate: out of memory");
        v = TRUST_MALFORMED;
    }
    if (v == TRUST_OK && t->ncerts == t->capcerts) {
        size_t cap = t->capcerts ? 2 * t->capcerts : 64;
        held_cert_t *p = realloc(t->certs, cap * sizeof *p);
        if (p == NULL) {
            snprintf(err, errlen, "certificate: out of memory");
            v = TRUST_MALFORMED;
        } else {
            t->certs = p;
            t->capcerts = cap;
        }
    }
    if (v != TRUST_OK) {
        cert_free(&c);
        return v;
    }
    held_cert_t *h = &t->certs[t->ncerts];
    memcpy(h->curve, c.curve, sizeof h->curve);    /* cert_parse mapped the node key */
    h->cert = c;
    h->backed = 1;
    index_put(t, &t->by_key, BY_KEY, t->ncerts);
    index_put(t, &t->by_curve, BY_CURVE, t->ncerts);
    index_put(t, &t->by_serial, BY_SERIAL, t->ncerts);
    t->ncerts++;
    if (added)
        *added = 1;
    return TRUST_OK;
}

static trust_verdict_t offer_revocation(trust_t *t, const uint8_t *b, size_t n, int *added, int dry,
                                       char *err, size_t errlen)
{
    revocation_t r;
    if (added)
        *added = 0;
    if (revocation_parse(b, n, &r, err, errlen) != 0)
        return TRUST_MALFORMED;
    int held = 0;
    for (size_t i = 0; i < t->nrevs && !held; i++)
        if (memcmp(t->revs[i].hash, r.hash, TRUST_HASH_LEN) == 0) {
            if (same_signed(t->revs[i].bytes, t->revs[i].len, b, n)) {
                revocation_free(&r);
                return TRUST_OK;
            }
            held = 1;   /* its body under other signatures: checked, never held twice */
        }
    trust_verdict_t v = revocation_verify(&t->charter, &r, err, errlen);
    if (held) {
        revocation_free(&r);
        return v;
    }
    if (v == TRUST_OK && t->nrevs == TRUST_MAX_REVS) {
        snprintf(err, errlen, "revocation: %d revocations held already", TRUST_MAX_REVS);
        v = TRUST_MALFORMED;
    }
    if (dry) {
        revocation_free(&r);
        return v;
    }
    if (v == TRUST_OK && t->nrevs == t->caprevs) {
        size_t cap = t->caprevs ? 2 * t->caprevs : 16;
        revocation_t *p = realloc(t->revs, cap * sizeof *p);
        if (p == NULL) {
            snprintf(err, errlen, "revocation: out of memory");
            v = TRUST_MALFORMED;
        } else {
            t->revs = p;
            t->caprevs = cap;
        }
    }
    if (v == TRUST_OK && revset_add(&t->revset, &r) < 0) {
        snprintf(err, errlen, "revocation: out of memory");
        v = TRUST_MALFORMED;
    }
    if (v != TRUST_OK) {
        revocation_free(&r);
        return v;
    }
    t->revs[t->nrevs++] = r;
    if (added)
        *added = 1;
    return TRUST_OK;
}

/* 1 when some held, charter-backed certificate binds key to domain (whatever its window). */
static int certified_for(const trust_t *t, const char *domain, const uint8_t key[ID_PK_LEN])
{
    if (t->by_key.slot == NULL)
        return 0;
    for (size_t b = bucket(key, t->by_key.mask); t->by_key.slot[b] != 0; b = (b + 1) & t->by_key.mask) {
        const held_cert_t *h = &t->certs[t->by_key.slot[b] - 1];
        if (h->backed && memcmp(h->cert.node_key, key, ID_PK_LEN) == 0 && strcmp(h->cert.domain, domain) == 0)
            return 1;
    }
    return 0;
}

static trust_verdict_t entry_ok(const trust_t *t, const char *domain, const uint8_t signer[ID_PK_LEN],
                               int64_t entry_ms, char *err, size_t errlen);

/* A hand-over is held when its one signature is the old key's (rotation_parse) and the old key
 * was certified for the domain when it signed (issued_ms): a key that is not the domain's cannot
 * give the domain away. */
static trust_verdict_t offer_rotation(trust_t *t, const uint8_t *b, size_t n, int *added, int dry, char *err,
                                     size_t errlen)
{
    rotation_t r;
    if (added)
        *added = 0;
    if (rotation_parse(b, n, &r, err, errlen) != 0)
        return strstr(err, "does not verify") ? TRUST_FORGED : TRUST_MALFORMED;
    trust_verdict_t v = TRUST_OK;
    for (size_t i = 0; i < t->nrots; i++)
        if (memcmp(t->rots[i].hash, r.hash, TRUST_HASH_LEN) == 0)
            goto out;
    v = entry_ok(t, r.domain, r.old_key, r.issued_ms, err, errlen);
    if (v == TRUST_OK && t->nrots == TRUST_MAX_ROTS) {
        snprintf(err, errlen, "hand-over: %d hand-overs held already", TRUST_MAX_ROTS);
        v = TRUST_MALFORMED;
    }
    if (dry)
        goto out;
    if (v == TRUST_OK && t->nrots == t->caprots) {
        size_t cap = t->caprots ? 2 * t->caprots : 8;
        held_rot_t *p = realloc(t->rots, cap * sizeof *p);
        if (p == NULL) {
            snprintf(err, errlen, "hand-over: out of memory");
            v = TRUST_MALFORMED;
        } else {
            t->rots = p;
            t->caprots = cap;
        }
    }
    if (v != TRUST_OK)
        goto out;
    held_rot_t *h = &t->rots[t->nrots++];
    snprintf(h->domain, sizeof h->domain, "%s", r.domain);
    memcpy(h->old_key, r.old_key, ID_PK_LEN);
    memcpy(h->new_key, r.new_key, ID_PK_LEN);
    h->until_ms = r.effective_ms + r.overlap_ms;
    memcpy(h->hash, r.hash, TRUST_HASH_LEN);
    if (added)
        *added = 1;
out:
    rotation_free(&r);
    return v;
}

/* ---------------------------------------------------------------- questions */

/* How telling a refusal is, to report the best one when no certificate says ok. */
static int rank(trust_verdict_t v)
{
    switch (v) {
    case TRUST_REVOKED:
    case TRUST_ROTATED:         return 5;
    case TRUST_EXPIRED:
    case TRUST_NOT_YET_VALID:   return 4;
    case TRUST_BELOW_THRESHOLD: return 3;
    case TRUST_WRONG_DOMAIN:    return 2;
    default:                    return 1;
    }
}

/* 1 when c's key handed c's domain over to a key certified for it and the overlap ended before
 * at_ms, with why. No skew allowance: the end of the overlap is the key owner's own promise (an
 * entry's time and the hand-over's are both its clock), not a window the roots set. */
static int retired(const trust_t *t, const cert_t *c, int64_t at_ms, char *why, size_t whylen)
{
    for (size_t i = 0; i < t->nrots; i++) {
        const held_rot_t *r = &t->rots[i];
        if (at_ms <= r->until_ms || memcmp(r->old_key, c->node_key, ID_PK_LEN) != 0 ||
            strcmp(r->domain, c->domain) != 0 || !certified_for(t, r->domain, r->new_key))
            continue;
        char until[32], hex[ID_HEX_LEN];
        trust_time_text(r->until_ms, until);
        identity_hex(r->new_key, hex);
        snprintf(why, whylen, "this key handed domain %s over to %.16s...; its overlap window ended at %s",
                 r->domain, hex, until);
        return 1;
    }
    return 0;
}

/* Common walk: certificates matching (curve or key); domain NULL = the certificate's own. */
static trust_verdict_t judge(const trust_t *t, const uint8_t *curve, const uint8_t *key,
                             const char *domain, int64_t at_ms, const cert_t **cert, char *err,
                             size_t errlen)
{
    trust_verdict_t best = TRUST_UNCERTIFIED;
    char why[320];
    if (cert)
        *cert = NULL;
    snprintf(err, errlen, "no certificate of this key is held");
    const index_t *ix = curve ? &t->by_curve : &t->by_key;
    const uint8_t *want = curve ? curve : key;
    if (ix->slot == NULL)
        return best;
    for (size_t b = bucket(want, ix->mask); ix->slot[b] != 0; b = (b + 1) & ix->mask) {
        const held_cert_t *h = &t->certs[ix->slot[b] - 1];
        if (memcmp(curve ? h->curve : h->cert.node_key, want, 32) != 0)
            continue;
        trust_verdict_t v;
        if (!h->backed) {
            snprintf(why, sizeof why, "certificate for %s is no longer backed by a threshold of the "
                     "roots of charter version %llu", h->cert.domain,
                     (unsigned long long)t->charter.version);
            v = TRUST_BELOW_THRESHOLD;
        } else {
            v = cert_check_claim(&h->cert, &t->revset, domain ? domain : h->cert.domain,
                                 h->cert.node_key, at_ms, TRUST_SKEW_MS, why, sizeof why);
        }
        if (v == TRUST_OK && retired(t, &h->cert, at_ms, why, sizeof why))
            v = TRUST_ROTATED;
        if (v == TRUST_OK) {
            if (cert)
                *cert = &h->cert;
            return TRUST_OK;
        }
        if (best == TRUST_UNCERTIFIED || rank(v) > rank(best)) {
            best = v;
            snprintf(err, errlen, "%s", why);
        }
    }
    return best;
}

static trust_verdict_t admit_curve(const trust_t *t, const uint8_t curve_pk[32], int64_t now_ms,
                                  const cert_t **cert, char *err, size_t errlen)
{
    return judge(t, curve_pk, NULL, NULL, now_ms, cert, err, errlen);
}

static trust_verdict_t entry_ok(const trust_t *t, const char *domain, const uint8_t signer[ID_PK_LEN],
                               int64_t entry_ms, char *err, size_t errlen)
{
    return judge(t, NULL, signer, domain ? domain : "", entry_ms, NULL, err, errlen);
}

trust_verdict_t trust_claim(const trust_t *t, const cert_t *c, const char *domain, const uint8_t key[ID_PK_LEN],
                            int64_t t_ms, char *err, size_t errlen)
{
    pthread_rwlock_rdlock(t->mu);
    trust_verdict_t v = cert_check_claim(c, &t->revset, domain, key, t_ms, TRUST_SKEW_MS, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

static void sooner(int64_t *first, int64_t at, int64_t now_ms)
{
    if (at > now_ms && (!*first || at < *first))
        *first = at;
}

int64_t trust_next_change(const trust_t *t, int64_t now_ms)
{
    int64_t first = 0;
    pthread_rwlock_rdlock(t->mu);
    for (size_t i = 0; i < t->ncerts; i++) {   /* cert_check_claim's window, skew allowed */
        sooner(&first, t->certs[i].cert.not_before_ms - TRUST_SKEW_MS, now_ms);
        sooner(&first, t->certs[i].cert.not_after_ms + TRUST_SKEW_MS + 1, now_ms);
    }
    for (size_t i = 0; i < t->revset.n; i++)   /* revset_find: effective_ms <= t */
        sooner(&first, t->revset.items[i].effective_ms, now_ms);
    for (size_t i = 0; i < t->nrots; i++)      /* retired: past until_ms */
        sooner(&first, t->rots[i].until_ms + 1, now_ms);
    pthread_rwlock_unlock(t->mu);
    return first;
}

size_t trust_cert_count(const trust_t *t)
{
    pthread_rwlock_rdlock(t->mu);
    size_t n = t->ncerts;
    pthread_rwlock_unlock(t->mu);
    return n;
}

const cert_t *trust_cert_at(const trust_t *t, size_t i)
{
    return i < t->ncerts ? &t->certs[i].cert : NULL;
}

size_t trust_revocation_count(const trust_t *t)
{
    pthread_rwlock_rdlock(t->mu);
    size_t n = t->nrevs;
    pthread_rwlock_unlock(t->mu);
    return n;
}

const revocation_t *trust_revocation_at(const trust_t *t, size_t i)
{
    return i < t->nrevs ? &t->revs[i] : NULL;
}

/* ---------------------------------------------------------------- the locked public calls */

trust_verdict_t trust_offer_charter(trust_t *t, const uint8_t *b, size_t n, int *added, char *err, size_t errlen)
{
    pthread_rwlock_wrlock(t->mu);
    trust_verdict_t v = offer_charter(t, b, n, added, 0, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_offer_cert(trust_t *t, const uint8_t *b, size_t n, int *added, char *err, size_t errlen)
{
    pthread_rwlock_wrlock(t->mu);
    trust_verdict_t v = offer_cert(t, b, n, added, 0, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_offer_revocation(trust_t *t, const uint8_t *b, size_t n, int *added, char *err,
                                       size_t errlen)
{
    pthread_rwlock_wrlock(t->mu);
    trust_verdict_t v = offer_revocation(t, b, n, added, 0, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_check(trust_t *t, trust_kind_t kind, const uint8_t *b, size_t n, char *err, size_t errlen)
{
    trust_verdict_t v = TRUST_MALFORMED;
    pthread_rwlock_rdlock(t->mu);   /* a dry offer changes nothing */
    switch (kind) {
    case TRUST_KIND_CHARTER: v = offer_charter(t, b, n, NULL, 1, err, errlen); break;
    case TRUST_KIND_CERT:    v = offer_cert(t, b, n, NULL, 1, err, errlen); break;
    case TRUST_KIND_REVOKE:  v = offer_revocation(t, b, n, NULL, 1, err, errlen); break;
    case TRUST_KIND_ROTATE:  v = offer_rotation(t, b, n, NULL, 1, err, errlen); break;
    default:                 snprintf(err, errlen, "not an object the trust store holds (kind %d)", (int)kind);
    }
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_admit_curve(const trust_t *t, const uint8_t curve_pk[32], int64_t now_ms, const cert_t **cert,
                                  char *err, size_t errlen)
{
    pthread_rwlock_rdlock(t->mu);
    trust_verdict_t v = admit_curve(t, curve_pk, now_ms, cert, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_admit_info(const trust_t *t, const uint8_t curve_pk[32], int64_t now_ms, trust_info_t *info,
                                 char *err, size_t errlen)
{
    const cert_t *c = NULL;
    pthread_rwlock_rdlock(t->mu);
    trust_verdict_t v = admit_curve(t, curve_pk, now_ms, &c, err, errlen);
    if (info) {
        memset(info, 0, sizeof *info);
        if (v == TRUST_OK && c) {
            snprintf(info->domain, sizeof info->domain, "%s", c->domain);
            memcpy(info->node_key, c->node_key, ID_PK_LEN);
            info->serial = c->serial;
            info->not_before_ms = c->not_before_ms;
            info->not_after_ms = c->not_after_ms;
        }
    }
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_entry_ok(const trust_t *t, const char *domain, const uint8_t signer[ID_PK_LEN], int64_t entry_ms,
                               char *err, size_t errlen)
{
    pthread_rwlock_rdlock(t->mu);
    trust_verdict_t v = entry_ok(t, domain, signer, entry_ms, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

trust_verdict_t trust_offer_rotation(trust_t *t, const uint8_t *b, size_t n, int *added, char *err, size_t errlen)
{
    pthread_rwlock_wrlock(t->mu);
    trust_verdict_t v = offer_rotation(t, b, n, added, 0, err, errlen);
    pthread_rwlock_unlock(t->mu);
    return v;
}

/* The key `at` continues for domain: the old key of a held hand-over to it, else the key of the
 * certificate that a backed certificate of `at` names as its prev_serial (the roots certified it
 * as the continuation: the lost-key case, where no hand-over can be signed). 1 found, 0 none. */
static int predecessor(const trust_t *t, const char *domain, const uint8_t at[ID_PK_LEN], uint8_t prev[ID_PK_LEN])
{
    for (size_t i = 0; i < t->nrots; i++)
        if (memcmp(t->rots[i].new_key, at, ID_PK_LEN) == 0 && strcmp(t->rots[i].domain, domain) == 0) {
            memcpy(prev, t->rots[i].old_key, ID_PK_LEN);
            return 1;
        }
    if (t->by_key.slot == NULL)
        return 0;
    for (size_t b = bucket(at, t->by_key.mask); t->by_key.slot[b] != 0; b = (b + 1) & t->by_key.mask) {
        const held_cert_t *h = &t->certs[t->by_key.slot[b] - 1];
        if (!h->backed || !h->cert.prev_serial || memcmp(h->cert.node_key, at, ID_PK_LEN) != 0 ||
            strcmp(h->cert.domain, domain) != 0)
            continue;
        const index_t *sx = &t->by_serial;   /* the certificate it continues: by serial, not a scan */
        for (size_t s = bucket((const uint8_t *)&h->cert.prev_serial, sx->mask); sx->slot[s] != 0;
             s = (s + 1) & sx->mask) {
            const cert_t *p = &t->certs[sx->slot[s] - 1].cert;
            if (p->serial == h->cert.prev_serial && strcmp(p->domain, domain) == 0 &&
                memcmp(p->node_key, at, ID_PK_LEN) != 0) {
                memcpy(prev, p->node_key, ID_PK_LEN);
                return 1;
            }
        }
    }
    return 0;
}

size_t trust_predecessors(const trust_t *t, const char *domain, const uint8_t key[ID_PK_LEN],
                          uint8_t out[TRUST_HANDOVER_STEPS][ID_PK_LEN])
{
    size_t n = 0;
    pthread_rwlock_rdlock(t->mu);
    for (const uint8_t *at = key; n < TRUST_HANDOVER_STEPS && predecessor(t, domain, at, out[n]); at = out[n++])
        ;
    pthread_rwlock_unlock(t->mu);
    return n;
}

int trust_handover(const trust_t *t, const char *domain, const uint8_t from[ID_PK_LEN], const uint8_t to[ID_PK_LEN])
{
    uint8_t at[ID_PK_LEN], prev[ID_PK_LEN];
    int ok = 0;
    memcpy(at, to, ID_PK_LEN);
    pthread_rwlock_rdlock(t->mu);
    for (int step = 0; step < TRUST_HANDOVER_STEPS && !ok && predecessor(t, domain, at, prev); step++) {
        ok = memcmp(prev, from, ID_PK_LEN) == 0;
        memcpy(at, prev, ID_PK_LEN);
    }
    pthread_rwlock_unlock(t->mu);
    return ok;
}

int trust_handed_over(const trust_t *t, const uint8_t key[ID_PK_LEN])
{
    int found = 0;
    pthread_rwlock_rdlock(t->mu);
    for (size_t i = 0; i < t->nrots && !found; i++)
        found = memcmp(t->rots[i].old_key, key, ID_PK_LEN) == 0 && memcmp(t->rots[i].new_key, key, ID_PK_LEN) != 0;
    pthread_rwlock_unlock(t->mu);
    return found;
}

size_t trust_rotation_count(const trust_t *t)
{
    pthread_rwlock_rdlock(t->mu);
    size_t n = t->nrots;
    pthread_rwlock_unlock(t->mu);
    return n;
}

uint64_t trust_charter_version(const trust_t *t)
{
    pthread_rwlock_rdlock(t->mu);
    uint64_t v = t->charter.version;
    pthread_rwlock_unlock(t->mu);
    return v;
}

void trust_read_lock(const trust_t *t) { pthread_rwlock_rdlock(t->mu); }
void trust_read_unlock(const trust_t *t) { pthread_rwlock_unlock(t->mu); }
