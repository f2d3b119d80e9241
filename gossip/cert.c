/* gossip/cert.c - domain certificates and revocations: issue, parse, verdicts, files.
 *
 * Owns: the DomainCert and Revocation bodies (packing them, the shape rules on decode), signing
 * them through the charter's envelope with their own tags, the validity verdict of a key for a
 * domain at a time with clock skew, the revocation set, and their JSON files (one loader for both).
 * Must not: re-encode to verify, touch LMDB or the network, print. */
#include "gossip/cert.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/edcurve.h"
#include "gossip/entry.h"
#include "storage/store.h"

static int time_ok(int64_t ms)
{
    return ms >= 0 && ms <= TRUST_TIME_MAX_MS;
}

/* A node key that decodes to a curve point (gossip/edcurve.h: not the subgroup check, which cost
 * as much as a signature verify per certificate received); curve gets its CURVE form. */
static int key_ok(const uint8_t *k, size_t len, uint8_t curve[32])
{
    return len == ID_PK_LEN && edcurve_pk(curve, k) == 0;
}

static uint64_t fresh_serial(void)
{
    uint64_t s = 0;
    while (s == 0 || s > (uint64_t)INT64_MAX)   /* fits a signed 64-bit integer in any tool */
        randombytes_buf(&s, sizeof s);
    return s;
}

void cert_serial_text(uint64_t serial, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, serial);
}

int cert_serial_parse(const char *s, uint64_t *serial)
{
    uint64_t v = 0;
    if (s == NULL || strlen(s) != 16)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    if (v == 0)
        return -1;
    *serial = v;
    return 0;
}

/* The envelope's signer keys in order, as hex strings (the files' "signed_by"). */
static json_t *signers_json(const Trib__TrustSigned *env)
{
    char key[ID_HEX_LEN];
    json_t *a = json_array();
    for (size_t i = 0; a && i < env->n_sigs; i++) {
        identity_hex(env->sigs[i]->signer.data, key);
        json_array_append_new(a, json_string(key));
    }
    return a;
}

/* ---------------------------------------------------------------- certificates: parse */

int cert_parse(const uint8_t *bytes, size_t len, cert_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "certificate: sodium_init failed");
        return -1;
    }
    Trib__TrustSigned *env = trust_envelope_parse(bytes, len, TRUST_KIND_CERT, err, errlen);
    if (env == NULL)
        return -1;
    Trib__DomainCert *m = trib__domain_cert__unpack(NULL, env->body.len, env->body.data);
    if (m == NULL) {
        snprintf(err, errlen, "certificate: body is not a DomainCert");
        goto fail;
    }
    if (m->federation_id.len != FED_ID_LEN) {
        snprintf(err, errlen, "certificate: federation id %zu bytes, expected %d",
                 m->federation_id.len, FED_ID_LEN);
        goto fail;
    }
    if (!entry_valid_name(m->domain)) {
        snprintf(err, errlen, "certificate: domain is not a valid domain name");
        goto fail;
    }
    if (!key_ok(m->node_key.data, m->node_key.len, out->curve)) {
        snprintf(err, errlen, "certificate for %s: node key is not a 32-byte Ed25519 public key",
                 m->domain);
        goto fail;
    }
    if (m->serial == 0) {
        snprintf(err, errlen, "certificate for %s: serial 0", m->domain);
        goto fail;
    }
    if (!time_ok(m->not_before_ms) || !time_ok(m->not_after_ms) || !time_ok(m->issued_ms) ||
        m->not_before_ms >= m->not_after_ms) {
        snprintf(err, errlen, "certificate for %s: validity window out of range or empty", m->domain);
        goto fail;
    }
    memcpy(out->fed_id, m->federation_id.data, FED_ID_LEN);
    snprintf(out->domain, sizeof out->domain, "%s", m->domain);
    memcpy(out->node_key, m->node_key.data, ID_PK_LEN);
    out->serial = m->serial;
    out->prev_serial = m->prev_serial;
    out->not_before_ms = m->not_before_ms;
    out->not_after_ms = m->not_after_ms;
    out->issued_ms = m->issued_ms;
    crypto_generichash(out->hash, TRUST_HASH_LEN, env->body.data, env->body.len, NULL, 0);
    trib__domain_cert__free_unpacked(m, NULL);
    out->bytes = malloc(len);
    if (out->bytes == NULL) {
        snprintf(err, errlen, "certificate: out of memory");
        trib__trust_signed__free_unpacked(env, NULL);
        memset(out, 0, sizeof *out);
        return -1;
    }
    memcpy(out->bytes, bytes, len);
    out->len = len;
    out->env = env;
    return 0;
