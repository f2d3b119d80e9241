/* bench/accept.c - a receiver's CPU per accepted entry, in process (no network, no other work).
 *
 * Usage: accept [N] [PER_JOB]     (default 20000 entries, 80 a job: what a peer of bench/publish
 *                                  commits at once)
 *
 * Owns: signing N manifests of one domain like bench/publish's (outside the timing), packing them
 * in frames of 40 (as n0 pushes them), and handing them to a replicate_t job by job exactly as the
 * intake worker does (repl_job_new, repl_job_run: verify, store in one durable commit;
 * repl_job_finish), into a temp store opened as an agent opens its own (durable commits). Prints
 * the process CPU (user + system, every thread) per accepted entry, and of it the wall time the
 * jobs spent verifying and storing.
 * Must not: include lmdb.h, or leave its temp store behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench/bench.h"
#include "gossip/entry.h"
#include "gossip/replicate.h"
#include "storage/store.h"

#define FRAME 40

static void no_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    (void)ctx, (void)addr, (void)type, (void)body, (void)len;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Entry seq of domain n0, chained on prev (32 bytes, or none for seq 1); its body hash into next. */
static void sign_one(const identity_t *id, uint64_t seq, const uint8_t *prev, uint8_t next[32],
                     uint8_t **out, size_t *len)
{
    char name[48], version[32], title[96], doc[1024];
    snprintf(name, sizeof name, "c%llu-r0-p%llu", (unsigned long long)(seq % 16), (unsigned long long)seq);
    snprintf(version, sizeof version, "1.0.%llu", (unsigned long long)seq);
    snprintf(title, sizeof title, "publish benchmark product %llu of client %llu", (unsigned long long)seq,
             (unsigned long long)(seq % 16));
    snprintf(doc, sizeof doc,
             "{\"name\":\"%s\",\"domain\":\"n0\",\"version\":\"%s\",\"status\":\"active\",\"title\":\"%s\","
             "\"description\":{\"purpose\":\"group commit benchmark\",\"usage\":\"none\"},\"owners\":{\"business\":"
             "\"bench@example.com\",\"technical\":\"bench@example.com\"},\"tags\":[\"bench\",\"publish\"],\"schema\":"
             "[{\"name\":\"n\",\"logicalType\":\"integer\",\"required\":true},{\"name\":\"at\",\"logicalType\":"
             "\"timestamp\"}]}", name, version, title);
    Trib__SchemaProperty p0 = TRIB__SCHEMA_PROPERTY__INIT, p1 = TRIB__SCHEMA_PROPERTY__INIT, *props[] = {&p0, &p1};
    p0.name = "n", p0.logical_type = "integer", p0.required = 1;
    p1.name = "at", p1.logical_type = "timestamp";
    char *tags[] = {"bench", "publish"};
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = "n0", m.name = name, m.version = version, m.status = "active", m.title = title;
    m.purpose = "group commit benchmark", m.usage = "none";
    m.owner_business = m.owner_technical = "bench@example.com";
    m.n_tags = 2, m.tags = tags, m.n_schema = 2, m.schema = props, m.document_json = doc;
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = "n0", e.seq = seq, e.time_ms = 1765000000000 + (int64_t)seq;
    if (prev)
        e.prev_hash = (ProtobufCBinaryData){32, (uint8_t *)prev};
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST, e.manifest = &m;
    if (entry_sign(id, &e, out, len) != 0)
        bench_die("entry_sign failed");
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, *len, *out);
    if (!se)
        bench_die("a signed entry does not decode");
    entry_hash(se->body.data, se->body.len, next);
    trib__signed_entry__free_unpacked(se, NULL);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 && atol(argv[1]) > 0 ? (size_t)atol(argv[1]) : 20000;
    size_t per_job = argc > 2 && atol(argv[2]) >= FRAME ? (size_t)atol(argv[2]) : 80;
    const char *tmp = bench_init("tribbench-accept");
    char dir[256], idfile[256], err[256];
    snprintf(dir, sizeof dir, "%.200s/store", tmp);
    snprintf(idfile, sizeof idfile, "%.200s/id", tmp);
    identity_t id;
    if (identity_create_file(idfile, &id, err, sizeof err) != 0)
        bench_die("identity: %s", err);
    uint8_t **bytes = calloc(n, sizeof *bytes), hash[32];
    size_t *lens = calloc(n, sizeof *lens);
    if (!bytes || !lens)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++)
        sign_one(&id, i + 1, i ? hash : NULL, hash, &bytes[i], &lens[i]);
    store_t *st = store_open(dir, &(store_opts_t){0}, err, sizeof err);
    if (!st)
        bench_die("store_open: %s", err);
    repl_io_t io = {.send = no_send};
    replicate_t *r = repl_new(st, NULL, 1u << 20, &io);
    const char *from = "127.0.0.1:1";
    double c0 = cpu_s();
    for (size_t at = 0; at < n; at += per_job) {
        const uint8_t *bodies[64];
        size_t blens[64], nf = 0;
        const char *froms[64];
        for (size_t f = at; f < at + per_job && f < n && nf < 64; f += FRAME) {
            Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
            ProtobufCBinaryData items[FRAME];
            for (size_t k = 0; k < FRAME && f + k < n && f + k < at + per_job; k++, msg.n_entries++)
                items[k] = (ProtobufCBinaryData){lens[f + k], bytes[f + k]};
            msg.entries = items;
            blens[nf] = trib__catalog_entries__get_packed_size(&msg);
            uint8_t *b = malloc(blens[nf]);
            if (!b)
                bench_die("out of memory");
            trib__catalog_entries__pack(&msg, b);
            bodies[nf] = b;
            froms[nf++] = from;
        }
        repl_job_t *j = repl_job_new(r, froms, NULL, bodies, blens, nf);
        if (!j)
            bench_die("repl_job_new: out of memory");
        repl_job_run(r, j);
        repl_job_finish(r, j);
        for (size_t f = 0; f < nf; f++)
            free((void *)bodies[f]);
    }
    double cpu = cpu_s() - c0;
    const repl_stats_t *s = repl_stats(r);
    uint64_t acc = s->entries[CAT_ACCEPTED];
    if (acc != n)
        bench_die("%llu of %zu entries accepted", (unsigned long long)acc, n);
    printf("accept: %zu entries, %zu a job (one durable commit each): CPU per accepted entry %.1f us "
           "(wall in the jobs: verify %.1f us, store %.1f us)\n", n, per_job, cpu * 1e6 / (double)n,
           (double)s->verify_us / (double)n, (double)s->store_us / (double)n);
    repl_destroy(&r);
    store_close(&st);
    for (size_t i = 0; i < n; i++)
        free(bytes[i]);
    free(bytes), free(lens);
    identity_wipe(&id);
    return 0;
}
