/* gossip/swim.c - SWIM membership with Lifeguard, as a pure state machine (see swim.h).
 *
 * Owns: the protocol: state transitions, suspicion timers (Lifeguard), the probe cycle,
 * push-pull, leave, retries and reaping; decoding and checking every peer body; the public API.
 * The member table is in swim_table.c, encoding and piggybacking in swim_send.c, signatures in
 * swim_sig.c (swim_int.h).
 * Must not: touch sockets, threads, clocks or real randomness; call anything but the swim_io_t
 * callbacks. The design follows HashiCorp memberlist (state.go, suspicion.go, awareness.go,
 * queue.go) with Lifeguard's local health and dynamic suspicion timeout. */
#include "gossip/swim.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gossip/swim_int.h"

const uint32_t swim_rtt_bounds_ms[SWIM_RTT_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250};

/* ================================================================ small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Lifeguard: every timeout is scaled by (awareness + 1). */
static uint64_t scaled(const swim_t *s, uint64_t ms) { return ms * (uint64_t)(s->awareness + 1); }

static void awareness_add(swim_t *s, int delta)
{
    int a = s->awareness + delta;
    int max = (int)s->cfg.awareness_max - 1;
    s->awareness = a < 0 ? 0 : a > max ? max : a;
}

/* memberlist pushPullScale: slower anti-entropy above 32 members. */
static uint64_t push_pull_period(const swim_t *s)
{
    uint64_t iv = s->cfg.push_pull_interval_ms;
    if (s->n <= 32) return iv;
    double mult = ceil(log2((double)s->n) - log2(32.0)) + 1.0;
    return (uint64_t)(mult * (double)iv);
}

/* Minimum suspicion timeout: mult * max(1, log10(N + 1)) * probe interval. */
static uint64_t suspicion_min(const swim_t *s)
{
    double scale = log10((double)s->n + 1.0);
    if (scale < 1.0) scale = 1.0;
    return (uint64_t)floor((double)s->cfg.suspicion_mult * scale * (double)s->cfg.probe_interval_ms);
}
/* A printable, space-free string of at most max chars (empty only if allowed). */
static bool str_ok(const char *p, size_t max, bool allow_empty)
{
    if (!p) return allow_empty;
    size_t n = strnlen(p, max + 1);
    if (n > max) return false;
    if (n == 0) return allow_empty;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) return false;
    return true;
}

static bool member_ok(const Trib__Member *m)
{
    return m && m->id.len == SWIM_ID_LEN && m->id.data &&
           str_ok(m->addr, SWIM_MAX_ADDR, false) &&
           str_ok(m->domain, SWIM_MAX_DOMAIN, true) &&
           str_ok(m->http, SWIM_MAX_ADDR, true) && str_ok(m->link, SWIM_MAX_ADDR, true) &&
           (int)m->state >= ALIVE && (int)m->state <= LEFT && (m->sig.len == 0 || m->sig.len == 64);
}

static bool id_ok(const ProtobufCBinaryData *b) { return b->len == SWIM_ID_LEN && b->data; }

/* ================================================================ suspicion (Lifeguard) */

static void susp_set_deadline(susp_t *x)
{
    uint64_t t = x->min_ms;
    if (x->k > 0) {                               /* memberlist remainingSuspicionTime */
        double frac = log((double)x->n + 1.0) / log((double)x->k + 1.0);
        double raw = (double)x->max_ms - frac * (double)(x->max_ms - x->min_ms);
        t = raw < (double)x->min_ms ? x->min_ms : (uint64_t)floor(raw);
    }
    x->deadline = x->start + t;
}

static void susp_start(swim_t *s, member_t *m, uint64_t now, const uint8_t *from)
{
    free(m->susp);
    m->susp = calloc(1, sizeof *m->susp);
    if (!m->susp) return;                         /* no timer: stays suspect until news */
    susp_t *x = m->susp;
    uint32_t k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
    if (k > MAX_CONFIRM) k = MAX_CONFIRM;
    if (s->n < (size_t)k + 2) k = 0;              /* not enough others to confirm */
    x->start = now;
    x->k = k;
    x->min_ms = suspicion_min(s);
    x->max_ms = x->min_ms * s->cfg.suspicion_max_mult;
    memcpy(x->who[0], from, SWIM_ID_LEN);
    x->nwho = 1;
    susp_set_deadline(x);
}

/* A further accuser. True when it is new and shortened the timeout. */
static bool susp_confirm(member_t *m, const uint8_t *from)
{
    susp_t *x = m->susp;
    if (!x || x->n >= x->k) return false;
    for (uint32_t i = 0; i < x->nwho; i++)
        if (id_eq(x->who[i], from)) return false;
    memcpy(x->who[x->nwho++], from, SWIM_ID_LEN);
    x->n++;
    susp_set_deadline(x);
    return true;
}

/* ================================================================ state transitions */

static void notify(swim_t *s, member_t *m, int old_state)
{
    swim__confirmed(s, m);
    if (s->io.changed) s->io.changed(s->io.ctx, &m->pub, old_state);
}

static void set_state(swim_t *s, member_t *m, int state, uint64_t now)
{
    if ((int)m->pub.state != state) {
        s->count[m->pub.state]--;
        s->count[state]++;
        m->pub.state = state;
        m->state_ms = now;
    }
    if (state != SUSPECT) {
        free(m->susp);
        m->susp = NULL;
    }
    if (is_gone(state)) {
        if (!m->retry_at) {                       /* first retry after base, then doubling */
            m->retry_at = now + s->cfg.retry_base_ms;
            m->retry_backoff = (uint32_t)min64((uint64_t)s->cfg.retry_base_ms * 2, s->cfg.retry_max_ms);
        }
    } else {
        m->retry_at = 0;
    }
}

