/* tests/test_policy_fed.c - policy sets on real `trib agent` processes: a publish refused with
 * 422 policy_violation listing every violation, the same verdict on every node for the same
 * manifest (the owner's 422 and the others' non_compliant marks on accept), a product from a
 * node without the set marked and never dropped, a new set re-checking what is stored, and
 * refused submissions (garbage, stale) counted while the node keeps serving.
 * Open mode: the set is given to each node (--policy FILE, POST /v1/policy); signed sets and
 * their verification are tests/test_policy.c's (replication of kind-4 objects is the
 * federation log's). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

TestSuite(policy_fed, .fini = h_cleanup_all, .timeout = 180);

#define FAST "--probe-interval-ms", "400", "--probe-timeout-ms", "200", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

/* Parses (manifest.c) but breaks company.yaml: owners.email, pii.field_tag (tag and class). */
static const char *bad_manifest(const char *domain, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "name: customer-contacts\ndomain: %s\nversion: 1.0.0\ntitle: Customer contacts\n"
             "description: {purpose: short}\n"
             "owners: {business: nobody, technical: data@example.com}\n"
             "schema:\n  - {name: customer_id, logicalType: string}\n  - {name: email, logicalType: string}\n",
             domain);
    return buf;
}

/* How many times needle occurs in s. */
static int count_of(const char *s, const char *needle)
{
    int k = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

typedef struct {
    h_node_t *n;
    const char *id, *state;
} comp_t;

static json_t *compliance_of(h_node_t *n, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/products/%s", id);
    json_t *j = h_get_json(n->url, path, NULL);
    json_t *c = json_incref(json_object_get(j, "compliance"));
    json_decref(j);
    return c;
}

static int has_state(void *ctx)
{
    comp_t *c = ctx;
    json_t *cp = compliance_of(c->n, c->id);
    int ok = cp && strcmp(json_string_value(json_object_get(cp, "state")) ?: "", c->state) == 0;
    json_decref(cp);
    return ok;
}

static long put_manifest(h_node_t *n, const char *id, const char *text, json_t **reply)
{
    char url[300];
    snprintf(url, sizeof url, "%s/v1/products/%s", n->url, id);
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/yaml", text, strlen(text), &r), 0);
    *reply = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    long s = r.status;
    h_resp_free(&r);
    return s;
}

static long post_policy(h_node_t *n, const char *body, json_t **reply)
{
    char url[300];
    snprintf(url, sizeof url, "%s/v1/policy", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("POST", url, "application/yaml", body, strlen(body), &r), 0);
    *reply = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    long s = r.status;
    h_resp_free(&r);
    return s;
}

typedef struct {
    h_node_t *n;
    long want;
} facet_t;

/* /v1/products?compliance=non_compliant lists want products, and the facet counts them. */
static int facet_is(void *ctx)
{
    facet_t *f = ctx;
    json_t *j = h_get_json(f->n->url, "/v1/products?compliance=non_compliant", NULL);
    json_t *fc = json_object_get(json_object_get(json_object_get(j, "facets"), "compliance"), "non_compliant");
    int ok = j && json_integer_value(json_object_get(j, "total")) == f->want &&
             (f->want == 0 || json_integer_value(fc) == f->want);
    json_decref(j);
    return ok;
}

static int all_alive3(void *ctx)
{
    h_node_t **ns = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(ns[i]->url, "/v1/status", NULL);
        long alive = (long)json_integer_value(json_object_get(json_object_get(j, "members"), "alive"));
        json_decref(j);
        if (alive != 3)
            return 0;
    }
    return 1;
}

