/* tests/test_noise.c - gossip/noise: Noise_IK_25519_ChaChaPoly_SHA256 and
 * Noise_IK_25519_AESGCM_SHA256 against the cacophony test vectors, and the handshake's refusals.
 *
 * Owns: byte-for-byte equality with the vectors "Noise_IK_25519_ChaChaPoly_SHA256" of two
 * independent implementations: cacophony's vectors/cacophony.txt (github.com/haskell-cryptography/
 * cacophony, which noise-c and snow check against too) and noise-c's own
 * tests/vector/noise-c-basic.txt (github.com/rweather/noise-c; another prologue, and the
 * handshake hash), and with cacophony's "Noise_IK_25519_AESGCM_SHA256": messages 1 and 2 and four
 * transport messages; the two protocols do not read each other's messages; the refusals (another
 * responder key, another prologue, any byte of message 1 or 2 altered, out of turn), what a
 * replayed message 1 gives an attacker (nothing it can use), a keyless message 1 (small-order e
 * and s: every DH zero), and a bounded random-input test of
 * noise_read and noise_open.
 * Must not: do I/O or depend on gossip/link.c. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "gossip/noise.h"

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len = 0;
    cr_assert_eq(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL), 0);
    cr_assert_eq(len * 2, strlen(hex));
    return len;
}

/* The keys of both vectors (the Noise project's usual test keys). */
#define V_INIT_S     "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"
#define V_INIT_E     "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"
#define V_INIT_RS    "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62"
#define V_RESP_S     "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"
#define V_RESP_E     "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"

typedef struct {
    const char *source;
    noise_suite_t suite;
    const char *prologue, *handshake_hash;            /* hash: NULL when the source gives none */
    const char *msg[6][2];                             /* payload, ciphertext; alternating sides */
} vector_t;

/* Messages 3-6 are the same in the two ChaChaPoly vectors: the transport keys come from ck, which
 * the prologue (mixed into h only) does not touch; messages 1 and 2 differ (h is their associated
 * data). The AESGCM vector has the same keys and payloads: everything but the ephemeral keys
 * differs (another protocol name, cipher and nonce byte order). */