static void refute(swim_t *s, uint64_t accused)
{
    member_t *me = s->self;
    uint64_t inc = me->pub.incarnation > accused ? me->pub.incarnation : accused;
    me->pub.incarnation = inc == UINT64_MAX ? inc : inc + 1;   /* never wrap to 0 */
    swim__sign(s, me, s->sk);
    swim__bq_push(s, me);
    awareness_add(s, 1);
    s->st.refuted++;
    notify(s, me, ALIVE);
}

static bool same_meta(const member_t *m, const Trib__Member *c)
{
    return strcmp(m->pub.addr, c->addr) == 0 && strcmp(m->pub.domain, c->domain) == 0 &&
           strcmp(m->pub.http, c->http) == 0 && strcmp(m->pub.link, c->link) == 0;
}

static int kind_of(int state) { return state == LEFT ? LEFT : ALIVE; }

/* Signed mode: a claim about us above our incarnation, or other facts at it, must carry our own
 * signature (from an earlier life of this node); a forgery of it is refused by every node, so it
 * is ignored rather than refuted (refuting would let anyone push our incarnation up). */
static void self_claim(swim_t *s, const Trib__Member *c)
{
    uint64_t mine = s->self->pub.incarnation;
    if (s->left) return;
    bool alive = c->state == ALIVE;
    bool news = alive ? c->incarnation > mine || (c->incarnation == mine && !same_meta(s->self, c))
                      : c->incarnation >= mine;
    if (news && (alive || c->incarnation > mine) && !swim__proven(s, c, kind_of((int)c->state)))
        return;
    /* news of us at another address: only our key's signature puts an address in a claim about us,
     * and an earlier life of this node is below our incarnation (a start takes the stored one + 1):
     * another process with our key (the node logs it). An accusation (suspect, dead, left) at our
     * incarnation is taken unproven, to be refuted: at another address it is proven first, else
     * its address is whatever its sender wrote (a hostile review: any peer could raise the alarm). */
    if (news && s->signing && c->addr && strcmp(c->addr, s->self->pub.addr) != 0 &&
        (alive || c->incarnation > mine || swim__proven(s, c, kind_of((int)c->state)))) {
        s->st.self_elsewhere++;
        snprintf(s->st.last_self_elsewhere, sizeof s->st.last_self_elsewhere, "%s", c->addr);
    }
    if (!alive) s->remind = true;                 /* even a stale accusation: the sender is behind */
    if (news) refute(s, c->incarnation);
}

/* m takes proven claim c's incarnation and, in signed mode, the facts its signature covers and
 * the signature (so what we repeat verifies); unsigned, a non-ALIVE claim moves only the
 * incarnation. On allocation failure the old strings stay. */
static void take_claim(swim_t *s, member_t *m, const Trib__Member *c)
{
    if (s->signing || c->state == ALIVE) {
        (void)swim__set_str(&m->pub.addr, c->addr);
        (void)swim__set_str(&m->pub.domain, c->domain);
        (void)swim__set_str(&m->pub.http, c->http);
        (void)swim__set_str(&m->pub.link, c->link);
    }
    m->pub.incarnation = c->incarnation;
    if (s->signing) swim__take_sig(m, c);
}

static void apply_alive(swim_t *s, uint64_t now, member_t *m, const Trib__Member *c)
{
    if (!m) {
        if (!swim__room(s)) {                     /* before the signature check: it costs */
            s->st.members_dropped++;
            return;
        }
        if (s->io.retired && s->io.retired(s->io.ctx, c->id.data)) return;   /* stale: handed over */
        if (!swim__proven(s, c, ALIVE)) return;
        m = swim__member_add(s, c);
        if (!m) return;
        if (s->signing) swim__take_sig(m, c);
        m->pub.state = ALIVE;
        m->state_ms = now;
        swim__bq_push(s, m);
        notify(s, m, SWIM_NEW);
        return;
    }
    if (c->incarnation <= m->pub.incarnation || !swim__proven(s, c, ALIVE)) return;
    int old = m->pub.state;
    take_claim(s, m, c);
    set_state(s, m, ALIVE, now);
    swim__bq_push(s, m);
    notify(s, m, old);
}

/* c: the claim, NULL for our own suspicion (at the incarnation we hold). A claim above the held
 * incarnation must prove it (the member's ALIVE signature at it): hearsay may accuse, but only at
 * an incarnation the member itself announced, so its refutation always outbids it. */
static void apply_suspect(swim_t *s, uint64_t now, member_t *m, const Trib__Member *c, const uint8_t *from)
{
    uint64_t inc = c ? c->incarnation : m ? m->pub.incarnation : 0;
    if (!m || inc < m->pub.incarnation) return;
    if (m->pub.state == SUSPECT && inc == m->pub.incarnation) {
        /* Another accuser. Only our own independent evidence is re-gossiped. */
        if (susp_confirm(m, from) && id_eq(from, s->self->id)) swim__bq_push(s, m);
        return;
    }
    if (is_gone(m->pub.state) && inc == m->pub.incarnation) return;
    if (c && inc > m->pub.incarnation && !swim__proven(s, c, ALIVE)) return;
    int old = m->pub.state;
    if (c && inc > m->pub.incarnation) take_claim(s, m, c);
    set_state(s, m, SUSPECT, now);
    susp_start(s, m, now, from);
    m->verify = id_eq(from, s->self->id) ? VERIFY_PROBES - 1 : VERIFY_PROBES;
    swim__bq_push(s, m);
    notify(s, m, old);
}

