/* tests/test_cli.c - the trib client commands (node/cli.c, node/client.c, node/cli_table.c).
 *
 * Pure parts table-driven (node address normalisation, product ids, table layout), usage
 * errors through cli_run (exit 2, no network), and each command against a small canned HTTP
 * server (libmicrohttpd, in-process) that records what the client sent: paths, escaped
 * queries, content types, streamed bodies, and replies delivered in small pieces. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "node/cli.h"
#include "node/cli_table.h"
#include "node/client.h"
#include "storage/store.h"
#include "tests/harness.h"

/* ================================================================ running the CLI */

typedef struct {
    int rc;
    char *out;
    char *err;
} run_t;

static run_t run_argv(int argc, char **argv, FILE *out_override)
{
    run_t r = { 0 };
    size_t olen = 0, elen = 0;
    FILE *out = out_override ? out_override : open_memstream(&r.out, &olen);
    FILE *err = open_memstream(&r.err, &elen);
    cr_assert(out && err);
    r.rc = cli_run(argc, argv, out, err);
    if (!out_override)
        fclose(out);
    fclose(err);
    return r;
}

/* run("products", "--json", NULL) */
static run_t run(const char *cmd, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cmd);
    for (const char *a = cmd; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return run_argv(argc, argv, NULL);
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static char *write_temp(const char *content)
{
    char *path = strdup("/tmp/trib-cli-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t len = strlen(content);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

/* ================================================================ canned HTTP server */

typedef struct {
    const char *method, *path;
    unsigned status;
    const char *body;
    size_t piece;       /* > 0: sent chunked, piece bytes per callback */
    int hold;           /* after the body, keep the stream open until the test ends */
} route_t;

#define MAX_ROUTES 8

static struct {
    pthread_mutex_t mu;
    route_t routes[MAX_ROUTES];
    const char *first_seq[MAX_ROUTES];   /* Trib-First-Seq header of a route, when set */
    size_t nroutes;
    struct MHD_Daemon *d;
    char node[64];
    volatile int closing;
    /* the last request */
    int requests;
    char method[16], path[256], ctype[128], te[64], args[1024], auth[512];
    char *body;
    size_t body_len;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

typedef struct {
    char *buf;
    size_t len;
} upload_t;

typedef struct {
    const route_t *route;
} stream_t;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)cls;
    (void)kind;
    size_t at = strlen(srv.args);
    snprintf(srv.args + at, sizeof srv.args - at, "%s=%s\n", key, value ? value : "");
    return MHD_YES;
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *s = cls;
    size_t len = strlen(s->route->body);
    if (pos < len) {
        size_t n = len - pos;
        if (n > s->route->piece)
            n = s->route->piece;
        if (n > max)
            n = max;
        memcpy(buf, s->route->body + pos, n);
        return (ssize_t)n;
    }
    if (!s->route->hold || srv.closing)
        return s->route->hold ? MHD_CONTENT_READER_END_WITH_ERROR
                              : MHD_CONTENT_READER_END_OF_STREAM;
    usleep(1000);      /* pacing while the stream idles, not synchronisation */
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        char *nb = realloc(u->buf, u->len + *upload_data_size + 1);
        if (!nb)
            return MHD_NO;
        u->buf = nb;
        memcpy(u->buf + u->len, upload_data, *upload_data_size);
        u->len += *upload_data_size;
        u->buf[u->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    snprintf(srv.method, sizeof srv.method, "%s", method);
    snprintf(srv.path, sizeof srv.path, "%s", url);
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    snprintf(srv.ctype, sizeof srv.ctype, "%s", ct ? ct : "");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    snprintf(srv.te, sizeof srv.te, "%s", te ? te : "");
    const char *au = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    snprintf(srv.auth, sizeof srv.auth, "%s", au ? au : "");
    srv.args[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, NULL);
    free(srv.body);
    srv.body = u->buf ? u->buf : strdup("");
    srv.body_len = u->len;
    u->buf = NULL;
    const route_t *r = NULL;
    const char *first_seq = NULL;
    for (size_t i = 0; i < srv.nroutes; i++)
        if (strcmp(srv.routes[i].method, method) == 0 && strcmp(srv.routes[i].path, url) == 0) {
            r = &srv.routes[i];
            first_seq = srv.first_seq[i];
        }
    pthread_mutex_unlock(&srv.mu);

    static const route_t missing = { "GET", "", 404,
                                     "{\"error\":\"not_found\",\"detail\":\"no such route\"}", 0, 0 };
    if (!r)
        r = &missing;
    struct MHD_Response *resp;
    if (r->piece) {
        stream_t *s = calloc(1, sizeof *s);
        s->route = r;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_cb, s, free);
    } else {
        resp = MHD_create_response_from_buffer(strlen(r->body), (void *)r->body,
                                               MHD_RESPMEM_PERSISTENT);
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (first_seq)
        MHD_add_response_header(resp, "Trib-First-Seq", first_seq);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload_t *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
    }
    *con_cls = NULL;
}

static void srv_route(route_t r)
{
    cr_assert(srv.nroutes < MAX_ROUTES);
    srv.first_seq[srv.nroutes] = NULL;
    srv.routes[srv.nroutes++] = r;
}

/* A record read answering with header Trib-First-Seq: first_seq, as a node does. */
static void srv_route_seq(route_t r, const char *first_seq)
{
    srv_route(r);
    srv.first_seq[srv.nroutes - 1] = first_seq;
}

static void srv_start(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                             NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    cr_assert_not_null(srv.d, "MHD_start_daemon failed");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(di && di->port);
    snprintf(srv.node, sizeof srv.node, "127.0.0.1:%u", (unsigned)di->port);
    unsetenv("TRIB_NODE");
}

static void srv_stop(void)
{
    srv.closing = 1;
    if (srv.d)
        MHD_stop_daemon(srv.d);
    srv.d = NULL;
    free(srv.body);
    srv.body = NULL;
}

/* ================================================================ node addresses */

typedef struct {
    const char *in;
    const char *want;   /* NULL: refused */
} url_case_t;

Test(cli_url, normalises_node_addresses)
{
    static const url_case_t cases[] = {
        { "http://127.0.0.1:7480", "http://127.0.0.1:7480" },
        { "http://127.0.0.1:7480/", "http://127.0.0.1:7480" },
        { "127.0.0.1:7481", "http://127.0.0.1:7481" },
        { "localhost:9000/", "http://localhost:9000" },
        { "node1", "http://node1:7480" },
        { ":7482", "http://127.0.0.1:7482" },
        { "[::1]:7480", "http://[::1]:7480" },
        { "https://trib.example.com", "https://trib.example.com" },
        { "HTTP://Example.com:80/trib/", "http://Example.com:80/trib" },
        { "http://h:7480/a/b//", "http://h:7480/a/b" },
        { "", NULL },
        { "ftp://h:21", NULL },
        { "http://h:7480/?x=1", NULL },
        { "http://h:7480/#frag", NULL },
        { "http://user:pw@h:7480", NULL },
        { "http://h:99999", NULL },
        { "host name:7480", NULL },
        { "http://", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256] = "", err[256] = "";
        int rc = client_base_url(cases[i].in, 7480, out, sizeof out, err, sizeof err);
        if (cases[i].want) {
            cr_expect_eq(rc, 0, "'%s' refused: %s", cases[i].in, err);
            cr_expect_str_eq(out, cases[i].want, "'%s'", cases[i].in);
        } else {
            cr_expect_eq(rc, -1, "'%s' accepted as '%s'", cases[i].in, out);
            cr_expect_neq(err[0], '\0', "'%s': no message", cases[i].in);
        }
    }
}

Test(cli_url, product_ids)
{
    static const struct { const char *id; int ok; } cases[] = {
        { "payments/settled-transactions", 1 }, { "a/b", 1 }, { "0x/9-9", 1 },
        { "payments", 0 }, { "/x", 0 }, { "x/", 0 }, { "Payments/x", 0 }, { "a/b/c", 0 },
        { "-a/b", 0 }, { "a/-b", 0 }, { "a_b/c", 0 }, { "a/b?x=1", 0 }, { "a/b c", 0 },
        { "a/../b", 0 }, { "", 0 },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b", 1 },   /* 63 */
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b", 0 },  /* 64 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(cli_valid_id(cases[i].id), cases[i].ok, "'%s'", cases[i].id);
    cr_expect_eq(cli_valid_id(NULL), 0);
}

/* ================================================================ tables */

static char *render(cli_table_t *t, const char *indent)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_eq(cli_table_print(t, f, indent), 0);
    fclose(f);
    return s;
}

Test(cli_table, aligns_columns_without_trailing_spaces)
{
    static const char *const hdr[] = { "ID", "VERSION", "TITLE" };
    cli_table_t *t = cli_table_new(3, hdr);
    cr_assert_not_null(t);
    const char *r1[] = { "payments/settled", "1.0.0", "Settled" };
    const char *r2[] = { "a/b", "10.20.30", "" };
    const char *r3[] = { "growth/x", NULL, "Ünïcødé title" };
    cr_assert_eq(cli_table_add(t, r1), 0);
    cr_assert_eq(cli_table_add(t, r2), 0);
    cr_assert_eq(cli_table_add(t, r3), 0);
    cr_expect_eq(cli_table_rows(t), 3);
    char *s = render(t, NULL);
    cr_expect_str_eq(s, "ID                VERSION   TITLE\n"
                        "payments/settled  1.0.0     Settled\n"
                        "a/b               10.20.30\n"
                        "growth/x                    Ünïcødé title\n");
    free(s);
    s = render(t, "  ");
    cr_expect_eq(strncmp(s, "  ID                VERSION", 27), 0, "%s", s);
    free(s);
    cli_table_destroy(&t);
    cr_expect_null(t);
    cli_table_destroy(&t);
}

Test(cli_table, truncates_by_characters_with_ellipsis)
{
    static const char *const hdr[] = { "A", "TITLE" };
    cli_table_t *t = cli_table_new(2, hdr);
    cli_table_set_max(t, 1, 5);
    const char *r1[] = { "x", "abcdefgh" };
    const char *r2[] = { "y", "abcde" };
    const char *r3[] = { "z", "ééééééé" };
    cli_table_add(t, r1);
    cli_table_add(t, r2);
    cli_table_add(t, r3);
    char *s = render(t, NULL);
    cr_expect_str_eq(s, "A  TITLE\n"
                        "x  abcd…\n"
                        "y  abcde\n"
                        "z  éééé…\n");
    free(s);
    cli_table_destroy(&t);
}

Test(cli_table, neutralises_control_characters)
{
    cli_table_t *t = cli_table_new(2, NULL);
    const char *r1[] = { "a\x1b[31mred", "line1\nline2\r\t\x7f" "c1:\xc2\x9b" "end" };
    cli_table_add(t, r1);
    char *s = render(t, NULL);
    cr_expect_str_eq(s, "a [31mred  line1 line2   c1: end\n");
    free(s);
    cli_table_destroy(&t);
}

Test(cli_table, text_helpers)
{
    static const struct { const char *in; size_t max; const char *want; } cases[] = {
        { "", 0, "" }, { "abc", 0, "abc" }, { "abc", 3, "abc" }, { "abcd", 3, "ab…" },
        { "abcd", 1, "…" }, { "日本語テキスト", 4, "日本語…" }, { "x\ny", 0, "x y" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = cli_text_clean(cases[i].in, cases[i].max);
        cr_expect_str_eq(s, cases[i].want, "'%s' max %zu", cases[i].in, cases[i].max);
        free(s);
    }
    cr_expect_eq(cli_text_width("日本"), 2);
    cr_expect_eq(cli_text_width("ab…"), 3);
    cr_expect_null(cli_table_new(0, NULL));
    cr_expect_null(cli_table_new(CLI_TABLE_MAX_COLS + 1, NULL));
}

/* ================================================================ usage errors (exit 2) */

typedef struct {
    const char *args[6];
    const char *err_has;
} usage_case_t;

Test(cli_usage, errors_exit_2_with_a_hint)
{
    static const usage_case_t cases[] = {
        { { "frobnicate" }, "trib: unknown command 'frobnicate'\ntry 'trib --help'\n" },
        { { "products", "--bogus" }, "trib: products: unknown option '--bogus'\n" },
        { { "products", "-x" }, "unknown option '-x'" },
        /* a likely typo is named (it was only "unknown option '--form'") */
        { { "get", "a/b", "--form", "1" }, "unknown option '--form' (did you mean --from?)" },
        { { "products", "--domian", "payments" }, "unknown option '--domian' (did you mean --domain?)" },
        { { "publishh", "x.yaml" }, "trib: unknown command 'publishh' (did you mean publish?)\ntry 'trib --help'\n" },
        { { "members", "extra" }, "unexpected argument 'extra'" },
        { { "status", "--json=yes" }, "option '--json' takes no value" },
        { { "show" }, "missing argument" },
        { { "show", "a/b", "c/d" }, "unexpected argument 'c/d'" },
        { { "show", "not-an-id" }, "'not-an-id' is not a product id" },
        { { "retire", "A/B" }, "'A/B' is not a product id (DOMAIN/NAME, each " STORE_NAME_RULE ")" },
        { { "get", "a/b", "--from", "abc" }, "--from: 'abc' is not a non-negative integer" },
        { { "get", "a/b", "--limit=-1" }, "--limit: '-1' is not a non-negative integer" },
        { { "get", "a/b", "--from" }, "option '--from' needs a value (SEQ)" },
        { { "subscribe", "a/b", "--limit", "3" }, "unknown option '--limit'" },
        { { "put" }, "missing argument" },
        { { "put", "a/b", "f1", "f2" }, "unexpected argument 'f2'" },
        { { "publish" }, "missing argument" },
        { { "members", "--node", "ftp://x" }, "--node: bad node address 'ftp://x'" },
        { { "members", "--node" }, "option '--node' needs a value (URL)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8];
        int argc = 0;
        while (argc < 6 && cases[i].args[argc]) {
            argv[argc] = (char *)cases[i].args[argc];
            argc++;
        }
        argv[argc] = NULL;
        run_t r = run_argv(argc, argv, NULL);
        cr_expect_eq(r.rc, 2, "%s %s: rc %d", argv[0], argc > 1 ? argv[1] : "", r.rc);
        cr_expect(strstr(r.err, cases[i].err_has), "%s: stderr was: %s", argv[0], r.err);
        if (strcmp(argv[0], "frobnicate") != 0 && strcmp(argv[0], "publishh") != 0) {
            char hint[64];
            snprintf(hint, sizeof hint, "\ntry 'trib %s --help'\n", argv[0]);
            cr_expect(strstr(r.err, hint), "no hint in: %s", r.err);
            /* one line of message + the hint */
            char *nl = strchr(r.err, '\n');
            cr_expect(nl && strcmp(nl, hint) == 0, "not one line + hint: %s", r.err);
        }
        cr_expect_str_eq(r.out, "");
        run_free(&r);
    }
}

Test(cli_usage, bad_trib_node_env_is_a_usage_error)
{
    setenv("TRIB_NODE", "gopher://x", 1);
    run_t r = run("status", NULL);
    cr_expect_eq(r.rc, 2);
    cr_expect(strstr(r.err, "TRIB_NODE: bad node address 'gopher://x'"), "%s", r.err);
    run_free(&r);
}

Test(cli_usage, help_for_every_command)
{
    static const char *const cmds[] = { "members", "products", "show", "publish", "retire",
                                        "put", "get", "subscribe", "status" };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cr_expect(cli_is_command(cmds[i]));
        /* --help wins over other arguments, even bad ones */
        run_t r = run(cmds[i], "--bogus", "--help", NULL);
        cr_expect_eq(r.rc, 0, "%s", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: trib %s", cmds[i]);
        cr_expect_eq(strncmp(r.out, want, strlen(want)), 0, "%s", r.out);
        cr_expect(strstr(r.out, "--node URL"), "%s", r.out);
        cr_expect(strstr(r.out, "example:\n  trib "), "%s", r.out);
        cr_expect_str_eq(r.err, "");
        run_free(&r);
    }
    cr_expect_not(cli_is_command("agent"));
    run_t r = run("get", "-h", NULL);
    cr_expect(strstr(r.out, "--from SEQ") && strstr(r.out, "--limit N"), "%s", r.out);
    run_free(&r);

    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cli_usage(f);
    fclose(f);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %s ", cmds[i]);
        cr_expect(strstr(s, line), "%s missing from usage", cmds[i]);
    }
    cr_expect(strstr(s, "\n  agent "), "agent missing from usage");
    free(s);

    /* the commands with tables of their own: each with an example, no line ending in a space
     * (policy and compliance had no example; "usage: trib access pending " ended in one) */
    static const char *const more[][3] = { { "policy", "test" }, { "policy", "sign" }, { "policy", "submit" },
                                           { "policy", "show" }, { "compliance" }, { "access", "pending" },
                                           { "access", "mine" }, { "audit" }, { "token", "issue" } };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        char *argv[4] = { (char *)more[i][0], (char *)(more[i][1] ? more[i][1] : "--help"),
                          more[i][1] ? (char *)"--help" : NULL, NULL };
        run_t h = run_argv(more[i][1] ? 3 : 2, argv, NULL);
        cr_expect_eq(h.rc, 0, "%s %s: %s", more[i][0], more[i][1] ? more[i][1] : "", h.err);
        cr_expect(h.out && strstr(h.out, "example:\n  trib "), "%s %s --help has no example:\n%s", more[i][0],
                  more[i][1] ? more[i][1] : "", h.out ? h.out : "");
        cr_expect(h.out && !strstr(h.out, " \n"), "%s %s --help has a line ending in a space:\n%s", more[i][0],
                  more[i][1] ? more[i][1] : "", h.out ? h.out : "");
        run_free(&h);
    }
}

/* ================================================================ connection failure */

Test(cli_net, connection_refused_names_the_node)
{
    /* A bound but not listening socket: connecting to its port is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char node[64], want[256];
    snprintf(node, sizeof node, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    snprintf(want, sizeof want, "trib: cannot reach node at http://%s: Connection refused "
             "(is trib agent running? set --node or TRIB_NODE)\n", node);

    setenv("TRIB_NODE", node, 1);
    static const char *const cmds[][3] = { { "status" }, { "members" }, { "products", "x" },
                                           { "show", "a/b" }, { "get", "a/b" },
                                           { "subscribe", "a/b" }, { "retire", "a/b" } };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *argv[3] = { (char *)cmds[i][0], (char *)cmds[i][1], NULL };
        run_t r = run_argv(cmds[i][1] ? 2 : 1, argv, NULL);
        cr_expect_eq(r.rc, 1, "%s", cmds[i][0]);
        cr_expect_str_eq(r.err, want, "%s", cmds[i][0]);
        run_free(&r);
    }
    close(fd);
}

/* A listener that answers one connection with bytes (n of them; 0: closes at once) and closes. */
typedef struct {
    int fd;
    const char *bytes;
    size_t n;
} raw_srv_t;

static void *raw_answer(void *arg)
{
    raw_srv_t *r = arg;
    int c = accept(r->fd, NULL, NULL);
    if (c >= 0) {
        char req[512];
        if (r->n && read(c, req, sizeof req) > 0) {
            ssize_t w = write(c, r->bytes, r->n);
            (void)w;   /* a short write shows in the client's error */
        }
        close(c);
    }
    return NULL;
}

/* `trib --node` given a node's peer port (ZeroMQ answers with its greeting) or its data link port
 * (nothing comes back) says to give its HTTP address. */
Test(cli_net, a_port_that_does_not_speak_http_is_named_as_such)
{
    static const char zmtp[] = "\xff\0\0\0\0\0\0\0\x01\x7f\x03\x01NULL";
    raw_srv_t cases[] = {{-1, zmtp, sizeof zmtp - 1}, {-1, "", 0}};
    for (size_t i = 0; i < 2; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0 &&
                  getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
        cases[i].fd = fd;
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, raw_answer, &cases[i]), 0);
        char node[64];
        snprintf(node, sizeof node, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
        setenv("TRIB_NODE", node, 1);
        char *argv[] = {"status", NULL};
        run_t r = run_argv(1, argv, NULL);
        pthread_join(t, NULL);
        close(fd);
        cr_expect_eq(r.rc, 1, "case %zu", i);
        cr_expect(strstr(r.err, node) && (strstr(r.err, "give the node's HTTP address, its --http, not its peer port") ||
                                          strstr(r.err, "peer port (--listen) or data link port, give its HTTP address")),
                  "case %zu: %s", i, r.err);
        run_free(&r);
    }
}

/* ================================================================ against a canned node */

#define NODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NODE_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char members_json[] =
    "{\"members\":[{\"node_id\":\"" NODE_B "\",\"domain\":\"payments\",\"addr\":\"127.0.0.1:7470\","
    "\"http\":\"127.0.0.1:7480\",\"state\":\"alive\",\"incarnation\":3,\"self\":true},"
    "{\"node_id\":\"" NODE_A "\",\"domain\":\"growth\",\"addr\":\"10.0.0.2:7470\","
    "\"http\":\"10.0.0.2:7480\",\"state\":\"suspect\",\"incarnation\":12}]}";

Test(cli_cmd, members_table_and_json, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/members", 200, members_json, 0, 0 });
    run_t r = run("members", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out,
                     "DOMAIN    NODE                 ADDRESS         HTTP            STATE    INC  TRUST\n"
                     "growth    aaaaaaaaaaaa         10.0.0.2:7470   10.0.0.2:7480   suspect  12   unverified\n"
                     "payments  bbbbbbbbbbbb (self)  127.0.0.1:7470  127.0.0.1:7480  alive    3    unverified\n");
    run_free(&r);

    /* --json: the node's document, pretty, full ids; --node after the flag, TRIB_NODE unused */
    setenv("TRIB_NODE", "127.0.0.1:1", 1);
    r = run("members", "--json", "--node=http://" , NULL);
    cr_expect_eq(r.rc, 2);
    run_free(&r);
    char url[128];
    snprintf(url, sizeof url, "--node=http://%s/", srv.node);
    r = run("members", "--json", url, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    json_t *got = json_loads(r.out, 0, NULL), *want = json_loads(members_json, 0, NULL);
    cr_expect(json_equal(got, want), "%s", r.out);
    cr_expect(strstr(r.out, "\n  \"members\": [\n"), "not pretty: %s", r.out);
    json_decref(got);
    json_decref(want);
    run_free(&r);
}

static const char products_json[] =
    "{\"products\":[{\"id\":\"payments/settled-transactions\",\"version\":\"1.0.0\","
    "\"status\":\"active\",\"owners\":{\"business\":\"maria.lopez@example.com\","
    "\"technical\":\"payments-data@example.com\"},\"title\":\"Settled card transactions, every "
    "single one of them, with amounts in minor units\"},"
    "{\"id\":\"growth/signups\",\"version\":\"0.3.1\",\"status\":\"draft\","
    "\"owners\":{\"business\":\"li@example.com\"},\"title\":\"Signups\"}],\"total\":3}";

Test(cli_cmd, products_escapes_query_and_prints_table, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products", 200, products_json, 0, 0 });
    setenv("TRIB_NODE", srv.node, 1);
    run_t r = run("products", "settled", "--domain", "payments", "cards&co=1", "--tag=a b",
                  "--owner", "maria+x@example.com", "--status", "active", NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(srv.method, "GET");
    cr_expect_str_eq(srv.args, "q=settled cards&co=1\ndomain=payments\ntag=a b\n"
                               "owner=maria+x@example.com\nstatus=active\n");
    cr_expect_str_eq(r.out,
        "ID                             VERSION  STATUS  OWNER                    TITLE\n"
        "payments/settled-transactions  1.0.0    active  maria.lopez@example.com  "
        "Settled card transactions, every single one of them, with a…\n"
        "growth/signups                 0.3.1    draft   li@example.com           Signups\n"
        "(2 of 3 shown)\n");
    run_free(&r);

    r = run("products", NULL);
    cr_expect_eq(r.rc, 0);
    cr_expect_str_eq(srv.args, "");
    run_free(&r);
}

/* A restricted product seen without a grant is a stub (id, title, owners, classification): its row
 * says so instead of a bare "-", and a line under the table says why and how to ask. */
Test(cli_cmd, products_marks_restricted_stubs, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products", 200,
                         "{\"products\":[{\"id\":\"growth/signup-funnel\",\"title\":\"Signup funnel\","
                         "\"owners\":{\"business\":\"li@example.com\"},\"classification\":\"restricted\","
                         "\"stub\":true}],\"total\":1}", 0, 0 });
    run_t r = run("products", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out,
        "ID                    VERSION       STATUS  OWNER           TITLE\n"
        "growth/signup-funnel  (restricted)  -       li@example.com  Signup funnel\n"
        "(restricted): without a grant on it, a restricted product shows only its id, title, owners\n"
        "and classification; trib show ID says how to ask its owner\n");
    run_free(&r);
}

Test(cli_cmd, products_empty_listing, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products", 200, "{\"products\":[],\"total\":0}", 0, 0 });
    run_t r = run("products", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0);
    cr_expect_str_eq(r.out, "no products\n");
    run_free(&r);
    r = run("products", "--node", srv.node, "--tag", "x", NULL);
    cr_expect_str_eq(r.out, "no products match\n");
    run_free(&r);
}

/* --limit 0 (only the count and facets) or an --offset past the hits: an empty page of a
 * catalog that has products says how many there are, not "no products" (which it said). */
Test(cli_cmd, products_empty_page_of_a_catalog_with_products, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products", 200,
                         "{\"products\":[],\"total\":6,\"offset\":0,\"limit\":0,"
                         "\"facets\":{\"domain\":{\"payments\":4,\"growth\":2}}}", 0, 0 });
    run_t r = run("products", "--node", srv.node, "--limit", "0", NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "(0 of 6 shown)\ndomain: payments 4, growth 2\n");
    run_free(&r);
}