static const vector_t VECTORS[] = {
    {"haskell-cryptography/cacophony vectors/cacophony.txt", NOISE_CHACHAPOLY, "4a6f686e2047616c74", NULL,
     {{"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944718da798efbcd91528520204f904"
       "b9bd6c7413dccdc214d951e15253e39987f18146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b"
       "7bba2e89083169825e59642148d492020664ccf7"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088435361e70b2ed446e6c9ec387d1d6b"
       "3b840f194e373979d241b203c4acafccf5"},
      {"462e20412e20486179656b", "050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8"},
      {"4361726c204d656e676572", "344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667"},
      {"4a65616e2d426170746973746520536179",
       "62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2b4"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcead32d514024"}}},
    {"rweather/noise-c tests/vector/noise-c-basic.txt", NOISE_CHACHAPOLY, "50726f6c6f677565313233",
     "3d8748e8f966293aeab5cd9a2e42ad0e8d0ebd83fa78957c4664bc6718613eeb",
     {{"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944718da798efbcd91528520204f904"
       "b9bd6c7413dccdc214d951e15253e39987f1508bfd10ad143e921328082a3c3b9e50c289f0294b29960a72f48e0b"
       "7bba2e89f20d17ed0e4dcf718749c95a941a620e"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088435361e70b2ed446e6c9ec387d1d6b"
       "3b3380e00f0055bd7b310e12947fbab8e7"},
      {"462e20412e20486179656b", "050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8"},
      {"4361726c204d656e676572", "344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667"},
      {"4a65616e2d426170746973746520536179",
       "62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2b4"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcead32d514024"}}},
    {"haskell-cryptography/cacophony vectors/cacophony.txt: Noise_IK_25519_AESGCM_SHA256", NOISE_AESGCM,
     "4a6f686e2047616c74", NULL,
     {{"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444e417bc55c7a8166c993356c1be4"
       "1ef67818a292426f301556c7f26b21d25ddb097153891a9a956cff47b83e63ad8d701c1342c209cff1ca5ecd4340"
       "2762ac249e3bd3a4c0a145fe07cb5dae28ea13a3"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843af2ccf9972e22afc67aeafcd2516"
       "2f7f98c363b7762e3e4cb7d272e39f27a5"},
      {"462e20412e20486179656b",
       "66acfc92e3197de166809e6d4d5d003dcc819a84bc3522ca53c9d9"},
      {"4361726c204d656e676572",
       "71f89aa6533a6de70b0826864dd75f60806ee40170c16290189eb3"},
      {"4a65616e2d426170746973746520536179",
       "4795a3423550c8bf00386bd496a3e2c76c10669d2a75ab8f79b5094c5412a25705"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "aa0bb39097555c918e40be82abc2b909eb79d9eb87adb07e268fc37323a6cf904fd01fb391"}}},
};

typedef struct {
    uint8_t is_pk[32], is_sk[32], rs_pk[32], rs_sk[32], prologue[64];
    size_t prologue_len;
} keys_t;

static void vector_keys(keys_t *k, const vector_t *v)
{
    uint8_t expect_rs[32];
    unhex(V_INIT_S, k->is_sk, 32);
    unhex(V_RESP_S, k->rs_sk, 32);
    crypto_scalarmult_base(k->is_pk, k->is_sk);
    crypto_scalarmult_base(k->rs_pk, k->rs_sk);
    unhex(V_INIT_RS, expect_rs, 32);
    cr_assert_eq(memcmp(k->rs_pk, expect_rs, 32), 0, "the vector's responder key");
    k->prologue_len = unhex(v->prologue, k->prologue, sizeof k->prologue);
}

static void vector_start(const keys_t *k, noise_suite_t suite, noise_hs_t *ini, noise_hs_t *resp)
{
    uint8_t e[32];
    noise_init(ini, suite, 1, k->is_pk, k->is_sk, k->rs_pk, k->prologue, k->prologue_len);
    unhex(V_INIT_E, e, 32);
    noise_set_ephemeral(ini, e);
    noise_init(resp, suite, 0, k->rs_pk, k->rs_sk, NULL, k->prologue, k->prologue_len);
    unhex(V_RESP_E, e, 32);
    noise_set_ephemeral(resp, e);
}

static void check_vector(const vector_t *v)
{
    keys_t k;
    noise_hs_t ini, resp;
    uint8_t payload[64], expect[256], msg[256], got[64];
    size_t plen, elen, mlen, glen;
    vector_keys(&k, v);
    vector_start(&k, v->suite, &ini, &resp);

    plen = unhex(v->msg[0][0], payload, sizeof payload);
    elen = unhex(v->msg[0][1], expect, sizeof expect);
    cr_assert_eq(noise_write(&ini, payload, plen, msg, &mlen), NOISE_OK);
    cr_assert_eq(mlen, elen);
    cr_assert_eq(memcmp(msg, expect, elen), 0, "%s: message 1 differs", v->source);
    cr_assert_eq(noise_read(&resp, msg, mlen, got, sizeof got, &glen), NOISE_OK);
    cr_assert_eq(glen, plen);
    cr_assert_eq(memcmp(got, payload, plen), 0);
    cr_assert_eq(memcmp(resp.rs, k.is_pk, 32), 0, "the responder learns the initiator's key");

    plen = unhex(v->msg[1][0], payload, sizeof payload);
    elen = unhex(v->msg[1][1], expect, sizeof expect);
    cr_assert_eq(noise_write(&resp, payload, plen, msg, &mlen), NOISE_OK);
    cr_assert_eq(mlen, elen);
    cr_assert_eq(memcmp(msg, expect, elen), 0, "%s: message 2 differs", v->source);
    cr_assert_eq(noise_read(&ini, msg, mlen, got, sizeof got, &glen), NOISE_OK);
    cr_assert_eq(glen, plen);
    cr_assert_eq(memcmp(got, payload, plen), 0);
    if (v->handshake_hash) {
        uint8_t hh[32];
        unhex(v->handshake_hash, hh, 32);
        cr_assert_eq(memcmp(ini.h, hh, 32), 0, "%s: the handshake hash differs", v->source);
        cr_assert_eq(memcmp(resp.h, hh, 32), 0);
    }

    noise_cipher_t tx[2], rx[2];   /* [0] initiator, [1] responder */
    noise_split(&ini, &tx[0], &rx[0]);
    noise_split(&resp, &tx[1], &rx[1]);
    for (int i = 2; i < 6; i++) {
        int from = i % 2;   /* 0: the initiator sends */
        plen = unhex(v->msg[i][0], payload, sizeof payload);
        elen = unhex(v->msg[i][1], expect, sizeof expect);
        memcpy(msg, payload, plen);
        cr_assert_eq(noise_seal(&tx[from], msg, plen), NOISE_OK);
        cr_assert_eq(plen + NOISE_TAG, elen);
        cr_assert_eq(memcmp(msg, expect, elen), 0, "%s: transport message %d differs", v->source, i + 1);
        cr_assert_eq(noise_open(&rx[1 - from], msg, elen), NOISE_OK);
        cr_assert_eq(memcmp(msg, payload, plen), 0);
    }
}

Test(noise, the_cacophony_and_noise_c_ik_vectors_byte_for_byte, .init = setup)
{
    for (size_t i = 0; i < sizeof VECTORS / sizeof *VECTORS; i++)
        check_vector(&VECTORS[i]);
}

/* A fresh key pair and a handshake between two random parties. */
typedef struct {
    uint8_t ipk[32], isk[32], rpk[32], rsk[32], prologue[32];
} party_t;

static void parties(party_t *p)
{
    crypto_box_keypair(p->ipk, p->isk);
    crypto_box_keypair(p->rpk, p->rsk);
    randombytes_buf(p->prologue, 32);
}

static size_t msg1(const party_t *p, const uint8_t rpk[32], const uint8_t prologue[32], uint8_t *out)
{
    noise_hs_t ini;
    size_t len;
    noise_init(&ini, NOISE_CHACHAPOLY, 1, p->ipk, p->isk, rpk, prologue, 32);
    cr_assert_eq(noise_write(&ini, (const uint8_t *)"hello", 5, out, &len), NOISE_OK);
    return len;
}

/* The two protocols with the same keys: each completes with itself, and neither reads the other's
 * message 1 (another name in h, another cipher). Transport frames of 0..4 KiB both ways, one byte
 * altered refused. */
Test(noise, aesgcm_and_chachapoly_each_complete_and_never_read_each_other, .init = setup)
{
    party_t p;
    parties(&p);
    static const noise_suite_t suites[2] = {NOISE_CHACHAPOLY, NOISE_AESGCM};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            noise_hs_t ini, resp;
            uint8_t m[256], got[64], buf[4096 + NOISE_TAG];
            size_t len, glen;
            noise_init(&ini, suites[a], 1, p.ipk, p.isk, p.rpk, p.prologue, 32);
            noise_init(&resp, suites[b], 0, p.rpk, p.rsk, NULL, p.prologue, 32);
            cr_assert_eq(noise_write(&ini, (const uint8_t *)"hello", 5, m, &len), NOISE_OK);
            noise_err_t r = noise_read(&resp, m, len, got, sizeof got, &glen);
            if (a != b) {
                cr_assert_eq(r, NOISE_AUTH, "suite %d read suite %d's message 1", b, a);
                continue;
            }
            cr_assert_eq(r, NOISE_OK);
            cr_assert_eq(noise_write(&resp, NULL, 0, m, &len), NOISE_OK);
            cr_assert_eq(noise_read(&ini, m, len, got, sizeof got, &glen), NOISE_OK);
            noise_cipher_t itx, irx, rtx, rrx;
            noise_split(&ini, &itx, &irx);
            noise_split(&resp, &rtx, &rrx);
            for (size_t n = 0; n <= 4096; n += 257) {
                noise_cipher_t *tx = n % 2 ? &itx : &rtx, *rx = n % 2 ? &rrx : &irx;
                uint8_t want[4096];
                randombytes_buf(want, n);
                memcpy(buf, want, n);
                cr_assert_eq(noise_seal(tx, buf, n), NOISE_OK);
                uint8_t sealed[sizeof buf];
                memcpy(sealed, buf, n + NOISE_TAG);
                buf[(n + NOISE_TAG) / 2] ^= 0x40;
                cr_assert_eq(noise_open(rx, buf, n + NOISE_TAG), NOISE_AUTH, "an altered frame opened");
                memcpy(buf, sealed, n + NOISE_TAG);   /* a failed open leaves garbage in place */
                cr_assert_eq(noise_open(rx, buf, n + NOISE_TAG), NOISE_OK);
                cr_assert_eq(memcmp(buf, want, n), 0);
            }
        }
}

static noise_err_t read1(const party_t *p, const uint8_t *m, size_t len)
{
    noise_hs_t resp;
    uint8_t pl[256];
    size_t plen;
    noise_init(&resp, NOISE_CHACHAPOLY, 0, p->rpk, p->rsk, NULL, p->prologue, 32);
    return noise_read(&resp, m, len, pl, sizeof pl, &plen);
}

Test(noise, message_1_for_another_key_or_prologue_does_not_read, .init = setup)
{
    party_t p;
    uint8_t m[256], other_pk[32], other_sk[32], other_prologue[32];
    parties(&p);
    crypto_box_keypair(other_pk, other_sk);
    memcpy(other_prologue, p.prologue, 32);
    other_prologue[31] ^= 1;
    size_t len = msg1(&p, p.rpk, p.prologue, m);
    cr_assert_eq(read1(&p, m, len), NOISE_OK, "the control reads");
    len = msg1(&p, other_pk, p.prologue, m);
    cr_assert_eq(read1(&p, m, len), NOISE_AUTH, "written for another responder key");
    len = msg1(&p, p.rpk, other_prologue, m);
    cr_assert_eq(read1(&p, m, len), NOISE_AUTH, "written under another prologue");
    party_t q = p;   /* a responder with another key reads a message made for p's */
    memcpy(q.rpk, other_pk, 32), memcpy(q.rsk, other_sk, 32);
    len = msg1(&p, p.rpk, p.prologue, m);
    cr_assert_eq(read1(&q, m, len), NOISE_AUTH, "read by another responder key");
    cr_assert_eq(read1(&p, m, NOISE_MSG1_MIN - 1), NOISE_MALFORMED, "too short");
}

Test(noise, any_byte_altered_in_message_1_or_2_fails, .init = setup)
{
    party_t p;
    uint8_t m1[256], m2[256], pl[256];
    size_t l1, l2, plen;
    parties(&p);
    l1 = msg1(&p, p.rpk, p.prologue, m1);
    for (size_t i = 0; i < l1; i++) {
        m1[i] ^= 0x40;
        cr_assert_neq(read1(&p, m1, l1), NOISE_OK, "message 1 altered at byte %zu read", i);
        m1[i] ^= 0x40;
    }
    /* message 2: one initiator state per try (a failed read spoils the state) */
    noise_hs_t ini0, resp;
    noise_init(&ini0, NOISE_CHACHAPOLY, 1, p.ipk, p.isk, p.rpk, p.prologue, 32);
    cr_assert_eq(noise_write(&ini0, NULL, 0, m1, &l1), NOISE_OK);
    noise_init(&resp, NOISE_CHACHAPOLY, 0, p.rpk, p.rsk, NULL, p.prologue, 32);
    cr_assert_eq(noise_read(&resp, m1, l1, pl, sizeof pl, &plen), NOISE_OK);
    cr_assert_eq(noise_write(&resp, (const uint8_t *)"ok", 2, m2, &l2), NOISE_OK);
    cr_assert_eq(l2, NOISE_MSG2_MIN + 2);
    for (size_t i = 0; i < l2; i++) {
        noise_hs_t ini = ini0;
        m2[i] ^= 0x01;
        cr_assert_neq(noise_read(&ini, m2, l2, pl, sizeof pl, &plen), NOISE_OK,
                      "message 2 altered at byte %zu read", i);
        m2[i] ^= 0x01;
    }
    noise_hs_t ini = ini0;
    cr_assert_eq(noise_read(&ini, m2, l2, pl, sizeof pl, &plen), NOISE_OK, "the control reads");
    cr_assert_eq(noise_read(&ini, m2, l2, pl, sizeof pl, &plen), NOISE_STATE, "read twice");
}

/* An attacker who recorded message 1 replays it: the responder accepts it (IK cannot tell), but
 * the session's keys depend on the responder's fresh ephemeral key and the initiator's
 * ephemeral secret, which the attacker lacks: keys from any other run (here: the genuine
 * initiator's own) open none of the responder's frames, and frames sealed under them fail. */
Test(noise, a_replayed_message_1_gives_a_session_the_attacker_cannot_use, .init = setup)
{
    party_t p;
    uint8_t m1[256], m2[256], pl[256], frame[64];
    size_t l1, l2, plen;
    parties(&p);
    noise_hs_t ini, resp;
    noise_init(&ini, NOISE_CHACHAPOLY, 1, p.ipk, p.isk, p.rpk, p.prologue, 32);
    cr_assert_eq(noise_write(&ini, NULL, 0, m1, &l1), NOISE_OK);
    noise_init(&resp, NOISE_CHACHAPOLY, 0, p.rpk, p.rsk, NULL, p.prologue, 32);
    cr_assert_eq(noise_read(&resp, m1, l1, pl, sizeof pl, &plen), NOISE_OK);
    cr_assert_eq(noise_write(&resp, NULL, 0, m2, &l2), NOISE_OK);
    cr_assert_eq(noise_read(&ini, m2, l2, pl, sizeof pl, &plen), NOISE_OK);
    noise_cipher_t itx, irx, rtx, rrx;
    noise_split(&ini, &itx, &irx);
    noise_split(&resp, &rtx, &rrx);

    noise_hs_t replay;   /* the responder again, fed the recorded message 1 */
    noise_cipher_t ptx, prx;
    noise_init(&replay, NOISE_CHACHAPOLY, 0, p.rpk, p.rsk, NULL, p.prologue, 32);
    cr_assert_eq(noise_read(&replay, m1, l1, pl, sizeof pl, &plen), NOISE_OK);
    cr_assert_eq(noise_write(&replay, NULL, 0, m2, &l2), NOISE_OK);
    noise_split(&replay, &ptx, &prx);
    cr_assert_neq(memcmp(prx.k, rrx.k, 32), 0, "the replayed session has fresh keys");

    noise_cipher_t attacker = itx;   /* the best the attacker could hold: the first run's keys */
    memcpy(frame, "GET everything", 14);
    cr_assert_eq(noise_seal(&attacker, frame, 14), NOISE_OK);
    cr_assert_eq(noise_open(&prx, frame, 14 + NOISE_TAG), NOISE_AUTH);
    memcpy(frame, "records", 7);
    cr_assert_eq(noise_seal(&ptx, frame, 7), NOISE_OK);
    noise_cipher_t reader = irx;
    cr_assert_eq(noise_open(&reader, frame, 7 + NOISE_TAG), NOISE_AUTH);
}

Test(noise, transport_refuses_altered_replayed_and_reordered_messages, .init = setup)
{
    noise_cipher_t tx = {.n = 0}, rx;
    randombytes_buf(tx.k, 32);
    rx = tx;
    uint8_t a[32] = "first", b[32] = "second", copy[32];
    cr_assert_eq(noise_seal(&tx, a, 6), NOISE_OK);
    cr_assert_eq(noise_seal(&tx, b, 7), NOISE_OK);
    noise_cipher_t r = rx;
    memcpy(copy, b, sizeof copy);
    cr_assert_eq(noise_open(&r, copy, 7 + NOISE_TAG), NOISE_AUTH, "reordered");
    memcpy(copy, a, sizeof copy);
    copy[2] ^= 1;
    cr_assert_eq(noise_open(&r, copy, 6 + NOISE_TAG), NOISE_AUTH, "altered");
    memcpy(copy, a, sizeof copy);
    cr_assert_eq(noise_open(&r, copy, 6 + NOISE_TAG), NOISE_OK);
    memcpy(copy, a, sizeof copy);
    cr_assert_eq(noise_open(&r, copy, 6 + NOISE_TAG), NOISE_AUTH, "replayed");
    cr_assert_eq(noise_open(&r, b, 7 + NOISE_TAG), NOISE_OK);
    cr_assert_eq(noise_open(&r, b, NOISE_TAG - 1), NOISE_MALFORMED);
    tx.n = UINT64_MAX;
    cr_assert_eq(noise_seal(&tx, a, 1), NOISE_STATE, "the last nonce is never used");
    noise_cipher_t last = tx, lastr = tx;   /* a message sealed at 2^64-2 opens; at 2^64-1 nothing does */
    last.n = lastr.n = UINT64_MAX - 1;
    memcpy(copy, "z", 1);
    cr_assert_eq(noise_seal(&last, copy, 1), NOISE_OK);
    cr_assert_eq(noise_open(&lastr, copy, 1 + NOISE_TAG), NOISE_OK);
    cr_assert_eq(lastr.n, UINT64_MAX);
    cr_assert_eq(noise_open(&lastr, copy, 1 + NOISE_TAG), NOISE_STATE, "open at n = 2^64-1");
    cr_assert_eq(lastr.n, UINT64_MAX);
}

/* Message 1 of an initiator that claims static key claim_pk while holding own_sk; read by p's
 * responder, whose view of the initiator's key goes to rs_out. */
static noise_err_t claim(const party_t *p, const uint8_t claim_pk[32], const uint8_t own_sk[32], uint8_t rs_out[32])
{
    noise_hs_t ini, resp;
    uint8_t m[256], pl[256];
    size_t len, plen;
    noise_init(&ini, NOISE_CHACHAPOLY, 1, claim_pk, own_sk, p->rpk, p->prologue, 32);
    cr_assert_eq(noise_write(&ini, (const uint8_t *)"x", 1, m, &len), NOISE_OK);
    noise_init(&resp, NOISE_CHACHAPOLY, 0, p->rpk, p->rsk, NULL, p->prologue, 32);
    noise_err_t e = noise_read(&resp, m, len, pl, sizeof pl, &plen);
    memcpy(rs_out, resp.rs, 32);
    return e;
}

Test(noise, an_initiators_static_key_with_bit_255_set_is_refused, .init = setup)
{
    party_t p;
    uint8_t pk2[32], rs[32];
    parties(&p);
    cr_assert_eq(claim(&p, p.ipk, p.isk, rs), NOISE_OK, "the control");
    cr_assert_eq(memcmp(rs, p.ipk, 32), 0);
    memcpy(pk2, p.ipk, 32);
    pk2[31] ^= 0x80;   /* the same X25519 key (bit 255 is ignored), other bytes */
    cr_assert_eq(claim(&p, pk2, p.isk, rs), NOISE_AUTH, "a non-canonical static key was read");
}

Test(noise, an_initiator_claiming_a_static_key_it_does_not_hold_is_refused, .init = setup)
{
    party_t p;
    uint8_t vpk[32], vsk[32], rs[32];
    parties(&p);
    crypto_box_keypair(vpk, vsk);   /* the victim's key; the initiator holds only its own */
    cr_assert_eq(claim(&p, vpk, p.isk, rs), NOISE_AUTH, "ss with another secret still read");
    cr_assert_eq(claim(&p, vpk, vsk, rs), NOISE_OK, "the control: the holder of the key");
}

/* What an attacker with no secret at all would send: e = s = a point of small order (0, 1), so
 * every DH the responder does with them (es, ss) is all zeros, which the attacker can compute
 * too; only the prologue and the responder's public key are needed. The responder must refuse
 * the zero DH: the message is otherwise well formed and decrypts. */
static void t_hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen)
        crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
}

static void t_mix_key_zero(uint8_t ck[32], uint8_t k[32])   /* MixKey(32 zero bytes) */
{
    uint8_t zero[32] = {0}, temp[32], one = 1, two = 2;
    t_hmac(temp, ck, zero, 32, NULL, 0);
    t_hmac(ck, temp, &one, 1, NULL, 0);
    t_hmac(k, temp, ck, 32, &two, 1);
}

static void t_mix_hash(uint8_t h[32], const uint8_t *d, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, h, 32);
    crypto_hash_sha256_update(&st, d, len);
    crypto_hash_sha256_final(&st, h);
}

static size_t keyless_msg1(const party_t *p, uint8_t point, uint8_t *m)
{
    uint8_t h[32], ck[32], k[32], nonce[12] = {0}, pt[32] = {point};
    memcpy(h, "Noise_IK_25519_ChaChaPoly_SHA256", 32);
    memcpy(ck, h, 32);
    t_mix_hash(h, p->prologue, 32);
    t_mix_hash(h, p->rpk, 32);
    memcpy(m, pt, 32);                                     /* e */
    t_mix_hash(h, m, 32);
    t_mix_key_zero(ck, k);                                 /* es = DH(rs_sk, e) = 0 */
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(m + 32, m + 64, NULL, pt, 32, h, 32, NULL, nonce, k);
    t_mix_hash(h, m + 32, 48);                             /* s, encrypted */
    t_mix_key_zero(ck, k);                                 /* ss = DH(rs_sk, s) = 0 */
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(m + 80, m + 82, NULL, (const uint8_t *)"hi", 2, h, 32,
                                                       NULL, nonce, k);
    return 80 + 2 + NOISE_TAG;
}

Test(noise, a_keyless_message_1_with_small_order_keys_is_refused, .init = setup)
{
    party_t p;
    uint8_t m[256];
    parties(&p);
    for (uint8_t point = 0; point <= 1; point++) {
        size_t len = keyless_msg1(&p, point, m);
        cr_assert_eq(read1(&p, m, len), NOISE_AUTH, "e = s = %u: a keyless message 1 was read", point);
    }
}

/* Bounded random input, for each protocol: 20,000 random or mutated messages 1 and 2 and transport messages; every
 * one refused with a reason, none read past its length (ASan), none accepted. */
static void garble(noise_suite_t suite)
{
    party_t p;
    uint8_t good1[512], good2[512], m[512], pl[512];
    size_t l1, l2, plen;
    parties(&p);
    noise_hs_t ini0, resp;
    noise_init(&ini0, suite, 1, p.ipk, p.isk, p.rpk, p.prologue, 32);
    cr_assert_eq(noise_write(&ini0, (const uint8_t *)"id", 2, good1, &l1), NOISE_OK);
    noise_init(&resp, suite, 0, p.rpk, p.rsk, NULL, p.prologue, 32);
    cr_assert_eq(noise_read(&resp, good1, l1, pl, sizeof pl, &plen), NOISE_OK);
    cr_assert_eq(noise_write(&resp, NULL, 0, good2, &l2), NOISE_OK);
    for (int i = 0; i < 20000; i++) {
        uint32_t r = randombytes_uniform(4);
        const uint8_t *good = (i % 2) ? good2 : good1;
        size_t glen = (i % 2) ? l2 : l1, len;
        if (r == 0) {   /* random bytes, random length */
            len = randombytes_uniform(400);
            randombytes_buf(m, len);
        } else {        /* the good message, 1-3 bytes changed, maybe cut or lengthened */
            len = glen;
            memcpy(m, good, len);
            for (uint32_t j = 0; j <= randombytes_uniform(3); j++)
                m[randombytes_uniform((uint32_t)len)] ^= (uint8_t)(1 + randombytes_uniform(255));
            if (memcmp(m, good, len) == 0)   /* two changes of one byte undid each other */
                m[0] ^= 1;
            if (r == 2)
                len = randombytes_uniform((uint32_t)len + 1);
            if (r == 3)
                len += randombytes_uniform(40);
        }
        size_t cap = randombytes_uniform(300);
        noise_err_t e;
        if (i % 2) {
            noise_hs_t ini = ini0;
            e = noise_read(&ini, m, len, pl, cap, &plen);
        } else {
            noise_hs_t r1;
            noise_init(&r1, suite, 0, p.rpk, p.rsk, NULL, p.prologue, 32);
            e = noise_read(&r1, m, len, pl, cap, &plen);
        }
        cr_assert(e == NOISE_MALFORMED || e == NOISE_AUTH, "garbled message %d: %d", i, e);
        noise_cipher_t c = {.n = (uint64_t)i, .suite = suite};
        randombytes_buf(c.k, 32);
        cr_assert_neq(noise_open(&c, m, len), NOISE_OK);
    }
}

Test(noise, random_and_garbled_input_is_refused, .init = setup)
{
    garble(NOISE_CHACHAPOLY);
    garble(NOISE_AESGCM);
}
