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
/* The same with at most max edits whatever the names' lengths (max 1: a closer likeness, where a
 * word two edits away may well be meant). */
int near_typo_within(const char *typed, size_t len, const char *name, size_t max);

#endif
