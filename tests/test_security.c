/* tests/test_security.c - a hostile peer against a real `trib agent` process: forged signatures,
 * a domain claimed by another key, replays, oversize frames, random bytes, a wrong protocol
 * version, a spoofed sender, and a client without CURVE. Each is ignored and counted in /metrics,
 * the node keeps serving, and its catalog is unchanged. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "gossip/entry.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

static void *zctx;
static peer_client_t *held;      /* a test's hostile peer: closed before the context, even after a failure */
static void teardown(void)
{
    peer_client_destroy(&held);
    h_cleanup_all();
    if (zctx)
        zmq_ctx_term(zctx);
    zctx = NULL;
}
static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    zctx = zmq_ctx_new();
}
TestSuite(security, .init = setup, .fini = teardown, .timeout = 120);

typedef struct {
    h_node_t *n;
    const char *series;
    double want;
} metric_cond_t;

static int metric_reaches(void *ctx)
{
    metric_cond_t *m = ctx;
    return h_metric(m->n->url, m->series) >= m->want;
}

static void wait_metric(h_node_t *n, const char *series, double want)
{
    metric_cond_t m = {n, series, want};
    cr_assert(h_wait(metric_reaches, &m, 10000), "%s did not reach %.0f (is %.0f)", series, want, h_metric(n->url, series));
}

static char *digest(h_node_t *n)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/status", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "node stopped serving");
    json_t *j = json_loads(r.body, 0, NULL);
    h_resp_free(&r);
    char *d = json_dumps(json_object_get(j, "digest"), JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return d;
}

/* A signed CatalogEntry for domain/name at seq, with prev_hash (NULL for seq 1). */
static uint8_t *make_entry(const identity_t *id, const char *domain, const char *name, uint64_t seq,
                           const uint8_t prev[32], size_t *len)
{
    return fx_manifest_entry(id, domain, name, "forged", seq, prev, len);
}

/* CatalogEntries{entry} inside an envelope from id. */
static int try_send_entry(peer_client_t *c, const identity_t *id, const uint8_t *entry, size_t len)
{
    ProtobufCBinaryData item = {len, (uint8_t *)entry};
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = 1;
    msg.entries = &item;
    size_t blen = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *body = malloc(blen);
    trib__catalog_entries__pack(&msg, body);
    peer_envelope_t env;
    peer_envelope_init(&env, id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, blen);
    int rc = peer_client_send_envelope(c, &env);
    free(body);
    return rc;
}

static void send_entry(peer_client_t *c, const identity_t *id, const uint8_t *entry, size_t len)
{
    cr_assert_eq(try_send_entry(c, id, entry, len), 0);
}

static void start_node(h_node_t *n)
{
    cr_assert_eq(h_node_start(n, "payments", "--max-msg-kb", "64", NULL), 0);
    const char *m = "{\"name\":\"ledger\",\"domain\":\"payments\",\"version\":\"1.0.0\","
                    "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                    "\"schema\":[{\"name\":\"id\",\"logicalType\":\"string\"}]}";
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/payments/ledger", n->url);
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/json", m, strlen(m), &r), 0);
    cr_assert_eq(r.status, 201);
    h_resp_free(&r);
}

