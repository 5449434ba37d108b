"""What ``status`` shows: every worker (live, or dead with its last record until it is pruned),
per function what is queued, running, held by dead workers, scheduled and failed and whether it
is paused, the notes that explain a stall, and each routing group with its cap and the leases
held. Read-only, and bounded: four pipelined round trips at most (a fifth when there are
routing groups; one counts the high and low priority streams), whose size grows with the number
of functions, workers and groups, never with the number of jobs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, cast

from upnext import config
from upnext.store import keys
from upnext.store.depths import level_summaries, summed
from upnext.store.limits import RateLimit
from upnext.store.queue import Queue

PER_FUNCTION = 8  # commands per function in the counting pipeline (_count)
DEFAULT_CLAIM_TIMEOUT_MS: int = config.SETTINGS["claim_timeout_ms"].default


class Overview:
    def __init__(self, queue: Queue):
        self.queue = queue
        self.prefix = queue.prefix

    def read(self) -> dict[str, Any]:
        """``{"workers": [...], "functions": [...], "notes": [...]}``, JSON-ready."""
        ids, seen, functions, paused = self._registrations()
        everyone = sorted(ids | set(seen))
        records, counts = self._count(everyone, list(functions))
        workers = [row for w, live in zip(everyone, records) if (row := _worker_row(w, live, seen.get(w)))]
        live = [w for w in workers if w["alive"]]
        others = level_summaries(self.queue, list(functions))  # the high and low priority streams
        held = self._held(functions, counts, {w["id"] for w in live}, others)
        groups = self._groups(functions)
        levels = {name: summed(summaries) for name, summaries in others.items()}
        rows = [_function_row(name, options, counts[name], held.get(name, {}), live, groups, name in paused,
                              levels[name]) for name, options in functions.items()]
        notes = [*_busy(rows, live), *_delayed(rows, counts), *_reclaims(rows, held, live)]
        workers.sort(key=lambda w: (not w["alive"], w["id"]))
        return {"workers": workers, "functions": rows, "notes": notes, "groups": list(groups.values())}

    def _groups(self, functions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each routing group of the registered functions: its cap, its functions and the leases
        held now (lapsed ones not counted; Redis's clock decides, as it does for the leases)."""
        found: dict[str, dict[str, Any]] = {}
        for name, options in functions.items():
            if group := options.get("routing_group"):
                cap = options.get("group_max_concurrency")
                entry = found.setdefault(group, {"group": group, "max_concurrency": cap, "holders": 0, "functions": []})
                entry["functions"].append(name)
        if found:
            pipe = self.queue.pipeline()
            pipe.time()
            for group in found:  # a group holds at most its cap of live leases, plus lapsed ones
                pipe.zrange(keys.group_leases(self.prefix, group), 0, -1, withscores=True)
            (seconds, micros), *leases = pipe.execute()
            now_ms = seconds * 1000 + micros / 1000
            for entry, held in zip(found.values(), leases):
                entry["holders"] = sum(1 for _, expires_ms in held if expires_ms > now_ms)
        return found

    def _registrations(self) -> tuple[set[str], dict[str, str], dict[str, dict[str, Any]], set[str]]:
        """Worker ids, last-seen records, registered functions and the paused ones (store/pause.py)."""
        pipe = self.queue.pipeline()
        pipe.smembers(keys.worker_ids(self.prefix))
        pipe.hgetall(keys.last_seen(self.prefix))
        pipe.hgetall(keys.functions(self.prefix))
        pipe.smembers(keys.paused_set(self.prefix))
        ids, seen, functions, paused = pipe.execute()
        return (cast(set[str], ids), cast(dict[str, str], seen),
                {name: json.loads(options) for name, options in sorted(cast(dict[str, str], functions).items())},
                cast(set[str], paused))

    def _count(self, workers: list[str], functions: list[str]) -> tuple[list[str | None], dict[str, list[Any]]]:
        """The workers' live records and, per function, its PER_FUNCTION counts (one round trip)."""
        pipe = self.queue.pipeline()
        if workers:
            pipe.mget([keys.worker(self.prefix, w) for w in workers])
        for name in functions:
            stream, scheduled = keys.stream(self.prefix, name), keys.scheduled(self.prefix, name)
            pipe.xlen(stream)
            pipe.zcard(scheduled)
            pipe.zrange(scheduled, 0, 0, withscores=True)
            pipe.zcard(keys.failed(self.prefix, name))
            pipe.zcard(keys.leases(self.prefix, name))
            pipe.hmget(keys.rate(self.prefix, name), "tokens", "ts")
            pipe.hget(keys.cron(self.prefix, name), "next_at")
            pipe.xpending(stream, keys.GROUP)  # last: it alone may fail (no stream or group yet: nothing pending)
        replies = pipe.execute(raise_on_error=False)
        first = 1 if workers else 0
        for i, reply in enumerate(replies):
            if isinstance(reply, Exception) and (i < first or (i - first) % PER_FUNCTION != PER_FUNCTION - 1):
                raise reply
        records = cast(list[str | None], replies[0]) if workers else []
        return records, {name: replies[first + PER_FUNCTION * i: first + PER_FUNCTION * (i + 1)]
                         for i, name in enumerate(functions)}

    def _held(self, functions: dict[str, Any], counts: dict[str, list[Any]], live: set[str],
              others: dict[str, dict[str, tuple[int, Any]]]) -> dict[str, dict[str, tuple[int, int]]]:
        """Per function, the consumers that are no live worker and hold pending entries, in any
        priority's stream: consumer -> (entries, idle ms of its first entry, the most idle of its
        streams'). One round trip, only when there are any."""
        summaries = {name: [(keys.NORMAL, counts[name][-1]), *((lv, s) for lv, (_, s) in others[name].items())]
                     for name in functions}
        dead = [(name, level, c["name"], int(c["pending"])) for name in functions for level, summary in summaries[name]
                for c in _consumers(summary) if c["name"] not in live]
        if not dead:
            return {}
        pipe = self.queue.pipeline()
        for name, level, consumer, _ in dead:
            pipe.xpending_range(keys.stream(self.prefix, name, level), keys.GROUP, "-", "+", 1, consumername=consumer)
        held: dict[str, dict[str, tuple[int, int]]] = {}
        for (name, _, consumer, count), first in zip(dead, pipe.execute(raise_on_error=False)):
            before = held.setdefault(name, {}).get(consumer, (0, 0))
            held[name][consumer] = (before[0] + count, max(before[1], _idle_ms(first)))
        return held


