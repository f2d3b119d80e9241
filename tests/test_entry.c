/* tests/test_entry.c - gossip/entry: sign/verify round trip, tampering, hostile bytes, shape.
 *
 * Owns: unit tests of entry_sign, entry_verify, entry_free, entry_hash and the name rules.
 * Every hostile case is table- or loop-driven: every bit of body, signature and signer is
 * flipped; every prefix is tried; garbage comes from a fixed seed so runs are repeatable.
 * Must not: touch the disk or the network (identities are made from fixed seeds in memory). */
#include <criterion/criterion.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/entry.h"

/* ---------------------------------------------------------------- helpers */

static void make_identity(identity_t *id, uint8_t seedbyte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(id, 0, sizeof *id);
    memset(seed, seedbyte, sizeof seed);
    cr_assert_geq(sodium_init(), 0);
    cr_assert_eq(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
    identity_hex(id->pk, id->hex);
}

typedef struct {
    Trib__CatalogEntry ce;
    Trib__Manifest m;
    Trib__Tombstone t;
    uint8_t prev[40];
} test_entry_t;

/* A well-shaped entry: manifest for domain/name at seq (prev_hash 32 bytes when seq > 1). */
static void build_manifest_entry(test_entry_t *te, const char *domain, const char *name, uint64_t seq)
{
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    Trib__Tombstone t = TRIB__TOMBSTONE__INIT;
    te->ce = ce;
    te->m = m;
    te->t = t;
    memset(te->prev, 0xab, sizeof te->prev);
    te->m.domain = (char *)domain;
    te->m.name = (char *)name;
    te->m.version = "1.0.0";
    te->m.title = "Settled card transactions";
    te->ce.domain = (char *)domain;
    te->ce.seq = seq;
    te->ce.time_ms = 1700000000000;
    if (seq > 1) {
        te->ce.prev_hash.data = te->prev;
        te->ce.prev_hash.len = 32;
    }
    te->ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    te->ce.manifest = &te->m;
}

static void use_tombstone(test_entry_t *te, const char *name)
{
    te->t.name = (char *)name;
    te->t.reason = "replaced";
    te->ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
    te->ce.tombstone = &te->t;        /* shares a union with manifest */
}

/* Packs a SignedEntry from parts (malloc'd). */
static uint8_t *pack_signed(const uint8_t *body, size_t blen, const uint8_t *sig, size_t slen,
                            const uint8_t *signer, size_t klen, size_t *len)
{
    Trib__SignedEntry se = TRIB__SIGNED_ENTRY__INIT;
    se.body.data = (uint8_t *)body;
    se.body.len = blen;
    se.signature.data = (uint8_t *)sig;
    se.signature.len = slen;
    se.signer.data = (uint8_t *)signer;
    se.signer.len = klen;
    *len = trib__signed_entry__get_packed_size(&se);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    trib__signed_entry__pack(&se, buf);
    return buf;
}

/* Signs arbitrary body bytes with id and packs them (a "validly signed" anything). */
static uint8_t *sign_bytes(const identity_t *id, const uint8_t *body, size_t blen, size_t *len)
{
    uint8_t sig[crypto_sign_BYTES];
    cr_assert_eq(crypto_sign_detached(sig, NULL, body, blen, id->sk), 0);
    return pack_signed(body, blen, sig, sizeof sig, id->pk, ID_PK_LEN, len);
}

/* Verifies and expects failure with err containing want (want NULL: any message). Also checks
 * that out is left zeroed. */
static void expect_refused(const uint8_t *bytes, size_t len, const char *want, const char *what)
{
    entry_t e;
    char err[256] = "";
    memset(&e, 0x5a, sizeof e);
    int rc = entry_verify(bytes, len, &e, err, sizeof err);
    cr_assert_eq(rc, -1, "%s: accepted", what);
    cr_assert_null(e.signed_entry, "%s: out not zeroed", what);
    cr_assert_null(e.entry, "%s: out not zeroed", what);
    cr_assert_neq(err[0], '\0', "%s: no error message", what);
    if (want)
        cr_assert(strstr(err, want) != NULL, "%s: expected '%s', got '%s'", what, want, err);
}

/* The signed test entry and its three parts, unpacked from the signature output. */
typedef struct {
    identity_t id;
    uint8_t *bytes;
    size_t len;
    Trib__SignedEntry *se;
} signed_fixture_t;

static void signed_fixture(signed_fixture_t *f)
{
    test_entry_t te;
    make_identity(&f->id, 7);
    build_manifest_entry(&te, "payments", "settled-transactions", 3);
    cr_assert_eq(entry_sign(&f->id, &te.ce, &f->bytes, &f->len), 0);
    f->se = trib__signed_entry__unpack(NULL, f->len, f->bytes);
    cr_assert_not_null(f->se);
}

static void signed_fixture_free(signed_fixture_t *f)
{
    trib__signed_entry__free_unpacked(f->se, NULL);
    free(f->bytes);
}

/* ---------------------------------------------------------------- round trip */

Test(entry, sign_verify_round_trip_manifest)
{
    identity_t id;
    test_entry_t te;
    uint8_t *bytes;
    size_t len;
    entry_t e;
    char err[256] = "";

    make_identity(&id, 1);
    build_manifest_entry(&te, "payments", "settled-transactions", 1);
    cr_assert_eq(entry_sign(&id, &te.ce, &bytes, &len), 0);
    cr_assert_leq(len, ENTRY_MAX_BYTES);
    cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);

    cr_assert_str_eq(e.entry->domain, "payments");
    cr_assert_eq(e.entry->seq, 1);
    cr_assert_eq(e.entry->prev_hash.len, 0);
    cr_assert_eq(e.entry->time_ms, 1700000000000);
    cr_assert_eq(e.entry->change_case, TRIB__CATALOG_ENTRY__CHANGE_MANIFEST);
    cr_assert_str_eq(e.entry->manifest->name, "settled-transactions");
    cr_assert_str_eq(e.entry->manifest->title, "Settled card transactions");
    cr_assert_eq(e.signed_entry->signer.len, ID_PK_LEN);
    cr_assert_arr_eq(e.signed_entry->signer.data, id.pk, ID_PK_LEN);

    /* The body is the exact packed CatalogEntry and the hash is BLAKE2b-256 of it. */
    size_t blen = trib__catalog_entry__get_packed_size(&te.ce);
    uint8_t *body = malloc(blen);
    trib__catalog_entry__pack(&te.ce, body);
    cr_assert_eq(e.signed_entry->body.len, blen);
    cr_assert_arr_eq(e.signed_entry->body.data, body, blen);
    uint8_t h[32];
    crypto_generichash(h, sizeof h, body, blen, NULL, 0);
    cr_assert_arr_eq(e.hash, h, 32);
    cr_assert_eq(crypto_sign_verify_detached(e.signed_entry->signature.data, body, blen, id.pk), 0);

    entry_free(&e);
    cr_assert_null(e.entry);
    cr_assert_null(e.signed_entry);
    entry_free(&e);                    /* a zeroed entry_t is accepted */
    entry_free(NULL);
    free(body);
    free(bytes);
}

