/* node/policy.c - policy sets: parsing and checking the YAML (node/policy.h), and the evaluator.
 *
 * Owns: the rule vocabulary, its limits, compiling each regex once per set (POSIX ERE, after a
 * static check that refuses back-references and counted repetitions whose expansion exceeds
 * POLICY_REGEX_COST), path walking, grace, and the set's own tests.
 * Must not: read files, touch storage or the network, read the clock, print. Every verdict
 * depends only on (set, document, ctx), so every node reaches the same one. */
#include "node/policy.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "node/policy_memo.h"
#include "node/yaml.h"

#define COND_MAX   8
#define SEG_MAX    64
#define FIELD_DEPTH 8
#define TEST_NOW_MS 1767225600000LL   /* tests are judged at 2026-01-01T00:00:00Z ... */
#define DAY_MS     86400000LL

typedef enum { T_REQUIRED = 1, T_REGEX, T_ENUM, T_FIELD, T_TRANSITION, T_COMPAT, T_GRANT } rtype_t;

static const char *const type_names[] = { "", "required", "regex", "enum", "field_rule", "transition",
                                          "compatibility", "grant" };

typedef struct {
    char seg[POLICY_PATH_DEPTH][SEG_MAX];   /* "*" for every element */
    int n;
    char text[POLICY_PATH_MAX + 1];
} path_t;

typedef struct {
    path_t path;
    char **values;
    size_t nvalues;
} cond_t;

typedef struct {
    char id[POLICY_ID_MAX];
    policy_severity_t severity;
    rtype_t type;
    int line;
    path_t *paths;                /* required: all; regex, enum: one */
    size_t npaths;
    regex_t re;                   /* regex: pattern; field_rule: name_regex */
    int has_re;
    char *pattern;                /* regex: its text, quoted in a violation of a rule without message */
    char **values;                /* enum: values; field_rule: tags_any */
    size_t nvalues;
    int class_min;                /* field_rule: rank, -1 none */
    cond_t conds[COND_MAX];
    size_t nconds;
    char from[16], to[16];        /* transition */
    int64_t min_age_ms;
    char mode[32];                /* compatibility floor */
    int64_t max_days;             /* grant */
    char message[160];            /* the rule's own words, put before each violation's details */
} rule_t;

typedef struct {
    json_t *manifest;
    int line;
    int pass;                     /* expect pass: true */
    char **fail;                  /* expect fail: [ids] */
    size_t nfail;
    char prev_status[16];
    int64_t prev_age_ms;
} test_t;

struct policy_set {
    uint64_t version;
    int64_t effective_ms, grace_ms;
    int has_effective_from;
    rule_t *rules;
    size_t nrules;
    test_t *tests;
    size_t ntests;
    policy_memo_t *memo;          /* the regexes' verdicts so far (NULL: none kept) */
};

/* ================================================================ small helpers */

static const char *const classes[] = { "public", "internal", "confidential", "restricted" };

static int class_rank(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, classes[i]) == 0)
            return i;
    return -1;
}

static const char *const statuses[] = { "draft", "active", "deprecated", "retired" };

static int valid_status(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, statuses[i]) == 0)
            return 1;
    return 0;
}

/* Untrusted text for a message: at most 60 bytes, anything but printable ASCII as '?'. */
static const char *shown(const char *s, char out[64])
{
    size_t i = 0;
    for (; s && s[i] && i < 60; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
    return out;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* A scalar as text for comparisons: strings as they are, integers, booleans; NULL otherwise. */
static const char *scalar_text(const json_t *v, char buf[32])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

int policy_duration_parse(const char *s, int64_t *ms)
{
    static const struct { char unit; int64_t ms; int time; } units[] = {
        { 'W', 7 * DAY_MS, 0 }, { 'D', DAY_MS, 0 }, { 'H', 3600000, 1 }, { 'M', 60000, 1 }, { 'S', 1000, 1 },
    };
    int64_t total = 0;
    int in_time = 0, any = 0;
    size_t last = 0;
    if (!s || s[0] != 'P' || !s[1])
        return -1;
    for (const char *p = s + 1; *p;) {
        if (*p == 'T') {
            if (in_time || !p[1])
                return -1;
            in_time = 1;
            p++;
            continue;
        }
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > 100000000)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        size_t u = 0;
        while (u < 5 && (units[u].unit != *p || units[u].time != in_time))
            u++;
        if (u == 5 || (any && u <= last))   /* unknown (Y, month M), or out of order */
            return -1;
        total += n * units[u].ms;
        if (total > 100LL * 365 * DAY_MS)
            return -1;
        last = u;
        any = 1;
        p++;
    }
    if (!any)
        return -1;
    *ms = total;
    return 0;
}

/* 2026-02-01, 2026-02-01T00:00:00Z or with .mmm; 0 or -1. */
static int time_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    int frac = 0, n = 0;
    memset(&tm, 0, sizeof tm);
    size_t len = s ? strlen(s) : 0;
    if (len == 10) {
        if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
            return -1;
    } else if (len == 20) {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 20)
            return -1;
    } else if (len == 24) {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &frac, &n) != 7 || n != 24)
            return -1;
    } else
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 59 || tm.tm_year < 1970 || tm.tm_year > 9999)
        return -1;
    int mday = tm.tm_mday, mon = tm.tm_mon;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    struct tm back;
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != mday || back.tm_mon + 1 != mon)
        return -1;   /* Feb 30 */
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

/* ================================================================ compatibility modes */

static int mode_bits(const char *m, int *dirs, int *trans)
{
    static const struct { const char *name; int dirs, trans; } modes[] = {
        { "NONE", 0, 0 }, { "BACKWARD", 1, 0 }, { "FORWARD", 2, 0 }, { "FULL", 3, 0 },
        { "BACKWARD_TRANSITIVE", 1, 1 }, { "FORWARD_TRANSITIVE", 2, 1 }, { "FULL_TRANSITIVE", 3, 1 },
    };
    if (m == NULL || *m == '\0')
        m = "BACKWARD_TRANSITIVE";
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(m, modes[i].name) == 0) {
            *dirs = modes[i].dirs;
            *trans = modes[i].trans;
            return 0;
        }
    return -1;
}

int policy_mode_covers(const char *mode, const char *floor)
{
    int md, mt, fd, ft;
    if (mode_bits(mode, &md, &mt) != 0 || mode_bits(floor, &fd, &ft) != 0)
        return -1;
    return (md & fd) == fd && mt >= ft;
}

/* ================================================================ regexes */

/* The static check before regcomp: no back-references, groups nested at most 32 deep, counted
 * repetitions at most 255, and the pattern's size with every counted repetition expanded (what
 * glibc's compiler builds) at most POLICY_REGEX_COST. 0, or -1 with why. */
