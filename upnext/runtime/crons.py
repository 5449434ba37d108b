"""The cron loop: the worker leading a cron fires each of its due instants exactly once.

Crons are the app's declared ones (``@worker.cron``, known by their function's name) and the
run-time ones in Redis (store/crons.py, known as ``<function>:<name>``), read again every tick
so an added or removed schedule takes effect within a tick or two. A worker leads only the
run-time crons of tasks it serves.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from upnext.cron import CronDef
from upnext.errors import ConfigError
from upnext.job import new_job_id
from upnext.store.crons import RuntimeCrons
from upnext.store.registry import CronState

if TYPE_CHECKING:
    from upnext.runtime.serving import Runtime

CRON_LEADER_TTL_MS = 3000
CRON_MAX_SLEEP_S = 1.0


def cron_tick(rt: Runtime) -> float:
    """For each cron this worker leads, fire every due instant (exactly once: cron_fire.lua
    compares and sets the cursor) and re-seed a cursor that is missing or has a stale schedule.
    A paused cron is left alone: its cursor stays (cron_fire.lua refuses to move it too), so on
    resume the instants it missed follow its missed_run_policy."""
    crons = {**rt.worker.crons, **_runtime_crons(rt)}
    if not crons:
        return CRON_MAX_SLEEP_S
    led = rt.queue.registry.lead(rt.worker_id, list(crons), CRON_LEADER_TTL_MS)
    now = rt.queue.redis_time()  # cursors are instants: compared with Redis's clock, not ours
    next_due = now + CRON_MAX_SLEEP_S
    for cron_id, state in zip(led, rt.queue.registry.cron_states(led)):
        cron = crons[cron_id]
        if cron.function in rt.paused:
            continue
        runs: list[float]
        if not state.next_at or state.schedule != cron.schedule.spec:
            runs, next_at = [], cron.schedule.next_after(now)
        elif float(state.next_at) <= now:
            runs, next_at = cron.plan(float(state.next_at), now, state.resumed_at)
        else:
            next_due = min(next_due, float(state.next_at))
            continue
        _fire(rt, cron_id, cron, state, runs, next_at)
        next_due = min(next_due, next_at)
    return min(max(next_due - now, 0.005), CRON_MAX_SLEEP_S)


def _fire(rt: Runtime, cron_id: str, cron: CronDef, state: CronState, runs: list[float], next_at: float) -> None:
    """Enqueue ``runs`` and move the cursor; log what ran and, with overlap=False, what was skipped."""
    jobs = [(new_job_id(cron.function), instant) for instant in runs]
    fired = rt.queue.registry.fire(cron_id, state, next_at, cron.schedule.spec, jobs, (cron.args, cron.kwargs),
                                   cron.overlap)
    if fired is None:
        return
    name = cron_id.partition(":")[2] or cron_id
    skipped = set(fired.skipped)
    started = [j for j, instant in jobs if instant not in skipped]
    if started or not runs:  # a run, or a cursor seeded: an instant that was only skipped is logged below
        rt.log.info("cron_fired", cron=name, function=cron.function, job_ids=started, next_at=next_at)
    if fired.skipped:
        rt.log.info("cron_instants_skipped", cron=name, function=cron.function, instants=fired.skipped,
                    running_job_id=fired.waited_on, reason="overlap=False and the previous run has not ended")


def _runtime_crons(rt: Runtime) -> dict[str, CronDef]:
    """The run-time crons of the tasks this worker serves, by cron id. A definition that does not
    parse is logged once and left out (only upnext writes them; this is a hand-edited one)."""
    found: dict[str, CronDef] = {}
    for name, raw in RuntimeCrons(rt.queue).all().items():
        try:
            cron = _parse(raw)
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            if (name, raw) not in _BAD:
                _BAD.add((name, raw))
                rt.log.error("cron_definition_invalid", cron=name, error=f"{type(exc).__name__}: {exc}")
            continue
        if cron.function in rt.tasks:
            found[f"{cron.function}:{name}"] = cron
    return found


@functools.lru_cache(maxsize=1024)
def _parse(raw: str) -> CronDef:
    """A stored definition, parsed once while it stays the same (read every tick)."""
    return CronDef.from_record(json.loads(raw))


_BAD: set[tuple[str, str]] = set()  # (name, definition) already logged as invalid
