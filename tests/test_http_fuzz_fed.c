/* tests/test_http_fuzz_fed.c - the bounded random-request run of tests/httpfuzz.h against two real
 * agents of a CHARTERED federation (docs/federation.md, DESIGN §12): three roots (threshold 2) and
 * a governance key sign the charter; payments and growth run with --charter and certificates of
 * their keys. The federation's operators' objects are sent as the roots, the governance key or a
 * node's old key made them, and changed: a field changed under the old signatures, re-signed by
 * the wrong keys (strangers, one root, the governance key, another federation's roots), of
 * another federation, expired, replayed (held ones, and a charter older than the one in force),
 * later charters that skip a version or name another predecessor, the envelope truncated or its
 * signatures broken, the file's kind another, oversize (past 256 KiB, past --max-body-mb),
 * deeply nested; to POST /v1/federation/objects, POST /v1/policy and POST /v1/node/key/rotate
 * (and, once a rotation is pending, certificates for its next key that must not make the node
 * switch: expired, one root's, another federation's, changed, another domain's), with the
 * open-mode run's own bodies now and then. Tokens: the run's (forged, expired, of a
 * stranger's key, of another domain) and a chartered federation's own: a domain's token signed by
 * another domain's certified key, one by a revoked key, one by a key certified for a domain no
 * member runs.
 *
 * Beyond the run's checks (no agent exits, every answer well-formed and documented, no 5xx but
 * 503/507, 4xx the JSON error shape, nothing stored changed, refusals counted, clean exits):
 * - no object sent is ever added (201): every one is either held already (200) or refused;
 * - the trust state of the node asked (GET /v1/federation, GET /v1/policy, and who is a member
 *   and verified in GET /v1/members) reads the same after every request to those three routes;
 * - the refusals of /v1/federation/objects are counted in trib_fedlog_refused_total;
 * - the objects sent at once from six clients (threads) to both agents: each answered as
 *   documented, none added, the trust state unchanged;
 * - then one client posts until it is rate limited: a 429 rate_limited with the bucket, a detail
 *   naming the client, retry_after_s and a matching Retry-After header, counted; another client
 *   and the node's own operator are served meanwhile, and the first is served again once its
 *   Retry-After has passed.
 *
 * Owns: its work dir (charter, certificates; removed) and the agents (stopped).
 * Bounded: a fixed seed (TRIB_FUZZ_SEED overrides it, TRIB_FUZZ_N the number of requests), printed
 * with the request and the answer on any failure; TRIB_FUZZ_TRACE=1 prints every request. 2,500
 * requests take 23-27 s on the shared 2-core machine (about 30 s with the setup and the rate-limit
 * phase), 33 s under ASan. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/clock.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/httpfuzz.h"

#define DEFAULT_SEED 20261207u
#define DEFAULT_N 2500
#define DAY_MS 86400000LL

static char work[64], chpath[128], err[1024];

static void teardown(void)
{
    h_cleanup_all();
    fx_rmdir(work);
}

TestSuite(http_fuzz_fed, .fini = teardown, .timeout = 300);

/* ------------------------------------------------------------------ the federation's keys and objects */

static identity_t R1, R2, R3, G, S1, S2, O1, O2;   /* roots, governance, strangers, another federation's roots */
static identity_t K_spare, K_old, K_gone, K_next;   /* keys of certificates no agent runs with */
static charter_t ch1, ch2, other;

/* One trust object: its kind, body and the keys that sign it; the signed envelope. */
typedef struct {
    const char *name;
    trust_kind_t kind;
    uint8_t *body, *env;
    size_t blen, elen;
    int held;                   /* held by both agents before the run (a replay is 200) */
} obj_t;

enum {
    O_CERT_A, O_CERT_B, O_CERT_SPARE, O_CERT_OLD, O_CERT_GONE, O_REV_GONE, O_CHARTER2, O_POLICY1, O_POLICY2,
    O_ROT_SPARE, O_CHARTER1, O_CHARTER_GAP, O_CHARTER_FORK, O_CERT_OTHER, O_REV_OTHER, O_ROT_GONE, O_ROT_WRONG,
    O_POLICY_OTHER, O_POLICY_ROOT, O_COUNT
};
static obj_t objs[O_COUNT];

/* The body of a signed envelope (malloc'd). */
static uint8_t *body_of_env(const uint8_t *env, size_t elen, size_t *blen)
{
    Trib__TrustSigned *e = trib__trust_signed__unpack(NULL, elen, env);
    cr_assert_not_null(e);
    uint8_t *b = malloc(e->body.len);
    memcpy(b, e->body.data, e->body.len);
    *blen = e->body.len;
    trib__trust_signed__free_unpacked(e, NULL);
    return b;
}

static void keep(int i, const char *name, trust_kind_t kind, const uint8_t *env, size_t elen, int held)
{
    obj_t *o = &objs[i];
    o->name = name;
    o->kind = kind;
    o->env = malloc(elen);
    memcpy(o->env, env, elen);
    o->elen = elen;
    o->body = body_of_env(env, elen, &o->blen);
    o->held = held;
}

static void keep_cert(int i, const char *name, const charter_t *c, const char *domain, const uint8_t pk[32],
                      int64_t nb, int64_t na, const identity_t *const *roots, int held, cert_t *out)
{
    cert_t tmp, *ct = out ? out : &tmp;
    cr_assert_eq(cert_issue(c, domain, pk, nb, na, 0, roots, 2, ct, err, sizeof err), 0, "%s", err);
    keep(i, name, TRUST_KIND_CERT, ct->bytes, ct->len, held);
    if (!out)
        cert_free(ct);
}

static uint8_t *policy_env(const charter_t *c, uint64_t version, const identity_t *by, size_t *elen)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "kind: governance.policyset\nversion: %llu\ndescription: fuzz\nrules:\n"
             "  - id: owners.required\n    severity: warning\n    type: required\n    paths: [owners.business]\n",
             (unsigned long long)version);
    Trib__PolicySet b = TRIB__POLICY_SET__INIT;
    b.federation_id.data = (uint8_t *)c->fed_id;
    b.federation_id.len = FED_ID_LEN;
    b.version = version;
    b.issued_ms = fx_now_ms();
    b.text = yaml;
    size_t blen = trib__policy_set__get_packed_size(&b);
    uint8_t *body = malloc(blen), *env = NULL;
    trib__policy_set__pack(&b, body);
    const identity_t *keys[] = {by};
    cr_assert_eq(trust_envelope_make(TRUST_KIND_POLICY, body, blen, keys, 1, &env, elen), 0);
    free(body);
    return env;
}

