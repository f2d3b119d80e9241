/* node/gate.c - the governance gate of publish and the version views (gate.h).
 *
 * Sections: retained versions / the gate / history and diff views. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/identity.h"
#include "node/errtext.h"
#include "node/gate.h"
#include "node/manifest.h"
#include "node/semver.h"
#include "node/view.h"

/* ================================================================ retained versions */

typedef struct {
    gate_versions_t *v;
    size_t cap;
    int oom;
} collect_t;

static int collect(void *ctx, const store_version_t *row)
{
    collect_t *c = ctx;
    if (c->v->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        store_version_t *nr = realloc(c->v->rows, cap * sizeof *nr);
        if (!nr) {
            c->oom = 1;
            return 1;
        }
        c->v->rows = nr;
        c->cap = cap;
    }
    c->v->rows[c->v->n++] = *row;
    return 0;
}

/* The versions of recently checked products as a check compares them: each entry's parsed
 * document and prepared schema (compat_prepare), by product and catalog seq. Values are immutable and
 * shared by reference (jansson's reference counts are atomic; nothing modifies a cached value).
 * A publish checked against 20 earlier versions then neither reads nor parses the older ones
 * again. Bounded: CACHE_PRODUCTS products in all, the newest CACHE_VERSIONS versions of each,
 * CACHE_NODE_VERSIONS versions per node (a domain of 100 products of 20 versions fits; the
 * least recently checked product leaves first). */
#define CACHE_PRODUCTS 256
#define CACHE_VERSIONS 64
#define CACHE_NODE_VERSIONS 2048
static struct {
    uint64_t node;                 /* node_t.cache_id: nodes in one process do not share entries */
    char id[STORE_ID_MAX];
    uint64_t used;                 /* cache_clock when last looked at */
    size_t n;
    struct {
        uint64_t seq;
        json_t *doc;
        compat_prep_t *prep;
    } v[CACHE_VERSIONS];           /* ascending seq */
} cache[CACHE_PRODUCTS];
static uint64_t cache_clock;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of node's product id, or -1. */
static int cache_find_locked(uint64_t node, const char *id)
{
    for (int i = 0; i < CACHE_PRODUCTS; i++)
        if (cache[i].used && cache[i].node == node && strcmp(cache[i].id, id) == 0)
            return i;
    return -1;
}

/* The cached document and prepared schema of id's entry at seq (new references): 1, or 0 when
 * not cached. */
