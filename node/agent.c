/* node/agent.c - `trib agent`: parses the options, tries its ports (a start that would fail on
 * one fails before anything is created), opens the node (node_open: data dir, identity, LMDB,
 * domain), starts the gossip loop and the HTTP API, then waits for SIGINT/SIGTERM and shuts down
 * in reverse order, closing LMDB cleanly. Signals are blocked in every thread and taken here. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/fedlog.h"
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/gossip.h"
#include "gossip/link.h"
#include "gossip/transport.h"
#include "gossip/log.h"
#include "node/agent.h"
#include "node/http.h"
#include "node/node.h"
#include "node/policy_node.h"
#include "node/portcheck.h"
#include "node/rotate.h"

static void on_catalog(void *ctx) { node_notify(ctx); }
static void on_stored(void *ctx, const Trib__CatalogEntry *const *e, size_t n) { policy_node_stored(ctx, e, n); }
static void on_certs(void *ctx) { (void)ctx; rotate_post_certs(); }

/* Chartered mode: the charter and this node's certificate, verified at start. */
static charter_t charter;
static cert_t own_cert;

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Loads --charter and --cert, and checks the certificate is this node's: for its key and domain,
 * signed by a threshold of the charter's roots, valid now (no skew allowance: a node starts only
 * on a certificate its own clock says is valid). 0, or -1 with err naming the file and why. */
static int load_trust(node_t *a, char *err, size_t errlen)
{
    char why[600];
    const config_t *c = &a->cfg;
    if (charter_load(c->charter, &charter, why, sizeof why) != TRUST_OK) {
        say(err, errlen, "--charter %s: %s", c->charter, why);
        return -1;
    }
    if (cert_load(c->cert, &own_cert, why, sizeof why) != 0) {
        say(err, errlen, "--cert %s: %s", c->cert, why);
        return -1;
    }
    const char *certp = c->cert;
    trust_verdict_t v = cert_valid_at(&charter, &own_cert, NULL, c->domain, a->id.pk, clock_wall_ms(), 0, why, sizeof why);
    static char rotated[600];   /* after a key rotation: DATA/identity.cert is the current key's */
    cert_t rc;
    snprintf(rotated, sizeof rotated, "%s/" ROTATE_CERT_FILE, c->data);
    if (v == TRUST_WRONG_KEY && cert_load(rotated, &rc, why, sizeof why) == 0) {
        cert_free(&own_cert);
        own_cert = rc;
        certp = rotated;
        v = cert_valid_at(&charter, &own_cert, NULL, c->domain, a->id.pk, clock_wall_ms(), 0, why, sizeof why);
        if (v == TRUST_OK)
            log_info("chartered: this node's key was rotated: using %s, not --cert %s", rotated, c->cert);
    }
    if (v != TRUST_OK) {
        char now[32], when[160];
        trust_time_text(clock_wall_ms(), now);
        snprintf(when, sizeof when, " (this machine's clock reads %s: if it is %s, fix it (NTP); else get a "
                 "certificate valid now: trib fed certify)", now, v == TRUST_EXPIRED ? "ahead" : "behind");
        const char *hint = v == TRUST_WRONG_KEY ? " (this node's id is the one 'trib identity --data DIR' prints)"
                         : v == TRUST_EXPIRED || v == TRUST_NOT_YET_VALID ? when
                         : v == TRUST_WRONG_FEDERATION ? " (the certificate was issued under another charter)"
                                                       : "";
        say(err, errlen, "--cert %s: not a valid certificate of this node (domain '%s', node %s) under --charter "
                 "%s: %s: %s%s", certp, c->domain, a->id.hex, c->charter, trust_verdict_name(v), why, hint);
        return -1;
    }
    char serial[17], until[32];
    cert_serial_text(own_cert.serial, serial);
    trust_time_text(own_cert.not_after_ms, until);
    log_info("chartered: domain '%s' certified for this node (serial %s, valid until %s)", c->domain, serial, until);
    a->cert_not_after_ms = own_cert.not_after_ms; /* grants2: a grant never outlives it */
    a->cert_serial = own_cert.serial;
    return 0;
}

/* The trust store (chartered mode: --charter) and the federation log over it. */
static trust_t *trust;
static fedlog_t *fedlog;

static int handover(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to)
{
    return trust_handover(ctx, domain, from, to);
}

