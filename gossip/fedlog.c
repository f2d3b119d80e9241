/* gossip/fedlog.c - the federation log (see gossip/fedlog.h).
 *
 * Owns: the held set (hashes sorted, with per-bucket counts and XORs for the summary), verifying
 * offers by kind (offer_one: the one dispatch, where policy sets go to the policy hook), the
 * persisted objects (storage/fedlog.h) as far as loading and settling them go (the commit itself,
 * and the pending set until then, are gossip/fedlog_commit.c's: see fedlog.h, Durability), the
 * push queue (revocations at its head), the FedSync exchange and the counters. Answers of the
 * exchange (buckets, hashes, objects) go only while the asker has budget (io.answer_ok) and are
 * charged to it (io.answered): a want of held hashes, sent again and again, costs a bounded rate.
 * Must not: send while holding the lock, trust an object it did not verify, include node/, or
 * commit (fsync) on the loop when attached with own_thread. */
#include "gossip/fedlog_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/log.h"
#include "proto/tributary.pb-c.h"

#define SYNC_MAX_HASHES 16384     /* hashes in one HASHES or WANT message */
#define SYNC_MAX_FRAMES 4         /* OBJECTS frames in one answer; the rest next round */
#define SYNC_MAX_OBJECTS 1024     /* objects in one received PUSH or OBJECTS message */
#define PUSH_QUEUE_MAX 4096       /* queued pushes; more are left to anti-entropy */
#define PUSH_PEERS_MAX 256
#define BUCKET_BYTES 12           /* count (4, BE) + the first 8 bytes of the bucket's XOR */
#define SYNC_SMALL 64             /* a summary that differs from a set of at most this many is answered
                                     with the set's hashes (2.2 KiB at most), not its buckets (3 KiB) */


const char *fedlog_reason_name(int reason)
{
    if (reason >= 0 && reason < TRUST_VERDICT_COUNT)
        return trust_verdict_name((trust_verdict_t)reason);
    switch (reason) {
    case FEDLOG_R_OPEN_MODE:    return "open_mode";
    case FEDLOG_R_FULL:         return "full";
    case FEDLOG_R_UNKNOWN_KIND: return "unknown_kind";
    case FEDLOG_R_POLICY:       return "policy_refused";
    case FEDLOG_R_STORAGE:      return "storage";
    case FEDLOG_R_BUSY:         return "busy";
    case FEDLOG_R_NO_SPACE:     return "no_space";
    case FEDLOG_R_KIND_MISMATCH: return "kind_mismatch";
    case FEDLOG_R_TOO_LARGE:    return "too_large";
    }
    return "unknown";
}

static const char *kind_label(int kind)
{
    return kind >= 1 && kind < FEDLOG_KINDS ? trust_kind_name((trust_kind_t)kind) : "unknown";
}

/* ---------------------------------------------------------------- the held set */

static int held_cmp(const void *a, const void *b)
{
    return memcmp(a, b, TRUST_HASH_LEN);
}

static held_t *held_find(const fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    return f->n ? bsearch(hash, f->held, f->n, sizeof *f->held, held_cmp) : NULL;
}

static void xor_into(uint8_t dst[TRUST_HASH_LEN], const uint8_t src[TRUST_HASH_LEN])
{
    for (int i = 0; i < TRUST_HASH_LEN; i++)
        dst[i] ^= src[i];
}

/* Adds hash (not held) to the set. 0 or -1 (OOM). */
static int held_add(fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN], int kind, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        held_t *p = realloc(f->held, cap * sizeof *p);
        if (!p)
            return -1;
        f->held = p;
        f->cap = cap;
    }
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (memcmp(f->held[mid].hash, hash, TRUST_HASH_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&f->held[lo + 1], &f->held[lo], (f->n - lo) * sizeof *f->held);
    memcpy(f->held[lo].hash, hash, TRUST_HASH_LEN);
    f->held[lo].kind = (uint8_t)kind;
    f->n++;
    f->bytes += len;
    f->nkind[kind >= 0 && kind < FEDLOG_KINDS ? kind : 0]++;
    xor_into(f->xor_all, hash);
    f->bcount[hash[0]]++;
    xor_into(f->bxor[hash[0]], hash);
    return 0;
}

static int refused_recently(const fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    for (size_t i = 0; i < f->nrefused; i++)
        if (!memcmp(f->refused[i], hash, TRUST_HASH_LEN))
            return 1;
    return 0;
}

static void note_refused(fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    if (refused_recently(f, hash))
        return;
    memcpy(f->refused[f->refused_at], hash, TRUST_HASH_LEN);
    f->refused_at = (f->refused_at + 1) % REFUSED_RING;
    if (f->nrefused < REFUSED_RING)
        f->nrefused++;
}

static int in_chain(const fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    for (size_t i = 0; i < f->nchain; i++)
        if (!memcmp(f->chain[i], hash, TRUST_HASH_LEN))
            return 1;
    return 0;
}

/* Records the prev_hash of a charter body (held now), so its ancestors are known as history. */
static void chain_note(fedlog_t *f, const uint8_t *body, size_t len)
{
    Trib__Charter *c = trib__charter__unpack(NULL, len, body);
    if (c && c->prev_hash.len == TRUST_HASH_LEN && f->nchain < FEDLOG_MAX_CHARTERS &&
        !in_chain(f, c->prev_hash.data))
        memcpy(f->chain[f->nchain++], c->prev_hash.data, TRUST_HASH_LEN);
    if (c)
        trib__charter__free_unpacked(c, NULL);
}

/* ---------------------------------------------------------------- offers */

static void refuse_log(fedlog_t *f, const fedlog_result_t *r, const char *from)
{
    int why = r->reason;
    uint64_t held;
    char tail[96];
    if (log_limit(&f->refuse_log[why], 1000, &held))
        log_warn("fedlog: refused a %s from %s: %s: %s%s", kind_label(r->kind), from ? from : "an operator",
                 fedlog_reason_name(why), r->err, log_held(tail, sizeof tail, held, "refusals of this reason"));
}

static int refuse(fedlog_t *f, fedlog_result_t *r, int reason, const char *from)
{
    r->reason = reason;
    f->refusals[r->kind >= 0 && r->kind < FEDLOG_KINDS ? r->kind : 0][reason]++;
    /* gaps and thresholds may heal once a charter arrives; a failed commit is not the object's
     * fault: anti-entropy brings it again, and its commit is tried again */
    if (from && reason != TRUST_VERSION_GAP && reason != TRUST_BELOW_THRESHOLD && reason != FEDLOG_R_STORAGE &&
        reason != FEDLOG_R_NO_SPACE)
        note_refused(f, r->hash);
    refuse_log(f, r, from);
    return -1;
}

