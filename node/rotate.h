/* node/rotate.h - a running chartered node's key rotation (DESIGN.md §12, docs/operators.md §6):
 * POST /v1/node/key/rotate (admin token), and what the agent does at start and after it.
 *
 * The node's key files in its data dir: identity.key (the key it runs with), identity.next.key
 * (the key it rotates to, made by the agent, never sent anywhere), identity.prev.key (the key it
 * rotated from, kept for the overlap window), identity.cert (the certificate of identity.key once
 * rotated: --cert names the first key's certificate); while a rotation is pending
 * identity.next.json (the overlap asked for); during a switch identity.next.cert.new and
 * admin.token.next (staged), identity.next.cert (the commit point), identity.prev.cert and
 * identity.handover (node/rotate.c: all or nothing, and the order that survives a crash).
 * Must not: send a secret key over HTTP, or replace identity.key other than by one rename of a
 * durably written file. */
#ifndef TRIB_ROTATE_H
#define TRIB_ROTATE_H

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <microhttpd.h>

#include "node/node.h"

#define ROTATE_CERT_FILE "identity.cert"
#define ROTATE_NEXT_CERT_FILE "identity.next.cert"      /* the new key's, until the switch is done */
#define ROTATE_PREV_CERT_FILE "identity.prev.cert"      /* the old key's, which signed the hand-over */
#define ROTATE_HANDOVER_FILE "identity.handover"        /* the last hand-over (trib.rotation) */
#define ROTATE_PENDING_FILE "identity.next.json"        /* {"overlap_s": N} asked for the pending rotation */

/* The rotate call. Body {} or {"overlap_s": N, "cert": "<base64 of the certificate's signed bytes>"}.
 * overlap_s given is kept with the pending rotation (ROTATE_PENDING_FILE); absent, the kept one
 * (else 24 h) is used. Without cert: makes identity.next.key if absent and answers 202 {"state":
 * "pending","node_id","new_node_id","domain","prev_serial"}: the roots certify new_node_id with
 * --prev-serial. With cert (for the new key and this domain, held by the federation log): the old
 * key signs the hand-over and the running node switches to the new key, all or nothing (see
 * node/rotate.c): 200 {"state":"rotated",...,"restarting":false}. A switch that failed leaves the
 * node on its old key, the rotation pending: 500 switch_failed (or storage), "restarting" only
 * when the agent must restart (rotate_done) to be whole again. A certificate not valid yet: 403
 * not_yet_valid, and the switch is tried again when it is (rotate_sigwait). A cert with no
 * rotation pending: 200 {"state":"rotated","node_id","domain"} when it is the running key's
 * (rotate_from_fedlog switched already), else 409 not_pending. Errors: 409 open_mode, 400
 * bad_request|wrong_key|wrong_domain, 403 and others as the federation log's verdicts, 500; 503
 * busy (the federation log's loop did not take a certificate in time) with *retry_after_s
 * ROTATE_RETRY_S for the Retry-After header; 409 busy (another rotation call or the automatic
 * switch under way on this node) with ROTATE_BUSY_RETRY_S; 0 on every other answer. */
#define ROTATE_RETRY_S 5
#define ROTATE_BUSY_RETRY_S 1   /* a switch takes milliseconds; its waits on the loops, 10 s at most */
unsigned rotate_request(node_t *n, struct MHD_Connection *c, const char *body, size_t len, json_t **reply,
                        unsigned *retry_after_s);
/* At start, before the node's key is loaded: finishes a key switch a stop interrupted after its
 * commit point (identity.next.cert written): identity.key becomes the key it certifies. 0 (also
 * when there was none), or -1 with err when the files contradict each other. */
int rotate_recover(const char *data_dir, char *err, size_t errlen);
/* Once the federation log is open: offers it the last hand-over (and its signer's certificate),
 * in case the stop came before it was gossiped; only when the hand-over's new key is key (the
 * node's loaded key: the switch committed). Held already: nothing happens. */
struct fedlog;
void rotate_offer_pending(struct fedlog *f, const char *data_dir, const uint8_t key[32]);
/* From the HTTP server's request-completed callback: the rotate reply on c was sent, so the agent
 * may restart (SIGUSR1 to itself, taken by agent_main). */
void rotate_done(struct MHD_Connection *c);
/* The gossip loop's on_certs (never blocks): posts a check to the agent's main thread (SIGUSR1),
 * which takes it with rotate_certs_posted (1 once per post) and runs rotate_from_fedlog. */
void rotate_post_certs(void);
int rotate_certs_posted(void);
/* A pending rotation (identity.next.key) whose certificate (that key, this domain) the federation
 * log now holds completes as the rotate call with that cert would: same checks, durable order,
 * live switch (or the in-place restart). Nothing pending or no such certificate: nothing happens. */
void rotate_from_fedlog(node_t *n);
/* The agent's wait for its signals (sigwait on sigs), which also returns SIGUSR1 with a check
 * posted (rotate_certs_posted) when a held, not yet valid certificate of the pending next key
 * becomes valid. */
int rotate_sigwait(const sigset_t *sigs);
/* trib status: "key_rotation" in j when a rotation is pending, waits for its certificate to become
 * valid, or its switch failed (why; the node runs on its old key). */
void rotate_status(node_t *n, json_t *j);
/* Prometheus: trib_key_rotation_failures_total, _pending, _retry_at_seconds. */
void rotate_metrics(node_t *n, FILE *f);
/* Whether the agent must restart in place (a switch that could not be undone live). */
int rotate_restart_requested(void);
/* Replaces the running process by the same command line (/proc/self/cmdline). Returns only on
 * failure, with err. */
int rotate_reexec(char *err, size_t errlen);

#endif
