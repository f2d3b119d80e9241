/* bench/link.c - what the data link (gossip/link.h: Noise IK, AESGCM or ChaChaPoly frames as the
 * agents pick them on this CPU; LINK_CIPHER=aesgcm|chachapoly forces one) costs beside
 * plain TCP, on loopback between two processes: the throughput of 100 MB in 256 KiB frames, the
 * round trip of a 100-byte frame (p50, p99), and the time of a handshake (p50).
 *
 * Owns: a listening socket on 127.0.0.1 (in a block of bench_reserve_ports), a child process that
 * receives and echoes, the parent that sends and times, ROUNDS rounds each measuring plain TCP
 * then the link, and printing figures and ratios (per round and their range). Figures are
 * printed, never asserted. Must not: share a process between the two ends (each end is what one
 * node would be: the relay's thread and the owner's). Usage: bench/link [MB [ROUNDS]]. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "gossip/link.h"

#define FRAME      (256 * 1024)
#define SMALL      100
#define RTT_N      2000
#define HS_N       200
#define WAIT_MS    30000

static link_keys_t ck, sk;
static int lfd;
static struct sockaddr_in addr;

static void die(const char *what)
{
    fprintf(stderr, "bench/link: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int dial_tcp(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int accept_tcp(void)
{
    int fd = accept(lfd, NULL, NULL), one = 1;
    if (fd < 0)
        die("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void read_all(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die("read");
        p += r, n -= (size_t)r;
    }
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            die("write");
        p += w, n -= (size_t)w;
    }
}

static link_t *dial_link(void)
{
    char err[300];
    link_reason_t why;
    link_t *l = link_dial(dial_tcp(), &ck, sk.pk, NULL, 0, FRAME, WAIT_MS, &why, err, sizeof err);
    if (!l)
        fprintf(stderr, "bench/link: %s\n", err), exit(1);
    return l;
}

static link_t *accept_link(void)
{
    char err[300];
    link_reason_t why;
    link_t *l = link_accept(accept_tcp(), &sk, NULL, NULL, NULL, 0, FRAME, WAIT_MS, &why, err, sizeof err);
    if (!l)
        fprintf(stderr, "bench/link: %s\n", err), exit(1);
    return l;
}

static const uint8_t *recv_frame(link_t *l, size_t *len)
{
    const uint8_t *f;
    link_reason_t why;
    if (link_recv(l, &f, len, WAIT_MS, &why) != 1)
        fprintf(stderr, "bench/link: recv: %s\n", link_reason_name(why)), exit(1);
    return f;
}

static void send_frame(link_t *l, const void *p, size_t len)
{
    link_reason_t why;
    if (link_send(l, p, len, WAIT_MS, &why) != 0)
        fprintf(stderr, "bench/link: send: %s\n", link_reason_name(why)), exit(1);
}

/* ------------------------------------------------------------------ the receiving, echoing child */

static void child(size_t total, int rounds)
{
    uint8_t *buf = malloc(FRAME), small[SMALL];
    for (int r = 0; r < rounds; r++) {
        int fd = accept_tcp();   /* plain throughput: all of it, then one byte back */
        for (size_t got = 0; got < total;) {
            ssize_t n = read(fd, buf, FRAME);
            if (n <= 0)
                die("read");
            got += (size_t)n;
        }
        write_all(fd, small, 1);
        close(fd);

        link_t *l = accept_link();   /* link throughput */
        size_t len;
        for (size_t got = 0; got < total; got += len)
            recv_frame(l, &len);
        send_frame(l, small, 1);
        link_close(&l);

        fd = accept_tcp();           /* plain round trips */
        for (int i = 0; i < RTT_N; i++) {
            read_all(fd, small, SMALL);
            write_all(fd, small, SMALL);
        }
        close(fd);

        l = accept_link();           /* link round trips */
        for (int i = 0; i < RTT_N; i++) {
            const uint8_t *f = recv_frame(l, &len);
            send_frame(l, f, len);
        }
        link_close(&l);

        for (int i = 0; i < HS_N; i++) {   /* handshakes; then plain connections alone */
            l = accept_link();
            link_close(&l);
        }
        for (int i = 0; i < HS_N; i++)
            close(accept_tcp());
    }
    free(buf);
    exit(0);
}

/* ------------------------------------------------------------------ the sending, timing parent */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    return (double)v[(int)(p * (n - 1))] / 1e3;
}

typedef struct {
    double tcp_mbs, link_mbs, tcp_p50, tcp_p99, link_p50, link_p99, hs_p50, conn_p50;
} round_t;

