/* gossip/charter.c - the federation charter and the signed envelope of every trust object.
 *
 * Owns: the per-kind domain-separation tags and signing TAG || body; the TrustSigned envelope
 * (make, bounded parse, counting distinct root signatures); the charter's shape rules, signing
 * a new federation or the next version, verifying as an anchor or as the next version of the
 * held charter; the shared JSON file form (read, compare with the signed bytes, write).
 * Verification order for bytes from anywhere: bound the size, decode the envelope, check field
 * sizes, check cheap fields (federation, version, chain), then signatures, then accept.
 * Must not: re-encode to verify, touch LMDB or the network, print. */
#include "gossip/charter.h"
#include "gossip/durable.h"
#include "gossip/textfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIME_MAX_MS TRUST_TIME_MAX_MS
#define VERSION_MAX 0xffffffffULL

/* ---------------------------------------------------------------- names */

const char *trust_verdict_name(trust_verdict_t v)
{
    static const char *const names[TRUST_VERDICT_COUNT] = {
        "ok", "malformed", "forged", "below_threshold", "wrong_federation", "wrong_domain",
        "wrong_key", "expired", "not_yet_valid", "revoked", "stale_version", "version_gap",
        "broken_chain", "uncertified", "rotated",
    };
    return (unsigned)v < TRUST_VERDICT_COUNT ? names[v] : "unknown";
}

const char *trust_kind_name(trust_kind_t k)
{
    switch (k) {
    case TRUST_KIND_CHARTER: return "charter";
    case TRUST_KIND_CERT:    return "certificate";
    case TRUST_KIND_REVOKE:  return "revocation";
    case TRUST_KIND_POLICY:  return "policy";
    case TRUST_KIND_ROTATE:  return "rotation";
    }
    return "unknown";
}

static const char *file_kind(trust_kind_t k)
{
    switch (k) {
    case TRUST_KIND_CHARTER: return "trib.charter";
    case TRUST_KIND_CERT:    return "trib.cert";
    case TRUST_KIND_REVOKE:  return "trib.revocation";
    case TRUST_KIND_POLICY:  return "trib.policy";
    case TRUST_KIND_ROTATE:  return "trib.rotation";
    }
    return "";
}

const char *trust_file_kind_name(trust_kind_t k) { return file_kind(k); }

void trust_hex(const uint8_t *p, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

char *trust_b64(const uint8_t *p, size_t n)
{
    size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(len);
    if (b)
        sodium_bin2base64(b, len, p, n, sodium_base64_VARIANT_ORIGINAL);
    return b;
}

/* Untrusted text for a message: at most 40 bytes, anything but printable ASCII as '?'. */
static const char *printable(const char *s, char out[48])
{
    size_t i = 0;
    for (; s && s[i] && i < 40; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/* The first 16 hex chars of a key, for messages. */
static const char *short_hex(const uint8_t *p, char out[17])
{
    trust_hex(p, 8, out);
    return out;
}

/* ---------------------------------------------------------------- time text */

void trust_time_text(int64_t ms, char out[32])
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - s * 1000);
    time_t t = (time_t)s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || ms < 0 || ms > TIME_MAX_MS) {
        snprintf(out, 32, "invalid-time");
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", frac);
}

int trust_time_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    int frac = 0;
    char back[32];
    memset(&tm, 0, sizeof tm);
    if (s == NULL || strlen(s) != 24)
        return -1;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return -1;
    *ms = (int64_t)t * 1000 + frac;
    trust_time_text(*ms, back);
    return strcmp(back, s) == 0 ? 0 : -1;   /* refuses 25:00, Feb 30, signs, spaces */
}

/* ---------------------------------------------------------------- tags and signatures */

const uint8_t *trust_tag(trust_kind_t k, size_t *len)
{
    static const char charter[] = "trib/charter/v1", cert[] = "trib/cert/v1",
                      revoke[] = "trib/revoke/v1", policy[] = "trib/policy/v1",
                      rotate[] = "trib/rotate/v1";
    const char *t = k == TRUST_KIND_CHARTER ? charter : k == TRUST_KIND_CERT ? cert
                  : k == TRUST_KIND_REVOKE ? revoke : k == TRUST_KIND_POLICY ? policy
                  : k == TRUST_KIND_ROTATE ? rotate : NULL;
    assert(t != NULL);
    *len = strlen(t) + 1;   /* the NUL too: no tag is a prefix of another's signed bytes */
    return (const uint8_t *)t;
}

