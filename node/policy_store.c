/* node/policy_store.c - signed policy sets and the set in force (node/policy_store.h).
 *
 * Verification order for bytes from anywhere: bound the size and decode the envelope
 * (trust_envelope_parse), decode the body with its sizes checked, check the federation, then
 * every signature and the governance threshold, then (only then: a forged set never reaches the
 * YAML parser) parse the YAML, then the version against
 * the set in force, then the set's own tests; only then persist and install.
 * Must not: re-encode to verify, touch LMDB or the network, print. */
#include "node/policy_store.h"
#include "gossip/durable.h"
#include "gossip/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME "policy.signed"
#define OPEN_NAME "policy.open.yaml"      /* open mode: the operator's set in force, kept */
#define HIST_FMT  "policy.v%020llu.signed"   /* each signed set that came into force (history) */
#define POLICY_MET_MAX 256        /* sets of conflicting meetings remembered (each signed by governance) */

typedef struct held {
    policy_set_t *ps;
    policy_info_t info;
    char *text;
    int refs;                 /* readers + 1 while in force */
    struct held *next;
} held_t;

struct policy_store {
    pthread_mutex_t mu;
    char path[600];
    char dir[600];
    held_t *cur;              /* in force, or NULL */
    held_t *all;              /* every holder still referenced */
    held_t *hist[POLICY_HISTORY_MAX];   /* the sets that came into force, by version ascending;
                                           each holds a reference */
    size_t nhist;
    uint64_t gen;
    uint64_t conflicts;       /* same version, another body: seen (policy_store_conflicts) */
    uint8_t met[POLICY_MET_MAX][TRUST_HASH_LEN];   /* body hashes of the sets of those meetings */
    size_t nmet;
};

/* ================================================================ signing and verifying */

static void short_hex(const uint8_t *p, char out[17]) { trust_hex(p, 8, out); }

int policy_sign(const char *yaml, size_t len, const charter_t *ch, const identity_t *const *keys, size_t n,
                int64_t issued_ms, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    char why[512], h[17];
    *out = NULL;
    *outlen = 0;
    policy_set_t *ps = policy_parse(yaml, len, why, sizeof why);
    if (!ps) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    int rc = -1;
    if (policy_run_tests(ps, NULL, why, sizeof why) != 0) {
        snprintf(err, errlen, "the set's own tests fail, so it is not signed: %s", why);
        goto out;
    }
    if (ch->gov_threshold == 0) {
        snprintf(err, errlen, "charter version %llu has no governance keys: nobody can sign a policy set",
                 (unsigned long long)ch->version);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!charter_is_governance(ch, keys[i]->pk)) {
            short_hex(keys[i]->pk, h);
            snprintf(err, errlen, "key %s... is not a governance key of charter version %llu", h,
                     (unsigned long long)ch->version);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp(keys[i]->pk, keys[j]->pk, ID_PK_LEN) == 0) {
                short_hex(keys[i]->pk, h);
                snprintf(err, errlen, "governance key %s... given twice", h);
                goto out;
            }
    }
    if (n < ch->gov_threshold) {
        snprintf(err, errlen, "%zu governance key%s given; charter version %llu needs %u signatures", n,
                 n == 1 ? "" : "s", (unsigned long long)ch->version, ch->gov_threshold);
        goto out;
    }
    Trib__PolicySet body = TRIB__POLICY_SET__INIT;
    body.federation_id.data = (uint8_t *)ch->fed_id;
    body.federation_id.len = FED_ID_LEN;
    body.version = policy_version(ps);
    body.issued_ms = issued_ms;
    char *text = strndup(yaml, len);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    body.text = text;
    size_t blen = trib__policy_set__get_packed_size(&body);
    uint8_t *b = malloc(blen);
    if (!b) {
        free(text);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    trib__policy_set__pack(&body, b);
    free(text);
    if (trust_envelope_make(TRUST_KIND_POLICY, b, blen, keys, n, out, outlen) != 0)
        snprintf(err, errlen, "signing failed: the signed set would be over %u bytes", TRUST_MAX_BYTES);
    else
        rc = 0;
    free(b);
out:
    policy_free(&ps);
    return rc;
}

