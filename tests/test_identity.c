/* tests/test_identity.c - gossip/identity: key file life cycle, refusals, derived keys, hex.
 *
 * Owns: unit tests of identity_load_or_create, identity_wipe, identity_hex/from_hex and
 * identity_curve_pk, each in its own temp dir (mkdtemp under /tmp, removed after).
 * Must not: depend on other tests or on anything outside the temp dir. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/identity.h"

static char dir[64];
static char keypath[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/trib-identity-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(keypath, sizeof keypath, "%s/identity.key", dir);
    cr_assert_geq(sodium_init(), 0);
}

static void teardown(void)
{
    unlink(keypath);
    rmdir(dir);
}

/* Writes len bytes to identity.key with exactly the given mode (umask bypassed by fchmod). */
static void write_key_file(const void *data, size_t len, mode_t mode)
{
    int fd = open(keypath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

TestSuite(identity, .init = setup, .fini = teardown);

Test(identity, create_then_reload_gives_same_key)
{
    identity_t a, b;
    char err[256] = "";
    int created = -1;

    cr_assert_eq(identity_load_or_create(dir, &a, &created, err, sizeof err), 0, "%s", err);
    cr_assert_eq(created, 1);
    cr_assert_eq(identity_load_or_create(dir, &b, &created, err, sizeof err), 0, "%s", err);
    cr_assert_eq(created, 0);
    cr_assert_arr_eq(a.pk, b.pk, ID_PK_LEN);
    cr_assert_arr_eq(a.sk, b.sk, ID_SK_LEN);
    cr_assert_arr_eq(a.curve_pk, b.curve_pk, 32);
    cr_assert_arr_eq(a.curve_sk, b.curve_sk, 32);
    cr_assert_str_eq(a.hex, b.hex);
    cr_assert_eq(strlen(a.hex), 64);
    for (size_t i = 0; i < 64; i++)
        cr_assert(strchr("0123456789abcdef", a.hex[i]) != NULL, "hex char %zu: %c", i, a.hex[i]);
}

Test(identity, key_file_is_0600_and_holds_the_secret_key)
{
    identity_t id;
    char err[256] = "";
    struct stat st;
    uint8_t disk[ID_SK_LEN + 1];

    umask(022);
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(stat(keypath, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_assert_eq(st.st_size, ID_SK_LEN);
    FILE *f = fopen(keypath, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(disk, 1, sizeof disk, f), ID_SK_LEN);
    fclose(f);
    cr_assert_arr_eq(disk, id.sk, ID_SK_LEN);
    cr_assert_arr_eq(disk + 32, id.pk, ID_PK_LEN, "libsodium sk embeds the pk");
}

Test(identity, two_dirs_give_different_keys)
{
    char dir2[64];
    char path2[PATH_MAX];
    identity_t a, b;
    char err[256] = "";

    snprintf(dir2, sizeof dir2, "/tmp/trib-identity2-XXXXXX");
    cr_assert_not_null(mkdtemp(dir2));
    snprintf(path2, sizeof path2, "%s/identity.key", dir2);
    cr_assert_eq(identity_load_or_create(dir, &a, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(identity_load_or_create(dir2, &b, NULL, err, sizeof err), 0, "%s", err);
    unlink(path2);
    rmdir(dir2);
    cr_assert_str_neq(a.hex, b.hex);
}

Test(identity, refuses_wrong_size)
{
    static const struct { size_t len; const char *msg; } cases[] = {
        {0, "identity.key: 0 bytes, expected 64"},
        {12, "identity.key: 12 bytes, expected 64"},
        {63, "identity.key: 63 bytes, expected 64"},
        {65, "identity.key: 65 bytes, expected 64"},
        {128, "identity.key: 128 bytes, expected 64"},
    };
    uint8_t junk[128];
    memset(junk, 0x5a, sizeof junk);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        identity_t id;
        char err[256] = "";
        int created = -1;
        write_key_file(junk, cases[i].len, 0600);
        cr_assert_eq(identity_load_or_create(dir, &id, &created, err, sizeof err), -1, "len %zu", cases[i].len);
        cr_assert_eq(created, 0);
        cr_assert(strstr(err, cases[i].msg) != NULL, "len %zu: got '%s'", cases[i].len, err);
        cr_assert(strstr(err, dir) != NULL, "error names the path: '%s'", err);
    }
}

Test(identity, refuses_group_or_other_readable)
{
    static const struct { mode_t mode; const char *msg; } cases[] = {
        {0644, "identity.key: mode 0644, must be 0600"},
        {0640, "identity.key: mode 0640, must be 0600"},
        {0604, "identity.key: mode 0604, must be 0600"},
        {0660, "identity.key: mode 0660, must be 0600"},
    };
    identity_t id;
    char err[256] = "";
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), 0, "%s", err);
    uint8_t sk[ID_SK_LEN];
    memcpy(sk, id.sk, sizeof sk);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        identity_t again;
        err[0] = '\0';
        write_key_file(sk, sizeof sk, cases[i].mode);
        cr_assert_eq(identity_load_or_create(dir, &again, NULL, err, sizeof err), -1);
        cr_assert(strstr(err, cases[i].msg) != NULL, "mode %o: got '%s'", cases[i].mode, err);
    }
    /* The same bytes with 0400 (owner read-only) are fine. */
    write_key_file(sk, sizeof sk, 0400);
    identity_t ro;
    cr_assert_eq(identity_load_or_create(dir, &ro, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_arr_eq(ro.pk, id.pk, ID_PK_LEN);
}

Test(identity, refuses_inconsistent_secret_key)
{
    identity_t id;
    char err[256] = "";
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), 0, "%s", err);
    uint8_t sk[ID_SK_LEN];
    memcpy(sk, id.sk, sizeof sk);
    sk[40] ^= 1;                       /* the embedded public key no longer matches the seed */
    write_key_file(sk, sizeof sk, 0600);
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "corrupt key") != NULL, "got '%s'", err);
}

