/* node/manifest.c - data product manifests: YAML or JSON text -> validated Trib__Manifest.
 *
 * Owns: choosing JSON (jansson) or YAML (node/yaml.c turns it into the same jansson document,
 * with the line of every value near the top), the field rules of DESIGN.md §8 checked on that
 * document, and building/freeing the Manifest (all of it malloc'd here, freed by manifest_free,
 * never by protobuf-c's __free_unpacked).
 * Must not: parse YAML itself, sign, store, or know about the network. Errors are returned in
 * err, never printed.
 *
 * Sections: limits and small helpers / field validation / Manifest build / entry point. */
#include "node/manifest.h"
#include "gossip/entry.h"
#include "node/compat.h"
#include "node/errtext.h"
#include "node/near.h"
#include "node/semver.h"
#include "node/yaml.h"
#include "storage/store.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ limits and small helpers */

_Static_assert(MANIFEST_MAX_ENCODED < ENTRY_MAX_BYTES, "a manifest must fit in a signed entry");

#define MAX_NAME_LEN     63
#define MAX_OWNER_LEN    254
#define MAX_TAG_LEN      64
#define MAX_TAGS         64
#define MAX_PROP_NAME    256

static const char *const k_status[] = {"draft", "active", "deprecated", "retired", NULL};
static const char *const k_class[] = {"public", "internal", "confidential", "restricted", NULL};
static const char *const k_types[] = {"string", "integer", "number",  "boolean",
                                      "date",   "timestamp", "object", "array", NULL};

static int in_set(const char *const *set, const char *s)
{
    if (s == NULL)
        return 0;
    for (; *set != NULL; set++)
        if (strcmp(*set, s) == 0)
            return 1;
    return 0;
}

