/* gossip/catalog.c - the node's catalog replica: publishing its own entries, accepting peers'.
 *
 * Owns: building this node's next CatalogEntry (seq head+1, prev_hash = head hash, manifest or
 * tombstone), signing it, checking the signed bytes as a peer would, and appending it; and
 * accepting a peer's SignedEntry (entry_verify, then store_catalog_append's sequence, chain and
 * key checks), mapping every refusal to a cat_result_t so the caller can count it.
 * Must not: speak to the network, parse YAML/JSON, or include lmdb.h. */
#include "gossip/catalog.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/entry.h"

struct catalog {
    store_t *st;                 /* borrowed */
    identity_t id;               /* a copy, wiped on destroy */
    char domain[64];
    pthread_mutex_t mu;          /* serializes catalog_publish: seqs never race */
};

static const char *const result_names[CAT_RESULT_COUNT] = {
    [CAT_ACCEPTED] = "accepted",
    [CAT_DUPLICATE] = "duplicate",
    [CAT_GAP] = "gap",
    [CAT_BAD_SIGNATURE] = "bad_signature",
    [CAT_WRONG_KEY] = "wrong_key",
    [CAT_BAD_CHAIN] = "bad_chain",
    [CAT_ERROR] = "error",
};

const char *cat_result_name(cat_result_t r)
{
    if ((int)r < 0 || r >= CAT_RESULT_COUNT)
        return "unknown";
    return result_names[r];
}

/* ---------------------------------------------------------------- lifetime */

catalog_t *catalog_new(store_t *st, const identity_t *id, const char *domain)
{
    if (st == NULL || id == NULL || !entry_valid_name(domain))
        return NULL;
    catalog_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->st = st;
    c->id = *id;
    snprintf(c->domain, sizeof c->domain, "%s", domain);
    return c;
}

void catalog_destroy(catalog_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    catalog_t *c = *cp;
    pthread_mutex_destroy(&c->mu);
    identity_wipe(&c->id);
    free(c);
    *cp = NULL;
}

/* ---------------------------------------------------------------- store results */

/* Describes a STORE_* refusal of entry ce in err and maps it to a cat_result_t. */
static cat_result_t map_append(int rc, const Trib__CatalogEntry *ce, const uint8_t signer[ID_PK_LEN],
                               char *err, size_t errlen)
{
    unsigned long long seq = (unsigned long long)ce->seq;
    char hex[ID_HEX_LEN];

    switch (rc) {
    case 0:
        return CAT_ACCEPTED;
    case STORE_DUP:
        snprintf(err, errlen, "%s seq %llu: already held", ce->domain, seq);
        return CAT_DUPLICATE;
    case STORE_GAP:
        snprintf(err, errlen, "%s seq %llu: earlier entries missing", ce->domain, seq);
        return CAT_GAP;
    case STORE_BADKEY:
        identity_hex(signer, hex);
        snprintf(err, errlen, "domain '%s' is bound to another key, not signer %s", ce->domain, hex);
        return CAT_WRONG_KEY;
    case STORE_BADPREV:
        snprintf(err, errlen, "%s seq %llu: prev_hash does not match the hash of seq %llu", ce->domain,
                 seq, seq - 1);
        return CAT_BAD_CHAIN;
    case -1:
        return CAT_ERROR;   /* the store described it in err */
    default:
        snprintf(err, errlen, "%s seq %llu: unexpected store result %d", ce->domain, seq, rc);
        return CAT_ERROR;
    }
}

