/* node/known.c - request names against the list a route takes (node/known.h). */
#include "node/known.h"

#include <string.h>

int known_name(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == nl && strncmp(p, name, nl) == 0)
            return 1;
        p += l;
        p += strspn(p, ", ");
    }
    return 0;
}

const char *known_stray_key(json_t *obj, const char *list)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        (void)v;
        if (!known_name(list, k))
            return k;
    }
    return NULL;
}
