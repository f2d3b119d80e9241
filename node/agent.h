/* node/agent.h - the running node: what the HTTP API and the metrics exporter share.
 * Owns: wiring storage, identity, catalog, the gossip loop and the HTTP server together,
 * signals and orderly shutdown. Must not: implement any of them. */
#ifndef TRIB_AGENT_H
#define TRIB_AGENT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "gossip/catalog.h"
#include "gossip/identity.h"
#include "node/config.h"
#include "node/records.h"
#include "storage/store.h"

struct gossip;

typedef struct agent {
    config_t cfg;
    store_t *st;
    identity_t id;
    catalog_t *cat;
    records_limits_t limits;
    struct gossip *gossip;          /* NULL until the federation loop runs */
    struct MHD_Daemon *httpd;
    time_t started;
    /* Live readers wait here for appends (records or catalog) instead of polling. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t append_gen;
    int stopping;
} agent_t;

int agent_main(int argc, char **argv);
/* Wakes every live reader (after an append, or at shutdown). */
void agent_notify(agent_t *a);
/* Hands a new signed entry of this node to the gossip loop (no-op without federation). */
void agent_announce(agent_t *a, const uint8_t *signed_entry, size_t len);

#endif