static int open_fedlog(node_t *a, char *err, size_t errlen)
{
    if (a->cfg.charter[0]) {   /* load_trust has verified the charter and this node's certificate */
        if (!(trust = trust_new(&charter))) {
            snprintf(err, errlen, "--charter: out of memory");
            return -1;
        }
    }
    fedlog = fedlog_new(a->st, trust, err, errlen);
    if (!fedlog)
        return -1;
    if (trust) {   /* a held key hand-over lets the domain's log continue under the new key */
        catalog_set_handover(a->cat, handover, trust);
        /* this node's certificate in force now (verified by load_trust; stored by store_own_cert) */
        char why[300];
        if (trust_offer_cert(trust, own_cert.bytes, own_cert.len, NULL, why, sizeof why) != TRUST_OK)
            log_warn("chartered: the trust store did not take this node's certificate: %s", why);
    }
    return 0;
}

/* This node's certificate into the federation log (stored, gossiped by anti-entropy): a node that
 * joins after this one is gone still checks the domain's entries; without it that node refuses
 * them (uncertified) and a new key of the domain forks its log at seq 1. Once gossip runs (on a
 * first start the commit's fsync, 19 nodes starting at once, held each back from listening), and
 * as a peer's offer: in force already (open_fedlog), not pushed (every peer gets it in our hello),
 * the commit left to the fedlog's worker. */
static void store_own_cert(void)
{
    fedlog_result_t r;
    if (trust && fedlog_offer(fedlog, own_cert.bytes, own_cert.len, "this node", &r) != 0)
        log_warn("chartered: the federation log did not take this node's certificate: %s", r.err);
}

static int start_gossip(node_t *a, char *err, size_t errlen)
{
    const config_t *c = &a->cfg;
    static const char *seeds[CONFIG_MAX_SEEDS];
    for (int i = 0; i < c->nseeds; i++)
        seeds[i] = c->seeds[i];
    char link[160];   /* default: the peer listener's host, any free port */
    if (c->link_listen[0])
        snprintf(link, sizeof link, "%s", c->link_listen);
    else
        snprintf(link, sizeof link, "%.*s:0", (int)(strrchr(c->listen, ':') - c->listen), c->listen);
    link_set_suite(c->link_cipher);   /* checked by config_parse_args */
    gossip_opts_t o = {
        .link_listen = link, .link_advertise = c->link_advertise, .link_max = (unsigned)c->link_max,
        .link_send_ms = (uint32_t)c->link_send_ms, .link_min_rate = (uint32_t)c->link_min_rate,
        .listen = c->listen, .advertise = c->advertise,
        .http = c->http_advertise[0] ? c->http_advertise : c->http, .domain = c->domain,
        .federation_secret = c->federation_secret[0] ? c->federation_secret : TRANSPORT_DEFAULT_SECRET,
        .charter = c->charter[0] ? &charter : NULL, .cert = c->charter[0] ? own_cert.bytes : NULL,
        .cert_len = c->charter[0] ? own_cert.len : 0, .seeds = seeds, .nseeds = (size_t)c->nseeds,
        .anti_entropy_ms = (uint32_t)c->anti_entropy_ms, .max_msg = (size_t)c->max_msg_kb << 10,
        .answer_rate = c->peer_answer_rate * (1 << 20),
        .on_catalog = on_catalog, .on_stored = on_stored, .on_certs = on_certs, .ctx = a, .fedlog = fedlog, .trust = trust,   /* one trust store */
    };
    swim_config_default(&o.swim);
    o.swim.probe_interval_ms = (uint32_t)c->probe_interval_ms;
    o.swim.probe_timeout_ms = (uint32_t)c->probe_timeout_ms;
    o.swim.indirect_checks = (uint32_t)c->indirect_checks;
    o.swim.suspicion_mult = (uint32_t)c->suspicion_mult;
    o.swim.suspicion_max_mult = (uint32_t)c->suspicion_max_mult;
    o.swim.gossip_interval_ms = (uint32_t)c->gossip_interval_ms;
    o.swim.gossip_nodes = (uint32_t)c->gossip_nodes;
    o.swim.push_pull_interval_ms = (uint32_t)c->push_pull_interval_ms;
    o.swim.retransmit_mult = (uint32_t)c->retransmit_mult;
    o.swim.awareness_max = (uint32_t)c->awareness_max;
    o.swim.retry_max_ms = (uint32_t)c->retry_max_ms;
    a->gossip = gossip_start(a->st, a->cat, &a->id, &o, err, errlen);
    return a->gossip ? 0 : -1;
}

static int level_of(const char *s)
{
    return !strcmp(s, "error") ? LOG_ERROR : !strcmp(s, "warn") ? LOG_WARN : !strcmp(s, "debug") ? LOG_DEBUG
                                                                                                  : LOG_INFO;
}

