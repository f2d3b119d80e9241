/* tests/test_policy_durable.c - what a node enforces of signed policy sets is what it stored, in
 * process: a node (node_open), its policy (policy_node_start, chartered) and a federation log over
 * its store with the agent's policy hook, commits on the caller. The disk fails on demand: this
 * binary's fdatasync (LMDB's commit, through the PLT) and fsync (the policy files, gossip/durable.c)
 * return EIO while lmdb_fails / files_fail is set. Criterion runs each test in a process of its own.
 *
 * Owns: a temp dir under /tmp (removed). */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gossip/charter.h"
#include "gossip/fedlog.h"
#include "node/node.h"
#include "node/policy_node.h"
#include "node/policy_store.h"
#include "tests/fixtures.h"
#include "tests/harness.h"

static atomic_int lmdb_fails, files_fail;

int fdatasync(int fd)
{
    if (atomic_load(&lmdb_fails)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    if (atomic_load(&files_fail)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

static char dir[64], err[600];
static node_t node;
static fedlog_t *flog;
static identity_t R1, R2, G1, G2;
static charter_t ch;

static void open_node(void)
{
    memset(&node, 0, sizeof node);
    config_defaults(&node.cfg);
    snprintf(node.cfg.data, sizeof node.cfg.data, "%s", dir);
    snprintf(node.cfg.domain, sizeof node.cfg.domain, "payments");
    node.limits = records_default_limits;
    cr_assert_eq(node_open(&node, err, sizeof err), 0, "node_open: %s", err);
    cr_assert_eq(policy_node_start(&node, &ch, "", err, sizeof err), 0, "policy_node_start: %s", err);
    flog = fedlog_new(node.st, NULL, err, sizeof err);
    cr_assert_not_null(flog, "%s", err);
    /* the hook, as the agent wires it (policy_node_attach); operators' sets given to policy_node_submit
     * go to the log only where a test attaches it too */
    fedlog_set_policy_offer(flog, policy_node_fedlog, &node);
}

static void close_node(void)
{
    fedlog_destroy(&flog);
    policy_node_stop(&node);
    node_close(&node);
}

/* A restart of the node: what it enforces now comes from what it kept. */
static void restart(void)
{
    close_node();
    open_node();
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2), fx_identity(&G1), fx_identity(&G2);
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    const identity_t *roots[] = { &R1, &R2 };
    for (int i = 0; i < 2; i++) {
        memcpy(ch.keys[ch.nkeys].key, roots[i]->pk, ID_PK_LEN);
        ch.keys[ch.nkeys++].role = CHARTER_ROLE_ROOT;
    }
    const identity_t *gov[] = { &G1, &G2 };   /* either signs alone: gov_threshold 1 */
    for (int i = 0; i < 2; i++) {
        memcpy(ch.keys[ch.nkeys].key, gov[i]->pk, ID_PK_LEN);
        ch.keys[ch.nkeys++].role = CHARTER_ROLE_GOVERNANCE;
    }
    ch.threshold = 2;
    ch.gov_threshold = 1;
    ch.issued_ms = fx_now_ms();
    cr_assert_eq(charter_sign(NULL, &ch, roots, 2, err, sizeof err), 0, "%s", err);
    strcpy(dir, "/tmp/trib-poldur-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    open_node();
}

static void teardown(void)
{
    atomic_store(&lmdb_fails, 0);
    atomic_store(&files_fail, 0);
    close_node();
    charter_free(&ch);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(policy_durable, .init = setup, .fini = teardown, .timeout = 60);

/* Set version v signed by the governance key: malloc'd envelope bytes. */
static uint8_t *set_v(int v, size_t *len)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "version: %d\nrules:\n  - {id: own, severity: error, type: required, paths: "
             "[owners.business]}\ntests:\n  - manifest: {name: a}\n    expect: {fail: [own]}\n", v);
    const identity_t *keys[] = { &G1 };
    uint8_t *env = NULL;
    cr_assert_eq(policy_sign(yaml, strlen(yaml), &ch, keys, 1, fx_now_ms(), &env, len, err, sizeof err), 0, "%s",
                 err);
    return env;
}

static long version_in_force(void)
{
    json_t *j = policy_node_show(&node);
    long v = (long)json_integer_value(json_object_get(j, "version"));
    json_decref(j);
    return v;
}

static const char *path_of(const char *name)
{
    static char p[2][200];
    static int k;
    char *b = p[k++ % 2];
    snprintf(b, 200, "%s/%s", dir, name);
    return b;
}

static const char *history_file(int v)
{
    char name[64];
    snprintf(name, sizeof name, "policy.v%020d.signed", v);
    return path_of(name);
}

/* 1 when path holds exactly bytes. */
static int file_holds(const char *path, const uint8_t *bytes, size_t len)
{
    size_t got = 0;
    char *b = h_read_file(path, &got);
    int same = b && got == len && memcmp(b, bytes, len) == 0;
    free(b);
    return same;
}

/* An operator's set whose commit fails is refused (storage), and neither in force nor on file: a
 * restart finds the previous set in force. Once the disk works again the same set is stored, in
 * force and on file, and stays so across a restart. Before, it was put in force and its files
 * written before the commit: in force although refused, and still after a restart. */
Test(policy_durable, an_operators_set_whose_commit_fails_is_not_in_force)
{
    size_t l1, l2;
    uint8_t *v1 = set_v(1, &l1), *v2 = set_v(2, &l2);
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, v1, l1, NULL, &r), 0, "%s", r.err);
    cr_assert_eq(version_in_force(), 1);
    cr_assert(file_holds(path_of("policy.signed"), v1, l1), "version 1 is not on file once stored");

    atomic_store(&lmdb_fails, 1);
    cr_assert_eq(fedlog_offer(flog, v2, l2, NULL, &r), -1, "a set whose commit failed was accepted");
    cr_expect_eq(r.reason, FEDLOG_R_STORAGE, "%s: %s", fedlog_reason_name(r.reason), r.err);
    cr_expect_eq(version_in_force(), 1, "a set whose commit failed is in force");
    cr_expect(file_holds(path_of("policy.signed"), v1, l1), "policy.signed no longer holds the set in force");
    cr_expect_neq(access(history_file(2), F_OK), 0, "a file of the refused set was left behind");
    atomic_store(&lmdb_fails, 0);

    restart();
    cr_expect_eq(version_in_force(), 1, "after a restart");

    cr_assert_eq(fedlog_offer(flog, v2, l2, NULL, &r), 0, "the disk works again: %s", r.err);
    cr_expect_eq(version_in_force(), 2);
    cr_expect(file_holds(path_of("policy.signed"), v2, l2));
    cr_expect(file_holds(history_file(2), v2, l2));
    restart();
    cr_expect_eq(version_in_force(), 2, "after a restart");
    free(v1), free(v2);
}

