/* gossip/swim_send.c - encoding what SWIM sends (see swim_int.h).
 *
 * Owns: packing a body into the scratch buffer and handing it to io.send, choosing the updates
 * piggybacked on each Ping and Ack (least-sent, newest first, within the byte budget, with the
 * retransmit limit), and building Ping (with a probe's rider), Ack and push-pull bodies.
 * Must not: apply any claim or change a member's state, decide whom to probe, or call an io
 * callback but io.send and io.rider_out; touch sockets, threads, clocks or real randomness. */
#include <stdlib.h>
#include <string.h>

#include "gossip/swim_int.h"

/* ceil(log10(n + 1)) for n >= 1, without floating point. */
static uint32_t log10_ceil(size_t n)
{
    uint32_t d = 0;
    for (uint64_t p = 1; p < (uint64_t)n + 1; p *= 10) d++;
    return d ? d : 1;
}

static uint32_t retransmit_limit(const swim_t *s)
{
    return s->cfg.retransmit_mult * log10_ceil(s->n);
}

/* ================================================================ sending */

static uint8_t *scratch(swim_t *s, size_t len)
{
    if (len > s->bufcap) {
        size_t nc = s->bufcap ? s->bufcap : 2048;
        while (nc < len) nc *= 2;
        uint8_t *b = realloc(s->buf, nc);
        if (!b) return NULL;
        s->buf = b;
        s->bufcap = nc;
    }
    return s->buf;
}

void swim__send_msg(swim_t *s, const uint8_t *to_id, const char *addr, int type,
                     const ProtobufCMessage *msg)
{
    if (!addr || !*addr) return;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = scratch(s, len ? len : 1);
    if (!b) return;                               /* out of memory: the message is lost */
    protobuf_c_message_pack(msg, b);
    s->io.send(s->io.ctx, to_id, addr, type, b, len);
}

static size_t as_elem(size_t sz) { return sz + 1 + (sz < 128 ? 1 : sz < 16384 ? 2 : 3); }

/* Bytes m takes as one element of a repeated Member field. */
static size_t elem_size(member_t *m)
{
    if (m->esz && m->esz_inc == m->pub.incarnation && m->esz_state == (int)m->pub.state) return m->esz;
    size_t sz = trib__member__get_packed_size(&m->pub);
    m->esz = as_elem(sz);
    m->bsz = as_elem(m->has_sig ? sz - (2 + sizeof m->sig) : sz);
    m->esz_inc = m->pub.incarnation;
    m->esz_state = (int)m->pub.state;
    return m->esz;
}

/* What m costs of the piggyback budget: its facts. A signature (66 bytes on the wire) rides on
 * top, so signed membership carries as many updates per message as unsigned and spreads news as
 * fast; a Ping or Ack is then at most about twice the budget. */
static size_t budget_size(member_t *m)
{
    elem_size(m);
    return m->bsz;
}

/* Chooses the updates to piggyback on one message, least-sent then newest first, within the
 * byte budget (budget_size), and counts one transmit for each. Three kinds of state go first, whatever the
 * queue says: ours when the message we answer accused us (so the accuser hears the refutation
 * even if its gossip missed them), `vouch`'s when we forward an ack for it, and `about`'s (the
 * receiver) when we hold it SUSPECT or DEAD, so it can refute (memberlist's buddy system). */
static size_t bq_pick(swim_t *s, member_t *about, member_t *vouch, Trib__Member **out, size_t cap)
{
    size_t budget = s->cfg.max_piggyback_bytes, used = 0, n = 0;
    uint32_t limit = retransmit_limit(s);
    member_t *lead[3] = {s->remind && !s->left ? s->self : NULL, vouch,
                         about && (about->pub.state == SUSPECT || about->pub.state == DEAD) ? about : NULL};
    s->remind = false;
    s->round++;
    for (int i = 0; i < 3; i++) {
        member_t *m = lead[i];
        if (!m || m->picked == s->round) continue;
        size_t sz = budget_size(m);
        if (used + sz > budget) continue;
        out[n++] = &m->pub;
        used += sz;
        m->picked = s->round;
    }
    for (uint32_t t = 0; t < limit && n < cap && budget - used >= MIN_ELEM_BYTES; t++) {
        for (size_t i = s->nbq; i-- > 0 && n < cap;) {
            member_t *m = s->bq[i];
            if (m->tx != t || m->picked == s->round) continue;
            size_t sz = budget_size(m);
            if (used + sz > budget) continue;
            out[n++] = &m->pub;
            used += sz;
            m->picked = s->round;
        }
    }
    size_t w = 0;                                 /* count transmits, drop the spent ones */
    for (size_t i = 0; i < s->nbq; i++) {
        member_t *m = s->bq[i];
        if (m->picked == s->round) m->tx++;
        if (m->tx >= limit) m->queued = false;
        else s->bq[w++] = m;
    }
    s->nbq = w;
    return n;
}

