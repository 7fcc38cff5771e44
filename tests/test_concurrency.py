"""Concurrent writers, sweeps and direct calls on one database, with real connections.

Every thread opens its own psycopg connection to the loopback test server. Each
loop stops at a fixed deadline, so a test runs for a bounded time.
"""

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg
import pytest

USERS = 8
FRESH_PER_USER = 4
STALE_PER_USER = 20
WRITERS = 4
LOAD_SECONDS = 8.0
# A writer waits at most for one sweep batch to commit. A batch of 1000 takes
# tens of milliseconds here, so this bound leaves room for a busy 2-core machine.
MAX_WRITER_WAIT = 2.0

DEADLOCK = "40P01"


@dataclass
class Outcome:
    """What one thread did: its operation count, errors and longest insert."""

    operations: int = 0
    events: int = 0
    errors: list[str] = field(default_factory=list)
    max_wait: float = 0.0


def seed_sessions(conn, users, per_user, last_event_ago, first_user=1):
    """Insert per_user active sessions for each user and return their ids by user."""
    rows = conn.execute(
        "insert into learning.sessions (user_id, started_at, last_event_at)"
        " select 'user-' || u, now() - %(ago)s::interval - interval '1 minute',"
        "        now() - %(ago)s::interval"
        " from generate_series(%(first)s, %(first)s + %(users)s - 1) as u,"
        "      generate_series(1, %(n)s)"
        " returning id, user_id",
        {"ago": last_event_ago, "users": users, "n": per_user, "first": first_user},
    ).fetchall()
    by_user: dict[str, list[int]] = {}
    for session_id, user_id in rows:
        by_user.setdefault(user_id, []).append(session_id)
    return by_user


def insert_events(conn, pairs):
    """Insert one event for each (session_id, user_id) pair in one statement."""
    conn.execute(
        "insert into learning.reading_events"
        " (session_id, user_id, event_type, occurred_at)"
        " select s, u, 'page', now()"
        " from unnest(%s::bigint[], %s::text[]) as t(s, u)",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    )


def run_until(deadline, outcome, step):
    """Call step() until the deadline, recording errors instead of raising."""
    while time.monotonic() < deadline:
        try:
            step()
            outcome.operations += 1
        except psycopg.Error as error:
            outcome.errors.append(f"{error.sqlstate}: {error}")
            return


def writer(dsn, fresh, deadline, seed, outcome):
    rng = random.Random(seed)
    pairs_pool = [(sid, user) for user, ids in fresh.items() for sid in ids]
    with psycopg.connect(dsn, autocommit=True) as conn:

        def step():
            # Overlapping users and sessions, in random order within a batch.
            pairs = rng.sample(pairs_pool, k=rng.randint(1, 6))
            started = time.monotonic()
            insert_events(conn, pairs)
            outcome.max_wait = max(outcome.max_wait, time.monotonic() - started)
            outcome.events += len(pairs)

        run_until(deadline, outcome, step)


def sweeper(dsn, deadline, outcome, cutoffs):
    with psycopg.connect(dsn, autocommit=True) as conn:

        def step():
            conn.execute("call learning.sweep_stale_sessions()")
            cutoffs.append(
                conn.execute(
                    "select cutoff from learning.sweep_runs order by id desc limit 1"
                ).fetchone()[0]
            )

        run_until(deadline, outcome, step)


def direct_caller(dsn, users, deadline, outcome):
    with psycopg.connect(dsn, autocommit=True) as conn:
        index = 0

        def step():
            nonlocal index
            conn.execute(
                "select learning.interrupt_stale_sessions(%s)",
                [users[index % len(users)]],
            )
            index += 1

        run_until(deadline, outcome, step)


@pytest.fixture
def one_minute_timeout(db):
    db.execute("update learning.settings set idle_timeout = '1 minute'")
    return db


