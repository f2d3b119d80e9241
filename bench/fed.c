/* bench/fed.c - federation benchmark (issue 3): N real nodes on loopback, Tributary beside
 * HashiCorp Serf, measured the same way in one run, printed as a table per N with ratios.
 *
 * Usage: fed TRIB_BINARY [N...]       (default N = 5 10 20; env FED_PUBS, FED_IDLE_S)
 *        fed TRIB_BINARY concurrent [N [PER]]   (issue 9 item 1: N nodes each publish PER at once;
 *        10 x 1000 by default; Tributary only)
 *        fed TRIB_BINARY chartered [N...]   (issue 10: Tributary open beside Tributary chartered:
 *        join time and publish reach-all, ratio chartered/open; default N = 20; FED_CHARTER_ROUNDS
 *        rounds, 3 by default, alternating which mode goes first; median and range)
 *        fed TRIB_BINARY catchup [DOMAINS [PER]]   (issue 9 item 5: a node joins a seed whose store
 *        holds DOMAINS x PER entries, 100 x 1000 by default, written through the library;
 *        FED_CHARTERED=1: the federation chartered, every domain's key certified, the
 *        certificates handed to the seed's federation log before the joiner starts)
 *
 * Owns: starting/stopping both kinds of clusters, reading every node's log pipe, timing with
 * CLOCK_MONOTONIC in this one process, and the report on stdout. Methods (also in README.md):
 *  - all alive: node 0 is started and ready first; then the clock starts and nodes 1..N-1 are
 *    forked, each seeded with node 0; stop when every node's log has shown every other node
 *    turn alive (trib: "member D (...) at A: X -> alive"; serf: "EventMemberJoin: NAME").
 *  - publish: Tributary = HTTP PUT of a new manifest on node 0 (signed catalog entry, verified
 *    on every hop); Serf = a user event sent over node 0's RPC socket (what `serf event` does,
 *    without the CLI's start-up time). Clock from just before the request is written to the
 *    moment the last other node has it. Serf arrival: the agent's own log line "Received
 *    event: user-event: NAME" read from its pipe. Tributary arrival, the same way: the agent's
 *    own log line "catalog: accepted n0 seq K" (logged at debug level once the entry is verified
 *    and stored). FED_TRIB_POLL=1 instead polls GET /v1/products/ID on every other node over a
 *    keep-alive connection (curl multi), one request in flight per node, next one FED_POLL_US
 *    after the previous answer (an upper bound: late by <= poll gap + one request).
 *  - failure detection: SIGKILL of node N-1, clock until every other node's log shows it dead
 *    (trib "-> dead"; serf "EventMemberFailed").
 *  - idle: after the cluster settled, VmRSS per node from /proc/PID/status; bytes per second
 *    per node over FED_IDLE_S from nftables counters on the loopback output hook for packets to
 *    or from the cluster's peer ports (IP bytes, TCP and UDP, both systems the same way);
 *    Tributary's own trib_gossip_bytes_total (message payload) is shown beside it.
 * Must not: leave a process, an nftables table or a temp dir behind (atexit + signals). */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/wait.h>
#include "bench/bench.h"
#include "bench/charter.h"
#include "gossip/entry.h"
#include "storage/store.h"

#define MAXN 32
#define PUB_TIMEOUT_S 10
#define JOIN_TIMEOUT_S 60
#define FAIL_TIMEOUT_S 60
#define SLOW_MS 500         /* beyond this a publish waited for a periodic round, not the push */

enum { SYS_TRIB, SYS_SERF };
enum { ST_UNKNOWN, ST_ALIVE, ST_SUSPECT, ST_DEAD, ST_LEFT };
static const char *sys_name[] = {"tributary", "serf"};

static const char *trib_bin;
static int npubs = 30, idle_s = 20, poll_us = 1000;
static int trib_poll;               /* FED_TRIB_POLL=1: time trib arrival by HTTP polling, not its log */
static int conc_mode;               /* concurrent-publisher run: agents log at info, not debug */
static int chartered;               /* trib nodes run with --charter/--cert, seeds NODE_ID@HOST:PORT */
static int join_cmp;                /* the chartered comparison: join figures, no idle window, no kill */
static char node0_hex[ID_HEX_LEN];
static char nft_table[64];
static int nft_ok;

typedef struct {
    double all_alive_s;
    double pub_p50_ms, pub_p90_ms, pub_p99_ms, pub_max_ms;
    int pubs_slow;          /* publishes that took > SLOW_MS to reach everyone */
    double put_p50_ms, put_p99_ms;  /* trib: PUT answered by node 0 (signed, stored durably) */
    int pubs, pubs_late;
    double fail_s;
    double rss_mib, anon_mib, pss_mib;
    double wire_bps;        /* per node, -1 when not measured */
    double wire_pps;        /* packets per second per node */
    double app_bps;         /* trib only: trib_gossip_bytes_total out per node */
    /* join_cmp: per node, from its fork to holding full membership and node 0's catalog entry */
    double join_p50_s, join_max_s;
    double member_p50_s;    /* the same, membership alone (without the catalog entry) */
    double entry_wait_p50_s; /* per node, from full membership until node 0's entry (0 when it came first) */
    double listen_p50_s, listen_max_s; /* from its fork until its log says it listens (start-up alone) */
    double jc[14];          /* join counters summed over the nodes when the last one joined (JC_*) */
    double join_cpu_s;      /* CPU seconds (user + system) of all nodes when the last one joined */
} result_t;

/* Counters read from every node's /metrics the moment the last node joined (join_cmp). */
static const char *jc_key[] = {
    "trib_gossip_messages_total{dir=\"out\",type=\"MSG_CERT_HELLO\"}",
    "trib_gossip_dropped_total{reason=\"hello_refused\"}",
    "trib_gossip_dropped_total{reason=\"uncertified\"}",
    "trib_gossip_dropped_total{reason=\"zap_denied\"}",
    "trib_gossip_dropped_total{reason=\"send_dropped\"}",
    "trib_gossip_dropped_total{reason=\"handshake_failed_out\"}",
    "trib_fedlog_accepted_total{kind=\"certificate\"}",
    "trib_gossip_messages_total{dir=\"in\",type=\"MSG_FED_PUSH\"}",
    "trib_gossip_connections_total{lane=\"priority\"}",
    "trib_gossip_connections_total{lane=\"bulk\"}",
    "trib_gossip_messages_total{dir=\"out\",type=\"MSG_FED_SYNC\"}",
    "trib_fedlog_commits_total",
    "trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"}",
    "trib_catalog_rounds_total{kind=\"opened\"}",
};
/* FED_METRICS=1 (diagnosis): every sample of these families, summed over the nodes at the last
 * join, printed open beside chartered after each round. */
#define DM_MAX 400
static const char *dm_prefix[] = {"trib_gossip_", "trib_swim_", "trib_peer", "trib_trust_", "trib_probe_rtt_ms_",
                                  "trib_fedlog_"};
static char dm_name[DM_MAX][160];
static double dm_val[DM_MAX][2];
static int dm_n;

static void dm_add(const char *text, int mode)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (*p == '#')
            continue;
        int want = 0;
        for (size_t k = 0; k < sizeof dm_prefix / sizeof dm_prefix[0] && !want; k++)
            want = !strncmp(p, dm_prefix[k], strlen(dm_prefix[k]));
        const char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
        if (!want || !sp || (nl && sp > nl) || (size_t)(sp - p) >= sizeof dm_name[0])
            continue;
        int i = 0;
        while (i < dm_n && (strncmp(dm_name[i], p, (size_t)(sp - p)) || dm_name[i][sp - p]))
            i++;
        if (i == dm_n) {
            if (dm_n == DM_MAX)
                continue;
            memcpy(dm_name[i], p, (size_t)(sp - p));
            dm_name[i][sp - p] = '\0';
            dm_val[i][0] = dm_val[i][1] = 0;
            dm_n++;
        }
        dm_val[i][mode] += strtod(sp + 1, NULL);
    }
}

static void dm_print(void)
{
    for (int i = 0; i < dm_n; i++)
        if (dm_val[i][0] || dm_val[i][1])
            fprintf(stderr, "  %-90s %10.0f %10.0f\n", dm_name[i], dm_val[i][0], dm_val[i][1]);
    dm_n = 0;
}

static const char *jc_label[] = {"hellos sent", "hellos refused", "msgs dropped uncertified", "ZAP denied",
                                 "sends dropped", "handshakes failed (out)", "fedlog certs accepted",
                                 "fed pushes received", "connections (priority)", "connections (bulk)",
                                 "fed syncs sent", "fedlog commits", "entries refused uncertified",
                                 "catalog rounds opened"};
#define JC_N (int)(sizeof jc_key / sizeof jc_key[0])
_Static_assert(sizeof jc_key / sizeof jc_key[0] == sizeof jc_label / sizeof jc_label[0] &&
               sizeof jc_key / sizeof jc_key[0] <= sizeof ((result_t *)0)->jc / sizeof(double), "join counters");

typedef struct {
    CURL *h;
    int in_flight, done;
    uint64_t due;
    long status;
} poller_t;

typedef struct {
    int sys, n;
    int base, lock_fd;                  /* peer ports base+i, HTTP/RPC ports base+50+i */
    char dir[256];
    bench_proc_t procs[MAXN];
    unsigned char state[MAXN][MAXN];    /* [observer][member] */
    int ready[MAXN];
    uint64_t forked[MAXN];              /* join_cmp: when node i was forked */
    uint64_t full_t[MAXN];              /* when node i's log first showed every other node alive */
    uint64_t cat_t[MAXN];               /* when node i's log showed node 0's pre-join entry (seq 1) */
    uint64_t ready_t[MAXN];             /* when node i's log said it listens ("gossip on") */
    /* publish in progress */
    int pub_active;
    char pub_name[32];
    char pub_seq[48];                   /* trib: "catalog: accepted n0 seq K " of the publish */
    int npublished;
    uint64_t arrive[MAXN];
    /* trib: HTTP */
    CURLM *multi;
    poller_t poll[MAXN];
    CURL *put;
    long put_status;
    uint64_t put_done;
    char put_body[1024];
    /* serf: RPC */
    int rpc_fd;
    unsigned rpc_seq;
    int rpc_errors;
    int suspect_lines;                  /* log lines of a member turning suspect */
    int abort_lines;                    /* library assertion lines seen */
    char abort_line[256];               /* the last of them */
} cluster_t;

