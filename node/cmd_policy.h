/* node/cmd_policy.h - `trib policy test|sign|submit|show` and `trib compliance` (DESIGN §14).
 *
 * test and sign run offline (sign on the governance machine, with governance key files); submit,
 * show and compliance ask a node (--node URL, else $TRIB_NODE, else http://127.0.0.1:7480).
 * Exit codes as DESIGN.md §10: 0 success; 1 failure (a failing test, a refused set), one line
 * "trib: policy CMD: ..." on stderr; 2 usage error with "try 'trib policy CMD --help'". */
#ifndef TRIB_CMD_POLICY_H
#define TRIB_CMD_POLICY_H

#include <jansson.h>
#include <stdio.h>

/* 1 for "policy" and "compliance". */
int policy_cmd_is(const char *name);
/* argv[0] is "policy" or "compliance"; returns the exit code. */
int policy_cmd_run(int argc, char **argv, FILE *out, FILE *err);
/* The lines for `trib --help`. */
void policy_cmd_usage(FILE *f);
/* A product's "compliance" object as text lines (trib show); nothing for NULL. */
void policy_cmd_print_compliance(FILE *out, json_t *compliance);
/* A publish reply's "warnings" as lines (trib publish); nothing when absent. */
void policy_cmd_print_warnings(FILE *out, json_t *reply);
/* A list of violations (or warnings) as lines, each after indent: "error   owners.business (manifest
 * line 11): MESSAGE; rule owners.email (policy line 22)": where in the manifest first (its line when
 * the node had the text: a publish or check), then which rule of the set. The node's words are
 * cleaned for a terminal. Used by trib publish, check, show and compliance. */
void policy_cmd_print_violation_list(FILE *f, json_t *list, const char *indent);
/* A refusal's "violations" as lines under the error (trib publish); nothing when absent. */
void policy_cmd_print_violations(FILE *err, json_t *reply);
/* What to print above a refusal's violations instead of its detail when the detail only says again
 * what the list's first error says (a policy refusal's "first: ...", the gate's own refusal): a
 * count, "3 errors under policy set version 1", in buf, so each error is printed once. NULL when
 * the detail says more than the list (print it). */
const char *policy_cmd_refusal_count(json_t *reply, const char *detail, char *buf, size_t cap);

#endif
