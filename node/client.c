/* node/client.c - the CLI's HTTP client: one request to a node's API over libcurl.
 *
 * Owns: the libcurl easy/multi handles of one request, URL building with escaped query
 * values, body upload (memory or streamed from a FILE), reply buffering or sinking, and
 * turning libcurl failures into one readable line, a Prefer header when asked, and whether a
 * redirect may carry the bearer token (client_redirect_allowed; redirects are never followed
 * here: the caller decides). The transfer runs on a multi handle so
 * a stop flag (SIGINT during `trib subscribe`) is seen within a poll interval.
 * Must not: print, parse JSON, or know what the paths mean. */
#include "node/client.h"
#include "gossip/token.h"
#include "node/config.h"

#include <curl/curl.h>
#include <sodium.h>
#include <errno.h>
#include <time.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECT_TIMEOUT_S 5L
#define REQUEST_TIMEOUT_S 120L
#define POLL_MS_STOPPABLE 200
#define POLL_MS_DEFAULT   1000
#define CONNECT_HINT      "(is trib agent running? set --node or TRIB_NODE)"

typedef struct {
    CURL *h;
    const client_req_t *rq;
    client_reply_t *rep;
    size_t cap;
    int sink_failed;
    int too_large;
    int oom;
    int read_failed;
    int read_errno;
} xfer_t;

int client_global_init(char *err, size_t errlen)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

void client_global_cleanup(void)
{
    curl_global_cleanup();
}

void client_reply_free(client_reply_t *rep)
{
    if (!rep)
        return;
    free(rep->body);
    rep->body = NULL;
    rep->len = 0;
}

/* ---------------------------------------------------------------- base URL */

static char *url_part(CURLU *u, CURLUPart what, CURLUcode *uc)
{
    char *v = NULL;
    *uc = curl_url_get(u, what, &v, 0);
    return *uc == CURLUE_OK ? v : NULL;
}

