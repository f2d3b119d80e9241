/* node/view.c - JSON views for the HTTP API, read from the node's catalog replica in storage:
 * status, members, one product, and product search (ranked by storage's search index).
 * Must not: write anything, or scan the catalog per query (search goes through the index). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/entry.h"
#include "gossip/charter.h"
#include "gossip/gossip.h"
#include "gossip/identity.h"
#include "node/auth.h"
#include "node/compat.h"
#include "node/manifest.h"
#include "node/policy_node.h"
#include "node/view.h"
#include "node/rotate.h"
#include "storage/search.h"

#define VERSION "0.1.0"

int view_load_manifest(node_t *a, const char *domain, uint64_t seq, Trib__SignedEntry **se,
                       Trib__CatalogEntry **ce)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    *se = NULL;
    *ce = NULL;
    if (store_catalog_get(a->st, domain, seq, &bytes, &len) != 0)
        return -1;
    *se = trib__signed_entry__unpack(NULL, len, bytes);
    free(bytes);
    if (!*se)
        return -1;
    *ce = trib__catalog_entry__unpack(NULL, (*se)->body.len, (*se)->body.data);
    if (!*ce) {
        trib__signed_entry__free_unpacked(*se, NULL);
        *se = NULL;
        return -1;
    }
    return 0;
}

void view_free_entry(Trib__SignedEntry **se, Trib__CatalogEntry **ce)
{
    if (*ce)
        trib__catalog_entry__free_unpacked(*ce, NULL);
    if (*se)
        trib__signed_entry__free_unpacked(*se, NULL);
    *ce = NULL;
    *se = NULL;
}

static json_t *time_json(int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[80];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

static void domain_of(const char *id, char *out, size_t cap)
{
    const char *slash = strchr(id, '/');
    snprintf(out, cap, "%.*s", slash ? (int)(slash - id) : (int)strlen(id), id);
}

/* s as a JSON string. A peer's manifest is checked only for shape (gossip/entry.c), so its text
 * may not be UTF-8: then bytes >= 0x80 show as '?', rather than one product failing a listing. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j != NULL)
        return j;
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *summary(node_t *a, const store_product_t *p, const Trib__SignedEntry *se, const Trib__Manifest *m,
                       int full)
{
    char signer[ID_HEX_LEN] = "";
    if (se->signer.len == ID_PK_LEN)
        identity_hex(se->signer.data, signer);
    json_t *tags = json_array();
    for (size_t i = 0; i < m->n_tags; i++)
        json_array_append_new(tags, text_json(m->tags[i]));
    /* id, domain and name passed entry_valid_name: plain ASCII. */
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:{s:o,s:o},s:o,s:I,s:s,s:o}", "id", p->id, "domain",
                          m->domain, "name", m->name, "title", text_json(m->title), "version",
                          text_json(m->version), "status", text_json(p->retired ? "retired" : m->status),
                          "classification", text_json(m->classification), "owners", "business",
                          text_json(m->owner_business), "technical", text_json(m->owner_technical), "tags",
                          tags, "catalog_seq", (json_int_t)p->last_seq, "signer", signer, "updated",
                          time_json(p->updated_ms));
    if (!j)
        return NULL;
    if (full) {
        if (!strcmp(m->domain, a->cfg.domain)) {
            uint64_t last = 0;
            store_records_last(a->st, p->id, &last);
            json_object_set_new(j, "records", json_integer((json_int_t)last));
        }
        json_object_set_new(j, "manifest_seq", json_integer((json_int_t)p->manifest_seq));
        json_t *doc = manifest_document(m);
        json_object_set_new(j, "manifest", doc ? doc : json_object());
        compat_mode_t mode;   /* the product's compatibility mode (DESIGN §14), default when unset */
        char e[256];
        compat_manifest_mode(m, &mode, e, sizeof e);
        json_object_set_new(j, "compatibility", json_string(compat_mode_name(mode)));
    }
    return j;
}

/* The node that owns the product: the member whose id is the key that signed it (a domain's
 * entries are signed by its node's key). State "unknown" when this node has not met it. */