static const char show_json[] =
    "{\"id\":\"payments/settled-transactions\",\"domain\":\"payments\","
    "\"name\":\"settled-transactions\",\"title\":\"Settled card transactions\","
    "\"version\":\"1.0.0\",\"status\":\"active\",\"classification\":\"internal\","
    "\"owners\":{\"business\":\"maria.lopez@example.com\",\"technical\":\"payments-data@example.com\"},"
    "\"tags\":[\"finance\",\"cards\"],\"catalog_seq\":3,\"signer\":\"" NODE_B "\","
    "\"updated\":\"2026-11-24T17:00:00.000Z\",\"records\":20,\"owner_http\":\"127.0.0.1:7480\",\"manifest_seq\":2,"
    "\"owner_node\":{\"node_id\":\"" NODE_B "\",\"addr\":\"127.0.0.1:7470\",\"http\":\"127.0.0.1:7480\",\"state\":\"alive\"},"
    "\"manifest\":{\"name\":\"settled-transactions\",\"domain\":\"payments\",\"version\":\"1.0.0\","
    "\"description\":{\"purpose\":\"Every card transaction once settled.\","
    "\"usage\":\"Join on txn_id.\",\"limitations\":\"Lags up to 48 hours.\"},"
    "\"schema\":[{\"name\":\"txn_id\",\"logicalType\":\"string\",\"required\":true,\"primaryKey\":true},"
    "{\"name\":\"amount_minor\",\"logicalType\":\"integer\",\"required\":true},"
    "{\"name\":\"note\",\"logicalType\":\"string\"}],"
    "\"sla\":{\"freshness\":\"15m\",\"availability\":\"99.9%\"},"
    "\"outputPorts\":[{\"name\":\"settled\",\"type\":\"stream\"}]}}";

