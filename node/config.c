/* node/config.c - agent options as a table (name, kind, bounds, default, help), applied from the
 * --config YAML file (libfyaml) and then from the command line. Validation lives here, once. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "gossip/identity.h"
#include "gossip/link.h"
#include "gossip/transport.h"
#include "node/config.h"
#include "node/near.h"
#include "gossip/swim.h"
#include "gossip/textfile.h"
#include "node/yaml.h"

enum kind { K_STR, K_ADDR, K_SEED, K_U64, K_MIBS };   /* K_MIBS: a decimal number of MiB/s (a double) */

typedef struct {
    const char *name;
    enum kind kind;
    size_t off, size;        /* field offset; string capacity */
    uint64_t min, max;       /* bounds for K_U64 */
    const char *def;
    const char *help;
} option_t;

#define STR_(x) #x
#define STR(x) STR_(x)
#define SWIM_DEF(name) STR(SWIM_DEFAULT_##name)   /* "1000" from SWIM_DEFAULT_PROBE_INTERVAL_MS */
#define S(f, k, d, h) {#f, k, offsetof(config_t, f), sizeof(((config_t *)0)->f), 0, 0, d, h}
#define U(f, lo, hi, d, h) {#f, K_U64, offsetof(config_t, f), 0, lo, hi, d, h}

