/* tests/test_netns.c - a real partition: three `trib agent` processes, each in its own network
 * namespace (deploy/netns.sh), one host cut off from the others by routes, a product published on
 * the majority side during the cut, then the cut healed: membership and catalog must converge.
 * Skips (netns.sh exit 77) where the machine allows no namespaces, with netns.sh's reason. Must
 * not: send traffic anywhere but the test hosts of its own namespaces (10.77.S.0/24, bridge
 * address 10.77.S.254 here). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/harness.h"

#define HOSTS 3
#define HTTP_PORT 7480
#define SKIP 77

/* Fast membership timings; --retry-max-ms bounds the backoff with which dead members are retried,
 * which is what a healed partition waits for. */
#define FAST_ARGS                                                                                   \
    "--probe-interval-ms 200 --probe-timeout-ms 100 --suspicion-mult 2 --gossip-interval-ms 50 " \
    "--anti-entropy-ms 300 --retry-max-ms 2000"

static char prefix[16];
static int subnet;
static char skip_reason[256]; /* netns.sh's "skipped: REASON" line, when it exits 77 */

/* Relays the script's stderr from fd to ours, keeping the reason it gives for a skip. */
static void relay_stderr(int fd)
{
    static const char tag[] = "netns.sh: skipped: ";
    char line[512];
    size_t len = 0;
    char c;
    while (read(fd, &c, 1) == 1) {
        if (len < sizeof line - 1)
            line[len++] = c;
        if (c != '\n')
            continue;
        line[len] = '\0';
        fputs(line, stderr);
        if (!strncmp(line, tag, sizeof tag - 1))
            snprintf(skip_reason, sizeof skip_reason, "%.*s", (int)(len - sizeof tag), line + sizeof tag - 1);
        len = 0;
    }
    if (len) {
        line[len] = '\0';
        fputs(line, stderr);
    }
}

/* Runs deploy/netns.sh ARGS... (NULL-ended) with this run's prefix and subnet; its exit code. */
static int netns(const char *arg, ...)
{
    char script[512];
    h_repo_path("deploy/netns.sh", script, sizeof script);
    const char *argv[16] = {"bash", script};
    int k = 2;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && k < 15; a = va_arg(ap, const char *))
        argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    int err[2];
    if (pipe(err) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(err[0]);
        close(err[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(err[1], 2);
        close(err[0]);
        close(err[1]);
        char sub[8];
        snprintf(sub, sizeof sub, "%d", subnet);
        setenv("TRIB_NETNS_PREFIX", prefix, 1);
        setenv("TRIB_NETNS_SUBNET", sub, 1);
        setenv("TRIB_ARGS", FAST_ARGS, 1);
        setenv("TRIB", h_trib_path(), 1);
        execvp(argv[0], (char **)argv);
        _exit(127);
    }
    close(err[1]);
    relay_stderr(err[0]); /* until the script and everything holding its stderr are done */
    close(err[0]);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void setup(void)
{
    /* Unique per run, so parallel runs (and a forgotten manual federation) never collide. */
    snprintf(prefix, sizeof prefix, "t%d", (int)getpid());
    subnet = 1 + (int)(getpid() % 250);
    setenv("NO_PROXY", "*", 1); /* test hosts only: never through a proxy */
}

static void teardown(void)
{
    if (prefix[0])
        netns("down", NULL);
}

TestSuite(netns, .init = setup, .fini = teardown, .timeout = 240);

/* ---------------------------------------------------------------- HTTP views of host i */

static json_t *get_json(int host, const char *path)
{
    char base[64];
    snprintf(base, sizeof base, "http://10.77.%d.%d:%d", subnet, host, HTTP_PORT);
    return h_get_json(base, path, NULL);
}

/* State of domain's member in host's view, "" when not listed or unreachable. */
static const char *member_state(int host, const char *domain, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *j = get_json(host, "/v1/members");
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(j, "members"), i, m)
    {
        const char *d = json_string_value(json_object_get(m, "domain"));
        const char *s = json_string_value(json_object_get(m, "state"));
        if (d && s && !strcmp(d, domain))
            snprintf(buf, cap, "%s", s);
    }
    json_decref(j);
    return buf;
}

static long alive_count(int host)
{
    json_t *j = get_json(host, "/v1/status");
    long n = j ? (long)json_integer_value(json_object_get(json_object_get(j, "members"), "alive")) : -1;
    json_decref(j);
    return n;
}

static int has_product(int host, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/products/%s", id);
    json_t *j = get_json(host, path);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

/* ---------------------------------------------------------------- conditions for h_wait */

typedef struct {
    int hosts[HOSTS], n;        /* observers */
    const char *domain;         /* member watched */
    const char *states[2];      /* any of these (second may be NULL) */
    const char *product;
} cond_t;

static int all_see_n_alive(void *ctx)
{
    cond_t *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (alive_count(c->hosts[i]) != HOSTS)
            return 0;
    return 1;
}

static int all_see_state(void *ctx)
{
    cond_t *c = ctx;
    char buf[32];
    for (int i = 0; i < c->n; i++) {
        member_state(c->hosts[i], c->domain, buf, sizeof buf);
        if (strcmp(buf, c->states[0]) != 0 && !(c->states[1] && !strcmp(buf, c->states[1])))
            return 0;
    }
    return 1;
}

static int all_have_product(void *ctx)
{
    cond_t *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (!has_product(c->hosts[i], c->product))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- the test */

static long publish(int host, const char *domain, const char *name)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:[s], s:s, s:[{s:s, s:s, s:b}]}",
                            "name", name, "domain", domain, "version", "1.0.0", "status", "active", "title",
                            "Published during a partition", "description", "purpose",
                            "Shows that a healed partition catches up", "owners", "business",
                            "ops@example.com", "technical", "ops@example.com", "tags", "test",
                            "classification", "internal", "schema", "name", "id", "logicalType", "string",
                            "required", 1);
    cr_assert(doc, "cannot build the manifest");
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char url[256];
    snprintf(url, sizeof url, "http://10.77.%d.%d:%d/v1/products/%s/%s", subnet, host, HTTP_PORT, domain, name);
    char tpath[256]; /* the host's admin token (deploy/netns.sh: data in /tmp/PREFIX-netns/hI) */
    snprintf(tpath, sizeof tpath, "/tmp/%s-netns/h%d/admin.token", prefix, host);
    char *token = h_read_file(tpath, NULL);
    if (token)
        token[strcspn(token, "\r\n")] = '\0';
    h_resp_t r;
    int rc = h_http_token("PUT", url, "application/json", body, strlen(body), token, &r);
    free(token);
    free(body);
    long status = rc == 0 ? r.status : -1;
    if (status != 201)
        cr_log_error("PUT %s -> %ld %s", url, status, r.body ? r.body : "");
    h_resp_free(&r);
    return status;
}

