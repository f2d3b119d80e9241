/* tests/test_token.c - gossip/token: access tokens of issue 11 (DESIGN.md §13).
 *
 * Owns: the round trip, one case per refusal reason (tampered bytes, forged, expired and
 * not-yet-valid around the skew, widening of expiry, glob and kind, removed, reordered and
 * re-signed blocks, oversize, signatures of other kinds presented as token blocks), the glob and
 * "what needs what" tables, 100,000 mutated tokens, and `trib token show|attenuate` through the
 * real binary. Hostile chains are built here by hand (protobuf + libsodium), not through the
 * library, so the verifier is tested against tokens its own attenuate would refuse to make.
 * Must not: depend on a running node (the issuer lookup is a function here). */
#include <criterion/criterion.h>
#include <glob.h>

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <jansson.h>

#include "gossip/entry.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "proto/tributary.pb-c.h"
#include "tests/harness.h"

#define B64V sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define HOUR 3600000LL

static identity_t issuer, other;
static int64_t now;

static void make_id(identity_t *id)
{
    memset(id, 0, sizeof *id);
    crypto_sign_keypair(id->pk, id->sk);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    make_id(&issuer);
    make_id(&other);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

TestSuite(token, .init = setup);

/* The issuer lookup a node would pass: payments is bound to `issuer`. */
static int lookup(void *ctx, const char *domain, const uint8_t key[ID_PK_LEN], int64_t t)
{
    (void)ctx;
    (void)t;
    return strcmp(domain, "payments") == 0 && memcmp(key, issuer.pk, ID_PK_LEN) == 0;
}

static token_reason_t check(const char *t, token_claims_t *c)
{
    char err[256] = "";
    token_claims_t tmp;
    token_reason_t r = token_verify(t, strlen(t), now, lookup, NULL, c ? c : &tmp, err, sizeof err);
    cr_assert_neq(err[0], '\0', "every verdict comes with a message");
    return r;
}

static char *issue_full(const identity_t *id, token_kind_t kind, const char *product, int64_t issued, int64_t expires)
{
    char err[256] = "", *t = NULL;
    token_spec_t s = { .subject = "ci@payments", .kind = kind, .product = product, .issued_ms = issued,
                       .expires_ms = expires };
    cr_assert_eq(token_issue(id, "payments", &s, &t, err, sizeof err), 0, "%s", err);
    return t;
}

static char *issue(token_kind_t kind)
{
    return issue_full(&issuer, kind, NULL, now, now + 24 * HOUR);
}

static char *narrow(const char *t, token_kind_t kind, const char *product, int64_t expires)
{
    char err[256] = "", *out = NULL;
    token_narrow_t n = { kind, product, expires };
    cr_assert_eq(token_attenuate(t, &n, now, &out, err, sizeof err), 0, "%s", err);
    return out;
}

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* ---------------------------------------------------------------- hand-built tokens */

static Trib__Token *tok_decode(const char *t)
{
    static uint8_t bin[TOKEN_MAX_TEXT * 2];
    size_t blen = 0;
    cr_assert_eq(strncmp(t, TOKEN_PREFIX, 6), 0);
    cr_assert_eq(sodium_base642bin(bin, sizeof bin, t + 6, strlen(t) - 6, NULL, &blen, NULL, B64V), 0);
    Trib__Token *tok = trib__token__unpack(NULL, blen, bin);
    cr_assert_not_null(tok);
    return tok;
}

static char *bin_encode(const uint8_t *bin, size_t blen)
{
    size_t tlen = 6 + sodium_base64_ENCODED_LEN(blen, B64V);
    char *text = malloc(tlen);
    memcpy(text, TOKEN_PREFIX, 6);
    sodium_bin2base64(text + 6, tlen - 6, bin, blen, B64V);
    return text;
}

static char *tok_encode(const Trib__Token *tok)
{
    size_t blen = trib__token__get_packed_size(tok);
    uint8_t *bin = malloc(blen + 1);
    trib__token__pack(tok, bin);
    char *t = bin_encode(bin, blen);
    free(bin);
    return t;
}

static void sign_tagged(const char *tag, const uint8_t *body, size_t len, const uint8_t *sk, uint8_t sig[64])
{
    size_t tl = tag ? strlen(tag) + 1 : 0;
    uint8_t *m = malloc(tl + len + 1);
    if (tl)
        memcpy(m, tag, tl);
    memcpy(m + tl, body, len);
    crypto_sign_detached(sig, NULL, m, tl + len, sk);
    free(m);
}

/* Appends a block (kind, product, expiry; 0/NULL = unchanged) signed by `signer_sk`, or by the
 * proof's key when NULL, the way a holder would, even if it widens. Its link to the previous
 * block is raw_link when set (64 bytes), else the previous block's signature. */
static const uint8_t *raw_link;
static int raw_sealed;   /* commit a next_key that is not the proof's: nobody can add a block */

static char *raw_block(const char *t, uint32_t kind, const char *product, int64_t expires,
                       const uint8_t *signer_sk)
{
    Trib__Token *tok = tok_decode(t);
    uint8_t pk[32], sk[64], seed[32], npk[32], nsk[64], sig[64], ph[32];
    crypto_sign_seed_keypair(pk, sk, tok->proof.data);
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(npk, nsk, seed);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"trib/token/proof", 17);
    crypto_generichash_update(&st, seed, 32);
    crypto_generichash_final(&st, ph, 32);
    Trib__TokenBody b = TRIB__TOKEN_BODY__INIT;
    b.version = 1;
    b.kind = kind;
    b.product = (char *)(product ? product : "");
    b.expires_ms = expires;
    if (raw_sealed)
        randombytes_buf(npk, sizeof npk);
    b.next_key = (ProtobufCBinaryData){ 32, npk };
    b.proof_hash = (ProtobufCBinaryData){ 32, ph };
    b.prev_signature = tok->blocks[tok->n_blocks - 1]->signature;
    if (raw_link)
        b.prev_signature = (ProtobufCBinaryData){ 64, (uint8_t *)raw_link };
    uint8_t body[1024];
    size_t blen = trib__token_body__pack(&b, body);
    sign_tagged(TOKEN_TAG, body, blen, signer_sk ? signer_sk : sk, sig);
    Trib__TokenBlock blk = TRIB__TOKEN_BLOCK__INIT;
    blk.body = (ProtobufCBinaryData){ blen, body };
    blk.signature = (ProtobufCBinaryData){ 64, sig };
    Trib__TokenBlock **blocks = calloc(tok->n_blocks + 1, sizeof *blocks);
    memcpy(blocks, tok->blocks, tok->n_blocks * sizeof *blocks);
    blocks[tok->n_blocks] = &blk;
    Trib__Token nt = TRIB__TOKEN__INIT;
    nt.n_blocks = tok->n_blocks + 1;
    nt.blocks = blocks;
    nt.proof = (ProtobufCBinaryData){ 32, seed };
    char *out = tok_encode(&nt);
    free(blocks);
    trib__token__free_unpacked(tok, NULL);
    return out;
}

