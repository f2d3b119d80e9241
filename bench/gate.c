/* bench/gate.c - the cost of the governance gate at publish (issue 12, benchmarks): a publish
 * whose manifest is checked for compatibility against 20 earlier versions (the default mode,
 * BACKWARD_TRANSITIVE, checks every one of them) beside a publish with none (a new product).
 *
 * Usage: gate [K]    (K products of each kind, default 50)
 *
 * Owns: one node opened in-process on a temp data dir (no network: the catalog write and its
 * durable commit are the same for both kinds, so the ratio is the gate's share of a publish);
 * K products of 20 versions each (1.0.0 .. 1.19.0, each adding an optional field), then,
 * interleaved, version 1.20.0 of each (the check against 20 versions) and a new product with the
 * same schema (no check); also the gate alone (node_publish_ex dry run against 20 versions).
 * Prints mean and p50 per publish and the ratios. COMBINED (the benchmark in one run): a
 * second in-process node with the 50-rule set of bench/policyset.h in force (open mode, its
 * compliance thread running) publishes version 1.20.0 of products of 20 versions, beside the
 * new product on the node without a set; interleaved with the rest. Then the change log fill at
 * open (GATE_FILL_N products, default 10000). GATE_PROFILE=N: only N dry runs of each kind (perf),
 * first over every product in turn (their versions cold, as the timed loop's combined case meets
 * them), then of one product over and over (warm); it prints the first phase's bounds in
 * CLOCK_MONOTONIC for `perf record -k CLOCK_MONOTONIC`.
 * Must not: leave its temp dir behind (bench.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lmdb.h>
#include "bench/bench.h"
#include "bench/policyset.h"
#include "gossip/catalog.h"
#include "gossip/log.h"
#include "node/manifest.h"
#include "node/node.h"
#include "node/policy_node.h"

#define VERSIONS 20

static node_t node, pnode;   /* pnode: the same, with the 50-rule policy set in force */

/* The manifest of name at 1.<minor>.0 with fields f0..f<nfields-1>. */
static char *manifest(const char *name, int minor, int nfields, size_t *len)
{
    size_t cap = 4096 + (size_t)nfields * 96;
    char *t = malloc(cap);
    if (!t)
        bench_die("out of memory");
    int n = snprintf(t, cap,
                     "name: %s\ndomain: bench\nversion: \"1.%d.0\"\ntitle: Bench product\n"
                     "description: {purpose: p, usage: u, limitations: l}\n"
                     "owners: {business: b@example.com, technical: t@example.com}\n"
                     "tags: [bench]\nschema:\n"
                     "  - {name: id, logicalType: string, required: true, primaryKey: true}\n"
                     "  - {name: amount, logicalType: integer, required: true}\n"
                     "  - {name: at, logicalType: timestamp, required: true}\n",
                     name, minor);
    for (int i = 0; i < nfields; i++)
        n += snprintf(t + n, cap - (size_t)n, "  - {name: f%d, logicalType: string, required: false}\n", i);
    *len = (size_t)n;
    return t;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t last_cpu;   /* CPU time of the last publish (this thread) */

static uint64_t publish_on(node_t *on, const char *name, int minor, int nfields, int dry)
{
    size_t len;
    char *t = manifest(name, minor, nfields, &len);
    char id[128];
    snprintf(id, sizeof id, "bench/%s", name);
    node_publish_opts_t o = {.dry_run = dry};
    node_result_t r;
    uint64_t c0 = cpu_ns(), t0 = bench_now_ns();
    node_code_t c = node_publish_ex(on, id, t, len, &o, &r);
    uint64_t dt = bench_now_ns() - t0;
    last_cpu = cpu_ns() - c0;
    if (c != NODE_OK || r.unchanged)
        bench_die("publish %s 1.%d.0: %s %s", id, minor, r.kind ? r.kind : "unchanged", r.detail);
    node_result_clear(&r);
    free(t);
    return dt;
}

static uint64_t publish(const char *name, int minor, int nfields, int dry)
{
    return publish_on(&node, name, minor, nfields, dry);
}

static void open_node(node_t *n, const char *dir, const char *sub)
{
    config_defaults(&n->cfg);
    snprintf(n->cfg.data, sizeof n->cfg.data, "%s/%s", dir, sub);
    snprintf(n->cfg.domain, sizeof n->cfg.domain, "bench");
    snprintf(n->cfg.log_level, sizeof n->cfg.log_level, "error");
    n->limits = records_default_limits;
    char err[512];
    if (node_open(n, err, sizeof err) != 0)
        bench_die("node_open: %s", err);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void stats(uint64_t *v, int n, double *mean_us, double *p50_us)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)v[i];
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    *mean_us = sum / n / 1e3;
    *p50_us = (double)v[n / 2] / 1e3;
}

