/* node/datalock.c - see datalock.h. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "node/datalock.h"

/* "user NAME (uid N)", or "uid N" when it has no name. */
static const char *user_name(uid_t uid, char *buf, size_t cap)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(buf, cap, "user %s (uid %u)", res->pw_name, (unsigned)uid);
    else
        snprintf(buf, cap, "uid %u", (unsigned)uid);
    return buf;
}

/* Locks fd (path) without waiting: 0. Else closes fd and returns -1 with err said: held by a
 * running agent (*holder its pid from the file, 0 when unreadable; held_words follows "data dir
 * DIR is in use by"), or the lock failed (*holder -1). */
static int lock_nb(int fd, const char *dir, const char *path, const char *held_words, long *holder, char *err,
                   size_t errlen)
{
    *holder = -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int e = errno;
    char pid[32] = "";
    ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
    close(fd);
    if (e != EWOULDBLOCK) {
        snprintf(err, errlen, "cannot lock the data dir (%s): %s", path, strerror(e));
        return -1;
    }
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    *holder = strtol(pid, NULL, 10) > 0 ? strtol(pid, NULL, 10) : 0;
    snprintf(err, errlen, "data dir %s is in use by %s (pid %s, holding %s)%s", dir, held_words,
             *holder ? pid : "unknown", path,
             !strcmp(held_words, "another agent") ? "; stop it first, or use another --data dir" : "");
    return -1;
}

int datalock_take(const char *dir, long *prev_pid, char *err, size_t errlen)
{
    *prev_pid = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/agent.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        struct stat sb;
        if ((e == EACCES || e == EPERM) && stat(dir, &sb) == 0 && sb.st_uid != geteuid())
            snprintf(err, errlen, "cannot open the data dir lock %s: %s: the data dir %s belongs to %s, this agent "
                     "runs as %s: run the agent as that user, or give it the dir (chown -R)", path, strerror(e),
                     dir, user_name(sb.st_uid, (char[64]){0}, 64), user_name(geteuid(), (char[64]){0}, 64));
        else if (e == ENOTDIR)
            snprintf(err, errlen, "the data dir %s is not a directory (a file of that name, or a file in its path, is "
                     "in the way): give --data a directory, or a path where one can be made", dir);
        else if (e == EROFS)
            snprintf(err, errlen, "cannot open the data dir lock %s: %s: the data dir must be writable (the store, "
                     "the lock and key rotation write there)", path, strerror(e));
        else
            snprintf(err, errlen, "cannot open the data dir lock %s: %s", path, strerror(e));
        return -1;
    }
    long holder;
    if (lock_nb(fd, dir, path, "another agent", &holder, err, errlen) != 0)
        return -1;
    char line[32];
    ssize_t got = pread(fd, line, sizeof line - 1, 0);
    if (got > 0) {
        line[got] = '\0';
        *prev_pid = strtol(line, NULL, 10) > 0 ? strtol(line, NULL, 10) : 0;
    }
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        snprintf(err, errlen, "cannot write the data dir lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int datalock_hold(const char *dir, long *holder, char *err, size_t errlen)
{
    *holder = -1;
    char path[600];
    snprintf(path, sizeof path, "%s/agent.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the data dir lock %s: %s", path, strerror(errno));
        return -1;
    }
    return lock_nb(fd, dir, path, "a running agent", holder, err, errlen) == 0 ? fd : -1;
}

void datalock_release(int *fd)
{
    if (*fd >= 0) {
        int rc = ftruncate(*fd, 0); /* failing, the next holder reports an unclean stop: harmless */
        (void)rc;
        close(*fd); /* the file stays: removing it would race a starting agent's open */
        *fd = -1;
    }
}
