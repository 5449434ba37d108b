"""Run-time crons: schedules added and removed while workers run (``worker.add_cron``, the CLI's
``cron add|remove|list``), kept in Redis so every serving worker sees them within a tick or two.

The definitions live in one hash (``P:{_crons}``: name -> JSON). Each one's cursor and lock are
under its function's hash tag (``P:{fn}:cron:<name>``, ``P:{fn}:cron_lock:<name>``), so
cron_fire.lua stays in one slot; the cron loop calls it ``<function>:<name>`` (keys.cron).
Adding writes a fresh cursor hash holding the function (cron_fire.lua fires a run-time cron only
while it exists); removing deletes the definition, the cursor and the lock.
"""

from __future__ import annotations

import json
from typing import Any, cast

from upnext.store import keys
from upnext.store.registry import Connected


class RuntimeCrons:
    def __init__(self, queue: Connected):
        self.queue = queue
        self.client = queue.client
        self.prefix = queue.prefix

    def add(self, name: str, definition: dict[str, Any]) -> bool:
        """Store ``definition`` (its ``function`` runs) as run-time cron ``name``; a cron of that
        name is replaced, starting from a fresh cursor. True when the name was new."""
        cron_id = f"{definition['function']}:{name}"
        old = self.get(name)
        pipe = self.queue.pipeline()
        if old is not None:
            self._forget(pipe, f"{old['function']}:{name}")
        self._forget(pipe, cron_id)
        pipe.hset(keys.cron(self.prefix, cron_id), "function", definition["function"])
        pipe.hset(keys.runtime_crons(self.prefix), name, json.dumps(definition, sort_keys=True))
        pipe.execute()
        return old is None

    def remove(self, name: str) -> dict[str, Any] | None:
        """Remove run-time cron ``name``; its definition, or None when there was none."""
        old = self.get(name)
        if old is None:
            return None
        pipe = self.queue.pipeline()
        pipe.hdel(keys.runtime_crons(self.prefix), name)
        self._forget(pipe, f"{old['function']}:{name}")
        pipe.execute()
        return old

    def get(self, name: str) -> dict[str, Any] | None:
        raw = cast(str | None, self.client.hget(keys.runtime_crons(self.prefix), name))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    def all(self) -> dict[str, str]:
        """Name -> JSON definition of every run-time cron (parsed by the caller, which says what is bad)."""
        return cast(dict[str, str], self.client.hgetall(keys.runtime_crons(self.prefix)))

    def _forget(self, pipe: Any, cron_id: str) -> None:
        pipe.delete(keys.cron(self.prefix, cron_id))
        pipe.delete(keys.cron_lock(self.prefix, cron_id))