fail:
    if (m)
        trib__domain_cert__free_unpacked(m, NULL);
    trib__trust_signed__free_unpacked(env, NULL);
    memset(out, 0, sizeof *out);
    return -1;
}

void cert_free(cert_t *c)
{
    if (c == NULL)
        return;
    if (c->env)
        trib__trust_signed__free_unpacked(c->env, NULL);
    free(c->bytes);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- certificates: issue */

int cert_issue(const charter_t *ch, const char *domain, const uint8_t node_key[ID_PK_LEN],
               int64_t not_before_ms, int64_t not_after_ms, uint64_t prev_serial,
               const identity_t *const *roots, size_t n, cert_t *out, char *err, size_t errlen)
{
    Trib__DomainCert m = TRIB__DOMAIN_CERT__INIT;
    uint8_t fed[FED_ID_LEN], key[ID_PK_LEN];
    uint8_t *env = NULL;
    size_t envlen = 0;

    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "certificate: sodium_init failed");
        return -1;
    }
    if (!entry_valid_name(domain)) {
        snprintf(err, errlen, "domain '%.64s' is not a valid domain name (" STORE_NAME_RULE ")",
                 domain ? domain : "");
        return -1;
    }
    uint8_t curve[32];   /* roots certify only a key of the prime-order subgroup (the full check) */
    if (crypto_sign_ed25519_pk_to_curve25519(curve, node_key) != 0) {
        snprintf(err, errlen, "certificate for %s: node key is not a valid Ed25519 public key", domain);
        return -1;
    }
    if (charter_roots_can_sign(ch, roots, n, err, errlen) != 0)
        return -1;
    memcpy(fed, ch->fed_id, FED_ID_LEN);
    memcpy(key, node_key, ID_PK_LEN);
    m.federation_id.data = fed;
    m.federation_id.len = FED_ID_LEN;
    m.domain = (char *)domain;
    m.node_key.data = key;
    m.node_key.len = ID_PK_LEN;
    m.serial = fresh_serial();
    m.not_before_ms = not_before_ms;
    m.not_after_ms = not_after_ms;
    m.prev_serial = prev_serial;
    m.issued_ms = clock_wall_ms();
    size_t blen = trib__domain_cert__get_packed_size(&m);
    uint8_t *body = malloc(blen);
    if (body == NULL) {
        snprintf(err, errlen, "certificate: out of memory");
        return -1;
    }
    trib__domain_cert__pack(&m, body);
    int rc = trust_envelope_make(TRUST_KIND_CERT, body, blen, roots, n, &env, &envlen);
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "certificate: signing failed");
        return -1;
    }
    /* Parse what was made, as any receiver will (checks the shape: key, window). */
    rc = cert_parse(env, envlen, out, err, errlen);
    free(env);
    return rc;
}

/* ---------------------------------------------------------------- certificates: verdict */