/* TAG || body in a malloc'd buffer. */
static uint8_t *tagged(trust_kind_t k, const uint8_t *body, size_t len, size_t *mlen)
{
    size_t tlen;
    const uint8_t *tag = trust_tag(k, &tlen);
    uint8_t *m = malloc(tlen + len);
    if (m == NULL)
        return NULL;
    memcpy(m, tag, tlen);
    if (len)
        memcpy(m + tlen, body, len);
    *mlen = tlen + len;
    return m;
}

int trust_sign(trust_kind_t k, const uint8_t *body, size_t len, const identity_t *id, uint8_t sig[64])
{
    size_t mlen;
    if (sodium_init() < 0)
        return -1;
    uint8_t *m = tagged(k, body, len, &mlen);
    if (m == NULL)
        return -1;
    int rc = crypto_sign_detached(sig, NULL, m, mlen, id->sk) == 0 ? 0 : -1;
    free(m);
    return rc;
}

int trust_sig_ok(trust_kind_t k, const uint8_t *body, size_t len, const uint8_t pk[32],
                 const uint8_t sig[64])
{
    size_t mlen;
    if (sodium_init() < 0)
        return 0;
    uint8_t *m = tagged(k, body, len, &mlen);
    if (m == NULL)
        return 0;
    int ok = crypto_sign_verify_detached(sig, m, mlen, pk) == 0;
    free(m);
    return ok;
}

/* ---------------------------------------------------------------- envelope */

int trust_envelope_make(trust_kind_t k, const uint8_t *body, size_t len,
                        const identity_t *const *signers, size_t n, uint8_t **out, size_t *outlen)
{
    Trib__TrustSigned env = TRIB__TRUST_SIGNED__INIT;
    Trib__TrustSignature sigs[TRUST_MAX_SIGS], *sigp[TRUST_MAX_SIGS];
    uint8_t raw[TRUST_MAX_SIGS][64], pks[TRUST_MAX_SIGS][ID_PK_LEN];

    *out = NULL;
    *outlen = 0;
    if (n == 0 || n > TRUST_MAX_SIGS || len == 0 || len > TRUST_MAX_BYTES)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (trust_sign(k, body, len, signers[i], raw[i]) != 0)
            return -1;
        memcpy(pks[i], signers[i]->pk, ID_PK_LEN);
        trib__trust_signature__init(&sigs[i]);
        sigs[i].signer.data = pks[i];
        sigs[i].signer.len = ID_PK_LEN;
        sigs[i].signature.data = raw[i];
        sigs[i].signature.len = 64;
        sigp[i] = &sigs[i];
    }
    env.kind = (Trib__TrustKind)k;
    env.body.data = (uint8_t *)body;
    env.body.len = len;
    env.n_sigs = n;
    env.sigs = sigp;
    size_t elen = trib__trust_signed__get_packed_size(&env);
    if (elen > TRUST_MAX_BYTES)
        return -1;
    uint8_t *buf = malloc(elen);
    if (buf == NULL)
        return -1;
    size_t packed = trib__trust_signed__pack(&env, buf);
    assert(packed == elen);
    (void)packed;
    *out = buf;
    *outlen = elen;
    return 0;
}