/* A charter of roots r1..r3 and the governance key g, threshold 2 (governance 1), signed by
 * r1 and r2 after prev (NULL: version 1). */
static void make_charter(charter_t *c, const charter_t *prev, const identity_t *r1, const identity_t *r2,
                         const identity_t *r3, const identity_t *g)
{
    memset(c, 0, sizeof *c);
    if (!prev)
        randombytes_buf(c->fed_id, FED_ID_LEN);
    const identity_t *keys[] = {r1, r2, r3, g};
    for (size_t i = 0; i < 4; i++) {
        memcpy(c->keys[i].key, keys[i]->pk, ID_PK_LEN);
        c->keys[i].role = i < 3 ? CHARTER_ROLE_ROOT : CHARTER_ROLE_GOVERNANCE;
    }
    c->nkeys = 4;
    c->threshold = 2;
    c->gov_threshold = 1;
    c->issued_ms = fx_now_ms();
    const identity_t *signers[] = {r1, r2};
    cr_assert_eq(charter_sign(prev, c, signers, 2, err, sizeof err), 0, "%s", err);
}

static void write_cert(const cert_t *c, const char *file)
{
    json_t *j = cert_to_json(c);
    cr_assert_eq(trust_file_write(file, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
}

/* The file form of an envelope of kind (its "kind" as file_kind says, NULL: its own). */
static char *file_of(const char *file_kind, trust_kind_t kind, const uint8_t *env, size_t elen)
{
    char *b64 = trust_b64(env, elen);
    json_t *j = json_pack("{s:s,s:s}", "kind", file_kind ? file_kind : trust_file_kind_name(kind), "signed", b64);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    free(b64);
    return s;
}

/* ------------------------------------------------------------------ the agents */

static identity_t IA, IB;

static void node_dir(const char *name, char *dir, size_t cap, identity_t *id)
{
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
}

/* POSTs body to n's path with n's admin token: the status (body's answer dropped). */
static long post(h_node_t *n, const char *path, const char *body)
{
    char url[300];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http("POST", url, "application/json", body, strlen(body), &r), 0, "POST %s", url);
    long st = r.status;
    cr_assert(st == 200 || st == 201, "POST %s: %ld %s", url, st, r.body);
    h_resp_free(&r);
    return st;
}

static void submit(h_node_t *n, int i)
{
    char *f = file_of(NULL, objs[i].kind, objs[i].env, objs[i].elen);
    post(n, "/v1/federation/objects", f);
    free(f);
}

/* ------------------------------------------------------------------ the trust state */

/* What a node's trust reads as: its federation view, its policy in force, and its members (who,
 * verified, certificate, trust refused) and those that are not. */
static char *trust_state(h_node_t *n)
{
    json_t *out = json_object();
    json_object_set_new(out, "federation", h_get_json(n->url, "/v1/federation", NULL));
    json_object_set_new(out, "policy", h_get_json(n->url, "/v1/policy", NULL));
    json_t *m = h_get_json(n->url, "/v1/members", NULL), *who = json_array();
    json_t *arr = json_is_array(m) ? m : json_object_get(m, "members");
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        json_t *x = json_object();
        static const char *const fields[] = {"node_id", "domain", "verified", "cert_serial", "trust_refused"};
        for (size_t k = 0; k < sizeof fields / sizeof *fields; k++)
            if (json_object_get(e, fields[k]))
                json_object_set(x, fields[k], json_object_get(e, fields[k]));
        json_array_append_new(who, x);
    }
    json_object_set_new(out, "members", who);
    json_object_set(out, "uncertified", json_object_get(m, "uncertified") ? json_object_get(m, "uncertified")
                                                                          : json_null());
    json_decref(m);
    char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(out);
    return s;
}

static char *trust_before[2];
static char next_key[2][ID_HEX_LEN];   /* a pending rotation's next key at each agent (a 202 told it), "" none */

typedef struct {
    long fed_refused[2];        /* refusals of /v1/federation/objects by the federation log */
    long policy_refused[2];     /* refusals of POST /v1/policy for what the set is */
    long limited[2];            /* 429s seen */
    long trust_requests;
} fed_tally_t;
static fed_tally_t ft;

static int trust_route(const hf_route_t *r)
{
    return r && (!strcmp(r->name, "federation_objects") || !strcmp(r->name, "policy_post") ||
                 !strcmp(r->name, "key_rotate"));
}

static void check_429(const hf_resp_t *r, const char *src, const char *ctx)
{
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *b = json_string_value(json_object_get(j, "bucket"));
    const char *d = json_string_value(json_object_get(j, "detail"));
    json_int_t after = json_integer_value(json_object_get(j, "retry_after_s"));
    cr_assert(e && !strcmp(e, "rate_limited"), "a 429 that is not rate_limited: %s", ctx);
    cr_assert(b && (!strcmp(b, "client") || !strcmp(b, "all")), "a 429 without its bucket: %s", ctx);
    cr_assert(d && *d && (strcmp(b, "client") || !src || strstr(d, src)), "a 429 whose detail does not name %s: %s",
              src ? src : "the client", ctx);
    cr_assert(after >= 1 && after <= 60, "retry_after_s %lld: %s", (long long)after, ctx);
    cr_assert(r->retry_after[0] && atoll(r->retry_after) == after, "Retry-After '%s', retry_after_s %lld: %s",
              r->retry_after, (long long)after, ctx);
    json_decref(j);
}

/* After every answer: an object is never added, a 429 is as documented, a refusal by the log is
 * tallied, and the trust state of the node asked is what it was. */
