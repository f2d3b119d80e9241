/* tests/test_link.c - gossip/link: the handshake and frames over socketpairs, loopback TCP (a
 * port from the harness) and a man in the middle that copies, alters, replays and reorders.
 *
 * Owns: frames of every edge size both ways, frames already received returned with no system
 * call, partial frames across calls, each handshake refusal with its reason (key, prologue,
 * allow, magic, length, deadline), each frame refusal (altered, replayed, reordered, oversize,
 * closed between and inside frames), and bounded random input to link_accept and link_recv.
 * Must not: sleep to synchronise (every wait is link's own deadline, a join, a blocking read
 * of bytes already promised, or a condition polled with a deadline). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gossip/aead.h"
#include "gossip/clock.h"
#include "gossip/link.h"
#include "gossip/noise.h"
#include "tests/harness.h"

#define MAXF     (1024 * 1024)
#define WAIT_MS  5000           /* generous: sanitizer builds are slow */

static link_keys_t ck, sk;      /* client and server keys, one federation */

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    crypto_box_keypair(ck.pk, ck.sk);
    crypto_box_keypair(sk.pk, sk.sk);
    randombytes_buf(ck.prologue, 32);
    memcpy(sk.prologue, ck.prologue, 32);
}

/* ---------------------------------------------------------------- a server thread */
typedef struct {
    int fd;
    link_keys_t keys;
    int refuse;                 /* the allow callback says no */
    int timeout_ms;
    size_t max_frame;           /* 0: MAXF */
    link_t *l;
    link_reason_t why;
    char err[300];
    uint8_t seen_pk[32], seen_hello[LINK_HELLO_MAX];
    size_t seen_len;
    pthread_t t;
    _Atomic pid_t tid;          /* the server thread's, once it runs */
} server_t;

static int allow(void *ctx, const uint8_t pk[32], const uint8_t *hello, size_t len, char *err, size_t errlen)
{
    server_t *s = ctx;
    memcpy(s->seen_pk, pk, 32);
    memcpy(s->seen_hello, hello, len);
    s->seen_len = len;
    if (s->refuse) {
        snprintf(err, errlen, "node not a member");
        return -1;
    }
    return 0;
}

static void *serve(void *arg)
{
    server_t *s = arg;
    s->tid = gettid();
    s->l = link_accept(s->fd, &s->keys, allow, s, (const uint8_t *)"welcome", 7, s->max_frame ? s->max_frame : MAXF,
                       s->timeout_ms,
                       &s->why, s->err, sizeof s->err);
    return NULL;
}

/* A server's settings are set between server_init and server_run: its thread reads them as it
 * starts (a deadline set after the thread was created raced with link_accept reading it). */
static void server_init(server_t *s, int fd, const link_keys_t *keys)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->keys = *keys;
    s->timeout_ms = WAIT_MS;
}

static void server_run(server_t *s) { cr_assert_eq(pthread_create(&s->t, NULL, serve, s), 0); }

static void server_start(server_t *s, int fd, const link_keys_t *keys)
{
    server_init(s, fd, keys);
    server_run(s);
}

static void server_join(server_t *s) { pthread_join(s->t, NULL); }

/* A handshake over a socketpair: *c the client's link, *s the server's. */
static void pair(link_t **c, link_t **s)
{
    int fds[2];
    server_t srv;
    char err[300];
    link_reason_t why;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_start(&srv, fds[1], &sk);
    *c = link_dial(fds[0], &ck, sk.pk, (const uint8_t *)"node-b", 6, MAXF, WAIT_MS, &why, err, sizeof err);
    server_join(&srv);
    cr_assert_not_null(*c, "dial: %s", err);
    cr_assert_not_null(srv.l, "accept: %s", srv.err);
    *s = srv.l;
}

/* ---------------------------------------------------------------- handshake */
Test(link, handshake_exchanges_keys_and_payloads, .init = setup)
{
    int fds[2];
    server_t srv;
    char err[300];
    link_reason_t why;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_start(&srv, fds[1], &sk);
    link_t *c = link_dial(fds[0], &ck, sk.pk, (const uint8_t *)"node-b", 6, MAXF, WAIT_MS, &why, err,
                          sizeof err);
    server_join(&srv);
    cr_assert_not_null(c, "dial: %s", err);
    cr_assert_not_null(srv.l, "accept: %s", srv.err);
    cr_assert_eq(memcmp(srv.seen_pk, ck.pk, 32), 0, "allow sees the client's static key");
    cr_assert_eq(srv.seen_len, 6);
    cr_assert_eq(memcmp(srv.seen_hello, "node-b", 6), 0);
    cr_assert_eq(memcmp(link_peer_pk(srv.l), ck.pk, 32), 0);
    cr_assert_eq(memcmp(link_peer_pk(c), sk.pk, 32), 0);
    size_t len;
    const uint8_t *h = link_peer_hello(c, &len);
    cr_assert_eq(len, 7);
    cr_assert_eq(memcmp(h, "welcome", 7), 0);
    h = link_peer_hello(srv.l, &len);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(h, "node-b", 6), 0);
    link_close(&c);
    link_close(&srv.l);
    cr_assert_null(c);
    link_close(&c);   /* NULL is fine */
}

static void refused_case(const link_keys_t *client, const uint8_t *server_pk, int refuse,
                         link_reason_t at_client, link_reason_t at_server, const char *server_text)
{
    int fds[2];
    server_t srv;
    char err[300] = "";
    link_reason_t why;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_init(&srv, fds[1], &sk);
    srv.refuse = refuse;
    server_run(&srv);
    link_t *c = link_dial(fds[0], client, server_pk, NULL, 0, MAXF, WAIT_MS, &why, err, sizeof err);
    server_join(&srv);
    cr_assert_null(c);
    cr_assert_null(srv.l);
    cr_assert_eq(why, at_client, "client: %s (%s)", link_reason_name(why), err);
    cr_assert_eq(srv.why, at_server, "server: %s (%s)", link_reason_name(srv.why), srv.err);
    cr_assert(strstr(srv.err, server_text), "server text: %s", srv.err);
    cr_assert(strstr(err, "handshake with "), "client text: %s", err);
    cr_assert_eq(fcntl(fds[0], F_GETFD), -1, "the client's descriptor is closed");
    cr_assert_eq(fcntl(fds[1], F_GETFD), -1, "the server's descriptor is closed");
}

Test(link, another_server_key_fails_the_handshake, .init = setup)
{
    uint8_t other_pk[32], other_sk[32];
    crypto_box_keypair(other_pk, other_sk);
    refused_case(&ck, other_pk, 0, LINK_HANDSHAKE, LINK_HANDSHAKE, "not made for this node's key");
}

