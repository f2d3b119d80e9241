/* tests/test_gate.c - the governance gate of publish and its views, against real `trib agent`
 * processes (issue 12 items 1-3 and 6, DESIGN §14): a breaking change (integer -> string) without
 * a major bump is refused with the report, a major bump is accepted; a downgrade is refused; an
 * unchanged manifest is a no-op; a retired product comes back only with revive and a higher
 * version; `trib check` is a dry run that exits 1 when publish would be refused; history and diff
 * answer on a second node from its replica; records are read with the schema version they were
 * validated against, and a read never crosses into records of another version without a
 * schema_changed line; a bad compatibility mode is refused naming its line.
 * Must not: sleep to synchronise (h_wait with deadlines), leave processes behind. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <lmdb.h>
#include "tests/harness.h"

TestSuite(gate, .fini = h_cleanup_all, .timeout = 120);

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "2", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"
#define ID "payments/settled-transactions"
#define PATH "/v1/products/" ID

/* ------------------------------------------------------------------ helpers */

/* The example's manifest at version, amount_minor of type amount_type, extra top-level YAML and
 * extra schema lines. */
static char *manifest(const char *version, const char *amount_type, const char *extra, const char *fields)
{
    char *t = NULL;
    int n = asprintf(&t,
                     "name: settled-transactions\ndomain: payments\nversion: \"%s\"\nstatus: active\n"
                     "title: Settled card transactions\n"
                     "owners: {business: maria.lopez@example.com, technical: payments-data@example.com}\n"
                     "%s"
                     "schema:\n"
                     "  - {name: txn_id, logicalType: string, required: true, primaryKey: true}\n"
                     "  - {name: amount_minor, logicalType: %s, required: true}\n"
                     "  - {name: currency, logicalType: string, required: true}\n%s",
                     version, extra ? extra : "", amount_type, fields ? fields : "");
    cr_assert_geq(n, 0);
    return t;
}

/* PUT (publish) or POST (check) text to base+path+query; the reply body as JSON in *j. */
static long call(h_node_t *n, const char *method, const char *path, const char *text, json_t **j)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http(method, url, "application/yaml", text, strlen(text), &r), 0, "%s %s: transport", method, url);
    long st = r.status;
    *j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    cr_assert_not_null(*j, "%s %s: %ld, not JSON: %.*s", method, url, st, (int)r.len, r.body ? r.body : "");
    h_resp_free(&r);
    return st;
}

static long publish(h_node_t *n, const char *text, const char *query, json_t **j)
{
    char path[256];
    snprintf(path, sizeof path, PATH "%s", query ? query : "");
    return call(n, "PUT", path, text, j);
}

static const char *s_of(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* The change at path in a report's "changes", or NULL. */
static json_t *change_at(json_t *rep, const char *path)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rep, "changes"), i, c)
        if (strcmp(s_of(c, "path"), path) == 0)
            return c;
    return NULL;
}

/* The change of kind at path, or NULL. */
static json_t *change_of(json_t *rep, const char *path, const char *kind)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rep, "changes"), i, c)
        if (strcmp(s_of(c, "path"), path) == 0 && strcmp(s_of(c, "change"), kind) == 0)
            return c;
    return NULL;
}

static json_int_t catalog_seq(h_node_t *n)
{
    json_t *p = h_get_json(n->url, PATH, NULL);
    cr_assert_not_null(p);
    json_int_t seq = json_integer_value(json_object_get(p, "catalog_seq"));
    json_decref(p);
    return seq;
}

/* A node with peers publishes once it has compared its own domain's log with a peer's (503
 * not_synced until then): the first publish is retried until it is answered otherwise. */
typedef struct {
    h_node_t *n;
    const char *text;
    long status;
    json_t *j;
} first_t;

static int first_publish(void *ctx)
{
    first_t *f = ctx;
    json_decref(f->j);
    f->j = NULL;
    f->status = publish(f->n, f->text, NULL, &f->j);
    return f->status != 503;
}

static void publish_first(h_node_t *n, const char *text)
{
    first_t f = {.n = n, .text = text};
    cr_assert(h_wait(first_publish, &f, 20000), "publish: still 503 after 20 s: %s", s_of(f.j, "detail"));
    cr_assert_eq(f.status, 201, "first publish: %ld %s", f.status, s_of(f.j, "detail"));
    json_decref(f.j);
}

/* ------------------------------------------------------------------ the gate */

