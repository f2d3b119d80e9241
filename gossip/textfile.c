/* gossip/textfile.c - a small file read whole, bounded (textfile.h).
 *
 * Owns: the wording of the errors, and the bound: never more than max + 1 bytes are read or held,
 * whatever the file claims to be (a FIFO, a file growing meanwhile).
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

char *textfile_read(const char *path, const char *what, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "%s: no such file", path);
        else
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory, not a file", path);
        close(fd);
        return NULL;
    }
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
