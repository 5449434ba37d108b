"""Cluster-wide limits of one task: a rate limit (token bucket) and max_concurrency (leases).

Both are enforced in Redis by start.lua, so they hold across every worker process; this
module only parses and carries them. Pure: no Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

    @classmethod
    def of(cls, rate_limit: str | None, max_concurrency: int | None) -> Limits:
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be an integer >= 1, got {max_concurrency!r}")
        rate = RateLimit.parse(rate_limit) if rate_limit is not None else None
        return cls(max_concurrency or 0, rate.count if rate else 0, rate.period_s if rate else 0.0)

    @property
    def any(self) -> bool:
        return bool(self.max_concurrency or self.rate_count)


NO_LIMITS = Limits()
