/* node/yaml_nest.c - one linear pass over YAML text for the nesting of its flow collections
 * ('[' and '{'), before libfyaml reads it: where the 65th open one is, and which is left open at
 * the end. See node/yaml_nest.h for why.
 *
 * Owns: telling a bracket that opens a collection from one inside text. A bracket counts where a
 * node may start (after indentation, "- ", "? ", ": ", a property, or '[', '{', ',' in a flow
 * collection) and anywhere inside a flow collection outside quotes; never inside a quoted scalar,
 * a comment, a block scalar ('|', '>') or a plain scalar in block context.
 * Must not: judge whether the text is YAML (libfyaml does). */
#include "node/yaml_nest.h"

#include <string.h>

enum mode {
    M_NODE,     /* between tokens */
    M_PLAIN,    /* in a plain scalar */
    M_PROP,     /* in an anchor or a tag */
    M_SQ,       /* in a single-quoted scalar */
    M_DQ,       /* in a double-quoted scalar */
    M_COMMENT,  /* to the end of the line */
    M_BHEAD,    /* a block scalar's header line */
    M_BLOCK     /* a block scalar's content lines */
};

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c < 0;
}

static int is_flow_ind(int c)
{
    return c == ',' || c == '[' || c == ']' || c == '{' || c == '}';
}

/* The byte at i, or -1 past the end. */
static int at(const char *t, size_t len, size_t i)
{
    return i < len ? (unsigned char)t[i] : -1;
}

/* 1 when the line after the newline at i belongs to a block scalar whose parent is indented ind:
 * blank, or indented deeper. */
static int block_goes_on(const char *t, size_t len, size_t i, int ind)
{
    size_t k = i + 1;
    while (k < len && t[k] == ' ')
        k++;
    int c = at(t, len, k);
    return c < 0 || c == '\n' || c == '\r' || (int)(k - i - 1) > ind;
}

void yaml_nest_scan(const char *t, size_t len, yaml_nest_t *out)
{
    yaml_bracket_t stack[YAML_NEST_MAX];
    enum mode mode = M_NODE;
    int depth = 0, start = 1, bol = 1, indent = 0, blk_ind = 0, esc = 0, line = 1, col = 1;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)t[i], n = at(t, len, i + 1);
        int prev_ws = i == 0 || is_ws((unsigned char)t[i - 1]);
        if (bol && c != ' ' && c != '\n') {   /* the line's first character: its indentation */
            bol = 0;
            if (depth == 0 && mode == M_NODE)
                blk_ind = indent;
        }
        if (c == '\n') {
            if (mode == M_BHEAD || mode == M_BLOCK)
                mode = block_goes_on(t, len, i, blk_ind) ? M_BLOCK : M_NODE;
            else if (mode == M_COMMENT || mode == M_PROP || (mode == M_PLAIN && depth == 0))
                mode = M_NODE;
            if (depth == 0 && mode == M_NODE)
                start = 1;
            esc = 0;
        } else if (esc) {
            esc = 0;
        } else {
        again:
            switch (mode) {
            case M_SQ:
                if (c == '\'' && n == '\'')
                    esc = 1;   /* '' is a quote inside */
                else if (c == '\'')
                    mode = M_NODE, start = 0;
                break;
            case M_DQ:
                if (c == '\\')
                    esc = 1;
                else if (c == '"')
                    mode = M_NODE, start = 0;
                break;
            case M_COMMENT:
            case M_BHEAD:
            case M_BLOCK:
                break;
            case M_PROP:
                if (c == ' ' || c == '\t' || (depth > 0 && is_flow_ind(c))) {
                    mode = M_NODE;
                    goto again;
                }
                break;
            case M_PLAIN:
                if (c == '#' && prev_ws) {
                    mode = M_COMMENT, start = 0;
                } else if (c == ':' && (is_ws(n) || (depth > 0 && is_flow_ind(n)))) {
                    mode = M_NODE, start = 1;
                } else if (depth > 0 && is_flow_ind(c)) {
                    mode = M_NODE;
                    goto again;
                }
                break;
            case M_NODE:
                if (c == ' ' || c == '\t' || c == '\r')
                    break;
                if (depth == 0 && col == 1 && (c == '-' || c == '.') && i + 3 <= len && t[i + 1] == c &&
                    t[i + 2] == c && is_ws(at(t, len, i + 3))) {   /* "---" or "...": a node may follow */
                    start = 1;
                    i += 2, col += 2;
                    break;
                }
                if (c == '#' && prev_ws) {
                    mode = M_COMMENT;
                } else if (c == '[' || c == '{') {
                    if (depth == YAML_NEST_MAX) {
                        out->too_deep = 1;
                        out->deep = (yaml_bracket_t){(char)c, line, col};
                        return;
                    }
                    stack[depth++] = (yaml_bracket_t){(char)c, line, col};
                    start = 1;
                } else if ((c == ']' || c == '}') && depth > 0) {
                    depth--;
                    start = 0;
                } else if (c == ',' && depth > 0) {
                    start = 1;
                } else if (c == '\'' || c == '"') {
                    mode = c == '\'' ? M_SQ : M_DQ;
                    if (depth == 0)
                        blk_ind = col - 1;
                } else if (c == ':' && (depth > 0 || is_ws(n))) {
                    start = 1;
                } else if ((c == '-' || c == '?') && is_ws(n) && (start || depth > 0)) {
                    start = 1;
                    if (depth == 0)
                        blk_ind = col - 1;
                } else if ((c == '|' || c == '>') && start && depth == 0) {
                    mode = M_BHEAD;
                } else if ((c == '&' || c == '!') && start) {
                    mode = M_PROP;
                } else {
                    mode = M_PLAIN;
                    if (depth == 0 && start)
                        blk_ind = col - 1;
                    start = 0;
                }
                break;
            }
        }
        if (c == '\n') {
            line++, col = 1, bol = 1, indent = 0;
        } else {
            indent += bol && c == ' ';
            col += n < 0 || (n & 0xc0) != 0x80;   /* columns count characters, not bytes */
        }
    }
    out->open = depth;
    if (depth > 0)
        out->last = stack[depth - 1];
}
