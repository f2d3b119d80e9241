/* bench/publish.c - publish throughput of one node (issue 9 item 4): 16 concurrent HTTP clients.
 *
 * Usage: publish TRIB_BINARY      (env PUB_CLIENTS 16, PUB_EACH 125, PUB_PEERS 10, PUB_DEBUG=1,
 *                                 PUB_DATA_DIR: where the agents' data dirs go, default the temp dir)
 *
 * Owns: starting one real `trib agent` (n0, --log-level debug) and, for the second run, PUB_PEERS
 * more agents seeded with it; PUB_CLIENTS threads, each with its own keep-alive libcurl handle,
 * that PUT PUB_EACH distinct new manifests (n0/cT-rR-pK) one after the other, each answered only
 * once its catalog entry is durably committed; the report on stdout.
 * Measured per run (alone, then with the peers receiving): publishes/s = all PUTs / wall time
 * from releasing the clients to the last answer; PUT latency p50/p99; commits per publish =
 * n0's "catalog: committed N entries" log lines (one per durable write transaction of the group
 * commit, gossip/catalog.c) / publishes; with peers, how long after the last answer every peer's
 * /metrics shows all of n0's products (trib_catalog_products); CPU seconds n0 and the peers used
 * meanwhile (/proc/PID/stat).
 * Must not: leave a process or a temp dir behind (bench.h's atexit and signal handlers). */
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include "bench/bench.h"

#define MAXPEERS 32
#define MAXCLIENTS 64
#define READY_TIMEOUT_S 60
#define SPREAD_TIMEOUT_S 60

static const char *trib_bin;
static int nclients = 16, each = 125, npeers = 10, debug;

typedef struct {
    int base, lock_fd, n;              /* peer ports base+i, HTTP ports base+50+i */
    char dir[200];
    bench_proc_t procs[MAXPEERS + 1];
    int ready[MAXPEERS + 1];
    int alive_at0[MAXPEERS + 1];       /* n0's log showed nK alive */
    uint64_t commits, committed;       /* n0: commit lines, entries they name */
} fed_t;

static fed_t fed;

/* ------------------------------------------------------------------ logs */

static void on_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t)
{
    (void)ctx, (void)t;
    if (debug)
        fprintf(stderr, "[n%d] %s\n", p->tag, line);
    if (strstr(line, "gossip on "))
        fed.ready[p->tag] = 1;
    if (p->tag != 0)
        return;
    const char *c = strstr(line, "catalog: committed ");
    if (c) {
        fed.commits++;
        fed.committed += strtoull(c + 19, NULL, 10);
        return;
    }
    const char *m = strstr(line, " member n");
    if (m && strstr(line, "-> alive")) {
        int k = atoi(m + 9);
        if (k > 0 && k <= MAXPEERS)
            fed.alive_at0[k] = 1;
    }
}

/* Reads every node's log for up to ms (a node's log must be drained or it blocks on stderr). */
static void pump(int ms)
{
    struct pollfd pfd[MAXPEERS + 1];
    int n = 0;
    for (int i = 0; i < fed.n; i++)
        if (fed.procs[i].fd >= 0)
            pfd[n++] = (struct pollfd){.fd = fed.procs[i].fd, .events = POLLIN};
    if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR)
        bench_die("poll: %s", strerror(errno));
    uint64_t t = bench_now_ns();
    for (int i = 0; i < fed.n; i++)
        if (bench_proc_read(&fed.procs[i], on_line, NULL, t) < 0 && fed.procs[i].pid > 0)
            bench_die("node n%d exited (PUB_DEBUG=1 shows its log)", i);
    bench_check_interrupt();
}