static void after_answer(const hf_req_t *q, const hf_resp_t *r)
{
    if (!trust_route(q->route) || q->head)
        return;
    int at = q->n == &hf_a ? 0 : 1;
    ft.trust_requests++;
    if (!strcmp(q->route->name, "key_rotate") && r->status == 202) {
        json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, NULL);
        const char *k = json_string_value(json_object_get(j, "new_node_id"));
        if (k && strlen(k) == ID_HEX_LEN - 1)
            memcpy(next_key[at], k, ID_HEX_LEN);
        json_decref(j);
    }
    if (!strcmp(q->route->name, "federation_objects")) {
        cr_assert_neq(r->status, 201, "an object sent was added (none the run sends is new): %s", hf_describe(q, r));
        if (r->status == 429) {
            ft.limited[at]++;
            check_429(r, q->src[0] ? q->src : "127.0.0.1", hf_describe(q, r));
        }
        json_t *j = r->status >= 400 ? json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, NULL) : NULL;
        const char *e = json_string_value(json_object_get(j, "error"));
        static const char *const by_log[] = {"malformed", "kind_mismatch", "unknown_kind", "forged", "below_threshold",
                                             "wrong_federation", "uncertified", "wrong_domain", "revoked",
                                             "stale_version", "version_gap", "broken_chain", "policy_refused"};
        for (size_t i = 0; e && i < sizeof by_log / sizeof *by_log; i++)
            if (!strcmp(e, by_log[i]) && !q->library && q->kind == K_ROUTE)
                ft.fed_refused[at]++;
        json_decref(j);
    }
    if (!strcmp(q->route->name, "policy_post") && r->status >= 400 && q->kind == K_ROUTE && !q->library) {
        json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "error"));
        static const char *const by_policy[] = {"bad_policy", "policy_unsigned", "policy_stale", "policy_conflict",
                                                "signature_required"};
        for (size_t i = 0; e && i < sizeof by_policy / sizeof *by_policy; i++)
            if (!strcmp(e, by_policy[i]))
                ft.policy_refused[at]++;
        json_decref(j);
    }
    char *now = trust_state(q->n);
    if (strcmp(now, trust_before[at]))
        cr_assert_fail("%s's trust state changed:\n  before %s\n  after  %s\n  after %s", q->n->domain,
                       trust_before[at], now, hf_describe(q, r));
    free(now);
}

/* ------------------------------------------------------------------ bodies */

/* body with one field (not repeated) of its message changed; 0, or -1 when it has none to change. */
static int edit_field(const ProtobufCMessageDescriptor *d, uint8_t **body, size_t *len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, *len, *body);
    if (!m)
        return -1;
    const ProtobufCFieldDescriptor *f = NULL;
    for (int tries = 0; tries < 16 && !f; tries++) {
        const ProtobufCFieldDescriptor *c = &d->fields[hf_rn(d->n_fields)];
        int oneof_other = (c->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                          *(const uint32_t *)((const char *)m + c->quantifier_offset) != c->id;
        if (c->label != PROTOBUF_C_LABEL_REPEATED && !oneof_other)
            f = c;
    }
    if (!f) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    void *at = (char *)m + f->offset;
    char *saved_s = NULL, sbuf[128];
    int rc = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64: *(uint64_t *)at ^= (uint64_t)1 << hf_rn(64); break;
    case PROTOBUF_C_TYPE_INT64:
        *(int64_t *)at += HF_PICK(((int64_t[]){1, -1, DAY_MS, -400 * DAY_MS, 4000 * DAY_MS}));
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM: *(uint32_t *)at += 1 + (uint32_t)hf_rn(3); break;
    case PROTOBUF_C_TYPE_STRING:
        saved_s = *(char **)at;
        snprintf(sbuf, sizeof sbuf, "%s", HF_PICK(((const char *[]){"growth", "payments", "evil", "", "x"})));
        *(char **)at = sbuf;
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = at;
        if (bd->len)
            bd->data[hf_rn(bd->len)] ^= (uint8_t)(1 + hf_rn(255));
        else
            rc = -1;
        break;
    }
    default: rc = -1;
    }
    if (rc == 0) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *out = malloc(n ? n : 1);
        protobuf_c_message_pack(m, out);
        free(*body);
        *body = out;
        *len = n;
    }
    if (saved_s)
        *(char **)((char *)m + f->offset) = saved_s;
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static const ProtobufCMessageDescriptor *descriptor(trust_kind_t k)
{
    switch (k) {
    case TRUST_KIND_CHARTER: return &trib__charter__descriptor;
    case TRUST_KIND_CERT: return &trib__domain_cert__descriptor;
    case TRUST_KIND_REVOKE: return &trib__revocation__descriptor;
    case TRUST_KIND_POLICY: return &trib__policy_set__descriptor;
    default: return &trib__key_rotation__descriptor;
    }
}

/* The envelope of o with body (its own signatures kept). */
static uint8_t *with_body(const obj_t *o, const uint8_t *body, size_t blen, size_t *elen)
{
    Trib__TrustSigned *e = trib__trust_signed__unpack(NULL, o->elen, o->env);
    cr_assert_not_null(e);
    ProtobufCBinaryData keep_b = e->body;
    e->body.data = (uint8_t *)body;
    e->body.len = blen;
    *elen = trib__trust_signed__get_packed_size(e);
    uint8_t *out = malloc(*elen);
    trib__trust_signed__pack(e, out);
    e->body = keep_b;
    trib__trust_signed__free_unpacked(e, NULL);
    return out;
}

/* The envelope of o with its signatures changed: none, one duplicated, 33, one signer cut short,
 * a signature of another kind's tag. */
static uint8_t *bad_sigs(const obj_t *o, size_t *elen, hf_req_t *q)
{
    Trib__TrustSigned *e = trib__trust_signed__unpack(NULL, o->elen, o->env);
    cr_assert_not_null(e);
    size_t keep_n = e->n_sigs;
    Trib__TrustSignature **keep_s = e->sigs, *many[40];
    int how = (int)hf_rn(3);
    if (how == 0 || !e->n_sigs) {
        hf_note(q, "sigs-none");
        e->n_sigs = 0;
    } else if (how == 1) {
        hf_note(q, "sigs-33");
        for (size_t i = 0; i < 33; i++)
            many[i] = keep_s[i % keep_n];
        e->sigs = many;
        e->n_sigs = 33;
    } else {
        hf_note(q, "sigs-short-signer");
        e->sigs[0]->signer.len = e->sigs[0]->signer.len ? e->sigs[0]->signer.len - 1 : 0;
    }
    *elen = trib__trust_signed__get_packed_size(e);
    uint8_t *out = malloc(*elen);
    trib__trust_signed__pack(e, out);
    e->sigs = keep_s;
    e->n_sigs = keep_n;
    if (how == 2 && keep_n)
        e->sigs[0]->signer.len++;
    trib__trust_signed__free_unpacked(e, NULL);
    return out;
}