Trib__TrustSigned *trust_envelope_parse(const uint8_t *bytes, size_t len, trust_kind_t want,
                                        char *err, size_t errlen)
{
    const char *what = trust_kind_name(want);
    if (bytes == NULL || len == 0) {
        snprintf(err, errlen, "%s: empty", what);
        return NULL;
    }
    if (len > TRUST_MAX_BYTES) {
        snprintf(err, errlen, "%s: %zu bytes, over the limit of %u", what, len, TRUST_MAX_BYTES);
        return NULL;
    }
    Trib__TrustSigned *env = trib__trust_signed__unpack(NULL, len, bytes);
    if (env == NULL) {
        snprintf(err, errlen, "%s: not a signed trust object (protobuf TrustSigned)", what);
        return NULL;
    }
    if ((int)env->kind != (int)want) {
        const char *got = trust_kind_name((trust_kind_t)env->kind);
        snprintf(err, errlen, "%s: this is a %s, not a %s",
                 what, strcmp(got, "unknown") ? got : "signed object of unknown kind", what);
        goto fail;
    }
    if (env->body.len == 0) {
        snprintf(err, errlen, "%s: empty body", what);
        goto fail;
    }
    if (env->n_sigs == 0 || env->n_sigs > TRUST_MAX_SIGS) {
        snprintf(err, errlen, "%s: %zu signatures, expected 1 to %d", what, env->n_sigs, TRUST_MAX_SIGS);
        goto fail;
    }
    for (size_t i = 0; i < env->n_sigs; i++) {
        const Trib__TrustSignature *s = env->sigs[i];
        if (s->signer.len != ID_PK_LEN || s->signature.len != 64) {
            snprintf(err, errlen, "%s: signature %zu: signer %zu bytes, signature %zu bytes, "
                     "expected %d and 64", what, i + 1, s->signer.len, s->signature.len, ID_PK_LEN);
            goto fail;
        }
    }
    return env;
fail:
    trib__trust_signed__free_unpacked(env, NULL);
    return NULL;
}

/* ---------------------------------------------------------------- charter: shape */

int charter_is_root(const charter_t *c, const uint8_t key[ID_PK_LEN])
{
    for (size_t i = 0; i < c->nkeys; i++)
        if (c->keys[i].role == CHARTER_ROLE_ROOT && memcmp(c->keys[i].key, key, ID_PK_LEN) == 0)
            return 1;
    return 0;
}

int charter_is_governance(const charter_t *c, const uint8_t key[ID_PK_LEN])
{
    for (size_t i = 0; i < c->nkeys; i++)
        if (c->keys[i].role == CHARTER_ROLE_GOVERNANCE && memcmp(c->keys[i].key, key, ID_PK_LEN) == 0)
            return 1;
    return 0;
}

static int is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* The rules every charter meets, whoever made it. */
static int check_shape(const charter_t *c, char *err, size_t errlen)
{
    size_t nroots = 0, ngov = 0;
    char h[17];
    uint8_t curve[32];

    if (c->version < 1 || c->version > VERSION_MAX) {
        snprintf(err, errlen, "charter: version %llu, must be 1 to %llu",
                 (unsigned long long)c->version, VERSION_MAX);
        return -1;
    }
    if ((c->version == 1) != is_zero(c->prev_hash, TRUST_HASH_LEN)) {
        snprintf(err, errlen, "charter version %llu: %s", (unsigned long long)c->version,
                 c->version == 1 ? "version 1 has no previous hash" : "previous hash missing");
        return -1;
    }
    if (c->nkeys == 0) {
        snprintf(err, errlen, "charter: no keys");
        return -1;
    }
    if (c->issued_ms < 0 || c->issued_ms > TIME_MAX_MS) {
        snprintf(err, errlen, "charter: issued time %lld out of range", (long long)c->issued_ms);
        return -1;
    }
    for (size_t i = 0; i < c->nkeys; i++) {
        if (c->keys[i].role == CHARTER_ROLE_ROOT)
            nroots++;
        else if (c->keys[i].role == CHARTER_ROLE_GOVERNANCE)
            ngov++;
        else {
            snprintf(err, errlen, "charter: key %zu (%s): unknown role %d", i + 1,
                     short_hex(c->keys[i].key, h), (int)c->keys[i].role);
            return -1;
        }
        if (crypto_sign_ed25519_pk_to_curve25519(curve, c->keys[i].key) != 0) {
            snprintf(err, errlen, "charter: key %zu (%s): not a valid Ed25519 public key", i + 1,
                     short_hex(c->keys[i].key, h));
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->keys[i].key, c->keys[j].key, ID_PK_LEN) == 0) {
                snprintf(err, errlen, "charter: key %s listed twice (keys %zu and %zu)",
                         short_hex(c->keys[i].key, h), j + 1, i + 1);
                return -1;
            }
    }
    if (nroots == 0) {
        snprintf(err, errlen, "charter: no root key");
        return -1;
    }
    if (c->threshold < 1 || c->threshold > nroots) {
        snprintf(err, errlen, "charter: threshold %u, must be 1 to %zu (the number of root keys)",
                 c->threshold, nroots);
        return -1;
    }
    if (ngov == 0 ? c->gov_threshold != 0 : (c->gov_threshold < 1 || c->gov_threshold > ngov)) {
        snprintf(err, errlen, "charter: governance threshold %u, must be %s%zu (the number of "
                 "governance keys)", c->gov_threshold, ngov ? "1 to " : "", ngov);
        return -1;
    }
    return 0;
}

