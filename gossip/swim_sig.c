/* gossip/swim_sig.c - signed membership (see swim.h, "Signed membership").
 *
 * Owns: the bytes a member signs (its facts under the tag "trib/member/v1", DESIGN §12's
 * domain separation: no other kind of signed object starts with these bytes), signing our own
 * facts, proving a claim about another member, and counting the refusals. Verifies are cached
 * by the state machine itself: swim.c asks only about a claim that would change what we hold
 * (a newer incarnation, or LEFT over what we hold at the same one), and once applied the same
 * fact is old news, so each fact costs one verify per node however often it is repeated.
 * Must not: decide whether a claim applies (swim.c does, and asks here only when it would
 * change what we hold); touch sockets, threads, clocks or real randomness. */
#include <sodium.h>
#include <string.h>

#include "gossip/swim_int.h"

#define TAG "trib/member/v1"   /* signed with its NUL */
#define MSG_MAX (sizeof TAG + SWIM_ID_LEN + 8 + 1 + 4 + SWIM_MAX_DOMAIN + 3 * SWIM_MAX_ADDR)

static size_t put_str(uint8_t *p, const char *str)
{
    size_t n = str ? strlen(str) : 0;       /* callers checked: <= 255 */
    p[0] = (uint8_t)n;
    if (n) memcpy(p + 1, str, n);
    return n + 1;
}

/* TAG || id || incarnation (big-endian) || kind || domain, addr, http, link (each length-prefixed). */
static size_t facts(uint8_t out[MSG_MAX], const Trib__Member *m, int kind)
{
    size_t n = sizeof TAG;
    memcpy(out, TAG, n);
    memcpy(out + n, m->id.data, SWIM_ID_LEN);
    n += SWIM_ID_LEN;
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(m->incarnation >> (8 * i));
    out[n++] = (uint8_t)kind;
    n += put_str(out + n, m->domain);
    n += put_str(out + n, m->addr);
    n += put_str(out + n, m->http);
    n += put_str(out + n, m->link);
    return n;
}

static int kind_of(int state) { return state == LEFT ? LEFT : ALIVE; }

void swim__sign(swim_t *s, member_t *m, const uint8_t sk[64])
{
    if (!s->signing) return;
    uint8_t msg[MSG_MAX];
    size_t n = facts(msg, &m->pub, kind_of((int)m->pub.state));
    crypto_sign_detached(m->sig, NULL, msg, n, sk);
    m->has_sig = true;
    m->pub.sig.data = m->sig;
    m->pub.sig.len = sizeof m->sig;
    m->esz = 0;                                   /* its size changed */
    s->st.sigs_made++;
}

static void refuse(swim_t *s, const Trib__Member *c, int reason)
{
    s->st.claims_refused[reason]++;
    if (s->io.refused && s->from) s->io.refused(s->io.ctx, s->from, c, reason);
}

bool swim__proven(swim_t *s, const Trib__Member *c, int kind)
{
    if (!s->signing) return true;
    if (c->sig.len != 64) {
        refuse(s, c, SWIM_REFUSED_UNSIGNED);
        return false;
    }
    if (s->forged) {                              /* one verify per forger's message */
        refuse(s, c, SWIM_REFUSED_AFTER_FORGERY);
        return false;
    }
    if (s->verifies >= SWIM_VERIFY_BUDGET) {
        refuse(s, c, SWIM_REFUSED_OVER_BUDGET);
        return false;
    }
    s->verifies++;
    uint8_t msg[MSG_MAX];
    size_t n = facts(msg, c, kind);
    s->st.sigs_verified++;
    if (crypto_sign_verify_detached(c->sig.data, msg, n, c->id.data) != 0) {
        s->forged = true;
        refuse(s, c, SWIM_REFUSED_FORGED);
        return false;
    }
    return true;
}

void swim__take_sig(member_t *m, const Trib__Member *c)
{
    if (c->sig.len != 64) return;
    memcpy(m->sig, c->sig.data, 64);
    m->has_sig = true;
    m->pub.sig.data = m->sig;
    m->pub.sig.len = sizeof m->sig;
    m->esz = 0;
}

bool swim__key_ok(const uint8_t sk[64], const uint8_t id[SWIM_ID_LEN])
{
    /* sk's public half may be pasted on: a signature is the proof (once per key, at setup) */
    static const uint8_t probe[] = TAG " key check";
    uint8_t sig[64];
    return sodium_init() >= 0 && crypto_sign_detached(sig, NULL, probe, sizeof probe, sk) == 0 &&
           crypto_sign_verify_detached(sig, probe, sizeof probe, id) == 0;
}

int swim_sign_with(swim_t *s, const uint8_t sk[64])
{
    if (!swim__key_ok(sk, s->self->id)) return -1;
    memcpy(s->sk, sk, sizeof s->sk);
    s->signing = true;
    swim__sign(s, s->self, s->sk);
    return 0;
}

const char *swim_refused_name(int reason)
{
    switch (reason) {
    case SWIM_REFUSED_UNSIGNED:      return "unsigned";
    case SWIM_REFUSED_FORGED:        return "forged";
    case SWIM_REFUSED_AFTER_FORGERY: return "after_forgery";
    case SWIM_REFUSED_OVER_BUDGET:   return "over_budget";
    default:                         return "unknown";
    }
}