/* A trust object file for q: one of the federation's objects (for a policy route mostly a policy
 * set), as made or changed. */
static void trust_file(hf_req_t *q, hf_buf_t *b, int policy)
{
    static const int sets[] = {O_POLICY1, O_POLICY2, O_POLICY_OTHER, O_POLICY_ROOT};
    int i = policy && hf_chance(75) ? HF_PICK(sets) : (int)hf_rn(O_COUNT);
    const obj_t *o = &objs[i];
    hf_note(q, o->name);
    uint8_t *body = malloc(o->blen), *env = NULL;
    memcpy(body, o->body, o->blen);
    size_t blen = o->blen, elen = 0;
    const char *file_kind = NULL;
    int how = q->clean ? 0 : (int)hf_rn(10);
    static const identity_t *const strangers[] = {&S1, &S2}, *const one_root[] = {&R1}, *const gov[] = {&G},
                                    *const others[] = {&O1, &O2}, *const nodes[] = {&IA, &IB};
    switch (how) {
    case 0: case 1:   /* as made: held (200) or refused for what it is */
        hf_note(q, "as-made");
        env = malloc(o->elen);
        memcpy(env, o->env, o->elen);
        elen = o->elen;
        break;
    case 2: case 3:   /* a field changed, the signatures kept: forged */
        hf_note(q, "field-changed");
        edit_field(descriptor(o->kind), &body, &blen);
        env = with_body(o, body, blen, &elen);
        break;
    case 4: case 5: {   /* a field changed (or not), re-signed by keys that may not sign it */
        int w = (int)hf_rn(5);
        static const char *const whom[] = {"resigned-strangers", "resigned-one-root", "resigned-governance",
                                           "resigned-other-federation", "resigned-nodes"};
        const identity_t *const *by[] = {strangers, one_root, gov, others, nodes};
        size_t nby[] = {2, 1, 1, 2, 2};
        hf_note(q, whom[w]);
        if (hf_chance(70))
            edit_field(descriptor(o->kind), &body, &blen);
        if (o->kind == TRUST_KIND_POLICY && w == 2)   /* the governance key may sign a policy set */
            w = 0;
        if (o->kind == TRUST_KIND_ROTATE && w == 4)   /* a node's key may sign a hand-over of its own domain */
            w = 0;
        cr_assert_eq(trust_envelope_make(o->kind, body, blen, by[w], nby[w], &env, &elen), 0);
        break;
    }
    case 6:   /* the signatures broken */
        env = bad_sigs(o, &elen, q);
        break;
    case 7: {   /* truncated */
        hf_note(q, "truncated");
        elen = o->elen ? hf_rn(o->elen) : 0;
        env = malloc(elen ? elen : 1);
        memcpy(env, o->env, elen);
        break;
    }
    case 8:   /* the file's kind another */
        hf_note(q, "file-kind");
        env = malloc(o->elen);
        memcpy(env, o->env, o->elen);
        elen = o->elen;
        file_kind = HF_PICK(((const char *[]){"trib.cert", "trib.charter", "trib.revocation", "trib.policy",
                                              "trib.rotation", "trib.token", "TRIB.CERT"}));
        break;
    default: {   /* the body itself past its bounds: over 64 KiB signed */
        hf_note(q, "signed-oversize");
        size_t n = (64u << 10) + 1 + hf_rn(4000);
        uint8_t *big = calloc(1, n);
        memcpy(big, o->env, o->elen);
        env = big;
        elen = n;
        break;
    }
    }
    char *f = file_of(file_kind, o->kind, env, elen);
    int shape = q->clean ? 0 : (int)hf_rn(20);
    if (shape == 1) {   /* past 256 KiB (too_large), or past --max-body-mb 1 (the API's 413) */
        hf_note(q, "file-oversize");
        json_t *j = json_loads(f, 0, NULL);
        size_t n = hf_chance(70) ? (256u << 10) + hf_rn(10000) : (1u << 20) + hf_rn(10000);
        char *pad = malloc(n + 1);
        memset(pad, 'p', n);
        pad[n] = '\0';
        json_object_set_new(j, "pad", json_string(pad));
        free(pad);
        free(f);
        f = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        hf_str(b, f);
    } else if (shape == 2) {   /* deeply nested */
        hf_note(q, "nested");
        size_t depth = hf_chance(50) ? 100 + hf_rn(500) : 3000 + hf_rn(5000);
        hf_put(b, f, strlen(f) - 1);
        hf_str(b, ",\"x\":");
        for (size_t k = 0; k < depth; k++)
            hf_str(b, hf_chance(50) ? "[" : "{\"a\":");
        hf_str(b, "}");
    } else if (shape == 3) {   /* readable fields beside the signed bytes, which alone are read */
        hf_note(q, "readable-fields");
        json_t *j = json_loads(f, 0, NULL);
        json_object_set_new(j, "domain", json_string("evil"));
        json_object_set_new(j, "signed_by", json_pack("[s]", IA.hex));
        free(f);
        f = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        hf_str(b, f);
    } else if (shape == 4) {   /* the base64 cut or changed */
        hf_note(q, "b64");
        hf_str(b, f);
        char *sg = strstr(b->p, "\"signed\":\"");
        if (sg && b->len > 20) {
            char *v = sg + 10;
            size_t vl = strcspn(v, "\"");
            if (vl > 4)
                v[hf_rn(vl)] = HF_PICK(((const char[]){'!', '=', '-', '_', ' ', 'A'}));
        }
    } else {
        hf_str(b, f);
    }
    free(f);
    free(body);
    free(env);
}

