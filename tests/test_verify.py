"""session-sweeper verify: hand edits to installed objects and jobs must show up."""

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from cli import main
from session_sweeper import cron


@pytest.fixture
def installed(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Start from both jobs as migrate leaves them, and restore them after the test."""
    cron.ensure_jobs(db, db)
    yield db
    cron.ensure_jobs(db, db)
    db.execute("select cron.alter_job(jobid, active => true) from cron.job")


def run_verify(dsn: str):
    return CliRunner().invoke(main, ["verify", "--dsn", dsn])


def test_verify_fresh_install_matches(installed, sweeper_dsn):
    """expected_objects.json must match a fresh apply of every migration."""
    result = run_verify(sweeper_dsn)

    assert result.exit_code == 0, (
        "a fresh install must match expected_objects.json; after changing a migration, "
        f"regenerate it with python -m session_sweeper.verify --write DSN:\n{result.output}"
    )
    assert result.output == "Differences:\n  (none)\n", "a match must print (none)"


def test_verify_function_edited_by_hand(installed, sweeper_dsn):
    original = installed.execute(
        "select pg_get_functiondef('learning.stale_cutoff()'::regprocedure)"
    ).fetchone()[0]
    installed.execute(
        "create or replace function learning.stale_cutoff() returns timestamptz"
        " language sql stable set search_path = pg_catalog, learning"
        " as $$ select pg_catalog.now() - interval '1 hour' $$"
    )
    try:
        result = run_verify(sweeper_dsn)
    finally:
        installed.execute(original)

    assert result.exit_code == 1, "a hand-edited function must fail verify"
    assert (
        "  function learning.stale_cutoff() differs from the migrations"
        in result.output
    ), f"verify must name the edited function:\n{result.output}"


def test_verify_function_config_changed(installed, sweeper_dsn):
    installed.execute(
        "alter function learning.interrupt_stale_sessions(text) reset search_path"
    )
    try:
        result = run_verify(sweeper_dsn)
    finally:
        installed.execute(
            "alter function learning.interrupt_stale_sessions(text)"
            " set search_path = pg_catalog, learning"
        )

    assert (
        "function learning.interrupt_stale_sessions(text) differs" in result.output
    ), f"a removed SET clause must show up:\n{result.output}"


def test_verify_extra_function(installed, sweeper_dsn):
    installed.execute(
        "create function learning.added_by_hand() returns int language sql as 'select 1'"
    )
    try:
        result = run_verify(sweeper_dsn)
    finally:
        installed.execute("drop function learning.added_by_hand()")

    assert "function learning.added_by_hand() is not defined by the migrations" in (
        result.output
    ), f"a function added by hand must show up:\n{result.output}"


def test_verify_trigger_disabled(installed, sweeper_dsn):
    installed.execute(
        "drop trigger reading_events_touch_sessions on learning.reading_events"
    )
    try:
        result = run_verify(sweeper_dsn)
    finally:
        installed.execute(
            "create trigger reading_events_touch_sessions after insert on learning.reading_events"
            " referencing new table as new_events for each statement"
            " execute function learning.tg_reading_events__touch_sessions()"
        )

    assert (
        "trigger reading_events_touch_sessions on learning.reading_events is missing"
        in result.output
    ), f"a dropped trigger must show up:\n{result.output}"


def test_verify_index_changed(installed, sweeper_dsn):
    original = installed.execute(
        "select pg_get_indexdef('learning.sessions_active_user_id_idx'::regclass)"
    ).fetchone()[0]
    installed.execute("drop index learning.sessions_active_user_id_idx")
    installed.execute(
        "create index sessions_active_user_id_idx on learning.sessions (user_id)"
    )
    try:
        result = run_verify(sweeper_dsn)
    finally:
        installed.execute("drop index learning.sessions_active_user_id_idx")
        installed.execute(original)

    assert "index learning.sessions_active_user_id_idx differs" in result.output, (
        f"an index rebuilt without its predicate must show up:\n{result.output}"
    )


def test_verify_job_schedule_changed(installed, sweeper_dsn):
    installed.execute(
        "select cron.alter_job(jobid, schedule => '*/30 * * * *') from cron.job"
        " where jobname = 'interrupt-stale-sessions'"
    )

    result = run_verify(sweeper_dsn)

    assert result.exit_code == 1, (
        "a job schedule other than the setting must fail verify"
    )
    assert (
        "job interrupt-stale-sessions has schedule '*/30 * * * *', expected '*/10 * * * *'"
        in result.output
    ), f"verify must name the schedule and the configured one:\n{result.output}"


def test_verify_job_command_changed(installed, sweeper_dsn):
    installed.execute(
        "select cron.alter_job(jobid, command => 'select 1') from cron.job"
        " where jobname = 'interrupt-stale-sessions'"
    )

    result = run_verify(sweeper_dsn)

    assert (
        "job interrupt-stale-sessions has a command other than session-sweeper's"
        in (result.output)
    ), f"a changed job command must show up:\n{result.output}"


def test_verify_purge_job_missing(installed, sweeper_dsn):
    installed.execute("select cron.unschedule('purge-sweep-run-details')")

    result = run_verify(sweeper_dsn)

    assert "job purge-sweep-run-details is missing" in result.output, (
        f"a missing purge job must show up:\n{result.output}"
    )
