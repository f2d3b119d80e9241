/* node/portcheck.h - whether the ports `trib agent` is told to listen on are free, tried before
 * the agent creates anything (the data dir, identity.key, admin.token).
 *
 * Owns: a trial bind and listen of --http, --listen and a fixed --link-listen, with SO_REUSEADDR
 * as their real listeners (a port whose old connections linger in TIME_WAIT is free), each held
 * until all are tried (two options naming one port are caught too), then closed.
 * Must not: keep a socket (the listeners bind later, and a port taken in between fails there as
 * before), or refuse an address it cannot try (a name getaddrinfo does not know: the listener
 * says what is wrong with it). */
#ifndef TRIB_PORTCHECK_H
#define TRIB_PORTCHECK_H

#include <stddef.h>
#include "node/config.h"

/* 0 when every fixed port of c can be bound now, or -1 with err naming the option, the address
 * and why ("--http 127.0.0.1:7480: cannot listen on it: Address already in use (...)"). */
int portcheck_free(const config_t *c, char *err, size_t errlen);

#endif