Test(policy_fed, refused_with_every_violation_and_the_same_verdict_on_every_node)
{
    char pol[512], buf[1024];
    h_repo_path("examples/policies/company.yaml", pol, sizeof pol);
    h_node_t a, b, c;
    cr_assert_eq(h_node_start(&a, "payments", "--policy", pol, FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0, "growth (no set) did not start");
    cr_assert_eq(h_node_start(&c, "listening", "--policy", pol, "--seed", a.peer, FAST, NULL), 0);
    h_node_t *all[] = { &a, &b, &c };
    cr_assert(h_wait(all_alive3, all, 20000), "three nodes did not see each other alive");

    /* the owner with the set refuses, listing every violation with its rule, path and line */
    json_t *refusal = NULL;
    long st = put_manifest(&a, "payments/customer-contacts", bad_manifest("payments", buf, sizeof buf), &refusal);
    cr_assert_eq(st, 422, "publish against the set: %ld", st);
    cr_expect_str_eq(json_string_value(json_object_get(refusal, "error")), "policy_violation");
    json_t *viol = json_object_get(refusal, "violations");
    cr_assert(json_is_array(viol) && json_array_size(viol) >= 3);
    /* each names the manifest's field and its line there first, then the rule and its line in the set */
    const char *want[] = { "owners.email", "pii.field_tag", "description.length" };
    const char *want_path[] = { "owners.business", "schema[1].tags", "description.purpose" };
    const long want_mline[] = { 6, 9, 5 };
    for (size_t k = 0; k < 3; k++) {
        int found = 0;
        size_t i;
        json_t *v;
        json_array_foreach(viol, i, v)
            if (!strcmp(json_string_value(json_object_get(v, "rule")), want[k]) &&
                json_integer_value(json_object_get(v, "line")) > 0 &&
                !strcmp(json_string_value(json_object_get(v, "path")), want_path[k]) &&
                json_integer_value(json_object_get(v, "manifest_line")) == want_mline[k])
                found = 1;
        cr_expect(found, "no violation of %s at %s, manifest line %ld, with the rule's line: %s", want[k], want_path[k],
                  want_mline[k], json_dumps(viol, 0));
    }
    const char *detail = json_string_value(json_object_get(refusal, "detail"));
    cr_expect(detail && strstr(detail, "first: owners.business (manifest line 6): 'nobody' does not match") &&
              strstr(detail, "it breaks rule owners.email (policy set version 1, line "), "detail: %s", detail);
    cr_expect_eq(h_metric(a.url, "trib_policy_publish_refused_total"), 1);   /* before the CLI's try below */
    json_t *none = h_get_json(a.url, "/v1/products/payments/customer-contacts", NULL);
    cr_expect_null(none, "a refused manifest was stored");
    json_decref(none);

    /* the CLI prints every violation */
    char tmp[] = "/tmp/trib-bad-XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert_geq(fd, 0);
    close(fd);
    h_write_file(tmp, buf, strlen(buf));
    char *out = NULL, *err = NULL;
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "publish", tmp, NULL), 1);
    cr_expect(err && strstr(err, "422 policy_violation") && strstr(err, "pii.field_tag") && strstr(err, "policy line") &&
              strstr(err, "\n  error   owners.business (manifest line 6): 'nobody' does not match") &&
              strstr(err, "; rule owners.email (policy line "), "%s", err);
    /* each error once: the head counts them, it does not repeat the first (it did, as "first: ...") */
    cr_expect(err && strstr(err, "422 policy_violation: 3 errors under policy set version 1\n"), "%s", err);
    cr_expect(err && count_of(err, "'nobody' does not match") == 1, "the first error said twice: %s", err);
    free(out), free(err);
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "check", tmp, NULL), 1, "%s%s", out, err);
    cr_expect(out && count_of(out, "'nobody' does not match") == 1, "the first error said twice: %s", out);
    free(out), free(err);
    /* trib check, the dry run of that publish, says it would be refused, and why (it said
     * "publish would be accepted", exit 0: the report left out the policy set) */
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "check", tmp, NULL), 1, "%s%s", out, err);
    cr_expect(out && strstr(out, "publish would be refused: policy_violation") && strstr(out, "pii.field_tag") &&
              strstr(out, "policy line") && strstr(out, "\n  error   owners.business (manifest line 6): "), "%s", out);
    free(out), free(err);
    {
        char curl_[300];
        snprintf(curl_, sizeof curl_, "%s/v1/products/payments/customer-contacts/check", a.url);
        h_resp_t hr;
        cr_assert_eq(h_http("POST", curl_, "application/yaml", buf, strlen(buf), &hr), 0);
        cr_expect_eq(hr.status, 200);
        json_t *chk = json_loadb(hr.body ? hr.body : "", hr.len, 0, NULL);
        h_resp_free(&hr);
        cr_expect(json_is_false(json_object_get(chk, "ok")), "check said ok to a manifest the set refuses");
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(chk, "error"), "error")),
                         "policy_violation");
        cr_expect(json_equal(json_object_get(chk, "violations"), viol), "check's violations differ from the 422's");
        json_decref(chk);
    }
    /* a dry run is not a refused publish: the first PUT and the CLI's publish, not the two checks */
    cr_expect_eq(h_metric(a.url, "trib_policy_publish_refused_total"), 2);

    /* the node without the set takes the same manifest; every node with the set marks it, and
     * reaches exactly the verdict the owner gave (determinism), without dropping it */
    json_t *ok = NULL;
    st = put_manifest(&b, "growth/customer-contacts", bad_manifest("growth", buf, sizeof buf), &ok);
    cr_assert_eq(st, 201, "growth has no set: %ld", st);
    json_decref(ok);
    comp_t ca = { &a, "growth/customer-contacts", "non_compliant" }, cc = { &c, "growth/customer-contacts", "non_compliant" };
    cr_assert(h_wait(has_state, &ca, 20000), "payments did not mark growth's product non_compliant");
    cr_assert(h_wait(has_state, &cc, 20000), "listening did not mark growth's product non_compliant");
    json_t *va = compliance_of(&a, ca.id), *vc = compliance_of(&c, cc.id);
    json_t *verdict = json_deep_copy(viol);   /* the 422's without the manifest's lines (no text on accept) */
    size_t vi;
    json_t *vv;
    json_array_foreach(verdict, vi, vv)
        json_object_del(vv, "manifest_line");
    cr_expect(json_equal(json_object_get(va, "violations"), verdict), "payments: accept verdict differs from its 422");
    cr_expect(json_equal(json_object_get(vc, "violations"), verdict), "listening: verdict differs from payments' 422");
    json_decref(va), json_decref(vc), json_decref(verdict);
    json_t *nc = compliance_of(&b, "growth/customer-contacts");
    cr_expect_null(nc, "growth has no set, so no compliance object");
    json_decref(nc);

    facet_t fa = { &c, 1 };
    cr_expect(h_wait(facet_is, &fa, 20000), "search: compliance=non_compliant does not list growth's product");
    json_t *every = h_get_json(c.url, "/v1/products", NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(json_object_get(every, "facets"), "compliance"),
                                                    "non_compliant")), 1, "the compliance facet over every product");
    json_decref(every);
    json_t *rep = h_get_json(c.url, "/v1/compliance", NULL);
    cr_expect_eq(json_integer_value(json_object_get(rep, "non_compliant")), 1);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(rep, "domains"), "growth")), 1);
    json_decref(rep);
    /* a domain's report counts that domain's products alone (it counted every domain's) */
    rep = h_get_json(c.url, "/v1/compliance?domain=nobody", NULL);
    cr_expect_eq(json_integer_value(json_object_get(rep, "products")), 0, "?domain=nobody counted others' products");
    cr_expect_eq(json_integer_value(json_object_get(rep, "non_compliant")), 0);
    json_decref(rep);
    rep = h_get_json(c.url, "/v1/compliance?domain=growth", NULL);
    cr_expect_eq(json_integer_value(json_object_get(rep, "products")), 1, "?domain=growth: growth holds one product");
    cr_expect_eq(json_integer_value(json_object_get(rep, "non_compliant")), 1);
    json_decref(rep);
    cr_expect_eq(h_trib(&c, NULL, &out, &err, "compliance", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "growth/customer-contacts") && strstr(out, "pii.field_tag"), "%s", out);
    free(out), free(err);
    cr_expect_eq(h_trib(&c, NULL, &out, &err, "show", "growth/customer-contacts", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "non_compliant under policy set version 1"), "%s", out);
    free(out), free(err);

    /* retired by a tombstone straight from active: the deprecation window rule marks it */
    const char *good = "name: experiments\ndomain: growth\nversion: 1.0.0\n"
                       "description: {purpose: Every experiment with its arms and the metric it moves.}\n"
                       "owners: {business: ana@example.com, technical: growth-data@example.com}\n"
                       "schema: [{name: experiment_id, logicalType: string}]\n";
    st = put_manifest(&b, "growth/experiments", good, &ok);
    cr_assert_eq(st, 201);
    json_decref(ok);
    comp_t ce = { &c, "growth/experiments", "compliant" };
    cr_assert(h_wait(has_state, &ce, 20000), "listening did not judge growth/experiments compliant");
    char url[300];
    snprintf(url, sizeof url, "%s/v1/products/growth/experiments", b.url);
    h_resp_t dr;
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &dr), 0);
    cr_assert_eq(dr.status, 200);
    h_resp_free(&dr);
    ce.state = "non_compliant";
    cr_assert(h_wait(has_state, &ce, 20000), "a retire straight from active was not marked");
    json_t *cr = compliance_of(&c, "growth/experiments");
    char *vt = json_dumps(json_object_get(cr, "violations"), JSON_COMPACT);
    cr_expect(vt && strstr(vt, "lifecycle.deprecation_window"), "the mark names the transition rule: %s", vt);
    free(vt);
    json_decref(cr);

    /* the owner with the set refuses to retire straight from active (deprecated 60 days first) */
    char ex[512], *mt = h_read_file(h_repo_path("examples/settled-transactions.yaml", ex, sizeof ex), NULL);
    st = put_manifest(&a, "payments/settled-transactions", mt, &ok);
    free(mt);
    cr_assert_eq(st, 201, "the example passes the set: %ld", st);
    json_decref(ok);
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "retire", "payments/settled-transactions", NULL), 1);
    cr_expect(err && strstr(err, "422 policy_violation") && strstr(err, "lifecycle.deprecation_window"), "%s", err);
    free(out), free(err);
    json_t *still = h_get_json(a.url, "/v1/products/payments/settled-transactions", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(still, "status")), "active", "the refused retire changed it");
    json_decref(still);

    /* hostile and stale submissions: refused, counted, the node keeps serving */
    json_t *r = NULL;
    cr_expect_eq(post_policy(&c, "version: [\n", &r), 400);
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")), "bad_policy");
    json_decref(r);
    cr_expect_eq(post_policy(&c, "{\"kind\": \"trib.policy\", \"signed\": \"!!\"}", &r), 400);
    json_decref(r);
    char *text = h_read_file(pol, NULL);
    double accepted = h_metric(c.url, "trib_policy_sets_total{result=\"accepted\"}");
    /* the set in force sent again (a deploy script run twice): 200, the set in force, nothing counted */
    cr_expect_eq(post_policy(&c, text, &r), 200, "the set in force again");
    cr_expect_eq(json_integer_value(json_object_get(r, "version")), 1, "the set in force shown");
    json_decref(r);
    cr_expect_eq(h_metric(c.url, "trib_policy_sets_total{result=\"accepted\"}"), accepted);
    /* another text under the version in force: stale */
    char *other = NULL;
    cr_assert(asprintf(&other, "%s\n# edited\n", text) > 0);
    cr_expect_eq(post_policy(&c, other, &r), 409, "another set of the same version");
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")), "policy_stale");
    json_decref(r);
    free(other);
    free(text);
    cr_expect_eq(h_metric(c.url, "trib_policy_sets_total{result=\"refused\"}"), 3);
    json_t *s = h_get_json(c.url, "/v1/status", NULL);
    cr_expect_not_null(s, "listening stopped serving");
    json_decref(s);

    /* no token, no new set: an admin token of the node's domain is needed */
    char purl[300];
    snprintf(purl, sizeof purl, "%s/v1/policy", c.url);
    h_resp_t nt;
    cr_assert_eq(h_http_token("POST", purl, "application/yaml", "version: 9\nrules: []\n", 21, NULL, &nt), 0);
    cr_expect_eq(nt.status, 401, "a set without a token: %ld", nt.status);
    h_resp_free(&nt);

    /* a new set without the failing rules: every product is re-checked */
    const char *v2 = "version: 2\nrules:\n"
                     "  - {id: version.semver, severity: error, type: regex, path: version, pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+$'}\n"
                     "tests:\n  - manifest: {version: '1'}\n    expect: {fail: [version.semver]}\n";
    cr_assert_eq(post_policy(&c, v2, &r), 200, "version 2 refused");
    cr_expect_eq(json_integer_value(json_object_get(r, "version")), 2);
    json_decref(r);
    comp_t cc2 = { &c, "growth/customer-contacts", "compliant" };
    cr_assert(h_wait(has_state, &cc2, 20000), "listening did not re-check growth's product under version 2");
    facet_t f0 = { &c, 0 };
    cr_expect(h_wait(facet_is, &f0, 20000), "the compliance facet still lists growth's product after version 2");
    cr_expect_eq(h_trib(&c, NULL, &out, &err, "policy", "show", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "policy set version 2 in force"), "%s", out);
    /* and its rules, as the set was written (not only how many) */
    cr_expect(out && strstr(out, "id: version.semver") && strstr(out, "pattern:"), "trib policy show: %s", out);
    free(out), free(err);
    unlink(tmp);
    json_decref(refusal);
}

