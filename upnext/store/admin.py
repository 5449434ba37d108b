"""Operator queries and commands for the CLI: list, failed, retry, purge (status reads overview.py).

The read side of the queue: it needs only the Redis URL and prefix, never the app, because
workers register their functions (name, kind, options) and heartbeats in Redis.
"""

from __future__ import annotations

import json
from typing import Any, cast

from upnext.job import function_of
from upnext.store import keys
from upnext.store.queue import Queue


class Admin:
    def __init__(self, queue: Queue):
        self.queue = queue
        self.client = queue.client
        self.prefix = queue.prefix

    def functions(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[str, str], self.client.hgetall(keys.functions(self.prefix)))
        return {name: json.loads(options) for name, options in sorted(raw.items())}

    def is_known(self, function: str) -> bool:
        """Registered by a worker, or holding jobs (a submitter may queue before any worker runs it)."""
        if self.client.hexists(keys.functions(self.prefix), function):
            return True
        return bool(self.client.exists(*keys.streams(self.prefix, function), keys.scheduled(self.prefix, function)))

    def failed(self, function: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest failed jobs, newest first, with their error (entries past their TTL dropped).
        Two pipelined round trips whatever the number of functions and failed jobs."""
        names = [function] if function else list(self.functions())
        pipe = self.queue.pipeline()
        for name in names:
            pipe.zrevrange(keys.failed(self.prefix, name), 0, limit - 1, withscores=True)
        newest = sorted(((at, job_id, name) for name, found in zip(names, pipe.execute()) for job_id, at in found),
                        reverse=True)[:limit]
        pipe = self.queue.pipeline()
        for _, job_id, _ in newest:
            pipe.hmget(keys.job(self.prefix, job_id), "attempts", "completed_at", "error", "traceback", "status")
        jobs, gone = [], self.queue.pipeline()
        for (_, job_id, name), (attempts, at, error, traceback, status) in zip(newest, pipe.execute()):
            if status is None:
                gone.zrem(keys.failed(self.prefix, name), job_id)
                continue
            jobs.append({"job_id": job_id, "function": name, "attempts": int(attempts or 0),
                         "failed_at": float(at or 0), "error": error or "", "traceback": traceback or ""})
        gone.execute()
        return jobs

    def retry(self, job_id: str) -> str:
        """Queue a failed or cancelled job again under its id (requeue.lua); returns 'queued' or why not."""
        function = function_of(job_id)
        reply = cast(list[str], self.queue.scripts.requeue(
            keys=[keys.job(self.prefix, job_id), keys.stream(self.prefix, function), keys.logs(self.prefix, job_id),
                  keys.failed(self.prefix, function), self.queue.dedup_key_of(job_id),
                  keys.attempts(self.prefix, job_id), keys.ended(self.prefix, function)],
            args=[job_id, self.queue.stream_maxlen, keys.job_prefix(self.prefix, function)]))
        return reply[0] if len(reply) == 1 else f"{reply[0]} ({reply[1]})"

    def purge(self, function: str, batch: int = 500) -> int:
        """Cancel every waiting (undelivered or scheduled) job of ``function``, a batch per atomic
        call (purge.lua); running jobs are left alone. Returns how many were cancelled."""
        cancelled = 0
        while True:
            done, seen = self.queue.scripts.purge(
                keys=[keys.stream(self.prefix, function), keys.scheduled(self.prefix, function),
                      *self.queue.stats_keys(function)],
                args=[keys.tag(self.prefix, function), self.queue.job_ttl_s, batch])
            cancelled += int(done)
            if int(seen) < batch:
                return cancelled