Test(cli_cmd, show_prints_a_readable_block, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products/payments/settled-transactions", 200, show_json, 0, 0 });
    run_t r = run("show", "--node", srv.node, "payments/settled-transactions", NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out,
        "id              payments/settled-transactions\n"
        "title           Settled card transactions\n"
        "version         1.0.0\n"
        "status          active\n"
        "classification  internal\n"
        "owners          maria.lopez@example.com (business), payments-data@example.com (technical)\n"
        "tags            finance, cards\n"
        "catalog seq     3\n"
        "manifest seq    2\n"
        "signer          " NODE_B "\n"
        "owner node      bbbbbbbbbbbb peer 127.0.0.1:7470 http 127.0.0.1:7480 (alive)\n"
        "updated         2026-11-24T17:00:00.000Z\n"
        "records         20\n"
        "owner_http      127.0.0.1:7480\n"
        "\n"
        "description\n"
        "  purpose      Every card transaction once settled.\n"
        "  usage        Join on txn_id.\n"
        "  limitations  Lags up to 48 hours.\n"
        "\n"
        "schema\n"
        "  NAME          TYPE     REQUIRED  KEY\n"
        "  txn_id        string   yes       yes\n"
        "  amount_minor  integer  yes\n"
        "  note          string   no\n"
        "\n"
        "other fields\n"
        "  sla          {\"freshness\": \"15m\", \"availability\": \"99.9%\"}\n"
        "  outputPorts  [{\"name\": \"settled\", \"type\": \"stream\"}]\n");
    run_free(&r);
}

