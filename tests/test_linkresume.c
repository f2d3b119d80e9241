/* tests/test_linkresume.c - a routed read whose data link is lost mid-read (gossip/reads_link.c
 * resume): the relay's reader in this process against a scripted owner on loopback (a thread
 * speaking gossip/link.h and the link server's frames), which answers each connection's request
 * as its script says and closes the link: the read goes on from its next record over a new link,
 * a new stream with the same token and the limit left, at most 3 times; a link that cannot be had
 * again, the owner's refusal, another schema or another projection end it, each counted. The
 * paused client, the owner killed and a token revoked between the cut and the resume are real
 * agents' (tests/test_linkread.c). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "gossip/identity.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/reads_link.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"

TestSuite(linkresume, .timeout = 60);

#define PRODUCT "payments/ledger"
#define TOKEN "trib1.the-clients-token"
#define PER_BATCH 10
#define CONNS_MAX 8

/* What the owner does with a connection's request. */
typedef enum {
    A_END = 0,      /* no more connections: the listening socket is closed (a dial is refused) */
    A_CUT,          /* a batch of PER_BATCH records from the seq asked, then the link closes */
    A_FINISH,       /* the records left of the limit asked, the last batch done */
    A_SCHEMA,       /* as A_CUT, of another schema version */
    A_FIELDS,       /* as A_CUT, projected to other fields */
    A_REFUSE,       /* refused: 401 token_revoked */
    A_BUSY,         /* LINK_REFUSE busy (over --link-max) */
} act_t;

typedef struct {
    int lfd;
    link_keys_t keys;
    act_t script[CONNS_MAX];
    pthread_t th;
    atomic_int accepted;           /* connections taken (before their handshake) */
    uint64_t id[CONNS_MAX], from[CONNS_MAX], limit[CONNS_MAX];
    char token[CONNS_MAX][64];
    long at[CONNS_MAX];            /* h_now_ms when the request came */
} owner_t;

static identity_t owner_id, relay_id;

static int allow_any(void *ctx, const uint8_t pk[32], const uint8_t *hello, size_t len, char *err, size_t errlen)
{
    (void)ctx, (void)pk, (void)hello, (void)len, (void)err, (void)errlen;
    return 0;
}

static void relay_keys(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    (void)ctx;
    memcpy(id, relay_id.pk, 32);
    memcpy(pk, relay_id.curve_pk, 32);
    memcpy(sk, relay_id.curve_sk, 32);
}

