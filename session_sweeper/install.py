"""migrate and rollback across both layouts: pg_cron in the app database or in another."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from session_sweeper import cron, migrate
from session_sweeper.dsn import ConnectError, Dsn

logger = logging.getLogger(__name__)

SCHEDULE_MIGRATION = "0005_schedule_sweep_job"
# The migration that schedules each job where pg_cron lives in the app database.
JOB_MIGRATIONS = {
    SCHEDULE_MIGRATION: cron.SWEEP_JOB,
    "0009_schedule_purge_job": cron.PURGE_JOB,
}


@dataclass
class InstallResult:
    migrations: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def _with_option(dsn: Dsn, setting: str, value: str) -> Dsn:
    options = dsn.params.get("options", "")
    return dsn.with_params(options=f"{options} -c {setting}={value}".strip())


def _migration_applied(conn: psycopg.Connection, migration_id: str) -> bool:
    row = conn.execute(
        "select pg_catalog.to_regclass('_yoyo_migration') is not null"
    ).fetchone()
    if not row[0]:
        return False
    row = conn.execute(
        "select exists (select from _yoyo_migration where migration_id = %s)",
        [migration_id],
    ).fetchone()
    return bool(row[0])


def _cron_target(app: Dsn, explicit: Dsn | None) -> tuple[Dsn | None, str | None]:
    """Return the cron DSN and database name when pg_cron lives in another database.

    Returns (None, None) when pg_cron is in the app database or not preloaded, and
    when the cron database cannot be reached, so that migration 0005 raises its own
    error naming both settings.
    """
    with app.connect(autocommit=True) as conn:
        name = cron.cron_database_name(conn)
        if name is None or name == conn.info.dbname:
            return None, None
        target = cron.cron_dsn_for(app, conn, explicit)
    try:
        with target.connect(autocommit=True):
            pass
    except ConnectError as error:
        logger.warning("cannot reach pg_cron's database %s: %s", name, error)
        return None, None
    return target, name


def apply_all(
    app: Dsn, cron_dsn: Dsn | None = None, lock_timeout: float = migrate.LOCK_TIMEOUT
) -> InstallResult:
    """Apply pending migrations, then create or update both pg_cron jobs.

    A second run changes nothing. Raises ConnectError, MigrationError, JobConflict
    (with .done, the migrations applied before it) and psycopg.Error.
    """
    target, cron_name = _cron_target(app, cron_dsn)
    yoyo_dsn = app
    if cron_name is not None:
        yoyo_dsn = _with_option(app, cron.CRON_DATABASE_SETTING, cron_name)

    result = InstallResult(
        migrations=migrate.apply_migrations(yoyo_dsn, lock_timeout=lock_timeout)
    )

    with cron.open_connections(app, target) as (app_conn, cron_conn):
        if not _migration_applied(app_conn, SCHEDULE_MIGRATION):
            return result
        try:
            result.jobs = cron.ensure_jobs(app_conn, cron_conn)
        except cron.JobConflict as error:
            error.done = result.migrations
            raise
    return result


def rollback(
    app: Dsn,
    count: int | None,
    drop_data: bool,
    cron_dsn: Dsn | None = None,
    lock_timeout: float = migrate.LOCK_TIMEOUT,
) -> InstallResult:
    """Roll back migrations, and unschedule each job whose migration is rolled back.

    With pg_cron in the app database the rollback scripts unschedule the jobs
    themselves, and this finds nothing left to do.
    """
    target, _ = _cron_target(app, cron_dsn)
    done = migrate.rollback_migrations(
        app, count=count, drop_data=drop_data, lock_timeout=lock_timeout
    )
    result = InstallResult(migrations=done)
    names = [job for migration, job in JOB_MIGRATIONS.items() if migration in done]
    if names:
        with cron.open_connections(app, target) as (_, cron_conn):
            result.jobs = cron.unschedule_jobs(cron_conn, names)
    return result
