/* node/http_gov.c - the governance routes of the HTTP API (http_gov.h).
 *
 * Owns: parsing their parameters, running the dry-run publish (node_publish_ex with dry_run: the
 * same gate a publish meets, nothing stored) and the history/diff views (node/gate.c), and their
 * JSON replies and errors.
 * Must not: store anything or hold an LMDB transaction across a network write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "node/auth.h"
#include "node/errtext.h"
#include "node/gate.h"
#include "node/http_gov.h"
#include "node/metrics.h"
#include "node/stream.h"
#include "storage/store.h"

static enum MHD_Result reply(const gov_call_t *g, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    char *body = realloc(s, n + 2);
    if (!body) {
        free(s);
        return MHD_NO;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(g->c, status, resp);
    MHD_destroy_response(resp);
    metrics_http(g->route, status);
    return ret;
}

static enum MHD_Result error(const gov_call_t *g, unsigned status, const char *kind, const char *detail)
{
    char text[1024];   /* details quote the request (a version asked for): valid UTF-8 for JSON */
    snprintf(text, sizeof text, "%s", detail);
    errtext_utf8(text);
    return reply(g, status, json_pack("{s:s,s:s}", "error", kind, "detail", text));
}

int gov_flag(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

json_t *gov_refusal_json(const node_result_t *r)
{
    if (!r->report)
        return NULL;
    json_t *j = json_pack("{s:s,s:s}", "error", r->kind ? r->kind : "refused", "detail", r->detail);
    const char *k;
    json_t *v;
    json_object_foreach(r->report, k, v)
        if (strcmp(k, "error") != 0 && strcmp(k, "ok") != 0)
            json_object_set(j, k, v);
    return j;
}

/* A restricted product beyond its stub (its history, a diff, a dry run against its versions) is
 * only for a caller who may see it in full: 1 with the 404 sent (*ret) for anyone else, the
 * refusal counted as a read's (docs/http-api.md, Tokens). */
static int hidden(const gov_call_t *g, const char *what, enum MHD_Result *ret)
{
    auth_err_t e;
    const char *h = MHD_lookup_connection_value(g->c, MHD_HEADER_KIND, "Authorization");
    if (auth_product_view(g->n, h, g->id, what, &e) == 0)
        return 0;
    *ret = error(g, (unsigned)e.status, e.kind, e.detail);
    return 1;
}

/* Statuses of the outcomes that are the caller's input, not the gate's verdict. */
static unsigned input_status(node_code_t code)
{
    switch (code) {
    case NODE_BAD_INPUT: return 400;
    case NODE_WRONG_DOMAIN: return 403;
    case NODE_NO_SPACE: return 507;
    default: return 500;
    }
}

enum MHD_Result gov_check(const gov_call_t *g)
{
    enum MHD_Result ret;
    if (hidden(g, "versions", &ret))
        return ret;
    node_publish_opts_t o = {.dry_run = 1, .want_report = 1, .revive = gov_flag(g->c, "revive")};
    node_result_t r;
    node_publish_ex(g->n, g->id, g->body ? g->body : "", g->len, &o, &r);
    if (!r.report) /* refused before the gate: the manifest itself, or its domain */
        return error(g, input_status(r.code), r.kind ? r.kind : "internal", r.detail);
    json_t *j = r.report;
    r.report = NULL;
    /* the policy set in force judges after the gate, as at publish: its violations join the
     * gate's, its warnings ride along, and its refusal is the check's answer (the report said
     * "ok" and trib check "publish would be accepted" to a manifest publish then refused) */
    if (r.extra) {
        json_t *list = json_object_get(j, "violations"), *pv = json_object_get(r.extra, "violations");
        if (json_is_array(list) && json_is_array(pv))
            json_array_extend(list, pv);
        json_t *pw = json_object_get(r.extra, "warnings"), *ver = json_object_get(r.extra, "policy_version");
        if (json_is_array(pw))
            json_object_set(j, "warnings", pw);
        if (ver)
            json_object_set(j, "policy_version", ver);
        json_decref(r.extra);
        r.extra = NULL;
    }
    if (r.code != NODE_OK && json_is_true(json_object_get(j, "ok"))) {
        json_object_set_new(j, "ok", json_false());
        json_object_set_new(j, "error", json_pack("{s:s,s:s}", "error", r.kind ? r.kind : "refused",
                                                  "detail", r.detail));
    }
    return reply(g, 200, j);
}

enum MHD_Result gov_history(const gov_call_t *g)
{
    char err[512];
    int status;
    enum MHD_Result ret;
    if (hidden(g, "history", &ret))
        return ret;
    json_t *j = gate_history_json(g->n, g->id, &status, err, sizeof err);
    if (!j)
        return error(g, (unsigned)status, status == 404 ? "not_found" : "storage", err);
    return reply(g, 200, j);
}

enum MHD_Result gov_diff(const gov_call_t *g)
{
    const char *from = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "to");
    if (!from || !*from || !to || !*to)
        return error(g, 400, "bad_query", "from and to: give two versions, e.g. ?from=1.0.0&to=2.0.0");
    if (strlen(from) > 256 || strlen(to) > 256)
        return error(g, 400, "bad_query", "from, to: a version is at most 256 characters");
    char err[512];
    int status;
    enum MHD_Result ret;
    if (hidden(g, "versions", &ret))
        return ret;
    json_t *j = gate_diff_json(g->n, g->id, from, to, &status, err, sizeof err);
    if (!j)
        return error(g, (unsigned)status, status == 404 ? "not_found" : "storage", err);
    return reply(g, 200, j);
}

enum MHD_Result gov_changes(const gov_call_t *g)
{
    const char *f = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "from");
    const char *lv = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "live");
    const char *domain = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "domain");
    const char *product = MHD_lookup_connection_value(g->c, MHD_GET_ARGUMENT_KIND, "product");
    uint64_t from = 1;
    if (f && *f) {
        char *end;
        errno = 0;
        if (f[0] < '0' || f[0] > '9' || (from = strtoull(f, &end, 10), *end) || errno)
            return error(g, 400, "bad_query", "from: expected a change seq (a whole number >= 0)");
    }
    int live = !(lv && (!strcmp(lv, "0") || !strcasecmp(lv, "false") || !strcasecmp(lv, "no")));
    char bad[300];   /* the search's wording for the same parameter */
    if (domain && *domain && !store_valid_name(domain, strlen(domain))) {
        snprintf(bad, sizeof bad, "domain: '%.70s' is not a valid domain name (" STORE_NAME_RULE ")", domain);
        return error(g, 400, "bad_query", bad);
    }
    if (product && *product && !store_valid_id(product)) {
        snprintf(bad, sizeof bad, "product: '%.140s' is not a product id (domain/name, each " STORE_NAME_RULE ")",
                 product);
        return error(g, 400, "bad_query", bad);
    }
    uint64_t last = 0;
    store_changes_last(g->n->st, &last);
    stream_t *s = stream_new_feed(g->n, g->c, from, live, domain, product);
    if (!s)
        return MHD_NO;
    /* who sees a restricted product's events in full, decided per page; out of memory fails
     * closed (no token: its events are stubs) */
    size_t tlen = 0;
    const char *token = auth_bearer(MHD_lookup_connection_value(g->c, MHD_HEADER_KIND, "Authorization"), &tlen);
    (void)stream_set_token(s, token, tlen);
    enum MHD_Result ret = stream_queue(g->c, s, last);
    if (ret == MHD_YES)
        metrics_http(g->route, 200);
    return ret;
}
