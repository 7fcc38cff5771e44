"""Health of the sweep job: the facts behind the status command and its rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql
from session_sweeper.schedule import Schedule, ScheduleError

JOB_NAME = "interrupt-stale-sessions"
SCHEDULE_MIGRATION = "0005_schedule_sweep_job"
IN_FLIGHT = ("starting", "connecting", "sending", "running")


@dataclass
class Report:
    """What status prints, and the JSON object of status --json."""

    healthy: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    job: dict | None = None
    last_runs: list[dict] = field(default_factory=list)
    stale_sessions: int | None = None
    oldest_stale_seconds: float | None = None
    settings: dict = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.healthy = False
        self.problems.append(text)

    def to_json(self) -> dict:
        return asdict(self)


def _one(conn: psycopg.Connection, query: str, params: dict | None = None) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def _all(conn: psycopg.Connection, query: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = _one(conn, "select pg_catalog.to_regclass(%(r)s) is not null as found", {"r": relation})
    return bool(row and row["found"])


def _installed_at(conn: psycopg.Connection) -> datetime | None:
    """Return when the job's migration was applied, from yoyo's own table."""
    if not _exists(conn, "_yoyo_migration"):
        return None
    row = _one(
        conn,
        "select applied_at_utc at time zone 'UTC' as at from _yoyo_migration"
        " where migration_id = %(id)s",
        {"id": SCHEDULE_MIGRATION},
    )
    return row["at"] if row else None


def _last_success(conn: psycopg.Connection, jobid: int) -> datetime | None:
    row = _one(
        conn,
        "select max(start_time) as at from cron.job_run_details"
        " where jobid = %(jobid)s and status = 'succeeded'",
        {"jobid": jobid},
    )
    return row["at"] if row else None


def human_duration(delta: timedelta) -> str:
    """Return a duration such as '25 minutes' or '2 hours 5 minutes'."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} hours {minutes} minutes" if minutes else f"{hours} hours"


def _check_runs(conn, report: Report, job: dict, now: datetime, runs: int) -> None:
    report.last_runs = _all(
        conn, read_sql("recent_runs"), {"jobid": job["jobid"], "limit": runs}
    )
    try:
        interval = Schedule.parse(job["schedule"]).interval()
    except ScheduleError as error:
        report.problem(f"{error}, so the run rules cannot be checked")
        return
    window = 2 * interval

    finished = [r for r in report.last_runs if r["status"] in ("succeeded", "failed")]
    if finished and finished[0]["status"] == "failed":
        last = finished[0]
        report.problem(
            f"the last finished run (runid {last['runid']}) failed: "
            f"{(last['return_message'] or '').strip()}"
        )

    for run in report.last_runs:
        if run["status"] in IN_FLIGHT and now - run["start_time"] > interval:
            report.problem(
                f"run {run['runid']} has been {run['status']} for "
                f"{human_duration(now - run['start_time'])}, longer than one interval "
                f"({human_duration(interval)})"
            )

    last_success = _last_success(conn, job["jobid"])
    installed_at = _installed_at(conn)
    known = [t for t in (last_success, installed_at) if t is not None]
    reference = max(known) if known else None
    if reference is None or now - reference > window:
        since = f"since {last_success:%Y-%m-%d %H:%M:%S %Z}" if last_success else "ever"
        report.problem(
            f"no run succeeded within two intervals ({human_duration(window)}): "
            f"the last success was {since}"
        )
    elif last_success is None:
        first_due = Schedule.parse(job["schedule"]).next_after(installed_at)
        when = "is due" if first_due and first_due > now else "was due"
        report.notes.append(
            f"fresh install: the first run {when} at {first_due:%Y-%m-%d %H:%M:%S} UTC"
        )

    if report.oldest_stale_seconds is not None and report.oldest_stale_seconds > (
        window.total_seconds()
    ):
        report.problem(
            f"{report.stale_sessions} stale sessions are waiting, the oldest for "
            f"{human_duration(timedelta(seconds=report.oldest_stale_seconds))}: "
            "the sweep is not keeping up"
        )


def _pg_cron_missing(conn: psycopg.Connection) -> str:
    """Return what keeps pg_cron out of this database, and the fix."""
    setup = _one(conn, read_sql("pg_cron_setup"))
    database = setup["database"]
    if not setup["available"]:
        return "pg_cron is not installed on this server: install postgresql-15-cron"
    if not setup["preloaded"]:
        return (
            "pg_cron is not in shared_preload_libraries: add it, set cron.database_name"
            f" = '{database}' and restart PostgreSQL"
        )
    cron_database = setup["cron_database"] or "postgres"
    if cron_database != database:
        return (
            f"pg_cron runs in database {cron_database}, not in {database}: set"
            f" cron.database_name = '{database}' and restart PostgreSQL"
        )
    return f"pg_cron is not installed in database {database}: run 'session-sweeper migrate'"


def check(dsn: Dsn, runs: int = 5) -> Report:
    """Collect the job, its runs, the stale sessions and the settings, and judge them.

    Raises ConnectError when the server cannot be reached and psycopg.Error when a
    query fails, for example on missing privileges.
    """
    report = Report()
    with dsn.connect(autocommit=True) as conn:
        now = _one(conn, "select pg_catalog.now() as now")["now"]

        if not _exists(conn, "learning.settings"):
            report.problem(
                f"session-sweeper is not installed in database {dsn.dbname or conn.info.dbname}:"
                " run 'session-sweeper migrate'"
            )
            return report
        report.settings = _one(conn, read_sql("settings"))
        stale = _one(conn, read_sql("stale_sessions"))
        report.stale_sessions = stale["stale_sessions"]
        report.oldest_stale_seconds = stale["oldest_stale_seconds"]

        if not _exists(conn, "cron.job"):
            report.problem(
                f"{_pg_cron_missing(conn)}, so nothing sweeps users who never come back"
            )
            return report

        job = _one(conn, read_sql("job"), {"job_name": JOB_NAME})
        if job is None:
            report.problem(f"the pg_cron job {JOB_NAME} is missing: run 'session-sweeper migrate'")
            return report
        report.job = {k: job[k] for k in ("jobid", "jobname", "schedule", "command", "database", "username", "active")}
        report.job["name"] = report.job.pop("jobname")
        if not job["active"]:
            report.problem(f"the pg_cron job {JOB_NAME} is inactive")

        _check_runs(conn, report, job, now, runs)
    return report