trust_verdict_t cert_valid_at(const charter_t *ch, const cert_t *c, const revset_t *revs,
                              const char *domain, const uint8_t key[ID_PK_LEN], int64_t t_ms,
                              int64_t skew_ms, char *err, size_t errlen)
{
    char buf[320], ser[17];
    if (err == NULL) {
        err = buf;
        errlen = sizeof buf;
    }
    if (c == NULL || c->env == NULL) {
        snprintf(err, errlen, "certificate: none");
        return TRUST_MALFORMED;
    }
    cert_serial_text(c->serial, ser);
    if (memcmp(c->fed_id, ch->fed_id, FED_ID_LEN) != 0) {
        snprintf(err, errlen, "certificate %s: issued in another federation", ser);
        return TRUST_WRONG_FEDERATION;
    }
    trust_verdict_t v = charter_check_sigs(ch, TRUST_KIND_CERT, c->env, NULL, NULL, err, errlen);
    if (v != TRUST_OK)
        return v;
    return cert_check_claim(c, revs, domain, key, t_ms, skew_ms, err, errlen);
}

trust_verdict_t cert_check_claim(const cert_t *c, const revset_t *revs, const char *domain,
                                 const uint8_t key[ID_PK_LEN], int64_t t_ms, int64_t skew_ms,
                                 char *err, size_t errlen)
{
    char buf[320], when[32], ser[17];
    if (err == NULL) {
        err = buf;
        errlen = sizeof buf;
    }
    cert_serial_text(c->serial, ser);
    if (domain == NULL || strcmp(domain, c->domain) != 0) {
        snprintf(err, errlen, "certificate %s is for domain %s, not %.64s", ser, c->domain,
                 domain ? domain : "(none)");
        return TRUST_WRONG_DOMAIN;
    }
    if (key == NULL || memcmp(key, c->node_key, ID_PK_LEN) != 0) {
        snprintf(err, errlen, "certificate %s of %s is for another node key", ser, c->domain);
        return TRUST_WRONG_KEY;
    }
    const revocation_t *r = revs ? revset_find(revs, c->serial, c->node_key, t_ms) : NULL;
    if (r) {
        trust_time_text(r->effective_ms, when);
        /* who and when: a revocation is signed by a threshold of the roots; its reason if it has one */
        snprintf(err, errlen, "certificate %s of %s: %s revoked from %s by the federation's roots%s%s%s", ser,
                 c->domain, r->by_key ? "its key is" : "it is", when, r->reason[0] ? " (reason: " : "", r->reason,
                 r->reason[0] ? ")" : "");
        return TRUST_REVOKED;
    }
    if (t_ms < c->not_before_ms - skew_ms) {
        trust_time_text(c->not_before_ms, when);
        snprintf(err, errlen, "certificate %s of %s is not valid before %s", ser, c->domain, when);
        return TRUST_NOT_YET_VALID;
    }
    if (t_ms > c->not_after_ms + skew_ms) {
        trust_time_text(c->not_after_ms, when);
        snprintf(err, errlen, "certificate %s of %s expired at %s", ser, c->domain, when);
        return TRUST_EXPIRED;
    }
    return TRUST_OK;
}

/* ---------------------------------------------------------------- certificates: file */

json_t *cert_to_json(const cert_t *c)
{
    char fed[2 * FED_ID_LEN + 1], hash[2 * TRUST_HASH_LEN + 1], node[ID_HEX_LEN];
    char ser[17], prev[17], nb[32], na[32], iss[32];

    trust_hex(c->fed_id, FED_ID_LEN, fed);
    trust_hex(c->hash, TRUST_HASH_LEN, hash);
    identity_hex(c->node_key, node);
    cert_serial_text(c->serial, ser);
    if (c->prev_serial)
        cert_serial_text(c->prev_serial, prev);
    else
        prev[0] = '\0';
    trust_time_text(c->not_before_ms, nb);
    trust_time_text(c->not_after_ms, na);
    trust_time_text(c->issued_ms, iss);
    char *b64 = trust_b64(c->bytes, c->len);
    json_t *signers = signers_json(c->env);
    if (b64 == NULL || signers == NULL) {
        free(b64);
        json_decref(signers);
        return NULL;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}",
                          "kind", "trib.cert", "federation", fed, "domain", c->domain, "node", node,
                          "serial", ser, "prev_serial", prev, "not_before", nb, "not_after", na,
                          "issued", iss, "hash", hash, "signed_by", signers, "signed", b64);
    free(b64);
    return j;
}

