/* gossip/catalog.c - the node's catalog replica: publishing its own entries, accepting peers'.
 *
 * Owns: building this node's next CatalogEntry (seq head+1, prev_hash = head hash, manifest or
 * tombstone), signing it, checking the signed bytes as a peer would, and appending it, by group
 * commit: concurrent publishers queue, one of them leads and appends every queued entry in one
 * durable transaction, and each caller gets its own result; and
 * accepting a peer's SignedEntry (a byte-identical copy of a held entry is a duplicate at once;
 * otherwise entry_verify, then store_catalog_append's sequence, chain and key checks), mapping
 * every refusal to a cat_result_t so the caller can count it.
 * Must not: speak to the network, parse YAML/JSON, or include lmdb.h. */
#include "gossip/catalog.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/log.h"
#include "storage/access.h"
#include "storage/store.h"

#define ERR_TEXT 256   /* a refusal's text */

/* One queued change and, once done, its result. Lives on its caller's stack until done. */
typedef struct pub {
    const Trib__Manifest *m;     /* a publish, or */
    const char *retire;          /* a retire, or */
    const Trib__AccessChange *access;   /* an access request or decision (not a product change) */
    const Trib__TokenRevocation *rev;  /* a token revocation (not a product change) */
    char *err;                   /* the caller's buffer: its own error */
    size_t errlen;
    int rc, done;                /* rc 0: seq and out are set */
    int err_no;                  /* rc -1 from a storage failure: its errno (ENOSPC: disk full) */
    int wrong_key;               /* rc -1: the domain's log is bound to another node's key */
    uint64_t seq;
    uint8_t *out;
    size_t outlen;
    struct pub *next;            /* queue link */
    entry_t v;                   /* the leader's work: the signed entry, decoded */
    uint8_t *bytes;
    size_t len;
} pub_t;

struct catalog {
    store_t *st;                 /* borrowed */
    identity_t id;               /* a copy, wiped on destroy */
    char domain[64];
    pthread_mutex_t mu;          /* guards the queue, leading, the counters */
    pthread_cond_t cv;           /* a batch is done */
    pub_t *queue, **tail;        /* changes waiting for a leader, in arrival order */
    int leading;                 /* a caller is running a batch: only one at a time, so seqs never race */
    uint64_t published, commits;
    char texts[CATALOG_BATCH_MAX][ERR_TEXT];   /* the leader's: per entry store refusals */
    catalog_handover_fn handover;            /* may a domain's log move to another key? NULL: never */
    void *handover_ctx;
};


static const char *const result_names[CAT_RESULT_COUNT] = {
    [CAT_ACCEPTED] = "accepted",
    [CAT_DUPLICATE] = "duplicate",
    [CAT_GAP] = "gap",
    [CAT_BAD_SIGNATURE] = "bad_signature",
    [CAT_WRONG_KEY] = "wrong_key",
    [CAT_BAD_CHAIN] = "bad_chain",
    [CAT_ERROR] = "error",
};

const char *cat_result_name(cat_result_t r)
{
    if ((int)r < 0 || r >= CAT_RESULT_COUNT)
        return "unknown";
    return result_names[r];
}

/* ---------------------------------------------------------------- lifetime */

catalog_t *catalog_new(store_t *st, const identity_t *id, const char *domain)
{
    if (st == NULL || id == NULL || !entry_valid_name(domain))
        return NULL;
    catalog_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    c->tail = &c->queue;
    c->st = st;
    c->id = *id;
    snprintf(c->domain, sizeof c->domain, "%s", domain);
    return c;
}

void catalog_set_identity(catalog_t *c, const identity_t *id)
{
    pthread_mutex_lock(&c->mu);
    while (c->leading)                   /* a batch being signed finishes under the old key */
        pthread_cond_wait(&c->cv, &c->mu);
    identity_wipe(&c->id);
    c->id = *id;
    pthread_mutex_unlock(&c->mu);
}

int catalog_bound_elsewhere(catalog_t *c)
{
    uint8_t pk[ID_PK_LEN];
    pthread_mutex_lock(&c->mu);
    memcpy(pk, c->id.pk, sizeof pk);
    pthread_mutex_unlock(&c->mu);
    store_head_t head;
    if (store_catalog_head(c->st, c->domain, &head) != 0 || head.seq == 0)
        return 0;   /* nothing bound yet (or unreadable: the write that follows says so) */
    return sodium_memcmp(head.key, pk, ID_PK_LEN) != 0 &&
           !(c->handover && c->handover(c->handover_ctx, c->domain, head.key, pk));   /* as lead() decides */
}

