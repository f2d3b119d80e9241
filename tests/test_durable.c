/* tests/test_durable.c - the durable small-file write (gossip/durable.c): replace, exclusive
 * create, no temporary file left behind, errors naming the file.
 *
 * Owns: a temp dir under /tmp (removed). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/durable.h"

static char dir[64], path[128], err[300];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/trib-durable-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f", dir);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[400];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

static size_t entries(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n - 2;
}

static void expect_content(const char *want)
{
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cr_expect_str_eq(buf, want);
}

TestSuite(durable, .init = setup, .fini = teardown);

Test(durable, replace_and_exclusive_create)
{
    cr_assert_eq(durable_write(path, "one", 3, 0600, DURABLE_REPLACE, err, sizeof err), 0, "%s", err);
    expect_content("one");
    cr_assert_eq(durable_write(path, "two!", 4, 0600, DURABLE_REPLACE, err, sizeof err), 0, "%s", err);
    expect_content("two!");
    cr_expect_eq(durable_write(path, "three", 5, 0600, DURABLE_EXCL, err, sizeof err), 1, "an existing file replaced");
    expect_content("two!");
    cr_expect_eq(entries(), 1, "a temporary file left behind");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    unlink(path);
    cr_assert_eq(durable_write(path, "four", 4, 0600, DURABLE_EXCL, err, sizeof err), 0, "%s", err);
    expect_content("four");
    cr_expect_eq(entries(), 1, "a temporary file left behind");
}

Test(durable, errors_name_the_file)
{
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no-such-dir/f", dir);
    cr_expect_eq(durable_write(bad, "x", 1, 0600, DURABLE_REPLACE, err, sizeof err), -1);
    cr_expect(strstr(err, "no-such-dir") != NULL, "%s", err);
    cr_expect_eq(durable_sync_dir(bad, err, sizeof err), -1);
    cr_expect_eq(entries(), 0);
}
