/* node/yaml.c - YAML for node/, through libfyaml, one way everywhere.
 *
 * Owns: the diagnostics every parse uses (collected, never printed; the first error becomes
 * one line "malformed YAML: <what> (line L, column C)"), loading a whole document (the
 * --config file, the CLI's look at a manifest), and turning manifest text into a jansson
 * value with libfyaml's event parser: YAML 1.2 core-schema scalar typing, aliases expanded
 * within a budget, merge keys refused, and the line of every value near the top recorded.
 * Must not: know what any field means (node/manifest.c and node/config.c do). Errors are
 * returned in err, never printed. */
#include "node/yaml.h"
#include "node/yaml_nest.h"

#include <assert.h>
#include <jansson.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH   YAML_NEST_MAX   /* nesting of mappings/sequences */
#define MAX_UNITS   (4u << 20) /* values + scalar bytes, aliases expanded */
#define LINE_DEPTH  4          /* values this deep or shallower get a line recorded */
#define PARSE_FLAGS (FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_DEFAULT_VERSION_1_2)

/* ================================================================ diagnostics and documents */

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/* A diagnostics object that collects errors and prints nothing. */
static struct fy_diag *diag_new(char *err, size_t errlen)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_discard;
    dcfg.level = FYET_ERROR;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag == NULL) {
        snprintf(err, errlen, "cannot create the YAML diagnostics");
        return NULL;
    }
    fy_diag_set_collect_errors(diag, true);
    return diag;
}

/* The first collected error as one line. libfyaml places an error at the start of the span it
 * blames (de->fyt, an input marker; 1-based in de, 0-based in marks), which for a value running
 * over lines is a line too early: "b\n  bad: 1" is the two-line plain value "b bad" that then
 * meets a ':' ("invalid multiline plain key"), broken where the span ends, on the line indented
 * wrongly. A quoted value is broken where its quote opens (one left unclosed swallows the lines
 * after it): that stays first, with where it runs to. So is a flow collection left unclosed, which
 * libfyaml blames where the text after it stops making items (at the end of the file, or a
 * "missing comma" lines later): nest, the text's look before parsing, names the bracket left open. */
static void diag_error(struct fy_diag *diag, const yaml_nest_t *nest, char *err, size_t errlen)
{
    void *it = NULL;
    struct fy_diag_error *de = fy_diag_errors_iterate(diag, &it);
    if (de == NULL || de->msg == NULL) {
        snprintf(err, errlen, "malformed YAML");
        return;
    }
    if (nest->open > 0 && (strstr(de->msg, "without a closing") || strstr(de->msg, "missing comma in flow"))) {
        const yaml_bracket_t *o = &nest->last;
        snprintf(err, errlen, "malformed YAML: %s (line %d, column %d): the '%c' opened at line %d, column %d is "
                 "never closed (the parser gave up at line %d, column %d)", de->msg, o->line, o->col, o->c, o->line,
                 o->col, de->line, de->column);
        return;
    }
    const struct fy_mark *s = de->fyt ? fy_token_start_mark(de->fyt) : NULL;
    const struct fy_mark *e = de->fyt ? fy_token_end_mark(de->fyt) : NULL;
    if (s == NULL || e == NULL || e->line <= s->line)
        snprintf(err, errlen, "malformed YAML: %s (line %d, column %d)", de->msg, de->line, de->column);
    else if (strstr(de->msg, "quoted") == NULL)
        snprintf(err, errlen, "malformed YAML: %s (line %d, column %d): this line is indented as a "
                 "continuation of the value at line %d, column %d", de->msg, e->line + 1, e->column + 1,
                 s->line + 1, s->column + 1);
    else
        snprintf(err, errlen, "malformed YAML: %s (line %d, column %d): the quote opened there runs to "
                 "line %d, column %d; is it closed?", de->msg, s->line + 1, s->column + 1, e->line + 1,
                 e->column + 1);
}

/* 0 when text's flow collections nest at most MAX_DEPTH deep, hold at most YAML_FLOW_ITEMS_MAX items
 * each, and no tab stands between two block indicators (libfyaml 0.7.12 crashes on some:
 * node/yaml_nest.h), else -1 with err naming where;
 * nest gets what node/yaml_nest.c saw. */