/* This node's addresses as its member claim gives them to the others (--advertise, --http-advertise). */
static const char *peer_shown(const node_t *a) { return a->cfg.advertise[0] ? a->cfg.advertise : a->cfg.listen; }
static const char *http_shown(const node_t *a) { return a->cfg.http_advertise[0] ? a->cfg.http_advertise : a->cfg.http; }

/* Chartered: what this node holds of the owner's key now, as /v1/members says it of a node listed
 * apart: "trust" verified, or why not (revoked, expired, uncertified ...) with "detail" naming the
 * certificate, since when and why. The product's "verified" is of the signer when it signed. */
static void owner_trust(node_t *a, const Trib__SignedEntry *se, const char *domain, json_t *j)
{
    if (!j || !a->gossip || !gossip_trust(a->gossip))
        return;
    gossip_member_t m = {0};
    memcpy(m.id, se->signer.data, ID_PK_LEN);
    snprintf(m.domain, sizeof m.domain, "%s", domain);
    char why[400];
    trust_verdict_t v = gossip_member_why(a->gossip, &m, why, sizeof why);
    int none = v == TRUST_UNCERTIFIED || v == TRUST_WRONG_DOMAIN;
    json_object_set_new(j, "trust", json_string(v == TRUST_OK ? "verified" : none ? "uncertified" : trust_verdict_name(v)));
    if (v != TRUST_OK)
        json_object_set_new(j, "detail", json_string(why));
}

static json_t *owner_node(node_t *a, const Trib__SignedEntry *se, const char *domain)
{
    char hex[ID_HEX_LEN] = "";
    if (se->signer.len != ID_PK_LEN)
        return json_null();
    identity_hex(se->signer.data, hex);
    json_t *j = NULL;
    if (node_own_key(a, se->signer.data))
        j = json_pack("{s:s,s:s,s:s,s:s}", "node_id", hex, "addr", peer_shown(a), "http", http_shown(a), "state",
                      "alive");
    else if (a->gossip) {
        gossip_member_t *m;
        size_t n = gossip_members(a->gossip, &m);
        for (size_t i = 0; i < n && !j; i++)
            if (!memcmp(m[i].id, se->signer.data, ID_PK_LEN))
                j = json_pack("{s:s,s:s,s:s,s:s}", "node_id", hex, "addr", m[i].addr, "http", m[i].http, "state",
                              swim_state_name(m[i].state));
        free(m);
    }
    if (!j)
        j = json_pack("{s:s,s:s}", "node_id", hex, "state", "unknown");
    owner_trust(a, se, domain, j);
    return j;
}

/* 1 in chartered mode when signer was certified for domain at time_ms; 0 in open mode (unverified:
 * trust on first use). */
static int view_verified(node_t *a, const char *domain, const Trib__SignedEntry *se, int64_t time_ms)
{
    trust_t *t = a->gossip ? gossip_trust(a->gossip) : NULL;
    if (!t || se->signer.len != ID_PK_LEN)
        return 0;
    return trust_entry_ok(t, domain, se->signer.data, time_ms, NULL, 0) == TRUST_OK;
}

json_t *view_product(node_t *a, const store_product_t *p, int full)
{
    char domain[64];
    domain_of(p->id, domain, sizeof domain);
    Trib__SignedEntry *se;
    Trib__CatalogEntry *ce;
    if (view_load_manifest(a, domain, p->manifest_seq, &se, &ce) < 0)
        return NULL;
    json_t *j = ce->manifest ? summary(a, p, se, ce->manifest, full) : NULL;
    json_t *compliance = j ? policy_node_compliance(a, p->id) : NULL;   /* NULL: no policy set */
    if (compliance)
        json_object_set_new(j, "compliance", compliance);
    if (j) /* trust: chartered, and the signer held a valid certificate for the domain when it signed */
        json_object_set_new(j, "verified", json_boolean(view_verified(a, domain, se, ce->time_ms)));
    if (j && full)
        json_object_set_new(j, "owner_node", owner_node(a, se, domain));
    view_free_entry(&se, &ce);
    return j;
}

/* ------------------------------------------------------------------ product search */

static int empty(const char *s) { return !s || !*s; }

