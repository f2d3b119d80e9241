/* gossip/prom.c - Prometheus text exposition lines (see gossip/prom.h). */
#include "gossip/prom.h"

#include <inttypes.h>

void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_sample(FILE *f, const char *name, const char *labels, uint64_t v)
{
    if (labels && *labels)
        fprintf(f, "%s{%s} %" PRIu64 "\n", name, labels, v);
    else
        fprintf(f, "%s %" PRIu64 "\n", name, v);
}

void prom_counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    prom_family(f, name, "counter", help);
    prom_sample(f, name, NULL, v);
}

void prom_gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
    prom_family(f, name, "gauge", help);
    prom_sample(f, name, NULL, v);
}