/* The one dispatch by kind: verifies bytes with their verifier (the trust store for charters,
 * certificates, revocations and hand-overs; the policy hook for policy sets). TRUST_OK when held
 * there; with dry (an operator's object, put in force only once it is stored: fedlog__settle),
 * when it would be, the trust store unchanged. */
static int verify_kind(fedlog_t *f, int kind, const uint8_t *b, size_t n, const char *from, int dry,
                       fedlog_result_t *r)
{
    int added = 0;
    if (dry && kind != TRUST_KIND_POLICY && kind >= 1 && kind < FEDLOG_KINDS)
        return trust_check(f->t, (trust_kind_t)kind, b, n, r->err, sizeof r->err);
    switch (kind) {
    case TRUST_KIND_CHARTER: {
        trust_verdict_t v = trust_offer_charter(f->t, b, n, &added, r->err, sizeof r->err);
        if (v == TRUST_STALE_VERSION && from && in_chain(f, r->hash))
            v = TRUST_OK;           /* an ancestor of the held charter: history, named by hash */
        return v;
    }
    case TRUST_KIND_CERT:
        return trust_offer_cert(f->t, b, n, &added, r->err, sizeof r->err);
    case TRUST_KIND_REVOKE:
        return trust_offer_revocation(f->t, b, n, &added, r->err, sizeof r->err);
    case TRUST_KIND_POLICY:
        if (f->policy)
            return f->policy(f->policy_ctx, b, n, 0, r->err, sizeof r->err) == 0 ? TRUST_OK : FEDLOG_R_POLICY;
        /* nothing here can check its signatures: never held unverified */
        snprintf(r->err, sizeof r->err, "a policy set, and no policy store on this node to verify it");
        return FEDLOG_R_POLICY;
    case TRUST_KIND_ROTATE:    /* a key hand-over: by the old key, certified for the domain when it signed */
        return trust_offer_rotation(f->t, b, n, &added, r->err, sizeof r->err);
    }
    snprintf(r->err, sizeof r->err, "signed object of unknown kind %d", kind);
    return FEDLOG_R_UNKNOWN_KIND;
}

/* 1 when b is exactly the signed bytes held under hash (pending p, else stored): verified then. */
static int same_bytes(fedlog_t *f, const citem_t *p, const uint8_t hash[TRUST_HASH_LEN], const uint8_t *b, size_t n)
{
    if (p)
        return p->st.len == n && memcmp(p->st.bytes, b, n) == 0;
    uint8_t *stored = NULL;
    size_t len = 0;
    int kind, same = f->st && store_fedlog_get(f->st, hash, &kind, &stored, &len) == 0 && len == n &&
                     memcmp(stored, b, n) == 0;
    free(stored);
    return same;
}

/* Verifies one object under the lock. 0 held (r->added: new, to be committed by the caller;
 * an object pending its commit counts as held), -1 refused (counted). A peer's object (from
 * non-NULL) is in force from now on; an operator's only once its commit is done (fedlog__settle):
 * what this node enforces of its operators' is what it stored. */
static int offer_one(fedlog_t *f, const uint8_t *b, size_t n, const char *from, fedlog_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (!b || n == 0 || n > TRUST_MAX_BYTES) {
        snprintf(r->err, sizeof r->err, "signed object of %zu bytes (1 to %u)", n, TRUST_MAX_BYTES);
        return refuse(f, r, TRUST_MALFORMED, from);
    }
    Trib__TrustSigned *env = trib__trust_signed__unpack(NULL, n, b);
    if (!env || env->body.len == 0) {
        snprintf(r->err, sizeof r->err, "not a signed trust object (protobuf TrustSigned with a body)");
        if (env)
            trib__trust_signed__free_unpacked(env, NULL);
        return refuse(f, r, TRUST_MALFORMED, from);
    }
    r->kind = env->kind >= 1 && env->kind < FEDLOG_KINDS ? (int)env->kind : 0;
    crypto_generichash(r->hash, TRUST_HASH_LEN, env->body.data, env->body.len, NULL, 0);
    uint8_t *charter_body = NULL;
    size_t charter_len = 0;
    if (r->kind == TRUST_KIND_CHARTER && (charter_body = malloc(env->body.len)) != NULL) {
        memcpy(charter_body, env->body.data, env->body.len);
        charter_len = env->body.len;
    }
    trib__trust_signed__free_unpacked(env, NULL);
    const held_t *h = held_find(f, r->hash);
    const citem_t *p = h ? NULL : fedlog__pending_find(f, r->hash);
    int held = (h && h->kind == r->kind) || (p && p->st.kind == r->kind);   /* the same body, kind (tag) */
    /* held: a peer's resend ends here (nothing is stored or sent on for it, and nobody is answered);
     * an operator's is answered "held" only when its signatures are good: as the stored bytes, or
     * verified below as a new object's would be (a tampered resend is refused like any forgery) */
    if (held && (from || same_bytes(f, p, r->hash, b, n))) {
        free(charter_body);
        return 0;
    }
    if (r->kind == 0) {
        free(charter_body);
        snprintf(r->err, sizeof r->err, "signed object of unknown kind");
        return refuse(f, r, FEDLOG_R_UNKNOWN_KIND, from);
    }
    if (r->kind != TRUST_KIND_POLICY && !f->t) {
        free(charter_body);
        snprintf(r->err, sizeof r->err, "this node runs in open mode (no --charter): it holds no %s",
                 trust_kind_name((trust_kind_t)r->kind));
        return refuse(f, r, FEDLOG_R_OPEN_MODE, from);
    }
    if (!held && (f->n + f->npending >= FEDLOG_MAX_OBJECTS || f->bytes + f->pending_bytes + n > FEDLOG_MAX_BYTES ||
        (r->kind == TRUST_KIND_CHARTER && f->nkind[TRUST_KIND_CHARTER] >= FEDLOG_MAX_CHARTERS))) {
        free(charter_body);
        snprintf(r->err, sizeof r->err, "the federation log is full (%zu objects, %" PRIu64 " bytes)", f->n,
                 f->bytes);
        return refuse(f, r, FEDLOG_R_FULL, from);
    }
    int v = verify_kind(f, r->kind, b, n, from, from == NULL, r);
    if (v != TRUST_OK) {
        free(charter_body);
        return refuse(f, r, v, from);
    }
    if (charter_body && from)     /* an operator's: once in force */
        chain_note(f, charter_body, charter_len);
    free(charter_body);
    r->added = !h && !p;             /* a body held under another kind is never stored twice */
    return 0;
}

