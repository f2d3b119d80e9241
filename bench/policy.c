/* bench/policy.c - the cost of governance policy sets (issue 12 benchmarks).
 *
 * Usage: policy TRIB_BINARY     (env POLICY_N products for the re-check, default 10000;
 *                                POLICY_PUBS publishes per side of the ratio, default 400)
 *
 * Owns: three measurements of the generated 50-rule set (bench/policyset.h, shared with
 * bench/gate.c's combined mode), each printed as a figure with what
 * it is beside:
 *   1. in process: one evaluation of a manifest against the 50 rules (microseconds);
 *   2. publish with the 50-rule set beside publish with none: two real agents, the same
 *      POLICY_PUBS publishes from one keep-alive client (20 products, each taken through new
 *      versions), mean latency of each and the ratio (target <= 1.5x);
 *   3. re-check: an agent holding POLICY_N products (published by 8 concurrent clients) is given
 *      version 2 of the set; the re-check time (trib_policy_recheck_last_ms) and /v1/status
 *      latency p50/p99/max polled back to back while it runs (target p99 < 50 ms).
 * Must not: leave a process or a temp dir behind (bench.h's atexit and signal handlers). */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "bench/bench.h"
#include "bench/policyset.h"
#include "node/policy.h"

#define CLIENTS 8

static const char *trib_bin, *tmp;
static int base_port, lock_fd;

/* ------------------------------------------------------------------ the set and manifests */

static int manifest(char *out, size_t cap, const char *name, int minor)
{
    return snprintf(out, cap,
                    "{\"name\":\"%s\",\"domain\":\"bench\",\"version\":\"1.%d.0\",\"title\":\"Bench product %s\","
                    "\"description\":{\"purpose\":\"A benchmark product with a realistic manifest.\"},"
                    "\"owners\":{\"business\":\"ana@example.com\",\"technical\":\"data@example.com\"},"
                    "\"tags\":[\"bench\",\"finance\"],\"classification\":\"internal\",\"schema\":%s}",
                    name, minor, name, BENCH_SCHEMA);
}

/* ------------------------------------------------------------------ agents and HTTP */

typedef struct {
    bench_proc_t p;
    int http;
    char url[64];
    char data[300];               /* its data dir: DATA/admin.token authorises writes */
} agent_t;

static void agent_start(agent_t *a, int idx, const char *policy)
{
    char data[300], listen[32], http[32];
    snprintf(data, sizeof data, "%s/n%d", tmp, idx);
    snprintf(a->data, sizeof a->data, "%s", data);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", base_port + idx);
    a->http = base_port + 50 + idx;
    snprintf(http, sizeof http, "127.0.0.1:%d", a->http);
    snprintf(a->url, sizeof a->url, "http://127.0.0.1:%d", a->http);
    char *argv[] = { (char *)trib_bin, "agent", "--data", data, "--domain", "bench", "--listen", listen, "--http",
                     http, "--log-level", "warn", policy ? "--policy" : NULL, (char *)policy, NULL };
    if (bench_spawn(&a->p, argv, idx) != 0)
        bench_die("cannot start an agent");
}

typedef struct {
    char *b;
    size_t n;
} sink_t;

static size_t on_data(char *d, size_t s, size_t n, void *ctx)
{
    sink_t *k = ctx;
    char *nb = realloc(k->b, k->n + s * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + k->n, d, s * n);
    k->b = nb;
    k->n += s * n;
    k->b[k->n] = '\0';
    return s * n;
}

/* One request on handle h (with tok as Bearer when non-empty); the status, body in *out
 * (malloc'd) when non-NULL. */
static long http_tok(CURL *h, const char *method, const char *url, const char *body, char **out, const char *tok)
{
    sink_t k = { 0 };
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    BENCH_BEARER(h, tok);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    long st = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    if (out)
        *out = k.b;
    else
        free(k.b);
    return st;
}

static long http(CURL *h, const char *method, const char *url, const char *body, char **out)
{
    return http_tok(h, method, url, body, out, NULL);
}

static void wait_ready(agent_t *a)
{
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/v1/status", a->url);
    for (int i = 0; i < 600; i++) {
        bench_check_interrupt();
        bench_proc_read(&a->p, NULL, NULL, 0);
        if (http(h, "GET", url, NULL, NULL) == 200) {
            curl_easy_cleanup(h);
            return;
        }
        bench_sleep_ms(50);
    }
    bench_die("an agent did not answer within 30 s");
}

