#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "states.h"

/* Numbered migrations: entry i brings user_version from i to i + 1. Never edit one that shipped;
 * append a new one. */
static const char *const store__migrations[] = {
        /* 0 -> 1: the job store */
        "CREATE TABLE sweeps ("
        "  id INTEGER PRIMARY KEY,"
        "  sweep_id TEXT UNIQUE,"
        "  name TEXT NOT NULL,"
        "  spec_yaml TEXT NOT NULL,"
        "  spec_name TEXT NOT NULL DEFAULT '',"
        "  state TEXT NOT NULL,"
        "  priority INTEGER NOT NULL DEFAULT 0,"
        "  gpus INTEGER NOT NULL DEFAULT 0,"
        "  max_attempts INTEGER NOT NULL,"
        "  backoff_ms INTEGER NOT NULL,"
        "  job BLOB,"
        "  ndomains INTEGER NOT NULL,"
        "  nruns INTEGER NOT NULL,"
        "  converged_after_runs INTEGER NOT NULL DEFAULT 0,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL);"
        "CREATE TABLE domains ("
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  idx INTEGER NOT NULL,"
        "  name TEXT NOT NULL,"
        "  tokens REAL NOT NULL,"
        "  prior REAL NOT NULL,"
        "  PRIMARY KEY (sweep, idx));"
        "CREATE TABLE runs ("
        "  id INTEGER PRIMARY KEY,"
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  idx INTEGER NOT NULL,"
        "  weights BLOB NOT NULL,"
        "  seed INTEGER NOT NULL,"
        "  state TEXT NOT NULL,"
        "  priority INTEGER NOT NULL,"
        "  gpus INTEGER NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  live_attempt INTEGER,"
        "  next_try_at INTEGER NOT NULL DEFAULT 0,"
        "  updated_ms INTEGER NOT NULL,"
        "  UNIQUE (sweep, idx));"
        /* The queue: queued runs by GPU need, priority, then FIFO (rowid order = submit order).
         * Partial indexes hold only the rows in that state, so a run costs index writes only
         * while it enters or leaves the queue, and done runs cost nothing. */
        "CREATE INDEX runs_queue ON runs (gpus, priority DESC, id) WHERE state = 'queued';"
        "CREATE INDEX runs_retry ON runs (next_try_at) WHERE state = 'failed';"
        "CREATE TABLE attempts ("
        "  id INTEGER PRIMARY KEY,"
        "  run INTEGER NOT NULL REFERENCES runs(id),"
        "  attempt_no INTEGER NOT NULL,"
        "  worker TEXT NOT NULL,"
        "  state TEXT NOT NULL,"
        "  gpu_indices TEXT NOT NULL DEFAULT '',"
        "  leased_ms INTEGER NOT NULL,"
        "  lease_deadline_ms INTEGER NOT NULL,"
        "  started_ms INTEGER,"
        "  ended_ms INTEGER,"
        "  exit_code INTEGER,"
        "  signal INTEGER,"
        "  reason TEXT,"
        "  UNIQUE (run, attempt_no));"
        "CREATE TABLE results ("
        "  id INTEGER PRIMARY KEY,"
        "  run INTEGER NOT NULL REFERENCES runs(id),"
        "  attempt INTEGER NOT NULL REFERENCES attempts(id),"
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  worker TEXT NOT NULL,"
        "  losses TEXT NOT NULL,"
        "  bits_per_byte TEXT NOT NULL DEFAULT '{}',"
        "  tokens INTEGER NOT NULL DEFAULT 0,"
        "  seconds REAL NOT NULL DEFAULT 0,"
        "  created_ms INTEGER NOT NULL,"
        "  UNIQUE (run, attempt));"
        "CREATE INDEX results_sweep ON results (sweep, id);"
        "CREATE TABLE progress ("
        "  attempt INTEGER NOT NULL,"
        "  step INTEGER NOT NULL,"
        "  loss REAL,"
        "  lr REAL,"
        "  tokens INTEGER,"
        "  tokens_per_second REAL,"
        "  created_ms INTEGER NOT NULL);"
        "CREATE INDEX progress_attempt ON progress (attempt, step);"
        "CREATE TABLE workers ("
        "  worker_id TEXT PRIMARY KEY,"
        "  host TEXT NOT NULL DEFAULT '',"
        "  boot_id TEXT NOT NULL DEFAULT '',"
        "  slots INTEGER NOT NULL DEFAULT 0,"
        "  gpus TEXT NOT NULL DEFAULT '[]',"
        "  state TEXT NOT NULL,"
        "  software_version TEXT NOT NULL DEFAULT '',"
        "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
        "  done INTEGER NOT NULL DEFAULT 0,"
        "  failed INTEGER NOT NULL DEFAULT 0,"
        "  first_seen_ms INTEGER NOT NULL,"
        "  last_seen_ms INTEGER NOT NULL);",
        /* 1 -> 2: the fitter's and the launcher's tables */
        "CREATE TABLE fits ("
        "  id INTEGER PRIMARY KEY,"
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  fit_no INTEGER NOT NULL,"
        "  runs_used INTEGER NOT NULL,"
        "  model TEXT NOT NULL,"
        "  metrics TEXT NOT NULL DEFAULT '{}',"
        "  proposal TEXT NOT NULL DEFAULT '{}',"
        "  predicted REAL,"
        "  l1_moved REAL,"
        "  seconds REAL,"
        "  created_ms INTEGER NOT NULL,"
        "  UNIQUE (sweep, fit_no));"
        "CREATE TABLE targets ("
        "  id INTEGER PRIMARY KEY,"
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  role TEXT NOT NULL,"
        "  state TEXT NOT NULL,"
        "  launcher TEXT NOT NULL,"
        "  ranks INTEGER NOT NULL DEFAULT 1,"
        "  pid INTEGER,"
        "  log_path TEXT,"
        "  weights TEXT NOT NULL DEFAULT '{}',"
        "  losses TEXT NOT NULL DEFAULT '{}',"
        "  objective REAL,"
        "  step INTEGER,"
        "  loss REAL,"
        "  detail TEXT,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL,"
        "  UNIQUE (sweep, role));"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        /* 2 -> 3: what the dashboard and the report draw (store_view.h): the latest fit's
         * out-of-fold predictions per sweep, and the target runs' loss curves (thinned as
         * progress is). */
        "CREATE TABLE fit_oof ("
        "  sweep INTEGER PRIMARY KEY REFERENCES sweeps(id),"
        "  fit_no INTEGER NOT NULL,"
        "  data TEXT NOT NULL);"
        "CREATE TABLE target_progress ("
        "  sweep INTEGER NOT NULL REFERENCES sweeps(id),"
        "  role TEXT NOT NULL,"
        "  step INTEGER NOT NULL,"
        "  loss REAL NOT NULL,"
        "  created_ms INTEGER NOT NULL);"
        "CREATE INDEX target_progress_of ON target_progress (sweep, role, step);",
        /* 3 -> 4: the launched job's handle (coordinator/follow.h: pid@start time, Slurm job id,
         * MPIJob namespace/name), so a restarted coordinator follows the same job; and the words
         * of the old submit-only life cycle moved onto the one every launcher shares: a
         * 'submitting' row (sbatch/kubectl never answered) and a 'submitted' one (no job id kept)
         * cannot be followed, so they are failed with the reason. */
        "ALTER TABLE targets ADD COLUMN handle TEXT NOT NULL DEFAULT '';"
        "UPDATE targets SET state = 'failed', detail = 'submitted before this coordinator "
        "version kept job ids: its job cannot be followed; `regmixctl launch` starts it again' "
        "WHERE state IN ('submitting', 'submitted');",
        /* 4 -> 5: an active sweep's rounds closed (a refit failed to choose one; docs/search.md),
         * so a restarted coordinator lets the sweep end instead of waiting for a round again. */
        "ALTER TABLE sweeps ADD COLUMN rounds_closed INTEGER NOT NULL DEFAULT 0;",
};

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_SWEEP_INSERT,
    ST_SWEEP_SET_ID,
    ST_SWEEP_SET_STATE,
    ST_SWEEPS_ALL,
    ST_SWEEP_LOADED,
    ST_LOADING_RUNS_DROP,
    ST_LOADING_DOMAINS_DROP,
    ST_LOADING_SWEEPS_DROP,
    ST_DOMAIN_INSERT,
    ST_DOMAINS_OF,
    ST_RUN_INSERT,
    ST_RUN_COUNTS,
    ST_QUEUE_FETCH,
    ST_RUN_WEIGHTS,
    ST_RUNS_OPEN_WEIGHTS,
    ST_RUN_CLAIM,
    ST_RUN_FINISH,
    ST_RUN_STARTED,
    ST_RUNS_MOVE,
    ST_RUN_LOOKUP,
    ST_RUN_SET_STATE,
    ST_RUNS_RETRY,
    ST_RUNS_NEXT_RETRY,
    ST_ATTEMPT_MAX,
    ST_ATTEMPT_INSERT,
    ST_ATTEMPT_SET_STATE,
    ST_ATTEMPT_STARTED,
    ST_ATTEMPT_FAILED,
    ST_ATTEMPTS_LIVE,
    ST_RESULT_INSERT,
    ST_RESULTS_OF,
    ST_RESULTS_PAGE,
    ST_RESULTS_COUNT,
    ST_PROGRESS_INSERT,
    ST_WORKER_UPSERT,
    ST_WORKERS_ALL,
    ST_WORKER_DELETE,
    ST_FIT_INSERT,
    ST_FITS_OF,
    ST_SWEEP_CONVERGED,
    ST_SWEEP_NRUNS,
    ST_SWEEP_ROUNDS_CLOSED,
    ST_TARGET_UPSERT,
    ST_TARGETS_ALL,
    ST__COUNT
};

