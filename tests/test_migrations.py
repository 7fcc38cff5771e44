"""Applying and rolling back the migrations with session_sweeper.migrate.

Full migrate and rollback cycles run on a throwaway server whose
cron.database_name is a fresh database, because dropping the shared
server's cron database `sweeper` would stop its pg_cron launcher.
"""

import threading

import psycopg
import pytest
from helpers import ALL_MIGRATIONS, count_down_to, migrations_before, migrations_from

from session_sweeper.migrate import (
    MigrationError,
    apply_migrations,
    rollback_migrations,
)

CYCLE_DATABASE = "cycle"
JOB_NAME = "interrupt-stale-sessions"


@pytest.fixture
def cron_dsn(throwaway_server) -> str:
    """Start a throwaway server whose cron database is a fresh, empty database."""
    server = throwaway_server(cron_database=CYCLE_DATABASE)
    return server.create_database(CYCLE_DATABASE)


def applied_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select migration_id from _yoyo_migration order by migration_id"
        ).fetchall()
    return [row[0] for row in rows]


def seed(dsn: str) -> None:
    """Insert one stale session of u1, one current session of u1 and two events."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            insert into learning.sessions (user_id, started_at, last_event_at)
            values
                ('u1', now() - interval '3 hours', now() - interval '2 hours'),
                ('u1', now() - interval '1 minute', now() - interval '1 minute')
            """
        )
        conn.execute(
            """
            insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
            values (2, 'u1', 'open', now()), (2, 'u1', 'page_view', now())
            """
        )


def dump(dsn: str) -> tuple[list, list]:
    """Return every session and event row as JSON, in id order."""
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute(
            "select to_jsonb(s) from learning.sessions as s order by s.id"
        ).fetchall()
        events = conn.execute(
            "select to_jsonb(e) from learning.reading_events as e order by e.id"
        ).fetchall()
    return sessions, events


def relation_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select to_regclass(%s) is not null", [name]).fetchone()[0]


def job_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select count(*) from cron.job where jobname = %s", [JOB_NAME]
        ).fetchone()[0]


def session_status(dsn: str, session_id: int) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select status from learning.sessions where id = %s", [session_id]
        ).fetchone()[0]


# A database that is not the cron database


def test_migrate_outside_cron_database_fails_at_job(fresh_dsn):
    name = psycopg.conninfo.conninfo_to_dict(fresh_dsn)["dbname"]

    with pytest.raises(MigrationError) as caught:
        apply_migrations(fresh_dsn)

    assert str(caught.value) == (
        f"0005_schedule_sweep_job failed: pg_cron runs in database sweeper, not in {name}"
    ), "the error must name the cron database and this one"
    assert caught.value.hint == (
        f"Set cron.database_name = '{name}' in postgresql.conf and restart PostgreSQL."
    ), "the hint must say how to move pg_cron to this database"
    assert caught.value.done == migrations_before("0005"), (
        "the error must list the migrations applied before 0005 failed"
    )
    assert applied_ids(fresh_dsn) == migrations_before("0005"), (
        "0001 to 0004 must stay applied when 0005 fails"
    )


def test_migrate_outside_cron_database_keeps_lazy_path(fresh_dsn):
    with pytest.raises(MigrationError):
        apply_migrations(fresh_dsn)

    seed(fresh_dsn)

    assert session_status(fresh_dsn, 1) == "interrupted", (
        "without pg_cron the trigger must still interrupt stale sessions"
    )
    assert session_status(fresh_dsn, 2) == "active", (
        "the trigger interrupted the session its events name"
    )


def test_migrate_outside_cron_database_retry_fails_same(fresh_dsn):
    with pytest.raises(MigrationError):
        apply_migrations(fresh_dsn)

    with pytest.raises(MigrationError) as caught:
        apply_migrations(fresh_dsn)

    assert str(caught.value).startswith("0005_schedule_sweep_job failed:"), (
        "a second migrate must retry only 0005"
    )
    assert applied_ids(fresh_dsn) == migrations_before("0005"), (
        "a failed retry must leave 0001 to 0004 applied"
    )