/* A peer's set is in force before its commit, as a peer's other objects are; when the commit
 * fails it stays in force until restart, with nothing on file, so the restart finds the set the
 * log holds; offered again (anti-entropy), it is stored, in force and on file. Before, its files
 * were written before the commit: in force after the restart though the log never held it. */
Test(policy_durable, a_peers_set_whose_commit_fails_is_in_force_only_until_restart)
{
    size_t l1, l2;
    uint8_t *v1 = set_v(1, &l1), *v2 = set_v(2, &l2);
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, v1, l1, "peer n1", &r), 0, "%s", r.err);
    cr_assert_eq(version_in_force(), 1);

    atomic_store(&lmdb_fails, 1);
    fedlog_offer(flog, v2, l2, "peer n1", &r);
    cr_expect_eq(version_in_force(), 2, "a peer's set is in force while its commit is tried");
    cr_expect(file_holds(path_of("policy.signed"), v1, l1), "policy.signed holds a set the log did not store");
    cr_expect_neq(access(history_file(2), F_OK), 0, "a file of the set whose commit failed");
    atomic_store(&lmdb_fails, 0);

    restart();
    cr_expect_eq(version_in_force(), 1, "after a restart: the set the log holds");
    cr_assert_eq(fedlog_offer(flog, v2, l2, "peer n1", &r), 0, "offered again: %s", r.err);
    cr_expect(fedlog_has(flog, r.hash), "the set offered again is not stored");
    cr_expect_eq(version_in_force(), 2);
    cr_expect(file_holds(path_of("policy.signed"), v2, l2));
    free(v1), free(v2);
}

/* A set whose commit succeeded but whose file could not be written is in force (the log holds
 * it) and taken from the log at the next start, its file written then. Before, the file was
 * written first: the set was refused, and neither stored nor in force. */
