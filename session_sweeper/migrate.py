"""Apply and roll back the migrations in migrations/ with yoyo."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass

import psycopg
from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

from session_sweeper.dsn import ConnectError, Dsn, first_line
from session_sweeper.paths import MIGRATIONS_DIR
from session_sweeper.sweep import plural

logger = logging.getLogger(__name__)

# Seconds a migrate or rollback waits for another one to release yoyo's lock.
LOCK_TIMEOUT = 30


TABLES_MIGRATION = "0001_create_learning_tables"


class MigrationError(RuntimeError):
    """A migration step that failed, with PostgreSQL's hint when it gave one.

    done lists the migrations that were applied or rolled back before it failed.
    """

    def __init__(
        self, message: str, hint: str | None = None, done: list[str] | None = None
    ):
        super().__init__(message)
        self.hint = hint
        self.done = done or []


@dataclass
class Migration:
    id: str
    description: str


def _describe(migration) -> Migration:
    first = migration.source.splitlines()[0] if migration.source else ""
    return Migration(migration.id, first.removeprefix("--").strip())


def _open_backend(dsn: Dsn):
    try:
        return get_backend(dsn.yoyo_uri())
    except psycopg.OperationalError as error:
        raise ConnectError(
            f"could not connect to {dsn.masked()}: {dsn.scrub(first_line(error))}"
        ) from None


def process_running(pid: int) -> bool:
    """Return whether a process with this id runs on this host.

    yoyo stores only the pid of the process that took its lock, not its host, so
    a process on another host cannot be checked from here.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another OS user.
        return True
    return True


def _lock_held_error(backend, dsn: Dsn, lock_timeout: float) -> MigrationError:
    row = backend.execute("select pid, ctime from yoyo_lock").fetchone()
    if row is None:
        # The holder released it between the last try and this query.
        return MigrationError(
            f"timed out after {lock_timeout:g} s waiting for the migration lock on"
            f" {dsn.dbname}, which another migrate or rollback held",
            hint="Run the command again, or pass a longer --lock-timeout.",
        )
    pid, ctime = row
    message = (
        f"another migration holds the lock on {dsn.dbname}: process {pid} took it at"
        f" {ctime:%Y-%m-%d %H:%M:%S} UTC and did not release it within {lock_timeout:g} s"
    )
    if process_running(pid):
        hint = (
            f"Process {pid} still runs on this host. Wait for it to finish, or pass a"
            " longer --lock-timeout. Run 'session-sweeper break-lock' only when no"
            " migrate or rollback runs."
        )
    else:
        hint = (
            f"No process {pid} runs on this host, so a killed migrate or rollback"
            " probably left the lock behind. Unless it ran on another host, run"
            " 'session-sweeper break-lock' and try again."
        )
    return MigrationError(message, hint=hint)


@contextlib.contextmanager
def _locked(backend, dsn: Dsn, lock_timeout: float):
    try:
        with backend.lock(timeout=lock_timeout):
            yield
    except LockTimeout:
        raise _lock_held_error(backend, dsn, lock_timeout) from None
    except psycopg.OperationalError as error:
        # The connection was lost while waiting for the lock or while releasing it,
        # so the lock row of this process may be left behind.
        hint = (
            f"The migration lock of process {os.getpid()} may be left behind. Once the"
            " server is back, run 'session-sweeper break-lock', then the command again."
        )
        failed = error.__context__
        if isinstance(failed, MigrationError):
            failed.hint = hint
            raise failed from None
        raise MigrationError(
            f"lost the connection to {dsn.dbname}: {dsn.scrub(first_line(error))}",
            hint=hint,
        ) from None


def _run(step, dsn: Dsn, migration) -> None:
    # yoyo prints the rows of any SELECT in a migration to stdout.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            step()
    except psycopg.Error as error:
        diag = error.diag
        message = diag.message_primary or first_line(error)
        raise MigrationError(
            f"{migration.id} failed: {dsn.scrub(message)}",
            hint=dsn.scrub(diag.message_hint) if diag.message_hint else None,
        ) from None
    if captured.getvalue():
        logger.debug("output of %s: %s", migration.id, captured.getvalue())


def pending(dsn: Dsn) -> list[Migration]:
    """Return the migrations not yet applied, in the order migrate applies them."""
    backend = _open_backend(dsn)
    with backend:
        return [
            _describe(m) for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
        ]


