/* gossip/zap.c - a chartered node's admission decisions (DESIGN.md §12): who may connect (the
 * transport's ZAP and per-message allow callback), which certificate hellos make a peer known,
 * which received catalog entries may be stored (trust_entry_ok), and the trust counters and
 * gauges of /metrics. Part of the federation actor: see gossip_int.h.
 *
 * Threads. The trust store (g->trust) is shared: read by the loop (ZAP, hellos, member
 * snapshots), by the catalog worker (entry acceptance) and HTTP threads (views), written by the
 * loop (hellos) and by the federation log (its own trust_offer_* calls).
 * The store takes its own rwlock in every call (gossip/trust.h): questions read (a hash lookup,
 * no signature check), offers write (one certificate's verify), so the ZAP answers come from the
 * loop without a thread or a snapshot of their own. The loop never waits on anything else here.
 *
 * The connection rule. A key with a certificate held and admitted now (trust_admit_curve) is
 * admitted; a key whose certificate is held but revoked, expired, not yet valid or no longer
 * backed by the charter is refused at the handshake; a key with no certificate held yet is
 * admitted provisionally: only its CertHello is taken (transport.h), and it is admitted once the
 * certificate it presents verifies and names it. A key that presented a bad certificate stays
 * provisional: everything but another hello is dropped, and each bad hello is counted.
 *
 * Owns: the verdict counters (trib_trust_refused_total{kind,reason}), their rate-limited log
 * lines, the own certificate's expiry warning and gauge.
 * Must not: verify signatures per message or per entry (trust.c caches), hold tcmu while
 * logging or sending, or decide what a verdict is (trust.c does). */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/certwait.h"
#include "gossip/clock.h"
#include "gossip/edcurve.h"
#include "gossip/fedlog.h"
#include "gossip/gossip_int.h"
#include "gossip/log.h"
#include "gossip/prom.h"
#include "gossip/reads_link.h"

#define REFUSAL_LOG_MS 10000                       /* one line per (kind, reason) this often */
#define EXPIRY_WARN_MS (14LL * 24 * 3600 * 1000)    /* warn this long before our certificate expires */
#define EXPIRY_LOG_MS (6LL * 3600 * 1000)           /* and repeat the warning this often */
#define STEP_LOG_MS 60000                           /* a wall clock stepping back: said once a minute at most */

static const char *kind_name(int kind)
{
    return kind == TRUST_REFUSED_CONNECT ? "connect" : kind == TRUST_REFUSED_ENTRY ? "entry" : "owner";
}

/* Counts n refusals and logs them unless one of their kind and reason was logged lately. */
__attribute__((format(printf, 5, 0)))
static void vrefused(gossip_t *g, int kind, trust_verdict_t v, uint64_t n, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&g->tcmu);
    g->trefused[kind][v] += n;
    pthread_mutex_unlock(&g->tcmu);
    uint64_t held;
    if (!log_limit(&g->trefused_log[kind][v], REFUSAL_LOG_MS, &held))
        return;
    char line[512], tail[96];
    vsnprintf(line, sizeof line, fmt, ap);
    log_warn("trust: refused %s (%s): %s%s", kind_name(kind), trust_verdict_name(v), line,
             log_held(tail, sizeof tail, held, ""));
}

__attribute__((format(printf, 4, 5)))
static void refused(gossip_t *g, int kind, trust_verdict_t v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefused(g, kind, v, 1, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 5, 6)))
static void refused_n(gossip_t *g, int kind, trust_verdict_t v, uint64_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefused(g, kind, v, n, fmt, ap);
    va_end(ap);
}

int gossip__zap_allow(void *ctx, const uint8_t curve_pk[32], int connect)
{
    gossip_t *g = ctx;
    char err[200] = "";
    trust_verdict_t v = trust_admit_curve(g->trust, curve_pk, clock_wall_ms(), NULL, err, sizeof err);
    if (v == TRUST_OK)
        return TRANSPORT_ADMIT;
    if (v == TRUST_UNCERTIFIED) { /* it may present its certificate; until then its messages are dropped */
        if (connect == 0) {
            char hex[65];
            sodium_bin2hex(hex, sizeof hex, curve_pk, 32);
            refused(g, TRUST_REFUSED_CONNECT, v, "a message from CURVE key %.16s..., which has presented no valid "
                    "certificate (it was asked for one)", hex);
        }
        return TRANSPORT_PROVISIONAL;
    }
    if (connect == 1) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, curve_pk, 32);
        refused(g, TRUST_REFUSED_CONNECT, v, "a connection from CURVE key %.16s...: %s", hex, err);
    }
    return TRANSPORT_REFUSE;
}

