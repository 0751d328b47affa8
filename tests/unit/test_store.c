/*
 * test_store: the coordinator's SQLite store (coordinator/store.h) on a real temporary file.
 * Migrations are idempotent on reopen and refuse a newer schema; an active sweep's closed rounds
 * are read back after a reopen; a second opener is locked out;
 * a claim is conditional (the second claim of a run fails); a result is stored once per
 * (run, attempt); a stale attempt cannot finish a run (fencing); the queue is ordered by
 * priority then FIFO and filtered by GPU need; a savepoint rolls back one unit.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "test.h"

static char dir[] = "/tmp/regmix-store-test-XXXXXX";
static char path[256];

static int64_t add_sweep(store_t *s, const char *name, int priority, int gpus, int runs)
{
    static const uint8_t job[] = {0x38, 0x03}; /* any bytes: the store does not read them */
    store_sweep_row_t row = {
            .name = name,
            .spec_yaml = "name: x\n",
            .spec_name = "x.yaml",
            .state = SWEEP_STATE_RUNNING,
            .priority = priority,
            .gpus = gpus,
            .max_attempts = 3,
            .backoff_ms = 100,
            .job = job,
            .job_len = sizeof job,
            .ndomains = 2,
            .nruns = runs,
            .created_ms = 1000,
    };
    int64_t id = 0;
    char sid[32];
    CHECK(store_begin(s) == 0);
    CHECK(store_sweep_insert(s, &row, &id, sid) == 0);
    CHECK(strncmp(sid, "sw", 2) == 0);
    for (int i = 0; i < runs; i++) {
        double w[2] = {0.25 + 0.01 * i, 0.75 - 0.01 * i};
        CHECK(store_run_insert(s, id, i, 100u + (uint64_t)i, w, 2, priority, gpus, 1000) == 0);
    }
    CHECK(store_commit(s) == 0);
    return id;
}

/* Collects rounds_closed by sweep id (ids 1 and 2) into data (int[3]). */
static int rounds_closed_row(const store_sweep_row_t *row, void *data)
{
    int *closed = data;
    if (row->id >= 0 && row->id < 3)
        closed[row->id] = row->rounds_closed;
    return 0;
}

static void test_migrations_idempotent(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    CHECK_INT_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
    int64_t id = add_sweep(s, "first", 0, 0, 2);
    CHECK(id > 0);
    /* An active sweep's closed rounds (sweeps.rounds_closed, migration 5) are stored. */
    CHECK(store_begin(s) == 0);
    CHECK_INT_EQ(store_sweep_close_rounds(s, id, 1500), 1); /* one row changed */
    CHECK(store_commit(s) == 0);
    int64_t open_id = add_sweep(s, "second", 0, 0, 0);
    /* A second opener is locked out while the first holds the file. */
    store_t *s2 = NULL;
    CHECK_INT_EQ(store_open(path, &s2, err, sizeof err), -EBUSY);
    CHECK(s2 == NULL);
    store_close(&s);
    CHECK(s == NULL);
    store_close(&s); /* NULL: harmless */
    /* Reopen: nothing to migrate, the data is there. */
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    CHECK_INT_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
    double w[2] = {0, 0};
    store_queued_t q[4];
    int n = store_queue_fetch(s, 0, 4, q);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(store_run_weights(s, q[0].run, w, 2), 2);
    CHECK_NEAR(w[0], 0.25, 0);
    CHECK_NEAR(w[1], 0.75, 0);
    CHECK_INT_EQ(q[0].seed, 100);
    int closed[3] = {-1, -1, -1};
    CHECK(store_sweeps_foreach(s, rounds_closed_row, closed) == 0);
    CHECK_MSG(id < 3 && open_id < 3 && closed[id] == 1 && closed[open_id] == 0,
              "rounds_closed after reopening: %d (closed), %d (open)", closed[id < 3 ? id : 0],
              closed[open_id < 3 ? open_id : 0]);
    store_close(&s);
    /* A database from a newer program is refused. */
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_INT_EQ(store_open(path, &s, err, sizeof err), -EPROTO);
    CHECK(strstr(err, "newer") != NULL);
    sqlite3_open(path, &db);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
}

