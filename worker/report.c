#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"

int report_value_add(report_value_t **vals, size_t *n, const char *name, double value)
{
    report_value_t *nv = realloc(*vals, (*n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *vals = nv;
    nv[*n].name = strdup(name);
    if (!nv[*n].name)
        return -ENOMEM;
    nv[*n].value = value;
    (*n)++;
    return 0;
}

int report_set_failed(report_t *r, int exit_code, int signal, const char *reason)
{
    char *copy = strdup(reason ? reason : "");
    if (!copy)
        return -ENOMEM;
    free(r->reason);
    r->reason = copy;
    r->ok = 0;
    r->exit_code = exit_code;
    r->signal = signal;
    return 0;
}

static json_t *report__values_json(const report_value_t *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, v[i].name, json_real(v[i].value));
    return o;
}

static json_t *report__json(const report_t *r)
{
    return json_pack("{s:I, s:I, s:s, s:b, s:o, s:o, s:I, s:f, s:i, s:i, s:s}", "attempt_id",
                     (json_int_t)r->attempt_id, "run_id", (json_int_t)r->run_id, "sweep_id",
                     r->sweep_id ? r->sweep_id : "", "ok", r->ok, "losses",
                     report__values_json(r->losses, r->n_losses), "bits_per_byte",
                     report__values_json(r->bits_per_byte, r->n_bits_per_byte), "tokens",
                     (json_int_t)r->tokens, "seconds", r->seconds, "exit_code", r->exit_code,
                     "signal", r->signal, "reason", r->reason ? r->reason : "");
}

/* fsync of a directory, so a rename or a new file in it survives an OS crash. */
static int report__sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Writes `o` to `path` and fsyncs it. */
static int report__write_synced(json_t *o, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = json_dumpfd(o, fd, JSON_COMPACT | JSON_REAL_PRECISION(17)) == 0 ? 0 : -EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

int report_save(const report_t *r)
{
    if (!r->dir)
        return -EINVAL;
    int rc = child_mkdirs(r->dir, 0755);
    if (rc < 0)
        return rc;
    json_t *o = report__json(r);
    if (!o)
        return -ENOMEM;
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", r->dir, REPORT_FILE);
    snprintf(path, sizeof path, "%s/%s", r->dir, REPORT_FILE);
    /* Durable before it is sent: the file, then the rename in its directory. */
    rc = report__write_synced(o, tmp);
    json_decref(o);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = report__sync_dir(r->dir);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int report__values_load(json_t *o, report_value_t **vals, size_t *n)
{
    if (!o)
        return 0;
    if (!json_is_object(o))
        return -EBADMSG;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!json_is_number(v))
            return -EBADMSG;
        if (report_value_add(vals, n, k, json_number_value(v)) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Fills *ret from a report's JSON object (dir from `path`'s directory when path is given). */
static int report__from_json(json_t *o, const char *path, report_t *ret)
{
    report_t r = {0};
    int rc = -EBADMSG;
    json_t *aid = json_object_get(o, "attempt_id"), *rid = json_object_get(o, "run_id");
    if (!json_is_integer(aid) || !json_is_integer(rid) || json_integer_value(aid) <= 0)
        goto out;
    r.attempt_id = (uint64_t)json_integer_value(aid);
    r.run_id = (uint64_t)json_integer_value(rid);
    r.ok = json_is_true(json_object_get(o, "ok"));
    const char *s = json_string_value(json_object_get(o, "sweep_id"));
    r.sweep_id = strdup(s ? s : "");
    s = json_string_value(json_object_get(o, "reason"));
    r.reason = strdup(s ? s : "");
    r.tokens = (uint64_t)json_integer_value(json_object_get(o, "tokens"));
    r.seconds = json_number_value(json_object_get(o, "seconds"));
    r.exit_code = (int)json_integer_value(json_object_get(o, "exit_code"));
    r.signal = (int)json_integer_value(json_object_get(o, "signal"));
    if (path) {
        char *slash = strrchr(path, '/');
        r.dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    }
    if (!r.sweep_id || !r.reason || (path && !r.dir)) {
        rc = -ENOMEM;
        goto out;
    }
    rc = report__values_load(json_object_get(o, "losses"), &r.losses, &r.n_losses);
    if (rc == 0)
        rc = report__values_load(json_object_get(o, "bits_per_byte"), &r.bits_per_byte,
                                 &r.n_bits_per_byte);
    if (rc == 0 && r.ok && r.n_losses == 0)
        rc = -EBADMSG;
out:
    if (rc < 0)
        report_clear(&r);
    else
        *ret = r;
    return rc;
}

int report_load(const char *path, report_t *ret)
{
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o)
        return access(path, R_OK) == 0 ? -EBADMSG : -errno;
    int rc = report__from_json(o, path, ret);
    json_decref(o);
    return rc;
}

/* ---- the outbox journal of synthetic reports --------------------------------------------------- */

#define REPORT_JOURNAL_TRUNCATE_BYTES (4 * 1024 * 1024)

struct report_journal {
    int fd;
    char path[4200];
    off_t size;
};

static int report__journal_write(report_journal_t *j, json_t *o)
{
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (!line)
        return -ENOMEM;
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room for its NUL, which we replace */
    ssize_t n = write(j->fd, line, len + 1);
    free(line);
    if (n < 0)
        return -errno;
    j->size += n;
    return (size_t)n == len + 1 ? 0 : -EIO;
}

int report_journal_open(const char *workdir,
                        void (*cb)(report_t *r, void *arg),
                        void *arg,
                        report_journal_t **ret,
                        int *ret_bad)
{
    report_journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    snprintf(j->path, sizeof j->path, "%s/%s", workdir, REPORT_JOURNAL_FILE);
    int bad = 0;
    /* Replay: the reports, then drop those acknowledged. */
    report_t *held = NULL;
    size_t nheld = 0, cap = 0;
    FILE *f = fopen(j->path, "re");
    if (f) {
        char *line = NULL;
        size_t lcap = 0;
        while (getline(&line, &lcap, f) > 0) {
            json_t *o = json_loads(line, 0, NULL);
            const char *op = json_string_value(json_object_get(o, "op"));
            if (op && strcmp(op, "ack") == 0) {
                uint64_t id = (uint64_t)json_integer_value(json_object_get(o, "attempt_id"));
                for (size_t i = 0; i < nheld; i++) {
                    if (held[i].attempt_id == id) {
                        report_clear(&held[i]);
                        held[i] = held[--nheld];
                        break;
                    }
                }
            } else if (op && strcmp(op, "report") == 0) {
                if (nheld == cap) {
                    cap = cap ? 2 * cap : 64;
                    report_t *nh = realloc(held, cap * sizeof *nh);
                    if (!nh) {
                        json_decref(o);
                        break;
                    }
                    held = nh;
                }
                if (report__from_json(o, NULL, &held[nheld]) == 0)
                    nheld++;
                else
                    bad++;
            } else {
                bad++;
            }
            json_decref(o);
        }
        free(line);
        fclose(f);
    }
    /* Rewrite with the outstanding reports only. */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->path);
    j->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = j->fd < 0 ? -errno : 0;
    for (size_t i = 0; rc == 0 && i < nheld; i++) {
        json_t *o = report__json(&held[i]);
        if (o)
            json_object_set_new(o, "op", json_string("report"));
        rc = report__journal_write(j, o);
    }
    if (rc == 0 && fsync(j->fd) != 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, j->path) != 0)
        rc = -errno;
    if (rc == 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s", workdir);
        rc = report__sync_dir(dir);
    }
    if (j->fd >= 0)
        close(j->fd);
    j->fd = rc == 0 ? open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
    if (rc == 0 && j->fd < 0)
        rc = -errno;
    for (size_t i = 0; i < nheld; i++) {
        report_t *r = rc == 0 ? malloc(sizeof *r) : NULL;
        if (r) {
            report_move(r, &held[i]);
            cb(r, arg);
        } else {
            report_clear(&held[i]);
        }
    }
    free(held);
    if (ret_bad)
        *ret_bad = bad;
    if (rc < 0) {
        unlink(tmp);
        free(j);
        return rc;
    }
    *ret = j;
    return 0;
}

