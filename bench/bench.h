/* bench/bench.h - helpers shared by the benchmark programs (fed.c, data.c): a monotonic clock,
 * child processes whose stdout+stderr come back on one pipe read line by line, a reserved block
 * of free loopback ports, percentiles, temp dirs, and cleanup of everything on exit or Ctrl-C.
 *
 * Header-only (`static inline`) because the Makefile links each bench/NAME.c into its own binary
 * with nothing but libtrib.a beside it. Must not: measure anything itself, or print to stdout
 * (the report is the programs' stdout; progress and errors go to stderr). */
#ifndef TRIB_BENCH_H
#define TRIB_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_PROCS 64
#define BENCH_LINE_MAX 4096

/* ------------------------------------------------------------------ clock */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_ms(uint64_t ns) { return (double)ns / 1e6; }

static inline void bench_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ tokens */

/* The admin token a node wrote to DATA/admin.token on its first start (issue 11: writes and
 * non-public reads need a token), read once it exists and kept; "" before. Up to 64 dirs. */
static inline const char *bench_token(const char *data_dir)
{
    static struct { char dir[400]; char tok[4200]; } t[64];
    int free_slot = -1;
    for (int i = 0; i < 64; i++) {
        if (t[i].dir[0] && !strcmp(t[i].dir, data_dir))
            return t[i].tok;
        if (!t[i].dir[0] && free_slot < 0)
            free_slot = i;
    }
    char path[420];
    snprintf(path, sizeof path, "%.400s/admin.token", data_dir);
    FILE *f = fopen(path, "r");
    if (!f || free_slot < 0) {
        if (f)
            fclose(f);
        return "";
    }
    size_t n = fread(t[free_slot].tok, 1, sizeof t[free_slot].tok - 1, f);
    fclose(f);
    t[free_slot].tok[n] = '\0';
    t[free_slot].tok[strcspn(t[free_slot].tok, "\r\n")] = '\0';
    snprintf(t[free_slot].dir, sizeof t[free_slot].dir, "%.399s", data_dir);
    return t[free_slot].tok;
}

/* Sends tok as "Authorization: Bearer" on curl handle h (a macro: bench.h does not include curl). */
#define BENCH_BEARER(h, tok)                                                                        \
    do {                                                                                            \
        const char *bench_t_ = (tok);                                                               \
        if (bench_t_ && *bench_t_) {                                                                \
            curl_easy_setopt((h), CURLOPT_HTTPAUTH, CURLAUTH_BEARER);                               \
            curl_easy_setopt((h), CURLOPT_XOAUTH2_BEARER, bench_t_);                                \
        }                                                                                           \
    } while (0)

/* ------------------------------------------------------------------ cleanup registry */

typedef struct {
    pid_t pid;
    int fd;                         /* read end of the child's stdout+stderr pipe, -1 when closed */
    char buf[BENCH_LINE_MAX];
    size_t len;
    int tag;                        /* caller's index (node number) */
} bench_proc_t;

static volatile sig_atomic_t bench_interrupted;
static pid_t bench_pids[BENCH_MAX_PROCS];            /* live children, for the signal handler */
static char bench_tmpdir[256];
static void (*bench_extra_cleanup)(void);

static inline void bench_track(pid_t pid)
{
    for (int i = 0; i < BENCH_MAX_PROCS; i++)
        if (!bench_pids[i]) {
            bench_pids[i] = pid;
            return;
        }
}

static inline void bench_untrack(pid_t pid)
{
    for (int i = 0; i < BENCH_MAX_PROCS; i++)
        if (bench_pids[i] == pid)
            bench_pids[i] = 0;
}

static inline void bench_on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
    for (int i = 0; i < BENCH_MAX_PROCS; i++)  /* async-signal-safe: kill only */
        if (bench_pids[i] > 0)
            kill(bench_pids[i], SIGKILL);
}

