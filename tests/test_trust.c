/* tests/test_trust.c - gossip/trust: the verified store the ZAP handler and catalog acceptance
 * will ask. Offers from bytes (good, forged, foreign, duplicate), admission by CURVE key, entry
 * verdicts for the rogue twin, other domains, revocation at the entry's time, expiry, and a
 * charter update that withdraws a removed root's certificates.
 *
 * Owns: in-memory keys and objects only. Must not: start processes. */
#include <criterion/criterion.h>

#include <sodium.h>
#include <string.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/trust.h"
#include "tests/fixtures.h"

#define DAY_MS 86400000LL
#define T0     1800000000000LL

static identity_t A, B, C, N, M;
static charter_t ch;
static trust_t *store;
static char err[512];

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&A), fx_identity(&B), fx_identity(&C), fx_identity(&N), fx_identity(&M);
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    const identity_t *roots[] = { &A, &B, &C };
    for (size_t i = 0; i < 3; i++) {
        memcpy(ch.keys[i].key, roots[i]->pk, ID_PK_LEN);
        ch.keys[i].role = CHARTER_ROLE_ROOT;
    }
    ch.nkeys = 3;
    ch.threshold = 2;
    ch.issued_ms = T0;
    cr_assert_eq(charter_sign(NULL, &ch, roots, 2, err, sizeof err), 0, "%s", err);
    store = trust_new(&ch);
    cr_assert_not_null(store);
}

static void teardown(void)
{
    trust_destroy(&store);
    cr_expect_null(store);
    charter_free(&ch);
}

TestSuite(trust, .init = setup, .fini = teardown);

/* Issues and offers a certificate; returns its serial. */
static uint64_t certify(const char *domain, const identity_t *node, const identity_t *r1,
                        const identity_t *r2, int64_t from, int64_t days)
{
    cert_t c;
    const identity_t *sig[] = { r1, r2 };
    cr_assert_eq(cert_issue(&ch, domain, node->pk, from, from + days * DAY_MS, 0, sig, 2, &c, err,
                            sizeof err), 0, "%s", err);
    int added = 0;
    cr_assert_eq(trust_offer_cert(store, c.bytes, c.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_assert_eq(added, 1);
    cr_assert_eq(trust_offer_cert(store, c.bytes, c.len, &added, err, sizeof err), TRUST_OK);
    cr_assert_eq(added, 0, "the same certificate twice is held once");
    uint64_t s = c.serial;
    cert_free(&c);
    return s;
}

Test(trust, admission_and_entries_for_the_owner_and_the_rogue_twin)
{
    certify("payments", &N, &A, &B, T0, 90);
    const cert_t *c = NULL;
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + DAY_MS, &c, err, sizeof err), TRUST_OK, "%s", err);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->domain, "payments");
    /* The rogue twin: its own key, claiming payments. */
    cr_expect_eq(trust_admit_curve(store, M.curve_pk, T0 + DAY_MS, &c, err, sizeof err), TRUST_UNCERTIFIED);
    cr_expect_null(c);
    cr_expect_eq(trust_entry_ok(store, "payments", M.pk, T0 + DAY_MS, err, sizeof err), TRUST_UNCERTIFIED);
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 + DAY_MS, err, sizeof err), TRUST_OK, "%s", err);
    /* The certified node writing for another domain. */
    cr_expect_eq(trust_entry_ok(store, "growth", N.pk, T0 + DAY_MS, err, sizeof err), TRUST_WRONG_DOMAIN);
    cr_expect(strstr(err, "is for domain payments, not growth") != NULL, "%s", err);
    /* Time: before, within skew, after. */
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 - 2 * TRUST_SKEW_MS, err, sizeof err),
                 TRUST_NOT_YET_VALID);
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 - TRUST_SKEW_MS / 2, err, sizeof err), TRUST_OK);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 91 * DAY_MS, &c, err, sizeof err), TRUST_EXPIRED);
    /* A rotation certificate for a new window: the old window's entries stay valid too. */
    certify("payments", &N, &B, &C, T0 + 89 * DAY_MS, 90);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 91 * DAY_MS, &c, err, sizeof err), TRUST_OK);
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 + DAY_MS, err, sizeof err), TRUST_OK);
    cr_expect_eq(trust_cert_count(store), 2);
}

