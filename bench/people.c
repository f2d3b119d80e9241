/* bench/people.c - what people see when the catalog is company-sized: one `trib agent` holding
 * DOMAINS x PER realistic products (bench/catfill.c writes them into its store) under the
 * company policy set (examples/policies/company.yaml), and the time and size of every path a
 * person or a dashboard takes: the web UI's first page and domain overview, searches for a
 * common word, a rare word and an exact id (and that id's rank), /v1/status, /metrics, the
 * compliance report, the CLI's `trib products` and `trib compliance`; then the agent's RssAnon
 * before and after 8 concurrent reports and 8 concurrent searches, twice.
 *
 * Usage: people TRIB_BINARY BENCH_DIR [DOMAINS [PER]]   (100 x 300 by default; run from the
 *        repository root, as bench/run.sh does; PEOPLE_REQS timed requests per path, default 20;
 *        PEOPLE_PORT=N: the agent's ports N+10, N+11 instead of a reserved block)
 * Target (issue: people at scale): every interactive path's p50 under 200 ms and its answer
 * bounded (a page, not the catalog); the agent's RssAnon back within 16 MiB after the bursts.
 * Must not: leave a process or a temp dir behind (atexit + signals). */
#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include "bench/bench.h"

#define TARGET_MS 200.0
#define BURST 8

static bench_proc_t agent;
static int http_port, lock_fd, reqs = 20;
static char trib_bin[512], data_dir[300], node_url[64];
static volatile int drain_stop;

static void *drain_main(void *arg)
{
    (void)arg;
    while (!drain_stop && agent.fd >= 0) {
        struct pollfd pf = {.fd = agent.fd, .events = POLLIN};
        if (poll(&pf, 1, 100) > 0 && bench_proc_read(&agent, NULL, NULL, bench_now_ns()) < 0)
            break;
    }
    return NULL;
}

typedef struct {
    char *buf;
    size_t len;
} body_t;

static size_t keep(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    char *nb = realloc(b->buf, b->len + size * nmemb + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, ptr, size * nmemb);
    b->buf = nb;
    b->len += size * nmemb;
    b->buf[b->len] = '\0';
    return size * nmemb;
}

/* GET path on h (keep-alive); the body in *b (freed by the caller), the HTTP status returned. */
static long get(CURL *h, const char *path, body_t *b)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port, path);
    free(b->buf);
    *b = (body_t){0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    long st = 0;
    if (curl_easy_perform(h) != CURLE_OK || curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st) != CURLE_OK)
        return -1;
    return st;
}

static json_t *get_json(CURL *h, const char *path)
{
    body_t b = {0};
    json_t *j = get(h, path, &b) == 200 ? json_loads(b.buf, 0, NULL) : NULL;
    free(b.buf);
    return j;
}

static void start_agent(const char *domain, const char *policy)
{
    char http[32], listen[32];
    snprintf(http, sizeof http, "127.0.0.1:%d", http_port);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", http_port + 1);
    char *argv[16] = {trib_bin, "agent", "--data", data_dir, "--http", http, "--listen", listen,
                      "--link-listen", "off"};
    int k = 10;
    if (domain) {
        argv[k++] = "--domain";
        argv[k++] = (char *)domain;
    }
    if (policy) {
        argv[k++] = "--policy";
        argv[k++] = (char *)policy;
    }
    argv[k] = NULL;
    if (bench_spawn(&agent, argv, 0) != 0)
        bench_die("cannot start %s", trib_bin);
    CURL *h = curl_easy_init();
    body_t b = {0};
    uint64_t end = bench_now_ns() + 120ull * 1000000000u;
    while (get(h, "/v1/status", &b) != 200) {
        bench_proc_read(&agent, NULL, NULL, bench_now_ns());
        if (bench_now_ns() > end || agent.fd < 0)
            bench_die("the agent did not answer /v1/status on port %d", http_port);
        bench_sleep_ms(20);
    }
    free(b.buf);
    curl_easy_cleanup(h);
}

