/* node/records_body.c - an NDJSON request body split into records and validated whole.
 *
 * Owns: finding the records of a body (lines, trimmed, blank ones skipped), the size and count
 * limits (413) and the "line N: ..." error of the first bad record (400), validating large
 * bodies on several threads with the answer a serial scan would give. The accepted records
 * point into the caller's body (no copies, no re-serialization).
 * Must not: validate a record itself (node/records.c does), or store anything. */
#include "node/records.h"
#include "node/errtext.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const records_limits_t records_default_limits = {
    .max_body = 64u << 20,
    .max_record = 1u << 20,
    .max_records = 100000,
    .threads = 0,
};

/* ================================================================ NDJSON bodies */

/* Bodies are handled in two passes so that the parses can run on several cores:
 * 1. one thread finds the records (lines, trimmed, blanks skipped) and applies the size and
 *    count limits, stopping at the first limit broken;
 * 2. the records before that point are validated in contiguous chunks, one per thread; each
 *    chunk stops at its first invalid record, or as soon as an earlier one is known.
 * The answer is the one a serial scan gives: the earliest problem in the body wins. */

#define PAR_MIN_PER_THREAD 2048   /* records per thread below which threads do not pay */
#define PAR_MAX_THREADS    8

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

typedef struct {
    const record_schema_t *s;
    const store_buf_t *recs;
    size_t from, to;              /* records [from, to) */
    _Atomic size_t *first_bad;    /* lowest invalid index found by any chunk */
    size_t bad;                   /* this chunk's first invalid index, or SIZE_MAX */
    int oom;                      /* ... and that was for want of memory */
    char err[512];
} chunk_t;

static void *chunk_run(void *arg)
{
    chunk_t *c = arg;
    c->bad = SIZE_MAX;
    if (c->from == c->to)
        return NULL;
    record_validator_t *v = record_validator_new(c->s);
    if (v == NULL) {
        c->bad = c->from;
        c->oom = 1;
        snprintf(c->err, sizeof c->err, "out of memory validating records");
    }
    for (size_t i = c->from; v != NULL && i < c->to; i++) {
        if ((i & 63) == 0 && atomic_load_explicit(c->first_bad, memory_order_relaxed) < i)
            break;   /* an earlier record is already invalid: that one is the answer */
        if (record_validator_check(v, c->recs[i].data, c->recs[i].len, c->err,
                                   sizeof c->err) != 0) {
            c->bad = i;
            c->oom = record_validator_oom(v);
            size_t cur = atomic_load_explicit(c->first_bad, memory_order_relaxed);
            while (i < cur && !atomic_compare_exchange_weak(c->first_bad, &cur, i))
                ;
            break;
        }
    }
    record_validator_free(&v);
    return NULL;
}

static size_t thread_count(const records_limits_t *lim, size_t n)
{
    size_t t = lim->threads;
    if (t == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        t = cpus > 0 ? (size_t)cpus : 1;
    }
    if (t > PAR_MAX_THREADS)
        t = PAR_MAX_THREADS;
    if (t > n / PAR_MIN_PER_THREAD)
        t = n / PAR_MIN_PER_THREAD;
    return t ? t : 1;
}

/* Validates recs[0, n); returns the index of the first invalid record (its error in err, *oom
 * set when it failed for want of memory) or n. */