static const char *const store__sql[ST__COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_SAVEPOINT] = "SAVEPOINT unit",
        [ST_RELEASE] = "RELEASE unit",
        [ST_ROLLBACK_TO] = "ROLLBACK TO unit",
        [ST_SWEEP_INSERT] =
                "INSERT INTO sweeps (name, spec_yaml, spec_name, state, priority, gpus,"
                " max_attempts, backoff_ms, job, ndomains, nruns, created_ms, updated_ms)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        [ST_SWEEP_SET_ID] = "UPDATE sweeps SET sweep_id = ?2 WHERE id = ?1",
        [ST_SWEEP_SET_STATE] = "UPDATE sweeps SET state = ?2, updated_ms = ?3 WHERE id = ?1",
        [ST_SWEEP_LOADED] = "UPDATE sweeps SET state = 'running', updated_ms = ?2"
                            " WHERE id = ?1 AND state = 'loading'",
        [ST_LOADING_RUNS_DROP] = "DELETE FROM runs WHERE sweep IN (SELECT id FROM sweeps"
                                 " WHERE state = 'loading' AND (?1 = 0 OR id = ?1))",
        [ST_LOADING_DOMAINS_DROP] = "DELETE FROM domains WHERE sweep IN (SELECT id FROM sweeps"
                                    " WHERE state = 'loading' AND (?1 = 0 OR id = ?1))",
        [ST_LOADING_SWEEPS_DROP] = "DELETE FROM sweeps WHERE state = 'loading'"
                                   " AND (?1 = 0 OR id = ?1)",
        [ST_SWEEPS_ALL] = "SELECT id, sweep_id, name, spec_yaml, spec_name, state, priority, gpus,"
                          " max_attempts, backoff_ms, job, ndomains, nruns, created_ms,"
                          " updated_ms, converged_after_runs, rounds_closed FROM sweeps"
                          " ORDER BY id",
        [ST_DOMAIN_INSERT] = "INSERT INTO domains (sweep, idx, name, tokens, prior)"
                             " VALUES (?1, ?2, ?3, ?4, ?5)",
        [ST_DOMAINS_OF] = "SELECT idx, name, tokens, prior FROM domains WHERE sweep = ?1"
                          " ORDER BY idx",
        [ST_RUN_INSERT] = "INSERT INTO runs (sweep, idx, weights, seed, state, priority, gpus,"
                          " updated_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)",
        [ST_RUN_COUNTS] = "SELECT sweep, state, count(*) FROM runs GROUP BY sweep, state",
        [ST_QUEUE_FETCH] = "SELECT id, sweep, idx, attempts, priority, seed FROM runs"
                           " WHERE state = 'queued' AND gpus = ?1"
                           " ORDER BY priority DESC, id LIMIT ?2",
        [ST_RUN_WEIGHTS] = "SELECT weights FROM runs WHERE id = ?1",
        [ST_RUNS_OPEN_WEIGHTS] = "SELECT weights FROM runs WHERE sweep = ?1"
                                 " AND state IN ('queued', 'leased', 'running', 'failed')"
                                 " ORDER BY idx LIMIT ?2",
        [ST_RUN_CLAIM] = "UPDATE runs SET state = 'leased', attempts = attempts + 1,"
                         " live_attempt = ?2, updated_ms = ?3 WHERE id = ?1 AND state = 'queued'",
        [ST_RUN_FINISH] = "UPDATE runs SET state = ?3, next_try_at = ?4, updated_ms = ?5"
                          " WHERE id = ?1 AND live_attempt = ?2"
                          " AND state IN ('leased', 'running')",
        [ST_RUN_STARTED] = "UPDATE runs SET state = 'running', updated_ms = ?3"
                           " WHERE id = ?1 AND live_attempt = ?2 AND state = 'leased'",
        [ST_RUNS_MOVE] = "UPDATE runs SET state = ?3, updated_ms = ?4"
                         " WHERE sweep = ?1 AND state = ?2",
        [ST_RUN_LOOKUP] = "SELECT id, state, coalesce(live_attempt, 0) FROM runs"
                          " WHERE sweep = ?1 AND idx = ?2",
        [ST_RUN_SET_STATE] = "UPDATE runs SET state = ?3, updated_ms = ?4"
                             " WHERE id = ?1 AND state = ?2",
        [ST_RUNS_RETRY] = "UPDATE runs SET state = 'queued', updated_ms = ?1"
                          " WHERE state = 'failed' AND next_try_at <= ?1 RETURNING sweep",
        [ST_RUNS_NEXT_RETRY] = "SELECT min(next_try_at) FROM runs WHERE state = 'failed'",
        [ST_ATTEMPT_MAX] = "SELECT coalesce(max(id), 0) FROM attempts",
        [ST_ATTEMPT_INSERT] = "INSERT INTO attempts (id, run, attempt_no, worker, state,"
                              " gpu_indices, leased_ms, lease_deadline_ms)"
                              " VALUES (?1, ?2, ?3, ?4, 'leased', ?5, ?6, ?7)",
        [ST_ATTEMPT_SET_STATE] = "UPDATE attempts SET state = ?2, ended_ms = ?3 WHERE id = ?1",
        [ST_ATTEMPT_STARTED] = "UPDATE attempts SET state = 'running', started_ms = ?2"
                               " WHERE id = ?1 AND state = 'leased'",
        [ST_ATTEMPT_FAILED] = "UPDATE attempts SET state = ?2, exit_code = ?3, signal = ?4,"
                              " reason = ?5, ended_ms = ?6 WHERE id = ?1",
        [ST_ATTEMPTS_LIVE] = "SELECT a.id, a.run, r.sweep, r.idx, a.attempt_no, a.worker,"
                             " a.state, a.gpu_indices FROM attempts a JOIN runs r ON r.id = a.run"
                             " WHERE a.state IN ('leased', 'running')",
        [ST_RESULT_INSERT] = "INSERT OR IGNORE INTO results (run, attempt, sweep, worker, losses,"
                             " bits_per_byte, tokens, seconds, created_ms)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        [ST_RESULTS_OF] = "SELECT r.idx, a.attempt_no, s.worker, r.weights, s.losses, s.seconds"
                          " FROM runs r JOIN results s ON s.run = r.id"
                          " JOIN attempts a ON a.id = s.attempt"
                          " WHERE r.sweep = ?1 AND r.idx > ?2 AND r.idx <= ?3 ORDER BY r.idx",
        [ST_RESULTS_PAGE] = "SELECT r.idx, a.attempt_no, s.worker, r.weights, s.losses, s.seconds"
                            " FROM runs r JOIN results s ON s.run = r.id"
                            " JOIN attempts a ON a.id = s.attempt"
                            " WHERE r.sweep = ?1 AND r.idx > ?2 ORDER BY r.idx LIMIT ?3",
        [ST_RESULTS_COUNT] = "SELECT count(*) FROM results WHERE sweep = ?1",
        [ST_PROGRESS_INSERT] =
                "INSERT INTO progress (attempt, step, loss, lr, tokens,"
                " tokens_per_second, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [ST_WORKER_UPSERT] =
                "INSERT INTO workers (worker_id, host, boot_id, slots, gpus, state,"
                " software_version, consecutive_failures, done, failed, first_seen_ms,"
                " last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                " ON CONFLICT (worker_id) DO UPDATE SET host = ?2, boot_id = ?3, slots = ?4,"
                " gpus = ?5, state = ?6, software_version = ?7, consecutive_failures = ?8,"
                " done = ?9, failed = ?10, last_seen_ms = ?12",
        [ST_WORKERS_ALL] = "SELECT worker_id, host, boot_id, gpus, state, software_version,"
                           " slots, consecutive_failures, last_seen_ms, done, failed FROM workers"
                           " ORDER BY worker_id",
        [ST_WORKER_DELETE] = "DELETE FROM workers WHERE worker_id = ?1",
        [ST_FIT_INSERT] = "INSERT INTO fits (sweep, fit_no, runs_used, model, metrics, proposal,"
                          " predicted, l1_moved, seconds, created_ms)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [ST_FITS_OF] = "SELECT sweep, fit_no, runs_used, model, metrics, proposal, predicted,"
                       " l1_moved, seconds, created_ms FROM fits WHERE sweep = ?1 AND fit_no > ?2"
                       " ORDER BY fit_no",
        [ST_TARGET_UPSERT] =
                "INSERT INTO targets (sweep, role, state, launcher, ranks, pid, log_path, weights,"
                " losses, objective, step, loss, detail, created_ms, updated_ms, handle)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                " ON CONFLICT (sweep, role) DO UPDATE SET state = ?3, launcher = ?4, ranks = ?5,"
                " pid = ?6, log_path = ?7, weights = ?8, losses = ?9, objective = ?10, step = ?11,"
                " loss = ?12, detail = ?13, updated_ms = ?15, handle = ?16",
        [ST_TARGETS_ALL] = "SELECT sweep, role, state, launcher, ranks, coalesce(pid, 0), log_path,"
                           " weights, losses, objective, coalesce(step, 0), loss, detail,"
                           " created_ms, updated_ms, handle FROM targets ORDER BY sweep, role",
        [ST_SWEEP_CONVERGED] = "UPDATE sweeps SET state = 'converged', converged_after_runs = ?2,"
                               " updated_ms = ?3 WHERE id = ?1",
        [ST_SWEEP_NRUNS] = "UPDATE sweeps SET nruns = ?2, updated_ms = ?3 WHERE id = ?1",
        [ST_SWEEP_ROUNDS_CLOSED] = "UPDATE sweeps SET rounds_closed = 1, updated_ms = ?2"
                                   " WHERE id = ?1",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    int lock_fd;
    int in_txn;
    int version;
};

