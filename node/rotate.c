/* node/rotate.c - a running chartered node's key rotation (see node/rotate.h).
 *
 * Owns: the pending next key (made here, on the node: its secret never crosses HTTP), checking
 * the new certificate, the hand-over the current key signs, the durable key switch in the data
 * dir (write, fsync, rename, fsync the dir), and switching the running node to the new key (the
 * gossip loop rebinds its peer address under it: gossip_rekey; the catalog signs with it); an
 * in-place restart only when that fails.
 * Must not: verify signatures itself (the federation log and trust store do).
 *
 * Crash safety of the switch. Files in the order written, each durably (tmp, fsync, rename, fsync
 * the dir): identity.next.key (identity_create_file, at the pending step); identity.prev.cert (the
 * current key's certificate) and identity.handover (the hand-over it signed); identity.next.cert
 * (the new key's certificate): written, it is the commit point. Then identity.key is hard-linked
 * to identity.prev.key, identity.next.key renamed over identity.key, identity.next.cert renamed to
 * identity.cert. Only then is the hand-over given to the federation log, which gossips it: peers
 * never hear of a switch this node could lose. A crash before the commit point leaves the old key
 * in force (run the rotation again); after it, the agent's next start finishes the switch
 * (rotate_recover) and offers the hand-over again (rotate_offer_pending). */
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
#include "node/auth.h"

#define ROTATE_MAX_OVERLAP_S (90LL * 24 * 3600)

static _Atomic(struct MHD_Connection *) reply_conn;   /* the rotated reply still being sent */
static atomic_int restart;

