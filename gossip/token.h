/* gossip/token.h - access tokens (DESIGN.md §13): "trib1." + base64url of a chain of
 * Ed25519-signed blocks. Block 0 is signed by a domain node's key and says who (subject), for
 * which domain, what (kind: read < write < admin), on which products (a glob) and until when;
 * every later block only narrows and is signed by a fresh key that the block before committed
 * to, whose secret travels as the token's proof: anyone holding a token can narrow it offline,
 * nobody can widen it or remove a block.
 *
 * Owns: issuing, attenuating, decoding and verifying tokens (bounded, strict), the product glob
 * and its conservative subset rule, and the per-request decision of DESIGN §13's "what needs
 * what" that depends only on the token.
 * Also the token file (DATA/admin.token, --token-file): mode 0600, never overwritten.
 * Must not: decide whose key a domain is (the caller's token_key_fn: the catalog's bound key in
 * an open federation, a certified key in a chartered one), keep revocations or grants, touch
 * LMDB or the network, print, or log a token (only its id). Lives in gossip/ because the owner
 * of a product checks the token bytes a relay forwards with a routed read (gossip/reads.c). */
#ifndef TRIB_TOKEN_H
#define TRIB_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/identity.h"

#define TOKEN_PREFIX      "trib1."
#define TOKEN_TAG         "trib/token/v1"   /* signed with its NUL before each block body */
#define TOKEN_MAX_TEXT    4096              /* longer text is refused: too_large */
#define TOKEN_MAX_BLOCKS  8                 /* more blocks: too_large (so at most 7 attenuations) */
#define TOKEN_SKEW_MS     60000             /* clock skew allowed on issued-at and expiry */
#define TOKEN_GLOB_MAX    129               /* "SEG/SEG", each segment 1..64 of [a-z0-9-*] */
#define TOKEN_SUBJECT_MAX 128               /* "local@domain" */
#define TOKEN_SIG_LEN     64
#define TOKEN_ID_HEX      33                /* 32 hex chars + NUL */
#define TOKEN_TTL_MAX_MS  (366LL * 86400000LL)

typedef enum { TOKEN_KIND_READ = 1, TOKEN_KIND_WRITE = 2, TOKEN_KIND_ADMIN = 3 } token_kind_t;

/* Why a token was refused; token_reason_name gives the metric label. */
typedef enum {
    TOKEN_OK = 0,
    TOKEN_MALFORMED,       /* prefix, base64, protobuf, a field's size or syntax, unknown fields */
    TOKEN_TOO_LARGE,       /* over TOKEN_MAX_TEXT or TOKEN_MAX_BLOCKS */
    TOKEN_FORGED,          /* block 0 is not signed by the issuer key it names (any change to it) */
    TOKEN_TAMPERED,        /* the chain after block 0 is broken: a block's signature, its link to
                              the previous block, or the proof (a block removed or reordered) */
    TOKEN_WIDENED,         /* a later block widens expiry, kind or product scope */
    TOKEN_UNKNOWN_ISSUER,  /* the issuer key is not the domain's (token_key_fn said no) */
    TOKEN_NOT_YET_VALID,   /* issued more than TOKEN_SKEW_MS in the future */
    TOKEN_EXPIRED,         /* expired more than TOKEN_SKEW_MS ago */
    TOKEN_REASON_COUNT
} token_reason_t;

/* What a verified token says: the effective claims of the whole chain. */
typedef struct {
    char domain[64];                         /* issuer domain */
    uint8_t issuer_key[ID_PK_LEN];
    char subject[TOKEN_SUBJECT_MAX + 1];
    token_kind_t kind;                       /* the narrowest of the chain */
    char scope[TOKEN_GLOB_MAX + 1];          /* the narrowest glob: it is within every earlier one */
    int64_t issued_ms;
    int64_t expires_ms;                      /* the earliest of the chain */
    size_t nblocks;
    uint8_t revocation_ids[TOKEN_MAX_BLOCKS][TOKEN_SIG_LEN];   /* block i's signature */
    char id[TOKEN_ID_HEX];                   /* for logs, audit, metrics: never the token itself */
} token_claims_t;

/* 1 when `key` may issue tokens for `domain` at now_ms; 0 otherwise. The node passes the
 * catalog's bound key (open federation) or a certificate check (chartered). */
typedef int (*token_key_fn)(void *ctx, const char *domain, const uint8_t key[ID_PK_LEN], int64_t now_ms);

const char *token_reason_name(token_reason_t r);    /* "ok", "malformed", ... */
const char *token_kind_name(token_kind_t k);        /* "read", "write", "admin", or "?" */
int token_kind_parse(const char *s, token_kind_t *k);   /* 0 or -1 */

/* ---------------------------------------------------------------- making tokens */

typedef struct {
    const char *subject;       /* "alice@growth" */
    token_kind_t kind;
    const char *product;       /* glob; NULL = every product: "*" + "/" + "*" */
    int64_t issued_ms;
    int64_t expires_ms;        /* > issued_ms, at most TOKEN_TTL_MAX_MS later */
} token_spec_t;

/* A new token for `domain` signed by the node key `issuer`: *out is the malloc'd text
 * ("trib1.…"). 0, or -1 with err naming the bad field. */
