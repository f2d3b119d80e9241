/* node/rotate.c - a running chartered node's key rotation (see node/rotate.h).
 *
 * Owns: the pending next key (made here, on the node: its secret never crosses HTTP), checking
 * the new certificate, the hand-over the current key signs, the durable key switch in the data
 * dir (write, fsync, rename, fsync the dir), and the in-place restart after the reply.
 * Must not: verify signatures itself (the federation log and trust store do), or switch keys in
 * the running process (the restart does: transport, membership and catalog start on the new key).
 *
 * Crash safety of the switch: identity.next.key is complete and fsynced before anything else
 * (identity_create_file); identity.cert is written to a temporary file, fsynced and renamed;
 * identity.key is hard-linked to identity.prev.key, then identity.next.key is renamed over
 * identity.key, and the dir fsynced after each. A crash leaves identity.key either the old key
 * (with identity.next.key still there: run the rotation again) or the new one. */
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
#include "gossip/fedlog.h"
#include "gossip/gossip.h"
#include "gossip/log.h"

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

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes text to dir/name durably: a temporary file, fsync, rename, fsync of the dir. */
static int write_durable(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
    char tmp[540], path[540];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    size_t n = strlen(text), off = 0;
    while (fd >= 0 && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int bad = fd < 0 || off < n || fsync(fd) != 0;
    if (fd >= 0)
        close(fd);
    if (bad || rename(tmp, path) != 0 || fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
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

/* One rotation at a time: two at once would both switch keys, and the second would keep the new
 * key as identity.prev.key, losing the old one. */
unsigned rotate_request(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (pthread_mutex_trylock(&mu) != 0)
        return error(reply, 409, "busy", "a key rotation is already under way on this node");
    unsigned st = rotate_locked(n, c, body, len, reply);
    pthread_mutex_unlock(&mu);
    return st;
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
    st = offer(f, rot.bytes, rot.len, "the hand-over", reply);
    rotation_free(&rot);
    if (st != 0)
        goto cert_out;
    json_t *cj = cert_to_json(&cert);
    char *text = cj ? json_dumps(cj, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cj);
    int bad = !text || write_durable(n->cfg.data, ROTATE_CERT_FILE, text, e, sizeof e) != 0 ||
              switch_keys(n->cfg.data, e, sizeof e) != 0;
    int oom = !text;
    free(text);
    if (bad) {
        st = error(reply, 500, "storage", "%s", oom ? "out of memory" : e);
        goto cert_out;
    }
    char until[32];
    trust_time_text(now + (int64_t)overlap_s * 1000, until);
    log_warn("rotate: domain '%s' handed over from %.16s... to %.16s... (both keys verify until %s); restarting "
             "with the new key", n->cfg.domain, n->id.hex, next.hex, until);
    *reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "state", "rotated", "node_id", next.hex, "old_node_id",
                       n->id.hex, "domain", n->cfg.domain, "overlap_until", until, "restarting", 1);
    st = 200;
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