Test(entry, sign_verify_round_trip_tombstone)
{
    identity_t id;
    test_entry_t te;
    uint8_t *bytes;
    size_t len;
    entry_t e;
    char err[256] = "";

    make_identity(&id, 2);
    build_manifest_entry(&te, "listening", "plays", 9);
    use_tombstone(&te, "plays");
    cr_assert_eq(entry_sign(&id, &te.ce, &bytes, &len), 0);
    cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e.entry->seq, 9);
    cr_assert_eq(e.entry->prev_hash.len, 32);
    cr_assert_arr_eq(e.entry->prev_hash.data, te.prev, 32);
    cr_assert_eq(e.entry->change_case, TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE);
    cr_assert_str_eq(e.entry->tombstone->name, "plays");
    cr_assert_str_eq(e.entry->tombstone->reason, "replaced");
    entry_free(&e);
    free(bytes);
}

/* protobuf encoding is not canonical: a body with its fields out of order still verifies, and
 * the hash is of the bytes received. A verifier that re-encoded would fail here. */
Test(entry, verifies_received_bytes_not_a_reencoding)
{
    identity_t id;
    make_identity(&id, 3);
    /* field 2 (seq=1) before field 1 (domain "abc"), then field 6 (tombstone {name "x"}) */
    static const uint8_t body[] = {0x10, 0x01, 0x0a, 0x03, 'a', 'b', 'c', 0x32, 0x03, 0x0a, 0x01, 'x'};
    size_t len;
    uint8_t *bytes = sign_bytes(&id, body, sizeof body, &len);
    entry_t e;
    char err[256] = "";
    cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(e.entry->domain, "abc");
    cr_assert_eq(e.entry->seq, 1);

    uint8_t h[32];
    entry_hash(body, sizeof body, h);
    cr_assert_arr_eq(e.hash, h, 32);
    size_t relen = trib__catalog_entry__get_packed_size(e.entry);
    uint8_t *re = malloc(relen);
    trib__catalog_entry__pack(e.entry, re);
    cr_assert(relen != sizeof body || memcmp(re, body, relen) != 0, "re-encoding should differ");
    free(re);
    entry_free(&e);
    free(bytes);
}

