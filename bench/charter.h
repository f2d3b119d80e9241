/* bench/charter.h - a chartered federation for a bench: two roots (threshold 2) made in memory, the
 * charter written as DIR/charter.json, and certificates for node keys written as files.
 *
 * Owns: the roots' secret keys while the bench runs (wiped by bench_charter_free).
 * Used by: bench/fed.c (issue 10's comparison), bench/soak.c (SOAK_CHARTERED=1). */
#ifndef BENCH_CHARTER_H
#define BENCH_CHARTER_H

#include <sodium.h>
#include <string.h>
#include <time.h>
#include "bench/bench.h"
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/identity.h"

typedef struct {
    identity_t roots[2];
    charter_t ch;
} bench_charter_t;

static inline int64_t bench_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Makes the roots and a charter they sign, written as dir/charter.json (dies on failure). */
static inline void bench_charter_make(bench_charter_t *b, const char *dir)
{
    char err[512], path[400];
    memset(b, 0, sizeof *b);
    crypto_sign_keypair(b->roots[0].pk, b->roots[0].sk);
    crypto_sign_keypair(b->roots[1].pk, b->roots[1].sk);
    const identity_t *roots[] = {&b->roots[0], &b->roots[1]};
    randombytes_buf(b->ch.fed_id, FED_ID_LEN);
    memcpy(b->ch.keys[0].key, b->roots[0].pk, 32);
    memcpy(b->ch.keys[1].key, b->roots[1].pk, 32);
    b->ch.keys[0].role = b->ch.keys[1].role = CHARTER_ROLE_ROOT;
    b->ch.nkeys = 2;
    b->ch.threshold = 2;
    b->ch.issued_ms = bench_wall_ms();
    if (charter_sign(NULL, &b->ch, roots, 2, err, sizeof err) != 0)
        bench_die("charter: %s", err);
    snprintf(path, sizeof path, "%s/charter.json", dir);
    json_t *j = charter_to_json(&b->ch);
    if (trust_file_write(path, j, err, sizeof err) != 0)
        bench_die("%s", err);
    json_decref(j);
}

/* Certifies key for domain, valid from an hour ago for 90 days, continuing prev_serial (0: none).
 * The caller frees *out with cert_free. */
static inline void bench_charter_certify(const bench_charter_t *b, const char *domain, const uint8_t key[32],
                                         uint64_t prev_serial, cert_t *out)
{
    char err[512];
    const identity_t *roots[] = {&b->roots[0], &b->roots[1]};
    int64_t now = bench_wall_ms();
    if (cert_issue(&b->ch, domain, key, now - 3600000, now + 90LL * 86400000, prev_serial, roots, 2, out, err,
                   sizeof err) != 0)
        bench_die("certify %s: %s", domain, err);
}

/* Writes a certificate as a trust object file at path (dies on failure). */
static inline void bench_cert_write(const cert_t *c, const char *path)
{
    char err[512];
    json_t *j = cert_to_json(c);
    if (trust_file_write(path, j, err, sizeof err) != 0)
        bench_die("%s", err);
    json_decref(j);
}

/* Creates the identity of a node's data dir (made here, mode 0700) and writes its certificate for
 * domain at cert_path; hex gets its node id when not NULL. */
static inline void bench_charter_node(const bench_charter_t *b, const char *data_dir, const char *domain,
                                      const char *cert_path, char hex[ID_HEX_LEN])
{
    identity_t id;
    int created;
    char err[512];
    if (mkdir(data_dir, 0700) < 0 || identity_load_or_create(data_dir, &id, &created, err, sizeof err) != 0)
        bench_die("identity %s: %s", data_dir, err);
    if (hex)
        memcpy(hex, id.hex, ID_HEX_LEN);
    cert_t cert;
    bench_charter_certify(b, domain, id.pk, 0, &cert);
    bench_cert_write(&cert, cert_path);
    cert_free(&cert);
    sodium_memzero(&id, sizeof id);
}

static inline void bench_charter_free(bench_charter_t *b)
{
    charter_free(&b->ch);
    sodium_memzero(b->roots, sizeof b->roots);
}

#endif