static size_t validate_all(const record_schema_t *s, const store_buf_t *recs, size_t n,
                           const records_limits_t *lim, int *oom, char *err, size_t errlen)
{
    size_t nt = thread_count(lim, n);
    _Atomic size_t first_bad = SIZE_MAX;
    chunk_t one, *c = &one;
    if (nt > 1 && (c = calloc(nt, sizeof *c)) == NULL) {
        c = &one;
        nt = 1;
    }
    pthread_t tid[PAR_MAX_THREADS];
    int started[PAR_MAX_THREADS] = {0};
    for (size_t t = 0; t < nt; t++) {
        c[t] = (chunk_t){.s = s, .recs = recs, .from = n * t / nt, .to = n * (t + 1) / nt,
                         .first_bad = &first_bad};
        /* Chunk 0 runs on the caller's thread; a thread that cannot start runs here too. */
        if (t > 0 && pthread_create(&tid[t], NULL, chunk_run, &c[t]) == 0)
            started[t] = 1;
    }
    for (size_t t = 0; t < nt; t++)
        if (!started[t])
            chunk_run(&c[t]);
    size_t bad = n;
    for (size_t t = 0; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        if (c[t].bad < bad) {
            bad = c[t].bad;
            *oom = c[t].oom;
            snprintf(err, errlen, "%s", c[t].err);
        }
    }
    if (c != &one)
        free(c);
    return bad;
}

/* 1-based line of the byte at p (error path only). */
static size_t line_of(const char *body, const char *p)
{
    size_t line = 1;
    for (const char *q = body; (q = memchr(q, '\n', (size_t)(p - q))) != NULL; q++)
        line++;
    return line;
}

int records_split(const record_schema_t *s, const char *body, size_t len,
                  const records_limits_t *lim, store_buf_t **out, size_t *n, int *status,
                  char *err, size_t errlen)
{
    assert(s != NULL && out != NULL && n != NULL && status != NULL && err != NULL && errlen > 0);
    if (lim == NULL)
        lim = &records_default_limits;
    *out = NULL;
    *n = 0;
    *status = 0;
    err[0] = '\0';
    if (body == NULL)
        len = 0;
    if (len > lim->max_body) {
        *status = 413;
        return errtext_set(err, errlen, "body is %zu bytes; the limit is %zu", len, lim->max_body);
    }

    /* Pass 1: find the records; a broken limit ends the scan (status/err kept for later). */
    store_buf_t *recs = NULL;
    size_t count = 0, cap = 0, line = 0;
    int limit_status = 0;
    char limit_err[160] = "";
    const char *p = body, *end = body + len;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *a = p, *b = nl ? nl : end;
        p = nl ? nl + 1 : end;
        while (a < b && is_ws(*a))
            a++;
        while (b > a && is_ws(b[-1]))
            b--;
        if (a == b)
            continue;   /* blank or whitespace-only line */
        size_t rlen = (size_t)(b - a);
        if (rlen > lim->max_record) {
            limit_status = 413;
            snprintf(limit_err, sizeof limit_err, "line %zu: record is %zu bytes; the limit is %zu (the node's "
                     "--max-record-kb)", line, rlen, lim->max_record);
            break;
        }
        if (count == lim->max_records) {
            limit_status = 413;
            snprintf(limit_err, sizeof limit_err, "line %zu: more than %zu records in one request (the node's "
                     "--max-records): send them in several", line, lim->max_records);
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            store_buf_t *nr = realloc(recs, ncap * sizeof *nr);
            if (nr == NULL) {
                *status = 500;
                errtext_set(err, errlen, "out of memory splitting %zu records", count);
                goto err;
            }
            recs = nr;
            cap = ncap;
        }
        recs[count].data = a;
        recs[count].len = rlen;
        count++;
    }

    /* Pass 2: validate what came before any broken limit; an earlier bad record wins. */
    char verr[512];
    int oom = 0;
    size_t bad = count ? validate_all(s, recs, count, lim, &oom, verr, sizeof verr) : count;
    if (bad < count) {
        *status = oom ? 500 : 400;
        errtext_set(err, errlen, "line %zu: %s", line_of(body, recs[bad].data), verr);
        errtext_utf8(err);
        goto err;
    }
    if (limit_status != 0) {
        *status = limit_status;
        errtext_set(err, errlen, "%s", limit_err);
        goto err;
    }
    if (count == 0) {
        *status = 400;
        errtext_set(err, errlen, "body has no records (expected NDJSON: one JSON object per line)");
        goto err;
    }
    *out = recs;
    *n = count;
    return 0;
err:
    free(recs);
    return -1;
}
