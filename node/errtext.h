/* node/errtext.h - error messages that quote untrusted input and end up in JSON error bodies.
 *
 * Owns: formatting such a message into a caller's buffer, and making it valid UTF-8 (jansson
 * refuses anything else), once for node/manifest.c and node/records*.c. Must not: shorten or
 * reword the message. */
#ifndef TRIB_ERRTEXT_H
#define TRIB_ERRTEXT_H

#include <stddef.h>

/* Leaves err as it is when it is valid UTF-8, else replaces every non-ASCII byte with '?'. */
void errtext_utf8(char *err);

/* Formats the message into err (errlen bytes) and returns -1, for `return errtext_set(...)`. */
__attribute__((format(printf, 3, 4)))
int errtext_set(char *err, size_t errlen, const char *fmt, ...);

#endif
