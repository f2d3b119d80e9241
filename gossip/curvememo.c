/* gossip/curvememo.c - a bounded, set-associative memo of edcurve_pk (see gossip/curvememo.h). */
#include "gossip/curvememo.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/edcurve.h"

typedef struct {
    uint8_t ed[32], curve[32];
} slot_t;

struct curvememo {
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    uint32_t clock;                                  /* use stamp; 0 = an empty way */
    uint32_t used[CURVEMEMO_SETS][CURVEMEMO_WAYS];
    slot_t slot[CURVEMEMO_SETS][CURVEMEMO_WAYS];
    uint64_t hits, misses;
};

curvememo_t *curvememo_new(void)
{
    curvememo_t *m = calloc(1, sizeof *m);
    if (m)
        crypto_shorthash_keygen(m->hkey);
    return m;
}

void curvememo_free(curvememo_t **m)
{
    if (*m) {
        free(*m);
        *m = NULL;
    }
}

/* The next use stamp; on wrapping, the stamps are restarted (order lost once per 2^32 uses). */
static uint32_t stamp(curvememo_t *m)
{
    if (++m->clock == 0) {
        for (size_t s = 0; s < CURVEMEMO_SETS; s++)
            for (size_t w = 0; w < CURVEMEMO_WAYS; w++)
                m->used[s][w] = m->used[s][w] != 0;
        m->clock = 2;
    }
    return m->clock;
}

int curvememo_pk(curvememo_t *m, uint8_t curve[32], const uint8_t ed[32])
{
    if (!m)
        return edcurve_pk(curve, ed);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, ed, 32, m->hkey);
    size_t s = ((size_t)h[0] | (size_t)h[1] << 8) % CURVEMEMO_SETS, victim = 0;
    for (size_t w = 0; w < CURVEMEMO_WAYS; w++) {
        if (m->used[s][w] && memcmp(m->slot[s][w].ed, ed, 32) == 0) {
            memcpy(curve, m->slot[s][w].curve, 32);
            m->used[s][w] = stamp(m);
            m->hits++;
            return 0;
        }
        if (m->used[s][w] < m->used[s][victim])
            victim = w;
    }
    m->misses++;
    uint8_t c[32];
    if (edcurve_pk(c, ed) != 0)
        return -1;
    memcpy(m->slot[s][victim].ed, ed, 32);
    memcpy(m->slot[s][victim].curve, c, 32);
    m->used[s][victim] = stamp(m);
    memcpy(curve, c, 32);
    return 0;
}

void curvememo_counts(const curvememo_t *m, uint64_t *hits, uint64_t *misses)
{
    *hits = m ? m->hits : 0;
    *misses = m ? m->misses : 0;
}