/* ------------------------------------------------------------------ log lines */

static int node_index(const char *s, size_t len)
{
    if (len < 2 || len > 3 || s[0] != 'n')
        return -1;
    int v = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < MAXN ? v : -1;
}

static int state_of(const char *s)
{
    return !strncmp(s, "alive", 5) ? ST_ALIVE : !strncmp(s, "suspect", 7) ? ST_SUSPECT
         : !strncmp(s, "dead", 4)  ? ST_DEAD  : !strncmp(s, "left", 4)     ? ST_LEFT
                                    : ST_UNKNOWN;
}

/* "... member n3 (hex) at 127.0.0.1:20003: suspect -> alive (incarnation 1)" */
static void trib_line(cluster_t *c, int obs, const char *line, uint64_t t)
{
    if (strstr(line, "Assertion failed") || strstr(line, "(abort)") || strstr(line, "Aborted")) {
        snprintf(c->abort_line, sizeof c->abort_line, "n%d: %.200s", obs, line);
        c->abort_lines++;
    }
    if (join_cmp && !c->cat_t[obs] && strstr(line, "catalog: accepted n0 seq 1 ")) {
        c->cat_t[obs] = t; /* node 0's entry published before the joins */
        return;
    }
    if (c->pub_active && !trib_poll && !c->arrive[obs] && strstr(line, c->pub_seq)) {
        c->arrive[obs] = t; /* the agent logs (debug) each peer entry it verified and stored */
        return;
    }
    if (strstr(line, "gossip on ")) {
        c->ready[obs] = 1;
        c->ready_t[obs] = t;
        return;
    }
    const char *m = strstr(line, " member ");
    if (!m)
        return;
    m += 8;
    const char *sp = strchr(m, ' ');
    const char *arrow = strstr(m, " -> ");
    if (!sp || !arrow)
        return;
    int who = node_index(m, (size_t)(sp - m));
    if (who < 0 || who >= c->n)
        return;
    int st = state_of(arrow + 4);
    c->suspect_lines += st == ST_SUSPECT && c->state[obs][who] != ST_SUSPECT;
    c->state[obs][who] = (unsigned char)st;
    if (st == ST_ALIVE && !c->full_t[obs]) {
        int all = 1;
        for (int j = 0; j < c->n && all; j++)
            all = j == obs || c->state[obs][j] == ST_ALIVE;
        if (all)
            c->full_t[obs] = t;
    }
}

/* "    2026/11/24 19:42:01 [INFO] serf: EventMemberJoin: n1 127.0.0.1" */
static void serf_line(cluster_t *c, int obs, const char *line, uint64_t t)
{
    if (strstr(line, "Serf agent running!")) {
        c->ready[obs] = 1;
        return;
    }
    const char *p;
    if ((p = strstr(line, "agent: Received event: user-event: "))) {
        p += 35;
        if (c->pub_active && !strcmp(p, c->pub_name) && !c->arrive[obs])
            c->arrive[obs] = t;
        return;
    }
    static const struct { const char *tag; int st; } ev[] = {
        {"serf: EventMemberJoin: ", ST_ALIVE},
        {"serf: EventMemberFailed: ", ST_DEAD},
        {"serf: EventMemberLeave: ", ST_LEFT},
    };
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++)
        if ((p = strstr(line, ev[i].tag))) {
            p += strlen(ev[i].tag);
            const char *sp = strchr(p, ' ');
            int who = node_index(p, sp ? (size_t)(sp - p) : strlen(p));
            if (who >= 0 && who < c->n)
                c->state[obs][who] = (unsigned char)ev[i].st;
            return;
        }
}

static void on_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t)
{
    cluster_t *c = ctx;
    if (getenv("FED_DEBUG"))
        fprintf(stderr, "[%s n%d] %s\n", sys_name[c->sys], p->tag, line);
    if (c->sys == SYS_TRIB)
        trib_line(c, p->tag, line, t);
    else
        serf_line(c, p->tag, line, t);
}

/* ------------------------------------------------------------------ HTTP (trib) */

static size_t sink(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr, (void)ud;
    return size * nmemb;
}

static void poll_start(cluster_t *c, int i)
{
    poller_t *pl = &c->poll[i];
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/n0/%s", c->base + 50 + i, c->pub_name);
    curl_easy_setopt(pl->h, CURLOPT_URL, url);
    curl_multi_add_handle(c->multi, pl->h);
    pl->in_flight = 1;
}

static void curl_done(cluster_t *c, CURL *h, uint64_t t)
{
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, h);
    if (h == c->put) {
        c->put_status = status ? status : -1;
        c->put_done = t;
        return;
    }
    for (int i = 1; i < c->n; i++)
        if (c->poll[i].h == h) {
            poller_t *pl = &c->poll[i];
            pl->in_flight = 0;
            if (status == 200 && c->pub_active && !c->arrive[i])
                c->arrive[i] = t;
            else
                pl->due = t + (uint64_t)poll_us * 1000u;
            return;
        }
}

/* ------------------------------------------------------------------ event loop */

