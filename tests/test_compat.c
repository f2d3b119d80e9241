/* tests/test_compat.c - schema compatibility and versioning (node/compat.c, node/semver.c).
 *
 * Owns: the change -> mode table of research/governance-anchors.md C.2 as a table (one row per
 * change: old and new schema, the verdict under BACKWARD, FORWARD, FULL and NONE, the bump it
 * needs), transitive checks over three versions where only the transitive mode sees the break,
 * the semver tables (ordering, malformed, step), the version rule, the story on the
 * examples, the JSON report, and a bounded random test of the engine's invariants.
 * Must not: touch storage or the network. Manifests are built by node/manifest.c's parser. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/compat.h"
#include "node/manifest.h"
#include "node/semver.h"
#include "tests/fixtures.h"

/* ---------------------------------------------------------------- helpers */

#define ID "  - {name: id, logicalType: string, required: true, primaryKey: true}\n"

/* A manifest of payments/p at version with the given schema lines (YAML, each "  - {...}\n")
 * and extra top-level YAML. */
static Trib__Manifest *mk(const char *version, const char *schema, const char *extra)
{
    char text[8192], err[512];
    snprintf(text, sizeof text,
             "name: p\ndomain: payments\nversion: \"%s\"\ntitle: P\n"
             "owners: {business: a@example.com, technical: b@example.com}\n%sschema:\n%s",
             version, extra ? extra : "", schema);
    Trib__Manifest *m = manifest_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(m, "fixture does not parse: %s\n---\n%s", err, text);
    return m;
}

static compat_report_t *check1(const Trib__Manifest *old, const Trib__Manifest *new,
                               compat_mode_t mode)
{
    char err[256];
    compat_report_t *r = compat_check(&old, 1, new, mode, err, sizeof err);
    cr_assert_not_null(r, "compat_check: %s", err);
    return r;
}

static int has_kind(const compat_report_t *r, compat_kind_t k, const char *path)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->changes[i].kind == k && (path == NULL || strcmp(r->changes[i].path, path) == 0))
            return 1;
    return 0;
}

static void dump(const compat_report_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        fprintf(stderr, "  %s %s bw=%d fw=%d brk=%d bump=%s [%s]\n", r->changes[i].path,
                compat_kind_name(r->changes[i].kind), r->changes[i].backward,
                r->changes[i].forward, r->changes[i].breaking,
                compat_bump_name(r->changes[i].bump), r->changes[i].against);
}

/* ---------------------------------------------------------------- the C.2 table */

typedef struct {
    const char *what;
    const char *old_schema, *new_schema;
    const char *old_extra, *new_extra;   /* other top-level YAML, or NULL */
    int backward, forward, full;         /* compatible under the mode */
    compat_bump_t bump;                  /* required under BACKWARD */
    compat_kind_t kind;                  /* a change of this kind is reported ... */
    const char *path;                    /* ... at this path */
} row_t;

#define S(t) "  - {name: x, logicalType: " t "}\n"
#define OPT(t) "  - {name: x, logicalType: " t ", required: false}\n"
#define REQ(t) "  - {name: x, logicalType: " t ", required: true}\n"
#define OPTS(t, o) "  - {name: x, logicalType: " t ", logicalTypeOptions: " o "}\n"
#define OBJ(props) "  - {name: x, logicalType: object, properties: [" props "]}\n"