static void run_child(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (out_path && !freopen(out_path, "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    bench_track(pid);
    int ws;
    waitpid(pid, &ws, 0);
    bench_untrack(pid);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        bench_die("%s %s failed", argv[0], argv[1]);
}

/* PUT examples/NAME.yaml as payments/NAME (the node's own domain, 2 products beside the
 * others' PER each: the smallest domain, as a new team's). */
static void publish_own(CURL *h, const char *name)
{
    char path[128], url[256];
    snprintf(path, sizeof path, "examples/%s.yaml", name);
    FILE *f = fopen(path, "r");
    char text[16384];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    if (!n)
        bench_die("%s: cannot read", path);
    text[n] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/payments/%s", http_port, name);
    uint64_t end = bench_now_ns() + 30ull * 1000000000u;
    for (;;) {
        body_t b = {0};
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/yaml");
        char auth[4300];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bench_token(data_dir));
        hd = curl_slist_append(hd, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        long st = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        curl_slist_free_all(hd);
        curl_easy_reset(h);
        if (rc == CURLE_OK && (st == 200 || st == 201)) {
            free(b.buf);
            return;
        }
        if (st != 503 || bench_now_ns() > end) /* 503 not_synced: the node has not compared its log yet */
            bench_die("PUT payments/%s: HTTP %ld %s", name, st, b.buf ? b.buf : "");
        free(b.buf);
        bench_sleep_ms(200);
    }
}

static void row(const char *what, double *ms, size_t n, size_t bytes, const char *note)
{
    double p50 = bench_pct(ms, n, 50), p90 = bench_pct(ms, n, 90);
    printf("  %-40s %8.1f %8.1f %10zu  %s  %s\n", what, p50, p90, bytes, p50 <= TARGET_MS ? "PASS" : "MISS",
           note ? note : "");
}

/* reqs GETs of path, one after another on one keep-alive connection. */
static void time_path(CURL *h, const char *what, const char *path)
{
    double ms[256];
    body_t b = {0};
    int n = reqs < 256 ? reqs : 256;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        long st = get(h, path, &b);
        ms[i] = bench_ms(bench_now_ns() - t0);
        if (st != 200)
            bench_die("GET %s: HTTP %ld", path, st);
    }
    row(what, ms, (size_t)n, b.len, path);
    free(b.buf);
}

/* The CLI, reqs / 4 times (at least 3): wall time, and the lines it printed. */
static void time_cli(const char *what, char *const argv[])
{
    char out[400];
    snprintf(out, sizeof out, "%s/cli.out", bench_tmpdir);
    double ms[64];
    int n = reqs / 4 < 3 ? 3 : reqs / 4 > 64 ? 64 : reqs / 4;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        run_child(argv, out);
        ms[i] = bench_ms(bench_now_ns() - t0);
    }
    size_t len = 0, lines = 0;
    FILE *f = fopen(out, "r");
    if (f) {
        int c;
        while ((c = fgetc(f)) != EOF)
            len++, lines += c == '\n';
        fclose(f);
    }
    char note[64];
    snprintf(note, sizeof note, "%zu lines", lines);
    row(what, ms, (size_t)n, len, note);
}

typedef struct {
    const char *path;
} burst_t;

static void *burst_main(void *arg)
{
    burst_t *b = arg;
    CURL *h = curl_easy_init();
    body_t body = {0};
    for (int i = 0; i < 5; i++)
        get(h, b->path, &body);
    free(body.buf);
    curl_easy_cleanup(h);
    return NULL;
}

