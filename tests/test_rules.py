"""The rules of the contract, checked on the migrated `sweeper` database.

Tests that compare with now() seed and check inside one transaction, where
now() stays fixed. That also keeps their rows invisible to the real pg_cron
job, which sweeps `sweeper` every 10 minutes.
"""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.rows import dict_row

IDLE_TIMEOUT_MESSAGE = "idle_timeout must be between 1 minute and 7 days"


def add_session(
    conn: psycopg.Connection,
    user_id: str,
    idle: str = "0 seconds",
    status: str = "active",
    duration_seconds: int = 0,
) -> int:
    """Insert a session whose last event was `idle` ago and return its id."""
    row = conn.execute(
        """
        insert into learning.sessions
            (user_id, status, started_at, last_event_at, ended_at, duration_seconds)
        select
            %(user_id)s,
            %(status)s,
            t.at - interval '5 minutes',
            t.at,
            case when %(status)s <> 'active' then t.at end,
            %(duration)s
        from (select now() - %(idle)s::interval as at) as t
        returning id
        """,
        {
            "user_id": user_id,
            "status": status,
            "idle": idle,
            "duration": duration_seconds,
        },
    ).fetchone()
    return row[0]


def add_event(
    conn: psycopg.Connection,
    session_id: int,
    user_id: str,
    occurred_at: datetime | str = "now",
) -> None:
    conn.execute(
        "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
        " values (%s, %s, 'page_view', %s::timestamptz)",
        [session_id, user_id, occurred_at],
    )


def get_session(conn: psycopg.Connection, session_id: int) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select *, now() as now, clock_timestamp() as clock"
            " from learning.sessions where id = %s",
            [session_id],
        ).fetchone()


def is_server_time(row: dict) -> bool:
    """Return whether last_event_at lies between the transaction start and the read."""
    return row["now"] <= row["last_event_at"] <= row["clock"]


def interrupt(conn: psycopg.Connection, user_id: str | None) -> int:
    return conn.execute(
        "select learning.interrupt_stale_sessions(%s)", [user_id]
    ).fetchone()[0]


def sweep(conn: psycopg.Connection) -> tuple[int, int]:
    """Run the job's command in autocommit mode and return (interrupted, batches)."""
    assert conn.autocommit, "the sweep commits per batch and needs autocommit"
    return tuple(conn.execute("call learning.sweep_stale_sessions()").fetchone())


def row_counts(conn: psycopg.Connection) -> tuple[int, int]:
    return conn.execute(
        "select (select count(*) from learning.sessions),"
        " (select count(*) from learning.reading_events)"
    ).fetchone()


def set_setting(conn: psycopg.Connection, column: str, value: object) -> None:
    query = sql.SQL("update learning.settings set {} = %s").format(
        sql.Identifier(column)
    )
    conn.execute(query, [value])


# Table constraints


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("user_id", "", "sessions_user_id_check"),
        ("status", "paused", "sessions_status_check"),
        ("duration_seconds", -1, "sessions_duration_seconds_check"),
    ],
)
def test_sessions_invalid_value_is_rejected(db, column, value, constraint):
    values = {"user_id": "u1", "status": "active", "duration_seconds": 0, column: value}

    with pytest.raises(errors.CheckViolation) as caught:
        db.execute(
            "insert into learning.sessions (user_id, status, duration_seconds)"
            " values (%(user_id)s, %(status)s, %(duration_seconds)s)",
            values,
        )

    assert caught.value.diag.constraint_name == constraint, (
        f"{column} = {value!r} must be rejected by {constraint}"
    )


def test_sessions_defaults_match_contract(db):
    with db.transaction():
        session_id = db.execute(
            "insert into learning.sessions (user_id) values ('u1') returning id"
        ).fetchone()[0]
        row = get_session(db, session_id)

    assert row["status"] == "active", "a new session must default to active"
    assert row["started_at"] == row["now"], "started_at must default to now()"
    assert row["last_event_at"] == row["now"], "last_event_at must default to now()"
    assert row["ended_at"] is None, "an active session must have no ended_at"
    assert row["duration_seconds"] == 0, "duration_seconds must default to 0"


