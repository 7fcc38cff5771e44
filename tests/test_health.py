"""The health rules of session-sweeper status, against pg_cron rows written by hand.

Each test writes cron.job_run_details rows the way pg_cron 1.4 does, with a
runid from cron.runid_seq, so the rules see the same rows a real run leaves.
"""

import json
from collections.abc import Iterator

import port_for
import psycopg
import pytest
from click.testing import CliRunner

from cli import main
from session_sweeper import cron
from session_sweeper.dsn import Dsn
from session_sweeper.status import check

SWEEP_COMMAND = "call learning.sweep_stale_sessions()"


def write_run(conn, jobid, status, started_ago, ended_ago=None, message=None) -> int:
    """Insert a run of jobid as pg_cron does, with times given as intervals ago."""
    row = conn.execute(
        """
        insert into cron.job_run_details (
            jobid, runid, job_pid, database, username, command, status,
            return_message, start_time, end_time
        )
        values (
            %s, nextval('cron.runid_seq'), 4242, current_database(), current_user, %s,
            %s, %s, now() - %s::interval, now() - %s::interval
        )
        returning runid
        """,
        [jobid, SWEEP_COMMAND, status, message, started_ago, ended_ago],
    ).fetchone()
    return row[0]


def set_installed_ago(conn, ago: str) -> None:
    conn.execute(
        "update _yoyo_migration set applied_at_utc = (now() - %s::interval) at time zone 'UTC'"
        " where migration_id = '0005_schedule_sweep_job'",
        [ago],
    )


def run_status(dsn: str, *args: str):
    return CliRunner().invoke(main, ["status", "--dsn", dsn, *args])


@pytest.fixture
def health(db: psycopg.Connection, sweeper_dsn: str) -> Iterator[psycopg.Connection]:
    """Start from both jobs as migrate leaves them, no runs, and default settings."""
    saved = db.execute(
        "select applied_at_utc from _yoyo_migration"
        " where migration_id = '0005_schedule_sweep_job'"
    ).fetchone()[0]
    reset_jobs(db)
    yield db
    db.execute(
        "update _yoyo_migration set applied_at_utc = %s"
        " where migration_id = '0005_schedule_sweep_job'",
        [saved],
    )
    reset_jobs(db)


def reset_jobs(conn: psycopg.Connection) -> None:
    conn.execute(
        "update learning.settings set sweep_schedule = '*/10 * * * *',"
        " sweep_batch_size = 1000,"
        " run_history_retention = '30 days', run_details_retention = '14 days'"
    )
    # A separate update, because the trigger stamps the time of a schedule change.
    conn.execute("update learning.settings set sweep_schedule_changed_at = null")
    cron.ensure_jobs(conn, conn)
    for name in cron.JOB_NAMES:
        conn.execute(
            "select cron.alter_job(jobid, active => true) from cron.job where jobname = %s",
            [name],
        )
    conn.execute("delete from cron.job_run_details")
    conn.execute("delete from learning.sweep_runs")


def sweep_jobid(conn) -> int:
    return conn.execute(
        "select jobid from cron.job where jobname = 'interrupt-stale-sessions'"
    ).fetchone()[0]


def deactivate(conn) -> None:
    """Stop the real job from adding a run while the test runs."""
    conn.execute("select cron.alter_job(%s, active => false)", [sweep_jobid(conn)])


def test_status_fresh_install_healthy(health, sweeper_dsn):
    set_installed_ago(health, "1 minute")

    result = run_status(sweeper_dsn)

    assert result.exit_code == 0, f"a fresh install must be healthy:\n{result.output}"
    assert "Note: fresh install: the first run" in result.output, (
        "a fresh install must say that it waits for the first run"
    )
    assert "Recent runs:\n  (none)" in result.output, (
        "an empty run list must show (none)"
    )


