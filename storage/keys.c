/* storage/keys.c - names and key encodings shared by the storage databases.
 *
 * Owns: the domain/product name rule (its only implementation; gossip/ and node/ call it), and
 * the "prefix 0x00 BE-u64" keys of catalog and records, whose big-endian seq makes cursor order
 * numeric order.
 * Must not: touch LMDB beyond reading the bytes of a key it is handed. */
#include <assert.h>
#include <string.h>
#include "storage/internal.h"

void store__be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t store__be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

int store_valid_name(const char *s, size_t len)
{
    if (!s || len == 0 || len > STORE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return 0;
    }
    return 1;
}

int store_valid_id(const char *id)
{
    if (!id)
        return 0;
    size_t len = strnlen(id, STORE_ID_MAX);
    if (len >= STORE_ID_MAX)
        return 0;
    const char *slash = memchr(id, '/', len);
    if (!slash)
        return 0;
    size_t dlen = (size_t)(slash - id);
    return store_valid_name(id, dlen) && store_valid_name(slash + 1, len - dlen - 1);
}

size_t store__seq_key(uint8_t out[STORE_SEQKEY_MAX], const char *prefix, size_t plen, uint64_t seq)
{
    assert(plen + 1 + 8 <= STORE_SEQKEY_MAX);
    memcpy(out, prefix, plen);
    out[plen] = 0;
    store__be64_put(out + plen + 1, seq);
    return plen + 1 + 8;
}

int store__seq_key_parse(const MDB_val *k, const char *prefix, size_t plen, uint64_t *seq)
{
    const uint8_t *b = k->mv_data;
    if (k->mv_size != plen + 1 + 8 || memcmp(b, prefix, plen) != 0 || b[plen] != 0)
        return 0;
    *seq = store__be64_get(b + plen + 1);
    return 1;
}
