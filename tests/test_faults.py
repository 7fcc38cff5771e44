"""Faults the CLI must survive: missing pg_cron, bad input, lost connections and locks.

The CLI runs as a subprocess, as a user runs it, so a traceback or a password
in its output is seen here. Servers with password authentication get a
scram-sha-256 line at the top of pg_hba.conf and a configuration reload.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from helpers import ALL_MIGRATIONS, count_down_to, migrations_before, migrations_from
from psycopg import conninfo, errors
from yoyo import get_backend

from session_sweeper.dsn import Dsn
from session_sweeper.migrate import apply_migrations, rollback_migrations
from session_sweeper.server import ThrowawayServer

CLI = str(Path(sys.executable).with_name("session-sweeper"))
PASSWORD = "p@ss w:rd/%?"
PASSWORD_ROLE = "odd_password"
JOB_NAME = "interrupt-stale-sessions"
PURGE_JOB_NAME = "purge-sweep-run-details"
# The CLI's backend shows this name in pg_stat_activity.
CLI_APP = "session-sweeper"


def run_cli(*args, timeout=90, env=None):
    """Run the CLI and return the finished process, output as text."""
    return subprocess.run(
        [CLI, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def start_cli(*args):
    return subprocess.Popen(
        [CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result, *secrets):
    """Check that a failed command printed one error line and no traceback or secret."""
    output = result.stdout + result.stderr
    errors_shown = [
        line for line in result.stderr.splitlines() if line.startswith("Error:")
    ]
    assert result.returncode != 0, f"a failed command exited 0: {output}"
    assert "Traceback" not in output, f"a traceback reached the user: {output}"
    assert len(errors_shown) == 1, f"expected one error line: {result.stderr!r}"
    for secret in secrets:
        assert secret not in output, "a password appeared in the output"
        assert quote(secret, safe="") not in output, (
            "a quoted password appeared in the output"
        )


def wait_for_blocked_backend(conn, timeout=15.0):
    """Return the pid of the CLI's backend once it waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "select pid from pg_stat_activity"
            " where application_name = %s and wait_event_type = 'Lock'",
            [CLI_APP],
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the CLI never waited for the held lock")


def enable_password_auth(server, role=PASSWORD_ROLE, password=PASSWORD):
    """Create a superuser role with a scram password that must log in with it."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("set password_encryption = 'scram-sha-256'")
        conn.execute(
            psycopg.sql.SQL("create role {} login superuser password {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
            )
        )
        hba = server.data_dir / "pg_hba.conf"
        # Opening the existing file for writing keeps its owner, the postgres user.
        text = hba.read_text()
        with open(hba, "w") as file:
            file.write(f"host all {role} 127.0.0.1/32 scram-sha-256\n{text}")
        conn.execute("select pg_reload_conf()")


def password_dsns(server, dbname="sweeper", password=PASSWORD):
    """Return the URI and the key=value form of a DSN with the password role."""
    uri = (
        f"postgresql://{PASSWORD_ROLE}:{quote(password, safe='')}"
        f"@127.0.0.1:{server.port}/{dbname}"
    )
    keywords = conninfo.make_conninfo(
        host="127.0.0.1",
        port=server.port,
        dbname=dbname,
        user=PASSWORD_ROLE,
        password=password,
    )
    return uri, keywords


def job_count(dsn, name=JOB_NAME):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select count(*) from cron.job where jobname = %s", [name]
        ).fetchone()[0]


def applied_count(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*) from _yoyo_migration").fetchone()[0]


def dead_pid():
    """Return the pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def cron_server():
    """A server with pg_cron in database sweeper and a role with a scram password."""
    with ThrowawayServer(cron_database="sweeper") as server:
        server.create_database("sweeper")
        enable_password_auth(server)
        yield server


