/* gossip/durable.h - writing a small file durably: the one helper for key files, certificates,
 * policy sets (write a temporary file, fsync it, rename or link it into place, fsync the dir).
 *
 * A reader (or a restart after a crash) sees the old file or the whole new one, never a part.
 * Must not: print, or keep anything open. */
#ifndef TRIB_DURABLE_H
#define TRIB_DURABLE_H

#include <stddef.h>

enum {
    DURABLE_REPLACE = 0,    /* renamed over path (an old file is replaced) */
    DURABLE_EXCL = 1,       /* linked to path: never replaces one (1 is returned when it exists) */
};

/* Writes len bytes to path with permission bits mode (a temporary file in path's directory,
 * written, fsynced, renamed or linked into place, then the directory fsynced). 0, 1 (DURABLE_EXCL
 * and path exists: nothing written), or -1 with err (the temporary file removed). */
int durable_write(const char *path, const void *bytes, size_t len, int mode, int how, char *err, size_t errlen);
/* fsyncs the directory dir (after a rename, link or unlink in it). 0 or -1 with err. */
int durable_sync_dir(const char *dir, char *err, size_t errlen);

#endif