/* Enqueues a push of a new object (revocations at the head). */
static void push_queue(fedlog_t *f, int kind, const uint8_t *b, size_t n, const char *from)
{
    if (f->qlen >= PUSH_QUEUE_MAX) {
        f->push_dropped++;
        return;
    }
    push_t *p = malloc(sizeof *p + n);
    if (!p) {
        f->push_dropped++;
        return;
    }
    p->next = NULL;
    snprintf(p->from, sizeof p->from, "%s", from ? from : "");
    p->len = n;
    memcpy(p->data, b, n);
    if (kind == TRUST_KIND_REVOKE) {
        p->next = f->qhead;
        f->qhead = p;
        if (!f->qtail)
            f->qtail = p;
    } else {
        if (f->qtail)
            f->qtail->next = p;
        else
            f->qhead = p;
        f->qtail = p;
    }
    f->qlen++;
}

typedef struct {
    const uint8_t *b;
    size_t n;
    fedlog_result_t r;
    int ok;
} batch_t;

static int charter_version(const uint8_t *b, size_t n)
{
    Trib__TrustSigned *env = trib__trust_signed__unpack(NULL, n, b);
    Trib__Charter *c = env ? trib__charter__unpack(NULL, env->body.len, env->body.data) : NULL;
    int v = c ? (int)(c->version > 1000000 ? 1000000 : c->version) : 0;
    if (c)
        trib__charter__free_unpacked(c, NULL);
    if (env)
        trib__trust_signed__free_unpacked(env, NULL);
    return v;
}

/* The kind as an ordering hint only (offer_one decodes properly): protobuf-c writes field 1
 * (kind, a varint < 128) first, as tag byte 0x08 and one byte; anything else sorts last. */
static int envelope_kind(const uint8_t *b, size_t n)
{
    return n >= 2 && b[0] == 0x08 && b[1] < FEDLOG_KINDS ? b[1] : 0;
}

typedef struct {
    size_t i;
    int order;
} ord_t;

