/* node/policy_node.c - the policy set at work on a running node (node/policy_node.h).
 *
 * Owns: the compliance table (product id -> what its latest manifest was judged against and
 * the verdict, plus what the transition and grace rules need: first publish time, status
 * history), the thread that follows the catalog and re-checks on a new set, the check at
 * publish, the policy endpoints' bodies and the trib_policy_* counters.
 * Must not: refuse or drop a peer's entry (non-compliance is a mark), hold an LMDB
 * transaction while evaluating, or block an HTTP thread on a re-check. */
#include "node/policy_node.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/fedlog.h"
#include "gossip/log.h"
#include "gossip/textfile.h"
#include "node/changes.h"
#include "node/policy.h"
#include "node/policy_store.h"
#include "node/yaml.h"
#include "storage/fedlog.h"
#include "storage/search.h"
#include "storage/store.h"

#define CHUNK        128        /* products per re-check chunk; the thread yields between chunks */
#define SCAN_BATCH   256        /* catalog entries read per transaction */
#define SCAN_BYTES   (4u << 20)
#define NBUCKETS0    1024
#define POLICY_RETRY_S 5        /* Retry-After of a set the busy loop did not take in time */

enum { ST_UNCHECKED = 0, ST_COMPLIANT = 1, ST_NON_COMPLIANT = 2 };

typedef struct prod {
    char id[STORE_ID_MAX];
    uint64_t manifest_seq;
    int64_t first_ms;             /* time of its first manifest entry */
    char status[16];              /* status of its latest entry (retired after a tombstone) */
    int restricted;               /* its latest manifest is classified restricted */
    int64_t status_ms;            /* since when */
    /* the context its latest manifest was judged in (re-checks reuse it) */
    int64_t ctx_now_ms, ctx_created_ms, ctx_prev_ms;
    char ctx_prev[16];
    int state;
    int indexed;                  /* the state the search index's compliance facet holds */
    int dirty;                    /* on the dirty list (state != indexed) */
    uint64_t set_version;         /* the set that judged it (0: none was in force at its time) */
    uint64_t judged_gen;          /* the store's generation when judged */
    char *violations;             /* JSON array text, or NULL */
    struct prod *next;
} prod_t;

typedef struct {
    char domain[64];
    uint64_t seq;                 /* entries processed: 1..seq */
} cursor_t;

struct policy_node {
    node_t *n;
    const charter_t *ch;
    policy_store_t *store;
    fedlog_t *flog;               /* chartered: operators' signed sets go here (policy_node_attach) */
    pthread_t th;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;           /* the table and cursors */
    pthread_mutex_t scan_mu;      /* one catch-up batch at a time (thread, publish) */
    pthread_mutex_t note_mu;      /* the set in force read and noted in the change feed as one step */
    prod_t **buckets;
    size_t nbuckets, nprods;
    cursor_t *cursors;
    size_t ncursors;
    prod_t **dirty;               /* verdicts not yet in the search index's compliance facet */
    size_t ndirty, capdirty;
    uint64_t checked_gen;         /* set generation every product has been judged against */
    atomic_int rechecking;
    uint64_t conflicts_base;      /* the store's conflicts met replaying the stored sets at start (not counted) */
    atomic_uint_fast64_t n_refused_publish, n_offer_refused, n_offer_accepted, n_offer_history, n_checked,
        n_recheck_ms;
};

/* ================================================================ the table */

static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static prod_t *find_locked(struct policy_node *p, const char *id)
{
    for (prod_t *x = p->buckets[hash_id(id) & (p->nbuckets - 1)]; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

static void grow_locked(struct policy_node *p)
{
    size_t nb = p->nbuckets * 2;
    prod_t **b = calloc(nb, sizeof *b);
    if (!b)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < p->nbuckets; i++)
        for (prod_t *x = p->buckets[i], *next; x; x = next) {
            next = x->next;
            size_t k = hash_id(x->id) & (nb - 1);
            x->next = b[k];
            b[k] = x;
        }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = nb;
}

static prod_t *get_or_add_locked(struct policy_node *p, const char *id)
{
    prod_t *x = find_locked(p, id);
    if (x)
        return x;
    if (p->nprods >= p->nbuckets * 2)
        grow_locked(p);
    if (!(x = calloc(1, sizeof *x)))
        return NULL;
    snprintf(x->id, sizeof x->id, "%s", id);
    size_t k = hash_id(id) & (p->nbuckets - 1);
    x->next = p->buckets[k];
    p->buckets[k] = x;
    p->nprods++;
    return x;
}

static cursor_t *cursor_locked(struct policy_node *p, const char *domain)
{
    for (size_t i = 0; i < p->ncursors; i++)
        if (strcmp(p->cursors[i].domain, domain) == 0)
            return &p->cursors[i];
    cursor_t *c = realloc(p->cursors, (p->ncursors + 1) * sizeof *c);
    if (!c)
        return NULL;
    p->cursors = c;
    c = &p->cursors[p->ncursors++];
    memset(c, 0, sizeof *c);
    snprintf(c->domain, sizeof c->domain, "%s", domain);
    return c;
}

/* ================================================================ judging one manifest */

typedef struct {
    int state;
    char *violations;
    uint64_t version, gen;
} verdict_t;

/* ps NULL: no set was in force at the entry's time, nothing to break (compliant, version 0). */
static void judge(const policy_set_t *ps, uint64_t version, uint64_t gen, const Trib__Manifest *m,
                  const policy_ctx_t *ctx, verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->version = version;
    out->gen = gen;
    if (!ps) {
        out->state = ST_COMPLIANT;
        return;
    }
    json_t *doc = policy_doc_of(m);
    policy_report_t rep = { 0 };
    if (!doc || policy_eval(ps, doc, ctx, &rep) != 0) {
        json_decref(doc);
        policy_report_free(&rep);
        return;   /* out of memory: stays unchecked */
    }
    json_decref(doc);
    out->state = rep.nerrors ? ST_NON_COMPLIANT : ST_COMPLIANT;
    if (rep.n) {
        json_t *a = policy_report_json(&rep);
        out->violations = a ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
    }
    policy_report_free(&rep);
}

static void set_verdict_locked(struct policy_node *p, prod_t *x, verdict_t *v)
{
    free(x->violations);
    x->violations = v->violations;
    x->state = v->state;
    x->set_version = v->version;
    x->judged_gen = v->gen;
    v->violations = NULL;
    if (x->state != x->indexed && !x->dirty) {
        if (p->ndirty == p->capdirty) {
            size_t cap = p->capdirty ? p->capdirty * 2 : 256;
            prod_t **d = realloc(p->dirty, cap * sizeof *d);
            if (!d)
                return;   /* the facet catches up on the next change */
            p->dirty = d;
            p->capdirty = cap;
        }
        p->dirty[p->ndirty++] = x;
        x->dirty = 1;
    }
}

/* Writes the verdicts not yet in the search index's compliance facet, in one transaction.
 * Products are never removed from the table, so the pointers stay valid. */
static void flush_index(struct policy_node *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->ndirty;
    const char **ids = n ? malloc(n * sizeof *ids) : NULL, **states = n ? malloc(n * sizeof *states) : NULL;
    char (*copy)[STORE_ID_MAX] = n ? malloc(n * sizeof *copy) : NULL;
    int *want = n ? malloc(n * sizeof *want) : NULL;
    if (!ids || !states || !copy || !want) {
        pthread_mutex_unlock(&p->mu);
        free(ids), free(states), free(copy), free(want);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        prod_t *x = p->dirty[i];
        snprintf(copy[i], STORE_ID_MAX, "%s", x->id);
        ids[i] = copy[i];
        want[i] = x->state;
        states[i] = x->state == ST_NON_COMPLIANT ? "non_compliant" : x->state == ST_COMPLIANT ? "compliant" : "";
    }
    pthread_mutex_unlock(&p->mu);
    char err[256];
    int rc = store_search_set_compliance(p->n->st, ids, states, n, err, sizeof err);
    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        /* drop what was written from the list; a product that changed again meanwhile stays */
        size_t k = 0;
        for (size_t i = 0; i < p->ndirty; i++) {
            prod_t *x = p->dirty[i];
            if (i < n)
                x->indexed = want[i];
            if (x->state != x->indexed)
                p->dirty[k++] = x;
            else
                x->dirty = 0;
        }
        p->ndirty = k;
    } else
        log_warn("policy: updating the compliance facet failed: %s", err);
    pthread_mutex_unlock(&p->mu);
    free(ids), free(states), free(copy), free(want);
}