Test(link, another_prologue_fails_at_the_responder, .init = setup)
{
    link_keys_t other = ck;
    other.prologue[0] ^= 1;
    refused_case(&other, sk.pk, 0, LINK_HANDSHAKE, LINK_HANDSHAKE, "another federation");
}

Test(link, allow_refusing_gives_refused_with_its_text, .init = setup)
{
    refused_case(&ck, sk.pk, 1, LINK_HANDSHAKE, LINK_REFUSED, "refused: node not a member");
}

/* The server side alone, fed raw bytes then end of file (or not). */
static void accept_raw(const void *bytes, size_t len, int close_after, int timeout_ms, server_t *srv)
{
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_init(srv, fds[1], &sk);
    srv->timeout_ms = timeout_ms;
    server_run(srv);
    if (len)
        cr_assert_eq(send(fds[0], bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    if (close_after)
        shutdown(fds[0], SHUT_WR);
    server_join(srv);
    close(fds[0]);
}

Test(link, an_http_request_is_garbage_with_its_first_bytes, .init = setup)
{
    server_t srv;
    accept_raw("GET / HTTP/1.1\r\n\r\n", 18, 0, WAIT_MS, &srv);
    cr_assert_null(srv.l);
    cr_assert_eq(srv.why, LINK_GARBAGE);
    cr_assert(strstr(srv.err, "not a Tributary link (first bytes 47 45 54 20)"), "%s", srv.err);
    cr_assert(strstr(srv.err, "link from "), "%s", srv.err);
}

Test(link, a_message_longer_than_the_pattern_allows_is_garbage, .init = setup)
{
    server_t srv;
    uint8_t m[10] = "TRIBLNK1";
    size_t too_long = NOISE_MSG1_MIN + LINK_HELLO_MAX + 1;
    m[8] = (uint8_t)(too_long >> 8), m[9] = (uint8_t)too_long;
    accept_raw(m, 10, 0, WAIT_MS, &srv);   /* not closed: it must not wait for the body */
    cr_assert_eq(srv.why, LINK_GARBAGE, "%s", srv.err);
    m[8] = 0, m[9] = NOISE_MSG1_MIN - 1;
    accept_raw(m, 10, 0, WAIT_MS, &srv);
    cr_assert_eq(srv.why, LINK_GARBAGE, "%s", srv.err);
}

Test(link, accept_with_nothing_coming_times_out_within_its_deadline, .init = setup)
{
    server_t srv;
    uint64_t t0 = clock_ms();
    accept_raw(NULL, 0, 0, 300, &srv);
    uint64_t took = clock_ms() - t0;
    cr_assert_eq(srv.why, LINK_TIMEOUT, "%s", srv.err);
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 300 + WAIT_MS, "took %llu ms", (unsigned long long)took);
    accept_raw(NULL, 0, 1, WAIT_MS, &srv);   /* connected, then closed */
    cr_assert_eq(srv.why, LINK_CLOSED, "%s", srv.err);
}

/* A slowloris: the valid handshake, one byte every 20 ms. The deadline is for the whole handshake,
 * not for each read. (The pause is the attack's pace, not a synchronisation.) */
typedef struct {
    int fd;
    const uint8_t *bytes;
    size_t len;
} drip_t;

static void *drip(void *arg)
{
    drip_t *d = arg;
    for (size_t i = 0; i < d->len; i++) {
        if (send(d->fd, d->bytes + i, 1, MSG_NOSIGNAL) != 1)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
    }
    return NULL;
}

/* Message 1 as link_dial writes it: the Noise prologue is the magic, then the federation's bytes
 * (bind_magic 0: the federation's bytes alone, the magic left out of the transcript). */
static size_t make_msg1_as(uint8_t *out, const link_keys_t *client, const uint8_t *hello, size_t hello_len,
                           int bind_magic, noise_suite_t suite)
{
    noise_hs_t hs;
    size_t len;
    uint8_t pro[8 + 32];
    const char *magic = suite == NOISE_AESGCM ? LINK_MAGIC_AESGCM : LINK_MAGIC;
    memcpy(pro, magic, 8);
    memcpy(pro + 8, client->prologue, 32);
    memcpy(out, magic, 8);
    noise_init(&hs, suite, 1, client->pk, client->sk, sk.pk, bind_magic ? pro : pro + 8, bind_magic ? 40 : 32);
    cr_assert_eq(noise_write(&hs, hello, hello_len, out + 10, &len), NOISE_OK);
    out[8] = (uint8_t)(len >> 8), out[9] = (uint8_t)len;
    return 10 + len;
}

static size_t make_msg1(uint8_t *out, const link_keys_t *client, const uint8_t *hello, size_t hello_len)
{
    return make_msg1_as(out, client, hello, hello_len, 1, NOISE_CHACHAPOLY);
}

Test(link, a_slowloris_gets_a_timeout_for_the_whole_handshake, .init = setup)
{
    int fds[2];
    uint8_t m[512];
    size_t len = make_msg1(m, &ck, NULL, 0);   /* ~106 bytes: 2 s at 20 ms each */
    server_t srv;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    drip_t d = {.fd = fds[0], .bytes = m, .len = len};
    pthread_t t;
    uint64_t t0 = clock_ms();
    server_init(&srv, fds[1], &sk);
    srv.timeout_ms = 300;
    server_run(&srv);
    cr_assert_eq(pthread_create(&t, NULL, drip, &d), 0);
    server_join(&srv);
    uint64_t took = clock_ms() - t0;
    shutdown(fds[0], SHUT_RDWR);
    pthread_join(t, NULL);
    close(fds[0]);
    /* With a deadline per read instead, the handshake would complete after ~2 s: not a timeout. */
    cr_assert_eq(srv.why, LINK_TIMEOUT, "%s: %s", link_reason_name(srv.why), srv.err);
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 300 + WAIT_MS, "took %llu ms of a 300 ms deadline", (unsigned long long)took);
}

/* ---------------------------------------------------------------- frames */
typedef struct {
    link_t *l;
    int frames;
} echo_t;

static void *echo(void *arg)
{
    echo_t *e = arg;
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    while (link_recv(e->l, &f, &len, WAIT_MS, &why) == 1) {
        uint8_t *out = link_frame(e->l, len, &why);
        if (!out)
            break;
        memcpy(out, f, len);   /* f stays valid: link_frame does not touch the receive buffer */
        if (link_send_frame(e->l, len, WAIT_MS, &why) != 0)
            break;
        e->frames++;
    }
    return NULL;
}