static int nest_check(const char *text, size_t len, yaml_nest_t *nest, char *err, size_t errlen)
{
    yaml_nest_scan(text, len, nest);
    if (nest->tab) {
        snprintf(err, errlen, "malformed YAML: a tab before '%c' (line %d, column %d): YAML indents block "
                 "content with spaces only; write a space there", nest->tab_at.c, nest->tab_at.line, nest->tab_at.col);
        return -1;
    }
    if (nest->too_wide) {
        snprintf(err, errlen, "malformed YAML: the '%c' opened at line %d, column %d holds more than %d items; write "
                 "a collection this large in block style (one \"- \" or \"key:\" a line), or the manifest as JSON",
                 nest->wide.c, nest->wide.line, nest->wide.col, YAML_FLOW_ITEMS_MAX);
        return -1;
    }
    if (!nest->too_deep)
        return 0;
    snprintf(err, errlen, "malformed YAML: '%c' nested deeper than %d levels (line %d, column %d)", nest->deep.c,
             MAX_DEPTH, nest->deep.line, nest->deep.col);
    return -1;
}

struct fy_document *yaml_load(const char *text, size_t len, char *err, size_t errlen)
{
    yaml_nest_t nest;
    if (nest_check(text, len, &nest, err, errlen) != 0)
        return NULL;
    struct fy_diag *diag = diag_new(err, errlen);
    if (diag == NULL)
        return NULL;
    struct fy_parse_cfg pcfg = {.flags = PARSE_FLAGS, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, text, len);
    if (doc == NULL)
        diag_error(diag, &nest, err, errlen);
    fy_diag_destroy(diag);
    return doc;
}

int yaml_scalar_line(struct fy_node *n)
{
    struct fy_token *tok = n != NULL ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *mk = tok != NULL ? fy_token_start_mark(tok) : NULL;
    return mk != NULL ? mk->line + 1 : 0;
}

/* ================================================================ pointer -> line map */

struct yaml_line_ent {
    const json_t *key;
    int line;
};
typedef struct yaml_line_ent line_ent_t;

static size_t lm_slot(const json_t *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (cap - 1);
}

static int lm_put(yaml_lines_t *m, const json_t *p, int line)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        line_ent_t *nv = calloc(ncap, sizeof *nv);
        if (nv == NULL)
            return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->v[i].key == NULL)
                continue;
            size_t s = lm_slot(m->v[i].key, ncap);
            while (nv[s].key != NULL)
                s = (s + 1) & (ncap - 1);
            nv[s] = m->v[i];
        }
        free(m->v);
        m->v = nv;
        m->cap = ncap;
    }
    size_t s = lm_slot(p, m->cap);
    while (m->v[s].key != NULL && m->v[s].key != p)
        s = (s + 1) & (m->cap - 1);
    if (m->v[s].key == NULL)
        m->n++;
    m->v[s].key = p;
    m->v[s].line = line;
    return 0;
}

int yaml_line(const yaml_lines_t *m, const json_t *p)
{
    if (m->cap == 0 || p == NULL)
        return 0;
    size_t s = lm_slot(p, m->cap);
    while (m->v[s].key != NULL) {
        if (m->v[s].key == p)
            return m->v[s].line;
        s = (s + 1) & (m->cap - 1);
    }
    return 0;
}

void yaml_lines_free(yaml_lines_t *m)
{
    free(m->v);
    m->v = NULL;
    m->cap = m->n = 0;
}

/* ================================================================ YAML -> JSON */

typedef struct {
    json_t *val;          /* the mapping (object) or sequence (array) being filled */
    int line;
    size_t units0;        /* b->units when the collection started (for anchor sizes) */
    char *anchor;         /* anchor to register when the collection ends, or NULL */
    char *key;            /* mapping: pending key (NUL-terminated copy), or NULL */
    size_t keylen;
    int key_line;         /* line of the pending key */
    size_t index;         /* sequence: index of the next item */
} frame_t;

typedef struct {
    json_t *val;          /* borrowed: the tree holds a reference */
    size_t units;
} anchor_t;

