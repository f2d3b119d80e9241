/* tests/test_web.c - the web UI's static files (node/web.c): the If-None-Match parser against a
 * reference on bounded random input, and a real agent serving /, /app.js and friends with their
 * ETag, 304, CSP and nosniff headers, refusing unknown files, answering hostile If-None-Match
 * values without harm and still serving afterwards.
 * Must not: depend on the UI's content (only on the files being there) or sleep to synchronise. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/web.h"
#include "tests/harness.h"

TestSuite(web, .fini = h_cleanup_all, .timeout = 120);

/* ------------------------------------------------------------------ If-None-Match */

/* The reference: split at commas, trim spaces and tabs, drop one leading W/, compare whole. */
static int ref_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    char *copy = strdup(inm), *save = NULL;
    int hit = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        if (!strncmp(tok, "W/", 2))
            tok += 2;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            n--;
        hit = (n == 1 && tok[0] == '*') || (n == strlen(etag) && !memcmp(tok, etag, n));
    }
    free(copy);
    return hit;
}

Test(web, etag_cases)
{
    const char *e = "\"0123456789abcdef0123456789abcdef\"";
    struct { const char *inm; int want; } cases[] = {
        {NULL, 0}, {"", 0}, {"*", 1}, {" * ", 1}, {"**", 0}, {e, 1}, {"W/\"0123456789abcdef0123456789abcdef\"", 1},
        {"\"x\", \"0123456789abcdef0123456789abcdef\"", 1}, {"\"0123456789abcdef0123456789abcdef", 0},
        {"0123456789abcdef0123456789abcdef", 0}, {",,,", 0}, {"W/", 0}, {"W/*", 1}, {"\"x\",*", 1},
        {"\"0123456789abcdef0123456789abcdef\"x", 0}, {"\t\"0123456789abcdef0123456789abcdef\"\t,", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(web_etag_matches(cases[i].inm, e), cases[i].want, "case %zu: '%s'", i,
                     cases[i].inm ? cases[i].inm : "(null)");
}

/* 20,000 random header values from an alphabet that builds near-misses (quotes, commas, W/, the
 * tag's own characters, spaces, tabs, '*', high bytes): the parser agrees with the reference. */
Test(web, etag_random_input)
{
    const char *e = "\"ab12\"";
    static const char alpha[] = "\"ab12W/*, \t,\"\x80\xff" "ab12\"";
    unsigned seed = 12345;
    char buf[301];
    int matched = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(rand_r(&seed) % 300);
        for (size_t k = 0; k < len; k++)
            buf[k] = alpha[rand_r(&seed) % (sizeof alpha - 1)];
        buf[len] = '\0';
        if (i % 7 == 0 && len < 290) /* plant the tag sometimes */
            memcpy(buf + rand_r(&seed) % (len + 1), e, strlen(e) + 1);
        int got = web_etag_matches(buf, e), want = ref_matches(buf, e);
        cr_assert_eq(got, want, "input %d '%s': got %d, want %d", i, buf, got, want);
        matched += got;
    }
    cr_expect_gt(matched, 100, "the random input never matched: it tests too little");
}

/* ------------------------------------------------------------------ a real agent */

typedef struct {
    char headers[4096];
    size_t hlen;
    size_t body;
} got_t;

static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
    got_t *g = ctx;
    size_t len = sz * n;
    if (g->hlen + len < sizeof g->headers) {
        memcpy(g->headers + g->hlen, p, len);
        g->hlen += len;
        g->headers[g->hlen] = '\0';
    }
    return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
    (void)p;
    ((got_t *)ctx)->body += sz * n;
    return sz * n;
}

/* GET url with an If-None-Match value (NULL: none); the status, headers and body length in g. */
static long get(const char *url, const char *inm, got_t *g)
{
    memset(g, 0, sizeof *g);
    CURL *h = curl_easy_init();
    struct curl_slist *l = NULL;
    char line[600];
    if (inm) {
        snprintf(line, sizeof line, "If-None-Match: %s", inm);
        l = curl_slist_append(l, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(l);
    curl_easy_cleanup(h);
    return status;
}

/* The value of header name (lowercase) in g, copied into out; "" when absent. */
static const char *header(const got_t *g, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = g->headers; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            v += strspn(v, " ");
            size_t n = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)n, v);
            break;
        }
    }
    return out;
}