static void round_trips(link_t *c, link_t *s)
{
    static const size_t sizes[] = {0, 1, 65535, 65536, MAXF, 100, MAXF - 1};
    echo_t e = {.l = s};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, echo, &e), 0);
    uint8_t *want = malloc(MAXF);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        link_reason_t why;
        randombytes_buf(want, sizes[i]);
        cr_assert_eq(link_send(c, want, sizes[i], WAIT_MS, &why), 0, "send %zu: %s", sizes[i],
                     link_reason_name(why));
        const uint8_t *f;
        size_t len;
        cr_assert_eq(link_recv(c, &f, &len, WAIT_MS, &why), 1, "recv %zu: %s", sizes[i],
                     link_reason_name(why));
        cr_assert_eq(len, sizes[i]);
        cr_assert_eq(memcmp(f, want, len), 0, "frame of %zu bytes came back different", sizes[i]);
    }
    link_close(&c);
    pthread_join(t, NULL);
    cr_assert_eq(e.frames, (int)(sizeof sizes / sizeof *sizes));
    link_close(&s);
    free(want);
}

Test(link, frames_of_every_edge_size_go_both_ways, .init = setup)
{
    link_t *c, *s;
    pair(&c, &s);
    round_trips(c, s);
}

Test(link, frames_go_both_ways_over_loopback_tcp, .init = setup)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), port = h_free_port();
    cr_assert_gt(port, 0, "no free port");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0, "port %d", port);
    cr_assert_eq(listen(lfd, 4), 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
    int afd = accept(lfd, NULL, NULL);
    cr_assert_geq(afd, 0);
    close(lfd);
    server_t srv;
    char err[300];
    link_reason_t why;
    server_start(&srv, afd, &sk);
    link_t *c = link_dial(cfd, &ck, sk.pk, NULL, 0, MAXF, WAIT_MS, &why, err, sizeof err);
    server_join(&srv);
    cr_assert_not_null(c, "%s", err);
    cr_assert_not_null(srv.l, "%s", srv.err);
    round_trips(c, srv.l);
}

Test(link, frames_already_received_come_without_a_system_call, .init = setup)
{
    link_t *c, *s;
    link_reason_t why;
    pair(&c, &s);
    for (int i = 0; i < 100; i++) {   /* a socketpair send lands in the peer's buffer at once */
        uint8_t b[16];
        memset(b, i, sizeof b);
        cr_assert_eq(link_send(c, b, (size_t)i % 17, WAIT_MS, &why), 0);
    }
    const uint8_t *f;
    size_t len;
    cr_assert_eq(link_buffered(s), 0, "nothing read yet");
    cr_assert_eq(link_recv(s, &f, &len, WAIT_MS, &why), 1);
    cr_assert_eq(len, 0);
    /* From here every read of the descriptor fails: frames 1-99 must come from the buffer. */
    int devnull = open("/dev/null", O_RDONLY);
    cr_assert_eq(dup2(devnull, link_fd(s)), link_fd(s));
    close(devnull);
    for (int i = 1; i < 100; i++) {
        cr_assert_eq(link_buffered(s), 1, "frame %d buffered", i);
        cr_assert_eq(link_recv(s, &f, &len, 0, &why), 1, "frame %d: %s", i, link_reason_name(why));
        cr_assert_eq(len, (size_t)i % 17);
        for (size_t j = 0; j < len; j++)
            cr_assert_eq(f[j], (uint8_t)i);
    }
    cr_assert_eq(link_buffered(s), 0);
    cr_assert_eq(link_recv(s, &f, &len, 0, &why), -1, "the next read reaches the descriptor");
    cr_assert_eq(why, LINK_IO);
    link_close(&c);
    link_close(&s);
}

/* ---------------------------------------------------------------- a man in the middle */
typedef struct {
    link_t *c, *s;
    int cw, sw;     /* the middle's ends: cw faces the client, sw the server (blocking) */
} mitm_t;

typedef struct {
    int fd;
    link_t *l;
    char err[300];
} dialer_t;

static void *dial_thread(void *arg)
{
    dialer_t *d = arg;
    link_reason_t why;
    d->l = link_dial(d->fd, &ck, sk.pk, NULL, 0, MAXF, WAIT_MS, &why, d->err, sizeof d->err);
    return NULL;
}

static void read_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        cr_assert_gt(r, 0, "the middle lost the stream");
        p += r;
        n -= (size_t)r;
    }
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Copies the handshake through: the middle sees and passes every byte. */
static void mitm(mitm_t *m)
{
    int a[2], b[2];
    uint8_t buf[512];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    m->cw = a[1], m->sw = b[0];
    dialer_t d = {.fd = a[0]};
    server_t srv;
    pthread_t t;
    server_start(&srv, b[1], &sk);
    cr_assert_eq(pthread_create(&t, NULL, dial_thread, &d), 0);
    read_exact(m->cw, buf, 10);
    size_t len = (size_t)buf[8] << 8 | buf[9];
    read_exact(m->cw, buf + 10, len);
    write_all(m->sw, buf, 10 + len);
    read_exact(m->sw, buf, 2);
    len = (size_t)buf[0] << 8 | buf[1];
    read_exact(m->sw, buf + 2, len);
    write_all(m->cw, buf, 2 + len);
    pthread_join(t, NULL);
    server_join(&srv);
    cr_assert_not_null(d.l, "%s", d.err);
    cr_assert_not_null(srv.l, "%s", srv.err);
    m->c = d.l, m->s = srv.l;
}

static void mitm_close(mitm_t *m)
{
    link_close(&m->c);
    link_close(&m->s);
    close(m->cw);
    close(m->sw);
}

/* The client sends text as a frame; the middle takes its wire bytes. */
static size_t wire_frame(mitm_t *m, const char *text, uint8_t *out)
{
    link_reason_t why;
    size_t len = strlen(text);
    cr_assert_eq(link_send(m->c, text, len, WAIT_MS, &why), 0);
    read_exact(m->cw, out, 4 + len + NOISE_TAG);
    return 4 + len + NOISE_TAG;
}

Test(link, a_frame_arriving_byte_by_byte_comes_out_whole, .init = setup)
{
    mitm_t m;
    uint8_t w[128];
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    mitm(&m);
    size_t n = wire_frame(&m, "partial frames are kept", w);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(link_buffered(m.s), 0);
        cr_assert_eq(link_recv(m.s, &f, &len, 0, &why), 0, "byte %zu of %zu", i, n);
        write_all(m.sw, w + i, 1);
    }
    cr_assert_eq(link_recv(m.s, &f, &len, WAIT_MS, &why), 1, "%s", link_reason_name(why));
    cr_assert_eq(len, 23);
    cr_assert_eq(memcmp(f, "partial frames are kept", 23), 0);
    mitm_close(&m);
}

static link_reason_t deliver(mitm_t *m, const uint8_t *w, size_t n, int expect_frames)
{
    const uint8_t *f;
    size_t len;
    link_reason_t why = LINK_OK;
    write_all(m->sw, w, n);
    for (int i = 0; i < expect_frames; i++)
        cr_assert_eq(link_recv(m->s, &f, &len, WAIT_MS, &why), 1, "frame %d: %s", i, link_reason_name(why));
    cr_assert_eq(link_recv(m->s, &f, &len, WAIT_MS, &why), -1);
    return why;
}

