/* tests/test_config.c - agent options: defaults, command line, --config file (both spellings),
 * precedence, bounds, and the error each bad input gets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gossip/swim.h"
#include "node/config.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/trib-config-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static char paths[5][128];

/* Writes text to dir/name; the path stays valid for the test (one slot per file name). */
static const char *write_file(int slot, const char *name, const char *text)
{
    char *path = paths[slot];
    snprintf(path, sizeof paths[slot], "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Parses a NULL-terminated argument list; returns the code, err filled. */
static int parse(config_t *c, char *err, size_t errlen, const char *const *args)
{
    int argc = 0;
    while (args[argc])
        argc++;
    config_defaults(c);
    err[0] = '\0';
    return config_parse_args(c, argc, (char **)args, err, errlen);
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults_are_memberlist_lan_like)
{
    config_t c;
    char err[256];
    const char *args[] = {"--data", "/x", NULL};
    cr_assert_eq(parse(&c, err, sizeof err, args), 0, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:7470");
    cr_assert_str_eq(c.http, "127.0.0.1:7480");
    cr_assert_eq(c.probe_interval_ms, 1000);
    cr_assert_eq(c.probe_timeout_ms, 500);
    cr_assert_eq(c.suspicion_mult, 4);
    cr_assert_eq(c.http_threads, 0);
    cr_assert_eq(c.write_workers, 32);
    cr_assert_eq(c.nseeds, 0);
    /* Every SWIM timing an operator can set defaults to what the membership layer itself uses
     * (both come from gossip/swim.h). */
    swim_config_t s;
    swim_config_default(&s);
    cr_expect_eq(c.probe_interval_ms, s.probe_interval_ms);
    cr_expect_eq(c.probe_timeout_ms, s.probe_timeout_ms);
    cr_expect_eq(c.indirect_checks, s.indirect_checks);
    cr_expect_eq(c.suspicion_mult, s.suspicion_mult);
    cr_expect_eq(c.suspicion_max_mult, s.suspicion_max_mult);
    cr_expect_eq(c.gossip_interval_ms, s.gossip_interval_ms);
    cr_expect_eq(c.gossip_nodes, s.gossip_nodes);
    cr_expect_eq(c.push_pull_interval_ms, s.push_pull_interval_ms);
    cr_expect_eq(c.retransmit_mult, s.retransmit_mult);
    cr_expect_eq(c.awareness_max, s.awareness_max);
    cr_expect_eq(c.retry_max_ms, s.retry_max_ms);
}

Test(config, file_then_command_line_wins_and_both_spellings_work)
{
    const char *path = write_file(0, "agent.yaml", "domain: payments\n"
                                                "http: 127.0.0.1:9000\n"
                                                "probe-interval-ms: 2500\n"
                                                "seed: [10.0.0.1:7470, 10.0.0.2:7470]\n");
    char eq[160];
    snprintf(eq, sizeof eq, "--config=%s", path);
    const char *forms[2][6] = {
        {"--data", "/x", "--http", "127.0.0.1:9001", "--config", path},
        {eq, "--http=127.0.0.1:9001", "--data", "/x", NULL, NULL},
    };
    for (int i = 0; i < 2; i++) {
        const char *args[7] = {0};
        memcpy(args, forms[i], sizeof forms[i]);
        config_t c;
        char err[256];
        cr_assert_eq(parse(&c, err, sizeof err, args), 0, "form %d: %s", i, err);
        cr_assert_str_eq(c.domain, "payments");
        cr_assert_str_eq(c.http, "127.0.0.1:9001", "form %d: the command line must win", i);
        cr_assert_eq(c.probe_interval_ms, 2500);
        cr_assert_eq(c.nseeds, 2);
        cr_assert_str_eq(c.seeds[1], "10.0.0.2:7470");
    }
}

Test(config, bad_input_table)
{
    const char *bad_yaml = write_file(1, "bad.yaml", "domain: [payments\n");
    const char *unknown = write_file(2, "unknown.yaml", "domain: payments\nprobe-intervall: 5\n");
    const char *range = write_file(3, "range.yaml", "\n\nsuspicion-mult: 0\n");
    char nested[128];
    snprintf(nested, sizeof nested, "domain: payments\nseed: %065d\n", 0);
    memset(nested + strlen("domain: payments\nseed: "), '[', 65);
    const char *deep = write_file(4, "deep.yaml", nested);
    static const struct {
        const char *args[10];
        const char *want;   /* substring of the error */
    } cases[] = {
        {{"--domain", "payments", NULL}, "--data DIR is required"},
        {{"--data", "/x", "--listen", "127.0.0.1", NULL}, "--listen: '127.0.0.1' is not HOST:PORT: it has no :PORT"},
        {{"--data", "/x", "--http", "h:70000", NULL},
         "--http: 'h:70000' is not HOST:PORT: the port 70000 is out of range (1-65535)"},
        {{"--data", "/x", "--http", "h:80x", NULL}, "--http: 'h:80x' is not HOST:PORT: the port '80x' is not a number"},
        {{"--data", "/x", "--listen", ":7470", NULL}, "--listen: ':7470' is not HOST:PORT: it has no host before :PORT"},
        {{"--data", "/x", "--listen", "::1:7470", NULL},
         "--listen: '::1:7470' is not HOST:PORT: an IPv6 address goes in brackets, [ADDRESS]:PORT (e.g. [::1]:7470)"},
        {{"--data", "/x", "--seed", "nope", NULL}, "--seed: 'nope' is not HOST:PORT"},
        {{"--data", "/x", "--probe-interval-ms", "-5", NULL}, "--probe-interval-ms: '-5' is not a whole number"},
        {{"--data", "/x", "--retry-max-ms", "500", NULL}, "--retry-max-ms: '500' is not a whole number in 1000.."},
        {{"--data", "/x", "--http-threads", "20000", NULL}, "--http-threads: '20000'"},
        {{"--data", "/x", "--write-workers", "0", NULL}, "--write-workers: '0' is not a whole number in 1..1024"},
        {{"--data", "/x", "--log-level", "loud", NULL}, "log_level: 'loud'"},
        {{"--data", "/x", "--probe-interval-ms", "200", NULL}, "probe_timeout_ms (500) must be below probe_interval_ms (200)"},
        {{"--data", "/x", "--frobnicate", "1", NULL}, "unknown option '--frobnicate'"},
        /* a likely typo names the option it is near, as the CLI's commands do (it said only "unknown") */
        {{"--data", "/x", "--probe-intervl-ms", "200", NULL},
         "unknown option '--probe-intervl-ms' (did you mean --probe-interval-ms?)"},
        {{"--data", "/x", "--suspicion_mul", "4", NULL}, "unknown option '--suspicion_mul' (did you mean --suspicion-mult?)"},
        {{"--data", "/x", "--domain", NULL}, "--domain needs a value"},
        {{"--data", "/x", "stray", NULL}, "unexpected argument 'stray'"},
        {{"--data", "/x", "--config", NULL}, "--config needs a FILE"},
        {{"--data", "/x", "--config", "/nonexistent/agent.yaml", NULL}, "/nonexistent/agent.yaml: no such file"},
        {{"--data", "/x", "--config", "/tmp", NULL}, "/tmp: is a directory, not a file"},
        /* trust: chartered needs both files; open mode beyond loopback needs a secret */
        {{"--data", "/x", "--charter", "charter.json", NULL}, "--charter needs --cert FILE"},
        {{"--data", "/x", "--cert", "a.cert", NULL}, "--cert needs --charter FILE"},
        {{"--data", "/x", "--listen", "10.0.0.5:7470", NULL}, "there is no built-in federation secret: give --charter"},
        {{"--data", "/x", "--seed", "abc@127.0.0.1:7470", NULL}, "NODE_ID@HOST:PORT (NODE_ID: 64 hex"},
        /* every seed is checked here by the gossip layer's rules, not after the data dir is made */
        {{"--data", "/x", "--seed", "127.0.0.1:26170 - 127.0.0.1:26171", NULL},
         "--seed: '127.0.0.1:26170 - 127.0.0.1:26171' has a space at character 16"},
        {{"--data", "/x", "--seed", "10.0.0.1:7470:7471", NULL}, "'10.0.0.1:7470:7471' is not HOST:PORT or "
         "NODE_ID@HOST:PORT (NODE_ID: 64 hex characters): it has more than one :PORT"},
        {{"--data", "/x", "--seed", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz@127.0.0.1:7470", NULL},
         "NODE_ID is not 64 hex characters"},
        /* a chartered seed names its node: a usage error before the data dir is created (it was
         * found by the gossip layer, after the identity and admin.token were written: exit 1) */
        {{"--data", "/x", "--charter", "c.json", "--cert", "a.cert", "--seed", "127.0.0.1:7470", NULL},
         "--seed 127.0.0.1:7470: in a chartered federation a seed is NODE_ID@HOST:PORT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_t c;
        char err[256];
        cr_expect_eq(parse(&c, err, sizeof err, cases[i].args), 2, "case %zu", i);
        cr_expect(strstr(err, cases[i].want), "case %zu: got '%s', want '%s'", i, err, cases[i].want);
    }
    struct {
        const char *path, *want;
    } files[] = {
        /* where the '[' opens, as for a manifest: the file is read whole before it is parsed */
        {bad_yaml, "bad.yaml: malformed YAML: flow sequence without a closing bracket (line 1, column 9): the '[' "
                   "opened at line 1, column 9 is never closed (the parser gave up at line 2, column 1)"},
        {deep, "deep.yaml: malformed YAML: '[' nested deeper than 64 levels (line 2, column 71)"},
        {unknown, ":2: unknown option 'probe-intervall'"},
        {range, ":3: suspicion-mult: '0' is not a whole number in 1..100"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *args[] = {"--data", "/x", "--config", files[i].path, NULL};
        config_t c;
        char err[256];
        cr_expect_eq(parse(&c, err, sizeof err, args), 2, "file %zu", i);
        cr_expect(strstr(err, files[i].want), "file %zu: got '%s', want '%s'", i, err, files[i].want);
    }
}

/* A --config file of YAML comments around one option, size bytes in all. */
static void sized_config(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    const char *head = "domain: payments\n";
    fputs(head, f);
    size_t n = strlen(head);
    while (n < size) {        /* "# xxxx...\n" lines of at most 100 bytes */
        size_t line = size - n < 100 ? size - n : 100;
        if (line == 1) {
            fputc('\n', f);
        } else {
            fputc('#', f);
            for (size_t i = 1; i + 1 < line; i++)
                fputc('x', f);
            fputc('\n', f);
        }
        n += line;
    }
    fclose(f);
}

/* CONFIG_MAX_BYTES (1 MiB) is read and parsed; a byte more is refused, saying the file, the limit
 * and what the limit is for (it was untested; the error said only "larger than 1048576 bytes"). */
Test(config, a_config_file_of_1_mib_is_read_and_a_byte_more_refused)
{
    char path[128], err[300], want[400];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    sized_config(path, CONFIG_MAX_BYTES);
    const char *args[] = {"--data", "/x", "--config", path, NULL};
    config_t c;
    cr_assert_eq(parse(&c, err, sizeof err, args), 0, "%s", err);
    cr_expect_str_eq(c.domain, "payments");
    sized_config(path, CONFIG_MAX_BYTES + 1);
    cr_expect_eq(parse(&c, err, sizeof err, args), 2);
    snprintf(want, sizeof want, "%s: larger than 1 MiB (1048576 bytes), the limit for a --config file", path);
    cr_expect_str_eq(err, want);
}

Test(config, zero_http_threads_means_default_limit)
{
    config_t c;
    char err[256];
    const char *args[] = {"--data", "/x", "--http-threads", "0", NULL};
    cr_assert_eq(parse(&c, err, sizeof err, args), 0, "%s", err);
    cr_assert_eq(c.http_threads, 0);
}

Test(config, beyond_loopback_needs_a_secret_or_a_charter)
{
    config_t c;
    char err[256];
    const char *secret[] = {"--data", "/x", "--listen", "10.0.0.5:7470", "--federation-secret", "s3cret", NULL};
    cr_expect_eq(parse(&c, err, sizeof err, secret), 0, "%s", err);
    const char *chartered[] = {"--data", "/x", "--listen", "0.0.0.0:7470", "--charter", "c.json", "--cert", "a.cert",
                               NULL};
    cr_expect_eq(parse(&c, err, sizeof err, chartered), 0, "%s", err);
    const char *both[] = {"--data", "/x", "--charter", "c.json", "--cert", "a.cert", "--federation-secret", "s", NULL};
    cr_expect_eq(parse(&c, err, sizeof err, both), 2);
    cr_expect(strstr(err, "--federation-secret is for open mode"), "%s", err);
    const char *loop[] = {"--data", "/x", "--listen", "127.0.0.2:7470", NULL};
    cr_expect_eq(parse(&c, err, sizeof err, loop), 0, "loopback stays open: %s", err);
    char id[200];
    snprintf(id, sizeof id, "%064d@127.0.0.1:7470", 7);
    const char *seed[] = {"--data", "/x", "--seed", id, NULL};
    cr_expect_eq(parse(&c, err, sizeof err, seed), 0, "%s", err);
    cr_expect_str_eq(c.seeds[0], id);
    /* the longest peer address (63 characters) still fits behind NODE_ID@ */
    snprintf(id, sizeof id, "%064d@%s.example:7470", 7, "h0123456789012345678901234567890123456789012345678");
    cr_assert_eq(strlen(id) - 65, 63);
    cr_expect_eq(parse(&c, err, sizeof err, seed), 0, "%s", err);
    cr_expect_str_eq(c.seeds[0], id);
}
