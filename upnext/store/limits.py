"""Cluster-wide limits of one task: a rate limit (token bucket), max_concurrency (leases) and
its routing group's group_max_concurrency (leases shared by every task of the group).

All are enforced in Redis (the task's by start.lua; the group's by group_lease.lua, in a call of
its own: the group's keys live in another Cluster slot), so they hold across every worker
process; this module only parses and carries them. Pure: no Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from upnext.job import check_function_name

UNITS_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
           "d": 86400, "day": 86400}
RATE_FORMS = "'10/s', '10/second', '10/m', '10/min', '10/minute', '5/10s', '100/h', '1000/d'"
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|h|days?|d)\s*$")


@dataclass(frozen=True)
class RateLimit:
    """``count`` starts per ``period_s`` seconds, with a burst of up to ``count``."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = _RATE.match(text.lower()) if isinstance(text, str) else None
        if not match or int(match.group(1)) < 1 or match.group(2) in ("0", "00"):
            raise ValueError(f"invalid rate_limit {text!r}: use COUNT/PERIOD such as {RATE_FORMS}")
        return cls(int(match.group(1)), float(int(match.group(2) or 1) * UNITS_S[_singular(match.group(3))]))


def _singular(unit: str) -> str:
    return unit[:-1] if len(unit) > 1 and unit.endswith("s") else unit


@dataclass(frozen=True)
class Limits:
    """What start.lua enforces for one task (zero means no limit)."""

    max_concurrency: int = 0
    rate_count: int = 0
    rate_period_s: float = 0.0
    group: str = ""  # routing_group ("": none)
    group_max_concurrency: int = 0

    @classmethod
    def of(cls, rate_limit: str | None, max_concurrency: int | None, routing_group: str | None = None,
           group_max_concurrency: int | None = None) -> Limits:
        for name, cap in (("max_concurrency", max_concurrency), ("group_max_concurrency", group_max_concurrency)):
            if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {cap!r}")
        if group_max_concurrency is not None and routing_group is None:
            raise ValueError("group_max_concurrency needs a routing_group (the group whose tasks share the cap)")
        if routing_group is not None:
            if not isinstance(routing_group, str):
                raise ValueError(f"routing_group must be a string, got {routing_group!r}")
            try:
                check_function_name(routing_group)
            except ValueError:
                raise ValueError(f"routing_group {routing_group!r} must be non-empty and contain none of "
                                 "'{', '}', ':' or spaces") from None
        rate = RateLimit.parse(rate_limit) if rate_limit is not None else None
        return cls(max_concurrency or 0, rate.count if rate else 0, rate.period_s if rate else 0.0,
                   routing_group or "", group_max_concurrency or 0)

    @property
    def any(self) -> bool:
        return bool(self.max_concurrency or self.rate_count or self.group_max_concurrency)

    @property
    def grouped(self) -> bool:
        """True when a group cap applies (group_lease.lua is called for this task's jobs)."""
        return bool(self.group and self.group_max_concurrency)


NO_LIMITS = Limits()
