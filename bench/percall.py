"""Per-user call: learning.interrupt_stale_sessions(user_id) for a user with history."""

import time

import psycopg

from bench.db import as_replica, read_sql
from bench.report import median, table

CASES = (("none stale", "percall-none", 0), ("10 stale", "percall-ten", 10))
CALL = "select learning.interrupt_stale_sessions(%s)"
EXPLAIN = "explain (analyze, timing off, summary on, format json) " + CALL


def seed(conn: psycopg.Connection) -> None:
    for _, user_id, stale in CASES:
        conn.execute(read_sql("seed_percall"), {"user_id": user_id, "stale": stale})
    conn.execute("vacuum analyze learning.sessions")


def measure(conn: psycopg.Connection, repetitions: int) -> dict:
    """Return the server and client times in ms of each case, per repetition."""
    results = {}
    for label, user_id, stale in CASES:
        server, client, interrupted = [], [], []
        for repetition in range(repetitions + 1):
            if stale:
                as_replica(conn, "reset_percall_stale", {"user_id": user_id})
            plan = conn.execute(EXPLAIN, [user_id]).fetchone()[0][0]
            if stale:
                as_replica(conn, "reset_percall_stale", {"user_id": user_id})
            started = time.perf_counter()
            count = conn.execute(CALL, [user_id]).fetchone()[0]
            elapsed = time.perf_counter() - started
            # The first call of each case loads caches and is not counted.
            if repetition:
                server.append(plan["Execution Time"])
                client.append(elapsed * 1000)
                interrupted.append(count)
        results[label] = {
            "server": server,
            "client": client,
            "interrupted": interrupted,
        }
    return results


def summarize(results: dict) -> str:
    rows = [
        [label, median(r["interrupted"]), median(r["server"]), median(r["client"])]
        for label, r in results.items()
    ]
    return table(
        ["user with 1,000 past sessions", "interrupted", "server ms", "client ms"], rows
    )