static unsigned error(json_t **reply, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static unsigned error(json_t **reply, unsigned status, const char *code, const char *fmt, ...)
{
    char detail[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    *reply = json_pack("{s:s,s:s}", "error", code, "detail", detail);
    return status;
}

/* fsyncs dir after a rename, link or unlink in it (0 or -1, errno kept for the caller's message) */
static int fsync_dir(const char *dir)
{
    char e[64];
    return durable_sync_dir(dir, e, sizeof e);
}

/* Writes text to dir/name durably (gossip/durable.h). */
static int write_durable(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
    char path[540];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return durable_write(path, text, strlen(text), 0644, DURABLE_REPLACE, err, errlen) == 0 ? 0 : -1;
}

/* identity.key -> identity.prev.key (a hard link), identity.next.key -> identity.key (a rename). */
static int switch_keys(const char *dir, char *err, size_t errlen)
{
    char key[540], prev[540], next[540];
    snprintf(key, sizeof key, "%s/identity.key", dir);
    snprintf(prev, sizeof prev, "%s/identity.prev.key", dir);
    snprintf(next, sizeof next, "%s/identity.next.key", dir);
    if ((unlink(prev) != 0 && errno != ENOENT) || link(key, prev) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot keep the old key as %s: %s", prev, strerror(errno));
        return -1;
    }
    if (rename(next, key) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot make %s the node's key: %s", next, strerror(errno));
        return -1;
    }
    /* the admin token is the old key's: the restart issues one of the new key (copies of the old
     * one keep working until the overlap ends) */
    snprintf(key, sizeof key, "%s/admin.token", dir);
    if (unlink(key) != 0 && errno != ENOENT)
        log_warn("rotate: cannot remove %s (%s): it stops working when the overlap ends", key, strerror(errno));
    return 0;
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

/* After the commit point: the keys switched, identity.next.cert renamed to identity.cert. */
static int finish_switch(const char *dir, char *err, size_t errlen)
{
    char from[540], to[540];
    snprintf(from, sizeof from, "%s/" ROTATE_NEXT_CERT_FILE, dir);
    snprintf(to, sizeof to, "%s/" ROTATE_CERT_FILE, dir);
    if (switch_keys(dir, err, errlen) != 0)
        return -1;
    if (rename(from, to) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot make %s the node's certificate: %s", from, strerror(errno));
        return -1;
    }
    return 0;
}

/* The current key's certificate as JSON: DATA/identity.cert after an earlier rotation, else
 * --cert (NULL when neither is this key's). */
static json_t *own_cert_json(node_t *n)
{
    char rotated[600], e[600];
    snprintf(rotated, sizeof rotated, "%s/" ROTATE_CERT_FILE, n->cfg.data);
    const char *paths[] = {rotated, n->cfg.cert};
    for (size_t i = 0; i < 2; i++) {
        cert_t c;
        if (cert_load(paths[i], &c, e, sizeof e) != 0)
            continue;
        json_t *j = memcmp(c.node_key, n->id.pk, ID_PK_LEN) == 0 ? cert_to_json(&c) : NULL;
        cert_free(&c);
        if (j)
            return j;
    }
    return NULL;
}

int rotate_recover(const char *dir, char *err, size_t errlen)
{
    char path[540], e[600];
    snprintf(path, sizeof path, "%s/" ROTATE_NEXT_CERT_FILE, dir);
    cert_t c;
    if (access(path, F_OK) != 0)
        return 0;                                   /* no switch was committed */
    if (cert_load(path, &c, e, sizeof e) != 0) {
        snprintf(err, errlen, "a key switch was committed but %s cannot be read: %s", path, e);
        return -1;
    }
    identity_t next, cur;
    char kp[540], np[540];
    snprintf(kp, sizeof kp, "%s/identity.key", dir);
    snprintf(np, sizeof np, "%s/identity.next.key", dir);
    int rc = 0;
    if (identity_load_file(np, &next, e, sizeof e) == 0 && !memcmp(next.pk, c.node_key, ID_PK_LEN)) {
        rc = finish_switch(dir, err, errlen);      /* stopped before identity.key was replaced */
        identity_wipe(&next);
    } else if (identity_load_file(kp, &cur, e, sizeof e) == 0 && !memcmp(cur.pk, c.node_key, ID_PK_LEN)) {
        char to[540];                              /* stopped between the key and the certificate */
        snprintf(to, sizeof to, "%s/" ROTATE_CERT_FILE, dir);
        if (rename(path, to) != 0 || fsync_dir(dir) != 0) {
            snprintf(err, errlen, "cannot make %s the node's certificate: %s", path, strerror(errno));
            rc = -1;
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
    snprintf(path, sizeof path, "%s/" ROTATE_HANDOVER_FILE, dir);
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
    snprintf(path, sizeof path, "%s/" ROTATE_PREV_CERT_FILE, dir);
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

/* The running node takes the new key (its files switched already): the gossip loop (transport,
 * membership), the catalog's signer, the node's id, and an admin token of the new key. HTTP, the
 * store and local streams go on untouched. 0, or -1 with err (the caller restarts the agent). */
static int switch_live(node_t *n, const identity_t *next, const cert_t *cert, char *err, size_t errlen)
{
    if (!n->gossip || gossip_rekey(n->gossip, next, cert->bytes, cert->len, err, errlen) != 0)
        return -1;
    catalog_set_identity(n->cat, next);
    /* HTTP threads sign with a copy taken under the same lock (node_identity): old or new key
     * whole, both certified during the overlap. What only shows n->id (status pages) may read
     * it unlocked for an instant. */
    node_set_identity(n, next);
    n->cert_not_after_ms = cert->not_after_ms;
    if (auth_open(n, err, errlen) != 0)     /* admin.token, removed by switch_keys, issued again */
        log_warn("rotate: %s (the old key's admin token verifies until the overlap ends)", err);
    return 0;
}

static unsigned offer(fedlog_t *f, const uint8_t *b, size_t len, const char *what, json_t **reply)
{
    fedlog_result_t r;
    if (fedlog_offer(f, b, len, NULL, &r) == 0)
        return 0;
    unsigned st = r.reason == TRUST_FORGED || r.reason == TRUST_BELOW_THRESHOLD || r.reason == TRUST_WRONG_FEDERATION ||
                  r.reason == TRUST_REVOKED || r.reason == TRUST_ROTATED ? 403 : r.reason == FEDLOG_R_BUSY ? 503 : 409;
    return error(reply, st, fedlog_reason_name(r.reason), "%s refused by this node's federation log: %s", what, r.err);
}

/* The current key's certificate (--cert, or DATA/identity.cert after an earlier rotation) into the
 * federation log, stored and gossiped with the hand-over: a node that restarts, or a peer that
 * never met this key, can then check the hand-over's signer was the domain's. */
static unsigned offer_own(node_t *n, fedlog_t *f, json_t **reply)
{
    char rotated[600], e[600];
    snprintf(rotated, sizeof rotated, "%s/" ROTATE_CERT_FILE, n->cfg.data);
    const char *paths[] = {rotated, n->cfg.cert};
    for (size_t i = 0; i < 2; i++) {
        cert_t c;
        if (cert_load(paths[i], &c, e, sizeof e) != 0)
            continue;
        unsigned st = 0;
        int mine = memcmp(c.node_key, n->id.pk, ID_PK_LEN) == 0;
        if (mine)
            st = offer(f, c.bytes, c.len, "this node's certificate", reply);
        cert_free(&c);
        if (mine)
            return st;
    }
    return error(reply, 409, "uncertified", "neither --cert %s nor %s is this node's certificate", n->cfg.cert, rotated);
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
static atomic_int certs_posted;

unsigned rotate_request(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply)
{
    if (pthread_mutex_trylock(&mu) != 0)
        return error(reply, 409, "busy", "a key rotation is already under way on this node");
    unsigned st = rotate_locked(n, c, body, len, reply);
    pthread_mutex_unlock(&mu);
    return st;
}

void rotate_post_certs(void)
{
    atomic_store(&certs_posted, 1);
    kill(getpid(), SIGUSR1);
}

int rotate_certs_posted(void) { return atomic_exchange(&certs_posted, 0); }

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
    char *b64 = identity_load_file(path, &next, e, sizeof e) == 0 ? held_cert_b64(f, next.pk, n->cfg.domain) : NULL;
    identity_wipe(&next);
    json_t *body = b64 ? json_pack("{s:s}", "cert", b64) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *reply = NULL;
    unsigned st = text ? rotate_locked(n, NULL, text, strlen(text), &reply) : 0;
    pthread_mutex_unlock(&mu);
    if (st == 200 && json_is_true(json_object_get(reply, "restarting"))) {
        atomic_store(&restart, 1);
        kill(getpid(), SIGUSR1);
    } else if (st && st != 200)
        log_error("rotate: the federation log holds the certificate of the pending next key, but the switch "
                  "failed: %s: %s", json_string_value(json_object_get(reply, "error")),
                  json_string_value(json_object_get(reply, "detail")));
    json_decref(reply);
    free(text);
    json_decref(body);
    free(b64);
}

static unsigned rotate_locked(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply)
{
    fedlog_t *f = n->gossip ? gossip_fedlog(n->gossip) : NULL;
    trust_t *t = f ? fedlog_trust(f) : NULL;
    if (!n->cfg.charter[0] || !t)
        return error(reply, 409, "open_mode", "key rotation needs a chartered node (--charter): in open mode a "
                     "domain stays bound to the key that first published for it");
    json_error_t je;
    json_t *in = len ? json_loadb(body, len, 0, &je) : json_object();
    if (!json_is_object(in)) {
        json_decref(in);
        return error(reply, 400, "bad_request", "body: a JSON object {\"cert\": BASE64, \"overlap_s\": N} (both optional)");
    }
    json_t *jo = json_object_get(in, "overlap_s");
    const char *b64 = json_string_value(json_object_get(in, "cert"));
    json_int_t overlap_s = jo ? json_integer_value(jo) : ROTATE_DEFAULT_OVERLAP_MS / 1000;
    if ((jo && !json_is_integer(jo)) || overlap_s < 0 || overlap_s > ROTATE_MAX_OVERLAP_S) {
        json_decref(in);
        return error(reply, 400, "bad_request", "overlap_s: seconds from 0 to %lld", ROTATE_MAX_OVERLAP_S);
    }
    char path[600], e[700];
    identity_t next;
    snprintf(path, sizeof path, "%s/identity.next.key", n->cfg.data);
    struct stat sb;
    int made = stat(path, &sb) != 0;
    if (made && b64) {
        unsigned st = already_rotated(n, b64, reply);
        json_decref(in);
        return st;
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
    cert_t cert;
    if (!bytes || sodium_base642bin(bytes, blen, b64, blen, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        cert_parse(bytes, got, &cert, e, sizeof e) != 0) {
        free(bytes);
        st = error(reply, 400, "bad_request", "cert: not the base64 of a certificate's signed bytes");
        goto out;
    }
    if (memcmp(cert.node_key, next.pk, ID_PK_LEN) != 0 || strcmp(cert.domain, n->cfg.domain) != 0) {
        char have[ID_HEX_LEN];
        identity_hex(cert.node_key, have);
        st = error(reply, 400, memcmp(cert.node_key, next.pk, ID_PK_LEN) ? "wrong_key" : "wrong_domain",
                   "the certificate is for node %.16s... of domain '%s', not this node's next key %.16s... of '%s'",
                   have, cert.domain, next.hex, n->cfg.domain);
        goto cert_out;
    }
    if ((st = offer_own(n, f, reply)) != 0 || (st = offer(f, cert.bytes, cert.len, "the new certificate", reply)) != 0)
        goto cert_out;
    trust_verdict_t v = trust_entry_ok(t, n->cfg.domain, next.pk, clock_wall_ms(), e, sizeof e);
    if (v != TRUST_OK) {
        st = error(reply, 403, trust_verdict_name(v), "the new certificate is not valid now: %s", e);
        goto cert_out;
    }
    rotation_t rot;
    int64_t now = clock_wall_ms();
    if (rotation_make(&n->id, n->cfg.domain, next.pk, now, (int64_t)overlap_s * 1000, &rot, e, sizeof e) != 0) {
        st = error(reply, 500, "failed", "%s", e);
        goto cert_out;
    }
    /* durable first (the commit point is identity.next.cert), gossiped after */
    if (write_json(n->cfg.data, ROTATE_PREV_CERT_FILE, own_cert_json(n), e, sizeof e) != 0 ||
        write_json(n->cfg.data, ROTATE_HANDOVER_FILE, rotation_to_json(&rot), e, sizeof e) != 0 ||
        write_json(n->cfg.data, ROTATE_NEXT_CERT_FILE, cert_to_json(&cert), e, sizeof e) != 0 ||
        finish_switch(n->cfg.data, e, sizeof e) != 0) {
        rotation_free(&rot);
        st = error(reply, 500, "storage", "%s", e);
        goto cert_out;
    }
    fedlog_result_t fr;
    if (fedlog_offer(f, rot.bytes, rot.len, NULL, &fr) != 0)   /* switched already: the restart offers it again */
        log_error("rotate: the key was switched, but the federation log did not take the hand-over now (%s); it "
                  "is offered again when the agent starts on the new key", fr.err);
    rotation_free(&rot);
    char until[32], old_hex[ID_HEX_LEN];
    trust_time_text(now + (int64_t)overlap_s * 1000, until);
    snprintf(old_hex, sizeof old_hex, "%s", n->id.hex);
    int live = switch_live(n, &next, &cert, e, sizeof e) == 0;
    if (live)
        log_warn("rotate: domain '%s' handed over from %.16s... to %.16s... (both keys verify until %s); running "
                 "on the new key", n->cfg.domain, old_hex, next.hex, until);
    else
        log_error("rotate: domain '%s' handed over from %.16s... to %.16s... (both keys verify until %s), but the "
                  "running node could not take the new key (%s): restarting with it", n->cfg.domain, old_hex,
                  next.hex, until, e);
    *reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "state", "rotated", "node_id", next.hex, "old_node_id",
                       old_hex, "domain", n->cfg.domain, "overlap_until", until, "restarting", !live);
    st = 200;
    if (!live)
        atomic_store(&reply_conn, c);
cert_out:
    cert_free(&cert);
    free(bytes);
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
