"""Show and change the settings in learning.settings, and keep the jobs in line.

Every path reads learning.settings when it runs, so a change takes effect at
the next event insert, function call or sweep, with no migration and no
restart. The schedule and the purge retention also live in pg_cron's jobs, so
a change to either updates the job in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg import sql

from session_sweeper import cron
from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql
from session_sweeper.schedule import Schedule, ScheduleError
from session_sweeper.status import human_duration

MIN_SCHEDULE_GAP = timedelta(minutes=1)
MAX_SCHEDULE_GAP = timedelta(days=1)


@dataclass(frozen=True)
class Setting:
    """One setting: its column, its CLI name, default and allowed range."""

    column: str
    option: str
    default: str
    allowed: str
    description: str


SETTINGS = (
    Setting(
        "idle_timeout",
        "idle-timeout",
        "30 minutes",
        "1 minute to 7 days",
        "An active session with no event for longer than this is stale.",
    ),
    Setting(
        "sweep_batch_size",
        "batch-size",
        "1000",
        "1 to 100000",
        "Sessions the sweep interrupts in one transaction.",
    ),
    Setting(
        "sweep_schedule",
        "schedule",
        "*/10 * * * *",
        "a five-field cron schedule whose longest gap is 1 minute to 1 day",
        "When pg_cron runs the sweep, in UTC.",
    ),
    Setting(
        "run_history_retention",
        "run-history-retention",
        "30 days",
        "3 days to 365 days",
        "The sweep deletes its learning.sweep_runs rows older than this.",
    ),
    Setting(
        "run_details_retention",
        "run-details-retention",
        "14 days",
        "3 days to 365 days",
        "purge-sweep-run-details deletes the jobs' cron.job_run_details rows older than this.",
    ),
)
BY_COLUMN = {s.column: s for s in SETTINGS}
# Settings that pg_cron's jobs carry too.
JOB_COLUMNS = ("sweep_schedule", "run_details_retention")


class ConfigError(ValueError):
    """A setting value out of range or unreadable, with the allowed range."""


def check_schedule(text: str) -> str:
    """Return the schedule when pg_cron 1.4.2 and the health rules accept it."""
    allowed = BY_COLUMN["sweep_schedule"].allowed
    if "second" in text.lower():
        raise ConfigError(
            f"schedule must be {allowed}, not {text!r}: pg_cron 1.4.2 has no seconds schedules"
        )
    try:
        gap = Schedule.parse(text).interval()
    except ScheduleError as error:
        raise ConfigError(f"schedule must be {allowed}: {error}") from None
    if not MIN_SCHEDULE_GAP <= gap <= MAX_SCHEDULE_GAP:
        raise ConfigError(
            f"schedule must be {allowed}, not {text!r}, whose longest gap is"
            f" {human_duration(gap)}"
        )
    return text


def read_settings(conn: psycopg.Connection) -> dict:
    """Return the settings in force as a dict of column to value."""
    row = conn.execute(read_sql("settings")).fetchone()
    return row[0] if row else {}


def _update(conn: psycopg.Connection, column: str, value: str) -> None:
    setting = BY_COLUMN[column]
    # PostgreSQL reads a bare number as seconds, which is not what a timeout or a
    # retention in this tool is meant to be.
    if column != "sweep_batch_size" and value.strip().lstrip("+-").isdigit():
        raise ConfigError(
            f"{setting.option} needs a unit, such as {setting.default!r}, not {value!r}"
        )
    query = sql.SQL("update learning.settings set {} = %s").format(
        sql.Identifier(column)
    )
    try:
        with conn.transaction():
            conn.execute(query, [value])
    except psycopg.errors.DataError:
        # The cast failed before the validating trigger could state the range.
        raise ConfigError(
            f"{setting.option} must be {setting.allowed}, such as {setting.default!r},"
            f" not {value!r}"
        ) from None
    except psycopg.errors.CheckViolation as error:
        raise ConfigError(error.diag.message_primary or str(error)) from None


def apply_settings(
    dsn: Dsn, changes: dict[str, str], cron_dsn: Dsn | None = None
) -> tuple[dict, list[str]]:
    """Store changes (column to value), update the jobs, and return (settings, jobs changed).

    Each value is checked before anything is stored, and every change is stored in
    one transaction, so a rejected value leaves all settings as they were.
    """
    if "sweep_schedule" in changes:
        check_schedule(changes["sweep_schedule"])
    unknown = set(changes) - set(BY_COLUMN)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")

    with cron.open_connections(dsn, cron_dsn, autocommit=False) as (
        app_conn,
        cron_conn,
    ):
        for column, value in changes.items():
            _update(app_conn, column, value)
        jobs = []
        if set(changes) & set(JOB_COLUMNS) and cron.has_pg_cron(cron_conn):
            jobs = cron.ensure_jobs(app_conn, cron_conn)
            cron_conn.commit()
        app_conn.commit()
        return read_settings(app_conn), jobs


def show_settings(dsn: Dsn) -> dict:
    """Return the settings in force."""
    with dsn.connect(autocommit=True) as conn:
        return read_settings(conn)
