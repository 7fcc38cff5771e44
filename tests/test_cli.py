"""The session-sweeper commands through click's CliRunner, against real servers.

Each test asserts the exit code and the exact output. Commands that
need the job run on `sweeper`. Full migrate and rollback cycles run on a
throwaway server with its own cron database.
"""

import json
import socket
import time

import psycopg
import pytest
from click.testing import CliRunner, Result
from helpers import ALL_MIGRATIONS, migrations_before

from cli import main

CYCLE_DATABASE = "cycle"
JOB_NAME = "interrupt-stale-sessions"
PURGE_JOB_NAME = "purge-sweep-run-details"
SECRET = "hunter2-secret"
INVALID_DSN_MESSAGE = (
    "Error: Invalid value for '--dsn': invalid connection string: expected a "
    "postgresql:// URI or key=value pairs such as 'host=localhost dbname=app'"
)
MISSING_DSN_MESSAGE = (
    "Error: Invalid value for '--dsn': "
    "no connection string: pass --dsn or set DATABASE_URL"
)
# Every command that connects, with the arguments it needs besides --dsn.
COMMANDS = [["migrate"], ["rollback"], ["break-lock"], ["sweep"], ["status"]]
COMMAND_IDS = [command[0] for command in COMMANDS]


def run(*args: str, env: dict | None = None) -> Result:
    # DATABASE_URL from the caller's shell must not leak into a test.
    environment = {"DATABASE_URL": None, **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment)


def lines(text: str) -> list[str]:
    return text.splitlines()


def error_lines(text: str) -> list[str]:
    """Return the Error: and Hint: lines, without log lines that -v or a warning adds."""
    return [line for line in text.splitlines() if line.startswith(("Error:", "Hint:"))]


def database_name(dsn: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]


@pytest.fixture
def cron_dsn(throwaway_server) -> str:
    """Start a throwaway server whose cron database is a fresh, empty database."""
    server = throwaway_server(cron_database=CYCLE_DATABASE)
    return server.create_database(CYCLE_DATABASE)


# A password in each place a libpq connection string can carry one.
UNREACHABLE_DSNS = {
    "uri": "postgresql://app:{secret}@127.0.0.1:{port}/app?connect_timeout=5",
    "uri-query": "postgresql://app@127.0.0.1:{port}/app?password={secret}",
    "key-value": "host=127.0.0.1 port={port} dbname=app user=app password='{secret}'",
}


@pytest.fixture(params=list(UNREACHABLE_DSNS), ids=list(UNREACHABLE_DSNS))
def unreachable_dsn(request) -> str:
    """Return a DSN with a password for a port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # NOTE: another process may bind the port after the probe closes. A server there
    # would reject the login as app, and the commands would still fail to connect.
    return UNREACHABLE_DSNS[request.param].format(port=port, secret=SECRET)


def seed(dsn: str) -> None:
    """Insert a stale and a current session of u1 and two events for the current one."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            insert into learning.sessions (user_id, started_at, last_event_at)
            values
                ('u1', now() - interval '3 hours', now() - interval '2 hours'),
                ('u1', now() - interval '1 minute', now() - interval '1 minute')
            """
        )
        conn.execute(
            """
            insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
            values (2, 'u1', 'open', now()), (2, 'u1', 'page_view', now())
            """
        )


def seed_stale(conn: psycopg.Connection, count: int, idle: str = "2 hours") -> None:
    conn.execute(
        """
        insert into learning.sessions (user_id, started_at, last_event_at)
        select 'user-' || i, now() - %(idle)s::interval, now() - %(idle)s::interval
        from generate_series(1, %(count)s) as i
        """,
        {"count": count, "idle": idle},
    )


# migrate


def test_migrate_applies_and_lists(cron_dsn):
    result = run("migrate", "--dsn", cron_dsn)

    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == ["Applied:"] + [f"  {m}" for m in ALL_MIGRATIONS], (
        "migrate must list every migration it applied"
    )


def test_migrate_second_run_applies_nothing(cron_dsn):
    run("migrate", "--dsn", cron_dsn)

    result = run("migrate", "--dsn", cron_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "Nothing to apply: the database is up to date.\n", (
        "a second migrate must say that nothing is pending"
    )


def test_migrate_outside_cron_database_schedules_there(throwaway_server):
    """pg_cron in another database: migrate schedules both jobs over a second connection."""
    server = throwaway_server(cron_database="cron_home")
    server.create_database("cron_home")
    app_dsn = server.create_database("app")

    result = run("migrate", "--dsn", app_dsn)

    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == (
        ["Applied:"]
        + [f"  {m}" for m in ALL_MIGRATIONS]
        + ["Scheduled:", f"  {JOB_NAME}", f"  {PURGE_JOB_NAME}"]
    ), "migrate must list the migrations and the jobs it scheduled in cron_home"


def test_migrate_unreachable_cron_database_fails(throwaway_server):
    """When pg_cron's database cannot be reached, 0005 fails and names it."""
    server = throwaway_server(cron_database="elsewhere")
    app_dsn = server.create_database("app")

    result = run("migrate", "--dsn", app_dsn)

    assert result.exit_code == 1, result.output
    assert lines(result.stdout) == ["Applied:"] + [
        f"  {m}" for m in migrations_before("0005")
    ], "a failed migrate must still list the migrations it applied"
    assert error_lines(result.stderr) == [
        (
            "Error: 0005_schedule_sweep_job failed: pg_cron runs in database elsewhere, "
            "not in app"
        ),
        "Hint: Set cron.database_name = 'app' in postgresql.conf and restart PostgreSQL.",
    ], "the error must name the cron database and how to move it"


