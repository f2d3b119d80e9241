/* node/cli_gov.c - the `trib` governance commands: check, history, diff (DESIGN §14).
 *
 * watch: the change feed (GET /v1/catalog/changes) relayed line by line to stdout, as NDJSON.
 * Owns: their requests (POST .../check with the manifest, GET .../history, GET .../diff) and
 * their replies as text: one line per change with its verdict per mode and the bump it needs,
 * the overall verdict, and the exit code (check: 1 when publish would be refused).
 * Must not: speak HTTP itself (node/client.c), judge compatibility (the node does), or print
 * bytes from the node without cleaning them (cli_text_clean). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli.h"
#include "node/cmd_policy.h"
#include "node/cli_internal.h"
#include "node/cli_table.h"

static const char *str(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : dflt;
}

/* "B F Fu" style verdict cell for one change: the modes it is compatible under. */
static void verdict_cell(json_t *ch, char *out, size_t cap)
{
    json_t *vd = json_object_get(ch, "verdicts");
    int bw = json_is_true(json_object_get(vd, "BACKWARD"));
    int fw = json_is_true(json_object_get(vd, "FORWARD"));
    snprintf(out, cap, "%s", bw && fw ? "FULL" : bw ? "BACKWARD" : fw ? "FORWARD" : "NONE only");
}

/* The changes of a report as a table: path, change, compatible under, bump, breaking. */
static int print_changes(cli_ctx_t *c, json_t *changes)
{
    if (json_array_size(changes) == 0) {
        fprintf(c->out, "  no changes\n");
        return CLI_OK;
    }
    static const char *const head[] = {"PATH", "CHANGE", "COMPATIBLE UNDER", "BUMP", "BREAKS MODE"};
    cli_table_t *t = cli_table_new(5, head);
    if (!t)
        return cli_fail(c, "out of memory");
    cli_table_set_max(t, 0, 60);
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        char v[32];
        verdict_cell(ch, v, sizeof v);
        char *path = cli_text_clean(str(ch, "path", ""), 80);
        char *kind = cli_text_clean(str(ch, "change", ""), 40);
        const char *cells[] = {path, kind, v, str(ch, "bump", ""),
                               json_is_true(json_object_get(ch, "breaking")) ? "yes" : "no"};
        cli_table_add(t, cells);
        free(path);
        free(kind);
    }
    int rc = cli_table_print(t, c->out, "  ");
    cli_table_destroy(&t);
    return rc == 0 ? CLI_OK : cli_fail(c, "writing output failed");
}

/* ================================================================ check */

int cli_run_check(cli_ctx_t *c)
{
    char *text = NULL;
    size_t len = 0;
    char id[128];
    const char *ctype;
    int rc = cli_load_manifest(c, c->pos[0], &text, &len, id, sizeof id, &ctype);
    if (rc != CLI_OK)
        return rc;
    char path[CLI_PATH_LEN];
    snprintf(path, sizeof path, "/v1/products/%s/check", id);
    const char *query[] = {"revive", cli_opt(c, "revive"), NULL};
    client_req_t rq = {.method = "POST", .path = path, .query = query, .body = text, .body_len = len,
                       .upload_len = -1, .content_type = ctype};
    json_t *j;
    rc = cli_call_json(c, &rq, &j);
    free(text);
    if (rc != CLI_OK)
        return rc;
    int ok = json_is_true(json_object_get(j, "ok"));
    if (cli_opt(c, "json")) {
        rc = cli_print_json(c, j);
    } else {
        const char *latest = str(j, "latest", NULL);
        if (json_is_true(json_object_get(j, "created")))
            fprintf(c->out, "%s %s: new product (mode %s)\n", id, str(j, "version", "?"), str(j, "mode", "?"));
        else if (json_is_true(json_object_get(j, "unchanged")))
            fprintf(c->out, "%s %s: unchanged (the same as the published version); publish is a no-op\n", id,
                    str(j, "version", "?"));
        else {
            json_t *compat = json_object_get(j, "compatible");
            fprintf(c->out, "%s %s against %s: %s under %s; required bump: %s\n", id, str(j, "version", "?"),
                    latest ? latest : "?",
                    !compat ? "not compared" : json_is_true(compat) ? "compatible" : "NOT compatible",
                    str(j, "mode", "?"), str(j, "required_bump", "none"));
            if (compat)   /* not compared (a retired product): no list, rather than "no changes" */
                print_changes(c, json_object_get(j, "changes"));
        }
        if (ok) {
            fprintf(c->out, "publish would be accepted\n");
        } else {
            json_t *e = json_object_get(j, "error");
            char count[96];
            const char *cnt = policy_cmd_refusal_count(j, str(e, "detail", ""), count, sizeof count);
            char *d = cli_text_clean(cnt ? cnt : str(e, "detail", ""), 1000);
            fprintf(c->out, "publish would be refused: %s: %s\n", str(e, "error", "refused"), d ? d : "");
            free(d);
            policy_cmd_print_violation_list(c->out, json_object_get(j, "violations"), "  ");
        }
        policy_cmd_print_violation_list(c->out, json_object_get(j, "warnings"), "  ");   /* the policy set's, stored with it */
    }
    json_decref(j);
    return rc != CLI_OK ? rc : ok ? CLI_OK : CLI_FAIL;
}

