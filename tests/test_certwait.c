/* tests/test_certwait.c - keys of entries met before their certificate (gossip/certwait.c), on a
 * driven clock with a played trust store. The end-to-end case (a real agent, a certificate pushed
 * late) is chartered::entries_met_before_their_key_s_certificate_are_taken_once_it_comes. */
#include <criterion/criterion.h>
#include <string.h>
#include "gossip/certwait.h"

typedef struct {
    uint8_t certified[8][32];    /* keys whose certificate holds */
    size_t ncertified;
    uint8_t revoked[32];
    int has_revoked;
    int syncs, asks, refusals;
    uint64_t refused_n;
    trust_verdict_t last_v;
    char last_addr[128], last_domain[64];
} io_t;

static trust_verdict_t judge(void *ctx, const char *domain, const uint8_t key[32], char *why, size_t cap)
{
    io_t *io = ctx;
    (void)domain;
    for (size_t i = 0; i < io->ncertified; i++)
        if (!memcmp(io->certified[i], key, 32))
            return TRUST_OK;
    if (io->has_revoked && !memcmp(io->revoked, key, 32)) {
        snprintf(why, cap, "revoked");
        return TRUST_REVOKED;
    }
    return TRUST_UNCERTIFIED;
}

static void sync_(void *ctx, const char *addr)
{
    io_t *io = ctx;
    io->syncs++;
    snprintf(io->last_addr, sizeof io->last_addr, "%s", addr);
}

static void ask(void *ctx, const char *addr, const char *domain)
{
    io_t *io = ctx;
    io->asks++;
    snprintf(io->last_addr, sizeof io->last_addr, "%s", addr);
    snprintf(io->last_domain, sizeof io->last_domain, "%s", domain);
}

static void refuse(void *ctx, trust_verdict_t v, uint64_t n, const char *domain, const uint8_t key[32],
                   const char *why)
{
    io_t *io = ctx;
    (void)key, (void)why;
    io->refusals++;
    io->refused_n += n;
    io->last_v = v;
    snprintf(io->last_domain, sizeof io->last_domain, "%s", domain);
}

static io_t st;
static certwait_io_t io = {.ctx = &st, .judge = judge, .sync = sync_, .ask = ask, .refuse = refuse};

static void key(uint8_t k[32], int i)
{
    memset(k, 0, 32);
    k[0] = (uint8_t)i;
    k[1] = (uint8_t)(i >> 8);
    k[31] = 0x5a;
}

static certwait_stats_t stats(certwait_t *c)
{
    certwait_stats_t s;
    certwait_stats(c, &s);
    return s;
}

Test(certwait, a_held_key_asks_its_sender_s_log_once_then_the_domain_once_certified)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    key(k, 1);
    cr_assert_eq(certwait_deadline(c), UINT64_MAX);
    cr_assert_eq(certwait_hold(c, k, "growth", "10.0.0.1:7470", 1000), 1);
    cr_assert_eq(certwait_hold(c, k, "growth", "10.0.0.1:7470", 1001), 1);
    cr_assert_leq(certwait_deadline(c), 1001);
    certwait_step(c, &io, 1001);
    cr_expect_eq(st.syncs, 1);
    cr_expect_str_eq(st.last_addr, "10.0.0.1:7470");
    cr_expect_eq(stats(c).held_keys, 1);
    cr_expect_eq(stats(c).held_entries, 2);
    certwait_step(c, &io, 1001 + CERTWAIT_STEP_MS);
    cr_expect_eq(st.syncs, 1, "the sender's log is asked once per sender");
    /* a second sender: not asked again (a peer that forwards entries verified their key, so the
     * first one holds the certificate; a peer alternating addresses makes no more questions) */
    cr_assert_eq(certwait_hold(c, k, "growth", "10.0.0.2:7470", 1100), 1);
    certwait_step(c, &io, 1100 + CERTWAIT_STEP_MS);
    cr_expect_eq(st.syncs, 1);
    /* the certificate comes: the last sender is asked for the domain, nothing refused */
    memcpy(st.certified[st.ncertified++], k, 32);
    certwait_step(c, &io, 1200);
    cr_expect_eq(st.asks, 1);
    cr_expect_str_eq(st.last_domain, "growth");
    cr_expect_str_eq(st.last_addr, "10.0.0.2:7470");
    cr_expect_eq(st.refusals, 0);
    cr_expect_eq(stats(c).certified, 1);
    cr_expect_eq(stats(c).held_keys, 0);
    cr_expect_eq(certwait_deadline(c), UINT64_MAX, "nothing held: no more steps");
    certwait_free(&c);
    cr_expect_null(c);
}

Test(certwait, a_key_no_certificate_comes_for_is_refused_after_the_wait_then_at_once)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    key(k, 2);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(certwait_hold(c, k, "audit", "a:1", 0), 1);
    certwait_step(c, &io, 0);
    certwait_step(c, &io, CERTWAIT_MS - 1);
    cr_expect_eq(st.refusals, 0, "refused before the wait ran out");
    certwait_step(c, &io, CERTWAIT_MS);
    cr_expect_eq(st.refusals, 0, "a step comes at most every CERTWAIT_STEP_MS");
    cr_expect_leq(certwait_deadline(c), CERTWAIT_MS - 1 + CERTWAIT_STEP_MS);
    uint64_t at = CERTWAIT_MS - 1 + CERTWAIT_STEP_MS;
    certwait_step(c, &io, at);
    cr_expect_eq(st.refusals, 1, "one refusal (one log line) for the lot");
    cr_expect_eq(st.refused_n, 5, "every held entry counted");
    cr_expect_eq(st.last_v, TRUST_UNCERTIFIED);
    cr_expect_eq(stats(c).refused, 1);
    /* its later entries: refused at once (the caller counts them), until the key is forgotten */
    cr_expect_eq(certwait_hold(c, k, "audit", "a:1", at + 1), 0);
    cr_expect_eq(certwait_hold(c, k, "audit", "a:1", at + CERTWAIT_FORGET_MS - 1), 0);
    cr_expect_eq(certwait_hold(c, k, "audit", "a:1", at + CERTWAIT_FORGET_MS), 1, "never forgotten");
    /* the same key for another domain is another wait */
    uint8_t k3[32];
    key(k3, 3);
    cr_expect_eq(certwait_hold(c, k3, "audit", "a:1", CERTWAIT_MS + 2), 1);
    certwait_free(&c);
}