/* trib keygen, fed init with governance keys, policy sign (threshold enforced), show --file
 * --charter (verified as a node would), and submit to a node in open mode (409 open_mode). */
Test(policy_fed, sign_with_governance_keys_and_submit)
{
    char dir[] = "/tmp/trib-gov-XXXXXX", pol[512], p[16][600];
    cr_assert_not_null(mkdtemp(dir));
    h_repo_path("examples/policies/company.yaml", pol, sizeof pol);
    const char *names[] = { "r1.key", "g1.key", "g2.key", "g3.key", "charter.json", "one.policy", "company.policy" };
    for (int i = 0; i < 7; i++)
        snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    char *out = NULL, *err = NULL;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(h_trib(&n, NULL, NULL, &err, "keygen", "--out", p[i], NULL), 0, "%s", err);
        free(err);
    }
    cr_assert_eq(h_trib(&n, NULL, NULL, &err, "fed", "init", "--root", p[0], "--threshold", "1", "--governance", p[1],
                        "--governance", p[2], "--governance", p[3], "--governance-threshold", "2", "--out", p[4], NULL),
                 0, "%s", err);
    free(err);
    cr_expect_eq(h_trib(&n, NULL, NULL, &err, "policy", "sign", "--charter", p[4], "--key", p[1], pol, "--out", p[5],
                        NULL), 1, "one governance key of a threshold of two signed");
    cr_expect(err && strstr(err, "needs 2"), "%s", err);
    free(err);
    cr_expect_eq(h_trib(&n, NULL, NULL, &err, "policy", "sign", "--charter", p[4], "--key", p[1], "--key", p[0], pol,
                        "--out", p[5], NULL), 1, "a root key counted as a governance key");
    free(err);
    cr_assert_eq(h_trib(&n, NULL, &out, &err, "policy", "sign", "--charter", p[4], "--key", p[1], "--key", p[3], pol,
                        "--out", p[6], NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "version 1") && strstr(out, "2 governance keys"), "%s", out);
    free(out), free(err);
    cr_expect_eq(h_trib(&n, NULL, &out, &err, "policy", "show", "--file", p[6], "--charter", p[4], NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "verified against the charter"), "%s", out);
    free(out), free(err);
    cr_expect_eq(h_trib(&n, NULL, &out, &err, "policy", "submit", p[6], NULL), 1);
    cr_expect(err && strstr(err, "409 open_mode"), "%s", err);
    free(out), free(err);
    cr_expect_eq(h_metric(n.url, "trib_policy_sets_total{result=\"refused\"}"), 1);
    json_t *j = h_get_json(n.url, "/v1/policy", NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "version")), 0, "nothing in force");
    json_decref(j);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* The set in force at an entry's time: a set whose effective_from is still to come is not
 * enforced at publish nor on accept (the entry is judged by no set: compliant, version 0); a
 * later set effective for every entry (open mode, no effective_from) re-judges it. */
