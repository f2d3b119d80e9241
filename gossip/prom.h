/* gossip/prom.h - the Prometheus text exposition format (0.0.4), written one way for node/ and
 * gossip/: a family's # HELP and # TYPE lines, then its samples.
 *
 * Owns: the line shapes. Must not: know any metric, hold state, or allocate. Names and label
 * values are the callers' constants (nothing from the network goes into them). */
#ifndef TRIB_PROM_H
#define TRIB_PROM_H

#include <stdint.h>
#include <stdio.h>

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
void prom_family(FILE *f, const char *name, const char *type, const char *help);

/* One sample, "name{labels} v" (labels like `dir="in",type="x"`; NULL or "" for none). */
void prom_sample(FILE *f, const char *name, const char *labels, uint64_t v);

/* A family of one unlabelled sample. */
void prom_counter(FILE *f, const char *name, const char *help, uint64_t v);
void prom_gauge(FILE *f, const char *name, const char *help, uint64_t v);

#endif
