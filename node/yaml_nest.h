/* node/yaml_nest.h - one linear pass over YAML text, before libfyaml reads it, for its flow
 * collections: how deep '[' and '{' nest and which one is left open at the end.
 *
 * Why: libfyaml's scanner holds every token of a flow collection until it can tell whether the
 * collection is a key, so 1 MiB of '[' cost 1.2 s before the first event reached our depth limit,
 * and 1 MiB of one wide collection ("[a, a, a, ...") 260 MB of memory; naming a bracket left open
 * needed a second scan as long as the first. This pass costs a few
 * milliseconds per MiB. Must not: parse YAML. It knows only what hides a bracket (quoted scalars,
 * comments, block scalars, plain text in block context); it may miss a bracket libfyaml sees
 * (never refusing what libfyaml would accept unless brackets really nest that deep, or a flow
 * collection holds more than YAML_FLOW_ITEMS_MAX items). */
#ifndef TRIB_YAML_NEST_H
#define TRIB_YAML_NEST_H

#include <stddef.h>

#define YAML_NEST_MAX 64   /* '[' and '{' open at once; the 65th is refused */
/* ',' within one outermost flow collection: libfyaml holds every token of it until it closes,
 * ~0.5 KB each (1 MiB of "a, " held 260 MB for 1.1 s of CPU); the 50,001st is refused */
#define YAML_FLOW_ITEMS_MAX 50000

typedef struct {
    char c;          /* '[' or '{' */
    int line, col;   /* 1-based, columns in characters as libfyaml counts them */
} yaml_bracket_t;

typedef struct {
    int too_deep;          /* 1: the scan stopped at deep, the bracket that opened level 65 */
    yaml_bracket_t deep;
    int open;              /* brackets still open at the end of the text */
    yaml_bracket_t last;   /* the innermost of them, when open > 0 */
    int tab;               /* 1: the scan stopped at tab_at, a tab between a block indicator and */
    yaml_bracket_t tab_at; /* another ('?', ':', '|', '>', or "- "): c is that other one */
    int too_wide;          /* 1: the scan stopped at the comma past YAML_FLOW_ITEMS_MAX in the flow */
    yaml_bracket_t wide;   /* collection opened at wide (the outermost one) */
} yaml_nest_t;

/* Also stops at a tab between a block indicator ("- ", "? ", ": ") and a second one ('?', ':', '|',
 * '>' or "- ") outside flow collections: libfyaml refuses that tab ("cannot use tab for indentation
 * of block entry") and then, within an explicit key ("? a:\t|"), 0.7.12 crashes freeing its parser,
 * so such text never reaches it. Found where libfyaml would not refuse it ("a:\t|"), it is refused
 * too: it is a tab where YAML wants spaces, a space mends it. */
void yaml_nest_scan(const char *text, size_t len, yaml_nest_t *out);

#endif
