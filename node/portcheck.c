/* node/portcheck.c - the listeners' ports tried before anything is created (portcheck.h). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "node/portcheck.h"

typedef struct {
    const char *opt;    /* "--http" */
    const char *addr;   /* HOST:PORT as given */
    int port;           /* 0: not tried */
    int fd;
} trial_t;

/* Binds and listens on t->addr like its listener will: 0 (t->fd held, or nothing to try), or the
 * errno of a bind that cannot work. */
static int try_bind(trial_t *t)
{
    char host[128];
    t->fd = -1;
    if (!t->addr[0] || config_split_addr(t->addr, host, sizeof host, &t->port) < 0) {
        t->port = 0;   /* none, "off", port 0 (any free one) or malformed: the listener decides */
        return 0;
    }
    char bare[128], portstr[8];
    snprintf(bare, sizeof bare, "%s", host[0] == '[' ? host + 1 : host);
    if (host[0] == '[')
        bare[strlen(bare) - 1] = '\0';
    snprintf(portstr, sizeof portstr, "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
    if (getaddrinfo(!strcmp(bare, "*") ? NULL : bare, portstr, &hints, &ai) != 0)
        return 0;
    int on = 1, e = 0;
    t->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->fd >= 0 && (setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
                       bind(t->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(t->fd, 1) < 0))
        e = errno;
    freeaddrinfo(ai);
    if (e || t->fd < 0) {
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
    }
    /* only what the listener would fail on too; anything else is left to it */
    return e == EADDRINUSE || e == EADDRNOTAVAIL || e == EACCES ? e : 0;
}

int portcheck_free(const config_t *c, char *err, size_t errlen)
{
    trial_t t[] = {{"--http", c->http, 0, -1}, {"--listen", c->listen, 0, -1}, {"--link-listen", c->link_listen, 0, -1}};
    size_t n = sizeof t / sizeof t[0], i;
    int e = 0;
    for (i = 0; i < n && !(e = try_bind(&t[i])); i++)
        ;
    if (e) {
        const char *also = NULL;   /* another of our options holds it */
        for (size_t k = 0; k < i; k++)
            if (t[k].port == t[i].port && t[k].fd >= 0)
                also = t[k].opt;
        char why[160];
        if (also)
            snprintf(why, sizeof why, " (%s names the same port: give each its own)", also);
        else if (e == EADDRINUSE)
            snprintf(why, sizeof why, " (another process, maybe another agent, holds port %d: stop it or use another %s)",
                     t[i].port, t[i].opt);
        else
            snprintf(why, sizeof why, "%s", e == EADDRNOTAVAIL ? " (not an address of this host)"
                                            : " (a port below 1024 needs privileges: use another)");
        snprintf(err, errlen, "%s %s: cannot listen on it: %s%s; nothing was created", t[i].opt, t[i].addr,
                 strerror(e), why);
    }
    for (size_t k = 0; k < n; k++)
        if (t[k].fd >= 0)
            close(t[k].fd);
    return e ? -1 : 0;
}