/* Decoded body -> charter_t, with sizes checked, then the shape rules. */
static int from_proto(const Trib__Charter *m, charter_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (m->federation_id.len != FED_ID_LEN) {
        snprintf(err, errlen, "charter: federation id %zu bytes, expected %d", m->federation_id.len,
                 FED_ID_LEN);
        return -1;
    }
    if (m->prev_hash.len != 0 && m->prev_hash.len != TRUST_HASH_LEN) {
        snprintf(err, errlen, "charter: previous hash %zu bytes, expected %d", m->prev_hash.len,
                 TRUST_HASH_LEN);
        return -1;
    }
    if (m->n_keys > CHARTER_MAX_KEYS) {
        snprintf(err, errlen, "charter: %zu keys, at most %d", m->n_keys, CHARTER_MAX_KEYS);
        return -1;
    }
    memcpy(c->fed_id, m->federation_id.data, FED_ID_LEN);
    c->version = m->version;
    if (m->prev_hash.len)
        memcpy(c->prev_hash, m->prev_hash.data, TRUST_HASH_LEN);
    c->nkeys = m->n_keys;
    for (size_t i = 0; i < m->n_keys; i++) {
        if (m->keys[i]->key.len != ID_PK_LEN) {
            snprintf(err, errlen, "charter: key %zu: %zu bytes, expected %d", i + 1,
                     m->keys[i]->key.len, ID_PK_LEN);
            return -1;
        }
        memcpy(c->keys[i].key, m->keys[i]->key.data, ID_PK_LEN);
        c->keys[i].role = (charter_role_t)m->keys[i]->role;
    }
    c->threshold = m->threshold;
    c->gov_threshold = m->governance_threshold;
    c->issued_ms = m->issued_ms;
    return check_shape(c, err, errlen);
}

/* ---------------------------------------------------------------- charter: signatures */

trust_verdict_t charter_check_sigs(const charter_t *c, trust_kind_t k, const Trib__TrustSigned *env,
                                   size_t *nsigners, uint8_t signers[][ID_PK_LEN], char *err,
                                   size_t errlen)
{
    uint8_t seen[TRUST_MAX_SIGS][ID_PK_LEN];
    size_t nseen = 0;
    char h[17];

    for (size_t i = 0; i < env->n_sigs && i < TRUST_MAX_SIGS; i++) {
        const uint8_t *pk = env->sigs[i]->signer.data;
        if (!trust_sig_ok(k, env->body.data, env->body.len, pk, env->sigs[i]->signature.data)) {
            snprintf(err, errlen, "%s: signature %zu (by %s...) does not verify",
                     trust_kind_name(k), i + 1, short_hex(pk, h));
            return TRUST_FORGED;
        }
        if (!charter_is_root(c, pk))
            continue;
        size_t j = 0;
        while (j < nseen && memcmp(seen[j], pk, ID_PK_LEN) != 0)
            j++;
        if (j == nseen)
            memcpy(seen[nseen++], pk, ID_PK_LEN);
    }
    if (nsigners)
        *nsigners = nseen;
    if (signers)
        memcpy(signers, seen, nseen * ID_PK_LEN);
    if (nseen < c->threshold) {
        snprintf(err, errlen, "%s: signed by %zu distinct root%s of charter version %llu, its "
                 "threshold is %u", trust_kind_name(k), nseen, nseen == 1 ? "" : "s",
                 (unsigned long long)c->version, c->threshold);
        return TRUST_BELOW_THRESHOLD;
    }
    return TRUST_OK;
}

