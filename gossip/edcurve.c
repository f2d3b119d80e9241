/* gossip/edcurve.c - an Ed25519 public key's X25519 (CURVE) form, without the subgroup check
 * (see gossip/edcurve.h).
 *
 * Owns: arithmetic mod p = 2^255 - 19 (five 51-bit limbs), the point decoding check (y < p and x
 * exists, as ref10's ge25519_frombytes), the map u = (1 + y) / (1 - y), and the refusal of
 * small-order points.
 * Must not: hold or compare secrets (it sees public keys only, so variable time is fine). */
#include "gossip/edcurve.h"

#include <string.h>

typedef struct {
    uint64_t v[5];                 /* value = sum v[i] * 2^(51 i), each limb < 2^52 between steps */
} fe;

typedef unsigned __int128 u128;

#define MASK51 ((UINT64_C(1) << 51) - 1)

static const fe FE_ONE = {{1, 0, 0, 0, 0}};
/* d = -121665/121666 and sqrt(-1), as in ref10 (radix 2^51) */
static const fe FE_D = {{929955233495203, 466365720129213, 1662059464998953, 2033849074728123, 1442794654840575}};
static const fe FE_SQRTM1 = {{1718705420411056, 234908883556509, 2233514472574048, 2117202627021982, 765476049583133}};

static void fe_load(fe *h, const uint8_t s[32])
{
    uint64_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int j = 7; j >= 0; j--)
            w[i] = w[i] << 8 | s[8 * i + j];
    }
    h->v[0] = w[0] & MASK51;
    h->v[1] = (w[0] >> 51 | w[1] << 13) & MASK51;
    h->v[2] = (w[1] >> 38 | w[2] << 26) & MASK51;
    h->v[3] = (w[2] >> 25 | w[3] << 39) & MASK51;
    h->v[4] = (w[3] >> 12) & MASK51;     /* the sign bit (255) dropped */
}

static void fe_carry(fe *h)
{
    for (int i = 0; i < 4; i++) {
        h->v[i + 1] += h->v[i] >> 51;
        h->v[i] &= MASK51;
    }
    h->v[0] += 19 * (h->v[4] >> 51);
    h->v[4] &= MASK51;
    h->v[1] += h->v[0] >> 51;
    h->v[0] &= MASK51;
}

/* The canonical 32 bytes (value fully reduced below p). */
static void fe_store(uint8_t s[32], const fe *f)
{
    fe h = *f;
    fe_carry(&h);
    fe_carry(&h);
    /* h < 2^255 + small: subtract p once when h >= p */
    uint64_t q = (h.v[0] + 19) >> 51;
    for (int i = 1; i < 5; i++)
        q = (h.v[i] + q) >> 51;
    h.v[0] += 19 * q;
    for (int i = 0; i < 4; i++) {
        h.v[i + 1] += h.v[i] >> 51;
        h.v[i] &= MASK51;
    }
    h.v[4] &= MASK51;
    uint64_t w[4] = {h.v[0] | h.v[1] << 51, h.v[1] >> 13 | h.v[2] << 38, h.v[2] >> 26 | h.v[3] << 25,
                     h.v[3] >> 39 | h.v[4] << 12};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            s[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
}

static void fe_add(fe *h, const fe *f, const fe *g)
{
    for (int i = 0; i < 5; i++)
        h->v[i] = f->v[i] + g->v[i];
    fe_carry(h);
}

static void fe_sub(fe *h, const fe *f, const fe *g)
{
    /* + 2p, limb by limb, so no limb goes negative */
    static const uint64_t two_p[5] = {0xfffffffffffdaULL, 0xffffffffffffeULL, 0xffffffffffffeULL,
                                      0xffffffffffffeULL, 0xffffffffffffeULL};
    for (int i = 0; i < 5; i++)
        h->v[i] = f->v[i] + two_p[i] - g->v[i];
    fe_carry(h);
}

/* h = t reduced: limbs of 51 bits plus a small carry into h[1]. */
static void fe_reduce(fe *h, u128 t[5])
{
    for (int i = 0; i < 4; i++) {
        t[i + 1] += (uint64_t)(t[i] >> 51);
        h->v[i] = (uint64_t)t[i] & MASK51;
    }
    h->v[4] = (uint64_t)t[4] & MASK51;
    h->v[0] += 19 * (uint64_t)(t[4] >> 51);
    h->v[1] += h->v[0] >> 51;
    h->v[0] &= MASK51;
}

static void fe_mul(fe *h, const fe *f, const fe *g)
{
    const uint64_t *a = f->v, *b = g->v;
    uint64_t b19[5];
    for (int i = 0; i < 5; i++)
        b19[i] = 19 * b[i];
    u128 t[5];
    t[0] = (u128)a[0] * b[0] + (u128)a[1] * b19[4] + (u128)a[2] * b19[3] + (u128)a[3] * b19[2] + (u128)a[4] * b19[1];
    t[1] = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b19[4] + (u128)a[3] * b19[3] + (u128)a[4] * b19[2];
    t[2] = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] + (u128)a[3] * b19[4] + (u128)a[4] * b19[3];
    t[3] = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] + (u128)a[3] * b[0] + (u128)a[4] * b19[4];
    t[4] = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] + (u128)a[3] * b[1] + (u128)a[4] * b[0];
    fe_reduce(h, t);
}