static void start_node(int i)
{
    char name[16], data[300], peer[32], http[32], seed[32];
    snprintf(name, sizeof name, "n%d", i);
    snprintf(data, sizeof data, "%s/%s", fed.dir, name);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", fed.base + i);
    snprintf(http, sizeof http, "127.0.0.1:%d", fed.base + 50 + i);
    snprintf(seed, sizeof seed, "127.0.0.1:%d", fed.base);
    char *argv[] = {(char *)trib_bin, "agent", "--data", data, "--domain", name, "--listen", peer, "--http", http,
                    "--log-level", i ? "info" : "debug", i ? "--seed" : NULL, seed, NULL};
    if (bench_spawn(&fed.procs[i], argv, i) < 0)
        bench_die("cannot start n%d: %s", i, strerror(errno));
    if (fed.n < i + 1)
        fed.n = i + 1;
}

static int wait_for(int (*cond)(void), int timeout_s)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_s * 1000000000u;
    while (!cond()) {
        if (bench_now_ns() > end)
            return -1;
        pump(20);
    }
    return 0;
}

static int all_ready(void)
{
    for (int i = 0; i < fed.n; i++)
        if (!fed.ready[i])
            return 0;
    for (int i = 1; i < fed.n; i++)
        if (!fed.alive_at0[i])
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ clients */

typedef struct {
    int id, run;
    CURL *h;
    double *lat_ms;                    /* each entries */
    int failed;
    char why[256];
} client_t;

static atomic_int go, finished;

static size_t sink(char *ptr, size_t size, size_t nmemb, void *ud)
{
    client_t *c = ud;
    size_t n = size * nmemb;
    if (c && !c->why[0] && n)
        snprintf(c->why, sizeof c->why, "%.*s", (int)(n < 200 ? n : 200), ptr);
    return n;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    char url[160], body[1024], name[48];
    while (!atomic_load(&go))
        bench_sleep_ms(1);
    for (int k = 0; k < each; k++) {
        snprintf(name, sizeof name, "c%d-r%d-p%d", c->id, c->run, k);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/n0/%s", fed.base + 50, name);
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"domain\":\"n0\",\"version\":\"1.0.%d\",\"status\":\"active\","
                 "\"title\":\"publish benchmark product %d of client %d\",\"description\":{\"purpose\":"
                 "\"group commit benchmark\",\"usage\":\"none\"},\"owners\":{\"business\":\"bench@example.com\","
                 "\"technical\":\"bench@example.com\"},\"tags\":[\"bench\",\"publish\"],\"schema\":[{\"name\":\"n\","
                 "\"logicalType\":\"integer\",\"required\":true},{\"name\":\"at\",\"logicalType\":\"timestamp\"}]}",
                 name, k, k, c->id);
        curl_easy_setopt(c->h, CURLOPT_URL, url);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        c->why[0] = '\0';
        uint64_t t0 = bench_now_ns();
        CURLcode rc = curl_easy_perform(c->h);
        c->lat_ms[k] = bench_ms(bench_now_ns() - t0);
        long status = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || (status != 201 && status != 200)) {
            if (!c->failed++)
                fprintf(stderr, "publish: PUT n0/%s: %s, HTTP %ld: %s\n", name, curl_easy_strerror(rc), status,
                        c->why);
        }
    }
    atomic_fetch_add(&finished, 1);
    return NULL;
}

typedef struct {
    double rate, p50, p99, commits_per_pub, entries_per_commit, spread_s;
    double cpu0, cpu_peers;            /* CPU seconds (user + system) of n0 and of all peers */
    int failed, total;
} result_t;

