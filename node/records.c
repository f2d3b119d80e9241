/* node/records.c - record validation: one record checked against a product's schema.
 *
 * Owns: the compact schema copied from a manifest (with a hash of its property names), checking
 * one record (one streaming yajl parse, no tree, the validator's state reused from record to
 * record), and the RFC 3339 date/timestamp checks. Splitting an NDJSON body into records and
 * validating it on several threads is node/records_body.c's.
 * Must not: store anything, or know about HTTP. */
#include "node/records.h"
#include "node/errtext.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

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
    int next_same;     /* the next field of the same name (a manifest from a peer may repeat one), -1 */
} field_t;

struct record_schema {
    field_t *f;
    size_t n;
    uint32_t *tab;     /* open addressing on the name: first field of that name + 1, 0 empty */
    size_t mask;       /* tab has mask + 1 slots (0 when n == 0) */
};

static uint32_t hash_bytes(const unsigned char *s, size_t n);

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
    if (s->n > 0) {
        size_t cap = 4;
        while (cap < s->n * 2)
            cap *= 2;
        if ((s->tab = calloc(cap, sizeof *s->tab)) == NULL)
            goto err;
        s->mask = cap - 1;
    }
    for (size_t i = 0; i < s->n; i++) {
        field_t *f = &s->f[i];
        f->next_same = -1;
        size_t j = hash_bytes((const unsigned char *)f->name, f->len) & s->mask;
        for (; s->tab[j] != 0; j = (j + 1) & s->mask) {
            field_t *g = &s->f[s->tab[j] - 1];
            if (g->len == f->len && memcmp(g->name, f->name, f->len) == 0)
                break;
        }
        if (s->tab[j] == 0) {
            s->tab[j] = (uint32_t)i + 1;
            continue;
        }
        field_t *g = &s->f[s->tab[j] - 1];   /* a repeated name: chain it after the others */
        while (g->next_same >= 0)
            g = &s->f[g->next_same];
        g->next_same = (int)i;
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
    free(s->tab);
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

/* A record is parsed once, as a stream (yajl callbacks), without building a tree. The answer is
 * the one a full parse followed by a schema check gives (the contract of the jansson version):
 * - invalid JSON wins: the parse always runs to the end of the record, and a type error seen on
 *   the way is reported only once the whole record proved to be JSON;
 * - of several bad fields, the first in schema order is named;
 * - JSON is taken as strictly as jansson takes it: UTF-8 checked in full (no overlong forms, no
 *   surrogates, nothing above U+10FFFF), no \u0000, no unpaired \uD800-\uDFFF escape, only
 *   space, tab, CR and LF between tokens, integers within int64, reals within double, values
 *   nested at most MAX_DEPTH deep, no duplicate key in any object, nothing but white space
 *   after the value. yajl is laxer on the first four and on the last: prescan() checks those
 *   before yajl runs, validate() checks the tail, the callbacks check the rest.
 *   One deliberate difference: jansson let a raw NUL byte right after a number or literal
 *   through ({"n":1<NUL>}); it is refused now, as every other control character is. */

#define MAX_DEPTH 2048   /* jansson's JSON_PARSER_MAX_DEPTH */

typedef enum { K_OBJECT, K_ARRAY, K_STRING, K_INTEGER, K_REAL, K_BOOLEAN, K_NULL, K_NONE } kind_t;

static const char *const k_kind_word[] = {"object", "array",   "string", "integer",
                                          "number", "boolean", "null",   "value"};

/* A field's state while a record is parsed. */
enum { FS_ABSENT = 0, FS_NULL, FS_OK, FS_BAD };

typedef struct {
    uint32_t gen, obj, hash, len;
    size_t off;                   /* the key's bytes in vctx_t.keys */
} key_ent_t;

/* Validation state for one thread, reused from record to record. */
typedef struct record_validator vctx_t;
struct record_validator {
    const record_schema_t *s;
    const char *data;
    size_t len;
    char *err;
    size_t errlen;
    unsigned char *state;         /* s->n field states */
    size_t bad;                   /* lowest field index with a type error (its message in err) */
    int cur;                      /* field named by the pending top-level key, -1 none */
    kind_t top;                   /* kind of the top-level value */
    size_t depth;                 /* open arrays and objects */
    uint32_t obj[MAX_DEPTH + 1];  /* serial of the object open at each depth (0: an array) */
    uint32_t next_obj;
    char jerr[96];                /* JSON-level error found by a callback */
    int oom;                      /* the last record failed for want of memory */
    yajl_handle h;
    int finishing;                /* in yajl_complete_parse: the value ran to the end */
    size_t end;                   /* offset just past the top-level value */
    /* keys of every object of the record but the top-level schema keys (those use state[]) */
    key_ent_t *kt;
    size_t kt_mask, kt_used;      /* kt has kt_mask + 1 slots */
    uint32_t gen;                 /* a slot whose gen differs is empty */
    char *keys;
    size_t keys_cap, keys_used;
};

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

/* 1-based character column of byte off of the record (jansson counts characters). */
static size_t column_of(const char *s, size_t off)
{
    size_t col = 0;
    for (size_t i = 0; i < off; i++)
        col += ((unsigned char)s[i] & 0xC0) != 0x80;
    return col;
}

/* ---------------------------------------------------------------- strictness prescan */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The \uXXXX escape at s (s[0] == '\\', s[1] == 'u'), or -1 when s lacks 4 hex digits. */
static long u_escape(const unsigned char *s, size_t n)
{
    if (n < 6)
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s (n > 0, s[0] >= 0x80), or 0 (jansson's rules). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;   /* a continuation byte, 0xC0/0xC1 (overlong) or 0xF5.. */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return len;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Offset of the first byte at or after i that is >= 0x80, a backslash or a control character
 * (< 0x20), or n. Eight bytes at a time: most records have none. */
static size_t next_special(const unsigned char *s, size_t n, size_t i)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t bs = w ^ (0x5Cu * ONES);
        uint64_t hit = w | ((w - 0x20u * ONES) & ~w) | ((bs - ONES) & ~bs);
        if (hit & HIGHS)
            break;
    }
    for (; i < n; i++)
        if (s[i] >= 0x80 || s[i] == '\\' || s[i] < 0x20)
            return i;
    return n;
}

/* What yajl lets through and jansson refuses: invalid UTF-8 anywhere, control characters other
 * than tab/CR/LF (yajl takes \v and \f as white space), \u0000 and unpaired surrogate escapes.
 * A backslash outside a string is left to yajl, which refuses it. */
static int prescan(const char *data, size_t len, char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)data;
    for (size_t i = next_special(s, len, 0); i < len; i = next_special(s, len, i)) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_len(s + i, len - i);
            if (k == 0)
                return errtext_set(err, errlen, "invalid JSON: invalid UTF-8 byte 0x%02x (column %zu)", c,
                            column_of(data, i) + 1);
            i += k;
        } else if (c < 0x20) {
            if (c != '\t' && c != '\r' && c != '\n')
                return errtext_set(err, errlen, "invalid JSON: control character 0x%02x (column %zu)", c,
                            column_of(data, i) + 1);
            i++;
        } else if (i + 1 < len && s[i + 1] == 'u') {
            long v = u_escape(s + i, len - i), v2 = -1;
            if (v < 0) {
                i += 2;   /* not 4 hex digits: yajl refuses it */
                continue;
            }
            if (v >= 0xD800 && v <= 0xDBFF && i + 7 < len && s[i + 6] == '\\' && s[i + 7] == 'u')
                v2 = u_escape(s + i + 6, len - i - 6);
            if (v == 0)
                return errtext_set(err, errlen, "invalid JSON: \\u0000 is not allowed (column %zu)",
                            column_of(data, i) + 1);
            if (v >= 0xD800 && v <= 0xDFFF && (v > 0xDBFF || v2 < 0xDC00 || v2 > 0xDFFF))
                return errtext_set(err, errlen, "invalid JSON: unpaired surrogate '\\u%04lX' (column %zu)", v,
                            column_of(data, i) + 1);
            i += v2 >= 0 ? 12 : 6;
        } else {
            i += 2;   /* \" \\ \/ \b ... (yajl checks which letters may follow) */
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- keys */

static uint32_t hash_bytes(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* The schema field named key (the first of the same name), or -1. */
static int field_find(const record_schema_t *s, const unsigned char *key, size_t n, uint32_t h)
{
    for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t slot = s->tab[i];
        if (slot == 0)
            return -1;
        const field_t *f = &s->f[slot - 1];
        if (f->len == n && memcmp(f->name, key, n) == 0)
            return (int)(slot - 1);
    }
}

static int keys_grow(vctx_t *c)
{
    size_t ncap = (c->kt_mask + 1) * 2;
    key_ent_t *nt = calloc(ncap, sizeof *nt);
    if (nt == NULL)
        return -1;
    for (size_t i = 0; i <= c->kt_mask; i++) {
        key_ent_t *e = &c->kt[i];
        if (e->gen != c->gen)
            continue;
        size_t j = (e->hash ^ e->obj * 0x9E3779B1u) & (ncap - 1);
        while (nt[j].gen == c->gen)
            j = (j + 1) & (ncap - 1);
        nt[j] = *e;
    }
    free(c->kt);
    c->kt = nt;
    c->kt_mask = ncap - 1;
    return 0;
}

/* 1 if the open object already has key, 0 after recording it, -1 when out of memory. */
static int key_seen(vctx_t *c, const unsigned char *key, size_t n, uint32_t h)
{
    uint32_t obj = c->obj[c->depth];
    if ((c->kt_used + 1) * 2 > c->kt_mask + 1 && keys_grow(c) != 0)
        return -1;
    size_t i = (h ^ obj * 0x9E3779B1u) & c->kt_mask;
    for (; c->kt[i].gen == c->gen; i = (i + 1) & c->kt_mask) {
        const key_ent_t *e = &c->kt[i];
        if (e->obj == obj && e->hash == h && e->len == n &&
            (n == 0 || memcmp(c->keys + e->off, key, n) == 0))
            return 1;
    }
    if (n > UINT32_MAX)
        return -1;
    if (c->keys_cap - c->keys_used < n) {
        size_t ncap = c->keys_cap ? c->keys_cap : 1024;
        while (ncap - c->keys_used < n)
            ncap *= 2;
        char *nk = realloc(c->keys, ncap);
        if (nk == NULL)
            return -1;
        c->keys = nk;
        c->keys_cap = ncap;
    }
    if (n > 0)
        memcpy(c->keys + c->keys_used, key, n);
    c->kt[i] = (key_ent_t){.gen = c->gen, .obj = obj, .hash = h, .len = (uint32_t)n,
                           .off = c->keys_used};
    c->keys_used += n;
    c->kt_used++;
    return 0;
}

/* ---------------------------------------------------------------- values */

/* Records a type error for field i if it is the first in schema order so far. */
__attribute__((format(printf, 3, 4)))
static void field_bad(vctx_t *c, size_t i, const char *fmt, ...)
{
    c->state[i] = FS_BAD;
    if (i > c->bad)
        return;
    c->bad = i;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

/* Checks one value (s/n: a string's bytes) against field i. */
static void field_check(vctx_t *c, size_t i, kind_t k, const char *s, size_t n)
{
    const field_t *f = &c->s->f[i];
    if (k == K_NULL) {
        c->state[i] = FS_NULL;
        return;
    }
    int ok = 0;
    const char *want = NULL;
    switch (f->type) {
    case LT_ANY: ok = 1; break;
    case LT_STRING: ok = k == K_STRING; want = "string"; break;
    case LT_INTEGER: ok = k == K_INTEGER; want = "integer"; break;
    case LT_NUMBER: ok = k == K_INTEGER || k == K_REAL; want = "number"; break;
    case LT_BOOLEAN: ok = k == K_BOOLEAN; want = "boolean"; break;
    case LT_OBJECT: ok = k == K_OBJECT; want = "object"; break;
    case LT_ARRAY: ok = k == K_ARRAY; want = "array"; break;
    case LT_DATE:
    case LT_TIMESTAMP: {
        int date = f->type == LT_DATE;
        want = date ? "date (YYYY-MM-DD)" : "timestamp (RFC 3339, e.g. 2024-05-01T12:00:00Z)";
        if (k != K_STRING)
            break;
        if (date ? records_valid_date(s, n) : records_valid_timestamp(s, n)) {
            ok = 1;
            break;
        }
        field_bad(c, i, "%s: expected %s, got \"%.*s%s\"", f->name, want, quote_len(s, n), s,
                  (size_t)quote_len(s, n) < n ? "..." : "");
        return;
    }
    }
    if (ok)
        c->state[i] = FS_OK;
    else
        field_bad(c, i, "%s: expected %s, got %s", f->name, want, k_kind_word[k]);
}

/* Notes where the top-level value ended: yajl takes an unterminated string after it for a
 * token cut by the end of input and does not call it trailing garbage; validate() does. */
static void top_done(vctx_t *c)
{
    c->end = c->finishing ? c->len : yajl_get_bytes_consumed(c->h);
}

/* Every value goes through here (0: stop the parse). jansson counts depth in values: the
 * top-level one is at 1, and nothing may be deeper than MAX_DEPTH, scalars included. */
static int on_value(vctx_t *c, kind_t k, const char *s, size_t n)
{
    if (c->depth >= MAX_DEPTH) {
        snprintf(c->jerr, sizeof c->jerr, "maximum parsing depth reached");
        return 0;
    }
    if (c->depth == 0) {
        c->top = k;
        if (k != K_OBJECT && k != K_ARRAY)
            top_done(c);
        return 1;
    }
    if (c->depth != 1 || c->cur < 0)
        return 1;
    for (int i = c->cur; i >= 0; i = c->s->f[i].next_same)
        field_check(c, (size_t)i, k, s, n);
    c->cur = -1;
    return 1;
}

static int cb_null(void *ctx)
{
    return on_value(ctx, K_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int v)
{
    (void)v;
    return on_value(ctx, K_BOOLEAN, NULL, 0);
}

/* The number's text decides integer or real as jansson does ('.', 'e' or 'E' make a real); an
 * integer beyond int64 or a real beyond double is invalid JSON, as it is to jansson. */
static int cb_number(void *ctx, const char *s, size_t n)
{
    vctx_t *c = ctx;
    int real = 0, exp = 0;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            real = 1;
        } else if (s[i] == 'e' || s[i] == 'E') {
            real = exp = 1;
            break;
        } else if (!real && s[i] >= '0' && s[i] <= '9') {
            digits++;   /* of the integer part */
        }
    }
    if ((!real && digits > 18) || (real && (exp || digits > 300))) {
        char small[64], *t = n < sizeof small ? small : malloc(n + 1);
        if (t == NULL) {
            c->oom = 1;
            snprintf(c->jerr, sizeof c->jerr, "out of memory");
            return 0;
        }
        memcpy(t, s, n);
        t[n] = '\0';
        errno = 0;
        int over;
        const char *what;
        if (real) {
            double d = strtod(t, NULL);
            over = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
            what = "real number overflow";
        } else {
            long long v = strtoll(t, NULL, 10);
            over = errno == ERANGE;
            what = v < 0 ? "too big negative integer" : "too big integer";
        }
        if (t != small)
            free(t);
        if (over) {
            snprintf(c->jerr, sizeof c->jerr, "%s", what);
            return 0;
        }
    }
    return on_value(c, real ? K_REAL : K_INTEGER, NULL, 0);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    return on_value(ctx, K_STRING, (const char *)s, n);
}

static int open_container(vctx_t *c, kind_t k)
{
    if (!on_value(c, k, NULL, 0))
        return 0;
    c->obj[++c->depth] = k == K_OBJECT ? ++c->next_obj : 0;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, K_OBJECT);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, K_ARRAY);
}