/* ================================================================ following the catalog */

typedef struct {
    uint8_t *bytes[SCAN_BATCH];
    size_t len[SCAN_BATCH];
    uint64_t seq[SCAN_BATCH];
    size_t n;
} batch_t;

static int collect(void *ctx, uint64_t seq, const uint8_t *b, size_t len)
{
    batch_t *bt = ctx;
    uint8_t *copy = malloc(len);
    if (!copy)
        return 1;
    memcpy(copy, b, len);
    bt->bytes[bt->n] = copy;
    bt->len[bt->n] = len;
    bt->seq[bt->n++] = seq;
    return bt->n == SCAN_BATCH;
}

/* One accepted entry of domain at seq, decoded: updates the product's history and judges a
 * manifest with the set in force at the entry's time. */
static void process_decoded(struct policy_node *p, const char *domain, uint64_t seq, const Trib__CatalogEntry *ce)
{
    const policy_set_t *ps = NULL;
    policy_info_t info = { 0 };
    uint64_t gen = 0;
    ps = policy_store_get_at(p->store, ce->time_ms, &info, &gen);   /* gen 0: no set ever, nothing judged */
    /* change is a oneof (a union): which member is set is change_case's to say. Other kinds of
     * entry are not product changes. */
    int is_manifest = ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST,
        is_tomb = ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
    const char *name = is_manifest ? ce->manifest->name : is_tomb ? ce->tombstone->name : NULL;
    if (!name || !*name)
        goto out;   /* another kind of entry: not a product change */
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s/%s", domain, name);
    pthread_mutex_lock(&p->mu);
    prod_t *x = get_or_add_locked(p, id);
    if (!x) {
        pthread_mutex_unlock(&p->mu);
        goto out;
    }
    int existed = x->manifest_seq != 0;
    if (is_tomb) {
        if (strcmp(x->status, "retired") == 0 || !existed) {
            pthread_mutex_unlock(&p->mu);
            goto out;
        }
        /* retired by a tombstone: the transition rules into retired judge it (a re-check on a
         * new set judges the last manifest again, the tombstone is not replayed) */
        char prev_st[16];
        snprintf(prev_st, sizeof prev_st, "%s", x->status);
        policy_ctx_t rc = { .now_ms = ce->time_ms, .created_ms = x->first_ms, .prev_status = prev_st,
                            .prev_status_since_ms = x->status_ms };
        snprintf(x->status, sizeof x->status, "retired");
        x->status_ms = ce->time_ms;
        uint64_t mseq = x->manifest_seq;
        pthread_mutex_unlock(&p->mu);
        policy_report_t rep = { 0 };
        if (ps && policy_eval_retire(ps, &rc, &rep) == 0 && rep.n) {
            json_t *a = policy_report_json(&rep);
            verdict_t v = { .state = rep.nerrors ? ST_NON_COMPLIANT : ST_COMPLIANT, .version = info.version,
                            .gen = gen, .violations = a ? json_dumps(a, JSON_COMPACT) : NULL };
            json_decref(a);
            pthread_mutex_lock(&p->mu);
            if (x->manifest_seq == mseq)
                set_verdict_locked(p, x, &v);
            pthread_mutex_unlock(&p->mu);
            free(v.violations);
        }
        policy_report_free(&rep);
        goto out;
    }
    policy_ctx_t ctx = { .now_ms = ce->time_ms, .created_ms = existed ? x->first_ms : 0 };
    char prev[16];
    snprintf(prev, sizeof prev, "%s", x->status);
    if (existed) {
        ctx.prev_status = prev;
        ctx.prev_status_since_ms = x->status_ms;
    }
    x->ctx_now_ms = ctx.now_ms;
    x->ctx_created_ms = ctx.created_ms;
    snprintf(x->ctx_prev, sizeof x->ctx_prev, "%s", existed ? prev : "");
    x->ctx_prev_ms = ctx.prev_status_since_ms;
    if (!existed)
        x->first_ms = ce->time_ms;
    x->manifest_seq = seq;
    x->restricted = ce->manifest->classification && strcmp(ce->manifest->classification, "restricted") == 0;
    const char *st = ce->manifest->status && *ce->manifest->status ? ce->manifest->status : "active";
    if (strcmp(x->status, st) != 0) {
        snprintf(x->status, sizeof x->status, "%s", st);
        x->status_ms = ce->time_ms;
    }
    pthread_mutex_unlock(&p->mu);
    if (gen) {
        verdict_t v;
        judge(ps, info.version, gen, ce->manifest, &ctx, &v);
        pthread_mutex_lock(&p->mu);
        if (x->manifest_seq == seq)
            set_verdict_locked(p, x, &v);
        pthread_mutex_unlock(&p->mu);
        free(v.violations);
        atomic_fetch_add(&p->n_checked, 1);
    }
out:
    policy_store_put(p->store, ps);
}

/* The same, from the entry's stored bytes. */
static void process_entry(struct policy_node *p, const char *domain, uint64_t seq, const uint8_t *bytes, size_t len)
{
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, bytes);
    Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
    if (ce)
        process_decoded(p, domain, seq, ce);
    if (ce)
        trib__catalog_entry__free_unpacked(ce, NULL);
    if (se)
        trib__signed_entry__free_unpacked(se, NULL);
}

typedef struct {
    char domain[64];
    uint64_t head;
} head_t;

typedef struct {
    head_t *v;
    size_t n, cap;
    int oom;                      /* a head was left out */
} heads_t;

static int add_head(void *ctx, const char *domain, const store_head_t *h)
{
    heads_t *hs = ctx;
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 16;
        head_t *v = realloc(hs->v, cap * sizeof *v);
        if (!v) {
            hs->oom = 1;
            return 1;
        }
        hs->v = v;
        hs->cap = cap;
    }
    snprintf(hs->v[hs->n].domain, sizeof hs->v[0].domain, "%s", domain);
    hs->v[hs->n++].head = h->seq;
    return 0;
}

/* Processes every entry of domain up to head not yet seen, a batch at a time under scan_mu
 * (so a publish waiting for its own domain waits for one batch, not a whole catch-up). */