Test(policy_durable, a_stored_set_whose_file_failed_is_taken_from_the_log_at_start)
{
    size_t l1, l2;
    uint8_t *v1 = set_v(1, &l1), *v2 = set_v(2, &l2);
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, v1, l1, NULL, &r), 0, "%s", r.err);
    atomic_store(&files_fail, 1);
    cr_assert_eq(fedlog_offer(flog, v2, l2, NULL, &r), 0, "stored in the log: %s", r.err);
    cr_expect_eq(version_in_force(), 2);
    cr_expect(file_holds(path_of("policy.signed"), v1, l1), "the file was written although fsync failed");
    atomic_store(&files_fail, 0);

    restart();
    cr_expect_eq(version_in_force(), 2, "after a restart: the set the log holds");
    cr_expect(file_holds(path_of("policy.signed"), v2, l2), "its file is written at the start");
    json_t *j = policy_node_show(&node);
    cr_expect_str_eq(json_string_value(json_object_get(j, "source")), "signed");
    json_decref(j);
    free(v1), free(v2);
}

/* POST /v1/policy's body for a signed set: its file form. */
static char *file_form(const uint8_t *bytes, size_t len)
{
    policy_signed_t s;
    cr_assert_eq(policy_verify(bytes, len, &ch, &s, err, sizeof err), 0, "%s", err);
    json_t *j = policy_signed_json(&s, bytes, len);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    policy_signed_free(&s);
    return text;
}

static int submit(const char *body, json_t **reply)
{
    unsigned retry_s;
    return policy_node_submit(&node, body, strlen(body), reply, &retry_s);
}

/* A chartered node's signed set goes through its federation log, stored before it is in force
 * (the agent attaches the log before HTTP serves). Given before a log is attached it is 503 busy
 * with a Retry-After and not in force; it was put in force from its files alone, a path only
 * in-process tests took. */
Test(policy_durable, a_signed_set_before_the_federation_log_is_attached_is_503_busy_and_not_in_force)
{
    size_t l1;
    uint8_t *v1 = set_v(1, &l1);
    char *f1 = file_form(v1, l1);
    json_t *reply = NULL;
    unsigned retry_s = 0;
    cr_expect_eq(policy_node_submit(&node, f1, strlen(f1), &reply, &retry_s), 503);
    cr_expect_str_eq(json_string_value(json_object_get(reply, "error")) ?: "", "busy");
    cr_expect_gt(retry_s, 0, "no Retry-After");
    json_decref(reply);
    cr_expect_eq(version_in_force(), 0, "a set no federation log stored is in force");
    free(f1), free(v1);
}

/* Where a set's file is all that keeps it (open mode's YAML), a file that cannot be written is a
 * 500 storage and the set is not in force; before, a 400 bad_policy, as if the set were malformed. */
Test(policy_durable, an_open_mode_set_whose_file_cannot_be_written_is_a_storage_error_and_not_in_force)
{
    json_t *reply = NULL;
    policy_node_stop(&node);   /* open mode: the operator's YAML */
    cr_assert_eq(policy_node_start(&node, NULL, "", err, sizeof err), 0, "%s", err);
    const char *yaml = "version: 7\nrules:\n  - {id: own, severity: error, type: required, paths: [owners.business]}\n";
    atomic_store(&files_fail, 1);
    cr_expect_eq(submit(yaml, &reply), 500);
    cr_expect_str_eq(json_string_value(json_object_get(reply, "error")) ?: "", "storage");
    json_decref(reply);
    cr_expect_neq(version_in_force(), 7, "an open mode set whose file failed is in force");
    atomic_store(&files_fail, 0);
    cr_expect_eq(submit(yaml, &reply), 200);
    json_decref(reply);
    cr_expect_eq(version_in_force(), 7);
}

/* A gossip loop that never turns (busy): operators' offers wait for it in vain. */
static void busy_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    (void)ctx, (void)addr, (void)type, (void)body, (void)len;
}
static size_t busy_peers(void *ctx, const char **addrs, size_t max)
{
    (void)ctx, (void)addrs, (void)max;
    return 0;
}
static void busy_wake(void *ctx) { (void)ctx; }

