/* bench/policyset.h - the generated 50-rule policy set of bench/policy.c and bench/gate.c (one
 * definition, so both measure the same set): required, regex, enum, field_rule, transition and
 * compatibility rules over a realistic manifest, with one test case.
 * Must not: hold anything but the generator (header-only: each bench is one program). */
#ifndef TRIB_BENCH_POLICYSET_H
#define TRIB_BENCH_POLICYSET_H

#include <stdio.h>
#include <stdlib.h>

#define NRULES 50

/* The set at version (its compatibility floor is NONE at 1, BACKWARD above), malloc'd YAML. */
static inline char *make_set(int version)
{
    size_t cap = 64 << 10, off = 0;
    char *s = malloc(cap);
    off += (size_t)snprintf(s + off, cap - off, "version: %d\nrules:\n", version);
    static const char *const req[] = { "owners.business", "owners.technical", "description.purpose", "title",
                                       "version", "schema", "tags", "classification" };
    int r = 0;
    for (; r < 16; r++)
        off += (size_t)snprintf(s + off, cap - off, "  - {id: req%d, severity: %s, type: required, paths: [%s]}\n", r,
                                r % 2 ? "warning" : "error", req[r % 8]);
    for (; r < 32; r++)
        off += (size_t)snprintf(s + off, cap - off,
                                "  - {id: re%d, severity: warning, type: regex, path: '%s', pattern: '%s'}\n", r,
                                r % 2 ? "schema[*].name" : "owners.*",
                                r % 2 ? "^[a-z][a-z0-9_]{0,62}$" : "^[A-Za-z0-9._%%+-]+@[A-Za-z0-9.-]+\\.[a-z]{2,}$");
    for (; r < 40; r++)
        off += (size_t)snprintf(s + off, cap - off,
                                "  - {id: en%d, severity: error, type: enum, path: classification, "
                                "values: [public, internal, confidential, restricted]}\n", r);
    for (; r < 46; r++)
        off += (size_t)snprintf(s + off, cap - off,
                                "  - {id: fr%d, severity: warning, type: field_rule, when: {name_regex: '(email|phone|iban)'}, "
                                "require: {tags_any: [pii], classification_min: confidential}}\n", r);
    for (; r < 48; r++)
        off += (size_t)snprintf(s + off, cap - off,
                                "  - {id: tr%d, severity: error, type: transition, from: deprecated, to: retired, "
                                "min_age: P60D}\n", r);
    for (; r < NRULES; r++)
        off += (size_t)snprintf(s + off, cap - off, "  - {id: co%d, severity: error, type: compatibility, mode: %s}\n",
                                r, version > 1 ? "BACKWARD" : "NONE");
    snprintf(s + off, cap - off, "tests:\n  - manifest: {name: x}\n    expect: {fail: [req0]}\n");
    return s;
}

#endif
