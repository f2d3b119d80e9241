/* tests/test_edcurve.c - gossip/edcurve: the Ed25519 -> X25519 public key map against libsodium.
 *
 * Owns: equality with crypto_sign_ed25519_pk_to_curve25519 and with the CURVE key derived from
 * the secret on random key pairs, a bounded random-input test (every key libsodium maps, mapped
 * the same; nothing libsodium refuses for its encoding or curve mapped), and the table of keys
 * refused: not canonical, not on the curve, small order; and the one documented difference (a key
 * with a small-order component is mapped).
 * Must not: depend on anything but libsodium. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "gossip/edcurve.h"

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

static void unhex(const char *hex, uint8_t out[32])
{
    cr_assert_eq(sodium_hex2bin(out, 32, hex, 64, NULL, NULL, NULL), 0);
}

Test(edcurve, equals_libsodium_and_the_secret_keys_curve_form, .init = setup)
{
    for (int i = 0; i < 2000; i++) {
        uint8_t pk[32], sk[64], ours[32], theirs[32], csk[32], from_sk[32];
        crypto_sign_keypair(pk, sk);
        cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(theirs, pk), 0);
        cr_assert_eq(edcurve_pk(ours, pk), 0, "key %d", i);
        cr_assert_eq(memcmp(ours, theirs, 32), 0, "key %d: a different CURVE key", i);
        cr_assert_eq(crypto_sign_ed25519_sk_to_curve25519(csk, sk), 0);
        cr_assert_eq(crypto_scalarmult_curve25519_base(from_sk, csk), 0);
        cr_assert_eq(memcmp(ours, from_sk, 32), 0, "key %d: not the secret key's CURVE key", i);
    }
}

/* Random bytes: about half decode to a point, of which 1 in 8 lies in the prime-order subgroup. */
Test(edcurve, random_input_never_disagrees_with_libsodium_on_a_key_it_maps, .init = setup)
{
    int mapped_both = 0, mapped_ours = 0;
    for (int i = 0; i < 20000; i++) {
        uint8_t k[32], ours[32], theirs[32];
        randombytes_buf(k, sizeof k);
        int a = edcurve_pk(ours, k), b = crypto_sign_ed25519_pk_to_curve25519(theirs, k);
        if (b == 0) {
            cr_assert_eq(a, 0, "libsodium maps %d, edcurve refuses", i);
            cr_assert_eq(memcmp(ours, theirs, 32), 0, "input %d mapped differently", i);
            mapped_both++;
        } else if (a == 0) {
            mapped_ours++;    /* on the curve, outside the subgroup: libsodium's extra refusal */
        }
    }
    cr_assert_gt(mapped_both, 500);
    cr_assert_gt(mapped_ours, 4 * mapped_both, "%d mapped by edcurve only, %d by both", mapped_ours, mapped_both);
}

Test(edcurve, refuses_what_is_not_a_usable_point, .init = setup)
{
    static const char *const bad[] = {
        "0100000000000000000000000000000000000000000000000000000000000000",   /* identity */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",   /* order 2 (y = -1) */
        "0000000000000000000000000000000000000000000000000000000000000000",   /* order 4 (y = 0) */
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",   /* order 8 */
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",   /* y = p: not canonical */
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",   /* y = p + 1 */
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0200000000000000000000000000000000000000000000000000000000000000",   /* y = 2: no x */
    };
    uint8_t k[32], out[32], keep[32];
    memset(out, 0xa5, sizeof out);
    memcpy(keep, out, sizeof keep);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unhex(bad[i], k);
        cr_assert_eq(edcurve_pk(out, k), -1, "%s mapped", bad[i]);
        cr_assert_eq(memcmp(out, keep, 32), 0, "%s: output written on refusal", bad[i]);
        cr_assert_neq(crypto_sign_ed25519_pk_to_curve25519(out, k), 0, "%s: libsodium maps it", bad[i]);
        memcpy(out, keep, sizeof keep);
    }
}

/* The difference from libsodium, on purpose: a key plus a point of order 8 is mapped (to another
 * u than the key's own), not refused. A handshake with that u is completed by the holder of the
 * key's own secret (X25519 clamps the small-order part away), so the map is used only against
 * keys the charter's roots signed, never to bind an address (peerkeys::a_node_id_off_by_...). */
Test(edcurve, maps_a_key_with_a_small_order_component_to_another_u, .init = setup)
{
    uint8_t pk[32], sk[64], t8[32], mixed[32], u[32], um[32], tmp[32];
    crypto_sign_keypair(pk, sk);
    unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", t8);
    cr_assert_eq(crypto_core_ed25519_add(mixed, pk, t8), 0);
    cr_assert_neq(crypto_sign_ed25519_pk_to_curve25519(tmp, mixed), 0);
    cr_assert_eq(edcurve_pk(u, pk), 0);
    cr_assert_eq(edcurve_pk(um, mixed), 0);
    cr_assert_neq(memcmp(u, um, 32), 0);
}