static int regex_check(const char *p, char *why, size_t wl)
{
    long stack[33];
    int sp = 0;
    long cur = 0, last = 0;
    size_t n = strlen(p);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n) {
                snprintf(why, wl, "ends with a lone backslash");
                return -1;
            }
            if (isdigit((unsigned char)p[i + 1])) {
                snprintf(why, wl, "back-references (\\%c) are not allowed: they make matching exponential",
                         p[i + 1]);
                return -1;
            }
            i++;
            last = 1;
            cur += 1;
        } else if (c == '[') {
            size_t j = i + 1;
            if (j < n && p[j] == '^')
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']') {
                if (p[j] == '[' && j + 1 < n && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
                    char end = p[j + 1];
                    j += 2;
                    while (j + 1 < n && !(p[j] == end && p[j + 1] == ']'))
                        j++;
                    j += 2;
                } else
                    j++;
            }
            if (j >= n) {
                snprintf(why, wl, "unclosed bracket expression at offset %zu", i);
                return -1;
            }
            i = j;
            last = 1;
            cur += 1;
        } else if (c == '(') {
            if (sp >= 32) {
                snprintf(why, wl, "groups nested more than 32 deep");
                return -1;
            }
            stack[sp++] = cur;
            cur = 0;
            last = 0;
        } else if (c == ')') {
            if (sp == 0) {
                snprintf(why, wl, "unmatched ')' at offset %zu", i);
                return -1;
            }
            last = cur;
            cur = stack[--sp] + last;
        } else if (c == '{') {
            long m = 0, mx = -1;
            size_t j = i + 1;
            int digits = 0;
            while (j < n && isdigit((unsigned char)p[j]) && m <= 1000)
                m = m * 10 + (p[j++] - '0'), digits++;
            if (j < n && p[j] == ',') {
                j++;
                if (j < n && isdigit((unsigned char)p[j])) {
                    mx = 0;
                    while (j < n && isdigit((unsigned char)p[j]) && mx <= 1000)
                        mx = mx * 10 + (p[j++] - '0');
                }
            } else
                mx = m;
            if (!digits || j >= n || p[j] != '}') {
                snprintf(why, wl, "malformed repetition count at offset %zu", i);
                return -1;
            }
            long k = mx >= 0 ? mx : m + 1;
            if (m > 255 || k > 255 || (mx >= 0 && mx < m)) {
                snprintf(why, wl, "repetition {%ld%s} at offset %zu: counts are at most 255 and min <= max", m,
                         mx < 0 ? ",}" : mx == m ? "}" : ",max}", i);
                return -1;
            }
            cur += last * (k - 1);
            last *= k;
            i = j;
        } else if (c == '*' || c == '+' || c == '?' || c == '|' || c == '^' || c == '$') {
            /* an NFA state each, no expansion */
        } else {
            last = 1;
            cur += 1;
        }
        long total = cur;
        for (int s = 0; s < sp; s++)
            total += stack[s];
        if (total > POLICY_REGEX_COST || last > POLICY_REGEX_COST) {
            snprintf(why, wl, "too complex: with its counted repetitions expanded it is over %d units",
                     POLICY_REGEX_COST);
            return -1;
        }
    }
    return 0;
}

static int regex_compile(regex_t *re, const char *pattern, int icase, char *why, size_t wl)
{
    if (strlen(pattern) > POLICY_REGEX_MAX) {
        snprintf(why, wl, "%zu bytes, over the limit of %d", strlen(pattern), POLICY_REGEX_MAX);
        return -1;
    }
    if (regex_check(pattern, why, wl) != 0)
        return -1;
    int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof msg);
        snprintf(why, wl, "not a POSIX extended regular expression: %s", msg);
        return -1;
    }
    return 0;
}

/* ================================================================ parsing */

typedef struct {
    yaml_lines_t lines;
    char *err;
    size_t errlen;
} pctx_t;

static int perr(pctx_t *c, const json_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(pctx_t *c, const json_t *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = yaml_line(&c->lines, at);
    if (line > 0)
        snprintf(c->err, c->errlen, "%s (line %d)", msg, line);
    else
        snprintf(c->err, c->errlen, "%s", msg);
    return -1;
}

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a map";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "text";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static int valid_seg(const char *s, size_t n)
{
    if (n == 0 || n >= SEG_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* "a.b[*].c" or "a.*.c" -> segments. 0 or -1 with why. */
static int path_parse(const char *s, path_t *p, int allow_star, char *why, size_t wl)
{
    memset(p, 0, sizeof *p);
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_PATH_MAX) {
        snprintf(why, wl, "a path is 1 to %d characters", POLICY_PATH_MAX);
        return -1;
    }
    memcpy(p->text, s, n + 1);
    size_t i = 0;
    while (i < n) {
        const char *seg;
        size_t len;
        if (s[i] == '[') {
            if (strncmp(s + i, "[*]", 3) != 0) {
                snprintf(why, wl, "'%.*s': only [*] (every element) may follow a name", (int)(n > 60 ? 60 : n), s);
                return -1;
            }
            seg = "*", len = 1, i += 3;
        } else {
            size_t j = i;
            while (j < n && s[j] != '.' && s[j] != '[')
                j++;
            seg = s + i, len = j - i, i = j;
            if (!(len == 1 && *seg == '*') && !valid_seg(seg, len)) {
                char sh[64];
                snprintf(why, wl, "'%s': each part of a path is a name of letters, digits, '_' or '-', or *",
                         shown(s, sh));
                return -1;
            }
        }
        if (p->n >= POLICY_PATH_DEPTH) {
            snprintf(why, wl, "more than %d parts", POLICY_PATH_DEPTH);
            return -1;
        }
        if (len == 1 && *seg == '*' && !allow_star) {
            snprintf(why, wl, "no wildcard allowed here");
            return -1;
        }
        memcpy(p->seg[p->n], seg, len);
        p->seg[p->n++][len] = '\0';
        if (i < n && s[i] == '.') {
            i++;
            if (i == n) {
                snprintf(why, wl, "ends with '.'");
                return -1;
            }
        } else if (i < n && s[i] != '[') {
            snprintf(why, wl, "malformed");
            return -1;
        }
    }
    return 0;
}

static int get_path(pctx_t *c, const json_t *obj, const char *where, const char *key, int allow_star, path_t *out)
{
    json_t *v = json_object_get(obj, key);
    char why[200];
    if (!json_is_string(v))
        return perr(c, v ? v : obj, "%s.%s: expected a path (text), got %s", where, key, v ? type_word(v) : "nothing");
    if (path_parse(json_string_value(v), out, allow_star, why, sizeof why) != 0)
        return perr(c, v, "%s.%s: %s", where, key, why);
    return 0;
}

/* A list of 1..POLICY_MAX_LIST scalars as strings. */
static int get_strs(pctx_t *c, const json_t *obj, const char *where, const char *key, char ***out, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    *n = 0;
    if (json_is_string(v) || json_is_integer(v)) {   /* one value */
        char buf[32];
        *out = calloc(1, sizeof **out);
        if (!*out || !(**out = strdup(scalar_text(v, buf))))
            return perr(c, v, "%s.%s: out of memory", where, key);
        *n = 1;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return perr(c, v ? v : obj, "%s.%s: expected a non-empty list, got %s", where, key, v ? type_word(v) : "nothing");
    if (json_array_size(v) > POLICY_MAX_LIST)
        return perr(c, v, "%s.%s: %zu entries, at most %d", where, key, json_array_size(v), POLICY_MAX_LIST);
    *out = calloc(json_array_size(v), sizeof **out);
    if (!*out)
        return perr(c, v, "%s.%s: out of memory", where, key);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char buf[32];
        json_t *e = json_array_get(v, i);
        const char *t = scalar_text(e, buf);
        if (!t || strlen(t) > 255)
            return perr(c, e, "%s.%s[%zu]: expected text of at most 255 bytes, got %s", where, key, i, type_word(e));
        if (!((*out)[i] = strdup(t)))
            return perr(c, e, "%s.%s: out of memory", where, key);
        (*n)++;
    }
    return 0;
}

static int check_keys(pctx_t *c, const json_t *obj, const char *where, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!allowed[i]) {
            char sh[64];
            return perr(c, v, "%s: unknown key '%s'", where, shown(k, sh));
        }
    }
    return 0;
}

