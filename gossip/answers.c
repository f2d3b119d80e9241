/* gossip/answers.c - the answer budget of the loop: the hooks replication (repl_io_t) and the
 * federation log (fedlog_io_t) call before and after answering a peer.
 *
 * A peer's few bytes (a catalog summary, digest or gap request; a federation-log summary, buckets,
 * hashes or want) can ask for megabytes back. Each peer gets a token bucket of answer bytes
 * (gossip/budget.h; rate gossip_opts_t.answer_rate, burst ANSWER_BURST_S seconds of it), charged
 * to the peer by its node key: the loop names the sender of the message being handled (g->asker;
 * the transport authenticated it by its CURVE key; replication names it through repl_io_t.asker
 * when a cut answer's `more` it follows costs us a digest), since the reply address it gives is only a
 * claim and a peer could vary it to get fresh budgets. A peer with no budget left is not answered:
 * counted (trib_answers_refused_total{kind,reason="budget"}), logged once per peer per
 * ANSWER_LOG_MS. Catalog and federation-log answers share one bucket per peer.
 *
 * The node's cap: one more bucket over the answers to all peers together, ANSWER_NODE_PEERS times
 * the peer's rate and burst. A key is a budget, and in open mode anyone holding the secret mints
 * keys at will: without the cap, n keys get n budgets, and a few bytes from each make the node send
 * megabytes, without bound. An answer goes only while the asker's bucket and the cap both have bytes
 * left, and is taken from both; a refusal by the cap is counted apart
 * (trib_answers_refused_total{kind,reason="node_budget"}) and logged once per ANSWER_LOG_MS in all,
 * however many keys are refused. Why a multiple of the peer's rate, not an option of its own: the
 * peer's rate is already the operator's word for what answering may cost, and scaling both with it
 * keeps the cap above one peer's budget, so a lone peer (a node joining, catching up) never waits on
 * the cap: it is held by its own bucket first. Four peers at once get their full rate (the default,
 * 4 x 32 MiB/s, is about a 1 Gbit/s link), more share it; a joining node verifies 10-20 MB/s
 * (docs/federation.md "Answer budget"), so six catch up at once at full speed. Under a flood from
 * many keys an honest peer gets its share of the cap, and asks again each anti-entropy round. The
 * cap holds in both modes (a charter bounds who has keys, not how many ask at once).
 * Must not: be called but on the loop thread (g->asker is the loop's), or block. */
#include <inttypes.h>
#include <stdio.h>
#include "gossip/budget.h"
#include "gossip/clock.h"
#include "gossip/gossip_int.h"
#include "gossip/identity.h"
#include "gossip/log.h"
#include "gossip/prom.h"

#define ANSWER_LOG_MS 10000      /* one refusal line per peer per this, and one of the node's cap in all */

int gossip__answers_init(gossip_t *g, double rate)
{
    if (rate <= 0)
        return 0;                /* no budget: every answer goes */
    g->budget = budget_new(rate, rate * ANSWER_BURST_S, ANSWER_PEERS);
    if (g->budget && budget_cap(g->budget, rate * ANSWER_NODE_PEERS, rate * ANSWER_NODE_PEERS * ANSWER_BURST_S) != 0)
        budget_destroy(&g->budget);
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
    if (rc == BUDGET_OK)
        return 1;
    double rate = g->o.answer_rate;
    if (rc == BUDGET_CAP || rc == BUDGET_CAP_LOG) {
        atomic_fetch_add(&g->answers_capped[kind], 1);
        if (rc == BUDGET_CAP_LOG)
            log_warn("gossip: not answering %.16s... at %s (a %s request): the answers to all peers together "
                     "took the node's budget of %.1f MiB/s (%d x --peer-answer-rate), burst %.0f MiB; peers are "
                     "answered again as it refills (and %" PRIu64 " more requests of any peer refused by it since "
                     "the last such line; trib_answers_refused_total{reason=\"node_budget\"} counts them all)",
                     key, addr, kind_name[kind], rate * ANSWER_NODE_PEERS / (1 << 20), ANSWER_NODE_PEERS,
                     rate * ANSWER_NODE_PEERS * ANSWER_BURST_S / (1 << 20), unlogged);
        return 0;
    }
    atomic_fetch_add(&g->answers_refused[kind], 1);
    if (rc == BUDGET_OWN_LOG)
        log_warn("gossip: not answering %.16s... at %s (a %s request): the answers it asked for took its "
                 "budget of %.1f MiB/s (--peer-answer-rate), burst %.0f MiB; it is answered again as the budget "
                 "refills (and %" PRIu64 " more requests of it refused since the last such line; "
                 "trib_answers_refused_total counts them all)",
                 key, addr, kind_name[kind], rate / (1 << 20), rate * ANSWER_BURST_S / (1 << 20), unlogged);
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
void gossip__answer_asker(void *ctx, const uint8_t *key) { ((gossip_t *)ctx)->asker = key; }

void gossip__answers_render(gossip_t *g, FILE *f)
{
    prom_family(f, "trib_answers_refused_total", "counter",
                "Peer requests not answered, by kind and reason (budget: the peer's answer budget, "
                "--peer-answer-rate, was spent; node_budget: the node's, over all peers together, was).");
    for (int k = 0; k < ANSWER_KINDS; k++)
        fprintf(f,
                "trib_answers_refused_total{kind=\"%s\",reason=\"budget\"} %" PRIu64 "\n"
                "trib_answers_refused_total{kind=\"%s\",reason=\"node_budget\"} %" PRIu64 "\n",
                kind_name[k], atomic_load(&g->answers_refused[k]), kind_name[k], atomic_load(&g->answers_capped[k]));
    prom_family(f, "trib_answers_bytes_total", "counter",
                "Bytes of answers sent to peers' catalog and federation-log requests, by kind.");
    for (int k = 0; k < ANSWER_KINDS; k++)
        fprintf(f, "trib_answers_bytes_total{kind=\"%s\"} %" PRIu64 "\n", kind_name[k],
                atomic_load(&g->answer_bytes[k]));
}
