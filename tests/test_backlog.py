"""One sweep over a backlog of stale sessions, on a throwaway server with fsync off.

The server is seeded with generate_series in SQL, so the seed takes seconds.
Writers insert events from their own connections while the sweep runs, and a
watcher samples the sweep's open transaction from another connection.
"""

import math
import threading
import time

import psycopg
import pytest

from session_sweeper.migrate import apply_migrations

SESSIONS = 1_000_000
STALE = 200_000
USERS = 100_000
# The sweep commits after each batch, so a writer waits at most for one batch.
# A batch of 1000 takes well under a second even on a busy 2-core machine.
MAX_WRITER_WAIT = 2.0
SWEEP_APP = "backlog-sweep"


@pytest.fixture(scope="module")
def backlog_dsn():
    """Start a server, install everything and seed the sessions once for this module."""
    from session_sweeper.server import ThrowawayServer

    with ThrowawayServer(cron_database="sweeper", fsync=False) as server:
        dsn = server.create_database("sweeper")
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.monotonic()
            # Sessions 1..STALE are stale: last event two hours ago and more. The rest
            # had an event a minute ago. User i owns sessions i, i + USERS, ...
            conn.execute(
                "insert into learning.sessions (user_id, started_at, last_event_at)"
                " select 'user-' || (i %% %(users)s),"
                "   case when i <= %(stale)s"
                "     then now() - interval '3 hours' - i * interval '10 ms'"
                "     else now() - interval '20 minutes' end,"
                "   case when i <= %(stale)s"
                "     then now() - interval '2 hours' - i * interval '10 ms'"
                "     else now() - interval '1 minute' end"
                " from generate_series(1, %(sessions)s) as i",
                {"users": USERS, "stale": STALE, "sessions": SESSIONS},
            )
            conn.execute("vacuum analyze learning.sessions")
            print(
                f"\nbacklog: seeded {SESSIONS} sessions in {time.monotonic() - started:.1f} s"
            )
        yield dsn


def watch_sweep(dsn, stop, samples):
    """Sample the age of the sweep's open transaction until stop is set."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "select extract(epoch from clock_timestamp() - xact_start)"
                " from pg_stat_activity"
                " where application_name = %s and xact_start is not null",
                [SWEEP_APP],
            ).fetchone()
            if row:
                samples.append(float(row[0]))
            time.sleep(0.005)


def write_events(dsn, stop, session_ids, waits, errors):
    """Insert one event at a time for the given sessions, timing each insert."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for session_id in session_ids:
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                conn.execute(
                    "insert into learning.reading_events"
                    " (session_id, user_id, event_type, occurred_at)"
                    " select id, user_id, 'page', now() from learning.sessions"
                    " where id = %s",
                    [session_id],
                )
            except psycopg.Error as error:
                errors.append(f"{error.sqlstate}: {error}")
                return
            waits.append(time.monotonic() - started)


