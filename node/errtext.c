/* node/errtext.c - error messages made safe for JSON bodies (see node/errtext.h). */
#include "node/errtext.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

int errtext_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void errtext_utf8(char *err)
{
    json_t *probe = json_string(err);   /* NULL when err is not valid UTF-8 */
    if (probe != NULL) {
        json_decref(probe);
        return;
    }
    for (char *p = err; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
}
