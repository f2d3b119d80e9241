/* node/semver.h - Semantic Versioning 2.0.0: parse, compare, and the level of a step.
 *
 * Owns: the grammar of semver.org (MAJOR.MINOR.PATCH[-pre][+build], no leading zeros, non-empty
 * identifiers of [0-9A-Za-z-]), precedence (§11: pre-release below release, identifiers compared
 * numerically or in ASCII order, build metadata ignored) and which component a step raised.
 * Must not: know about manifests or compatibility (node/compat.c decides what a step must be). */
#ifndef TRIB_SEMVER_H
#define TRIB_SEMVER_H

#include <stddef.h>
#include <stdint.h>

#define SEMVER_MAX_LEN 256          /* as node/manifest.c's limit on `version` */

typedef struct {
    uint64_t major, minor, patch;
    char pre[SEMVER_MAX_LEN + 1];   /* pre-release identifiers without the '-', or "" */
    char build[SEMVER_MAX_LEN + 1]; /* build metadata without the '+', or "" */
} semver_t;

/* 0, or -1 with err saying what is wrong and where: "'1.0' is not a semantic version: expected
 * MAJOR.MINOR.PATCH (semver 2.0.0), e.g. 1.4.0". */
int semver_parse(const char *s, semver_t *out, char *err, size_t errlen);

/* Precedence: <0, 0 or >0. Versions differing only in build metadata compare equal. */
int semver_compare(const semver_t *a, const semver_t *b);

/* The component a step from a to a higher b raised: 3 major, 2 minor, 1 patch, 0 none (b does not
 * have higher precedence). A pre-release a of X.0.0 ripening to X.0.0 or a later X.0.0-pre counts
 * as major (the train of that major), of X.Y.0 as minor, else patch. */
int semver_step(const semver_t *a, const semver_t *b);

#endif
