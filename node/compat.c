/* node/compat.c - schema compatibility and versioning of data products.
 *
 * Owns: the compatibility modes, the report of a new manifest against the earlier versions in a
 * mode (each change's verdict and bump, and for a _TRANSITIVE mode the breaks only an older
 * version shows), the version rule, and the report as JSON.
 * Must not: compare manifests itself (node/compat_diff.c turns two manifests into a change list),
 * store, sign, evaluate policy sets, or print.
 *
 * Sections: modes / report / version rule / JSON. */
#include "node/compat_int.h"
#include "node/manifest.h"
#include "node/semver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ modes */

static const char *const k_modes[] = {
    [COMPAT_BACKWARD] = "BACKWARD",
    [COMPAT_FORWARD] = "FORWARD",
    [COMPAT_FULL] = "FULL",
    [COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
    [COMPAT_NONE] = "NONE",
};

int compat_mode_parse(const char *s, compat_mode_t *out)
{
    for (size_t i = 0; s != NULL && i < sizeof k_modes / sizeof k_modes[0]; i++)
        if (strcmp(s, k_modes[i]) == 0) {
            *out = (compat_mode_t)i;
            return 0;
        }
    return -1;
}

int compat_manifest_mode(const Trib__Manifest *m, compat_mode_t *out, char *err, size_t errlen)
{
    json_t *doc = manifest_document(m);
    int rc = compat_doc_mode(doc, out, err, errlen);
    json_decref(doc);
    return rc;
}

int compat_doc_mode(const json_t *doc, compat_mode_t *out, char *err, size_t errlen)
{
    *out = COMPAT_DEFAULT_MODE;
    const json_t *v = json_object_get(doc, "compatibility");
    int rc = 0;
    if (v != NULL && !json_is_null(v) &&
        (!json_is_string(v) || compat_mode_parse(json_string_value(v), out) != 0)) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(err, errlen, "compatibility: %.64s is not a mode; expected one of BACKWARD, "
                 "FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, FULL_TRANSITIVE, NONE",
                 t ? t : "the value");
        free(t);
        *out = COMPAT_DEFAULT_MODE;
        rc = -1;
    }
    return rc;
}

const char *compat_mode_name(compat_mode_t m)
{
    return (unsigned)m < sizeof k_modes / sizeof k_modes[0] ? k_modes[m] : "?";
}

const char *compat_bump_name(compat_bump_t b)
{
    static const char *const names[] = {"none", "patch", "minor", "major"};
    return (unsigned)b < 4 ? names[b] : "?";
}

static int is_transitive(compat_mode_t m)
{
    return m == COMPAT_BACKWARD_TRANSITIVE || m == COMPAT_FORWARD_TRANSITIVE ||
           m == COMPAT_FULL_TRANSITIVE;
}

/* Does a change with these verdicts break mode? */
static int breaks(compat_mode_t m, int bw, int fw)
{
    switch (m) {
    case COMPAT_BACKWARD: case COMPAT_BACKWARD_TRANSITIVE: return !bw;
    case COMPAT_FORWARD: case COMPAT_FORWARD_TRANSITIVE: return !fw;
    case COMPAT_FULL: case COMPAT_FULL_TRANSITIVE: return !bw || !fw;
    case COMPAT_NONE: return 0;
    }
    return 1;
}

/* ================================================================ report */

void compat_report_free(compat_report_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    compat_report_t *r = *rp;
    for (size_t i = 0; i < r->n; i++)
        compat_change_clear(&r->changes[i]);
    free(r->changes);
    free(r->from_version);
    free(r->to_version);
    free(r);
    *rp = NULL;
}

/* A change's identity across versions: kind, path, from, to ("kind US path US from US to", a
 * missing from/to as RS), written into buf when it fits (the usual case: no allocation), else
 * malloc'd. NULL (l->oom) when out of memory; free it when it is not buf. */
static char *change_key(clist_t *l, const compat_change_t *c, char *buf, size_t cap)
{
    char kind[24];   /* the kind in decimal (a small enum, never negative) */
    int nk = 0;
    for (unsigned v = (unsigned)c->kind, d = 1; ; d *= 10)
        if (v / d < 10) {
            for (; d; d /= 10)
                kind[nk++] = (char)('0' + v / d % 10);
            break;
        }
    const char *part[4] = {kind, c->path ? c->path : "", c->from ? c->from : "\x1e", c->to ? c->to : "\x1e"};
    size_t len[4], total = 4;   /* three separators and the NUL */
    for (int i = 0; i < 4; i++)
        total += len[i] = i == 0 ? (size_t)nk : strlen(part[i]);
    char *k = total <= cap ? buf : malloc(total);
    if (k == NULL) {
        l->oom = 1;
        return NULL;
    }
    char *w = k;
    for (int i = 0; i < 4; i++) {
        if (i)
            *w++ = '\x1f';
        memcpy(w, part[i], len[i]);
        w += len[i];
    }
    *w = '\0';
    return k;
}