@pytest.fixture
def cron_dsn(cron_server):
    """The sweeper database of cron_server, fully migrated, with no rows and no lock."""
    dsn = cron_server.dsn("sweeper")
    apply_migrations(dsn, lock_timeout=5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from yoyo_lock")
        conn.execute("truncate learning.reading_events, learning.sessions")
    return dsn


# pg_cron missing or elsewhere


@pytest.mark.parametrize(
    ("options", "message", "fix"),
    [
        (
            {"preload_pg_cron": False},
            "pg_cron is not in shared_preload_libraries",
            "shared_preload_libraries = 'pg_cron'",
        ),
        (
            {"cron_database": "elsewhere"},
            "pg_cron runs in database elsewhere, not in sweeper",
            "cron.database_name = 'sweeper'",
        ),
    ],
    ids=["not-preloaded", "other-database"],
)
def test_migrate_without_pg_cron_names_fix(throwaway_server, options, message, fix):
    server = throwaway_server(**options)
    dsn = server.create_database("sweeper")

    result = run_cli("migrate", "--dsn", dsn)
    status = run_cli("status", "--dsn", dsn)

    assert_one_line_error(result)
    assert f"Error: 0005_schedule_sweep_job failed: {message}" in result.stderr, (
        f"migrate must say what is missing: {result.stderr}"
    )
    assert fix in result.stderr, f"the hint must name the fix: {result.stderr}"
    assert applied_count(dsn) == len(migrations_before("0005")), (
        "0001 to 0004 must stay applied"
    )
    assert status.returncode == 1, f"status must report unhealthy: {status.stdout}"
    assert message in status.stdout, f"status must say what is missing: {status.stdout}"


def test_migrate_without_pg_cron_package(throwaway_server):
    server = throwaway_server(preload_pg_cron=False)
    dsn = server.create_database("sweeper")
    with psycopg.connect(dsn) as conn:
        available = conn.execute(
            "select count(*) from pg_available_extensions where name = 'pg_cron'"
        ).fetchone()[0]
    if available:
        pytest.skip(
            "postgresql-15-cron is installed, and removing it would break other tests"
        )

    result = run_cli("migrate", "--dsn", dsn)

    assert_one_line_error(result)
    assert "pg_cron is not installed on this server" in result.stderr, result.stderr
    assert "postgresql-15-cron" in result.stderr, "the hint must name the package"


# Connection strings and passwords


def test_password_with_quoting_works_for_migrate_and_status(cron_server):
    for dsn in password_dsns(cron_server):
        migrate = run_cli("migrate", "--dsn", dsn)
        status = run_cli("status", "--dsn", dsn, "--json")
        env_status = run_cli("status", env={"DATABASE_URL": dsn})
        output = migrate.stdout + migrate.stderr + status.stdout + status.stderr

        assert migrate.returncode == 0, (
            f"migrate with a quoted password failed: {output}"
        )
        assert status.returncode in (0, 1), f"status could not check: {status.stderr}"
        assert env_status.returncode in (0, 1), (
            f"status from DATABASE_URL failed: {env_status.stderr}"
        )
        assert PASSWORD not in output + env_status.stdout, (
            "the password appeared in the output"
        )
        assert quote(PASSWORD, safe="") not in output, "the quoted password appeared"


def test_wrong_password_is_one_line(cron_server):
    uri, keywords = password_dsns(cron_server, password="not-" + PASSWORD)
    for dsn in (uri, keywords):
        for command, code in (
            ("migrate", 1),
            ("sweep", 1),
            ("status", 2),
            ("rollback", 1),
        ):
            result = run_cli(command, "--dsn", dsn)

            assert_one_line_error(result, "not-" + PASSWORD, PASSWORD)
            assert result.returncode == code, f"{command} exited {result.returncode}"
            assert "password authentication failed" in result.stderr, result.stderr


def test_unreachable_server_is_one_line():
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    dsn = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:1/app"
    for command, code in (
        ("migrate", 1),
        ("sweep", 1),
        ("status", 2),
        ("break-lock", 1),
    ):
        result = run_cli(command, "--dsn", dsn)

        assert_one_line_error(result, PASSWORD)
        assert result.returncode == code, f"{command} exited {result.returncode}"
        assert "could not connect" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:{PASSWORD}@127.0.0.1:1/app",
        f"host=127.0.0.1 password='{PASSWORD}",
        "postgresql://[::1",
    ],
    ids=["unquoted-uri", "unclosed-quote", "bad-host"],
)
def test_unparsable_dsn_is_usage_error(dsn):
    result = run_cli("migrate", "--dsn", dsn)
    output = result.stdout + result.stderr

    assert result.returncode == 2, f"an unparsable DSN must be a usage error: {output}"
    assert "invalid connection string" in result.stderr, result.stderr
    assert "Traceback" not in output, "a traceback reached the user"
    assert PASSWORD not in output, "the password appeared in the output"


