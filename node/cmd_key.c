/* node/cmd_key.c - trib key rotate: on a running node (--data DIR [--node URL] [--cert FILE]
 * [--overlap DUR]: asks the agent, POST /v1/node/key/rotate with DIR/admin.token), or offline
 * (--data DIR --domain D --out FILE [--overlap-hours H] [--effective TIME] [--cert FILE]: the
 * hand-over as a trib.rotation file, refused while DIR's agent runs: it holds DATA/agent.lock). See
 * node/cmd_key.h, node/rotate.h.
 *
 * Owns: the options, the offline next key (DIR/identity.next.key, 0600, made once and reused; the
 * agent uses the same file) and offline hand-over; asking the agent and waiting for it to come
 * back on the new key.
 * Must not: change DIR/identity.key (the agent does, node/rotate.c), send a secret key, or print
 * one. */
#include "node/cmd_key.h"

#include <errno.h>
#include <jansson.h>
#include <unistd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "node/cli.h"
#include "node/client.h"
#include "node/datalock.h"

enum { K_OK = 0, K_FAIL = 1, K_USAGE = 2 };

void key_cmd_usage(FILE *f)
{
    fprintf(f, "  %-12s %s\n", "key rotate", "rotate a running node's key (or prepare the hand-over offline)");
}

static void help(FILE *f)
{
    fprintf(f, "usage: trib key rotate --data DIR [--node URL] [--cert FILE | --wait] [--overlap DUR]   (a running node)\n"
               "       trib key rotate --data DIR --domain D --out FILE [--overlap-hours H] [--effective TIME]"
               " [--cert FILE]\n\n"
               "On a running chartered node (no --out): asks the agent (--node, else $TRIB_NODE, with\n"
               "DIR/admin.token). Without --cert the agent makes its next key (DIR/identity.next.key) and\n"
               "the new node id is printed, for `trib fed certify --node NEW --prev-serial OLD_SERIAL`.\n"
               "With --cert NEW.cert the old key signs the hand-over, the federation holds both, the new\n"
               "key becomes DIR/identity.key (the old one DIR/identity.prev.key) and the running agent\n"
               "switches to it live (HTTP, streams and writes go on; it restarts in place only if the\n"
               "switch fails); both keys verify for DUR (default 24h; N followed by s, m, h or d), after\n"
               "which peers refuse the old key. Waits until the node answers with the new key. A switch\n"
               "that fails leaves the node on its old key, the rotation pending (run it again).\n"
               "Without --cert the switch also happens by itself once the node's federation log holds\n"
               "the new certificate (`trib fed submit NEW.cert` on any node), with the --overlap given\n"
               "when the rotation was started (kept in DIR/identity.next.json), or when the certificate\n"
               "becomes valid if it is not yet; --wait then polls until the node runs on the new key\n"
               "(Ctrl-C stops waiting only).\n\n"
               "Offline (--out):\n"
               "Makes the node's next key (DIR/identity.next.key, mode 0600; kept and reused by later runs)\n"
               "and a hand-over signed by its current key (DIR/identity.key): domain D moves to the new key\n"
               "from TIME (default now), both keys verifying for H hours (default 24). Prints the new node\n"
               "id for `trib fed certify --node NEW --prev-serial OLD_SERIAL`. Hand FILE and the new\n"
               "certificate to any node with `trib fed submit`. With --cert, the certificate must be for\n"
               "the new key and domain D. For a node that is not running: refused while DIR's agent runs\n"
               "(rotate it online, above). The hand-over needs a chartered federation: a node in open mode\n"
               "refuses it (409 open_mode); DIR does not say which mode its agent ran in (docs/operators.md §6).\n\n"
               "options:\n"
               "  --data DIR               the node's data dir\n"
               "  --node URL               the running node (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")\n"
               "  --overlap DUR            a running node: both keys verify this long (default: the one\n"
               "                           given when the rotation started, else 24h)\n"
               "  --wait                   a running node, no --cert: wait until it runs on the new key\n"
               "  --domain D               the node's domain\n"
               "  --out FILE               the hand-over file to create (trib.rotation)\n"
               "  --overlap-hours H        both keys verify for H hours (default 24, at most 2160)\n"
               "  --effective TIME         from when the new key signs (UTC, default now)\n"
               "  --cert FILE              check that this certificate is for the new key\n"
               "  -h, --help               show this help\n\n"
               "examples:\n  trib key rotate --data ./payments --node 127.0.0.1:7480\n"
               "  trib key rotate --data ./payments --node 127.0.0.1:7480 --cert payments-next.cert\n"
               "  trib key rotate --data ./payments --domain payments --out payments-rotate.json\n");
}

