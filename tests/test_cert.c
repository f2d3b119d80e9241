/* tests/test_cert.c - gossip/charter and gossip/cert: every verdict, the charter's update chain,
 * domain separation between kinds (and against catalog entries), the file forms, and a bounded
 * random-input run over every parser of untrusted trust bytes.
 *
 * Owns: in-memory keys and objects only (files in a mkdtemp dir, removed after).
 * Must not: start processes (tests/test_fed_cli.c runs the real binary). */
#include <criterion/criterion.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/entry.h"
#include "tests/fixtures.h"

#define DAY_MS  86400000LL
#define T0      1800000000000LL      /* 2027-01-15, a fixed "now" */

static identity_t A, B, C, D, N, M;  /* roots A B C, D a non-root, N and M node keys */
static charter_t ch;                  /* roots A B C, threshold 2, governance D, threshold 1 */
static char err[512];

static void draft_of(charter_t *d, const identity_t *const *roots, size_t nroots, uint32_t thr,
                     const identity_t *gov)
{
    memset(d, 0, sizeof *d);
    randombytes_buf(d->fed_id, FED_ID_LEN);
    for (size_t i = 0; i < nroots; i++) {
        memcpy(d->keys[d->nkeys].key, roots[i]->pk, ID_PK_LEN);
        d->keys[d->nkeys++].role = CHARTER_ROLE_ROOT;
    }
    if (gov) {
        memcpy(d->keys[d->nkeys].key, gov->pk, ID_PK_LEN);
        d->keys[d->nkeys++].role = CHARTER_ROLE_GOVERNANCE;
        d->gov_threshold = 1;
    }
    d->threshold = thr;
    d->issued_ms = T0;
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&A), fx_identity(&B), fx_identity(&C), fx_identity(&D), fx_identity(&N), fx_identity(&M);
    const identity_t *roots[] = { &A, &B, &C };
    draft_of(&ch, roots, 3, 2, &D);
    const identity_t *sig[] = { &A, &B };
    cr_assert_eq(charter_sign(NULL, &ch, sig, 2, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    charter_free(&ch);
}

/* A packed Charter body for d with the given version and prev hash (for hand-made updates). */
static uint8_t *pack_charter(const charter_t *d, uint64_t version, const uint8_t *prev, size_t *len)
{
    Trib__Charter m = TRIB__CHARTER__INIT;
    Trib__CharterKey kb[CHARTER_MAX_KEYS], *kp[CHARTER_MAX_KEYS];
    m.federation_id.data = (uint8_t *)d->fed_id;
    m.federation_id.len = FED_ID_LEN;
    m.version = version;
    if (prev) {
        m.prev_hash.data = (uint8_t *)prev;
        m.prev_hash.len = TRUST_HASH_LEN;
    }
    for (size_t i = 0; i < d->nkeys; i++) {
        trib__charter_key__init(&kb[i]);
        kb[i].key.data = (uint8_t *)d->keys[i].key;
        kb[i].key.len = ID_PK_LEN;
        kb[i].role = (Trib__KeyRole)d->keys[i].role;
        kp[i] = &kb[i];
    }
    m.n_keys = d->nkeys;
    m.keys = kp;
    m.threshold = d->threshold;
    m.governance_threshold = d->gov_threshold;
    m.issued_ms = d->issued_ms;
    *len = trib__charter__get_packed_size(&m);
    uint8_t *b = malloc(*len);
    trib__charter__pack(&m, b);
    return b;
}

/* A packed DomainCert body. */
static uint8_t *pack_cert(const uint8_t fed[FED_ID_LEN], const char *domain, const uint8_t *key,
                          int64_t nb, int64_t na, size_t *len)
{
    Trib__DomainCert m = TRIB__DOMAIN_CERT__INIT;
    m.federation_id.data = (uint8_t *)fed;
    m.federation_id.len = FED_ID_LEN;
    m.domain = (char *)domain;
    m.node_key.data = (uint8_t *)key;
    m.node_key.len = ID_PK_LEN;
    m.serial = 77;
    m.not_before_ms = nb;
    m.not_after_ms = na;
    m.issued_ms = nb;
    *len = trib__domain_cert__get_packed_size(&m);
    uint8_t *b = malloc(*len);
    trib__domain_cert__pack(&m, b);
    return b;
}

/* A certificate signed by exactly `signers` (no threshold check: for hostile cases). */
static void cert_signed_by(cert_t *out, const identity_t *const *signers, size_t n)
{
    size_t blen, elen;
    uint8_t *env;
    uint8_t *body = pack_cert(ch.fed_id, "payments", N.pk, T0, T0 + 90 * DAY_MS, &blen);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CERT, body, blen, signers, n, &env, &elen), 0);
    cr_assert_eq(cert_parse(env, elen, out, err, sizeof err), 0, "%s", err);
    free(body);
    free(env);
}