/* A batch frame as the link server's emit makes it: the other fields, then the lines (field 9) last. */
static void send_batch(link_t *l, const Trib__ReadBatch *b)
{
    Trib__ReadBatch h = *b;
    h.lines = (ProtobufCBinaryData){0, NULL};
    size_t hlen = trib__read_batch__get_packed_size(&h), klen = 0;
    uint8_t key[11];
    if (b->lines.len) {
        key[klen++] = 9 << 3 | 2;
        for (uint64_t v = b->lines.len; v; v >>= 7)
            key[klen++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    }
    size_t n = 1 + hlen + klen + b->lines.len;
    link_reason_t why;
    uint8_t *f = link_frame(l, n, &why);
    if (!f)
        return;
    f[0] = LINK_BATCH;
    trib__read_batch__pack(&h, f + 1);
    memcpy(f + 1 + hlen, key, klen);
    if (b->lines.len)
        memcpy(f + 1 + hlen + klen, b->lines.data, b->lines.len);
    link_send_frame(l, n, 5000, &why);
}

/* Answers request q on l as act says. */
static void answer(link_t *l, const Trib__ReadRequest *q, act_t act)
{
    if (act == A_BUSY) {
        uint8_t out[LINK_REFUSE_LEN];
        link_refusal(out, LINK_REFUSE_BUSY, LINK_RETRY_MS);
        link_reason_t why;
        link_send(l, out, sizeof out, 5000, &why);
        return;
    }
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.stream_id = q->stream_id;
    b.batch_no = 1;
    if (act == A_REFUSE) {
        b.done = 1;
        b.status = 401;
        b.error_kind = "token_revoked";
        b.error = "token t1 of eve@growth was revoked";
        send_batch(l, &b);
        return;
    }
    uint64_t n = act == A_FINISH ? q->limit : PER_BATCH;
    char *lines = malloc(n * 24 + 1), *p = lines;
    for (uint64_t i = 0; i < n; i++)
        p += sprintf(p, "{\"seq\":%" PRIu64 "}\n", q->from_seq + i);
    b.first_seq = q->from_seq;
    b.last_seq = 1000;
    b.lines = (ProtobufCBinaryData){(size_t)(p - lines), (uint8_t *)lines};
    b.schema_seq = act == A_SCHEMA ? 6 : 5;
    b.schema_version = act == A_SCHEMA ? "2.0.0" : "1.0.0";
    b.fields_key = act == A_FIELDS ? "=seq" : "";
    b.done = act == A_FINISH;
    send_batch(l, &b);
    free(lines);
}

/* The owner: each connection's handshake, its request and the script's answer, then the link
 * closes; bounded (a connection waited for 15 s at most). */
static void *owner_run(void *arg)
{
    owner_t *o = arg;
    for (int i = 0; i < CONNS_MAX && o->script[i] != A_END; i++) {
        struct pollfd p = {.fd = o->lfd, .events = POLLIN};
        int fd = poll(&p, 1, 15000) == 1 ? accept(o->lfd, NULL, NULL) : -1;
        if (fd < 0)
            break;
        atomic_fetch_add(&o->accepted, 1);
        link_reason_t why;
        char err[200];
        link_t *l = link_accept(fd, &o->keys, allow_any, NULL, NULL, 0, LINK_MAX_FRAME, 5000, &why, err, sizeof err);
        const uint8_t *f;
        size_t len;
        Trib__ReadRequest *q = l && link_recv(l, &f, &len, 10000, &why) == 1 && len > 1 && f[0] == LINK_REQ
                                   ? trib__read_request__unpack(NULL, len - 1, f + 1)
                                   : NULL;
        if (q) {
            o->at[i] = h_now_ms();
            o->id[i] = q->stream_id;
            o->from[i] = q->from_seq;
            o->limit[i] = q->limit;
            snprintf(o->token[i], sizeof o->token[i], "%.*s", (int)q->token.len, (const char *)q->token.data);
            answer(l, q, o->script[i]);
            trib__read_request__free_unpacked(q, NULL);
        }
        if (i + 1 == CONNS_MAX || o->script[i + 1] == A_END) {
            close(o->lfd);       /* before the link closes: a dial after it is refused */
            o->lfd = -1;
        }
        link_close(&l);
    }
    if (o->lfd >= 0)
        close(o->lfd);
    return NULL;
}

static linkpool_t *pool;
static owner_t own;
static char owner_addr[64];

/* The owner listening with script (A_END-ended), and a relay's pool. */
static void start(const act_t *script)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&owner_id), fx_identity(&relay_id);
    uint8_t prologue[32];
    link_prologue_open(NULL, prologue);
    memset(&own, 0, sizeof own);
    for (int i = 0; i < CONNS_MAX && script[i] != A_END; i++)
        own.script[i] = script[i];
    int port = h_free_port();
    cr_assert_gt(port, 0);
    own.lfd = h_listen(port, 8);
    cr_assert_geq(own.lfd, 0, "cannot listen on 127.0.0.1:%d", port);
    memcpy(own.keys.pk, owner_id.curve_pk, 32);
    memcpy(own.keys.sk, owner_id.curve_sk, 32);
    memcpy(own.keys.prologue, prologue, 32);
    cr_assert_eq(pthread_create(&own.th, NULL, owner_run, &own), 0);
    snprintf(owner_addr, sizeof owner_addr, "127.0.0.1:%d", port);
    linkpool_opts_t po = {.keys = relay_keys, .open_timeout_ms = 5000, .stall_ms = 10000};
    memcpy(po.prologue, prologue, 32);
    pool = linkpool_new(&po);
    cr_assert_not_null(pool);
}

