/* tests/test_disk.c - a node whose disk fills up, as a real process: its data dir is on a 2 MiB
 * tmpfs mounted for the test (skipped, saying why, where mounting is not permitted).
 *
 * Owns: the full-disk contract: a write that does not fit is a 507 whose detail says "no space
 * left on device", names the data dir and what was being written; it is logged (once, then
 * rate-limited); nothing stored is lost or corrupted; reads go on; and once space is freed,
 * writes succeed again without a restart and a restart finds every record. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "tests/harness.h"

#define PRODUCT   "payments/settled-transactions"
#define BATCH     400   /* records per POST, about 120 KiB */
#define MAX_POSTS 200   /* 2 MiB fills long before this */

static char mnt[64];

static void unmount(void)
{
    h_cleanup_all();
    if (mnt[0]) {
        umount2(mnt, MNT_DETACH);
        rmdir(mnt);
        mnt[0] = '\0';
    }
}

TestSuite(disk, .fini = unmount, .timeout = 120);

/* Records k0 .. k0+n-1, one per line, each about 300 bytes. */
static char *batch(long k0, int n, size_t *len)
{
    size_t cap = (size_t)n * 400, at = 0;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(b + at, cap - at,
                               "{\"txn_id\":\"t%08ld-%0240d\",\"amount_minor\":%ld,\"currency\":\"EUR\","
                               "\"settled_at\":\"2026-11-24T10:15:00Z\"}\n",
                               k0 + i, 0, k0 + i);
    *len = at;
    return b;
}

static long post(h_node_t *n, long k0, int count, char **detail)
{
    size_t len;
    char *body = batch(k0, count, &len), url[256];
    snprintf(url, sizeof url, "%s/v1/products/" PRODUCT "/records", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("POST", url, "application/x-ndjson", body, len, &r), 0, "POST failed");
    free(body);
    if (detail) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "detail"));
        const char *e = json_string_value(json_object_get(j, "error"));
        size_t need = strlen(e ? e : "") + strlen(d ? d : "") + 3;
        *detail = malloc(need);
        snprintf(*detail, need, "%s: %s", e ? e : "", d ? d : "");
        json_decref(j);
    }
    long st = r.status;
    h_resp_free(&r);
    return st;
}

/* Reads every record and checks record k is exactly the k-th one sent. Returns how many. */
static long check_records(h_node_t *n, long want)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/" PRODUCT "/records?from=1", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "read after the disk filled: %ld %s", r.status, r.body);
    long k = 0;
    for (char *line = r.body; line && *line; k++) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "record %ld is cut", k + 1);
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert_not_null(j, "record %ld is not JSON", k + 1);
        cr_assert_eq(json_integer_value(json_object_get(j, "amount_minor")), k,
                     "record %ld holds the wrong data", k + 1);
        json_decref(j);
        line = nl + 1;
    }
    h_resp_free(&r);
    cr_assert_eq(k, want, "%ld records read, %ld were acknowledged", k, want);
    return k;
}

static int count_in_file(const char *path, const char *needle)
{
    char *log = h_read_file(path, NULL);
    int c = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p++)
        c++;
    free(log);
    return c;
}

Test(disk, full_disk_is_507_no_space_logged_and_reads_go_on)
{
    snprintf(mnt, sizeof mnt, "/tmp/trib-full-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0) {
        int e = errno;
        rmdir(mnt);
        mnt[0] = '\0';
        cr_skip_test("cannot mount a 2 MiB tmpfs to fill (%s): run as root to test a full disk",
                     strerror(e));
    }
    char data[128];
    snprintf(data, sizeof data, "%s/data", mnt);
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", "--data", data, "--map-size-mb", "1", NULL), 0);
    char *out = NULL;
    char manifest[512];
    cr_assert_eq(h_trib(&n, NULL, &out, NULL, "publish",
                        h_repo_path("examples/settled-transactions.yaml", manifest, sizeof manifest),
                        NULL), 0);
    free(out);

    /* Fill the disk: every acknowledged batch must be readable afterwards. */
    long stored = 0, status = 0;
    char *detail = NULL;
    for (int i = 0; i < MAX_POSTS; i++) {
        status = post(&n, stored, BATCH, &detail);
        if (status != 201)
            break;
        free(detail);
        detail = NULL;
        stored += BATCH;
    }
    cr_assert_eq(status, 507, "the disk never filled, or a full disk is not a 507: %ld %s", status,
                 detail ? detail : "");
    cr_assert_gt(stored, 0, "not one batch fitted: the test proves nothing");
    char want[256];
    snprintf(want, sizeof want, "storage: appending %d records to " PRODUCT ": no space left on "
             "device: %s", BATCH, data);
    cr_assert(strstr(detail, want) && strstr(detail, "nothing of this write was stored"),
              "detail: %s", detail);
    free(detail);

    /* More failing writes in quick succession are not logged one line each. */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(post(&n, stored, BATCH, NULL), 507);
    int lines = count_in_file(n.log, "no space left on device");
    cr_assert(lines >= 1 && lines <= 2, "%d log lines for 5 failed writes (want 1, rate-limited)",
              lines);

    /* Reads go on, every acknowledged record intact; a small write may still fit in freed pages,
     * which is fine, but nothing half-written shows up. */
    check_records(&n, stored);
    h_resp_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/" PRODUCT, n.url);
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200);
    h_resp_free(&r);

    /* Space freed: the same node takes writes again, and a restart finds everything. */
    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=8m"), 0, "remount: %s",
                 strerror(errno));
    cr_assert_eq(post(&n, stored, BATCH, NULL), 201, "still failing after space was freed");
    stored += BATCH;
    cr_assert_eq(h_node_stop(&n, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&n), 0);
    check_records(&n, stored);
    h_node_stop(&n, SIGTERM);
}
