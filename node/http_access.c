/* node/http_access.c - /v1/access and /v1/audit (node/http_access.h). */
#include <stdio.h>
#include "node/http_access.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/identity.h"
#include "gossip/log.h"
#include "gossip/prom.h"
#include "gossip/token.h"
#include "node/audit.h"
#include "node/auth.h"
#include "node/errtext.h"
#include "node/grants.h"
#include "node/node.h"

/* Refusal reasons counted in trib_access_refused_total: the access routes' refusals that are not
 * for want of a credential (those are trib_token_refused_total's, node/auth.c: one counter each). */
static const char *const reasons[] = {"not_found", "already_decided", "already_revoked", "bad_request", "bad_query",
                                      "bad_id", "retired", "no_grant_needed", "other"};
#define NREASONS (sizeof reasons / sizeof *reasons)
static atomic_ullong refused[NREASONS];

void http_access_count_refusal(const char *kind)
{
    size_t i = 0;
    while (i < NREASONS - 1 && strcmp(reasons[i], kind) != 0)
        i++;
    atomic_fetch_add(&refused[i], 1);
}

static atomic_ullong refusals_held;   /* refused reads not written: one like it was, within REFUSAL_AUDIT_MS */

void http_access_metrics(FILE *f)
{
    prom_family(f, "trib_access_refused_total", "counter",
                "Access requests, decisions, lists and audit reads refused for other than a credential, by "
                "reason (credential refusals: trib_token_refused_total).");
    for (size_t i = 0; i < NREASONS; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reasons[i]);
        prom_sample(f, "trib_access_refused_total", labels, atomic_load(&refused[i]));
    }
    uint64_t idx = 0, ign = 0, aw = 0, af = 0;
    store_access_counts(&idx, &ign);
    audit_counts(&aw, &af);
    prom_counter(f, "trib_access_entries_indexed_total", "Access entries indexed (local and from peers).", idx);
    prom_counter(f, "trib_access_entries_ignored_total",
                 "Access entries kept in their log but ignored by the index (wrong log, replayed id, decided "
                 "request, revoked or unknown grant).", ign);
    prom_counter(f, "trib_audit_events_total", "Events appended to this node's audit log.", aw);
    prom_counter(f, "trib_audit_failures_total", "Audit events that could not be written.", af);
    prom_counter(f, "trib_audit_refusals_held_total",
                 "Refused reads not written to the audit log: one of the same token id, node asked, product "
                 "and reason was, within 10 s (each refusal is counted in trib_token_refused_total).",
                 (uint64_t)atomic_load(&refusals_held));
}

static unsigned reply(json_t **out, unsigned status, const char *kind, const char *detail)
{
    char text[1024];   /* a detail may quote the request (a state, an id): JSON takes UTF-8 only */
    snprintf(text, sizeof text, "%s", detail);
    errtext_utf8(text);
    *out = json_pack("{s:s,s:s}", "error", kind, "detail", text);
    return status;
}

/* A refusal, counted once: a credential's in trib_token_refused_total, any other here. */
static unsigned error(json_t **out, unsigned status, const char *kind, const char *detail)
{
    if (status < 500 && !auth_count(kind))
        http_access_count_refusal(kind);
    return reply(out, status, kind, detail);
}

/* The caller from the Bearer token, verified by node/auth.c (cache, issuer keys, revocations):
 * 0, or the status with *out set. */
static unsigned caller(node_t *n, struct MHD_Connection *c, grants_caller_t *who, json_t **out)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    size_t len = 0;
    const char *t = auth_bearer(h, &len);
    if (!t)
        return error(out, 401, "token_required",
                     "this needs a token: send Authorization: Bearer trib1.… (trib --token, --token-file or $TRIB_TOKEN)");
    token_claims_t cl;
    auth_err_t e;
    if (auth_verify(n, t, len, &cl, &e) != 0) /* counted by auth_verify */
        return reply(out, (unsigned)e.status, e.kind, e.detail);
    memset(who, 0, sizeof *who);
    snprintf(who->subject, sizeof who->subject, "%s", cl.subject);
    snprintf(who->domain, sizeof who->domain, "%s", cl.domain);
    snprintf(who->scope, sizeof who->scope, "%s", cl.scope);
    snprintf(who->token_id, sizeof who->token_id, "%s", cl.id);
    who->kind = (int)cl.kind;
    return 0;
}

static unsigned finish(grants_result_t *r, json_t **out)
{
    if (r->status >= 200 && r->status < 300) {
        *out = r->body;
        return r->status;
    }
    return error(out, r->status ? r->status : 500, r->kind ? r->kind : "internal", r->detail);
}