static void fe_sq(fe *h, const fe *f)
{
    const uint64_t *a = f->v;
    uint64_t d0 = 2 * a[0], d1 = 2 * a[1], d3 = 2 * a[3], a3_19 = 19 * a[3], a4_19 = 19 * a[4];
    u128 t[5];
    t[0] = (u128)a[0] * a[0] + (u128)d1 * a4_19 + (u128)(2 * a[2]) * a3_19;
    t[1] = (u128)d0 * a[1] + (u128)(2 * a[2]) * a4_19 + (u128)a[3] * a3_19;
    t[2] = (u128)d0 * a[2] + (u128)a[1] * a[1] + (u128)d3 * a4_19;
    t[3] = (u128)d0 * a[3] + (u128)d1 * a[2] + (u128)a[4] * a4_19;
    t[4] = (u128)d0 * a[4] + (u128)d1 * a[3] + (u128)a[2] * a[2];
    fe_reduce(h, t);
}

static void fe_sqn(fe *h, const fe *f, int n)
{
    *h = *f;
    while (n-- > 0)
        fe_sq(h, h);
}

/* z^(2^250 - 1), the common head of inversion and the square root exponent (ref10's chain). */
static void fe_pow250(fe *out, fe *z11, const fe *z)
{
    fe z2, z9, t, z5_0, z10_0, z20_0, z50_0, z100_0;
    fe_sq(&z2, z);
    fe_sqn(&t, &z2, 2);
    fe_mul(&z9, &t, z);
    fe_mul(z11, &z9, &z2);
    fe_sq(&t, z11);
    fe_mul(&z5_0, &t, &z9);                 /* 2^5 - 1 */
    fe_sqn(&t, &z5_0, 5);
    fe_mul(&z10_0, &t, &z5_0);              /* 2^10 - 1 */
    fe_sqn(&t, &z10_0, 10);
    fe_mul(&z20_0, &t, &z10_0);
    fe_sqn(&t, &z20_0, 20);
    fe_mul(&t, &t, &z20_0);                 /* 2^40 - 1 */
    fe_sqn(&t, &t, 10);
    fe_mul(&z50_0, &t, &z10_0);
    fe_sqn(&t, &z50_0, 50);
    fe_mul(&z100_0, &t, &z50_0);
    fe_sqn(&t, &z100_0, 100);
    fe_mul(&t, &t, &z100_0);                /* 2^200 - 1 */
    fe_sqn(&t, &t, 50);
    fe_mul(out, &t, &z50_0);                /* 2^250 - 1 */
}

static void fe_invert(fe *out, const fe *z)           /* z^(p - 2) */
{
    fe t, z11;
    fe_pow250(&t, &z11, z);
    fe_sqn(&t, &t, 5);
    fe_mul(out, &t, &z11);
}

static void fe_pow22523(fe *out, const fe *z)         /* z^((p - 5) / 8) = z^(2^252 - 3) */
{
    fe t, z11;
    fe_pow250(&t, &z11, z);
    fe_sqn(&t, &t, 2);
    fe_mul(out, &t, z);
}

static int fe_equal(const fe *f, const fe *g)
{
    uint8_t a[32], b[32];
    fe_store(a, f);
    fe_store(b, g);
    return memcmp(a, b, 32) == 0;
}

/* The X25519 u of the points of order 1, 2, 4 and 8 (libsodium's x25519 blocklist, canonical):
 * no real node key maps there. */
static const uint8_t small_order[4][32] = {
    {0},
    {1},
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
     0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
     0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
};

int edcurve_pk(uint8_t curve[32], const uint8_t ed[32])
{
    uint8_t canon[32];
    fe y, yy, u, v, v3, x, vxx, t, neg_u;
    fe_load(&y, ed);
    fe_store(canon, &y);
    canon[31] |= ed[31] & 0x80;
    if (memcmp(canon, ed, 32) != 0)
        return -1;                          /* y >= p: not a canonical encoding */
    fe_sq(&yy, &y);
    fe_sub(&u, &yy, &FE_ONE);               /* u = y^2 - 1 */
    fe_mul(&v, &yy, &FE_D);
    fe_add(&v, &v, &FE_ONE);                /* v = d y^2 + 1 */
    fe_sq(&v3, &v);
    fe_mul(&v3, &v3, &v);                   /* v^3 */
    fe_sq(&x, &v3);
    fe_mul(&x, &x, &v);
    fe_mul(&x, &x, &u);                     /* u v^7 */
    fe_pow22523(&x, &x);
    fe_mul(&x, &x, &v3);
    fe_mul(&x, &x, &u);                     /* x = u v^3 (u v^7)^((p-5)/8) */
    fe_sq(&vxx, &x);
    fe_mul(&vxx, &vxx, &v);
    fe zero = {{0}};
    fe_sub(&neg_u, &zero, &u);
    if (!fe_equal(&vxx, &u)) {
        if (!fe_equal(&vxx, &neg_u))
            return -1;                      /* no x: not a point of the curve */
        fe_mul(&x, &x, &FE_SQRTM1);
    }
    uint8_t xb[32];
    fe_store(xb, &x);
    static const uint8_t zero32[32];
    if (!memcmp(xb, zero32, 32) && (ed[31] & 0x80))
        return -1;                          /* x = 0 has no negative form */
    fe_sub(&t, &FE_ONE, &y);
    fe_invert(&t, &t);                      /* 1 / (1 - y); 0 when y = 1 */
    fe_add(&u, &FE_ONE, &y);
    fe_mul(&u, &u, &t);
    uint8_t out[32];
    fe_store(out, &u);
    for (int i = 0; i < 4; i++)
        if (!memcmp(out, small_order[i], 32))
            return -1;
    memcpy(curve, out, 32);
    return 0;
}