def test_status_recent_success_healthy(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    write_run(
        health, sweep_jobid(health), "succeeded", "5 minutes", "5 minutes", "CALL"
    )

    report = check(Dsn(sweeper_dsn))

    assert report.problems == [], "a success 5 minutes ago must leave no problem"
    assert report.healthy is True, "a success 5 minutes ago must be healthy"


def test_status_missing_job_unhealthy(health, sweeper_dsn):
    health.execute("select cron.unschedule('interrupt-stale-sessions')")

    result = run_status(sweeper_dsn, "--json")
    report = json.loads(result.output)

    assert result.exit_code == 1, "a missing job must exit 1"
    assert report["job"] is None, "a missing job must be null in --json"
    assert any(
        "interrupt-stale-sessions is missing" in p for p in report["problems"]
    ), f"the missing job must be named: {report['problems']}"


def test_status_missing_purge_job_unhealthy(health, sweeper_dsn):
    health.execute("select cron.unschedule('purge-sweep-run-details')")

    report = check(Dsn(sweeper_dsn))

    assert any("purge-sweep-run-details is missing" in p for p in report.problems), (
        f"a missing purge job must be named: {report.problems}"
    )


def test_status_inactive_job_unhealthy(health, sweeper_dsn):
    set_installed_ago(health, "1 minute")
    deactivate(health)

    result = run_status(sweeper_dsn)

    assert result.exit_code == 1, "an inactive job must exit 1"
    assert (
        "  - the pg_cron job interrupt-stale-sessions is inactive" in result.output
    ), f"the inactive job must be named:\n{result.output}"


def test_status_last_run_failed(health, sweeper_dsn):
    deactivate(health)
    jobid = sweep_jobid(health)
    write_run(health, jobid, "succeeded", "12 minutes", "12 minutes", "CALL")
    runid = write_run(
        health,
        jobid,
        "failed",
        "2 minutes",
        "2 minutes",
        "ERROR: canceling statement\nHINT: raise it",
    )

    report = check(Dsn(sweeper_dsn))

    assert (
        f"the last finished run (runid {runid}) failed: ERROR: canceling statement HINT: raise it"
        in (report.problems)
    ), f"a failed last run must be named with its message: {report.problems}"


def test_status_earlier_failure_healthy(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    jobid = sweep_jobid(health)
    write_run(health, jobid, "failed", "12 minutes", "12 minutes", "ERROR: boom")
    write_run(health, jobid, "succeeded", "2 minutes", "2 minutes", "CALL")

    report = check(Dsn(sweeper_dsn))

    assert report.healthy is True, (
        f"a failure followed by a success is healthy: {report.problems}"
    )


def test_status_no_success_two_intervals(health, sweeper_dsn):
    deactivate(health)
    set_installed_ago(health, "2 hours")
    write_run(
        health, sweep_jobid(health), "succeeded", "21 minutes", "21 minutes", "CALL"
    )

    report = check(Dsn(sweeper_dsn))

    assert any(
        p.startswith("no run succeeded within two intervals (20 minutes)")
        for p in report.problems
    ), (
        f"no success for 21 minutes on a 10-minute schedule must be a problem: "
        f"{report.problems}"
    )


def test_status_never_succeeded_unhealthy(health, sweeper_dsn):
    """A job whose login fails leaves no row at all, which only this rule catches."""
    deactivate(health)
    set_installed_ago(health, "1 hour")

    report = check(Dsn(sweeper_dsn))

    assert any("the last success was never" in p for p in report.problems), (
        f"an install an hour old without a success must be a problem: {report.problems}"
    )


def test_status_long_running_run(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    jobid = sweep_jobid(health)
    write_run(health, jobid, "succeeded", "3 minutes", "3 minutes", "CALL")
    runid = write_run(health, jobid, "running", "11 minutes")

    report = check(Dsn(sweeper_dsn))

    assert any(
        p.startswith(f"run {runid} has been running for 11 minutes")
        for p in report.problems
    ), f"a run in flight for longer than one interval must be named: {report.problems}"


@pytest.mark.parametrize("state", ["starting", "connecting", "sending"])
def test_status_stuck_states(health, sweeper_dsn, state):
    set_installed_ago(health, "3 days")
    jobid = sweep_jobid(health)
    write_run(health, jobid, "succeeded", "3 minutes", "3 minutes", "CALL")
    runid = write_run(health, jobid, state, "15 minutes")

    report = check(Dsn(sweeper_dsn))

    assert any(
        p.startswith(f"run {runid} has been {state}") for p in report.problems
    ), (
        f"a run {state} for 15 minutes must be named with pg_cron's word: {report.problems}"
    )


def test_status_old_stale_sessions(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    write_run(
        health, sweep_jobid(health), "succeeded", "3 minutes", "3 minutes", "CALL"
    )
    # Stale for 21 minutes: last event 30 minutes (the timeout) plus 21 minutes ago.
    health.execute(
        "insert into learning.sessions (user_id, started_at, last_event_at)"
        " values ('u1', now() - interval '1 hour', now() - interval '51 minutes')"
    )

    report = check(Dsn(sweeper_dsn))

    assert report.stale_sessions == 1, "the stale session must be counted"
    assert any(
        p.startswith("1 stale session is waiting, the oldest for 21 minutes")
        for p in report.problems
    ), (
        f"a session stale for more than two intervals must be a problem: {report.problems}"
    )


def test_status_young_stale_sessions_healthy(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    write_run(
        health, sweep_jobid(health), "succeeded", "3 minutes", "3 minutes", "CALL"
    )
    health.execute(
        "insert into learning.sessions (user_id, started_at, last_event_at)"
        " values ('u1', now() - interval '1 hour', now() - interval '35 minutes')"
    )

    report = check(Dsn(sweeper_dsn))

    assert report.healthy is True, (
        f"a session stale for 5 minutes waits for the next sweep: {report.problems}"
    )


def test_status_schedule_change_resets_reference(health, sweeper_dsn):
    """A new schedule gets two of its intervals before a missing success counts."""
    set_installed_ago(health, "3 days")
    write_run(health, sweep_jobid(health), "succeeded", "2 hours", "2 hours", "CALL")

    result = CliRunner().invoke(
        main, ["config", "--dsn", sweeper_dsn, "--schedule", "*/15 * * * *"]
    )
    report = check(Dsn(sweeper_dsn))

    assert result.exit_code == 0, f"config must accept the schedule:\n{result.output}"
    assert report.healthy is True, (
        f"a schedule changed just now is healthy: {report.problems}"
    )
    assert any(n.startswith("schedule changed: the first run") for n in report.notes), (
        f"status must say it waits for the first run after the change: {report.notes}"
    )


def test_status_schedule_drift_unhealthy(health, sweeper_dsn):
    set_installed_ago(health, "1 minute")
    health.execute(
        "select cron.alter_job(%s, schedule => '*/7 * * * *')", [sweep_jobid(health)]
    )

    report = check(Dsn(sweeper_dsn))

    assert any(
        "runs on '*/7 * * * *', but the configured schedule is '*/10 * * * *'" in p
        for p in report.problems
    ), (
        f"a job schedule that differs from the setting must be a problem: {report.problems}"
    )


def test_status_json_schema(health, sweeper_dsn):
    set_installed_ago(health, "3 days")
    write_run(
        health, sweep_jobid(health), "succeeded", "3 minutes", "3 minutes", "CALL"
    )

    result = run_status(sweeper_dsn, "--json")
    report = json.loads(result.output)
    run = report["last_runs"][0]

    assert result.exit_code == 0, f"a healthy install must exit 0:\n{result.output}"
    assert report["healthy"] is True, "healthy must be a JSON true"
    assert report["problems"] == [], "problems must be an empty list"
    assert set(report["job"]) >= {"name", "schedule", "active", "database"}, (
        f"job must carry name, schedule, active and database: {report['job']}"
    )
    assert set(run) >= {
        "status",
        "start_time",
        "end_time",
        "return_message",
        "interrupted",
    }, f"a run must carry the pg_cron fields and the count: {run}"
    assert run["status"] == "succeeded", "pg_cron's status word must appear unchanged"
    assert report["stale_sessions"] == 0, "stale_sessions must be an integer"
    assert report["oldest_stale_seconds"] is None, "no stale session means null"
    assert report["settings"]["sweep_schedule"] == "*/10 * * * *", (
        "settings must show the schedule in force"
    )


def test_status_unreachable_exits_2():
    port = port_for.select_random()
    dsn = f"postgresql://nobody:secret@127.0.0.1:{port}/app"

    result = run_status(dsn)

    assert result.exit_code == 2, "a server that cannot be reached must exit 2"
    assert "secret" not in result.output, "the output must never show the password"