static void catch_up_domain(struct policy_node *p, const char *domain, uint64_t head)
{
    for (;;) {
        pthread_mutex_lock(&p->scan_mu);
        pthread_mutex_lock(&p->mu);
        cursor_t *c = cursor_locked(p, domain);
        uint64_t from = c ? c->seq + 1 : 0;
        pthread_mutex_unlock(&p->mu);
        if (!c || from > head || atomic_load(&p->stop)) {
            pthread_mutex_unlock(&p->scan_mu);
            break;
        }
        batch_t bt = { .n = 0 };
        long got = store_catalog_scan(p->n->st, domain, from, SCAN_BYTES, collect, &bt);
        for (size_t i = 0; i < bt.n; i++) {
            if (bt.seq[i] == from + i)
                process_entry(p, domain, bt.seq[i], bt.bytes[i], bt.len[i]);
            free(bt.bytes[i]);
        }
        if (got <= 0 || bt.n == 0) {
            pthread_mutex_unlock(&p->scan_mu);
            break;
        }
        pthread_mutex_lock(&p->mu);
        c = cursor_locked(p, domain);
        if (c)
            c->seq = from + bt.n - 1;
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->scan_mu);
        flush_index(p);
    }
}

static void catch_up(struct policy_node *p, const char *only)
{
    heads_t hs = { 0 };
    if (store_catalog_heads(p->n->st, add_head, &hs) != 0) {
        free(hs.v);
        return;
    }
    for (size_t i = 0; i < hs.n && !atomic_load(&p->stop); i++)
        if (!only || strcmp(only, hs.v[i].domain) == 0)
            catch_up_domain(p, hs.v[i].domain, hs.v[i].head);
    free(hs.v);
}

void policy_node_stored(node_t *n, const Trib__CatalogEntry *const *entries, size_t k)
{
    struct policy_node *p = n ? n->policy : NULL;
    if (!p || !p->started || atomic_load(&p->stop))
        return;
    if (pthread_mutex_trylock(&p->scan_mu) != 0)
        return;   /* a catch-up is under way: it reads these too */
    for (size_t i = 0; i < k && i < SCAN_BATCH; i++) {   /* a publish waits for one batch at most */
        const Trib__CatalogEntry *e = entries[i];
        pthread_mutex_lock(&p->mu);
        cursor_t *c = cursor_locked(p, e->domain);
        int next = c && c->seq + 1 == e->seq;   /* else the catch-up reads it, in its turn */
        pthread_mutex_unlock(&p->mu);
        if (!next)
            continue;
        process_decoded(p, e->domain, e->seq, e);
        pthread_mutex_lock(&p->mu);
        if ((c = cursor_locked(p, e->domain)) != NULL)
            c->seq = e->seq;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->scan_mu);
}

/* ================================================================ re-check on a new set */

typedef struct {
    char id[STORE_ID_MAX];
    uint64_t seq;
    policy_ctx_t ctx;
    char prev[16];
} snap_t;

static void recheck_all(struct policy_node *p, uint64_t gen)
{
    uint64_t t0 = (uint64_t)clock_wall_ms();
    policy_info_t info;
    policy_store_put(p->store, policy_store_get(p->store, &info));   /* for the log line */
    pthread_mutex_lock(&p->mu);
    size_t n = 0;
    snap_t *s = calloc(p->nprods ? p->nprods : 1, sizeof *s);
    for (size_t b = 0; s && b < p->nbuckets; b++)
        for (prod_t *x = p->buckets[b]; x; x = x->next) {
            if (!x->manifest_seq)
                continue;
            snprintf(s[n].id, sizeof s[n].id, "%s", x->id);
            s[n].seq = x->manifest_seq;
            s[n].ctx = (policy_ctx_t){ .now_ms = x->ctx_now_ms, .created_ms = x->ctx_created_ms,
                                       .prev_status_since_ms = x->ctx_prev_ms };
            snprintf(s[n].prev, sizeof s[n].prev, "%s", x->ctx_prev);
            n++;
        }
    pthread_mutex_unlock(&p->mu);
    atomic_store(&p->rechecking, 1);
    for (size_t i = 0; s && i < n && !atomic_load(&p->stop); i++) {
        if (i && i % CHUNK == 0) {   /* yield: HTTP and gossip threads get the CPU */
            flush_index(p);
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
        char domain[64];
        const char *slash = strchr(s[i].id, '/');
        snprintf(domain, sizeof domain, "%.*s", (int)(slash - s[i].id), s[i].id);
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (store_catalog_get(p->n->st, domain, s[i].seq, &bytes, &len) != 0)
            continue;
        Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, bytes);
        Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
        free(bytes);
        if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST) {
            verdict_t v = { 0 };
            policy_info_t at;
            uint64_t g = 0;   /* the set in force at the entry's time */
            const policy_set_t *ps = policy_store_get_at(p->store, s[i].ctx.now_ms, &at, &g);
            s[i].ctx.prev_status = s[i].prev[0] ? s[i].prev : NULL;
            judge(ps, at.version, g, ce->manifest, &s[i].ctx, &v);
            policy_store_put(p->store, ps);
            pthread_mutex_lock(&p->mu);
            prod_t *x = find_locked(p, s[i].id);
            if (x && x->manifest_seq == s[i].seq)
                set_verdict_locked(p, x, &v);
            pthread_mutex_unlock(&p->mu);
            free(v.violations);
            atomic_fetch_add(&p->n_checked, 1);
        }
        if (ce)
            trib__catalog_entry__free_unpacked(ce, NULL);
        if (se)
            trib__signed_entry__free_unpacked(se, NULL);
    }
    free(s);
    flush_index(p);
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->stop))
        p->checked_gen = gen;
    pthread_mutex_unlock(&p->mu);
    atomic_store(&p->rechecking, 0);
    uint64_t took = (uint64_t)clock_wall_ms() - t0;
    atomic_store(&p->n_recheck_ms, took);
    log_info("policy: re-checked %zu products against policy set version %llu in %llu ms", n,
             (unsigned long long)info.version, (unsigned long long)took);
}

static void *watch_main(void *arg)
{
    struct policy_node *p = arg;
    node_t *n = p->n;
    uint64_t seen = 0;
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&n->mu);
        seen = n->append_gen;
        pthread_mutex_unlock(&n->mu);
        /* A new set first: then catch-up judges new entries with it too. */
        uint64_t gen = policy_store_generation(p->store);
        pthread_mutex_lock(&p->mu);
        int stale = gen != p->checked_gen;
        pthread_mutex_unlock(&p->mu);
        if (stale)
            recheck_all(p, gen);
        catch_up(p, NULL);
        flush_index(p);   /* verdicts policy_node_stored made */
        pthread_mutex_lock(&n->mu);
        while (n->append_gen == seen && !n->stopping && !atomic_load(&p->stop) &&
               policy_store_generation(p->store) == gen) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 200 * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&n->cv, &n->mu, &dl) == ETIMEDOUT)
                break;
        }
        int stopping = n->stopping;
        pthread_mutex_unlock(&n->mu);
        if (stopping)
            break;
    }
    return NULL;
}

/* ================================================================ the change feed */

/* Notes "policy_changed" in the change feed when the set in force is not the one it last noted:
 * the mark is its version and the BLAKE2b-256 of its YAML, so a restart (the same policy.signed,
 * the same --policy FILE), a replayed offer or a set kept only as history adds nothing, and a set
 * that came into force just before a crash is noted at the next start. The set is read at the
 * time of noting, under note_mu: two sets installed at once are noted in the order they took
 * force, or only the later one. */
