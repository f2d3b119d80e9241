/* bench/catfill.c - a company-sized catalog for looking at what people see: DOMAINS x PER signed
 * catalog entries (one Ed25519 identity per domain, as bench/fed.c's catch-up fill) with realistic
 * manifests (JSON text through manifest_parse, so document_json, description, owners, tags,
 * schema, SLA and ports are as `trib publish` stores them), written straight into the store of
 * an agent's data dir (the agent stopped; it serves them as replicated entries once restarted).
 *
 * Usage: catfill DATA_DIR [DOMAINS [PER]]   (100 x 1000 by default; not in `make bench`)
 * Words are drawn skewed (a few common, most rare), so searches for common and rare words and
 * for a product's own name can be timed against it. Product names are unique per domain.
 * Must not: start processes or touch anything but DATA_DIR's store. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench/bench.h"
#include "bench/charter.h"
#include "gossip/entry.h"
#include "node/manifest.h"
#include "storage/store.h"

static const char *areas[] = {
    "billing", "growth", "listening", "ads", "search", "catalog", "identity", "fraud", "logistics",
    "support", "marketing", "finance", "hr", "podcasts", "artists", "labels", "devices", "messaging",
    "pricing", "partners", "security", "infra", "legal", "editorial", "recommendations"};
static const char *regions[] = {"", "-eu", "-us", "-apac"};
static const char *entities[] = {
    "orders", "customers", "sessions", "invoices", "refunds", "subscriptions", "plays", "tracks",
    "albums", "playlists", "devices", "campaigns", "impressions", "clicks", "conversions", "signups",
    "accounts", "tickets", "shipments", "returns", "payouts", "royalties", "contracts", "employees",
    "experiments", "exposures", "alerts", "incidents", "queries", "results", "events", "messages",
    "notifications", "coupons", "prices", "budgets", "forecasts", "ledger", "balances", "chargebacks",
    "logins", "tokens", "users", "artists", "labels", "releases", "episodes", "shows", "venues",
    "partners", "stores", "regions", "currencies", "taxes", "fees", "audits", "reports", "metrics",
    "segments", "cohorts"};
static const char *quals[] = {
    "daily", "hourly", "raw", "clean", "enriched", "snapshot", "latest", "history", "aggregated",
    "by-country", "by-device", "by-day", "weekly", "monthly", "deduplicated", "sampled", "scored",
    "labelled", "validated", "archived", "realtime", "backfill", "summary", "detail", "staging",
    "golden", "public", "internal", "export", "feed", "v2", "v3", "legacy", "curated", "joined",
    "flattened", "normalised", "pseudonymised", "anonymised", "rollup"};
static const char *words[] = {
    "customer", "data", "daily", "record", "event", "user", "payment", "order", "revenue", "report",
    "analysis", "model", "dashboard", "country", "market", "product", "team", "quality", "source",
    "pipeline", "stream", "batch", "latency", "volume", "trend", "churn", "retention", "engagement",
    "conversion", "funnel", "attribution", "forecast", "anomaly", "detection", "compliance", "audit",
    "privacy", "consent", "marketing", "campaign", "spend", "budget", "invoice", "tax", "currency",
    "exchange", "rate", "settlement", "reconciliation", "ledger", "balance", "refund", "dispute",
    "fraud", "risk", "score", "signal", "feature", "training", "inference", "label", "playlist",
    "track", "album", "artist", "royalty", "listener", "session", "device", "platform", "release",
    "podcast", "episode", "recommendation", "ranking", "search", "query", "click", "impression",
    "experiment", "variant", "exposure", "cohort", "segment", "region", "partner", "contract",
    "shipment", "warehouse", "inventory", "supplier", "employee", "payroll", "benefit", "ticket",
    "incident", "alert", "latency", "uptime", "capacity", "cost", "allocation", "forecasting",
    "seasonality", "holiday", "weekend", "timezone", "migration", "backfill", "deprecation",
    "lineage", "ownership", "freshness", "completeness", "accuracy", "deduplication", "sampling",
    "aggregation", "enrichment", "geolocation", "telemetry", "heartbeat", "crash", "firmware",
    "bluetooth", "subscription", "trial", "upgrade", "downgrade", "cancellation", "renewal",
    "discount", "coupon", "voucher", "loyalty", "referral", "onboarding", "activation", "retargeting",
    "lookalike", "bidding", "auction", "inventory", "placement", "creative", "viewability",
    "brand", "safety", "moderation", "toxicity", "spam", "abuse", "escalation", "sentiment",
    "survey", "feedback", "nps", "satisfaction", "zeitgeist", "quokka", "xylophone", "marmalade",
    "obsidian", "kerfuffle", "juniper", "tamarind", "vermilion", "halcyon", "sassafras", "bergamot"};
static const char *tags[] = {
    "finance", "pii", "gdpr", "core", "kpi", "ml", "experimental", "realtime", "batch", "legacy",
    "certified", "tier-1", "tier-2", "tier-3", "marketing", "product", "ops", "security", "revenue",
    "growth", "engagement", "content", "ads", "sox", "hipaa", "internal-only", "partner-facing",
    "deprecated-soon", "beta", "golden", "raw", "derived", "aggregate", "reference", "dimension",
    "fact", "event", "snapshot", "cdc", "streaming"};
static const char *people[] = {
    "lena.koch", "amir.haddad", "sofia.rossi", "kenji.sato", "maria.garcia", "olu.adeyemi",
    "jonas.berg", "priya.nair", "chen.wei", "lucas.martin", "ana.silva", "tom.becker", "eva.novak",
    "ines.dupont", "raj.patel", "hana.kim", "omar.farouk", "lea.schmidt", "noah.jensen", "mia.larsen"};
static const char *fields[] = {
    "id", "user_id", "customer_id", "order_id", "created_at", "updated_at", "amount", "currency",
    "country", "device", "platform", "status", "score", "label", "session_id", "track_id", "artist_id",
    "campaign_id", "impressions", "clicks", "revenue", "cost", "region", "email_hash", "ip_prefix",
    "event_time", "event_type", "source", "version", "attributes", "duration_ms", "is_active",
    "tier", "plan", "partner_id", "tax_rate", "fee", "balance", "ledger_account", "quantity"};
static const char *ltypes[] = {"string", "string", "string", "integer", "number", "timestamp", "boolean",
                               "date", "object", "array"};
static const char *classes[] = {"public", "internal", "internal", "internal", "confidential", "restricted"};
static const char *statuses[] = {"active", "active", "active", "active", "draft", "deprecated"};

#define N_(a) (sizeof(a) / sizeof(a[0]))

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}
/* Skewed toward low indexes, as words are: the first few common, the last ones rare. */
static uint32_t skew(uint32_t n)
{
    uint32_t a = rnd(n), b = rnd(n), c = rnd(n);
    uint32_t m = a < b ? a : b;
    return m < c ? m : c;
}