static const option_t options[] = {
    S(data, K_STR, "", "data directory (LMDB environment and identity.key); required"),
    S(domain, K_STR, "", "this node's domain (team): required on the first start of DIR, which remembers "
                         "it (later starts may leave it out; another domain is refused)"),
    S(listen, K_ADDR, "127.0.0.1:7470", "peer (gossip) address HOST:PORT"),
    S(http, K_ADDR, "127.0.0.1:7480", "HTTP API address HOST:PORT"),
    S(advertise, K_STR, "", "peer address other nodes use to reach this one (default: --listen)"),
    S(http_advertise, K_STR, "", "HTTP address HOST:PORT clients are sent to when another node redirects a read "
                                 "here, and that members list (default: --http)"),
    S(link_listen, K_STR, "", "data link address HOST:PORT owners serve routed reads on, straight to the relay "
                              "(default: --listen's host, a free port; a fixed port for firewalls; off: none)"),
    S(link_advertise, K_STR, "", "data link address other nodes dial (default: --advertise's host and the link's "
                                 "bound port)"),
    S(link_cipher, K_STR, "auto", "the cipher of the data links this node dials: auto (AES-256-GCM where the CPU runs "
                                  "AES in hardware, else ChaCha20-Poly1305) | aesgcm | chachapoly; every node takes both"),
    U(link_max, 1, 65536, "256", "data links served at once (more are refused as busy); one node holds a quarter "
                                 "of them at most, 64 at most (more: per_peer)"),
    U(link_send_ms, 1000, 86400000, "600000", "a read on a data link may fall this far behind --link-min-rate in "
                                             "all (ms; past it the link is closed, and the relay reads on over a "
                                             "new one when its client reads again)"),
    U(link_min_rate, 1024, 1073741824, "65536", "bytes/s a relay must take a read on a data link at, on average, "
                                                "beyond --link-send-ms of slack (slower: its link is closed, \"slow\")"),
    {"seed", K_SEED, 0, 0, 0, 0, NULL,
     "another node to join through, HOST:PORT; with --charter it must be NODE_ID@HOST:PORT "
     "(the first node of a federation needs none) (repeatable)"},
    S(charter, K_STR, "", "chartered federation: the charter file (charter.json) every node is given"),
    S(cert, K_STR, "", "chartered federation: this node's certificate for its key and --domain (NAME.cert)"),
    S(federation_secret, K_STR, "", "open mode: secret shared by all nodes (derives the CURVE server key); "
                                    "required when --listen is beyond loopback and there is no --charter"),
    S(log_level, K_STR, "info", "error | warn | info | debug"),
    S(tls_cert, K_STR, "", "PEM certificate (chain): serve the HTTP API over HTTPS (with --tls-key)"),
    S(tls_key, K_STR, "", "PEM private key of --tls-cert (mode 0600)"),
    U(require_token, 0, 1, "0", "1: status, members, metrics, search and manifests need a valid token too"),
    U(map_size_mb, 1, 1 << 20, "64", "initial LMDB map size in MiB (grows on demand)"),
    U(map_max_mb, 1, 1 << 30, "1048576", "largest LMDB map size in MiB"),
    U(max_body_mb, 1, 4096, "64", "largest request body in MiB"),
    U(max_record_kb, 1, 65536, "1024", "largest record in KiB"),
    U(max_records, 1, 10000000, "100000", "most records in one request"),
    U(http_threads, 0, 16384, "0", "most concurrent HTTP connections (0: 16384, less when the descriptor limit is lower)"),
    U(write_workers, 1, 1024, "32", "write requests (publish, append, retire) run at once, sharing durable commits; "
                                    "16 per worker more wait, and a write beyond them is answered 503 busy"),
    U(read_pause_ms, 1000, 3600000, "120000", "a read's client (records, a stream) may take nothing this long "
                                             "before its connection is closed (other connections: 15 s quiet)"),
    S(policy, K_STR, "", "open mode: the policy set (YAML) every publish is checked against (trib policy test FILE)"),
    /* SWIM timings: their defaults are gossip/swim.h's */
    U(probe_interval_ms, 10, 600000, SWIM_DEF(PROBE_INTERVAL_MS), "SWIM probe interval"),
    U(probe_timeout_ms, 5, 600000, SWIM_DEF(PROBE_TIMEOUT_MS), "SWIM probe timeout"),
    U(indirect_checks, 0, SWIM_MAX_INDIRECT, SWIM_DEF(INDIRECT_CHECKS), "members asked to probe indirectly"),
    U(suspicion_mult, 1, 100, SWIM_DEF(SUSPICION_MULT), "suspicion timeout multiplier"),
    U(suspicion_max_mult, 1, 100, SWIM_DEF(SUSPICION_MAX_MULT), "largest suspicion timeout multiplier"),
    U(gossip_interval_ms, 10, 600000, SWIM_DEF(GOSSIP_INTERVAL_MS), "gossip interval"),
    U(gossip_nodes, 1, 64, SWIM_DEF(GOSSIP_NODES), "peers gossiped to per interval"),
    U(push_pull_interval_ms, 100, 86400000, SWIM_DEF(PUSH_PULL_INTERVAL_MS), "member list push-pull interval"),
    U(retransmit_mult, 1, 100, SWIM_DEF(RETRANSMIT_MULT), "piggyback retransmit multiplier"),
    U(awareness_max, 1, 64, SWIM_DEF(AWARENESS_MAX), "Lifeguard local health ceiling"),
    U(anti_entropy_ms, 10, 3600000, "2000", "catalog anti-entropy interval"),
    U(retry_max_ms, 1000, 86400000, SWIM_DEF(RETRY_MAX_MS), "longest backoff when retrying dead members and seeds"),
    U(max_msg_kb, 64, 65536, "4096", "largest peer message in KiB"),
    {"peer_answer_rate", K_MIBS, offsetof(config_t, peer_answer_rate), 0, 0, 65536, "32",
     "MiB/s of answers (catalog entries, federation-log objects) one peer may ask for, in bursts of up to "
     "2 s of it; a peer past it is not answered until it refills; all peers together, however many keys ask, "
     "get at most 4 times it (the node's budget) (decimals allowed; 0: neither limit)"},
};
#define NOPTS (sizeof options / sizeof options[0])

/* config_split_addr's work; why (when non-NULL) gets what is wrong, for an error after "'ADDR' is
 * not HOST:PORT" (": the port 99999 is out of range (1-65535)"...), "" when it splits. */