def test_migrate_with_lock_held_times_out(fresh_dsn):
    with pytest.raises(MigrationError):
        apply_migrations(fresh_dsn)
    with psycopg.connect(fresh_dsn) as conn:
        conn.execute(
            "insert into yoyo_lock (locked, ctime, pid) values (1, now(), 424242)"
        )

    with pytest.raises(MigrationError) as caught:
        apply_migrations(fresh_dsn, lock_timeout=1)

    name = psycopg.conninfo.conninfo_to_dict(fresh_dsn)["dbname"]
    assert str(caught.value).startswith(
        f"another migration holds the lock on {name}:"
    ), "a held lock must be reported as such"
    assert "424242" in str(caught.value), (
        "the error must name the process holding the lock"
    )
    assert "break-lock" in caught.value.hint, "the hint must point to break-lock"


def test_rollback_without_migrations_does_nothing(fresh_dsn):
    rolled_back = rollback_migrations(fresh_dsn, count=None)

    assert rolled_back == [], "an empty database has nothing to roll back"


# The cron database of a throwaway server


def test_migrate_applies_all_in_order(cron_dsn):
    applied = apply_migrations(cron_dsn)

    assert applied == ALL_MIGRATIONS, "migrate must apply every migration in order"
    assert applied_ids(cron_dsn) == ALL_MIGRATIONS, "yoyo must record every migration"
    assert job_count(cron_dsn) == 1, "migrate must schedule exactly one sweep job"


def test_migrate_twice_applies_nothing(cron_dsn):
    apply_migrations(cron_dsn)

    applied = apply_migrations(cron_dsn)

    assert applied == [], "a second migrate must apply nothing"
    assert job_count(cron_dsn) == 1, "a second migrate must not add a second job"


def test_migrate_reapplies_after_lost_records(cron_dsn):
    """yoyo records a migration after applying it, so a kill in between is harmless."""
    apply_migrations(cron_dsn)
    seed(cron_dsn)
    with psycopg.connect(cron_dsn) as conn:
        conn.execute("update learning.settings set idle_timeout = '45 minutes'")
        conn.execute("delete from _yoyo_migration")
    before = dump(cron_dsn)

    applied = apply_migrations(cron_dsn)

    assert applied == ALL_MIGRATIONS, "every migration must apply again over itself"
    assert dump(cron_dsn) == before, "applying the migrations again changed the data"
    assert job_count(cron_dsn) == 1, "applying 0005 again must keep one job"
    with psycopg.connect(cron_dsn) as conn:
        row = conn.execute(
            "select idle_timeout::text from learning.settings"
        ).fetchone()
    assert row[0] == "00:45:00", "applying 0002 again reset a changed setting"


def test_migrate_concurrent_applies_once(cron_dsn):
    """Two migrates at once: one applies everything and the other nothing."""
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(apply_migrations(cron_dsn, lock_timeout=20))
        except BaseException as error:  # noqa: BLE001 - reported by the asserts below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == [], f"a concurrent migrate failed: {failures!r}"
    assert sorted(results, key=len) == [[], ALL_MIGRATIONS], (
        "one migrate must apply everything and the other nothing"
    )
    assert job_count(cron_dsn) == 1, "concurrent migrates must schedule one job"


def test_rollback_all_with_rows_is_rejected(cron_dsn):
    apply_migrations(cron_dsn)
    seed(cron_dsn)
    before = dump(cron_dsn)

    with pytest.raises(MigrationError) as caught:
        rollback_migrations(cron_dsn, count=None)

    assert str(caught.value) == (
        "rollback would drop 2 sessions and 2 reading events, so nothing was rolled back"
    ), "the error must state the row counts that a rollback would drop"
    assert "--drop-data" in caught.value.hint, "the hint must name --drop-data"
    assert caught.value.done == [], "a rejected rollback must roll back nothing"
    assert dump(cron_dsn) == before, "a rejected rollback changed the data"
    assert applied_ids(cron_dsn) == ALL_MIGRATIONS, (
        "a rollback rejected for its rows must leave every migration applied"
    )
    assert job_count(cron_dsn) == 1, "a rejected rollback unscheduled the job"