Test(security, forged_wrong_key_replayed_entries_are_counted_and_ignored)
{
    h_node_t n;
    start_node(&n);
    identity_t evil;
    peer_identity(&evil);
    peer_client_t *c = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(c);

    /* A legitimate new domain from this peer is accepted (trust on first use)... */
    size_t len;
    uint8_t *ok = make_entry(&evil, "evil", "first", 1, NULL, &len);
    send_entry(c, &evil, ok, len);
    wait_metric(&n, "trib_catalog_entries_total{result=\"accepted\"}", 1);
    char *before = digest(&n);
    cr_assert(strstr(before, "\"evil\":1") && strstr(before, "\"payments\":1"), "digest: %s", before);

    /* ...its replay is a duplicate, dropped and counted. */
    send_entry(c, &evil, ok, len);
    wait_metric(&n, "trib_catalog_entries_total{result=\"duplicate\"}", 1);
    free(ok);

    /* A bad signature: one bit flipped in the signed entry's signature. */
    uint8_t *bad = make_entry(&evil, "evil", "second", 2, NULL, &len);
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, bad);
    se->signature.data[7] ^= 0x10;
    uint8_t *tampered = malloc(trib__signed_entry__get_packed_size(se));
    size_t tlen = trib__signed_entry__pack(se, tampered);
    trib__signed_entry__free_unpacked(se, NULL);
    send_entry(c, &evil, tampered, tlen);
    wait_metric(&n, "trib_catalog_entries_total{result=\"bad_signature\"}", 1);
    free(tampered);
    free(bad);

    /* The node's own domain claimed by another key. */
    uint8_t prev[32] = {0};
    uint8_t *claim = make_entry(&evil, "payments", "hijack", 2, prev, &len);
    send_entry(c, &evil, claim, len);
    wait_metric(&n, "trib_catalog_entries_total{result=\"wrong_key\"}", 1);
    free(claim);

    char *after = digest(&n);
    cr_assert_str_eq(after, before, "catalog changed: %s -> %s", before, after);
    free(before);
    free(after);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/payments/hijack", n.url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 404, "forged product is listed");
    h_resp_free(&r);
    /* The refusals are logged, each naming the reason. */
    FILE *lf = fopen(n.log, "r");
    cr_assert(lf, "no agent log at %s", n.log);
    char line[1024];
    int logged_wrong_key = 0, logged_bad_sig = 0;
    while (fgets(line, sizeof line, lf)) {
        logged_wrong_key |= strstr(line, "refused an entry") && strstr(line, "wrong_key: domain 'payments'");
        logged_bad_sig |= strstr(line, "refused an entry") && strstr(line, "bad_signature");
    }
    fclose(lf);
    cr_assert(logged_wrong_key, "the wrong-key claim was not logged");
    cr_assert(logged_bad_sig, "the bad signature was not logged");
    peer_client_destroy(&c);
}

Test(security, garbage_oversize_bad_version_spoofed_sender_are_dropped)
{
    h_node_t n;
    start_node(&n);
    char *before = digest(&n);
    identity_t evil, victim;
    peer_identity(&evil);
    peer_identity(&victim);
    peer_client_t *c = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(c);

    /* Random bytes. */
    uint8_t junk[512];
    randombytes_buf(junk, sizeof junk);
    cr_assert_eq(peer_client_send_raw(c, junk, sizeof junk), 0);
    wait_metric(&n, "trib_gossip_dropped_total{reason=\"undecodable\"}", 1);

    /* Oversize: just over the node's 64 KiB limit, so our own check sees and counts it. */
    size_t big = 64 * 1024 + 100;
    uint8_t *huge = calloc(1, big);
    cr_assert_eq(peer_client_send_raw(c, huge, big), 0);
    free(huge);
    wait_metric(&n, "trib_gossip_dropped_total{reason=\"oversize\"}", 1);

    /* Wrong protocol version. */
    peer_envelope_t env;
    peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_PING, NULL, 0);
    env.version = 99;
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    wait_metric(&n, "trib_gossip_dropped_total{reason=\"bad_version\"}", 1);

    /* A sender id that is not the CURVE key the message came with. */
    peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_PING, NULL, 0);
    env.sender = victim.pk;
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    wait_metric(&n, "trib_gossip_dropped_total{reason=\"spoofed_sender\"}", 1);

    /* A valid envelope with a garbage catalog body. */
    peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, junk, sizeof junk);
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    wait_metric(&n, "trib_gossip_dropped_total{reason=\"malformed_catalog\"}", 1);

    char *after = digest(&n);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    peer_client_destroy(&c);
}

