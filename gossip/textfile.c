/* gossip/textfile.c - a small file read whole, bounded (textfile.h).
 *
 * Owns: the wording of the errors, and the bound: never more than max + 1 bytes are read or held,
 * whatever the file claims to be (a file growing meanwhile); a path that is not a regular file (a
 * FIFO, which could keep a reader waiting forever, a device, a socket) is refused, not read:
 * stdin ('-', textfile_read_stream) is the way to pipe a file in.
 * Must not: print, or keep anything open. */
#include "gossip/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "1 MiB (1048576 bytes)", "256 KiB (262144 bytes)", "100 bytes" */
static void size_words(size_t n, char *out, size_t cap)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(out, cap, "%zu MiB (%zu bytes)", n >> 20, n);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(out, cap, "%zu KiB (%zu bytes)", n >> 10, n);
    else
        snprintf(out, cap, "%zu bytes", n);
}

char *textfile_read_stream(FILE *f, const char *name, const char *what, size_t max, size_t *len, char *err,
                           size_t errlen)
{
    size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            snprintf(err, errlen, "%s: out of memory", name);
            return NULL;
        }
        if (n == cap) {
            if (cap > max)
                break;           /* max + 1 bytes held: too large */
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n < cap) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno ? errno : EIO));
                free(buf);
                return NULL;
            }
            if (feof(f))
                break;
        }
    }
    if (n > max) {
        char words[64];
        size_words(max, words, sizeof words);
        snprintf(err, errlen, "%s: larger than %s, the limit for %s", name, words, what);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* "a named pipe", "a socket", ...: what st is, for the refusal of a file that is not regular */
static const char *kind_words(mode_t m)
{
    return S_ISFIFO(m) ? "a named pipe" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : "not a file";
}

int textfile_open(const char *path, int streams_too, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO without a writer must not wait for one (refused just below);
     * a stream the caller takes is opened as it always was, waiting for its writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (streams_too ? 0 : O_NONBLOCK));
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "%s: no such file", path);
        else
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory, not a file", path);
        close(fd);
        return -1;
    }
    if (!streams_too && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file (%s)", path, kind_words(st.st_mode));
        close(fd);
        return -1;
    }
    if (!streams_too && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

char *textfile_read(const char *path, const char *what, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = textfile_open(path, 0, err, errlen);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    char *t = textfile_read_stream(f, path, what, max, len, err, errlen);
    fclose(f);
    return t;
}
