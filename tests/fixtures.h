/* tests/fixtures.h - test helpers: the repository's sample files under examples/.
 * Must not: be linked into the library, or assert (callers check the result). */
#ifndef TRIB_FIXTURES_H
#define TRIB_FIXTURES_H

#include <stddef.h>

/* examples/<name> (found through h_repo_path) read whole, NUL-terminated, its length in *len
 * (may be NULL); malloc'd, or NULL when it cannot be read. */
char *fx_read_example(const char *name, size_t *len);

#endif