/* A peer naming another node's address (open mode: a reply address is only a claim) sends frames
 * saying `more` (an answer cut short: "pull the rest with your digest") while the node pulls from
 * nobody. None is followed (each made the node send that address its digest, uncharged, and held its
 * pull with it open: no round with the real holder of the address), each is counted in
 * trib_catalog_more_refused_total, the refusals are logged at most once a second, and the node keeps
 * serving and answers a round opener from the same address as before. */
Test(security, more_frames_outside_a_pull_are_refused_counted_and_logged_rate_limited)
{
    enum { FLOOD = 200 };
    h_node_t n;
    start_node(&n);
    char *before = digest(&n);
    identity_t evil;
    peer_identity(&evil);
    peer_client_t *c = held = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(c);
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.more = 1;
    msg.answer = 1;
    uint8_t body[16];
    size_t blen = trib__catalog_entries__pack(&msg, body);
    peer_envelope_t env;
    int64_t t0 = peer_now_ms();
    for (int i = 0; i < FLOOD; i++) {
        peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, blen);
        env.seq = (uint64_t)i + 1;
        cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    }
    /* then a round opener that differs, from the same address: answered with the node's digest
     * (queued catalog messages are handled in order, so the frames before it have been) */
    uint8_t hash[16] = {0}, sbuf[64];
    Trib__CatalogSummary sum = TRIB__CATALOG_SUMMARY__INIT;
    sum.hash.data = hash;
    sum.hash.len = sizeof hash;
    sum.domains = 7;
    size_t slen = trib__catalog_summary__pack(&sum, sbuf);
    peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, sbuf, slen);
    env.seq = FLOOD + 1;
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    wait_metric(&n, "trib_catalog_rounds_total{kind=\"differed\"}", 1);
    double refused = h_metric(n.url, "trib_catalog_more_refused_total");
    cr_assert_eq(refused, FLOOD, "%.0f of %d 'more' frames outside a pull refused", refused, FLOOD);
    double secs = (double)(peer_now_ms() - t0) / 1000.0;

    char *after = digest(&n);
    cr_assert_str_eq(after, before, "catalog changed");
    free(before);
    free(after);
    FILE *lf = fopen(n.log, "r");
    cr_assert(lf, "no agent log at %s", n.log);
    char line[1024];
    int lines = 0;
    while (fgets(line, sizeof line, lf))
        lines += strstr(line, "not following a 'more' frame from 127.0.0.1:9") != NULL;
    fclose(lf);
    cr_assert(lines >= 1 && lines <= 2 + (int)secs, "%d lines about the refused 'more' frames in %.1f s", lines, secs);
    peer_client_destroy(&held);
}

Test(security, client_without_curve_cannot_talk)
{
    h_node_t n;
    start_node(&n);
    identity_t evil;
    peer_identity(&evil);
    /* Plain ZeroMQ: sends an entry for a new domain that would be accepted over CURVE. */
    peer_client_t *plain = peer_client_new(zctx, n.peer, NULL, NULL);
    cr_assert(plain);
    size_t len;
    uint8_t *e = make_entry(&evil, "plainevil", "x", 1, NULL, &len);
    /* not asserted: once the node has refused the plain handshake ZeroMQ may have no pipe left to
     * queue it on (EAGAIN), which is the refusal this test is about */
    (void)try_send_entry(plain, &evil, e, len);
    free(e);
    /* A marker over CURVE, sent after: once it is in, the plain one had every chance. */
    peer_client_t *curve = peer_client_new(zctx, n.peer, &evil, NULL);
    e = make_entry(&evil, "marker", "x", 1, NULL, &len);
    send_entry(curve, &evil, e, len);
    free(e);
    wait_metric(&n, "trib_catalog_entries_total{result=\"accepted\"}", 1);
    char *d = digest(&n);
    cr_assert(strstr(d, "marker"), "%s", d);
    cr_assert(!strstr(d, "plainevil"), "a plain (non-CURVE) client got an entry in: %s", d);
    cr_assert_eq(h_metric(n.url, "trib_catalog_entries_total{result=\"accepted\"}"), 1);
    free(d);
    peer_client_destroy(&plain);
    peer_client_destroy(&curve);
}