/* Remembers that out->v[i] has the identity of that change. */
static void index_put(clist_t *out, json_t *ix, size_t i)
{
    char buf[256], *k = change_key(out, &out->v[i], buf, sizeof buf);
    if (k == NULL || json_object_set_new(ix, k, json_integer((json_int_t)i)) != 0)
        out->oom = 1;
    if (k != buf)
        free(k);
}

/* The changes from an older version of a transitive check: every change seen against the latest
 * one too (its against list grows) and every break; the rest is dropped before it is built. A
 * break not yet in ix is noted in brk (it will be when processed: a later change of the same
 * identity in this version is kept too, as when every change was built). */
typedef struct {
    compat_mode_t mode;
    json_t *ix, *brk;
    clist_t *out;
} older_t;

static int breaks(compat_mode_t m, int bw, int fw);

static int keep_older(void *ctx, const compat_change_t *c)
{
    older_t *o = ctx;
    char buf[256], *k = change_key(o->out, c, buf, sizeof buf);
    if (k == NULL)
        return 1;   /* out of memory (noted in out): kept, as before */
    int keep = json_object_get(o->ix, k) != NULL || (o->brk != NULL && json_object_get(o->brk, k) != NULL);
    if (!keep && breaks(o->mode, c->backward, c->forward)) {
        keep = 1;
        if ((o->brk == NULL && (o->brk = json_object()) == NULL) || json_object_set_new(o->brk, k, json_true()) != 0)
            o->out->oom = 1;
    }
    if (k != buf)
        free(k);
    return keep;
}

/* Appends version to c->against ("1.1.0, 1.0.0"), naming at most COMPAT_MAX_AGAINST: a product
 * with thousands of versions must not make each change's list quadratic to build. */
static void add_against(clist_t *l, compat_change_t *c, const char *version)
{
    if (c->n_against++ >= COMPAT_MAX_AGAINST)
        return;
    char *s = c->against ? clist_printf(l, "%s, %s", c->against, version)
                         : clist_strdup(l, version);
    if (s != NULL) {
        free(c->against);
        c->against = s;
    }
}

static compat_bump_t bump_of(compat_mode_t mode, const compat_change_t *c)
{
    int cls = compat_kind_class(c->kind);
    if (cls == COMPAT_CLASS_ANNOTATION)
        return COMPAT_BUMP_PATCH;
    if (cls == COMPAT_CLASS_METADATA)
        return COMPAT_BUMP_MINOR;
    return mode == COMPAT_NONE || c->breaking ? COMPAT_BUMP_MAJOR : COMPAT_BUMP_MINOR;
}

compat_report_t *compat_check(const Trib__Manifest *const *earlier, size_t n,
                              const Trib__Manifest *next, compat_mode_t mode,
                              char *err, size_t errlen)
{
    return compat_check_docs(earlier, NULL, n, next, mode, err, errlen);
}

compat_report_t *compat_check_docs(const Trib__Manifest *const *earlier, json_t *const *docs, size_t n,
                                   const Trib__Manifest *next, compat_mode_t mode,
                                   char *err, size_t errlen)
{
    compat_version_t *ev = calloc(n ? n : 1, sizeof *ev);
    if (ev == NULL) {
        snprintf(err, errlen, "out of memory comparing manifests");
        return NULL;
    }
    for (size_t i = 0; earlier != NULL && i < n; i++)
        ev[i] = (compat_version_t){.m = earlier[i], .doc = docs ? docs[i] : NULL};
    compat_report_t *r = compat_check_versions(earlier ? ev : NULL, n, next, NULL, mode, err, errlen);
    free(ev);
    return r;
}

static const char *version_of(const compat_version_t *v)
{
    return v->version ? v->version : v->m && v->m->version ? v->m->version : "";
}