void catalog_set_handover(catalog_t *c, catalog_handover_fn fn, void *ctx)
{
    c->handover = fn;
    c->handover_ctx = ctx;
}

void catalog_destroy(catalog_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    catalog_t *c = *cp;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    identity_wipe(&c->id);
    free(c);
    *cp = NULL;
}

/* ---------------------------------------------------------------- store results */

/* Describes a STORE_* refusal of entry ce in err and maps it to a cat_result_t. */
static cat_result_t map_append(int rc, const Trib__CatalogEntry *ce, const uint8_t signer[ID_PK_LEN],
                               char *err, size_t errlen)
{
    unsigned long long seq = (unsigned long long)ce->seq;
    char hex[ID_HEX_LEN];

    switch (rc) {
    case 0:
        return CAT_ACCEPTED;
    case STORE_DUP:
        snprintf(err, errlen, "%s seq %llu: already held", ce->domain, seq);
        return CAT_DUPLICATE;
    case STORE_GAP:
        snprintf(err, errlen, "%s seq %llu: earlier entries missing", ce->domain, seq);
        return CAT_GAP;
    case STORE_BADKEY:
        identity_hex(signer, hex);
        snprintf(err, errlen, "domain '%s' is bound to another key, not signer %s", ce->domain, hex);
        return CAT_WRONG_KEY;
    case STORE_BADPREV:
        snprintf(err, errlen, "%s seq %llu: prev_hash does not match the hash of seq %llu", ce->domain,
                 seq, seq - 1);
        return CAT_BAD_CHAIN;
    case -1:
        return CAT_ERROR;   /* the store described it in err */
    default:
        snprintf(err, errlen, "%s seq %llu: unexpected store result %d", ce->domain, seq, rc);
        return CAT_ERROR;
    }
}

/* ---------------------------------------------------------------- publish: checks */

/* Whether the batch being built already holds an entry about product name: 1 and *retired set
 * from the latest one, or 0. (Its entries are not stored yet, so the store cannot tell.) */
static int batch_state(pub_t *const *prepared, size_t n, const char *name, int *retired)
{
    for (size_t i = n; i-- > 0;) {
        const Trib__CatalogEntry *e = prepared[i]->v.entry;
        if (e->change_case != TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE &&
            e->change_case != TRIB__CATALOG_ENTRY__CHANGE_MANIFEST)
            continue; /* not a product change */
        if (e->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE) {
            if (strcmp(e->tombstone->name, name) == 0) {
                *retired = 1;
                return 1;
            }
        } else if (e->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST && strcmp(e->manifest->name, name) == 0) {
            *retired = e->manifest->status && strcmp(e->manifest->status, "retired") == 0;
            return 1;
        }
    }
    return 0;
}

/* Refuses a change this node must not make, given the entries prepared before it in the batch;
 * 0 when it may go ahead. */
