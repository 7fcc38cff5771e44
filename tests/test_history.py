"""Run history: learning.sweep_runs, its view, its pruning and the purge job."""

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from cli import main
from session_sweeper import cron
from session_sweeper.dsn import Dsn
from session_sweeper.paths import MIGRATIONS_DIR
from session_sweeper.status import check

SWEEP_COMMAND = "call learning.sweep_stale_sessions()"


@pytest.fixture
def history(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Start from both jobs scheduled, no pg_cron rows and no sweep runs."""
    cron.ensure_jobs(db, db)
    db.execute("delete from cron.job_run_details")
    db.execute("delete from learning.sweep_runs")
    yield db
    db.execute(
        "update learning.settings set run_history_retention = '30 days',"
        " run_details_retention = '14 days'"
    )
    cron.ensure_jobs(db, db)


def write_run(conn, jobid, status, started_ago, ended_ago) -> int:
    row = conn.execute(
        """
        insert into cron.job_run_details (
            jobid, runid, job_pid, database, username, command, status,
            return_message, start_time, end_time
        )
        values (
            %s, nextval('cron.runid_seq'), 4242, current_database(), current_user, %s,
            %s, 'CALL', now() - %s::interval, now() - %s::interval
        )
        returning runid
        """,
        [jobid, SWEEP_COMMAND, status, started_ago, ended_ago],
    ).fetchone()
    return row[0]


def jobid_of(conn, name: str) -> int:
    return conn.execute(
        "select jobid from cron.job where jobname = %s", [name]
    ).fetchone()[0]


def write_sweep_run(
    conn, started_ago: str, interrupted: int, run_by: str = "pg_cron"
) -> None:
    conn.execute(
        "insert into learning.sweep_runs"
        " (started_at, finished_at, cutoff, batch_size, interrupted, batches, run_by)"
        " values (now() - %s::interval, now() - %s::interval, now(), 1000, %s, 1, %s)",
        [started_ago, started_ago, interrupted, run_by],
    )


def test_sweep_runs_run_by_cli(history, sweeper_dsn):
    result = CliRunner().invoke(main, ["sweep", "--dsn", sweeper_dsn])
    run_by = history.execute("select run_by from learning.sweep_runs").fetchone()[0]

    assert result.exit_code == 0, f"sweep must succeed:\n{result.output}"
    assert run_by == "session-sweeper", (
        "a CLI sweep must record the CLI's application_name"
    )


def test_sweep_runs_run_by_empty_application_name(history, sweeper_dsn):
    """pg_cron's background workers leave application_name empty."""
    with psycopg.connect(sweeper_dsn, autocommit=True, application_name="") as conn:
        conn.execute(SWEEP_COMMAND)
    run_by = history.execute("select run_by from learning.sweep_runs").fetchone()[0]

    assert run_by == "client backend", (
        "an empty application_name must fall back to pg_stat_activity.backend_type"
    )


def test_sweep_prunes_old_history(history, sweeper_dsn):
    write_sweep_run(history, "31 days", 5)
    write_sweep_run(history, "29 days", 7)

    with psycopg.connect(sweeper_dsn, autocommit=True) as conn:
        conn.execute(SWEEP_COMMAND)
    kept = history.execute(
        "select interrupted from learning.sweep_runs order by started_at"
    ).fetchall()

    assert [row[0] for row in kept] == [7, 0], (
        "the sweep must delete runs older than run_history_retention and keep the rest"
    )


def test_sweep_prunes_with_new_retention(history, sweeper_dsn):
    write_sweep_run(history, "5 days", 5)
    history.execute("update learning.settings set run_history_retention = '4 days'")

    with psycopg.connect(sweeper_dsn, autocommit=True) as conn:
        conn.execute(SWEEP_COMMAND)
    left = history.execute(
        "select count(*) from learning.sweep_runs where interrupted = 5"
    ).fetchone()[0]

    assert left == 0, "a shorter retention must apply at the next sweep"


def test_history_view_joins_counts(history):
    jobid = jobid_of(history, cron.SWEEP_JOB)
    runid = write_run(history, jobid, "succeeded", "10 minutes", "9 minutes")
    history.execute(
        "insert into learning.sweep_runs"
        " (started_at, finished_at, cutoff, batch_size, interrupted, batches, run_by)"
        " values (now() - interval '595 seconds', now() - interval '550 seconds',"
        " now(), 1000, 12, 2, 'pg_cron')"
    )
    write_sweep_run(history, "3 minutes", 99, "session-sweeper")

    rows = history.execute(
        "select runid, status, interrupted, batches, run_by from learning.sweep_run_history"
    ).fetchall()

    assert rows == [(runid, "succeeded", 12, 2, "pg_cron")], (
        "the view must show each pg_cron run with the counts of the sweep inside its span"
    )


def test_status_shows_run_counts(history, sweeper_dsn):
    jobid = jobid_of(history, cron.SWEEP_JOB)
    write_run(history, jobid, "failed", "40 minutes", "40 minutes")
    write_run(history, jobid, "succeeded", "10 minutes", "9 minutes")
    write_sweep_run(history, "595 seconds", 12)

    report = check(Dsn(sweeper_dsn))
    latest, earlier = report.last_runs

    assert latest["interrupted"] == 12, (
        "status must show the sweep's count beside the run"
    )
    assert latest["run_by"] == "pg_cron", "status must show who ran the sweep"
    assert earlier["interrupted"] is None, "a run without a sweep row has no count"


def test_status_human_runs_table(history, sweeper_dsn):
    jobid = jobid_of(history, cron.SWEEP_JOB)
    write_run(history, jobid, "succeeded", "10 minutes", "9 minutes")
    write_sweep_run(history, "595 seconds", 12)

    result = CliRunner().invoke(main, ["status", "--dsn", sweeper_dsn])
    lines = result.output.splitlines()
    heading = lines[lines.index("Recent runs:") + 1]
    row = lines[lines.index("Recent runs:") + 2]

    assert heading.split() == [
        "runid",
        "status",
        "start",
        "(UTC)",
        "end",
        "(UTC)",
        "interrupted",
        "batches",
        "run",
        "by",
        "message",
    ], f"the runs table must have its heading: {heading!r}"
    assert row.index(" 12 ") + 3 == heading.index("interrupted") + len("interrupted"), (
        f"counts must be right-aligned under their heading:\n{heading}\n{row}"
    )


def purge(conn) -> None:
    command = conn.execute(
        "select command from cron.job where jobname = %s", [cron.PURGE_JOB]
    ).fetchone()[0]
    conn.execute(command)


def test_purge_deletes_own_old_rows(history):
    sweep = jobid_of(history, cron.SWEEP_JOB)
    old = write_run(history, sweep, "succeeded", "15 days", "15 days")
    recent = write_run(history, sweep, "succeeded", "13 days", "13 days")

    purge(history)
    left = [
        r[0]
        for r in history.execute("select runid from cron.job_run_details").fetchall()
    ]

    assert old not in left, "the purge must delete the sweep's rows older than 14 days"
    assert recent in left, "the purge must keep the sweep's rows inside the retention"


def test_purge_keeps_other_jobs_rows(history):
    other = history.execute(
        "select cron.schedule('someone-elses-job', '0 4 * * *', 'select 1')"
    ).fetchone()[0]
    try:
        foreign = write_run(history, other, "succeeded", "300 days", "300 days")
        write_run(
            history, jobid_of(history, cron.SWEEP_JOB), "succeeded", "1 day", "1 day"
        )

        purge(history)
        left = history.execute(
            "select count(*) from cron.job_run_details where runid = %s", [foreign]
        ).fetchone()[0]
    finally:
        history.execute("select cron.unschedule('someone-elses-job')")

    assert left == 1, "the purge must never delete rows of another job"


def test_purge_when_every_row_is_old(history):
    sweep = jobid_of(history, cron.SWEEP_JOB)
    write_run(history, sweep, "succeeded", "20 days", "20 days")
    write_run(history, sweep, "succeeded", "16 days", "16 days")

    purge(history)
    left = history.execute("select count(*) from cron.job_run_details").fetchone()[0]

    assert left == 0, "the purge must delete old rows even when no row is recent"


def test_purge_uses_runid_index(history):
    command = history.execute(
        "select command from cron.job where jobname = %s", [cron.PURGE_JOB]
    ).fetchone()[0]
    with history.transaction():
        history.execute("set local enable_seqscan = off")
        plan = "\n".join(r[0] for r in history.execute("explain " + command).fetchall())

    assert "job_run_details_pkey" in plan, (
        f"the purge must be able to use the runid index:\n{plan}"
    )
    assert "Seq Scan on job_run_details" not in plan, (
        f"the purge needs no seq scan:\n{plan}"
    )


def test_purge_retention_change_updates_job(history, sweeper_dsn):
    result = CliRunner().invoke(
        main, ["config", "--dsn", sweeper_dsn, "--run-details-retention", "5 days"]
    )
    command = history.execute(
        "select command from cron.job where jobname = %s", [cron.PURGE_JOB]
    ).fetchone()[0]

    assert result.exit_code == 0, f"config must accept 5 days:\n{result.output}"
    assert "'5 days'::interval" in command, "the purge job must carry the new retention"


@pytest.mark.parametrize(
    "option", ["--run-history-retention", "--run-details-retention"]
)
def test_retention_out_of_range(history, sweeper_dsn, option):
    result = CliRunner().invoke(main, ["config", "--dsn", sweeper_dsn, option, "1 day"])

    assert result.exit_code == 2, "an out-of-range retention is bad input"
    assert "between 3 days and 365 days, not 1 day" in result.output, (
        f"the error must state the allowed range:\n{result.output}"
    )


def test_purge_migration_command_matches(history):
    """0009 writes the purge command in SQL; config and verify build it in Python."""
    history.execute("select cron.unschedule('purge-sweep-run-details')")
    source = (MIGRATIONS_DIR / "0009_schedule_purge_job.sql").read_text()
    body = source[source.index("do $$") :]
    history.execute(body)
    command = history.execute(
        "select command from cron.job where jobname = %s", [cron.PURGE_JOB]
    ).fetchone()[0]

    assert command == cron.purge_command(history, "14 days"), (
        "0009's purge command must equal sql/purge_run_details.sql with the retention"
    )
