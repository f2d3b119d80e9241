/* tests/test_records.c - record validation and NDJSON splitting (node/records.c).
 *
 * Owns: a table of records and the error each gets (types, calendar dates, RFC 3339 timestamps,
 * nulls, missing fields, non-objects, duplicate keys, and the JSON the streaming parser must
 * refuse as strictly as a full jansson parse did: bad UTF-8, bad escapes, integer and real
 * overflow, nesting depth, trailing garbage), which error wins when a record has several,
 * records_split with its limits, line numbers, CRLF and blank lines, and the sample NDJSON files
 * in examples/.
 * Must not: touch storage or the network. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/manifest.h"
#include "node/records.h"
#include "tests/fixtures.h"

/* ---------------------------------------------------------------- helpers */

static const char k_all_types[] =
    "name: all-types\ndomain: test\nversion: 1.0.0\n"
    "owners: {business: a@example.com, technical: b@example.com}\n"
    "schema:\n"
    "  - {name: id, logicalType: string, required: true, primaryKey: true}\n"
    "  - {name: n, logicalType: integer, required: true}\n"
    "  - {name: x, logicalType: number}\n"
    "  - {name: b, logicalType: boolean}\n"
    "  - {name: d, logicalType: date}\n"
    "  - {name: ts, logicalType: timestamp}\n"
    "  - {name: o, logicalType: object}\n"
    "  - {name: a, logicalType: array}\n"
    "  - {name: s, logicalType: string}\n";

/* A schema straight from properties, as a manifest from a peer carries them: no manifest_parse
 * rules applied (unknown types, repeated names). */
typedef struct {
    const char *name, *type;
    int required;
} prop_t;

static record_schema_t *schema_of(const prop_t *props, size_t n)
{
    Trib__SchemaProperty sp[4], *spp[4];
    cr_assert_leq(n, 4);
    for (size_t i = 0; i < n; i++) {
        trib__schema_property__init(&sp[i]);
        sp[i].name = (char *)props[i].name;
        sp[i].logical_type = (char *)props[i].type;
        sp[i].required = props[i].required;
        spp[i] = &sp[i];
    }
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.n_schema = n;
    m.schema = spp;
    record_schema_t *s = record_schema_new(&m);
    cr_assert_not_null(s);
    return s;
}

