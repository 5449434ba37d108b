"""The cron loop: the worker leading a cron fires each of its due instants exactly once.

Moved out of loops.py (which spawns it) so the cron logic has a module of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from upnext.job import new_job_id

if TYPE_CHECKING:
    from upnext.runtime.serving import Runtime

CRON_LEADER_TTL_MS = 3000
CRON_MAX_SLEEP_S = 1.0


def cron_tick(rt: Runtime) -> float:
    """For each cron this worker leads, fire every due instant (exactly once: cron_fire.lua
    compares and sets the cursor) and re-seed a cursor that is missing or has a stale schedule.
    A paused cron is left alone: its cursor stays (cron_fire.lua refuses to move it too), so on
    resume the instants it missed follow its missed_run_policy."""
    led = rt.queue.registry.lead(rt.worker_id, list(rt.worker.crons), CRON_LEADER_TTL_MS)
    now = rt.queue.redis_time()  # cursors are instants: compared with Redis's clock, not ours
    next_due = now + CRON_MAX_SLEEP_S
    for name, (cursor, schedule, resumed_at) in zip(led, rt.queue.registry.cron_cursors(led)):
        if name in rt.paused:
            continue
        cron = rt.worker.crons[name]
        runs: list[float]
        if not cursor or schedule != cron.schedule.expression:
            runs, next_at = [], cron.schedule.next_after(now)
        elif float(cursor) <= now:
            runs, next_at = cron.plan(float(cursor), now, resumed_at)
        else:
            next_due = min(next_due, float(cursor))
            continue
        jobs = [(new_job_id(name), instant) for instant in runs]
        if rt.queue.registry.cron_fire(name, cursor, next_at, cron.schedule.expression, jobs):
            rt.log.info("cron_fired", function=name, job_ids=[j for j, _ in jobs], next_at=next_at)
        next_due = min(next_due, next_at)
    return min(max(next_due - now, 0.005), CRON_MAX_SLEEP_S)
