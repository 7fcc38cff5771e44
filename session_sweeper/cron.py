"""The connection to pg_cron's database and the two named jobs of session-sweeper.

pg_cron lives in the database that cron.database_name names. That may be the
app's database or another one on the same server. In the second layout the
schema, functions and trigger live in the app database, and the jobs are
created from the cron database with cron.schedule_in_database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql
from session_sweeper.sweep import sweep_command

logger = logging.getLogger(__name__)

SWEEP_JOB = "interrupt-stale-sessions"
PURGE_JOB = "purge-sweep-run-details"
PURGE_SCHEDULE = "17 3 * * *"  # every day at 03:17 UTC
JOB_NAMES = (SWEEP_JOB, PURGE_JOB)

DEFAULT_SCHEDULE = "*/10 * * * *"
DEFAULT_RUN_DETAILS_RETENTION = "14 days"

# migrate sets this to the pg_cron database's name when it schedules the job from
# there itself, and migration 0005 then skips its own scheduling.
CRON_DATABASE_SETTING = "session_sweeper.cron_database"


@dataclass
class JobSpec:
    """A pg_cron job as session-sweeper wants it."""

    name: str
    schedule: str
    command: str
    database: str


def cron_database_name(conn: psycopg.Connection) -> str | None:
    """Return cron.database_name, or None when pg_cron is not preloaded.

    pg_cron 1.4.2 defines the setting as superuser-only, so only superusers and
    members of pg_read_all_settings can read it. For other roles the database where
    the extension is installed is used instead.
    """
    name, readable, installed_here = conn.execute(read_sql("cron_database")).fetchone()
    if readable:
        return name or None
    # NOTE: for such a role, pg_cron installed in another database looks like pg_cron
    # not preloaded.
    logger.info("cannot read cron.database_name, looking for pg_cron here instead")
    return conn.info.dbname if installed_here else None


def cron_dsn_for(app: Dsn, conn: psycopg.Connection, explicit: Dsn | None) -> Dsn:
    """Return the DSN of pg_cron's database: explicit, else the app's with its name.

    The second connection uses the app DSN's host, port and credentials, so it needs
    no settings of its own when one login works for both databases.
    """
    if explicit is not None:
        return explicit
    name = cron_database_name(conn)
    if name is None or name == conn.info.dbname:
        return app
    return app.with_params(dbname=name)


def cron_database_exists(conn: psycopg.Connection) -> bool:
    """Return whether cron.database_name names a database of this server, or is unset."""
    name = cron_database_name(conn)
    if name is None:
        return True
    row = conn.execute(
        "select exists (select from pg_catalog.pg_database where datname = %s)", [name]
    ).fetchone()
    return bool(row[0])


@contextlib.contextmanager
def open_connections(
    app: Dsn,
    cron: Dsn | None = None,
    autocommit: bool = True,
    missing_ok: bool = False,
) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """Yield (app connection, cron connection), one connection when both are the same.

    With missing_ok and no explicit cron DSN, a cron.database_name that names no
    database of this server yields the app connection twice, where the caller then
    finds no pg_cron. Raises ConnectError when either cannot connect.
    """
    with app.connect(autocommit=autocommit) as app_conn:
        target = cron_dsn_for(app, app_conn, cron)
        same = target.conninfo() == app.conninfo()
        if same or (missing_ok and cron is None and not cron_database_exists(app_conn)):
            yield app_conn, app_conn
            return
        with target.connect(autocommit=autocommit) as cron_conn:
            yield app_conn, cron_conn


def is_separate(app_conn: psycopg.Connection, cron_conn: psycopg.Connection) -> bool:
    """Return whether pg_cron's database is not the app's."""
    return app_conn is not cron_conn and app_conn.info.dbname != cron_conn.info.dbname


def has_pg_cron(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select pg_catalog.to_regclass('cron.job') is not null"
    ).fetchone()
    return bool(row[0])


def purge_command(conn: psycopg.Connection, retention: str) -> str:
    """Return the purge job's command with the retention as an interval literal."""
    text = read_sql("purge_run_details")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    literal = sql.SQL("{}::interval").format(sql.Literal(retention)).as_string(conn)
    return body.strip().replace("{retention}", literal)


def expected_jobs(
    app_conn: psycopg.Connection, cron_conn: psycopg.Connection
) -> list[JobSpec]:
    """Return the two jobs as the settings in the app database define them."""
    row = app_conn.execute(read_sql("settings")).fetchone()
    settings = row[0] if row else {}
    schedule = settings.get("sweep_schedule", DEFAULT_SCHEDULE)
    retention = settings.get("run_details_retention", DEFAULT_RUN_DETAILS_RETENTION)
    database = app_conn.info.dbname
    return [
        JobSpec(SWEEP_JOB, schedule, sweep_command(), database),
        # The purge reads only pg_cron's tables, so it runs in pg_cron's database.
        JobSpec(
            PURGE_JOB,
            PURGE_SCHEDULE,
            purge_command(cron_conn, retention),
            cron_conn.info.dbname,
        ),
    ]