/* when: {path: value | [values], ...} */
static int parse_conds(pctx_t *c, const json_t *w, const char *where, rule_t *r)
{
    const char *k;
    json_t *v;
    if (!json_is_object(w))
        return perr(c, w, "%s.when: expected a map of path: value, got %s", where, type_word(w));
    if (json_object_size(w) > COND_MAX)
        return perr(c, w, "%s.when: %zu conditions, at most %d", where, json_object_size(w), COND_MAX);
    json_object_foreach((json_t *)w, k, v) {
        char why[200], sub[96];
        cond_t *cd = &r->conds[r->nconds];
        if (path_parse(k, &cd->path, 0, why, sizeof why) != 0)
            return perr(c, v, "%s.when: '%.60s': %s", where, k, why);
        json_t *holder = json_pack("{s:O}", "v", v);
        snprintf(sub, sizeof sub, "%s.when", where);
        int rc = holder ? get_strs(c, holder, sub, "v", &cd->values, &cd->nvalues) : -1;
        json_decref(holder);
        r->nconds++;
        if (rc != 0) {
            if (!holder)
                perr(c, v, "%s: out of memory", where);
            return -1;
        }
    }
    return 0;
}

static const char *const rule_common[] = { "id", "severity", "type", "description", "message" };

/* The keys rule type t takes beyond the common ones. */
static int rule_keys(pctx_t *c, const json_t *obj, const char *where, rtype_t t)
{
    static const char *const extra[][6] = {
        [T_REQUIRED] = { "paths", "when" },
        [T_REGEX] = { "path", "pattern", "when" },
        [T_ENUM] = { "path", "values", "when" },
        [T_FIELD] = { "when", "require" },
        [T_TRANSITION] = { "from", "to", "min_age" },
        [T_COMPAT] = { "mode", "on_break" },
        [T_GRANT] = { "when", "require", "max_days", "applies" },
    };
    const char *allowed[16];
    size_t n = 0;
    for (size_t i = 0; i < sizeof rule_common / sizeof *rule_common; i++)
        allowed[n++] = rule_common[i];
    for (size_t i = 0; i < 6 && extra[t][i]; i++)
        allowed[n++] = extra[t][i];
    allowed[n] = NULL;
    return check_keys(c, obj, where, allowed);
}

static int get_status(pctx_t *c, const json_t *obj, const char *where, const char *key, char out[16])
{
    json_t *v = json_object_get(obj, key);
    char sh[64];
    if (!json_is_string(v) || !valid_status(json_string_value(v)))
        return perr(c, v ? v : obj, "%s.%s: expected a status (draft, active, deprecated, retired), got %s", where,
                    key, json_is_string(v) ? shown(json_string_value(v), sh) : v ? type_word(v) : "nothing");
    snprintf(out, 16, "%s", json_string_value(v));
    return 0;
}