static int cb_end(void *ctx)
{
    vctx_t *c = ctx;
    assert(c->depth > 0);
    if (--c->depth == 0)
        top_done(c);
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t n)
{
    vctx_t *c = ctx;
    uint32_t h = hash_bytes(key, n);
    int dup;
    c->cur = -1;
    if (c->depth == 1 && c->s->mask != 0 && (c->cur = field_find(c->s, key, n, h)) >= 0) {
        dup = c->state[c->cur] != FS_ABSENT;
        c->state[c->cur] = FS_OK;   /* present; the value sets the real state */
    } else {
        dup = key_seen(c, key, n, h);
    }
    if (dup < 0) {
        c->oom = 1;
        snprintf(c->jerr, sizeof c->jerr, "out of memory");
        return 0;
    }
    if (dup) {
        snprintf(c->jerr, sizeof c->jerr, "duplicate object key \"%.*s%s\"", quote_len((const char *)key, n),
                 (const char *)key, (size_t)quote_len((const char *)key, n) < n ? "..." : "");
        return 0;
    }
    return 1;
}

static const yajl_callbacks k_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

/* ---------------------------------------------------------------- driver */

record_validator_t *record_validator_new(const record_schema_t *s)
{
    vctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->s = s;
    c->kt_mask = 63;
    c->kt = calloc(c->kt_mask + 1, sizeof *c->kt);
    if ((s->n > 0 && (c->state = malloc(s->n)) == NULL) || c->kt == NULL) {
        free(c->state);
        free(c->kt);
        free(c);
        return NULL;
    }
    return c;
}

