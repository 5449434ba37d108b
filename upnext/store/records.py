"""The values that pass through the queue: a NewJob to write, a Delivery handed to a worker
(its fencing token), and the Completion its run writes back. Pure: no Redis, no gevent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from upnext.job import function_of, printable

SUSPECT_DELIVERIES = 3


class _OfTask(Protocol):
    @property
    def function(self) -> str: ...


T = TypeVar("T", bound=_OfTask)


class Delivery(NamedTuple):
    """One stream entry handed to this worker: the fencing token is (entry_id, consumer). A named
    tuple, as Completion is: a worker makes one of each per job, and a tuple is the cheapest
    immutable record to make."""

    function: str
    entry_id: str
    job_id: str
    delivered: int = 1  # times this entry has been delivered, this time included

    @property
    def suspect(self) -> bool:
        return self.delivered >= SUSPECT_DELIVERIES


class Completion(NamedTuple):
    """What to write when a run ends: a terminal status, or a retry after ``delay_s``. Its fields,
    in this order, are finish.lua's per-job array (settling.call_finish sends a batch as JSON as
    it is): a new field goes at the end, and the script reads it by its place."""

    delivery: Delivery
    status: str  # complete | failed | cancelled | retry
    result: str = ""
    error: str = ""
    traceback: str = ""
    failure_reason: str = ""
    delay_s: float = 0.0
    idem_key: str = ""  # the job's idempotency key, released when it ends
    root_id: str = ""  # its workflow's root ('' or its own id: none), for the tree index
    run_s: float | None = None  # how long the run took (None: not measured, e.g. its worker died)

    @property
    def function(self) -> str:
        return self.delivery.function

    def failed_instead(self, why: str) -> Completion:
        """A failure to write in place of this completion, which Redis refused."""
        return Completion(self.delivery, "failed", error=printable(why), failure_reason="exception",
                          idem_key=self.idem_key, root_id=self.root_id, run_s=self.run_s)


ON_FULL = ("reject", "block")


@dataclass(frozen=True)
class QueueBound:
    """A task's back-pressure: at most ``max_queued`` jobs waiting (0: no cap); a submit beyond it
    raises QueueFull ("reject") or polls for room up to ``timeout_s`` ("block")."""

    max_queued: int = 0
    on_full: str = "reject"
    timeout_s: float = 30.0


NO_BOUND = QueueBound()


@dataclass
class NewJob:
    """A job about to be written by enqueue."""

    job_id: str
    args: str
    kwargs: str
    delay_s: float = 0.0
    key: str = ""
    parent_id: str = ""
    root_id: str = ""
    expires_s: float = 0.0  # seconds from enqueue until it expires unstarted (0: never)
    bound: QueueBound | None = None  # None: the task's, as its workers registered it
    priority: str = "normal"  # high | normal | low (keys.LEVELS): which of its task's streams it waits in
    notify: bool = False  # its end is pushed onto its notify list (keys.notify): its submitter waits on it

    @property
    def function(self) -> str:
        return function_of(self.job_id)


def by_function(items: Iterable[T]) -> dict[str, list[T]]:
    """``items`` grouped by the task they belong to, in order (one Lua call per task's slot)."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[item.function].append(item)
    return groups