# Stale boundary


def test_interrupt_stale_sessions_boundary_is_strict(db):
    with db.transaction():
        exact = add_session(db, "u1", idle="30 minutes")
        over = add_session(db, "u1", idle="30 minutes 0.000001 seconds")

        interrupted = interrupt(db, "u1")

        exact_row = get_session(db, exact)
        over_row = get_session(db, over)

    assert interrupted == 1, "exactly one session is idle for longer than the timeout"
    assert exact_row["status"] == "active", (
        "a session idle for exactly the timeout must not be stale"
    )
    assert over_row["status"] == "interrupted", (
        "a session idle for a microsecond more than the timeout must be stale"
    )


def test_trigger_boundary_is_strict(db):
    with db.transaction():
        exact = add_session(db, "u1", idle="30 minutes")
        over = add_session(db, "u1", idle="30 minutes 0.000001 seconds")
        current = add_session(db, "u1")

        add_event(db, current, "u1")

        exact_row = get_session(db, exact)
        over_row = get_session(db, over)

    assert exact_row["status"] == "active", (
        "the trigger interrupted a session idle for exactly the timeout"
    )
    assert over_row["status"] == "interrupted", (
        "the trigger left a session idle for longer than the timeout active"
    )


def test_stale_cutoff_is_now_minus_idle_timeout(db):
    with db.transaction():
        row = db.execute(
            "select learning.stale_cutoff() = now() - interval '30 minutes'"
        ).fetchone()

    assert row[0] is True, "stale_cutoff() must be now() minus the idle timeout"


def test_sweep_uses_idle_timeout(db):
    """The sweep has its own now(), so the sessions sit a second either side."""
    exact = add_session(db, "u1", idle="29 minutes 59 seconds")
    over = add_session(db, "u1", idle="30 minutes 1 second")

    interrupted, _ = sweep(db)

    assert interrupted == 1, (
        "the sweep must interrupt only the session past the timeout"
    )
    assert get_session(db, exact)["status"] == "active", (
        "the sweep interrupted a session idle for less than the timeout"
    )
    assert get_session(db, over)["status"] == "interrupted", (
        "the sweep left a stale session active"
    )


# Scope


def test_interrupt_stale_sessions_touches_only_its_user(db):
    with db.transaction():
        own = add_session(db, "u1", idle="2 hours")
        other = add_session(db, "u2", idle="2 hours")

        interrupted = interrupt(db, "u1")

        own_row = get_session(db, own)
        other_row = get_session(db, other)

    assert interrupted == 1, "the function must count only its user's sessions"
    assert own_row["status"] == "interrupted", "the user's stale session stayed active"
    assert other_row["status"] == "active", (
        "interrupt_stale_sessions('u1') interrupted a session of u2"
    )


def test_interrupt_stale_sessions_returns_zero_when_none_stale(db):
    with db.transaction():
        add_session(db, "u1", idle="5 minutes")

        interrupted = interrupt(db, "u1")

    assert interrupted == 0, "a fresh session must not be counted as interrupted"


def test_trigger_touches_only_inserting_users(db):
    with db.transaction():
        current = add_session(db, "u1")
        own_stale = add_session(db, "u1", idle="2 hours")
        other_stale = add_session(db, "u2", idle="2 hours")

        add_event(db, current, "u1")

        own_row = get_session(db, own_stale)
        other_row = get_session(db, other_stale)

    assert own_row["status"] == "interrupted", (
        "the trigger left the inserting user's stale session active"
    )
    assert other_row["status"] == "active", "an event of u1 interrupted a session of u2"


# Interrupting