/* "a, b, c" into buf. */
static void join_set(const char *const *set, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (const char *const *p = set; *p != NULL && off < cap; p++) {
        int w = snprintf(buf + off, cap - off, "%s%s", p == set ? "" : ", ", *p);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int manifest_valid_status(const char *s) { return in_set(k_status, s); }
int manifest_valid_classification(const char *s) { return in_set(k_class, s); }
int manifest_valid_logical_type(const char *s) { return in_set(k_types, s); }

/* Semantic Versioning 2.0.0: node/semver.c's grammar, the one the compatibility check parses. */
int manifest_valid_semver(const char *s)
{
    semver_t v;
    char err[8];
    return s != NULL && strlen(s) <= SEMVER_MAX_LEN && semver_parse(s, &v, err, sizeof err) == 0;
}

/* ================================================================ field validation */

typedef struct {
    const yaml_lines_t *lines;
    char *err;
    size_t errlen;
} vctx_t;

/* "path: msg (line N); hint" - the line of node at (0 or NULL: none). */
__attribute__((format(printf, 5, 6)))
static int v_fail(vctx_t *c, const json_t *at, const char *path, const char *hint,
                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = yaml_line(c->lines, at);
    char where[32] = "";
    if (line > 0)
        snprintf(where, sizeof where, " (line %d)", line);
    snprintf(c->err, c->errlen, "%s: %s%s%s%s", path, msg, where, hint ? "; " : "", hint ? hint : "");
    return -1;
}

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* Optional or required string member. *out is the value (borrowed) or NULL when absent. */
static int v_string(vctx_t *c, const json_t *obj, const char *key, const char *path, int required,
                    const char **out)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return v_fail(c, v ? v : obj, path, NULL, "required");
        return 0;
    }
    if (!json_is_string(v))
        return v_fail(c, v, path, NULL, "expected a string, got %s", type_word(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return v_fail(c, v, path, NULL, "contains a NUL character");
    if (required && json_string_length(v) == 0)
        return v_fail(c, v, path, NULL, "must not be empty");
    *out = json_string_value(v);
    return 0;
}

static int v_bool(vctx_t *c, const json_t *obj, const char *key, const char *path, int *out)
{
    *out = 0;
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return v_fail(c, v, path, NULL, "expected true or false, got %s", type_word(v));
    *out = json_is_true(v);
    return 0;
}

static int v_id(vctx_t *c, const json_t *obj, const char *key, const char **out)
{
    if (v_string(c, obj, key, key, 1, out) != 0)
        return -1;
    size_t n = strlen(*out);
    if (n > MAX_NAME_LEN)
        return v_fail(c, json_object_get(obj, key), key, NULL,
                      "'%.64s...' is longer than %d characters", *out, MAX_NAME_LEN);
    if (!entry_valid_name(*out))
        return v_fail(c, json_object_get(obj, key), key,
                      "lower-case letters, digits and '-' (not first): " STORE_NAME_RULE,
                      "'%s' is not a valid %s", *out, key);
    return 0;
}

static int v_enum(vctx_t *c, const json_t *obj, const char *key, const char *const *set,
                  const char *what, const char *dflt, const char **out)
{
    if (v_string(c, obj, key, key, 0, out) != 0)
        return -1;
    if (*out == NULL) {
        *out = dflt;
        return 0;
    }
    if (!in_set(set, *out)) {
        char hint[160], list[128];
        join_set(set, list, sizeof list);
        snprintf(hint, sizeof hint, "expected one of %s", list);
        return v_fail(c, json_object_get(obj, key), key, hint, "unknown %s '%.64s'", what, *out);
    }
    return 0;
}

/* An owner: a non-empty email or team handle without whitespace or control characters. */
static int v_owner(vctx_t *c, const json_t *owners, const char *key, const char *path,
                   const char **out)
{
    if (v_string(c, owners, key, path, 1, out) != 0)
        return -1;
    const json_t *v = json_object_get(owners, key);
    size_t n = strlen(*out);
    if (n > MAX_OWNER_LEN)
        return v_fail(c, v, path, NULL, "longer than %d characters", MAX_OWNER_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)(*out)[i];
        if (ch <= ' ' || ch == 0x7f)
            return v_fail(c, v, path, "give an email address or a team handle",
                          "'%.64s' contains whitespace", *out);
    }
    return 0;
}

/* The parts of the document that become Manifest fields (borrowed from the document). */
typedef struct {
    const char *name, *domain, *version, *status, *title, *purpose, *usage, *limitations;
    const char *owner_business, *owner_technical, *classification, *compatibility;
    const json_t *tags;     /* array of strings, or NULL */
    const json_t *schema;   /* array of mappings */
} fields_t;

/* A field the manifest does not know is kept as written; one a typo away from a field it knows
 * (that the mapping lacks) is refused instead: `classfication: restricted` would publish an
 * internal product, `tag: [pii]` an untagged one, `requried: true` in a schema property an optional
 * field, and nobody would be told. obj is the mapping at path (NULL: the document), known the
 * fields the format gives it (NULL-ended). Inside a mapping (path set) only one edit away counts:
 * custom keys there are common, and two edits away (`retired` for required, `stage` for usage) are
 * as likely meant. */
static int v_near_misses(vctx_t *c, const json_t *obj, const char *path, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (known[i])
            continue;
        for (i = 0; known[i]; i++)
            if (!json_object_get(obj, known[i]) &&
                (path ? near_typo_within(k, strlen(k), known[i], 1) : near_typo(k, strlen(k), known[i]))) {
                char at[160];
                snprintf(at, sizeof at, "%s%s%.64s", path ? path : "", path ? "." : "", k);
                return v_fail(c, v, at, NULL,
                              "unknown field; did you mean %s? (a field the manifest does not know is kept as "
                              "written, so a misspelt %s would be lost)", known[i], known[i]);
            }
    }
    return 0;
}