static void rpc_drain(cluster_t *c)
{
    uint8_t buf[4096];
    ssize_t n;
    while ((n = recv(c->rpc_fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        for (ssize_t i = 0; i + 6 < n; i++)  /* a response header with a non-empty "Error" */
            if (buf[i] == 0xa5 && !memcmp(buf + i + 1, "Error", 5) && buf[i + 6] != 0xa0)
                c->rpc_errors++;
}

/* Waits for log lines, HTTP completions and RPC replies for at most max_ms, then handles
 * them, timestamping each with the time the wait returned. */
static void pump(cluster_t *c, int max_ms)
{
    bench_check_interrupt();
    uint64_t now = bench_now_ns();
    long wait_us = (long)max_ms * 1000;
    if (c->sys == SYS_TRIB && c->pub_active && trib_poll)
        for (int i = 1; i < c->n; i++) {
            poller_t *pl = &c->poll[i];
            if (c->arrive[i] || pl->in_flight || !c->procs[i].pid)
                continue;
            if (pl->due <= now)
                poll_start(c, i);
            else if ((long)((pl->due - now) / 1000) < wait_us)
                wait_us = (long)((pl->due - now) / 1000);
        }
    struct curl_waitfd w[MAXN + 1];
    int nw = 0;
    for (int i = 0; i < c->n; i++)
        if (c->procs[i].fd >= 0)
            w[nw++] = (struct curl_waitfd){.fd = c->procs[i].fd, .events = CURL_WAIT_POLLIN};
    if (c->rpc_fd >= 0)
        w[nw++] = (struct curl_waitfd){.fd = c->rpc_fd, .events = CURL_WAIT_POLLIN};
    int running = 0;
    curl_multi_perform(c->multi, &running);
    if (wait_us > 0) {
        if (running) {
            int ms = (int)((wait_us + 999) / 1000);
            curl_multi_poll(c->multi, w, (unsigned)nw, ms, NULL);
        } else { /* no transfer: plain poll has microsecond-ish timeouts */
            struct pollfd pf[MAXN + 1];
            for (int i = 0; i < nw; i++)
                pf[i] = (struct pollfd){.fd = w[i].fd, .events = POLLIN};
            struct timespec ts = {wait_us / 1000000, (wait_us % 1000000) * 1000};
            ppoll(pf, (nfds_t)nw, &ts, NULL);
        }
    }
    uint64_t t = bench_now_ns();
    for (int i = 0; i < c->n; i++)
        if (c->procs[i].fd >= 0)
            bench_proc_read(&c->procs[i], on_line, c, t);
    if (c->rpc_fd >= 0)
        rpc_drain(c);
    curl_multi_perform(c->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            curl_done(c, msg->easy_handle, t);
}

typedef int (*cond_fn)(cluster_t *c);

/* Pumps until cond holds or timeout; returns the time it first held, 0 on timeout. */
static uint64_t pump_until(cluster_t *c, cond_fn cond, int timeout_s)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_s * 1000000000u;
    while (bench_now_ns() < end) {
        pump(c, 20);
        if (cond(c))
            return bench_now_ns();
    }
    return 0;
}

static void pump_for(cluster_t *c, int ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)ms * 1000000u;
    while (bench_now_ns() < end)
        pump(c, 20);
}

/* ------------------------------------------------------------------ conditions */

static int node0_ready(cluster_t *c) { return c->ready[0]; }

static int all_alive(cluster_t *c)
{
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++)
            if (i != j && c->state[i][j] != ST_ALIVE)
                return 0;
    return 1;
}

static int victim_dead(cluster_t *c)
{
    int v = c->n - 1;
    for (int i = 0; i < v; i++)
        if (c->state[i][v] != ST_DEAD)
            return 0;
    return 1;
}

/* join_cmp: every node holds full membership and (but node 0) node 0's pre-join entry */
static int all_joined(cluster_t *c)
{
    for (int i = 0; i < c->n; i++)
        if (!c->full_t[i] || (i && !c->cat_t[i]))
            return 0;
    return 1;
}

static int pub_arrived(cluster_t *c)
{
    for (int i = 1; i < c->n; i++)
        if (!c->arrive[i])
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ nodes */

static void start_node(cluster_t *c, int i)
{
    char name[16], data[300], peer[32], http[32], seed[32], b1[64], b2[64], b3[64], b4[64];
    snprintf(name, sizeof name, "n%d", i);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", c->base + i);
    snprintf(http, sizeof http, "127.0.0.1:%d", c->base + 50 + i);
    snprintf(seed, sizeof seed, "127.0.0.1:%d", c->base);
    int rc;
    if (c->sys == SYS_TRIB && chartered) {
        char chseed[160], charter[300], cert[300];
        snprintf(data, sizeof data, "%s/%s", c->dir, name);
        snprintf(chseed, sizeof chseed, "%s@%s", node0_hex, seed);
        snprintf(charter, sizeof charter, "%s/charter.json", c->dir);
        snprintf(cert, sizeof cert, "%s/%s.cert", c->dir, name);
        char *argv[] = {(char *)trib_bin, "agent", "--data", data, "--domain", name, "--listen", peer,
                        "--http", http, "--charter", charter, "--cert", cert, "--log-level", conc_mode ? "info" : "debug",
                        i ? "--seed" : NULL, chseed, NULL};
        rc = bench_spawn(&c->procs[i], argv, i);
    } else if (c->sys == SYS_TRIB) {
        snprintf(data, sizeof data, "%s/%s", c->dir, name);
        char *argv[] = {(char *)trib_bin, "agent", "--data", data, "--domain", name, "--listen", peer,
                        "--http", http, "--log-level", trib_poll || conc_mode ? "info" : "debug", i ? "--seed" : NULL, seed,
                        NULL};
        rc = bench_spawn(&c->procs[i], argv, i);
    } else {
        snprintf(b1, sizeof b1, "-node=%s", name);
        snprintf(b2, sizeof b2, "-bind=%s", peer);
        snprintf(b3, sizeof b3, "-rpc-addr=%s", http);
        snprintf(b4, sizeof b4, "-join=%s", seed);
        char *argv[] = {"serf", "agent", b1, b2, b3, i ? b4 : NULL, NULL};
        rc = bench_spawn(&c->procs[i], argv, i);
    }
    if (rc < 0)
        bench_die("cannot start %s node %d: %s", sys_name[c->sys], i, strerror(errno));
}

static int rpc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    return fd;
}

/* Serf RPC (msgpack): a request is a header map {Command, Seq} then a body map. The two
 * requests we need are fixed apart from the event name, so they are written byte by byte here
 * rather than linking a msgpack library the Makefile does not carry:
 *   fixmap(2) "Command" <cmd> "Seq" uint16  |  body */
static size_t rpc_header(uint8_t *b, const char *cmd, unsigned seq)
{
    size_t n = 0, l = strlen(cmd);
    b[n++] = 0x82;
    b[n++] = 0xa7;
    memcpy(b + n, "Command", 7), n += 7;
    b[n++] = (uint8_t)(0xa0 | l);
    memcpy(b + n, cmd, l), n += l;
    b[n++] = 0xa3;
    memcpy(b + n, "Seq", 3), n += 3;
    b[n++] = 0xcd;
    b[n++] = (uint8_t)(seq >> 8);
    b[n++] = (uint8_t)seq;
    return n;
}

static void rpc_handshake(cluster_t *c)
{
    c->rpc_fd = rpc_connect(c->base + 50);
    if (c->rpc_fd < 0)
        bench_die("serf RPC connect to port %d: %s", c->base + 50, strerror(errno));
    uint8_t b[128];
    size_t n = rpc_header(b, "handshake", c->rpc_seq++);
    static const uint8_t body[] = {0x81, 0xa7, 'V', 'e', 'r', 's', 'i', 'o', 'n', 0x01};
    memcpy(b + n, body, sizeof body), n += sizeof body;
    if (write(c->rpc_fd, b, n) != (ssize_t)n)
        bench_die("serf RPC handshake write: %s", strerror(errno));
    struct pollfd pf = {.fd = c->rpc_fd, .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1)
        bench_die("serf RPC handshake: no answer");
    rpc_drain(c);
    if (c->rpc_errors)
        bench_die("serf RPC handshake refused");
}

static void rpc_event(cluster_t *c, const char *name)
{
    uint8_t b[256];
    size_t n = rpc_header(b, "event", c->rpc_seq++), l = strlen(name);
    b[n++] = 0x83;
    b[n++] = 0xa4, memcpy(b + n, "Name", 4), n += 4;
    b[n++] = (uint8_t)(0xa0 | l), memcpy(b + n, name, l), n += l;
    b[n++] = 0xa7, memcpy(b + n, "Payload", 7), n += 7;
    b[n++] = 0xa0;                                      /* empty */
    b[n++] = 0xa8, memcpy(b + n, "Coalesce", 8), n += 8;
    b[n++] = 0xc2;                                      /* false */
    if (write(c->rpc_fd, b, n) != (ssize_t)n)
        bench_die("serf RPC event write: %s", strerror(errno));
}

/* ------------------------------------------------------------------ nftables */

static int nft_run(const char *script)
{
    FILE *f = popen("nft -f - 2>/dev/null", "w");
    if (!f)
        return -1;
    fputs(script, f);
    return pclose(f) == 0 ? 0 : -1;
}

static void nft_cleanup(void)
{
    if (nft_ok) {
        char s[128];
        snprintf(s, sizeof s, "delete table inet %s\n", nft_table);
        nft_run(s);
        nft_ok = 0;
    }
}

static void nft_setup(void)
{
    snprintf(nft_table, sizeof nft_table, "tribbench_%d", (int)getpid());
    char s[256];
    snprintf(s, sizeof s, "add table inet %s\nadd chain inet %s out { type filter hook output priority 0; }\n",
             nft_table, nft_table);
    nft_ok = system("command -v nft >/dev/null 2>&1") == 0 && nft_run(s) == 0;
    bench_extra_cleanup = nft_cleanup;
}

/* A named counter for the cluster's peer ports: packets to them, plus packets from them to
 * elsewhere (each loopback packet passes the output hook once). */
static void nft_add(cluster_t *c, char *name, size_t cap)
{
    snprintf(name, cap, "c%d_%d", c->sys, c->base);
    if (!nft_ok)
        return;
    char s[1024], r[32];
    snprintf(r, sizeof r, "%d-%d", c->base, c->base + c->n - 1);
    snprintf(s, sizeof s,
             "add counter inet %1$s %2$s\n"
             "add rule inet %1$s out meta l4proto { tcp, udp } th dport %3$s counter name %2$s\n"
             "add rule inet %1$s out meta l4proto { tcp, udp } th sport %3$s th dport != %3$s counter name %2$s\n",
             nft_table, name, r);
    if (nft_run(s) < 0) {
        fprintf(stderr, "fed: nft rules failed; wire bytes not measured\n");
        nft_ok = 0;
    }
}

/* Bytes of the named counter (and its packets in *pkts), or -1. */
static double nft_bytes(const char *name, double *pkts)
{
    *pkts = -1;
    if (!nft_ok)
        return -1;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "nft -j list counter inet %s %s 2>/dev/null", nft_table, name);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    json_error_t e;
    json_t *j = json_loadf(f, 0, &e);
    pclose(f);
    double bytes = -1;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(j, "nftables"), i, it) {
        json_t *ctr = json_object_get(it, "counter");
        json_t *b = json_object_get(ctr, "bytes"), *p = json_object_get(ctr, "packets");
        if (json_is_integer(b) && json_is_integer(p)) {
            bytes = (double)json_integer_value(b);
            *pkts = (double)json_integer_value(p);
        }
    }
    json_decref(j);
    return bytes;
}

/* trib_gossip_bytes_total{dir="out"} summed over the cluster's nodes, or -1. */
static double trib_app_bytes(cluster_t *c)
{
    double sum = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->procs[i].pid)
            continue;
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->base + 50 + i);
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        CURL *h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        fclose(mem);
        const char *p = buf ? strstr(buf, "trib_gossip_bytes_total{dir=\"out\"} ") : NULL;
        if (rc != CURLE_OK || !p) {
            free(buf);
            return -1;
        }
        sum += strtod(p + 35, NULL);
        free(buf);
    }
    return sum;
}

/* ------------------------------------------------------------------ one cluster run */

static void cluster_init(cluster_t *c, int sys, int n, const char *tmp)
{
    memset(c, 0, sizeof *c);
    c->sys = sys;
    c->n = n;
    c->rpc_fd = -1;
    for (int i = 0; i < MAXN; i++)
        c->procs[i].fd = -1;
    c->base = bench_reserve_ports(&c->lock_fd);
    if (c->base < 0)
        bench_die("no free block of 100 loopback ports in 20000..31999");
    /* a chartered run gets its own dir: node identities and admin tokens (cached by dir) differ */
    static int runs; /* a run's own dir also when the same N runs again (join_cmp rounds) */
    snprintf(c->dir, sizeof c->dir, "%s/%s%s-%d-%d", tmp, sys_name[sys], chartered ? "-chartered" : "", n, runs++);
    if (mkdir(c->dir, 0700) < 0)
        bench_die("mkdir %s: %s", c->dir, strerror(errno));
    c->multi = curl_multi_init();
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAXN + 4);
    for (int i = 0; i < n; i++) {
        c->poll[i].h = curl_easy_init();
        curl_easy_setopt(c->poll[i].h, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c->poll[i].h, CURLOPT_TCP_NODELAY, 1L);
    }
    c->put = curl_easy_init();
    curl_easy_setopt(c->put, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c->put, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c->put, CURLOPT_TCP_NODELAY, 1L);
}

