/* node/auth.c - tokens, revocations and the access decisions of DESIGN §13 (see auth.h). */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "gossip/clock.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/trust.h"
#include "node/auth.h"
#include "node/grants.h"
#include "proto/tributary.pb-c.h"

/* ------------------------------------------------------------------ metrics */

static const char *const reasons[] = {
    "token_required", "token_invalid", "token_expired", "token_revoked", "wrong_domain",
    "kind_insufficient", "out_of_scope", "grant_required", "issuer_revoked",
};
#define NREASONS (sizeof reasons / sizeof reasons[0])
static atomic_uint_fast64_t refused[NREASONS];
static atomic_uint_fast64_t cache_hits, cache_misses, verified_ok;
static atomic_uint_fast64_t rev_refused;   /* revocations past the table (revoke_add) */
static size_t revocations_held(void);

int auth_count(const char *reason)
{
    for (size_t i = 0; i < NREASONS; i++)
        if (!strcmp(reasons[i], reason)) {
            atomic_fetch_add(&refused[i], 1);
            return 1;
        }
    return 0;
}

void auth_metrics_render(FILE *f)
{
    fprintf(f, "# HELP trib_token_refused_total Requests refused for want of a credential (token missing, invalid, "
               "expired, revoked, of another domain, kind or scope, or without a grant), on any route, by reason.\n"
               "# TYPE trib_token_refused_total counter\n");
    for (size_t i = 0; i < NREASONS; i++)
        fprintf(f, "trib_token_refused_total{reason=\"%s\"} %llu\n", reasons[i],
                (unsigned long long)atomic_load(&refused[i]));
    fprintf(f, "# HELP trib_token_verify_total Token checks: cache hits, full verifications.\n"
               "# TYPE trib_token_verify_total counter\n"
               "trib_token_verify_total{result=\"cache_hit\"} %llu\n"
               "trib_token_verify_total{result=\"verified\"} %llu\n"
               "trib_token_verify_total{result=\"ok\"} %llu\n",
            (unsigned long long)atomic_load(&cache_hits), (unsigned long long)atomic_load(&cache_misses),
            (unsigned long long)atomic_load(&verified_ok));
    fprintf(f, "# HELP trib_token_revocations Token revocations this node holds and checks: its own and those of "
               "every domain's catalog log.\n"
               "# TYPE trib_token_revocations gauge\ntrib_token_revocations %zu\n"
               "# HELP trib_token_revocations_refused_total Token revocations not held: past the most this node "
               "keeps (1,048,576), or out of memory. A token they revoke is still accepted here.\n"
               "# TYPE trib_token_revocations_refused_total counter\ntrib_token_revocations_refused_total %llu\n",
            revocations_held(), (unsigned long long)atomic_load(&rev_refused));
}