static int fail(FILE *err, const char *what)
{
    fprintf(err, "trib: key rotate: %s\n", what);
    return K_FAIL;
}

/* ---------------------------------------------------------------- a running node */

static int parse_dur(const char *s, long long *sec)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    long long mul = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
    if (errno || end == s || v < 0 || !mul || end[1] || v > 90LL * 86400 / mul)
        return -1;
    *sec = v * mul;
    return 0;
}

/* The admin token of the node in dir (DIR/admin.token, written by the agent, mode 0600), read as
 * --token-file reads one (token_file_read). */
static int read_token(const char *dir, char *tok, size_t cap, FILE *err)
{
    char path[600], why[700];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    char *t = token_file_read(path, why, sizeof why);
    if (t && strlen(t) >= cap)
        snprintf(why, sizeof why, "%s: longer than %zu bytes", path, cap - 1);
    if (!t || strlen(t) >= cap) {
        fprintf(err, "trib: key rotate: cannot read the node's admin token: %s\n", why);
        if (t)
            sodium_memzero(t, strlen(t));
        free(t);
        return -1;
    }
    snprintf(tok, cap, "%s", t);
    sodium_memzero(t, strlen(t));
    free(t);
    return 0;
}

static json_t *ask(const char *base, const char *method, const char *path, const char *body, long *status,
                   char *e, size_t elen)
{
    client_req_t rq = {.method = method, .path = path, .content_type = body ? "application/json" : NULL,
                       .body = body, .body_len = body ? strlen(body) : 0, .upload_len = -1};
    client_reply_t rep;
    int rc = client_request(base, &rq, &rep, e, elen);
    json_t *j = rc == 0 ? json_loads(rep.body ? rep.body : "", 0, NULL) : NULL;
    *status = rc == 0 ? rep.status : 0;
    if (rc == 0 && !j)
        snprintf(e, elen, "%s answered HTTP %ld with a body that is not JSON", base, rep.status);
    client_reply_free(&rep);
    return j;
}

