"""Sweep: one run of the job's command against a single unbatched UPDATE.

The table contains mostly finished sessions, plus one fresh active session in a
hundred. For each stale count the same evenly spread sessions are made stale
before every repetition, then the table is vacuumed and analyzed, as
autovacuum would do on a live system. With 0 stale the runs follow each other
on a warm connection.
"""

import time

import psycopg

from bench.db import as_replica, read_sql
from bench.report import median, table

SWEEP = "call learning.sweep_stale_sessions()"


def seed(conn: psycopg.Connection, first: int, last: int) -> None:
    if first == 1:
        conn.execute(
            "truncate learning.reading_events, learning.sessions, bench.reading_events_floor"
            " restart identity cascade"
        )
        conn.execute(
            "create table if not exists bench.stale_ids (id bigint primary key)"
        )
    conn.execute(read_sql("seed_sweep"), {"first": first, "last": last})
    conn.execute("vacuum analyze learning.sessions")


def _prepare(conn: psycopg.Connection, stale: int) -> None:
    if stale:
        as_replica(conn, "mark_sweep_stale", {})
    conn.execute("vacuum analyze learning.sessions")


def _run(conn: psycopg.Connection, variant: str) -> tuple[float, int]:
    if variant == "sweep":
        started = time.perf_counter()
        interrupted = conn.execute(SWEEP).fetchone()[0]
        return time.perf_counter() - started, interrupted
    cutoff = conn.execute("select learning.stale_cutoff()").fetchone()[0]
    started = time.perf_counter()
    interrupted = conn.execute(read_sql("sweep_floor"), {"cutoff": cutoff}).rowcount
    return time.perf_counter() - started, interrupted


def measure(
    conn, size: int, stale_counts, repetitions: int, idle_repetitions: int, log
):
    """Return {stale: {variant: [(seconds, interrupted), ...]}} for one table size."""
    results = {}
    for stale in stale_counts:
        if stale:
            conn.execute("truncate bench.stale_ids")
            conn.execute(read_sql("pick_sweep_stale"), {"step": size // stale})
        reps = repetitions if stale else idle_repetitions
        runs = {"sweep": [], "single UPDATE": []}
        _prepare(conn, stale)
        for repetition in range(reps):
            order = ["sweep", "single UPDATE"]
            if repetition % 2:
                order.reverse()
            for variant in order:
                # With nothing stale there is nothing to reset. A vacuum would only
                # make the next run plan its statements again after the new ANALYZE.
                if stale:
                    _prepare(conn, stale)
                runs[variant].append(_run(conn, variant))
        results[stale] = runs
        log(f"sweep: {size:,} sessions, {stale:,} stale done")
    return results


def cold_sweep(dsn: str, repetitions: int) -> list[float]:
    """Time the job's command as the first call of a new session, as pg_cron runs it."""
    times = []
    for _ in range(repetitions):
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(SWEEP)
            times.append(time.perf_counter() - started)
    return times


def summarize(results: dict) -> tuple[str, dict]:
    """Return the sweep table and {(size, stale): (sweep ms, ratio)} for the targets."""
    rows, figures = [], {}
    for size, by_stale in results.items():
        for stale, runs in by_stale.items():
            sweep_ms = median([s for s, _ in runs["sweep"]]) * 1000
            floor_ms = median([s for s, _ in runs["single UPDATE"]]) * 1000
            pairs = zip(runs["sweep"], runs["single UPDATE"])
            ratio = (
                median([s / f for (s, _), (f, _) in pairs]) if stale else float("nan")
            )
            interrupted = median([n for _, n in runs["sweep"]])
            per_session = sweep_ms * 1000 / stale if stale else float("nan")
            rows.append(
                [
                    size,
                    stale,
                    int(interrupted),
                    len(runs["sweep"]),
                    sweep_ms,
                    per_session,
                    floor_ms,
                    ratio,
                ]
            )
            figures[(size, stale)] = (sweep_ms, ratio)
    headers = [
        "sessions",
        "stale",
        "interrupted",
        "runs",
        "sweep ms",
        "sweep µs per stale",
        "single UPDATE ms",
        "sweep / UPDATE",
    ]
    return table(headers, rows), figures