Test(entry, hash_is_blake2b_256)
{
    static const uint8_t empty_hash[32] = {
        0x0e, 0x57, 0x51, 0xc0, 0x26, 0xe5, 0x43, 0xb2, 0xe8, 0xab, 0x2e, 0xb0, 0x60, 0x99, 0xda, 0xa1,
        0xd1, 0xe5, 0xdf, 0x47, 0x77, 0x8f, 0x77, 0x87, 0xfa, 0xab, 0x45, 0xcd, 0xf1, 0x2f, 0xe3, 0xa8};
    uint8_t h[32], h2[32];
    entry_hash((const uint8_t *)"", 0, h);
    cr_assert_arr_eq(h, empty_hash, 32);
    entry_hash((const uint8_t *)"abc", 3, h);
    entry_hash((const uint8_t *)"abd", 3, h2);
    cr_assert_arr_neq(h, h2, 32);
}

/* ---------------------------------------------------------------- tampering */

Test(entry, every_bit_of_body_flipped_fails)
{
    signed_fixture_t f;
    signed_fixture(&f);
    const ProtobufCBinaryData *b = &f.se->body;
    uint8_t *body = malloc(b->len);
    for (size_t i = 0; i < b->len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char what[64];
            size_t len;
            memcpy(body, b->data, b->len);
            body[i] ^= (uint8_t)(1u << bit);
            uint8_t *bytes = pack_signed(body, b->len, f.se->signature.data, f.se->signature.len,
                                         f.se->signer.data, f.se->signer.len, &len);
            snprintf(what, sizeof what, "body byte %zu bit %d", i, bit);
            expect_refused(bytes, len, "signature does not verify", what);
            free(bytes);
        }
    }
    free(body);
    signed_fixture_free(&f);
}

Test(entry, every_bit_of_signature_flipped_fails)
{
    signed_fixture_t f;
    signed_fixture(&f);
    uint8_t sig[crypto_sign_BYTES];
    cr_assert_eq(f.se->signature.len, sizeof sig);
    for (size_t i = 0; i < sizeof sig; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char what[64];
            size_t len;
            memcpy(sig, f.se->signature.data, sizeof sig);
            sig[i] ^= (uint8_t)(1u << bit);
            uint8_t *bytes = pack_signed(f.se->body.data, f.se->body.len, sig, sizeof sig,
                                         f.se->signer.data, f.se->signer.len, &len);
            snprintf(what, sizeof what, "signature byte %zu bit %d", i, bit);
            expect_refused(bytes, len, "signature does not verify", what);
            free(bytes);
        }
    }
    signed_fixture_free(&f);
}

Test(entry, every_bit_of_signer_flipped_fails)
{
    signed_fixture_t f;
    signed_fixture(&f);
    uint8_t signer[ID_PK_LEN];
    cr_assert_eq(f.se->signer.len, sizeof signer);
    for (size_t i = 0; i < sizeof signer; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char what[64];
            size_t len;
            memcpy(signer, f.se->signer.data, sizeof signer);
            signer[i] ^= (uint8_t)(1u << bit);
            uint8_t *bytes = pack_signed(f.se->body.data, f.se->body.len, f.se->signature.data,
                                         f.se->signature.len, signer, sizeof signer, &len);
            snprintf(what, sizeof what, "signer byte %zu bit %d", i, bit);
            expect_refused(bytes, len, "signature does not verify", what);
            free(bytes);
        }
    }
    signed_fixture_free(&f);
}