compat_report_t *compat_check_versions(const compat_version_t *earlier, size_t n, const Trib__Manifest *next,
                                       json_t *next_doc, compat_mode_t mode, char *err, size_t errlen)
{
    if (n == 0 || earlier == NULL || next == NULL) {
        snprintf(err, errlen, "nothing to compare with: no earlier version");
        return NULL;
    }
    if ((unsigned)mode >= sizeof k_modes / sizeof k_modes[0]) {
        snprintf(err, errlen, "unknown compatibility mode %d", (int)mode);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if ((earlier[i].m == NULL && (i + 1 == n || earlier[i].prep == NULL)) ||
            (earlier[i].m != NULL && (!compat_str_eq(earlier[i].m->domain, next->domain) ||
                                      !compat_str_eq(earlier[i].m->name, next->name)))) {
            snprintf(err, errlen, "earlier version %zu is not %s/%s", i,
                     next->domain ? next->domain : "", next->name ? next->name : "");
            return NULL;
        }
    clist_t out = {0};
    const compat_version_t *latest = &earlier[n - 1];
    side_t ns, os;
    compat_side_init_prepared(&out, &ns, next, next_doc, NULL);
    compat_side_init_prepared(&out, &os, latest->m, latest->doc, latest->prep);
    compat_diff_manifests(&out, &os, &ns);
    compat_side_clear(&os);
    for (size_t i = 0; i < out.n; i++) {
        out.v[i].breaking = breaks(mode, out.v[i].backward, out.v[i].forward);
        add_against(&out, &out.v[i], version_of(latest));
    }
    json_t *ix = is_transitive(mode) ? json_object() : NULL;   /* change key -> index in out */
    if (is_transitive(mode) && ix == NULL)
        out.oom = 1;
    for (size_t i = 0; ix != NULL && i < out.n; i++)
        index_put(&out, ix, i);
    for (size_t v = n - 1; ix != NULL && v-- > 0 && !out.oom;) {
        older_t keep = {.mode = mode, .ix = ix, .out = &out};
        clist_t old = {.keep = keep_older, .keep_ctx = &keep};
        const char *ver = version_of(&earlier[v]);
        compat_side_init_prepared(&old, &os, earlier[v].m, earlier[v].doc, earlier[v].prep);
        compat_diff_schema(&old, &os, &ns);   /* only schema changes can break the mode */
        compat_side_clear(&os);
        json_decref(keep.brk);
        for (size_t i = 0; i < old.n && !old.oom && !out.oom; i++) {
            compat_change_t *c = &old.v[i];
            int brk = breaks(mode, c->backward, c->forward);
            char buf[256], *k = change_key(&old, c, buf, sizeof buf);
            json_t *at = k ? json_object_get(ix, k) : NULL;
            if (k != buf)
                free(k);
            if (at != NULL) {
                compat_change_t *d = &out.v[json_integer_value(at)];
                d->breaking |= brk;
                add_against(&out, d, ver);
            } else if (brk) {   /* a break only an older version shows: the transitive catch */
                compat_change_t *d = clist_push(&out);
                if (d == NULL)
                    break;
                *d = *c;
                memset(c, 0, sizeof *c);
                d->breaking = 1;
                add_against(&out, d, ver);
                index_put(&out, ix, out.n - 1);
            }
        }
        out.oom |= old.oom;
        for (size_t i = 0; i < old.n; i++)
            compat_change_clear(&old.v[i]);
        free(old.v);
    }
    json_decref(ix);
    compat_side_clear(&ns);
    compat_report_t *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->mode = mode;
        r->compatible = 1;
        r->changes = out.v;
        r->n = out.n;
        r->from_version = clist_strdup(&out, version_of(latest));
        r->to_version = clist_strdup(&out, next->version ? next->version : "");
        for (size_t i = 0; i < r->n; i++) {
            compat_change_t *c = &r->changes[i];
            c->bump = bump_of(mode, c);
            if (c->bump > r->required)
                r->required = c->bump;
            if (c->breaking)
                r->compatible = 0;
        }
    }
    if (r == NULL || out.oom) {
        if (r == NULL) {
            for (size_t i = 0; i < out.n; i++)
                compat_change_clear(&out.v[i]);
            free(out.v);
        }
        compat_report_free(&r);
        snprintf(err, errlen, "out of memory comparing manifests");
        return NULL;
    }
    return r;
}

/* ================================================================ version rule */

/* The first change needing the report's required bump. */
static const compat_change_t *first_needing(const compat_report_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->changes[i].bump == r->required)
            return &r->changes[i];
    return NULL;
}