static void cluster_free(cluster_t *c)
{
    bench_stop_all(c->procs, c->n, SIGKILL, 2000);
    if (c->rpc_fd >= 0)
        close(c->rpc_fd);
    for (int i = 0; i < c->n; i++)
        curl_easy_cleanup(c->poll[i].h);
    curl_easy_cleanup(c->put);
    curl_multi_cleanup(c->multi);
    nftw(c->dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    close(c->lock_fd);
}

static void publish_one(cluster_t *c, int k, double *lat_ms, double *put_ms, int *late)
{
    snprintf(c->pub_name, sizeof c->pub_name, "bench-p%d", k);
    snprintf(c->pub_seq, sizeof c->pub_seq, "catalog: accepted n0 seq %d ", ++c->npublished);
    memset(c->arrive, 0, sizeof c->arrive);
    for (int i = 0; i < c->n; i++)
        c->poll[i].due = 0;
    uint64_t t0;
    if (c->sys == SYS_TRIB) {
        snprintf(c->put_body, sizeof c->put_body,
                 "{\"name\":\"%s\",\"domain\":\"n0\",\"version\":\"1.0.%d\",\"status\":\"active\","
                 "\"title\":\"bench product %d\",\"description\":\"federation benchmark publish\","
                 "\"owners\":{\"business\":\"bench@example.com\",\"technical\":\"bench@example.com\"},"
                 "\"tags\":[\"bench\"],\"schema\":[{\"name\":\"n\",\"logicalType\":\"integer\",\"required\":true}]}",
                 c->pub_name, k, k);
        char url[160];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/n0/%s", c->base + 50, c->pub_name);
        curl_easy_setopt(c->put, CURLOPT_URL, url);
        curl_easy_setopt(c->put, CURLOPT_POSTFIELDS, c->put_body);
        char n0[400];
        snprintf(n0, sizeof n0, "%s/n0", c->dir);
        BENCH_BEARER(c->put, bench_token(n0));
        c->put_status = 0;
        c->pub_active = 1;
        t0 = bench_now_ns();
        curl_multi_add_handle(c->multi, c->put);
    } else {
        c->pub_active = 1;
        t0 = bench_now_ns();
        rpc_event(c, c->pub_name);
    }
    uint64_t end = t0 + (uint64_t)PUB_TIMEOUT_S * 1000000000u;
    while (!pub_arrived(c) && bench_now_ns() < end)
        pump(c, 20);
    if (c->sys == SYS_TRIB) { /* let the PUT answer (it normally has) and check it */
        uint64_t pend = bench_now_ns() + 5000000000u;
        while (!c->put_status && bench_now_ns() < pend)
            pump(c, 20);
        if (c->put_status != 201 && c->put_status != 200)
            bench_die("tributary publish of n0/%s answered HTTP %ld", c->pub_name, c->put_status);
        *put_ms = bench_ms(c->put_done - t0);
    }
    uint64_t last = 0;
    int missing = 0;
    for (int i = 1; i < c->n; i++) {
        if (!c->arrive[i])
            missing++;
        else if (c->arrive[i] > last)
            last = c->arrive[i];
    }
    *lat_ms = missing ? PUB_TIMEOUT_S * 1000.0 : bench_ms(last - t0);
    for (int i = 1; missing && i < c->n; i++)
        if (!c->arrive[i])
            fprintf(stderr, "fed: %s N=%d: %s did not reach n%d within %d s\n", sys_name[c->sys], c->n,
                    c->pub_name, i, PUB_TIMEOUT_S);
    *late += missing > 0;
    c->pub_active = 0;
    for (int i = 1; i < c->n; i++) /* a poll still in flight for this publish is abandoned */
        if (c->poll[i].in_flight) {
            curl_multi_remove_handle(c->multi, c->poll[i].h);
            c->poll[i].in_flight = 0;
        }
}

/* Chartered: a charter of two roots (threshold 2) in c->dir, and for every node an identity in its
 * data dir and a 90-day certificate for its domain, made before any clock starts. The roots stay
 * in *keep when it is not NULL (the caller frees them), for more certificates. */
static void prepare_charter(cluster_t *c, bench_charter_t *keep)
{
    bench_charter_t b;
    char data[400], cert[400], dom[16];
    bench_charter_make(&b, c->dir);
    for (int i = 0; i < c->n; i++) {
        snprintf(dom, sizeof dom, "n%d", i);
        snprintf(data, sizeof data, "%s/%s", c->dir, dom);
        snprintf(cert, sizeof cert, "%s/%s.cert", c->dir, dom);
        bench_charter_node(&b, data, dom, cert, i == 0 ? node0_hex : NULL);
    }
    if (keep)
        *keep = b;
    else
        bench_charter_free(&b);
}

static char *metrics_text(cluster_t *c, int i);

/* CPU seconds (user + system) a process has used, from /proc/PID/stat; 0 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
static double metric_of(const char *text, const char *key);

static void run_cluster(int sys, int n, const char *tmp, result_t *r)
{
    cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        bench_die("out of memory");
    cluster_init(c, sys, n, tmp);
    memset(r, 0, sizeof *r);
    r->wire_bps = r->app_bps = -1;
    fprintf(stderr, "fed: N=%d %s%s: ports %d.., starting\n", n, sys_name[sys], chartered ? " chartered" : "",
            c->base);
    if (chartered)
        prepare_charter(c, NULL);

    start_node(c, 0);
    if (!pump_until(c, node0_ready, 30))
        bench_die("%s node 0 did not start (port %d)", sys_name[sys], c->base);
    if (join_cmp) { /* one entry in node 0's catalog (seq 1): joining means receiving it too */
        double lat, put;
        int late = 0, n_all = c->n;
        c->n = 1;
        publish_one(c, 1000, &lat, &put, &late);
        c->n = n_all;
    }
    uint64_t t0 = bench_now_ns();
    for (int i = 1; i < n; i++) {
        c->forked[i] = bench_now_ns();
        start_node(c, i);
    }
    c->forked[0] = t0;
    uint64_t t1 = pump_until(c, join_cmp ? all_joined : all_alive, JOIN_TIMEOUT_S);
    if (!t1)
        bench_die("%s N=%d: not all %s after %d s", sys_name[sys], n, join_cmp ? "joined" : "alive", JOIN_TIMEOUT_S);
    if (join_cmp) {
        double js[MAXN], ms[MAXN], ls[MAXN], ws[MAXN];
        uint64_t last_full = 0;
        for (int i = 0; i < n; i++) {
            uint64_t done = c->full_t[i] > c->cat_t[i] ? c->full_t[i] : c->cat_t[i];
            js[i] = (double)(done - c->forked[i]) / 1e9;
            ms[i] = (double)(c->full_t[i] - c->forked[i]) / 1e9;
            ls[i] = (double)(c->ready_t[i] - c->forked[i]) / 1e9;
            ws[i] = (double)(done - c->full_t[i]) / 1e9;
            if (c->full_t[i] > last_full)
                last_full = c->full_t[i];
        }
        r->all_alive_s = (double)(last_full - t0) / 1e9;
        r->join_p50_s = bench_pct(js + 1, (size_t)n - 1, 50);
        r->join_max_s = bench_pct(js + 1, (size_t)n - 1, 100);
        r->member_p50_s = bench_pct(ms + 1, (size_t)n - 1, 50);
        r->entry_wait_p50_s = bench_pct(ws + 1, (size_t)n - 1, 50);
        r->listen_p50_s = bench_pct(ls + 1, (size_t)n - 1, 50);
        r->listen_max_s = bench_pct(ls + 1, (size_t)n - 1, 100);
        for (int i = 0; i < n; i++)
            r->join_cpu_s += proc_cpu_s(c->procs[i].pid);
        for (int i = 0; i < n; i++) {
            char *m = metrics_text(c, i);
            for (int k = 0; m && k < JC_N; k++)
                r->jc[k] += metric_of(m, jc_key[k]);
            if (m && getenv("FED_METRICS"))
                dm_add(m, chartered);
            free(m);
        }
    } else {
        r->all_alive_s = (double)(t1 - t0) / 1e9;
    }

    if (sys == SYS_SERF)
        rpc_handshake(c);

    /* idle: settle, then count bytes over the window and read RSS. Settling lasts one probe round
     * (N probe intervals of 1 s) beyond 3 s: the first round after a join opens each node's
     * connections to the others (TCP and CURVE handshakes, ~1.5 KB a pair, once), which Serf's UDP
     * probes do not pay; the window measures the steady state SWIM promises flat in N. */
    pump_for(c, 3000 + (conc_mode || chartered || join_cmp ? 0 : n * 1000));
    char cname[32];
    if (join_cmp)
        goto publishes;
    nft_add(c, cname, sizeof cname);
    double p0, p1;
    double w0 = nft_bytes(cname, &p0), a0 = sys == SYS_TRIB ? trib_app_bytes(c) : -1;
    uint64_t i0 = bench_now_ns();
    pump_for(c, idle_s * 1000);
    double w1 = nft_bytes(cname, &p1), a1 = sys == SYS_TRIB ? trib_app_bytes(c) : -1;
    double secs = (double)(bench_now_ns() - i0) / 1e9;
    if (w0 >= 0 && w1 >= 0)
        r->wire_bps = (w1 - w0) / secs / n, r->wire_pps = (p1 - p0) / secs / n;
    if (a0 >= 0 && a1 >= 0)
        r->app_bps = (a1 - a0) / secs / n;
    long rss = 0, anon = 0, pss = 0;
    for (int i = 0; i < n; i++) {
        rss += bench_rss_kb(c->procs[i].pid);
        anon += bench_proc_kb(c->procs[i].pid, "status", "RssAnon");
        pss += bench_proc_kb(c->procs[i].pid, "smaps_rollup", "Pss");
    }
    r->rss_mib = (double)rss / n / 1024.0;
    r->anon_mib = (double)anon / n / 1024.0;
    r->pss_mib = (double)pss / n / 1024.0;
    if (!all_alive(c))
        fprintf(stderr, "fed: warning: %s N=%d: not every node saw all alive during the idle window\n",
                sys_name[sys], n);

    /* publishes, one at a time */
publishes:;
    double *lat = calloc((size_t)npubs + 1, sizeof *lat), *put = calloc((size_t)npubs + 1, sizeof *put);
    if (!lat || !put)
        bench_die("out of memory");
    /* one unmeasured warm-up publish each: a Serf agent that joined ignores events older than
     * the event clock it learned at join, which can swallow node 0's very first event */
    int warm_late = 0;
    publish_one(c, npubs, &lat[npubs], &put[npubs], &warm_late);
    pump_for(c, 200);
    for (int k = 0; k < npubs; k++) {
        publish_one(c, k, &lat[k], &put[k], &r->pubs_late);
        r->pubs_slow += lat[k] > SLOW_MS;
        pump_for(c, 50);
    }
    if (c->rpc_errors)
        bench_die("serf RPC reported %d error(s) for events", c->rpc_errors);
    r->pubs = npubs;
    r->pub_p50_ms = bench_pct(lat, (size_t)npubs, 50);
    r->pub_p99_ms = bench_pct(lat, (size_t)npubs, 99);
    r->pub_p90_ms = bench_pct(lat, (size_t)npubs, 90);
    r->pub_max_ms = lat[npubs - 1];
    r->put_p50_ms = bench_pct(put, (size_t)npubs, 50);
    r->put_p99_ms = bench_pct(put, (size_t)npubs, 99);
    free(lat);
    free(put);

    if (join_cmp) { /* the comparison reports no failure detection */
        cluster_free(c);
        free(c);
        return;
    }
    /* failure detection */
    fprintf(stderr, "fed: N=%d %s: killing n%d\n", n, sys_name[sys], n - 1);
    uint64_t k0 = bench_now_ns();
    kill(c->procs[n - 1].pid, SIGKILL);
    uint64_t k1 = pump_until(c, victim_dead, FAIL_TIMEOUT_S);
    r->fail_s = k1 ? (double)(k1 - k0) / 1e9 : -1;
    cluster_free(c);
    free(c);
}