def find_job(cron_conn: psycopg.Connection, name: str) -> dict | None:
    """Return the row of cron.job for a job of this product, or None."""
    with cron_conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(read_sql("job"), {"job_name": name}).fetchone()


class JobConflict(RuntimeError):
    """A job of this product that already serves another app database."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint
        self.done: list[str] = []


def _is_leftover(cron_conn: psycopg.Connection, job: dict) -> bool:
    """Return whether moving the job takes it away from no app.

    That holds when its database was dropped, and when it is the cron database
    without the app installed, where a job scheduled by hand or by an earlier
    install is left.
    """
    row = cron_conn.execute(
        "select not exists (select from pg_catalog.pg_database where datname = %s)",
        [job["database"]],
    ).fetchone()
    if row[0]:
        return True
    if job["database"] != cron_conn.info.dbname:
        return False
    row = cron_conn.execute(
        "select pg_catalog.to_regclass('learning.settings') is null"
    ).fetchone()
    return bool(row[0])


def _schedule(cron_conn: psycopg.Connection, spec: JobSpec) -> None:
    # pg_cron 1.4.2 grants cron.schedule to public but cron.schedule_in_database only
    # to its superuser, so a job for pg_cron's own database uses the first.
    if spec.database == cron_conn.info.dbname:
        cron_conn.execute(
            "select cron.schedule(%s, %s, %s)",
            [spec.name, spec.schedule, spec.command],
        )
        return
    cron_conn.execute(
        "select cron.schedule_in_database(%s, %s, %s, %s)",
        [spec.name, spec.schedule, spec.command, spec.database],
    )


def upsert_job(cron_conn: psycopg.Connection, spec: JobSpec) -> bool:
    """Create the job or bring it in line with spec, and return whether it changed.

    cron.alter_job also moves the job to spec.database, which re-scheduling a named
    job with cron.schedule_in_database does not do on pg_cron 1.4. A job that runs in
    another app database raises JobConflict instead, so a second install never takes
    the job away from the first.
    """
    job = find_job(cron_conn, spec.name)
    if job is None:
        _schedule(cron_conn, spec)
        logger.info("scheduled %s in database %s", spec.name, spec.database)
        return True
    if job["database"] != spec.database and not _is_leftover(cron_conn, job):
        raise JobConflict(
            f"the pg_cron job {spec.name} already runs in database {job['database']},"
            f" not in {spec.database}",
            hint=f"One pg_cron database serves one app database for each user. Run"
            f" 'session-sweeper rollback --all' on {job['database']} first, or install"
            " as another user.",
        )
    if (job["schedule"], job["command"], job["database"]) == (
        spec.schedule,
        spec.command,
        spec.database,
    ):
        return False
    cron_conn.execute(
        "select cron.alter_job(%s, schedule => %s, command => %s, database => %s)",
        [job["jobid"], spec.schedule, spec.command, spec.database],
    )
    logger.info(
        "altered %s to %s in database %s", spec.name, spec.schedule, spec.database
    )
    return True


def ensure_jobs(
    app_conn: psycopg.Connection, cron_conn: psycopg.Connection
) -> list[str]:
    """Create pg_cron where needed, upsert both jobs, and return the names changed."""
    if is_separate(app_conn, cron_conn):
        cron_conn.execute("create extension if not exists pg_cron")
    changed = []
    for spec in expected_jobs(app_conn, cron_conn):
        if upsert_job(cron_conn, spec):
            changed.append(spec.name)
    return changed


def unschedule_jobs(
    cron_conn: psycopg.Connection,
    app_database: str,
    names: tuple[str, ...] | list[str] = JOB_NAMES,
) -> list[str]:
    """Unschedule the named jobs of app_database, and return the names removed.

    The sweep job counts when it runs in app_database and the purge job when it runs
    in pg_cron's database, so a rollback leaves a job that sweeps another database.
    """
    if not has_pg_cron(cron_conn):
        return []
    databases = {SWEEP_JOB: app_database, PURGE_JOB: cron_conn.info.dbname}
    removed = []
    for name in names:
        # By id, because cron.unschedule by name finds only the current user's job,
        # and another role may have scheduled it.
        rows = cron_conn.execute(
            "select cron.unschedule(j.jobid) from cron.job as j"
            " where j.jobname = %s and j.database = %s",
            [name, databases[name]],
        ).fetchall()
        if rows:
            removed.append(name)
    return removed
