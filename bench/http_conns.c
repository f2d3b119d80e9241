/* bench/http_conns.c - HTTP under idle connections (issue 8 B5): one `trib agent`, 5,000
 * connections opened from one address (127.0.0.2) and left idle, half of them silent and half
 * stopped in the middle of a request line, and meanwhile a normal client at another address
 * (127.0.0.1) asking GET /v1/status on a new connection each time.
 *
 * Usage: http_conns TRIB_BINARY    (env CONNS_N: idle connections, default 5000;
 *        CONNS_REQS: timed requests per phase, default 200)
 *
 * Owns: the idle connections (this process raises its own descriptor limit to hold them), the
 * timing with CLOCK_MONOTONIC (connect to the end of the answer, Connection: close), the agent's
 * memory (VmRSS, RssAnon) and threads from /proc, and the report on stdout.
 * Must not: leave a process or a temp dir behind (atexit + signals). */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include "bench/bench.h"

static bench_proc_t agent;
static int port, lock_fd;
static long log_lines;

/* The agent's stdout+stderr pipe is drained all along: a full pipe would block its log. */
static volatile int drain_stop;
static void count_line(void *ctx, bench_proc_t *p, const char *line, uint64_t t)
{
    (void)ctx, (void)p, (void)t;
    log_lines++;
    if (getenv("CONNS_DEBUG"))
        fprintf(stderr, "[agent] %s\n", line);
}

static void *drain_main(void *arg)
{
    (void)arg;
    while (!drain_stop && agent.fd >= 0) {
        struct pollfd pf = {.fd = agent.fd, .events = POLLIN};
        if (poll(&pf, 1, 100) > 0 && bench_proc_read(&agent, count_line, NULL, bench_now_ns()) < 0)
            break;
    }
    return NULL;
}

/* A TCP connection to the agent from source address src (NULL: any), or -1. */
static int dial(const char *src, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    if (src) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &s.sin_addr);
        if (bind(fd, (struct sockaddr *)&s, sizeof s) < 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (nonblock == 2) { /* wait for the handshake, 10 s at most, then blocking */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, 10000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            close(fd);
            return -1;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    return fd;
}

/* One GET /v1/status on a new connection from 127.0.0.1: milliseconds to the end of a 200, or
 * a negative value when it failed or took over 10 s. */
static double status_ms(void)
{
    uint64_t t0 = bench_now_ns();
    int fd = dial("127.0.0.1", 2);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /v1/status HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    char buf[8192];
    size_t got = 0;
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    ssize_t n;
    while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0 && got + (size_t)n < sizeof buf - 1)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    if (n < 0 || strncmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    return bench_ms(bench_now_ns() - t0);
}

static void timed_gets(const char *label, int reqs)
{
    double *v = calloc((size_t)reqs, sizeof *v);
    int ok = 0, failed = 0;
    for (int i = 0; i < reqs; i++) {
        bench_check_interrupt();
        double ms = status_ms();
        if (ms < 0)
            failed++;
        else
            v[ok++] = ms;
    }
    qsort(v, (size_t)ok, sizeof *v, bench_cmp_double);
    if (ok)
        printf("  %-44s %d/%d answered 200: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", label, ok, reqs,
               bench_pct(v, (size_t)ok, 50), bench_pct(v, (size_t)ok, 99), v[ok - 1]);
    else
        printf("  %-44s 0/%d answered (%d failed or took over 10 s)\n", label, reqs, failed);
    free(v);
}

/* How many of fds the server has closed (EOF or reset seen without blocking). */
static int closed_by_server(const int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) {
            closed++;
            continue;
        }
        struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            closed++;
    }
    return closed;
}

static void agent_figures(const char *when)
{
    printf("  agent %s: VmRSS %ld KiB, RssAnon %ld KiB, threads %ld\n", when, bench_rss_kb(agent.pid),
           bench_proc_kb(agent.pid, "status", "RssAnon"), bench_proc_kb(agent.pid, "status", "Threads"));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: http_conns TRIB_BINARY\n");
        return 2;
    }
    int nconns = getenv("CONNS_N") ? atoi(getenv("CONNS_N")) : 5000;
    int reqs = getenv("CONNS_REQS") ? atoi(getenv("CONNS_REQS")) : 200;
    const char *tmp = bench_init("tribbench-conns");
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (int)rl.rlim_cur < nconns + 64)
            nconns = (int)rl.rlim_cur - 64;
    }
    int base = bench_reserve_ports(&lock_fd);
    if (base < 0)
        bench_die("no free block of ports");
    port = base + 1;
    char data[300], http[32], peer[32];
    snprintf(data, sizeof data, "%s/node", tmp);
    snprintf(http, sizeof http, "127.0.0.1:%d", port);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", base);
    char *args[] = {(char *)argv[1], "agent", "--data", data, "--domain", "conns", "--listen", peer, "--http", http,
                    NULL};
    if (bench_spawn(&agent, args, 0) < 0)
        bench_die("cannot start trib agent: %s", strerror(errno));
    pthread_t drain;
    pthread_create(&drain, NULL, drain_main, NULL);
    uint64_t end = bench_now_ns() + 30000000000u;
    while (status_ms() < 0) {
        bench_check_interrupt();
        if (bench_now_ns() > end)
            bench_die("the agent did not answer within 30 s");
        bench_sleep_ms(20);
    }
    printf("\n== HTTP under idle connections (issue 8 B5): bench/http_conns ==\n");
    timed_gets("GET /v1/status, no idle connections:", reqs);
    agent_figures("idle");

    /* The idle ones: connect, then half of them send the start of a request line and stop. */
    int *fds = malloc((size_t)nconns * sizeof *fds);
    int opened = 0;
    for (int i = 0; i < nconns; i++) {
        fds[i] = dial("127.0.0.2", 1);
        if (fds[i] >= 0)
            opened++;
    }
    bench_sleep_ms(200); /* non-blocking connects complete; not a synchronisation */
    for (int i = 1; i < nconns; i += 2)
        if (fds[i] >= 0 && write(fds[i], "GET /v1/status HTT", 18) < 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    /* Let the server see them all (accept backlog) before measuring. */
    uint64_t settle = bench_now_ns() + 3000000000u;
    int closed = 0, prev = -1;
    while (bench_now_ns() < settle && (closed = closed_by_server(fds, nconns)) != prev) {
        prev = closed;
        bench_sleep_ms(300);
    }
    printf("  %d idle connections opened from 127.0.0.2 (half silent, half stopped mid request line): "
           "the server holds %d, closed %d (its per-address cap)\n",
           opened, nconns - closed, closed);
    char label[96];
    snprintf(label, sizeof label, "GET /v1/status with %d idle held:", nconns);
    timed_gets(label, reqs);
    agent_figures("holding them");
    /* The idle timeout: the server closes what it held. */
    uint64_t t0 = bench_now_ns();
    end = t0 + 40000000000u;
    while ((closed = closed_by_server(fds, nconns)) < nconns && bench_now_ns() < end) {
        bench_check_interrupt();
        bench_sleep_ms(250);
    }
    printf("  the server closed the last of them %.1f s later (%d of %d closed; idle timeout)\n",
           bench_ms(bench_now_ns() - t0) / 1000.0, closed, nconns);
    for (int i = 0; i < nconns; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    timed_gets("GET /v1/status after:", reqs);
    printf("  agent log lines over the run: %ld\n", log_lines);
    drain_stop = 1;
    pthread_join(drain, NULL);
    bench_stop(&agent, SIGTERM, 5000);
    return 0;
}