/* {"cert": ...} of a certificate for the next key of a pending rotation at agent at that must not
 * make it switch: expired, below the threshold, of another federation, changed under its
 * signatures, for another domain. (One the roots signed for its domain, valid now, is never sent.) */
static void next_cert(hf_req_t *q, int at, hf_buf_t *b)
{
    uint8_t pk[ID_PK_LEN];
    cr_assert_eq(identity_from_hex(next_key[at], pk), 0);
    int64_t t = fx_now_ms();
    const char *domain = at ? "growth" : "payments";
    static const identity_t *const roots[] = {&R1, &R2}, *const one[] = {&R1}, *const other_roots[] = {&O1, &O2};
    charter_t c = ch2;
    const identity_t *const *by = roots;
    size_t nby = 2;
    int64_t nb = t - DAY_MS, na = t + 30 * DAY_MS;
    int how = (int)hf_rn(5);
    static const char *const names[] = {"next-cert-expired", "next-cert-one-root", "next-cert-other-federation",
                                        "next-cert-changed", "next-cert-other-domain"};
    hf_note(q, names[how]);
    if (how == 0)
        nb = t - 30 * DAY_MS, na = t - 2 * DAY_MS;
    else if (how == 1)
        c.threshold = 1, by = one, nby = 1;
    else if (how == 2)
        c = other, by = other_roots;
    else if (how == 4)
        domain = at ? "spare" : "growth";
    cert_t ct;
    cr_assert_eq(cert_issue(&c, domain, pk, nb, na, 0, by, nby, &ct, err, sizeof err), 0, "%s", err);
    uint8_t *env = ct.bytes;
    size_t elen = ct.len;
    if (how == 3) {   /* a field changed, the roots' signatures kept */
        obj_t o = {.kind = TRUST_KIND_CERT, .env = ct.bytes, .elen = ct.len};
        size_t blen;
        uint8_t *body = body_of_env(ct.bytes, ct.len, &blen);
        cr_assert_eq(edit_field(&trib__domain_cert__descriptor, &body, &blen), 0);
        env = with_body(&o, body, blen, &elen);
        free(body);
    }
    char *b64 = trust_b64(env, elen);
    hf_fmt(b, "{\"cert\":\"%s\",\"overlap_s\":60}", b64);
    free(b64);
    if (env != ct.bytes)
        free(env);
    cert_free(&ct);
}

/* The run's bodies for the routes of the federation: its objects to POST /v1/federation/objects
 * and POST /v1/policy (the signed file; YAML at times, which a chartered node refuses), and to
 * POST /v1/node/key/rotate {} or {"cert": ...} of the federation's certificates. */
static int fed_body(hf_req_t *q, int kind, hf_buf_t *b, const char **ctype)
{
    if (kind != B_TRUST && kind != B_POLICY && kind != B_ROTATE)
        return 0;
    if (!q->clean && hf_chance(10))
        return 0;   /* the run's own */
    *ctype = "application/json";
    if (kind == B_ROTATE) {
        int at = q->n == &hf_a ? 0 : 1;
        if (next_key[at][0] && hf_chance(40)) {
            next_cert(q, at, b);
            return 1;
        }
        if (hf_chance(30)) {
            hf_str(b, "{}");
            return 1;
        }
        static const int certs[] = {O_CERT_A, O_CERT_B, O_CERT_SPARE, O_CERT_OLD, O_CERT_GONE, O_CERT_OTHER};
        const obj_t *o = &objs[HF_PICK(certs)];
        hf_note(q, o->name);
        char *b64 = trust_b64(o->env, o->elen);
        hf_fmt(b, "{\"cert\":\"%s\",\"overlap_s\":%s}", b64, HF_PICK(((const char *[]){"60", "0", "-1", "86400"})));
        free(b64);
        return 1;
    }
    trust_file(q, b, kind == B_POLICY);
    return 1;
}

/* What the chartered mode adds to the table's statuses. */
static const char *fed_statuses(const hf_route_t *r)
{
    return NULL;
}

/* ------------------------------------------------------------------ the rate limit */

/* POSTs body to /v1/federation/objects on n from src: the answer. */
static void submit_from(h_node_t *n, const char *src, const char *body, hf_resp_t *r)
{
    hf_buf_t w = {0};
    hf_fmt(&w, "POST /v1/federation/objects HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    hf_send(n, src, w.p, w.len, r);
    hf_free(&w);
}

typedef struct {
    h_node_t *n;
    const char *src, *body;
} served_t;

static int served_again(void *ctx)
{
    served_t *s = ctx;
    hf_resp_t r;
    submit_from(s->n, s->src, s->body, &r);
    int ok = r.status == 200;
    hf_resp_free(&r);
    return ok;
}

/* One client posts a held object until it is refused 429 (a burst of 30, then 5 a second): the
 * answer as documented; another client and the operator (127.0.0.1) are served meanwhile, the
 * client itself on other routes too, and again on this one once its Retry-After has passed. */
static void rate_limit_phase(h_node_t *n)
{
    const char *me = "127.0.0.252", *other_client = "127.0.0.253";
    char *held = file_of(NULL, objs[O_CERT_A].kind, objs[O_CERT_A].env, objs[O_CERT_A].elen);
    double c0 = h_metric(n->url, "trib_fed_submit_rate_limited_total{bucket=\"client\"}");
    double h0 = h_metric(n->url, "trib_http_requests_total{route=\"federation_objects\",status=\"429\"}");
    hf_resp_t r;
    int sent = 0, ok = 0;
    for (; sent < 300; sent++) {
        submit_from(n, me, held, &r);
        if (r.status == 429)
            break;
        cr_assert_eq(r.status, 200, "%s: a held object from %s: %ld %s", n->domain, me, r.status,
                     hf_shown(r.raw.p ? r.raw.p : "", r.raw.len, 400));
        ok++;
        hf_resp_free(&r);
    }
    cr_assert_eq(r.status, 429, "%s: %d submissions from one client and no 429", n->domain, sent);
    cr_expect_geq(ok, 30, "%s: refused before its burst of 30 (after %d)", n->domain, ok);
    char ctx[300];
    snprintf(ctx, sizeof ctx, "%s after %d submissions from %s: %s", n->domain, ok, me,
             hf_shown(r.raw.p ? r.raw.p : "", r.raw.len, 600));
    check_429(&r, me, ctx);
    json_t *j = json_loadb(r.body.p, r.body.len, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "bucket")), "client", "%s", ctx);
    cr_expect(!strncmp(r.ctype, "application/json", 16), "a 429 of type %s", r.ctype);
    json_decref(j);
    long retry_s = atol(r.retry_after);
    hf_resp_free(&r);
    /* others are served meanwhile */
    submit_from(n, other_client, held, &r);
    cr_expect_eq(r.status, 200, "%s: another client was not served while %s was limited: %ld", n->domain, me, r.status);
    hf_resp_free(&r);
    submit_from(n, NULL, held, &r);
    cr_expect_eq(r.status, 200, "%s: the operator was not served while %s was limited: %ld", n->domain, me, r.status);
    hf_resp_free(&r);
    static const char get[] = "GET /v1/federation HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    hf_send(n, me, get, sizeof get - 1, &r);
    cr_expect_eq(r.status, 200, "%s: the limited client was not served GET /v1/federation: %ld", n->domain, r.status);
    hf_resp_free(&r);
    /* counted */
    cr_expect_geq(h_metric(n->url, "trib_fed_submit_rate_limited_total{bucket=\"client\"}") - c0, 1,
                  "%s: the 429 was not counted by bucket", n->domain);
    cr_expect_geq(h_metric(n->url, "trib_http_requests_total{route=\"federation_objects\",status=\"429\"}") - h0, 1,
                  "%s: the 429 was not counted by route", n->domain);
    /* and served again after its Retry-After */
    long t0 = h_now_ms();
    served_t s = {n, me, held};
    cr_expect(h_wait(served_again, &s, (int)(retry_s * 1000 + 3000)), "%s: %s not served %ld s after Retry-After %ld",
              n->domain, me, (h_now_ms() - t0) / 1000, retry_s);
    free(held);
}

