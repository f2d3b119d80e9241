/* tests/test_fed_cli.c - the real `trib` binary through issue 10's steps 1-2: keygen x3, fed
 * init, identity, fed certify, fed show, fed revoke; file modes, outputs, exit codes and the
 * message of every refusal.
 *
 * Owns: one mkdtemp dir per test under /tmp, removed after (files by name).
 * Must not: start a node (these commands are offline). */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "tests/harness.h"

static char dir[64];

static const char *P(const char *name)
{
    static char bufs[128][256];   /* the refusal table holds ~40 at once */
    static int next;
    char *b = bufs[next++ % 128];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/trib-fedcli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    return st.st_mode & 07777;
}

/* Runs trib; returns the exit code; *out / *err owned by the caller (freed by run_free). */
#define TRIB(out, err, ...) h_trib(NULL, NULL, out, err, __VA_ARGS__, NULL)

static void chomp(char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        s[n - 1] = '\0';
}

/* keygen: prints the public key, writes 0600, which loads back to that key. */
static void keygen(const char *name, char hex[ID_HEX_LEN])
{
    char *out = NULL, *err = NULL, e[256];
    cr_assert_eq(TRIB(&out, &err, "keygen", "--out", P(name)), 0, "%s", err);
    chomp(out);
    cr_assert_eq(strlen(out), 64, "keygen printed '%s'", out);
    cr_expect_eq(mode_of(P(name)), 0600);
    identity_t id;
    cr_assert_eq(identity_load_file(P(name), &id, e, sizeof e), 0, "%s", e);
    cr_expect_str_eq(id.hex, out);
    snprintf(hex, ID_HEX_LEN, "%s", out);
    identity_wipe(&id);
    free(out);
    free(err);
}

static void federation(char root1[ID_HEX_LEN], char root2[ID_HEX_LEN], char gov[ID_HEX_LEN])
{
    char *out = NULL, *err = NULL;
    keygen("root1.key", root1);
    keygen("root2.key", root2);
    keygen("gov1.key", gov);
    cr_assert_eq(TRIB(&out, &err, "fed", "init", "--root", P("root1.key"), "--root", P("root2.key"),
                      "--threshold", "2", "--governance", P("gov1.key"), "--out", P("charter.json")),
                 0, "%s", err);
    cr_expect(strstr(out, "version 1, 2 roots (threshold 2), 1 governance key (threshold 1)") != NULL,
              "%s", out);
    free(out);
    free(err);
}

TestSuite(fed_cli, .init = setup, .fini = teardown, .timeout = 60);