/* ---------------------------------------------------------------- revocations */

int revocation_parse(const uint8_t *bytes, size_t len, revocation_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "revocation: sodium_init failed");
        return -1;
    }
    Trib__TrustSigned *env = trust_envelope_parse(bytes, len, TRUST_KIND_REVOKE, err, errlen);
    if (env == NULL)
        return -1;
    Trib__Revocation *m = trib__revocation__unpack(NULL, env->body.len, env->body.data);
    if (m == NULL) {
        snprintf(err, errlen, "revocation: body is not a Revocation");
        goto fail;
    }
    if (m->federation_id.len != FED_ID_LEN) {
        snprintf(err, errlen, "revocation: federation id %zu bytes, expected %d",
                 m->federation_id.len, FED_ID_LEN);
        goto fail;
    }
    if (m->target_case == TRIB__REVOCATION__TARGET_SERIAL) {
        if (m->serial == 0) {
            snprintf(err, errlen, "revocation: serial 0");
            goto fail;
        }
        out->serial = m->serial;
    } else if (m->target_case == TRIB__REVOCATION__TARGET_NODE_KEY) {
        if (m->node_key.len != ID_PK_LEN) {
            snprintf(err, errlen, "revocation: node key %zu bytes, expected %d", m->node_key.len,
                     ID_PK_LEN);
            goto fail;
        }
        out->by_key = 1;
        memcpy(out->node_key, m->node_key.data, ID_PK_LEN);
    } else {
        snprintf(err, errlen, "revocation: names neither a serial nor a node key");
        goto fail;
    }
    if (!time_ok(m->effective_ms) || !time_ok(m->issued_ms)) {
        snprintf(err, errlen, "revocation: effective or issued time out of range");
        goto fail;
    }
    /* The reason is kept printable ASCII (others become '?'): it is shown to operators. */
    size_t rlen = m->reason ? strlen(m->reason) : 0;
    if (rlen > REVOKE_REASON_MAX) {
        snprintf(err, errlen, "revocation: reason %zu bytes, at most %d", rlen, REVOKE_REASON_MAX);
        goto fail;
    }
    for (size_t i = 0; i < rlen; i++)
        out->reason[i] = (m->reason[i] >= 0x20 && m->reason[i] < 0x7f) ? m->reason[i] : '?';
    memcpy(out->fed_id, m->federation_id.data, FED_ID_LEN);
    out->effective_ms = m->effective_ms;
    out->issued_ms = m->issued_ms;
    crypto_generichash(out->hash, TRUST_HASH_LEN, env->body.data, env->body.len, NULL, 0);
    trib__revocation__free_unpacked(m, NULL);
    m = NULL;
    out->bytes = malloc(len);
    if (out->bytes == NULL) {
        snprintf(err, errlen, "revocation: out of memory");
        goto fail;
    }
    memcpy(out->bytes, bytes, len);
    out->len = len;
    out->env = env;
    return 0;
fail:
    if (m)
        trib__revocation__free_unpacked(m, NULL);
    trib__trust_signed__free_unpacked(env, NULL);
    memset(out, 0, sizeof *out);
    return -1;
}

trust_verdict_t revocation_verify(const charter_t *ch, const revocation_t *r, char *err,
                                  size_t errlen)
{
    if (r == NULL || r->env == NULL) {
        snprintf(err, errlen, "revocation: none");
        return TRUST_MALFORMED;
    }
    if (memcmp(r->fed_id, ch->fed_id, FED_ID_LEN) != 0) {
        snprintf(err, errlen, "revocation: issued in another federation");
        return TRUST_WRONG_FEDERATION;
    }
    return charter_check_sigs(ch, TRUST_KIND_REVOKE, r->env, NULL, NULL, err, errlen);
}