# Lost connections


def test_sweep_terminated_backend_is_one_line(cron_dsn):
    with (
        psycopg.connect(cron_dsn) as holder,
        psycopg.connect(cron_dsn, autocommit=True) as admin,
    ):
        holder.execute("lock table learning.sweep_runs in exclusive mode")
        process = start_cli("sweep", "--dsn", cron_dsn)
        admin.execute(
            "select pg_terminate_backend(%s)", [wait_for_blocked_backend(admin)]
        )
        out, err = process.communicate(timeout=30)

    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(result)
    assert "terminating connection" in err, err


def test_migrate_terminated_backend_converges(cron_dsn):
    rollback_migrations(cron_dsn, count=count_down_to("0005"))
    with (
        psycopg.connect(cron_dsn) as holder,
        psycopg.connect(cron_dsn, autocommit=True) as admin,
    ):
        # 0006 alters this function, so it waits for the row lock of this change.
        holder.execute(
            "alter function learning.interrupt_stale_sessions(text) cost 101"
        )
        process = start_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "5")
        admin.execute(
            "select pg_terminate_backend(%s)", [wait_for_blocked_backend(admin)]
        )
        out, err = process.communicate(timeout=30)
        holder.rollback()

    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(result)
    assert "0006_create_app_role failed" in err, err
    again = run_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "5")
    if again.returncode != 0 and "break-lock" in again.stderr:
        run_cli("break-lock", "--dsn", cron_dsn, "--force")
        again = run_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "5")
    assert again.returncode == 0, f"migrate did not converge: {again.stderr}"
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "not every migration is recorded"
    )


def test_server_stopped_during_sweep_is_one_line(throwaway_server):
    server = throwaway_server(cron_database="sweeper")
    dsn = server.create_database("sweeper")
    apply_migrations(dsn)
    holder = psycopg.connect(dsn)
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            holder.execute("lock table learning.sweep_runs in exclusive mode")
            process = start_cli("sweep", "--dsn", dsn)
            wait_for_blocked_backend(admin)
        server.stop()
        out, err = process.communicate(timeout=60)
    finally:
        holder.close()

    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(result)


# Migration locks


@pytest.fixture
def held_lock(cron_dsn):
    """Return a function that holds yoyo's lock from this process for some seconds."""
    threads = []

    def hold(seconds):
        taken = threading.Event()

        def run():
            backend = get_backend(Dsn(cron_dsn).yoyo_uri())
            with backend.lock(timeout=5):
                taken.set()
                time.sleep(seconds)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        assert taken.wait(10), "the test could not take the migration lock"

    yield hold
    for thread in threads:
        thread.join(timeout=30)


def test_migrate_waits_for_lock_then_applies(cron_dsn, held_lock):
    rollback_migrations(cron_dsn, count=count_down_to("0005"))
    held_lock(2)

    started = time.monotonic()
    result = run_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "20")
    waited = time.monotonic() - started

    assert result.returncode == 0, (
        f"migrate did not apply after the lock was released: {result.stderr}"
    )
    assert "0006_create_app_role" in result.stdout, result.stdout
    assert waited >= 1.0, f"migrate did not wait for the lock ({waited:.2f} s)"


def test_migrate_lock_timeout_names_live_holder(cron_dsn, held_lock):
    held_lock(4)

    started = time.monotonic()
    result = run_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "1")
    waited = time.monotonic() - started

    assert_one_line_error(result)
    assert f"process {os.getpid()} took it" in result.stderr, result.stderr
    assert "still runs on this host" in result.stderr, result.stderr
    assert waited < 3.5, f"--lock-timeout 1 waited {waited:.2f} s"


def test_rollback_lock_timeout_is_configurable(cron_dsn, held_lock):
    held_lock(4)

    result = run_cli("rollback", "--dsn", cron_dsn, "--lock-timeout", "1")

    assert_one_line_error(result)
    assert "another migration holds the lock" in result.stderr, result.stderr
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "a rollback without the lock changed state"
    )