Test(fed_cli, user_story_steps_1_and_2)
{
    char r1[ID_HEX_LEN], r2[ID_HEX_LEN], g[ID_HEX_LEN], e[512];
    char *out = NULL, *err = NULL;

    /* 1. Governance creates the federation. */
    federation(r1, r2, g);
    charter_t ch;
    cr_assert_eq(charter_load(P("charter.json"), &ch, e, sizeof e), TRUST_OK, "%s", e);
    cr_expect_eq(ch.version, 1);
    cr_expect_eq(ch.threshold, 2);
    cr_expect_eq(ch.gov_threshold, 1);
    cr_expect_eq(ch.nsigners, 2);
    uint8_t k[ID_PK_LEN];
    cr_assert_eq(identity_from_hex(r1, k), 0);
    cr_expect(charter_is_root(&ch, k));
    cr_assert_eq(identity_from_hex(g, k), 0);
    cr_expect(charter_is_governance(&ch, k));
    cr_expect_not(charter_is_root(&ch, k));

    /* 2. A team prepares its node: the identity is created once, then only read. */
    cr_assert_eq(TRIB(&out, &err, "identity", "--data", P("payments")), 0, "%s", err);
    chomp(out);
    char node[ID_HEX_LEN];
    snprintf(node, sizeof node, "%s", out);
    cr_expect_eq(strlen(node), 64);
    cr_expect(strstr(err, "created") != NULL, "%s", err);
    cr_expect_eq(mode_of(P("payments/identity.key")), 0600);
    cr_expect_eq(mode_of(P("payments")), 0700);
    free(out), free(err);
    cr_assert_eq(TRIB(&out, &err, "identity", "--data", P("payments")), 0, "%s", err);
    chomp(out);
    cr_expect_str_eq(out, node, "the same identity the second time");
    cr_expect_str_eq(err, "");
    free(out), free(err);

    /* ... and gets it certified. */
    cr_assert_eq(TRIB(&out, &err, "fed", "certify", "--charter", P("charter.json"), "--root",
                      P("root1.key"), "--root", P("root2.key"), "--domain", "payments", "--node",
                      node, "--days", "90", "--out", P("payments.cert")), 0, "%s", err);
    cr_expect(strstr(out, "domain payments") != NULL, "%s", out);
    free(out), free(err);
    cert_t c;
    cr_assert_eq(cert_load(P("payments.cert"), &c, e, sizeof e), 0, "%s", e);
    cr_assert_eq(identity_from_hex(node, k), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000;
    cr_expect_eq(cert_valid_at(&ch, &c, NULL, "payments", k, now, TRUST_SKEW_MS, e, sizeof e),
                 TRUST_OK, "%s", e);
    int64_t days = (c.not_after_ms - c.not_before_ms) / 86400000LL;
    cr_expect_eq(days, 90);
    char serial[17];
    cert_serial_text(c.serial, serial);

    /* fed show, text and JSON. */
    cr_assert_eq(TRIB(&out, &err, "fed", "show", P("payments.cert"), "--charter", P("charter.json")),
                 0, "%s", err);
    cr_expect(strstr(out, "verifies              yes") != NULL, "%s", out);
    cr_expect(strstr(out, serial) != NULL, "%s", out);
    cr_expect(strstr(out, node) != NULL, "%s", out);
    free(out), free(err);
    cr_assert_eq(TRIB(&out, &err, "fed", "show", P("charter.json"), "--json"), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(j, "kind")), "trib.charter");
    cr_expect_eq(json_integer_value(json_object_get(j, "threshold")), 2);
    json_decref(j);
    free(out), free(err);

    /* 5. Revocation, shown as verifying. */
    cr_assert_eq(TRIB(&out, &err, "fed", "revoke", "--charter", P("charter.json"), "--root",
                      P("root2.key"), "--root", P("root1.key"), "--node", node, "--reason",
                      "lost laptop", "--out", P("rev.json")), 0, "%s", err);
    free(out), free(err);
    cr_assert_eq(TRIB(&out, &err, "fed", "show", P("rev.json"), "--charter", P("charter.json")),
                 0, "%s", err);
    cr_expect(strstr(out, "lost laptop") != NULL, "%s", out);
    cr_expect(strstr(out, "verifies              yes") != NULL, "%s", out);
    free(out), free(err);
    revocation_t r;
    cr_assert_eq(revocation_load(P("rev.json"), &r, e, sizeof e), 0, "%s", e);
    revset_t set = { 0 };
    cr_assert_eq(revocation_verify(&ch, &r, e, sizeof e), TRUST_OK, "%s", e);
    cr_assert_eq(revset_add(&set, &r), 1);
    cr_expect_eq(cert_valid_at(&ch, &c, &set, "payments", k, r.effective_ms, 0, e, sizeof e),
                 TRUST_REVOKED);
    revset_free(&set);
    revocation_free(&r);
    cert_free(&c);
    charter_free(&ch);
}

