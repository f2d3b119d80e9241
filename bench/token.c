/* bench/token.c - what a token verification costs (issue 11: "token verifications per second per
 * core >= 0.8 x the Ed25519 verify limit").
 *
 * Owns: timing, in this thread's CPU time (the machine is shared, wall time would measure the
 * neighbours), N bare Ed25519 verifies of a token-sized message beside N token_verify calls of
 * tokens of 1, 2 and 8 blocks, and printing rates and ratios. Figures are printed, never asserted.
 * Must not: start processes or touch the disk. Usage: bench/token [N] (default 5000). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/token.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const uint8_t *issuer_pk;

static int lookup(void *ctx, const char *domain, const uint8_t key[32], int64_t t)
{
    (void)ctx, (void)domain, (void)t;
    return memcmp(key, issuer_pk, 32) == 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    if (n <= 0 || sodium_init() < 0)
        return 2;
    identity_t id;
    memset(&id, 0, sizeof id);
    crypto_sign_keypair(id.pk, id.sk);
    issuer_pk = id.pk;
    int64_t now = now_ms();

    uint8_t msg[300], sig[64];
    randombytes_buf(msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, id.sk);
    double t0 = cpu_s();
    for (int i = 0; i < n; i++)
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, id.pk) != 0)
            return 1;
    double ed = n / (cpu_s() - t0);
    printf("== Tokens (issue 11): bench/token, %d each, thread CPU time ==\n", n);
    printf("  Ed25519 verify (300 bytes)       %9.0f /s\n", ed);

    char err[256], *tok = NULL;
    token_spec_t s = { "ci@payments", TOKEN_KIND_WRITE, "payments/*", now, now + 3600000 };
    if (token_issue(&id, "payments", &s, &tok, err, sizeof err) != 0)
        return fprintf(stderr, "%s\n", err), 1;
    for (int blocks = 1; blocks <= TOKEN_MAX_BLOCKS; blocks++) {
        if (blocks == 1 || blocks == 2 || blocks == TOKEN_MAX_BLOCKS) {
            token_claims_t c;
            size_t len = strlen(tok);
            t0 = cpu_s();
            for (int i = 0; i < n; i++)
                if (token_verify(tok, len, now, lookup, NULL, &c, NULL, 0) != TOKEN_OK)
                    return fprintf(stderr, "token refused\n"), 1;
            double tv = n / (cpu_s() - t0);
            printf("  token_verify, %d block%s (%4zu ch) %9.0f /s  = %.2f x Ed25519 verify\n", blocks,
                   blocks == 1 ? " " : "s", len, tv, tv / ed);
        }
        token_narrow_t nw = { 0, NULL, now + 3600000 - blocks * 1000 };
        char *next = NULL;
        if (blocks < TOKEN_MAX_BLOCKS && token_attenuate(tok, &nw, now, &next, err, sizeof err) != 0)
            return fprintf(stderr, "%s\n", err), 1;
        free(tok);
        tok = next;
    }
    free(tok);
    printf("  (a k-block token costs k Ed25519 verifies and one hash for the proof; a node\n"
           "   caches a verified token by its hash until it expires)\n");
    return 0;
}
