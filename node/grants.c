/* node/grants.c - access requests and the owner's decisions (node/grants.h): signing them into
 * this node's log, the rules of who may sign what, and the JSON of requests and grants. The read
 * side (grants_active, grants_check_read) is node/grants_read.c. */
#include "node/grants.h"
#include "node/known.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/clock.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/token.h"
#include "node/audit.h"
#include "node/view.h"

#define DAY_MS 86400000LL
#define DAYS_DEFAULT 30

/* Decisions on this node run one at a time: "not decided yet" is checked and the decision signed
 * under this lock, so two concurrent grants of one request cannot both be answered as made. */
static pthread_mutex_t decide_mu = PTHREAD_MUTEX_INITIALIZER;
/* Requests on this node run one at a time: "no such request pending yet" is checked and the
 * request signed under this lock, so a double click cannot sign two of the same request. */
static pthread_mutex_t request_mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(grants_result_t *r, unsigned status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(grants_result_t *r, unsigned status, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    r->status = status;
    r->kind = kind;
    r->body = NULL;
}

static void new_id(const char *prefix, char out[ACCESS_ID_MAX])
{
    uint8_t b[8];
    randombytes_buf(b, sizeof b);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, b, sizeof b);
    snprintf(out, ACCESS_ID_MAX, "%s%s", prefix, hex);
}

/* ---------------------------------------------------------------- JSON of rows */

static json_t *str_array(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The state of grant row g at now. */
static const char *grant_state(const Trib__AccessRow *g, int64_t now)
{
    if (g->revoked)
        return "revoked";
    return g->change->expires_ms <= now ? "expired" : "granted";
}

static json_t *grant_json(const Trib__AccessRow *g, int64_t now)
{
    const Trib__AccessChange *a = g->change;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:s,s:s,s:I}", "id", a->grant_id, "kind", "grant",
                          "state", grant_state(g, now), "product", a->product_id, "subject", a->subject, "fields",
                          str_array(a->fields, a->n_fields), "days", (json_int_t)a->days, "expires_ms",
                          (json_int_t)a->expires_ms, "request", a->request_id, "purpose", a->purpose ? a->purpose : "",
                          "granted_ms", (json_int_t)g->time_ms);
    if (j && g->revoked) {
        json_object_set_new(j, "revoked_ms", json_integer(g->revoked_ms));
        if (g->revoke_reason && *g->revoke_reason)
            json_object_set_new(j, "reason", json_string(g->revoke_reason));
    }
    return j;
}

/* A request with its state: requested, denied, or its grant's state. */
static json_t *request_json(node_t *n, const Trib__AccessRow *row, int64_t now)
{
    const Trib__AccessChange *a = row->change;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:s,s:I}", "id", a->request_id, "kind", "request",
                          "state", "requested", "product", a->product_id, "subject", a->subject, "purpose",
                          a->purpose ? a->purpose : "", "fields", str_array(a->fields, a->n_fields), "days",
                          (json_int_t)a->days, "expires_ms", (json_int_t)0, "via", row->domain, "requested_ms",
                          (json_int_t)row->time_ms);
    if (!j)
        return NULL;
    Trib__AccessRow *d = NULL;
    if (store_access_get(n->st, "d", a->request_id, &d) == 0) {
        if (d->change->kind == TRIB__ACCESS_KIND__ACCESS_DENY) {
            json_object_set_new(j, "state", json_string("denied"));
            json_object_set_new(j, "reason", json_string(d->change->reason ? d->change->reason : ""));
        } else {
            json_object_set_new(j, "grant", json_string(d->change->grant_id));
            Trib__AccessRow *g = NULL;
            if (store_access_get(n->st, "g", d->change->grant_id, &g) == 0) {
                json_object_set_new(j, "state", json_string(grant_state(g, now)));
                json_object_set_new(j, "expires_ms", json_integer(g->change->expires_ms));
                trib__access_row__free_unpacked(g, NULL);
            }
        }
        json_object_set_new(j, "decided_ms", json_integer(d->time_ms));
        trib__access_row__free_unpacked(d, NULL);
    }
    return j;
}

/* ---------------------------------------------------------------- signing */