def _consumers(summary: Any) -> list[dict[str, Any]]:
    return [] if isinstance(summary, Exception) else cast(list[dict[str, Any]], summary["consumers"])


def _idle_ms(first: Any) -> int:
    return 0 if isinstance(first, Exception) or not first else int(first[0]["time_since_delivered"])


def _worker_row(worker_id: str, live: str | None, seen: str | None) -> dict[str, Any] | None:
    """A live worker's record as it reports it; a dead one's last record without a load (it runs
    nothing any more). None for a record that is not one of ours."""
    try:
        record = json.loads(live or seen or "null")
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    alive = live is not None
    row = {k: v for k, v in record.items() if k != "active"}
    row.update(id=worker_id, alive=alive, inflight=record.get("active", 0) if alive else None)
    return row


def _function_row(name: str, options: dict[str, Any], counts: list[Any], held: dict[str, tuple[int, int]],
                  live: list[dict[str, Any]], groups: dict[str, dict[str, Any]], paused: bool,
                  levels: tuple[int, int]) -> dict[str, Any]:
    length, scheduled, _, failed, leases, bucket, next_at, summary = counts
    pending = 0 if isinstance(summary, Exception) else int(summary["pending"])
    awaiting = sum(count for count, _ in held.values())
    row = {"function": name, "kind": options.get("kind", "task"), "queued": length - pending + levels[0],
           "active": pending - awaiting + levels[1], "awaiting_reclaim": awaiting, "scheduled": scheduled,
           "failed": failed,
           "rate_limited": _rate_backlog(options.get("rate_limit"), bucket),
           "leases": leases, "max_concurrency": options.get("max_concurrency"),
           "next_run_at": float(next_at) if next_at else None, "routing_group": options.get("routing_group"),
           "paused": paused}
    row["note"] = _note(row, any(name in w.get("functions", ()) for w in live), groups.get(row["routing_group"] or ""))
    return row