static int parse_rule(pctx_t *c, const json_t *obj, size_t idx, rule_t *r, const rule_t *prev, size_t nprev)
{
    char where[80], why[256], sh[64];
    snprintf(where, sizeof where, "rules[%zu]", idx);
    r->class_min = -1;
    r->line = yaml_line(&c->lines, obj);
    if (!json_is_object(obj))
        return perr(c, obj, "%s: expected a map (id, severity, type, ...), got %s", where, type_word(obj));
    json_t *id = json_object_get(obj, "id"), *sev = json_object_get(obj, "severity"),
           *ty = json_object_get(obj, "type");
    if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) >= POLICY_ID_MAX)
        return perr(c, id ? id : obj, "%s.id: expected a rule id (text, 1 to %d characters)", where, POLICY_ID_MAX - 1);
    for (const char *p = json_string_value(id); *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return perr(c, id, "%s.id: '%s': letters, digits, '.', '_' and '-' only", where,
                        shown(json_string_value(id), sh));
    snprintf(r->id, sizeof r->id, "%s", json_string_value(id));
    snprintf(where, sizeof where, "rule %s", r->id);
    for (size_t i = 0; i < nprev; i++)
        if (strcmp(prev[i].id, r->id) == 0)
            return perr(c, id, "%s: the id is used twice (also rules[%zu])", where, i);
    const char *s = json_string_value(sev);
    if (!s || (strcmp(s, "error") && strcmp(s, "warning")))
        return perr(c, sev ? sev : obj, "%s.severity: expected error or warning, got %s", where,
                    s ? shown(s, sh) : sev ? type_word(sev) : "nothing");
    r->severity = strcmp(s, "error") == 0 ? POLICY_ERROR : POLICY_WARNING;
    json_t *msg = json_object_get(obj, "message");
    if (msg && (!json_is_string(msg) || json_string_length(msg) >= sizeof r->message))
        return perr(c, msg, "%s.message: expected text of at most %zu bytes", where, sizeof r->message - 1);
    if (msg)
        snprintf(r->message, sizeof r->message, "%s", json_string_value(msg));
    const char *t = json_string_value(ty);
    for (int i = 1; t && i <= T_GRANT; i++)
        if (strcmp(t, type_names[i]) == 0)
            r->type = (rtype_t)i;
    if (!r->type)
        return perr(c, ty ? ty : obj, "%s.type: expected one of required, regex, enum, field_rule, transition, "
                    "compatibility, grant, got %s", where, t ? shown(t, sh) : ty ? type_word(ty) : "nothing");
    if (rule_keys(c, obj, where, r->type) != 0)
        return -1;
    json_t *when = json_object_get(obj, "when");
    if (when && r->type != T_FIELD && parse_conds(c, when, where, r) != 0)
        return -1;

    switch (r->type) {
    case T_REQUIRED: {
        json_t *ps = json_object_get(obj, "paths");
        if (!json_is_array(ps) || json_array_size(ps) == 0 || json_array_size(ps) > POLICY_MAX_LIST)
            return perr(c, ps ? ps : obj, "%s.paths: expected a list of 1 to %d paths", where, POLICY_MAX_LIST);
        if (!(r->paths = calloc(json_array_size(ps), sizeof *r->paths)))
            return perr(c, ps, "%s: out of memory", where);
        for (size_t i = 0; i < json_array_size(ps); i++) {
            json_t *e = json_array_get(ps, i);
            if (!json_is_string(e))
                return perr(c, e, "%s.paths[%zu]: expected a path, got %s", where, i, type_word(e));
            if (path_parse(json_string_value(e), &r->paths[i], 1, why, sizeof why) != 0)
                return perr(c, e, "%s.paths[%zu]: %s", where, i, why);
            r->npaths++;
        }
        return 0;
    }
    case T_REGEX: {
        if (!(r->paths = calloc(1, sizeof *r->paths)) || get_path(c, obj, where, "path", 1, r->paths) != 0)
            return r->paths ? -1 : perr(c, obj, "%s: out of memory", where);
        r->npaths = 1;
        json_t *pat = json_object_get(obj, "pattern");
        if (!json_is_string(pat) || json_string_length(pat) == 0 || strlen(json_string_value(pat)) != json_string_length(pat))
            return perr(c, pat ? pat : obj, "%s.pattern: expected a regular expression (text)", where);
        if (regex_compile(&r->re, json_string_value(pat), 0, why, sizeof why) != 0)
            return perr(c, pat, "%s.pattern: %s", where, why);
        r->has_re = 1;
        if (!(r->pattern = strdup(json_string_value(pat))))
            return perr(c, obj, "%s: out of memory", where);
        return 0;
    }
    case T_ENUM:
        if (!(r->paths = calloc(1, sizeof *r->paths)) || get_path(c, obj, where, "path", 1, r->paths) != 0)
            return r->paths ? -1 : perr(c, obj, "%s: out of memory", where);
        r->npaths = 1;
        return get_strs(c, obj, where, "values", &r->values, &r->nvalues);
    case T_FIELD: {
        static const char *const wk[] = { "name_regex", NULL }, *const rk[] = { "tags_any", "classification_min", NULL };
        json_t *req = json_object_get(obj, "require");
        if (!json_is_object(when) || check_keys(c, when, where, wk) != 0)
            return json_is_object(when) ? -1 : perr(c, when ? when : obj, "%s.when: expected {name_regex: PATTERN}", where);
        json_t *nr = json_object_get(when, "name_regex");
        if (!json_is_string(nr) || json_string_length(nr) == 0 || strlen(json_string_value(nr)) != json_string_length(nr))
            return perr(c, nr ? nr : when, "%s.when.name_regex: expected a regular expression", where);
        if (regex_compile(&r->re, json_string_value(nr), 1, why, sizeof why) != 0)
            return perr(c, nr, "%s.when.name_regex: %s", where, why);
        r->has_re = 1;
        if (!json_is_object(req) || json_object_size(req) == 0 || check_keys(c, req, where, rk) != 0)
            return json_is_object(req) && json_object_size(req) ? -1
                 : perr(c, req ? req : obj, "%s.require: expected {tags_any: [...], classification_min: C}", where);
        if (json_object_get(req, "tags_any") && get_strs(c, req, where, "tags_any", &r->values, &r->nvalues) != 0)
            return -1;
        json_t *cm = json_object_get(req, "classification_min");
        if (cm && (r->class_min = class_rank(json_string_value(cm))) < 0)
            return perr(c, cm, "%s.require.classification_min: expected public, internal, confidential or "
                        "restricted", where);
        return 0;
    }
    case T_TRANSITION: {
        if (get_status(c, obj, where, "from", r->from) != 0 || get_status(c, obj, where, "to", r->to) != 0)
            return -1;
        json_t *age = json_object_get(obj, "min_age");
        if (!json_is_string(age) || policy_duration_parse(json_string_value(age), &r->min_age_ms) != 0)
            return perr(c, age ? age : obj, "%s.min_age: expected an ISO 8601 duration in weeks, days, hours, "
                        "minutes or seconds (P60D, PT12H)", where);
        return 0;
    }
    case T_COMPAT: {
        json_t *m = json_object_get(obj, "mode");
        int d, tr;
        if (!json_is_string(m) || strlen(json_string_value(m)) >= sizeof r->mode ||
            mode_bits(json_string_value(m), &d, &tr) != 0)
            return perr(c, m ? m : obj, "%s.mode: expected BACKWARD, FORWARD, FULL, their _TRANSITIVE forms or NONE",
                        where);
        snprintf(r->mode, sizeof r->mode, "%s", json_string_value(m));
        json_t *ob = json_object_get(obj, "on_break");
        if (ob && !(json_is_string(ob) && strcmp(json_string_value(ob), "require_major") == 0))
            return perr(c, ob, "%s.on_break: only require_major is supported", where);
        return 0;
    }
    case T_GRANT: {
        static const char *const rk[] = { "max_duration", "max_days", NULL };
        json_t *md = json_object_get(obj, "max_days"), *req = json_object_get(obj, "require");
        if (req && (!json_is_object(req) || check_keys(c, req, where, rk) != 0))
            return json_is_object(req) ? -1 : perr(c, req, "%s.require: expected {max_duration: P90D}", where);
        if (!md && req)
            md = json_object_get(req, "max_days");
        json_t *dur = req ? json_object_get(req, "max_duration") : NULL;
        int64_t ms;
        if (md && json_is_integer(md) && json_integer_value(md) >= 1 && json_integer_value(md) <= 36500)
            r->max_days = json_integer_value(md);
        else if (!md && json_is_string(dur) && policy_duration_parse(json_string_value(dur), &ms) == 0 &&
                 ms % DAY_MS == 0 && ms > 0)
            r->max_days = ms / DAY_MS;
        else
            return perr(c, md ? md : dur ? dur : obj, "%s: expected max_days: N (1 to 36500) or require: "
                        "{max_duration: PnD}", where);
        json_t *ap = json_object_get(obj, "applies");   /* B.3 spelling: {kind: access.grant} */
        if (ap && !(json_is_object(ap) && json_object_size(ap) == 1 &&
                    json_is_string(json_object_get(ap, "kind")) &&
                    strcmp(json_string_value(json_object_get(ap, "kind")), "access.grant") == 0))
            return perr(c, ap, "%s.applies: only {kind: access.grant}", where);
        for (size_t i = 0; i < r->nconds; i++)
            if (r->conds[i].path.n != 1 || (strcmp(r->conds[i].path.seg[0], "classification") &&
                                            strcmp(r->conds[i].path.seg[0], "product_classification")))
                return perr(c, when, "%s.when: a grant rule is conditioned on classification only", where);
        return 0;
    }
    }
    return 0;
}