/* A LEFT is always the member's own word (signed LEFT), or a departure could be faked. An
 * unsigned node's DEAD above the held incarnation proves it as apply_suspect does (signed, a DEAD
 * never comes here: apply_claim). */
static void apply_gone(swim_t *s, uint64_t now, member_t *m, const Trib__Member *c)
{
    uint64_t inc = c->incarnation;
    int state = (int)c->state;
    if (!m || inc < m->pub.incarnation) return;
    int old = m->pub.state;
    if (inc == m->pub.incarnation &&
        (old == LEFT || (old == DEAD && state == DEAD)))
        return;                                   /* at equal incarnation LEFT beats DEAD */
    bool higher = inc > m->pub.incarnation;
    if ((state == LEFT || higher) && !swim__proven(s, c, kind_of(state))) return;
    if (state == LEFT || higher) take_claim(s, m, c);
    if (state == LEFT) m->quiet = false;          /* its own signed LEFT now: repeated as any */
    set_state(s, m, state, now);
    swim__bq_push(s, m);
    notify(s, m, old);
}

/* One claim from the authenticated sender `from`. In a push-pull (and always in signed mode) a
 * DEAD is only suspected, so the accused gets a chance to refute (memberlist mergeState). */
static void apply_claim(swim_t *s, uint64_t now, const Trib__Member *c, const uint8_t *from,
                        bool push_pull)
{
    if (id_eq(c->id.data, s->self->id)) {
        self_claim(s, c);
        return;
    }
    member_t *m = swim__find(s, c->id.data);
    if (m && m->retired && c->state != LEFT) return;   /* handed over: only its own LEFT is news */
    switch (c->state) {
    case ALIVE:   apply_alive(s, now, m, c); break;
    case SUSPECT: apply_suspect(s, now, m, c, from); break;
    case DEAD:
        /* Signed, a DEAD is hearsay nobody can prove (x's signature at i only says x was
         * alive at i): only our own suspicion timer declares x DEAD, so x's refutation wins. */
        if (push_pull || s->signing) apply_suspect(s, now, m, c, from);
        else apply_gone(s, now, m, c);
        break;
    case LEFT:    apply_gone(s, now, m, c); break;
    default:      break;                          /* checked before */
    }
}

static bool updates_ok(Trib__Member **u, size_t n)
{
    if (n > MAX_UPDATES_IN) return false;
    for (size_t i = 0; i < n; i++)
        if (!member_ok(u[i])) return false;
    return true;
}

static void apply_updates(swim_t *s, uint64_t now, Trib__Member **u, size_t n, const uint8_t *from)
{
    for (size_t i = 0; i < n; i++) apply_claim(s, now, u[i], from, false);
}

/* ================================================================ probing */

/* A member we hold SUSPECT is probed first, up to VERIFY_PROBES times while the suspicion
 * lasts: the ping carries the accusation, so a live suspect answers with its refutation even
 * when the gossip of it missed us (bounded retransmits do miss a node now and then); a dead
 * one fails our own probe, which is independent evidence. It replaces a round-robin probe,
 * so it costs no extra messages per interval. */
static member_t *next_probe_target(swim_t *s)
{
    if (s->count[SUSPECT])
        for (size_t i = 0; i < s->n; i++) {
            member_t *m = s->list[i];
            if (m->pub.state == SUSPECT && m->verify) {
                m->verify--;
                return m;
            }
        }
    for (size_t tries = 0; tries <= s->n; tries++) {
        if (s->probe_idx >= s->n) {
            s->probe_idx = 0;
            for (size_t i = s->n; i > 1; i--) {  /* reshuffle each round */
                size_t j = rng_below(s, i);
                member_t *t = s->list[i - 1];
                s->list[i - 1] = s->list[j];
                s->list[j] = t;
            }
        }
        member_t *m = s->list[s->probe_idx++];
        if (m != s->self && !is_gone(m->pub.state)) return m;
    }
    return NULL;
}

static void probe_start(swim_t *s, uint64_t now)
{
    s->next_probe = now + scaled(s, s->cfg.probe_interval_ms);
    member_t *m = next_probe_target(s);
    if (!m) return;
    probe_t *p = &s->probe;
    memset(p, 0, sizeof *p);
    p->active = true;
    p->seq = ++s->seq;
    memcpy(p->target, m->id, SWIM_ID_LEN);
    p->sent = now;
    p->indirect_at = now + scaled(s, s->cfg.probe_timeout_ms);
    p->end = now + scaled(s, s->cfg.probe_interval_ms);
    s->st.probes++;
    swim__send_probe(s, m, p->seq);
}

static void probe_indirect(swim_t *s, uint64_t now)
{
    probe_t *p = &s->probe;
    p->indirect_done = true;
    member_t *m = swim__find(s, p->target);
    if (!m || is_gone(m->pub.state)) {
        p->active = false;                        /* learnt meanwhile; nothing to decide */
        return;
    }
    member_t *peers[SWIM_MAX_INDIRECT];
    size_t k = swim__pick_random(s, swim__want_alive, now, p->target, s->cfg.indirect_checks,
                                 peers);
    Trib__PingReq r = TRIB__PING_REQ__INIT;
    r.probe_seq = p->seq;
    r.target.data = m->id;
    r.target.len = SWIM_ID_LEN;
    r.target_addr = m->pub.addr;
    for (size_t i = 0; i < k; i++) {
        memcpy(p->relays[i], peers[i]->id, SWIM_ID_LEN);
        swim__send_msg(s, peers[i]->id, peers[i]->pub.addr, TRIB__MSG_TYPE__MSG_PING_REQ, &r.base);
        s->st.indirect_probes++;
    }
    p->nrelays = (uint32_t)k;
}

