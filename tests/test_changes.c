/* tests/test_changes.c - the change feed's policy_changed and grant_changed events on real `trib
 * agent` processes (issue 12 item 6, DESIGN §14): a policy set coming into force (--policy FILE,
 * then `trib policy submit`) is one event with its version, never again for a restart with the
 * same set or a refused submission; an access request, grant, revocation and denial are one event
 * each on the owner and on the requester's node (replicated), none more after a restart and a
 * resync; grant events name the product and the action only, never the subject, the fields or the
 * purpose, to a caller without a token; `trib watch` prints them and resumes from a seq after a
 * restart, the seqs going on where they were; a live `trib watch` whose node stops says the
 * --from to resume with. Signed sets replicated between chartered nodes:
 * tests/test_policy_chartered.c.
 * Must not: sleep to synchronise (h_wait with deadlines), leave processes behind. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

TestSuite(changes, .fini = h_cleanup_all, .timeout = 180);

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

/* ------------------------------------------------------------------ the feed */

typedef struct {
    json_t *events;     /* every event of the feed (live=0), in order */
    char *body;         /* the NDJSON as sent */
} feed_t;

static void feed_free(feed_t *f)
{
    json_decref(f->events);
    free(f->body);
    f->events = NULL;
    f->body = NULL;
}

/* n's whole feed, read with no token (the route is open discovery). */
/* The token the feed is read with (NULL: none). Events of a restricted product show in full only
 * to who may see it (else as its stub, without the action): the grant test reads with the owner's. */
static const char *viewer;

static void feed_read(h_node_t *n, const char *query, feed_t *f)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/catalog/changes?live=0%s", n->url, query ? query : "");
    h_resp_t r;
    cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, viewer, &r), 0, "GET %s", url);
    cr_assert_eq(r.status, 200, "GET %s: %ld %.*s", url, r.status, (int)r.len, r.body ? r.body : "");
    f->body = strndup(r.body ? r.body : "", r.len);
    f->events = json_array();
    for (char *line = f->body, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "a feed line without its newline: %s", line);
        json_t *ev = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert(json_is_object(ev), "not a JSON object: %.*s", (int)(nl - line), line);
        json_array_append_new(f->events, ev);
    }
    h_resp_free(&r);
}

