"""Cron schedules (croniter) and missed-run policy arithmetic. Pure: no Redis, no clocks.

A 5-field expression is minute-first; a 6-field one has seconds first. Times are UTC epoch
seconds. ``plan`` decides which instants run once the clock has passed the cursor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from croniter import croniter

MISSED_AFTER_S = 5.0  # an instant this late counts as missed (downtime), not merely due
MAX_INSTANTS = 1000


class MissedRunPolicy(enum.StrEnum):
    """What a cron does about instants that passed while no worker ran it."""

    LATEST_ONLY = "latest_only"  # run the most recent missed instant once
    CATCH_UP = "catch_up"        # run every missed instant, in order (within max_catch_up_seconds)
    SKIP = "skip"                # run none of them


@dataclass(frozen=True)
class Schedule:
    expression: str

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(self.expression, second_at_beginning=True):
            raise ValueError(f"invalid cron expression {self.expression!r}: expected 5 fields "
                             "(minute hour day month weekday) or 6 with seconds first")

    def next_after(self, instant: float) -> float:
        """The first scheduled instant strictly after ``instant``."""
        return croniter(self.expression, instant, second_at_beginning=True).get_next(float)

    def due(self, cursor: float, now: float) -> list[float]:
        """Scheduled instants in [cursor, now], oldest first (cursor itself is an instant)."""
        instants: list[float] = []
        instant = cursor
        while instant <= now and len(instants) < MAX_INSTANTS:
            instants.append(instant)
            instant = self.next_after(instant)
        return instants


@dataclass(frozen=True)
class CronDef:
    """How one cron task is scheduled."""

    schedule: Schedule
    policy: MissedRunPolicy
    max_catch_up_s: float | None = None

    def plan(self, cursor: float, now: float) -> tuple[list[float], float]:
        return plan(self.schedule, cursor, now, self.policy, self.max_catch_up_s)


def plan(schedule: Schedule, cursor: float, now: float, policy: MissedRunPolicy,
         max_catch_up_s: float | None) -> tuple[list[float], float]:
    """Which instants to run now, and the new cursor (the first instant after ``now``)."""
    due = schedule.due(cursor, now)
    if not due:
        return [], cursor
    on_time = [i for i in due if now - i < MISSED_AFTER_S]
    missed = [i for i in due if now - i >= MISSED_AFTER_S]
    if policy is MissedRunPolicy.CATCH_UP:
        runs = [i for i in missed if max_catch_up_s is None or now - i <= max_catch_up_s] + on_time
    elif policy is MissedRunPolicy.LATEST_ONLY:
        runs = on_time or missed[-1:]
    else:
        runs = on_time
    return runs, schedule.next_after(now)
