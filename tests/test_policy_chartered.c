/* tests/test_policy_chartered.c - signed policy sets on chartered `trib agent` processes: a set
 * signed with the charter's governance key and submitted with `trib policy submit` on one node is
 * carried by the federation log to every node (same version and signers on each), where a
 * publish breaking an error rule is then refused 422; an entry older than the set's effective
 * time is judged by the set in force at its time (none here), not by the current one; a set
 * signed by a key that is not a governance key, and an older version, are refused with their
 * status, code and counter, and the node keeps serving; through POST /v1/federation/objects the
 * forged set is refused 422 (counted by the log) and the older one is held as history on every
 * node, not put in force. On a full disk a set that cannot be stored is a 507, and not in force,
 * also after a restart.
 *
 * Owns: a temp dir under /tmp (removed), the processes it starts (stopped). */
#include <criterion/criterion.h>

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/charter.h"
#include "gossip/identity.h"
#include "proto/tributary.pb-c.h"
#include "tests/fulldisk.h"
#include "tests/harness.h"

TestSuite(policy_chartered, .fini = h_cleanup_all, .timeout = 240);

#define FAST "--probe-interval-ms", "300", "--probe-timeout-ms", "150", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static char tmp[64], cpath[300];

static const char *P(const char *name)
{
    static char bufs[16][300];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, 300, "%s/%s", tmp, name);
    return b;
}

/* A chartered node: its identity, a certificate from roots r1 and r2, --charter --cert. */
static void start_chartered(h_node_t *n, const char *domain, const char *name, const char *seed, char id[65])
{
    char dir[300], cert[300], file[64], *o = NULL, *e = NULL;
    snprintf(dir, sizeof dir, "%s", P(name));
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    cr_assert_eq(h_trib(NULL, NULL, &o, &e, "identity", "--data", dir, NULL), 0, "%s", e ? e : "");
    cr_assert(o && strlen(o) >= 64, "trib identity printed no node id");
    snprintf(id, 65, "%.64s", o);
    free(o), free(e);
    e = NULL;
    snprintf(file, sizeof file, "%s.cert", name);
    snprintf(cert, sizeof cert, "%s", P(file));
    cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "fed", "certify", "--charter", cpath, "--root", P("r1.key"), "--root",
                        P("r2.key"), "--domain", domain, "--node", id, "--out", cert, NULL), 0, "%s", e);
    free(e);
    /* with other suites running, a port probed free can be taken by another agent before ours
     * binds it: start again on new ports when the node answering is not this one */
    int ok = 0;
    for (int try = 0; try < 3 && !ok; try++) {
        if (seed)
            cr_assert_eq(h_node_start(n, domain, "--data", dir, "--charter", cpath, "--cert", cert, "--seed", seed,
                                      FAST, NULL), 0, "%s did not start", domain);
        else
            cr_assert_eq(h_node_start(n, domain, "--data", dir, "--charter", cpath, "--cert", cert, FAST, NULL), 0,
                         "%s did not start", domain);
        json_t *j = h_get_json(n->url, "/v1/status", NULL);
        const char *nid = j ? json_string_value(json_object_get(j, "node_id")) : NULL;
        ok = nid && strncmp(nid, id, 64) == 0;
        json_decref(j);
        if (!ok)
            h_node_stop(n, SIGTERM);
    }
    cr_assert(ok, "another agent kept answering on %s's ports", domain);
}

static int all_alive3(void *ctx)
{
    h_node_t *ns = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(ns[i].url, "/v1/status", NULL);
        long alive = (long)json_integer_value(json_object_get(json_object_get(j, "members"), "alive"));
        json_decref(j);
        if (alive != 3)
            return 0;
    }
    return 1;
}

typedef struct {
    h_node_t *nodes;
    long version;
} ver_wait_t;

static int all_have_version(void *ctx)
{
    ver_wait_t *w = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(w->nodes[i].url, "/v1/policy", NULL);
        long v = (long)json_integer_value(json_object_get(j, "version"));
        json_decref(j);
        if (v != w->version)
            return 0;
    }
    return 1;
}