def _busy(rows: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Jobs are queued and every live worker that runs them has no free slot."""
    waiting = {r["function"]: r["queued"] for r in rows if r["queued"] > 0 and not r["paused"]}
    serving = [w for w in live if waiting.keys() & set(w.get("functions", ()))]
    if not serving or any(w.get("concurrency", 0) > (w["inflight"] or 0) for w in serving):
        return []
    return [{"kind": "all_slots_busy", "workers": len(serving), "slots": sum(w.get("concurrency", 0) for w in serving),
             "queued": sum(waiting.values())}]


def _delayed(rows: list[dict[str, Any]], counts: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Per function with delayed or retrying jobs, how many and when the first is due."""
    notes = []
    for row in rows:
        first = counts[row["function"]][2]
        if row["scheduled"] and first:
            notes.append({"kind": "delayed", "function": row["function"], "count": row["scheduled"],
                          "next_at": float(first[0][1])})
    return notes


def _reclaims(rows: list[dict[str, Any]], held: dict[str, dict[str, tuple[int, int]]],
              live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per function, entries held by workers that are not live, and when the first can be
    reclaimed: the live workers' claim timeout minus the entry's idle time (None when no live
    worker runs the function, so nobody will)."""
    notes = []
    for row in rows:
        holders = held.get(row["function"])
        if not holders:
            continue
        # A worker of the previous release does not report its claim timeout: take the default.
        timeouts = [int(w.get("claim_timeout_ms") or DEFAULT_CLAIM_TIMEOUT_MS) for w in live
                    if row["function"] in w.get("functions", ())]
        idle_ms = max(idle for _, idle in holders.values())
        in_s = max(min(timeouts) - idle_ms, 0) / 1000 if timeouts else None
        notes.append({"kind": "awaiting_reclaim", "function": row["function"], "count": row["awaiting_reclaim"],
                      "workers": sorted(holders), "in_s": in_s})
    return notes


def _rate_backlog(rate_limit: str | None, bucket: list[str | None]) -> int:
    """Jobs waiting for a rate-limit token: the tokens lent out beyond the bucket, net of refill."""
    tokens, ts = bucket
    if not rate_limit or tokens is None or ts is None:
        return 0
    rate = RateLimit.parse(rate_limit)
    refilled = float(tokens) + (time.time() - float(ts)) * rate.count / rate.period_s
    return max(0, -int(refilled // 1))


def _note(row: dict[str, Any], served: bool, group: dict[str, Any] | None) -> str:
    """Why work of this function is not moving, in a few words (empty when nothing looks stuck)."""
    notes = ["paused (`resume` it to go on)"] if row["paused"] else []
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


def note_text(note: dict[str, Any], now: float) -> str:
    """A note of read() as the sentence `status` and the dashboard print."""
    kind = note["kind"]
    if kind == "all_slots_busy":
        workers = f"{note['workers']} worker{'s' if note['workers'] != 1 else ''}"
        return f"{workers}, all slots busy ({note['slots']} slots, {note['queued']} queued)"
    if kind == "delayed":
        return f"{note['function']}: {note['count']} delayed, next at {_instant(note['next_at'], now)}"
    held_by = f"held by dead worker{'s' if len(note['workers']) != 1 else ''} {', '.join(note['workers'])}"
    if note["in_s"] is None:
        return f"{note['function']}: {note['count']} awaiting reclaim, but no live worker runs it ({held_by})"
    when = f"in ~{_span(note['in_s'])}" if note["in_s"] > 0 else "now"
    return f"{note['function']}: {note['count']} awaiting reclaim {when} ({held_by})"


def _instant(at: float, now: float) -> str:
    """A UTC clock time with how far off it is; the date too when it is not within a day."""
    form = "%H:%M:%S" if abs(at - now) < 86400 else "%Y-%m-%d %H:%M:%S"
    relative = f"in {_span(at - now)}" if at > now else f"due {_span(now - at)} ago"
    return f"{datetime.fromtimestamp(at, tz=UTC).strftime(form)} UTC ({relative})"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