def test_interrupt_sets_ended_at_to_last_event_at(db):
    with db.transaction():
        session_id = add_session(db, "u1", idle="3 hours", duration_seconds=754)
        before = get_session(db, session_id)

        interrupt(db, "u1")

        after = get_session(db, session_id)

    assert after["ended_at"] == before["last_event_at"], (
        "ended_at must be the last event's time, not the time of the interrupt"
    )
    assert after["last_event_at"] == before["last_event_at"], (
        "interrupting must not move the liveness clock"
    )
    assert after["duration_seconds"] == 754, "interrupting must keep duration_seconds"


def test_trigger_interrupt_sets_ended_at_to_last_event_at(db):
    with db.transaction():
        current = add_session(db, "u1")
        stale = add_session(db, "u1", idle="3 hours", duration_seconds=42)
        before = get_session(db, stale)

        add_event(db, current, "u1")

        after = get_session(db, stale)

    assert after["status"] == "interrupted", "the trigger left a stale session active"
    assert after["ended_at"] == before["last_event_at"], (
        "the trigger must set ended_at to last_event_at"
    )
    assert after["duration_seconds"] == 42, "the trigger must keep duration_seconds"


def test_sweep_sets_ended_at_to_last_event_at(db):
    stale = add_session(db, "u1", idle="3 hours", duration_seconds=99)
    before = get_session(db, stale)

    sweep(db)

    after = get_session(db, stale)
    assert after["status"] == "interrupted", "the sweep left a stale session active"
    assert after["ended_at"] == before["last_event_at"], (
        "the sweep must set ended_at to last_event_at"
    )
    assert after["duration_seconds"] == 99, "the sweep must keep duration_seconds"


# Terminal states


@pytest.mark.parametrize("status", ["completed", "interrupted"])
def test_trigger_leaves_final_session_unchanged(db, status):
    with db.transaction():
        session_id = add_session(db, "u1", idle="2 hours", status=status)
        before = get_session(db, session_id)

        add_event(db, session_id, "u1")

        after = get_session(db, session_id)
        events = db.execute(
            "select count(*) from learning.reading_events where session_id = %s",
            [session_id],
        ).fetchone()[0]

    assert events == 1, f"an event for a {status} session must be stored"
    assert after["status"] == status, f"an event reopened a {status} session"
    assert after["last_event_at"] == before["last_event_at"], (
        f"an event moved the clock of a {status} session"
    )
    assert after["ended_at"] == before["ended_at"], (
        f"an event changed ended_at of a {status} session"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("completed", "active"),
        ("completed", "interrupted"),
        ("interrupted", "active"),
        ("interrupted", "completed"),
    ],
)
def test_final_state_guard_rejects_status_change(db, old, new):
    session_id = add_session(db, "u1", status=old)

    with pytest.raises(errors.CheckViolation) as caught:
        db.execute(
            "update learning.sessions set status = %s, ended_at = null where id = %s",
            [new, session_id],
        )

    assert caught.value.diag.message_primary == (
        f"session {session_id} is {old} and cannot become {new}"
    ), "the guard's message must name the session and both states"
    assert get_session(db, session_id)["status"] == old, (
        "the rejected update changed status"
    )


def test_final_state_guard_allows_active_to_completed(db):
    session_id = add_session(db, "u1")

    db.execute(
        "update learning.sessions set status = 'completed', ended_at = now() where id = %s",
        [session_id],
    )

    assert get_session(db, session_id)["status"] == "completed", (
        "the app must be able to complete an active session"
    )


# Ownership


def test_event_for_other_users_session_is_rejected(db):
    session_id = add_session(db, "u1")
    before = get_session(db, session_id)

    with pytest.raises(errors.ForeignKeyViolation):
        add_event(db, session_id, "u2")

    assert row_counts(db) == (1, 0), "a rejected event must not be stored"
    assert get_session(db, session_id)["last_event_at"] == before["last_event_at"], (
        "another user's event moved the session's clock"
    )


