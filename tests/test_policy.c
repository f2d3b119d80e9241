/* tests/test_policy.c - node/policy.c and node/policy_store.c: the evaluator per rule type,
 * the parser's limits (hostile sets refused with the line), grace, the set's own tests,
 * signatures against the charter's governance keys and threshold, versions only going up,
 * persistence, determinism, and a bounded random-input run over the parser.
 *
 * Owns: in-memory keys and sets only (a mkdtemp dir for the store, removed after).
 * Must not: start processes (tests/test_policy_fed.c runs real agents). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <regex.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gossip/charter.h"
#include "node/manifest.h"
#include "node/policy.h"
#include "node/policy_memo.h"
#include "node/policy_store.h"
#include "node/yaml.h"
#include "tests/fixtures.h"
#include "tests/harness.h"

#define DAY_MS 86400000LL
#define T0     1800000000000LL

static char err[1024];

static policy_set_t *parse_ok(const char *yaml)
{
    policy_set_t *ps = policy_parse(yaml, strlen(yaml), err, sizeof err);
    cr_assert_not_null(ps, "refused: %s\n%s", err, yaml);
    return ps;
}

static void parse_bad(const char *yaml, const char *want)
{
    policy_set_t *ps = policy_parse(yaml, strlen(yaml), err, sizeof err);
    cr_expect_null(ps, "accepted a set that should be refused (%s):\n%s", want, yaml);
    policy_free(&ps);
    cr_expect(strstr(err, want) != NULL, "error '%s' does not say '%s'", err, want);
}

/* Evaluates manifest (YAML) and returns the report as compact JSON text (malloc'd). */
static char *eval_text(const policy_set_t *ps, const char *manifest, const policy_ctx_t *ctx, size_t *nerrors)
{
    char e2[256];
    yaml_lines_t lines = { 0 };
    int rl;
    json_t *m = yaml_to_json(manifest, strlen(manifest), &lines, &rl, e2, sizeof e2);
    yaml_lines_free(&lines);
    cr_assert_not_null(m, "%s", e2);
    json_t *doc = policy_doc(m);
    json_decref(m);
    policy_report_t r = { 0 };
    policy_ctx_t zero = { .now_ms = T0 };
    cr_assert_eq(policy_eval(ps, doc, ctx ? ctx : &zero, &r), 0);
    json_decref(doc);
    json_t *a = policy_report_json(&r);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (nerrors)
        *nerrors = r.nerrors;
    policy_report_free(&r);
    return s;
}

static int has_rule(const char *report, const char *rule)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\"rule\":\"%s\"", rule);
    return strstr(report, needle) != NULL;
}

#define HEAD "version: 3\nrules:\n"

Test(policy, company_example_parses_and_its_tests_pass)
{
    char path[512];
    size_t len;
    char *text = h_read_file(h_repo_path("examples/policies/company.yaml", path, sizeof path), &len);
    cr_assert_not_null(text);
    policy_set_t *ps = policy_parse(text, len, err, sizeof err);
    free(text);
    cr_assert_not_null(ps, "%s", err);
    cr_expect_eq(policy_version(ps), 1);
    cr_expect_geq(policy_nrules(ps), 9);
    cr_expect_geq(policy_ntests(ps), 5);
    cr_expect_eq(policy_run_tests(ps, NULL, err, sizeof err), 0, "%s", err);
    policy_free(&ps);
}

/* The shipped set against the shipped example products: each passes but signup-funnel, which
 * has no description.purpose, and breaks the rule of that name (it broke owners.required, whose
 * name said nothing of a purpose). */
Test(policy, shipped_examples_against_the_shipped_set)
{
    static const struct { const char *file; size_t errors; } cases[] = {
        { "examples/settled-transactions.yaml", 0 }, { "examples/settled-transactions-v2.yaml", 0 },
        { "examples/payment-disputes.yaml", 0 },     { "examples/growth-experiments.yaml", 0 },
        { "examples/listening-history.yaml", 0 },    { "examples/track-plays.yaml", 0 },
        { "examples/signup-funnel.yaml", 1 },
    };
    char path[512];
    size_t len;
    char *text = h_read_file(h_repo_path("examples/policies/company.yaml", path, sizeof path), &len);
    policy_set_t *ps = policy_parse(text, len, err, sizeof err);
    free(text);
    cr_assert_not_null(ps, "%s", err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text = h_read_file(h_repo_path(cases[i].file, path, sizeof path), &len);
        cr_assert_not_null(text, "%s", cases[i].file);
        Trib__Manifest *m = manifest_parse(text, len, NULL, err, sizeof err);
        free(text);
        cr_assert_not_null(m, "%s: %s", cases[i].file, err);
        json_t *doc = policy_doc_of(m);
        policy_report_t r = { 0 };
        policy_ctx_t ctx = { .now_ms = T0 };
        cr_assert_eq(policy_eval(ps, doc, &ctx, &r), 0);
        cr_expect_eq(r.nerrors, cases[i].errors, "%s: %zu errors (first: %s %s)", cases[i].file, r.nerrors,
                     r.n ? r.v[0].rule : "-", r.n ? r.v[0].message : "");
        for (size_t k = 0; k < r.n; k++)
            if (r.v[k].severity == POLICY_ERROR)
                cr_expect(!strcmp(r.v[k].rule, "description.purpose") && !strcmp(r.v[k].path, "description.purpose"),
                          "%s: error %s at %s", cases[i].file, r.v[k].rule, r.v[k].path);
        policy_report_free(&r);
        json_decref(doc);
        manifest_free(&m);
    }
    policy_free(&ps);
}

Test(policy, required_with_when_and_wildcards)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - {id: own, severity: error, type: required, paths: [owners.business, 'schema[*].description']}\n"
        "  - {id: sla, severity: warning, type: required, when: {status: active}, paths: [sla.freshness]}\n");
    size_t ne;
    char *r = eval_text(ps, "name: a\nowners: {business: ''}\nstatus: draft\n"
                            "schema: [{name: x, description: ok}, {name: y}]\n", NULL, &ne);
    cr_expect(strstr(r, "\"path\":\"owners.business\"") && strstr(r, "\"path\":\"schema[1].description\""), "%s", r);
    cr_expect(!strstr(r, "schema[0]"), "%s", r);
    /* the message does not repeat the path it comes with ("owners.business: owners.business is required") */
    cr_expect(strstr(r, "\"path\":\"owners.business\",\"message\":\"required, and empty\"") &&
              strstr(r, "\"path\":\"schema[1].description\",\"message\":\"required\""), "%s", r);
    cr_expect(!has_rule(r, "sla"), "draft: the sla rule does not apply: %s", r);
    cr_expect_eq(ne, 2);
    free(r);
    r = eval_text(ps, "name: a\nowners: {business: b}\n", NULL, &ne);   /* status defaults to active */
    cr_expect(has_rule(r, "sla") && ne == 0, "%s", r);
    cr_expect(strstr(r, "\"severity\":\"warning\""), "%s", r);
    free(r);
    policy_free(&ps);
}