def test_break_lock_keeps_live_holder(cron_dsn):
    with psycopg.connect(cron_dsn) as conn:
        conn.execute(
            "insert into yoyo_lock (locked, ctime, pid) values (1, now(), %s)",
            [os.getpid()],
        )

    kept = run_cli("break-lock", "--dsn", cron_dsn)
    forced = run_cli("break-lock", "--dsn", cron_dsn, "--force")

    assert_one_line_error(kept)
    assert "still runs on this host" in kept.stderr, kept.stderr
    assert forced.returncode == 0, forced.stderr
    assert f"Removed the lock of process {os.getpid()}" in forced.stdout, forced.stdout


def test_lock_left_by_killed_migrate_is_explained(cron_dsn):
    """A migrate killed while it waits leaves its lock, and break-lock then clears it."""
    rollback_migrations(cron_dsn, count=count_down_to("0005"))
    with (
        psycopg.connect(cron_dsn) as holder,
        psycopg.connect(cron_dsn, autocommit=True) as admin,
    ):
        holder.execute(
            "alter function learning.interrupt_stale_sessions(text) cost 101"
        )
        process = start_cli("migrate", "--dsn", cron_dsn)
        wait_for_blocked_backend(admin)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        holder.rollback()
    killed_pid = process.pid

    blocked = run_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "1")
    broken = run_cli("break-lock", "--dsn", cron_dsn)
    again = run_cli("migrate", "--dsn", cron_dsn)

    assert_one_line_error(blocked)
    assert f"process {killed_pid} took it" in blocked.stderr, blocked.stderr
    assert f"No process {killed_pid} runs on this host" in blocked.stderr, (
        blocked.stderr
    )
    assert "break-lock" in blocked.stderr, "the hint must name break-lock"
    assert broken.returncode == 0, broken.stderr
    assert f"Removed the lock of process {killed_pid}" in broken.stdout, broken.stdout
    assert again.returncode == 0, f"migrate after break-lock failed: {again.stderr}"
    assert "0006_create_app_role" in again.stdout, (
        "the killed migration was not applied"
    )
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "not every migration is recorded"
    )


def test_break_lock_removes_dead_holder(cron_dsn):
    pid = dead_pid()
    with psycopg.connect(cron_dsn) as conn:
        conn.execute(
            "insert into yoyo_lock (locked, ctime, pid) values (1, now(), %s)", [pid]
        )

    result = run_cli("break-lock", "--dsn", cron_dsn)
    second = run_cli("break-lock", "--dsn", cron_dsn)

    assert result.returncode == 0, result.stderr
    assert f"Removed the lock of process {pid}" in result.stdout, result.stdout
    assert second.stdout.strip() == "No migration lock is held.", second.stdout


# Interrupted migrations


def test_migration_applied_but_not_recorded_converges(cron_dsn):
    """A migrate killed between a migration and its record applies it again cleanly."""
    rollback_migrations(cron_dsn, count=count_down_to("0004"))
    migrations = Path(__file__).parent.parent / "migrations"
    with psycopg.connect(cron_dsn, autocommit=True) as conn:
        for migration in migrations_from("0005"):
            conn.execute((migrations / f"{migration}.sql").read_text())

    result = run_cli("migrate", "--dsn", cron_dsn)

    assert result.returncode == 0, (
        f"migrate over unrecorded migrations failed: {result.stderr}"
    )
    assert "0005_schedule_sweep_job" in result.stdout, result.stdout
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "not every migration is recorded"
    )
    assert job_count(cron_dsn) == 1, "applying 0005 twice must keep one job"


def test_two_migrate_processes_install_once(cron_dsn):
    rollback_migrations(cron_dsn, count=None, drop_data=True)

    processes = [
        start_cli("migrate", "--dsn", cron_dsn, "--lock-timeout", "60")
        for _ in range(2)
    ]
    results = [(p.wait(timeout=90), *p.communicate()) for p in processes]
    outputs = sorted(out for _, out, _ in results)

    assert [code for code, _, _ in results] == [0, 0], (
        f"a concurrent migrate failed: {results}"
    )
    assert outputs[0].startswith("Applied:"), f"one migrate must apply all: {outputs}"
    assert outputs[1].startswith("Nothing to apply"), (
        f"the other must apply nothing: {outputs}"
    )
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "not every migration is recorded once"
    )
    assert job_count(cron_dsn) == 1, "two migrates must schedule one job"