static int parse_test(pctx_t *c, const json_t *obj, size_t idx, test_t *t, const policy_set_t *ps)
{
    static const char *const keys[] = { "manifest", "expect", "previous", "name", "description", NULL };
    char where[32], sh[64];
    snprintf(where, sizeof where, "tests[%zu]", idx);
    t->line = yaml_line(&c->lines, obj);
    if (!json_is_object(obj))
        return perr(c, obj, "%s: expected a map (manifest, expect)", where);
    if (check_keys(c, obj, where, keys) != 0)
        return -1;
    json_t *m = json_object_get(obj, "manifest"), *ex = json_object_get(obj, "expect");
    if (!json_is_object(m))
        return perr(c, m ? m : obj, "%s.manifest: expected a map (a manifest)", where);
    t->manifest = json_incref(m);
    json_t *pass = json_object_get(ex, "pass"), *fail = json_object_get(ex, "fail");
    if (!json_is_object(ex) || json_object_size(ex) != 1 || (!json_is_true(pass) && !fail))
        return perr(c, ex ? ex : obj, "%s.expect: expected {pass: true} or {fail: [rule ids]}", where);
    if (fail) {
        char sub[40];
        snprintf(sub, sizeof sub, "%s.expect", where);
        if (get_strs(c, ex, sub, "fail", &t->fail, &t->nfail) != 0)
            return -1;
        for (size_t i = 0; i < t->nfail; i++) {
            size_t j = 0;
            while (j < ps->nrules && strcmp(ps->rules[j].id, t->fail[i]) != 0)
                j++;
            if (j == ps->nrules)
                return perr(c, fail, "%s.expect.fail: no rule '%s' in this set", where, shown(t->fail[i], sh));
        }
    } else
        t->pass = 1;
    json_t *prev = json_object_get(obj, "previous");
    if (prev) {
        static const char *const pk[] = { "status", "age", NULL };
        if (!json_is_object(prev) || check_keys(c, prev, where, pk) != 0)
            return json_is_object(prev) ? -1 : perr(c, prev, "%s.previous: expected {status: S, age: P30D}", where);
        if (get_status(c, prev, where, "status", t->prev_status) != 0)
            return -1;
        json_t *age = json_object_get(prev, "age");
        if (age && (!json_is_string(age) || policy_duration_parse(json_string_value(age), &t->prev_age_ms) != 0))
            return perr(c, age, "%s.previous.age: expected an ISO 8601 duration (P30D)", where);
    }
    return 0;
}

static void rule_free(rule_t *r)
{
    free(r->paths);
    free(r->pattern);
    if (r->has_re)
        regfree(&r->re);
    free_strs(r->values, r->nvalues);
    for (size_t i = 0; i < r->nconds; i++)
        free_strs(r->conds[i].values, r->conds[i].nvalues);
}

void policy_free(policy_set_t **psp)
{
    if (!psp || !*psp)
        return;
    policy_set_t *ps = *psp;
    for (size_t i = 0; i < ps->nrules; i++)
        rule_free(&ps->rules[i]);
    free(ps->rules);
    for (size_t i = 0; i < ps->ntests; i++) {
        json_decref(ps->tests[i].manifest);
        free_strs(ps->tests[i].fail, ps->tests[i].nfail);
    }
    free(ps->tests);
    policy_memo_destroy(&ps->memo);
    free(ps);
    *psp = NULL;
}