Test(policy, regex_enum_and_lines)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - id: name\n    severity: error\n    type: regex\n    path: name\n    pattern: '^[a-z][a-z0-9-]*$'\n"
        "  - id: cls\n    severity: error\n    type: enum\n    path: classification\n    values: [public, internal]\n"
        "  - id: fields\n    severity: warning\n    type: regex\n    path: 'schema[*].name'\n    pattern: '^[a-z_]+$'\n");
    size_t ne;
    char *r = eval_text(ps, "name: Bad_Name\nclassification: secret\nschema: [{name: ok}, {name: NotOk}]\n", NULL, &ne);
    cr_expect_eq(ne, 2, "%s", r);
    cr_expect(strstr(r, "\"rule\":\"name\",\"severity\":\"error\",\"path\":\"name\"") != NULL, "%s", r);
    cr_expect(strstr(r, "\"line\":3") != NULL, "the regex rule starts on line 3: %s", r);
    cr_expect(strstr(r, "\"line\":8") != NULL, "the enum rule starts on line 8: %s", r);
    cr_expect(strstr(r, "schema[1].name") && !strstr(r, "schema[0].name"), "%s", r);
    free(r);
    r = eval_text(ps, "name: good-name\n", NULL, &ne);   /* classification defaults to internal */
    cr_expect_eq(ne, 0, "%s", r);
    free(r);
    policy_free(&ps);
}

/* A regex rule without a message of its own: the owner reads the pattern the value missed (before,
 * only "does not match the required pattern", and the owner had to find the set to learn which);
 * a rule with a message keeps its words alone. */
Test(policy, a_regex_violation_quotes_the_pattern_unless_the_rule_explains_itself)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - {id: owners.email, severity: error, type: regex, path: owners.business, pattern: '^[^@ ]+@[a-z.]+$'}\n"
        "  - {id: purpose, severity: warning, type: regex, path: description.purpose, pattern: '^.{40,}',\n"
        "     message: a purpose consumers can act on is at least a sentence}\n");
    char *r = eval_text(ps, "owners: {business: growth-team}\ndescription: {purpose: short}\n", NULL, NULL);
    cr_expect(strstr(r, "'growth-team' does not match the required pattern ^[^@ ]+@[a-z.]+$\"") != NULL,
              "the violation does not quote the pattern: %s", r);
    cr_expect(strstr(r, "at least a sentence: 'short' does not match the required pattern\"") != NULL,
              "a rule with a message: its words, no pattern: %s", r);
    free(r);
    policy_free(&ps);
}

Test(policy, field_rule_pii_nested)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - id: pii\n    severity: error\n    type: field_rule\n"
        "    when: {name_regex: '(email|phone|iban)'}\n    require: {tags_any: [pii], classification_min: confidential}\n");
    size_t ne;
    char *r = eval_text(ps, "name: a\nschema:\n  - {name: id}\n  - {name: contact, logicalType: object, properties:\n"
                            "      [{name: Email_Address}, {name: phone, tags: [PII]}]}\n", NULL, &ne);
    cr_expect(strstr(r, "schema[1].properties[0].tags") != NULL, "nested, case-insensitive: %s", r);
    cr_expect(!strstr(r, "properties[1]"), "tagged PII (case-insensitive): %s", r);
    cr_expect(strstr(r, "\"path\":\"classification\"") != NULL, "%s", r);
    cr_expect_eq(ne, 2, "%s", r);
    free(r);
    r = eval_text(ps, "name: a\nclassification: restricted\nschema: [{name: email, tags: [pii]}]\n", NULL, &ne);
    cr_expect_eq(ne, 0, "%s", r);
    free(r);
    policy_free(&ps);
}

Test(policy, transition_compatibility_grant)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - {id: dep, severity: error, type: transition, from: deprecated, to: retired, min_age: P60D}\n"
        "  - {id: compat, severity: error, type: compatibility, mode: BACKWARD}\n"
        "  - {id: grant, severity: error, type: grant, when: {classification: restricted}, max_days: 90}\n");
    policy_ctx_t ctx = { .now_ms = T0, .created_ms = T0 - 400 * DAY_MS, .prev_status = "deprecated",
                         .prev_status_since_ms = T0 - 10 * DAY_MS };
    size_t ne;
    char *r = eval_text(ps, "name: a\nstatus: retired\n", &ctx, &ne);
    cr_expect(has_rule(r, "dep") && ne == 1, "%s", r);
    free(r);
    ctx.prev_status_since_ms = T0 - 61 * DAY_MS;
    r = eval_text(ps, "name: a\nstatus: retired\n", &ctx, &ne);
    cr_expect_eq(ne, 0, "%s", r);
    free(r);
    ctx.prev_status = "active";   /* straight from active: never deprecated */
    r = eval_text(ps, "name: a\nstatus: retired\n", &ctx, &ne);
    cr_expect(has_rule(r, "dep"), "%s", r);
    free(r);
    r = eval_text(ps, "name: a\ncompatibility: FORWARD\n", NULL, &ne);
    cr_expect(has_rule(r, "compat"), "FORWARD does not cover BACKWARD: %s", r);
    free(r);
    r = eval_text(ps, "name: a\ncompatibility: FULL_TRANSITIVE\n", NULL, &ne);
    cr_expect_eq(ne, 0, "%s", r);
    free(r);
    r = eval_text(ps, "name: a\n", NULL, &ne);   /* default BACKWARD_TRANSITIVE */
    cr_expect_eq(ne, 0, "%s", r);
    free(r);
    cr_expect_eq(policy_mode_covers("NONE", "BACKWARD"), 0);
    cr_expect_eq(policy_mode_covers("BACKWARD", "BACKWARD_TRANSITIVE"), 0);
    cr_expect_eq(policy_mode_covers("bogus", "BACKWARD"), -1);
    policy_report_t g = { 0 };
    cr_assert_eq(policy_eval_grant(ps, "restricted", 91, &g), 0);
    cr_expect_eq(g.nerrors, 1);
    policy_report_free(&g);
    cr_assert_eq(policy_eval_grant(ps, "restricted", 90, &g), 0);
    cr_expect_eq(g.n, 0);
    policy_report_free(&g);
    cr_assert_eq(policy_eval_grant(ps, "confidential", 365, &g), 0);
    cr_expect_eq(g.n, 0);
    policy_report_free(&g);
    policy_free(&ps);
}

Test(policy, retire_by_tombstone_judged_by_transition_rules)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - {id: dep, severity: error, type: transition, from: deprecated, to: retired, min_age: P60D}\n"
        "  - {id: own, severity: error, type: required, paths: [owners.business]}\n");
    policy_ctx_t ctx = { .now_ms = T0, .created_ms = T0 - 100 * DAY_MS, .prev_status = "active" };
    policy_report_t r = { 0 };
    cr_assert_eq(policy_eval_retire(ps, &ctx, &r), 0);
    cr_expect(r.n == 1 && !strcmp(r.v[0].rule, "dep"), "only the transition rule judges a tombstone");
    policy_report_free(&r);
    ctx.prev_status = "deprecated";
    ctx.prev_status_since_ms = T0 - 90 * DAY_MS;
    cr_assert_eq(policy_eval_retire(ps, &ctx, &r), 0);
    cr_expect_eq(r.n, 0);
    policy_report_free(&r);
    policy_free(&ps);
}