static void set_err(auth_err_t *e, int status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static __thread int quiet; /* auth_may_see: a listing decides, nothing is refused */

static void set_err(auth_err_t *e, int status, const char *kind, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    if (!quiet)
        auth_count(kind);
}

/* ------------------------------------------------------------------ admin.token */

static void revoked_load(node_t *n);
static void revocations_refresh(node_t *n, int wait);
static char own_domain_name[64]; /* set by auth_open: revocations from the file are this domain's */

int auth_open(node_t *n, char *err, size_t errlen)
{
    char path[600], key[600];
    struct stat sb;
    snprintf(key, sizeof key, "%s/identity.key", n->cfg.data);
    if (stat(key, &sb) == 0 && (sb.st_mode & 077)) {
        snprintf(err, errlen, "%s is readable by group or others (mode %03o): chmod 600 %s", key,
                 (unsigned)(sb.st_mode & 0777), key);
        return -1;
    }
    snprintf(own_domain_name, sizeof own_domain_name, "%s", n->cfg.domain);
    revoked_load(n);
    revocations_refresh(n, 1);
    snprintf(path, sizeof path, "%s/admin.token", n->cfg.data);
    char e2[512];
    if (stat(path, &sb) == 0) {
        char *t = token_file_read(path, e2, sizeof e2);
        if (!t) {   /* a bad mode says what to do; a bad content: a new one is written where none is */
            snprintf(err, errlen, "%s%s", e2, (sb.st_mode & 077) ? "" : "; move it away, and the node writes "
                     "a new admin token at its next start");
            return -1;
        }
        sodium_memzero(t, strlen(t));
        free(t);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    identity_t me;
    node_identity(n, &me);
    int rc = auth_write_admin_token(n, &me, path, err, errlen);
    identity_wipe(&me);
    return rc;
}

int auth_write_admin_token(node_t *n, const identity_t *id, const char *path, char *err, size_t errlen)
{
    char sub[TOKEN_SUBJECT_MAX + 1], e2[512];
    snprintf(sub, sizeof sub, "admin@%s", n->cfg.domain);
    int64_t now = clock_wall_ms();
    token_spec_t spec = {.subject = sub, .kind = TOKEN_KIND_ADMIN, .product = NULL, .issued_ms = now,
                         .expires_ms = now + AUTH_ADMIN_TTL_MS};
    char *t = NULL;
    if (token_issue(id, n->cfg.domain, &spec, &t, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "issuing the admin token: %s", e2);
        return -1;
    }
    int rc = token_file_write(path, t, e2, sizeof e2);
    token_claims_t c;
    token_inspect(t, strlen(t), now, &c, NULL, 0);
    sodium_memzero(t, strlen(t));
    free(t);
    if (rc < 0) {
        snprintf(err, errlen, "%s", e2);
        return -1;
    }
    log_info("wrote %s (admin token id %s for %s, valid 365 days; mode 0600)", path, c.id, sub);
    return 0;
}

/* ------------------------------------------------------------------ whose key */

int node_token_key(void *ctx, const char *domain, const uint8_t key[ID_PK_LEN], int64_t now_ms)
{
    node_t *n = ctx;
    /* chartered (trust): an issuer key is one certified for its domain now, nothing else */
    trust_t *t = n->gossip ? gossip_trust(n->gossip) : NULL;
    if (t)
        return trust_entry_ok(t, domain, key, now_ms, NULL, 0) == TRUST_OK;
    if (!strcmp(domain, n->cfg.domain))
        return node_own_key(n, key);
    store_head_t h;
    if (store_catalog_head(n->st, domain, &h) == 0)
        return !memcmp(key, h.key, ID_PK_LEN);
    /* No entry of the domain held yet: a member announcing it (open mode: as trusted as a
     * catalog binding, which is also the first key seen). */
    if (!n->gossip)
        return 0;
    gossip_member_t *m = NULL;
    size_t k = gossip_members(n->gossip, &m);
    int ok = 0;
    for (size_t i = 0; i < k && !ok; i++)
        ok = !strcmp(m[i].domain, domain) && !memcmp(m[i].id, key, ID_PK_LEN) &&
             m[i].state != TRIB__MEMBER_STATE__DEAD && m[i].state != TRIB__MEMBER_STATE__LEFT;
    free(m);
    return ok;
}

/* ------------------------------------------------------------------ revocations */

/* Each revocation with the domain whose log (or this node's file) holds it: a domain revokes
 * only tokens it issued (a revocation in domain D's log never touches a token of domain E).
 * An open-addressing hash set keyed by the signature (at most half full, grown by doubling), so a
 * request's check costs one probe per block however many revocations are held. */
#define REVOKED_MAX (1u << 20)
typedef struct {
    uint8_t sig[TOKEN_SIG_LEN];
    char domain[64];
    int used;
    int logged;    /* its TokenRevocation entry is in the domain's catalog log (else only a file's) */
} revoked_t;
static pthread_mutex_t rev_mu = PTHREAD_MUTEX_INITIALIZER;
static revoked_t *revoked;
static size_t nrevoked, caprevoked; /* caprevoked: a power of two, or 0 */

static size_t rev_slot(const uint8_t sig[TOKEN_SIG_LEN], size_t cap)
{
    uint64_t h;
    memcpy(&h, sig, sizeof h); /* a signature's bytes are uniformly spread */
    return (size_t)h & (cap - 1);
}

/* The slot holding (sig, domain), or the empty one where it would go (rev_mu held, cap > 0). */
static revoked_t *rev_find(revoked_t *t, size_t cap, const uint8_t sig[TOKEN_SIG_LEN], const char *domain)
{
    for (size_t i = rev_slot(sig, cap);; i = (i + 1) & (cap - 1))
        if (!t[i].used || (!memcmp(t[i].sig, sig, TOKEN_SIG_LEN) && !strcmp(t[i].domain, domain)))
            return &t[i];
}

static void revoke_add(const uint8_t sig[TOKEN_SIG_LEN], const char *domain, int logged)
{
    pthread_mutex_lock(&rev_mu);
    if (2 * (nrevoked + 1) > caprevoked && caprevoked < 2 * REVOKED_MAX) {
        size_t cap = caprevoked ? caprevoked * 2 : 128;
        revoked_t *t = calloc(cap, sizeof *t);
        if (t) {
            for (size_t i = 0; i < caprevoked; i++)
                if (revoked[i].used)
                    *rev_find(t, cap, revoked[i].sig, revoked[i].domain) = revoked[i];
            free(revoked);
            revoked = t;
            caprevoked = cap;
        }
    }
    if (caprevoked && 2 * (nrevoked + 1) <= caprevoked) {
        revoked_t *e = rev_find(revoked, caprevoked, sig, domain);
        if (!e->used) {
            memcpy(e->sig, sig, TOKEN_SIG_LEN);
            snprintf(e->domain, sizeof e->domain, "%s", domain);
            e->used = 1;
            nrevoked++;
        }
        e->logged |= logged;
    } else {   /* each one past the room: counted, and a line per 10 s at most, those held back counted in it */
        static log_limit_t full;
        uint64_t held;
        char tail[96];
        atomic_fetch_add(&rev_refused, 1);
        if (log_limit(&full, 10000, &held))
            log_warn("token revocations: %zu held, the most this node keeps: a revocation of domain %s not held, "
                     "and the token it revokes still accepted here (trib_token_revocations_refused_total)%s",
                     nrevoked, domain, log_held(tail, sizeof tail, held, "revocations refused"));
    }
    pthread_mutex_unlock(&rev_mu);
}

static size_t revocations_held(void)
{
    pthread_mutex_lock(&rev_mu);
    size_t n = nrevoked;
    pthread_mutex_unlock(&rev_mu);
    return n;
}

void auth_revoke_add(const uint8_t sig[TOKEN_SIG_LEN]) { revoke_add(sig, own_domain_name, 0); }

/* Whether block sig of this node's domain is held (*held) and written into the domain's log. */
static int revoke_logged(const uint8_t sig[TOKEN_SIG_LEN], int *held)
{
    pthread_mutex_lock(&rev_mu);
    revoked_t *e = caprevoked ? rev_find(revoked, caprevoked, sig, own_domain_name) : NULL;
    *held = e && e->used;
    int logged = *held && e->logged;
    pthread_mutex_unlock(&rev_mu);
    return logged;
}

int auth_is_revoked(const token_claims_t *c)
{
    int hit = 0;
    pthread_mutex_lock(&rev_mu);
    for (size_t b = 0; b < c->nblocks && !hit && caprevoked; b++)
        hit = rev_find(revoked, caprevoked, c->revocation_ids[b], c->domain)->used;
    pthread_mutex_unlock(&rev_mu);
    return hit;
}

/* ---- revocations learnt from the catalog: TokenRevocation entries of every domain's log, read
 * incrementally (each domain from the seq after the last one read), at most every
 * REFRESH_MS, by whichever request thread comes first (the others do not wait). */
#define REFRESH_MS 250
static pthread_mutex_t scan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct scanned {
    char domain[64];
    uint64_t seq;
} *scanned;
static size_t nscanned;
static uint64_t last_refresh;

/* Reads a varint at *p (< end); 0 or -1. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Field `want` (length-delimited) at the top level of the protobuf message m[0..len): its bytes
 * in *out and *outlen, 1; 0 when absent or undecodable. Lets the scan skip every entry that is
 * not a revocation without decoding its manifest. */
int auth_pb_field(const uint8_t *m, size_t len, uint32_t want, const uint8_t **out, size_t *outlen)
{
    const uint8_t *p = m, *end = m + len;
    while (p < end) {
        uint64_t key, n;
        if (varint(&p, end, &key) < 0)
            return 0;
        switch (key & 7) {
        case 0: if (varint(&p, end, &n) < 0) return 0; break;
        case 1: if (end - p < 8) return 0; p += 8; break;
        case 5: if (end - p < 4) return 0; p += 4; break;
        case 2:
            if (varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                return 0;
            if ((key >> 3) == want) {
                *out = p;
                *outlen = (size_t)n;
                return 1;
            }
            p += n;
            break;
        default: return 0;
        }
    }
    return 0;
}

static int scan_entry(void *ctx, uint64_t seq, const uint8_t *bytes, size_t len)
{
    struct scanned *s = ctx;
    s->seq = seq;
    const uint8_t *body, *rev;
    size_t blen, rlen;
    if (!auth_pb_field(bytes, len, 1, &body, &blen) || !auth_pb_field(body, blen, 8, &rev, &rlen))
        return 0; /* SignedEntry.body; CatalogEntry.token_revoke = 8: not a revocation */
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, bytes);
    Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
    if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOKEN_REVOKE && ce->token_revoke &&
        ce->token_revoke->revocation_id.len == TOKEN_SIG_LEN && ce->domain && !strcmp(ce->domain, s->domain))
        revoke_add(ce->token_revoke->revocation_id.data, s->domain, 1);
    if (ce)
        trib__catalog_entry__free_unpacked(ce, NULL);
    if (se)
        trib__signed_entry__free_unpacked(se, NULL);
    return 0;
}

static int scan_head(void *ctx, const char *domain, const store_head_t *head)
{
    node_t *n = ctx;
    struct scanned *s = NULL;
    for (size_t i = 0; i < nscanned && !s; i++)
        if (!strcmp(scanned[i].domain, domain))
            s = &scanned[i];
    if (!s) {
        void *p = realloc(scanned, (nscanned + 1) * sizeof *scanned);
        if (!p)
            return 0;
        scanned = p;
        s = &scanned[nscanned++];
        snprintf(s->domain, sizeof s->domain, "%s", domain);
        s->seq = 0;
    }
    while (s->seq < head->seq) {
        uint64_t before = s->seq;
        if (store_catalog_scan(n->st, domain, s->seq + 1, 1u << 20, scan_entry, s) <= 0 || s->seq == before)
            break;
    }
    return 0;
}

/* Reads the catalog's new TokenRevocation entries. */
static void revocations_refresh(node_t *n, int wait)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (wait)
        pthread_mutex_lock(&scan_mu);
    else if (pthread_mutex_trylock(&scan_mu) != 0)
        return;
    if (wait || now - last_refresh >= REFRESH_MS) {
        last_refresh = now;
        store_catalog_heads(n->st, scan_head, n);
    }
    pthread_mutex_unlock(&scan_mu);
}