sqlite3 *store__db(store_t *s)
{
    return s->db;
}

const char *store_errmsg(store_t *s)
{
    return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

int store_schema_version(store_t *s)
{
    return s->version;
}

/* Returns the statement reset and with its bindings cleared. */
static sqlite3_stmt *store__stmt(store_t *s, int id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows; returns changes() or -EIO. */
static int store__exec(store_t *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
    return sqlite3_changes(s->db);
}

static int store__exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (err)
            snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

const char *store__text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

int store__rows(sqlite3_stmt *st, int max, store__row_fn row, void *data)
{
    int n = 0, r = 0, rc = SQLITE_DONE;
    while ((max < 0 || n < max) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row && (r = row(st, data)) < 0)
            break;
        n++;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -EIO;
}

/* The first column of a one-row query as an integer; *(int64_t *)data keeps its value for NULL. */
static int store__int64_row(sqlite3_stmt *st, void *data)
{
    if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        *(int64_t *)data = sqlite3_column_int64(st, 0);
    return 0;
}

static int store__migrate(store_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    int64_t found = -1;
    int version = store__rows(st, 1, store__int64_row, &found) == 1 ? (int)found : -1;
    sqlite3_finalize(st);
    if (version < 0)
        return -EIO;
    int n = (int)(sizeof store__migrations / sizeof store__migrations[0]);
    if (version > n) {
        snprintf(err, errlen, "database schema version %d is newer than this program's %d", version,
                 n);
        return -EPROTO;
    }
    for (int v = version; v < n; v++) {
        char sql[64];
        if (store__exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen) < 0)
            return -EIO;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (store__exec_sql(s->db, store__migrations[v], err, errlen) < 0 ||
            store__exec_sql(s->db, sql, err, errlen) < 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -EIO;
        }
        if (store__exec_sql(s->db, "COMMIT", err, errlen) < 0)
            return -EIO;
    }
    s->version = n;
    return 0;
}

int store_set_synchronous(store_t *s, int full)
{
    char err[256];
    return store__exec_sql(s->db,
                           full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;",
                           err, sizeof err) < 0
                   ? -EIO
                   : 0;
}

int store_open(const char *path, store_t **ret, char *err, size_t errlen)
{
    store_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(s);
        return -e;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: in use by another coordinator", path);
        close(s->lock_fd);
        free(s);
        return -EBUSY;
    }
    int r = -EIO;
    /* NOMUTEX: one connection, used by the loop thread only. */
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL + synchronous=FULL: a commit is on disk (the WAL fsync'd) before anything it covers
     * is acknowledged, so not even an OS crash loses an acknowledged result, and attempt ids
     * (max + 1 at start) are never reused; the group commit keeps the fsyncs few
     * (bench/sched_bench.sh --durability measures it against NORMAL). The WAL is truncated to
     * 64 MiB after each checkpoint. Exclusive locking: the coordinator is the database's only
     * user (docs/store.md), so SQLite takes its file locks once instead of per transaction and
     * keeps the WAL index in memory. */
    if (store__exec_sql(s->db,
                        "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;"
                        " PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864;"
                        " PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
                        " PRAGMA cache_size = -65536;",
                        err, errlen) < 0)
        goto fail;
    r = store__migrate(s, err, errlen);
    if (r < 0)
        goto fail;
    for (int i = 0; i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, store__sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "preparing statement %d: %s", i, sqlite3_errmsg(s->db));
            r = -EIO;
            goto fail;
        }
    }
    *ret = s;
    return 0;
