/* node/http_fed.c - POST /v1/federation/objects and GET /v1/federation (see node/http_fed.h).
 *
 * Owns: reading a submitted trust object file from a request body (bounded JSON, "kind" and the
 * base64 "signed" bytes, which must be of the kind the file says), handing the bytes to the
 * federation log, and mapping its verdict to a status and error code; refusing a certificate that
 * has expired (it admits nobody) before it is offered; the rate limits of this
 * anonymous endpoint (per client and for all clients: node/ratelimit.h) and their counter; a file
 * refused before its bytes reach the federation log is counted there all the same.
 * Must not: verify signatures itself (gossip/fedlog.c and the trust store do) or send replies. */
#include "node/http_fed.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/fedlog.h"
#include "gossip/clock.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/prom.h"
#include "node/auth.h"
#include "node/ratelimit.h"

static ratelimit_t limit = RATELIMIT_INIT(FED_SUBMIT_RATE, FED_SUBMIT_BURST, FED_SUBMIT_ALL_RATE, FED_SUBMIT_ALL_BURST);
static atomic_uint_fast64_t limited[2];   /* [0] client, [1] all */
static log_limit_t limited_log;

/* A submission over a rate (which: RATELIMIT_CLIENT or RATELIMIT_ALL): counted, logged at most
 * once every 10 s (with how many went unlogged), answered 429 with when to retry. */
static unsigned rate_limited(const char *client, int which, uint64_t retry_ms, json_t **reply, unsigned *retry_s)
{
    int all = which == RATELIMIT_ALL;
    char key[RATELIMIT_KEY], who[RATELIMIT_KEY + 80];
    ratelimit_key(client, key);
    if (strcmp(key, client) != 0)
        snprintf(who, sizeof who, "%s (its bucket: %s)", client, key);
    else
        snprintf(who, sizeof who, "%s", client);
    atomic_fetch_add(&limited[all], 1);
    uint64_t held;
    char tail[96];
    if (log_limit(&limited_log, 10000, &held))
        log_warn("federation: POST /v1/federation/objects from %s refused: %sover %.0f per second (burst %.0f)%s",
                 who, all ? "all clients together " : "", all ? FED_SUBMIT_ALL_RATE : FED_SUBMIT_RATE,
                 all ? FED_SUBMIT_ALL_BURST : FED_SUBMIT_BURST, log_held(tail, sizeof tail, held, "refusals"));
    *retry_s = (unsigned)((retry_ms + 999) / 1000);
    char detail[300];
    if (all)
        snprintf(detail, sizeof detail, "this node takes at most %.0f submissions per second from all clients "
                 "together (after a burst of %.0f), and that is used up; retry in %u s", FED_SUBMIT_ALL_RATE,
                 FED_SUBMIT_ALL_BURST, *retry_s);
    else
        snprintf(detail, sizeof detail, "too many submissions from %s: at most %.0f per second after a burst of "
                 "%.0f; retry in %u s", who, FED_SUBMIT_RATE, FED_SUBMIT_BURST, *retry_s);
    *reply = json_pack("{s:s,s:s,s:s,s:I}", "error", "rate_limited", "bucket", all ? "all" : "client", "detail",
                       detail, "retry_after_s", (json_int_t)*retry_s);
    return 429;
}

void http_fed_metrics(FILE *f)
{
    prom_family(f, "trib_fed_submit_rate_limited_total", "counter",
                "POST /v1/federation/objects refused (429), by bucket: a client's (an IPv4 address, an IPv6 /64) "
                "or all clients'.");
    prom_sample(f, "trib_fed_submit_rate_limited_total", "bucket=\"client\"", atomic_load(&limited[0]));
    prom_sample(f, "trib_fed_submit_rate_limited_total", "bucket=\"all\"", atomic_load(&limited[1]));
}

static unsigned error(json_t **reply, unsigned status, const char *code, const char *detail)
{
    *reply = json_pack("{s:s,s:s}", "error", code, "detail", detail);
    return status;
}

/* An error answer for a file refused before its bytes could be offered: counted and logged by the
 * federation log as its own refusals are (kind: the file's, 0 when it names none). */