/* ------------------------------------------------------------------ verified-token cache */

#define CACHE_SLOTS 1024
#define CACHE_AGE_MS 60000 /* verified again after this: whose key a domain is may change (trust) */
typedef struct {
    uint8_t hash[32];
    int used;
    int64_t at;            /* when verified */
    token_claims_t c;
} cslot_t;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cslot_t cache[CACHE_SLOTS];

#define ISSUER_LOG_MS 10000 /* a token of a revoked issuer is logged at most this often */
static log_limit_t issuer_log;

/* Chartered: 401 token_invalid for a token whose issuing key is revoked (v, why: the trust store's
 * verdict on that key for the token's domain now), saying which certificate, since when and the
 * federation's reason; counted under its own reason (issuer_revoked), logged at most once per
 * ISSUER_LOG_MS. Any other verdict: 0, nothing set. */
static int refuse_revoked_issuer(auth_err_t *e, const token_claims_t *c, trust_verdict_t v, const char *why)
{
    if (v != TRUST_REVOKED)
        return 0;
    char hex[ID_HEX_LEN];
    identity_hex(c->issuer_key, hex);
    e->status = 401;
    snprintf(e->kind, sizeof e->kind, "token_invalid");
    snprintf(e->detail, sizeof e->detail, "the token is not valid (issuer_revoked): token %s was issued by key "
             "%.16s..., revoked by the federation: %s", c->id, hex, why);
    if (quiet)
        return 1;
    auth_count("issuer_revoked");
    uint64_t held;
    char tail[96];
    if (log_limit(&issuer_log, ISSUER_LOG_MS, &held))
        log_warn("auth: refused token %s of %s (issuer_revoked): its issuing key %.16s... is revoked: %s "
                 "(trib_token_refused_total{reason=\"issuer_revoked\"} counts them)%s", c->id, c->subject, hex, why,
                 log_held(tail, sizeof tail, held, ""));
    return 1;
}

