/* gossip/entry.c - signed catalog entries: make, verify, hash.
 *
 * Owns: packing a CatalogEntry, signing those exact bytes (Ed25519, detached), wrapping them in
 * a SignedEntry; verifying received bytes in a fixed order (bound the size, decode the outer
 * message, check field sizes, verify the signature over the received body, only then decode
 * the body and check its shape); the BLAKE2b chaining hash. The name rule is storage's (store_valid_name).
 * Must not: re-encode to verify, decide domain binding or sequence (store_catalog_append does),
 * touch LMDB or the network. */
#include "gossip/entry.h"
#include "storage/access.h"
#include "storage/store.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

int entry_valid_name(const char *s)
{
    return s != NULL && store_valid_name(s, strnlen(s, STORE_ID_MAX));
}

int entry_valid_product_id(const char *s)
{
    return store_valid_id(s);
}

/* Copies untrusted text for an error message: at most 64 chars, non-printables as '?'. */
static const char *printable(const char *s, char buf[72])
{
    size_t i = 0;
    if (s != NULL) {
        for (; s[i] != '\0' && i < 64; i++) {
            unsigned char ch = (unsigned char)s[i];
            buf[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
        if (s[i] != '\0') {
            memcpy(buf + i, "...", 3);
            i += 3;
        }
    }
    buf[i] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- hash and sign */

void entry_hash(const uint8_t *body, size_t len, uint8_t out[32])
{
    crypto_generichash(out, 32, body, len, NULL, 0);
}

int entry_sign(const identity_t *id, const Trib__CatalogEntry *e, uint8_t **out, size_t *len)
{
    assert(id && e && out && len);
    uint8_t sig[crypto_sign_BYTES];
    uint8_t signer[ID_PK_LEN];
    Trib__SignedEntry se = TRIB__SIGNED_ENTRY__INIT;
    uint8_t *body = NULL, *buf = NULL;

    *out = NULL;
    *len = 0;
    if (sodium_init() < 0)
        return -1;
    size_t blen = trib__catalog_entry__get_packed_size(e);
    if (blen > ENTRY_MAX_BYTES)
        return -1;
    body = malloc(blen ? blen : 1);
    if (body == NULL)
        return -1;
    size_t packed = trib__catalog_entry__pack(e, body);
    assert(packed == blen);
    (void)packed;
    if (crypto_sign_detached(sig, NULL, body, blen, id->sk) != 0)
        goto fail;

    memcpy(signer, id->pk, sizeof signer);
    se.body.data = body;
    se.body.len = blen;
    se.signature.data = sig;
    se.signature.len = sizeof sig;
    se.signer.data = signer;
    se.signer.len = sizeof signer;
    size_t slen = trib__signed_entry__get_packed_size(&se);
    if (slen > ENTRY_MAX_BYTES)
        goto fail;
    buf = malloc(slen);
    if (buf == NULL)
        goto fail;
    packed = trib__signed_entry__pack(&se, buf);
    assert(packed == slen);
    free(body);
    *out = buf;
    *len = slen;
    return 0;
fail:
    free(body);
    return -1;
}

/* ---------------------------------------------------------------- verify */

/* The shape rules a decoded body must meet (entry.h). */
static int check_shape(const Trib__CatalogEntry *ce, char *err, size_t errlen)
{
    char a[72], b[72];

    if (!entry_valid_name(ce->domain)) {
        snprintf(err, errlen, "domain '%s' is not a valid domain name (" STORE_NAME_RULE ")",
                 printable(ce->domain, a));
        return -1;
    }
    if (ce->seq == 0) {
        snprintf(err, errlen, "%s: seq 0, must be >= 1", ce->domain);
        return -1;
    }
    if (ce->seq == 1 && ce->prev_hash.len != 0) {
        snprintf(err, errlen, "%s seq 1: prev_hash: %zu bytes, expected none", ce->domain,
                 ce->prev_hash.len);
        return -1;
    }
    if (ce->seq > 1 && ce->prev_hash.len != 32) {
        snprintf(err, errlen, "%s seq %llu: prev_hash: %zu bytes, expected 32", ce->domain,
                 (unsigned long long)ce->seq, ce->prev_hash.len);
        return -1;
    }
    switch (ce->change_case) {
    case TRIB__CATALOG_ENTRY__CHANGE_MANIFEST: {
        const Trib__Manifest *m = ce->manifest;
        if (m == NULL) {
            snprintf(err, errlen, "%s seq %llu: empty manifest", ce->domain, (unsigned long long)ce->seq);
            return -1;
        }
        if (m->domain == NULL || strcmp(m->domain, ce->domain) != 0) {
            snprintf(err, errlen, "manifest domain '%s' differs from entry domain '%s'",
                     printable(m->domain, a), ce->domain);
            return -1;
        }
        if (!entry_valid_name(m->name)) {
            snprintf(err, errlen, "manifest name '%s' is not a valid product name", printable(m->name, b));
            return -1;
        }
        return 0;
    }
    case TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE:
        if (ce->tombstone == NULL || !entry_valid_name(ce->tombstone->name)) {
            snprintf(err, errlen, "tombstone name '%s' is not a valid product name",
                     printable(ce->tombstone ? ce->tombstone->name : NULL, b));
            return -1;
        }
        return 0;
    case TRIB__CATALOG_ENTRY__CHANGE_ACCESS: {
        char why[256];
        if (store_access_shape(ce->access, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s seq %llu: %s", ce->domain, (unsigned long long)ce->seq, why);
            return -1;
        }
        return 0;
    }
    case TRIB__CATALOG_ENTRY__CHANGE_TOKEN_REVOKE: /* not a product change (auth, issue 11) */
        if (ce->token_revoke == NULL || ce->token_revoke->revocation_id.len != 64) {
            snprintf(err, errlen, "%s seq %llu: token revocation: the revocation id must be 64 bytes", ce->domain,
                     (unsigned long long)ce->seq);
            return -1;
        }
        return 0;
    default:
        snprintf(err, errlen, "%s seq %llu: entry carries no change (manifest or tombstone)",
                 ce->domain, (unsigned long long)ce->seq);
        return -1;
    }
}

/* ---------------------------------------------------------------- one block per entry */

/* Decoding an entry makes some 30 small allocations (each string and bytes field, each message);
 * a receiver decodes every entry it accepts and frees it a moment later. They are carved from one
 * block instead, freed whole by entry_free; what does not fit (never, at ARENA_SIZE) is malloc'd
 * and freed by free_unpacked as usual. */
#define ARENA_SIZE(len) (2 * (len) + 2048)

typedef struct {
    size_t used, cap;
    size_t outside;              /* allocations that did not fit */
    _Alignas(16) uint8_t base[]; /* cap bytes */
} arena_t;

static void *arena_alloc(void *ctx, size_t size)
{
    arena_t *a = ctx;
    size_t at = (a->used + 15) & ~(size_t)15;
    if (size == 0)
        size = 1;
    if (at <= a->cap && size <= a->cap - at) {
        a->used = at + size;
        return a->base + at;
    }
    a->outside++;
    return malloc(size);
}

static void arena_free(void *ctx, void *p)
{
    arena_t *a = ctx;
    uintptr_t u = (uintptr_t)p, b = (uintptr_t)a->base;
    if (p && (u < b || u >= b + a->cap))
        free(p);
}

/* Frees se and ce (either may be NULL), decoded with arena a (NULL: with malloc), and a. */
static void decoded_free(Trib__SignedEntry *se, Trib__CatalogEntry *ce, arena_t *a)
{
    ProtobufCAllocator al = {.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
    ProtobufCAllocator *use = a ? &al : NULL;
    if (!a || a->outside) {      /* else every piece is in the block */
        if (ce)
            trib__catalog_entry__free_unpacked(ce, use);
        if (se)
            trib__signed_entry__free_unpacked(se, use);
    }
    free(a);
}

/* Whether se's signature, by its signer, verifies over the exact body bytes received. */
static int signature_ok(const Trib__SignedEntry *se)
{
    return crypto_sign_verify_detached(se->signature.data, se->body.data, se->body.len, se->signer.data) == 0;
}

/* entry_verify's work; the signature is checked only when check_sig (entry_decode: not). */
static int decode(const uint8_t *bytes, size_t len, int check_sig, entry_t *out, char *err, size_t errlen)
{
    assert(out);
    Trib__SignedEntry *se = NULL;
    Trib__CatalogEntry *ce = NULL;
    arena_t *a = NULL;

    memset(out, 0, sizeof *out);
    if (bytes == NULL || len == 0) {
        snprintf(err, errlen, "entry: empty");
        return -1;
    }
    if (len > ENTRY_MAX_BYTES) {
        snprintf(err, errlen, "entry: %zu bytes, over the limit of %u", len, ENTRY_MAX_BYTES);
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "entry: sodium_init failed");
        return -1;
    }
    if ((a = malloc(sizeof *a + ARENA_SIZE(len))) != NULL)
        *a = (arena_t){.cap = ARENA_SIZE(len)};
    ProtobufCAllocator al = {.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
    se = trib__signed_entry__unpack(a ? &al : NULL, len, bytes);
    if (se == NULL) {
        snprintf(err, errlen, "entry: not a SignedEntry");
        free(a);
        return -1;
    }
    if (se->signer.len != crypto_sign_PUBLICKEYBYTES) {
        snprintf(err, errlen, "signer: %zu bytes, expected %d", se->signer.len, crypto_sign_PUBLICKEYBYTES);
        goto fail;
    }
    if (se->signature.len != crypto_sign_BYTES) {
        snprintf(err, errlen, "signature: %zu bytes, expected %d", se->signature.len, crypto_sign_BYTES);
        goto fail;
    }
    if (se->body.len == 0) {
        snprintf(err, errlen, "body: empty");
        goto fail;
    }
    /* The exact bytes received, never a re-encoding. */
    if (check_sig && !signature_ok(se)) {
        snprintf(err, errlen, "signature does not verify");
        goto fail;
    }
    ce = trib__catalog_entry__unpack(a ? &al : NULL, se->body.len, se->body.data);
    if (ce == NULL) {
        snprintf(err, errlen, "body: not a CatalogEntry");
        goto fail;
    }
    if (check_shape(ce, err, errlen) != 0)
        goto fail;

    entry_hash(se->body.data, se->body.len, out->hash);
    out->signed_entry = se;
    out->entry = ce;
    out->arena = a;
    return 0;
fail:
    decoded_free(se, ce, a);
    return -1;
}

int entry_verify(const uint8_t *bytes, size_t len, entry_t *out, char *err, size_t errlen)
{
    return decode(bytes, len, 1, out, err, errlen);
}

int entry_decode(const uint8_t *bytes, size_t len, entry_t *out, char *err, size_t errlen)
{
    return decode(bytes, len, 0, out, err, errlen);
}

int entry_check_signature(entry_t *e, char *err, size_t errlen)
{
    const Trib__SignedEntry *se = e->signed_entry;
    if (se && signature_ok(se))
        return 0;
    snprintf(err, errlen, se ? "signature does not verify" : "entry: not decoded");
    entry_free(e);
    return -1;
}

void entry_free(entry_t *e)
{
    if (e == NULL)
        return;
    if (e->entry || e->signed_entry)
        decoded_free(e->signed_entry, e->entry, e->arena);
    memset(e, 0, sizeof *e);
}