static void probe_failed(swim_t *s, uint64_t now)
{
    probe_t *p = &s->probe;
    p->active = false;
    /* Lifeguard: missing nacks mean the fault may be ours; without relays, any failure. */
    awareness_add(s, p->nrelays ? (int)(p->nrelays - p->nacks) : 1);
    member_t *m = swim__find(s, p->target);
    if (!m || is_gone(m->pub.state)) return;
    if (m->pub.state == ALIVE) s->st.suspect_raised++;
    apply_suspect(s, now, m, NULL, s->self->id);
}

static int relay_of(const probe_t *p, const uint8_t *from)
{
    for (uint32_t i = 0; i < p->nrelays; i++)
        if (id_eq(p->relays[i], from)) return (int)i;
    return -1;
}

/* ================================================================ handlers */

static const char *reply_addr(const swim_t *s, const uint8_t *from, const char *from_addr)
{
    if (from_addr && *from_addr) return from_addr;
    const member_t *m = swim__find(s, from);
    return m ? m->pub.addr : NULL;
}

/* The handlers get the decoded body (swim_handle unpacks and frees it) and return -1 when a field
 * fails its check, before anything is applied. */
static int on_ping(swim_t *s, uint64_t now, const uint8_t *from, const char *raddr, const Trib__Ping *p)
{
    if (!id_ok(&p->target) || (p->origin.len && !id_ok(&p->origin)) ||
        !str_ok(p->origin_addr, SWIM_MAX_ADDR, true) || !updates_ok(p->updates, p->n_updates) ||
        p->rider.len > SWIM_MAX_RIDER)
        return -1;
    if (s->left) return 0;
    apply_updates(s, now, p->updates, p->n_updates, from);
    if (p->probe_seq == 0 || !id_eq(p->target.data, s->self->id)) {
        if (s->remind && raddr) swim__send_ping(s, swim__find(s, from), from, raddr, 0, NULL, NULL);
        return 0;
    }
    swim__send_ack(s, swim__find(s, from), NULL, from, raddr, p->probe_seq, s->self->id);
    if (p->rider.len && raddr && s->io.rider_in) s->io.rider_in(s->io.ctx, from, raddr, p->rider.data, p->rider.len);
    return 0;
}

static int on_ack(swim_t *s, uint64_t now, const uint8_t *from, const char *raddr, const Trib__Ack *a)
{
    if ((a->target.len && !id_ok(&a->target)) || !updates_ok(a->updates, a->n_updates)) return -1;
    const uint8_t *target = a->target.len ? a->target.data : from;   /* none: the sender acks itself */
    if (s->left) return 0;
    apply_updates(s, now, a->updates, a->n_updates, from);
    if (s->remind && raddr) swim__send_ping(s, swim__find(s, from), from, raddr, 0, NULL, NULL);
    probe_t *p = &s->probe;
    if (p->active && a->probe_seq == p->seq && id_eq(target, p->target)) {
        bool direct = id_eq(from, p->target);
        if (!direct && relay_of(p, from) < 0) return 0;   /* not someone we asked */
        p->active = false;
        s->st.acks++;
        awareness_add(s, -1);
        if (direct) {
            double rtt = (double)(now - p->sent);
            s->st.rtt_count++;
            s->st.rtt_sum_ms += rtt;
            for (int i = 0; i < SWIM_RTT_BUCKETS; i++)
                if (rtt <= swim_rtt_bounds_ms[i]) s->st.rtt_le[i]++;
        }
        return 0;
    }
    for (size_t i = 0; i < s->nrelays; i++) {
        relay_t *r = &s->relays[i];
        if (r->seq != a->probe_seq || !id_eq(from, r->target) || !id_eq(target, r->target))
            continue;
        swim__send_ack(s, swim__find(s, r->origin), swim__find(s, r->target), r->origin,
                       r->origin_addr, r->origin_seq, r->target);
        s->relays[i] = s->relays[--s->nrelays];
        break;
    }
    return 0;
}

static int on_ping_req(swim_t *s, uint64_t now, const uint8_t *from, const char *raddr,
                       const Trib__PingReq *q)
{
    if (!id_ok(&q->target) || !str_ok(q->target_addr, SWIM_MAX_ADDR, false)) return -1;
    if (s->left || !raddr) return 0;
    if (id_eq(q->target.data, s->self->id)) {     /* asked to probe ourselves: we are alive */
        swim__send_ack(s, swim__find(s, from), NULL, from, raddr, q->probe_seq, s->self->id);
        return 0;
    }
    if (s->nrelays >= MAX_RELAYS) return 0;       /* busy: the origin decides without us */
    relay_t *r = &s->relays[s->nrelays++];
    r->seq = ++s->seq;
    r->origin_seq = q->probe_seq;
    r->deadline = now + s->cfg.probe_timeout_ms;
    memcpy(r->origin, from, SWIM_ID_LEN);
    memcpy(r->target, q->target.data, SWIM_ID_LEN);
    snprintf(r->origin_addr, sizeof r->origin_addr, "%s", raddr);
    s->st.relayed++;
    swim__send_ping(s, swim__find(s, r->target), r->target, q->target_addr, r->seq, r->origin,
                    r->origin_addr);
    return 0;
}