static unsigned refuse_file(fedlog_t *f, json_t **reply, int kind, int reason, unsigned status, const char *detail)
{
    fedlog_refuse_file(f, kind, reason, detail);
    return error(reply, status, fedlog_reason_name(reason), detail);
}

static unsigned status_of(int reason, const char **code)
{
    *code = fedlog_reason_name(reason);
    switch (reason) {
    case TRUST_FORGED:
    case TRUST_BELOW_THRESHOLD:
    case TRUST_WRONG_FEDERATION:
    case TRUST_WRONG_DOMAIN:        /* a hand-over whose old key was not the domain's when it signed */
    case TRUST_WRONG_KEY:
    case TRUST_EXPIRED:
    case TRUST_NOT_YET_VALID:
    case TRUST_REVOKED:
    case TRUST_UNCERTIFIED:
    case TRUST_ROTATED:
        return 403;
    case TRUST_STALE_VERSION:
    case TRUST_VERSION_GAP:
    case TRUST_BROKEN_CHAIN:
    case FEDLOG_R_OPEN_MODE:
        return 409;
    case FEDLOG_R_POLICY:
        return 422;
    case FEDLOG_R_FULL:
        *code = "fedlog_full";
        return 507;
    case FEDLOG_R_STORAGE:      /* not stored, and not in force (gossip/fedlog.h, Durability) */
        return 500;
    case FEDLOG_R_NO_SPACE:     /* as a record write on a full disk: a retry can succeed once space is freed */
        return 507;
    case FEDLOG_R_BUSY:        /* the loop did not take it in time: the node is busy (retry: FED_RETRY_S) */
        return 503;
    default:
        return 400;
    }
}

/* 1 when bytes are a certificate whose window ended before now (beyond TRUST_SKEW_MS) and whose
 * signatures verify (trust store t would hold it), with what expired and when in detail: it admits
 * nobody, so an operator's submission of it is refused before anything is stored. Dates first, from
 * one parse: only an expired one has its signatures checked here (a valid one was verified twice,
 * here and by the federation log, and parsed three times); a forged one is left to the log, which
 * refuses and counts it as forged whatever its dates. One not valid yet is taken (operators pre-issue
 * certificates), and a peer's expired one still is (gossip/fedlog.c: entries signed in its window
 * are judged by it). */
static int expired_cert(trust_t *t, const uint8_t *bytes, size_t len, char *detail, size_t cap)
{
    cert_t c;
    char why[300], sigs[300];
    if (!t || cert_parse(bytes, len, &c, why, sizeof why) != 0)
        return 0;   /* the federation log refuses it as malformed */
    int expired = cert_check_claim(&c, NULL, c.domain, c.node_key, clock_wall_ms(), TRUST_SKEW_MS, why,
                                   sizeof why) == TRUST_EXPIRED;
    cert_free(&c);
    if (!expired || trust_check(t, TRUST_KIND_CERT, bytes, len, sigs, sizeof sigs) != TRUST_OK)
        return 0;   /* in its window, or refused by the log with its verdict (forged, malformed ...) */
    snprintf(detail, cap, "%s: an expired certificate admits nobody and is not stored; issue a new one "
             "(trib fed certify)", why);
    return 1;
}

/* This host's own address (what `trib fed submit` on the node's host comes from), or an admin
 * token of this node's domain: an operator. Other 127/8 addresses are not (tests and local fan-out
 * stand for distinct clients with them). */
static int operator_request(node_t *n, const char *client, const char *authz)
{
    if (client && (!strcmp(client, "127.0.0.1") || !strcmp(client, "::1") || !strcmp(client, "::ffff:127.0.0.1")))
        return 1;
    token_claims_t c;
    auth_err_t e;
    return authz && auth_admin(n, authz, &c, &e) == 0;
}