static void note_policy(struct policy_node *p)
{
    pthread_mutex_lock(&p->note_mu);
    json_t *j = policy_store_json(p->store);
    json_int_t version = json_integer_value(json_object_get(j, "version"));
    const char *text = json_string_value(json_object_get(j, "text"));
    if (version > 0 && text) {
        uint8_t h[32];
        char hex[65], mark[96], prev[96] = "";
        crypto_generichash(h, sizeof h, (const uint8_t *)text, strlen(text), NULL, 0);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(mark, sizeof mark, "%lld %s", (long long)version, hex);
        size_t plen = 0;
        if (store_meta_get(p->n->st, "changes.policy_changed", prev, sizeof prev - 1, &plen) == 0)
            prev[plen] = '\0';
        json_t *d = json_pack("{s:I,s:I,s:O,s:O,s:O,s:O,s:O,s:s}", "version", version, "previous",
                              (json_int_t)strtoll(prev, NULL, 10), "signed", json_object_get(j, "signed"),
                              "source", json_object_get(j, "source"), "signers", json_object_get(j, "signers"),
                              "rules", json_object_get(j, "rules"), "effective", json_object_get(j, "effective"),
                              "text_hash", hex);
        if (d && changes_note(p->n, "policy_changed", NULL, d, mark))
            log_info("change feed: policy set version %lld noted", (long long)version);
        json_decref(d);
    }
    json_decref(j);
    pthread_mutex_unlock(&p->note_mu);
}

/* ================================================================ start, stop */

typedef struct {            /* the policy sets the federation log holds, read at start */
    uint8_t **b;
    size_t *len, n, cap;
    uint8_t (*hash)[STORE_HASH_LEN];
} stored_sets_t;
static int read_stored_sets(node_t *n, stored_sets_t *ss, char *err, size_t errlen);
static void take_stored_sets(struct policy_node *p, stored_sets_t *ss);
static void stored_sets_free(stored_sets_t *ss);

int policy_node_start(node_t *n, const charter_t *ch, const char *policy_file, char *err, size_t errlen)
{
    struct policy_node *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->n = n;
    p->ch = ch;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->scan_mu, NULL);
    pthread_mutex_init(&p->note_mu, NULL);
    p->nbuckets = NBUCKETS0;
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    n->policy = p;
    stored_sets_t ss = { 0 };
    if (ch && read_stored_sets(n, &ss, err, errlen) != 0)
        goto fail;
    if (!p->buckets || !(p->store = policy_store_open(n->cfg.data, ch, err, errlen))) {
        if (!p->buckets)
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (policy_file && *policy_file) {
        char why[600];
        size_t len = 0;
        char *text = textfile_read(policy_file, "a policy set", POLICY_MAX_BYTES, &len, why, sizeof why);
        if (!text) {
            snprintf(err, errlen, "--policy %s", why);
            goto fail;
        }
        int rc = policy_store_set_open(p->store, text, len, "--policy FILE", why, sizeof why);
        free(text);
        if (rc == POLICY_REFUSED_STALE) {
            /* an operator's newer set, kept from before this start, stays in force */
            log_warn("policy: --policy %s not taken: %s (the newer set stays in force)", policy_file, why);
        } else if (rc != 0 && rc != POLICY_UNCHANGED) {   /* unchanged: the set kept is this very text */
            snprintf(err, errlen, "--policy %s: %s", policy_file, why);
            goto fail;
        }
    }
    if (ch)
        take_stored_sets(p, &ss);
    stored_sets_free(&ss);
    policy_info_t info;
    const policy_set_t *ps = policy_store_get(p->store, &info);
    if (ps)
        log_info("policy: set version %llu in force (%s, %zu rules)", (unsigned long long)info.version, info.source,
                 policy_nrules(ps));
    policy_store_put(p->store, ps);
    note_policy(p);   /* a set not yet in the feed (first start, or a crash before it was noted) */
    p->checked_gen = 0;   /* the first pass re-checks nothing (empty table) and catches up */
    if (pthread_create(&p->th, NULL, watch_main, p) != 0) {
        snprintf(err, errlen, "policy: cannot start the compliance thread");
        goto fail;
    }
    p->started = 1;
    return 0;
fail:
    stored_sets_free(&ss);
    policy_node_stop(n);
    return -1;
}

void policy_node_stop(node_t *n)
{
    struct policy_node *p = n ? n->policy : NULL;
    if (!p)
        return;
    if (p->started) {
        atomic_store(&p->stop, 1);
        node_notify(n);
        pthread_join(p->th, NULL);
    }
    for (size_t b = 0; p->buckets && b < p->nbuckets; b++)
        for (prod_t *x = p->buckets[b], *next; x; x = next) {
            next = x->next;
            free(x->violations);
            free(x);
        }
    free(p->buckets);
    free(p->cursors);
    free(p->dirty);
    policy_store_close(&p->store);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->scan_mu);
    pthread_mutex_destroy(&p->note_mu);
    free(p);
    n->policy = NULL;
}

/* ================================================================ at publish */

/* Each violation of list gets "manifest_line", the line of its path in the manifest's text (YAML,
 * or JSON read as YAML: positions either way), or of the nearest enclosing field there when the
 * value is missing. The line of the first error (0: none) is returned for the detail. */
static int manifest_lines(json_t *list, const char *text, size_t len)
{
    yaml_lines_t lines = {0};
    int root_line = 0, first = 0, seen = 0;
    char err[256];
    json_t *doc = text ? yaml_to_json(text, len, &lines, &root_line, err, sizeof err) : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *path = json_string_value(json_object_get(v, "path"));
        int line = doc && path ? yaml_path_line(doc, &lines, path) : 0;
        if (line > 0)
            json_object_set_new(v, "manifest_line", json_integer(line));
        if (!seen && !strcmp(json_string_value(json_object_get(v, "severity")), "error")) {
            seen = 1;
            first = line;
        }
    }
    json_decref(doc);
    yaml_lines_free(&lines);
    return first;
}

