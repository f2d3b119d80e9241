/* node/config.h - the agent's options: one table gives each its name, bounds, default and help;
 * values come from defaults, then the --config YAML file, then the command line.
 * Must not: open anything but the config file. */
#ifndef TRIB_CONFIG_H
#define TRIB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_SEEDS 64
#define CONFIG_SEED_MAX  136         /* NODE_ID@ (65) + the longest peer address (63) + NUL */
#define CONFIG_MAX_BYTES (1u << 20)   /* a --config file */

typedef struct {
    char data[512];
    char domain[64];
    char listen[128];
    char http[128];
    char advertise[128];
    char seeds[CONFIG_MAX_SEEDS][CONFIG_SEED_MAX];
    int nseeds;
    char federation_secret[128];
    char charter[512];       /* chartered mode: the federation charter (trust anchor) */
    char cert[512];          /* chartered mode: this node's domain certificate */
    char log_level[16];
    char tls_cert[512], tls_key[512];   /* PEM files: the API over HTTPS (auth, issue 11) */
    uint64_t require_token;             /* 1: status, members, metrics, search, manifests need a token too */
    uint64_t map_size_mb, map_max_mb;
    uint64_t max_body_mb, max_record_kb, max_records;
    uint64_t http_threads;
    uint64_t write_workers;  /* write requests run at once (node/http.c); 16 each may wait queued */
    uint64_t read_pause_ms;  /* a read's client may take nothing this long before its connection is closed */
    char policy[512];        /* open mode: the policy set's YAML (node/policy_node.h) */
    /* membership timings (DESIGN §5) */
    uint64_t probe_interval_ms, probe_timeout_ms, indirect_checks, suspicion_mult, suspicion_max_mult;
    uint64_t gossip_interval_ms, gossip_nodes, push_pull_interval_ms, retransmit_mult, awareness_max;
    uint64_t anti_entropy_ms, retry_max_ms, max_msg_kb;
    double peer_answer_rate;   /* MiB/s of answers one peer may ask for (gossip/answers.c); 0: no limit */
    char http_advertise[128];  /* HTTP address gossiped to members (a read's redirect goes there); "": http */
    char link_listen[128];     /* the data link's HOST:PORT ("": listen's host, port 0; "off": none) */
    char link_advertise[256];  /* the data link address gossiped ("": advertise's host, the bound port):
                                  255 at most, what a member claim carries (SWIM_MAX_ADDR) */
    char link_cipher[16];      /* "auto" | "aesgcm" | "chachapoly": the data links this node dials (link_set_suite) */
    uint64_t link_max;         /* data links served at once */
    uint64_t link_send_ms;     /* a read on a data link may fall this far behind link_min_rate (ms) */
    uint64_t link_min_rate;    /* bytes/s a relay takes a read on a data link at, on average */
} config_t;

void config_defaults(config_t *c);
/* Applies argv (after "agent"); reads --config FILE (or --config=FILE) first wherever it appears.
 * 0 ok, 2 usage error: a bad option or a bad config file (err names file, line and key). */
int config_parse_args(config_t *c, int argc, char **argv, char *err, size_t errlen);
int config_load_file(config_t *c, const char *path, char *err, size_t errlen);
void config_usage(FILE *f);
/* Splits "HOST:PORT" (checks both); 0 or -1. */
int config_split_addr(const char *addr, char *host, size_t hostlen, int *port);
/* 1 when addr's host is a loopback address (127.x.y.z, localhost, [::1] in any spelling, an IPv4
 * loopback address mapped to IPv6 as [::ffff:127.0.0.1]). */
int config_addr_loopback(const char *addr);
/* 1 when addr's host is a wildcard (0.0.0.0, [::] in any spelling): an address to listen on that no
 * client or peer can dial. */
int config_addr_wildcard(const char *addr);

#endif
