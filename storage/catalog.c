/* storage/catalog.c - per-domain signed catalog logs and their heads.
 *
 * Owns: the catalog database (domain 0x00 BE-seq -> serialized SignedEntry), catalog_heads
 * (domain -> bound key, head seq, head hash), the append checks (binding, sequence, chain)
 * and the products-index and search-index updates an entry implies, all in one write
 * transaction (one entry, or a batch of a publisher's entries: one durable commit).
 * Must not: verify signatures or hashes (gossip/ does; we trust the hash and signer we are
 * handed) or decode the signed bytes we store (search.c's rebuild does, for its index). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "storage/internal.h"

#define HEAD_LEN (STORE_KEY_LEN + 8 + STORE_HASH_LEN)   /* key | BE seq | hash */

/* ---------------------------------------------------------------- heads */

static void head_encode(const store_head_t *h, uint8_t out[HEAD_LEN])
{
    memcpy(out, h->key, STORE_KEY_LEN);
    store__be64_put(out + STORE_KEY_LEN, h->seq);
    memcpy(out + STORE_KEY_LEN + 8, h->hash, STORE_HASH_LEN);
}

static int head_decode(const MDB_val *v, store_head_t *h, char *err, size_t errlen)
{
    if (v->mv_size != HEAD_LEN) {
        store__err(err, errlen, "catalog_heads: value of %zu bytes, expected %d", v->mv_size, HEAD_LEN);
        return -1;
    }
    const uint8_t *b = v->mv_data;
    memcpy(h->key, b, STORE_KEY_LEN);
    h->seq = store__be64_get(b + STORE_KEY_LEN);
    memcpy(h->hash, b + STORE_KEY_LEN + 8, STORE_HASH_LEN);
    return 0;
}

static int head_load(store_t *st, MDB_txn *txn, const char *domain, size_t dlen,
                     store_head_t *out, char *err, size_t errlen)
{
    MDB_val k = { dlen, (void *)domain }, v;
    int rc = mdb_get(txn, st->heads, &k, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc != 0) {
        store__mdb_err(st, err, errlen, "mdb_get(catalog_heads)", rc);
        return -1;
    }
    return head_decode(&v, out, err, errlen);
}

/* Length of a valid domain, or 0. */
static size_t domain_len(const char *domain)
{
    if (!domain)
        return 0;
    size_t n = strnlen(domain, STORE_NAME_MAX + 1);
    return store_valid_name(domain, n) ? n : 0;
}

int store_catalog_head(store_t *st, const char *domain, store_head_t *out)
{
    size_t dlen = domain_len(domain);
    if (!st || !out || !dlen) {
        store__err(NULL, 0, "store_catalog_head: %s", dlen ? "NULL argument" : "invalid domain");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    int rc = head_load(st, txn, domain, dlen, out, NULL, 0);
    store__read_end(st, txn);
    return rc;
}

int store_catalog_heads(store_t *st, store_head_fn fn, void *ctx)
{
    if (!st || !fn) {
        store__err(NULL, 0, "store_catalog_heads: NULL argument");
        return -1;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->heads, "catalog_heads", &txn, &cur) != 0)
        return -1;
    int rc, ret = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char domain[STORE_NAME_MAX + 1];
        store_head_t h;
        if (k.mv_size == 0 || k.mv_size > STORE_NAME_MAX) {
            store__err(NULL, 0, "catalog_heads: key of %zu bytes", k.mv_size);
            ret = -1;
            break;
        }
        memcpy(domain, k.mv_data, k.mv_size);
        domain[k.mv_size] = 0;
        if (head_decode(&v, &h, NULL, 0) != 0) {
            ret = -1;
            break;
        }
        if (fn(ctx, domain, &h) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "catalog_heads", rc) ? -1 : ret;
}

/* ---------------------------------------------------------------- append */

typedef struct {
    const Trib__CatalogEntry *entry;
    size_t dlen;
    const uint8_t *hash, *signer, *bytes;
    size_t len;
    const char *name;            /* product the entry is about */
    int tombstone;
    int other;                   /* not a product change (a token revocation, an access change) */
    int (*handover)(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to);
    void *handover_ctx;
} append_ctx;