/* ---------------------------------------------------------------- charter: verify and sign */

trust_verdict_t charter_verify(const charter_t *held, const uint8_t *bytes, size_t len,
                               charter_t *out, char *err, size_t errlen)
{
    charter_t c;
    trust_verdict_t v = TRUST_MALFORMED;
    Trib__Charter *m = NULL;
    char a[2 * FED_ID_LEN + 1];

    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "charter: sodium_init failed");
        return TRUST_MALFORMED;
    }
    Trib__TrustSigned *env = trust_envelope_parse(bytes, len, TRUST_KIND_CHARTER, err, errlen);
    if (env == NULL)
        return TRUST_MALFORMED;
    m = trib__charter__unpack(NULL, env->body.len, env->body.data);
    if (m == NULL) {
        snprintf(err, errlen, "charter: body is not a Charter");
        goto done;
    }
    if (from_proto(m, &c, err, errlen) != 0)
        goto done;
    if (held) {
        if (memcmp(c.fed_id, held->fed_id, FED_ID_LEN) != 0) {
            trust_hex(c.fed_id, FED_ID_LEN, a);
            snprintf(err, errlen, "charter: federation %s, not this federation", a);
            v = TRUST_WRONG_FEDERATION;
            goto done;
        }
        if (c.version <= held->version) {
            snprintf(err, errlen, "charter: version %llu is not newer than the held version %llu",
                     (unsigned long long)c.version, (unsigned long long)held->version);
            v = TRUST_STALE_VERSION;
            goto done;
        }
        if (c.version != held->version + 1) {
            snprintf(err, errlen, "charter: version %llu skips ahead of the held version %llu",
                     (unsigned long long)c.version, (unsigned long long)held->version);
            v = TRUST_VERSION_GAP;
            goto done;
        }
        if (memcmp(c.prev_hash, held->hash, TRUST_HASH_LEN) != 0) {
            snprintf(err, errlen, "charter version %llu: previous hash is not the hash of the held "
                     "version %llu", (unsigned long long)c.version, (unsigned long long)held->version);
            v = TRUST_BROKEN_CHAIN;
            goto done;
        }
    }
    /* An update is signed by a threshold of the held charter's roots (a removed root cannot
     * sign the next) and, like every anchor, by a threshold of its own. */
    if (held) {
        v = charter_check_sigs(held, TRUST_KIND_CHARTER, env, NULL, NULL, err, errlen);
        if (v != TRUST_OK)
            goto done;
    }
    v = charter_check_sigs(&c, TRUST_KIND_CHARTER, env, &c.nsigners, c.signers, err, errlen);
    if (v != TRUST_OK)
        goto done;
    c.bytes = malloc(len);
    if (c.bytes == NULL) {
        snprintf(err, errlen, "charter: out of memory");
        v = TRUST_MALFORMED;
        goto done;
    }
    memcpy(c.bytes, bytes, len);
    c.len = len;
    crypto_generichash(c.hash, TRUST_HASH_LEN, env->body.data, env->body.len, NULL, 0);
    *out = c;
done:
    if (m)
        trib__charter__free_unpacked(m, NULL);
    trib__trust_signed__free_unpacked(env, NULL);
    return v;
}

void charter_free(charter_t *c)
{
    if (c == NULL)
        return;
    free(c->bytes);
    memset(c, 0, sizeof *c);
}

int charter_roots_can_sign(const charter_t *c, const identity_t *const *roots, size_t n, char *err,
                           size_t errlen)
{
    char h[17];
    for (size_t i = 0; i < n; i++) {
        if (!charter_is_root(c, roots[i]->pk)) {
            snprintf(err, errlen, "key %s... is not a root of charter version %llu",
                     short_hex(roots[i]->pk, h), (unsigned long long)c->version);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp(roots[i]->pk, roots[j]->pk, ID_PK_LEN) == 0) {
                snprintf(err, errlen, "root key %s... given twice", short_hex(roots[i]->pk, h));
                return -1;
            }
    }
    if (n < c->threshold) {
        snprintf(err, errlen, "%zu root key%s given, charter version %llu needs %u signatures",
                 n, n == 1 ? "" : "s", (unsigned long long)c->version, c->threshold);
        return -1;
    }
    return 0;
}