static int v_description(vctx_t *c, const json_t *doc, fields_t *f)
{
    json_t *d = json_object_get(doc, "description");
    if (d == NULL || json_is_null(d))
        return 0;
    if (json_is_string(d))
        return v_string(c, doc, "description", "description", 0, &f->purpose);
    if (!json_is_object(d))
        return v_fail(c, d, "description", NULL,
                      "expected a mapping (purpose, usage, limitations) or a string, got %s",
                      type_word(d));
    static const char *const known[] = {"purpose", "usage", "limitations", NULL};
    return v_near_misses(c, d, "description", known) ||
                   v_string(c, d, "purpose", "description.purpose", 0, &f->purpose) ||
                   v_string(c, d, "usage", "description.usage", 0, &f->usage) ||
                   v_string(c, d, "limitations", "description.limitations", 0, &f->limitations)
               ? -1
               : 0;
}

static int v_owners(vctx_t *c, const json_t *doc, fields_t *f)
{
    json_t *o = json_object_get(doc, "owners");
    if (o == NULL || json_is_null(o))
        return v_fail(c, o, "owners", "give owners.business and owners.technical", "required");
    if (!json_is_object(o))
        return v_fail(c, o, "owners", NULL, "expected a mapping with business and technical, got %s",
                      type_word(o));
    static const char *const known[] = {"business", "technical", NULL};
    if (v_near_misses(c, o, "owners", known) != 0 ||
        v_owner(c, o, "business", "owners.business", &f->owner_business) != 0)
        return -1;
    return v_owner(c, o, "technical", "owners.technical", &f->owner_technical);
}

static int v_tags(vctx_t *c, const json_t *doc, fields_t *f)
{
    json_t *t = json_object_get(doc, "tags");
    if (t == NULL || json_is_null(t))
        return 0;
    if (!json_is_array(t))
        return v_fail(c, t, "tags", NULL, "expected a list of strings, got %s", type_word(t));
    if (json_array_size(t) > MAX_TAGS)
        return v_fail(c, t, "tags", NULL, "%zu tags; the limit is %d", json_array_size(t), MAX_TAGS);
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_t *s = json_array_get(t, i);
        char path[32];
        snprintf(path, sizeof path, "tags[%zu]", i);
        if (!json_is_string(s))
            return v_fail(c, s, path, NULL, "expected a list of strings, got %s", type_word(s));
        size_t n = json_string_length(s);
        if (n == 0)
            return v_fail(c, s, path, NULL, "empty tag");
        if (n > MAX_TAG_LEN)
            return v_fail(c, s, path, NULL, "longer than %d characters", MAX_TAG_LEN);
        if (strlen(json_string_value(s)) != n)
            return v_fail(c, s, path, NULL, "contains a NUL character");
    }
    f->tags = t;
    return 0;
}

