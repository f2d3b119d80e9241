/* tests/fulldisk.h - a full disk for a real agent: a small tmpfs this test process mounts (root
 * only: a test skips, saying why, where mounting is not permitted), fills once the agent runs,
 * and unmounts in its teardown. One mount at a time per process. */
#ifndef TRIB_TESTS_FULLDISK_H
#define TRIB_TESTS_FULLDISK_H

/* Creates dir and mounts a tmpfs of size (mount(8)'s size=, e.g. "4m") on it: 0, or the errno of
 * the mount (dir removed again). */
int fulldisk_mount(const char *dir, const char *size);
/* Unmounts and removes what fulldisk_mount mounted; nothing when nothing is mounted. */
void fulldisk_unmount(void);
/* Writes path until its filesystem refuses (ENOSPC), in smaller and smaller writes for the last
 * pages: the bytes written. */
long fulldisk_fill(const char *path);

#endif