static const row_t k_rows[] = {
    {"add optional field", ID, ID OPT("string"), 0, 0, 1, 1, 1, COMPAT_BUMP_MINOR,
     COMPAT_FIELD_ADDED_OPTIONAL, "schema.x"},
    {"add required field with a default", ID,
     ID "  - {name: x, logicalType: string, required: true, default: EUR}\n", 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_FIELD_ADDED_OPTIONAL, "schema.x"},
    {"add required field without default", ID, ID REQ("string"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_FIELD_ADDED_REQUIRED, "schema.x"},
    {"remove optional field", ID OPT("string"), ID, 0, 0, 1, 1, 1, COMPAT_BUMP_MINOR,
     COMPAT_FIELD_REMOVED_OPTIONAL, "schema.x"},
    {"remove required field", ID REQ("string"), ID, 0, 0, 1, 0, 0, COMPAT_BUMP_MINOR,
     COMPAT_FIELD_REMOVED_REQUIRED, "schema.x"},
    {"remove required field that had a default",
     ID "  - {name: x, logicalType: string, required: true, default: EUR}\n", ID, 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_FIELD_REMOVED_OPTIONAL, "schema.x"},
    {"optional -> required", ID OPT("string"), ID REQ("string"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_OPTIONAL_TO_REQUIRED, "schema.x.required"},
    {"optional -> required with a default", ID OPT("string"),
     ID "  - {name: x, logicalType: string, required: true, default: EUR}\n", 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_OPTIONAL_TO_REQUIRED, "schema.x.required"},
    {"required -> optional", ID REQ("string"), ID OPT("string"), 0, 0, 1, 0, 0, COMPAT_BUMP_MINOR,
     COMPAT_REQUIRED_TO_OPTIONAL, "schema.x.required"},
    {"widen integer -> number", ID S("integer"), ID S("number"), 0, 0, 1, 0, 0, COMPAT_BUMP_MINOR,
     COMPAT_TYPE_WIDENED, "schema.x.logicalType"},
    {"widen date -> string", ID S("date"), ID S("string"), 0, 0, 1, 0, 0, COMPAT_BUMP_MINOR,
     COMPAT_TYPE_WIDENED, "schema.x.logicalType"},
    {"widen timestamp -> string", ID S("timestamp"), ID S("string"), 0, 0, 1, 0, 0,
     COMPAT_BUMP_MINOR, COMPAT_TYPE_WIDENED, "schema.x.logicalType"},
    {"narrow number -> integer", ID S("number"), ID S("integer"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_NARROWED, "schema.x.logicalType"},
    {"narrow string -> date", ID S("string"), ID S("date"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_NARROWED, "schema.x.logicalType"},
    {"string -> integer", ID S("string"), ID S("integer"), 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_CHANGED, "schema.x.logicalType"},
    {"object -> array", ID S("object"), ID S("array"), 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_CHANGED, "schema.x.logicalType"},
    {"date -> timestamp", ID S("date"), ID S("timestamp"), 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_CHANGED, "schema.x.logicalType"},
    {"rename a required field (= remove + add required)", ID REQ("string"),
     ID "  - {name: y, logicalType: string, required: true}\n", 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_FIELD_ADDED_REQUIRED, "schema.y"},
    {"add enum value", ID OPTS("string", "{enum: [a, b]}"), ID OPTS("string", "{enum: [a, b, c]}"),
     0, 0, 1, 0, 0, COMPAT_BUMP_MINOR, COMPAT_ENUM_VALUE_ADDED, "schema.x.logicalTypeOptions.enum"},
    {"remove enum value", ID OPTS("string", "{enum: [a, b]}"), ID OPTS("string", "{enum: [a]}"),
     0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR, COMPAT_ENUM_VALUE_REMOVED,
     "schema.x.logicalTypeOptions.enum"},
    {"relax maxLength", ID OPTS("string", "{maxLength: 5}"), ID OPTS("string", "{maxLength: 9}"),
     0, 0, 1, 0, 0, COMPAT_BUMP_MINOR, COMPAT_CONSTRAINT_RELAXED,
     "schema.x.logicalTypeOptions.maxLength"},
    {"relax minimum", ID OPTS("integer", "{minimum: 5}"), ID OPTS("integer", "{minimum: 0}"),
     0, 0, 1, 0, 0, COMPAT_BUMP_MINOR, COMPAT_CONSTRAINT_RELAXED,
     "schema.x.logicalTypeOptions.minimum"},
    {"remove pattern", ID OPTS("string", "{pattern: '^[a-z]+$'}"), ID S("string"), 0, 0, 1, 0, 0,
     COMPAT_BUMP_MINOR, COMPAT_CONSTRAINT_RELAXED, "schema.x.logicalTypeOptions.pattern"},
    {"tighten maxLength", ID OPTS("string", "{maxLength: 9}"), ID OPTS("string", "{maxLength: 5}"),
     0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR, COMPAT_CONSTRAINT_TIGHTENED,
     "schema.x.logicalTypeOptions.maxLength"},
    {"add pattern", ID S("string"), ID OPTS("string", "{pattern: '^[a-z]+$'}"), 0, 0, 0, 1, 0,
     COMPAT_BUMP_MAJOR, COMPAT_CONSTRAINT_TIGHTENED, "schema.x.logicalTypeOptions.pattern"},
    {"replace pattern", ID OPTS("string", "{pattern: '^a'}"), ID OPTS("string", "{pattern: '^b'}"),
     0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR, COMPAT_CONSTRAINT_CHANGED,
     "schema.x.logicalTypeOptions.pattern"},
    {"raise a date maximum (ODCS: a string)", ID OPTS("date", "{maximum: '2030-01-01'}"),
     ID OPTS("date", "{maximum: '2040-01-01'}"), 0, 0, 1, 0, 0, COMPAT_BUMP_MINOR,
     COMPAT_CONSTRAINT_RELAXED, "schema.x.logicalTypeOptions.maximum"},
    {"raise a timestamp minimum", ID OPTS("timestamp", "{minimum: '2024-01-01T00:00:00Z'}"),
     ID OPTS("timestamp", "{minimum: '2025-01-01T00:00:00Z'}"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_CONSTRAINT_TIGHTENED, "schema.x.logicalTypeOptions.minimum"},
    {"bounds that do not compare", ID OPTS("string", "{maxLength: 5}"),
     ID OPTS("string", "{maxLength: five}"), 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_CONSTRAINT_CHANGED, "schema.x.logicalTypeOptions.maxLength"},
    {"unique added", ID S("string"), ID "  - {name: x, logicalType: string, unique: true}\n", 0, 0,
     0, 1, 0, COMPAT_BUMP_MAJOR, COMPAT_CONSTRAINT_TIGHTENED, "schema.x.unique"},
    {"unknown option changed (metadata)", ID OPTS("number", "{precision: 10}"),
     ID OPTS("number", "{precision: 12}"), 0, 0, 1, 1, 1, COMPAT_BUMP_MINOR,
     COMPAT_METADATA_CHANGED, "schema.x.logicalTypeOptions.precision"},
    {"physicalType changed (metadata)", ID "  - {name: x, logicalType: string, physicalType: text}\n",
     ID "  - {name: x, logicalType: string, physicalType: varchar}\n", 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_METADATA_CHANGED, "schema.x.physicalType"},
    {"primaryKeyPosition reorders the key",
     "  - {name: id, logicalType: string, primaryKey: true, primaryKeyPosition: 1}\n"
     "  - {name: x, logicalType: string, primaryKey: true, primaryKeyPosition: 2}\n",
     "  - {name: id, logicalType: string, primaryKey: true, primaryKeyPosition: 2}\n"
     "  - {name: x, logicalType: string, primaryKey: true, primaryKeyPosition: 1}\n", 0, 0, 0, 0, 0,
     COMPAT_BUMP_MAJOR, COMPAT_PRIMARY_KEY_CHANGED, "schema.primaryKey"},
    {"compatibility mode changed (metadata)", ID, ID, "compatibility: BACKWARD\n",
     "compatibility: FULL_TRANSITIVE\n", 1, 1, 1, COMPAT_BUMP_MINOR, COMPAT_METADATA_CHANGED,
     "compatibility"},
    {"add a field to the primary key", ID REQ("string"),
     ID "  - {name: x, logicalType: string, required: true, primaryKey: true}\n", 0, 0, 0, 0, 0,
     COMPAT_BUMP_MAJOR, COMPAT_PRIMARY_KEY_CHANGED, "schema.x.primaryKey"},
    {"remove a field from the primary key",
     ID "  - {name: x, logicalType: string, required: true, primaryKey: true}\n", ID REQ("string"),
     0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR, COMPAT_PRIMARY_KEY_CHANGED, "schema.x.primaryKey"},
    {"add a new optional field to the primary key", ID,
     ID "  - {name: x, logicalType: string, primaryKey: true}\n", 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_PRIMARY_KEY_CHANGED, "schema.x"},
    {"reorder the primary key",
     ID "  - {name: x, logicalType: string, required: true, primaryKey: true}\n",
     "  - {name: x, logicalType: string, required: true, primaryKey: true}\n" ID, 0, 0, 0, 0, 0,
     COMPAT_BUMP_MAJOR, COMPAT_PRIMARY_KEY_CHANGED, "schema.primaryKey"},
    {"widen the type of a primary-key field",
     "  - {name: id, logicalType: integer, required: true, primaryKey: true}\n",
     "  - {name: id, logicalType: number, required: true, primaryKey: true}\n", 0, 0, 0, 0, 0,
     COMPAT_BUMP_MAJOR, COMPAT_PRIMARY_KEY_CHANGED, "schema.id.logicalType"},
    {"nested: add optional property", ID OBJ("{name: a, logicalType: string}"),
     ID OBJ("{name: a, logicalType: string}, {name: b, logicalType: integer}"), 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_FIELD_ADDED_OPTIONAL, "schema.x.properties.b"},
    {"nested: add required property", ID OBJ("{name: a, logicalType: string}"),
     ID OBJ("{name: a, logicalType: string}, {name: b, logicalType: integer, required: true}"),
     0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR, COMPAT_FIELD_ADDED_REQUIRED, "schema.x.properties.b"},
    {"nested: change a property's type", ID OBJ("{name: a, logicalType: string}"),
     ID OBJ("{name: a, logicalType: boolean}"), 0, 0, 0, 0, 0, COMPAT_BUMP_MAJOR,
     COMPAT_TYPE_CHANGED, "schema.x.properties.a.logicalType"},
    {"nested twice: narrow a property", ID OBJ("{name: a, logicalType: object, properties: [{name: "
     "b, logicalType: number}]}"), ID OBJ("{name: a, logicalType: object, properties: [{name: b, "
     "logicalType: integer}]}"), 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR, COMPAT_TYPE_NARROWED,
     "schema.x.properties.a.properties.b.logicalType"},
    {"array items: widen", ID "  - {name: x, logicalType: array, items: {logicalType: integer}}\n",
     ID "  - {name: x, logicalType: array, items: {logicalType: number}}\n", 0, 0, 1, 0, 0,
     COMPAT_BUMP_MINOR, COMPAT_TYPE_WIDENED, "schema.x.items.logicalType"},
    {"array items: object gains a required property",
     ID "  - {name: x, logicalType: array, items: {logicalType: object, properties: []}}\n",
     ID "  - {name: x, logicalType: array, items: {logicalType: object, properties: [{name: q, "
     "logicalType: string, required: true}]}}\n", 0, 0, 0, 1, 0, COMPAT_BUMP_MAJOR,
     COMPAT_FIELD_ADDED_REQUIRED, "schema.x.items.properties.q"},
    {"field description", ID S("string"),
     ID "  - {name: x, logicalType: string, description: the x}\n", 0, 0, 1, 1, 1,
     COMPAT_BUMP_PATCH, COMPAT_ANNOTATION_CHANGED, "schema.x.description"},
    {"title, description and tags", ID, ID, "description: {purpose: one}\ntags: [a]\n",
     "description: {purpose: two}\ntags: [a, b]\n", 1, 1, 1, COMPAT_BUMP_PATCH,
     COMPAT_ANNOTATION_CHANGED, "tags"},
    {"raise a field's classification", ID "  - {name: x, logicalType: string}\n",
     ID "  - {name: x, logicalType: string, classification: confidential}\n", 0, 0, 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_CLASSIFICATION_RAISED, "schema.x.classification"},
    {"raise the product's classification", ID, ID, "classification: internal\n",
     "classification: restricted\n", 1, 1, 1, COMPAT_BUMP_MINOR, COMPAT_CLASSIFICATION_RAISED,
     "classification"},
    {"lower the product's classification", ID, ID, "classification: restricted\n",
     "classification: public\n", 1, 1, 1, COMPAT_BUMP_MINOR, COMPAT_CLASSIFICATION_LOWERED,
     "classification"},
    {"owner and SLA change", ID, ID, "sla: {freshness: 15m}\n",
     "sla: {freshness: 1h}\nsupport: '#payments'\n", 1, 1, 1, COMPAT_BUMP_MINOR,
     COMPAT_METADATA_CHANGED, "sla.freshness"},
    {"status active -> deprecated (lifecycle: minor)", ID, ID, "status: active\n", "status: deprecated\n", 1, 1,
     1, COMPAT_BUMP_MINOR, COMPAT_METADATA_CHANGED, "status"},
    {"status draft -> active", ID, ID, "status: draft\n", "status: active\n", 1, 1, 1, COMPAT_BUMP_MINOR,
     COMPAT_METADATA_CHANGED, "status"},
    {"status deprecated -> active (undeprecated)", ID, ID, "status: deprecated\n", "", 1, 1, 1,
     COMPAT_BUMP_MINOR, COMPAT_METADATA_CHANGED, "status"},
};

Test(compat, change_mode_table)
{
    /* Every row under every mode: with one earlier version a _TRANSITIVE mode gives its base
     * mode's verdict; and the gate's version rule at a minor step (1.1.0) accepts the change
     * exactly when the mode holds (under NONE: when it is no schema change). */
    static const compat_mode_t modes[] = {COMPAT_BACKWARD, COMPAT_FORWARD, COMPAT_FULL, COMPAT_NONE,
                                          COMPAT_BACKWARD_TRANSITIVE, COMPAT_FORWARD_TRANSITIVE,
                                          COMPAT_FULL_TRANSITIVE};
    for (size_t i = 0; i < sizeof k_rows / sizeof k_rows[0]; i++) {
        const row_t *w = &k_rows[i];
        Trib__Manifest *o = mk("1.0.0", w->old_schema, w->old_extra);
        Trib__Manifest *n = mk("1.0.1", w->new_schema, w->new_extra);
        Trib__Manifest *n_minor = mk("1.1.0", w->new_schema, w->new_extra);
        const int want[] = {w->backward, w->forward, w->full, 1, w->backward, w->forward, w->full};
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            compat_report_t *rm = check1(o, n_minor, modes[m]);
            char verr[512];
            int vok = compat_version_check(rm, verr, sizeof verr) == 0;
            int want_ok = modes[m] == COMPAT_NONE ? !(w->kind < COMPAT_DEFAULT_CHANGED) : want[m];
            cr_expect_eq(vok, want_ok, "%s: %s: publish at 1.1.0 %s, want %s (%s)", w->what,
                         compat_mode_name(modes[m]), vok ? "accepted" : "refused",
                         want_ok ? "accepted" : "refused", verr);
            compat_report_free(&rm);
            compat_report_t *r = check1(o, n, modes[m]);
            if (r->compatible != want[m])
                dump(r);
            cr_expect_eq(r->compatible, want[m], "%s: %s: compatible %d, want %d", w->what,
                         compat_mode_name(modes[m]), r->compatible, want[m]);
            cr_expect(has_kind(r, w->kind, w->path), "%s: no %s at %s", w->what,
                      compat_kind_name(w->kind), w->path);
            if (modes[m] == COMPAT_BACKWARD)
                cr_expect_eq(r->required, w->bump, "%s: bump %s, want %s", w->what,
                             compat_bump_name(r->required), compat_bump_name(w->bump));
            if (modes[m] == COMPAT_NONE)   /* no check: a schema change forces a major */
                cr_expect_eq(r->required,
                             w->bump == COMPAT_BUMP_MAJOR || w->kind < COMPAT_DEFAULT_CHANGED
                                 ? COMPAT_BUMP_MAJOR : w->bump, "%s: NONE bump %s", w->what,
                             compat_bump_name(r->required));
            compat_report_free(&r);
            cr_expect_null(r);
        }
        manifest_free(&o);
        manifest_free(&n);
        manifest_free(&n_minor);
    }
}

Test(compat, identical_manifests_have_no_changes)
{
    Trib__Manifest *a = mk("1.0.0", ID OBJ("{name: a, logicalType: string}"), "tags: [t]\n");
    Trib__Manifest *b = mk("1.0.0", ID OBJ("{name: a, logicalType: string}"), "tags: [t]\n");
    compat_report_t *r = check1(a, b, COMPAT_FULL_TRANSITIVE);
    cr_expect_eq(r->n, 0);
    cr_expect(r->compatible);
    cr_expect_eq(r->required, COMPAT_BUMP_NONE);
    char err[256];
    cr_expect_eq(compat_version_check(r, err, sizeof err), 0, "%s", err);   /* `unchanged` */
    compat_report_free(&r);
    manifest_free(&a);
    manifest_free(&b);
}

Test(compat, not_comparable)
{
    char err[256];
    Trib__Manifest *a = mk("1.0.0", ID, NULL), *b = mk("1.0.1", ID, NULL);
    free(b->name);
    b->name = strdup("q");
    const Trib__Manifest *const v[] = {a};
    cr_expect_null(compat_check(v, 1, b, COMPAT_BACKWARD, err, sizeof err));
    cr_expect(strstr(err, "is not payments/q") != NULL, "%s", err);
    cr_expect_null(compat_check(v, 0, a, COMPAT_BACKWARD, err, sizeof err));
    manifest_free(&a);
    manifest_free(&b);
}

Test(compat, primary_key_position_ties_and_none_keep_schema_order)
{
    /* -1 (ODCS: none) and absent sort after given positions; the same order is no change */
    Trib__Manifest *a = mk("1.0.0", "  - {name: id, logicalType: string, primaryKey: true}\n"
                                    "  - {name: x, logicalType: string, primaryKey: true, "
                                    "primaryKeyPosition: -1}\n", NULL);
    Trib__Manifest *b = mk("1.0.1", "  - {name: id, logicalType: string, primaryKey: true}\n"
                                    "  - {name: x, logicalType: string, primaryKey: true}\n", NULL);
    compat_report_t *r = check1(a, b, COMPAT_FULL);
    cr_expect(r->compatible);
    cr_expect(!has_kind(r, COMPAT_PRIMARY_KEY_CHANGED, NULL));
    compat_report_free(&r);
    manifest_free(&a);
    manifest_free(&b);
}

/* A peer's manifest may come without a usable document: the Manifest's own fields still count. */
Test(compat, manifest_without_document_uses_its_fields)
{
    static const char *const docs[] = {"", "not json", "[1, 2]", "{\"schema\": 5}",
                                       "{\"schema\": [{\"name\": 7}]}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        Trib__Manifest *a = mk("1.0.0", ID S("integer"), NULL);
        Trib__Manifest *b = mk("1.1.0", ID S("string"), NULL);
        free(b->document_json);
        b->document_json = strdup(docs[i]);
        compat_report_t *r = check1(a, b, COMPAT_BACKWARD);
        cr_expect(has_kind(r, COMPAT_TYPE_CHANGED, "schema.x.logicalType"), "document '%s'", docs[i]);
        cr_expect(!r->compatible);
        compat_report_free(&r);
        r = check1(b, b, COMPAT_BACKWARD);
        cr_expect_eq(r->n, 0, "document '%s' against itself: %zu changes", docs[i], r->n);
        compat_report_free(&r);
        manifest_free(&a);
        manifest_free(&b);
    }
}

/* Nesting as deep as the manifest parser allows: compared to the bottom, no recursion trouble. */
Test(compat, deep_nesting)
{
    char old_s[8192], new_s[8192];
    for (int w = 0; w < 2; w++) {
        char *s = w ? new_s : old_s;
        size_t n = 0;
        n += snprintf(s + n, 8192 - n, "  - ");
        for (int d = 0; d < 28; d++)
            n += snprintf(s + n, 8192 - n, "{name: n%d, logicalType: object, properties: [", d);
        n += snprintf(s + n, 8192 - n, "{name: leaf, logicalType: %s}", w ? "string" : "integer");
        for (int d = 0; d < 28; d++)
            n += snprintf(s + n, 8192 - n, "]}");
        snprintf(s + n, 8192 - n, "\n");
    }
    Trib__Manifest *a = mk("1.0.0", old_s, NULL), *b = mk("1.1.0", new_s, NULL);
    compat_report_t *r = check1(a, b, COMPAT_BACKWARD);
    cr_assert_eq(r->n, 1);
    cr_expect_eq(r->changes[0].kind, COMPAT_TYPE_CHANGED);
    cr_expect(strstr(r->changes[0].path, ".n27.properties.leaf.logicalType") != NULL, "%s",
              r->changes[0].path);
    compat_report_free(&r);
    manifest_free(&a);
    manifest_free(&b);
}

/* ---------------------------------------------------------------- transitive */

typedef struct {
    const char *what;
    const char *v1, *v2, *v3;
    compat_mode_t mode, transitive;
    const char *path;   /* of the change only the transitive mode sees */
} trans_t;

static const trans_t k_trans[] = {
    /* delete `x` in v2, re-add it with another type in v3 (catalog-anchors §4) */
    {"re-added with another type", ID OPT("string"), ID, ID OPT("integer"), COMPAT_BACKWARD,
     COMPAT_BACKWARD_TRANSITIVE, "schema.x.logicalType"},
    {"re-added with another type, forward", ID OPT("string"), ID, ID OPT("integer"),
     COMPAT_FORWARD, COMPAT_FORWARD_TRANSITIVE, "schema.x.logicalType"},
    {"re-added with another type, full", ID OPT("string"), ID, ID OPT("integer"), COMPAT_FULL,
     COMPAT_FULL_TRANSITIVE, "schema.x.logicalType"},
    /* a required field added with a default, then the default dropped: v1's records lack it */
    {"default dropped", ID, ID "  - {name: x, logicalType: string, required: true, default: a}\n",
     ID REQ("string"), COMPAT_BACKWARD, COMPAT_BACKWARD_TRANSITIVE, "schema.x"},
    /* a field dropped, then re-added with one more enum value: old readers reject it */
    {"re-added with a wider enum", ID "  - {name: x, logicalType: string, logicalTypeOptions: {enum: [a]}}\n",
     ID, ID "  - {name: x, logicalType: string, logicalTypeOptions: {enum: [a, b]}}\n",
     COMPAT_FORWARD, COMPAT_FORWARD_TRANSITIVE, "schema.x.logicalTypeOptions.enum"},
};

Test(compat, transitive_catches_what_latest_only_misses)
{
    for (size_t i = 0; i < sizeof k_trans / sizeof k_trans[0]; i++) {
        const trans_t *t = &k_trans[i];
        Trib__Manifest *v1 = mk("1.0.0", t->v1, NULL), *v2 = mk("1.1.0", t->v2, NULL),
                       *v3 = mk("1.2.0", t->v3, NULL);
        const Trib__Manifest *const hist[] = {v1, v2};
        char err[512];
        compat_report_t *r = compat_check(hist, 2, v3, t->mode, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        if (!r->compatible)
            dump(r);
        cr_expect(r->compatible, "%s: %s against the latest should pass", t->what,
                  compat_mode_name(t->mode));
        cr_expect_eq(compat_version_check(r, err, sizeof err), 0, "%s: %s", t->what, err);
        compat_report_free(&r);

        r = compat_check(hist, 2, v3, t->transitive, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        cr_expect(!r->compatible, "%s: %s should fail", t->what, compat_mode_name(t->transitive));
        cr_expect_eq(r->required, COMPAT_BUMP_MAJOR, "%s", t->what);
        int seen = 0;
        for (size_t c = 0; c < r->n; c++)
            if (r->changes[c].breaking && strcmp(r->changes[c].path, t->path) == 0) {
                seen = 1;
                cr_expect_str_eq(r->changes[c].against, "1.0.0", "%s", t->what);
            }
        if (!seen)
            dump(r);
        cr_expect(seen, "%s: no breaking change at %s", t->what, t->path);
        cr_expect_neq(compat_version_check(r, err, sizeof err), 0, "%s", t->what);
        cr_expect(strstr(err, "needs a major version, e.g. 2.0.0, not 1.2.0") != NULL, "%s", err);
        compat_report_free(&r);
        manifest_free(&v1);
        manifest_free(&v2);
        manifest_free(&v3);
    }
}

Test(compat, transitive_lists_every_version_a_change_is_seen_against)
{
    Trib__Manifest *v1 = mk("1.0.0", ID S("number"), NULL), *v2 = mk("1.0.1", ID S("number"), NULL),
                   *v3 = mk("2.0.0", ID S("integer"), NULL);
    const Trib__Manifest *const hist[] = {v1, v2};
    char err[256];
    compat_report_t *r = compat_check(hist, 2, v3, COMPAT_BACKWARD_TRANSITIVE, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(r->n, 1);
    cr_expect_str_eq(r->changes[0].against, "1.0.1, 1.0.0");
    json_t *j = compat_report_json(r);
    json_t *av = json_object_get(json_array_get(json_object_get(j, "changes"), 0),
                                 "against_versions");
    cr_expect_eq(json_array_size(av), 2);
    cr_expect_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(j, "changes"), 0), "against_count")), 2);
    cr_expect_str_eq(json_string_value(json_array_get(av, 1)), "1.0.0");
    json_decref(j);
    compat_report_free(&r);
    manifest_free(&v1);
    manifest_free(&v2);
    manifest_free(&v3);
}

/* A long history: every version is compared, the list of names stays bounded. */
Test(compat, long_history_names_at_most_max_against_versions)
{
    enum { N = 60 };
    Trib__Manifest *h[N];
    for (int i = 0; i < N; i++) {
        char v[32];
        snprintf(v, sizeof v, "1.%d.0", i);
        h[i] = mk(v, ID S("number"), NULL);
    }
    Trib__Manifest *next = mk("2.0.0", ID S("integer"), NULL);
    char err[256];
    compat_report_t *r = compat_check((const Trib__Manifest *const *)h, N, next,
                                      COMPAT_BACKWARD_TRANSITIVE, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(r->n, 1);
    cr_expect_eq(r->changes[0].n_against, N);
    json_t *j = compat_report_json(r);
    json_t *c = json_array_get(json_object_get(j, "changes"), 0);
    cr_expect_eq(json_array_size(json_object_get(c, "against_versions")), COMPAT_MAX_AGAINST);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(c, "against_versions"), 0)),
                     "1.59.0");
    cr_expect_eq(json_integer_value(json_object_get(c, "against_count")), N);
    json_decref(j);
    compat_report_free(&r);
    for (int i = 0; i < N; i++)
        manifest_free(&h[i]);
    manifest_free(&next);
}

/* ---------------------------------------------------------------- semver */

Test(semver, precedence_of_semver_org_section_11)
{
    static const char *const order[] = {
        "0.9.99", "1.0.0-0", "1.0.0-9", "1.0.0-10", "1.0.0-alpha", "1.0.0-alpha.1",
        "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
        "1.0.1", "1.1.0", "1.10.0", "2.0.0", "18446744073709551615.0.0",
    };
    size_t n = sizeof order / sizeof order[0];
    semver_t v[sizeof order / sizeof order[0]];
    char err[256];
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(semver_parse(order[i], &v[i], err, sizeof err), 0, "%s: %s", order[i], err);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = semver_compare(&v[i], &v[j]);
            int want = i < j ? -1 : i > j ? 1 : 0;
            cr_expect_eq(c < 0 ? -1 : c > 0 ? 1 : 0, want, "%s vs %s", order[i], order[j]);
        }
    semver_t a, b;
    semver_parse("1.0.0+build.1", &a, err, sizeof err);
    semver_parse("1.0.0+build.2", &b, err, sizeof err);
    cr_expect_eq(semver_compare(&a, &b), 0, "build metadata is ignored for precedence");
    cr_expect_str_eq(a.build, "build.1");
    semver_parse("1.0.0-rc.1+exp.sha.5114f85", &a, err, sizeof err);
    cr_expect_str_eq(a.pre, "rc.1");
    cr_expect_str_eq(a.build, "exp.sha.5114f85");
}

