"""Pause and resume a function: its jobs stay queued (submits are still accepted) and no worker
starts another of them until it is resumed; running ones finish.

Two keys say it (keys.py): the flag ``P:{fn}:paused`` (unix time of the pause), in the
function's slot, which start.lua and cron_fire.lua check in the same call that would start a job
or fire a cron; and the set ``P:{_paused}`` of paused names, which workers read once a second to
stop fetching them, and ``status`` and the metrics read in one command. They live in different
slots (Redis Cluster), so no one call writes both: the flag is set before the name is added and
cleared after it is removed, so a name in the set is always paused (a worker never skips a
function that runs), and a call cut between the two is repaired by running it again.
"""

from __future__ import annotations

from typing import cast

from upnext.store import keys
from upnext.store.registry import Connected


class Pauses:
    def __init__(self, queue: Connected):
        self.queue = queue

    def pause(self, function: str) -> bool:
        """Pause ``function``; False when it was paused already (its pause time is kept)."""
        prefix = self.queue.prefix
        paused = bool(self.queue.scripts.pause(keys=[keys.paused(prefix, function)], args=[]))
        self.queue.client.sadd(keys.paused_set(prefix), function)
        return paused

    def resume(self, function: str) -> bool:
        """Resume ``function``; False when it was not paused. A cron's instants that passed while
        it was paused then follow its missed_run_policy (resume.lua notes when it resumed)."""
        prefix = self.queue.prefix
        self.queue.client.srem(keys.paused_set(prefix), function)
        return bool(self.queue.scripts.resume(keys=[keys.paused(prefix, function), keys.cron(prefix, function)],
                                              args=[]))

    def is_paused(self, function: str) -> bool:
        return bool(self.queue.client.exists(keys.paused(self.queue.prefix, function)))

    def paused_at(self, function: str) -> float | None:
        """When ``function`` was paused (unix seconds, Redis's clock), or None when it runs."""
        at = cast(str | None, self.queue.client.get(keys.paused(self.queue.prefix, function)))
        return float(at) if at else None

    def paused(self) -> set[str]:
        """The names of the paused functions (one command: the registry set)."""
        return cast(set[str], self.queue.client.smembers(keys.paused_set(self.queue.prefix)))
