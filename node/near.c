/* node/near.c - likely typos (node/near.h): the optimal string alignment distance. */
#include "node/near.h"

#include <string.h>

int near_typo(const char *typed, size_t len, const char *name)
{
    return near_typo_within(typed, len, name, strlen(name) > 4 ? 2 : 1);
}

int near_typo_within(const char *typed, size_t len, const char *name, size_t max)
{
    /* optimal string alignment distance, rows of at most 32 characters */
    size_t m = strlen(name);
    if (len > 31 || m > 31 || (len > m ? len - m : m - len) > max)
        return 0;
    unsigned d[33][33];
    for (size_t i = 0; i <= len; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= len; i++)
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = typed[i - 1] != name[j - 1], v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && typed[i - 1] == name[j - 2] && typed[i - 2] == name[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[len][m] <= max;
}
