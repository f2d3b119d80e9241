/* node/compat_diff.c - the diff of two manifests of one product into a change list.
 *
 * Owns: the change kinds and their verdicts (the table of research/governance-anchors.md C.2,
 * k_kinds below), the change list and its helpers, the schema diff (properties recursively, by
 * name: type, required, key, default, classification, options, enum, nested properties and
 * items) and the manifest diff (schema, key order, classification, status, the other fields).
 * Must not: decide a mode's verdict, look at more than two versions, bump or check versions, build
 * the JSON report (node/compat.c does); store, sign, evaluate policy sets, or print. Inputs come
 * from peers too: every field of the document is checked for its JSON type before use, and
 * nesting is bounded.
 *
 * Sections: kinds / change list / schema diff / manifest diff. */
#include "node/compat_int.h"
#include "node/manifest.h"
#include "node/records.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NEST   40    /* object/array nesting compared; the manifest parser allows 64 levels of
                            JSON, which is at most 32 of properties */
#define MAX_TEXT   200   /* from/to values longer than this are cut */

/* ================================================================ kinds */

/* Verdicts of C.2: backward = new reads old, forward = old reads new. A row whose verdict depends
 * on a `default` is decided where the change is found (add()'s bw/fw), the table holds the
 * default-less verdict. */
static const struct {
    const char *name;
    int backward, forward, cls;
    const char *why;
} k_kinds[] = {
    [COMPAT_FIELD_ADDED_OPTIONAL] = {"field_added_optional", 1, 1, COMPAT_CLASS_SCHEMA,
        "field added as optional (or with a default): readers of the old schema ignore it, "
        "readers of the new one read old records as null or the default"},
    [COMPAT_FIELD_ADDED_REQUIRED] = {"field_added_required", 0, 1, COMPAT_CLASS_SCHEMA,
        "required field added without a default: records written before lack it, so the new "
        "schema cannot read them (READER_FIELD_MISSING_DEFAULT_VALUE)"},
    [COMPAT_FIELD_REMOVED_OPTIONAL] = {"field_removed_optional", 1, 1, COMPAT_CLASS_SCHEMA,
        "optional field removed: readers of the new schema ignore it in old records"},
    [COMPAT_FIELD_REMOVED_REQUIRED] = {"field_removed_required", 1, 0, COMPAT_CLASS_SCHEMA,
        "required field removed: readers of the old schema expect it in new records"},
    [COMPAT_OPTIONAL_TO_REQUIRED] = {"optional_to_required", 0, 1, COMPAT_CLASS_SCHEMA,
        "optional -> required: old records may lack it or hold null"},
    [COMPAT_REQUIRED_TO_OPTIONAL] = {"required_to_optional", 1, 0, COMPAT_CLASS_SCHEMA,
        "required -> optional: readers of the old schema expect a value in new records"},
    [COMPAT_TYPE_WIDENED] = {"type_widened", 1, 0, COMPAT_CLASS_SCHEMA,
        "type widened: the new schema reads old values, readers of the old schema cannot read "
        "new ones"},
    [COMPAT_TYPE_NARROWED] = {"type_narrowed", 0, 1, COMPAT_CLASS_SCHEMA,
        "type narrowed: old values may not fit the new type"},
    [COMPAT_TYPE_CHANGED] = {"type_changed", 0, 0, COMPAT_CLASS_SCHEMA,
        "type changed: neither schema reads the other's values; use a new field name or a new "
        "major version"},
    [COMPAT_PRIMARY_KEY_CHANGED] = {"primary_key_changed", 0, 0, COMPAT_CLASS_SCHEMA,
        "primary key changed: the identity of records (routing, upsert, dedupe) changes, which "
        "is always breaking"},
    [COMPAT_ENUM_VALUE_ADDED] = {"enum_value_added", 1, 0, COMPAT_CLASS_SCHEMA,
        "enum value added: readers of the old schema reject it (MISSING_ENUM_SYMBOLS)"},
    [COMPAT_ENUM_VALUE_REMOVED] = {"enum_value_removed", 0, 1, COMPAT_CLASS_SCHEMA,
        "enum value removed: old records may hold it"},
    [COMPAT_CONSTRAINT_RELAXED] = {"constraint_relaxed", 1, 0, COMPAT_CLASS_SCHEMA,
        "constraint relaxed: new values may fail readers of the old schema"},
    [COMPAT_CONSTRAINT_TIGHTENED] = {"constraint_tightened", 0, 1, COMPAT_CLASS_SCHEMA,
        "constraint tightened: old records may not satisfy it"},
    [COMPAT_CONSTRAINT_CHANGED] = {"constraint_changed", 0, 0, COMPAT_CLASS_SCHEMA,
        "constraint replaced by one neither looser nor tighter: breaking both ways"},
    [COMPAT_DEFAULT_CHANGED] = {"default_changed", 1, 1, COMPAT_CLASS_METADATA,
        "default changed: readers fill another value where a record lacks the field"},
    [COMPAT_CLASSIFICATION_RAISED] = {"classification_raised", 1, 1, COMPAT_CLASS_METADATA,
        "classification raised: access grants are re-evaluated"},
    [COMPAT_CLASSIFICATION_LOWERED] = {"classification_lowered", 1, 1, COMPAT_CLASS_METADATA,
        "classification lowered: needs governance approval (policy)"},
    [COMPAT_METADATA_CHANGED] = {"metadata_changed", 1, 1, COMPAT_CLASS_METADATA,
        "metadata changed"},
    [COMPAT_ANNOTATION_CHANGED] = {"annotation_changed", 1, 1, COMPAT_CLASS_ANNOTATION,
        "annotation changed"},
};

