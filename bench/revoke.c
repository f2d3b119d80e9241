/* bench/revoke.c - revocation reach (issue 10, first benchmark): N real chartered nodes on
 * loopback; a revocation submitted to node 0 (POST /v1/federation/objects) is timed until every
 * node has verified and stored it.
 *
 * Usage: revoke TRIB_BINARY [N [ROUNDS]]     (defaults 20 and 20)
 *
 * Owns: a charter of 3 roots (threshold 2) made in memory and written as charter.json, starting
 * N agents with --charter (node 0 is every other's seed), reading every agent's log pipe, and the
 * report. Method: the agents log at info "fedlog: accepted revocation HASH16 from ..." once the
 * revocation is verified against the charter and stored in LMDB; the clock (CLOCK_MONOTONIC, this
 * process) starts just before the HTTP request is written and each node's arrival is the moment
 * its line is read from its pipe. Per round: reach-all = the last node's arrival. The same is also
 * given by the agents' own log times (ms, wall clock, against the wall clock at the submit): on a
 * loaded machine this process reads its 20 pipes late, and that lateness is not the nodes'. Each round
 * revokes a new random key (a new object), one round at a time.
 * Must not: leave a process or a temp dir behind (bench.h's atexit and signal handlers). */
#include <curl/curl.h>
#include <poll.h>
#include <sodium.h>
#include "bench/bench.h"
#include "gossip/cert.h"
#include "gossip/charter.h"

#define MAXN 48
#define JOIN_TIMEOUT_S 90
#define ROUND_TIMEOUT_S 10

static bench_proc_t procs[MAXN];
static int n;
static int alive_seen[MAXN];
static char want[40];                /* "accepted revocation HASH16" of the round */
static uint64_t arrive[MAXN], t0;
static int64_t logged[MAXN], t0_wall;  /* the agents' own log time of the line, and of the submit (ms) */

/* The wall-clock ms of an agent log line ("2026-12-05T08:49:05.903Z ..."), 0 when it has none. */
static int64_t line_ms(const char *line)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static FILE *trace[MAXN];            /* REVOKE_TRACE=DIR: every agent line with its arrival time */

static void on_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t_ns)
{
    (void)ctx;
    if (trace[p->tag])
        fprintf(trace[p->tag], "%.3f %s\n", bench_ms(t_ns), line);
    if (strstr(line, "Assertion failed") || strstr(line, "Aborted"))
        bench_die("agent %d: %s", p->tag, line);
    if (strstr(line, "-> alive"))
        alive_seen[p->tag]++;
    if (want[0] && !arrive[p->tag] && strstr(line, want)) {
        arrive[p->tag] = t_ns;
        logged[p->tag] = line_ms(line);
    }
}

static void pump(int ms)
{
    struct pollfd fds[MAXN];
    for (int i = 0; i < n; i++)
        fds[i] = (struct pollfd){.fd = procs[i].fd, .events = POLLIN};
    poll(fds, (nfds_t)n, ms);
    uint64_t now = bench_now_ns();
    for (int i = 0; i < n; i++)
        if (bench_proc_read(&procs[i], on_line, NULL, now) < 0)
            bench_die("agent %d exited", i);
    bench_check_interrupt();
}

