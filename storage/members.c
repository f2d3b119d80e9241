/* storage/members.c - the membership view: node id (32 bytes) -> serialized Member.
 *
 * Owns: storing, deleting and listing members' bytes.
 * Must not: decode members or decide their state (gossip/ does). */
#include <string.h>
#include "storage/internal.h"

typedef struct {
    const uint8_t *id;
    const uint8_t *member;
    size_t len;
} member_ctx;

static int put_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    const member_ctx *m = vctx;
    MDB_val k = { STORE_KEY_LEN, (void *)m->id }, v = { m->len, (void *)m->member };
    int rc = mdb_put(txn, st->members, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(members)", rc) : 0;
}

int store_member_put(store_t *st, const uint8_t id[STORE_KEY_LEN], const uint8_t *member, size_t len)
{
    if (!st || !id || !member || len == 0) {
        store__err(NULL, 0, "store_member_put: NULL argument or empty member");
        return -1;
    }
    member_ctx m = { .id = id, .member = member, .len = len };
    return store__write(st, put_body, &m, NULL, 0);
}

static int del_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    const member_ctx *m = vctx;
    MDB_val k = { STORE_KEY_LEN, (void *)m->id };
    int rc = mdb_del(txn, st->members, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    return rc ? store__write_fail(st, err, errlen, "mdb_del(members)", rc) : 0;
}

int store_member_del(store_t *st, const uint8_t id[STORE_KEY_LEN])
{
    if (!st || !id) {
        store__err(NULL, 0, "store_member_del: NULL argument");
        return -1;
    }
    member_ctx m = { .id = id };
    return store__write(st, del_body, &m, NULL, 0);
}

typedef struct {
    const store_member_change_t *ch;
    size_t n;
} save_ctx;

static int save_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    const save_ctx *s = vctx;
    for (size_t i = 0; i < s->n; i++) {
        member_ctx m = {.id = s->ch[i].id, .member = s->ch[i].member, .len = s->ch[i].len};
        int rc = m.member ? put_body(st, txn, &m, err, errlen) : del_body(st, txn, &m, err, errlen);
        if (rc != 0 && rc != STORE_NOTFOUND)
            return rc;
    }
    return 0;
}

int store_members_save(store_t *st, const store_member_change_t *ch, size_t n)
{
    if (!st || (!ch && n)) {
        store__err(NULL, 0, "store_members_save: NULL argument");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (ch[i].member && ch[i].len == 0) {
            store__err(NULL, 0, "store_members_save: empty member");
            return -1;
        }
    if (n == 0)
        return 0;
    save_ctx s = {ch, n};
    return store__write(st, save_body, &s, NULL, 0);
}

int store_members(store_t *st, store_member_fn fn, void *ctx)
{
    if (!st || !fn) {
        store__err(NULL, 0, "store_members: NULL argument");
        return -1;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->members, "members", &txn, &cur) != 0)
        return -1;
    int rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (fn(ctx, v.mv_data, v.mv_size) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "members", rc);
}