/* Signs a into this node's log and hands it to the gossip loop. 0, or -1 with r set. */
static int publish(node_t *n, const Trib__AccessChange *a, grants_result_t *r)
{
    char why[GOSSIP_WHY_MAX];
    int synced = n->gossip ? gossip_own_synced(n->gossip, why, sizeof why) : 1;
    if (synced <= 0) {   /* -1: this node's certificate no longer holds, no retry mends it */
        fail(r, synced < 0 ? 403 : 503, synced < 0 ? "node_revoked" : "not_synced", "%s", why);
        return -1;
    }
    uint64_t seq = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[512];
    if (catalog_publish_access(n->cat, a, &seq, &bytes, &len, err, sizeof err) != 0) {
        char taken[sizeof r->detail];
        if (node_domain_taken(n, taken, sizeof taken))   /* another node's key holds the domain */
            fail(r, 409, "domain_taken", "%s", taken);
        else
            fail(r, 500, "publish_failed", "%s", err);
        return -1;
    }
    if (n->gossip)
        gossip_announce(n->gossip, bytes, len);
    free(bytes);
    node_notify(n);
    return 0;
}

/* The body as a JSON object of the keys in known only (node/known.h); NULL with r's 400. */
static json_t *parse_body(const char *body, size_t len, const char *known, grants_result_t *r)
{
    if (!body || len == 0)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fail(r, 400, "bad_request", "body: not JSON: %s at line %d column %d", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(r, 400, "bad_request", "body: expected a JSON object");
        return NULL;
    }
    const char *stray = known_stray_key(j, known);
    if (stray) {
        fail(r, 400, "bad_request", "%.40s: unknown field (known: %s)", stray, known);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* days from j (absent: def): 1..ACCESS_DAYS_MAX. */
static int body_days(json_t *j, unsigned def, unsigned *out, grants_result_t *r)
{
    json_t *d = json_object_get(j, "days");
    if (!d) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > ACCESS_DAYS_MAX) {
        fail(r, 400, "bad_request", "days: expected a whole number from 1 to %d", ACCESS_DAYS_MAX);
        return -1;
    }
    *out = (unsigned)json_integer_value(d);
    return 0;
}

/* An optional printable text member of at most ACCESS_TEXT_MAX bytes. */
static int body_text(json_t *j, const char *name, const char **out, grants_result_t *r)
{
    json_t *v = json_object_get(j, name);
    *out = "";
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) > ACCESS_TEXT_MAX) {
        fail(r, 400, "bad_request", "%s: expected a string of at most %d bytes", name, ACCESS_TEXT_MAX);
        return -1;
    }
    const char *s = json_string_value(v);
    for (size_t i = 0; s[i]; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            fail(r, 400, "bad_request", "%s: control byte 0x%02x at offset %zu", name, (unsigned char)s[i], i);
            return -1;
        }
    if (strlen(s) != json_string_length(v)) {
        fail(r, 400, "bad_request", "%s: holds a NUL byte", name);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- request */

/* 1 when name is a property of manifest m's schema. */
static int in_schema(const Trib__Manifest *m, const char *name)
{
    for (size_t i = 0; i < m->n_schema; i++)
        if (m->schema[i]->name && strcmp(m->schema[i]->name, name) == 0)
            return 1;
    return 0;
}

/* 1 when every name of x (n names) is among y's n names. */
static int names_within(char **x, char **y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < n && strcmp(x[i], y[k]) != 0)
            k++;
        if (k == n)
            return 0;
    }
    return 1;
}

typedef struct {
    node_t *n;
    const Trib__AccessChange *a;   /* the request asked now */
    json_t *found;                 /* the same request, pending, as request_json has it */
} same_ctx;

/* Stops at a request of the same subject, product, fields (in any order), days and purpose as c->a
 * that is not decided yet (on this node's replica). */