/* A peer's clock, as its hello said: more than TRUST_SKEW_MS off ours is counted and logged (at most
 * once per REFUSAL_LOG_MS). It changes no verdict: certificate windows already allow that much. */
static void check_skew(gossip_t *g, const char *hex, const char *addr, int64_t sender_ms)
{
    if (sender_ms <= 0)
        return;
    int64_t d = clock_wall_ms() - sender_ms;
    if (d < 0)
        d = -d;
    pthread_mutex_lock(&g->tcmu);
    if (d > g->max_skew_ms)
        g->max_skew_ms = d;
    if (d > TRUST_SKEW_MS)
        g->skewed_peers++;
    pthread_mutex_unlock(&g->tcmu);
    if (d > TRUST_SKEW_MS && log_limit(&g->skew_log, REFUSAL_LOG_MS, NULL))
        log_warn("trust: the clock of node %.16s... at %s differs from ours by %" PRId64 " s (more than %d s): "
                 "certificate windows and entry times are judged with %d s of allowance; fix the clocks (NTP)",
                 hex, addr, d / 1000, TRUST_SKEW_MS / 1000, TRUST_SKEW_MS / 1000);
}

/* A peer says it refused our certificate: its claim (it may not even be of our federation), logged
 * at most once per REFUSAL_LOG_MS so this side, too, says why it cannot join. */
static void refused_by_peer(gossip_t *g, const char *hex, const char *addr, const char *why)
{
    if (!log_limit(&g->claim_log, REFUSAL_LOG_MS, NULL))
        return;
    char safe[160];
    size_t i = 0;
    for (; why[i] && i + 1 < sizeof safe; i++)
        safe[i] = why[i] >= 0x20 && why[i] < 0x7f ? why[i] : '?';
    safe[i] = '\0';
    log_warn("trust: node %.16s... at %s refused this node's certificate: %s (its word; check that both use "
             "the same charter and that this node's certificate is valid)", hex, addr, safe);
}

int gossip__hello(void *ctx, transport_hello_t *h)
{
    gossip_t *g = ctx;
    char err[300] = "", hex[ID_HEX_LEN];
    identity_hex(h->sender, hex);
    if (h->refused && h->refused[0])
        refused_by_peer(g, hex, h->sender_addr, h->refused);
    check_skew(g, hex, h->sender_addr, h->sender_time_ms);
    cert_t c;
    trust_verdict_t v = TRUST_OK;
    char domain[64] = "?";
    if (cert_parse(h->cert, h->len, &c, err, sizeof err) != 0) {
        v = TRUST_MALFORMED;
        refused(g, TRUST_REFUSED_CONNECT, v, "the certificate presented by node %.16s... at %s: %s", hex,
                h->sender_addr, err);
    } else {
        int mine = memcmp(c.node_key, h->sender, ID_PK_LEN) == 0;
        snprintf(domain, sizeof domain, "%s", c.domain);
        cert_free(&c);
        if (!mine) {
            v = TRUST_WRONG_KEY;
            snprintf(err, sizeof err, "a certificate of domain '%s' for another node's key", domain);
            refused(g, TRUST_REFUSED_CONNECT, v, "node %.16s... at %s presented %s", hex, h->sender_addr, err);
        }
    }
    int added = 0;
    if (v == TRUST_OK) {
        uint8_t curve[32];
        v = trust_offer_cert(g->trust, h->cert, h->len, &added, err, sizeof err);
        if (v == TRUST_OK) {
            if (edcurve_pk(curve, h->sender) != 0)
                v = TRUST_MALFORMED;
            else
                v = trust_admit_curve(g->trust, curve, clock_wall_ms(), NULL, err, sizeof err);
        }
        if (v != TRUST_OK)
            refused(g, TRUST_REFUSED_CONNECT, v, "node %.16s... at %s claiming domain '%s': %s", hex, h->sender_addr,
                    domain, err);
    }
    if (v != TRUST_OK) {
        int w = snprintf(h->why, sizeof h->why, "%s: %.120s", trust_verdict_name(v), err);
        (void)w;
        return 0;
    }
    if (added) {
        log_info("trust: admitted node %.16s... at %s, certified for domain '%s'", hex, h->sender_addr, domain);
        g->dirty = 1; /* members show it as verified */
        /* and into the federation log (stored, gossiped): a node joining after this one is gone
         * still checks the domain's entries. Held by the trust store now, so not verified again;
         * queued, so the certificates of a join go in with one commit (gossip__hello_store). */
        uint8_t *copy = g->o.fedlog ? malloc(h->len) : NULL;
        if (copy) {
            memcpy(copy, h->cert, h->len);
            if (!g->nhcert)
                g->hcert_ms = clock_ms();
            g->hcert[g->nhcert] = copy;
            g->hcert_len[g->nhcert++] = h->len;
            if (g->nhcert == GOSSIP_HELLO_STORE_MAX)
                gossip__hello_store(g, 1);
        }
    }
    return 1;
}

