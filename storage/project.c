/* storage/project.c - field projection of JSON records (storage/project.h).
 *
 * Owns: a scanner of one JSON object's top-level members (strings with escapes, nested values by
 * depth counting, scalars up to a delimiter) that copies the members kept.
 * Must not: recurse, read beyond len, or trust the bytes: anything unexpected gives "{}". */
#include "storage/project.h"

#include <stdlib.h>
#include <string.h>

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* s[i] is '"': the index after the closing quote, or len + 1 when it does not close. */
static size_t skip_string(const char *s, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len + 1;
}

/* The index after the value starting at s[i], or len + 1 when malformed. */
static size_t skip_value(const char *s, size_t i, size_t len)
{
    if (i >= len)
        return len + 1;
    if (s[i] == '"')
        return skip_string(s, i, len);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char ch = s[i];
            if (ch == '"') {
                i = skip_string(s, i, len);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return len + 1;
    }
    size_t start = i;
    while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\r' && s[i] != '\n' && s[i] != '"' && s[i] != '{' && s[i] != '[' && s[i] != ':')
        i++;
    return i > start ? i : len + 1;
}

static int wanted(const char *name, size_t nlen, const char *const *fields)
{
    if (memchr(name, '\\', nlen))
        return 0;   /* an escaped name never matches: fail closed */
    for (size_t i = 0; fields[i]; i++)
        if (strlen(fields[i]) == nlen && memcmp(fields[i], name, nlen) == 0)
            return 1;
    return 0;
}

size_t project_record(const char *s, size_t len, const char *const *fields, char *out)
{
    size_t o = 0, i = skip_ws(s, 0, len);
    if (i >= len || s[i] != '{')
        goto bad;
    out[o++] = '{';
    i = skip_ws(s, i + 1, len);
    if (i < len && s[i] == '}') {
        i++;
        goto end;
    }
    for (;;) {
        if (i >= len || s[i] != '"')
            goto bad;
        size_t k0 = i, k1 = skip_string(s, i, len);
        if (k1 > len)
            goto bad;
        i = skip_ws(s, k1, len);
        if (i >= len || s[i] != ':')
            goto bad;
        i = skip_ws(s, i + 1, len);
        size_t v0 = i, v1 = skip_value(s, i, len);
        if (v1 > len)
            goto bad;
        if (wanted(s + k0 + 1, k1 - k0 - 2, fields)) {
            if (o > 1)
                out[o++] = ',';
            memcpy(out + o, s + k0, k1 - k0);
            o += k1 - k0;
            out[o++] = ':';
            memcpy(out + o, s + v0, v1 - v0);
            o += v1 - v0;
        }
        i = skip_ws(s, v1, len);
        if (i < len && s[i] == ',') {
            i = skip_ws(s, i + 1, len);
            continue;
        }
        if (i < len && s[i] == '}') {
            i++;
            break;
        }
        goto bad;
    }
end:
    if (skip_ws(s, i, len) != len)
        goto bad;
    out[o++] = '}';
    return o;
bad:
    if (len < 2)   /* out holds len bytes: a record this short is not an object and projects to nothing */
        return 0;
    out[0] = '{';
    out[1] = '}';
    return 2;
}

size_t project_ndjson(char *buf, size_t len, const char *const *fields)
{
    if (!fields || len == 0)
        return len;
    char *scratch = malloc(len);
    if (!scratch)
        return (size_t)-1;
    size_t w = 0, r = 0;
    while (r < len) {
        const char *nl = memchr(buf + r, '\n', len - r);
        size_t l = nl ? (size_t)(nl - (buf + r)) : len - r;
        size_t n = project_record(buf + r, l, fields, scratch);
        memcpy(buf + w, scratch, n);   /* w + n <= r + l: never past what is still to be read */
        w += n;
        r += l;
        if (nl) {
            buf[w++] = '\n';
            r++;
        }
    }
    free(scratch);
    return w;
}
