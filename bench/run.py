"""Run the benchmark on a throwaway server and print its tables.

python -m bench            # full: about 3 minutes on 2 cores
python -m bench --quick    # smaller tables and fewer rounds: about 30 seconds
python -m bench --smoke    # every part once, for the smoke test: about 10 seconds
"""

import argparse
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass

import psycopg

from bench import percall, sweep, writepath
from bench.report import median, table
from session_sweeper.migrate import apply_migrations
from session_sweeper.server import ThrowawayServer

DATABASE = "sweeper"

# Server settings beyond the throwaway server's own. The 4,000,000-session
# table fits in shared_buffers, and a large max_wal_size keeps checkpoints out
# of the timed runs.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
}


@dataclass
class Mode:
    name: str
    write: writepath.WriteConfig
    percall_repetitions: int
    sweep_sizes: tuple[int, ...]
    sweep_stale: tuple[int, ...]
    sweep_repetitions: int
    idle_repetitions: int


MODES = {
    "full": Mode(
        "full",
        writepath.WriteConfig(
            users=10_000, rounds=15, statements={1: 1000, 20: 300, 200: 60}
        ),
        percall_repetitions=200,
        sweep_sizes=(1_000_000, 4_000_000),
        sweep_stale=(0, 1_000, 10_000, 100_000),
        sweep_repetitions=5,
        idle_repetitions=31,
    ),
    "quick": Mode(
        "quick",
        writepath.WriteConfig(
            users=10_000, rounds=5, statements={1: 300, 20: 100, 200: 20}
        ),
        percall_repetitions=50,
        sweep_sizes=(100_000, 400_000),
        sweep_stale=(0, 100, 1_000, 10_000),
        sweep_repetitions=2,
        idle_repetitions=11,
    ),
    # For the smoke test: every part runs, nothing is worth timing.
    "smoke": Mode(
        "smoke",
        writepath.WriteConfig(
            users=2_000, rounds=2, statements={1: 20, 20: 10, 200: 4}
        ),
        percall_repetitions=3,
        sweep_sizes=(10_000, 40_000),
        sweep_stale=(0, 10, 100, 1_000),
        sweep_repetitions=1,
        idle_repetitions=3,
    ),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n")[0]
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quick", action="store_true", help="smaller tables, fewer rounds"
    )
    group.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run that only checks every part works",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES["full"]
    if args.quick:
        mode = MODES["quick"]
    elif args.smoke:
        mode = MODES["smoke"]
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    load_before = os.getloadavg()

    with ThrowawayServer(
        preload_pg_cron=True,
        cron_database=DATABASE,
        fsync=False,
        settings=SERVER_SETTINGS,
    ) as server:
        dsn = server.create_database(DATABASE)
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            _pause_jobs(conn)
            print(_settings(conn, mode, load_before))
            sections = _run_parts(conn, dsn, mode)

    load_after = os.getloadavg()
    print(sections)
    print(
        f"\nLoad average (1, 5, 15 min) before: {_load(load_before)}, after: {_load(load_after)}."
        f" Wall time: {time.monotonic() - started:.0f} s."
    )
    return 0


def _pause_jobs(conn: psycopg.Connection) -> None:
    # A scheduled sweep during the write path would interrupt the stale sessions
    # that the variants are measured on, and any other job would add load.
    conn.execute("select cron.alter_job(jobid, active := false) from cron.job")