const char *compat_kind_name(compat_kind_t k)
{
    return (unsigned)k < sizeof k_kinds / sizeof k_kinds[0] ? k_kinds[k].name : "?";
}

int compat_kind_class(compat_kind_t k)
{
    return k_kinds[k].cls;
}

/* ================================================================ change list */

char *clist_strdup(clist_t *l, const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        l->oom = 1;
    return d;
}

__attribute__((format(printf, 2, 3)))
char *clist_printf(clist_t *l, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
        l->oom = 1;
    }
    va_end(ap);
    return s;
}

/* A JSON value as short text: a string as itself, anything else as compact JSON; NULL for NULL. */
static char *text_of(clist_t *l, const json_t *v)
{
    if (v == NULL)
        return NULL;
    char *s = json_is_string(v) ? strdup(json_string_value(v))
                                : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s == NULL) {
        l->oom = 1;
        return NULL;
    }
    if (strlen(s) > MAX_TEXT) {
        size_t cut = MAX_TEXT - 3;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;   /* not inside a UTF-8 sequence: the text goes into JSON */
        strcpy(s + cut, "...");
    }
    return s;
}

void compat_change_clear(compat_change_t *c)
{
    free(c->path);
    free(c->from);
    free(c->to);
    free(c->against);
    free(c->message);
    memset(c, 0, sizeof *c);
}

/* A new zeroed slot at the end of l, or NULL (l->oom set). */
compat_change_t *clist_push(clist_t *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        compat_change_t *nv = realloc(l->v, ncap * sizeof *nv);
        if (nv == NULL) {
            l->oom = 1;
            return NULL;
        }
        l->v = nv;
        l->cap = ncap;
    }
    compat_change_t *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    return c;
}

/* Appends a change; takes ownership of from and to (either may be NULL). */
static void add(clist_t *l, const char *path, compat_kind_t k, int bw, int fw, char *from, char *to)
{
    if (l->keep != NULL) {
        compat_change_t probe = {.path = (char *)path, .kind = k, .from = from, .to = to, .backward = bw,
                                 .forward = fw};
        if (!l->keep(l->keep_ctx, &probe)) {
            free(from);
            free(to);
            return;
        }
    }
    compat_change_t *c = clist_push(l);
    if (c == NULL) {
        free(from);
        free(to);
        return;
    }
    c->path = clist_strdup(l, path);
    c->kind = k;
    c->from = from;
    c->to = to;
    c->backward = bw;
    c->forward = fw;
    if (from != NULL && to != NULL && strlen(from) + strlen(to) <= 80)
        c->message = clist_printf(l, "%s -> %s: %s", from, to, k_kinds[k].why);
    else
        c->message = clist_strdup(l, k_kinds[k].why);
}

static void add_table(clist_t *l, const char *path, compat_kind_t k, char *from, char *to)
{
    add(l, path, k, k_kinds[k].backward, k_kinds[k].forward, from, to);
}