static int split_addr(const char *addr, char *host, size_t hostlen, int *port, char *why, size_t cap)
{
    const char *colon = strrchr(addr, ':'), *reason = NULL;
    char *end = NULL;
    long p = 0;
    if (colon) {
        errno = 0;
        p = strtol(colon + 1, &end, 10);
    }
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon)
        reason = ": it has no :PORT";
    else if (colon == addr)
        reason = ": it has no host before :PORT";
    else if (end == colon + 1 || *end)
        reason = ": the port '%.16s' is not a number";
    else if (errno || p < 1 || p > 65535)
        reason = ": the port %.16s is out of range (1-65535)";
    else if (hl >= hostlen)
        reason = ": the host is too long";
    else if (addr[0] == '[' ? hl < 3 || addr[hl - 1] != ']' : memchr(addr, ':', hl) != NULL)
        /* ::1:7470: an IPv6 host goes in brackets, or its last group reads as the port */
        reason = addr[0] != '[' && memchr(addr, '.', hl) ? ": it has more than one :PORT"
                                                           : ": an IPv6 address goes in brackets, [ADDRESS]:PORT (e.g. [::1]:7470)";
    if (why)
        snprintf(why, cap, reason ? reason : "%s", reason ? colon + 1 : "");
    if (reason)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    return split_addr(addr, host, hostlen, port, NULL, 0);
}

/* Why addr is not HOST:PORT (split_addr's words), "" when it is. */
static const char *addr_why(const char *addr, char *why, size_t cap)
{
    char host[128];
    int port;
    split_addr(addr, host, sizeof host, &port, why, cap);
    return why;
}

int config_addr_loopback(const char *addr)
{
    char host[128];
    int port;
    if (config_split_addr(addr, host, sizeof host, &port) < 0)
        return 0;
    if (!strncmp(host, "127.", 4) || !strcasecmp(host, "localhost"))
        return 1;
    size_t l = strlen(host);
    struct in6_addr a;
    if (host[0] != '[' || l < 3 || l - 2 >= INET6_ADDRSTRLEN)
        return 0;
    char v6[INET6_ADDRSTRLEN];
    memcpy(v6, host + 1, l - 2);
    v6[l - 2] = '\0';
    /* [::1] in any spelling, and an IPv4 loopback address mapped to IPv6 ([::ffff:127.0.0.1]) */
    return inet_pton(AF_INET6, v6, &a) == 1 &&
           (IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127));
}

int config_addr_wildcard(const char *addr)
{
    char host[128];
    int port;
    if (config_split_addr(addr, host, sizeof host, &port) < 0)
        return 0;
    if (!strcmp(host, "0.0.0.0"))
        return 1;
    size_t l = strlen(host);
    struct in6_addr a;
    char v6[INET6_ADDRSTRLEN];
    if (host[0] != '[' || l < 3 || l - 2 >= INET6_ADDRSTRLEN)
        return 0;
    memcpy(v6, host + 1, l - 2);
    v6[l - 2] = '\0';
    return inet_pton(AF_INET6, v6, &a) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a);   /* [::] in any spelling */
}

static const option_t *find(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *a = options[i].name, *b = name;
        for (; *a && *b; a++, b++) /* accept - for _ */
            if (!(*a == *b || (*a == '_' && *b == '-')))
                break;
        if (!*a && !*b)
            return &options[i];
    }
    return NULL;
}

/* " (did you mean --X?)" when name is a likely typo of an option (dashes as written: CLI), or "". */
static const char *near_option(const char *name, int dashes, char *buf, size_t cap)
{
    char n[32];
    size_t l = strlen(name);
    if (l >= sizeof n)
        return "";
    for (size_t i = 0; i <= l; i++)   /* compare in the table's spelling: _ for - */
        n[i] = name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < NOPTS; i++)
        if (near_typo(n, l, options[i].name)) {
            char shown[64];
            snprintf(shown, sizeof shown, "%s", options[i].name);
            for (char *p = shown; dashes && *p; p++)
                *p = *p == '_' ? '-' : *p;
            snprintf(buf, cap, " (did you mean %s%s?)", dashes ? "--" : "", shown);
            return buf;
        }
    return "";
}

/* Checks a seed by the rules the gossip layer applies to it at start (gossip_start: the NODE_ID a
 * node id, the address one the peer transport dials, transport_addr_valid), here, before the data
 * dir is touched: 0, or -1 with why saying what is wrong (after "'SEED' "). */