/* ------------------------------------------------------------------ at once */

enum { BURST_THREADS = 6, BURST_EACH = 40 };

typedef struct {
    h_node_t *n;
    char src[20];
    char *bodies[BURST_EACH];
    long status[BURST_EACH];
    char code[BURST_EACH][32];
} burst_t;

static void *burst_run(void *arg)
{
    burst_t *b = arg;
    for (int i = 0; i < BURST_EACH; i++) {
        hf_resp_t r;
        submit_from(b->n, b->src, b->bodies[i], &r);
        b->status[i] = r.status;
        json_t *j = json_loadb(r.body.p ? r.body.p : "", r.body.len, 0, NULL);
        snprintf(b->code[i], sizeof b->code[i], "%s", json_string_value(json_object_get(j, "error")) ?: "");
        json_decref(j);
        hf_resp_free(&r);
    }
    return NULL;
}

/* The federation's objects, as made and changed, from six clients at once to both agents (the
 * offers of many HTTP threads meet in the federation log's loop, the rate limiter is shared):
 * each answered as documented, none added, the trust state of both as it was. */
static void burst_phase(void)
{
    static burst_t b[BURST_THREADS];
    pthread_t th[BURST_THREADS];
    for (int t = 0; t < BURST_THREADS; t++) {
        b[t].n = t % 2 ? &hf_b : &hf_a;
        snprintf(b[t].src, sizeof b[t].src, "127.0.0.%d", 200 + t);
        for (int i = 0; i < BURST_EACH; i++) {
            hf_req_t q = {.n = b[t].n, .clean = hf_chance(20)};
            hf_buf_t body = {0};
            trust_file(&q, &body, 0);
            b[t].bodies[i] = body.p;
        }
    }
    for (int t = 0; t < BURST_THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, burst_run, &b[t]), 0);
    for (int t = 0; t < BURST_THREADS; t++)
        pthread_join(th[t], NULL);
    long by[600] = {0};
    for (int t = 0; t < BURST_THREADS; t++)
        for (int i = 0; i < BURST_EACH; i++) {
            long st = b[t].status[i];
            cr_expect(st == 200 || st == 400 || st == 403 || st == 409 || st == 413 || st == 422 || st == 429,
                      "%s from %s at once: %ld %s (seed %llu)", b[t].n->domain, b[t].src, st, b[t].code[i],
                      (unsigned long long)hf_seed_used());
            if (st > 0 && st < 600)
                by[st]++;
            free(b[t].bodies[i]);
        }
    fprintf(stderr, "http_fuzz_fed: %d objects from %d clients at once: 200:%ld 400:%ld 403:%ld 409:%ld 413:%ld "
            "422:%ld 429:%ld\n", BURST_THREADS * BURST_EACH, BURST_THREADS, by[200], by[400], by[403], by[409],
            by[413], by[422], by[429]);
    for (int i = 0; i < 2; i++) {
        char *now_s = trust_state(i ? &hf_b : &hf_a);
        cr_expect_str_eq(now_s, trust_before[i], "%s's trust state changed by objects sent at once",
                         i ? "growth" : "payments");
        free(now_s);
    }
}

/* ------------------------------------------------------------------ the run */

static int both_hold_the_same(void *ctx)
{
    (void)ctx;
    json_t *a = h_get_json(hf_a.url, "/v1/federation", NULL), *b = h_get_json(hf_b.url, "/v1/federation", NULL);
    json_t *pa = h_get_json(hf_a.url, "/v1/policy", NULL), *pb = h_get_json(hf_b.url, "/v1/policy", NULL);
    int same = a && b && json_integer_value(json_object_get(a, "objects")) >= 9 &&
               json_equal(json_object_get(a, "objects"), json_object_get(b, "objects")) &&
               json_integer_value(json_object_get(pa, "version")) == 2 &&
               json_integer_value(json_object_get(pb, "version")) == 2;
    json_decref(a), json_decref(b), json_decref(pa), json_decref(pb);
    return same;
}

static int both_verified(void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 2; i++) {
        json_t *j = h_get_json(i ? hf_b.url : hf_a.url, "/v1/members", NULL);
        json_t *arr = json_is_array(j) ? j : json_object_get(j, "members");
        size_t k, v = 0;
        json_t *m;
        json_array_foreach(arr, k, m)
            v += json_is_true(json_object_get(m, "verified")) &&
                 !strcmp(json_string_value(json_object_get(m, "state")) ?: "", "alive");
        json_decref(j);
        if (v != 2)
            return 0;
    }
    return 1;
}

