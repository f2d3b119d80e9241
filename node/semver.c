/* node/semver.c - Semantic Versioning 2.0.0 (https://semver.org/spec/v2.0.0.html).
 *
 * Owns: parsing with a message naming the bad part, precedence (§11), the level of a step.
 * Must not: allocate, or know what a version is attached to. */
#include "node/semver.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 5)))
static int fail(const char *s, char *err, size_t errlen, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "'%.64s%s' is not a semantic version: %s", s, strlen(s) > 64 ? "..." : "",
             why);
    return -1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* One numeric core component at *p; advances *p. */
static int core_num(const char *s, const char **p, const char *what, uint64_t *out, char *err,
                    size_t errlen)
{
    const char *q = *p;
    if (!is_digit(*q))
        return fail(s, err, errlen, "expected MAJOR.MINOR.PATCH (semver 2.0.0), e.g. 1.4.0; "
                    "the %s part is missing or not a number", what);
    if (*q == '0' && is_digit(q[1]))
        return fail(s, err, errlen, "the %s part has a leading zero", what);
    uint64_t v = 0;
    for (; is_digit(*q); q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            return fail(s, err, errlen, "the %s part is too large", what);
        v = v * 10 + d;
    }
    *out = v;
    *p = q;
    return 0;
}

/* Dot-separated identifiers from *p to the next '+' or the end; numeric ones without leading
 * zeros when numeric_rule. Copies them to out. */
static int idents(const char *s, const char **p, const char *what, int numeric_rule, char *out,
                  size_t cap, char *err, size_t errlen)
{
    const char *q = *p, *start = q;
    for (;;) {
        const char *id = q;
        int all_digits = 1;
        while (*q != '\0' && *q != '.' && *q != '+') {
            if (!is_ident_char(*q))
                return fail(s, err, errlen, "character '%c' is not allowed in the %s (only "
                            "[0-9A-Za-z-])", *q, what);
            all_digits &= is_digit(*q);
            q++;
        }
        if (q == id)
            return fail(s, err, errlen, "empty identifier in the %s", what);
        if (numeric_rule && all_digits && *id == '0' && q - id > 1)
            return fail(s, err, errlen, "numeric identifier '%.*s' in the %s has a leading zero",
                        (int)(q - id > 20 ? 20 : q - id), id, what);
        if (*q != '.')
            break;
        q++;
    }
    if ((size_t)(q - start) >= cap)
        return fail(s, err, errlen, "the %s is too long", what);
    memcpy(out, start, (size_t)(q - start));
    out[q - start] = '\0';
    *p = q;
    return 0;
}

int semver_parse(const char *s, semver_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (s == NULL || *s == '\0') {
        snprintf(err, errlen, "empty version: expected MAJOR.MINOR.PATCH (semver 2.0.0), e.g. 1.4.0");
        return -1;
    }
    if (strlen(s) > SEMVER_MAX_LEN)
        return fail(s, err, errlen, "longer than %d characters", SEMVER_MAX_LEN);
    const char *p = s;
    if (*p == 'v' || *p == 'V')
        return fail(s, err, errlen, "drop the leading '%c' (write %s)", *p, s + 1);
    if (core_num(s, &p, "major", &out->major, err, errlen) != 0)
        return -1;
    if (*p != '.')
        return fail(s, err, errlen, "expected MAJOR.MINOR.PATCH (semver 2.0.0), e.g. 1.4.0");
    p++;
    if (core_num(s, &p, "minor", &out->minor, err, errlen) != 0)
        return -1;
    if (*p != '.')
        return fail(s, err, errlen, "expected MAJOR.MINOR.PATCH (semver 2.0.0), e.g. 1.4.0");
    p++;
    if (core_num(s, &p, "patch", &out->patch, err, errlen) != 0)
        return -1;
    if (*p == '-') {
        p++;
        if (idents(s, &p, "pre-release", 1, out->pre, sizeof out->pre, err, errlen) != 0)
            return -1;
    }
    if (*p == '+') {
        p++;
        if (idents(s, &p, "build metadata", 0, out->build, sizeof out->build, err, errlen) != 0)
            return -1;
    }
    if (*p != '\0')
        return fail(s, err, errlen, "unexpected '%c' after MAJOR.MINOR.PATCH (a pre-release "
                    "starts with '-', build metadata with '+')", *p);
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

/* §11.4: identifiers compared one by one; numeric < alphanumeric; more identifiers win a tie. */
static int cmp_pre(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        int na = la == strspn(a, "0123456789"), nb = lb == strspn(b, "0123456789");
        int c;
        if (na && nb)   /* no leading zeros: the longer number is larger */
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
        else if (na != nb)
            c = na ? -1 : 1;
        else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (c == 0)
                c = la < lb ? -1 : la > lb ? 1 : 0;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return *a == '\0' && *b == '\0' ? 0 : *a == '\0' ? -1 : 1;
}

int semver_compare(const semver_t *a, const semver_t *b)
{
    int c = cmp_u64(a->major, b->major);
    if (c == 0)
        c = cmp_u64(a->minor, b->minor);
    if (c == 0)
        c = cmp_u64(a->patch, b->patch);
    if (c != 0)
        return c;
    if (a->pre[0] == '\0' || b->pre[0] == '\0')   /* §11.3: a release is above its pre-releases */
        return a->pre[0] == b->pre[0] ? 0 : a->pre[0] == '\0' ? 1 : -1;
    return cmp_pre(a->pre, b->pre);
}

int semver_step(const semver_t *a, const semver_t *b)
{
    if (semver_compare(a, b) >= 0)
        return 0;
    if (b->major != a->major)
        return 3;
    if (b->minor != a->minor)
        return 2;
    if (b->patch != a->patch)
        return 1;
    /* Same X.Y.Z: a was a pre-release of it, b ripens it (or is a later pre-release). */
    return a->minor == 0 && a->patch == 0 ? 3 : a->patch == 0 ? 2 : 1;
}
