/* node/changes.c - the catalog change feed (changes.h).
 *
 * An event's kind comes from its catalog entry and the product's version before it: a tombstone
 * or a manifest with status retired is "retired"; a manifest moving to status deprecated is
 * "deprecated"; the first manifest of a product is "published"; a later one is "breaking" when
 * it breaks the product's mode against the version before, else "new_version"; each with its
 * change class (patch|minor|major, from node/compat.c). The event names the mode the product
 * declares; a _TRANSITIVE one is judged here as one step against `previous` (the publish gate
 * checked the rest of the line; against every version, each event read would cost as many loads
 * as the product has versions, for any reader of an open feed). An access change is
 * "grant_changed" with its action (requested|granted|denied|revoked) and the product, nothing
 * more. Every node derives the same kinds from the same catalog, so a watcher may follow any node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/clock.h"
#include "gossip/log.h"
#include "node/changes.h"
#include "node/compat.h"
#include "node/view.h"

uint64_t changes_note(node_t *n, const char *event, const char *product, json_t *detail, const char *once)
{
    /* to the millisecond, as every other event's time (an entry's): not cut to the second */
    json_t *j = json_pack("{s:s,s:s,s:I}", "type", "note", "event", event ? event : "note", "time_ms",
                          (json_int_t)clock_wall_ms());
    if (!j)
        return 0;
    if (product)
        json_object_set_new(j, "product", json_string(product));
    if (json_is_object(detail))
        json_object_update_missing(j, detail);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    uint64_t seq = 0;
    char err[256], key[96];
    snprintf(key, sizeof key, "changes.%s", event ? event : "note");
    int rc = !s ? -1
           : once ? store_changes_append_once(n->st, key, once, strlen(once), s, strlen(s), &seq, err, sizeof err)
                  : store_changes_append(n->st, s, strlen(s), &seq, err, sizeof err);
    if (rc != 0) {
        log_warn("change feed: could not note %s: %s", event ? event : "event", s ? err : "out of memory");
        seq = 0;
    }
    free(s);
    if (seq)
        node_notify(n);
    return seq;
}

/* A mode without _TRANSITIVE: what one step, against the version before, is judged by. */
static compat_mode_t step_mode(compat_mode_t mode)
{
    switch (mode) {
    case COMPAT_BACKWARD_TRANSITIVE: return COMPAT_BACKWARD;
    case COMPAT_FORWARD_TRANSITIVE: return COMPAT_FORWARD;
    case COMPAT_FULL_TRANSITIVE: return COMPAT_FULL;
    default: return mode;
    }
}

typedef struct {
    uint64_t before;        /* catalog seq of the event's entry */
    uint64_t prev_seq;      /* the latest manifest seq below it, 0: none */
} prev_t;

static int prev_cb(void *ctx, const store_version_t *v)
{
    prev_t *p = ctx;
    if (v->seq >= p->before)
        return 1;
    p->prev_seq = v->seq;
    return 0;
}

/* Fills ev for a catalog row: kind, version, previous version, class. */
static void catalog_event(node_t *n, json_t *ev, const char *domain, uint64_t cseq, const char *product,
                          int tombstone)
{
    json_object_set_new(ev, "domain", json_string(domain));
    json_object_set_new(ev, "catalog_seq", json_integer((json_int_t)cseq));
    if (tombstone) {
        json_object_set_new(ev, "event", json_string("retired"));
        return;
    }
    Trib__SignedEntry *se = NULL, *pse = NULL;
    Trib__CatalogEntry *ce = NULL, *pce = NULL;
    if (view_load_manifest(n, domain, cseq, &se, &ce) != 0 || !ce->manifest) {
        json_object_set_new(ev, "event", json_string("unknown"));
        view_free_entry(&se, &ce);
        return;
    }
    const Trib__Manifest *m = ce->manifest;
    json_object_set_new(ev, "version", json_string(m->version ? m->version : ""));
    json_object_set_new(ev, "status", json_string(m->status ? m->status : ""));
    prev_t p = {.before = cseq};
    const Trib__Manifest *pm = NULL;
    if (store_history(n->st, product, prev_cb, &p) == 0 && p.prev_seq &&
        view_load_manifest(n, domain, p.prev_seq, &pse, &pce) == 0)
        pm = pce->manifest;
    const char *kind;
    if (m->status && strcmp(m->status, "retired") == 0)
        kind = "retired";
    else if (!pm)
        kind = "published";
    else if (m->status && strcmp(m->status, "deprecated") == 0 && (!pm->status || strcmp(pm->status, "deprecated")))
        kind = "deprecated";
    else
        kind = "new_version";
    if (pm) {
        json_object_set_new(ev, "previous", json_string(pm->version ? pm->version : ""));
        char e[256];
        compat_mode_t mode;
        compat_manifest_mode(m, &mode, e, sizeof e);
        compat_report_t *r = compat_check(&pm, 1, m, step_mode(mode), e, sizeof e);
        if (r) {
            json_object_set_new(ev, "change_class", json_string(r->n ? compat_bump_name(r->required) : "none"));
            json_object_set_new(ev, "breaking", json_boolean(!r->compatible));
            /* the mode the product declares; the verdict is against `previous` alone (a step) */
            json_object_set_new(ev, "mode", json_string(compat_mode_name(mode)));
            if (!r->compatible && strcmp(kind, "new_version") == 0)
                kind = "breaking";
            compat_report_free(&r);
        }
    }
    json_object_set_new(ev, "event", json_string(kind));
    view_free_entry(&pse, &pce);
    view_free_entry(&se, &ce);
}