/* ------------------------------------------------------------------ concurrent publishers (issue 9 item 1) */

#define CONC_THREADS 2       /* HTTP clients per node, each with its own keep-alive connection */
#define CONC_AGREE_S 120     /* give up waiting for agreement after this */

typedef struct {
    int port, node, first, count;
    int failed;
    long last_status;
    uint64_t done_ns;
    char tok[4200];         /* the node's admin token (issue 11: writes need one) */
} conc_pub_t;

/* One client: sequential PUTs of ~1 KB manifests n<node>/c<k> on one keep-alive connection. */
static void *conc_publisher(void *arg)
{
    conc_pub_t *p = arg;
    CURL *h = curl_easy_init();
    char url[160], body[1400], pad[901];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    BENCH_BEARER(h, p->tok);
    for (int k = p->first; k < p->first + p->count; k++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"c%d\",\"domain\":\"n%d\",\"version\":\"1.0.0\",\"status\":\"active\","
                 "\"title\":\"concurrent product %d\",\"description\":\"%s\","
                 "\"owners\":{\"business\":\"bench@example.com\",\"technical\":\"bench@example.com\"},"
                 "\"tags\":[\"bench\"],\"schema\":[{\"name\":\"n\",\"logicalType\":\"integer\",\"required\":true}]}",
                 k, p->node, k, pad);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/products/n%d/c%d", p->port, p->node, k);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        long status = 0;
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200 && status != 201) {
            p->failed++;
            p->last_status = status;
        }
    }
    __atomic_store_n(&p->done_ns, bench_now_ns(), __ATOMIC_RELEASE);
    curl_easy_cleanup(h);
    return NULL;
}

/* /metrics of node i as text (malloc'd), or NULL. */
static char *metrics_text(cluster_t *c, int i)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->base + 50 + i);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    fclose(mem);
    if (rc != CURLE_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The value of the sample named exactly key ("name{labels}") in a metrics text, or 0. */
static double metric_of(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
    return 0;
}

typedef struct {
    double sent, pushed, accepted, dup, gap, wants, suspects, dropped, backlog, commits, held, warmed;
} conc_counts_t;

static int conc_counts(cluster_t *c, conc_counts_t *out, double *accepted_each)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < c->n; i++) {
        char *t = c->procs[i].pid ? metrics_text(c, i) : NULL;
        if (!t) {
            accepted_each[i] = -1;
            continue;
        }
        double acc = metric_of(t, "trib_catalog_entries_total{result=\"accepted\"}");
        accepted_each[i] = acc;
        out->accepted += acc;
        out->sent += metric_of(t, "trib_catalog_entries_sent_total");
        out->pushed += metric_of(t, "trib_catalog_entries_pushed_total");
        out->dup += metric_of(t, "trib_catalog_entries_total{result=\"duplicate\"}");
        out->gap += metric_of(t, "trib_catalog_entries_total{result=\"gap\"}");
        out->wants += metric_of(t, "trib_catalog_gap_requests_total{dir=\"out\"}");
        out->suspects += metric_of(t, "trib_swim_events_total{event=\"suspect\"}");
        out->dropped += metric_of(t, "trib_gossip_dropped_total{reason=\"send_dropped\"}");
        out->backlog += metric_of(t, "trib_gossip_dropped_total{reason=\"catalog_backlog\"}");
        out->commits += metric_of(t, "trib_catalog_commits_total");
        out->held += metric_of(t, "trib_gossip_sends_held_total{lane=\"priority\"}");
        out->warmed += metric_of(t, "trib_gossip_connections_warmed_total");
        free(t);
    }
    return 0;
}

typedef struct {
    long anon_max, rss_max;     /* KiB, the largest node seen */
} conc_mem_t;

static void conc_sample(cluster_t *c, conc_mem_t *m)
{
    for (int i = 0; i < c->n; i++) {
        if (!c->procs[i].pid)
            continue;
        long a = bench_proc_kb(c->procs[i].pid, "status", "RssAnon"), r = bench_rss_kb(c->procs[i].pid);
        if (a > m->anon_max)
            m->anon_max = a;
        if (r > m->rss_max)
            m->rss_max = r;
    }
}

/* Nodes whose process has exited (abort, crash) since start; reaps them. */
static int conc_exited(cluster_t *c, char *who, size_t cap)
{
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        int st;
        if (c->procs[i].pid > 0 && waitpid(c->procs[i].pid, &st, WNOHANG) == c->procs[i].pid) {
            size_t l = strlen(who);
            snprintf(who + l, cap - l, " n%d(%s %d)", i, WIFSIGNALED(st) ? "signal" : "exit",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            bench_untrack(c->procs[i].pid);
            c->procs[i].pid = 0;
            n++;
        }
    }
    return n;
}

static void run_concurrent(int n, int per, const char *tmp)
{
    cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        bench_die("out of memory");
    conc_mode = 1;
    cluster_init(c, SYS_TRIB, n, tmp);
    fprintf(stderr, "fed: concurrent N=%d x %d: ports %d.., starting\n", n, per, c->base);
    start_node(c, 0);
    if (!pump_until(c, node0_ready, 30))
        bench_die("tributary node 0 did not start (port %d)", c->base);
    for (int i = 1; i < n; i++)
        start_node(c, i);
    if (!pump_until(c, all_alive, JOIN_TIMEOUT_S))
        bench_die("tributary N=%d: not all alive after %d s", n, JOIN_TIMEOUT_S);
    pump_for(c, 2000);
    conc_mem_t idle = {0};
    conc_sample(c, &idle);
    conc_counts_t before, after, settled;
    double acc[MAXN];
    conc_counts(c, &before, acc);
    double acc0[MAXN];
    memcpy(acc0, acc, sizeof acc0);
    c->suspect_lines = 0;

    conc_pub_t pubs[MAXN * CONC_THREADS];
    pthread_t th[MAXN * CONC_THREADS];
    int np = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < CONC_THREADS; k++, np++) {
            pubs[np] = (conc_pub_t){.port = c->base + 50 + i, .node = i, .first = k * per / CONC_THREADS,
                                    .count = (k + 1) * per / CONC_THREADS - k * per / CONC_THREADS};
            char dir[400];
            snprintf(dir, sizeof dir, "%s/n%d", c->dir, i);
            snprintf(pubs[np].tok, sizeof pubs[np].tok, "%s", bench_token(dir));
        }
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < np; i++)
        if (pthread_create(&th[i], NULL, conc_publisher, &pubs[i]) != 0)
            bench_die("pthread_create failed");
    /* pump logs and sample memory while the clients run */
    conc_mem_t during = {0};
    int joined = 0;
    while (!joined) {
        pump_for(c, 250);
        conc_sample(c, &during);
        joined = 1;
        for (int i = 0; i < np; i++)
            if (!__atomic_load_n(&pubs[i].done_ns, __ATOMIC_ACQUIRE))
                joined = 0;
    }
    uint64_t t_last = 0;
    int failed = 0;
    for (int i = 0; i < np; i++) {
        pthread_join(th[i], NULL);
        if (pubs[i].done_ns > t_last)
            t_last = pubs[i].done_ns;
        if (pubs[i].failed)
            fprintf(stderr, "fed: n%d: %d publish(es) failed (last HTTP %ld)\n", pubs[i].node, pubs[i].failed,
                    pubs[i].last_status);
        failed += pubs[i].failed;
    }
    /* agreement: every node accepted (N-1) x per entries from peers (it published its own per) */
    double need_each = (double)(n - 1) * per;
    uint64_t t_agree = 0, deadline = t_last + (uint64_t)CONC_AGREE_S * 1000000000u;
    while (bench_now_ns() < deadline) {
        conc_counts(c, &after, acc);
        int ok = 1;
        for (int i = 0; i < n; i++)
            if (acc[i] < 0 || acc[i] - acc0[i] < need_each - failed)
                ok = 0;
        if (ok) {
            t_agree = bench_now_ns();
            break;
        }
        pump_for(c, 100);
        conc_sample(c, &during);
    }
    pump_for(c, 5000); /* what is still sent after agreement counts too */
    conc_mem_t post = {0};
    conc_sample(c, &post);
    conc_counts(c, &settled, acc);
    char gone[256] = "";
    int exited = conc_exited(c, gone, sizeof gone);
    double needed = (double)n * (n - 1) * per;
    double sent = settled.sent - before.sent, accepted = settled.accepted - before.accepted;
    printf("\n== Concurrent publishers (issue 9 item 1): N=%d nodes, each publishing %d products at once ==\n", n, per);
    printf("  %d HTTP clients per node (sequential PUTs of ~1.2 KB manifests on keep-alive connections)\n",
           CONC_THREADS);
    printf("  publishing took                    %8.2f s (%.0f publishes/s in all, %d failed)\n",
           (double)(t_last - t0) / 1e9, (double)n * per / ((double)(t_last - t0) / 1e9), failed);
    if (t_agree)
        printf("  all catalogs agree after last pub  %8.2f s   target <= 5 s  %s\n",
               (double)(t_agree - t_last) / 1e9, t_agree - t_last <= 5000000000u ? "PASS" : "MISS");
    else
        printf("  all catalogs agree after last pub  > %d s (not reached)   target <= 5 s  MISS\n", CONC_AGREE_S);
    printf("  catalog entries sent / needed      %8.2f   (%.0f sent, %.0f needed; %.0f pushed)   target <= 3  %s\n",
           sent / needed, sent, needed, settled.pushed - before.pushed, sent / needed <= 3 ? "PASS" : "MISS");
    printf("  duplicates per accepted entry      %8.2f   (%.0f duplicates, %.0f accepted, %.0f gaps, %.0f gap requests)\n",
           accepted > 0 ? (settled.dup - before.dup) / accepted : -1, settled.dup - before.dup, accepted,
           settled.gap - before.gap, settled.wants - before.wants);
    printf("  send drops (queues full)           %8.0f   (received frames dropped, backlog full: %.0f; commits of "
           "peers' entries: %.0f)\n",
           settled.dropped - before.dropped, settled.backlog - before.backlog, settled.commits - before.commits);
    printf("  RSS per node, max during           %8.1f MiB RssAnon, %.1f MiB VmRSS   target RssAnon <= 64 MiB  %s\n",
           during.anon_max / 1024.0, during.rss_max / 1024.0, during.anon_max <= 64 * 1024 ? "PASS" : "MISS");
    printf("  RSS per node, max 5 s after        %8.1f MiB RssAnon, %.1f MiB VmRSS   (idle before: %.1f / %.1f)\n",
           post.anon_max / 1024.0, post.rss_max / 1024.0, idle.anon_max / 1024.0, idle.rss_max / 1024.0);
    printf("  suspicions raised (metrics)        %8.0f   (state changes to suspect in the logs: %d)   target 0  %s\n",
           settled.suspects - before.suspects, c->suspect_lines,
           settled.suspects - before.suspects == 0 && c->suspect_lines == 0 ? "PASS" : "MISS");
    printf("  membership sends held for a conn.  %8.0f   (probes, acks ... waiting for a handshake; priority "
           "connections opened ahead, at join: %.0f)\n", settled.held - before.held, before.warmed);
    printf("  processes exited                   %8d  %s   target 0  %s\n", exited, gone, exited ? "MISS" : "PASS");
    if (c->abort_lines)
        printf("  assertion lines in the logs        %8d   last: %s\n", c->abort_lines, c->abort_line);
    fflush(stdout);
    cluster_free(c);
    free(c);
    conc_mode = 0;
}

