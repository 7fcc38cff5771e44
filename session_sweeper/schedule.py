"""Fire times of a pg_cron schedule, for the health rules of status.

pg_cron 1.4 evaluates schedules in GMT and ignores cron.timezone, so every
time here is UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (lowest, highest) value of each field: minute, hour, day of month, month, weekday.
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


class ScheduleError(ValueError):
    """A schedule that this module cannot read."""


def _parse_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = int(first_text), int(last_text)
        else:
            first = int(span)
            last = high if step_text else first
        if step < 1 or first < low or last > high or first > last:
            raise ValueError(part)
        values.update(range(first, last + 1, step))
    return values


@dataclass
class Schedule:
    """A parsed five-field cron schedule."""

    text: str
    minutes: list[int]
    hours: list[int]
    days: set[int]
    months: set[int]
    weekdays: set[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Schedule:
        fields = MACROS.get(text.strip(), text).split()
        if len(fields) != 5:
            raise ScheduleError(f"schedule {text!r} does not have five fields")
        try:
            parsed = [_parse_field(f, *RANGES[i]) for i, f in enumerate(fields)]
        except ValueError:
            raise ScheduleError(f"schedule {text!r} is not a cron schedule") from None
        weekdays = {0 if day == 7 else day for day in parsed[4]}
        return cls(
            text=text,
            minutes=sorted(parsed[0]),
            hours=sorted(parsed[1]),
            days=parsed[2],
            months=parsed[3],
            weekdays=weekdays,
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )

    def _runs_on(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        day_match = day.day in self.days
        weekday_match = (day.isoweekday() % 7) in self.weekdays
        # cron's rule: when both day fields are restricted, either one matching is enough.
        if not self.any_day and not self.any_weekday:
            return day_match or weekday_match
        return day_match and weekday_match

    def fire_times(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Yield every fire time t with start <= t < end, in order."""
        day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            if self._runs_on(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        moment = day.replace(hour=hour, minute=minute)
                        if start <= moment < end:
                            yield moment
            day += timedelta(days=1)

    def next_after(self, moment: datetime) -> datetime | None:
        """Return the first fire time after moment, within a year and a day."""
        after = moment + timedelta(microseconds=1)
        return next(self.fire_times(after, after + timedelta(days=367)), None)

    def interval(self) -> timedelta:
        """Return the longest gap between two fire times over the next year."""
        start = datetime(2025, 1, 1, tzinfo=UTC)
        every_day = self.any_day and self.any_weekday and len(self.months) == 12
        # A schedule that fires on every day repeats daily, so two days show its gaps.
        span = timedelta(days=2 if every_day else 400)
        times = list(self.fire_times(start, start + span))
        if len(times) < 2:
            raise ScheduleError(f"schedule {self.text!r} fires less than once a year")
        return max(later - earlier for earlier, later in pairwise(times))
