/* tests/harness.c - see harness.h. Shared by every test binary. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tests/harness.h"
#include "gossip/clock.h"
#include "gossip/identity.h"

/* Every node started, by copy: a test's h_node_t may live on its stack, gone by the time the
 * suite's .fini runs h_cleanup_all. Keyed by data dir; pid kept current by restart and stop. */
#define MAX_NODES 64
static struct {
    pid_t pid;
    char dir[256], log[300];
    char url[80];           /* "http://127.0.0.1:PORT/" (https with --tls-cert) once started */
    char cacert[160];       /* --tls-cert of the node: what h_http trusts for its https URL */
    char token[4200];       /* its DATA/admin.token */
} started[MAX_NODES];
static int nstarted;

static int reg_find(const char *dir)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i].dir[0] && !strcmp(started[i].dir, dir))
            return i;
    return -1;
}

static void reg_pid(const h_node_t *n)
{
    int i = reg_find(n->dir);
    if (i >= 0)
        started[i].pid = n->pid;
}

long h_now_ms(void)
{
    return (long)clock_ms();
}

long h_tcp_buf_max(const char *which)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/sys/net/ipv4/%s", which);
    FILE *f = fopen(path, "r");
    long lo, def, max = -1;
    if (f && fscanf(f, "%ld %ld %ld", &lo, &def, &max) != 3)
        max = -1;
    if (f)
        fclose(f);
    return max;
}

int h_connect_small(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rcv = 4096;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int h_slow_get(const h_node_t *n, const char *path, const char *token)
{
    char req[4800];
    int fd = h_connect_small(n->http_port),
        len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n", path,
                       token ? token : n->token);
    if (fd >= 0 && (len < 0 || (size_t)len >= sizeof req || write(fd, req, (size_t)len) != len)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

long h_rss_anon_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8))
            kib = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

int h_wait(int (*cond)(void *), void *ctx, int timeout_ms)
{
    long deadline = h_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return 1;
        if (h_now_ms() > deadline)
            return 0;
        struct timespec ts = {0, 5 * 1000000L}; /* poll interval, not synchronisation */
        nanosleep(&ts, NULL);
    }
}

const char *h_trib_path(void)
{
    const char *t = getenv("TRIB");
    return t && *t ? t : "build/trib";
}

const char *h_repo_path(const char *rel, char *buf, size_t cap)
{
    const char *root = getenv("TRIB_REPO");
    if (!root) {
        static char cwd[512];
        if (!getcwd(cwd, sizeof cwd))
            strcpy(cwd, ".");
        root = cwd;
    }
    snprintf(buf, cap, "%s/%s", root, rel);
    return buf;
}

/* Ports for test nodes: 10000-19999, below the ephemeral range (32768-60999, which the kernel
 * gives for port 0 and for outgoing connections, so a port taken from it can be gone by the time a
 * node binds it) and apart from the demo's and the benchmarks' 20000-31999. Each process (Criterion
 * runs every test in its own) starts in its own block of 100, chosen from its PID, and steps
 * through the range from there; a candidate is returned only when it binds on loopback now. A port
 * taken between this check and the node's bind makes the node exit: h_node_start retries. */
#define PORT_LO 10000
#define PORT_SPAN 10000

/* Claims port for this process's life (a lock file under /tmp/trib-test-ports, held open): another
 * test process, of this suite or of a parallel one, skips it even while no node listens on it, as
 * between a node's SIGKILL and its restart on the same ports. 1 claimed, 0 someone else's. */
static int port_claim(int port)
{
    static const char dir[] = "/tmp/trib-test-ports";
    char path[64];
    snprintf(path, sizeof path, "%s/%d", dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0 && errno == ENOENT && (mkdir(dir, 0777) == 0 || errno == EEXIST)) {
        chmod(dir, 01777);   /* shared by every user's tests, as /tmp */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    }
    if (fd < 0)
        return 1;   /* no lock to be had: the bind test alone decides, as before */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 0;
    }
    return 1;       /* fd stays open: the lock goes with this process */
}

int h_free_port(void)
{
    static int next = -1, tried;
    if (next < 0)
        next = (int)(getpid() % (PORT_SPAN / 100)) * 100;
    for (; tried < PORT_SPAN; tried++) {
        int port = PORT_LO + next;
        next = (next + 1) % PORT_SPAN;
        if (!port_claim(port))
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return -1;
}

int h_listen(int port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static size_t sink(char *p, size_t sz, size_t n, void *ctx)
{
    h_resp_t *r = ctx;
    char *b = realloc(r->body, r->len + sz * n + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, sz * n);
    r->body = b;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t header(char *p, size_t sz, size_t n, void *ctx)
{
    h_resp_t *r = ctx;
    if (!strncasecmp(p, "Trib-First-Seq:", 15))
        sscanf(p + 15, " %31s", r->first_seq);
    else if (!strncasecmp(p, "Retry-After:", 12))
        sscanf(p + 12, " %15s", r->retry_after);
    return sz * n;
}

const char *h_token_for(const char *url)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i].url[0] && started[i].token[0] && !strncmp(url, started[i].url, strlen(started[i].url)))
            return started[i].token;
    return NULL;
}