json_t *changes_event(node_t *n, uint64_t seq, const void *raw, size_t len)
{
    json_t *row = json_loadb(raw, len, 0, NULL);
    if (!json_is_object(row)) {
        json_decref(row);
        return NULL;
    }
    json_t *ev = json_pack("{s:I}", "seq", (json_int_t)seq);
    const char *type = json_string_value(json_object_get(row, "type"));
    const char *product = json_string_value(json_object_get(row, "product"));
    if (product)
        json_object_set_new(ev, "product", json_string(product));
    json_t *t = json_object_get(row, "time_ms");
    if (t)
        json_object_set(ev, "time_ms", t);
    if (type && strcmp(type, "grant") == 0) {
        /* Named fields only, the same to every caller: the product (a restricted product's stub
         * shows its id too) and what happened; never who, which fields or why (the access
         * routes show those to the owner and the subject). */
        const char *action = json_string_value(json_object_get(row, "action"));
        if (!product || !action) {
            json_decref(row);
            json_decref(ev);
            return NULL;
        }
        json_object_set_new(ev, "event", json_string("grant_changed"));
        json_object_set_new(ev, "action", json_string(action));
        json_object_set_new(ev, "domain", json_stringn(product, strcspn(product, "/")));
    } else if (type && strcmp(type, "catalog") == 0) {
        const char *domain = json_string_value(json_object_get(row, "domain"));
        if (!domain || !product) {
            json_decref(row);
            json_decref(ev);
            return NULL;
        }
        catalog_event(n, ev, domain, (uint64_t)json_integer_value(json_object_get(row, "seq")), product,
                      json_is_true(json_object_get(row, "tombstone")));
        if (json_is_true(json_object_get(row, "backfill")))   /* recorded at open, after the fact */
            json_object_set_new(ev, "backfilled", json_true());
    } else {
        json_object_update_missing(ev, row);
        json_object_del(ev, "type");
        if (product && !json_object_get(ev, "domain")) {
            size_t dl = strcspn(product, "/");
            json_object_set_new(ev, "domain", json_stringn(product, dl));
        }
    }
    json_decref(row);
    return ev;
}

typedef struct {
    uint64_t seq;
    char *raw;
    size_t len;
} row_t;

/* Copies one row out of the read transaction (events are built outside it: they read more). */
static int row_cb(void *ctx, uint64_t seq, const void *raw, size_t len)
{
    row_t *r = ctx;
    r->seq = seq;
    r->raw = malloc(len ? len : 1);
    if (r->raw) {
        memcpy(r->raw, raw, len);
        r->len = len;
    }
    return 1;
}

/* Appends line and a newline to buf. 0 or -1. */
static int put_line(char **buf, size_t *len, size_t *cap, const char *line)
{
    size_t n = strlen(line);
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, line, n);
    (*buf)[*len + n] = '\n';
    *len += n + 1;
    return 0;
}

/* ev as its product's stub (changes_page): what the stub shows, and when. */
static json_t *stub_event(json_t *ev)
{
    static const char *const keep[] = {"seq", "product", "domain", "catalog_seq", "status", "time_ms", "backfilled"};
    json_t *s = json_object();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(ev, keep[i]);
        if (v)
            json_object_set(s, keep[i], v);
    }
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (kind && (!strcmp(kind, "new_version") || !strcmp(kind, "breaking")))
        kind = "changed";
    json_object_set_new(s, "event", json_string(kind ? kind : "changed"));
    json_object_set_new(s, "stub", json_true());
    json_decref(ev);
    return s;
}

long changes_page(node_t *n, uint64_t from, uint64_t max, const char *domain, const char *product,
                  changes_hides_fn hides, void *hides_ctx, char **buf, size_t *len, size_t *cap, uint64_t *next)
{
    long count = 0;
    *next = from ? from : 1;
    while ((uint64_t)count < max) {
        row_t r = {0};
        long got = store_changes_read(n->st, *next, 1, row_cb, &r);
        if (got < 0) {
            free(r.raw);
            return count ? count : -1;
        }
        if (got == 0)
            break;
        if (!r.raw)
            return count ? count : -1;
        count++;
        *next = r.seq + 1;
        json_t *ev = changes_event(n, r.seq, r.raw, r.len);
        free(r.raw);
        if (!ev)
            continue;
        const char *d = json_string_value(json_object_get(ev, "domain"));
        const char *pr = json_string_value(json_object_get(ev, "product"));
        int keep = (!d && !pr) ||   /* about every product (policy_changed): under any filter */
                   ((!domain || !*domain || (d && strcmp(d, domain) == 0)) &&
                    (!product || !*product || (pr && strcmp(pr, product) == 0)));
        if (keep && pr && hides && hides(hides_ctx, pr))
            ev = stub_event(ev);
        char *line = keep && ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
        if (keep && (!line || put_line(buf, len, cap, line) != 0)) {
            free(line);
            return -1;
        }
        free(line);
    }
    return count;
}