/* The tables carry no bold, colour or other escape codes: redirected to a file (or piped into
 * another program) they are plain text. The renderer emits none on a terminal either, so there
 * is nothing for isatty or NO_COLOR to switch off. */
Test(cli_cmd, human_output_has_no_escape_codes, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/members", 200, members_json, 0, 0 });
    srv_route((route_t){ "GET", "/v1/products", 200, products_json, 0, 0 });
    srv_route((route_t){ "GET", "/v1/products/payments/settled-transactions", 200, show_json, 0, 0 });
    srv_route((route_t){ "GET", "/v1/status", 200,
        "{\"node_id\":\"" NODE_A "\",\"domain\":\"payments\",\"products\":2,"
        "\"digest\":{\"payments\":3},\"members\":{\"alive\":1}}", 0, 0 });
    setenv("TRIB_NODE", srv.node, 1);
    static const char *const cmds[][2] = {
        { "members", NULL }, { "products", NULL }, { "show", "payments/settled-transactions" },
        { "status", NULL },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *argv[3] = { (char *)cmds[i][0], (char *)cmds[i][1], NULL };
        run_t r = run_argv(cmds[i][1] ? 2 : 1, argv, NULL);
        cr_expect_eq(r.rc, 0, "%s: %s", cmds[i][0], r.err);
        cr_expect(strlen(r.out) > 20, "%s printed nothing", cmds[i][0]);
        cr_expect_null(strchr(r.out, '\x1b'), "%s wrote an escape code: %s", cmds[i][0], r.out);
        run_free(&r);
    }
}

