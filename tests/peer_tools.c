/* tests/peer_tools.c - test helpers that act as a peer of a node's transport (see peer_tools.h).
 *
 * Owns: raw ZeroMQ clients, hand-built Envelopes, and deadline-bounded polling of transports.
 * Must not: be linked into the library, sleep as synchronisation, or print. */
#include "tests/peer_tools.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "gossip/clock.h"
#include "proto/tributary.pb-c.h"

struct peer_client {
    void *sock;
};

int64_t peer_now_ms(void)
{
    return (int64_t)clock_ms();
}

void peer_identity(identity_t *id)
{
    if (sodium_init() < 0) abort();
    memset(id, 0, sizeof *id);
    crypto_sign_keypair(id->pk, id->sk);
    if (crypto_sign_ed25519_pk_to_curve25519(id->curve_pk, id->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(id->curve_sk, id->sk) != 0)
        abort();
    sodium_bin2hex(id->hex, sizeof id->hex, id->pk, ID_PK_LEN);
}

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

peer_client_t *peer_client_new(void *zctx, const char *addr, const identity_t *id,
                               const uint8_t server_pk[32])
{
    char ep[TRANSPORT_ADDR_MAX + 8];
    uint8_t fed_pk[32];
    peer_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->sock = zmq_socket(zctx, ZMQ_DEALER);
    if (c->sock == NULL || set_int(c->sock, ZMQ_LINGER, 0) || set_int(c->sock, ZMQ_SNDHWM, 100000))
        goto err;
    if (id != NULL) {
        if (server_pk == NULL) {
            transport_federation_keys(TRANSPORT_DEFAULT_SECRET, fed_pk, NULL);
            server_pk = fed_pk;
        }
        if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_pk, 32) ||
            zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, id->curve_pk, 32) ||
            zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, id->curve_sk, 32))
            goto err;
    }
    snprintf(ep, sizeof ep, "tcp://%s", addr);
    if (zmq_connect(c->sock, ep) != 0) goto err;
    return c;
err:
    if (c->sock) zmq_close(c->sock);
    free(c);
    return NULL;
}

void peer_client_destroy(peer_client_t **cp)
{
    if (cp == NULL || *cp == NULL) return;
    zmq_close((*cp)->sock);
    free(*cp);
    *cp = NULL;
}

void *peer_client_socket(peer_client_t *c)
{
    return c->sock;
}

/* A send ZeroMQ could not take: -1 (zmq_errno says why). EAGAIN: the socket has no pipe
 * to the peer (a DEALER loses its pipe for good when its connection fails its handshake, e.g. a
 * plain client to a CURVE node) or a full one. EINTR (a signal while ZeroMQ read its own
 * commands) is tried again. */
int peer_client_send_parts(peer_client_t *c, const void *const parts[], const size_t lens[], int n)
{
    for (int i = 0; i < n; i++)
        while (zmq_send(c->sock, parts[i], lens[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() != EINTR)
                return -1;
        }
    return 0;
}

int peer_client_send_raw(peer_client_t *c, const void *data, size_t len)
{
    const void *parts[1] = {data};
    size_t lens[1] = {len};
    return peer_client_send_parts(c, parts, lens, 1);
}

void peer_envelope_init(peer_envelope_t *e, const identity_t *id, const char *sender_addr,
                        int type, const uint8_t *body, size_t body_len)
{
    memset(e, 0, sizeof *e);
    e->version = TRANSPORT_PROTOCOL_VERSION;
    e->type = type;
    e->sender = id->pk;
    e->sender_len = ID_PK_LEN;
    e->sender_addr = sender_addr;
    e->seq = 1;
    e->body = body;
    e->body_len = body_len;
}

int peer_envelope_pack(const peer_envelope_t *e, uint8_t **out, size_t *len)
{
    Trib__Envelope env = TRIB__ENVELOPE__INIT;
    env.version = e->version;
    env.type = (Trib__MsgType)e->type;
    env.sender.data = (uint8_t *)e->sender;
    env.sender.len = e->sender_len;
    env.sender_addr = (char *)(e->sender_addr != NULL ? e->sender_addr : "");
    env.seq = e->seq;
    env.body.data = (uint8_t *)e->body;
    env.body.len = e->body_len;
    *len = trib__envelope__get_packed_size(&env);
    *out = malloc(*len > 0 ? *len : 1);
    if (*out == NULL) return -1;
    trib__envelope__pack(&env, *out);
    return 0;
}

int peer_client_send_envelope(peer_client_t *c, const peer_envelope_t *e)
{
    uint8_t *buf;
    size_t len;
    if (peer_envelope_pack(e, &buf, &len) != 0) return -1;
    int rc = peer_client_send_raw(c, buf, len);
    free(buf);
    return rc;
}

/* One round: poll the transports' items for at most ms, then let each read. Returns 1 when
 * ts[0] delivered (into *m); messages from the others are freed and counted in *others. */
static int pump(transport_t **ts, int nt, int ms, transport_msg_t *m, int *others)
{
    zmq_pollitem_t items[64];
    int n = 0;
    for (int i = 0; i < nt; i++) n += transport_pollitems(ts[i], items + n, 32);
    zmq_poll(items, n, ms);
    for (int i = 0; i < nt; i++) {
        transport_msg_t tmp;
        while (transport_recv(ts[i], &tmp) == 1) {
            if (i == 0 && m != NULL) {
                *m = tmp;
                return 1;
            }
            transport_msg_free(&tmp);
            if (others != NULL) (*others)++;
        }
    }
    return 0;
}

int peer_wait_msg(transport_t *t, int timeout_ms, transport_msg_t *m)
{
    int64_t end = peer_now_ms() + timeout_ms;
    memset(m, 0, sizeof *m);
    for (;;) {
        int64_t left = end - peer_now_ms();
        if (pump(&t, 1, left > 20 ? 20 : (left > 0 ? (int)left : 0), m, NULL)) return 1;
        if (left <= 0) return 0;
    }
}

int peer_wait_msg2(transport_t *a, transport_t *b, int timeout_ms, transport_msg_t *m)
{
    transport_t *ts[2] = {a, b};
    int64_t end = peer_now_ms() + timeout_ms;
    memset(m, 0, sizeof *m);
    for (;;) {
        int64_t left = end - peer_now_ms();
        if (pump(ts, 2, left > 20 ? 20 : (left > 0 ? (int)left : 0), m, NULL)) return 1;
        if (left <= 0) return 0;
    }
}

static uint64_t stat_at(transport_t *t, size_t field)
{
    uint64_t v;
    memcpy(&v, (const char *)transport_stats(t) + field, sizeof v);
    return v;
}

int peer_wait_stat(transport_t *t, size_t field, uint64_t want, int timeout_ms, int *delivered)
{
    int64_t end = peer_now_ms() + timeout_ms;
    if (field + sizeof(uint64_t) > sizeof(transport_stats_t)) return 0;
    for (;;) {
        if (stat_at(t, field) >= want) return 1;
        int64_t left = end - peer_now_ms();
        if (left <= 0) return 0;
        pump(&t, 1, left > 20 ? 20 : (int)left, NULL, delivered);
    }
}