Test(link, a_frame_altered_on_the_wire_does_not_decrypt, .init = setup)
{
    for (size_t at = 4; at < 4 + 5 + NOISE_TAG; at += 3) {   /* the ciphertext and the tag */
        mitm_t m;
        uint8_t w[64];
        mitm(&m);
        size_t n = wire_frame(&m, "hello", w);
        w[at] ^= 0x80;
        cr_assert_eq(deliver(&m, w, n, 0), LINK_DECRYPT, "byte %zu altered", at);
        const uint8_t *f;
        size_t len;
        link_reason_t why;
        cr_assert_eq(link_recv(m.s, &f, &len, 0, &why), -1, "a failed link stays failed");
        cr_assert_eq(why, LINK_DECRYPT);
        mitm_close(&m);
    }
}

Test(link, a_replayed_frame_does_not_decrypt, .init = setup)
{
    mitm_t m;
    uint8_t w[128];
    mitm(&m);
    size_t n = wire_frame(&m, "transfer 10", w);
    memcpy(w + n, w, n);
    cr_assert_eq(deliver(&m, w, 2 * n, 1), LINK_DECRYPT);
    mitm_close(&m);
}

Test(link, reordered_frames_do_not_decrypt, .init = setup)
{
    mitm_t m;
    uint8_t w1[64], w2[64], both[128];
    mitm(&m);
    size_t n1 = wire_frame(&m, "first", w1);
    size_t n2 = wire_frame(&m, "second", w2);
    memcpy(both, w2, n2);
    memcpy(both + n2, w1, n1);
    cr_assert_eq(deliver(&m, both, n1 + n2, 0), LINK_DECRYPT);
    mitm_close(&m);
}

Test(link, a_length_past_max_frame_is_oversize_before_any_body, .init = setup)
{
    static const uint32_t lens[] = {MAXF + NOISE_TAG + 1, 0xffffffffu, 0x80000000u};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        mitm_t m;
        uint8_t h[4] = {(uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16), (uint8_t)(lens[i] >> 8),
                        (uint8_t)lens[i]};
        mitm(&m);
        /* only the 4 bytes, the connection left open: waiting for the body would time out */
        cr_assert_eq(deliver(&m, h, 4, 0), LINK_OVERSIZE, "length %u", lens[i]);
        mitm_close(&m);
    }
    mitm_t m;   /* a frame shorter than a tag cannot be one */
    mitm(&m);
    cr_assert_eq(deliver(&m, (const uint8_t[]){0, 0, 0, 15}, 4, 0), LINK_DECRYPT);
    mitm_close(&m);
}

Test(link, sending_more_than_max_frame_is_refused_and_nothing_sent, .init = setup)
{
    link_t *c, *s;
    link_reason_t why;
    pair(&c, &s);
    cr_assert_null(link_frame(c, MAXF + 1, &why));
    cr_assert_eq(why, LINK_OVERSIZE);
    cr_assert_eq(link_send_frame(c, MAXF + 1, WAIT_MS, &why), -1);
    cr_assert_eq(why, LINK_OVERSIZE);
    cr_assert_eq(link_send(c, "ok", 2, WAIT_MS, &why), 0, "the link still works");
    const uint8_t *f;
    size_t len;
    cr_assert_eq(link_recv(s, &f, &len, WAIT_MS, &why), 1);
    cr_assert_eq(len, 2);
    link_close(&c);
    link_close(&s);
}

Test(link, closed_between_frames_is_closed_inside_one_is_io, .init = setup)
{
    mitm_t m;
    uint8_t w[64];
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    mitm(&m);
    size_t n = wire_frame(&m, "last", w);
    write_all(m.sw, w, n);
    shutdown(m.sw, SHUT_WR);
    cr_assert_eq(link_recv(m.s, &f, &len, WAIT_MS, &why), 1);
    cr_assert_eq(link_recv(m.s, &f, &len, WAIT_MS, &why), -1);
    cr_assert_eq(why, LINK_CLOSED);
    mitm_close(&m);

    for (size_t cut = 1; cut < n; cut += 5) {
        mitm(&m);
        n = wire_frame(&m, "last", w);
        write_all(m.sw, w, cut);
        shutdown(m.sw, SHUT_WR);
        cr_assert_eq(link_recv(m.s, &f, &len, WAIT_MS, &why), -1);
        cr_assert_eq(why, LINK_IO, "cut after %zu bytes: %s", cut, link_reason_name(why));
        mitm_close(&m);
    }
}

Test(link, recv_with_nothing_coming_returns_0_at_its_deadline, .init = setup)
{
    link_t *c, *s;
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    pair(&c, &s);
    cr_assert_eq(link_recv(s, &f, &len, 0, &why), 0);
    uint64_t t0 = clock_ms();
    cr_assert_eq(link_recv(s, &f, &len, 100, &why), 0);
    cr_assert_geq(clock_ms() - t0, 100);
    cr_assert_eq(link_send(c, "x", 1, WAIT_MS, &why), 0, "a timeout leaves the link usable");
    cr_assert_eq(link_recv(s, &f, &len, WAIT_MS, &why), 1);
    link_close(&c);
    link_close(&s);
}

Test(link, a_send_to_a_closed_peer_fails_without_sigpipe, .init = setup)
{
    link_t *c, *s;
    link_reason_t why;
    pair(&c, &s);
    link_close(&s);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)   /* the first may still be taken by the buffer */
        rc = link_send(c, "anyone?", 7, WAIT_MS, &why);
    cr_assert_eq(rc, -1);
    cr_assert_eq(why, LINK_IO, "a send cut by the peer's close: %s", link_reason_name(why));
    link_close(&c);
}

/* ---------------------------------------------------------------- bounded random input */
Test(link, random_and_garbled_handshakes_are_refused_with_a_reason, .init = setup)
{
    uint8_t goods[2][512], m[600];   /* a message 1 of each protocol (magic TRIBLNK1, TRIBLNKA) */
    size_t glens[2] = {make_msg1_as(goods[0], &ck, (const uint8_t *)"id", 2, 1, NOISE_CHACHAPOLY),
                       make_msg1_as(goods[1], &ck, (const uint8_t *)"id", 2, 1, NOISE_AESGCM)};
    for (int i = 0; i < 1500; i++) {
        const uint8_t *good = goods[i % 2];
        size_t glen = glens[i % 2], len;
        uint32_t kind = randombytes_uniform(4);
        if (kind == 0) {
            len = randombytes_uniform(500);
            randombytes_buf(m, len);
        } else {
            len = glen;
            memcpy(m, good, len);
            if (kind == 1 || kind == 3)
                m[randombytes_uniform((uint32_t)len)] ^= (uint8_t)(1 + randombytes_uniform(255));
            if (kind >= 2)
                len = randombytes_uniform((uint32_t)len);   /* cut short */
            if (kind == 3 && len > 10)
                m[8] = (uint8_t)randombytes_uniform(256), m[9] = (uint8_t)randombytes_uniform(256);
        }
        server_t srv;
        accept_raw(m, len, 1, WAIT_MS, &srv);
        cr_assert_null(srv.l, "garbled handshake %d accepted", i);
        cr_assert(srv.why == LINK_GARBAGE || srv.why == LINK_HANDSHAKE || srv.why == LINK_CLOSED ||
                      srv.why == LINK_IO,
                  "case %d: %s", i, link_reason_name(srv.why));
        cr_assert_neq(srv.err[0], '\0', "case %d: no text", i);
    }
}

