/* node/cli_opts.c - option tables of the trib subcommands outside node/cli.c (node/cli_opts.h). */
#include "node/cli_opts.h"

#include <assert.h>
#include <stdarg.h>
#include <string.h>

#include "node/near.h"

static int index_of(const opts_row_t *rows, const char *name, size_t nlen)
{
    for (int k = 0; k < OPTS_MAX && rows[k].name; k++)
        if (strlen(rows[k].name) == nlen && strncmp(rows[k].name, name, nlen) == 0)
            return k;
    return -1;
}

static int refuse(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

int opts_parse(opts_t *o, const opts_row_t *rows, size_t max_pos, int argc, char **argv, char *msg, size_t msglen)
{
    assert(max_pos <= OPTS_POS);
    memset(o, 0, sizeof *o);
    o->rows = rows;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {   /* "-" is stdin: positional */
            if (o->npos == max_pos)
                return refuse(msg, msglen, "unexpected argument '%s'", a);
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (a[1] != '-')
            return refuse(msg, msglen, "unknown option '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int k = index_of(rows, name, nlen);
        if (k < 0) {
            int near = -1;
            for (int j = 0; j < OPTS_MAX && rows[j].name && near < 0; j++)
                if (near_typo(name, nlen, rows[j].name))
                    near = j;
            return near < 0 ? refuse(msg, msglen, "unknown option '--%.*s'", (int)nlen, name)
                            : refuse(msg, msglen, "unknown option '--%.*s' (did you mean --%s?)", (int)nlen, name,
                                     rows[near].name);
        }
        const opts_row_t *r = &rows[k];
        const char *value = eq ? eq + 1 : NULL;
        if (!r->arg) {
            if (value)
                return refuse(msg, msglen, "option '--%s' takes no value", r->name);
            value = "1";
        } else if (!value) {
            if (i + 1 >= argc)
                return refuse(msg, msglen, "option '--%s' needs a value (%s)", r->name, r->arg);
            value = argv[++i];
        }
        if (o->nval[k] > 0 && !r->repeat)
            return refuse(msg, msglen, "option '--%s' given twice", r->name);
        if (o->nval[k] == OPTS_VALS)
            return refuse(msg, msglen, "option '--%s' given more than %d times", r->name, OPTS_VALS);
        o->val[k][o->nval[k]++] = value;
    }
    return 0;
}

const char *const *opts_all(const opts_t *o, const char *name, size_t *n)
{
    int k = index_of(o->rows, name, strlen(name));
    *n = k >= 0 ? o->nval[k] : 0;
    return *n ? o->val[k] : NULL;
}

const char *opts_get(const opts_t *o, const char *name)
{
    size_t n;
    const char *const *v = opts_all(o, name, &n);
    return v ? v[0] : NULL;
}

void opts_help(const opts_row_t *rows, int width, FILE *f)
{
    for (const opts_row_t *r = rows; r->name; r++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
        fprintf(f, "  %-*s %s\n", width, left, r->help);
    }
}
