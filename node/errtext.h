/* node/errtext.h - error messages that quote untrusted input and end up in JSON error bodies.
 *
 * Owns: making such a message valid UTF-8 (jansson refuses anything else), once for
 * node/manifest.c and node/records*.c. Must not: shorten or reword the message. */
#ifndef TRIB_ERRTEXT_H
#define TRIB_ERRTEXT_H

/* Leaves err as it is when it is valid UTF-8, else replaces every non-ASCII byte with '?'. */
void errtext_utf8(char *err);

#endif
