/* gossip/aead.h - the AEAD ciphers of Noise (spec section 12.3/12.4): ChaCha20-Poly1305 (RFC 8439,
 * the IETF variant, 96-bit nonce) and AES-256-GCM (NIST SP 800-38D, 96-bit nonce), both with a
 * 32-byte key and a 16-byte tag, in place, for the data link's handshake and transport frames
 * (gossip/noise.c). OpenSSL's implementations: vectorised (AVX2/AVX-512, VAES), ChaCha20-Poly1305
 * about four times faster than libsodium 1.0.18's here for the very same bytes, AES-256-GCM about
 * 1.5 times faster again where the CPU has AES and carry-less multiply instructions.
 * Must not: keep key material beyond a call. */
#ifndef TRIB_AEAD_H
#define TRIB_AEAD_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    AEAD_CHACHAPOLY = 0,   /* Noise "ChaChaPoly" */
    AEAD_AESGCM = 1,       /* Noise "AESGCM" */
} aead_alg_t;

/* Encrypts buf[0..len) in place and writes the 16-byte tag at buf + len; ad (adlen bytes, may be
 * NULL when 0) is authenticated, not encrypted. 0, or -1 (out of memory, or an unknown alg). */
int aead_seal(aead_alg_t alg, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad, size_t adlen,
              uint8_t *buf, size_t len);
/* Decrypts buf[0..len) in place, checking the tag at buf + len against it and ad. 0, or -1
 * (forged, or out of memory: buf is then garbage). */
int aead_open(aead_alg_t alg, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ad, size_t adlen,
              uint8_t *buf, size_t len);

/* 1 when this CPU runs AES-256-GCM in hardware (x86-64: AES-NI and PCLMULQDQ, as libsodium's
 * crypto_aead_aes256gcm_is_available() reports), so it is the faster of the two here; else 0
 * (OpenSSL's constant-time software AES still works, slower than ChaCha20-Poly1305). */
int aead_aes_in_hardware(void);

#endif
