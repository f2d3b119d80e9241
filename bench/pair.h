/* bench/pair.h - the two real `trib agent`s on loopback that bench/data.c and bench/linkmem.c read
 * through: A owns domain "owner", B "relay" seeded with A (peer ports BASE and BASE+1, HTTP
 * BASE+50 and BASE+51, data in TMP/owner and TMP/relay); their logs drained on a thread (echoed to
 * stderr when the bench's debug variable is set); and the HTTP helpers both use: a response body,
 * the owner's admin token, a node's URL, one request.
 *
 * Header-only (`static inline`) like bench/bench.h: each bench/NAME.c is its own program.
 * Must not: publish products, measure anything, or print to stdout. */
#ifndef TRIB_BENCH_PAIR_H
#define TRIB_BENCH_PAIR_H

#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include "bench/bench.h"

static bench_proc_t pair_procs[2];    /* A, B */
static const char *pair_tmp, *pair_debug_env;
static int pair_base_port;
static pthread_t pair_drain_thread;
static volatile int pair_drain_stop;

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    char *buf;
    size_t len, cap;
    size_t lines;          /* '\n' seen */
    int keep;              /* store the body, not just count it */
    uint64_t first_ns;     /* bench_now_ns() when the first body byte came (0: none yet) */
} pair_body_t;

static inline size_t pair_body_cb(char *p, size_t sz, size_t nm, void *ud)
{
    pair_body_t *b = ud;
    size_t n = sz * nm;
    if (!b->first_ns && n)
        b->first_ns = bench_now_ns();
    for (const char *q = p, *end = p + n; (q = memchr(q, '\n', (size_t)(end - q))); q++)
        b->lines++;
    if (b->keep) {
        if (b->len + n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 4096;
            while (cap < b->len + n + 1)
                cap *= 2;
            char *nb = realloc(b->buf, cap);
            if (!nb)
                return 0;
            b->buf = nb, b->cap = cap;
        }
        memcpy(b->buf + b->len, p, n);
        b->len += n;
        b->buf[b->len] = '\0';
    } else {
        b->len += n;
    }
    return n;
}

/* The owner's admin token: writes need it, and it reads the owner's internal products through
 * either node (issue 11). */
static inline const char *pair_owner_tok(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/owner", pair_tmp);
    return bench_token(dir);
}

/* The URL of path on node 0 (A) or 1 (B), in out. */
static inline char *pair_url(char *out, size_t cap, int node, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", pair_base_port + 50 + node, path);
    return out;
}

/* One request on handle h (reused: keep-alive), with the owner's token. Returns the HTTP status,
 * 0 on transport error; the body in out when given. */
static inline long pair_http(CURL *h, const char *method, const char *url, const char *body, size_t len,
                             pair_body_t *out)
{
    pair_body_t dummy = {0};
    if (!out)
        out = &dummy;
    curl_easy_setopt(h, CURLOPT_URL, url);
    BENCH_BEARER(h, pair_owner_tok());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, pair_body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    free(dummy.buf);
    return status;
}

/* ------------------------------------------------------------------ agents */

static inline void pair_drain_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t)
{
    (void)ctx, (void)t;
    if (getenv(pair_debug_env))
        fprintf(stderr, "[%s] %s\n", p->tag ? "B" : "A", line);
}

static inline void *pair_drain_main(void *arg)
{
    (void)arg;
    while (!pair_drain_stop) {
        struct pollfd pf[2];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (pair_procs[i].fd >= 0)
                pf[n++] = (struct pollfd){.fd = pair_procs[i].fd, .events = POLLIN};
        poll(pf, (nfds_t)n, 100);
        for (int i = 0; i < 2; i++)
            bench_proc_read(&pair_procs[i], pair_drain_line, NULL, 0);
    }
    return NULL;
}

/* Starts A and B (trib_bin, data under tmp, ports from base_port), drains their logs (echoed when
 * the environment variable debug_env is set) and waits until B lists A alive; dies after 30 s. */
static inline void pair_start(const char *trib_bin, const char *tmp, int base_port, const char *debug_env)
{
    pair_tmp = tmp, pair_base_port = base_port, pair_debug_env = debug_env;
    char data[2][300], peer[2][32], httpa[2][32], seed[32];
    const char *dom[2] = {"owner", "relay"};
    snprintf(seed, sizeof seed, "127.0.0.1:%d", base_port);
    for (int i = 0; i < 2; i++) {
        snprintf(data[i], sizeof data[i], "%s/%s", tmp, dom[i]);
        snprintf(peer[i], sizeof peer[i], "127.0.0.1:%d", base_port + i);
        snprintf(httpa[i], sizeof httpa[i], "127.0.0.1:%d", base_port + 50 + i);
        char *argv[] = {(char *)trib_bin, "agent", "--data", data[i], "--domain", (char *)dom[i],
                        "--listen", peer[i], "--http", httpa[i], i ? "--seed" : NULL, seed, NULL};
        if (bench_spawn(&pair_procs[i], argv, i) < 0)
            bench_die("cannot start trib agent: %s", strerror(errno));
    }
    pthread_create(&pair_drain_thread, NULL, pair_drain_main, NULL);
    CURL *h = curl_easy_init();
    char url[128];
    uint64_t end = bench_now_ns() + 30000000000u;
    for (;;) {
        bench_check_interrupt();
        pair_body_t b = {.keep = 1};
        long st = pair_http(h, "GET", pair_url(url, sizeof url, 1, "/v1/members"), NULL, 0, &b);
        int ok = st == 200 && b.buf && strstr(b.buf, "\"domain\":\"owner\"") && strstr(b.buf, "alive");
        free(b.buf);
        if (ok)
            break;
        if (bench_now_ns() > end)
            bench_die("agents did not form a federation within 30 s (ports %d..)", base_port);
        bench_sleep_ms(20);
    }
    curl_easy_cleanup(h);
}

/* Waits until B answers 200 for path (A's product, before routed reads of it are asked of B), on
 * handle h; dies after 30 s. */
static inline void pair_wait_relay_knows(CURL *h, const char *path)
{
    char url[128];
    uint64_t end = bench_now_ns() + 30000000000u;
    for (;;) {
        bench_check_interrupt();
        if (pair_http(h, "GET", pair_url(url, sizeof url, 1, path), NULL, 0, NULL) == 200)
            break;
        if (bench_now_ns() > end)
            bench_die("B did not receive A's catalog within 30 s");
        bench_sleep_ms(20);
    }
}

/* Stops the drain thread, then A and B (SIGTERM, 3 s grace). */
static inline void pair_stop(void)
{
    pair_drain_stop = 1;
    pthread_join(pair_drain_thread, NULL);
    bench_stop_all(pair_procs, 2, SIGTERM, 3000);
}

#endif
