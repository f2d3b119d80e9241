/* gossip/noise.h - Noise_IK_25519_ChaChaPoly_SHA256 and Noise_IK_25519_AESGCM_SHA256 (Noise spec
 * revision 34; X25519 and SHA-256 from libsodium, the AEADs from gossip/aead.c): the handshake
 * state machine and the transport cipher of gossip/link.c, and nothing else (no other pattern, no
 * I/O, no clock, no global state; ephemeral keys come from libsodium's generator). The two
 * protocols differ only in the cipher (and its nonce's byte order); the caller picks one for both
 * ends (gossip/link.c: by the magic the initiator sends).
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss   (message 1: 32 + 48 + payload + 16 bytes)
 *   <- e, ee, se      (message 2: 32 + payload + 16 bytes)
 *
 * The prologue is the caller's bytes as given (gossip/link.c passes its magic "TRIBLNK1" and
 * the 32-byte federation prologue), mixed into h before the responder's static key. The handshake hash h is the
 * associated data of every handshake encryption; transport messages have none. Nonces: 4 zero
 * bytes || the 64-bit message count, little-endian (ChaChaPoly) or big-endian (AESGCM); the count
 * 2^64-1 is never used. */
#ifndef TRIB_NOISE_H
#define TRIB_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define NOISE_KEY      32
#define NOISE_TAG      16
#define NOISE_MSG1_MIN (32 + 32 + NOISE_TAG + NOISE_TAG)   /* message 1 with an empty payload */
#define NOISE_MSG2_MIN (32 + NOISE_TAG)                    /* message 2 with an empty payload */

typedef enum {
    NOISE_OK = 0,
    NOISE_MALFORMED = -1,   /* too short, or a payload longer than the caller's room */
    NOISE_AUTH = -2,        /* did not decrypt, a DH gave all zeros (a small-order key), or the
                               initiator's static key is not canonical (bit 255 set) */
    NOISE_STATE = -3        /* called out of turn, or the nonce ran out */
} noise_err_t;

typedef enum {
    NOISE_CHACHAPOLY = 0,   /* Noise_IK_25519_ChaChaPoly_SHA256 */
    NOISE_AESGCM = 1        /* Noise_IK_25519_AESGCM_SHA256 */
} noise_suite_t;

typedef struct {
    uint8_t k[NOISE_KEY];
    uint64_t n;
    noise_suite_t suite;
} noise_cipher_t;

typedef struct {
    uint8_t ck[32], h[32], k[NOISE_KEY];
    uint64_t n;
    noise_suite_t suite;
    int has_k, initiator, step;
    uint8_t s_pk[32], s_sk[32], e_pk[32], e_sk[32], rs[32], re[32];
} noise_hs_t;

/* Starts a handshake of the protocol suite names. The initiator gives rs, the responder's static
 * key; the responder NULL. Generates this end's ephemeral key. */
void noise_init(noise_hs_t *hs, noise_suite_t suite, int initiator, const uint8_t s_pk[32],
                const uint8_t s_sk[32], const uint8_t *rs, const uint8_t *prologue, size_t prologue_len);
/* Tests only (fixed test vectors): replaces the ephemeral key noise_init generated. */
void noise_set_ephemeral(noise_hs_t *hs, const uint8_t e_sk[32]);

/* Writes message 1 (initiator) or 2 (responder) into out, which has room for
 * NOISE_MSG1_MIN/NOISE_MSG2_MIN + payload_len bytes; *out_len gets its length. */
noise_err_t noise_write(noise_hs_t *hs, const uint8_t *payload, size_t payload_len, uint8_t *out,
                        size_t *out_len);
/* Reads message 1 (responder: hs->rs is then the initiator's authenticated static key) or 2
 * (initiator). The payload goes to payload (room: cap bytes), its length to *payload_len. */
noise_err_t noise_read(noise_hs_t *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap,
                       size_t *payload_len);
/* After message 2: the two transport ciphers of this end; wipes hs. */
void noise_split(noise_hs_t *hs, noise_cipher_t *send, noise_cipher_t *recv);

/* Transport: encrypts len bytes at buf in place and writes the tag at buf + len. */
noise_err_t noise_seal(noise_cipher_t *c, uint8_t *buf, size_t len);
/* Decrypts len (>= NOISE_TAG) bytes at buf in place: the plaintext is the first len - 16. */
noise_err_t noise_open(noise_cipher_t *c, uint8_t *buf, size_t len);

void noise_wipe_hs(noise_hs_t *hs);

#endif