/* Block 0 rebuilt: its body (as given) signed with sk under tag (NULL: no tag). */
static char *resign_block0(const char *t, const uint8_t *body, size_t blen, const char *tag, const uint8_t *sk)
{
    Trib__Token *tok = tok_decode(t);
    uint8_t sig[64];
    sign_tagged(tag, body, blen, sk, sig);
    Trib__TokenBlock blk = TRIB__TOKEN_BLOCK__INIT;
    blk.body = (ProtobufCBinaryData){ blen, (uint8_t *)body };
    blk.signature = (ProtobufCBinaryData){ 64, sig };
    Trib__TokenBlock *blocks[1] = { &blk };
    Trib__Token nt = TRIB__TOKEN__INIT;
    nt.n_blocks = 1;
    nt.blocks = blocks;
    nt.proof = tok->proof;
    char *out = tok_encode(&nt);
    trib__token__free_unpacked(tok, NULL);
    return out;
}

/* ---------------------------------------------------------------- round trip */

Test(token, issue_verify_round_trip)
{
    char *t = issue_full(&issuer, TOKEN_KIND_WRITE, "payments/*", now, now + HOUR);
    token_claims_t c;
    cr_assert_eq(strncmp(t, "trib1.", 6), 0);
    cr_assert_eq(check(t, &c), TOKEN_OK);
    cr_assert_str_eq(c.domain, "payments");
    cr_assert_str_eq(c.subject, "ci@payments");
    cr_assert_eq(c.kind, TOKEN_KIND_WRITE);
    cr_assert_str_eq(c.scope, "payments/*");
    cr_assert_eq(c.issued_ms, now);
    cr_assert_eq(c.expires_ms, now + HOUR);
    cr_assert_eq(c.nblocks, 1);
    cr_assert_arr_eq(c.issuer_key, issuer.pk, 32);
    cr_assert_eq(strlen(c.id), 32);
    cr_assert_eq(strspn(t + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), strlen(t) - 6,
                 "URL-safe base64 without padding");
    /* two tokens with the same claims differ (nonce) */
    char *t2 = issue_full(&issuer, TOKEN_KIND_WRITE, "payments/*", now, now + HOUR);
    cr_assert_str_neq(t, t2);
    free(t);
    free(t2);
}

Test(token, attenuation_narrows_and_chains)
{
    char *t0 = issue(TOKEN_KIND_ADMIN);
    char *t1 = narrow(t0, TOKEN_KIND_WRITE, "payments/settled-*", now + 2 * HOUR);
    char *t2 = narrow(t1, TOKEN_KIND_READ, "payments/settled-eu", 0);
    token_claims_t c0, c2;
    cr_assert_eq(check(t0, &c0), TOKEN_OK);
    cr_assert_eq(check(t2, &c2), TOKEN_OK);
    cr_assert_eq(c2.nblocks, 3);
    cr_assert_eq(c2.kind, TOKEN_KIND_READ);
    cr_assert_str_eq(c2.scope, "payments/settled-eu");
    cr_assert_eq(c2.expires_ms, now + 2 * HOUR);
    cr_assert_str_eq(c2.subject, "ci@payments");
    cr_assert_arr_eq(c2.revocation_ids[0], c0.revocation_ids[0], 64, "block 0 keeps its revocation id");
    cr_assert_str_neq(c2.id, c0.id);
    free(t0);
    free(t1);
    free(t2);
}

/* ---------------------------------------------------------------- each refusal */

Test(token, every_byte_flipped_once_is_refused)
{
    char *t0 = issue(TOKEN_KIND_WRITE);
    char *t1 = narrow(t0, 0, "payments/settled-*", 0);
    char *t = narrow(t1, TOKEN_KIND_READ, NULL, now + HOUR);
    uint8_t bin[TOKEN_MAX_TEXT];
    size_t blen = 0;
    cr_assert_eq(sodium_base642bin(bin, sizeof bin, t + 6, strlen(t) - 6, NULL, &blen, NULL, B64V), 0);
    int seen[TOKEN_REASON_COUNT] = { 0 };
    for (size_t i = 0; i < blen; i++) {
        bin[i] ^= 0xff;
        char *m = bin_encode(bin, blen);
        token_reason_t r = check(m, NULL);
        cr_assert_neq(r, TOKEN_OK, "byte %zu flipped was accepted", i);
        seen[r]++;
        free(m);
        bin[i] ^= 0xff;
    }
    cr_assert_gt(seen[TOKEN_FORGED], 0);
    cr_assert_gt(seen[TOKEN_TAMPERED], 0);
    cr_assert_gt(seen[TOKEN_MALFORMED], 0);
    /* the text too: every character replaced by another base64 character */
    size_t len = strlen(t);
    for (size_t i = 0; i < len; i++) {
        char save = t[i];
        t[i] = save == 'A' ? 'B' : 'A';
        cr_assert_neq(check(t, NULL), TOKEN_OK, "character %zu changed was accepted", i);
        t[i] = save;
    }
    cr_assert_eq(check(t, NULL), TOKEN_OK);
    free(t0);
    free(t1);
    free(t);
}

