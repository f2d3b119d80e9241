/* node/grants_read.c - the read side of grants (node/grants.h): whether a subject holds an active
 * grant, the owner's decision on a read of confidential or restricted data, and its audit.
 *
 * Owns: grants_active, grants_revoked, grants_ended, grants_lapsed, grants_fields, grants_fields_cover, grants_check_read, grants_audit_served, grants_classification.
 * Must not: sign anything (node/grants.c does), parse tokens, or project records itself
 * (storage/project.h, called by node/stream.c and the owner side of routed reads). */
#include "node/grants.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/clock.h"
#include "node/audit.h"
#include "node/view.h"

/* ---------------------------------------------------------------- grants_active */

typedef struct {
    int64_t now;
    char sdomain[64];
    grant_info_t *out;
    int found, all;     /* all: an active grant without an allow-list (every field) */
    int over;           /* the union had more than ACCESS_FIELDS_MAX fields */
    const char *only;   /* the second pass: copy this grant's fields alone */
} active_ctx;

static int active_row(const active_ctx *c, const Trib__AccessRow *g)
{
    const Trib__AccessChange *a = g->change;
    char pdom[64];
    snprintf(pdom, sizeof pdom, "%.*s", (int)strcspn(a->product_id, "/"), a->product_id);
    return !g->revoked && a->expires_ms > c->now && strcmp(g->domain, pdom) == 0;
}

static void add_fields(active_ctx *c, const Trib__AccessChange *a)
{
    grant_info_t *o = c->out;
    for (size_t i = 0; i < a->n_fields && !c->all; i++) {
        size_t k = 0;
        while (k < o->nfields && strcmp(o->fields[k], a->fields[i]) != 0)
            k++;
        if (k < o->nfields)
            continue;
        if (o->nfields == ACCESS_FIELDS_MAX) {
            c->over = 1;
            return;
        }
        snprintf(o->fields[o->nfields++], sizeof o->fields[0], "%s", a->fields[i]);
    }
}

/* Every active grant counts: the fields are the union of their allow-lists (every field when one
 * has none); the one expiring last names them (id, request, expiry). */
static int active_cb(void *vctx, const Trib__AccessRow *g)
{
    active_ctx *c = vctx;
    const Trib__AccessChange *a = g->change;
    if (!active_row(c, g))
        return 0;
    grant_info_t *o = c->out;
    if (!c->found || a->expires_ms > o->expires_ms) {
        snprintf(o->grant_id, sizeof o->grant_id, "%s", a->grant_id);
        snprintf(o->request_id, sizeof o->request_id, "%s", a->request_id);
        o->expires_ms = a->expires_ms;
    }
    if (o->ngrants < GRANTS_NAMED_MAX) {
        size_t l = strlen(o->grants);
        snprintf(o->grants + l, sizeof o->grants - l, "%s%s", l ? "," : "", a->grant_id);
    }
    o->ngrants++;
    c->found = 1;
    c->all |= a->n_fields == 0;
    add_fields(c, a);
    return 0;
}

/* The second pass when the union overflowed: the fields of the grant expiring last alone. */
static int only_cb(void *vctx, const Trib__AccessRow *g)
{
    active_ctx *c = vctx;
    if (active_row(c, g) && !strcmp(g->change->grant_id, c->only))
        add_fields(c, g->change);
    return 0;
}

static int field_cmp(const void *a, const void *b) { return strcmp(a, b); }

int grants_active(node_t *n, const char *subject, const char *product_id, int64_t now_ms, grant_info_t *out)
{
    grant_info_t scratch;
    active_ctx c = {.now = now_ms, .out = out ? out : &scratch};
    memset(c.out, 0, sizeof *c.out);
    if (!n || !subject || !product_id || !store_access_subject_domain(subject, c.sdomain))
        return 0;
    if (n->cert_not_after_ms > 0 && now_ms >= n->cert_not_after_ms)
        return 0; /* chartered: no grant outlives this node's (its issuer's) certificate */
    if (store_access_grants_of(n->st, subject, product_id, active_cb, &c) != 0)
        return -1;
    if (c.over && !c.all) {   /* never fewer fields than the grant expiring last gives alone */
        c.out->nfields = 0;
        c.over = 0;
        c.only = c.out->grant_id;
        if (store_access_grants_of(n->st, subject, product_id, only_cb, &c) != 0)
            return -1;
    }
    if (c.out->ngrants > GRANTS_NAMED_MAX) {
        size_t l = strlen(c.out->grants);
        snprintf(c.out->grants + l, sizeof c.out->grants - l, " +%zu more", c.out->ngrants - GRANTS_NAMED_MAX);
    }
    if (c.all)
        c.out->nfields = 0;
    else if (c.out->nfields > 1)   /* one order whatever the grants' (a relay compares projections) */
        qsort(c.out->fields, c.out->nfields, sizeof c.out->fields[0], field_cmp);
    if (c.found && n->cert_not_after_ms > 0 && c.out->expires_ms > n->cert_not_after_ms)
        c.out->expires_ms = n->cert_not_after_ms;
    return c.found;
}