/* seq, prev_hash and binding against the head; 0 when the entry is the next one. */
static int check_head(store_t *st, MDB_txn *txn, const append_ctx *a, store_head_t *head,
                      char *err, size_t errlen)
{
    const Trib__CatalogEntry *e = a->entry;
    int rc = head_load(st, txn, e->domain, a->dlen, head, err, errlen);
    if (rc == -1)
        return -1;
    if (rc == STORE_NOTFOUND) {
        memset(head, 0, sizeof *head);
        memcpy(head->key, a->signer, STORE_KEY_LEN);   /* seq 1 binds the domain */
    } else if (memcmp(head->key, a->signer, STORE_KEY_LEN) != 0) {
        if (a->handover && a->handover(a->handover_ctx, e->domain, head->key, a->signer)) {
            memcpy(head->key, a->signer, STORE_KEY_LEN);   /* a key hand-over: the log continues */
            goto bound;
        }
        store__err(err, errlen, "catalog %s seq %llu: signer is not the key bound to the domain",
                   e->domain, (unsigned long long)e->seq);
        return STORE_BADKEY;
    }
bound:
    if (e->seq <= head->seq) {
        store__err(err, errlen, "catalog %s seq %llu: already held (head %llu)", e->domain,
                   (unsigned long long)e->seq, (unsigned long long)head->seq);
        return STORE_DUP;
    }
    if (e->seq - 1 > head->seq) {
        store__err(err, errlen, "catalog %s seq %llu: gap after head %llu", e->domain,
                   (unsigned long long)e->seq, (unsigned long long)head->seq);
        return STORE_GAP;
    }
    int prev_ok = e->seq == 1
        ? e->prev_hash.len == 0
        : e->prev_hash.len == STORE_HASH_LEN && e->prev_hash.data &&
          memcmp(e->prev_hash.data, head->hash, STORE_HASH_LEN) == 0;
    if (!prev_ok) {
        store__err(err, errlen, "catalog %s seq %llu: prev_hash does not match the head's hash",
                   e->domain, (unsigned long long)e->seq);
        return STORE_BADPREV;
    }
    return 0;
}

/* A fingerprint of m's record schema: what node/records.c validates records with (each
 * property's name, logical type and required) and the primary key, in order; not descriptions. */
static void record_schema_fp(const Trib__Manifest *m, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    for (size_t i = 0; i < m->n_schema; i++) {
        const Trib__SchemaProperty *p = m->schema[i];
        const char *name = p && p->name ? p->name : "", *type = p && p->logical_type ? p->logical_type : "";
        uint8_t flags[2] = {p && p->required, p && p->primary_key};
        crypto_generichash_update(&h, (const uint8_t *)name, strlen(name) + 1);
        crypto_generichash_update(&h, (const uint8_t *)type, strlen(type) + 1);
        crypto_generichash_update(&h, flags, sizeof flags);
    }
    crypto_generichash_final(&h, out, 16);
}

/* The products-index change the entry implies, into p (loaded or fresh). *changed is 0
 * when the entry changes no product: a tombstone for a product never published. */
static int index_entry(store_t *st, MDB_txn *txn, const append_ctx *a, store_product_t *p,
                       int *changed, char *err, size_t errlen)
{
    const Trib__CatalogEntry *e = a->entry;
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s/%s", e->domain, a->name);
    memset(p, 0, sizeof *p);
    *changed = 1;
    int rc = store__product_load(st, txn, id, p, err, errlen);
    if (rc == -1)
        return -1;
    if (a->tombstone) {
        if (rc == STORE_NOTFOUND) {
            *changed = 0;   /* still logged: the log must be able to move past it */
            return 0;
        }
        p->last_seq = e->seq;
        p->retired = 1;
    } else {
        const char *status = e->manifest->status ? e->manifest->status : "";
        uint8_t fp[16];
        record_schema_fp(e->manifest, fp);
        /* the same record schema as the manifest before: the same epoch for records appended now */
        if (rc != 0 || !p->has_schema_fp || memcmp(fp, p->schema_fp, sizeof fp) != 0 || p->retired)
            p->schema_seq = e->seq;
        memcpy(p->schema_fp, fp, sizeof fp);
        p->has_schema_fp = 1;
        p->manifest_seq = p->last_seq = e->seq;
        p->retired = strcmp(status, "retired") == 0;
    }
    memcpy(p->id, id, sizeof id);
    p->updated_ms = e->time_ms;
    return 0;
}

