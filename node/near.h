/* node/near.h - is a word a likely typo of another: for "did you mean" hints (CLI options and
 * commands, manifest keys).
 *
 * Must not: allocate, or look at more than 31 characters of either word. */
#ifndef TRIB_NEAR_H
#define TRIB_NEAR_H

#include <stddef.h>

/* 1 when typed (len bytes) is a likely typo of name: at most one edit (insert, delete, change,
 * or swap of two neighbours) away, two for names of more than 4 characters; 0 otherwise, and
 * for words over 31 characters. */
int near_typo(const char *typed, size_t len, const char *name);

#endif