/* 401 token_expired naming the token, its subject and when it expired, as a time a person reads.
 * When this node has seen a peer's clock off by more than the allowance and by more than the token
 * is past its expiry, the token may be new and a clock wrong: the detail says so. */
static int refuse_expired(node_t *n, auth_err_t *e, const token_claims_t *c, int64_t now)
{
    char at[32], hint[200] = "";
    trust_time_text(c->expires_ms, at);
    int64_t skew = n->gossip ? gossip_clock_skew_max_ms(n->gossip) : 0;
    if (skew > TOKEN_SKEW_MS && now - c->expires_ms <= skew)
        snprintf(hint, sizeof hint, "; this node's clock differs from a peer's by up to %lld s "
                 "(trib_clock_skew_max_seconds): if the token is new, fix the clocks (NTP)", (long long)(skew / 1000));
    set_err(e, 401, "token_expired", "token %s of %s expired at %s, %lld s ago (%d s of clock skew allowed); "
            "ask its issuer for a new one%s", c->id, c->subject, at, (long long)((now - c->expires_ms) / 1000),
            TOKEN_SKEW_MS / 1000, hint);
    return -1;
}

int auth_verify(node_t *n, const char *text, size_t len, token_claims_t *c, auth_err_t *e)
{
    int64_t now = clock_wall_ms();
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const uint8_t *)text, len, NULL, 0);
    size_t slot = ((size_t)h[0] | (size_t)h[1] << 8) % CACHE_SLOTS;
    int hit = 0;
    pthread_mutex_lock(&cache_mu);
    if (cache[slot].used && !memcmp(cache[slot].hash, h, sizeof h) && now - cache[slot].at < CACHE_AGE_MS) {
        *c = cache[slot].c;
        hit = 1;
    }
    pthread_mutex_unlock(&cache_mu);
    if (hit) {
        atomic_fetch_add(&cache_hits, 1);
        if (now > c->expires_ms + TOKEN_SKEW_MS)
            return refuse_expired(n, e, c, now);
        /* chartered: the issuing node's key may have been revoked or rotated out since it was cached */
        trust_t *t = n->gossip ? gossip_trust(n->gossip) : NULL;
        char why[320];
        trust_verdict_t v = t ? trust_entry_ok(t, c->domain, c->issuer_key, now, why, sizeof why) : TRUST_OK;
        if (v != TRUST_OK && refuse_revoked_issuer(e, c, v, why))
            return -1;
        if (v != TRUST_OK) {
            char hex[ID_HEX_LEN];
            identity_hex(c->issuer_key, hex);
            set_err(e, 401, "token_invalid", "token %s: its issuing key %.16s... no longer speaks for domain %s (%s: %s)",
                    c->id, hex, c->domain, trust_verdict_name(v), why);
            return -1;
        }
    } else {
        atomic_fetch_add(&cache_misses, 1);
        char why[300];
        token_reason_t r = token_verify(text, len, now, node_token_key, n, c, why, sizeof why);
        if (r == TOKEN_EXPIRED)
            return refuse_expired(n, e, c, now);   /* token_verify filled *c before the time checks */
        trust_t *t = n->gossip ? gossip_trust(n->gossip) : NULL;
        if (r == TOKEN_UNKNOWN_ISSUER && t) {   /* chartered: a key the federation revoked says so */
            char tw[320];       /* the claims of its verified chain (token_verify zeroes a refused token's) */
            if (token_inspect(text, len, now, c, NULL, 0) == TOKEN_OK &&
                refuse_revoked_issuer(e, c, trust_entry_ok(t, c->domain, c->issuer_key, now, tw, sizeof tw), tw))
                return -1;
        }
        if (r != TOKEN_OK) {
            set_err(e, 401, "token_invalid", "the token is not valid (%s): %s", token_reason_name(r), why);
            return -1;
        }
        /* A domain speaks only for its own people: a subject of another domain would let it use
         * that person's grants (grants are given to a subject). */
        const char *at = strrchr(c->subject, '@');
        if (!at || strcmp(at + 1, c->domain) != 0) {
            set_err(e, 401, "token_invalid", "token %s: subject '%s' is not of the issuing domain '%s'", c->id,
                    c->subject, c->domain);
            return -1;
        }
        pthread_mutex_lock(&cache_mu);
        memcpy(cache[slot].hash, h, sizeof h);
        cache[slot].c = *c;
        cache[slot].at = now;
        cache[slot].used = 1;
        pthread_mutex_unlock(&cache_mu);
    }
    revocations_refresh(n, 0);
    if (auth_is_revoked(c)) {
        set_err(e, 401, "token_revoked", "token %s of %s was revoked", c->id, c->subject);
        return -1;
    }
    atomic_fetch_add(&verified_ok, 1);
    return 0;
}