void revocation_free(revocation_t *r)
{
    if (r == NULL)
        return;
    if (r->env)
        trib__trust_signed__free_unpacked(r->env, NULL);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

int revocation_issue(const charter_t *ch, int by_key, uint64_t serial,
                     const uint8_t node_key[ID_PK_LEN], int64_t effective_ms, const char *reason,
                     const identity_t *const *roots, size_t n, revocation_t *out, char *err,
                     size_t errlen)
{
    Trib__Revocation m = TRIB__REVOCATION__INIT;
    uint8_t fed[FED_ID_LEN], key[ID_PK_LEN];
    uint8_t *env = NULL;
    size_t envlen = 0;

    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "revocation: sodium_init failed");
        return -1;
    }
    if (charter_roots_can_sign(ch, roots, n, err, errlen) != 0)
        return -1;
    if (!by_key && serial == 0) {
        snprintf(err, errlen, "revocation: serial 0");
        return -1;
    }
    if (reason && strlen(reason) > REVOKE_REASON_MAX) {
        snprintf(err, errlen, "revocation: reason longer than %d bytes", REVOKE_REASON_MAX);
        return -1;
    }
    memcpy(fed, ch->fed_id, FED_ID_LEN);
    m.federation_id.data = fed;
    m.federation_id.len = FED_ID_LEN;
    if (by_key) {
        memcpy(key, node_key, ID_PK_LEN);
        m.target_case = TRIB__REVOCATION__TARGET_NODE_KEY;
        m.node_key.data = key;
        m.node_key.len = ID_PK_LEN;
    } else {
        m.target_case = TRIB__REVOCATION__TARGET_SERIAL;
        m.serial = serial;
    }
    m.effective_ms = effective_ms;
    m.reason = (char *)(reason ? reason : "");
    m.issued_ms = clock_wall_ms();
    size_t blen = trib__revocation__get_packed_size(&m);
    uint8_t *body = malloc(blen);
    if (body == NULL) {
        snprintf(err, errlen, "revocation: out of memory");
        return -1;
    }
    trib__revocation__pack(&m, body);
    int rc = trust_envelope_make(TRUST_KIND_REVOKE, body, blen, roots, n, &env, &envlen);
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "revocation: signing failed");
        return -1;
    }
    rc = revocation_parse(env, envlen, out, err, errlen);
    free(env);
    return rc;
}

json_t *revocation_to_json(const revocation_t *r)
{
    char fed[2 * FED_ID_LEN + 1], hash[2 * TRUST_HASH_LEN + 1], target[ID_HEX_LEN];
    char eff[32], iss[32];

    trust_hex(r->fed_id, FED_ID_LEN, fed);
    trust_hex(r->hash, TRUST_HASH_LEN, hash);
    if (r->by_key)
        identity_hex(r->node_key, target);
    else
        cert_serial_text(r->serial, target);
    trust_time_text(r->effective_ms, eff);
    trust_time_text(r->issued_ms, iss);
    char *b64 = trust_b64(r->bytes, r->len);
    json_t *signers = signers_json(r->env);
    if (b64 == NULL || signers == NULL) {
        free(b64);
        json_decref(signers);
        return NULL;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}",
                          "kind", "trib.revocation", "federation", fed,
                          r->by_key ? "node" : "serial", target, "effective", eff,
                          "reason", r->reason, "issued", iss, "hash", hash,
                          "signed_by", signers, "signed", b64);
    free(b64);
    return j;
}

/* A certificate (kind TRUST_KIND_CERT, out a cert_t), revocation (TRUST_KIND_REVOKE, a
 * revocation_t) or key hand-over (TRUST_KIND_ROTATE, a rotation_t) file: its signed bytes parsed,
 * and its readable fields checked against them (a file whose text says other than what was
 * signed is refused). out zeroed first; 0 or -1. */