typedef struct {
    frame_t stack[MAX_DEPTH];
    int depth;
    json_t *root;
    int root_line;
    anchor_t *anchors;
    size_t nanchors, capanchors;
    json_t *anchor_ix;    /* anchor name -> index in anchors (a redefined name: the latest) */
    size_t units;
    yaml_lines_t *lines;
    int ev_line, ev_col;  /* where the event being handled starts (1-based) */
    char *err;
    size_t errlen;
} builder_t;

/* Writes the path of the value being built ("owners.business", "schema[2]") into buf. */
static void b_path(const builder_t *b, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < b->depth && off < cap; i++) {
        const frame_t *f = &b->stack[i];
        int w;
        if (json_is_object(f->val)) {
            if (f->key == NULL)
                break;
            w = snprintf(buf + off, cap - off, "%s%s", off ? "." : "", f->key);
        } else {
            w = snprintf(buf + off, cap - off, "[%zu]", f->index);
        }
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

__attribute__((format(printf, 3, 4)))
static int b_fail(builder_t *b, int line, const char *fmt, ...)
{
    char path[256], msg[512];
    va_list ap;
    b_path(b, path, sizeof path);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0 && line == b->ev_line)   /* the event at hand: its column too */
        snprintf(b->err, b->errlen, "%s%s%s (line %d, column %d)", path, path[0] ? ": " : "", msg, line,
                 b->ev_col);
    else if (line > 0)
        snprintf(b->err, b->errlen, "%s%s%s (line %d)", path, path[0] ? ": " : "", msg, line);
    else
        snprintf(b->err, b->errlen, "%s%s%s", path, path[0] ? ": " : "", msg);
    return -1;
}


static int eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int all_in(const char *s, size_t n, const char *set)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strchr(set, s[i]) == NULL || s[i] == '\0')
            return 0;
    return 1;
}

#define DIGITS "0123456789"

/* YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int is_core_float(const char *s, size_t n)
{
    size_t i = 0, d = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    if (i < n && s[i] == '.') {
        i++;
        size_t f = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, f++;
        if (d == 0 && f == 0)
            return 0;
    } else if (d == 0) {
        return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t e = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, e++;
        if (e == 0)
            return 0;
    }
    return i == n;
}

/* A plain scalar typed by the YAML 1.2 core schema; NULL when text is not of that type.
 * kind: 0 any, 'n' null, 'b' bool, 'i' int, 'f' float (for explicit !!tags). */
static json_t *core_scalar(const char *s, size_t n, int kind)
{
    char buf[80];
    if ((kind == 0 || kind == 'n') &&
        (n == 0 || eq(s, n, "~") || eq(s, n, "null") || eq(s, n, "Null") || eq(s, n, "NULL")))
        return json_null();
    if (kind == 0 || kind == 'b') {
        if (eq(s, n, "true") || eq(s, n, "True") || eq(s, n, "TRUE"))
            return json_true();
        if (eq(s, n, "false") || eq(s, n, "False") || eq(s, n, "FALSE"))
            return json_false();
    }
    if (n == 0 || n >= sizeof buf)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (kind == 0 || kind == 'i') {
        int base = 0;
        const char *digits = NULL;
        if (n > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, n - 2, "01234567"))
            base = 8, digits = buf + 2;
        else if (n > 2 && s[0] == '0' && s[1] == 'x' && all_in(s + 2, n - 2, DIGITS "abcdefABCDEF"))
            base = 16, digits = buf + 2;
        else if (all_in(s, n, DIGITS) ||
                 (n > 1 && (s[0] == '-' || s[0] == '+') && all_in(s + 1, n - 1, DIGITS)))
            base = 10, digits = buf;
        if (base != 0) {
            char *end;
            errno = 0;
            long long v = strtoll(digits, &end, base);
            if (errno == 0 && *end == '\0')
                return json_integer((json_int_t)v);
            if (base != 10)
                return NULL;            /* out of range hex/octal: keep as text */
            return json_real(strtod(buf, NULL));   /* huge decimal: a JSON number */
        }
    }
    if ((kind == 0 || kind == 'f') && is_core_float(s, n))
        return json_real(strtod(buf, NULL));   /* NULL if it overflowed to inf */
    return NULL;
}

