/* bench/fedcommit.c - does a burst of federation objects stop the gossip loop? (durable commits
 * off the loop). In one process, on this worktree's disk: a fedlog over a real LMDB store gets
 * N certificates, each in its own FED_PUSH, handled one by one the way gossip.c's loop does
 * (fedlog_handle then fedlog_tick); the loop's other work (SWIM pings among it) waits while each
 * runs, so the time a call holds the loop is how late a ping is answered.
 *   inline: commits on the loop (what every FED_PUSH, hello and sync did before: one fsynced
 *           commit per message, on the loop);
 *   worker: the fedlog's commit worker (io.own_thread): the loop verifies and pushes on; commits
 *           are grouped on the worker.
 * Prints per mode: the loop's time per message (p50, p99, max), its total, the time until all is
 * durable, and the number of commits; then the ratio of the worst loop stalls. Repeats R times.
 *
 * usage: build/bench/fedcommit [N=500] [R=3] */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/fedlog.h"
#include "gossip/identity.h"
#include "gossip/trust.h"
#include "proto/tributary.pb-c.h"
#include "storage/store.h"

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fedcommit: %s: %s\n", what, err);
    exit(1);
}

static void nop_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    (void)ctx, (void)addr, (void)type, (void)body, (void)len;
}

static size_t one_peer(void *ctx, const char **addrs, size_t max)
{
    (void)ctx, (void)max;
    addrs[0] = "10.0.0.9:1";
    return 1;
}

static void nop_wake(void *ctx) { (void)ctx; }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t metric(fedlog_t *f, const char *name)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    fedlog_metrics_render(f, m);
    fclose(m);
    unsigned long long v = 0;
    const char *p = strstr(buf, name);
    if (p)
        sscanf(p + strlen(name), " %llu", &v);
    free(buf);
    return v;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500, reps = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || reps < 1 || sodium_init() < 0)
        die("usage", "fedcommit [N>=1] [R>=1]");
    char err[600];
    identity_t r1, r2;
    crypto_sign_keypair(r1.pk, r1.sk);
    crypto_sign_keypair(r2.pk, r2.sk);
    charter_t ch;
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    memcpy(ch.keys[0].key, r1.pk, ID_PK_LEN);
    memcpy(ch.keys[1].key, r2.pk, ID_PK_LEN);
    ch.keys[0].role = ch.keys[1].role = CHARTER_ROLE_ROOT;
    ch.nkeys = 2;
    ch.threshold = 2;
    ch.issued_ms = (int64_t)time(NULL) * 1000;
    const identity_t *roots[] = { &r1, &r2 };
    if (charter_sign(NULL, &ch, roots, 2, err, sizeof err) != 0)
        die("charter", err);
    uint8_t **msgs = calloc((size_t)n, sizeof *msgs);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    uint64_t *took = calloc((size_t)n, sizeof *took);
    for (int i = 0; i < n; i++) {
        uint8_t pk[ID_PK_LEN], sk[64];
        crypto_sign_keypair(pk, sk);
        char dom[32];
        snprintf(dom, sizeof dom, "d-%d", i);
        cert_t c;
        if (cert_issue(&ch, dom, pk, ch.issued_ms - 60000, ch.issued_ms + 86400000LL, 0, roots, 2, &c, err,
                       sizeof err) != 0)
            die("certificate", err);
        ProtobufCBinaryData item = { c.len, c.bytes };
        Trib__FedObjects m = TRIB__FED_OBJECTS__INIT;
        m.n_objects = 1;
        m.objects = &item;
        lens[i] = trib__fed_objects__get_packed_size(&m);
        msgs[i] = malloc(lens[i]);
        trib__fed_objects__pack(&m, msgs[i]);
        cert_free(&c);
    }
    const char *root = bench_init("trib-fedcommit");   /* removed at exit */
    printf("== Federation burst vs the gossip loop: %d certificates, one FED_PUSH each, %d run(s) ==\n", n, reps);
    double worst[2][16] = {{0}};
    for (int r = 0; r < reps && r < 16; r++)
        for (int mode = 0; mode < 2; mode++) {
            char dir[400];
            snprintf(dir, sizeof dir, "%s/%d-%d", root, r, mode);
            store_t *st = store_open(dir, NULL, err, sizeof err);
            if (!st)
                die("store", err);
            trust_t *t = trust_new(&ch);
            fedlog_t *f = fedlog_new(st, t, err, sizeof err);
            if (!f)
                die("fedlog", err);
            fedlog_io_t io = { .send = nop_send, .peers = one_peer, .wake = nop_wake, .own_thread = mode };
            fedlog_attach(f, &io);
            uint64_t t0 = bench_now_ns(), loop_ns = 0;
            for (int i = 0; i < n; i++) {
                uint64_t a = bench_now_ns();
                fedlog_handle(f, "10.0.0.8:1", TRIB__MSG_TYPE__MSG_FED_PUSH, msgs[i], lens[i]);
                fedlog_tick(f);
                took[i] = bench_now_ns() - a;
                loop_ns += took[i];
            }
            fedlog_flush(f);
            uint64_t durable_ns = bench_now_ns() - t0;
            uint32_t count;
            uint8_t sum[TRUST_HASH_LEN];
            fedlog_summary(f, &count, sum);
            uint64_t commits = metric(f, "\ntrib_fedlog_commits_total");
            qsort(took, (size_t)n, sizeof *took, cmp_u64);
            worst[mode][r] = bench_ms(took[n - 1]);
            printf("  run %d %-6s loop per message p50 %.3f ms, p99 %.3f ms, max %.3f ms; loop total %.0f ms; "
                   "all durable after %.0f ms; %llu commit(s); held %u\n", r + 1, mode ? "worker" : "inline",
                   bench_ms(took[n / 2]), bench_ms(took[(size_t)(n * 0.99)]), bench_ms(took[n - 1]),
                   bench_ms(loop_ns), bench_ms(durable_ns), (unsigned long long)commits, count);
            if ((int)count != n)
                die("held", "not every certificate is held");
            fedlog_attach(f, NULL);
            fedlog_destroy(&f);
            trust_destroy(&t);
            store_close(&st);
        }
    for (int r = 0; r < reps && r < 16; r++)
        printf("  run %d: worst loop stall inline / worker = %.1fx (%.2f ms / %.2f ms)\n", r + 1,
               worst[1][r] > 0 ? worst[0][r] / worst[1][r] : 0.0, worst[0][r], worst[1][r]);
    for (int i = 0; i < n; i++)
        free(msgs[i]);
    free(msgs);
    free(lens);
    free(took);
    charter_free(&ch);
    return 0;
}
