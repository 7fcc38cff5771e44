"""Every command run by an owner of the app database that is not a superuser.

pg_cron 1.4.2 revokes EXECUTE on cron.alter_job and cron.schedule_in_database
from public, and only superusers can create it. A superuser first runs RECIPE
in the app database, which is pg_cron's database here. The owner needs no
pg_read_all_settings, although only superusers and its members can read
cron.database_name. Each test starts its own server, because
the recipe grants server-wide roles.
"""

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import conninfo, sql

from cli import main

APP_DATABASE = "owned"
OWNER = "sweeper_owner"
ALTER_JOB = "cron.alter_job(bigint, text, text, text, text, boolean)"
CREATE_EXTENSION = "create extension pg_cron"
USAGE_ON_CRON = f"grant usage on schema cron to {OWNER}"
EXECUTE_ALTER_JOB = f"grant execute on function {ALTER_JOB} to {OWNER}"
READ_ALL_SETTINGS = f"grant pg_read_all_settings to {OWNER}"
CREATE_APP_ROLE = "create role session_sweeper_app nologin"
RECIPE = (CREATE_EXTENSION, USAGE_ON_CRON, EXECUTE_ALTER_JOB, CREATE_APP_ROLE)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": None})


def hint_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Hint:")]


def owner_dsn(server, statements: tuple[str, ...]) -> str:
    """Create the owner and its database, run statements as superuser, return its DSN."""
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(OWNER)))
        conn.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(APP_DATABASE), sql.Identifier(OWNER)
            )
        )
    with psycopg.connect(server.dsn(APP_DATABASE), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    return conninfo.make_conninfo(server.dsn(APP_DATABASE), user=OWNER)


@pytest.fixture
def server(throwaway_server):
    return throwaway_server(cron_database=APP_DATABASE)


def test_owner_role_runs_every_command(server):
    dsn = owner_dsn(server, RECIPE)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user")
        assert row.fetchone() == (False,), "the owner must not be a superuser"

    migrated = run("migrate", "--dsn", dsn)
    assert migrated.exit_code == 0, f"migrate as the owner must pass: {migrated.output}"

    status = run("status", "--dsn", dsn)
    assert status.exit_code == 0, f"a fresh install must be healthy: {status.output}"
    assert "Health: healthy" in status.output, "status must report a healthy install"

    scheduled = run("config", "--dsn", dsn, "--schedule", "*/5 * * * *")
    assert scheduled.exit_code == 0, f"config --schedule must pass: {scheduled.output}"
    assert "interrupt-stale-sessions" in scheduled.output, "the sweep job must change"

    idle = run("config", "--dsn", dsn, "--idle-timeout", "20 minutes")
    assert idle.exit_code == 0, f"config --idle-timeout must pass: {idle.output}"

    retention = run("config", "--dsn", dsn, "--run-details-retention", "20 days")
    assert retention.exit_code == 0, (
        f"config of the purge must pass: {retention.output}"
    )

    swept = run("sweep", "--dsn", dsn)
    assert swept.exit_code == 0, f"sweep as the owner must pass: {swept.output}"

    verified = run("verify", "--dsn", dsn)
    assert verified.exit_code == 0, f"verify must find no difference: {verified.output}"

    rolled_back = run("rollback", "--dsn", dsn, "--count", "1")
    assert rolled_back.exit_code == 0, f"rollback must pass: {rolled_back.output}"

    again = run("migrate", "--dsn", dsn)
    assert again.exit_code == 0, f"0009 must apply again: {again.output}"


def test_owner_role_without_cron_usage_gets_hint(server):
    dsn = owner_dsn(server, (CREATE_EXTENSION, CREATE_APP_ROLE))

    result = run("migrate", "--dsn", dsn)

    assert result.exit_code == 1, (
        f"migrate must fail without usage on cron: {result.output}"
    )
    assert hint_lines(result.output) == [
        f"Hint: Ask a superuser to run: {USAGE_ON_CRON};"
    ], "the hint must name the grant on schema cron"
    assert "Traceback" not in result.output, "a missing grant must not show a traceback"


def test_owner_role_without_alter_job_gets_hint(server):
    dsn = owner_dsn(server, (CREATE_EXTENSION, USAGE_ON_CRON, CREATE_APP_ROLE))
    migrated = run("migrate", "--dsn", dsn)
    assert migrated.exit_code == 0, f"migrate needs no alter_job: {migrated.output}"

    result = run("config", "--dsn", dsn, "--schedule", "*/5 * * * *")

    assert result.exit_code == 1, f"config must fail without alter_job: {result.output}"
    assert hint_lines(result.output) == [
        f"Hint: Ask a superuser to run: {EXECUTE_ALTER_JOB};"
    ], "the hint must name the grant on cron.alter_job"


def test_owner_role_without_app_role_gets_hint(server):
    dsn = owner_dsn(server, (CREATE_EXTENSION, USAGE_ON_CRON, EXECUTE_ALTER_JOB))

    result = run("migrate", "--dsn", dsn)

    assert result.exit_code == 1, (
        f"0006 must fail without the app role: {result.output}"
    )
    assert hint_lines(result.output) == [
        f"Hint: Ask a superuser to run: {CREATE_APP_ROLE};"
    ], "the hint must name the app role to create"


@pytest.mark.parametrize(
    "grants",
    [(CREATE_APP_ROLE,), (READ_ALL_SETTINGS, CREATE_APP_ROLE)],
    ids=["settings-hidden", "settings-readable"],
)
def test_owner_role_without_extension_gets_hint(server, grants):
    """0005 raises the hint itself when the role cannot read cron.database_name."""
    dsn = owner_dsn(server, grants)

    result = run("migrate", "--dsn", dsn)

    assert result.exit_code == 1, f"0005 must fail without pg_cron: {result.output}"
    expected = (
        f"Hint: Ask a superuser to run: {CREATE_EXTENSION}; in database {APP_DATABASE},"
        f" then {USAGE_ON_CRON};"
    )
    assert hint_lines(result.output) == [expected], (
        "the hint must name the extension and the grant on schema cron"
    )
