/* gossip/aead.c - ChaCha20-Poly1305 through OpenSSL's EVP interface (see aead.h).
 * Owns: the cipher, fetched from OpenSSL's default provider once (EVP_chacha20_poly1305() would
 * fetch it again on every call: ~0.5 us a frame), and one cipher context per thread, reused (its
 * key and nonce set per call, wiped after).
 * Must not: be used for anything but whole frames (one call, no streaming). */
#include <limits.h>
#include <pthread.h>
#include <openssl/evp.h>
#include "gossip/aead.h"

/* The context of the calling thread, made once and freed when the thread exits. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *cipher;   /* kept for the process's life */

static void ctx_free(void *p) { EVP_CIPHER_CTX_free(p); }
static void ctx_init(void)
{
    pthread_key_create(&ctx_key, ctx_free);
    cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
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

static int run(int enc, const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len)
{
    EVP_CIPHER_CTX *c = ctx_get();
    int out = 0, fin = 0;
    if (!c || !cipher || len > INT_MAX)
        return -1;
    int ok = EVP_CipherInit_ex2(c, cipher, key, nonce, enc, NULL) == 1 &&
             (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, buf + len) == 1) &&
             (len == 0 || EVP_CipherUpdate(c, buf, &out, buf, (int)len) == 1) &&
             EVP_CipherFinal_ex(c, buf + out, &fin) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, buf + len) == 1);
    EVP_CIPHER_CTX_reset(c);   /* no key left behind */
    return ok ? 0 : -1;
}

int aead_seal(const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len)
{
    return run(1, key, nonce, buf, len);
}

int aead_open(const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len)
{
    return run(0, key, nonce, buf, len);
}