static char *join(clist_t *l, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (s == NULL) {
        l->oom = 1;
        return NULL;
    }
    memcpy(s, a, na);
    s[na] = '.';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

/* ================================================================ schema diff */

static const char *str_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static int flag_of(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static int has_default(const json_t *p)
{
    return json_object_get(p, "default") != NULL;
}

/* public < internal < confidential < restricted; -1 for anything else. */
static int class_rank(const char *s)
{
    static const char *const ranks[] = {"public", "internal", "confidential", "restricted"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, ranks[i]) == 0)
            return i;
    return -1;
}

static void diff_classification(clist_t *l, const char *path, const char *o, const char *n)
{
    if (strcmp(o, n) == 0)
        return;
    /* a field without one has the product's: giving it one can only raise it */
    int ro = o[0] ? class_rank(o) : -1, rn = n[0] ? class_rank(n) : -1;
    if ((ro < 0 && o[0]) || (rn < 0 && n[0]))
        ro = rn = -2;   /* a word outside the vocabulary: plain metadata */
    compat_kind_t k = ro == -2 ? COMPAT_METADATA_CHANGED
                    : rn > ro ? COMPAT_CLASSIFICATION_RAISED : COMPAT_CLASSIFICATION_LOWERED;
    add_table(l, path, k, clist_strdup(l, o[0] ? o : NULL), clist_strdup(l, n[0] ? n : NULL));
}

/* A widening keeps every old value valid: integer->number, date|timestamp->string. */
static int widens(const char *from, const char *to)
{
    return (strcmp(from, "integer") == 0 && strcmp(to, "number") == 0) ||
           ((strcmp(from, "date") == 0 || strcmp(from, "timestamp") == 0 ||
             strcmp(from, "time") == 0) && strcmp(to, "string") == 0);   /* ODCS has `time` */
}

/* Order of two bounds: numbers by value; RFC 3339 dates, or UTC timestamps of one shape, by
 * text (ODCS gives date/timestamp bounds as strings). 2 when they do not compare. */
static int bound_cmp(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (!json_is_string(a) || !json_is_string(b))
        return 2;
    const char *x = json_string_value(a), *y = json_string_value(b);
    size_t n = json_string_length(a);
    if (n != json_string_length(b))
        return 2;
    int dates = records_valid_date(x, n) && records_valid_date(y, n);
    int utc = records_valid_timestamp(x, n) && records_valid_timestamp(y, n) && x[n - 1] == 'Z' &&
              y[n - 1] == 'Z' && strspn(x, "0123456789-T:Z") == n && strspn(y, "0123456789-T:Z") == n;
    if (!dates && !utc)
        return 2;
    int c = strcmp(x, y);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

static int is_upper(const char *k)
{
    return !strcmp(k, "maximum") || !strcmp(k, "exclusiveMaximum") || !strcmp(k, "maxLength") ||
           !strcmp(k, "maxItems") || !strcmp(k, "maxProperties");
}

static int is_lower(const char *k)
{
    return !strcmp(k, "minimum") || !strcmp(k, "exclusiveMinimum") || !strcmp(k, "minLength") ||
           !strcmp(k, "minItems") || !strcmp(k, "minProperties");
}

static int is_restriction(const char *k)   /* present = narrower than absent */
{
    return !strcmp(k, "pattern") || !strcmp(k, "format") || !strcmp(k, "multipleOf");
}

/* Value set of an enum as a JSON object keyed by each value's compact JSON text. */
static json_t *enum_set(clist_t *l, const json_t *arr)
{
    json_t *set = json_object();
    if (set == NULL) {
        l->oom = 1;
        return NULL;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        if (t == NULL || json_object_set_new(set, t, json_integer((json_int_t)i)) != 0)
            l->oom = 1;
        free(t);
    }
    return set;
}

static void diff_enum(clist_t *l, const char *path, const json_t *o, const json_t *n)
{
    if (!json_is_array(o) || !json_is_array(n)) {   /* added, removed, or not a list */
        if (o == NULL)
            add_table(l, path, COMPAT_CONSTRAINT_TIGHTENED, NULL, text_of(l, n));
        else if (n == NULL)
            add_table(l, path, COMPAT_CONSTRAINT_RELAXED, text_of(l, o), NULL);
        else
            add_table(l, path, COMPAT_CONSTRAINT_CHANGED, text_of(l, o), text_of(l, n));
        return;
    }
    json_t *so = enum_set(l, o), *sn = enum_set(l, n);
    const char *key;
    json_t *v;
    if (so != NULL && sn != NULL) {
        json_object_foreach(sn, key, v)
            if (json_object_get(so, key) == NULL)
                add_table(l, path, COMPAT_ENUM_VALUE_ADDED, NULL, clist_strdup(l, key));
        json_object_foreach(so, key, v)
            if (json_object_get(sn, key) == NULL)
                add_table(l, path, COMPAT_ENUM_VALUE_REMOVED, clist_strdup(l, key), NULL);
    }
    json_decref(so);
    json_decref(sn);
}

/* logicalTypeOptions: bounds, restrictions, enum; anything else is metadata. */
static void diff_options(clist_t *l, const char *path, const json_t *oo, const json_t *no)
{
    json_t *keys = json_object();
    if (keys == NULL) {
        l->oom = 1;
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)oo, k, v) json_object_set(keys, k, json_null());
    json_object_foreach((json_t *)no, k, v) json_object_set(keys, k, json_null());
    json_object_foreach(keys, k, v) {
        const json_t *o = json_object_get(oo, k), *n = json_object_get(no, k);
        if (o != NULL && n != NULL && json_equal(o, n))
            continue;
        char *p = join(l, path, k);
        if (p == NULL)
            break;
        compat_kind_t kind;
        if (!strcmp(k, "enum")) {
            diff_enum(l, p, o, n);
            free(p);
            continue;
        } else if (is_upper(k) || is_lower(k)) {
            if (o == NULL || n == NULL)
                kind = o == NULL ? COMPAT_CONSTRAINT_TIGHTENED : COMPAT_CONSTRAINT_RELAXED;
            else {
                int c = bound_cmp(n, o);   /* new against old */
                kind = c == 2 ? COMPAT_CONSTRAINT_CHANGED
                     : c == 0 ? COMPAT_METADATA_CHANGED   /* 5 vs 5.0 */
                     : (is_upper(k) ? c > 0 : c < 0) ? COMPAT_CONSTRAINT_RELAXED
                                                     : COMPAT_CONSTRAINT_TIGHTENED;
            }
        } else if (is_restriction(k)) {
            kind = o == NULL ? COMPAT_CONSTRAINT_TIGHTENED
                 : n == NULL ? COMPAT_CONSTRAINT_RELAXED : COMPAT_CONSTRAINT_CHANGED;
        } else if (!strcmp(k, "uniqueItems")) {
            int a = json_is_true(o), b = json_is_true(n);
            kind = a == b ? COMPAT_METADATA_CHANGED
                 : b ? COMPAT_CONSTRAINT_TIGHTENED : COMPAT_CONSTRAINT_RELAXED;
        } else {
            kind = COMPAT_METADATA_CHANGED;
        }
        add_table(l, p, kind, text_of(l, o), text_of(l, n));
        free(p);
    }
    json_decref(keys);
}

static void diff_props(clist_t *l, const char *prefix, const json_t *oa, const json_t *na,
                       int depth);
static void diff_node(clist_t *l, const char *path, const json_t *o, const json_t *n, int pk,
                      int depth);

/* A property mapping's keys this file compares itself; the rest go through diff_rest. */
static int is_handled(const char *k)
{
    static const char *const keys[] = {"name", "logicalType", "required", "primaryKey",
        "primaryKeyPosition", "default", "classification", "logicalTypeOptions", "properties",
        "items", "unique", NULL};
    for (const char *const *p = keys; *p; p++)
        if (!strcmp(k, *p))
            return 1;
    return 0;
}

static int is_annotation(const char *k)
{
    static const char *const keys[] = {"description", "title", "businessName", "examples", "tags",
                                       "authoritativeDefinitions", NULL};
    for (const char *const *p = keys; *p; p++)
        if (!strcmp(k, *p))
            return 1;
    return 0;
}

/* Two values at path that differ or not: mappings key by key (a few levels, for paths such as
 * description.usage or sla.freshness), anything else whole. */
static void diff_value(clist_t *l, const char *path, const json_t *a, const json_t *b,
                       compat_kind_t kind, int depth)
{
    if (a != NULL && b != NULL && json_equal(a, b))
        return;
    if (!json_is_object(a) || !json_is_object(b) || depth >= 3) {
        add_table(l, path, kind, text_of(l, a), text_of(l, b));
        return;
    }
    json_t *keys = json_object();
    if (keys == NULL) {
        l->oom = 1;
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) json_object_set(keys, k, json_null());
    json_object_foreach((json_t *)b, k, v) json_object_set(keys, k, json_null());
    json_object_foreach(keys, k, v) {
        char *p = join(l, path, k);
        if (p == NULL)
            break;
        diff_value(l, p, json_object_get(a, k), json_object_get(b, k), kind, depth + 1);
        free(p);
    }
    json_decref(keys);
}

/* The remaining keys of two mappings: annotation or metadata. skip: keys not to look at. */
static void diff_rest(clist_t *l, const char *path, const json_t *o, const json_t *n,
                      int (*skip)(const char *))
{
    json_t *keys = json_object();
    if (keys == NULL) {
        l->oom = 1;
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) json_object_set(keys, k, json_null());
    json_object_foreach((json_t *)n, k, v) json_object_set(keys, k, json_null());
    json_object_foreach(keys, k, v) {
        if (skip(k))
            continue;
        char *p = path[0] ? join(l, path, k) : clist_strdup(l, k);
        if (p == NULL)
            break;
        diff_value(l, p, json_object_get(o, k), json_object_get(n, k),
                   is_annotation(k) ? COMPAT_ANNOTATION_CHANGED : COMPAT_METADATA_CHANGED, 0);
        free(p);
    }
    json_decref(keys);
}

/* Two schemas of one node (a property, or an array's items): type, then what the type holds,
 * then required/primaryKey/default/classification/options, then the rest. pk: the property is
 * (or was) part of the product's key, so a type change also changes the key. */
static void diff_node(clist_t *l, const char *path, const json_t *o, const json_t *n, int pk,
                      int depth)
{
    if (depth > MAX_NEST) {   /* unreachable for parsed manifests: be conservative */
        if (!json_equal(o, n))
            add_table(l, path, COMPAT_TYPE_CHANGED, clist_strdup(l, "(too deep)"),
                      clist_strdup(l, "(too deep)"));
        return;
    }
    if (json_equal(o, n))   /* most properties of a new version: nothing to look at */
        return;
    const char *ot = str_of(o, "logicalType"), *nt = str_of(n, "logicalType");
    char *p = NULL;
    if (strcmp(ot, nt) != 0) {
        compat_kind_t k = widens(ot, nt) ? COMPAT_TYPE_WIDENED
                        : widens(nt, ot) ? COMPAT_TYPE_NARROWED : COMPAT_TYPE_CHANGED;
        if ((p = join(l, path, "logicalType")) != NULL)
            add_table(l, p, k, clist_strdup(l, ot[0] ? ot : "(any)"),
                      clist_strdup(l, nt[0] ? nt : "(any)"));
        free(p), p = NULL;
        if (pk && (p = join(l, path, "logicalType")) != NULL)
            add_table(l, p, COMPAT_PRIMARY_KEY_CHANGED, clist_strdup(l, ot), clist_strdup(l, nt));
        free(p), p = NULL;
    } else if (!strcmp(ot, "object")) {
        if ((p = join(l, path, "properties")) != NULL)
            diff_props(l, p, json_object_get(o, "properties"), json_object_get(n, "properties"),
                       depth + 1);
        free(p), p = NULL;
    } else if (!strcmp(ot, "array")) {
        const json_t *oi = json_object_get(o, "items"), *ni = json_object_get(n, "items");
        if ((p = join(l, path, "items")) != NULL) {
            if (json_is_object(oi) && json_is_object(ni))
                diff_node(l, p, oi, ni, 0, depth + 1);
            else if (json_is_object(oi) != json_is_object(ni))   /* typed items added/removed */
                add_table(l, p, json_is_object(ni) ? COMPAT_CONSTRAINT_TIGHTENED
                                                   : COMPAT_CONSTRAINT_RELAXED,
                          text_of(l, oi), text_of(l, ni));
        }
        free(p), p = NULL;
    }
    int oreq = flag_of(o, "required"), nreq = flag_of(n, "required");
    if (oreq != nreq && (p = join(l, path, "required")) != NULL) {
        if (nreq)   /* a default fills what old records lack */
            add(l, p, COMPAT_OPTIONAL_TO_REQUIRED, has_default(n), 1, clist_strdup(l, "false"),
                clist_strdup(l, "true"));
        else
            add(l, p, COMPAT_REQUIRED_TO_OPTIONAL, 1, has_default(o), clist_strdup(l, "true"),
                clist_strdup(l, "false"));
        free(p), p = NULL;
    }
    if (flag_of(o, "primaryKey") != flag_of(n, "primaryKey") &&
        (p = join(l, path, "primaryKey")) != NULL) {
        add_table(l, p, COMPAT_PRIMARY_KEY_CHANGED,
                  clist_strdup(l, flag_of(o, "primaryKey") ? "true" : "false"),
                  clist_strdup(l, flag_of(n, "primaryKey") ? "true" : "false"));
        free(p), p = NULL;
    }
    if (flag_of(o, "unique") != flag_of(n, "unique") && (p = join(l, path, "unique")) != NULL) {
        add_table(l, p, flag_of(n, "unique") ? COMPAT_CONSTRAINT_TIGHTENED : COMPAT_CONSTRAINT_RELAXED,
                  clist_strdup(l, flag_of(o, "unique") ? "true" : "false"),
                  clist_strdup(l, flag_of(n, "unique") ? "true" : "false"));
        free(p), p = NULL;
    }
    const json_t *od = json_object_get(o, "default"), *nd = json_object_get(n, "default");
    if ((od != NULL || nd != NULL) && !(od && nd && json_equal(od, nd)) &&
        (p = join(l, path, "default")) != NULL) {
        add_table(l, p, COMPAT_DEFAULT_CHANGED, text_of(l, od), text_of(l, nd));
        free(p), p = NULL;
    }
    if ((p = join(l, path, "classification")) != NULL)
        diff_classification(l, p, str_of(o, "classification"), str_of(n, "classification"));
    free(p), p = NULL;
    const json_t *oo = json_object_get(o, "logicalTypeOptions"),
                 *no = json_object_get(n, "logicalTypeOptions");
    if ((json_is_object(oo) || json_is_object(no)) && (p = join(l, path, "logicalTypeOptions"))) {
        diff_options(l, p, json_is_object(oo) ? oo : NULL, json_is_object(no) ? no : NULL);
        free(p), p = NULL;
    }
    diff_rest(l, path, o, n, is_handled);
}

/* Index of a property list: name -> the first mapping of that name (peers may repeat one). */
static json_t *prop_index(clist_t *l, const json_t *arr)
{
    json_t *ix = json_object();
    if (ix == NULL) {
        l->oom = 1;
        return NULL;
    }
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p) {
        const json_t *name = json_object_get(p, "name");
        if (json_is_object(p) && json_is_string(name) &&
            json_object_get(ix, json_string_value(name)) == NULL &&
            json_object_set(ix, json_string_value(name), p) != 0)
            l->oom = 1;
    }
    return ix;
}