/* Flipping any bit of the serialized SignedEntry (framing included) never yields an entry. */
Test(entry, every_bit_of_whole_message_flipped_fails)
{
    signed_fixture_t f;
    signed_fixture(&f);
    uint8_t *copy = malloc(f.len);
    for (size_t i = 0; i < f.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char what[64];
            memcpy(copy, f.bytes, f.len);
            copy[i] ^= (uint8_t)(1u << bit);
            snprintf(what, sizeof what, "message byte %zu bit %d", i, bit);
            expect_refused(copy, f.len, NULL, what);
        }
    }
    free(copy);
    signed_fixture_free(&f);
}

Test(entry, every_truncation_fails)
{
    signed_fixture_t f;
    signed_fixture(&f);
    for (size_t n = 0; n < f.len; n++) {
        char what[64];
        /* An exact-size copy so ASan catches any read past the given length. */
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, f.bytes, n);
        snprintf(what, sizeof what, "first %zu of %zu bytes", n, f.len);
        expect_refused(copy, n, NULL, what);
        free(copy);
    }
    expect_refused(NULL, 0, "empty", "NULL input");
    signed_fixture_free(&f);
}

Test(entry, garbage_fails)
{
    static const uint8_t seed[randombytes_SEEDBYTES] = "tributary-garbage-seed-000000001";
    uint8_t buf[512];
    cr_assert_geq(sodium_init(), 0);
    randombytes_buf_deterministic(buf, sizeof buf, seed);
    for (size_t n = 1; n <= sizeof buf; n++) {
        char what[64];
        uint8_t *copy = malloc(n);
        memcpy(copy, buf + sizeof buf - n, n);
        snprintf(what, sizeof what, "%zu random bytes", n);
        expect_refused(copy, n, NULL, what);
        free(copy);
    }
    static const struct { const char *bytes; size_t len; const char *want; } cases[] = {
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10, "not a SignedEntry"},
        {"\x0a\x7f" "abc", 5, "not a SignedEntry"},           /* body length past the end */
        {"\x08\x01", 2, "not a SignedEntry"},                  /* body as a varint: wrong wire type */
        {"\x0a\x01" "a", 3, "signer: 0 bytes, expected 32"},   /* decodes, but nothing else */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused((const uint8_t *)cases[i].bytes, cases[i].len, cases[i].want, "garbage case");
}

Test(entry, oversize_is_refused_before_decoding)
{
    identity_t id;
    make_identity(&id, 4);
    /* A validly signed SignedEntry whose body alone is ENTRY_MAX_BYTES. */
    size_t blen = ENTRY_MAX_BYTES;
    uint8_t *body = calloc(1, blen);
    size_t len;
    uint8_t *bytes = sign_bytes(&id, body, blen, &len);
    cr_assert_gt(len, ENTRY_MAX_BYTES);
    expect_refused(bytes, len, "over the limit", "oversize signed entry");
    /* Plain oversize garbage: one byte over. */
    expect_refused(bytes, ENTRY_MAX_BYTES + 1, "entry: 1048577 bytes, over the limit of 1048576",
                   "one byte over");
    free(bytes);
    free(body);
}

Test(entry, sign_refuses_an_entry_over_the_limit)
{
    identity_t id;
    test_entry_t te;
    make_identity(&id, 5);
    build_manifest_entry(&te, "payments", "big", 1);
    char *doc = malloc(ENTRY_MAX_BYTES + 1);
    memset(doc, 'x', ENTRY_MAX_BYTES);
    doc[ENTRY_MAX_BYTES] = '\0';
    te.m.document_json = doc;
    uint8_t *bytes = (uint8_t *)1;
    size_t len = 1;
    cr_assert_eq(entry_sign(&id, &te.ce, &bytes, &len), -1);
    cr_assert_null(bytes);
    cr_assert_eq(len, 0);
    free(doc);
}

/* ---------------------------------------------------------------- field sizes */

