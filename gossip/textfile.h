/* gossip/textfile.h - reading a small file whole, bounded: the one helper for --config, --policy,
 * manifests, trust objects, PEM files (the reading counterpart of durable.h).
 *
 * Its errors name the file and say what is wrong, in one wording everywhere:
 *   PATH: no such file
 *   PATH: cannot open: Permission denied        (any other open error, strerror's words)
 *   PATH: is a directory, not a file
 *   PATH: not a regular file (a named pipe)      (a socket, a character device...)
 *   PATH: cannot read: Input/output error
 *   PATH: larger than 1 MiB (1048576 bytes), the limit for a --config file
 *   PATH: out of memory
 * Must not: print, or keep anything open (textfile_open's fd is its caller's). */
#ifndef TRIB_TEXTFILE_H
#define TRIB_TEXTFILE_H

#include <stddef.h>
#include <stdio.h>

/* The whole of path, at most max bytes, NUL-terminated (malloc'd; *len bytes, the NUL not counted).
 * what names the kind of file in the size refusal ("a --config file"). NULL with err otherwise. */
char *textfile_read(const char *path, const char *what, size_t max, size_t *len, char *err, size_t errlen);

/* path opened for reading (O_CLOEXEC), with the errors above: a directory is refused, and unless
 * streams_too anything but a regular file (opened without waiting: a FIFO with no writer does not
 * block). streams_too: for a reader that streams what it reads (trib put), a FIFO or a device is
 * taken, and opening it waits for its writer as open(2) does. The fd, or -1 with err. */
int textfile_open(const char *path, int streams_too, char *err, size_t errlen);

/* The same from an open stream (stdin), named name in errors ("stdin"); f is left open. */
char *textfile_read_stream(FILE *f, const char *name, const char *what, size_t max, size_t *len, char *err,
                           size_t errlen);

#endif
