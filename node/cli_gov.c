/* node/cli_gov.c - the `trib` governance commands: check, history, diff (DESIGN §14).
 *
 * Owns: their requests (POST .../check with the manifest, GET .../history, GET .../diff) and
 * their replies as text: one line per change with its verdict per mode and the bump it needs,
 * the overall verdict, and the exit code (check: 1 when publish would be refused).
 * Must not: speak HTTP itself (node/client.c), judge compatibility (the node does), or print
 * bytes from the node without cleaning them (cli_text_clean). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void print_violations(cli_ctx_t *c, json_t *j)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "violations"), i, v) {
        char *msg = cli_text_clean(str(v, "message", ""), 400);
        char *path = cli_text_clean(str(v, "path", ""), 120);
        fprintf(c->out, "  %s %s: %s\n", str(v, "rule", "?"), path ? path : "", msg ? msg : "");
        free(msg);
        free(path);
    }
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
            print_changes(c, json_object_get(j, "changes"));
        }
        if (ok) {
            fprintf(c->out, "publish would be accepted\n");
        } else {
            json_t *e = json_object_get(j, "error");
            char *d = cli_text_clean(str(e, "detail", ""), 1000);
            fprintf(c->out, "publish would be refused: %s: %s\n", str(e, "error", "refused"), d ? d : "");
            free(d);
            print_violations(c, j);
        }
    }
    json_decref(j);
    return rc != CLI_OK ? rc : ok ? CLI_OK : CLI_FAIL;
}

/* ================================================================ history */

static void iso_time(long long ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", ms);
}

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
        iso_time((long long)json_integer_value(json_object_get(v, "time_ms")), when);
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
    fprintf(c->out, "%s %s -> %s: %s under %s; required bump: %s\n", id, c->pos[1], c->pos[2],
            compat ? "compatible" : "NOT compatible", str(j, "mode", "?"), str(j, "required_bump", "none"));
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