Test(cli_cmd, http_errors_print_error_and_detail, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products/payments/nope", 404,
                         "{\"error\":\"not_found\",\"detail\":\"no product payments/nope\"}", 0, 0 });
    srv_route((route_t){ "GET", "/v1/status", 502, "<html>Bad gateway\nfrom proxy</html>", 0, 0 });
    srv_route((route_t){ "GET", "/v1/members", 200, "not json", 0, 0 });
    srv_route((route_t){ "DELETE", "/v1/products/payments/x", 409,
                         "{\"error\":\"conflict\",\"detail\":\"already\\nretired\"}", 0, 0 });
    setenv("TRIB_NODE", srv.node, 1);
    static const struct { const char *a[3]; const char *err; } cases[] = {
        { { "show", "payments/nope" }, "trib: show: 404 not_found: no product payments/nope\n" },
        { { "status" }, "trib: status: 502 Bad Gateway: <html>Bad gateway from proxy</html>\n" },
        { { "retire", "payments/x" }, "trib: retire: 409 conflict: already retired\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[3] = { (char *)cases[i].a[0], (char *)cases[i].a[1], NULL };
        run_t r = run_argv(cases[i].a[1] ? 2 : 1, argv, NULL);
        cr_expect_eq(r.rc, 1);
        cr_expect_str_eq(r.err, cases[i].err);
        cr_expect_str_eq(r.out, "");
        run_free(&r);
    }
    run_t r = run("members", NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect(strstr(r.err, "sent a reply that is not JSON"), "%s", r.err);
    run_free(&r);
}

/* A hostile or broken node: the parse error quotes its bytes, which must not reach the terminal
 * as control sequences; a huge list is joined in linear time. */
Test(cli_cmd, hostile_replies_are_neutralised, .init = srv_start, .fini = srv_stop, .timeout = 10)
{
    srv_route((route_t){ "GET", "/v1/members", 200, "\x1b]0;owned\x07\x1b[2J", 0, 0 });
    enum { NTAGS = 40000 };
    size_t cap = (size_t)NTAGS * 40 + 256, off = 0;
    char *big = malloc(cap);
    cr_assert_not_null(big);
    off += (size_t)snprintf(big, cap, "{\"id\":\"payments/x\",\"tags\":[");
    for (int i = 0; i < NTAGS; i++)
        off += (size_t)snprintf(big + off, cap - off, "%s\"tag-%030d\"", i ? "," : "", i);
    off += (size_t)snprintf(big + off, cap - off, "]}");
    cr_assert_lt(off, cap);
    srv_route((route_t){ "GET", "/v1/products/payments/x", 200, big, 0, 0 });

    run_t r = run("members", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect(strstr(r.err, "sent a reply that is not JSON"), "%s", r.err);
    for (const char *p = r.err; *p; p++)
        cr_expect((unsigned char)*p >= 0x20 || *p == '\n', "control byte 0x%02x in: %s", *p, r.err);
    run_free(&r);

    r = run("show", "--node", srv.node, "payments/x", NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    char want[128];
    snprintf(want, sizeof want, "tag-%030d, tag-%030d\n", NTAGS - 2, NTAGS - 1);
    cr_expect(r.out && strstr(r.out, want), "the last tags are missing");
    run_free(&r);
    free(big);
}

Test(cli_cmd, status_block_and_digest, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/status", 200,
        "{\"node_id\":\"" NODE_A "\",\"domain\":\"payments\",\"version\":\"0.1.0\","
        "\"http\":\"127.0.0.1:7480\",\"listen\":\"127.0.0.1:7470\",\"uptime_s\":3725,"
        "\"products\":2,\"digest\":{\"payments\":3,\"growth\":2},"
        "\"members\":{\"alive\":3,\"suspect\":1,\"dead\":0,\"left\":0}}", 0, 0 });
    run_t r = run("status", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out,
        "node      " NODE_A "\n"
        "domain    payments\n"
        "version   0.1.0\n"
        "peer      127.0.0.1:7470\n"
        "http      127.0.0.1:7480\n"
        "uptime    1h 2m\n"
        "products  2\n"
        "members   3 alive, 1 suspect, 0 dead, 0 left\n"
        "\n"
        "DOMAIN    HEAD-SEQ\n"
        "growth    2\n"
        "payments  3\n");
    run_free(&r);
}

/* ---------------------------------------------------------------- publish */

static const char manifest_yaml[] =
    "# a product\n"
    "name: settled-transactions\n"
    "domain: payments\n"
    "version: 1.0.0\n"
    "owners: {business: a@example.com}\n";

Test(cli_cmd, publish_sends_the_file_to_its_id, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "PUT", "/v1/products/payments/settled-transactions", 201,
                         "{\"id\":\"payments/settled-transactions\",\"catalog_seq\":3,"
                         "\"signer\":\"" NODE_A "\",\"status\":\"active\",\"created\":true}", 0, 0 });
    char *path = write_temp(manifest_yaml);
    run_t r = run("publish", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "published payments/settled-transactions: created, catalog seq 3\n");
    cr_expect_str_eq(srv.method, "PUT");
    cr_expect_str_eq(srv.ctype, "application/yaml");
    cr_expect_str_eq(srv.body, manifest_yaml);
    run_free(&r);

    /* JSON is sent as JSON; --json prints the reply */
    FILE *f = fopen(path, "w");
    fputs("{\"name\": \"settled-transactions\", \"domain\": \"payments\"}", f);
    fclose(f);
    r = run("publish", "--json", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(srv.ctype, "application/json");
    cr_expect(strstr(r.out, "\"catalog_seq\": 3"), "%s", r.out);
    run_free(&r);
    unlink(path);
    free(path);
}