fail:
    store_close(&s);
    return r;
}

void store_close(store_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    store_t *s = *s_p;
    *s_p = NULL;
    if (s->in_txn)
        store_commit(s);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
}

int store_begin(store_t *s)
{
    if (s->in_txn)
        return 0;
    int r = store__exec(s, store__stmt(s, ST_BEGIN));
    if (r < 0)
        return r;
    s->in_txn = 1;
    return 0;
}

int store_commit(store_t *s)
{
    if (!s->in_txn)
        return 0;
    int r = store__exec(s, store__stmt(s, ST_COMMIT));
    if (r < 0)
        return r;
    s->in_txn = 0;
    return 0;
}

void store_rollback(store_t *s)
{
    if (!s->in_txn)
        return;
    store__exec(s, store__stmt(s, ST_ROLLBACK));
    s->in_txn = 0;
}

int store_in_txn(const store_t *s)
{
    return s->in_txn;
}

int store_savepoint(store_t *s)
{
    int r = store_begin(s);
    if (r < 0)
        return r;
    r = store__exec(s, store__stmt(s, ST_SAVEPOINT));
    return r < 0 ? r : 0;
}

int store_savepoint_release(store_t *s)
{
    int r = store__exec(s, store__stmt(s, ST_RELEASE));
    return r < 0 ? r : 0;
}