Test(token, forged_and_unknown_issuer)
{
    /* block 0 names the payments key but is signed by another */
    char *t = issue(TOKEN_KIND_ADMIN);
    Trib__Token *tok = tok_decode(t);
    char *f = resign_block0(t, tok->blocks[0]->body.data, tok->blocks[0]->body.len, TOKEN_TAG, other.sk);
    cr_assert_eq(check(f, NULL), TOKEN_FORGED);
    /* signed honestly by a key that is not payments' */
    char *u = issue_full(&other, TOKEN_KIND_ADMIN, NULL, now, now + HOUR);
    cr_assert_eq(check(u, NULL), TOKEN_UNKNOWN_ISSUER);
    /* token_inspect cannot tell: it checks the chain only */
    token_claims_t c;
    cr_assert_eq(token_inspect(u, strlen(u), now, &c, NULL, 0), TOKEN_OK);
    /* a lookup that says no to everything, and no lookup at all */
    cr_assert_eq(token_verify(t, strlen(t), now, NULL, NULL, &c, NULL, 0), TOKEN_UNKNOWN_ISSUER);
    cr_assert_eq(c.nblocks, 0, "claims are zeroed on refusal");
    trib__token__free_unpacked(tok, NULL);
    free(t);
    free(f);
    free(u);
}

Test(token, expiry_and_not_yet_valid_around_the_skew)
{
    char *exp_in_skew = issue_full(&issuer, TOKEN_KIND_READ, NULL, now - 2 * HOUR, now - 30000);
    char *expired = issue_full(&issuer, TOKEN_KIND_READ, NULL, now - 2 * HOUR, now - 90000);
    char *early_in_skew = issue_full(&issuer, TOKEN_KIND_READ, NULL, now + 30000, now + HOUR);
    char *early = issue_full(&issuer, TOKEN_KIND_READ, NULL, now + 90000, now + HOUR);
    token_claims_t c;
    cr_assert_eq(check(exp_in_skew, NULL), TOKEN_OK);
    cr_assert_eq(check(expired, &c), TOKEN_EXPIRED);
    cr_assert_eq(c.expires_ms, now - 90000, "an expired token's claims are still given, for show");
    cr_assert_eq(check(early_in_skew, NULL), TOKEN_OK);
    cr_assert_eq(check(early, NULL), TOKEN_NOT_YET_VALID);
    /* an attenuation's shorter expiry counts */
    char *t = issue(TOKEN_KIND_READ);
    char *shorter = raw_block(t, 0, NULL, now - 90000, NULL);
    cr_assert_eq(check(shorter, NULL), TOKEN_EXPIRED);
    /* attenuating an expired token is refused */
    char err[256], *out = NULL;
    token_narrow_t n = { TOKEN_KIND_READ, NULL, 0 };
    cr_assert_eq(token_attenuate(expired, &n, now, &out, err, sizeof err), -1);
    cr_assert(strstr(err, "expired"), "%s", err);
    free(exp_in_skew);
    free(expired);
    free(early_in_skew);
    free(early);
    free(t);
    free(shorter);
}