node_code_t policy_node_check_publish(node_t *n, const Trib__Manifest *m, const json_t *raw, const char *text,
                                      size_t len, int dry_run, node_result_t *r)
{
    struct policy_node *p = n->policy;
    if (!p)
        return NODE_OK;
    policy_info_t info;
    int64_t now = clock_wall_ms();   /* the set in effect now: the one the entry will be judged by on accept */
    const policy_set_t *ps = policy_store_get_at(p->store, now, &info, NULL);
    if (!ps)
        return NODE_OK;
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s/%s", m->domain, m->name);
    /* this product's history up to the last entry written here: the compliance thread usually
     * has it already (its latest entry, a manifest, judged), and a new product has none; else
     * the publish catches the domain's log up itself */
    store_product_t sp;
    int rc = store_product_get(n->st, id, &sp), known = rc == STORE_NOTFOUND;
    if (rc == 0 && sp.last_seq == sp.manifest_seq) {
        pthread_mutex_lock(&p->mu);
        prod_t *k = find_locked(p, id);
        known = k && k->manifest_seq == sp.manifest_seq;
        pthread_mutex_unlock(&p->mu);
    }
    if (!known)
        catch_up(p, m->domain);
    policy_ctx_t ctx = { .now_ms = now };
    char prev[16] = "";
    pthread_mutex_lock(&p->mu);
    prod_t *x = find_locked(p, id);
    if (x && x->manifest_seq) {
        ctx.created_ms = x->first_ms;
        snprintf(prev, sizeof prev, "%s", x->status);
        ctx.prev_status = prev;
        ctx.prev_status_since_ms = x->status_ms;
    }
    pthread_mutex_unlock(&p->mu);
    json_t *doc = raw ? policy_doc_from(m, raw) : policy_doc_of(m);
    policy_report_t rep = { 0 };
    node_code_t code = NODE_OK;
    if (!doc || policy_eval(ps, doc, &ctx, &rep) != 0) {
        r->code = NODE_FAILED;
        r->kind = "internal";
        snprintf(r->detail, sizeof r->detail, "policy evaluation: out of memory");
        code = NODE_FAILED;
    } else if (rep.nerrors) {
        size_t i = 0;
        while (i < rep.n && rep.v[i].severity != POLICY_ERROR)
            i++;
        r->code = code = NODE_POLICY_VIOLATION;
        r->kind = "policy_violation";
        json_t *vs = policy_report_json(&rep);
        int at = vs ? manifest_lines(vs, text, len) : 0;   /* where in the manifest, then which rule */
        char where[48] = "", rule_at[32] = "";
        if (at > 0)
            snprintf(where, sizeof where, " (manifest line %d)", at);
        if (rep.v[i].line > 0)
            snprintf(rule_at, sizeof rule_at, ", line %d", rep.v[i].line);
        snprintf(r->detail, sizeof r->detail, "%zu error%s under policy set version %llu; first: %s%s: %s; it breaks "
                 "rule %s (policy set version %llu%s)", rep.nerrors, rep.nerrors == 1 ? "" : "s",
                 (unsigned long long)info.version, rep.v[i].path, where, rep.v[i].message, rep.v[i].rule,
                 (unsigned long long)info.version, rule_at);
        r->extra = json_pack("{s:o,s:I}", "violations", vs, "policy_version", (json_int_t)info.version);
        if (!dry_run)
            atomic_fetch_add(&p->n_refused_publish, 1);
    } else if (rep.n) {
        json_t *ws = policy_report_json(&rep);
        if (ws)
            manifest_lines(ws, text, len);
        r->extra = json_pack("{s:o,s:I}", "warnings", ws, "policy_version", (json_int_t)info.version);
    }
    json_decref(doc);
    policy_report_free(&rep);
    policy_store_put(p->store, ps);
    return code;
}

/* ================================================================ views */

node_code_t policy_node_check_retire(node_t *n, const char *id, node_result_t *r)
{
    struct policy_node *p = n->policy;
    if (!p)
        return NODE_OK;
    policy_info_t info;
    int64_t now = clock_wall_ms();
    const policy_set_t *ps = policy_store_get_at(p->store, now, &info, NULL);
    if (!ps)
        return NODE_OK;
    char domain[64];
    const char *slash = strchr(id, '/');
    snprintf(domain, sizeof domain, "%.*s", slash ? (int)(slash - id) : 0, id);
    catch_up(p, domain);
    char prev[16] = "";
    policy_ctx_t ctx = { .now_ms = now };
    pthread_mutex_lock(&p->mu);
    prod_t *x = find_locked(p, id);
    if (x && x->manifest_seq) {
        snprintf(prev, sizeof prev, "%s", x->status);
        ctx.created_ms = x->first_ms;
        ctx.prev_status = prev;
        ctx.prev_status_since_ms = x->status_ms;
    }
    pthread_mutex_unlock(&p->mu);
    policy_report_t rep = { 0 };
    node_code_t code = NODE_OK;
    if (ctx.prev_status && policy_eval_retire(ps, &ctx, &rep) == 0 && rep.nerrors) {
        size_t i = 0;
        while (i < rep.n && rep.v[i].severity != POLICY_ERROR)
            i++;
        r->code = code = NODE_POLICY_VIOLATION;
        r->kind = "policy_violation";
        snprintf(r->detail, sizeof r->detail, "retiring %s breaks policy set version %llu: rule %s: %s", id,
                 (unsigned long long)info.version, rep.v[i].rule, rep.v[i].message);
        r->extra = json_pack("{s:o,s:I}", "violations", policy_report_json(&rep), "policy_version",
                             (json_int_t)info.version);
        atomic_fetch_add(&p->n_refused_publish, 1);
    }
    policy_report_free(&rep);
    policy_store_put(p->store, ps);
    return code;
}

int policy_node_grant_check(node_t *n, const char *classification, int64_t days, json_t **violations)
{
    struct policy_node *p = n->policy;
    *violations = NULL;
    policy_info_t info;
    const policy_set_t *ps = p ? policy_store_get_at(p->store, clock_wall_ms(), &info, NULL) : NULL;
    if (!ps)
        return 0;
    policy_report_t rep = { 0 };
    int rc = policy_eval_grant(ps, classification, days, &rep);
    if (rc == 0 && rep.nerrors) {
        *violations = policy_report_json(&rep);
        rc = 1;
    }
    policy_report_free(&rep);
    policy_store_put(p->store, ps);
    return rc;
}

json_t *policy_node_compliance(node_t *n, const char *id)
{
    struct policy_node *p = n->policy;
    if (!p)
        return NULL;
    policy_info_t info;
    const policy_set_t *ps = policy_store_get(p->store, &info);
    policy_store_put(p->store, ps);
    if (!ps)
        return NULL;
    pthread_mutex_lock(&p->mu);
    prod_t *x = find_locked(p, id);
    int state = x ? x->state : ST_UNCHECKED;
    json_error_t je;
    json_t *v = x && x->violations ? json_loads(x->violations, 0, &je) : NULL;
    uint64_t ver = x ? x->set_version : 0, jg = x ? x->judged_gen : 0;
    pthread_mutex_unlock(&p->mu);
    if (state == ST_UNCHECKED || jg != policy_store_generation(p->store)) {
        json_decref(v);
        return json_pack("{s:s,s:I}", "state", "unchecked", "policy_version", (json_int_t)info.version);
    }
    return json_pack("{s:s,s:I,s:o}", "state", state == ST_NON_COMPLIANT ? "non_compliant" : "compliant",
                     "policy_version", (json_int_t)ver, "violations", v ? v : json_array());
}

/* A non-compliant product of a report: its entry itself, read after the lock is let go for what
 * never changes (id, set once) and under it for the rest: a prod_t lives until policy_node_stop,
 * which runs after HTTP has stopped. So a report holds 16 bytes per product, not a copy. */
#define REPORT_LAG_DOMAINS 16   /* more domains behind the store than this: every product is asked */

/* 1 when product id ("D/name") is of one of the n domains in v. */
static int in_domains(const char *id, const head_t *v, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        size_t dn = strlen(v[j].domain);
        if (strncmp(id, v[j].domain, dn) == 0 && id[dn] == '/')
            return 1;
    }
    return 0;
}

typedef struct {
    const prod_t *x;
    uint64_t seq;     /* its manifest when listed */
    int check;        /* ask the caller's sight: restricted, or its domain's newest entries not yet read here */
} nc_t;

static int cmp_nc(const void *a, const void *b) { return strcmp(((const nc_t *)a)->x->id, ((const nc_t *)b)->x->id); }

/* The domain of id ("D/name") into out. */
static void id_domain(const char *id, char *out, size_t cap)
{
    const char *slash = strchr(id, '/');
    snprintf(out, cap, "%.*s", (int)(slash ? slash - id : (ptrdiff_t)strlen(id)), id);
}

/* The page's products with their violations, grouped by domain in id order (list sorted). The
 * violations are read under the lock one product at a time: a report never copies them all. One
 * judged again since it was listed, now restricted, is asked the caller's sight again (its new
 * verdict may quote a manifest the caller may not see), and left out if hidden. */
