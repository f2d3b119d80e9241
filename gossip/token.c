/* gossip/token.c - access tokens: issue, attenuate, decode, verify (DESIGN.md §13).
 *
 * Owns: the "trib1." text form (URL-safe base64 without padding, trailing bits checked by
 * libsodium, so one token has one text), the strict decoding of a Token and its TokenBody blocks
 * (sizes, required and forbidden fields per position, unknown fields refused: a verifier that
 * skipped a field a newer issuer meant as a restriction would widen the token), the chain of
 * signatures over "trib/token/v1\0" || body, the proof checked against the hash the last block
 * committed, narrowing, the glob rules and token_allows.
 * Must not: look up whose key a domain is (token_key_fn), keep revocations, print or log a token.
 * The format is made here on libsodium because Debian 12's JOSE libraries have no EdDSA. */
#include "gossip/token.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/entry.h"
#include "gossip/textfile.h"
#include "proto/tributary.pb-c.h"

#define PREFIX_LEN  (sizeof TOKEN_PREFIX - 1)
#define NONCE_LEN   16
#define SEED_LEN    crypto_sign_SEEDBYTES
#define SEG_MAX     64
#define TIME_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
#define B64V        sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define PROOF_TAG   "trib/token/proof"
#define HASH_LEN    32

static const char *const reason_names[TOKEN_REASON_COUNT] = {
    "ok", "malformed", "too_large", "forged", "tampered", "widened", "unknown_issuer",
    "not_yet_valid", "expired",
};

const char *token_reason_name(token_reason_t r)
{
    return (unsigned)r < TOKEN_REASON_COUNT ? reason_names[r] : "unknown";
}

const char *token_kind_name(token_kind_t k)
{
    switch (k) {
    case TOKEN_KIND_READ: return "read";
    case TOKEN_KIND_WRITE: return "write";
    case TOKEN_KIND_ADMIN: return "admin";
    }
    return "?";
}

int token_kind_parse(const char *s, token_kind_t *k)
{
    for (int i = TOKEN_KIND_READ; i <= TOKEN_KIND_ADMIN; i++)
        if (s && strcmp(s, token_kind_name((token_kind_t)i)) == 0) {
            *k = (token_kind_t)i;
            return 0;
        }
    return -1;
}

const char *token_decision_name(token_decision_t d)
{
    switch (d) {
    case TOKEN_ALLOW: return "ok";
    case TOKEN_DENY_WRONG_DOMAIN: return "wrong_domain";
    case TOKEN_DENY_KIND: return "kind_insufficient";
    case TOKEN_DENY_SCOPE: return "out_of_scope";
    }
    return "unknown";
}

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void token_revocation_hex(const uint8_t sig[TOKEN_SIG_LEN], char out[2 * TOKEN_SIG_LEN + 1])
{
    sodium_bin2hex(out, 2 * TOKEN_SIG_LEN + 1, sig, TOKEN_SIG_LEN);
}

/* ---------------------------------------------------------------- globs */

/* Wildcard match of one segment: '*' in p matches any run of t; every other character of p
 * matches itself only. A '*' in t is an ordinary character here, which only a '*' of p can
 * absorb: that is what makes token_glob_within sound. Greedy with one backtrack point: O(pn*tn). */
static int seg_match(const char *p, size_t pn, const char *t, size_t tn)
{
    size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;
    while (j < tn) {
        if (i < pn && p[i] == '*') {
            star = i++;
            mark = j;
        } else if (i < pn && p[i] == t[j]) {
            i++;
            j++;
        } else if (star != SIZE_MAX) {
            i = star + 1;
            j = ++mark;
        } else {
            return 0;
        }
    }
    while (i < pn && p[i] == '*')
        i++;
    return i == pn;
}

/* Splits "a/b" at its only '/'; 0 or -1. */
static int split2(const char *s, size_t *alen, const char **b, size_t *blen)
{
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/'))
        return -1;
    *alen = (size_t)(slash - s);
    *b = slash + 1;
    *blen = strlen(*b);
    return 0;
}

static int seg_valid(const char *s, size_t n)
{
    if (n == 0 || n > SEG_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '*'))
            return 0;
    return 1;
}

int token_glob_valid(const char *glob)
{
    size_t an, bn;
    const char *b;
    return glob && strlen(glob) <= TOKEN_GLOB_MAX && split2(glob, &an, &b, &bn) == 0 &&
           seg_valid(glob, an) && seg_valid(b, bn);
}