Test(semver, malformed_versions_are_refused_with_the_reason)
{
    static const struct { const char *in, *want; } bad[] = {
        {"", "empty version"},
        {"1.0", "expected MAJOR.MINOR.PATCH"},
        {"1", "expected MAJOR.MINOR.PATCH"},
        {"1.0.0.0", "unexpected '.'"},
        {"v1.0.0", "drop the leading 'v'"},
        {"01.0.0", "major part has a leading zero"},
        {"1.02.0", "minor part has a leading zero"},
        {"1.0.-1", "patch part is missing"},
        {"1.0.0-", "empty identifier in the pre-release"},
        {"1.0.0-a..b", "empty identifier in the pre-release"},
        {"1.0.0-01", "'01' in the pre-release has a leading zero"},
        {"1.0.0+", "empty identifier in the build metadata"},
        {"1.0.0-a_b", "character '_' is not allowed"},
        {"1.0.0 ", "unexpected ' '"},
        {"1.0.0-\xce\xb1", "is not allowed in the pre-release"},
        {"18446744073709551616.0.0", "major part is too large"},
        {"1.0.0+build+2", "unexpected '+' after MAJOR.MINOR.PATCH"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        semver_t v;
        char err[256] = "";
        cr_expect_eq(semver_parse(bad[i].in, &v, err, sizeof err), -1, "'%s' accepted", bad[i].in);
        cr_expect(strstr(err, bad[i].want) != NULL, "'%s': got \"%s\", want \"%s\"", bad[i].in,
                  err, bad[i].want);
    }
    char long_v[400];
    memset(long_v, 'a', sizeof long_v);
    memcpy(long_v, "1.0.0-", 6);
    long_v[sizeof long_v - 1] = '\0';
    semver_t v;
    char err[256];
    cr_expect_eq(semver_parse(long_v, &v, err, sizeof err), -1);
    cr_expect(strstr(err, "longer than 256") != NULL, "%s", err);
    /* the manifest parser and this parser agree on the grammar */
    static const char *const good[] = {"0.0.0", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+21AF26D3--117B344092BD",
                                       "1.0.0-x-y-z.--", "10.20.30"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_expect_eq(semver_parse(good[i], &v, err, sizeof err), 0, "%s: %s", good[i], err);
        cr_expect(manifest_valid_semver(good[i]), "%s", good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)   /* its regex has no bound on numbers */
        if (strstr(bad[i].want, "too large") == NULL)
            cr_expect(!manifest_valid_semver(bad[i].in), "manifest accepts '%s'", bad[i].in);
}

Test(semver, step_level)
{
    static const struct { const char *a, *b; int step; } t[] = {
        {"1.0.0", "2.0.0", 3}, {"1.9.9", "2.0.0-rc.1", 3}, {"1.0.0", "1.1.0", 2},
        {"1.0.0", "1.0.1", 1}, {"1.0.0", "1.0.0", 0}, {"2.0.0", "1.0.0", 0},
        {"1.0.0", "1.0.0+b", 0}, {"2.0.0-rc.1", "2.0.0", 3}, {"2.0.0-rc.1", "2.0.0-rc.2", 3},
        {"1.1.0-rc.1", "1.1.0", 2}, {"1.1.1-rc.1", "1.1.1", 1}, {"1.0.0-rc.1", "1.0.0-beta", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        semver_t a, b;
        char err[256];
        cr_assert_eq(semver_parse(t[i].a, &a, err, sizeof err), 0);
        cr_assert_eq(semver_parse(t[i].b, &b, err, sizeof err), 0);
        cr_expect_eq(semver_step(&a, &b), t[i].step, "%s -> %s", t[i].a, t[i].b);
    }
}

/* ---------------------------------------------------------------- the version rule */

typedef struct {
    const char *from, *to;
    const char *old_schema, *new_schema;
    const char *want;   /* NULL: accepted; else a substring of the refusal */
} ver_t;

static const ver_t k_ver[] = {
    {"1.0.0", "1.0.0", ID, ID, NULL},                                      /* unchanged */
    {"1.0.0", "1.0.1", ID, ID, NULL},                                      /* re-release */
    {"2.0.0", "1.0.0", ID, ID, "1.0.0 is lower than the published 2.0.0; versions only go up"},
    {"1.0.0", "1.0.0-rc.1", ID, ID, "is lower than the published"},
    {"1.0.0", "1.0.0", ID, ID OPT("string"), "1.0.0 is already published with different content"},
    {"1.0.0", "1.0.0+b2", ID, ID OPT("string"), "already published with different content"},
    {"1.0.0", "1.0.1", ID, ID OPT("string"), "needs a minor version, e.g. 1.1.0, not 1.0.1"},
    {"1.0.0", "1.1.0", ID, ID OPT("string"), NULL},
    {"1.0.0", "1.1.0", ID S("integer"), ID S("string"),
     "breaking change under BACKWARD_TRANSITIVE (schema.x.logicalType: type_changed) needs a "
     "major version, e.g. 2.0.0, not 1.1.0"},
    {"1.0.0", "2.0.0", ID S("integer"), ID S("string"), NULL},
    {"1.0.0", "2.0.0-rc.1", ID S("integer"), ID S("string"), NULL},
    {"2.0.0-rc.1", "2.0.0", ID S("integer"), ID S("string"), NULL},      /* the major's train */
    {"1.1.0-rc.1", "1.1.0", ID S("integer"), ID S("string"), "needs a major version"},
    {"0.3.0", "0.4.0", ID S("integer"), ID S("string"), NULL},            /* semver §4 */
    {"0.3.0", "0.3.1", ID S("integer"), ID S("string"), "needs a major version, e.g. 1.0.0"},
    {"1.0", "1.1.0", ID, ID, "published version: '1.0' is not a semantic version"},
};

Test(compat, version_rule)
{
    for (size_t i = 0; i < sizeof k_ver / sizeof k_ver[0]; i++) {
        const ver_t *t = &k_ver[i];
        /* the parser refuses a malformed version: forge one as a peer's entry could carry it */
        int forged = !manifest_valid_semver(t->from);
        Trib__Manifest *o = mk(forged ? "0.0.1" : t->from, t->old_schema, NULL);
        Trib__Manifest *n = mk(t->to, t->new_schema, NULL);
        if (forged) {
            free(o->version);
            o->version = strdup(t->from);
        }
        compat_report_t *r = check1(o, n, COMPAT_BACKWARD_TRANSITIVE);
        char err[512] = "";
        int rc = compat_version_check(r, err, sizeof err);
        if (t->want == NULL)
            cr_expect_eq(rc, 0, "%s -> %s refused: %s", t->from, t->to, err);
        else
            cr_expect(rc == -1 && strstr(err, t->want) != NULL, "%s -> %s: got \"%s\", want \"%s\"",
                      t->from, t->to, err, t->want);
        compat_report_free(&r);
        manifest_free(&o);
        manifest_free(&n);
    }
}

/* A lifecycle status change (research C.2: metadata, MINOR) is refused with a patch bump or none,
 * naming the change and a version that would do, like any other under-bumped change. */
Test(compat, status_change_needs_a_minor_version)
{
    static const struct { const char *from_status, *to_status, *to, *want; } t[] = {
        {"active", "deprecated", "1.0.1", "change (status: metadata_changed) needs a minor version, e.g. 1.1.0, not 1.0.1"},
        {"active", "deprecated", "1.0.0",
         "1.0.0 is already published with different content: change (status: metadata_changed) needs a minor "
         "version, e.g. 1.1.0"},
        {"active", "deprecated", "1.0.0+b2", "needs a minor version, e.g. 1.1.0"},
        {"active", "deprecated", "1.1.0", NULL},
        {"active", "deprecated", "2.0.0", NULL},
        {"deprecated", "retired", "1.0.1", "(status: metadata_changed) needs a minor version"},
        {"draft", "active", "1.0.1", "(status: metadata_changed) needs a minor version"},
        {"active", "active", "1.0.1", NULL},   /* no change: a re-release */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "status: %s\n", t[i].from_status);
        snprintf(b, sizeof b, "status: %s\n", t[i].to_status);
        Trib__Manifest *o = mk("1.0.0", ID, a), *n = mk(t[i].to, ID, b);
        for (int mode = COMPAT_BACKWARD; mode <= COMPAT_NONE; mode++) {
            compat_report_t *r = check1(o, n, (compat_mode_t)mode);
            cr_expect_eq(r->required, strcmp(a, b) ? COMPAT_BUMP_MINOR : COMPAT_BUMP_NONE, "%s: %s -> %s",
                         compat_mode_name((compat_mode_t)mode), t[i].from_status, t[i].to_status);
            cr_expect(r->compatible, "a status change breaks no mode");
            char err[512] = "";
            int rc = compat_version_check(r, err, sizeof err);
            if (!t[i].want)
                cr_expect_eq(rc, 0, "%s -> %s at %s refused: %s", t[i].from_status, t[i].to_status, t[i].to, err);
            else
                cr_expect(rc == -1 && strstr(err, t[i].want), "%s -> %s at %s under %s: got \"%s\", want \"%s\"",
                          t[i].from_status, t[i].to_status, t[i].to, compat_mode_name((compat_mode_t)mode), err,
                          t[i].want);
            compat_report_free(&r);
        }
        manifest_free(&o);
        manifest_free(&n);
    }
}

Test(compat, version_rule_under_none)
{
    Trib__Manifest *o = mk("1.0.0", ID, NULL), *n = mk("1.1.0", ID OPT("string"), NULL);
    compat_report_t *r = check1(o, n, COMPAT_NONE);
    cr_expect(r->compatible);
    cr_expect_eq(r->required, COMPAT_BUMP_MAJOR);
    char err[512];
    cr_expect_eq(compat_version_check(r, err, sizeof err), -1);
    cr_expect_str_eq(err, "version: schema change under NONE (nothing is checked, so every one is "
                     "major) (schema.x: field_added_optional) needs a major version, e.g. 2.0.0, "
                     "not 1.1.0");
    compat_report_free(&r);
    manifest_free(&o);
    manifest_free(&n);
}

Test(compat, mode_names)
{
    for (int m = COMPAT_BACKWARD; m <= COMPAT_NONE; m++) {
        compat_mode_t back;
        cr_expect_eq(compat_mode_parse(compat_mode_name((compat_mode_t)m), &back), 0);
        cr_expect_eq(back, m);
    }
    compat_mode_t x;
    cr_expect_eq(compat_mode_parse("backward", &x), -1);
    cr_expect_eq(compat_mode_parse("FULLY", &x), -1);
    cr_expect_eq(compat_mode_parse(NULL, &x), -1);
    cr_expect_eq(COMPAT_DEFAULT_MODE, COMPAT_BACKWARD_TRANSITIVE);
}

Test(compat, manifest_mode_field)
{
    static const struct { const char *extra; int rc; compat_mode_t mode; const char *err; } t[] = {
        {NULL, 0, COMPAT_BACKWARD_TRANSITIVE, NULL},
        {"compatibility: ~\n", 0, COMPAT_BACKWARD_TRANSITIVE, NULL},
        {"compatibility: FULL\n", 0, COMPAT_FULL, NULL},
        {"compatibility: NONE\n", 0, COMPAT_NONE, NULL},
        {"compatibility: backward\n", -1, COMPAT_BACKWARD_TRANSITIVE,
         "compatibility: \"backward\" is not a mode; expected one of BACKWARD, FORWARD"},
        {"compatibility: [FULL]\n", -1, COMPAT_BACKWARD_TRANSITIVE, "compatibility: [\"FULL\"] is not"},
        {"compatibility: 1\n", -1, COMPAT_BACKWARD_TRANSITIVE, "compatibility: 1 is not a mode"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        /* The parser refuses a bad mode (with its line); a manifest from a peer or an older
         * build may still carry one in its document, which compat_manifest_mode reports. */
        Trib__Manifest *m = mk("1.0.0", ID, t[i].rc == 0 ? t[i].extra : NULL);
        if (t[i].rc != 0) {
            json_t *doc = manifest_document(m);
            json_t *v = strstr(t[i].extra, "[FULL]") ? json_pack("[s]", "FULL")
                      : strstr(t[i].extra, ": 1") ? json_integer(1) : json_string("backward");
            json_object_set_new(doc, "compatibility", v);
            free(m->document_json);
            m->document_json = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
        }
        compat_mode_t mode;
        char err[256] = "";
        cr_expect_eq(compat_manifest_mode(m, &mode, err, sizeof err), t[i].rc, "%s", t[i].extra);
        cr_expect_eq(mode, t[i].mode, "%s", t[i].extra);
        if (t[i].err != NULL)
            cr_expect(strstr(err, t[i].err) != NULL, "%s: %s", t[i].extra, err);
        manifest_free(&m);
    }
}

/* The manifest parser checks the field itself and names the line. */
Test(compat, manifest_parser_refuses_unknown_mode)
{
    static const char *bad[] = {"compatibility: backward\n", "compatibility: [FULL]\n",
                                "compatibility: 1\n", "compatibility: FULL_transitive\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], err[512];
        snprintf(text, sizeof text,
                 "name: p\ndomain: payments\nversion: \"1.0.0\"\ntitle: P\n"
                 "owners: {business: a@example.com, technical: b@example.com}\n%sschema:\n" ID, bad[i]);
        Trib__Manifest *m = manifest_parse(text, strlen(text), NULL, err, sizeof err);
        cr_expect_null(m, "%s accepted", bad[i]);
        cr_expect(strncmp(err, "compatibility: ", 15) == 0 && strstr(err, "(line 6)") &&
                  (strchr(bad[i], '[') || strstr(bad[i], ": 1") || strstr(err, "BACKWARD_TRANSITIVE")),
                  "%s: %s", bad[i], err);
        manifest_free(&m);
    }
    Trib__Manifest *m = mk("1.0.0", ID, "compatibility: FORWARD_TRANSITIVE\n");
    cr_expect_str_eq(m->compatibility, "FORWARD_TRANSITIVE");
    manifest_free(&m);
}

/* ---------------------------------------------------------------- the story */

static Trib__Manifest *example(const char *file)
{
    size_t len;
    char err[512];
    char *text = fx_read_example(file, &len);
    cr_assert_not_null(text, "cannot read examples/%s", file);
    Trib__Manifest *m = manifest_parse(text, len, "payments", err, sizeof err);
    cr_assert_not_null(m, "%s: %s", file, err);
    free(text);
    return m;
}

Test(compat, story_amount_minor_integer_to_string)
{
    Trib__Manifest *v1 = example("settled-transactions.yaml");
    Trib__Manifest *v2 = example("settled-transactions-v2.yaml");
    compat_report_t *r = check1(v1, v2, COMPAT_DEFAULT_MODE);
    cr_expect(!r->compatible, "integer -> string must break BACKWARD_TRANSITIVE");
    cr_expect_eq(r->required, COMPAT_BUMP_MAJOR);
    cr_expect(has_kind(r, COMPAT_TYPE_CHANGED, "schema.amount_minor.logicalType"));
    cr_expect(has_kind(r, COMPAT_FIELD_ADDED_OPTIONAL, "schema.merchant_category"));
    char err[512];
    cr_expect_eq(compat_version_check(r, err, sizeof err), 0, "2.0.0 is a major: %s", err);

    json_t *j = compat_report_json(r);
    cr_assert_not_null(j);
    cr_expect(json_is_false(json_object_get(j, "compatible")));
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "BACKWARD_TRANSITIVE");
    cr_expect_str_eq(json_string_value(json_object_get(j, "required_bump")), "major");
    cr_expect_str_eq(json_string_value(json_object_get(j, "from")), "1.0.0");
    cr_expect_str_eq(json_string_value(json_object_get(j, "to")), "2.0.0");
    cr_expect(json_is_true(json_object_get(j, "version_ok")));
    cr_expect_gt(json_array_size(json_object_get(j, "messages")), 0);
    json_t *c, *found = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "changes"), i, c)
        if (!strcmp(json_string_value(json_object_get(c, "path")), "schema.amount_minor.logicalType"))
            found = c;
    if (found == NULL) {
        char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
        cr_assert_fail("no change at schema.amount_minor.logicalType in\n%s", s);
    }
    cr_expect_str_eq(json_string_value(json_object_get(found, "change")), "type_changed");
    cr_expect_str_eq(json_string_value(json_object_get(found, "from")), "integer");
    cr_expect_str_eq(json_string_value(json_object_get(found, "to")), "string");
    cr_expect(json_is_false(json_object_get(found, "backward")));
    cr_expect(json_is_false(json_object_get(found, "forward")));
    cr_expect(json_is_false(json_object_get(found, "full")));
    cr_expect_str_eq(json_string_value(json_object_get(found, "bump")), "major");
    cr_expect_str_eq(json_string_value(json_object_get(found, "severity")), "error");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(found, "against_versions"), 0)),
                     "1.0.0");
    json_decref(j);
    compat_report_free(&r);

    /* the same change published as 1.1.0 is refused; 2.0.0 -> 1.0.0 is a downgrade */
    free(v2->version);
    v2->version = strdup("1.1.0");
    r = check1(v1, v2, COMPAT_DEFAULT_MODE);
    cr_expect_eq(compat_version_check(r, err, sizeof err), -1);
    cr_expect(strstr(err, "breaking change under BACKWARD_TRANSITIVE") && strstr(err, "2.0.0"),
              "%s", err);
    j = compat_report_json(r);
    cr_expect(json_is_false(json_object_get(j, "version_ok")));
    cr_expect_str_eq(json_string_value(json_object_get(j, "version_error")), err);
    json_decref(j);
    compat_report_free(&r);

    free(v2->version);
    v2->version = strdup("2.0.0");
    r = check1(v2, v1, COMPAT_DEFAULT_MODE);
    cr_expect_eq(compat_version_check(r, err, sizeof err), -1);
    cr_expect(strstr(err, "1.0.0 is lower than the published 2.0.0") != NULL, "%s", err);
    compat_report_free(&r);
    manifest_free(&v1);
    manifest_free(&v2);
}