void store_savepoint_rollback(store_t *s)
{
    store__exec(s, store__stmt(s, ST_ROLLBACK_TO));
    store__exec(s, store__stmt(s, ST_RELEASE));
}

/* ---- sweeps and domains --------------------------------------------------------------------- */

int store_sweep_insert(store_t *s,
                       const store_sweep_row_t *row,
                       int64_t *ret_id,
                       char *ret_sweep_id)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_INSERT);
    sqlite3_bind_text(st, 1, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->spec_yaml, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->spec_name ? row->spec_name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->loading ? "loading" : states_sweep_name(row->state), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 5, row->priority);
    sqlite3_bind_int(st, 6, row->gpus);
    sqlite3_bind_int(st, 7, row->max_attempts);
    sqlite3_bind_int(st, 8, row->backoff_ms);
    sqlite3_bind_blob(st, 9, row->job, (int)row->job_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, row->ndomains);
    sqlite3_bind_int(st, 11, row->nruns);
    sqlite3_bind_int64(st, 12, row->created_ms);
    int r = store__exec(s, st);
    if (r < 0)
        return r;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    char sid[32];
    snprintf(sid, sizeof sid, "sw%06lld", (long long)id);
    st = store__stmt(s, ST_SWEEP_SET_ID);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
    r = store__exec(s, st);
    if (r < 0)
        return r;
    *ret_id = id;
    memcpy(ret_sweep_id, sid, strlen(sid) + 1);
    return 0;
}

int store_sweep_set_state(store_t *s, int64_t id, sweep_state_t state, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_SET_STATE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, states_sweep_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

int store_sweep_loaded(store_t *s, int64_t id, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_LOADED);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    int r = store__exec(s, st);
    if (r < 0)
        return r;
    return r == 1 ? 0 : -ENOENT;
}

int store_sweeps_drop_loading(store_t *s, int64_t id, int *ret_dropped)
{
    static const int stmts[] = {ST_LOADING_RUNS_DROP, ST_LOADING_DOMAINS_DROP,
                                ST_LOADING_SWEEPS_DROP};
    int r = 0;
    for (size_t i = 0; r >= 0 && i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_stmt *st = store__stmt(s, stmts[i]);
        sqlite3_bind_int64(st, 1, id);
        r = store__exec(s, st);
    }
    if (r < 0)
        return r;
    if (ret_dropped)
        *ret_dropped = r;
    return 0;
}

typedef struct {
    store_sweep_cb cb;
    void *data;
} store__sweeps_t;

static int store__sweeps_row(sqlite3_stmt *st, void *data)
{
    const store__sweeps_t *x = data;
    store_sweep_row_t row = {
            .id = sqlite3_column_int64(st, 0),
            .sweep_id = store__text(st, 1),
            .name = store__text(st, 2),
            .spec_yaml = store__text(st, 3),
            .spec_name = store__text(st, 4),
            .state = states_sweep_parse(store__text(st, 5)),
            .priority = sqlite3_column_int(st, 6),
            .gpus = sqlite3_column_int(st, 7),
            .max_attempts = sqlite3_column_int(st, 8),
            .backoff_ms = sqlite3_column_int(st, 9),
            .job = sqlite3_column_blob(st, 10),
            .job_len = (size_t)sqlite3_column_bytes(st, 10),
            .ndomains = sqlite3_column_int(st, 11),
            .nruns = sqlite3_column_int(st, 12),
            .created_ms = sqlite3_column_int64(st, 13),
            .updated_ms = sqlite3_column_int64(st, 14),
            .converged_after_runs = sqlite3_column_int(st, 15),
            .rounds_closed = sqlite3_column_int(st, 16),
    };
    return x->cb(&row, x->data);
}

int store_sweeps_foreach(store_t *s, store_sweep_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEPS_ALL);
    store__sweeps_t x = {cb, data};
    int r = store__rows(st, -1, store__sweeps_row, &x);
    return r < 0 ? r : 0;
}

int store_domain_insert(
        store_t *s, int64_t sweep, int idx, const char *name, double tokens, double prior)
{
    sqlite3_stmt *st = store__stmt(s, ST_DOMAIN_INSERT);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, idx);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, tokens);
    sqlite3_bind_double(st, 5, prior);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

typedef struct {
    store_domain_cb cb;
    void *data;
} store__domains_t;

static int store__domains_row(sqlite3_stmt *st, void *data)
{
    const store__domains_t *x = data;
    return x->cb(sqlite3_column_int(st, 0), store__text(st, 1), sqlite3_column_double(st, 2),
                 sqlite3_column_double(st, 3), x->data);
}

int store_domains_foreach(store_t *s, int64_t sweep, store_domain_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_DOMAINS_OF);
    sqlite3_bind_int64(st, 1, sweep);
    store__domains_t x = {cb, data};
    int r = store__rows(st, -1, store__domains_row, &x);
    return r < 0 ? r : 0;
}

/* ---- runs ------------------------------------------------------------------------------------ */

int store_run_insert(store_t *s,
                     int64_t sweep,
                     int idx,
                     uint64_t seed,
                     const double *w,
                     int n,
                     int priority,
                     int gpus,
                     int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_INSERT);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, idx);
    sqlite3_bind_blob(st, 3, w, n * (int)sizeof(double), SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)seed);
    sqlite3_bind_int(st, 5, priority);
    sqlite3_bind_int(st, 6, gpus);
    sqlite3_bind_int64(st, 7, now_ms);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

typedef struct {
    store_count_cb cb;
    void *data;
} store__run_counts_t;

static int store__run_counts_row(sqlite3_stmt *st, void *data)
{
    const store__run_counts_t *x = data;
    return x->cb(sqlite3_column_int64(st, 0), states_run_parse(store__text(st, 1)),
                 sqlite3_column_int64(st, 2), x->data);
}