/* The --tls-cert of the node this process started at url (https), or NULL. */
static const char *cacert_for(const char *url)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i].url[0] && started[i].cacert[0] && !strncmp(url, started[i].url, strlen(started[i].url)))
            return started[i].cacert;
    return NULL;
}

int h_http(const char *method, const char *url, const char *ctype, const void *body, size_t len, h_resp_t *r)
{
    return h_http_token(method, url, ctype, body, len, h_token_for(url), r);
}

int h_http_token(const char *method, const char *url, const char *ctype, const void *body, size_t len,
                 const char *token, h_resp_t *r)
{
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    struct curl_slist *hdrs = NULL;
    if (ctype) {
        char h[128];
        snprintf(h, sizeof h, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, h);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token && *token) {
        char h[4300];
        snprintf(h, sizeof h, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    const char *ca = cacert_for(url);
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

void h_resp_free(h_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *h_get_json(const char *base, const char *path, long *status)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    h_resp_t r;
    json_t *j = NULL;
    int ok = h_http("GET", url, NULL, NULL, 0, &r) == 0;
    if (status)
        *status = ok ? r.status : 0;
    if (ok && (status || r.status == 200))
        j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    h_resp_free(&r);
    return j;
}

typedef struct {
    const char *base, *domain, *state, *http;
} member_cond_t;

static int sees_member(void *ctx)
{
    const member_cond_t *c = ctx;
    json_t *j = h_get_json(c->base, "/v1/members", NULL), *m;
    size_t i;
    int ok = 0;
    json_array_foreach(json_object_get(j, "members"), i, m) {
        const char *d = json_string_value(json_object_get(m, "domain")),
                   *st = json_string_value(json_object_get(m, "state")),
                   *http = json_string_value(json_object_get(m, "http"));
        if (d && st && !strcmp(d, c->domain) && !strcmp(st, c->state) && (!c->http || (http && !strcmp(http, c->http))))
            ok = 1;
    }
    json_decref(j);
    return ok;
}

int h_wait_member(const char *base, const char *domain, const char *state, const char *http, int timeout_ms)
{
    member_cond_t c = {base, domain, state, http};
    return h_wait(sees_member, &c, timeout_ms);
}

json_t *h_call(const char *method, const char *base, const char *path, const char *token, const char *body,
               long *status)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    if (!body && !strcmp(method, "POST"))
        body = "";
    h_resp_t r;
    int ok = h_http_token(method, url, "application/json", body, body ? strlen(body) : 0, token, &r) == 0;
    *status = ok ? r.status : 0;
    json_t *j = ok ? json_loadb(r.body ? r.body : "", r.len, JSON_DECODE_ANY, NULL) : NULL;
    h_resp_free(&r);
    return j;
}

typedef struct {
    const char *base, *path, *token;
    long want;
} status_wait_t;

static int answers(void *ctx)
{
    status_wait_t *w = ctx;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", w->base, w->path);
    h_resp_t r;
    int ok = h_http_token("GET", url, NULL, NULL, 0, w->token, &r) == 0 && r.status == w->want;
    h_resp_free(&r);
    return ok;
}

int h_wait_status(const char *base, const char *path, const char *token, long want, int timeout_ms)
{
    status_wait_t w = {base, path, token, want};
    return h_wait(answers, &w, timeout_ms);
}

/* The value of the first of base's /metrics lines naming prefix followed by a byte of after, or
 * (all) the sum of every such line; 0 when none, -1 when /metrics does not answer 200. */
static double metric_lines(const char *base, const char *prefix, const char *after, int all)
{
    char url[512];
    snprintf(url, sizeof url, "%s/metrics", base);
    h_resp_t r;
    if (h_http("GET", url, NULL, NULL, 0, &r) != 0 || r.status != 200) {
        h_resp_free(&r);
        return -1;
    }
    double v = 0;
    size_t pl = strlen(prefix);
    for (const char *line = r.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, prefix, pl) == 0 && line[pl] && strchr(after, line[pl]) && strchr(line + pl, ' ')) {
            v += strtod(strchr(line + pl, ' ') + 1, NULL);
            if (!all)
                break;
        }
    h_resp_free(&r);
    return v;
}

double h_metric(const char *base, const char *series) { return metric_lines(base, series, " ", 0); }

double h_metric_sum(const char *base, const char *family) { return metric_lines(base, family, "{ ", 1); }

int h_credential_code(const char *code)
{
    static const char *const codes[] = {"token_required", "token_invalid", "token_expired", "token_revoked",
                                        "wrong_domain", "kind_insufficient", "out_of_scope", "grant_required"};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (!strcmp(codes[i], code))
            return 1;
    return 0;
}

static int status_ok(void *ctx)
{
    h_node_t *n = ctx;
    int st;
    if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
        n->pid = -1;
        return 1; /* exited: stop waiting, caller sees pid -1 */
    }
    char url[128];
    snprintf(url, sizeof url, "%s/v1/status", n->url);
    h_resp_t r;
    /* 401: a node started with --require-token 1 is up too */
    int ok = h_http("GET", url, NULL, NULL, 0, &r) == 0 && (r.status == 200 || r.status == 401);
    if (ok && r.status == 200) {
        /* ... and it must be this node: with tests running in parallel, another process's agent may
         * hold the port this one failed to bind (it then exits, and the start is retried). */
        const char *data = n->dir;
        for (int k = 0; k + 1 < n->nextra; k++)
            if (!strcmp(n->extra[k], "--data"))
                data = n->extra[k + 1];
        identity_t id;
        int created = 0;
        char err[256], path[300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/identity.key", data);
        json_t *j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
        const char *node_id = json_string_value(json_object_get(j, "node_id"));
        if (node_id && stat(path, &sb) == 0 && identity_load_or_create(data, &id, &created, err, sizeof err) == 0) {
            ok = !strcmp(node_id, id.hex);
            identity_wipe(&id);
        } else {
            ok = 0;   /* no identity in its data dir yet: whoever answers is not this node */
        }
        json_decref(j);
    }
    h_resp_free(&r);
    return ok;
}

static pid_t spawn_agent(h_node_t *n)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
    }
    char http[64];
    snprintf(http, sizeof http, "127.0.0.1:%d", n->http_port);
    const char *argv[64] = {h_trib_path(), "agent", "--data", n->dir, "--domain", n->domain, "--http", http,
                            "--listen", n->peer};
    int k = 10;
    for (int i = 0; i < n->nextra && k < 62; i++)
        argv[k++] = n->extra[i];
    argv[k] = NULL;
    execv(argv[0], (char **)argv);
    _exit(127);
}

