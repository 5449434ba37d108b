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
from typing import TYPE_CHECKING, Any, cast

from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.registry import Connected

if TYPE_CHECKING:
    from upnext.store.queue import Queue


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


def listing(queue: Queue) -> list[dict[str, Any]]:
    """Every cron, as ``cron list`` and the dashboard show it: declared ones (registered by the
    workers) and run-time ones, each with its cursor (next run, last job, instants skipped)."""
    declared = [name for name, options in Admin(queue).functions().items() if options.get("kind") == "cron"]
    runtime = {name: json.loads(raw) for name, raw in sorted(RuntimeCrons(queue).all().items())}
    ids = declared + [f"{d['function']}:{name}" for name, d in runtime.items()]
    rows = []
    for cron_id, state in zip(ids, queue.registry.cron_states(ids)):
        function, _, name = cron_id.partition(":")
        spec = runtime[name] if name else {}
        rows.append({"cron": name or function, "source": "run-time" if name else "declared", "function": function,
                     "schedule": state.schedule or " ".join(filter(None, [spec.get("schedule"), spec.get("tz")])),
                     "next_at": float(state.next_at) if state.next_at else None, "last_job": state.last_job,
                     "skipped": state.skipped, "last_skipped_at": state.last_skipped_at or None,
                     **(_call(spec) if name else {})})
    return rows


def _call(spec: dict[str, Any]) -> dict[str, Any]:
    """A run-time cron's call and options, as ``cron add`` took them."""
    return {"args": json.loads(spec["args"]), "kwargs": json.loads(spec["kwargs"]), "tz": spec["tz"],
            "missed_run_policy": spec["missed_run_policy"], "max_catch_up_seconds": spec["max_catch_up_seconds"],
            "overlap": spec["overlap"]}
