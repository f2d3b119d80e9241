/* gossip/identity.c - the node's Ed25519 identity: DIR/identity.key, CURVE keys, id text.
 *
 * Owns: creating identity.key (64-byte libsodium Ed25519 secret key, which embeds the public
 * key) durably with mode 0600 on first start, refusing a key file of the wrong size, type or
 * mode on later starts, deriving the Curve25519 pair used for ZeroMQ CURVE, and the hex text
 * form of node ids.
 * Must not: touch LMDB or the network, or print anything (errors go to the caller's buffer). */
#include "gossip/identity.h"
#include "gossip/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE "identity.key"

/* ---------------------------------------------------------------- file helpers */

/* Reads exactly len bytes; -1 with errno on error, -2 on a short file. */
static int read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return -2;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- key derivation */

/* Fills pk, curve keys and hex from id->sk; checks the secret key is self-consistent
 * (its embedded public key is the one its seed produces). */
static int derive(identity_t *id, const char *path, char *err, size_t errlen)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pk2[ID_PK_LEN], sk2[ID_SK_LEN];
    int rc = -1;

    crypto_sign_ed25519_sk_to_seed(seed, id->sk);
    crypto_sign_ed25519_sk_to_pk(id->pk, id->sk);
    if (crypto_sign_seed_keypair(pk2, sk2, seed) != 0 || sodium_memcmp(pk2, id->pk, ID_PK_LEN) != 0) {
        snprintf(err, errlen, "%s: corrupt key (public key does not match the secret key)", path);
        goto out;
    }
    if (crypto_sign_ed25519_pk_to_curve25519(id->curve_pk, id->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(id->curve_sk, id->sk) != 0) {
        snprintf(err, errlen, "%s: cannot derive the Curve25519 key", path);
        goto out;
    }
    identity_hex(id->pk, id->hex);
    rc = 0;
out:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk2, sizeof sk2);
    return rc;
}

/* ---------------------------------------------------------------- load / create */

/* 0 loaded, 1 absent, -1 error. */
static int load(const char *path, identity_t *id, char *err, size_t errlen)
{
    struct stat st;
    int r;
    /* A symlink is followed (a mounted secret is often one); the mode checked is the target's. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: fstat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size != ID_SK_LEN) {
        snprintf(err, errlen, "%s: %lld bytes, expected %d", path, (long long)st.st_size, ID_SK_LEN);
        goto fail;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: mode %04o, must be 0600", path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    r = read_all(fd, id->sk, ID_SK_LEN);
    if (r != 0) {
        if (r == -2)
            snprintf(err, errlen, "%s: short read, expected %d bytes", path, ID_SK_LEN);
        else
            snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    return derive(id, path, err, errlen);
fail:
    close(fd);
    return -1;
}

/* 0 created, 1 someone else created it first (EEXIST), -1 error. Written whole or not at all
 * (gossip/durable.h): a crash never leaves a partial key that the next start would refuse. */
static int create(const char *path, identity_t *id, char *err, size_t errlen)
{
    crypto_sign_keypair(id->pk, id->sk);
    int r = durable_write(path, id->sk, ID_SK_LEN, 0600, DURABLE_EXCL, err, errlen);
    return r != 0 ? r : derive(id, path, err, errlen);
}

int identity_load_or_create(const char *dir, identity_t *id, int *created, char *err, size_t errlen)
{
    char path[PATH_MAX];

    if (dir == NULL || id == NULL) {
        snprintf(err, errlen, "identity: no data dir given");
        return -1;
    }
    memset(id, 0, sizeof *id);
    if (created)
        *created = 0;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "identity: sodium_init failed");
        return -1;
    }
    int n = snprintf(path, sizeof path, "%s/%s", dir, KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "identity: data dir path too long");
        return -1;
    }

    int r = load(path, id, err, errlen);
    if (r == 1) {
        r = create(path, id, err, errlen);
        if (r == 0 && created)
            *created = 1;
        else if (r == 1)    /* lost a creation race: the other file is the identity */
            r = load(path, id, err, errlen);
        if (r == 1) {
            snprintf(err, errlen, "%s: exists but cannot be opened (a dangling symlink?)", path);
            r = -1;
        }
    }
    if (r != 0) {
        identity_wipe(id);
        return -1;
    }
    return 0;
}

int identity_load_file(const char *path, identity_t *id, char *err, size_t errlen)
{
    memset(id, 0, sizeof *id);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "identity: sodium_init failed");
        return -1;
    }
    int r = load(path, id, err, errlen);
    if (r == 1)
        snprintf(err, errlen, "%s: no such key file", path);
    if (r != 0) {
        identity_wipe(id);
        return -1;
    }
    return 0;
}

int identity_create_file(const char *path, identity_t *id, char *err, size_t errlen)
{
    memset(id, 0, sizeof *id);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "identity: sodium_init failed");
        return -1;
    }
    int r = create(path, id, err, errlen);
    if (r == 1)
        snprintf(err, errlen, "%s: already exists (refusing to overwrite a key)", path);
    if (r != 0) {
        identity_wipe(id);
        return -1;
    }
    return 0;
}

void identity_wipe(identity_t *id)
{
    if (id)
        sodium_memzero(id, sizeof *id);
}

/* ---------------------------------------------------------------- text form */

void identity_hex(const uint8_t pk[ID_PK_LEN], char out[ID_HEX_LEN])
{
    sodium_bin2hex(out, ID_HEX_LEN, pk, ID_PK_LEN);
}

int identity_from_hex(const char *hex, uint8_t pk[ID_PK_LEN])
{
    const char *end = NULL;
    size_t binlen = 0;

    if (hex == NULL || strnlen(hex, ID_HEX_LEN) != ID_HEX_LEN - 1)
        return -1;
    if (sodium_hex2bin(pk, ID_PK_LEN, hex, ID_HEX_LEN - 1, NULL, &binlen, &end) != 0 ||
        binlen != ID_PK_LEN || end != hex + ID_HEX_LEN - 1)
        return -1;
    return 0;
}

int identity_curve_pk(const uint8_t pk[ID_PK_LEN], uint8_t curve_pk[32])
{
    if (sodium_init() < 0)
        return -1;
    return crypto_sign_ed25519_pk_to_curve25519(curve_pk, pk) == 0 ? 0 : -1;
}