static int same_pending_cb(void *vctx, const Trib__AccessRow *row)
{
    same_ctx *c = vctx;
    const Trib__AccessChange *o = row->change, *a = c->a;
    if (strcmp(o->subject, a->subject) != 0 || strcmp(o->product_id, a->product_id) != 0 || o->days != a->days ||
        strcmp(o->purpose ? o->purpose : "", a->purpose) != 0 || o->n_fields != a->n_fields ||
        !names_within(a->fields, o->fields, a->n_fields) || !names_within(o->fields, a->fields, a->n_fields))
        return 0;
    Trib__AccessRow *d = NULL;
    if (store_access_get(c->n->st, "d", o->request_id, &d) != STORE_NOTFOUND) {
        if (d)
            trib__access_row__free_unpacked(d, NULL);
        return 0;   /* decided (or unreadable: then a new request is no worse than before) */
    }
    c->found = request_json(c->n, row, clock_wall_ms());
    return c->found != NULL;
}

void grants_request(node_t *n, const grants_caller_t *who, const char *body, size_t len, grants_result_t *r)
{
    memset(r, 0, sizeof *r);
    char sdom[64];
    if (strcmp(who->domain, n->cfg.domain) != 0)
        return fail(r, 403, "wrong_domain",
                    "your token is of domain '%s': ask through your home domain's node, not '%s' (a request is "
                    "signed into the requester's home log)",
                    who->domain, n->cfg.domain);
    if (!store_access_subject_domain(who->subject, sdom) || strcmp(sdom, who->domain) != 0)
        return fail(r, 403, "wrong_domain", "token subject '%s' is not local@%s: a request is made for a subject of "
                    "the token's own domain", who->subject, who->domain);
    json_t *j = parse_body(body, len, "product, purpose, fields, days", r);
    if (!j)
        return;
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    char rid[ACCESS_ID_MAX];
    const char *purpose = "", *fields[ACCESS_FIELDS_MAX];
    char *ops[] = {"read", "stream"};
    json_t *p = json_object_get(j, "product"), *f = json_object_get(j, "fields");
    Trib__SignedEntry *se = NULL;
    Trib__CatalogEntry *ce = NULL;
    if (!json_is_string(p) || !store_valid_id(json_string_value(p))) {
        fail(r, 400, "bad_request", "product: expected a product id domain/name (" STORE_NAME_RULE ")");
        goto out;
    }
    const char *pid = json_string_value(p);
    if (body_text(j, "purpose", &purpose, r) != 0)
        goto out;
    if (!*purpose) {
        fail(r, 400, "bad_request", "purpose: say what the data is for (a non-empty string)");
        goto out;
    }
    if (body_days(j, DAYS_DEFAULT, &a.days, r) != 0)
        goto out;
    store_product_t sp;
    int rc = store_product_get(n->st, pid, &sp);
    if (rc == STORE_NOTFOUND) {
        fail(r, 404, "not_found", "no product %s in this node's catalog", pid);
        goto out;
    }
    if (rc != 0) {
        fail(r, 500, "storage", "reading product %s failed", pid);
        goto out;
    }
    if (sp.retired) {
        fail(r, 409, "retired", "%s is retired", pid);
        goto out;
    }
    char pdom[64];
    snprintf(pdom, sizeof pdom, "%.*s", (int)strcspn(pid, "/"), pid);
    if (view_load_manifest(n, pdom, sp.manifest_seq, &se, &ce) != 0 || !ce->manifest) {
        fail(r, 500, "storage", "manifest of %s is unreadable", pid);
        goto out;
    }
    /* only confidential and restricted products are read with a grant (node/auth.c, auth_read): a
     * grant of a public or internal one would give nothing, and its owner would be asked for nothing */
    const char *pcls = ce->manifest->classification && *ce->manifest->classification ? ce->manifest->classification
                                                                                     : "internal";
    if (strcmp(pcls, "confidential") != 0 && strcmp(pcls, "restricted") != 0) {
        if (!strcmp(pcls, "public"))
            fail(r, 409, "no_grant_needed", "%s is public: anyone may read its records, without a token (trib get "
                 "%s); no access request is needed", pid, pid);
        else
            fail(r, 409, "no_grant_needed", "%s is %s: any valid token of a federation member domain reads its "
                 "records, yours included (trib get %s with --token, --token-file or $TRIB_TOKEN; over HTTP "
                 "Authorization: Bearer trib1.…); no access request is needed", pid, pcls, pid);
        goto out;
    }
    /* a token of the product's own domain reads it without a grant (node/auth.c, own_domain): a
     * grant is how other domains get in, so one for its own people would give nothing either */
    if (!strcmp(pdom, who->domain)) {
        fail(r, 409, "no_grant_needed", "%s is of your own domain '%s': its tokens read its records without a grant "
             "(trib get %s with --token, --token-file or $TRIB_TOKEN; grants are how other domains get in); no access "
             "request is needed", pid, who->domain, pid);
        goto out;
    }
    size_t nf = 0;
    if (f && !json_is_array(f)) {
        fail(r, 400, "bad_request", "fields: expected an array of field names");
        goto out;
    }
    if (json_array_size(f) > ACCESS_FIELDS_MAX) {
        fail(r, 400, "bad_request", "fields: %zu names, at most %d", json_array_size(f), ACCESS_FIELDS_MAX);
        goto out;
    }
    /* A restricted product's schema is not shown to a requester who may not see it in full (its
     * stub, issue 11): its field names are not checked against it, or the refusal would tell
     * which names it has (a granted unknown name projects to nothing). */
    char cls[16];
    grant_info_t gi;
    size_t sdl = strlen(who->domain);
    int blind = grants_classification(n, pid, cls) == 0 && !strcmp(cls, "restricted") &&
                !(strncmp(pid, who->domain, sdl) == 0 && pid[sdl] == '/') &&
                grants_active(n, who->subject, pid, clock_wall_ms(), &gi) != 1;
    for (size_t i = 0; i < json_array_size(f); i++) {
        json_t *v = json_array_get(f, i);
        const char *name = json_string_value(v);
        if (!name || !*name || json_string_length(v) > 64 || (!blind && !in_schema(ce->manifest, name))) {
            fail(r, 400, "bad_request", "fields[%zu]: %s%.64s%s is not a field of %s's schema", i, name ? "'" : "",
                 name ? name : "not a string", name ? "'" : "", pid);
            goto out;
        }
        fields[nf++] = name;
    }
    new_id("req-", rid);
    a.kind = TRIB__ACCESS_KIND__ACCESS_REQUEST;
    a.request_id = rid;
    a.product_id = (char *)pid;
    a.subject = (char *)who->subject;
    a.purpose = (char *)purpose;
    a.operations = ops;
    a.n_operations = 2;
    a.fields = (char **)fields;
    a.n_fields = nf;
    a.token_id = (char *)who->token_id;
    char why[256];
    if (store_access_shape(&a, why, sizeof why) != 0) {
        fail(r, 400, "bad_request", "%s", why);
        goto out;
    }
    /* the same request asked again while the first waits for the owner (a double click, a script
     * run twice) is answered with the first: one request for the owner to decide, not two */
    pthread_mutex_lock(&request_mu);
    same_ctx same = {.n = n, .a = &a};
    if (store_access_scan(n->st, "r", same_pending_cb, &same) != 0) {
        pthread_mutex_unlock(&request_mu);
        fail(r, 500, "storage", "reading the access index failed: %s", store_last_error());
        goto out;
    }
    if (same.found) {
        pthread_mutex_unlock(&request_mu);
        json_object_set_new(same.found, "existing", json_true());
        r->body = same.found;
        r->status = 200;
        goto out;
    }
    int signed_ok = publish(n, &a, r) == 0;
    pthread_mutex_unlock(&request_mu);
    if (!signed_ok)
        goto out;
    log_info("access request %s by %s for %s (token %s)", rid, who->subject, pid, who->token_id);
    Trib__AccessRow *row = NULL;
    if (store_access_get(n->st, "r", rid, &row) == 0) {
        r->body = request_json(n, row, clock_wall_ms());
        trib__access_row__free_unpacked(row, NULL);
    }
    r->status = r->body ? 201 : 500;
    if (!r->body)
        fail(r, 500, "storage", "request %s was signed but is not in the access index", rid);
out:
    view_free_entry(&se, &ce);
    json_decref(j);
}