static void field_added(clist_t *l, const char *path, const json_t *p)
{
    int req = flag_of(p, "required"), def = has_default(p);
    add_table(l, path, req && !def ? COMPAT_FIELD_ADDED_REQUIRED : COMPAT_FIELD_ADDED_OPTIONAL,
              NULL, clist_strdup(l, str_of(p, "logicalType")));
    if (flag_of(p, "primaryKey"))
        add_table(l, path, COMPAT_PRIMARY_KEY_CHANGED, NULL, clist_strdup(l, "added to the key"));
}

static void field_removed(clist_t *l, const char *path, const json_t *p)
{
    int req = flag_of(p, "required"), def = has_default(p);
    add_table(l, path, req && !def ? COMPAT_FIELD_REMOVED_REQUIRED : COMPAT_FIELD_REMOVED_OPTIONAL,
              clist_strdup(l, str_of(p, "logicalType")), NULL);
    if (flag_of(p, "primaryKey"))
        add_table(l, path, COMPAT_PRIMARY_KEY_CHANGED, clist_strdup(l, "removed from the key"),
                  NULL);
}

/* Two property lists (arrays of mappings; anything else counts as empty), matched by name. */
static void diff_props(clist_t *l, const char *prefix, const json_t *oa, const json_t *na, int depth)
{
    json_t *oi = prop_index(l, json_is_array(oa) ? oa : NULL);
    json_t *ni = prop_index(l, json_is_array(na) ? na : NULL);
    if (oi == NULL || ni == NULL)
        goto out;
    size_t i;
    json_t *np, *op;
    json_array_foreach(na, i, np) {   /* in the new schema's order, then removals */
        const char *name = json_string_value(json_object_get(np, "name"));
        if (name == NULL || json_object_get(ni, name) != np)
            continue;
        op = json_object_get(oi, name);
        if (op != NULL && json_equal(op, np))
            continue;
        char *path = join(l, prefix, name);
        if (path == NULL)
            break;
        if (op == NULL)
            field_added(l, path, np);
        else
            diff_node(l, path, op, np, flag_of(op, "primaryKey") || flag_of(np, "primaryKey"),
                      depth);
        free(path);
    }
    json_array_foreach(oa, i, op) {
        const char *name = json_string_value(json_object_get(op, "name"));
        if (name == NULL || json_object_get(oi, name) != op || json_object_get(ni, name) != NULL)
            continue;
        char *path = join(l, prefix, name);
        if (path == NULL)
            break;
        field_removed(l, path, op);
        free(path);
    }
out:
    json_decref(oi);
    json_decref(ni);
}

