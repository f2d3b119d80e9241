/* node/policy.h - governance policy sets (DESIGN.md §14): the YAML shape of
 * shared/research/governance-anchors.md B.3, the fixed rule vocabulary and a bounded,
 * deterministic evaluator.
 *
 * A set is YAML with top-level `version` (integer >= 1) and `rules`, optional `grace`
 * (ISO 8601 duration, e.g. P30D), `effective_from` (2026-02-01T00:00:00Z), `tests`, `kind`
 * (governance.policyset), `description`. Each rule: `id`, `severity` (error | warning), `type`:
 *   required       paths: [p, ...]                 each path present and non-empty
 *   regex          path, pattern                   each string at path matches (POSIX ERE)
 *   enum           path, values: [...]             each value at path is one of values
 *   field_rule     when: {name_regex}, require: {tags_any: [...], classification_min: C}
 *                                                  schema fields whose name matches carry one of
 *                                                  the tags; the product is classified >= C
 *   transition     from, to, min_age               a product enters `to` only after `min_age` in `from`
 *   compatibility  mode                            the manifest's mode is at least as strict
 *   grant          when: {classification}, max_days (or require: {max_duration: P90D})
 *                                                  grants on such products last at most that long
 * required/regex/enum may carry `when: {path: value | [values]}` (the rule applies only then).
 * Paths are dotted names with `[*]` (or `*`) for every element: `schema[*].description`.
 * Every test: `manifest` (a map) and `expect: {pass: true}` or `expect: {fail: [rule ids]}`.
 *
 * Bounds (a hostile set is refused at parse time, never slow to evaluate): POLICY_MAX_BYTES of
 * text, POLICY_MAX_RULES rules, POLICY_MAX_TESTS tests, POLICY_MAX_LIST entries per list,
 * POLICY_PATH_DEPTH segments per path, POLICY_REGEX_MAX bytes per pattern with no
 * back-references and a bounded expansion of counted repetitions (POLICY_REGEX_COST), regexes
 * compiled once per set; an evaluation reports at most POLICY_MAX_VIOLATIONS violations and
 * matches regexes against at most POLICY_REGEX_INPUT bytes of a value.
 *
 * Must not: touch storage, the network or the clock (callers pass times), or print. */
#ifndef TRIB_POLICY_H
#define TRIB_POLICY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/tributary.pb-c.h"

#define POLICY_MAX_BYTES      (256u << 10)
#define POLICY_MAX_RULES      256
#define POLICY_MAX_TESTS      64
#define POLICY_MAX_LIST       64
#define POLICY_PATH_DEPTH     8
#define POLICY_PATH_MAX       128
#define POLICY_REGEX_MAX      256
#define POLICY_REGEX_COST     2000
#define POLICY_REGEX_INPUT    (64u << 10)
#define POLICY_MAX_VIOLATIONS 256
#define POLICY_ID_MAX         64

typedef enum { POLICY_ERROR = 1, POLICY_WARNING = 2 } policy_severity_t;

typedef struct policy_set policy_set_t;

typedef struct {
    char rule[POLICY_ID_MAX];
    policy_severity_t severity;   /* after grace: an error in grace is reported as a warning */
    int graced;                   /* 1: an error turned into a warning by the grace period */
    char path[POLICY_PATH_MAX + 32];
    char message[256];
    int line;                     /* of the rule in the set's YAML, 0 when unknown */
} policy_violation_t;

typedef struct {
    policy_violation_t *v;
    size_t n, cap;
    size_t nerrors;               /* of severity error (after grace) */
    int truncated;                /* more than POLICY_MAX_VIOLATIONS were found */
} policy_report_t;

/* What the evaluator knows beyond the manifest. Zeroed: a new product, no previous manifest. */
typedef struct {
    int64_t now_ms;               /* the time to judge at (publish: now; re-check: the entry's time) */
    int64_t created_ms;           /* when the product was first published; 0: it is new */
    const char *prev_status;      /* the previous manifest's status, NULL when none */
    int64_t prev_status_since_ms; /* since when it has had prev_status */
} policy_ctx_t;

/* Parses and checks a set (YAML text of len bytes). NULL with err naming what and the line:
 * "rules[3].pattern: back-references are not allowed (line 41)". */
policy_set_t *policy_parse(const char *text, size_t len, char *err, size_t errlen);
void policy_free(policy_set_t **ps);              /* accepts NULL and *ps == NULL */

uint64_t policy_version(const policy_set_t *ps);
size_t policy_nrules(const policy_set_t *ps);
size_t policy_ntests(const policy_set_t *ps);
/* When the set takes effect: `effective_from`, else what policy_set_effective gave (a signed
 * set: its signing time), else 0. Grace runs from there. */
int64_t policy_effective_ms(const policy_set_t *ps);
void policy_set_effective(policy_set_t *ps, int64_t ms);
int64_t policy_grace_ms(const policy_set_t *ps);

/* The document rules see: a copy of the manifest's JSON with `id` (domain/name), and `status`
 * (active) and `classification` (internal) defaulted as node/manifest.c does. New reference. */
json_t *policy_doc(const json_t *manifest_doc);
json_t *policy_doc_of(const Trib__Manifest *m);
/* The same with m's document already parsed (raw: manifest_document(m), borrowed, or NULL). */
json_t *policy_doc_from(const Trib__Manifest *m, const json_t *raw);

/* Evaluates every rule but `grant` on doc (a policy_doc) in rule order: deterministic (same
 * doc, set and ctx = same report). out starts zeroed; free with policy_report_free. 0, or -1
 * out of memory. Grace: an error of a product created before the set's effective time, judged
 * before effective + grace, is reported as a warning with graced = 1. */
int policy_eval(const policy_set_t *ps, const json_t *doc, const policy_ctx_t *ctx, policy_report_t *out);
/* The `transition` rules into "retired" for a product retired by a tombstone (no manifest):
 * ctx->prev_status is its status before. */
int policy_eval_retire(const policy_set_t *ps, const policy_ctx_t *ctx, policy_report_t *out);
/* The `grant` rules for a grant of days on a product of classification (the grants code calls
 * this before granting). */
int policy_eval_grant(const policy_set_t *ps, const char *classification, int64_t days,
                      policy_report_t *out);
void policy_report_free(policy_report_t *r);
/* [{"rule","severity","path","message","line"?,"grace"?}, ...]. New reference. */
json_t *policy_report_json(const policy_report_t *r);

/* Runs the set's own tests. 0 when all pass; -1 with err naming the first failing test (its
 * line, what was expected and what was found). results (optional): one object per test. */
int policy_run_tests(const policy_set_t *ps, json_t **results, char *err, size_t errlen);

/* 1 when mode (a compatibility mode name, "" for the default BACKWARD_TRANSITIVE) is at least
 * as strict as floor; -1 when either is not a mode name. */
int policy_mode_covers(const char *mode, const char *floor);
/* ISO 8601 duration (PnW, PnD, PTnH, PTnM, PTnS and combinations) -> ms; 0 or -1. */
int policy_duration_parse(const char *s, int64_t *ms);

#endif