static json_t *report_page(struct policy_node *p, const nc_t *list, size_t from, size_t to,
                           int (*hides)(void *ctx, const char *id), void *hides_ctx)
{
    json_t *domains = json_object();
    for (size_t i = from; domains && i < to; i++) {
        pthread_mutex_lock(&p->mu);
        char *text = list[i].x->violations ? strdup(list[i].x->violations) : NULL;
        int again = list[i].x->manifest_seq != list[i].seq && list[i].x->restricted;
        pthread_mutex_unlock(&p->mu);
        if (again && hides && hides(hides_ctx, list[i].x->id)) {
            free(text);
            continue;
        }
        char dom[STORE_ID_MAX];
        id_domain(list[i].x->id, dom, sizeof dom);
        json_t *arr = json_object_get(domains, dom);
        if (!arr) {
            arr = json_array();
            json_object_set_new(domains, dom, arr);
        }
        json_error_t je;
        json_t *v = text ? json_loads(text, 0, &je) : NULL;
        free(text);
        json_array_append_new(arr, json_pack("{s:s,s:o}", "id", list[i].x->id, "violations", v ? v : json_array()));
    }
    return domains;
}

json_t *policy_node_report(node_t *n, const char *domain, size_t offset, size_t limit,
                           int (*hides)(void *ctx, const char *id), void *hides_ctx)
{
    struct policy_node *p = n->policy;
    policy_info_t info = { 0 };
    const policy_set_t *ps = p ? policy_store_get(p->store, &info) : NULL;
    if (p)
        policy_store_put(p->store, ps);
    if (!p || !ps)
        return json_pack("{s:I,s:I,s:I,s:b,s:I,s:I,s:o,s:o}", "policy_version", (json_int_t)0, "products",
                         (json_int_t)0, "non_compliant", (json_int_t)0, "pending", 0, "offset", (json_int_t)offset,
                         "limit", (json_int_t)limit, "by_domain", json_object(), "domains", json_object());
    size_t dl = domain ? strlen(domain) : 0;
    uint64_t gen = policy_store_generation(p->store);
    pthread_mutex_lock(&p->mu);
    heads_t seen = { 0 };   /* the cursors as the products are listed: what the flags below reflect */
    if (p->ncursors && (seen.v = malloc(p->ncursors * sizeof *seen.v)) != NULL)
        for (size_t i = 0; i < p->ncursors; i++) {
            snprintf(seen.v[i].domain, sizeof seen.v[i].domain, "%s", p->cursors[i].domain);
            seen.v[i].head = p->cursors[i].seq;
        }
    seen.n = seen.v ? p->ncursors : 0;
    seen.oom = p->ncursors && !seen.v;
    size_t cap = 16, k = 0, total = 0, unchecked = 0;
    nc_t *list = malloc(cap * sizeof *list);
    for (size_t b = 0; list && b < p->nbuckets; b++)
        for (prod_t *x = p->buckets[b]; x; x = x->next) {
            if (!x->manifest_seq)
                continue;
            if (dl && (strncmp(x->id, domain, dl) != 0 || x->id[dl] != '/'))
                continue;   /* a domain's report counts that domain's products alone */
            total++;
            if (x->state == ST_UNCHECKED || x->judged_gen != gen)
                unchecked++;
            if (x->state != ST_NON_COMPLIANT || x->judged_gen != gen)
                continue;
            if (k == cap) {
                nc_t *nl = realloc(list, cap * 2 * sizeof *nl);
                if (!nl)
                    break;
                list = nl;
                cap *= 2;
            }
            list[k++] = (nc_t){ x, x->manifest_seq, x->restricted };
        }
    int pending = p->checked_gen != policy_store_generation(p->store) || atomic_load(&p->rechecking) || unchecked;
    pthread_mutex_unlock(&p->mu);
    /* Which products the caller's sight is asked of: the restricted ones (their latest manifest as
     * read here), and every one of a domain whose store head, read now, is beyond the cursor it was
     * listed at (the store may hold a restricted version not read here yet: hides() reads the store).
     * Heads read after the listing: whatever was stored before now is either in the flags or
     * asked. Past a few lagging domains (a start's catch-up) every product is asked. */
    heads_t hs = { 0 };
    int all_lag = store_catalog_heads(p->n->st, add_head, &hs) != 0 || hs.oom || seen.oom;
    size_t nlag = 0;   /* hs.v[0..nlag): the lagging domains, kept in place */
    for (size_t i = 0; !all_lag && i < hs.n; i++) {
        const head_t *c = NULL;
        for (size_t j = 0; !c && j < seen.n; j++)
            if (strcmp(seen.v[j].domain, hs.v[i].domain) == 0)
                c = &seen.v[j];
        if (!c || c->head < hs.v[i].head)
            hs.v[nlag++] = hs.v[i];
    }
    free(seen.v);
    all_lag |= nlag > REPORT_LAG_DOMAINS;
    for (size_t i = 0; list && i < k && (all_lag || nlag); i++)
        list[i].check = list[i].check || all_lag || in_domains(list[i].x->id, hs.v, nlag);
    free(hs.v);
    size_t shown = 0;   /* the ids the caller may see, kept in place */
    for (size_t i = 0; list && i < k; i++)
        if (!list[i].check || !hides || !hides(hides_ctx, list[i].x->id))
            list[shown++] = list[i];
    if (list)
        qsort(list, shown, sizeof *list, cmp_nc);
    json_t *by = json_object();
    for (size_t i = 0; by && i < shown; i++) {
        char dom[STORE_ID_MAX];
        id_domain(list[i].x->id, dom, sizeof dom);
        json_t *c = json_object_get(by, dom);
        if (c)
            json_integer_set(c, json_integer_value(c) + 1);
        else
            json_object_set_new(by, dom, json_integer(1));
    }
    size_t from = offset < shown ? offset : shown, to = limit < shown - from ? from + limit : shown;
    json_t *domains = list ? report_page(p, list, from, to, hides, hides_ctx) : json_object();
    free(list);
    return json_pack("{s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:o,s:o}", "policy_version", (json_int_t)info.version, "products",
                     (json_int_t)total, "non_compliant", (json_int_t)shown, "unchecked", (json_int_t)unchecked,
                     "pending", pending, "offset", (json_int_t)offset, "limit", (json_int_t)limit, "by_domain", by,
                     "domains", domains);
}

json_t *policy_node_show(node_t *n)
{
    struct policy_node *p = n->policy;
    if (!p)
        return json_pack("{s:I,s:n}", "version", (json_int_t)0, "source");
    json_t *j = policy_store_json(p->store);
    if (j)
        json_object_set_new(j, "mode", json_string(p->ch ? "chartered" : "open"));
    return j;
}

static json_t *error_body(const char *kind, const char *detail)
{
    return json_pack("{s:s,s:s}", "error", kind, "detail", detail);
}

/* What taking a set would say, nothing installed: 0 when it would be held, else POLICY_REFUSED_*. */
static int check(struct policy_node *p, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    int rc = policy_store_check(p->store, bytes, len, p->ch, err, errlen);
    /* verified, and older or of the version in force: take keeps it as history or lets the
     * tie-break decide, and the federation log holds it either way */
    return rc == POLICY_REFUSED_STALE || rc == POLICY_REFUSED_CONFLICT ? 0 : rc;
}

/* A set the federation log brings (a peer's before its commit, any once stored): in force when
 * newer than the set in force, else kept as history, nothing written (policy_take). 0 also for a
 * set held already (a peer's whose commit failed, asked for again) and for one losing the
 * tie-break (the log holds it, as on every node), else a POLICY_REFUSED_* code with err. */
