/* gossip/aead.c - ChaCha20-Poly1305 and AES-256-GCM through OpenSSL's EVP interface (see aead.h).
 * Owns: the two ciphers, fetched from OpenSSL's default provider once (EVP_chacha20_poly1305()
 * would fetch again on every call: ~0.5 us a frame), and one cipher context per thread, reused
 * (its key and nonce set per call, wiped after).
 * Must not: be used for anything but whole messages (one call, no streaming). */
#include <limits.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <sodium.h>
#include "gossip/aead.h"

/* The context of the calling thread, made once and freed when the thread exits. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *ciphers[2];   /* by aead_alg_t, kept for the process's life */

static void ctx_free(void *p) { EVP_CIPHER_CTX_free(p); }
static void ctx_init(void)
{
    pthread_key_create(&ctx_key, ctx_free);
    ciphers[AEAD_CHACHAPOLY] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    ciphers[AEAD_AESGCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static EVP_CIPHER_CTX *ctx_get(void)
{
    pthread_once(&ctx_once, ctx_init);
    EVP_CIPHER_CTX *c = pthread_getspecific(ctx_key);
    if (!c && (c = EVP_CIPHER_CTX_new()) != NULL && pthread_setspecific(ctx_key, c) != 0) {
        EVP_CIPHER_CTX_free(c);
        c = NULL;
    }
    return c;
}

static int run(aead_alg_t alg, int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad,
               size_t adlen, uint8_t *buf, size_t len)
{
    EVP_CIPHER_CTX *c = ctx_get();
    int out = 0, fin = 0, adout = 0;
    if (!c || (unsigned)alg > AEAD_AESGCM || !ciphers[alg] || len > INT_MAX || adlen > INT_MAX)
        return -1;
    /* Both ciphers take a 12-byte nonce by default (OpenSSL's GCM default IV length is 12). */
    int ok = EVP_CipherInit_ex2(c, ciphers[alg], key, nonce, enc, NULL) == 1 &&
             (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, buf + len) == 1) &&
             (adlen == 0 || EVP_CipherUpdate(c, NULL, &adout, ad, (int)adlen) == 1) &&
             (len == 0 || EVP_CipherUpdate(c, buf, &out, buf, (int)len) == 1) &&
             EVP_CipherFinal_ex(c, buf + out, &fin) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, buf + len) == 1);
    EVP_CIPHER_CTX_reset(c);   /* no key left behind */
    return ok ? 0 : -1;
}

int aead_seal(aead_alg_t alg, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad, size_t adlen,
              uint8_t *buf, size_t len)
{
    return run(alg, 1, key, nonce, ad, adlen, buf, len);
}

int aead_open(aead_alg_t alg, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad, size_t adlen,
              uint8_t *buf, size_t len)
{
    return run(alg, 0, key, nonce, ad, adlen, buf, len);
}

int aead_aes_in_hardware(void)
{
    return crypto_aead_aes256gcm_is_available();
}
