"""The wheel carries migrations/ and sql/, which cli.py looks for next to itself."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(source: Path, out: Path) -> subprocess.CompletedProcess:
    # pip leaves temporary wheels in TMPDIR, so they go under the test's own folder.
    scratch = out.parent / "tmp"
    scratch.mkdir(exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=False,
        capture_output=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        text=True,
        timeout=120,
    )


def _copy_tree(target: Path) -> Path:
    for name in ("pyproject.toml", "README.md", "cli.py"):
        shutil.copy(ROOT / name, target / name)
    for folder in ("session_sweeper", "migrations", "sql"):
        shutil.copytree(
            ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def test_wheel_contains_migrations_and_sql(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    _copy_tree(source)
    result = _build_wheel(source, tmp_path / "dist")
    assert result.returncode == 0, f"wheel build failed: {result.stderr}"

    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"migrations/{p.name}" for p in (ROOT / "migrations").glob("*.sql")}
    expected |= {f"sql/{p.name}" for p in (ROOT / "sql").glob("*.sql")}
    assert "cli.py" in names, "the wheel lacks cli.py"
    assert expected <= names, f"the wheel lacks {sorted(expected - names)}"


@pytest.mark.parametrize("folder", ["migrations", "sql"])
def test_wheel_build_fails_without_folder(tmp_path, folder):
    source = tmp_path / "src"
    source.mkdir()
    _copy_tree(source)
    shutil.rmtree(source / folder)
    result = _build_wheel(source, tmp_path / "dist")
    assert result.returncode != 0, f"a wheel without {folder}/ was built"
