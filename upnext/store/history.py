"""Ended jobs, newest first: the history that ``upnext-gevent jobs`` (and later the dashboard) lists.

The indexes are written by the Lua calls that end a job (finish, cancel, purge), in its
function's hash slot: ``ended`` (every ended job, score = completed_at), ``failed`` and
``cancelled`` (the rarer statuses, so a filter on them reads only their own entries), and
``ended:key:<key>`` / ``tree:<root>`` for the idempotency-key and workflow lookups. A listing over
several functions merges their indexes here, one pipeline per round (no Lua call spans two slots:
Redis Cluster refuses it), and never SCANs. A filter on ``complete`` reads the statuses of the
``ended`` entries it passes, at most ``MAX_SCANNED`` per call: past that it returns what it found
with a cursor to go on.

Entries whose record expired (a completed job kept shorter than the index's longest TTL) are
skipped. A cursor is the (completed_at, job id) of the last row returned.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from upnext.job import function_of
from upnext.store import keys
from upnext.store.queue import Queue

ENDED_STATUSES = ("complete", "failed", "cancelled")
ROW_FIELDS = ("status", "enqueued_at", "started_at", "completed_at", "attempts", "error", "failure_reason")
MAX_SCANNED = 5000  # index entries one call may read past (a filter on a status); then it pages

Bound = tuple[float, str]  # (score, job id): the newest-first order is score desc, then id desc


@dataclass
class _Source:
    """One function's index, read newest first in pages."""

    key: str
    high: float | str
    low: float | str
    offset: int = 0
    done: bool = False
    buffer: deque[Bound] = field(default_factory=deque)