Test(gate, breaking_change_needs_a_major_version)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    cr_assert_eq(publish(&n, v1, NULL, &j), 201, "%s", s_of(j, "detail"));
    json_decref(j);

    /* integer -> string at a minor version: refused, with the report. */
    char *bad = manifest("1.1.0", "string", NULL, NULL);
    long st = publish(&n, bad, NULL, &j);
    cr_assert_eq(st, 422, "integer -> string at 1.1.0: %ld %s", st, s_of(j, "detail"));
    cr_assert_str_eq(s_of(j, "error"), "incompatible");
    cr_assert(strstr(s_of(j, "detail"), "needs a major version, e.g. 2.0.0"), "%s", s_of(j, "detail"));
    cr_assert_str_eq(s_of(j, "mode"), "BACKWARD_TRANSITIVE");
    cr_assert_str_eq(s_of(j, "required_bump"), "major");
    json_t *c = change_at(j, "schema.amount_minor.logicalType");
    cr_assert_not_null(c, "the report lacks the type change");
    cr_assert_str_eq(s_of(c, "change"), "type_changed");
    cr_assert(json_is_true(json_object_get(c, "breaking")));
    cr_assert(json_is_false(json_object_get(json_object_get(c, "verdicts"), "BACKWARD")));
    cr_assert(json_is_true(json_object_get(json_object_get(c, "verdicts"), "NONE")));
    cr_assert_geq(json_array_size(json_object_get(j, "violations")), 1);
    json_decref(j);
    cr_assert_eq(catalog_seq(&n), 1, "a refused publish made an entry");
    cr_assert_eq(h_metric(n.url, "trib_publish_refused_total{reason=\"incompatible\"}"), 1);

    /* The CLI says why and exits 1. */
    char file[512], *out = NULL, *err = NULL;
    snprintf(file, sizeof file, "%s/bad.yaml", n.dir);
    cr_assert_eq(h_write_file(file, bad, strlen(bad)), 0);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "publish", file, NULL), 1, "%s", out);
    cr_assert(strstr(err, "422 incompatible"), "%s", err);
    cr_assert(strstr(err, "schema.amount_minor.logicalType"), "the refusal does not list the change: %s", err);
    free(out);
    free(err);

    /* The same change as a new major is accepted. */
    char *v2 = manifest("2.0.0", "string", NULL, NULL);
    cr_assert_eq(publish(&n, v2, NULL, &j), 200, "%s", s_of(j, "detail"));
    cr_assert_eq(json_integer_value(json_object_get(j, "catalog_seq")), 2);
    json_decref(j);
    /* 2.1.0 is checked against the 2.x line, not the 1.x one it was allowed to break. */
    char *v21 = manifest("2.1.0", "string", NULL, "  - {name: mcc, logicalType: string}\n");
    cr_assert_eq(publish(&n, v21, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    free(v1);
    free(bad);
    free(v2);
    free(v21);
}

Test(gate, transitive_mode_sees_every_version_of_the_line)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    /* 1.0.0 has note:integer; 1.1.0 removes it (optional: fine); 1.2.0 re-adds it as a string:
     * BACKWARD against 1.1.0 alone passes, BACKWARD_TRANSITIVE sees 1.0.0's integer. */
    const char *note_int = "  - {name: note, logicalType: integer}\n", *note_str = "  - {name: note, logicalType: string}\n";
    char *a = manifest("1.0.0", "integer", NULL, note_int);
    char *b = manifest("1.1.0", "integer", NULL, NULL);
    char *c = manifest("1.2.0", "integer", NULL, note_str);
    char *c_bw = manifest("1.2.0", "integer", "compatibility: BACKWARD\n", note_str);
    cr_assert_eq(publish(&n, a, NULL, &j), 201, "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(publish(&n, b, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(call(&n, "POST", PATH "/check", c, &j), 200);
    cr_assert(json_is_false(json_object_get(j, "ok")), "transitive check passed: %s", s_of(j, "detail"));
    json_t *ch = change_of(j, "schema.note.logicalType", "type_changed");
    cr_assert_not_null(ch, "no type change against 1.0.0 in the report");
    cr_assert(json_is_true(json_object_get(ch, "breaking")));
    char *against = json_dumps(json_object_get(ch, "against_versions"), 0);
    cr_assert(against && strstr(against, "1.0.0"), "%s", against);
    free(against);
    json_decref(j);
    cr_assert_eq(call(&n, "POST", PATH "/check", c_bw, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "ok")), "BACKWARD against 1.1.0 refused: %s",
              s_of(json_object_get(j, "error"), "detail"));
    json_decref(j);
    free(a);
    free(b);
    free(c);
    free(c_bw);
}

