/* gossip/answers.c - the answer budget of the loop: the hooks replication (repl_io_t) and the
 * federation log (fedlog_io_t) call before and after answering a peer.
 *
 * A peer's few bytes (a catalog summary, digest or gap request; a federation-log summary, buckets,
 * hashes or want) can ask for megabytes back. Each peer gets a token bucket of answer bytes
 * (gossip/budget.h; rate gossip_opts_t.answer_rate, burst ANSWER_BURST_S seconds of it), charged
 * to the peer by its node key: the loop names the sender of the message being handled (g->asker;
 * the transport authenticated it by its CURVE key), since the reply address it gives is only a
 * claim and a peer could vary it to get fresh budgets. A peer with no budget left is not answered:
 * counted (trib_answers_refused_total{kind,reason="budget"}), logged once per peer per
 * ANSWER_LOG_MS. Catalog and federation-log answers share one bucket per peer.
 * Must not: be called but on the loop thread (g->asker is the loop's), or block. */
#include <inttypes.h>
#include <stdio.h>
#include "gossip/budget.h"
#include "gossip/clock.h"
#include "gossip/gossip_int.h"
#include "gossip/identity.h"
#include "gossip/log.h"
#include "gossip/prom.h"

#define ANSWER_LOG_MS 10000      /* one refusal line per peer per this */

int gossip__answers_init(gossip_t *g, double rate)
{
    if (rate <= 0)
        return 0;                /* no budget: every answer goes */
    g->budget = budget_new(rate, rate * ANSWER_BURST_S, ANSWER_PEERS);
    return g->budget ? 0 : -1;
}

void gossip__answers_free(gossip_t *g) { budget_destroy(&g->budget); }

/* The budget key of the peer being answered: its node key, or (no message being handled) addr. */
static void asker_key(const gossip_t *g, const char *addr, char key[BUDGET_KEY_MAX + 1])
{
    if (g->asker)
        identity_hex(g->asker, key);
    else
        snprintf(key, BUDGET_KEY_MAX + 1, "%s", addr);
}

static const char *const kind_name[ANSWER_KINDS] = {"catalog", "trust"};

static int answer_ok(gossip_t *g, const char *addr, int kind)
{
    if (!g->budget)
        return 1;
    char key[BUDGET_KEY_MAX + 1];
    asker_key(g, addr, key);
    uint64_t unlogged = 0;
    int rc = budget_ask(g->budget, key, clock_ms(), ANSWER_LOG_MS, &unlogged);
    if (rc == 1)
        return 1;
    atomic_fetch_add(&g->answers_refused[kind], 1);
    if (rc < 0)
        log_warn("gossip: not answering %.16s... at %s (a %s request): the answers it asked for took its "
                 "budget of %.1f MiB/s (--peer-answer-rate), burst %.0f MiB; it is answered again as the budget "
                 "refills (and %" PRIu64 " more requests of it refused since the last such line; "
                 "trib_answers_refused_total counts them all)",
                 key, addr, kind_name[kind], g->o.answer_rate / (1 << 20), g->o.answer_rate * ANSWER_BURST_S / (1 << 20),
                 unlogged);
    return 0;
}

static void answered(gossip_t *g, const char *addr, size_t bytes, int kind)
{
    atomic_fetch_add(&g->answer_bytes[kind], bytes);
    if (!g->budget || !bytes)
        return;
    char key[BUDGET_KEY_MAX + 1];
    asker_key(g, addr, key);
    budget_take(g->budget, key, bytes, clock_ms());
}

int gossip__answer_ok_catalog(void *ctx, const char *addr) { return answer_ok(ctx, addr, ANSWER_CATALOG); }
int gossip__answer_ok_trust(void *ctx, const char *addr) { return answer_ok(ctx, addr, ANSWER_TRUST); }
void gossip__answered_catalog(void *ctx, const char *addr, size_t bytes) { answered(ctx, addr, bytes, ANSWER_CATALOG); }
void gossip__answered_trust(void *ctx, const char *addr, size_t bytes) { answered(ctx, addr, bytes, ANSWER_TRUST); }

void gossip__answers_render(gossip_t *g, FILE *f)
{
    prom_family(f, "trib_answers_refused_total", "counter",
                "Peer requests not answered, by kind and reason (budget: the peer's answer budget, "
                "--peer-answer-rate, was spent).");
    for (int k = 0; k < ANSWER_KINDS; k++)
        fprintf(f, "trib_answers_refused_total{kind=\"%s\",reason=\"budget\"} %" PRIu64 "\n", kind_name[k],
                atomic_load(&g->answers_refused[k]));
    prom_family(f, "trib_answers_bytes_total", "counter",
                "Bytes of answers sent to peers' catalog and federation-log requests, by kind.");
    for (int k = 0; k < ANSWER_KINDS; k++)
        fprintf(f, "trib_answers_bytes_total{kind=\"%s\"} %" PRIu64 "\n", kind_name[k],
                atomic_load(&g->answer_bytes[k]));
}