unsigned http_fed_submit(node_t *n, const char *client, const char *authz, const char *body, size_t len,
                         json_t **reply, unsigned *retry_after_s)
{
    fedlog_t *f = gossip_fedlog(n->gossip);
    char detail[600];
    uint64_t retry_ms = 0, now = clock_ms();
    *retry_after_s = 0;
    int lim = ratelimit_take(&limit, client, now, &retry_ms);   /* before anything is parsed */
    if (lim == RATELIMIT_ALL) {   /* an operator's request still passes, on its own bucket (which also
                                   * bounds the token checks of those who only claim to be one) */
        uint64_t own_ms = 0;
        int own = ratelimit_take_own(&limit, client, now, &own_ms);
        if (own != RATELIMIT_OK)
            lim = own, retry_ms = own_ms;
        else if (operator_request(n, client, authz))
            lim = RATELIMIT_OK;
    }
    if (lim != RATELIMIT_OK)
        return rate_limited(client ? client : "?", lim, retry_ms, reply, retry_after_s);
    if (!f) {
        *retry_after_s = FED_RETRY_S;
        return error(reply, 503, "busy", "this node's federation log is not running yet; retry shortly");
    }
    if (len > TRUST_FILE_MAX) {
        snprintf(detail, sizeof detail, "body of %zu bytes: a trust object file is at most %u bytes", len,
                 TRUST_FILE_MAX);
        return refuse_file(f, reply, 0, FEDLOG_R_TOO_LARGE, 413, detail);
    }
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        snprintf(detail, sizeof detail, "body: expected a trust object file (JSON object with \"kind\" and "
                 "\"signed\"), %s at line %d column %d", j ? "not an object" : "invalid JSON", je.line, je.column);
        json_decref(j);
        return refuse_file(f, reply, 0, TRUST_MALFORMED, 400, detail);
    }
    const char *kname = json_string_value(json_object_get(j, "kind"));
    int want = 0;
    for (int k = TRUST_KIND_CHARTER; kname && k <= TRUST_KIND_ROTATE; k++)
        if (!strcmp(kname, trust_file_kind_name((trust_kind_t)k)))
            want = k;
    const char *kind = want ? trust_file_kind_name((trust_kind_t)want) : "";   /* outlives j */
    if (!want) {
        json_decref(j);
        return refuse_file(f, reply, 0, TRUST_MALFORMED, 400, "body: \"kind\" must be trib.charter, trib.cert, "
                           "trib.revocation, trib.policy or trib.rotation");
    }
    uint8_t *bytes;
    size_t got;
    char why[200];
    int bad = trust_signed_decode(j, &bytes, &got, why, sizeof why);
    json_decref(j);
    if (bad) {
        snprintf(detail, sizeof detail, "body: %s", why);
        return refuse_file(f, reply, want, TRUST_MALFORMED, 400, detail);
    }
    Trib__TrustSigned *env = trib__trust_signed__unpack(NULL, got, bytes);
    int got_kind = env ? (int)env->kind : 0;
    if (env)
        trib__trust_signed__free_unpacked(env, NULL);
    if (env && got_kind != want) {
        free(bytes);
        snprintf(detail, sizeof detail, "body: the file says %s, but its signed bytes are a %s", kind,
                 trust_kind_name((trust_kind_t)got_kind));
        return refuse_file(f, reply, want, FEDLOG_R_KIND_MISMATCH, 400, detail);
    }
    if (want == TRUST_KIND_CERT && expired_cert(fedlog_trust(f), bytes, got, detail, sizeof detail)) {
        free(bytes);
        return refuse_file(f, reply, want, TRUST_EXPIRED, 403, detail);
    }
    fedlog_result_t r;
    int rc = fedlog_offer(f, bytes, got, NULL, &r);
    free(bytes);
    char hex[2 * TRUST_HASH_LEN + 1];
    trust_hex(r.hash, TRUST_HASH_LEN, hex);
    if (rc == 0) {
        *reply = json_pack("{s:s,s:s,s:s}", "result", r.added ? "added" : "held", "kind",
                           trust_kind_name((trust_kind_t)r.kind), "hash", hex);
        return r.added ? 201 : 200;
    }
    const char *code;
    unsigned status = status_of(r.reason, &code);
    if (status == 503)
        *retry_after_s = FED_RETRY_S;
    snprintf(detail, sizeof detail, "%s", r.err);
    return error(reply, status, code, detail);
}

unsigned http_fed_show(node_t *n, json_t **reply)
{
    fedlog_t *f = gossip_fedlog(n->gossip);
    if (!f)
        return error(reply, 503, "busy", "this node's federation log is not running yet; retry shortly");
    *reply = fedlog_status_json(f);
    return *reply ? 200 : error(reply, 500, "internal", "out of memory");
}