static void test_claim_result_fencing(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    int64_t sweep = add_sweep(s, "claims", 0, 0, 1);
    store_queued_t q[8];
    int n = store_queue_fetch(s, 0, 8, q);
    int64_t run = 0;
    for (int i = 0; i < n; i++)
        if (q[i].sweep == sweep)
            run = q[i].run;
    CHECK(run > 0);
    int64_t a1 = store_attempt_max_id(s) + 1;
    CHECK(store_begin(s) == 0);
    CHECK_INT_EQ(store_run_claim(s, run, a1, 2000), 1);
    CHECK_INT_EQ(store_run_claim(s, run, a1 + 1, 2000), 0); /* already leased */
    CHECK(store_attempt_insert(s, a1, run, 1, "w1", "", 2000, 5000) == 0);
    CHECK_INT_EQ(store_attempt_max_id(s), a1);
    /* A stale attempt cannot finish the run; the live one can, once. */
    CHECK_INT_EQ(store_run_started(s, run, a1 + 1, 2100), 0);
    CHECK_INT_EQ(store_run_started(s, run, a1, 2100), 1);
    CHECK_INT_EQ(store_run_finish(s, run, a1 + 1, RUN_STATE_DONE, 0, 2200), 0);
    /* Lease lost: requeue, then a second attempt claims it. */
    CHECK_INT_EQ(store_run_finish(s, run, a1, RUN_STATE_QUEUED, 2300, 2300), 1);
    int64_t a2 = a1 + 1;
    CHECK_INT_EQ(store_run_claim(s, run, a2, 2400), 1);
    CHECK(store_attempt_insert(s, a2, run, 2, "w2", "0", 2400, 5000) == 0);
    /* The first attempt's late result is fenced at the run: the run is not live with it. */
    CHECK_INT_EQ(store_run_finish(s, run, a1, RUN_STATE_DONE, 0, 2500), 0);
    CHECK_INT_EQ(store_run_finish(s, run, a2, RUN_STATE_DONE, 0, 2500), 1);
    CHECK_INT_EQ(store_run_finish(s, run, a2, RUN_STATE_DONE, 0, 2600), 0); /* done already */
    CHECK_INT_EQ(store_result_insert(s, run, a2, sweep, "w2", "{\"a\":1.5}", NULL, 10, 1.0, 2500),
                 1);
    /* Stored once: the same (run, attempt) again changes nothing. */
    CHECK_INT_EQ(store_result_insert(s, run, a2, sweep, "w2", "{\"a\":9.0}", NULL, 10, 1.0, 2600),
                 0);
    CHECK(store_commit(s) == 0);
    CHECK_INT_EQ(store_results_count(s, sweep), 1);
    int64_t r = 0, live = 0;
    run_state_t state = RUN_STATE_UNSPECIFIED;
    CHECK(store_run_lookup(s, sweep, 0, &r, &state, &live) == 0);
    CHECK_INT_EQ(state, RUN_STATE_DONE);
    CHECK_INT_EQ(live, a2);
    CHECK_INT_EQ(store_run_lookup(s, sweep, 5, &r, &state, &live), -ENOENT);
    store_close(&s);
}

static void test_queue_order_and_gpus(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    /* Empty the queue of earlier tests. */
    store_queued_t q[64];
    CHECK(store_begin(s) == 0);
    int n = store_queue_fetch(s, 0, 64, q);
    for (int i = 0; i < n; i++)
        store_run_set_state(s, q[i].run, RUN_STATE_QUEUED, RUN_STATE_CANCELLED, 1);
    CHECK(store_commit(s) == 0);
    int64_t low = add_sweep(s, "low", 0, 0, 2);
    int64_t high = add_sweep(s, "high", 5, 0, 2);
    int64_t gpu = add_sweep(s, "gpu", 9, 2, 1);
    n = store_queue_fetch(s, 0, 64, q);
    CHECK_INT_EQ(n, 4);
    if (n == 4) {
        CHECK_INT_EQ(q[0].sweep, high);
        CHECK_INT_EQ(q[0].idx, 0);
        CHECK_INT_EQ(q[1].sweep, high);
        CHECK_INT_EQ(q[1].idx, 1);
        CHECK_INT_EQ(q[2].sweep, low);
        CHECK_INT_EQ(q[3].sweep, low);
    }
    n = store_queue_fetch(s, 2, 64, q);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(q[0].sweep, gpu);
    /* Moving runs in bulk and the retry queue. */
    CHECK(store_begin(s) == 0);
    CHECK_INT_EQ(store_runs_move(s, low, RUN_STATE_QUEUED, RUN_STATE_CANCELLED, 10), 2);
    n = store_queue_fetch(s, 0, 64, q);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(store_run_claim(s, q[0].run, 900, 10), 1);
    CHECK_INT_EQ(store_run_finish(s, q[0].run, 900, RUN_STATE_FAILED, 5000, 10), 1);
    CHECK_INT_EQ(store_runs_next_retry(s), 5000);
    CHECK(store_commit(s) == 0);
    store_close(&s);
}

static int retry_seen;
static void on_retry(int64_t sweep, void *data)
{
    (void)sweep;
    (void)data;
    retry_seen++;
}