static size_t discard(char *p, size_t s, size_t k, void *u)
{
    (void)p, (void)u;
    return s * k;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: revoke TRIB_BINARY [N [ROUNDS]]");
    const char *trib = argv[1];
    n = argc > 2 ? atoi(argv[2]) : 20;
    int rounds = argc > 3 ? atoi(argv[3]) : 20;
    if (n < 2 || n > MAXN || rounds < 1 || sodium_init() < 0)
        bench_die("N must be 2..%d, ROUNDS >= 1", MAXN);
    const char *tmp = bench_init("tribbench-revoke");
    int lock_fd;
    int base = bench_reserve_ports(&lock_fd);
    if (base < 0)
        bench_die("no free block of ports");

    identity_t roots[3];
    const identity_t *rp[3];
    charter_t ch;
    char err[600];
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    for (int i = 0; i < 3; i++) {
        memset(&roots[i], 0, sizeof roots[i]);
        crypto_sign_keypair(roots[i].pk, roots[i].sk);
        memcpy(ch.keys[i].key, roots[i].pk, ID_PK_LEN);
        ch.keys[i].role = CHARTER_ROLE_ROOT;
        rp[i] = &roots[i];
    }
    ch.nkeys = 3;
    ch.threshold = 2;
    ch.issued_ms = (int64_t)time(NULL) * 1000;
    if (charter_sign(NULL, &ch, rp, 2, err, sizeof err) != 0)
        bench_die("charter: %s", err);
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s/charter.json", tmp);
    json_t *cj = charter_to_json(&ch);
    if (!cj || trust_file_write(cpath, cj, err, sizeof err) != 0)
        bench_die("charter: %s", err);
    json_decref(cj);

    char seed[200];
    for (int i = 0; i < n; i++) {     /* every node's identity and certificate, before any clock starts */
        char data[600], dom[32];
        identity_t id;
        int created;
        cert_t cert;
        snprintf(data, sizeof data, "%s/n%d", tmp, i);
        snprintf(dom, sizeof dom, "d%d", i);
        if (mkdir(data, 0700) < 0 || identity_load_or_create(data, &id, &created, err, sizeof err) != 0)
            bench_die("identity %s: %s", data, err);
        if (i == 0)
            snprintf(seed, sizeof seed, "%s@127.0.0.1:%d", id.hex, base);
        if (cert_issue(&ch, dom, id.pk, ch.issued_ms - 3600000, ch.issued_ms + 90LL * 86400000, 0, rp, 2, &cert,
                       err, sizeof err) != 0)
            bench_die("certify %s: %s", dom, err);
        snprintf(data, sizeof data, "%s/n%d.cert", tmp, i);
        json_t *j = cert_to_json(&cert);
        if (!j || trust_file_write(data, j, err, sizeof err) != 0)
            bench_die("certificate %s: %s", data, err);
        json_decref(j);
        cert_free(&cert);
        sodium_memzero(&id, sizeof id);
    }
    for (int i = 0; i < n && getenv("REVOKE_TRACE"); i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/n%d.log", getenv("REVOKE_TRACE"), i);
        if (!(trace[i] = fopen(path, "w")))
            bench_die("REVOKE_TRACE: %s: %s", path, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        char data[600], cfile[600], dom[32], listen[64], http[64];
        snprintf(data, sizeof data, "%s/n%d", tmp, i);
        snprintf(cfile, sizeof cfile, "%s/n%d.cert", tmp, i);
        snprintf(dom, sizeof dom, "d%d", i);
        snprintf(listen, sizeof listen, "127.0.0.1:%d", base + i);
        snprintf(http, sizeof http, "127.0.0.1:%d", base + 50 + i);
        char *av[] = {(char *)trib, "agent", "--data", data, "--domain", dom, "--charter", cpath, "--cert", cfile,
                      "--listen", listen, "--http", http, "--log-level", getenv("REVOKE_LOG") ? getenv("REVOKE_LOG") : "info",
                      i ? "--seed" : NULL, seed, NULL};
        if (bench_spawn(&procs[i], av, i) != 0)
            bench_die("cannot start agent %d", i);
        if (i == 0)
            bench_sleep_ms(300);
    }
    uint64_t end = bench_now_ns() + (uint64_t)JOIN_TIMEOUT_S * 1000000000u;
    for (;;) {
        int ok = 1;
        for (int i = 0; i < n; i++)
            ok &= alive_seen[i] >= n - 1;
        if (ok)
            break;
        if (bench_now_ns() > end)
            bench_die("the %d nodes did not all see each other alive in %d s", n, JOIN_TIMEOUT_S);
        pump(100);
    }
    fprintf(stderr, "revoke: %d nodes joined\n", n);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/federation/objects", base + 50);
    double *reach = calloc((size_t)rounds, sizeof *reach), *reach_log = calloc((size_t)rounds, sizeof *reach_log), *each = calloc((size_t)rounds * (size_t)n, sizeof *each);
    size_t neach = 0;
    int done = 0;
    for (int r = 0; r < rounds; r++) {
        identity_t victim;
        crypto_sign_keypair(victim.pk, victim.sk);
        revocation_t rv;
        if (revocation_issue(&ch, 1, 0, victim.pk, (int64_t)time(NULL) * 1000, "bench", rp, 2, &rv, err,
                             sizeof err) != 0)
            bench_die("revocation: %s", err);
        json_t *j = revocation_to_json(&rv);
        char *body = json_dumps(j, JSON_COMPACT);
        char hex[2 * TRUST_HASH_LEN + 1];
        trust_hex(rv.hash, TRUST_HASH_LEN, hex);
        snprintf(want, sizeof want, "accepted revocation %.16s", hex);
        memset(arrive, 0, sizeof arrive);
        memset(logged, 0, sizeof logged);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        t0 = bench_now_ns();
        t0_wall = wall_ms();
        for (int i = 0; i < n; i++)
            if (trace[i])
                fprintf(trace[i], "%.3f ROUND %d %s wall %lld\n", bench_ms(t0), r, want, (long long)time(NULL));
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 201)
            bench_die("round %d: POST answered %ld (%s)", r, status, curl_easy_strerror(cc));
        end = bench_now_ns() + (uint64_t)ROUND_TIMEOUT_S * 1000000000u;
        for (;;) {
            int got = 0;
            for (int i = 0; i < n; i++)
                got += arrive[i] != 0;
            if (got == n || bench_now_ns() > end)
                break;
            pump(20);
        }
        uint64_t last = 0;
        int64_t last_log = 0;
        int missing = 0;
        for (int i = 0; i < n; i++) {
            if (!arrive[i]) {
                missing++;
                continue;
            }
            if (arrive[i] > last)
                last = arrive[i];
            if (logged[i] - t0_wall > last_log)
                last_log = logged[i] - t0_wall;
            if (i)
                each[neach++] = bench_ms(arrive[i] - t0);
        }
        if (missing)
            fprintf(stderr, "revoke: round %d: %d node(s) had not logged it after %d s\n", r, missing, ROUND_TIMEOUT_S);
        else
            reach_log[done] = (double)last_log, reach[done++] = bench_ms(last - t0);
        free(body);
        json_decref(j);
        revocation_free(&rv);
        pump(50);
    }
    curl_easy_cleanup(c);
    printf("== Revocation reach (issue 10): %d chartered nodes on loopback, %d revocations submitted to node 0 ==\n",
           n, rounds);
    printf("  reach all %d nodes: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms (%d of %d rounds complete; target p99 <= 1000 ms)\n",
           n, bench_pct(reach, (size_t)done, 50), bench_pct(reach, (size_t)done, 90), bench_pct(reach, (size_t)done, 99),
           done, rounds);
    printf("  the same by the agents' own log times (ms, CLOCK_REALTIME; this process's pipe reading left out): "
           "p50 %.0f ms, p90 %.0f ms, p99 %.0f ms\n", bench_pct(reach_log, (size_t)done, 50),
           bench_pct(reach_log, (size_t)done, 90), bench_pct(reach_log, (size_t)done, 99));
    printf("  per node (arrival after submit): p50 %.1f ms, p99 %.1f ms over %zu arrivals\n",
           bench_pct(each, neach, 50), bench_pct(each, neach, 99), neach);
    printf("  method: POST on node 0 -> each agent's log line 'fedlog: accepted revocation H' (verified, stored),"
           " read from its pipe; CLOCK_MONOTONIC in this process\n");
    bench_stop_all(procs, n, SIGTERM, 5000);
    for (int i = 0; i < n; i++)
        if (trace[i])
            fclose(trace[i]);
    free(reach);
    free(reach_log);
    free(each);
    charter_free(&ch);
    return done == rounds ? 0 : 1;
}