static json_t *make_scalar(builder_t *b, struct fy_event *e, int line)
{
    size_t n = 0;
    const char *s = fy_token_get_text(e->scalar.value, &n);
    if (s == NULL) {
        s = "";
        n = 0;
    }
    int kind = 0;
    if (e->scalar.tag != NULL) {
        const char *tag = fy_token_get_text0(e->scalar.tag);
        static const char pre[] = "tag:yaml.org,2002:";
        if (tag != NULL && strncmp(tag, pre, sizeof pre - 1) == 0) {
            const char *t = tag + sizeof pre - 1;
            kind = strcmp(t, "str") == 0 ? 's' : strcmp(t, "null") == 0 ? 'n'
                 : strcmp(t, "bool") == 0 ? 'b' : strcmp(t, "int") == 0 ? 'i'
                 : strcmp(t, "float") == 0 ? 'f' : 0;
        }
    }
    json_t *v = NULL;
    if (kind != 's' && (kind != 0 || fy_token_scalar_style(e->scalar.value) == FYSS_PLAIN)) {
        v = core_scalar(s, n, kind);
        if (v == NULL && kind != 0) {
            b_fail(b, line, "'%.*s' is not a valid !!%s", (int)(n > 40 ? 40 : n), s,
                   kind == 'n' ? "null" : kind == 'b' ? "bool" : kind == 'i' ? "int" : "float");
            return NULL;
        }
    }
    if (v == NULL) {
        v = json_stringn(s, n);
        if (v == NULL)
            b_fail(b, line, "text is not valid UTF-8");
    }
    return v;
}

static int b_spend(builder_t *b, size_t units, int line)
{
    b->units += units;
    if (b->units > MAX_UNITS)
        return b_fail(b, line, "manifest is too large once aliases are expanded (limit %u units)",
                      MAX_UNITS);
    return 0;
}

/* Registers anchor name (freed here) for val. Names are looked up by hash: an alias must not
 * scan every anchor (50k of each in 1 MiB took seconds). */
static int b_anchor(builder_t *b, char *name, json_t *val, size_t units)
{
    if (b->nanchors == b->capanchors) {
        size_t ncap = b->capanchors ? b->capanchors * 2 : 8;
        anchor_t *na = realloc(b->anchors, ncap * sizeof *na);
        if (na == NULL) {
            free(name);
            return b_fail(b, 0, "out of memory");
        }
        b->anchors = na;
        b->capanchors = ncap;
    }
    int rc = json_object_set_new_nocheck(b->anchor_ix, name, json_integer((json_int_t)b->nanchors));
    free(name);
    if (rc != 0)
        return b_fail(b, 0, "out of memory");
    b->anchors[b->nanchors++] = (anchor_t){.val = val, .units = units};
    return 0;
}

static char *token_dup(struct fy_token *t)
{
    const char *s = t ? fy_token_get_text0(t) : NULL;
    return s ? strdup(s) : NULL;
}

/* Attaches a finished value v (reference stolen) to the open collection, or makes it the root. */
static int b_add(builder_t *b, json_t *v, int line)
{
    /* A mapping's value is placed at its key's line ("owners:", not its first child's line).
     * The root gets no line: "name: required (line 1)" would only add noise. */
    if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].val))
        line = b->stack[b->depth - 1].key_line;
    if (b->depth > 0 && b->depth < LINE_DEPTH && line > 0 && lm_put(b->lines, v, line) != 0) {
        json_decref(v);
        return b_fail(b, 0, "out of memory");
    }
    if (b->depth == 0) {
        assert(b->root == NULL);
        b->root = v;
        b->root_line = line;
        return 0;
    }
    frame_t *f = &b->stack[b->depth - 1];
    if (json_is_object(f->val)) {
        assert(f->key != NULL);
        int rc = json_object_setn_new(f->val, f->key, f->keylen, v);
        free(f->key);
        f->key = NULL;
        if (rc != 0)
            return b_fail(b, line, "key is not valid UTF-8");
    } else {
        if (json_array_append_new(f->val, v) != 0)
            return b_fail(b, line, "out of memory");
        f->index++;
    }
    return 0;
}

/* True when the next event of the open mapping is a key. */
static int b_want_key(const builder_t *b)
{
    if (b->depth == 0)
        return 0;
    const frame_t *f = &b->stack[b->depth - 1];
    return json_is_object(f->val) && f->key == NULL;
}

