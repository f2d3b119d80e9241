/* node/node.c - the running node: opening its data dir, and its write operations (node.h). */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/swim.h"
#include "node/datalock.h"
#include "node/rotate.h"
#include "node/gate.h"
#include "node/manifest.h"
#include "node/metrics.h"
#include "node/node.h"
#include "node/policy_node.h"
#include "node/view.h"

#define FORMAT_VERSION "1"

/* ------------------------------------------------------------------ readers */

void node_notify(node_t *n)
{
    pthread_mutex_lock(&n->mu);
    n->append_gen++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void node_set_stopping(node_t *n)
{
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

int node_stopping(node_t *n)
{
    pthread_mutex_lock(&n->mu);
    int stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);
    return stopping;
}

/* ------------------------------------------------------------------ open / close */

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

static int need_domain(const node_t *n, char *err, size_t errlen)
{
    snprintf(err, errlen, "--domain NAME is required on the first start of %s (the data dir remembers it)",
             n->cfg.data);
    return -1;
}

/* The data dir remembers its domain; refuse to serve another one from it. */
static int check_domain(node_t *n, char *err, size_t errlen)
{
    char stored[64];
    size_t len = 0;
    int rc = store_meta_get(n->st, "domain", stored, sizeof stored - 1, &len);
    if (rc == 0) {
        stored[len] = '\0';
        if (!n->cfg.domain[0]) {
            snprintf(n->cfg.domain, sizeof n->cfg.domain, "%s", stored);
            return 0;
        }
        if (strcmp(stored, n->cfg.domain) != 0) {
            snprintf(err, errlen,
                     "data dir %s was created for domain '%s', not '%s'; use --domain %s or another --data dir",
                     n->cfg.data, stored, n->cfg.domain, stored);
            return -1;
        }
        return 0;
    }
    if (rc != STORE_NOTFOUND) {
        snprintf(err, errlen, "%s: cannot read the stored domain", n->cfg.data);
        return -1;
    }
    if (!n->cfg.domain[0])
        return need_domain(n, err, errlen);
    if (store_meta_put(n->st, "domain", n->cfg.domain, strlen(n->cfg.domain)) < 0 ||
        store_meta_put(n->st, "format", FORMAT_VERSION, strlen(FORMAT_VERSION)) < 0) {
        snprintf(err, errlen, "%s: cannot record the domain", n->cfg.data);
        return -1;
    }
    return 0;
}

/* A store is made after the identity: a store without identity.key means the key was lost, and
 * a new one could never publish for this domain again (its log is bound to the old key). */
static int check_identity_kept(const char *dir, char *err, size_t errlen)
{
    char store[600], key[600];
    struct stat sb;
    snprintf(store, sizeof store, "%s/data.mdb", dir);
    snprintf(key, sizeof key, "%s/identity.key", dir);
    if (stat(store, &sb) < 0 || stat(key, &sb) == 0 || errno != ENOENT)
        return 0;
    snprintf(err, errlen,
             "%s holds this node's store but not its identity.key: the key was deleted or moved. A new key "
             "would never be able to publish for this node's domain again (its catalog log is bound to the old "
             "key), so the agent does not make one. Restore %s from a backup (mode 0600) and start again; "
             "changing a node's key on purpose is key rotation, not a deleted file",
             dir, key);
    return -1;
}

/* The previous agent on this data dir was killed or crashed: say so, and what the store holds
 * (LMDB keeps every commit it answered; a write it had not answered is not there, whole). */
static void log_unclean_start(node_t *n)
{
    store_head_t h = {0};
    uint64_t products = 0;
    if (store_catalog_head(n->st, n->cfg.domain, &h) != 0)
        h.seq = 0;
    store_products_count(n->st, &products);
    log_warn("%s: the previous agent (pid %ld) did not stop cleanly (killed, crashed or power cut); "
             "recovered every write it answered: catalog seq %llu of '%s', %llu products in the replica "
             "(trib_unclean_start 1 in /metrics)",
             n->cfg.data, n->unclean_pid, (unsigned long long)h.seq, n->cfg.domain, (unsigned long long)products);
}

int node_open(node_t *n, char *err, size_t errlen)
{
    n->started = time(NULL);
    n->lock_fd = -1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    for (size_t i = 0; i < NODE_PUB_STRIPES; i++)
        pthread_mutex_init(&n->pub_mu[i], NULL);
    int created = 0;
    char store[600];   /* a first start (no store yet) needs the domain: asked before anything is made */
    snprintf(store, sizeof store, "%s/data.mdb", n->cfg.data);
    if (!n->cfg.domain[0] && access(store, F_OK) < 0 && errno == ENOENT)
        return need_domain(n, err, errlen);
    if (mkdir_p(n->cfg.data, err, errlen) < 0)
        return -1;
    if ((n->lock_fd = datalock_take(n->cfg.data, &n->unclean_pid, err, errlen)) < 0)
        return -1;
    /* A key switch a stop interrupted is finished (or its staged files removed) only under the lock:
     * before it, a second agent started by mistake on a running node's dir did that to the running one. */
    if (rotate_recover(n->cfg.data, err, errlen) < 0)
        return -1;
    if (check_identity_kept(n->cfg.data, err, errlen) < 0)
        return -1;
    if (identity_load_or_create(n->cfg.data, &n->id, &created, err, errlen) < 0)
        return -1;
    store_opts_t so = {.map_size = (size_t)n->cfg.map_size_mb << 20, .map_max = (size_t)n->cfg.map_max_mb << 20};
    static atomic_uint_fast64_t next_cache_id;
    n->cache_id = atomic_fetch_add(&next_cache_id, 1) + 1;
    uint64_t t0 = clock_ms();
    n->st = store_open(n->cfg.data, &so, err, errlen);
    if (!n->st)
        return -1;
    if (store_changes_backfilled(n->st))
        log_info("change feed: %llu catalog entries stored before the change log existed added to it in %lld ms",
                 (unsigned long long)store_changes_backfilled(n->st), (long long)(clock_ms() - t0));
    if (check_domain(n, err, errlen) < 0)
        return -1;
    n->cat = catalog_new(n->st, &n->id, n->cfg.domain);
    if (!n->cat) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    log_info("%s identity %s for domain '%s' in %s", created ? "created" : "loaded", n->id.hex, n->cfg.domain,
             n->cfg.data);
    if (n->unclean_pid)
        log_unclean_start(n);
    return 0;
}

static pthread_mutex_t id_mu = PTHREAD_MUTEX_INITIALIZER;   /* n->id while a rotation replaces it */

void node_identity(const node_t *n, identity_t *out)
{
    pthread_mutex_lock(&id_mu);
    *out = n->id;
    pthread_mutex_unlock(&id_mu);
}

void node_set_identity(node_t *n, const identity_t *id)
{
    pthread_mutex_lock(&id_mu);
    identity_t old = n->id;
    n->id = *id;
    pthread_mutex_unlock(&id_mu);
    identity_wipe(&old);
}

void node_id_hex(const node_t *n, char out[ID_HEX_LEN])
{
    pthread_mutex_lock(&id_mu);
    memcpy(out, n->id.hex, ID_HEX_LEN);
    pthread_mutex_unlock(&id_mu);
}

int node_own_key(const node_t *n, const uint8_t key[ID_PK_LEN])
{
    pthread_mutex_lock(&id_mu);
    int same = memcmp(key, n->id.pk, ID_PK_LEN) == 0;
    pthread_mutex_unlock(&id_mu);
    return same;
}

void node_close(node_t *n)
{
    catalog_destroy(&n->cat);
    if (n->st) {
        store_close(&n->st);
        log_info("closed LMDB environment in %s", n->cfg.data);
    }
    identity_wipe(&n->id);
    datalock_release(&n->lock_fd);
}

/* ------------------------------------------------------------------ operations */

static node_code_t fail(node_result_t *r, node_code_t code, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static node_code_t fail(node_result_t *r, node_code_t code, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    r->code = code;
    r->kind = kind;
    return code;
}

/* A store write that failed: the disk is full (store_last_errno is this thread's), or else. */
static node_code_t write_failed(void)
{
    return store_last_errno() == ENOSPC ? NODE_NO_SPACE : NODE_FAILED;
}

/* A publish or retire: the batch may have been written by another caller's thread. */
static node_code_t publish_failed(void)
{
    return catalog_publish_errno() == ENOSPC ? NODE_NO_SPACE : NODE_FAILED;
}

/* " (trib --node URL)": the node of domain as this node's member table has it (the member holding
 * the domain's key), where that domain's access requests are listed and decided; "" when none is
 * known here. Chartered, a member the federation certified for the domain (its certificate held
 * here and holding now) speaks for it: named before the domain's first catalog entry reaches this
 * node, which is when gossip_read_owner learns the domain's key (-2: only other members). */
void node_owner_cmd(node_t *n, const char *domain, char *out, size_t cap)
{
    gossip_member_t m;
    out[0] = '\0';
    int rc = n->gossip ? gossip_read_owner(n->gossip, domain, &m) : -1;
    if ((rc == 0 || (rc == -2 && gossip_trust(n->gossip) && m.verified)) && m.http[0])
        snprintf(out, cap, " (trib --node %s://%s)", n->cfg.tls_cert[0] ? "https" : "http", m.http);
}

/* The words of a 409 domain_taken: who holds this node's domain, and what to do. */
static void domain_taken_detail(node_t *n, char *detail, size_t cap)
{
    store_head_t head;
    char holder[ID_HEX_LEN] = "?", me[ID_HEX_LEN], where[320] = "";
    if (store_catalog_head(n->st, n->cfg.domain, &head) == 0)
        identity_hex(head.key, holder);
    node_id_hex(n, me);
    gossip_member_t m;
    if (n->gossip && gossip_read_owner(n->gossip, n->cfg.domain, &m) == 0 && !m.self && m.http[0])
        snprintf(where, sizeof where, " (HTTP %s, %s)", m.http, swim_state_name(m.state));
    if (n->gossip && gossip_trust(n->gossip))
        snprintf(detail, cap, "domain '%s' is held by node %s%s, not by this node (%.16s...): publish at that node; "
                 "for this node to take the domain over, the roots certify it as that node's successor (trib fed "
                 "certify --node THIS_NODE_ID --prev-serial ITS_SERIAL, docs/operators.md §5)", n->cfg.domain, holder,
                 where, me);
    else
        snprintf(detail, cap, "domain '%s' is held by node %s%s, not by this node (%.16s...): in open mode the first "
                 "key seen for a domain keeps it. Publish at that node, or start this one on a new --data dir with a domain "
                 "of its own; moving a domain to another key takes a chartered federation's key hand-over "
                 "(docs/operators.md §6)",
                 n->cfg.domain, holder, where, me);
}

int node_domain_taken(node_t *n, char *detail, size_t cap)
{
    if (!catalog_publish_wrong_key())
        return 0;
    domain_taken_detail(n, detail, cap);
    return 1;
}

/* 1 when this node's domain's log is bound to another node's key (its writes, records too, would
 * be seen by nobody: the catalog refuses its entries, and reads are routed to the holder), with
 * the 409's words in detail; 0 otherwise, or when the log is empty or unreadable. */
static int domain_held_elsewhere(node_t *n, char *detail, size_t cap)
{
    if (!n->cat || !catalog_bound_elsewhere(n->cat))
        return 0;
    domain_taken_detail(n, detail, cap);
    return 1;
}

/* A publish or retire catalog_publish refused: 409 domain_taken (another node's key holds the
 * domain), else a storage or signing failure (507 disk full, else 500) as kind. */
static node_code_t publish_refused(node_t *n, node_result_t *r, const char *kind, const char *err)
{
    if (node_domain_taken(n, r->detail, sizeof r->detail)) {
        r->code = NODE_DOMAIN_TAKEN;
        r->kind = "domain_taken";
        return r->code;
    }
    return fail(r, publish_failed(), kind, "%s", err);
}

static node_code_t ok(node_result_t *r)
{
    r->code = NODE_OK;
    r->kind = NULL;
    return NODE_OK;
}

/* Splits and checks "domain/name"; the domain must be this node's (what: the operation). */
static node_code_t own_product(node_t *n, const char *id, const char *what, char domain[64], char name[64],
                               node_result_t *r)
{
    const char *slash = strchr(id, '/');
    size_t dlen = slash ? (size_t)(slash - id) : 0;
    if (!slash || dlen >= 64 || strlen(slash + 1) >= 64)
        return fail(r, NODE_BAD_INPUT, "bad_id", "'%s' is not a product id (domain/name)", id);
    memcpy(domain, id, dlen);
    domain[dlen] = '\0';
    snprintf(name, 64, "%s", slash + 1);
    if (!store_valid_name(domain, strlen(domain)) || !store_valid_name(name, strlen(name)))
        return fail(r, NODE_BAD_INPUT, "bad_id", "'%s' is not a product id: domain and name are " STORE_NAME_RULE, id);
    if (strcmp(domain, n->cfg.domain) != 0) {
        char at[300];
        node_owner_cmd(n, domain, at, sizeof at);
        return fail(r, NODE_WRONG_DOMAIN, "wrong_domain",
                    "%s belongs to domain '%s'; only its own node%s ('%s' is this one) can %s it", id, domain, at,
                    n->cfg.domain, what);
    }
    return NODE_OK;
}

/* A new entry of this node: to the gossip loop (peers), then to local live readers. */
static void announce(node_t *n, uint8_t *signed_entry, size_t len)
{
    if (n->gossip)
        gossip_announce(n->gossip, signed_entry, len);
    free(signed_entry);
    node_notify(n);
}

/* A node restored from a backup must not write at a seq its peers already hold (issue 8 B3):
 * until the gossip loop has compared its own domain's head with a peer's, writes wait. */
static node_code_t own_synced(node_t *n, node_result_t *r)
{
    char why[GOSSIP_WHY_MAX];
    int synced = n->gossip ? gossip_own_synced(n->gossip, why, sizeof why) : 1;
    if (synced < 0)
        return fail(r, NODE_NOT_CERTIFIED, "node_revoked", "%s", why);
    if (synced == 0)
        return fail(r, NODE_NOT_SYNCED, "not_synced", "%s", why);
    return NODE_OK;
}

void node_result_clear(node_result_t *r)
{
    json_decref(r->report);
    r->report = NULL;
    json_decref(r->extra);
    r->extra = NULL;
}

/* The stripe of pub_mu that serialises publishes of id. */
static pthread_mutex_t *pub_lock(node_t *n, const char *id)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &n->pub_mu[h % NODE_PUB_STRIPES];
}

node_code_t node_publish(node_t *n, const char *id, const char *text, size_t len, node_result_t *r)
{
    return node_publish_ex(n, id, text, len, NULL, r);
}

node_code_t node_publish_ex(node_t *n, const char *id, const char *text, size_t len,
                            const node_publish_opts_t *o, node_result_t *r)
{
    static const node_publish_opts_t none = {0};
    if (!o)
        o = &none;
    memset(r, 0, sizeof *r);
    char domain[64], name[64], err[1024];
    const char *nul = memchr(text, '\0', len);
    if (nul) /* a parser would stop there and take what is before it as the whole manifest */
        return fail(r, NODE_BAD_INPUT, "bad_manifest",
                    "the manifest has a NUL byte at offset %zu; a manifest is YAML or JSON text",
                    (size_t)(nul - text));
    Trib__Manifest *m = manifest_parse(text, len, NULL, err, sizeof err);
    if (!m)
        return fail(r, NODE_BAD_INPUT, "bad_manifest", "%s", err);
    pthread_mutex_t *mu = NULL;
    json_t *doc = NULL;   /* m's document, parsed once for the gate and the policy check */
    char body_id[STORE_ID_MAX];
    snprintf(body_id, sizeof body_id, "%s/%s", m->domain, m->name);
    if (strcmp(body_id, id) != 0) {
        fail(r, NODE_BAD_INPUT, "bad_manifest", "the manifest describes %s but was sent to /v1/products/%s",
             body_id, id);
        goto out;
    }
    if (strcmp(m->domain, n->cfg.domain) != 0) {
        fail(r, NODE_WRONG_DOMAIN, "wrong_domain",
             "domain: '%s' is not this node's domain '%s'; publish it on that domain's node", m->domain,
             n->cfg.domain);
        goto out;
    }
    if (own_product(n, id, "publish", domain, name, r) != NODE_OK)
        goto out;
    mu = pub_lock(n, id);
    pthread_mutex_lock(mu);   /* the gate's view of the latest version holds until it is signed */
    json_t *report = NULL;
    doc = manifest_document(m);
    gate_check(n, id, m, doc, o->revive, r, o->want_report ? &report : NULL);
    r->report = report;
    if (!o->dry_run)
        metrics_gate(r->code != NODE_OK ? r->kind : r->unchanged ? "unchanged" : NULL);
    if (r->code != NODE_OK)
        goto out;
    /* The policy set in force (node/policy_node.c): error rules refuse (422 policy_violation, every
     * violation in r->extra), warnings ride along in r->extra; a dry run reports them too. */
    if (!r->unchanged && policy_node_check_publish(n, m, doc, text, len, o->dry_run, r) != NODE_OK)
        goto out;
    snprintf(r->status, sizeof r->status, "%s", m->status);
    if (o->dry_run || r->unchanged) {
        /* a client may send the same manifest again at will: counted (trib_publish_unchanged_total),
         * a line per 10 s at most */
        static log_limit_t unchanged_log;
        uint64_t held;
        char tail[96];
        if (r->unchanged && log_limit(&unchanged_log, 10000, &held))
            log_info("publish of %s version %s: unchanged, no new entry%s", id, m->version,
                     log_held(tail, sizeof tail, held, "unchanged publishes"));
        ok(r);
        goto out;
    }
    if (own_synced(n, r) != NODE_OK)
        goto out;
    uint8_t *signed_bytes = NULL;
    size_t signed_len = 0;
    if (catalog_publish(n->cat, m, NULL, &r->catalog_seq, &signed_bytes, &signed_len, err, sizeof err) < 0) {
        publish_refused(n, r, "publish_failed", err);
        goto out;
    }
    gate_published(n, id, r->catalog_seq, m, doc);
    announce(n, signed_bytes, signed_len);
    metrics_published();
    log_info("published %s version %s as catalog seq %" PRIu64, id, m->version, r->catalog_seq);
    ok(r);
out:
    if (mu)
        pthread_mutex_unlock(mu);
    json_decref(doc);
    manifest_free(&m);
    return r->code;
}

node_code_t node_retire(node_t *n, const char *id, node_result_t *r)
{
    memset(r, 0, sizeof *r);
    char domain[64], name[64], err[512];
    if (own_product(n, id, "retire", domain, name, r) != NODE_OK)
        return r->code;
    store_product_t p;
    int rc = store_product_get(n->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return fail(r, NODE_NOT_FOUND, "not_found", "no product %s", id);
    if (rc != 0)
        return fail(r, NODE_FAILED, "storage", "reading product %s failed", id);
    if (p.retired)
        return fail(r, NODE_ALREADY_RETIRED, "already_retired", "%s is already retired", id);
    if (own_synced(n, r) != NODE_OK)
        return r->code;
    if (policy_node_check_retire(n, id, r) != NODE_OK) /* policy: deprecation window before retired (422) */
        return r->code;
    uint8_t *signed_bytes = NULL;
    size_t signed_len = 0;
    if (catalog_publish(n->cat, NULL, name, &r->catalog_seq, &signed_bytes, &signed_len, err, sizeof err) < 0)
        return publish_refused(n, r, "retire_failed", err);
    announce(n, signed_bytes, signed_len);
    if (n->gossip)
        gossip_notify_append(n->gossip, id); /* remote live readers learn it ended */
    metrics_retired();
    log_info("retired %s as catalog seq %" PRIu64, id, r->catalog_seq);
    return ok(r);
}

/* One try of node_append: *stale when a publish came between the check and the write. */
static node_code_t append_try(node_t *n, const char *id, const char *body, size_t len, node_result_t *r,
                              int *stale)
{
    memset(r, 0, sizeof *r);
    char domain[64], name[64], err[1024];
    if (own_product(n, id, "append records to", domain, name, r) != NODE_OK)
        return r->code;
    if (domain_held_elsewhere(n, r->detail, sizeof r->detail)) {
        r->code = NODE_DOMAIN_TAKEN;
        r->kind = "domain_taken";
        return r->code;
    }
    store_product_t p;
    int rc = store_product_get(n->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return fail(r, NODE_NOT_FOUND, "not_found", "no product %s; publish its manifest first", id);
    if (rc != 0)
        return fail(r, NODE_FAILED, "storage", "reading product %s failed", id);
    if (p.retired)
        return fail(r, NODE_RETIRED, "retired", "%s is retired and takes no new records", id);
    Trib__SignedEntry *se = NULL;
    Trib__CatalogEntry *ce = NULL;
    if (view_load_manifest(n, domain, p.manifest_seq, &se, &ce) < 0 || !ce->manifest) {
        view_free_entry(&se, &ce);
        return fail(r, NODE_FAILED, "storage", "manifest of %s is unreadable", id);
    }
    record_schema_t *schema = record_schema_new(ce->manifest);
    view_free_entry(&se, &ce);
    if (!schema)
        return fail(r, NODE_FAILED, "internal", "out of memory");
    store_buf_t *recs = NULL;
    size_t count = 0;
    int status = 400;
    uint64_t first = 0, last = 0;
    if (records_split(schema, body ? body : "", len, &n->limits, &recs, &count, &status, err, sizeof err) < 0) {
        if (status == 413)
            fail(r, NODE_TOO_LARGE, "too_large", "%s; nothing was stored", err);
        else if (status >= 500)
            fail(r, NODE_FAILED, "internal", "%s; nothing was stored", err);
        else
            fail(r, NODE_BAD_INPUT, "bad_record", "%s; nothing was stored", err);
        goto out;
    }
    rc = store_records_append_at(n->st, id, p.manifest_seq, recs, count, &first, &last, err, sizeof err);
    if (rc == STORE_STALE) {
        *stale = 1;
        fail(r, NODE_FAILED, "retry", "%s: new versions of %s kept being published while these records were "
             "checked; nothing was stored, send them again", err, id);
    } else if (rc == STORE_RETIRED)
        fail(r, NODE_RETIRED, "retired", "%s is retired and takes no new records", id);
    else if (rc == STORE_NOTFOUND)
        fail(r, NODE_NOT_FOUND, "not_found", "no product %s", id);
    else if (rc != 0)
        fail(r, write_failed(), "storage", "%s", err);
    else {
        metrics_records_appended(count);
        node_notify(n);
        if (n->gossip)
            gossip_notify_append(n->gossip, id); /* remote live readers */
        r->first_seq = first;
        r->last_seq = last;
        r->count = count;
        ok(r);
    }
out:
    free(recs);
    record_schema_free(&schema);
    return r->code;
}

/* Records are stored with the manifest they were validated against (storage notes the schema
 * epoch in the same transaction); a publish in between makes the write refuse, and the batch is
 * checked again against the new manifest. */
node_code_t node_append(node_t *n, const char *id, const char *body, size_t len, node_result_t *r)
{
    for (int attempt = 0;; attempt++) {
        int stale = 0;
        node_code_t code = append_try(n, id, body, len, r, &stale);
        if (!stale || attempt == 3)
            return code;
    }
}
