"""Routing groups' shared leases (``group_max_concurrency``): one cluster-wide cap for every task
of a group, taken, given back and refreshed through group_lease.lua.

Redis Cluster allows one hash slot per script call, and a group's leases live under the group's
own hash tag, so they are never taken inside start.lua. The order, which cannot leak a lease:
1. take the group's leases first (for known deliveries: their members; before a fetch-and-start:
   placeholders, one per entry to read, so no more entries are read than leases were granted);
2. start.lua (the task's own max_concurrency lease, rate limit, fencing);
3. give back at once what did not start (refused, busy, deferred, stale, ...), and swap the
   placeholders for the members of the runs that started (one atomic call);
4. the keeper refreshes the members of running jobs; finish, retry and hand-back give them back.
A worker that dies anywhere in between leaves leases that lapse after ``lease_ms`` (the claim
timeout), as its max_concurrency leases do. Give-backs are best effort for the same reason.
A member names the stream entry, so a reclaimed entry takes over its dead run's lease instead of
counting twice (in the rare race where two workers reclaim one entry, the loser's give-back frees
the winner's lease early: one run over the cap for that job, never a leak).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis

from upnext.store import keys
from upnext.store.limits import Limits
from upnext.store.records import Delivery, by_function

if TYPE_CHECKING:
    from upnext.store.queue import Queue


def member(delivery: Delivery) -> str:
    """A run's lease: the job and its stream entry (a reclaimed entry keeps the lease of its dead run)."""
    return f"{delivery.job_id}@{delivery.entry_id}"


def grouped(limits: Mapping[str, Limits] | None) -> dict[str, Limits]:
    """The tasks among ``limits`` that a group cap applies to."""
    return {function: limit for function, limit in (limits or {}).items() if limit.grouped}


def _call(queue: Queue, client: Any, limit: Limits, lease_ms: int, give_back: Sequence[str] = (),
          take: Sequence[str] = (), cap: int | None = None) -> Any:
    return queue.scripts.group_lease(keys=[keys.group_leases(queue.prefix, limit.group)],
                                     args=[limit.group_max_concurrency if cap is None else cap, lease_ms,
                                           len(give_back), *give_back, *take],
                                     client=client)


def reserve(queue: Queue, counts: Mapping[str, int], limits: Mapping[str, Limits] | None,
            lease_ms: int) -> dict[str, list[str]]:
    """Placeholder leases for the entries a fetch-and-start is about to read, per grouped task
    (fewer than asked when the group is near its cap: read only that many)."""
    reserved: dict[str, list[str]] = {}
    for function, limit in grouped(limits).items():
        if counts.get(function, 0) > 0:
            batch = uuid.uuid4().hex[:12]
            wanted = [f"reserved:{batch}:{i}" for i in range(counts[function])]
            _, *held = _call(queue, queue.client, limit, lease_ms, take=wanted)
            reserved[function] = [m for m, ok in zip(wanted, held) if ok]
    return reserved


def swap(queue: Queue, reserved: Mapping[str, list[str]], limits: Mapping[str, Limits] | None,
         taken: Sequence[tuple[Delivery, list[Any]]], lease_ms: int) -> None:
    """Replace each task's placeholders by the leases of its runs that started, atomically (the
    placeholders are always at least as many). Best effort: placeholders left lapse."""
    caps = grouped(limits)
    for function, placeholders in reserved.items():
        if placeholders:
            started = [member(d) for d, reply in taken if d.function == function and reply[0] == "run"]
            try:
                _call(queue, queue.client, caps[function], lease_ms, give_back=placeholders, take=started)
            except redis.RedisError:
                pass  # the placeholders lapse after lease_ms, and the runs go on without a group lease


def take_for(queue: Queue, deliveries: Sequence[Delivery], limits: Mapping[str, Limits] | None,
             lease_ms: int) -> set[Delivery]:
    """Take the group leases of known deliveries (reclaimed, or read by a blocking fetch); returns
    those refused (their group is at its cap): they must not start."""
    caps = grouped(limits)
    refused: set[Delivery] = set()
    for function, group in by_function(d for d in deliveries if d.function in caps).items():
        _, *held = _call(queue, queue.client, caps[function], lease_ms, take=[member(d) for d in group])
        refused |= {d for d, ok in zip(group, held) if not ok}
    return refused


def _members_by_group(deliveries: Iterable[Delivery], limits: Mapping[str, Limits] | None
                      ) -> dict[str, tuple[Limits, list[str]]]:
    caps = grouped(limits)
    if not caps:
        return {}
    members: dict[str, list[str]] = defaultdict(list)
    for d in deliveries:
        if d.function in caps:
            members[caps[d.function].group].append(member(d))
    first = {limit.group: limit for limit in caps.values()}
    return {group: (first[group], names) for group, names in members.items()}


def give_back(queue: Queue, deliveries: Iterable[Delivery], limits: Mapping[str, Limits] | None) -> None:
    """Give back the group leases of runs that ended or never started. Best effort: a lease not
    given back lapses after lease_ms (nothing refreshes it once its job left the worker)."""
    by_group = _members_by_group(deliveries, limits)
    if not by_group:
        return
    try:
        pipe = queue.pipeline()
        for limit, names in by_group.values():
            _call(queue, pipe, limit, 0, give_back=names)
        pipe.execute()
    except redis.RedisError:
        pass


def refresh(queue: Queue, deliveries: Iterable[Delivery], limits: Mapping[str, Limits] | None,
            lease_ms: int) -> None:
    """Extend the group leases of running jobs (the keeper, with their stream entries). Only
    leases still held are extended (cap 0: none is granted): the keeper runs in its own thread,
    and a job that ended meanwhile has given its lease back for good."""
    by_group = _members_by_group(deliveries, limits)
    if by_group:
        pipe = queue.pipeline()
        for limit, names in by_group.values():
            _call(queue, pipe, limit, lease_ms, take=names, cap=0)
        pipe.execute()


def free(queue: Queue, limits: Mapping[str, Limits] | None) -> dict[str, int]:
    """Free leases per group of ``limits`` (lapsed ones cleared first)."""
    caps = {limit.group: limit for limit in grouped(limits).values()}
    if not caps:
        return {}
    pipe = queue.pipeline()
    for limit in caps.values():
        _call(queue, pipe, limit, 0)
    return {group: int(reply[0]) for group, reply in zip(caps, pipe.execute())}