static const char *s_of(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Events of kind event (and action, when given) in f. */
static int count(const feed_t *f, const char *event, const char *action)
{
    int c = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
        if (!strcmp(s_of(ev, "event"), event) && (!action || !strcmp(s_of(ev, "action"), action)))
            c++;
    return c;
}

/* The last event of kind event in f, or NULL (borrowed). */
static json_t *last_of(const feed_t *f, const char *event)
{
    json_t *last = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
        if (!strcmp(s_of(ev, "event"), event))
            last = ev;
    return last;
}

static json_int_t last_seq(const feed_t *f)
{
    size_t n = json_array_size(f->events);
    return n ? json_integer_value(json_object_get(json_array_get(f->events, n - 1), "seq")) : 0;
}

typedef struct {
    h_node_t *n;
    const char *event, *action;
    int want;
} want_t;

static int has_count(void *ctx)
{
    want_t *w = ctx;
    feed_t f;
    feed_read(w->n, NULL, &f);
    int c = count(&f, w->event, w->action);
    feed_free(&f);
    return c >= w->want;
}

/* ------------------------------------------------------------------ policy_changed */

/* The Unix time in ms (the events' clock). */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 50-300 ms into a second of the wall clock. */
static int early_in_a_second(void *ctx)
{
    (void)ctx;
    long long ms = wall_ms() % 1000;
    return ms >= 50 && ms <= 300;
}

/* examples/policies/company.yaml with its version line set to version, written to dir/name. */
static void write_policy(const char *dir, const char *name, int version, char *path, size_t cap)
{
    char src[512];
    h_repo_path("examples/policies/company.yaml", src, sizeof src);
    size_t len;
    char *yaml = h_read_file(src, &len);
    cr_assert_not_null(yaml, "%s", src);
    char *v = strstr(yaml, "\nversion: 1\n");
    cr_assert_not_null(v, "company.yaml has no 'version: 1' line");
    v[10] = (char)('0' + version);
    snprintf(path, cap, "%s/%s", dir, name);
    cr_assert_eq(h_write_file(path, yaml, len), 0, "%s", path);
    free(yaml);
}

static void publish(h_node_t *n, const char *id, const char *json)
{
    char url[300];
    snprintf(url, sizeof url, "%s/v1/products/%s", n->url, id);
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/json", json, strlen(json), &r), 0);
    cr_assert(r.status == 201 || r.status == 200, "publish %s: %ld %.*s", id, r.status, (int)r.len, r.body);
    h_resp_free(&r);
}

#define SETTLED "{\"name\":\"settled\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\"," \
                "\"title\":\"Settled transactions\",\"classification\":\"internal\"," \
                "\"description\":{\"purpose\":\"Every settled card transaction of the day, for finance.\"," \
                "\"usage\":\"Join on txn_id.\"}," \
                "\"owners\":{\"business\":\"maria@example.com\",\"technical\":\"data@example.com\"}," \
                "\"schema\":[{\"name\":\"txn_id\",\"logicalType\":\"string\",\"required\":true}]}"

Test(changes, policy_changed_once_per_set_in_force_and_watch_resumes_after_a_restart)
{
    h_node_t a;
    char dir[] = "/tmp/trib-changes-XXXXXX", p1[300], p2[300];
    cr_assert_not_null(mkdtemp(dir));
    write_policy(dir, "v1.yaml", 1, p1, sizeof p1);
    write_policy(dir, "v2.yaml", 2, p2, sizeof p2);
    cr_assert_eq(h_node_start(&a, "payments", "--policy", p1, NULL), 0, "payments did not start");

    /* the set given at start: one event with its version */
    feed_t f;
    feed_read(&a, NULL, &f);
    cr_assert_eq(count(&f, "policy_changed", NULL), 1, "%s", f.body);
    json_t *ev = last_of(&f, "policy_changed");
    cr_assert_eq(json_integer_value(json_object_get(ev, "version")), 1, "%s", f.body);
    cr_assert_eq(json_integer_value(json_object_get(ev, "previous")), 0, "%s", f.body);
    cr_assert_str_eq(s_of(ev, "source"), "--policy FILE", "%s", f.body);
    cr_assert(json_integer_value(json_object_get(ev, "rules")) > 0, "%s", f.body);
    feed_free(&f);

    /* a restart with the same set: no second event */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0, "payments did not restart");
    feed_read(&a, NULL, &f);
    cr_assert_eq(count(&f, "policy_changed", NULL), 1, "a restart noted the same set again: %s", f.body);
    feed_free(&f);

    /* a new version by `trib policy submit` (open mode: the YAML): one event; the same again is
     * the set in force (200, nothing written) and adds none. Its time is to the millisecond, as every other event's (it was
     * cut to the second): begun early in a second, it is not before the submit began */
    char *out = NULL, *err = NULL;
    cr_assert(h_wait(early_in_a_second, NULL, 3000), "the wall clock never showed 50-300 ms into a second");
    long long t0 = wall_ms();
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "policy", "submit", p2, NULL), 0, "%s", err);
    long long t1 = wall_ms();
    free(out), free(err);
    out = err = NULL;
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "policy", "submit", p2, NULL), 0, "the set in force again: %s", err);
    free(out), free(err);
    feed_read(&a, NULL, &f);
    cr_assert_eq(count(&f, "policy_changed", NULL), 2, "%s", f.body);
    ev = last_of(&f, "policy_changed");
    cr_assert_eq(json_integer_value(json_object_get(ev, "version")), 2, "%s", f.body);
    cr_assert_eq(json_integer_value(json_object_get(ev, "previous")), 1, "%s", f.body);
    long long at = (long long)json_integer_value(json_object_get(ev, "time_ms"));
    cr_assert(at >= t0 && at <= t1, "policy_changed at %lld, the submit ran from %lld to %lld", at, t0, t1);
    json_int_t last = last_seq(&f);
    feed_free(&f);
    feed_read(&a, "&domain=growth&product=growth/x", &f);   /* a set is every product's concern */
    cr_assert_eq(count(&f, "policy_changed", NULL), 2, "%s", f.body);
    feed_free(&f);

    /* `trib watch` prints them */
    out = err = NULL;
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "watch", "--no-follow", NULL), 0, "%s", err);
    cr_assert(strstr(out, "\"event\":\"policy_changed\"") && strstr(out, "\"version\":2"), "%s", out);
    free(out), free(err);

    /* resume after a restart: from the seq after the last event seen, nothing is sent again, and
     * the next event takes the next seq (the log's seqs go on where they were). The submitted set
     * is kept across the restart: --policy still names version 1, which is not taken (a set never
     * goes back), so version 2 stays in force and no event is written */
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&a), 0, "payments did not restart");
    long st = 0;
    json_t *pol = h_get_json(a.url, "/v1/policy", &st);
    cr_assert(st == 200 && pol, "GET /v1/policy: %ld", st);
    cr_assert_eq(json_integer_value(json_object_get(pol, "version")), 2, "the submitted set was lost on a restart");
    json_decref(pol);
    char from[32];
    snprintf(from, sizeof from, "%lld", (long long)last + 1);
    out = err = NULL;
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "watch", "--no-follow", "--from", from, NULL), 0, "%s", err);
    cr_assert_str_eq(out, "", "events after %lld on a restart with the same set: %s", (long long)last, out);
    free(out), free(err);
    publish(&a, "payments/settled", SETTLED);
    out = err = NULL;
    cr_assert_eq(h_trib(&a, NULL, &out, &err, "watch", "--no-follow", "--from", from, NULL), 0, "%s", err);
    json_t *pub = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(pub, "%s", out);
    cr_assert_str_eq(s_of(pub, "event"), "published", "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(pub, "seq")), last + 1, "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "more than one event: %s", out);
    json_decref(pub);
    free(out), free(err);

    h_node_cleanup(&a);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------ grant_changed */

