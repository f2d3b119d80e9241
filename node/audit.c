/* node/audit.c - the owner's audit log (node/audit.h). */
#include "node/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/log.h"
#include "node/node.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong n_written, n_failed;

void audit_counts(uint64_t *written, uint64_t *failed)
{
    if (written)
        *written = atomic_load(&n_written);
    if (failed)
        *failed = atomic_load(&n_failed);
}

static void path_of(struct node *n, char *out, size_t cap, int old)
{
    snprintf(out, cap, "%s/audit.log%s", n->cfg.data, old ? ".1" : "");
}

static const char *s_or(const char *s) { return s ? s : ""; }

void audit_record(struct node *n, const audit_event_t *e)
{
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:s}", "time_ms", (json_int_t)e->time_ms, "subject",
                          s_or(e->subject), "token_id", s_or(e->token_id), "grant", s_or(e->grant_id), "product",
                          s_or(e->product_id), "entry_node", s_or(e->entry_node), "action", s_or(e->action),
                          "records", (json_int_t)e->records, "allowed", e->allowed, "reason", s_or(e->reason));
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!line) {
        atomic_fetch_add(&n_failed, 1);
        return;
    }
    char path[600], old[600];
    path_of(n, path, sizeof path, 0);
    path_of(n, old, sizeof old, 1);
    pthread_mutex_lock(&mu);
    struct stat sb;
    if (stat(path, &sb) == 0 && (size_t)sb.st_size >= AUDIT_ROTATE_BYTES && rename(path, old) != 0)
        log_warn("audit: cannot rotate %s: %s", path, strerror(errno));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    size_t len = strlen(line);
    line[len] = '\n';   /* over its NUL: len + 1 bytes are written, no NUL needed */
    int ok = fd >= 0 && write(fd, line, len + 1) == (ssize_t)(len + 1);
    int e_no = errno;
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&mu);
    free(line);
    if (ok) {
        atomic_fetch_add(&n_written, 1);
        return;
    }
    static log_limit_t limit;   /* a line per 10 s at most (monotonic), those held back counted in it */
    uint64_t held;
    char tail[96];
    if (log_limit(&limit, 10000, &held))
        log_warn("audit: cannot append to %s: %s%s", path, strerror(e_no),
                 log_held(tail, sizeof tail, held, "failed appends"));
    atomic_fetch_add(&n_failed, 1);
}

/* Appends the lines of file path to arr (at most keep newest in the end). */
static int read_lines(const char *path, json_t *arr)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_t *ev = json_loadb(line, (size_t)got, 0, NULL);
        if (ev)
            json_array_append_new(arr, ev);
    }
    free(line);
    fclose(f);
    return 0;
}

json_t *audit_read(struct node *n, size_t limit, char *err, size_t errlen)
{
    char path[600], old[600];
    path_of(n, path, sizeof path, 0);
    path_of(n, old, sizeof old, 1);
    json_t *all = json_array();
    pthread_mutex_lock(&mu);
    int rc = read_lines(old, all) | read_lines(path, all);
    pthread_mutex_unlock(&mu);
    if (rc != 0 || !all) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        json_decref(all);
        return NULL;
    }
    size_t total = json_array_size(all);
    json_t *out = json_array();
    for (size_t i = total > limit ? total - limit : 0; i < total; i++)
        json_array_append(out, json_array_get(all, i));
    json_decref(all);
    return out;
}