int token_glob_match(const char *glob, const char *product_id)
{
    size_t gan = 0, gbn = 0, pan = 0, pbn = 0;
    const char *gb = NULL, *pb = NULL;
    if (!token_glob_valid(glob) || !product_id || strlen(product_id) > TOKEN_GLOB_MAX ||
        strchr(product_id, '*') || split2(product_id, &pan, &pb, &pbn) != 0)
        return 0;
    if (split2(glob, &gan, &gb, &gbn) != 0)
        return 0;
    return seg_match(glob, gan, product_id, pan) && seg_match(gb, gbn, pb, pbn);
}

int token_glob_within(const char *narrow, const char *wide)
{
    size_t nan = 0, nbn = 0, wan = 0, wbn = 0;
    const char *nb = NULL, *wb = NULL;
    if (!token_glob_valid(narrow) || !token_glob_valid(wide))
        return 0;
    if (split2(narrow, &nan, &nb, &nbn) != 0 || split2(wide, &wan, &wb, &wbn) != 0)
        return 0;
    return seg_match(wide, wan, narrow, nan) && seg_match(wb, wbn, nb, nbn);
}

/* "local@domain": local 1..64 of [a-z0-9._+-], domain a valid domain name. */
static int subject_valid(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    if (!at || at == s || at - s > 64 || strlen(s) > TOKEN_SUBJECT_MAX)
        return 0;
    for (const char *p = s; p < at; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._+-", *p)))
            return 0;
    return entry_valid_name(at + 1);
}

/* ---------------------------------------------------------------- signatures */

static uint8_t *tagged(const uint8_t *body, size_t len, size_t *mlen)
{
    *mlen = sizeof TOKEN_TAG + len;   /* the tag's NUL too: no tag is a prefix of another's bytes */
    uint8_t *m = malloc(*mlen);
    if (m) {
        memcpy(m, TOKEN_TAG, sizeof TOKEN_TAG);
        memcpy(m + sizeof TOKEN_TAG, body, len);
    }
    return m;
}

static int block_sign(const uint8_t *body, size_t len, const uint8_t sk[ID_SK_LEN], uint8_t sig[TOKEN_SIG_LEN])
{
    size_t mlen;
    uint8_t *m = tagged(body, len, &mlen);
    int rc = m ? crypto_sign_detached(sig, NULL, m, mlen, sk) : -1;
    free(m);
    return rc == 0 ? 0 : -1;
}

static int block_sig_ok(const ProtobufCBinaryData *body, const uint8_t *sig, const uint8_t pk[ID_PK_LEN])
{
    size_t mlen;
    uint8_t *m = tagged(body->data, body->len, &mlen);
    int ok = m && crypto_sign_verify_detached(sig, m, mlen, pk) == 0;
    free(m);
    return ok;
}

/* The commitment to a proof seed a block carries: BLAKE2b-256 of PROOF_TAG\0 || seed. */
static void proof_hash(const uint8_t seed[SEED_LEN], uint8_t out[HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)PROOF_TAG, sizeof PROOF_TAG);
    crypto_generichash_update(&st, seed, SEED_LEN);
    crypto_generichash_final(&st, out, HASH_LEN);
}

/* ---------------------------------------------------------------- text form */

/* "trib1." + base64url of the packed token; malloc'd or NULL. */
static char *encode(const Trib__Token *t)
{
    size_t blen = trib__token__get_packed_size(t);
    uint8_t *bin = malloc(blen ? blen : 1);
    size_t tlen = PREFIX_LEN + sodium_base64_ENCODED_LEN(blen, B64V);
    char *text = malloc(tlen);
    if (!bin || !text) {
        free(bin);
        free(text);
        return NULL;
    }
    trib__token__pack(t, bin);
    memcpy(text, TOKEN_PREFIX, PREFIX_LEN);
    sodium_bin2base64(text + PREFIX_LEN, tlen - PREFIX_LEN, bin, blen, B64V);
    free(bin);
    return text;
}

/* A decoded token: the outer message and each block's body. */
typedef struct {
    Trib__Token *tok;
    Trib__TokenBody *body[TOKEN_MAX_BLOCKS];
    size_t n;
} decoded_t;