#define DEAL "{\"name\":\"deal-room\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\"," \
             "\"classification\":\"restricted\",\"title\":\"Deal room\"," \
             "\"description\":{\"purpose\":\"Takeover of Acme\"},\"tags\":[\"secret-merger\"]," \
             "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"}," \
             "\"schema\":[{\"name\":\"bid_eur\",\"logicalType\":\"integer\"}," \
             "{\"name\":\"target\",\"logicalType\":\"string\"}]}"

/* POST base+path with token and body: the reply, which must have status want; *field copied to out. */
static void post(h_node_t *n, const char *path, const char *token, const char *body, long want, const char *field,
                 char *out, size_t cap)
{
    long st = 0;
    json_t *j = h_call("POST", n->url, path, token, body, &st);
    cr_assert_eq(st, want, "POST %s: %ld %s", path, st, j ? s_of(j, "detail") : "");
    if (field)
        snprintf(out, cap, "%s", s_of(j, field));
    json_decref(j);
}

typedef struct {
    h_node_t *n;
    const char *path, *token, *id;
} listed_t;

static int listed(void *ctx)
{
    listed_t *l = ctx;
    long st = 0;
    json_t *j = h_call("GET", l->n->url, l->path, l->token, NULL, &st);
    char *d = st == 200 && j ? json_dumps(j, 0) : NULL;
    int ok = d && strstr(d, l->id);
    free(d);
    json_decref(j);
    return ok;
}

/* Every grant_changed of f: the product and the action, nothing about who or what. */
static void grant_events_say_no_more(const feed_t *f, const char *const *secrets, size_t n)
{
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        if (strcmp(s_of(ev, "event"), "grant_changed"))
            continue;
        const char *k;
        json_t *v;
        json_object_foreach(ev, k, v)
        {
            static const char *const allowed[] = {"seq", "event", "action", "product", "domain", "time_ms"};
            int ok = 0;
            for (size_t a = 0; a < sizeof allowed / sizeof *allowed; a++)
                ok |= !strcmp(k, allowed[a]);
            cr_assert(ok, "a grant event shows \"%s\"", k);
        }
        cr_assert_str_eq(s_of(ev, "product"), "payments/deal-room");
        cr_assert_str_eq(s_of(ev, "domain"), "payments");
    }
    for (size_t s = 0; s < n; s++)
        cr_assert_null(strstr(f->body, secrets[s]), "the feed shows \"%s\": %s", secrets[s], f->body);
}