static int check_change(catalog_t *c, const pub_t *p, pub_t *const *prepared, size_t nprepared)
{
    const Trib__Manifest *m = p->m;
    const char *retire_name = p->retire;
    char *err = p->err;
    size_t errlen = p->errlen;
    if (p->access != NULL)
        return m == NULL && retire_name == NULL ? 0 : -1;   /* its rules are node/grants.c's */
    if (p->rev) {
        if (m || retire_name || p->rev->revocation_id.len != 64) {
            snprintf(err, errlen, "catalog_publish_revocation: a 64-byte revocation id, and nothing else");
            return -1;
        }
        return 0;
    }
    if ((m == NULL) == (retire_name == NULL)) {
        snprintf(err, errlen, "catalog_publish: give a manifest or a name to retire, not %s",
                 m ? "both" : "neither");
        return -1;
    }
    if (m != NULL) {
        if (m->domain == NULL || strcmp(m->domain, c->domain) != 0) {
            snprintf(err, errlen, "manifest domain '%.63s' is not this node's domain '%s'",
                     m->domain ? m->domain : "", c->domain);
            return -1;
        }
        if (!entry_valid_name(m->name)) {
            snprintf(err, errlen, "product name '%.63s' is not valid (" STORE_NAME_RULE ")",
                     m->name ? m->name : "");
            return -1;
        }
        return 0;
    }
    if (!entry_valid_name(retire_name)) {
        snprintf(err, errlen, "product name '%.63s' is not valid (" STORE_NAME_RULE ")", retire_name);
        return -1;
    }
    char pid[STORE_ID_MAX];
    snprintf(pid, sizeof pid, "%s/%s", c->domain, retire_name);
    int retired;
    if (!batch_state(prepared, nprepared, retire_name, &retired)) {
        store_product_t sp;
        int rc = store_product_get(c->st, pid, &sp);
        if (rc == STORE_NOTFOUND) {
            snprintf(err, errlen, "%s is not a known product", pid);
            return -1;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot read the products index", pid);
            return -1;
        }
        retired = sp.retired;
    }
    if (retired) {
        snprintf(err, errlen, "%s is already retired", pid);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- publish: the leader */

/* Builds, signs and checks p's entry as the one after head (moved on success). 0 or -1 with
 * p's error set. */
static int prepare(catalog_t *c, pub_t *p, store_head_t *head)
{
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    Trib__Tombstone tomb = TRIB__TOMBSTONE__INIT;
    ce.domain = c->domain;
    ce.seq = head->seq + 1;
    if (head->seq > 0) {
        ce.prev_hash.data = head->hash;
        ce.prev_hash.len = STORE_HASH_LEN;
    }
    ce.time_ms = clock_wall_ms();
    if (p->access != NULL) {
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_ACCESS;
        ce.access = (Trib__AccessChange *)p->access;   /* only read by pack */
    } else if (p->rev != NULL) {
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOKEN_REVOKE;
        ce.token_revoke = (Trib__TokenRevocation *)p->rev;   /* only read by pack */
    } else if (p->m != NULL) {
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
        ce.manifest = (Trib__Manifest *)p->m;   /* only read by pack */
    } else {
        tomb.name = (char *)p->retire;           /* only read by pack */
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
        ce.tombstone = &tomb;
    }
    if (entry_sign(&c->id, &ce, &p->bytes, &p->len) != 0) {
        snprintf(p->err, p->errlen, "%s seq %llu: cannot sign (too large or out of memory)", c->domain,
                 (unsigned long long)ce.seq);
        return -1;
    }
    /* Check our bytes exactly as a peer will; also yields the decoded entry and body hash. */
    char verr[256];
    if (entry_verify(p->bytes, p->len, &p->v, verr, sizeof verr) != 0) {
        snprintf(p->err, p->errlen, "%s seq %llu: own entry refused: %s", c->domain,
                 (unsigned long long)ce.seq, verr);
        free(p->bytes);
        p->bytes = NULL;
        return -1;
    }
    head->seq = ce.seq;
    memcpy(head->hash, p->v.hash, STORE_HASH_LEN);
    return 0;
}

static void unprepare(pub_t *p)
{
    entry_free(&p->v);
    memset(&p->v, 0, sizeof p->v);
    free(p->bytes);
    p->bytes = NULL;
    p->len = 0;
}

/* Fails every change in ps with the same text. */
static void fail_all(pub_t **ps, size_t n, const char *text)
{
    int e = store_last_errno(); /* the leader's thread: every caller learns the cause */
    for (size_t i = 0; i < n; i++) {
        snprintf(ps[i]->err, ps[i]->errlen, "%s", text);
        ps[i]->rc = -1;
        ps[i]->err_no = e;
    }
}

/* The leader's work for one batch, in queue order: each change is checked (against the store and
 * the batch before it), given the next seq and prev_hash and signed; all are appended in one
 * durable transaction. A change refused (checks, signing, or the store) gets its own error and
 * takes no seq: the changes after it are signed again on the head before it and retried. */
static void lead(catalog_t *c, pub_t **batch, size_t n)
{
    pub_t *pending[CATALOG_BATCH_MAX], *ready[CATALOG_BATCH_MAX];
    store_append_t items[CATALOG_BATCH_MAX];
    char err[ERR_TEXT];
    size_t npending = n;
    memcpy(pending, batch, n * sizeof *batch);
    while (npending > 0) {
        store_head_t head;
        int rc = store_catalog_head(c->st, c->domain, &head);
        if (rc == STORE_NOTFOUND) {
            memset(&head, 0, sizeof head);
        } else if (rc != 0) {
            snprintf(err, sizeof err, "%s: cannot read the catalog head", c->domain);
            fail_all(pending, npending, err);
            return;
        } else if (sodium_memcmp(head.key, c->id.pk, ID_PK_LEN) != 0 &&
                   !(c->handover && c->handover(c->handover_ctx, c->domain, head.key, c->id.pk))) {
            char hex[ID_HEX_LEN];
            identity_hex(head.key, hex);
            snprintf(err, sizeof err, "domain '%s' is bound to another node's key (%s)", c->domain, hex);
            fail_all(pending, npending, err);
            for (size_t i = 0; i < npending; i++)
                pending[i]->wrong_key = 1;
            return;
        }
        size_t nready = 0;
        for (size_t i = 0; i < npending; i++) {
            pub_t *p = pending[i];
            if (check_change(c, p, ready, nready) != 0 || prepare(c, p, &head) != 0) {
                p->rc = -1;
                continue;
            }
            items[nready] = (store_append_t){.entry = p->v.entry, .hash = p->v.hash, .signer = c->id.pk,
                                             .signed_bytes = p->bytes, .len = p->len,
                                             .handover = c->handover, .handover_ctx = c->handover_ctx};
            ready[nready++] = p;
        }
        npending = 0;
        if (nready == 0)
            return;
        long got = store_catalog_append_many(c->st, items, nready, c->texts[0], sizeof c->texts[0], err, sizeof err);
        if (got < 0) {                              /* the transaction failed: nothing stored */
            fail_all(ready, nready, err);
            for (size_t i = 0; i < nready; i++)
                unprepare(ready[i]);
            return;
        }
        if (got > 0) {
            c->commits++;
            c->published += (uint64_t)got;
            log_debug("catalog: committed %ld entries (%s seq %llu..) in one transaction", got, c->domain,
                      (unsigned long long)ready[0]->v.entry->seq);
        }
        /* The first refused entry fails; the head did not move for it, so the entries signed after
         * it were refused too (gap or chain): they are signed again on the real head. */
        int refused = 0;
        for (size_t i = 0; i < nready; i++) {
            pub_t *p = ready[i];
            int irc = items[i].rc;
            if (irc == 0) {
                p->rc = 0;
                p->seq = p->v.entry->seq;
                p->out = p->bytes;
                p->outlen = p->len;
                p->bytes = NULL;
            } else if (!refused) {
                refused = 1;
                if (irc == -1) {
                    snprintf(p->err, p->errlen, "%s", c->texts[i]);
                    p->err_no = store_last_errno();
                }
                else if (map_append(irc, p->v.entry, c->id.pk, p->err, p->errlen) == CAT_WRONG_KEY)
                    p->wrong_key = 1;   /* a peer's entry bound the domain after the head was read */
                p->rc = -1;
            } else {
                pending[npending++] = p;
            }
            unprepare(p);
        }
    }
}

/* ---------------------------------------------------------------- publish: the queue */

/* Queues ps (in order, one after the other) and returns once every one has its result. The
 * first caller to find no leader becomes it: it takes up to CATALOG_BATCH_MAX queued changes,
 * runs them as one batch outside the lock, hands every caller its own result and wakes them;
 * a caller still queued then leads the next batch. */
static void publish_queued(catalog_t *c, pub_t *ps, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        ps[i].next = NULL;
        *c->tail = &ps[i];
        c->tail = &ps[i].next;
    }
    while (!ps[n - 1].done) {
        if (c->leading) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        pub_t *batch[CATALOG_BATCH_MAX];
        size_t k = 0;
        while (c->queue && k < CATALOG_BATCH_MAX) {
            batch[k++] = c->queue;
            c->queue = c->queue->next;
        }
        if (!c->queue)
            c->tail = &c->queue;
        c->leading = 1;
        pthread_mutex_unlock(&c->mu);
        lead(c, batch, k);
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < k; i++)
            batch[i]->done = 1;
        c->leading = 0;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
}

static _Thread_local int tl_publish_errno, tl_publish_wrong_key;

int catalog_publish_errno(void) { return tl_publish_errno; }

int catalog_publish_wrong_key(void) { return tl_publish_wrong_key; }

int catalog_publish(catalog_t *c, const Trib__Manifest *m, const char *retire_name,
                    uint64_t *seq, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    assert(c && seq);
    char scratch[1];
    pub_t p = {.m = m, .retire = retire_name, .err = err ? err : scratch, .errlen = err ? errlen : sizeof scratch};
    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    publish_queued(c, &p, 1);
    tl_publish_errno = p.rc != 0 ? p.err_no : 0;
    tl_publish_wrong_key = p.rc != 0 && p.wrong_key;
    if (p.rc != 0)
        return -1;
    *seq = p.seq;
    if (out && outlen) {
        *out = p.out;
        *outlen = p.outlen;
    } else {
        free(p.out);
    }
    return 0;
}

int catalog_publish_access(catalog_t *c, const Trib__AccessChange *a, uint64_t *seq, uint8_t **out, size_t *outlen,
                           char *err, size_t errlen)
{
    assert(c && a && seq && out && outlen);
    char scratch[1];
    pub_t p = {.access = a, .err = err ? err : scratch, .errlen = err ? errlen : sizeof scratch};
    *out = NULL;
    *outlen = 0;
    publish_queued(c, &p, 1);
    tl_publish_errno = p.rc != 0 ? p.err_no : 0;
    tl_publish_wrong_key = p.rc != 0 && p.wrong_key;
    if (p.rc != 0)
        return -1;
    *seq = p.seq;
    *out = p.out;
    *outlen = p.outlen;
    return 0;
}

int catalog_publish_revocation(catalog_t *c, const Trib__TokenRevocation *rev, uint64_t *seq, uint8_t **out,
                               size_t *outlen, char *err, size_t errlen)
{
    assert(c && rev && seq && out && outlen);
    char scratch[1];
    pub_t p = {.rev = rev, .err = err ? err : scratch, .errlen = err ? errlen : sizeof scratch};
    *out = NULL;
    *outlen = 0;
    publish_queued(c, &p, 1);
    tl_publish_errno = p.rc != 0 ? p.err_no : 0;
    tl_publish_wrong_key = p.rc != 0 && p.wrong_key;
    if (p.rc != 0)
        return -1;
    *seq = p.seq;
    *out = p.out;
    *outlen = p.outlen;
    return 0;
}

size_t catalog_publish_many(catalog_t *c, catalog_change_t *ch, size_t n)
{
    assert(c && (ch || n == 0));
    size_t failed = 0;
    for (size_t at = 0; at < n; at += CATALOG_BATCH_MAX) {
        size_t k = n - at < CATALOG_BATCH_MAX ? n - at : CATALOG_BATCH_MAX;
        pub_t ps[CATALOG_BATCH_MAX];
        for (size_t i = 0; i < k; i++) {
            catalog_change_t *x = &ch[at + i];
            ps[i] = (pub_t){.m = x->manifest, .retire = x->retire_name, .err = x->err, .errlen = sizeof x->err};
            x->err[0] = '\0';
        }
        publish_queued(c, ps, k);
        for (size_t i = 0; i < k; i++) {
            catalog_change_t *x = &ch[at + i];
            x->rc = ps[i].rc;
            x->seq = ps[i].rc == 0 ? ps[i].seq : 0;
            x->signed_bytes = ps[i].out;
            x->signed_len = ps[i].outlen;
            failed += ps[i].rc != 0;
        }
    }
    return failed;
}

void catalog_stats(catalog_t *c, catalog_stats_t *out)
{
    pthread_mutex_lock(&c->mu);
    out->published = c->published;
    out->commits = c->commits;
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- accept */

/* Whether bytes are a byte-identical copy of an entry this replica holds (err then says so). Such
 * a copy was verified when it was stored, so it is dropped as a duplicate without verifying its
 * signature again: in epidemic push most receptions are such copies. Anything else, a forgery of
 * a held seq included, goes through entry_verify and the store's checks. */
static int held_copy(catalog_t *c, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    entry_t d;
    unsigned char same = 0;
    if (entry_decode(bytes, len, &d, NULL, 0) != 0)
        return 0;
    store_copy_t q = {.domain = d.entry->domain, .seq = d.entry->seq, .bytes = bytes, .len = len};
    if (store_catalog_holds(c->st, &q, 1, &same, NULL, 0) == 0 && same)
        snprintf(err, errlen, "%s seq %llu: already held", q.domain, (unsigned long long)q.seq);
    entry_free(&d);
    return same;
}

/* Access entries a peer sent that their log keeps but the access index ignores (storage/access.h:
 * signed in the wrong log, a replayed id, a second decision): logged at most once per 10 s. */
void catalog_log_ignored_access(uint64_t before)
{
    uint64_t after = 0;
    store_access_counts(NULL, &after);
    if (after <= before)
        return;
    uint64_t n = after - before;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last;
    static uint64_t quiet;
    uint64_t now = clock_ms();   /* monotonic: a clock step neither floods nor silences it */
    pthread_mutex_lock(&mu);
    quiet += n;
    uint64_t say = 0;
    if (!last || now - last >= 10000) {
        say = quiet;
        quiet = 0;
        last = now;
    }
    pthread_mutex_unlock(&mu);
    if (say)
        log_warn("catalog: %llu access entries from peers kept in their logs but ignored by the access index (signed in "
                 "the wrong domain's log, a replayed id or a second decision; trib_access_entries_ignored_total)",
                 (unsigned long long)say);
}

size_t catalog_accept_many(catalog_t *c, const ProtobufCBinaryData *in, size_t n, cat_result_t *res, char *errs,
                           size_t errlen)
{
    assert(c && (n == 0 || (in && res)));
    char scratch[ERR_TEXT];
    entry_t *v = calloc(n ? n : 1, sizeof *v);
    store_append_t *items = calloc(n ? n : 1, sizeof *items);
    size_t *at = calloc(n ? n : 1, sizeof *at);
    char *texts = calloc(n ? n : 1, ERR_TEXT);
    size_t m = 0, accepted = 0;
    if (!v || !items || !at || !texts) {
        for (size_t i = 0; i < n; i++) {
            res[i] = CAT_ERROR;
            if (errs)
                snprintf(errs + i * errlen, errlen, "catalog_accept: out of memory");
        }
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *err = errs ? errs + i * errlen : scratch;
        size_t elen = errs ? errlen : sizeof scratch;
        if (elen)
            err[0] = '\0';
        if (held_copy(c, in[i].data, in[i].len, err, elen)) {
            res[i] = CAT_DUPLICATE;
        } else if (entry_verify(in[i].data, in[i].len, &v[m], err, elen) != 0) {
            res[i] = CAT_BAD_SIGNATURE;
        } else {
            items[m] = (store_append_t){.entry = v[m].entry, .hash = v[m].hash,
                                        .signer = v[m].signed_entry->signer.data,
                                        .signed_bytes = in[i].data, .len = in[i].len,
                                        .handover = c->handover, .handover_ctx = c->handover_ctx};
            at[m++] = i;
        }
    }
    /* store_catalog_append_many checks seq, chain and key inside its own write transaction, so no
     * lock is needed here: a racing publish of our own domain gets STORE_DUP, not a fork. */
    char terr[ERR_TEXT];
    uint64_t ign0 = 0;
    store_access_counts(NULL, &ign0);
    long got = m ? store_catalog_append_many(c->st, items, m, texts, ERR_TEXT, terr, sizeof terr) : 0;
    catalog_log_ignored_access(ign0);
    for (size_t j = 0; j < m; j++) {
        size_t i = at[j];
        char *err = errs ? errs + i * errlen : scratch;
        size_t elen = errs ? errlen : sizeof scratch;
        if (got < 0 || items[j].rc == -1)
            snprintf(err, elen, "%s", got < 0 ? terr : texts + j * ERR_TEXT);
        res[i] = got < 0 ? CAT_ERROR : map_append(items[j].rc, v[j].entry, items[j].signer, err, elen);
        accepted += res[i] == CAT_ACCEPTED;
    }
out:
    for (size_t j = 0; j < m; j++)
        entry_free(&v[j]);
    free(v);
    free(items);
    free(at);
    free(texts);
    return accepted;
}

cat_result_t catalog_accept(catalog_t *c, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    ProtobufCBinaryData in = {.len = len, .data = (uint8_t *)bytes};
    cat_result_t r;
    char text[ERR_TEXT];
    catalog_accept_many(c, &in, 1, &r, text, sizeof text);
    if (err && errlen)
        snprintf(err, errlen, "%s", text);
    return r;
}