/* Every refusal: exit code and a message naming what is wrong; nothing written. */
Test(fed_cli, refusals_say_what_and_where)
{
    char r1[ID_HEX_LEN], r2[ID_HEX_LEN], g[ID_HEX_LEN], node[ID_HEX_LEN];
    federation(r1, r2, g);
    keygen("node.key", node);
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRIB(&out, &err, "fed", "init", "--root", P("root1.key"), "--threshold", "1",
                      "--out", P("other.json")), 0, "%s", err);
    free(out), free(err);
    cr_assert_eq(TRIB(&out, &err, "fed", "certify", "--charter", P("other.json"), "--root",
                      P("root1.key"), "--domain", "payments", "--node", node, "--out",
                      P("other.cert")), 0, "%s", err);
    free(out), free(err);
    FILE *f = fopen(P("edited.json"), "w");
    char *text = h_read_file(P("charter.json"), NULL);
    char *t = strstr(text, "\"threshold\": 2");
    cr_assert_not_null(t);
    t[13] = '1';
    fputs(text, f);
    fclose(f);
    free(text);

    struct {
        int rc;
        const char *expect;
        const char *args[20];
    } cases[] = {
        { 1, "already exists (refusing to overwrite a key)", { "keygen", "--out", P("root1.key") } },
        { 2, "--out is required", { "keygen" } },
        { 1, "charter.json needs 2 root signatures (its threshold), 1 --root given",
          { "fed", "certify", "--charter", P("charter.json"), "--root", P("root1.key"), "--domain",
            "payments", "--node", node, "--out", P("x.cert") } },
        { 1, "gov1.key: key ", { "fed", "certify", "--charter", P("charter.json"), "--root",
            P("root1.key"), "--root", P("gov1.key"), "--domain", "payments", "--node", node,
            "--out", P("x.cert") } },
        { 1, "given twice", { "fed", "certify", "--charter", P("charter.json"), "--root",
            P("root1.key"), "--root", P("root1.key"), "--domain", "payments", "--node", node,
            "--out", P("x.cert") } },
        { 1, "domain 'Pay' is not a valid domain name", { "fed", "certify", "--charter",
            P("charter.json"), "--root", P("root1.key"), "--root", P("root2.key"), "--domain",
            "Pay", "--node", node, "--out", P("x.cert") } },
        { 2, "--node 'abc': expected a node id", { "fed", "certify", "--charter", P("charter.json"),
            "--root", P("root1.key"), "--domain", "payments", "--node", "abc", "--out", P("x.cert") } },
        { 2, "--days '0': expected a whole number from 1 to 3660", { "fed", "certify", "--charter",
            P("charter.json"), "--root", P("root1.key"), "--domain", "payments", "--node", node,
            "--days", "0", "--out", P("x.cert") } },
        { 1, "nope.key: no such key file", { "fed", "certify", "--charter", P("charter.json"),
            "--root", P("nope.key"), "--domain", "payments", "--node", node, "--out", P("x.cert") } },
        { 1, "edited.json: field \"threshold\" differs from the signed bytes", { "fed", "certify",
            "--charter", P("edited.json"), "--root", P("root1.key"), "--root", P("root2.key"),
            "--domain", "payments", "--node", node, "--out", P("x.cert") } },
        { 2, "--threshold '3': expected a whole number from 1 to 2", { "fed", "init", "--root",
            P("root1.key"), "--root", P("root2.key"), "--threshold", "3", "--out", P("x.json") } },
        { 1, "the same key as", { "fed", "init", "--root", P("root1.key"), "--root", P("root1.key"),
            "--threshold", "1", "--out", P("x.json") } },
        { 1, "the charter needs 2 signatures", { "fed", "init", "--root", P("root1.key"), "--root",
            node, "--threshold", "2", "--out", P("x.json") } },
        { 1, "already exists (refusing to overwrite)", { "fed", "init", "--root", P("root1.key"),
            "--threshold", "1", "--out", P("charter.json") } },
        { 2, "give exactly one of --node NODE_ID and --serial S", { "fed", "revoke", "--charter",
            P("charter.json"), "--root", P("root1.key"), "--out", P("x.json") } },
        { 1, "issued in another federation", { "fed", "show", P("other.cert"), "--charter",
            P("charter.json") } },
        { 1, "not JSON", { "fed", "show", P("root1.key") } },
        { 2, "unknown option '--bogus'", { "fed", "show", P("charter.json"), "--bogus" } },
        { 2, "unknown command 'fed bogus'", { "fed", "bogus" } },
        /* key rotate names what its form lacks (it asked for --domain and --out, which the
         * running node's form, the one the README shows, does not take) */
        { 2, "--data DIR is required (a running node: --data DIR [--node URL]", { "key", "rotate" } },
        { 2, "offline (--out, --domain, --effective, --overlap-hours), both --domain and --out are required",
          { "key", "rotate", "--data", P("d"), "--domain", "payments" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        int rc = h_trib(NULL, NULL, &out, &err, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                        a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18],
                        a[19], (char *)NULL);
        cr_expect_eq(rc, cases[i].rc, "case %zu (%s %s): exit %d, stderr: %s", i, a[0], a[1], rc, err);
        cr_expect(strstr(err, cases[i].expect) != NULL, "case %zu: stderr lacks '%s': %s", i,
                  cases[i].expect, err);
        cr_expect(strncmp(err, "trib: ", 6) == 0, "case %zu: %s", i, err);
        free(out), free(err);
    }
    cr_expect_neq(access(P("x.cert"), F_OK), 0, "a refused certify wrote nothing");
    cr_expect_neq(access(P("x.json"), F_OK), 0, "a refused init wrote nothing");
}