/* Each given root a root of prev or of draft, distinct, a threshold of each. */
static int update_signers_ok(const charter_t *prev, const charter_t *draft,
                             const identity_t *const *roots, size_t n, char *err, size_t errlen)
{
    char h[17];
    size_t in_prev = 0, in_new = 0;
    for (size_t i = 0; i < n; i++) {
        int p = charter_is_root(prev, roots[i]->pk), d = charter_is_root(draft, roots[i]->pk);
        if (!p && !d) {
            snprintf(err, errlen, "key %s... is a root of neither charter version %llu nor the "
                     "new one", short_hex(roots[i]->pk, h), (unsigned long long)prev->version);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp(roots[i]->pk, roots[j]->pk, ID_PK_LEN) == 0) {
                snprintf(err, errlen, "root key %s... given twice", short_hex(roots[i]->pk, h));
                return -1;
            }
        in_prev += (size_t)p;
        in_new += (size_t)d;
    }
    if (in_prev < prev->threshold || in_new < draft->threshold) {
        snprintf(err, errlen, "an update of charter version %llu needs %u signatures of its roots "
                 "and %u of the new version's roots; given %zu and %zu",
                 (unsigned long long)prev->version, prev->threshold, draft->threshold, in_prev, in_new);
        return -1;
    }
    return 0;
}

int charter_sign(const charter_t *prev, charter_t *draft, const identity_t *const *roots, size_t n,
                 char *err, size_t errlen)
{
    Trib__Charter m = TRIB__CHARTER__INIT;
    Trib__CharterKey kbuf[CHARTER_MAX_KEYS], *kp[CHARTER_MAX_KEYS];
    uint8_t *body = NULL, *env = NULL;
    size_t envlen = 0;
    int rc = -1;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "charter: sodium_init failed");
        return -1;
    }
    draft->bytes = NULL;
    draft->len = 0;
    if (prev) {
        memcpy(draft->fed_id, prev->fed_id, FED_ID_LEN);
        draft->version = prev->version + 1;
        memcpy(draft->prev_hash, prev->hash, TRUST_HASH_LEN);
    } else {
        draft->version = 1;
        memset(draft->prev_hash, 0, TRUST_HASH_LEN);
    }
    if (draft->nkeys > CHARTER_MAX_KEYS) {
        snprintf(err, errlen, "charter: %zu keys, at most %d", draft->nkeys, CHARTER_MAX_KEYS);
        return -1;
    }
    if (check_shape(draft, err, errlen) != 0)
        return -1;
    /* An update is signed by a threshold of the held roots AND of its own: the current roots
     * decide, and the new root set can sign the next version (no charter nobody can update). */
    if (prev && update_signers_ok(prev, draft, roots, n, err, errlen) != 0)
        return -1;
    if (!prev && charter_roots_can_sign(draft, roots, n, err, errlen) != 0)
        return -1;

    m.federation_id.data = draft->fed_id;
    m.federation_id.len = FED_ID_LEN;
    m.version = draft->version;
    if (prev) {
        m.prev_hash.data = draft->prev_hash;
        m.prev_hash.len = TRUST_HASH_LEN;
    }
    for (size_t i = 0; i < draft->nkeys; i++) {
        trib__charter_key__init(&kbuf[i]);
        kbuf[i].key.data = draft->keys[i].key;
        kbuf[i].key.len = ID_PK_LEN;
        kbuf[i].role = (Trib__KeyRole)draft->keys[i].role;
        kp[i] = &kbuf[i];
    }
    m.n_keys = draft->nkeys;
    m.keys = kp;
    m.threshold = draft->threshold;
    m.governance_threshold = draft->gov_threshold;
    m.issued_ms = draft->issued_ms;
    size_t blen = trib__charter__get_packed_size(&m);
    body = malloc(blen);
    if (body == NULL) {
        snprintf(err, errlen, "charter: out of memory");
        return -1;
    }
    trib__charter__pack(&m, body);
    if (trust_envelope_make(TRUST_KIND_CHARTER, body, blen, roots, n, &env, &envlen) != 0) {
        snprintf(err, errlen, "charter: signing failed (oversize?)");
        goto out;
    }
    /* Verify what was made, as any receiver will: fills hash, signers and bytes. */
    charter_t made;
    if (charter_verify(prev, env, envlen, &made, err, errlen) != TRUST_OK)
        goto out;
    *draft = made;
    rc = 0;
