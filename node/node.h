/* node/node.h - the running node and its operations.
 *
 * Owns: the node's state (node_t: config, store, identity, catalog, limits, the readers' condvar)
 * shared by the HTTP API, the views and the metrics exporter; opening and closing a data dir
 * (lock, identity, LMDB, domain check); and one function per write operation, each doing the
 * whole operation: validation (domain, ownership, input), the catalog or store write, announcing
 * to the gossip loop, waking local and remote readers, metrics, log. Callable without HTTP.
 * Must not: parse HTTP requests or choose HTTP statuses (node/http.c maps node_code_t), start
 * threads, or wait on the network. */
#ifndef TRIB_NODE_H
#define TRIB_NODE_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "gossip/catalog.h"
#include "gossip/identity.h"
#include "node/config.h"
#include "node/records.h"
#include "storage/store.h"

struct gossip;
struct MHD_Daemon;
struct json_t;

#define NODE_PUB_STRIPES 64

typedef struct node {
    config_t cfg;
    store_t *st;
    identity_t id;                  /* replaced live by a key rotation (node_set_identity): other threads read
                                       it through node_identity, node_id_hex, node_own_key */
    catalog_t *cat;
    records_limits_t limits;
    struct gossip *gossip;          /* NULL until the federation loop runs (or without it) */
    struct MHD_Daemon *httpd;
    struct policy_node *policy;     /* policy sets and compliance (node/policy_node.h); NULL: none */
    time_t started;
    int lock_fd;                    /* DATA/agent.lock, held for the node's life (-1: none) */
    long unclean_pid;               /* the previous agent on the data dir, when it did not stop cleanly */
    int64_t cert_not_after_ms;      /* chartered: this node's certificate ends (0: open mode); grants
                                       never outlive it (node/grants.c) */
    uint64_t cert_serial;           /* chartered: that certificate's serial, named when a grant ends with it */
    /* Live readers wait here for appends (records or catalog) instead of polling. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t append_gen;
    int stopping;
    /* Publishes of one product run one at a time (the gate checks against the latest version,
     * then the entry is signed): striped by product id, so other products still share commits. */
    pthread_mutex_t pub_mu[NODE_PUB_STRIPES];
    uint64_t cache_id;              /* this node in process-wide caches keyed by entry (node/gate.c); set at open */
} node_t;

/* Opens n->cfg.data for n->cfg.domain (empty: the stored one): creates the dir, takes its lock
 * (refused, naming the holder's pid, while another live agent holds it), loads or creates the
 * identity (refused when a store exists without its key), opens LMDB, checks or records the
 * domain, makes the catalog. Fields other than cfg and limits are set here. 0, or -1 with err;
 * node_close undoes a partial open too. */
int node_open(node_t *n, char *err, size_t errlen);
void node_close(node_t *n);
/* n->id copied whole (wipe the copy after use): a live key rotation replaces n->id while HTTP
 * threads run, so what signs (tokens) takes this copy, never n->id's seed and key read apart. */
void node_identity(const node_t *n, identity_t *out);
/* Replaces n->id under the lock node_identity takes (the rotation's switch). */
void node_set_identity(node_t *n, const identity_t *id);
/* n->id.hex copied under that lock: what shows the node's id (logs, status, members, audit, a
 * publish's signer) reads it here, never n->id.hex, which a rotation may be rewriting. */
void node_id_hex(const node_t *n, char out[ID_HEX_LEN]);
/* 1 when key is the node's own key now (n->id.pk compared under that lock), else 0. */
int node_own_key(const node_t *n, const uint8_t key[ID_PK_LEN]);