Test(policy, grace_turns_new_errors_into_warnings_for_existing_products)
{
    policy_set_t *ps = parse_ok("version: 2\ngrace: P30D\neffective_from: 2027-01-15T08:00:00Z\nrules:\n"
                                "  - {id: own, severity: error, type: required, paths: [owners.business]}\n");
    int64_t eff = policy_effective_ms(ps);
    cr_assert_gt(eff, 0);
    policy_ctx_t existing = { .now_ms = eff + 5 * DAY_MS, .created_ms = eff - 100 * DAY_MS };
    size_t ne;
    char *r = eval_text(ps, "name: a\n", &existing, &ne);
    cr_expect(ne == 0 && strstr(r, "\"grace\":true") && strstr(r, "\"severity\":\"warning\""), "%s", r);
    free(r);
    existing.now_ms = eff + 31 * DAY_MS;   /* grace over */
    r = eval_text(ps, "name: a\n", &existing, &ne);
    cr_expect_eq(ne, 1, "%s", r);
    free(r);
    policy_ctx_t fresh = { .now_ms = eff + DAY_MS };   /* a new product gets no grace */
    r = eval_text(ps, "name: a\n", &fresh, &ne);
    cr_expect_eq(ne, 1, "%s", r);
    free(r);
    policy_free(&ps);
}

Test(policy, the_sets_own_tests)
{
    policy_set_t *ps = parse_ok(HEAD
        "  - {id: own, severity: error, type: required, paths: [owners.business]}\n"
        "tests:\n"
        "  - manifest: {name: a, owners: {business: x@y.z}}\n    expect: {pass: true}\n"
        "  - manifest: {name: a}\n    expect: {fail: [own]}\n");
    cr_expect_eq(policy_run_tests(ps, NULL, err, sizeof err), 0, "%s", err);
    policy_free(&ps);
    ps = parse_ok(HEAD
        "  - {id: own, severity: error, type: required, paths: [owners.business]}\n"
        "tests:\n"
        "  - manifest: {name: a}\n    expect: {pass: true}\n");
    cr_expect_eq(policy_run_tests(ps, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "tests[0] (line 5)") && strstr(err, "own"), "%s", err);
    policy_free(&ps);
    parse_bad(HEAD "  - {id: own, severity: error, type: required, paths: [a]}\ntests:\n"
              "  - manifest: {name: a}\n    expect: {fail: [nope]}\n", "no rule 'nope'");
}

Test(policy, malformed_and_hostile_sets_are_refused_with_the_line)
{
    parse_bad("rules: []\n", "version");
    parse_bad("version: 0\nrules: []\n", "version");
    parse_bad(HEAD "  - {id: a, severity: fatal, type: required, paths: [x]}\n", "severity");
    parse_bad(HEAD "  - {id: a, severity: error, type: magic}\n", "type");
    parse_bad(HEAD "  - {id: a, severity: error, type: required, paths: [x], extra: 1}\n", "unknown key 'extra'");
    parse_bad(HEAD "  - {id: a, severity: error, type: required, paths: [x]}\n"
                   "  - {id: a, severity: error, type: required, paths: [y]}\n", "used twice");
    parse_bad(HEAD "  - {id: a, severity: error, type: required, paths: [a.b.c.d.e.f.g.h.i]}\n", "more than 8 parts");
    parse_bad(HEAD "  - {id: a, severity: error, type: required, paths: ['a[0]']}\n", "[*]");
    parse_bad(HEAD "  - {id: a, severity: error, type: regex, path: n, pattern: '(a)\\1'}\n", "back-references");
    parse_bad(HEAD "  - {id: a, severity: error, type: regex, path: n, pattern: '((a{0,200}){0,200})'}\n", "too complex");
    parse_bad(HEAD "  - {id: a, severity: error, type: regex, path: n, pattern: 'a{300}'}\n", "at most 255");
    parse_bad(HEAD "  - {id: a, severity: error, type: regex, path: n, pattern: '[a-'}\n", "line 3");
    parse_bad(HEAD "  - {id: a, severity: error, type: transition, from: deprecated, to: retired, min_age: P1Y}\n",
              "min_age");
    parse_bad(HEAD "  - {id: a, severity: error, type: compatibility, mode: SIDEWAYS}\n", "mode");
    parse_bad("version: 1\nrules: []\nsurprise: 1\n", "unknown key 'surprise'");
    parse_bad("version: 1\nrules: [\n", "malformed YAML");
    /* a long pattern */
    char *big = malloc(2000);
    int n = snprintf(big, 2000, HEAD "  - {id: a, severity: error, type: regex, path: n, pattern: '");
    memset(big + n, 'a', 300);
    strcpy(big + n + 300, "'}\n");
    parse_bad(big, "over the limit of 256");
    free(big);
    /* thousands of rules */
    size_t cap = 400 * 80, off = 0;
    char *many = malloc(cap);
    off += (size_t)snprintf(many, cap, HEAD);
    for (int i = 0; i < POLICY_MAX_RULES + 1; i++)
        off += (size_t)snprintf(many + off, cap - off, "  - {id: r%d, severity: error, type: required, paths: [x]}\n", i);
    parse_bad(many, "at most 256");
    free(many);
    /* oversize text */
    char *huge = malloc(POLICY_MAX_BYTES + 2);
    memset(huge, '#', POLICY_MAX_BYTES + 1);
    huge[POLICY_MAX_BYTES + 1] = '\0';
    parse_bad(huge, "over the limit");
    free(huge);
}

Test(policy, regex_matching_stays_fast_on_hostile_input)
{
    /* A pattern that backtracking engines take exponential time on, against a long value. */
    policy_set_t *ps = parse_ok(HEAD "  - {id: a, severity: error, type: regex, path: d, pattern: '^(a|aa)*(a|aa)*b$'}\n");
    size_t n = 60000;
    char *m = malloc(n + 16);
    memcpy(m, "d: ", 3);
    memset(m + 3, 'a', n);
    strcpy(m + 3 + n, "\n");
    struct timespec t0, t1;   /* this thread's CPU time: what the matcher spends, whatever the load */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    size_t ne;
    char *r = eval_text(ps, m, NULL, &ne);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_eq(ne, 1, "%s", r);
    cr_expect_lt(s, 5.0, "matching took %.2f s of CPU", s);
    free(r);
    free(m);
    policy_free(&ps);
}

Test(policy, deterministic)
{
    char path[512];
    size_t len;
    char *text = h_read_file(h_repo_path("examples/policies/company.yaml", path, sizeof path), &len);
    policy_set_t *a = policy_parse(text, len, err, sizeof err), *b = policy_parse(text, len, err, sizeof err);
    free(text);
    cr_assert(a && b);
    const char *m = "name: X\nversion: '1'\nowners: {business: no}\nschema: [{name: email}, {name: phone_no}]\n"
                    "classification: secret\ncompatibility: NONE\n";
    char *r1 = eval_text(a, m, NULL, NULL), *r2 = eval_text(b, m, NULL, NULL), *r3 = eval_text(a, m, NULL, NULL);
    cr_expect_str_eq(r1, r2);
    cr_expect_str_eq(r1, r3);
    free(r1), free(r2), free(r3);
    policy_free(&a);
    policy_free(&b);
}

/* ================================================================ remembered regex verdicts */

/* The memo answers what regexec answers, for each regex apart (the same string, two slots), keeps
 * at most POLICY_MEMO_ENTRIES verdicts (emptied when full, then right again), and leaves strings
 * over POLICY_MEMO_STR bytes to regexec every time. */