Test(certwait, a_key_found_revoked_is_refused_at_once_with_that_verdict)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    key(k, 4);
    cr_assert_eq(certwait_hold(c, k, "growth", "a:1", 0), 1);
    memcpy(st.revoked, k, 32);
    st.has_revoked = 1;
    certwait_step(c, &io, 10);
    cr_expect_eq(st.refusals, 1);
    cr_expect_eq(st.last_v, TRUST_REVOKED);
    cr_expect_eq(st.refused_n, 1);
    certwait_free(&c);
}

/* Eight senders (CERTWAIT_PER_SENDER keys each) fill the table: a 65th key is refused at once. */
static void sender(char *out, size_t cap, int i)
{
    snprintf(out, cap, "10.0.1.%d:7470", i / CERTWAIT_PER_SENDER);
}

Test(certwait, past_the_table_entries_are_refused_at_once_and_counted)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    char from[64];
    for (int i = 0; i < CERTWAIT_KEYS; i++) {
        key(k, 100 + i);
        sender(from, sizeof from, i);
        cr_assert_eq(certwait_hold(c, k, "d", from, 0), 1);
    }
    key(k, 100 + CERTWAIT_KEYS);
    cr_expect_eq(certwait_hold(c, k, "d", "10.0.2.1:7470", 0), 0, "no room: refused at once");
    cr_expect_eq(stats(c).full, 1);
    key(k, 100);
    cr_expect_eq(certwait_hold(c, k, "d", "10.0.2.1:7470", 0), 1, "a key held already still is");
    /* bounded: the wait runs out for all; a refused key's room goes to a new key (the oldest first) */
    certwait_step(c, &io, CERTWAIT_MS);
    cr_expect_eq(st.refusals, CERTWAIT_KEYS);
    key(k, 999);
    cr_expect_eq(certwait_hold(c, k, "d", "10.0.2.1:7470", CERTWAIT_MS + 1), 1, "a refused key kept the room");
    key(k, 101);
    cr_expect_eq(certwait_hold(c, k, "d", "10.0.0.0:7470", CERTWAIT_MS + 1), 0, "the other refused keys: at once");
    certwait_free(&c);
}

/* A peer sending entries of ever new keys (never certified) took all 64 slots, and every honest
 * key met meanwhile (a node joining) was refused at once, counted as hostile: the wait undone for
 * 70 s (10 s held, 60 s refused slots kept), again and again. A peer's entries hold
 * CERTWAIT_PER_SENDER keys now; past that its entries are refused at once, counted per_sender, and
 * the others' keys are held as before. */
Test(certwait, one_sender_holds_a_few_keys_at_most_and_others_keep_their_room)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    for (int i = 0; i < CERTWAIT_PER_SENDER; i++) {
        key(k, 200 + i);
        cr_assert_eq(certwait_hold(c, k, "junk", "10.0.0.66:7470", 0), 1);
    }
    for (int i = CERTWAIT_PER_SENDER; i < 4 * CERTWAIT_KEYS; i++) {
        key(k, 200 + i);
        cr_expect_eq(certwait_hold(c, k, "junk", "10.0.0.66:7470", (uint64_t)i), 0, "key %d held", i);
    }
    cr_expect_eq(stats(c).per_sender, 4 * CERTWAIT_KEYS - CERTWAIT_PER_SENDER);
    key(k, 200);
    cr_expect_eq(certwait_hold(c, k, "junk", "10.0.0.66:7470", 300), 1, "its keys held still gather entries");
    key(k, 7);
    cr_expect_eq(certwait_hold(c, k, "growth", "10.0.0.2:7470", 300), 1, "another peer's key is held");
    /* its keys refused after the wait: it may hold as many new ones again, no more */
    certwait_step(c, &io, CERTWAIT_MS);
    cr_expect_eq(stats(c).refused, CERTWAIT_PER_SENDER);
    for (int i = 0; i < CERTWAIT_PER_SENDER + 1; i++) {
        key(k, 1000 + i);
        cr_expect_eq(certwait_hold(c, k, "junk", "10.0.0.66:7470", CERTWAIT_MS + 1), i < CERTWAIT_PER_SENDER);
    }
    certwait_free(&c);
}

Test(certwait, oversize_names_are_not_held)
{
    memset(&st, 0, sizeof st);
    certwait_t *c = certwait_new();
    uint8_t k[32];
    key(k, 5);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_expect_eq(certwait_hold(c, k, big, "a:1", 0), 0);
    cr_expect_eq(certwait_hold(c, k, "d", big, 0), 0);
    cr_expect_eq(certwait_hold(NULL, k, "d", "a:1", 0), 0, "open mode: no waits");
    certwait_free(&c);
    certwait_free(NULL);
}