#define HELLO_STORE_MS 1000   /* queued certificates from hellos go into the federation log this often */

/* Offers the queued certificates from hellos to the federation log together (one durable commit
 * for the lot: a join of N nodes made ~N commits, and as many fsyncs, on every node), when the
 * first waited HELLO_STORE_MS, or now. Until then they are held by the trust store (admission,
 * entries) but not stored: a crash loses them, and the peers' next hellos or anti-entropy bring
 * them again. */
void gossip__hello_store(gossip_t *g, int force)
{
    if (!g->nhcert || (!force && clock_ms() - g->hcert_ms < HELLO_STORE_MS))
        return;
    fedlog_offer_peers(g->o.fedlog, (const uint8_t *const *)g->hcert, g->hcert_len, (size_t)g->nhcert, "hellos");
    for (int i = 0; i < g->nhcert; i++)
        free(g->hcert[i]);
    g->nhcert = 0;
}

/* May claimed become addr's key in place of held (transport_rebind_fn)? Yes when held no longer
 * holds (revoked, expired, rotated past its overlap), or when the held key handed the claimed
 * key's domain over to it (a signed hand-over, or a certificate continuing held's serial:
 * trust_handover). Else no: another certified node may not take the address over. Not because
 * held's member is dead or gone: member updates are not signed, so any admitted peer could say
 * so. A node restarted with a new key is bound again once our dial with the old key fails, or
 * by an operator's seed (transport_set_peer). No, as stale, when claimed handed held's domain
 * over to held: the node rotated and an entry of its old key is still on its way round (a
 * routine rotation is not an address conflict for the operator to look into). */
int gossip__rebind(void *ctx, const char *addr, const uint8_t held[32], const uint8_t claimed[32])
{
    gossip_t *g = ctx;
    (void)addr;
    uint8_t curve[32];
    trust_info_t hi, info;
    int64_t now = clock_wall_ms();
    if (edcurve_pk(curve, held) != 0 || trust_admit_info(g->trust, curve, now, &hi, NULL, 0) != TRUST_OK)
        return TRANSPORT_REBIND_YES;
    if (edcurve_pk(curve, claimed) == 0 && trust_admit_info(g->trust, curve, now, &info, NULL, 0) == TRUST_OK &&
        trust_handover(g->trust, info.domain, held, claimed) == 1)
        return TRANSPORT_REBIND_YES;
    return trust_handover(g->trust, hi.domain, claimed, held) == 1 ? TRANSPORT_REBIND_STALE : TRANSPORT_REBIND_NO;
}