Test(policy_memo, answers_as_regexec_and_stays_bounded)
{
    regex_t re[2];
    cr_assert_eq(regcomp(&re[0], "^[a-z][a-z0-9_]{0,62}$", REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regcomp(&re[1], "(email|phone|iban)", REG_EXTENDED | REG_NOSUB | REG_ICASE), 0);
    policy_memo_t *m = policy_memo_new();
    cr_assert_not_null(m);
    uint64_t rng = 0x2545F4914F6CDD1Du, hits, misses, emptied;
    size_t held;
    static const char alpha[] = "abcEMAILphone_iban9Z-";
    char s[96];
    for (int round = 0; round < 2; round++)   /* the same strings twice: the second time from the memo */
        for (int i = 0; i < 3 * POLICY_MEMO_ENTRIES; i++) {
            uint64_t x = rng + (uint64_t)i * 0x9E3779B97F4A7C15u;   /* string i, the same in both rounds */
            size_t len = (size_t)(x >> 58);   /* 0..63: some over POLICY_MEMO_STR */
            for (size_t k = 0; k < len; k++, x = x * 6364136223846793005u + 1442695040888963407u)
                s[k] = alpha[(x >> 33) % (sizeof alpha - 1)];
            s[len] = '\0';
            for (unsigned slot = 0; slot < 2; slot++)
                cr_assert_eq(policy_memo_match(m, slot, &re[slot], s), regexec(&re[slot], s, 0, NULL, 0) == 0,
                             "slot %u, '%s'", slot, s);
            policy_memo_stats(m, &hits, &misses, &held, &emptied);
            cr_assert_leq(held, POLICY_MEMO_ENTRIES);
        }
    policy_memo_stats(m, &hits, &misses, &held, &emptied);
    cr_expect_gt(emptied, 0, "more distinct strings than it holds: it must have been emptied");
    cr_expect_gt(hits, 0);
    cr_expect_gt(misses, POLICY_MEMO_ENTRIES);
    /* a short string asked again is answered from the memo; a long one is not counted */
    policy_memo_match(m, 0, &re[0], "id");
    policy_memo_stats(m, &hits, &misses, &held, &emptied);
    uint64_t h0 = hits, m0 = misses;
    cr_expect_eq(policy_memo_match(m, 0, &re[0], "id"), 1);
    cr_expect_eq(policy_memo_match(m, 1, &re[1], "id"), 0, "another slot, another verdict");
    memset(s, 'a', 60), s[60] = '\0';
    cr_expect_eq(policy_memo_match(m, 0, &re[0], s), 1);
    policy_memo_stats(m, &hits, &misses, &held, &emptied);
    cr_expect_eq(hits, h0 + 1);
    cr_expect_eq(misses, m0 + 1, "only the other slot's first question is a miss");
    cr_expect_eq(policy_memo_match(NULL, 0, &re[0], "Id"), 0, "no memo: regexec");
    policy_memo_destroy(&m);
    policy_memo_destroy(&m);   /* accepts NULL */
    regfree(&re[0]);
    regfree(&re[1]);
}

#define MEMO_SET(pat) HEAD \
    "  - {id: fields, severity: error, type: regex, path: 'schema[*].name', pattern: '" pat "'}\n" \
    "  - {id: pii, severity: error, type: field_rule, when: {name_regex: '(email|phone)'}, require: {tags_any: [pii]}}\n"
#define MEMO_DOC "name: a\nschema: [{name: ok_1}, {name: Bad}, {name: email}, {name: phone, tags: [pii]}]\n"

/* A set remembers its own regexes' verdicts: evaluated again (from the memo) it says what a fresh
 * copy of the set says, and a new set - another pattern under the same rule id - starts from
 * nothing (the memo lives and dies with its set). */
Test(policy_memo, a_set_judges_alike_from_its_memo_and_a_new_set_starts_afresh)
{
    policy_set_t *a = parse_ok(MEMO_SET("^[a-z][a-z0-9_]*$"));
    char *first = eval_text(a, MEMO_DOC, NULL, NULL);
    cr_expect(has_rule(first, "fields") && strstr(first, "schema[1].name") && !strstr(first, "schema[0].name"),
              "%s", first);
    cr_expect(strstr(first, "schema[2].tags") && !strstr(first, "schema[3].tags"), "%s", first);
    for (int i = 0; i < 3; i++) {
        char *again = eval_text(a, MEMO_DOC, NULL, NULL);
        cr_expect_str_eq(again, first);
        free(again);
    }
    policy_set_t *b = parse_ok(MEMO_SET("^[A-Z][a-z]*$"));   /* a later set: Bad passes, ok_1 does not */
    char *other = eval_text(b, MEMO_DOC, NULL, NULL);
    cr_expect(strstr(other, "schema[0].name") && !strstr(other, "schema[1].name"), "%s", other);
    policy_set_t *a2 = parse_ok(MEMO_SET("^[a-z][a-z0-9_]*$"));
    char *fresh = eval_text(a2, MEMO_DOC, NULL, NULL);
    cr_expect_str_eq(fresh, first);
    free(first), free(other), free(fresh);
    policy_free(&a);
    policy_free(&b);
    policy_free(&a2);
}

typedef struct {
    const policy_set_t *ps;
    const char *want;
    int bad;
} memo_thread_t;

static void *memo_thread(void *arg)
{
    memo_thread_t *t = arg;
    for (int i = 0; i < 300 && !t->bad; i++) {
        char *r = eval_text(t->ps, MEMO_DOC, NULL, NULL);
        t->bad = strcmp(r, t->want) != 0;
        free(r);
    }
    return NULL;
}

/* Publishes and the compliance thread evaluate one set at once: the memo is shared safely. */
Test(policy_memo, threads_sharing_a_set_get_the_same_verdicts)
{
    policy_set_t *ps = parse_ok(MEMO_SET("^[a-z][a-z0-9_]*$"));
    policy_set_t *fresh = parse_ok(MEMO_SET("^[a-z][a-z0-9_]*$"));
    char *want = eval_text(fresh, MEMO_DOC, NULL, NULL);
    memo_thread_t t[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        t[i] = (memo_thread_t){ .ps = ps, .want = want };
        cr_assert_eq(pthread_create(&th[i], NULL, memo_thread, &t[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(t[i].bad, 0, "thread %d saw another report", i);
    }
    free(want);
    policy_free(&ps);
    policy_free(&fresh);
}

/* ================================================================ signatures and the store */

static identity_t R1, R2, G1, G2, G3;
static charter_t ch;

static void sig_setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2), fx_identity(&G1), fx_identity(&G2), fx_identity(&G3);
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    const identity_t *roots[] = { &R1, &R2 }, *gov[] = { &G1, &G2, &G3 };
    for (int i = 0; i < 2; i++) {
        memcpy(ch.keys[ch.nkeys].key, roots[i]->pk, ID_PK_LEN);
        ch.keys[ch.nkeys++].role = CHARTER_ROLE_ROOT;
    }
    for (int i = 0; i < 3; i++) {
        memcpy(ch.keys[ch.nkeys].key, gov[i]->pk, ID_PK_LEN);
        ch.keys[ch.nkeys++].role = CHARTER_ROLE_GOVERNANCE;
    }
    ch.threshold = 2;
    ch.gov_threshold = 2;
    ch.issued_ms = T0;
    cr_assert_eq(charter_sign(NULL, &ch, roots, 2, err, sizeof err), 0, "%s", err);
}

static void sig_teardown(void) { charter_free(&ch); }

static const char *set_v(int v)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "version: %d\nrules:\n  - {id: own, severity: error, type: required, paths: [owners.business]}\n"
             "tests:\n  - manifest: {name: a}\n    expect: {fail: [own]}\n", v);
    return buf;
}

