/* tests/test_pager.c - storage/pager.c against a real LMDB environment in a temp dir: the one pager
 * that local HTTP reads and the owner side of routed reads both page record logs with.
 *
 * Covers: NDJSON lines of whole records, the record and byte bounds (a record that would pass the
 * byte bound opens the next page; a first record larger than the bound is alone in its page), the
 * seq a page ends at, full, the end of the log, an unknown product, buffer reuse, and the head a
 * caller keeps free in front of the records (the owner of a routed read packs its message there).
 * Must not: depend on gossip/ or node/. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "storage/pager.h"

static char dir[64];
static store_t *st;
static char err[256];

static void setup(void)
{
    strcpy(dir, "/tmp/trib-pager-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    st = store_open(dir, NULL, err, sizeof err);
    cr_assert_not_null(st, "store_open: %s", err);
    /* A product to hold records: one manifest entry of domain "payments". */
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    m.domain = "payments";
    m.name = "ledger";
    m.status = "active";
    m.version = "1.0.0";
    e.domain = "payments";
    e.seq = 1;
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    e.manifest = &m;
    uint8_t bytes[512], hash[STORE_HASH_LEN] = {1}, key[STORE_KEY_LEN] = {2};
    size_t n = trib__catalog_entry__pack(&e, bytes);
    cr_assert_eq(store_catalog_append(st, &e, hash, key, bytes, n, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    store_close(&st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

/* Appends records seq first.. with bodies {"s":SEQ,"pad":"xxx..."} of exactly len bytes each. */
static void put(uint64_t count, size_t len)
{
    store_buf_t *b = calloc(count, sizeof *b);
    char *txt = malloc(count * len);
    uint64_t last0 = 0, first, last;
    cr_assert_eq(store_records_last(st, "payments/ledger", &last0), 0);
    for (uint64_t i = 0; i < count; i++) {
        char *t = txt + i * len;
        int h = snprintf(t, len, "{\"s\":%llu,\"pad\":\"", (unsigned long long)(last0 + 1 + i));
        memset(t + h, 'x', len - (size_t)h - 2);
        memcpy(t + len - 2, "\"}", 2);
        b[i] = (store_buf_t){t, len};
    }
    cr_assert_eq(store_records_append(st, "payments/ledger", b, count, &first, &last, err, sizeof err), 0, "%s", err);
    free(b);
    free(txt);
}

/* The page holds n whole lines of len bytes + '\n', seqs first.. in order. */
static void check_lines(const store_page_t *pg, size_t n, size_t len, uint64_t first)
{
    cr_assert_eq(pg->n, n);
    cr_assert_eq(pg->len, n * (len + 1), "page of %zu bytes for %zu records of %zu", pg->len, n, len);
    for (size_t i = 0; i < n; i++) {
        const char *l = pg->buf + pg->head + i * (len + 1);
        char want[32];
        snprintf(want, sizeof want, "{\"s\":%llu,", (unsigned long long)(first + i));
        cr_assert(!strncmp(l, want, strlen(want)), "line %zu: %.20s", i, l);
        cr_assert_eq(l[len], '\n', "line %zu does not end at %zu bytes", i, len);
    }
    cr_assert_eq(pg->first, first);
    cr_assert_eq(pg->next, first + n);
}

TestSuite(pager, .init = setup, .fini = teardown);

Test(pager, pages_are_whole_ndjson_lines_within_the_record_and_byte_bounds)
{
    put(10, 99); /* 100 bytes a line */
    store_page_t pg = {0};
    /* Records bound: full, a record follows. */
    cr_assert_eq(store_page_read(st, "payments/ledger", 1, 3, 1 << 20, &pg), 3);
    check_lines(&pg, 3, 99, 1);
    cr_assert_eq(pg.full, 1);
    /* Exactly at the records bound and at the end of the log: not full, as at the byte bound below
     * (the owner of a routed read ends its read with a first batch of 4,096 records, not with an
     * empty batch after it) */
    cr_assert_eq(store_page_read(st, "payments/ledger", 8, 3, 1 << 20, &pg), 3);
    check_lines(&pg, 3, 99, 8);
    cr_assert_eq(pg.full, 0, "a page that ends the log at its records bound is called full");
    cr_assert_eq(store_page_read(st, "payments/ledger", 8, UINT64_MAX, 1 << 20, &pg), 3, "no records bound");
    check_lines(&pg, 3, 99, 8);
    cr_assert_eq(pg.full, 0);
    /* Byte bound: 350 bytes hold 3 lines; the 4th would pass it and opens the next page. */
    cr_assert_eq(store_page_read(st, "payments/ledger", 2, 100, 350, &pg), 3);
    check_lines(&pg, 3, 99, 2);
    cr_assert_eq(pg.full, 1);
    /* Exactly at the bound: the page is full with what fits. */
    cr_assert_eq(store_page_read(st, "payments/ledger", 5, 100, 300, &pg), 3);
    check_lines(&pg, 3, 99, 5);
    cr_assert_eq(pg.full, 1);
    /* The end of the log: fewer than asked, not full; past it: nothing, next stays at from. */
    cr_assert_eq(store_page_read(st, "payments/ledger", 8, 100, 1 << 20, &pg), 3);
    check_lines(&pg, 3, 99, 8);
    cr_assert_eq(pg.full, 0);
    /* Exactly at the bound and at the end of the log: not full, no record follows (the owner of a
     * routed read ends it with that page, not with an empty one after it) */
    cr_assert_eq(store_page_read(st, "payments/ledger", 8, 100, 300, &pg), 3);
    check_lines(&pg, 3, 99, 8);
    cr_assert_eq(pg.full, 0, "a page that ends the log at its byte bound is called full");
    cr_assert_eq(store_page_read(st, "payments/ledger", 11, 100, 1 << 20, &pg), 0);
    cr_assert_eq(pg.len, 0);
    cr_assert_eq(pg.next, 11);
    cr_assert_eq(store_page_read(st, "payments/ledger", 1, 0, 1 << 20, &pg), 0, "max_records 0 reads nothing");
    /* An unknown product has no records; a bad id is an error. */
    cr_assert_eq(store_page_read(st, "payments/nope", 1, 100, 1 << 20, &pg), 0);
    cr_assert_eq(store_page_read(st, "Payments/x", 1, 100, 1 << 20, &pg), -1);
    store_page_free(&pg);
    cr_assert_null(pg.buf);
    store_page_free(NULL);
}

Test(pager, a_record_larger_than_the_byte_bound_is_alone_in_its_page)
{
    put(2, 99);
    put(1, 5000);
    put(2, 99);
    store_page_t pg = {0};
    cr_assert_eq(store_page_read(st, "payments/ledger", 1, 100, 1000, &pg), 2);
    check_lines(&pg, 2, 99, 1);
    cr_assert_eq(pg.full, 1);
    cr_assert_eq(store_page_read(st, "payments/ledger", 3, 100, 1000, &pg), 1);
    check_lines(&pg, 1, 5000, 3);
    cr_assert_eq(store_page_read(st, "payments/ledger", 4, 100, 1000, &pg), 2);
    check_lines(&pg, 2, 99, 4);
    /* The buffer grew for the big record and is reused, not reallocated per page. */
    cr_assert_geq(pg.cap, 5001);
    store_page_free(&pg);
}

Test(pager, the_head_in_front_of_the_records_is_kept_free_and_the_bounds_count_records_only)
{
    put(10, 99);
    store_page_t pg = {.head = 64};
    /* The buffer grows from nothing with room for the head; the byte bound is the records' alone. */
    cr_assert_eq(store_page_read(st, "payments/ledger", 1, 100, 350, &pg), 3);
    check_lines(&pg, 3, 99, 1);
    cr_assert_eq(pg.full, 1);
    cr_assert_geq(pg.cap, 64 + 300);
    /* What the caller wrote in the head survives the next page (into the same buffer, grown). */
    memset(pg.buf, 'H', 64);
    cr_assert_eq(store_page_read(st, "payments/ledger", 4, 100, 1 << 20, &pg), 7);
    check_lines(&pg, 7, 99, 4);
    for (size_t i = 0; i < 64; i++)
        cr_assert_eq(pg.buf[i], 'H', "head byte %zu overwritten", i);
    /* A head that grows between pages moves the records, not the bounds. */
    pg.head = 4096;
    cr_assert_eq(store_page_read(st, "payments/ledger", 1, 2, 1 << 20, &pg), 2);
    check_lines(&pg, 2, 99, 1);
    cr_assert_geq(pg.cap, 4096 + 200);
    store_page_free(&pg);
    cr_assert_eq(pg.head, 0);
}