static void test_retry_and_savepoint(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    CHECK(store_begin(s) == 0);
    CHECK_INT_EQ(store_runs_retry_due(s, 4999, on_retry, NULL), 0);
    CHECK_INT_EQ(store_runs_retry_due(s, 5000, on_retry, NULL), 1);
    CHECK_INT_EQ(retry_seen, 1);
    CHECK_INT_EQ(store_runs_next_retry(s), INT64_MAX);
    /* A savepoint rolled back leaves the rest of the group transaction intact. */
    CHECK(store_savepoint(s) == 0);
    store_worker_row_t w = {.worker_id = "gone", .state = WORKER_STATE_CONNECTED, .slots = 1};
    CHECK(store_worker_upsert(s, &w, 1) == 0);
    store_savepoint_rollback(s);
    store_worker_row_t w2 = {.worker_id = "kept", .state = WORKER_STATE_CONNECTED, .slots = 2};
    CHECK(store_worker_upsert(s, &w2, 1) == 0);
    CHECK(store_commit(s) == 0);
    store_close(&s);
    /* The coordinator holds the file exclusively while open; a tool reads it after. */
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT group_concat(worker_id) FROM workers", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "kept");
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

typedef struct seen_targets {
    int n;
    char state[2][16], handle[2][32], detail[2][200];
} seen_targets_t;

static int seen_target(const store_target_row_t *row, void *data)
{
    seen_targets_t *st = data;
    if (st->n < 2) {
        snprintf(st->state[st->n], sizeof st->state[0], "%s", states_target_name(row->state));
        snprintf(st->handle[st->n], sizeof st->handle[0], "%s", row->handle ? row->handle : "");
        snprintf(st->detail[st->n], sizeof st->detail[0], "%s", row->detail ? row->detail : "");
    }
    st->n++;
    return 0;
}

/* Targets keep their job's handle; migration 4 moves the rows of the old submit-only life
 * cycle (submitting, submitted: no job id was kept) to failed with the reason. */
static void test_target_handles_and_migration(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    int64_t sweep = add_sweep(s, "targets", 0, 0, 1);
    store_target_row_t row = {.sweep = sweep,
                              .role = "baseline",
                              .state = TARGET_STATE_RUNNING,
                              .launcher = "slurm",
                              .ranks = 2,
                              .objective = NAN,
                              .loss = NAN,
                              .detail = "Slurm job 7: RUNNING",
                              .created_ms = 1,
                              .updated_ms = 2,
                              .handle = "slurm:7"};
    CHECK_INT_EQ(store_target_upsert(s, &row), 0);
    row.role = "target";
    row.state = TARGET_STATE_PENDING;
    row.handle = "mpijob:ns/x";
    CHECK_INT_EQ(store_target_upsert(s, &row), 0);
    CHECK_INT_EQ(store_commit(s), 0);
    seen_targets_t st = {0};
    CHECK_INT_EQ(store_targets_foreach(s, seen_target, &st), 0);
    CHECK_INT_EQ(st.n, 2);
    CHECK_STR_EQ(st.handle[0], "slurm:7"); /* ORDER BY sweep, role: baseline first */
    CHECK_STR_EQ(st.state[0], "running");
    CHECK_STR_EQ(st.handle[1], "mpijob:ns/x");
    store_close(&s);
    /* The same rows as a version-3 database with the old words wrote them. */
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    CHECK_INT_EQ(sqlite3_exec(db,
                              "ALTER TABLE targets DROP COLUMN handle;"
                              "ALTER TABLE sweeps DROP COLUMN rounds_closed;"
                              "UPDATE targets SET state = 'submitted' WHERE role = 'baseline';"
                              "UPDATE targets SET state = 'submitting' WHERE role = 'target';"
                              "PRAGMA user_version = 3;",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    CHECK_INT_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
    int closed[3] = {-1, -1, -1};
    CHECK_INT_EQ(store_sweeps_foreach(s, rounds_closed_row, closed), 0); /* the column is back */
    memset(&st, 0, sizeof st);
    CHECK_INT_EQ(store_targets_foreach(s, seen_target, &st), 0);
    CHECK_INT_EQ(st.n, 2);
    for (int i = 0; i < 2; i++) {
        CHECK_STR_EQ(st.state[i], "failed");
        CHECK_STR_EQ(st.handle[i], "");
        CHECK(strstr(st.detail[i], "cannot be followed") != NULL);
    }
    store_close(&s);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/regmix.db", dir);
    TEST_RUN(test_migrations_idempotent);
    TEST_RUN(test_target_handles_and_migration);
    TEST_RUN(test_claim_result_fencing);
    TEST_RUN(test_queue_order_and_gpus);
    TEST_RUN(test_retry_and_savepoint);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
