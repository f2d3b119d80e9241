/* tests/httpfuzz.h - the bounded random-request run against the HTTP API of two real agents, shared
 * by tests/test_http_fuzz.c (open mode) and tests/test_http_fuzz_fed.c (a chartered federation):
 * the route table of docs/http-api.md, requests built from it and mutated (paths, queries,
 * headers, tokens, bodies, framing, bytes that are not HTTP, requests cut off, pairs on one
 * connection), the answers read and held to the API (documented status, well-formed HTTP, the
 * JSON error shape, no 5xx but 503/507), the products stored before compared afterwards and the
 * refusal counters checked. A suite starts the two agents (hf_a: payments, the owner; hf_b:
 * growth, the relay), makes the tokens, and gives its mode: bodies of its own for some kinds, the
 * statuses its mode adds, a check after every answer, which routes to aim at more often.
 *
 * Owns: the request generator, the HTTP reader and the oracle; the fixture products and tokens.
 * Must not: start agents (the suites do: their modes differ) or sleep as synchronisation. */
#ifndef TRIB_TESTS_HTTPFUZZ_H
#define TRIB_TESTS_HTTPFUZZ_H

#include <stddef.h>
#include <stdint.h>
#include "tests/harness.h"

#define HF_FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "3", \
                "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

extern h_node_t hf_a, hf_b;     /* payments (the owner), growth (the relay): the suite starts them */

/* The tokens a request may carry; T_EXTRA* are the suite's own (named by it in hf_token_names). */
enum {
    T_NONE, T_ADMIN_A, T_WRITER_A, T_USER_A, T_SCOPED_A, T_USER_B, T_ADMIN_B, T_EXPIRED_A, T_STRANGER, T_NOWHERE,
    T_EXTRA1, T_EXTRA2, T_EXTRA3, T_COUNT
};
extern char *hf_tokens[T_COUNT];            /* NULL: none (an extra a suite has not made is never sent) */
extern const char *hf_token_names[T_COUNT];

/* The body kinds of the routes (a suite's body hook is asked for each). */
enum { B_NONE, B_MANIFEST, B_RECORDS, B_TOKEN, B_REVOKE, B_ACCESS, B_DAYS, B_REASON, B_POLICY, B_TRUST, B_ROTATE };

typedef struct {
    char *p;
    size_t len, cap;
} hf_buf_t;
void hf_put(hf_buf_t *b, const void *d, size_t n);
void hf_str(hf_buf_t *b, const char *s);
void hf_fmt(hf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hf_free(hf_buf_t *b);
/* s shown safely in a failure message (escaped, cut at max); one of four static buffers. */
const char *hf_shown(const char *s, size_t len, size_t max);

/* The run's seeded random numbers (TRIB_FUZZ_SEED): 0..n-1, and pct in 100. */
size_t hf_rn(size_t n);
int hf_chance(int pct);
#define HF_PICK(arr) ((arr)[hf_rn(sizeof(arr) / sizeof *(arr))])
/* One to six random byte edits (a byte changed, cut, runs inserted, bad UTF-8, a part repeated). */
void hf_mutate_bytes(hf_buf_t *b);

typedef struct {
    const char *method, *pattern;   /* {d} {n}: a product id's segments; {id}: an access id */
    const char *name;
    const char *statuses;           /* documented, space-separated */
    int body, query;
    int live;                       /* a 200 may never end: read its head only */
    int access;                     /* /v1/access and /v1/audit: their refusals count in trib_access_refused_total */
} hf_route_t;

typedef enum { K_ROUTE, K_FRAMING, K_RAW, K_HALF, K_KINDS } hf_kind_t;

typedef struct {
    hf_kind_t kind;
    h_node_t *n;
    char src[20];               /* the source address ("": the default, 127.0.0.1) */
    hf_buf_t wire;              /* the bytes sent */
    char method[400];
    hf_buf_t target;            /* request target as sent */
    const hf_route_t *route;    /* the row the request is for (after mutation), NULL: 404/405 */
    const hf_route_t *aimed;    /* the row it was built from */
    int known;                  /* the path is some row's (405 for another method) */
    int token;
    int head;                   /* HEAD: no body in the answer */
    int library;                /* libmicrohttpd may answer it itself (HTML, or close) */
    int clean;                  /* not mutated: the route's method, credential and a body it may take */
    int tag;                    /* the suite's body hook's word on it (0 by default) */
    char mutations[256];        /* what was done to it, for the failure message */
} hf_req_t;

typedef struct {
    hf_buf_t raw;
    long status;            /* 0: no answer */
    char ctype[128];
    int chunked;
    long clen;              /* -1: none */
    size_t body_at;         /* start of the final response's body in raw */
    hf_buf_t body;          /* decoded */
    int complete;           /* the framing said where it ends, and it ended there */
    int double_head_ok;     /* libmicrohttpd 0.9.75 may send the head of its own 400/413 twice */
    int double_head;        /* ... and did */
    int timed_out;          /* no end of the answer within the deadline (else: the node closed) */
    int allow_more;         /* another answer may follow this one on the connection (pipelined) */
    size_t consumed;        /* ... and starts here */
    int closes;             /* Connection: close */
    char retry_after[16];   /* its Retry-After header, if any */
    char why[200];          /* how it is malformed, when it is */
} hf_resp_t;

void hf_note(hf_req_t *q, const char *what);
/* The request and the answer for a failure message (with the seed that reproduces it). */
const char *hf_describe(const hf_req_t *q, const hf_resp_t *r);

typedef struct {
    const char *suite;          /* the summary line's name */
    /* The body of kind for q (clean or not: hf_req_t.clean): 1 when written (*ctype set), 0 for
     * the run's own. NULL: the run's own for all. */
    int (*body)(hf_req_t *q, int kind, hf_buf_t *b, const char **ctype);
    /* Statuses route documents in this mode beyond the table's ("" or NULL: none). */
    const char *(*statuses)(const hf_route_t *route);
    /* Called after every answer passed the checks (the node, the request, the answer). */
    void (*after)(const hf_req_t *q, const hf_resp_t *r);
    const char *const *favour;  /* route names (NULL-ended) aimed at by favour_pct of the route requests */
    int favour_pct;
    int spread_sources;         /* send from 127.0.0.2-251 (a client each), not 127.0.0.1 */
} hf_mode_t;

/* The tokens T_NONE..T_NOWHERE of hf_a's and hf_b's keys (their data dirs' identity.key). */
void hf_make_tokens(void);
/* The fixture products of both agents, their records, a retired one, a pending access request. */
void hf_setup_products(void);
/* The run: TRIB_FUZZ_N requests (default n) from TRIB_FUZZ_SEED (default seed), each checked;
 * then both agents still serve, every product stored before reads the same (on its owner and
 * through the other), and the token, access and HTTP refusal counters grew at least by the
 * refusals seen. */
void hf_run(const hf_mode_t *m, uint64_t seed, int n);
uint64_t hf_seed_used(void);
/* SIGTERM to both: each exits 0, no sanitizer report in its log; prints the run's summary line. */
void hf_stop_and_report(void);

/* A TCP connection to n's HTTP port from src (NULL or "": the default address), -1 if none. */
int hf_connect(const h_node_t *n, const char *src);
/* Sends wire to n from src and reads one answer (well framed: 15 s to answer). */
void hf_send(h_node_t *n, const char *src, const void *wire, size_t len, hf_resp_t *r);
void hf_resp_free(hf_resp_t *r);

#endif