Test(link, random_and_garbled_frames_are_refused_with_a_reason, .init = setup)
{
    uint8_t *m = malloc(70000);
    for (int i = 0; i < 600; i++) {
        link_t *c, *s;
        link_reason_t why;
        pair(&c, &s);
        size_t len;
        uint32_t kind = randombytes_uniform(3);
        if (kind == 0) {   /* random bytes */
            len = randombytes_uniform(3000);
            randombytes_buf(m, len);
        } else {           /* a real frame, taken off the wire, then altered or cut */
            size_t plen = randombytes_uniform(kind == 1 ? 65536 : 300);
            uint8_t *p = link_frame(c, plen, &why);
            randombytes_buf(p, plen);
            cr_assert_eq(link_send_frame(c, plen, WAIT_MS, &why), 0);
            len = 4 + plen + NOISE_TAG;
            size_t got = 0;
            while (got < len) {
                ssize_t r = recv(link_fd(s), m + got, len - got, 0);
                cr_assert_gt(r, 0);
                got += (size_t)r;
            }
            if (randombytes_uniform(2))
                m[randombytes_uniform((uint32_t)len)] ^= (uint8_t)(1 + randombytes_uniform(255));
            else
                len = randombytes_uniform((uint32_t)len);
        }
        size_t at = 0;
        while (at < len) {   /* the server reads as it goes: the socket buffer is finite */
            ssize_t w = send(link_fd(c), m + at, len - at, MSG_NOSIGNAL);
            if (w > 0)
                at += (size_t)w;
            else
                break;   /* the server gave up and closed: fine */
        }
        shutdown(link_fd(c), SHUT_WR);
        const uint8_t *f;
        size_t flen;
        int rc, frames = 0;
        while ((rc = link_recv(s, &f, &flen, WAIT_MS, &why)) == 1)
            frames++;
        cr_assert_eq(rc, -1, "case %d", i);
        cr_assert(why == LINK_DECRYPT || why == LINK_OVERSIZE || why == LINK_IO || why == LINK_CLOSED,
                  "case %d: %s", i, link_reason_name(why));
        cr_assert_eq(frames, 0, "case %d: a garbled frame decrypted", i);
        link_close(&c);
        link_close(&s);
    }
    free(m);
}

/* ---------------------------------------------------------------- bounds of the API */
Test(link, a_max_frame_past_link_frame_max_is_refused_at_dial_and_accept, .init = setup)
{
    static const size_t bad[] = {LINK_FRAME_MAX + 1, SIZE_MAX - 10, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fds[2];
        char err[300] = "";
        link_reason_t why = LINK_OK;
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        link_t *c = link_dial(fds[0], &ck, sk.pk, NULL, 0, bad[i], WAIT_MS, &why, err, sizeof err);
        cr_assert_null(c, "dial with max_frame %zu", bad[i]);
        cr_assert_eq(why, LINK_OVERSIZE, "%s: %s", link_reason_name(why), err);
        cr_assert(strstr(err, "at most"), "%s", err);
        uint8_t b;
        cr_assert_eq(recv(fds[1], &b, 1, 0), 0, "nothing sent, the descriptor closed");
        close(fds[1]);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        link_t *s = link_accept(fds[1], &sk, NULL, NULL, NULL, 0, bad[i], WAIT_MS, &why, err, sizeof err);
        cr_assert_null(s, "accept with max_frame %zu", bad[i]);
        cr_assert_eq(why, LINK_OVERSIZE, "%s: %s", link_reason_name(why), err);
        close(fds[0]);
    }
}

/* ---------------------------------------------------------------- error texts */

/* Waits (with a deadline) until thread tid has read every byte queued on fd and sleeps: its only
 * sleep is link's poll, so its next read is after a wait (an EAGAIN behind it). */
static void wait_reader_asleep(_Atomic pid_t *tid, int fd)
{
    uint64_t until = clock_ms() + WAIT_MS;
    for (;;) {
        int queued = -1;
        char path[64], stat[256] = "";
        pid_t t = *tid;
        if (t && ioctl(fd, FIONREAD, &queued) == 0 && queued == 0) {
            snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)t);
            FILE *f = fopen(path, "r");
            if (f) {
                if (!fgets(stat, sizeof stat, f))
                    stat[0] = '\0';
                fclose(f);
            }
            const char *end = strrchr(stat, ')');
            if (end && end[1] == ' ' && end[2] == 'S')
                return;
        }
        cr_assert_lt(clock_ms(), until, "the reader never waited for more");
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);   /* polling a condition */
    }
}