Test(netns, partition_then_heal_converges)
{
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    int rc = netns("up", "3", "--owner", self, NULL); /* --owner: torn down even if this process dies */
    if (rc == SKIP) /* Criterion counts it as skipped; tests/run.sh lists it with this reason */
        cr_skip_test("no network namespaces here: %s", skip_reason[0] ? skip_reason : "deploy/netns.sh exit 77");
    cr_assert_eq(rc, 0, "deploy/netns.sh up 3 failed (exit %d); see its output above", rc);

    cond_t all = {.hosts = {1, 2, 3}, .n = 3};
    cr_assert(h_wait(all_see_n_alive, &all, 20000), "the three hosts did not all see three alive members");

    /* Cut host 3 off from hosts 1 and 2 (the observer here still reaches every host). */
    long t0 = h_now_ms();
    cr_assert_eq(netns("isolate", "3", NULL), 0, "netns.sh isolate 3 failed");
    cond_t majority = {.hosts = {1, 2}, .n = 2, .domain = "h3", .states = {"suspect", "dead"}};
    cr_assert(h_wait(all_see_state, &majority, 20000), "hosts 1 and 2 did not suspect the isolated host 3");
    cond_t minority = {.hosts = {3}, .n = 1, .domain = "h1", .states = {"dead", NULL}};
    cr_assert(h_wait(all_see_state, &minority, 20000), "isolated host 3 did not see host 1 dead");
    minority.domain = "h2";
    cr_assert(h_wait(all_see_state, &minority, 20000), "isolated host 3 did not see host 2 dead");
    cr_log_info("partition detected on both sides in %ld ms", h_now_ms() - t0);

    /* Publish on the majority side: host 2 gets it, host 3 cannot. */
    cr_assert_eq(publish(1, "h1", "partition-probe"), 201, "publishing on host 1 failed");
    cond_t h2 = {.hosts = {2}, .n = 1, .product = "h1/partition-probe"};
    cr_assert(h_wait(all_have_product, &h2, 10000), "host 2 did not get the product during the partition");
    cr_assert_not(has_product(3, "h1/partition-probe"), "the product crossed the partition to host 3");

    /* Heal: membership converges back to three alive, and host 3 catches up on the catalog. */
    t0 = h_now_ms();
    cr_assert_eq(netns("rejoin", "3", NULL), 0, "netns.sh rejoin 3 failed");
    cr_assert(h_wait(all_see_n_alive, &all, 60000), "after the heal the hosts did not all see three alive");
    cond_t h3 = {.hosts = {3}, .n = 1, .product = "h1/partition-probe"};
    cr_assert(h_wait(all_have_product, &h3, 30000), "host 3 did not get the product after the heal");
    cr_log_info("healed: three alive and catalog caught up in %ld ms", h_now_ms() - t0);
}