int gossip__entry_ok(void *ctx, const Trib__CatalogEntry *e, const uint8_t signer[32], const char *from)
{
    gossip_t *g = ctx;
    char err[300] = "";
    trust_verdict_t v = trust_entry_ok(g->trust, e->domain, signer, e->time_ms, err, sizeof err);
    if (v == TRUST_OK)
        return 1;
    if (v == TRUST_UNCERTIFIED && strcmp(e->domain, g->domain) == 0)
        gossip__own_uncertified(g, e->seq);   /* our own log goes on under a key we cannot check yet */
    else if (v == TRUST_UNCERTIFIED && certwait_hold(g->certwait, signer, e->domain, from, clock_ms()))
        return 0;                /* its certificate may be on its way: refused only if none comes */
    char hex[ID_HEX_LEN];
    identity_hex(signer, hex);
    refused(g, TRUST_REFUSED_ENTRY, v, "entry %s seq %" PRIu64 " signed by %.16s...: %s", e->domain, e->seq, hex,
            err);
    return 0;
}

static trust_verdict_t cw_judge(void *ctx, const char *domain, const uint8_t key[32], char *why, size_t cap)
{
    gossip_t *g = ctx;
    return trust_entry_ok(g->trust, domain, key, clock_wall_ms(), why, cap);
}

static void cw_sync(void *ctx, const char *addr)
{
    gossip_t *g = ctx;
    if (g->o.fedlog)
        fedlog_sync(g->o.fedlog, addr);
}

static void cw_ask(void *ctx, const char *addr, const char *domain)
{
    gossip_t *g = ctx;
    repl_ask_domain(g->repl, addr, domain);
}

static void cw_refuse(void *ctx, trust_verdict_t v, uint64_t n, const char *domain, const uint8_t key[32],
                      const char *why)
{
    gossip_t *g = ctx;
    char hex[ID_HEX_LEN];
    identity_hex(key, hex);
    if (v == TRUST_UNCERTIFIED)
        refused_n(g, TRUST_REFUSED_ENTRY, v, n, "%" PRIu64 " entr%s of domain %s signed by %.16s...: no certificate "
                  "of this key came in %d s (its sender's federation log was asked)", n, n == 1 ? "y" : "ies",
                  domain, hex, CERTWAIT_MS / 1000);
    else
        refused_n(g, TRUST_REFUSED_ENTRY, v, n, "%" PRIu64 " entr%s of domain %s signed by %.16s...: %s", n,
                  n == 1 ? "y" : "ies", domain, hex, why);
}

void gossip__certwait_step(gossip_t *g, uint64_t now)
{
    certwait_io_t io = {.ctx = g, .judge = cw_judge, .sync = cw_sync, .ask = cw_ask, .refuse = cw_refuse};
    certwait_step(g->certwait, &io, now);
}

void gossip__member_cert(gossip_t *g, gossip_member_t *m)
{
    uint8_t curve[32];
    trust_info_t c;
    if (!g->trust || curvememo_pk(g->curvememo, curve, m->id) != 0)   /* the conversion only is remembered */
        return;
    trust_verdict_t v = trust_admit_info(g->trust, curve, clock_wall_ms(), &c, NULL, 0);
    if (v == TRUST_OK) {
        m->verified = strcmp(c.domain, m->domain) == 0;
        cert_serial_text(c.serial, m->cert_serial);
        m->cert_expires_ms = c.not_after_ms;
    }
    snprintf(m->refused, sizeof m->refused, "%s", v == TRUST_OK ? (m->verified ? "" : "wrong_domain")
                                                                : trust_verdict_name(v));
    /* no certificate that holds now, whichever way (none, another domain's, revoked, expired ...) */
    m->uncertified = !m->self && (v != TRUST_OK || !m->verified);
}

trust_verdict_t gossip_member_why(gossip_t *g, const gossip_member_t *m, char *why, size_t cap)
{
    uint8_t curve[32];
    trust_info_t c;
    char err[320] = "";
    trust_verdict_t v = TRUST_UNCERTIFIED;
    if (g->trust && edcurve_pk(curve, m->id) == 0)   /* any thread: not the loop's curvememo */
        v = trust_admit_info(g->trust, curve, clock_wall_ms(), &c, err, sizeof err);
    if (v == TRUST_OK && strcmp(c.domain, m->domain) != 0) {
        snprintf(why, cap, "its key is certified by the federation for domain %s, not for domain %s", c.domain,
                 m->domain);
        return TRUST_WRONG_DOMAIN;
    }
    if (v == TRUST_OK)
        snprintf(why, cap, "its certificate for domain %s holds now", m->domain);
    else if (v == TRUST_UNCERTIFIED)
        snprintf(why, cap, "no certificate from the federation for domain %s", m->domain);
    else
        snprintf(why, cap, "%s", err);   /* "certificate S of D: it is revoked from T by ...", "... expired at T" */
    return v;
}

