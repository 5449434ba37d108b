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
    return {name: summed(levels) for name, levels in level_summaries(queue, names).items()}


def level_summaries(queue: Queue, names: Sequence[str]) -> dict[str, dict[str, tuple[int, Any]]]:
    """Per function and high/low level: (entries not read yet, its XPENDING summary, or the
    error of a stream that does not exist)."""
    out: dict[str, dict[str, tuple[int, Any]]] = {name: {} for name in names}
    for (name, level), queued, summary in _counts(queue, [(n, level) for n in names for level in OTHER_LEVELS]):
        out[name][level] = (queued, summary)
    return out


def summed(levels: dict[str, tuple[int, Any]]) -> tuple[int, int]:
    return (sum(queued for queued, _ in levels.values()),
            sum(_pending(summary) for _, summary in levels.values()))


def unread(queue: Queue, functions: Sequence[str]) -> list[str]:
    """The tasks with entries no worker has read yet, in any priority's stream."""
    counts = _counts(queue, [(f, level) for f in functions for level in keys.LEVELS])
    found = {name for (name, _), queued, _ in counts if queued > 0}
    return [f for f in functions if f in found]


def _counts(queue: Queue, streams: list[tuple[str, str]]) -> list[tuple[tuple[str, str], int, Any]]:
    """(entries not read yet, XPENDING summary) of each (task, level) stream; 0 and an error for a
    missing one (acked entries are deleted, so XLEN - pending counts the unread)."""
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
        out.append((stream, _int(length) - _pending(summary), summary))
    return out


def _pending(summary: Any) -> int:
    return 0 if isinstance(summary, Exception) else int(summary["pending"])


def _int(reply: Any) -> int:
    return 0 if isinstance(reply, Exception) else int(reply)