def test_migrate_reads_database_url(cron_dsn):
    result = run("migrate", env={"DATABASE_URL": cron_dsn})

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Applied:\n"), "migrate ignored DATABASE_URL"


# rollback


def test_rollback_latest_then_count(cron_dsn):
    run("migrate", "--dsn", cron_dsn)

    latest = run("rollback", "--dsn", cron_dsn)
    two = run("rollback", "--dsn", cron_dsn, "--count", "2")

    assert latest.exit_code == 0, latest.output
    assert lines(latest.stdout) == ["Rolled back:", f"  {ALL_MIGRATIONS[-1]}"], (
        "rollback without options must undo only the latest migration"
    )
    assert two.exit_code == 0, two.output
    assert lines(two.stdout) == [
        "Rolled back:",
        f"  {ALL_MIGRATIONS[-2]}",
        f"  {ALL_MIGRATIONS[-3]}",
    ], "rollback --count 2 must undo the next two, latest first"


def test_rollback_all_with_rows_is_rejected(cron_dsn):
    run("migrate", "--dsn", cron_dsn)
    seed(cron_dsn)

    result = run("rollback", "--dsn", cron_dsn, "--all")

    assert result.exit_code == 1, result.output
    assert result.stdout == "", (
        "a rejected rollback must not report rolled back migrations"
    )
    assert lines(result.stderr) == [
        (
            "Error: rollback would drop 2 sessions and 2 reading events, "
            "so nothing was rolled back"
        ),
        "Hint: Back the rows up first, then run the rollback again with --drop-data.",
    ], "the error must state the row counts and --drop-data"
    second = run("migrate", "--dsn", cron_dsn)
    assert second.stdout == "Nothing to apply: the database is up to date.\n", (
        "a rejected rollback must leave every migration applied"
    )


def test_rollback_all_drop_data_then_migrate(cron_dsn):
    run("migrate", "--dsn", cron_dsn)
    seed(cron_dsn)

    dropped = run("rollback", "--dsn", cron_dsn, "--all", "--drop-data")
    empty = run("rollback", "--dsn", cron_dsn, "--all")
    again = run("migrate", "--dsn", cron_dsn)

    assert dropped.exit_code == 0, dropped.output
    assert lines(dropped.stdout) == ["Rolled back:"] + [
        f"  {m}" for m in reversed(ALL_MIGRATIONS)
    ], "rollback --all --drop-data must undo every migration, latest first"
    assert empty.exit_code == 0, empty.output
    assert empty.stdout == "Nothing to roll back: no migration is applied.\n", (
        "a rollback with nothing applied must say so"
    )
    assert again.exit_code == 0, again.output
    assert lines(again.stdout) == ["Applied:"] + [f"  {m}" for m in ALL_MIGRATIONS], (
        "migrate after rollback --all must apply everything again"
    )


def test_rollback_count_zero_is_usage_error(cron_dsn):
    result = run("rollback", "--dsn", cron_dsn, "--count", "0")

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--count'" in result.stderr, "--count 0 must be rejected"


# break-lock


def test_break_lock_removes_stale_lock(sweeper_dsn):
    with psycopg.connect(sweeper_dsn, autocommit=True) as conn:
        conn.execute("delete from yoyo_lock")
        conn.execute(
            "insert into yoyo_lock (locked, ctime, pid)"
            " values (1, '2026-01-02 03:04:05', 424242)"
        )
        try:
            result = run("break-lock", "--dsn", sweeper_dsn)
            remaining = conn.execute("select count(*) from yoyo_lock").fetchone()[0]
        finally:
            conn.execute("delete from yoyo_lock")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Removed the lock of process 424242, taken at 2026-01-02 03:04:05 UTC.\n"
    ), "break-lock must name the process whose lock it removed"
    assert remaining == 0, "break-lock left the lock row behind"


