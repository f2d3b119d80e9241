/* node/redirect.c - a read sent to its owner: see redirect.h. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "gossip/clock.h"
#include "gossip/gossip.h"
#include "gossip/prom.h"
#include "node/auth.h"
#include "node/config.h"
#include "node/redirect.h"

/* ------------------------------------------------------------------ the preference (RFC 7240) */

static int is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* RFC 7230 tchar: what a token is made of. */
static int is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Reads a word (token or quoted-string) at *p into out (at most cap - 1 bytes; longer: truncated,
 * which can never equal a short value). Moves *p past it. */
static void word(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && s[1])
                s++;
            if (n + 1 < cap)
                out[n++] = *s;
        }
        if (*s == '"')
            s++;
    } else {
        for (; is_tchar(*s); s++)
            if (n + 1 < cap)
                out[n++] = *s;
    }
    out[n] = '\0';
    *p = s;
}

/* Moves *p to the end of the current preference: past ';' parameters and anything malformed,
 * up to the next ',' outside a quoted string (or NUL). */
static void skip_rest(const char **p)
{
    const char *s = *p;
    while (*s && *s != ',') {
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s == '"')
                s++;
        } else {
            s++;
        }
    }
    *p = s;
}

int redirect_prefer_parse(const char *value)
{
    const char *s = value ? value : "";
    while (*s) {
        while (is_ows(*s) || *s == ',')
            s++;
        char name[16], val[16];
        if (*s == '"') {   /* a preference's name is a token: "redirect"=owner is none */
            skip_rest(&s);
            continue;
        }
        word(&s, name, sizeof name);
        if (strcasecmp(name, "redirect") == 0 && (is_ows(*s) || *s == '=' || *s == ';' || *s == ',' || !*s)) {
            while (is_ows(*s))
                s++;
            val[0] = '\0';
            if (*s == '=') {
                for (s++; is_ows(*s); s++)
                    ;
                word(&s, val, sizeof val);
            }
            /* the first instance counts (RFC 7240 §2); parameters after ';' are ignored */
            return strcasecmp(val, "owner") == 0 ? 1 : 0;
        }
        skip_rest(&s);
    }
    return -1;
}

typedef struct { int asked; } prefer_t;

static enum MHD_Result each_prefer(void *ctx, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    prefer_t *p = ctx;
    if (strcasecmp(key, "Prefer") != 0)
        return MHD_YES;
    int r = redirect_prefer_parse(value);
    if (r < 0)
        return MHD_YES;     /* no "redirect" here: the next Prefer header may name it */
    p->asked = r;
    return MHD_NO;          /* the first instance decides */
}

/* ------------------------------------------------------------------ counters */

static atomic_uint_fast64_t redirects;
/* Why a read that asked was relayed instead: indexes of k_declined. */
enum { D_HIDDEN, D_NO_OWNER, D_NOT_ALIVE, D_UNCERTIFIED, D_NO_ADDRESS, D_LOOPBACK, D_NOT_BOUND, D_CONFLICT,
       D_CERT_EXPIRED, D_BAD_TARGET, D_INTERNAL, D_COUNT };
static const char *const k_declined[D_COUNT] = {"hidden", "no_owner", "owner_not_alive", "uncertified",
                                                "no_address", "loopback", "not_bound_key", "conflict",
                                                "cert_expired", "bad_target", "internal"};
static atomic_uint_fast64_t declined[D_COUNT];

static struct MHD_Response *decline(int why)
{
    atomic_fetch_add_explicit(&declined[why], 1, memory_order_relaxed);
    return NULL;
}

void redirect_metrics(FILE *f)
{
    prom_family(f, "trib_http_redirects_total", "counter",
                "Reads asked with Prefer: redirect=owner at a node that does not own the product, answered "
                "307 to the owner's HTTP address.");
    prom_sample(f, "trib_http_redirects_total", "route=\"records_get\"", atomic_load(&redirects));
    prom_family(f, "trib_http_redirect_declined_total", "counter",
                "Reads that asked for a redirect to the owner and were relayed instead, by reason.");
    for (int i = 0; i < D_COUNT; i++) {
        char labels[40];
        snprintf(labels, sizeof labels, "reason=\"%s\"", k_declined[i]);
        prom_sample(f, "trib_http_redirect_declined_total", labels, atomic_load(&declined[i]));
    }
}

/* ------------------------------------------------------------------ the decision */

/* 1 when addr is a HOST:PORT a client can connect to: a host of name or address characters that
 * is not a wildcard (a node listening on 0.0.0.0 advertises nothing a client can use). */
