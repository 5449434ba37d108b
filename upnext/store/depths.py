"""Counting the entries of a task's high and low priority streams, for the views (``status``,
``/metrics``: their other counts read the normal stream) and for a worker's fetch loop (which
tasks have entries no worker has read yet). Read-only; one pipelined round trip per call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from upnext.store import keys

if TYPE_CHECKING:
    from upnext.store.queue import Queue

OTHER_LEVELS = tuple(level for level in keys.LEVELS if level != keys.NORMAL)


def priority_depths(queue: Queue, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per function, (queued, active) in its high and low priority streams together."""
    counts = _counts(queue, [(name, level) for name in names for level in OTHER_LEVELS])
    depths: dict[str, tuple[int, int]] = {}
    for (name, _), (queued, active) in counts:
        before = depths.get(name, (0, 0))
        depths[name] = (before[0] + queued, before[1] + active)
    return {name: depths.get(name, (0, 0)) for name in names}


def unread(queue: Queue, functions: Sequence[str]) -> list[str]:
    """The tasks with entries no worker has read yet, in any priority's stream."""
    counts = _counts(queue, [(f, level) for f in functions for level in keys.LEVELS])
    found = {name for (name, _), (queued, _) in counts if queued > 0}
    return [f for f in functions if f in found]


def _counts(queue: Queue, streams: list[tuple[str, str]]) -> list[tuple[tuple[str, str], tuple[int, int]]]:
    """(entries not read yet, entries pending) of each (task, level) stream; 0 for a missing one
    (acked entries are deleted, so XLEN - pending counts the unread)."""
    if not streams:
        return []
    pipe = queue.pipeline()
    for name, level in streams:
        pipe.xlen(keys.stream(queue.prefix, name, level))
        pipe.xpending(keys.stream(queue.prefix, name, level), keys.GROUP)
    replies = iter(pipe.execute(raise_on_error=False))
    out = []
    for stream in streams:
        length, summary = next(replies), next(replies)
        pending = 0 if isinstance(summary, Exception) else int(summary["pending"])
        out.append((stream, (_int(length) - pending, pending)))
    return out


def _int(reply: Any) -> int:
    return 0 if isinstance(reply, Exception) else int(reply)