static int b_key(builder_t *b, struct fy_event *e, int line)
{
    frame_t *f = &b->stack[b->depth - 1];
    size_t n = 0;
    const char *s = fy_token_get_text(e->scalar.value, &n);
    if (s == NULL)
        s = "";
    if (fy_token_scalar_style(e->scalar.value) == FYSS_PLAIN && eq(s, n, "<<"))
        return b_fail(b, line, "merge keys (<<) are not supported; write the fields out");
    if (json_object_getn(f->val, s, n) != NULL)
        return b_fail(b, line, "duplicate key '%.*s'", (int)(n > 64 ? 64 : n), s);
    if (e->scalar.anchor != NULL)
        return b_fail(b, line, "anchors on mapping keys are not supported");
    f->key = malloc(n + 1);
    if (f->key == NULL)
        return b_fail(b, 0, "out of memory");
    memcpy(f->key, s, n);
    f->key[n] = '\0';
    f->keylen = n;
    f->key_line = line;
    return b_spend(b, 1 + n, line);
}

static int b_event(builder_t *b, struct fy_event *e, int *ndocs)
{
    const struct fy_mark *m = fy_event_start_mark(e);
    int line = b->ev_line = m ? m->line + 1 : 0;
    b->ev_col = m ? m->column + 1 : 0;
    switch (e->type) {
    case FYET_DOCUMENT_START:
        if (++*ndocs > 1)
            return b_fail(b, line, "expected one YAML document, found another");
        return 0;
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START: {
        if (b_want_key(b))
            return b_fail(b, line, "mapping keys must be plain values, not collections");
        if (b->depth == MAX_DEPTH)
            return b_fail(b, line, "nested deeper than %d levels", MAX_DEPTH);
        json_t *v = e->type == FYET_MAPPING_START ? json_object() : json_array();
        if (v == NULL)
            return b_fail(b, 0, "out of memory");
        frame_t *f = &b->stack[b->depth++];
        memset(f, 0, sizeof *f);
        f->val = v;
        f->line = line;
        f->units0 = b->units;
        struct fy_token *anchor = e->type == FYET_MAPPING_START ? e->mapping_start.anchor
                                                                 : e->sequence_start.anchor;
        f->anchor = token_dup(anchor);
        return b_spend(b, 1, line);
    }
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END: {
        assert(b->depth > 0);
        frame_t f = b->stack[--b->depth];
        assert(f.key == NULL);   /* the parser never ends a mapping between key and value */
        free(f.key);
        if (f.anchor != NULL && b_anchor(b, f.anchor, f.val, b->units - f.units0) != 0) {
            json_decref(f.val);
            return -1;
        }
        return b_add(b, f.val, f.line);
    }
    case FYET_SCALAR: {
        if (b_want_key(b))
            return b_key(b, e, line);
        json_t *v = make_scalar(b, e, line);
        if (v == NULL)
            return -1;
        size_t units = 1 + (json_is_string(v) ? json_string_length(v) : 0);
        if (b_spend(b, units, line) != 0) {
            json_decref(v);
            return -1;
        }
        if (e->scalar.anchor != NULL) {
            char *name = token_dup(e->scalar.anchor);
            if (name == NULL) {
                json_decref(v);
                return b_fail(b, 0, "out of memory");
            }
            if (b_anchor(b, name, v, units) != 0) {
                json_decref(v);
                return -1;
            }
        }
        return b_add(b, v, line);
    }
    case FYET_ALIAS: {
        if (b_want_key(b))
            return b_fail(b, line, "aliases are not supported as mapping keys");
        const char *name = fy_token_get_text0(e->alias.anchor);
        json_t *ix = name ? json_object_get(b->anchor_ix, name) : NULL;
        if (ix == NULL)
            return b_fail(b, line, "unknown anchor '%s'", name ? name : "");
        const anchor_t *an = &b->anchors[json_integer_value(ix)];
        if (b_spend(b, an->units, line) != 0)
            return -1;
        return b_add(b, json_incref(an->val), line);
    }
    default:
        return 0;
    }
}