int report_journal_append(report_journal_t *j, const report_t *r)
{
    json_t *o = report__json(r);
    if (o)
        json_object_set_new(o, "op", json_string("report"));
    return report__journal_write(j, o);
}

int report_journal_sync(report_journal_t *j)
{
    return fdatasync(j->fd) == 0 ? 0 : -errno;
}

int report_journal_ack(report_journal_t *j, uint64_t attempt_id, unsigned outstanding)
{
    if (outstanding == 0 && j->size > REPORT_JOURNAL_TRUNCATE_BYTES) {
        /* Nothing in the file is needed any more: start it over (O_APPEND writes at 0 then). */
        if (ftruncate(j->fd, 0) != 0)
            return -errno;
        j->size = 0;
        return 0;
    }
    return report__journal_write(
            j, json_pack("{s:s, s:I}", "op", "ack", "attempt_id", (json_int_t)attempt_id));
}

void report_journal_destroy(report_journal_t **self_p)
{
    report_journal_t *j = self_p ? *self_p : NULL;
    if (!j)
        return;
    *self_p = NULL;
    if (j->fd >= 0)
        close(j->fd);
    free(j);
}

int report_scan(const char *workdir, void (*cb)(report_t *r, void *arg), void *arg, int *ret_bad)
{
    int found = 0, bad = 0;
    DIR *top = opendir(workdir);
    if (!top) {
        if (ret_bad)
            *ret_bad = 0;
        return errno == ENOENT ? 0 : -errno;
    }
    struct dirent *se;
    while ((se = readdir(top))) {
        if (se->d_name[0] == '.')
            continue;
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/%s", workdir, se->d_name);
        DIR *sd = opendir(sdir);
        if (!sd)
            continue;
        struct dirent *je;
        while ((je = readdir(sd))) {
            if (je->d_name[0] == '.')
                continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s/%s", sdir, je->d_name, REPORT_FILE);
            if (access(path, F_OK) != 0)
                continue;
            report_t *r = calloc(1, sizeof *r);
            if (!r)
                break;
            if (report_load(path, r) == 0) {
                found++;
                cb(r, arg);
            } else {
                bad++;
                free(r);
            }
        }
        closedir(sd);
    }
    closedir(top);
    if (ret_bad)
        *ret_bad = bad;
    return found;
}

void report_forget(const report_t *r)
{
    if (!r->dir)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, REPORT_FILE);
    unlink(path);
    /* rmdir fails (harmlessly) while the job left logs or outputs behind. */
    if (rmdir(r->dir) == 0) {
        char *slash = strrchr(r->dir, '/');
        if (slash && slash != r->dir) {
            char parent[4096];
            snprintf(parent, sizeof parent, "%.*s", (int)(slash - r->dir), r->dir);
            rmdir(parent);
        }
    }
}

void report_move(report_t *to, report_t *from)
{
    *to = *from;
    memset(from, 0, sizeof *from);
}

static void report__values_free(report_value_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

void report_clear(report_t *r)
{
    free(r->sweep_id);
    free(r->dir);
    free(r->reason);
    report__values_free(r->losses, r->n_losses);
    report__values_free(r->bits_per_byte, r->n_bits_per_byte);
    memset(r, 0, sizeof *r);
}