static void send_ping(swim_t *s, member_t *about, const uint8_t *to_id, const char *addr, uint64_t seq,
                      const uint8_t *origin, const char *origin_addr, const uint8_t *rider, size_t rider_len)
{
    Trib__Member *ups[MAX_PIGGY];
    Trib__Ping p = TRIB__PING__INIT;
    p.rider.data = (uint8_t *)rider;
    p.rider.len = rider_len;
    p.probe_seq = seq;
    p.target.data = (uint8_t *)to_id;
    p.target.len = SWIM_ID_LEN;
    if (origin) {
        p.origin.data = (uint8_t *)origin;
        p.origin.len = SWIM_ID_LEN;
        p.origin_addr = (char *)origin_addr;
    }
    p.n_updates = bq_pick(s, about, NULL, ups, MAX_PIGGY);
    p.updates = ups;
    swim__send_msg(s, to_id, addr, TRIB__MSG_TYPE__MSG_PING, &p.base);
}

void swim__send_ping(swim_t *s, member_t *about, const uint8_t *to_id, const char *addr,
                      uint64_t seq, const uint8_t *origin, const char *origin_addr)
{
    send_ping(s, about, to_id, addr, seq, origin, origin_addr, NULL, 0);
}

void swim__send_probe(swim_t *s, member_t *m, uint64_t seq)
{
    uint8_t rider[SWIM_MAX_RIDER];
    size_t n = 0;
    if (s->io.rider_out && m->pub.state == ALIVE) {
        n = s->io.rider_out(s->io.ctx, m->id, m->pub.addr, rider, sizeof rider);
        if (n > sizeof rider) n = 0;
    }
    send_ping(s, m, m->id, m->pub.addr, seq, NULL, NULL, rider, n);
}

void swim__send_ack(swim_t *s, member_t *about, member_t *vouch, const uint8_t *to_id,
                     const char *addr, uint64_t seq, const uint8_t *target)
{
    Trib__Member *ups[MAX_PIGGY];
    Trib__Ack a = TRIB__ACK__INIT;
    a.probe_seq = seq;
    if (!id_eq(target, s->self->id)) {            /* our own ack names us by its sender alone */
        a.target.data = (uint8_t *)target;
        a.target.len = SWIM_ID_LEN;
    }
    a.n_updates = bq_pick(s, about, vouch, ups, MAX_PIGGY);
    a.updates = ups;
    swim__send_msg(s, to_id, addr, TRIB__MSG_TYPE__MSG_ACK, &a.base);
}

void swim__send_push_pull(swim_t *s, const uint8_t *to_id, const char *addr, bool join, bool reply)
{
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.join = join;
    pp.reply = reply;
    /* Everyone, self first and live members before gone ones, as much as fits SWIM_MAX_BODY
     * (only a table of very long addresses near the cap gets cut; push-pull repeats). */
    size_t n = 0, used = 8;
    s->pubs[n++] = &s->self->pub;
    used += elem_size(s->self);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < s->n; i++) {
            member_t *m = s->list[i];
            if (m == s->self || m->quiet || is_gone(m->pub.state) != (pass == 1)) continue;
            size_t sz = elem_size(m);
            if (used + sz > SWIM_MAX_BODY) continue;
            s->pubs[n++] = &m->pub;
            used += sz;
        }
    pp.members = s->pubs;
    pp.n_members = n;
    swim__send_msg(s, to_id, addr, TRIB__MSG_TYPE__MSG_PUSH_PULL, &pp.base);
    if (!reply) s->st.push_pulls++;
}

/* The periodic push-pull opens with the summary of our table only. */
void swim__send_summary(swim_t *s, const uint8_t *to_id, const char *addr)
{
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    uint8_t h[SUMMARY_LEN];
    swim__table_summary(s, h);
    pp.summary.data = h;
    pp.summary.len = sizeof h;
    swim__send_msg(s, to_id, addr, TRIB__MSG_TYPE__MSG_PUSH_PULL, &pp.base);
    s->st.push_pulls++;
}