static inline int bench_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static inline void bench_cleanup(void)
{
    for (int i = 0; i < BENCH_MAX_PROCS; i++)
        if (bench_pids[i] > 0) {
            kill(bench_pids[i], SIGKILL);
            waitpid(bench_pids[i], NULL, 0);
            bench_pids[i] = 0;
        }
    if (bench_extra_cleanup)
        bench_extra_cleanup();
    if (bench_tmpdir[0]) {
        nftw(bench_tmpdir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        bench_tmpdir[0] = '\0';
    }
}

/* Creates the run's temp dir (removed at exit) and installs the exit and signal handlers. */
static inline const char *bench_init(const char *prefix)
{
    snprintf(bench_tmpdir, sizeof bench_tmpdir, "/tmp/%s.XXXXXX", prefix);
    if (!mkdtemp(bench_tmpdir)) {
        fprintf(stderr, "bench: mkdtemp %s: %s\n", bench_tmpdir, strerror(errno));
        exit(1);
    }
    atexit(bench_cleanup);
    struct sigaction sa = {.sa_handler = bench_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return bench_tmpdir;
}

static inline void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);   /* atexit: children killed, temp dir removed */
}

static inline void bench_check_interrupt(void)
{
    if (bench_interrupted)
        bench_die("interrupted");
}

/* ------------------------------------------------------------------ child processes */

/* Starts argv with stdout and stderr on a non-blocking pipe (p->fd). The child is killed when
 * this process dies (PR_SET_PDEATHSIG) and sits in its own process group, so a Ctrl-C reaches
 * only us and we decide how children stop. PR_SET_PDEATHSIG fires when the *thread* that forked
 * ends, not only the process: a thread that spawns must outlive its children. */
static inline int bench_spawn_in(bench_proc_t *p, char *const argv[], int tag, int *in_fd);
static inline int bench_spawn(bench_proc_t *p, char *const argv[], int tag)
{
    return bench_spawn_in(p, argv, tag, NULL);
}

/* As bench_spawn; when in_fd is non-NULL the child's stdin is a pipe whose write end is *in_fd. */
static inline int bench_spawn_in(bench_proc_t *p, char *const argv[], int tag, int *in_fd)
{
    int pfd[2], ifd[2] = {-1, -1};
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    if (in_fd && pipe2(ifd, O_CLOEXEC) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        if (in_fd) {
            close(ifd[0]);
            close(ifd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        int devnull = in_fd ? ifd[0] : open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        for (int fd = 3; fd < 1024; fd++) /* curl sockets, lock files: not the child's */
            close(fd);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    if (in_fd) {
        close(ifd[0]);
        *in_fd = ifd[1];
    }
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->fd = pfd[0];
    p->tag = tag;
    bench_track(pid);
    return 0;
}

/* Reads what is available and calls fn for each complete line (without '\n'). Returns 0, or
 * -1 once the pipe is closed (child gone). */
typedef void (*bench_line_fn)(void *ctx, bench_proc_t *p, const char *line, uint64_t t_ns);
static inline int bench_proc_read(bench_proc_t *p, bench_line_fn fn, void *ctx, uint64_t t_ns)
{
    if (p->fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        if (n == 0) {
            close(p->fd);
            p->fd = -1;
            return -1;
        }
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
        char *start = p->buf, *nl;
        while ((nl = memchr(start, '\n', p->len - (size_t)(start - p->buf)))) {
            *nl = '\0';
            if (strstr(start, "cannot listen") || strstr(start, "in use")) /* bench/run.sh retries on it */
                fprintf(stderr, "bench: agent %d: %s\n", (int)p->pid, start);
            if (fn)
                fn(ctx, p, start, t_ns);
            start = nl + 1;
        }
        size_t rest = p->len - (size_t)(start - p->buf);
        if (rest == sizeof p->buf - 1) /* an over-long line: drop it */
            rest = 0;
        memmove(p->buf, start, rest);
        p->len = rest;
    }
}

/* Signals the child, waits up to grace_ms, then SIGKILLs it; closes its pipe. */
static inline void bench_stop(bench_proc_t *p, int sig, int grace_ms)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        uint64_t end = bench_now_ns() + (uint64_t)grace_ms * 1000000u;
        int st;
        while (waitpid(p->pid, &st, WNOHANG) == 0) {
            if (bench_now_ns() > end) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &st, 0);
                break;
            }
            bench_sleep_ms(5);
        }
        bench_untrack(p->pid);
        p->pid = 0;
    }
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