Test(policy_fed, judged_by_the_set_in_force_at_the_entry_time)
{
    char pol[512], buf[1024], file[] = "/tmp/trib-future-XXXXXX";
    h_repo_path("examples/policies/company.yaml", pol, sizeof pol);
    size_t len;
    char *yaml = h_read_file(pol, &len);
    cr_assert_not_null(yaml);
    char *v = strstr(yaml, "\nversion: 1\n");
    cr_assert_not_null(v, "company.yaml has no 'version: 1' line");
    /* company.yaml with effective_from far ahead, as version 1 */
    size_t head = (size_t)(v - yaml) + 12;
    char *future = malloc(len + 64);
    snprintf(future, len + 64, "%.*seffective_from: 2099-01-01\n%s", (int)head, yaml, yaml + head);
    int fd = mkstemp(file);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(h_write_file(file, future, strlen(future)), 0);
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", "--policy", file, FAST, NULL), 0, "payments did not start");
    json_t *r = h_get_json(a.url, "/v1/policy", NULL);
    cr_expect_eq(json_integer_value(json_object_get(r, "version")), 1, "the set is held (in force from 2099)");
    json_decref(r);
    long st = put_manifest(&a, "payments/customer-contacts", bad_manifest("payments", buf, sizeof buf), &r);
    cr_expect_eq(st, 201, "a set effective from 2099 refused a publish today: %ld", st);
    json_decref(r);
    comp_t c0 = { &a, "payments/customer-contacts", "compliant" };
    cr_assert(h_wait(has_state, &c0, 20000), "the entry was not judged compliant (no set in force at its time)");
    json_t *cp = compliance_of(&a, c0.id);
    cr_expect_eq(json_integer_value(json_object_get(cp, "policy_version")), 0, "judged by a set not yet in force");
    json_decref(cp);
    /* version 2, effective for every entry: the same entry is judged again, by it */
    v[10] = '2';
    cr_assert_eq(post_policy(&a, yaml, &r), 200, "version 2 refused");
    json_decref(r);
    comp_t c1 = { &a, "payments/customer-contacts", "non_compliant" };
    cr_assert(h_wait(has_state, &c1, 20000), "version 2 did not re-judge the entry");
    cp = compliance_of(&a, c1.id);
    cr_expect_eq(json_integer_value(json_object_get(cp, "policy_version")), 2);
    json_decref(cp);
    bad_manifest("payments", buf, sizeof buf);
    char *ver = strstr(buf, "version: 1.0.0");
    cr_assert_not_null(ver);
    ver[13] = '1';   /* 1.0.1: a new version, now refused at publish */
    st = put_manifest(&a, "payments/customer-contacts", buf, &r);
    cr_expect_eq(st, 422, "version 2 is in effect now: %ld", st);
    cr_expect_eq(json_integer_value(json_object_get(r, "policy_version")), 2);
    json_decref(r);
    unlink(file);
    free(future), free(yaml);
    h_node_cleanup(&a);
}