int agent_main(int argc, char **argv)
{
    static node_t node;
    node_t *a = &node;
    char err[1024];
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_usage(stdout);
            return 0;
        }
    config_defaults(&a->cfg);
    int rc = config_parse_args(&a->cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "trib agent: %s\n", err);
        if (rc == 2)
            fprintf(stderr, "try 'trib agent --help'\n");
        return rc == 2 ? 2 : 1;
    }
    if (a->cfg.domain[0] && !entry_valid_name(a->cfg.domain)) {
        fprintf(stderr, "trib agent: --domain '%s' is not a valid domain name (" STORE_NAME_RULE ")\n",
                a->cfg.domain);
        return 2;
    }
    log_set_level(level_of(a->cfg.log_level));
    a->limits = records_default_limits;
    a->limits.max_body = (size_t)a->cfg.max_body_mb << 20;
    a->limits.max_record = (size_t)a->cfg.max_record_kb << 10;
    a->limits.max_records = (size_t)a->cfg.max_records;

    /* Every thread started from here on inherits the blocked set; sigwait takes them below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);   /* node/rotate.c: the key was rotated, restart on the new key */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Each HTTP connection and peer holds a descriptor: take all the system allows us. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Two malloc arenas, set before any thread starts (arenas are made as threads first allocate).
     * glibc's default is 8 per core, and each arena keeps up to M_TRIM_THRESHOLD (16 MiB here,
     * gossip/reads.c) free at its top, which malloc_trim cannot return for any arena but the first:
     * an owner whose 60 link threads each freed their ~3 MiB of batch buffers held 127 MiB more
     * than idle, for good (bench/linkmem). With two, threads share arenas and their freed buffers,
     * and at most one arena's top stays (gossip/linkserve.c trims the rest once links go idle). */
    mallopt(M_ARENA_MAX, 2);
    int exit_code = 1, sig = 0;
    if (portcheck_free(&a->cfg, err, sizeof err) < 0)   /* before the data dir, identity, admin.token */
        goto fail;
    if (node_open(a, err, sizeof err) < 0)
        goto fail;
    if (a->cfg.charter[0] && load_trust(a, err, sizeof err) < 0)
        goto fail;
    if (open_fedlog(a, err, sizeof err) < 0)
        goto fail;
    if (trust)
        rotate_offer_pending(fedlog, a->cfg.data, a->id.pk);   /* the last hand-over, in case it was not gossiped */
    /* chartered: policy sets are verified against the charter's governance keys */
    if (policy_node_start(a, a->cfg.charter[0] ? &charter : NULL, a->cfg.policy, err, sizeof err) < 0)
        goto fail;
    policy_node_attach(a, fedlog);   /* kind 4 gossiped: the set in force; operators' sets go to the log */
    if (http_listen(a, err, sizeof err) < 0)
        goto fail;
    if (start_gossip(a, err, sizeof err) < 0)
        goto fail;
    if (http_start(a, err, sizeof err) < 0)
        goto fail;
    log_info("serving %s on %s", a->cfg.tls_cert[0] ? "HTTPS" : "HTTP", a->cfg.http);
    if (trust)
        rotate_post_certs();   /* a pending rotation whose certificate is held already completes */
    store_own_cert();

    for (;;) {   /* SIGUSR1: a certificate newly held (a pending rotation may complete), or a restart */
        sig = rotate_sigwait(&sigs);   /* also: a waiting certificate became valid */
        if (sig == SIGUSR1 && rotate_certs_posted())
            rotate_from_fedlog(a);
        if (sig != SIGUSR1 || rotate_restart_requested())
            break;
    }
    log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGUSR1");
    exit_code = 0;
    goto out;
fail:
    log_error("%s", err);
out:
    node_set_stopping(a);
    if (a->gossip) /* relayed streams end now, not at their next poll timeout */
        gossip_reads_shutdown(a->gossip);
    http_stop(a);
    if (a->gossip) {
        gossip_stop(&a->gossip); /* broadcasts LEFT first */
        log_info("left the federation");
    }
    policy_node_stop(a);
    fedlog_destroy(&fedlog);
    trust_destroy(&trust);
    node_close(a);
    cert_free(&own_cert);
    charter_free(&charter);
    if (exit_code == 0 && sig == SIGUSR1 && rotate_restart_requested()) {
        log_info("restarting with the rotated key");
        rotate_reexec(err, sizeof err);   /* returns only on failure */
        log_error("%s", err);
        exit_code = 1;
    }
    return exit_code;
}