static int load_file(const char *path, int kind, void *out, char *err, size_t errlen)
{
    json_t *obj = NULL, *view = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char why[400];
    int rc = -1;

    memset(out, 0, kind == TRUST_KIND_CERT ? sizeof(cert_t) : kind == TRUST_KIND_REVOKE ? sizeof(revocation_t)
                                                                                        : sizeof(rotation_t));
    if (trust_file_read(path, kind, &obj, &bytes, &len, err, errlen) != 0)
        return -1;
    rc = kind == TRUST_KIND_CERT     ? cert_parse(bytes, len, out, why, sizeof why)
       : kind == TRUST_KIND_REVOKE   ? revocation_parse(bytes, len, out, why, sizeof why)
                                     : rotation_parse(bytes, len, out, why, sizeof why);
    if (rc != 0) {
        rc = -1;
        snprintf(err, errlen, "%s: %s", path, why);
        goto out;
    }
    view = kind == TRUST_KIND_CERT ? cert_to_json(out) : kind == TRUST_KIND_REVOKE ? revocation_to_json(out)
                                                                                 : rotation_to_json(out);
    if (view == NULL)
        snprintf(err, errlen, "%s: out of memory", path);
    if (view == NULL || trust_file_matches(path, obj, view, err, errlen) != 0) {
        if (kind == TRUST_KIND_CERT)
            cert_free(out);
        else if (kind == TRUST_KIND_REVOKE)
            revocation_free(out);
        else
            rotation_free(out);
        rc = -1;
    }
out:
    json_decref(view);
    json_decref(obj);
    free(bytes);
    return rc;
}

int cert_load(const char *path, cert_t *out, char *err, size_t errlen)
{
    return load_file(path, TRUST_KIND_CERT, out, err, errlen);
}

int revocation_load(const char *path, revocation_t *out, char *err, size_t errlen)
{
    return load_file(path, TRUST_KIND_REVOKE, out, err, errlen);
}

/* ---------------------------------------------------------------- revocation set */

int revset_add(revset_t *s, const revocation_t *r)
{
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(s->items[i].hash, r->hash, TRUST_HASH_LEN) == 0)
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        revocation_t *p = realloc(s->items, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->items = p;
        s->cap = cap;
    }
    revocation_t *d = &s->items[s->n++];
    *d = *r;
    d->env = NULL;      /* facts only: the caller keeps (and frees) the envelope and bytes */
    d->bytes = NULL;
    d->len = 0;
    return 1;
}

const revocation_t *revset_find(const revset_t *s, uint64_t serial, const uint8_t key[ID_PK_LEN],
                                int64_t t_ms)
{
    for (size_t i = 0; i < s->n; i++) {
        const revocation_t *r = &s->items[i];
        int hit = r->by_key ? key && memcmp(r->node_key, key, ID_PK_LEN) == 0 : r->serial == serial;
        if (hit && r->effective_ms <= t_ms)
            return r;
    }
    return NULL;
}

void revset_free(revset_t *s)
{
    if (s == NULL)
        return;
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* ================================================================ key rotation hand-over */

int rotation_make(const identity_t *old, const char *domain, const uint8_t new_key[ID_PK_LEN],
                  int64_t effective_ms, int64_t overlap_ms, rotation_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!store_valid_name(domain, strlen(domain))) {
        snprintf(err, errlen, "rotation: domain '%.64s' is not " STORE_NAME_RULE, domain);
        return -1;
    }
    if (!memcmp(old->pk, new_key, ID_PK_LEN) || overlap_ms < 0 || effective_ms < 0 ||
        effective_ms > TRUST_TIME_MAX_MS || overlap_ms > TRUST_TIME_MAX_MS) {
        snprintf(err, errlen, "rotation: the new key must differ from the old, times in range");
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    Trib__KeyRotation m = TRIB__KEY_ROTATION__INIT;
    m.domain = (char *)domain;
    m.old_key = (ProtobufCBinaryData){ID_PK_LEN, (uint8_t *)old->pk};
    m.new_key = (ProtobufCBinaryData){ID_PK_LEN, (uint8_t *)new_key};
    m.effective_ms = effective_ms;
    m.overlap_ms = overlap_ms;
    m.issued_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    size_t blen = trib__key_rotation__get_packed_size(&m);
    uint8_t *body = malloc(blen), *env = NULL;
    size_t envlen = 0;
    const identity_t *const signers[] = { old };
    if (!body)
        return -1;
    trib__key_rotation__pack(&m, body);
    int rc = trust_envelope_make(TRUST_KIND_ROTATE, body, blen, signers, 1, &env, &envlen);
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "rotation: signing failed");
        return -1;
    }
    rc = rotation_parse(env, envlen, out, err, errlen);
    free(env);
    return rc;
}