/* Checks and writes one entry: 0; a STORE_* refusal (found before anything is written); or
 * MDB_MAP_FULL / -1 with something possibly written (the transaction must then be aborted). */
static int append_one(store_t *st, MDB_txn *txn, const append_ctx *a, char *err, size_t errlen)
{
    const Trib__CatalogEntry *e = a->entry;
    store_head_t head;
    store_product_t p;
    int changed;
    int rc = check_head(st, txn, a, &head, err, errlen);
    if (rc != 0)
        return rc;
    if (a->other)
        changed = 0;
    else if ((rc = index_entry(st, txn, a, &p, &changed, err, errlen)) != 0)
        return rc;

    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, e->domain, a->dlen, e->seq), kb };
    MDB_val v = { a->len, (void *)a->bytes };
    rc = mdb_put(txn, st->catalog, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        store__err(err, errlen, "catalog %s seq %llu: entry stored beyond the head (%s corrupt?)",
                   e->domain, (unsigned long long)e->seq, st->path);
        return -1;
    }
    if (rc != 0)
        return store__write_fail(st, err, errlen, "mdb_put(catalog)", rc);

    head.seq = e->seq;
    memcpy(head.hash, a->hash, STORE_HASH_LEN);
    uint8_t hb[HEAD_LEN];
    head_encode(&head, hb);
    MDB_val hk = { a->dlen, (void *)e->domain }, hv = { sizeof hb, hb };
    if ((rc = mdb_put(txn, st->heads, &hk, &hv, 0)) != 0)
        return store__write_fail(st, err, errlen, "mdb_put(catalog_heads)", rc);
    if (e->change_case == TRIB__CATALOG_ENTRY__CHANGE_ACCESS)
        return store__access_apply(st, txn, e, err, errlen);
    if (a->other)
        return 0;   /* not a product change: nothing for the change log or the indexes */
    char ev[512];   /* the change log */
    int evn = store__changes_catalog_row(ev, sizeof ev, e->domain, e->seq, a->name, a->tombstone, e->time_ms, 0);
    if (evn < 0) {   /* names are checked before: never */
        store__err(err, errlen, "catalog %s seq %llu: change log row does not fit", e->domain, (unsigned long long)e->seq);
        return -1;
    }
    if ((rc = store__changes_put(st, txn, ev, (size_t)evn, err, errlen)) != 0)
        return rc;
    if (!changed)
        return 0;
    if ((rc = store__product_save(st, txn, &p, err, errlen)) != 0)
        return rc;
    if (!a->tombstone &&
        (rc = store__history_put(st, txn, p.id, e->seq, e->time_ms, a->signer, e->manifest->version,
                                 err, errlen)) != 0)
        return rc;
    return a->tombstone ? store__search_retire(st, txn, p.id, err, errlen)
                        : store__search_put(st, txn, p.id, e->manifest, p.retired, err, errlen);
}

/* The checks that need no transaction, and the append context of one entry. 0 or -1 with err. */
static int append_prepare(append_ctx *a, const store_append_t *it, char *err, size_t errlen)
{
    const uint8_t *signer = it->signer;
    const Trib__CatalogEntry *entry = it->entry;
    if (!entry || !it->hash || !signer || !it->signed_bytes || it->len == 0) {
        store__err(err, errlen, "store_catalog_append: NULL or empty argument");
        return -1;
    }
    *a = (append_ctx){ .entry = entry, .hash = it->hash, .signer = signer,
                       .bytes = it->signed_bytes, .len = it->len,
                       .handover = it->handover, .handover_ctx = it->handover_ctx };
    a->dlen = domain_len(entry->domain);
    if (!a->dlen) {
        store__err(err, errlen, "store_catalog_append: invalid domain");
        return -1;
    }
    if (entry->seq == 0) {
        store__err(err, errlen, "catalog %s: seq 0 (seqs start at 1)", entry->domain);
        return -1;
    }
    if (entry->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST && entry->manifest) {
        const Trib__Manifest *m = entry->manifest;
        if (!m->domain || strcmp(m->domain, entry->domain) != 0) {
            store__err(err, errlen, "catalog %s seq %llu: manifest of another domain",
                       entry->domain, (unsigned long long)entry->seq);
            return -1;
        }
        a->name = m->name;
    } else if (entry->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE && entry->tombstone) {
        a->name = entry->tombstone->name;
        a->tombstone = 1;
    } else if (entry->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOKEN_REVOKE && entry->token_revoke) {
        a->other = 1; /* logged and chained; no product changes (the products index ignores it) */
        return 0;
    } else if (entry->change_case == TRIB__CATALOG_ENTRY__CHANGE_ACCESS && entry->access) {
        a->other = 1; /* grants: logged and chained; the access index (access.c), not the products index */
        return 0;
    } else {
        store__err(err, errlen, "catalog %s seq %llu: entry has neither manifest nor tombstone",
                   entry->domain, (unsigned long long)entry->seq);
        return -1;
    }
    if (!a->name || !store_valid_name(a->name, strnlen(a->name, STORE_NAME_MAX + 1))) {
        store__err(err, errlen, "catalog %s seq %llu: invalid product name",
                   entry->domain, (unsigned long long)entry->seq);
        return -1;
    }
    return 0;
}

