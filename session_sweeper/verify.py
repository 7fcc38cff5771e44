"""Compare what is installed with what the migrations define.

The expected side is expected_objects.json beside this module: the md5 of the
catalog's definition (pg_get_functiondef, pg_get_triggerdef, pg_get_indexdef,
pg_get_constraintdef, pg_get_viewdef and the column list) of every object in
schema learning after a fresh apply of all migrations on PostgreSQL 15. A test
applies the migrations to a new database and fails when the file no longer
matches, so the file changes with the migrations. Regenerate it with

    python -m session_sweeper.verify --write postgresql://.../fresh_database

Hashes of the catalog's output, rather than text cut from the migration
files, catch every hand edit the catalog can show, a changed SET clause or
volatility included. The catalog's output differs between major versions of
PostgreSQL, so the file is valid for PostgreSQL 15 only.

The jobs are compared with the settings: the sweep job's command must be
sql/sweep.sql's, the purge job's sql/purge_run_details.sql's, and its schedule the configured one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import psycopg

from session_sweeper import cron
from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql

EXPECTED_PATH = Path(__file__).with_name("expected_objects.json")
# Created by 0008 only when pg_cron lives in the app database.
CRON_ONLY_OBJECTS = ("view learning.sweep_run_history",)


def installed_objects(conn: psycopg.Connection) -> dict[str, str]:
    """Return the md5 of each learning object's definition, by object name."""
    conn.execute("select pg_catalog.set_config('search_path', 'pg_catalog', false)")
    rows = conn.execute(read_sql("installed_objects")).fetchall()
    return {name: hashlib.md5(text.encode()).hexdigest() for name, text in rows}


def expected_objects() -> dict[str, str]:
    return json.loads(EXPECTED_PATH.read_text())


def compare_objects(
    installed: dict[str, str], expected: dict[str, str], with_view: bool
) -> list[str]:
    """Return one line for each object missing, changed or not in the migrations."""
    if not with_view:
        expected = {k: v for k, v in expected.items() if k not in CRON_ONLY_OBJECTS}
    differences = []
    for name in sorted(expected.keys() | installed.keys()):
        if name not in installed:
            differences.append(f"{name} is missing")
        elif name not in expected:
            differences.append(f"{name} is not defined by the migrations")
        elif installed[name] != expected[name]:
            differences.append(f"{name} differs from the migrations")
    return differences


def _compare_job(job: dict | None, spec: cron.JobSpec) -> list[str]:
    if job is None:
        return [f"job {spec.name} is missing"]
    differences = []
    if job["command"] != spec.command:
        differences.append(
            f"job {spec.name} has a command other than session-sweeper's"
        )
    for key in ("schedule", "database"):
        if job[key] != getattr(spec, key):
            differences.append(
                f"job {spec.name} has {key} {job[key]!r}, expected {getattr(spec, key)!r}"
            )
    if not job["active"]:
        differences.append(f"job {spec.name} is inactive")
    return differences


def compare_jobs(
    app_conn: psycopg.Connection, cron_conn: psycopg.Connection
) -> list[str]:
    """Return one line for each way the two jobs differ from the settings."""
    if not cron.has_pg_cron(cron_conn):
        return [f"pg_cron is not installed in database {cron_conn.info.dbname}"]
    differences = []
    for spec in cron.expected_jobs(app_conn, cron_conn):
        differences += _compare_job(cron.find_job(cron_conn, spec.name), spec)
    return differences


def verify(dsn: Dsn, cron_dsn: Dsn | None = None) -> list[str]:
    """Return every difference between the installed objects and the migrations."""
    with cron.open_connections(dsn, cron_dsn) as (app_conn, cron_conn):
        differences = compare_jobs(app_conn, cron_conn)
        with_view = not cron.is_separate(app_conn, cron_conn)
        differences += compare_objects(
            installed_objects(app_conn), expected_objects(), with_view
        )
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description="Write expected_objects.json.")
    parser.add_argument(
        "--write",
        metavar="DSN",
        required=True,
        help="a database with every migration freshly applied",
    )
    args = parser.parse_args()
    with Dsn(args.write).connect(autocommit=True) as conn:
        objects = installed_objects(conn)
    EXPECTED_PATH.write_text(json.dumps(objects, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(objects)} objects to {EXPECTED_PATH}")


if __name__ == "__main__":
    main()