static void good_cert(cert_t *out)
{
    const identity_t *sig[] = { &A, &B };
    cr_assert_eq(cert_issue(&ch, "payments", N.pk, T0, T0 + 90 * DAY_MS, 0, sig, 2, out, err,
                            sizeof err), 0, "%s", err);
}

static trust_verdict_t verdict(const cert_t *c, const revset_t *revs, const char *domain,
                               const uint8_t *key, int64_t t, int64_t skew)
{
    return cert_valid_at(&ch, c, revs, domain, key, t, skew, err, sizeof err);
}

TestSuite(cert, .init = setup, .fini = teardown);

/* ================================================================ certificate verdicts */

Test(cert, verdict_table)
{
    cert_t c;
    good_cert(&c);
    const int64_t nb = c.not_before_ms, na = c.not_after_ms, S = TRUST_SKEW_MS;
    struct {
        const char *name, *domain;
        const uint8_t *key;
        int64_t t, skew;
        trust_verdict_t want;
    } cases[] = {
        { "inside the window", "payments", N.pk, T0 + DAY_MS, S, TRUST_OK },
        { "first instant", "payments", N.pk, nb, 0, TRUST_OK },
        { "last instant", "payments", N.pk, na, 0, TRUST_OK },
        { "other domain", "growth", N.pk, T0 + DAY_MS, S, TRUST_WRONG_DOMAIN },
        { "no domain", NULL, N.pk, T0 + DAY_MS, S, TRUST_WRONG_DOMAIN },
        { "other key (rogue twin)", "payments", M.pk, T0 + DAY_MS, S, TRUST_WRONG_KEY },
        { "expired by 61 s", "payments", N.pk, na + 61000, S, TRUST_EXPIRED },
        { "expired by 59 s, within skew", "payments", N.pk, na + 59000, S, TRUST_OK },
        { "expired by 1 ms, no skew", "payments", N.pk, na + 1, 0, TRUST_EXPIRED },
        { "30 s early, within skew", "payments", N.pk, nb - 30000, S, TRUST_OK },
        { "30 s early, no skew", "payments", N.pk, nb - 30000, 0, TRUST_NOT_YET_VALID },
        { "61 s early", "payments", N.pk, nb - 61000, S, TRUST_NOT_YET_VALID },
        { "a year early", "payments", N.pk, nb - 365 * DAY_MS, S, TRUST_NOT_YET_VALID },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trust_verdict_t v = verdict(&c, NULL, cases[i].domain, cases[i].key, cases[i].t, cases[i].skew);
        cr_expect_eq(v, cases[i].want, "%s: got %s, want %s (%s)", cases[i].name,
                     trust_verdict_name(v), trust_verdict_name(cases[i].want), err);
    }
    cr_expect_str_eq(trust_verdict_name(TRUST_NOT_YET_VALID), "not_yet_valid");
    cert_free(&c);
}

Test(cert, signature_verdicts)
{
    cert_t c;
    struct {
        const char *name;
        const identity_t *signers[3];
        size_t n;
        trust_verdict_t want;
    } cases[] = {
        { "two roots", { &A, &B }, 2, TRUST_OK },
        { "three roots", { &A, &B, &C }, 3, TRUST_OK },
        { "one root of threshold 2", { &A }, 1, TRUST_BELOW_THRESHOLD },
        { "same root twice counts once", { &A, &A }, 2, TRUST_BELOW_THRESHOLD },
        { "a root and a governance key", { &A, &D }, 2, TRUST_BELOW_THRESHOLD },
        { "a root and a node key", { &A, &N }, 2, TRUST_BELOW_THRESHOLD },
        { "no root at all", { &N, &M }, 2, TRUST_BELOW_THRESHOLD },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cert_signed_by(&c, cases[i].signers, cases[i].n);
        trust_verdict_t v = verdict(&c, NULL, "payments", N.pk, T0 + DAY_MS, TRUST_SKEW_MS);
        cr_expect_eq(v, cases[i].want, "%s: got %s (%s)", cases[i].name, trust_verdict_name(v), err);
        cert_free(&c);
    }
}

/* A signature byte changed: forged. Any single byte of the envelope changed: never ok. */
Test(cert, forged_and_tampered)
{
    cert_t c, t;
    good_cert(&c);
    uint8_t *bytes = malloc(c.len);
    memcpy(bytes, c.bytes, c.len);
    bytes[c.len - 1] ^= 0x01;   /* the last byte is inside the last signature */
    cr_assert_eq(cert_parse(bytes, c.len, &t, err, sizeof err), 0, "%s", err);
    cr_expect_eq(verdict(&t, NULL, "payments", N.pk, T0 + DAY_MS, TRUST_SKEW_MS), TRUST_FORGED);
    cr_expect(strstr(err, "does not verify") != NULL, "%s", err);
    cert_free(&t);

    size_t accepted = 0;
    for (size_t i = 0; i < c.len; i++) {
        memcpy(bytes, c.bytes, c.len);
        bytes[i] ^= 0x20;
        if (cert_parse(bytes, c.len, &t, err, sizeof err) != 0)
            continue;
        trust_verdict_t v = verdict(&t, NULL, "payments", N.pk, T0 + DAY_MS, TRUST_SKEW_MS);
        /* The only accepted change would leave the signed body intact (e.g. an unknown field
         * created in the envelope); then the facts are the original's. */
        if (v == TRUST_OK) {
            accepted++;
            cr_expect_eq(memcmp(t.hash, c.hash, TRUST_HASH_LEN), 0, "byte %zu: accepted another body", i);
        }
        cert_free(&t);
    }
    cr_expect_eq(accepted, 0, "%zu single-byte changes accepted", accepted);
    free(bytes);
    cert_free(&c);
}