static void stop(void)
{
    linkpool_shutdown(pool);
    pthread_join(own.th, NULL);  /* its script is done (or it waited 15 s for a connection) */
    linkpool_free(&pool);
    identity_wipe(&owner_id), identity_wipe(&relay_id);
}

static lread_t *open_read(uint64_t from, uint64_t limit)
{
    reads_open_t o = {.product = PRODUCT, .from = from, .limit = limit, .owner_id = owner_id.pk,
                      .owner_addr = "127.0.0.1:7470", .owner_desc = "the test owner", .token = TOKEN,
                      .token_len = strlen(TOKEN)};
    lread_t *rd = NULL;
    uint64_t last = 0;
    int status = 0;
    char kind[32] = "", err[300] = "";
    int rc = lread_open(pool, &o, owner_addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err);
    cr_assert_eq(rc, 1, "the read did not open over the link (%d): %d %s: %s", rc, status, kind, err);
    return rd;
}

/* The read's outcome: what lread_next ended with and the records before it. */
typedef struct {
    long end;
    char kind[64], err[600];
    uint64_t first, next, records;   /* seqs seen: first, and the one after the last */
    int in_order;
    int idle_calls_dialled;          /* a call that may not wait made a connection */
} outcome_t;

/* Reads rd to its end, as node/stream.c does: first a call that may not wait (an HTTP pool
 * thread's), and only when that has nothing one that may (its waiter's). */
static void read_all(lread_t *rd, outcome_t *out)
{
    memset(out, 0, sizeof *out);
    out->in_order = 1;
    static char buf[1 << 16];
    char line[64];
    size_t ll = 0;
    long t0 = h_now_ms();
    for (;;) {
        int conns = atomic_load(&own.accepted);
        long n = lread_next(rd, buf, sizeof buf, 0, out->kind, sizeof out->kind, out->err, sizeof out->err);
        if (n == 0) {
            out->idle_calls_dialled += atomic_load(&own.accepted) != conns;
            n = lread_next(rd, buf, sizeof buf, 1000, out->kind, sizeof out->kind, out->err, sizeof out->err);
        }
        if (n < 0) {
            out->end = n;
            return;
        }
        cr_assert_lt(h_now_ms() - t0, 30000, "the read did not end within 30 s");
        for (long i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                cr_assert_lt(ll, sizeof line - 1, "a line longer than a record");
                line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ll = 0;
            uint64_t seq = 0;
            cr_assert_eq(sscanf(line, "{\"seq\":%" SCNu64 "}", &seq), 1, "not a record: %s", line);
            if (!out->records)
                out->first = seq;
            else if (seq != out->next)
                out->in_order = 0;
            out->next = seq + 1;
            out->records++;
        }
    }
}

/* The owner listening with script (A_END-ended) and a read of from.. (limit 0: no limit) through
 * the relay's pool to it, read to its end into *o; the read left in *rd when rd is non-NULL (to
 * lread_close), else closed. */
static void read_scripted(const act_t *script, uint64_t from, uint64_t limit, outcome_t *o, lread_t **rd)
{
    start(script);
    lread_t *r = open_read(from, limit);
    read_all(r, o);
    if (rd)
        *rd = r;
    else
        lread_close(&r);
}

static double metric_of(const char *series)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    linkpool_metrics(pool, f);
    fclose(f);
    double v = -1;
    size_t sl = strlen(series);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, series, sl) && line[sl] == ' ')
            v = strtod(line + sl + 1, NULL);
    free(text);
    return v;
}

#define RESUMED "trib_read_link_resumed_total"
#define FAILED(r) "trib_read_link_resume_failed_total{reason=\"" r "\"}"

