/* gossip/gossip_metrics.c - the federation's Prometheus metrics (gossip_metrics_render, see
 * gossip.h): members by state, peer messages and drops, catalog replication, SWIM events and probe
 * round trips, then the routed reads' own.
 *
 * Owns: the metric names, help texts and labels of those families.
 * Must not: read live SWIM, replication or transport state (only the copies the loop publishes
 * under smu, and own_synced), take smu while writing to f, or change any counter. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "gossip/fedlog.h"
#include "gossip/gossip_int.h"
#include "gossip/linkserve.h"
#include "gossip/reads_link.h"
#include "gossip/prom.h"

static const char *type_name(int t)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&trib__msg_type__descriptor, t);
    return v ? v->name : "unknown";
}

void gossip_metrics_render(gossip_t *g, FILE *f)
{
    pthread_mutex_lock(&g->smu);
    swim_stats_t ss = g->swim_stats;
    repl_stats_t rs = g->repl_stats;
    transport_stats_t ts = g->tr_stats;
    size_t bulk_bytes = g->tr_bulk_pub;
    size_t counts[4], uncert = g->uncert_pub;
    memcpy(counts, g->counts, sizeof counts);
    int health = g->health;
    uint64_t catalog_dropped = g->catalog_dropped_pub, riders_malformed = g->riders_malformed_pub;
    uint64_t closed_gone = g->conns_closed_gone_pub;
    membersave_stats_t ms = g->msave_stats;
    uint64_t members_unsaved = g->members_unsaved_pub;
    pthread_mutex_unlock(&g->smu);

    prom_family(f, "trib_members", "gauge", "Members of the federation by state, as this node sees them.");
    for (int s = 0; s < 4; s++)
        fprintf(f, "trib_members{state=\"%s\"} %zu\n", swim_state_name(s), counts[s]);
    prom_gauge(f, "trib_members_uncertified", "Chartered: nodes announced in the membership without a certificate "
               "from the federation that holds now for their domain: none held (a joining node until its certificate "
               "arrives), revoked, expired ... (not members, not in trib_members).", uncert);
    prom_family(f, "trib_member_saves_total", "counter",
                "Write transactions of member changes and this node's incarnation, made off the gossip loop.");
    prom_sample(f, "trib_member_saves_total", "result=\"ok\"", ms.ok);
    prom_sample(f, "trib_member_saves_total", "result=\"failed\"", ms.failed);
    prom_family(f, "trib_member_save_longest_seconds", "gauge",
                "The longest member save, its wait for the store's write lock and its fsync included.");
    fprintf(f, "trib_member_save_longest_seconds %.3f\n", (double)ms.longest_ms / 1e3);
    prom_counter(f, "trib_member_changes_unsaved_total",
                 "Member changes never saved: out of memory, or more members changed than the bound while a save "
                 "was held (the members are relearnt from peers).", members_unsaved);
    prom_family(f, "trib_gossip_messages_total", "counter", "Peer messages by direction and type.");
    for (int t = 0; t < TRANSPORT_MAX_TYPES; t++) {
        if (ts.msgs_in[t])
            fprintf(f, "trib_gossip_messages_total{dir=\"in\",type=\"%s\"} %" PRIu64 "\n", type_name(t),
                    ts.msgs_in[t]);
        if (ts.msgs_out[t])
            fprintf(f, "trib_gossip_messages_total{dir=\"out\",type=\"%s\"} %" PRIu64 "\n", type_name(t),
                    ts.msgs_out[t]);
    }
    prom_family(f, "trib_gossip_bytes_total", "counter", "Peer message bytes by direction.");
    prom_sample(f, "trib_gossip_bytes_total", "dir=\"in\"", ts.bytes_in);
    prom_sample(f, "trib_gossip_bytes_total", "dir=\"out\"", ts.bytes_out);
    prom_family(f, "trib_gossip_dropped_total", "counter", "Peer messages ignored, by reason.");
    const struct {
        const char *reason;
        uint64_t v;
    } drops[] = {{"oversize", ts.dropped_oversize},       {"undecodable", ts.dropped_undecodable},
                 {"bad_version", ts.dropped_bad_version}, {"malformed", ts.dropped_malformed},
                 {"spoofed_sender", ts.dropped_spoofed},  {"unknown_type", ts.dropped_unknown_type},
                 {"send_dropped", ts.send_dropped},       {"zap_denied", ts.zap_denied},
                 {"malformed_swim", ss.msgs_malformed},   {"malformed_catalog", rs.frames_malformed},
                 {"catalog_backlog", catalog_dropped},     {"catalog_over_frame_cap", rs.entries_over_cap},
                 {"handshake_failed_in", ts.handshake_failed_in}, {"handshake_failed_out", ts.handshake_failed_out},
                 {"uncertified", ts.dropped_uncertified}, {"send_no_key", ts.send_no_key},
                 {"hello_refused", ts.hellos_refused},    {"malformed_rider", riders_malformed},
                 {"claimed_address", ts.dropped_claimed_addr}, {"retired_key", ts.dropped_retired_key}};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++)
        fprintf(f, "trib_gossip_dropped_total{reason=\"%s\"} %" PRIu64 "\n", drops[i].reason, drops[i].v);
    prom_family(f, "trib_gossip_connections_total", "counter",
                "Connections dialled to peers (DEALERs opened), by lane: the priority one (membership, "
                "hellos, small federation-log syncs) and the bulk one (catalog, reads, the rest).");
    prom_sample(f, "trib_gossip_connections_total", "lane=\"priority\"", ts.dealers_opened[1]);
    prom_sample(f, "trib_gossip_connections_total", "lane=\"bulk\"", ts.dealers_opened[0]);
    prom_family(f, "trib_gossip_connections_up_total", "counter",
                "Of trib_gossip_connections_total, by lane, those whose first handshake succeeded: the "
                "difference is handshakes under way or failed.");
    prom_sample(f, "trib_gossip_connections_up_total", "lane=\"priority\"", ts.dealers_up[1]);
    prom_sample(f, "trib_gossip_connections_up_total", "lane=\"bulk\"", ts.dealers_up[0]);
    prom_counter(f, "trib_gossip_connections_warmed_total",
                 "Priority connections opened ahead of their first message, for a member seen alive (of "
                 "trib_gossip_connections_total{lane=\"priority\"}).", ts.dealers_warmed);
    prom_family(f, "trib_gossip_connections_closed_total", "counter",
                "Connections to peers closed so ZeroMQ stops redialling them, by reason: the member "
                "was declared dead or left (or came back: it gets fresh ones), or the connection never "
                "came up and carried nothing for 10 s.");
    prom_sample(f, "trib_gossip_connections_closed_total", "reason=\"member_gone\"", closed_gone);
    prom_sample(f, "trib_gossip_connections_closed_total", "reason=\"unanswered\"", ts.dealers_unanswered);
    prom_family(f, "trib_gossip_sends_held_total", "counter",
                "Messages held because their connection was not up yet (its handshake under way) or "
                "ZeroMQ's queue to the peer was full, by lane: on the priority one, a probe or an ack "
                "waiting for a handshake.");
    prom_sample(f, "trib_gossip_sends_held_total", "lane=\"priority\"", ts.sends_held[1]);
    prom_sample(f, "trib_gossip_sends_held_total", "lane=\"bulk\"", ts.sends_held[0]);
    prom_gauge(f, "trib_gossip_bulk_queued_bytes",
               "Bytes of routed read batches ZeroMQ holds for peers, not yet written to their connections "
               "(at most a peer's budget each, 32 MiB, and 128 MiB in all, plus one batch).", bulk_bytes);
    prom_counter(f, "trib_gossip_bulk_busy_total",
                 "Routed read batches not sent now because ZeroMQ held a peer's byte budget, or all peers' "
                 "(a requester that reads slowly or not at all): the stream paused and went on later.",
                 ts.bulk_busy);
    prom_counter(f, "trib_gossip_bulk_dropped_total",
                 "Connections to a requester closed with the routed read batches ZeroMQ held for it, dropped: its "
                 "streams expired (silent for the idle expiry) while it read nothing, or none of them was written for 10 s.", ts.bulk_dropped);
    prom_counter(f, "trib_peer_key_refused_total",
                 "Claims of a peer address whose node key is another node's (chartered), refused: the dials "
                 "to that address keep the key they had.", ts.peer_key_refused);
    prom_family(f, "trib_peer_keys_total", "counter",
                "Node keys of peer addresses replaced (a seed, a hand-over, a failed or unadmitted key) or "
                "forgotten at the table's cap, or claims not held (the table full of proven keys; a key the "
                "address's holder rotated out).");
    prom_sample(f, "trib_peer_keys_total", "event=\"replaced\"", ts.peer_keys_replaced);
    prom_sample(f, "trib_peer_keys_total", "event=\"evicted\"", ts.peer_keys_evicted);
    prom_sample(f, "trib_peer_keys_total", "event=\"refused_table_full\"", ts.peer_key_table_full);
    prom_sample(f, "trib_peer_keys_total", "event=\"refused_retired\"", ts.peer_key_stale);
    prom_family(f, "trib_catalog_entries_total", "counter", "Catalog entries received from peers, by outcome.");
    for (int r = 0; r < CAT_RESULT_COUNT; r++)
        fprintf(f, "trib_catalog_entries_total{result=\"%s\"} %" PRIu64 "\n", cat_result_name((cat_result_t)r),
                rs.entries[r]);
    prom_counter(f, "trib_catalog_entries_sent_total", "Catalog entries sent to peers.", rs.entries_sent);
    prom_counter(f, "trib_catalog_entries_pushed_total",
                 "Of those, entries pushed or forwarded (not anti-entropy answers).", rs.entries_pushed);
    prom_family(f, "trib_catalog_rounds_total", "counter",
                "Anti-entropy rounds: opened by us, opened by a peer and already in agreement, or needing a "
                "digest exchange.");
    prom_sample(f, "trib_catalog_rounds_total", "kind=\"opened\"", rs.summaries_sent);
    prom_sample(f, "trib_catalog_rounds_total", "kind=\"agreed\"", rs.summaries_same);
    prom_sample(f, "trib_catalog_rounds_total", "kind=\"differed\"", rs.summaries_in - rs.summaries_same);
    prom_family(f, "trib_catalog_gap_requests_total", "counter",
                "Requests for missing entries (MSG_CATALOG_WANT).");
    prom_sample(f, "trib_catalog_gap_requests_total", "dir=\"out\"", rs.wants_sent);
    prom_sample(f, "trib_catalog_gap_requests_total", "dir=\"in\"", rs.wants_in);
    prom_family(f, "trib_catalog_answers_total", "counter",
                "Anti-entropy answers: domains left out while their entries were being pushed, answers cut at "
                "their size bound (the peer pulls the rest).");
    prom_sample(f, "trib_catalog_answers_total", "kind=\"deferred\"", rs.answers_deferred);
    prom_sample(f, "trib_catalog_answers_total", "kind=\"cut\"", rs.answers_cut);
    prom_counter(f, "trib_catalog_more_refused_total",
                 "Answer frames saying 'more' not followed: no pull from (nor gap request to) the address they "
                 "name was outstanding, or they were no part of an answer (a peer naming another's address).",
                 rs.more_refused);
    prom_counter(f, "trib_catalog_pulls_ended_total",
                 "Pulls ended by their answer's last part (an older peer's expire 5 s after their last part).",
                 rs.pulls_ended);
    prom_counter(f, "trib_catalog_commits_total", "Write transactions of entries accepted from peers.", rs.batches);
    prom_counter(f, "trib_catalog_forks_total",
                 "Forks seen: two different entries signed by a domain's key at one seq.", rs.forks);
    prom_gauge(f, "trib_catalog_own_synced",
               "Whether this node's copy of its own domain is known current (publishing allowed).",
               (uint64_t)atomic_load(&g->own_synced));
    prom_counter(f, "trib_catalog_own_claims_dismissed_total",
                 "Times publishing went ahead although entries of this node's own domain beyond its head had been "
                 "refused as uncertified: no certificate of their key came in the bounded wait (unproven claims).",
                 (uint64_t)atomic_load(&g->own_dismissed));
    prom_family(f, "trib_catalog_accept_seconds_total", "counter",
                "Time spent on entries received from peers: verifying signatures (and finding copies already held), storing.");
    fprintf(f, "trib_catalog_accept_seconds_total{phase=\"verify\"} %.3f\n", (double)rs.verify_us / 1e6);
    fprintf(f, "trib_catalog_accept_seconds_total{phase=\"store\"} %.3f\n", (double)rs.store_us / 1e6);
    prom_family(f, "trib_swim_events_total", "counter", "Membership protocol events.");
    const struct {
        const char *ev;
        uint64_t v;
    } evs[] = {{"probe", ss.probes},           {"ack", ss.acks},
               {"nack", ss.nacks},             {"indirect_probe", ss.indirect_probes},
               {"suspect", ss.suspect_raised}, {"dead", ss.dead_declared},
               {"refuted", ss.refuted},        {"push_pull", ss.push_pulls},
               {"push_pull_same", ss.push_pulls_same}, {"signed", ss.sigs_made},
               {"verified", ss.sigs_verified}, {"self_elsewhere", ss.self_elsewhere}};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        fprintf(f, "trib_swim_events_total{event=\"%s\"} %" PRIu64 "\n", evs[i].ev, evs[i].v);
    prom_family(f, "trib_swim_claims_refused_total", "counter",
                "Membership claims about a member that needed its own signature (alive, left, a newer "
                "incarnation) and were refused: none, a forged one, later in a message that carried a forgery, or "
                "over the budget of signature checks per message (learnt later).");
    for (int r = 0; r < SWIM_REFUSED_COUNT; r++)
        fprintf(f, "trib_swim_claims_refused_total{reason=\"%s\"} %" PRIu64 "\n", swim_refused_name(r),
                ss.claims_refused[r]);
    prom_gauge(f, "trib_swim_local_health", "Lifeguard awareness (0 = healthy).", (uint64_t)health);
    prom_family(f, "trib_probe_rtt_ms", "histogram", "Direct probe round-trip time.");
    for (int i = 0; i < SWIM_RTT_BUCKETS; i++)
        fprintf(f, "trib_probe_rtt_ms_bucket{le=\"%u\"} %" PRIu64 "\n", swim_rtt_bounds_ms[i], ss.rtt_le[i]);
    fprintf(f, "trib_probe_rtt_ms_bucket{le=\"+Inf\"} %" PRIu64 "\ntrib_probe_rtt_ms_sum %.3f\n"
               "trib_probe_rtt_ms_count %" PRIu64 "\n",
            ss.rtt_count, ss.rtt_sum_ms, ss.rtt_count);
    prom_counter(f, "trib_read_owner_waits_total",
                 "Routed reads that waited for word of their owner: this node had just restarted, knowing it "
                 "only as dead or left from its stored member list.",
                 (uint64_t)atomic_load(&g->owner_waits));
    reads_metrics_render(g->reads, f);
    linkpool_metrics(g->pool, f);
    linkserve_metrics(g->links, f);
    if (g->o.fedlog)
        fedlog_metrics_render(g->o.fedlog, f);
    gossip__trust_render(g, f);
    gossip__answers_render(g, f);
}
