/* bench/token.c - what a token verification costs (issue 11: "token verifications per second per
 * core >= 0.8 x the Ed25519 verify limit"; "a token-checked routed read of 1 record beside an
 * unchecked one: target <= 1.1x").
 *
 * Owns: timing, in this thread's CPU time (the machine is shared, wall time would measure the
 * neighbours), N bare Ed25519 verifies of a token-sized message beside N token_verify calls of
 * tokens of 1, 2 and 8 blocks, and printing rates and ratios. Figures are printed, never asserted.
 * With TRIB (the binary) it also starts two agents (owner, relay) and times reads of 1 record
 * through the relay, interleaved: a public product (no token checked) beside an internal one (the
 * relay forwards the token, the owner verifies it: cached by hash after the first), medians.
 * Usage: bench/token [N [TRIB]] (default 5000, no agents). */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
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

/* ------------------------------------------------------------------ routed reads, with agents */

static size_t sink(char *p, size_t sz, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return sz * n;
}

/* One request; status (0: transport). tok NULL: none. */
static long req(CURL *h, const char *method, const char *url, const char *ctype, const char *body, const char *tok)
{
    struct curl_slist *hd = NULL;
    char line[128];
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, line);
    }
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, body ? (long)strlen(body) : 0L);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, tok ? CURLAUTH_BEARER : CURLAUTH_NONE);
    curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, tok);
    long st = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hd);
    return st;
}

static void routed(const char *trib, int rounds)
{
    const char *tmp = bench_init("trib-token");
    int lock_fd = -1, base = bench_reserve_ports(&lock_fd);
    if (base < 0)
        bench_die("no free block of ports");
    bench_proc_t procs[2];
    const char *dom[2] = {"payments", "growth"};
    char data[2][300], peer[2][32], http[2][32], seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", base);
    for (int i = 0; i < 2; i++) {
        snprintf(data[i], sizeof data[i], "%s/%s", tmp, dom[i]);
        snprintf(peer[i], sizeof peer[i], "127.0.0.1:%d", base + i);
        snprintf(http[i], sizeof http[i], "127.0.0.1:%d", base + 50 + i);
        char *argv[] = {(char *)trib, "agent", "--data", data[i], "--domain", (char *)dom[i], "--listen", peer[i],
                        "--http", http[i], "--log-level", "warn", i ? "--seed" : NULL, seed, NULL};
        if (bench_spawn(&procs[i], argv, i) < 0)
            bench_die("cannot start trib agent");
    }
    CURL *h = curl_easy_init();
    char url[256];
    uint64_t end = bench_now_ns() + 30000000000u;
    const char *tok[2] = {"", ""};
    for (int i = 0; i < 2; i++)
        while (!*(tok[i] = bench_token(data[i]))) {
            if (bench_now_ns() > end)
                bench_die("agent %s wrote no admin.token", dom[i]);
            bench_sleep_ms(20);
        }
    const char *cls[2] = {"public", "internal"};
    for (int k = 0; k < 2; k++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
                 "\"title\":\"token bench\",\"description\":\"x\",\"owners\":{\"business\":\"b@x.com\","
                 "\"technical\":\"b@x.com\"},\"classification\":\"%s\",\"schema\":[{\"name\":\"n\","
                 "\"logicalType\":\"integer\",\"required\":true}]}",
                 cls[k], cls[k]);
        snprintf(url, sizeof url, "http://%s/v1/products/payments/%s", http[0], cls[k]);
        while (req(h, "PUT", url, "application/json", body, tok[0]) / 100 != 2) {
            if (bench_now_ns() > end)
                bench_die("cannot publish payments/%s", cls[k]);
            bench_sleep_ms(50);
        }
        snprintf(url, sizeof url, "http://%s/v1/products/payments/%s/records", http[0], cls[k]);
        if (req(h, "POST", url, "application/x-ndjson", "{\"n\":1}\n", tok[0]) != 201)
            bench_die("cannot append to payments/%s", cls[k]);
    }
    /* the relay reads both (its own token for the internal one) once they are known there */
    for (int k = 0; k < 2; k++) {
        snprintf(url, sizeof url, "http://%s/v1/products/payments/%s/records?limit=1", http[1], cls[k]);
        while (req(h, "GET", url, NULL, NULL, k ? tok[1] : NULL) != 200) {
            if (bench_now_ns() > end)
                bench_die("the relay does not read payments/%s", cls[k]);
            bench_sleep_ms(50);
        }
    }
    double *t[2] = {calloc((size_t)rounds, sizeof(double)), calloc((size_t)rounds, sizeof(double))};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            snprintf(url, sizeof url, "http://%s/v1/products/payments/%s/records?limit=1", http[1], cls[k]);
            uint64_t t0 = bench_now_ns();
            if (req(h, "GET", url, NULL, NULL, k ? tok[1] : NULL) != 200)
                bench_die("read of payments/%s failed", cls[k]);
            t[k][r] = bench_ms(bench_now_ns() - t0);
        }
    double open = bench_pct(t[0], (size_t)rounds, 50), checked = bench_pct(t[1], (size_t)rounds, 50);
    printf("  routed read of 1 record through a relay, %d each, interleaved, wall time medians:\n", rounds);
    printf("    public (no token)              %7.3f ms (p90 %.3f)\n", open, bench_pct(t[0], (size_t)rounds, 90));
    printf("    internal (token, owner checks) %7.3f ms (p90 %.3f)  = %.2f x unchecked (target <= 1.1)\n", checked,
           bench_pct(t[1], (size_t)rounds, 90), checked / open);
    free(t[0]), free(t[1]);
    curl_easy_cleanup(h);
    bench_stop_all(procs, 2, SIGTERM, 5000);
    close(lock_fd);
    bench_cleanup();
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
    if (argc > 2) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        routed(argv[2], argc > 3 ? atoi(argv[3]) : 300);
        curl_global_cleanup();
    }
    return 0;
}