Test(linkresume, a_read_whose_link_is_lost_goes_on_from_its_next_record_over_a_new_link)
{
    static const act_t script[] = {A_CUT, A_CUT, A_FINISH, A_END};
    outcome_t o;
    lread_t *rd;
    read_scripted(script, 5, 100, &o, &rd);
    cr_assert_eq(o.end, READS_END, "the read ended with %ld: %s: %s", o.end, o.kind, o.err);
    cr_assert_eq(o.records, 100, "%" PRIu64 " records", o.records);
    cr_assert(o.in_order && o.first == 5 && o.next == 105, "records %" PRIu64 "..%" PRIu64 " not each once in order",
              o.first, o.next - 1);
    cr_assert_eq(lread_records(rd), 100);
    cr_assert_eq(o.idle_calls_dialled, 0, "a call that may not wait dialled");
    lread_close(&rd);
    cr_assert_eq(atomic_load(&own.accepted), 3);
    /* each request: a new stream, from the next record, the limit left, the same token */
    static const uint64_t from[] = {5, 15, 25}, limit[] = {100, 90, 80};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(own.from[i], from[i], "request %d from %" PRIu64, i, own.from[i]);
        cr_assert_eq(own.limit[i], limit[i], "request %d limit %" PRIu64, i, own.limit[i]);
        cr_assert_str_eq(own.token[i], TOKEN, "request %d", i);
        for (int j = 0; j < i; j++)
            cr_assert_neq(own.id[i], own.id[j], "requests %d and %d are one stream", j, i);
    }
    cr_assert_eq(metric_of(RESUMED), 2);
    cr_assert_eq(metric_of(FAILED("limit")) + metric_of(FAILED("link")) + metric_of(FAILED("refused")), 0);
    cr_assert_eq(metric_of("trib_read_routed_total{path=\"link\"}"), 1, "a resume counted as another read");
    stop();
}

Test(linkresume, a_read_without_a_limit_asks_again_without_one)
{
    static const act_t script[] = {A_CUT, A_REFUSE, A_END};
    outcome_t o;
    read_scripted(script, 0, 0, &o, NULL);
    cr_assert_eq(own.from[0], 1);
    cr_assert_eq(own.from[1], 11);
    cr_assert_eq(own.limit[0] + own.limit[1], 0, "a limit was made up");
    stop();
}

Test(linkresume, a_link_lost_more_than_three_times_ends_the_read_naming_the_seq_to_read_again_from)
{
    static const act_t script[] = {A_CUT, A_CUT, A_CUT, A_CUT, A_END};   /* a fifth dial would be refused */
    outcome_t o;
    read_scripted(script, 5, 0, &o, NULL);
    cr_assert_eq(o.end, READS_FAILED, "the read ended with %ld", o.end);
    cr_assert_str_eq(o.kind, "owner_lost", "%s: %s", o.kind, o.err);
    cr_assert(strstr(o.err, "read again from seq 45") && strstr(o.err, "lost 4 times"), "%s", o.err);
    cr_assert(o.in_order && o.first == 5 && o.records == 40, "%" PRIu64 " records from %" PRIu64, o.records, o.first);
    cr_assert_eq(atomic_load(&own.accepted), 4, "a fourth resume");
    /* not more than one a second (bounds from below: a loaded machine only spaces them more) */
    cr_assert_geq(own.at[2] - own.at[0], 1000, "resumed twice within %ld ms", own.at[2] - own.at[0]);
    cr_assert_geq(own.at[3] - own.at[0], 2000, "resumed three times within %ld ms", own.at[3] - own.at[0]);
    cr_assert_eq(metric_of(RESUMED), 3);
    cr_assert_eq(metric_of(FAILED("limit")), 1);
    stop();
}