static void parent_round(size_t total, round_t *o)
{
    uint8_t *buf = calloc(1, FRAME), small[SMALL] = {0};
    uint64_t *t = malloc(sizeof *t * RTT_N);

    int fd = dial_tcp();
    uint64_t t0 = bench_now_ns();
    for (size_t sent = 0; sent < total; sent += FRAME)
        write_all(fd, buf, FRAME);
    read_all(fd, small, 1);
    o->tcp_mbs = (double)total / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
    close(fd);

    link_t *l = dial_link();
    link_reason_t why;
    size_t len;
    t0 = bench_now_ns();
    for (size_t sent = 0; sent < total; sent += FRAME) {
        if (!link_frame(l, FRAME, &why) || link_send_frame(l, FRAME, WAIT_MS, &why) != 0)
            fprintf(stderr, "bench/link: send: %s\n", link_reason_name(why)), exit(1);
    }
    recv_frame(l, &len);
    o->link_mbs = (double)total / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
    link_close(&l);

    fd = dial_tcp();
    for (int i = 0; i < RTT_N; i++) {
        uint64_t s = bench_now_ns();
        write_all(fd, small, SMALL);
        read_all(fd, small, SMALL);
        t[i] = bench_now_ns() - s;
    }
    close(fd);
    o->tcp_p50 = pct_us(t, RTT_N, 0.5), o->tcp_p99 = pct_us(t, RTT_N, 0.99);

    l = dial_link();
    for (int i = 0; i < RTT_N; i++) {
        uint64_t s = bench_now_ns();
        send_frame(l, small, SMALL);
        recv_frame(l, &len);
        t[i] = bench_now_ns() - s;
    }
    link_close(&l);
    o->link_p50 = pct_us(t, RTT_N, 0.5), o->link_p99 = pct_us(t, RTT_N, 0.99);

    for (int i = 0; i < HS_N; i++) {   /* connect + handshake, as the relay would see it */
        uint64_t s = bench_now_ns();
        l = dial_link();
        t[i] = bench_now_ns() - s;
        link_close(&l);
    }
    o->hs_p50 = pct_us(t, HS_N, 0.5);
    for (int i = 0; i < HS_N; i++) {
        uint64_t s = bench_now_ns();
        fd = dial_tcp();
        t[i] = bench_now_ns() - s;
        close(fd);
    }
    o->conn_p50 = pct_us(t, HS_N, 0.5);
    free(buf);
    free(t);
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 100;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    size_t total = (mb * 1000 * 1000 + FRAME - 1) / FRAME * FRAME;   /* whole frames */
    if (sodium_init() < 0 || rounds < 1 || mb < 1 || link_set_suite(getenv("LINK_CIPHER")) != 0)
        return fprintf(stderr, "usage: [LINK_CIPHER=auto|aesgcm|chachapoly] bench/link [MB [ROUNDS]]\n"), 2;
    crypto_box_keypair(ck.pk, ck.sk);
    crypto_box_keypair(sk.pk, sk.sk);
    randombytes_buf(ck.prologue, 32);
    memcpy(sk.prologue, ck.prologue, 32);

    int ports_lock = -1, port = bench_reserve_ports(&ports_lock);   /* the house's port blocks */
    if (port < 0)
        return fprintf(stderr, "bench/link: no free block of loopback ports\n"), 1;
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 64) != 0)
        die("listen on 127.0.0.1");
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        child(total, rounds);
    }

    printf("== Data link (gossip/link.h, %s) vs plain TCP, loopback, two processes ==\n",
           link_suite_name(LINK_SUITE_AUTO));
    printf("  %zu MB in %d KiB frames; %d round trips of a %d-byte frame; %d handshakes; %d rounds\n",
           total / 1000000, FRAME / 1024, RTT_N, SMALL, HS_N, rounds);
    printf("  round  tcp MB/s  link MB/s  ratio | rtt p50 tcp/link us  p99 tcp/link us"
           " | handshake p50 us (tcp connect)\n");
    double rmin = 1e9, rmax = 0;
    for (int r = 0; r < rounds; r++) {
        round_t o;
        parent_round(total, &o);
        double ratio = o.link_mbs / o.tcp_mbs;
        rmin = ratio < rmin ? ratio : rmin, rmax = ratio > rmax ? ratio : rmax;
        printf("  %5d  %8.0f  %9.0f  %5.2f | %8.1f / %-8.1f  %6.1f / %-8.1f | %8.1f (%.1f)\n", r + 1,
               o.tcp_mbs, o.link_mbs, ratio, o.tcp_p50, o.link_p50, o.tcp_p99, o.link_p99, o.hs_p50,
               o.conn_p50);
        fflush(stdout);
    }
    printf("  link/tcp throughput ratio over %d rounds: %.2f-%.2f\n", rounds, rmin, rmax);
    int status = 0;
    waitpid(pid, &status, 0);
    close(lfd);
    close(ports_lock);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