/* The key's fields in key order ("a, b"): by primaryKeyPosition where given (ODCS counts from
 * 1, -1 = none), else schema order. */
char *compat_key_order(clist_t *l, const json_t *schema)
{
    size_t n = json_array_size(schema), k = 0;
    const json_t **v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL) {
        l->oom = 1;
        return NULL;
    }
    size_t i;
    json_t *p;
    json_array_foreach(schema, i, p)
        if (flag_of(p, "primaryKey") && json_is_string(json_object_get(p, "name")))
            v[k++] = p;
    for (size_t a = 1; a < k; a++)   /* stable insertion sort by position; unpositioned last */
        for (size_t b = a; b > 0; b--) {
            const json_t *x = json_object_get(v[b - 1], "primaryKeyPosition"),
                         *y = json_object_get(v[b], "primaryKeyPosition");
            double px = json_is_number(x) && json_number_value(x) > 0 ? json_number_value(x) : 1e300;
            double py = json_is_number(y) && json_number_value(y) > 0 ? json_number_value(y) : 1e300;
            if (px <= py)
                break;
            const json_t *t = v[b - 1];
            v[b - 1] = v[b];
            v[b] = t;
        }
    size_t len = 1;
    for (i = 0; i < k; i++)
        len += strlen(str_of(v[i], "name")) + 2;
    char *s = malloc(len);
    if (s == NULL)
        l->oom = 1;
    else {
        s[0] = '\0';
        for (i = 0; i < k; i++) {
            if (i)
                strcat(s, ", ");
            strcat(s, str_of(v[i], "name"));
        }
    }
    free(v);
    return s;
}

