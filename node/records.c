/* node/records.c - record validation: NDJSON bodies checked against a product's schema.
 *
 * Owns: the compact schema copied from a manifest, checking one record (one jansson parse, then a
 * lookup per schema property), RFC 3339 date/timestamp checks, and splitting an NDJSON body into
 * records under the size limits, validating large bodies on several threads. The accepted
 * records point into the caller's body (no copies, no re-serialization).
 * Must not: store anything, or know about HTTP beyond the 400/413 status it reports. */
#include "node/records.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdarg.h>
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

typedef enum {
    LT_ANY,          /* a logicalType this version does not know: any value */
    LT_STRING,
    LT_INTEGER,
    LT_NUMBER,
    LT_BOOLEAN,
    LT_DATE,
    LT_TIMESTAMP,
    LT_OBJECT,
    LT_ARRAY,
} ltype_t;

static const struct {
    const char *name;
    ltype_t type;
} k_types[] = {
    {"string", LT_STRING}, {"integer", LT_INTEGER},     {"number", LT_NUMBER},
    {"boolean", LT_BOOLEAN}, {"date", LT_DATE},          {"timestamp", LT_TIMESTAMP},
    {"object", LT_OBJECT}, {"array", LT_ARRAY},
};

typedef struct {
    char *name;
    size_t len;
    ltype_t type;
    int required;
} field_t;

struct record_schema {
    field_t *f;
    size_t n;
};

/* ================================================================ schema */

record_schema_t *record_schema_new(const Trib__Manifest *m)
{
    if (m == NULL)
        return NULL;
    record_schema_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (m->n_schema > 0 && (s->f = calloc(m->n_schema, sizeof *s->f)) == NULL)
        goto err;
    for (size_t i = 0; i < m->n_schema; i++) {
        const Trib__SchemaProperty *p = m->schema[i];
        if (p == NULL || p->name == NULL)
            continue;
        field_t *f = &s->f[s->n];
        f->name = strdup(p->name);
        if (f->name == NULL)
            goto err;
        s->n++;
        f->len = strlen(p->name);
        f->required = p->required;
        f->type = LT_ANY;
        for (size_t t = 0; p->logical_type && t < sizeof k_types / sizeof k_types[0]; t++)
            if (strcmp(p->logical_type, k_types[t].name) == 0)
                f->type = k_types[t].type;
    }
    return s;
err:
    record_schema_free(&s);
    return NULL;
}

void record_schema_free(record_schema_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    record_schema_t *s = *sp;
    for (size_t i = 0; i < s->n; i++)
        free(s->f[i].name);
    free(s->f);
    free(s);
    *sp = NULL;
}

/* ================================================================ RFC 3339 */

/* n decimal digits at s as an int, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* full-date = YYYY-MM-DD, a real calendar date. s has at least 10 bytes. */
static int full_date_ok(const char *s)
{
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || s[4] != '-' || m < 1 || m > 12 || s[7] != '-' || d < 1)
        return 0;
    return d <= days_in_month(y, m);
}

int records_valid_date(const char *s, size_t n)
{
    return n == 10 && full_date_ok(s);
}

/* date-time = full-date ("T"|"t"|" ") HH:MM:SS[.frac] ("Z"|"z"|("+"|"-")HH:MM); seconds may
 * be 60 (a leap second, as RFC 3339 allows). */
int records_valid_timestamp(const char *s, size_t n)
{
    if (n < 20 || !full_date_ok(s))
        return 0;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return 0;
    int hh = digits(s + 11, 2), mm = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (hh < 0 || hh > 23 || s[13] != ':' || mm < 0 || mm > 59 || s[16] != ':' || ss < 0 ||
        ss > 60)
        return 0;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i == n)
        return 0;
    if (s[i] == 'Z' || s[i] == 'z')
        return i + 1 == n;
    if ((s[i] != '+' && s[i] != '-') || n - i != 6)
        return 0;
    int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
    return oh >= 0 && oh <= 23 && s[i + 3] == ':' && om >= 0 && om <= 59;
}

/* ================================================================ one record */

static const char *json_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* How much of a bad string value to quote: at most 40 bytes, cut on a UTF-8 boundary. */
static int quote_len(const char *s, size_t n)
{
    if (n <= 40)
        return (int)n;
    size_t k = 40;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return (int)k;
}