Test(cli_cmd, publish_local_errors, .init = srv_start, .fini = srv_stop)
{
    static const struct { const char *text; const char *err; } cases[] = {
        { "", "is empty" },
        { "  \n\n", "is empty" },
        { "domain: payments\nversion: 1.0.0\n", ": name: required" },
        { "name: x\n", ": domain: required" },
        { "name: [a, b]\ndomain: payments\n", ": name: must be a string" },
        { "domain: payments\nname: Bad_Name\n",
          ": name: 'Bad_Name' is not a valid name (" STORE_NAME_RULE ") (line 2)" },
        { "name: x\ndomain: payments\n  bad: [\n", "malformed YAML" },
        { "name: x\nname: y\ndomain: p\n", "malformed YAML: duplicate key (line 2, column 1)" },
        { "- just\n- a list\n", "not a manifest" },
        { "\"just a string\"\n", "not a manifest" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_temp(cases[i].text);
        run_t r = run("publish", path, "--node", srv.node, NULL);
        cr_expect_eq(r.rc, 1, "case %zu", i);
        cr_expect(strncmp(r.err, "trib: publish: ", 15) == 0 && strstr(r.err, cases[i].err),
                  "case %zu: %s", i, r.err);
        cr_expect(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line: %s", r.err);
        run_free(&r);
        unlink(path);
        free(path);
    }
    run_t r = run("publish", "/nonexistent/manifest.yaml", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: publish: /nonexistent/manifest.yaml: no such file\n");
    run_free(&r);
    r = run("publish", "/tmp", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: publish: /tmp: is a directory, not a file\n");
    run_free(&r);
    /* 4 MiB and a byte: refused before it is parsed, naming the limit */
    size_t big = (4u << 20) + 1;
    char *text = malloc(big + 1), want[200];
    memset(text, '#', big);
    text[big] = '\0';
    char *path = write_temp(text);
    free(text);
    r = run("publish", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    snprintf(want, sizeof want, "trib: publish: %s: larger than 4 MiB (4194304 bytes), the limit for a manifest\n",
             path);
    cr_expect_str_eq(r.err, want);
    run_free(&r);
    unlink(path);
    free(path);
    cr_expect_eq(srv.requests, 0, "a bad manifest reached the node");
}

Test(cli_cmd, publish_reports_the_node_validation_error, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "PUT", "/v1/products/payments/settled-transactions", 400,
                         "{\"error\":\"bad_manifest\",\"detail\":\"owners.business: required (line 12)\"}",
                         0, 0 });
    char *path = write_temp(manifest_yaml);
    run_t r = run("publish", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: publish: 400 bad_manifest: owners.business: required (line 12)\n");
    run_free(&r);
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- put */

Test(cli_cmd, put_streams_the_file, .init = srv_start, .fini = srv_stop, .timeout = 30)
{
    srv_route((route_t){ "POST", "/v1/products/payments/tx/records", 201,
                         "{\"id\":\"payments/tx\",\"first_seq\":21,\"last_seq\":23,\"count\":3}", 0, 0 });
    const char *records = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
    char *path = write_temp(records);
    run_t r = run("put", "payments/tx", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "appended 3 records to payments/tx: seq 21..23\n");
    cr_expect_str_eq(srv.method, "POST");
    cr_expect_str_eq(srv.ctype, "application/x-ndjson");
    cr_expect_str_eq(srv.body, records);
    run_free(&r);
    /* a refusal names the file the line is in */
    srv_route((route_t){ "POST", "/v1/products/payments/tx/records", 400,
                         "{\"error\":\"bad_record\",\"detail\":\"line 2: amount: expected a string\"}", 0, 0 });
    r = run("put", "payments/tx", path, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    char said[512];
    snprintf(said, sizeof said, "trib: put: %s: 400 bad_record: line 2: amount: expected a string\n", path);
    cr_expect_str_eq(r.err, said);
    run_free(&r);
    srv_route((route_t){ "POST", "/v1/products/payments/tx/records", 201,
                         "{\"id\":\"payments/tx\",\"first_seq\":21,\"last_seq\":23,\"count\":3}", 0, 0 });

    /* stdin (a pipe: size unknown, sent chunked) */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], records, strlen(records)), (ssize_t)strlen(records));
    close(p[1]);
    cr_assert_neq(dup2(p[0], STDIN_FILENO), -1);
    close(p[0]);
    r = run("put", "--json", "payments/tx", "-", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(srv.body, records);
    cr_expect_str_eq(srv.te, "chunked");
    cr_expect(strstr(r.out, "\"first_seq\": 21"), "%s", r.out);
    run_free(&r);

    /* a named pipe streams as stdin does (put is for data of any length: no size limit, no refusal) */
    char fifo[] = "/tmp/trib-cli-fifo-XXXXXX";
    cr_assert(mkdtemp(fifo));
    char fpath[64];
    snprintf(fpath, sizeof fpath, "%s/records", fifo);
    cr_assert_eq(mkfifo(fpath, 0600), 0);
    pid_t w = fork();
    cr_assert_neq(w, -1);
    if (w == 0) {
        int fd = open(fpath, O_WRONLY);
        _exit(fd >= 0 && write(fd, records, strlen(records)) == (ssize_t)strlen(records) ? 0 : 1);
    }
    r = run("put", "payments/tx", fpath, "--node", srv.node, NULL);
    int ws = 0;
    cr_assert_eq(waitpid(w, &ws, 0), w);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(srv.body, records);
    run_free(&r);
    /* a manifest is read whole: a named pipe is refused at once (it kept publish waiting in open) */
    r = run("publish", fpath, "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    char want[128];
    snprintf(want, sizeof want, "trib: publish: %s: not a regular file (a named pipe)\n", fpath);
    cr_expect_str_eq(r.err, want);
    run_free(&r);
    unlink(fpath);
    rmdir(fifo);

    /* a file it cannot take is refused in the words of every file trib reads (gossip/textfile.h) */
    r = run("put", "payments/tx", "/nonexistent.ndjson", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: put: /nonexistent.ndjson: no such file\n");
    run_free(&r);
    r = run("put", "payments/tx", "/tmp", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: put: /tmp: is a directory, not a file\n");
    run_free(&r);
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------- credentials */

/* --token, --token-file and --cacert are written "--opt VALUE" or "--opt=VALUE", as every other
 * option, on every command that asks a node, and each command's --help lists them. "--token=T"
 * was refused as an unknown option by put and token issue, and silently dropped by the access
 * commands (whose help lists it): the request went without the token the user gave. */
Test(cli_cmd, credentials_take_both_option_forms, .init = srv_start, .fini = srv_stop)
{
    unsetenv("TRIB_TOKEN");
    srv_route((route_t){ "POST", "/v1/products/payments/tx/records", 201,
                         "{\"id\":\"payments/tx\",\"first_seq\":1,\"last_seq\":1,\"count\":1}", 0, 0 });
    srv_route((route_t){ "GET", "/v1/access/requests", 200, "[]", 0, 0 });
    srv_route((route_t){ "POST", "/v1/tokens", 201,
                         "{\"token\":\"trib1.new\",\"id\":\"00\",\"state\":\"valid\"}", 0, 0 });
    char *records = write_temp("{\"a\":1}\n");
    char *tokfile = write_temp("trib1.fromfile\n");
    cr_assert_eq(chmod(tokfile, 0600), 0);
    char tf[300];
    snprintf(tf, sizeof tf, "--token-file=%s", tokfile);
    struct { const char *argv[12]; const char *want; } cases[] = {
        { { "put", "payments/tx", records, "--node", srv.node, "--token=trib1.eq", NULL }, "Bearer trib1.eq" },
        { { "put", "payments/tx", records, "--node", srv.node, tf, NULL }, "Bearer trib1.fromfile" },
        { { "access", "pending", "--node", srv.node, "--token=trib1.acc", NULL }, "Bearer trib1.acc" },
        { { "audit", "--node", srv.node, "--token", "trib1.two", NULL }, "" },   /* no route: 404, still sent */
        { { "token", "issue", "--sub", "ci@payments", "--kind", "read", "--ttl", "1h", "--node", srv.node,
            "--token=trib1.adm", NULL }, "Bearer trib1.adm" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int argc = 0;
        while (cases[i].argv[argc])
            argc++;
        srv.auth[0] = '\0';
        run_t r = run_argv(argc, (char **)cases[i].argv, NULL);
        if (*cases[i].want) {
            cr_expect_eq(r.rc, 0, "%s %s: %s", cases[i].argv[0], cases[i].argv[argc - 1], r.err);
            cr_expect_str_eq(srv.auth, cases[i].want, "%s %s", cases[i].argv[0], cases[i].argv[argc - 1]);
        } else {
            cr_expect_str_eq(srv.auth, "Bearer trib1.two", "%s", cases[i].argv[0]);
        }
        run_free(&r);
    }
    static const char *const cmds[] = { "members", "products", "show", "publish", "retire", "put", "get",
                                        "subscribe", "status", "check", "history", "diff", "watch" };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_t r = run(cmds[i], "--help", NULL);
        cr_expect(strstr(r.out, "--token TOKEN") && strstr(r.out, "--token-file FILE") && strstr(r.out, "--cacert FILE"),
                  "trib %s --help does not say how to send a token:\n%s", cmds[i], r.out);
        run_free(&r);
    }
    run_t r = run("token", "issue", "--help", NULL);
    cr_expect(strstr(r.out, "--token TOKEN") && strstr(r.out, "--cacert FILE"), "%s", r.out);
    run_free(&r);
    unlink(records);
    unlink(tokfile);
    free(records);
    free(tokfile);
}

/* Every time the CLI prints is the API's: RFC 3339 UTC to the millisecond. The audit log and the
 * access tables cut it to the minute ("2026-12-07 05:26Z": two decisions of one minute could not be
 * told apart or matched with a log line), the version history to the second. */
Test(cli_cmd, times_print_to_the_millisecond, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/audit", 200,
                         "[{\"time_ms\":1796621174396,\"subject\":\"alice@growth\",\"token_id\":\"ab\",\"grant\":\"\","
                         "\"product\":\"payments/p\",\"entry_node\":\"" NODE_A "\",\"action\":\"read\",\"records\":0,"
                         "\"allowed\":false,\"reason\":\"grant_required\"}]", 0, 0 });
    srv_route((route_t){ "GET", "/v1/access/mine", 200,
                         "[{\"id\":\"grant-0123456789abcdef\",\"kind\":\"grant\",\"state\":\"granted\",\"product\":\"payments/p\","
                         "\"subject\":\"alice@growth\",\"fields\":[],\"days\":30,\"expires_ms\":1799213166171,"
                         "\"request\":\"req-0123456789abcdef\",\"purpose\":\"x\"}]", 0, 0 });
    srv_route((route_t){ "GET", "/v1/products/payments/p/history", 200,
                         "{\"id\":\"payments/p\",\"versions\":[{\"version\":\"1.0.0\",\"seq\":1,"
                         "\"time_ms\":1796621112276,\"signer\":\"" NODE_A "\",\"change_class\":\"initial\","
                         "\"breaking\":false,\"status\":\"active\"}]}", 0, 0 });
    struct { const char *argv[6]; const char *want; } cases[] = {
        { { "audit", "--node", srv.node, "--token", "trib1.x", NULL }, "2026-12-07T05:26:14.396Z refused read" },
        { { "access", "mine", "--node", srv.node, "--token", "trib1.x" }, "  2027-01-06T05:26:06.171Z  " },
        { { "history", "payments/p", "--node", srv.node, NULL }, "1.0.0    2026-12-07T05:25:12.276Z  " },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int argc = 0;
        while (argc < 6 && cases[i].argv[argc])
            argc++;
        run_t r = run_argv(argc, (char **)cases[i].argv, NULL);
        cr_expect_eq(r.rc, 0, "%s: %s", cases[i].argv[0], r.err);
        cr_expect(r.out && strstr(r.out, cases[i].want), "%s: want '%s' in:\n%s", cases[i].argv[0], cases[i].want,
                  r.out ? r.out : "");
        run_free(&r);
    }
}

/* `trib --node=URL CMD` is `trib CMD --node=URL`, as `trib --node URL CMD` is (node/main.c). */
Test(cli_cmd, leading_options_take_both_forms, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/access/requests", 200, "[]", 0, 0 });
    char cmd[600];
    snprintf(cmd, sizeof cmd, "env -u TRIB_TOKEN -u TRIB_NODE %s --node=%s --token=trib1.lead access pending 2>&1",
             h_trib_path(), srv.node);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[512] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s", cmd, out);
    cr_expect_str_eq(srv.auth, "Bearer trib1.lead", "%s: %s", cmd, out);
    cr_expect_str_eq(srv.path, "/v1/access/requests", "%s", out);
}

/* ---------------------------------------------------------------- get, subscribe */

static const char records_body[] =
    "{\"txn_id\":\"t1\",\"amount_minor\":100}\n"
    "{\"error\":\"not really\",\"amount_minor\":5}\n"
    "{\"txn_id\":\"t3\",\"amount_minor\":300}\n";

Test(cli_cmd, get_relays_records_as_they_arrive, .init = srv_start, .fini = srv_stop)
{
    /* 7-byte pieces: lines arrive split across callbacks. */
    srv_route((route_t){ "GET", "/v1/products/payments/tx/records", 200, records_body, 7, 0 });
    run_t r = run("get", "payments/tx", "--from", "2", "--limit=10", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, records_body);
    cr_expect_str_eq(r.err, "");
    cr_expect_str_eq(srv.args, "from=2\nlimit=10\n");
    run_free(&r);
}

Test(cli_cmd, get_stream_ending_in_an_error_line_fails, .init = srv_start, .fini = srv_stop)
{
    static const char body[] =
        "{\"a\":1}\n"
        "{\"error\":\"looks like one\",\"detail\":\"but more follows\"}\n"
        "{\"a\":2}\n"
        "{\"error\":\"owner_unreachable\",\"detail\":\"lost payments' node after seq 2\"}\n";
    srv_route((route_t){ "GET", "/v1/products/payments/tx/records", 200, body, 5, 0 });
    srv_route((route_t){ "GET", "/v1/products/payments/tx/stream", 200, body, 5, 0 });
    run_t r = run("get", "payments/tx", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.out, "{\"a\":1}\n"
                            "{\"error\":\"looks like one\",\"detail\":\"but more follows\"}\n"
                            "{\"a\":2}\n");
    cr_expect_str_eq(r.err, "trib: get: owner_unreachable: lost payments' node after seq 2\n");
    run_free(&r);
    r = run("subscribe", "payments/tx", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.err, "trib: subscribe: owner_unreachable: lost payments' node after seq 2\n");
    run_free(&r);
}

/* The seq to resume from: with the error of a read that failed midway (always, on stderr), and
 * after a read that ended well only when stderr is a terminal; stdout stays pure NDJSON. */
Test(cli_cmd, get_and_subscribe_say_where_to_resume, .init = srv_start, .fini = srv_stop)
{
    static const char failed[] =
        "{\"a\":1}\n{\"a\":2}\n{\"error\":\"owner_lost\",\"detail\":\"payments' node left\"}\n";
    srv_route_seq((route_t){ "GET", "/v1/products/payments/tx/records", 200, failed, 5, 0 }, "41");
    srv_route_seq((route_t){ "GET", "/v1/products/payments/tx/stream", 200, "{\"a\":1}\n", 3, 0 }, "7");
    srv_route_seq((route_t){ "GET", "/v1/products/payments/ok/records", 200, records_body, 9, 0 }, "41");
    srv_route_seq((route_t){ "GET", "/v1/products/payments/none/records", 200, "", 1, 0 }, "12");
    run_t r = run("get", "payments/tx", "--from", "41", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.out, "{\"a\":1}\n{\"a\":2}\n");
    cr_expect_str_eq(r.err, "trib: get: owner_lost: payments' node left "
                            "(last seq 42; resume with --from 43)\n");
    run_free(&r);
    r = run("subscribe", "payments/tx", "--from", "7", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect(strstr(r.err, "ended the stream (last seq 7; resume with --from 8)\n"), "%s", r.err);
    run_free(&r);
    r = run("get", "payments/ok", "--node", srv.node, NULL);   /* stderr not a terminal: quiet */
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, records_body);
    cr_expect_str_eq(r.err, "");
    run_free(&r);

    /* stderr a terminal: the hint after a read that ended well, stdout untouched. */
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    struct termios tio;
    cr_assert_eq(tcgetattr(slave, &tio), 0);
    cfmakeraw(&tio);
    cr_assert_eq(tcsetattr(slave, TCSANOW, &tio), 0);
    static const struct { const char *id, *hint; } tty_cases[] = {
        { "payments/ok", "trib: get: last seq 43; resume with --from 44\n" },
        { "payments/none", "trib: get: no record received; resume with --from 12\n" },
    };
    for (size_t i = 0; i < sizeof tty_cases / sizeof tty_cases[0]; i++) {
        size_t olen = 0;
        char *obuf = NULL;
        FILE *out = open_memstream(&obuf, &olen);
        FILE *err = fdopen(dup(slave), "w");
        char *argv[] = { "get", (char *)tty_cases[i].id, "--node", srv.node, NULL };
        int rc = cli_run(4, argv, out, err);
        fclose(out);
        fclose(err);
        cr_expect_eq(rc, 0);
        char got[256] = "";
        ssize_t n = read(master, got, sizeof got - 1);
        got[n > 0 ? n : 0] = '\0';
        cr_expect_str_eq(got, tty_cases[i].hint);
        cr_expect_str_eq(obuf, i == 0 ? records_body : "");
        free(obuf);
    }
    close(slave);
    close(master);
}

Test(cli_cmd, get_error_status_and_unterminated_last_line, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products/payments/gone/records", 410,
                         "{\"error\":\"retired\",\"detail\":\"payments/gone is retired\"}", 3, 0 });
    srv_route((route_t){ "GET", "/v1/products/payments/tx/records", 200, "{\"a\":1}\n{\"a\":2}", 4, 0 });
    run_t r = run("get", "payments/gone", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.out, "");
    cr_expect_str_eq(r.err, "trib: get: 410 retired: payments/gone is retired\n");
    run_free(&r);
    r = run("get", "payments/tx", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0);
    cr_expect_str_eq(r.out, "{\"a\":1}\n{\"a\":2}\n");
    run_free(&r);
}

Test(cli_cmd, get_long_lines_pass_through, .init = srv_start, .fini = srv_stop)
{
    /* Lines longer than the error-check window are streamed without being held. */
    size_t n = 200000;
    char *body = malloc(n + 64);
    strcpy(body, "{\"s\":\"");
    memset(body + 6, 'x', n);
    strcpy(body + 6 + n, "\"}\n{\"b\":2}\n");
    srv_route((route_t){ "GET", "/v1/products/payments/tx/records", 200, body, 1000, 0 });
    run_t r = run("get", "payments/tx", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.out, body);
    run_free(&r);
    free(body);
}

/* A memory stream that raises SIGINT once it has received `expect` bytes: the test's Ctrl-C,
 * pressed after the records were printed. */
static struct {
    size_t got, expect;
    char buf[4096];
} sig_out;

static ssize_t sig_write(void *cookie, const char *data, size_t len)
{
    (void)cookie;
    if (sig_out.got + len < sizeof sig_out.buf) {
        memcpy(sig_out.buf + sig_out.got, data, len);
        sig_out.got += len;
        sig_out.buf[sig_out.got] = '\0';
    }
    if (sig_out.got >= sig_out.expect)
        raise(SIGINT);
    return (ssize_t)len;
}

Test(cli_cmd, subscribe_exits_0_on_sigint, .init = srv_start, .fini = srv_stop, .timeout = 20)
{
    srv_route((route_t){ "GET", "/v1/products/payments/tx/stream", 200, records_body, 9, 1 });
    sig_out.expect = strlen(records_body);
    FILE *out = fopencookie(NULL, "w", (cookie_io_functions_t){ .write = sig_write });
    cr_assert_not_null(out);
    struct sigaction before;
    sigaction(SIGINT, NULL, &before); /* SIG_IGN when the suite runs in the background */
    char *argv[] = { "subscribe", "payments/tx", "--from", "1", "--node", srv.node, NULL };
    run_t r = run_argv(6, argv, out);
    fclose(out);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(sig_out.buf, records_body);
    cr_expect_str_eq(r.err, "");
    cr_expect_str_eq(srv.args, "from=1\n");
    /* SIGINT is back to the disposition it had before the command */
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    cr_expect(sa.sa_handler == before.sa_handler);
    run_free(&r);
}

Test(cli_cmd, subscribe_stream_ended_by_node, .init = srv_start, .fini = srv_stop)
{
    srv_route((route_t){ "GET", "/v1/products/payments/tx/stream", 200, "{\"a\":1}\n", 3, 0 });
    run_t r = run("subscribe", "payments/tx", "--node", srv.node, NULL);
    cr_expect_eq(r.rc, 1);
    cr_expect_str_eq(r.out, "{\"a\":1}\n");
    cr_expect(strstr(r.err, "ended the stream"), "%s", r.err);
    run_free(&r);
}

Test(cli_cmd, subscribe_ends_when_its_reader_goes_away, .init = srv_start, .fini = srv_stop,
     .timeout = 20)
{
    /* The stream stays open and idle: only the closed pipe can end the command. */
    srv_route((route_t){ "GET", "/v1/products/payments/tx/stream", 200, "", 1, 1 });
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    FILE *out = fdopen(p[1], "w");
    char *argv[] = { "subscribe", "payments/tx", "--node", srv.node, NULL };
    run_t r = run_argv(4, argv, out);
    fclose(out);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "");
    run_free(&r);

    /* A reader that goes away while records flow: writes fail with EPIPE, also exit 0. */
    srv.nroutes = 0;
    srv_route((route_t){ "GET", "/v1/products/payments/tx/records", 200, records_body, 9, 0 });
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    out = fdopen(p[1], "w");
    char *argv2[] = { "get", "payments/tx", "--node", srv.node, NULL };
    r = run_argv(4, argv2, out);
    fclose(out);
    cr_expect_eq(r.rc, 0, "%s", r.err);
    run_free(&r);
}