Test(gate, versions_only_go_up_and_unchanged_is_a_no_op)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    char *v11 = manifest("1.1.0", "integer", NULL, "  - {name: mcc, logicalType: string}\n");
    char *down = manifest("1.0.1", "integer", NULL, "  - {name: mcc, logicalType: string}\n  - {name: x, logicalType: string}\n");
    char *same_ver = manifest("1.1.0", "integer", "tags: [other]\n", "  - {name: mcc, logicalType: string}\n");
    cr_assert_eq(publish(&n, v1, NULL, &j), 201);
    json_decref(j);
    cr_assert_eq(publish(&n, v11, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);

    long st = publish(&n, v11, NULL, &j);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(s_of(j, "result"), "unchanged");
    json_decref(j);
    cr_assert_eq(catalog_seq(&n), 2, "an unchanged publish made an entry");
    cr_assert_eq(h_metric(n.url, "trib_publish_unchanged_total"), 1);

    st = publish(&n, down, NULL, &j);
    cr_assert_eq(st, 422, "downgrade 1.1.0 -> 1.0.1: %ld", st);
    cr_assert_str_eq(s_of(j, "error"), "version_not_increased");
    cr_assert(strstr(s_of(j, "detail"), "1.0.1 is not above 1.1.0"), "%s", s_of(j, "detail"));
    /* the violation names the path once: `trib publish` printed "version: version: 1.0.1 ..." */
    json_t *v = NULL, *e;
    size_t i;
    json_array_foreach(json_object_get(j, "violations"), i, e)
        if (!strcmp(s_of(e, "rule"), "version.monotonic"))
            v = e;
    cr_assert_not_null(v, "no version.monotonic violation");
    cr_assert_str_eq(s_of(v, "path"), "version");
    cr_assert(!strncmp(s_of(v, "message"), "1.0.1 is not above 1.1.0", 24), "%s", s_of(v, "message"));
    json_decref(j);
    st = publish(&n, same_ver, NULL, &j);
    cr_assert_eq(st, 422, "same version, other content: %ld", st);
    cr_assert_str_eq(s_of(j, "error"), "version_not_increased");
    json_decref(j);
    cr_assert_eq(catalog_seq(&n), 2);
    cr_assert_eq(h_metric(n.url, "trib_publish_refused_total{reason=\"version_not_increased\"}"), 2);
    json_t *status = h_get_json(n.url, "/v1/status", NULL);
    cr_assert_not_null(status, "the node stopped serving after the refusals");
    json_decref(status);

    json_t *h = h_get_json(n.url, PATH "/history", NULL);
    cr_assert_eq(json_array_size(json_object_get(h, "versions")), 2);
    json_decref(h);
    free(v1);
    free(v11);
    free(down);
    free(same_ver);
}

Test(gate, retired_product_needs_revive_and_a_new_version)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    char *v101 = manifest("1.0.1", "integer", "tags: [revived]\n", NULL);
    cr_assert_eq(publish(&n, v1, NULL, &j), 201);
    json_decref(j);
    h_resp_t r;
    char url[256];
    snprintf(url, sizeof url, "%s" PATH, n.url);
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    h_resp_free(&r);

    long st = publish(&n, v101, NULL, &j);
    cr_assert_eq(st, 409, "publish over a retired product: %ld", st);
    cr_assert_str_eq(s_of(j, "error"), "retired");
    cr_assert(strstr(s_of(j, "detail"), "revive"), "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(h_metric(n.url, "trib_publish_refused_total{reason=\"retired\"}"), 1);
    st = publish(&n, v1, "?revive=1", &j);
    cr_assert_eq(st, 422, "revive at the same version: %ld", st);
    cr_assert_str_eq(s_of(j, "error"), "version_not_increased");
    json_decref(j);
    /* The CLI's --revive with a new version brings it back. */
    char file[512], *out = NULL, *err = NULL;
    snprintf(file, sizeof file, "%s/v101.yaml", n.dir);
    cr_assert_eq(h_write_file(file, v101, strlen(v101)), 0);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "publish", file, NULL), 1);
    cr_assert(strstr(err, "409 retired"), "%s", err);
    free(out);
    free(err);
    /* trib check says it was not compared and why, without claiming "no changes" (v101 has some) */
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "check", file, NULL), 1);
    cr_assert(strstr(out, "not compared") && strstr(out, "publish would be refused: retired") &&
              !strstr(out, "no changes"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "publish", "--revive", file, NULL), 0, "%s", err);
    free(out);
    free(err);
    json_t *p = h_get_json(n.url, PATH, NULL);
    cr_assert_str_eq(s_of(p, "status"), "active");
    json_decref(p);
    free(v1);
    free(v101);
}