/* Every node's federation log stored a policy set. */
static int all_stored_policy(void *ctx)
{
    ver_wait_t *w = ctx;
    for (int i = 0; i < 3; i++)
        if (h_metric(w->nodes[i].url, "trib_fedlog_accepted_total{kind=\"policy\"}") < 1)
            return 0;
    return 1;
}

static long http_json(const char *method, h_node_t *n, const char *path, const char *ctype, const char *body,
                      json_t **reply)
{
    char url[300];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http(method, url, ctype, body, strlen(body), &r), 0, "%s %s", method, url);
    *reply = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    long s = r.status;
    h_resp_free(&r);
    return s;
}

/* Parses, but breaks company.yaml's error rules (owners.email, pii.field_tag, description.length). */
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

typedef struct {
    h_node_t *n;
    const char *id;
} prod_wait_t;

static int has_compliance(void *ctx)
{
    prod_wait_t *w = ctx;
    char path[256];
    snprintf(path, sizeof path, "/v1/products/%s", w->id);
    json_t *j = h_get_json(w->n->url, path, NULL);
    const char *st = json_string_value(json_object_get(json_object_get(j, "compliance"), "state"));
    int ok = st && strcmp(st, "unchecked") != 0;
    json_decref(j);
    return ok;
}

static int has_product(void *ctx)
{
    prod_wait_t *w = ctx;
    char path[256];
    snprintf(path, sizeof path, "/v1/products/%s", w->id);
    json_t *j = h_get_json(w->n->url, path, NULL);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

/* A signed policy set file (yaml: version 3) for the charter's federation signed by key (any key:
 * no checks). */
static void forge_set(const char *yaml, const char *keyfile, const char *out)
{
    charter_t ch;
    identity_t id;
    char err[600];
    memset(&ch, 0, sizeof ch);
    cr_assert_eq(charter_load(cpath, &ch, err, sizeof err), TRUST_OK, "%s", err);
    cr_assert_eq(identity_load_file(keyfile, &id, err, sizeof err), 0, "%s", err);
    Trib__PolicySet b = TRIB__POLICY_SET__INIT;
    b.federation_id.data = ch.fed_id;
    b.federation_id.len = FED_ID_LEN;
    b.version = 3;
    b.issued_ms = h_now_ms();
    b.text = (char *)yaml;
    size_t blen = trib__policy_set__get_packed_size(&b);
    uint8_t *body = malloc(blen), *env = NULL;
    size_t elen = 0;
    trib__policy_set__pack(&b, body);
    const identity_t *keys[] = { &id };
    cr_assert_eq(trust_envelope_make(TRUST_KIND_POLICY, body, blen, keys, 1, &env, &elen), 0);
    char *b64 = malloc(sodium_base64_encoded_len(elen, sodium_base64_VARIANT_ORIGINAL));
    sodium_bin2base64(b64, sodium_base64_encoded_len(elen, sodium_base64_VARIANT_ORIGINAL), env, elen,
                      sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_pack("{s:s,s:I,s:s}", "kind", "trib.policy", "version", (json_int_t)3, "signed", b64);
    cr_assert_eq(json_dump_file(j, out, 0), 0);
    json_decref(j);
    free(b64), free(env), free(body);
    identity_wipe(&id);
    charter_free(&ch);
}

typedef struct {
    h_node_t *nodes;
} hist_wait_t;

/* Every node holds two policy sets in its federation log and counted one kept as history. */
static int all_hold_history(void *ctx)
{
    hist_wait_t *w = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(w->nodes[i].url, "/v1/federation", NULL);
        long held = (long)json_integer_value(json_object_get(j, "policies"));
        json_decref(j);
        if (held != 2 || h_metric(w->nodes[i].url, "trib_policy_sets_total{result=\"history\"}") != 1)
            return 0;
    }
    return 1;
}

static void expect_serving(h_node_t *n)
{
    long st = 0;
    json_t *j = h_get_json(n->url, "/v1/status", &st);
    cr_expect_eq(st, 200, "the node stopped serving (log %s)", n->log);
    json_decref(j);
}

/* The policy_changed events of n's change feed (live=0): how many, and the version of the last. */
static int policy_events(h_node_t *n, json_int_t *version)
{
    char url[300];
    snprintf(url, sizeof url, "%s/v1/catalog/changes?live=0", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%s: %ld", url, r.status);
    int c = 0;
    *version = 0;
    for (char *line = r.body ? r.body : "", *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        json_t *ev = json_loadb(line, (size_t)(nl - line), 0, NULL);
        if (!strcmp(json_string_value(json_object_get(ev, "event")) ?: "", "policy_changed")) {
            c++;
            *version = json_integer_value(json_object_get(ev, "version"));
        }
        json_decref(ev);
    }
    h_resp_free(&r);
    return c;
}

Test(policy_chartered, submit_on_one_node_reaches_every_node_and_is_enforced)
{
    snprintf(tmp, sizeof tmp, "/tmp/trib-polch-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    const char *keys[] = { "r1.key", "r2.key", "r3.key", "gov1.key", "evil.key" };
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(h_trib(NULL, NULL, NULL, NULL, "keygen", "--out", P(keys[i]), NULL), 0);
    snprintf(cpath, sizeof cpath, "%s", P("charter.json"));
    char *e = NULL, *o = NULL;
    cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "fed", "init", "--root", P("r1.key"), "--root", P("r2.key"), "--root",
                        P("r3.key"), "--threshold", "2", "--governance", P("gov1.key"), "--out", cpath, NULL), 0,
                 "%s", e);
    free(e);

    h_node_t nodes[3];
    char id[3][65], seed[200], buf[1024];
    start_chartered(&nodes[0], "payments", "n0", NULL, id[0]);
    snprintf(seed, sizeof seed, "%s@%s", id[0], nodes[0].peer);
    start_chartered(&nodes[1], "growth", "n1", seed, id[1]);
    start_chartered(&nodes[2], "listening", "n2", seed, id[2]);
    cr_assert(h_wait(all_alive3, nodes, 30000), "three chartered nodes did not see each other alive");

    /* before any set: growth publishes a manifest the set will forbid; it reaches payments */
    json_t *r = NULL;
    long st = http_json("PUT", &nodes[1], "/v1/products/growth/customer-contacts", "application/yaml",
                        bad_manifest("growth", buf, sizeof buf), &r);
    cr_assert_eq(st, 201, "growth without a set: %ld", st);
    json_decref(r);
    prod_wait_t pw = { &nodes[0], "growth/customer-contacts" };
    cr_assert(h_wait(has_product, &pw, 20000), "growth's product did not reach payments");

    /* governance signs company.yaml (version 1) and version 2 of it */
    char pol[512];
    h_repo_path("examples/policies/company.yaml", pol, sizeof pol);
    size_t len;
    char *yaml = h_read_file(pol, &len);
    cr_assert_not_null(yaml);
    char *v = strstr(yaml, "\nversion: 1");
    cr_assert_not_null(v, "company.yaml has no 'version: 1' line");
    v[10] = '2';
    cr_assert_eq(h_write_file(P("company2.yaml"), yaml, len), 0);
    v[10] = '1';
    e = NULL;
    cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "policy", "sign", "--charter", cpath, "--key", P("gov1.key"), pol, "--out",
                        P("company.policy"), NULL), 0, "%s", e);
    free(e);
    e = NULL;
    cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "policy", "sign", "--charter", cpath, "--key", P("gov1.key"),
                        P("company2.yaml"), "--out", P("company2.policy"), NULL), 0, "%s", e);
    free(e);

    /* `trib policy submit` on payments: in force there, and within seconds on every node */
    e = NULL;
    long t0 = h_now_ms();
    cr_assert_eq(h_trib(&nodes[0], NULL, &o, &e, "policy", "submit", P("company2.policy"), NULL), 0, "%s", e);
    free(o), free(e);
    ver_wait_t vw = { nodes, 2 };
    cr_assert(h_wait(all_have_version, &vw, 15000), "version 2 did not reach every node in 15 s");
    /* how fast federation-log objects spread (policy sets ride the same log as revocations) is a
     * benchmark's figure (bench/revoke.c, `make bench`), not this test's: 15 s is its deadline */
    cr_log_info("the set reached three nodes in %ld ms", h_now_ms() - t0);
    json_t *show0 = h_get_json(nodes[0].url, "/v1/policy", NULL);
    cr_assert_not_null(show0);
    cr_expect_eq(json_array_size(json_object_get(show0, "signers")), 1);
    for (int i = 1; i < 3; i++) {
        json_t *s = h_get_json(nodes[i].url, "/v1/policy", NULL);
        cr_expect(json_equal(json_object_get(s, "signers"), json_object_get(show0, "signers")), "node %d signers", i);
        cr_expect_str_eq(json_string_value(json_object_get(s, "effective")),
                         json_string_value(json_object_get(show0, "effective")), "node %d effective time", i);
        cr_expect_eq(json_is_true(json_object_get(s, "signed")), 1, "node %d", i);
        json_decref(s);
    }
    /* put in force just before its durable commit (off the gossip loop): stored just after */
    cr_expect(h_wait(all_stored_policy, &vw, 10000), "the set was not stored on every node in 10 s");
    for (int i = 1; i < 3; i++)
        cr_expect_eq(h_metric(nodes[i].url, "trib_fedlog_accepted_total{kind=\"policy\"}"), 1, "node %d", i);
    json_decref(show0);
    o = e = NULL;
    cr_expect_eq(h_trib(&nodes[2], NULL, &o, &e, "policy", "show", NULL), 0, "%s", e);
    cr_expect(o && strstr(o, "policy set version 2 in force (signed)\n"), "%s", o);
    free(o), free(e);

    /* enforced on another node: a new product breaking error rules is refused 422 */
    st = http_json("PUT", &nodes[2], "/v1/products/listening/customer-contacts", "application/yaml",
                   bad_manifest("listening", buf, sizeof buf), &r);
    cr_expect_eq(st, 422, "listening, with the gossiped set: %ld", st);
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")) ?: "", "policy_violation");
    cr_expect_geq(json_array_size(json_object_get(r, "violations")), 3);
    json_decref(r);

    /* growth's entry is older than the set's effective time: judged by the set in force at its
     * time (none), on every node alike - not by version 2 */
    for (int i = 0; i < 3; i++) {
        prod_wait_t cw = { &nodes[i], "growth/customer-contacts" };
        cr_assert(h_wait(has_compliance, &cw, 15000), "node %d did not judge growth's product", i);
        json_t *j = h_get_json(nodes[i].url, "/v1/products/growth/customer-contacts", NULL);
        json_t *c = json_object_get(j, "compliance");
        cr_expect_str_eq(json_string_value(json_object_get(c, "state")), "compliant", "node %d", i);
        cr_expect_eq(json_integer_value(json_object_get(c, "policy_version")), 0, "node %d: judged by a set "
                     "that came into force after the entry", i);
        cr_expect_eq(json_array_size(json_object_get(c, "violations")), 0, "node %d", i);
        json_decref(j);
    }

    /* refused: an older version (409), a set signed by a key that is not a governance key (403) */
    double before = h_metric(nodes[1].url, "trib_policy_sets_total{result=\"refused\"}");
    char *body = h_read_file(P("company.policy"), &len);
    st = http_json("POST", &nodes[1], "/v1/policy", "application/json", body, &r);
    free(body);
    cr_expect_eq(st, 409, "an older version: %ld", st);
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")) ?: "", "policy_stale");
    json_decref(r);
    v[10] = '3';   /* a new version: only the signature is wrong */
    forge_set(yaml, P("evil.key"), P("evil.policy"));
    body = h_read_file(P("evil.policy"), &len);
    st = http_json("POST", &nodes[1], "/v1/policy", "application/json", body, &r);
    free(body);
    cr_expect_eq(st, 403, "signed by a non-governance key: %ld", st);
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")) ?: "", "policy_unsigned");
    cr_expect(strstr(json_string_value(json_object_get(r, "detail")) ?: "", "governance"), "%s",
              json_string_value(json_object_get(r, "detail")));
    json_decref(r);
    /* a root key is not a governance key either */
    forge_set(yaml, P("r1.key"), P("root.policy"));
    body = h_read_file(P("root.policy"), &len);
    st = http_json("POST", &nodes[1], "/v1/policy", "application/json", body, &r);
    free(body);
    cr_expect_eq(st, 403, "signed by a root key: %ld", st);
    json_decref(r);
    cr_expect_eq(h_metric(nodes[1].url, "trib_policy_sets_total{result=\"refused\"}"), before + 3);
    expect_serving(&nodes[1]);

    /* through the federation log's door: the forged set is refused there too (422, counted); the
     * older set is held as history and carried to every node, not put in force */
    body = h_read_file(P("evil.policy"), &len);
    st = http_json("POST", &nodes[1], "/v1/federation/objects", "application/json", body, &r);
    free(body);
    cr_expect_eq(st, 422, "a forged set as a federation object: %ld", st);
    cr_expect_str_eq(json_string_value(json_object_get(r, "error")) ?: "", "policy_refused");
    json_decref(r);
    cr_expect_geq(h_metric(nodes[1].url, "trib_fedlog_refused_total{kind=\"policy\",reason=\"policy_refused\"}"), 1);
    body = h_read_file(P("company.policy"), &len);
    st = http_json("POST", &nodes[1], "/v1/federation/objects", "application/json", body, &r);
    free(body);
    cr_expect_eq(st, 201, "the older set as a federation object: %ld", st);
    json_decref(r);
    hist_wait_t hw = { nodes };
    cr_expect(h_wait(all_hold_history, &hw, 15000), "version 1 did not reach every node's history");
    vw.version = 2;
    cr_expect(all_have_version(&vw), "a refused set changed the set in force somewhere");
    /* the change feed of every node: one policy_changed, version 2, signed; the refused sets and
     * version 1 kept as history added none */
    for (int i = 0; i < 3; i++) {
        json_int_t pv;
        cr_expect_eq(policy_events(&nodes[i], &pv), 1, "node %d: policy_changed events", i);
        cr_expect_eq(pv, 2, "node %d: the event's version", i);
    }
    free(yaml);
    for (int i = 0; i < 3; i++)
        h_node_cleanup(&nodes[i]);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    cr_expect_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- a set on a full disk */

