"""Run the job's command by hand."""

from __future__ import annotations

from dataclasses import dataclass

from session_sweeper.dsn import Dsn
from session_sweeper.paths import read_sql


@dataclass
class SweepResult:
    interrupted: int
    batches: int


def sweep_command() -> str:
    """Return the command of the pg_cron job, as sql/sweep.sql stores it."""
    lines = [ln for ln in read_sql("sweep").splitlines() if not ln.startswith("--")]
    return "\n".join(lines).strip()


def run_sweep(dsn: Dsn) -> SweepResult:
    """Run the job's command in autocommit mode, as pg_cron does."""
    # The procedure commits after each batch, which a transaction block forbids.
    with dsn.connect(autocommit=True) as conn:
        interrupted, batches = conn.execute(sweep_command()).fetchone()
    return SweepResult(interrupted, batches)


def plural(count: int, noun: str) -> str:
    """Return '1 batch' or '3 batches', for the nouns this tool prints."""
    if count == 1:
        return f"1 {noun}"
    suffix = "es" if noun.endswith(("s", "ch")) else "s"
    return f"{count} {noun}{suffix}"