Test(link, a_handshake_cut_in_the_middle_says_so_not_a_stale_errno, .init = setup)
{
    int fds[2];
    server_t srv;
    uint8_t m[512];
    make_msg1(m, &ck, NULL, 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_start(&srv, fds[1], &sk);
    write_all(fds[0], m, 30);                  /* the magic, the length, 20 bytes of message 1 */
    wait_reader_asleep(&srv.tid, fds[1]);
    shutdown(fds[0], SHUT_WR);
    server_join(&srv);
    close(fds[0]);
    cr_assert_null(srv.l);
    cr_assert_eq(srv.why, LINK_IO, "%s: %s", link_reason_name(srv.why), srv.err);
    cr_assert(strstr(srv.err, "closed in the middle of a message"), "accept: %s", srv.err);
}

typedef struct {
    int fd;
    link_t *l;
    link_reason_t why;
    char err[300];
    _Atomic pid_t tid;
} raw_dial_t;

static void *raw_dial(void *arg)
{
    raw_dial_t *d = arg;
    d->tid = gettid();
    d->l = link_dial(d->fd, &ck, sk.pk, NULL, 0, MAXF, WAIT_MS, &d->why, d->err, sizeof d->err);
    return NULL;
}

Test(link, an_answer_cut_in_the_middle_says_so_not_a_stale_errno, .init = setup)
{
    int fds[2];
    uint8_t m[512];
    pthread_t t;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    raw_dial_t d = {.fd = fds[0]};
    cr_assert_eq(pthread_create(&t, NULL, raw_dial, &d), 0);
    read_exact(fds[1], m, 10);                 /* message 1, taken off the wire */
    read_exact(fds[1], m + 10, (size_t)m[8] << 8 | m[9]);
    uint8_t answer[12] = {0, NOISE_MSG2_MIN};  /* a length, then 10 bytes of the 48 announced */
    write_all(fds[1], answer, sizeof answer);
    wait_reader_asleep(&d.tid, fds[0]);
    shutdown(fds[1], SHUT_WR);
    pthread_join(t, NULL);
    close(fds[1]);
    cr_assert_null(d.l);
    cr_assert_eq(d.why, LINK_IO, "%s: %s", link_reason_name(d.why), d.err);
    cr_assert(strstr(d.err, "closed in the middle of a message"), "dial: %s", d.err);
}

/* ---------------------------------------------------------------- deadlines and signals */
Test(link, a_send_to_a_peer_that_never_reads_times_out_and_the_link_is_unusable_after, .init = setup)
{
    link_t *c, *s;
    link_reason_t why = LINK_OK;
    pair(&c, &s);
    uint64_t t0 = 0;
    int rc = 0, i;
    for (i = 0; i < 1000 && rc == 0; i++) {   /* the socket buffers take a few; then one waits */
        uint8_t *p = link_frame(c, MAXF, &why);
        cr_assert_not_null(p);
        memset(p, i, MAXF);
        t0 = clock_ms();
        rc = link_send_frame(c, MAXF, 300, &why);
    }
    uint64_t took = clock_ms() - t0;
    cr_assert_eq(rc, -1, "%d frames of 1 MiB taken by a peer that reads nothing", i);
    cr_assert_eq(why, LINK_TIMEOUT, "%s", link_reason_name(why));
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 300 + WAIT_MS, "took %llu ms", (unsigned long long)took);
    cr_assert_eq(link_send(c, "x", 1, 0, &why), -1, "a frame cut by the deadline: the link is unusable");
    cr_assert_eq(why, LINK_TIMEOUT);
    link_close(&c);
    link_close(&s);
}

Test(link, a_dial_to_a_silent_responder_times_out_within_its_deadline, .init = setup)
{
    int fds[2];
    char err[300] = "";
    link_reason_t why;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    uint64_t t0 = clock_ms();
    link_t *c = link_dial(fds[0], &ck, sk.pk, NULL, 0, MAXF, 300, &why, err, sizeof err);
    uint64_t took = clock_ms() - t0;
    cr_assert_null(c);
    cr_assert_eq(why, LINK_TIMEOUT, "%s: %s", link_reason_name(why), err);
    cr_assert(strstr(err, "timed out"), "%s", err);
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 300 + WAIT_MS, "took %llu ms", (unsigned long long)took);
    close(fds[1]);
}

/* A responder of an earlier build closes on the AES-GCM magic without a word: the dialer's error
 * says that may be why, and what to do meanwhile; a ChaChaPoly dialer's does not (no such cause). */
static void *close_after_reading(void *arg)
{
    int fd = *(int *)arg;
    char buf[512];
    (void)!recv(fd, buf, sizeof buf, 0);   /* the magic and message 1, then close: as a build would that knows only TRIBLNK1 */
    close(fd);
    return NULL;
}

Test(link, a_responder_closing_on_the_aesgcm_magic_names_the_cipher_as_a_cause, .init = setup)
{
    static const char *const suites[2] = {"aesgcm", "chachapoly"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(link_set_suite(suites[i]), 0);
        int fds[2];
        char err[400] = "";
        link_reason_t why;
        pthread_t t;
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        cr_assert_eq(pthread_create(&t, NULL, close_after_reading, &fds[1]), 0);
        link_t *c = link_dial(fds[0], &ck, sk.pk, NULL, 0, MAXF, WAIT_MS, &why, err, sizeof err);
        pthread_join(t, NULL);
        cr_assert_null(c);
        cr_assert_eq(why, LINK_HANDSHAKE, "%s: %s", link_reason_name(why), err);
        cr_assert(strstr(err, "closed the connection without answering"), "%s", err);
        if (i == 0)
            cr_assert(strstr(err, "--link-cipher chachapoly"), "%s", err);
        else
            cr_assert_null(strstr(err, "--link-cipher"), "%s", err);
    }
}

Test(link, a_frame_reflected_to_its_sender_does_not_decrypt, .init = setup)
{
    mitm_t m;
    uint8_t w[64];
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    mitm(&m);
    size_t n = wire_frame(&m, "hello", w);   /* the client's frame, sent back to the client */
    write_all(m.cw, w, n);
    cr_assert_eq(link_recv(m.c, &f, &len, WAIT_MS, &why), -1);
    cr_assert_eq(why, LINK_DECRYPT, "%s", link_reason_name(why));
    mitm_close(&m);
}

/* Signals without SA_RESTART every 2 ms at the thread in link_recv: each poll and recv returns
 * EINTR; the deadline holds (not restarted from scratch, not cut short) and frames still come. */
static atomic_int signals;
static void on_signal(int sig) { (void)sig; atomic_fetch_add(&signals, 1); }

Test(link, a_storm_of_signals_keeps_link_recvs_deadline_and_frames, .init = setup)
{
    link_t *c, *s;
    link_reason_t why;
    const uint8_t *f;
    size_t len;
    pair(&c, &s);
    struct sigaction sa = {.sa_handler = on_signal};   /* sa_flags 0: no SA_RESTART */
    cr_assert_eq(sigaction(SIGRTMIN, &sa, NULL), 0);
    timer_t tm;
    struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN};
    ev._sigev_un._tid = gettid();
    cr_assert_eq(timer_create(CLOCK_MONOTONIC, &ev, &tm), 0);
    struct itimerspec every = {.it_interval = {.tv_nsec = 2000000}, .it_value = {.tv_nsec = 2000000}};
    cr_assert_eq(timer_settime(tm, 0, &every, NULL), 0);
    uint64_t t0 = clock_ms();
    int rc = link_recv(s, &f, &len, 500, &why);
    uint64_t took = clock_ms() - t0;
    int during = atomic_load(&signals);
    cr_assert_eq(link_send(c, "storm", 5, WAIT_MS, &why), 0);
    int rc2 = link_recv(s, &f, &len, WAIT_MS, &why);
    timer_delete(tm);
    cr_assert_eq(rc, 0, "%s", link_reason_name(why));
    cr_assert_geq(took, 500);
    cr_assert_lt(took, 500 + WAIT_MS, "took %llu ms", (unsigned long long)took);
    cr_assert_geq(during, 3, "only %d signals arrived: no storm", during);
    cr_assert_eq(rc2, 1, "%s", link_reason_name(why));
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(f, "storm", 5), 0);
    link_close(&c);
    link_close(&s);
}

