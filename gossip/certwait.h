/* gossip/certwait.h - chartered: catalog entries met before their signer's certificate.
 *
 * Entries and certificates travel apart: entries by catalog pushes and answers, certificates by the
 * federation log and hellos. A node that joins, or comes back, may so meet a domain's entries a few
 * milliseconds before the certificate of the key that signed them. Refusing them then as uncertified
 * counted (and logged) a hostile event for every ordinary join, and left the entries to a later
 * round. So an entry of another domain signed by a key no certificate is held of is not refused at
 * once: its key is held here (never the entry: it is not stored), the federation log of the peer
 * that sent it is asked, and
 * - once a certificate of the key holds, that peer is asked for the domain again (its entries are
 *   then accepted as any others), nothing counted;
 * - when none came within CERTWAIT_MS (or the key is found revoked, expired ...), the entries met
 *   meanwhile are refused as they would have been, counted and logged, and the key's later entries
 *   are refused at once for CERTWAIT_FORGET_MS.
 * At most CERTWAIT_KEYS keys are held, at most CERTWAIT_PER_SENDER of them taken by one peer's
 * entries (a peer signing entries with fresh keys filled the table, and every honest key met
 * meanwhile was refused at once); a refused key's slot goes to a new key when no other is free
 * (its later entries are then held again, not refused at once). Past those an entry is refused at
 * once, as before.
 *
 * Owns: the held keys (a mutex: held from the thread that verifies entries, judged on the loop).
 * Must not: store or keep entries, judge trust itself (io.judge), or send anything (io). */
#ifndef TRIB_CERTWAIT_H
#define TRIB_CERTWAIT_H

#include <stddef.h>
#include <stdint.h>
#include "gossip/charter.h"

#define CERTWAIT_KEYS 64           /* keys held at once */
#define CERTWAIT_PER_SENDER 8      /* ... whose first entry came from one peer */
#define CERTWAIT_MS 10000          /* how long a key's certificate is waited for */
#define CERTWAIT_FORGET_MS 60000   /* a key refused so: its later entries are refused at once this long */
#define CERTWAIT_STEP_MS 20        /* how often the held keys are judged while any are held */

typedef struct certwait certwait_t;

typedef struct {
    void *ctx;
    /* The verdict on an entry of domain signed by key now (TRUST_OK once a certificate holds). */
    trust_verdict_t (*judge)(void *ctx, const char *domain, const uint8_t key[32], char *why, size_t cap);
    /* Ask addr's federation log for what we lack (a key's certificate is on its way from there). */
    void (*sync)(void *ctx, const char *addr);
    /* The key's certificate holds now: ask addr for the domain's entries we lack. */
    void (*ask)(void *ctx, const char *addr, const char *domain);
    /* n entries of domain signed by key are refused after all (verdict v, why). */
    void (*refuse)(void *ctx, trust_verdict_t v, uint64_t n, const char *domain, const uint8_t key[32],
                   const char *why);
} certwait_io_t;

typedef struct {
    uint64_t held_keys, held_entries;   /* now */
    uint64_t certified;                 /* keys whose certificate came while held */
    uint64_t refused;                   /* keys refused after their wait (or found revoked, expired ...) */
    uint64_t full;                      /* entries refused at once: no room to hold their key */
    uint64_t per_sender;                /* ... their sender holds CERTWAIT_PER_SENDER keys already */
} certwait_stats_t;

/* NULL when out of memory. */
certwait_t *certwait_new(void);
/* Accepts NULL; nulls *cp. */
void certwait_free(certwait_t **cp);
/* Any thread. An entry of domain signed by key (no certificate held of it) came from addr at now
 * (monotonic ms): 1 when held (not refused yet: nothing to count now), 0 when it is to be refused
 * now (its key was refused after a wait within CERTWAIT_FORGET_MS, no room, or addr's entries hold
 * CERTWAIT_PER_SENDER keys already). */
int certwait_hold(certwait_t *c, const uint8_t key[32], const char *domain, const char *addr, uint64_t now);
/* Loop thread: judges the held keys (at most every CERTWAIT_STEP_MS) and acts through io. */
void certwait_step(certwait_t *c, const certwait_io_t *io, uint64_t now);
/* When certwait_step has work next (monotonic ms); UINT64_MAX when nothing is held. */
uint64_t certwait_deadline(certwait_t *c);
void certwait_stats(certwait_t *c, certwait_stats_t *out);

#endif