/* ---------------------------------------------------------------- decisions */

/* The caller may decide for product pid on this node: a write/admin token of this domain. */
static int may_decide(node_t *n, const grants_caller_t *who, const char *pid, grants_result_t *r)
{
    if (strcmp(who->domain, n->cfg.domain) != 0) {
        fail(r, 403, "wrong_domain", "only a write or admin token of domain '%s' decides on its products; "
             "this token is of '%s'", n->cfg.domain, who->domain);
        return 0;
    }
    token_claims_t cl = {0};
    snprintf(cl.domain, sizeof cl.domain, "%s", who->domain);
    snprintf(cl.scope, sizeof cl.scope, "%s", who->scope);
    cl.kind = (token_kind_t)who->kind;
    token_decision_t d = token_allows(&cl, TOKEN_OP_WRITE, pid);
    if (d != TOKEN_ALLOW) {
        fail(r, 403, token_decision_name(d), "deciding on %s needs a write or admin token of '%s' covering it", pid,
             n->cfg.domain);
        return 0;
    }
    return 1;
}

static void audit_decision(node_t *n, const grants_caller_t *who, const char *what, const char *product,
                           const char *grant, const char *why)
{
    char me[ID_HEX_LEN];
    node_id_hex(n, me);
    audit_event_t e = {.time_ms = clock_wall_ms(), .subject = who->subject, .token_id = who->token_id, .grant_id = grant,
                       .product_id = product, .entry_node = me, .action = what, .allowed = 1,
                       .reason = why};
    audit_record(n, &e);
}