static unsigned audit_get(node_t *n, struct MHD_Connection *c, const grants_caller_t *who, json_t **out)
{
    token_claims_t cl = {0};
    snprintf(cl.domain, sizeof cl.domain, "%s", who->domain);
    snprintf(cl.scope, sizeof cl.scope, "%s", who->scope);
    cl.kind = (token_kind_t)who->kind;
    token_decision_t d = token_allows(&cl, TOKEN_OP_ADMIN, n->cfg.domain);
    if (d != TOKEN_ALLOW) {
        char detail[256];
        snprintf(detail, sizeof detail, "the audit log of '%s' is read with an admin token of that domain",
                 n->cfg.domain);
        return error(out, 403, token_decision_name(d), detail);
    }
    const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    unsigned long long limit = 100;
    if (l && *l) {
        char *end;
        errno = 0;
        limit = isdigit((unsigned char)l[0]) ? strtoull(l, &end, 10) : 0;
        if (!isdigit((unsigned char)l[0]) || errno || *end || limit < 1 || limit > AUDIT_LIMIT_MAX) {
            char detail[128];
            snprintf(detail, sizeof detail, "limit: expected a whole number from 1 to %d", AUDIT_LIMIT_MAX);
            return error(out, 400, "bad_query", detail);
        }
    }
    char err[256];
    json_t *j = audit_read(n, (size_t)limit, err, sizeof err);
    if (!j)
        return error(out, 500, "storage", err);
    *out = j;
    return 200;
}

unsigned http_access(node_t *n, struct MHD_Connection *c, access_op_t op, const char *seg, const char *body,
                     size_t len, json_t **out)
{
    grants_caller_t who;
    unsigned st = caller(n, c, &who, out);
    if (st)
        return st;
    grants_result_t r;
    switch (op) {
    case ACCESS_OP_REQUEST:
        grants_request(n, &who, body, len, &r);
        break;
    case ACCESS_OP_LIST:
        grants_list(n, &who, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state"), &r);
        break;
    case ACCESS_OP_GRANT:
    case ACCESS_OP_DENY:
        grants_decide(n, &who, seg, op == ACCESS_OP_GRANT, body, len, &r);
        break;
    case ACCESS_OP_REVOKE:
        grants_revoke(n, &who, seg, body, len, &r);
        break;
    case ACCESS_OP_MINE:
        grants_mine(n, &who, &r);
        break;
    case ACCESS_OP_AUDIT:
        return audit_get(n, c, &who, out);
    default:
        return error(out, 404, "not_found", "no such access operation");
    }
    return finish(&r, out);
}

/* ------------------------------------------------------------------ routed reads: the owner's audit */

#define PROBE_AUDIT_MS 600000
#define REFUSAL_AUDIT_MS 10000   /* a refused read of one (token id, entry node, product, reason) */
#define PROBE_SLOTS 256
static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint8_t key[16];
    int64_t at;
} probe_seen[PROBE_SLOTS];

/* 1 when no decision of (what, token id, entry, product) was audited within window_ms: what is
 * "probe" for an allowed probe, the refusal's code for a refused read. */
static int audit_first(const char *what, const char *token_id, const char *entry, const char *product, int64_t now,
                       int64_t window_ms)
{
    uint8_t k[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof k);
    crypto_generichash_update(&st, (const uint8_t *)what, strlen(what) + 1);
    crypto_generichash_update(&st, (const uint8_t *)token_id, strlen(token_id) + 1);
    crypto_generichash_update(&st, (const uint8_t *)entry, strlen(entry) + 1);
    crypto_generichash_update(&st, (const uint8_t *)product, strlen(product));
    crypto_generichash_final(&st, k, sizeof k);
    size_t slot = ((size_t)k[0] | (size_t)k[1] << 8) % PROBE_SLOTS;
    pthread_mutex_lock(&probe_mu);
    int first = memcmp(probe_seen[slot].key, k, sizeof k) != 0 || now - probe_seen[slot].at >= window_ms;
    if (first) {
        memcpy(probe_seen[slot].key, k, sizeof k);
        probe_seen[slot].at = now;
    }
    pthread_mutex_unlock(&probe_mu);
    return first;
}

