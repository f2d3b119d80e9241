/* node/cli_table.h - aligned text tables for the CLI's human output.
 *
 * Owns: column widths measured in characters (UTF-8 code points, not bytes), truncation of
 * over-long cells with "…", and neutralising control characters in cells (text comes from
 * the network: a title must not move the cursor or change the terminal's colours).
 * Must not: know what the columns mean or talk to anything but the FILE it prints to. */
#ifndef TRIB_CLI_TABLE_H
#define TRIB_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define CLI_TABLE_MAX_COLS 16
#define CLI_TABLE_GAP      2   /* spaces between columns */

typedef struct cli_table cli_table_t;

/* headers: ncols strings, or NULL for a table without a header row. NULL on bad ncols/OOM. */
cli_table_t *cli_table_new(size_t ncols, const char *const *headers);
void cli_table_destroy(cli_table_t **tp);

/* Cells of column col longer than width characters are cut to width-1 and end in "…". */
void cli_table_set_max(cli_table_t *t, size_t col, size_t width);

/* Copies ncols cells (a NULL cell prints as ""). 0 or -1 (out of memory). */
int cli_table_add(cli_table_t *t, const char *const *cells);
size_t cli_table_rows(const cli_table_t *t);

/* Prints the header (if any) and rows, each line starting with indent (may be NULL); the
 * last column is not padded, so no line ends in spaces. 0 or -1 (write error). */
int cli_table_print(const cli_table_t *t, FILE *f, const char *indent);

/* Characters (code points) in the UTF-8 string s. */
size_t cli_text_width(const char *s);

/* A malloc'd copy of s with control characters (C0, DEL, C1) replaced by spaces, cut to
 * max characters with a final "…" when longer (max 0 = no limit). NULL on OOM. */
char *cli_text_clean(const char *s, size_t max);

/* ms since the epoch as the API writes times: RFC 3339 UTC to the millisecond
 * ("2026-12-07T05:26:49.106Z"); "-" for ms <= 0. Every CLI table and block shows times so. */
void cli_time_text(long long ms, char out[32]);

#endif
