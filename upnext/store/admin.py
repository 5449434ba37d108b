"""Operator queries and commands for the CLI: status, list, failed, retry, purge.

The read side of the queue: it needs only the Redis URL and prefix, never the app, because
workers register their functions (name, kind, options) and heartbeats in Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from upnext.job import function_of
from upnext.store import keys
from upnext.store.limits import RateLimit
from upnext.store.queue import Queue


class Admin:
    def __init__(self, queue: Queue):
        self.queue = queue
        self.client = queue.client
        self.prefix = queue.prefix

    def workers(self) -> list[dict[str, Any]]:
        """Live workers (heartbeat not expired), with what they report; dead ids are pruned."""
        self.queue.registry.prune_workers()
        ids = sorted(cast(set[str], self.client.smembers(keys.worker_ids(self.prefix))))  # decode_responses
        records = self.client.mget([keys.worker(self.prefix, w) for w in ids]) if ids else []
        return [json.loads(r) for r in records if r is not None]

    def functions(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[str, str], self.client.hgetall(keys.functions(self.prefix)))
        return {name: json.loads(options) for name, options in sorted(raw.items())}

    def status(self) -> dict[str, Any]:
        workers = self.workers()
        functions = self.functions()
        served = {f for w in workers for f in w.get("functions", [])}
        pipe = self.queue.pipeline()
        for name in functions:
            stream = keys.stream(self.prefix, name)
            pipe.exists(stream)
            pipe.xlen(stream)
            pipe.zcard(keys.scheduled(self.prefix, name))
            pipe.zcard(keys.failed(self.prefix, name))
            pipe.zcard(keys.leases(self.prefix, name))
            pipe.hmget(keys.rate(self.prefix, name), "tokens", "ts")
            pipe.hget(keys.cron(self.prefix, name), "next_at")
        replies = pipe.execute()
        groups = self.groups(functions)
        rows = []
        for i, (name, options) in enumerate(functions.items()):
            exists, length, scheduled, failed, leases, bucket, next_at = replies[7 * i: 7 * i + 7]
            active = self._pending(name) if exists else 0
            row = {"function": name, "kind": options.get("kind", "task"), "queued": length - active,
                   "active": active, "scheduled": scheduled, "failed": failed,
                   "rate_limited": _rate_backlog(options.get("rate_limit"), bucket),
                   "leases": leases, "max_concurrency": options.get("max_concurrency"),
                   "next_run_at": float(next_at) if next_at else None,
                   "routing_group": options.get("routing_group")}
            row["note"] = _note(row, name in served, groups.get(row["routing_group"] or ""))
            rows.append(row)
        return {"workers": workers, "functions": rows, "groups": list(groups.values())}

    def groups(self, functions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Routing groups of the registered functions: the cap, the leases held now (lapsed ones
        not counted) and the group's functions."""
        found: dict[str, dict[str, Any]] = {}
        for name, options in functions.items():
            group = options.get("routing_group")
            if group:
                cap = options.get("group_max_concurrency")
                entry = found.setdefault(group, {"group": group, "max_concurrency": cap, "holders": 0, "functions": []})
                entry["functions"].append(name)
        if found:
            now_ms = self.queue.redis_time() * 1000
            pipe = self.queue.pipeline()
            for group in found:
                pipe.zcount(keys.group_leases(self.prefix, group), f"({now_ms}", "+inf")
            for entry, holders in zip(found.values(), pipe.execute()):
                entry["holders"] = holders
        return found

    def _pending(self, function: str) -> int:
        return cast(int, self.client.xpending(keys.stream(self.prefix, function), keys.GROUP)["pending"])

    def failed(self, function: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest failed jobs, newest first, with their error (entries past their TTL dropped)."""
        names = [function] if function else list(self.functions())
        jobs: list[dict[str, Any]] = []
        for name in names:
            index = keys.failed(self.prefix, name)
            for job_id in cast(list[str], self.client.zrevrange(index, 0, limit - 1)):
                record = self.queue.get(job_id)
                if record is None:
                    self.client.zrem(index, job_id)
                    continue
                jobs.append({"job_id": job_id, "function": name, "attempts": int(record.get("attempts") or 0),
                             "failed_at": float(record.get("completed_at") or 0), "error": record.get("error", ""),
                             "traceback": record.get("traceback", "")})
        return sorted(jobs, key=lambda j: j["failed_at"], reverse=True)[:limit]

    def retry(self, job_id: str) -> str:
        """Queue a failed or cancelled job again under its id (requeue.lua); returns 'queued' or why not."""
        function = function_of(job_id)
        reply = cast(list[str], self.queue.scripts.requeue(
            keys=[keys.job(self.prefix, job_id), keys.stream(self.prefix, function), keys.logs(self.prefix, job_id),
                  keys.failed(self.prefix, function), self.queue.dedup_key_of(job_id)],
            args=[job_id, self.queue.stream_maxlen, keys.job_prefix(self.prefix, function)]))
        return reply[0] if len(reply) == 1 else f"{reply[0]} ({reply[1]})"

    def purge(self, function: str, batch: int = 500) -> int:
        """Cancel every waiting (undelivered or scheduled) job of ``function``, a batch per atomic
        call (purge.lua); running jobs are left alone. Returns how many were cancelled."""
        cancelled = 0
        while True:
            done, seen = self.queue.scripts.purge(
                keys=[keys.stream(self.prefix, function), keys.scheduled(self.prefix, function)],
                args=[keys.tag(self.prefix, function), self.queue.job_ttl_s, batch])
            cancelled += int(done)
            if int(seen) < batch:
                return cancelled


def _rate_backlog(rate_limit: str | None, bucket: list[str | None]) -> int:
    """Jobs waiting for a rate-limit token: the tokens lent out beyond the bucket, net of refill."""
    tokens, ts = bucket
    if not rate_limit or tokens is None or ts is None:
        return 0
    rate = RateLimit.parse(rate_limit)
    refilled = float(tokens) + (time.time() - float(ts)) * rate.count / rate.period_s
    return max(0, -int(refilled // 1))


def _note(row: dict[str, Any], served: bool, group: dict[str, Any] | None = None) -> str:
    """Why work is not moving, in a few words (empty when nothing looks stuck)."""
    notes = []
    if (row["queued"] or row["scheduled"]) and not served:
        notes.append("no live worker runs it")
    if row["max_concurrency"] and row["leases"] >= row["max_concurrency"] and row["queued"]:
        notes.append(f"waiting for a concurrency lease ({row['leases']}/{row['max_concurrency']})")
    if group and group["max_concurrency"] and group["holders"] >= group["max_concurrency"] and row["queued"]:
        notes.append(f"waiting for a lease of group {group['group']} ({group['holders']}/{group['max_concurrency']})")
    if row["rate_limited"]:
        notes.append(f"rate limited ({row['rate_limited']} waiting for tokens)")
    if row["failed"]:
        notes.append(f"{row['failed']} failed (see `failed`)")
    return "; ".join(notes)
