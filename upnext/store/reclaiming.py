"""Reclaiming: taking over the stream entries of workers that died (idle past claim_timeout_ms),
of every priority's stream of a task, highest first, with the poison-suspect rationing."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, cast

import redis

from upnext.store import keys
from upnext.store.connection import ClaimReply, PendingEntry
from upnext.store.records import SUSPECT_DELIVERIES, Delivery

if TYPE_CHECKING:
    from upnext.store.queue import Queue


def reclaim(queue: Queue, consumer: str, function: str, min_idle_ms: int, count: int, suspects: int = 1,
            running: Collection[str] = ()) -> list[Delivery]:
    """Take over entries idle past ``min_idle_ms`` (their worker died), of each priority's
    stream, highest first. A *suspect* (its worker died under it twice already: perhaps it is
    what kills them) is taken at most ``suspects`` at a time, so innocent jobs stop dying beside
    a poison one and reaching max_deliveries. Entries of ours that we are ``running`` are never
    taken; ours that we are not (read by a start that Redis then refused) are."""
    got: list[Delivery] = []
    for level in keys.LEVELS:
        if len(got) >= count:
            break
        taken = _reclaim_level(queue, consumer, function, level, min_idle_ms, count - len(got), suspects, running)
        suspects -= sum(1 for d in taken if d.suspect)
        got += taken
    return got


def _reclaim_level(queue: Queue, consumer: str, function: str, level: str, min_idle_ms: int, count: int,
                   suspects: int, running: Collection[str]) -> list[Delivery]:
    stream = keys.stream(queue.prefix, function, level)
    try:
        pending = cast(list[PendingEntry],
                       queue.client.xpending_range(stream, keys.GROUP, "-", "+", 2 * count + 10, idle=min_idle_ms))
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        queue.ensure_groups([function])
        return []
    delivered: dict[str, int] = {}
    for entry in pending:
        if entry["consumer"] == consumer and keys.entry_token(level, entry["message_id"]) in running:
            continue  # our own run (kept fresh by us, unless the hub was blocked): never a second one
        times = entry["times_delivered"] + 1  # counting the claim about to be made
        if times >= SUSPECT_DELIVERIES:
            if suspects <= 0:
                continue
            suspects -= 1
        delivered[entry["message_id"]] = times
        if len(delivered) >= count:
            break
    if not delivered:
        return []
    claimed = cast(ClaimReply, queue.client.xclaim(stream, keys.GROUP, consumer, min_idle_ms, list(delivered)))
    return [Delivery(function, keys.entry_token(level, entry_id), (fields or {}).get("id", ""),
                     delivered.get(entry_id, 1))
            for entry_id, fields in claimed]