int view_parse_count(const char *name, const char *v, size_t def, size_t max, size_t *out, char *err,
                       size_t errlen)
{
    *out = def;
    if (empty(v))
        return 0;
    size_t n = strlen(v);
    if (n > 19 || strspn(v, "0123456789") != n) {
        snprintf(err, errlen, "%s: '%.40s' is not a non-negative integer", name, v);
        return -1;
    }
    unsigned long long x = strtoull(v, NULL, 10);
    if (x > max) {
        snprintf(err, errlen, "%s: %llu is more than %zu", name, x, max);
        return -1;
    }
    *out = (size_t)x;
    return 0;
}

/* Builds the storage query from q (checked). */
static int to_store_query(const view_query_t *q, store_query_t *sq, char *err, size_t errlen)
{
    *sq = (store_query_t){ .q = q->q, .domain = q->domain, .tag = q->tag, .owner = q->owner,
                           .status = q->status, .compliance = q->compliance,
                           .classification = q->classification, .facet_max = VIEW_FACET_MAX };
    /* .facet_max_domain 0: every domain with a hit (the mesh overview counts each one's products) */
    if (view_parse_count("limit", q->limit, VIEW_LIMIT_DEFAULT, VIEW_LIMIT_MAX, &sq->limit, err, errlen) != 0 ||
        view_parse_count("offset", q->offset, 0, VIEW_OFFSET_MAX, &sq->offset, err, errlen) != 0)
        return -1;
    return 0;
}

int view_products_check(const view_query_t *q, char *err, size_t errlen)
{
    if (!empty(q->status) && !manifest_valid_status(q->status)) {
        snprintf(err, errlen, "status: '%.40s' is not one of draft, active, deprecated, retired", q->status);
        return -1;
    }
    if (!empty(q->compliance) && strcmp(q->compliance, "compliant") && strcmp(q->compliance, "non_compliant")) {
        snprintf(err, errlen, "compliance: '%.40s' is not compliant or non_compliant", q->compliance);
        return -1;
    }
    if (!empty(q->classification) && !manifest_valid_classification(q->classification)) {
        snprintf(err, errlen, "classification: '%.40s' is not one of public, internal, confidential, restricted",
                 q->classification);
        return -1;
    }
    if (!empty(q->domain) && !entry_valid_name(q->domain)) {
        snprintf(err, errlen, "domain: '%.70s' is not a valid domain name (" STORE_NAME_RULE ")",
                 q->domain);
        return -1;
    }
    store_query_t sq;
    if (to_store_query(q, &sq, err, errlen) != 0)
        return -1;
    return store_search_check(&sq, err, errlen);
}

static json_t *facets_json(const store_result_t *r)
{
    static const char *const names[STORE_FACETS] = { "domain", "tag", "owner", "status", "compliance",
                                                     "classification" };
    json_t *f = json_object(), *per[STORE_FACETS];
    for (int i = 0; i < STORE_FACETS; i++) {
        per[i] = json_object();
        json_object_set_new(f, names[i], per[i]);
    }
    for (size_t i = 0; i < r->nfacets; i++)   /* storage's order: count desc (kept by jansson) */
        if (r->facets[i].facet >= 0 && r->facets[i].facet < STORE_FACETS)
            json_object_set_new(per[r->facets[i].facet], r->facets[i].value,
                                json_integer((json_int_t)r->facets[i].count));
    return f;
}

json_t *view_products(node_t *a, const view_query_t *q, char *err, size_t errlen)
{
    store_query_t sq;
    if (to_store_query(q, &sq, err, errlen) != 0)
        return NULL;
    auth_viewer_t viewer;   /* the caller's token, verified once for every restricted product */
    auth_viewer_init(&viewer, a, q->authorization);
    if (viewer.valid) {
        auth_viewer_grants(&viewer);   /* one grant lookup per search, not one per restricted product */
        sq.sees = auth_viewer_sees;
        sq.sees_ctx = &viewer;
        if (viewer.ngranted >= 0) {    /* it can see its own domain's and its granted ones only */
            sq.sees_only = 1;
            sq.sees_domain = viewer.c.domain;
            sq.sees_ids = (const char (*)[STORE_ID_MAX])viewer.granted;
            sq.nsees_ids = (size_t)viewer.ngranted;
        }
    }
    store_result_t r;
    int rc = store_search(a->st, &sq, &r, err, errlen);
    auth_viewer_done(&viewer);
    if (rc != 0)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < r.nhits; i++) {
        store_product_t p;
        json_t *j;
        /* A product is never removed; one updated since the search shows its newer manifest. */
        if (store_product_get(a->st, r.hits[i].id, &p) != 0 || !(j = view_product(a, &p, 0))) {
            snprintf(err, errlen, "reading product %s from the catalog failed", r.hits[i].id);
            json_decref(list);
            store_result_free(&r);
            return NULL;
        }
        json_object_set_new(j, "score", json_integer((json_int_t)r.hits[i].score));
        json_array_append_new(list, j);
    }
    json_t *out = json_pack("{s:o,s:I,s:I,s:I,s:o}", "products", list, "total", (json_int_t)r.total, "offset",
                            (json_int_t)sq.offset, "limit", (json_int_t)sq.limit, "facets", facets_json(&r));
    store_result_free(&r);
    return out;
}

