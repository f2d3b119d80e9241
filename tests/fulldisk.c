/* tests/fulldisk.c - a small tmpfs filled up for a real agent (tests/fulldisk.h). */
#include "tests/fulldisk.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char mounted[300];   /* the tmpfs this process mounted, or "" */

int fulldisk_mount(const char *dir, const char *size)
{
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s", size);
    cr_assert_eq(mkdir(dir, 0700), 0, "%s: %s", dir, strerror(errno));
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        int e = errno;
        rmdir(dir);
        return e;
    }
    snprintf(mounted, sizeof mounted, "%s", dir);
    return 0;
}

void fulldisk_unmount(void)
{
    if (mounted[0]) {
        umount2(mounted, MNT_DETACH);
        rmdir(mounted);
        mounted[0] = '\0';
    }
}

long fulldisk_fill(const char *path)
{
    static char chunk[64 << 10];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    long total = 0;
    for (size_t want = sizeof chunk; want >= 512;) {
        ssize_t w = write(fd, chunk, want);
        if (w > 0)
            total += w;
        else if (w < 0 && errno != ENOSPC)
            cr_assert_fail("filling %s: %s", path, strerror(errno));
        else
            want /= 2;   /* the last pages, smaller and smaller */
    }
    close(fd);
    return total;
}