/* ---------------------------------------------------------------- the change log fill at open */

#define FILL_DOMAINS 10

/* A store made before the change log: nprod products over FILL_DOMAINS domains (interleaved in
 * time), then the log dropped and the fill's mark removed; then the timed open that fills it, and
 * an open with nothing to fill beside it. */
static void fill_bench(const char *dir, int nprod)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/fill", dir);
    store_opts_t fast = {.nosync = 1};
    store_t *st = store_open(path, &fast, err, sizeof err);
    if (!st)
        bench_die("store_open: %s", err);
    identity_t id;
    int created;
    if (identity_load_or_create(path, &id, &created, err, sizeof err) != 0)
        bench_die("identity: %s", err);
    catalog_t *cat[FILL_DOMAINS];
    for (int d = 0; d < FILL_DOMAINS; d++) {
        char dom[16];
        snprintf(dom, sizeof dom, "d%d", d);
        if (!(cat[d] = catalog_new(st, &id, dom)))
            bench_die("catalog_new");
    }
    for (int i = 0; i < nprod; i++) {
        char y[512];
        int n = snprintf(y, sizeof y,
                         "name: p%d\ndomain: d%d\nversion: 1.0.0\ntitle: T\n"
                         "owners: {business: b@example.com, technical: t@example.com}\n"
                         "schema:\n  - {name: id, logicalType: string, required: true, primaryKey: true}\n",
                         i, i % FILL_DOMAINS);
        Trib__Manifest *m = manifest_parse(y, (size_t)n, NULL, err, sizeof err);
        uint64_t seq;
        uint8_t *out = NULL;
        size_t outlen;
        if (!m || catalog_publish(cat[i % FILL_DOMAINS], m, NULL, &seq, &out, &outlen, err, sizeof err) != 0)
            bench_die("publish p%d: %s", i, err);
        free(out);
        manifest_free(&m);
    }
    for (int d = 0; d < FILL_DOMAINS; d++)
        catalog_destroy(&cat[d]);
    store_close(&st);

    MDB_env *env;   /* what a build before the change log left: no log, no mark */
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) || mdb_env_set_mapsize(env, (size_t)1 << 30) ||
        mdb_env_open(env, path, 0, 0600) || mdb_txn_begin(env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, "changes", 0, &log) || mdb_dbi_open(txn, "meta", 0, &meta) || mdb_drop(txn, log, 1))
        bench_die("dropping the change log failed");
    MDB_val mk = {strlen("store.changes"), "store.changes"};
    mdb_del(txn, meta, &mk, NULL);
    if (mdb_txn_commit(txn))
        bench_die("commit failed");
    mdb_env_close(env);

    uint64_t t0 = bench_now_ns();
    st = store_open(path, NULL, err, sizeof err);   /* durable, as a node opens it */
    uint64_t t1 = bench_now_ns();
    uint64_t rows = st ? store_changes_backfilled(st) : 0, last = 0;
    if (!st || store_changes_last(st, &last) != 0 || last != (uint64_t)nprod || rows != (uint64_t)nprod)
        bench_die("the fill made %llu rows (log ends at %llu), expected %d", (unsigned long long)rows,
                  (unsigned long long)last, nprod);
    store_close(&st);
    uint64_t t2 = bench_now_ns();
    st = store_open(path, NULL, err, sizeof err);
    uint64_t t3 = bench_now_ns();
    if (!st || store_changes_backfilled(st) != 0)
        bench_die("the second open filled again");
    store_close(&st);
    printf("  change log fill at open (a data dir made before the log): %d products of %d domains, %llu rows in "
           "%.0f ms of store_open; an open with nothing to fill: %.0f ms\n", nprod, FILL_DOMAINS,
           (unsigned long long)rows, bench_ms(t1 - t0), bench_ms(t3 - t2));
}

