/* node/yaml_nest.c - one linear pass over YAML text for the nesting of its flow collections
 * ('[' and '{'), before libfyaml reads it: where the 65th open one is, which one holds more than
 * YAML_FLOW_ITEMS_MAX items (commas), and which is left open at the end. See node/yaml_nest.h for
 * why.
 *
 * Owns: telling a bracket that opens a collection from one inside text. A bracket counts where a
 * node may start (after indentation, "- ", "? ", ": ", a property, or '[', '{', ',' in a flow
 * collection) and anywhere inside a flow collection outside quotes; never inside a quoted scalar,
 * a comment, a block scalar ('|', '>') or a plain scalar in block context. A line indented deeper
 * than the node a block plain scalar belongs to goes on with that scalar, whatever it starts with
 * ("a: x\n  'y" is the text "x 'y": its quote opens nothing, and brackets after it still count).
 * Must not: judge whether the text is YAML (libfyaml does). */
#include "node/yaml_nest.h"

#include <string.h>

enum mode {
    M_NODE,     /* between tokens */
    M_PLAIN,    /* in a plain scalar */
    M_PROP,     /* in an anchor, a tag or an alias */
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

/* 1 when a document marker ("---" or "...", then a blank or the end) starts at i, column col. */
static int doc_marker(const char *t, size_t len, size_t i, int col)
{
    int c = at(t, len, i);
    return col == 1 && (c == '-' || c == '.') && i + 3 <= len && t[i + 1] == c && t[i + 2] == c &&
           is_ws(at(t, len, i + 3));
}

/* 1 when the last character before i that is not a blank ends a quoted scalar or a flow
 * collection (after which ':' is a value indicator even with no space after it, as in JSON). */
static int after_json(const char *t, size_t i)
{
    while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t'))
        i--;
    return i > 0 && (t[i - 1] == '"' || t[i - 1] == '\'' || t[i - 1] == ']' || t[i - 1] == '}');
}

/* After the block indicator at i (line, col): 1 when blanks holding a tab lead to a second
 * indicator, which *at gets (the tab's place). */
static int tab_then_indicator(const char *t, size_t len, size_t i, int line, int col, yaml_bracket_t *at_)
{
    size_t k = i + 1;
    int tcol = 0;
    for (; k < len && (t[k] == ' ' || t[k] == '\t'); k++)
        if (t[k] == '\t' && !tcol)
            tcol = col + (int)(k - i);
    int c = at(t, len, k);
    if (!tcol || !(c == '?' || c == ':' || c == '|' || c == '>' || (c == '-' && is_ws(at(t, len, k + 1)))))
        return 0;
    *at_ = (yaml_bracket_t){(char)c, line, tcol};
    return 1;
}

void yaml_nest_scan(const char *t, size_t len, yaml_nest_t *out)
{
    yaml_bracket_t stack[YAML_NEST_MAX];
    enum mode mode = M_NODE;
    int depth = 0, start = 1, bol = 1, indent = 0, blk_ind = 0, esc = 0, line = 1, col = 1;
    /* par: the column of the block node a scalar starting now belongs to (its '-' or '?', or its
     * mapping's key; -1 at the top); lead: in the line's leading blanks; cont: the last line that was
     * not blank ended in a block plain scalar of a node at column cont_par */
    int par = -1, lead = 1, cont = 0, cont_par = -1, verbatim = 0;
    size_t prop_at = 0;   /* where the property being read began */
    size_t items = 0;     /* commas in the outermost flow collection open */
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)t[i], n = at(t, len, i + 1);
        int prev_ws = i == 0 || is_ws((unsigned char)t[i - 1]);
        if (bol && c != ' ' && c != '\n') {   /* the line's first character: its indentation */
            bol = 0;
            if (depth == 0 && mode == M_NODE)
                blk_ind = indent;
        }
        if (lead && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            lead = 0;
            if (cont && mode == M_NODE && depth == 0 && c != '#' && col - 1 > cont_par && !doc_marker(t, len, i, col))
                mode = M_PLAIN, start = 0;   /* the scalar goes on: this line is its text */
            cont = 0;
        }
        if (c == '\n') {
            if (!lead)
                cont = mode == M_PLAIN && depth == 0, cont_par = par;
            verbatim = 0;
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
            case M_PROP:   /* an anchor's or a tag's name ends at a flow indicator in block context too */
                if (c == '<' && i == prop_at + 1 && t[prop_at] == '!')
                    verbatim = 1;   /* "!<...>": a URI, which may hold '[' and ']' */
                else if (verbatim && c == '>')
                    verbatim = 0;
                if (c == ' ' || c == '\t' || (!verbatim && is_flow_ind(c))) {
                    verbatim = 0;
                    mode = M_NODE;
                    goto again;
                }
                break;
            case M_PLAIN:
                if (c == '#' && prev_ws) {
                    mode = M_COMMENT, start = 0;
                } else if (c == ':' && (is_ws(n) || (depth > 0 && is_flow_ind(n)))) {
                    mode = M_NODE, start = 1;
                    if (depth == 0)
                        par = blk_ind;   /* its value belongs to the mapping at the key's column */
                    if (depth == 0 && (out->tab = tab_then_indicator(t, len, i, line, col, &out->tab_at)))
                        return;
                } else if (depth > 0 && is_flow_ind(c)) {
                    mode = M_NODE;
                    goto again;
                }
                break;
            case M_NODE:
                if (c == ' ' || c == '\t' || c == '\r')
                    break;
                if (depth == 0 && doc_marker(t, len, i, col)) {   /* "---" or "...": a node may follow */
                    start = 1, par = -1;
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
                    if (depth == 0)
                        items = 0;
                    stack[depth++] = (yaml_bracket_t){(char)c, line, col};
                    start = 1;
                } else if ((c == ']' || c == '}') && depth > 0) {
                    depth--;
                    start = 0;
                } else if (c == ',' && depth > 0) {
                    start = 1;
                    if (++items > YAML_FLOW_ITEMS_MAX) {
                        out->too_wide = 1;
                        out->wide = stack[0];
                        return;
                    }
                } else if (c == '\'' || c == '"') {
                    mode = c == '\'' ? M_SQ : M_DQ;
                    if (depth == 0)
                        blk_ind = col - 1;
                } else if (c == ':' && depth > 0 && !is_ws(n) && !is_flow_ind(n) && !after_json(t, i)) {
                    mode = M_PLAIN, start = 0;   /* ":x" in a flow collection: a plain scalar */
                } else if (c == ':' && (depth > 0 || is_ws(n))) {
                    start = 1;
                    if (depth == 0)
                        par = blk_ind;
                    if (depth == 0 && (out->tab = tab_then_indicator(t, len, i, line, col, &out->tab_at)))
                        return;
                } else if ((c == '-' || c == '?') && is_ws(n) && (start || depth > 0)) {
                    start = 1;
                    if (depth == 0)
                        blk_ind = par = col - 1;
                    if (depth == 0 && (out->tab = tab_then_indicator(t, len, i, line, col, &out->tab_at)))
                        return;
                } else if ((c == '|' || c == '>') && start && depth == 0) {
                    mode = M_BHEAD;
                } else if ((c == '&' || c == '!' || c == '*') && start) {   /* a property, or an alias */
                    mode = M_PROP, prop_at = i;
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
            line++, col = 1, bol = 1, lead = 1, indent = 0;
        } else {
            indent += bol && c == ' ';
            col += n < 0 || (n & 0xc0) != 0x80;   /* columns count characters, not bytes */
        }
    }
    out->open = depth;
    if (depth > 0)
        out->last = stack[depth - 1];
}