Test(changes, grant_changes_once_each_on_the_owner_and_its_peer)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0, "growth did not start");
    viewer = a.token;   /* payments' admin: sees deal-room in full on either node */
    publish(&a, "payments/deal-room", DEAL);
    cr_assert(h_wait_status(b.url, "/v1/products/payments/deal-room", NULL, 200, 20000),
              "growth never saw payments/deal-room");
    char *alice = NULL, *err = NULL;
    cr_assert_eq(h_trib(&b, NULL, &alice, &err, "token", "issue", "--sub", "alice@growth", "--kind", "read", "--ttl",
                        "1h", NULL), 0, "%s", err);
    free(err);
    alice[strcspn(alice, "\n")] = '\0';

    /* request on growth (alice's home), grant and revoke on payments; a second request denied */
    const char *ask = "{\"product\":\"payments/deal-room\",\"purpose\":\"churn model\",\"fields\":[\"bid_eur\"],"
                      "\"days\":30}";
    char rid[64], rid2[64], gid[64], path[256];
    post(&b, "/v1/access/requests", alice, ask, 201, "id", rid, sizeof rid);
    listed_t pend = {&a, "/v1/access/requests?state=requested", a.token, rid};
    cr_assert(h_wait(listed, &pend, 20000), "payments never saw request %s", rid);
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    post(&a, path, a.token, "{\"days\":30}", 200, "id", gid, sizeof gid);
    post(&a, path, a.token, "{\"days\":30}", 409, NULL, NULL, 0);   /* refused: no entry, no event */
    snprintf(path, sizeof path, "/v1/access/grants/%s/revoke", gid);
    post(&a, path, a.token, "{\"reason\":\"project ended\"}", 200, NULL, NULL, 0);
    /* asked again once growth has heard of the decision: before that, growth holds the first request
     * as pending and answers the same request with it (200, "existing") */
    listed_t heard = {&b, "/v1/access/mine", alice, gid};
    cr_assert(h_wait(listed, &heard, 20000), "growth never heard of grant %s", gid);
    post(&b, "/v1/access/requests", alice, ask, 201, "id", rid2, sizeof rid2);
    pend.id = rid2;
    cr_assert(h_wait(listed, &pend, 20000), "payments never saw request %s", rid2);
    snprintf(path, sizeof path, "/v1/access/requests/%s/deny", rid2);
    post(&a, path, a.token, "{\"reason\":\"use the aggregate\"}", 200, NULL, NULL, 0);

    /* each change one event on both nodes (growth's from payments' log and its own) */
    h_node_t *both[] = {&a, &b};
    const char *actions[] = {"requested", "granted", "revoked", "denied"};
    const int times[] = {2, 1, 1, 1};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) {
            want_t w = {both[k], "grant_changed", actions[i], times[i]};
            cr_assert(h_wait(has_count, &w, 20000), "%s never showed %s", both[k]->domain, actions[i]);
        }

    /* growth restarts and syncs with payments again (a product published now reaches it): every
     * entry it is offered again is a duplicate, and adds no event */
    cr_assert_eq(h_node_stop(&b, SIGTERM), 0);
    cr_assert_eq(h_node_restart(&b), 0, "growth did not restart");
    publish(&a, "payments/settled", SETTLED);
    want_t synced = {&b, "published", NULL, 2};
    cr_assert(h_wait(has_count, &synced, 20000), "growth did not sync with payments after its restart");
    const char *secrets[] = {"alice", "churn", "project ended", "aggregate", "bid_eur", rid, rid2, gid, "growth"};
    for (int k = 0; k < 2; k++) {
        feed_t f;
        feed_read(both[k], NULL, &f);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(count(&f, "grant_changed", actions[i]), times[i], "%s: %s: %s", both[k]->domain, actions[i],
                         f.body);
        grant_events_say_no_more(&f, secrets, sizeof secrets / sizeof *secrets);
        feed_free(&f);
        /* the filters: by product and by the product's domain */
        feed_read(both[k], "&product=payments/deal-room", &f);
        cr_assert_eq(count(&f, "grant_changed", NULL), 5, "%s", f.body);
        feed_free(&f);
        feed_read(both[k], "&domain=growth", &f);
        cr_assert_eq(count(&f, "grant_changed", NULL), 0, "filed under the requester's domain: %s", f.body);
        feed_free(&f);
    }

    /* `trib watch` on growth prints them */
    char *out = NULL;
    err = NULL;
    cr_assert_eq(h_trib(&b, NULL, &out, &err, "watch", "--no-follow", "--product", "payments/deal-room", "--token", a.token, NULL), 0, "%s",
                 err);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"action\":\"%s\"", actions[i]);
        cr_assert(strstr(out, want) && strstr(out, "\"event\":\"grant_changed\""), "no %s in: %s", want, out);
    }
    free(out), free(err);
    free(alice);
}

