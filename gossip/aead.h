/* gossip/aead.h - ChaCha20-Poly1305 (RFC 8439, the IETF variant with a 96-bit nonce, no associated
 * data), in place, for the data link's transport frames (gossip/noise.c): OpenSSL's implementation,
 * which vectorises it (AVX2/AVX-512) about four times faster than libsodium 1.0.18's here, for the
 * very same bytes (ciphertext and tag). The handshake keeps libsodium's.
 * Must not: keep key material beyond a call. */
#ifndef TRIB_AEAD_H
#define TRIB_AEAD_H

#include <stddef.h>
#include <stdint.h>

/* Encrypts buf[0..len) in place and writes the 16-byte tag at buf + len. 0, or -1 (out of memory). */
int aead_seal(const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len);
/* Decrypts buf[0..len) in place, checking the tag at buf + len. 0, or -1 (forged, or out of memory:
 * buf is then garbage). */
int aead_open(const uint8_t key[32], const uint8_t nonce[12], uint8_t *buf, size_t len);

#endif
