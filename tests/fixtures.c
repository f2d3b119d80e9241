/* tests/fixtures.c - test helpers: the repository's sample files under examples/, fresh node
 * identities, the wall clock, a signed charter and a work dir holding it.
 * Owns: finding and reading the samples (through the harness's path and file helpers).
 * Must not: be linked into the library, or assert (callers check the result). */
#include "tests/fixtures.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tests/harness.h"
#include "gossip/entry.h"
#include "proto/tributary.pb-c.h"

char *fx_read_example(const char *name, size_t *len)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "examples/%s", name);
    return h_read_file(h_repo_path(rel, path, sizeof path), len);
}

void fx_identity(identity_t *id)
{
    memset(id, 0, sizeof *id);
    crypto_sign_keypair(id->pk, id->sk);
    if (crypto_sign_ed25519_pk_to_curve25519(id->curve_pk, id->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(id->curve_sk, id->sk) != 0)
        abort();
    identity_hex(id->pk, id->hex);
}

int64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fx_charter(charter_t *c, const identity_t *const *roots, size_t n, uint32_t threshold, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    randombytes_buf(c->fed_id, FED_ID_LEN);
    for (size_t i = 0; i < n; i++) {
        memcpy(c->keys[i].key, roots[i]->pk, ID_PK_LEN);
        c->keys[i].role = CHARTER_ROLE_ROOT;
    }
    c->nkeys = n;
    c->threshold = threshold;
    c->issued_ms = fx_now_ms();
    return charter_sign(NULL, c, roots, n, err, errlen);
}

int fx_charter_dir(const charter_t *c, const char *name, char *work, size_t wcap, char *chpath, size_t ccap,
                   char *err, size_t errlen)
{
    if ((size_t)snprintf(work, wcap, "/tmp/trib-%s-XXXXXX", name) >= wcap || !mkdtemp(work)) {
        snprintf(err, errlen, "fx_charter_dir: cannot make a work dir for %s", name);
        work[0] = '\0';
        return -1;
    }
    if ((size_t)snprintf(chpath, ccap, "%s/charter.json", work) >= ccap) {
        snprintf(err, errlen, "fx_charter_dir: %s/charter.json is too long", work);
        return -1;
    }
    json_t *j = charter_to_json(c);
    int rc = j ? trust_file_write(chpath, j, err, errlen) : -1;
    if (!j)
        snprintf(err, errlen, "fx_charter_dir: the charter does not encode");
    json_decref(j);
    return rc;
}

void fx_rmdir(const char *dir)
{
    char cmd[300];
    if (!dir[0] || (size_t)snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= sizeof cmd)
        return;
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

uint8_t *fx_manifest_entry(const identity_t *id, const char *domain, const char *name, const char *title,
                           uint64_t seq, const uint8_t *prev, size_t *len)
{
    Trib__SchemaProperty prop = TRIB__SCHEMA_PROPERTY__INIT;
    prop.name = "id";
    prop.logical_type = "string";
    Trib__SchemaProperty *props[] = {&prop};
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = (char *)domain;
    m.name = (char *)name;
    m.version = "1.0.0";
    m.status = "active";
    m.title = (char *)title;
    m.owner_business = "a@example.com";
    m.owner_technical = "b@example.com";
    m.classification = "internal";
    m.n_schema = 1;
    m.schema = props;
    m.document_json = "{}";
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = (char *)domain;
    e.seq = seq;
    if (prev) {
        e.prev_hash.data = (uint8_t *)prev;
        e.prev_hash.len = 32;
    }
    e.time_ms = 1;
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    e.manifest = &m;
    uint8_t *out = NULL;
    cr_assert_eq(entry_sign(id, &e, &out, len), 0, "signing %s seq %llu", domain, (unsigned long long)seq);
    return out;
}
