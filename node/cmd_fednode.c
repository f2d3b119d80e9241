/* node/cmd_fednode.c - trib fed submit FILE | trib fed status (see node/cmd_fednode.h).
 *
 * Owns: their options (--node URL, default $TRIB_NODE; --json), sending a trust object file as it
 * is to POST /v1/federation/objects, and printing GET /v1/federation as a short report.
 * Must not: verify or change the file (the node verifies the signed bytes) or print secrets. */
#include "node/cmd_fednode.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/textfile.h"
#include "node/cli.h"
#include "node/client.h"

enum { FN_OK = 0, FN_FAIL = 1, FN_USAGE = 2 };

int fednode_is_command(const char *sub)
{
    return sub && (!strcmp(sub, "submit") || !strcmp(sub, "status"));
}

void fednode_usage(FILE *f)
{
    fprintf(f, "  %-12s %s\n  %-12s %s\n", "fed submit", "hand a certificate, revocation, charter update or policy "
            "set file to a node (it verifies, stores and gossips it)", "fed status",
            "a node's federation: charter version, roots, certificates, revocations");
}

#define RETRY_MAX_S 60   /* a refusal for the moment (429, 503) is retried this long in all */

static void help(const char *sub, FILE *f)
{
    if (!strcmp(sub, "submit"))
        fprintf(f, "usage: trib fed submit FILE [--node URL]\n\n"
                   "Sends FILE (written by `trib fed certify`, `fed revoke`, `fed update` or `trib policy sign`)\n"
                   "to a node. The node verifies its signatures against the charter it holds, stores it and\n"
                   "pushes it to every member (a revocation first, ahead of other traffic). Refusals name\n"
                   "the reason: forged, below_threshold, wrong_federation, stale_version, version_gap,\n"
                   "broken_chain, open_mode, malformed, kind_mismatch. A node that is busy (503) or\n"
                   "rate-limits submissions (429: 5 a second per address after a burst of 30) is asked\n"
                   "again after the wait it names, for up to 60 s, saying so on stderr.\n\n"
                   "options:\n  --node URL               the node (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")\n"
                   "  -h, --help               show this help\n\nexample:\n  trib fed submit rev.json --node 10.0.0.5:7480\n");
    else
        fprintf(f, "usage: trib fed status [--node URL] [--json]\n\n"
                   "Prints the federation a node holds: its mode, charter (version, roots, threshold), the\n"
                   "certificates (serial, domain, node, expiry, state) and the revocations.\n\n"
                   "options:\n  --node URL               the node (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")\n"
                   "  --json                   print the node's JSON as it is\n"
                   "  -h, --help               show this help\n\nexample:\n  trib fed status --node 10.0.0.5:7480\n");
}

static int fail(FILE *err, const char *sub, const char *fmt, const char *a, const char *b)
{
    fprintf(err, "trib: fed %s: ", sub);
    fprintf(err, fmt, a, b);
    fputc('\n', err);
    return FN_FAIL;
}

static void print_status(json_t *j, FILE *out)
{
    json_t *ch = json_object_get(j, "charter");
    fprintf(out, "mode        %s\nobjects     %lld\n", json_string_value(json_object_get(j, "mode")),
            (long long)json_integer_value(json_object_get(j, "objects")));
    if (json_is_object(ch)) {
        fprintf(out, "federation  %s\ncharter     version %lld, threshold %lld, hash %.16s\n",
                json_string_value(json_object_get(ch, "federation")),
                (long long)json_integer_value(json_object_get(ch, "version")),
                (long long)json_integer_value(json_object_get(ch, "threshold")),
                json_string_value(json_object_get(ch, "hash")));
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(ch, "keys"), i, k)
            fprintf(out, "  %-10s %s\n", json_string_value(json_object_get(k, "role")),
                    json_string_value(json_object_get(k, "key")));
    }
    json_t *certs = json_object_get(j, "certificates"), *revs = json_object_get(j, "revocations"), *c;
    size_t i;
    fprintf(out, "\ncertificates (%zu)\n", json_array_size(certs));
    if (json_array_size(certs))
        fprintf(out, "  %-16s  %-16s  %-16s  %-24s  %s\n", "SERIAL", "DOMAIN", "NODE", "NOT AFTER", "STATE");
    json_array_foreach(certs, i, c)
        fprintf(out, "  %-16s  %-16s  %.16s  %-24s  %s\n", json_string_value(json_object_get(c, "serial")),
                json_string_value(json_object_get(c, "domain")), json_string_value(json_object_get(c, "node")),
                json_string_value(json_object_get(c, "not_after")), json_string_value(json_object_get(c, "state")));
    fprintf(out, "\nrevocations (%zu)\n", json_array_size(revs));
    json_array_foreach(revs, i, c) {
        const char *node = json_string_value(json_object_get(c, "node"));
        fprintf(out, "  %s %.16s  from %s  %s\n", node ? "node" : "serial",
                node ? node : json_string_value(json_object_get(c, "serial")),
                json_string_value(json_object_get(c, "effective")), json_string_value(json_object_get(c, "reason")));
    }
}