typedef struct {
    h_node_t *n;
    long want;
} nc_wait_t;

static int report_counts(void *ctx)
{
    nc_wait_t *w = ctx;
    json_t *j = h_get_json(w->n->url, "/v1/compliance", NULL);
    int ok = j && json_integer_value(json_object_get(j, "non_compliant")) == w->want &&
             json_is_false(json_object_get(j, "pending"));
    json_decref(j);
    return ok;
}

/* At company size the report is paged like the search: a page of limit products (100 by default,
 * at most 1000) with their violations, in id order, the counts over them all ("non_compliant",
 * "by_domain"), so neither the node nor `trib compliance` build every violation at once. */
Test(policy_fed, the_compliance_report_is_paged)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0, "payments did not start");
    char text[512], id[64];
    json_t *r;
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "payments/p%d", i);
        snprintf(text, sizeof text,
                 "name: p%d\ndomain: payments\nversion: 1.0.0\ndescription: {purpose: a product}\n"
                 "owners: {business: ana@example.com, technical: data@example.com}\n"
                 "schema: [{name: id, logicalType: string}]\n", i);
        cr_assert_eq(put_manifest(&a, id, text, &r), 201);
        json_decref(r);
    }
    const char *set = "kind: governance.policyset\nversion: 1\nrules:\n"
                      "  - {id: tags.required, severity: error, type: required, paths: [tags]}\n";
    cr_assert_eq(post_policy(&a, set, &r), 200, "the set was refused");
    json_decref(r);
    nc_wait_t w = { &a, 5 };
    cr_assert(h_wait(report_counts, &w, 20000), "the report never counted the 5 untagged products");

    long st;
    json_t *page = h_call("GET", a.url, "/v1/compliance?limit=2&offset=1", NULL, NULL, &st);
    cr_assert_eq(st, 200, "limit and offset refused: %ld", st);
    cr_expect_eq(json_integer_value(json_object_get(page, "non_compliant")), 5);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(page, "by_domain"), "payments")), 5);
    cr_expect_eq(json_integer_value(json_object_get(page, "offset")), 1);
    cr_expect_eq(json_integer_value(json_object_get(page, "limit")), 2);
    json_t *list = json_object_get(json_object_get(page, "domains"), "payments");
    cr_assert_eq(json_array_size(list), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), "payments/p1");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "id")), "payments/p2");
    cr_expect_gt(json_array_size(json_object_get(json_array_get(list, 0), "violations")), 0);
    json_decref(page);
    page = h_call("GET", a.url, "/v1/compliance?offset=4", NULL, NULL, &st);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(page, "domains"), "payments")), 1, "the last page");
    cr_expect_eq(json_integer_value(json_object_get(page, "limit")), 100, "the default page");
    json_decref(page);
    page = h_call("GET", a.url, "/v1/compliance?limit=1001", NULL, NULL, &st);
    cr_expect_eq(st, 400, "a page over 1000 products: %ld", st);
    json_decref(page);

    char *out = NULL, *err = NULL;
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "compliance", "--limit", "2", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "payments/p0") && strstr(out, "payments/p1") && !strstr(out, "payments/p2"), "%s", out);
    cr_expect(out && strstr(out, "2 of 5 shown") && strstr(out, "--offset 2 --limit 2 for the next"),
              "no paging hint with the page's size: %s", out);
    free(out), free(err);
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "compliance", "--limit", "0", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "0 of 5 shown") && !strstr(out, "--offset"), "a page of none has no next: %s", out);
    free(out), free(err);
    cr_expect_eq(h_trib(&a, NULL, &out, &err, "compliance", "--offset", "4", NULL), 0, "%s", err);
    cr_expect(out && strstr(out, "payments/p4") && !strstr(out, "payments/p3"), "%s", out);
    cr_expect(out && strstr(out, "1 of 5 shown") && !strstr(out, "--offset"), "the last page: %s", out);
    free(out), free(err);
    h_node_cleanup(&a);
}
