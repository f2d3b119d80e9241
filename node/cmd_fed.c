/* node/cmd_fed.c - the offline trust commands: trib keygen, trib identity, trib fed init |
 * certify | revoke | show (DESIGN.md §12, docs/federation.md).
 *
 * Owns: their table and help, option parsing (repeatable options such as --root), loading key
 * arguments (a key file, or for keys that only need to be named, a 64-hex public key), and
 * printing what was written or read. The objects themselves are made and checked by
 * gossip/charter.c and gossip/cert.c.
 * Must not: talk to a node, overwrite a file, or print a secret key. */
#include "node/cmd_fed.h"
#include "node/cmd_fednode.h"
#include "node/cmd_key.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/clock.h"
#include "gossip/identity.h"
#include "node/cli_opts.h"
#include "storage/store.h"

enum { FED_OK = 0, FED_FAIL = 1, FED_USAGE = 2 };

#define DAY_MS   86400000LL

typedef struct fcmd fcmd_t;

typedef struct {
    const fcmd_t *cmd;
    FILE *out, *err;
    opts_t a;             /* options and positional arguments */
} fctx_t;

struct fcmd {
    const char *name;     /* as typed after "trib": "keygen", "fed init" */
    const char *synopsis;
    const char *summary;
    const char *about;
    opts_row_t opts[OPTS_MAX];
    size_t min_pos, max_pos;
    const char *example;
    int (*run)(fctx_t *c);
};

static int run_keygen(fctx_t *c);
static int run_identity(fctx_t *c);
static int run_init(fctx_t *c);
static int run_certify(fctx_t *c);
static int run_revoke(fctx_t *c);
static int run_update(fctx_t *c);
static int run_show(fctx_t *c);

#define OPT_CHARTER(h) { "charter", "FILE", 0, h }
#define OPT_ROOTS { "root", "KEYFILE", 1, "a root key file to sign with (repeat: a threshold of the charter's roots)" }
#define OPT_OUT(h) { "out", "FILE", 0, h }