Test(trust, refused_offers_are_not_held)
{
    cert_t c;
    const identity_t *ab[] = { &A, &B };
    cr_assert_eq(cert_issue(&ch, "payments", N.pk, T0, T0 + DAY_MS, 0, ab, 2, &c, err, sizeof err), 0);
    uint8_t *bad = malloc(c.len);
    memcpy(bad, c.bytes, c.len);
    bad[c.len - 1] ^= 1;
    int added = 1;
    cr_expect_eq(trust_offer_cert(store, bad, c.len, &added, err, sizeof err), TRUST_FORGED);
    cr_expect_eq(added, 0);
    cr_expect_eq(trust_offer_cert(store, bad, 3, &added, err, sizeof err), TRUST_MALFORMED);
    cr_expect_eq(trust_offer_revocation(store, c.bytes, c.len, &added, err, sizeof err), TRUST_MALFORMED,
                 "a certificate offered as a revocation");
    cr_expect_eq(trust_offer_charter(store, c.bytes, c.len, &added, err, sizeof err), TRUST_MALFORMED);
    cr_expect_eq(trust_cert_count(store), 0);
    cr_expect_eq(trust_revocation_count(store), 0);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 1, NULL, err, sizeof err), TRUST_UNCERTIFIED);
    free(bad);
    cert_free(&c);

    /* Another federation's certificate, same roots. */
    charter_t other = ch;
    other.bytes = NULL;
    randombytes_buf(other.fed_id, FED_ID_LEN);
    cr_assert_eq(charter_sign(NULL, &other, ab, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cert_issue(&other, "payments", N.pk, T0, T0 + DAY_MS, 0, ab, 2, &c, err, sizeof err), 0);
    cr_expect_eq(trust_offer_cert(store, c.bytes, c.len, &added, err, sizeof err), TRUST_WRONG_FEDERATION);
    cr_expect_eq(trust_offer_charter(store, other.bytes, other.len, &added, err, sizeof err),
                 TRUST_WRONG_FEDERATION);
    cr_expect_eq(trust_offer_charter(store, ch.bytes, ch.len, &added, err, sizeof err), TRUST_OK,
                 "the held version again is fine");
    cr_expect_eq(added, 0);
    cert_free(&c);
    charter_free(&other);
}

Test(trust, revocation_applies_from_its_effective_time)
{
    uint64_t serial = certify("payments", &N, &A, &B, T0, 90);
    revocation_t r;
    const identity_t *bc[] = { &B, &C };
    cr_assert_eq(revocation_issue(&ch, 1, 0, N.pk, T0 + 10 * DAY_MS, "stolen", bc, 2, &r, err,
                                  sizeof err), 0, "%s", err);
    int added;
    cr_assert_eq(trust_offer_revocation(store, r.bytes, r.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(added, 1);
    cr_expect_eq(trust_offer_revocation(store, r.bytes, r.len, &added, err, sizeof err), TRUST_OK);
    cr_expect_eq(added, 0);
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 + 9 * DAY_MS, err, sizeof err), TRUST_OK,
                 "signed before the revocation: still valid");
    cr_expect_eq(trust_entry_ok(store, "payments", N.pk, T0 + 10 * DAY_MS, err, sizeof err), TRUST_REVOKED);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 11 * DAY_MS, NULL, err, sizeof err), TRUST_REVOKED);
    cr_expect(strstr(err, "its key is revoked") != NULL, "%s", err);
    /* A fresh certificate of the same key does not escape a key revocation. */
    certify("payments", &N, &A, &C, T0 + 10 * DAY_MS, 90);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 11 * DAY_MS, NULL, err, sizeof err), TRUST_REVOKED);
    (void)serial;
    revocation_free(&r);

    /* One root alone cannot revoke. */
    Trib__Revocation m = TRIB__REVOCATION__INIT;
    m.federation_id.data = ch.fed_id;
    m.federation_id.len = FED_ID_LEN;
    m.target_case = TRIB__REVOCATION__TARGET_SERIAL;
    m.serial = serial;
    size_t blen = trib__revocation__get_packed_size(&m), elen;
    uint8_t *body = malloc(blen), *env;
    trib__revocation__pack(&m, body);
    const identity_t *one[] = { &A };
    cr_assert_eq(trust_envelope_make(TRUST_KIND_REVOKE, body, blen, one, 1, &env, &elen), 0);
    cr_expect_eq(trust_offer_revocation(store, env, elen, &added, err, sizeof err), TRUST_BELOW_THRESHOLD);
    cr_expect_eq(trust_revocation_count(store), 1);
    free(env);
    free(body);
}

Test(trust, charter_update_withdraws_a_removed_roots_certificates)
{
    certify("payments", &N, &A, &C, T0, 90);     /* backed by C */
    certify("growth", &M, &A, &B, T0, 90);
    charter_t v2 = ch;
    v2.bytes = NULL;
    v2.nkeys = 2;                                /* drop C */
    const identity_t *ab[] = { &A, &B };
    cr_assert_eq(charter_sign(&ch, &v2, ab, 2, err, sizeof err), 0, "%s", err);
    int added;
    cr_assert_eq(trust_offer_charter(store, v2.bytes, v2.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(added, 1);
    cr_expect_eq(trust_charter(store)->version, 2);
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + DAY_MS, NULL, err, sizeof err),
                 TRUST_BELOW_THRESHOLD, "%s", err);
    cr_expect_eq(trust_admit_curve(store, M.curve_pk, T0 + DAY_MS, NULL, err, sizeof err), TRUST_OK, "%s", err);
    /* Replaying version 1 changes nothing. */
    cr_expect_eq(trust_offer_charter(store, ch.bytes, ch.len, &added, err, sizeof err), TRUST_STALE_VERSION);
    cr_expect_eq(trust_charter(store)->version, 2);
    charter_free(&v2);
}