policy_set_t *policy_parse(const char *text, size_t len, char *err, size_t errlen)
{
    static const char *const top[] = { "version", "rules", "grace", "tests", "kind", "effective_from",
                                       "description", "name", NULL };
    pctx_t c = { .err = err, .errlen = errlen };
    policy_set_t *ps = NULL;
    json_t *doc = NULL;
    int root_line = 0;

    if (len > POLICY_MAX_BYTES) {
        snprintf(err, errlen, "policy set: %zu bytes, over the limit of %u", len, POLICY_MAX_BYTES);
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "policy set: holds a NUL byte; a policy set is YAML text");
        return NULL;
    }
    doc = yaml_to_json(text, len, &c.lines, &root_line, err, errlen);
    if (!doc && !err[0])
        snprintf(err, errlen, "policy set: empty (no YAML document); a policy set is a map with version and rules");
    if (!doc)
        goto fail;
    if (!json_is_object(doc)) {
        perr(&c, doc, "policy set: expected a map with version and rules, got %s", type_word(doc));
        goto fail;
    }
    if (check_keys(&c, doc, "policy set", top) != 0)
        goto fail;
    if (!(ps = calloc(1, sizeof *ps)) || !(ps->memo = policy_memo_new())) {
        snprintf(err, errlen, "policy set: out of memory");
        goto fail;
    }
    json_t *kind = json_object_get(doc, "kind");
    if (kind && !(json_is_string(kind) && strcmp(json_string_value(kind), "governance.policyset") == 0)) {
        perr(&c, kind, "kind: expected governance.policyset");
        goto fail;
    }
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > 0xffffffffLL) {
        perr(&c, ver ? ver : doc, "version: expected a whole number from 1 (each new set takes a higher one)");
        goto fail;
    }
    ps->version = (uint64_t)json_integer_value(ver);
    json_t *g = json_object_get(doc, "grace");
    if (g && (!json_is_string(g) || policy_duration_parse(json_string_value(g), &ps->grace_ms) != 0)) {
        perr(&c, g, "grace: expected an ISO 8601 duration in weeks, days, hours, minutes or seconds (P30D)");
        goto fail;
    }
    json_t *ef = json_object_get(doc, "effective_from");
    if (ef) {
        if (!json_is_string(ef) || time_parse(json_string_value(ef), &ps->effective_ms) != 0) {
            perr(&c, ef, "effective_from: expected a UTC time, 2026-02-01 or 2026-02-01T00:00:00Z");
            goto fail;
        }
        ps->has_effective_from = 1;
    }
    json_t *rules = json_object_get(doc, "rules");
    if (!json_is_array(rules)) {
        perr(&c, rules ? rules : doc, "rules: expected a list of rules, got %s", rules ? type_word(rules) : "nothing");
        goto fail;
    }
    if (json_array_size(rules) > POLICY_MAX_RULES) {
        perr(&c, rules, "rules: %zu rules, at most %d", json_array_size(rules), POLICY_MAX_RULES);
        goto fail;
    }
    if (json_array_size(rules) && !(ps->rules = calloc(json_array_size(rules), sizeof *ps->rules))) {
        snprintf(err, errlen, "policy set: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
        ps->nrules++;
        if (parse_rule(&c, json_array_get(rules, i), i, &ps->rules[i], ps->rules, i) != 0)
            goto fail;
    }
    json_t *tests = json_object_get(doc, "tests");
    if (tests) {
        if (!json_is_array(tests) || json_array_size(tests) > POLICY_MAX_TESTS) {
            perr(&c, tests, "tests: expected a list of at most %d tests", POLICY_MAX_TESTS);
            goto fail;
        }
        if (json_array_size(tests) && !(ps->tests = calloc(json_array_size(tests), sizeof *ps->tests))) {
            snprintf(err, errlen, "policy set: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(tests); i++) {
            ps->ntests++;
            if (parse_test(&c, json_array_get(tests, i), i, &ps->tests[i], ps) != 0)
                goto fail;
        }
    }
    json_decref(doc);
    yaml_lines_free(&c.lines);
    return ps;
fail:
    policy_free(&ps);
    json_decref(doc);
    yaml_lines_free(&c.lines);
    return NULL;
}

uint64_t policy_version(const policy_set_t *ps) { return ps->version; }
size_t policy_nrules(const policy_set_t *ps) { return ps->nrules; }
size_t policy_ntests(const policy_set_t *ps) { return ps->ntests; }
int64_t policy_effective_ms(const policy_set_t *ps) { return ps->effective_ms; }
int64_t policy_grace_ms(const policy_set_t *ps) { return ps->grace_ms; }

void policy_set_effective(policy_set_t *ps, int64_t ms)
{
    if (!ps->has_effective_from)
        ps->effective_ms = ms;
}

/* ================================================================ documents */

json_t *policy_doc(const json_t *manifest_doc)
{
    json_t *d = json_is_object(manifest_doc) ? json_deep_copy(manifest_doc) : json_object();
    if (!d)
        return NULL;
    const char *dom = json_string_value(json_object_get(d, "domain")),
               *name = json_string_value(json_object_get(d, "name"));
    if (dom && name && !json_object_get(d, "id")) {
        char id[160];
        snprintf(id, sizeof id, "%.70s/%.70s", dom, name);
        json_object_set_new(d, "id", json_string(id));
    }
    if (!json_object_get(d, "status"))
        json_object_set_new(d, "status", json_string("active"));
    if (!json_object_get(d, "classification"))
        json_object_set_new(d, "classification", json_string("internal"));
    return d;
}

json_t *policy_doc_of(const Trib__Manifest *m)
{
    json_error_t je;
    json_t *raw = m->document_json && *m->document_json ? json_loads(m->document_json, 0, &je) : NULL;
    json_t *d = policy_doc_from(m, raw);
    json_decref(raw);
    return d;
}

json_t *policy_doc_from(const Trib__Manifest *m, const json_t *raw)
{
    json_t *d = policy_doc(raw);
    if (!d)
        return NULL;
    /* The parsed manifest is what was signed: its own fields win over a document that disagrees. */
    if (m->domain && *m->domain && m->name && *m->name) {
        char id[160];
        snprintf(id, sizeof id, "%.70s/%.70s", m->domain, m->name);
        json_object_set_new(d, "id", json_string(id));
    }
    if (m->status && *m->status)
        json_object_set_new(d, "status", json_string(m->status));
    if (m->classification && *m->classification)
        json_object_set_new(d, "classification", json_string(m->classification));
    return d;
}

/* ================================================================ reports */

void policy_report_free(policy_report_t *r)
{
    if (!r)
        return;
    free(r->v);
    memset(r, 0, sizeof *r);
}

typedef struct {
    const policy_set_t *ps;
    const policy_ctx_t *ctx;
    policy_report_t *out;
    const rule_t *r;
    int oom;
} ev_t;

static void add_v(ev_t *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_v(ev_t *e, const char *path, const char *fmt, ...)
{
    policy_report_t *o = e->out;
    if (o->n >= POLICY_MAX_VIOLATIONS) {
        o->truncated = 1;
        return;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        policy_violation_t *nv = realloc(o->v, cap * sizeof *nv);
        if (!nv) {
            e->oom = 1;
            return;
        }
        o->v = nv;
        o->cap = cap;
    }
    policy_violation_t *v = &o->v[o->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->rule, sizeof v->rule, "%s", e->r->id);
    snprintf(v->path, sizeof v->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    size_t off = e->r->message[0] ? (size_t)snprintf(v->message, sizeof v->message, "%s: ", e->r->message) : 0;
    if (off < sizeof v->message)
        vsnprintf(v->message + off, sizeof v->message - off, fmt, ap);
    va_end(ap);
    v->line = e->r->line;
    v->severity = e->r->severity;
    const policy_ctx_t *c = e->ctx;
    if (v->severity == POLICY_ERROR && e->ps->grace_ms > 0 && c && c->created_ms > 0 &&
        c->created_ms < e->ps->effective_ms && c->now_ms < e->ps->effective_ms + e->ps->grace_ms) {
        v->severity = POLICY_WARNING;
        v->graced = 1;
    }
    if (v->severity == POLICY_ERROR)
        o->nerrors++;
}

json_t *policy_report_json(const policy_report_t *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        const policy_violation_t *v = &r->v[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "rule", v->rule, "severity",
                              v->severity == POLICY_ERROR ? "error" : "warning", "path", v->path, "message",
                              v->message);
        if (o && v->line > 0)
            json_object_set_new(o, "line", json_integer(v->line));
        if (o && v->graced)
            json_object_set_new(o, "grace", json_true());
        json_array_append_new(a, o);
    }
    return a;
}

/* ================================================================ evaluation */

/* Visits the values at p below v (segment i on), with the concrete path so far in cur.
 * fn(value, concrete path) for each; value NULL where the path is missing (the concrete path
 * then ends with the rest of the requested path). */
typedef void (*visit_fn)(ev_t *e, const json_t *v, const char *path);

/* snprintf(cur + len, cap - len, "%s%.*s", a, bmax, b)'s effect and the length walk keeps after it
 * (cut at cap - 1), without printf: walk appends a segment per value it visits. */
static size_t app(char *cur, size_t len, size_t cap, const char *a, const char *b, size_t bmax)
{
    size_t na = strlen(a), nb = strnlen(b, bmax), room = cap - len - 1;
    size_t ca = na < room ? na : room, cb = nb < room - ca ? nb : room - ca;
    memcpy(cur + len, a, ca);
    memcpy(cur + len + ca, b, cb);
    cur[len + ca + cb] = '\0';
    return len + na + nb < cap ? len + na + nb : cap - 1;
}

/* "[k]" */
static size_t app_index(char *cur, size_t len, size_t cap, size_t k)
{
    char d[24], *w = d + sizeof d;
    *--w = '\0';
    *--w = ']';
    do
        *--w = (char)('0' + k % 10);
    while (k /= 10);
    *--w = '[';
    return app(cur, len, cap, w, "", 0);
}

static void walk(ev_t *e, const json_t *v, const path_t *p, int i, char *cur, size_t curlen, visit_fn fn)
{
    size_t cap = POLICY_PATH_MAX + 32;
    if (e->out->truncated || e->oom)
        return;
    if (i == p->n) {
        fn(e, v, cur);
        return;
    }
    if (strcmp(p->seg[i], "*") == 0) {
        if (json_is_array(v)) {
            for (size_t k = 0; k < json_array_size(v) && !e->out->truncated; k++) {
                walk(e, json_array_get(v, k), p, i + 1, cur, app_index(cur, curlen, cap, k), fn);
                cur[curlen] = '\0';
            }
            return;
        }
        if (json_is_object(v)) {
            const char *k;
            json_t *x;
            json_object_foreach((json_t *)v, k, x) {
                walk(e, x, p, i + 1, cur, app(cur, curlen, cap, curlen ? "." : "", k, 40), fn);
                cur[curlen] = '\0';
                if (e->out->truncated)
                    break;
            }
            return;
        }
    } else if (json_is_object(v)) {
        json_t *x = json_object_get(v, p->seg[i]);
        if (x && !json_is_null(x)) {
            walk(e, x, p, i + 1, cur, app(cur, curlen, cap, curlen ? "." : "", p->seg[i], SIZE_MAX), fn);
            cur[curlen] = '\0';
            return;
        }
    }
    /* missing here: name the rest of the requested path */
    size_t len = curlen;
    for (int k = i; k < p->n && len < cap - 1; k++) {
        int w = strcmp(p->seg[k], "*") == 0 ? snprintf(cur + len, cap - len, "[*]")
                                            : snprintf(cur + len, cap - len, "%s%s", len ? "." : "", p->seg[k]);
        len = len + (size_t)w < cap ? len + (size_t)w : cap - 1;
    }
    fn(e, NULL, cur);
    cur[curlen] = '\0';
}

static void walk_path(ev_t *e, const json_t *doc, const path_t *p, visit_fn fn)
{
    char cur[POLICY_PATH_MAX + 32] = "";
    walk(e, doc, p, 0, cur, 0, fn);
}

static int present(const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s && isspace((unsigned char)*s))
            s++;
        return *s != '\0';
    }
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return 1;
}