/* ---------------------------------------------------------------- grants_revoked */

typedef struct {
    char id[ACCESS_ID_MAX];   /* the latest grant made in the product's domain ("" none) */
    int64_t time_ms;
    uint64_t seq;
} latest_ctx;

static int latest_cb(void *vctx, const Trib__AccessRow *g)
{
    latest_ctx *c = vctx;
    const Trib__AccessChange *a = g->change;
    size_t dl = strcspn(a->product_id, "/");
    if (strlen(g->domain) != dl || strncmp(g->domain, a->product_id, dl) != 0)
        return 0;   /* as active_cb: only the owner's grants count */
    if (c->id[0] && (c->time_ms > g->time_ms || (c->time_ms == g->time_ms && c->seq > g->seq)))
        return 0;
    snprintf(c->id, sizeof c->id, "%s", a->grant_id);
    c->time_ms = g->time_ms;
    c->seq = g->seq;
    return 0;
}

/* The latest grant of the product's domain to subject on product_id (c->id, its row in *g: the
 * caller frees it), or 0 when there is none (or it cannot be read). */
static int latest_grant(node_t *n, const char *subject, const char *product_id, latest_ctx *c,
                        Trib__AccessRow **g)
{
    char sdomain[64];
    *c = (latest_ctx){0};
    *g = NULL;
    return n && subject && product_id && store_access_subject_domain(subject, sdomain) &&
           store_access_grants_of(n->st, subject, product_id, latest_cb, c) == 0 && c->id[0] &&
           store_access_get(n->st, "g", c->id, g) == 0;
}

int grants_revoked(node_t *n, const char *subject, const char *product_id, char *out, size_t cap)
{
    latest_ctx c;
    Trib__AccessRow *g;
    out[0] = '\0';
    if (!latest_grant(n, subject, product_id, &c, &g))
        return 0;
    int revoked = g->revoked;
    if (revoked) {
        char at[32], by[160];
        trust_time_text(g->revoked_ms, at);
        snprintf(by, sizeof by, "domain '%s'", g->domain);
        Trib__SignedEntry *se = NULL;
        Trib__CatalogEntry *ce = NULL;   /* the revocation: the token that decided it */
        if (view_load_manifest(n, g->domain, g->revoke_seq, &se, &ce) == 0 && ce->access &&
            ce->access->token_id && ce->access->token_id[0])
            snprintf(by, sizeof by, "domain '%s' (token %.32s)", g->domain, ce->access->token_id);
        view_free_entry(&se, &ce);
        const char *why = g->revoke_reason ? g->revoke_reason : "";
        snprintf(out, cap, "your grant %s for %s was revoked at %s by %s%s%.120s%s", c.id, g->change->product_id, at,
                 by, *why ? " (reason: " : "", why, *why ? ")" : "");
    }
    trib__access_row__free_unpacked(g, NULL);
    return revoked;
}

/* How grant held, no longer active at now_ms, ended, into out: revoked (grants_revoked's words),
 * with this node's certificate, or expired. 0 when none of these says it, ENDED_EXPIRED for the
 * last (its words say nothing of asking again). */
enum { ENDED_SAID = 1, ENDED_EXPIRED = 2 };
static int ended_why(node_t *n, const char *subject, const char *product_id, const grant_info_t *held,
                     int64_t now_ms, char *out, size_t cap)
{
    char at[32];
    if (grants_revoked(n, subject, product_id, out, cap))
        return 1;
    if (n->cert_not_after_ms > 0 && now_ms >= n->cert_not_after_ms &&
        !(held->expires_ms > 0 && held->expires_ms < n->cert_not_after_ms)) {   /* not its own end first */
        char serial[17];
        trust_time_text(n->cert_not_after_ms, at);
        cert_serial_text(n->cert_serial, serial);
        snprintf(out, cap, "grant %s of %s on %s ended at %s with this node's certificate for domain '%s' (serial "
                 "%s), which expired then: a grant never outlives its issuer's certificate (the owner needs a new "
                 "one: trib fed certify)", held->grant_id, subject, product_id, at, n->cfg.domain, serial);
    } else if (held->expires_ms > 0 && now_ms >= held->expires_ms) {
        trust_time_text(held->expires_ms, at);
        snprintf(out, cap, "grant %s of %s on %s expired at %s", held->grant_id, subject, product_id, at);
        return ENDED_EXPIRED;
    } else {
        return 0;
    }
    return ENDED_SAID;
}