Test(gate, check_is_a_dry_run_with_exit_status)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char path[512];
    char *out = NULL, *err = NULL;
    /* A new product: accepted, nothing stored. */
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "check", h_repo_path("examples/settled-transactions.yaml", path,
                                                                    sizeof path), NULL), 0, "%s %s", out, err);
    cr_assert(strstr(out, "new product"), "%s", out);
    free(out);
    free(err);
    json_t *none = h_get_json(n.url, PATH, NULL);
    cr_assert_null(none, "check stored the product");
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "publish", path, NULL), 0, "%s", err);
    free(out);
    free(err);
    /* v2 (integer -> string, 2.0.0): compatible? no; accepted? yes, it is a major. */
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "check",
                        h_repo_path("examples/settled-transactions-v2.yaml", path, sizeof path), NULL), 0, "%s %s", out, err);
    cr_assert(strstr(out, "NOT compatible under BACKWARD_TRANSITIVE"), "%s", out);
    cr_assert(strstr(out, "schema.amount_minor.logicalType"), "%s", out);
    cr_assert(strstr(out, "publish would be accepted"), "%s", out);
    free(out);
    free(err);
    /* The same change at 1.1.0: exit 1. */
    char *bad = manifest("1.1.0", "string", NULL, NULL), file[512];
    snprintf(file, sizeof file, "%s/bad.yaml", n.dir);
    cr_assert_eq(h_write_file(file, bad, strlen(bad)), 0);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "check", file, NULL), 1, "%s", out);
    cr_assert(strstr(out, "publish would be refused: incompatible"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "check", "--json", file, NULL), 1);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    cr_assert_str_eq(s_of(j, "required_bump"), "major");
    json_decref(j);
    free(out);
    free(err);
    free(bad);
    cr_assert_eq(catalog_seq(&n), 1, "check made an entry");
}

/* The manifest at version with status instead of active. */
static char *with_status(const char *version, const char *status)
{
    char *m = manifest(version, "integer", NULL, NULL), *p = strstr(m, "status: active\n"), *t = NULL;
    cr_assert_not_null(p);
    cr_assert_gt(asprintf(&t, "%.*sstatus: %s\n%s", (int)(p - m), m, status, p + strlen("status: active\n")), 0);
    free(m);
    return t;
}

/* A lifecycle status change is a minor change (governance-anchors C.2): a patch bump, or none, is
 * refused 422 with the report naming the change and the bump; trib check shows it and exits 1. */
Test(gate, status_change_needs_a_minor_version)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    cr_assert_eq(publish(&n, v1, NULL, &j), 201, "%s", s_of(j, "detail"));
    json_decref(j);
    static const char *const refused[] = {"1.0.1", "1.0.0"};
    for (size_t i = 0; i < 2; i++) {
        char *dep = with_status(refused[i], "deprecated");
        cr_assert_eq(publish(&n, dep, NULL, &j), 422, "deprecated at %s accepted", refused[i]);
        cr_expect_str_eq(s_of(j, "error"), "version_not_increased");
        cr_expect(strstr(s_of(j, "detail"), "(status: metadata_changed)") &&
                  strstr(s_of(j, "detail"), "minor version, e.g. 1.1.0"), "%s", s_of(j, "detail"));
        cr_expect_str_eq(s_of(j, "required_bump"), "minor", "at %s", refused[i]);
        json_t *c = change_of(j, "status", "metadata_changed");
        cr_expect_not_null(c, "the report names the status change (at %s)", refused[i]);
        cr_expect_str_eq(s_of(c, "bump"), "minor");
        cr_expect_str_eq(s_of(c, "from"), "active");
        cr_expect_str_eq(s_of(c, "to"), "deprecated");
        json_decref(j);
        char file[512], *out = NULL, *err = NULL;
        snprintf(file, sizeof file, "%s/dep.yaml", n.dir);
        cr_assert_eq(h_write_file(file, dep, strlen(dep)), 0);
        cr_expect_eq(h_trib(&n, NULL, &out, &err, "check", file, NULL), 1, "%s %s", out, err);
        cr_expect(out && strstr(out, "status") && strstr(out, "metadata_changed") && strstr(out, "minor") &&
                  strstr(out, "publish would be refused: version_not_increased"), "%s", out ? out : "");
        free(out);
        free(err);
        free(dep);
    }
    cr_expect_eq(catalog_seq(&n), 1, "a refused publish made an entry");
    char *ok = with_status("1.1.0", "deprecated");
    cr_assert_eq(publish(&n, ok, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    free(ok);
    free(v1);
}

Test(gate, bad_mode_is_refused_naming_its_line)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *m = manifest("1.0.0", "integer", "compatibility: backwards\n", NULL);
    long st = publish(&n, m, NULL, &j);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(s_of(j, "error"), "bad_manifest");
    cr_assert(strstr(s_of(j, "detail"), "compatibility: unknown mode 'backwards' (line 7)"), "%s", s_of(j, "detail"));
    json_decref(j);
    free(m);
    /* A declared mode is shown in the product's history. */
    m = manifest("1.0.0", "integer", "compatibility: FULL\n", NULL);
    cr_assert_eq(publish(&n, m, NULL, &j), 201, "%s", s_of(j, "detail"));
    json_decref(j);
    json_t *h = h_get_json(n.url, PATH "/history", NULL);
    cr_assert_str_eq(s_of(json_array_get(json_object_get(h, "versions"), 0), "mode"), "FULL");
    json_t *prod = h_get_json(n.url, PATH, NULL);
    cr_assert_str_eq(s_of(prod, "compatibility"), "FULL");
    json_decref(prod);
    json_decref(h);
    free(m);
}

/* ------------------------------------------------------------------ history and diff anywhere */