static json_t *get_json(CURL *h, const char *base, const char *path)
{
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "%s%s", base, path);
    long st = http(h, "GET", url, NULL, &body);
    json_t *j = st == 200 && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return j;
}

/* ------------------------------------------------------------------ 1. in process */

static void eval_cost(void)
{
    char *set = make_set(1), m[4096];
    char err[512];
    policy_set_t *ps = policy_parse(set, strlen(set), err, sizeof err);
    if (!ps)
        bench_die("the generated set: %s", err);
    manifest(m, sizeof m, "p", 0);
    json_t *raw = json_loads(m, 0, NULL), *doc = policy_doc(raw);
    int n = 20000;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        policy_report_t r = { 0 };
        policy_ctx_t ctx = { .now_ms = 1 };
        policy_eval(ps, doc, &ctx, &r);
        policy_report_free(&r);
    }
    double us = (double)(bench_now_ns() - t0) / 1e3 / n;
    printf("  one evaluation, %d rules, in process: %.1f us (mean of %d)\n", NRULES, us, n);
    json_decref(raw);
    json_decref(doc);
    policy_free(&ps);
    free(set);
}

/* ------------------------------------------------------------------ 2. publish ratio */

/* pubs publishes on a, round-robin over 20 products; *done counts a's publishes so far, so each
 * goes on from the version the last run left (the gate refuses a version not above it). */
static double publish_run(agent_t *a, int *done, int pubs)
{
    CURL *h = curl_easy_init();
    char url[256], m[4096];
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < pubs; i++) {
        char name[32];
        int k = *done + i;
        snprintf(name, sizeof name, "p%d", k % 20);
        snprintf(url, sizeof url, "%s/v1/products/bench/%s", a->url, name);
        manifest(m, sizeof m, name, k / 20);
        long st = http_tok(h, "PUT", url, m, NULL, bench_token(a->data));
        if (st != 200 && st != 201)
            bench_die("publish %d answered %ld", i, st);
        bench_proc_read(&a->p, NULL, NULL, 0);
    }
    double mean = bench_ms(bench_now_ns() - t0) / pubs;
    *done += pubs;
    curl_easy_cleanup(h);
    return mean;
}

/* ------------------------------------------------------------------ 3. re-check */

typedef struct {
    agent_t *a;
    int from, to;
} pub_job_t;

