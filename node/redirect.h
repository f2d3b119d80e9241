/* node/redirect.h - a bulk read asked of a node that does not own the product, answered with a
 * redirect to its owner when the client asks for one (RFC 7240 "Prefer: redirect=owner"): the
 * client reads from the owner itself, and no byte of the records crosses this node or the peer
 * transport. WebHDFS's namenode answers OPEN so (307 to a datanode), as Arrow Flight's
 * GetFlightInfo names the endpoints holding the data.
 *
 * Owns: parsing the preference, deciding whether it may be applied (the owner alive and
 * certified, its advertised HTTP address usable by this client, the caller allowed to learn it),
 * the 307 answer (Location, Preference-Applied, Vary) and trib_http_redirect{s,_declined}_total.
 * Must not: contact the owner (the whole point: no round trip), decide access (the owner does,
 * for the redirected read exactly as for a direct one), or answer anything but a redirect: when
 * the preference is not applied the caller relays as it would without it. */
#ifndef TRIB_REDIRECT_H
#define TRIB_REDIRECT_H

#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include "node/node.h"

/* The preference a client sends, and the Vary value of every answer it may change. */
#define REDIRECT_PREFER "redirect=owner"

/* 1 when the value of one Prefer header (RFC 7240 §2: comma-separated preferences, each a token,
 * an optional =word and ;parameters) holds redirect=owner as the first "redirect" preference;
 * 0 when it holds another value for it, -1 when it names no "redirect" at all (the next Prefer
 * header is then asked). Case-insensitive; a quoted value is unquoted; a quoted name is no name.
 * Never reads past NUL. */
int redirect_prefer_parse(const char *value);

/* A read of product id (of another domain: this node is not its owner; its manifest at
 * manifest_seq in this node's catalog) at c, whose raw request target (path and query, as sent)
 * is uri: when c asks for the redirect and it may be given,
 * returns a 307 response for the caller to queue (and count), else NULL: relay as without the
 * preference (the reason counted in trib_http_redirect_declined_total). */
struct MHD_Response *redirect_to_owner(node_t *n, struct MHD_Connection *c, const char *id, uint64_t manifest_seq,
                                       const char *uri);

/* Marks r (a relayed answer to a read that could have been redirected) as varying by Prefer. */
void redirect_vary(struct MHD_Response *r);

/* trib_http_redirects_total{route} and trib_http_redirect_declined_total{reason}. */
void redirect_metrics(FILE *f);

#endif