typedef struct {
    h_node_t *n;
    json_int_t seq;
} has_seq_t;

static int has_seq(void *ctx)
{
    has_seq_t *c = ctx;
    json_t *p = h_get_json(c->n->url, PATH, NULL);
    int ok = p && json_integer_value(json_object_get(p, "catalog_seq")) >= c->seq;
    json_decref(p);
    return ok;
}

Test(gate, history_and_diff_on_another_node)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0);
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0);
    char path[512], *out = NULL, *err = NULL;
    size_t len;
    char *v1 = h_read_file(h_repo_path("examples/settled-transactions.yaml", path, sizeof path), &len);
    cr_assert_not_null(v1);
    publish_first(&a, v1);
    free(v1);
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "publish",
                        h_repo_path("examples/settled-transactions-v2.yaml", path, sizeof path), NULL), 0, "%s", err);
    free(out);
    free(err);
    has_seq_t hs = {&b, 2};
    cr_assert(h_wait(has_seq, &hs, 20000), "growth did not learn version 2.0.0");

    json_t *h = h_get_json(b.url, PATH "/history", NULL);
    cr_assert_not_null(h, "history on growth");
    json_t *vs = json_object_get(h, "versions");
    cr_assert_eq(json_array_size(vs), 2);
    cr_assert_str_eq(s_of(json_array_get(vs, 0), "version"), "1.0.0");
    cr_assert_str_eq(s_of(json_array_get(vs, 0), "change_class"), "initial");
    cr_assert_str_eq(s_of(json_array_get(vs, 1), "version"), "2.0.0");
    cr_assert_str_eq(s_of(json_array_get(vs, 1), "change_class"), "major");
    cr_assert(json_is_true(json_object_get(json_array_get(vs, 1), "breaking")));
    json_t *st = h_get_json(a.url, "/v1/status", NULL);
    cr_assert_str_eq(s_of(json_array_get(vs, 1), "signer"), s_of(st, "node_id"), "the signer is payments' node");
    json_decref(st);
    json_decref(h);

    json_t *d = h_get_json(b.url, PATH "/diff?from=1.0.0&to=2.0.0", NULL);
    cr_assert_not_null(d, "diff on growth");
    cr_assert(json_is_false(json_object_get(d, "compatible")));
    cr_assert_str_eq(s_of(d, "required_bump"), "major");
    cr_assert_not_null(change_at(d, "schema.amount_minor.logicalType"));
    cr_assert_not_null(change_at(d, "schema.merchant_category"));
    json_decref(d);
    long status;
    d = h_get_json(b.url, PATH "/diff?from=1.0.0&to=9.9.9", &status);
    cr_assert_eq(status, 404);
    json_decref(d);
    d = h_get_json(b.url, PATH "/diff?from=1.0.0", &status);
    cr_assert_eq(status, 400);
    json_decref(d);

    cr_assert_eq(h_trib(&b, NULL, &out, &err, "history", ID, NULL), 0, "%s", err);
    cr_assert(strstr(out, "1.0.0") && strstr(out, "2.0.0") && strstr(out, "major"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(h_trib(&b, NULL, &out, &err, "diff", ID, "1.0.0", "2.0.0", NULL), 0, "%s", err);
    cr_assert(strstr(out, "NOT compatible") && strstr(out, "type_changed") && strstr(out, "field_added_optional"),
              "%s", out);
    /* the product's declared mode, and that one pair was compared */
    cr_assert(strstr(out, "NOT compatible under BACKWARD_TRANSITIVE (checked against 1.0.0 only); required bump: "
                          "major"), "%s", out);
    free(out);
    free(err);
}

/* ------------------------------------------------------------------ records and their schema version */

typedef struct {
    char version[128];
    char *body;
    size_t len;
} got_t;

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
    got_t *g = ctx;
    size_t len = size * n;
    static const char k[] = "X-Trib-Schema-Version:";
    if (len > sizeof k && strncasecmp(buf, k, sizeof k - 1) == 0) {
        const char *v = buf + sizeof k - 1;
        while (*v == ' ')
            v++;
        size_t vl = strcspn(v, "\r\n");
        snprintf(g->version, sizeof g->version, "%.*s", (int)vl, v);
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
    got_t *g = ctx;
    size_t len = size * n;
    char *b = realloc(g->body, g->len + len + 1);
    cr_assert_not_null(b);
    memcpy(b + g->len, buf, len);
    g->len += len;
    b[g->len] = '\0';
    g->body = b;
    return len;
}

static void get_records(h_node_t *n, uint64_t from, got_t *g)
{
    memset(g, 0, sizeof *g);
    char url[512];
    snprintf(url, sizeof url, "%s" PATH "/records?from=%llu", n->url, (unsigned long long)from);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    /* The node's admin token when it has one (DATA/admin.token, the access issue), as the
     * harness's own requests send it. */
    char tpath[400], auth[600];
    snprintf(tpath, sizeof tpath, "%s/admin.token", n->dir);
    size_t tlen = 0;
    char *tok = h_read_file(tpath, &tlen);
    struct curl_slist *hdrs = NULL;
    if (tok) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %.*s", (int)strcspn(tok, "\r\n"), tok);
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        free(tok);
    }
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "GET %s", url);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
}

