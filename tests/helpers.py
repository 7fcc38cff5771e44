"""Facts about the migrations in migrations/ that tests share.

Tests derive the list from the files, so adding a migration changes no test
that means "every migration" or "down to 0002".
"""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# yoyo applies the forward scripts in the order of their ids, the file stems.
ALL_MIGRATIONS = sorted(
    path.stem
    for path in MIGRATIONS_DIR.glob("*.sql")
    if not path.name.endswith(".rollback.sql")
)


def migration_id(prefix: str) -> str:
    """Return the id of the migration whose id starts with prefix, such as '0005'."""
    matches = [m for m in ALL_MIGRATIONS if m.startswith(f"{prefix}_")]
    if len(matches) != 1:
        raise LookupError(f"expected one migration {prefix}_*, found {matches!r}")
    return matches[0]


def migrations_before(prefix: str) -> list[str]:
    """Return the migrations applied before the one named by prefix, in order."""
    return ALL_MIGRATIONS[: ALL_MIGRATIONS.index(migration_id(prefix))]


def migrations_from(prefix: str) -> list[str]:
    """Return the migration named by prefix and every later one, in order."""
    return ALL_MIGRATIONS[ALL_MIGRATIONS.index(migration_id(prefix)) :]


def count_down_to(prefix: str) -> int:
    """Return the rollback count that leaves the migration named by prefix the latest."""
    return len(migrations_from(prefix)) - 1