typedef struct {
    store_append_t *items;
    size_t n;
    char *errs;                  /* item i's text at errs + i * errlen, or NULL */
    size_t errlen;
    unsigned char *skip;         /* items refused before or by a failed transaction */
    size_t failed;               /* set by the body: the item whose write failed, or SIZE_MAX */
} batch_ctx;

static char *item_err(const batch_ctx *b, size_t i)
{
    return b->errs ? b->errs + i * b->errlen : NULL;
}

/* Appends the items not skipped, in order, each against the head the items before it left. A
 * refusal found before writing (sequence, chain, key) is that item's result and the others go on;
 * a failure while writing stops the transaction and names the item (b->failed). */
static int batch_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    batch_ctx *b = vctx;
    b->failed = SIZE_MAX;
    for (size_t i = 0; i < b->n; i++) {
        if (b->skip[i])
            continue;
        append_ctx a;
        char *ierr = item_err(b, i);
        int rc = append_prepare(&a, &b->items[i], ierr, b->errlen);
        if (rc == 0)
            rc = append_one(st, txn, &a, ierr, b->errlen);
        if (rc == MDB_MAP_FULL)
            return rc;           /* the whole body runs again in a bigger map */
        if (rc == -1) {
            b->failed = i;
            store__err(err, errlen, "%s", store_last_error());
            return -1;
        }
        b->items[i].rc = rc;     /* 0 or a refusal: nothing of it written */
    }
    return 0;
}