static int ord_cmp(const void *a, const void *b)
{
    const ord_t *x = a, *y = b;
    return x->order != y->order ? (x->order < y->order ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

/* Step 1, under the lock: offers the objects (charters first by version, then certificates,
 * revocations, policy sets, so one frame may carry a charter update and what it signs). When
 * forward, the new ones are pushed on to every alive member: a peer's at once (queued here), as
 * it is verified and in force here, before its durable commit, which is then not on the path
 * from node to node (an fsync per hop; the object is in the federation already: its sender holds
 * it); an operator's once it is stored (fedlog__settle), so an object whose commit fails, and
 * which the operator is told was refused, never reaches a peer. The new ones are pending (held
 * for offers, not in the set) until step 2 commits them.
 * Returns their job (results pointing at items), or NULL when there is none or out of memory
 * (then nothing was offered). */
static cjob_t *offer_verify(fedlog_t *f, batch_t *items, size_t n, const char *from, int forward)
{
    ord_t *ord = malloc((n ? n : 1) * sizeof *ord);
    cjob_t *j = calloc(1, sizeof *j + (n ? n : 1) * sizeof *j->items);
    if (!ord || !j) {
        free(ord);
        free(j);
        return NULL;
    }
    snprintf(j->from, sizeof j->from, "%s", from ? from : "");
    j->from_op = from == NULL;
    j->push_durable = forward && !from;
    for (size_t i = 0; i < n; i++) {
        int k = envelope_kind(items[i].b, items[i].n);
        ord[i].i = i;
        ord[i].order = k == TRUST_KIND_CHARTER ? charter_version(items[i].b, items[i].n)
                                               : 2000000 + (k >= 1 && k < FEDLOG_KINDS ? k : FEDLOG_KINDS);
    }
    qsort(ord, n, sizeof *ord, ord_cmp);
    for (size_t o = 0; o < n; o++) {
        batch_t *it = &items[ord[o].i];
        it->ok = offer_one(f, it->b, it->n, from, &it->r) == 0;
        if (!it->ok || !it->r.added)
            continue;
        citem_t *c = &j->items[j->n];
        uint8_t *copy = malloc(it->n);
        if (!copy) {
            it->ok = 0;
            snprintf(it->r.err, sizeof it->r.err, "out of memory");
            refuse(f, &it->r, FEDLOG_R_STORAGE, from);
            continue;
        }
        memcpy(copy, it->b, it->n);
        memcpy(c->st.hash, it->r.hash, TRUST_HASH_LEN);
        c->st.kind = it->r.kind;
        c->st.bytes = copy;
        c->st.len = it->n;
        c->r = &it->r;
        c->ok = &it->ok;
        fedlog__pending_add(f, c);        /* the same object again (in this frame too) is held from now on */
        j->n++;
        if (forward && from)
            push_queue(f, it->r.kind, it->b, it->n, from);
    }
    free(ord);
    if (j->n == 0) {
        free(j);
        return NULL;
    }
    return j;
}

void fedlog__req_done(fedlog_t *f, req_t *q)
{
    q->done = 1;
    if (q->abandoned)
        free(q);
    pthread_cond_broadcast(&f->rcv);
}

/* The charter in bytes (a TrustSigned), held now: chain_note of its body. */
static void chain_note_signed(fedlog_t *f, const uint8_t *b, size_t n)
{
    Trib__TrustSigned *env = trib__trust_signed__unpack(NULL, n, b);
    if (env && env->body.len)
        chain_note(f, env->body.data, env->body.len);
    if (env)
        trib__trust_signed__free_unpacked(env, NULL);
}

int fedlog__settle(fedlog_t *f, const char *from, citem_t *c, int push, int why, const char *err)
{
    fedlog_result_t local = {.kind = c->st.kind, .added = 1}, *r = c->r ? c->r : &local;
    memcpy(local.hash, c->st.hash, TRUST_HASH_LEN);
    if (why) {
        snprintf(r->err, sizeof r->err, "%s", err);
        refuse(f, r, why, from);
        if (c->ok)
            *c->ok = 0;
        return 0;
    }
    /* An operator's object goes in force now that it is stored (offer_one only checked it). The
     * store may have changed meanwhile (a peer's charter update came first): then it stays stored
     * and not in force, as a restart would find it, and the operator is told why. */
    int late = TRUST_OK;
    char why_late[200] = "";
    if (!from && c->st.kind != TRUST_KIND_POLICY) {
        fedlog_result_t v = local;
        late = verify_kind(f, c->st.kind, c->st.bytes, c->st.len, NULL, 0, &v);
        if (late == TRUST_OK && c->st.kind == TRUST_KIND_CHARTER)
            chain_note_signed(f, c->st.bytes, c->st.len);
        snprintf(why_late, sizeof why_late, "%.190s", v.err);
    }
    if (push && late == TRUST_OK)  /* stored: an operator's object goes out now */
        push_queue(f, c->st.kind, c->st.bytes, c->st.len, from);
    if (held_find(f, c->st.hash) || held_add(f, c->st.hash, c->st.kind, c->st.len) != 0)
        return push && late == TRUST_OK;
    if (late != TRUST_OK) {
        snprintf(r->err, sizeof r->err, "stored, but not in force: %s (the federation's trust state changed while "
                 "it was being stored)", why_late);
        refuse(f, r, late, from);
        if (c->ok)
            *c->ok = 0;
        return 0;
    }
    f->accepted[c->st.kind]++;
    f->commit_objects++;
    char hex[2 * TRUST_HASH_LEN + 1];
    trust_hex(c->st.hash, TRUST_HASH_LEN, hex);
    /* every revocation and charter, and what operators hand in, at info; the bulk of a bootstrap
     * (certificates and the rest from peers) at debug */
    int loud = !from || c->st.kind == TRUST_KIND_REVOKE || c->st.kind == TRUST_KIND_CHARTER;
    log_msg(loud ? LOG_INFO : LOG_DEBUG, "fedlog: accepted %s %.16s from %s", kind_label(c->st.kind), hex,
            from ? from : "an operator");
    return push;
}

/* Both steps (no send between them), the commit on the caller or the worker. Not under the lock. */
static void offer_items(fedlog_t *f, batch_t *items, size_t n, const char *from, int forward)
{
    pthread_mutex_lock(&f->mu);
    cjob_t *j = offer_verify(f, items, n, from, forward);
    pthread_mutex_unlock(&f->mu);
    fedlog__commit_or_queue(f, j, NULL);
}

#define OFFER_WAIT_S 10           /* an operator's offer waits this long for the loop */

/* Runs the queued operators' offers here (the loop stopped; the worker too). */
static void run_requests(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->rhead) {
        req_t *q = f->rhead;
        f->rhead = q->next;
        if (!f->rhead)
            f->rtail = NULL;
        pthread_mutex_unlock(&f->mu);
        batch_t it = {.b = q->data, .n = q->n};
        offer_items(f, &it, 1, NULL, 1);
        pthread_mutex_lock(&f->mu);
        q->r = it.r;
        q->ok = it.ok;
        fedlog__req_done(f, q);
    }
    pthread_mutex_unlock(&f->mu);
}

/* With a loop that owns the trust store (io.own_thread), an offer from another thread is queued
 * for it and waited for (verified there, committed by the worker), so the trust store changes on
 * the loop only (gossip/trust.h) and the answer comes once the object is durable. */
static int offer_via_loop(fedlog_t *f, const uint8_t *bytes, size_t len, fedlog_result_t *res)
{
    req_t *q = calloc(1, sizeof *q + len);
    if (!q) {
        memset(res, 0, sizeof *res);
        snprintf(res->err, sizeof res->err, "out of memory");
        res->reason = FEDLOG_R_STORAGE;
        return -1;
    }
    q->n = len;
    memcpy(q->data, bytes, len);
    pthread_mutex_lock(&f->mu);
    if (f->rtail)
        f->rtail->next = q;
    else
        f->rhead = q;
    f->rtail = q;
    fedlog_io_t io = f->io;
    pthread_mutex_unlock(&f->mu);
    io.wake(io.ctx);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += OFFER_WAIT_S;
    pthread_mutex_lock(&f->mu);
    while (!q->done && pthread_cond_timedwait(&f->rcv, &f->mu, &dl) == 0)
        ;
    int done = q->done, ok = q->ok;
    if (done)
        *res = q->r;
    else
        q->abandoned = 1;       /* still queued: whoever completes it frees it */
    pthread_mutex_unlock(&f->mu);
    if (done) {
        free(q);
        return ok ? 0 : -1;
    }
    memset(res, 0, sizeof *res);
    res->reason = FEDLOG_R_BUSY;
    snprintf(res->err, sizeof res->err, "the node's gossip loop did not take the object within %d s; it may "
             "still be taken (check GET /v1/federation)", OFFER_WAIT_S);
    return -1;
}

int fedlog_offer(fedlog_t *f, const uint8_t *bytes, size_t len, const char *from, fedlog_result_t *res)
{
    pthread_mutex_lock(&f->mu);
    int via_loop = !from && f->attached && f->io.own_thread;
    pthread_mutex_unlock(&f->mu);
    if (via_loop)
        return offer_via_loop(f, bytes, len, res);
    batch_t it = {.b = bytes, .n = len};
    offer_items(f, &it, 1, from, from == NULL);
    pthread_mutex_lock(&f->mu);
    int wake = f->qlen && f->attached;
    fedlog_io_t io = f->io;
    pthread_mutex_unlock(&f->mu);
    if (wake && io.wake)
        io.wake(io.ctx);
    *res = it.r;
    return it.ok ? 0 : -1;
}
void fedlog_refuse_file(fedlog_t *f, int kind, int reason, const char *err)
{
    fedlog_result_t r = {.kind = kind >= 1 && kind < FEDLOG_KINDS ? kind : 0};
    snprintf(r.err, sizeof r.err, "%s", err);
    pthread_mutex_lock(&f->mu);
    refuse(f, &r, reason > 0 && reason < FEDLOG_R_COUNT ? reason : TRUST_MALFORMED, NULL);
    pthread_mutex_unlock(&f->mu);
}

void fedlog_offer_peers(fedlog_t *f, const uint8_t *const *bytes, const size_t *lens, size_t n, const char *from)
{
    batch_t *items = malloc((n ? n : 1) * sizeof *items);
    if (!items)
        return;                 /* out of memory: not stored now; anti-entropy or the next hello brings them */
    for (size_t i = 0; i < n; i++)
        items[i] = (batch_t){.b = bytes[i], .n = lens[i]};
    offer_items(f, items, n, from ? from : "peers", 0);
    free(items);
}
/* ---------------------------------------------------------------- lifecycle */

typedef struct {
    batch_t *items;
    uint8_t **copies;
    size_t n, cap;
    uint64_t bytes;
} load_t;

static int load_one(void *ctx, const uint8_t hash[STORE_HASH_LEN], int kind, const uint8_t *bytes, size_t len)
{
    (void)hash, (void)kind;
    load_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        batch_t *p = realloc(l->items, cap * sizeof *p);
        uint8_t **c = p ? realloc(l->copies, cap * sizeof *c) : NULL;
        if (p)
            l->items = p;
        if (!c)
            return 1;
        l->copies = c;
        l->cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return 1;
    memcpy(copy, bytes, len);
    l->copies[l->n] = copy;
    l->items[l->n] = (batch_t){.b = copy, .n = len};
    l->n++;
    return 0;
}

fedlog_t *fedlog_new(store_t *st, trust_t *t, char *err, size_t errlen)
{
    fedlog_t *f = calloc(1, sizeof *f);
    if (!f || sodium_init() < 0) {
        free(f);
        snprintf(err, errlen, "fedlog: out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->rcv, NULL);
    pthread_cond_init(&f->wcv, NULL);
    f->st = st;
    f->t = t;
    if (t) {
        const charter_t *ch = trust_charter(t);
        static const uint8_t zero[TRUST_HASH_LEN];
        if (memcmp(ch->prev_hash, zero, TRUST_HASH_LEN) != 0)
            memcpy(f->chain[f->nchain++], ch->prev_hash, TRUST_HASH_LEN);
    }
    load_t l = {0};
    if (store_fedlog_each(st, load_one, &l) != 0) {
        snprintf(err, errlen, "fedlog: reading the stored objects failed: %s", store_last_error());
        for (size_t i = 0; i < l.n; i++)
            free(l.copies[i]);
        free(l.items);
        free(l.copies);
        fedlog_destroy(&f);
        return NULL;
    }
    /* Stored objects were verified when stored: they stay in the set (peers hold them too) and are
     * offered to the trust store again, in dependency order; a refusal now is logged, not fatal. */
    ord_t *ord = malloc((l.n ? l.n : 1) * sizeof *ord);
    size_t refused = 0;
    for (size_t i = 0; ord && i < l.n; i++) {
        int k = envelope_kind(l.items[i].b, l.items[i].n);
        ord[i].i = i;
        ord[i].order = k == TRUST_KIND_CHARTER ? charter_version(l.items[i].b, l.items[i].n) : 2000000 + k;
    }
    if (ord)
        qsort(ord, l.n, sizeof *ord, ord_cmp);
    for (size_t j = 0; ord && j < l.n; j++) {
        batch_t *it = &l.items[ord[j].i];
        fedlog_result_t r;
        if (offer_one(f, it->b, it->n, "storage", &r) != 0)
            refused++;
        if (held_add(f, r.hash, r.kind, it->n) != 0)
            break;
    }
    memset(f->refusals, 0, sizeof f->refusals);   /* the counters count what peers and operators send */
    f->nrefused = 0;
    if (l.n)
        log_info("fedlog: %zu stored object(s) loaded%s%zu not accepted by the trust store held now)",
                 l.n, refused ? " (" : " (", refused);
    for (size_t i = 0; i < l.n; i++)
        free(l.copies[i]);
    free(l.items);
    free(l.copies);
    free(ord);
    return f;
}

void fedlog_destroy(fedlog_t **fp)
{
    if (!fp || !*fp)
        return;
    fedlog_t *f = *fp;
    fedlog__worker_stop(f);             /* commits what it holds */
    for (push_t *p = f->qhead, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    for (req_t *q = f->rhead, *next; q; q = next) {   /* only abandoned ones can be left */
        next = q->next;
        free(q);
    }
    free(f->held);
    pthread_cond_destroy(&f->wcv);
    pthread_cond_destroy(&f->rcv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    *fp = NULL;
}

void fedlog_set_policy_offer(fedlog_t *f, fedlog_policy_fn fn, void *ctx)
{
    pthread_mutex_lock(&f->mu);
    f->policy = fn;
    f->policy_ctx = ctx;
    pthread_mutex_unlock(&f->mu);
}

void fedlog_summary(fedlog_t *f, uint32_t *count, uint8_t hash[TRUST_HASH_LEN])
{
    pthread_mutex_lock(&f->mu);
    *count = (uint32_t)f->n;
    memcpy(hash, f->xor_all, TRUST_HASH_LEN);
    pthread_mutex_unlock(&f->mu);
}

int fedlog_has(fedlog_t *f, const uint8_t hash[TRUST_HASH_LEN])
{
    pthread_mutex_lock(&f->mu);
    int has = held_find(f, hash) != NULL;
    pthread_mutex_unlock(&f->mu);
    return has;
}

void fedlog_lock(fedlog_t *f) { pthread_mutex_lock(&f->mu); }
void fedlog_unlock(fedlog_t *f) { pthread_mutex_unlock(&f->mu); }
trust_t *fedlog_trust(fedlog_t *f) { return f->t; }

/* ---------------------------------------------------------------- the loop: pushes */

void fedlog_attach(fedlog_t *f, const fedlog_io_t *io)
{
    if (!io) {                  /* the loop stops: commits and what it did not take are done here */
        pthread_mutex_lock(&f->mu);
        f->attached = 0;
        memset(&f->io, 0, sizeof f->io);
        pthread_mutex_unlock(&f->mu);
        fedlog__worker_stop(f);
        run_requests(f);
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->attached = 1;
    f->io = *io;
    if (io->own_thread)
        fedlog__worker_start(f);
    else
        f->async = f->wstarted;
    pthread_mutex_unlock(&f->mu);
}

/* Packs and sends m; returns its length (0: out of memory, not sent). */
static size_t send_msg(const fedlog_io_t *io, const char *to, int type, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    protobuf_c_message_pack(m, buf);
    io->send(io->ctx, to, type, buf, len);
    free(buf);
    return len;
}

/* Sends the queued pushes to every peer (but an object's sender). Not under the lock. */
static void send_pushes(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    if (!f->attached || !f->qhead) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    push_t *q = f->qhead;
    f->qhead = f->qtail = NULL;
    f->qlen = 0;
    fedlog_io_t io = f->io;
    pthread_mutex_unlock(&f->mu);
    const char *peers[PUSH_PEERS_MAX];
    size_t np = io.peers(io.ctx, peers, PUSH_PEERS_MAX);
    uint64_t pushed = 0;
    for (push_t *p = q, *next; p; p = next) {
        next = p->next;
        ProtobufCBinaryData item = {p->len, p->data};
        Trib__FedObjects msg = TRIB__FED_OBJECTS__INIT;
        msg.n_objects = 1;
        msg.objects = &item;
        for (size_t i = 0; i < np; i++)
            if (strcmp(peers[i], p->from) != 0) {
                send_msg(&io, peers[i], TRIB__MSG_TYPE__MSG_FED_PUSH, &msg.base);
                pushed++;
            }
        free(p);
    }
    pthread_mutex_lock(&f->mu);
    f->pushed += pushed;
    pthread_mutex_unlock(&f->mu);
}

/* Verifies items pushed by peer `from` and pushes the new ones on at once, before they are
 * committed (offer_verify says why). Returns their job, not committed yet. */
static cjob_t *offer_and_push(fedlog_t *f, batch_t *items, size_t n, const char *from)
{
    pthread_mutex_lock(&f->mu);
    cjob_t *j = offer_verify(f, items, n, from, 1);
    pthread_mutex_unlock(&f->mu);
    send_pushes(f);
    return j;
}

void fedlog_tick(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->rhead) {          /* operators' offers, one at a time: verified, committed, pushed */
        req_t *q = f->rhead;
        f->rhead = q->next;
        if (!f->rhead)
            f->rtail = NULL;
        batch_t it = {.b = q->data, .n = q->n};
        cjob_t *j = offer_verify(f, &it, 1, NULL, 1);   /* pushed once stored */
        q->r = it.r;
        q->ok = it.ok;
        pthread_mutex_unlock(&f->mu);
        int queued = fedlog__commit_or_queue(f, j, q);   /* the operator hears once it is durable */
        pthread_mutex_lock(&f->mu);
        if (!queued) {
            q->r = it.r;
            q->ok = it.ok;
            fedlog__req_done(f, q);
        }
    }
    pthread_mutex_unlock(&f->mu);
    send_pushes(f);
}

/* ---------------------------------------------------------------- the loop: anti-entropy */

/* Sends m; returns its length (0: not sent). */
static size_t send_sync(fedlog_t *f, const fedlog_io_t *io, const char *to, Trib__FedSync *m)
{
    size_t len = send_msg(io, to, TRIB__MSG_TYPE__MSG_FED_SYNC, &m->base);
    pthread_mutex_lock(&f->mu);
    if (m->step < STEP_COUNT)
        f->sync_out[m->step]++;
    pthread_mutex_unlock(&f->mu);
    return len;
}

/* An answer of hashes or objects to `to`: may it go (io->answer_ok)? */
static int answer_ok(const fedlog_io_t *io, const char *to)
{
    return !io->answer_ok || io->answer_ok(io->ctx, to);
}

/* Sends m as (part of) an answer to `to`, charged to its budget. */
static void send_answer(fedlog_t *f, const fedlog_io_t *io, const char *to, Trib__FedSync *m)
{
    size_t len = send_sync(f, io, to, m);
    if (io->answered)
        io->answered(io->ctx, to, len);
}

/* The summary step: what we hold, as count and XOR. 0, or -1 when not attached. */
static int sync_summary(fedlog_t *f, Trib__FedSync *m, uint8_t hash[TRUST_HASH_LEN], fedlog_io_t *io)
{
    pthread_mutex_lock(&f->mu);
    int attached = f->attached;
    *io = f->io;
    m->count = (uint32_t)f->n;
    memcpy(hash, f->xor_all, TRUST_HASH_LEN);
    pthread_mutex_unlock(&f->mu);
    m->step = STEP_SUMMARY;
    m->hash = (ProtobufCBinaryData){TRUST_HASH_LEN, hash};
    return attached ? 0 : -1;
}

void fedlog_sync(fedlog_t *f, const char *peer)
{
    Trib__FedSync m = TRIB__FED_SYNC__INIT;
    uint8_t hash[TRUST_HASH_LEN];
    fedlog_io_t io;
    if (sync_summary(f, &m, hash, &io) == 0)
        send_sync(f, &io, peer, &m);
}

size_t fedlog_sync_opener(fedlog_t *f, uint8_t *buf, size_t cap)
{
    Trib__FedSync m = TRIB__FED_SYNC__INIT;
    uint8_t hash[TRUST_HASH_LEN];
    fedlog_io_t io;
    if (sync_summary(f, &m, hash, &io) != 0 || trib__fed_sync__get_packed_size(&m) > cap)
        return 0;
    size_t len = trib__fed_sync__pack(&m, buf);
    pthread_mutex_lock(&f->mu);
    f->sync_out[STEP_SUMMARY]++;
    pthread_mutex_unlock(&f->mu);
    return len;
}

/* Sends the objects named by hashes (held here) to peer, in frames under io->max_frame, at most
 * SYNC_MAX_FRAMES frames, while the peer has budget (io->answer_ok). Not under the lock (reads LMDB). */
static void send_objects(fedlog_t *f, const fedlog_io_t *io, const char *to, uint8_t (*hashes)[TRUST_HASH_LEN],
                         size_t n)
{
    size_t frame = io->max_frame ? io->max_frame : (1u << 20), frames = 0;
    if (!answer_ok(io, to))
        return;
    ProtobufCBinaryData *items = malloc((n ? n : 1) * sizeof *items);
    if (!items)
        return;
    size_t k = 0, bytes = 0;
    for (size_t i = 0; i <= n && frames < SYNC_MAX_FRAMES; i++) {
        uint8_t *b = NULL;
        size_t len = 0;
        int kind;
        if (i < n && store_fedlog_get(f->st, hashes[i], &kind, &b, &len) != 0)
            continue;
        if (k && (i == n || bytes + len + 16 > frame)) {
            Trib__FedSync m = TRIB__FED_SYNC__INIT;
            m.step = STEP_OBJECTS;
            m.n_objects = k;
            m.objects = items;
            send_answer(f, io, to, &m);
            frames++;
            for (size_t j = 0; j < k; j++)
                free(items[j].data);
            k = bytes = 0;
        }
        if (i == n || frames >= SYNC_MAX_FRAMES) {
            free(b);
            break;
        }
        items[k++] = (ProtobufCBinaryData){len, b};
        bytes += len + 16;
    }
    for (size_t j = 0; j < k; j++)
        free(items[j].data);
    free(items);
}

static void make_buckets(const fedlog_t *f, uint8_t out[256 * BUCKET_BYTES])
{
    for (int b = 0; b < 256; b++) {
        uint8_t *p = out + b * BUCKET_BYTES;
        uint32_t c = f->bcount[b];
        p[0] = (uint8_t)(c >> 24), p[1] = (uint8_t)(c >> 16), p[2] = (uint8_t)(c >> 8), p[3] = (uint8_t)c;
        memcpy(p + 4, f->bxor[b], 8);
    }
}

static int hash_cmp(const void *a, const void *b) { return memcmp(a, b, TRUST_HASH_LEN); }

/* The hashes step: our hashes in every bucket that differs from theirs (the peer's buckets, 256 x
 * BUCKET_BYTES), or in every bucket (theirs NULL: answering a summary), with the mask of the
 * buckets covered; a bucket that would pass SYNC_MAX_HASHES waits for the next round. */
static void send_hashes(fedlog_t *f, const fedlog_io_t *io, const char *to, const uint8_t *theirs)
{
    uint8_t ours[256 * BUCKET_BYTES], mask[32] = {0};
    if (!answer_ok(io, to))
        return;
    /* room for what we hold (not SYNC_MAX_HASHES: 768 KiB to answer a summary of a dozen); a
     * bucket grown past it meanwhile waits for the next round, as one past SYNC_MAX_HASHES does */
    pthread_mutex_lock(&f->mu);
    size_t cap = f->n < SYNC_MAX_HASHES ? f->n : SYNC_MAX_HASHES, k = 0;
    pthread_mutex_unlock(&f->mu);
    if (cap == 0)
        cap = 1;
    ProtobufCBinaryData *hl = malloc(cap * sizeof *hl);
    uint8_t (*hs)[TRUST_HASH_LEN] = malloc(cap * TRUST_HASH_LEN);
    if (!hl || !hs) {
        free(hl);
        free(hs);
        return;
    }
    pthread_mutex_lock(&f->mu);
    if (theirs)
        make_buckets(f, ours);
    size_t i = 0;
    for (int b = 0; b < 256; b++) {
        while (i < f->n && f->held[i].hash[0] < b)
            i++;
        if (theirs && !memcmp(ours + b * BUCKET_BYTES, theirs + b * BUCKET_BYTES, BUCKET_BYTES))
            continue;
        if (k + f->bcount[b] > cap)
            continue;                   /* next round */
        mask[b / 8] |= (uint8_t)(1u << (b % 8));
        for (size_t j = i; j < f->n && f->held[j].hash[0] == b; j++) {
            memcpy(hs[k], f->held[j].hash, TRUST_HASH_LEN);
            hl[k] = (ProtobufCBinaryData){TRUST_HASH_LEN, hs[k]};
            k++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    Trib__FedSync r = TRIB__FED_SYNC__INIT;
    r.step = STEP_HASHES;
    r.bucket_mask = (ProtobufCBinaryData){sizeof mask, mask};
    r.n_hashes = k;
    r.hashes = hl;
    send_answer(f, io, to, &r);
    free(hl);
    free(hs);
}

static void handle_sync(fedlog_t *f, const char *from, const Trib__FedSync *m, const fedlog_io_t *io)
{
    switch (m->step) {
    case STEP_SUMMARY: {
        if (m->hash.len != TRUST_HASH_LEN)
            goto bad;
        uint8_t buckets[256 * BUCKET_BYTES];
        pthread_mutex_lock(&f->mu);
        int same = m->count == f->n && !memcmp(m->hash.data, f->xor_all, TRUST_HASH_LEN);
        int small = f->n <= SYNC_SMALL;
        if (!same && !small)
            make_buckets(f, buckets);
        pthread_mutex_unlock(&f->mu);
        if (same)
            return;
        if (small) {          /* the hashes step at once, for every bucket: one round trip less */
            send_hashes(f, io, from, NULL);
            return;
        }
        Trib__FedSync r = TRIB__FED_SYNC__INIT;
        r.step = STEP_BUCKETS;
        r.buckets = (ProtobufCBinaryData){sizeof buckets, buckets};
        if (answer_ok(io, from))
            send_answer(f, io, from, &r);
        return;
    }
    case STEP_BUCKETS: {
        if (m->buckets.len != 256 * BUCKET_BYTES)
            goto bad;
        send_hashes(f, io, from, m->buckets.data);
        return;
    }
    case STEP_HASHES: {
        if (m->bucket_mask.len != 32 || m->n_hashes > SYNC_MAX_HASHES)
            goto bad;
        size_t n = m->n_hashes;
        uint8_t (*theirs)[TRUST_HASH_LEN] = malloc((n ? n : 1) * TRUST_HASH_LEN);
        if (!theirs)
            return;
        for (size_t i = 0; i < n; i++) {
            if (m->hashes[i].len != TRUST_HASH_LEN) {
                free(theirs);
                goto bad;
            }
            memcpy(theirs[i], m->hashes[i].data, TRUST_HASH_LEN);
        }
        qsort(theirs, n, TRUST_HASH_LEN, hash_cmp);
        uint8_t (*give)[TRUST_HASH_LEN] = NULL;
        ProtobufCBinaryData *want = malloc((n ? n : 1) * sizeof *want);
        size_t ngive = 0, nwant = 0;
        pthread_mutex_lock(&f->mu);
        give = malloc((f->n ? f->n : 1) * TRUST_HASH_LEN);
        for (size_t i = 0; give && i < f->n; i++) {
            uint8_t b = f->held[i].hash[0];
            if (!(m->bucket_mask.data[b / 8] & (1u << (b % 8))))
                continue;
            if (!bsearch(f->held[i].hash, theirs, n, TRUST_HASH_LEN, hash_cmp))
                memcpy(give[ngive++], f->held[i].hash, TRUST_HASH_LEN);
        }
        for (size_t i = 0; want && i < n; i++)
            if (!held_find(f, theirs[i]) && !fedlog__pending_find(f, theirs[i]) && !refused_recently(f, theirs[i]))
                want[nwant++] = (ProtobufCBinaryData){TRUST_HASH_LEN, theirs[i]};
        pthread_mutex_unlock(&f->mu);
        if (want && nwant) {
            Trib__FedSync r = TRIB__FED_SYNC__INIT;
            r.step = STEP_WANT;
            r.n_hashes = nwant;
            r.hashes = want;
            send_sync(f, io, from, &r);
        }
        if (give && ngive)
            send_objects(f, io, from, give, ngive);
        free(want);
        free(give);
        free(theirs);
        return;
    }
    case STEP_WANT: {
        if (m->n_hashes > SYNC_MAX_HASHES)
            goto bad;
        uint8_t (*give)[TRUST_HASH_LEN] = malloc((m->n_hashes ? m->n_hashes : 1) * TRUST_HASH_LEN);
        size_t ngive = 0;
        if (!give)
            return;
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < m->n_hashes; i++)
            if (m->hashes[i].len == TRUST_HASH_LEN && held_find(f, m->hashes[i].data))
                memcpy(give[ngive++], m->hashes[i].data, TRUST_HASH_LEN);
        pthread_mutex_unlock(&f->mu);
        if (ngive)
            send_objects(f, io, from, give, ngive);
        free(give);
        return;
    }
    case STEP_OBJECTS: {
        if (m->n_objects > SYNC_MAX_OBJECTS)
            goto bad;               /* one message's verification stays short on the loop */
        batch_t *items = malloc((m->n_objects ? m->n_objects : 1) * sizeof *items);
        if (!items)
            return;
        for (size_t i = 0; i < m->n_objects; i++)
            items[i] = (batch_t){.b = m->objects[i].data, .n = m->objects[i].len};
        offer_items(f, items, m->n_objects, from, 0);
        free(items);
        return;
    }
    }
bad:
    pthread_mutex_lock(&f->mu);
    f->bad_msgs++;
    pthread_mutex_unlock(&f->mu);
}

void fedlog_handle(fedlog_t *f, const char *from, int type, const uint8_t *body, size_t len)
{
    pthread_mutex_lock(&f->mu);
    int attached = f->attached;
    fedlog_io_t io = f->io;
    pthread_mutex_unlock(&f->mu);
    if (type == TRIB__MSG_TYPE__MSG_FED_PUSH) {
        Trib__FedObjects *m = trib__fed_objects__unpack(NULL, len, body);
        if (!m || m->n_objects > SYNC_MAX_OBJECTS) {
            pthread_mutex_lock(&f->mu);
            f->bad_msgs++;
            pthread_mutex_unlock(&f->mu);
            if (m)
                trib__fed_objects__free_unpacked(m, NULL);
            return;
        }
        batch_t *items = malloc((m->n_objects ? m->n_objects : 1) * sizeof *items);
        if (items) {
            for (size_t i = 0; i < m->n_objects; i++)
                items[i] = (batch_t){.b = m->objects[i].data, .n = m->objects[i].len};
            fedlog__commit_or_queue(f, offer_and_push(f, items, m->n_objects, from), NULL);
            free(items);
        }
        trib__fed_objects__free_unpacked(m, NULL);
        if (attached)
            fedlog_tick(f);         /* forward at once, ahead of everything else */
        return;
    }
    Trib__FedSync *m = type == TRIB__MSG_TYPE__MSG_FED_SYNC ? trib__fed_sync__unpack(NULL, len, body) : NULL;
    if (!m || m->step < STEP_SUMMARY || m->step >= STEP_COUNT || !attached) {
        pthread_mutex_lock(&f->mu);
        f->bad_msgs++;
        pthread_mutex_unlock(&f->mu);
        if (m)
            trib__fed_sync__free_unpacked(m, NULL);
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->sync_in[m->step]++;
    pthread_mutex_unlock(&f->mu);
    handle_sync(f, from, m, &io);
    trib__fed_sync__free_unpacked(m, NULL);
}

/* ---------------------------------------------------------------- views */

static void drop_signed(json_t *j)
{
    if (j)
        json_object_del(j, "signed");
}

json_t *fedlog_status_json(fedlog_t *f)
{
    pthread_mutex_lock(&f->mu);
    json_t *certs = json_array(), *revs = json_array(), *charter = json_null();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (f->t) {
        json_decref(charter);
        charter = charter_to_json(trust_charter(f->t));
        drop_signed(charter);
        for (size_t i = 0; i < trust_cert_count(f->t); i++) {
            const cert_t *c = trust_cert_at(f->t, i);
            json_t *j = cert_to_json(c);
            drop_signed(j);
            if (j) {
                char why[200];
                trust_verdict_t v = cert_check_claim(c, NULL, c->domain, c->node_key, now, TRUST_SKEW_MS, why,
                                                     sizeof why);
                trust_verdict_t e = trust_entry_ok(f->t, c->domain, c->node_key, now, why, sizeof why);
                json_object_set_new(j, "state", json_string(v != TRUST_OK ? trust_verdict_name(v)
                                                            : e == TRUST_REVOKED ? "revoked" : "valid"));
                json_array_append_new(certs, j);
            }
        }
        for (size_t i = 0; i < trust_revocation_count(f->t); i++) {
            json_t *j = revocation_to_json(trust_revocation_at(f->t, i));
            drop_signed(j);
            if (j)
                json_array_append_new(revs, j);
        }
    }
    json_t *out = json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:I,s:I}", "mode", f->t ? "chartered" : "open",
                            "objects", (json_int_t)f->n, "bytes", (json_int_t)f->bytes, "charter",
                            charter ? charter : json_null(), "certificates", certs, "revocations", revs,
                            "policies", (json_int_t)f->nkind[TRUST_KIND_POLICY], "rotations",
                            (json_int_t)f->nkind[TRUST_KIND_ROTATE]);
    pthread_mutex_unlock(&f->mu);
    return out;
}

void fedlog_metrics_render(fedlog_t *f, FILE *out)
{
    pthread_mutex_lock(&f->mu);
    fprintf(out, "# HELP trib_fedlog_objects Federation log objects held, by kind.\n# TYPE trib_fedlog_objects gauge\n");
    for (int k = 1; k < FEDLOG_KINDS; k++)
        fprintf(out, "trib_fedlog_objects{kind=\"%s\"} %zu\n", kind_label(k), f->nkind[k]);
    fprintf(out, "# HELP trib_fedlog_accepted_total Federation objects verified and stored, by kind.\n"
                 "# TYPE trib_fedlog_accepted_total counter\n");
    for (int k = 1; k < FEDLOG_KINDS; k++)
        fprintf(out, "trib_fedlog_accepted_total{kind=\"%s\"} %" PRIu64 "\n", kind_label(k), f->accepted[k]);
    fprintf(out, "# HELP trib_fedlog_refused_total Federation objects refused, by kind and reason.\n"
                 "# TYPE trib_fedlog_refused_total counter\n");
    for (int k = 0; k < FEDLOG_KINDS; k++)
        for (int r = 1; r < FEDLOG_R_COUNT; r++)
            if (f->refusals[k][r])
                fprintf(out, "trib_fedlog_refused_total{kind=\"%s\",reason=\"%s\"} %" PRIu64 "\n", kind_label(k),
                        fedlog_reason_name(r), f->refusals[k][r]);
    fprintf(out, "# HELP trib_fedlog_pushed_total Federation object pushes sent.\n# TYPE trib_fedlog_pushed_total counter\n"
                 "trib_fedlog_pushed_total %" PRIu64 "\n", f->pushed);
    fprintf(out, "# HELP trib_fedlog_bad_messages_total Federation log messages dropped as malformed.\n"
                 "# TYPE trib_fedlog_bad_messages_total counter\ntrib_fedlog_bad_messages_total %" PRIu64 "\n",
            f->bad_msgs);
    fprintf(out, "# HELP trib_fedlog_pending Federation objects verified and in force, not yet durable.\n"
                 "# TYPE trib_fedlog_pending gauge\ntrib_fedlog_pending %zu\n", f->npending);
    fprintf(out, "# HELP trib_fedlog_commits_total Durable commits of federation objects (one or more each).\n"
                 "# TYPE trib_fedlog_commits_total counter\ntrib_fedlog_commits_total %" PRIu64 "\n", f->commits);
    static const char *const steps[STEP_COUNT] = {"", "summary", "buckets", "hashes", "want", "objects"};
    fprintf(out, "# HELP trib_fedlog_sync_total Federation log anti-entropy messages, by step and direction.\n"
                 "# TYPE trib_fedlog_sync_total counter\n");
    for (int s = 1; s < STEP_COUNT; s++)
        fprintf(out, "trib_fedlog_sync_total{step=\"%s\",dir=\"in\"} %" PRIu64 "\n"
                     "trib_fedlog_sync_total{step=\"%s\",dir=\"out\"} %" PRIu64 "\n",
                steps[s], f->sync_in[s], steps[s], f->sync_out[s]);
    pthread_mutex_unlock(&f->mu);
}