/* ------------------------------------------------------------------ catch-up (issue 9 item 5) */

/* Writes domains x per signed entries (one identity per domain, ~500-byte manifests) straight into
 * the store in dir, as a federation's catalog would hold them. Chartered (ch): each domain's key
 * certified, the certificate's trust object text in certs[d] (the caller frees them), and the
 * entries dated now (a certificate must cover an entry's time). */
static void catchup_fill(const char *dir, int domains, int per, const bench_charter_t *ch, char **certs)
{
    int64_t when = ch ? bench_wall_ms() : 1;
    char err[256];
    store_opts_t so = {.nosync = 1};
    store_t *st = store_open(dir, &so, err, sizeof err);
    if (!st)
        bench_die("store_open %s: %s", dir, err);
    char desc[401];
    memset(desc, 'd', sizeof desc - 1);
    desc[sizeof desc - 1] = '\0';
    store_append_t *items = calloc((size_t)per, sizeof *items);
    entry_t *v = calloc((size_t)per, sizeof *v);
    uint8_t **bytes = calloc((size_t)per, sizeof *bytes);
    if (!items || !v || !bytes)
        bench_die("out of memory");
    for (int d = 0; d < domains; d++) {
        identity_t id;
        memset(&id, 0, sizeof id);
        crypto_sign_keypair(id.pk, id.sk);
        char domain[32];
        snprintf(domain, sizeof domain, "dom%03d", d);
        if (ch) {
            cert_t cert;
            bench_charter_certify(ch, domain, id.pk, 0, &cert);
            json_t *j = cert_to_json(&cert);
            if (!j || !(certs[d] = json_dumps(j, JSON_COMPACT)))
                bench_die("out of memory");
            json_decref(j);
            cert_free(&cert);
        }
        uint8_t prev[32];
        for (int k = 0; k < per; k++) {
            char name[32];
            snprintf(name, sizeof name, "p%04d", k);
            Trib__SchemaProperty prop = TRIB__SCHEMA_PROPERTY__INIT;
            prop.name = "id";
            prop.logical_type = "string";
            Trib__SchemaProperty *props[] = {&prop};
            Trib__Manifest m = TRIB__MANIFEST__INIT;
            m.domain = domain;
            m.name = name;
            m.version = "1.0.0";
            m.status = "active";
            m.title = name;
            m.purpose = desc;
            m.owner_business = "b@example.com";
            m.owner_technical = "t@example.com";
            m.classification = "internal";
            m.n_schema = 1;
            m.schema = props;
            m.document_json = "{}";
            Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
            e.domain = domain;
            e.seq = (uint64_t)k + 1;
            if (k) {
                e.prev_hash.data = prev;
                e.prev_hash.len = 32;
            }
            e.time_ms = when;
            e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
            e.manifest = &m;
            size_t len;
            if (entry_sign(&id, &e, &bytes[k], &len) != 0 || entry_verify(bytes[k], len, &v[k], err, sizeof err) != 0)
                bench_die("catch-up fill: cannot sign %s seq %d: %s", domain, k + 1, err);
            memcpy(prev, v[k].hash, 32);
            items[k] = (store_append_t){.entry = v[k].entry, .hash = v[k].hash, .signer = id.pk,
                                        .signed_bytes = bytes[k], .len = len};
        }
        if (store_catalog_append_many(st, items, (size_t)per, NULL, 0, err, sizeof err) < 0)
            bench_die("catch-up fill: %s", err);
        for (int k = 0; k < per; k++) {
            if (items[k].rc != 0)
                bench_die("catch-up fill: %s seq %d refused (%d)", domain, k + 1, items[k].rc);
            entry_free(&v[k]);
            free(bytes[k]);
        }
    }
    free(items);
    free(v);
    free(bytes);
    store_close(&st);
}

/* Ed25519 verifications per second on this thread (one core), over about 1 s. */
static double verify_rate(void)
{
    uint8_t pk[32], sk[64], msg[600], sig[64];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    uint64_t t0 = bench_now_ns(), n = 0;
    while (bench_now_ns() - t0 < 1000000000u)
        for (int i = 0; i < 100; i++, n++)
            if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0)
                bench_die("verify failed");
    return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

typedef struct {
    int port;
    volatile int stop;
    double *lat;
    size_t n, cap;
} status_poller_t;

/* GET /v1/status back to back on one keep-alive connection, every latency kept. */
static void *status_poll(void *arg)
{
    status_poller_t *s = arg;
    CURL *h = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/status", s->port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        uint64_t t0 = bench_now_ns();
        CURLcode rc = curl_easy_perform(h);
        double ms = bench_ms(bench_now_ns() - t0);
        if (rc == CURLE_OK && s->n < s->cap)
            s->lat[s->n++] = ms;
        bench_sleep_ms(10);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void run_catchup(int domains, int per, const char *tmp)
{
    cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        bench_die("out of memory");
    conc_mode = 1;
    cluster_init(c, SYS_TRIB, 2, tmp);
    long total = (long)domains * per;
    fprintf(stderr, "fed: catch-up %d x %d%s: ports %d.., preparing the seed's store\n", domains, per,
            chartered ? " chartered" : "", c->base);
    bench_charter_t ch;
    char **certs = calloc((size_t)domains, sizeof *certs);
    if (!certs)
        bench_die("out of memory");
    if (chartered)
        prepare_charter(c, &ch);
    start_node(c, 0); /* once, so the data dir and identity are the agent's own */
    if (!pump_until(c, node0_ready, 30))
        bench_die("tributary node 0 did not start (port %d)", c->base);
    bench_stop(&c->procs[0], SIGTERM, 5000);
    c->ready[0] = 0;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/n0", c->dir);
    uint64_t f0 = bench_now_ns();
    catchup_fill(dir, domains, per, chartered ? &ch : NULL, certs);
    fprintf(stderr, "fed: catch-up: %ld entries written in %.1f s\n", total, (double)(bench_now_ns() - f0) / 1e9);
    start_node(c, 0);
    uint64_t r0 = bench_now_ns();
    if (!pump_until(c, node0_ready, 300))
        bench_die("tributary node 0 did not restart");
    fprintf(stderr, "fed: catch-up: the seed restarted in %.1f s\n", (double)(bench_now_ns() - r0) / 1e9);
    if (chartered) { /* the domains' certificates into the seed's federation log, as the roots would */
        CURL *h = curl_easy_init();
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/federation/objects", c->base + 50);
        for (int d = 0; d < domains; d++) {
            curl_easy_reset(h);
            curl_easy_setopt(h, CURLOPT_URL, url);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, certs[d]);
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
            BENCH_BEARER(h, bench_token(dir));
            long st = 0;
            if (curl_easy_perform(h) != CURLE_OK || curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st) != CURLE_OK ||
                (st != 200 && st != 201 && st != 429))
                bench_die("catch-up: the seed took dom%03d's certificate with HTTP %ld", d, st);
            if (st == 429) { /* 5 a second after a burst of 30 from one address (docs/http-api.md) */
                bench_sleep_ms(250);
                d--;
                continue;
            }
            free(certs[d]);
        }
        curl_easy_cleanup(h);
        bench_charter_free(&ch);
    }
    free(certs);
    double vr = verify_rate();
    status_poller_t sp = {.port = c->base + 51, .cap = 1 << 20};
    sp.lat = calloc(sp.cap, sizeof *sp.lat);
    uint64_t t0 = bench_now_ns();
    start_node(c, 1);
    if (!pump_until(c, all_alive, JOIN_TIMEOUT_S))
        bench_die("catch-up: the joiner did not see the seed alive");
    pthread_t th;
    if (!sp.lat || pthread_create(&th, NULL, status_poll, &sp) != 0)
        bench_die("status poller");
    conc_mem_t mem = {0};
    double held = 0, acc[MAXN];
    uint64_t t_done = 0, deadline = t0 + 600ull * 1000000000u;
    conc_counts_t cnt;
    bench_proc_t seed = c->procs[0];
    while (bench_now_ns() < deadline) {
        pump_for(c, 200);
        c->procs[0].pid = 0; /* sample only the joiner */
        conc_sample(c, &mem);
        conc_counts(c, &cnt, acc);
        c->procs[0] = seed;
        held = acc[1];
        if (held >= total) {
            t_done = bench_now_ns();
            break;
        }
    }
    __atomic_store_n(&sp.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    char *mt = metrics_text(c, 1);
    double vs = mt ? metric_of(mt, "trib_catalog_accept_seconds_total{phase=\"verify\"}") : -1;
    double ss = mt ? metric_of(mt, "trib_catalog_accept_seconds_total{phase=\"store\"}") : -1;
    double dups = mt ? metric_of(mt, "trib_catalog_entries_total{result=\"duplicate\"}") : -1;
    double uncert = mt ? metric_of(mt, "trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"}") : -1;
    if (getenv("FED_CATCHUP_METRICS")) {
        for (int k = 0; k < 2; k++) {
            char *t = metrics_text(c, k);
            for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n"))
                if (line[0] != '#' && (strstr(line, "trib_catalog_") || strstr(line, "digest") || strstr(line, "trib_fed")))
                    fprintf(stderr, "n%d %s\n", k, line);
            free(t);
        }
    }
    free(mt);
    double secs = (double)((t_done ? t_done : bench_now_ns()) - t0) / 1e9;
    double rate = held / secs;
    printf("\n== Catch-up (issue 9 item 5): a node joins a%s federation whose catalog holds %d domains x %d ==\n",
           chartered ? " chartered" : "n open", domains, per);
    if (chartered)
        printf("  entries refused as uncertified     %8.0f   (their certificate not held yet when they came)\n", uncert);
    printf("  held %.0f of %ld entries after %8.2f s from start%s\n", held, total, secs, t_done ? "" : " (gave up)");
    printf("  accepted rate                      %8.0f entries/s   Ed25519 verify on one core: %.0f/s   ratio %.2f"
           "   target >= 0.50  %s\n",
           rate, vr, rate / vr, rate / vr >= 0.5 ? "PASS" : "MISS");
    printf("  joiner time verifying / storing    %8.1f s / %.1f s (worker thread); %.0f duplicates received\n", vs, ss,
           dups);
    printf("  joiner RSS, max                    %8.1f MiB RssAnon, %.1f MiB VmRSS   target RssAnon <= 128 MiB  %s\n",
           mem.anon_max / 1024.0, mem.rss_max / 1024.0, mem.anon_max <= 128 * 1024 ? "PASS" : "MISS");
    double p50 = sp.n ? bench_pct(sp.lat, sp.n, 50) : -1, p99 = sp.n ? bench_pct(sp.lat, sp.n, 99) : -1;
    printf("  joiner /v1/status meanwhile        p50 %.1f ms, p99 %.1f ms over %zu requests   target p99 < 50 ms  %s\n",
           p50, p99, sp.n, p99 >= 0 && p99 < 50 ? "PASS" : "MISS");
    fflush(stdout);
    free(sp.lat);
    cluster_free(c);
    free(c);
    conc_mode = 0;
}