const char *auth_bearer(const char *header, size_t *len)
{
    if (!header)
        return NULL;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t l = strlen(t);
    while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
        l--;
    if (!l)
        return NULL;
    *len = l;
    return t;
}

int auth_scheme_problem(const char *header, char *out, size_t cap)
{
    static const char tchar[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
    static const char send[] = "send Authorization: Bearer <token> (trib --token, --token-file or $TRIB_TOKEN)";
    size_t len;
    if (!header || auth_bearer(header, &len))
        return 0;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t n = strspn(header, tchar);
    if (!*header)
        return 0;   /* empty: as none */
    if (n == 6 && strncasecmp(header, "Bearer", 6) == 0)
        snprintf(out, cap, "the Authorization header says Bearer but holds no token: %s", send);
    else if (n == 0 || n > 32)
        snprintf(out, cap, "the Authorization header is not of the form 'Bearer <token>': %s", send);
    else   /* token characters only: safe to quote */
        snprintf(out, cap, "the Authorization scheme %.*s is not supported: %s", (int)n, header, send);
    return 1;
}

/* ------------------------------------------------------------------ decisions */

static int decide(const token_claims_t *c, token_op_t op, const char *target, auth_err_t *e)
{
    token_decision_t d = token_allows(c, op, target);
    switch (d) {
    case TOKEN_ALLOW: return 0;
    case TOKEN_DENY_WRONG_DOMAIN:
        set_err(e, 403, "wrong_domain", "token %s is of domain '%s'; %s needs a token of its own domain", c->id,
                c->domain, target);
        return -1;
    case TOKEN_DENY_KIND:
        set_err(e, 403, "kind_insufficient", "token %s is a %s token; this needs %s", c->id,
                token_kind_name(c->kind), op == TOKEN_OP_ADMIN ? "an admin token" : "a write or admin token");
        return -1;
    case TOKEN_DENY_SCOPE:
        set_err(e, 403, "out_of_scope", "token %s covers '%s', not %s", c->id, c->scope, target);
        return -1;
    }
    return -1;
}

static int need_token(node_t *n, const char *header, const char *what, token_claims_t *c, auth_err_t *e)
{
    size_t len = 0;
    const char *t = auth_bearer(header, &len);
    if (!t) {
        set_err(e, 401, "token_required",
                "%s needs a token of domain '%s' (Authorization: Bearer trib1....; trib --token, --token-file or "
                "$TRIB_TOKEN)",
                what, n->cfg.domain);
        return -1;
    }
    return auth_verify(n, t, len, c, e);
}

int auth_write(node_t *n, const char *header, const char *product_id, token_claims_t *c, auth_err_t *e)
{
    char what[200];
    snprintf(what, sizeof what, "a write of %s", product_id);
    if (need_token(n, header, what, c, e) < 0)
        return -1;
    size_t dl = strlen(n->cfg.domain); /* a node never lets a token write another domain's product */
    if (strncmp(product_id, n->cfg.domain, dl) != 0 || product_id[dl] != '/') {
        char dom[64], at[300];
        snprintf(dom, sizeof dom, "%.*s", (int)strcspn(product_id, "/"), product_id);
        node_owner_cmd(n, dom, at, sizeof at);
        set_err(e, 403, "wrong_domain", "%s is not this node's domain '%s': write it at its owner's node%s", product_id,
                n->cfg.domain, at);
        return -1;
    }
    return decide(c, TOKEN_OP_WRITE, product_id, e);
}

int auth_admin(node_t *n, const char *header, token_claims_t *c, auth_err_t *e)
{
    if (need_token(n, header, "this operation", c, e) < 0)
        return -1;
    return decide(c, TOKEN_OP_ADMIN, n->cfg.domain, e);
}

int auth_grant_active(node_t *n, const char *subject, const char *product_id)
{
    grant_info_t g; /* grants: node/grants.h (the owner's access index) */
    return grants_active(n, subject, product_id, clock_wall_ms(), &g) == 1;
}

/* 1 when the token is of product_id's own domain: its people read its data without a grant
 * (grants are how other domains get in). */
static int own_domain(const token_claims_t *c, const char *product_id)
{
    size_t dl = strlen(c->domain);
    return !strncmp(product_id, c->domain, dl) && product_id[dl] == '/';
}

/* grants: a grant names its subject "x@D" and D's node signed the request; only a token issued by
 * D may speak for x@D (a token of another domain naming her must not ride her grant). */
static int subject_of_issuer(const token_claims_t *c)
{
    const char *at = strrchr(c->subject, '@');
    return at && !strcmp(at + 1, c->domain);
}

/* A verified token's read of product_id: scope, and a grant where need_grant. 0 allowed. */
static int read_decide(node_t *n, const token_claims_t *c, const char *product_id, const char *cls, int need_grant,
                       auth_err_t *e)
{
    if (decide(c, TOKEN_OP_READ, product_id, e) < 0)
        return -1;
    if (need_grant && !own_domain(c, product_id) &&
        (!subject_of_issuer(c) || !auth_grant_active(n, c->subject, product_id))) {
        char note[512];   /* the reader's latest grant ended (revoked, expired, with the certificate): say how */
        if (subject_of_issuer(c) && grants_lapsed(n, c->subject, product_id, clock_wall_ms(), note, sizeof note))
            set_err(e, 403, "grant_required", "%s is %s: %s; trib access request %s to ask again", product_id, cls,
                    note, product_id);
        else
            set_err(e, 403, "grant_required", "%s is %s: %s holds no active grant on it (trib access request %s)",
                    product_id, cls, c->subject, product_id);
        return -1;
    }
    return 0;
}

int auth_read(node_t *n, const char *token, size_t len, const char *product_id, const char *cls, auth_err_t *e)
{
    if (cls && !strcmp(cls, "public"))
        return 0;
    int restricted = cls && !strcmp(cls, "restricted");
    int need_grant = restricted || (cls && !strcmp(cls, "confidential"));
    token_claims_t c;
    int rc = 0;
    if (!token || !len) {
        set_err(e, 401, "token_required", "%s is %s: reading its records needs a token (Authorization: Bearer "
                                          "trib1....; trib --token, --token-file or $TRIB_TOKEN)",
                product_id, cls && *cls ? cls : "internal");
        rc = -1;
    } else if (auth_verify(n, token, len, &c, e) < 0 || read_decide(n, &c, product_id, cls, need_grant, e) < 0) {
        rc = -1;
    }
    if (rc < 0 && restricted) { /* never confirm a restricted product's records to a caller without a grant */
        e->status = 404;
        snprintf(e->kind, sizeof e->kind, "not_found");
        snprintf(e->detail, sizeof e->detail, "no records of %s for this caller", product_id);
    }
    return rc;
}

/* ------------------------------------------------------------------ classification */

#define CLS_SLOTS 256
static pthread_mutex_t cls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char id[STORE_ID_MAX];
    uint64_t seq;
    char cls[16];
} cls_cache[CLS_SLOTS];

