/* gossip/noise.c - Noise_IK_25519_ChaChaPoly_SHA256 and Noise_IK_25519_AESGCM_SHA256 on libsodium
 * and OpenSSL's AEADs (see gossip/noise.h).
 *
 * Owns: the symmetric state (ck, h, k, n), the two IK messages, Split, and the transport
 * cipher's nonce. Written from the spec's sections 5 (processing rules), 7.5 (IK) and 12.
 * Must not: do I/O, read a clock, keep global state, accept an all-zero DH result or an
 * initiator's static key with bit 255 set (another spelling of a key), leave a
 * secret behind in a state it wipes. Test vectors: tests/test_noise.c. */
#include "gossip/aead.h"
#include "gossip/noise.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The protocol names by noise_suite_t; a name of at most 32 bytes is h, zero-padded (spec 5.2). */
static const char *const PROTOCOL[2] = {"Noise_IK_25519_ChaChaPoly_SHA256", "Noise_IK_25519_AESGCM_SHA256"};

/* The nonce of message n: 4 zero bytes, then n in 8 bytes, little-endian for ChaChaPoly and
 * big-endian for AESGCM (spec 12.3, 12.4). */
static void nonce_of(uint8_t nonce[12], noise_suite_t suite, uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[suite == NOISE_AESGCM ? 11 - i : 4 + i] = (uint8_t)(n >> (8 * i));
}

static aead_alg_t alg_of(noise_suite_t suite)
{
    return suite == NOISE_AESGCM ? AEAD_AESGCM : AEAD_CHACHAPOLY;
}

static void hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen)
        crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* HKDF(ck, ikm) with two outputs (spec 4.3). */
static void hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                  uint8_t out2[32])
{
    uint8_t temp[32], one = 1, two = 2;
    hmac(temp, ck, ikm, ikm_len, NULL, 0);
    hmac(out1, temp, &one, 1, NULL, 0);
    hmac(out2, temp, out1, 32, &two, 1);
    sodium_memzero(temp, sizeof temp);
}

static void mix_hash(noise_hs_t *hs, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, hs->h, 32);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, hs->h);
}

/* MixKey(DH(sk, pk)); -1 when the DH result is all zeros (pk of small order). */
static int mix_dh(noise_hs_t *hs, const uint8_t sk[32], const uint8_t pk[32])
{
    uint8_t shared[32], ck[32];
    if (crypto_scalarmult(shared, sk, pk) != 0)
        return -1;
    hkdf2(hs->ck, shared, 32, ck, hs->k);
    memcpy(hs->ck, ck, 32);
    hs->has_k = 1;
    hs->n = 0;
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(ck, sizeof ck);
    return 0;
}

/* EncryptAndHash: plaintext at in (len bytes) to out (len + 16); in and out may be equal. -1: out
 * of memory (OpenSSL's context). */
static int encrypt_and_hash(noise_hs_t *hs, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    nonce_of(nonce, hs->suite, hs->n++);
    if (len)   /* in is NULL for an empty payload */
        memmove(out, in, len);
    if (aead_seal(alg_of(hs->suite), hs->k, nonce, hs->h, 32, out, len) != 0)
        return -1;
    mix_hash(hs, out, len + NOISE_TAG);
    return 0;
}

/* DecryptAndHash: ciphertext at in (len >= 16 bytes) to out (len - 16). */
static int decrypt_and_hash(noise_hs_t *hs, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[12], h[32], stack[512];
    if (len < NOISE_TAG)
        return -1;
    /* Decrypted in place in a copy, then copied out: nothing unauthenticated reaches out, and out
     * may overlap in. */
    uint8_t *tmp = len <= sizeof stack ? stack : malloc(len);
    if (!tmp)
        return -1;
    nonce_of(nonce, hs->suite, hs->n);
    memcpy(h, hs->h, 32);
    mix_hash(hs, in, len);   /* before decrypting: out may overlap in */
    memcpy(tmp, in, len);
    int bad = aead_open(alg_of(hs->suite), hs->k, nonce, h, 32, tmp, len - NOISE_TAG) != 0;
    if (!bad && len > NOISE_TAG)   /* out may be NULL for an empty payload */
        memcpy(out, tmp, len - NOISE_TAG);
    sodium_memzero(tmp, len);
    if (tmp != stack)
        free(tmp);
    if (bad)
        return -1;
    hs->n++;
    return 0;
}

void noise_init(noise_hs_t *hs, noise_suite_t suite, int initiator, const uint8_t s_pk[32],
                const uint8_t s_sk[32], const uint8_t *rs, const uint8_t *prologue, size_t prologue_len)
{
    memset(hs, 0, sizeof *hs);
    hs->initiator = initiator;
    hs->suite = suite == NOISE_AESGCM ? NOISE_AESGCM : NOISE_CHACHAPOLY;
    memcpy(hs->h, PROTOCOL[hs->suite], strlen(PROTOCOL[hs->suite]));   /* the rest stays zero */
    memcpy(hs->ck, hs->h, 32);
    mix_hash(hs, prologue, prologue_len);
    memcpy(hs->s_pk, s_pk, 32);
    memcpy(hs->s_sk, s_sk, 32);
    if (initiator)
        memcpy(hs->rs, rs, 32);
    mix_hash(hs, initiator ? hs->rs : hs->s_pk, 32);   /* the pre-message <- s */
    crypto_box_keypair(hs->e_pk, hs->e_sk);
}