static int add_head(void *ctx, const char *domain, const store_head_t *h)
{
    json_object_set_new(ctx, domain, json_integer((json_int_t)h->seq));
    return 0;
}

json_t *view_status(node_t *a)
{
    json_t *digest = json_object();
    store_catalog_heads(a->st, add_head, digest);
    uint64_t products = 0; /* O(1): a status poll must stay cheap with 100,000 products */
    store_products_count(a->st, &products);
    json_int_t counts[4] = {1, 0, 0, 0}, uncertified = 0;
    if (a->gossip) {
        gossip_member_t *list;
        size_t n = gossip_members(a->gossip, &list);
        counts[0] = 0;
        for (size_t i = 0; i < n; i++)   /* an uncertified key is no member: counted apart */
            if (list[i].uncertified)
                uncertified++;
            else if (list[i].state >= 0 && list[i].state < 4)
                counts[list[i].state]++;
        free(list);
    }
    json_t *members = json_pack("{s:I,s:I,s:I,s:I}", "alive", counts[0], "suspect", counts[1], "dead", counts[2],
                                "left", counts[3]);
    if (members && uncertified)
        json_object_set_new(members, "uncertified", json_integer(uncertified));
    char me[ID_HEX_LEN];
    node_id_hex(a, me);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:o}", "node_id", me, "domain", a->cfg.domain,
                          "version", VERSION, "http", a->cfg.http, "listen", a->cfg.listen, "uptime_s",
                          (json_int_t)(time(NULL) - a->started), "products", (json_int_t)products, "digest", digest, "members",
                          members);
    repl_fork_t forks[REPL_FORKS_MAX];  /* issue 8 B3: shown (and by trib status) only when there are any */
    size_t nf = a->gossip ? gossip_forks(a->gossip, forks, REPL_FORKS_MAX) : 0;
    if (j) { /* trust: this node's own certificate (chartered) or unverified (open mode) */
        gossip_member_t *list;
        size_t n = a->gossip ? gossip_members(a->gossip, &list) : 0;
        int verified = n && list[0].self && list[0].verified;
        char why[320] = "";
        trust_verdict_t own = a->gossip ? gossip_own_trust(a->gossip, why, sizeof why) : TRUST_OK;
        /* chartered, and this node's own certificate no longer holds: say which way (revoked ...) */
        json_object_set_new(j, "trust", json_string(own != TRUST_OK ? trust_verdict_name(own)
                                                    : verified ? "verified" : "unverified"));
        if (own != TRUST_OK)
            json_object_set_new(j, "trust_reason", json_string(why));
        if (verified) {   /* of the certificate this node presents (--cert, or its rotation's) and the one its
                             key holds by, the one that ends first: the node stops with it */
            char until[32], serial[17];
            int64_t ends = list[0].cert_expires_ms;
            snprintf(serial, sizeof serial, "%.16s", list[0].cert_serial);
            if (a->cert_not_after_ms && a->cert_not_after_ms < ends) {
                ends = a->cert_not_after_ms;
                cert_serial_text(a->cert_serial, serial);
            }
            trust_time_text(ends, until);
            json_object_set_new(j, "cert_serial", json_string(serial));
            json_object_set_new(j, "cert_expires", json_string(until));
            if (ends - (int64_t)time(NULL) * 1000 < 14LL * 86400000)
                json_object_set_new(j, "cert_warning", json_string("this node's certificate expires within 14 days"));
            if (list[0].cert_expires_ms > ends && strncmp(list[0].cert_serial, serial, 16) != 0) {
                char later[32];   /* a renewal handed in: taken at the node's next start */
                trust_time_text(list[0].cert_expires_ms, later);
                json_object_set_new(j, "cert_renewal_held",
                                    json_sprintf("certificate %.16s of this node's key, valid until %s, is held: "
                                                 "restart the node with it as --cert to take it (docs/operators.md §4b)",
                                                 list[0].cert_serial, later));
            }
        }
        if (n)
            free(list);
    }
    rotate_status(a, j);   /* a pending or failed key rotation (node/rotate.c) */
    char unreached[64][GOSSIP_SEED_TEXT];   /* seeds not reached 10 s after start: shown only then */
    size_t nu = a->gossip && j ? gossip_seeds_unreached(a->gossip, unreached, 64) : 0;
    if (nu) {
        json_t *list = json_array();
        for (size_t i = 0; i < nu; i++)
            json_array_append_new(list, json_string(unreached[i]));
        json_object_set_new(j, "seeds_unreached", list);
    }
    if (j && nf) {
        json_t *list = json_array();
        for (size_t i = 0; i < nf && i < REPL_FORKS_MAX; i++)
            json_array_append_new(list, json_sprintf("%s forked at seq %llu (other entry from %s)", forks[i].domain,
                                                     (unsigned long long)forks[i].seq, forks[i].from));
        json_object_set_new(j, "forks", list);
    }
    return j;
}