Test(cert, wrong_federation)
{
    charter_t other;
    const identity_t *roots[] = { &A, &B, &C };
    draft_of(&other, roots, 3, 2, NULL);   /* same roots, another federation id */
    const identity_t *sig[] = { &A, &B };
    cr_assert_eq(charter_sign(NULL, &other, sig, 2, err, sizeof err), 0, "%s", err);
    cert_t c;
    cr_assert_eq(cert_issue(&other, "payments", N.pk, T0, T0 + DAY_MS, 0, sig, 2, &c, err,
                            sizeof err), 0, "%s", err);
    cr_expect_eq(verdict(&c, NULL, "payments", N.pk, T0 + 1000, TRUST_SKEW_MS), TRUST_WRONG_FEDERATION);
    cert_free(&c);
    charter_free(&other);
}

Test(cert, revoked_by_serial_and_by_key)
{
    cert_t c;
    good_cert(&c);
    const identity_t *sig[] = { &B, &C };
    revocation_t rs, rk;
    cr_assert_eq(revocation_issue(&ch, 0, c.serial, NULL, T0 + 2 * DAY_MS, "lost laptop", sig, 2,
                                  &rs, err, sizeof err), 0, "%s", err);
    cr_assert_eq(revocation_verify(&ch, &rs, err, sizeof err), TRUST_OK, "%s", err);
    revset_t set = { 0 };
    cr_assert_eq(revset_add(&set, &rs), 1);
    cr_assert_eq(revset_add(&set, &rs), 0, "a duplicate is held once");
    cr_expect_eq(verdict(&c, &set, "payments", N.pk, T0 + DAY_MS, TRUST_SKEW_MS), TRUST_OK,
                 "signed before the effective time stays valid: %s", err);
    cr_expect_eq(verdict(&c, &set, "payments", N.pk, T0 + 3 * DAY_MS, TRUST_SKEW_MS), TRUST_REVOKED);
    revset_free(&set);

    cr_assert_eq(revocation_issue(&ch, 1, 0, N.pk, T0 + 2 * DAY_MS, NULL, sig, 2, &rk, err,
                                  sizeof err), 0, "%s", err);
    cr_assert_eq(revset_add(&set, &rk), 1);
    cr_expect_eq(verdict(&c, &set, "payments", N.pk, T0 + 2 * DAY_MS, TRUST_SKEW_MS), TRUST_REVOKED,
                 "at the effective time: revoked");
    cr_expect_eq(verdict(&c, &set, "payments", N.pk, T0 + 2 * DAY_MS - 1, TRUST_SKEW_MS), TRUST_OK);
    revset_free(&set);
    revocation_free(&rs);
    revocation_free(&rk);
    cert_free(&c);
}

Test(cert, revocation_verdicts)
{
    revocation_t r;
    const identity_t *one[] = { &A };
    cr_expect_neq(revocation_issue(&ch, 1, 0, N.pk, T0, NULL, one, 1, &r, err, sizeof err), 0,
                  "issuing below the threshold is refused");
    cr_expect(strstr(err, "needs 2") != NULL, "%s", err);
    const identity_t *nonroot[] = { &A, &D };
    cr_expect_neq(revocation_issue(&ch, 1, 0, N.pk, T0, NULL, nonroot, 2, &r, err, sizeof err), 0);
    cr_expect(strstr(err, "not a root") != NULL, "%s", err);

    /* Hand-made: a revocation signed by one root only. */
    Trib__Revocation m = TRIB__REVOCATION__INIT;
    m.federation_id.data = ch.fed_id;
    m.federation_id.len = FED_ID_LEN;
    m.target_case = TRIB__REVOCATION__TARGET_NODE_KEY;
    m.node_key.data = N.pk;
    m.node_key.len = ID_PK_LEN;
    m.effective_ms = T0;
    size_t blen = trib__revocation__get_packed_size(&m), elen;
    uint8_t *body = malloc(blen), *env;
    trib__revocation__pack(&m, body);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_REVOKE, body, blen, one, 1, &env, &elen), 0);
    cr_assert_eq(revocation_parse(env, elen, &r, err, sizeof err), 0, "%s", err);
    cr_expect_eq(revocation_verify(&ch, &r, err, sizeof err), TRUST_BELOW_THRESHOLD);
    revocation_free(&r);
    free(env);
    free(body);
}

