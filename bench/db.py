"""Helpers shared by the benchmark parts: SQL files and WAL positions."""

from functools import cache
from pathlib import Path

import psycopg

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def read_sql(name: str) -> str:
    """Return the text of bench/sql/NAME.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def wal_lsn(conn: psycopg.Connection) -> int:
    """Return the current WAL insert position in bytes."""
    return int(
        conn.execute("select pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
    )


def as_replica(conn: psycopg.Connection, name: str, params: dict) -> int:
    """Run bench/sql/NAME.sql with user triggers off and return its row count.

    session_replication_role = replica skips the guard that keeps finished
    sessions final, which is how the benchmark makes sessions stale again.
    """
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        return conn.execute(read_sql(name), params).rowcount