static int usable(const char *addr, int *loopback)
{
    char host[256];
    int port;
    if (!addr[0] || config_split_addr(addr, host, sizeof host, &port) < 0 || !host[0])
        return 0;
    for (const char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-:[]", *p)))
            return 0;
    if (config_addr_wildcard(addr))
        return 0;
    *loopback = config_addr_loopback(addr);
    return 1;
}

/* 1 when the caller's connection comes from this machine (an IPv4 or IPv6 loopback address). */
static int client_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* The request target copied into Location as it came: a path, and bytes a header may carry. */
static int target_ok(const char *uri)
{
    if (!uri || uri[0] != '/' || strlen(uri) > 4096)
        return 0;
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

struct MHD_Response *redirect_to_owner(node_t *n, struct MHD_Connection *c, const char *id, uint64_t manifest_seq,
                                       const char *uri)
{
    prefer_t pref = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, each_prefer, &pref);
    if (!pref.asked)
        return NULL;
    /* The caller learns nothing here that the relay path would not tell it: a restricted product
     * it may not see is relayed (the owner answers 404, as without the preference), and with
     * --require-token the owner's address goes only to a caller whose token this node accepts
     * (as /v1/members does). Everything else the owner decides, as for a direct read. */
    char cls[16];
    auth_classification(n, id, manifest_seq, cls);   /* cached by manifest */
    int restricted = !strcmp(cls, "restricted");
    if (restricted || n->cfg.require_token) {
        auth_viewer_t v;
        auth_viewer_init(&v, n, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
        int hidden = !v.valid || (restricted && !auth_viewer_sees(&v, id));
        auth_viewer_done(&v);
        if (hidden)
            return decline(D_HIDDEN);
    }
    char domain[64];
    snprintf(domain, sizeof domain, "%.*s", (int)strcspn(id, "/"), id);
    gossip_member_t owner;
    if (!target_ok(uri))   /* http.c refused such a target already (or its copy failed): never copied into a header */
        return decline(D_BAD_TARGET);
    int found = n->gossip ? gossip_read_owner(n->gossip, domain, &owner) : -1;
    if (found == -2)   /* only members that do not hold the domain's bound key: in open mode anyone may say so */
        return decline(D_NOT_BOUND);
    if (found == -3)   /* chartered: only members not certified for the domain now (the relay answers 503) */
        return decline(D_UNCERTIFIED);
    if (found < 0)
        return decline(D_NO_OWNER);
    if (owner.state != TRIB__MEMBER_STATE__ALIVE)   /* suspect, dead or left: the relay says which */
        return decline(D_NOT_ALIVE);
    if (owner.conflict)   /* another key claims the domain too: the relay picks, as without the preference */
        return decline(D_CONFLICT);
    /* Open mode: the member holding the key bound to the domain by its first catalog entry, at the
     * address it signed into its member claim (gossip/swim_sig.c) under the federation's shared
     * CURVE key. Chartered: besides, a key the federation certified for this domain whose
     * certificate we hold and which holds now (verified is computed when the member table
     * changes: the expiry is checked against the clock here). */
    if (gossip_trust(n->gossip) && !owner.verified)
        return decline(D_UNCERTIFIED);
    if (gossip_trust(n->gossip) && owner.cert_expires_ms <= clock_wall_ms())
        return decline(D_CERT_EXPIRED);
    int loop = 0;
    if (!usable(owner.http, &loop) || !strcmp(owner.http, n->cfg.http) ||
        (n->cfg.http_advertise[0] && !strcmp(owner.http, n->cfg.http_advertise)))
        return decline(D_NO_ADDRESS);
    if (loop && !client_loopback(c))   /* an owner on loopback is no use to a client elsewhere */
        return decline(D_LOOPBACK);

    /* Every node of a federation is assumed to serve the scheme this one serves (docs/http-api.md):
     * the Location's scheme is the request's own, so an https request is never sent to http. */
    char location[4500], hex[ID_HEX_LEN];
    snprintf(location, sizeof location, "%s://%s%s", n->cfg.tls_cert[0] ? "https" : "http", owner.http, uri);
    identity_hex(owner.id, hex);
    json_t *j = json_pack("{s:s,s:s,s:s++#+++}", "redirect", location, "owner", hex, "detail", id,
                          " is read from its owner node ", hex, 12, " (domain ", owner.domain,
                          "), as asked (Prefer: " REDIRECT_PREFER ")");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body)
        return decline(D_INTERNAL);
    size_t len = strlen(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return decline(D_INTERNAL);
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Location", location);
    MHD_add_response_header(r, "Preference-Applied", REDIRECT_PREFER);
    MHD_add_response_header(r, "Vary", "Prefer");
    atomic_fetch_add_explicit(&redirects, 1, memory_order_relaxed);
    return r;
}

void redirect_vary(struct MHD_Response *r) { MHD_add_response_header(r, "Vary", "Prefer"); }