/* Membership is never starved by catalog work: a peer floods one member of a three-node federation
 * (default SWIM timings: probe 1 s, timeout 500 ms) with 4 MB frames of 8,000 entries that each cost
 * a signature verification. A frame is handled up to 1,024 entries (the rest is ignored and counted:
 * a conforming peer never sends more), and queued frames are worked off in time-boxed slices between
 * membership messages, so no member is ever suspected. Before, the node verified each whole frame
 * (about half a second on an idle core) while pings waited, and its peers marked it suspect. */
typedef struct {
    h_node_t *n;
    double want, per_frame;
} flood_cond_t;

/* The flood is worked off: every entry verified (refused) or its frame dropped as backlog. */
static int flood_done(void *ctx)
{
    flood_cond_t *f = ctx;
    double bad = h_metric(f->n->url, "trib_catalog_entries_total{result=\"bad_signature\"}");
    double dropped = h_metric(f->n->url, "trib_gossip_dropped_total{reason=\"catalog_backlog\"}");
    double capped = h_metric(f->n->url, "trib_gossip_dropped_total{reason=\"catalog_over_frame_cap\"}");
    return bad >= 0 && bad + (dropped > 0 ? dropped : 0) * f->per_frame + (capped > 0 ? capped : 0) >= f->want;
}

Test(security, catalog_flood_never_starves_membership)
{
    enum { PER_FRAME = 8000, FRAMES = 12 };
    h_node_t a, b, c;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0);
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, NULL), 0);
    cr_assert_eq(h_node_start(&c, "listening", "--seed", a.peer, NULL), 0);
    h_node_t *all[] = {&a, &b, &c};
    metric_cond_t alive[3];
    for (int i = 0; i < 3; i++) {
        alive[i] = (metric_cond_t){all[i], "trib_members{state=\"alive\"}", 3};
        cr_assert(h_wait(metric_reaches, &alive[i], 15000), "node %d does not see three alive", i);
    }
    double suspects0[3];
    for (int i = 0; i < 3; i++)
        suspects0[i] = h_metric(all[i]->url, "trib_swim_events_total{event=\"suspect\"}");

    identity_t evil;
    peer_identity(&evil);
    size_t len;
    uint8_t *e = make_entry(&evil, "evil", "flood", 1, NULL, &len);
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, e);
    se->signature.data[3] ^= 0x01; /* decodes, costs a verification, is refused */
    uint8_t *bad = malloc(trib__signed_entry__get_packed_size(se));
    size_t blen = trib__signed_entry__pack(se, bad);
    trib__signed_entry__free_unpacked(se, NULL);
    static ProtobufCBinaryData items[PER_FRAME];
    for (int i = 0; i < PER_FRAME; i++)
        items[i] = (ProtobufCBinaryData){blen, bad};
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = PER_FRAME;
    msg.entries = items;
    size_t flen = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *frame = malloc(flen);
    trib__catalog_entries__pack(&msg, frame);
    peer_client_t *pc = peer_client_new(zctx, b.peer, &evil, NULL);
    cr_assert(pc);
    peer_envelope_t env;
    peer_envelope_init(&env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, frame, flen);
    long t0 = h_now_ms();
    for (int i = 0; i < FRAMES; i++)
        cr_assert_eq(peer_client_send_envelope(pc, &env), 0);
    flood_cond_t fc = {&b, (double)PER_FRAME * FRAMES, PER_FRAME};
    int done = h_wait(flood_done, &fc, 90000);
    peer_client_destroy(&pc);
    free(frame);
    free(bad);
    free(e);
    cr_assert(done, "the flood was not worked off (%.0f verified)",
              h_metric(b.url, "trib_catalog_entries_total{result=\"bad_signature\"}"));
    cr_log_info("flood of %d entries worked off in %ld ms", PER_FRAME * FRAMES, h_now_ms() - t0);
    for (int i = 0; i < 3; i++) {
        double s = h_metric(all[i]->url, "trib_swim_events_total{event=\"suspect\"}");
        cr_assert_eq(s, suspects0[i], "node %d suspected a member %.0f time(s) during the flood", i,
                     s - suspects0[i]);
        cr_assert_eq(h_metric(all[i]->url, "trib_members{state=\"alive\"}"), 3, "node %d lost a member", i);
    }
}