/* Same set of key fields in another order: a key change of its own. ka, kb: the key orders of
 * os and ns when known (prepared), else NULL. */
static void diff_key_order(clist_t *l, const json_t *os, const json_t *ns, const char *ka, const char *kb)
{
    if (ka != NULL && kb != NULL && strcmp(ka, kb) == 0)
        return;
    char *a = compat_key_order(l, os), *b = compat_key_order(l, ns);
    if (a == NULL || b == NULL || strcmp(a, b) == 0) {
        free(a);
        free(b);
        return;
    }
    json_t *oi = prop_index(l, os), *ni = prop_index(l, ns);
    int same_set = 1;
    const char *k;
    json_t *v;
    json_object_foreach(oi, k, v)
        if (flag_of(v, "primaryKey") != flag_of(json_object_get(ni, k), "primaryKey"))
            same_set = 0;
    json_object_foreach(ni, k, v)
        if (flag_of(v, "primaryKey") != flag_of(json_object_get(oi, k), "primaryKey"))
            same_set = 0;
    json_decref(oi);
    json_decref(ni);
    if (same_set)   /* else the per-field changes already say it */
        add_table(l, "schema.primaryKey", COMPAT_PRIMARY_KEY_CHANGED, a, b);
    else {
        free(a);
        free(b);
    }
}