static int v_schema(vctx_t *c, const json_t *doc, fields_t *f)
{
    json_t *s = json_object_get(doc, "schema");
    if (s == NULL || json_is_null(s))
        return v_fail(c, s, "schema", "list the properties: - {name: ..., logicalType: ...}",
                      "required");
    if (!json_is_array(s))
        return v_fail(c, s, "schema", NULL, "expected a list of properties, got %s", type_word(s));
    size_t n = json_array_size(s);
    if (n == 0)
        return v_fail(c, s, "schema", NULL, "must list at least one property");
    if (n > MANIFEST_MAX_PROPERTIES)
        return v_fail(c, s, "schema", NULL, "%zu properties; the limit is %d", n,
                      MANIFEST_MAX_PROPERTIES);
    json_t *seen = json_object();   /* name -> index, to find duplicates in O(n) */
    if (seen == NULL)
        return v_fail(c, NULL, "schema", NULL, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *p = json_array_get(s, i);
        char path[64];
        snprintf(path, sizeof path, "schema[%zu]", i);
        if (!json_is_object(p)) {
            rc = v_fail(c, p, path, NULL, "expected a mapping with name and logicalType, got %s",
                        type_word(p));
            break;
        }
        static const char *const known[] = {"name", "logicalType", "required", "primaryKey", "description", NULL};
        if (v_near_misses(c, p, path, known) != 0) {
            rc = -1;
            break;
        }
        const char *name, *type, *desc;
        int b;
        char sub[96];
        snprintf(sub, sizeof sub, "%s.name", path);
        if (v_string(c, p, "name", sub, 1, &name) != 0) {
            rc = -1;
            break;
        }
        if (strlen(name) > MAX_PROP_NAME) {
            rc = v_fail(c, json_object_get(p, "name"), sub, NULL, "longer than %d bytes",
                        MAX_PROP_NAME);
            break;
        }
        json_t *first = json_object_get(seen, name);
        if (first != NULL) {
            char hint[64];
            snprintf(hint, sizeof hint, "first at schema[%" JSON_INTEGER_FORMAT "]",
                     json_integer_value(first));
            rc = v_fail(c, json_object_get(p, "name"), sub, hint, "duplicate property '%s'", name);
            break;
        }
        if (json_object_set_new(seen, name, json_integer((json_int_t)i)) != 0) {
            rc = v_fail(c, NULL, sub, NULL, "out of memory");
            break;
        }
        snprintf(sub, sizeof sub, "%s.logicalType", path);
        if (v_string(c, p, "logicalType", sub, 1, &type) != 0) {
            rc = -1;
            break;
        }
        if (!manifest_valid_logical_type(type)) {
            char hint[160], list[128];
            join_set(k_types, list, sizeof list);
            snprintf(hint, sizeof hint, "expected one of %s", list);
            rc = v_fail(c, json_object_get(p, "logicalType"), sub, hint, "unknown type '%.64s'",
                        type);
            break;
        }
        snprintf(sub, sizeof sub, "%s.required", path);
        if (v_bool(c, p, "required", sub, &b) != 0) {
            rc = -1;
            break;
        }
        snprintf(sub, sizeof sub, "%s.primaryKey", path);
        if (v_bool(c, p, "primaryKey", sub, &b) != 0) {
            rc = -1;
            break;
        }
        snprintf(sub, sizeof sub, "%s.description", path);
        if (v_string(c, p, "description", sub, 0, &desc) != 0) {
            rc = -1;
            break;
        }
    }
    json_decref(seen);
    if (rc == 0)
        f->schema = s;
    return rc;
}

static int v_document(vctx_t *c, const json_t *doc, const char *node_domain, fields_t *f)
{
    static const char *const known[] = {"name", "domain", "version", "status", "title", "description", "owners",
                                        "tags", "classification", "schema", "compatibility", "outputPorts", NULL};
    if (v_near_misses(c, doc, NULL, known) != 0)
        return -1;
    if (v_id(c, doc, "name", &f->name) != 0 || v_id(c, doc, "domain", &f->domain) != 0)
        return -1;
    if (node_domain != NULL && strcmp(f->domain, node_domain) != 0)
        return v_fail(c, json_object_get(doc, "domain"), "domain", NULL,
                      "'%s' is not this node's domain '%s'", f->domain, node_domain);
    json_t *ver = json_object_get(doc, "version");
    if (json_is_number(ver))
        return v_fail(c, ver, "version", "quote it, e.g. version: \"1.0.0\"",
                      "expected a semantic version string such as 1.0.0, got %s", type_word(ver));
    if (v_string(c, doc, "version", "version", 0, &f->version) != 0)
        return -1;
    if (f->version == NULL && (ver == NULL || json_is_null(ver)))
        return v_fail(c, ver, "version", "give a semantic version such as 1.0.0", "required");
    if (!manifest_valid_semver(f->version))
        return v_fail(c, ver, "version", "expected MAJOR.MINOR.PATCH[-prerelease][+build] (semver 2.0.0)",
                      "'%.64s' is not a semantic version", f->version);
    if (v_enum(c, doc, "status", k_status, "status", "active", &f->status) != 0 ||
        v_enum(c, doc, "classification", k_class, "classification", "internal",
               &f->classification) != 0)
        return -1;
    if (v_string(c, doc, "compatibility", "compatibility", 0, &f->compatibility) != 0)
        return -1;
    compat_mode_t mode;
    if (f->compatibility != NULL && compat_mode_parse(f->compatibility, &mode) != 0)
        return v_fail(c, json_object_get(doc, "compatibility"), "compatibility",
                      "expected one of BACKWARD, FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, "
                      "FULL_TRANSITIVE, NONE (default BACKWARD_TRANSITIVE)",
                      "unknown mode '%.64s'", f->compatibility);
    if (v_string(c, doc, "title", "title", 0, &f->title) != 0 || v_description(c, doc, f) != 0 ||
        v_owners(c, doc, f) != 0 || v_tags(c, doc, f) != 0 || v_schema(c, doc, f) != 0)
        return -1;
    return 0;
}