static void full_teardown(void)
{
    h_cleanup_all();
    fulldisk_unmount();
    if (tmp[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        cr_expect_eq(system(cmd), 0);
    }
}

/* POSTs the signed set file to n's /v1/policy: the status, "error: detail" in text. */
static long submit_set(h_node_t *n, const char *file, char *text, size_t cap)
{
    size_t len;
    char *body = h_read_file(file, &len);
    cr_assert_not_null(body, "%s", file);
    json_t *r = NULL;
    long st = http_json("POST", n, "/v1/policy", "application/json", body, &r);
    snprintf(text, cap, "%s: %s", json_string_value(json_object_get(r, "error")) ?: "",
             json_string_value(json_object_get(r, "detail")) ?: "");
    json_decref(r);
    free(body);
    return st;
}

static long version_in_force(h_node_t *n)
{
    json_t *j = h_get_json(n->url, "/v1/policy", NULL);
    cr_assert_not_null(j, "GET /v1/policy failed (log %s)", n->log);
    long v = (long)json_integer_value(json_object_get(j, "version"));
    json_decref(j);
    return v;
}

/* A chartered node whose data dir is on a full disk (a 4 MiB tmpfs filled once the node runs;
 * skipped, saying why, where mounting is not permitted). Signed sets of about 6 KiB each are
 * submitted until one cannot be stored: that one is a 507 no_space saying it is not in force,
 * GET /v1/policy still shows the last set acknowledged, and so does a restart (with space freed);
 * the same set is then taken, and kept across a restart. Before, its file was written before its
 * commit: on a full disk that write failed and the operator got a 409 policy_stale; where it did
 * not, a failed commit left the set in force, also after a restart. */
Test(policy_chartered, an_operators_set_on_a_full_disk_is_507_and_not_in_force, .fini = full_teardown)
{
    snprintf(tmp, sizeof tmp, "/tmp/trib-polfull-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    int e_mnt = fulldisk_mount(P("full"), "4m");
    if (e_mnt)
        cr_skip_test("cannot mount a 4 MiB tmpfs to fill (%s): run as root to test a full disk", strerror(e_mnt));
    const char *keys[] = { "r1.key", "r2.key", "gov1.key" };
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(h_trib(NULL, NULL, NULL, NULL, "keygen", "--out", P(keys[i]), NULL), 0);
    snprintf(cpath, sizeof cpath, "%s", P("charter.json"));
    char *e = NULL;
    cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "fed", "init", "--root", P("r1.key"), "--root", P("r2.key"),
                        "--threshold", "2", "--governance", P("gov1.key"), "--out", cpath, NULL), 0, "%s", e);
    free(e);
    enum { SETS = 24 };                /* versions 1 .. SETS, signed before the disk fills */
    char name[64], yaml[8192];
    for (int v = 1; v <= SETS; v++) {
        size_t at = (size_t)snprintf(yaml, sizeof yaml, "version: %d\n", v);
        for (int k = 0; k < 60; k++)   /* about 6 KiB: LMDB keeps it on pages of its own */
            at += (size_t)snprintf(yaml + at, sizeof yaml - at, "# %02d padding so that each set takes room on "
                                   "the disk, as a long set with comments would do ......\n", k);
        snprintf(yaml + at, sizeof yaml - at, "rules:\n  - {id: own, severity: error, type: required, paths: "
                 "[owners.business]}\ntests:\n  - manifest: {name: a}\n    expect: {fail: [own]}\n");
        snprintf(name, sizeof name, "v%d.yaml", v);
        cr_assert_eq(h_write_file(P(name), yaml, strlen(yaml)), 0);
        char out[64];
        snprintf(out, sizeof out, "v%d.policy", v);
        e = NULL;
        cr_assert_eq(h_trib(NULL, NULL, NULL, &e, "policy", "sign", "--charter", cpath, "--key", P("gov1.key"),
                            P(name), "--out", P(out), NULL), 0, "%s", e);
        free(e);
    }
    h_node_t n;
    char id[65], text[900];
    start_chartered(&n, "payments", "full/n0", NULL, id);
    cr_assert_eq(submit_set(&n, P("v1.policy"), text, sizeof text), 200, "%s", text);
    cr_assert_gt(fulldisk_fill(P("full/filler")), 0, "nothing fitted on the tmpfs: the node took it all");

    int v = 2;
    long st = 0;
    for (; v <= SETS; v++) {
        snprintf(name, sizeof name, "v%d.policy", v);
        if ((st = submit_set(&n, P(name), text, sizeof text)) != 200)
            break;
    }
    cr_assert_leq(v, SETS, "%d sets were stored on a full disk", SETS);
    cr_log_info("%d set(s) stored on the full disk before one did not fit: %s", v - 2, text);
    cr_assert_eq(st, 507, "a set that could not be stored: %ld %s", st, text);
    cr_expect(strstr(text, "no_space: ") && strstr(text, "no space left on device") && strstr(text, "not in force"),
              "%s", text);
    cr_expect_eq(version_in_force(&n), v - 1, "the set refused is in force, or the last one taken is not");
    e = NULL;
    cr_expect_neq(h_trib(&n, NULL, NULL, &e, "policy", "submit", P(name), NULL), 0, "trib policy submit succeeded");
    cr_expect(e && strstr(e, "not in force"), "trib policy submit said: %s", e ? e : "");
    free(e);
    expect_serving(&n);

    /* space freed, restarted: the set in force is still the last one acknowledged; the refused
     * one is taken now, and kept across a restart */
    cr_assert_eq(unlink(P("full/filler")), 0);
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    cr_expect_eq(version_in_force(&n), v - 1, "after a restart");
    cr_expect_eq(submit_set(&n, P(name), text, sizeof text), 200, "%s", text);
    cr_expect_eq(version_in_force(&n), v);
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    cr_expect_eq(version_in_force(&n), v, "after a restart");
    h_node_cleanup(&n);
}