static record_schema_t *schema_from(const char *yaml)
{
    char err[512];
    Trib__Manifest *m = manifest_parse(yaml, strlen(yaml), NULL, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    record_schema_t *s = record_schema_new(m);
    manifest_free(&m);   /* the schema keeps its own copy */
    cr_assert_not_null(s);
    return s;
}

/* ---------------------------------------------------------------- one record */

typedef struct {
    const char *rec;
    const char *want;   /* NULL: valid; else a substring of the error */
} rec_case_t;

#define OK NULL
static const rec_case_t k_recs[] = {
    {"{\"id\":\"a\",\"n\":1}", OK},
    {"{\"id\":\"a\",\"n\":-9223372036854775808,\"extra\":{\"kept\":[1,2]}}", OK},
    /* required */
    {"{\"n\":1}", "id: required"},
    {"{\"id\":null,\"n\":1}", "id: required, got null"},
    {"{\"id\":\"a\"}", "n: required"},
    {"{}", "id: required"},
    /* scalar types */
    {"{\"id\":\"a\",\"n\":\"5\"}", "n: expected integer, got string"},
    {"{\"id\":\"a\",\"n\":1.5}", "n: expected integer, got number"},
    {"{\"id\":\"a\",\"n\":1e3}", "n: expected integer, got number"},
    {"{\"id\":\"a\",\"n\":true}", "n: expected integer, got boolean"},
    {"{\"id\":7,\"n\":1}", "id: expected string, got integer"},
    {"{\"id\":\"a\",\"n\":1,\"x\":1}", OK},
    {"{\"id\":\"a\",\"n\":1,\"x\":-0.25e-3}", OK},
    {"{\"id\":\"a\",\"n\":1,\"x\":\"1\"}", "x: expected number, got string"},
    {"{\"id\":\"a\",\"n\":1,\"b\":false}", OK},
    {"{\"id\":\"a\",\"n\":1,\"b\":1}", "b: expected boolean, got integer"},
    {"{\"id\":\"a\",\"n\":1,\"o\":{}}", OK},
    {"{\"id\":\"a\",\"n\":1,\"o\":[]}", "o: expected object, got array"},
    {"{\"id\":\"a\",\"n\":1,\"a\":[]}", OK},
    {"{\"id\":\"a\",\"n\":1,\"a\":{}}", "a: expected array, got object"},
    {"{\"id\":\"a\",\"n\":1,\"s\":null}", OK},   /* optional: null means absent */
    /* dates */
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-02-29\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2000-02-29\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-12-31\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-02-30\"}", "d: expected date (YYYY-MM-DD), got \"2024-02-30\""},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2023-02-29\"}", "d: expected date (YYYY-MM-DD), got \"2023-02-29\""},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"1900-02-29\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-04-31\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-13-01\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-00-10\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-01-00\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-1-01\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024/01/01\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":\"2024-01-01T00:00:00Z\"}", "d: expected date"},
    {"{\"id\":\"a\",\"n\":1,\"d\":20240101}", "d: expected date (YYYY-MM-DD), got integer"},
    /* timestamps */
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00Z\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01t12:00:00z\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01 12:00:00+02:00\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00.123456-05:30\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-02-29T23:59:59.9+14:00\"}", OK},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2016-12-31T23:59:60Z\"}", OK},   /* leap second */
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00\"}", "ts: expected timestamp (RFC 3339"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T24:00:00Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:60:00Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:61Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-02-30T00:00:00Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00.Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00+2:00\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00+0200\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00+24:00\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00+02:60\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00:00Z \"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01X12:00:00Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":\"2024-05-01T12:00Z\"}", "ts: expected timestamp"},
    {"{\"id\":\"a\",\"n\":1,\"ts\":1714564800}", "ts: expected timestamp (RFC 3339, e.g. 2024-05-01T12:00:00Z), got integer"},
    /* not an object, not JSON */
    {"[1,2]", "expected a JSON object, got array"},
    {"42", "expected a JSON object, got integer"},
    {"\"s\"", "expected a JSON object, got string"},
    {"null", "expected a JSON object, got null"},
    {"{\"id\":\"a\",\"id\":\"b\",\"n\":1}", "invalid JSON: duplicate object key"},
    {"{\"id\":\"a\",\"n\":1", "invalid JSON: "},
    {"{\"id\":\"a\",\"n\":1} {}", "invalid JSON: "},
    {"", "invalid JSON: "},
    {"{\"id\":\"a\",\"n\":1,\"x\":NaN}", "invalid JSON: "},
    /* strict JSON, as jansson had it (yajl alone is laxer on each of these) */
    {"{\"id\":\"a\",\"n\":1,\"o\":{\"k\":1,\"k\":2}}", "invalid JSON: duplicate object key \"k\" (column 30)"},
    {"{\"id\":\"a\",\"n\":1,\"o\":{\"k\":1,\"j\":{\"k\":2}},\"a\":[{\"k\":1},{\"k\":1}]}", OK},
    {"{\"id\":\"a\",\"\\u006e\":1,\"n\":2}", "invalid JSON: duplicate object key \"n\""},
    {"{\"id\":\"a\",\"n\":1,\"z\":1,\"z\":1}", "invalid JSON: duplicate object key \"z\""},
    {"{\"id\":\"a\",\"n\":null,\"n\":1}", "invalid JSON: duplicate object key \"n\""},
    {"{\"id\":\"a\",\"n\":1,\"\":{\"\":1},\"q\":{\"\":2}}", OK},
    {"{\"id\":\"a\",\"n\":1,\"\":1,\"\":2}", "invalid JSON: duplicate object key \"\""},
    {"{\"\\u0069d\":\"a\",\"n\":1}", OK},   /* an escaped key is the decoded name */
    {"{\"id\":\"\\ud83d\\ude00 \\u00e9\",\"n\":1}", OK},
    {"{\"id\":\"\\ud800\",\"n\":1}", "invalid JSON: unpaired surrogate '\\uD800'"},
    {"{\"id\":\"\\ud800\\u0041\",\"n\":1}", "invalid JSON: unpaired surrogate"},
    {"{\"id\":\"\\udc00\",\"n\":1}", "invalid JSON: unpaired surrogate '\\uDC00'"},
    {"{\"id\":\"a\\u0000b\",\"n\":1}", "invalid JSON: \\u0000 is not allowed (column 9)"},
    {"{\"id\":\"\\\\u0000\",\"n\":1}", OK},   /* an escaped backslash, then text */
    {"{\"id\":\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\",\"n\":1}", OK},
    {"{\"id\":\"\xc0\x80\",\"n\":1}", "invalid JSON: invalid UTF-8 byte 0xc0"},        /* overlong */
    {"{\"id\":\"\xe0\x80\x80\",\"n\":1}", "invalid JSON: invalid UTF-8 byte 0xe0"},    /* overlong */
    {"{\"id\":\"\xed\xa0\x80\",\"n\":1}", "invalid JSON: invalid UTF-8 byte 0xed"},    /* surrogate */
    {"{\"id\":\"\xf4\x90\x80\x80\",\"n\":1}", "invalid JSON: invalid UTF-8 byte 0xf4"},
    {"{\"id\":\"\xe9t\xe9\",\"n\":1}", "invalid JSON: invalid UTF-8 byte 0xe9 (column 8)"},
    {"{\"id\":\"a\",\x0b\"n\":1}", "invalid JSON: control character 0x0b (column 11)"},
    {"{\"id\":\"a\",\x0c\"n\":1}", "invalid JSON: control character 0x0c"},
    {"{\"id\":\"a\tb\",\"n\":1}", "invalid JSON: "},
    {" {\t\"id\" :\"a\" ,\r\"n\": 1 } ", OK},
    {"{\"id\":\"a\",\"n\":9223372036854775807}", OK},
    {"{\"id\":\"a\",\"n\":9223372036854775808}", "invalid JSON: too big integer (column 33)"},
    {"{\"id\":\"a\",\"n\":-9223372036854775809}", "invalid JSON: too big negative integer"},
    {"{\"id\":\"a\",\"n\":1,\"q\":[123456789012345678901234567890]}", "invalid JSON: too big integer"},
    {"{\"id\":\"a\",\"n\":1,\"x\":1.7976931348623157e308}", OK},
    {"{\"id\":\"a\",\"n\":1,\"x\":1e309}", "invalid JSON: real number overflow"},
    {"{\"id\":\"a\",\"n\":1,\"x\":-1e-400}", OK},   /* underflow is not an error */
    {"{\"id\":\"a\",\"n\":-0}", OK},
    {"{\"id\":\"a\",\"n\":-0.0}", "n: expected integer, got number"},
    {"{\"id\":\"a\",\"n\":1} \"", "invalid JSON: trailing garbage (column 18)"},
    {"{\"id\":\"a\",\"n\":1}\"x", "invalid JSON: trailing garbage"},
    {"42 \"", "invalid JSON: trailing garbage"},
    {"{\"id\":\"a\",\"n\":1,}", "invalid JSON: "},
    {"[1,]", "invalid JSON: "},
    {"{\"id\":\"a\",\"n\":01}", "invalid JSON: "},
    {"/**/{\"id\":\"a\",\"n\":1}", "invalid JSON: "},
    /* a type error is reported only if the whole record is JSON */
    {"{\"id\":7,\"n\":1,\"x\":", "invalid JSON: "},
    {"{\"id\":7,\"n\":1,\"id\":8}", "invalid JSON: duplicate object key"},
};