/* ================================================================ the charter */

Test(cert, charter_shape_refusals)
{
    const identity_t *roots[] = { &A, &B };
    struct {
        const char *name, *expect;
        void (*mutate)(charter_t *d);
    } cases[] = {
        { "threshold 0", "threshold 0", NULL },
        { "threshold above roots", "threshold 3", NULL },
        { "duplicate key", "listed twice", NULL },
        { "unknown role", "unknown role", NULL },
        { "governance threshold without governance keys", "governance threshold", NULL },
        { "governance threshold above governance keys", "governance threshold", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        charter_t d;
        draft_of(&d, roots, 2, 2, NULL);
        switch (i) {
        case 0: d.threshold = 0; break;
        case 1: d.threshold = 3; break;
        case 2: memcpy(d.keys[1].key, d.keys[0].key, ID_PK_LEN); d.threshold = 1; break;
        case 3: d.keys[1].role = (charter_role_t)7; d.threshold = 1; break;
        case 4: d.gov_threshold = 1; break;
        case 5: memcpy(d.keys[2].key, C.pk, ID_PK_LEN); d.keys[2].role = CHARTER_ROLE_GOVERNANCE;
                d.nkeys = 3; d.gov_threshold = 2; break;
        }
        const identity_t *sig[] = { &A };
        cr_expect_neq(charter_sign(NULL, &d, sig, 1, err, sizeof err), 0, "%s accepted", cases[i].name);
        cr_expect(strstr(err, cases[i].expect) != NULL, "%s: %s", cases[i].name, err);
    }
    /* Too many keys: refused before anything is signed. */
    charter_t big;
    draft_of(&big, roots, 2, 1, NULL);
    big.nkeys = CHARTER_MAX_KEYS + 1;
    const identity_t *sig[] = { &A };
    cr_expect_neq(charter_sign(NULL, &big, sig, 1, err, sizeof err), 0);
}

Test(cert, charter_signing_refusals)
{
    charter_t d;
    const identity_t *roots[] = { &A, &B, &C };
    draft_of(&d, roots, 3, 2, NULL);
    const identity_t *one[] = { &A }, *twice[] = { &A, &A }, *stranger[] = { &A, &D };
    cr_expect_neq(charter_sign(NULL, &d, one, 1, err, sizeof err), 0);
    cr_expect(strstr(err, "needs 2") != NULL, "%s", err);
    cr_expect_neq(charter_sign(NULL, &d, twice, 2, err, sizeof err), 0);
    cr_expect(strstr(err, "given twice") != NULL, "%s", err);
    cr_expect_neq(charter_sign(NULL, &d, stranger, 2, err, sizeof err), 0);
    cr_expect(strstr(err, "not a root") != NULL, "%s", err);
}

Test(cert, charter_update_chain)
{
    /* v2 removes root C, threshold stays 2: signed by a threshold of v1's roots and of its own;
     * B and C are enough for v1 but C is no root of v2. */
    charter_t v2 = ch, v3, bad;
    v2.bytes = NULL;
    memset(v2.keys[2].key, 0, ID_PK_LEN);
    v2.keys[2] = v2.keys[3];           /* keys: A B D(gov) */
    v2.nkeys = 3;
    const identity_t *bc[] = { &B, &C }, *ab0[] = { &A, &B };
    cr_expect_neq(charter_sign(&ch, &v2, bc, 2, err, sizeof err), 0);
    cr_expect(strstr(err, "given 2 and 1") != NULL, "%s", err);
    cr_assert_eq(charter_sign(&ch, &v2, ab0, 2, err, sizeof err), 0, "%s", err);
    cr_expect_eq(v2.version, 2);
    cr_expect_eq(memcmp(v2.prev_hash, ch.hash, TRUST_HASH_LEN), 0);
    cr_expect_eq(charter_verify(&ch, v2.bytes, v2.len, &bad, err, sizeof err), TRUST_OK, "%s", err);
    charter_free(&bad);
    cr_expect_eq(charter_verify(NULL, v2.bytes, v2.len, &bad, err, sizeof err), TRUST_OK,
                 "a later version is a valid anchor too: %s", err);
    charter_free(&bad);

    /* A removed root cannot sign the next: v3 signed by A and C against held v2. */
    size_t blen, elen;
    uint8_t *env;
    v3 = v2;
    v3.bytes = NULL;
    uint8_t *body = pack_charter(&v3, 3, v2.hash, &blen);
    const identity_t *ac[] = { &A, &C };
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CHARTER, body, blen, ac, 2, &env, &elen), 0);
    cr_expect_eq(charter_verify(&v2, env, elen, &bad, err, sizeof err), TRUST_BELOW_THRESHOLD, "%s", err);
    free(env);
    /* ... while A and B can. */
    const identity_t *ab[] = { &A, &B };
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CHARTER, body, blen, ab, 2, &env, &elen), 0);
    cr_expect_eq(charter_verify(&v2, env, elen, &v3, err, sizeof err), TRUST_OK, "%s", err);
    /* Replays and gaps: held v3 gets v1 or v2 again; held v1 gets v3. */
    cr_expect_eq(charter_verify(&v3, ch.bytes, ch.len, &bad, err, sizeof err), TRUST_STALE_VERSION);
    cr_expect_eq(charter_verify(&v3, v2.bytes, v2.len, &bad, err, sizeof err), TRUST_STALE_VERSION);
    cr_expect_eq(charter_verify(&v3, v3.bytes, v3.len, &bad, err, sizeof err), TRUST_STALE_VERSION);
    cr_expect_eq(charter_verify(&ch, env, elen, &bad, err, sizeof err), TRUST_VERSION_GAP);
    free(env);
    free(body);

    /* Version 2 chained to something else than v1. */
    uint8_t other[TRUST_HASH_LEN];
    randombytes_buf(other, sizeof other);
    body = pack_charter(&v2, 2, other, &blen);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CHARTER, body, blen, ab, 2, &env, &elen), 0);
    cr_expect_eq(charter_verify(&ch, env, elen, &bad, err, sizeof err), TRUST_BROKEN_CHAIN);
    free(env);
    free(body);

    /* Another federation's version 2 (same roots). */
    charter_t f = v2;
    randombytes_buf(f.fed_id, FED_ID_LEN);
    body = pack_charter(&f, 2, ch.hash, &blen);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CHARTER, body, blen, ab, 2, &env, &elen), 0);
    cr_expect_eq(charter_verify(&ch, env, elen, &bad, err, sizeof err), TRUST_WRONG_FEDERATION);
    free(env);
    free(body);

    /* A certificate signed by A and C is valid under v1 and below threshold under v2. */
    cert_t c;
    cert_signed_by(&c, ac, 2);
    cr_expect_eq(cert_valid_at(&ch, &c, NULL, "payments", N.pk, T0 + 1, 0, err, sizeof err), TRUST_OK);
    cr_expect_eq(cert_valid_at(&v2, &c, NULL, "payments", N.pk, T0 + 1, 0, err, sizeof err),
                 TRUST_BELOW_THRESHOLD);
    cert_free(&c);
    charter_free(&v2);
    charter_free(&v3);
}

