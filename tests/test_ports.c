/* tests/test_ports.c - the harness's port picker (h_free_port): ports for test nodes come from
 * below the ephemeral range, are free when picked, and a port already taken is skipped. Must not:
 * start nodes (the node tests cover h_node_start). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tests/harness.h"

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

Test(ports, below_the_ephemeral_range_distinct_and_free)
{
    int seen[64];
    for (int i = 0; i < 64; i++) {
        int p = h_free_port();
        cr_assert(p >= 10000 && p < 20000, "port %d is outside 10000-19999 (ephemeral ports start at 32768)", p);
        for (int k = 0; k < i; k++)
            cr_assert_neq(seen[k], p, "port %d picked twice", p);
        int fd = listen_on(p);
        cr_assert_geq(fd, 0, "picked port %d cannot be bound", p);
        close(fd);
        seen[i] = p;
    }
}

Test(ports, a_taken_port_is_skipped)
{
    /* Find a port whose successor is free, hold the successor, and pick again: the picker steps
     * past the held one instead of returning it. */
    int p = -1, fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        p = h_free_port();
        cr_assert_geq(p, 0);
        fd = p + 1 < 20000 ? listen_on(p + 1) : -1;
    }
    cr_assert_geq(fd, 0, "no port with a free successor in 100 picks");
    int q = h_free_port();
    close(fd);
    cr_assert_neq(q, p + 1, "the picker returned port %d, which a listener holds", q);
    cr_assert(q >= 10000 && q < 20000, "port %d is outside 10000-19999", q);
}