def test_event_for_missing_session_is_rejected(db):
    with pytest.raises(errors.ForeignKeyViolation):
        add_event(db, 12345, "u1")

    assert row_counts(db) == (0, 0), "an event for a missing session must not be stored"


def test_multi_row_insert_with_foreign_row_stores_nothing(db):
    own = add_session(db, "u1", idle="10 minutes")
    stale = add_session(db, "u1", idle="2 hours")
    foreign = add_session(db, "u2", idle="10 minutes")
    own_before = get_session(db, own)

    with pytest.raises(errors.ForeignKeyViolation):
        db.execute(
            """
            insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
            values
                (%(own)s, 'u1', 'page_view', now()),
                (%(own)s, 'u1', 'page_view', now()),
                (%(foreign)s, 'u1', 'page_view', now())
            """,
            {"own": own, "foreign": foreign},
        )

    assert row_counts(db) == (3, 0), "no row of a rejected insert may be stored"
    assert get_session(db, own)["last_event_at"] == own_before["last_event_at"], (
        "a rejected insert touched a session"
    )
    assert get_session(db, stale)["status"] == "active", (
        "a rejected insert interrupted a session"
    )


# Liveness clock


NEXT_YEAR = datetime.now(UTC) + timedelta(days=365)


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(1970, 1, 1, tzinfo=UTC), NEXT_YEAR],
    ids=["1970", "next-year"],
)
def test_trigger_sets_clock_to_server_time(db, occurred_at):
    with db.transaction():
        session_id = add_session(db, "u1", idle="10 minutes")

        add_event(db, session_id, "u1", occurred_at=occurred_at)

        row = get_session(db, session_id)
        stored = db.execute(
            "select occurred_at from learning.reading_events"
        ).fetchone()[0]

    assert is_server_time(row), (
        f"last_event_at must be the server's time of the insert, not {occurred_at}"
    )
    assert stored == occurred_at, "occurred_at must be stored as the client sent it"


def test_trigger_never_moves_clock_backwards(db):
    with db.transaction():
        session_id = add_session(db, "u1", idle="-1 hour")
        before = get_session(db, session_id)

        add_event(db, session_id, "u1")

        after = get_session(db, session_id)

    assert before["last_event_at"] > before["now"], "the seeded clock must be ahead"
    assert after["last_event_at"] == before["last_event_at"], (
        "an insert moved last_event_at backwards"
    )


# User id checks


@pytest.mark.parametrize("user_id", [None, ""], ids=["null", "empty"])
def test_interrupt_stale_sessions_rejects_missing_user(db, user_id):
    with pytest.raises(errors.NullValueNotAllowed) as caught:
        interrupt(db, user_id)

    assert caught.value.sqlstate == "22004", (
        "the error needs SQLSTATE null_value_not_allowed"
    )
    assert caught.value.diag.message_primary == "user id must not be null or empty", (
        "the message must say that the user id is null or empty"
    )


# Idle timeout


def test_idle_timeout_update_applies_to_function(db):
    set_setting(db, "idle_timeout", "5 minutes")

    with db.transaction():
        session_id = add_session(db, "u1", idle="10 minutes")
        interrupted = interrupt(db, "u1")
        status = get_session(db, session_id)["status"]

    assert interrupted == 1, (
        "a 5 minute timeout must make a 10 minute idle session stale"
    )
    assert status == "interrupted", "the function ignored the changed idle timeout"


def test_idle_timeout_update_applies_to_trigger(db):
    set_setting(db, "idle_timeout", "2 hours")

    with db.transaction():
        current = add_session(db, "u1")
        kept = add_session(db, "u1", idle="1 hour")
        stale = add_session(db, "u1", idle="3 hours")

        add_event(db, current, "u1")

        kept_row = get_session(db, kept)
        stale_row = get_session(db, stale)

    assert kept_row["status"] == "active", (
        "the trigger used the default timeout instead of 2 hours"
    )
    assert stale_row["status"] == "interrupted", (
        "the trigger left a session idle past the 2 hour timeout active"
    )


