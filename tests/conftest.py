"""Fixtures that run the tests against a real PostgreSQL 15 server with pg_cron.

One server runs for the whole test session. Its database `sweeper` is the
pg_cron database and is created once and never dropped, because dropping
the cron database, or terminating its connections, stops the pg_cron
launcher until the server restarts. Tests share it, and `db` empties the
tables before each test instead.
"""

import logging
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from session_sweeper.server import ThrowawayServer

logger = logging.getLogger(__name__)

CRON_DATABASE = "sweeper"

# Tables emptied before each test, in one truncate so foreign keys between
# them do not matter.
DATA_TABLES = ("learning.reading_events", "learning.sessions", "learning.sweep_runs")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    """Start the session's server, with pg_cron preloaded and its database created."""
    with ThrowawayServer(preload_pg_cron=True, cron_database=CRON_DATABASE) as server:
        server.create_database(CRON_DATABASE)
        yield server


@pytest.fixture(scope="session")
def sweeper_dsn(pg_server: ThrowawayServer) -> str:
    """Apply the migrations to `sweeper` once and return its DSN."""
    # Imported here so that tests which do not need the schema still run
    # when the migration code is broken.
    from session_sweeper.migrate import apply_migrations

    dsn = pg_server.dsn(CRON_DATABASE)
    applied = apply_migrations(dsn)
    logger.info("applied migrations: %s", ", ".join(applied) or "(none)")
    return dsn


@pytest.fixture
def db(sweeper_dsn: str) -> Iterator[psycopg.Connection]:
    """Open an autocommit connection to `sweeper` after resetting its tables and settings."""
    with psycopg.connect(sweeper_dsn, autocommit=True) as conn:
        reset_data(conn)
        yield conn


def reset_data(conn: psycopg.Connection) -> None:
    """Empty the data tables and restore default settings, skipping tables not created yet."""
    existing = [name for name in DATA_TABLES if _table_exists(conn, name)]
    if existing:
        tables = sql.SQL(", ").join(
            sql.Identifier(*name.split(".")) for name in existing
        )
        conn.execute(sql.SQL("truncate {} restart identity cascade").format(tables))

    if _table_exists(conn, "learning.settings"):
        conn.execute(
            "update learning.settings"
            " set idle_timeout = '30 minutes', sweep_batch_size = 1000"
        )


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", [name]).fetchone()
    return bool(row and row[0])


@pytest.fixture
def throwaway_server() -> Iterator[Callable[..., ThrowawayServer]]:
    """Return a function that starts an extra server, stopped when the test ends.

    It takes ThrowawayServer's keyword arguments, for example
    `throwaway_server(preload_pg_cron=False)`.
    """
    servers: list[ThrowawayServer] = []

    def start(**options: object) -> ThrowawayServer:
        server = ThrowawayServer(**options)
        servers.append(server)
        return server.start()

    yield start

    for server in reversed(servers):
        server.stop()


@pytest.fixture
def fresh_dsn(pg_server) -> Iterator[str]:
    """Create an empty database on the shared server, which is not its cron database."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    dsn = pg_server.create_database(name)
    yield dsn

    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database {} with (force)").format(sql.Identifier(name))
        )
