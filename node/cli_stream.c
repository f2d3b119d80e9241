/* node/cli_stream.c - `trib get` and `trib subscribe`: a product's records relayed from the
 * node to stdout as NDJSON, line by line as they arrive (docs/http-api.md, "Records from any
 * node").
 *
 * Owns: the relay (a line that could be the node's closing error object is held until the
 * next line shows it was a record, at most HOLD_MAX bytes), telling a read that failed midway
 * from one that finished, the seq a reader resumes from (on stderr: with the error of a read
 * that failed midway, and after one that ended well when stderr is a terminal),
 * SIGPIPE/SIGINT/SIGTERM handling while a transfer runs, noticing a reader that went away
 * (`trib subscribe X | head -1`), and for `get` asking to be sent to the owner (Prefer:
 * redirect=owner) and reading there once when the redirect is one the node applied and safe for
 * the token, falling back to the node's relay when it is not, or the owner's address cannot be
 * reached or answers neither records nor a refusal of the token (--relay: never asked).
 * Must not: change a record's bytes, or write anything but records to c->out (messages go to
 * c->err), so stdout stays pure NDJSON for the next program in the pipe. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "node/cli_internal.h"

#define HOLD_MAX 4096   /* longest NDJSON line checked for an error object */

/* Relays an NDJSON body to out line by line as it arrives. A line that is an error object
 * ({"error": ..., "detail": ...} and nothing else) is held back: if the body ends with it, it
 * is the node's report that the read failed midway (a relay lost the owner), not a record. */
typedef struct {
    FILE *out;
    char *line;                /* the line being collected (up to HOLD_MAX bytes) */
    size_t len, cap;
    int passthrough;           /* current line is longer than HOLD_MAX: written as it comes */
    char *held;                /* a complete error-shaped line not yet known to be the last */
    size_t held_len;
    int write_errno;           /* set when writing to out failed */
    long long lines;           /* complete lines written to out: the records relayed */
    long long bytes;           /* body bytes received (0: nothing reached out yet) */
} relay_t;

