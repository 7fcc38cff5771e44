"""The benchmark runs end to end in its smallest mode.

This checks that every variant ran and every table was printed. It asserts
no timing, because the smoke mode measures too little to mean anything.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_output() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, f"python -m bench --smoke failed:\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize(
    "heading",
    ["## Settings", "## Write path", "## Per-user call", "## Sweep", "## Targets"],
)
def test_bench_smoke_prints_section(smoke_output, heading):
    assert heading in smoke_output, f"the benchmark output has no {heading!r} section"


@pytest.mark.parametrize("variant", ["floor", "app-side", "product"])
@pytest.mark.parametrize("events", [1, 20, 200])
def test_bench_smoke_runs_write_variant(smoke_output, variant, events):
    rows = [
        line
        for line in smoke_output.splitlines()
        if line.startswith("|") and f"| {variant} " in line
    ]
    sizes = [line.split("|")[1].strip() for line in rows]
    assert str(events) in sizes, (
        f"the write path printed no row for {variant} with {events} events per statement"
    )


@pytest.mark.parametrize("stale", ["0", "10", "100", "1,000"])
def test_bench_smoke_runs_sweep_level(smoke_output, stale):
    sweep = smoke_output.split("## Sweep", 1)[-1].split("## Targets", 1)[0]
    levels = [
        line.split("|")[2].strip()
        for line in sweep.splitlines()
        if line.startswith("|")
    ]
    assert levels.count(stale) == 2, (
        f"the sweep must run {stale} stale sessions at both table sizes"
    )


@pytest.mark.parametrize(
    "setting", ["server_version", "fsync", "shared_buffers", "synchronous_commit"]
)
def test_bench_smoke_prints_setting(smoke_output, setting):
    assert f"| {setting} " in smoke_output, (
        f"the settings table does not show {setting}"
    )