/* Polls base's /v1/status until it says node_id want (the agent restarted on the new key). */
static int wait_for(const char *base, const char *want, int forever)
{
    char e[300];
    for (int i = 0; forever || i < 600; i++) {   /* 60 s */
        long st;
        json_t *j = ask(base, "GET", "/v1/status", NULL, &st, e, sizeof e);
        const char *id = json_string_value(json_object_get(j, "node_id"));
        int ok = st == 200 && id && !strcmp(id, want);
        json_decref(j);
        if (ok)
            return 0;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int live(const char *data, const char *node, const char *certp, const char *dur, int wait, FILE *out,
                FILE *err)
{
    char base[512], e[700], tok[TOKEN_MAX_TEXT + 1];
    long long overlap = ROTATE_DEFAULT_OVERLAP_MS / 1000;
    if (dur && parse_dur(dur, &overlap) != 0) {
        fprintf(err, "trib: key rotate: --overlap '%s': N followed by s, m, h or d (at most 90d)\n", dur);
        return K_USAGE;
    }
    if (!node || !*node)
        node = getenv("TRIB_NODE");
    if (client_base_url(node && *node ? node : CLI_DEFAULT_NODE, CLI_DEFAULT_PORT, base, sizeof base, e, sizeof e)) {
        fprintf(err, "trib: key rotate: --node: %s\n", e);
        return K_USAGE;
    }
    if (read_token(data, tok, sizeof tok, err) != 0)
        return K_FAIL;
    /* --overlap given: the agent keeps it with the pending rotation; else it uses the one kept */
    json_t *body = dur ? json_pack("{s:I}", "overlap_s", (json_int_t)overlap) : json_object();
    if (certp) {
        cert_t c;
        if (cert_load(certp, &c, e, sizeof e) != 0) {
            json_decref(body);
            return fail(err, e);
        }
        size_t cap = sodium_base64_ENCODED_LEN(c.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (b64)
            sodium_bin2base64(b64, cap, c.bytes, c.len, sodium_base64_VARIANT_ORIGINAL);
        cert_free(&c);
        if (!b64) {
            json_decref(body);
            return fail(err, "out of memory");
        }
        json_object_set_new(body, "cert", json_string(b64));
        free(b64);
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text || client_global_init(e, sizeof e) != 0) {
        free(text);
        return fail(err, text ? e : "out of memory");
    }
    client_set_token(tok);
    sodium_memzero(tok, sizeof tok);
    long st;
    json_t *j = ask(base, "POST", "/v1/node/key/rotate", text, &st, e, sizeof e);
    free(text);
    int rc = K_OK;
    const char *state = json_string_value(json_object_get(j, "state"));
    if (!j || (st != 200 && st != 202) || !state) {
        const char *kind = json_string_value(json_object_get(j, "error"));
        const char *det = json_string_value(json_object_get(j, "detail"));
        if (st > 0)   /* the node's refusal as every command prints one: STATUS CODE: DETAIL */
            fprintf(err, "trib: key rotate: %ld %s: %s\n", st, kind ? kind : "refused", det ? det : e);
        else
            fprintf(err, "trib: key rotate: %s\n", e);
        rc = K_FAIL;
    } else if (!strcmp(state, "pending")) {
        const char *nid = json_string_value(json_object_get(j, "new_node_id"));
        const char *ser = json_string_value(json_object_get(j, "prev_serial"));
        const char *dom = json_string_value(json_object_get(j, "domain"));
        fprintf(out, "%s\n", nid ? nid : "");
        fprintf(err, "the node's next key is ready (%s/identity.next.key); the line above is its node id.\n"
                     "next: trib fed certify --charter CHARTER --root ... --domain %s --node %s --prev-serial %s"
                     " --out NEW.cert\n      trib key rotate --data %s --node %s --cert NEW.cert\n",
                data, dom ? dom : "?", nid ? nid : "?", ser && *ser ? ser : "OLD_SERIAL", data, base);
        if (wait && nid) {
            fflush(out);
            fprintf(err, "waiting until the node runs on it (its certificate submitted anywhere completes the "
                         "rotation; Ctrl-C stops waiting, the rotation stays pending)...\n");
            wait_for(base, nid, 1);
            fprintf(err, "rotated: the node runs with the key above\n");
        }
    } else {
        const char *nid = json_string_value(json_object_get(j, "node_id"));
        const char *until = json_string_value(json_object_get(j, "overlap_until"));
        if (!nid || wait_for(base, nid, 0) != 0) {
            fprintf(err, "trib: key rotate: the key was rotated, but the node at %s did not come back on it within "
                         "60 s: see its log; starting it again makes it run with the new key\n", base);
            rc = K_FAIL;
        } else {
            fprintf(out, "%s\n", nid);
            fprintf(err, "rotated: the node runs with the key above; the old key verifies until %s\n",
                    until ? until : "?");
        }
    }
    json_decref(j);
    client_global_cleanup();
    return rc;
}

/* ---------------------------------------------------------------- entry */

int key_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 2 || strcmp(argv[1], "rotate") != 0) {
        int h = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(h ? out : err, "usage: trib key rotate --data DIR --domain D --out FILE ...\n");
        if (!h)
            fprintf(err, "trib: key: unknown or missing subcommand\ntry 'trib key rotate --help'\n");
        return h ? K_OK : K_USAGE;
    }
    const char *data = NULL, *domain = NULL, *outp = NULL, *certp = NULL, *eff = NULL, *overlap = NULL;
    const char *node = NULL, *dur = NULL;
    int wait = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--wait")) {
            wait = 1;
            continue;
        }
        const char **slot = !strcmp(a, "--data") ? &data : !strcmp(a, "--domain") ? &domain
                          : !strcmp(a, "--out") ? &outp : !strcmp(a, "--cert") ? &certp
                          : !strcmp(a, "--effective") ? &eff : !strcmp(a, "--overlap-hours") ? &overlap
                          : !strcmp(a, "--node") ? &node : !strcmp(a, "--overlap") ? &dur : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(out);
            return K_OK;
        }
        if (!slot || i + 1 >= argc || *slot) {
            fprintf(err, "trib: key rotate: %s '%s'\ntry 'trib key rotate --help'\n",
                    !slot ? "unknown option" : *slot ? "option given twice:" : "option needs a value:", a);
            return K_USAGE;
        }
        *slot = argv[++i];
    }
    if (wait && (certp || outp)) {
        fprintf(err, "trib: key rotate: --wait is for a running node's pending rotation (without --cert, --out)\n");
        return K_USAGE;
    }
    if (data && !outp && !domain && !eff && !overlap)
        return live(data, node, certp, dur, wait, out, err);
    if (node || dur) {
        fprintf(err, "trib: key rotate: --node and --overlap are for a running node (without --out)\n");
        return K_USAGE;
    }
    if (!data) {   /* both forms need it; the running node's form needs nothing more */
        fprintf(err, "trib: key rotate: --data DIR is required (a running node: --data DIR [--node URL]; "
                     "offline: --data DIR --domain D --out FILE)\ntry 'trib key rotate --help'\n");
        return K_USAGE;
    }
    if (!domain || !outp) {
        fprintf(err, "trib: key rotate: offline (--out, --domain, --effective, --overlap-hours), both --domain and "
                     "--out are required\ntry 'trib key rotate --help'\n");
        return K_USAGE;
    }
    if (sodium_init() < 0)
        return fail(err, "sodium_init failed");
    char e[700], path[600], nextp[600];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, eff_ms = now;
    long hours = 24;
    if (overlap) {
        char *end;
        errno = 0;
        hours = strtol(overlap, &end, 10);
        if (errno || *end || end == overlap || hours < 0 || hours > 2160) {
            fprintf(err, "trib: key rotate: --overlap-hours '%s': expected 0 to 2160\n", overlap);
            return K_USAGE;
        }
    }
    if (eff && trust_time_parse(eff, &eff_ms) != 0) {
        fprintf(err, "trib: key rotate: --effective '%s': expected a UTC time like 2026-12-05T10:00:00Z\n", eff);
        return K_USAGE;
    }
    identity_t old, next;
    snprintf(path, sizeof path, "%s/identity.key", data);
    if (identity_load_file(path, &old, e, sizeof e) != 0)
        return fail(err, e);
    /* the agent's lock, held until the end: offline preparation is for a node that is not running
     * (an agent would not know of the next key written under it); a start meanwhile is refused */
    long holder;
    int lock = datalock_hold(data, &holder, e, sizeof e);
    if (lock < 0) {
        identity_wipe(&old);
        if (holder < 0)
            return fail(err, e);
        fprintf(err, "trib: key rotate: %s: offline preparation (--out) is for a node that is not running; nothing "
                     "was written. Rotate the running node's key online instead: trib key rotate --data %s --node "
                     "URL (docs/operators.md §6), or stop the agent first\n", e, data);
        return K_FAIL;
    }
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", data);
    struct stat st;
    int made = 0;
    if (stat(nextp, &st) == 0) {
        if (identity_load_file(nextp, &next, e, sizeof e) != 0) {
            identity_wipe(&old);
            close(lock);
            return fail(err, e);
        }
    } else if (identity_create_file(nextp, &next, e, sizeof e) != 0) {
        identity_wipe(&old);
        close(lock);
        return fail(err, e);
    } else {
        made = 1;
    }
    int rc = K_OK;
    char msg[900];
    if (certp) {
        cert_t c;
        if (cert_load(certp, &c, e, sizeof e) != 0) {
            rc = fail(err, e);
            goto out;
        }
        char have[ID_HEX_LEN];
        identity_hex(c.node_key, have);
        if (memcmp(c.node_key, next.pk, ID_PK_LEN) != 0 || strcmp(c.domain, domain) != 0) {
            snprintf(msg, sizeof msg, "%s: certifies node %.16s for domain %s, not the new key %.16s for %s", certp,
                     have, c.domain, next.hex, domain);
            cert_free(&c);
            rc = fail(err, msg);
            goto out;
        }
        cert_free(&c);
    }
    rotation_t r;
    if (rotation_make(&old, domain, next.pk, eff_ms, (int64_t)hours * 3600000, &r, e, sizeof e) != 0) {
        rc = fail(err, e);
        goto out;
    }
    json_t *view = rotation_to_json(&r);
    if (!view || trust_file_write(outp, view, e, sizeof e) != 0) {
        json_decref(view);
        rotation_free(&r);
        rc = fail(err, view ? e : "out of memory");
        goto out;
    }
    json_decref(view);
    rotation_free(&r);
    fprintf(out, "%s\n", next.hex);
    fprintf(err, "%s %s (mode 0600); the line above is the new node id\n"
                 "wrote %s: domain %s moves from %.16s to %.16s, both keys verify for %ld h\n"
                 "next: trib fed certify ... --domain %s --node %s --prev-serial OLD_SERIAL --out NEW.cert;\n"
                 "      trib fed submit %s; trib fed submit NEW.cert\n",
            made ? "created" : "reused", nextp, outp, domain, old.hex, next.hex, hours, domain, next.hex, outp);
out:
    close(lock);
    identity_wipe(&old);
    identity_wipe(&next);
    return rc;
}