def test_idle_timeout_update_applies_to_sweep(db):
    set_setting(db, "idle_timeout", "1 minute")
    stale = add_session(db, "u1", idle="2 minutes")

    interrupted, _ = sweep(db)

    assert interrupted == 1, "the sweep ignored the changed idle timeout"
    assert get_session(db, stale)["status"] == "interrupted", (
        "the sweep left a session idle past the 1 minute timeout active"
    )


@pytest.mark.parametrize("value", ["0 seconds", "-5 minutes", "8 days", "59 seconds"])
def test_idle_timeout_out_of_range_is_rejected(db, value):
    with pytest.raises(errors.CheckViolation) as caught:
        set_setting(db, "idle_timeout", value)

    message = caught.value.diag.message_primary
    assert message.startswith(IDLE_TIMEOUT_MESSAGE), (
        f"the message must state the allowed range, got {message!r}"
    )
    row = db.execute("select idle_timeout::text from learning.settings").fetchone()
    assert row[0] == "00:30:00", "a rejected update changed the idle timeout"


@pytest.mark.parametrize("value", ["1 minute", "7 days"])
def test_idle_timeout_range_includes_its_ends(db, value):
    set_setting(db, "idle_timeout", value)

    matches = db.execute(
        "select idle_timeout = %s::interval from learning.settings", [value]
    ).fetchone()[0]
    assert matches is True, f"{value} is inside the allowed range and must be accepted"


def test_idle_timeout_not_an_interval_is_rejected(db):
    with pytest.raises(errors.InvalidDatetimeFormat):
        set_setting(db, "idle_timeout", "half an hour")


@pytest.mark.parametrize("value", [0, 100001])
def test_sweep_batch_size_out_of_range_is_rejected(db, value):
    with pytest.raises(errors.CheckViolation) as caught:
        set_setting(db, "sweep_batch_size", value)

    assert caught.value.diag.message_primary == (
        f"sweep_batch_size must be between 1 and 100000, not {value}"
    ), "the message must state the allowed range"


def test_settings_delete_is_rejected(db):
    with pytest.raises(errors.RestrictViolation) as caught:
        db.execute("delete from learning.settings")

    assert caught.value.diag.message_primary == (
        "the settings row of session-sweeper cannot be deleted"
    ), "the message must say that the row cannot be deleted"
    rows = db.execute("select count(*) from learning.settings").fetchone()[0]
    assert rows == 1, "the settings row is gone"


def test_settings_second_row_is_rejected(db):
    with pytest.raises(errors.UniqueViolation):
        db.execute("insert into learning.settings default values")


# Nothing is deleted


def seed_mixed(conn: psycopg.Connection) -> dict[str, int]:
    """Seed fresh, stale, completed and interrupted sessions of two users."""
    ids = {
        "fresh": add_session(conn, "u1"),
        "stale": add_session(conn, "u1", idle="2 hours"),
        "completed": add_session(conn, "u1", idle="3 hours", status="completed"),
        "interrupted": add_session(conn, "u1", idle="4 hours", status="interrupted"),
        "other": add_session(conn, "u2", idle="2 hours"),
    }
    for name in ("completed", "interrupted"):
        add_event(conn, ids[name], "u1")
    return ids


def test_function_deletes_nothing(db):
    seed_mixed(db)
    before = row_counts(db)

    interrupt(db, "u1")

    assert row_counts(db) == before, "interrupt_stale_sessions deleted rows"


def test_trigger_deletes_nothing(db):
    ids = seed_mixed(db)
    sessions, events = row_counts(db)

    add_event(db, ids["fresh"], "u1")

    assert row_counts(db) == (sessions, events + 1), (
        "an event insert must add its event and delete nothing"
    )


