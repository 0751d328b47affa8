#!/usr/bin/env python3
"""The second system for bench/sched_bench.sh: the same durable job loop in plain Python.

One process keeps the runs in SQLite (WAL, synchronous=NORMAL, like the coordinator): for each
job it claims the run with a conditional UPDATE, hands it to a multiprocessing pool of `slots`
workers that compute the synthetic loss (sum (w - optimum)^2), then stores the result and marks
the run done; writes are grouped into transactions of at most `batch` jobs. Prints one JSON line:
{"system": "python-multiprocessing", "runs": N, "seconds": s, "jobs_per_s": r}.

usage: sched_reference.py RUNS [--slots 32] [--batch 256] [--db PATH]
"""
import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import sqlite3
import tempfile
import time

OPT = (0.5, 0.3, 0.2)


def synthetic(job):
    run_id, weights = job
    return run_id, sum((w - o) ** 2 for w, o in zip(weights, OPT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=int)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--db")
    a = ap.parse_args()
    tmp = None
    if not a.db:
        tmp = tempfile.mkdtemp(prefix="regmix-schedref-")
        a.db = os.path.join(tmp, "ref.db")
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, weights TEXT, state TEXT)")
    db.execute("CREATE TABLE results (run INTEGER UNIQUE, loss REAL)")
    rng = random.Random(1)
    db.execute("BEGIN")
    for i in range(a.runs):
        x = [rng.random() for _ in OPT]
        s = sum(x)
        db.execute("INSERT INTO runs VALUES (?, ?, 'queued')", (i, json.dumps([v / s for v in x])))
    db.execute("COMMIT")

    t0 = time.perf_counter()
    done = 0
    results = queue.Queue()
    todo = iter(db.execute("SELECT id, weights FROM runs WHERE state = 'queued'").fetchall())
    with mp.Pool(a.slots) as pool:
        inflight = pending = 0
        exhausted = False
        db.execute("BEGIN")
        while done < a.runs:
            # Fill every free slot: claim the run (conditional UPDATE), then dispatch it.
            while inflight < a.slots and not exhausted:
                nxt = next(todo, None)
                if nxt is None:
                    exhausted = True
                    break
                rid, w = nxt
                cur = db.execute("UPDATE runs SET state = 'leased' WHERE id = ? AND state = 'queued'", (rid,))
                if cur.rowcount == 1:
                    pool.apply_async(synthetic, ((rid, json.loads(w)),), callback=results.put)
                    inflight += 1
            rid, loss = results.get()
            inflight -= 1
            db.execute("INSERT INTO results VALUES (?, ?)", (rid, loss))
            db.execute("UPDATE runs SET state = 'done' WHERE id = ?", (rid,))
            done += 1
            pending += 1
            if pending >= a.batch:
                db.execute("COMMIT")
                db.execute("BEGIN")
                pending = 0
        db.execute("COMMIT")
    secs = time.perf_counter() - t0
    n = db.execute("SELECT count(*) FROM results").fetchone()[0]
    assert n == a.runs == done, (n, a.runs, done)
    print(json.dumps({"system": "python-multiprocessing", "runs": a.runs, "seconds": round(secs, 3),
                      "jobs_per_s": round(a.runs / secs, 1)}))
    db.close()
    if tmp:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