Test(identity, refuses_non_regular_file)
{
    identity_t id;
    char err[256] = "";
    cr_assert_eq(mkdir(keypath, 0700), 0);
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), -1);
    rmdir(keypath);
    cr_assert(strstr(err, "not a regular file") != NULL, "got '%s'", err);
}

Test(identity, follows_a_symlink_and_refuses_a_dangling_one)
{
    identity_t a, b;
    char err[256] = "", target[PATH_MAX];
    snprintf(target, sizeof target, "%s/real.key", dir);
    cr_assert_eq(identity_load_or_create(dir, &a, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rename(keypath, target), 0);
    cr_assert_eq(symlink("real.key", keypath), 0);
    int rc = identity_load_or_create(dir, &b, NULL, err, sizeof err);
    cr_assert_eq(unlink(target), 0);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_arr_eq(a.pk, b.pk, ID_PK_LEN);
    /* now dangling: never silently replaced by a new key */
    cr_assert_eq(identity_load_or_create(dir, &b, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "dangling symlink") != NULL, "got '%s'", err);
}

Test(identity, missing_dir_is_an_error)
{
    identity_t id;
    char err[256] = "";
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
    cr_assert_eq(identity_load_or_create(missing, &id, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "no/such/dir/identity.key") != NULL, "got '%s'", err);
    cr_assert(strstr(err, "No such file") != NULL, "got '%s'", err);
}

Test(identity, curve_keys_are_a_pair_and_match_identity_curve_pk)
{
    identity_t id;
    char err[256] = "";
    uint8_t derived[32], from_pk[32];
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(crypto_scalarmult_base(derived, id.curve_sk), 0);
    cr_assert_arr_eq(derived, id.curve_pk, 32);
    cr_assert_eq(identity_curve_pk(id.pk, from_pk), 0);
    cr_assert_arr_eq(from_pk, id.curve_pk, 32);
}

Test(identity, curve_pk_refuses_a_non_point)
{
    uint8_t bad[ID_PK_LEN] = {0}, out[32];
    /* The all-zero key is a small-order point libsodium refuses to convert. */
    cr_assert_eq(identity_curve_pk(bad, out), -1);
}

Test(identity, hex_round_trip)
{
    uint8_t pk[ID_PK_LEN], back[ID_PK_LEN];
    char hex[ID_HEX_LEN];
    for (size_t i = 0; i < sizeof pk; i++)
        pk[i] = (uint8_t)(i * 37 + 1);
    identity_hex(pk, hex);
    cr_assert_eq(strlen(hex), 64);
    cr_assert_eq(strncmp(hex, "01264b7095", 10), 0, "got %s", hex);
    cr_assert_eq(identity_from_hex(hex, back), 0);
    cr_assert_arr_eq(back, pk, ID_PK_LEN);
}

Test(identity, from_hex_refuses_bad_text)
{
    char ok[ID_HEX_LEN];
    uint8_t pk[ID_PK_LEN] = {0};
    identity_hex(pk, ok);

    char c63[64], c65[66], nonhex[ID_HEX_LEN], space[ID_HEX_LEN];
    memcpy(c63, ok, 63); c63[63] = '\0';
    memcpy(c65, ok, 64); c65[64] = '0'; c65[65] = '\0';
    memcpy(nonhex, ok, sizeof ok); nonhex[10] = 'g';
    memcpy(space, ok, sizeof ok); space[63] = ' ';
    const char *cases[] = {"", "0", c63, c65, nonhex, space, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[ID_PK_LEN];
        cr_assert_eq(identity_from_hex(cases[i], out), -1, "case %zu '%s'", i, cases[i] ? cases[i] : "(null)");
    }
}

Test(identity, wipe_zeroes_secrets)
{
    identity_t id;
    char err[256] = "";
    static const uint8_t zero[sizeof(identity_t)];
    cr_assert_eq(identity_load_or_create(dir, &id, NULL, err, sizeof err), 0, "%s", err);
    identity_wipe(&id);
    cr_assert_arr_eq(&id, zero, sizeof id);
    identity_wipe(NULL);
}
