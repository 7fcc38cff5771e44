"""Health of the sweep job: the facts behind the status command and its rules.

status is unhealthy when any of these holds:

- the job interrupt-stale-sessions or purge-sweep-run-details is missing or
  inactive, runs in the wrong database, or the sweep job's schedule is not the
  configured one;
- the last finished run of the sweep failed;
- no run succeeded within two intervals of the reference time, which is the
  latest of the last success, the install (yoyo's applied_at_utc of 0005) and
  the last schedule change (settings.sweep_schedule_changed_at). That catches a
  failed login, no free worker slot and a dead scheduler, which leave no failed
  row behind;
- a run has been starting, connecting, sending or running for longer than one
  interval;
- a session has been stale for longer than two intervals.

The interval is the longest gap between two fire times of the schedule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from session_sweeper import cron
from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql
from session_sweeper.schedule import Schedule, ScheduleError

JOB_NAME = cron.SWEEP_JOB
SCHEDULE_MIGRATION = "0005_schedule_sweep_job"
IN_FLIGHT = ("starting", "connecting", "sending", "running")
FINISHED = ("succeeded", "failed")


@dataclass
class Report:
    """The report that status prints, and the object that status --json prints."""

    healthy: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    job: dict | None = None
    purge_job: dict | None = None
    last_runs: list[dict] = field(default_factory=list)
    stale_sessions: int | None = None
    oldest_stale_seconds: float | None = None
    settings: dict = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.healthy = False
        self.problems.append(text)

    def to_json(self) -> dict:
        return asdict(self)


def _one(
    conn: psycopg.Connection, query: str, params: dict | None = None
) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def _all(
    conn: psycopg.Connection, query: str, params: dict | None = None
) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = _one(
        conn,
        "select pg_catalog.to_regclass(%(r)s) is not null as found",
        {"r": relation},
    )
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


def _utc(moment: datetime) -> str:
    """Format a time in UTC, whatever the session's TimeZone."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


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


def _job_view(job: dict) -> dict:
    return {
        "name": job["jobname"],
        "jobid": job["jobid"],
        "schedule": job["schedule"],
        "active": job["active"],
        "database": job["database"],
        "username": job["username"],
        "command": job["command"],
    }


def _read_runs(app_conn, cron_conn, jobid: int, limit: int) -> list[dict]:
    """Return pg_cron's latest runs, each with the sweep's counts for its time span."""
    runs = _all(cron_conn, read_sql("recent_runs"), {"jobid": jobid, "limit": limit})
    spans = [r for r in runs if r["start_time"] is not None]
    counts = {}
    if spans:
        rows = _all(
            app_conn,
            read_sql("sweep_run_counts"),
            {
                "runids": [r["runid"] for r in spans],
                "pids": [r["job_pid"] for r in spans],
                "starts": [r["start_time"] for r in spans],
                "ends": [r["end_time"] for r in spans],
            },
        )
        counts = {row["runid"]: row for row in rows}
    for run in runs:
        found = counts.get(run["runid"], {})
        run["interrupted"] = found.get("interrupted")
        run["batches"] = found.get("batches")
        run["run_by"] = found.get("run_by")
    return runs


def _check_job(
    report: Report, job: dict | None, name: str, database: str, cron_database: str
) -> bool:
    if job is None:
        report.problem(
            f"the pg_cron job {name} is missing: run 'session-sweeper migrate'"
        )
        return False
    if not job["active"]:
        report.problem(f"the pg_cron job {name} is inactive")
    if job["database"] != database:
        report.problem(
            f"the pg_cron job {name} runs in database {job['database']}, not in {database},"
            f" and pg_cron's cron.database_name is {cron_database}: run"
            f" 'session-sweeper migrate' on {database} once no other database needs the job"
        )
    return True


def _check_success(
    report: Report, cron_conn, app_conn, job: dict, schedule: Schedule, now: datetime
) -> None:
    interval = schedule.interval()
    window = 2 * interval
    row = _one(cron_conn, read_sql("last_success"), {"jobid": job["jobid"]})
    last_success = row["start_time"] if row else None
    installed_at = _installed_at(app_conn)
    changed_at = report.settings.get("sweep_schedule_changed_at")
    changed_at = datetime.fromisoformat(changed_at) if changed_at else None

    starts = [t for t in (installed_at, changed_at) if t is not None]
    reference = max([t for t in (last_success, *starts) if t is not None], default=None)
    if reference is None or now - reference > window:
        since = f"at {_utc(last_success)} UTC" if last_success else "never"
        report.problem(
            f"no run succeeded within two intervals ({human_duration(window)}):"
            f" the last success was {since}"
        )
        return
    if last_success is None or last_success < max(starts, default=last_success):
        first_due = schedule.next_after(reference)
        when = "is due" if first_due > now else "was due"
        cause = "fresh install" if last_success is None else "schedule changed"
        report.notes.append(
            f"{cause}: the first run {when} at {_utc(first_due)} UTC,"
            f" and status allows until {_utc(reference + window)} UTC"
        )


