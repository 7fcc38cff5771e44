"""Throwaway PostgreSQL 15 server for the demo, the tests and the benchmark.

The server runs under pytest-postgresql's PostgreSQLExecutor, listens on
127.0.0.1 only, trusts every local login and lives in a fresh temporary
folder that is removed when the server stops.

    with ThrowawayServer() as server:
        dsn = server.create_database("sweeper")
"""

import atexit
import logging
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Self
from urllib.parse import quote

import port_for
import psutil
import psycopg
from mirakuru.exceptions import ExecutorError, ProcessFinishedWithError
from psycopg import sql
from pytest_postgresql.executors import PostgreSQLExecutor

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = (
    "Install them with 'apt-get install postgresql-15 postgresql-15-cron', "
    "or run 'make demo', which installs them when they are missing."
)

# initdb and pg_ctl reject root, so as root they run as this OS user.
SERVER_OS_USER = "postgres"

# The executor's start command sets these on the postgres command line,
# where they override postgresql.conf, so a value given in `settings`
# would be silently ignored.
COMMAND_LINE_SETTINGS = frozenset(
    {"fsync", "port", "unix_socket_directories", "log_destination", "logging_collector"}
)


class ServerSetupError(RuntimeError):
    """The throwaway server could not be set up or started."""


def find_bindir(bindir: str | Path | None = None) -> Path:
    """Return the folder that contains PostgreSQL 15's pg_ctl, initdb and postgres.

    Without `bindir`, look in /usr/lib/postgresql/15/bin (Debian's layout),
    then in the folder that `pg_config --bindir` prints.
    """
    if bindir is not None:
        candidates = [Path(bindir)]
    else:
        candidates = [DEFAULT_BINDIR]
        pg_config_bindir = _run_pg_config("pg_config", "--bindir")
        if pg_config_bindir:
            candidates.append(Path(pg_config_bindir))

    for candidate in candidates:
        if all(
            (candidate / name).is_file() for name in ("pg_ctl", "initdb", "postgres")
        ):
            return candidate

    tried = ", ".join(str(candidate) for candidate in candidates)
    raise ServerSetupError(
        f"PostgreSQL server binaries (pg_ctl, initdb, postgres) not found in {tried}. "
        f"{INSTALL_HINT}"
    )


def find_pg_cron(bindir: Path) -> Path:
    """Return the path of pg_cron.so for the server in `bindir`."""
    pkglibdir = _run_pg_config(str(bindir / "pg_config"), "--pkglibdir")
    libdir = Path(pkglibdir) if pkglibdir else bindir.parent / "lib"
    library = libdir / "pg_cron.so"
    if not library.is_file():
        raise ServerSetupError(
            f"pg_cron is not installed: {library} not found. {INSTALL_HINT}"
        )
    return library


def _run_pg_config(executable: str, option: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, option], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _server_os_user() -> pwd.struct_passwd | None:
    """Return the OS user that must run initdb and pg_ctl, or None for the current one."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise ServerSetupError(
            f"initdb and pg_ctl cannot run as root, and the {SERVER_OS_USER!r} OS user "
            f"that would run them is missing. {INSTALL_HINT} The postgresql-15 package "
            "creates that user. Alternatively, run as a normal user."
        ) from None


def _run_as_prefix(os_user: pwd.struct_passwd | None) -> list[str]:
    if os_user is None:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerSetupError(
            "runuser not found. As root, the server runs through "
            f"'runuser -u {os_user.pw_name} --'. Install util-linux, or run as a normal user."
        )
    return [runuser, "-u", os_user.pw_name, "--"]


def _quote_setting(value: object) -> str:
    """Render `value` as a quoted postgresql.conf string."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    else:
        text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


class _RunAsExecutor(PostgreSQLExecutor):
    """PostgreSQLExecutor that runs every pg_ctl call behind a command prefix.

    pytest-postgresql 10 runs pg_ctl as the current user, and pg_ctl rejects
    root, so as root its initdb, status and stop calls all fail. This
    subclass puts `runuser -u postgres --` in front of each call and runs it
    in a folder that user can enter.
    """

    def __init__(self, *, command_prefix: list[str], cwd: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command_prefix = command_prefix
        self.command_parts = [*command_prefix, *self.command_parts]
        self.command = shlex.join(self.command_parts)
        self._cwd = cwd

    def _build_initdb_command(
        self, initdb_options: list[str], pgdata: str | None = None
    ) -> list[str]:
        return [
            *self.command_prefix,
            *super()._build_initdb_command(initdb_options, pgdata),
        ]

    def _run_initdb(self, command: list[str]) -> None:
        result = subprocess.run(
            command,
            env=self._initdb_env(),
            cwd=self._cwd,
            capture_output=True,
            text=True,
            timeout=self._timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServerSetupError(
                f"initdb failed with exit code {result.returncode}: {result.stderr.strip()}"
            )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command_prefix, self.executable, *args, "-D", self.datadir],
            cwd=self._cwd,
            capture_output=True,
            text=True,
            timeout=self._timeout,
            check=False,
        )

    def running(self) -> bool:
        if not os.path.exists(self.datadir):
            return False
        return self._pg_ctl("status").returncode == 0

    def stop(self, sig: int | None = None, exp_sig: int | None = None) -> Self:
        if self.running():
            result = self._pg_ctl("stop", "-m", "fast")
            if result.returncode != 0:
                logger.warning("pg_ctl stop failed: %s", result.stderr.strip())

        # Skip PostgreSQLExecutor.stop, which would call pg_ctl again without
        # the prefix, and let mirakuru reap pg_ctl and any process it left.
        try:
            super(PostgreSQLExecutor, self).stop(sig, exp_sig)
        except ProcessFinishedWithError:
            pass
        return self