static int cache_get(uint64_t node, const char *id, uint64_t seq, json_t **doc, compat_prep_t **prep)
{
    int hit = 0;
    pthread_mutex_lock(&cache_mu);
    int p = cache_find_locked(node, id);
    if (p >= 0) {
        cache[p].used = ++cache_clock;
        for (size_t i = 0; i < cache[p].n && !hit; i++)
            if (cache[p].v[i].seq == seq) {
                *doc = json_incref(cache[p].v[i].doc);
                *prep = compat_prep_ref(cache[p].v[i].prep);
                hit = 1;
            }
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

static void cache_empty_locked(int p)
{
    for (size_t i = 0; i < cache[p].n; i++) {
        json_decref(cache[p].v[i].doc);
        compat_prep_unref(&cache[p].v[i].prep);
    }
    cache[p].n = 0;
    cache[p].used = 0;
}

static void cache_put(uint64_t node, const char *id, uint64_t seq, json_t *doc, const compat_prep_t *prep)
{
    pthread_mutex_lock(&cache_mu);
    size_t held = 0;   /* node's versions: over its budget, its least recently used products leave */
    for (int i = 0; i < CACHE_PRODUCTS; i++)
        held += cache[i].used && cache[i].node == node ? cache[i].n : 0;
    while (held >= CACHE_NODE_VERSIONS) {
        int lru = -1;
        for (int i = 0; i < CACHE_PRODUCTS; i++)
            if (cache[i].used && cache[i].node == node && strcmp(cache[i].id, id) != 0 &&
                (lru < 0 || cache[i].used < cache[lru].used))
                lru = i;
        if (lru < 0)
            break;
        held -= cache[lru].n;
        cache_empty_locked(lru);
    }
    int p = cache_find_locked(node, id);
    if (p < 0) {   /* a free slot, else the least recently used one, emptied */
        p = 0;
        for (int i = 1; i < CACHE_PRODUCTS; i++)
            if (cache[i].used < cache[p].used)
                p = i;
        cache_empty_locked(p);
        cache[p].node = node;
        snprintf(cache[p].id, sizeof cache[p].id, "%s", id);
    }
    cache[p].used = ++cache_clock;
    size_t at = cache[p].n;
    while (at > 0 && cache[p].v[at - 1].seq > seq)
        at--;
    int dup = at > 0 && cache[p].v[at - 1].seq == seq;
    if (!dup && cache[p].n == CACHE_VERSIONS) {   /* full: the oldest leaves, unless it is this one */
        if (at == 0)
            goto done;
        json_decref(cache[p].v[0].doc);
        compat_prep_unref(&cache[p].v[0].prep);
        memmove(&cache[p].v[0], &cache[p].v[1], (CACHE_VERSIONS - 1) * sizeof cache[p].v[0]);
        cache[p].n--;
        at--;
    }
    if (!dup) {
        memmove(&cache[p].v[at + 1], &cache[p].v[at], (cache[p].n - at) * sizeof cache[p].v[0]);
        cache[p].v[at].seq = seq;
        cache[p].v[at].doc = json_incref(doc);
        cache[p].v[at].prep = compat_prep_ref(prep);
        cache[p].n++;
    }
done:
    pthread_mutex_unlock(&cache_mu);
}

void gate_published(node_t *n, const char *id, uint64_t seq, const Trib__Manifest *m, json_t *doc)
{
    compat_prep_t *sc = doc ? compat_prepare(m, doc) : NULL;
    if (sc)
        cache_put(n->cache_id, id, seq, doc, sc);
    compat_prep_unref(&sc);
}

/* The document and prepared schema of m (id's entry at seq), cached: 0 with new references, -1
 * when m has no document or memory ran out. */
static int prepared_of(uint64_t node, const char *id, uint64_t seq, const Trib__Manifest *m, json_t **doc,
                       compat_prep_t **prep)
{
    if (cache_get(node, id, seq, doc, prep))
        return 0;
    json_t *d = manifest_document(m);
    compat_prep_t *sc = d ? compat_prepare(m, d) : NULL;
    if (!d || !sc) {
        json_decref(d);
        compat_prep_unref(&sc);
        return -1;
    }
    cache_put(node, id, seq, d, sc);
    *doc = d;
    *prep = sc;
    return 0;
}

void gate_versions_free(gate_versions_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->se && v->ce)
            view_free_entry(&v->se[i], &v->ce[i]);
        if (v->doc)
            json_decref(v->doc[i]);
        if (v->prep)
            compat_prep_unref(&v->prep[i]);
    }
    free(v->doc);
    free(v->prep);
    free(v->rows);
    free(v->se);
    free(v->ce);
    free(v->m);
    memset(v, 0, sizeof *v);
}

/* The history rows of id and room for the rest, nothing loaded yet. 0, or -1 with err. */
static int versions_rows(node_t *n, const char *id, gate_versions_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    collect_t c = {.v = out};
    if (store_history(n->st, id, collect, &c) != 0 || c.oom) {
        snprintf(err, errlen, "reading the version history of %s failed: %s", id,
                 c.oom ? "out of memory" : store_last_error());
        gate_versions_free(out);
        return -1;
    }
    if (out->n == 0)
        return 0;
    out->se = calloc(out->n, sizeof *out->se);
    out->ce = calloc(out->n, sizeof *out->ce);
    out->m = calloc(out->n, sizeof *out->m);
    out->doc = calloc(out->n, sizeof *out->doc);
    out->prep = calloc(out->n, sizeof *out->prep);
    if (!out->se || !out->ce || !out->m || !out->doc || !out->prep) {
        snprintf(err, errlen, "out of memory loading the versions of %s", id);
        gate_versions_free(out);
        return -1;
    }
    return 0;
}