static void decoded_free(decoded_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->body[i])
            trib__token_body__free_unpacked(d->body[i], NULL);
    if (d->tok)
        trib__token__free_unpacked(d->tok, NULL);
    memset(d, 0, sizeof *d);
}

static int has_unknown(const ProtobufCMessage *m)
{
    return m->n_unknown_fields != 0;
}

static int time_ok(int64_t ms)
{
    return ms > 0 && ms <= TIME_MAX_MS;
}

/* Shape of block i's body: what block 0 must carry, what a later block must not. */
static token_reason_t check_body(const Trib__TokenBody *b, size_t i, char *err, size_t errlen)
{
    if (b->version != 1)
        return errf(err, errlen, "block %zu: version %u, expected 1", i, b->version), TOKEN_MALFORMED;
    if (b->next_key.len != ID_PK_LEN)
        return errf(err, errlen, "block %zu: next key of %zu bytes, expected 32", i, b->next_key.len),
               TOKEN_MALFORMED;
    if (b->proof_hash.len != HASH_LEN)
        return errf(err, errlen, "block %zu: proof hash of %zu bytes, expected 32", i, b->proof_hash.len),
               TOKEN_MALFORMED;
    if (b->kind > TOKEN_KIND_ADMIN || (i == 0 && b->kind == 0))
        return errf(err, errlen, "block %zu: unknown kind %u", i, b->kind), TOKEN_MALFORMED;
    if ((i == 0 || b->product[0]) && !token_glob_valid(b->product))
        return errf(err, errlen, "block %zu: product glob is not DOMAIN/NAME of [a-z0-9-*]", i), TOKEN_MALFORMED;
    if ((i == 0 || b->expires_ms != 0) && !time_ok(b->expires_ms))
        return errf(err, errlen, "block %zu: expiry out of range", i), TOKEN_MALFORMED;
    if (i == 0) {
        if (!entry_valid_name(b->issuer_domain))
            return errf(err, errlen, "block 0: issuer domain is not a valid domain name"), TOKEN_MALFORMED;
        if (b->issuer_key.len != ID_PK_LEN)
            return errf(err, errlen, "block 0: issuer key of %zu bytes, expected 32", b->issuer_key.len),
                   TOKEN_MALFORMED;
        if (!subject_valid(b->subject))
            return errf(err, errlen, "block 0: subject is not local@domain"), TOKEN_MALFORMED;
        if (!time_ok(b->issued_ms) || b->expires_ms <= b->issued_ms)
            return errf(err, errlen, "block 0: issued-at missing or not before the expiry"), TOKEN_MALFORMED;
        if (b->nonce.len != NONCE_LEN)
            return errf(err, errlen, "block 0: nonce of %zu bytes, expected %d", b->nonce.len, NONCE_LEN),
                   TOKEN_MALFORMED;
        if (b->prev_signature.len != 0)
            return errf(err, errlen, "block 0: has a previous signature"), TOKEN_MALFORMED;
    } else {
        if (b->issuer_domain[0] || b->issuer_key.len || b->subject[0] || b->issued_ms || b->nonce.len)
            return errf(err, errlen, "block %zu: sets a field only block 0 may set", i), TOKEN_MALFORMED;
        if (b->prev_signature.len != TOKEN_SIG_LEN)
            return errf(err, errlen, "block %zu: previous signature of %zu bytes, expected 64", i,
                        b->prev_signature.len), TOKEN_MALFORMED;
    }
    return TOKEN_OK;
}

