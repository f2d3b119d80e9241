/* gossip/durable.c - writing a small file durably (see gossip/durable.h). */
#include "gossip/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int durable_sync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: open: %s", dir, strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    if (rc != 0)
        snprintf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return rc == 0 ? 0 : -1;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int durable_write(const char *path, const void *bytes, size_t len, int mode, int how, char *err, size_t errlen)
{
    static atomic_uint seq;
    char tmp[PATH_MAX], dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1));
    size_t dlen = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n < 0 || (size_t)n >= sizeof tmp || dlen >= sizeof dir) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    memcpy(dir, slash ? path : ".", dlen);
    dir[dlen] = '\0';
    if (how == DURABLE_EXCL && access(path, F_OK) == 0)
        return 1;
    int fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: create: %s", tmp, strerror(errno));
        return -1;
    }
    const char *what = write_all(fd, bytes, len) != 0 ? "write" : fsync(fd) != 0 ? "fsync" : NULL;
    if (close(fd) != 0 && !what)
        what = "close";
    int exists = 0;
    if (!what && how == DURABLE_EXCL && link(tmp, path) != 0) {
        exists = errno == EEXIST;   /* another writer was first: theirs stays */
        what = exists ? NULL : "link";
    } else if (!what && how != DURABLE_EXCL && rename(tmp, path) != 0) {
        what = "rename";
    }
    if (what)
        snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
    if (what || how == DURABLE_EXCL)
        unlink(tmp);            /* a failure's leftover, or the name the link made redundant */
    if (what)
        return -1;
    return exists ? 1 : durable_sync_dir(dir, err, errlen);
}