int fednode_run(int argc, char **argv, FILE *out, FILE *err)
{
    const char *sub = argv[0], *node = NULL, *file = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(sub, out);
            return FN_OK;
        } else if (!strcmp(a, "--node") && i + 1 < argc) {
            node = argv[++i];
        } else if (!strncmp(a, "--node=", 7)) {
            node = a + 7;
        } else if (!strcmp(a, "--json") && !strcmp(sub, "status")) {
            json = 1;
        } else if (a[0] != '-' && !file && !strcmp(sub, "submit")) {
            file = a;
        } else {
            fprintf(err, "trib: fed %s: unexpected argument '%s'\ntry 'trib fed %s --help'\n", sub, a, sub);
            return FN_USAGE;
        }
    }
    if (!strcmp(sub, "submit") && !file) {
        fprintf(err, "trib: fed submit: missing FILE\ntry 'trib fed submit --help'\n");
        return FN_USAGE;
    }
    if (!node || !*node)
        node = getenv("TRIB_NODE");
    if (!node || !*node)
        node = CLI_DEFAULT_NODE;
    char base[512], msg[512];
    if (client_base_url(node, CLI_DEFAULT_PORT, base, sizeof base, msg, sizeof msg) != 0) {
        fprintf(err, "trib: fed %s: --node: %s\n", sub, msg);
        return FN_USAGE;
    }
    char *body = NULL;
    size_t len = 0;
    if (file && !(body = textfile_read(file, "a trust object file", 256u << 10, &len, msg, sizeof msg)))
        return fail(err, sub, "%s%s", msg, "");
    if (client_global_init(msg, sizeof msg) != 0) {
        free(body);
        return fail(err, sub, "%s%s", msg, "");
    }
    client_req_t rq = {.method = file ? "POST" : "GET", .path = file ? "/v1/federation/objects" : "/v1/federation",
                       .content_type = "application/json", .body = body, .body_len = len, .upload_len = -1};
    client_reply_t rep;
    int rc;
    for (int waited = 0;;) {   /* a script submitting many files meets the rate limit: it waits, as asked */
        rc = client_request(base, &rq, &rep, msg, sizeof msg);
        if (rc != 0 || !file || (rep.status != 429 && rep.status != 503))
            break;
        json_t *b = json_loads(rep.body ? rep.body : "", 0, NULL);
        json_int_t after = json_integer_value(json_object_get(b, "retry_after_s"));
        json_decref(b);
        int s = after >= 1 && after <= 30 ? (int)after : rep.status == 503 ? 5 : 1;
        if (waited + s > RETRY_MAX_S)
            break;
        fprintf(err, "trib: fed submit: %s: the node %s (HTTP %ld); asking again in %d s\n", file,
                rep.status == 429 ? "rate-limits submissions" : "is busy", rep.status, s);
        client_reply_free(&rep);
        sleep((unsigned)s);
        waited += s;
    }
    free(body);
    client_global_cleanup();
    if (rc != 0) {
        client_reply_free(&rep);
        return fail(err, sub, "%s%s", msg, "");
    }
    json_t *j = json_loads(rep.body ? rep.body : "", 0, NULL);
    int code = FN_OK;
    if (rep.status >= 300 || !j) {
        const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
        const char *d = j ? json_string_value(json_object_get(j, "detail")) : NULL;
        char what[700];
        snprintf(what, sizeof what, "%ld %s%s%s", rep.status, e ? e : "refused", d ? ": " : "", d ? d : "");
        code = fail(err, sub, "%s: %s", file ? file : base, what);   /* one line, as every refusal */
    } else if (file) {
        fprintf(out, "%s: %s %s %.16s on %s\n", file, json_string_value(json_object_get(j, "result")),
                json_string_value(json_object_get(j, "kind")), json_string_value(json_object_get(j, "hash")), base);
    } else if (json) {
        json_dumpf(j, out, JSON_INDENT(2));
        fputc('\n', out);
    } else {
        print_status(j, out);
    }
    json_decref(j);
    client_reply_free(&rep);
    return code;
}