def test_backlog_sweep_finishes_in_batches(backlog_dsn):
    """One run interrupts a 200,000 backlog in bounded batches while writers go on."""
    stop = threading.Event()
    xact_ages: list[float] = []
    fresh_waits: list[float] = []
    stale_waits: list[float] = []
    errors: list[str] = []
    # One writer keeps fresh sessions alive. The other writes to stale sessions
    # ahead of the sweep, so it meets the rows of the batch being interrupted.
    fresh_ids = range(STALE + 1, STALE + 200_001, 97)
    stale_ids = range(STALE, 0, -37)
    threads = [
        threading.Thread(target=watch_sweep, args=(backlog_dsn, stop, xact_ages)),
        threading.Thread(
            target=write_events,
            args=(backlog_dsn, stop, fresh_ids, fresh_waits, errors),
        ),
        threading.Thread(
            target=write_events,
            args=(backlog_dsn, stop, stale_ids, stale_waits, errors),
        ),
    ]
    for thread in threads:
        thread.start()

    try:
        with psycopg.connect(
            backlog_dsn, autocommit=True, application_name=SWEEP_APP
        ) as conn:
            started = time.monotonic()
            interrupted, batches = conn.execute(
                "call learning.sweep_stale_sessions()"
            ).fetchone()
            first_run = time.monotonic() - started
            run = conn.execute(
                "select cutoff, batch_size, interrupted, batches, finished_at"
                " from learning.sweep_runs order by id desc limit 1"
            ).fetchone()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    cutoff, batch_size, run_interrupted, run_batches, finished_at = run
    with psycopg.connect(backlog_dsn, autocommit=True) as conn:
        left = conn.execute(
            "select count(*) from learning.sessions"
            " where status = 'active' and last_event_at < %s",
            [cutoff],
        ).fetchone()[0]
        revived = conn.execute(
            "select count(*) from learning.sessions"
            " where id <= %s and status = 'active'",
            [STALE],
        ).fetchone()[0]
        fresh_interrupted = conn.execute(
            "select count(*) from learning.sessions"
            " where id > %s and status <> 'active'",
            [STALE],
        ).fetchone()[0]

        started = time.monotonic()
        second = conn.execute("call learning.sweep_stale_sessions()").fetchone()
        second_run = time.monotonic() - started
        # The first empty run still steps over the index entries of the rows the
        # backlog run interrupted, until vacuum removes them, so time one more.
        started = time.monotonic()
        conn.execute("call learning.sweep_stale_sessions()")
        third_run = time.monotonic() - started

    longest_xact = max(xact_ages, default=0.0)
    longest_wait = max(fresh_waits + stale_waits, default=0.0)
    print(
        f"\nbacklog: swept {interrupted} of {STALE} stale sessions in {first_run:.2f} s, "
        f"{batches} batches of {batch_size}; longest sweep transaction seen "
        f"{longest_xact * 1000:.0f} ms; {len(fresh_waits) + len(stale_waits)} inserts "
        f"during the run, longest {longest_wait * 1000:.1f} ms "
        f"(fresh {max(fresh_waits, default=0) * 1000:.1f} ms, "
        f"stale {max(stale_waits, default=0) * 1000:.1f} ms); "
        f"{revived} revived by writers; empty runs {second_run * 1000:.1f} ms, then {third_run * 1000:.1f} ms"
    )

    assert errors == [], f"inserts during the sweep failed: {errors}"
    assert left == 0, f"{left} sessions stale before the run are still active"
    assert fresh_interrupted == 0, "the sweep interrupted sessions that were fresh"
    assert finished_at is not None, "the run is not marked finished"
    assert run_interrupted == interrupted, (
        "sweep_runs does not match the procedure's count"
    )
    assert run_batches == batches, "sweep_runs does not match the procedure's batches"
    # The writers' own cleanup interrupts some stale sessions before the sweep
    # reaches them, and their events revive others.
    assert interrupted >= STALE * 0.9, f"the sweep interrupted only {interrupted}"
    assert batches == math.ceil(interrupted / batch_size), (
        "a batch interrupted fewer rows than the batch size before the last one"
    )
    assert batches * batch_size < interrupted + batch_size, (
        "batches were larger than the size"
    )
    assert len(xact_ages) > 10, "the watcher saw too few samples of the sweep"
    assert longest_xact < first_run / 10, (
        f"one sweep transaction stayed open {longest_xact:.2f} s of a {first_run:.2f} s run"
    )
    assert len(stale_waits) > 10, "the writer on stale sessions barely ran"
    assert longest_wait < MAX_WRITER_WAIT, (
        f"an insert waited {longest_wait:.3f} s during the sweep, more than one batch"
    )
    assert second == (0, 0), f"the run after the backlog still found work: {second}"
    assert second_run < max(0.5, first_run / 50), (
        f"the run with nothing left took {second_run:.3f} s"
    )
    assert third_run < max(0.1, first_run / 100), (
        f"the second run with nothing left took {third_run:.3f} s"
    )
