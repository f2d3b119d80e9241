/* bench/soak.c - a soak of a real federation: N `trib agent`s on loopback (each its own domain,
 * seeded from node 0) under concurrent publishes, appends, routed and direct reads and searches for
 * SOAK_SECONDS, with live streams followed through them, while a chaos thread kills and restarts
 * nodes on their data dirs, freezes them (SIGSTOP/SIGCONT), sends garbage to their gossip,
 * data-link and HTTP ports and floods their HTTP port with half-sent requests. It checks that
 * nothing acknowledged is lost, that no node exits by itself, that memory stays bounded and that
 * the federation converges once the load stops.
 *
 * Usage: soak TRIB_BINARY    (`make soak`; knobs below and in bench/README.md "Soak")
 *   SOAK_SECONDS (300)  SOAK_NODES (5)  SOAK_SEED (time)  SOAK_PUBLISHERS (3)  SOAK_RECPRODS (2 a node)
 *   SOAK_READERS (2)  SOAK_FOLLOWERS (2, live streams)  SOAK_PACE_MS (50, pause between one client's
 *   operations)  SOAK_CHAOS_MS (4000)  SOAK_MAX_DOWN (1)  SOAK_CONVERGE_S (60)
 *   SOAK_RSS_MIB (128, RssAnon bound)  SOAK_DEBUG=1 (echo logs)
 *   SOAK_CHARTERED=1: a chartered federation (two roots made here, every node certified, seeds
 *   NODE_ID@HOST:PORT as first started, never updated), and a fifth fault: a running node's key
 *   rotation, handed in to the node itself, or submitted to another node's federation log and the
 *   rotating node SIGKILLed 0-500 ms later (restarted 1-5 s after; the switch finishes on the node
 *   or at its start). The soak then takes the node's new admin token once it appears. And
 *   access as a company runs it: the record products are confidential; every node's domain has a
 *   reader (a read token "reader@DOMAIN" issued by its node) who asked each other domain's record
 *   products for access on its home node, granted by the owner; reads and streams through node K
 *   use K's reader token (on the owner itself its admin token), so the owner checks a grant on
 *   every routed read, across rotations of issuer and owner (a new reader token is issued once the
 *   issuer's key rotated). A read refused 401/403/404 is then a failure.
 *
 * Owns: the ledger of acknowledged operations (publishes by product and version, appends by record
 * number), the checks of every read against it, the fault schedule, and the report on stdout.
 * Record numbers: each product's appender gives every record it sends a field "n", increasing by
 * one per record over all its attempts (never reused), so a read must show n strictly increasing;
 * an append answered 2xx must be readable, one refused with an HTTP error must never be; one with
 * no answer (transport error, "couldn't connect" included: see write_outcome) may be either. A
 * seq, once read, must keep its record.
 * Determinism: SOAK_SEED fixes every thread's choices (operations, sizes, faults, victims and
 * delays); how threads interleave on the machine is not fixed.
 * Must not: leave a process or temp dir behind (bench.h: atexit, signals, PR_SET_PDEATHSIG). */
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include "bench/bench.h"
#include "bench/charter.h"
#include "bench/pair.h"

#define MAX_NODES 30
#define TAIL_LINES 40
#define PUBS_PER_NODE 2000         /* products a publisher makes at most; then it only updates them */
#define MAX_PUBS (MAX_NODES * PUBS_PER_NODE)
#define FAIL_PRINT 30

enum { ST_NONE = 0, ST_PENDING, ST_ACKED, ST_REFUSED, ST_UNKNOWN };

/* ------------------------------------------------------------------ configuration */

static struct {
    int nodes, seconds, publishers, recprods, readers, followers, pace_ms, chaos_ms, max_down, converge_s, rss_mib;
    uint64_t seed;
    int debug, chartered;
} cfg = {5, 300, 3, 2, 2, 2, 50, 4000, 1, 60, 128, 0, 0, 0};

static const char *trib_bin, *tmp;
static int base_port, lock_fd;
static volatile uint64_t load_half_ns;   /* when half the load time has passed (0: load not started) */
static volatile int load_stop, chaos_stop, chaos_restored, monitor_stop, converging;

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *e = getenv(name);
    if (!e || !*e)
        return def;
    long v = strtol(e, NULL, 10);
    if (v < lo || v > hi)
        bench_die("%s=%s: must be %d..%d", name, e, lo, hi);
    return (int)v;
}

static void read_config(void)
{
    cfg.seconds = env_int("SOAK_SECONDS", cfg.seconds, 5, 86400);
    cfg.nodes = env_int("SOAK_NODES", cfg.nodes, 2, MAX_NODES);
    cfg.publishers = env_int("SOAK_PUBLISHERS", cfg.publishers, 1, MAX_NODES);
    if (cfg.publishers > cfg.nodes)
        cfg.publishers = cfg.nodes;
    cfg.recprods = env_int("SOAK_RECPRODS", cfg.recprods, 1, 8);
    cfg.readers = env_int("SOAK_READERS", cfg.readers, 1, 16);
    cfg.followers = env_int("SOAK_FOLLOWERS", cfg.followers, 0, 16);
    cfg.pace_ms = env_int("SOAK_PACE_MS", cfg.pace_ms, 0, 10000);
    cfg.chaos_ms = env_int("SOAK_CHAOS_MS", cfg.chaos_ms, 500, 600000);
    cfg.max_down = env_int("SOAK_MAX_DOWN", cfg.max_down, 0, MAX_NODES - 1);
    if (cfg.max_down > cfg.nodes - 1)
        cfg.max_down = cfg.nodes - 1;
    cfg.converge_s = env_int("SOAK_CONVERGE_S", cfg.converge_s, 5, 3600);
    cfg.rss_mib = env_int("SOAK_RSS_MIB", cfg.rss_mib, 8, 65536);
    const char *s = getenv("SOAK_SEED");
    cfg.seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    cfg.debug = getenv("SOAK_DEBUG") != NULL;
    cfg.chartered = env_int("SOAK_CHARTERED", 0, 0, 1);
}

/* ------------------------------------------------------------------ random (splitmix64) */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in lo..hi (inclusive). */
static long rng_range(uint64_t *s, long lo, long hi) { return lo + (long)(rng_next(s) % (uint64_t)(hi - lo + 1)); }

/* A thread's own stream: the seed and the thread's role and number. */
static uint64_t rng_for(int role, int k) { return cfg.seed * 1000003ull + (uint64_t)role * 1009ull + (uint64_t)k; }

/* ------------------------------------------------------------------ failures and counters */

static pthread_mutex_t report_mx = PTHREAD_MUTEX_INITIALIZER;
static int failures;

/* An invariant violated: counted, the first FAIL_PRINT printed on stdout. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&report_mx);
    if (failures++ < FAIL_PRINT)
        printf("FAIL: %s\n", msg);
    fprintf(stderr, "soak: FAIL: %s\n", msg);
    pthread_mutex_unlock(&report_mx);
}

/* Named counters (operation outcomes, error kinds, faults), printed at the end. */
#define KINDS_MAX 96
static struct {
    char name[96];
    uint64_t n;
} kinds[KINDS_MAX];
static int nkinds;

static void tally(uint64_t by, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tally(uint64_t by, const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&report_mx);
    int i = 0;
    while (i < nkinds && strcmp(kinds[i].name, name))
        i++;
    if (i == nkinds && nkinds < KINDS_MAX)
        snprintf(kinds[nkinds++].name, sizeof kinds[0].name, "%s", name);
    if (i < nkinds)
        kinds[i].n += by;
    pthread_mutex_unlock(&report_mx);
}

#define count(...) tally(1, __VA_ARGS__)


/* ------------------------------------------------------------------ nodes */

typedef struct {
    int idx;
    char dom[16], data[300], token[4200];   /* token: nodes_mx (token_of), replaced after a key rotation */
    char id0[ID_HEX_LEN], cert[320];   /* chartered: its first node id (its seed spec), certificate */
    char reader[4200];                 /* chartered: its domain's reader's read token (nodes_mx) */
    int peer_port, http_port, link_port;
    bench_proc_t proc;                 /* pid 0 while killed */
    int frozen;                        /* SIGSTOPped by the chaos thread */
    unsigned faults;                   /* faults begun on this node (a read across one may fail) */
    char tail[TAIL_LINES][240];        /* its last log lines */
    int tail_next;
    long anon_max, rss_max, anon_last, rss_last;
    long anon_half;                    /* RssAnon when half the load time had passed, -1 before */
    int restarts_half;                 /* restarts then: the end's figure is the same process's if equal */
    int restarts;
} node_t;

static node_t nodes[MAX_NODES];
static pthread_mutex_t nodes_mx = PTHREAD_MUTEX_INITIALIZER;
static bench_charter_t charter;         /* chartered: the roots */
static char charter_path[320];

/* The token a client reading owner's products through node at uses, into out: chartered, the
 * reader of at's domain (granted access to owner's products), else and on the owner itself the
 * owner's admin token. */
static const char *read_token(int at, int owner, char out[4200])
{
    pthread_mutex_lock(&nodes_mx);
    memcpy(out, cfg.chartered && at != owner ? nodes[at].reader : nodes[owner].token, 4200);
    pthread_mutex_unlock(&nodes_mx);
    return out;
}

/* Node i's admin token now, copied into out (it changes when the node's key rotates). */
static const char *token_of(int i, char out[4200])
{
    pthread_mutex_lock(&nodes_mx);
    memcpy(out, nodes[i].token, sizeof nodes[i].token);
    pthread_mutex_unlock(&nodes_mx);
    return out;
}

static void node_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t)
{
    (void)ctx, (void)t;
    node_t *n = &nodes[p->tag];
    snprintf(n->tail[n->tail_next], sizeof n->tail[0], "%s", line);
    n->tail_next = (n->tail_next + 1) % TAIL_LINES;
    if (cfg.debug)
        fprintf(stderr, "[n%d] %s\n", p->tag, line);
}

/* Prints a node's last log lines on stdout (nodes_mx held). */
static void node_print_tail(node_t *n)
{
    printf("  --- last log lines of n%d ---\n", n->idx);
    for (int k = 0; k < TAIL_LINES; k++) {
        const char *l = n->tail[(n->tail_next + k) % TAIL_LINES];
        if (*l)
            printf("  n%d| %s\n", n->idx, l);
    }
}

