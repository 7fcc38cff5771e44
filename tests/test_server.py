"""Tests of the throwaway server and of the fixtures built on it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest
from mirakuru.base import ENV_UUID

from session_sweeper.server import ServerSetupError, ThrowawayServer


def show(dsn: str, setting: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select current_setting(%s)", [setting]).fetchone()[0]


def is_gone(pid: int) -> bool:
    """Return whether `pid` has exited, counting a zombie as exited."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_pg_server_preloads_pg_cron(pg_server):
    dsn = pg_server.dsn("postgres")

    assert "pg_cron" in show(dsn, "shared_preload_libraries"), (
        "pg_cron is not preloaded"
    )
    assert show(dsn, "cron.database_name") == "sweeper", (
        "pg_cron runs in the wrong database"
    )
    assert show(dsn, "cron.use_background_workers") == "on", (
        "jobs would need a libpq login"
    )


def test_pg_server_listens_on_loopback_only(pg_server):
    dsn = pg_server.dsn("postgres")

    assert show(dsn, "listen_addresses") == "127.0.0.1"
    assert show(dsn, "fsync") == "off", "fsync should default to off"


def test_pg_server_creates_pg_cron_extension(pg_server):
    with psycopg.connect(pg_server.dsn("sweeper"), autocommit=True) as conn:
        conn.execute("create extension if not exists pg_cron")
        row = conn.execute("select count(*) from cron.job").fetchone()

    assert row is not None, "cron.job is not readable after create extension"


def test_pg_server_runs_pg_cron_launcher(pg_server):
    """The launcher must be connected to `sweeper`, or no job would ever run."""
    query = """
        select count(*)
        from pg_catalog.pg_stat_activity
        where backend_type = 'pg_cron launcher' and datname = 'sweeper'
    """
    deadline = time.monotonic() + 15
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        while (launchers := conn.execute(query).fetchone()[0]) == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

    assert launchers == 1, "the pg_cron launcher is not running in sweeper"


def test_server_stop_removes_process_and_folder():
    with ThrowawayServer(preload_pg_cron=False) as server:
        pid = server.pid
        base_dir = server.base_dir
        assert pid is not None, "a running server has no postmaster pid"
        assert base_dir.is_dir(), "a running server has no data folder"

    assert is_gone(pid), f"postmaster {pid} still runs after the with block"
    assert not base_dir.exists(), f"{base_dir} is left behind"
    assert server.pid is None


def test_server_stop_on_exception_removes_folder():
    server = ThrowawayServer(preload_pg_cron=False)
    with pytest.raises(LookupError), server:
        pid = server.pid
        base_dir = server.base_dir
        raise LookupError("a failure inside the with block")

    assert is_gone(pid), f"postmaster {pid} still runs after an exception"
    assert not base_dir.exists(), f"{base_dir} is left behind after an exception"


def test_server_stop_twice_is_harmless():
    server = ThrowawayServer(preload_pg_cron=False).start()
    server.stop()
    server.stop()

    assert server.base_dir is None


CHILD_SCRIPT = textwrap.dedent(
    """
    import signal
    import time
    from session_sweeper.server import ThrowawayServer

    # A shell's background job inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler. Install it, as a terminal would.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    with ThrowawayServer(preload_pg_cron=False) as server:
        print(server.pid, server.base_dir, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"]
)
def test_server_signal_stops_server(signum):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line, f"the child printed nothing: {child.stderr.read()}"
        pid_text, base_text = line.split()

        child.send_signal(signum)
        returncode = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert returncode == -signum, (
        f"the child should die by {signum!r}, got {returncode}"
    )
    assert is_gone(int(pid_text)), f"postmaster {pid_text} outlived the child"
    assert not Path(base_text).exists(), f"{base_text} is left behind"


def test_server_fsync_and_settings(throwaway_server):
    server = throwaway_server(
        preload_pg_cron=False, fsync=True, settings={"work_mem": "8MB"}
    )
    dsn = server.dsn("postgres")

    assert show(dsn, "fsync") == "on"
    assert show(dsn, "work_mem") == "8MB"
    assert show(dsn, "shared_preload_libraries") == ""


def test_server_cron_database_elsewhere(throwaway_server):
    """pg_cron's extension can be created only in the cron.database_name database."""
    server = throwaway_server(cron_database="elsewhere")

    with (
        psycopg.connect(server.dsn("postgres"), autocommit=True) as conn,
        pytest.raises(psycopg.errors.RaiseException) as error,
    ):
        conn.execute("create extension pg_cron")

    assert "elsewhere" in str(error.value)


def test_server_create_database_returns_dsn(throwaway_server):
    server = throwaway_server(preload_pg_cron=False)

    dsn = server.create_database("Mixed Case")

    assert dsn.endswith("/Mixed%20Case")
    assert show(dsn, "server_version_num").startswith("15")


def test_server_missing_bindir_error(tmp_path):
    missing = tmp_path / "no-such-bin"

    with pytest.raises(ServerSetupError) as error:
        ThrowawayServer(bindir=missing).start()

    assert str(missing) in str(error.value), (
        "the message should name the folder searched"
    )
    assert "apt-get install postgresql-15 postgresql-15-cron" in str(error.value)


def test_server_missing_pg_cron_error(tmp_path):
    """A bindir whose ../lib lacks pg_cron.so is rejected before initdb runs."""
    real_bindir = Path("/usr/lib/postgresql/15/bin")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("pg_ctl", "initdb", "postgres"):
        (bindir / name).symlink_to(real_bindir / name)

    with pytest.raises(ServerSetupError) as error:
        ThrowawayServer(bindir=bindir).start()

    assert "pg_cron.so" in str(error.value)
    assert "postgresql-15-cron" in str(error.value)


def test_server_rejects_command_line_setting():
    with pytest.raises(ValueError, match="fsync"):
        ThrowawayServer(settings={"fsync": "on"})


def test_server_dsn_before_start_raises():
    with pytest.raises(RuntimeError, match="not running"):
        ThrowawayServer().dsn()


def test_server_leaves_no_postgres_process(pg_server):
    """No server started by the tests above is still running."""
    # mirakuru marks the processes it starts, and their children, with
    # ENV_UUID set to "<pid of this process>:<uuid>".
    marker = f"{os.getpid()}:"
    leaked = []
    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] != "postgres" or pg_server.pid in (
            process.pid,
            process.info["ppid"],
        ):
            continue
        try:
            ours = process.environ().get(ENV_UUID, "").startswith(marker)
            alive = process.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            # AccessDenied: another OS user's server, so not one of ours.
            continue
        if ours and alive:
            leaked.append(process.pid)

    assert leaked == [], f"postgres processes left running: {leaked}"


def test_server_runs_as_postgres_when_root(pg_server):
    owner = psutil.Process(pg_server.pid).username()
    expected = "postgres" if os.geteuid() == 0 else psutil.Process().username()

    assert owner == expected
