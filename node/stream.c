/* node/stream.c - see stream.h.
 *
 * Threads: libmicrohttpd's pool threads call the readers; no reader blocks. A local reader with
 * nothing to send joins the waiting list and suspends its connection (under wait_mu, so nothing
 * resumes a connection that is not suspended yet); the waker thread resumes it when the node's
 * append_gen moves (node_notify), when its client closed (checked each second: a suspended
 * connection is not watched by libmicrohttpd), and when the node stops. A routed reader with
 * nothing to send is parked with its own waiter thread, which blocks on the relay (it has no
 * wake-up hook to share one thread) and resumes the connection when bytes, the end or an error
 * arrive; gossip_reads_shutdown ends those at stop. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/log.h"
#include "node/grants.h"
#include "node/changes.h"
#include "node/metrics.h"
#include "node/auth.h"
#include "node/redirect.h"
#include "node/stream.h"
#include "storage/pager.h"
#include "storage/project.h"

#define ROUTED_BUF (64 * 1024) /* what a routed stream's waiter takes from the relay at once */
#define ROUTED_BLOCK (256 * 1024) /* a large routed response's chunks: the relay's batches are up to
                                     1 MiB (a data link's), and each chunk is a callback and a send;
                                     libmicrohttpd zeroes the block for every response, so a small
                                     read (a limit of at most SMALL_READ) keeps 64 KiB */
#define SMALL_READ 1000
#define WHOLE_MAX (64 * 1024) /* a non-live answer that fits goes out whole: its length in the head,
                                 head and body in one write (see gather) */
#define GONE_CHECK_MS 1000  /* suspended clients are checked for a closed connection this often */

/* NDJSON reader state: pages of records copied out of short read transactions (local), or a
 * routed read relayed from the owner (rd). buf also carries the final error line. */
typedef struct stream {
    node_t *a;
    char id[STORE_ID_MAX];
    uint64_t next, remaining;  /* next seq to read; records still allowed (UINT64_MAX: no limit) */
    int live;
    gossip_read_t *rd;         /* routed: the read through the owner */
    struct MHD_Connection *conn;
    int ended;                 /* the error line is in buf: end after it */
    int line_start;            /* routed: the bytes handed out so far end with a whole record */
    int end_retired;           /* routed range read for a stream of a retired product: ends "retired" */
    int counted;               /* in live_open (a live stream) */
    char *buf;
    size_t len, off, cap;
    char *pre;                 /* taken before the response was queued (gather): handed out first */
    size_t pre_len, pre_off;
    /* suspended (under wait_mu): waiting for records, in the waiting list */
    struct stream *wnext, *wprev;
    int waiting;
    uint64_t wait_gen;         /* local: the node's append_gen when nothing was left to read */
    /* routed: the waiter thread that owns rd while the connection is suspended (wait_mu) */
    pthread_t waiter;
    pthread_cond_t park_cv;
    int has_waiter, parked, quit;
    int gone;                  /* the waker saw the client close its connection */
    grants_read_t *grant;      /* local read of confidential/restricted data: projection, audit */
    uint64_t served;           /* records handed out (for the audit) */
    uint64_t routed_records;   /* routed: the relay's record count already added to the metrics */
    /* local: the schema the response's X-Trib-Schema-Version names (the manifest's catalog seq,
     * 0: records stored before schema epochs were kept); a record validated against another
     * manifest ends the response with a "schema_changed" line (see schema_bound) */
    uint64_t schema_mseq;
    char schema_version[STORE_VERSION_MAX + 1];
    /* the catalog change feed (node/changes.c) instead of records: next is the feed's seq */
    int feed;
    char fdomain[64], fproduct[STORE_ID_MAX];
    char *token;               /* local live: the caller's token, checked again before each page */
    size_t token_len;
} reader_t;

stream_t *stream_new(node_t *a, struct MHD_Connection *c, const char *id, uint64_t from, uint64_t limit, int live,
                     gossip_read_t *rd)
{
    reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->a = a;
    r->conn = c;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->next = from ? from : 1;
    r->remaining = limit ? limit : UINT64_MAX;
    r->live = live;
    r->line_start = 1;
    r->rd = rd;
    return r;
}

void stream_end_retired(stream_t *s)
{
    s->end_retired = 1;
}

stream_t *stream_new_feed(node_t *a, struct MHD_Connection *c, uint64_t from, int live, const char *domain,
                          const char *product)
{
    reader_t *r = stream_new(a, c, "", from, 0, live, NULL);
    if (!r)
        return NULL;
    r->feed = 1;
    snprintf(r->fdomain, sizeof r->fdomain, "%s", domain ? domain : "");
    snprintf(r->fproduct, sizeof r->fproduct, "%s", product ? product : "");
    return r;
}

int stream_set_token(stream_t *s, const char *token, size_t len)
{
    if (!token || !len)
        return 0;
    if (!(s->token = malloc(len)))
        return -1;
    memcpy(s->token, token, len);
    s->token_len = len;
    return 0;
}

static int reader_suspend(reader_t *r, uint64_t gen);
static int wait_closed_now(void);
static void wait_unlink(reader_t *r);
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static int wait_closed;         /* the node is stopping: nobody suspends any more (wait_mu) */

/* Copies out what buf holds from off. */
static ssize_t reader_take(reader_t *r, char *out, size_t max)
{
    size_t n = r->len - r->off < max ? r->len - r->off : max;
    memcpy(out, r->buf + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

/* True when the client closed its connection: an idle live read notices it without writing
 * (libmicrohttpd only would on the next write), so a relayed upstream is not held for nobody. */
static int client_gone(const reader_t *r)
{
    const union MHD_ConnectionInfo *ci =
        r->conn ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Puts the line {"error": kind, "detail": detail} in r->buf and marks the read ended. */
static void reader_error_line(reader_t *r, const char *kind, const char *detail)
{
    r->len = r->off = 0;
    r->ended = 1;
    json_t *j = json_pack("{s:s,s:s}", "error", kind, "detail", detail);
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!line)
        return;
    size_t n = strlen(line);
    char *b = n + 1 <= r->cap ? r->buf : realloc(r->buf, n + 1);
    if (b) {
        if (b != r->buf) {
            r->buf = b;
            r->cap = n + 1;
        }
        memcpy(r->buf, line, n);
        r->buf[n] = '\n';
        r->len = n + 1;
    }
    free(line);
}

#define PAGE_RECORDS 4096
#define PAGE_BYTES (256 * 1024)

/* A read relying on a grant goes on only while the grant does: each page checks it again (a
 * revocation on this node wakes suspended readers through node_notify), so a revoked or expired
 * grant, one that ended with this node's certificate, or grants that cannot be read end the read
 * with an error line saying which. 1 when it may go on. */
static int grant_holds(reader_t *r)
{
    if (!r->grant || !r->grant->allowed || !r->grant->grant.grant_id[0])
        return 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    char detail[512];
    const char *kind = grants_ended(r->a, r->grant->subject, r->id, &r->grant->grant, now, detail, sizeof detail);
    if (!kind)
        return 1;
    reader_error_line(r, kind, detail);
    return 0;
}

/* Schema epochs (storage/history.c): records are stored with the manifest they were validated
 * against, and one response carries records of one schema version only, the one its
 * X-Trib-Schema-Version header names. */
typedef struct {
    uint64_t from, at_mseq;     /* the epoch holding `from` */
    uint64_t next_start, next_mseq;   /* the first epoch starting after from (0: none) */
    int calls;
} epochs_t;

static int epoch_cb(void *ctx, uint64_t first, uint64_t mseq)
{
    epochs_t *e = ctx;
    if (e->calls++ == 0) {
        e->at_mseq = mseq;
        return 0;
    }
    e->next_start = first;
    e->next_mseq = mseq;
    return 1;
}

/* The version of product id's manifest at catalog seq mseq, or "unknown". */
static void version_of(node_t *a, const char *id, uint64_t mseq, char out[STORE_VERSION_MAX + 1])
{
    store_version_t v;
    if (mseq && store_history_get(a->st, id, mseq, &v) == 0)
        snprintf(out, STORE_VERSION_MAX + 1, "%s", v.version);
    else
        snprintf(out, STORE_VERSION_MAX + 1, "unknown");
}

/* Ends the response with the "schema_changed" line: records from seq start on were validated
 * against version v, not the one the response's header names (local and routed reads alike). */
static void schema_changed_line(reader_t *r, uint64_t start, const char *v)
{
    char detail[1024];
    snprintf(detail, sizeof detail,
             "records of %s from seq %" PRIu64 " on were validated against version %s, not %s (this "
             "response's X-Trib-Schema-Version); read again from seq %" PRIu64 " to get them with their schema",
             r->id, start, v, r->schema_version, start);
    reader_error_line(r, "schema_changed", detail);
}

/* How many records from r->next stay in the response's schema: lim, fewer when an epoch of
 * another manifest starts within them, 0 when r->next is in one (then r->buf holds the
 * "schema_changed" line and the read ended). */
static uint64_t schema_bound(reader_t *r, uint64_t lim)
{
    epochs_t e = {.from = r->next};
    uint64_t last = 0;
    if (store_records_last(r->a->st, r->id, &last) != 0 || last < r->next)
        return lim;   /* nothing stored there yet (or the page read reports the failure) */
    if (store_record_epochs(r->a->st, r->id, r->next, r->next + lim - 1, epoch_cb, &e) != 0)
        return lim;
    uint64_t at = e.at_mseq, start = r->next;
    if (at == r->schema_mseq) {
        if (e.next_start == 0 || e.next_mseq == r->schema_mseq)
            return lim;
        if (e.next_start > r->next)
            return e.next_start - r->next;
        at = e.next_mseq;
        start = e.next_start;
    }
    char v[STORE_VERSION_MAX + 1];
    version_of(r->a, r->id, at, v);
    schema_changed_line(r, start, v);
    return 0;
}

static int feed_hides(void *viewer, const char *product) { return auth_viewer_hides(viewer, product); }

static long page_fill(reader_t *r)
{
    r->len = r->off = 0;
    if (!grant_holds(r))
        return 1;   /* the error line is in buf */
    if (r->remaining == 0)
        return 0;
    if (r->feed) {
        size_t len = 0;
        auth_viewer_t v;   /* verified again each page: a token expires, a grant ends */
        auth_viewer_token(&v, r->a, r->token, r->token_len);
        long n = changes_page(r->a, r->next, 256, r->fdomain, r->fproduct, feed_hides, &v, &r->buf, &len, &r->cap,
                              &r->next);
        r->len = n > 0 ? len : 0;
        return n;
    }
    uint64_t lim = r->remaining < PAGE_RECORDS ? r->remaining : PAGE_RECORDS;
    if (!r->rd && (lim = schema_bound(r, lim)) == 0)
        return -2;   /* the schema_changed line is in buf */
    store_page_t pg = {.buf = r->buf, .cap = r->cap};
    long n = store_page_read(r->a->st, r->id, r->next, lim, PAGE_BYTES, &pg);
    r->buf = pg.buf;
    r->cap = pg.cap;
    if (n <= 0)
        return n;
    r->len = pg.len;
    r->next = pg.next;
    if (r->remaining != UINT64_MAX)
        r->remaining -= (uint64_t)n;
    metrics_records_read((uint64_t)n);
    if (r->grant) {   /* the owner projects before records leave it (node/grants.h) */
        const char *fb[ACCESS_FIELDS_MAX + 1];
        const char *const *f = grants_fields(&r->grant->grant, fb);
        size_t m = f ? project_ndjson(r->buf, r->len, f) : r->len;
        if (m == (size_t)-1) {
            reader_error_line(r, "internal", "out of memory while projecting records to the grant's fields");
            return 1;
        }
        r->len = m;
        r->served += (uint64_t)n;
    }
    return n;
}

/* The node is stopping under a live stream: say so, since a clean end would look like the end of
 * the data to a client that then does not resume. */
static void reader_stopping(reader_t *r)
{
    reader_error_line(r, "shutting_down", r->feed
                      ? "this node is shutting down; resume with from = the seq after the last event received"
                      : "this node is shutting down; resume with from = the seq after the last record received");
}

/* Hands out what gather took first, then frees it. */
static ssize_t pre_take(reader_t *r, char *out, size_t max)
{
    size_t n = r->pre_len - r->pre_off < max ? r->pre_len - r->pre_off : max;
    memcpy(out, r->pre + r->pre_off, n);
    r->pre_off += n;
    if (r->pre_off == r->pre_len) {
        free(r->pre);
        r->pre = NULL;
        r->pre_len = r->pre_off = 0;
    }
    return (ssize_t)n;
}

static ssize_t reader_cb(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    reader_t *r = cls;
    if (r->gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->pre)
        return pre_take(r, out, max);
    while (r->off == r->len) {
        if (r->remaining == 0 || r->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&r->a->mu);
        uint64_t gen = r->a->append_gen;
        int stopping = r->a->stopping;
        pthread_mutex_unlock(&r->a->mu);
        if (r->live && stopping) { /* between pages, so between records: also when not caught up */
            reader_stopping(r);
            break;
        }
        if (r->live && !r->rd && !r->feed) { /* a revoked or expired token (or grant) ends a local live stream */
            int st = 0;
            char kind[32], detail[400];
            if (auth_owner_check(r->a, r->id, (const uint8_t *)r->token, r->token_len, &st, kind, sizeof kind,
                                 detail, sizeof detail) != 0) {
                reader_error_line(r, kind, detail);
                break;
            }
        }
        uint64_t at = r->next;
        long n = page_fill(r);
        if (n == -2)
            break;
        if (n < 0) {
            char detail[512];
            snprintf(detail, sizeof detail, "reading records of %s at seq %" PRIu64 " failed: %s", r->id, at,
                     store_last_error());
            reader_error_line(r, "storage", detail);
            if (r->len == 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (n > 0) {
            if (r->len > r->off)
                break;
            continue;   /* the feed's filters kept none of these */
        }
        if (!r->live)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Live and caught up: a retired product takes no new records, so the stream ends here
         * with the same error line a relay gets from the owner. */
        store_product_t p;
        if (!r->feed && store_product_get(r->a->st, r->id, &p) == 0 && p.retired) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s was retired: it takes no new records", r->id);
            reader_error_line(r, "retired", detail);
            break;
        }
        /* Live and caught up: suspended until the next append or shutdown (the waker), then
         * read again; 0 tells libmicrohttpd nothing is ready. */
        if (reader_suspend(r, gen))
            return 0;
    }
    return reader_take(r, out, max);
}

/* Routed reads: bytes come from the owner through the gossip loop. What gossip_read_next returned
 * is handled here for both callers, the callback (bytes in out) and the waiter (bytes in r->buf):
 * the count to hand out, or -1 when the read ended (r->ended, or the error line in r->buf). */
static long routed_got(reader_t *r, long n, const char *data, const char *kind, const char *detail)
{
    if (n > 0) {
        uint64_t taken = gossip_read_records(r->rd);   /* counted per batch by the relay: no scan here */
        metrics_records_read(taken - r->routed_records);
        r->routed_records = taken;
        r->line_start = data[n - 1] == '\n';
        return n;
    }
    if (n == GOSSIP_READ_END && r->end_retired) {   /* as a live stream at the retirement */
        char line[STORE_ID_MAX + 64];
        snprintf(line, sizeof line, "%s was retired: it takes no new records", r->id);
        reader_error_line(r, "retired", line);
    } else if (n == GOSSIP_READ_END) {
        r->len = r->off = 0;
        r->ended = 1;
    } else if (n == GOSSIP_READ_FAILED) {
        /* one owner's refusal or silence fails every stream it feeds, and clients open streams at
         * will: each counted, a line per 10 s at most */
        static log_limit_t limit;
        metrics_routed_failed();
        uint64_t held;
        char tail[96];
        if (log_limit(&limit, 10000, &held))
            log_warn("routed read of %s failed: %s: %s%s", r->id, kind, detail,
                     log_held(tail, sizeof tail, held, "failed routed reads"));
        reader_error_line(r, kind, detail);
    } else if (n == GOSSIP_READ_SCHEMA) {   /* the owner's next records are of another schema */
        uint64_t at = 0, mseq = 0;
        char v[STORE_VERSION_MAX + 1];
        if (gossip_read_schema(r->rd, 1, &at, &mseq, v, sizeof v) == 0)
            schema_changed_line(r, at, v);
        else
            reader_error_line(r, "schema_changed", "the owner's next records are of another schema version");
    }
    return n == 0 ? 0 : -1;
}

/* A routed stream's waiter: while its connection is suspended (r->parked) it owns the read and
 * blocks in gossip_read_next, so records from the owner go out as they arrive, without holding
 * a pool thread and without polling. One per routed stream that ever had to wait. */
static void *routed_waiter(void *arg)
{
    reader_t *r = arg;
    pthread_mutex_lock(&wait_mu);
    for (;;) {
        while (!r->parked && !r->quit)
            pthread_cond_wait(&r->park_cv, &wait_mu);
        if (r->quit)
            break;
        pthread_mutex_unlock(&wait_mu);
        char kind[64] = "", detail[1024] = "";
        long n = gossip_read_next(r->rd, r->buf, r->cap, 1000, kind, sizeof kind, detail, sizeof detail);
        if (routed_got(r, n, r->buf, kind, detail) > 0) {
            r->len = (size_t)n;
            r->off = 0;
        } else if (n == 0 && !node_stopping(r->a) && !(r->gone = client_gone(r))) {
            pthread_mutex_lock(&wait_mu);
            continue; /* nothing yet: still parked */
        }
        pthread_mutex_lock(&wait_mu);
        r->parked = 0;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&wait_mu);
    return NULL;
}

/* Parks r with its waiter (started the first time): 1, and the callback returns 0; 0 when the
 * node is stopping (nobody suspends any more) or the waiter cannot start. */
static int routed_park(reader_t *r)
{
    pthread_mutex_lock(&wait_mu);
    if (wait_closed) {
        pthread_mutex_unlock(&wait_mu);
        return 0;
    }
    if (!r->has_waiter) {
        char *b = r->cap >= ROUTED_BUF ? r->buf : realloc(r->buf, ROUTED_BUF);
        if (!b || pthread_cond_init(&r->park_cv, NULL) != 0) {
            pthread_mutex_unlock(&wait_mu);
            return 0;
        }
        r->buf = b;
        r->cap = ROUTED_BUF > r->cap ? ROUTED_BUF : r->cap;
        if (pthread_create(&r->waiter, NULL, routed_waiter, r) != 0) {
            pthread_cond_destroy(&r->park_cv);
            pthread_mutex_unlock(&wait_mu);
            return 0;
        }
        r->has_waiter = 1;
    }
    r->len = r->off = 0;
    r->parked = 1;
    MHD_suspend_connection(r->conn);
    pthread_cond_signal(&r->park_cv);
    pthread_mutex_unlock(&wait_mu);
    return 1;
}

static ssize_t routed_cb(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    reader_t *r = cls;
    if (r->gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->pre)
        return pre_take(r, out, max);
    for (;;) {
        if (r->off < r->len)
            return reader_take(r, out, max);
        if (r->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Checked before each read, not only when idle: a stream that never pauses for the
         * timeout below would otherwise be cut by MHD_stop_daemon without its last line. */
        if (r->line_start && node_stopping(r->a)) {
            reader_stopping(r);
            continue;
        }
        char kind[64] = "", detail[1024] = "";
        /* Never waits on a pool thread: with nothing there the stream is parked with its waiter;
         * only once stopping, when nobody parks any more, does it wait a little for the relay's
         * "shutting_down". */
        long n = gossip_read_next(r->rd, out, max, wait_closed_now() ? 50 : 0, kind, sizeof kind, detail,
                                  sizeof detail);
        long got = routed_got(r, n, out, kind, detail);
        if (got > 0)
            return (ssize_t)got;
        if (got < 0) {
            if (!r->ended && r->len == 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (routed_park(r))
            return 0;
    }
}

/* Live streams open now: at shutdown they get to send their last line before MHD closes them. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live_open;

static void reader_free(void *cls)
{
    reader_t *r = cls;
    pthread_mutex_lock(&wait_mu);
    if (r->waiting)
        wait_unlink(r);
    r->quit = 1;
    if (r->has_waiter)
        pthread_cond_signal(&r->park_cv);
    pthread_mutex_unlock(&wait_mu);
    if (r->has_waiter) { /* not parked: a freed response's connection is not suspended */
        pthread_join(r->waiter, NULL);
        pthread_cond_destroy(&r->park_cv);
    }
    if (r->counted) {
        pthread_mutex_lock(&live_mu);
        live_open--;
        pthread_cond_broadcast(&live_cv);
        pthread_mutex_unlock(&live_mu);
    }
    gossip_read_close(&r->rd);
    if (r->grant) {
        grants_audit_served(r->a, r->grant, r->served);
        free(r->grant);
    }
    free(r->buf);
    free(r->pre);
    free(r->token);
    free(r);
}

/* A non-live read's answer, taken before its head is sent: 1 when all of it is in *body (*len
 * bytes, at most WHOLE_MAX; the caller answers with its length, the reader freed with the answer
 * once it went out (a routed read's link back to the pool, and a trim, after it), and libmicrohttpd sends head and
 * body in one write instead of a head, chunks and a last chunk: for a small read, one wake-up of
 * the client instead of up to three, and two sends fewer), 0 when it is longer or not all here
 * yet (a routed read whose owner has more to send: never waited for), and what was taken is
 * r->pre, which the callback hands out first; -1 when the read failed with not even its error
 * line (out of memory): the connection is closed, as the callback would. */
static int gather(reader_t *r, char **body, size_t *len)
{
    /* one byte more than fits: an answer of exactly WHOLE_MAX is known whole only once the read
     * says it ended with all of it taken, and a byte past it says it is longer */
    char *b = malloc(WHOLE_MAX + 1);
    if (!b)
        return 0;   /* streamed instead */
    size_t used = 0;
    int whole = 0;
    while (used <= WHOLE_MAX) {
        ssize_t n;
        size_t room = WHOLE_MAX + 1 - used;
        if (!r->rd) {
            n = reader_cb(r, used, b + used, room);   /* never suspends: not live */
        } else if (r->off < r->len) {
            n = reader_take(r, b + used, room);   /* an error line */
        } else if (r->ended) {
            n = MHD_CONTENT_READER_END_OF_STREAM;
        } else {
            char kind[64] = "", detail[1024] = "";
            long got = gossip_read_next(r->rd, b + used, room, 0, kind, sizeof kind, detail, sizeof detail);
            got = routed_got(r, got, b + used, kind, detail);
            if (got == 0)
                break;   /* the owner has more to send: streamed from here */
            if (got < 0 && !r->ended && r->len == 0)
                n = MHD_CONTENT_READER_END_WITH_ERROR;   /* as routed_cb */
            else
                n = got < 0 ? 0 : (ssize_t)got;   /* ended: the error line, if any, is in r->buf */
        }
        if (n == MHD_CONTENT_READER_END_OF_STREAM) {
            whole = 1;
            break;
        }
        if (n == MHD_CONTENT_READER_END_WITH_ERROR) {
            free(b);
            return -1;
        }
        used += (size_t)n;
    }
    if (whole) {
        *body = b;
        *len = used;
        return 1;
    }
    if (used == 0) {
        free(b);
        return 0;
    }
    r->pre = b;
    r->pre_len = used;
    r->pre_off = 0;
    return 0;
}

int stream_set_grant(stream_t *r, const struct grants_read_s *d)
{
    if (!d || !d->audited || r->rd)
        return 0;   /* nothing to project or audit here (a routed read is projected at its owner) */
    if (!(r->grant = malloc(sizeof *r->grant))) {
        reader_free(r);   /* not queued: nothing else frees it */
        return -1;
    }
    *r->grant = *d;
    return 0;
}


enum MHD_Result stream_queue(struct MHD_Connection *c, stream_t *r, uint64_t last)
{
    if (r->live) {
        pthread_mutex_lock(&live_mu);
        live_open++;
        r->counted = 1;
        pthread_mutex_unlock(&live_mu);
    }
    uint64_t first = r->next;
    /* the schema the records are checked against: before any is taken (gather) */
    int schema = 0;
    if (r->rd) {   /* routed: as the owner named it (not said by an older owner) */
        schema = gossip_read_schema(r->rd, 0, NULL, &r->schema_mseq, r->schema_version, sizeof r->schema_version) == 0;
    } else if (!r->feed) {   /* local: the schema version the records of this response were validated against */
        epochs_t e = {.from = r->next};
        store_product_t p;
        if (last >= r->next && store_record_epochs(r->a->st, r->id, r->next, r->next, epoch_cb, &e) == 0)
            r->schema_mseq = e.at_mseq;                /* the stored record's */
        else if (last < r->next && store_product_get(r->a->st, r->id, &p) == 0)
            r->schema_mseq = store_product_schema_seq(&p); /* beyond the end: the next records' epoch */
        version_of(r->a, r->id, r->schema_mseq, r->schema_version);
        schema = 1;
    }
    char *body = NULL;
    size_t blen = 0;
    int whole = r->live ? 0 : gather(r, &body, &blen);
    if (whole < 0) {
        reader_free(r);
        return MHD_NO;
    }
    if (whole) {   /* the body is the reader's: freed with it once the answer went out */
        r->pre = body;
        r->pre_len = r->pre_off = blen;
    }
    struct MHD_Response *resp =
        whole ? MHD_create_response_from_buffer_with_free_callback_cls(blen, body, reader_free, r)
              : MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                                  r->rd && (r->live || r->remaining > SMALL_READ) ? ROUTED_BLOCK : 64 * 1024,
                                                  r->rd ? routed_cb : reader_cb, r, reader_free);
    if (!resp) {
        reader_free(r);
        return MHD_NO;
    }
    char hdr[32];
    MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    snprintf(hdr, sizeof hdr, "%" PRIu64, first);
    MHD_add_response_header(resp, "Trib-First-Seq", hdr);
    snprintf(hdr, sizeof hdr, "%" PRIu64, last);
    MHD_add_response_header(resp, "Trib-Last-Seq", hdr);
    if (r->live)
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (r->rd && !r->live)   /* relayed: asked with Prefer: redirect=owner it could have been a 307 */
        redirect_vary(resp);
    if (schema) {
        MHD_add_response_header(resp, "X-Trib-Schema-Version", r->schema_version);
        snprintf(hdr, sizeof hdr, "%" PRIu64, r->schema_mseq);
        MHD_add_response_header(resp, "X-Trib-Schema-Seq", hdr);
    }
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ------------------------------------------------------------------ waiting and waking */

static reader_t *waiting;       /* suspended readers (wait_mu) */
static pthread_t waker;
static int waker_running;

static int wait_closed_now(void)
{
    pthread_mutex_lock(&wait_mu);
    int closed = wait_closed;
    pthread_mutex_unlock(&wait_mu);
    return closed;
}

static void wait_unlink(reader_t *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        waiting = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    r->wnext = r->wprev = NULL;
    r->waiting = 0;
}

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Suspends local reader r's connection until the waker resumes it: 1, and the callback returns 0.
 * 0 when r must read again now: its node has appended since gen, or is stopping. */
static int reader_suspend(reader_t *r, uint64_t gen)
{
    pthread_mutex_lock(&wait_mu);
    int now = wait_closed;
    if (!now) {
        pthread_mutex_lock(&r->a->mu);
        now = r->a->append_gen != gen || r->a->stopping;
        pthread_mutex_unlock(&r->a->mu);
    }
    if (now) {
        pthread_mutex_unlock(&wait_mu);
        return 0;
    }
    r->wait_gen = gen;
    r->wprev = NULL;
    r->wnext = waiting;
    if (waiting)
        waiting->wprev = r;
    waiting = r;
    r->waiting = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&wait_mu);
    return 1;
}

static void *waker_main(void *arg)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    uint64_t seen = n->append_gen;
    pthread_mutex_unlock(&n->mu);
    long gone_at = mono_ms() + GONE_CHECK_MS;
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GONE_CHECK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&n->mu);
        while (n->append_gen == seen && !n->stopping)
            if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) == ETIMEDOUT)
                break;
        uint64_t gen = n->append_gen;
        int stopping = n->stopping;
        pthread_mutex_unlock(&n->mu);
        seen = gen;
        long now = mono_ms();
        int check_gone = now >= gone_at;
        if (check_gone)
            gone_at = now + GONE_CHECK_MS;
        pthread_mutex_lock(&wait_mu);
        for (reader_t *r = waiting, *next; r; r = next) {
            next = r->wnext;
            int wake = stopping || r->wait_gen != gen;
            if (check_gone && client_gone(r))
                wake = r->gone = 1;
            if (wake) {
                wait_unlink(r);
                MHD_resume_connection(r->conn);
            }
        }
        if (stopping)
            wait_closed = 1;
        pthread_mutex_unlock(&wait_mu);
        if (stopping)
            return NULL;
    }
}

int stream_start(node_t *n, char *err, size_t errlen)
{
    pthread_mutex_lock(&wait_mu);
    wait_closed = 0;
    pthread_mutex_unlock(&wait_mu);
    int rc = pthread_create(&waker, NULL, waker_main, n);
    if (rc != 0) {
        snprintf(err, errlen, "http: cannot start the stream waker thread: %s", strerror(rc));
        return -1;
    }
    waker_running = 1;
    return 0;
}

void stream_stop(node_t *n)
{
    if (!waker_running)
        return;
    node_set_stopping(n); /* already, from the agent: the waker resumes every stream and ends */
    pthread_join(waker, NULL);
    waker_running = 0;
    /* Give live streams up to 2 s to send their "shutting_down" line and finish. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    pthread_mutex_lock(&live_mu);
    while (live_open > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&live_mu);
}