Test(token, widening_is_refused)
{
    char *t = issue_full(&issuer, TOKEN_KIND_READ, "payments/settled-*", now, now + HOUR);
    static const struct { uint32_t kind; const char *product; int64_t exp_delta; const char *why; } cases[] = {
        { 0, NULL, 2 * HOUR, "longer expiry" },
        { 0, "payments/*", 0, "more products" },
        { 0, "*/*", 0, "every product" },
        { 0, "payments/*settled-*", 0, "a glob not shown to be within" },
        { 0, "growth/settled-*", 0, "another domain" },
        { TOKEN_KIND_WRITE, NULL, 0, "write from read" },
        { TOKEN_KIND_ADMIN, NULL, 0, "admin from read" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t exp = cases[i].exp_delta ? now + cases[i].exp_delta : 0;
        char *w = raw_block(t, cases[i].kind, cases[i].product, exp, NULL);
        cr_assert_eq(check(w, NULL), TOKEN_WIDENED, "%s", cases[i].why);
        /* and after a narrowing block that was fine */
        char *n1 = narrow(t, 0, "payments/settled-eu*", 0);
        char *w2 = raw_block(n1, cases[i].kind, cases[i].product ? cases[i].product : "payments/settled-*", exp, NULL);
        cr_assert_eq(check(w2, NULL), TOKEN_WIDENED, "%s after a narrowing", cases[i].why);
        /* the library refuses to make it, naming what */
        char err[256] = "", *out = NULL;
        token_narrow_t nw = { (token_kind_t)cases[i].kind, cases[i].product, exp };
        cr_assert_eq(token_attenuate(t, &nw, now, &out, err, sizeof err), -1, "%s", cases[i].why);
        cr_assert(strstr(err, "narrow") || strstr(err, "shorten"), "%s", err);
        free(w);
        free(n1);
        free(w2);
    }
    free(t);
}

Test(token, removed_reordered_resigned_blocks_are_tampered)
{
    char *t0 = issue(TOKEN_KIND_ADMIN);
    char *t1 = narrow(t0, TOKEN_KIND_WRITE, NULL, 0);
    char *t2 = narrow(t1, 0, "payments/a*", 0);
    char *t3 = narrow(t2, TOKEN_KIND_READ, NULL, 0);
    cr_assert_eq(check(t3, NULL), TOKEN_OK);
    Trib__Token *tok = tok_decode(t3);
    Trib__TokenBlock **orig = tok->blocks;
    Trib__TokenBlock *b[4] = { orig[0], orig[1], orig[2], orig[3] };
    tok->blocks = b;

    tok->n_blocks = 3; /* last removed, proof kept */
    char *m = tok_encode(tok);
    cr_assert_eq(check(m, NULL), TOKEN_TAMPERED, "last block removed");
    free(m);
    tok->n_blocks = 4;
    b[2] = orig[3]; /* middle removed */
    tok->n_blocks = 3;
    m = tok_encode(tok);
    cr_assert_eq(check(m, NULL), TOKEN_TAMPERED, "middle block removed");
    free(m);
    tok->n_blocks = 4;
    b[2] = orig[1];
    b[1] = orig[2]; /* reordered */
    m = tok_encode(tok);
    cr_assert_eq(check(m, NULL), TOKEN_TAMPERED, "blocks reordered");
    free(m);
    b[1] = orig[0];
    b[0] = orig[1];
    b[2] = orig[2];
    m = tok_encode(tok);
    cr_assert_neq(check(m, NULL), TOKEN_OK, "block 0 moved");
    free(m);
    tok->blocks = orig;
    trib__token__free_unpacked(tok, NULL);

    /* a block signed by the right key but linked to another signature */
    uint8_t zero[64] = { 0 };
    raw_link = zero;
    char *unlinked = raw_block(t1, 0, "payments/a*", 0, NULL);
    raw_link = NULL;
    cr_assert_eq(check(unlinked, NULL), TOKEN_TAMPERED);
    free(unlinked);
    /* a block whose next key is not the proof's: valid as it is, but it cannot be narrowed */
    raw_sealed = 1;
    char *sealed = raw_block(t1, 0, "payments/a*", 0, NULL);
    raw_sealed = 0;
    cr_assert_eq(check(sealed, NULL), TOKEN_OK);
    char serr[256] = "", *sout = NULL;
    token_narrow_t sn = { TOKEN_KIND_READ, NULL, 0 };
    cr_assert_eq(token_attenuate(sealed, &sn, now, &sout, serr, sizeof serr), -1);
    cr_assert(strstr(serr, "cannot be narrowed"), "%s", serr);
    char *forced = raw_block(sealed, TOKEN_KIND_READ, NULL, 0, NULL);
    cr_assert_eq(check(forced, NULL), TOKEN_TAMPERED, "a block signed by the proof's key anyway");
    free(sealed);
    free(forced);
    /* a block signed by a key the previous block did not commit */
    char *rs = raw_block(t1, 0, "payments/a*", 0, other.sk);
    cr_assert_eq(check(rs, NULL), TOKEN_TAMPERED);
    /* a block from another token's chain grafted on */
    char *o = issue(TOKEN_KIND_ADMIN);
    char *o1 = narrow(o, TOKEN_KIND_READ, NULL, 0);
    Trib__Token *a = tok_decode(t1), *g = tok_decode(o1);
    Trib__TokenBlock *gb[2] = { a->blocks[0], g->blocks[1] };
    Trib__Token nt = TRIB__TOKEN__INIT;
    nt.n_blocks = 2;
    nt.blocks = gb;
    nt.proof = g->proof;
    m = tok_encode(&nt);
    cr_assert_eq(check(m, NULL), TOKEN_TAMPERED, "grafted block");
    free(m);
    trib__token__free_unpacked(a, NULL);
    trib__token__free_unpacked(g, NULL);
    free(t0);
    free(t1);
    free(t2);
    free(t3);
    free(rs);
    free(o);
    free(o1);
}

Test(token, oversize_is_too_large)
{
    char *big = malloc(TOKEN_MAX_TEXT + 2);
    memcpy(big, "trib1.", 6);
    memset(big + 6, 'A', TOKEN_MAX_TEXT - 4);
    big[TOKEN_MAX_TEXT + 1] = '\0';
    cr_assert_eq(check(big, NULL), TOKEN_TOO_LARGE);
    free(big);
    /* 8 blocks is the limit: the library refuses a 9th, and a hand-made 9th is refused */
    char *t = issue(TOKEN_KIND_READ);
    for (int i = 1; i < TOKEN_MAX_BLOCKS; i++) {
        char *n = narrow(t, 0, NULL, now + HOUR - i * 1000);
        free(t);
        t = n;
    }
    token_claims_t c;
    cr_assert_eq(check(t, &c), TOKEN_OK);
    cr_assert_eq(c.nblocks, TOKEN_MAX_BLOCKS);
    char err[256] = "", *out = NULL;
    token_narrow_t n = { TOKEN_KIND_READ, NULL, 0 };
    cr_assert_eq(token_attenuate(t, &n, now, &out, err, sizeof err), -1);
    cr_assert(strstr(err, "blocks"), "%s", err);
    char *nine = raw_block(t, 0, NULL, 0, NULL);
    cr_assert_eq(check(nine, NULL), TOKEN_TOO_LARGE);
    free(nine);
    free(t);
}

Test(token, malformed_inputs)
{
    static const char *const bad[] = {
        "", "trib1", "trib1.", "trib2.AAAA", "TRIB1.AAAA", "biscuit:AAAA", "trib1.AAAA=", "trib1.AA+A",
        "trib1.AA/A", "trib1. AAAA", "trib1.AAAA\n", "trib1.AB", "trib1.!!!!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(check(bad[i], NULL), TOKEN_MALFORMED, "'%s'", bad[i]);
    /* an embedded NUL inside len */
    char *t = issue(TOKEN_KIND_READ);
    size_t len = strlen(t);
    t[len / 2] = '\0';
    cr_assert_eq(token_verify(t, len, now, lookup, NULL, NULL, NULL, 0), TOKEN_MALFORMED);
    free(t);
    /* an unknown field in block 0, properly signed: refused, not skipped */
    t = issue(TOKEN_KIND_READ);
    Trib__Token *tok = tok_decode(t);
    uint8_t body[1024];
    size_t blen = tok->blocks[0]->body.len;
    memcpy(body, tok->blocks[0]->body.data, blen);
    body[blen++] = (15 << 3) | 0; /* field 15 (none such), varint 1 */
    body[blen++] = 1;
    char *u = resign_block0(t, body, blen, TOKEN_TAG, issuer.sk);
    cr_assert_eq(check(u, NULL), TOKEN_MALFORMED);
    trib__token__free_unpacked(tok, NULL);
    free(t);
    free(u);
}

Test(token, other_kinds_of_signature_are_not_token_blocks)
{
    char *t = issue(TOKEN_KIND_ADMIN);
    Trib__Token *tok = tok_decode(t);
    const ProtobufCBinaryData *b0 = &tok->blocks[0]->body;
    /* the issuer's key signed these exact bytes, but as a catalog entry (no tag) or a certificate */
    char *raw = resign_block0(t, b0->data, b0->len, NULL, issuer.sk);
    char *cert = resign_block0(t, b0->data, b0->len, "trib/cert/v1", issuer.sk);
    char *tokv2 = resign_block0(t, b0->data, b0->len, "trib/token/v2", issuer.sk);
    cr_assert_eq(check(raw, NULL), TOKEN_FORGED);
    cr_assert_eq(check(cert, NULL), TOKEN_FORGED);
    cr_assert_eq(check(tokv2, NULL), TOKEN_FORGED);
    /* a real signed catalog entry of the issuer, presented as a token */
    Trib__Manifest man = TRIB__MANIFEST__INIT;
    man.domain = "payments";
    man.name = "settled";
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = "payments";
    e.seq = 1;
    e.time_ms = now;
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    e.manifest = &man;
    uint8_t *se = NULL;
    size_t selen = 0;
    cr_assert_eq(entry_sign(&issuer, &e, &se, &selen), 0);
    char *as_token = bin_encode(se, selen);
    cr_assert_eq(check(as_token, NULL), TOKEN_MALFORMED);
    Trib__SignedEntry *sd = trib__signed_entry__unpack(NULL, selen, se);
    cr_assert_not_null(sd);
    char *entry_block = resign_block0(t, sd->body.data, sd->body.len, NULL, issuer.sk);
    cr_assert_eq(check(entry_block, NULL), TOKEN_MALFORMED);
    /* and the other way: a token block is not a catalog entry */
    Trib__SignedEntry fake = TRIB__SIGNED_ENTRY__INIT;
    fake.body = *b0;
    fake.signature = tok->blocks[0]->signature;
    fake.signer = (ProtobufCBinaryData){ 32, issuer.pk };
    uint8_t buf[2048];
    size_t flen = trib__signed_entry__pack(&fake, buf);
    entry_t ent;
    char err[256];
    cr_assert_eq(entry_verify(buf, flen, &ent, err, sizeof err), -1);
    trib__signed_entry__free_unpacked(sd, NULL);
    trib__token__free_unpacked(tok, NULL);
    free(se);
    free(as_token);
    free(entry_block);
    free(t);
    free(raw);
    free(cert);
    free(tokv2);
}

/* ---------------------------------------------------------------- globs and decisions */

Test(token, glob_tables)
{
    static const char *const valid[] = { "*/*", "payments/*", "payments/settled-*", "a/b", "*-x/*y*z*" };
    static const char *const invalid[] = { "", "*", "payments", "a/b/c", "/x", "x/", "Pay/x", "a b/c", "a/b?",
                                           "a/[b]", "payments/settled_x" };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        cr_assert(token_glob_valid(valid[i]), "%s", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        cr_assert_not(token_glob_valid(invalid[i]), "%s", invalid[i]);

    static const struct { const char *g, *id; int m; } match[] = {
        { "*/*", "payments/settled-transactions", 1 },
        { "payments/*", "payments/x", 1 },
        { "payments/*", "growth/x", 0 },
        { "payments/settled-*", "payments/settled-transactions", 1 },
        { "payments/settled-*", "payments/settled-", 1 },
        { "payments/settled-*", "payments/refunds", 0 },
        { "pay*/*", "payments/x", 1 },
        { "*/x", "a/x", 1 },
        { "*/x", "a/y/x", 0 },
        { "payments/*", "payments/*", 0 },
        { "a/*b*c", "a/xbyc", 1 },
        { "a/*b*c", "a/xbycd", 0 },
    };
    for (size_t i = 0; i < sizeof match / sizeof match[0]; i++)
        cr_assert_eq(token_glob_match(match[i].g, match[i].id), match[i].m, "%s ~ %s", match[i].g, match[i].id);

    static const struct { const char *narrow, *wide; int w; } within[] = {
        { "payments/settled-*", "payments/*", 1 },
        { "payments/*", "*/*", 1 },
        { "payments/x", "payments/*", 1 },
        { "payments/settled-eu*", "payments/settled-*", 1 },
        { "payments/*", "payments/settled-*", 0 },
        { "*/*", "payments/*", 0 },
        { "payments/*-x", "payments/*x", 1 },
        { "payments/*x", "payments/*-x", 0 },
        { "pay*/*", "payments/*", 0 },
        { "payments/a*b", "payments/a*", 1 },
        { "payments/*a", "payments/a*", 0 },
        { "p/x", "p/x", 1 },
        { "p/x", "p/y", 0 },
    };
    for (size_t i = 0; i < sizeof within / sizeof within[0]; i++)
        cr_assert_eq(token_glob_within(within[i].narrow, within[i].wide), within[i].w, "%s within %s",
                     within[i].narrow, within[i].wide);
}

/* Soundness of token_glob_within on random small globs: whenever it says yes, every id drawn
 * from the narrow glob matches the wide one. */
Test(token, glob_within_is_sound)
{
    const char alpha[] = "ab-*";
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char nar[16], wid[16], id[32];
    int yes = 0;
    for (int i = 0; i < 20000; i++) {
        char *g[2] = { nar, wid };
        for (int k = 0; k < 2; k++) {
            char *p = g[k];
            *p++ = 'd';
            *p++ = '/';
            int n = 1 + (int)(rnd(&s) % 8);
            for (int j = 0; j < n; j++)
                *p++ = alpha[rnd(&s) % 4];
            *p = '\0';
        }
        if (!token_glob_within(nar, wid))
            continue;
        yes++;
        for (int r = 0; r < 20; r++) { /* instantiate each '*' of nar with 0-3 letters */
            char *p = id;
            for (const char *q = nar; *q; q++) {
                if (*q != '*') {
                    *p++ = *q;
                    continue;
                }
                int n = (int)(rnd(&s) % 4);
                for (int j = 0; j < n; j++)
                    *p++ = "ab-"[rnd(&s) % 3];
            }
            *p = '\0';
            cr_assert(token_glob_match(wid, id), "%s within %s but %s does not match", nar, wid, id);
        }
    }
    cr_assert_gt(yes, 100);
}

Test(token, what_needs_what)
{
    token_claims_t c;
    memset(&c, 0, sizeof c);
    strcpy(c.domain, "payments");
    strcpy(c.scope, "*/*");
    static const struct { token_kind_t kind; const char *scope; token_op_t op; const char *id; token_decision_t d; } t[] = {
        { TOKEN_KIND_READ, "*/*", TOKEN_OP_READ, "growth/churn", TOKEN_ALLOW },
        { TOKEN_KIND_READ, "payments/*", TOKEN_OP_READ, "growth/churn", TOKEN_DENY_SCOPE },
        { TOKEN_KIND_READ, "*/*", TOKEN_OP_WRITE, "payments/x", TOKEN_DENY_KIND },
        { TOKEN_KIND_WRITE, "*/*", TOKEN_OP_WRITE, "payments/x", TOKEN_ALLOW },
        { TOKEN_KIND_ADMIN, "*/*", TOKEN_OP_WRITE, "payments/x", TOKEN_ALLOW },
        { TOKEN_KIND_WRITE, "*/*", TOKEN_OP_WRITE, "growth/x", TOKEN_DENY_WRONG_DOMAIN },
        { TOKEN_KIND_WRITE, "*/*", TOKEN_OP_WRITE, "paymentsx/x", TOKEN_DENY_WRONG_DOMAIN },
        { TOKEN_KIND_WRITE, "payments/settled-*", TOKEN_OP_WRITE, "payments/refunds", TOKEN_DENY_SCOPE },
        { TOKEN_KIND_WRITE, "*/*", TOKEN_OP_ADMIN, "payments", TOKEN_DENY_KIND },
        { TOKEN_KIND_ADMIN, "*/*", TOKEN_OP_ADMIN, "payments", TOKEN_ALLOW },
        { TOKEN_KIND_ADMIN, "payments/*", TOKEN_OP_ADMIN, "payments", TOKEN_ALLOW },
        { TOKEN_KIND_ADMIN, "payments/settled-*", TOKEN_OP_ADMIN, "payments", TOKEN_DENY_SCOPE },
        { TOKEN_KIND_ADMIN, "*/*", TOKEN_OP_ADMIN, "growth", TOKEN_DENY_WRONG_DOMAIN },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        c.kind = t[i].kind;
        strcpy(c.scope, t[i].scope);
        cr_assert_eq(token_allows(&c, t[i].op, t[i].id), t[i].d, "row %zu: got %s", i,
                     token_decision_name(token_allows(&c, t[i].op, t[i].id)));
    }
    cr_assert_str_eq(token_decision_name(TOKEN_DENY_WRONG_DOMAIN), "wrong_domain");
    cr_assert_str_eq(token_reason_name(TOKEN_NOT_YET_VALID), "not_yet_valid");
}

/* ---------------------------------------------------------------- random inputs */

Test(token, hundred_thousand_mutations_are_refused, .timeout = 300)
{
    char *t0 = issue(TOKEN_KIND_WRITE);
    char *t1 = narrow(t0, 0, "payments/settled-*", 0);
    char *t = narrow(t1, TOKEN_KIND_READ, NULL, now + HOUR);
    size_t len = strlen(t);
    uint8_t bin[TOKEN_MAX_TEXT];
    size_t blen = 0;
    cr_assert_eq(sodium_base642bin(bin, sizeof bin, t + 6, len - 6, NULL, &blen, NULL, B64V), 0);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *m = malloc(TOKEN_MAX_TEXT * 2 + 16);
    uint8_t mb[TOKEN_MAX_TEXT];
    uint64_t s = 42;
#define RND() rnd(&s)
    int seen[TOKEN_REASON_COUNT] = { 0 };
    for (int i = 0; i < 100000; i++) {
        size_t mlen = len;
        char *text = m;
        char *enc = NULL;
        switch (i % 5) {
        case 0: /* a text byte set to any other byte */
            memcpy(m, t, len + 1);
            {
                size_t p = RND() % len;
                char c = (char)(RND() & 0xff);
                m[p] = c == t[p] ? (char)(c ^ 1) : c;
            }
            break;
        case 1: { /* binary: one to three bytes changed */
            memcpy(mb, bin, blen);
            int n = 1 + (int)(RND() % 3);
            for (int k = 0; k < n; k++)
                mb[RND() % blen] ^= (uint8_t)(1 + RND() % 255);
            if (memcmp(mb, bin, blen) == 0)
                mb[0] ^= 1;
            text = enc = bin_encode(mb, blen);
            mlen = strlen(enc);
            break;
        }
        case 2: /* truncated text */
            memcpy(m, t, len + 1);
            mlen = RND() % len;
            m[mlen] = '\0';
            break;
        case 3: /* truncated binary */
            text = enc = bin_encode(bin, RND() % blen);
            mlen = strlen(enc);
            break;
        default: /* base64 garbage after the prefix, up to 5000 characters */
            memcpy(m, "trib1.", 6);
            mlen = 6 + RND() % 5000;
            for (size_t k = 6; k < mlen; k++)
                m[k] = b64[RND() % 64];
            m[mlen] = '\0';
            break;
        }
        char err[256] = "";
        token_claims_t c;
        token_reason_t r = token_verify(text, mlen, now, lookup, NULL, &c, err, sizeof err);
        cr_assert_neq(r, TOKEN_OK, "mutation %d accepted: %s", i, text);
        cr_assert_lt((unsigned)r, TOKEN_REASON_COUNT);
        cr_assert_neq(err[0], '\0');
        seen[r]++;
        free(enc);
    }
#undef RND
    for (int r = 1; r < TOKEN_REASON_COUNT; r++)
        cr_log_info("%s: %d", token_reason_name((token_reason_t)r), seen[r]);
    free(m);
    free(t0);
    free(t1);
    free(t);
}

/* ---------------------------------------------------------------- the real trib, offline */

static char cli_dir[64], cli_other[64];

static void cli_setup(void)
{
    setup();
    int created = 0;
    char err[256];
    snprintf(cli_dir, sizeof cli_dir, "/tmp/trib-token-XXXXXX");
    snprintf(cli_other, sizeof cli_other, "/tmp/trib-token-XXXXXX");
    cr_assert_not_null(mkdtemp(cli_dir));
    cr_assert_not_null(mkdtemp(cli_other));
    cr_assert_eq(identity_load_or_create(cli_dir, &issuer, &created, err, sizeof err), 0, "%s", err);
    cr_assert_eq(identity_load_or_create(cli_other, &other, &created, err, sizeof err), 0, "%s", err);
}

static void cli_teardown(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/identity.key", cli_dir);
    unlink(p);
    rmdir(cli_dir);
    snprintf(p, sizeof p, "%s/identity.key", cli_other);
    unlink(p);
    rmdir(cli_other);
}

TestSuite(token_cli, .init = cli_setup, .fini = cli_teardown);

Test(token_cli, show_and_attenuate_through_the_binary)
{
    char *t = issue_full(&issuer, TOKEN_KIND_WRITE, "payments/*", now, now + 24 * HOUR);
    token_claims_t want;
    cr_assert_eq(check(t, &want), TOKEN_OK);
    char *out = NULL, *err = NULL;

    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, NULL), 0, "%s", err);
    cr_assert(strstr(out, "ci@payments") && strstr(out, "payments/*") && strstr(out, "write"), "%s", out);
    cr_assert(strstr(out, "must be checked by a node"), "%s", out);
    cr_assert_eq(strstr(out, t), NULL, "show never prints the token");
    free(out), free(err);
    /* expired 20 s ago: still accepted for clock skew, which show says instead of a plain "valid" */
    char *late = issue_full(&issuer, TOKEN_KIND_READ, NULL, now - HOUR, now - 20000);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", late, NULL), 0, "%s", err);
    cr_assert(strstr(out, "state      valid (expired 2") && strstr(out, "for clock skew"), "%s", out);
    free(out), free(err), free(late);

    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, "--json", NULL), 0, "%s", err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "valid");
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), want.id);
    cr_assert(json_is_false(json_object_get(j, "issuer_checked")));
    cr_assert_eq(json_integer_value(json_object_get(j, "blocks")), 1);
    char rid[129];
    token_revocation_hex(want.revocation_ids[0], rid);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "revocation_ids"), 0)), rid);
    json_decref(j);
    free(out), free(err);

    /* with the data dir of the issuing node, and of another one */
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, "--data", cli_dir, NULL), 0, "%s", err);
    cr_assert(strstr(out, "issuer is this node"), "%s", out);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, "--data", cli_other, NULL), 1);
    cr_assert(strstr(err, "unknown_issuer") && strstr(err, cli_other), "%s", err);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, "--data", "/nonexistent", NULL), 1);
    cr_assert(strstr(err, "/nonexistent"), "%s", err);
    free(out), free(err);

    /* narrow it, through the binary; the library agrees */
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "attenuate", t, "--product", "payments/settled-*",
                        "--ttl", "1h", "--kind", "read", NULL), 0, "%s", err);
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    cr_assert_eq(nl[1], '\0', "only the token on stdout");
    *nl = '\0';
    token_claims_t c;
    cr_assert_eq(check(out, &c), TOKEN_OK);
    cr_assert_eq(c.nblocks, 2);
    cr_assert_eq(c.kind, TOKEN_KIND_READ);
    cr_assert_str_eq(c.scope, "payments/settled-*");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    cr_assert_leq(c.expires_ms, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 + HOUR);
    cr_assert_geq(c.expires_ms, now + HOUR - 1000);
    char *narrowed = out;
    free(err);

    /* widening through the binary: refused, exit 1, saying what */
    static const struct { const char *opt, *val, *says; } wide[] = {
        { "--product", "*/*", "not within" },
        { "--product", "payments/*", "not within" },
        { "--kind", "write", "wider" },
        { "--ttl", "2h", "shorten" },
    };
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "attenuate", narrowed, wide[i].opt, wide[i].val, NULL),
                     1, "%s %s", wide[i].opt, wide[i].val);
        cr_assert(strstr(err, wide[i].says), "%s", err);
        cr_assert_eq(out[0], '\0');
        free(out), free(err);
    }
    /* usage errors: exit 2 */
    static const char *const bad[][2] = { { "--kind", "boss" }, { "--ttl", "5x" }, { "--ttl", "0h" },
                                          { "--product", "a/b/c" }, { "--bogus", "1" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "attenuate", narrowed, bad[i][0], bad[i][1], NULL), 2,
                     "%s %s", bad[i][0], bad[i][1]);
        cr_assert(strstr(err, "try 'trib token attenuate --help'"), "%s", err);
        free(out), free(err);
    }
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "attenuate", narrowed, NULL), 2);
    cr_assert(strstr(err, "nothing to narrow"), "%s", err);
    free(out), free(err);
    free(narrowed);
    free(t);
}