def test_sweep_deletes_nothing(db):
    seed_mixed(db)
    before = row_counts(db)

    sweep(db)

    assert row_counts(db) == before, "the sweep deleted rows"


# Sweep


def seed_stale(conn: psycopg.Connection, count: int) -> None:
    conn.execute(
        """
        insert into learning.sessions (user_id, started_at, last_event_at)
        select 'user-' || (i %% 4), now() - interval '3 hours', now() - interval '2 hours'
        from generate_series(1, %s) as i
        """,
        [count],
    )


def latest_sweep_run(conn: psycopg.Connection) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from learning.sweep_runs order by id desc limit 1"
        ).fetchone()


def test_sweep_interrupts_all_in_batches(db):
    set_setting(db, "sweep_batch_size", 3)
    seed_stale(db, 10)
    fresh = add_session(db, "user-1")
    completed = add_session(db, "user-2", idle="2 hours", status="completed")

    interrupted, batches = sweep(db)

    assert interrupted == 10, "one CALL must interrupt every stale session"
    assert batches == 4, "10 sessions in batches of 3 take 4 transactions"
    assert get_session(db, fresh)["status"] == "active", (
        "the sweep interrupted a fresh session"
    )
    assert get_session(db, completed)["status"] == "completed", (
        "the sweep changed a completed session"
    )
    active = db.execute(
        "select count(*) from learning.sessions where status = 'active'"
    ).fetchone()[0]
    assert active == 1, "only the fresh session may stay active"


def test_sweep_records_run(db):
    set_setting(db, "sweep_batch_size", 3)
    seed_stale(db, 10)

    sweep(db)

    run = latest_sweep_run(db)
    assert run["interrupted"] == 10, "sweep_runs must record the sessions interrupted"
    assert run["batches"] == 4, (
        "sweep_runs must record the batches that interrupted any"
    )
    assert run["batch_size"] == 3, "sweep_runs must record the batch size in force"
    assert run["finished_at"] is not None, "a finished sweep must record finished_at"


def test_sweep_counts_only_batches_that_interrupted(db):
    """The batch that finds nothing after a full batch is not counted."""
    set_setting(db, "sweep_batch_size", 3)
    seed_stale(db, 9)

    interrupted, batches = sweep(db)

    assert interrupted == 9, "one CALL must interrupt every stale session"
    assert batches == 3, "9 sessions in batches of 3 take 3 transactions that interrupt"


def test_sweep_second_call_interrupts_nothing(db):
    set_setting(db, "sweep_batch_size", 3)
    seed_stale(db, 10)
    sweep(db)

    interrupted, batches = sweep(db)

    assert interrupted == 0, "a second sweep found sessions the first one missed"
    assert batches == 0, "a sweep that interrupts nothing must count no batches"
    run = latest_sweep_run(db)
    assert run["interrupted"] == 0, "sweep_runs must record the empty run"
    assert run["finished_at"] is not None, "an empty sweep must record finished_at"


def test_sweep_catches_session_started_after_last_event(db):
    """The sweep finds a stale session whose started_at is after last_event_at."""
    session_id = db.execute(
        """
        insert into learning.sessions (user_id, started_at, last_event_at)
        values ('u1', now(), now() - interval '2 hours')
        returning id
        """
    ).fetchone()[0]

    interrupted, _ = sweep(db)

    assert interrupted == 1, "the sweep missed a stale session with a later started_at"
    assert get_session(db, session_id)["status"] == "interrupted"


def test_sweep_in_transaction_block_is_rejected(db):
    seed_stale(db, 2)

    with pytest.raises(errors.InvalidTransactionTermination), db.transaction():
        db.execute("call learning.sweep_stale_sessions()")

    stale = db.execute(
        "select count(*) from learning.sessions where status = 'active'"
    ).fetchone()[0]
    assert stale == 2, "a failed sweep inside a transaction block changed sessions"