int rotation_parse(const uint8_t *bytes, size_t len, rotation_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    Trib__TrustSigned *env = trust_envelope_parse(bytes, len, TRUST_KIND_ROTATE, err, errlen);
    if (!env)
        return -1;
    Trib__KeyRotation *m = trib__key_rotation__unpack(NULL, env->body.len, env->body.data);
    int rc = -1;
    if (!m || !m->domain || !store_valid_name(m->domain, strlen(m->domain)) || m->old_key.len != ID_PK_LEN ||
        m->new_key.len != ID_PK_LEN || m->effective_ms < 0 || m->effective_ms > TRUST_TIME_MAX_MS ||
        m->overlap_ms < 0 || m->overlap_ms > TRUST_TIME_MAX_MS || m->issued_ms < 0 ||
        m->issued_ms > TRUST_TIME_MAX_MS || !memcmp(m->old_key.data, m->new_key.data, ID_PK_LEN)) {
        snprintf(err, errlen, "rotation: not a valid KeyRotation body (domain, two different 32-byte keys, "
                 "times in range)");
        goto out;
    }
    if (env->n_sigs != 1 || memcmp(env->sigs[0]->signer.data, m->old_key.data, ID_PK_LEN) != 0) {
        snprintf(err, errlen, "rotation: must carry exactly one signature, by the old key");
        goto out;
    }
    if (!trust_sig_ok(TRUST_KIND_ROTATE, env->body.data, env->body.len, m->old_key.data,
                      env->sigs[0]->signature.data)) {
        snprintf(err, errlen, "rotation: the old key's signature does not verify");
        goto out;
    }
    snprintf(out->domain, sizeof out->domain, "%s", m->domain);
    memcpy(out->old_key, m->old_key.data, ID_PK_LEN);
    memcpy(out->new_key, m->new_key.data, ID_PK_LEN);
    out->effective_ms = m->effective_ms;
    out->overlap_ms = m->overlap_ms;
    out->issued_ms = m->issued_ms;
    crypto_generichash(out->hash, TRUST_HASH_LEN, env->body.data, env->body.len, NULL, 0);
    out->bytes = malloc(len);
    if (!out->bytes) {
        snprintf(err, errlen, "rotation: out of memory");
        goto out;
    }
    memcpy(out->bytes, bytes, len);
    out->len = len;
    rc = 0;
out:
    if (m)
        trib__key_rotation__free_unpacked(m, NULL);
    trib__trust_signed__free_unpacked(env, NULL);
    return rc;
}

void rotation_free(rotation_t *r)
{
    if (r) {
        free(r->bytes);
        memset(r, 0, sizeof *r);
    }
}

json_t *rotation_to_json(const rotation_t *r)
{
    char oldh[ID_HEX_LEN], newh[ID_HEX_LEN], eff[32], iss[32], hash[2 * TRUST_HASH_LEN + 1];
    identity_hex(r->old_key, oldh);
    identity_hex(r->new_key, newh);
    trust_time_text(r->effective_ms, eff);
    trust_time_text(r->issued_ms, iss);
    trust_hex(r->hash, TRUST_HASH_LEN, hash);
    char *b64 = trust_b64(r->bytes, r->len);
    if (!b64)
        return NULL;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "kind", "trib.rotation", "domain", r->domain,
                          "old_node", oldh, "new_node", newh, "effective", eff, "overlap_s",
                          (json_int_t)(r->overlap_ms / 1000), "issued", iss, "hash", hash, "signed", b64);
    free(b64);
    return j;
}

int rotation_load(const char *path, rotation_t *out, char *err, size_t errlen)
{
    return load_file(path, TRUST_KIND_ROTATE, out, err, errlen);
}