int client_base_url(const char *in, int default_port, char *out, size_t outlen,
                    char *err, size_t errlen)
{
    if (!in || !*in) {
        snprintf(err, errlen, "empty node address");
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)in; *p; p++)
        if (*p <= 0x20 || *p == 0x7F) {
            snprintf(err, errlen, "node address '%s' contains a space or control character", in);
            return -1;
        }
    int has_scheme = strstr(in, "://") != NULL;
    size_t n = strlen(in) + sizeof "http://127.0.0.1";
    char *full = malloc(n);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *extra = NULL;
    int rc = -1;
    if (!full || !u) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(full, n, "%s%s%s", has_scheme ? "" : "http://", in[0] == ':' ? "127.0.0.1" : "",
             in);
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, full, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "bad node address '%s': %s", in, curl_url_strerror(uc));
        goto out;
    }
    scheme = url_part(u, CURLUPART_SCHEME, &uc);
    host = url_part(u, CURLUPART_HOST, &uc);
    if (!scheme || !host || !*host) {
        snprintf(err, errlen, "bad node address '%s': no host", in);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "bad node address '%s': scheme must be http or https", in);
        goto out;
    }
    static const struct { CURLUPart part; const char *what; } refused[] = {
        { CURLUPART_USER, "credentials" },
        { CURLUPART_QUERY, "a query" },
        { CURLUPART_FRAGMENT, "a fragment" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        extra = url_part(u, refused[i].part, &uc);
        if (extra) {
            snprintf(err, errlen, "bad node address '%s': %s is not allowed", in,
                     refused[i].what);
            goto out;
        }
    }
    port = url_part(u, CURLUPART_PORT, &uc);
    path = url_part(u, CURLUPART_PATH, &uc);
    size_t plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/')
        path[--plen] = '\0';
    char portbuf[16] = "";
    if (port)
        snprintf(portbuf, sizeof portbuf, ":%s", port);
    else if (!has_scheme)
        snprintf(portbuf, sizeof portbuf, ":%d", default_port);
    int w = snprintf(out, outlen, "%s://%s%s%s", scheme, host, portbuf, path ? path : "");
    if (w < 0 || (size_t)w >= outlen) {
        snprintf(err, errlen, "node address '%s' is too long", in);
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(extra);
    curl_url_cleanup(u);
    free(full);
    return rc;
}

/* ---------------------------------------------------------------- callbacks */

static int buf_append(xfer_t *x, const char *data, size_t n)
{
    client_reply_t *r = x->rep;
    if (r->len + n > CLIENT_MAX_REPLY) {
        x->too_large = 1;
        return -1;
    }
    if (r->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            x->oom = 1;
            return -1;
        }
        r->body = nb;
        x->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (n == 0)
        return 0;
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (x->rq->sink && code >= 200 && code < 300 && (!x->rq->records_only || x->rep->records)) {
        if (x->rq->sink(x->rq->sink_ctx, ptr, n) != 0) {
            x->sink_failed = 1;
            return 0;
        }
        return n;
    }
    return buf_append(x, ptr, n) == 0 ? n : 0;
}

/* The value of header name in line (n bytes) into out, trimmed; 0, or -1 when line is another. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n < k || strncasecmp(line, name, k) != 0)
        return -1;
    line += k, n -= k;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), line);
    return 0;
}

/* Keeps the reply headers the CLI uses: Trib-First-Seq (the seq of a read's first line),
 * Trib-Last-Seq (set on every records answer), Location and Preference-Applied. */
static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nitems;
    char v[32];
    if (n > 5 && !strncmp(line, "HTTP/", 5)) {   /* a new response (after a 100 Continue): its own headers */
        x->rep->location[0] = x->rep->applied[0] = '\0';
        x->rep->records = 0;
        x->rep->first_seq = -1;
    }
    header_value(line, n, "Location:", x->rep->location, sizeof x->rep->location);
    header_value(line, n, "Preference-Applied:", x->rep->applied, sizeof x->rep->applied);
    if (header_value(line, n, "Trib-Last-Seq:", v, sizeof v) == 0)
        x->rep->records = 1;
    if (header_value(line, n, "Trib-First-Seq:", v, sizeof v) == 0) {
        char *end;
        errno = 0;
        long long seq = strtoll(v, &end, 10);
        x->rep->first_seq = errno == 0 && end != v && seq >= 0 ? seq : -1;
    }
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    size_t n = fread(buf, 1, size * nitems, x->rq->upload);
    if (n == 0 && ferror(x->rq->upload)) {
        x->read_failed = 1;
        x->read_errno = errno;
        return CURL_READFUNC_ABORT;
    }
    return n;
}

/* ---------------------------------------------------------------- request setup */

static char *build_url(CURL *h, const char *base, const char *path, const char *const *query)
{
    size_t cap = strlen(base) + strlen(path) + 2;
    char *url = malloc(cap);
    if (!url)
        return NULL;
    snprintf(url, cap, "%s%s", base, path);
    char sep = '?';
    for (size_t i = 0; query && query[i]; i += 2) {
        const char *name = query[i], *value = query[i + 1];
        if (!value || !*value)
            continue;
        char *esc = curl_easy_escape(h, value, 0);
        if (!esc) {
            free(url);
            return NULL;
        }
        size_t need = strlen(url) + strlen(name) + strlen(esc) + 3;
        char *nu = realloc(url, need);
        if (!nu) {
            curl_free(esc);
            free(url);
            return NULL;
        }
        url = nu;
        size_t at = strlen(url);
        snprintf(url + at, need - at, "%c%s=%s", sep, name, esc);
        curl_free(esc);
        sep = '&';
    }
    return url;
}

/* ---------------------------------------------------------------- credentials */

static char *bearer;              /* sent with every request, or NULL */
static const char *cacert;        /* --cacert FILE for an https node, or NULL: the system's */

void client_set_token(const char *token)
{
    if (bearer) {
        sodium_memzero(bearer, strlen(bearer));
        free(bearer);
    }
    bearer = token && *token ? strdup(token) : NULL;
}

/* Drops argv[i .. i + n). */
static void drop(int *argc, char **argv, int i, int n)
{
    for (int k = i; k + n <= *argc; k++)
        argv[k] = argv[k + n];
    *argc -= n;
}