/* ------------------------------------------------------------------ report */

static void fmt_bytes(char *out, size_t cap, double bps)
{
    if (bps < 0)
        snprintf(out, cap, "n/a");
    else if (bps >= 10240)
        snprintf(out, cap, "%.1f KiB/s", bps / 1024);
    else
        snprintf(out, cap, "%.0f B/s", bps);
}

static void row(const char *what, const char *t, const char *s, double ratio, const char *target)
{
    char rs[32];
    if (isfinite(ratio) && ratio >= 0)
        snprintf(rs, sizeof rs, "%.2f", ratio);
    else
        snprintf(rs, sizeof rs, "-");
    printf("  %-30s %14s %14s %10s  %s\n", what, t, s, rs, target ? target : "");
}

static const char *verdict(double ratio, double max, char *buf, size_t cap, const char *label)
{
    if (!isfinite(ratio) || ratio < 0)
        snprintf(buf, cap, "%s  n/a", label);
    else
        snprintf(buf, cap, "%s  %s", label, ratio <= max ? "PASS" : "MISS");
    return buf;
}

static void report(int n, const result_t *t, const result_t *s)
{
    char a[64], b[64], v[96];
    printf("\nN=%d\n", n);
    printf("  %-30s %14s %14s %10s  %s\n", "figure", "tributary", "serf", "trib/serf", "target");
    snprintf(a, sizeof a, "%.2f s", t->all_alive_s);
    snprintf(b, sizeof b, "%.2f s", s->all_alive_s);
    row("all alive (from start)", a, b, t->all_alive_s / s->all_alive_s, NULL);
    const char *tgt = n >= 20 ? "ratio <= 1.00" : NULL;
    snprintf(a, sizeof a, "%.1f ms", t->pub_p50_ms);
    snprintf(b, sizeof b, "%.1f ms", s->pub_p50_ms);
    double r50 = t->pub_p50_ms / s->pub_p50_ms, r99 = t->pub_p99_ms / s->pub_p99_ms;
    row("publish to all, p50", a, b, r50, tgt ? verdict(r50, 1.0, v, sizeof v, tgt) : NULL);
    snprintf(a, sizeof a, "%.1f ms", t->pub_p90_ms);
    snprintf(b, sizeof b, "%.1f ms", s->pub_p90_ms);
    row("publish to all, p90", a, b, t->pub_p90_ms / s->pub_p90_ms, NULL);
    snprintf(a, sizeof a, "%.1f ms", t->pub_p99_ms);
    snprintf(b, sizeof b, "%.1f ms", s->pub_p99_ms);
    row("publish to all, p99", a, b, r99, tgt ? verdict(r99, 1.0, v, sizeof v, tgt) : NULL);
    snprintf(a, sizeof a, "%d/%d", t->pubs_slow, t->pubs);
    snprintf(b, sizeof b, "%d/%d", s->pubs_slow, s->pubs);
    row("  publishes slower than 500 ms", a, b, -1, NULL);
    snprintf(a, sizeof a, "%.1f/%.1f ms", t->put_p50_ms, t->put_p99_ms);
    row("  trib PUT answered, p50/p99", a, "-", -1, NULL);
    if (t->pubs_late || s->pubs_late)
        printf("  (publishes not everywhere within %d s, counted as %d s: tributary %d/%d, serf %d/%d)\n",
               PUB_TIMEOUT_S, PUB_TIMEOUT_S, t->pubs_late, t->pubs, s->pubs_late, s->pubs);
    snprintf(a, sizeof a, t->fail_s < 0 ? "timeout" : "%.2f s", t->fail_s);
    snprintf(b, sizeof b, s->fail_s < 0 ? "timeout" : "%.2f s", s->fail_s);
    row("failure detection (all: dead)", a, b, t->fail_s / s->fail_s, NULL);
    snprintf(a, sizeof a, "%.1f MiB", t->rss_mib);
    snprintf(b, sizeof b, "%.1f MiB", s->rss_mib);
    double rr = t->rss_mib / s->rss_mib;
    row("RSS per idle node", a, b, rr, verdict(rr, 0.5, v, sizeof v, "ratio <= 0.50"));
    snprintf(a, sizeof a, "%.1f MiB", t->anon_mib);
    snprintf(b, sizeof b, "%.1f MiB", s->anon_mib);
    rr = t->anon_mib / s->anon_mib;
    row("  private (RssAnon) per node", a, b, rr, verdict(rr, 0.5, v, sizeof v, "ratio <= 0.50"));
    snprintf(a, sizeof a, "%.1f MiB", t->pss_mib);
    snprintf(b, sizeof b, "%.1f MiB", s->pss_mib);
    row("  PSS per node", a, b, t->pss_mib / s->pss_mib, NULL);
    fmt_bytes(a, sizeof a, t->wire_bps);
    fmt_bytes(b, sizeof b, s->wire_bps);
    double rb = (t->wire_bps >= 0 && s->wire_bps > 0) ? t->wire_bps / s->wire_bps : -1;
    row("idle bytes/s per node (wire)", a, b, rb, verdict(rb, 0.5, v, sizeof v, "ratio <= 0.50"));
    if (n >= 20)   /* issue 9 item 6: what TCP under ZeroMQ can reach (bench/README.md) */
        row("  same, issue 9 target", "", "", rb, verdict(rb, 1.5, v, sizeof v, "ratio <= 1.50"));
    snprintf(a, sizeof a, t->wire_bps < 0 ? "n/a" : "%.1f pkt/s", t->wire_pps);
    snprintf(b, sizeof b, s->wire_bps < 0 ? "n/a" : "%.1f pkt/s", s->wire_pps);
    row("  idle packets/s per node", a, b, -1, NULL);
    fmt_bytes(a, sizeof a, t->app_bps);
    row("  trib payload out (/metrics)", a, "-", -1, NULL);
}

/* Issue 9 item 6: SWIM promises constant load per member, so idle bytes per node should not
 * depend on N. Each N's figure against the mean of all of them (target: every one within 20 %). */
static void idle_flat(const int *ns, const result_t *ts, int nn)
{
    if (nn < 2)
        return;
    const char *what[] = {"payload (/metrics)", "wire"};
    printf("\nIdle traffic per node across N (tributary; target: each N within 20 %% of the mean)\n");
    for (int w = 0; w < 2; w++) {
        double sum = 0, dev = 0;
        int ok = 1;
        for (int k = 0; k < nn; k++) {
            double x = w ? ts[k].wire_bps : ts[k].app_bps;
            ok &= x >= 0;
            sum += x;
        }
        if (!ok) {
            printf("  %-20s n/a\n", what[w]);
            continue;
        }
        printf("  %-20s", what[w]);
        for (int k = 0; k < nn; k++) {
            double x = w ? ts[k].wire_bps : ts[k].app_bps, d = fabs(x / (sum / nn) - 1);
            dev = d > dev ? d : dev;
            printf("  N=%d %.0f B/s", ns[k], x);
        }
        printf("   widest deviation %.0f %%  %s\n", dev * 100, dev <= 0.20 ? "PASS" : "MISS");
    }
}

