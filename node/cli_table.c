/* node/cli_table.c - aligned text tables for the CLI's human output.
 *
 * Owns: storing cleaned cell copies, measuring them in code points, and printing rows padded
 * to the widest cell of each column. Must not: interpret the cells. */
#include "node/cli_table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ELLIPSIS "\xE2\x80\xA6"   /* U+2026 */

struct cli_table {
    size_t ncols;
    int has_header;
    size_t max[CLI_TABLE_MAX_COLS];   /* 0 = no limit */
    char **cells;                     /* (rows + header) * ncols, row-major */
    size_t nrows;                     /* including the header row */
    size_t cap;
};

size_t cli_text_width(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

char *cli_text_clean(const char *s, size_t max)
{
    if (!s)
        s = "";
    size_t len = strlen(s);
    char *out = malloc(len + sizeof ELLIPSIS);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, chars = 0, total = cli_text_width(s);
    int cut = max > 0 && total > max;
    size_t keep = cut ? max - 1 : total;
    while (*p) {
        if ((*p & 0xC0) != 0x80) {          /* a character starts here */
            if (chars == keep)
                break;
            chars++;
        }
        if (*p < 0x20 || *p == 0x7F) {
            out[o++] = ' ';
            p++;
        } else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {   /* C1 control */
            out[o++] = ' ';
            p += 2;
        } else {
            out[o++] = (char)*p++;
        }
    }
    if (cut) {
        memcpy(out + o, ELLIPSIS, sizeof ELLIPSIS - 1);
        o += sizeof ELLIPSIS - 1;
    }
    out[o] = '\0';
    return out;
}

cli_table_t *cli_table_new(size_t ncols, const char *const *headers)
{
    if (ncols == 0 || ncols > CLI_TABLE_MAX_COLS)
        return NULL;
    cli_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (headers) {
        if (cli_table_add(t, headers) != 0) {
            cli_table_destroy(&t);
            return NULL;
        }
        t->has_header = 1;
    }
    return t;
}

void cli_table_destroy(cli_table_t **tp)
{
    if (!tp || !*tp)
        return;
    cli_table_t *t = *tp;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
    *tp = NULL;
}

void cli_table_set_max(cli_table_t *t, size_t col, size_t width)
{
    assert(col < t->ncols);
    t->max[col] = width;
}

int cli_table_add(cli_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof *nc);
        if (!nc)
            return -1;
        t->cells = nc;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        /* Limits are set after the header row went in, so headers are never cut. */
        row[c] = cli_text_clean(cells[c], t->max[c]);
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

size_t cli_table_rows(const cli_table_t *t)
{
    return t->nrows - (t->has_header ? 1 : 0);
}

int cli_table_print(const cli_table_t *t, FILE *f, const char *indent)
{
    size_t w[CLI_TABLE_MAX_COLS] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = cli_text_width(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    int bad = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        if (indent && fputs(indent, f) == EOF)
            bad = 1;
        /* The last non-empty column ends the line: no trailing spaces. */
        size_t last = t->ncols;
        while (last > 1 && t->cells[r * t->ncols + last - 1][0] == '\0')
            last--;
        for (size_t c = 0; c < last; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (fputs(cell, f) == EOF)
                bad = 1;
            if (c + 1 < last)
                fprintf(f, "%*s", (int)(w[c] - cli_text_width(cell) + CLI_TABLE_GAP), "");
        }
        if (fputc('\n', f) == EOF)
            bad = 1;
    }
    return bad ? -1 : 0;
}

void cli_time_text(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;
    if (ms <= 0 || !gmtime_r(&t, &tm) || (n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(out, 32, "-");
        return;
    }
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}