static int take(struct policy_node *p, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    uint64_t conflicts = policy_store_conflicts(p->store);
    int took = 0, rc = policy_take(p->store, bytes, len, p->ch, &took, err, errlen);
    if (policy_store_conflicts(p->store) != conflicts)
        log_warn("policy: two different signed sets of one version met; the one with the higher body hash is kept "
                 "(as on every node): sign the intended set as a new version");
    if (rc == POLICY_REFUSED_CONFLICT) {
        log_warn("policy: %s", err);
        return 0;
    }
    if (rc != 0 || took == 0) {
        if (rc != 0)
            atomic_fetch_add(&p->n_offer_refused, 1);
        return rc;
    }
    atomic_fetch_add(took == 1 ? &p->n_offer_accepted : &p->n_offer_history, 1);
    policy_info_t info = { 0 };
    policy_store_put(p->store, policy_store_get(p->store, &info));
    if (took == 1)
        log_info("policy: signed set version %llu in force; re-checking every product",
                 (unsigned long long)info.version);
    else
        log_info("policy: an older signed set kept as history; re-checking");
    note_policy(p);   /* nothing unless the set in force changed */
    node_notify(p->n);
    return 0;
}

/* Writes the files of a set the federation log stored. A failure is logged: the set stays in
 * force, as the log holds it (policy_node_start takes the log's sets again at the next start). */
static void keep(struct policy_node *p, const uint8_t *bytes, size_t len)
{
    char why[400];
    if (policy_store_keep(p->store, bytes, len, why, sizeof why) != 0)
        log_warn("policy: %s (the set is stored in the federation log, and taken from there at the next start)",
                 why);
}

int policy_node_fedlog(void *ctx, const uint8_t *bytes, size_t len, int step, char *err, size_t errlen)
{
    node_t *n = ctx;
    struct policy_node *p = n->policy;
    if (!p) {
        snprintf(err, errlen, "policy is not running on this node");
        return -1;
    }
    switch (step) {
    case FEDLOG_POLICY_PEER:      /* in force now, as a peer's other objects */
        return take(p, bytes, len, err, errlen) == 0 ? 0 : -1;
    case FEDLOG_POLICY_STORED:    /* durable: in force (an operator's: only now), its files written */
        if (take(p, bytes, len, err, errlen) != 0) {
            log_warn("policy: a stored set is not in force: %s", err);
            return -1;
        }
        keep(p, bytes, len);
        return 0;
    default:                      /* CHECK, OPERATOR: verify only; an operator's in force once stored */
        return check(p, bytes, len, err, errlen) == 0 ? 0 : -1;
    }
}

/* The sets the federation log holds (LMDB), taken at start with their files written where
 * missing: what this node enforces is what it stored, even where a file could not be written
 * after a commit, or a crash came between the two; a file naming a set the log does not hold
 * (older code wrote files before a commit that could fail) is set aside before the store opens. */

static int collect_set(void *ctx, const uint8_t hash[STORE_HASH_LEN], int kind, const uint8_t *bytes, size_t len)
{
    stored_sets_t *ss = ctx;
    if (kind != TRUST_KIND_POLICY)
        return 0;
    if (ss->n == ss->cap) {
        size_t cap = ss->cap ? ss->cap * 2 : 8;
        uint8_t **b = realloc(ss->b, cap * sizeof *b);
        if (b)
            ss->b = b;
        size_t *l = b ? realloc(ss->len, cap * sizeof *l) : NULL;
        if (l)
            ss->len = l;
        uint8_t (*h)[STORE_HASH_LEN] = l ? realloc(ss->hash, cap * sizeof *h) : NULL;
        if (!h)
            return 1;
        ss->hash = h;
        ss->cap = cap;
    }
    if (!(ss->b[ss->n] = malloc(len)))
        return 1;
    memcpy(ss->b[ss->n], bytes, len);
    memcpy(ss->hash[ss->n], hash, STORE_HASH_LEN);
    ss->len[ss->n++] = len;
    return 0;
}

static int set_stored(void *ctx, const uint8_t hash[TRUST_HASH_LEN])
{
    const stored_sets_t *ss = ctx;
    for (size_t i = 0; i < ss->n; i++)
        if (!memcmp(ss->hash[i], hash, TRUST_HASH_LEN))
            return 1;
    return 0;
}

static void stored_sets_free(stored_sets_t *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        free(ss->b[i]);
    free(ss->b);
    free(ss->len);
    free(ss->hash);
    memset(ss, 0, sizeof *ss);
}

/* Before the store opens: the log's sets into ss and the files of sets it does not hold renamed
 * aside (policy_store_set_aside); when the log cannot be read whole, no file is. 0, or -1 with
 * err when such a file cannot be renamed. */
static int read_stored_sets(node_t *n, stored_sets_t *ss, char *err, size_t errlen)
{
    if (store_fedlog_each(n->st, collect_set, ss) != 0) {
        log_warn("policy: reading the federation log's policy sets failed: %s (policy files are taken as they are)",
                 store_last_error());
        return 0;
    }
    char names[600];
    int k = policy_store_set_aside(n->cfg.data, set_stored, ss, names, sizeof names, err, errlen);
    if (k > 0)
        log_warn("policy: %d file(s) hold a set this node's federation log does not (written by an older version "
                 "before a commit that failed): not in force, renamed aside: %s", k, names);
    return k < 0 ? -1 : 0;
}

/* The stored sets taken (in force, or history) with their files written where missing. What this
 * replays was counted when it was first met: a pair of one version meeting again here is no new
 * event, so the conflicts counter starts after it (conflicts_base). */
static void take_stored_sets(struct policy_node *p, stored_sets_t *ss)
{
    size_t taken = 0;
    for (size_t i = 0; i < ss->n; i++) {
        char why[400];
        int took = 0;
        if (policy_take(p->store, ss->b[i], ss->len[i], p->ch, &took, why, sizeof why) == 0) {
            taken += took != 0;
            keep(p, ss->b[i], ss->len[i]);
        } else
            log_debug("policy: a stored set not taken: %s", why);
    }
    if (taken)
        log_warn("policy: %zu set(s) held in the federation log were not on file; taken from the log", taken);
    p->conflicts_base = policy_store_conflicts(p->store);
}

/* An operator's signed set: checked here first (so the refusal says why: 400, 403 or 409; the set
 * in force sent again, under any valid signatures, is 0 at once: the same set), then, on a
 * chartered node, handed to the federation log as an operator's submission: it
 * verifies it again through the policy hook, stores it, puts it in force here once stored
 * (policy_node_fedlog, STORED) and pushes it to every node; a failed commit is NO_SPACE or
 * STORAGE, the set not in force; a loop too busy to take it in time is BUSY (it may still be
 * taken), as is a set given before a federation log is attached (the agent attaches it before
 * HTTP serves). */