void grants_decide(node_t *n, const grants_caller_t *who, const char *request_id, int grant, const char *body,
                   size_t len, grants_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (!store_access_valid_id(request_id, "req-"))
        return fail(r, 400, "bad_id", "'%.64s' is not a request id (req- and 16 hex characters)", request_id);
    json_t *j = parse_body(body, len, grant ? "days" : "reason", r);
    if (!j)
        return;
    Trib__AccessRow *req = NULL, *d = NULL;
    int capped = 0;
    pthread_mutex_lock(&decide_mu);
    int rc = store_access_get(n->st, "r", request_id, &req);
    if (rc == STORE_NOTFOUND) {
        fail(r, 404, "not_found", "no access request %s in this node's replica (not yet gossiped here?)", request_id);
        goto out;
    }
    if (rc != 0) {
        fail(r, 500, "storage", "reading request %s failed", request_id);
        goto out;
    }
    const Trib__AccessChange *q = req->change;
    char pdom[64], at[300];
    snprintf(pdom, sizeof pdom, "%.*s", (int)strcspn(q->product_id, "/"), q->product_id);
    if (strcmp(pdom, n->cfg.domain) != 0) {   /* before the token: the wrong node, whoever asks */
        node_owner_cmd(n, pdom, at, sizeof at);
        fail(r, 403, "wrong_domain", "request %s is for %s, a product of '%s': only its owner decides, on a node of "
             "'%s'%s; this node is of '%s'", request_id, q->product_id, pdom, pdom, at, n->cfg.domain);
        goto out;
    }
    if (!may_decide(n, who, q->product_id, r))
        goto out;
    if ((rc = store_access_get(n->st, "d", request_id, &d)) == 0) {
        fail(r, 409, "already_decided", "request %s was already %s", request_id,
             d->change->kind == TRIB__ACCESS_KIND__ACCESS_GRANT ? "granted" : "denied");
        goto out;
    }
    if (rc != STORE_NOTFOUND) {
        fail(r, 500, "storage", "reading the decisions of %s failed", request_id);
        goto out;
    }
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    char gid[ACCESS_ID_MAX] = "";
    const char *reason = "";
    a.request_id = (char *)request_id;
    a.product_id = q->product_id;
    a.subject = q->subject;
    a.purpose = q->purpose;
    a.token_id = (char *)who->token_id;
    if (grant) {
        if (body_days(j, q->days ? q->days : DAYS_DEFAULT, &a.days, r) != 0)
            goto out;
        new_id("grant-", gid);
        a.kind = TRIB__ACCESS_KIND__ACCESS_GRANT;
        a.grant_id = gid;
        a.fields = q->fields;          /* the owner grants what was asked, never more */
        a.n_fields = q->n_fields;
        a.operations = q->operations;
        a.n_operations = q->n_operations;
        a.expires_ms = clock_wall_ms() + (int64_t)a.days * DAY_MS;
        if (n->cert_not_after_ms > 0 && a.expires_ms > n->cert_not_after_ms) {
            a.expires_ms = n->cert_not_after_ms; /* chartered: never beyond the issuer's certificate */
            capped = 1;
        }
    } else {
        if (body_text(j, "reason", &reason, r) != 0)
            goto out;
        a.kind = TRIB__ACCESS_KIND__ACCESS_DENY;
        a.reason = (char *)reason;
    }
    if (publish(n, &a, r) != 0)
        goto out;
    audit_decision(n, who, grant ? "grant" : "deny", q->product_id, gid, grant ? q->purpose : reason);
    log_info("access request %s %s by %s (token %s)%s%s", request_id, grant ? "granted" : "denied", who->subject,
             who->token_id, grant ? " as " : "", gid);
    r->body = request_json(n, req, clock_wall_ms());
    if (r->body && grant) {   /* the grant's object: its id, and the request it answers */
        Trib__AccessRow *g = NULL;
        if (store_access_get(n->st, "g", gid, &g) == 0) {
            json_decref(r->body);
            r->body = grant_json(g, clock_wall_ms());
            trib__access_row__free_unpacked(g, NULL);
        }
    }
    if (r->body && capped) {
        char until[32], serial[17];
        trust_time_text(n->cert_not_after_ms, until);
        cert_serial_text(n->cert_serial, serial);
        json_object_set_new(r->body, "capped_by_certificate", json_true());
        json_object_set_new(r->body, "detail",
                            json_sprintf("the grant expires at %s, when this node's certificate for domain '%s' "
                                         "(serial %s) ends, not after %u days: a grant never outlives its issuer's "
                                         "certificate", until, n->cfg.domain, serial, a.days));
    }
    r->status = r->body ? 200 : 500;
    if (!r->body)
        fail(r, 500, "internal", "out of memory");
out:
    pthread_mutex_unlock(&decide_mu);
    if (req)
        trib__access_row__free_unpacked(req, NULL);
    if (d)
        trib__access_row__free_unpacked(d, NULL);
    json_decref(j);
}