/* ================================================================ Manifest build and free */

static void free_str(char *s)
{
    if (s != NULL && s != protobuf_c_empty_string)
        free(s);
}

void manifest_free(Trib__Manifest **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    Trib__Manifest *m = *mp;
    char **strs[] = {&m->domain, &m->name, &m->version, &m->status, &m->title, &m->purpose,
                     &m->usage, &m->limitations, &m->owner_business, &m->owner_technical,
                     &m->classification, &m->document_json, &m->compatibility};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free_str(*strs[i]);
    for (size_t i = 0; i < m->n_tags; i++)
        free_str(m->tags[i]);
    free(m->tags);
    for (size_t i = 0; i < m->n_schema; i++) {
        Trib__SchemaProperty *p = m->schema[i];
        if (p == NULL)
            continue;
        free_str(p->name);
        free_str(p->logical_type);
        free_str(p->description);
        free(p);
    }
    free(m->schema);
    free(m);
    *mp = NULL;
}

/* strdup of s, or of "" when s is NULL; sets *fail on allocation failure. */
static char *dup_or_empty(const char *s, int *fail)
{
    char *d = strdup(s ? s : "");
    if (d == NULL)
        *fail = 1;
    return d;
}

static Trib__Manifest *build(const fields_t *f, const json_t *doc)
{
    Trib__Manifest *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    trib__manifest__init(m);
    int fail = 0;
    m->domain = dup_or_empty(f->domain, &fail);
    m->name = dup_or_empty(f->name, &fail);
    m->version = dup_or_empty(f->version, &fail);
    m->status = dup_or_empty(f->status, &fail);
    m->title = dup_or_empty(f->title, &fail);
    m->purpose = dup_or_empty(f->purpose, &fail);
    m->usage = dup_or_empty(f->usage, &fail);
    m->limitations = dup_or_empty(f->limitations, &fail);
    m->owner_business = dup_or_empty(f->owner_business, &fail);
    m->owner_technical = dup_or_empty(f->owner_technical, &fail);
    m->classification = dup_or_empty(f->classification, &fail);
    m->compatibility = dup_or_empty(f->compatibility, &fail);
    m->document_json = json_dumps(doc, JSON_COMPACT);
    if (m->document_json == NULL)
        fail = 1;

    size_t nt = f->tags ? json_array_size(f->tags) : 0;
    if (nt > 0 && (m->tags = calloc(nt, sizeof *m->tags)) == NULL)
        fail = 1;
    for (size_t i = 0; i < nt && m->tags != NULL; i++, m->n_tags++)
        m->tags[i] = dup_or_empty(json_string_value(json_array_get(f->tags, i)), &fail);

    size_t ns = json_array_size(f->schema);
    if ((m->schema = calloc(ns, sizeof *m->schema)) == NULL)
        fail = 1;
    for (size_t i = 0; i < ns && m->schema != NULL; i++) {
        const json_t *p = json_array_get(f->schema, i);
        Trib__SchemaProperty *sp = calloc(1, sizeof *sp);
        if (sp == NULL) {
            fail = 1;
            break;
        }
        trib__schema_property__init(sp);
        m->schema[m->n_schema++] = sp;
        json_t *d = json_object_get(p, "description");
        sp->name = dup_or_empty(json_string_value(json_object_get(p, "name")), &fail);
        sp->logical_type = dup_or_empty(json_string_value(json_object_get(p, "logicalType")), &fail);
        sp->description = dup_or_empty(json_is_string(d) ? json_string_value(d) : NULL, &fail);
        sp->required = json_is_true(json_object_get(p, "required"));
        sp->primary_key = json_is_true(json_object_get(p, "primaryKey"));
    }
    if (fail) {
        manifest_free(&m);
        return NULL;
    }
    return m;
}

