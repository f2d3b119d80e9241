/* gossip/reads_link.h - the relay's side of routed reads over a data link (gossip/link.h): the
 * HTTP thread that serves the client dials the owner's link server (gossip/linkserve.h) itself,
 * or takes an idle link to it from a small pool, sends the ReadRequest and reads the batches off
 * the link, checking each exactly as the peer transport's relay does (reads_int.h). Internal to
 * gossip/ (gossip.c chooses the path).
 *
 * Range reads only (live reads share a feed on the peer transport). A link that cannot be had
 * (no route, refused, handshake failed) is never the client's error: the read falls back to the
 * peer transport and the owner's link is not tried again for LINKS_BACKOFF_MS, or, when the owner
 * refused it over a limit (LINK_REFUSE, sealed: its own word), for the retry-after it gave.
 * A link lost mid-read (closed or broken: the owner cut a slow read, restarted, a reset) is not
 * the client's error either: the read goes on over another link, asking as a new stream for the
 * records after the last received (3 times a read at most, 1 s apart); the owner's refusal then,
 * another schema or another projection end it as they would a new read.
 * Must not: call the gossip loop, hold the pool's lock across I/O, or hand a link to two readers. */
#ifndef TRIB_READS_LINK_H
#define TRIB_READS_LINK_H

#include <stdint.h>
#include <stdio.h>
#include "gossip/reads.h"

typedef struct linkpool linkpool_t;
typedef struct lread lread_t;

typedef struct {
    /* This node's id and static key pair now (a live key rotation changes them). Any thread. */
    void (*keys)(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32]);
    void *ctx;
    uint8_t prologue[32];
    uint32_t open_timeout_ms;    /* the owner's first batch within (2000) */
    uint32_t stall_ms;           /* no frame for this long while waiting: owner_lost (3500) */
    reads_t *reads;              /* its read counters count link reads too (batches, records, owner_lost) */
} linkpool_opts_t;

linkpool_t *linkpool_new(const linkpool_opts_t *o);
/* Every link read ends now with "shutting_down" (a blocked reader wakes); no new one opens. */
void linkpool_shutdown(linkpool_t *p);
/* The reads over links to owner (its key no longer certified for its domain) end at their next
 * call with owner_lost and detail, also one whose link was lost and that dials a new one; their
 * links are shut; one still opening is refused 503 owner_unreachable with detail. Returns how many. */
size_t linkpool_untrusted(linkpool_t *p, const uint8_t owner[32], const char *detail);
/* 1 when a read over a link to owner is open (and not ended by linkpool_untrusted). */
int linkpool_reads_from(linkpool_t *p, const uint8_t owner[32]);
/* Links made as our previous key are not reused (a live key rotation): the idle ones are closed,
 * and those in use now are closed when their reads end instead of going back to the pool. */
void linkpool_flush(linkpool_t *p);
void linkpool_free(linkpool_t **pp);   /* every lread closed first */
/* A batch frame's packed ReadBatch (after its type byte) split without copying: its other fields
 * are msg[0, *hdr_len), its lines (field 9, which must be the last field and the only one of its
 * number) msg[*lines_off, len); without lines both are len. 0, or -1 when msg is not such a
 * message (malformed, or lines elsewhere). */
int link_split(const uint8_t *msg, size_t len, size_t *hdr_len, size_t *lines_off);

/* 1 when a is a link address a relay dials: HOST:PORT (HOST a name, IPv4 or bracketed IPv6;
 * PORT 1..65535), 255 characters at most. */
int link_addr_ok(const char *a);

/* A routed read went over the peer transport instead (trib_read_routed_total{path="relay"}). */
void linkpool_count_relay(linkpool_t *p);
void linkpool_metrics(linkpool_t *p, FILE *f);

/* Opens o (a range read) over a link to the owner's link_addr. 1 opened (*out; *last_seq, the
 * schema as reads_reader_open); 0 the link could not be used: read over the peer transport (also
 * when link_addr is not link_addr_ok, or names a loopback address while o->owner_addr does not:
 * never dialled, counted as bad_addr, loopback);
 * -1 the owner refused or failed the read: *status, kind and err as reads_reader_open. */
int lread_open(linkpool_t *p, const reads_open_t *o, const char *link_addr, lread_t **out, uint64_t *last_seq,
               int *status, char *kind, size_t kindlen, char *err, size_t errlen);
/* As reads_reader_next / _schema / _records / _close. A lost link is replaced only in a call that
 * may wait (timeout_ms not 0: a dial may take seconds); one that may not returns 0 meanwhile. */
long lread_next(lread_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen, char *err,
                size_t errlen);
int lread_schema(const lread_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version, size_t len);
uint64_t lread_records(const lread_t *rd);
/* A read that ended cleanly (its last batch read) gives its link back to the pool. */
void lread_close(lread_t **rdp);

#endif