def list_jobs(queue: Queue, functions: Sequence[str], status: str | None = None, since: float | None = None,
              until: float | None = None, key: str | None = None, root_id: str | None = None, limit: int = 50,
              cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Ended jobs of ``functions``, newest first, with the filters given; returns (rows, the cursor of
    the next page or None). ``since``/``until``: unix seconds bounding completed_at."""
    if status is not None and status not in ENDED_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ENDED_STATUSES)} (history lists ended jobs), "
                         f"got {status!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    after = decode_cursor(cursor)
    if key is not None or root_id is not None:
        return _listed(queue, functions, status, since, until, key, root_id, limit, after)
    index = {"failed": keys.failed, "cancelled": keys.cancelled}.get(status or "", keys.ended)
    high: float | str = "+inf" if until is None else until
    if after is not None:
        high = after[0] if until is None else min(after[0], until)
    sources = [_Source(index(queue.prefix, f), high, "-inf" if since is None else since) for f in functions]
    return _merged(queue, sources, status if status == "complete" else None, limit, after)


def _merged(queue: Queue, sources: list[_Source], status: str | None, limit: int,
            after: Bound | None) -> tuple[list[dict[str, Any]], str | None]:
    rows: list[dict[str, Any]] = []
    scanned, last = 0, after
    while len(rows) < limit and scanned < MAX_SCANNED:
        _refill(queue, sources, limit, after)
        picked = _pick(sources, limit - len(rows))
        if not picked:
            return rows, None
        scanned += len(picked)
        for bound, row in zip(picked, _rows(queue, [job_id for _, job_id in picked])):
            last = bound
            if row is not None and (status is None or row["status"] == status):
                rows.append(row)
                if len(rows) == limit:
                    break
    return rows, (encode_cursor(last) if last is not None and last != after else None)


def _refill(queue: Queue, sources: list[_Source], page: int, after: Bound | None) -> None:
    """Read the next page of every source whose buffer ran dry, one pipeline per round (a page
    may hold only entries at or before the cursor: then that source is read on)."""
    while empty := [s for s in sources if not s.buffer and not s.done]:
        pipe = queue.pipeline()
        for s in empty:
            pipe.zrange(s.key, s.high, s.low, desc=True, byscore=True, offset=s.offset, num=page, withscores=True)
        for s, entries in zip(empty, pipe.execute()):
            s.offset += len(entries)
            s.done = len(entries) < page
            s.buffer.extend((score, job_id) for job_id, score in entries if _before((score, job_id), after))


def _before(bound: Bound, after: Bound | None) -> bool:
    """True when ``bound`` comes after the cursor in newest-first order (a tie on the score
    compares the ids, as ZRANGE REV orders them)."""
    return after is None or bound[0] < after[0] or (bound[0] == after[0] and bound[1] < after[1])


def _pick(sources: list[_Source], wanted: int) -> list[Bound]:
    """The newest ``wanted`` entries across the buffers, stopping when a source that may hold newer
    ones ran dry (it is read again first)."""
    picked: list[Bound] = []
    while len(picked) < wanted:
        if any(not s.buffer and not s.done for s in sources):
            break
        live = [s for s in sources if s.buffer]
        if not live:
            break
        newest = max(live, key=lambda s: s.buffer[0])
        picked.append(newest.buffer.popleft())
    return picked


def _rows(queue: Queue, job_ids: Sequence[str]) -> list[dict[str, Any] | None]:
    """The listing row of each job (None when its record expired), one pipeline."""
    pipe = queue.pipeline()
    for job_id in job_ids:
        pipe.hmget(keys.job(queue.prefix, job_id), list(ROW_FIELDS))
    return [_row(job_id, values) for job_id, values in zip(job_ids, pipe.execute())]


def _row(job_id: str, values: list[str | None]) -> dict[str, Any] | None:
    record = dict(zip(ROW_FIELDS, values))
    if record["status"] is None:
        return None
    error = record["error"] or ""
    return {"job_id": job_id, "function": function_of(job_id), "status": record["status"],
            "enqueued_at": _number(record["enqueued_at"]), "started_at": _number(record["started_at"]),
            "completed_at": _number(record["completed_at"]), "attempts": int(record["attempts"] or 0),
            "error": error.splitlines()[0] if error else None, "failure_reason": record["failure_reason"] or None}


def _listed(queue: Queue, functions: Sequence[str], status: str | None, since: float | None, until: float | None,
            key: str | None, root_id: str | None, limit: int, after: Bound | None
            ) -> tuple[list[dict[str, Any]], str | None]:
    """The small lookups: by idempotency key (the latest ended holder and the live one of each
    function) or by workflow root (its tree's ended jobs and the root itself)."""
    job_ids = _by_key(queue, functions, key) if key is not None else set()
    if root_id is not None:
        tree = _by_root(queue, functions, root_id)
        job_ids = tree if key is None else job_ids & tree
    rows = [r for r in _rows(queue, sorted(job_ids)) if r is not None and (status is None or r["status"] == status)]
    rows = [r for r in rows if _in_window(r, since, until)]
    ordered = sorted(rows, key=lambda r: (_score(r), r["job_id"]), reverse=True)
    ordered = [r for r in ordered if _before((_score(r), r["job_id"]), after)]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_cursor((_score(page[-1]), page[-1]["job_id"])) if more else None)


def _by_key(queue: Queue, functions: Sequence[str], key: str) -> set[str]:
    pipe = queue.pipeline()
    for f in functions:
        pipe.get(keys.ended_key(queue.prefix, f, key))
        pipe.get(keys.dedup(queue.prefix, f, key))
    return {job_id for job_id in cast(list[str | None], pipe.execute()) if job_id}


def _by_root(queue: Queue, functions: Sequence[str], root_id: str) -> set[str]:
    pipe = queue.pipeline()
    for f in functions:
        pipe.zrange(keys.tree(queue.prefix, f, root_id), 0, -1)
    found = {job_id for members in pipe.execute() for job_id in members}
    if _function_or_none(root_id) in functions:
        found.add(root_id)
    return found


def _function_or_none(job_id: str) -> str | None:
    try:
        return function_of(job_id)
    except ValueError:
        return None


def _score(row: dict[str, Any]) -> float:
    """A row's place in newest-first order: its end, or for a job not ended its submit."""
    return float(row["completed_at"] or row["enqueued_at"] or 0.0)


def _in_window(row: dict[str, Any], since: float | None, until: float | None) -> bool:
    score = _score(row)
    return (since is None or score >= since) and (until is None or score <= until)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def encode_cursor(bound: Bound) -> str:
    return base64.urlsafe_b64encode(f"{bound[0]!r} {bound[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Bound | None:
    """The (score, job id) a cursor names; ValueError naming the cursor when it is not one."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, job_id = text.split(" ", 1)
        return float(score), job_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"cursor {cursor!r} is not one that `jobs` printed") from None