# Nothing lost


def seed_rows(dsn):
    with psycopg.connect(dsn) as conn:
        session_id = conn.execute(
            "insert into learning.sessions (user_id) values ('reader') returning id"
        ).fetchone()[0]
        conn.execute(
            "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
            " values (%s, 'reader', 'page', now())",
            [session_id],
        )


def dump(dsn):
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute(
            "select * from learning.sessions order by id"
        ).fetchall()
        events = conn.execute(
            "select * from learning.reading_events order by id"
        ).fetchall()
    return sessions, events


def test_rollback_with_rows_refuses_with_counts(cron_dsn):
    seed_rows(cron_dsn)
    before = dump(cron_dsn)

    result = run_cli("rollback", "--dsn", cron_dsn, "--all")

    assert_one_line_error(result)
    assert "1 session and 1 reading event," in result.stderr, result.stderr
    assert "--drop-data" in result.stderr, "the hint must name --drop-data"
    assert dump(cron_dsn) == before, "a refused rollback changed the data"
    assert applied_count(cron_dsn) == len(ALL_MIGRATIONS), (
        "a refused rollback rolled something back"
    )


def test_rollback_to_tables_keeps_data(cron_dsn):
    seed_rows(cron_dsn)
    before = dump(cron_dsn)

    result = run_cli(
        "rollback", "--dsn", cron_dsn, "--count", str(count_down_to("0001"))
    )
    after = dump(cron_dsn)
    again = run_cli("migrate", "--dsn", cron_dsn)

    assert result.returncode == 0, result.stderr
    assert after == before, (
        "rolling back the job, trigger and functions changed the data"
    )
    assert again.returncode == 0, again.stderr
    assert dump(cron_dsn) == before, "applying the migrations again changed the data"


def test_no_routine_deletes_rows(db):
    sources = db.execute(
        "select p.proname, lower(p.prosrc) from pg_proc as p"
        " join pg_namespace as n on n.oid = p.pronamespace where n.nspname = 'learning'"
    ).fetchall()
    for name, source in sources:
        for statement in (
            "delete from learning.sessions",
            "delete from learning.reading_events",
            "truncate",
        ):
            assert statement not in source, f"{name} contains {statement!r}"


# Bad input not covered by the contract tests


def add_session(db, user_id, idle):
    return db.execute(
        "insert into learning.sessions (user_id, started_at, last_event_at)"
        " values (%s, now() - %s::interval, now() - %s::interval) returning id",
        [user_id, idle, idle],
    ).fetchone()[0]


@pytest.mark.parametrize("user_id", [None, ""], ids=["null", "empty"])
def test_event_with_missing_user_id_is_rejected(db, user_id):
    session_id = add_session(db, "reader", "1 minute")

    with pytest.raises((errors.NotNullViolation, errors.ForeignKeyViolation)):
        db.execute(
            "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
            " values (%s, %s, 'page', now())",
            [session_id, user_id],
        )

    count = db.execute("select count(*) from learning.reading_events").fetchone()[0]
    assert count == 0, "an event without a user was stored"


def test_copy_with_one_bad_row_stores_nothing(db):
    mine = add_session(db, "reader", "1 minute")
    theirs = add_session(db, "other", "1 minute")
    before = db.execute(
        "select last_event_at from learning.sessions where id = %s", [mine]
    ).fetchone()

    with (
        pytest.raises(errors.ForeignKeyViolation),
        db.cursor().copy(
            "copy learning.reading_events (session_id, user_id, event_type, occurred_at)"
            " from stdin"
        ) as copy,
    ):
        copy.write_row((mine, "reader", "page", "2026-01-01 00:00:00+00"))
        copy.write_row((theirs, "reader", "page", "2026-01-01 00:00:00+00"))

    count = db.execute("select count(*) from learning.reading_events").fetchone()[0]
    after = db.execute(
        "select last_event_at from learning.sessions where id = %s", [mine]
    ).fetchone()
    assert count == 0, "a COPY with one foreign row stored rows"
    assert after == before, "a failed COPY touched a session"


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=365)],
    ids=["1970", "next-year"],
)
def test_client_clock_does_not_decide_liveness(db, occurred_at):
    with db.transaction():
        fresh = add_session(db, "reader", "1 minute")
        stale = add_session(db, "reader", "2 hours")
        db.execute(
            "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
            " values (%s, 'reader', 'page', %s)",
            [fresh, occurred_at],
        )
        now, fresh_at, stale_status = db.execute(
            "select now(), (select last_event_at from learning.sessions where id = %s),"
            " (select status from learning.sessions where id = %s)",
            [fresh, stale],
        ).fetchone()

    assert fresh_at == now, "the client's occurred_at set the liveness clock"
    assert stale_status == "interrupted", (
        "the client's clock kept a stale session alive"
    )