void grants_revoke(node_t *n, const grants_caller_t *who, const char *grant_id, const char *body, size_t len,
                   grants_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (!store_access_valid_id(grant_id, "grant-"))
        return fail(r, 400, "bad_id", "'%.64s' is not a grant id (grant- and 16 hex characters)", grant_id);
    json_t *j = parse_body(body, len, "reason", r);
    if (!j)
        return;
    const char *reason = "";
    Trib__AccessRow *g = NULL;
    pthread_mutex_lock(&decide_mu);
    if (body_text(j, "reason", &reason, r) != 0)
        goto out;
    int rc = store_access_get(n->st, "g", grant_id, &g);
    if (rc == STORE_NOTFOUND) {
        fail(r, 404, "not_found", "no grant %s in this node's replica", grant_id);
        goto out;
    }
    if (rc != 0) {
        fail(r, 500, "storage", "reading grant %s failed", grant_id);
        goto out;
    }
    if (strcmp(g->domain, n->cfg.domain) != 0) {   /* before the token: the wrong node, whoever asks */
        char at[300];
        node_owner_cmd(n, g->domain, at, sizeof at);
        fail(r, 403, "wrong_domain", "grant %s was made by '%s': only its owner revokes it, on a node of '%s'%s; "
             "this node is of '%s'", grant_id, g->domain, g->domain, at, n->cfg.domain);
        goto out;
    }
    if (!may_decide(n, who, g->change->product_id, r))
        goto out;
    if (g->revoked) {
        fail(r, 409, "already_revoked", "grant %s was already revoked", grant_id);
        goto out;
    }
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    a.kind = TRIB__ACCESS_KIND__ACCESS_REVOKE;
    a.grant_id = (char *)grant_id;
    a.request_id = g->change->request_id;
    a.product_id = g->change->product_id;
    a.subject = g->change->subject;
    a.reason = (char *)reason;
    a.token_id = (char *)who->token_id;
    if (publish(n, &a, r) != 0)
        goto out;
    audit_decision(n, who, "revoke", g->change->product_id, grant_id, reason);
    log_info("grant %s revoked by %s (token %s)", grant_id, who->subject, who->token_id);
    trib__access_row__free_unpacked(g, NULL);
    g = NULL;
    if (store_access_get(n->st, "g", grant_id, &g) == 0)
        r->body = grant_json(g, clock_wall_ms());
    r->status = r->body ? 200 : 500;
    if (!r->body)
        fail(r, 500, "storage", "grant %s was revoked but cannot be read back", grant_id);
out:
    pthread_mutex_unlock(&decide_mu);
    if (g)
        trib__access_row__free_unpacked(g, NULL);
    json_decref(j);
}