int store_run_counts(store_t *s, store_count_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_COUNTS);
    store__run_counts_t x = {cb, data};
    int r = store__rows(st, -1, store__run_counts_row, &x);
    return r < 0 ? r : 0;
}

/* Fills *(store_queued_t **)data and moves it to the next slot. */
static int store__queued_row(sqlite3_stmt *st, void *data)
{
    store_queued_t **q = data;
    (*q)->run = sqlite3_column_int64(st, 0);
    (*q)->sweep = sqlite3_column_int64(st, 1);
    (*q)->idx = sqlite3_column_int(st, 2);
    (*q)->attempts = sqlite3_column_int(st, 3);
    (*q)->priority = sqlite3_column_int(st, 4);
    (*q)->seed = (uint64_t)sqlite3_column_int64(st, 5);
    (*q)++;
    return 0;
}

int store_queue_fetch(store_t *s, int gpus, int max, store_queued_t *out)
{
    sqlite3_stmt *st = store__stmt(s, ST_QUEUE_FETCH);
    sqlite3_bind_int(st, 1, gpus);
    sqlite3_bind_int(st, 2, max);
    store_queued_t *next = out;
    int n = store__rows(st, max, store__queued_row, &next);
    return n > 0 ? n : 0;
}

typedef struct {
    double *w;
    int n; /* room, then how many were copied */
} store__weights_t;

static int store__weights_row(sqlite3_stmt *st, void *data)
{
    store__weights_t *x = data;
    int have = sqlite3_column_bytes(st, 0) / (int)sizeof(double);
    if (have > x->n)
        have = x->n;
    if (have > 0)
        memcpy(x->w, sqlite3_column_blob(st, 0), (size_t)have * sizeof(double));
    x->n = have > 0 ? have : 0;
    return 0;
}

int store_run_weights(store_t *s, int64_t run, double *w, int n)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_WEIGHTS);
    sqlite3_bind_int64(st, 1, run);
    store__weights_t x = {.w = w, .n = n};
    int r = store__rows(st, 1, store__weights_row, &x);
    return r < 0 ? r : r == 0 ? -ENOENT : x.n;
}

typedef struct {
    double *w;
    int d, n; /* columns; rows copied */
} store__open_t;

static int store__open_row(sqlite3_stmt *st, void *data)
{
    store__open_t *x = data;
    double *w = x->w + (size_t)x->n * (size_t)x->d;
    int have = sqlite3_column_bytes(st, 0) / (int)sizeof(double);
    for (int j = 0; j < x->d; j++)
        w[j] = 0;
    if (have > x->d)
        have = x->d;
    if (have > 0)
        memcpy(w, sqlite3_column_blob(st, 0), (size_t)have * sizeof(double));
    x->n++;
    return 0;
}

int store_runs_open_weights(store_t *s, int64_t sweep, int d, int max, double *w)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUNS_OPEN_WEIGHTS);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, max);
    store__open_t x = {.w = w, .d = d};
    int r = store__rows(st, max, store__open_row, &x);
    return r < 0 ? r : x.n;
}

int store_run_claim(store_t *s, int64_t run, int64_t attempt, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_CLAIM);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

int store_run_finish(store_t *s,
                     int64_t run,
                     int64_t attempt,
                     run_state_t state,
                     int64_t next_try_at,
                     int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_FINISH);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, states_run_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, next_try_at);
    sqlite3_bind_int64(st, 5, now_ms);
    return store__exec(s, st);
}

int store_run_started(store_t *s, int64_t run, int64_t attempt, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_STARTED);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

int store_runs_move(store_t *s, int64_t sweep, run_state_t from, run_state_t to, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUNS_MOVE);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_text(st, 2, states_run_name(from), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, states_run_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return store__exec(s, st);
}

typedef struct {
    int64_t run, live;
    run_state_t state;
} store__lookup_t;

static int store__lookup_row(sqlite3_stmt *st, void *data)
{
    store__lookup_t *x = data;
    x->run = sqlite3_column_int64(st, 0);
    x->state = states_run_parse(store__text(st, 1));
    x->live = sqlite3_column_int64(st, 2);
    return 0;
}

int store_run_lookup(store_t *s,
                     int64_t sweep,
                     int idx,
                     int64_t *ret_run,
                     run_state_t *ret_state,
                     int64_t *ret_live)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_LOOKUP);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, idx);
    store__lookup_t x = {0};
    int r = store__rows(st, 1, store__lookup_row, &x);
    if (r <= 0)
        return r < 0 ? r : -ENOENT;
    *ret_run = x.run;
    *ret_state = x.state;
    *ret_live = x.live;
    return 0;
}

int store_run_set_state(store_t *s, int64_t run, run_state_t from, run_state_t to, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUN_SET_STATE);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, states_run_name(from), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, states_run_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return store__exec(s, st);
}

typedef struct {
    store_retry_cb cb;
    void *data;
} store__retry_t;

static int store__retry_row(sqlite3_stmt *st, void *data)
{
    const store__retry_t *x = data;
    x->cb(sqlite3_column_int64(st, 0), x->data);
    return 0;
}

int store_runs_retry_due(store_t *s, int64_t now_ms, store_retry_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUNS_RETRY);
    sqlite3_bind_int64(st, 1, now_ms);
    store__retry_t x = {cb, data};
    return store__rows(st, -1, store__retry_row, &x);
}

int64_t store_runs_next_retry(store_t *s)
{
    sqlite3_stmt *st = store__stmt(s, ST_RUNS_NEXT_RETRY);
    int64_t t = INT64_MAX;
    store__rows(st, 1, store__int64_row, &t);
    return t;
}

/* ---- attempts -------------------------------------------------------------------------------- */

int64_t store_attempt_max_id(store_t *s)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPT_MAX);
    int64_t id = 0;
    store__rows(st, 1, store__int64_row, &id);
    return id;
}