/* An operator's set the federation log's loop does not take in time (fedlog_offer: FEDLOG_R_BUSY,
 * after its 10 s wait) is 503 busy with a Retry-After, its detail saying why and which version is
 * in force; the set is not in force then, and is taken once the loop runs what was queued. Before,
 * it was 400 bad_policy, as if the set were malformed. The loop here is one that never turns. */
Test(policy_durable, a_set_the_busy_loop_does_not_take_in_time_is_503_busy_with_retry_after)
{
    size_t l1, l2;
    uint8_t *v1 = set_v(1, &l1), *v2 = set_v(2, &l2);
    char *f2 = file_form(v2, l2);
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, v1, l1, NULL, &r), 0, "%s", r.err);
    fedlog_io_t io = { .send = busy_send, .peers = busy_peers, .wake = busy_wake, .own_thread = 1 };
    fedlog_attach(flog, &io);
    policy_node_attach(&node, flog);   /* as the agent wires it: operators' sets go to the log */
    json_t *reply = NULL;
    unsigned retry_s = 0;
    int st = policy_node_submit(&node, f2, strlen(f2), &reply, &retry_s);
    const char *kind = json_string_value(json_object_get(reply, "error")) ?: "";
    const char *detail = json_string_value(json_object_get(reply, "detail")) ?: "";
    cr_expect_eq(st, 503, "%d %s: %s", st, kind, detail);
    cr_expect_str_eq(kind, "busy");
    cr_expect_gt(retry_s, 0, "no Retry-After");
    cr_expect(strstr(detail, "busy") && strstr(detail, "version 1 is in force"), "%s", detail);
    json_decref(reply);
    cr_expect_eq(version_in_force(), 1, "a set the loop did not take is in force");
    fedlog_attach(flog, NULL);   /* the loop stops: what it did not take is done now */
    cr_expect_eq(version_in_force(), 2, "the queued set was not taken once the loop ran it");
    cr_expect(file_holds(path_of("policy.signed"), v2, l2));
    free(f2), free(v1), free(v2);
}

/* Set version v with rule id rule: two of one version with different rules are a conflicting pair. */
static uint8_t *set_rule(int v, const char *rule, size_t *len)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "version: %d\nrules:\n  - {id: %s, severity: error, type: required, paths: "
             "[owners.business]}\ntests:\n  - manifest: {name: a}\n    expect: {fail: [%s]}\n", v, rule, rule);
    const identity_t *keys[] = { &G1 };
    uint8_t *env = NULL;
    cr_assert_eq(policy_sign(yaml, strlen(yaml), &ch, keys, 1, fx_now_ms(), &env, len, err, sizeof err), 0, "%s",
                 err);
    return env;
}

/* trib_policy_sets_total{result="conflict"} as /metrics shows it. */
static long conflicts_metric(void)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    cr_assert_not_null(f);
    policy_node_metrics(&node, f);
    fclose(f);
    const char *k = "trib_policy_sets_total{result=\"conflict\"} ";
    const char *at = strstr(text, k);
    long v = at ? strtol(at + strlen(k), NULL, 10) : -1;
    free(text);
    return v;
}

static void body_hash(const uint8_t *bytes, size_t len, uint8_t out[32])
{
    policy_signed_t ps;
    cr_assert_eq(policy_verify(bytes, len, &ch, &ps, err, sizeof err), 0, "%s", err);
    memcpy(out, ps.info.hash, 32);
    policy_signed_free(&ps);
}

/* Two sets of one version from peers meet once: counted once. The loser arriving second is taken
 * when verified and again once stored; before, both counted (2). The federation log holds both (as
 * on every node), and each start replays them; that replay is what was stored, not a new meeting,
 * so after a restart the counter reads 0 until a set meets another again. Before, it read 1 after
 * every restart. */
Test(policy_durable, a_restart_replaying_a_stored_conflicting_pair_counts_no_conflict)
{
    size_t lx, ly;
    uint8_t *x = set_rule(3, "own_x", &lx), *y = set_rule(3, "own_y", &ly), hx[32], hy[32];
    body_hash(x, lx, hx);
    body_hash(y, ly, hy);
    int x_wins = memcmp(hx, hy, 32) > 0;
    uint8_t *win = x_wins ? x : y, *lose = x_wins ? y : x;
    size_t lwin = x_wins ? lx : ly, llose = x_wins ? ly : lx;
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, win, lwin, "peer n1", &r), 0, "%s", r.err);
    cr_assert_eq(fedlog_offer(flog, lose, llose, "peer n2", &r), 0, "the log holds the other set too: %s", r.err);
    cr_expect_eq(conflicts_metric(), 1, "the meeting is counted once");
    restart();
    cr_expect_eq(version_in_force(), 3);
    cr_expect_eq(conflicts_metric(), 0, "a restart counted the stored pair again");
    restart();
    cr_expect_eq(conflicts_metric(), 0, "a second restart");
    free(x), free(y);
}