static int check_field(const field_t *f, const json_t *v, char *err, size_t errlen)
{
    const char *want = NULL;
    switch (f->type) {
    case LT_ANY: return 0;
    case LT_STRING: if (json_is_string(v)) return 0; want = "string"; break;
    case LT_INTEGER: if (json_is_integer(v)) return 0; want = "integer"; break;
    case LT_NUMBER: if (json_is_number(v)) return 0; want = "number"; break;
    case LT_BOOLEAN: if (json_is_boolean(v)) return 0; want = "boolean"; break;
    case LT_OBJECT: if (json_is_object(v)) return 0; want = "object"; break;
    case LT_ARRAY: if (json_is_array(v)) return 0; want = "array"; break;
    case LT_DATE:
    case LT_TIMESTAMP: {
        int date = f->type == LT_DATE;
        want = date ? "date (YYYY-MM-DD)" : "timestamp (RFC 3339, e.g. 2024-05-01T12:00:00Z)";
        if (!json_is_string(v))
            break;
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (date ? records_valid_date(s, n) : records_valid_timestamp(s, n))
            return 0;
        return fail(err, errlen, "%s: expected %s, got \"%.*s%s\"", f->name, want, quote_len(s, n),
                    s, (size_t)quote_len(s, n) < n ? "..." : "");
    }
    }
    return fail(err, errlen, "%s: expected %s, got %s", f->name, want, json_word(v));
}

/* Replaces non-ASCII bytes if err is not valid UTF-8 (it ends up in a JSON error body). */
static void err_sanitize(char *err)
{
    json_t *probe = json_string(err);
    if (probe != NULL) {
        json_decref(probe);
        return;
    }
    for (char *p = err; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
}

static int validate(const record_schema_t *s, const char *data, size_t len, char *err,
                    size_t errlen)
{
    json_error_t je;
    json_t *r = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (r == NULL)
        return fail(err, errlen, "invalid JSON: %s (column %d)", je.text, je.column);
    int rc = 0;
    if (!json_is_object(r)) {
        rc = fail(err, errlen, "expected a JSON object, got %s", json_word(r));
        goto out;
    }
    for (size_t i = 0; i < s->n; i++) {
        const field_t *f = &s->f[i];
        json_t *v = json_object_getn(r, f->name, f->len);
        if (v == NULL || json_is_null(v)) {
            if (f->required) {
                rc = fail(err, errlen, "%s: required%s", f->name, v ? ", got null" : "");
                goto out;
            }
            continue;   /* an optional property may be absent or null */
        }
        if ((rc = check_field(f, v, err, errlen)) != 0)
            goto out;
    }
out:
    json_decref(r);
    return rc;
}

int record_validate(const record_schema_t *s, const char *data, size_t len, char *err, size_t errlen)
{
    assert(s != NULL && err != NULL && errlen > 0);
    if (data == NULL) {
        data = "";
        len = 0;
    }
    int rc = validate(s, data, len, err, errlen);
    if (rc != 0)
        err_sanitize(err);
    return rc;
}

/* ================================================================ NDJSON bodies */

/* Bodies are handled in two passes so that the jansson parses can run on several cores:
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
    char err[512];
} chunk_t;

static void *chunk_run(void *arg)
{
    chunk_t *c = arg;
    c->bad = SIZE_MAX;
    for (size_t i = c->from; i < c->to; i++) {
        if ((i & 63) == 0 && atomic_load_explicit(c->first_bad, memory_order_relaxed) < i)
            break;   /* an earlier record is already invalid: that one is the answer */
        if (validate(c->s, c->recs[i].data, c->recs[i].len, c->err, sizeof c->err) != 0) {
            c->bad = i;
            size_t cur = atomic_load_explicit(c->first_bad, memory_order_relaxed);
            while (i < cur && !atomic_compare_exchange_weak(c->first_bad, &cur, i))
                ;
            break;
        }
    }
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

/* Validates recs[0, n); returns the index of the first invalid record (its error in err) or n. */
static size_t validate_all(const record_schema_t *s, const store_buf_t *recs, size_t n,
                           const records_limits_t *lim, char *err, size_t errlen)
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
        return fail(err, errlen, "body is %zu bytes; the limit is %zu", len, lim->max_body);
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
            snprintf(limit_err, sizeof limit_err, "line %zu: record is %zu bytes; the limit is %zu",
                     line, rlen, lim->max_record);
            break;
        }
        if (count == lim->max_records) {
            limit_status = 413;
            snprintf(limit_err, sizeof limit_err, "line %zu: more than %zu records in one request",
                     line, lim->max_records);
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            store_buf_t *nr = realloc(recs, ncap * sizeof *nr);
            if (nr == NULL) {
                *status = 500;
                fail(err, errlen, "out of memory splitting %zu records", count);
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
    size_t bad = count ? validate_all(s, recs, count, lim, verr, sizeof verr) : count;
    if (bad < count) {
        *status = 400;
        fail(err, errlen, "line %zu: %s", line_of(body, recs[bad].data), verr);
        err_sanitize(err);
        goto err;
    }
    if (limit_status != 0) {
        *status = limit_status;
        fail(err, errlen, "%s", limit_err);
        goto err;
    }
    if (count == 0) {
        *status = 400;
        fail(err, errlen, "body has no records (expected NDJSON: one JSON object per line)");
        goto err;
    }
    *out = recs;
    *n = count;
    return 0;
err:
    free(recs);
    return -1;
}