void *http_access_audit_open(void *ctx, const char *product, const uint8_t *token, size_t len, const uint8_t entry[32],
                             int live, int probe, int allowed, const char *kind)
{
    node_t *n = ctx;
    store_product_t p;
    char cls[16] = "internal";
    if (store_product_get(n->st, product, &p) == 0)
        auth_classification(n, product, p.manifest_seq, cls);
    if (strcmp(cls, "confidential") != 0 && strcmp(cls, "restricted") != 0)
        return NULL; /* only decisions on confidential and restricted data are audited */
    grants_read_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    token_claims_t cl; /* the owner's check decided (and counted any refusal): the subject only */
    if (auth_claims(n, (const char *)token, len, &cl) == 0) {
        snprintf(d->subject, sizeof d->subject, "%s", cl.subject);
        snprintf(d->token_id, sizeof d->token_id, "%s", cl.id);
        if (allowed)
            grants_active(n, cl.subject, product, clock_wall_ms(), &d->grant);
    }
    snprintf(d->product_id, sizeof d->product_id, "%s", product);
    identity_hex(entry, d->entry_node);
    snprintf(d->action, sizeof d->action, "%s", live || probe ? "stream" : "read");
    d->allowed = allowed;
    d->audited = 1;
    if (!allowed || probe) {
        /* an allowed probe once per PROBE_AUDIT_MS; a refusal once per REFUSAL_AUDIT_MS of its kind, so
         * a client repeating one (no token needed) cannot rotate the owner's history out of the log */
        if (!audit_first(allowed ? "probe" : kind ? kind : "", d->token_id, d->entry_node, product, clock_wall_ms(),
                         allowed ? PROBE_AUDIT_MS : REFUSAL_AUDIT_MS)) {
            if (!allowed)
                atomic_fetch_add(&refusals_held, 1);
            free(d);
            return NULL;
        }
        audit_event_t ev = {.time_ms = clock_wall_ms(), .subject = d->subject, .token_id = d->token_id,
                            .grant_id = d->grant.grant_id, .product_id = product, .entry_node = d->entry_node,
                            .action = d->action, .records = 0, .allowed = allowed,
                            .reason = allowed ? "a relay's feed subscriber, authorised by the owner" : kind};
        audit_record(n, &ev);
        free(d);
        return NULL;
    }
    return d;
}

void http_access_audit_end(void *ctx, void *handle, uint64_t records, const char *why)
{
    grants_read_t *d = handle;
    char reason[96];
    snprintf(reason, sizeof reason, "%s%s%s", d->grant.nfields ? "projected to the grant's fields" : "",
             why && *why && d->grant.nfields ? "; " : "", why && *why ? why : "");
    audit_event_t ev = {.time_ms = clock_wall_ms(), .subject = d->subject, .token_id = d->token_id,
                        .grant_id = d->grant.grant_id, .product_id = d->product_id, .entry_node = d->entry_node,
                        .action = d->action, .records = records, .allowed = 1, .reason = reason};
    audit_record(ctx, &ev);
    free(d);
}

char **http_access_owner_fields(void *ctx, const char *product, const uint8_t *token, size_t len)
{
    node_t *n = ctx;
    token_claims_t cl;
    store_product_t p;
    char cls[16] = "internal";
    if (auth_claims(n, (const char *)token, len, &cl) != 0 ||
        store_product_get(n->st, product, &p) != 0)
        return NULL;   /* the owner check refused it already, or the product has no record */
    auth_classification(n, product, p.manifest_seq, cls);
    size_t dl = strlen(cl.domain);
    if ((strcmp(cls, "confidential") != 0 && strcmp(cls, "restricted") != 0) ||
        (!strncmp(product, cl.domain, dl) && product[dl] == '/'))
        return NULL;   /* no grant needed: every field */
    grant_info_t g;
    if (grants_active(n, cl.subject, product, clock_wall_ms(), &g) != 1 || g.nfields == 0)
        return NULL;
    char **f = calloc(g.nfields + 1, sizeof *f);
    for (size_t i = 0; f && i < g.nfields; i++)
        if (!(f[i] = strdup(g.fields[i]))) {
            for (size_t k = 0; k < i; k++)
                free(f[k]);
            free(f);
            f = NULL;
        }
    if (!f) /* out of memory: an empty allow-list (records project to {}) rather than every field */
        f = calloc(1, sizeof *f);
    return f;
}

int http_access_local_grant(node_t *n, const char *product, const char *cls, const char *token, size_t len, int live,
                            grants_read_t *out)
{
    token_claims_t cl;
    if ((strcmp(cls, "confidential") != 0 && strcmp(cls, "restricted") != 0) || auth_claims(n, token, len, &cl) != 0)
        return 0;
    size_t dl = strlen(cl.domain);
    if (!strncmp(product, cl.domain, dl) && product[dl] == '/')
        return 0;   /* the product's own domain reads every field */
    return grants_check_read(n, cls, cl.subject, cl.domain, cl.id, product, NULL, live, out) && out->audited;
}