Test(records, validate_table)
{
    record_schema_t *s = schema_from(k_all_types);
    for (size_t i = 0; i < sizeof k_recs / sizeof k_recs[0]; i++) {
        char err[256] = "";
        int rc = record_validate(s, k_recs[i].rec, strlen(k_recs[i].rec), err, sizeof err);
        if (k_recs[i].want == NULL) {
            cr_expect_eq(rc, 0, "case %zu: %s refused: %s", i, k_recs[i].rec, err);
        } else {
            cr_expect_eq(rc, -1, "case %zu: %s accepted, wanted '%s'", i, k_recs[i].rec, k_recs[i].want);
            cr_expect(strstr(err, k_recs[i].want) != NULL, "case %zu: %s\n  error '%s'\n  lacks '%s'", i,
                      k_recs[i].rec, err, k_recs[i].want);
        }
    }
    record_schema_free(&s);
    cr_expect_null(s);
    record_schema_free(&s);
    record_schema_free(NULL);
}

Test(records, long_bad_value_is_cut_on_a_character_boundary)
{
    record_schema_t *s = schema_from(k_all_types);
    /* 39 ASCII bytes then 'é' (2 bytes) straddling the 40-byte cut. */
    const char *rec = "{\"id\":\"a\",\"n\":1,\"d\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzz\"}";
    char err[256];
    cr_assert_eq(record_validate(s, rec, strlen(rec), err, sizeof err), -1);
    cr_expect(strstr(err, "got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"") != NULL, "%s", err);
    json_t *j = json_string(err);   /* still valid UTF-8: it goes into a JSON error body */
    cr_expect_not_null(j);
    json_decref(j);
    record_schema_free(&s);
}

Test(records, unknown_logical_type_accepts_anything)
{
    /* A manifest from a newer peer may use a type this version does not know. */
    record_schema_t *s = schema_of((const prop_t[]){{"geo", "geography", 1}, {"k", "integer", 0}}, 2);
    char err[256];
    cr_expect_eq(record_validate(s, "{\"geo\":[1,2]}", 13, err, sizeof err), 0, "%s", err);
    cr_expect_eq(record_validate(s, "{\"k\":1}", 7, err, sizeof err), -1);
    cr_expect_str_eq(err, "geo: required");
    cr_expect_eq(record_validate(s, "{\"geo\":1,\"k\":\"x\"}", 17, err, sizeof err), -1);
    cr_expect_str_eq(err, "k: expected integer, got string");
    record_schema_free(&s);
    cr_expect_null(record_schema_new(NULL));
}

/* Several problems in one record: the first property in schema order is named, wherever it is
 * in the record, and a missing required property counts where it stands in the schema. */
Test(records, first_problem_in_schema_order_wins)
{
    static const struct {
        const char *rec, *want;
    } cases[] = {
        {"{\"s\":1,\"b\":2,\"n\":\"x\",\"id\":\"a\"}", "n: expected integer, got string"},
        {"{\"s\":1,\"b\":2,\"n\":5,\"id\":\"a\"}", "b: expected boolean, got integer"},
        {"{\"s\":1,\"b\":2,\"n\":5}", "id: required"},
        {"{\"ts\":\"no\",\"d\":\"2024-02-30\",\"id\":\"a\",\"n\":1}", "d: expected date (YYYY-MM-DD), got \"2024-02-30\""},
        {"{\"ts\":\"no\",\"id\":null,\"n\":1}", "id: required, got null"},
    };
    record_schema_t *s = schema_from(k_all_types);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        cr_expect_eq(record_validate(s, cases[i].rec, strlen(cases[i].rec), err, sizeof err), -1, "case %zu", i);
        cr_expect_str_eq(err, cases[i].want, "case %zu", i);
    }
    record_schema_free(&s);
}

/* jansson's limit: values nested at most 2048 deep, the top-level value at depth 1. */
Test(records, nesting_depth_limit)
{
    record_schema_t *s = schema_from(k_all_types);
    static const char head[] = "{\"id\":\"a\",\"n\":1,\"a\":";   /* the array is at depth 2 */
    for (size_t depth = 2047; depth <= 2049; depth++) {
        for (int scalar = 0; scalar <= 1; scalar++) {
            /* arrays at depths 2..depth, and inside the last one a scalar at depth + 1, or nothing */
            size_t arrays = depth - 1, cap = sizeof head + 2 * arrays + 8, n = 0;
            char *rec = malloc(cap);
            cr_assert_not_null(rec);
            memcpy(rec, head, sizeof head - 1);
            n = sizeof head - 1;
            memset(rec + n, '[', arrays);
            n += arrays;
            if (scalar)
                rec[n++] = '7';
            memset(rec + n, ']', arrays);
            n += arrays;
            rec[n++] = '}';
            size_t deepest = depth + (size_t)scalar;
            char err[256] = "";
            int rc = record_validate(s, rec, n, err, sizeof err);
            if (deepest <= 2048) {
                cr_expect_eq(rc, 0, "deepest value at %zu: %s", deepest, err);
            } else {
                cr_expect_eq(rc, -1, "deepest value at %zu accepted", deepest);
                cr_expect(strstr(err, "invalid JSON: maximum parsing depth reached") != NULL, "%s", err);
            }
            free(rec);
        }
    }
    record_schema_free(&s);
}

/* A manifest from a peer is not checked for repeated names here: every property of the name
 * is checked, as before. */
Test(records, repeated_property_name_checks_each)
{
    record_schema_t *s = schema_of((const prop_t[]){{"v", "number", 0}, {"v", "integer", 1}}, 2);
    char err[256] = "";
    cr_expect_eq(record_validate(s, "{\"v\":1}", 7, err, sizeof err), 0, "%s", err);
    cr_expect_eq(record_validate(s, "{\"v\":1.5}", 9, err, sizeof err), -1);
    cr_expect_str_eq(err, "v: expected integer, got number");
    cr_expect_eq(record_validate(s, "{}", 2, err, sizeof err), -1);
    cr_expect_str_eq(err, "v: required");
    record_schema_free(&s);
}

/* ---------------------------------------------------------------- NDJSON bodies */

static const char k_simple[] =
    "name: simple\ndomain: test\nversion: 1.0.0\n"
    "owners: {business: a@example.com, technical: b@example.com}\n"
    "schema:\n"
    "  - {name: id, logicalType: integer, required: true}\n"
    "  - {name: amount_minor, logicalType: integer}\n";

static int split(const record_schema_t *s, const char *body, size_t len, const records_limits_t *lim,
                 store_buf_t **out, size_t *n, int *status, char *err, size_t errlen)
{
    return records_split(s, body, len, lim, out, n, status, err, errlen);
}

Test(records, bad_record_in_the_middle_names_its_line)
{
    record_schema_t *s = schema_from(k_simple);
    size_t cap = 1000 * 64, off = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    for (int i = 1; i <= 1000; i++) {
        if (i == 500)
            off += (size_t)snprintf(body + off, cap - off, "{\"id\":%d,\"amount_minor\":\"12.50\"}\n", i);
        else
            off += (size_t)snprintf(body + off, cap - off, "{\"id\":%d,\"amount_minor\":%d}\n", i, i * 3);
    }
    store_buf_t *out = (store_buf_t *)1;
    size_t n = 99;
    int status = 0;
    char err[256];
    cr_assert_eq(split(s, body, off, NULL, &out, &n, &status, err, sizeof err), -1);
    cr_expect_eq(status, 400);
    cr_expect_str_eq(err, "line 500: amount_minor: expected integer, got string");
    cr_expect_null(out);
    cr_expect_eq(n, 0);
    free(body);
    record_schema_free(&s);
}

Test(records, thousand_good_records_point_into_the_body)
{
    record_schema_t *s = schema_from(k_simple);
    size_t cap = 1000 * 64, off = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    for (int i = 1; i <= 1000; i++)
        off += (size_t)snprintf(body + off, cap - off, "{\"id\":%d}\n", i);
    store_buf_t *out = NULL;
    size_t n = 0;
    int status = -1;
    char err[256];
    cr_assert_eq(split(s, body, off, NULL, &out, &n, &status, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1000);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        int w = snprintf(want, sizeof want, "{\"id\":%zu}", i + 1);
        cr_assert_eq(out[i].len, (size_t)w);
        cr_assert(memcmp(out[i].data, want, (size_t)w) == 0);
        cr_assert((const char *)out[i].data >= body && (const char *)out[i].data < body + off);
    }
    free(out);
    free(body);
    record_schema_free(&s);
}

Test(records, crlf_blank_lines_and_no_final_newline)
{
    record_schema_t *s = schema_from(k_simple);
    const char body[] = "\r\n{\"id\":1}\r\n   \r\n\t\n  {\"id\":2}  \r\n\n{\"id\":3}";
    store_buf_t *out = NULL;
    size_t n = 0;
    int status = 0;
    char err[256];
    cr_assert_eq(split(s, body, sizeof body - 1, NULL, &out, &n, &status, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    const char *want[] = {"{\"id\":1}", "{\"id\":2}", "{\"id\":3}"};
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(out[i].len, strlen(want[i]));
        cr_expect(memcmp(out[i].data, want[i], strlen(want[i])) == 0, "record %zu", i);
    }
    free(out);

    /* Blank lines still count: the bad record is on line 6. */
    const char bad[] = "{\"id\":1}\r\n\r\n\n  \n{\"id\":2}\r\n{\"id\":\"three\"}\r\n";
    cr_assert_eq(split(s, bad, sizeof bad - 1, NULL, &out, &n, &status, err, sizeof err), -1);
    cr_expect_eq(status, 400);
    cr_expect_str_eq(err, "line 6: id: expected integer, got string");
    record_schema_free(&s);
}

typedef struct {
    const char *body;
    records_limits_t lim;
    int status;
    const char *want;   /* exact error */
} split_case_t;

Test(records, split_limits_and_empty_bodies)
{
    static const split_case_t cases[] = {
        {"{\"id\":1}\n{\"id\":2}\n", {.max_body = 17, .max_record = 100, .max_records = 10}, 413,
         "body is 18 bytes; the limit is 17"},
        {"{\"id\":1}\n{\"id\":2}\n", {.max_body = 18, .max_record = 100, .max_records = 10}, 0, NULL},
        {"{\"id\":1}\n{\"id\":22222}\n", {.max_body = 100, .max_record = 10, .max_records = 10}, 413,
         "line 2: record is 12 bytes; the limit is 10 (the node's --max-record-kb)"},
        {"{\"id\":1}\n  {\"id\":2}   \n", {.max_body = 100, .max_record = 8, .max_records = 10}, 0, NULL},
        {"{\"id\":1}\n{\"id\":2}\n\n{\"id\":3}\n{\"id\":4}\n", {.max_body = 100, .max_record = 100, .max_records = 3},
         413, "line 5: more than 3 records in one request (the node's --max-records): send them in several"},
        {"{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n", {.max_body = 100, .max_record = 100, .max_records = 3}, 0, NULL},
        {"", {.max_body = 100, .max_record = 100, .max_records = 3}, 400,
         "body has no records (expected NDJSON: one JSON object per line)"},
        {"\n \r\n\t\n", {.max_body = 100, .max_record = 100, .max_records = 3}, 400,
         "body has no records (expected NDJSON: one JSON object per line)"},
        {"{\"id\":1}\n[1]\n", {.max_body = 100, .max_record = 100, .max_records = 3}, 400,
         "line 2: expected a JSON object, got array"},
        {"{\"id\":1}\n{\"id\":2}{\"id\":3}\n", {.max_body = 100, .max_record = 100, .max_records = 3}, 400,
         "line 2: invalid JSON: trailing garbage (column 9)"},
    };
    record_schema_t *s = schema_from(k_simple);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        store_buf_t *out = NULL;
        size_t n = 0;
        int status = 0;
        char err[256] = "";
        int rc = split(s, cases[i].body, strlen(cases[i].body), &cases[i].lim, &out, &n, &status, err,
                       sizeof err);
        if (cases[i].want == NULL) {
            cr_expect_eq(rc, 0, "case %zu: %s", i, err);
            cr_expect_gt(n, 0, "case %zu", i);
        } else {
            cr_expect_eq(rc, -1, "case %zu accepted", i);
            cr_expect_eq(status, cases[i].status, "case %zu: status %d", i, status);
            cr_expect_str_eq(err, cases[i].want, "case %zu", i);
            cr_expect_null(out);
        }
        free(out);
    }
    record_schema_free(&s);
}

Test(records, default_limits)
{
    cr_expect_eq(records_default_limits.max_body, 64u << 20);
    cr_expect_eq(records_default_limits.max_record, 1u << 20);
    cr_expect_eq(records_default_limits.max_records, 100000);
    /* A record over 1 MiB is refused with the default limits (lim == NULL). */
    record_schema_t *s = schema_from(k_simple);
    size_t big = (1u << 20) + 20;
    char *body = malloc(big + 1);
    cr_assert_not_null(body);
    int w = snprintf(body, big + 1, "{\"id\":1,\"pad\":\"");
    memset(body + w, 'x', big - (size_t)w - 2);
    memcpy(body + big - 2, "\"}", 2);
    store_buf_t *out = NULL;
    size_t n = 0;
    int status = 0;
    char err[256];
    cr_assert_eq(split(s, body, big, NULL, &out, &n, &status, err, sizeof err), -1);
    cr_expect_eq(status, 413);
    cr_expect_str_eq(err, "line 1: record is 1048596 bytes; the limit is 1048576 (the node's --max-record-kb)");
    free(body);
    record_schema_free(&s);
}

Test(records, example_records_match_their_manifests)
{
    static const char *products[] = {"settled-transactions", "payment-disputes", "growth-experiments",
                                     "signup-funnel", "listening-history", "track-plays"};
    static const size_t counts[] = {20, 10, 10, 10, 10, 10};
    for (size_t i = 0; i < sizeof products / sizeof products[0]; i++) {
        char file[128], err[512];
        size_t ylen, nlen;
        snprintf(file, sizeof file, "%s.yaml", products[i]);
        char *yaml = fx_read_example(file, &ylen);
        cr_assert_not_null(yaml, "cannot read examples/%s", file);
        snprintf(file, sizeof file, "%s.ndjson", products[i]);
        char *nd = fx_read_example(file, &nlen);
        cr_assert_not_null(nd, "cannot read examples/%s", file);
        Trib__Manifest *m = manifest_parse(yaml, ylen, NULL, err, sizeof err);
        cr_assert_not_null(m, "%s: %s", products[i], err);
        record_schema_t *s = record_schema_new(m);
        cr_assert_not_null(s);
        store_buf_t *out = NULL;
        size_t n = 0;
        int status = 0;
        cr_expect_eq(records_split(s, nd, nlen, NULL, &out, &n, &status, err, sizeof err), 0, "%s: %s",
                     products[i], err);
        cr_expect_eq(n, counts[i], "%s", products[i]);
        free(out);
        record_schema_free(&s);
        manifest_free(&m);
        free(yaml);
        free(nd);
    }
}

/* Large bodies are validated on several threads; the answer must be the serial one. */
typedef struct {
    size_t bad[3];          /* 1-based lines holding an invalid record (0: none) */
    size_t big_line;        /* line holding an over-long record (0: none) */
    int status;
    const char *want;
} par_case_t;

static char *big_body(size_t lines, const par_case_t *c, size_t *len)
{
    size_t cap = lines * 48 + 256, off = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    for (size_t i = 1; i <= lines; i++) {
        int bad = i == c->bad[0] || i == c->bad[1] || i == c->bad[2];
        if (i == c->big_line)
            off += (size_t)snprintf(body + off, cap - off, "{\"id\":%zu,\"pad\":\"%080d\"}\n", i, 0);
        else if (bad)
            off += (size_t)snprintf(body + off, cap - off, "{\"id\":%zu,\"amount_minor\":\"x%zu\"}\n", i, i);
        else if (i % 1000 == 0)
            off += (size_t)snprintf(body + off, cap - off, "\r\n");   /* blank lines still count */
        else
            off += (size_t)snprintf(body + off, cap - off, "{\"id\":%zu,\"amount_minor\":%zu}\r\n", i, i);
    }
    *len = off;
    return body;
}

Test(records, parallel_validation_gives_the_serial_answer)
{
    static const par_case_t cases[] = {
        {{0}, 0, 0, NULL},
        {{19999, 0, 0}, 0, 400, "line 19999: amount_minor: expected integer, got string"},
        {{2, 0, 0}, 0, 400, "line 2: amount_minor: expected integer, got string"},
        {{15001, 7003, 12000 + 1}, 0, 400, "line 7003: amount_minor: expected integer, got string"},
        {{9000 + 1, 0, 0}, 15000, 400, "line 9001: amount_minor: expected integer, got string"},
        {{16000 + 1, 0, 0}, 5000 + 1, 413,
         "line 5001: record is 100 bytes; the limit is 64 (the node's --max-record-kb)"},
    };
    record_schema_t *s = schema_from(k_simple);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *body = big_body(20000, &cases[i], &len);
        for (size_t threads = 1; threads <= 4; threads += 3) {
            records_limits_t lim = {.max_body = 1u << 24, .max_record = 64, .max_records = 100000,
                                    .threads = threads};
            store_buf_t *out = NULL;
            size_t n = 0;
            int status = 0;
            char err[256] = "";
            int rc = records_split(s, body, len, &lim, &out, &n, &status, err, sizeof err);
            if (cases[i].want == NULL) {
                cr_expect_eq(rc, 0, "case %zu threads %zu: %s", i, threads, err);
                cr_expect_eq(n, 20000 - 20, "case %zu threads %zu", i, threads);
                cr_expect(n > 0 && memcmp(out[n - 1].data, "{\"id\":19999,", 12) == 0);
            } else {
                cr_expect_eq(rc, -1, "case %zu threads %zu accepted", i, threads);
                cr_expect_eq(status, cases[i].status, "case %zu threads %zu", i, threads);
                cr_expect_str_eq(err, cases[i].want, "case %zu threads %zu: %s", i, threads, err);
            }
            free(out);
        }
        free(body);
    }
    record_schema_free(&s);
}

/* ---------------------------------------------------------------- predicates */

Test(records, rfc3339_predicates)
{
    cr_expect(records_valid_date("2024-02-29", 10));
    cr_expect(!records_valid_date("2024-02-29x", 11));
    cr_expect(!records_valid_date("2024-02-2", 9));
    cr_expect(!records_valid_date("0000-00-00", 10));
    cr_expect(records_valid_date("0000-01-01", 10));
    cr_expect(records_valid_timestamp("1985-04-12T23:20:50.52Z", 23));
    cr_expect(records_valid_timestamp("1996-12-19T16:39:57-08:00", 25));
    cr_expect(records_valid_timestamp("1990-12-31T15:59:60-08:00", 25));
    cr_expect(records_valid_timestamp("1937-01-01T12:00:27.87+00:20", 28));
    cr_expect(!records_valid_timestamp("1937-01-01T12:00:27.87+00:20", 27));   /* length bound */
    cr_expect(!records_valid_timestamp("1985-04-12T23:20:50", 19));
    cr_expect(!records_valid_timestamp("1985-04-12", 10));
}