/* ================================================================ entry point */

/* True when text (after whitespace and a UTF-8 BOM) starts like a JSON document. */
static int looks_json(const char *t, size_t n)
{
    size_t i = 0;
    if (n >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
        i++;
    return i < n && t[i] == '{';
}

Trib__Manifest *manifest_parse(const char *text, size_t len, const char *node_domain, char *err,
                               size_t errlen)
{
    assert(err != NULL && errlen > 0);
    err[0] = '\0';
    if (text == NULL) {
        snprintf(err, errlen, "manifest is empty");
        return NULL;
    }
    if (len > MANIFEST_MAX_BYTES) {
        snprintf(err, errlen, "manifest is %zu bytes; the limit is %u", len, MANIFEST_MAX_BYTES);
        return NULL;
    }
    yaml_lines_t lines = {0};
    json_t *doc = NULL;
    int root_line = 0;
    if (looks_json(text, len)) {
        json_error_t je;
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (doc == NULL) {
            /* A YAML flow mapping also starts with '{': accept it if it is valid YAML. */
            char yerr[8];
            doc = yaml_to_json(text, len, &lines, &root_line, yerr, sizeof yerr);
            if (doc == NULL) {
                snprintf(err, errlen, "malformed JSON: %s (line %d, column %d)", je.text, je.line,
                         je.column);
                yaml_lines_free(&lines);
                errtext_utf8(err);
                return NULL;
            }
        }
    } else {
        doc = yaml_to_json(text, len, &lines, &root_line, err, errlen);
        if (!doc && !err[0])
            snprintf(err, errlen, "manifest is empty");
    }
    Trib__Manifest *m = NULL;
    if (doc != NULL) {
        vctx_t c = {.lines = &lines, .err = err, .errlen = errlen};
        fields_t f = {0};
        if (!json_is_object(doc)) {
            snprintf(err, errlen, "manifest: top level must be a mapping, got %s", type_word(doc));
            if (root_line > 0)
                snprintf(err + strlen(err), errlen - strlen(err), " (line %d)", root_line);
        } else if (v_document(&c, doc, node_domain, &f) == 0) {
            m = build(&f, doc);
            if (m == NULL) {
                snprintf(err, errlen, "out of memory building the manifest");
            } else {
                size_t packed = trib__manifest__get_packed_size(m);
                if (packed > MANIFEST_MAX_ENCODED) {
                    snprintf(err, errlen, "manifest is %zu bytes encoded; the limit is %u", packed,
                             MANIFEST_MAX_ENCODED);
                    manifest_free(&m);
                }
            }
        }
    }
    json_decref(doc);
    yaml_lines_free(&lines);
    if (m == NULL)
        errtext_utf8(err);
    return m;
}

json_t *manifest_document(const Trib__Manifest *m)
{
    if (m == NULL || m->document_json == NULL || m->document_json[0] == '\0')
        return NULL;
    json_t *d = json_loads(m->document_json, 0, NULL);
    if (d != NULL && !json_is_object(d)) {
        json_decref(d);
        return NULL;
    }
    return d;
}