/* Older code wrote policy.signed and the history file of an operator's set before its commit, which
 * could then fail: at the next start the file named a set the federation log does not hold, and
 * it was put in force. Now such a file is renamed aside (NAME.unstored, for the operator to look
 * at; never loaded) and the log's sets are in force, their files written again. */
Test(policy_durable, a_file_naming_a_set_the_log_does_not_hold_is_set_aside_at_start)
{
    size_t l1, l2;
    uint8_t *v1 = set_v(1, &l1), *v2 = set_v(2, &l2);
    fedlog_result_t r;
    cr_assert_eq(fedlog_offer(flog, v1, l1, NULL, &r), 0, "%s", r.err);
    close_node();
    /* what older code left: version 2's files, its commit failed */
    cr_assert_eq(h_write_file(path_of("policy.signed"), (const char *)v2, l2), 0);
    cr_assert_eq(h_write_file(history_file(2), (const char *)v2, l2), 0);
    open_node();
    cr_expect_eq(version_in_force(), 1, "a set the log does not hold is in force");
    cr_expect(file_holds(path_of("policy.signed"), v1, l1), "policy.signed does not hold the log's set");
    cr_expect(file_holds(path_of("policy.signed.unstored"), v2, l2), "the file was not renamed aside");
    char aside[256];
    snprintf(aside, sizeof aside, "%s.unstored", history_file(2));
    cr_expect(file_holds(aside, v2, l2), "the history file was not renamed aside");
    cr_expect_neq(access(history_file(2), F_OK), 0, "the history file of the unstored set is still loaded");
    restart();
    cr_expect_eq(version_in_force(), 1, "after another restart");

    /* such a file that cannot be renamed (its .unstored name is a directory here) fails the start,
     * saying which and what to do: it must not be put in force */
    close_node();
    cr_assert_eq(h_write_file(path_of("policy.signed"), (const char *)v2, l2), 0);
    cr_assert_eq(unlink(path_of("policy.signed.unstored")), 0);
    cr_assert_eq(mkdir(path_of("policy.signed.unstored"), 0700), 0);
    cr_assert_eq(h_write_file(path_of("policy.signed.unstored/x"), "x", 1), 0);
    memset(&node, 0, sizeof node);
    config_defaults(&node.cfg);
    snprintf(node.cfg.data, sizeof node.cfg.data, "%s", dir);
    snprintf(node.cfg.domain, sizeof node.cfg.domain, "payments");
    node.limits = records_default_limits;
    cr_assert_eq(node_open(&node, err, sizeof err), 0, "node_open: %s", err);
    cr_expect_eq(policy_node_start(&node, &ch, "", err, sizeof err), -1, "started with a set the log does not hold");
    cr_expect(strstr(err, "policy.signed") && strstr(err, "cannot be renamed") && strstr(err, "move it away"), "%s",
              err);
    free(v1), free(v2);
}

/* trib_policy_sets_total{result} as /metrics shows it. */
static long sets_metric(const char *result)
{
    char *text = NULL, key[80];
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    cr_assert_not_null(f);
    policy_node_metrics(&node, f);
    fclose(f);
    snprintf(key, sizeof key, "trib_policy_sets_total{result=\"%s\"} ", result);
    const char *at = strstr(text, key);
    long v = at ? strtol(at + strlen(key), NULL, 10) : -1;
    free(text);
    return v;
}

/* POST /v1/policy's body for envelope bytes as they are (verified by the node only). */
static char *file_form_raw(const uint8_t *bytes, size_t len)
{
    char *b64 = trust_b64(bytes, len), *text = NULL;
    cr_assert_not_null(b64);
    cr_assert_geq(asprintf(&text, "{\"kind\": \"trib.policy\", \"signed\": \"%s\"}", b64), 0);
    free(b64);
    return text;
}

