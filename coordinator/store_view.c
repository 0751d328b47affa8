#include "store_view.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static sqlite3_stmt *store_view__prepare(store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store__db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Steps `st` through the store's row loop, then finalizes it (statements here are prepared per
 * call). Returns what store__rows() returns. */
static int store_view__rows(sqlite3_stmt *st, store__row_fn row, void *data)
{
    int r = store__rows(st, -1, row, data);
    sqlite3_finalize(st);
    return r;
}

/* Steps a statement that returns no rows and finalizes it: changes() or -EIO. */
static int store_view__exec(store_t *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(store__db(s)) : -EIO;
}

int store_view_oof_set(store_t *s, int64_t sweep, int fit_no, const char *json)
{
    sqlite3_stmt *st =
            store_view__prepare(s, "INSERT INTO fit_oof (sweep, fit_no, data) VALUES (?1, ?2, ?3)"
                                   " ON CONFLICT (sweep) DO UPDATE SET fit_no = ?2, data = ?3");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, fit_no);
    sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    return store_view__exec(s, st) < 0 ? -EIO : 0;
}

int store_view_oof_get(store_t *s, int64_t sweep, char **ret)
{
    sqlite3_stmt *st = store_view__prepare(s, "SELECT data FROM fit_oof WHERE sweep = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    int rc = sqlite3_step(st), r = 0;
    *ret = NULL;
    if (rc == SQLITE_ROW) {
        if (!(*ret = strdup(store__text(st, 0))))
            r = -ENOMEM;
    } else if (rc != SQLITE_DONE) {
        r = -EIO;
    }
    sqlite3_finalize(st);
    return r;
}

int store_view_target_point(
        store_t *s, int64_t sweep, const char *role, int64_t step, double loss, int64_t now_ms)
{
    sqlite3_stmt *st = store_view__prepare(s, "INSERT INTO target_progress (sweep, role, step,"
                                              " loss, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, step);
    sqlite3_bind_double(st, 4, loss);
    sqlite3_bind_int64(st, 5, now_ms);
    return store_view__exec(s, st) < 0 ? -EIO : 0;
}

typedef struct {
    store_view_point_cb cb;
    void *data;
} store_view__point_t;

static int store_view__point_row(sqlite3_stmt *st, void *data)
{
    const store_view__point_t *x = data;
    return x->cb(sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1), x->data);
}

int store_view_target_curve(
        store_t *s, int64_t sweep, const char *role, int max, store_view_point_cb cb, void *data)
{
    /* Every k-th point by step (k so that at most about max remain), and the last one. */
    sqlite3_stmt *st = store_view__prepare(
            s, "WITH p AS (SELECT step, loss, row_number() OVER (ORDER BY step, rowid) - 1 AS i,"
               " count(*) OVER () AS n FROM target_progress WHERE sweep = ?1 AND role = ?2)"
               " SELECT step, loss FROM p WHERE i % ((n + ?3 - 1) / ?3) = 0 OR i = n - 1"
               " ORDER BY i");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, max > 0 ? max : 1);
    store_view__point_t x = {cb, data};
    int r = store_view__rows(st, store_view__point_row, &x);
    return r < 0 ? r : 0;
}

typedef struct {
    store_view_result_cb cb;
    void *data;
} store_view__result_t;

static int store_view__result_row(sqlite3_stmt *st, void *data)
{
    const store_view__result_t *x = data;
    store_view_result_t row = {
            .id = sqlite3_column_int64(st, 0),
            .run_idx = sqlite3_column_int(st, 1),
            .attempt_no = sqlite3_column_int(st, 2),
            .worker = store__text(st, 3),
            .weights = sqlite3_column_blob(st, 4),
            .nweights = sqlite3_column_bytes(st, 4) / (int)sizeof(double),
            .losses_json = store__text(st, 5),
            .seconds = sqlite3_column_double(st, 6),
    };
    return x->cb(&row, x->data);
}

int store_view_results_page(
        store_t *s, int64_t sweep, int64_t after, int limit, store_view_result_cb cb, void *data)
{
    sqlite3_stmt *st = store_view__prepare(
            s, "SELECT s.id, r.idx, a.attempt_no, s.worker, r.weights, s.losses, s.seconds"
               " FROM results s JOIN runs r ON r.id = s.run JOIN attempts a ON a.id = s.attempt"
               " WHERE s.sweep = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    store_view__result_t x = {cb, data};
    return store_view__rows(st, store_view__result_row, &x);
}

typedef struct {
    store_view_run_cb cb;
    void *data;
} store_view__run_t;

static int store_view__run_row(sqlite3_stmt *st, void *data)
{
    const store_view__run_t *x = data;
    store_view_run_t row = {
            .idx = sqlite3_column_int(st, 0),
            .state = store__text(st, 1),
            .attempts = sqlite3_column_int(st, 2),
            .weights = sqlite3_column_blob(st, 3),
            .nweights = sqlite3_column_bytes(st, 3) / (int)sizeof(double),
            .worker = store__text(st, 4),
            .losses_json = sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : store__text(st, 5),
    };
    return x->cb(&row, x->data);
}

int store_view_runs_page(
        store_t *s, int64_t sweep, int offset, int limit, store_view_run_cb cb, void *data)
{
    sqlite3_stmt *st = store_view__prepare(
            s, "SELECT r.idx, r.state, r.attempts, r.weights,"
               " (SELECT worker FROM attempts a WHERE a.run = r.id ORDER BY attempt_no DESC"
               "  LIMIT 1),"
               " (SELECT losses FROM results x WHERE x.run = r.id ORDER BY x.id LIMIT 1)"
               " FROM runs r WHERE r.sweep = ?1 AND r.idx >= ?2 ORDER BY r.idx LIMIT ?3");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, offset);
    sqlite3_bind_int(st, 3, limit);
    store_view__run_t x = {cb, data};
    return store_view__rows(st, store_view__run_row, &x);
}