/* ---------------------------------------------------------------- random schemas */

/* Bounded random test: random pairs of manifests (nested properties, items, options, defaults,
 * classifications, now and then a malformed `properties` or `items` a peer could send) through
 * the engine; it must not crash (run it under `make asan`) and its verdicts must agree. Fixed
 * seed: the same cases every run. */

typedef struct {
    char *s;
    size_t n, cap;
} buf_t;

__attribute__((format(printf, 2, 3)))
static void bp(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int w = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        cr_assert_geq(w, 0);
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w) * 2;
        b->s = realloc(b->s, b->cap);
        cr_assert_not_null(b->s);
    }
}

static uint64_t g_rng = 0x9E3779B97F4A7C15u;

static unsigned rnd(unsigned n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (unsigned)((g_rng >> 32) % n);
}

static const char *const k_types[] = {"string", "integer", "number", "boolean", "date",
                                      "timestamp", "object", "array"};
static const char *const k_classes[] = {"public", "internal", "confidential", "restricted"};

static void gen_node(buf_t *b, int depth);

static void gen_options(buf_t *b)
{
    static const struct { unsigned key; const char *text; } opts[] = {
        {0, "\"enum\":[\"a\",\"b\"]"}, {0, "\"enum\":[\"a\"]"}, {0, "\"enum\":[\"a\",\"b\",\"c\"]"},
        {0, "\"enum\":\"oops\""}, {1, "\"maxLength\":5"}, {1, "\"maxLength\":9"},
        {2, "\"minimum\":0"}, {2, "\"minimum\":3"}, {3, "\"pattern\":\"^a\""},
        {3, "\"pattern\":\"^b\""}, {4, "\"format\":\"email\""}, {5, "\"uniqueItems\":true"},
        {6, "\"precision\":10"}, {7, "\"maxItems\":\"x\""}, {7, "\"maxItems\":2"},
        {8, "\"maximum\":\"2030-01-01\""}, {8, "\"maximum\":\"2031-06-01\""},
        {8, "\"maximum\":\"2031-06-01T00:00:00Z\""}, {8, "\"maximum\":7"}};
    unsigned n = rnd(4), used = 0, k = 0;
    bp(b, ",\"logicalTypeOptions\":{");
    for (unsigned i = 0; i < n; i++) {
        unsigned o = rnd(sizeof opts / sizeof opts[0]);
        if (used & (1u << opts[o].key))   /* one of each key */
            continue;
        used |= 1u << opts[o].key;
        bp(b, "%s%s", k++ ? "," : "", opts[o].text);
    }
    bp(b, "}");
}