int store_attempt_insert(store_t *s,
                         int64_t id,
                         int64_t run,
                         int attempt_no,
                         const char *worker,
                         const char *gpu_indices,
                         int64_t now_ms,
                         int64_t lease_deadline_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPT_INSERT);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, run);
    sqlite3_bind_int(st, 3, attempt_no);
    sqlite3_bind_text(st, 4, worker, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, gpu_indices ? gpu_indices : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    sqlite3_bind_int64(st, 7, lease_deadline_ms);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

int store_attempt_set_state(store_t *s, int64_t id, attempt_state_t state, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPT_SET_STATE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, states_attempt_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

int store_attempt_started(store_t *s, int64_t id, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPT_STARTED);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    return store__exec(s, st);
}

int store_attempt_failed(store_t *s,
                         int64_t id,
                         attempt_state_t state,
                         int exit_code,
                         int sig,
                         const char *reason,
                         int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPT_FAILED);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, states_attempt_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, exit_code);
    sqlite3_bind_int(st, 4, sig);
    sqlite3_bind_text(st, 5, reason ? reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    return store__exec(s, st);
}

typedef struct {
    store_attempt_cb cb;
    void *data;
} store__attempts_live_t;

static int store__attempts_live_row(sqlite3_stmt *st, void *data)
{
    const store__attempts_live_t *x = data;
    store_attempt_row_t row = {
            .id = sqlite3_column_int64(st, 0),
            .run = sqlite3_column_int64(st, 1),
            .sweep = sqlite3_column_int64(st, 2),
            .run_idx = sqlite3_column_int(st, 3),
            .attempt_no = sqlite3_column_int(st, 4),
            .worker = store__text(st, 5),
            .state = states_attempt_parse(store__text(st, 6)),
            .gpu_indices = store__text(st, 7),
    };
    return x->cb(&row, x->data);
}

int store_attempts_live(store_t *s, store_attempt_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_ATTEMPTS_LIVE);
    store__attempts_live_t x = {cb, data};
    int r = store__rows(st, -1, store__attempts_live_row, &x);
    return r < 0 ? r : 0;
}

/* ---- results and progress ---------------------------------------------------------------------- */

int store_result_insert(store_t *s,
                        int64_t run,
                        int64_t attempt,
                        int64_t sweep,
                        const char *worker,
                        const char *losses_json,
                        const char *bpb_json,
                        uint64_t tokens,
                        double seconds,
                        int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_RESULT_INSERT);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int64(st, 3, sweep);
    sqlite3_bind_text(st, 4, worker, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, losses_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, bpb_json ? bpb_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)tokens);
    sqlite3_bind_double(st, 8, seconds);
    sqlite3_bind_int64(st, 9, now_ms);
    return store__exec(s, st);
}

typedef struct {
    store_result_cb cb;
    void *data;
} store__results_t;

static int store__results_row(sqlite3_stmt *st, void *data)
{
    const store__results_t *x = data;
    store_result_row_t row = {
            .run_idx = sqlite3_column_int(st, 0),
            .attempt_no = sqlite3_column_int(st, 1),
            .worker = store__text(st, 2),
            .weights = sqlite3_column_blob(st, 3),
            .nweights = sqlite3_column_bytes(st, 3) / (int)sizeof(double),
            .losses_json = store__text(st, 4),
            .seconds = sqlite3_column_double(st, 5),
    };
    return x->cb(&row, x->data);
}

int store_results_range(store_t *s,
                        int64_t sweep,
                        int64_t after_idx,
                        int64_t last_idx,
                        store_result_cb cb,
                        void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_RESULTS_OF);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int64(st, 2, after_idx);
    sqlite3_bind_int64(st, 3, last_idx);
    store__results_t x = {cb, data};
    int r = store__rows(st, -1, store__results_row, &x);
    return r < 0 ? r : 0;
}

int store_results_page(
        store_t *s, int64_t sweep, int64_t after_idx, int limit, store_result_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_RESULTS_PAGE);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int64(st, 2, after_idx);
    sqlite3_bind_int(st, 3, limit);
    store__results_t x = {cb, data};
    return store__rows(st, -1, store__results_row, &x);
}

int store_results_count(store_t *s, int64_t sweep)
{
    sqlite3_stmt *st = store__stmt(s, ST_RESULTS_COUNT);
    sqlite3_bind_int64(st, 1, sweep);
    int64_t n = -EIO;
    int r = store__rows(st, 1, store__int64_row, &n);
    return r == 1 ? (int)n : -EIO;
}

int store_progress_insert(store_t *s,
                          int64_t attempt,
                          uint64_t step,
                          double loss,
                          double lr,
                          uint64_t tokens,
                          double tps,
                          int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_PROGRESS_INSERT);
    sqlite3_bind_int64(st, 1, attempt);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)step);
    sqlite3_bind_double(st, 3, loss);
    sqlite3_bind_double(st, 4, lr);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)tokens);
    sqlite3_bind_double(st, 6, tps);
    sqlite3_bind_int64(st, 7, now_ms);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

/* ---- workers --------------------------------------------------------------------------------- */