static int64_t raw_issued;   /* issued_ms of raw_signed's sets (0: T0) */

/* An envelope of the set signed by exactly the given keys (bypassing policy_sign's checks). */
static uint8_t *raw_signed(const char *yaml, const uint8_t *fed, const identity_t *const *keys, size_t n, size_t *len)
{
    Trib__PolicySet b = TRIB__POLICY_SET__INIT;
    b.federation_id.data = (uint8_t *)fed;
    b.federation_id.len = FED_ID_LEN;
    policy_set_t *ps = parse_ok(yaml);
    b.version = policy_version(ps);
    policy_free(&ps);
    b.issued_ms = raw_issued ? raw_issued : T0;
    b.text = (char *)yaml;
    size_t blen = trib__policy_set__get_packed_size(&b);
    uint8_t *body = malloc(blen), *env = NULL;
    trib__policy_set__pack(&b, body);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_POLICY, body, blen, keys, n, &env, len), 0);
    free(body);
    return env;
}

Test(policy_sig, threshold_of_governance_keys, .init = sig_setup, .fini = sig_teardown)
{
    const identity_t *two[] = { &G1, &G2 }, *one[] = { &G1 }, *root_and_gov[] = { &R1, &G1 }, *dup[] = { &G1, &G1 };
    uint8_t *env = NULL;
    size_t len = 0;
    const char *y = set_v(1);
    cr_expect_neq(policy_sign(y, strlen(y), &ch, one, 1, T0, &env, &len, err, sizeof err), 0, "one key of two signed");
    cr_expect_neq(policy_sign(y, strlen(y), &ch, root_and_gov, 2, T0, &env, &len, err, sizeof err), 0);
    cr_expect(strstr(err, "not a governance key"), "%s", err);
    cr_expect_neq(policy_sign(y, strlen(y), &ch, dup, 2, T0, &env, &len, err, sizeof err), 0);
    cr_assert_eq(policy_sign(y, strlen(y), &ch, two, 2, T0, &env, &len, err, sizeof err), 0, "%s", err);
    policy_signed_t s;
    cr_assert_eq(policy_verify(env, len, &ch, &s, err, sizeof err), 0, "%s", err);
    cr_expect_eq(s.info.version, 1);
    cr_expect_eq(s.info.nsigners, 2);
    cr_expect_eq(policy_effective_ms(s.ps), T0, "a signed set takes effect at its signing time");
    policy_signed_free(&s);
    free(env);

    /* made by hand: below threshold, a root's signature counts nothing, a duplicate counts once */
    env = raw_signed(y, ch.fed_id, one, 1, &len);
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "needs 2"), "%s", err);
    free(env);
    env = raw_signed(y, ch.fed_id, root_and_gov, 2, &len);
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    free(env);
    env = raw_signed(y, ch.fed_id, dup, 2, &len);
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    free(env);
    /* another federation */
    uint8_t other[FED_ID_LEN];
    randombytes_buf(other, sizeof other);
    env = raw_signed(y, other, two, 2, &len);
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "another federation"), "%s", err);
    free(env);
    /* a forged signature: flip a byte of the last signature */
    env = raw_signed(y, ch.fed_id, two, 2, &len);
    env[len - 1] ^= 1;
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "does not verify"), "%s", err);
    free(env);
    /* a set whose own tests fail, even when signed */
    const char *failing = "version: 5\nrules:\n  - {id: own, severity: error, type: required, paths: [x]}\n"
                          "tests:\n  - manifest: {name: a}\n    expect: {pass: true}\n";
    env = raw_signed(failing, ch.fed_id, two, 2, &len);
    cr_expect_neq(policy_verify(env, len, &ch, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "tests fail"), "%s", err);
    free(env);
    /* signed as another kind: the tag differs */
    uint8_t *cenv = NULL;
    size_t clen = 0;
    cr_assert_eq(trust_envelope_make(TRUST_KIND_CERT, (const uint8_t *)"x", 1, two, 2, &cenv, &clen), 0);
    cr_expect_neq(policy_verify(cenv, clen, &ch, &s, err, sizeof err), 0);
    free(cenv);
}

/* An envelope whose body carries text as it is (no YAML check), signed by exactly keys. */
static uint8_t *raw_text_signed(const char *text, uint64_t version, const uint8_t *fed, const identity_t *const *keys,
                                size_t n, size_t *len)
{
    Trib__PolicySet b = TRIB__POLICY_SET__INIT;
    b.federation_id.data = (uint8_t *)fed;
    b.federation_id.len = FED_ID_LEN;
    b.version = version;
    b.issued_ms = T0;
    b.text = (char *)text;
    size_t blen = trib__policy_set__get_packed_size(&b);
    uint8_t *body = malloc(blen), *env = NULL;
    trib__policy_set__pack(&b, body);
    cr_assert_eq(trust_envelope_make(TRUST_KIND_POLICY, body, blen, keys, n, &env, len), 0);
    free(body);
    return env;
}

/* The YAML of a set is untrusted text until its signatures verify: a forged, under-signed or
 * foreign set is refused for that (403), never for what its YAML says, so its text never
 * reached the YAML parser; a properly signed set with broken YAML is refused for the YAML (400). */