void gossip__owner_refused(gossip_t *g, trust_verdict_t v, const char *line)
{
    refused(g, TRUST_REFUSED_OWNER, v, "%s", line);
}

/* Reads relayed from a member whose key no longer holds a certificate for its domain (revoked,
 * expired ... while they ran) end now, naming why as a new read would be told (find_owner in
 * gossip.c), each counted in trib_trust_refused_total{kind="owner"}: the owner's answers are
 * dropped from now on, and a stream would otherwise wait for the stall timeout. Loop only, after
 * the snapshot is published (the loop is its only writer: read without smu). */
void gossip__owners_untrusted(gossip_t *g)
{
    if (!g->trust || !g->reads)
        return;
    for (size_t i = 0; i < g->nsnap; i++) {
        const gossip_member_t *m = &g->snap[i];
        if (!m->uncertified || (!reads_relays_from(g->reads, m->id) && !linkpool_reads_from(g->pool, m->id)))
            continue;
        char hex[ID_HEX_LEN], why[400], detail[1400];
        identity_hex(m->id, hex);
        trust_verdict_t v = gossip_member_why(g, m, why, sizeof why);
        snprintf(detail, sizeof detail, "no node certified for domain '%s' is known here any more: node %.12s at %s, "
                 "which served this read, announces it, but %s (not a member); read again once a node certified for "
                 "domain '%s' serves it", m->domain, hex, m->addr,
                 why, m->domain);
        size_t n = reads_owner_untrusted(g->reads, m->id, detail) + linkpool_untrusted(g->pool, m->id, detail);
        for (; n; n--)
            gossip__owner_refused(g, v == TRUST_OK ? TRUST_UNCERTIFIED : v, detail);
    }
}

#define UNCERT_LOG_AFTER_MS 60000   /* a joining node's certificate comes within seconds (its hello, the log) */

/* How long a member listed apart waits before it is logged: UNCERT_LOG_AFTER_MS with no
 * certificate held (a node that is joining is one for a moment), none when its certificate is held
 * and does not hold (revoked, expired, another domain's ...). */
static uint64_t unc_wait(const gossip_unc_t *u) { return strcmp(u->refused, "uncertified") ? 0 : UNCERT_LOG_AFTER_MS; }

/* Members listed apart and logged so (g->unc) that the snapshot lists as members now (a certificate
 * issued again, or one dated ahead that became valid) are logged once, one line for the lot; those
 * no longer listed at all are forgotten silently. seen: the ones listed apart now. Loop only. */
static void members_again(gossip_t *g, const gossip_unc_t *seen, size_t n)
{
    size_t k = 0;
    gossip_member_t first = {.domain = "?", .addr = "?"};
    for (size_t j = 0; j < g->nunc; j++) {
        if (!g->unc[j].logged)
            continue;
        size_t i = 0;
        while (i < n && memcmp(seen[i].id, g->unc[j].id, 32))
            i++;
        if (i < n)
            continue;
        pthread_mutex_lock(&g->smu);
        for (size_t s = 0; s < g->nsnap; s++)
            if (!memcmp(g->snap[s].id, g->unc[j].id, 32) && !g->snap[s].uncertified && !k++)
                first = g->snap[s];
        pthread_mutex_unlock(&g->smu);
    }
    if (!k)
        return;
    char hex[ID_HEX_LEN];
    identity_hex(first.id, hex);
    log_info("trust: node %.16s... at %s, announcing domain '%s', is a member now: its certificate %s for that domain "
             "holds%s", hex, first.addr, first.domain, first.cert_serial, k > 1 ? " (and more such nodes)" : "");
}