/* ================================================================ manifest diff */

/* The schema as mappings: the document's property where it agrees with the Manifest (always,
 * for a manifest node/manifest.c parsed), else one built from the Manifest's fields (name,
 * logicalType, required, primaryKey, description), which are what records are validated
 * against. */
json_t *compat_schema_of(clist_t *l, const Trib__Manifest *m, const json_t *doc)
{
    json_t *arr = json_array(), *ds = json_object_get(doc, "schema");
    if (arr == NULL) {
        l->oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < m->n_schema; i++) {
        const Trib__SchemaProperty *sp = m->schema[i];
        if (sp == NULL || sp->name == NULL)
            continue;
        json_t *dp = json_array_get(ds, i), *p;
        const char *lt = sp->logical_type ? sp->logical_type : "";
        const char *desc = sp->description ? sp->description : "";
        if (json_is_object(dp) && !strcmp(str_of(dp, "name"), sp->name) &&
            !strcmp(str_of(dp, "logicalType"), lt) && flag_of(dp, "required") == sp->required &&
            flag_of(dp, "primaryKey") == sp->primary_key && !strcmp(str_of(dp, "description"), desc)) {
            p = json_incref(dp);
        } else {
            p = json_pack("{s:s, s:s, s:b, s:b}", "name", sp->name, "logicalType", lt, "required",
                          sp->required, "primaryKey", sp->primary_key);
            if (p != NULL && desc[0] != '\0')
                json_object_set_new(p, "description", json_string(desc));
        }
        if (p == NULL || json_array_append_new(arr, p) != 0) {
            l->oom = 1;
            break;
        }
    }
    return arr;
}