/* A node's revocations are in DIR/revoked.tokens: show --data DIR says a revoked token (or one
 * narrowed from a revoked one) is revoked and exits 1, not "valid"; another token still holds. */
Test(token_cli, show_with_the_data_dir_says_a_token_the_node_revoked_is_revoked)
{
    char *t = issue_full(&issuer, TOKEN_KIND_READ, NULL, now, now + 24 * HOUR);
    char *kept = issue_full(&issuer, TOKEN_KIND_READ, NULL, now, now + 24 * HOUR);
    char *narrowed = narrow(t, TOKEN_KIND_READ, "payments/settled-*", now + HOUR);
    token_claims_t c;
    cr_assert_eq(check(t, &c), TOKEN_OK);
    char rid[129], path[128];
    token_revocation_hex(c.revocation_ids[0], rid);
    snprintf(path, sizeof path, "%s/revoked.tokens", cli_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "not a revocation id\n%s\n", rid);
    fclose(f);

    char *out = NULL, *err = NULL;
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, "--data", cli_dir, NULL), 1, "%s", out);
    cr_assert(strstr(out, "state      revoked\n"), "%s", out);
    cr_assert(strstr(err, "revoked: block 0") && strstr(err, "revoked.tokens"), "%s", err);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", narrowed, "--data", cli_dir, "--json", NULL), 1);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "revoked");
    cr_assert_str_eq(json_string_value(json_object_get(j, "reason")), "revoked");
    json_decref(j);
    free(out), free(err);
    /* another token of the same node holds; without --data nothing is known of revocations */
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", kept, "--data", cli_dir, NULL), 0, "%s", err);
    cr_assert(strstr(out, "state      valid (signatures, times, the issuer is this node, and it has not revoked it)"),
              "%s", out);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, NULL), 0, "%s", err);
    cr_assert(strstr(out, "revocations must be checked by a node"), "%s", out);
    free(out), free(err);
    unlink(path);
    free(t), free(kept), free(narrowed);
}