static int submit_signed(node_t *n, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    struct policy_node *p = n->policy;
    fedlog_t *f = p->ch ? p->flog : NULL;
    int rc = policy_store_check(p->store, bytes, len, p->ch, err, errlen);
    /* the set in force sent again, as it is or under other valid signatures (verified: a stale
     * verdict comes after the signatures): the same set, nothing to do (docs/governance.md) */
    if (rc == POLICY_REFUSED_STALE && policy_store_held(p->store, bytes, len) == 1)
        return 0;
    if (rc != 0) {
        atomic_fetch_add(&p->n_offer_refused, 1);
        return rc;
    }
    if (!f) {   /* the agent attaches its log before HTTP serves (policy_node_attach) */
        snprintf(err, errlen, "this node's federation log is not running yet: retry in a few seconds");
        return POLICY_REFUSED_BUSY;
    }
    fedlog_result_t r;
    if (fedlog_offer(f, bytes, len, NULL, &r) == 0)
        return 0;   /* the hook counted it */
    snprintf(err, errlen, "%s", r.err);
    if (r.reason == FEDLOG_R_POLICY)
        return POLICY_REFUSED_STALE;   /* raced with another set */
    policy_info_t info = { 0 };
    policy_store_put(p->store, policy_store_get(p->store, &info));
    if (r.reason == FEDLOG_R_BUSY) {   /* not a fault of the set: the node is busy, say so and when to retry */
        snprintf(err, errlen, "the node is busy: %.400s; version %llu is in force now (GET /v1/policy shows whether "
                 "this set was taken since): retry in a few seconds", r.err, (unsigned long long)info.version);
        return POLICY_REFUSED_BUSY;
    }
    if (r.reason != FEDLOG_R_STORAGE && r.reason != FEDLOG_R_NO_SPACE)
        return POLICY_REFUSED_BAD;
    if (strstr(r.err, "not in force"))   /* the log said so already */
        snprintf(err, errlen, "%.400s (version %llu stays in force)", r.err, (unsigned long long)info.version);
    else
        snprintf(err, errlen, "%.400s; the set is not in force on this node (version %llu stays in force): retry "
                 "once the store can be written", r.err, (unsigned long long)info.version);
    return r.reason == FEDLOG_R_NO_SPACE ? POLICY_REFUSED_NO_SPACE : POLICY_REFUSED_STORAGE;
}

void policy_node_attach(node_t *n, fedlog_t *f)
{
    fedlog_set_policy_offer(f, policy_node_fedlog, n);
    if (n->policy)
        n->policy->flog = f;
}

int policy_node_submit(node_t *n, const char *body, size_t len, json_t **reply, unsigned *retry_after_s)
{
    struct policy_node *p = n->policy;
    char err[700];
    *reply = NULL;
    *retry_after_s = 0;
    if (!p) {
        *reply = error_body("unavailable", "policy is not running on this node");
        return 503;
    }
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    int rc, status;
    if (i < len && body[i] == '{') {   /* a signed set's file */
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        if (!j || !kind || strcmp(kind, "trib.policy") != 0 || !json_object_get(j, "signed")) {
            json_decref(j);
            *reply = error_body("bad_policy", "expected a signed policy set file: a JSON object with \"kind\": "
                                "\"trib.policy\" and \"signed\" (made by trib policy sign)");
            atomic_fetch_add(&p->n_offer_refused, 1);
            return 400;
        }
        uint8_t *bytes;
        size_t got;
        int bad = trust_signed_decode(j, &bytes, &got, err, sizeof err);
        json_decref(j);
        if (bad) {
            *reply = error_body("bad_policy", err);
            atomic_fetch_add(&p->n_offer_refused, 1);
            return 400;
        }
        rc = submit_signed(n, bytes, got, err, sizeof err);
        free(bytes);
    } else {
        if (p->ch) {
            *reply = error_body("signature_required", "this node is chartered: a policy set must be signed by its "
                                "governance keys (trib policy sign), not sent as YAML");
            atomic_fetch_add(&p->n_offer_refused, 1);
            return 403;
        }
        rc = policy_store_set_open(p->store, body, len, "operator (open mode)", err, sizeof err);
        if (rc == POLICY_UNCHANGED) {   /* the set in force sent again: nothing stored or counted */
            rc = 0;
        } else {
            atomic_fetch_add(rc == 0 ? &p->n_offer_accepted : &p->n_offer_refused, 1);
            if (rc == 0) {
                note_policy(p);
                node_notify(n);
            }
        }
    }
    status = rc == 0 ? 200 : rc == POLICY_REFUSED_SIGNATURE ? 403
           : rc == POLICY_REFUSED_STALE || rc == POLICY_REFUSED_OPEN || rc == POLICY_REFUSED_CONFLICT ? 409
           : rc == POLICY_REFUSED_NO_SPACE ? 507 : rc == POLICY_REFUSED_STORAGE ? 500
           : rc == POLICY_REFUSED_BUSY ? 503 : 400;
    if (rc == POLICY_REFUSED_BUSY)
        *retry_after_s = POLICY_RETRY_S;
    if (rc != 0) {
        /* logged once per 10 s at most (a client sending garbage must not fill the log); all counted */
        static log_limit_t limit;
        uint64_t held;
        char tail[96];
        if (log_limit(&limit, 10000, &held))
            log_warn("policy: set refused (%d): %s%s", status, err, log_held(tail, sizeof tail, held, "refused"));
        const char *kind = rc == POLICY_REFUSED_OPEN ? "open_mode" : rc == POLICY_REFUSED_STALE ? "policy_stale"
                         : rc == POLICY_REFUSED_NO_SPACE ? "no_space" : rc == POLICY_REFUSED_STORAGE ? "storage"
                         : rc == POLICY_REFUSED_CONFLICT ? "policy_conflict" : rc == POLICY_REFUSED_BUSY ? "busy"
                         : rc == POLICY_REFUSED_SIGNATURE ? "policy_unsigned" : "bad_policy";
        *reply = error_body(kind, err);
        return status;
    }
    *reply = policy_node_show(n);
    return 200;
}

void policy_node_metrics(node_t *n, FILE *f)
{
    struct policy_node *p = n->policy;
    if (!p)
        return;
    policy_info_t info = { 0 };
    const policy_set_t *ps = policy_store_get(p->store, &info);
    policy_store_put(p->store, ps);
    size_t nc = 0;
    uint64_t gen = policy_store_generation(p->store);
    pthread_mutex_lock(&p->mu);
    for (size_t b = 0; b < p->nbuckets; b++)
        for (prod_t *x = p->buckets[b]; x; x = x->next)
            nc += x->state == ST_NON_COMPLIANT && x->judged_gen == gen;
    pthread_mutex_unlock(&p->mu);
    fprintf(f, "# TYPE trib_policy_version gauge\ntrib_policy_version %llu\n", (unsigned long long)info.version);
    fprintf(f, "# TYPE trib_policy_non_compliant gauge\ntrib_policy_non_compliant %zu\n", nc);
    fprintf(f, "# TYPE trib_policy_publish_refused_total counter\ntrib_policy_publish_refused_total %llu\n",
            (unsigned long long)atomic_load(&p->n_refused_publish));
    fprintf(f, "# TYPE trib_policy_sets_total counter\ntrib_policy_sets_total{result=\"accepted\"} %llu\n"
               "trib_policy_sets_total{result=\"refused\"} %llu\n"
               "trib_policy_sets_total{result=\"history\"} %llu\n"
               "trib_policy_sets_total{result=\"conflict\"} %llu\n",
            (unsigned long long)atomic_load(&p->n_offer_accepted), (unsigned long long)atomic_load(&p->n_offer_refused),
            (unsigned long long)atomic_load(&p->n_offer_history),
            (unsigned long long)(policy_store_conflicts(p->store) - p->conflicts_base));
    fprintf(f, "# TYPE trib_policy_checks_total counter\ntrib_policy_checks_total %llu\n",
            (unsigned long long)atomic_load(&p->n_checked));
    fprintf(f, "# TYPE trib_policy_recheck_last_ms gauge\ntrib_policy_recheck_last_ms %llu\n",
            (unsigned long long)atomic_load(&p->n_recheck_ms));
}