def _check_runs(
    report: Report, app_conn, cron_conn, job: dict, now: datetime, runs: int
) -> None:
    report.last_runs = _read_runs(app_conn, cron_conn, job["jobid"], runs)
    try:
        schedule = Schedule.parse(job["schedule"])
        interval = schedule.interval()
    except ScheduleError as error:
        report.problem(f"{error}, so the run rules cannot be checked")
        return

    finished = [r for r in report.last_runs if r["status"] in FINISHED]
    if finished and finished[0]["status"] == "failed":
        last = finished[0]
        # pg_cron stores ERROR, DETAIL and HINT on separate lines; a problem is one line.
        lines = (last["return_message"] or "").splitlines()
        message = " ".join(line.strip() for line in lines if line.strip())
        report.problem(
            f"the last finished run (runid {last['runid']}) failed: {message}"
        )

    for run in report.last_runs:
        started = run["start_time"]
        # NOTE: a row still 'starting' has no start_time yet, so its age is unknown.
        if (
            run["status"] in IN_FLIGHT
            and started is not None
            and now - started > interval
        ):
            report.problem(
                f"run {run['runid']} has been {run['status']} for "
                f"{human_duration(now - started)}, longer than one interval "
                f"({human_duration(interval)})"
            )

    _check_success(report, cron_conn, app_conn, job, schedule, now)

    oldest = report.oldest_stale_seconds
    if oldest is not None and oldest > (2 * interval).total_seconds():
        report.problem(
            f"{_count(report.stale_sessions, 'stale session')} "
            f"{'is' if report.stale_sessions == 1 else 'are'} waiting, the oldest for "
            f"{human_duration(timedelta(seconds=oldest))}, longer than two intervals:"
            " the sweep is not keeping up"
        )


def _check_config(report: Report, job: dict) -> None:
    configured = report.settings.get("sweep_schedule")
    if configured is not None and configured != job["schedule"]:
        report.problem(
            f"the pg_cron job {JOB_NAME} runs on {job['schedule']!r}, but the configured"
            f" schedule is {configured!r}: run 'session-sweeper migrate'"
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
    if cron_database != database and not setup["cron_database_exists"]:
        return (
            f"pg_cron runs in database {cron_database}, not in {database}, and no"
            f" database {cron_database} exists: create it or set cron.database_name"
            f" = '{database}', then restart PostgreSQL"
        )
    if cron_database != database:
        return (
            f"pg_cron runs in database {cron_database}, not in {database}: pass"
            f" --cron-dsn for database {cron_database}, or set cron.database_name"
            f" = '{database}' and restart PostgreSQL"
        )
    return f"pg_cron is not installed in database {database}: run 'session-sweeper migrate'"


def check(dsn: Dsn, runs: int = 5, cron_dsn: Dsn | None = None) -> Report:
    """Collect the job, its runs, the stale sessions and the settings, and judge them.

    Raises ConnectError when a server cannot be reached and psycopg.Error when a
    query fails, for example on missing privileges.
    """
    report = Report()
    # A cron.database_name that names no database is a fault to report, not a server
    # that cannot be reached.
    with cron.open_connections(dsn, cron_dsn, missing_ok=True) as (app_conn, cron_conn):
        now = _one(app_conn, "select pg_catalog.now() as now")["now"]
        database = app_conn.info.dbname

        if not _exists(app_conn, "learning.settings"):
            report.problem(
                f"session-sweeper is not installed in database {database}:"
                " run 'session-sweeper migrate'"
            )
            return report
        report.settings = _one(app_conn, read_sql("settings"))["settings"]
        stale = _one(app_conn, read_sql("stale_sessions"))
        report.stale_sessions = stale["stale_sessions"]
        report.oldest_stale_seconds = stale["oldest_stale_seconds"]

        if not cron.has_pg_cron(cron_conn):
            report.problem(
                f"{_pg_cron_missing(cron_conn)}, so nothing sweeps users who never"
                " come back"
            )
            return report

        purge = cron.find_job(cron_conn, cron.PURGE_JOB)
        if _check_job(
            report, purge, cron.PURGE_JOB, cron_conn.info.dbname, cron_conn.info.dbname
        ):
            report.purge_job = _job_view(purge)

        job = cron.find_job(cron_conn, JOB_NAME)
        if not _check_job(report, job, JOB_NAME, database, cron_conn.info.dbname):
            return report
        report.job = _job_view(job)
        _check_config(report, job)
        _check_runs(report, app_conn, cron_conn, job, now, runs)
    return report
