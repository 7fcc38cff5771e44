"""The plan of the sweep's batch query, as the job's command runs it.

auto_explain logs the plan of every statement that the procedure and its
functions run, with EXPLAIN (ANALYZE, BUFFERS) figures, as notices that the
test collects. With no stale session among 100,000, the batch query must
stay an index range scan on sessions_active_sweep_key_id_idx that reads a
handful of buffers, whatever the table's size. A sequential scan or a full
index scan reads thousands.
"""

import json

import psycopg
import pytest

SESSIONS = 100_000

# The batch query reads the root and one leaf of the sweep index when nothing is
# stale. The bound leaves room for a deeper index and for the update's side.
MAX_BUFFERS = 20

SWEEP_INDEX = "sessions_active_sweep_key_id_idx"

SEED = """
insert into learning.sessions (user_id, status, started_at, last_event_at, ended_at)
select
    'user-' || (g / 10),
    case when g %% 100 = 0 then 'active' else 'completed' end,
    case when g %% 100 = 0 then now() - interval '20 minutes'
        else now() - interval '2 hours' - g * interval '1 second' end,
    case when g %% 100 = 0 then now() - interval '1 minute'
        else now() - interval '110 minutes' - g * interval '1 second' end,
    case when g %% 100 = 0 then null
        else now() - interval '110 minutes' - g * interval '1 second' end
from generate_series(1, %s) as g
"""


@pytest.fixture
def batch_plan(db: psycopg.Connection) -> dict:
    """Seed 100,000 sessions with none stale, run the sweep and return its batch plan."""
    db.execute(SEED, [SESSIONS])
    db.execute("analyze learning.sessions")

    plans: list[dict] = []

    def collect(notice: psycopg.errors.Diagnostic) -> None:
        text = notice.message_primary or ""
        if text.startswith("duration:") and "{" in text:
            plans.append(json.loads(text[text.index("{") :]))

    db.add_notice_handler(collect)
    for setting in (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_analyze = on",
        "auto_explain.log_buffers = on",
        "auto_explain.log_timing = off",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_format = json",
        "auto_explain.log_level = notice",
    ):
        db.execute(f"set {setting}")
    db.execute("load 'auto_explain'")
    try:
        db.execute("call learning.sweep_stale_sessions()")
    finally:
        db.execute("set auto_explain.log_min_duration = -1")
        db.remove_notice_handler(collect)

    batch = [
        p for p in plans if "for no key update of s skip locked" in p["Query Text"]
    ]
    assert len(batch) == 1, (
        f"one run with nothing stale must run the batch query once, not {len(batch)} times"
    )
    return batch[0]["Plan"]


def nodes(plan: dict):
    """Yield every node of an EXPLAIN (FORMAT JSON) plan, the root first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def test_sweep_plan_uses_sweep_key_index(batch_plan):
    scans = [
        node for node in nodes(batch_plan) if node.get("Relation Name") == "sessions"
    ]
    first_scan = scans[0]
    assert first_scan.get("Index Name") == SWEEP_INDEX, (
        f"the batch must find stale sessions through {SWEEP_INDEX}, not with "
        f"{first_scan['Node Type']} {first_scan.get('Index Name', '')}"
    )


def test_sweep_plan_has_no_sequential_scan(batch_plan):
    seq_scans = [
        node
        for node in nodes(batch_plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "sessions"
    ]
    assert seq_scans == [], "the batch query must not scan learning.sessions in full"


def test_sweep_plan_reads_few_buffers_when_nothing_stale(batch_plan):
    buffers = batch_plan["Shared Hit Blocks"] + batch_plan["Shared Read Blocks"]
    assert buffers <= MAX_BUFFERS, (
        f"with no stale session among {SESSIONS:,} the batch query read {buffers} "
        f"buffers, more than {MAX_BUFFERS}: its plan scans more than the stale range"
    )
