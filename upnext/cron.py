"""Cron schedules (croniter) and missed-run policy arithmetic. Pure: no Redis, no clocks.

A 5-field expression is minute-first; a 6-field one has seconds first. Times are UTC epoch
seconds. ``plan`` decides which instants run once the clock has passed the cursor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from croniter import croniter

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

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(self.expression, second_at_beginning=True):
            raise ValueError(f"invalid cron expression {self.expression!r}: expected 5 fields "
                             "(minute hour day month weekday) or 6 with seconds first")

    def next_after(self, instant: float) -> float:
        """The first scheduled instant strictly after ``instant``."""
        return croniter(self.expression, instant, second_at_beginning=True).get_next(float)

    def due(self, cursor: float, now: float) -> list[float]:
        """The latest ``MAX_INSTANTS`` scheduled instants in [cursor, now], oldest first.

        Walked back from ``now``: after a long outage the instants that matter (the on-time
        ones, the latest missed one, a catch-up window) are the newest, never the oldest.
        """
        walker = croniter(self.expression, self.next_after(now), second_at_beginning=True)
        instants: list[float] = []
        while len(instants) < MAX_INSTANTS:
            instant = walker.get_prev(float)
            if instant < cursor:
                break
            instants.append(instant)
        return instants[::-1]


@dataclass(frozen=True)
class CronDef:
    """How one cron task is scheduled."""

    schedule: Schedule
    policy: MissedRunPolicy
    max_catch_up_s: float | None = None

    def plan(self, cursor: float, now: float, resumed_at: float = 0.0) -> tuple[list[float], float]:
        return plan(self.schedule, cursor, now, self.policy, self.max_catch_up_s, resumed_at)


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