static int on_nack(swim_t *s, const uint8_t *from, const Trib__Nack *k)
{
    if (!id_ok(&k->target)) return -1;
    probe_t *p = &s->probe;
    if (!p->active || k->probe_seq != p->seq || !id_eq(k->target.data, p->target)) return 0;
    int i = relay_of(p, from);
    if (i >= 0 && !p->nacked[i]) {
        p->nacked[i] = true;
        p->nacks++;
        s->st.nacks++;
    }
    return 0;
}

static int on_push_pull(swim_t *s, uint64_t now, const uint8_t *from, const char *raddr,
                        const Trib__PushPull *pp)
{
    for (size_t i = 0; i < pp->n_members; i++)
        if (!member_ok(pp->members[i])) return -1;
    if (s->left) return 0;
    if (pp->summary.len) {       /* a periodic opener: a full exchange only when the tables differ */
        uint8_t h[SUMMARY_LEN];
        swim__table_summary(s, h);
        if (pp->summary.len != SUMMARY_LEN || memcmp(h, pp->summary.data, SUMMARY_LEN) != 0) {
            if (raddr) swim__send_push_pull(s, from, raddr, false, false);
        } else {
            s->st.push_pulls_same++;
        }
        return 0;
    }
    /* Merge first, so the reply already carries any refutation of what they said about us. */
    for (size_t i = 0; i < pp->n_members; i++) apply_claim(s, now, pp->members[i], from, true);
    if (!pp->reply && raddr) swim__send_push_pull(s, from, raddr, false, true);
    return 0;
}

/* A peer we do not know talks to us: the gossip of its join missed us (or we reaped it).
 * Exchange state with it, at most once per probe interval. */
static void greet_stranger(swim_t *s, uint64_t now, const uint8_t *from, const char *raddr)
{
    if (s->left || !raddr || now < s->next_stranger || swim__find(s, from)) return;
    s->next_stranger = now + s->cfg.probe_interval_ms;
    swim__send_push_pull(s, from, raddr, false, false);
}

/* ================================================================ timers */

static void recompute_deadline(swim_t *s)
{
    if (s->left) {
        s->deadline = UINT64_MAX;
        return;
    }
    if (!s->started) {
        s->deadline = 0;
        return;
    }
    uint64_t d = s->next_gossip;
    if (s->probe.active) d = min64(d, s->probe.indirect_done ? s->probe.end : s->probe.indirect_at);
    else d = min64(d, s->next_probe);
    if (s->cfg.push_pull_interval_ms) d = min64(d, s->next_push_pull);
    for (size_t i = 0; i < s->nrelays; i++) d = min64(d, s->relays[i].deadline);
    for (size_t i = 0; i < s->nseeds; i++) d = min64(d, s->seeds[i].retry_at);
    for (size_t i = 0; i < s->n; i++) {
        const member_t *m = s->list[i];
        if (m->susp) d = min64(d, m->susp->deadline);
        if (is_gone(m->pub.state) && m != s->self) {
            if (m->retry_at) d = min64(d, m->retry_at);
            d = min64(d, m->state_ms + s->cfg.reap_ms);
        }
    }
    s->deadline = d;
}

static bool seed_satisfied(const swim_t *s, const char *addr)
{
    if (strcmp(addr, s->self->pub.addr) == 0) return true;
    for (size_t i = 0; i < s->n; i++) {
        const member_t *m = s->list[i];
        if (m != s->self && m->pub.state == ALIVE && strcmp(m->pub.addr, addr) == 0) return true;
    }
    return false;
}

static void tick_seeds(swim_t *s, uint64_t now)
{
    for (size_t i = 0; i < s->nseeds; i++) {
        seed_t *sd = &s->seeds[i];
        if (now < sd->retry_at) continue;
        if (seed_satisfied(s, sd->addr)) {        /* look again later, start over if lost */
            sd->backoff = s->cfg.retry_base_ms;
            sd->retry_at = now + s->cfg.retry_max_ms;
            continue;
        }
        swim__send_push_pull(s, NULL, sd->addr, true, false);
        sd->retry_at = now + sd->backoff;
        sd->backoff = (uint32_t)min64((uint64_t)sd->backoff * 2, s->cfg.retry_max_ms);
    }
}

static void tick_members(swim_t *s, uint64_t now)
{
    for (size_t i = 0; i < s->n;) {
        member_t *m = s->list[i];
        if (m == s->self) { i++; continue; }
        if (m->pub.state == SUSPECT && m->susp && now >= m->susp->deadline) {
            set_state(s, m, DEAD, now);           /* suspicion ran out */
            s->st.dead_declared++;
            swim__bq_push(s, m);
            notify(s, m, SUSPECT);
        }
        if (is_gone(m->pub.state)) {
            if (now >= m->state_ms + s->cfg.reap_ms) {
                swim__member_remove(s, m);        /* the last one moved into slot i */
                continue;
            }
            if (m->retry_at && now >= m->retry_at) {
                if (m->restored && ++m->restored > SWIM_RESTORED_ASKS + 1)   /* the first ones unanswered */
                    swim__confirmed(s, m);
                swim__send_push_pull(s, m->id, m->pub.addr, false, false);
                m->retry_at = now + m->retry_backoff;
                m->retry_backoff = (uint32_t)min64((uint64_t)m->retry_backoff * 2, s->cfg.retry_max_ms);
            }
        }
        i++;
    }
}