/* An uncertified member (gossip_member_t.uncertified) is logged once past its wait (unc_wait: a
 * self-made key, a node started with the wrong certificate, one revoked or expired), at most one
 * line per REFUSAL_LOG_MS naming one (and saying when there are more); one whose reason changes is
 * logged again. Loop only, from the snapshot (a walk of it under smu). */
void gossip__uncertified_check(gossip_t *g)
{
    if (!g->trust)
        return;
    uint64_t now = clock_ms();
    gossip_unc_t seen[GOSSIP_UNCERT_TRACK];
    size_t n = 0;
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nsnap && n < GOSSIP_UNCERT_TRACK; i++)
        if (g->snap[i].uncertified) {
            memcpy(seen[n].id, g->snap[i].id, 32);
            snprintf(seen[n++].refused, sizeof seen->refused, "%s", g->snap[i].refused);
        }
    pthread_mutex_unlock(&g->smu);
    for (size_t i = 0; i < n; i++) {   /* those listed now: since when (for this reason), logged */
        size_t j = 0;
        while (j < g->nunc && (memcmp(g->unc[j].id, seen[i].id, 32) || strcmp(g->unc[j].refused, seen[i].refused)))
            j++;
        seen[i].since_ms = j < g->nunc ? g->unc[j].since_ms : now;
        seen[i].logged = j < g->nunc ? g->unc[j].logged : 0;
    }
    members_again(g, seen, n);
    memcpy(g->unc, seen, n * sizeof *seen);
    g->nunc = n;
    size_t due = 0, first = 0;      /* past their wait, not logged yet */
    for (size_t i = 0; i < g->nunc; i++)
        if (!g->unc[i].logged && now - g->unc[i].since_ms >= unc_wait(&g->unc[i]) && !due++)
            first = i;
    if (!due || (g->unc_logged_ms && now - g->unc_logged_ms < REFUSAL_LOG_MS))
        return;
    for (size_t i = 0; i < g->nunc; i++)
        if (now - g->unc[i].since_ms >= unc_wait(&g->unc[i]))
            g->unc[i].logged = 1;
    g->unc_logged_ms = now;
    gossip_member_t m = {.domain = "?", .addr = "?"};
    memcpy(m.id, g->unc[first].id, 32);
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nsnap; i++)
        if (!memcmp(g->snap[i].id, g->unc[first].id, 32)) {
            m = g->snap[i];
            break;
        }
    pthread_mutex_unlock(&g->smu);
    char hex[ID_HEX_LEN], why[400];
    identity_hex(m.id, hex);
    const char *more = due > 1 ? " (and more such nodes)" : "";
    if (unc_wait(&g->unc[first])) {
        log_warn("trust: node %.16s... at %s, announcing domain '%s', has been in the membership for %d s without a "
                 "certificate from the federation for that domain: not a member, it gets no connection (trib members "
                 "lists it under \"not members\": a self-made key, or a node started without its certificate)%s",
                 hex, m.addr, m.domain, UNCERT_LOG_AFTER_MS / 1000, more);
        return;
    }
    gossip_member_why(g, &m, why, sizeof why);
    log_warn("trust: node %.16s... at %s, announcing domain '%s', is not a member: %s; it gets no connection and no "
             "routed read (trib members lists it under \"not members\"; a certificate issued again makes it a member)%s",
             hex, m.addr, m.domain, why, more);
}

trust_verdict_t gossip_own_trust(gossip_t *g, char *why, size_t cap)
{
    if (!g->trust)
        return TRUST_OK;
    char err[200] = "";
    uint8_t own[32];
    int64_t not_after, now = clock_wall_ms();
    gossip__own_key(g, own, &not_after);   /* HTTP threads: a key rotation rewrites g->id */
    trust_verdict_t v = trust_admit_curve(g->trust, own, now, NULL, err, sizeof err);
    if (v != TRUST_REVOKED && now > not_after + TRUST_SKEW_MS) {
        /* the certificate this node presents ended; another of its key may hold (a renewal handed
         * in) or be dated ahead: a node takes a certificate at its start only */
        char when[32];
        trust_time_text(not_after, when);
        snprintf(why, cap, "this node's certificate for domain '%s' (the one it was started with) expired at %s; %s "
                 "(docs/operators.md §4b)", g->domain, when,
                 v == TRUST_OK ? "another certificate of its key holds: restart the node with it as --cert"
                               : "restart the node with a renewed one as --cert");
        v = TRUST_EXPIRED;
    } else if (v != TRUST_OK) {
        snprintf(why, cap, "this node's certificate for domain '%s' does not hold (%s): %s", g->domain,
                 trust_verdict_name(v), err);
    }
    return v;
}