int compat_version_check(const compat_report_t *r, char *err, size_t errlen)
{
    semver_t a, b;
    char why[320];
    if (semver_parse(r->from_version, &a, why, sizeof why) != 0) {
        snprintf(err, errlen, "published version: %s", why);
        return -1;
    }
    if (semver_parse(r->to_version, &b, why, sizeof why) != 0) {
        snprintf(err, errlen, "version: %s", why);
        return -1;
    }
    int cmp = semver_compare(&b, &a);
    if (cmp < 0) {
        snprintf(err, errlen, "version: %s is lower than the published %s; versions only go up",
                 r->to_version, r->from_version);
        return -1;
    }
    if (cmp == 0 && r->n == 0)
        return 0;   /* unchanged */
    int step = cmp == 0 ? 0 : semver_step(&a, &b);   /* the same version: no step at all */
    int need = (int)r->required;   /* none 0, patch 1, minor 2, major 3 */
    if (need == 0)
        need = 1;   /* changes, even none needing a bump, are a new version */
    if (need == 3 && a.major == 0 && step >= 2)
        need = 2;   /* semver §4: anything may change while the major is 0 */
    if (step >= need)
        return 0;
    const compat_change_t *c = first_needing(r);
    char next[96];
    if (need == 3)
        snprintf(next, sizeof next, "%llu.0.0", (unsigned long long)a.major + 1);
    else if (need == 2)
        snprintf(next, sizeof next, "%llu.%llu.0", (unsigned long long)a.major,
                 (unsigned long long)a.minor + 1);
    else
        snprintf(next, sizeof next, "%llu.%llu.%llu", (unsigned long long)a.major,
                 (unsigned long long)a.minor, (unsigned long long)a.patch + 1);
    const char *what = need < 3 ? "change" : r->mode == COMPAT_NONE
                     ? "schema change under NONE (nothing is checked, so every one is major)"
                     : "breaking change under ";
    char same[160] = "";
    if (cmp == 0)
        snprintf(same, sizeof same, "%.96s is already published with different content: ", r->from_version);
    snprintf(err, errlen, "version: %s%s%s (%s: %s) needs a %s version, e.g. %s, not %s", same, what,
             need == 3 && r->mode != COMPAT_NONE ? compat_mode_name(r->mode) : "",
             c && c->path ? c->path : "?", c ? compat_kind_name(c->kind) : "?",
             compat_bump_name((compat_bump_t)need), next, r->to_version);
    return -1;
}

/* ================================================================ JSON */

static const char *severity(const compat_change_t *c)
{
    if (c->breaking)
        return "error";
    if (c->kind == COMPAT_CLASSIFICATION_LOWERED || c->kind == COMPAT_CONSTRAINT_CHANGED)
        return "warning";
    return "info";
}

/* "1.0.0, 1.1.0" -> ["1.0.0", "1.1.0"] */
static json_t *versions_json(const char *s)
{
    json_t *arr = json_array();
    while (arr != NULL && s != NULL && *s) {
        size_t n = strcspn(s, ",");
        json_array_append_new(arr, json_stringn(s, n));
        s += n;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return arr;
}

json_t *compat_report_json(const compat_report_t *r)
{
    char verr[512];
    int vok = compat_version_check(r, verr, sizeof verr) == 0;
    json_t *changes = json_array(), *messages = json_array();
    json_t *o = json_pack("{s:b, s:s, s:s?, s:s?, s:s, s:b, s:o, s:o}", "compatible",
                          r->compatible, "mode", compat_mode_name(r->mode), "from", r->from_version,
                          "to", r->to_version, "required_bump", compat_bump_name(r->required),
                          "version_ok", vok, "messages", messages, "changes", changes);
    if (o == NULL)
        return NULL;
    if (!vok)
        json_object_set_new(o, "version_error", json_string(verr));
    for (size_t i = 0; i < r->n; i++) {
        const compat_change_t *c = &r->changes[i];
        json_t *e = json_pack("{s:s?, s:s, s:b, s:b, s:b, s:s, s:s, s:o, s:I, s:s?}", "path", c->path,
                              "change", compat_kind_name(c->kind), "backward", c->backward,
                              "forward", c->forward, "full", c->backward && c->forward, "bump",
                              compat_bump_name(c->bump), "severity", severity(c),
                              "against_versions", versions_json(c->against), "against_count",
                              (json_int_t)c->n_against, "message",
                              c->message);
        if (e == NULL || json_array_append_new(changes, e) != 0) {
            json_decref(o);
            return NULL;
        }
        json_t *vd = json_object();   /* the change's verdict under every mode */
        for (size_t m = 0; vd != NULL && m < sizeof k_modes / sizeof k_modes[0]; m++)
            json_object_set_new(vd, k_modes[m],
                                json_boolean(!breaks((compat_mode_t)m, c->backward, c->forward)));
        json_object_set_new(e, "verdicts", vd ? vd : json_null());
        json_object_set_new(e, "breaking", json_boolean(c->breaking));
        if (c->from != NULL)
            json_object_set_new(e, "from", json_string(c->from));
        if (c->to != NULL)
            json_object_set_new(e, "to", json_string(c->to));
        if (c->breaking)
            json_array_append_new(messages,
                                  json_sprintf("%s: %s (against %s)", c->path ? c->path : "",
                                               c->message ? c->message : "",
                                               c->against ? c->against : ""));
    }
    return o;
}
