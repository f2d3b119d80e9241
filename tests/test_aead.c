/* tests/test_aead.c - gossip/aead: OpenSSL's ChaCha20-Poly1305 and AES-256-GCM, their ciphers
 * fetched once for the process and shared by every thread (each with its own context), give
 * libsodium's bytes.
 *
 * Owns: sealing and opening from many threads at once, both ciphers in turn, the first call of
 * each racing the one-time fetch, with and without associated data, checked byte for byte
 * against libsodium's IETF ChaCha20-Poly1305 and its AES-256-GCM (when this CPU has it: libsodium
 * has no software AES); a tag or byte altered, the associated data altered, another key or nonce,
 * or the other cipher fails to open; lengths 0, 1 and across the ciphers' blocks.
 * Must not: sleep (threads start together at a barrier and are joined). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/aead.h"

#define THREADS 8
#define FRAMES 400
#define MAXLEN 4200

static pthread_barrier_t start;

/* libsodium's bytes for the same frame: 0, or -1 when libsodium cannot (AES-GCM without AES-NI). */
static int reference(aead_alg_t alg, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad,
                     size_t adlen, uint8_t *buf, size_t len)
{
    unsigned long long maclen = 0;
    if (alg == AEAD_AESGCM)
        return crypto_aead_aes256gcm_is_available()
                   ? crypto_aead_aes256gcm_encrypt_detached(buf, buf + len, &maclen, buf, len, ad, adlen, NULL,
                                                            nonce, key)
                   : -1;
    return crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf, buf + len, &maclen, buf, len, ad, adlen, NULL,
                                                              nonce, key);
}

/* One frame: sealed by aead_seal as libsodium seals it, opened back, and refused altered. */
static int frame_ok(uint32_t seed, uint8_t *buf, uint8_t *want)
{
    aead_alg_t alg = seed % 2 ? AEAD_AESGCM : AEAD_CHACHAPOLY, other_alg = seed % 2 ? AEAD_CHACHAPOLY : AEAD_AESGCM;
    uint8_t key[32], nonce[12], other[32], ad[40];
    size_t adlen = seed % 4 < 2 ? 0 : 1 + seed % sizeof ad;
    randombytes_buf(key, sizeof key);
    randombytes_buf(nonce, sizeof nonce);
    randombytes_buf(ad, sizeof ad);
    size_t len = seed % 3 == 0 ? seed % 130 : randombytes_uniform(MAXLEN);
    randombytes_buf(buf, len);
    memcpy(want, buf, len);
    int checked = reference(alg, key, nonce, adlen ? ad : NULL, adlen, want, len) == 0;
    uint8_t plain[MAXLEN];
    memcpy(plain, buf, len);
    if (aead_seal(alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) != 0 ||
        (checked && memcmp(buf, want, len + 16) != 0))
        return 0;
    memcpy(want, buf, len + 16);   /* the sealed frame, for the alterations below */
    if (aead_open(alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) != 0 || memcmp(buf, plain, len) != 0)
        return 0;
    /* altered: the tag, a byte of the text, the associated data, the key, the nonce, the cipher */
    memcpy(buf, want, len + 16);
    buf[len + (seed % 16)] ^= 1;
    if (aead_open(alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) == 0)
        return 0;
    if (len) {
        memcpy(buf, want, len + 16);
        buf[seed % len] ^= 0x80;
        if (aead_open(alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) == 0)
            return 0;
    }
    memcpy(buf, want, len + 16);
    if (adlen) {
        ad[seed % adlen] ^= 8;
        if (aead_open(alg, key, nonce, ad, adlen, buf, len) == 0)
            return 0;
        ad[seed % adlen] ^= 8;
        memcpy(buf, want, len + 16);
    } else if (aead_open(alg, key, nonce, ad, 1, buf, len) == 0) {   /* data the sealer did not give */
        return 0;
    }
    memcpy(buf, want, len + 16);
    if (aead_open(other_alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) == 0)
        return 0;
    memcpy(other, key, 32);
    other[seed % 32] ^= 4;
    memcpy(buf, want, len + 16);
    if (aead_open(alg, other, nonce, adlen ? ad : NULL, adlen, buf, len) == 0)
        return 0;
    nonce[seed % 12] ^= 2;
    memcpy(buf, want, len + 16);
    return aead_open(alg, key, nonce, adlen ? ad : NULL, adlen, buf, len) != 0;
}

static void *worker(void *arg)
{
    uintptr_t bad = 0;
    uint8_t *buf = malloc(MAXLEN + 16), *want = malloc(MAXLEN + 16);
    pthread_barrier_wait(&start);   /* every thread's first call races the one-time fetch */
    for (uint32_t i = 0; i < FRAMES && buf && want; i++)
        bad += !frame_ok((uint32_t)(uintptr_t)arg * FRAMES + i, buf, want);
    free(buf);
    free(want);
    return (void *)(bad + (!buf || !want));
}

Test(aead, threads_at_once_seal_libsodiums_bytes_with_both_ciphers_and_refuse_what_was_altered)
{
    cr_assert_geq(sodium_init(), 0);
    pthread_t t[THREADS];
    cr_assert_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
    for (uintptr_t i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_expect_eq((uintptr_t)bad, 0, "thread %d: %zu of %d frames wrong", i, (size_t)(uintptr_t)bad, FRAMES);
    }
    pthread_barrier_destroy(&start);
}

/* The choice link_dial makes by default follows the CPU as libsodium sees it. */
Test(aead, aes_in_hardware_is_libsodiums_answer)
{
    cr_assert_geq(sodium_init(), 0);
    cr_assert_eq(aead_aes_in_hardware(), crypto_aead_aes256gcm_is_available());
}