static int seed_check(const char *val, char *why, size_t cap)
{
    for (const unsigned char *p = (const unsigned char *)val; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) {
            char what[16];
            snprintf(what, sizeof what, *p == ' ' ? "a space" : *p == '\t' ? "a tab" : *p == '\n' ? "a line break"
                                                                         : "byte 0x%02x", *p);
            snprintf(why, cap, "has %s at character %zu: a seed is one HOST:PORT or NODE_ID@HOST:PORT; give each "
                     "seed its own --seed (in a --config file, one list item each: '- HOST:PORT' lines indented alike)",
                     what, (size_t)((const char *)p - val) + 1);
            return -1;
        }
    const char *at = strchr(val, '@'), *addr = at ? at + 1 : val;
    char idhex[ID_HEX_LEN], host[128];
    uint8_t pk[ID_PK_LEN];
    int port;
    if (config_split_addr(addr, host, sizeof host, &port) < 0 || (at && at - val != ID_HEX_LEN - 1)) {
        snprintf(why, cap, "is not HOST:PORT or NODE_ID@HOST:PORT (NODE_ID: 64 hex characters)%s",
                 at && at - val != ID_HEX_LEN - 1 ? "" : addr_why(addr, (char[96]){0}, 96));
        return -1;
    }
    if (at) {
        memcpy(idhex, val, ID_HEX_LEN - 1);
        idhex[ID_HEX_LEN - 1] = '\0';
        if (identity_from_hex(idhex, pk) != 0) {
            snprintf(why, cap, "is not NODE_ID@HOST:PORT: NODE_ID is not 64 hex characters (as 'trib identity' prints)");
            return -1;
        }
    }
    if (!transport_addr_valid(addr)) {
        if (strlen(addr) >= TRANSPORT_ADDR_MAX)
            snprintf(why, cap, "is not a usable HOST:PORT: longer than %d characters", TRANSPORT_ADDR_MAX - 1);
        else
            snprintf(why, cap, "is not a usable HOST:PORT: HOST '%s' is not a host name or IPv4 address (letters, "
                     "digits, '.' and '-') or an IPv6 address in brackets ([ADDRESS]:PORT)", host);
        return -1;
    }
    return 0;
}

static int set(config_t *c, const option_t *o, const char *val, char *err, size_t errlen)
{
    char *field = (char *)c + o->off;
    char host[128];
    int port;
    switch (o->kind) {
    case K_ADDR:
        if (config_split_addr(val, host, sizeof host, &port) < 0) {
            snprintf(err, errlen, "%s: '%s' is not HOST:PORT%s", o->name, val, addr_why(val, (char[96]){0}, 96));
            return -1;
        }
        /* fall through */
    case K_STR:
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: longer than %zu characters", o->name, o->size - 1);
            return -1;
        }
        strcpy(field, val);
        return 0;
    case K_SEED: {
        char why[300];
        if (seed_check(val, why, sizeof why) < 0) {
            snprintf(err, errlen, "seed: '%s' %s", val, why);
            return -1;
        }
        if (c->nseeds >= CONFIG_MAX_SEEDS || strlen(val) >= sizeof c->seeds[0]) {
            snprintf(err, errlen, "seed: at most %d seeds of up to %zu characters", CONFIG_MAX_SEEDS,
                     sizeof c->seeds[0] - 1);
            return -1;
        }
        strcpy(c->seeds[c->nseeds++], val);
        return 0;
    }
    case K_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || *end || end == val || val[0] == '-' || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64, o->name, val,
                     o->min, o->max);
            return -1;
        }
        *(uint64_t *)(void *)field = v;
        return 0;
    }
    case K_MIBS: {
        /* digits with at most one '.': no sign, exponent, hex, inf or nan for strtod to take */
        size_t digits = strspn(val, "0123456789"), frac = val[digits] == '.' ? strspn(val + digits + 1, "0123456789") : 0;
        size_t len = digits + (val[digits] == '.' ? 1 + frac : 0);
        double v = digits + frac && !val[len] ? strtod(val, NULL) : -1;
        if (v < 0 || (v > 0 && v < 0.01) || v > (double)o->max) {
            snprintf(err, errlen, "%s: '%s' is not a number of MiB/s in 0.01..%" PRIu64 " (or 0: no limit)", o->name,
                     val, o->max);
            return -1;
        }
        *(double *)(void *)field = v;
        return 0;
    }
    }
    return -1;
}

/* why names option o by its canonical name ("probe_interval_ms: ..."); the user wrote it as
 * written ("--probe-interval-ms", or "probe-interval-ms" in a file): the error says it so. */