json_t *view_members(node_t *a)
{
    json_t *list = json_array();
    if (a->gossip) {
        gossip_member_t *m;
        size_t n = gossip_members(a->gossip, &m);
        json_t *outside = NULL;   /* chartered: nodes announced without a certificate that holds: not members */
        for (size_t i = 0; i < n; i++) {
            char hex[ID_HEX_LEN];
            identity_hex(m[i].id, hex);
            json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "node_id", hex, "domain", m[i].domain, "addr",
                                  m[i].addr, "http", m[i].http, "state", swim_state_name(m[i].state), "incarnation",
                                  (json_int_t)m[i].incarnation, "self", m[i].self);
            /* trust: verified = a held, valid certificate of this key for this domain (chartered) */
            json_object_set_new(o, "verified", json_boolean(m[i].verified));
            if (m[i].cert_serial[0]) {
                char until[32];
                trust_time_text(m[i].cert_expires_ms, until);
                json_object_set_new(o, "cert_serial", json_string(m[i].cert_serial));
                json_object_set_new(o, "cert_expires", json_string(until));
            }
            if (m[i].conflict)
                json_object_set_new(o, "conflict", json_true());
            if (m[i].refused[0])   /* chartered: why its key is not admitted now (revoked, expired ...) */
                json_object_set_new(o, "trust_refused", json_string(m[i].refused));
            if (m[i].uncertified) {   /* "uncertified": none held for its domain; else the one held does not hold */
                char why[400];
                int none = !strcmp(m[i].refused, "uncertified") || !strcmp(m[i].refused, "wrong_domain");
                gossip_member_why(a->gossip, &m[i], why, sizeof why);
                json_object_set_new(o, "trust", json_string(none ? "uncertified" : m[i].refused));
                json_object_set_new(o, "detail", json_string(why));
                if (!outside)
                    outside = json_array();
                json_array_append_new(outside, o);
                continue;
            }
            json_array_append_new(list, o);
        }
        free(m);
        json_t *out = json_pack("{s:o}", "members", list);
        if (out && gossip_trust(a->gossip))   /* chartered: the members, and apart what is not one */
            json_object_set_new(out, "uncertified", outside ? outside : json_array());
        else
            json_decref(outside);
        return out;
    }
    char me[ID_HEX_LEN];
    node_id_hex(a, me);
    json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "node_id", me, "domain",
                                          a->cfg.domain, "addr", peer_shown(a), "http", http_shown(a), "state",
                                          "alive", "incarnation", (json_int_t)0, "self", 1));
    return json_pack("{s:o}", "members", list);
}