/* ---------------------------------------------------------------- publish */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Refuses a change this node must not make; 0 when it may go ahead. */
static int check_change(catalog_t *c, const Trib__Manifest *m, const char *retire_name,
                        char *err, size_t errlen)
{
    if ((m == NULL) == (retire_name == NULL)) {
        snprintf(err, errlen, "catalog_publish: give a manifest or a name to retire, not %s",
                 m ? "both" : "neither");
        return -1;
    }
    if (m != NULL) {
        if (m->domain == NULL || strcmp(m->domain, c->domain) != 0) {
            snprintf(err, errlen, "manifest domain '%.63s' is not this node's domain '%s'",
                     m->domain ? m->domain : "", c->domain);
            return -1;
        }
        if (!entry_valid_name(m->name)) {
            snprintf(err, errlen, "product name '%.63s' is not valid ([a-z0-9][a-z0-9-]{0,62})",
                     m->name ? m->name : "");
            return -1;
        }
        return 0;
    }
    if (!entry_valid_name(retire_name)) {
        snprintf(err, errlen, "product name '%.63s' is not valid ([a-z0-9][a-z0-9-]{0,62})", retire_name);
        return -1;
    }
    char pid[STORE_ID_MAX];
    store_product_t p;
    snprintf(pid, sizeof pid, "%s/%s", c->domain, retire_name);
    int rc = store_product_get(c->st, pid, &p);
    if (rc == STORE_NOTFOUND) {
        snprintf(err, errlen, "%s is not a known product", pid);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read the products index", pid);
        return -1;
    }
    if (p.retired) {
        snprintf(err, errlen, "%s is already retired", pid);
        return -1;
    }
    return 0;
}

int catalog_publish(catalog_t *c, const Trib__Manifest *m, const char *retire_name,
                    uint64_t *seq, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    assert(c && seq);
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    Trib__Tombstone tomb = TRIB__TOMBSTONE__INIT;
    store_head_t head;
    entry_t v = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;
    int ret = -1;

    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    pthread_mutex_lock(&c->mu);
    if (check_change(c, m, retire_name, err, errlen) != 0)
        goto done;

    int rc = store_catalog_head(c->st, c->domain, &head);
    if (rc == STORE_NOTFOUND) {
        memset(&head, 0, sizeof head);
    } else if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read the catalog head", c->domain);
        goto done;
    } else if (sodium_memcmp(head.key, c->id.pk, ID_PK_LEN) != 0) {
        char hex[ID_HEX_LEN];
        identity_hex(head.key, hex);
        snprintf(err, errlen, "domain '%s' is bound to another node's key (%s)", c->domain, hex);
        goto done;
    }

    ce.domain = c->domain;
    ce.seq = head.seq + 1;
    if (head.seq > 0) {
        ce.prev_hash.data = head.hash;
        ce.prev_hash.len = STORE_HASH_LEN;
    }
    ce.time_ms = now_ms();
    if (m != NULL) {
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
        ce.manifest = (Trib__Manifest *)m;   /* only read by pack */
    } else {
        tomb.name = (char *)retire_name;     /* only read by pack */
        ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
        ce.tombstone = &tomb;
    }
    if (entry_sign(&c->id, &ce, &bytes, &len) != 0) {
        snprintf(err, errlen, "%s seq %llu: cannot sign (too large or out of memory)", c->domain,
                 (unsigned long long)ce.seq);
        goto done;
    }
    /* Check our bytes exactly as a peer will; also yields the decoded entry and body hash. */
    char verr[256];
    if (entry_verify(bytes, len, &v, verr, sizeof verr) != 0) {
        snprintf(err, errlen, "%s seq %llu: own entry refused: %s", c->domain,
                 (unsigned long long)ce.seq, verr);
        goto done;
    }
    rc = store_catalog_append(c->st, v.entry, v.hash, c->id.pk, bytes, len, err, errlen);
    if (rc != 0) {
        if (rc != -1)
            map_append(rc, v.entry, c->id.pk, err, errlen);
        goto done;
    }
    *seq = ce.seq;
    if (out && outlen) {
        *out = bytes;
        *outlen = len;
        bytes = NULL;
    }
    ret = 0;
done:
    pthread_mutex_unlock(&c->mu);
    entry_free(&v);
    free(bytes);
    return ret;
}

/* ---------------------------------------------------------------- accept */

cat_result_t catalog_accept(catalog_t *c, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    assert(c);
    entry_t v;

    if (entry_verify(bytes, len, &v, err, errlen) != 0)
        return CAT_BAD_SIGNATURE;
    /* store_catalog_append checks seq, chain and key inside its own write transaction, so no
     * lock is needed here: a racing publish of our own domain gets STORE_DUP, not a fork. */
    int rc = store_catalog_append(c->st, v.entry, v.hash, v.signed_entry->signer.data, bytes, len,
                                  err, errlen);
    cat_result_t r = map_append(rc, v.entry, v.signed_entry->signer.data, err, errlen);
    entry_free(&v);
    return r;
}