Test(web, agent_serves_the_ui)
{
    h_node_t A;
    cr_assert_eq(h_node_start(&A, "payments", NULL), 0, "the agent did not start");
    const char *paths[] = {"/", "/index.html", "/app.js", "/app.css", "/favicon.png"};
    const char *types[] = {"text/html", "text/html", "text/javascript", "text/css", "image/png"};
    char url[128], v[512], etag[80];
    got_t g;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        snprintf(url, sizeof url, "%s%s", A.url, paths[i]);
        cr_assert_eq(get(url, NULL, &g), 200, "%s", paths[i]);
        cr_expect_gt(g.body, 0, "%s has a body", paths[i]);
        cr_expect(!strncmp(header(&g, "content-type", v, sizeof v), types[i], strlen(types[i])), "%s: %s", paths[i], v);
        header(&g, "content-security-policy", v, sizeof v);
        cr_expect(strstr(v, "default-src 'self'") && strstr(v, "frame-ancestors 'none'") && !strstr(v, "unsafe-"),
                  "%s: CSP %s", paths[i], v);
        cr_expect_str_eq(header(&g, "x-content-type-options", v, sizeof v), "nosniff");
        cr_expect_str_eq(header(&g, "cache-control", v, sizeof v), "no-cache");
        header(&g, "etag", etag, sizeof etag);
        cr_assert_eq(strlen(etag), 34, "%s: ETag %s", paths[i], etag);
        cr_expect_eq(get(url, etag, &g), 304, "%s with its own ETag", paths[i]);
        cr_expect_eq(g.body, 0);
        cr_expect_str_eq(header(&g, "etag", v, sizeof v), etag);
        cr_expect_eq(get(url, "\"not-it\"", &g), 200, "%s with another ETag", paths[i]);
    }
    snprintf(url, sizeof url, "%s/nope.js", A.url);
    cr_expect_eq(get(url, NULL, &g), 404);
    /* a file's path with a trailing slash or more path is an unknown path as /nope.js is: the same
     * 404 (before, /app.js/ had a 404 of its own, "no such file of the web UI") */
    const char *odd[] = {"/app.js/", "/index.html/", "/favicon.png/", "/app.css/x", "/nope.js"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        snprintf(url, sizeof url, "%s%s", A.url, odd[i]);
        h_resp_t r;
        cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
        char want[128];
        snprintf(want, sizeof want, "{\"error\":\"not_found\",\"detail\":\"no route GET %s;", odd[i]);
        cr_expect_eq(r.status, 404, "%s: %ld", odd[i], r.status);
        cr_expect(r.body && !strncmp(r.body, want, strlen(want)), "%s: %s", odd[i], r.body ? r.body : "");
        h_resp_free(&r);
    }
    snprintf(url, sizeof url, "%s/../etc/passwd", A.url);
    cr_expect_neq(get(url, NULL, &g), 200);

    /* hostile If-None-Match values: 200 or 304 as the reference says, and the node goes on serving */
    snprintf(url, sizeof url, "%s/app.js", A.url);
    get(url, NULL, &g);
    header(&g, "etag", etag, sizeof etag);
    unsigned seed = 7;
    static const char alpha[] = "\"W/*, \t0123456789abcdef";
    char inm[400];
    for (int i = 0; i < 300; i++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % 390);
        for (size_t k = 0; k < len; k++)
            inm[k] = alpha[rand_r(&seed) % (sizeof alpha - 1)];
        inm[len] = '\0';
        if (i % 5 == 0 && len + strlen(etag) + 2 < sizeof inm)
            snprintf(inm + len, sizeof inm - len, ",%s", etag);
        while (len && (inm[0] == ' ' || inm[0] == '\t')) /* curl drops a header value's leading blanks */
            memmove(inm, inm + 1, len--);
        long st = get(url, inm, &g);
        cr_assert_eq(st, ref_matches(inm, etag) ? 304 : 200, "If-None-Match '%s': %ld", inm, st);
    }
    snprintf(url, sizeof url, "%s/v1/status", A.url);
    cr_expect_eq(get(url, NULL, &g), 200, "the node still serves");
    snprintf(url, sizeof url, "%s/metrics", A.url);
    h_resp_t r;
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, &r), 0);
    cr_expect(strstr(r.body, "route=\"web\""), "web answers are counted under route \"web\"");
    h_resp_free(&r);
}