void auth_classification(node_t *n, const char *product_id, uint64_t manifest_seq, char out[16])
{
    uint8_t h[8];
    crypto_generichash(h, sizeof h, (const uint8_t *)product_id, strlen(product_id), NULL, 0);
    size_t slot = ((size_t)h[0] | (size_t)h[1] << 8) % CLS_SLOTS;
    pthread_mutex_lock(&cls_mu);
    int hit = cls_cache[slot].seq == manifest_seq && !strcmp(cls_cache[slot].id, product_id);
    if (hit)
        memcpy(out, cls_cache[slot].cls, 16);
    pthread_mutex_unlock(&cls_mu);
    if (hit)
        return;
    snprintf(out, 16, "internal");
    char domain[64];
    const char *slash = strchr(product_id, '/');
    if (!slash || (size_t)(slash - product_id) >= sizeof domain)
        return;
    snprintf(domain, sizeof domain, "%.*s", (int)(slash - product_id), product_id);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (store_catalog_get(n->st, domain, manifest_seq, &bytes, &len) != 0)
        return;
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, bytes);
    Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
    if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST && ce->manifest &&
        ce->manifest->classification && *ce->manifest->classification)
        snprintf(out, 16, "%s", ce->manifest->classification);
    if (ce)
        trib__catalog_entry__free_unpacked(ce, NULL);
    if (se)
        trib__signed_entry__free_unpacked(se, NULL);
    free(bytes);
    pthread_mutex_lock(&cls_mu);
    snprintf(cls_cache[slot].id, sizeof cls_cache[slot].id, "%s", product_id);
    cls_cache[slot].seq = manifest_seq;
    memcpy(cls_cache[slot].cls, out, 16);
    pthread_mutex_unlock(&cls_mu);
}