Test(token_cli, refused_tokens_stdin_and_env)
{
    char *t = issue(TOKEN_KIND_READ);
    char *out = NULL, *err = NULL;
    /* from stdin, with the newline a file has */
    char path[] = "/tmp/trib-token-in-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char *line = malloc(strlen(t) + 2);
    sprintf(line, "%s\n", t);
    cr_assert_eq(h_write_file(path, line, strlen(line)), 0);
    cr_assert_eq(h_trib(NULL, path, &out, &err, "token", "show", "-", NULL), 0, "%s", err);
    free(out), free(err);
    unlink(path);
    free(line);
    /* from $TRIB_TOKEN */
    setenv("TRIB_TOKEN", t, 1);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", NULL), 0, "%s", err);
    unsetenv("TRIB_TOKEN");
    free(out), free(err);

    /* a changed character: exit 1 with the reason, nothing on stdout */
    t[strlen(t) / 3] = t[strlen(t) / 3] == 'A' ? 'B' : 'A';
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", t, NULL), 1);
    cr_assert(strstr(err, "trib: token show: "), "%s", err);
    cr_assert_eq(out[0], '\0');
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", "trib1.!!", "--json", NULL), 1);
    cr_assert(strstr(out, "\"state\": \"invalid\"") && strstr(out, "\"reason\": \"malformed\""), "%s", out);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "attenuate", t, "--kind", "read", NULL), 1);
    cr_assert(strstr(err, "the token is refused"), "%s", err);
    free(out), free(err);

    /* expired: the claims are shown, the exit says no */
    char *old = issue_full(&issuer, TOKEN_KIND_READ, NULL, now - 3 * HOUR, now - 2 * HOUR);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "show", old, NULL), 1);
    cr_assert(strstr(out, "expired") && strstr(out, "ci@payments"), "%s", out);
    cr_assert(strstr(err, "expired"), "%s", err);
    free(out), free(err);
    cr_assert_eq(h_trib(NULL, NULL, &out, &err, "token", "nope", NULL), 2);
    free(out), free(err);
    free(old);
    free(t);
}