/* CPU seconds (utime + stime) pid has used, from /proc/PID/stat; 0 when unreadable. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void cpu_now(double *n0, double *peers)
{
    *n0 = cpu_s(fed.procs[0].pid);
    *peers = 0;
    for (int i = 1; i < fed.n; i++)
        *peers += cpu_s(fed.procs[i].pid);
}

/* One run: every client publishes `each` new products at once; returns the figures. */
static void run(int runno, result_t *r)
{
    client_t cl[MAXCLIENTS];
    pthread_t th[MAXCLIENTS];
    double *lat = calloc((size_t)nclients * (size_t)each, sizeof *lat);
    if (!lat)
        bench_die("out of memory");
    atomic_store(&go, 0);
    atomic_store(&finished, 0);
    for (int i = 0; i < nclients; i++) {
        cl[i] = (client_t){.id = i, .run = runno, .h = curl_easy_init(), .lat_ms = lat + (size_t)i * each};
        curl_easy_setopt(cl[i].h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(cl[i].h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(cl[i].h, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(cl[i].h, CURLOPT_WRITEDATA, &cl[i]);
        curl_easy_setopt(cl[i].h, CURLOPT_TIMEOUT, 60L);
        char n0[400]; /* publishes go to n0 with its admin token (issue 11) */
        snprintf(n0, sizeof n0, "%s/n0", fed.dir);
        BENCH_BEARER(cl[i].h, bench_token(n0));
        if (pthread_create(&th[i], NULL, client_main, &cl[i]) != 0)
            bench_die("pthread_create: %s", strerror(errno));
    }
    pump(0);
    uint64_t c0 = fed.commits, e0 = fed.committed;
    double cpu0a, cpupa, cpu0b, cpupb;
    cpu_now(&cpu0a, &cpupa);
    uint64_t t0 = bench_now_ns();
    atomic_store(&go, 1);
    while (atomic_load(&finished) < nclients)
        pump(10);
    uint64_t t1 = bench_now_ns();
    cpu_now(&cpu0b, &cpupb);
    for (int i = 0; i < nclients; i++) {
        pthread_join(th[i], NULL);
        curl_easy_cleanup(cl[i].h);
    }
    memset(r, 0, sizeof *r);
    r->total = nclients * each;
    for (int i = 0; i < nclients; i++)
        r->failed += cl[i].failed;
    pump(50); /* the last commit lines */
    r->rate = (double)(r->total - r->failed) / ((double)(t1 - t0) / 1e9);
    r->p50 = bench_pct(lat, (size_t)r->total, 50);
    r->p99 = bench_pct(lat, (size_t)r->total, 99);
    uint64_t commits = fed.commits - c0, entries = fed.committed - e0;
    r->commits_per_pub = commits ? (double)commits / (double)(r->total - r->failed) : -1;
    r->entries_per_commit = commits ? (double)entries / (double)commits : -1;
    r->spread_s = -1;
    r->cpu0 = cpu0b - cpu0a;
    r->cpu_peers = cpupb - cpupa;
    free(lat);
}

/* ------------------------------------------------------------------ peers */

static size_t grab(char *ptr, size_t size, size_t nmemb, void *ud)
{
    char *buf = ud;
    size_t n = size * nmemb, have = strlen(buf);
    size_t room = 65535 - have;
    memcpy(buf + have, ptr, n < room ? n : room);
    buf[have + (n < room ? n : room)] = '\0';
    return n;
}

/* Node i's /metrics into buf (cap 65536), or -1. */
static int metrics_of(CURL *h, int i, char *buf)
{
    char url[96];
    buf[0] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", fed.base + 50 + i);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grab);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)buf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    return curl_easy_perform(h) == CURLE_OK ? 0 : -1;
}

/* The value of the sample named exactly name (with its labels) in a /metrics text, or 0. */
static double metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return 0;
}

/* trib_catalog_products of node i from its /metrics, or -1. */
static long products_of(CURL *h, int i)
{
    static char buf[65536];
    if (metrics_of(h, i, buf) < 0)
        return -1;
    const char *m = strstr(buf, "\ntrib_catalog_products ");
    return m ? strtol(m + 23, NULL, 10) : -1;
}

/* What the peers did, summed over all of them (from their /metrics and /proc). */
typedef struct {
    double accepted, duplicates, commits, frames, verify_s, store_s, cpu_s, wants, differed;
} peers_t;

static void peers_now(peers_t *p)
{
    static char buf[65536];
    CURL *h = curl_easy_init();
    memset(p, 0, sizeof *p);
    for (int i = 1; i < fed.n; i++) {
        p->cpu_s += cpu_s(fed.procs[i].pid);
        if (metrics_of(h, i, buf) < 0)
            continue;
        p->accepted += metric(buf, "trib_catalog_entries_total{result=\"accepted\"}");
        p->duplicates += metric(buf, "trib_catalog_entries_total{result=\"duplicate\"}");
        p->commits += metric(buf, "trib_catalog_commits_total");
        p->frames += metric(buf, "trib_gossip_messages_total{dir=\"in\",type=\"MSG_CATALOG_ENTRIES\"}");
        p->verify_s += metric(buf, "trib_catalog_accept_seconds_total{phase=\"verify\"}");
        p->store_s += metric(buf, "trib_catalog_accept_seconds_total{phase=\"store\"}");
        p->wants += metric(buf, "trib_catalog_gap_requests_total{dir=\"out\"}");
        p->differed += metric(buf, "trib_catalog_rounds_total{kind=\"differed\"}");
    }
    curl_easy_cleanup(h);
}

/* Seconds from now until every peer holds want products (of all domains), or -1. */
static double spread(long want)
{
    CURL *h = curl_easy_init();
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)SPREAD_TIMEOUT_S * 1000000000u;
    int done = 0;
    while (!done && bench_now_ns() < end) {
        done = 1;
        for (int i = 1; i < fed.n && done; i++)
            if (products_of(h, i) < want)
                done = 0;
        if (!done)
            pump(50);
    }
    curl_easy_cleanup(h);
    return done ? (double)(bench_now_ns() - t0) / 1e9 : -1;
}

/* ------------------------------------------------------------------ report */

static void row(const char *what, const result_t *r)
{
    printf("  %-22s %8.0f publishes/s  (%d PUTs, %d failed)  PUT p50 %6.1f ms  p99 %6.1f ms  ", what, r->rate,
           r->total, r->failed, r->p50, r->p99);
    if (r->commits_per_pub < 0)
        printf("commits/publish n/a (no commit lines)\n");
    else
        printf("commits/publish %.3f (%.1f entries per commit)\n", r->commits_per_pub, r->entries_per_commit);
    printf("  %-22s CPU meanwhile: n0 %.1f s (%.2f ms per publish), peers %.1f s in all\n", "", r->cpu0,
           r->total ? r->cpu0 * 1000.0 / r->total : 0, r->cpu_peers);
}

static void remove_data_dir(void)
{
    nftw(fed.dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: publish TRIB_BINARY\n");
        return 2;
    }
    trib_bin = argv[1];
    const char *e;
    if ((e = getenv("PUB_CLIENTS")) && atoi(e) > 0)
        nclients = atoi(e) < MAXCLIENTS ? atoi(e) : MAXCLIENTS;
    if ((e = getenv("PUB_EACH")) && atoi(e) > 0)
        each = atoi(e);
    if ((e = getenv("PUB_PEERS")) && atoi(e) >= 0)
        npeers = atoi(e) < MAXPEERS ? atoi(e) : MAXPEERS;
    debug = (e = getenv("PUB_DEBUG")) && atoi(e) > 0;
    const char *tmp = bench_init("tribbench-pub");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i <= MAXPEERS; i++)
        fed.procs[i].fd = -1;
    fed.base = bench_reserve_ports(&fed.lock_fd);
    if (fed.base < 0)
        bench_die("no free block of 100 loopback ports in 20000..31999");
    if ((e = getenv("PUB_DATA_DIR")) && *e) {   /* e.g. /dev/shm: the same run without disk flushes */
        if (snprintf(fed.dir, sizeof fed.dir, "%.150s/tribbench-pub.XXXXXX", e) >= (int)sizeof fed.dir ||
            !mkdtemp(fed.dir))
            bench_die("cannot make a data dir under PUB_DATA_DIR %s", e);
        bench_extra_cleanup = remove_data_dir;
    } else {
        if (snprintf(fed.dir, sizeof fed.dir, "%.150s/fed", tmp) >= (int)sizeof fed.dir)
            bench_die("temp dir path too long");
        if (mkdir(fed.dir, 0700) < 0)
            bench_die("mkdir %s: %s", fed.dir, strerror(errno));
    }

    printf("== Publish throughput (issue 9 item 4): bench/publish ==\n");
    printf("Method: %d client threads, each PUTs %d new manifests one after the other on its own keep-alive\n"
           "  connection to one real agent (n0); each answer comes after the entry's durable commit. Rate = PUTs /\n"
           "  wall time; commits = n0's 'catalog: committed' log lines (one per durable write transaction).\n"
           "  Then %d more agents seeded with n0 receive everything while the same load runs again.\n",
           nclients, each, npeers);

    start_node(0);
    if (wait_for(all_ready, READY_TIMEOUT_S) < 0)
        bench_die("n0 did not log 'gossip on' within %d s", READY_TIMEOUT_S);
    result_t alone, with;
    run(0, &alone);
    row("alone", &alone);

    for (int i = 1; i <= npeers; i++)
        start_node(i);
    if (wait_for(all_ready, READY_TIMEOUT_S) < 0)
        bench_die("the %d peers were not all ready and alive at n0 within %d s", npeers, READY_TIMEOUT_S);
    long have = (long)alone.total - alone.failed;
    if (npeers > 0 && spread(have) < 0)
        fprintf(stderr, "publish: the peers did not catch up with the first run within %d s\n", SPREAD_TIMEOUT_S);
    peers_t pa, pb;
    peers_now(&pa);
    if (debug || getenv("PUB_PIDS"))  /* e.g. for perf record -p on n0 and a peer during this run */
        fprintf(stderr, "publish: run with peers starts: n0 pid %d, n1 pid %d\n", (int)fed.procs[0].pid,
                npeers ? (int)fed.procs[1].pid : 0);
    run(1, &with);
    if (npeers > 0)
        with.spread_s = spread(have + with.total - with.failed);
    peers_now(&pb);
    char what[48];
    snprintf(what, sizeof what, "with %d peers", npeers);
    row(what, &with);
    if (npeers > 0) {
        if (with.spread_s < 0)
            printf("  every peer held all of n0's products: NOT within %d s of the last answer\n", SPREAD_TIMEOUT_S);
        else
            printf("  every peer held all of n0's products %.2f s after the last answer\n", with.spread_s);
    }
    if (npeers > 0) {
        double acc = pb.accepted - pa.accepted, cpu = pb.cpu_s - pa.cpu_s, commits = pb.commits - pa.commits;
        printf("  peers, from the start of the run until they held everything: %.0f entries accepted, %.0f "
               "duplicates, %.0f entry frames received, %.0f commits (%.1f entries per commit)\n", acc,
               pb.duplicates - pa.duplicates, pb.frames - pa.frames, commits, commits > 0 ? acc / commits : 0);
        printf("  peer CPU per accepted entry %.0f us (of it, wall time in the accept worker: verify %.0f us, "
               "store %.0f us)\n", acc > 0 ? cpu * 1e6 / acc : 0, acc > 0 ? (pb.verify_s - pa.verify_s) * 1e6 / acc : 0,
               acc > 0 ? (pb.store_s - pa.store_s) * 1e6 / acc : 0);
        printf("  peers' gap requests %.0f, anti-entropy rounds that differed %.0f\n", pb.wants - pa.wants,
               pb.differed - pa.differed);
    }
    double ratio = alone.rate > 0 ? with.rate / alone.rate : 0;
    printf("  target: alone >= 1000/s: %s; with peers / alone = %.2f (>= 0.50): %s\n",
           alone.rate >= 1000 ? "PASS" : "MISS", ratio, ratio >= 0.5 ? "PASS" : "MISS");
    bench_stop_all(fed.procs, fed.n, SIGTERM, 5000);
    close(fed.lock_fd);
    curl_global_cleanup();
    return 0;
}
