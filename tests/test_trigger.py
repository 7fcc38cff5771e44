"""The statement-level trigger on learning.reading_events, for batches and COPY.

Most tests seed and check inside one transaction, where now() stays fixed
and the real pg_cron job of `sweeper` cannot see the rows. The concurrency
tests commit, because they need a second connection to see the rows.
"""

import random
import threading
import time

import psycopg
from psycopg.rows import dict_row

# Batches each connection of the concurrency test commits when nothing fails, and
# the time limit for all of them.
BATCHES_PER_WORKER = 100
CONCURRENCY_SECONDS = 20


def add_session(
    conn: psycopg.Connection,
    user_id: str,
    idle: str = "0 seconds",
    status: str = "active",
) -> int:
    """Insert a session whose last event was `idle` ago and return its id."""
    return conn.execute(
        """
        insert into learning.sessions (user_id, status, started_at, last_event_at, ended_at)
        select %(user_id)s, %(status)s, t.at, t.at,
            case when %(status)s <> 'active' then t.at end
        from (select now() - %(idle)s::interval as at) as t
        returning id
        """,
        {"user_id": user_id, "idle": idle, "status": status},
    ).fetchone()[0]


def insert_events(conn: psycopg.Connection, events: list[tuple[int, str]]) -> None:
    """Insert (session_id, user_id) events in one multi-row INSERT statement."""
    conn.execute(
        """
        insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
        select e.session_id, e.user_id, 'page_view', now() - interval '1 day'
        from unnest(%s::bigint[], %s::text[]) as e (session_id, user_id)
        """,
        [[event[0] for event in events], [event[1] for event in events]],
    )


def sessions(conn: psycopg.Connection) -> dict[int, dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select *, now() as now, clock_timestamp() as clock from learning.sessions"
        ).fetchall()
    return {row["id"]: row for row in rows}


def stored(row: dict) -> dict:
    """Return the row's table columns, without the times read alongside them."""
    return {key: value for key, value in row.items() if key not in ("now", "clock")}


def is_server_time(row: dict) -> bool:
    """Return whether last_event_at lies between the transaction start and the read."""
    return row["now"] <= row["last_event_at"] <= row["clock"]


def updates_in_transaction(conn: psycopg.Connection) -> int:
    """Return the row updates on learning.sessions made so far in this transaction."""
    return conn.execute(
        "select pg_stat_get_xact_tuples_updated('learning.sessions'::regclass)"
    ).fetchone()[0]


