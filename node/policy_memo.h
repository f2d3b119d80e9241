/* node/policy_memo.h - what a policy set's regexes said about the strings they were matched
 * against (node/policy.c asks it before running one).
 *
 * A regex of a set is compiled once and never changes, and regexec is a pure function of the
 * pattern and the string: a verdict remembered is the verdict regexec gives, so every node still
 * reaches the same one. Field names and owners repeat across products and versions, and
 * glibc's regexec costs about a microsecond per call (issue 12's gate benchmark: ~340 per publish
 * with its 50-rule set). One memo per set, freed with it (a new set starts empty).
 * Bounded: POLICY_MEMO_ENTRIES verdicts of strings up to POLICY_MEMO_STR bytes (longer ones are
 * matched every time); when full it is emptied. Thread-safe (the compliance thread and
 * publishes evaluate one set at once). */
#ifndef TRIB_POLICY_MEMO_H
#define TRIB_POLICY_MEMO_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MEMO_ENTRIES 2048
#define POLICY_MEMO_STR     47

typedef struct policy_memo policy_memo_t;

policy_memo_t *policy_memo_new(void);               /* NULL when out of memory */
void policy_memo_destroy(policy_memo_t **m);        /* accepts NULL and *m == NULL */

/* regexec(re, s, 0, NULL, 0) == 0 for the regex numbered slot (one number per compiled regex of
 * the set), remembered. m NULL: regexec every time. */
int policy_memo_match(policy_memo_t *m, unsigned slot, const regex_t *re, const char *s);

/* Counters, for tests: lookups answered from the memo, regexec calls, verdicts held, times
 * emptied. */
void policy_memo_stats(policy_memo_t *m, uint64_t *hits, uint64_t *misses, size_t *held, uint64_t *emptied);

#endif