static json_t *sentence(int nwords)
{
    char buf[1024];
    size_t n = 0;
    for (int k = 0; k < nwords && n < sizeof buf - 40; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", k ? " " : "", words[skew(N_(words))]);
    snprintf(buf + n, sizeof buf - n, ".");
    buf[0] = (char)(buf[0] - 'a' + 'A');
    return json_string(buf);
}

/* The manifest text of product k of domain dom (unique name per (d, k)). */
static char *manifest_text(const char *dom, int d, int k)
{
    int ne = N_(entities), nq = N_(quals);
    int combo = (k * 7 + d * 13) % (ne * nq);
    char name[96];
    snprintf(name, sizeof name, "%s-%s%s", entities[combo % ne], quals[combo / ne],
             k >= ne * nq ? "-x" : "");
    if (k >= ne * nq)
        snprintf(name + strlen(name), sizeof name - strlen(name), "%d", k);
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(name));
    json_object_set_new(j, "domain", json_string(dom));
    char ver[32];
    snprintf(ver, sizeof ver, "%u.%u.%u", 1 + rnd(3), rnd(10), rnd(20));
    json_object_set_new(j, "version", json_string(ver));
    json_object_set_new(j, "status", json_string(statuses[rnd(N_(statuses))]));
    char title[160];
    snprintf(title, sizeof title, "%s %s of %s", quals[combo / ne], entities[combo % ne], dom);
    title[0] = (char)(title[0] - 'a' + 'A');
    json_object_set_new(j, "title", json_string(title));
    json_t *desc = json_object();
    json_object_set_new(desc, "purpose", sentence(12 + (int)rnd(20)));
    json_object_set_new(desc, "usage", sentence(8 + (int)rnd(12)));
    json_object_set_new(desc, "limitations", sentence(5 + (int)rnd(10)));
    json_object_set_new(j, "description", desc);
    json_t *own = json_object();
    char mail[96];
    snprintf(mail, sizeof mail, "%s@example.com", people[skew(N_(people))]);
    json_object_set_new(own, "business", json_string(mail));
    snprintf(mail, sizeof mail, "%s-data@example.com", dom);
    json_object_set_new(own, "technical", json_string(mail));
    json_object_set_new(j, "owners", own);
    json_t *tg = json_array();
    int nt = 1 + (int)rnd(4);
    for (int t = 0; t < nt; t++) {
        const char *tag = tags[skew(N_(tags))];
        int dup = 0;
        for (size_t u = 0; u < json_array_size(tg); u++)
            dup |= !strcmp(json_string_value(json_array_get(tg, u)), tag);
        if (!dup)
            json_array_append_new(tg, json_string(tag));
    }
    json_object_set_new(j, "tags", tg);
    json_object_set_new(j, "classification", json_string(classes[rnd(N_(classes))]));
    json_t *sc = json_array();
    int nf = 4 + (int)rnd(12), first = (int)rnd(N_(fields));
    for (int f = 0; f < nf; f++) {
        json_t *p = json_object();
        json_object_set_new(p, "name", json_string(fields[(first + f) % N_(fields)]));
        json_object_set_new(p, "logicalType", json_string(f ? ltypes[rnd(N_(ltypes))] : "string"));
        if (!f) {
            json_object_set_new(p, "required", json_true());
            json_object_set_new(p, "primaryKey", json_true());
        }
        if (rnd(3) == 0)
            json_object_set_new(p, "description", sentence(4 + (int)rnd(6)));
        json_array_append_new(sc, p);
    }
    json_object_set_new(j, "schema", sc);
    json_t *sla = json_object();
    json_object_set_new(sla, "freshness", json_string(rnd(2) ? "1h" : "24h"));
    json_object_set_new(j, "sla", sla);
    json_t *ports = json_array(), *port = json_object();
    json_object_set_new(port, "name", json_string(name));
    json_object_set_new(port, "type", json_string(rnd(3) ? "batch" : "stream"));
    json_array_append_new(ports, port);
    json_object_set_new(j, "outputPorts", ports);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

int main(int argc, char **argv)
{
    if (argc < 2 || sodium_init() < 0)
        bench_die("usage: catfill DATA_DIR [DOMAINS [PER]]");
    int domains = argc > 2 ? atoi(argv[2]) : 100, per = argc > 3 ? atoi(argv[3]) : 1000;
    if (domains < 1 || domains > (int)(N_(areas) * N_(regions)) || per < 1 || per > 100000)
        bench_die("catfill: DOMAINS 1..%zu, PER 1..100000", N_(areas) * N_(regions));
    char err[256];
    store_opts_t so = {.nosync = 1};
    store_t *st = store_open(argv[1], &so, err, sizeof err);
    if (!st)
        bench_die("store_open %s: %s", argv[1], err);
    store_append_t *items = calloc((size_t)per, sizeof *items);
    entry_t *v = calloc((size_t)per, sizeof *v);
    uint8_t **bytes = calloc((size_t)per, sizeof *bytes);
    if (!items || !v || !bytes)
        bench_die("out of memory");
    uint64_t t0 = bench_now_ns();
    size_t total_bytes = 0;
    for (int d = 0; d < domains; d++) {
        identity_t id;
        memset(&id, 0, sizeof id);
        crypto_sign_keypair(id.pk, id.sk);
        char dom[48];
        snprintf(dom, sizeof dom, "%s%s", areas[d % N_(areas)], regions[d / N_(areas)]);
        uint8_t prev[32];
        for (int k = 0; k < per; k++) {
            char *text = manifest_text(dom, d, k);
            Trib__Manifest *m = manifest_parse(text, strlen(text), dom, err, sizeof err);
            if (!m)
                bench_die("catfill: %s: %s", text, err);
            free(text);
            Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
            e.domain = dom;
            e.seq = (uint64_t)k + 1;
            if (k) {
                e.prev_hash.data = prev;
                e.prev_hash.len = 32;
            }
            e.time_ms = bench_wall_ms() - (int64_t)(per - k) * 60000;
            e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
            e.manifest = m;
            size_t len;
            if (entry_sign(&id, &e, &bytes[k], &len) != 0 || entry_verify(bytes[k], len, &v[k], err, sizeof err) != 0)
                bench_die("catfill: cannot sign %s seq %d: %s", dom, k + 1, err);
            manifest_free(&m);
            total_bytes += len;
            memcpy(prev, v[k].hash, 32);
            items[k] = (store_append_t){.entry = v[k].entry, .hash = v[k].hash, .signer = id.pk,
                                        .signed_bytes = bytes[k], .len = len};
        }
        if (store_catalog_append_many(st, items, (size_t)per, NULL, 0, err, sizeof err) < 0)
            bench_die("catfill: %s", err);
        for (int k = 0; k < per; k++) {
            if (items[k].rc != 0)
                bench_die("catfill: %s seq %d refused (%d)", dom, k + 1, items[k].rc);
            entry_free(&v[k]);
            free(bytes[k]);
        }
        if (isatty(2))
            fprintf(stderr, "\rcatfill: %d/%d domains", d + 1, domains);
    }
    fprintf(stderr, "%scatfill: %ld entries (%.1f MB signed) in %.1f s\n", isatty(2) ? "\n" : "", (long)domains * per,
            (double)total_bytes / 1e6, (double)(bench_now_ns() - t0) / 1e9);
    free(items);
    free(v);
    free(bytes);
    store_close(&st);
    return 0;
}
