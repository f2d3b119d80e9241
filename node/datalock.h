/* node/datalock.h - the data dir's lock: one live agent per data dir.
 *
 * Owns: DATA/agent.lock, flock()ed for the holder's life and holding its pid (text) so a second
 * agent can name it. The kernel drops the lock when the holder dies, so a lock file left by a
 * dead process is simply taken over; a holder that stops cleanly empties the file, so a pid
 * found in it by the next holder is that of an agent that did not (killed, crashed, power cut).
 * Must not: touch anything else in the data dir. */
#ifndef TRIB_DATALOCK_H
#define TRIB_DATALOCK_H

#include <stddef.h>

/* Takes DIR/agent.lock: its fd (keep it open to hold the lock), or -1 with err naming the
 * holder's pid when another live process holds it (or saying what failed). *prev_pid: the pid
 * a previous holder left in the file because it did not stop cleanly, else 0. */
int datalock_take(const char *dir, long *prev_pid, char *err, size_t errlen);
/* Releases the lock after emptying the file (a clean stop; accepts -1); sets *fd to -1. */
void datalock_release(int *fd);
/* For an offline command on DIR (trib key rotate --out): takes the same lock, non-blocking, without
 * writing the file (a pid a crashed agent left there stays for the agent's next start to report).
 * Returns its fd (close it when done: an agent started meanwhile is refused), or -1: with *holder
 * the running agent's pid (0: unknown) when one holds the lock, else *holder -1 and err saying
 * what failed. */
int datalock_hold(const char *dir, long *holder, char *err, size_t errlen);

#endif
