"""The demo: a throwaway server where all three paths interrupt stale sessions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from session_sweeper.dsn import Dsn
from session_sweeper.migrate import apply_migrations
from session_sweeper.server import ThrowawayServer
from session_sweeper.status import JOB_NAME
from session_sweeper.sweep import plural

DATABASE = "sweeper"
# A scheduled run comes at the next full minute, so two minutes cover a slow start.
CRON_RUN_TIMEOUT = 150

# (user, status, minutes since start, minutes since the last event)
SEED = [
    ("alice", "active", 20, 2),
    ("alice", "active", 90, 45),
    ("bob", "active", 120, 50),
    ("bob", "completed", 180, 150),
    ("carol", "active", 240, 180),
    ("carol", "active", 10, 1),
    ("dave", "active", 70, 35),
]

Echo = Callable[[str], None]


def _seed(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        for user_id, status, started, last_event in SEED:
            cur.execute(
                """
                insert into learning.sessions
                    (user_id, status, started_at, last_event_at, ended_at, duration_seconds)
                values (
                    %(user)s, %(status)s,
                    now() - make_interval(mins => %(started)s),
                    now() - make_interval(mins => %(last)s),
                    case when %(status)s = 'active' then null
                        else now() - make_interval(mins => %(last)s) end,
                    (%(started)s - %(last)s) * 60
                )
                """,
                {
                    "user": user_id,
                    "status": status,
                    "started": started,
                    "last": last_event,
                },
            )


def _print_sessions(conn: psycopg.Connection, echo: Echo, title: str) -> None:
    rows = conn.execute(
        """
        select id, user_id, status, last_event_at, ended_at,
            ended_at = last_event_at as ended_at_last_event
        from learning.sessions
        order by id
        """
    ).fetchall()
    echo(title)
    echo(
        f"  {'id':>3}  {'user':<6} {'status':<12} {'last event':<9}  {'ended at':<9}"
        "  ended_at = last event"
    )
    for row in rows:
        last = f"{row['last_event_at']:%H:%M:%S}"
        ended = f"{row['ended_at']:%H:%M:%S}" if row["ended_at"] else "-"
        same = (
            "-"
            if row["ended_at"] is None
            else ("yes" if row["ended_at_last_event"] else "no")
        )
        echo(
            f"  {row['id']:>3}  {row['user_id']:<6} {row['status']:<12} {last:<9}  "
            f"{ended:<9}  {same}"
        )


def _wait_for_cron_run(conn: psycopg.Connection, jobid: int, since: datetime) -> dict:
    deadline = time.monotonic() + CRON_RUN_TIMEOUT
    while time.monotonic() < deadline:
        row = conn.execute(
            """
            select runid, status, start_time, end_time, return_message
            from cron.job_run_details
            where jobid = %s and start_time >= %s
                and status in ('succeeded', 'failed')
            order by runid
            limit 1
            """,
            [jobid, since],
        ).fetchone()
        if row:
            return row
        time.sleep(1)
    raise TimeoutError(
        f"pg_cron did not run the job {JOB_NAME} within {CRON_RUN_TIMEOUT} seconds"
    )


def _show_lazy_path(conn: psycopg.Connection, echo: Echo) -> None:
    echo("")
    echo(
        "Lazy path: one INSERT of 3 events, for alice's session 1 and carol's session 6."
    )
    conn.execute(
        """
        insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
        values (1, 'alice', 'page_turn', now()),
               (1, 'alice', 'page_turn', now()),
               (6, 'carol', 'highlight', '1970-01-01')
        """
    )
    echo(
        "The trigger touched sessions 1 and 6 and interrupted alice's and carol's stale"
    )
    echo("sessions. bob and dave sent nothing, so their sessions are untouched.")
    _print_sessions(conn, echo, "Sessions after the insert:")


def _show_direct_call(conn: psycopg.Connection, echo: Echo) -> None:
    echo("")
    count = conn.execute("select learning.interrupt_stale_sessions('dave')").fetchone()
    echo(
        f"Direct call: select learning.interrupt_stale_sessions('dave') returned "
        f"{count['interrupt_stale_sessions']}."
    )


def _show_cron_run(conn: psycopg.Connection, echo: Echo) -> None:
    job = conn.execute(
        "select jobid from cron.job where jobname = %s", [JOB_NAME]
    ).fetchone()
    # Only this throwaway server runs every minute, so the demo need not wait 10.
    conn.execute("select cron.alter_job(%s, schedule => '* * * * *')", [job["jobid"]])
    since = conn.execute("select now() as now").fetchone()["now"]
    next_minute = (since + timedelta(minutes=1)).replace(second=0, microsecond=0)

    echo("")
    _print_sessions(conn, echo, "Sessions before the pg_cron run:")
    echo("")
    echo(
        f"Scheduled the job {JOB_NAME} every minute. Waiting for its run at "
        f"{next_minute.astimezone(UTC):%H:%M:%S} UTC (up to a minute)..."
    )
    run = _wait_for_cron_run(conn, job["jobid"], since)

    echo("cron.job_run_details:")
    echo(
        f"  {'runid':>5}  {'status':<10} {'start_time':<15}  {'end_time':<15}  return_message"
    )
    echo(
        f"  {run['runid']:>5}  {run['status']:<10} {run['start_time']:%H:%M:%S.%f}"
        f"  {run['end_time']:%H:%M:%S.%f}  {run['return_message']}"
    )
    sweep = conn.execute(
        "select interrupted, batches from learning.sweep_runs order by id desc limit 1"
    ).fetchone()
    echo(
        f"The sweep recorded {plural(sweep['interrupted'], 'session')} interrupted "
        f"in {plural(sweep['batches'], 'batch')}."
    )
    echo("")
    _print_sessions(conn, echo, "Sessions after the pg_cron run:")


def run_demo(echo: Echo) -> None:
    """Run the demo on a new throwaway server, which is removed at the end."""
    echo("Starting a throwaway PostgreSQL 15 server with pg_cron on 127.0.0.1...")
    with ThrowawayServer(cron_database=DATABASE) as server:
        dsn = Dsn(server.create_database(DATABASE))
        echo(f"Server running on port {server.port}, pid {server.pid}.")
        echo("Applied migrations:")
        for migration_id in apply_migrations(dsn):
            echo(f"  {migration_id}")

        with dsn.connect(autocommit=True, row_factory=dict_row) as conn:
            conn.execute("set timezone = 'UTC'")
            _seed(conn)
            echo("")
            _print_sessions(
                conn, echo, "Seeded sessions (times in UTC, idle timeout 30 minutes):"
            )
            _show_lazy_path(conn, echo)
            _show_direct_call(conn, echo)
            _show_cron_run(conn, echo)
        echo("")
        echo("Stopping and removing the throwaway server.")
    echo("Done.")