/* A FIFO named as a token file (--token-file, DATA/admin.token) is refused as not a regular file.
 * It was opened for reading before that check, and an open of a FIFO with no writer waits for
 * one: trib, or the agent at its start, hung there for good. */
Test(token_cli, a_fifo_as_token_file_is_refused_not_waited_on, .timeout = 10)
{
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/fifo.token", cli_dir);
    cr_assert_eq(mkfifo(path, 0600), 0, "%s", strerror(errno));
    cr_assert_null(token_file_read(path, err, sizeof err));
    cr_expect(strstr(err, path) && strstr(err, "not a regular file"), "%s", err);
    unlink(path);
}

Test(token_cli, token_files_are_0600_and_never_overwritten)
{
    char path[128], err[256] = "";
    char *t = issue(TOKEN_KIND_ADMIN);
    snprintf(path, sizeof path, "%s/admin.token", cli_dir);
    mode_t old = umask(0277);   /* the file is 0600 whatever the umask (this one would make 0400) */
    int rc = token_file_write(path, t, err, sizeof err);
    umask(old);
    cr_assert_eq(rc, 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    char *back = token_file_read(path, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_str_eq(back, t);
    free(back);
    /* the CLI reads it through stdin like any file */
    char *out = NULL, *e = NULL;
    cr_assert_eq(h_trib(NULL, path, &out, &e, "token", "show", "-", NULL), 0, "%s", e);
    free(out), free(e);
    /* never overwritten */
    cr_assert_eq(token_file_write(path, t, err, sizeof err), -1);
    cr_assert(strstr(err, path) && strstr(err, "exists"), "%s", err);
    glob_t left;   /* written under a temporary name and linked into place: none is left behind */
    char pat[160];
    snprintf(pat, sizeof pat, "%s.*", path);
    cr_assert_eq(glob(pat, 0, NULL, &left), GLOB_NOMATCH, "a temporary file was left: %s",
                 left.gl_pathc ? left.gl_pathv[0] : "");
    back = token_file_read(path, err, sizeof err);
    cr_assert_str_eq(back, t, "the first token is kept");
    free(back);
    /* readable by others: refused, naming the mode */
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_null(token_file_read(path, err, sizeof err));
    cr_assert(strstr(err, "0644") && strstr(err, "0600"), "%s", err);
    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_null(token_file_read(path, err, sizeof err));
    unlink(path);
    /* empty, too large, a directory, absent */
    cr_assert_eq(token_file_write(path, "", err, sizeof err), -1);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "\n \n", 3), 3);
    close(fd);
    cr_assert_null(token_file_read(path, err, sizeof err));
    cr_assert(strstr(err, "empty"), "%s", err);
    fd = open(path, O_WRONLY | O_TRUNC);
    char big[TOKEN_MAX_TEXT + 8];
    memset(big, 'A', sizeof big);
    cr_assert_eq(write(fd, big, sizeof big), (ssize_t)sizeof big);
    close(fd);
    cr_assert_null(token_file_read(path, err, sizeof err));
    cr_assert(strstr(err, ": larger than 4098 bytes, the limit for a token file"), "%s", err);
    unlink(path);
    cr_assert_null(token_file_read(cli_dir, err, sizeof err));
    cr_assert_null(token_file_read(path, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    free(t);
}