int token_issue(const identity_t *issuer, const char *domain, const token_spec_t *spec, char **out,
                char *err, size_t errlen);

/* What an attenuation narrows: 0 / NULL leaves a field as it is. */
typedef struct {
    token_kind_t kind;
    const char *product;
    int64_t expires_ms;
} token_narrow_t;

/* Adds a block to `token` (text) narrowing it as n says, offline: the token's chain is checked
 * first (token_inspect at now_ms), and a request that would widen anything is refused here with
 * a message naming the field. *out is the malloc'd new token. 0 or -1 with err. */
int token_attenuate(const char *token, const token_narrow_t *n, int64_t now_ms, char **out,
                    char *err, size_t errlen);

/* ---------------------------------------------------------------- checking tokens */

/* Full verification of the text form (len bytes, NUL not needed): size limits, decoding, block 0
 * signed by the issuer key it names, the chain (each block signed by the key the previous one
 * committed, linked to its signature, the proof matching the hash the last block committed),
 * narrowing, the issuer key for the domain (lookup), then time with TOKEN_SKEW_MS. Fills *claims on OK.
 * err (may be NULL) says what and where. Costs one Ed25519 verify per block plus one hash:
 * a node should cache OK results by token hash until claims->expires_ms. */
token_reason_t token_verify(const char *token, size_t len, int64_t now_ms, token_key_fn lookup,
                            void *ctx, token_claims_t *claims, char *err, size_t errlen);

/* The same without the issuer check, for `trib token show` and attenuation offline: NEVER the
 * ground for an access decision. On TOKEN_EXPIRED and TOKEN_NOT_YET_VALID claims are filled too
 * (so they can be shown); on other refusals claims are zeroed. */
token_reason_t token_inspect(const char *token, size_t len, int64_t now_ms, token_claims_t *claims,
                             char *err, size_t errlen);

/* ---------------------------------------------------------------- product globs */

/* A glob is "SEG/SEG", each segment 1..64 characters of [a-z0-9-*]; '*' matches any run
 * (possibly empty) of characters within one segment ('/' never). */
int token_glob_valid(const char *glob);
/* 1 when product id "domain/name" matches glob. */
int token_glob_match(const char *glob, const char *product_id);
/* 1 when every product id `narrow` matches is matched by `wide`, decided conservatively: each
 * segment of narrow, with its '*' taken as a character only a '*' of wide can cover, must match
 * the segment of wide. Sound (never says 1 wrongly) and O(64 x 64) per segment; where that
 * rule cannot show a subset the attenuation is refused, even if it happens to be one. */
int token_glob_within(const char *narrow, const char *wide);

/* ---------------------------------------------------------------- what needs what */

typedef enum {
    TOKEN_OP_READ = 1,     /* records and streams (the caller adds classification and grants) */
    TOKEN_OP_WRITE,        /* publish, retire, append: product_id is the product */
    TOKEN_OP_ADMIN         /* issue tokens, revoke, decide grants: product_id is the domain name */
} token_op_t;

typedef enum {
    TOKEN_ALLOW = 0,
    TOKEN_DENY_WRONG_DOMAIN,   /* "wrong_domain": write/admin with another domain's token */
    TOKEN_DENY_KIND,           /* "kind_insufficient": a read token for a write, not admin ... */
    TOKEN_DENY_SCOPE           /* "out_of_scope": the product is outside the token's glob */
} token_decision_t;

/* DESIGN §13 for one request, as far as the (verified, unrevoked) token decides: read needs any
 * kind and the product in scope; write needs write or admin of the product's own domain and the
 * product in scope; admin needs admin of that domain with a scope covering all of it
 * ("DOMAIN" + "/" + "*" within scope). Classification (public needs no token, confidential and
 * restricted also a grant) is the caller's. */
token_decision_t token_allows(const token_claims_t *c, token_op_t op, const char *product_id);
const char *token_decision_name(token_decision_t d);   /* "ok", "wrong_domain", ... */

/* ---------------------------------------------------------------- token files */

/* Writes text and a newline to path (DATA/admin.token, a --token-file) with mode 0600, refusing
 * to overwrite, the file and its directory fsync'd. Atomic: path appears whole or not at all (a
 * reader never sees it empty or partial). 0 or -1 with err naming the path. */
int token_file_write(const char *path, const char *text, char *err, size_t errlen);
/* Reads a token file: a regular file of at most TOKEN_MAX_TEXT + 2 bytes that group and others
 * cannot read (the node refuses to start on one that they can), surrounding white space dropped,
 * holding one "trib1." text. The malloc'd text, or NULL with err naming the path and what is wrong
 * ("PATH: no such file", "PATH: mode 0644, must be 0600 ...", "PATH: larger than 4098 bytes, the
 * limit for a token file", "PATH: empty", "PATH: not a token ..."). Does not verify it. */
char *token_file_read(const char *path, char *err, size_t errlen);

/* Revocation id text: 128 lowercase hex characters of a block's signature (out: 129 bytes). */
void token_revocation_hex(const uint8_t sig[TOKEN_SIG_LEN], char out[2 * TOKEN_SIG_LEN + 1]);

#endif