static char *issue_token(const identity_t *id, const char *domain, const char *subject, token_kind_t kind)
{
    int64_t now = clock_wall_ms();
    token_spec_t sp = {.subject = subject, .kind = kind, .issued_ms = now, .expires_ms = now + 3600000};
    char *t = NULL;
    cr_assert_eq(token_issue(id, domain, &sp, &t, err, sizeof err), 0, "%s", err);
    return t;
}

static void setup_federation(void)
{
    cr_assert_geq(sodium_init(), 0);
    identity_t *keys[] = {&R1, &R2, &R3, &G, &S1, &S2, &O1, &O2, &K_spare, &K_old, &K_gone, &K_next};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        fx_identity(keys[i]);
    make_charter(&ch1, NULL, &R1, &R2, &R3, &G);
    make_charter(&other, NULL, &O1, &O2, &S1, &G);
    cr_assert_eq(fx_charter_dir(&ch1, "fuzzfed", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
    char da[256], db[256], ca_path[300], cb_path[300], seed[200];
    node_dir("a", da, sizeof da, &IA);
    node_dir("b", db, sizeof db, &IB);
    int64_t t = fx_now_ms();
    static const identity_t *const roots[] = {&R1, &R2}, *const other_roots[] = {&O1, &O2};
    cert_t ca, cb;
    keep_cert(O_CERT_A, "cert-payments", &ch1, "payments", IA.pk, t - DAY_MS, t + 90 * DAY_MS, roots, 1, &ca);
    keep_cert(O_CERT_B, "cert-growth", &ch1, "growth", IB.pk, t - DAY_MS, t + 90 * DAY_MS, roots, 1, &cb);
    snprintf(ca_path, sizeof ca_path, "%s/a.cert", work);
    snprintf(cb_path, sizeof cb_path, "%s/b.cert", work);
    write_cert(&ca, ca_path);
    write_cert(&cb, cb_path);
    cert_free(&ca);
    cert_free(&cb);
    cr_assert_eq(h_node_start(&hf_a, "payments", "--data", da, "--charter", chpath, "--cert", ca_path,
                              "--max-body-mb", "1", HF_FAST, NULL), 0, "payments did not start (%s)", hf_a.log);
    snprintf(seed, sizeof seed, "%s@%s", IA.hex, hf_a.peer);
    cr_assert_eq(h_node_start(&hf_b, "growth", "--data", db, "--charter", chpath, "--cert", cb_path, "--seed", seed,
                              HF_FAST, NULL), 0, "growth did not start (%s)", hf_b.log);
    cr_assert(h_wait(both_verified, NULL, 30000), "the two chartered agents do not see each other verified");

    /* what the federation holds before the run: a certificate for a domain no agent runs, a
     * revoked key's, charter version 2, policy sets 1 and 2 (2 in force), a hand-over of the spare
     * domain's key */
    keep_cert(O_CERT_SPARE, "cert-spare", &ch1, "spare", K_spare.pk, t - DAY_MS, t + 90 * DAY_MS, roots, 1, NULL);
    keep_cert(O_CERT_OLD, "cert-expired", &ch1, "payments", K_old.pk, t - 100 * DAY_MS, t - 10 * DAY_MS, roots, 0,
              NULL);   /* never held: an operator's expired certificate is refused (403 expired) */
    keep_cert(O_CERT_GONE, "cert-gone", &ch1, "gone", K_gone.pk, t - DAY_MS, t + 90 * DAY_MS, roots, 1, NULL);
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch1, 1, 0, K_gone.pk, t - 1000, "fuzz: key lost", roots, 2, &rv, err, sizeof err),
                 0, "%s", err);
    keep(O_REV_GONE, "revocation-gone", TRUST_KIND_REVOKE, rv.bytes, rv.len, 1);
    revocation_free(&rv);
    make_charter(&ch2, &ch1, &R1, &R2, &R3, &G);
    keep(O_CHARTER2, "charter-v2", TRUST_KIND_CHARTER, ch2.bytes, ch2.len, 1);
    keep(O_CHARTER1, "charter-v1", TRUST_KIND_CHARTER, ch1.bytes, ch1.len, 0);   /* stale */
    size_t elen;
    uint8_t *env = policy_env(&ch1, 2, &G, &elen);
    keep(O_POLICY2, "policy-v2", TRUST_KIND_POLICY, env, elen, 1);
    free(env);
    env = policy_env(&ch1, 1, &G, &elen);
    keep(O_POLICY1, "policy-v1", TRUST_KIND_POLICY, env, elen, 1);
    free(env);
    rotation_t rot;
    cr_assert_eq(rotation_make(&K_spare, "spare", K_next.pk, t, 3600000, &rot, err, sizeof err), 0, "%s", err);
    keep(O_ROT_SPARE, "handover-spare", TRUST_KIND_ROTATE, rot.bytes, rot.len, 1);
    rotation_free(&rot);
    /* never held: later charters that skip a version or name another predecessor, a certificate and a
     * revocation of another federation, hand-overs by a revoked key and for another domain */
    charter_t fake = ch2, gap, fork;
    fake.version = 3;   /* v4 after a v3 nobody made */
    make_charter(&gap, &fake, &R1, &R2, &R3, &G);
    keep(O_CHARTER_GAP, "charter-v4", TRUST_KIND_CHARTER, gap.bytes, gap.len, 0);
    fake = ch2;
    randombytes_buf(fake.hash, TRUST_HASH_LEN);   /* v3 after another v2 */
    make_charter(&fork, &fake, &R1, &R2, &R3, &G);
    keep(O_CHARTER_FORK, "charter-v3-fork", TRUST_KIND_CHARTER, fork.bytes, fork.len, 0);
    charter_free(&gap);
    charter_free(&fork);
    keep_cert(O_CERT_OTHER, "cert-other-federation", &other, "payments", K_next.pk, t - DAY_MS, t + DAY_MS,
              other_roots, 0, NULL);
    cr_assert_eq(revocation_issue(&other, 1, 0, IA.pk, t, "another federation", other_roots, 2, &rv, err, sizeof err),
                 0, "%s", err);
    keep(O_REV_OTHER, "revocation-other-federation", TRUST_KIND_REVOKE, rv.bytes, rv.len, 0);
    revocation_free(&rv);
    cr_assert_eq(rotation_make(&K_gone, "gone", K_next.pk, t, 3600000, &rot, err, sizeof err), 0, "%s", err);
    keep(O_ROT_GONE, "handover-by-revoked", TRUST_KIND_ROTATE, rot.bytes, rot.len, 0);
    rotation_free(&rot);
    cr_assert_eq(rotation_make(&IA, "growth", K_next.pk, t, 3600000, &rot, err, sizeof err), 0, "%s", err);
    keep(O_ROT_WRONG, "handover-wrong-domain", TRUST_KIND_ROTATE, rot.bytes, rot.len, 0);
    rotation_free(&rot);
    env = policy_env(&other, 3, &G, &elen);
    keep(O_POLICY_OTHER, "policy-other-federation", TRUST_KIND_POLICY, env, elen, 0);
    free(env);
    env = policy_env(&ch1, 3, &R1, &elen);
    keep(O_POLICY_ROOT, "policy-by-a-root", TRUST_KIND_POLICY, env, elen, 0);
    free(env);

    /* the held ones, on payments (policy 2 before 1: 1 is then history) */
    static const int order[] = {O_CERT_SPARE, O_CERT_GONE, O_REV_GONE, O_CHARTER2, O_POLICY2, O_POLICY1,
                                O_ROT_SPARE};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        submit(&hf_a, order[i]);
    cr_assert(h_wait(both_hold_the_same, NULL, 20000), "the federation's objects did not reach both agents");
}