int store_worker_upsert(store_t *s, const store_worker_row_t *row, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_WORKER_UPSERT);
    sqlite3_bind_text(st, 1, row->worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->host ? row->host : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->boot_id ? row->boot_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, row->slots);
    sqlite3_bind_text(st, 5, row->gpus_json ? row->gpus_json : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, states_worker_name(row->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, row->software_version ? row->software_version : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, row->consecutive_failures);
    sqlite3_bind_int64(st, 9, row->done);
    sqlite3_bind_int64(st, 10, row->failed);
    sqlite3_bind_int64(st, 11, now_ms);
    sqlite3_bind_int64(st, 12, row->last_seen_ms);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

int store_worker_delete(store_t *s, const char *worker_id)
{
    sqlite3_stmt *st = store__stmt(s, ST_WORKER_DELETE);
    sqlite3_bind_text(st, 1, worker_id, -1, SQLITE_STATIC);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

typedef struct {
    store_worker_cb cb;
    void *data;
} store__workers_t;

static int store__workers_row(sqlite3_stmt *st, void *data)
{
    const store__workers_t *x = data;
    store_worker_row_t row = {
            .worker_id = store__text(st, 0),
            .host = store__text(st, 1),
            .boot_id = store__text(st, 2),
            .gpus_json = store__text(st, 3),
            .state = states_worker_parse(store__text(st, 4)),
            .software_version = store__text(st, 5),
            .slots = sqlite3_column_int(st, 6),
            .consecutive_failures = sqlite3_column_int(st, 7),
            .last_seen_ms = sqlite3_column_int64(st, 8),
            .done = sqlite3_column_int64(st, 9),
            .failed = sqlite3_column_int64(st, 10),
    };
    return x->cb(&row, x->data);
}

int store_workers_foreach(store_t *s, store_worker_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_WORKERS_ALL);
    store__workers_t x = {cb, data};
    int r = store__rows(st, -1, store__workers_row, &x);
    return r < 0 ? r : 0;
}

/* ---- fits ------------------------------------------------------------------------------------ */

static void store__bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

int store_fit_insert(store_t *s, const store_fit_row_t *row)
{
    sqlite3_stmt *st = store__stmt(s, ST_FIT_INSERT);
    sqlite3_bind_int64(st, 1, row->sweep);
    sqlite3_bind_int(st, 2, row->fit_no);
    sqlite3_bind_int(st, 3, row->runs_used);
    sqlite3_bind_text(st, 4, row->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, row->metrics_json ? row->metrics_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, row->proposal_json ? row->proposal_json : "{}", -1, SQLITE_STATIC);
    store__bind_real(st, 7, row->predicted);
    store__bind_real(st, 8, row->l1_moved);
    store__bind_real(st, 9, row->seconds);
    sqlite3_bind_int64(st, 10, row->created_ms);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

static double store__real(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

typedef struct {
    store_fit_cb cb;
    void *data;
} store__fits_t;

static int store__fits_row(sqlite3_stmt *st, void *data)
{
    const store__fits_t *x = data;
    store_fit_row_t row = {
            .sweep = sqlite3_column_int64(st, 0),
            .fit_no = sqlite3_column_int(st, 1),
            .runs_used = sqlite3_column_int(st, 2),
            .model = store__text(st, 3),
            .metrics_json = store__text(st, 4),
            .proposal_json = store__text(st, 5),
            .predicted = store__real(st, 6),
            .l1_moved = store__real(st, 7),
            .seconds = store__real(st, 8),
            .created_ms = sqlite3_column_int64(st, 9),
    };
    return x->cb(&row, x->data);
}

int store_fits_foreach(store_t *s, int64_t sweep, store_fit_cb cb, void *data)
{
    return store_fits_after(s, sweep, 0, cb, data);
}

int store_fits_after(store_t *s, int64_t sweep, int after, store_fit_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_FITS_OF);
    sqlite3_bind_int64(st, 1, sweep);
    sqlite3_bind_int(st, 2, after);
    store__fits_t x = {cb, data};
    int r = store__rows(st, -1, store__fits_row, &x);
    return r < 0 ? r : 0;
}

int store_sweep_converged(store_t *s, int64_t id, int runs, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_CONVERGED);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, runs);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

int store_sweep_close_rounds(store_t *s, int64_t id, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_ROUNDS_CLOSED);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    return store__exec(s, st);
}

int store_sweep_set_nruns(store_t *s, int64_t id, int nruns, int64_t now_ms)
{
    sqlite3_stmt *st = store__stmt(s, ST_SWEEP_NRUNS);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, nruns);
    sqlite3_bind_int64(st, 3, now_ms);
    return store__exec(s, st);
}

/* ---- targets --------------------------------------------------------------------------------- */

int store_target_upsert(store_t *s, const store_target_row_t *row)
{
    sqlite3_stmt *st = store__stmt(s, ST_TARGET_UPSERT);
    sqlite3_bind_int64(st, 1, row->sweep);
    sqlite3_bind_text(st, 2, row->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, states_target_name(row->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->launcher ? row->launcher : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, row->ranks);
    sqlite3_bind_int64(st, 6, row->pid);
    sqlite3_bind_text(st, 7, row->log_path ? row->log_path : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, row->weights_json ? row->weights_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, row->losses_json ? row->losses_json : "{}", -1, SQLITE_STATIC);
    store__bind_real(st, 10, row->objective);
    sqlite3_bind_int64(st, 11, row->step);
    store__bind_real(st, 12, row->loss);
    sqlite3_bind_text(st, 13, row->detail ? row->detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, row->created_ms);
    sqlite3_bind_int64(st, 15, row->updated_ms);
    sqlite3_bind_text(st, 16, row->handle ? row->handle : "", -1, SQLITE_STATIC);
    int r = store__exec(s, st);
    return r < 0 ? r : 0;
}

typedef struct {
    store_target_cb cb;
    void *data;
} store__targets_t;

static int store__targets_row(sqlite3_stmt *st, void *data)
{
    const store__targets_t *x = data;
    store_target_row_t row = {
            .sweep = sqlite3_column_int64(st, 0),
            .role = store__text(st, 1),
            .state = states_target_parse(store__text(st, 2)),
            .launcher = store__text(st, 3),
            .ranks = sqlite3_column_int(st, 4),
            .pid = sqlite3_column_int64(st, 5),
            .log_path = store__text(st, 6),
            .weights_json = store__text(st, 7),
            .losses_json = store__text(st, 8),
            .objective = store__real(st, 9),
            .step = sqlite3_column_int64(st, 10),
            .loss = store__real(st, 11),
            .detail = store__text(st, 12),
            .created_ms = sqlite3_column_int64(st, 13),
            .updated_ms = sqlite3_column_int64(st, 14),
            .handle = store__text(st, 15),
    };
    return x->cb(&row, x->data);
}

int store_targets_foreach(store_t *s, store_target_cb cb, void *data)
{
    sqlite3_stmt *st = store__stmt(s, ST_TARGETS_ALL);
    store__targets_t x = {cb, data};
    int r = store__rows(st, -1, store__targets_row, &x);
    return r < 0 ? r : 0;
}
