/* tests/test_textfile.c - gossip/textfile: a small file read whole, bounded, and the one wording of
 * its refusals (missing, cannot open, a directory, cannot read, larger than the limit), from a path
 * and from a stream (a pipe). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gossip/textfile.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/trib-textfile-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(textfile, .init = setup, .fini = teardown);

/* dir/name holding n bytes of 'x'; the path in out. */
static void file_of(const char *name, size_t n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    cr_assert(f);
    for (size_t i = 0; i < n; i++)
        fputc('x', f);
    fclose(f);
}

Test(textfile, reads_up_to_the_limit_and_refuses_a_byte_more_naming_the_file_and_limit)
{
    static const struct {
        size_t size, max;
        const char *want;   /* NULL: read whole; else the error, after "PATH" */
    } cases[] = {
        {0, 16, NULL},
        {16, 16, NULL},
        {17, 16, ": larger than 16 bytes, the limit for a test file"},
        {1024, 1024, NULL},
        {1025, 1024, ": larger than 1 KiB (1024 bytes), the limit for a test file"},
        {(1u << 20), (1u << 20), NULL},
        {(1u << 20) + 1, (1u << 20), ": larger than 1 MiB (1048576 bytes), the limit for a test file"},
        {200000, 3u << 17, NULL},   /* grows past its first buffer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128], err[256] = "", want[300];
        file_of("f", cases[i].size, path, sizeof path);
        size_t len = 12345;
        char *t = textfile_read(path, "a test file", cases[i].max, &len, err, sizeof err);
        if (!cases[i].want) {
            cr_assert(t, "case %zu: %s", i, err);
            cr_expect_eq(len, cases[i].size, "case %zu", i);
            cr_expect_eq(t[len], '\0');
            cr_expect(len == 0 || (t[0] == 'x' && t[len - 1] == 'x'));
            free(t);
            continue;
        }
        cr_expect_null(t, "case %zu", i);
        snprintf(want, sizeof want, "%s%s", path, cases[i].want);
        cr_expect_str_eq(err, want, "case %zu", i);
    }
}

Test(textfile, a_missing_file_a_directory_and_an_unopenable_one_are_told_apart)
{
    char missing[128], file[128], under[160], err[256], want[300];
    size_t len;
    snprintf(missing, sizeof missing, "%s/none.yaml", dir);
    cr_expect_null(textfile_read(missing, "a test file", 100, &len, err, sizeof err));
    snprintf(want, sizeof want, "%s: no such file", missing);
    cr_expect_str_eq(err, want);

    cr_expect_null(textfile_read(dir, "a test file", 100, &len, err, sizeof err));
    snprintf(want, sizeof want, "%s: is a directory, not a file", dir);
    cr_expect_str_eq(err, want);

    file_of("plain", 3, file, sizeof file);   /* a path through a file: ENOTDIR, strerror's words */
    snprintf(under, sizeof under, "%s/x", file);
    cr_expect_null(textfile_read(under, "a test file", 100, &len, err, sizeof err));
    snprintf(want, sizeof want, "%s: cannot open: Not a directory", under);
    cr_expect_str_eq(err, want);
}

/* A path that is not a regular file is refused, not read: a FIFO with no writer kept the reader (the
 * CLI, the agent at start) waiting in open(2) forever, and one with a writer fed it whatever came.
 * Piping a file in is '-' (stdin, textfile_read_stream). The timeout catches the old hang. */
Test(textfile, a_fifo_or_a_device_is_refused_at_once_naming_what_it_is, .timeout = 10)
{
    char fifo[128], err[256], want[300];
    size_t len;
    snprintf(fifo, sizeof fifo, "%s/charter.yaml", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_expect_null(textfile_read(fifo, "a test file", 100, &len, err, sizeof err));
    snprintf(want, sizeof want, "%s: not a regular file (a named pipe)", fifo);
    cr_expect_str_eq(err, want);
    cr_expect_null(textfile_read("/dev/null", "a test file", 100, &len, err, sizeof err));
    cr_expect_str_eq(err, "/dev/null: not a regular file (a character device)");
    /* a reader that streams (trib put) takes a FIFO, and waits for its writer as open(2) does */
    int w = open(fifo, O_RDWR);   /* a writer already there: the open below does not wait */
    cr_assert_geq(w, 0);
    int fd = textfile_open(fifo, 1, err, sizeof err);
    cr_expect_geq(fd, 0, "%s", err);
    close(fd);
    close(w);
    cr_expect_lt(textfile_open("/tmp", 1, err, sizeof err), 0);
    cr_expect_str_eq(err, "/tmp: is a directory, not a file");
}

Test(textfile, a_file_that_opens_but_cannot_be_read_says_so)
{
    /* opens, and reading at offset 0 fails (EIO): root reads every mode, so no chmod here */
    char err[256];
    size_t len;
    cr_expect_null(textfile_read("/proc/self/mem", "a test file", 100, &len, err, sizeof err));
    cr_expect_str_eq(err, "/proc/self/mem: cannot read: Input/output error");
}

Test(textfile, a_stream_is_bounded_alike_and_named_as_told)
{
    for (int over = 0; over < 2; over++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        size_t n = 5000 + (size_t)over;
        char *b = malloc(n);
        memset(b, 'y', n);
        cr_assert_eq(write(fds[1], b, n), (ssize_t)n);   /* fits the pipe's buffer */
        close(fds[1]);
        free(b);
        FILE *f = fdopen(fds[0], "r");
        char err[256] = "";
        size_t len = 0;
        char *t = textfile_read_stream(f, "stdin", "a manifest", 5000, &len, err, sizeof err);
        fclose(f);
        if (over) {
            cr_expect_null(t);
            cr_expect_str_eq(err, "stdin: larger than 5000 bytes, the limit for a manifest");
        } else {
            cr_assert(t, "%s", err);
            cr_expect_eq(len, 5000);
            free(t);
        }
    }
}