class ThrowawayServer:
    """A PostgreSQL 15 server in a temporary folder, removed when it stops.

    As root, initdb and pg_ctl run as the `postgres` OS user. Settings:

    - `preload_pg_cron` puts pg_cron in shared_preload_libraries, and
      `cron_database` names the database where pg_cron runs jobs.
    - `use_background_workers` runs jobs in background workers, so they need
      no pg_hba.conf entry or password. It also raises max_worker_processes
      to 32, because each running job uses one worker slot.
    - `fsync` is off by default for speed, which is safe only for data
      that may be lost.
    - `settings` is written to postgresql.conf last, so it overrides the rest.
    """

    def __init__(
        self,
        *,
        preload_pg_cron: bool = True,
        cron_database: str = "sweeper",
        use_background_workers: bool = True,
        fsync: bool = False,
        settings: Mapping[str, object] | None = None,
        bindir: str | Path | None = None,
        timeout: int = 60,
    ) -> None:
        extra = dict(settings or {})
        fixed = COMMAND_LINE_SETTINGS.intersection(extra)
        if fixed:
            raise ValueError(
                f"settings {sorted(fixed)!r} are set on the command line and cannot be "
                "overridden. Use the fsync argument for fsync."
            )
        if preload_pg_cron and not cron_database:
            raise ValueError(
                "cron_database must be a database name when pg_cron is preloaded"
            )

        self.preload_pg_cron = preload_pg_cron
        self.cron_database = cron_database
        self.use_background_workers = use_background_workers
        self.fsync = fsync
        self.extra_settings = extra
        self.bindir = bindir
        self.timeout = timeout

        self.port: int | None = None
        self.base_dir: Path | None = None
        self._executor: _RunAsExecutor | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path | None:
        """PGDATA of the server, or None before it starts."""
        return self.base_dir / "data" if self.base_dir else None

    @property
    def log_path(self) -> Path | None:
        """Server log file, or None before it starts."""
        return self.base_dir / "postgresql.log" if self.base_dir else None

    @property
    def pid(self) -> int | None:
        """Process id of the postmaster, from postmaster.pid, or None when it is not running."""
        if self.data_dir is None:
            return None
        try:
            first_line = (
                (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            )
        except OSError:
            return None
        return int(first_line) if first_line.strip().isdigit() else None

    def server_settings(self) -> dict[str, object]:
        """Return the settings written to postgresql.conf, in order."""
        values: dict[str, object] = {"listen_addresses": HOST}
        if self.preload_pg_cron:
            values["shared_preload_libraries"] = "pg_cron"
            values["cron.database_name"] = self.cron_database
            values["cron.use_background_workers"] = self.use_background_workers
            # Jobs run through libpq log in to cron.host. The server listens
            # on 127.0.0.1 only, and "localhost" may resolve to ::1 first.
            values["cron.host"] = HOST
        if self.use_background_workers:
            values["max_worker_processes"] = 32
        values.update(self.extra_settings)
        return values

    def start(self) -> Self:
        """Create the data folder, run initdb and start the server."""
        if self._executor is not None:
            raise RuntimeError("the server is already running")

        bindir = find_bindir(self.bindir)
        if self.preload_pg_cron:
            find_pg_cron(bindir)
        os_user = _server_os_user()
        command_prefix = _run_as_prefix(os_user)

        _track(self)
        try:
            self._start(bindir, os_user, command_prefix)
        except BaseException:
            # This includes KeyboardInterrupt, so Ctrl-C during initdb or
            # startup still removes the half-built server.
            self.stop()
            raise
        return self

    def _start(
        self, bindir: Path, os_user: pwd.struct_passwd | None, command_prefix: list[str]
    ) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix="session-sweeper-pg-"))
        socket_dir = self.base_dir / "socket"
        socket_dir.mkdir()
        if os_user is not None:
            for path in (self.base_dir, socket_dir):
                os.chown(path, os_user.pw_uid, os_user.pw_gid)
            self._check_writable(command_prefix)

        # NOTE: another process can take the port between this check and
        # the server binding it. The start then fails and is not retried.
        self.port = port_for.select_random()
        fsync = "on" if self.fsync else "off"
        self._executor = _RunAsExecutor(
            command_prefix=command_prefix,
            cwd=str(self.base_dir),
            executable=str(bindir / "pg_ctl"),
            host=HOST,
            port=self.port,
            datadir=str(self.data_dir),
            unixsocketdir=str(socket_dir),
            logfile=str(self.log_path),
            startparams=f"-w -t {self.timeout}",
            dbname="postgres",
            user=SUPERUSER,
            timeout=self.timeout,
            # The start command always passes -F (fsync off). A later -c
            # overrides it, which is how fsync=True turns fsync back on.
            postgres_options=f"-c fsync={fsync}",
        )

        self._executor.init_directory()
        self._write_settings()
        logger.info(
            "starting PostgreSQL on %s:%s in %s", HOST, self.port, self.base_dir
        )
        try:
            self._executor.start()
        except ExecutorError as error:
            raise ServerSetupError(
                f"PostgreSQL failed to start on port {self.port}: {error}. "
                f"Last lines of its log:\n{self._log_tail()}"
            ) from error
        self._wait_until_ready()
        logger.info("started PostgreSQL on port %s, pid %s", self.port, self.pid)

    def _wait_until_ready(self) -> None:
        # mirakuru reports the port open while the server may still reject logins
        # with "the database system is starting up".
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=5).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise ServerSetupError(
                        f"PostgreSQL on port {self.port} did not accept connections "
                        f"within {self.timeout} s: {error}"
                    ) from error
                time.sleep(0.1)

    def _check_writable(self, command_prefix: list[str]) -> None:
        result = subprocess.run(
            [*command_prefix, "test", "-w", str(self.base_dir)], check=False, cwd="/"
        )
        if result.returncode != 0:
            raise ServerSetupError(
                f"the {SERVER_OS_USER!r} OS user cannot write to {self.base_dir}. "
                "Set TMPDIR to a folder that user can reach, for example /tmp."
            )

    def _write_settings(self) -> None:
        lines = ["", "# Added by session_sweeper.server for a throwaway server."]
        for name, value in self.server_settings().items():
            lines.append(f"{name} = {_quote_setting(value)}")
        # Appending keeps the file's owner, which matters when root writes
        # a file that belongs to the postgres OS user.
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(log not readable: {error})"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def stop(self) -> None:
        """Stop the server and remove its folder. Calling it twice does no harm."""
        executor, self._executor = self._executor, None
        if executor is not None:
            pid = self.pid
            postmaster = _find_process(pid)
            try:
                executor.stop()
            except (ExecutorError, OSError, subprocess.SubprocessError):
                logger.exception("stopping PostgreSQL pid %s failed", pid)
            self._kill_leftover(postmaster)
            logger.info("stopped PostgreSQL pid %s", pid)

        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, onerror=_log_rmtree_error)
            self.base_dir = None
        _untrack(self)

    def _kill_leftover(self, postmaster: psutil.Process | None) -> None:
        """Kill the postmaster if pg_ctl stop left it running."""
        if postmaster is None or _wait_until_gone(postmaster, self.timeout):
            return
        logger.warning(
            "PostgreSQL pid %s still runs after pg_ctl stop, killing it", postmaster.pid
        )
        try:
            postmaster.kill()
        except psutil.NoSuchProcess:
            return
        if not _wait_until_gone(postmaster, self.timeout):
            logger.error("PostgreSQL pid %s survived SIGKILL", postmaster.pid)

    def dsn(self, dbname: str = "postgres") -> str:
        """Return the libpq URI for `dbname` on this server, as the superuser."""
        if self.port is None or self._executor is None:
            raise RuntimeError("the server is not running")
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    def create_database(self, name: str) -> str:
        """Create database `name` and return its DSN."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.dsn(name)


def _log_rmtree_error(function: object, path: str, exc_info: tuple) -> None:
    logger.warning("could not remove %s: %s", path, exc_info[1])


def _find_process(pid: int | None) -> psutil.Process | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _wait_until_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait until `process` exits and return whether it did within `timeout` seconds.

    A zombie counts as gone, because it has released its port and files and
    only waits for init to reap it, which some container inits never do.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# Servers that started and have not stopped yet. A handler for SIGTERM and
# SIGHUP stops them, because by default those signals end Python without
# running `finally` blocks or `with` exits, and the server would outlive it.
_running: set[ThrowawayServer] = set()
_previous_handlers: dict[int, Any] = {}
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _track(server: ThrowawayServer) -> None:
    _running.add(server)
    if _previous_handlers or threading.current_thread() is not threading.main_thread():
        return
    for signum in _STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN:
            continue
        _previous_handlers[signum] = previous
        signal.signal(signum, _stop_all_on_signal)


def _untrack(server: ThrowawayServer) -> None:
    _running.discard(server)
    if _running or threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in _previous_handlers.items():
        if signal.getsignal(signum) is _stop_all_on_signal:
            signal.signal(signum, previous)
    _previous_handlers.clear()


def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _stop_all_on_signal(signum: int, frame: FrameType | None) -> None:
    logger.warning(
        "received %s, stopping throwaway PostgreSQL servers", signal.strsignal(signum)
    )
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    _stop_all()

    if callable(previous):
        previous(signum, frame)
        return
    # Die by the same signal, so the parent gets the usual exit status.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_stop_all)