/* Starts node i on its data dir (nodes_mx held): n0 seeds from n1 on a restart, the others from n0. */
static void node_spawn(int i)
{
    node_t *n = &nodes[i];
    char peer[32], http[32], link[32];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", n->peer_port);
    snprintf(http, sizeof http, "127.0.0.1:%d", n->http_port);
    snprintf(link, sizeof link, "127.0.0.1:%d", n->link_port);
    char seed[160];
    int seed_of = i == 0 ? 1 : 0;
    if (cfg.chartered)
        snprintf(seed, sizeof seed, "%s@127.0.0.1:%d", nodes[seed_of].id0, nodes[seed_of].peer_port);
    else
        snprintf(seed, sizeof seed, "127.0.0.1:%d", nodes[seed_of].peer_port);
    int with_seed = i != 0 || n->restarts > 0;
    char *argv[] = {(char *)trib_bin, "agent", "--data", n->data, "--domain", n->dom, "--listen", peer,
                    "--http", http, "--link-listen", link, with_seed ? "--seed" : NULL, seed, NULL, NULL, NULL, NULL, NULL};
    if (cfg.chartered) {
        char **a = argv + (with_seed ? 14 : 12);
        a[0] = "--charter", a[1] = charter_path, a[2] = "--cert", a[3] = n->cert;
    }
    if (bench_spawn(&n->proc, argv, i) < 0)
        bench_die("cannot start trib agent n%d: %s", i, strerror(errno));
    n->frozen = 0;
}

static void node_url(char *out, size_t cap, int i, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", nodes[i].http_port, path);
}

static unsigned node_faults(int i)
{
    pthread_mutex_lock(&nodes_mx);
    unsigned f = nodes[i].faults;
    pthread_mutex_unlock(&nodes_mx);
    return f;
}

/* The log drain: reads every node's pipe into its tail. */
static void *drain_main(void *arg)
{
    (void)arg;
    while (!monitor_stop) {
        struct pollfd pf[MAX_NODES];
        int n = 0;
        pthread_mutex_lock(&nodes_mx);
        for (int i = 0; i < cfg.nodes; i++)
            if (nodes[i].proc.fd >= 0)
                pf[n++] = (struct pollfd){.fd = nodes[i].proc.fd, .events = POLLIN};
        pthread_mutex_unlock(&nodes_mx);
        poll(pf, (nfds_t)n, 200);
        pthread_mutex_lock(&nodes_mx);
        for (int i = 0; i < cfg.nodes; i++)
            if (nodes[i].proc.fd >= 0)
                bench_proc_read(&nodes[i].proc, node_line, NULL, 0);
        pthread_mutex_unlock(&nodes_mx);
    }
    return NULL;
}

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    long status;
    CURLcode cc;
    pair_body_t body;
    uint64_t first_seq;            /* Trib-First-Seq, 0 when absent */
} resp_t;

/* Trib-First-Seq into the uint64_t at ud (a records answer's, a stream's). */
static size_t first_seq_header(char *p, size_t sz, size_t nm, void *ud)
{
    size_t n = sz * nm;
    if (n > 15 && !strncasecmp(p, "Trib-First-Seq:", 15))
        *(uint64_t *)ud = strtoull(p + 15, NULL, 10);
    return n;
}