/* The set in force sent again, as it is or with another valid set of signatures (the same body:
 * federation, version, signing time, YAML; signed by G2 instead of G1, or by both), is the same set
 * (docs/governance.md): POST /v1/policy answers 200 with the set in force, as a deployment run
 * twice expects, and nothing changes (version, hash, signers held, files, counters); the federation
 * log holds it already. Its signatures are still checked: a tampered copy is 403. Before, every
 * resend was 409 policy_stale, "not newer than version 1 in force", counted as refused. A set of
 * the same version with another body still meets the tie-break (409 policy_conflict or in force). */
Test(policy_durable, the_set_in_force_sent_again_with_other_valid_signatures_is_200_and_changes_nothing)
{
    const char *yaml = "version: 1\nrules:\n  - {id: own, severity: error, type: required, paths: "
                       "[owners.business]}\ntests:\n  - manifest: {name: a}\n    expect: {fail: [own]}\n";
    int64_t at = fx_now_ms();
    const identity_t *k1[] = { &G1 }, *k2[] = { &G2 }, *k12[] = { &G2, &G1 };
    uint8_t *a = NULL, *b = NULL, *c = NULL;
    size_t la, lb, lc;
    cr_assert_eq(policy_sign(yaml, strlen(yaml), &ch, k1, 1, at, &a, &la, err, sizeof err), 0, "%s", err);
    cr_assert_eq(policy_sign(yaml, strlen(yaml), &ch, k2, 1, at, &b, &lb, err, sizeof err), 0, "%s", err);
    cr_assert_eq(policy_sign(yaml, strlen(yaml), &ch, k12, 2, at, &c, &lc, err, sizeof err), 0, "%s", err);
    cr_assert(la != lb || memcmp(a, b, la) != 0, "the two signings gave the same bytes");
    policy_node_attach(&node, flog);   /* as the agent wires it: operators' sets go to the log */
    char *fa = file_form(a, la), *fb = file_form(b, lb), *fc = file_form(c, lc);
    json_t *reply = NULL;
    cr_assert_eq(submit(fa, &reply), 200, "the first submission: %s", json_dumps(reply, 0));
    json_decref(reply);
    json_t *first = policy_node_show(&node);
    long accepted = sets_metric("accepted"), refused = sets_metric("refused");

    const char *forms[] = { fa, fb, fc }, *what[] = { "as it is", "signed by G2", "signed by G2 and G1" };
    for (int i = 0; i < 3; i++) {
        reply = NULL;
        int st = submit(forms[i], &reply);
        const char *code = json_string_value(json_object_get(reply, "error")) ?: "";
        cr_expect_eq(st, 200, "the set in force sent again %s: %d %s: %s", what[i], st, code,
                     json_string_value(json_object_get(reply, "detail")) ?: "");
        cr_expect_eq(json_integer_value(json_object_get(reply, "version")), 1, "%s: the answer", what[i]);
        json_decref(reply);
        json_t *now = policy_node_show(&node);
        cr_expect(json_equal(now, first), "%s: the set in force changed", what[i]);
        json_decref(now);
    }
    cr_expect_eq(sets_metric("accepted"), accepted, "a resend counted as accepted");
    cr_expect_eq(sets_metric("refused"), refused, "a resend counted as refused");
    cr_expect(file_holds(path_of("policy.signed"), a, la), "policy.signed no longer holds the set first taken");
    /* the federation log (POST /v1/federation/objects) takes it as held: nothing new stored */
    fedlog_result_t r;
    cr_expect_eq(fedlog_offer(flog, b, lb, NULL, &r), 0, "the log: %s: %s", fedlog_reason_name(r.reason), r.err);
    cr_expect_eq(r.added, 0, "the same body under other signatures stored again");

    /* still checked: a tampered copy (a signature byte flipped) is refused */
    c[lc - 1] ^= 1;
    char *ft = file_form_raw(c, lc);
    reply = NULL;
    cr_expect_eq(submit(ft, &reply), 403, "a tampered copy of the set in force");
    cr_expect_str_eq(json_string_value(json_object_get(reply, "error")) ?: "", "policy_unsigned");
    json_decref(reply);
    json_decref(first);
    free(ft), free(fa), free(fb), free(fc), free(a), free(b), free(c);
}