int record_validator_oom(const record_validator_t *v)
{
    return v->oom;
}

void record_validator_free(record_validator_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    free((*cp)->state);
    free((*cp)->kt);
    free((*cp)->keys);
    free(*cp);
    *cp = NULL;
}

/* yajl's short reason ("lexical error: invalid char in json text.\n" -> "invalid char in json
 * text") in buf. */
static void yajl_reason(yajl_handle h, char *buf, size_t n)
{
    unsigned char *e = yajl_get_error(h, 0, NULL, 0);
    const char *r = e ? (const char *)e : "unknown error";
    const char *colon = strstr(r, "error: ");
    if (colon != NULL)
        r = colon + 7;
    size_t k = strlen(r);
    while (k > 0 && (r[k - 1] == '\n' || r[k - 1] == ' ' || r[k - 1] == '.'))
        k--;
    snprintf(buf, n, "%.*s", (int)k, r);
    if (e != NULL)
        yajl_free_error(h, e);
}

int record_validator_check(record_validator_t *c, const char *data, size_t len, char *err,
                           size_t errlen)
{
    const record_schema_t *s = c->s;
    if (prescan(data, len, err, errlen) != 0)
        return -1;
    c->data = data;
    c->len = len;
    c->err = err;
    c->errlen = errlen;
    if (s->n > 0)
        memset(c->state, FS_ABSENT, s->n);
    c->bad = SIZE_MAX;
    c->cur = -1;
    c->top = K_NONE;
    c->depth = 0;
    c->obj[0] = 0;
    c->next_obj = 0;
    c->jerr[0] = '\0';
    c->oom = 0;
    c->kt_used = 0;
    c->keys_used = 0;
    if (++c->gen == 0) {   /* wrapped: clear the slots for real */
        memset(c->kt, 0, (c->kt_mask + 1) * sizeof *c->kt);
        c->gen = 1;
    }

    c->finishing = 0;
    c->end = len;
    yajl_handle h = c->h = yajl_alloc(&k_callbacks, NULL, c);
    if (h == NULL) {
        c->oom = 1;
        return errtext_set(err, errlen, "out of memory parsing a record");
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)data, len);
    size_t at = yajl_get_bytes_consumed(h);
    if (st == yajl_status_ok) {
        c->finishing = 1;
        st = yajl_complete_parse(h);
        at = len;
    }
    if (st != yajl_status_ok) {
        char why[128];
        if (c->jerr[0] != '\0')
            snprintf(why, sizeof why, "%s", c->jerr);
        else
            yajl_reason(h, why, sizeof why);
        yajl_free(h);
        return errtext_set(err, errlen, "invalid JSON: %s (column %zu)", why,
                    column_of(data, at < len ? at : len));
    }
    yajl_free(h);
    c->h = NULL;
    for (size_t i = c->end; i < len; i++)
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
            return errtext_set(err, errlen, "invalid JSON: trailing garbage (column %zu)",
                        column_of(data, i) + 1);

    if (c->top != K_OBJECT)
        return errtext_set(err, errlen, "expected a JSON object, got %s", k_kind_word[c->top]);
    for (size_t i = 0; i < s->n; i++) {
        if (i == c->bad)
            return -1;   /* its message is in err already */
        const field_t *f = &s->f[i];
        if (f->required && (c->state[i] == FS_ABSENT || c->state[i] == FS_NULL))
            return errtext_set(err, errlen, "%s: required%s", f->name,
                        c->state[i] == FS_NULL ? ", got null" : "");
    }
    return 0;
}

int record_validate(const record_schema_t *s, const char *data, size_t len, char *err, size_t errlen)
{
    assert(s != NULL && err != NULL && errlen > 0);
    if (data == NULL) {
        data = "";
        len = 0;
    }
    vctx_t *c = record_validator_new(s);
    if (c == NULL)
        return errtext_set(err, errlen, "out of memory validating a record");
    int rc = record_validator_check(c, data, len, err, errlen);
    record_validator_free(&c);
    if (rc != 0)
        errtext_utf8(err);
    return rc;
}