/* ------------------------------------------------------------------ routed reads: the owner */

int auth_owner_check(void *ctx, const char *product, const uint8_t *token, size_t len, int *status, char *kind,
                     size_t kindlen, char *detail, size_t detlen)
{
    node_t *n = ctx;
    store_product_t p;
    char cls[16] = "internal";
    if (store_product_get(n->st, product, &p) == 0)
        auth_classification(n, product, p.manifest_seq, cls);
    auth_err_t e;
    if (auth_read(n, (const char *)token, len, product, cls, &e) == 0)
        return 0;
    *status = e.status;
    snprintf(kind, kindlen, "%s", e.kind);
    snprintf(detail, detlen, "%s", e.detail);
    return -1;
}

/* ------------------------------------------------------------------ ids, revocation */

#define ISSUED_MAX 4096
static pthread_mutex_t ids_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char id[TOKEN_ID_HEX];
    uint8_t sig[TOKEN_SIG_LEN];
} issued[ISSUED_MAX];
static size_t nissued;

void auth_remember(const token_claims_t *c)
{
    if (!c->nblocks)
        return;
    pthread_mutex_lock(&ids_mu);
    size_t i = nissued++ % ISSUED_MAX;
    memcpy(issued[i].id, c->id, TOKEN_ID_HEX);
    memcpy(issued[i].sig, c->revocation_ids[c->nblocks - 1], TOKEN_SIG_LEN);
    pthread_mutex_unlock(&ids_mu);
}

int auth_find_id(const char *id, uint8_t sig[TOKEN_SIG_LEN])
{
    int found = -1;
    pthread_mutex_lock(&ids_mu);
    size_t k = nissued < ISSUED_MAX ? nissued : ISSUED_MAX;
    for (size_t i = 0; i < k && found < 0; i++)
        if (!strcmp(issued[i].id, id)) {
            memcpy(sig, issued[i].sig, TOKEN_SIG_LEN);
            found = 0;
        }
    pthread_mutex_unlock(&ids_mu);
    if (found == 0)
        return 0;
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < CACHE_SLOTS && found < 0; i++)
        if (cache[i].used && !strcmp(cache[i].c.id, id)) {
            memcpy(sig, cache[i].c.revocation_ids[cache[i].c.nblocks - 1], TOKEN_SIG_LEN);
            found = 0;
        }
    pthread_mutex_unlock(&cache_mu);
    return found;
}