void compat_side_init_prepared(clist_t *l, side_t *s, const Trib__Manifest *m, json_t *doc,
                               const compat_prep_t *prep)
{
    s->m = m;
    /* NULL without one: the Manifest's fields still count */
    s->doc = doc != NULL ? json_incref(doc) : m != NULL ? manifest_document(m) : NULL;
    s->prep = prep != NULL ? compat_prep_ref(prep) : m != NULL ? compat_prep_build(l, m, s->doc) : NULL;
}

void compat_side_clear(side_t *s)
{
    json_decref(s->doc);
    compat_prep_unref(&s->prep);
    memset(s, 0, sizeof *s);
}

static int skip_top(const char *k)
{
    return !strcmp(k, "version") || !strcmp(k, "name") || !strcmp(k, "domain") ||
           !strcmp(k, "schema") || !strcmp(k, "classification") || !strcmp(k, "status");
}

/* json_equal of the two schemas, from the encodings where they decide it. */
static int same_schema(const compat_prep_t *o, const compat_prep_t *n)
{
    if (o->n != n->n)
        return 0;
    for (size_t i = 0; i < o->n; i++)
        if (!compat_prep_same(o, i, n, i))
            return json_equal(o->schema, n->schema);
    return 1;
}

/* diff_props_ix of the top-level property lists, the two schemas prepared: a property with the
 * same encoding on both sides is equal without walking it (the usual case: most properties of
 * a version are those of the one before), and names are looked up in the prepared tables. The
 * same changes in the same order. */
static void diff_props_prep(clist_t *l, const compat_prep_t *o, const compat_prep_t *n)
{
    for (size_t j = 0; j < n->n; j++) {   /* in the new schema's order, then removals */
        const struct compat_prop *np = &n->prop[j];
        if (np->name == NULL || !np->first)
            continue;
        /* versions mostly append: the property at the same place, when it is the first of this
         * name there, is the one a lookup finds */
        long i = j < o->n && o->prop[j].first && o->prop[j].hash == np->hash && !strcmp(o->prop[j].name, np->name)
                     ? (long)j : compat_prep_find(o, np->name);
        const json_t *op = i >= 0 ? json_array_get(o->schema, (size_t)i) : NULL,
                     *nj = json_array_get(n->schema, j);
        if (op != NULL && (compat_prep_same(o, (size_t)i, n, j) || json_equal(op, nj)))
            continue;
        char *path = join(l, "schema", np->name);
        if (path == NULL)
            break;
        if (op == NULL)
            field_added(l, path, nj);
        else
            diff_node(l, path, op, nj, flag_of(op, "primaryKey") || flag_of(nj, "primaryKey"), 0);
        free(path);
    }
    for (size_t i = 0; i < o->n; i++) {
        const struct compat_prop *op = &o->prop[i];
        if (op->name == NULL || !op->first ||
            (i < n->n && n->prop[i].first && n->prop[i].hash == op->hash && !strcmp(n->prop[i].name, op->name)) ||
            compat_prep_find(n, op->name) >= 0)
            continue;
        char *path = join(l, "schema", op->name);
        if (path == NULL)
            break;
        field_removed(l, path, json_array_get(o->schema, i));
        free(path);
    }
}

void compat_diff_schema(clist_t *l, const side_t *os, const side_t *ns)
{
    if (os->prep != NULL && ns->prep != NULL && !same_schema(os->prep, ns->prep)) {
        diff_props_prep(l, os->prep, ns->prep);
        diff_key_order(l, os->prep->schema, ns->prep->schema, os->prep->key_order, ns->prep->key_order);
    }
}

void compat_diff_manifests(clist_t *l, const side_t *os, const side_t *ns)
{
    const Trib__Manifest *o = os->m, *n = ns->m;
    compat_diff_schema(l, os, ns);
    diff_classification(l, "classification", o->classification ? o->classification : "",
                        n->classification ? n->classification : "");
    if (!compat_str_eq(o->status, n->status))
        add_table(l, "status", COMPAT_METADATA_CHANGED, clist_strdup(l, o->status),
                  clist_strdup(l, n->status));
    diff_rest(l, "", os->doc, ns->doc, skip_top);
}
