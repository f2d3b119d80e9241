/* bench/linkmem.c - does an owner that served many data links give the memory back? Two real
 * `trib agent`s on loopback (A owns the product, B relays); LINKMEM_READERS (60) concurrent routed
 * reads through B of a product of LINKMEM_MB (20) MB in ~1 KiB records, so that A serves one link
 * per reader, each building full 1 MiB batches (LINK_BATCH_BYTES) on its own thread.
 *
 * Usage: linkmem TRIB_BINARY     (env LINKMEM_READERS, LINKMEM_MB, LINKMEM_ROUNDS (2), LINKMEM_DEBUG=1
 *        echoes the agents' logs, LINKMEM_PAUSE=S keeps them S seconds at the end to be looked at)
 *
 * Owns: the product on the two agents (bench/pair.h), the reads (curl multi, one thread, bodies
 * counted not kept), and the report: RssAnon and VmRSS of A and B from /proc/PID/status at idle
 * before the first read, the most seen during the reads (sampled every 20 ms), after the reads
 * once their links are idle (3 s; the relay's pool keeps 8 and closes the rest at once, so A's
 * threads for those end), and after every link has closed (A's trib_link_open is 0: the owner
 * closes an idle link after 30 s). Each round repeats the reads on the same agents (memory that is
 * held but reused does not grow from round to round). Target (issue 9 item 1, RSS = RssAnon): A's
 * RssAnon once its links closed, and B's 3 s after its reads ended, within 16 MiB of their idle
 * figures, printed PASS/MISS; never asserted.
 * Must not: leave a process or a temp dir behind (atexit + signals). */
#include <curl/curl.h>
#include "bench/bench.h"
#include "bench/pair.h"

#define MAX_READERS 200
#define RECORD 1000          /* bytes per record */
#define SAMPLE_MS 20
#define TARGET_KIB (16 * 1024)

static const char *trib_bin, *tmp;
static int base_port, lock_fd, readers = 60, rounds = 2;
static size_t mb = 20;

/* ------------------------------------------------------------------ agents */

static size_t count_cb(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p;
    *(size_t *)ud += sz * nm;
    return sz * nm;
}

