/* node/main.c - the `trib` program: `trib agent` runs a node, every other subcommand is a client
 * of a node's HTTP API (node/cli.c). */
#include <stdio.h>
#include <string.h>
#include "node/agent.h"
#include "node/cli.h"

int main(int argc, char **argv)
{
    /* `trib --node URL CMD ...` is `trib CMD --node URL ...`, and so for the other options every
     * client command takes (`trib --cacert ca.pem --node https://... status`). */
    static const char *const leading[] = { "--node", "--token", "--token-file", "--cacert" };
    for (int moved = 0; argc >= 3 && moved < 8; moved++) {
        size_t k = 0, n = 0;   /* the option and its value: two words, or one "--opt=VALUE" */
        for (; k < sizeof leading / sizeof leading[0]; k++) {
            size_t l = strlen(leading[k]);
            if (!strncmp(argv[1], leading[k], l) && (argv[1][l] == '\0' || argv[1][l] == '=')) {
                n = argv[1][l] ? 1 : 2;
                break;
            }
        }
        if (!n || argc < 2 + (int)n)
            break;
        char *opt = argv[1], *val = argv[2];
        for (int i = 1 + (int)n; i < argc; i++)
            argv[i - (int)n] = argv[i];
        argv[argc - n] = opt;
        if (n == 2)
            argv[argc - 1] = val;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("trib 0.1.0\n");
        return 0;
    }
    if (!strcmp(argv[1], "agent"))
        return agent_main(argc - 2, argv + 2);
    return cli_main(argc - 1, argv + 1);
}
