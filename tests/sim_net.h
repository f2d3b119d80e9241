/* tests/sim_net.h - a deterministic in-process network for protocol tests.
 *
 * Owns: a simulated clock and one event queue holding message deliveries and node wake-ups,
 * per-message delivery delay, random loss, partitions (groups), one-way link blocks and nodes
 * that are down. Everything random comes from the seed, so a run is reproducible.
 * Must not: know any protocol; it moves opaque bodies between node indexes and calls back. */
#ifndef TRIB_SIM_NET_H
#define TRIB_SIM_NET_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_net sim_net_t;

typedef struct {
    void *ctx;
    /* A message reaches node `to` (which is up). body is valid only during the call. */
    void (*deliver)(void *ctx, size_t to, size_t from, int msg_type, const uint8_t *body, size_t len);
    /* The time set by sim_net_set_wake for `node` has come (the node is up). */
    void (*wake)(void *ctx, size_t node);
} sim_handlers_t;

typedef struct {
    uint64_t sent, delivered, lost, blocked;   /* lost: random loss; blocked: partition/down/link */
    uint64_t bytes;
} sim_net_stats_t;

sim_net_t *sim_net_new(size_t nodes, uint64_t seed, const sim_handlers_t *h);
void sim_net_destroy(sim_net_t **np);
uint64_t sim_net_now(const sim_net_t *n);

/* Queues a copy of body for delivery after a random delay. Loss is drawn now; partitions,
 * blocks and the receiver being down are checked at delivery. */
void sim_net_send(sim_net_t *n, size_t from, size_t to, int msg_type, const uint8_t *body, size_t len);
/* When node wants its next wake-up (UINT64_MAX: none). A time in the past means now. */
void sim_net_set_wake(sim_net_t *n, size_t node, uint64_t at);

void sim_net_set_loss(sim_net_t *n, double p);                       /* 0..1 per message */
void sim_net_set_delay(sim_net_t *n, uint32_t min_ms, uint32_t max_ms); /* default 1..10 */
void sim_net_set_group(sim_net_t *n, size_t node, int group);       /* only same group talks */
void sim_net_block(sim_net_t *n, size_t from, size_t to, int on);   /* one-way link cut */
void sim_net_set_up(sim_net_t *n, size_t node, int up);             /* down: no delivery, no wake */
int sim_net_is_up(const sim_net_t *n, size_t node);

/* Runs every event due at or before `until`, then sets the clock to `until`. */
void sim_net_run(sim_net_t *n, uint64_t until);
const sim_net_stats_t *sim_net_stats(const sim_net_t *n);

#endif