/* The body of one property (without its name): type and what hangs off it. */
static void gen_body(buf_t *b, int depth)
{
    const char *t = k_types[rnd(8)];
    bp(b, "\"logicalType\":\"%s\"", t);
    if (rnd(2))
        bp(b, ",\"required\":%s", rnd(2) ? "true" : "false");
    if (rnd(5) == 0)
        bp(b, ",\"default\":%s", rnd(2) ? "\"d\"" : "0");
    if (rnd(5) == 0)
        bp(b, ",\"classification\":\"%s\"", k_classes[rnd(4)]);
    if (rnd(4) == 0)
        bp(b, ",\"description\":\"d%u\"", rnd(3));
    if (rnd(6) == 0)
        bp(b, ",\"unique\":%s", rnd(2) ? "true" : "false");
    if (rnd(3) == 0)
        gen_options(b);
    if (!strcmp(t, "object") && depth < 3) {
        if (rnd(12) == 0) {
            bp(b, ",\"properties\":\"oops\"");
        } else {
            bp(b, ",\"properties\":[");
            unsigned n = rnd(4);
            for (unsigned i = 0; i < n; i++) {
                bp(b, "%s", i ? "," : "");
                gen_node(b, depth + 1);   /* nested names may repeat: peers' are not checked */
            }
            bp(b, "]");
        }
    }
    if (!strcmp(t, "array") && depth < 3 && rnd(4) != 0) {
        if (rnd(12) == 0) {
            bp(b, ",\"items\":5");
        } else {
            bp(b, ",\"items\":{");
            gen_body(b, depth + 1);
            bp(b, "}");
        }
    }
}

