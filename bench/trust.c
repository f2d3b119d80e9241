/* bench/trust.c - certificate verification cost at bootstrap (issue 10, third benchmark): a node
 * receives 1,000 domains' certificates and 10,000 manifests, beside this machine's Ed25519
 * verify limit on one core.
 *
 * Usage: trust [DOMAINS [MANIFESTS]]     (defaults 1000 10000)
 *
 * Owns: building a charter (3 roots, threshold 2), one certificate per domain and the signed
 * catalog entries in memory (untimed), then timing single-threaded with this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID: the machine is shared, and wall time mostly measures the others):
 *  - limit: crypto_sign_verify_detached over the same entry bodies (best of 3 passes);
 *  - bootstrap: trust_offer_cert of every certificate (2 root signatures each), then per entry
 *    entry_verify (its signature, decode, shape) and trust_entry_ok (certificate lookup);
 *    best of 3 fresh stores.
 * ratio = (signatures verified at bootstrap / bootstrap time) / limit; target >= 0.8.
 *  - through the federation log: the same certificates as a node receives them from a peer
 *    (FedSync OBJECTS frames of at most 256 KiB into fedlog_handle: decode, order, trust_offer_cert,
 *    one LMDB commit per frame into a temp dir), best of 3 fresh logs; ratio as above.
 * Must not: touch the network, or the disk beyond its temp dir (removed). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/entry.h"
#include "gossip/fedlog.h"
#include "gossip/trust.h"

#define T0 1800000000000LL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void no_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    (void)ctx, (void)addr, (void)type, (void)body, (void)len;
}

static size_t no_peers(void *ctx, const char **addrs, size_t max)
{
    (void)ctx, (void)addrs, (void)max;
    return 0;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench trust: %s: %s\n", what, err);
    exit(1);
}

int main(int argc, char **argv)
{
    size_t ndom = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    size_t nent = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    char err[512];
    if (ndom == 0 || nent < ndom || sodium_init() < 0)
        die("usage", "trust [DOMAINS [MANIFESTS]], MANIFESTS >= DOMAINS >= 1");

    identity_t roots[3];
    charter_t ch;
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    const identity_t *rp[3];
    for (int i = 0; i < 3; i++) {
        crypto_sign_keypair(roots[i].pk, roots[i].sk);
        memcpy(ch.keys[i].key, roots[i].pk, ID_PK_LEN);
        ch.keys[i].role = CHARTER_ROLE_ROOT;
        rp[i] = &roots[i];
    }
    ch.nkeys = 3;
    ch.threshold = 2;
    ch.issued_ms = T0;
    if (charter_sign(NULL, &ch, rp, 2, err, sizeof err) != 0)
        die("charter", err);

    identity_t *nodes = calloc(ndom, sizeof *nodes);
    cert_t *certs = calloc(ndom, sizeof *certs);
    uint8_t **ent = calloc(nent, sizeof *ent);
    size_t *entlen = calloc(nent, sizeof *entlen);
    if (!nodes || !certs || !ent || !entlen)
        die("setup", "out of memory");
    char dom[32], title[96];
    for (size_t d = 0; d < ndom; d++) {
        crypto_sign_keypair(nodes[d].pk, nodes[d].sk);
        snprintf(dom, sizeof dom, "domain-%zu", d);
        if (cert_issue(&ch, dom, nodes[d].pk, T0, T0 + 90 * 86400000LL, 0, rp, 2, &certs[d], err,
                       sizeof err) != 0)
            die("certificate", err);
    }
    uint8_t prev[32];
    for (size_t i = 0; i < nent; i++) {
        size_t d = i % ndom, seq = i / ndom + 1;
        Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
        Trib__Manifest m = TRIB__MANIFEST__INIT;
        snprintf(dom, sizeof dom, "domain-%zu", d);
        snprintf(title, sizeof title, "Product %zu of %s, a realistic title", seq, dom);
        e.domain = dom;
        e.seq = seq;
        e.time_ms = T0 + (int64_t)seq * 1000;
        if (seq > 1) {     /* chain to a hash: shape only, the bench does not check the chain */
            randombytes_buf(prev, sizeof prev);
            e.prev_hash.data = prev;
            e.prev_hash.len = 32;
        }
        m.domain = dom;
        m.name = "product";
        m.version = "1.0.0";
        m.status = "active";
        m.title = title;
        m.purpose = "Settled card transactions of the previous day, one record per transaction.";
        e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
        e.manifest = &m;
        if (entry_sign(&nodes[d], &e, &ent[i], &entlen[i]) != 0)
            die("entry", "sign failed");
    }

    /* The machine's limit: bare verifies of the same entries' bodies. */
    double limit = 0;
    for (int pass = 0; pass < 3; pass++) {
        double t = now_s();
        for (size_t i = 0; i < nent; i++) {
            Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, entlen[i], ent[i]);
            if (!se || crypto_sign_verify_detached(se->signature.data, se->body.data, se->body.len,
                                                   se->signer.data) != 0)
                die("limit", "verify failed");
            trib__signed_entry__free_unpacked(se, NULL);
        }
        double rate = nent / (now_s() - t);
        if (rate > limit)
            limit = rate;
    }

    double best = 1e9;
    for (int pass = 0; pass < 3; pass++) {
        trust_t *store = trust_new(&ch);
        if (!store)
            die("store", "out of memory");
        double t = now_s();
        for (size_t d = 0; d < ndom; d++)
            if (trust_offer_cert(store, certs[d].bytes, certs[d].len, NULL, err, sizeof err) != TRUST_OK)
                die("offer", err);
        for (size_t i = 0; i < nent; i++) {
            entry_t e;
            if (entry_verify(ent[i], entlen[i], &e, err, sizeof err) != 0)
                die("entry_verify", err);
            if (trust_entry_ok(store, e.entry->domain, e.signed_entry->signer.data, e.entry->time_ms,
                               err, sizeof err) != TRUST_OK)
                die("trust_entry_ok", err);
            entry_free(&e);
        }
        double el = now_s() - t;
        if (el < best)
            best = el;
        trust_destroy(&store);
    }
    size_t sigs = 2 * ndom + nent;
    double rate = sigs / best;
    printf("trust bootstrap: %zu certificates + %zu manifests = %zu signatures in %.3f s: "
           "%.0f verifies/s; Ed25519 limit %.0f verifies/s/core; ratio %.2f (target >= 0.8)\n",
           ndom, nent, sigs, best, rate, limit, rate / limit);

    /* The certificates alone, straight into the trust store: what the federation log adds shows
     * as the difference to the next figure. */
    double cbest = 1e9;
    for (int pass = 0; pass < 3; pass++) {
        trust_t *store = trust_new(&ch);
        if (!store)
            die("store", "out of memory");
        double t = now_s();
        for (size_t d = 0; d < ndom; d++)
            if (trust_offer_cert(store, certs[d].bytes, certs[d].len, NULL, err, sizeof err) != TRUST_OK)
                die("offer", err);
        double el = now_s() - t;
        if (el < cbest)
            cbest = el;
        trust_destroy(&store);
    }
    printf("trust bootstrap, certificates alone: %zu certificates (%zu signatures) in %.3f s thread CPU: "
           "%.0f verifies/s; ratio %.2f to the Ed25519 limit\n", ndom, 2 * ndom, cbest, 2.0 * ndom / cbest,
           2.0 * ndom / cbest / limit);

    /* The certificates through the federation log, in received frames. */
    double fbest = 1e9;
    for (int pass = 0; pass < 3; pass++) {
        char dir[] = "/tmp/tribbench-fedlog-XXXXXX", cmd[64];
        if (!mkdtemp(dir))
            die("mkdtemp", "failed");
        store_t *st = store_open(dir, NULL, err, sizeof err);
        trust_t *store = st ? trust_new(&ch) : NULL;
        fedlog_t *f = store ? fedlog_new(st, store, err, sizeof err) : NULL;
        if (!f)
            die("fedlog", err);
        fedlog_io_t io = {.send = no_send, .peers = no_peers};
        fedlog_attach(f, &io);
        ProtobufCBinaryData *items = calloc(ndom, sizeof *items);
        double t = now_s();
        for (size_t d = 0; d < ndom;) {
            size_t k = 0, bytes = 0;
            while (d < ndom && (k == 0 || bytes + certs[d].len < (256u << 10)) && k < 1024) {
                items[k++] = (ProtobufCBinaryData){certs[d].len, certs[d].bytes};
                bytes += certs[d].len + 8;
                d++;
            }
            Trib__FedSync m = TRIB__FED_SYNC__INIT;
            m.step = 5;
            m.n_objects = k;
            m.objects = items;
            size_t len = trib__fed_sync__get_packed_size(&m);
            uint8_t *buf = malloc(len);
            trib__fed_sync__pack(&m, buf);
            fedlog_handle(f, "127.0.0.1:1", TRIB__MSG_TYPE__MSG_FED_SYNC, buf, len);
            free(buf);
        }
        double el = now_s() - t;
        if (trust_cert_count(store) != ndom)
            die("fedlog", "not every certificate was held");
        if (el < fbest)
            fbest = el;
        free(items);
        fedlog_destroy(&f);
        trust_destroy(&store);
        store_close(&st);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            die("cleanup", dir);
    }
    double frate = 2.0 * ndom / fbest;
    printf("trust bootstrap via the federation log: %zu certificates (%zu signatures) in %.3f s thread CPU: "
           "%.0f verifies/s; ratio %.2f to the Ed25519 limit\n", ndom, 2 * ndom, fbest, frate, frate / limit);

    for (size_t d = 0; d < ndom; d++)
        cert_free(&certs[d]);
    for (size_t i = 0; i < nent; i++)
        free(ent[i]);
    free(nodes), free(certs), free(ent), free(entlen);
    charter_free(&ch);
    return 0;
}