/* ---------------------------------------------------------------- lists */

typedef struct {
    node_t *n;
    int64_t now;
    const char *state;       /* filter, or NULL */
    const char *domain;      /* product domain filter, or NULL */
    const char *subject;     /* subject filter, or NULL */
    json_t *out;
} list_ctx;

static int list_request_cb(void *vctx, const Trib__AccessRow *row)
{
    list_ctx *c = vctx;
    const Trib__AccessChange *a = row->change;
    size_t dl = c->domain ? strlen(c->domain) : 0;
    if (c->domain && (strncmp(a->product_id, c->domain, dl) != 0 || a->product_id[dl] != '/'))
        return 0;
    if (c->subject && strcmp(a->subject, c->subject) != 0)
        return 0;
    json_t *j = request_json(c->n, row, c->now);
    if (!j)
        return 0;
    if (c->state && strcmp(json_string_value(json_object_get(j, "state")), c->state) != 0) {
        json_decref(j);
        return 0;
    }
    json_array_append_new(c->out, j);
    return json_array_size(c->out) >= 10000;   /* bounded answer */
}

static int mine_grant_cb(void *vctx, const Trib__AccessRow *row)
{
    list_ctx *c = vctx;
    if (strcmp(row->change->subject, c->subject) != 0)
        return 0;
    json_t *j = grant_json(row, c->now);
    if (j)
        json_array_append_new(c->out, j);
    return json_array_size(c->out) >= 20000;
}

static int valid_state(const char *s)
{
    static const char *const states[] = {"requested", "granted", "denied", "revoked", "expired"};
    for (size_t i = 0; i < sizeof states / sizeof *states; i++)
        if (strcmp(s, states[i]) == 0)
            return 1;
    return 0;
}

void grants_list(node_t *n, const grants_caller_t *who, const char *state, grants_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (state && *state && !valid_state(state))
        return fail(r, 400, "bad_query", "state: '%.32s' is not requested, granted, denied, revoked or expired",
                    state);
    if (strcmp(who->domain, n->cfg.domain) != 0) {
        char at[300];
        node_owner_cmd(n, who->domain, at, sizeof at);
        return fail(r, 403, "wrong_domain", "this node lists the requests for products of '%s' to a write or admin "
                    "token of '%s'; your token is of '%s': its requests are listed on a node of '%s'%s",
                    n->cfg.domain, n->cfg.domain, who->domain, who->domain, at);
    }
    if (who->kind < TOKEN_KIND_WRITE)
        return fail(r, 403, "kind_insufficient",
                    "the requests for '%s' are listed to a write or admin token of that domain", n->cfg.domain);
    list_ctx c = {.n = n, .now = clock_wall_ms(), .state = state && *state ? state : NULL, .domain = n->cfg.domain,
                  .out = json_array()};
    if (store_access_scan(n->st, "r", list_request_cb, &c) != 0) {
        json_decref(c.out);
        return fail(r, 500, "storage", "reading the access index failed: %s", store_last_error());
    }
    r->status = 200;
    r->body = c.out;
}

void grants_mine(node_t *n, const grants_caller_t *who, grants_result_t *r)
{
    memset(r, 0, sizeof *r);
    list_ctx c = {.n = n, .now = clock_wall_ms(), .subject = who->subject, .out = json_array()};
    if (store_access_scan(n->st, "r", list_request_cb, &c) != 0 ||
        store_access_scan(n->st, "g", mine_grant_cb, &c) != 0) {
        json_decref(c.out);
        return fail(r, 500, "storage", "reading the access index failed: %s", store_last_error());
    }
    r->status = 200;
    r->body = c.out;
}
