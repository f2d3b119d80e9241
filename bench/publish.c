/* bench/publish.c - publish throughput of one node (issue 9 item 4): 16 concurrent HTTP clients.
 *
 * Usage: publish TRIB_BINARY      (env PUB_CLIENTS 16, PUB_EACH 125, PUB_PEERS 10, PUB_ROUNDS 3,
 *                                 PUB_DEBUG=1, PUB_PIDS=1 (pids for perf record -p),
 *                                 PUB_DATA_DIR: where the agents' data dirs go, default the temp dir)
 *
 * Owns: starting two real `trib agent`s of domain n0 (--log-level debug): "solo", with no peers,
 * and "n0", with PUB_PEERS more agents seeded with it; PUB_CLIENTS threads, each with its own
 * keep-alive libcurl handle, that PUT PUB_EACH distinct new manifests (n0/cT-rR-pK) one after the
 * other, each answered only once its catalog entry is durably committed; the report on stdout.
 * PUB_ROUNDS rounds, each one run on solo (alone) and one on n0 (with the peers receiving), in
 * the order AB, BA, AB, ... so that a machine shared with other work loads both sides alike; the
 * ratio is taken per round and its median reported.
 * Measured per run: publishes/s = all PUTs / wall time from releasing the clients to the last
 * answer; PUT latency p50/p99; commits per publish = the node's "catalog: committed N entries" log
 * lines (one per durable write transaction of the group commit, gossip/catalog.c) / publishes;
 * with peers, how long after the last answer every peer's /metrics shows all of n0's products
 * (trib_catalog_products; the next run starts only then); CPU seconds the node and the peers
 * used meanwhile (/proc/PID/stat).
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
#define SETTLE_TIMEOUT_S 20

static const char *trib_bin;
static int nclients = 16, each = 125, npeers = 10, debug;

/* procs[0] is n0, procs[1..npeers] its peers, procs[npeers + 1] solo (n = npeers + 2) */
typedef struct {
    int base, lock_fd, n;              /* peer ports base+i, HTTP ports base+50+i */
    char dir[200];
    bench_proc_t procs[MAXPEERS + 2];
    int ready[MAXPEERS + 2];
    int alive_at0[MAXPEERS + 2];       /* n0's log showed nK alive */
    uint64_t commits[MAXPEERS + 2], committed[MAXPEERS + 2];   /* commit lines, entries they name */
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
    const char *c = strstr(line, "catalog: committed ");
    if (c) {
        fed.commits[p->tag]++;
        fed.committed[p->tag] += strtoull(c + 19, NULL, 10);
        return;
    }
    if (p->tag != 0)
        return;
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

/* Node i: n0 (i = 0, no seed), a peer seeded with n0, or solo (domain n0 too, no seed). */
static void start_node(int i)
{
    int solo = i == npeers + 1, peer_of_n0 = i > 0 && !solo;
    char name[16], data[300], peer[32], http[32], seed[32];
    snprintf(name, sizeof name, "n%d", solo ? 0 : i);
    snprintf(data, sizeof data, "%s/%s", fed.dir, solo ? "solo" : name);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", fed.base + i);
    snprintf(http, sizeof http, "127.0.0.1:%d", fed.base + 50 + i);
    snprintf(seed, sizeof seed, "127.0.0.1:%d", fed.base);
    char *argv[] = {(char *)trib_bin, "agent", "--data", data, "--domain", name, "--listen", peer, "--http", http,
                    "--log-level", peer_of_n0 ? "info" : "debug", peer_of_n0 ? "--seed" : NULL, seed, NULL};
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
    for (int i = 1; i <= npeers; i++)
        if (!fed.alive_at0[i])
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ clients */

typedef struct {
    int id, run, node;                 /* node: the index of the agent it publishes to */
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
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/n0/%s", fed.base + 50 + c->node, name);
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

static void cpu_now(int node, double *n0, double *peers)
{
    *n0 = cpu_s(fed.procs[node].pid);
    *peers = 0;
    for (int i = 1; i <= npeers; i++)
        *peers += cpu_s(fed.procs[i].pid);
}

/* Waits (up to SETTLE_TIMEOUT_S) until the agents are idle: together under 2 % of a core each over
 * half a second. Freshly started agents work for a few seconds (joins, first anti-entropy rounds),
 * and the first run must not share the machine with that. */
static void settle(void)
{
    uint64_t end = bench_now_ns() + (uint64_t)SETTLE_TIMEOUT_S * 1000000000u;
    for (;;) {
        double a = 0, b = 0;
        for (int i = 0; i < fed.n; i++)
            a += cpu_s(fed.procs[i].pid);
        for (int k = 0; k < 25; k++)
            pump(20);
        for (int i = 0; i < fed.n; i++)
            b += cpu_s(fed.procs[i].pid);
        if (b - a < 0.01 * fed.n || bench_now_ns() > end)
            return;
    }
}

/* One run on node (0: n0, npeers + 1: solo): every client publishes `each` new products at once;
 * returns the figures. runno makes the names new. */
static void run(int node, int runno, result_t *r)
{
    client_t cl[MAXCLIENTS];
    pthread_t th[MAXCLIENTS];
    double *lat = calloc((size_t)nclients * (size_t)each, sizeof *lat);
    if (!lat)
        bench_die("out of memory");
    atomic_store(&go, 0);
    atomic_store(&finished, 0);
    for (int i = 0; i < nclients; i++) {
        cl[i] = (client_t){.id = i, .run = runno, .node = node, .h = curl_easy_init(), .lat_ms = lat + (size_t)i * each};
        curl_easy_setopt(cl[i].h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(cl[i].h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(cl[i].h, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(cl[i].h, CURLOPT_WRITEDATA, &cl[i]);
        curl_easy_setopt(cl[i].h, CURLOPT_TIMEOUT, 60L);
        char dir[400]; /* publishes go to the node with its admin token (issue 11) */
        snprintf(dir, sizeof dir, "%s/%s", fed.dir, node ? "solo" : "n0");
        BENCH_BEARER(cl[i].h, bench_token(dir));
        if (pthread_create(&th[i], NULL, client_main, &cl[i]) != 0)
            bench_die("pthread_create: %s", strerror(errno));
    }
    pump(0);
    uint64_t c0 = fed.commits[node], e0 = fed.committed[node];
    double cpu0a, cpupa, cpu0b, cpupb;
    cpu_now(node, &cpu0a, &cpupa);
    uint64_t t0 = bench_now_ns();
    atomic_store(&go, 1);
    while (atomic_load(&finished) < nclients)
        pump(10);
    uint64_t t1 = bench_now_ns();
    cpu_now(node, &cpu0b, &cpupb);
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
    uint64_t commits = fed.commits[node] - c0, entries = fed.committed[node] - e0;
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
    for (int i = 1; i <= npeers; i++) {
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
        for (int i = 1; i <= npeers && done; i++)
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
    printf("  %-22s CPU meanwhile: the node %.1f s (%.2f ms per publish), peers %.1f s in all (%.2f ms per publish)\n",
           "", r->cpu0, r->total ? r->cpu0 * 1000.0 / r->total : 0, r->cpu_peers,
           r->total ? r->cpu_peers * 1000.0 / r->total : 0);
}

/* The 1-minute load average from /proc/loadavg, or "?". */
static const char *loadavg(void)
{
    static char buf[32];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || fscanf(f, "%31s", buf) != 1)
        snprintf(buf, sizeof buf, "?");
    if (f)
        fclose(f);
    return buf;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void remove_data_dir(void)
{
    nftw(fed.dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define MAXROUNDS 15

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: publish TRIB_BINARY\n");
        return 2;
    }
    trib_bin = argv[1];
    int rounds = 3;
    const char *e;
    if ((e = getenv("PUB_CLIENTS")) && atoi(e) > 0)
        nclients = atoi(e) < MAXCLIENTS ? atoi(e) : MAXCLIENTS;
    if ((e = getenv("PUB_EACH")) && atoi(e) > 0)
        each = atoi(e);
    if ((e = getenv("PUB_PEERS")) && atoi(e) >= 0)
        npeers = atoi(e) < MAXPEERS ? atoi(e) : MAXPEERS;
    if ((e = getenv("PUB_ROUNDS")) && atoi(e) > 0)
        rounds = atoi(e) < MAXROUNDS ? atoi(e) : MAXROUNDS;
    debug = (e = getenv("PUB_DEBUG")) && atoi(e) > 0;
    const char *tmp = bench_init("tribbench-pub");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < MAXPEERS + 2; i++)
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
           "  connection to one real agent; each answer comes after the entry's durable commit. Rate = PUTs / wall\n"
           "  time; commits = the node's 'catalog: committed' log lines (one per durable write transaction).\n"
           "  Two agents of domain n0: 'solo' alone, and n0 with %d more agents seeded with it that receive\n"
           "  everything. %d rounds, each one run on solo and one on n0 (order AB, BA, AB, ...: a shared machine\n"
           "  loads both alike); the ratio with peers / alone is taken per round.\n",
           nclients, each, npeers, rounds);

    int solo = npeers + 1;
    for (int i = 0; i <= solo; i++)
        start_node(i);
    if (wait_for(all_ready, READY_TIMEOUT_S) < 0)
        bench_die("the agents were not all ready, and the %d peers alive at n0, within %d s", npeers, READY_TIMEOUT_S);
    settle();
    if (debug || getenv("PUB_PIDS")) { /* e.g. for perf record -p on n0, solo and the peers */
        fprintf(stderr, "publish: solo pid %d, n0 pid %d, n1 pid %d, peers", (int)fed.procs[solo].pid,
                (int)fed.procs[0].pid, npeers ? (int)fed.procs[1].pid : 0);
        for (int i = 1; i <= npeers; i++)
            fprintf(stderr, "%c%d", i == 1 ? ' ' : ',', (int)fed.procs[i].pid);
        fprintf(stderr, "\n");
    }
    double alone_rate[MAXROUNDS], with_rate[MAXROUNDS], ratio[MAXROUNDS];
    peers_t sum = {0};
    long have = 0;               /* n0's products every peer must hold */
    for (int r = 0; r < rounds; r++) {
        result_t alone, with;
        for (int k = 0; k < 2; k++) {
            int on_n0 = (r % 2) ^ k ? 1 : 0;   /* round 0: solo, n0; round 1: n0, solo; ... */
            if (debug || getenv("PUB_PIDS"))
                fprintf(stderr, "publish: round %d: run %s starts\n", r + 1, on_n0 ? "with peers (n0)" : "alone (solo)");
            if (!on_n0) {
                run(solo, 2 * r, &alone);
                continue;
            }
            peers_t pa, pb;
            peers_now(&pa);
            run(0, 2 * r + 1, &with);
            have += with.total - with.failed;
            if (npeers > 0 && (with.spread_s = spread(have)) < 0)
                fprintf(stderr, "publish: the peers did not hold all of n0's products within %d s\n", SPREAD_TIMEOUT_S);
            peers_now(&pb);
            sum.accepted += pb.accepted - pa.accepted;
            sum.duplicates += pb.duplicates - pa.duplicates;
            sum.frames += pb.frames - pa.frames;
            sum.commits += pb.commits - pa.commits;
            sum.cpu_s += pb.cpu_s - pa.cpu_s;
            sum.verify_s += pb.verify_s - pa.verify_s;
            sum.store_s += pb.store_s - pa.store_s;
            sum.wants += pb.wants - pa.wants;
            sum.differed += pb.differed - pa.differed;
        }
        char what[48];
        printf("round %d (load average %s)\n", r + 1, loadavg());
        row("alone (solo)", &alone);
        snprintf(what, sizeof what, "with %d peers (n0)", npeers);
        row(what, &with);
        alone_rate[r] = alone.rate;
        with_rate[r] = with.rate;
        ratio[r] = alone.rate > 0 ? with.rate / alone.rate : 0;
        printf("  %-22s with peers / alone = %.2f", "", ratio[r]);
        if (npeers > 0 && with.spread_s >= 0)
            printf("; every peer held all of n0's products %.2f s after the last answer\n", with.spread_s);
        else if (npeers > 0)
            printf("; every peer held all of n0's products: NOT within %d s of the last answer\n", SPREAD_TIMEOUT_S);
        else
            printf("\n");
        fflush(stdout);
    }
    if (npeers > 0) {
        double acc = sum.accepted;
        printf("peers, over the runs with peers (from each run's start until they held everything): %.0f entries "
               "accepted, %.0f duplicates, %.0f entry frames received, %.0f commits (%.1f entries per commit)\n", acc,
               sum.duplicates, sum.frames, sum.commits, sum.commits > 0 ? acc / sum.commits : 0);
        printf("  peer CPU per accepted entry %.0f us (of it, wall time in the accept worker: verify %.0f us, "
               "store %.0f us); gap requests %.0f, anti-entropy rounds that differed %.0f\n",
               acc > 0 ? sum.cpu_s * 1e6 / acc : 0, acc > 0 ? sum.verify_s * 1e6 / acc : 0,
               acc > 0 ? sum.store_s * 1e6 / acc : 0, sum.wants, sum.differed);
    }
    printf("ratios per round:");
    for (int r = 0; r < rounds; r++)
        printf(" %.2f", ratio[r]);
    double ma = median(alone_rate, rounds), mw = median(with_rate, rounds), mr = median(ratio, rounds);
    printf("\nmedians: alone %.0f publishes/s, with %d peers %.0f publishes/s\n", ma, npeers, mw);
    printf("  target: alone >= 1000/s: %s; with peers / alone (median of the rounds) = %.2f (>= 0.50): %s\n",
           ma >= 1000 ? "PASS" : "MISS", mr, mr >= 0.5 ? "PASS" : "MISS");
    bench_stop_all(fed.procs, fed.n, SIGTERM, 5000);
    close(fed.lock_fd);
    curl_global_cleanup();
    return 0;
}