static void tick_relays(swim_t *s, uint64_t now)
{
    for (size_t i = 0; i < s->nrelays;) {
        relay_t *r = &s->relays[i];
        if (now < r->deadline) { i++; continue; }
        Trib__Nack k = TRIB__NACK__INIT;
        k.probe_seq = r->origin_seq;
        k.target.data = r->target;
        k.target.len = SWIM_ID_LEN;
        swim__send_msg(s, r->origin, r->origin_addr, TRIB__MSG_TYPE__MSG_NACK, &k.base);
        s->relays[i] = s->relays[--s->nrelays];
    }
}

static void tick_gossip(swim_t *s, uint64_t now)
{
    s->next_gossip = now + s->cfg.gossip_interval_ms;
    if (!s->nbq) return;
    member_t *to[MAX_GOSSIP_NODES];
    size_t k = swim__pick_random(s, swim__want_gossip, now, NULL, s->cfg.gossip_nodes, to);
    for (size_t i = 0; i < k && s->nbq; i++)
        swim__send_ping(s, to[i], to[i]->id, to[i]->pub.addr, 0, NULL, NULL);
}

static void tick_push_pull(swim_t *s, uint64_t now)
{
    s->next_push_pull = now + push_pull_period(s);
    member_t *to[1];
    if (swim__pick_random(s, swim__want_alive, now, NULL, 1, to))
        swim__send_summary(s, to[0]->id, to[0]->pub.addr);
}

/* ================================================================ public API */

void swim_config_default(swim_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->probe_interval_ms = SWIM_DEFAULT_PROBE_INTERVAL_MS;
    c->probe_timeout_ms = SWIM_DEFAULT_PROBE_TIMEOUT_MS;
    c->indirect_checks = SWIM_DEFAULT_INDIRECT_CHECKS;
    c->suspicion_mult = SWIM_DEFAULT_SUSPICION_MULT;
    c->suspicion_max_mult = SWIM_DEFAULT_SUSPICION_MAX_MULT;
    c->gossip_interval_ms = SWIM_DEFAULT_GOSSIP_INTERVAL_MS;
    c->gossip_nodes = SWIM_DEFAULT_GOSSIP_NODES;
    c->push_pull_interval_ms = SWIM_DEFAULT_PUSH_PULL_INTERVAL_MS;
    c->retransmit_mult = SWIM_DEFAULT_RETRANSMIT_MULT;
    c->awareness_max = SWIM_DEFAULT_AWARENESS_MAX;
    c->retry_base_ms = 1000;
    c->retry_max_ms = SWIM_DEFAULT_RETRY_MAX_MS;
    c->max_piggyback_bytes = 1400;
    c->max_members = 4096;
    c->gossip_to_dead_ms = 30000;
    c->reap_ms = 24ull * 3600 * 1000;
}

static int config_check(const swim_config_t *c, char *err, size_t errlen)
{
#define NEED(cond, what) do { if (!(cond)) { set_err(err, errlen, "swim config: %s", what); return -1; } } while (0)
    NEED(c->probe_interval_ms > 0, "probe_interval_ms must be > 0");
    NEED(c->probe_timeout_ms > 0 && c->probe_timeout_ms < c->probe_interval_ms,
         "probe_timeout_ms must be > 0 and < probe_interval_ms");
    NEED(c->indirect_checks <= SWIM_MAX_INDIRECT, "indirect_checks must be <= 16");
    NEED(c->suspicion_mult >= 1, "suspicion_mult must be >= 1");
    NEED(c->suspicion_max_mult >= 1, "suspicion_max_mult must be >= 1");
    NEED(c->gossip_interval_ms > 0, "gossip_interval_ms must be > 0");
    NEED(c->gossip_nodes <= MAX_GOSSIP_NODES, "gossip_nodes must be <= 64");
    NEED(c->retransmit_mult >= 1, "retransmit_mult must be >= 1");
    NEED(c->awareness_max >= 1 && c->awareness_max <= 64, "awareness_max must be 1..64");
    NEED(c->retry_base_ms > 0 && c->retry_max_ms >= c->retry_base_ms,
         "retry_base_ms must be > 0 and <= retry_max_ms");
    NEED(c->max_piggyback_bytes >= 256 && c->max_piggyback_bytes <= SWIM_MAX_BODY / 2,
         "max_piggyback_bytes must be 256..524288");
    NEED(c->max_members >= 2 && c->max_members <= 1u << 20, "max_members must be 2..1048576");
    NEED(c->reap_ms > 0 && c->reap_ms <= (1ull << 50), "reap_ms must be 1..2^50");
#undef NEED
    return 0;
}

swim_t *swim_new(const swim_config_t *cfg, const Trib__Member *self, const swim_io_t *io,
                 uint64_t rng_seed, char *err, size_t errlen)
{
    swim_config_t def;
    if (!cfg) {
        swim_config_default(&def);
        cfg = &def;
    }
    if (config_check(cfg, err, errlen)) return NULL;
    if (!io || !io->send) {
        set_err(err, errlen, "swim_new: io.send is required");
        return NULL;
    }
    if (!self || !id_ok(&self->id) || !str_ok(self->addr, SWIM_MAX_ADDR, false) ||
        !str_ok(self->domain, SWIM_MAX_DOMAIN, true) || !str_ok(self->http, SWIM_MAX_ADDR, true) ||
        !str_ok(self->link, SWIM_MAX_ADDR, true)) {
        set_err(err, errlen, "swim_new: self needs a 32-byte id and a printable addr (<= %d chars)",
                SWIM_MAX_ADDR);
        return NULL;
    }
    swim_t *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->cfg = *cfg;
    s->io = *io;
    s->rng = rng_seed;
    s->hseed = rng_next(s);
    Trib__Member me = *self;
    me.state = ALIVE;
    if (swim__ensure_cap(s, 1) || !(s->self = swim__member_new(&me))) goto oom;
    s->list[s->n++] = s->self;
    swim__tab_put(s, s->self);
    s->count[ALIVE]++;
    return s;
oom:
    set_err(err, errlen, "swim_new: out of memory");
    swim_destroy(&s);
    return NULL;
}

