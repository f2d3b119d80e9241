/* gossip/textfile.h - reading a small file whole, bounded: the one helper for --config, --policy,
 * manifests, trust objects, PEM files (the reading counterpart of durable.h).
 *
 * Its errors name the file and say what is wrong, in one wording everywhere:
 *   PATH: no such file
 *   PATH: cannot open: Permission denied        (any other open error, strerror's words)
 *   PATH: is a directory, not a file
 *   PATH: cannot read: Input/output error
 *   PATH: larger than 1 MiB (1048576 bytes), the limit for a --config file
 *   PATH: out of memory
 * Must not: print, or keep anything open. */
#ifndef TRIB_TEXTFILE_H
#define TRIB_TEXTFILE_H

#include <stddef.h>
#include <stdio.h>

/* The whole of path, at most max bytes, NUL-terminated (malloc'd; *len bytes, the NUL not counted).
 * what names the kind of file in the size refusal ("a --config file"). NULL with err otherwise. */
char *textfile_read(const char *path, const char *what, size_t max, size_t *len, char *err, size_t errlen);

/* The same from an open stream (stdin), named name in errors ("stdin"); f is left open. */
char *textfile_read_stream(FILE *f, const char *name, const char *what, size_t max, size_t *len, char *err,
                           size_t errlen);

#endif
