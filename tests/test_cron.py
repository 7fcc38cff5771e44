"""The pg_cron job on `sweeper`, including one real scheduled run."""

import time
from datetime import datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from session_sweeper.sweep import sweep_command

JOB_NAME = "interrupt-stale-sessions"
DEFAULT_SCHEDULE = "*/10 * * * *"
# A '* * * * *' job first fires at the next full minute, at most 60 s away. The
# timeout allows for one missed minute and a margin.
RUN_TIMEOUT_SECONDS = 130


def get_job(conn: psycopg.Connection) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from cron.job where jobname = %s", [JOB_NAME]
        ).fetchone()


def wait_for_success(
    conn: psycopg.Connection, jobid: int, after: datetime
) -> dict | None:
    """Poll cron.job_run_details for a successful run of jobid started after `after`."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    with conn.cursor(row_factory=dict_row) as cur:
        while time.monotonic() < deadline:
            run = cur.execute(
                """
                select *
                from cron.job_run_details
                where jobid = %s and status = 'succeeded' and start_time > %s
                order by runid
                limit 1
                """,
                [jobid, after],
            ).fetchone()
            if run is not None:
                return run
            time.sleep(1)
    return None


def test_cron_job_schedule_and_command(db):
    job = get_job(db)

    assert job is not None, f"migrate must schedule the job {JOB_NAME}"
    assert job["schedule"] == DEFAULT_SCHEDULE, "the job must run every 10 minutes"
    assert job["command"] == sweep_command(), (
        "the job's command must be the one the sweep command runs"
    )
    assert job["database"] == "sweeper", "the job must run in the app's database"
    assert job["active"] is True, "the job must be active"


@pytest.mark.slow
def test_cron_scheduled_run_interrupts_stale_session(db):
    job = get_job(db)
    session = db.execute(
        """
        insert into learning.sessions (user_id, started_at, last_event_at)
        values ('u1', now() - interval '3 hours', now() - interval '2 hours')
        returning id, last_event_at, now()
        """
    ).fetchone()
    session_id, last_event_at, seeded_at = session

    db.execute("select cron.alter_job(%s, schedule => '* * * * *')", [job["jobid"]])
    try:
        run = wait_for_success(db, job["jobid"], seeded_at)
    finally:
        db.execute(
            "select cron.alter_job(%s, schedule => %s)",
            [job["jobid"], DEFAULT_SCHEDULE],
        )

    assert run is not None, (
        f"no run of {JOB_NAME} succeeded within {RUN_TIMEOUT_SECONDS} s"
    )
    status, ended_at = db.execute(
        "select status, ended_at from learning.sessions where id = %s", [session_id]
    ).fetchone()
    assert status == "interrupted", "the scheduled run left the stale session active"
    assert ended_at == last_event_at, (
        "the scheduled run must set ended_at to last_event_at"
    )

    with db.cursor(row_factory=dict_row) as cur:
        sweeps = cur.execute(
            """
            select *
            from learning.sweep_runs
            where backend_pid = %s and started_at <= %s
            """,
            [run["job_pid"], run["end_time"]],
        ).fetchall()
    assert len(sweeps) == 1, "the scheduled run must record one row in sweep_runs"
    assert sweeps[0]["interrupted"] == 1, (
        "sweep_runs must count the interrupted session"
    )
    assert sweeps[0]["batches"] == 1, "one session takes one batch"
    assert sweeps[0]["finished_at"] is not None, "the run must record its end"
    assert get_job(db)["schedule"] == DEFAULT_SCHEDULE, "the schedule was not restored"