/* The magic is in the transcript: a message 1 whose Noise prologue left it out (as a peer would
 * whose magic a man in the middle rewrote to ours) does not read; with it, it does. */
Test(link, the_magic_is_bound_into_the_handshake, .init = setup)
{
    uint8_t m[512];
    server_t srv;
    size_t len = make_msg1_as(m, &ck, NULL, 0, 0, NOISE_CHACHAPOLY);
    accept_raw(m, len, 1, WAIT_MS, &srv);
    cr_assert_null(srv.l, "a transcript without the magic was accepted");
    cr_assert_eq(srv.why, LINK_HANDSHAKE, "%s: %s", link_reason_name(srv.why), srv.err);
    len = make_msg1_as(m, &ck, NULL, 0, 1, NOISE_CHACHAPOLY);
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_start(&srv, fds[1], &sk);
    write_all(fds[0], m, len);
    server_join(&srv);
    cr_assert_not_null(srv.l, "the magic and the federation as the prologue: %s", srv.err);
    link_close(&srv.l);
    close(fds[0]);
}

/* The handshake through a middle that notes the magic the dialer sent and, if to is given,
 * rewrites it to to (8 bytes). 1 when both ends came up (their sockets' far ends closed: only
 * link_close is left to do); else the responder's reason in *why. */
static int handshake_via(const char *to, char seen[9], link_reason_t *why, link_t **c, link_t **s)
{
    int a[2], b[2];
    uint8_t buf[512];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    dialer_t d = {.fd = a[0]};
    server_t srv;
    pthread_t t;
    server_start(&srv, b[1], &sk);
    cr_assert_eq(pthread_create(&t, NULL, dial_thread, &d), 0);
    read_exact(a[1], buf, 10);
    memcpy(seen, buf, 8);
    seen[8] = 0;
    if (to)
        memcpy(buf, to, 8);
    size_t len = (size_t)buf[8] << 8 | buf[9];
    read_exact(a[1], buf + 10, len);
    write_all(b[0], buf, 10 + len);
    server_join(&srv);
    ssize_t n = recv(b[0], buf, sizeof buf, 0);   /* message 2, or the responder's close */
    if (n > 0)
        write_all(a[1], buf, (size_t)n);
    shutdown(a[1], SHUT_RDWR);                     /* a dialer waiting for more gives up */
    pthread_join(t, NULL);
    close(a[1]);
    close(b[0]);
    *why = srv.why;
    *c = d.l, *s = srv.l;
    return d.l && srv.l;
}

/* The dialer's protocol is the one set (auto: AESGCM where the CPU runs AES in hardware), its
 * magic names it, the responder follows either, and frames of every size go both ways on each. */
Test(link, both_protocols_come_up_named_by_their_magic_and_carry_frames, .init = setup)
{
    static const struct {
        const char *name, *magic;
    } cases[] = {{"chachapoly", LINK_MAGIC}, {"aesgcm", LINK_MAGIC_AESGCM}, {"auto", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(link_set_suite(cases[i].name), 0);
        const char *want = cases[i].magic ? cases[i].magic
                                          : (aead_aes_in_hardware() ? LINK_MAGIC_AESGCM : LINK_MAGIC);
        char seen[9];
        link_reason_t why;
        link_t *c, *s;
        cr_assert(handshake_via(NULL, seen, &why, &c, &s), "%s: %s", cases[i].name, link_reason_name(why));
        cr_assert_str_eq(seen, want, "%s", cases[i].name);
        cr_assert_str_eq(link_suite_name(LINK_SUITE_AUTO),
                         !strcmp(want, LINK_MAGIC) ? "Noise_IK_25519_ChaChaPoly_SHA256"
                                                   : "Noise_IK_25519_AESGCM_SHA256");
        link_close(&c);   /* the middle is gone: frames on a direct pair */
        link_close(&s);
        pair(&c, &s);
        round_trips(c, s);
    }
    cr_assert_eq(link_set_suite("aes"), -1, "an unknown name is refused");
    cr_assert_eq(link_set_suite(""), 0);
}

/* A middle that rewrites the magic (a downgrade from AESGCM to ChaChaPoly, or the other way) makes
 * the responder run the other protocol under another prologue: the handshake fails there, as
 * LINK_HANDSHAKE, and the dialer gets no link. */
Test(link, a_magic_rewritten_to_the_other_protocol_fails_the_handshake, .init = setup)
{
    static const char *const from[2] = {"aesgcm", "chachapoly"};
    static const char *const to[2] = {LINK_MAGIC, LINK_MAGIC_AESGCM};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(link_set_suite(from[i]), 0);
        char seen[9];
        link_reason_t why;
        link_t *c, *s;
        cr_assert_not(handshake_via(to[i], seen, &why, &c, &s), "%s rewritten to %s came up", from[i], to[i]);
        cr_assert_null(s);
        cr_assert_null(c);
        cr_assert_eq(why, LINK_HANDSHAKE, "%s", link_reason_name(why));
    }
}

/* ---------------------------------------------------------------- memory */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();   /* every arena: the threads' too */
    return mi.uordblks + mi.hblkhd;
}

typedef struct {
    link_t *l;
    size_t len;
    int rc;
} big_send_t;

static void *send_big(void *arg)
{
    big_send_t *b = arg;
    link_reason_t why;
    uint8_t *p = link_frame(b->l, b->len, &why);
    b->rc = -1;
    if (p) {
        memset(p, 0x5a, b->len);
        b->rc = link_send_frame(b->l, b->len, WAIT_MS, &why);
    }
    return NULL;
}

/* A link that carried an 8 MiB frame each way holds its normal buffers afterwards, not 8 MiB
 * more on each side (a pooled link would keep them for as long as it idles). */