static void visit_required(ev_t *e, const json_t *v, const char *path)
{
    if (!v && strstr(path, "[*]"))
        return;   /* every element of a list that is not there: nothing to check (require the list itself) */
    if (!present(v))
        add_v(e, path, "required%s", v ? ", and empty" : "");   /* the path is the violation's own field */
}

/* The rule's regex matches s (its verdict remembered by the set: policy_memo.h). */
static int rx_match(const ev_t *e, const char *s)
{
    return policy_memo_match(e->ps->memo, (unsigned)(e->r - e->ps->rules), &e->r->re, s);
}

static void visit_regex(ev_t *e, const json_t *v, const char *path)
{
    if (!v)
        return;   /* absence is the required rule's business */
    char sh[64];
    if (!json_is_string(v)) {
        add_v(e, path, "expected text to match, got %s", type_word(v));
        return;
    }
    const char *s = json_string_value(v);
    if (json_string_length(v) > POLICY_REGEX_INPUT || strlen(s) != json_string_length(v)) {
        add_v(e, path, "the value is over %u bytes or holds a NUL byte: not matched", POLICY_REGEX_INPUT);
        return;
    }
    if (rx_match(e, s))
        return;
    if (e->r->message[0])
        add_v(e, path, "'%s' does not match the required pattern", shown(s, sh));
    else   /* no words of the rule's own: the pattern says what is required */
        add_v(e, path, "'%s' does not match the required pattern %.100s%s", shown(s, sh), e->r->pattern,
              strlen(e->r->pattern) > 100 ? "..." : "");
}

