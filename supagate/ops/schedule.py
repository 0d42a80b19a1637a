"""pg_cron schedules: parsed as pg_cron reads them, checked against the target's version,
and previewed in UTC and a local time zone.

pg_cron's own parser (vixie cron's) accepts things that do not mean what they say: a
sixth field, reversed ranges (`5-1`), steps wider than the field (`*/61`), trailing junk
(`1#2`). Those are refused here, so whatever this module accepts pg_cron 1.4.2 accepts too
(tests/ops/test_schedule.py runs both). `N seconds` needs pg_cron 1.5 and `$` (last day
of the month) 1.6: Supabase runs 1.6, Debian's local build is 1.4.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {3: {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          4: {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
LAST_DAY = 32  # `$` in the day-of-month field


@dataclass(frozen=True)
class Schedule:
    text: str
    seconds: int | None  # an `N seconds` schedule
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    day_star: bool = True
    weekday_star: bool = True

    def matches(self, at: datetime) -> bool:
        if at.minute not in self.minutes or at.hour not in self.hours or at.month not in self.months:
            return False
        last = (at.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        day = at.day in self.days or (LAST_DAY in self.days and at.day == last.day)
        weekday = (at.isoweekday() % 7) in self.weekdays
        # cron's rule: when both day fields are restricted, either one matching is enough.
        if self.day_star or self.weekday_star:
            return day and weekday
        return day or weekday


def parse(text: str, version: tuple[int, ...] = (1, 6)) -> Schedule:
    """The schedule, or ValueError saying what is wrong and which pg_cron it needs."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a schedule is five cron fields (minute hour day month weekday), e.g. '30 3 * * 0'")
    spec = " ".join(text.split()).lower()
    seconds = re.fullmatch(r"(\d+) seconds?", spec)
    if seconds:
        if version < (1, 5):
            raise ValueError(f"{text!r}: second schedules need pg_cron 1.5 or later (the target runs "
                             f"{'.'.join(map(str, version))})")
        if not 1 <= int(seconds.group(1)) <= 59:
            raise ValueError(f"{text!r}: second schedules run every 1 to 59 seconds")
        return Schedule(text, int(seconds.group(1)))
    if spec == "@reboot":
        raise ValueError("@reboot runs only when the scheduler starts; give the job a real schedule")
    spec = _MACROS.get(spec, spec)
    parts = spec.split(" ")
    if len(parts) != 5:
        raise ValueError(f"{text!r} has {len(parts)} fields; pg_cron takes five: minute hour day month weekday")
    sets = []
    for index, (part, (name, low, high)) in enumerate(zip(parts, _FIELDS)):
        sets.append(_field(part, index, name, low, high, version, text))
    weekdays = frozenset(d % 7 for d in sets[4])
    return Schedule(text, None, frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]),
                    weekdays, day_star=parts[2] == "*", weekday_star=parts[4] == "*")


def _field(part: str, index: int, name: str, low: int, high: int, version: tuple[int, ...], text: str) -> set[int]:
    values: set[int] = set()
    for item in part.split(","):
        if index == 2 and item == "$":
            if version < (1, 6):
                raise ValueError(f"{text!r}: '$' (last day of the month) needs pg_cron 1.6 or later")
            values.add(LAST_DAY)
            continue
        match = re.fullmatch(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?", item)
        if not match:
            raise ValueError(f"{text!r}: {name} field {item!r} is not a number, range, list or step")
        body, step = match.group(1), int(match.group(2) or 1)
        if body == "*":
            start, end = low, high
        else:
            start, _, finish = body.partition("-")
            start = _value(start, index, name, low, high, text)
            end = _value(finish, index, name, low, high, text) if finish else (high if match.group(2) else start)
        if start > end:
            raise ValueError(f"{text!r}: {name} range {body} runs backwards")
        if step < 1 or step > high - low + 1:
            raise ValueError(f"{text!r}: {name} step /{step} is outside 1..{high - low + 1}")
        values.update(range(start, end + 1, step))
    return values


def _value(token: str, index: int, name: str, low: int, high: int, text: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token in _NAMES.get(index, {}):
        number = _NAMES[index][token]
    else:
        raise ValueError(f"{text!r}: {token!r} is not a {name}")
    if not low <= number <= high:
        raise ValueError(f"{text!r}: {name} {number} is outside {low}-{high}")
    return number


def next_runs(schedule: Schedule, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` run times (UTC) strictly after `after`."""
    after = after.astimezone(timezone.utc)
    if schedule.seconds:
        return [after + timedelta(seconds=schedule.seconds * (i + 1)) for i in range(count)]
    runs: list[datetime] = []
    at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = at + timedelta(days=366 * 5)  # `0 0 29 2 1` can take years; `31 2` never comes
    while len(runs) < count and at < limit:
        if schedule.matches(at):
            runs.append(at)
        at += timedelta(minutes=1) if at.hour in schedule.hours and at.month in schedule.months else \
            timedelta(minutes=60 - at.minute)
    return runs


def preview(text: str, display_timezone: str, after: datetime | None = None, version: tuple[int, ...] = (1, 6)) -> str:
    """'Sun 2026-11-29 03:30 UTC (04:30 Europe/Berlin), ...': schedules run in UTC, always."""
    from zoneinfo import ZoneInfo

    schedule = parse(text, version)
    runs = next_runs(schedule, after or datetime.now(timezone.utc))
    if not runs:
        return "never (no date matches)"
    zone = ZoneInfo(display_timezone) if display_timezone else None
    shown = []
    for run in runs:
        local = f" ({run.astimezone(zone):%H:%M} {display_timezone})" if zone else ""
        shown.append(f"{run:%a %Y-%m-%d %H:%M} UTC{local}")
    return ", ".join(shown)