/* Enough certificates to grow the lookup index several times: each key still finds its own. */
Test(trust, many_certificates_each_found_by_key_and_curve)
{
    enum { NDOM = 300 };
    static identity_t nodes[NDOM];
    char dom[32];
    for (int i = 0; i < NDOM; i++) {
        fx_identity(&nodes[i]);
        snprintf(dom, sizeof dom, "domain-%d", i);
        certify(dom, &nodes[i], &A, &B, T0, 90);
    }
    cr_assert_eq(trust_cert_count(store), NDOM);
    for (int i = 0; i < NDOM; i++) {
        const cert_t *c = NULL;
        snprintf(dom, sizeof dom, "domain-%d", i);
        cr_expect_eq(trust_admit_curve(store, nodes[i].curve_pk, T0 + 1, &c, err, sizeof err), TRUST_OK,
                     "node %d: %s", i, err);
        cr_expect(c != NULL && strcmp(c->domain, dom) == 0, "node %d found another certificate", i);
        cr_expect_eq(trust_entry_ok(store, dom, nodes[i].pk, T0 + 1, err, sizeof err), TRUST_OK);
        cr_expect_eq(trust_entry_ok(store, "domain-x", nodes[i].pk, T0 + 1, err, sizeof err),
                     TRUST_WRONG_DOMAIN);
    }
    cr_expect_eq(trust_admit_curve(store, M.curve_pk, T0 + 1, NULL, err, sizeof err), TRUST_UNCERTIFIED);
    cr_expect_eq(trust_entry_ok(store, "domain-1", M.pk, T0 + 1, err, sizeof err), TRUST_UNCERTIFIED);
}

/* trust_check answers as the matching offer would and holds nothing: what the federation log asks
 * of an operator's object before its durable commit (it is offered, and in force, only after). */
Test(trust, a_check_holds_nothing)
{
    cert_t c;
    const identity_t *ab[] = { &A, &B };
    cr_assert_eq(cert_issue(&ch, "payments", N.pk, T0, T0 + DAY_MS, 0, ab, 2, &c, err, sizeof err), 0, "%s", err);
    revocation_t r;
    cr_assert_eq(revocation_issue(&ch, 1, 0, N.pk, T0 + 1000, "test", ab, 2, &r, err, sizeof err), 0, "%s", err);
    charter_t v2 = ch;                  /* v2 removes C */
    v2.bytes = NULL;
    v2.nkeys = 2;
    cr_assert_eq(charter_sign(&ch, &v2, ab, 2, err, sizeof err), 0, "%s", err);
    cr_expect_eq(trust_check(store, TRUST_KIND_CERT, c.bytes, c.len, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_check(store, TRUST_KIND_REVOKE, r.bytes, r.len, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_check(store, TRUST_KIND_CHARTER, v2.bytes, v2.len, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_cert_count(store), 0, "a checked certificate is held");
    cr_expect_eq(trust_revocation_count(store), 0, "a checked revocation is held");
    cr_expect_eq(trust_charter(store)->version, 1, "a checked charter update is held");
    cr_expect_eq(trust_admit_curve(store, N.curve_pk, T0 + 1, NULL, err, sizeof err), TRUST_UNCERTIFIED);
    /* refusals are the offers' */
    uint8_t *bad = malloc(c.len);
    memcpy(bad, c.bytes, c.len);
    bad[c.len - 1] ^= 1;
    cr_expect_eq(trust_check(store, TRUST_KIND_CERT, bad, c.len, err, sizeof err), TRUST_FORGED);
    cr_expect_eq(trust_check(store, TRUST_KIND_REVOKE, c.bytes, c.len, err, sizeof err), TRUST_MALFORMED);
    cr_expect_eq(trust_check(store, TRUST_KIND_POLICY, c.bytes, c.len, err, sizeof err), TRUST_MALFORMED,
                 "a kind the trust store does not hold");
    /* offered, then held: the check says so again, and still changes nothing */
    int added = 0;
    cr_assert_eq(trust_offer_cert(store, c.bytes, c.len, &added, err, sizeof err), TRUST_OK, "%s", err);
    cr_expect_eq(trust_check(store, TRUST_KIND_CERT, c.bytes, c.len, err, sizeof err), TRUST_OK);
    cr_expect_eq(trust_cert_count(store), 1);
    free(bad);
    revocation_free(&r);
    charter_free(&v2);
    cert_free(&c);
}