static int relay_write(relay_t *r, const char *data, size_t len)
{
    if (r->held) {
        char *h = r->held;
        r->held = NULL;
        int rc = relay_write(r, h, r->held_len);
        free(h);
        if (rc != 0)
            return rc;
    }
    if (len == 0)
        return 0;
    if (fwrite(data, 1, len, r->out) != len) {
        r->write_errno = errno ? errno : EIO;
        return -1;
    }
    for (const char *p = data, *end = data + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        r->lines++;
    return 0;
}

static int is_error_line(const char *line, size_t len)
{
    if (len > HOLD_MAX || !memmem(line, len, "\"error\"", 7))
        return 0;
    json_t *j = json_loadb(line, len, 0, NULL);
    int ok = json_is_object(j) && json_is_string(json_object_get(j, "error"));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
        if (!((strcmp(k, "error") == 0) || (strcmp(k, "detail") == 0 && json_is_string(v))))
            ok = 0;
    json_decref(j);
    return ok;
}

static int relay_line(relay_t *r, const char *line, size_t len)
{
    if (is_error_line(line, len)) {
        if (relay_write(r, NULL, 0) != 0)      /* an earlier held line was a record */
            return -1;
        r->held = malloc(len);
        if (!r->held) {
            r->write_errno = ENOMEM;
            return -1;
        }
        memcpy(r->held, line, len);
        r->held_len = len;
        return 0;
    }
    return relay_write(r, line, len);
}

static int relay_sink(void *ctx, const char *data, size_t len)
{
    relay_t *r = ctx;
    r->bytes += (long long)len;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) + 1 : len;
        if (r->passthrough) {
            if (relay_write(r, data, seg) != 0)
                return -1;
            if (nl)
                r->passthrough = 0;
        } else if (r->len + seg > HOLD_MAX) {
            if (relay_write(r, r->line, r->len) != 0 || relay_write(r, data, seg) != 0)
                return -1;
            r->len = 0;
            r->passthrough = !nl;
        } else {
            if (r->len + seg > r->cap) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap < r->len + seg)
                    cap *= 2;
                char *nb = realloc(r->line, cap);
                if (!nb) {
                    r->write_errno = ENOMEM;
                    return -1;
                }
                r->line = nb;
                r->cap = cap;
            }
            memcpy(r->line + r->len, data, seg);
            r->len += seg;
            if (nl) {
                size_t n = r->len;
                r->len = 0;
                if (relay_line(r, r->line, n) != 0)
                    return -1;
            }
        }
        data += seg;
        len -= seg;
    }
    if (fflush(r->out) != 0) {
        r->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Where a reader resumes: "last seq N; resume with --from N+1" (the node's Trib-First-Seq
 * header gives the first line's seq; records are dense). Empty when the node did not say. */
static void resume_hint(const client_reply_t *rep, const relay_t *r, char *out, size_t len)
{
    out[0] = '\0';
    if (rep->first_seq < 0)
        return;
    long long first = rep->first_seq > 0 ? rep->first_seq : 1;
    if (r->lines > 0)
        snprintf(out, len, "last seq %lld; resume with --from %lld", first + r->lines - 1,
                 first + r->lines);
    else
        snprintf(out, len, "no record received; resume with --from %lld", first);
}

/* The node at c->node answered *rep: 307 to the owner, as asked (Preference-Applied). Reads
 * from the owner once (the token with it only where client_redirect_allowed says), and takes its
 * answer when it is a records answer (or a transfer that failed midway, or stopped), or its refusal
 * of the caller's token or grant (owner_refused: relayed, it would be refused alike). Otherwise
 * nothing was written: says why once on stderr and asks the node again, to relay; the node's
 * answer is the one given, as without the preference (the owner decides access either way).
 * Returns client_request's result, with *rep the answer given. */
#define OWNER_ANSWER_S 10   /* an owner that has not begun its answer by then is asked through the node */

/* The owner's refusal of the caller's token or grant (401/403 with a Tributary access code): the
 * answer the relay would give too, since the owner decides on the token it forwards. */
static int owner_refused(const client_reply_t *rep)
{
    if (rep->status != 401 && rep->status != 403)
        return 0;
    static const char *const codes[] = { "token_required", "token_invalid", "token_expired", "token_revoked",
                                         "wrong_domain", "kind_insufficient", "out_of_scope", "grant_required" };
    json_t *j = json_loadb(rep->body ? rep->body : "", rep->len, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    int hit = 0;
    for (size_t i = 0; e && i < sizeof codes / sizeof codes[0] && !hit; i++)
        hit = !strcmp(e, codes[i]);
    json_decref(j);
    return hit;
}

static int follow_owner(cli_ctx_t *c, client_req_t *rq, client_reply_t *rep, relay_t *r, char *err, size_t errlen)
{
    char why[1100], at[sizeof rep->location];
    snprintf(at, sizeof at, "%s", rep->location);
    int cr = -1;
    if (client_redirect_allowed(c->node, at, why, sizeof why)) {
        client_req_t to = *rq;
        to.path = "";
        to.query = NULL;      /* the Location holds the target as sent */
        to.prefer = NULL;     /* one hop */
        to.records_only = 1;
        to.hint = "(the owner's address the node named)";
        /* the node saw the owner alive; a frozen one accepts and stays silent: relay instead */
        to.answer_s = OWNER_ANSWER_S;
        client_reply_free(rep);
        cr = client_request(at, &to, rep, err, errlen);
        if (cr == CLIENT_STOPPED || cr == CLIENT_GONE || cr == CLIENT_SINK || r->bytes > 0 ||
            (cr == 0 && rep->status >= 200 && rep->status <= 299 && rep->records) ||
            (cr == 0 && owner_refused(rep)))
            return cr;
        if (cr < 0)
            snprintf(why, sizeof why, "%s", err);
        else if (rep->status >= 200 && rep->status <= 299)
            snprintf(why, sizeof why, "the owner's address %s answered %ld, not a Tributary records answer", at,
                     rep->status);
        else
            snprintf(why, sizeof why, "the owner's address %s answered %ld", at, rep->status);
    }
    fprintf(c->err, "trib: %s: %s; reading through %s instead\n", c->cmd->name, why, c->node);
    client_reply_free(rep);
    rq->prefer = NULL;
    return client_request(c->node, rq, rep, err, errlen);
}

int cli_stream_records(cli_ctx_t *c, const char *suffix, const char *const *query, int live)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, suffix, &id, path);
    if (rc != CLI_OK)
        return rc;
    relay_t r = { .out = c->out };
    client_req_t rq = { .method = "GET", .path = path, .query = query, .upload_len = -1,
                        .long_lived = 1, .sink = relay_sink, .sink_ctx = &r };
    /* A read (not a live stream) asks the node to send us to the product's owner: the records
     * then come from the owner, never through the node's relay (docs/http-api.md); --relay reads
     * through the node asked. */
    if (!live && !cli_opt(c, "relay"))
        rq.prefer = "redirect=owner";
    /* Notice a reader that went away (`trib subscribe X | head -1`) even while no record
     * arrives to fail a write. */
    int out_fd = fileno(c->out);
    if (out_fd >= 0)
        rq.watch_fd = &out_fd;

    /* Writes to a closed pipe fail with EPIPE instead of killing us; for subscribe, SIGINT
     * and SIGTERM end the transfer and the command succeeds. */
    struct sigaction ign = { .sa_handler = SIG_IGN }, stop = { .sa_handler = on_stop_signal };
    struct sigaction old_pipe, old_int, old_term;
    sigemptyset(&ign.sa_mask);
    sigemptyset(&stop.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (live) {
        stop_flag = 0;
        rq.stop = &stop_flag;
        sigaction(SIGINT, &stop, &old_int);
        sigaction(SIGTERM, &stop, &old_term);
    }
    client_reply_t rep;
    char err[1024];
    int cr = client_request(c->node, &rq, &rep, err, sizeof err);
    if (rq.prefer && cr == 0 && rep.status == 307 && !strcasecmp(rep.applied, "redirect=owner") && rep.location[0])
        cr = follow_owner(c, &rq, &rep, &r, err, sizeof err);
    if (live) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }

    /* The seq to resume from goes to stderr, never into the NDJSON on stdout: with the error
     * when a read fails midway, and after a read that ended well only for a person watching
     * (stderr is a terminal). A reader that went away gets none: lines it never read count. */
    char hint[96], msg[sizeof err + sizeof hint + 4];
    int show_hint = 0;
    if (cr == 0 && (rep.status < 200 || rep.status > 299)) {
        rc = cli_fail_http(c, &rep);
    } else if (cr == CLIENT_GONE) {
        rc = CLI_OK;
    } else if (cr == CLIENT_SINK) {
        rc = r.write_errno == EPIPE ? CLI_OK
                                    : cli_fail(c, "writing output: %s", strerror(r.write_errno));
    } else if (cr < 0) {
        fflush(c->out);
        resume_hint(&rep, &r, hint, sizeof hint);
        snprintf(msg, sizeof msg, "%s%s%s%s", err, *hint ? " (" : "", hint, *hint ? ")" : "");
        rc = cli_fail_transport(c, msg);
    } else {
        /* A last line without '\n' is still a line. */
        if (!r.passthrough && r.len > 0) {
            size_t n = r.len;
            r.len = 0;
            if (relay_line(&r, r.line, n) == 0 && !r.held)
                relay_write(&r, "\n", 1);
        }
        resume_hint(&rep, &r, hint, sizeof hint);
        const char *open = *hint ? " (" : "", *close = *hint ? ")" : "";
        json_t *j = r.held ? json_loadb(r.held, r.held_len, 0, NULL) : NULL;
        if (r.held && !strcmp(json_string_value(json_object_get(j, "error")) ?: "", "retired")) {
            /* the product was retired: every record it will ever have was sent, none left to
             * resume from; the read is complete (exit 0), and stderr says why it ended */
            char *text = cli_error_text(j);
            fflush(c->out);
            long long last = rep.first_seq > 0 ? rep.first_seq + r.lines - 1 : r.lines;
            fprintf(c->err, "trib: %s: %s; every record was sent (last seq %lld)\n", c->cmd->name,
                    text ? text : "retired", last);
            free(text);
            rc = CLI_OK;
        } else if (r.held) {
            char *text = cli_error_text(j);
            fflush(c->out);
            rc = cli_fail(c, "%s%s%s%s", text ? text : "the node reported an error", open, hint,
                          close);
            free(text);
        } else if (fflush(c->out) != 0 && errno != EPIPE) {
            rc = cli_fail(c, "writing output: %s", strerror(errno));
        } else if (cr == CLIENT_STOPPED || !live) {
            rc = CLI_OK;
            show_hint = *hint && isatty(fileno(c->err));
        } else {
            rc = cli_fail(c, "the node at %s ended the stream%s%s%s", c->node, open, hint, close);
        }
        json_decref(j);
    }
    if (show_hint)
        fprintf(c->err, "trib: %s: %s\n", c->cmd->name, hint);
    sigaction(SIGPIPE, &old_pipe, NULL);
    client_reply_free(&rep);
    free(r.line);
    free(r.held);
    return rc;
}