/* This node's own key revoked is said once, at error (when a revocation comes in, or one dated ahead
 * takes effect). */
static void own_revoked_check(gossip_t *g)
{
    char why[320];
    if (!g->own_revoked_logged && gossip_own_trust(g, why, sizeof why) == TRUST_REVOKED) {
        g->own_revoked_logged = 1;
        log_error("trust: %s; peers refuse this node and its writes are refused (node_revoked): certify a new "
                  "key for the domain (trib fed certify --prev-serial) and start a node with it", why);
    }
}

/* A revocation, certificate, key hand-over or charter newly held re-shows the members (a revoked
 * one reads as such at once; one whose certificate came by the federation log before its hello
 * reads as verified, and the node is told: o.on_certs, a pending key rotation may complete; a
 * hand-over's overlap end is among the instants judged at from then: publish_snapshot; a charter
 * that removed roots leaves their certificates below the threshold); this node's own key revoked
 * is said once, at error. */
static void revocations_check(gossip_t *g)
{
    size_t certs = trust_cert_count(g->trust);
    if (certs != g->certs_seen) {
        g->certs_seen = certs;
        g->dirty = 1;
        g->warm_due = 1;   /* a member seen alive before its certificate is warmed now (transport_warm) */
        if (g->o.on_certs)
            g->o.on_certs(g->o.ctx);
    }
    size_t rots = trust_rotation_count(g->trust);
    uint64_t version = trust_charter_version(g->trust);
    if (rots != g->rots_seen || version != g->charter_seen) {
        g->rots_seen = rots;
        g->charter_seen = version;
        g->dirty = 1;
        gossip__retire_handed_over(g);
    }
    size_t n = trust_revocation_count(g->trust);
    if (n == g->revs_seen)
        return;
    g->revs_seen = n;
    g->dirty = 1;
    own_revoked_check(g);
}

void gossip__own_cert_check(gossip_t *g)
{
    if (!g->trust)
        return;
    revocations_check(g);
    int64_t now = clock_wall_ms(), left = g->own_not_after_ms - now;
    if (g->snap_redo_ms && now >= g->snap_redo_ms) {   /* a verdict changed with time: re-shown */
        g->snap_redo_ms = 0;   /* publish_snapshot sets the next one */
        g->dirty = 1;
        own_revoked_check(g);  /* a revocation of this node's key dated ahead took effect */
    } else if (now < g->snap_judged_ms) {
        /* The clock stepped back: the members were judged at a time it has not reached again. Every
         * verdict that changed in between (a certificate's start or end, a revocation taking effect,
         * an overlap's end) would be shown as after it, against what this node's own checks (its
         * connections, entries, reads) now say, until the clock came back to it. Judged again now. */
        uint64_t held;
        if (log_limit(&g->step_log, STEP_LOG_MS, &held)) {
            char more[96];
            log_warn("clock: the wall clock stepped back %" PRId64 " ms; members judged again by it%s",
                     g->snap_judged_ms - now, log_held(more, sizeof more, held, "steps"));
        }
        g->snap_judged_ms = now;
        g->dirty = 1;
    }
    if (left > EXPIRY_WARN_MS ||
        (g->expiry_logged_ms && now >= g->expiry_logged_ms && now - g->expiry_logged_ms < EXPIRY_LOG_MS))
        return;
    g->expiry_logged_ms = now;
    char when[32];
    trust_time_text(g->own_not_after_ms, when);
    if (left <= 0)
        log_error("trust: this node's certificate expired at %s: peers no longer admit it; get a new one "
                  "(trib fed certify) and restart the node with it as --cert (docs/operators.md §4b)", when);
    else
        log_warn("trust: this node's certificate expires at %s (in %" PRId64 " h): get a new one "
                 "(trib fed certify) and restart the node with it as --cert before then (docs/operators.md §4b)",
                 when, left / 3600000);
}

