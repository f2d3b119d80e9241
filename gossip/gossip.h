/* gossip/gossip.h - the federation actor: one thread that owns the peer transport, SWIM membership
 * and catalog replication, driven by one zmq_poll loop whose timeout is the next timer deadline.
 *
 * Other threads talk to it only through the calls below: gossip_announce queues a new local entry
 * (the loop pushes it to peers), gossip_members copies a snapshot of the member table, and
 * gossip_metrics_render reads counters. The loop never waits on a client.
 * Must not: parse manifests or records, or serve HTTP. */
#ifndef TRIB_GOSSIP_H
#define TRIB_GOSSIP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "gossip/catalog.h"
#include "gossip/identity.h"
#include "gossip/swim.h"
#include "storage/store.h"

typedef struct gossip gossip_t;

typedef struct {
    const char *listen;             /* HOST:PORT to bind */
    const char *advertise;          /* HOST:PORT peers reach us at (default listen) */
    const char *http;               /* our HTTP address, gossiped for humans and routing */
    const char *domain;
    const char *federation_secret;
    const char *const *seeds;
    size_t nseeds;
    swim_config_t swim;
    uint32_t anti_entropy_ms;       /* catalog digest exchange with one random peer */
    size_t max_msg;                 /* largest peer message */
    /* Called on the loop thread when entries from peers were accepted (wake readers). */
    void (*on_catalog)(void *ctx);
    void *ctx;
} gossip_opts_t;

gossip_t *gossip_start(store_t *st, catalog_t *cat, const identity_t *id, const gossip_opts_t *o, char *err,
                       size_t errlen);
/* Broadcasts LEFT (graceful leave), stops the thread, closes sockets. Accepts NULL. */
void gossip_stop(gossip_t **gp);
/* Queues a new entry of this node for immediate push. Any thread; never blocks on the network. */
void gossip_announce(gossip_t *g, const uint8_t *entry, size_t len);

typedef struct {
    uint8_t id[32];
    char domain[64], addr[256], http[256];
    uint64_t incarnation;
    int state;                      /* TRIB__MEMBER_STATE__* */
    int self;
} gossip_member_t;

/* A copy of the member table (self first); *out malloc'd, returns the count. */
size_t gossip_members(gossip_t *g, gossip_member_t **out);
/* Prometheus text: members by state, messages and bytes, entries by outcome, probe RTT. */
void gossip_metrics_render(gossip_t *g, FILE *f);

#endif
