/* tests/harness.h - helpers for integration tests that run real `trib agent` processes:
 * free ports, start/stop/kill nodes (killed with the test process via PR_SET_PDEATHSIG), HTTP
 * calls (JSON replies, metric values), running the CLI, and polling a condition with a deadline
 * (never sleeping to sync). */
#ifndef TRIB_HARNESS_H
#define TRIB_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define H_EXTRA_MAX 32      /* extra agent arguments h_node_start takes; more is an error */

typedef struct {
    pid_t pid;
    int http_port, peer_port;
    char dir[256];          /* data dir (removed by h_node_cleanup) */
    char domain[64];
    char url[64];           /* http://127.0.0.1:PORT */
    char peer[64];          /* 127.0.0.1:PORT */
    char log[300];          /* the agent's stderr */
    char extra[H_EXTRA_MAX][160]; /* extra agent arguments, kept for restarts */
    int nextra;
    char token[4200];       /* DATA/admin.token, read once the node answers ("" before) */
} h_node_t;

typedef struct {
    long status;
    char *body;
    size_t len;
    char first_seq[32];     /* Trib-First-Seq header, if any */
    char retry_after[16];   /* Retry-After header, if any */
} h_resp_t;

const char *h_trib_path(void);                      /* $TRIB or build/trib */
int h_free_port(void);                             /* free loopback port in 10000-19999, -1 if none */
/* A TCP socket (close-on-exec, SO_REUSEADDR) listening on 127.0.0.1:port with backlog; -1 if it cannot. */
int h_listen(int port, int backlog);
/* Prepares n (temp dir, ports) and starts it; extra args are "--opt", "value" pairs, NULL-ended. */
int h_node_start(h_node_t *n, const char *domain, ...) __attribute__((sentinel));
int h_node_restart(h_node_t *n);                    /* same dir, ports and args */
int h_node_stop(h_node_t *n, int sig);              /* signal, wait (deadline), returns exit status or -1 */
void h_node_cleanup(h_node_t *n);                   /* stops if running, removes the dir */
void h_cleanup_all(void);                           /* every node this process started */

/* An HTTP call. To the URL of a node this process started, it sends that node's admin token
 * (Authorization: Bearer) unless h_http_token says otherwise: the write path stays automatic
 * for tests that are not about access. */
int h_http(const char *method, const char *url, const char *ctype, const void *body, size_t len, h_resp_t *r);
/* The same with an explicit token: NULL or "" sends none (hostile tests). */
int h_http_token(const char *method, const char *url, const char *ctype, const void *body, size_t len,
                 const char *token, h_resp_t *r);
/* The admin token of the node this process started whose URL url starts with, or NULL. */
const char *h_token_for(const char *url);
void h_resp_free(h_resp_t *r);

/* GET base+path (base: "http://127.0.0.1:PORT", e.g. n->url) as JSON (a new reference).
 * status non-NULL: the body of any reply (an error object too), *status its HTTP status (0 when
 * none came). status NULL: NULL unless the reply was a 200. NULL when the body is not JSON. */
json_t *h_get_json(const char *base, const char *path, long *status);

/* method base+path with exactly token (NULL: none) and an optional JSON body (a POST without one
 * sends an empty body): the reply as JSON, any status (a new reference; NULL when the body is not
 * JSON or no reply came), *status its HTTP status (0 when none came). */
json_t *h_call(const char *method, const char *base, const char *path, const char *token, const char *body,
               long *status);

/* Polls GET base+path with exactly token (NULL: none) until it answers want (200: a product has
 * replicated; 403: a grant is gone...) or timeout_ms passes. 1 met, 0 timed out. */
int h_wait_status(const char *base, const char *path, const char *token, long want, int timeout_ms);

/* Polls GET base/v1/members until it lists a member of domain in state ("alive", "dead"...), at
 * http when http is non-NULL, or timeout_ms passes. 1 met, 0 timed out. */
int h_wait_member(const char *base, const char *domain, const char *state, const char *http, int timeout_ms);

/* The value of the /metrics line "SERIES VALUE" of the node at base, series written exactly as
 * the node writes it ('trib_members{state="alive"}'); 0 when the node has no such line (an
 * absent counter is 0), -1 when /metrics does not answer 200. */
double h_metric(const char *base, const char *series);
/* The sum of every series of a metric family (every label set) at base; -1 when /metrics does not
 * answer 200. */
double h_metric_sum(const char *base, const char *family);
/* 1 when an API error code is a refusal for want of a credential (counted in
 * trib_token_refused_total, docs/http-api.md): token_required, token_invalid, ... */
int h_credential_code(const char *code);

/* Runs `trib ARGS...` against node n (TRIB_NODE, and TRIB_TOKEN = n's admin token unless this
 * process has TRIB_TOKEN set: "" then means none); stdin from in_path when non-NULL.
 * Returns the exit code (-1 when it could not be started); *out and *errout (malloc'd,
 * NUL-terminated) when non-NULL. */
int h_trib(h_node_t *n, const char *in_path, char **out, char **errout, ...) __attribute__((sentinel));

/* Polls cond(ctx) every few ms until it returns non-zero or timeout_ms passes. 1 met, 0 timed out. */
int h_wait(int (*cond)(void *ctx), void *ctx, int timeout_ms);
long h_now_ms(void);
/* RssAnon of pid (/proc/PID/status) in KiB; 0 when unreadable. */
long h_rss_anon_kib(pid_t pid);
/* The largest this kernel's TCP buffers grow to by themselves: field 3 of /proc/sys/net/ipv4/
 * which ("tcp_rmem" or "tcp_wmem"), in bytes; -1 when unreadable. */
long h_tcp_buf_max(const char *which);
/* A loopback TCP connection to port whose receive buffer is 4 KiB, set before the connect (the
 * window a slow reader advertises); -1 when it cannot connect. */
int h_connect_small(int port);
/* A reader that takes little or nothing: GET path of n over HTTP/1.0 (the answer ends with the
 * connection), as token (NULL: n's admin token), on h_connect_small. Its socket, or -1. */
int h_slow_get(const h_node_t *n, const char *path, const char *token);
char *h_read_file(const char *path, size_t *len);
int h_write_file(const char *path, const void *data, size_t len);
/* Path of a file in the repository (tests run from the repo root or build dir). */
const char *h_repo_path(const char *rel, char *buf, size_t cap);

#endif