static void gen_node(buf_t *b, int depth)
{
    bp(b, "{\"name\":\"f%u\",", rnd(5));
    gen_body(b, depth);
    bp(b, "}");
}

static Trib__Manifest *gen_manifest(void)
{
    buf_t b = {0};
    bp(&b, "{\"name\":\"p\",\"domain\":\"payments\",\"version\":\"1.%u.0\","
           "\"owners\":{\"business\":\"a%u@example.com\",\"technical\":\"t@example.com\"},"
           "\"classification\":\"%s\",\"tags\":[\"t%u\"],\"sla\":{\"freshness\":\"%um\"},"
           "\"schema\":[", rnd(3), rnd(2), k_classes[rnd(4)], rnd(2), rnd(2));
    unsigned n = 1 + rnd(5), used = 0, k = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned name = rnd(6);
        if (used & (1u << name))
            continue;
        used |= 1u << name;
        bp(&b, "%s{\"name\":\"f%u\",", k++ ? "," : "", name);
        gen_body(&b, 0);
        if (rnd(4) == 0)
            bp(&b, ",\"primaryKey\":true");
        if (rnd(8) == 0)
            bp(&b, ",\"primaryKeyPosition\":%u", rnd(3));
        bp(&b, "}");
    }
    bp(&b, "]}");
    char err[512];
    Trib__Manifest *m = manifest_parse(b.s, b.n, NULL, err, sizeof err);
    cr_assert_not_null(m, "generated manifest refused: %s\n%s", err, b.s);
    free(b.s);
    return m;
}

