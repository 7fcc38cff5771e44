"""Folders that sit next to cli.py, in a checkout and in an installed wheel."""

from pathlib import Path

# This package is installed beside cli.py, so their parent folder is the same.
ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "migrations"
SQL_DIR = ROOT / "sql"


def read_sql(name: str) -> str:
    """Return the text of sql/NAME.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()