def test_cli_offers_no_idle_timeout_setter():
    """The CLI has no command that sets the idle timeout, so only SQL can."""
    result = run_cli("--help")

    assert result.returncode == 0, result.stderr
    assert "idle" not in result.stdout.lower(), (
        "a CLI command sets the idle timeout: test its range check"
    )


def test_migrate_as_second_role_keeps_one_job(cron_dsn, cron_server):
    """The jobs are found by name, whichever role scheduled them, for migrate and rollback."""
    second_role, _ = password_dsns(cron_server)
    rollback_migrations(cron_dsn, count=count_down_to("0004"))
    apply_migrations(second_role)

    rollback_migrations(cron_dsn, count=count_down_to("0004"))
    jobs_after_rollback = job_count(cron_dsn)
    purge_jobs_after_rollback = job_count(cron_dsn, PURGE_JOB_NAME)
    apply_migrations(second_role)
    rollback_migrations(cron_dsn, count=count_down_to("0004"), lock_timeout=5)
    apply_migrations(cron_dsn)
    rollback_migrations(second_role, count=count_down_to("0004"))
    apply_migrations(cron_dsn)
    apply_migrations(second_role, lock_timeout=5)
    with psycopg.connect(second_role) as conn:
        conn.execute(
            "delete from _yoyo_migration"
            " where migration_id like '0005%%' or migration_id like '0009%%'"
        )
    apply_migrations(second_role)

    assert jobs_after_rollback == 0, "a rollback by another role left the job scheduled"
    assert purge_jobs_after_rollback == 0, (
        "a rollback by another role left the purge job scheduled"
    )
    assert job_count(cron_dsn) == 1, "a migrate by a second role added a second job"
    assert job_count(cron_dsn, PURGE_JOB_NAME) == 1, (
        "a migrate by a second role added a second purge job"
    )


@pytest.mark.slow
def test_failed_job_run_shows_in_status(throwaway_server):
    """A real pg_cron run of a broken sweep shows as failed, and status exits 1."""
    server = throwaway_server(cron_database="sweeper")
    dsn = server.create_database("sweeper")
    apply_migrations(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "create or replace function learning.interrupt_stale_batch("
            " p_cutoff timestamptz, p_after_key timestamptz, p_after_id bigint,"
            " p_limit integer, out interrupted integer, out last_key timestamptz,"
            " out last_id bigint)"
            " language plpgsql set search_path = pg_catalog, learning as $$"
            " begin raise exception 'sweep broken on purpose'; end $$"
        )
        # Every minute, the shortest schedule pg_cron 1.4.2 has, so the test waits
        # for one real run instead of ten minutes.
        conn.execute(
            "select cron.alter_job(jobid, schedule => '* * * * *') from cron.job"
            " where jobname = %s",
            [JOB_NAME],
        )
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline and run is None:
            run = conn.execute(
                "select status, return_message from cron.job_run_details"
                " where status in ('failed', 'succeeded') order by runid desc limit 1"
            ).fetchone()
            time.sleep(1)

    result = run_cli("status", "--dsn", dsn)

    assert run is not None, "pg_cron did not run the job within 90 s"
    assert run[0] == "failed", f"the broken sweep did not fail: {run}"
    assert result.returncode == 1, (
        f"status must exit 1 after a failed run: {result.stdout}"
    )
    assert "failed" in result.stdout, (
        f"status must show the failed run: {result.stdout}"
    )
    assert "sweep broken on purpose" in result.stdout, (
        f"status must show the run's message: {result.stdout}"
    )
