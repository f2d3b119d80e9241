/* gossip/memtrim.h - buffers freed by data links go back to the system (see memtrim.c). */
#ifndef TRIB_MEMTRIM_H
#define TRIB_MEMTRIM_H

#include <stddef.h>

/* Counts bytes of large buffers just freed (a link's frames, a read's page). */
void memtrim_freed(size_t bytes);

/* Gives freed memory back (malloc_trim) once a MiB was freed since the last time, at most once a
 * second; at once with burst_end (the caller saw a burst of work that freed much end: the frees
 * of its last moments, some not counted here, are not left until the next trim). Takes every malloc arena's lock in turn: call it where a pause of a millisecond does not
 * matter (not on a link's thread between frames, never on the gossip loop). */
void memtrim_maybe(int burst_end);

#endif