/* ------------------------------------------------------------------ a live watch over a restart */

typedef struct {
    const char *path, *want;
} file_has_t;

static int file_has(void *ctx)
{
    file_has_t *f = ctx;
    char *s = h_read_file(f->path, NULL);
    int ok = s && strstr(s, f->want);
    free(s);
    return ok;
}

typedef struct {
    pid_t pid;
    int status;
} child_t;

static int child_exited(void *ctx)
{
    child_t *c = ctx;
    return waitpid(c->pid, &c->status, WNOHANG) == c->pid;
}

/* A live `trib watch` ends when its node stops, printing the node's shutting_down line and saying
 * on stderr the --from to resume with; resumed there after the restart, it misses nothing and
 * repeats nothing. */
Test(changes, live_watch_ends_at_a_restart_saying_where_to_resume)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0, "payments did not start");
    char out[300], errp[300];
    snprintf(out, sizeof out, "%s.watch.out", a.dir);
    snprintf(errp, sizeof errp, "%s.watch.err", a.dir);
    child_t w = {.pid = fork()};
    cr_assert_geq(w.pid, 0);
    if (w.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        setenv("TRIB_NODE", a.url, 1);
        setenv("TRIB_TOKEN", a.token, 1);
        execl(h_trib_path(), "trib", "watch", (char *)NULL);
        _exit(127);
    }
    publish(&a, "payments/settled", SETTLED);
    file_has_t seen = {out, "\"event\":\"published\""};
    cr_assert(h_wait(file_has, &seen, 20000), "the live watch never printed the publish");
    cr_assert_eq(h_node_stop(&a, SIGTERM), 0);
    int exited = h_wait(child_exited, &w, 20000);
    if (!exited) {
        kill(w.pid, SIGKILL);
        waitpid(w.pid, &w.status, 0);
    }
    cr_assert(exited, "trib watch outlived its node");
    cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 1, "trib watch: status %d", w.status);
    char *o = h_read_file(out, NULL), *e = h_read_file(errp, NULL);
    cr_assert(o && strstr(o, "\"error\":\"shutting_down\"") && strstr(o, "last event"), "%s", o ? o : "");
    cr_assert(e && strstr(e, "ended the feed after seq 1; resume with --from 2"), "%s", e ? e : "");
    free(o), free(e);
    unlink(out);
    unlink(errp);

    cr_assert_eq(h_node_restart(&a), 0, "payments did not restart");
    publish(&a, "payments/deal-room", DEAL);
    char *o2 = NULL, *e2 = NULL;
    cr_assert_eq(h_trib(&a, NULL, &o2, &e2, "watch", "--no-follow", "--from", "2", NULL), 0, "%s", e2);
    cr_assert(strncmp(o2, "{\"seq\":2,", 9) == 0 && strstr(o2, "payments/deal-room"), "%s", o2);
    cr_assert_eq(strchr(o2, '\n'), o2 + strlen(o2) - 1, "more than the one new event: %s", o2);
    free(o2), free(e2);
}
