/* node/stream.h - NDJSON record reads answered over HTTP: pages of this node's records, routed
 * reads relayed from another domain's owner, and live streams of either.
 *
 * Owns: the content-reader callbacks libmicrohttpd pulls a response's bytes from, and the
 * waker thread that suspends and resumes streams with nothing to send, so that a stream never
 * holds one of the server's pool threads while it waits.
 * Must not: parse requests or choose statuses before the 200 (node/http.c does), or hold an LMDB
 * read transaction across a network write. */
#ifndef TRIB_STREAM_H
#define TRIB_STREAM_H

#include <microhttpd.h>
#include <stdint.h>
#include "gossip/gossip.h"
#include "node/node.h"

typedef struct stream stream_t;

/* A read of product id from seq from (0 = 1), at most limit records (0: all), live = follow new
 * records; rd: the routed read through the owner (taken), NULL for this node's products. */
stream_t *stream_new(node_t *n, struct MHD_Connection *c, const char *id, uint64_t from, uint64_t limit, int live,
                     gossip_read_t *rd);
/* The catalog change feed of node n (node/changes.h) from its seq from, events of domain and
 * product only when given; live = keep sending new events. */
stream_t *stream_new_feed(node_t *n, struct MHD_Connection *c, uint64_t from, int live, const char *domain,
                          const char *product);
/* A local live read: the caller's token (copied), checked again before each page (auth issue 11:
 * a revoked or expired token ends the stream with its error line). 0 or -1 (out of memory). */
int stream_set_token(stream_t *s, const char *token, size_t len);
/* A routed range read that answers a stream of a retired product (the relay's catalog says so):
 * once the owner's records end it ends with the line a live stream gets at the retirement,
 * {"error": "retired", ...}. Before stream_queue. */
void stream_end_retired(stream_t *s);
/* Queues the 200 NDJSON response of s (taken, also on failure) with the Trib-First-Seq and
 * Trib-Last-Seq (= last) headers. A read that fails after the 200 ends with one error line
 * {"error": KIND, "detail": ...}. */
enum MHD_Result stream_queue(struct MHD_Connection *c, stream_t *s, uint64_t last);

/* A local read of confidential or restricted data that grants_check_read allowed (node/grants.h):
 * every page is projected to the grant's fields before it is sent, and the read is audited with
 * the records served when it ends. Call before stream_queue. 0, or -1 out of memory (s is freed). */
struct grants_read_s;
int stream_set_grant(stream_t *s, const struct grants_read_s *d);

/* Starts the waker for n's streams (before the HTTP server serves). 0 or -1 with err. */
int stream_start(node_t *n, char *err, size_t errlen);
/* n is stopping: every suspended stream is resumed to send its "shutting_down" line, and live
 * streams get up to 2 s to finish; then the server may close the rest. */
void stream_stop(node_t *n);

#endif
