/* node/rotate.c - a running chartered node's key rotation (see node/rotate.h).
 *
 * Owns: the pending next key (made here, on the node: its secret never crosses HTTP), checking
 * the new certificate, the hand-over the current key signs, the durable key switch in the data
 * dir (write, fsync, rename, fsync the dir), and switching the running node to the new key (the
 * gossip loop rebinds its peer address under it: gossip_rekey; the catalog signs with it); an
 * in-place restart only when that fails.
 * Must not: verify signatures itself (the federation log and trust store do).
 *
 * The switch is all or nothing. What can fail is prepared first, out of sight: identity.prev.cert
 * (the current key's certificate), identity.handover (the hand-over it signed), the new key's
 * certificate staged as identity.next.cert.new and an admin token of the new key as
 * admin.token.next (each durably: tmp, fsync, rename, fsync the dir). Then the gossip loop moves
 * to the new key (gossip_rekey: all or nothing itself). Then the commit point: identity.next.cert.new
 * renamed to identity.next.cert (and the dir fsynced); if that fails the loop is moved back to the
 * old key. After it nothing fails the switch: identity.key is hard-linked to identity.prev.key,
 * identity.next.key renamed over identity.key, identity.next.cert to identity.cert,
 * admin.token.next to admin.token; the catalog and the node's id take the new key; the hand-over
 * goes to the federation log, which gossips it. A failure before the commit point leaves the node
 * serving on its old key, the rotation pending, and says so (log, /metrics, trib status): run
 * `trib key rotate --cert` again. Only if moving the loop back fails too does the agent restart in
 * place (on the old key: the files never switched).
 * A crash before the commit point leaves the old key in force (run the rotation again); after it,
 * the agent's next start finishes the switch (rotate_recover) and offers the hand-over again
 * (rotate_offer_pending).
 *
 * A pending rotation keeps the operator's overlap in identity.next.json (durably, before the next
 * key is made), for the switch made later when the certificate arrives. A certificate that is
 * not valid yet (its not_before more than TRUST_SKEW_MS ahead) is tried again when it becomes
 * valid (rotate_sigwait's timer). */
#include "node/errtext.h"
#include "node/known.h"
#include "node/rotate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gossip/cert.h"
#include "gossip/clock.h"
#include "gossip/durable.h"
#include "gossip/fedlog.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "gossip/prom.h"
#include "gossip/textfile.h"
#include "node/auth.h"

#define ROTATE_MAX_OVERLAP_S (90LL * 24 * 3600)
#define ROTATE_PENDING_MAX 4096   /* ROTATE_PENDING_FILE is {"overlap_s": N}: a few bytes */
#define STAGED_CERT_FILE ROTATE_NEXT_CERT_FILE ".new"   /* the new key's certificate, before the commit */
#define NEXT_TOKEN_FILE "admin.token.next"               /* the new key's admin token, before the commit */
#define RETRY_MARGIN_MS 200                              /* past the moment a certificate becomes valid */

static _Atomic(struct MHD_Connection *) reply_conn;   /* the reply still being sent before a restart */
static atomic_int restart;
static atomic_llong retry_at_ms;                      /* wall ms a not-yet-valid certificate is tried again; 0 */
static atomic_int certs_posted;
static atomic_uint_fast64_t failures;                 /* switches that failed (trib_key_rotation_failures_total) */
/* the last failed switch, for trib status (cleared by a switch made) */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[600];
/* after a failed switch the federation log's certificate does not start another by itself: the
 * operator's next rotate call does (each failure would else be tried again at once) */
static atomic_int auto_held;

static unsigned error(json_t **reply, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static unsigned error(json_t **reply, unsigned status, const char *code, const char *fmt, ...)
{
    char detail[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    errtext_utf8(detail);   /* a detail cut inside a character (or quoting a field) stays JSON */
    *reply = json_pack("{s:s,s:s}", "error", code, "detail", detail);
    return status;
}

/* A switch failed: counted, logged, and shown by trib status until one is made. */
static void failed(const char *why)
{
    char when[32];
    trust_time_text(clock_wall_ms(), when);
    atomic_fetch_add(&failures, 1);
    pthread_mutex_lock(&fail_mu);
    snprintf(fail_text, sizeof fail_text, "the switch to the next key failed at %s: %s", when, why);
    pthread_mutex_unlock(&fail_mu);
    log_error("rotate: the switch to the next key failed: %s", why);
    atomic_store(&auto_held, 1);
}

/* fsyncs dir after a rename, link or unlink in it (0 or -1, errno kept for the caller's message) */
static int fsync_dir(const char *dir)
{
    char e[64];
    return durable_sync_dir(dir, e, sizeof e);
}

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Writes text to dir/name durably (gossip/durable.h). */
static int write_durable(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
    char path[540];
    path_of(path, sizeof path, dir, name);
    return durable_write(path, text, strlen(text), 0644, DURABLE_REPLACE, err, errlen) == 0 ? 0 : -1;
}

/* Writes j (taken; NULL: out of memory) to dir/name durably. */
static int write_json(const char *dir, const char *name, json_t *j, char *err, size_t errlen)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text) {
        snprintf(err, errlen, "cannot write %s/%s: out of memory", dir, name);
        return -1;
    }
    int rc = write_durable(dir, name, text, err, errlen);
    free(text);
    return rc;
}