/* Loads version i's entry (v->m[i] stays NULL when it is unreadable). */
static void load_one(node_t *n, const char *domain, gate_versions_t *v, size_t i)
{
    if (v->m[i] || v->se[i])
        return;
    if (view_load_manifest(n, domain, v->rows[i].seq, &v->se[i], &v->ce[i]) == 0 &&
        v->ce[i]->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST)
        v->m[i] = v->ce[i]->manifest;
}

/* Version i prepared for a check: its document and prepared schema from the cache, else from its entry
 * (loaded). full: its manifest is needed too (the latest). 0, or -1 when it is unreadable. */
static int prepare_one(node_t *n, const char *id, const char *domain, gate_versions_t *v, size_t i, int full)
{
    if (!v->doc[i])
        cache_get(n->cache_id, id, v->rows[i].seq, &v->doc[i], &v->prep[i]);
    if (full || !v->doc[i])
        load_one(n, domain, v, i);
    if (full && !v->m[i])
        return -1;
    if (!v->doc[i] && (!v->m[i] || prepared_of(n->cache_id, id, v->rows[i].seq, v->m[i], &v->doc[i], &v->prep[i]) != 0))
        return -1;
    return 0;
}

int gate_versions_load(node_t *n, const char *id, gate_versions_t *out, char *err, size_t errlen)
{
    if (versions_rows(n, id, out, err, errlen) != 0)
        return -1;
    char domain[64];
    snprintf(domain, sizeof domain, "%.*s", (int)strcspn(id, "/"), id);
    for (size_t i = 0; i < out->n; i++)
        load_one(n, domain, out, i);
    return 0;
}

/* ================================================================ the gate */

/* The mode without _TRANSITIVE: what one step between two versions is judged by. */
static compat_mode_t base_mode(compat_mode_t m)
{
    switch (m) {
    case COMPAT_BACKWARD_TRANSITIVE: return COMPAT_BACKWARD;
    case COMPAT_FORWARD_TRANSITIVE: return COMPAT_FORWARD;
    case COMPAT_FULL_TRANSITIVE: return COMPAT_FULL;
    default: return m;
    }
}

static int is_transitive(compat_mode_t m) { return base_mode(m) != m; }

