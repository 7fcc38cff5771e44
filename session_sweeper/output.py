"""Human output of status, config and verify: headings and aligned rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from session_sweeper.config import BY_COLUMN
from session_sweeper.status import Report


def json_default(value):
    """Convert what json cannot: datetimes to ISO 8601, durations to seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def _when(value: datetime | None) -> str:
    # pg_cron 1.4 runs schedules in UTC, so times print in UTC whatever TimeZone is.
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if value else "-"


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """Return rows as lines with each column padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _job_lines(heading: str, job: dict | None) -> list[str]:
    if job is None:
        return [heading, "  (none)"]
    rows = [
        ["name", job["name"]],
        ["schedule", job["schedule"]],
        ["active", "yes" if job["active"] else "no"],
        ["database", job["database"]],
    ]
    return [heading, *_table(rows)]


def _number(value) -> str:
    return "-" if value is None else str(value)


def _run_lines(runs: list[dict]) -> list[str]:
    if not runs:
        return ["Recent runs:", "  (none)"]
    rows = [
        [
            "runid",
            "status",
            "start (UTC)",
            "end (UTC)",
            "interrupted",
            "batches",
            "run by",
            "message",
        ]
    ]
    for run in runs:
        rows.append(
            [
                str(run["runid"]),
                run["status"],
                _when(run["start_time"]),
                _when(run["end_time"]),
                _number(run["interrupted"]),
                _number(run["batches"]),
                run["run_by"] or "-",
                (run["return_message"] or "").strip().replace("\n", " "),
            ]
        )
    return ["Recent runs:", *_table(rows, right={0, 4, 5})]


def settings_lines(settings: dict) -> list[str]:
    """Return the settings as a heading and rows named like config's options."""
    if not settings:
        return ["Settings:", "  (none)"]
    # config's options first, in the order config -h lists them, then the rest.
    columns = [c for c in BY_COLUMN if c in settings]
    columns += [c for c in settings if c not in BY_COLUMN]
    rows = []
    for column in columns:
        name = (
            BY_COLUMN[column].option
            if column in BY_COLUMN
            else column.replace("_", "-")
        )
        value = settings[column]
        rows.append([name, "-" if value is None else str(value)])
    return ["Settings:", *_table(rows)]


def report_lines(report: Report) -> list[str]:
    """Return the lines of status's human output."""
    lines = _job_lines("Job:", report.job)
    lines += _job_lines("Purge job:", report.purge_job)
    lines += _run_lines(report.last_runs)
    lines.append("Stale sessions:")
    if report.stale_sessions is None:
        lines.append("  (unknown)")
    else:
        oldest = report.oldest_stale_seconds
        suffix = f", the oldest stale for {oldest:.0f} s" if oldest is not None else ""
        lines.append(f"  {report.stale_sessions} waiting{suffix}")
    lines += settings_lines(report.settings)
    lines += [f"Note: {note}" for note in report.notes]
    if report.healthy:
        lines.append("Health: healthy")
    else:
        lines.append("Health: unhealthy")
        lines += [f"  - {problem}" for problem in report.problems]
    return lines