/* Removes dir/name, if there (the leftovers of a switch that was not made). */
static void remove_file(const char *dir, const char *name)
{
    char path[540];
    path_of(path, sizeof path, dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("rotate: cannot remove %s: %s", path, strerror(errno));
}

/* The overlap the operator asked for with the pending rotation (identity.next.json), else the
 * default. */
static json_int_t pending_overlap_s(const char *dir)
{
    char path[540], e[700];
    path_of(path, sizeof path, dir, ROTATE_PENDING_FILE);
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        return ROTATE_DEFAULT_OVERLAP_MS / 1000;   /* no overlap asked for */
    size_t len = 0;
    char *text = textfile_read(path, "a pending rotation's overlap file", ROTATE_PENDING_MAX, &len, e, sizeof e);
    json_error_t je;
    json_t *j = text ? json_loadb(text, len, 0, &je) : NULL;
    if (!text)
        log_warn("rotate: %s: the default overlap is used", e);
    else if (!j)
        log_warn("rotate: %s: not JSON (%s, line %d): the default overlap is used", path, je.text, je.line);
    free(text);
    json_t *o = json_object_get(j, "overlap_s");
    json_int_t v = json_is_integer(o) ? json_integer_value(o) : -1;
    json_decref(j);
    if (j && (v < 0 || v > ROTATE_MAX_OVERLAP_S))
        log_warn("rotate: %s: overlap_s is not seconds from 0 to %lld: the default overlap is used", path,
                 ROTATE_MAX_OVERLAP_S);
    return v >= 0 && v <= ROTATE_MAX_OVERLAP_S ? v : ROTATE_DEFAULT_OVERLAP_MS / 1000;
}

/* identity.key -> identity.prev.key (a hard link), identity.next.key -> identity.key (a rename). */
static int switch_keys(const char *dir, char *err, size_t errlen)
{
    char key[540], prev[540], next[540];
    path_of(key, sizeof key, dir, "identity.key");
    path_of(prev, sizeof prev, dir, "identity.prev.key");
    path_of(next, sizeof next, dir, "identity.next.key");
    if ((unlink(prev) != 0 && errno != ENOENT) || link(key, prev) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot keep the old key as %s: %s", prev, strerror(errno));
        return -1;
    }
    if (rename(next, key) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot make %s the node's key: %s", next, strerror(errno));
        return -1;
    }
    return 0;
}

/* The admin token becomes the new key's: admin.token.next when the switch prepared one, else
 * admin.token is removed and the next start issues one (copies of the old one verify until the
 * overlap ends). */
static void switch_token(const char *dir)
{
    char tok[540], next[540];
    path_of(tok, sizeof tok, dir, "admin.token");
    path_of(next, sizeof next, dir, NEXT_TOKEN_FILE);
    if (rename(next, tok) == 0)
        fsync_dir(dir);
    else if (unlink(tok) != 0 && errno != ENOENT)
        log_warn("rotate: cannot remove %s (%s): it stops working when the overlap ends", tok, strerror(errno));
}

/* After the commit point: the keys switched, identity.next.cert renamed to identity.cert, the new
 * admin token in place, the pending overlap removed. */
static int finish_switch(const char *dir, char *err, size_t errlen)
{
    char from[540], to[540];
    path_of(from, sizeof from, dir, ROTATE_NEXT_CERT_FILE);
    path_of(to, sizeof to, dir, ROTATE_CERT_FILE);
    if (switch_keys(dir, err, errlen) != 0)
        return -1;
    if (rename(from, to) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot make %s the node's certificate: %s", from, strerror(errno));
        return -1;
    }
    switch_token(dir);
    remove_file(dir, ROTATE_PENDING_FILE);
    return 0;
}

/* The current key's certificate: DATA/identity.cert after an earlier rotation, else --cert. 0, or
 * -1 when neither is this key's. */
static int own_cert(node_t *n, cert_t *out)
{
    char rotated[600], e[600];
    snprintf(rotated, sizeof rotated, "%s/" ROTATE_CERT_FILE, n->cfg.data);
    const char *paths[] = {rotated, n->cfg.cert};
    for (size_t i = 0; i < 2; i++) {
        if (cert_load(paths[i], out, e, sizeof e) != 0)
            continue;
        if (memcmp(out->node_key, n->id.pk, ID_PK_LEN) == 0)
            return 0;
        cert_free(out);
    }
    return -1;
}

int rotate_recover(const char *dir, char *err, size_t errlen)
{
    char path[540], e[600];
    path_of(path, sizeof path, dir, ROTATE_NEXT_CERT_FILE);
    cert_t c;
    if (access(path, F_OK) != 0) {                 /* no switch was committed: its staged files go */
        remove_file(dir, STAGED_CERT_FILE);
        remove_file(dir, NEXT_TOKEN_FILE);
        return 0;
    }
    if (cert_load(path, &c, e, sizeof e) != 0) {
        snprintf(err, errlen, "a key switch was committed but %s cannot be read: %s", path, e);
        return -1;
    }
    identity_t next, cur;
    char kp[540], np[540];
    path_of(kp, sizeof kp, dir, "identity.key");
    path_of(np, sizeof np, dir, "identity.next.key");
    int rc = 0;
    if (identity_load_file(np, &next, e, sizeof e) == 0 && !memcmp(next.pk, c.node_key, ID_PK_LEN)) {
        rc = finish_switch(dir, err, errlen);      /* stopped before identity.key was replaced */
        identity_wipe(&next);
    } else if (identity_load_file(kp, &cur, e, sizeof e) == 0 && !memcmp(cur.pk, c.node_key, ID_PK_LEN)) {
        char to[540];                              /* stopped between the key and the certificate */
        path_of(to, sizeof to, dir, ROTATE_CERT_FILE);
        if (rename(path, to) != 0 || fsync_dir(dir) != 0) {
            snprintf(err, errlen, "cannot make %s the node's certificate: %s", path, strerror(errno));
            rc = -1;
        } else {
            switch_token(dir);
            remove_file(dir, ROTATE_PENDING_FILE);
        }
        identity_wipe(&cur);
    } else {
        snprintf(err, errlen, "%s certifies neither identity.key nor identity.next.key of %s: remove it (a key "
                 "rotation's leftover) or put back the key it certifies", path, dir);
        rc = -1;
    }
    if (rc == 0)
        log_warn("rotate: finished the key switch a stop had interrupted (%s): the node runs with the new key",
                 dir);
    cert_free(&c);
    return rc;
}

void rotate_offer_pending(fedlog_t *f, const char *dir, const uint8_t key[ID_PK_LEN])
{
    char path[540], e[600];
    path_of(path, sizeof path, dir, ROTATE_HANDOVER_FILE);
    rotation_t rot;
    if (!f || access(path, F_OK) != 0)
        return;
    if (rotation_load(path, &rot, e, sizeof e) != 0) {
        log_warn("rotate: %s: %s", path, e);
        return;
    }
    if (memcmp(rot.new_key, key, ID_PK_LEN) != 0) {   /* written before a switch that never committed */
        rotation_free(&rot);
        return;
    }
    path_of(path, sizeof path, dir, ROTATE_PREV_CERT_FILE);
    cert_t c;
    fedlog_result_t r;
    if (cert_load(path, &c, e, sizeof e) == 0) {   /* the signer's certificate first */
        if (fedlog_offer(f, c.bytes, c.len, NULL, &r) != 0)
            log_warn("rotate: the federation log did not take the previous key's certificate: %s", r.err);
        cert_free(&c);
    }
    if (fedlog_offer(f, rot.bytes, rot.len, NULL, &r) != 0)
        log_warn("rotate: the federation log did not take this node's key hand-over: %s", r.err);
    rotation_free(&rot);
}

static unsigned offer(fedlog_t *f, const uint8_t *b, size_t len, const char *what, json_t **reply)
{
    fedlog_result_t r;
    if (fedlog_offer(f, b, len, NULL, &r) == 0)
        return 0;
    unsigned st = r.reason == TRUST_FORGED || r.reason == TRUST_BELOW_THRESHOLD || r.reason == TRUST_WRONG_FEDERATION ||
                  r.reason == TRUST_REVOKED || r.reason == TRUST_ROTATED ? 403 : r.reason == FEDLOG_R_BUSY ? 503
                  : r.reason == FEDLOG_R_STORAGE ? 500 : r.reason == FEDLOG_R_NO_SPACE ? 507 : 409;
    return error(reply, st, fedlog_reason_name(r.reason), "%s refused by this node's federation log: %s", what, r.err);
}

/* The current key's certificate into the federation log, stored and gossiped with the hand-over:
 * a node that restarts, or a peer that never met this key, can then check the hand-over's signer
 * was the domain's. */
static unsigned offer_own(node_t *n, fedlog_t *f, const cert_t *own, json_t **reply)
{
    if (!own)
        return error(reply, 409, "uncertified", "neither --cert %s nor %s/" ROTATE_CERT_FILE " is this node's "
                     "certificate", n->cfg.cert, n->cfg.data);
    return offer(f, own->bytes, own->len, "this node's certificate", reply);
}

static unsigned rotate_locked(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply);

/* A cert given with no rotation pending: the switch happened already when it is the running key's
 * (the federation log brought the certificate first: rotate_from_fedlog), 200 as then; else 409.
 * No next key is made. */
static unsigned already_rotated(node_t *n, const char *b64, json_t **reply)
{
    size_t blen = strlen(b64), got = 0;
    uint8_t *bytes = malloc(blen ? blen : 1);
    cert_t cert;
    char e[300];
    if (!bytes || sodium_base642bin(bytes, blen, b64, blen, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        cert_parse(bytes, got, &cert, e, sizeof e) != 0) {
        free(bytes);
        return error(reply, 400, "bad_request", "cert: not the base64 of a certificate's signed bytes");
    }
    unsigned st = memcmp(cert.node_key, n->id.pk, ID_PK_LEN) == 0 && strcmp(cert.domain, n->cfg.domain) == 0
                      ? (*reply = json_pack("{s:s,s:s,s:s,s:b}", "state", "rotated", "node_id", n->id.hex, "domain",
                                            n->cfg.domain, "restarting", 0)) ? 200 : 500
                      : error(reply, 409, "not_pending", "no key rotation is pending on this node (no "
                              "identity.next.key) and the certificate is not its running key's: start one without "
                              "--cert first");
    cert_free(&cert);
    free(bytes);
    return st;
}

/* One rotation at a time: two at once would both switch keys, and the second would keep the new
 * key as identity.prev.key, losing the old one. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

unsigned rotate_request(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply,
                        unsigned *retry_after_s)
{
    *retry_after_s = 0;
    if (pthread_mutex_trylock(&mu) != 0) {
        *retry_after_s = ROTATE_BUSY_RETRY_S;
        return error(reply, 409, "busy", "a key rotation is already under way on this node (another rotate call, "
                     "or the switch started by the new certificate reaching the federation log): retry in %d s",
                     ROTATE_BUSY_RETRY_S);
    }
    atomic_store(&auto_held, 0);   /* the operator's call: the automatic switch may go on again */
    unsigned st = rotate_locked(n, c, body, len, reply);
    pthread_mutex_unlock(&mu);
    if (st == 503)   /* only the federation log's busy loop answers 503 (offer) */
        *retry_after_s = ROTATE_RETRY_S;
    return st;
}

void rotate_post_certs(void)
{
    atomic_store(&certs_posted, 1);
    kill(getpid(), SIGUSR1);
}

int rotate_certs_posted(void) { return atomic_exchange(&certs_posted, 0); }

int rotate_sigwait(const sigset_t *sigs)
{
    for (;;) {
        long long at = atomic_load(&retry_at_ms), wait = at - clock_wall_ms();
        int sig = 0;
        if (!at) {
            if (sigwait(sigs, &sig) == 0)
                return sig;
            continue;
        }
        if (wait > 0) {   /* at most a minute at a time: a clock set forward is noticed within one */
            wait = wait > 60000 ? 60000 : wait;
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
            if ((sig = sigtimedwait(sigs, NULL, &ts)) > 0)
                return sig;
            continue;
        }
        long long want = at;
        if (atomic_compare_exchange_strong(&retry_at_ms, &want, 0)) {
            log_info("rotate: the pending next key's certificate is valid now: trying the switch again");
            atomic_store(&certs_posted, 1);
            return SIGUSR1;
        }
    }
}

/* The base64 of the signed bytes of a held certificate for key and domain (malloc'd), or NULL. */
static char *held_cert_b64(fedlog_t *f, const uint8_t key[ID_PK_LEN], const char *domain)
{
    char *b64 = NULL;
    fedlog_lock(f);
    trust_t *t = fedlog_trust(f);
    size_t n = t ? trust_cert_count(t) : 0;
    for (size_t i = 0; i < n && !b64; i++) {
        const cert_t *c = trust_cert_at(t, i);
        if (!c || memcmp(c->node_key, key, ID_PK_LEN) != 0 || strcmp(c->domain, domain) != 0)
            continue;
        size_t cap = sodium_base64_ENCODED_LEN(c->len, sodium_base64_VARIANT_ORIGINAL);
        if ((b64 = malloc(cap)) != NULL)
            sodium_bin2base64(b64, cap, c->bytes, c->len, sodium_base64_VARIANT_ORIGINAL);
    }
    fedlog_unlock(f);
    return b64;
}

void rotate_from_fedlog(node_t *n)
{
    fedlog_t *f = n->gossip ? gossip_fedlog(n->gossip) : NULL;
    char path[600], e[700];
    identity_t next;
    snprintf(path, sizeof path, "%s/identity.next.key", n->cfg.data);
    if (!f || !n->cfg.charter[0] || access(path, F_OK) != 0)
        return;                                     /* no rotation pending */
    pthread_mutex_lock(&mu);
    if (atomic_load(&auto_held)) {                  /* a switch failed: the operator runs it again */
        pthread_mutex_unlock(&mu);
        return;
    }
    char *b64 = identity_load_file(path, &next, e, sizeof e) == 0 ? held_cert_b64(f, next.pk, n->cfg.domain) : NULL;
    identity_wipe(&next);
    json_t *body = b64 ? json_pack("{s:s}", "cert", b64) : NULL;   /* the overlap: the one kept */
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *reply = NULL;
    unsigned st = text ? rotate_locked(n, NULL, text, strlen(text), &reply) : 0;
    pthread_mutex_unlock(&mu);
    const char *code = json_string_value(json_object_get(reply, "error"));
    if (st && st != 200 && !(code && !strcmp(code, "not_yet_valid")))   /* that one waits: logged when found */
        log_error("rotate: the federation log holds the certificate of the pending next key, but the switch "
                  "was not made: %s: %s", code, json_string_value(json_object_get(reply, "detail")));
    json_decref(reply);
    free(text);
    json_decref(body);
    free(b64);
}

/* The commit point, called by the gossip loop once it listens under the new key (gossip_rekey):
 * the staged certificate of the new key becomes identity.next.cert. */
static int commit(void *ctx, char *err, size_t errlen)
{
    const char *dir = ctx;
    char from[540], to[540];
    path_of(from, sizeof from, dir, STAGED_CERT_FILE);
    path_of(to, sizeof to, dir, ROTATE_NEXT_CERT_FILE);
    if (rename(from, to) == 0 && fsync_dir(dir) == 0)
        return 0;
    snprintf(err, errlen, "cannot commit the switch: renaming %.300s to " ROTATE_NEXT_CERT_FILE ": %s", from,
             strerror(errno));
    if (access(to, F_OK) == 0 && unlink(to) == 0)   /* renamed, the dir not synced: not committed */
        fsync_dir(dir);
    return -1;
}

/* The running node takes the new key, all or nothing; the files are staged, not switched. The
 * gossip loop moves first, committing in its turn (commit) and undoing its own steps when that
 * fails; after it nothing fails: the key files, the catalog's signer, the node's id. 0 switched;
 * -1 with err and the node on its old key; -2 with err, not committed, and the loop not whole
 * (the agent must restart, on its old key); 1 with err, committed but the loop not whole (the
 * agent must restart, on its new key). */
static int switch_live(node_t *n, const identity_t *next, const cert_t *cert, char *err, size_t errlen)
{
    char path[540], e2[600];
    if (!n->gossip)
        return snprintf(err, errlen, "no gossip loop"), -1;
    int rc = gossip_rekey(n->gossip, next, cert->bytes, cert->len, commit, n->cfg.data, err, errlen);
    path_of(path, sizeof path, n->cfg.data, ROTATE_NEXT_CERT_FILE);
    if (rc == -1 || (rc == -2 && access(path, F_OK) != 0))
        return rc;
    if (finish_switch(n->cfg.data, e2, sizeof e2) != 0)   /* committed: the next start finishes it */
        log_error("rotate: the switch is committed, but %s: the agent finishes it when it starts again", e2);
    catalog_set_identity(n->cat, next);
    /* HTTP threads sign with a copy taken under the same lock (node_identity): old or new key
     * whole, both certified during the overlap. What only shows n->id (status pages) may read
     * it unlocked for an instant. */
    node_set_identity(n, next);
    n->cert_not_after_ms = cert->not_after_ms;
    n->cert_serial = cert->serial;
    return rc == 0 ? 0 : 1;
}

/* The agent restarts in place once the reply on c is sent (rotate_done), or now (no c). */
static void restart_after(struct MHD_Connection *c)
{
    if (c)
        atomic_store(&reply_conn, c);
    else {
        atomic_store(&restart, 1);
        kill(getpid(), SIGUSR1);
    }
}

/* The staged files of a switch that was not made. */
static void unstage(const char *dir)
{
    remove_file(dir, STAGED_CERT_FILE);
    remove_file(dir, NEXT_TOKEN_FILE);
}

/* The new certificate is not valid yet: the switch is tried again once it is (rotate_sigwait). */
static unsigned not_yet_valid(const cert_t *cert, const char *why, json_t **reply)
{
    char from[32];
    int64_t at = cert->not_before_ms - TRUST_SKEW_MS + RETRY_MARGIN_MS, soonest = clock_wall_ms() + 1000;
    if (at < soonest) at = soonest;   /* the verdict may be another held cert's: never retry in a loop */
    trust_time_text(cert->not_before_ms, from);
    if (atomic_exchange(&retry_at_ms, (long long)at) != at)
        log_warn("rotate: the certificate of the next key is valid from %s (%s): the switch is tried again then",
                 from, why);
    kill(getpid(), SIGUSR1);   /* the agent's wait takes the new deadline */
    return error(reply, 403, "not_yet_valid", "the new certificate is not valid yet (%s): the node switches to the "
                 "new key by itself when it is (%s, less the %d s clock skew allowed); trib status shows it", why,
                 from, TRUST_SKEW_MS / 1000);
}

static unsigned rotate_locked(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply)
{
    fedlog_t *f = n->gossip ? gossip_fedlog(n->gossip) : NULL;
    trust_t *t = f ? fedlog_trust(f) : NULL;
    if (!n->cfg.charter[0] || !t)
        return error(reply, 409, "open_mode", "key rotation needs a chartered node (--charter): in open mode a "
                     "domain stays bound to the key that first published for it");
    json_error_t je;
    json_t *in = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : json_object();   /* "cert" twice: refused */
    if (!json_is_object(in)) {
        json_decref(in);
        return error(reply, 400, "bad_request", "body: a JSON object {\"cert\": BASE64, \"overlap_s\": N} (both optional)");
    }
    const char *stray = known_stray_key(in, "cert, overlap_s");
    if (stray) {   /* a misspelt "cert" would start a new rotation instead of completing this one */
        unsigned st = error(reply, 400, "bad_request", "%.40s: unknown field (known: cert, overlap_s)", stray);
        json_decref(in);
        return st;
    }
    char path[600], e[700];
    identity_t next;
    snprintf(path, sizeof path, "%s/identity.next.key", n->cfg.data);
    struct stat sb;
    int made = stat(path, &sb) != 0;
    json_t *jo = json_object_get(in, "overlap_s");
    const char *b64 = json_string_value(json_object_get(in, "cert"));
    if (made && !b64 && !jo)   /* a new rotation: a failed earlier one's overlap is not its own */
        remove_file(n->cfg.data, ROTATE_PENDING_FILE);
    json_int_t overlap_s = jo ? json_integer_value(jo) : pending_overlap_s(n->cfg.data);
    if ((jo && !json_is_integer(jo)) || overlap_s < 0 || overlap_s > ROTATE_MAX_OVERLAP_S) {
        json_decref(in);
        return error(reply, 400, "bad_request", "overlap_s: seconds from 0 to %lld", ROTATE_MAX_OVERLAP_S);
    }
    if (made && b64) {
        unsigned st = already_rotated(n, b64, reply);
        json_decref(in);
        return st;
    }
    /* the overlap asked for goes with the pending rotation (before its key: a crash between the
     * two leaves an overlap without a rotation, which the next one replaces) */
    json_t *pend = jo ? json_pack("{s:I}", "overlap_s", overlap_s) : NULL;
    if (jo && write_json(n->cfg.data, ROTATE_PENDING_FILE, pend, e, sizeof e) != 0) {
        json_decref(in);
        return error(reply, 500, "storage", "%s", e);
    }
    if ((made ? identity_create_file(path, &next, e, sizeof e) : identity_load_file(path, &next, e, sizeof e)) != 0) {
        json_decref(in);
        return error(reply, 500, "storage", "%s", e);
    }
    if (made)
        log_info("rotate: made the next key %s (%s)", next.hex, path);
    trust_info_t own;
    char serial[17] = "";
    if (trust_admit_info(t, n->id.curve_pk, clock_wall_ms(), &own, NULL, 0) == TRUST_OK)
        cert_serial_text(own.serial, serial);
    unsigned st = 0;
    if (!b64) {
        *reply = json_pack("{s:s,s:s,s:s,s:s,s:s}", "state", "pending", "node_id", n->id.hex, "new_node_id",
                           next.hex, "domain", n->cfg.domain, "prev_serial", serial);
        st = 202;
        goto out;
    }
    size_t blen = strlen(b64), got = 0;
    uint8_t *bytes = malloc(blen ? blen : 1);
    cert_t cert, old_cert;
    int have_old = own_cert(n, &old_cert) == 0;
    if (!bytes || sodium_base642bin(bytes, blen, b64, blen, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        cert_parse(bytes, got, &cert, e, sizeof e) != 0) {
        free(bytes);
        st = error(reply, 400, "bad_request", "cert: not the base64 of a certificate's signed bytes");
        goto old_out;
    }
    if (memcmp(cert.node_key, next.pk, ID_PK_LEN) != 0 || strcmp(cert.domain, n->cfg.domain) != 0) {
        char have[ID_HEX_LEN];
        identity_hex(cert.node_key, have);
        st = error(reply, 400, memcmp(cert.node_key, next.pk, ID_PK_LEN) ? "wrong_key" : "wrong_domain",
                   "the certificate is for node %.16s... of domain '%s', not this node's next key %.16s... of '%s'",
                   have, cert.domain, next.hex, n->cfg.domain);
        goto cert_out;
    }
    /* an expired certificate, or one the federation revoked, is refused before the federation log
     * stores it: a refused rotation leaves the federation as it was (counted as the log's refusals;
     * one not yet valid is stored: the rotation completes once it is). Its signatures first: one
     * that does not verify goes on to the log, which refuses it as forged whatever its dates */
    trust_verdict_t claim = trust_check(t, TRUST_KIND_CERT, cert.bytes, cert.len, e, sizeof e) != TRUST_OK
                                ? TRUST_OK
                                : trust_claim(t, &cert, n->cfg.domain, next.pk, clock_wall_ms(), e, sizeof e);
    if (claim == TRUST_EXPIRED || claim == TRUST_REVOKED) {
        char why[800];
        snprintf(why, sizeof why, "the new certificate for the next key is %s: %.600s; nothing was stored, the "
                 "rotation stays pending: ask the roots for a new certificate", trust_verdict_name(claim), e);
        fedlog_refuse_file(f, TRUST_KIND_CERT, (int)claim, why);
        st = error(reply, 403, trust_verdict_name(claim), "%s", why);
        goto cert_out;
    }
    if ((st = offer_own(n, f, have_old ? &old_cert : NULL, reply)) != 0 ||
        (st = offer(f, cert.bytes, cert.len, "the new certificate", reply)) != 0)
        goto cert_out;
    trust_verdict_t v = trust_entry_ok(t, n->cfg.domain, next.pk, clock_wall_ms(), e, sizeof e);
    if (v == TRUST_NOT_YET_VALID) {
        st = not_yet_valid(&cert, e, reply);
        goto cert_out;
    }
    if (v != TRUST_OK) {
        st = error(reply, 403, trust_verdict_name(v), "the new certificate is not valid now: %s", e);
        goto cert_out;
    }
    atomic_store(&retry_at_ms, 0);   /* valid: no retry waits any more */
    rotation_t rot;
    int64_t now = clock_wall_ms();
    if (rotation_make(&n->id, n->cfg.domain, next.pk, now, (int64_t)overlap_s * 1000, &rot, e, sizeof e) != 0) {
        st = error(reply, 500, "failed", "%s", e);
        goto cert_out;
    }
    /* prepared out of sight first: what can fail (durable files, the new admin token) */
    char tokp[600];
    snprintf(tokp, sizeof tokp, "%s/" NEXT_TOKEN_FILE, n->cfg.data);
    unstage(n->cfg.data);
    if (write_json(n->cfg.data, ROTATE_PREV_CERT_FILE, cert_to_json(&old_cert), e, sizeof e) != 0 ||
        write_json(n->cfg.data, ROTATE_HANDOVER_FILE, rotation_to_json(&rot), e, sizeof e) != 0 ||
        write_json(n->cfg.data, STAGED_CERT_FILE, cert_to_json(&cert), e, sizeof e) != 0 ||
        auth_write_admin_token(n, &next, tokp, e, sizeof e) != 0) {
        unstage(n->cfg.data);
        rotation_free(&rot);
        failed(e);
        st = error(reply, 500, "storage", "%s (the node runs on its old key; the rotation stays pending)", e);
        goto cert_out;
    }
    char until[32], old_hex[ID_HEX_LEN];
    trust_time_text(now + (int64_t)overlap_s * 1000, until);
    snprintf(old_hex, sizeof old_hex, "%s", n->id.hex);
    int live = switch_live(n, &next, &cert, e, sizeof e);
    if (live < 0) {
        unstage(n->cfg.data);
        rotation_free(&rot);
        char why[800];
        snprintf(why, sizeof why, "%.500s; %s", e, live == -2 ? "restarting the agent on its old key (its files "
                 "never switched): run `trib key rotate --cert` again after it" : "the node runs on its old key, the "
                 "rotation stays pending: run `trib key rotate --cert` again");
        failed(why);
        st = error(reply, 500, "switch_failed", "%s", why);
        if (live == -2)
            restart_after(c);
        goto cert_out;
    }
    /* switched: peers hear of it only now */
    fedlog_result_t fr;
    if (fedlog_offer(f, rot.bytes, rot.len, NULL, &fr) != 0)
        log_error("rotate: the key was switched, but the federation log did not take the hand-over now (%s); it "
                  "is offered again when the agent starts on the new key", fr.err);
    rotation_free(&rot);
    pthread_mutex_lock(&fail_mu);
    fail_text[0] = '\0';
    pthread_mutex_unlock(&fail_mu);
    log_warn("rotate: domain '%s' handed over from %.16s... to %.16s... (both keys verify until %s); running on the "
             "new key", n->cfg.domain, old_hex, next.hex, until);
    if (live == 1) {
        log_error("rotate: the running node could not take the new key whole (%s): restarting with it", e);
        restart_after(c);
    }
    *reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "state", "rotated", "node_id", next.hex, "old_node_id",
                       old_hex, "domain", n->cfg.domain, "overlap_until", until, "restarting", live == 1);
    st = 200;
cert_out:
    cert_free(&cert);
    free(bytes);
old_out:
    if (have_old)
        cert_free(&old_cert);
out:
    identity_wipe(&next);
    json_decref(in);
    return st;
}

void rotate_done(struct MHD_Connection *c)
{
    struct MHD_Connection *want = c;
    if (c && atomic_compare_exchange_strong(&reply_conn, &want, NULL)) {
        atomic_store(&restart, 1);
        kill(getpid(), SIGUSR1);
    }
}

int rotate_restart_requested(void) { return atomic_load(&restart); }

void rotate_status(node_t *n, json_t *j)
{
    char text[700] = "", path[600];
    pthread_mutex_lock(&fail_mu);
    snprintf(text, sizeof text, "%s", fail_text);
    pthread_mutex_unlock(&fail_mu);
    long long at = atomic_load(&retry_at_ms);
    snprintf(path, sizeof path, "%s/identity.next.key", n->cfg.data);
    int pending = access(path, F_OK) == 0;
    if (!text[0] && at && pending) {
        char when[32];
        trust_time_text(at - RETRY_MARGIN_MS + TRUST_SKEW_MS, when);
        snprintf(text, sizeof text, "pending: the next key's certificate is held but not valid until %s; the "
                 "switch is tried again then", when);
    } else if (!text[0] && pending)
        snprintf(text, sizeof text, "pending: the next key (%s) waits for its certificate", path);
    if (text[0] && j)
        json_object_set_new(j, "key_rotation", json_string(text));
}

void rotate_metrics(node_t *n, FILE *f)
{
    char path[600];
    snprintf(path, sizeof path, "%s/identity.next.key", n->cfg.data);
    prom_counter(f, "trib_key_rotation_failures_total",
                 "Key switches that failed (the node went on with its old key; trib status says why).",
                 atomic_load(&failures));
    prom_gauge(f, "trib_key_rotation_pending", "1 while a key rotation waits for (or retries) its switch.",
               access(path, F_OK) == 0);
    prom_gauge(f, "trib_key_rotation_retry_at_seconds",
               "When a held but not yet valid certificate of the next key is tried again (Unix time; 0: none).",
               (uint64_t)(atomic_load(&retry_at_ms) / 1000));
}

int rotate_reexec(char *err, size_t errlen)
{
    static char buf[65536];
    char *argv[1024];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0 || (size_t)n >= sizeof buf - 1) {
        snprintf(err, errlen, "restart: cannot read /proc/self/cmdline");
        return -1;
    }
    buf[n] = '\0';
    size_t argc = 0;
    for (char *p = buf; p < buf + n && argc + 1 < sizeof argv / sizeof argv[0]; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    execv("/proc/self/exe", argv);
    snprintf(err, errlen, "restart: execv: %s (start the agent again: it runs with the new key)", strerror(errno));
    return -1;
}