const char *grants_ended(node_t *n, const char *subject, const char *product_id, const grant_info_t *held,
                         int64_t now_ms, char *out, size_t cap)
{
    grant_info_t gi;
    int rc = grants_active(n, subject, product_id, now_ms, &gi);
    if (rc == 1 && grants_fields_cover(&gi, held))
        return NULL;
    if (rc == 1) {
        snprintf(out, cap, "the grants of %s on %s give fewer fields than when this read began (one of them ended): "
                 "read again to get the records as they are projected now", subject, product_id);
        return "grant_changed";
    }
    if (rc < 0) {
        snprintf(out, cap, "reading the grants of %s on %s failed on this node (%s): the read cannot go on; "
                 "resume it later", subject, product_id, store_last_error());
        return "storage";
    }
    int how = ended_why(n, subject, product_id, held, now_ms, out, cap);
    if (!how)
        snprintf(out, cap, "grant %s of %s on %s no longer holds on this node", held->grant_id, subject, product_id);
    if (how != ENDED_SAID) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "; trib access request %s to ask again", product_id);
    }
    return "grant_required";
}

int grants_lapsed(node_t *n, const char *subject, const char *product_id, int64_t now_ms, char *out, size_t cap)
{
    latest_ctx c;
    Trib__AccessRow *g;
    out[0] = '\0';
    if (!latest_grant(n, subject, product_id, &c, &g))
        return 0;
    grant_info_t held = {.expires_ms = g->change ? g->change->expires_ms : 0};
    snprintf(held.grant_id, sizeof held.grant_id, "%s", c.id);
    trib__access_row__free_unpacked(g, NULL);
    return ended_why(n, subject, product_id, &held, now_ms, out, cap) != 0;
}

typedef struct {
    int64_t now;
    char (*ids)[STORE_ID_MAX];
    size_t n, cap;
    int oom;
} products_ctx;

static int product_cb(void *vctx, const Trib__AccessRow *g)
{
    products_ctx *c = vctx;
    const Trib__AccessChange *a = g->change;
    char pdom[64];
    snprintf(pdom, sizeof pdom, "%.*s", (int)strcspn(a->product_id, "/"), a->product_id);
    if (g->revoked || a->expires_ms <= c->now || strcmp(g->domain, pdom) != 0 || strlen(a->product_id) >= STORE_ID_MAX)
        return 0;   /* as active_cb */
    if (c->n && strcmp(c->ids[c->n - 1], a->product_id) == 0)
        return 0;   /* another grant on the same product (rows come in product order) */
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        char (*ids)[STORE_ID_MAX] = realloc(c->ids, cap * sizeof *ids);
        if (!ids) {
            c->oom = 1;
            return 1;
        }
        c->ids = ids;
        c->cap = cap;
    }
    snprintf(c->ids[c->n++], STORE_ID_MAX, "%s", a->product_id);
    return 0;
}

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

long grants_active_products(node_t *n, const char *subject, int64_t now_ms, char (**out)[STORE_ID_MAX])
{
    products_ctx c = {.now = now_ms};
    char sdomain[64];
    *out = NULL;
    if (!n || !subject || !store_access_subject_domain(subject, sdomain))
        return 0;
    if (n->cert_not_after_ms > 0 && now_ms >= n->cert_not_after_ms)
        return 0; /* as grants_active */
    if (store_access_grants_of(n->st, subject, NULL, product_cb, &c) != 0 || c.oom) {
        free(c.ids);
        return -1;
    }
    if (c.n)
        qsort(c.ids, c.n, sizeof *c.ids, id_cmp);
    *out = c.ids;
    return (long)c.n;
}

int grants_fields_cover(const grant_info_t *now, const grant_info_t *held)
{
    if (now->nfields == 0)
        return 1;   /* every field */
    if (held->nfields == 0)
        return 0;
    size_t k = 0;   /* both sorted: a merge */
    for (size_t i = 0; i < held->nfields; i++) {
        while (k < now->nfields && strcmp(now->fields[k], held->fields[i]) < 0)
            k++;
        if (k == now->nfields || strcmp(now->fields[k], held->fields[i]) != 0)
            return 0;
    }
    return 1;
}

const char *const *grants_fields(const grant_info_t *info, const char *buf[ACCESS_FIELDS_MAX + 1])
{
    if (!info || info->nfields == 0)
        return NULL;
    size_t i = 0;
    for (; i < info->nfields && i < ACCESS_FIELDS_MAX; i++)
        buf[i] = info->fields[i];
    buf[i] = NULL;
    return buf;
}