/* One request on h (keep-alive) to node i, with tok when given; the answer in r (free r->body.buf). */
static void http_do(CURL *h, int i, const char *method, const char *path, const char *tok, const char *body,
                    size_t len, long timeout_s, resp_t *r)
{
    char url[512];
    node_url(url, sizeof url, i, path);
    memset(r, 0, sizeof *r);
    r->body.keep = 1;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, pair_body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, first_seq_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->first_seq);
    BENCH_BEARER(h, tok);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hdr = NULL;
    if (body) {
        size_t pl = strlen(path);
        int records = pl > 8 && !strcmp(path + pl - 8, "/records");
        hdr = curl_slist_append(hdr, "Expect:");    /* no 100-continue round trip */
        hdr = curl_slist_append(hdr, records ? "Content-Type: application/x-ndjson" : "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    r->cc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    if (r->cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
}

/* The "error" member of the JSON object in p[0..len), in out ("?" when there is none). */
static const char *error_of(const char *p, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    const char *q = p ? memmem(p, len, "\"error\":\"", 9) : NULL;
    if (q) {
        q += 9;
        const char *e = memchr(q, '"', len - (size_t)(q - p));
        size_t l = e ? (size_t)(e - q) : 0;
        snprintf(out, cap, "%.*s", (int)(l < 40 ? l : 40), q);
    }
    return out;
}

static const char *error_kind(const pair_body_t *b, char *out, size_t cap) { return error_of(b->buf, b->len, out, cap); }

/* The outcome of a write: ST_ACKED (2xx), ST_REFUSED (an HTTP error answer: nothing was written)
 * or ST_UNKNOWN (no answer); counted as what/kind. Any refusal but a 503 (busy, not_synced) is a
 * failure. "Couldn't connect" is no proof that nothing was written: libcurl sends a request on a
 * kept-alive connection first, and when that one dies without an answer (the node was killed after
 * reading the request, maybe after committing it) it connects again for the retry, which fails. */
static int write_outcome(const char *what, int i, const resp_t *r, const char *detail)
{
    char kind[48];
    if (r->cc == CURLE_OK && r->status >= 200 && r->status < 300) {
        count("%s acknowledged", what);
        return ST_ACKED;
    }
    if (r->cc == CURLE_COULDNT_CONNECT) {
        count("%s unknown: no connection (node down)", what);
        return ST_UNKNOWN;
    }
    if (r->cc != CURLE_OK) {
        count("%s unknown: %s", what, curl_easy_strerror(r->cc));
        return ST_UNKNOWN;
    }
    error_kind(&r->body, kind, sizeof kind);
    count("%s refused: HTTP %ld %s", what, r->status, kind);
    if (r->status != 503)
        fail("%s %s on n%d refused unexpectedly: HTTP %ld %.300s", what, detail, i, r->status,
             r->body.buf ? r->body.buf : "");
    return ST_REFUSED;
}

/* ------------------------------------------------------------------ manifests */

#define REC_SCHEMA                                                                                     \
    "[{\"name\":\"n\",\"logicalType\":\"integer\",\"required\":true},"                               \
    "{\"name\":\"pad\",\"logicalType\":\"string\"}]"

static void manifest(char *out, size_t cap, int node, const char *name, int version, const char *word,
                     const char *classification)
{
    snprintf(out, cap,
             "{\"name\":\"%s\",\"domain\":\"%s\",\"version\":\"1.0.%d\",\"status\":\"active\","
             "\"classification\":\"%s\","
             "\"title\":\"soak %s %s\",\"description\":\"soak product, revision %d, about %s\","
             "\"tags\":[\"soak\",\"%s\"],"
             "\"owners\":{\"business\":\"soak@example.com\",\"technical\":\"soak@example.com\"},"
             "\"schema\":" REC_SCHEMA "}",
             name, nodes[node].dom, version, classification, name, word, version, word, word);
}

static const char *words[] = {"ledger", "payments", "listening", "royalties", "settlement", "growth",
                              "churn", "invoices", "streams", "catalog", "orders", "refunds"};
#define NWORDS (int)(sizeof words / sizeof *words)

/* ------------------------------------------------------------------ publish ledger */

typedef struct {
    int node;
    char name[32];
    int attempt;      /* highest version tried: 1.0.attempt */
    int acked;        /* highest version answered 2xx, -1: none */
    int unknown;      /* some attempt's answer was lost */
} pub_t;

static pub_t pubs[MAX_PUBS];
static int npubs;
static int pub_of[MAX_NODES][PUBS_PER_NODE];   /* [node][k]: the index in pubs of product p<node>-<k> */
static int pubs_made[MAX_NODES];
static pthread_mutex_t pubs_mx = PTHREAD_MUTEX_INITIALIZER;

/* A new product of node, p<node>-<k>; its index in pubs, or -1 when node has made all it may. */
static int pub_new(int node)
{
    pthread_mutex_lock(&pubs_mx);
    int k = pubs_made[node], i = -1;
    if (k < PUBS_PER_NODE) {
        i = pub_of[node][k] = npubs++;
        pubs[i] = (pub_t){.node = node, .attempt = -1, .acked = -1};
        snprintf(pubs[i].name, sizeof pubs[i].name, "p%d-%d", node, k);
        pubs_made[node]++;
    }
    pthread_mutex_unlock(&pubs_mx);
    return i;
}

/* The index in pubs of node's product named name, or -1. */
static int pub_find(int node, const char *name)
{
    char *end;
    const char *dash = strchr(name, '-');
    if (name[0] != 'p' || !dash || atoi(name + 1) != node)
        return -1;
    long k = strtol(dash + 1, &end, 10);
    return *end || k < 0 || k >= pubs_made[node] ? -1 : pub_of[node][k];
}

/* One publish of pubs[i] at its next version on its node. */
static void publish_once(CURL *h, int i, uint64_t *rng)
{
    pthread_mutex_lock(&pubs_mx);
    int node = pubs[i].node, version = ++pubs[i].attempt;
    char name[32], path[96], body[2048];
    snprintf(name, sizeof name, "%s", pubs[i].name);
    pthread_mutex_unlock(&pubs_mx);
    manifest(body, sizeof body, node, name, version, words[rng_range(rng, 0, NWORDS - 1)], "internal");
    snprintf(path, sizeof path, "/v1/products/%s/%s", nodes[node].dom, name);
    resp_t r;
    char tok[4200];
    http_do(h, node, "PUT", path, token_of(node, tok), body, strlen(body), 20, &r);
    char detail[80];
    snprintf(detail, sizeof detail, "of %s/%s 1.0.%d", nodes[node].dom, name, version);
    int st = write_outcome("publish", node, &r, detail);
    pthread_mutex_lock(&pubs_mx);
    if (st == ST_ACKED && version > pubs[i].acked)
        pubs[i].acked = version;
    if (st == ST_UNKNOWN)
        pubs[i].unknown = 1;
    pthread_mutex_unlock(&pubs_mx);
    free(r.body.buf);
}

/* A publisher: node k publishes a new product (1 in 4) or a new version of one of its own. */
static void *publisher_main(void *arg)
{
    int node = (int)(intptr_t)arg;
    uint64_t rng = rng_for(1, node);
    CURL *h = curl_easy_init();
    while (!load_stop) {
        int i = -1;
        if (pubs_made[node] == 0 || rng_range(&rng, 0, 3) == 0)
            i = pub_new(node);
        if (i < 0)
            i = pub_of[node][rng_range(&rng, 0, pubs_made[node] - 1)];
        publish_once(h, i, &rng);
        bench_sleep_ms(cfg.pace_ms);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------------ record ledger */

typedef struct {
    uint64_t first, count;
    int st;
    int reported;                 /* a failure about its records was printed (once is enough) */
} batch_t;

typedef struct {
    int node;
    char name[32];
    pthread_mutex_t mx;
    uint64_t next_n;              /* the next record number to send (from 1) */
    uint64_t max_acked;           /* the highest record number acknowledged */
    batch_t *b;                   /* in record-number order */
    size_t nb, capb;
    uint64_t *seq_n;              /* [seq]: the record number read at seq, 0 not seen yet */
    size_t capseq;
} recprod_t;

static recprod_t *recs;
static int nrecs;

/* The batch holding record number n, or NULL (rp->mx held). */
static batch_t *batch_of(recprod_t *rp, uint64_t n)
{
    size_t lo = 0, hi = rp->nb;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rp->b[mid].first + rp->b[mid].count <= n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rp->nb && rp->b[lo].first <= n ? &rp->b[lo] : NULL;
}

/* The first acknowledged record number in (a, b), or 0 (rp->mx held). */
static uint64_t acked_between(recprod_t *rp, uint64_t a, uint64_t b)
{
    size_t lo = 0, hi = rp->nb;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rp->b[mid].first + rp->b[mid].count <= a + 1)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < rp->nb && rp->b[k].first < b; k++)
        if (rp->b[k].st == ST_ACKED) {
            uint64_t n = rp->b[k].first > a + 1 ? rp->b[k].first : a + 1;
            if (n < b && n < rp->b[k].first + rp->b[k].count)
                return n;
        }
    return 0;
}

/* Records a batch about to be sent (pending); returns its index. */
static size_t batch_add(recprod_t *rp, uint64_t count_, uint64_t *first)
{
    pthread_mutex_lock(&rp->mx);
    if (rp->nb == rp->capb) {
        rp->capb = rp->capb ? rp->capb * 2 : 256;
        rp->b = realloc(rp->b, rp->capb * sizeof *rp->b);
        if (!rp->b)
            bench_die("out of memory");
    }
    size_t k = rp->nb++;
    rp->b[k] = (batch_t){rp->next_n, count_, ST_PENDING, 0};
    *first = rp->next_n;
    rp->next_n += count_;
    pthread_mutex_unlock(&rp->mx);
    return k;
}

static void batch_settle(recprod_t *rp, size_t k, int st)
{
    pthread_mutex_lock(&rp->mx);
    rp->b[k].st = st;
    if (st == ST_ACKED && rp->b[k].first + rp->b[k].count - 1 > rp->max_acked)
        rp->max_acked = rp->b[k].first + rp->b[k].count - 1;
    pthread_mutex_unlock(&rp->mx);
}

/* NDJSON of count records numbered first.., each padded to about 100 bytes. malloc'd. */
static char *records_text(uint64_t first, uint64_t count_, size_t *len)
{
    char *buf = malloc(count_ * 128 + 1);
    if (!buf)
        bench_die("out of memory");
    size_t l = 0;
    for (uint64_t k = 0; k < count_; k++)
        l += (size_t)sprintf(buf + l, "{\"n\":%llu,\"pad\":\"%.*s\"}\n", (unsigned long long)(first + k),
                             (int)(80 - (first + k) % 40), "soak-soak-soak-soak-soak-soak-soak-soak-soak-soak-"
                                                         "soak-soak-soak-soak-soak-soak-soak-soak-soak-soak");
    *len = l;
    return buf;
}

/* One append of 1..20 records to rp on its owner. */
static void append_once(CURL *h, recprod_t *rp, uint64_t *rng)
{
    uint64_t cnt = (uint64_t)rng_range(rng, 1, 20), first;
    size_t k = batch_add(rp, cnt, &first), len;
    char *text = records_text(first, cnt, &len);
    char path[96];
    snprintf(path, sizeof path, "/v1/products/%s/%s/records", nodes[rp->node].dom, rp->name);
    resp_t r;
    char tok[4200];
    http_do(h, rp->node, "POST", path, token_of(rp->node, tok), text, len, 20, &r);
    char detail[96];
    snprintf(detail, sizeof detail, "to %s/%s", nodes[rp->node].dom, rp->name);
    batch_settle(rp, k, write_outcome("append", rp->node, &r, detail));
    if (r.cc == CURLE_OK && r.status == 201)
        tally(cnt, "records acknowledged");
    free(r.body.buf);
    free(text);
}

/* An appender: node k's record products, round robin. */
static void *appender_main(void *arg)
{
    int node = (int)(intptr_t)arg;
    uint64_t rng = rng_for(2, node);
    CURL *h = curl_easy_init();
    for (unsigned round = 0; !load_stop; round++) {
        append_once(h, &recs[node * cfg.recprods + (int)(round % (unsigned)cfg.recprods)], &rng);
        bench_sleep_ms(cfg.pace_ms);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------------ reads and their checks */

typedef struct {
    uint64_t lines, last_n;
    int broken;                   /* a check failed */
    int error_line;               /* ended with an {"error":...} line */
    char error_kind[48];
} readcheck_t;

/* Remembers (or checks) the record number at seq (rp->mx held). */
static void seq_check(recprod_t *rp, uint64_t seq, uint64_t n, const char *via)
{
    if (seq >= rp->capseq) {
        size_t cap = rp->capseq ? rp->capseq : 4096;
        while (cap <= seq)
            cap *= 2;
        rp->seq_n = realloc(rp->seq_n, cap * sizeof *rp->seq_n);
        if (!rp->seq_n)
            bench_die("out of memory");
        memset(rp->seq_n + rp->capseq, 0, (cap - rp->capseq) * sizeof *rp->seq_n);
        rp->capseq = cap;
    }
    if (rp->seq_n[seq] && rp->seq_n[seq] != n)
        fail("%s/%s seq %llu held record n=%llu, now n=%llu (%s)", nodes[rp->node].dom, rp->name,
             (unsigned long long)seq, (unsigned long long)rp->seq_n[seq], (unsigned long long)n, via);
    rp->seq_n[seq] = n;
}

/* Checks one record line at seq after the record numbered prev (0: none before it in this read);
 * returns its number, or 0 after a failure (rp->mx held). */
static uint64_t line_check(recprod_t *rp, const char *line, size_t len, uint64_t seq, uint64_t prev, int from_start,
                           const char *via)
{
    const char *id = nodes[rp->node].dom;
    if (len < 7 || strncmp(line, "{\"n\":", 5)) {
        fail("%s/%s seq %llu: not a record: %.*s (%s)", id, rp->name, (unsigned long long)seq,
             (int)(len < 120 ? len : 120), line, via);
        return 0;
    }
    uint64_t n = strtoull(line + 5, NULL, 10), lost = 0;
    batch_t *b = batch_of(rp, n), *lb = NULL;
    if (!(prev && n <= prev) && (prev || from_start) && (lost = acked_between(rp, prev, n)))
        lb = batch_of(rp, lost);
    if ((lb && lb->reported) || (!lb && b && b->st == ST_REFUSED && b->reported)) {
        count("failures seen again (already reported)");
        return 0;
    }
    if (lb)
        lb->reported = 1;
    else if (b && b->st == ST_REFUSED)
        b->reported = 1;
    if (prev && n <= prev)
        fail("%s/%s seq %llu: record n=%llu after n=%llu (%s)", id, rp->name, (unsigned long long)seq,
             (unsigned long long)n, (unsigned long long)prev, n == prev ? "duplicate" : "out of order");
    else if (lost)
        fail("%s/%s: acknowledged record n=%llu missing between n=%llu and n=%llu at seq %llu (%s)", id, rp->name,
             (unsigned long long)lost, (unsigned long long)prev, (unsigned long long)n, (unsigned long long)seq, via);
    else if (!b)
        fail("%s/%s seq %llu: record n=%llu was never sent (%s)", id, rp->name, (unsigned long long)seq,
             (unsigned long long)n, via);
    else if (b->st == ST_REFUSED)
        fail("%s/%s seq %llu: record n=%llu is stored though its append was refused (%s)", id, rp->name,
             (unsigned long long)seq, (unsigned long long)n, via);
    else {
        seq_check(rp, seq, n, via);
        return n;
    }
    return 0;
}

/* Checks a records answer (from `from`, seq of its first line first_seq) against rp's ledger:
 * numbers strictly increasing, no acknowledged record missing between two read, none refused, each
 * seq keeping its record; an {"error":...} line only last. */
static void body_check(recprod_t *rp, const pair_body_t *b, uint64_t from, uint64_t first_seq, const char *via,
                       readcheck_t *rc)
{
    memset(rc, 0, sizeof *rc);
    const char *p = b->buf ? b->buf : "", *end = p + b->len;
    uint64_t prev = 0;
    pthread_mutex_lock(&rp->mx);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (rc->error_line) {
            fail("%s/%s: a line after the error line (%s)", nodes[rp->node].dom, rp->name, via);
            rc->broken = 1;
            break;
        }
        if (!strncmp(p, "{\"error\":", 9)) {
            rc->error_line = 1;
            error_of(p, len, rc->error_kind, sizeof rc->error_kind);
        } else if (!nl) {
            fail("%s/%s: answer ends inside a record, without an error line (%s): %.*s", nodes[rp->node].dom,
                 rp->name, via, (int)(len < 80 ? len : 80), p);
            rc->broken = 1;
            break;
        } else {
            uint64_t n = line_check(rp, p, len, first_seq + rc->lines, prev, from == 1, via);
            if (!n) {
                rc->broken = 1;
                break;
            }
            prev = n;
            rc->lines++;
        }
        p += len + (nl != NULL);
    }
    pthread_mutex_unlock(&rp->mx);
    rc->last_n = prev;
}

static uint64_t max_acked_of(recprod_t *rp)
{
    pthread_mutex_lock(&rp->mx);
    uint64_t m = rp->max_acked;
    pthread_mutex_unlock(&rp->mx);
    return m;
}

/* Reads rp from node `at` (from, limit 0: all) and checks it; 0 when the read was whole and
 * clean, 1 for a clean error (counted), -1 after a failure. whole: the body, kept when non-NULL. */
static int read_check(CURL *h, recprod_t *rp, int at, uint64_t from, uint64_t limit, pair_body_t *whole)
{
    char path[160], via[64];
    snprintf(path, sizeof path, "/v1/products/%s/%s/records?from=%llu&limit=%llu", nodes[rp->node].dom, rp->name,
             (unsigned long long)from, (unsigned long long)limit);
    snprintf(via, sizeof via, "%s read on n%d from %llu", at == rp->node ? "direct" : "routed", at,
             (unsigned long long)from);
    const char *kind = converging ? "convergence check" : at == rp->node ? "direct" : "routed";
    uint64_t acked_before = max_acked_of(rp);
    unsigned faults_before = node_faults(at) + node_faults(rp->node);
    resp_t r;
    char tok[4200];
    http_do(h, at, "GET", path, read_token(at, rp->node, tok), NULL, 0, 60, &r);
    int rc = 1;
    char ek[48];
    if (r.cc != CURLE_OK) {
        int faulted = node_faults(at) + node_faults(rp->node) != faults_before;
        count("read error (%s): %s%s", kind, curl_easy_strerror(r.cc), faulted ? " (node faulted meanwhile)" : "");
    } else if (r.status == 401 || r.status == 403 || r.status == 404) {
        fail("%s/%s: read refused, HTTP %ld %s, with the token of %s (%s)", nodes[rp->node].dom, rp->name, r.status,
             error_kind(&r.body, ek, sizeof ek), at == rp->node ? "the owner's admin" : "a granted reader", via);
    } else if (r.status != 200) {
        count("read error (%s): HTTP %ld %s", kind, r.status, error_kind(&r.body, ek, sizeof ek));
    } else {
        readcheck_t c;
        body_check(rp, &r.body, from, r.first_seq ? r.first_seq : from, via, &c);
        if (c.lines && r.first_seq != from) {
            fail("%s/%s: Trib-First-Seq %llu, asked from %llu (%s)", nodes[rp->node].dom, rp->name,
                 (unsigned long long)r.first_seq, (unsigned long long)from, via);
            c.broken = 1;
        }
        if (!c.broken && !c.error_line && from == 1 && !limit && c.last_n < acked_before) {
            fail("%s/%s: whole read ends at n=%llu, n=%llu was acknowledged before it began (%s)",
                 nodes[rp->node].dom, rp->name, (unsigned long long)c.last_n, (unsigned long long)acked_before, via);
            c.broken = 1;
        }
        if (!c.broken && limit && c.lines > limit) {
            fail("%s/%s: %llu lines for limit %llu (%s)", nodes[rp->node].dom, rp->name,
                 (unsigned long long)c.lines, (unsigned long long)limit, via);
            c.broken = 1;
        }
        if (c.broken) {
            rc = -1;
        } else if (c.error_line) {
            count("read error line (%s): %s", kind, c.error_kind);
        } else {
            rc = 0;
            count("reads whole and in order (%s)", kind);
            tally(c.lines, "records read and checked");
        }
    }
    if (whole && rc == 0)
        *whole = r.body;
    else
        free(r.body.buf);
    return rc;
}

/* A reader: a random record product from a random node (3 in 4 not its owner: routed), one read
 * in 4 whole from seq 1, the others a window of up to 500 from a random seq. */
static void *reader_main(void *arg)
{
    uint64_t rng = rng_for(3, (int)(intptr_t)arg);
    CURL *h = curl_easy_init();
    while (!load_stop) {
        recprod_t *rp = &recs[rng_range(&rng, 0, nrecs - 1)];
        int at = rp->node;
        if (rng_range(&rng, 0, 3))
            at = (rp->node + (int)rng_range(&rng, 1, cfg.nodes - 1)) % cfg.nodes;
        uint64_t top = max_acked_of(rp), from = 1, limit = 0;
        if (rng_range(&rng, 0, 3) && top > 1)
            from = (uint64_t)rng_range(&rng, 1, (long)top), limit = (uint64_t)rng_range(&rng, 1, 500);
        read_check(h, rp, at, from, limit, NULL);
        bench_sleep_ms(cfg.pace_ms);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------------ live streams */

/* One subscription of a follower: the records of rp from seq `seq` on, each checked as it comes
 * against the one before it (`prev`, carried over from the follower's last subscription). */
typedef struct {
    recprod_t *rp;
    uint64_t seq, prev, first_seq, got;
    char line[512];
    size_t len;
    int error_line, broken;
    char error_kind[48], via[64];
} follow_t;

/* One whole line of a stream. */
static void follow_line(follow_t *f)
{
    recprod_t *rp = f->rp;
    if (f->error_line) {
        fail("%s/%s: a line after the error line (%s)", nodes[rp->node].dom, rp->name, f->via);
        f->broken = 1;
    } else if (!strncmp(f->line, "{\"error\":", 9)) {
        f->error_line = 1;
        error_of(f->line, f->len, f->error_kind, sizeof f->error_kind);
    } else if (f->first_seq != f->seq) {
        fail("%s/%s: stream from %llu answered Trib-First-Seq %llu (%s)", nodes[rp->node].dom, rp->name,
             (unsigned long long)f->seq, (unsigned long long)f->first_seq, f->via);
        f->broken = 1;
    } else {
        pthread_mutex_lock(&rp->mx);
        uint64_t n = line_check(rp, f->line, f->len, f->seq + f->got, f->prev, f->seq == 1, f->via);
        pthread_mutex_unlock(&rp->mx);
        if (!n)
            f->broken = 1;
        f->prev = n;
        f->got++;
    }
}

static size_t follow_body(char *p, size_t sz, size_t nm, void *ud)
{
    follow_t *f = ud;
    size_t n = sz * nm;
    for (size_t k = 0; k < n && !f->broken; k++) {
        if (p[k] != '\n') {
            if (f->len < sizeof f->line - 1)
                f->line[f->len++] = p[k];
            continue;
        }
        f->line[f->len] = '\0';
        follow_line(f);
        f->len = 0;
    }
    return f->broken ? 0 : n;
}

/* Where a follower starts on rp: after the highest seq any read has shown, that seq's record
 * before it (seq 1 and none when nothing was read yet). */
static void follow_start(recprod_t *rp, uint64_t *seq, uint64_t *prev)
{
    pthread_mutex_lock(&rp->mx);
    *seq = 1, *prev = 0;
    for (size_t s = rp->capseq; s-- > 1;)
        if (rp->seq_n[s]) {
            *seq = s + 1, *prev = rp->seq_n[s];
            break;
        }
    pthread_mutex_unlock(&rp->mx);
}

/* A follower: a live stream of one record product through a random node (3 in 4 not its owner)
 * for 3-15 s, then again from the seq after the last record it got, the first record of each
 * subscription checked against the last of the one before; every 5 subscriptions another product. */
static void *follower_main(void *arg)
{
    uint64_t rng = rng_for(6, (int)(intptr_t)arg);
    CURL *h = curl_easy_init();
    recprod_t *rp = NULL;
    uint64_t seq = 1, prev = 0;
    for (unsigned round = 0; !load_stop; round++) {
        if (round % 5 == 0) {
            rp = &recs[rng_range(&rng, 0, nrecs - 1)];
            follow_start(rp, &seq, &prev);
        }
        int at = rp->node;
        if (rng_range(&rng, 0, 3))
            at = (rp->node + (int)rng_range(&rng, 1, cfg.nodes - 1)) % cfg.nodes;
        follow_t f = {.rp = rp, .seq = seq, .prev = prev};
        snprintf(f.via, sizeof f.via, "%s stream on n%d from %llu", at == rp->node ? "direct" : "routed", at,
                 (unsigned long long)seq);
        char url[256], path[160];
        snprintf(path, sizeof path, "/v1/products/%s/%s/stream?from=%llu", nodes[rp->node].dom, rp->name,
                 (unsigned long long)seq);
        node_url(url, sizeof url, at, path);
        unsigned faults_before = node_faults(at) + node_faults(rp->node);
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)rng_range(&rng, 3000, 15000));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, follow_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, first_seq_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &f.first_seq);
        char tok[4200];
        BENCH_BEARER(h, read_token(at, rp->node, tok));
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        int faulted = node_faults(at) + node_faults(rp->node) != faults_before;
        const char *kind = at == rp->node ? "direct" : "routed";
        if (f.broken)
            prev = 0, seq = 1, round = 4;          /* a failure was reported: start afresh elsewhere */
        else if ((status == 401 || status == 403 || status == 404) && cc == CURLE_OK)
            fail("%s/%s: stream refused, HTTP %ld %s (%s)", nodes[rp->node].dom, rp->name, status,
                 f.error_line ? f.error_kind : "?", f.via);
        else if (status != 200 && cc == CURLE_OK)
            count("stream error (%s): HTTP %ld %s", kind, status, f.error_line ? f.error_kind : "?");
        else if (f.error_line)
            count("stream error line (%s): %s", kind, f.error_kind);
        else if (cc == CURLE_OPERATION_TIMEDOUT && status == 200)
            count("streams followed until the client left (%s)", kind);
        else if (cc != CURLE_OK)
            count("stream error (%s): %s%s", kind, curl_easy_strerror(cc), faulted ? " (node faulted meanwhile)" : "");
        else if (!faulted)
            fail("%s/%s: the stream ended without an error line (%s)", nodes[rp->node].dom, rp->name, f.via);
        else
            count("stream ended without an error line (%s, node faulted meanwhile)", kind);
        if (!f.broken && status == 200) {
            tally(f.got, "records streamed and checked");
            seq += f.got;
            prev = f.got ? f.prev : prev;
        }
        bench_sleep_ms(cfg.pace_ms);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------------ searches */

static void *searcher_main(void *arg)
{
    (void)arg;
    uint64_t rng = rng_for(4, 0);
    CURL *h = curl_easy_init();
    while (!load_stop) {
        int at = (int)rng_range(&rng, 0, cfg.nodes - 1);
        char path[128], ek[48];
        snprintf(path, sizeof path, "/v1/products?q=%s&limit=20", words[rng_range(&rng, 0, NWORDS - 1)]);
        resp_t r;
        http_do(h, at, "GET", path, NULL, NULL, 0, 20, &r);
        if (r.cc != CURLE_OK) {
            count("search error: %s", curl_easy_strerror(r.cc));
        } else if (r.status != 200) {
            count("search error: HTTP %ld %s", r.status, error_kind(&r.body, ek, sizeof ek));
        } else {
            json_t *j = json_loadb(r.body.buf ? r.body.buf : "", r.body.len, 0, NULL);
            if (!json_is_integer(json_object_get(j, "total")) || !json_is_array(json_object_get(j, "products")))
                fail("search on n%d: 200 without total/products: %.200s", at, r.body.buf ? r.body.buf : "");
            else
                count("searches answered");
            json_decref(j);
        }
        free(r.body.buf);
        bench_sleep_ms(cfg.pace_ms * 2);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------------ chaos */

/* Garbage for a port: random bytes, or a prefix the listener recognises followed by lies. */
static size_t hostile_payload(uint8_t *buf, size_t cap, int port_kind, int variant, uint64_t *rng)
{
    size_t n = (size_t)rng_range(rng, 16, 8192);
    if (n > cap)
        n = cap;
    for (size_t k = 0; k < n; k++)
        buf[k] = (uint8_t)rng_next(rng);
    if (variant == 0)
        return n;                                 /* random bytes */
    if (port_kind == 0) {                         /* gossip: a ZMTP 3 greeting, then an oversize frame */
        static const uint8_t greet[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'C', 'U', 'R', 'V', 'E'};
        memcpy(buf, greet, sizeof greet);
        static const uint8_t big[9] = {0x06, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        memcpy(buf + 64, big, sizeof big);
        return n > 73 ? n : 73;
    }
    if (port_kind == 1) {                         /* link: the magic, then a 65535-byte handshake lie */
        memcpy(buf, "TRIBLNK1\xff\xff", 10);
        return n > 10 ? n : 10;
    }
    if (variant == 1) {                           /* HTTP: an endless header */
        size_t l = (size_t)snprintf((char *)buf, cap, "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Soak: ");
        memset(buf + l, 'a', cap - l);
        return cap;
    }
    return (size_t)snprintf((char *)buf, cap,     /* HTTP: a huge body announced, never sent */
                            "POST /v1/products/%s/x/records HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{",
                            "soak");
}

/* Sends one hostile payload to port, reads what comes back for up to 1 s, closes. */
static void hostile_send(int port, const uint8_t *buf, size_t len)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    struct timeval tv = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
        for (size_t off = 0; off < len;) {
            ssize_t w = send(s, buf + off, len - off, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        char sink[4096];
        while (recv(s, sink, sizeof sink, 0) > 0)
            ;
    }
    close(s);
}

/* Waits up to 15 s for node i to answer /v1/status after garbage; a failure when it does not. */
static void still_serving(CURL *h, int i, const char *what)
{
    uint64_t end = bench_now_ns() + 15000000000ull;
    for (;;) {
        resp_t r;
        http_do(h, i, "GET", "/v1/status", NULL, NULL, 0, 5, &r);
        free(r.body.buf);
        if (r.cc == CURLE_OK && r.status == 200)
            return;
        if (bench_now_ns() > end || bench_interrupted) {
            fail("n%d does not answer /v1/status 15 s after %s", i, what);
            return;
        }
        bench_sleep_ms(200);
    }
}

#define FLOOD_CONNS 300

/* FLOOD_CONNS connections to node i's HTTP port from 127.0.0.2 (more than the 256 one address may
 * hold), each a request cut inside its header, held open while the node must still answer this
 * process (127.0.0.1), then closed. */
static void chaos_flood(CURL *h, int i)
{
    static int fds[FLOOD_CONNS];
    int n = 0;
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000002);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons((uint16_t)nodes[i].http_port);
    static const char part[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Soak: ";
    for (int k = 0; k < FLOOD_CONNS; k++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            break;
        struct timeval tv = {1, 0};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (bind(s, (struct sockaddr *)&src, sizeof src) < 0 || connect(s, (struct sockaddr *)&dst, sizeof dst) < 0) {
            close(s);
            continue;
        }
        send(s, part, sizeof part - 1, MSG_NOSIGNAL);
        fds[n++] = s;
    }
    count("fault: %d connections to its HTTP port from 127.0.0.2, each a request cut inside its header", FLOOD_CONNS);
    still_serving(h, i, "a flood of half-sent requests from another address");
    while (n > 0)
        close(fds[--n]);
}

static void chaos_hostile(CURL *h, int i, uint64_t *rng)
{
    static const char *port_name[] = {"gossip", "data-link", "HTTP"};
    int kind = (int)rng_range(rng, 0, 2), variant = (int)rng_range(rng, 0, kind == 2 ? 3 : 1);
    if (kind == 2 && variant == 3) {
        chaos_flood(h, i);
        return;
    }
    int port = kind == 0 ? nodes[i].peer_port : kind == 1 ? nodes[i].link_port : nodes[i].http_port;
    static uint8_t buf[1 << 20];
    size_t len = hostile_payload(buf, kind == 2 && variant == 1 ? sizeof buf : 8192, kind, variant, rng);
    for (int k = 0; k < 5; k++)
        hostile_send(port, buf, len);
    char what[96];
    snprintf(what, sizeof what, "garbage to its %s port (%s)", port_name[kind],
             variant == 0 ? "random bytes" : kind == 2 && variant == 1 ? "1 MiB header" : "oversize length");
    count("fault: %s", what);
    still_serving(h, i, what);
}

typedef struct {
    int node, kind;           /* 0 none, 1 killed (restart due), 2 frozen (SIGCONT due) */
    uint64_t due_ns;
} pending_t;

static void chaos_kill(int i, pending_t *pd, uint64_t *rng)
{
    pthread_mutex_lock(&nodes_mx);
    node_t *n = &nodes[i];
    n->faults++;
    kill(n->proc.pid, SIGKILL);
    int st;
    waitpid(n->proc.pid, &st, 0);
    bench_proc_read(&n->proc, node_line, NULL, 0);
    bench_untrack(n->proc.pid);
    n->proc.pid = 0;
    close(n->proc.fd);
    n->proc.fd = -1;
    pthread_mutex_unlock(&nodes_mx);
    long ms = rng_range(rng, 1000, 5000);
    *pd = (pending_t){i, 1, bench_now_ns() + (uint64_t)ms * 1000000u};
    count("fault: SIGKILL, restart on the same data dir after 1-5 s");
    fprintf(stderr, "soak: chaos: SIGKILL n%d, restart in %ld ms\n", i, ms);
}

static void chaos_freeze(int i, pending_t *pd, uint64_t *rng)
{
    pthread_mutex_lock(&nodes_mx);
    nodes[i].faults++;
    nodes[i].frozen = 1;
    kill(nodes[i].proc.pid, SIGSTOP);
    pthread_mutex_unlock(&nodes_mx);
    long ms = rng_range(rng, 2000, 8000);
    *pd = (pending_t){i, 2, bench_now_ns() + (uint64_t)ms * 1000000u};
    count("fault: SIGSTOP for 2-8 s, then SIGCONT");
    fprintf(stderr, "soak: chaos: SIGSTOP n%d for %ld ms\n", i, ms);
}

/* Ends a fault: restarts a killed node, SIGCONTs a frozen one. */
static void chaos_restore(pending_t *pd)
{
    pthread_mutex_lock(&nodes_mx);
    node_t *n = &nodes[pd->node];
    if (pd->kind == 1) {
        n->restarts++;
        node_spawn(pd->node);
    } else if (pd->kind == 2) {
        kill(n->proc.pid, SIGCONT);
        n->frozen = 0;
    }
    n->faults++;
    pthread_mutex_unlock(&nodes_mx);
    pd->kind = 0;
}

/* A node with no fault on it, chosen at random, or -1. */
static int chaos_victim(const pending_t *pd, uint64_t *rng)
{
    int cand[MAX_NODES], nc = 0;
    for (int i = 0; i < cfg.nodes; i++) {
        int busy = 0;
        for (int k = 0; k < MAX_NODES; k++)
            busy |= pd[k].kind && pd[k].node == i;
        if (!busy)
            cand[nc++] = i;
    }
    return nc ? cand[rng_range(rng, 0, nc - 1)] : -1;
}

/* ------------------------------------------------------------------ key rotation (chartered) */

#define ROTATE_OVERLAP_S 120        /* the old key's tokens verify this long after the switch */
#define ROTATE_DONE_S 60          /* a begun rotation must have written the new admin token by then */

static struct {
    int node;                     /* -1: none under way */
    char old[4200];               /* the admin token before it */
    uint64_t due_ns;
    int reader;                   /* the admin token is the new one: the reader's token is due */
} rot = {-1, "", 0, 0};

static int reader_token_issue(CURL *h, int i);

/* DATA/admin.token of node i as it is on disk now, "" when unreadable. */
static void token_file(int i, char out[4200])
{
    char path[420];
    snprintf(path, sizeof path, "%.400s/admin.token", nodes[i].data);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, 4199, f) : 0;
    if (f)
        fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
}

/* A rotation under way is done once the node's admin token file changed: the soak's clients take
 * the new token (the old one verifies until the overlap ends). A failure when it takes too long. */
static void rotation_check(void)
{
    if (rot.node < 0)
        return;
    char now[4200];
    if (!rot.reader) {
        token_file(rot.node, now);
        if (*now && strcmp(now, rot.old)) {
            pthread_mutex_lock(&nodes_mx);
            memcpy(nodes[rot.node].token, now, sizeof now);
            pthread_mutex_unlock(&nodes_mx);
            count("key rotation done (the node wrote its new admin token)");
            fprintf(stderr, "soak: chaos: n%d's key rotation done\n", rot.node);
            rot.reader = 1;
        }
    }
    if (rot.reader) {   /* the reader's token of the old key verifies until the overlap ends */
        static CURL *h;
        if (!h && !(h = curl_easy_init()))
            bench_die("out of memory");
        if (reader_token_issue(h, rot.node) == 0) {
            count("reader token issued again after a key rotation");
            rot.node = -1, rot.reader = 0;
            return;
        }
    }
    if (bench_now_ns() > rot.due_ns) {
        fail("n%d: %s %d s after its key rotation began", rot.node,
             rot.reader ? "no new reader token" : "no new admin token", ROTATE_DONE_S);
        rot.node = -1, rot.reader = 0;
    }
}

static void chaos_kill(int i, pending_t *pd, uint64_t *rng);

/* Rotates node i's key while it serves: the node makes its next key, the roots certify it, and the
 * certificate goes either to the node (it switches and answers) or, one time in three, to another
 * node's federation log while node i is SIGKILLed 0-500 ms later (a pending kill in *pd): the
 * switch then finishes by itself, before the kill or at the next start. */
static void chaos_rotate(CURL *h, int i, pending_t *pd, uint64_t *rng)
{
    char tok[4200], body[64], hex_serial[24] = "";
    uint8_t pk[32];
    resp_t r;
    token_of(i, tok);
    snprintf(body, sizeof body, "{\"overlap_s\":%d}", ROTATE_OVERLAP_S);
    http_do(h, i, "POST", "/v1/node/key/rotate", tok, body, strlen(body), 20, &r);
    json_t *j = r.status == 202 ? json_loadb(r.body.buf, r.body.len, 0, NULL) : NULL;
    const char *nid = json_string_value(json_object_get(j, "new_node_id"));
    const char *ser = json_string_value(json_object_get(j, "prev_serial"));
    if (ser)
        snprintf(hex_serial, sizeof hex_serial, "%s", ser);
    int ok = nid && strlen(nid) == 64 && sodium_hex2bin(pk, 32, nid, 64, NULL, NULL, NULL) == 0 && *hex_serial;
    json_decref(j);
    if (!ok) {
        char kind[48];
        if (r.cc != CURLE_OK || r.status == 503)
            count("fault: key rotation not begun (%s)", r.cc != CURLE_OK ? curl_easy_strerror(r.cc) : "503");
        else
            fail("n%d: key rotation step 1 answered HTTP %ld %s", i, r.status, error_kind(&r.body, kind, sizeof kind));
        free(r.body.buf);
        return;
    }
    free(r.body.buf);
    cert_t c;
    bench_charter_certify(&charter, nodes[i].dom, pk, strtoull(hex_serial, NULL, 16), &c);
    rot.node = i;
    memcpy(rot.old, tok, sizeof tok);
    rot.due_ns = bench_now_ns() + (uint64_t)ROTATE_DONE_S * 1000000000ull;
    int via_log = rng_range(rng, 0, 2) == 0;
    if (!via_log) {
        size_t cap = sodium_base64_ENCODED_LEN(c.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap), *req = malloc(cap + 64);
        if (!b64 || !req)
            bench_die("out of memory");
        sodium_bin2base64(b64, cap, c.bytes, c.len, sodium_base64_VARIANT_ORIGINAL);
        snprintf(req, cap + 64, "{\"cert\":\"%s\",\"overlap_s\":%d}", b64, ROTATE_OVERLAP_S);
        http_do(h, i, "POST", "/v1/node/key/rotate", tok, req, strlen(req), 30, &r);
        char kind[48];
        if (r.status == 200)
            count("fault: key rotation, certificate handed to the node (200 rotated)");
        else if (r.cc != CURLE_OK || r.status == 503)
            count("fault: key rotation, certificate handed to the node: %s (completes by itself)",
                  r.cc != CURLE_OK ? curl_easy_strerror(r.cc) : "503");
        else
            fail("n%d: key rotation step 3 answered HTTP %ld %s", i, r.status, error_kind(&r.body, kind, sizeof kind));
        free(r.body.buf);
        free(b64);
        free(req);
        fprintf(stderr, "soak: chaos: n%d rotates its key\n", i);
    } else {
        int other = (i + 1 + (int)rng_range(rng, 0, cfg.nodes - 2)) % cfg.nodes;
        char otok[4200], kind[48];
        json_t *cj = cert_to_json(&c);
        char *text = json_dumps(cj, JSON_COMPACT);
        json_decref(cj);
        if (!text)
            bench_die("out of memory");
        http_do(h, other, "POST", "/v1/federation/objects", token_of(other, otok), text, strlen(text), 20, &r);
        free(text);
        if (r.status == 200 || r.status == 201)
            count("fault: key rotation, certificate submitted to another node, rotating node SIGKILLed 0-500 ms after");
        else if (r.cc != CURLE_OK || r.status == 503)
            count("fault: key rotation, certificate submission to another node: %s",
                  r.cc != CURLE_OK ? curl_easy_strerror(r.cc) : "503");
        else
            fail("n%d: submitting n%d's next certificate answered HTTP %ld %s", other, i, r.status,
                 error_kind(&r.body, kind, sizeof kind));
        free(r.body.buf);
        bench_sleep_ms(rng_range(rng, 0, 500));
        fprintf(stderr, "soak: chaos: n%d rotates its key (certificate through n%d), then: ", i, other);
        chaos_kill(i, pd, rng);
    }
    cert_free(&c);
}

/* The chaos thread: every SOAK_CHAOS_MS (+-50 %) one fault: SIGKILL and restart (2 in 5), SIGSTOP
 * and SIGCONT (3 in 10) or garbage to a port (3 in 10); never more than SOAK_MAX_DOWN nodes down. */
static void *chaos_main(void *arg)
{
    (void)arg;
    uint64_t rng = rng_for(5, 0);
    pending_t pd[MAX_NODES] = {{0}};
    CURL *h = curl_easy_init();
    uint64_t next = bench_now_ns() + (uint64_t)cfg.chaos_ms * 1000000u;
    while (!chaos_stop) {
        uint64_t now = bench_now_ns();
        int down = 0;
        for (int k = 0; k < MAX_NODES; k++)
            if (pd[k].kind && now >= pd[k].due_ns)
                chaos_restore(&pd[k]);
            else
                down += pd[k].kind != 0;
        if (now >= next && !load_stop) {
            int roll = (int)rng_range(&rng, 0, 9), i = chaos_victim(pd, &rng), slot = 0;
            while (slot < MAX_NODES && pd[slot].kind)
                slot++;
            if (i >= 0 && cfg.chartered && roll >= 8 && rot.node < 0 && down < cfg.max_down)
                chaos_rotate(h, i, &pd[slot], &rng);
            else if (i >= 0 && roll < 4 && down < cfg.max_down)
                chaos_kill(i, &pd[slot], &rng);
            else if (i >= 0 && roll < 7 && down < cfg.max_down)
                chaos_freeze(i, &pd[slot], &rng);
            else if (i >= 0)
                chaos_hostile(h, i, &rng);
            next = bench_now_ns() + (uint64_t)rng_range(&rng, cfg.chaos_ms / 2, cfg.chaos_ms * 3 / 2) * 1000000u;
        }
        rotation_check();
        bench_sleep_ms(50);
    }
    for (int k = 0; k < MAX_NODES; k++)
        if (pd[k].kind)
            chaos_restore(&pd[k]);
    while (rot.node >= 0 && !bench_interrupted) {   /* a rotation under way finishes before convergence */
        rotation_check();
        bench_sleep_ms(50);
    }
    curl_easy_cleanup(h);
    chaos_restored = 1;
    /* The nodes this thread restarted die with it (PR_SET_PDEATHSIG names the thread that forked):
     * it ends only once they are stopped. */
    while (!monitor_stop)
        bench_sleep_ms(50);
    return NULL;
}

/* ------------------------------------------------------------------ monitor */

/* Every second: each node's RssAnon and VmRSS, and whether a node exited on its own (a failure,
 * with its status and log tail; it is restarted so the soak goes on). */
static void monitor_tick(void)
{
    pthread_mutex_lock(&nodes_mx);
    for (int i = 0; i < cfg.nodes; i++) {
        node_t *n = &nodes[i];
        if (n->proc.pid <= 0)
            continue;
        int st;
        if (waitpid(n->proc.pid, &st, WNOHANG) == n->proc.pid) {
            bench_proc_read(&n->proc, node_line, NULL, 0);
            pthread_mutex_unlock(&nodes_mx);
            fail("n%d (pid %d) exited on its own: %s %d", i, (int)n->proc.pid,
                 WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            pthread_mutex_lock(&report_mx);
            node_print_tail(n);
            pthread_mutex_unlock(&report_mx);
            pthread_mutex_lock(&nodes_mx);
            bench_untrack(n->proc.pid);
            close(n->proc.fd);
            n->proc.pid = 0, n->proc.fd = -1;
            n->restarts++;
            n->faults++;
            node_spawn(i);
            continue;
        }
        long anon = bench_proc_kb(n->proc.pid, "status", "RssAnon"), rss = bench_rss_kb(n->proc.pid);
        if (anon > n->anon_max)
            n->anon_max = anon;
        if (rss > n->rss_max)
            n->rss_max = rss;
        if (anon > 0)
            n->anon_last = anon, n->rss_last = rss;
        if (anon > 0 && n->anon_half < 0 && load_half_ns && bench_now_ns() >= load_half_ns)
            n->anon_half = anon, n->restarts_half = n->restarts;
    }
    pthread_mutex_unlock(&nodes_mx);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    while (!monitor_stop) {
        monitor_tick();
        for (int k = 0; k < 10 && !monitor_stop; k++)
            bench_sleep_ms(100);
    }
    return NULL;
}

/* ------------------------------------------------------------------ setup */

static void nodes_init(void)
{
    for (int i = 0; i < cfg.nodes; i++) {
        node_t *n = &nodes[i];
        n->idx = i;
        snprintf(n->dom, sizeof n->dom, "d%d", i);
        snprintf(n->data, sizeof n->data, "%s/%s", tmp, n->dom);
        n->peer_port = base_port + i;
        n->http_port = base_port + 30 + i;
        n->link_port = base_port + 60 + i;
        n->proc.fd = -1;
        n->anon_half = -1;
    }
}

/* How many members node i counts alive (its /v1/status), 0 when it does not answer. */
static json_int_t alive_seen(CURL *h, int i)
{
    resp_t r;
    http_do(h, i, "GET", "/v1/status", NULL, NULL, 0, 5, &r);
    json_t *j = r.status == 200 ? json_loadb(r.body.buf, r.body.len, 0, NULL) : NULL;
    json_int_t alive = json_integer_value(json_object_get(json_object_get(j, "members"), "alive"));
    json_decref(j);
    free(r.body.buf);
    return alive;
}

/* Waits until every node lists every other alive (dies after 60 s). */
static void wait_federation(CURL *h, int secs, const char *when)
{
    uint64_t end = bench_now_ns() + (uint64_t)secs * 1000000000u;
    for (int i = 0; i < cfg.nodes;) {
        json_int_t alive = alive_seen(h, i);
        if (alive >= cfg.nodes) {
            i++;
            continue;
        }
        bench_check_interrupt();
        if (bench_now_ns() > end)
            bench_die("n%d sees %lld of %d members alive %d s %s", i, (long long)alive, cfg.nodes, secs, when);
        bench_sleep_ms(100);
    }
}

static void start_federation(void)
{
    if (cfg.chartered) {
        snprintf(charter_path, sizeof charter_path, "%s/charter.json", tmp);
        bench_charter_make(&charter, tmp);
        for (int i = 0; i < cfg.nodes; i++) {
            snprintf(nodes[i].cert, sizeof nodes[i].cert, "%s/%s.cert", tmp, nodes[i].dom);
            bench_charter_node(&charter, nodes[i].data, nodes[i].dom, nodes[i].cert, nodes[i].id0);
        }
    }
    pthread_mutex_lock(&nodes_mx);
    node_spawn(0);
    pthread_mutex_unlock(&nodes_mx);
    CURL *h = curl_easy_init();
    uint64_t end = bench_now_ns() + 30000000000ull;
    resp_t r;
    while (http_do(h, 0, "GET", "/v1/status", NULL, NULL, 0, 2, &r), free(r.body.buf), r.status != 200) {
        bench_check_interrupt();
        if (bench_now_ns() > end)
            bench_die("n0 did not serve HTTP within 30 s (ports %d..)", base_port);
        bench_sleep_ms(50);
    }
    pthread_mutex_lock(&nodes_mx);
    for (int i = 1; i < cfg.nodes; i++)
        node_spawn(i);
    pthread_mutex_unlock(&nodes_mx);
    wait_federation(h, 60, "after start");
    for (int i = 0; i < cfg.nodes; i++) {
        const char *t = bench_token(nodes[i].data);
        if (!*t)
            bench_die("n%d wrote no admin token in %s", i, nodes[i].data);
        snprintf(nodes[i].token, sizeof nodes[i].token, "%s", t);
    }
    curl_easy_cleanup(h);
}

/* Publishes every node's record products (retrying while a node is not synced) and waits until
 * every node holds them all. */
static void setup_record_products(void)
{
    nrecs = cfg.nodes * cfg.recprods;
    recs = calloc((size_t)nrecs, sizeof *recs);
    if (!recs)
        bench_die("out of memory");
    CURL *h = curl_easy_init();
    for (int k = 0; k < nrecs; k++) {
        recprod_t *rp = &recs[k];
        rp->node = k / cfg.recprods;
        rp->next_n = 1;
        pthread_mutex_init(&rp->mx, NULL);
        snprintf(rp->name, sizeof rp->name, "rec%d", k % cfg.recprods);
        char body[2048], path[96];
        manifest(body, sizeof body, rp->node, rp->name, 0, "records", cfg.chartered ? "confidential" : "internal");
        snprintf(path, sizeof path, "/v1/products/%s/%s", nodes[rp->node].dom, rp->name);
        uint64_t end = bench_now_ns() + 60000000000ull;
        for (;;) {
            resp_t r;
            char tok[4200];
            http_do(h, rp->node, "PUT", path, token_of(rp->node, tok), body, strlen(body), 20, &r);
            free(r.body.buf);
            if (r.status == 200 || r.status == 201)
                break;
            bench_check_interrupt();
            if (bench_now_ns() > end)
                bench_die("publishing %s answered HTTP %ld for 60 s", path, r.status);
            bench_sleep_ms(200);
        }
    }
    for (int i = 0; i < cfg.nodes; i++)
        for (int k = 0; k < nrecs; k++) {
            char path[96];
            snprintf(path, sizeof path, "/v1/products/%s/%s", nodes[recs[k].node].dom, recs[k].name);
            uint64_t end = bench_now_ns() + 60000000000ull;
            resp_t r;
            while (http_do(h, i, "GET", path, NULL, NULL, 0, 5, &r), free(r.body.buf), r.status != 200) {
                bench_check_interrupt();
                if (bench_now_ns() > end)
                    bench_die("n%d does not hold %s after 60 s", i, path);
                bench_sleep_ms(100);
            }
        }
    curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------ access (chartered) */

/* Issues node i's reader token ("reader@DOMAIN", kind read, a day) with i's admin token now: 0 done. */
static int reader_token_issue(CURL *h, int i)
{
    char tok[4200], body[128];
    snprintf(body, sizeof body, "{\"sub\":\"reader@%s\",\"kind\":\"read\",\"ttl_s\":86400}", nodes[i].dom);
    resp_t r;
    http_do(h, i, "POST", "/v1/tokens", token_of(i, tok), body, strlen(body), 10, &r);
    json_t *j = r.status == 201 ? json_loadb(r.body.buf, r.body.len, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "token"));
    int ok = t && strlen(t) < sizeof nodes[i].reader;
    if (ok) {
        pthread_mutex_lock(&nodes_mx);
        snprintf(nodes[i].reader, sizeof nodes[i].reader, "%s", t);
        pthread_mutex_unlock(&nodes_mx);
    }
    json_decref(j);
    free(r.body.buf);
    return ok ? 0 : -1;
}

/* POSTs body to node i's path with tok until it answers want (60 s at most); the answer's "id". */
static void post_until(CURL *h, int i, const char *path, const char *tok, const char *body, long want, char id[64])
{
    uint64_t end = bench_now_ns() + 60000000000ull;
    for (;;) {
        resp_t r;
        http_do(h, i, "POST", path, tok, body, strlen(body), 10, &r);
        json_t *j = r.status == want ? json_loadb(r.body.buf, r.body.len, 0, NULL) : NULL;
        const char *v = json_string_value(json_object_get(j, "id"));
        if (id && v)
            snprintf(id, 64, "%s", v);
        json_decref(j);
        char kind[48];
        error_kind(&r.body, kind, sizeof kind);
        free(r.body.buf);
        if (r.status == want)
            return;
        bench_check_interrupt();
        if (bench_now_ns() > end)
            bench_die("n%d: POST %s answered HTTP %ld %s for 60 s", i, path, r.status, kind);
        bench_sleep_ms(200);
    }
}

/* Every node's reader asks, on its home node, for each other domain's record products; each
 * owner grants every request (on its own node, once the request reached it by gossip). */
static void setup_grants(void)
{
    CURL *h = curl_easy_init();
    for (int i = 0; i < cfg.nodes; i++)
        if (reader_token_issue(h, i) != 0)
            bench_die("n%d: no reader token", i);
    int made = 0;
    for (int i = 0; i < cfg.nodes; i++)
        for (int k = 0; k < nrecs; k++) {
            recprod_t *rp = &recs[k];
            if (rp->node == i)
                continue;
            char body[256], id[64] = "", path[128], tok[4200];
            snprintf(body, sizeof body, "{\"product\":\"%s/%s\",\"purpose\":\"soak reads\",\"days\":30}",
                     nodes[rp->node].dom, rp->name);
            post_until(h, i, "/v1/access/requests", read_token(i, rp->node, tok), body, 201, id);
            snprintf(path, sizeof path, "/v1/access/requests/%s/grant", id);
            post_until(h, rp->node, path, token_of(rp->node, tok), "{\"days\":30}", 200, NULL);
            made++;
        }
    curl_easy_cleanup(h);
    fprintf(stderr, "soak: %d access requests made and granted\n", made);
}

/* ------------------------------------------------------------------ convergence */

/* The version (1.0.K: K) of every product of domain d that node i lists, into ver[] indexed like
 * pubs (-1: absent); -1 when the listing could not be read. */
static int list_versions(CURL *h, int i, int d, int *ver)
{
    for (int k = 0; k < npubs; k++)
        if (pubs[k].node == d)
            ver[k] = -1;
    for (int offset = 0;; offset += 1000) {
        char path[128];
        snprintf(path, sizeof path, "/v1/products?domain=%s&limit=1000&offset=%d", nodes[d].dom, offset);
        resp_t r;
        http_do(h, i, "GET", path, NULL, NULL, 0, 30, &r);
        json_t *j = r.status == 200 ? json_loadb(r.body.buf, r.body.len, 0, NULL) : NULL;
        free(r.body.buf);
        json_t *arr = json_object_get(j, "products");
        if (!json_is_array(arr)) {
            json_decref(j);
            return -1;
        }
        size_t x;
        json_t *p;
        json_array_foreach(arr, x, p)
        {
            const char *name = json_string_value(json_object_get(p, "name"));
            const char *v = json_string_value(json_object_get(p, "version"));
            int k = name && v ? pub_find(d, name) : -1;
            if (k >= 0)
                ver[k] = !strncmp(v, "1.0.", 4) ? atoi(v + 4) : -2;
        }
        int more = json_array_size(arr) == 1000;
        json_decref(j);
        if (!more)
            return 0;
    }
}

/* Compares every node's catalog with the owners' and the ledger. Returns the mismatches; the first
 * one described in why. lost: set when an owner lacks an acknowledged version. */
static int catalog_check(CURL *h, char *why, size_t cap, int *lost)
{
    int bad = 0;
    int *own = malloc(sizeof(int) * (size_t)(npubs + 1)), *ver = malloc(sizeof(int) * (size_t)(npubs + 1));
    if (!own || !ver)
        bench_die("out of memory");
    for (int d = 0; d < cfg.publishers; d++) {
        if (list_versions(h, d, d, own) < 0) {
            snprintf(why, cap, "n%d: its own listing failed", d);
            bad++;
            continue;
        }
        for (int k = 0; k < npubs; k++)
            if (pubs[k].node == d && (own[k] < pubs[k].acked || own[k] > pubs[k].attempt ||
                                      (own[k] >= 0 && pubs[k].acked < 0 && !pubs[k].unknown))) {
                if (!bad++)
                    snprintf(why, cap, "owner n%d lists %s at 1.0.%d: acknowledged 1.0.%d, tried up to 1.0.%d", d,
                             pubs[k].name, own[k], pubs[k].acked, pubs[k].attempt);
                if (own[k] < pubs[k].acked)
                    *lost = 1;
            }
        for (int i = 0; i < cfg.nodes; i++) {
            if (i == d)
                continue;
            if (list_versions(h, i, d, ver) < 0) {
                if (!bad++)
                    snprintf(why, cap, "n%d: listing of %s failed", i, nodes[d].dom);
                continue;
            }
            for (int k = 0; k < npubs; k++)
                if (pubs[k].node == d && ver[k] != own[k] && !bad++)
                    snprintf(why, cap, "n%d lists %s/%s at 1.0.%d, its owner at 1.0.%d", i, nodes[d].dom,
                             pubs[k].name, ver[k], own[k]);
        }
    }
    free(own);
    free(ver);
    return bad;
}

/* Every record product read whole from its owner and through another node: both clean, equal,
 * every acknowledged record there. Returns the products not yet so. */
static int records_check(CURL *h, char *why, size_t cap, uint64_t round)
{
    int bad = 0;
    for (int k = 0; k < nrecs; k++) {
        recprod_t *rp = &recs[k];
        int relay = (rp->node + 1 + (int)((round + (uint64_t)k) % (uint64_t)(cfg.nodes - 1))) % cfg.nodes;
        pair_body_t a = {0}, b = {0};
        int ra = read_check(h, rp, rp->node, 1, 0, &a), rb = ra == 0 ? read_check(h, rp, relay, 1, 0, &b) : 1;
        if (ra || rb) {
            if (!bad++)
                snprintf(why, cap, "%s/%s not read whole from %s", nodes[rp->node].dom, rp->name,
                         ra ? "its owner" : "a relay");
        } else if (a.len != b.len || memcmp(a.buf, b.buf, a.len)) {
            if (!bad++)
                snprintf(why, cap, "%s/%s: n%d relays %zu bytes, its owner %zu", nodes[rp->node].dom, rp->name, relay,
                         b.len, a.len);
        }
        free(a.buf);
        free(b.buf);
    }
    return bad;
}

/* Every node up and seeing all alive, the catalogs equal, the records whole: waits up to
 * SOAK_CONVERGE_S; returns the seconds it took, or -1. */
static char converge_why[512];

static double converge(void)
{
    CURL *h = curl_easy_init();
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)cfg.converge_s * 1000000000ull;
    char *why = converge_why;
    double took = -1;
    for (uint64_t round = 0;; round++) {
        int lost = 0, bad = 0;
        for (int i = 0; i < cfg.nodes && !bad; i++) {
            json_int_t alive = alive_seen(h, i);
            if (alive != cfg.nodes)
                bad = 1, snprintf(why, sizeof converge_why, "n%d sees %lld of %d members alive", i, (long long)alive, cfg.nodes);
        }
        if (!bad)
            bad = catalog_check(h, why, sizeof converge_why, &lost);
        if (!bad)
            bad = records_check(h, why, sizeof converge_why, round);
        if (!bad) {
            took = (double)(bench_now_ns() - t0) / 1e9;
            break;
        }
        if (bench_now_ns() > end || bench_interrupted) {
            fail("no convergence %d s after the load stopped%s: %s", cfg.converge_s,
                 lost ? " (an owner lost an acknowledged publish)" : "", why);
            break;
        }
        bench_sleep_ms(500);
    }
    curl_easy_cleanup(h);
    return took;
}

/* ------------------------------------------------------------------ report */

/* Sum of the samples of a metric (name with or without labels) in node i's /metrics, -1 when unread. */
static double metric_sum(CURL *h, int i, const char *name)
{
    resp_t r;
    http_do(h, i, "GET", "/metrics", NULL, NULL, 0, 5, &r);
    if (r.status != 200) {
        free(r.body.buf);
        return -1;
    }
    double sum = 0;
    size_t nl = strlen(name);
    for (char *p = r.body.buf; p && *p;) {
        char *e = strchr(p, '\n');
        if (!strncmp(p, name, nl) && (p[nl] == ' ' || p[nl] == '{')) {
            char *v = e ? e : p + strlen(p);
            while (v > p && v[-1] != ' ')
                v--;
            sum += strtod(v, NULL);
        }
        p = e ? e + 1 : NULL;
    }
    free(r.body.buf);
    return sum;
}

static void report_counts(double secs)
{
    printf("\nOperations and outcomes over the load (%.0f s; rate = count / load seconds):\n", secs);
    pthread_mutex_lock(&report_mx);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nkinds; i++) {
            int fault = !strncmp(kinds[i].name, "fault:", 6);
            if (fault == pass)
                printf("  %-78s %9llu  %8.1f/s\n", kinds[i].name, (unsigned long long)kinds[i].n,
                       (double)kinds[i].n / secs);
        }
    pthread_mutex_unlock(&report_mx);
}

static void report_nodes(void)
{
    CURL *h = curl_easy_init();
    static const char *metrics[] = {"trib_link_refused_total", "trib_gossip_dropped_total", "trib_http_busy_total"};
    printf("\nNodes (memory sampled every second; /metrics since each node's last start):\n");
    printf("  node  restarts  RssAnon max / at end (MiB)  VmRSS max / at end (MiB)  RssAnon half-time -> end  "
           "link refused  gossip dropped  http busy\n");
    long worst = 0;
    for (int i = 0; i < cfg.nodes; i++) {
        double m[3];
        for (int k = 0; k < 3; k++)
            m[k] = metric_sum(h, i, metrics[k]);
        pthread_mutex_lock(&nodes_mx);
        node_t *n = &nodes[i];
        char half[40] = "  (restarted since)";
        if (n->anon_half > 0 && n->restarts_half == n->restarts)
            snprintf(half, sizeof half, "%7.1f -> %-7.1f (%+.1f)", n->anon_half / 1024.0, n->anon_last / 1024.0,
                     (n->anon_last - n->anon_half) / 1024.0);
        printf("  n%-4d %8d  %11.1f / %-11.1f    %11.1f / %-11.1f  %-24s  %12.0f  %14.0f  %9.0f\n", i, n->restarts,
               n->anon_max / 1024.0, n->anon_last / 1024.0, n->rss_max / 1024.0, n->rss_last / 1024.0, half, m[0], m[1],
               m[2]);
        if (n->anon_max > worst)
            worst = n->anon_max;
        pthread_mutex_unlock(&nodes_mx);
    }
    if (cfg.chartered) {
        static const char *trust[] = {"trib_trust_refused_total", "trib_fedlog_refused_total",
                                      "trib_peer_key_refused_total", "trib_swim_claims_refused_total",
                                      "trib_access_refused_total"};
        printf("\nTrust refusals (chartered; /metrics since each node's last start; only honest nodes take part, "
               "so each is a node's own peer refused):\n  node  %s  %s  %s  %s  %s\n", trust[0], trust[1], trust[2],
               trust[3], trust[4]);
        int refusals = 0;
        for (int i = 0; i < cfg.nodes; i++) {
            printf("  n%-4d", i);
            for (int k = 0; k < 5; k++) {
                double v = metric_sum(h, i, trust[k]);
                printf("  %*.0f", (int)strlen(trust[k]), v);
                if (v > 0 && refusals++ < 5)
                    fail("n%d counted %.0f in %s, though every node is honest and certified", i, v, trust[k]);
            }
            printf("  (rotated-out keys' claims refused quietly: %.0f)\n",
                   metric_sum(h, i, "trib_peer_keys_total{event=\"refused_retired\"}"));
        }
    }
    curl_easy_cleanup(h);
    if (worst > (long)cfg.rss_mib * 1024)
        fail("a node's RssAnon reached %.1f MiB, over the bound of %d MiB (SOAK_RSS_MIB)", worst / 1024.0,
             cfg.rss_mib);
    printf("%s: every node's RssAnon stayed within %d MiB (max %.1f MiB)\n",
           worst <= (long)cfg.rss_mib * 1024 ? "PASS" : "FAIL", cfg.rss_mib, worst / 1024.0);
}

static const char *loadavg(void)
{
    static char buf[64];
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = '\0';
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ main */

typedef void *(*thread_fn)(void *);
static pthread_t load_threads[3 * MAX_NODES + 20];
static int nload;

static void load_start(thread_fn fn, intptr_t arg)
{
    if (pthread_create(&load_threads[nload++], NULL, fn, (void *)arg) != 0)
        bench_die("pthread_create: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: soak TRIB_BINARY   (env SOAK_SECONDS, SOAK_NODES, SOAK_SEED, ...: bench/soak.c)\n");
        return 2;
    }
    trib_bin = argv[1];
    read_config();
    tmp = bench_init("tribsoak");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((base_port = bench_reserve_ports(&lock_fd)) < 0)
        bench_die("no free block of 100 loopback ports in 20000..31999");
    printf("== Soak: %d nodes%s, %d s of load with churn and faults, SOAK_SEED=%llu ==\n", cfg.nodes,
           cfg.chartered ? " (chartered, key rotations among the faults)" : "", cfg.seconds, (unsigned long long)cfg.seed);
    printf("load average at start: %s\n", loadavg());
    nodes_init();
    pthread_t drain, monitor, chaos;
    pthread_create(&drain, NULL, drain_main, NULL);
    start_federation();
    pthread_create(&monitor, NULL, monitor_main, NULL);
    setup_record_products();
    if (cfg.chartered)
        setup_grants();
    fprintf(stderr, "soak: federation of %d up on ports %d.., load for %d s\n", cfg.nodes, base_port, cfg.seconds);

    uint64_t t0 = bench_now_ns();
    load_half_ns = t0 + (uint64_t)cfg.seconds * 500000000ull;
    for (int i = 0; i < cfg.publishers; i++)
        load_start(publisher_main, i);
    for (int i = 0; i < cfg.nodes; i++)
        load_start(appender_main, i);
    for (int i = 0; i < cfg.readers; i++)
        load_start(reader_main, i);
    for (int i = 0; i < cfg.followers; i++)
        load_start(follower_main, i);
    load_start(searcher_main, 0);
    pthread_create(&chaos, NULL, chaos_main, NULL);
    while (bench_now_ns() - t0 < (uint64_t)cfg.seconds * 1000000000ull && !bench_interrupted)
        bench_sleep_ms(200);
    load_stop = 1;
    for (int k = 0; k < nload; k++)
        pthread_join(load_threads[k], NULL);
    double load_s = (double)(bench_now_ns() - t0) / 1e9;
    chaos_stop = 1;
    while (!chaos_restored && !bench_interrupted)
        bench_sleep_ms(50);
    bench_check_interrupt();
    fprintf(stderr, "soak: load stopped after %.0f s; every node up; waiting for convergence\n", load_s);

    converging = 1;
    double took = converge();
    printf("load average at end: %s\n", loadavg());
    report_counts(load_s);
    printf("\nPublished products: %d (%d publishing nodes); record products: %d\n", npubs, cfg.publishers, nrecs);
    monitor_tick();
    report_nodes();

    if (took >= 0)
        printf("PASS: converged %.1f s after the load stopped (every node up and seeing all alive, catalogs equal to "
               "their owners' and holding every acknowledged version, every acknowledged record read whole from its "
               "owner and through a relay)\n", took);
    else
        printf("FAIL: no convergence within %d s: %s\n", cfg.converge_s, converge_why);
    pthread_mutex_lock(&report_mx);
    printf("%s: %d invariant violation(s)%s\n", failures ? "FAIL" : "PASS", failures,
           failures > FAIL_PRINT ? " (the first ones printed above)" : "");
    pthread_mutex_unlock(&report_mx);
    pthread_mutex_lock(&nodes_mx);     /* the monitor must not take these stops for crashes */
    for (int i = 0; i < cfg.nodes; i++)
        bench_stop(&nodes[i].proc, SIGTERM, 5000);
    pthread_mutex_unlock(&nodes_mx);
    monitor_stop = 1;
    pthread_join(monitor, NULL);
    pthread_join(chaos, NULL);
    pthread_join(drain, NULL);
    curl_global_cleanup();
    return failures ? 1 : 0;
}
