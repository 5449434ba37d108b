"""Cron schedules (croniter) and missed-run policy arithmetic. Pure: no Redis, no clocks.

A 5-field expression is minute-first; a 6-field one has seconds first. Times are UTC epoch
seconds; the fields are read in the schedule's time zone (``tz``, default UTC). ``plan`` decides
which instants run once the clock has passed the cursor.

Daylight saving time (what cron users expect, as Vixie cron does): a local time that does not
exist on the spring-forward day runs once, at the first instant after the gap (a daily 02:30 in
Europe/Berlin runs at 03:00 that day; croniter's own choice); a local time that occurs twice on
the fall-back day runs once, at its first occurrence, when the hour field is fixed (a daily 02:30
does not run again an hour later). Schedules whose hour field is a wildcard (``*``, ``*/2``) run
by elapsed time: an hourly or every-15-minutes cron keeps its pace through both changes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from upnext.errors import ConfigError

MISSED_AFTER_S = 5.0  # an instant this late counts as missed (downtime), not merely due
MAX_INSTANTS = 1000  # the most recent instants one plan considers: bounds the work after a long outage


class MissedRunPolicy(enum.StrEnum):
    """What a cron does about instants that passed while no worker ran it, or while it was paused."""

    LATEST_ONLY = "latest_only"  # run the most recent missed instant once
    CATCH_UP = "catch_up"        # run missed instants in order (within max_catch_up_seconds; the latest 1,000)
    SKIP = "skip"                # run none of them


@dataclass(frozen=True)
class Schedule:
    expression: str
    tz: str | None = None  # an IANA zone name ("Europe/Berlin"); None: UTC
    zone: tzinfo | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(self.expression, second_at_beginning=True):
            raise ValueError(f"invalid cron expression {self.expression!r}: expected 5 fields "
                             "(minute hour day month weekday) or 6 with seconds first")
        if self.tz is not None:
            object.__setattr__(self, "zone", _zone(self.tz))

    @property
    def spec(self) -> str:
        """The expression and its zone, as stored with a cursor: a changed one re-seeds it."""
        return self.expression if self.tz is None else f"{self.expression} {self.tz}"

    def next_after(self, instant: float) -> float:
        """The first scheduled instant strictly after ``instant``."""
        walker = self._walker(instant)
        while True:
            found = walker.get_next(float)
            if not self._repeated(found):
                return found

    def due(self, cursor: float, now: float) -> list[float]:
        """The latest ``MAX_INSTANTS`` scheduled instants in [cursor, now], oldest first.

        Walked back from ``now``: after a long outage the instants that matter (the on-time
        ones, the latest missed one, a catch-up window) are the newest, never the oldest.
        """
        walker = self._walker(self.next_after(now))
        instants: list[float] = []
        while len(instants) < MAX_INSTANTS:
            instant = walker.get_prev(float)
            if instant < cursor:
                break
            if not self._repeated(instant) and instant not in instants[-1:]:
                instants.append(instant)
        return instants[::-1]

    def _walker(self, instant: float) -> croniter:
        start = instant if self.zone is None else datetime.fromtimestamp(instant, self.zone)
        return croniter(self.expression, start, second_at_beginning=True)

    def _repeated(self, instant: float) -> bool:
        """A fixed-hour instant on the second pass of a fall-back hour: it already ran on the first."""
        if self.zone is None or self._hour_field().startswith("*"):
            return False
        return datetime.fromtimestamp(instant, self.zone).fold == 1

    def _hour_field(self) -> str:
        fields = self.expression.split()
        return fields[2] if len(fields) == 6 else fields[1]


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Berlin'): "
                          f"{type(exc).__name__}") from None


@dataclass(frozen=True)
class CronDef:
    """How one cron is scheduled, and the call each of its instants makes."""

    schedule: Schedule
    policy: MissedRunPolicy
    max_catch_up_s: float | None = None
    function: str = ""  # the task each instant runs (a declared cron's own name)
    overlap: bool = True  # False: an instant is skipped while the cron's previous run has not ended
    args: str = "[]"  # JSON, as the job record holds them
    kwargs: str = "{}"

    def plan(self, cursor: float, now: float, resumed_at: float = 0.0) -> tuple[list[float], float]:
        return plan(self.schedule, cursor, now, self.policy, self.max_catch_up_s, resumed_at)

    def record(self) -> dict[str, Any]:
        """The definition of a run-time cron, as stored in Redis (store/crons.py)."""
        return {"function": self.function, "schedule": self.schedule.expression, "tz": self.schedule.tz,
                "args": self.args, "kwargs": self.kwargs, "missed_run_policy": self.policy.value,
                "max_catch_up_seconds": self.max_catch_up_s, "overlap": self.overlap}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CronDef:
        """The inverse of ``record``; raises ValueError, KeyError or ConfigError for a bad one."""
        return cls(Schedule(record["schedule"], record["tz"]), MissedRunPolicy(record["missed_run_policy"]),
                   record["max_catch_up_seconds"], record["function"], bool(record["overlap"]),
                   record["args"], record["kwargs"])


def plan(schedule: Schedule, cursor: float, now: float, policy: MissedRunPolicy,
         max_catch_up_s: float | None, resumed_at: float = 0.0) -> tuple[list[float], float]:
    """Which instants to run now, and the new cursor (the first instant after ``now``).

    An instant before ``resumed_at`` (when the cron was last resumed from a pause) passed while
    it was paused: it counts as missed however recent, so the policy decides (SKIP runs none)."""
    if now < cursor:
        return [], cursor
    if policy is MissedRunPolicy.CATCH_UP and max_catch_up_s is not None:
        cursor = max(cursor, now - max(max_catch_up_s, MISSED_AFTER_S))  # nothing older can run
    due = schedule.due(cursor, now)
    on_time = [i for i in due if now - i < MISSED_AFTER_S and i >= resumed_at]
    missed = [i for i in due if now - i >= MISSED_AFTER_S or i < resumed_at]
    if policy is MissedRunPolicy.CATCH_UP:
        runs = [i for i in missed if max_catch_up_s is None or now - i <= max_catch_up_s] + on_time
    elif policy is MissedRunPolicy.LATEST_ONLY:
        runs = on_time or missed[-1:]
    else:
        runs = on_time
    return runs, schedule.next_after(now)
