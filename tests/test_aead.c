/* tests/test_aead.c - gossip/aead: OpenSSL's ChaCha20-Poly1305, its cipher fetched once for the
 * process and shared by every thread (each with its own context), gives libsodium's bytes.
 *
 * Owns: sealing and opening from many threads at once, the first call of each racing the one-time
 * fetch, checked byte for byte against libsodium's IETF construction; a tag or byte altered, or
 * another key or nonce, fails to open; lengths 0, 1 and across the cipher's 64-byte blocks.
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

/* One frame: sealed by aead_seal as libsodium seals it, opened back, and refused altered. */
static int frame_ok(uint32_t seed, uint8_t *buf, uint8_t *want)
{
    uint8_t key[32], nonce[12], other[32];
    randombytes_buf(key, sizeof key);
    randombytes_buf(nonce, sizeof nonce);
    size_t len = seed % 3 == 0 ? seed % 130 : randombytes_uniform(MAXLEN);
    randombytes_buf(buf, len);
    memcpy(want, buf, len);
    unsigned long long maclen = 0;
    if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(want, want + len, &maclen, want, len, NULL, 0, NULL,
                                                           nonce, key) != 0)
        return 0;
    uint8_t plain[MAXLEN];
    memcpy(plain, buf, len);
    if (aead_seal(key, nonce, buf, len) != 0 || memcmp(buf, want, len + 16) != 0)
        return 0;
    if (aead_open(key, nonce, buf, len) != 0 || memcmp(buf, plain, len) != 0)
        return 0;
    /* altered: the tag, a byte of the text, the key, the nonce */
    memcpy(buf, want, len + 16);
    buf[len + (seed % 16)] ^= 1;
    if (aead_open(key, nonce, buf, len) == 0)
        return 0;
    if (len) {
        memcpy(buf, want, len + 16);
        buf[seed % len] ^= 0x80;
        if (aead_open(key, nonce, buf, len) == 0)
            return 0;
    }
    memcpy(other, key, 32);
    other[seed % 32] ^= 4;
    memcpy(buf, want, len + 16);
    if (aead_open(other, nonce, buf, len) == 0)
        return 0;
    nonce[seed % 12] ^= 2;
    memcpy(buf, want, len + 16);
    return aead_open(key, nonce, buf, len) != 0;
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

Test(aead, threads_at_once_seal_libsodiums_bytes_and_refuse_what_was_altered)
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