/* ================================================================ domain separation */

Test(cert, tags_separate_every_kind)
{
    const trust_kind_t kinds[] = { TRUST_KIND_CHARTER, TRUST_KIND_CERT, TRUST_KIND_REVOKE };
    const uint8_t body[] = "the same bytes";
    uint8_t sig[64];
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(trust_sign(kinds[i], body, sizeof body, &A, sig), 0);
        for (size_t j = 0; j < 3; j++)
            cr_expect_eq(trust_sig_ok(kinds[j], body, sizeof body, A.pk, sig), i == j,
                         "%s signature checked as %s", trust_kind_name(kinds[i]),
                         trust_kind_name(kinds[j]));
        /* Nor as an entry's signature (entries sign the bare body today). */
        cr_expect_neq(crypto_sign_verify_detached(sig, body, sizeof body, A.pk), 0);
    }
}

/* The same DomainCert bytes signed under another kind's tag, or bare as a catalog entry is
 * signed, are refused as a certificate; a charter envelope is not a certificate at all. */
Test(cert, kind_confusion_end_to_end)
{
    size_t blen, elen;
    uint8_t *env, sa[64], sb[64];
    uint8_t *body = pack_cert(ch.fed_id, "payments", N.pk, T0, T0 + DAY_MS, &blen);
    const identity_t *ab[] = { &A, &B };
    const trust_kind_t wrong[] = { TRUST_KIND_CHARTER, TRUST_KIND_REVOKE };
    cert_t c;
    for (size_t w = 0; w < 3; w++) {
        /* w 0, 1: signed as a charter / revocation; w 2: signed bare (entry-style). */
        if (w < 2) {
            cr_assert_eq(trust_sign(wrong[w], body, blen, &A, sa), 0);
            cr_assert_eq(trust_sign(wrong[w], body, blen, &B, sb), 0);
        } else {
            crypto_sign_detached(sa, NULL, body, blen, A.sk);
            crypto_sign_detached(sb, NULL, body, blen, B.sk);
        }
        cr_assert_eq(trust_envelope_make(TRUST_KIND_CERT, body, blen, ab, 2, &env, &elen), 0);
        cr_assert_eq(cert_parse(env, elen, &c, err, sizeof err), 0, "%s", err);
        memcpy(c.env->sigs[0]->signature.data, sa, 64);
        memcpy(c.env->sigs[1]->signature.data, sb, 64);
        cr_expect_eq(verdict(&c, NULL, "payments", N.pk, T0 + 1, 0), TRUST_FORGED, "case %zu: %s", w, err);
        cert_free(&c);
        free(env);
    }
    free(body);

    /* A charter's envelope offered as a certificate, a revocation, and back. */
    cr_expect_neq(cert_parse(ch.bytes, ch.len, &c, err, sizeof err), 0);
    cr_expect(strstr(err, "this is a charter, not a certificate") != NULL, "%s", err);
    revocation_t r;
    cr_expect_neq(revocation_parse(ch.bytes, ch.len, &r, err, sizeof err), 0);
    charter_t x;
    good_cert(&c);
    cr_expect_eq(charter_verify(NULL, c.bytes, c.len, &x, err, sizeof err), TRUST_MALFORMED);
    /* Same envelope with its kind hint rewritten: the tag still decides. */
    c.env->kind = TRIB__TRUST_KIND__TRUST_CHARTER;
    size_t n = trib__trust_signed__get_packed_size(c.env);
    uint8_t *re = malloc(n);
    trib__trust_signed__pack(c.env, re);
    cr_expect_neq(charter_verify(NULL, re, n, &x, err, sizeof err), TRUST_OK);
    free(re);
    cert_free(&c);
}

