"""pg_cron in a database other than the app's: migrate, status, config, verify, rollback.

Each test starts its own server with cron.database_name = cron_home and puts
the app in database app, so nothing here touches the shared `sweeper` server.
"""

import json
import time

import port_for
import psycopg
import pytest
from click.testing import CliRunner

from cli import main
from session_sweeper.migrate import MigrationError, apply_migrations

CRON_HOME = "cron_home"


@pytest.fixture
def two_databases(throwaway_server):
    """Start a server whose pg_cron lives in cron_home, and return it with app created."""
    server = throwaway_server(preload_pg_cron=True, cron_database=CRON_HOME)
    server.create_database(CRON_HOME)
    server.create_database("app")
    return server


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def jobs_in(cron_dsn: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(cron_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select jobname, schedule, database from cron.job"
        ).fetchall()
    return {name: (schedule, database) for name, schedule, database in rows}


def test_cron_database_yoyo_alone_raises(two_databases):
    with pytest.raises(MigrationError) as caught:
        apply_migrations(two_databases.dsn("app"))

    assert "pg_cron runs in database cron_home, not in app" in str(caught.value), (
        "yoyo alone must say where pg_cron runs"
    )
    assert "cron.database_name = 'app'" in caught.value.hint, (
        "the hint must name the setting that moves pg_cron"
    )


def test_cron_database_unreachable_cron_dsn_fails(two_databases):
    port = port_for.select_random()
    result = invoke(
        "migrate",
        "--dsn",
        two_databases.dsn("app"),
        "--cron-dsn",
        f"postgresql://postgres@127.0.0.1:{port}/{CRON_HOME}",
    )

    assert result.exit_code == 1, (
        "migrate must fail when it cannot reach pg_cron's database"
    )
    assert "pg_cron runs in database cron_home, not in app" in result.output, (
        f"the failure must be 0005's clear error:\n{result.output}"
    )


def test_cron_database_full_cycle(two_databases):
    app = two_databases.dsn("app")
    cron_home = two_databases.dsn(CRON_HOME)

    first = invoke("migrate", "--dsn", app)
    second = invoke("migrate", "--dsn", app)
    jobs = jobs_in(cron_home)

    assert first.exit_code == 0, (
        f"migrate must install across two databases:\n{first.output}"
    )
    assert (
        "Scheduled:\n  interrupt-stale-sessions\n  purge-sweep-run-details"
        in first.output
    ), f"migrate must say it scheduled both jobs:\n{first.output}"
    assert jobs["interrupt-stale-sessions"] == ("*/10 * * * *", "app"), (
        "the sweep job must live in cron_home and run in app"
    )
    assert jobs["purge-sweep-run-details"][1] == CRON_HOME, (
        "the purge job must run where cron.job_run_details is"
    )
    assert second.output == "Nothing to apply: the database is up to date.\n", (
        f"a second migrate must change nothing:\n{second.output}"
    )

    status = invoke("status", "--dsn", app, "--json")
    report = json.loads(status.output)

    assert status.exit_code == 0, (
        f"a fresh install across two databases is healthy:\n{status.output}"
    )
    assert report["job"]["database"] == "app", "status must read the job from cron_home"

    verify = invoke("verify", "--dsn", app)

    assert verify.exit_code == 0, (
        f"verify must pass without the cron-only view:\n{verify.output}"
    )

    config = invoke("config", "--dsn", app, "--schedule", "*/5 * * * *")

    assert config.exit_code == 0, (
        f"config must reach the job in cron_home:\n{config.output}"
    )
    assert jobs_in(cron_home)["interrupt-stale-sessions"] == ("*/5 * * * *", "app"), (
        "the new schedule must reach the job in cron_home"
    )

    rollback = invoke("rollback", "--dsn", app, "--all", "--drop-data")

    assert rollback.exit_code == 0, (
        f"rollback must work across two databases:\n{rollback.output}"
    )
    assert jobs_in(cron_home) == {}, (
        "rollback --all must unschedule both jobs in cron_home"
    )


def test_cron_database_explicit_cron_dsn(two_databases):
    app = two_databases.dsn("app")
    cron_home = two_databases.dsn(CRON_HOME)

    result = invoke("migrate", "--dsn", app, "--cron-dsn", cron_home)
    status = invoke("status", "--dsn", app, "--cron-dsn", cron_home)

    assert result.exit_code == 0, (
        f"migrate with --cron-dsn must succeed:\n{result.output}"
    )
    assert status.exit_code == 0, (
        f"status with --cron-dsn must be healthy:\n{status.output}"
    )


def test_cron_database_moves_leftover_job(two_databases):
    """pg_cron 1.4 keeps a named job's database on re-schedule, so migrate alters it."""
    app = two_databases.dsn("app")
    with psycopg.connect(two_databases.dsn(CRON_HOME), autocommit=True) as conn:
        conn.execute("create extension pg_cron")
        conn.execute(
            "select cron.schedule_in_database('interrupt-stale-sessions', '*/10 * * * *',"
            " 'call learning.sweep_stale_sessions()', 'cron_home')"
        )

    result = invoke("migrate", "--dsn", app)

    assert result.exit_code == 0, f"migrate must succeed:\n{result.output}"
    assert (
        jobs_in(two_databases.dsn(CRON_HOME))["interrupt-stale-sessions"][1] == "app"
    ), "migrate must move a job left in the wrong database to the app's"


@pytest.mark.slow
def test_cron_database_real_run(two_databases):
    """pg_cron in cron_home must run the sweep in app; waits for the next minute."""
    app = two_databases.dsn("app")
    invoke("migrate", "--dsn", app)
    invoke("config", "--dsn", app, "--schedule", "* * * * *")

    deadline = time.monotonic() + 80
    runs = []
    with psycopg.connect(app, autocommit=True) as conn:
        while not runs and time.monotonic() < deadline:
            time.sleep(1)
            runs = conn.execute("select run_by from learning.sweep_runs").fetchall()
    status = invoke("status", "--dsn", app, "--json")
    report = json.loads(status.output)

    assert runs == [("pg_cron",)], "a real run must record pg_cron as its runner in app"
    assert report["last_runs"][0]["interrupted"] == 0, (
        "status must join cron_home's run with app's counts"
    )


def test_cron_database_second_app_rejected(two_databases):
    """One pg_cron database and user can serve one app database, not two."""
    two_databases.create_database("other_app")
    invoke("migrate", "--dsn", two_databases.dsn("app"))

    result = invoke("migrate", "--dsn", two_databases.dsn("other_app"))

    assert result.exit_code == 1, "a second app database must not take over the job"
    assert "already runs in database app" in result.output, (
        f"the error must name the database that owns the job:\n{result.output}"
    )
    assert (
        jobs_in(two_databases.dsn(CRON_HOME))["interrupt-stale-sessions"][1] == "app"
    ), "the job must stay with the first app database"


def test_cron_database_job_of_dropped_database(two_databases):
    """A job left pointing at a dropped database belongs to no app, so migrate moves it."""
    two_databases.create_database("gone")
    invoke("migrate", "--dsn", two_databases.dsn("gone"))
    with psycopg.connect(two_databases.dsn("postgres"), autocommit=True) as conn:
        conn.execute("drop database gone with (force)")

    result = invoke("migrate", "--dsn", two_databases.dsn("app"))

    assert result.exit_code == 0, (
        f"migrate must take over an orphaned job:\n{result.output}"
    )
    assert (
        jobs_in(two_databases.dsn(CRON_HOME))["interrupt-stale-sessions"][1] == "app"
    ), "the orphaned job must move to the app database"


def test_cron_database_yoyo_reclaims_orphaned_job(throwaway_server):
    """0005 alone moves a job whose database was dropped to the database it runs in."""
    server = throwaway_server(preload_pg_cron=True, cron_database="home")
    server.create_database("home")
    with psycopg.connect(server.dsn("home"), autocommit=True) as conn:
        conn.execute("create extension pg_cron")
        conn.execute(
            "select cron.schedule_in_database('interrupt-stale-sessions', '*/10 * * * *',"
            " 'call learning.sweep_stale_sessions()', 'home')"
        )
        conn.execute("update cron.job set database = 'dropped_long_ago'")

    apply_migrations(server.dsn("home"))

    assert jobs_in(server.dsn("home"))["interrupt-stale-sessions"][1] == "home", (
        "0005 must move an orphaned job to the cron database it is applied to"
    )