int h_node_restart(h_node_t *n)
{
    n->pid = spawn_agent(n);
    reg_pid(n);
    if (n->pid < 0)
        return -1;
    if (!h_wait(status_ok, n, 20000) || n->pid < 0)
        return -1;
    const char *data = n->dir; /* --data among the extra arguments wins, as it does for the agent */
    for (int k = 0; k + 1 < n->nextra; k++)
        if (!strcmp(n->extra[k], "--data"))
            data = n->extra[k + 1];
    char path[300];
    snprintf(path, sizeof path, "%s/admin.token", data);
    char *t = h_read_file(path, NULL);
    n->token[0] = '\0';
    if (t) {
        t[strcspn(t, "\r\n")] = '\0';
        snprintf(n->token, sizeof n->token, "%s", t);
        free(t);
    }
    int i = reg_find(n->dir);
    for (int j = 0; j < nstarted; j++) /* a port taken again by a later node: its token wins */
        if (!strncmp(started[j].url, n->url, strlen(n->url)) && started[j].url[strlen(n->url)] == '/')
            started[j].url[0] = '\0';
    if (i >= 0) {
        snprintf(started[i].url, sizeof started[i].url, "%s/", n->url);
        snprintf(started[i].token, sizeof started[i].token, "%s", n->token);
    }
    return 0;
}