Test(http_fuzz_fed, random_requests_and_changed_trust_objects_are_refused_and_change_no_trust)
{
    setup_federation();
    hf_make_tokens();
    hf_tokens[T_EXTRA1] = issue_token(&IB, "payments", "admin@payments", TOKEN_KIND_ADMIN);   /* another domain's key */
    hf_tokens[T_EXTRA2] = issue_token(&K_gone, "gone", "admin@gone", TOKEN_KIND_ADMIN);       /* a revoked key */
    hf_tokens[T_EXTRA3] = issue_token(&K_spare, "spare", "ann@spare", TOKEN_KIND_READ);       /* no member runs it */
    hf_token_names[T_EXTRA1] = "growth's key for payments";
    hf_token_names[T_EXTRA2] = "revoked key of gone";
    hf_token_names[T_EXTRA3] = "spare's certified key (no member)";
    hf_setup_products();
    cr_assert(h_wait(both_verified, NULL, 20000), "the agents do not see each other verified before the run");
    trust_before[0] = trust_state(&hf_a);
    trust_before[1] = trust_state(&hf_b);
    if (getenv("TRIB_FUZZ_VERBOSE"))
        fprintf(stderr, "payments' trust state before the run: %s\n", trust_before[0]);
    static const char pol_refused[] = "trib_policy_sets_total{result=\"refused\"}";
    double pr0[2] = {h_metric(hf_a.url, pol_refused), h_metric(hf_b.url, pol_refused)};
    double fr0[2] = {h_metric_sum(hf_a.url, "trib_fedlog_refused_total"), h_metric_sum(hf_b.url, "trib_fedlog_refused_total")};
    static const char *const favour[] = {"federation_objects", "federation_objects", "federation_objects",
                                         "policy_post", "key_rotate", "federation", "policy_get", "members",
                                         "whoami", NULL};
    static const hf_mode_t fed_mode = {.suite = "http_fuzz_fed", .body = fed_body, .statuses = fed_statuses,
                                       .after = after_answer, .favour = favour, .favour_pct = 55,
                                       .spread_sources = 1};
    hf_run(&fed_mode, DEFAULT_SEED, DEFAULT_N);
    /* refusals of the federation's objects counted */
    for (int i = 0; i < 2; i++) {
        h_node_t *n = i ? &hf_b : &hf_a;
        double got = h_metric_sum(n->url, "trib_fedlog_refused_total") - fr0[i];
        cr_expect_geq(got, (double)ft.fed_refused[i], "%s: %g refusals in trib_fedlog_refused_total, %ld seen (seed %llu)",
                      n->domain, got, ft.fed_refused[i], (unsigned long long)hf_seed_used());
        cr_expect_gt(ft.fed_refused[i], 0, "%s: no object refused by the federation log", n->domain);
        got = h_metric(n->url, pol_refused) - pr0[i];
        cr_expect_geq(got, (double)ft.policy_refused[i], "%s: %g policy sets refused counted, %ld seen (seed %llu)",
                      n->domain, got, ft.policy_refused[i], (unsigned long long)hf_seed_used());
    }
    /* the trust state of both, once more, with both members verified */
    cr_expect(h_wait(both_verified, NULL, 20000), "the agents no longer see each other verified after the run");
    for (int i = 0; i < 2; i++) {
        char *now_s = trust_state(i ? &hf_b : &hf_a);
        cr_expect_str_eq(now_s, trust_before[i], "%s's trust state changed over the run", i ? "growth" : "payments");
        free(now_s);
    }
    burst_phase();
    rate_limit_phase(&hf_a);
    for (int i = 0; i < 2; i++) {
        char *now_s = trust_state(i ? &hf_b : &hf_a);
        cr_expect_str_eq(now_s, trust_before[i], "%s's trust state changed by the rate-limit phase",
                         i ? "growth" : "payments");
        free(now_s);
        free(trust_before[i]);
    }
    fprintf(stderr, "http_fuzz_fed: %ld requests to the trust routes; refused by the federation log %ld + %ld, "
            "policy sets refused %ld + %ld; 429 in the run %ld + %ld\n", ft.trust_requests, ft.fed_refused[0],
            ft.fed_refused[1], ft.policy_refused[0], ft.policy_refused[1], ft.limited[0], ft.limited[1]);
    hf_stop_and_report();
    for (int i = 0; i < O_COUNT; i++)
        free(objs[i].body), free(objs[i].env);
    charter_free(&ch1), charter_free(&ch2), charter_free(&other);
}
