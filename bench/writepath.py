"""Write path: inserting events with the trigger, without it, and the app-side way.

Each statement inserts a batch of events for one session of one user. The
three variants run interleaved statement by statement in every round, each
on its own users, and a quarter of each variant's users have a stale session, which the product and
the app-side variants interrupt. Between rounds those sessions are made stale
again, so every round starts from the same state.
"""

import datetime
import json
import random
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from bench.db import as_replica, read_sql, wal_lsn
from bench.report import median, table

VARIANTS = ("floor", "app-side", "product")
BATCH_SIZES = (1, 20, 200)


@dataclass
class WriteConfig:
    users: int
    rounds: int
    # Statements per variant and round, by batch size.
    statements: dict[int, int]


@dataclass
class Cell:
    seconds: list[float] = field(default_factory=list)
    wal_bytes: list[float] = field(default_factory=list)


def seed(conn: psycopg.Connection, config: WriteConfig) -> None:
    conn.execute(
        "truncate learning.reading_events, learning.sessions restart identity cascade"
    )
    conn.execute(read_sql("seed_write"), {"users": config.users})
    conn.execute(read_sql("floor_table"))
    conn.execute("vacuum analyze learning.sessions")


def _events(count: int) -> dict:
    now = datetime.datetime.now(datetime.UTC)
    return {
        "event_types": ["page_turn"] * count,
        "occurred_at": [now] * count,
        "payloads": [json.dumps({"page": i}) for i in range(count)],
    }


def _user_slices(config: WriteConfig, rng: random.Random) -> list[list[int]]:
    """Split the users into one list per (batch size, variant), each a quarter stale."""
    stale = [u for u in range(config.users) if u % 4 == 0]
    fresh = [u for u in range(config.users) if u % 4 != 0]
    rng.shuffle(stale)
    rng.shuffle(fresh)
    ordered = []
    for i, user in enumerate(stale):
        ordered.append(user)
        ordered.extend(fresh[3 * i : 3 * i + 3])

    slices, start = [], 0
    for size in BATCH_SIZES:
        for _ in VARIANTS:
            count = config.statements[size]
            slices.append(ordered[start : start + count])
            start += count
    if start > len(ordered):
        raise ValueError(
            f"{start} statements per round need more than {config.users} users"
        )
    return slices


class Statements:
    """The composed statements of each variant."""

    def __init__(self) -> None:
        insert = read_sql("insert_events")
        self.product = sql.SQL(insert).format(
            table=sql.Identifier("learning", "reading_events")
        )
        self.floor = sql.SQL(insert).format(
            table=sql.Identifier("bench", "reading_events_floor")
        )
        self.app_interrupt = read_sql("app_interrupt")
        self.app_touch = read_sql("app_touch")

    def run(self, conn: psycopg.Connection, variant: str, params: dict) -> None:
        if variant == "product":
            conn.execute(self.product, params)
        elif variant == "floor":
            conn.execute(self.floor, params)
        else:
            with conn.transaction():
                conn.execute(self.app_interrupt, params)
                conn.execute(self.app_touch, params)
                conn.execute(self.floor, params)


def _params(users: list[int], size: int) -> list[dict]:
    events = _events(size)
    return [{"session_id": 5 * u + 1, "user_id": f"user-{u}", **events} for u in users]


def _run_interleaved(conn, statements, order, users, size) -> dict:
    """Run one statement of each variant in turn and return (seconds, WAL bytes) sums.

    Alternating statement by statement, not block by block, spreads any load
    from other processes on the machine evenly over the variants.
    """
    params = {variant: _params(users[variant], size) for variant in order}
    totals = {variant: [0.0, 0] for variant in order}
    for i in range(len(users[order[0]])):
        for variant in order:
            wal_before = wal_lsn(conn)
            started = time.perf_counter()
            statements.run(conn, variant, params[variant][i])
            totals[variant][0] += time.perf_counter() - started
            totals[variant][1] += wal_lsn(conn) - wal_before
    return totals


def _warm_up(conn, statements) -> None:
    # Prepare every statement and load the caches before anything is timed. The
    # users here are the fresh ones, so no stale session is used up.
    users = {variant: [1, 2, 3, 5, 6, 7] for variant in VARIANTS}
    for size in BATCH_SIZES:
        _run_interleaved(conn, statements, VARIANTS, users, size)


def measure(conn: psycopg.Connection, config: WriteConfig, log) -> dict:
    statements = Statements()
    rng = random.Random(2026)
    cells = {(size, v): Cell() for size in BATCH_SIZES for v in VARIANTS}
    hot_before = _hot_counts(conn)
    _warm_up(conn, statements)

    for round_number in range(config.rounds):
        slices = iter(_user_slices(config, rng))
        # Rotate the order, so no variant always runs first.
        shift = round_number % len(VARIANTS)
        order = VARIANTS[shift:] + VARIANTS[:shift]
        for size in BATCH_SIZES:
            users = {v: next(slices) for v in VARIANTS}
            totals = _run_interleaved(conn, statements, order, users, size)
            for variant, (seconds, wal) in totals.items():
                count = len(users[variant])
                cells[(size, variant)].seconds.append(seconds / count)
                cells[(size, variant)].wal_bytes.append(wal / count)
        as_replica(conn, "reset_write_stale", {"users": config.users})
        log(f"write path: round {round_number + 1} of {config.rounds} done")

    hot_after = _hot_counts(conn)
    return {
        "cells": cells,
        "updates": hot_after[0] - hot_before[0],
        "hot_updates": hot_after[1] - hot_before[1],
    }


def _hot_counts(conn) -> tuple[int, int]:
    # The statistics collector reports with a delay, so flush this backend's counts.
    conn.execute("select pg_stat_force_next_flush()")
    time.sleep(0.6)
    row = conn.execute(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
        " where relid = 'learning.sessions'::regclass"
    ).fetchone()
    return row[0], row[1]


def summarize(result: dict) -> tuple[str, dict]:
    """Return the write-path table and the ratios that the targets check."""
    cells = result["cells"]
    rows, ratios = [], {}
    for size in BATCH_SIZES:
        ms = {v: median(cells[(size, v)].seconds) * 1000 for v in VARIANTS}
        for variant in VARIANTS:
            ratio_floor = median(
                [
                    p / f
                    for p, f in zip(
                        cells[(size, variant)].seconds, cells[(size, "floor")].seconds
                    )
                ]
            )
            ratio_app = median(
                [
                    p / a
                    for p, a in zip(
                        cells[(size, variant)].seconds,
                        cells[(size, "app-side")].seconds,
                    )
                ]
            )
            rows.append(
                [
                    size,
                    variant,
                    ms[variant],
                    size / ms[variant] * 1000,
                    ratio_floor,
                    ratio_app,
                    median(cells[(size, variant)].wal_bytes),
                ]
            )
            ratios[(size, variant)] = (ratio_floor, ratio_app)
    headers = [
        "events per statement",
        "variant",
        "ms per batch",
        "events/s",
        "/ floor",
        "/ app-side",
        "WAL bytes per batch",
    ]
    text = table(headers, rows)
    text += (
        f"\n\nUpdates of learning.sessions during the write path: {result['updates']:,},"
        f" of which HOT: {result['hot_updates']:,}."
    )
    return text, ratios
