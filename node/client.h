/* node/client.h - the CLI's HTTP client: one request to a node's API over libcurl.
 *
 * Owns: building the URL (base + path + URL-encoded query), sending a body from memory or
 * streaming it from a FILE, timeouts, and handing the reply back either buffered (bounded)
 * or, for a 2xx reply with a sink, chunk by chunk as it arrives. A transport failure comes
 * back as -1 with a one-line message ("cannot reach node at URL: Connection refused ...").
 * Must not: print anything, interpret JSON, or know the subcommands. */
#ifndef TRIB_CLIENT_H
#define TRIB_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#define CLIENT_MAX_REPLY (64u << 20)   /* a buffered reply body larger than this is an error */

enum {
    CLIENT_STOPPED = 1,   /* *stop was set while the transfer ran (e.g. SIGINT) */
    CLIENT_SINK    = 2,   /* the sink refused data (e.g. stdout closed); the transfer ended */
    CLIENT_GONE    = 3,   /* *watch_fd reported an error or hang-up (the reader went away) */
};

/* Called with each piece of a 2xx reply body as it arrives. Return 0, or -1 to stop. */
typedef int (*client_sink_fn)(void *ctx, const char *data, size_t len);

typedef struct {
    const char *method;          /* "GET", "PUT", "POST", "DELETE" */
    const char *path;            /* starts with '/', already safe (no escaping applied) */
    const char *const *query;    /* name, value, name, value, ..., NULL; NULL/"" values skipped */
    const char *content_type;    /* of the body, or NULL */
    const char *body;            /* in-memory body, or NULL */
    size_t body_len;
    FILE *upload;                /* or a body streamed from this file (when body is NULL) */
    long long upload_len;        /* its size when known, else -1 (sent chunked) */
    const char *upload_name;     /* for read error messages ("records.ndjson", "stdin") */
    int long_lived;              /* no overall timeout (record reads, streams, uploads) */
    client_sink_fn sink;         /* optional: receives 2xx bodies instead of the buffer */
    void *sink_ctx;
    volatile sig_atomic_t *stop; /* optional: the transfer ends soon after *stop != 0 */
    const int *watch_fd;         /* optional: the transfer ends soon after this fd (the
                                    output pipe) reports POLLERR/POLLHUP, even while idle */
    const char *prefer;          /* optional: sent as "Prefer: <value>" (RFC 7240) */
    const char *hint;            /* optional: what to check when the node cannot be reached
                                    (default: is trib agent running?) */
    int records_only;            /* the sink gets a 2xx body only when it is a Tributary records
                                    answer (Trib-Last-Seq set); anything else is buffered */
    int answer_s;                /* optional: fails (-1) when no reply has begun this many seconds
                                    after the request started (a peer that accepts the connection
                                    and stays silent: a frozen process), however long_lived */
} client_req_t;

typedef struct {
    long status;                 /* HTTP status, 0 if none was received */
    long long first_seq;         /* the Trib-First-Seq header (seq of a read's first line), or -1 */
    char *body;                  /* NUL-terminated buffered body (empty if it went to the sink) */
    size_t len;
    char location[512];          /* the Location header of a 3xx reply, "" when none (never followed) */
    char applied[32];            /* the Preference-Applied header, "" when none */
    int records;                 /* 1 when the reply is a records answer (Trib-Last-Seq set) */
} client_reply_t;

/* 1 when the bearer token (if any) may go to location, a redirect a node at base answered: never
 * https -> http; with a token, only to https, to a loopback host, or when base itself is plain
 * http beyond loopback (the token already crosses the network in clear text). 0 with why. */
int client_redirect_allowed(const char *base, const char *location, char *why, size_t whylen);

/* Normalises a node address for client_request: "HOST:PORT", "HOST" (port default_port),
 * ":PORT" (host 127.0.0.1) or an http/https URL (kept, minus a trailing '/'; a URL without
 * a port keeps its scheme's default). Query, fragment and credentials are refused.
 * 0 with out = "http://host:port[/prefix]", or -1 with err. */
int client_base_url(const char *in, int default_port, char *out, size_t outlen,
                    char *err, size_t errlen);

/* Credentials (process-wide): strips "--token T", "--token-file F" and "--cacert F" (also
 * written "--token=T" ...) from argv[1..] (before a "--") and sets the bearer token every
 * request sends: --token, else the file's token (which must be 0600), else $TRIB_TOKEN, else
 * none. 0, or -1 with err. */
int client_auth_args(int *argc, char **argv, char *err, size_t errlen);
/* Sets (a copy of) the bearer token; NULL or "" for none. */
void client_set_token(const char *token);

/* Process-wide libcurl setup; call once before any request and cleanup once at the end. */
int client_global_init(char *err, size_t errlen);
void client_global_cleanup(void);

/* Performs rq against base_url (normalised: "http://host:port[/prefix]", no trailing '/').
 * Returns 0 when a reply arrived (any status: see rep->status), CLIENT_STOPPED, CLIENT_SINK,
 * CLIENT_GONE, or -1 with err set (connection, timeout, upload read error, reply too large). rep is always
 * filled enough for client_reply_free. */
int client_request(const char *base_url, const client_req_t *rq, client_reply_t *rep,
                   char *err, size_t errlen);
void client_reply_free(client_reply_t *rep);

#endif