static const char *as_written(const option_t *o, const char *written, const char *why, char *out, size_t outlen)
{
    size_t n = strlen(o->name);
    if (strncmp(why, o->name, n) == 0 && why[n] == ':')
        snprintf(out, outlen, "%s%s", written, why + n);
    else
        snprintf(out, outlen, "%s", why);
    return out;
}

void config_defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    char err[64];
    for (size_t i = 0; i < NOPTS; i++)
        if (options[i].def)
            set(c, &options[i], options[i].def, err, sizeof err);
}

int config_load_file(config_t *c, const char *path, char *err, size_t errlen)
{
    /* read whole before parsing, so that an error can point into it */
    size_t len;
    char *text = textfile_read(path, "a --config file", CONFIG_MAX_BYTES, &len, err, errlen);
    if (!text)
        return -1;
    char why[256];
    struct fy_document *fyd = yaml_load(text, len, why, sizeof why);   /* may point into text */
    if (!fyd) {
        snprintf(err, errlen, "%s: %s", path, why);
        free(text);
        return -1;
    }
    int rc = -1;
    struct fy_node *root = fy_document_root(fyd);
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        snprintf(err, errlen, "%s: expected a mapping of option: value", path);
        goto out;
    }
    void *iter = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(root, &iter))) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        const char *key = fy_node_get_scalar0(k);
        int line = yaml_scalar_line(k);
        const option_t *o = key ? find(key) : NULL;
        if (!o) {
            char hint[96];
            snprintf(err, errlen, "%s:%d: unknown option '%s'%s", path, line, key ? key : "?",
                     key ? near_option(key, 0, hint, sizeof hint) : "");
            goto out;
        }
        char sub[640];
        if (o->kind == K_SEED && fy_node_get_type(v) == FYNT_SEQUENCE) {
            void *it2 = NULL;
            struct fy_node *item;
            while ((item = fy_node_sequence_iterate(v, &it2))) {
                const char *s = fy_node_get_scalar0(item);
                if (!s || set(c, o, s, sub, sizeof sub) < 0) {
                    char said[640];
                    int at_line = s ? yaml_scalar_line(item) : 0;   /* the item's own line */
                    snprintf(err, errlen, "%s:%d: %s", path, at_line > 0 ? at_line : line,
                             as_written(o, key, s ? sub : "seed: expected HOST:PORT", said, sizeof said));
                    goto out;
                }
            }
            continue;
        }
        const char *val = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
        if (!val) {
            snprintf(err, errlen, "%s:%d: %s: expected a single value", path, line, o->name);
            goto out;
        }
        if (set(c, o, val, sub, sizeof sub) < 0) {
            char said[700];
            snprintf(err, errlen, "%s:%d: %s", path, line, as_written(o, key, sub, said, sizeof said));
            goto out;
        }
    }
    rc = 0;
out:
    fy_document_destroy(fyd);
    free(text);
    return rc;
}