/* ================================================================ history */

int cli_run_history(cli_ctx_t *c)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, "/history", &id, path);
    if (rc != CLI_OK)
        return rc;
    client_req_t rq = {.method = "GET", .path = path, .upload_len = -1};
    json_t *j;
    if ((rc = cli_call_json(c, &rq, &j)) != CLI_OK)
        return rc;
    if (cli_opt(c, "json")) {
        rc = cli_print_json(c, j);
        json_decref(j);
        return rc;
    }
    static const char *const head[] = {"VERSION", "TIME", "SIGNER", "SEQ", "CHANGE", "BREAKING", "STATUS"};
    cli_table_t *t = cli_table_new(7, head);
    if (!t) {
        json_decref(j);
        return cli_fail(c, "out of memory");
    }
    cli_table_set_max(t, 0, 40);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "versions"), i, v) {
        char when[32], seq[24], signer[13];
        cli_time_text((long long)json_integer_value(json_object_get(v, "time_ms")), when);
        snprintf(seq, sizeof seq, "%lld", (long long)json_integer_value(json_object_get(v, "seq")));
        snprintf(signer, sizeof signer, "%.12s", str(v, "signer", ""));
        char *ver = cli_text_clean(str(v, "version", ""), 40);
        const char *cells[] = {ver, when, signer, seq, str(v, "change_class", ""),
                               json_is_true(json_object_get(v, "breaking")) ? "yes" : "no", str(v, "status", "")};
        cli_table_add(t, cells);
        free(ver);
    }
    fprintf(c->out, "%s%s\n", id, json_is_true(json_object_get(j, "retired")) ? " (retired)" : "");
    rc = cli_table_print(t, c->out, NULL) == 0 ? CLI_OK : cli_fail(c, "writing output failed");
    cli_table_destroy(&t);
    json_decref(j);
    return rc;
}

/* ================================================================ diff */

int cli_run_diff(cli_ctx_t *c)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, "/diff", &id, path);
    if (rc != CLI_OK)
        return rc;
    const char *query[] = {"from", c->pos[1], "to", c->pos[2], NULL};
    client_req_t rq = {.method = "GET", .path = path, .query = query, .upload_len = -1};
    json_t *j;
    if ((rc = cli_call_json(c, &rq, &j)) != CLI_OK)
        return rc;
    if (cli_opt(c, "json")) {
        rc = cli_print_json(c, j);
        json_decref(j);
        return rc;
    }
    int compat = json_is_true(json_object_get(j, "compatible"));
    /* the mode the product declares: a _TRANSITIVE one is judged on this one pair, and says so */
    char *declared = cli_text_clean(str(j, "declared_mode", str(j, "mode", "?")), 40), mode[160];
    if (declared && strstr(declared, "_TRANSITIVE"))
        snprintf(mode, sizeof mode, "%s (checked against %.64s only)", declared, c->pos[1]);
    else
        snprintf(mode, sizeof mode, "%s", declared ? declared : "?");
    free(declared);
    fprintf(c->out, "%s %s -> %s: %s under %s; required bump: %s\n", id, c->pos[1], c->pos[2],
            compat ? "compatible" : "NOT compatible", mode, str(j, "required_bump", "none"));
    rc = print_changes(c, json_object_get(j, "changes"));
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(j, "changes"), i, ch) {
        char *msg = cli_text_clean(str(ch, "message", ""), 300);
        char *p = cli_text_clean(str(ch, "path", ""), 80);
        fprintf(c->out, "  - %s: %s\n", p ? p : "", msg ? msg : "");
        free(msg);
        free(p);
    }
    json_decref(j);
    return rc;
}

