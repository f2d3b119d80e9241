/* tests/ledger.c - see ledger.h. */
#include "tests/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness.h"

/* One request; 0 when it answered want, else -1 with err. */
static int call(const char *method, const char *url, const char *type, const char *body, size_t len, long want,
                const char *what, char *err, size_t errlen)
{
    h_resp_t r;
    if (h_http(method, url, type, body, len, &r) != 0) {
        snprintf(err, errlen, "%s: no answer from %s", what, url);
        return -1;
    }
    int rc = r.status == want ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s: %ld %s", what, r.status, r.body ? r.body : "");
    h_resp_free(&r);
    return rc;
}

int ledger_publish(const char *owner_url, char *err, size_t errlen)
{
    const char *m = "{\"name\":\"ledger\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
                    "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                    "\"schema\":[{\"name\":\"id\",\"logicalType\":\"integer\",\"required\":true},"
                    "{\"name\":\"pad\",\"logicalType\":\"string\"}]}";
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/" LEDGER_ID, owner_url);
    return call("PUT", url, "application/json", m, strlen(m), 201, "publish", err, errlen);
}

int ledger_append(const char *owner_url, long first, long n, size_t pad, char *err, size_t errlen)
{
    size_t cap = (size_t)n * (pad + 48) + 1;
    char *body = malloc(cap), *padding = malloc(pad + 1);
    if (!body || !padding) {
        free(body);
        free(padding);
        snprintf(err, errlen, "append: out of memory");
        return -1;
    }
    for (size_t i = 0; i < pad; i++)
        padding[i] = (char)('a' + i % 26);
    padding[pad] = '\0';
    size_t len = 0;
    for (long i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len, "{\"id\":%ld,\"pad\":\"%s\"}\n", first + i, padding);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/" LEDGER_ID "/records", owner_url);
    int rc = call("POST", url, "application/x-ndjson", body, len, 201, "append", err, errlen);
    free(body);
    free(padding);
    return rc;
}
