/* tests/test_readcheck.c - gossip/reads_relay.c's check of an owner's batch (reads__batch_check),
 * which both relay paths (the peer transport's and the data link's) run on every batch: the lines
 * of a batch must be whole and not empty, their seqs in range, the batch the next of its stream.
 * The reference below is the lines check as written in reads_relay.c (one memchr per record):
 * any faster rewrite of it must give exactly its verdicts, texts and counts.
 *
 * Covers: random batches (a fixed seed; lengths up to 20,000 bytes at any alignment; newlines
 * dense enough for empty lines), long batches of short lines with one empty line near the end,
 * the edges (empty lines first, last, between; no newline at the end; seqs out of range), and
 * the order checks after the lines (batch number, first seq).
 * Includes gossip/reads_int.h (internal to gossip/reads*.c) for reads__batch_check alone. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/reads_int.h"

/* The lines check of gossip/reads_relay.c (batch_lines), as written there. */
static const char *reference(const Trib__ReadBatch *b, uint64_t *count)
{
    *count = 0;
    if (b->n_records)
        return "records one by one (an older owner: both nodes must run this version)";
    if (b->lines.len == 0)
        return NULL;
    const uint8_t *p = b->lines.data, *end = p + b->lines.len;
    if (p < end && end[-1] != '\n')
        return "a record cut short (no newline at the end of its lines)";
    for (const uint8_t *nl; p < end; p = nl + 1, ++*count)
        if ((nl = memchr(p, '\n', (size_t)(end - p))) == p)
            return "an empty record";
    if (*count && (b->first_seq == 0 || *count > UINT64_MAX - b->first_seq))
        return "records with seqs out of range";
    return NULL;
}

/* reads__batch_check on b, against the reference: the same verdict, the same text, the count. */
static void same(const Trib__ReadBatch *b, const char *what)
{
    uint64_t want_n, got_n = 12345;
    const char *want = reference(b, &want_n);
    reads_err_t e = {0};
    const char *got = reads__batch_check(b, b->batch_no, b->first_seq, "owner X", &got_n, &e);
    if (!want) {
        cr_assert_null(got, "%s: refused (%s), the reference took it", what, got);
        cr_assert_eq(got_n, want_n, "%s: %llu records counted, the reference %llu", what,
                     (unsigned long long)got_n, (unsigned long long)want_n);
        return;
    }
    cr_assert_not_null(got, "%s: taken, the reference refused it (%s)", what, want);
    char text[ERR_MAX];
    snprintf(text, sizeof text, "owner X sent %s", want);
    cr_assert_str_eq(got, text, "%s", what);
    cr_assert_str_eq(e.kind, "owner_lost");
}