def applied(dsn: Dsn) -> list[Migration]:
    """Return the applied migrations, latest first."""
    backend = _open_backend(dsn)
    with backend:
        return [
            _describe(m)
            for m in backend.to_rollback(read_migrations(str(MIGRATIONS_DIR)))
        ]


def apply_migrations(dsn: Dsn | str, lock_timeout: float = LOCK_TIMEOUT) -> list[str]:
    """Apply every pending migration and return their ids, in order.

    Each migration commits on its own, so a failure leaves the ones before it
    applied.
    """
    dsn = Dsn(dsn) if isinstance(dsn, str) else dsn
    backend = _open_backend(dsn)
    done: list[str] = []
    with backend, _locked(backend, dsn, lock_timeout):
        for migration in backend.to_apply(read_migrations(str(MIGRATIONS_DIR))):
            try:
                _run(lambda m=migration: backend.apply_one(m), dsn, migration)
            except MigrationError as error:
                error.done = done
                raise
            done.append(migration.id)
            logger.info("applied %s", migration.id)
    return done


def _check_data_kept(backend, dsn: Dsn, migrations: list) -> None:
    """Raise before anything is rolled back when the tables' rollback would refuse.

    The rollback script of the tables makes the same check, so this only saves
    rolling back the later migrations first for nothing.
    """
    if TABLES_MIGRATION not in [m.id for m in migrations]:
        return
    found = backend.execute("select to_regclass('learning.sessions') is not null")
    if not found.fetchone()[0]:
        return
    cursor = backend.execute(
        "select (select count(*) from learning.sessions),"
        " (select count(*) from learning.reading_events)"
    )
    sessions, events = cursor.fetchone()
    if sessions or events:
        raise MigrationError(
            f"rollback would drop {plural(sessions, 'session')} and"
            f" {plural(events, 'reading event')},"
            " so nothing was rolled back",
            hint="Back the rows up first, then run the rollback again with --drop-data.",
        )


def rollback_migrations(
    dsn: Dsn | str,
    count: int | None = 1,
    drop_data: bool = False,
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[str]:
    """Roll back the latest count migrations, or all when count is None.

    The rollback of the tables refuses while they hold rows unless drop_data
    is true.
    """
    dsn = Dsn(dsn) if isinstance(dsn, str) else dsn
    if drop_data:
        # The rollback scripts read this setting before they drop anything.
        # Appended, so options that the DSN itself sets still apply.
        options = (
            f"{dsn.params.get('options', '')} -c session_sweeper.allow_drop_data=on"
        )
        dsn = dsn.with_params(options=options.strip())
    backend = _open_backend(dsn)
    done: list[str] = []
    with backend, _locked(backend, dsn, lock_timeout):
        latest_first = list(backend.to_rollback(read_migrations(str(MIGRATIONS_DIR))))
        targets = latest_first[:count]
        if not drop_data:
            _check_data_kept(backend, dsn, targets)
        for migration in targets:
            try:
                _run(lambda m=migration: backend.rollback_one(m), dsn, migration)
            except MigrationError as error:
                error.done = done
                raise
            done.append(migration.id)
            logger.info("rolled back %s", migration.id)
    return done


def break_lock(dsn: Dsn, force: bool = False) -> list[tuple[int, object]]:
    """Remove yoyo's lock row and return the (pid, ctime) rows it removed.

    It raises MigrationError and removes nothing while the holder's pid runs on
    this host, unless force is true.
    """
    with dsn.connect(autocommit=True) as conn:
        rows = conn.execute("select pid, ctime from yoyo_lock").fetchall()
        running = [pid for pid, _ in rows if process_running(pid)]
        if running and not force:
            raise MigrationError(
                f"process {running[0]} that holds the migration lock on {dsn.dbname}"
                " still runs on this host, so the lock was kept",
                hint="Wait for that migrate or rollback to finish. If the pid now"
                " belongs to another program, run break-lock --force.",
            )
        # Only the rows checked above, so a lock taken meanwhile stays.
        removed = conn.execute(
            "delete from yoyo_lock where pid = any(%s) returning pid, ctime",
            [[pid for pid, _ in rows]],
        ).fetchall()
    return [(pid, ctime) for pid, ctime in removed]