def test_break_lock_without_lock_says_so(sweeper_dsn):
    result = run("break-lock", "--dsn", sweeper_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "No migration lock is held.\n"


def test_break_lock_before_first_migrate_says_so(fresh_dsn):
    result = run("break-lock", "--dsn", fresh_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "No migration lock is held.\n", (
        "a database without yoyo's tables holds no lock"
    )


# sweep


def test_sweep_reports_sessions_and_batches(db, sweeper_dsn):
    db.execute("update learning.settings set sweep_batch_size = 2")
    seed_stale(db, 5)

    result = run("sweep", "--dsn", sweeper_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "Interrupted 5 stale sessions in 3 batches.\n"
    active = db.execute(
        "select count(*) from learning.sessions where status = 'active'"
    ).fetchone()[0]
    assert active == 0, "the sweep command left stale sessions active"


def test_sweep_reports_one_session(db, sweeper_dsn):
    seed_stale(db, 1)

    result = run("sweep", "--dsn", sweeper_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "Interrupted 1 stale session in 1 batch.\n"


def test_sweep_reports_nothing_to_do(db, sweeper_dsn):
    result = run("sweep", "--dsn", sweeper_dsn)

    assert result.exit_code == 0, result.output
    assert result.stdout == "Interrupted 0 stale sessions in 0 batches.\n"


def test_sweep_before_migrate_fails(fresh_dsn):
    result = run("sweep", "--dsn", fresh_dsn)

    assert result.exit_code == 1, result.output
    assert lines(result.stderr) == ['Error: schema "learning" does not exist'], (
        "sweep must report the missing schema in one line"
    )
    assert "Traceback" not in result.output, "an expected failure printed a traceback"


# status


def first_due(dsn: str) -> str:
    """Return the first */10 fire time after 0005 was applied, as status prints it."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """
            select to_char(
                date_trunc('hour', applied_at_utc)
                    + (floor(extract(minute from applied_at_utc) / 10) + 1)
                    * interval '10 minutes',
                'YYYY-MM-DD HH24:MI:SS'
            )
            from _yoyo_migration
            where migration_id = '0005_schedule_sweep_job'
            """
        ).fetchone()[0]


def allowed_until(dsn: str) -> str:
    """Return two */10 intervals after 0005 was applied, the time status allows until."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """
            select to_char(applied_at_utc + interval '20 minutes', 'YYYY-MM-DD HH24:MI:SS')
            from _yoyo_migration
            where migration_id = '0005_schedule_sweep_job'
            """
        ).fetchone()[0]


def wait_past_fire_time(margin: float = 10) -> None:
    """Sleep past the next */10 fire time when it is less than `margin` seconds away.

    A job that fires between migrate and status would make the install no longer
    fresh, so the test starts only with at least `margin` seconds to go.
    """
    remaining = 600 - time.time() % 600
    if remaining < margin:
        time.sleep(remaining + 2)


def test_status_fresh_install_is_healthy(cron_dsn):
    wait_past_fire_time()
    run("migrate", "--dsn", cron_dsn)
    name = database_name(cron_dsn)

    result = run("status", "--dsn", cron_dsn)

    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == [
        "Job:",
        f"  name      {JOB_NAME}",
        "  schedule  */10 * * * *",
        "  active    yes",
        f"  database  {name}",
        "Purge job:",
        f"  name      {PURGE_JOB_NAME}",
        "  schedule  17 3 * * *",
        "  active    yes",
        f"  database  {name}",
        "Recent runs:",
        "  (none)",
        "Stale sessions:",
        "  0 waiting",
        "Settings:",
        "  idle-timeout               00:30:00",
        "  batch-size                 1000",
        "  schedule                   */10 * * * *",
        "  run-history-retention      30 days",
        "  run-details-retention      14 days",
        "  sweep-schedule-changed-at  -",
        (
            f"Note: fresh install: the first run is due at {first_due(cron_dsn)} UTC,"
            f" and status allows until {allowed_until(cron_dsn)} UTC"
        ),
        "Health: healthy",
    ], "a fresh install must show both jobs, no runs, the settings and the first run"


def test_status_json_has_every_key(sweeper_dsn, db):
    result = run("status", "--dsn", sweeper_dsn, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in [
        "healthy",
        "problems",
        "job",
        "purge_job",
        "last_runs",
        "stale_sessions",
        "oldest_stale_seconds",
        "settings",
    ]:
        assert key in report, f"status --json must have the key {key!r}"
    for key in ["name", "schedule", "active", "database"]:
        assert key in report["job"], f"status --json must have job.{key}"
        assert key in report["purge_job"], f"status --json must have purge_job.{key}"
    assert report["healthy"] is True, f"a fresh install must be healthy: {report}"
    assert report["problems"] == [], "a healthy report must list no problems"
    assert report["job"]["name"] == JOB_NAME
    assert report["job"]["database"] == "sweeper"
    assert report["stale_sessions"] == 0, "an empty database has no stale sessions"
    assert report["oldest_stale_seconds"] is None, "no stale session means no oldest"
    assert report["purge_job"]["name"] == PURGE_JOB_NAME
    assert report["purge_job"]["database"] == "sweeper"
    assert report["settings"] == {
        "idle_timeout": "00:30:00",
        "sweep_batch_size": 1000,
        "sweep_schedule": "*/10 * * * *",
        "sweep_schedule_changed_at": None,
        "run_history_retention": "30 days",
        "run_details_retention": "14 days",
    }, "status --json must show every setting with its default"


def test_status_failed_run_is_unhealthy(sweeper_dsn, db):
    message = 'ERROR:  relation "learning.sessions" does not exist'
    runid = db.execute(
        """
        insert into cron.job_run_details
            (jobid, runid, job_pid, database, username, command, status,
             return_message, start_time, end_time)
        select j.jobid, nextval('cron.runid_seq'), 4242, j.database, j.username,
            j.command, 'failed', %s, now() - interval '2 seconds', now() - interval '1 second'
        from cron.job as j
        where j.jobname = %s
        returning runid
        """,
        [message, JOB_NAME],
    ).fetchone()[0]
    try:
        result = run("status", "--dsn", sweeper_dsn)
        as_json = run("status", "--dsn", sweeper_dsn, "--json")
    finally:
        db.execute("delete from cron.job_run_details where runid = %s", [runid])

    assert result.exit_code == 1, result.output
    output = lines(result.stdout)
    assert "Health: unhealthy" in output, "a failed last run must make status unhealthy"
    assert f"  - the last finished run (runid {runid}) failed: {message}" in output, (
        "status must show the failed run's message"
    )
    run_lines = [line for line in output if line.lstrip().startswith(f"{runid} ")]
    assert len(run_lines) == 1, "the failed run must be listed under Recent runs"
    assert " failed " in run_lines[0], "pg_cron's status word must appear unchanged"
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)
    assert report["healthy"] is False
    assert report["last_runs"][0]["runid"] == runid, "the failed run must come first"
    assert report["last_runs"][0]["status"] == "failed"


def test_status_old_stale_session_is_unhealthy(sweeper_dsn, db):
    seed_stale(db, 1, idle="2 hours")

    result = run("status", "--dsn", sweeper_dsn)

    assert result.exit_code == 1, result.output
    output = lines(result.stdout)
    assert "  1 waiting, the oldest stale for 5400 s" in output, (
        "status must count the stale session and its age past the timeout"
    )
    problems = [line for line in output if "the sweep is not keeping up" in line]
    assert len(problems) == 1, "a session stale for 90 minutes must be a problem"
    assert "1 stale sessions" not in problems[0], (
        f"one stale session must be counted in the singular: {problems[0]!r}"
    )


@pytest.mark.parametrize(
    "last_success", [None, "3 hours"], ids=["never", "3-hours-ago"]
)
def test_status_overdue_job_is_unhealthy(cron_dsn, last_success):
    """An install older than two intervals with no recent success is a silent job."""
    run("migrate", "--dsn", cron_dsn)
    with psycopg.connect(cron_dsn) as conn:
        conn.execute(
            "update _yoyo_migration set applied_at_utc = applied_at_utc - interval '4 hours'"
        )
        if last_success is not None:
            conn.execute(
                """
                insert into cron.job_run_details
                    (jobid, runid, job_pid, database, username, command, status,
                     return_message, start_time, end_time)
                select j.jobid, nextval('cron.runid_seq'), 4242, j.database, j.username,
                    j.command, 'succeeded', '1 row',
                    now() - %s::interval, now() - %s::interval
                from cron.job as j
                """,
                [last_success, last_success],
            )

    result = run("status", "--dsn", cron_dsn)

    assert result.exit_code == 1, result.output
    problems = [
        line
        for line in lines(result.stdout)
        if line.startswith("  - no run succeeded within two intervals (20 minutes)")
    ]
    assert len(problems) == 1, "a job with no success for hours must be a problem"
    for garbled in ("was ever", "was since"):
        assert garbled not in problems[0], (
            f"the problem must state plainly when the last run succeeded: {problems[0]!r}"
        )


def test_status_prints_run_times_in_utc(sweeper_dsn, db):
    """The runs table is headed 'start (UTC)', whatever the session's TimeZone is."""
    runid = db.execute(
        """
        insert into cron.job_run_details
            (jobid, runid, job_pid, database, username, command, status,
             return_message, start_time, end_time)
        select j.jobid, nextval('cron.runid_seq'), 4242, j.database, j.username,
            j.command, 'succeeded', '1 row',
            '2026-01-02 03:04:05+00', '2026-01-02 03:04:06+00'
        from cron.job as j
        where j.jobname = %s
        returning runid
        """,
        [JOB_NAME],
    ).fetchone()[0]
    new_york = sweeper_dsn + "?options=-c%20TimeZone%3DAmerica/New_York"
    try:
        result = run("status", "--dsn", new_york)
    finally:
        db.execute("delete from cron.job_run_details where runid = %s", [runid])

    output = lines(result.stdout)
    run_lines = [line for line in output if line.lstrip().startswith(f"{runid} ")]
    assert len(run_lines) == 1, f"run {runid} must be listed: {result.stdout}"
    assert "2026-01-02 03:04:05" in run_lines[0], (
        f"a start time under 'start (UTC)' must be in UTC: {run_lines[0]!r}"
    )


def test_status_outside_cron_database_names_it(sweeper_dsn, fresh_dsn):
    """The sweep job serves `sweeper`, so status must name cron.database_name here."""
    run("migrate", "--dsn", fresh_dsn)

    result = run("status", "--dsn", fresh_dsn)

    assert result.exit_code == 1, result.output
    problems = [line for line in lines(result.stdout) if line.startswith("  - ")]
    assert len(problems) == 1, f"expected one problem: {result.stdout}"
    assert "cron.database_name" in problems[0], (
        "the problem must say that pg_cron runs in another database, "
        f"not only to run migrate: {problems[0]!r}"
    )


def test_status_before_migrate_is_unhealthy(fresh_dsn):
    name = database_name(fresh_dsn)

    result = run("status", "--dsn", fresh_dsn)

    assert result.exit_code == 1, result.output
    assert lines(result.stdout)[-2:] == [
        "Health: unhealthy",
        (
            f"  - session-sweeper is not installed in database {name}: "
            "run 'session-sweeper migrate'"
        ),
    ], "status must say that nothing is installed"


# Connection failures


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_cli_unreachable_server_fails_in_one_line(command, unreachable_dsn):
    result = run(*command, "--dsn", unreachable_dsn)

    expected_code = 2 if command == ["status"] else 1
    assert result.exit_code == expected_code, result.output
    assert SECRET not in result.output, "the output shows the password"
    assert "Traceback" not in result.output, "an unreachable server printed a traceback"
    assert result.stdout == "", "a failed connection must print nothing on stdout"
    assert len(lines(result.stderr)) == 1, f"expected one line: {result.stderr!r}"
    assert result.stderr.startswith("Error: could not connect to "), (
        "the error must say that the connection failed"
    )
    assert "password=***" in result.stderr, "the error must mask the password"


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=127.0.0.1 password='{SECRET}",
        f"postgresql://app:{SECRET}@[::1/app",
        f"password={SECRET} host",
    ],
    ids=["unterminated-quote", "unterminated-ipv6", "missing-equals"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_cli_invalid_dsn_is_usage_error(command, dsn):
    result = run(*command, "--dsn", dsn)

    assert result.exit_code == 2, result.output
    assert lines(result.stderr)[-1] == INVALID_DSN_MESSAGE
    assert SECRET not in result.output, "the output shows the password"


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_cli_missing_dsn_is_usage_error(command):
    result = run(*command)

    assert result.exit_code == 2, result.output
    assert lines(result.stderr)[-1] == MISSING_DSN_MESSAGE


def test_cli_help_lists_commands():
    result = run("-h")

    assert result.exit_code == 0, result.output
    for command in ["migrate", "rollback", "break-lock", "sweep", "status", "demo"]:
        assert f"  {command} " in result.stdout, f"-h must list {command}"


def test_rollback_all_with_count_is_usage_error():
    result = run(
        "rollback", "--all", "--count", "2", "--dsn", "postgresql://x@127.0.0.1:1/x"
    )
    assert result.exit_code == 2, "--all with --count must be a usage error"
    assert "--all and --count cannot be used together." in result.output, result.output