out:
    free(body);
    free(env);
    return rc;
}

/* ---------------------------------------------------------------- file form */

json_t *charter_to_json(const charter_t *c)
{
    char fed[2 * FED_ID_LEN + 1], hash[2 * TRUST_HASH_LEN + 1], prev[2 * TRUST_HASH_LEN + 1];
    char key[ID_HEX_LEN], when[32];

    trust_hex(c->fed_id, FED_ID_LEN, fed);
    trust_hex(c->hash, TRUST_HASH_LEN, hash);
    if (c->version > 1)
        trust_hex(c->prev_hash, TRUST_HASH_LEN, prev);
    else
        prev[0] = '\0';
    trust_time_text(c->issued_ms, when);
    json_t *keys = json_array(), *signers = json_array();
    for (size_t i = 0; i < c->nkeys; i++) {
        identity_hex(c->keys[i].key, key);
        json_array_append_new(keys, json_pack("{s:s, s:s}", "key", key, "role",
                              c->keys[i].role == CHARTER_ROLE_ROOT ? "root" : "governance"));
    }
    for (size_t i = 0; i < c->nsigners; i++) {
        identity_hex(c->signers[i], key);
        json_array_append_new(signers, json_string(key));
    }
    char *b64 = trust_b64(c->bytes, c->len);
    if (b64 == NULL) {
        json_decref(keys);
        json_decref(signers);
        return NULL;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:s, s:o, s:o, s:s}",
                          "kind", "trib.charter", "federation", fed, "version", (json_int_t)c->version,
                          "hash", hash, "prev_hash", prev, "threshold", (json_int_t)c->threshold,
                          "governance_threshold", (json_int_t)c->gov_threshold, "issued", when,
                          "keys", keys, "signed_by", signers, "signed", b64);
    free(b64);
    return j;
}