static compat_report_t *chk(const Trib__Manifest *const *hist, size_t n, const Trib__Manifest *m,
                            compat_mode_t mode)
{
    char err[256];
    compat_report_t *r = compat_check(hist, n, m, mode, err, sizeof err);
    cr_assert_not_null(r, "compat_check: %s", err);
    size_t breaking = 0;
    for (size_t i = 0; i < r->n; i++) {
        const compat_change_t *c = &r->changes[i];
        cr_assert_not_null(c->path);
        cr_assert_not_null(c->message);
        breaking += c->breaking;
        if (mode == COMPAT_NONE)
            cr_assert(!c->breaking);
    }
    cr_assert_eq(r->compatible, breaking == 0);
    if (mode == COMPAT_NONE)
        cr_assert(r->compatible);
    else
        cr_assert_eq(r->required == COMPAT_BUMP_MAJOR, !r->compatible,
                     "%s: compatible %d but bump %s", compat_mode_name(mode), r->compatible,
                     compat_bump_name(r->required));
    json_t *j = compat_report_json(r);
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    cr_assert_not_null(s);
    free(s);
    json_decref(j);
    return r;
}

Test(compat, random_schemas_keep_the_invariants, .timeout = 120)
{
    enum { PAIRS = 400 };
    size_t changes = 0, broken = 0;
    for (int i = 0; i < PAIRS; i++) {
        Trib__Manifest *a = gen_manifest(), *b = gen_manifest(), *c = gen_manifest();
        const Trib__Manifest *ha[] = {a}, *hb[] = {b}, *hab[] = {a, b};
        int ok[2][3];   /* [a->b, b->a][BACKWARD, FORWARD, FULL] */
        size_t n[2] = {0, 0};
        for (int dir = 0; dir < 2; dir++)
            for (int m = 0; m < 3; m++) {
                compat_report_t *r = chk(dir ? hb : ha, 1, dir ? a : b,
                                         (compat_mode_t[]){COMPAT_BACKWARD, COMPAT_FORWARD,
                                                           COMPAT_FULL}[m]);
                ok[dir][m] = r->compatible;
                n[dir] = r->n;
                compat_report_free(&r);
            }
        changes += n[0];
        broken += !ok[0][2];
        cr_assert_eq(ok[0][2], ok[0][0] && ok[0][1], "case %d: FULL != BACKWARD && FORWARD", i);
        cr_assert_eq(ok[1][2], ok[1][0] && ok[1][1], "case %d", i);
        cr_assert_eq(ok[0][0], ok[1][1], "case %d: BACKWARD(a,b) != FORWARD(b,a)", i);
        cr_assert_eq(ok[0][1], ok[1][0], "case %d: FORWARD(a,b) != BACKWARD(b,a)", i);
        cr_assert_eq(n[0], n[1], "case %d: %zu changes a->b, %zu b->a", i, n[0], n[1]);

        compat_report_t *r = chk(ha, 1, a, COMPAT_FULL_TRANSITIVE);   /* a against itself */
        cr_assert_eq(r->n, 0, "case %d: %zu changes between identical manifests", i, r->n);
        cr_assert_eq(r->required, COMPAT_BUMP_NONE);
        compat_report_free(&r);

        /* transitive = every earlier version in the plain mode */
        static const compat_mode_t pairs[][2] = {
            {COMPAT_BACKWARD, COMPAT_BACKWARD_TRANSITIVE},
            {COMPAT_FORWARD, COMPAT_FORWARD_TRANSITIVE},
            {COMPAT_FULL, COMPAT_FULL_TRANSITIVE}};
        for (int m = 0; m < 3; m++) {
            compat_report_t *ra = chk(ha, 1, c, pairs[m][0]), *rb = chk(hb, 1, c, pairs[m][0]);
            compat_report_t *rt = chk(hab, 2, c, pairs[m][1]);
            cr_assert_eq(rt->compatible, ra->compatible && rb->compatible, "case %d: %s", i,
                         compat_mode_name(pairs[m][1]));
            cr_assert_geq(rt->n, rb->n);
            char err[512];
            compat_version_check(rt, err, sizeof err);   /* must not crash */
            compat_report_free(&ra);
            compat_report_free(&rb);
            compat_report_free(&rt);
        }
        r = chk(hb, 1, c, COMPAT_NONE);
        compat_report_free(&r);
        manifest_free(&a);
        manifest_free(&b);
        manifest_free(&c);
    }
    fprintf(stderr, "random: %d pairs, %zu changes a->b, %zu pairs not FULL-compatible\n", PAIRS,
            changes, broken);
    /* the generator must exercise both outcomes, or the checks above prove little */
    cr_expect_gt(changes, PAIRS * 3);
    cr_expect_gt(broken, PAIRS / 4);
    cr_expect_lt(broken, PAIRS);
}