int config_parse_args(config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) { /* the file first, so the command line wins */
        const char *file = NULL;
        if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
        else if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a FILE");
                return 2;
            }
            file = argv[++i];
        }
        if (file && config_load_file(c, file, err, errlen) < 0)
            return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return 2;
        }
        char name[64];
        const char *eq = strchr(a, '='), *val;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name) {
            snprintf(err, errlen, "unknown option '%s'", a);
            return 2;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        const option_t *o = find(name);
        if (!o) {
            char hint[96];
            snprintf(err, errlen, "unknown option '--%s'%s", name, near_option(name, 1, hint, sizeof hint));
            return 2;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            snprintf(err, errlen, "--%s needs a value", name);
            return 2;
        }
        char why[640], dashed[68];
        if (set(c, o, val, why, sizeof why) < 0) {
            snprintf(dashed, sizeof dashed, "--%s", name);
            as_written(o, dashed, why, err, errlen);
            return 2;
        }
    }
    if (!c->data[0]) {
        snprintf(err, errlen, "--data DIR is required");
        return 2;
    }
    char host[128];
    int port;
    if (c->advertise[0] && config_split_addr(c->advertise, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "advertise: '%s' is not HOST:PORT%s", c->advertise, addr_why(c->advertise, (char[96]){0}, 96));
        return 2;
    }
    if (c->http_advertise[0] && config_split_addr(c->http_advertise, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "http_advertise: '%s' is not HOST:PORT%s", c->http_advertise, addr_why(c->http_advertise, (char[96]){0}, 96));
        return 2;
    }
    if (link_suite_of(c->link_cipher) < 0) {
        snprintf(err, errlen, "link_cipher: '%s' is not auto, aesgcm or chachapoly", c->link_cipher);
        return 2;
    }
    size_t ll = strlen(c->link_listen);   /* port 0: a free one */
    if (c->link_listen[0] && strcmp(c->link_listen, "off") != 0 &&
        config_split_addr(c->link_listen, host, sizeof host, &port) < 0 &&
        !(ll > 2 && !strcmp(c->link_listen + ll - 2, ":0") && c->link_listen[ll - 3] != ':')) {
        snprintf(err, errlen, "link_listen: '%s' is not HOST:PORT (or off)", c->link_listen);
        return 2;
    }
    if (c->link_advertise[0] && config_split_addr(c->link_advertise, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "link_advertise: '%s' is not HOST:PORT%s", c->link_advertise, addr_why(c->link_advertise, (char[96]){0}, 96));
        return 2;
    }
    if (c->probe_timeout_ms >= c->probe_interval_ms) {
        snprintf(err, errlen, "probe_timeout_ms (%" PRIu64 ") must be below probe_interval_ms (%" PRIu64 ")",
                 c->probe_timeout_ms, c->probe_interval_ms);
        return 2;
    }
    if (!c->charter[0] != !c->cert[0]) {
        snprintf(err, errlen, "%s", c->charter[0] ? "--charter needs --cert FILE: this node's certificate"
                                                  : "--cert needs --charter FILE: the federation charter");
        return 2;
    }
    for (int i = 0; c->charter[0] && i < c->nseeds; i++)
        if (!strchr(c->seeds[i], '@')) {   /* found here, before the data dir is touched */
            snprintf(err, errlen, "--seed %s: in a chartered federation a seed is NODE_ID@HOST:PORT (each node has "
                     "its own CURVE key; 'trib identity --data DIR' on the seed's machine prints its NODE_ID)",
                     c->seeds[i]);
            return 2;
        }
    if (c->charter[0] && c->federation_secret[0]) {
        snprintf(err, errlen, "--federation-secret is for open mode; a chartered node (--charter) has its own "
                 "CURVE key and shares no secret");
        return 2;
    }
    if (!c->charter[0] && !c->federation_secret[0] && !config_addr_loopback(c->listen)) {
        snprintf(err, errlen, "--listen %s is beyond loopback, and there is no built-in federation secret: give "
                 "--charter FILE --cert FILE (a chartered federation) or --federation-secret SECRET (open mode)",
                 c->listen);
        return 2;
    }
    if (strcmp(c->log_level, "error") && strcmp(c->log_level, "warn") && strcmp(c->log_level, "info") &&
        strcmp(c->log_level, "debug")) {
        snprintf(err, errlen, "log_level: '%s' is not error, warn, info or debug", c->log_level);
        return 2;
    }
    return 0;
}

void config_usage(FILE *f)
{
    fprintf(f, "usage: trib agent --data DIR [--domain NAME] [--listen HOST:PORT] [--http HOST:PORT]\n"
               "                  [--seed [NODE_ID@]HOST:PORT]... [--charter FILE --cert FILE] [--config FILE]\n"
               "                  [--OPTION VALUE]...\n\n"
               "Runs this domain's node: stores its products in DIR, serves the HTTP API, and joins the\n"
               "federation through the seeds. --domain is required on the first start of DIR, which\n"
               "remembers it. Options (also valid as keys of the --config YAML file, with _ or -):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char name[80];
        snprintf(name, sizeof name, "--%s", options[i].name);
        for (char *p = name + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        if (options[i].def && options[i].def[0])
            fprintf(f, "  %-24s %s (default %s)\n", name, options[i].help, options[i].def);
        else
            fprintf(f, "  %-24s %s\n", name, options[i].help);
    }
    fprintf(f, "\nexample:\n  trib agent --data ./payments --domain payments --http 127.0.0.1:7480\n");
}