/* Reads path (bounded) as a JSON object. */
static json_t *read_json(const char *path, trust_kind_t want, char *err, size_t errlen)
{
    json_error_t je;
    char what[64];
    size_t len;
    snprintf(what, sizeof what, "a %s file", want ? trust_kind_name(want) : "trust");
    char *text = textfile_read(path, what, TRUST_FILE_MAX, &len, err, errlen);
    if (!text)
        return NULL;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (j == NULL) {
        char pt[48];
        snprintf(err, errlen, "%s: not JSON: %s (line %d, column %d)", path, printable(je.text, pt),
                 je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        json_decref(j);
        return NULL;
    }
    return j;
}

int trust_signed_decode(const json_t *obj, uint8_t **bytes, size_t *len, char *why, size_t whylen)
{
    *bytes = NULL;
    *len = 0;
    const char *b64 = json_string_value(json_object_get(obj, "signed"));
    if (b64 == NULL) {
        snprintf(why, whylen, "\"signed\" missing or not a string");
        return -1;
    }
    size_t blen = strlen(b64);
    if (blen > sodium_base64_ENCODED_LEN(TRUST_MAX_BYTES, sodium_base64_VARIANT_ORIGINAL)) {
        snprintf(why, whylen, "\"signed\" is over the limit of %u bytes", TRUST_MAX_BYTES);
        return -1;
    }
    size_t cap = blen / 4 * 3 + 3, got = 0;
    uint8_t *buf = malloc(cap);
    const char *end = NULL;
    if (buf == NULL || sodium_base642bin(buf, cap, b64, blen, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + blen || got > TRUST_MAX_BYTES) {
        int oom = buf == NULL;
        free(buf);
        snprintf(why, whylen, oom ? "out of memory" : "\"signed\" is not base64 of at most %u bytes", TRUST_MAX_BYTES);
        return -1;
    }
    *bytes = buf;
    *len = got;
    return 0;
}

int trust_file_read(const char *path, trust_kind_t want, json_t **obj, uint8_t **bytes, size_t *len,
                    char *err, size_t errlen)
{
    *obj = NULL;
    *bytes = NULL;
    *len = 0;
    json_t *j = read_json(path, want, err, errlen);
    if (j == NULL)
        return -1;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    char pk[48];
    if (kind == NULL || strcmp(kind, file_kind(want)) != 0) {
        snprintf(err, errlen, "%s: \"kind\" is %s%s%s, expected \"%s\" (a %s file)", path,
                 kind ? "\"" : "", kind ? printable(kind, pk) : "missing", kind ? "\"" : "",
                 file_kind(want), trust_kind_name(want));
        goto fail;
    }
    char why[200];
    if (trust_signed_decode(j, bytes, len, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    *obj = j;
    return 0;
fail:
    json_decref(j);
    return -1;
}

trust_kind_t trust_file_kind(const char *path, char *err, size_t errlen)
{
    static const trust_kind_t kinds[] = { TRUST_KIND_CHARTER, TRUST_KIND_CERT, TRUST_KIND_REVOKE,
                                          TRUST_KIND_POLICY, TRUST_KIND_ROTATE };
    json_t *j = read_json(path, 0, err, errlen);
    if (j == NULL)
        return 0;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, file_kind(kinds[i])) == 0) {
            json_decref(j);
            return kinds[i];
        }
    json_decref(j);
    snprintf(err, errlen, "%s: not a charter, certificate, revocation or policy file (\"kind\" is not "
             "trib.charter, trib.cert, trib.revocation or trib.policy)", path);
    return 0;
}

int trust_file_matches(const char *path, json_t *obj, json_t *view, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(view, k, v) {
        json_t *f = json_object_get(obj, k);
        if (f == NULL) {
            snprintf(err, errlen, "%s: field \"%s\" is missing", path, k);
            return -1;
        }
        if (!json_equal(f, v)) {
            snprintf(err, errlen, "%s: field \"%s\" differs from the signed bytes (was the file "
                     "edited by hand? make a new one with trib fed)", path, k);
            return -1;
        }
    }
    char pk[48];
    json_object_foreach(obj, k, v) {
        if (json_object_get(view, k) == NULL) {
            snprintf(err, errlen, "%s: unknown field \"%s\"", path, printable(k, pk));
            return -1;
        }
    }
    return 0;
}

int trust_file_write(const char *path, json_t *obj, char *err, size_t errlen)
{
    char *text = json_dumps(obj, JSON_INDENT(2));
    if (text == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = strlen(text);
    text[n++] = '\n';   /* json_dumps' NUL becomes the final newline */
    int rc = durable_write(path, text, n, 0644, DURABLE_EXCL, err, errlen);
    free(text);
    if (rc == 1)
        snprintf(err, errlen, "%s: already exists (refusing to overwrite)", path);
    return rc == 0 ? 0 : -1;
}

trust_verdict_t charter_load(const char *path, charter_t *out, char *err, size_t errlen)
{
    json_t *obj = NULL, *view = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char why[400];

    memset(out, 0, sizeof *out);
    if (trust_file_read(path, TRUST_KIND_CHARTER, &obj, &bytes, &len, err, errlen) != 0)
        return TRUST_MALFORMED;
    trust_verdict_t v = charter_verify(NULL, bytes, len, out, why, sizeof why);
    if (v != TRUST_OK) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto out;
    }
    view = charter_to_json(out);
    if (view == NULL || trust_file_matches(path, obj, view, err, errlen) != 0) {
        if (view == NULL)
            snprintf(err, errlen, "%s: out of memory", path);
        charter_free(out);
        v = TRUST_MALFORMED;
    }
out:
    json_decref(view);
    json_decref(obj);
    free(bytes);
    return v;
}