static void *pub_thread(void *arg)
{
    pub_job_t *j = arg;
    CURL *h = curl_easy_init();
    char url[256], m[4096];
    for (int i = j->from; i < j->to && !bench_interrupted; i++) {
        char name[32];
        snprintf(name, sizeof name, "q%d", i);
        snprintf(url, sizeof url, "%s/v1/products/bench/%s", j->a->url, name);
        manifest(m, sizeof m, name, 0);
        long st = http_tok(h, "PUT", url, m, NULL, bench_token(j->a->data));
        if (st != 201 && st != 200) {
            fprintf(stderr, "bench: publish %s answered %ld\n", name, st);
            break;
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int compliance_done(CURL *h, agent_t *a, long version, long products)
{
    json_t *j = get_json(h, a->url, "/v1/compliance");
    int ok = j && json_integer_value(json_object_get(j, "policy_version")) == version &&
             json_integer_value(json_object_get(j, "products")) >= products &&
             !json_is_true(json_object_get(j, "pending"));
    json_decref(j);
    return ok;
}

static void recheck(int nprod)
{
    char path[300];
    snprintf(path, sizeof path, "%s/policy-v1.yaml", tmp);
    char *v1 = make_set(1), *v2 = make_set(2);
    FILE *f = fopen(path, "w");
    fputs(v1, f);
    fclose(f);
    agent_t a;
    agent_start(&a, 2, path);
    wait_ready(&a);
    uint64_t t0 = bench_now_ns();
    pthread_t th[CLIENTS];
    pub_job_t jobs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        jobs[i] = (pub_job_t){ &a, nprod * i / CLIENTS, nprod * (i + 1) / CLIENTS };
        pthread_create(&th[i], NULL, pub_thread, &jobs[i]);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    bench_check_interrupt();
    fprintf(stderr, "bench: %d products published in %.1f s\n", nprod, bench_ms(bench_now_ns() - t0) / 1000);
    CURL *h = curl_easy_init();
    for (int i = 0; !compliance_done(h, &a, 1, nprod); i++) {
        if (i > 1200)
            bench_die("the first check of %d products did not finish in 60 s", nprod);
        bench_proc_read(&a.p, NULL, NULL, 0);
        bench_sleep_ms(50);
    }
    /* version 2 arrives: poll /v1/status back to back until every product is judged by it */
    char url[256], status_url[256];
    snprintf(url, sizeof url, "%s/v1/policy", a.url);
    snprintf(status_url, sizeof status_url, "%s/v1/status", a.url);
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    CURL *s = curl_easy_init();
    http(s, "GET", status_url, NULL, NULL);   /* connect first: latency below is the request's */
    uint64_t t1 = bench_now_ns();
    long st = http_tok(h, "POST", url, v2, NULL, bench_token(a.data));
    if (st != 200)
        bench_die("version 2 of the set was refused (%ld)", st);
    int polls = 0;
    while (!compliance_done(h, &a, 2, nprod)) {
        for (int k = 0; k < 20 && n < cap; k++) {
            uint64_t q0 = bench_now_ns();
            if (http(s, "GET", status_url, NULL, NULL) != 200)
                bench_die("/v1/status failed during the re-check");
            lat[n++] = bench_ms(bench_now_ns() - q0);
        }
        bench_proc_read(&a.p, NULL, NULL, 0);
        if (++polls > 100000 || bench_ms(bench_now_ns() - t1) > 300000)
            bench_die("the re-check did not finish in 300 s");
    }
    double wall = bench_ms(bench_now_ns() - t1);
    char *metrics = NULL;
    char murl[256];
    snprintf(murl, sizeof murl, "%s/metrics", a.url);
    http(h, "GET", murl, NULL, &metrics);
    const char *mm = metrics ? strstr(metrics, "\ntrib_policy_recheck_last_ms ") : NULL;
    double took = mm ? strtod(mm + strlen("\ntrib_policy_recheck_last_ms "), NULL) : -1;
    free(metrics);
    double p50 = bench_pct(lat, n, 50), p99 = bench_pct(lat, n, 99), mx = bench_pct(lat, n, 100);
    printf("  re-check of %d products on a new set: %.0f ms (node's own timing), %.0f ms until /v1/compliance "
           "showed all judged\n", nprod, took, wall);
    printf("  /v1/status during it: %zu requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 < 50 ms)\n", n,
           p50, p99, mx);
    free(lat);
    curl_easy_cleanup(s);
    curl_easy_cleanup(h);
    bench_stop(&a.p, SIGTERM, 5000);
    free(v1);
    free(v2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: policy TRIB_BINARY\n");
        return 2;
    }
    trib_bin = argv[1];
    tmp = bench_init("tribbench-policy");
    int nprod = getenv("POLICY_N") ? atoi(getenv("POLICY_N")) : 10000;
    int pubs = getenv("POLICY_PUBS") ? atoi(getenv("POLICY_PUBS")) : 400;
    if ((base_port = bench_reserve_ports(&lock_fd)) < 0)
        bench_die("no free block of ports");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("== Policy sets (issue 12): bench/policy, %d rules ==\n", NRULES);
    eval_cost();

    char path[300];
    snprintf(path, sizeof path, "%s/policy50.yaml", tmp);
    char *set = make_set(1);
    FILE *f = fopen(path, "w");
    fputs(set, f);
    fclose(f);
    free(set);
    agent_t none, with;
    int swap = getenv("POLICY_SWAP") != NULL;   /* which data dir and ports each side gets */
    agent_start(&none, swap, NULL);
    agent_start(&with, !swap, path);
    wait_ready(&none);
    wait_ready(&with);
    int done_none = 0, done_with = 0;
    publish_run(&none, &done_none, 40);   /* warm-up both */
    publish_run(&with, &done_with, 40);
    /* interleave halves so machine noise falls on both sides */
    double a1 = publish_run(&none, &done_none, pubs / 2), b1 = publish_run(&with, &done_with, pubs / 2);
    double b2 = publish_run(&with, &done_with, pubs / 2), a2 = publish_run(&none, &done_none, pubs / 2);
    double a = (a1 + a2) / 2, b = (b1 + b2) / 2;
    printf("  publish (new versions of 20 products, one client, %d each): no set %.2f ms, %d-rule set %.2f ms: "
           "%.2fx (target <= 1.5x)\n", pubs, a, NRULES, b, b / a);
    bench_stop(&none.p, SIGTERM, 5000);
    bench_stop(&with.p, SIGTERM, 5000);
    recheck(nprod);
    curl_global_cleanup();
    return 0;
}