def test_load_writers_sweeps_and_direct_calls(one_minute_timeout, sweeper_dsn):
    """Writers, back-to-back sweeps and direct calls run at once without errors."""
    db = one_minute_timeout
    # Fresh sessions are 30 s idle, so they stay fresh for the whole run even
    # without events. Stale ones are two hours idle.
    fresh = seed_sessions(db, USERS, FRESH_PER_USER, "30 seconds")
    stale = seed_sessions(db, USERS, STALE_PER_USER, "2 hours")
    # Stale sessions of users that no writer touches are left to the sweep.
    sweep_only = seed_sessions(db, 3, STALE_PER_USER, "3 hours", first_user=USERS + 1)
    users = sorted(fresh)

    deadline = time.monotonic() + LOAD_SECONDS
    writer_outcomes = [Outcome() for _ in range(WRITERS)]
    sweep_outcome, direct_outcome = Outcome(), Outcome()
    cutoffs: list = []
    threads = [
        threading.Thread(
            target=writer, args=(sweeper_dsn, fresh, deadline, n, writer_outcomes[n])
        )
        for n in range(WRITERS)
    ]
    threads.append(
        threading.Thread(
            target=sweeper, args=(sweeper_dsn, deadline, sweep_outcome, cutoffs)
        )
    )
    threads.append(
        threading.Thread(
            target=direct_caller, args=(sweeper_dsn, users, deadline, direct_outcome)
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + 30)

    assert not any(t.is_alive() for t in threads), (
        "a thread is still running after the run"
    )
    outcomes = [*writer_outcomes, sweep_outcome, direct_outcome]
    errors = [e for o in outcomes for e in o.errors]
    assert not [e for e in errors if e.startswith(DEADLOCK)], f"deadlock: {errors}"
    assert errors == [], f"concurrent operations failed: {errors}"

    # A final sweep after the load, so "stale when the last sweep began" is exact.
    db.execute("call learning.sweep_stale_sessions()")
    last_cutoff = db.execute(
        "select cutoff from learning.sweep_runs order by id desc limit 1"
    ).fetchone()[0]

    stored = db.execute("select count(*) from learning.reading_events").fetchone()[0]
    sent = sum(o.events for o in writer_outcomes)
    assert stored == sent, f"{sent} events were inserted but {stored} are stored"

    fresh_ids = [sid for ids in fresh.values() for sid in ids]
    wrongly = db.execute(
        "select count(*) from learning.sessions"
        " where id = any(%s) and status <> 'active'",
        [fresh_ids],
    ).fetchone()[0]
    assert wrongly == 0, (
        f"{wrongly} sessions with an event within the timeout were interrupted"
    )

    stale_ids = [
        sid for group in (stale, sweep_only) for ids in group.values() for sid in ids
    ]
    left = db.execute(
        "select count(*) from learning.sessions"
        " where id = any(%s) and status = 'active'",
        [stale_ids],
    ).fetchone()[0]
    assert left == 0, f"{left} sessions stale before the last sweep are still active"

    left_any = db.execute(
        "select count(*) from learning.sessions"
        " where status = 'active' and last_event_at < %s",
        [last_cutoff],
    ).fetchone()[0]
    assert left_any == 0, f"{left_any} sessions older than the last cutoff are active"

    ended_wrong = db.execute(
        "select count(*) from learning.sessions"
        " where status = 'interrupted' and ended_at is distinct from last_event_at"
    ).fetchone()[0]
    assert ended_wrong == 0, (
        "an interrupted session's ended_at is not its last_event_at"
    )

    operations = sum(o.operations for o in outcomes)
    max_wait = max(o.max_wait for o in writer_outcomes)
    print(
        f"\nload: {len(threads)} connections, {operations} operations "
        f"({sent} events, {sweep_outcome.operations} sweeps, "
        f"{direct_outcome.operations} direct calls) in {LOAD_SECONDS:.0f} s; "
        f"longest insert {max_wait * 1000:.1f} ms"
    )
    assert sweep_outcome.operations >= 2, "the sweeps did not run back to back"
    assert max_wait < MAX_WRITER_WAIT, (
        f"an insert took {max_wait:.3f} s, longer than one sweep batch may hold it"
    )


def session_of(conn, session_id):
    return conn.execute(
        "select status, last_event_at from learning.sessions where id = %s",
        [session_id],
    ).fetchone()


def test_sweep_skips_session_held_by_insert(one_minute_timeout, sweeper_dsn):
    """A sweep, a direct call and another user's insert skip a row an open insert holds."""
    db = one_minute_timeout
    held = seed_sessions(db, 1, 1, "2 hours")["user-1"][0]
    # Another user's, because the insert's own cleanup would take user-1's.
    other = seed_sessions(db, 1, 3, "2 hours", first_user=2)["user-2"]

    with (
        psycopg.connect(sweeper_dsn) as writer_conn,
        psycopg.connect(sweeper_dsn, autocommit=True) as sweep_conn,
    ):
        insert_events(writer_conn, [(held, "user-1")])
        writer_now = writer_conn.execute("select now()").fetchone()[0]

        # Any wait for the held row would fail the call with lock_not_available.
        sweep_conn.execute("set lock_timeout = '200ms'")
        sweep_conn.execute("set statement_timeout = '5s'")
        started = time.monotonic()
        interrupted, _batches = sweep_conn.execute(
            "call learning.sweep_stale_sessions()"
        ).fetchone()
        sweep_seconds = time.monotonic() - started
        direct = sweep_conn.execute(
            "select learning.interrupt_stale_sessions('user-1')"
        ).fetchone()[0]
        writer_conn.commit()

    assert interrupted == len(other), (
        "the sweep did not interrupt exactly the free rows"
    )
    assert sweep_seconds < 1.0, f"the sweep took {sweep_seconds:.3f} s, so it waited"
    assert direct == 0, "the direct call interrupted a session an open insert touched"
    status, last_event_at = session_of(db, held)
    assert status == "active", "the sweep interrupted a session an open insert touched"
    assert last_event_at == writer_now, "the insert's touch did not land"


def test_trigger_cleanup_skips_session_held_by_insert(one_minute_timeout, sweeper_dsn):
    """Another insert of the same user does not wait for a row an open insert holds."""
    db = one_minute_timeout
    held, fresh = seed_sessions(db, 1, 2, "2 hours")["user-1"]
    db.execute(
        "update learning.sessions set last_event_at = now() where id = %s", [fresh]
    )

    with psycopg.connect(sweeper_dsn) as first, psycopg.connect(sweeper_dsn) as second:
        insert_events(first, [(held, "user-1")])
        second.execute("set lock_timeout = '200ms'")
        insert_events(second, [(fresh, "user-1")])
        second.commit()
        first.commit()

    assert session_of(db, held)[0] == "active", "the cleanup interrupted a held session"


def begin_at(conn):
    """Start a transaction and return its now()."""
    return conn.execute("select now()").fetchone()[0]


def test_two_batches_same_session_both_touch(db, sweeper_dsn):
    """Two overlapping inserts for one session both commit, and the later now() wins."""
    session_id = seed_sessions(db, 1, 1, "10 seconds")["user-1"][0]
    result: dict = {}

    with psycopg.connect(sweeper_dsn) as first, psycopg.connect(sweeper_dsn) as second:
        first_now = begin_at(first)
        insert_events(first, [(session_id, "user-1")])
        second_now = begin_at(second)

        def second_batch():
            try:
                started = time.monotonic()
                insert_events(second, [(session_id, "user-1")])
                result["wait"] = time.monotonic() - started
                second.commit()
            except psycopg.Error as error:
                result["error"] = error

        thread = threading.Thread(target=second_batch)
        thread.start()
        time.sleep(0.3)
        blocked = thread.is_alive()
        first.commit()
        thread.join(timeout=10)

    assert "error" not in result, f"the second batch failed: {result.get('error')}"
    assert blocked, "the second touch did not wait for the first one's row lock"
    events = db.execute("select count(*) from learning.reading_events").fetchone()[0]
    assert events == 2, "both batches' events must be stored"
    status, last_event_at = session_of(db, session_id)
    assert status == "active", "a touched session must stay active"
    assert last_event_at >= second_now, "the later batch's touch did not land"
    assert last_event_at >= first_now, "the clock moved backwards"


def test_older_transaction_never_moves_clock_back(db, sweeper_dsn):
    """A batch whose transaction began earlier but commits later keeps the later time."""
    session_id = seed_sessions(db, 1, 1, "10 seconds")["user-1"][0]

    with psycopg.connect(sweeper_dsn) as older, psycopg.connect(sweeper_dsn) as newer:
        older_now = begin_at(older)
        time.sleep(0.05)
        newer_now = begin_at(newer)
        insert_events(newer, [(session_id, "user-1")])
        newer.commit()
        insert_events(older, [(session_id, "user-1")])
        older.commit()

    assert newer_now > older_now, "the test needs two distinct transaction times"
    last_event_at = session_of(db, session_id)[1]
    assert last_event_at == newer_now, (
        f"last_event_at moved back from {newer_now} to {last_event_at}"
    )


def test_opposite_order_batches_never_deadlock(one_minute_timeout, sweeper_dsn):
    """Batches naming the same sessions in opposite orders, plus sweeps, never deadlock."""
    db = one_minute_timeout
    ids = seed_sessions(db, 1, 20, "10 seconds")["user-1"]
    seed_sessions(db, 1, 50, "2 hours")
    pairs = [(sid, "user-1") for sid in ids]
    deadline = time.monotonic() + 3.0
    forward, backward, sweeps = Outcome(), Outcome(), Outcome()

    def loop(order, outcome):
        with psycopg.connect(sweeper_dsn, autocommit=True) as conn:
            run_until(deadline, outcome, lambda: insert_events(conn, order))

    threads = [
        threading.Thread(target=loop, args=(pairs, forward)),
        threading.Thread(target=loop, args=(pairs[::-1], backward)),
        threading.Thread(target=sweeper, args=(sweeper_dsn, deadline, sweeps, [])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    errors = forward.errors + backward.errors + sweeps.errors
    assert errors == [], f"opposite-order batches failed: {errors}"
    assert forward.operations > 10, "the forward writer barely ran"
    assert backward.operations > 10, "the backward writer barely ran"
