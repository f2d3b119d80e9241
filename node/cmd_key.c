/* node/cmd_key.c - trib key rotate --data DIR --domain D --out FILE [--overlap-hours H]
 * [--effective TIME] [--cert FILE] (see node/cmd_key.h).
 *
 * Owns: preparing a node's next key (DIR/identity.next.key, 0600, made once and reused) and the
 * hand-over the CURRENT key signs (gossip/cert.h rotation_t: domain, old key, new key, effective
 * time, overlap window), written as a trib.rotation file to hand to a node with `trib fed submit`;
 * with --cert, checking that a certificate is for the prepared key and the domain.
 * Must not: change DIR/identity.key (a running agent signs with it: switching a live node's key is
 * not implemented, see docs/operators.md §6), talk to a node, or print a secret key. */
#include "node/cmd_key.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/identity.h"

enum { K_OK = 0, K_FAIL = 1, K_USAGE = 2 };

void key_cmd_usage(FILE *f)
{
    fprintf(f, "  %-12s %s\n", "key rotate", "prepare a node's next key and the hand-over its current key signs");
}

static void help(FILE *f)
{
    fprintf(f, "usage: trib key rotate --data DIR --domain D --out FILE [--overlap-hours H] [--effective TIME]"
               " [--cert FILE]\n\n"
               "Makes the node's next key (DIR/identity.next.key, mode 0600; kept and reused by later runs)\n"
               "and a hand-over signed by its current key (DIR/identity.key): domain D moves to the new key\n"
               "from TIME (default now), both keys verifying for H hours (default 24). Prints the new node\n"
               "id for `trib fed certify --node NEW --prev-serial OLD_SERIAL`. Hand FILE and the new\n"
               "certificate to any node with `trib fed submit`. With --cert, the certificate must be for\n"
               "the new key and domain D. The running agent keeps its current key (docs/operators.md §6).\n\n"
               "options:\n"
               "  --data DIR               the node's data dir\n"
               "  --domain D               the node's domain\n"
               "  --out FILE               the hand-over file to create (trib.rotation)\n"
               "  --overlap-hours H        both keys verify for H hours (default 24, at most 2160)\n"
               "  --effective TIME         from when the new key signs (UTC, default now)\n"
               "  --cert FILE              check that this certificate is for the new key\n"
               "  -h, --help               show this help\n\n"
               "example:\n  trib key rotate --data ./payments --domain payments --out payments-rotate.json\n");
}

static int fail(FILE *err, const char *what)
{
    fprintf(err, "trib: key rotate: %s\n", what);
    return K_FAIL;
}

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
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--data") ? &data : !strcmp(a, "--domain") ? &domain
                          : !strcmp(a, "--out") ? &outp : !strcmp(a, "--cert") ? &certp
                          : !strcmp(a, "--effective") ? &eff : !strcmp(a, "--overlap-hours") ? &overlap : NULL;
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
    if (!data || !domain || !outp) {
        fprintf(err, "trib: key rotate: --data, --domain and --out are required\ntry 'trib key rotate --help'\n");
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
    snprintf(nextp, sizeof nextp, "%s/identity.next.key", data);
    struct stat st;
    int made = 0;
    if (stat(nextp, &st) == 0) {
        if (identity_load_file(nextp, &next, e, sizeof e) != 0) {
            identity_wipe(&old);
            return fail(err, e);
        }
    } else if (identity_create_file(nextp, &next, e, sizeof e) != 0) {
        identity_wipe(&old);
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
    identity_wipe(&old);
    identity_wipe(&next);
    return rc;
}