int main(int argc, char **argv)
{
    int k = argc > 1 ? atoi(argv[1]) : 50;
    if (k < 1 || k > 10000)
        bench_die("usage: gate [K: products of each kind, 1..10000]");
    const char *dir = bench_init("trib-bench-gate");
    log_set_level(LOG_ERROR);
    open_node(&node, dir, "node");
    open_node(&pnode, dir, "pnode");
    char err[512], setpath[600];
    snprintf(setpath, sizeof setpath, "%s/policy50.yaml", dir);
    char *set = make_set(1);
    FILE *sf = fopen(setpath, "w");
    if (!sf || fputs(set, sf) < 0 || fclose(sf) != 0)
        bench_die("cannot write %s", setpath);
    free(set);
    if (policy_node_start(&pnode, NULL, setpath, err, sizeof err) != 0)
        bench_die("policy_node_start: %s", err);

    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < k; i++) {
        char name[32];
        snprintf(name, sizeof name, "x%d", i);
        for (int v = 0; v < VERSIONS; v++) {
            publish(name, v, v, 0);
            publish_on(&pnode, name, v, v, 0);
        }
    }
    double setup_s = (double)(bench_now_ns() - t0) / 1e9;
    if (getenv("GATE_PROFILE")) {   /* for perf: the combined dry run only, over and over */
        int reps = atoi(getenv("GATE_PROFILE"));
        fprintf(stderr, "GATE_PROFILE: phase 1 starts at %.6f s\n", (double)bench_now_ns() / 1e9);
        uint64_t p0 = cpu_ns();
        for (int i = 0; i < reps; i++) {   /* every product in turn: what a check reads is cold */
            char x[32];
            snprintf(x, sizeof x, "x%d", i % k);
            publish_on(&pnode, x, VERSIONS, VERSIONS, 1);
        }
        fprintf(stderr, "GATE_PROFILE: phase 1 ends at %.6f s (CLOCK_MONOTONIC: perf record -k CLOCK_MONOTONIC)\n",
                (double)bench_now_ns() / 1e9);
        printf("GATE_PROFILE: %d dry runs (policy + 20 versions, %d products in turn): %.0f us CPU each\n", reps, k,
               (double)(cpu_ns() - p0) / 1e3 / reps);
        p0 = cpu_ns();
        for (int i = 0; i < reps; i++) {
            char x[32];
            snprintf(x, sizeof x, "x%d", i % k);
            publish_on(&node, x, VERSIONS, VERSIONS, 1);
        }
        printf("GATE_PROFILE: %d dry runs (20 versions, no policy, %d products in turn): %.0f us CPU each\n", reps, k,
               (double)(cpu_ns() - p0) / 1e3 / reps);
        p0 = cpu_ns();
        for (int i = 0; i < reps; i++)
            publish_on(&pnode, "x0", VERSIONS, VERSIONS, 1);
        printf("GATE_PROFILE: %d dry runs (policy + 20 versions): %.0f us CPU each\n", reps,
               (double)(cpu_ns() - p0) / 1e3 / reps);
        p0 = cpu_ns();
        for (int i = 0; i < reps; i++)
            publish_on(&node, "x0", VERSIONS, VERSIONS, 1);
        printf("GATE_PROFILE: %d dry runs (20 versions, no policy): %.0f us CPU each\n", reps,
               (double)(cpu_ns() - p0) / 1e3 / reps);
        p0 = cpu_ns();
        for (int i = 0; i < reps; i++)
            publish_on(&node, "new", 0, VERSIONS, 1);
        printf("GATE_PROFILE: %d dry runs (new product, no policy): %.0f us CPU each\n", reps,
               (double)(cpu_ns() - p0) / 1e3 / reps);
        for (int w = 0; w < 2; w++) {   /* each product once: version 1.20.0 */
            p0 = cpu_ns();
            for (int i = 0; i < k; i++) {
                char x[32];
                snprintf(x, sizeof x, "x%d", i);
                publish_on(w ? &node : &pnode, x, VERSIONS, VERSIONS, 0);
            }
            printf("GATE_PROFILE: %d products at 1.20.0, %s: %.0f us CPU each\n", k, w ? "no policy" : "policy",
                   (double)(cpu_ns() - p0) / 1e3 / k);
        }
        const char *kind[3] = {"publish policy + versions", "publish versions, no policy", "publish new, no policy"};
        for (int w = 0; w < 3; w++) {
            p0 = cpu_ns();
            for (int i = 0; i < reps / 10; i++) {
                char nm[32];
                snprintf(nm, sizeof nm, "n%d", i);
                if (w == 0)
                    publish_on(&pnode, "x1", VERSIONS + 1 + i, VERSIONS, 0);
                else if (w == 1)
                    publish_on(&node, "x1", VERSIONS + 1 + i, VERSIONS, 0);
                else
                    publish_on(&node, nm, 0, VERSIONS, 0);
            }
            printf("GATE_PROFILE: %d %s: %.0f us CPU each\n", reps / 10, kind[w], (double)(cpu_ns() - p0) / 1e3 / (reps / 10));
        }
        policy_node_stop(&pnode);
        node_close(&pnode);
        node_close(&node);
        return 0;
    }
    enum { WITH, ONE, NONE, DRY, DRY_NEW, BOTH, POLICY, KINDS };
    static const char *const what[KINDS] = {
        "publish, checked against 20 versions (BACKWARD_TRANSITIVE)",
        "publish, checked against 1 version",
        "publish, new product (no check)",
        "gate alone (dry run), against 20 versions",
        "gate alone (dry run), new product",
        "publish, 50-rule policy set + checked against 20 versions",
        "publish, 50-rule policy set, new product (no check)"};
    uint64_t *wall[KINDS], *cpu[KINDS];
    for (int w = 0; w < KINDS; w++)
        if (!(wall[w] = calloc((size_t)k, sizeof(uint64_t))) || !(cpu[w] = calloc((size_t)k, sizeof(uint64_t))))
            bench_die("out of memory");
    for (int i = 0; i < k; i++) {   /* z: one earlier version */
        char z[32];
        snprintf(z, sizeof z, "z%d", i);
        publish(z, 0, VERSIONS - 1, 0);
    }
    for (int i = 0; i < k; i++) {   /* interleaved, so every kind sees the same machine */
        char x[32], y[32], z[32];
        snprintf(x, sizeof x, "x%d", i);
        snprintf(y, sizeof y, "y%d", i);
        snprintf(z, sizeof z, "z%d", i);
        wall[DRY][i] = publish(x, VERSIONS, VERSIONS, 1), cpu[DRY][i] = last_cpu;
        wall[DRY_NEW][i] = publish(y, 0, VERSIONS, 1), cpu[DRY_NEW][i] = last_cpu;
        wall[WITH][i] = publish(x, VERSIONS, VERSIONS, 0), cpu[WITH][i] = last_cpu;
        wall[ONE][i] = publish(z, 1, VERSIONS, 0), cpu[ONE][i] = last_cpu;
        wall[NONE][i] = publish(y, 0, VERSIONS, 0), cpu[NONE][i] = last_cpu;
        wall[BOTH][i] = publish_on(&pnode, x, VERSIONS, VERSIONS, 0), cpu[BOTH][i] = last_cpu;
        wall[POLICY][i] = publish_on(&pnode, y, 0, VERSIONS, 0), cpu[POLICY][i] = last_cpu;
    }
    double wm[KINDS], wp[KINDS], cm[KINDS], cp[KINDS];
    for (int w = 0; w < KINDS; w++) {
        stats(wall[w], k, &wm[w], &wp[w]);
        stats(cpu[w], k, &cm[w], &cp[w]);
    }
    printf("== Publish gate (issue 12): compatibility check against %d earlier versions vs none ==\n", VERSIONS);
    printf("  in-process node, durable commits; %d products x %d versions first (%.1f s), then %d of each kind, interleaved\n",
           k, VERSIONS, setup_s, k);
    printf("  %-60s %10s %10s %10s %10s\n", "", "wall mean", "wall p50", "CPU mean", "CPU p50");
    for (int w = 0; w < KINDS; w++)
        printf("  %-60s %8.0f us %8.0f us %8.0f us %8.0f us\n", what[w], wm[w], wp[w], cm[w], cp[w]);
    printf("  ratio checked(20) / none: wall mean %.2fx, p50 %.2fx; CPU mean %.2fx, p50 %.2fx   (issue target <= 1.5x,\n"
           "    with the 50-rule policy part: bench/policy)\n", wm[WITH] / wm[NONE], wp[WITH] / wp[NONE],
           cm[WITH] / cm[NONE], cp[WITH] / cp[NONE]);
    printf("  ratio checked(20) / checked(1): wall p50 %.2fx, CPU p50 %.2fx (what the transitive check adds)\n",
           wp[WITH] / wp[ONE], cp[WITH] / cp[ONE]);
    printf("  COMBINED (issue 12 benchmark): policy(50 rules) + checked(20) / none: wall mean %.2fx, p50 %.2fx; "
           "CPU mean %.2fx, p50 %.2fx (target <= 1.5x)\n", wm[BOTH] / wm[NONE], wp[BOTH] / wp[NONE],
           cm[BOTH] / cm[NONE], cp[BOTH] / cp[NONE]);
    printf("  ratio policy(50 rules), new product / none: wall p50 %.2fx, CPU p50 %.2fx (what the set adds)\n",
           wp[POLICY] / wp[NONE], cp[POLICY] / cp[NONE]);
    for (int w = 0; w < KINDS; w++) {
        free(wall[w]);
        free(cpu[w]);
    }
    policy_node_stop(&pnode);
    node_close(&pnode);
    node_close(&node);
    fill_bench(dir, getenv("GATE_FILL_N") ? atoi(getenv("GATE_FILL_N")) : 10000);
    return 0;
}