int client_auth_args(int *argc, char **argv, char *err, size_t errlen)
{
    static const char *const names[] = {"token", "token-file", "cacert"};
    const char *tok = NULL, *file = NULL;
    const char **dsts[] = {&tok, &file, &cacert};
    for (int i = 1; i < *argc;) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        size_t k = 0, nl = 0;   /* "--NAME VALUE" or "--NAME=VALUE", as every other option */
        for (; k < sizeof names / sizeof names[0]; k++) {
            nl = strlen(names[k]);
            if (!strncmp(a, "--", 2) && !strncmp(a + 2, names[k], nl) && (a[2 + nl] == '\0' || a[2 + nl] == '='))
                break;
        }
        if (k == sizeof names / sizeof names[0]) {
            i++;
            continue;
        }
        if (a[2 + nl] == '=') {
            *dsts[k] = a + 3 + nl;
            drop(argc, argv, i, 1);
            continue;
        }
        if (i + 1 >= *argc) {
            snprintf(err, errlen, "option '%s' needs a value", a);
            return -1;
        }
        *dsts[k] = argv[i + 1];
        drop(argc, argv, i, 2);
    }
    if (tok) {
        client_set_token(tok);
        return 0;
    }
    if (file) {
        char why[600];
        char *t = token_file_read(file, why, sizeof why);
        if (!t) {
            snprintf(err, errlen, "--token-file %s", why);
            return -1;
        }
        client_set_token(t);
        sodium_memzero(t, strlen(t));
        free(t);
        return 0;
    }
    client_set_token(getenv("TRIB_TOKEN"));
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h, int *ok)
{
    struct curl_slist *n = curl_slist_append(l, h);
    if (!n) {
        *ok = 0;
        return l;
    }
    return n;
}

static int setup(CURL *h, xfer_t *x, const char *url, struct curl_slist **hdrs, char *errbuf)
{
    const client_req_t *rq = x->rq;
    int ok = 1;
    struct curl_slist *l = NULL;
    char line[256];

    l = add_header(l, "Expect:", &ok);   /* no 100-continue round trip before uploads */
    if (rq->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
        l = add_header(l, line, &ok);
    }
    if (bearer) {
        size_t bl = strlen(bearer) + 32;
        char *auth = malloc(bl);
        if (!auth) {
            ok = 0;
        } else {
            snprintf(auth, bl, "Authorization: Bearer %s", bearer);
            l = add_header(l, auth, &ok);
            sodium_memzero(auth, bl);
            free(auth);
        }
    }
    if (rq->prefer) {
        snprintf(line, sizeof line, "Prefer: %s", rq->prefer);
        l = add_header(l, line, &ok);
    }
    *hdrs = l;
    if (!ok)
        return -1;

    int rc = 0;
    rc |= curl_easy_setopt(h, CURLOPT_URL, url);
    rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    rc |= curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
    rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, "trib-cli");
    rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    rc |= curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->long_lived ? 0L : REQUEST_TIMEOUT_S);
    rc |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cacert)
        rc |= curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    rc |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(h, CURLOPT_HEADERDATA, x);

    const char *m = rq->method ? rq->method : "GET";
    if (rq->body) {
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        if (strcmp(m, "POST") != 0)
            rc |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    } else if (rq->upload) {
        rc |= curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        rc |= curl_easy_setopt(h, CURLOPT_READDATA, x);
        if (strcmp(m, "POST") == 0) {
            rc |= curl_easy_setopt(h, CURLOPT_POST, 1L);
            rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->upload_len);
            if (rq->upload_len < 0)
                *hdrs = l = add_header(l, "Transfer-Encoding: chunked", &ok);
        } else {
            rc |= curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            rc |= curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_len);
            if (strcmp(m, "PUT") != 0)
                rc |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
        }
    } else if (strcmp(m, "GET") != 0) {
        rc |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
    rc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    return (rc == 0 && ok) ? 0 : -1;
}

/* ---------------------------------------------------------------- the transfer */

/* 1 when fd reports an error or hang-up: for a pipe, its reader has gone. */
static int fd_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = 0 };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