void swim_destroy(swim_t **sp)
{
    if (!sp || !*sp) return;
    swim_t *s = *sp;
    for (size_t i = 0; i < s->n; i++) swim__member_free(s->list[i]);
    if (!s->n) swim__member_free(s->self);
    sodium_memzero(s->sk, sizeof s->sk);
    free(s->list);
    free(s->bq);
    free(s->tmp);
    free(s->pubs);
    free(s->tab);
    free(s->buf);
    free(s);
    *sp = NULL;
}

int swim_add_seed(swim_t *s, const char *addr)
{
    if (!str_ok(addr, SWIM_MAX_ADDR, false) || s->nseeds >= SWIM_MAX_SEEDS) return -1;
    for (size_t i = 0; i < s->nseeds; i++)
        if (strcmp(s->seeds[i].addr, addr) == 0) return 0;
    seed_t *sd = &s->seeds[s->nseeds++];
    snprintf(sd->addr, sizeof sd->addr, "%s", addr);
    sd->retry_at = 0;
    sd->backoff = s->cfg.retry_base_ms;
    recompute_deadline(s);
    return 0;
}

int swim_is_seed(const swim_t *s, const char *addr)
{
    for (size_t i = 0; addr && i < s->nseeds; i++)
        if (strcmp(s->seeds[i].addr, addr) == 0) return 1;
    return 0;
}

size_t swim_seeds(const swim_t *s) { return s->nseeds; }

int swim_restore(swim_t *s, uint64_t now_ms, const Trib__Member *m)
{
    if (!member_ok(m)) return -1;
    if (id_eq(m->id.data, s->self->id)) {
        if (m->incarnation > s->self->pub.incarnation) {
            s->self->pub.incarnation = m->incarnation;
            swim__sign(s, s->self, s->sk);
        }
        return 0;
    }
    member_t *x = swim__find(s, m->id.data);
    if (x) return 0;                              /* already known: the live view wins */
    Trib__Member c = *m;
    c.state = m->state == LEFT ? LEFT : DEAD;
    x = swim__member_add(s, &c);
    if (!x) return -1;
    if (s->signing) swim__take_sig(x, m);         /* our own store: what the member signed */
    x->state_ms = now_ms;
    x->retry_backoff = s->cfg.retry_base_ms;
    x->retry_at = now_ms;                         /* at the next tick */
    x->restored = 1;
    s->nrestored++;
    recompute_deadline(s);
    return 0;
}

void swim_tick(swim_t *s, uint64_t now)
{
    if (s->left) return;
    if (!s->started) {                            /* stagger the first rounds */
        s->started = true;
        s->next_probe = now + rng_below(s, s->cfg.probe_interval_ms);
        s->next_gossip = now + rng_below(s, s->cfg.gossip_interval_ms);
        if (s->cfg.push_pull_interval_ms)
            s->next_push_pull = now + s->cfg.push_pull_interval_ms / 2 +
                                rng_below(s, s->cfg.push_pull_interval_ms / 2 + 1);
    }
    probe_t *p = &s->probe;
    if (p->active && !p->indirect_done && now >= p->indirect_at) probe_indirect(s, now);
    if (p->active && now >= p->end) probe_failed(s, now);
    tick_relays(s, now);
    tick_members(s, now);
    tick_seeds(s, now);
    if (!p->active && now >= s->next_probe) probe_start(s, now);
    if (now >= s->next_gossip) tick_gossip(s, now);
    if (s->cfg.push_pull_interval_ms && now >= s->next_push_pull) tick_push_pull(s, now);
    recompute_deadline(s);
}

uint64_t swim_next_deadline(const swim_t *s)
{
    return s->deadline;
}

static const ProtobufCMessageDescriptor *body_descriptor(int msg_type)
{
    switch (msg_type) {
    case TRIB__MSG_TYPE__MSG_PING:      return &trib__ping__descriptor;
    case TRIB__MSG_TYPE__MSG_ACK:       return &trib__ack__descriptor;
    case TRIB__MSG_TYPE__MSG_PING_REQ:  return &trib__ping_req__descriptor;
    case TRIB__MSG_TYPE__MSG_NACK:      return &trib__nack__descriptor;
    case TRIB__MSG_TYPE__MSG_PUSH_PULL: return &trib__push_pull__descriptor;
    default:                            return NULL;
    }
}