long store_catalog_append_many(store_t *st, store_append_t *items, size_t n, char *errs, size_t errlen,
                               char *err, size_t err_len)
{
    if (!st || (!items && n > 0)) {
        store__err(err, err_len, "store_catalog_append_many: NULL argument");
        return -1;
    }
    if (n == 0)
        return 0;
    unsigned char *skip = calloc(n, 1);
    if (!skip) {
        store__err(err, err_len, "store_catalog_append_many: out of memory");
        return -1;
    }
    batch_ctx b = { .items = items, .n = n, .errs = errs, .errlen = errs ? errlen : 0, .skip = skip };
    size_t live = n;
    for (size_t i = 0; i < n; i++) {             /* refusals that need no transaction */
        append_ctx a;
        items[i].rc = append_prepare(&a, &items[i], item_err(&b, i), b.errlen);
        if (items[i].rc != 0) {
            skip[i] = 1;
            live--;
        }
    }
    long stored = 0;
    int rc = 0;
    while (live > 0) {
        rc = store__write(st, batch_body, &b, err, err_len);
        if (rc == 0 || b.failed >= n)
            break;
        /* One item's write failed: it alone is refused, the others are tried again without it. */
        items[b.failed].rc = -1;
        if (b.errs)
            snprintf(item_err(&b, b.failed), b.errlen, "%s", err ? err : store_last_error());
        skip[b.failed] = 1;
        live--;
        rc = 0;
    }
    if (rc != 0) {                               /* the transaction failed: nothing stored */
        for (size_t i = 0; i < n; i++)
            if (!skip[i]) {
                items[i].rc = -1;
                if (b.errs)
                    snprintf(item_err(&b, i), b.errlen, "%s", store_last_error());
            }
        free(skip);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        stored += items[i].rc == 0;
    free(skip);
    return stored;
}

int store_catalog_append(store_t *st, const Trib__CatalogEntry *entry,
                         const uint8_t hash[STORE_HASH_LEN], const uint8_t signer[STORE_KEY_LEN],
                         const uint8_t *signed_bytes, size_t signed_len, char *err, size_t errlen)
{
    store_append_t it = { .entry = entry, .hash = hash, .signer = signer, .signed_bytes = signed_bytes,
                          .len = signed_len };
    char text[STORE_ERR_MAX] = "";
    if (store_catalog_append_many(st, &it, 1, text, sizeof text, err, errlen) < 0)
        return -1;               /* err says why */
    if (it.rc != 0)
        store__err(err, errlen, "%s", text);
    return it.rc;
}

/* ---------------------------------------------------------------- reads */

int store_catalog_get(store_t *st, const char *domain, uint64_t seq, uint8_t **out, size_t *len)
{
    size_t dlen = domain_len(domain);
    if (!st || !out || !len || !dlen) {
        store__err(NULL, 0, "store_catalog_get: %s", dlen ? "NULL argument" : "invalid domain");
        return -1;
    }
    *out = NULL;
    *len = 0;
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, domain, dlen, seq), kb }, v;
    int rc = mdb_get(txn, st->catalog, &k, &v), ret = 0;
    if (rc == MDB_NOTFOUND) {
        ret = STORE_NOTFOUND;
    } else if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_get(catalog)", rc);
        ret = -1;
    } else if (!(*out = malloc(v.mv_size ? v.mv_size : 1))) {
        store__err(NULL, 0, "store_catalog_get: out of memory (%zu bytes)", v.mv_size);
        ret = -1;
    } else {
        memcpy(*out, v.mv_data, v.mv_size);   /* copied before the txn ends */
        *len = v.mv_size;
    }
    store__read_end(st, txn);
    return ret;
}

int store_catalog_holds(store_t *st, const store_copy_t *q, size_t n, unsigned char *held, char *err, size_t errlen)
{
    if (n && held)
        memset(held, 0, n);
    if (!st || (n && (!q || !held))) {
        store__err(err, errlen, "store_catalog_holds: NULL argument");
        return -1;
    }
    if (n == 0)
        return 0;
    MDB_txn *txn;
    if (store__read_begin(st, &txn, err, errlen) != 0)
        return -1;
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        size_t dlen = domain_len(q[i].domain);
        if (!dlen || q[i].seq == 0)
            continue;
        uint8_t kb[STORE_SEQKEY_MAX];
        MDB_val k = { store__seq_key(kb, q[i].domain, dlen, q[i].seq), kb }, v;
        int rc = mdb_get(txn, st->catalog, &k, &v);
        if (rc == 0) {
            held[i] = v.mv_size == q[i].len && memcmp(v.mv_data, q[i].bytes, q[i].len) == 0;
        } else if (rc != MDB_NOTFOUND) {
            store__mdb_err(st, err, errlen, "mdb_get(catalog)", rc);
            memset(held, 0, n);
            ret = -1;
            break;
        }
    }
    store__read_end(st, txn);
    return ret;
}

int store_catalog_scan(store_t *st, const char *domain, uint64_t from, size_t max_bytes,
                       store_entry_fn fn, void *ctx)
{
    size_t dlen = domain_len(domain);
    if (!st || !fn || !dlen) {
        store__err(NULL, 0, "store_catalog_scan: %s", dlen ? "NULL argument" : "invalid domain");
        return -1;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->catalog, "catalog", &txn, &cur) != 0)
        return -1;
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, domain, dlen, from), kb }, v;
    int rc, count = 0;
    size_t total = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if (!store__seq_key_parse(&k, domain, dlen, &seq))
            break;
        /* The first entry is passed even when it alone exceeds max_bytes. */
        if (count > 0 && (total > max_bytes || v.mv_size > max_bytes - total))
            break;
        total += v.mv_size;
        count++;
        if (fn(ctx, seq, v.mv_data, v.mv_size) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "catalog", rc) ? -1 : count;
}