static void b_cleanup(builder_t *b)
{
    for (int i = 0; i < b->depth; i++) {
        json_decref(b->stack[i].val);
        free(b->stack[i].key);
        free(b->stack[i].anchor);
    }
    b->depth = 0;
    json_decref(b->anchor_ix);
    b->anchor_ix = NULL;
    free(b->anchors);
    b->anchors = NULL;
    b->nanchors = 0;
}

/* 0 when text is UTF-8 (YAML's encoding), else -1 with err naming the first line that is not
 * and its first byte past ASCII: libfyaml stops at such a byte without a word, and the text
 * read as empty ("manifest is empty" for a body that is not). */
static int utf8_check(const char *text, size_t len, char *err, size_t errlen)
{
    json_t *probe = json_stringn(text, len);   /* NULL when text is not UTF-8 */
    if (probe) {
        json_decref(probe);
        return 0;
    }
    size_t line = 1, col = 1;
    for (size_t i = 0, k; i < len; i += k) {   /* where: the first byte no character starts at */
        k = (unsigned char)text[i] < 0x80;
        for (size_t l = 2; !k && l <= 4 && i + l <= len; l++)
            if ((probe = json_stringn(text + i, l))) {
                json_decref(probe);
                k = l;
            }
        if (!k) {
            snprintf(err, errlen, "not UTF-8 text: byte 0x%02x at line %zu, column %zu (YAML and JSON are UTF-8)",
                     (unsigned char)text[i], line, col);
            return -1;
        }
        col = text[i] == '\n' ? 1 : col + 1;
        line += text[i] == '\n';
    }
    return 0;
}

json_t *yaml_to_json(const char *text, size_t len, yaml_lines_t *lines, int *root_line,
                            char *err, size_t errlen)
{
    yaml_nest_t nest;
    if (utf8_check(text, len, err, errlen) != 0 || nest_check(text, len, &nest, err, errlen) != 0)
        return NULL;
    struct fy_diag *diag = diag_new(err, errlen);
    if (diag == NULL)
        return NULL;
    struct fy_parse_cfg cfg = {.flags = PARSE_FLAGS, .diag = diag};
    struct fy_parser *p = fy_parser_create(&cfg);
    if (p == NULL || fy_parser_set_string(p, text, len) != 0) {
        snprintf(err, errlen, "cannot create the YAML parser");
        if (p)
            fy_parser_destroy(p);
        fy_diag_destroy(diag);
        return NULL;
    }

    builder_t *b = calloc(1, sizeof *b);
    if (b == NULL || (b->anchor_ix = json_object()) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(b);
        fy_parser_destroy(p);
        fy_diag_destroy(diag);
        return NULL;
    }
    b->lines = lines;
    b->err = err;
    b->errlen = errlen;
    int ndocs = 0, rc = 0;
    struct fy_event *e;
    while ((e = fy_parser_parse(p)) != NULL) {
        rc = b_event(b, e, &ndocs);
        fy_parser_event_free(p, e);
        if (rc != 0)
            break;
    }
    if (rc == 0 && fy_parser_get_stream_error(p)) {
        diag_error(diag, &nest, err, errlen);
        rc = -1;
    }
    if (rc == 0 && b->root == NULL) {
        err[0] = '\0';   /* no document: the caller says what was empty */
        rc = -1;
    }
    json_t *root = b->root;
    *root_line = b->root_line;
    b_cleanup(b);
    free(b);
    fy_parser_destroy(p);
    fy_diag_destroy(diag);
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ================================================================ lines of paths */

int yaml_path_line(const json_t *doc, const yaml_lines_t *lines, const char *path)
{
    int line = 0;
    const json_t *v = doc;
    const char *p = path;
    while (v != NULL && *p) {
        if (*p == '[') {   /* [k]: an element of a list */
            char *end;
            unsigned long k = strtoul(p + 1, &end, 10);
            if (end == p + 1 || *end != ']')
                break;
            v = json_is_array(v) ? json_array_get(v, k) : NULL;
            p = end + 1;
        } else {           /* a key, up to the next '.' or '[' */
            size_t n = strcspn(p, ".[");
            v = json_is_object(v) && n > 0 ? json_object_getn(v, p, n) : NULL;
            p += n;
        }
        if (*p == '.')
            p++;
        int l = v != NULL ? yaml_line(lines, v) : 0;
        if (l > 0)
            line = l;
    }
    return line;
}
