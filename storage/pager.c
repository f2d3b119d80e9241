/* storage/pager.c - one pager for every reader of record logs (see pager.h): records of a product
 * from a seq, at most N records and B bytes, as NDJSON lines in a reusable buffer.
 *
 * Owns: the page buffer's growth, the record and byte bounds of a page, and the seq it ends at.
 * Must not: parse or validate records, know about HTTP or peers, or write to the store. */
#include <stdlib.h>
#include <string.h>
#include "storage/internal.h"
#include "storage/pager.h"

typedef struct {
    store_page_t *pg;
    uint64_t max_records;
    size_t max_bytes;
    int oom;
} fill_t;

static int page_add(void *ctx, uint64_t seq, const void *data, size_t len)
{
    fill_t *f = ctx;
    store_page_t *pg = f->pg;
    if (pg->n == f->max_records || (pg->n > 0 && pg->len + len + 1 > f->max_bytes)) {
        pg->full = 1;   /* this record opens the next page */
        return 1;
    }
    size_t need = pg->head + pg->len + len + 1;
    if (need > pg->cap) {
        size_t cap = pg->cap ? pg->cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        char *b = realloc(pg->buf, cap);
        if (!b) {
            f->oom = 1;
            return -1;
        }
        pg->buf = b;
        pg->cap = cap;
    }
    char *out = pg->buf + pg->head + pg->len;
    memcpy(out, data, len);
    out[len] = '\n';
    pg->len += len + 1;
    if (pg->n++ == 0)
        pg->first = seq;
    pg->next = seq + 1;
    /* at max_bytes or max_records exactly the page is not called full yet: the next record, if
     * there is one, says so above (one more step of the cursor), and a page that ends the log
     * there is not */
    return 0;
}

long store_page_read(store_t *st, const char *id, uint64_t from, uint64_t max_records, size_t max_bytes,
                     store_page_t *pg)
{
    pg->len = pg->n = 0;
    pg->full = 0;
    pg->first = pg->next = from;
    if (max_records == 0)
        return 0;
    fill_t f = {pg, max_records, max_bytes, 0};
    /* one record more than the page takes (0, no limit, past UINT64_MAX): page_add looks at it
     * only to say whether the page is full */
    long n = store_records_read(st, id, from, max_records + 1, page_add, &f);
    if (f.oom) {
        store__err(NULL, 0, "reading records of %s: out of memory for a page of %zu bytes", id, max_bytes);
        return -1;
    }
    return n < 0 ? -1 : (long)pg->n;
}

void store_page_free(store_page_t *pg)
{
    if (!pg)
        return;
    free(pg->buf);
    *pg = (store_page_t){0};
}
