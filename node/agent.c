/* node/agent.c - `trib agent`: opens the data dir (identity, LMDB), checks it belongs to this
 * domain, starts the HTTP API (and the gossip loop), then waits for SIGINT/SIGTERM and shuts down
 * in reverse order, closing LMDB cleanly. Signals are blocked in every thread and taken here. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "gossip/entry.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "node/agent.h"
#include "node/http.h"
#include "storage/store.h"

#define FORMAT_VERSION "1"

void agent_notify(agent_t *a)
{
    pthread_mutex_lock(&a->mu);
    a->append_gen++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void agent_announce(agent_t *a, const uint8_t *signed_entry, size_t len)
{
    if (a->gossip)
        gossip_announce(a->gossip, signed_entry, len);
}

static void on_catalog(void *ctx) { agent_notify(ctx); }

static int start_gossip(agent_t *a, char *err, size_t errlen)
{
    const config_t *c = &a->cfg;
    static const char *seeds[CONFIG_MAX_SEEDS];
    for (int i = 0; i < c->nseeds; i++)
        seeds[i] = c->seeds[i];
    gossip_opts_t o = {
        .listen = c->listen, .advertise = c->advertise, .http = c->http, .domain = c->domain,
        .federation_secret = c->federation_secret, .seeds = seeds, .nseeds = (size_t)c->nseeds,
        .anti_entropy_ms = (uint32_t)c->anti_entropy_ms, .max_msg = (size_t)c->max_msg_kb << 10,
        .on_catalog = on_catalog, .ctx = a,
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

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[512];
    size_t len = strlen(dir);
    if (len >= sizeof path) {
        snprintf(err, errlen, "data dir path is longer than %zu characters", sizeof path - 1);
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) < 0 && errno != EEXIST)
                goto fail;
            *p = '/';
        }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot create data dir %s: %s", path, strerror(errno));
    return -1;
}

/* The data dir remembers its domain; refuse to serve another one from it. */
static int check_domain(agent_t *a, char *err, size_t errlen)
{
    char stored[64];
    size_t len = 0;
    int rc = store_meta_get(a->st, "domain", stored, sizeof stored - 1, &len);
    if (rc == 0) {
        stored[len] = '\0';
        if (!a->cfg.domain[0]) {
            snprintf(a->cfg.domain, sizeof a->cfg.domain, "%s", stored);
            return 0;
        }
        if (strcmp(stored, a->cfg.domain) != 0) {
            snprintf(err, errlen,
                     "data dir %s was created for domain '%s', not '%s'; use --domain %s or another --data dir",
                     a->cfg.data, stored, a->cfg.domain, stored);
            return -1;
        }
        return 0;
    }
    if (rc != STORE_NOTFOUND) {
        snprintf(err, errlen, "%s: cannot read the stored domain", a->cfg.data);
        return -1;
    }
    if (!a->cfg.domain[0]) {
        snprintf(err, errlen, "--domain NAME is required on first start of %s", a->cfg.data);
        return -1;
    }
    if (store_meta_put(a->st, "domain", a->cfg.domain, strlen(a->cfg.domain)) < 0 ||
        store_meta_put(a->st, "format", FORMAT_VERSION, strlen(FORMAT_VERSION)) < 0) {
        snprintf(err, errlen, "%s: cannot record the domain", a->cfg.data);
        return -1;
    }
    return 0;
}

static int level_of(const char *s)
{
    return !strcmp(s, "error") ? LOG_ERROR : !strcmp(s, "warn") ? LOG_WARN : !strcmp(s, "debug") ? LOG_DEBUG
                                                                                                  : LOG_INFO;
}

int agent_main(int argc, char **argv)
{
    static agent_t agent;
    agent_t *a = &agent;
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
    a->started = time(NULL);
    a->limits = records_default_limits;
    a->limits.max_body = (size_t)a->cfg.max_body_mb << 20;
    a->limits.max_record = (size_t)a->cfg.max_record_kb << 10;
    a->limits.max_records = (size_t)a->cfg.max_records;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);

    /* Every thread started from here on inherits the blocked set; sigwait takes them below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1, created = 0;
    if (mkdir_p(a->cfg.data, err, sizeof err) < 0)
        goto fail;
    if (identity_load_or_create(a->cfg.data, &a->id, &created, err, sizeof err) < 0)
        goto fail;
    store_opts_t so = {.map_size = (size_t)a->cfg.map_size_mb << 20, .map_max = (size_t)a->cfg.map_max_mb << 20};
    a->st = store_open(a->cfg.data, &so, err, sizeof err);
    if (!a->st)
        goto fail;
    if (check_domain(a, err, sizeof err) < 0)
        goto fail;
    a->cat = catalog_new(a->st, &a->id, a->cfg.domain);
    if (!a->cat) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    log_info("%s identity %s for domain '%s' in %s", created ? "created" : "loaded", a->id.hex, a->cfg.domain,
             a->cfg.data);
    if (start_gossip(a, err, sizeof err) < 0)
        goto fail;
    if (http_start(a, err, sizeof err) < 0)
        goto fail;
    log_info("serving HTTP on %s", a->cfg.http);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    exit_code = 0;
    goto out;
fail:
    log_error("%s", err);
out:
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->gossip) /* relayed streams end now, not at their next poll timeout */
        gossip_reads_shutdown(a->gossip);
    http_stop(a);
    if (a->gossip) {
        gossip_stop(&a->gossip); /* broadcasts LEFT first */
        log_info("left the federation");
    }
    catalog_destroy(&a->cat);
    if (a->st) {
        store_close(&a->st);
        log_info("closed LMDB environment in %s", a->cfg.data);
    }
    identity_wipe(&a->id);
    return exit_code;
}