int swim_handle(swim_t *s, uint64_t now, const uint8_t from[SWIM_ID_LEN], const char *from_addr,
                int msg_type, const uint8_t *body, size_t len)
{
    int rc = -1;
    const ProtobufCMessageDescriptor *desc = body_descriptor(msg_type);
    if (!from || len > SWIM_MAX_BODY || (len && !body) || !str_ok(from_addr, SWIM_MAX_ADDR, true))
        goto out;
    if (id_eq(from, s->self->id)) {               /* our own echo */
        rc = 0;
        goto out;
    }
    static const uint8_t empty[1];
    ProtobufCMessage *msg = desc ? protobuf_c_message_unpack(desc, NULL, len, body ? body : empty) : NULL;
    if (!msg) goto out;
    const char *raddr = reply_addr(s, from, from_addr);
    s->from = from;
    s->forged = false;
    s->verifies = 0;
    switch (msg_type) {
    case TRIB__MSG_TYPE__MSG_PING:      rc = on_ping(s, now, from, raddr, (const Trib__Ping *)msg); break;
    case TRIB__MSG_TYPE__MSG_ACK:       rc = on_ack(s, now, from, raddr, (const Trib__Ack *)msg); break;
    case TRIB__MSG_TYPE__MSG_PING_REQ:  rc = on_ping_req(s, now, from, raddr, (const Trib__PingReq *)msg); break;
    case TRIB__MSG_TYPE__MSG_NACK:      rc = on_nack(s, from, (const Trib__Nack *)msg); break;
    case TRIB__MSG_TYPE__MSG_PUSH_PULL: rc = on_push_pull(s, now, from, raddr, (const Trib__PushPull *)msg); break;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    s->remind = false;
    s->from = NULL;
    if (rc == 0 && msg_type != TRIB__MSG_TYPE__MSG_PUSH_PULL) greet_stranger(s, now, from, raddr);
    recompute_deadline(s);
out:
    if (rc < 0) s->st.msgs_malformed++;
    return rc;
}

void swim_leave(swim_t *s, uint64_t now)
{
    if (s->left) return;
    member_t *me = s->self;
    if (me->pub.incarnation < UINT64_MAX) me->pub.incarnation++;
    set_state(s, me, LEFT, now);
    swim__sign(s, me, s->sk);
    me->retry_at = 0;
    swim__bq_push(s, me);
    notify(s, me, ALIVE);
    Trib__Member *one[1] = {&me->pub};
    Trib__PushPull pp = TRIB__PUSH_PULL__INIT;
    pp.reply = true;                              /* merged, never answered */
    pp.members = one;
    pp.n_members = 1;
    for (size_t i = 0; i < s->n; i++) {
        member_t *m = s->list[i];
        if (m != me && !is_gone(m->pub.state))
            swim__send_msg(s, m->id, m->pub.addr, TRIB__MSG_TYPE__MSG_PUSH_PULL, &pp.base);
    }
    s->left = true;
    recompute_deadline(s);
}

int swim_rekey(swim_t *s, const uint8_t id[SWIM_ID_LEN], const uint8_t *sk, uint64_t now)
{
    member_t *old = s->self, *m = swim__find(s, id);
    if (m == old) return 0;
    if (s->signing && (!sk || !swim__key_ok(sk, id))) return -1;
    if (m) swim__member_remove(s, m);            /* a stale entry of the new key */
    Trib__Member me = old->pub;
    me.id.data = (uint8_t *)id;
    me.id.len = SWIM_ID_LEN;
    me.state = ALIVE;
    if (!(m = swim__member_add(s, &me))) return -1;
    s->self = m;
    /* the old key leaves (announced like swim_leave's, signed by the old key), the new one is
     * alive at the address */
    if (old->pub.incarnation < UINT64_MAX) old->pub.incarnation++;
    set_state(s, old, LEFT, now);
    swim__sign(s, old, s->sk);
    if (s->signing) memcpy(s->sk, sk, sizeof s->sk);
    swim__sign(s, m, s->sk);
    old->retry_at = UINT64_MAX;
    swim__bq_push(s, old);
    notify(s, old, ALIVE);
    swim__bq_push(s, m);
    notify(s, m, SWIM_NEW);
    recompute_deadline(s);
    return 0;
}

int swim_retire(swim_t *s, const uint8_t id[SWIM_ID_LEN], uint64_t now)
{
    member_t *m = swim__find(s, id);
    if (!m || m == s->self || m->retired) return 0;
    m->retired = true;
    int gone = is_gone(m->pub.state);
    if (m->pub.state != LEFT) {
        m->quiet = true;                          /* our inference, not its signed word */
        swim__bq_drop(s, m);
        set_state(s, m, LEFT, now);
    }
    m->retry_at = UINT64_MAX;                     /* never asked again: its key speaks no more */
    swim__confirmed(s, m);                        /* nor unconfirmed: no retry will come to say so */
    recompute_deadline(s);
    return !gone;
}

const Trib__Member *swim_self(const swim_t *s) { return &s->self->pub; }

int swim_unconfirmed(const swim_t *s, const uint8_t id[SWIM_ID_LEN])
{
    const member_t *m = swim__find(s, id);
    return m && m->restored;
}

size_t swim_unconfirmed_count(const swim_t *s) { return s->nrestored; }

void swim_ask_unconfirmed(swim_t *s)
{
    for (size_t i = 0; s->nrestored && i < s->n; i++)
        if (s->list[i]->restored)
            swim__send_push_pull(s, s->list[i]->id, s->list[i]->pub.addr, false, false);
}

size_t swim_count(const swim_t *s, int state)
{
    if (state < 0) return s->n;
    return state < NSTATES ? s->count[state] : 0;
}

int swim_health(const swim_t *s) { return s->awareness; }

const swim_stats_t *swim_stats(const swim_t *s) { return &s->st; }

const char *swim_state_name(int state)
{
    switch (state) {
    case ALIVE:   return "alive";
    case SUSPECT: return "suspect";
    case DEAD:    return "dead";
    case LEFT:    return "left";
    default:      return "unknown";
    }
}