def _run_parts(conn: psycopg.Connection, dsn: str, mode: Mode) -> str:
    writepath.seed(conn, mode.write)
    percall.seed(conn)
    log(f"seeded {mode.write.users:,} users for the write path")
    write_text, ratios = writepath.summarize(writepath.measure(conn, mode.write, log))
    percall_results = percall.measure(conn, mode.percall_repetitions)
    percall_text = percall.summarize(percall_results)
    log("per-user call done")

    sweep_results, cold = {}, {}
    seeded = 0
    for size in mode.sweep_sizes:
        sweep.seed(conn, seeded + 1, size)
        seeded = size
        log(f"seeded {size:,} sessions for the sweep")
        sweep_results[size] = sweep.measure(
            conn,
            size,
            mode.sweep_stale,
            mode.sweep_repetitions,
            mode.idle_repetitions,
            log,
        )
        cold[size] = median(sweep.cold_sweep(dsn, 5)) * 1000
    sweep_text, sweep_figures = sweep.summarize(sweep_results)
    cold_text = "\n".join(
        f"First call in a new session, 0 stale, {size:,} sessions: {ms:.2f} ms (median of 5)."
        for size, ms in cold.items()
    )

    targets = _targets(mode, ratios, percall_results, sweep_figures)
    sections = [
        "## Write path",
        write_text,
        "## Per-user call",
        percall_text,
        "## Sweep",
        sweep_text,
        cold_text,
        "## Targets",
        targets,
    ]
    return "\n\n".join(sections)


def _settings(conn: psycopg.Connection, mode: Mode, load: tuple) -> str:
    names = [
        "server_version",
        "fsync",
        "shared_buffers",
        "synchronous_commit",
        "max_wal_size",
    ]
    values = {n: conn.execute(f"show {n}").fetchone()[0] for n in names}
    write = mode.write
    rows = [[n, v] for n, v in values.items()]
    rows += [
        ["mode", mode.name],
        [
            "write path",
            f"{write.users:,} users x 5 sessions, a quarter with a stale session",
        ],
        ["write rounds", write.rounds],
        [
            "statements per variant and round",
            ", ".join(f"{k} events: {v}" for k, v in write.statements.items()),
        ],
        [
            "sweep batch size",
            conn.execute("select sweep_batch_size from learning.settings").fetchone()[
                0
            ],
        ],
        ["sweep table sizes", ", ".join(f"{s:,}" for s in mode.sweep_sizes)],
        ["sweep stale counts", ", ".join(f"{s:,}" for s in mode.sweep_stale)],
        [
            "sweep repetitions",
            f"{mode.sweep_repetitions} per variant, {mode.idle_repetitions} with 0 stale",
        ],
        [
            "machine",
            f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        ],
        ["load average before", _load(load)],
    ]
    return "## Settings\n\n" + table(["setting", "value"], rows) + "\n"


def _load(values: tuple) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# (events per statement, maximum of product / floor, maximum of product / app-side)
WRITE_TARGETS = ((1, 1.25, 0.35), (20, 1.10, 0.60), (200, 1.05, 0.95))


def _targets(
    mode: Mode, ratios: dict, percall_results: dict, sweep_figures: dict
) -> str:
    rows = []
    for size, floor_limit, app_limit in WRITE_TARGETS:
        to_floor, to_app = ratios[(size, "product")]
        rows.append(_target(f"product / floor, {size} events", floor_limit, to_floor))
        rows.append(_target(f"product / app-side, {size} events", app_limit, to_app))

    for size in mode.sweep_sizes:
        sweep_ms = sweep_figures[(size, 0)][0]
        rows.append(_target(f"sweep, 0 stale, {size:,} sessions, ms", 1, sweep_ms))

    size, stale = mode.sweep_sizes[0], mode.sweep_stale[2]
    ratio = sweep_figures[(size, stale)][1]
    rows.append(
        _target(f"sweep / single UPDATE, {stale:,} stale of {size:,}", 1.15, ratio)
    )

    server_ms = median(percall_results["none stale"]["server"])
    rows.append(_target("per-user call, none stale, server ms", 0.2, server_ms))

    text = table(["target", "limit", "measured", "met"], rows)
    if mode.name != "full":
        text += (
            f"\n\nThe {mode.name} mode uses smaller sweep tables than the targets name."
        )
    return text


def _target(name: str, limit: float, value: float) -> list:
    return [name, f"<= {limit}", value, _met(value <= limit)]


def _met(condition: bool) -> str:
    return "yes" if condition else "no"