static node_code_t refuse(node_result_t *r, node_code_t code, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static node_code_t refuse(node_result_t *r, node_code_t code, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    errtext_utf8(r->detail);   /* it quotes the manifest, and may be cut: JSON needs UTF-8 */
    r->code = code;
    r->kind = kind;
    return code;
}

static void violation(json_t *rep, const char *rule, const char *path, const char *message)
{
    /* a refusal's detail may open with the path ("version: 1.1.0 is not above ..."), which the
     * violation names on its own: said once, not "version: version: ..." */
    size_t pl = path ? strlen(path) : 0;
    if (message && pl && strncmp(message, path, pl) == 0 && message[pl] == ':' && message[pl + 1] == ' ')
        message += pl + 2;
    json_array_append_new(json_object_get(rep, "violations"),
                          json_pack("{s:s,s:s,s:s?,s:s}", "rule", rule, "severity", "error", "path", path,
                                    "message", message ? message : ""));
}

static int same_document(const json_t *da, const json_t *db)
{
    return da && db && json_equal(da, db);
}

/* Moves the compatibility report's members into rep. */
static void merge_report(json_t *rep, const compat_report_t *cr)
{
    json_t *cj = compat_report_json(cr);
    const char *k;
    json_t *v;
    json_object_foreach(cj, k, v)
        if (strcmp(k, "mode") != 0)
            json_object_set(rep, k, v);
    json_decref(cj);
}

/* The refusal of a version not above the highest published one (hv, text highest); with the
 * report, it names the first change needing the largest bump and a version that would do. */
static node_code_t refuse_not_above(node_result_t *r, const char *version, const char *highest, const semver_t *hv,
                                    const char *id, int same, const compat_report_t *cr)
{
    char need[320] = "";
    const compat_change_t *c = NULL;
    for (size_t i = 0; cr && i < cr->n && !c; i++)
        if (cr->changes[i].bump == cr->required)
            c = &cr->changes[i];
    if (c) {
        unsigned long long M = hv->major, mi = hv->minor, pa = hv->patch;
        char next[96];
        if (cr->required == COMPAT_BUMP_MAJOR && M > 0)
            snprintf(next, sizeof next, "%llu.0.0", M + 1);
        else if (cr->required >= COMPAT_BUMP_MINOR)
            snprintf(next, sizeof next, "%llu.%llu.0", M, mi + 1);
        else
            snprintf(next, sizeof next, "%llu.%llu.%llu", M, mi, pa + 1);
        snprintf(need, sizeof need, "; change (%s: %s)%s needs a %s version, e.g. %s", c->path ? c->path : "?",
                 compat_kind_name(c->kind), cr->n > 1 ? " and others" : "", compat_bump_name(cr->required), next);
    }
    return refuse(r, NODE_REFUSED, "version_not_increased",
                  "version: %s is not above %s, the highest published version of %s; versions only go up%s%s", version,
                  highest, id, same ? " (the same version with other content is refused)" : "", need);
}

static node_code_t gate_run(node_t *n, const char *id, const Trib__Manifest *m, json_t *doc, int revive,
                            node_result_t *r, json_t *rep)
{
    char err[1024];
    compat_mode_t mode;
    if (compat_doc_mode(doc, &mode, err, sizeof err) != 0)
        return refuse(r, NODE_BAD_INPUT, "bad_manifest", "%s", err);
    store_product_t p;
    int rc = store_product_get(n->st, id, &p);
    if (rc == STORE_NOTFOUND) {
        r->created = 1;
        json_object_set_new(rep, "created", json_true());
        return NODE_OK;
    }
    if (rc != 0)
        return refuse(r, NODE_FAILED, "storage", "reading product %s failed", id);
    gate_versions_t v;
    if (versions_rows(n, id, &v, err, sizeof err) != 0)
        return refuse(r, NODE_FAILED, "storage", "%s", err);
    char domain[64];
    snprintf(domain, sizeof domain, "%.*s", (int)strcspn(id, "/"), id);
    node_code_t code = NODE_OK;
    compat_report_t *cr = NULL;
    compat_version_t *earlier = NULL;
    /* the latest in full (its manifest is diffed whole); older ones only as a transitive check
     * needs them: version and schema, from the cache when it has them */
    if (v.n)
        prepare_one(n, id, domain, &v, v.n - 1, 1);
    const Trib__Manifest *latest = v.n ? v.m[v.n - 1] : NULL;
    json_object_set_new(rep, "latest", latest ? json_string(latest->version) : json_null());
    if (p.retired) {
        json_object_set_new(rep, "retired", json_true());
        if (!revive) {
            code = refuse(r, NODE_ALREADY_RETIRED, "retired",
                          "%s is retired; it comes back only when asked (trib publish --revive, or "
                          "?revive=1) with a version above %s", id, latest ? latest->version : "the last one");
            violation(rep, "lifecycle.revive", "status", r->detail);
            goto out;
        }
    }
    if (!p.retired && latest && same_document(v.doc[v.n - 1], doc)) {
        r->unchanged = 1;
        json_object_set_new(rep, "unchanged", json_true());
        goto out;
    }
    /* Versions only go up: above every version ever published (older builds let one go down). */
    semver_t nv, hv, best;
    const char *highest = NULL;
    if (semver_parse(m->version, &nv, err, sizeof err) != 0) {
        code = refuse(r, NODE_BAD_INPUT, "bad_manifest", "version: %s", err);
        goto out;
    }
    for (size_t i = 0; i < v.n; i++)
        if (semver_parse(v.rows[i].version, &hv, err, sizeof err) == 0 &&
            (!highest || semver_compare(&hv, &best) > 0)) {
            best = hv;
            highest = v.rows[i].version;
        }
    /* not above: refused below, with the report of what changed and the bump it needs */
    int not_above = highest && semver_compare(&nv, &best) <= 0;
    /* Compatibility: against the latest version, or every retained one (_TRANSITIVE). */
    size_t k = 0;
    earlier = calloc(v.n ? v.n : 1, sizeof *earlier);
    if (!earlier) {
        code = refuse(r, NODE_FAILED, "internal", "out of memory");
        goto out;
    }
    /* _TRANSITIVE: every retained version of the latest's major line. A major bump starts a
     * new line (a new output-port version, governance-anchors C.3): 3.1.0 is checked against
     * 3.0.0 and 3.0.1, not against the 2.x it was allowed to break. */
    semver_t lv;
    int line_ok = latest && semver_parse(latest->version, &lv, err, sizeof err) == 0;
    for (size_t i = is_transitive(mode) ? 0 : (v.n ? v.n - 1 : 0); i < v.n; i++) {
        if (i + 1 < v.n && line_ok &&
            (semver_parse(v.rows[i].version, &hv, err, sizeof err) != 0 || hv.major != lv.major))
            continue;
        /* (with the latest unreadable, the newest readable one is compared in full instead) */
        if (i + 1 == v.n ? !latest : prepare_one(n, id, domain, &v, i, !latest) != 0)
            continue;   /* unreadable */
        earlier[k++] = (compat_version_t){.m = v.m[i], .version = v.rows[i].version, .doc = v.doc[i],
                                          .prep = v.prep[i]};
    }
    if (k > 0) {
        cr = compat_check_versions(earlier, k, m, doc, mode, err, sizeof err);
        if (!cr) {
            code = refuse(r, NODE_FAILED, "internal", "compatibility check: %s", err);
            goto out;
        }
        merge_report(rep, cr);
    }
    if (not_above) {
        code = refuse_not_above(r, m->version, highest, &best, id, semver_compare(&nv, &best) == 0, cr);
        violation(rep, "version.monotonic", "version", r->detail);
        goto out;
    }
    if (!cr)
        goto out;   /* nothing readable to compare with */
    if (compat_version_check(cr, err, sizeof err) != 0) {
        const char *kind = cr->compatible ? "version_not_increased" : "incompatible";
        code = refuse(r, NODE_REFUSED, kind, "%s", err);
        if (cr->compatible)
            violation(rep, "version.bump", "version", err);
        for (size_t i = 0; i < cr->n; i++)
            if (cr->changes[i].breaking)
                violation(rep, "schema.compat", cr->changes[i].path, cr->changes[i].message);
    }
out:
    compat_report_free(&cr);
    free(earlier);
    gate_versions_free(&v);
    return code;
}

node_code_t gate_check(node_t *n, const char *id, const Trib__Manifest *m, json_t *doc, int revive,
                       node_result_t *r, json_t **report)
{
    json_t *own = doc ? NULL : manifest_document(m);
    if (!doc)
        doc = own;
    compat_mode_t mode;
    char err[256];
    compat_doc_mode(doc, &mode, err, sizeof err);
    json_t *rep = json_pack("{s:s,s:s,s:s,s:b,s:[],s:s,s:[]}", "id", id, "mode", compat_mode_name(mode),
                            "version", m->version ? m->version : "", "ok", 1, "changes", "required_bump",
                            "none", "violations");
    node_code_t code = gate_run(n, id, m, doc, revive, r, rep ? rep : json_object());
    if (rep) {
        json_object_set_new(rep, "ok", json_boolean(code == NODE_OK));
        if (code != NODE_OK)
            json_object_set_new(rep, "error", json_pack("{s:s,s:s}", "error", r->kind ? r->kind : "",
                                                        "detail", r->detail));
    }
    if (report)
        *report = rep;
    else
        json_decref(rep);
    json_decref(own);
    return code;
}

/* ================================================================ history and diff views */

json_t *gate_history_json(node_t *n, const char *id, int *status, char *err, size_t errlen)
{
    gate_versions_t v;
    *status = 500;
    if (gate_versions_load(n, id, &v, err, errlen) != 0)
        return NULL;
    if (v.n == 0) {
        *status = 404;
        snprintf(err, errlen, "no product %s in this node's catalog", id);
        gate_versions_free(&v);
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < v.n; i++) {
        char hex[ID_HEX_LEN];
        identity_hex(v.rows[i].signer, hex);
        compat_mode_t mode = COMPAT_DEFAULT_MODE;
        char e[256];
        if (v.m[i])
            compat_manifest_mode(v.m[i], &mode, e, sizeof e);
        const char *cls = "initial";
        int breaking = 0;
        compat_report_t *cr = NULL;
        if (i > 0 && v.m[i] && v.m[i - 1]) {
            cr = compat_check(&v.m[i - 1], 1, v.m[i], base_mode(mode), e, sizeof e);
            cls = cr ? (cr->n ? compat_bump_name(cr->required) : "none") : "unknown";
            breaking = cr && !cr->compatible;
        } else if (i > 0) {
            cls = "unknown";
        }
        json_t *row = json_pack("{s:s,s:I,s:I,s:s,s:s,s:b,s:s,s:I}", "version", v.rows[i].version, "seq",
                                (json_int_t)v.rows[i].seq, "time_ms", (json_int_t)v.rows[i].time_ms,
                                "signer", hex, "change_class", cls, "breaking", breaking, "mode",
                                compat_mode_name(mode), "changes", (json_int_t)(cr ? cr->n : 0));
        compat_report_free(&cr);
        if (v.m[i] && v.m[i]->status)
            json_object_set_new(row, "status", json_string(v.m[i]->status));
        json_array_append_new(arr, row);
    }
    gate_versions_free(&v);
    store_product_t p;
    json_t *j = json_pack("{s:s,s:o}", "id", id, "versions", arr);
    if (j && store_product_get(n->st, id, &p) == 0)
        json_object_set_new(j, "retired", json_boolean(p.retired));
    return j;
}

/* The last version named ver (older builds let one be published twice), or -1. */
static long find_version(const gate_versions_t *v, const char *ver)
{
    for (size_t i = v->n; i-- > 0;)
        if (strcmp(v->rows[i].version, ver) == 0 && v->m[i])
            return (long)i;
    return -1;
}

json_t *gate_diff_json(node_t *n, const char *id, const char *from, const char *to, int *status,
                       char *err, size_t errlen)
{
    gate_versions_t v;
    *status = 500;
    if (gate_versions_load(n, id, &v, err, errlen) != 0)
        return NULL;
    json_t *j = NULL;
    long a = -1, b = -1;
    if (v.n == 0) {
        *status = 404;
        snprintf(err, errlen, "no product %s in this node's catalog", id);
    } else if ((a = find_version(&v, from)) < 0 || (b = find_version(&v, to)) < 0) {
        *status = 404;
        snprintf(err, errlen, "%s has no version %s; see trib history %s", id, a < 0 ? from : to, id);
    } else {
        compat_mode_t mode = COMPAT_DEFAULT_MODE;
        char e[256];
        compat_manifest_mode(v.m[b], &mode, e, sizeof e);
        compat_report_t *cr = compat_check(&v.m[a], 1, v.m[b], base_mode(mode), err, errlen);
        if (cr) {
            j = compat_report_json(cr);
            if (j) {
                json_object_set_new(j, "id", json_string(id));
                json_object_set_new(j, "declared_mode", json_string(compat_mode_name(mode)));
            }
        }
        compat_report_free(&cr);
        if (!j)
            snprintf(err, errlen, "out of memory");
    }
    gate_versions_free(&v);
    return j;
}