static int lines_of(const got_t *g)
{
    int k = 0;
    for (size_t i = 0; i < g->len; i++)
        k += g->body[i] == '\n';
    return k;
}

Test(gate, records_are_read_with_their_schema_version)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    char *v11 = manifest("1.1.0", "integer", NULL, "  - {name: mcc, logicalType: string}\n");
    cr_assert_eq(publish(&n, v1, NULL, &j), 201);
    json_decref(j);
    const char *three = "{\"txn_id\":\"a\",\"amount_minor\":1,\"currency\":\"EUR\"}\n"
                        "{\"txn_id\":\"b\",\"amount_minor\":2,\"currency\":\"EUR\"}\n"
                        "{\"txn_id\":\"c\",\"amount_minor\":3,\"currency\":\"EUR\"}\n";
    char url[512];
    snprintf(url, sizeof url, "%s" PATH "/records", n.url);
    h_resp_t r;
    cr_assert_eq(h_http("POST", url, "application/x-ndjson", three, strlen(three), &r), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_resp_free(&r);
    cr_assert_eq(publish(&n, v11, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    const char *two = "{\"txn_id\":\"d\",\"amount_minor\":4,\"currency\":\"EUR\",\"mcc\":\"5411\"}\n"
                      "{\"txn_id\":\"e\",\"amount_minor\":5,\"currency\":\"EUR\"}\n";
    cr_assert_eq(h_http("POST", url, "application/x-ndjson", two, strlen(two), &r), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    h_resp_free(&r);

    got_t g;
    get_records(&n, 1, &g);
    cr_assert_str_eq(g.version, "1.0.0");
    cr_assert_eq(lines_of(&g), 4, "3 records and the schema_changed line, got: %s", g.body);
    cr_assert(strstr(g.body, "\"error\":\"schema_changed\"") && strstr(g.body, "from seq 4") &&
              strstr(g.body, "version 1.1.0"), "%s", g.body);
    free(g.body);
    get_records(&n, 4, &g);
    cr_assert_str_eq(g.version, "1.1.0");
    cr_assert_eq(lines_of(&g), 2, "%s", g.body);
    cr_assert(!strstr(g.body, "error"), "%s", g.body);
    free(g.body);
    get_records(&n, 2, &g);
    cr_assert_str_eq(g.version, "1.0.0");
    cr_assert_eq(lines_of(&g), 3, "%s", g.body);
    free(g.body);
    free(v1);
    free(v11);
}

/* ------------------------------------------------------------------ the change feed */

typedef struct {
    h_node_t *n;
    const char *query;
    const char *want[4];      /* substrings every one of which some line must hold, in order */
    char *body;
} feed_t;

/* The feed (not live) holds lines with each of want, in that order. */
static int feed_has(void *ctx)
{
    feed_t *f = ctx;
    char url[512];
    snprintf(url, sizeof url, "%s/v1/catalog/changes?live=0%s", f->n->url, f->query ? f->query : "");
    h_resp_t r;
    if (h_http("GET", url, NULL, NULL, 0, &r) != 0 || r.status != 200) {
        h_resp_free(&r);
        return 0;
    }
    const char *at = r.body ? r.body : "";
    int ok = 1;
    for (int i = 0; i < 4 && f->want[i] && ok; i++) {
        const char *hit = strstr(at, f->want[i]);
        ok = hit != NULL;
        if (hit)
            at = hit + strlen(f->want[i]);
    }
    free(f->body);
    f->body = r.body;
    r.body = NULL;
    h_resp_free(&r);
    return ok;
}

Test(gate, change_feed_shows_events_from_a_peer)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0);
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    char *v11 = manifest("1.1.0", "integer", NULL, "  - {name: mcc, logicalType: string}\n");
    char *v2 = manifest("2.0.0", "string", NULL, "  - {name: mcc, logicalType: string}\n");
    char *dep = manifest("2.1.0", "string", NULL, "  - {name: mcc, logicalType: string}\n");
    char *p;
    char *fixed = NULL;
    p = strstr(dep, "status: active\n");
    cr_assert_not_null(p);
    cr_assert_gt(asprintf(&fixed, "%.*sstatus: deprecated\n%s", (int)(p - dep), dep, p + strlen("status: active\n")), 0);
    free(dep);
    publish_first(&a, v1);
    cr_assert_eq(publish(&a, v11, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(publish(&a, v2, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(publish(&a, fixed, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);

    /* growth's feed, from its own replica of payments' log. */
    feed_t f = {.n = &b, .query = "&domain=payments",
                .want = {"\"event\":\"published\"", "\"change_class\":\"minor\"", "\"event\":\"breaking\"",
                         "\"event\":\"deprecated\""}};
    int seen = h_wait(feed_has, &f, 20000);
    cr_assert(seen, "growth's feed: %s", f.body ? f.body : "(none)");
    cr_assert(strstr(f.body, "\"event\":\"new_version\""), "%s", f.body);
    cr_assert(strstr(f.body, "\"previous\":\"1.1.0\""), "%s", f.body);
    /* the mode the product declares (the default), not the one step's BACKWARD */
    cr_assert(strstr(f.body, "\"mode\":\"BACKWARD_TRANSITIVE\"") && !strstr(f.body, "\"mode\":\"BACKWARD\""), "%s",
              f.body);
    free(f.body);
    f.body = NULL;

    /* A live watcher on growth sees the retirement arrive; it resumes by seq. */
    char *out = NULL, *err = NULL;
    h_resp_t r;
    char url[256];
    snprintf(url, sizeof url, "%s" PATH, a.url);
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    h_resp_free(&r);
    feed_t g = {.n = &b, .query = "&product=" ID "&from=4", .want = {"\"event\":\"retired\""}};
    cr_assert(h_wait(feed_has, &g, 20000), "growth's feed lacks the retirement: %s", g.body ? g.body : "");
    cr_assert(!strstr(g.body, "\"event\":\"published\""), "from=4 resent earlier events: %s", g.body);
    free(g.body);
    cr_assert_eq(h_trib(&b, NULL, &out, &err, "watch", "--no-follow", "--product", ID, NULL), 0, "%s", err);
    cr_assert(strstr(out, "\"event\":\"retired\"") && strstr(out, "\"event\":\"published\""), "%s", out);
    free(out);
    free(err);
    long status;
    json_t *bad = h_get_json(b.url, "/v1/catalog/changes?from=x", &status);
    cr_assert_eq(status, 400);
    json_decref(bad);
    free(v1);
    free(v11);
    free(v2);
    free(fixed);
}

/* ------------------------------------------------------------------ hostile input */

/* Bounded random input: mutated manifests to check and publish, junk versions to diff and junk
 * feed parameters; every answer is a JSON refusal or a verdict, and the node keeps serving. */
/* The feed of a node, read to its end (live=0): the NDJSON body (malloc'd). */
static char *feed_all(h_node_t *n)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/catalog/changes?live=0", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%ld %.*s", r.status, (int)r.len, r.body ? r.body : "");
    char *b = strndup(r.body ? r.body : "", r.len);
    h_resp_free(&r);
    return b;
}

/* Makes n's stopped data dir look as a build before the change log left it: the log's rows from
 * seq `from` up to `to` deleted (to == 0: the whole database dropped) and the fill's mark gone. */
static void forget_changes(h_node_t *n, uint64_t from, uint64_t to)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(env, n->dir, 0, 0600), 0, "open %s", n->dir);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "changes", 0, &log), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    if (to == 0)
        cr_assert_eq(mdb_drop(txn, log, 1), 0);
    for (uint64_t s = from; to && s <= to; s++) {
        uint8_t kb[8];
        for (int i = 0; i < 8; i++)
            kb[i] = (uint8_t)(s >> (56 - 8 * i));
        MDB_val k = {8, kb};
        cr_assert_eq(mdb_del(txn, log, &k, NULL), 0, "row %llu", (unsigned long long)s);
    }
    MDB_val mk = {strlen("store.changes"), "store.changes"};
    int rc = mdb_del(txn, meta, &mk, NULL);
    cr_assert(rc == 0 || rc == MDB_NOTFOUND);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Where needle is in hay, as an offset (cr_assert: present). */
static long at(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    cr_assert_not_null(p, "%s not in: %s", needle, hay);
    return (long)(p - hay);
}

Test(gate, change_feed_is_filled_for_a_data_dir_made_before_it)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    char *v11 = manifest("1.1.0", "integer", NULL, "  - {name: mcc, logicalType: string}\n");
    cr_assert_eq(publish(&a, v1, NULL, &j), 201, "%s", s_of(j, "detail"));
    json_decref(j);
    cr_assert_eq(publish(&a, v11, NULL, &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    h_resp_t r;
    char url[256];
    snprintf(url, sizeof url, "%s" PATH, a.url);
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    h_resp_free(&r);

    /* no change log at all (a build before it): the three entries are listed after a restart,
     * in catalog order, as the events they are */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    forget_changes(&a, 0, 0);
    cr_assert_eq(h_node_restart(&a), 0);
    char *f = feed_all(&a);
    long p1 = at(f, "\"seq\":1,"), p2 = at(f, "\"seq\":2,"), p3 = at(f, "\"seq\":3,");
    cr_assert(p1 < p2 && p2 < p3, "%s", f);
    cr_assert(!strstr(f, "\"seq\":4,"), "a row too many: %s", f);
    cr_expect(at(f, "\"event\":\"published\"") < at(f, "\"event\":\"new_version\"") &&
              at(f, "\"event\":\"new_version\"") < at(f, "\"event\":\"retired\""), "%s", f);
    cr_expect(strstr(f, "\"change_class\":\"minor\"") && strstr(f, "\"backfilled\":true"), "%s", f);
    char *log = h_read_file(a.log, NULL);
    cr_expect(log && strstr(log, "3 catalog entries stored before the change log existed"), "the fill is logged");
    free(log);

    /* once: a second start adds nothing */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0);
    char *g = feed_all(&a);
    cr_expect_str_eq(g, f, "a restart filled again");
    free(g);
    free(f);

    /* a log behind the catalog (rows of the first two entries gone: a build that kept the log
     * from some day on): the missing entries come after the rows it has, the rest not twice */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    forget_changes(&a, 1, 2);
    cr_assert_eq(h_node_restart(&a), 0);
    f = feed_all(&a);
    cr_expect(!strstr(f, "\"seq\":1,") && !strstr(f, "\"seq\":6,"), "%s", f);
    cr_expect(at(f, "\"seq\":3,") < at(f, "\"seq\":4,") && at(f, "\"seq\":4,") < at(f, "\"seq\":5,"), "%s", f);
    cr_expect(at(f, "\"event\":\"retired\"") < at(f, "\"event\":\"published\"") &&
              at(f, "\"event\":\"published\"") < at(f, "\"event\":\"new_version\""), "%s", f);
    free(f);

    /* what is published after is recorded once, as before */
    char *v2 = manifest("2.0.0", "integer", NULL, "  - {name: mcc, logicalType: string}\n");
    cr_assert_eq(publish(&a, v2, "?revive=1", &j), 200, "%s", s_of(j, "detail"));
    json_decref(j);
    f = feed_all(&a);
    cr_expect(strstr(f, "\"seq\":6,") && !strstr(f, "\"seq\":7,"), "%s", f);
    free(f);
    free(v1), free(v11), free(v2);
    h_node_cleanup(&a);
}

Test(gate, random_input_is_refused_and_the_node_serves)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    json_t *j;
    char *v1 = manifest("1.0.0", "integer", NULL, NULL);
    cr_assert_eq(publish(&n, v1, NULL, &j), 201);
    json_decref(j);
    char *v2 = manifest("2.0.0", "string", "compatibility: FULL\n", "  - {name: mcc, logicalType: string}\n");
    size_t len = strlen(v2);
    unsigned seed = 12;
    for (int i = 0; i < 150; i++) {
        char *m = strdup(v2);
        cr_assert_not_null(m);
        int flips = 1 + (int)(rand_r(&seed) % 6);
        for (int f = 0; f < flips; f++)
            m[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
        char url[256];
        snprintf(url, sizeof url, "%s" PATH "%s", n.url, i % 2 ? "/check" : "");
        h_resp_t r;
        cr_assert_eq(h_http(i % 2 ? "POST" : "PUT", url, "application/yaml", m, len, &r), 0);
        cr_assert(r.status == 200 || r.status == 201 || r.status == 400 || r.status == 403 || r.status == 422,
                  "mutation %d: %ld %.*s", i, r.status, (int)r.len, r.body ? r.body : "");
        json_t *body = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
        cr_assert_not_null(body, "mutation %d: not JSON: %.*s", i, (int)r.len, r.body ? r.body : "");
        if (r.status >= 400)
            cr_assert(json_is_string(json_object_get(body, "error")) && json_is_string(json_object_get(body, "detail")));
        json_decref(body);
        h_resp_free(&r);
        free(m);
    }
    static const char *const junk[] = {
        PATH "/diff?from=%00&to=1.0.0", PATH "/diff?from=" "999999999999999999999.0.0&to=1.0.0",
        PATH "/diff?from=1.0.0&to=1.0.0-%ff%fe", PATH "/history?x=1", "/v1/products/payments/NOPE/history",
        "/v1/catalog/changes?from=-1", "/v1/catalog/changes?from=18446744073709551616&live=0",
        "/v1/catalog/changes?domain=Bad_Domain", "/v1/catalog/changes?product=nope",
        "/v1/catalog/changes?from=1&live=0&product=payments/settled-transactions"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", n.url, junk[i]);
        h_resp_t r;
        cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0, "%s", junk[i]);
        cr_assert(r.status == 200 || r.status == 400 || r.status == 404, "%s: %ld", junk[i], r.status);
        h_resp_free(&r);
    }
    json_t *st = h_get_json(n.url, "/v1/status", NULL);
    cr_assert_not_null(st, "the node stopped serving");
    json_decref(st);
    json_t *h = h_get_json(n.url, PATH "/history", NULL);
    cr_assert_not_null(h);
    json_decref(h);
    free(v1);
    free(v2);
}