#define NO_ANSWER (-2)   /* run_multi: no reply begun within rq->answer_s */

/* Runs h to completion on a multi handle, watching *stop and *watch_fd. Returns 0 with *res
 * set, CLIENT_STOPPED, CLIENT_GONE, NO_ANSWER, or -1 on a multi error (message in err). */
static int run_multi(CURL *h, const client_req_t *rq, CURLcode *res, char *err, size_t errlen)
{
    CURLM *m = curl_multi_init();
    if (!m) {
        snprintf(err, errlen, "curl_multi_init failed");
        return -1;
    }
    CURLMcode mc = curl_multi_add_handle(m, h);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        curl_multi_cleanup(m);
        return -1;
    }
    int rc = 0, running = 1;
    int poll_ms = rq->stop || rq->watch_fd || rq->answer_s ? POLL_MS_STOPPABLE : POLL_MS_DEFAULT;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK || !running)
            break;
        if (rq->stop && *rq->stop) {
            rc = CLIENT_STOPPED;
            break;
        }
        if (rq->watch_fd && fd_gone(*rq->watch_fd)) {
            rc = CLIENT_GONE;
            break;
        }
        if (rq->answer_s > 0) {
            long code = 0;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            if (code == 0 && (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >=
                                 (long)rq->answer_s * 1000) {
                rc = NO_ANSWER;
                break;
            }
        }
        mc = curl_multi_poll(m, NULL, 0, poll_ms, NULL);
        if (mc != CURLM_OK)
            break;
    }
    if (rc == 0 && rq->stop && *rq->stop)
        rc = CLIENT_STOPPED;   /* the signal may have ended the transfer: report the stop */
    if (rc == 0 && mc != CURLM_OK) {
        snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
        rc = -1;
    }
    *res = CURLE_OK;
    if (rc == 0) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                *res = msg->data.result;
    }
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return rc;
}

/* hint: what to check when base cannot be reached ("" for none). */
static void describe_failure(CURL *h, const xfer_t *x, CURLcode res, const char *base, const char *hint,
                             const char *errbuf, char *err, size_t errlen)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(res);
    long os_errno = 0;
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        snprintf(err, errlen, "cannot reach node at %s: %s %s", base,
                 os_errno ? strerror((int)os_errno) : why, hint);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(err, errlen, "cannot reach node at %s: %s %s", base, why, hint);
        return;
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connected = 0;
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        if (connected == 0)
            snprintf(err, errlen, "cannot reach node at %s: connection timed out after %ld s %s",
                     base, CONNECT_TIMEOUT_S, hint);
        else
            snprintf(err, errlen, "node at %s did not answer within %ld s", base,
                     REQUEST_TIMEOUT_S);
        return;
    }
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: {
        /* a node serving HTTPS (--tls-cert) drops a plain HTTP request without a word; a node's peer
         * port (--listen, ZeroMQ) or data link port (Noise) answers HTTP with a reset or nothing */
        long hdr = 0;
        curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &hdr);
        const char *tip = "";
        if (hdr == 0 && res != CURLE_PARTIAL_FILE)
            tip = !strncmp(base, "http://", 7)
                      ? " (nothing came back over HTTP: if the node serves HTTPS, give its URL as https://...; if "
                        "this is its peer port (--listen) or data link port, give its HTTP address (--http); a node "
                        "at its connection limit also closes without a word)"
                      : " (nothing came back over HTTP: if this is the node's peer port (--listen) or data link "
                        "port, give its HTTP address (--http); a node at its connection limit also closes without "
                        "a word)";
        snprintf(err, errlen, "connection to node at %s lost: %s%s", base, why, tip);
        return;
    }
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:   /* e.g. a peer port's ZeroMQ greeting: "Received HTTP/0.9 ..." */
        snprintf(err, errlen, "request to node at %s failed: %s (something answered there, but not HTTP: give the "
                 "node's HTTP address, its --http, not its peer port --listen or its data link port)", base, why);
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
        snprintf(err, errlen, "request to node at %s failed: %s (a node whose certificate a private CA signed: "
                 "give that CA with --cacert FILE)", base, why);
        return;
    default:
        snprintf(err, errlen, "request to node at %s failed: %s%s", base, why,
                 res == CURLE_SSL_CONNECT_ERROR && strstr(why, "wrong version number")
                     ? " (no TLS there: the node serves plain HTTP, give its URL as http://...; or this is its "
                       "peer port (--listen) or data link port, give its HTTP address (--http))" : "");
        return;
    }
}