/* Stops many children: one signal to all, then a shared grace period. */
static inline void bench_stop_all(bench_proc_t *ps, int n, int sig, int grace_ms)
{
    for (int i = 0; i < n; i++)
        if (ps[i].pid > 0)
            kill(ps[i].pid, sig);
    for (int i = 0; i < n; i++)
        bench_stop(&ps[i], sig, grace_ms);
}

/* A "Name:  N kB" field of a /proc file of pid (e.g. "status" VmRSS or RssAnon, "smaps_rollup"
 * Pss), in KiB, or -1. */
static inline long bench_proc_kb(pid_t pid, const char *file, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* VmRSS of pid in KiB, or -1. */
static inline long bench_rss_kb(pid_t pid) { return bench_proc_kb(pid, "status", "VmRSS"); }

/* ------------------------------------------------------------------ ports */

static inline int bench_port_free(int port)
{
    int types[2] = {SOCK_STREAM, SOCK_DGRAM};
    for (int t = 0; t < 2; t++) {
        int s = socket(AF_INET, types[t] | SOCK_CLOEXEC, 0);
        if (s < 0)
            return 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Reserves a block of 100 loopback ports (TCP and UDP free when checked) below the ephemeral
 * range: the block is held by an flock on /tmp/tribbench-ports/BASE.lock until *lock_fd is
 * closed, so two benches running at once never pick the same block. The first block tried
 * is derived from the PID. Returns the base port or -1. */
static inline int bench_reserve_ports(int *lock_fd)
{
    static unsigned salt;
    unsigned start = ((unsigned)getpid() * 7919u + salt++ * 13u) % 120u;
    for (unsigned k = 0; k < 120; k++) {
        int base = 20000 + (int)((start + k) % 120u) * 100;
        char path[64];
        mkdir("/tmp/tribbench-ports", 0755);
        snprintf(path, sizeof path, "/tmp/tribbench-ports/%d.lock", base);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue;
        }
        int ok = 1;
        for (int p = base; p < base + 100 && ok; p++)
            ok = bench_port_free(p);
        if (ok) {
            *lock_fd = fd;
            return base;
        }
        close(fd);
    }
    return -1;
}

/* ------------------------------------------------------------------ records */

/* The benchmark record schema (a manifest's "schema" array) and one record of exactly size
 * bytes (no newline) carrying sequence number n, written to out (cap >= size + 1). Every field
 * is typed so that validation has work to do. Returns the length, or -1 when size is too small. */
#define BENCH_SCHEMA                                                                                   \
    "[{\"name\":\"n\",\"logicalType\":\"integer\",\"required\":true},"                               \
    "{\"name\":\"id\",\"logicalType\":\"string\",\"required\":true},"                                \
    "{\"name\":\"at\",\"logicalType\":\"timestamp\",\"required\":true},"                             \
    "{\"name\":\"amount\",\"logicalType\":\"number\"},"                                              \
    "{\"name\":\"ok\",\"logicalType\":\"boolean\"},"                                                 \
    "{\"name\":\"pad\",\"logicalType\":\"string\"}]"

static inline int bench_record(char *out, size_t size, unsigned long n)
{
    int head = snprintf(out, size + 1,
                        "{\"n\":%lu,\"id\":\"r-%lu\",\"at\":\"2024-09-02T10:%02lu:%02lu.250Z\",\"amount\":%lu.25,"
                        "\"ok\":true,\"pad\":\"",
                        n, n, (n / 60) % 60, n % 60, n % 100000);
    if (head < 0 || (size_t)head + 2 > size)
        return -1;
    size_t pad = size - (size_t)head - 2;
    memset(out + head, 'x', pad);
    memcpy(out + head + pad, "\"}", 3);
    return (int)size;
}

/* NDJSON batch of count records of size bytes, numbered first.., each followed by '\n':
 * record i starts at buf + i * (size + 1). malloc'd; NULL on failure. */
static inline char *bench_batch(size_t size, unsigned long first, size_t count)
{
    char *buf = malloc(count * (size + 1) + 1);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        char *r = buf + i * (size + 1);
        if (bench_record(r, size, first + i) < 0) {
            free(buf);
            return NULL;
        }
        r[size] = '\n';
    }
    buf[count * (size + 1)] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ statistics */

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (p in 0..100) of v[0..n), sorting v in place; NAN when n == 0. */
static inline double bench_pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0 / 0.0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

#endif