void policy_signed_free(policy_signed_t *s)
{
    if (!s)
        return;
    policy_free(&s->ps);
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* Envelope and body (sizes, federation id, version, signers), no signature check and no YAML:
 * untrusted text reaches the YAML parser only through parse_text, after whatever check the
 * caller makes. */
static int decode_body(const uint8_t *bytes, size_t len, policy_signed_t *out, Trib__TrustSigned **envp,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    Trib__TrustSigned *env = trust_envelope_parse(bytes, len, TRUST_KIND_POLICY, err, errlen);
    if (!env)
        return -1;
    Trib__PolicySet *b = trib__policy_set__unpack(NULL, env->body.len, env->body.data);
    if (!b) {
        snprintf(err, errlen, "policy set: the signed body is not a PolicySet");
        goto fail;
    }
    if (b->federation_id.len != FED_ID_LEN || !b->text || b->version == 0) {
        snprintf(err, errlen, "policy set: federation id %zu bytes (expected %d), version %llu, text %s",
                 b->federation_id.len, FED_ID_LEN, (unsigned long long)b->version, b->text ? "present" : "missing");
        goto fail;
    }
    memcpy(out->fed_id, b->federation_id.data, FED_ID_LEN);
    crypto_generichash(out->info.hash, sizeof out->info.hash, env->body.data, env->body.len, NULL, 0);
    out->info.version = b->version;
    out->info.signed_set = 1;
    out->info.issued_ms = b->issued_ms;
    snprintf(out->info.source, sizeof out->info.source, "signed");
    if (!(out->text = strdup(b->text))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < env->n_sigs && i < TRUST_MAX_SIGS; i++) {
        size_t j = 0;
        while (j < out->info.nsigners && memcmp(out->info.signers[j], env->sigs[i]->signer.data, ID_PK_LEN))
            j++;
        if (j == out->info.nsigners)
            memcpy(out->info.signers[out->info.nsigners++], env->sigs[i]->signer.data, ID_PK_LEN);
    }
    trib__policy_set__free_unpacked(b, NULL);
    *envp = env;
    return 0;
fail:
    if (b)
        trib__policy_set__free_unpacked(b, NULL);
    trib__trust_signed__free_unpacked(env, NULL);
    policy_signed_free(out);
    return -1;
}

/* Parses out->text (its version must be the signed one) and sets its effective time. 0, or -1
 * with err (out is left for the caller to free). */
static int parse_text(policy_signed_t *out, char *err, size_t errlen)
{
    char why[512];
    out->ps = policy_parse(out->text, strlen(out->text), why, sizeof why);
    if (!out->ps) {
        snprintf(err, errlen, "policy set version %llu: %s", (unsigned long long)out->info.version, why);
        return -1;
    }
    if (policy_version(out->ps) != out->info.version) {
        snprintf(err, errlen, "policy set: signed as version %llu but its YAML says version %llu",
                 (unsigned long long)out->info.version, (unsigned long long)policy_version(out->ps));
        return -1;
    }
    policy_set_effective(out->ps, out->info.issued_ms);
    return 0;
}

int policy_decode(const uint8_t *bytes, size_t len, policy_signed_t *out, char *err, size_t errlen)
{
    Trib__TrustSigned *env = NULL;
    if (decode_body(bytes, len, out, &env, err, errlen) != 0)
        return -1;
    trib__trust_signed__free_unpacked(env, NULL);
    if (parse_text(out, err, errlen) != 0) {
        policy_signed_free(out);
        return -1;
    }
    return 0;
}

int policy_verify(const uint8_t *bytes, size_t len, const charter_t *ch, policy_signed_t *out, char *err,
                  size_t errlen)
{
    Trib__TrustSigned *env = NULL;
    char h[17], why[512];
    int rc = POLICY_REFUSED_SIGNATURE;
    if (decode_body(bytes, len, out, &env, err, errlen) != 0)
        return POLICY_REFUSED_BAD;
    if (memcmp(out->fed_id, ch->fed_id, FED_ID_LEN) != 0) {
        snprintf(err, errlen, "policy set version %llu: signed for another federation",
                 (unsigned long long)out->info.version);
        goto fail;
    }
    if (ch->gov_threshold == 0) {
        snprintf(err, errlen, "charter version %llu has no governance keys: no policy set can be accepted",
                 (unsigned long long)ch->version);
        goto fail;
    }
    /* Every signature must verify; only distinct governance keys count toward the threshold. */
    size_t ngov = 0;
    uint8_t gov[TRUST_MAX_SIGS][ID_PK_LEN];
    for (size_t i = 0; i < env->n_sigs; i++) {
        const uint8_t *pk = env->sigs[i]->signer.data;
        if (!trust_sig_ok(TRUST_KIND_POLICY, env->body.data, env->body.len, pk, env->sigs[i]->signature.data)) {
            short_hex(pk, h);
            snprintf(err, errlen, "policy set version %llu: signature %zu (by %s...) does not verify",
                     (unsigned long long)out->info.version, i + 1, h);
            goto fail;
        }
        if (!charter_is_governance(ch, pk))
            continue;
        size_t j = 0;
        while (j < ngov && memcmp(gov[j], pk, ID_PK_LEN) != 0)
            j++;
        if (j == ngov)
            memcpy(gov[ngov++], pk, ID_PK_LEN);
    }
    if (ngov < ch->gov_threshold) {
        snprintf(err, errlen, "policy set version %llu: signed by %zu governance key%s of charter version %llu, "
                 "needs %u", (unsigned long long)out->info.version, ngov, ngov == 1 ? "" : "s",
                 (unsigned long long)ch->version, ch->gov_threshold);
        goto fail;
    }
    out->info.nsigners = ngov;
    memcpy(out->info.signers, gov, ngov * ID_PK_LEN);
    if (parse_text(out, err, errlen) != 0) {   /* only now: signed by the federation's governance */
        rc = POLICY_REFUSED_BAD;
        goto fail;
    }
    if (policy_run_tests(out->ps, NULL, why, sizeof why) != 0) {
        snprintf(err, errlen, "policy set version %llu: its own tests fail on this node: %s",
                 (unsigned long long)out->info.version, why);
        rc = POLICY_REFUSED_BAD;
        goto fail;
    }
    trib__trust_signed__free_unpacked(env, NULL);
    return 0;
fail:
    trib__trust_signed__free_unpacked(env, NULL);
    policy_signed_free(out);
    return rc;
}

json_t *policy_signed_json(const policy_signed_t *s, const uint8_t *bytes, size_t len)
{
    char fed[2 * FED_ID_LEN + 1], when[32], key[ID_HEX_LEN];
    trust_hex(s->fed_id, FED_ID_LEN, fed);
    trust_time_text(s->info.issued_ms, when);
    json_t *signers = json_array();
    for (size_t i = 0; i < s->info.nsigners; i++) {
        identity_hex(s->info.signers[i], key);
        json_array_append_new(signers, json_string(key));
    }
    char *b64 = trust_b64(bytes, len);
    if (!b64) {
        json_decref(signers);
        return NULL;
    }
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:I,s:o,s:s}", "kind", "trib.policy", "federation", fed, "version",
                          (json_int_t)s->info.version, "issued", when, "rules", (json_int_t)policy_nrules(s->ps),
                          "signed_by", signers, "signed", b64);
    free(b64);
    return j;
}