static void visit_enum(ev_t *e, const json_t *v, const char *path)
{
    if (!v)
        return;
    char buf[32], sh[64];
    const char *t = scalar_text(v, buf);
    for (size_t i = 0; t && i < e->r->nvalues; i++)
        if (strcmp(t, e->r->values[i]) == 0)
            return;
    char list[200] = "";
    size_t used = 0;
    for (size_t i = 0; i < e->r->nvalues && used < sizeof list - 1; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", e->r->values[i]);
    add_v(e, path, "%s%s%s is not one of %s", t ? "'" : "", t ? shown(t, sh) : type_word(v), t ? "'" : "", list);
}

/* All conditions of r hold for doc. */
static int conds_hold(const rule_t *r, const json_t *doc)
{
    for (size_t i = 0; i < r->nconds; i++) {
        const json_t *v = doc;
        for (int k = 0; v && k < r->conds[i].path.n; k++)
            v = json_is_object(v) ? json_object_get(v, r->conds[i].path.seg[k]) : NULL;
        char buf[32];
        const char *t = v ? scalar_text(v, buf) : NULL;
        int any = 0;
        for (size_t j = 0; t && j < r->conds[i].nvalues && !any; j++)
            any = strcmp(t, r->conds[i].values[j]) == 0;
        if (!any)
            return 0;
    }
    return 1;
}

static int has_tag(const json_t *field, char **tags, size_t n)
{
    json_t *t = json_object_get(field, "tags");
    if (json_is_string(t))
        for (size_t j = 0; j < n; j++)
            if (strcasecmp(json_string_value(t), tags[j]) == 0)
                return 1;
    for (size_t i = 0; json_is_array(t) && i < json_array_size(t); i++) {
        const char *s = json_string_value(json_array_get(t, i));
        for (size_t j = 0; s && j < n; j++)
            if (strcasecmp(s, tags[j]) == 0)
                return 1;
    }
    return 0;
}

/* Schema fields (and their nested properties) whose name matches the rule's name_regex. */
static void field_walk(ev_t *e, const json_t *list, const char *base, int depth, const char *cls, int *class_done)
{
    char path[POLICY_PATH_MAX + 32], sh[64];
    if (!json_is_array(list) || depth > FIELD_DEPTH)
        return;
    for (size_t i = 0; i < json_array_size(list) && !e->out->truncated; i++) {
        json_t *f = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        int hit = name && strlen(name) <= 255 && rx_match(e, name);
        json_t *props = json_object_get(f, "properties"), *items = json_object_get(f, "items");
        if (!hit && !props && !(json_is_object(items) && json_object_get(items, "properties")))
            continue;   /* nothing to say about it, nothing below it: no path to name */
        snprintf(path, sizeof path, "%.*s[%zu]", POLICY_PATH_MAX, base, i);
        if (hit) {
            if (e->r->nvalues && !has_tag(f, e->r->values, e->r->nvalues)) {
                char tp[POLICY_PATH_MAX + 40];
                snprintf(tp, sizeof tp, "%s.tags", path);
                add_v(e, tp, "field '%s' must be tagged %s%s", shown(name, sh), e->r->nvalues > 1 ? "one of " : "",
                      e->r->values[0]);
            }
            if (e->r->class_min >= 0 && !*class_done && class_rank(cls) < e->r->class_min) {
                *class_done = 1;   /* one violation for the product, naming the first field */
                add_v(e, "classification", "field '%s' makes the product at least %s; it is classified %s",
                      shown(name, sh), classes[e->r->class_min], cls ? cls : "nothing");
            }
        }
        if (props) {
            char sub[POLICY_PATH_MAX + 32];
            snprintf(sub, sizeof sub, "%.*s.properties", POLICY_PATH_MAX, path);
            field_walk(e, props, sub, depth + 1, cls, class_done);
        }
        if (json_is_object(items) && json_object_get(items, "properties")) {
            char sub[POLICY_PATH_MAX + 32];
            snprintf(sub, sizeof sub, "%.*s.items.properties", POLICY_PATH_MAX - 20, path);
            field_walk(e, json_object_get(items, "properties"), sub, depth + 1, cls, class_done);
        }
    }
}

static void eval_rule(ev_t *e, const json_t *doc)
{
    const rule_t *r = e->r;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (r->type != T_FIELD && r->nconds && !conds_hold(r, doc))
        return;
    switch (r->type) {
    case T_REQUIRED:
        for (size_t i = 0; i < r->npaths; i++)
            walk_path(e, doc, &r->paths[i], visit_required);
        break;
    case T_REGEX:
        walk_path(e, doc, &r->paths[0], visit_regex);
        break;
    case T_ENUM:
        walk_path(e, doc, &r->paths[0], visit_enum);
        break;
    case T_FIELD: {
        int done = 0;
        field_walk(e, json_object_get(doc, "schema"), "schema", 0,
                   json_string_value(json_object_get(doc, "classification")), &done);
        break;
    }
    case T_TRANSITION: {
        const policy_ctx_t *c = e->ctx;
        if (!status || strcmp(status, r->to) != 0 || !c || !c->prev_status || strcmp(c->prev_status, r->to) == 0)
            break;
        int64_t days = r->min_age_ms / DAY_MS;
        if (strcmp(c->prev_status, r->from) != 0)
            add_v(e, "status", "%s -> %s: a product is %s for at least %lld day%s before it is %s", c->prev_status,
                  r->to, r->from, (long long)days, days == 1 ? "" : "s", r->to);
        else if (c->now_ms - c->prev_status_since_ms < r->min_age_ms) {
            int64_t had = (c->now_ms - c->prev_status_since_ms) / DAY_MS;
            add_v(e, "status", "%s for %lld day%s, at least %lld before %s", r->from, (long long)had,
                  had == 1 ? "" : "s", (long long)days, r->to);
        }
        break;
    }
    case T_COMPAT: {
        json_t *m = json_object_get(doc, "compatibility");
        const char *mode = json_string_value(m);
        char sh[64];
        if (m && !mode) {
            add_v(e, "compatibility", "expected a compatibility mode, got %s", type_word(m));
            break;
        }
        int cov = policy_mode_covers(mode ? mode : "", r->mode);
        if (cov < 0)
            add_v(e, "compatibility", "'%s' is not a compatibility mode", shown(mode, sh));
        else if (!cov)
            add_v(e, "compatibility", "%s is looser than the floor %s", mode && *mode ? mode : "BACKWARD_TRANSITIVE",
                  r->mode);
        break;
    }
    case T_GRANT:
        break;
    }
}

int policy_eval(const policy_set_t *ps, const json_t *doc, const policy_ctx_t *ctx, policy_report_t *out)
{
    ev_t e = { .ps = ps, .ctx = ctx, .out = out };
    for (size_t i = 0; i < ps->nrules && !out->truncated; i++) {
        e.r = &ps->rules[i];
        eval_rule(&e, doc);
    }
    return e.oom ? -1 : 0;
}

int policy_eval_retire(const policy_set_t *ps, const policy_ctx_t *ctx, policy_report_t *out)
{
    ev_t e = { .ps = ps, .ctx = ctx, .out = out };
    json_t *doc = json_pack("{s:s}", "status", "retired");
    if (!doc)
        return -1;
    for (size_t i = 0; i < ps->nrules; i++) {
        e.r = &ps->rules[i];
        if (e.r->type == T_TRANSITION && strcmp(e.r->to, "retired") == 0)
            eval_rule(&e, doc);
    }
    json_decref(doc);
    return e.oom ? -1 : 0;
}

int policy_eval_grant(const policy_set_t *ps, const char *classification, int64_t days, policy_report_t *out)
{
    ev_t e = { .ps = ps, .out = out };
    json_t *doc = json_pack("{s:s,s:s}", "classification", classification ? classification : "internal",
                            "product_classification", classification ? classification : "internal");
    if (!doc)
        return -1;
    for (size_t i = 0; i < ps->nrules; i++) {
        e.r = &ps->rules[i];
        if (e.r->type != T_GRANT || !conds_hold(e.r, doc))
            continue;
        if (days > e.r->max_days)
            add_v(&e, "days", "a grant on a %s product lasts at most %lld days; asked %lld",
                  classification ? classification : "internal", (long long)e.r->max_days, (long long)days);
    }
    json_decref(doc);
    return e.oom ? -1 : 0;
}

/* ================================================================ the set's own tests */

int policy_run_tests(const policy_set_t *ps, json_t **results, char *err, size_t errlen)
{
    int failed = 0;
    if (results)
        *results = json_array();
    for (size_t i = 0; i < ps->ntests; i++) {
        const test_t *t = &ps->tests[i];
        policy_report_t rep = { 0 };
        json_t *doc = policy_doc(t->manifest);
        policy_ctx_t ctx = { .now_ms = ps->effective_ms > TEST_NOW_MS ? ps->effective_ms : TEST_NOW_MS };
        if (t->prev_status[0]) {
            ctx.prev_status = t->prev_status;
            ctx.prev_status_since_ms = ctx.now_ms - t->prev_age_ms;
        }
        if (!doc || policy_eval(ps, doc, &ctx, &rep) != 0) {
            json_decref(doc);
            policy_report_free(&rep);
            snprintf(err, errlen, "tests[%zu]: out of memory", i);
            return -1;
        }
        json_decref(doc);
        char why[640] = "";
        size_t fe = 0;
        while (fe < rep.n && rep.v[fe].severity != POLICY_ERROR)
            fe++;
        if (t->pass && fe < rep.n)
            snprintf(why, sizeof why, "expected to pass, but rule %s failed: %s: %s", rep.v[fe].rule, rep.v[fe].path,
                     rep.v[fe].message);
        for (size_t k = 0; !t->pass && k < t->nfail && !why[0]; k++) {
            size_t j = 0;
            while (j < rep.n && strcmp(rep.v[j].rule, t->fail[k]) != 0)
                j++;
            if (j == rep.n)
                snprintf(why, sizeof why, "expected rule %s to fail, but it passed", t->fail[k]);
        }
        if (why[0] && !failed) {
            if (t->line > 0)
                snprintf(err, errlen, "tests[%zu] (line %d): %s", i, t->line, why);
            else
                snprintf(err, errlen, "tests[%zu]: %s", i, why);
        }
        failed |= why[0] != '\0';
        if (results)
            json_array_append_new(*results, json_pack("{s:I,s:I,s:b,s:s,s:o}", "test", (json_int_t)i, "line",
                                                      (json_int_t)t->line, "ok", !why[0], "why", why,
                                                      "violations", policy_report_json(&rep)));
        policy_report_free(&rep);
    }
    return failed ? -1 : 0;
}