static Trib__ReadBatch batch_of(const void *lines, size_t len, uint64_t first_seq)
{
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.batch_no = 3;
    b.first_seq = first_seq;
    b.lines = (ProtobufCBinaryData){len, (uint8_t *)lines};
    return b;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;   /* xorshift64*: fixed seed, the same cases every run */
static uint64_t next(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1du;
}

Test(readcheck, random_batches_are_judged_as_one_memchr_per_record_judged_them)
{
    enum { CASES = 20000, MAX = 20000 };
    uint8_t *buf = malloc(MAX + 32);
    cr_assert_not_null(buf);
    int taken = 0, empty = 0;
    for (int c = 0; c < CASES; c++) {
        size_t len = next() % 8 == 0 ? next() % MAX : next() % 300;
        /* one newline in 2..200 bytes on average; sometimes runs of them */
        uint64_t every = 2 + next() % 200;
        for (size_t i = 0; i < len; i++)
            buf[i] = next() % every == 0 ? '\n' : (uint8_t)(next() % 256);
        if (len && next() % 4)
            buf[len - 1] = '\n';   /* mostly whole, so the lines are counted */
        size_t off = next() % 16;   /* any alignment */
        memmove(buf + off, buf, len);
        uint64_t first = next() % 16 == 0 ? UINT64_MAX - next() % 4096 : next() % 8 == 0 ? 0 : 1 + next() % 1000;
        Trib__ReadBatch b = batch_of(len ? buf + off : NULL, len, first);
        char what[64];
        snprintf(what, sizeof what, "case %d (%zu bytes)", c, len);
        same(&b, what);
        uint64_t n;
        const char *r = reference(&b, &n);
        taken += r == NULL;
        empty += r && strstr(r, "empty") != NULL;
    }
    cr_assert_gt(taken, CASES / 10, "too few batches taken (%d): the cases test little", taken);
    cr_assert_gt(empty, CASES / 10, "too few empty lines (%d): the cases test little", empty);
    free(buf);
}

/* Records of every length from 1 to 40 bytes, 64 KiB of each, then one empty line anywhere in the
 * last 4 KiB. */
Test(readcheck, long_batches_of_short_lines)
{
    enum { LEN = 64 * 1024 };
    uint8_t *buf = malloc(LEN);
    cr_assert_not_null(buf);
    for (size_t line = 2; line <= 41; line++) {   /* a line: line - 1 bytes and its newline */
        size_t len = LEN / line * line;
        for (size_t i = 0; i < len; i++)
            buf[i] = (i + 1) % line == 0 ? '\n' : 'a';
        Trib__ReadBatch b = batch_of(buf, len, 1);
        char what[64];
        snprintf(what, sizeof what, "lines of %zu bytes", line);
        same(&b, what);
        uint64_t n;
        cr_assert_null(reads__batch_check(&b, 3, 1, "owner X", &n, &(reads_err_t){0}));
        cr_assert_eq(n, len / line, "%s", what);
        size_t at = len - 1 - line * (next() % (4096 / line));   /* a newline: its line's first byte too */
        cr_assert_eq(buf[at], '\n');
        buf[at - line + 1] = '\n';
        same(&b, what);
        cr_assert_not_null(reads__batch_check(&b, 3, 1, "owner X", &n, &(reads_err_t){0}), "%s", what);
    }
    free(buf);
}

Test(readcheck, edges)
{
    static const struct {
        const char *lines;
        uint64_t first;
        const char *err;   /* NULL: taken */
        uint64_t n;
    } cases[] = {
        {"", 1, NULL, 0},
        {"\n", 1, "an empty record", 0},
        {"a\n\n", 1, "an empty record", 0},
        {"a\n\nb\n", 1, "an empty record", 0},
        {"\na\n", 1, "an empty record", 0},
        {"a", 1, "a record cut short", 0},
        {"a\nb", 1, "a record cut short", 0},
        {"a\n", 1, NULL, 1},
        {"a\nb\nc\n", 1, NULL, 3},
        {"a\nb\n", 0, "records with seqs out of range", 0},
        {"a\nb\n", UINT64_MAX - 1, "records with seqs out of range", 0},
        {"a\nb\n", UINT64_MAX - 2, NULL, 2},
        {"0123456789abcdef0123456789abcde\n0123456789abcdef0123456789abcde\n\n", 1, "an empty record", 0},
        {"0123456789abcdef0123456789abcde\n0123456789abcdef0123456789abcd\n", 1, NULL, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Trib__ReadBatch b = batch_of(cases[i].lines, strlen(cases[i].lines), cases[i].first);
        uint64_t n;
        reads_err_t e = {0};
        const char *got = reads__batch_check(&b, 3, b.first_seq, "owner X", &n, &e);
        same(&b, cases[i].lines);
        if (!cases[i].err) {
            cr_assert_null(got, "case %zu: %s", i, got);
            cr_assert_eq(n, cases[i].n, "case %zu", i);
        } else {
            cr_assert_not_null(got, "case %zu", i);
            cr_assert_not_null(strstr(got, cases[i].err), "case %zu: %s", i, got);
        }
    }
}

Test(readcheck, order_is_checked_after_the_lines)
{
    const char *lines = "a\nb\n";
    Trib__ReadBatch b = batch_of(lines, 4, 10);
    uint64_t n;
    reads_err_t e = {0};
    cr_assert_null(reads__batch_check(&b, 3, 10, "owner X", &n, &e));
    cr_assert_eq(n, 2);
    cr_assert_not_null(reads__batch_check(&b, 4, 10, "owner X", &n, &e));
    cr_assert(strstr(e.detail, "lost a batch"), "%s", e.detail);
    cr_assert_not_null(reads__batch_check(&b, 3, 11, "owner X", &n, &e));
    Trib__ReadBatch none = batch_of(NULL, 0, 99);
    cr_assert_null(reads__batch_check(&none, 3, 10, "owner X", &n, &e), "no records: any first seq");
    cr_assert_eq(n, 0);
}
