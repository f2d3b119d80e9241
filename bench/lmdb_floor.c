/* bench/lmdb_floor.c - the bare LMDB floor for the ingest benchmark: a plain mdb_put loop, one
 * durable write transaction per batch, with the same records, keys ("id 0x00 BE-seq"), put
 * flags (MDB_NOOVERWRITE) and environment flags (MDB_NOTLS, no MDB_NOSYNC) as storage/records.c.
 *
 * Usage: lmdb_floor DIR RECORD_BYTES BATCH NBATCHES [--step]
 * prints "records_per_s X seconds Y median_records_per_s Z" (Z from the median batch time).
 * With --step it waits for a line on stdin before each batch and prints "batch_ns T" after
 * it, so bench/data can interleave its batches with the HTTP and store_records_append ones.
 *
 * This is the one file outside storage/ that includes lmdb.h (DESIGN.md §2): it measures what
 * LMDB itself costs, below storage's checks (product lookup, last-seq seek), so the figure is
 * a true floor to compare `store_records_append` and HTTP ingest against. Run by bench/data as
 * a separate program so the rule holds for everything else. Must not: be used for anything
 * but this measurement. */
#include <inttypes.h>
#include <lmdb.h>
#include "bench/bench.h"

static void check(int rc, const char *what)
{
    if (rc != 0)
        bench_die("lmdb_floor: %s: %s", what, mdb_strerror(rc));
}

int main(int argc, char **argv)
{
    int step = argc == 6 && !strcmp(argv[5], "--step");
    if (argc != 5 && !step) {
        fprintf(stderr, "usage: lmdb_floor DIR RECORD_BYTES BATCH NBATCHES [--step]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argv[1];
    size_t size = strtoul(argv[2], NULL, 10), batch = strtoul(argv[3], NULL, 10);
    size_t nb = strtoul(argv[4], NULL, 10);
    if (size < 64 || size > 1 << 20 || batch < 1 || batch > 1000000 || nb < 1 || nb > 10000)
        bench_die("lmdb_floor: arguments out of range");
    MDB_env *env;
    check(mdb_env_create(&env), "mdb_env_create");
    check(mdb_env_set_maxdbs(env, 2), "mdb_env_set_maxdbs");
    /* room for everything up front: map growth is not what this measures */
    check(mdb_env_set_mapsize(env, (size + 64) * batch * nb * 2 + (64u << 20)), "mdb_env_set_mapsize");
    check(mdb_env_open(env, dir, MDB_NOTLS, 0600), "mdb_env_open");
    MDB_txn *txn;
    MDB_dbi dbi;
    check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    check(mdb_dbi_open(txn, "records", MDB_CREATE, &dbi), "mdb_dbi_open");
    check(mdb_txn_commit(txn), "mdb_txn_commit");

    static const char id[] = "owner/floor";
    uint8_t key[sizeof id + 8];
    memcpy(key, id, sizeof id);                 /* includes the 0x00 separator */
    uint64_t seq = 0, total_ns = 0;
    double *bt = calloc(nb, sizeof *bt);
    if (!bt)
        bench_die("lmdb_floor: out of memory");
    for (size_t b = 0; b < nb; b++) {
        char *text = bench_batch(size, (unsigned long)(b * batch + 1), batch);
        if (!text)
            bench_die("lmdb_floor: out of memory");
        char go[16];
        if (step && !fgets(go, sizeof go, stdin))
            bench_die("lmdb_floor: stdin closed");
        uint64_t t0 = bench_now_ns();
        check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
        for (size_t i = 0; i < batch; i++) {
            uint64_t s = ++seq;
            for (int k = 7; k >= 0; k--, s >>= 8)
                key[sizeof id + (size_t)k] = (uint8_t)s;
            MDB_val k = {sizeof key, key}, v = {size, text + i * (size + 1)};
            check(mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE), "mdb_put");
        }
        check(mdb_txn_commit(txn), "mdb_txn_commit");
        uint64_t dt = bench_now_ns() - t0;
        total_ns += dt;
        bt[b] = (double)dt;
        if (step)
            printf("batch_ns %" PRIu64 "\n", dt);
        free(text);
    }
    mdb_env_close(env);
    double secs = (double)total_ns / 1e9;
    printf("records_per_s %.0f seconds %.3f median_records_per_s %.0f\n", (double)(nb * batch) / secs, secs,
           (double)batch / (bench_pct(bt, nb, 50) / 1e9));
    free(bt);
    return 0;
}
