/* tests/sim_net.c - a deterministic in-process network for protocol tests (see sim_net.h).
 *
 * Owns: the simulated clock, a binary min-heap of events ordered by (time, insertion order),
 * loss/delay/partition/link/down rules and message body copies.
 * Must not: know any protocol, read a real clock or use real randomness. */
#include "tests/sim_net.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define WAKE_EVENT (-1000000)

typedef struct {
    uint64_t t, order;
    size_t to, from;
    int type;                   /* WAKE_EVENT for a wake-up */
    uint8_t *body;
    size_t len;
} event_t;

typedef struct {
    size_t from, to;
} link_t;

struct sim_net {
    sim_handlers_t h;
    size_t nodes;
    uint64_t now, order, rng;
    event_t *heap;
    size_t nheap, capheap;
    uint64_t *wake;
    int *group, *up;
    link_t *blocks;
    size_t nblocks, capblocks;
    double loss;
    uint32_t dmin, dmax;
    sim_net_stats_t st;
};

static uint64_t rnd(sim_net_t *n)                 /* splitmix64 */
{
    uint64_t z = (n->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int before(const event_t *a, const event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void push(sim_net_t *n, event_t e)
{
    if (n->nheap == n->capheap) {
        size_t nc = n->capheap ? n->capheap * 2 : 1024;
        event_t *h = realloc(n->heap, nc * sizeof *h);
        assert(h);
        n->heap = h;
        n->capheap = nc;
    }
    e.order = n->order++;
    size_t i = n->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&e, &n->heap[p])) break;
        n->heap[i] = n->heap[p];
        i = p;
    }
    n->heap[i] = e;
}

static event_t pop(sim_net_t *n)
{
    event_t top = n->heap[0], last = n->heap[--n->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n->nheap) break;
        if (c + 1 < n->nheap && before(&n->heap[c + 1], &n->heap[c])) c++;
        if (!before(&n->heap[c], &last)) break;
        n->heap[i] = n->heap[c];
        i = c;
    }
    if (n->nheap) n->heap[i] = last;
    return top;
}

sim_net_t *sim_net_new(size_t nodes, uint64_t seed, const sim_handlers_t *h)
{
    sim_net_t *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->h = *h;
    n->nodes = nodes;
    n->rng = seed;
    n->dmin = 1;
    n->dmax = 10;
    n->wake = malloc(nodes * sizeof *n->wake);
    n->group = calloc(nodes, sizeof *n->group);
    n->up = malloc(nodes * sizeof *n->up);
    if (!n->wake || !n->group || !n->up) {
        sim_net_destroy(&n);
        return NULL;
    }
    for (size_t i = 0; i < nodes; i++) {
        n->wake[i] = UINT64_MAX;
        n->up[i] = 1;
    }
    return n;
}

void sim_net_destroy(sim_net_t **np)
{
    if (!np || !*np) return;
    sim_net_t *n = *np;
    for (size_t i = 0; i < n->nheap; i++) free(n->heap[i].body);
    free(n->heap);
    free(n->wake);
    free(n->group);
    free(n->up);
    free(n->blocks);
    free(n);
    *np = NULL;
}

uint64_t sim_net_now(const sim_net_t *n) { return n->now; }

static int blocked(const sim_net_t *n, size_t from, size_t to)
{
    if (!n->up[to] || n->group[from] != n->group[to]) return 1;
    for (size_t i = 0; i < n->nblocks; i++)
        if (n->blocks[i].from == from && n->blocks[i].to == to) return 1;
    return 0;
}

void sim_net_send(sim_net_t *n, size_t from, size_t to, int msg_type, const uint8_t *body, size_t len)
{
    assert(from < n->nodes && to < n->nodes);
    n->st.sent++;
    n->st.bytes += len;
    if (n->loss > 0 && (double)(rnd(n) >> 11) / 9007199254740992.0 < n->loss) {
        n->st.lost++;
        return;
    }
    event_t e = {0};
    e.t = n->now + n->dmin + (n->dmax > n->dmin ? rnd(n) % (n->dmax - n->dmin + 1) : 0);
    e.to = to;
    e.from = from;
    e.type = msg_type;
    e.len = len;
    e.body = malloc(len ? len : 1);
    assert(e.body);
    if (len) memcpy(e.body, body, len);
    push(n, e);
}

void sim_net_set_wake(sim_net_t *n, size_t node, uint64_t at)
{
    assert(node < n->nodes);
    if (at != UINT64_MAX && at < n->now) at = n->now;
    if (n->wake[node] == at) return;
    n->wake[node] = at;
    if (at == UINT64_MAX) return;
    event_t e = {0};
    e.t = at;
    e.to = node;
    e.type = WAKE_EVENT;
    push(n, e);
}

void sim_net_set_loss(sim_net_t *n, double p) { n->loss = p; }

void sim_net_set_delay(sim_net_t *n, uint32_t min_ms, uint32_t max_ms)
{
    n->dmin = min_ms;
    n->dmax = max_ms < min_ms ? min_ms : max_ms;
}

void sim_net_set_group(sim_net_t *n, size_t node, int group) { n->group[node] = group; }

void sim_net_block(sim_net_t *n, size_t from, size_t to, int on)
{
    for (size_t i = 0; i < n->nblocks; i++) {
        if (n->blocks[i].from != from || n->blocks[i].to != to) continue;
        if (!on) n->blocks[i] = n->blocks[--n->nblocks];
        return;
    }
    if (!on) return;
    if (n->nblocks == n->capblocks) {
        size_t nc = n->capblocks ? n->capblocks * 2 : 16;
        link_t *b = realloc(n->blocks, nc * sizeof *b);
        assert(b);
        n->blocks = b;
        n->capblocks = nc;
    }
    n->blocks[n->nblocks++] = (link_t){from, to};
}

void sim_net_set_up(sim_net_t *n, size_t node, int up) { n->up[node] = up; }

int sim_net_is_up(const sim_net_t *n, size_t node) { return n->up[node]; }

void sim_net_run(sim_net_t *n, uint64_t until)
{
    while (n->nheap && n->heap[0].t <= until) {
        event_t e = pop(n);
        n->now = e.t;
        if (e.type == WAKE_EVENT) {
            if (n->up[e.to] && n->wake[e.to] == e.t) {
                n->wake[e.to] = UINT64_MAX;      /* consumed; the handler sets the next */
                n->h.wake(n->h.ctx, e.to);
            }
            continue;
        }
        if (blocked(n, e.from, e.to)) {
            n->st.blocked++;
        } else {
            n->st.delivered++;
            n->h.deliver(n->h.ctx, e.to, e.from, e.type, e.body, e.len);
        }
        free(e.body);
    }
    if (until > n->now) n->now = until;
}

const sim_net_stats_t *sim_net_stats(const sim_net_t *n) { return &n->st; }