/* Bounds, prefix, base64, protobuf and the shape of every block. */
static token_reason_t decode(const char *text, size_t len, decoded_t *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (!text)
        return errf(err, errlen, "no token"), TOKEN_MALFORMED;
    if (len > TOKEN_MAX_TEXT)
        return errf(err, errlen, "%zu characters, at most %d", len, TOKEN_MAX_TEXT), TOKEN_TOO_LARGE;
    if (len < PREFIX_LEN || memcmp(text, TOKEN_PREFIX, PREFIX_LEN) != 0)
        return errf(err, errlen, "does not start with '%s'", TOKEN_PREFIX), TOKEN_MALFORMED;

    /* The alphabet first: libsodium 1.0.18 (Debian 12) reads every byte >= 0x80 as '_'. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *b64 = text + PREFIX_LEN;
    for (size_t i = 0; i < len - PREFIX_LEN; i++)
        if (b64[i] == '\0' || !strchr(alphabet, b64[i]))
            return errf(err, errlen, "not URL-safe base64 at character %zu", PREFIX_LEN + i + 1), TOKEN_MALFORMED;
    uint8_t bin[TOKEN_MAX_TEXT];
    size_t blen = 0;
    const char *end = NULL;
    if (sodium_base642bin(bin, sizeof bin, b64, len - PREFIX_LEN, NULL, &blen, &end, B64V) != 0 ||
        end != text + len)
        return errf(err, errlen, "not URL-safe base64 at character %zu",
                    (size_t)((end ? end : b64) - text) + 1), TOKEN_MALFORMED;
    if (blen == 0)
        return errf(err, errlen, "empty"), TOKEN_MALFORMED;
    d->tok = trib__token__unpack(NULL, blen, bin);
    if (!d->tok)
        return errf(err, errlen, "not a token (protobuf does not decode)"), TOKEN_MALFORMED;
    if (has_unknown(&d->tok->base))
        return errf(err, errlen, "unknown fields in the token"), TOKEN_MALFORMED;
    if (d->tok->n_blocks == 0)
        return errf(err, errlen, "no blocks"), TOKEN_MALFORMED;
    if (d->tok->n_blocks > TOKEN_MAX_BLOCKS)
        return errf(err, errlen, "%zu blocks, at most %d", d->tok->n_blocks, TOKEN_MAX_BLOCKS), TOKEN_TOO_LARGE;
    if (d->tok->proof.len != SEED_LEN)
        return errf(err, errlen, "proof of %zu bytes, expected %d", d->tok->proof.len, SEED_LEN), TOKEN_MALFORMED;
    for (size_t i = 0; i < d->tok->n_blocks; i++) {
        const Trib__TokenBlock *blk = d->tok->blocks[i];
        if (has_unknown(&blk->base))
            return errf(err, errlen, "block %zu: unknown fields", i), TOKEN_MALFORMED;
        if (blk->signature.len != TOKEN_SIG_LEN)
            return errf(err, errlen, "block %zu: signature of %zu bytes, expected 64", i, blk->signature.len),
                   TOKEN_MALFORMED;
        if (blk->body.len == 0)
            return errf(err, errlen, "block %zu: empty body", i), TOKEN_MALFORMED;
        d->body[i] = trib__token_body__unpack(NULL, blk->body.len, blk->body.data);
        d->n = i + 1;
        if (!d->body[i])
            return errf(err, errlen, "block %zu: body does not decode", i), TOKEN_MALFORMED;
        if (has_unknown(&d->body[i]->base))
            return errf(err, errlen, "block %zu: unknown fields in the body", i), TOKEN_MALFORMED;
        token_reason_t r = check_body(d->body[i], i, err, errlen);
        if (r != TOKEN_OK)
            return r;
    }
    return TOKEN_OK;
}

/* ---------------------------------------------------------------- verification */

/* Signatures and chain, narrowing, [issuer], time. claims filled as far as it got. */
static token_reason_t check(const decoded_t *d, int64_t now, int use_lookup, token_key_fn lookup,
                            void *ctx, token_claims_t *c, char *err, size_t errlen)
{
    const Trib__Token *t = d->tok;
    const Trib__TokenBody *b0 = d->body[0];

    if (!block_sig_ok(&t->blocks[0]->body, t->blocks[0]->signature.data, b0->issuer_key.data))
        return errf(err, errlen, "block 0 is not signed by the issuer key it names"), TOKEN_FORGED;
    for (size_t i = 1; i < d->n; i++) {
        const Trib__TokenBody *b = d->body[i];
        if (memcmp(b->prev_signature.data, t->blocks[i - 1]->signature.data, TOKEN_SIG_LEN) != 0)
            return errf(err, errlen, "block %zu is not linked to block %zu", i, i - 1), TOKEN_TAMPERED;
        if (!block_sig_ok(&t->blocks[i]->body, t->blocks[i]->signature.data, d->body[i - 1]->next_key.data))
            return errf(err, errlen, "block %zu is not signed by the key block %zu committed", i, i - 1),
                   TOKEN_TAMPERED;
    }
    uint8_t h[HASH_LEN];
    proof_hash(t->proof.data, h);
    if (memcmp(h, d->body[d->n - 1]->proof_hash.data, HASH_LEN) != 0)
        return errf(err, errlen, "the proof does not match the last block (a block was removed or reordered)"),
               TOKEN_TAMPERED;

    token_claims_t cl;
    memset(&cl, 0, sizeof cl);
    snprintf(cl.domain, sizeof cl.domain, "%s", b0->issuer_domain);
    memcpy(cl.issuer_key, b0->issuer_key.data, ID_PK_LEN);
    snprintf(cl.subject, sizeof cl.subject, "%s", b0->subject);
    cl.kind = (token_kind_t)b0->kind;
    snprintf(cl.scope, sizeof cl.scope, "%s", b0->product);
    cl.issued_ms = b0->issued_ms;
    cl.expires_ms = b0->expires_ms;
    for (size_t i = 1; i < d->n; i++) {
        const Trib__TokenBody *b = d->body[i];
        if (b->kind && b->kind > (uint32_t)cl.kind)
            return errf(err, errlen, "block %zu widens kind %s to %s", i, token_kind_name(cl.kind),
                        token_kind_name((token_kind_t)b->kind)), TOKEN_WIDENED;
        if (b->product[0] && !token_glob_within(b->product, cl.scope))
            return errf(err, errlen, "block %zu: product glob %s is not within %s", i, b->product, cl.scope),
                   TOKEN_WIDENED;
        if (b->expires_ms && b->expires_ms > cl.expires_ms)
            return errf(err, errlen, "block %zu extends the expiry", i), TOKEN_WIDENED;
        if (b->kind)
            cl.kind = (token_kind_t)b->kind;
        if (b->product[0])
            snprintf(cl.scope, sizeof cl.scope, "%s", b->product);
        if (b->expires_ms)
            cl.expires_ms = b->expires_ms;
    }
    cl.nblocks = d->n;
    for (size_t i = 0; i < d->n; i++)
        memcpy(cl.revocation_ids[i], t->blocks[i]->signature.data, TOKEN_SIG_LEN);
    crypto_generichash(h, 16, t->blocks[d->n - 1]->signature.data, TOKEN_SIG_LEN, NULL, 0);
    sodium_bin2hex(cl.id, sizeof cl.id, h, 16);

    if (use_lookup && (!lookup || !lookup(ctx, cl.domain, cl.issuer_key, now)))
        return errf(err, errlen, "the issuer key is not a key of domain %s", cl.domain), TOKEN_UNKNOWN_ISSUER;
    *c = cl;
    if (cl.issued_ms > now + TOKEN_SKEW_MS)
        return errf(err, errlen, "issued %lld s in the future", (long long)((cl.issued_ms - now) / 1000)),
               TOKEN_NOT_YET_VALID;
    if (now > cl.expires_ms + TOKEN_SKEW_MS)
        return errf(err, errlen, "expired %lld s ago", (long long)((now - cl.expires_ms) / 1000)), TOKEN_EXPIRED;
    return TOKEN_OK;
}

static token_reason_t verify(const char *token, size_t len, int64_t now, int use_lookup, token_key_fn lookup,
                             void *ctx, token_claims_t *claims, decoded_t *keep, char *err, size_t errlen)
{
    decoded_t d;
    token_claims_t cl;
    memset(&cl, 0, sizeof cl);
    if (sodium_init() < 0)
        return errf(err, errlen, "sodium_init failed"), TOKEN_MALFORMED;
    token_reason_t r = decode(token, len, &d, err, errlen);
    if (r == TOKEN_OK)
        r = check(&d, now, use_lookup, lookup, ctx, &cl, err, errlen);
    if (r == TOKEN_OK)
        errf(err, errlen, "ok");
    if (r != TOKEN_OK && r != TOKEN_EXPIRED && r != TOKEN_NOT_YET_VALID)
        memset(&cl, 0, sizeof cl);
    if (claims)
        *claims = cl;
    if (keep && r == TOKEN_OK)
        *keep = d;
    else
        decoded_free(&d);
    return r;
}

token_reason_t token_verify(const char *token, size_t len, int64_t now_ms, token_key_fn lookup, void *ctx,
                            token_claims_t *claims, char *err, size_t errlen)
{
    return verify(token, len, now_ms, 1, lookup, ctx, claims, NULL, err, errlen);
}

token_reason_t token_inspect(const char *token, size_t len, int64_t now_ms, token_claims_t *claims, char *err,
                             size_t errlen)
{
    return verify(token, len, now_ms, 0, NULL, NULL, claims, NULL, err, errlen);
}

/* ---------------------------------------------------------------- making tokens */

/* Packs body, signs it with sk, and fills blk (body and signature malloc'd). */
static int make_block(const Trib__TokenBody *body, const uint8_t sk[ID_SK_LEN], Trib__TokenBlock *blk)
{
    trib__token_block__init(blk);
    size_t len = trib__token_body__get_packed_size(body);
    blk->body.data = malloc(len);
    blk->signature.data = malloc(TOKEN_SIG_LEN);
    if (!blk->body.data || !blk->signature.data)
        return -1;
    blk->body.len = trib__token_body__pack(body, blk->body.data);
    blk->signature.len = TOKEN_SIG_LEN;
    return block_sign(blk->body.data, blk->body.len, sk, blk->signature.data);
}

int token_issue(const identity_t *issuer, const char *domain, const token_spec_t *spec, char **out, char *err,
                size_t errlen)
{
    const char *product = spec && spec->product ? spec->product : "*/*";
    *out = NULL;
    if (!issuer || !spec)
        return errf(err, errlen, "no issuer key or claims"), -1;
    if (!entry_valid_name(domain))
        return errf(err, errlen, "domain '%s' is not a valid domain name", domain ? domain : ""), -1;
    if (!subject_valid(spec->subject))
        return errf(err, errlen, "subject '%s' is not local@domain (local part of [a-z0-9._+-])",
                    spec->subject ? spec->subject : ""), -1;
    if (spec->kind < TOKEN_KIND_READ || spec->kind > TOKEN_KIND_ADMIN)
        return errf(err, errlen, "kind must be read, write or admin"), -1;
    if (!token_glob_valid(product))
        return errf(err, errlen, "product '%s' is not a glob DOMAIN/NAME of [a-z0-9-*]", product), -1;
    if (!time_ok(spec->issued_ms) || !time_ok(spec->expires_ms) || spec->expires_ms <= spec->issued_ms ||
        spec->expires_ms - spec->issued_ms > TOKEN_TTL_MAX_MS)
        return errf(err, errlen, "lifetime must be positive and at most 366 days"), -1;
    if (sodium_init() < 0)
        return errf(err, errlen, "sodium_init failed"), -1;

    uint8_t seed[SEED_LEN], next_pk[ID_PK_LEN], next_sk[ID_SK_LEN], nonce[NONCE_LEN], ph[HASH_LEN];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(nonce, sizeof nonce);
    crypto_sign_seed_keypair(next_pk, next_sk, seed);
    sodium_memzero(next_sk, sizeof next_sk);
    proof_hash(seed, ph);

    Trib__TokenBody body = TRIB__TOKEN_BODY__INIT;
    body.version = 1;
    body.issuer_domain = (char *)domain;
    body.issuer_key = (ProtobufCBinaryData){ ID_PK_LEN, (uint8_t *)issuer->pk };
    body.subject = (char *)spec->subject;
    body.kind = spec->kind;
    body.product = (char *)product;
    body.expires_ms = spec->expires_ms;
    body.issued_ms = spec->issued_ms;
    body.nonce = (ProtobufCBinaryData){ NONCE_LEN, nonce };
    body.next_key = (ProtobufCBinaryData){ ID_PK_LEN, next_pk };
    body.proof_hash = (ProtobufCBinaryData){ HASH_LEN, ph };

    Trib__TokenBlock blk;
    Trib__TokenBlock *blocks[1] = { &blk };
    Trib__Token tok = TRIB__TOKEN__INIT;
    int rc = make_block(&body, issuer->sk, &blk);
    if (rc == 0) {
        tok.n_blocks = 1;
        tok.blocks = blocks;
        tok.proof = (ProtobufCBinaryData){ SEED_LEN, seed };
        *out = encode(&tok);
        rc = *out ? 0 : -1;
    }
    if (rc != 0)
        errf(err, errlen, "out of memory");
    free(blk.body.data);
    free(blk.signature.data);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int token_attenuate(const char *token, const token_narrow_t *n, int64_t now_ms, char **out, char *err,
                    size_t errlen)
{
    char why[256];
    token_claims_t cl;
    decoded_t d;
    *out = NULL;
    if (!n)
        return errf(err, errlen, "nothing to narrow"), -1;
    token_reason_t r = verify(token, token ? strlen(token) : 0, now_ms, 0, NULL, NULL, &cl, &d, why, sizeof why);
    if (r != TOKEN_OK)
        return errf(err, errlen, "token refused: %s: %s", token_reason_name(r), why), -1;

    int rc = -1;
    if (n->kind && (n->kind < TOKEN_KIND_READ || n->kind > TOKEN_KIND_ADMIN))
        errf(err, errlen, "kind must be read, write or admin");
    else if (n->kind > cl.kind)
        errf(err, errlen, "kind %s is wider than the token's %s (an attenuation can only narrow)",
             token_kind_name(n->kind), token_kind_name(cl.kind));
    else if (n->product && !token_glob_valid(n->product))
        errf(err, errlen, "product '%s' is not a glob DOMAIN/NAME of [a-z0-9-*]", n->product);
    else if (n->product && !token_glob_within(n->product, cl.scope))
        errf(err, errlen, "product '%s' is not within the token's scope '%s' (an attenuation can only narrow)",
             n->product, cl.scope);
    else if (n->expires_ms && (!time_ok(n->expires_ms) || n->expires_ms > cl.expires_ms))
        errf(err, errlen, "the new expiry is later than the token's (an attenuation can only shorten it)");
    else if (d.n >= TOKEN_MAX_BLOCKS)
        errf(err, errlen, "the token already has %d blocks, the most a token may have", TOKEN_MAX_BLOCKS);
    else
        rc = 0;
    if (rc != 0) {
        decoded_free(&d);
        return -1;
    }

    uint8_t sk[ID_SK_LEN], pk[ID_PK_LEN], seed[SEED_LEN], next_pk[ID_PK_LEN], next_sk[ID_SK_LEN], ph[HASH_LEN];
    crypto_sign_seed_keypair(pk, sk, d.tok->proof.data);
    if (memcmp(pk, d.body[d.n - 1]->next_key.data, ID_PK_LEN) != 0) {
        /* only the block's own signer can make this pair disagree: it sealed the token */
        sodium_memzero(sk, sizeof sk);
        decoded_free(&d);
        return errf(err, errlen, "the token's proof is not the key of its last block: it cannot be narrowed"), -1;
    }
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(next_pk, next_sk, seed);
    sodium_memzero(next_sk, sizeof next_sk);
    proof_hash(seed, ph);

    Trib__TokenBody body = TRIB__TOKEN_BODY__INIT;
    body.version = 1;
    body.kind = n->kind;
    body.product = n->product ? (char *)n->product : (char *)"";
    body.expires_ms = n->expires_ms;
    body.next_key = (ProtobufCBinaryData){ ID_PK_LEN, next_pk };
    body.proof_hash = (ProtobufCBinaryData){ HASH_LEN, ph };
    body.prev_signature = d.tok->blocks[d.n - 1]->signature;

    Trib__TokenBlock blk;
    Trib__TokenBlock *blocks[TOKEN_MAX_BLOCKS];
    rc = make_block(&body, sk, &blk);
    sodium_memzero(sk, sizeof sk);
    if (rc == 0) {
        Trib__Token tok = TRIB__TOKEN__INIT;
        memcpy(blocks, d.tok->blocks, d.n * sizeof *blocks);
        blocks[d.n] = &blk;
        tok.n_blocks = d.n + 1;
        tok.blocks = blocks;
        tok.proof = (ProtobufCBinaryData){ SEED_LEN, seed };
        *out = encode(&tok);
        if (!*out)
            rc = -1;
        else if (strlen(*out) > TOKEN_MAX_TEXT) {
            errf(err, errlen, "the narrowed token would be %zu characters, more than %d", strlen(*out),
                 TOKEN_MAX_TEXT);
            free(*out);
            *out = NULL;
            rc = -2;
        }
    }
    if (rc == -1)
        errf(err, errlen, "out of memory");
    free(blk.body.data);
    free(blk.signature.data);
    sodium_memzero(seed, sizeof seed);
    decoded_free(&d);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- what needs what */

token_decision_t token_allows(const token_claims_t *c, token_op_t op, const char *product_id)
{
    char whole[TOKEN_GLOB_MAX + 1];
    size_t dlen;
    const char *slash;
    if (!c || !product_id)
        return TOKEN_DENY_SCOPE;
    switch (op) {
    case TOKEN_OP_READ:
        return token_glob_match(c->scope, product_id) ? TOKEN_ALLOW : TOKEN_DENY_SCOPE;
    case TOKEN_OP_WRITE:
        slash = strchr(product_id, '/');
        dlen = slash ? (size_t)(slash - product_id) : strlen(product_id);
        if (dlen != strlen(c->domain) || memcmp(product_id, c->domain, dlen) != 0)
            return TOKEN_DENY_WRONG_DOMAIN;
        if (c->kind < TOKEN_KIND_WRITE)
            return TOKEN_DENY_KIND;
        return token_glob_match(c->scope, product_id) ? TOKEN_ALLOW : TOKEN_DENY_SCOPE;
    case TOKEN_OP_ADMIN:
        if (strcmp(product_id, c->domain) != 0)
            return TOKEN_DENY_WRONG_DOMAIN;
        if (c->kind != TOKEN_KIND_ADMIN)
            return TOKEN_DENY_KIND;
        snprintf(whole, sizeof whole, "%s/*", product_id);
        return token_glob_within(whole, c->scope) ? TOKEN_ALLOW : TOKEN_DENY_SCOPE;
    }
    return TOKEN_DENY_KIND;
}

/* ---------------------------------------------------------------- token files */

int token_file_write(const char *path, const char *text, char *err, size_t errlen)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    size_t len = text ? strlen(text) : 0;
    if (len == 0)
        return errf(err, errlen, "%s: no token to write", path ? path : "token file"), -1;
    if (!path || snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir ||
        snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
        return errf(err, errlen, "token file: path too long"), -1;
    /* Written whole under a temporary name, then linked into place: a reader (the CLI, a script
     * polling for the file) never sees it empty or half written, and link() refuses to overwrite
     * (EEXIST) as O_EXCL did. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return errf(err, errlen, "%s: create: %s", tmp, strerror(errno)), -1;
    int rc = fchmod(fd, 0600);   /* whatever the umask */
    for (size_t off = 0; rc == 0 && off <= len;) {
        const char *p = off < len ? text + off : "\n";
        ssize_t n = write(fd, p, off < len ? len - off : 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = -1;
        else
            off += (size_t)n;
    }
    if (rc == 0)
        rc = fsync(fd);
    if (rc != 0)
        errf(err, errlen, "%s: write: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        errf(err, errlen, "%s: close: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && link(tmp, path) != 0) {
        errf(err, errlen, "%s: create: %s", path, strerror(errno));
        rc = -1;
    }
    unlink(tmp);   /* never leave half a token, nor a second name of it */
    if (rc != 0)
        return -1;
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        errf(err, errlen, "%s: fsync of its directory: %s", path, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

char *token_file_read(const char *path, char *err, size_t errlen)
{
    if (!path)
        return errf(err, errlen, "no token file named"), NULL;
    struct stat st;
    int fd = textfile_open(path, 0, err, errlen);   /* a regular file (a FIFO is refused, not waited on) */
    if (fd < 0)
        return NULL;
    char *t = NULL;
    size_t got = 0;
    FILE *f = NULL;
    if (fstat(fd, &st) != 0)
        errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    else if ((st.st_mode & 077) != 0)
        errf(err, errlen, "%s: mode %04o, must be 0600 (a token is a secret: chmod 600 %s)", path,
             (unsigned)(st.st_mode & 07777), path);
    else if (!(f = fdopen(fd, "r")))
        errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    else
        t = textfile_read_stream(f, path, "a token file", TOKEN_MAX_TEXT + 2, &got, err, errlen);
    if (f)
        fclose(f);
    else
        close(fd);
    if (!t)
        return NULL;
    size_t lead = strspn(t, " \t\r\n");
    while (got > lead && strchr(" \t\r\n", t[got - 1]))
        t[--got] = '\0';
    memmove(t, t + lead, got - lead + 1);
    const char *why = !t[0] ? "empty"
                      : strncmp(t, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) ? "not a token: a token starts with " TOKEN_PREFIX
                      : t[strcspn(t, " \t\r\n")] ? "not one token: white space inside it (a token file holds one "
                                                    "token, as trib token issue prints it)"
                                                  : NULL;
    if (why) {
        errf(err, errlen, "%s: %s", path, why);
        sodium_memzero(t, strlen(t));
        free(t);
        return NULL;
    }
    return t;
}
