/* tests/ledger.h - the routed-read suites' product: payments/ledger (id integer, pad string),
 * published on its owner and filled with records of a chosen size (test_routed, test_linkread).
 * Must not: be linked into the library, or assert (callers check the result). */
#ifndef TRIB_LEDGER_H
#define TRIB_LEDGER_H

#include <stddef.h>

#define LEDGER_ID "payments/ledger"

/* PUTs the ledger's manifest to the owner at owner_url. 0, or -1 with err (the status and body). */
int ledger_publish(const char *owner_url, char *err, size_t errlen);

/* Appends records {"id": first .. first+n-1, "pad": pad letters} in one request. 0, or -1 with err. */
int ledger_append(const char *owner_url, long first, long n, size_t pad, char *err, size_t errlen);

#endif