/* A catalog entry signed by a root cannot pass as a certificate, a charter update or a
 * revocation, and their tagged signatures cannot pass as a catalog entry. */
Test(cert, entry_signatures_and_trust_signatures_do_not_mix)
{
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    Trib__Tombstone t = TRIB__TOMBSTONE__INIT;
    e.domain = "payments";
    e.seq = 1;
    e.time_ms = T0;
    t.name = "settled";
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
    e.tombstone = &t;
    uint8_t *se_bytes;
    size_t se_len;
    cr_assert_eq(entry_sign(&A, &e, &se_bytes, &se_len), 0);
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, se_len, se_bytes);
    cr_assert_not_null(se);
    /* The entry's body and signature in a certificate envelope. */
    Trib__TrustSigned env = TRIB__TRUST_SIGNED__INIT;
    Trib__TrustSignature s = TRIB__TRUST_SIGNATURE__INIT, *sp = &s;
    s.signer = se->signer;
    s.signature = se->signature;
    env.kind = TRIB__TRUST_KIND__TRUST_CERT;
    env.body = se->body;
    env.n_sigs = 1;
    env.sigs = &sp;
    cr_expect_eq(trust_sig_ok(TRUST_KIND_CERT, se->body.data, se->body.len, A.pk, se->signature.data), 0);
    size_t n = trib__trust_signed__get_packed_size(&env);
    uint8_t *b = malloc(n);
    trib__trust_signed__pack(&env, b);
    cert_t c;
    if (cert_parse(b, n, &c, err, sizeof err) == 0) {
        cr_expect_neq(verdict(&c, NULL, "payments", N.pk, T0, 0), TRUST_OK);
        cert_free(&c);
    }
    free(b);
    /* ... nor as a charter (version update) or a revocation. */
    charter_t x;
    revocation_t rv;
    env.kind = TRIB__TRUST_KIND__TRUST_CHARTER;
    n = trib__trust_signed__get_packed_size(&env);
    b = malloc(n);
    trib__trust_signed__pack(&env, b);
    cr_expect_neq(charter_verify(&ch, b, n, &x, err, sizeof err), TRUST_OK);
    cr_expect_neq(charter_verify(NULL, b, n, &x, err, sizeof err), TRUST_OK);
    free(b);
    env.kind = TRIB__TRUST_KIND__TRUST_REVOKE;
    n = trib__trust_signed__get_packed_size(&env);
    b = malloc(n);
    trib__trust_signed__pack(&env, b);
    if (revocation_parse(b, n, &rv, err, sizeof err) == 0) {
        cr_expect_neq(revocation_verify(&ch, &rv, err, sizeof err), TRUST_OK);
        revocation_free(&rv);
    }
    cr_expect_eq(trust_sig_ok(TRUST_KIND_CHARTER, se->body.data, se->body.len, A.pk, se->signature.data), 0);
    cr_expect_eq(trust_sig_ok(TRUST_KIND_REVOKE, se->body.data, se->body.len, A.pk, se->signature.data), 0);
    free(b);
    trib__signed_entry__free_unpacked(se, NULL);
    free(se_bytes);

    /* A charter's and a revocation's signature as a SignedEntry. */
    const identity_t *ab[] = { &A, &B };
    cr_assert_eq(revocation_issue(&ch, 1, 0, N.pk, T0, NULL, ab, 2, &rv, err, sizeof err), 0, "%s", err);
    Trib__TrustSigned *ce = trust_envelope_parse(ch.bytes, ch.len, TRUST_KIND_CHARTER, err, sizeof err);
    cr_assert_not_null(ce);
    const Trib__TrustSigned *envs[] = { ce, rv.env };
    for (size_t k = 0; k < 2; k++) {
        Trib__SignedEntry f = TRIB__SIGNED_ENTRY__INIT;
        f.body = envs[k]->body;
        f.signature = envs[k]->sigs[0]->signature;
        f.signer = envs[k]->sigs[0]->signer;
        n = trib__signed_entry__get_packed_size(&f);
        b = malloc(n);
        trib__signed_entry__pack(&f, b);
        entry_t eo;
        cr_expect_neq(entry_verify(b, n, &eo, err, sizeof err), 0);
        cr_expect_str_eq(err, "signature does not verify");
        free(b);
    }
    trib__trust_signed__free_unpacked(ce, NULL);
    revocation_free(&rv);

    /* A certificate's body and signature as a SignedEntry. */
    good_cert(&c);
    Trib__SignedEntry fake = TRIB__SIGNED_ENTRY__INIT;
    fake.body = c.env->body;
    fake.signature = c.env->sigs[0]->signature;
    fake.signer = c.env->sigs[0]->signer;
    n = trib__signed_entry__get_packed_size(&fake);
    b = malloc(n);
    trib__signed_entry__pack(&fake, b);
    entry_t out;
    cr_expect_neq(entry_verify(b, n, &out, err, sizeof err), 0);
    cr_expect_str_eq(err, "signature does not verify");
    free(b);
    cert_free(&c);
}