int h_node_start(h_node_t *n, const char *domain, ...)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "/tmp/trib-test-XXXXXX");
    if (!mkdtemp(n->dir))
        return -1;
    snprintf(n->log, sizeof n->log, "%s.log", n->dir);
    snprintf(n->domain, sizeof n->domain, "%s", domain);
    va_list ap;
    va_start(ap, domain);
    const char *a;
    int dropped = 0;   /* a test's options are all passed, or the start fails: none left out unseen */
    while ((a = va_arg(ap, const char *)))
        if (n->nextra < H_EXTRA_MAX)
            snprintf(n->extra[n->nextra++], sizeof n->extra[0], "%s", a);
        else
            dropped++;
    va_end(ap);
    if (dropped) {
        fprintf(stderr, "h_node_start: %d agent arguments beyond the %d the harness keeps\n", dropped, H_EXTRA_MAX);
        rmdir(n->dir);
        return -1;
    }
    if (nstarted < MAX_NODES) {
        started[nstarted].pid = -1;
        snprintf(started[nstarted].dir, sizeof started[0].dir, "%s", n->dir);
        snprintf(started[nstarted].log, sizeof started[0].log, "%s", n->log);
        nstarted++;
    }
    for (int attempt = 0; attempt < 5; attempt++) { /* a port can be taken between probe and bind */
        n->http_port = h_free_port();
        n->peer_port = h_free_port();
        const char *cert = NULL; /* --tls-cert: the node serves https, trusted through that certificate */
        for (int k = 0; k + 1 < n->nextra; k++)
            if (!strcmp(n->extra[k], "--tls-cert"))
                cert = n->extra[k + 1];
        snprintf(n->url, sizeof n->url, "%s://127.0.0.1:%d", cert ? "https" : "http", n->http_port);
        int me = reg_find(n->dir);
        for (int j = 0; me >= 0 && j < nstarted; j++) /* the port's earlier owner no longer answers there */
            if (j != me && !strncmp(started[j].url, n->url, strlen(n->url)) && started[j].url[strlen(n->url)] == '/')
                started[j].url[0] = '\0';
        if (me >= 0) {
            snprintf(started[me].url, sizeof started[me].url, "%s/", n->url);
            snprintf(started[me].cacert, sizeof started[me].cacert, "%s", cert ? cert : "");
            started[me].token[0] = '\0';
        }
        snprintf(n->peer, sizeof n->peer, "127.0.0.1:%d", n->peer_port);
        if (h_node_restart(n) == 0)
            return 0;
        if (n->pid > 0) /* alive but not answering: stop it before trying new ports */
            h_node_stop(n, SIGKILL);
    }
    return -1;
}

int h_node_stop(h_node_t *n, int sig)
{
    if (n->pid <= 0)
        return -1;
    kill(n->pid, sig);
    long deadline = h_now_ms() + 20000;
    int st = 0;
    for (;;) {
        pid_t p = waitpid(n->pid, &st, WNOHANG);
        if (p == n->pid)
            break;
        if (h_now_ms() > deadline) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, &st, 0);
            n->pid = -1;
            reg_pid(n);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    n->pid = -1;
    reg_pid(n);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static void rm_rf(const char *dir)
{
    pid_t p = fork();
    if (p == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (p > 0)
        waitpid(p, NULL, 0);
}

static void cleanup(pid_t pid, const char *dir, const char *log)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (dir[0]) {
        if (getenv("TRIB_KEEP_LOGS") == NULL)
            unlink(log);
        rm_rf(dir);
    }
}

void h_node_cleanup(h_node_t *n)
{
    if (n->pid > 0)
        h_node_stop(n, SIGKILL);
    int i = n->dir[0] ? reg_find(n->dir) : -1;
    if (i >= 0)
        started[i].dir[0] = '\0';
    cleanup(-1, n->dir, n->log);
    n->dir[0] = '\0';
}

void h_cleanup_all(void)
{
    for (int i = 0; i < nstarted; i++)
        cleanup(started[i].pid, started[i].dir, started[i].log);
    nstarted = 0;
}

char *h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        r = fread(buf + n, 1, 65536, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int h_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

int h_trib(h_node_t *n, const char *in_path, char **out, char **errout, ...)
{
    char outp[] = "/tmp/trib-out-XXXXXX", errp[] = "/tmp/trib-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    if (ofd < 0 || efd < 0) {
        if (ofd >= 0)
            close(ofd), unlink(outp);
        if (efd >= 0)
            close(efd), unlink(errp);
        return -1;
    }
    const char *argv[64] = {h_trib_path()};
    int k = 1;
    va_list ap;
    va_start(ap, errout);
    const char *a;
    while ((a = va_arg(ap, const char *)) && k < 63)
        argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        if (n)
            setenv("TRIB_NODE", n->url, 1);
        if (n && n->token[0] && !getenv("TRIB_TOKEN"))
            setenv("TRIB_TOKEN", n->token, 1);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    int st = 0;
    if (pid > 0) /* not waitpid(-1): that would reap one of the nodes */
        waitpid(pid, &st, 0);
    close(ofd);
    close(efd);
    if (out)
        *out = h_read_file(outp, NULL);
    if (errout)
        *errout = h_read_file(errp, NULL);
    unlink(outp);
    unlink(errp);
    if (pid < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