Test(entry, wrong_field_sizes_are_named)
{
    signed_fixture_t f;
    signed_fixture(&f);
    uint8_t big[128];
    memset(big, 1, sizeof big);
    const Trib__SignedEntry *s = f.se;
    const struct {
        size_t blen, slen, klen;
        const char *want;
    } cases[] = {
        {s->body.len, 64, 31, "signer: 31 bytes, expected 32"},
        {s->body.len, 64, 33, "signer: 33 bytes, expected 32"},
        {s->body.len, 64, 0, "signer: 0 bytes, expected 32"},
        {s->body.len, 63, 32, "signature: 63 bytes, expected 64"},
        {s->body.len, 65, 32, "signature: 65 bytes, expected 64"},
        {s->body.len, 0, 32, "signature: 0 bytes, expected 64"},
        {0, 64, 32, "body: empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t sig[128], key[128];
        size_t len;
        memset(sig, 0, sizeof sig);
        memset(key, 0, sizeof key);
        memcpy(sig, s->signature.data, 64);
        memcpy(key, s->signer.data, 32);
        uint8_t *bytes = pack_signed(s->body.data, cases[i].blen, sig, cases[i].slen, key,
                                     cases[i].klen, &len);
        expect_refused(bytes, len, cases[i].want, cases[i].want);
        free(bytes);
    }
    signed_fixture_free(&f);
}

Test(entry, signed_body_that_is_not_a_catalog_entry)
{
    identity_t id;
    make_identity(&id, 6);
    static const struct { const char *body; size_t len; } cases[] = {
        {"\x0a\x05" "a", 3},            /* domain length past the end */
        {"\xff\xff\xff\xff", 4},        /* unterminated varint tag */
        {"\x10\x80\x80\x80", 4},        /* unterminated varint value */
        {"\x0a\x01", 2},                /* truncated string */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *bytes = sign_bytes(&id, (const uint8_t *)cases[i].body, cases[i].len, &len);
        expect_refused(bytes, len, "body: not a CatalogEntry", "signed junk body");
        free(bytes);
    }
}

/* ---------------------------------------------------------------- shape */

typedef enum { SHAPE_MANIFEST, SHAPE_TOMBSTONE, SHAPE_NONE } shape_change_t;

Test(entry, validly_signed_bad_shapes_are_named)
{
    static const char long64[] = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd";
    static const struct {
        const char *domain;
        uint64_t seq;
        int prev_len;                  /* -1: the default for seq */
        shape_change_t change;
        const char *mdomain, *name;
        const char *want;
    } cases[] = {
        {"Bad!", 1, -1, SHAPE_MANIFEST, "Bad!", "x", "domain 'Bad!' is not a valid domain name"},
        {"", 1, -1, SHAPE_MANIFEST, "", "x", "domain '' is not a valid domain name"},
        {"PAYMENTS", 1, -1, SHAPE_MANIFEST, "PAYMENTS", "x", "domain 'PAYMENTS' is not a valid domain name"},
        {"-payments", 1, -1, SHAPE_MANIFEST, "-payments", "x", "domain '-payments' is not a valid"},
        {"pay/ments", 1, -1, SHAPE_MANIFEST, "pay/ments", "x", "domain 'pay/ments' is not a valid"},
        {"pay\nments", 1, -1, SHAPE_MANIFEST, "pay\nments", "x", "domain 'pay?ments' is not a valid"},
        {long64, 1, -1, SHAPE_MANIFEST, long64, "x", "is not a valid domain name"},
        {"payments", 0, 0, SHAPE_MANIFEST, "payments", "x", "payments: seq 0, must be >= 1"},
        {"payments", 1, 32, SHAPE_MANIFEST, "payments", "x", "payments seq 1: prev_hash: 32 bytes, expected none"},
        {"payments", 2, 0, SHAPE_MANIFEST, "payments", "x", "payments seq 2: prev_hash: 0 bytes, expected 32"},
        {"payments", 2, 31, SHAPE_MANIFEST, "payments", "x", "payments seq 2: prev_hash: 31 bytes, expected 32"},
        {"payments", 2, 33, SHAPE_MANIFEST, "payments", "x", "payments seq 2: prev_hash: 33 bytes, expected 32"},
        {"payments", 4, -1, SHAPE_NONE, NULL, NULL, "payments seq 4: entry carries no change"},
        {"payments", 1, -1, SHAPE_MANIFEST, "listening", "x",
         "manifest domain 'listening' differs from entry domain 'payments'"},
        {"payments", 1, -1, SHAPE_MANIFEST, "", "x", "manifest domain '' differs from entry domain 'payments'"},
        {"payments", 1, -1, SHAPE_MANIFEST, "payments", "Settled", "manifest name 'Settled' is not a valid product name"},
        {"payments", 1, -1, SHAPE_MANIFEST, "payments", "", "manifest name '' is not a valid product name"},
        {"payments", 1, -1, SHAPE_MANIFEST, "payments", long64, "is not a valid product name"},
        {"payments", 3, -1, SHAPE_TOMBSTONE, NULL, "a/b", "tombstone name 'a/b' is not a valid product name"},
        {"payments", 3, -1, SHAPE_TOMBSTONE, NULL, "", "tombstone name '' is not a valid product name"},
    };
    identity_t id;
    make_identity(&id, 8);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_entry_t te;
        build_manifest_entry(&te, cases[i].domain, cases[i].name ? cases[i].name : "x", cases[i].seq);
        if (cases[i].prev_len >= 0) {
            te.ce.prev_hash.data = te.prev;
            te.ce.prev_hash.len = (size_t)cases[i].prev_len;
        }
        if (cases[i].change == SHAPE_MANIFEST) {
            te.m.domain = (char *)cases[i].mdomain;
        } else if (cases[i].change == SHAPE_TOMBSTONE) {
            use_tombstone(&te, cases[i].name);
        } else {
            te.ce.change_case = TRIB__CATALOG_ENTRY__CHANGE__NOT_SET;
            te.ce.manifest = NULL;
        }
        uint8_t *bytes;
        size_t len;
        cr_assert_eq(entry_sign(&id, &te.ce, &bytes, &len), 0, "case %zu", i);
        expect_refused(bytes, len, cases[i].want, cases[i].want);
        free(bytes);
    }
}