static int revoke_locked(node_t *n, const uint8_t sig[TOKEN_SIG_LEN], const char *token_id, char *err,
                         size_t errlen)
{
    char path[600], hex[2 * TOKEN_SIG_LEN + 1];
    snprintf(path, sizeof path, "%s/revoked.tokens", n->cfg.data);
    token_revocation_hex(sig, hex);
    int held;
    revocations_refresh(n, 1);   /* the log's revocations so far: one already there is not written again */
    if (revoke_logged(sig, &held))
        return 1;
    FILE *f = held ? NULL : fopen(path, "a");   /* held from the file only: its log entry failed before */
    if (!held && (!f || fprintf(f, "%s\n", hex) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)) {
        snprintf(err, errlen, "%s: cannot record the revocation: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    if (f)
        fclose(f);
    auth_revoke_add(sig);
    /* ... and a signed entry of this domain's log, so every node learns it by gossip */
    Trib__TokenRevocation tr = TRIB__TOKEN_REVOCATION__INIT;
    tr.revocation_id = (ProtobufCBinaryData){TOKEN_SIG_LEN, (uint8_t *)sig};
    tr.token_id = (char *)(token_id ? token_id : "");
    tr.revoked_ms = clock_wall_ms();
    uint64_t seq = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (catalog_publish_revocation(n->cat, &tr, &seq, &bytes, &len, err, errlen) < 0)
        return -1; /* held here (the file) all the same; a revoke asked again writes the entry */
    revoke_add(sig, own_domain_name, 1);
    if (n->gossip)
        gossip_announce(n->gossip, bytes, len);
    free(bytes);
    log_info("token revocation %.16s... in %s's log as catalog seq %llu", hex, n->cfg.domain,
             (unsigned long long)seq);
    return 0;
}

int auth_revoke(node_t *n, const uint8_t sig[TOKEN_SIG_LEN], const char *token_id, char *err, size_t errlen)
{
    static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;   /* two revokes of one token: one entry */
    pthread_mutex_lock(&one);
    int rc = revoke_locked(n, sig, token_id, err, errlen);
    pthread_mutex_unlock(&one);
    return rc;
}

/* Loads DATA/revoked.tokens (one revocation id in hex a line); unknown lines are skipped. */
static void revoked_load(node_t *n)
{
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/revoked.tokens", n->cfg.data);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t k = 0;
    while (fgets(line, sizeof line, f)) {
        uint8_t sig[TOKEN_SIG_LEN];
        size_t bl = 0;
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(line) == 2 * TOKEN_SIG_LEN &&
            sodium_hex2bin(sig, sizeof sig, line, strlen(line), NULL, &bl, NULL) == 0 && bl == TOKEN_SIG_LEN) {
            auth_revoke_add(sig);
            k++;
        }
    }
    fclose(f);
    if (k)
        log_info("holding %zu token revocations from %s", k, path);
}

int auth_claims(node_t *n, const char *text, size_t len, token_claims_t *c)
{
    auth_err_t e;
    if (!text || !len)
        return -1;
    quiet = 1;
    int rc = auth_verify(n, text, len, c, &e);
    quiet = 0;
    return rc;
}

void auth_viewer_init(auth_viewer_t *v, node_t *n, const char *header)
{
    size_t len = 0;
    const char *t = auth_bearer(header, &len);
    auth_viewer_token(v, n, t, len);
}

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

int auth_viewer_sees(void *viewer, const char *product_id)
{
    auth_viewer_t *v = viewer;
    auth_err_t e;
    if (!v->valid)
        return 0;
    quiet = 1;
    int rc;
    if (v->ngranted < 0) {
        rc = read_decide(v->n, &v->c, product_id, "restricted", 1, &e);
    } else {   /* read_decide's rule, the grants looked up once (auth_viewer_grants) */
        rc = decide(&v->c, TOKEN_OP_READ, product_id, &e);
        if (rc == 0 && !own_domain(&v->c, product_id) &&
            (!subject_of_issuer(&v->c) || !v->ngranted ||
             !bsearch(product_id, v->granted, (size_t)v->ngranted, sizeof *v->granted, id_cmp)))
            rc = -1;
    }
    quiet = 0;
    return rc == 0;
}

void auth_viewer_grants(auth_viewer_t *v)
{
    if (v->valid && v->ngranted < 0)
        v->ngranted = grants_active_products(v->n, v->c.subject, clock_wall_ms(), &v->granted);
}

void auth_viewer_done(auth_viewer_t *v)
{
    free(v->granted);
    v->granted = NULL;
    v->ngranted = -1;
}

void auth_viewer_token(auth_viewer_t *v, node_t *n, const char *token, size_t len)
{
    auth_err_t e;
    v->n = n;
    v->granted = NULL;
    v->ngranted = -1;
    quiet = 1;
    v->valid = token && len && auth_verify(n, token, len, &v->c, &e) == 0;
    quiet = 0;
}

/* 1 when product_id is restricted in this node's catalog (its latest manifest). */
static int is_restricted(node_t *n, const char *product_id)
{
    store_product_t p;
    char cls[16];
    if (store_product_get(n->st, product_id, &p) != 0)
        return 0;
    auth_classification(n, product_id, p.manifest_seq, cls);
    return !strcmp(cls, "restricted");
}

int auth_viewer_hides(auth_viewer_t *v, const char *product_id)
{
    return product_id && is_restricted(v->n, product_id) && !auth_viewer_sees(v, product_id);
}

int auth_product_view(node_t *n, const char *header, const char *product_id, const char *what, auth_err_t *e)
{
    if (!is_restricted(n, product_id))
        return 0;
    size_t len = 0;
    const char *t = auth_bearer(header, &len);
    if (auth_read(n, t, len, product_id, "restricted", e) == 0)
        return 0;
    snprintf(e->detail, sizeof e->detail, "no %s of %s for this caller", what, product_id);
    return -1;
}

int auth_may_see(node_t *n, const char *header, const char *product_id)
{
    auth_viewer_t v;
    auth_viewer_init(&v, n, header);
    return auth_viewer_sees(&v, product_id);
}
