"""session-sweeper config: show and change the settings, and keep the jobs in line."""

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from cli import main
from session_sweeper import cron


@pytest.fixture
def settings(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Restore every setting and both jobs after the test."""
    cron.ensure_jobs(db, db)
    yield db
    db.execute(
        "update learning.settings set sweep_schedule = '*/10 * * * *', sweep_batch_size = 1000,"
        " run_history_retention = '30 days', run_details_retention = '14 days'"
    )
    db.execute("update learning.settings set sweep_schedule_changed_at = null")
    cron.ensure_jobs(db, db)


def run_config(dsn: str, *args: str):
    return CliRunner().invoke(main, ["config", "--dsn", dsn, *args])


def job_schedule(conn) -> str:
    return conn.execute(
        "select schedule from cron.job where jobname = 'interrupt-stale-sessions'"
    ).fetchone()[0]


def test_config_shows_settings(settings, sweeper_dsn):
    result = run_config(sweeper_dsn)
    lines = result.output.splitlines()

    assert result.exit_code == 0, (
        f"config without options must show the settings:\n{result.output}"
    )
    assert lines[0] == "Settings:", "the output must start with its heading"
    assert lines[1].split() == ["idle-timeout", "00:30:00"], (
        f"idle timeout row: {lines[1]!r}"
    )
    assert lines[3].split() == ["schedule", "*/10", "*", "*", "*", "*"], (
        f"the schedule must be shown: {lines[3]!r}"
    )


def test_config_idle_timeout_takes_effect(settings, sweeper_dsn):
    settings.execute(
        "insert into learning.sessions (user_id, last_event_at)"
        " values ('u1', now() - interval '20 minutes')"
    )

    result = run_config(sweeper_dsn, "--idle-timeout", "15 minutes")
    interrupted = settings.execute(
        "select learning.interrupt_stale_sessions('u1')"
    ).fetchone()[0]

    assert result.exit_code == 0, f"config must accept 15 minutes:\n{result.output}"
    assert interrupted == 1, (
        "the new idle timeout must apply to the next call, with no restart"
    )


def test_config_batch_size_takes_effect(settings, sweeper_dsn):
    result = run_config(sweeper_dsn, "--batch-size", "2")
    run = settings.execute(
        "select batch_size from learning.start_sweep_run()"
    ).fetchone()[0]

    assert result.exit_code == 0, f"config must accept 2:\n{result.output}"
    assert run == 2, "the next sweep must use the new batch size"


def test_config_schedule_alters_job(settings, sweeper_dsn):
    result = run_config(sweeper_dsn, "--schedule", "*/5 * * * *")

    assert result.exit_code == 0, f"config must accept */5:\n{result.output}"
    assert job_schedule(settings) == "*/5 * * * *", (
        "the job must run on the new schedule"
    )
    assert "Updated jobs:\n  interrupt-stale-sessions" in result.output, (
        "config must say which job it changed"
    )


def test_config_schedule_keeps_one_job(settings, sweeper_dsn):
    run_config(sweeper_dsn, "--schedule", "*/5 * * * *")
    run_config(sweeper_dsn, "--schedule", "0 * * * *")
    count = settings.execute(
        "select count(*) from cron.job where jobname = 'interrupt-stale-sessions'"
    ).fetchone()[0]

    assert count == 1, "changing the schedule twice must keep one job"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--idle-timeout",
            "30 seconds",
            "idle_timeout must be between 1 minute and 7 days",
        ),
        (
            "--idle-timeout",
            "8 days",
            "idle_timeout must be between 1 minute and 7 days",
        ),
        ("--idle-timeout", "soon", "idle-timeout must be 1 minute to 7 days"),
        ("--batch-size", "0", "sweep_batch_size must be between 1 and 100000"),
        ("--batch-size", "100001", "sweep_batch_size must be between 1 and 100000"),
        ("--batch-size", "many", "batch-size must be 1 to 100000"),
        ("--schedule", "30 seconds", "pg_cron 1.4.2 has no seconds schedules"),
        ("--schedule", "* * *", "does not have five fields"),
        ("--schedule", "0 0 * * 0", "longest gap is 1 minute to 1 day"),
        ("--run-history-retention", "400 days", "between 3 days and 365 days"),
        ("--run-details-retention", "2 days", "between 3 days and 365 days"),
        ("--idle-timeout", "45", "idle-timeout needs a unit, such as '30 minutes'"),
        ("--run-history-retention", "2", "needs a unit, such as '30 days'"),
    ],
)
def test_config_rejects_out_of_range(settings, sweeper_dsn, option, value, message):
    before = settings.execute(
        "select to_jsonb(s) from learning.settings as s"
    ).fetchone()[0]

    result = run_config(sweeper_dsn, option, value)
    after = settings.execute(
        "select to_jsonb(s) from learning.settings as s"
    ).fetchone()[0]

    assert result.exit_code == 2, f"{option} {value!r} must be rejected as bad input"
    assert message in result.output, f"the error must state the range:\n{result.output}"
    assert after == before, "a rejected value must leave every setting unchanged"


def test_config_rejected_value_keeps_others(settings, sweeper_dsn):
    result = run_config(sweeper_dsn, "--batch-size", "50", "--idle-timeout", "9 days")
    batch = settings.execute(
        "select sweep_batch_size from learning.settings"
    ).fetchone()[0]

    assert result.exit_code == 2, "one bad value must fail the whole change"
    assert batch == 1000, "the good value must not be stored when another is rejected"


def test_config_update_by_sql_checks_schedule(settings):
    with pytest.raises(psycopg.errors.CheckViolation, match="five-field cron schedule"):
        settings.execute("update learning.settings set sweep_schedule = '30 seconds'")