Test(policy_sig, yaml_is_parsed_only_after_the_signatures_verify, .init = sig_setup, .fini = sig_teardown)
{
    const identity_t *two[] = { &G1, &G2 }, *one[] = { &G1 };
    const char *broken = "version: 1\nrules: [ {id: x, severity: error\n  - : : unclosed [\n";
    policy_signed_t s;
    size_t len;
    uint8_t *env = raw_text_signed(broken, 1, ch.fed_id, two, 2, &len);
    cr_expect_eq(policy_verify(env, len, &ch, &s, err, sizeof err), POLICY_REFUSED_BAD, "%s", err);
    cr_expect(strstr(err, "version 1:") != NULL, "signed: refused for its YAML: %s", err);
    env[len - 1] ^= 1;   /* the last signature forged */
    cr_expect_eq(policy_verify(env, len, &ch, &s, err, sizeof err), POLICY_REFUSED_SIGNATURE, "%s", err);
    cr_expect(strstr(err, "does not verify") != NULL, "%s", err);
    free(env);
    env = raw_text_signed(broken, 1, ch.fed_id, one, 1, &len);
    cr_expect_eq(policy_verify(env, len, &ch, &s, err, sizeof err), POLICY_REFUSED_SIGNATURE, "%s", err);
    cr_expect(strstr(err, "needs 2") != NULL, "%s", err);
    free(env);
    uint8_t other[FED_ID_LEN];
    randombytes_buf(other, sizeof other);
    env = raw_text_signed(broken, 1, other, two, 2, &len);
    cr_expect_eq(policy_verify(env, len, &ch, &s, err, sizeof err), POLICY_REFUSED_SIGNATURE, "%s", err);
    cr_expect(strstr(err, "another federation") != NULL, "%s", err);
    free(env);
    /* the version the YAML claims is checked after the signatures too */
    env = raw_text_signed(set_v(2), 1, ch.fed_id, one, 1, &len);
    cr_expect_eq(policy_verify(env, len, &ch, &s, err, sizeof err), POLICY_REFUSED_SIGNATURE, "%s", err);
    free(env);
    /* the offer door says the same */
    policy_store_t *st = policy_store_open(NULL, &ch, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    env = raw_text_signed(broken, 1, ch.fed_id, one, 1, &len);
    cr_expect_eq(policy_offer(st, env, len, &ch, err, sizeof err), POLICY_REFUSED_SIGNATURE, "%s", err);
    free(env);
    policy_store_close(&st);
}

Test(policy_sig, offer_versions_only_go_up_and_persist, .init = sig_setup, .fini = sig_teardown)
{
    char dir[] = "/tmp/trib-policy-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const identity_t *two[] = { &G2, &G3 };
    policy_store_t *s = policy_store_open(dir, &ch, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_expect_eq(policy_offer(s, (const uint8_t *)"junk", 4, &ch, err, sizeof err), POLICY_REFUSED_BAD);
    const identity_t *one[] = { &G1 };
    size_t l0;
    uint8_t *below = raw_signed(set_v(1), ch.fed_id, one, 1, &l0);
    cr_expect_eq(policy_offer(s, below, l0, &ch, err, sizeof err), POLICY_REFUSED_SIGNATURE, "below threshold");
    free(below);
    cr_expect_eq(policy_offer(s, NULL, 0, NULL, err, sizeof err), POLICY_REFUSED_OPEN, "open mode refuses signed sets");
    size_t l1, l2, l3;
    uint8_t *v1 = raw_signed(set_v(1), ch.fed_id, two, 2, &l1), *v2 = raw_signed(set_v(2), ch.fed_id, two, 2, &l2),
            *v3 = raw_signed(set_v(3), ch.fed_id, two, 2, &l3);
    cr_assert_eq(policy_offer(s, v2, l2, &ch, err, sizeof err), 0, "%s", err);
    uint64_t g = policy_store_generation(s);
    cr_expect_eq(policy_offer(s, v2, l2, &ch, err, sizeof err), POLICY_REFUSED_STALE, "a replay of the set in force");
    cr_expect(strstr(err, "not newer"), "%s", err);
    cr_expect_eq(policy_offer(s, v1, l1, &ch, err, sizeof err), POLICY_REFUSED_STALE, "an older set");
    cr_expect_eq(policy_store_generation(s), g, "a refused set changes nothing");
    policy_info_t info;
    const policy_set_t *ps = policy_store_get(s, &info);
    cr_assert_not_null(ps);
    cr_expect_eq(info.version, 2);
    cr_expect_eq(info.nsigners, 2);
    /* a reader keeps its snapshot while a newer set comes into force */
    cr_assert_eq(policy_offer(s, v3, l3, &ch, err, sizeof err), 0, "%s", err);
    cr_expect_eq(policy_version(ps), 2);
    policy_store_put(s, ps);
    policy_store_close(&s);
    s = policy_store_open(dir, &ch, err, sizeof err);   /* persisted */
    cr_assert_not_null(s, "%s", err);
    ps = policy_store_get(s, &info);
    cr_expect_eq(info.version, 3);
    policy_store_put(s, ps);
    json_t *j = policy_store_json(s);
    cr_expect_eq(json_integer_value(json_object_get(j, "version")), 3);
    cr_expect_eq(json_array_size(json_object_get(j, "signers")), 2);
    json_decref(j);
    policy_store_close(&s);
    free(v1), free(v2), free(v3);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* The set in force at an entry's time: the highest version whose effective time (its signing
 * time here) is at or before it; none before the first; kept across a reopen. */
Test(policy_sig, the_set_in_force_at_a_time, .init = sig_setup, .fini = sig_teardown)
{
    char dir[] = "/tmp/trib-policy-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const identity_t *two[] = { &G2, &G3 };
    policy_store_t *s = policy_store_open(dir, &ch, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    const int64_t day = 86400000LL;
    size_t l1, l2, l3;
    raw_issued = T0 + 10 * day;
    uint8_t *v1 = raw_signed(set_v(1), ch.fed_id, two, 2, &l1);
    raw_issued = T0 + 20 * day;
    uint8_t *v2 = raw_signed(set_v(2), ch.fed_id, two, 2, &l2);
    raw_issued = T0 + 30 * day;
    uint8_t *v3 = raw_signed(set_v(3), ch.fed_id, two, 2, &l3);
    raw_issued = 0;
    cr_assert_eq(policy_offer(s, v1, l1, &ch, err, sizeof err), 0, "%s", err);
    cr_assert_eq(policy_offer(s, v2, l2, &ch, err, sizeof err), 0, "%s", err);
    cr_expect_eq(policy_store_check(s, v1, l1, &ch, err, sizeof err), POLICY_REFUSED_STALE, "check: older");
    cr_expect_eq(policy_store_check(s, v3, l3, &ch, err, sizeof err), 0, "check: newer: %s", err);
    /* a set older than the one in force that arrives late is kept as history, once */
    size_t l15;
    raw_issued = T0 + 15 * day;
    uint8_t *v15 = raw_signed("version: 15\nrules: []\n", ch.fed_id, two, 2, &l15);
    raw_issued = 0;
    cr_assert_eq(policy_offer(s, v15, l15, &ch, err, sizeof err), 0, "%s", err);   /* v15 in force */
    cr_expect_eq(policy_store_add_history(s, v2, l2, &ch, err, sizeof err), POLICY_REFUSED_STALE, "was in force");
    cr_assert_eq(policy_offer(s, v3, l3, &ch, err, sizeof err), POLICY_REFUSED_STALE);
    uint64_t g0 = policy_store_generation(s);
    cr_assert_eq(policy_store_add_history(s, v3, l3, &ch, err, sizeof err), 0, "%s", err);
    cr_expect_gt(policy_store_generation(s), g0, "verdicts of its time must be judged again");
    cr_expect_eq(policy_store_add_history(s, v3, l3, &ch, err, sizeof err), POLICY_REFUSED_STALE, "held already");
    cr_expect_eq(policy_store_add_history(s, v15, l15, &ch, err, sizeof err), POLICY_REFUSED_STALE, "in force");
    cr_expect_eq(policy_store_add_history(s, v1, 3, &ch, err, sizeof err), POLICY_REFUSED_BAD, "garbage");
    /* now: v1 from T0+10d, v15 (effective T0+15d) over v2 and v3 (T0+20d, 30d): the highest
     * version in effect */
    const policy_set_t *p15 = policy_store_get_at(s, T0 + 25 * day, NULL, NULL);
    cr_expect_eq(p15 ? policy_version(p15) : 0, 15, "the highest version in effect at a time wins");
    policy_store_put(s, p15);
    policy_store_close(&s);
    s = policy_store_open(dir, &ch, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    p15 = policy_store_get_at(s, T0 + 12 * day, NULL, NULL);
    cr_expect_eq(p15 ? policy_version(p15) : 0, 1, "the history after a reopen");
    policy_store_put(s, p15);
    free(v15);
    for (int round = 0; round < 2; round++) {
        const struct { int64_t t; uint64_t want; } at[] = {
            { T0, 0 }, { T0 + 10 * day - 1, 0 }, { T0 + 10 * day, 1 }, { T0 + 15 * day - 1, 1 },
            { T0 + 15 * day, 15 }, { T0 + 300 * day, 15 },
        };
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            policy_info_t info;
            uint64_t gen = 0;
            const policy_set_t *ps = policy_store_get_at(s, at[i].t, &info, &gen);
            cr_expect_eq(ps ? policy_version(ps) : 0, at[i].want, "round %d, t = T0%+lld ms", round,
                         (long long)(at[i].t - T0));
            cr_expect_eq(info.version, at[i].want);
            cr_expect_neq(gen, 0);
            policy_store_put(s, ps);
        }
        policy_store_close(&s);   /* the history is kept across a restart */
        s = policy_store_open(dir, &ch, err, sizeof err);
        cr_assert_not_null(s, "%s", err);
    }
    /* bounded: the oldest sets fall out */
    for (int v = 16; v < 16 + POLICY_HISTORY_MAX; v++) {
        size_t l;
        raw_issued = T0 + (int64_t)(30 + v) * day;
        uint8_t *e = raw_signed(set_v(v), ch.fed_id, two, 2, &l);
        cr_assert_eq(policy_offer(s, e, l, &ch, err, sizeof err), 0, "v%d: %s", v, err);
        free(e);
    }
    raw_issued = 0;
    const policy_set_t *ps = policy_store_get_at(s, T0 + 25 * day, NULL, NULL);
    cr_expect_null(ps, "versions 1, 2 and 15 fell out of a history of %d", POLICY_HISTORY_MAX);
    policy_store_put(s, ps);
    policy_store_close(&s);
    free(v1), free(v2), free(v3);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/policy.v*.signed | wc -l | grep -qx %d && rm -rf %s", dir, POLICY_HISTORY_MAX, dir);
    cr_expect_eq(system(cmd), 0, "history files are bounded to %d", POLICY_HISTORY_MAX);
}

/* Two different sets signed with one version: every node ends with the same one in force
 * whichever arrives first (the higher body hash, computed here independently of the store), the
 * other refused as a conflict and counted; the same body under other signatures is no conflict;
 * the winner is what a reopen finds; a history version follows the same rule. */
static uint8_t *raw_signed_hash(const char *yaml, const identity_t *const *keys, size_t n, size_t *len,
                                uint8_t hash[32])
{
    uint8_t *env = raw_signed(yaml, ch.fed_id, keys, n, len);
    Trib__TrustSigned *t = trib__trust_signed__unpack(NULL, *len, env);
    cr_assert_not_null(t);
    crypto_generichash(hash, 32, t->body.data, t->body.len, NULL, 0);
    trib__trust_signed__free_unpacked(t, NULL);
    return env;
}

static const char *set_named(int v, const char *rule)
{
    static char buf[2][512];
    static int k;
    char *b = buf[k++ % 2];
    snprintf(b, 512, "version: %d\nrules:\n  - {id: %s, severity: error, type: required, paths: [owners.business]}\n"
             "tests:\n  - manifest: {name: a}\n    expect: {fail: [%s]}\n", v, rule, rule);
    return b;
}

static uint64_t in_force_hash(policy_store_t *s, uint8_t out[32])
{
    policy_info_t info;
    const policy_set_t *ps = policy_store_get(s, &info);
    cr_assert_not_null(ps);
    policy_store_put(s, ps);
    memcpy(out, info.hash, 32);
    return info.version;
}

Test(policy_sig, same_version_sets_resolve_alike_on_every_node, .init = sig_setup, .fini = sig_teardown)
{
    const identity_t *g12[] = { &G1, &G2 }, *g23[] = { &G2, &G3 };
    size_t lx, ly, lx2, l6;
    uint8_t hx[32], hy[32], hx2[32], h6[32], got[32];
    uint8_t *x = raw_signed_hash(set_named(5, "own_x"), g12, 2, &lx, hx);
    uint8_t *y = raw_signed_hash(set_named(5, "own_y"), g12, 2, &ly, hy);
    uint8_t *x2 = raw_signed_hash(set_named(5, "own_x"), g23, 2, &lx2, hx2);   /* x's body, other signers */
    uint8_t *v6 = raw_signed_hash(set_v(6), g12, 2, &l6, h6);
    cr_assert_eq(memcmp(hx, hx2, 32), 0, "the same body hashes alike");
    cr_assert_neq(memcmp(hx, hy, 32), 0);
    int x_wins = memcmp(hx, hy, 32) > 0;
    const uint8_t *win = x_wins ? hx : hy;
    char dirs[2][32] = { "/tmp/trib-policy-XXXXXX", "/tmp/trib-policy-XXXXXX" };
    for (int order = 0; order < 2; order++) {   /* node A gets x first, node B y first */
        cr_assert_not_null(mkdtemp(dirs[order]));
        policy_store_t *s = policy_store_open(dirs[order], &ch, err, sizeof err);
        cr_assert_not_null(s, "%s", err);
        uint8_t *first = order ? y : x, *second = order ? x : y;
        size_t l1 = order ? ly : lx, l2 = order ? lx : ly;
        int second_wins = order ? x_wins : !x_wins;
        cr_assert_eq(policy_offer(s, first, l1, &ch, err, sizeof err), 0, "%s", err);
        cr_expect_eq(policy_store_conflicts(s), 0);
        uint64_t g = policy_store_generation(s);
        cr_expect_eq(policy_store_check(s, second, l2, &ch, err, sizeof err),
                     second_wins ? 0 : POLICY_REFUSED_CONFLICT, "order %d: check: %s", order, err);
        cr_expect_eq(policy_store_conflicts(s), 0, "a check counts nothing");
        int rc = policy_offer(s, second, l2, &ch, err, sizeof err);
        cr_expect_eq(rc, second_wins ? 0 : POLICY_REFUSED_CONFLICT, "order %d: %s", order, err);
        if (rc)
            cr_expect(strstr(err, "same version") && strstr(err, "higher body hash"), "%s", err);
        cr_expect_eq(policy_store_conflicts(s), 1, "order %d: the meeting is counted", order);
        cr_expect_eq(policy_store_generation(s) > g, second_wins, "a new set in force, or nothing changed");
        cr_expect_eq(in_force_hash(s, got), 5);
        cr_expect_eq(memcmp(got, win, 32), 0, "order %d: the higher body hash is in force", order);
        /* x's body signed by other keys is the same set: not newer, no conflict */
        cr_expect_eq(policy_offer(s, x2, lx2, &ch, err, sizeof err),
                     x_wins ? POLICY_REFUSED_STALE : POLICY_REFUSED_CONFLICT, "%s", err);
        cr_expect_eq(policy_store_conflicts(s), 1, "x met again (its body): no new meeting");
        policy_store_close(&s);
        s = policy_store_open(dirs[order], &ch, err, sizeof err);   /* what a restart finds */
        cr_assert_not_null(s, "%s", err);
        cr_expect_eq(in_force_hash(s, got), 5);
        cr_expect_eq(memcmp(got, win, 32), 0, "order %d: persisted", order);
        /* the history: version 6 comes into force, then the loser of version 5 arrives late */
        cr_assert_eq(policy_offer(s, v6, l6, &ch, err, sizeof err), 0, "%s", err);
        const policy_set_t *at = policy_store_get_at(s, T0 + 1, NULL, NULL);
        cr_expect_eq(at ? policy_version(at) : 0, 6);
        policy_store_put(s, at);
        policy_store_close(&s);
    }
    /* a node that held only the loser as history: the winner replaces it there too */
    char hdir[] = "/tmp/trib-policy-XXXXXX";
    cr_assert_not_null(mkdtemp(hdir));
    policy_store_t *s = policy_store_open(hdir, &ch, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(policy_offer(s, v6, l6, &ch, err, sizeof err), 0, "%s", err);
    uint8_t *lose = x_wins ? y : x, *winb = x_wins ? x : y;
    size_t llose = x_wins ? ly : lx, lwin = x_wins ? lx : ly;
    cr_assert_eq(policy_store_add_history(s, lose, llose, &ch, err, sizeof err), 0, "%s", err);
    uint64_t g = policy_store_generation(s);
    cr_expect_eq(policy_store_add_history(s, winb, lwin, &ch, err, sizeof err), 0, "%s", err);
    cr_expect_gt(policy_store_generation(s), g, "entries of its time are judged again");
    cr_expect_eq(policy_store_add_history(s, lose, llose, &ch, err, sizeof err), POLICY_REFUSED_CONFLICT, "%s", err);
    cr_expect_eq(policy_store_conflicts(s), 1, "the loser met again: no new meeting");
    policy_store_close(&s);
    s = policy_store_open(hdir, &ch, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_expect_eq(policy_store_add_history(s, winb, lwin, &ch, err, sizeof err), POLICY_REFUSED_STALE,
                 "the winner is the history file a reopen loads: %s", err);
    policy_store_close(&s);
    free(x), free(y), free(x2), free(v6);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", dirs[0], dirs[1], hdir);
    cr_expect_eq(system(cmd), 0);
}

/* ================================================================ random input */

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const fragments[] = {
    "version: 1\n", "rules:\n", "  - ", "{id: a, severity: error, type: regex, path: 'x[*].y', pattern: '",
    "(a|b)*", "{3,7}", "[[:alpha:]]", "\\1", "'}\n", "type: field_rule\n", "when: {name_regex: 'e'}\n",
    "require: {tags_any: [pii]}\n", "tests:\n", "  - manifest: {name: a}\n", "    expect: {fail: [a]}\n",
    "&x [1]\n", "*x\n", "<<: *x\n", "{", "}", "[", "]", ":", "\n", "'", "\"", "\t", "P30D", "\xff\xfe",
};

Test(policy_fuzz, random_sets_are_refused_or_evaluated_within_bounds, .timeout = 120)
{
    char path[512];
    size_t base_len;
    char *base = h_read_file(h_repo_path("examples/policies/company.yaml", path, sizeof path), &base_len);
    cr_assert_not_null(base);
    size_t cap = base_len + 4096;
    char *buf = malloc(cap + 1);
    json_t *doc = json_pack("{s:s,s:s,s:[{s:s},{s:s,s:[s]}],s:{s:s}}", "name", "x", "version", "1.0.0", "schema",
                            "name", "email", "name", "phone", "tags", "pii", "owners", "business", "a@b.cd");
    int parsed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len;
        if (iter % 3 == 0) {   /* mutate the example */
            memcpy(buf, base, base_len);
            len = base_len;
            int k = 1 + (int)(next() % 8);
            for (int m = 0; m < k && len > 0; m++) {
                size_t at = next() % len;
                switch (next() % 4) {
                case 0: buf[at] = (char)(next() & 0xff); break;
                case 1: len = at; break;
                case 2:
                    if (len + 1 < cap) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = " :-[]{}'\"\n*&!|>"[next() % 16];
                        len++;
                    }
                    break;
                default: {
                    size_t n2 = next() % 64;
                    if (at + n2 > len)
                        n2 = len - at;
                    memmove(buf + at, buf + at + n2, len - at - n2);
                    len -= n2;
                }
                }
            }
        } else {   /* splice fragments */
            len = 0;
            int k = 1 + (int)(next() % 24);
            for (int m = 0; m < k; m++) {
                const char *f = fragments[next() % (sizeof fragments / sizeof *fragments)];
                size_t fl = strlen(f);
                if (len + fl >= cap)
                    break;
                memcpy(buf + len, f, fl);
                len += fl;
            }
        }
        buf[len] = '\0';
        policy_set_t *ps = policy_parse(buf, len, err, sizeof err);
        if (!ps) {
            cr_assert(err[0] != '\0', "a refusal without a reason");
            continue;
        }
        parsed++;
        policy_report_t r = { 0 };
        policy_ctx_t ctx = { .now_ms = T0, .created_ms = T0 - DAY_MS, .prev_status = "deprecated",
                             .prev_status_since_ms = T0 - 2 * DAY_MS };
        cr_assert_eq(policy_eval(ps, doc, &ctx, &r), 0);
        cr_assert_leq(r.n, POLICY_MAX_VIOLATIONS);
        policy_report_free(&r);
        policy_run_tests(ps, NULL, err, sizeof err);
        policy_eval_grant(ps, "restricted", 100, &r);
        policy_report_free(&r);
        policy_free(&ps);
    }
    cr_expect_gt(parsed, 10, "the run should also reach the evaluator (%d sets parsed)", parsed);
    json_decref(doc);
    free(buf);
    free(base);
}

/* Random mutations of a valid signed set: every one is refused (a signature covers every byte
 * that matters) or, when a mutation only touched bytes outside the signed body in a way the
 * decoder tolerates, verified; never a crash or a leak (make asan). */
Test(policy_fuzz, mutated_signed_sets_are_refused, .init = sig_setup, .fini = sig_teardown, .timeout = 120)
{
    const identity_t *two[] = { &G1, &G2 };
    size_t len;
    uint8_t *env = raw_signed(set_v(4), ch.fed_id, two, 2, &len);
    uint8_t *buf = malloc(len + 64);
    int accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, env, len);
        size_t n = len;
        int k = 1 + (int)(next() % 4);
        for (int m = 0; m < k && n > 0; m++) {
            size_t at = next() % n;
            switch (next() % 3) {
            case 0: buf[at] ^= (uint8_t)(1 + next() % 255); break;
            case 1: n = at; break;
            default:
                if (n + 1 < len + 64) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)next();
                    n++;
                }
            }
        }
        policy_signed_t s;
        if (policy_verify(buf, n, &ch, &s, err, sizeof err) == 0) {
            accepted++;
            cr_expect_eq(s.info.version, 4);
            policy_signed_free(&s);
        } else
            cr_assert(err[0], "a refusal without a reason");
        if (policy_decode(buf, n, &s, err, sizeof err) == 0)
            policy_signed_free(&s);
    }
    cr_expect_lt(accepted, 30, "%d of 3000 mutated sets verified", accepted);
    free(buf);
    free(env);
}
