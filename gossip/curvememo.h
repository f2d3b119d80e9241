/* gossip/curvememo.h - Ed25519 keys' CURVE forms (edcurve_pk), remembered in a bounded table.
 *
 * A member snapshot asks every member's certificate of the trust store by its CURVE key; the
 * conversion (one field inversion) was most of that snapshot's cost at 1,000 members
 * (bench/roster). The conversion is a pure function of the key, so a remembered result is never
 * stale: what a key may do (certified, revoked, rotated, expired) is asked of the trust store at
 * every use and never remembered here.
 * Owns: CURVEMEMO_SETS x CURVEMEMO_WAYS entries, set chosen by a keyed hash of the Ed25519 key
 * (keys chosen to collide only cost their own conversion again), least recently used replaced.
 * Keys edcurve_pk refuses are not remembered.
 * Must not: lock (one owner thread: the gossip loop), or answer anything edcurve_pk would not. */
#ifndef TRIB_CURVEMEMO_H
#define TRIB_CURVEMEMO_H

#include <stdint.h>

#define CURVEMEMO_SETS 512
#define CURVEMEMO_WAYS 8

typedef struct curvememo curvememo_t;

/* NULL when out of memory. */
curvememo_t *curvememo_new(void);
void curvememo_free(curvememo_t **m);

/* As edcurve_pk(curve, ed): 0, or -1 (curve untouched). m NULL: edcurve_pk itself. */
int curvememo_pk(curvememo_t *m, uint8_t curve[32], const uint8_t ed[32]);

/* Conversions done (misses) and answered from the table (hits), for tests and benchmarks. */
void curvememo_counts(const curvememo_t *m, uint64_t *hits, uint64_t *misses);

#endif