static const fcmd_t commands[] = {
    { "keygen", "--out FILE",
      "make an Ed25519 key file (root, governance or node key)",
      "Makes a new Ed25519 key pair and writes it to FILE with mode 0600, refusing to\n"
      "overwrite. Prints the public key (the node id form: 64 hex characters). Keep root and\n"
      "governance keys off the nodes.",
      { OPT_OUT("the key file to create") }, 0, 0,
      "trib keygen --out root1.key", run_keygen },
    { "identity", "--data DIR",
      "print a data dir's node id, creating the identity if missing",
      "Loads DIR/identity.key (the key `trib agent --data DIR` uses), or creates it (mode\n"
      "0600, and DIR itself, mode 0700) when missing, and prints the node id. Give that id to\n"
      "the federation's root holders for `trib fed certify --node`.",
      { { "data", "DIR", 0, "the node's data dir" } }, 0, 0,
      "trib identity --data ./payments", run_identity },
    { "fed init", "--root KEY... --threshold N [--governance KEY...] [--governance-threshold N] --out FILE",
      "create a federation: a charter signed by a threshold of its roots",
      "Creates version 1 of a federation charter: a new federation id, the root keys (sign\n"
      "certificates, revocations and charter updates), the governance keys (sign global\n"
      "policies) and their thresholds. A KEY is a key file, or a root's or governance key's\n"
      "public key (64 hex) when its holder signs elsewhere; the root key files given sign the\n"
      "charter, and at least --threshold of them are needed.",
      { { "root", "KEY", 1, "a root key file or public key (repeat)" },
        { "threshold", "N", 0, "root signatures needed (1 to the number of roots)" },
        { "governance", "KEY", 1, "a governance key file or public key (repeat)" },
        { "governance-threshold", "N", 0, "governance signatures needed (default 1)" },
        OPT_OUT("the charter file to create (charter.json)") }, 0, 0,
      "trib fed init --root root1.key --root root2.key --threshold 2 --governance gov1.key --out charter.json",
      run_init },
    { "fed certify", "--charter FILE --root KEYFILE... --domain D --node NODE_ID [--days N] [--prev-serial S] --out FILE",
      "certify that a node key may act for a domain",
      "Makes a domain certificate: NODE_ID (from `trib identity`) may act for domain D from\n"
      "now for N days (default 90), signed by a threshold of the charter's roots. With\n"
      "--prev-serial it continues an earlier certificate of the domain (key rotation).",
      { OPT_CHARTER("the federation's charter.json"), OPT_ROOTS,
        { "domain", "D", 0, "the domain (" STORE_NAME_RULE ")" },
        { "node", "NODE_ID", 0, "the node's id (64 hex)" },
        { "days", "N", 0, "validity in days (default 90, at most 3660)" },
        { "prev-serial", "S", 0, "serial of the certificate this one rotates from" },
        OPT_OUT("the certificate file to create (D.cert)") }, 0, 0,
      "trib fed certify --charter charter.json --root root1.key --root root2.key --domain payments --node NODE_ID --out payments.cert",
      run_certify },
    { "fed revoke", "--charter FILE --root KEYFILE... (--node NODE_ID | --serial S) [--effective TIME] [--reason TEXT] --out FILE",
      "revoke a node key or one certificate",
      "Makes a revocation of every certificate of a node key (--node) or of one certificate\n"
      "(--serial), signed by a threshold of the charter's roots. Entries signed from TIME on\n"
      "(default now; form 2026-12-05T10:00:00Z) are to be refused; earlier ones stay valid.",
      { OPT_CHARTER("the federation's charter.json"), OPT_ROOTS,
        { "node", "NODE_ID", 0, "revoke this node key" },
        { "serial", "S", 0, "revoke this certificate (16 hex, as `trib fed show` prints)" },
        { "effective", "TIME", 0, "from when (UTC, default now)" },
        { "reason", "TEXT", 0, "why, for the operators (at most 200 characters)" },
        OPT_OUT("the revocation file to create (rev.json)") }, 0, 0,
      "trib fed revoke --charter charter.json --root root1.key --root root2.key --node NODE_ID --out rev.json",
      run_revoke },
    { "fed update", "--charter FILE --root KEYFILE... [--add-root KEY]... [--remove-root KEY]... [--threshold N] [--add-governance KEY]... [--remove-governance KEY]... [--governance-threshold N] --out FILE",
      "make the next version of the charter (add or remove keys, thresholds)",
      "Makes version N+1 of the charter, chained to FILE by its hash. It must be signed by a\n"
      "threshold of the current roots AND a threshold of the new version's roots (a removed root\n"
      "cannot sign for the next; a new root set that cannot sign is refused). Thresholds not\n"
      "given stay as they are. Nodes are to take it as an update of the charter they hold.",
      { OPT_CHARTER("the current charter.json"),
        { "root", "KEYFILE", 1, "a root key file to sign with (current or new root; repeat)" },
        { "add-root", "KEY", 1, "a root key file or public key to add (repeat)" },
        { "remove-root", "KEY", 1, "a root key file or public key to remove (repeat)" },
        { "threshold", "N", 0, "root signatures needed from this version on" },
        { "add-governance", "KEY", 1, "a governance key to add (repeat)" },
        { "remove-governance", "KEY", 1, "a governance key to remove (repeat)" },
        { "governance-threshold", "N", 0, "governance signatures needed from this version on" },
        OPT_OUT("the new charter file to create") }, 0, 0,
      "trib fed update --charter charter.json --root root1.key --root root2.key --add-root root3.key --out charter-v2.json",
      run_update },
    { "fed show", "FILE [--charter FILE] [--json]",
      "print a charter, certificate or revocation, and whether it verifies",
      "Prints a charter, certificate or revocation file. With --charter, also whether it\n"
      "verifies against that charter now (exit 1 when it does not): a certificate's\n"
      "signatures, federation and validity window; a revocation's signatures; a charter as\n"
      "the same version or the next one.",
      { OPT_CHARTER("the charter to verify against"),
        { "json", NULL, 0, "print the file's fields as JSON" } }, 1, 1,
      "trib fed show payments.cert --charter charter.json", run_show },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* ================================================================ messages */

static int fail(fctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(fctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd->name);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return FED_FAIL;
}

static int usage(fctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(fctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd->name);
    vfprintf(c->err, fmt, ap);
    fprintf(c->err, "\ntry 'trib %s --help'\n", c->cmd->name);
    va_end(ap);
    return FED_USAGE;
}

static void command_help(const fcmd_t *cmd, FILE *f)
{
    fprintf(f, "usage: trib %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    opts_help(cmd->opts, 24, f);
    fprintf(f, "  %-24s %s\n\nexample:\n  %s\n", "-h, --help", "show this help", cmd->example);
}

void fed_usage(FILE *f)
{
    fprintf(f, "\nTrust (offline, on the governance machine or beside a data dir):\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fednode_usage(f);
    key_cmd_usage(f);
}

/* ================================================================ arguments */

static int parse_args(fctx_t *c, int argc, char **argv)
{
    char msg[256];
    if (opts_parse(&c->a, c->cmd->opts, c->cmd->max_pos, argc, argv, msg, sizeof msg) != 0)
        return usage(c, "%s", msg);
    if (c->a.npos < c->cmd->min_pos)
        return usage(c, "missing argument: trib %s %s", c->cmd->name, c->cmd->synopsis);
    return FED_OK;
}

static const char *opt(const fctx_t *c, const char *name) { return opts_get(&c->a, name); }

static int need(fctx_t *c, const char *name, const char **out)
{
    *out = opt(c, name);
    if (*out == NULL || **out == '\0')
        return usage(c, "--%s is required", name);
    return FED_OK;
}

/* An integer option in [lo, hi]; def when absent. */
static int opt_uint(fctx_t *c, const char *name, long lo, long hi, long def, long *out)
{
    const char *s = opt(c, name);
    char *end;
    if (s == NULL) {
        *out = def;
        return FED_OK;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return usage(c, "--%s '%s': expected a whole number from %ld to %ld", name, s, lo, hi);
    *out = v;
    return FED_OK;
}

/* "2026-12-05T10:00:00Z" or with ".mmm" before the Z. */
static int parse_time(const char *s, int64_t *ms)
{
    char buf[32];
    if (strlen(s) == 20 && s[19] == 'Z') {
        snprintf(buf, sizeof buf, "%.19s.000Z", s);
        s = buf;
    }
    return trust_time_parse(s, ms);
}

/* A key argument: a key file (secret, *secret = 1), or when no such file exists and
 * allow_public, a 64-hex public key (*secret = 0). */
static int load_key(fctx_t *c, const char *arg, int allow_public, identity_t *id, int *secret)
{
    char e[PATH_MAX + 128];
    struct stat st;
    *secret = 0;
    memset(id, 0, sizeof *id);
    if (stat(arg, &st) != 0 && errno == ENOENT && identity_from_hex(arg, id->pk) == 0) {
        if (!allow_public)
            return fail(c, "%.16s...: a public key cannot sign; give the key file", arg);
        identity_hex(id->pk, id->hex);
        return FED_OK;
    }
    if (identity_load_file(arg, id, e, sizeof e) != 0)
        return fail(c, "%s", e);
    *secret = 1;
    return FED_OK;
}

/* Loads --root key files (all secret) into ids; 0 or an exit code. */
static int load_roots(fctx_t *c, const charter_t *ch, const char *chpath, identity_t *ids,
                      const identity_t **ptrs, size_t *n)
{
    const char *const *v = opts_all(&c->a, "root", n);
    int secret;
    if (v == NULL)
        return usage(c, "--root is required (a threshold of the charter's root key files)");
    for (size_t i = 0; i < *n; i++) {
        int rc = load_key(c, v[i], 0, &ids[i], &secret);
        if (rc != FED_OK)
            return rc;
        if (!charter_is_root(ch, ids[i].pk))
            return fail(c, "%s: key %.16s... is not a root of %s (version %llu)", v[i], ids[i].hex,
                        chpath, (unsigned long long)ch->version);
        ptrs[i] = &ids[i];
    }
    if (*n < ch->threshold)
        return fail(c, "%s needs %u root signatures (its threshold), %zu --root given", chpath,
                    ch->threshold, *n);
    return FED_OK;
}

static void wipe_all(identity_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        identity_wipe(&ids[i]);
}

/* Writes a view to path and says so on stderr. */
static int write_file(fctx_t *c, const char *path, json_t *view)
{
    char e[PATH_MAX + 128];
    if (view == NULL)
        return fail(c, "%s: out of memory", path);
    int rc = trust_file_write(path, view, e, sizeof e);
    json_decref(view);
    return rc == 0 ? FED_OK : fail(c, "%s", e);
}

/* ================================================================ keygen, identity */

static int run_keygen(fctx_t *c)
{
    const char *out;
    char e[PATH_MAX + 128];
    identity_t id;
    int rc = need(c, "out", &out);
    if (rc != FED_OK)
        return rc;
    if (identity_create_file(out, &id, e, sizeof e) != 0)
        return fail(c, "%s", e);
    fprintf(c->out, "%s\n", id.hex);
    fprintf(c->err, "wrote %s (mode 0600); the line above is its public key\n", out);
    identity_wipe(&id);
    return FED_OK;
}

static int run_identity(fctx_t *c)
{
    const char *dir;
    char e[PATH_MAX + 128];
    identity_t id;
    int created = 0, rc = need(c, "data", &dir);
    if (rc != FED_OK)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(c, "cannot create data dir %s: %s", dir, strerror(errno));
    if (identity_load_or_create(dir, &id, &created, e, sizeof e) != 0)
        return fail(c, "%s", e);
    fprintf(c->out, "%s\n", id.hex);
    if (created)
        fprintf(c->err, "created %s/identity.key (mode 0600)\n", dir);
    identity_wipe(&id);
    return FED_OK;
}

/* ================================================================ fed init */

static int run_init(fctx_t *c)
{
    const char *out, *thr_text;
    size_t nroot = 0, ngov = 0, nsign = 0;
    long thr, gthr;
    identity_t ids[2 * OPTS_VALS];
    const identity_t *signers[OPTS_VALS];
    char e[PATH_MAX + 256];
    charter_t d;
    int secret, rc;

    memset(&d, 0, sizeof d);
    if ((rc = need(c, "out", &out)) != FED_OK || (rc = need(c, "threshold", &thr_text)) != FED_OK)
        return rc;
    const char *const *roots = opts_all(&c->a, "root", &nroot);
    const char *const *gov = opts_all(&c->a, "governance", &ngov);
    if (roots == NULL)
        return usage(c, "--root is required (at least one root key)");
    if ((rc = opt_uint(c, "threshold", 1, (long)nroot, 0, &thr)) != FED_OK)
        return rc;
    if (opt(c, "governance-threshold") && ngov == 0)
        return usage(c, "--governance-threshold given without --governance");
    if ((rc = opt_uint(c, "governance-threshold", 1, ngov ? (long)ngov : 1, ngov ? 1 : 0, &gthr)) != FED_OK)
        return rc;
    for (size_t i = 0; i < nroot + ngov; i++) {
        const char *arg = i < nroot ? roots[i] : gov[i - nroot];
        if ((rc = load_key(c, arg, 1, &ids[i], &secret)) != FED_OK)
            goto out;
        for (size_t j = 0; j < i; j++)
            if (memcmp(ids[j].pk, ids[i].pk, ID_PK_LEN) == 0) {
                rc = fail(c, "%s: the same key as %s (a key has one role, given once)", arg,
                          j < nroot ? roots[j] : gov[j - nroot]);
                goto out;
            }
        memcpy(d.keys[d.nkeys].key, ids[i].pk, ID_PK_LEN);
        d.keys[d.nkeys++].role = i < nroot ? CHARTER_ROLE_ROOT : CHARTER_ROLE_GOVERNANCE;
        if (i < nroot && secret)
            signers[nsign++] = &ids[i];
    }
    if (nsign < (size_t)thr) {
        rc = fail(c, "%zu root key file%s given, the charter needs %ld signatures (the others were "
                  "public keys: each root signing needs its key file here)", nsign,
                  nsign == 1 ? "" : "s", thr);
        goto out;
    }
    randombytes_buf(d.fed_id, FED_ID_LEN);
    d.threshold = (uint32_t)thr;
    d.gov_threshold = (uint32_t)gthr;
    d.issued_ms = clock_wall_ms();
    if (charter_sign(NULL, &d, signers, nsign, e, sizeof e) != 0) {
        rc = fail(c, "%s", e);
        goto out;
    }
    rc = write_file(c, out, charter_to_json(&d));
    if (rc == FED_OK) {
        char fed[2 * FED_ID_LEN + 1];
        trust_hex(d.fed_id, FED_ID_LEN, fed);
        fprintf(c->out, "wrote %s: federation %s, version 1, %zu root%s (threshold %ld), "
                "%zu governance key%s (threshold %ld), signed by %zu roots\n", out, fed, nroot,
                nroot == 1 ? "" : "s", thr, ngov, ngov == 1 ? "" : "s", gthr, d.nsigners);
    }
out:
    charter_free(&d);
    wipe_all(ids, nroot + ngov);
    return rc;
}

/* ================================================================ fed certify, revoke */

static int load_charter(fctx_t *c, const char **path, charter_t *ch)
{
    char e[PATH_MAX + 400];
    int rc = need(c, "charter", path);
    if (rc != FED_OK)
        return rc;
    if (charter_load(*path, ch, e, sizeof e) != TRUST_OK)
        return fail(c, "%s", e);
    return FED_OK;
}

static int run_certify(fctx_t *c)
{
    const char *chpath, *domain, *node, *out, *prev = opt(c, "prev-serial");
    identity_t ids[OPTS_VALS];
    const identity_t *ptrs[OPTS_VALS];
    uint8_t key[ID_PK_LEN];
    uint64_t prev_serial = 0;
    size_t n = 0;
    long days;
    char e[PATH_MAX + 400];
    charter_t ch;
    cert_t cert;
    int rc;

    memset(&ch, 0, sizeof ch);
    memset(&cert, 0, sizeof cert);
    if ((rc = need(c, "domain", &domain)) != FED_OK || (rc = need(c, "node", &node)) != FED_OK ||
        (rc = need(c, "out", &out)) != FED_OK ||
        (rc = opt_uint(c, "days", 1, CERT_MAX_DAYS, CERT_DEFAULT_DAYS, &days)) != FED_OK)
        return rc;
    if (identity_from_hex(node, key) != 0)
        return usage(c, "--node '%.70s': expected a node id (64 hex characters, from trib identity)", node);
    if (prev && cert_serial_parse(prev, &prev_serial) != 0)
        return usage(c, "--prev-serial '%.40s': expected 16 hex characters", prev);
    if ((rc = load_charter(c, &chpath, &ch)) != FED_OK)
        return rc;
    if ((rc = load_roots(c, &ch, chpath, ids, ptrs, &n)) != FED_OK)
        goto out;
    int64_t now = clock_wall_ms();
    if (cert_issue(&ch, domain, key, now, now + days * DAY_MS, prev_serial, ptrs, n, &cert, e,
                   sizeof e) != 0) {
        rc = fail(c, "%s", e);
        goto out;
    }
    rc = write_file(c, out, cert_to_json(&cert));
    if (rc == FED_OK) {
        char ser[17], na[32];
        cert_serial_text(cert.serial, ser);
        trust_time_text(cert.not_after_ms, na);
        fprintf(c->out, "wrote %s: domain %s, node %s, serial %s, valid until %s\n", out,
                cert.domain, node, ser, na);
    }
out:
    cert_free(&cert);
    charter_free(&ch);
    wipe_all(ids, n);
    return rc;
}

static int run_revoke(fctx_t *c)
{
    const char *chpath, *out, *node = opt(c, "node"), *serial = opt(c, "serial");
    const char *eff = opt(c, "effective"), *reason = opt(c, "reason");
    identity_t ids[OPTS_VALS];
    const identity_t *ptrs[OPTS_VALS];
    uint8_t key[ID_PK_LEN] = { 0 };
    uint64_t ser = 0;
    int64_t when = clock_wall_ms();
    size_t n = 0;
    char e[PATH_MAX + 400];
    charter_t ch;
    revocation_t r;
    int rc;

    memset(&ch, 0, sizeof ch);
    memset(&r, 0, sizeof r);
    if ((rc = need(c, "out", &out)) != FED_OK)
        return rc;
    if ((node == NULL) == (serial == NULL))
        return usage(c, "give exactly one of --node NODE_ID and --serial S");
    if (node && identity_from_hex(node, key) != 0)
        return usage(c, "--node '%.70s': expected a node id (64 hex characters)", node);
    if (serial && cert_serial_parse(serial, &ser) != 0)
        return usage(c, "--serial '%.40s': expected 16 hex characters (as trib fed show prints)", serial);
    if (eff && parse_time(eff, &when) != 0)
        return usage(c, "--effective '%.40s': expected a UTC time like 2026-12-05T10:00:00Z", eff);
    if (reason && strlen(reason) > REVOKE_REASON_MAX)
        return usage(c, "--reason: longer than %d characters", REVOKE_REASON_MAX);
    if ((rc = load_charter(c, &chpath, &ch)) != FED_OK)
        return rc;
    if ((rc = load_roots(c, &ch, chpath, ids, ptrs, &n)) != FED_OK)
        goto out;
    if (revocation_issue(&ch, node != NULL, ser, key, when, reason, ptrs, n, &r, e, sizeof e) != 0) {
        rc = fail(c, "%s", e);
        goto out;
    }
    rc = write_file(c, out, revocation_to_json(&r));
    if (rc == FED_OK) {
        char w[32];
        trust_time_text(r.effective_ms, w);
        fprintf(c->out, "wrote %s: revokes %s %s from %s\n", out, node ? "node" : "certificate",
                node ? node : serial, w);
    }
out:
    revocation_free(&r);
    charter_free(&ch);
    wipe_all(ids, n);
    return rc;
}

/* ================================================================ fed update */

/* Adds or removes the keys of one option in d; 0 or an exit code. */
static int edit_keys(fctx_t *c, charter_t *d, const char *optname, int add, charter_role_t role,
                     identity_t *scratch)
{
    size_t n;
    int secret, rc;
    const char *const *v = opts_all(&c->a, optname, &n);
    for (size_t i = 0; i < n; i++) {
        if ((rc = load_key(c, v[i], 1, scratch, &secret)) != FED_OK)
            return rc;
        size_t at = 0;
        while (at < d->nkeys && memcmp(d->keys[at].key, scratch->pk, ID_PK_LEN) != 0)
            at++;
        if (add) {
            if (at < d->nkeys)
                return fail(c, "--%s %s: key %.16s... is already in the charter", optname, v[i],
                            scratch->hex);
            if (d->nkeys == CHARTER_MAX_KEYS)
                return fail(c, "--%s %s: a charter holds at most %d keys", optname, v[i],
                            CHARTER_MAX_KEYS);
            memcpy(d->keys[d->nkeys].key, scratch->pk, ID_PK_LEN);
            d->keys[d->nkeys++].role = role;
        } else {
            if (at == d->nkeys || d->keys[at].role != role)
                return fail(c, "--%s %s: key %.16s... is not a %s key of the charter", optname, v[i],
                            scratch->hex, role == CHARTER_ROLE_ROOT ? "root" : "governance");
            memmove(&d->keys[at], &d->keys[at + 1], (d->nkeys - at - 1) * sizeof d->keys[0]);
            d->nkeys--;
        }
        identity_wipe(scratch);
    }
    return FED_OK;
}

static int run_update(fctx_t *c)
{
    const char *chpath, *out;
    identity_t ids[OPTS_VALS], scratch;
    const identity_t *ptrs[OPTS_VALS];
    size_t n = 0, nroots = 0, ngov = 0;
    long thr, gthr;
    char e[PATH_MAX + 400];
    charter_t ch, d;
    int rc, secret;

    memset(&ch, 0, sizeof ch);
    memset(&d, 0, sizeof d);
    memset(&scratch, 0, sizeof scratch);
    if ((rc = need(c, "out", &out)) != FED_OK)
        return rc;
    if ((rc = load_charter(c, &chpath, &ch)) != FED_OK)
        return rc;
    d = ch;
    d.bytes = NULL;
    d.len = 0;
    if ((rc = edit_keys(c, &d, "remove-root", 0, CHARTER_ROLE_ROOT, &scratch)) != FED_OK ||
        (rc = edit_keys(c, &d, "remove-governance", 0, CHARTER_ROLE_GOVERNANCE, &scratch)) != FED_OK ||
        (rc = edit_keys(c, &d, "add-root", 1, CHARTER_ROLE_ROOT, &scratch)) != FED_OK ||
        (rc = edit_keys(c, &d, "add-governance", 1, CHARTER_ROLE_GOVERNANCE, &scratch)) != FED_OK)
        goto out;
    for (size_t i = 0; i < d.nkeys; i++) {
        nroots += d.keys[i].role == CHARTER_ROLE_ROOT;
        ngov += d.keys[i].role == CHARTER_ROLE_GOVERNANCE;
    }
    if (nroots == 0) {
        rc = fail(c, "the new version would have no root key");
        goto out;
    }
    if ((rc = opt_uint(c, "threshold", 1, (long)nroots, ch.threshold, &thr)) != FED_OK)
        goto out;
    if ((unsigned long)thr > nroots) {
        rc = usage(c, "the threshold stays %ld but only %zu roots remain: give --threshold", thr, nroots);
        goto out;
    }
    long gdef = ngov == 0 ? 0 : ch.gov_threshold ? (long)ch.gov_threshold : 1;
    if ((rc = opt_uint(c, "governance-threshold", ngov ? 1 : 0, (long)ngov, gdef, &gthr)) != FED_OK)
        goto out;
    if ((unsigned long)gthr > ngov) {
        rc = usage(c, "the governance threshold stays %ld but only %zu governance keys remain: "
                   "give --governance-threshold", gthr, ngov);
        goto out;
    }
    d.threshold = (uint32_t)thr;
    d.gov_threshold = (uint32_t)gthr;
    d.issued_ms = clock_wall_ms();

    const char *const *v = opts_all(&c->a, "root", &n);
    if (v == NULL) {
        rc = usage(c, "--root is required (key files of a threshold of the current and new roots)");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = load_key(c, v[i], 0, &ids[i], &secret)) != FED_OK) {
            n = i;
            goto out;
        }
        ptrs[i] = &ids[i];
    }
    if (charter_sign(&ch, &d, ptrs, n, e, sizeof e) != 0) {
        rc = fail(c, "%s: %s", chpath, e);
        goto out;
    }
    rc = write_file(c, out, charter_to_json(&d));
    if (rc == FED_OK)
        fprintf(c->out, "wrote %s: version %llu of the federation, %zu root%s (threshold %ld), "
                "%zu governance key%s (threshold %ld)\n", out, (unsigned long long)d.version,
                nroots, nroots == 1 ? "" : "s", thr, ngov, ngov == 1 ? "" : "s", gthr);
out:
    identity_wipe(&scratch);
    charter_free(&d);
    charter_free(&ch);
    wipe_all(ids, n);
    return rc;
}

/* ================================================================ fed show */

/* Prints the view's fields as "name: value" lines (arrays one item per line). */
static void print_view(FILE *f, json_t *view)
{
    const char *k;
    json_t *v;
    json_object_foreach(view, k, v) {
        if (strcmp(k, "signed") == 0 || strcmp(k, "kind") == 0)
            continue;
        if (json_is_array(v)) {
            size_t i;
            json_t *it;
            fprintf(f, "%-21s %zu\n", k, json_array_size(v));
            json_array_foreach(v, i, it) {
                if (json_is_object(it))
                    fprintf(f, "  %-19s %s\n", json_string_value(json_object_get(it, "role")),
                            json_string_value(json_object_get(it, "key")));
                else
                    fprintf(f, "  %s\n", json_string_value(it));
            }
        } else if (json_is_string(v)) {
            fprintf(f, "%-21s %s\n", k, *json_string_value(v) ? json_string_value(v) : "-");
        } else {
            fprintf(f, "%-21s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
        }
    }
}

static int show_verdict(fctx_t *c, const char *file, trust_verdict_t v, const char *why)
{
    if (v == TRUST_OK) {
        fprintf(c->out, "%-21s yes\n", "verifies");
        return FED_OK;
    }
    fprintf(c->out, "%-21s no (%s)\n", "verifies", trust_verdict_name(v));
    return fail(c, "%s: %s", file, why);
}

static int run_show(fctx_t *c)
{
    const char *file = c->a.pos[0], *chpath = opt(c, "charter");
    char e[PATH_MAX + 400], why[400];
    charter_t ch, x;
    cert_t cert;
    revocation_t r;
    json_t *view = NULL;
    trust_verdict_t v = TRUST_OK;
    int rc = FED_OK;

    memset(&ch, 0, sizeof ch);
    memset(&x, 0, sizeof x);
    memset(&cert, 0, sizeof cert);
    memset(&r, 0, sizeof r);
    trust_kind_t kind = trust_file_kind(file, e, sizeof e);
    if (kind == 0)
        return fail(c, "%s", e);
    if (chpath && charter_load(chpath, &ch, e, sizeof e) != TRUST_OK)
        return fail(c, "%s", e);
    switch (kind) {
    case TRUST_KIND_CHARTER:
        if (charter_load(file, &x, e, sizeof e) != TRUST_OK) {
            rc = fail(c, "%s", e);
            goto out;
        }
        view = charter_to_json(&x);
        if (chpath == NULL || memcmp(x.hash, ch.hash, TRUST_HASH_LEN) == 0)
            break;   /* the same version verifies as itself */
        charter_t next;
        v = charter_verify(&ch, x.bytes, x.len, &next, why, sizeof why);
        charter_free(&next);
        break;
    case TRUST_KIND_CERT:
        if (cert_load(file, &cert, e, sizeof e) != 0) {
            rc = fail(c, "%s", e);
            goto out;
        }
        view = cert_to_json(&cert);
        if (chpath)
            v = cert_valid_at(&ch, &cert, NULL, cert.domain, cert.node_key, clock_wall_ms(), TRUST_SKEW_MS,
                              why, sizeof why);
        break;
    case TRUST_KIND_REVOKE:
        if (revocation_load(file, &r, e, sizeof e) != 0) {
            rc = fail(c, "%s", e);
            goto out;
        }
        view = revocation_to_json(&r);
        if (chpath)
            v = revocation_verify(&ch, &r, why, sizeof why);
        break;
    case TRUST_KIND_POLICY:   /* trib policy show FILE reads these (node/cmd_policy.c) */
        rc = fail(c, "%s: a policy set; see it with trib policy show --file %s", file, file);
        goto out;
    case TRUST_KIND_ROTATE: {  /* the old key's signature is checked on load */
        rotation_t rot;
        if (rotation_load(file, &rot, e, sizeof e) != 0) {
            rc = fail(c, "%s", e);
            goto out;
        }
        view = rotation_to_json(&rot);
        rotation_free(&rot);
        break;
    }
    }
    if (view == NULL) {
        rc = fail(c, "%s: out of memory", file);
        goto out;
    }
    if (opt(c, "json")) {
        if (chpath)
            json_object_set_new(view, "verifies", json_string(trust_verdict_name(v)));
        json_dumpf(view, c->out, JSON_INDENT(2));
        fputc('\n', c->out);
        if (v != TRUST_OK)
            rc = fail(c, "%s: %s", file, why);
        goto out;
    }
    fprintf(c->out, "%-21s %s\n", "kind", trust_kind_name(kind));
    print_view(c->out, view);
    if (chpath)
        rc = show_verdict(c, file, v, why);
out:
    json_decref(view);
    charter_free(&x);
    charter_free(&ch);
    cert_free(&cert);
    revocation_free(&r);
    return rc;
}

/* ================================================================ dispatch */

int fed_is_command(const char *name)
{
    return name && (!strcmp(name, "keygen") || !strcmp(name, "identity") || !strcmp(name, "fed") ||
                    !strcmp(name, "key"));
}

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    }
    return 0;
}

int fed_run(int argc, char **argv, FILE *out, FILE *err)
{
    char name[32];
    int skip = 1;
    if (argc < 1 || !fed_is_command(argv[0])) {
        fprintf(err, "trib: unknown command\ntry 'trib --help'\n");
        return FED_USAGE;
    }
    if (!strcmp(argv[0], "key"))   /* trib key rotate: node/cmd_key.c */
        return key_cmd_run(argc, argv, out, err);
    snprintf(name, sizeof name, "%s", argv[0]);
    if (!strcmp(argv[0], "fed")) {
        if (argc < 2 || argv[1][0] == '-') {
            int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
            FILE *f = help ? out : err;
            fprintf(f, "usage: trib fed init|certify|revoke|update|show|submit|status ...\n");
            fed_usage(f);
            if (!help)
                fprintf(err, "\ntrib: fed: missing subcommand\n");
            return help ? FED_OK : FED_USAGE;
        }
        if (fednode_is_command(argv[1]))   /* these two talk to a node: node/cmd_fednode.c */
            return fednode_run(argc - 1, argv + 1, out, err);
        snprintf(name, sizeof name, "fed %.20s", argv[1]);
        skip = 2;
    }
    const fcmd_t *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            cmd = &commands[i];
    if (cmd == NULL) {
        fprintf(err, "trib: unknown command '%s'\ntry 'trib fed --help'\n", name);
        return FED_USAGE;
    }
    if (wants_help(argc - skip, argv + skip)) {
        command_help(cmd, out);
        return FED_OK;
    }
    if (sodium_init() < 0) {
        fprintf(err, "trib: %s: sodium_init failed\n", name);
        return FED_FAIL;
    }
    fctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        fprintf(err, "trib: %s: out of memory\n", name);
        return FED_FAIL;
    }
    c->cmd = cmd;
    c->out = out;
    c->err = err;
    int rc = parse_args(c, argc - skip, argv + skip);
    if (rc == FED_OK)
        rc = cmd->run(c);
    free(c);
    if (fflush(out) != 0 && rc == FED_OK) {
        fprintf(err, "trib: %s: writing output: %s\n", name, strerror(errno));
        rc = FED_FAIL;
    }
    return rc;
}