int64_t gossip_clock_skew_max_ms(gossip_t *g)
{
    pthread_mutex_lock(&g->tcmu);
    int64_t d = g->max_skew_ms;
    pthread_mutex_unlock(&g->tcmu);
    return d;
}

void gossip__trust_render(gossip_t *g, FILE *f)
{
    uint64_t r[TRUST_REFUSED_KINDS][TRUST_VERDICT_COUNT], skewed;
    int64_t max_skew;
    pthread_mutex_lock(&g->tcmu);
    memcpy(r, g->trefused, sizeof r);
    skewed = g->skewed_peers;
    max_skew = g->max_skew_ms;
    pthread_mutex_unlock(&g->tcmu);
    prom_gauge(f, "trib_trust_chartered", "1 when this node runs in a chartered federation, 0 in open mode.",
               g->trust ? 1 : 0);
    prom_family(f, "trib_trust_refused_total", "counter",
                "Peers, entries and owners of routed reads refused by the trust rules (chartered mode), by kind "
                "and reason.");
    for (int k = 0; k < TRUST_REFUSED_KINDS; k++)
        for (int v = 1; v < TRUST_VERDICT_COUNT; v++)
            if (r[k][v] || (k == TRUST_REFUSED_CONNECT && v == TRUST_UNCERTIFIED))
                fprintf(f, "trib_trust_refused_total{kind=\"%s\",reason=\"%s\"} %" PRIu64 "\n", kind_name(k),
                        trust_verdict_name((trust_verdict_t)v), r[k][v]);
    if (g->trust) {
        prom_counter(f, "trib_clock_skew_peers_total",
                     "Peers whose clock differed from ours by more than 60 s when they connected.", skewed);
        prom_family(f, "trib_clock_skew_max_seconds", "gauge",
                    "The largest clock difference with a connecting peer seen since start, seconds.");
        fprintf(f, "trib_clock_skew_max_seconds %.3f\n", (double)max_skew / 1000.0);
        int64_t left = (g->own_not_after_ms - clock_wall_ms()) / 1000;
        prom_family(f, "trib_cert_expiry_seconds", "gauge",
                    "Seconds until this node's certificate expires (negative: expired).");
        fprintf(f, "trib_cert_expiry_seconds %" PRId64 "\n", left);
        prom_gauge(f, "trib_cert_expiry_warning", "1 when this node's certificate expires within 14 days.",
                   left * 1000 <= EXPIRY_WARN_MS);
        certwait_stats_t cw;
        certwait_stats(g->certwait, &cw);
        prom_gauge(f, "trib_trust_entries_awaiting_certificate",
                   "Entries of other domains met before their key's certificate, not stored, and not refused yet: "
                   "the certificate is asked for and waited for (at most 10 s).", cw.held_entries);
        prom_family(f, "trib_trust_certificate_waits_total", "counter",
                    "Keys of entries met before their certificate, by outcome: certified (the certificate came and "
                    "the entries were asked for again), refused (none came in time: the entries were counted in "
                    "trib_trust_refused_total), full (no room to wait: entries refused at once), per_sender (their "
                    "sender's entries hold 8 keys waiting already: refused at once).");
        fprintf(f, "trib_trust_certificate_waits_total{outcome=\"certified\"} %" PRIu64 "\n", cw.certified);
        fprintf(f, "trib_trust_certificate_waits_total{outcome=\"refused\"} %" PRIu64 "\n", cw.refused);
        fprintf(f, "trib_trust_certificate_waits_total{outcome=\"full\"} %" PRIu64 "\n", cw.full);
        fprintf(f, "trib_trust_certificate_waits_total{outcome=\"per_sender\"} %" PRIu64 "\n", cw.per_sender);
    }
}

/* ---------------------------------------------------------------- public (gossip.h) */

trust_t *gossip_trust(gossip_t *g) { return g->trust; }