/* ================================================================ watch */

static volatile sig_atomic_t watch_stop;
static void on_watch_signal(int sig) { (void)sig; watch_stop = 1; }

typedef struct {
    FILE *out;
    int werr;
    char head[32];            /* the start of the line being received */
    size_t hlen;
    unsigned long long last;  /* the seq of the last event received (0: none) */
} watch_sink_t;

static int watch_sink(void *ctx, const char *data, size_t len)
{
    watch_sink_t *w = ctx;
    if (fwrite(data, 1, len, w->out) != len || fflush(w->out) != 0) {
        w->werr = errno;
        return -1;
    }
    for (size_t i = 0; i < len; i++) {   /* an event line starts {"seq":N (node/changes.c) */
        if (data[i] != '\n') {
            if (w->hlen < sizeof w->head - 1)
                w->head[w->hlen++] = data[i];
            continue;
        }
        w->head[w->hlen] = '\0';
        if (strncmp(w->head, "{\"seq\":", 7) == 0)
            w->last = strtoull(w->head + 7, NULL, 10);
        w->hlen = 0;
    }
    return 0;
}

int cli_run_watch(cli_ctx_t *c)
{
    const char *from;
    int rc = cli_arg_uint(c, "from", &from);
    if (rc != CLI_OK)
        return rc;
    const char *product = cli_opt(c, "product");
    if (product && !cli_valid_id(product))
        return cli_usage_error(c, "--product: '%s' is not a product id (DOMAIN/NAME)", product);
    const char *query[] = {"from", from, "domain", cli_opt(c, "domain"), "product", product,
                           "live", cli_opt(c, "no-follow") ? "0" : NULL, NULL};
    watch_sink_t w = {.out = c->out};
    watch_stop = 0;
    client_req_t rq = {.method = "GET", .path = "/v1/catalog/changes", .query = query, .upload_len = -1,
                       .long_lived = 1, .sink = watch_sink, .sink_ctx = &w, .stop = &watch_stop};
    int out_fd = fileno(c->out);
    if (out_fd >= 0)
        rq.watch_fd = &out_fd;
    struct sigaction stop = {.sa_handler = on_watch_signal}, ign = {.sa_handler = SIG_IGN};
    struct sigaction old_int, old_term, old_pipe;
    sigemptyset(&stop.sa_mask);
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &stop, &old_int);
    sigaction(SIGTERM, &stop, &old_term);
    sigaction(SIGPIPE, &ign, &old_pipe);
    client_reply_t rep;
    char err[1024];
    int cr = client_request(c->node, &rq, &rep, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    if (cr == 0 && (rep.status < 200 || rep.status > 299))
        rc = cli_fail_http(c, &rep);
    else if (cr == CLIENT_STOPPED || cr == CLIENT_GONE || (cr == CLIENT_SINK && w.werr == EPIPE))
        rc = CLI_OK;
    else if (cr == CLIENT_SINK)
        rc = cli_fail(c, "writing output: %s", strerror(w.werr));
    else if (cr < 0)
        rc = cli_fail_transport(c, err);
    else if (cli_opt(c, "no-follow"))
        rc = CLI_OK;
    else if (w.last)
        rc = cli_fail(c, "the node at %s ended the feed after seq %llu; resume with --from %llu", c->node, w.last,
                      w.last + 1);
    else
        rc = cli_fail(c, "the node at %s ended the feed; resume with --from the seq after the last event", c->node);
    client_reply_free(&rep);
    return rc;
}