/* ---------------------------------------------------------------- reads */

int grants_classification(node_t *n, const char *product_id, char out[16])
{
    out[0] = '\0';
    store_product_t p;
    if (store_product_get(n->st, product_id, &p) != 0)
        return -1;
    char dom[64];
    snprintf(dom, sizeof dom, "%.*s", (int)strcspn(product_id, "/"), product_id);
    Trib__SignedEntry *se = NULL;
    Trib__CatalogEntry *ce = NULL;
    if (view_load_manifest(n, dom, p.manifest_seq, &se, &ce) != 0 || !ce->manifest) {
        view_free_entry(&se, &ce);
        return -1;
    }
    snprintf(out, 16, "%s", ce->manifest->classification ? ce->manifest->classification : "");
    view_free_entry(&se, &ce);
    return 0;
}

static void audit_read_decision(node_t *n, const grants_read_t *d, uint64_t records)
{
    /* every active grant the read relied on: their fields were served together */
    const char *grants = d->grant.ngrants > 1 ? d->grant.grants : d->grant.grant_id;
    const char *reason = !d->allowed ? d->code
                         : d->grant.ngrants > 1 ? (d->grant.nfields ? "projected to the union of the grants' fields"
                                                                     : "every field: a grant without an allow-list")
                         : d->grant.nfields ? "projected to the grant's fields" : "";
    audit_event_t e = {.time_ms = clock_wall_ms(), .subject = d->subject, .token_id = d->token_id,
                       .grant_id = grants, .product_id = d->product_id, .entry_node = d->entry_node,
                       .action = d->action, .records = records, .allowed = d->allowed, .reason = reason};
    audit_record(n, &e);
}

int grants_check_read(node_t *n, const char *classification, const char *subject, const char *issuer_domain,
                      const char *token_id, const char *product_id, const char *entry_node, int live,
                      grants_read_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->subject, sizeof out->subject, "%s", subject ? subject : "");
    snprintf(out->token_id, sizeof out->token_id, "%s", token_id ? token_id : "");
    snprintf(out->product_id, sizeof out->product_id, "%s", product_id);
    if (entry_node)
        snprintf(out->entry_node, sizeof out->entry_node, "%s", entry_node);
    else
        node_id_hex(n, out->entry_node);
    snprintf(out->action, sizeof out->action, "%s", live ? "stream" : "read");
    const char *c = classification ? classification : "";
    int restricted = strcmp(c, "restricted") == 0;
    if (!restricted && strcmp(c, "confidential") != 0) {
        out->allowed = 1;
        return 1;
    }
    out->audited = 1;
    char sdom[64];
    int own = subject && *subject && store_access_subject_domain(subject, sdom) && issuer_domain &&
              strcmp(sdom, issuer_domain) == 0;
    int rc = own ? grants_active(n, subject, product_id, clock_wall_ms(), &out->grant) : 0;
    if (rc == 1) {
        out->allowed = 1;
        return 1;
    }
    if (rc < 0) {
        out->status = 500;
        out->code = "storage";
        snprintf(out->detail, sizeof out->detail, "reading the grants of %s failed", product_id);
    } else if (restricted) {
        out->status = 404;
        out->code = "not_found";
        snprintf(out->detail, sizeof out->detail, "no product %s in this node's catalog", product_id);
    } else if (!subject || !*subject) {
        out->status = 401;
        out->code = "token_required";
        snprintf(out->detail, sizeof out->detail,
                 "%s is confidential: send a token (Authorization: Bearer trib1.…) and hold a grant", product_id);
    } else if (!own) {
        out->status = 403;
        out->code = "grant_required";
        snprintf(out->detail, sizeof out->detail,
                 "%s is confidential, and token subject '%.64s' is not a subject of its issuer's domain '%.63s': "
                 "only a subject's own domain speaks for it", product_id, subject, issuer_domain ? issuer_domain : "");
    } else {
        out->status = 403;
        out->code = "grant_required";
        char note[sizeof out->detail - 64];   /* as node/auth.c: how the latest grant ended is said */
        if (grants_lapsed(n, subject, product_id, clock_wall_ms(), note, sizeof note))
            snprintf(out->detail, sizeof out->detail, "%s; trib access request %s to ask again", note, product_id);
        else
            snprintf(out->detail, sizeof out->detail,
                     "%s is confidential and %s holds no active grant for it: trib access request %s --purpose …",
                     product_id, subject, product_id);
    }
    audit_read_decision(n, out, 0);
    return 0;
}

void grants_audit_served(node_t *n, const grants_read_t *d, uint64_t records)
{
    if (d && d->audited && d->allowed)
        audit_read_decision(n, d, records);
}