def test_rollback_all_drop_data_drops_schema(cron_dsn):
    apply_migrations(cron_dsn)
    seed(cron_dsn)

    rolled_back = rollback_migrations(cron_dsn, count=None, drop_data=True)

    assert rolled_back == ALL_MIGRATIONS[::-1], "rollback --all must go latest first"
    assert applied_ids(cron_dsn) == [], "no migration may stay recorded"
    assert not relation_exists(cron_dsn, "learning.sessions"), "the tables must be gone"
    assert job_count(cron_dsn) == 0, "the sweep job must be unscheduled"


def test_migrate_after_rollback_all_restores_everything(cron_dsn):
    apply_migrations(cron_dsn)
    seed(cron_dsn)
    rollback_migrations(cron_dsn, count=None, drop_data=True)

    applied = apply_migrations(cron_dsn)
    seed(cron_dsn)

    assert applied == ALL_MIGRATIONS, (
        "migrate after rollback --all must apply everything"
    )
    assert job_count(cron_dsn) == 1, "migrate must schedule the job again"
    assert session_status(cron_dsn, 1) == "interrupted", (
        "the trigger must work again after a reinstall"
    )


def test_rollback_count_rolls_back_latest(cron_dsn):
    apply_migrations(cron_dsn)

    rolled_back = rollback_migrations(cron_dsn, count=count_down_to("0003"))

    assert rolled_back == migrations_from("0004")[::-1], (
        "rollback with a count must undo that many of the latest migrations"
    )
    assert applied_ids(cron_dsn) == migrations_before("0004"), (
        "0001 to 0003 must stay applied"
    )
    assert job_count(cron_dsn) == 0, "rolling back 0005 must unschedule the job"


def test_rollback_job_trigger_and_sweep_keeps_data(cron_dsn):
    apply_migrations(cron_dsn)
    seed(cron_dsn)
    before = dump(cron_dsn)

    rolled_back = rollback_migrations(cron_dsn, count=count_down_to("0002"))

    assert rolled_back == migrations_from("0003")[::-1], (
        "the rollback must undo the latest migrations down to 0003"
    )
    assert dump(cron_dsn) == before, (
        "rolling back 0003 and later migrations changed sessions or events"
    )
    assert not relation_exists(cron_dsn, "learning.sweep_runs"), (
        "rolling back 0003 must drop the sweep's run history"
    )


def test_migrate_after_partial_rollback_keeps_data(cron_dsn):
    apply_migrations(cron_dsn)
    seed(cron_dsn)
    before = dump(cron_dsn)
    rollback_migrations(cron_dsn, count=count_down_to("0002"))

    applied = apply_migrations(cron_dsn)

    assert applied == migrations_from("0003"), (
        "migrate must apply 0003 and the later migrations again"
    )
    assert dump(cron_dsn) == before, (
        "applying 0003 and the later migrations again changed the data"
    )
    assert job_count(cron_dsn) == 1, "the job must be scheduled once again"


def test_rollback_changed_settings_is_rejected(cron_dsn):
    apply_migrations(cron_dsn)
    with psycopg.connect(cron_dsn) as conn:
        conn.execute("update learning.settings set idle_timeout = '45 minutes'")

    with pytest.raises(MigrationError) as caught:
        rollback_migrations(cron_dsn, count=count_down_to("0001"))

    assert str(caught.value) == (
        "0002_create_interrupt_function failed: "
        "rollback would drop settings changed from their defaults"
    ), "a rollback must not silently drop changed settings"
    assert "--drop-data" in caught.value.hint, "the hint must name --drop-data"
    assert "0002_create_interrupt_function" in applied_ids(cron_dsn), (
        "0002 must stay applied when its rollback is rejected"
    )
    with psycopg.connect(cron_dsn) as conn:
        row = conn.execute(
            "select idle_timeout::text from learning.settings"
        ).fetchone()
    assert row[0] == "00:45:00", "a rejected rollback changed the settings"