Test(linkresume, a_resume_that_finds_the_owners_port_closed_ends_the_read_and_backs_off)
{
    static const act_t script[] = {A_CUT, A_END};
    outcome_t o;
    read_scripted(script, 0, 50, &o, NULL);
    cr_assert_eq(o.end, READS_FAILED);
    cr_assert_str_eq(o.kind, "owner_lost", "%s: %s", o.kind, o.err);
    cr_assert(strstr(o.err, "read again from seq 11") && strstr(o.err, "lost 1 time "), "%s", o.err);
    cr_assert_eq(o.records, 10);
    cr_assert_eq(metric_of(FAILED("link")), 1);
    cr_assert_eq(metric_of("trib_link_dial_failed_total{reason=\"connect\"}"), 1);
    cr_assert_eq(metric_of(RESUMED), 0);
    /* backed off: the next read goes over the peer transport without a dial */
    reads_open_t ro = {.product = PRODUCT, .owner_id = owner_id.pk, .owner_addr = "127.0.0.1:7470"};
    lread_t *rd = NULL;
    uint64_t last;
    int status = 0;
    char kind[32], err[300];
    cr_assert_eq(lread_open(pool, &ro, owner_addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err), 0);
    cr_assert_eq(metric_of("trib_link_dial_failed_total{reason=\"connect\"}"), 1, "dialled again at once");
    stop();
}

Test(linkresume, an_owner_over_its_link_limit_at_the_resume_ends_the_read)
{
    static const act_t script[] = {A_CUT, A_BUSY, A_END};
    outcome_t o;
    read_scripted(script, 0, 0, &o, NULL);
    cr_assert_eq(o.end, READS_FAILED);
    cr_assert_str_eq(o.kind, "owner_lost");
    cr_assert(strstr(o.err, "read again from seq 11") && strstr(o.err, "link limit"), "%s", o.err);
    cr_assert_eq(metric_of(FAILED("link")), 1);
    cr_assert_eq(metric_of("trib_link_dial_failed_total{reason=\"busy\"}"), 1);
    stop();
}

Test(linkresume, the_owners_refusal_of_the_resumed_read_ends_it_with_the_refusal)
{
    static const act_t script[] = {A_CUT, A_REFUSE, A_END};
    outcome_t o;
    read_scripted(script, 0, 0, &o, NULL);
    cr_assert_eq(o.end, READS_FAILED);
    cr_assert_str_eq(o.kind, "token_revoked", "%s: %s", o.kind, o.err);
    cr_assert_eq(o.records, 10);
    cr_assert_eq(metric_of("trib_link_pooled"), 1, "the owner ended the stream: its link goes back to the pool");
    cr_assert_eq(metric_of(FAILED("refused")), 1);
    cr_assert_eq(metric_of(RESUMED), 0);
    stop();
}

Test(linkresume, another_schema_after_the_resume_ends_the_read_as_a_schema_change)
{
    static const act_t script[] = {A_CUT, A_SCHEMA, A_END};
    outcome_t o;
    lread_t *rd;
    read_scripted(script, 0, 0, &o, &rd);
    cr_assert_eq(o.end, READS_SCHEMA, "the read ended with %ld: %s: %s", o.end, o.kind, o.err);
    cr_assert_eq(o.records, 10, "records of two schemas in one read");
    uint64_t at = 0, mseq = 0;
    char v[64];
    cr_assert_eq(lread_schema(rd, 1, &at, &mseq, v, sizeof v), 0);
    cr_assert_eq(at, 11);
    cr_assert_eq(mseq, 6);
    cr_assert_str_eq(v, "2.0.0");
    cr_assert_eq(lread_schema(rd, 0, &at, &mseq, v, sizeof v), 0);
    cr_assert_str_eq(v, "1.0.0");
    lread_close(&rd);
    stop();
}

Test(linkresume, another_projection_after_the_resume_ends_the_read)
{
    static const act_t script[] = {A_CUT, A_FIELDS, A_END};
    outcome_t o;
    read_scripted(script, 0, 0, &o, NULL);
    cr_assert_eq(o.end, READS_FAILED);
    cr_assert_str_eq(o.kind, "grant_changed", "%s: %s", o.kind, o.err);
    cr_assert(strstr(o.err, "read again from seq 11"), "%s", o.err);
    cr_assert_eq(o.records, 10);
    cr_assert_eq(metric_of(FAILED("refused")), 1);
    stop();
}