/* "load average 1.23 0.98 0.80" from /proc/loadavg (static buffer). */
static const char *bench_loadavg_text(void)
{
    static char buf[64];
    double l[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
        l[0] = -1;
    if (f)
        fclose(f);
    snprintf(buf, sizeof buf, "load average %.2f %.2f %.2f", l[0], l[1], l[2]);
    return buf;
}

/* The median of v[0..n) (sorts v; the mean of the middle two when n is even). */
static double median(double *v, int n)
{
    bench_pct(v, (size_t)n, 50);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One row of the chartered comparison: median [min..max] of a result field over rounds, each mode,
 * and the ratio of the medians with the range of the per-round ratios. */
static void join_row(const char *what, const result_t *o, const result_t *t, int rounds, size_t off, int secs)
{
    double a[16] = {0}, b[16] = {0}, q[16] = {0};
    for (int r = 0; r < rounds; r++) {
        a[r] = *(const double *)((const char *)&o[r] + off);
        b[r] = *(const double *)((const char *)&t[r] + off);
        q[r] = a[r] > 0 ? b[r] / a[r] : 0;
    }
    double am = median(a, rounds), bm = median(b, rounds);
    char ta[64], tb[64];
    const char *f = secs ? "%.2f [%.2f..%.2f]" : "%.1f [%.1f..%.1f]";
    snprintf(ta, sizeof ta, f, am, a[0], a[rounds - 1]); /* median() sorted them */
    snprintf(tb, sizeof tb, f, bm, b[0], b[rounds - 1]);
    median(q, rounds);
    printf("  %-26s %24s %24s %6.2fx [%.2f..%.2f]\n", what, ta, tb, am > 0 ? bm / am : 0, q[0], q[rounds - 1]);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fed TRIB_BINARY [N...]\n");
        return 2;
    }
    trib_bin = argv[1];
    if (argc > 2 && !strcmp(argv[2], "catchup")) { /* fed TRIB catchup [DOMAINS [PER]] */
        int d = argc > 3 ? atoi(argv[3]) : 100, per = argc > 4 ? atoi(argv[4]) : 1000;
        if (d < 1 || d > 999 || per < 1 || per > 100000 || sodium_init() < 0)
            bench_die("catchup: DOMAINS 1..999, PER 1..100000");
        const char *tmp = bench_init("tribbench-catchup");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        chartered = getenv("FED_CHARTERED") && atoi(getenv("FED_CHARTERED")) > 0;
        run_catchup(d, per, tmp);
        curl_global_cleanup();
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "chartered")) { /* fed TRIB chartered [N...] */
        int ns[8] = {20}, nn = argc > 3 ? 0 : 1;
        for (int i = 3; i < argc && nn < 8; i++)
            if ((ns[nn++] = atoi(argv[i])) < 2 || ns[nn - 1] > MAXN)
                bench_die("chartered: N must be 2..%d", MAXN);
        const char *e = getenv("FED_IDLE_S");
        idle_s = e && atoi(e) > 0 ? atoi(e) : 3;
        if ((e = getenv("FED_PUBS")) && atoi(e) > 0)
            npubs = atoi(e);
        if (sodium_init() < 0)
            bench_die("sodium_init");
        const char *tmp = bench_init("tribbench-chartered");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rounds = (e = getenv("FED_CHARTER_ROUNDS")) && atoi(e) > 0 ? atoi(e) : 3;
        if (rounds > 16)
            rounds = 16;
        join_cmp = 1;
        printf("== Chartered federation (issue 10): the same N nodes open and chartered, %d rounds in one run ==\n"
               "Join (per node) = from forking it until its own log shows every other node alive AND node 0's entry\n"
               "  published before the joins ('catalog: accepted n0 seq 1'): p50 and max over nodes 1..N-1 (membership\n"
               "  alone: without the entry, which waits for an anti-entropy round in both modes; entry wait = from\n"
               "  full membership until the entry, 0 when it came first). All alive =\n"
               "  from forking nodes 1..N-1 until every log shows all alive. Start-up = from forking a node until its log\n"
               "  says it listens ('gossip on'). Publish = PUT on node 0 until every other\n"
               "  node's log says 'catalog: accepted' (%d, one at a time). Chartered: --charter/--cert, per-node CURVE\n"
               "  keys, seeds NODE_ID@HOST:PORT, certificate hellos, every connection and entry checked against the trust\n"
               "  store. Rounds alternate the order (open first, then chartered first). Shown: median [min..max] over\n"
               "  rounds; ratio = chartered/open of the medians [min..max of the per-round ratios].\n"
               "  Target: chartered join <= 1.1x open.\n", rounds, npubs);
        for (int k = 0; k < nn; k++) {
            result_t o[16], t[16];
            for (int r = 0; r < rounds; r++) {
                const char *only = getenv("FED_ONLY"); /* diagnosis: "open" or "chartered" alone (perf) */
                for (int half = 0; half < 2; half++) {
                    chartered = (r & 1) ? !half : half;
                    if (only && strcmp(only, chartered ? "chartered" : "open")) {
                        *(chartered ? &t[r] : &o[r]) = (result_t){.all_alive_s = 1};
                        continue;
                    }
                    run_cluster(SYS_TRIB, ns[k], tmp, chartered ? &t[r] : &o[r]);
                }
                fprintf(stderr, "fed: chartered N=%d round %d: join p50 open %.2f s chartered %.2f s (membership %.2f / %.2f, "
                        "entry wait %.2f / %.2f)\n", ns[k], r + 1, o[r].join_p50_s, t[r].join_p50_s, o[r].member_p50_s,
                        t[r].member_p50_s, o[r].entry_wait_p50_s, t[r].entry_wait_p50_s);
                if (getenv("FED_METRICS")) {
                    fprintf(stderr, "  %-90s %10s %10s\n", "metrics summed over nodes at the last join", "open", "chartered");
                    dm_print();
                }
            }
            printf("  N = %d (%s)\n", ns[k], bench_loadavg_text());
            printf("  %-26s %24s %24s %21s\n", "figure", "open", "chartered", "ratio");
            join_row("join p50 (s)", o, t, rounds, offsetof(result_t, join_p50_s), 1);
            join_row("join max (s)", o, t, rounds, offsetof(result_t, join_max_s), 1);
            join_row("membership alone p50 (s)", o, t, rounds, offsetof(result_t, member_p50_s), 1);
            join_row("entry wait p50 (s)", o, t, rounds, offsetof(result_t, entry_wait_p50_s), 1);
            join_row("all alive (s)", o, t, rounds, offsetof(result_t, all_alive_s), 1);
            join_row("start-up p50 (s)", o, t, rounds, offsetof(result_t, listen_p50_s), 1);
            join_row("start-up max (s)", o, t, rounds, offsetof(result_t, listen_max_s), 1);
            join_row("CPU of all nodes, join (s)", o, t, rounds, offsetof(result_t, join_cpu_s), 1);
            join_row("publish reach-all p50 (ms)", o, t, rounds, offsetof(result_t, pub_p50_ms), 0);
            join_row("publish reach-all p99 (ms)", o, t, rounds, offsetof(result_t, pub_p99_ms), 0);
            printf("  counters at the last join, summed over nodes, median of rounds (open / chartered):\n   ");
            for (int j = 0; j < JC_N; j++) {
                double a[16] = {0}, b2[16] = {0};
                for (int r = 0; r < rounds; r++)
                    a[r] = o[r].jc[j], b2[r] = t[r].jc[j];
                printf(" %s %.0f / %.0f%s", jc_label[j], median(a, rounds), median(b2, rounds),
                       j + 1 < JC_N ? ";" : "\n");
            }
            fflush(stdout);
        }
        curl_global_cleanup();
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "concurrent")) { /* fed TRIB concurrent [N [PER]] */
        int n = argc > 3 ? atoi(argv[3]) : 10, per = argc > 4 ? atoi(argv[4]) : 1000;
        if (n < 2 || n > MAXN || per < 1)
            bench_die("concurrent: N must be 2..%d and PER >= 1", MAXN);
        const char *tmp = bench_init("tribbench-conc");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        run_concurrent(n, per, tmp);
        curl_global_cleanup();
        return 0;
    }
    const char *e;
    if ((e = getenv("FED_PUBS")) && atoi(e) > 0)
        npubs = atoi(e);
    if ((e = getenv("FED_IDLE_S")) && atoi(e) > 0)
        idle_s = atoi(e);
    if ((e = getenv("FED_TRIB_POLL")) && atoi(e) > 0)
        trib_poll = 1;
    if ((e = getenv("FED_POLL_US")) && atoi(e) > 0)
        poll_us = atoi(e);
    int ns[8] = {5, 10, 20}, nn = 3;
    if (argc > 2) {
        nn = 0;
        for (int i = 2; i < argc && nn < 8; i++) {
            int v = atoi(argv[i]);
            if (v < 2 || v > MAXN)
                bench_die("N must be 2..%d", MAXN);
            ns[nn++] = v;
        }
    }
    int no_serf = getenv("FED_NO_SERF") && atoi(getenv("FED_NO_SERF")) > 0; /* Tributary alone */
    if (!no_serf && system("command -v serf >/dev/null 2>&1") != 0)
        bench_die("serf not found in PATH (install the Debian package serf: deploy/deps.sh serf)");
    const char *tmp = bench_init("tribbench-fed");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    nft_setup();

    printf("== Federation (issue 3): Tributary beside HashiCorp Serf, N real nodes on loopback ==\n");
    printf("Methods: all-alive = from forking nodes 1..N-1 (node 0 already up, every node seeded with it) until\n"
           "  every node's log shows all others alive. Publish = trib HTTP PUT of a new manifest on node 0 (signed,\n"
           "  verified on every hop), serf user event over node 0's RPC; until the last other node has it:\n"
           "  from each agent's own log line as it arrives on its pipe: serf 'Received event: user-event', trib\n"
           "  'catalog: accepted' (agents at --log-level debug; logged after the entry is verified and stored)%s.\n"
           "  %d publishes per N, one at a time.\n"
           "  Failure = SIGKILL of node N-1 until every other node's log shows it dead. Idle = after 3 s + N x 1 s settling,\n"
           "  %d s window: RSS = VmRSS (counts shared library pages in full), private = RssAnon, PSS = shared pages\n"
           "  split among the processes mapping them; wire bytes = nftables counter of IP bytes to/from the cluster's peer ports\n"
           "  on loopback (%s), per node. Default timings for both (memberlist LAN profile).\n",
           trib_poll ? " [FED_TRIB_POLL: trib by polling GET /v1/products/ID instead, an upper bound]" : "", npubs,
           idle_s, nft_ok ? "same for both" : "UNAVAILABLE here: nft not usable");

    result_t ts[8];
    for (int k = 0; k < nn; k++) {
        result_t t, s;
        run_cluster(SYS_TRIB, ns[k], tmp, &t);
        ts[k] = t;
        if (no_serf) {
            memset(&s, 0, sizeof s);
            s.wire_bps = s.app_bps = -1;
        } else {
            run_cluster(SYS_SERF, ns[k], tmp, &s);
        }
        report(ns[k], &t, &s);
    }
    idle_flat(ns, ts, nn);
    curl_global_cleanup();
    return 0;
}