int client_request(const char *base_url, const client_req_t *rq, client_reply_t *rep,
                   char *err, size_t errlen)
{
    rep->status = 0;
    rep->first_seq = -1;
    rep->location[0] = rep->applied[0] = '\0';
    rep->records = 0;
    rep->body = NULL;
    rep->len = 0;
    xfer_t x = { .rq = rq, .rep = rep };
    if (buf_append(&x, "", 0) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "curl_easy_init failed");
        return -1;
    }
    x.h = h;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    char *url = build_url(h, base_url, rq->path, rq->query);
    if (!url) {
        snprintf(err, errlen, "out of memory building the request URL");
        goto out;
    }
    if (setup(h, &x, url, &hdrs, errbuf) != 0) {
        snprintf(err, errlen, "setting up the request to %s failed", url);
        goto out;
    }

    CURLcode res = CURLE_OK;
    int mr = run_multi(h, rq, &res, err, errlen);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->status);
    if (mr == CLIENT_STOPPED || mr == CLIENT_GONE) {
        rc = mr;
    } else if (mr == NO_ANSWER) {
        snprintf(err, errlen, "%s gave no answer within %d s", base_url, rq->answer_s);
    } else if (mr < 0) {
        rc = -1;
    } else if (x.sink_failed) {
        rc = CLIENT_SINK;
    } else if (x.read_failed) {
        snprintf(err, errlen, "reading %s: %s", rq->upload_name ? rq->upload_name : "upload",
                 strerror(x.read_errno));
    } else if (x.too_large) {
        snprintf(err, errlen, "reply from node at %s is over %u MiB", base_url,
                 CLIENT_MAX_REPLY >> 20);
    } else if (x.oom) {
        snprintf(err, errlen, "out of memory reading the reply from %s", base_url);
    } else if (res != CURLE_OK) {
        describe_failure(h, &x, res, base_url, rq->hint ? rq->hint : CONNECT_HINT, errbuf, err, errlen);
    } else {
        rc = 0;
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    return rc;
}

/* ---------------------------------------------------------------- redirects */

/* scheme and "host:1" (for config_addr_loopback) of url; 0 or -1. */
static int url_scheme_host(const char *url, char *scheme, size_t slen, char *hostport, size_t hlen)
{
    CURLU *u = curl_url();
    char *sc = NULL, *host = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &sc, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        strlen(sc) < slen && strlen(host) + 3 <= hlen) {
        snprintf(scheme, slen, "%s", sc);
        snprintf(hostport, hlen, "%s:1", host);
        rc = 0;
    }
    curl_free(sc);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int client_redirect_allowed(const char *base, const char *location, char *why, size_t whylen)
{
    char bs[16], bh[300], ls[16], lh[300];
    if (url_scheme_host(base, bs, sizeof bs, bh, sizeof bh) < 0 ||
        url_scheme_host(location, ls, sizeof ls, lh, sizeof lh) < 0 ||
        (strcmp(ls, "http") != 0 && strcmp(ls, "https") != 0)) {
        snprintf(why, whylen, "the owner's address '%.300s' is not an http(s) URL", location);
        return 0;
    }
    int from_https = !strcmp(bs, "https"), to_https = !strcmp(ls, "https");
    if (from_https && !to_https) {
        snprintf(why, whylen, "the owner's address %.300s is plain http, asked over https", location);
        return 0;
    }
    if (bearer && !to_https && !config_addr_loopback(lh) && (from_https || config_addr_loopback(bh))) {
        snprintf(why, whylen, "the owner's address %.300s is plain http beyond this machine: the token "
                 "is not sent there in clear text", location);
        return 0;
    }
    return 1;
}