void noise_set_ephemeral(noise_hs_t *hs, const uint8_t e_sk[32])
{
    memcpy(hs->e_sk, e_sk, 32);
    crypto_scalarmult_base(hs->e_pk, hs->e_sk);
}

noise_err_t noise_write(noise_hs_t *hs, const uint8_t *payload, size_t payload_len, uint8_t *out,
                        size_t *out_len)
{
    if (hs->step != (hs->initiator ? 0 : 1))
        return NOISE_STATE;
    memcpy(out, hs->e_pk, 32);
    mix_hash(hs, hs->e_pk, 32);
    size_t at = 32;
    if (hs->initiator) {   /* e, es, s, ss */
        if (mix_dh(hs, hs->e_sk, hs->rs) != 0)
            return NOISE_AUTH;
        if (encrypt_and_hash(hs, hs->s_pk, 32, out + at) != 0)
            return NOISE_STATE;
        at += 32 + NOISE_TAG;
        if (mix_dh(hs, hs->s_sk, hs->rs) != 0)
            return NOISE_AUTH;
    } else {               /* e, ee, se */
        if (mix_dh(hs, hs->e_sk, hs->re) != 0 || mix_dh(hs, hs->e_sk, hs->rs) != 0)
            return NOISE_AUTH;
    }
    if (encrypt_and_hash(hs, payload, payload_len, out + at) != 0)
        return NOISE_STATE;
    *out_len = at + payload_len + NOISE_TAG;
    hs->step++;
    return NOISE_OK;
}

noise_err_t noise_read(noise_hs_t *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap,
                       size_t *payload_len)
{
    if (hs->step != (hs->initiator ? 1 : 0))
        return NOISE_STATE;
    size_t fixed = hs->initiator ? NOISE_MSG2_MIN : NOISE_MSG1_MIN;
    if (len < fixed || len - fixed > cap)
        return NOISE_MALFORMED;
    memcpy(hs->re, msg, 32);
    mix_hash(hs, hs->re, 32);
    size_t at = 32;
    if (!hs->initiator) {  /* e, es, s, ss */
        if (mix_dh(hs, hs->s_sk, hs->re) != 0 || decrypt_and_hash(hs, msg + at, 48, hs->rs) != 0)
            return NOISE_AUTH;
        if (hs->rs[31] & 0x80)   /* not canonical: X25519 ignores bit 255, so two byte strings */
            return NOISE_AUTH;   /* would name one key (and the allow callback sees the bytes) */
        at += 48;
        if (mix_dh(hs, hs->s_sk, hs->rs) != 0)
            return NOISE_AUTH;
    } else {               /* e, ee, se */
        if (mix_dh(hs, hs->e_sk, hs->re) != 0 || mix_dh(hs, hs->s_sk, hs->re) != 0)
            return NOISE_AUTH;
    }
    if (decrypt_and_hash(hs, msg + at, len - at, payload) != 0)
        return NOISE_AUTH;
    *payload_len = len - fixed;
    hs->step++;
    return NOISE_OK;
}

void noise_split(noise_hs_t *hs, noise_cipher_t *send, noise_cipher_t *recv)
{
    uint8_t k1[32], k2[32];
    hkdf2(hs->ck, NULL, 0, k1, k2);
    memcpy(send->k, hs->initiator ? k1 : k2, 32);
    memcpy(recv->k, hs->initiator ? k2 : k1, 32);
    send->n = recv->n = 0;
    send->suite = recv->suite = hs->suite;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    noise_wipe_hs(hs);
}

noise_err_t noise_seal(noise_cipher_t *c, uint8_t *buf, size_t len)
{
    uint8_t nonce[12];
    if (c->n == UINT64_MAX)
        return NOISE_STATE;
    nonce_of(nonce, c->suite, c->n++);
    if (aead_seal(alg_of(c->suite), c->k, nonce, NULL, 0, buf, len) != 0)   /* out of memory: the frame is lost, as a link error */
        return NOISE_STATE;
    return NOISE_OK;
}

noise_err_t noise_open(noise_cipher_t *c, uint8_t *buf, size_t len)
{
    uint8_t nonce[12];
    if (len < NOISE_TAG)
        return NOISE_MALFORMED;
    if (c->n == UINT64_MAX)
        return NOISE_STATE;
    nonce_of(nonce, c->suite, c->n);
    if (aead_open(alg_of(c->suite), c->k, nonce, NULL, 0, buf, len - NOISE_TAG) != 0)
        return NOISE_AUTH;
    c->n++;
    return NOISE_OK;
}

void noise_wipe_hs(noise_hs_t *hs)
{
    sodium_memzero(hs, sizeof *hs);
}