static void burst(const char *path)
{
    pthread_t th[BURST];
    burst_t b = {path};
    for (int i = 0; i < BURST; i++)
        if (pthread_create(&th[i], NULL, burst_main, &b) != 0)
            bench_die("pthread_create");
    for (int i = 0; i < BURST; i++)
        pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: people TRIB_BINARY BENCH_DIR [DOMAINS [PER]]");
    int domains = argc > 3 ? atoi(argv[3]) : 100, per = argc > 4 ? atoi(argv[4]) : 300;
    if (getenv("PEOPLE_REQS"))
        reqs = atoi(getenv("PEOPLE_REQS")) > 0 ? atoi(getenv("PEOPLE_REQS")) : reqs;
    if (!realpath(argv[1], trib_bin))
        bench_die("%s: %s", argv[1], strerror(errno));
    char catfill[512];
    snprintf(catfill, sizeof catfill, "%s/catfill", argv[2]);
    const char *policy = "examples/policies/company.yaml";
    if (access(policy, R_OK) != 0)
        bench_die("%s: run from the repository root", policy);
    const char *tmp = bench_init("tribbench-people");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int base = getenv("PEOPLE_PORT") ? atoi(getenv("PEOPLE_PORT")) : bench_reserve_ports(&lock_fd);
    if (base < 0)
        bench_die("no free block of ports");
    http_port = base + 10;
    snprintf(node_url, sizeof node_url, "http://127.0.0.1:%d", http_port);
    snprintf(data_dir, sizeof data_dir, "%s/n0", tmp);
    fprintf(stderr, "people: %d x %d products, ports %d..\n", domains, per, base);

    start_agent("payments", NULL); /* its data dir, identity and domain */
    bench_stop(&agent, SIGTERM, 10000);
    char sd[16], sp[16];
    snprintf(sd, sizeof sd, "%d", domains);
    snprintf(sp, sizeof sp, "%d", per);
    uint64_t f0 = bench_now_ns();
    run_child((char *[]){catfill, data_dir, sd, sp, NULL}, "/dev/null");
    fprintf(stderr, "people: filled in %.1f s\n", (double)(bench_now_ns() - f0) / 1e9);
    uint64_t r0 = bench_now_ns();
    start_agent(NULL, policy);
    double restart_ms = bench_ms(bench_now_ns() - r0);
    pthread_t drain;
    if (pthread_create(&drain, NULL, drain_main, NULL) != 0)
        bench_die("pthread_create");
    CURL *h = curl_easy_init();
    publish_own(h, "settled-transactions");
    publish_own(h, "payment-disputes");
    long total = 0;
    uint64_t end = bench_now_ns() + 300ull * 1000000000u;
    for (;;) { /* the policy set has judged every product */
        json_t *j = get_json(h, "/v1/compliance?limit=0");
        int done = j && json_is_false(json_object_get(j, "pending")) &&
                   json_integer_value(json_object_get(j, "products")) >= (json_int_t)domains * per;
        total = j ? (long)json_integer_value(json_object_get(j, "non_compliant")) : 0;
        json_decref(j);
        if (done)
            break;
        if (bench_now_ns() > end)
            bench_die("the policy set did not judge every product within 300 s");
        bench_sleep_ms(200);
    }

    printf("People at company scale (bench/people.c): one agent, %d domains x %d products = %ld, company.yaml "
           "in force (%ld non-compliant)\n", domains, per, (long)domains * per, total);
    printf("  agent restarted on that catalog, first HTTP answer after %.0f ms\n", restart_ms);
    printf("  %-40s %8s %8s %10s  target p50 <= %.0f ms\n", "path (keep-alive, sequential)", "p50 ms", "p90 ms",
           "bytes", TARGET_MS);
    time_path(h, "web UI first page (25 products)", "/v1/products?limit=25");
    time_path(h, "domain overview (counts, facets)", "/v1/products?limit=0");
    time_path(h, "search, common word", "/v1/products?q=customer");
    time_path(h, "search, rare word", "/v1/products?q=kerfuffle");
    time_path(h, "search, three words", "/v1/products?q=customer%20data%20report");
    time_path(h, "search, exact id", "/v1/products?q=billing/orders-daily&limit=25");
    char last[96];
    snprintf(last, sizeof last, "/v1/products?offset=%ld&limit=100", (long)domains * per + 2 - 100);
    time_path(h, "last page of the listing", last);
    time_path(h, "one product", "/v1/products/billing/orders-daily");
    time_path(h, "status", "/v1/status");
    time_path(h, "metrics (a scrape)", "/metrics");
    time_path(h, "compliance report (default page)", "/v1/compliance");
    time_path(h, "compliance report, counts only", "/v1/compliance?limit=0");
    time_cli("trib products", (char *[]){trib_bin, "products", "--node", node_url, NULL});
    time_cli("trib compliance", (char *[]){trib_bin, "compliance", "--node", node_url, NULL});
    json_t *j = get_json(h, "/v1/products?q=billing/orders-daily&limit=1");
    const char *first = json_string_value(json_object_get(json_array_get(json_object_get(j, "products"), 0), "id"));
    printf("  exact id billing/orders-daily ranked first: %s\n", first && !strcmp(first, "billing/orders-daily") ? "yes" : "NO");
    json_decref(j);
    j = get_json(h, "/v1/products?limit=0");
    json_t *fd = json_object_get(json_object_get(j, "facets"), "domain");
    printf("  domain overview (facets.domain) names %zu of %d domains; the smallest, payments (2 products): %s\n",
           json_object_size(fd), domains + 1, json_integer_value(json_object_get(fd, "payments")) == 2 ? "2" : "MISSING");
    json_decref(j);

    long idle = bench_proc_kb(agent.pid, "status", "RssAnon");
    long after[2][2];
    for (int round = 0; round < 2; round++) {
        burst("/v1/compliance");
        after[round][0] = bench_proc_kb(agent.pid, "status", "RssAnon");
        burst("/v1/products?q=customer%20data");
        after[round][1] = bench_proc_kb(agent.pid, "status", "RssAnon");
    }
    long worst = 0;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            worst = after[r][k] - idle > worst ? after[r][k] - idle : worst;
    printf("  agent RssAnon: idle %ld KiB; after %d x 5 concurrent reports %ld, searches %ld; again %ld, %ld "
           "(growth %ld KiB: %s, target <= 16 MiB)\n", idle, BURST, after[0][0], after[0][1], after[1][0],
           after[1][1], worst, worst <= 16384 ? "PASS" : "MISS");
    curl_easy_cleanup(h);
    drain_stop = 1;
    bench_stop(&agent, SIGTERM, 10000);
    pthread_join(drain, NULL);
    curl_global_cleanup();
    return 0;
}