/* ================================================================ files */

static char dir[64];

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

Test(cert, files_round_trip_and_refuse_hand_edits)
{
    char p[128], q[128], r[128], why[512];
    snprintf(dir, sizeof dir, "/tmp/trib-cert-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    path_in(p, sizeof p, "charter.json");
    path_in(q, sizeof q, "edited.json");
    path_in(r, sizeof r, "payments.cert");

    json_t *j = charter_to_json(&ch);
    cr_assert_eq(trust_file_write(p, j, err, sizeof err), 0, "%s", err);
    cr_expect_neq(trust_file_write(p, j, err, sizeof err), 0, "refuses to overwrite");
    cr_expect(strstr(err, "already exists") != NULL, "%s", err);
    charter_t back;
    cr_assert_eq(charter_load(p, &back, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(memcmp(back.hash, ch.hash, TRUST_HASH_LEN), 0);
    cr_expect_eq(back.threshold, 2);
    charter_free(&back);

    json_object_set_new(j, "threshold", json_integer(1));
    cr_assert_eq(trust_file_write(q, j, err, sizeof err), 0, "%s", err);
    cr_expect_neq(charter_load(q, &back, why, sizeof why), TRUST_OK);
    cr_expect(strstr(why, "edited.json: field \"threshold\" differs") != NULL, "%s", why);
    unlink(q);
    json_object_set_new(j, "threshold", json_integer(2));
    json_object_set_new(j, "extra", json_true());
    cr_assert_eq(trust_file_write(q, j, err, sizeof err), 0, "%s", err);
    cr_expect_neq(charter_load(q, &back, why, sizeof why), TRUST_OK);
    cr_expect(strstr(why, "unknown field \"extra\"") != NULL, "%s", why);
    json_decref(j);

    cert_t c, c2;
    good_cert(&c);
    j = cert_to_json(&c);
    cr_assert_eq(trust_file_write(r, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    cr_assert_eq(cert_load(r, &c2, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c2.serial, c.serial);
    cr_expect_eq(verdict(&c2, NULL, "payments", N.pk, T0 + 1, 0), TRUST_OK, "%s", err);
    cr_expect_eq(trust_file_kind(r, err, sizeof err), TRUST_KIND_CERT);
    cr_expect_eq(trust_file_kind(p, err, sizeof err), TRUST_KIND_CHARTER);
    cr_expect_neq(charter_load(r, &back, why, sizeof why), TRUST_OK);
    cr_expect(strstr(why, "expected \"trib.charter\"") != NULL, "%s", why);
    cert_free(&c2);
    cert_free(&c);

    unlink(p), unlink(q), unlink(r);
    rmdir(dir);
}

/* ================================================================ random input */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* One random mutation of src into dst (cap bytes): flips, overwrites, inserts, deletes,
 * truncation, duplication of a slice. Returns the new length. */
static size_t mutate(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
    size_t n = len < cap ? len : cap;
    memcpy(dst, src, n);
    int rounds = 1 + (int)(next() % 4);
    for (int r = 0; r < rounds && n > 0; r++) {
        size_t at = next() % n;
        switch (next() % 6) {
        case 0: dst[at] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: dst[at] = (uint8_t)next(); break;
        case 2: if (n < cap) { memmove(dst + at + 1, dst + at, n - at); dst[at] = (uint8_t)next(); n++; } break;
        case 3: memmove(dst + at, dst + at + 1, n - at - 1); n--; break;
        case 4: n = at; break;
        case 5: {
            size_t k = 1 + next() % 16;
            if (at + k <= n && n + k <= cap) {
                memmove(dst + at + k, dst + at, n - at);
                n += k;
            }
            break;
        }
        }
    }
    return n;
}

Test(cert, random_input_never_crashes_or_passes_a_changed_body, .timeout = 300)
{
    cert_t c;
    revocation_t r;
    const identity_t *ab[] = { &A, &B };
    good_cert(&c);
    cr_assert_eq(revocation_issue(&ch, 0, c.serial, NULL, T0, "test", ab, 2, &r, err, sizeof err), 0);
    enum { CAP = 4096 };
    static uint8_t buf[CAP];
    size_t refused = 0, accepted = 0;
    for (int i = 0; i < 100000; i++) {
        int which = i % 3;
        const uint8_t *src = which == 0 ? ch.bytes : which == 1 ? c.bytes : r.bytes;
        size_t len = which == 0 ? ch.len : which == 1 ? c.len : r.len;
        size_t n = mutate(src, len, buf, CAP);
        err[0] = '\0';
        if (which == 0) {
            charter_t x;
            trust_verdict_t v = charter_verify(NULL, buf, n, &x, err, sizeof err);
            if (v == TRUST_OK) {
                accepted++;
                cr_assert_eq(memcmp(x.hash, ch.hash, TRUST_HASH_LEN), 0, "mutation %d: another charter", i);
                charter_free(&x);
            } else {
                refused++;
                cr_assert(err[0] != '\0', "mutation %d: refused (%s) without a message", i, trust_verdict_name(v));
            }
        } else if (which == 1) {
            cert_t x;
            if (cert_parse(buf, n, &x, err, sizeof err) != 0) {
                refused++;
                cr_assert(err[0] != '\0', "mutation %d: refused without a message", i);
                continue;
            }
            if (cert_valid_at(&ch, &x, NULL, x.domain, x.node_key, x.not_before_ms, 0, err,
                              sizeof err) == TRUST_OK) {
                accepted++;
                cr_assert_eq(memcmp(x.hash, c.hash, TRUST_HASH_LEN), 0, "mutation %d: another cert", i);
            } else {
                refused++;
            }
            cert_free(&x);
        } else {
            revocation_t x;
            if (revocation_parse(buf, n, &x, err, sizeof err) != 0) {
                refused++;
                cr_assert(err[0] != '\0', "mutation %d: refused without a message", i);
                continue;
            }
            if (revocation_verify(&ch, &x, err, sizeof err) == TRUST_OK) {
                accepted++;
                cr_assert_eq(memcmp(x.hash, r.hash, TRUST_HASH_LEN), 0, "mutation %d: another revocation", i);
            } else {
                refused++;
            }
            revocation_free(&x);
        }
    }
    cr_log_info("random trust bytes: %zu refused, %zu accepted (all with the original body)",
                refused, accepted);
    cr_expect_gt(refused, 90000);
    revocation_free(&r);
    cert_free(&c);
}

/* The JSON files: mutated text of a charter, certificate and revocation file. Messages name
 * the file and carry no control bytes from it (they reach a terminal). */
Test(cert, random_files_never_crash_and_always_say_why, .timeout = 300)
{
    char p[128];
    /* 20,000 small rewrites: tmpfs when there is one (an overlay /tmp takes a minute). */
    snprintf(dir, sizeof dir, "%s/trib-certfz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    path_in(p, sizeof p, "f.json");
    cert_t c;
    revocation_t r;
    const identity_t *ab[] = { &A, &B };
    good_cert(&c);
    cr_assert_eq(revocation_issue(&ch, 1, 0, N.pk, T0, "test", ab, 2, &r, err, sizeof err), 0);
    json_t *views[3] = { charter_to_json(&ch), cert_to_json(&c), revocation_to_json(&r) };
    char *texts[3];
    for (int k = 0; k < 3; k++)
        texts[k] = json_dumps(views[k], JSON_INDENT(2));
    enum { CAP = 8192 };
    static uint8_t buf[CAP];
    size_t ok = 0;
    for (int i = 0; i < 20000; i++) {
        int k = i % 3;
        size_t n = mutate((const uint8_t *)texts[k], strlen(texts[k]), buf, CAP);
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fwrite(buf, 1, n, f);
        fclose(f);
        err[0] = '\0';
        int good;
        if (k == 0) {
            charter_t x;
            good = charter_load(p, &x, err, sizeof err) == TRUST_OK;
            if (good)
                charter_free(&x);
        } else if (k == 1) {
            cert_t x;
            good = cert_load(p, &x, err, sizeof err) == 0;
            if (good)
                cert_free(&x);
        } else {
            revocation_t x;
            good = revocation_load(p, &x, err, sizeof err) == 0;
            if (good)
                revocation_free(&x);
        }
        if (good)
            ok++;
        else
            cr_assert(strncmp(err, p, strlen(p)) == 0, "mutation %d: message does not name the file: %s", i, err);
        for (const char *q = err; *q; q++)
            cr_assert((unsigned char)*q >= 0x20 && *q != 0x7f, "mutation %d: control byte in the message", i);
    }
    cr_log_info("random trust files: %zu of 20000 still loaded (whitespace-only changes)", ok);
    for (int k = 0; k < 3; k++) {
        free(texts[k]);
        json_decref(views[k]);
    }
    revocation_free(&r);
    cert_free(&c);
    unlink(p);
    rmdir(dir);
}