/* A metric of node's /metrics (the first line starting with name and a space), or -1. */
static double metric(int node, const char *name)
{
    CURL *h = curl_easy_init();
    char url[128];
    pair_body_t b = {.keep = 1};
    double v = -1;
    if (pair_http(h, "GET", pair_url(url, sizeof url, node, "/metrics"), NULL, 0, &b) == 200 && b.buf) {
        size_t nl = strlen(name);
        for (char *p = b.buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (!strncmp(p, name, nl) && p[nl] == ' ') {
                v = strtod(p + nl + 1, NULL);
                break;
            }
    }
    free(b.buf);
    curl_easy_cleanup(h);
    return v;
}

static void start_agents(void)
{
    pair_start(trib_bin, tmp, base_port, "LINKMEM_DEBUG");
    CURL *h = curl_easy_init();
    char url[128];
    char m[2048];
    snprintf(m, sizeof m,
             "{\"name\":\"big\",\"domain\":\"owner\",\"version\":\"1.0.0\",\"status\":\"active\","
             "\"title\":\"linkmem\",\"description\":\"link memory benchmark product\","
             "\"owners\":{\"business\":\"bench@example.com\",\"technical\":\"bench@example.com\"},"
             "\"schema\":" BENCH_SCHEMA "}");
    long st = pair_http(h, "PUT", pair_url(url, sizeof url, 0, "/v1/products/owner/big"), m, strlen(m), NULL);
    if (st != 201 && st != 200)
        bench_die("publishing owner/big answered HTTP %ld", st);
    /* the records, in batches of 5,000 (untimed) */
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    size_t want = mb * 1000000 / (RECORD + 1), per = 5000;
    for (size_t have = 0; have < want;) {
        bench_check_interrupt();
        size_t n = want - have < per ? want - have : per;
        char *text = bench_batch(RECORD, (unsigned long)have + 1, n);
        if (!text)
            bench_die("out of memory");
        st = pair_http(h, "POST", pair_url(url, sizeof url, 0, "/v1/products/owner/big/records"), text,
                       n * (RECORD + 1), NULL);
        free(text);
        if (st != 201)
            bench_die("appending records: HTTP %ld", st);
        have += n;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    pair_wait_relay_knows(h, "/v1/products/owner/big");   /* before B is asked to route reads of it */
    curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------ memory */

typedef struct {
    long anon[2], rss[2];    /* KiB, A and B */
} mem_t;

static mem_t mem_now(void)
{
    mem_t m;
    for (int j = 0; j < 2; j++) {
        m.anon[j] = bench_proc_kb(pair_procs[j].pid, "status", "RssAnon");
        m.rss[j] = bench_rss_kb(pair_procs[j].pid);
    }
    return m;
}

static void mem_max(mem_t *into, mem_t m)
{
    for (int j = 0; j < 2; j++) {
        into->anon[j] = m.anon[j] > into->anon[j] ? m.anon[j] : into->anon[j];
        into->rss[j] = m.rss[j] > into->rss[j] ? m.rss[j] : into->rss[j];
    }
}

static void mem_row(const char *what, mem_t m)
{
    printf("  %-34s A RssAnon %7.1f MiB (VmRSS %6.1f)   B RssAnon %7.1f MiB (VmRSS %6.1f)\n", what,
           m.anon[0] / 1024.0, m.rss[0] / 1024.0, m.anon[1] / 1024.0, m.rss[1] / 1024.0);
}

/* ------------------------------------------------------------------ reads */

/* readers concurrent GETs of the whole product through B; the most memory seen meanwhile into
 * peak. Returns the reads that ended 200 with every byte. */
static int read_round(mem_t *peak, double *secs)
{
    static CURL *h[MAX_READERS];
    static size_t got[MAX_READERS];
    char url[128];
    pair_url(url, sizeof url, 1, "/v1/products/owner/big/records");
    CURLM *m = curl_multi_init();
    for (int i = 0; i < readers; i++) {
        h[i] = curl_easy_init();
        got[i] = 0;
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        BENCH_BEARER(h[i], pair_owner_tok());
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, count_cb);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &got[i]);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT, 600L);
        curl_multi_add_handle(m, h[i]);
    }
    uint64_t t0 = bench_now_ns(), next = 0;
    int running = 1, ok = 0;
    size_t want = mb * 1000000 / (RECORD + 1) * (RECORD + 1);
    while (running) {
        bench_check_interrupt();
        curl_multi_perform(m, &running);
        if (bench_now_ns() >= next) {
            mem_max(peak, mem_now());
            next = bench_now_ns() + SAMPLE_MS * 1000000u;
        }
        if (running)
            curl_multi_poll(m, NULL, 0, SAMPLE_MS, NULL);
    }
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    for (CURLMsg *msg; (msg = curl_multi_info_read(m, &running));) {
        long st = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
        for (int i = 0; i < readers; i++)
            if (h[i] == msg->easy_handle && msg->data.result == CURLE_OK && st == 200 && got[i] == want)
                ok++;
    }
    for (int i = 0; i < readers; i++) {
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    curl_multi_cleanup(m);
    return ok;
}

/* Waits (up to ms) until A serves no link; its open links then. */
static double wait_links_closed(int ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)ms * 1000000u;
    double open;
    while ((open = metric(0, "trib_link_open")) != 0 && bench_now_ns() < end) {
        bench_check_interrupt();
        bench_sleep_ms(500);
    }
    return open;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: linkmem TRIB_BINARY\n");
        return 2;
    }
    trib_bin = argv[1];
    const char *e;
    if ((e = getenv("LINKMEM_READERS")) && atoi(e) >= 1 && atoi(e) <= MAX_READERS)
        readers = atoi(e);
    if ((e = getenv("LINKMEM_MB")) && atol(e) >= 1)
        mb = (size_t)atol(e);
    if ((e = getenv("LINKMEM_ROUNDS")) && atoi(e) >= 1)
        rounds = atoi(e);
    tmp = bench_init("tribbench-linkmem");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base_port = bench_reserve_ports(&lock_fd);
    if (base_port < 0)
        bench_die("no free block of 100 loopback ports in 20000..31999");
    start_agents();
    bench_sleep_ms(2000);   /* the top-up's commits settle */
    printf("\n== Owner memory after many data links: A owns a %zu MB product, B relays %d concurrent reads of it ==\n",
           mb, readers);
    mem_t idle = mem_now(), after = idle, closed = idle;
    mem_row("idle, before any read", idle);
    for (int r = 1; r <= rounds; r++) {
        mem_t peak = idle;
        double secs, via0 = metric(1, "trib_read_routed_total{path=\"link\"}");
        int ok = read_round(&peak, &secs);
        double via = metric(1, "trib_read_routed_total{path=\"link\"}") - via0;
        printf("  round %d: %d of %d reads whole in %.1f s, %.0f over a data link; A still serves %.0f links (B pools "
               "them)\n", r, ok, readers, secs, via, metric(0, "trib_link_open"));
        mem_row("peak, during the reads", peak);
        bench_sleep_ms(3000);
        after = mem_now();
        printf("  (A: %.0f links open, their idle buffers %.0f bytes; B pools %.0f)\n", metric(0, "trib_link_open"),
               metric(0, "trib_link_idle_buffer_bytes"), metric(1, "trib_link_pooled"));
        mem_row("3 s after, links idle", after);
        double open = wait_links_closed(45000);
        bench_sleep_ms(1000);
        closed = mem_now();
        mem_row(open == 0 ? "every link closed" : "45 s after (links still open!)", closed);
    }
    long d = closed.anon[0] - idle.anon[0];
    printf("  A's RssAnon once its links closed: %+.1f MiB over idle   target <= +%d MiB  %s\n", d / 1024.0,
           TARGET_KIB / 1024, d <= TARGET_KIB ? "PASS" : "MISS");
    printf("  (3 s after the last round, 8 links still idle: %+.1f MiB over idle)\n",
           (after.anon[0] - idle.anon[0]) / 1024.0);
    long db = after.anon[1] - idle.anon[1];
    printf("  B's RssAnon once its reads ended: %+.1f MiB over idle   target <= +%d MiB  %s\n", db / 1024.0,
           TARGET_KIB / 1024, db <= TARGET_KIB ? "PASS" : "MISS");
    if ((e = getenv("LINKMEM_PAUSE")) && atoi(e) > 0) {   /* time to look at /proc/PID/smaps */
        fprintf(stderr, "linkmem: pausing %d s: owner A is pid %d, relay B pid %d\n", atoi(e), (int)pair_procs[0].pid,
                (int)pair_procs[1].pid);
        bench_sleep_ms(atoi(e) * 1000L);
    }
    pair_stop();
    curl_global_cleanup();
    return 0;
}