/* ================================================================ the set in force */

static void held_unref_locked(policy_store_t *s, held_t *h)
{
    if (--h->refs > 0)
        return;
    for (held_t **p = &s->all; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    policy_free(&h->ps);
    free(h->text);
    free(h);
}

/* Adds h to the history (a reference), in version order; the oldest falls out beyond
 * POLICY_HISTORY_MAX. A version already there is replaced. */
static void hist_add_locked(policy_store_t *s, held_t *h)
{
    size_t i = 0;
    while (i < s->nhist && s->hist[i]->info.version < h->info.version)
        i++;
    h->refs++;
    if (i < s->nhist && s->hist[i]->info.version == h->info.version) {
        held_unref_locked(s, s->hist[i]);
        s->hist[i] = h;
        return;
    }
    if (s->nhist == POLICY_HISTORY_MAX) {
        if (i == 0) {   /* older than everything kept */
            held_unref_locked(s, h);
            return;
        }
        held_unref_locked(s, s->hist[0]);
        memmove(&s->hist[0], &s->hist[1], (s->nhist - 1) * sizeof s->hist[0]);
        s->nhist--;
        i--;
    }
    memmove(&s->hist[i + 1], &s->hist[i], (s->nhist - i) * sizeof s->hist[0]);
    s->hist[i] = h;
    s->nhist++;
}

/* Takes ownership of ps and text. */
static int install(policy_store_t *s, policy_set_t *ps, char *text, const policy_info_t *info)
{
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        policy_free(&ps);
        free(text);
        return -1;
    }
    h->ps = ps;
    h->text = text;
    h->info = *info;
    h->refs = 1;
    pthread_mutex_lock(&s->mu);
    h->next = s->all;
    s->all = h;
    held_t *old = s->cur;
    s->cur = h;
    s->gen++;
    if (old)
        held_unref_locked(s, old);
    hist_add_locked(s, h);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static uint64_t current_version(policy_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->cur ? s->cur->info.version : 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Writes bytes to path atomically and durably (gossip/durable.h). 0, POLICY_REFUSED_NO_SPACE (the
 * disk is full) or POLICY_REFUSED_STORAGE with err. */
static int write_atomic(const char *path, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    if (durable_write(path, bytes, len, 0600, DURABLE_REPLACE, err, errlen) == 0)
        return 0;
    return errno == ENOSPC || errno == EDQUOT || errno == EFBIG ? POLICY_REFUSED_NO_SPACE : POLICY_REFUSED_STORAGE;
}

/* The whole of file fd, at most TRUST_MAX_BYTES and not empty, in a buffer of the caller's (*len
 * bytes; *size, when not NULL: the file's size, -1 unknown); fd is closed. NULL when unreadable,
 * empty, too large or out of memory. */
static uint8_t *file_bytes(int fd, size_t *len, long long *size)
{
    struct stat st = { 0 };
    uint8_t *buf = NULL;
    ssize_t got = -1;
    int known = fstat(fd, &st) == 0;
    if (known && st.st_size > 0 && (uint64_t)st.st_size <= TRUST_MAX_BYTES && (buf = malloc((size_t)st.st_size)))
        got = read(fd, buf, (size_t)st.st_size);
    close(fd);
    if (size)
        *size = known ? (long long)st.st_size : -1;
    if (!buf || got != (ssize_t)st.st_size) {
        free(buf);
        return NULL;
    }
    *len = (size_t)got;
    return buf;
}

/* 1 when path holds exactly bytes. */
static int holds_bytes(const char *path, const uint8_t *bytes, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    uint8_t *buf = fd < 0 ? NULL : file_bytes(fd, &got, NULL);
    int same = buf && got == len && memcmp(buf, bytes, len) == 0;
    free(buf);
    return same;
}

/* Keeps the newest POLICY_HISTORY_MAX history files (glob sorts them: zero-padded versions). */
static void prune_history_files(policy_store_t *s)
{
    char pat[700];
    snprintf(pat, sizeof pat, "%s/policy.v*.signed", s->dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; g.gl_pathc > POLICY_HISTORY_MAX && i < g.gl_pathc - POLICY_HISTORY_MAX; i++)
        unlink(g.gl_pathv[i]);
    globfree(&g);
}


/* Loads the history files (verified against ch when given; a bad one is skipped) into the
 * history, older than the set in force only. */
static void load_history(policy_store_t *s, const charter_t *ch)
{
    char pat[700];
    snprintf(pat, sizeof pat, "%s/policy.v*.signed", s->dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t got = 0;
        uint8_t *buf = file_bytes(fd, &got, NULL);
        policy_signed_t ps;
        char why[512];
        int rc = buf ? (ch ? policy_verify(buf, got, ch, &ps, why, sizeof why)
                           : policy_decode(buf, got, &ps, why, sizeof why)) : -1;
        free(buf);
        if (rc != 0)
            continue;
        if (s->cur && ps.info.version >= s->cur->info.version) {
            policy_signed_free(&ps);
            continue;
        }
        held_t *h = calloc(1, sizeof *h);
        if (!h) {
            policy_signed_free(&ps);
            break;
        }
        h->ps = ps.ps;
        h->text = ps.text;
        h->info = ps.info;
        pthread_mutex_lock(&s->mu);
        h->next = s->all;
        s->all = h;
        hist_add_locked(s, h);   /* refs 1: the history's */
        pthread_mutex_unlock(&s->mu);
    }
    globfree(&g);
}

/* Two sets of one version: which stays (policy_store.h). > 0: a's body hash is higher. */
static int tie_break(const policy_info_t *a, const policy_info_t *b)
{
    return memcmp(a->hash, b->hash, sizeof a->hash);
}

static int met_locked(const policy_store_t *s, const uint8_t hash[TRUST_HASH_LEN])
{
    for (size_t i = 0; i < s->nmet; i++)
        if (!memcmp(s->met[i], hash, TRUST_HASH_LEN))
            return 1;
    return 0;
}

/* Counts a meeting of the arriving set (hash a) with another of its version (hash b); count: 0 for
 * a check that installs nothing. A set met before is no new meeting: a peer's set is taken when
 * verified and again once stored, and the same body may come back under other signatures. */
static void count_conflict(policy_store_t *s, int count, const uint8_t a[TRUST_HASH_LEN],
                           const uint8_t b[TRUST_HASH_LEN])
{
    if (!count)
        return;
    pthread_mutex_lock(&s->mu);
    if (!met_locked(s, a)) {
        s->conflicts++;
        for (int k = 0; k < 2; k++)
            if (s->nmet < POLICY_MET_MAX && !met_locked(s, k ? b : a))
                memcpy(s->met[s->nmet++], k ? b : a, TRUST_HASH_LEN);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The refusal of ps, which lost the tie to held (same version, another body). */
static int conflict_lost(policy_store_t *s, policy_signed_t *ps, const policy_info_t *held, int count, char *err,
                         size_t errlen)
{
    char a[17], b[17];
    short_hex(ps->info.hash, a);
    short_hex(held->hash, b);
    snprintf(err, errlen, "policy set version %llu conflicts with the version %llu held here: another set signed "
             "with the same version (body %s... vs %s...); every node keeps the one with the higher body hash, "
             "%s...; sign the intended set as a new version", (unsigned long long)ps->info.version,
             (unsigned long long)held->version, a, b, b);
    count_conflict(s, count, ps->info.hash, held->hash);
    policy_signed_free(ps);
    return POLICY_REFUSED_CONFLICT;
}

/* Verifies a signed set against ch and that it is newer than the one in force, or of its version
 * and winning the tie (policy_store.h): 0 with *ps filled (the caller frees it), else a
 * POLICY_REFUSED_* code with err and nothing to free. */
static int verify_newer(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, int count,
                        policy_signed_t *ps, char *err, size_t errlen)
{
    if (!ch) {
        snprintf(err, errlen, "this node runs in open mode (no --charter): a signed policy set cannot be verified; "
                 "give the YAML with --policy FILE instead");
        return POLICY_REFUSED_OPEN;
    }
    int rc = policy_verify(bytes, len, ch, ps, err, errlen);
    if (rc != 0)
        return rc;
    policy_info_t held = { 0 };
    pthread_mutex_lock(&s->mu);
    if (s->cur)
        held = s->cur->info;
    pthread_mutex_unlock(&s->mu);
    uint64_t cur = held.version;
    if (ps->info.version == cur && held.signed_set && tie_break(&ps->info, &held) != 0) {
        if (tie_break(&ps->info, &held) < 0)
            return conflict_lost(s, ps, &held, count, err, errlen);
        count_conflict(s, count, ps->info.hash, held.hash);   /* it wins: it replaces the set in force */
        return 0;
    }
    if (ps->info.version <= cur) {
        snprintf(err, errlen, "policy set version %llu is not newer than version %llu in force",
                 (unsigned long long)ps->info.version, (unsigned long long)cur);
        policy_signed_free(ps);
        return POLICY_REFUSED_STALE;
    }
    return 0;
}

int policy_store_check(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                       size_t errlen)
{
    policy_signed_t ps;
    int rc = verify_newer(s, bytes, len, ch, 0, &ps, err, errlen);
    if (rc == 0)
        policy_signed_free(&ps);
    return rc;
}

static int add_history(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, int files,
                       char *err, size_t errlen)
{
    policy_signed_t ps;
    if (!ch) {
        snprintf(err, errlen, "this node runs in open mode (no --charter): a signed policy set cannot be verified");
        return POLICY_REFUSED_OPEN;
    }
    int rc = policy_verify(bytes, len, ch, &ps, err, errlen);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->mu);
    int known = s->cur && ps.info.version >= s->cur->info.version;
    policy_info_t same = { 0 };   /* a held set of its version, when there is one */
    for (size_t i = 0; !known && i < s->nhist; i++)
        if (s->hist[i]->info.version == ps.info.version) {
            same = s->hist[i]->info;
            known = !same.signed_set || tie_break(&ps.info, &same) == 0;
        }
    int too_old = s->nhist == POLICY_HISTORY_MAX && ps.info.version < s->hist[0]->info.version;
    pthread_mutex_unlock(&s->mu);
    if (!known && same.version) {   /* another body of a version in the history: the tie-break */
        if (tie_break(&ps.info, &same) < 0)
            return conflict_lost(s, &ps, &same, 1, err, errlen);
        count_conflict(s, 1, ps.info.hash, same.hash);   /* it wins: hist_add_locked below replaces the held one */
    }
    if (known || too_old) {
        snprintf(err, errlen, "policy set version %llu: %s", (unsigned long long)ps.info.version,
                 known ? "already held (in force or in the history)" : "older than the history kept");
        policy_signed_free(&ps);
        return POLICY_REFUSED_STALE;
    }
    if (files && s->dir[0]) {
        char hp[700];
        snprintf(hp, sizeof hp, "%s/" HIST_FMT, s->dir, (unsigned long long)ps.info.version);
        int wrc = write_atomic(hp, bytes, len, err, errlen);
        if (wrc != 0) {
            policy_signed_free(&ps);
            return wrc;
        }
        prune_history_files(s);
    }
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        policy_signed_free(&ps);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->ps = ps.ps;
    h->text = ps.text;
    h->info = ps.info;
    pthread_mutex_lock(&s->mu);
    h->next = s->all;
    s->all = h;
    hist_add_locked(s, h);
    s->gen++;   /* verdicts of entries from its time may change */
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int policy_store_add_history(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                             size_t errlen)
{
    return add_history(s, bytes, len, ch, 1, err, errlen);
}

/* policy_offer; files 0: nothing written (policy_take). */
static int offer(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, int files, char *err,
                 size_t errlen)
{
    policy_signed_t ps;
    int vrc = verify_newer(s, bytes, len, ch, 1, &ps, err, errlen);
    if (vrc != 0)
        return vrc;
    int wrc = files && s->path[0] ? write_atomic(s->path, bytes, len, err, errlen) : 0;
    if (wrc != 0) {
        policy_signed_free(&ps);
        return wrc;
    }
    if (files && s->dir[0]) {   /* the history (a failure costs only history after a restart: logged by the caller) */
        char hp[700], why[300];
        snprintf(hp, sizeof hp, "%s/" HIST_FMT, s->dir, (unsigned long long)ps.info.version);
        if (write_atomic(hp, bytes, len, why, sizeof why) == 0)
            prune_history_files(s);
    }
    int rc = install(s, ps.ps, ps.text, &ps.info);
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    return rc;
}

int policy_offer(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, char *err,
                 size_t errlen)
{
    return offer(s, bytes, len, ch, 1, err, errlen);
}

/* 1 when the set of bytes is in force, 2 in the history, else 0 (by version and body hash). */
static int held_where(policy_store_t *s, const uint8_t *bytes, size_t len, uint64_t *version)
{
    policy_signed_t d;
    Trib__TrustSigned *env = NULL;
    char why[300];
    if (decode_body(bytes, len, &d, &env, why, sizeof why) != 0)
        return 0;
    trib__trust_signed__free_unpacked(env, NULL);
    int where = 0;
    pthread_mutex_lock(&s->mu);
    if (s->cur && s->cur->info.signed_set && s->cur->info.version == d.info.version &&
        !memcmp(s->cur->info.hash, d.info.hash, TRUST_HASH_LEN))
        where = 1;
    for (size_t i = 0; !where && i < s->nhist; i++)
        if (s->hist[i]->info.signed_set && s->hist[i]->info.version == d.info.version &&
            !memcmp(s->hist[i]->info.hash, d.info.hash, TRUST_HASH_LEN))
            where = 2;
    pthread_mutex_unlock(&s->mu);
    *version = d.info.version;
    policy_signed_free(&d);
    return where;
}

int policy_store_held(policy_store_t *s, const uint8_t *bytes, size_t len)
{
    uint64_t version;
    return held_where(s, bytes, len, &version);
}

int policy_take(policy_store_t *s, const uint8_t *bytes, size_t len, const charter_t *ch, int *took, char *err,
                size_t errlen)
{
    int dummy, *t = took ? took : &dummy;
    *t = 0;
    int rc = offer(s, bytes, len, ch, 0, err, errlen);
    if (rc == 0) {
        *t = 1;
        return 0;
    }
    if (rc == POLICY_REFUSED_STALE) {   /* older than the set in force, or that set itself */
        char why[400];
        int hrc = add_history(s, bytes, len, ch, 0, why, sizeof why);
        if (hrc == 0) {
            *t = 2;
            return 0;
        }
        if (hrc == POLICY_REFUSED_CONFLICT) {
            snprintf(err, errlen, "%s", why);
            return hrc;
        }
    }
    uint64_t v;
    return rc != POLICY_REFUSED_CONFLICT && held_where(s, bytes, len, &v) ? 0 : rc;
}

int policy_store_keep(policy_store_t *s, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    uint64_t version = 0;
    int where = held_where(s, bytes, len, &version);
    if (!where) {
        snprintf(err, errlen, "policy set version %llu is not held here", (unsigned long long)version);
        return POLICY_REFUSED_STALE;
    }
    if (!s->dir[0])
        return 0;
    char hp[700];
    snprintf(hp, sizeof hp, "%s/" HIST_FMT, s->dir, (unsigned long long)version);
    int rc = 0;
    if (where == 1 && !holds_bytes(s->path, bytes, len))
        rc = write_atomic(s->path, bytes, len, err, errlen);
    if (rc == 0 && !holds_bytes(hp, bytes, len) && (rc = write_atomic(hp, bytes, len, err, errlen)) == 0)
        prune_history_files(s);
    return rc;
}

static int set_open_locked(policy_store_t *s, const char *yaml, size_t len, const char *source, char *err,
                           size_t errlen);

/* One operator set at a time, from the version check to the set in force: two at once could put
 * v5 in force (and in policy.open.yaml) after v6. */
int policy_store_set_open(policy_store_t *s, const char *yaml, size_t len, const char *source, char *err,
                          size_t errlen)
{
    static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one);
    int rc = set_open_locked(s, yaml, len, source, err, errlen);
    pthread_mutex_unlock(&one);
    return rc;
}

/* Whether the set in force was put in force from exactly these bytes (open mode keeps its text). */
static int same_text_in_force(policy_store_t *s, const char *yaml, size_t len)
{
    pthread_mutex_lock(&s->mu);
    const char *t = s->cur ? s->cur->text : NULL;
    int same = t && strlen(t) == len && memcmp(t, yaml, len) == 0;
    pthread_mutex_unlock(&s->mu);
    return same;
}

static int set_open_locked(policy_store_t *s, const char *yaml, size_t len, const char *source, char *err,
                           size_t errlen)
{
    char why[512];
    policy_set_t *ps = policy_parse(yaml, len, why, sizeof why);
    if (!ps) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (policy_run_tests(ps, NULL, why, sizeof why) != 0) {
        snprintf(err, errlen, "the set's own tests fail: %s", why);
        policy_free(&ps);
        return -1;
    }
    uint64_t cur = current_version(s);
    if (cur && policy_version(ps) == cur && same_text_in_force(s, yaml, len)) {
        policy_free(&ps);   /* a deploy run twice: the set in force, nothing to do */
        return POLICY_UNCHANGED;
    }
    if (cur && policy_version(ps) <= cur) {
        snprintf(err, errlen, "policy set version %llu is not newer than version %llu in force",
                 (unsigned long long)policy_version(ps), (unsigned long long)cur);
        policy_free(&ps);
        return POLICY_REFUSED_STALE;
    }
    policy_info_t info = { .version = policy_version(ps) };
    snprintf(info.source, sizeof info.source, "%s", source);
    char *text = strndup(yaml, len);
    if (!text) {
        policy_free(&ps);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Kept before it takes force, so a restart never goes back to an older set. */
    char path[700];
    snprintf(path, sizeof path, "%s/" OPEN_NAME, s->dir);
    int wrc = s->dir[0] ? write_atomic(path, (const uint8_t *)yaml, len, err, errlen) : 0;
    if (wrc != 0) {
        policy_free(&ps);
        free(text);
        return wrc;
    }
    if (install(s, ps, text, &info) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Open mode: the set an operator put in force before this start (OPEN_NAME), if any. */
static int load_open(policy_store_t *s, char *err, size_t errlen)
{
    char path[700], why[800];
    snprintf(path, sizeof path, "%s/" OPEN_NAME, s->dir);
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    size_t len;
    char *buf = textfile_read(path, "a policy set", TRUST_MAX_BYTES, &len, why, sizeof why);
    int loaded = buf != NULL;    /* the read's errors name the file themselves */
    int rc = loaded ? policy_store_set_open(s, buf, len, "operator (open mode, kept)", why, sizeof why) : -1;
    free(buf);
    if (rc != 0)
        snprintf(err, errlen, "%s%s%s (move it away to start without it)", loaded ? path : "", loaded ? ": " : "", why);
    return rc == 0 ? 0 : -1;
}

/* path's signed set's body hash: 0, or -1 (unreadable, not a signed set: left to the loading). */
static int file_hash(const char *path, uint8_t hash[TRUST_HASH_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    uint8_t *buf = file_bytes(fd, &got, NULL);
    policy_signed_t d;
    Trib__TrustSigned *env = NULL;
    char why[300];
    int rc = buf && decode_body(buf, got, &d, &env, why, sizeof why) == 0 ? 0 : -1;
    free(buf);
    if (rc == 0) {
        memcpy(hash, d.info.hash, TRUST_HASH_LEN);
        trib__trust_signed__free_unpacked(env, NULL);
        policy_signed_free(&d);
    }
    return rc;
}

int policy_store_set_aside(const char *dir, policy_held_fn held, void *ctx, char *names, size_t cap, char *err,
                           size_t errlen)
{
    char pat[700];
    snprintf(pat, sizeof pat, "%s/policy.v*.signed", dir);
    glob_t g;
    int globbed = glob(pat, 0, NULL, &g) == 0;
    size_t used = 0, nfiles = 1 + (globbed ? g.gl_pathc : 0);
    int n = 0;
    if (cap)
        names[0] = '\0';
    for (size_t i = 0; i < nfiles; i++) {
        char path[700], aside[720];
        uint8_t hash[TRUST_HASH_LEN];
        if (i == 0)
            snprintf(path, sizeof path, "%s/" FILE_NAME, dir);
        else
            snprintf(path, sizeof path, "%s", g.gl_pathv[i - 1]);
        if (file_hash(path, hash) != 0 || held(ctx, hash))
            continue;
        snprintf(aside, sizeof aside, "%s.unstored", path);
        if (rename(path, aside) != 0) {
            snprintf(err, errlen, "%s names a policy set this node's federation log does not hold, and cannot be "
                     "renamed to %s: %s (move it away to start)", path, aside, strerror(errno));
            n = -1;
            break;
        }
        n++;
        const char *base = strrchr(aside, '/') ? strrchr(aside, '/') + 1 : aside;
        if (used < cap) {
            int w = snprintf(names + used, cap - used, "%s%s", n > 1 ? ", " : "", base);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    if (globbed)
        globfree(&g);
    return n;
}

policy_store_t *policy_store_open(const char *dir, const charter_t *ch, char *err, size_t errlen)
{
    policy_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    if (!dir)
        return s;
    snprintf(s->path, sizeof s->path, "%s/" FILE_NAME, dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            load_history(s, ch);
            return ch || load_open(s, err, errlen) == 0 ? s : (policy_store_close(&s), NULL);
        }
        snprintf(err, errlen, "%s: %s", s->path, strerror(errno));
        goto fail;
    }
    size_t got = 0;
    long long size = -1;
    uint8_t *buf = file_bytes(fd, &got, &size);
    if (!buf) {
        snprintf(err, errlen, "%s: unreadable or not a signed policy set (size %lld)", s->path, size);
        goto fail;
    }
    policy_signed_t ps;
    char why[512];
    int rc = ch ? policy_verify(buf, got, ch, &ps, why, sizeof why) : policy_decode(buf, got, &ps, why, sizeof why);
    free(buf);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s (move it away to start without it)", s->path, why);
        goto fail;
    }
    if (install(s, ps.ps, ps.text, &ps.info) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    load_history(s, ch);
    return s;
fail:
    policy_store_close(&s);
    return NULL;
}

void policy_store_close(policy_store_t **sp)
{
    if (!sp || !*sp)
        return;
    policy_store_t *s = *sp;
    held_t *h = s->all;
    while (h) {
        held_t *next = h->next;
        policy_free(&h->ps);
        free(h->text);
        free(h);
        h = next;
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    *sp = NULL;
}

const policy_set_t *policy_store_get(policy_store_t *s, policy_info_t *info)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    held_t *h = s->cur;
    if (h) {
        h->refs++;
        if (info)
            *info = h->info;
    }
    pthread_mutex_unlock(&s->mu);
    return h ? h->ps : NULL;
}

const policy_set_t *policy_store_get_at(policy_store_t *s, int64_t t_ms, policy_info_t *info, uint64_t *gen)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    held_t *h = NULL;
    for (size_t i = s->nhist; i-- > 0;)   /* the highest version in effect at t */
        if (policy_effective_ms(s->hist[i]->ps) <= t_ms) {
            h = s->hist[i];
            break;
        }
    if (h) {
        h->refs++;
        if (info)
            *info = h->info;
    } else if (info)
        memset(info, 0, sizeof *info);
    if (gen)
        *gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    return h ? h->ps : NULL;
}

void policy_store_put(policy_store_t *s, const policy_set_t *ps)
{
    if (!s || !ps)
        return;
    pthread_mutex_lock(&s->mu);
    for (held_t *h = s->all; h; h = h->next)
        if (h->ps == ps) {
            held_unref_locked(s, h);
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

uint64_t policy_store_generation(policy_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

uint64_t policy_store_conflicts(policy_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t c = s->conflicts;
    pthread_mutex_unlock(&s->mu);
    return c;
}

json_t *policy_store_json(policy_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    held_t *h = s->cur;
    json_t *j;
    if (!h) {
        j = json_pack("{s:I,s:n}", "version", (json_int_t)0, "source");
    } else {
        char when[32], key[ID_HEX_LEN];
        json_t *signers = json_array();
        for (size_t i = 0; i < h->info.nsigners; i++) {
            identity_hex(h->info.signers[i], key);
            json_array_append_new(signers, json_string(key));
        }
        trust_time_text(policy_effective_ms(h->ps), when);
        char hash[2 * TRUST_HASH_LEN + 1] = "";
        if (h->info.signed_set)
            trust_hex(h->info.hash, TRUST_HASH_LEN, hash);
        j = json_pack("{s:I,s:b,s:s,s:o,s:I,s:I,s:s,s:s,s:s}", "version", (json_int_t)h->info.version, "signed",
                      h->info.signed_set, "source", h->info.source, "signers", signers, "rules",
                      (json_int_t)policy_nrules(h->ps), "tests", (json_int_t)policy_ntests(h->ps), "effective",
                      policy_effective_ms(h->ps) > 0 ? when : "", "hash", hash, "text", h->text);
    }
    pthread_mutex_unlock(&s->mu);
    return j;
}