/* The node's id from /v1/status (node_id, 64 hex). */
static void node_id(h_node_t *n, uint8_t pk[32])
{
    json_t *j = h_get_json(n->url, "/v1/status", NULL);
    cr_assert(j);
    const char *hex = json_string_value(json_object_get(j, "node_id"));
    cr_assert(hex && strlen(hex) == 64, "no node_id in /v1/status");
    cr_assert_eq(sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL), 0);
    json_decref(j);
}

/* A probe Ping to n from id carrying rider (each Ping is answered; the rider is then parsed). */
static void send_rider(peer_client_t *c, const identity_t *id, const uint8_t target[32], uint64_t seq,
                       const uint8_t *rider, size_t len)
{
    Trib__Ping p = TRIB__PING__INIT;
    p.probe_seq = seq;
    p.target.data = (uint8_t *)target;
    p.target.len = 32;
    p.rider.data = (uint8_t *)rider;
    p.rider.len = len;
    uint8_t body[1024];
    size_t blen = trib__ping__pack(&p, body);
    peer_envelope_t env;
    peer_envelope_init(&env, id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_PING, body, blen);
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
}

/* Bounded random input for the anti-entropy rider (Ping.rider, parsed as AntiEntropy, its parts
 * handed to the catalog and federation-log handlers): random bytes, and valid wrappers around
 * random bodies. Undecodable riders are counted, the rest are refused by the handlers; the node
 * keeps serving, keeps its catalog, and stays a member. */
Test(security, random_anti_entropy_riders_are_refused_and_counted)
{
    h_node_t n;
    start_node(&n);
    char *before = digest(&n);
    uint8_t target[32];
    node_id(&n, target);
    identity_t evil;
    peer_identity(&evil);
    peer_client_t *c = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(c);
    enum { ROUNDS = 300 };
    uint8_t rider[512], part[200];
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = 1 + randombytes_uniform(sizeof rider);
        if (i % 2 == 0) {
            randombytes_buf(rider, len);
        } else {                   /* a well-formed AntiEntropy around random (or truncated) bodies */
            size_t a = randombytes_uniform(sizeof part / 2), b = randombytes_uniform(sizeof part / 2);
            randombytes_buf(part, sizeof part);
            if (i % 4 == 1)        /* a step-1 FedSync prefix, then garbage */
                part[sizeof part / 2] = 0x08, part[sizeof part / 2 + 1] = 0x01;
            Trib__AntiEntropy ae = TRIB__ANTI_ENTROPY__INIT;
            ae.catalog_summary = (ProtobufCBinaryData){a, part};
            ae.fed_sync = (ProtobufCBinaryData){b, part + sizeof part / 2};
            len = trib__anti_entropy__pack(&ae, rider);   /* 0 when both parts are empty (1 in 10^4):
                                                            * a Ping without a rider, still one of ROUNDS */
        }
        send_rider(c, &evil, target, (uint64_t)i + 1, rider, len);
    }
    /* Every Ping was handled (answered or refused): the last one's count is in. */
    wait_metric(&n, "trib_gossip_messages_total{dir=\"in\",type=\"MSG_PING\"}", ROUNDS);
    cr_assert_geq(h_metric(n.url, "trib_gossip_dropped_total{reason=\"malformed_rider\"}"), 1);
    char *after = digest(&n);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    peer_client_destroy(&c);
}