/* Outcome of an operation; node/http.c maps each to a status. */
typedef enum {
    NODE_OK,
    NODE_BAD_INPUT,        /* the manifest, records or id is not acceptable (kind says which) */
    NODE_WRONG_DOMAIN,     /* the product belongs to another domain's node */
    NODE_NOT_FOUND,
    NODE_ALREADY_RETIRED,  /* retire of a retired product */
    NODE_RETIRED,          /* append to a retired product */
    NODE_TOO_LARGE,        /* a records limit */
    NODE_NO_SPACE,         /* the disk is full; nothing was changed (a retry can succeed later) */
    NODE_NOT_SYNCED,       /* own domain's log not yet checked against the peers (restored backup?) */
    NODE_NOT_CERTIFIED,    /* chartered: this node's own certificate is revoked or expired (403 node_revoked) */
    NODE_POLICY_VIOLATION, /* the manifest breaks an error rule of the policy set in force (422) */
    NODE_FAILED,           /* storage or signing failed; nothing was changed */
    NODE_REFUSED,          /* publish: the governance gate refused it (422: incompatible,
                              version_not_increased, policy_violation) */
    NODE_DOMAIN_TAKEN,     /* a write of this domain's log, which another node's key holds (409) */
} node_code_t;

typedef struct {
    node_code_t code;
    const char *kind;          /* error kind for {"error": kind}: "bad_manifest", "not_found"... */
    char detail[1024];         /* what is wrong and where */
    uint64_t catalog_seq;      /* publish, retire: the new entry's seq in this domain's log */
    int created;               /* publish: the product did not exist before */
    char status[32];           /* publish: the manifest's status */
    uint64_t first_seq, last_seq, count;   /* append */
    int unchanged;             /* publish: the manifest equals the latest one: no entry was made */
    struct json_t *report;     /* publish/check with node_publish_opts_t.want_report: the check
                                  report ({"ok","mode","changes",...}); the caller decrefs it */
    json_t *extra;             /* fields added to the reply ("violations", "warnings"); the HTTP layer
                                  sends and json_decref's it */
} node_result_t;

/* How a publish is asked for. */
typedef struct {
    int revive;                /* a retired product may come back (with a higher version) */
    int dry_run;               /* check only: validation and compatibility; nothing is stored */
    int want_report;           /* fill node_result_t.report (refusals and dry runs) */
} node_publish_opts_t;

/* Publishes (creates or updates) product id from a YAML/JSON manifest text of len bytes; the
 * manifest must describe id and belong to this node's domain. */
node_code_t node_publish(node_t *n, const char *id, const char *manifest, size_t len, node_result_t *r);
/* The same with options. The gate (DESIGN §14): the manifest's `compatibility` mode
 * (default BACKWARD_TRANSITIVE); a retired product is refused (NODE_ALREADY_RETIRED, kind
 * "retired") unless o->revive; a manifest equal to the latest is a no-op (NODE_OK, unchanged);
 * the version must be above every published one (NODE_REFUSED, "version_not_increased"), by at
 * least the bump the changes need, and a change breaking the mode (against every retained
 * version for a _TRANSITIVE mode) needs a major bump (NODE_REFUSED, "incompatible"). */
node_code_t node_publish_ex(node_t *n, const char *id, const char *manifest, size_t len,
                            const node_publish_opts_t *o, node_result_t *r);
/* Frees what a result holds (the report); r stays usable. */
void node_result_clear(node_result_t *r);
/* " (trib --node URL)": the node of domain as this node's member table has it (the member holding
 * the domain's key; chartered, one the federation certified for it), where that domain's writes
 * and access decisions go; "" when none is known here. */
void node_owner_cmd(node_t *n, const char *domain, char *out, size_t cap);
/* After a catalog_publish* call of this thread failed: 1 when it was refused because this node's
 * domain's log is bound to another node's key (catalog_publish_wrong_key), with detail saying
 * which node holds it (its HTTP address when it is a member) and what to do; else 0. */
int node_domain_taken(node_t *n, char *detail, size_t cap);
/* Retires product id of this node's domain. */
node_code_t node_retire(node_t *n, const char *id, node_result_t *r);
/* Appends an NDJSON body of records to product id of this node's domain: all or nothing. */
node_code_t node_append(node_t *n, const char *id, const char *body, size_t len, node_result_t *r);

/* Wakes every live reader (after an append or a catalog change, or at shutdown). */
void node_notify(node_t *n);
/* Marks the node stopping and wakes its readers. */
void node_set_stopping(node_t *n);
int node_stopping(node_t *n);

#endif