def event_count(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from learning.reading_events").fetchone()[0]


def test_trigger_multi_row_insert_for_several_users(db):
    with db.transaction():
        a_named = add_session(db, "a", idle="10 minutes")
        a_stale = add_session(db, "a", idle="2 hours")
        b_named = add_session(db, "b", idle="20 minutes")
        b_stale = add_session(db, "b", idle="40 minutes")
        b_fresh = add_session(db, "b", idle="5 minutes")
        c_stale = add_session(db, "c", idle="2 hours")
        before = sessions(db)
        updates_before = updates_in_transaction(db)

        insert_events(
            db,
            [
                (a_named, "a"),
                (b_named, "b"),
                (a_named, "a"),
                (b_named, "b"),
                (a_named, "a"),
            ],
        )

        after = sessions(db)
        updates = updates_in_transaction(db) - updates_before
        events = event_count(db)

    assert events == 5, "every event of the batch must be stored"
    for named in (a_named, b_named):
        assert after[named]["status"] == "active", (
            f"named session {named} was interrupted"
        )
        assert is_server_time(after[named]), (
            f"named session {named} was not touched to the server's time"
        )
    for stale in (a_stale, b_stale):
        assert after[stale]["status"] == "interrupted", (
            f"stale session {stale} of an inserting user stayed active"
        )
        assert after[stale]["ended_at"] == before[stale]["last_event_at"], (
            f"stale session {stale} must end at its last event"
        )
    assert stored(after[b_fresh]) == stored(before[b_fresh]), (
        "a fresh session that no event names changed"
    )
    assert stored(after[c_stale]) == stored(before[c_stale]), (
        "a stale session of a user with no event in the batch changed"
    )
    assert updates == 4, (
        "the batch must update each named session once and each stale session once"
    )


def test_trigger_copy_touches_and_interrupts(db):
    with db.transaction():
        a_named = add_session(db, "a", idle="10 minutes")
        a_stale = add_session(db, "a", idle="2 hours")
        b_named = add_session(db, "b", idle="10 minutes")
        c_stale = add_session(db, "c", idle="2 hours")
        before = sessions(db)

        with (
            db.cursor() as cur,
            cur.copy(
                "copy learning.reading_events"
                " (session_id, user_id, event_type, occurred_at) from stdin"
            ) as copy,
        ):
            for session_id, user_id in [(a_named, "a"), (b_named, "b")] * 3:
                copy.write_row((session_id, user_id, "page_view", "1970-01-01 00:00Z"))

        after = sessions(db)
        events = event_count(db)

    assert events == 6, "every copied event must be stored"
    for named in (a_named, b_named):
        assert is_server_time(after[named]), f"COPY did not touch session {named}"
    assert after[a_stale]["status"] == "interrupted", (
        "COPY did not interrupt the stale session of a copying user"
    )
    assert stored(after[c_stale]) == stored(before[c_stale]), (
        "COPY changed a session of another user"
    )


def test_trigger_batch_revives_named_stale_session(db):
    """An event for a stale but still active session wins: it stays active."""
    with db.transaction():
        revived = add_session(db, "a", idle="2 hours")
        stale = add_session(db, "a", idle="3 hours")
        before = sessions(db)

        insert_events(db, [(revived, "a"), (revived, "a")])

        after = sessions(db)

    assert after[revived]["status"] == "active", (
        "the trigger interrupted a session that the batch names"
    )
    assert is_server_time(after[revived]), "the named stale session was not touched"
    assert after[revived]["ended_at"] is None, "an active session must have no ended_at"
    assert after[stale]["status"] == "interrupted", (
        "the user's other stale session stayed active"
    )
    assert after[stale]["ended_at"] == before[stale]["last_event_at"], (
        "the other stale session must end at its last event"
    )


def test_trigger_batch_with_final_session_keeps_it(db):
    with db.transaction():
        active = add_session(db, "a", idle="10 minutes")
        completed = add_session(db, "a", idle="2 hours", status="completed")
        interrupted = add_session(db, "a", idle="2 hours", status="interrupted")
        before = sessions(db)

        insert_events(db, [(active, "a"), (completed, "a"), (interrupted, "a")])

        after = sessions(db)
        events = event_count(db)

    assert events == 3, "events for final sessions must be stored with the rest"
    assert is_server_time(after[active]), (
        "the active session of the batch was not touched"
    )
    assert stored(after[completed]) == stored(before[completed]), (
        "an event changed a completed session"
    )
    assert stored(after[interrupted]) == stored(before[interrupted]), (
        "an event changed an interrupted session"
    )


def test_trigger_empty_insert_changes_nothing(db):
    with db.transaction():
        stale = add_session(db, "a", idle="2 hours")
        before = sessions(db)

        db.execute(
            "insert into learning.reading_events"
            " (session_id, user_id, event_type, occurred_at)"
            " select session_id, user_id, event_type, occurred_at"
            " from learning.reading_events where false"
        )

        after = sessions(db)

    assert stored(after[stale]) == stored(before[stale]), (
        "an insert of no rows changed a session"
    )


def test_trigger_concurrent_batches_do_not_deadlock(db, sweeper_dsn):
    """Inserts naming the same sessions in any order queue for locks, never deadlock.

    Four connections insert batches that name random subsets of one user's
    sessions in shuffled order, until each has committed its batches or the
    first error. Index scans are off, because on a small table the planner
    picks a sequential scan, which visits rows in their physical order.
    """
    session_ids = [add_session(db, "u1") for _ in range(8)]
    deadline = time.monotonic() + CONCURRENCY_SECONDS
    failures: list[str] = []
    batches = [0]

    def insert_batches(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(sweeper_dsn) as conn:
            # Detect a deadlock after 100 ms instead of the default 1 s.
            conn.execute("set deadlock_timeout = '100ms'")
            conn.execute("set enable_indexscan = off")
            conn.execute("set enable_bitmapscan = off")
            conn.commit()
            for _ in range(BATCHES_PER_WORKER):
                if failures or time.monotonic() > deadline:
                    return
                named = rng.sample(session_ids, rng.randint(2, len(session_ids)))
                try:
                    insert_events(conn, [(session_id, "u1") for session_id in named])
                    conn.execute("select pg_sleep(0.001)")
                    conn.commit()
                    batches[0] += 1
                except psycopg.Error as error:
                    conn.rollback()
                    failures.append(
                        f"{type(error).__name__}: {error.diag.message_detail}"
                    )

    threads = [
        threading.Thread(target=insert_batches, args=(seed,)) for seed in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CONCURRENCY_SECONDS + 30)

    assert failures == [], (
        f"concurrent event inserts failed after {batches[0]} batches: {failures[0]}"
    )
    assert batches[0] == 4 * BATCHES_PER_WORKER, (
        f"only {batches[0]} batches committed within {CONCURRENCY_SECONDS} s"
    )


def backend_waits_for_lock(conn: psycopg.Connection, pid: int) -> bool:
    row = conn.execute(
        "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", [pid]
    ).fetchone()
    return bool(row and row[0])


def test_sweep_skips_session_an_insert_holds(db, sweeper_dsn):
    """The event wins: the sweep skips a row an open insert holds, without waiting."""
    held = add_session(db, "u1", idle="2 hours")
    other = add_session(db, "u2", idle="2 hours")

    with psycopg.connect(sweeper_dsn) as writer:
        insert_events(writer, [(held, "u1")])
        # A wait would fail after 2 s instead of hanging the test.
        db.execute("set lock_timeout = '2s'")
        try:
            interrupted, _ = db.execute(
                "call learning.sweep_stale_sessions()"
            ).fetchone()
        finally:
            db.execute("reset lock_timeout")
        writer.commit()

    after = sessions(db)
    assert interrupted == 1, "the sweep must interrupt only the session nobody holds"
    assert after[other]["status"] == "interrupted", (
        "the sweep skipped a free stale session"
    )
    assert after[held]["status"] == "active", (
        "the session of a committed event must stay active"
    )
    assert after[held]["ended_at"] is None, "an active session must have no ended_at"


def test_trigger_cleanup_skips_session_another_insert_holds(db, sweeper_dsn):
    """The cleanup of one insert never waits for a session another insert holds."""
    current = add_session(db, "u1")
    held = add_session(db, "u1", idle="2 hours")

    with psycopg.connect(sweeper_dsn) as writer:
        insert_events(writer, [(held, "u1")])
        db.execute("set lock_timeout = '2s'")
        try:
            insert_events(db, [(current, "u1")])
        finally:
            db.execute("reset lock_timeout")
        writer.commit()

    after = sessions(db)
    assert after[held]["status"] == "active", (
        "the cleanup interrupted a session that another insert was touching"
    )
    assert event_count(db) == 2, "both inserts must store their events"


def test_insert_waits_for_interrupt_then_keeps_it(db, sweeper_dsn):
    """The interrupt wins: an insert waits for it, then stores its event."""
    session_id = add_session(db, "u1", idle="2 hours")
    before = sessions(db)[session_id]
    failures: list[BaseException] = []

    with psycopg.connect(sweeper_dsn) as interrupter:
        interrupter.execute("select learning.interrupt_stale_sessions('u1')")

        with psycopg.connect(sweeper_dsn, autocommit=True) as writer:
            writer_pid = writer.info.backend_pid

            def insert() -> None:
                try:
                    insert_events(writer, [(session_id, "u1")])
                except psycopg.Error as error:
                    failures.append(error)

            thread = threading.Thread(target=insert)
            thread.start()
            deadline = time.monotonic() + 10
            while not backend_waits_for_lock(db, writer_pid):
                assert time.monotonic() < deadline, (
                    "the insert never waited for the lock"
                )
                time.sleep(0.05)
            interrupter.commit()
            thread.join(timeout=10)

    after = sessions(db)[session_id]
    assert failures == [], f"the insert failed: {failures!r}"
    assert event_count(db) == 1, "the event for the interrupted session must be stored"
    assert after["status"] == "interrupted", (
        "a late event reopened an interrupted session"
    )
    assert after["ended_at"] == before["last_event_at"], (
        "ended_at must stay the last event before the interrupt"
    )
    assert after["last_event_at"] == before["last_event_at"], (
        "a late event moved the clock of an interrupted session"
    )
