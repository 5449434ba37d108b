"""Events: named fan-out. Each handler is a task of its own (own stream, retries, failures);
``send`` enqueues one job per handler registered anywhere in the cluster.

Handlers register in Redis when their worker starts, so a web process that never imported
them still reaches every one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from upnext.future import Future
from upnext.job import dumps, encode_call
from upnext.task import TaskHandle, build_job, check_key

if TYPE_CHECKING:
    from upnext.worker import Worker


class Event:
    """``worker.event(name)``: decorate handlers with ``@event.on``, publish with ``send``
    (its own ``self`` and ``key`` are positional-only: the event's data may use any name)."""

    def __init__(self, worker: Worker, name: str):
        if not isinstance(name, str) or not name or any(ch in name for ch in "{} "):
            raise ValueError(f"event name {name!r} must be a non-empty string without braces or spaces")
        self.worker = worker
        self.name = name
        self.handlers: list[HandlerHandle] = []

    def __repr__(self) -> str:
        return f"<event {self.name} handlers={[h.name for h in self.handlers]}>"

    def on(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a handler: ``@event.on`` or ``@event.on(retries=2, timeout=...)``."""
        def register(func: Callable[..., Any]) -> HandlerHandle:
            handle = self.worker._register(func, options, HandlerHandle, "event")
            handle.event = self
            self.handlers.append(handle)
            return handle
        return register(fn) if fn is not None else register

    def send(self, /, **data: Any) -> list[Future]:
        """One job per handler, each with its own retries and failures. Returns their Futures."""
        return self._send("", data)

    def send_idempotent(self, key: str, /, **data: Any) -> list[Future]:
        """Send at most once per ``key`` while the jobs it made are live (dedup per handler)."""
        return self._send(check_key(key), data)

    send_sync = send  # upstream's names for its blocking variants; every call here blocks
    send_idempotent_sync = send_idempotent

    def _send(self, key: str, data: dict[str, Any]) -> list[Future]:
        for handler in self.handlers:
            encode_call(handler.definition.fn, handler.name, (), data)
        kwargs_json = _encode(self.name, data)
        queue = self.worker.queue
        names = sorted(set(queue.registry.handlers(self.name)) | {h.name for h in self.handlers})
        bounds = {h.name: h.definition.bound for h in self.handlers}  # others: as their workers registered them
        ids = queue.enqueue_many([build_job(name, "[]", kwargs_json, key=key, bound=bounds.get(name))
                                  for name in names])
        return [Future(job_id, queue) for job_id in ids]


class HandlerHandle(TaskHandle[..., Any]):
    """What ``@event.on`` returns: a task whose ``send`` publishes its whole event."""

    event: Event

    def send(self, /, **data: Any) -> list[Future]:
        return self.event.send(**data)

    def send_idempotent(self, key: str, /, **data: Any) -> list[Future]:
        return self.event.send_idempotent(key, **data)

    send_sync = send  # upstream's names (see Event)
    send_idempotent_sync = send_idempotent


def _encode(event: str, data: dict[str, Any]) -> str:
    for name, value in data.items():
        try:
            dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"event {event!r}: argument {name!r} is not JSON-serializable: {exc}") from None
    return dumps(data)
