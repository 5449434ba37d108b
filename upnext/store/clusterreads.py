"""Blocking reads of several tasks at once on Redis Cluster, where one XREADGROUP cannot name
streams of different hash slots: one blocking XREADGROUP per task, each on a connection of its
own to its slot's node, run side by side (threads; greenlets under gevent's monkey-patching).

Nothing read is ever dropped: once one read returns entries, the others are cut short with
CLIENT UNBLOCK (a blocked read then replies as if it had timed out, or with the entries Redis gave
it first: Redis does one or the other) and every reply is collected before ``read`` returns. So
every entry that reaches this consumer's PEL is in the list returned, to be started or handed
back by the caller, never left for the reclaimer.

A Redis whose ACL refuses CLIENT ID or CLIENT UNBLOCK gets no blocking reads: ``Queue.fetch``
then polls the streams as before (``supported`` is False)."""

from __future__ import annotations

import queue as queues
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import redis

from upnext.store import keys
from upnext.store.connection import ReadReply, deliveries_of

if TYPE_CHECKING:
    from upnext.store.queue import Queue

UNBLOCK_RETRY_S = 0.002  # a read not yet blocked when it was unblocked blocks after: unblock it again


class Reader:
    """One task's blocking reads: a connection of its own to the node of the task's slot."""

    def __init__(self, cluster: Any, function: str, stream: str):
        self.node = cluster.get_node_from_key(stream)
        node_client = cluster.get_redis_connection(self.node)
        self.client = redis.Redis(connection_pool=node_client.connection_pool, single_connection_client=True)
        self.unblocker: Any = node_client
        self.function = function
        self.id = int(self.client.client_id())

    def close(self) -> None:
        """Drop the connection: after an error its socket may still carry a reply."""
        if self.client.connection is not None:
            self.client.connection.disconnect()  # type: ignore[no-untyped-call]
        self.client.close()


class BlockingReads:
    """The blocking reads of one Queue's fetch loop (one caller at a time: each reader's
    connection serves one read at once)."""

    def __init__(self, queue: Queue):
        self.queue = queue
        self.supported = True
        self._readers: dict[str, Reader] = {}

    def read(self, consumer: str, functions: Sequence[str], count: int, block_ms: int) -> list[ReadReply | Exception]:
        """XREADGROUP ``count`` new entries of each task, blocking up to ``block_ms``; returns as
        soon as one task had entries, with every reply (or error) of every task."""
        readers = [self._reader(f) for f in functions]
        replies: queues.Queue[tuple[Reader, ReadReply | Exception]] = queues.Queue()
        for reader in readers:
            threading.Thread(target=self._read_one, args=(reader, consumer, count, block_ms, replies),
                             daemon=True).start()
        out: list[ReadReply | Exception] = []
        waiting, cutting = set(readers), False
        try:
            while waiting:
                try:
                    reader, reply = replies.get(timeout=UNBLOCK_RETRY_S if cutting else None)
                except queues.Empty:
                    self._unblock(waiting)
                    continue
                self._collect(reader, reply, waiting, out)
                if reply and not cutting:  # entries (or an error): the caller gets them now, not after the block
                    cutting = True
                    self._unblock(waiting)
        except BaseException:
            self._hand_back(consumer, waiting, replies, out)
            raise
        return out

    def _collect(self, reader: Reader, reply: ReadReply | Exception, waiting: set[Reader],
                 out: list[ReadReply | Exception]) -> None:
        waiting.discard(reader)
        if isinstance(reply, Exception):
            self._forget(reader)
        out.append(reply)

    def _hand_back(self, consumer: str, waiting: set[Reader],
                   replies: queues.Queue[tuple[Reader, ReadReply | Exception]], out: list[ReadReply | Exception]
                   ) -> None:
        """The caller was interrupted (killed at the end of a drain, say): end the reads still
        blocked (one left behind would take the next job into our PEL, where nobody starts it) and
        hand back to their streams the entries all of them read."""
        while waiting:
            self._unblock(waiting)
            try:
                reader, reply = replies.get(timeout=UNBLOCK_RETRY_S)
            except queues.Empty:
                continue
            self._collect(reader, reply, waiting, out)
        read = [d for reply in out if not isinstance(reply, Exception) for d in deliveries_of(reply)]
        if read:
            self.queue.release(consumer, read, started=False)

    def _read_one(self, reader: Reader, consumer: str, count: int, block_ms: int,
                  replies: queues.Queue[tuple[Reader, ReadReply | Exception]]) -> None:
        streams: dict[Any, Any] = {s: ">" for s in keys.streams(self.queue.prefix, reader.function)}
        try:
            reply = cast(ReadReply, reader.client.xreadgroup(keys.GROUP, consumer, streams, count=count,
                                                            block=block_ms))
        except Exception as exc:  # handed to the caller with the others' replies, never lost in a thread
            replies.put((reader, exc))
            return
        replies.put((reader, reply or []))

    def _reader(self, function: str) -> Reader:
        reader = self._readers.get(function)
        if reader is None:
            try:
                reader = Reader(self.queue.client, function, keys.stream(self.queue.prefix, function))
            except redis.exceptions.NoPermissionError:
                self.supported = False
                raise
            self._readers[function] = reader
        return reader

    def _unblock(self, readers: set[Reader]) -> None:
        for reader in readers:
            try:
                reader.unblocker.client_unblock(reader.id)
            except redis.exceptions.NoPermissionError:
                self.supported = False  # this read waits out its block; later fetches poll instead

    def _forget(self, reader: Reader) -> None:
        """A read that failed: its next one gets a new connection, to the node that owns the slot
        by then (after MOVED, the cluster client's slot map is refreshed first)."""
        self._readers.pop(reader.function, None)
        reader.close()
