/* tests/fixtures.c - test helpers: the repository's sample files under examples/.
 * Owns: finding and reading them (through the harness's path and file helpers).
 * Must not: be linked into the library, or assert (callers check the result). */
#include "tests/fixtures.h"

#include <stdio.h>
#include "tests/harness.h"

char *fx_read_example(const char *name, size_t *len)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "examples/%s", name);
    return h_read_file(h_repo_path(rel, path, sizeof path), len);
}