/* Step 6: the charter changes by hash-chained versions; a removed root cannot sign the next. */
Test(fed_cli, charter_update_chain)
{
    char r1[ID_HEX_LEN], r2[ID_HEX_LEN], g[ID_HEX_LEN], r3[ID_HEX_LEN], e[512];
    char *out = NULL, *err = NULL;
    federation(r1, r2, g);
    keygen("root3.key", r3);
    cr_assert_eq(TRIB(&out, &err, "fed", "update", "--charter", P("charter.json"), "--root",
                      P("root1.key"), "--root", P("root2.key"), "--add-root", P("root3.key"),
                      "--out", P("v2.json")), 0, "%s", err);
    free(out), free(err);
    cr_assert_eq(TRIB(&out, &err, "fed", "update", "--charter", P("v2.json"), "--root",
                      P("root2.key"), "--root", P("root3.key"), "--remove-root", r1,
                      "--out", P("v3.json")), 0, "%s", err);
    free(out), free(err);
    /* root1 is gone from v3: it cannot sign v4, even with root2. */
    cr_expect_eq(TRIB(&out, &err, "fed", "update", "--charter", P("v3.json"), "--root",
                      P("root1.key"), "--root", P("root2.key"), "--threshold", "1",
                      "--out", P("v4.json")), 1);
    cr_expect(strstr(err, "is a root of neither charter version 3 nor the new one") != NULL, "%s", err);
    free(out), free(err);
    cr_expect_neq(access(P("v4.json"), F_OK), 0);

    charter_t v1, v2, v3, x;
    cr_assert_eq(charter_load(P("charter.json"), &v1, e, sizeof e), TRUST_OK, "%s", e);
    cr_assert_eq(charter_load(P("v2.json"), &v2, e, sizeof e), TRUST_OK, "%s", e);
    cr_assert_eq(charter_load(P("v3.json"), &v3, e, sizeof e), TRUST_OK, "%s", e);
    cr_expect_eq(v3.version, 3);
    cr_expect_eq(charter_verify(&v1, v2.bytes, v2.len, &x, e, sizeof e), TRUST_OK, "%s", e);
    charter_free(&x);
    cr_expect_eq(charter_verify(&v2, v3.bytes, v3.len, &x, e, sizeof e), TRUST_OK, "%s", e);
    charter_free(&x);
    cr_expect_eq(charter_verify(&v3, v1.bytes, v1.len, &x, e, sizeof e), TRUST_STALE_VERSION);
    cr_expect_eq(charter_verify(&v1, v3.bytes, v3.len, &x, e, sizeof e), TRUST_VERSION_GAP);
    cr_assert_eq(TRIB(&out, &err, "fed", "show", P("v3.json"), "--charter", P("v2.json")), 0, "%s", err);
    free(out), free(err);
    cr_expect_eq(TRIB(&out, &err, "fed", "show", P("charter.json"), "--charter", P("v3.json")), 1);
    cr_expect(strstr(out, "no (stale_version)") != NULL, "%s", out);
    free(out), free(err);
    charter_free(&v1), charter_free(&v2), charter_free(&v3);
}