/* The same entries with good shapes pass (so the table above fails for the stated reason). */
Test(entry, boundary_shapes_accepted)
{
    static const char long63[] = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc";
    static const struct { const char *domain, *name; uint64_t seq; } cases[] = {
        {"a", "b", 1}, {"0", "9", 2}, {long63, long63, 3}, {"pay-ments", "x-", UINT64_MAX},
    };
    identity_t id;
    make_identity(&id, 9);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_entry_t te;
        entry_t e;
        char err[256] = "";
        uint8_t *bytes;
        size_t len;
        build_manifest_entry(&te, cases[i].domain, cases[i].name, cases[i].seq);
        cr_assert_eq(entry_sign(&id, &te.ce, &bytes, &len), 0);
        cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "case %zu: %s", i, err);
        entry_free(&e);
        free(bytes);
    }
}

/* ---------------------------------------------------------------- names */

Test(entry, name_rules)
{
    static const struct { const char *s; int ok; } cases[] = {
        {"payments", 1}, {"a", 1}, {"0", 1}, {"a-b", 1}, {"a--", 1}, {"9lives", 1},
        {"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", 1},
        {"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", 0},
        {"", 0}, {"-a", 0}, {"A", 0}, {"a_b", 0}, {"a.b", 0}, {"a b", 0}, {"a/b", 0},
        {"caf\xc3\xa9", 0}, {NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(entry_valid_name(cases[i].s), cases[i].ok, "'%s'", cases[i].s ? cases[i].s : "(null)");
}

Test(entry, product_id_rules)
{
    static const struct { const char *s; int ok; } cases[] = {
        {"payments/settled-transactions", 1}, {"a/b", 1},
        {"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc/"
         "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", 1},
        {"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd/a", 0},
        {"a/abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", 0},
        {"payments", 0}, {"/x", 0}, {"x/", 0}, {"/", 0}, {"", 0}, {"a/b/c", 0},
        {"Payments/x", 0}, {"payments/-x", 0}, {"payments/x y", 0}, {NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(entry_valid_product_id(cases[i].s), cases[i].ok, "'%s'", cases[i].s ? cases[i].s : "(null)");
}

/* ---------------------------------------------------------------- decoded, unverified */

/* Checks what entry_decode gave for bytes: -1, or an entry of valid shape (a valid domain name,
 * seq >= 1) whose hash is its body's. */
static void expect_decoded_or_refused(const uint8_t *bytes, size_t len, const char *what)
{
    entry_t d;
    char err[256] = "";
    if (entry_decode(bytes, len, &d, err, sizeof err) != 0) {
        cr_assert_null(d.entry, "%s: refused, yet an entry", what);
        cr_assert_neq(err[0], '\0', "%s: refused without a reason", what);
        return;
    }
    cr_assert(entry_valid_name(d.entry->domain) && d.entry->seq >= 1, "%s: decoded '%s' %llu", what,
              d.entry->domain, (unsigned long long)d.entry->seq);
    uint8_t h[32];
    entry_hash(d.signed_entry->body.data, d.signed_entry->body.len, h);
    cr_assert_arr_eq(h, d.hash, 32, "%s", what);
    entry_free(&d);
}

/* entry_decode checks all entry_verify checks but the signature (a lookup of copies held): an
 * altered signature still decodes, entry_verify refuses it. Whatever the bytes, it gives an entry of
 * valid shape or -1, and reads no byte past len (ASan): every truncation, every bit flip of the whole
 * message, 20,000 random inputs. */
Test(entry, decode_checks_all_but_the_signature_and_garbage_decodes_to_nothing)
{
    signed_fixture_t f;
    signed_fixture(&f);
    entry_t d, v;
    char err[256];
    cr_assert_eq(entry_decode(f.bytes, f.len, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(entry_verify(f.bytes, f.len, &v, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(d.entry->domain, "payments");
    cr_assert_eq(d.entry->seq, 3);
    cr_assert_arr_eq(d.hash, v.hash, 32);
    entry_free(&d);
    entry_free(&v);

    uint8_t *copy = malloc(f.len);
    cr_assert_not_null(copy);
    memcpy(copy, f.bytes, f.len);
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, f.len, f.bytes);
    cr_assert_not_null(se);
    size_t at = (size_t)((const uint8_t *)memmem(f.bytes, f.len, se->signature.data, se->signature.len) - f.bytes);
    trib__signed_entry__free_unpacked(se, NULL);
    copy[at] ^= 1;                                 /* the signature altered */
    cr_assert_eq(entry_decode(copy, f.len, &d, err, sizeof err), 0, "%s", err);
    entry_free(&d);
    cr_assert_eq(entry_verify(copy, f.len, &v, err, sizeof err), -1);
    cr_assert_str_eq(err, "signature does not verify");
    cr_assert_eq(entry_decode(NULL, 0, &d, err, sizeof err), -1);
    cr_assert_eq(entry_decode(f.bytes, ENTRY_MAX_BYTES + 1, &d, err, sizeof err), -1, "over the limit");

    for (size_t n = 0; n < f.len; n++) {           /* truncations, in a buffer of exactly n bytes */
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, f.bytes, n);
        char what[64];
        snprintf(what, sizeof what, "first %zu of %zu bytes", n, f.len);
        expect_decoded_or_refused(n ? t : NULL, n, what);
        free(t);
    }
    for (size_t i = 0; i < f.len; i++)             /* every bit of the message flipped */
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, f.bytes, f.len);
            copy[i] ^= (uint8_t)(1u << bit);
            expect_decoded_or_refused(copy, f.len, "a bit flipped");
        }
    static const uint8_t rs[randombytes_SEEDBYTES] = "tributary-claim-seed-00000000001";
    uint8_t *buf = malloc(4096);
    cr_assert_not_null(buf);
    for (uint64_t k = 0; k < 20000; k++) {         /* random bytes, and the message with random bytes written in */
        uint8_t seed[randombytes_SEEDBYTES];
        memcpy(seed, rs, sizeof seed);
        memcpy(seed, &k, sizeof k);
        randombytes_buf_deterministic(buf, 4096, seed);
        size_t n = 1 + buf[0] % f.len;
        uint8_t *t = malloc(n);
        if (k % 2) {
            memcpy(t, f.bytes, n);
            for (size_t w = 0; w < 1u + buf[1] % 8u; w++)
                t[(buf[2 + 2 * w] | (size_t)buf[3 + 2 * w] << 8) % n] = buf[20 + w];
        } else {
            memcpy(t, buf + 64, n);
        }
        expect_decoded_or_refused(t, n, "random input");
        free(t);
    }
    free(buf);
    free(copy);
    signed_fixture_free(&f);
}
