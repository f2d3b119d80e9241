/* tests/test_http_busy.c - a write request finding every write worker busy and their queue full
 * (node/http.c, node/workpool.c), against a real `trib agent`: it is answered at once with 503,
 * Retry-After and a JSON error body, counted in /metrics, and nothing of it is stored; the
 * writes that were accepted complete once the workers are free, and the node writes again.
 *
 * The workers are held by holding LMDB's write lock from this process (the lock lives in the
 * data dir's lock.mdb and is shared between processes): a publish a worker took waits for it in
 * its write transaction for as long as the test holds it. No test hook in the node, no sleep. */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "tests/harness.h"

#define WORKERS 1                   /* --write-workers */
#define ACCEPTED_MAX (WORKERS * 17)  /* one running per worker, 16 per worker queued (node/http.c) */
#define WRITES (ACCEPTED_MAX + 8)   /* at once: at least 8 find no room */

typedef struct {
    const h_node_t *n;
    int i;
    h_resp_t r;
    int rc;
    atomic_int done;    /* r and rc are set */
} write_t;

static atomic_int answered;

static void *put_one(void *arg)
{
    write_t *w = arg;
    char url[256], m[512];
    snprintf(url, sizeof url, "%s/v1/products/payments/busy-%d", w->n->url, w->i);
    snprintf(m, sizeof m,
             "{\"name\":\"busy-%d\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
             "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
             "\"schema\":[{\"name\":\"id\",\"logicalType\":\"string\",\"required\":true}]}",
             w->i);
    w->rc = h_http("PUT", url, "application/json", m, strlen(m), &w->r);
    atomic_store(&w->done, 1);
    atomic_fetch_add(&answered, 1);
    return NULL;
}

static int at_least(void *ctx) { return atomic_load(&answered) >= *(int *)ctx; }

/* LMDB's write lock on n's store, held until writer_release: the node's writes wait for it. */
static MDB_txn *writer_take(MDB_env **env, const h_node_t *n)
{
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_env_create(env), 0);
    int rc = mdb_env_open(*env, n->dir, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open(%s): %s", n->dir, mdb_strerror(rc));
    rc = mdb_txn_begin(*env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {   /* the node grew the map since we opened it */
        mdb_env_set_mapsize(*env, 0);
        rc = mdb_txn_begin(*env, NULL, 0, &txn);
    }
    cr_assert_eq(rc, 0, "mdb_txn_begin: %s", mdb_strerror(rc));
    return txn;
}

static void writer_release(MDB_env **env, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    mdb_env_close(*env);
    *env = NULL;
}

static long put_status(const h_node_t *n, const char *name)
{
    char url[256], m[512];
    snprintf(url, sizeof url, "%s/v1/products/payments/%s", n->url, name);
    snprintf(m, sizeof m,
             "{\"name\":\"%s\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
             "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
             "\"schema\":[{\"name\":\"id\",\"logicalType\":\"string\",\"required\":true}]}",
             name);
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/json", m, strlen(m), &r), 0);
    long st = r.status;
    h_resp_free(&r);
    return st;
}

Test(http_busy, writes_beyond_the_workers_and_queue_get_503_and_the_node_writes_again, .fini = h_cleanup_all,
     .timeout = 120)
{
    h_node_t n;
    char workers[8];
    snprintf(workers, sizeof workers, "%d", WORKERS);
    cr_assert_eq(h_node_start(&n, "payments", "--write-workers", workers, NULL), 0);
    cr_assert_eq(put_status(&n, "before"), 201, "a write before the pool is held");

    MDB_env *env;
    MDB_txn *held = writer_take(&env, &n);
    static write_t w[WRITES];
    pthread_t th[WRITES];
    atomic_store(&answered, 0);
    for (int i = 0; i < WRITES; i++) {
        w[i].n = &n;
        w[i].i = i;
        atomic_store(&w[i].done, 0);
        cr_assert_eq(pthread_create(&th[i], NULL, put_one, &w[i]), 0);
    }
    /* At most ACCEPTED_MAX can be taken; the others are answered while the workers stay held,
     * so every answer that came by now is a refusal. */
    int refused_min = WRITES - ACCEPTED_MAX;
    int came = h_wait(at_least, &refused_min, 30000);
    int early = atomic_load(&answered);
    for (int i = 0; i < WRITES && came; i++)
        if (atomic_load(&w[i].done))
            cr_assert_eq(w[i].r.status, 503, "busy-%d answered %ld while every worker was held: %s", i,
                         w[i].r.status, w[i].r.body);
    writer_release(&env, held);
    cr_assert(came, "only %d of %d writes answered within 30 s while the workers were held", early, WRITES);

    int all = WRITES;
    cr_assert(h_wait(at_least, &all, 60000), "only %d of %d writes answered after the workers were freed",
              atomic_load(&answered), WRITES);
    int busy = 0, stored = 0;
    for (int i = 0; i < WRITES; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].rc, 0, "busy-%d: no HTTP answer", i);
        char path[64];
        snprintf(path, sizeof path, "/v1/products/payments/busy-%d", i);
        long st = 0;
        json_t *p = h_get_json(n.url, path, &st);
        json_decref(p);
        if (w[i].r.status == 503) {
            busy++;
            cr_assert_str_eq(w[i].r.retry_after, "1", "busy-%d: Retry-After '%s'", i, w[i].r.retry_after);
            json_error_t je;
            json_t *j = json_loads(w[i].r.body, 0, &je);
            cr_assert_not_null(j, "busy-%d: the 503 body is not JSON: %s", i, w[i].r.body);
            cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "busy");
            const char *detail = json_string_value(json_object_get(j, "detail"));
            cr_assert(detail && strstr(detail, "retry"), "busy-%d: detail %s", i, w[i].r.body);
            json_decref(j);
            cr_assert_eq(st, 404, "busy-%d was refused yet is stored (%ld)", i, st);
        } else {
            stored++;
            cr_assert_eq(w[i].r.status, 201, "busy-%d: %ld %s", i, w[i].r.status, w[i].r.body);
            cr_assert_eq(st, 200, "busy-%d was accepted yet is not stored (%ld)", i, st);
        }
        h_resp_free(&w[i].r);
    }
    cr_log_info("%d writes at once to %d worker(s): %d refused busy, %d stored", WRITES, WORKERS, busy, stored);
    cr_assert_geq(busy, refused_min, "%d refused, at least %d expected", busy, refused_min);
    cr_assert(stored >= 1 && stored <= ACCEPTED_MAX, "%d accepted of %d (at most %d fit)", stored, WRITES,
              ACCEPTED_MAX);
    cr_assert_eq(h_metric(n.url, "trib_http_busy_total"), (double)busy);
    cr_assert_eq(h_metric(n.url, "trib_http_requests_total{route=\"product_put\",status=\"503\"}"), (double)busy);
    cr_assert_eq(put_status(&n, "after-busy"), 201, "the node writes again once its workers are free");
}