Test(link, buffers_grown_for_a_large_frame_shrink_back_once_it_is_gone, .init = setup)
{
    enum { BIG = 8 << 20 };
    int fds[2];
    server_t srv;
    char err[300];
    link_reason_t why;
    const uint8_t *f;
    size_t len;
    link_t *a, *b;   /* both ends with 16 MiB frames */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    srv = (server_t){.fd = fds[1], .keys = sk, .timeout_ms = WAIT_MS, .max_frame = 16 << 20};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, serve, &srv), 0);
    a = link_dial(fds[0], &ck, sk.pk, NULL, 0, 16 << 20, WAIT_MS, &why, err, sizeof err);
    pthread_join(t, NULL);
    b = srv.l;
    cr_assert_not_null(a, "%s", err);
    cr_assert_not_null(b, "%s", srv.err);
    cr_assert_eq(link_send(a, "warm", 4, WAIT_MS, &why), 0);   /* every buffer at its normal size */
    cr_assert_eq(link_recv(b, &f, &len, WAIT_MS, &why), 1);
    cr_assert_eq(link_send(b, "warm", 4, WAIT_MS, &why), 0);
    cr_assert_eq(link_recv(a, &f, &len, WAIT_MS, &why), 1);
    size_t base = heap_in_use();
    for (int dir = 0; dir < 2; dir++) {
        big_send_t bs = {.l = dir ? b : a, .len = BIG};
        link_t *rx = dir ? a : b;
        cr_assert_eq(pthread_create(&t, NULL, send_big, &bs), 0);
        cr_assert_eq(link_recv(rx, &f, &len, WAIT_MS, &why), 1, "%s", link_reason_name(why));
        cr_assert_eq(len, BIG);
        cr_assert_eq(f[0], 0x5a);
        cr_assert_eq(f[BIG - 1], 0x5a);
        pthread_join(t, NULL);
        cr_assert_eq(bs.rc, 0);
        cr_assert_eq(link_send(dir ? a : b, "ack", 3, WAIT_MS, &why), 0);   /* the receiver's next */
        cr_assert_eq(link_recv(dir ? b : a, &f, &len, WAIT_MS, &why), 1);  /* read empties it */
        cr_assert_eq(link_recv(rx, &f, &len, 0, &why), 0);
    }
    size_t after = heap_in_use();
    cr_assert_lt(after, base + (1 << 20), "the links hold %zu bytes more after two frames of %d",
                 after > base ? after - base : 0, BIG);
    link_close(&a);
    link_close(&b);
}

/* An end that takes small frames and sends large ones (the owner): a frame announced past its
 * receive limit is refused before its body, while it still sends frames up to max_frame. */
Test(link, a_receive_limit_refuses_larger_frames_and_sending_keeps_max_frame, .init = setup)
{
    link_t *c, *s;
    link_reason_t why;
    const uint8_t *f;
    size_t len;
    pair(&c, &s);
    link_set_recv_max(s, 1000);
    echo_t e = {.l = c};   /* the client echoes whatever the server sends */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, echo, &e), 0);
    cr_assert_eq(link_send(s, "q", 1, WAIT_MS, &why), 0);
    cr_assert_eq(link_recv(s, &f, &len, WAIT_MS, &why), 1, "%s", link_reason_name(why));
    uint8_t *p = link_frame(s, MAXF, &why);   /* a large frame out is fine */
    cr_assert_not_null(p);
    memset(p, 1, MAXF);
    cr_assert_eq(link_send_frame(s, MAXF, WAIT_MS, &why), 0, "%s", link_reason_name(why));
    cr_assert_eq(link_recv(s, &f, &len, WAIT_MS, &why), -1, "its echo is past the receive limit");
    cr_assert_eq(why, LINK_OVERSIZE, "%s", link_reason_name(why));
    link_close(&s);   /* the echo's send fails now: nobody reads the rest of it */
    pthread_join(t, NULL);
    link_close(&c);
}

/* ---------------------------------------------------------------- the send floor */

/* A peer that takes nothing owes a second a second: with a floor of 300 ms at 4 MiB/s and no
 * timeout of its own, the send fails LINK_SLOW, not before the 300 ms, and the link is unusable. */
Test(link, a_send_floor_fails_a_peer_that_reads_nothing_after_its_allowance, .init = setup)
{
    link_t *c, *s;
    link_reason_t why = LINK_OK;
    pair(&c, &s);
    link_send_floor(c, 300, 4 << 20);
    uint64_t t0 = clock_ms();
    int rc = 0, i;
    for (i = 0; i < 1000 && rc == 0; i++) {   /* the socket buffers take a few; then one waits */
        uint8_t *p = link_frame(c, MAXF, &why);
        cr_assert_not_null(p);
        memset(p, i, MAXF);
        rc = link_send_frame(c, MAXF, -1, &why);
    }
    uint64_t took = clock_ms() - t0;
    cr_assert_eq(rc, -1, "%d frames of 1 MiB taken by a peer that reads nothing", i);
    cr_assert_eq(why, LINK_SLOW, "%s", link_reason_name(why));
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 300 + WAIT_MS, "took %llu ms", (unsigned long long)took);
    cr_assert_eq(link_send(c, "x", 1, 0, &why), -1, "a frame cut by the floor: the link is unusable");
    link_close(&c);
    link_close(&s);
}

typedef struct {
    link_t *l;
    int n, got;
} drain_t;

static void *drain(void *arg)
{
    drain_t *d = arg;
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    while (d->got < d->n && link_recv(d->l, &f, &len, WAIT_MS, &why) == 1)
        d->got++;
    return NULL;
}

/* A peer that keeps up owes nothing: 32 frames of 1 MiB under a floor of 1 MiB/s with 2 s of
 * allowance all go (the sender waits on the reader now and then; every MiB taken pays a second). */
Test(link, a_send_floor_spares_a_peer_that_keeps_up, .init = setup)
{
    link_t *c, *s;
    link_reason_t why = LINK_OK;
    pair(&c, &s);
    link_send_floor(c, 2000, 1 << 20);
    drain_t d = {.l = s, .n = 32};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, drain, &d), 0);
    for (int i = 0; i < d.n; i++) {
        uint8_t *p = link_frame(c, MAXF, &why);
        cr_assert_not_null(p);
        memset(p, i, MAXF);
        cr_assert_eq(link_send_frame(c, MAXF, -1, &why), 0, "frame %d: %s", i, link_reason_name(why));
    }
    pthread_join(t, NULL);
    cr_assert_eq(d.got, d.n);
    link_close(&c);
    link_close(&s);
}

/* Between requests a link holds no frame's room (link_idle), on either end, and works on after. */
Test(link, an_idle_link_holds_no_buffers_and_works_on, .init = setup)
{
    link_t *c, *s;
    link_reason_t why = LINK_OK;
    const uint8_t *f;
    size_t len;
    pair(&c, &s);
    for (int dir = 0; dir < 2; dir++) {   /* a frame of MAXF / 2 each way */
        big_send_t bs = {.l = dir ? s : c, .len = MAXF / 2};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, send_big, &bs), 0);
        cr_assert_eq(link_recv(dir ? c : s, &f, &len, WAIT_MS, &why), 1, "%s", link_reason_name(why));
        pthread_join(t, NULL);
        cr_assert_eq(bs.rc, 0);
    }
    cr_assert_geq(link_held(c) + link_held(s), (size_t)MAXF, "the frames' room: %zu + %zu", link_held(c),
                  link_held(s));
    size_t heap = heap_in_use();
    link_idle(c);
    link_idle(s);
    cr_assert_eq(link_held(c), 0);
    cr_assert_eq(link_held(s), 0);
    cr_assert_leq(heap_in_use(), heap, "the heap grew");   /* (a sanitizer's allocator: mallinfo2 says 0) */
    round_trips(c, s);           /* closes both */
}