/* ---------------------------------------------------------------- prepared versions */

/* The changes a transitive check must report, built the slow way from one pairwise check per
 * earlier version (every change built, nothing dropped early): the latest's changes, then per
 * older version (newest first) each schema change of the same identity adds that version to the
 * change's list, and a break not seen yet is added. */
typedef struct {
    compat_kind_t kind;
    char path[256], from[256], to[256];
    int breaking;
    char against[512];
    size_t n_against;
} ref_t;

static void ref_against(ref_t *c, const char *ver)
{
    if (c->n_against++ >= COMPAT_MAX_AGAINST)
        return;
    size_t n = strlen(c->against);
    snprintf(c->against + n, sizeof c->against - n, "%s%s", n ? ", " : "", ver);
}

static int ref_same(const ref_t *r, const compat_change_t *c)
{
    return r->kind == c->kind && !strcmp(r->path, c->path ? c->path : "") &&
           !strcmp(r->from, c->from ? c->from : "\x1e") && !strcmp(r->to, c->to ? c->to : "\x1e");
}

static void ref_set(ref_t *r, const compat_change_t *c)
{
    memset(r, 0, sizeof *r);
    r->kind = c->kind;
    snprintf(r->path, sizeof r->path, "%s", c->path ? c->path : "");
    snprintf(r->from, sizeof r->from, "%s", c->from ? c->from : "\x1e");
    snprintf(r->to, sizeof r->to, "%s", c->to ? c->to : "\x1e");
    r->breaking = c->breaking;
}

static size_t ref_transitive(const Trib__Manifest *const *hist, size_t n, const Trib__Manifest *next,
                             compat_mode_t base, ref_t *out, size_t cap)
{
    size_t k = 0;
    compat_report_t *r = chk(&hist[n - 1], 1, next, base);
    for (size_t i = 0; i < r->n; i++) {
        cr_assert_lt(k, cap);
        ref_set(&out[k], &r->changes[i]);
        ref_against(&out[k++], hist[n - 1]->version);
    }
    compat_report_free(&r);
    for (size_t v = n - 1; v-- > 0;) {
        r = chk(&hist[v], 1, next, base);
        for (size_t i = 0; i < r->n; i++) {
            const compat_change_t *c = &r->changes[i];
            if (strncmp(c->path, "schema.", 7) != 0)
                continue;   /* older versions: only the schema can break a mode */
            long at = -1;
            for (size_t j = 0; j < k; j++)
                if (ref_same(&out[j], c))
                    at = (long)j;   /* the last of that identity, as an index keeps it */
            if (at >= 0) {
                out[at].breaking |= c->breaking;
                ref_against(&out[at], hist[v]->version);
            } else if (c->breaking) {
                cr_assert_lt(k, cap);
                ref_set(&out[k], c);
                ref_against(&out[k++], hist[v]->version);
            }
        }
        compat_report_free(&r);
    }
    return k;
}

/* A transitive check drops an older version's changes that cannot matter before building them,
 * and compares prepared schemas by their encodings: the report is the one every change built
 * and compared in full gives, change for change, with the same lists of versions. */
Test(compat, transitive_report_equals_the_pairwise_merge, .timeout = 120)
{
    enum { CASES = 150, VERS = 5 };
    static ref_t ref[512];
    static const compat_mode_t modes[][2] = {
        {COMPAT_BACKWARD, COMPAT_BACKWARD_TRANSITIVE},
        {COMPAT_FORWARD, COMPAT_FORWARD_TRANSITIVE},
        {COMPAT_FULL, COMPAT_FULL_TRANSITIVE}};
    size_t seen = 0;
    for (int i = 0; i < CASES; i++) {
        Trib__Manifest *h[VERS], *next = gen_manifest();
        for (int v = 0; v < VERS; v++)
            h[v] = gen_manifest();
        for (int m = 0; m < 3; m++) {
            size_t k = ref_transitive((const Trib__Manifest *const *)h, VERS, next, modes[m][0], ref,
                                      sizeof ref / sizeof ref[0]);
            compat_report_t *r = chk((const Trib__Manifest *const *)h, VERS, next, modes[m][1]);
            cr_assert_eq(r->n, k, "case %d %s: %zu changes, the pairwise merge has %zu", i,
                         compat_mode_name(modes[m][1]), r->n, k);
            for (size_t j = 0; j < k; j++) {
                const compat_change_t *c = &r->changes[j];
                cr_assert(ref_same(&ref[j], c), "case %d change %zu: %s %s, expected %s %s", i, j, c->path,
                          compat_kind_name(c->kind), ref[j].path, compat_kind_name(ref[j].kind));
                cr_assert_eq(c->breaking, ref[j].breaking, "case %d change %zu (%s)", i, j, c->path);
                cr_assert_eq(c->n_against, ref[j].n_against, "case %d change %zu (%s)", i, j, c->path);
                cr_assert_str_eq(c->against ? c->against : "", ref[j].against, "case %d change %zu", i, j);
            }
            seen += k;
            compat_report_free(&r);
        }
        for (int v = 0; v < VERS; v++)
            manifest_free(&h[v]);
        manifest_free(&next);
    }
    cr_assert_gt(seen, CASES, "the generator made too few changes to test anything");
}

/* Two properties are equal when their encodings are (key order aside); where the encodings differ
 * but the values are still equal (0.0 and -0.0) the trees decide, as before; 1 and 1.0 differ. */
Test(compat, prepared_schemas_compare_as_the_values_do)
{
    static const struct {
        const char *a, *b;
        int changes;
    } rows[] = {
        {"  - {name: x, logicalType: number, required: true, default: 0.0}\n",
         "  - {name: x, logicalType: number, required: true, default: -0.0}\n", 0},
        {"  - {name: x, logicalType: integer, required: true, default: 1}\n",
         "  - {name: x, logicalType: integer, required: true, default: 1.0}\n", 1},
        {"  - {name: x, logicalType: string, logicalTypeOptions: {minLength: 1, maxLength: 9}}\n",
         "  - {logicalTypeOptions: {maxLength: 9, minLength: 1}, logicalType: string, name: x}\n", 0},
        {"  - {name: x, logicalType: string, logicalTypeOptions: {maxLength: 9}}\n",
         "  - {name: x, logicalType: string, logicalTypeOptions: {maxLength: 8}}\n", 1},
        {"  - {name: x, logicalType: string}\n  - {name: y, logicalType: string}\n",
         "  - {name: y, logicalType: string}\n  - {name: x, logicalType: string}\n", 0},
        {"  - {name: x, logicalType: string}\n",
         "  - {name: xy, logicalType: string}\n  - {name: x, logicalType: string}\n", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        Trib__Manifest *a = mk("1.0.0", rows[i].a, NULL), *b = mk("1.1.0", rows[i].b, NULL);
        for (int t = 0; t < 2; t++) {   /* alone and as an older version of a transitive check */
            const Trib__Manifest *h[] = {a, a};
            compat_report_t *r = chk(h, t ? 2 : 1, b, t ? COMPAT_FULL_TRANSITIVE : COMPAT_FULL);
            if ((int)r->n != rows[i].changes)
                dump(r);
            cr_assert_eq((int)r->n, rows[i].changes, "row %zu: %zu changes", i, r->n);
            compat_report_free(&r);
        }
        manifest_free(&a);
        manifest_free(&b);
    }
}
