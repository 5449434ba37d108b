"""Ended jobs, newest first: the history that ``upnext-gevent jobs`` (and later the dashboard) lists.

The index is written by the Lua calls that end a job (finish, cancel, purge), in its function's
hash slot: the ``ended`` stream, one entry per end (its id is when, fields ``j`` the job id
without the function and ``s`` the status; XADD trims entries past the TTL a node at a time). A
stream costs ~20-30 bytes an entry where a sorted set costs ~110 (store/keys.py, README's
memory arithmetic), and its entry ids are the cursor. ``ended:key:<key>`` and ``tree:<root>``
serve the idempotency-key and workflow lookups. A listing over several functions merges their
streams here, one pipeline per round (no Lua call spans two slots: Redis Cluster refuses it), and
never SCANs. A status filter reads the entries' ``s`` field; at most ``MAX_SCANNED`` entries per
call, past that it returns what it found with a cursor to go on.

An entry is shown only while its job's record says the same (the record expired: a completed job
kept shorter than the stream; or the job was queued again by an operator and ended anew: its
completed_at is that of a newer entry).
"""

from __future__ import annotations

import base64
import math
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
STATUS_PAGE = 500  # entries read per round trip under a status filter, shared by the functions
MIN_SOURCE_PAGE = 10  # entries read per function and round trip at least

Position = tuple[int, int]  # a stream entry id (ms, seq)
Bound = tuple[Position, str]  # (position, job id): newest first is position desc, then job id desc
Entry = tuple[Bound, str]  # (bound, status)


@dataclass
class _Source:
    """One function's ended stream, read newest first a page at a time."""

    function: str
    key: str
    high: str
    low: str
    done: bool = False
    buffer: deque[Entry] = field(default_factory=deque)


def list_jobs(queue: Queue, functions: Sequence[str], status: str | None = None, since: float | None = None,
              until: float | None = None, key: str | None = None, root_id: str | None = None, limit: int = 50,
              cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Ended jobs of ``functions``, newest first, with the filters given; returns (rows, the cursor of
    the next page or None). ``since``/``until``: unix seconds bounding when they ended."""
    if status is not None and status not in ENDED_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ENDED_STATUSES)} (history lists ended jobs), "
                         f"got {status!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    after = decode_cursor(cursor)
    if key is not None or root_id is not None:
        return _listed(queue, functions, status, since, until, key, root_id, limit, after)
    high = "+" if until is None else str(int(until * 1000))
    if after is not None:  # earlier pages kept to ``until``: the cursor is below it
        high = f"{after[0][0]}-{after[0][1]}"
    low = "-" if since is None else str(int(since * 1000))
    sources = [_Source(f, keys.ended(queue.prefix, f), high, low) for f in functions]
    return _merged(queue, sources, status, limit, after)


def _merged(queue: Queue, sources: list[_Source], status: str | None, limit: int,
            after: Bound | None) -> tuple[list[dict[str, Any]], str | None]:
    rows: list[dict[str, Any]] = []
    scanned, last = 0, after
    # A filter reads past many entries; the sources share the wanted entries (100 functions each
    # reading a whole page would read 100 pages for one), a source that runs dry is read again.
    needed = limit if status is None else max(limit, STATUS_PAGE)
    page = max(-(-needed // len(sources)), MIN_SOURCE_PAGE) if sources else needed
    while len(rows) < limit and scanned < MAX_SCANNED:
        _refill(queue, sources, page, after)
        picked = _pick(sources, min(limit - len(rows), MAX_SCANNED - scanned))
        if not picked:
            return rows, None
        scanned += len(picked)
        wanted = [(bound, s) for bound, s in picked if status is None or s == status]
        shown = dict(zip([b for b, _ in wanted], _rows(queue, [b[1] for b, _ in wanted])))
        for bound, _ in picked:
            last = bound
            row = shown.get(bound)
            if row is not None and _ended_there(row, bound):
                rows.append(row)
                if len(rows) == limit:
                    break
    return rows, (encode_cursor(last) if last is not None and last != after else None)


def _ended_there(row: dict[str, Any], bound: Bound) -> bool:
    """The record ended at this entry (not a later end of the same job, queued again since)."""
    return row["completed_at"] is not None and math.floor(row["completed_at"] * 1000) == bound[0][0]


def _refill(queue: Queue, sources: list[_Source], page: int, after: Bound | None) -> None:
    """Read the next page of every source whose buffer ran dry, one pipeline per round (a page
    may hold only the entry at the cursor: then that source is read on)."""
    while empty := [s for s in sources if not s.buffer and not s.done]:
        pipe = queue.pipeline()
        for s in empty:
            pipe.xrevrange(s.key, max=s.high, min=s.low, count=page)
        for s, entries in zip(empty, pipe.execute()):
            s.done = len(entries) < page
            if entries:
                s.high = "(" + entries[-1][0]
            for entry_id, fields in entries:
                bound = (_position(entry_id), f"{s.function}:{fields.get('j', '')}")
                if _before(bound, after):
                    s.buffer.append((bound, fields.get("s", "")))


def _position(entry_id: str) -> Position:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _before(bound: Bound, after: Bound | None) -> bool:
    """True when ``bound`` comes after the cursor in newest-first order."""
    return after is None or bound < after


def _pick(sources: list[_Source], wanted: int) -> list[Entry]:
    """The newest ``wanted`` entries across the buffers, stopping when a source that may hold newer
    ones ran dry (it is read again first)."""
    picked: list[Entry] = []
    while len(picked) < wanted:
        if any(not s.buffer and not s.done for s in sources):
            break
        live = [s for s in sources if s.buffer]
        if not live:
            break
        newest = max(live, key=lambda s: s.buffer[0][0])
        picked.append(newest.buffer.popleft())
    return picked


def _rows(queue: Queue, job_ids: Sequence[str]) -> list[dict[str, Any] | None]:
    """The listing row of each job (None when its record expired), one pipeline."""
    if not job_ids:
        return []
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
    ordered = sorted(rows, key=_bound_of, reverse=True)
    ordered = [r for r in ordered if _before(_bound_of(r), after)]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_cursor(_bound_of(page[-1])) if more else None)


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
    """When a row happened: its end, or for a job not ended its submit."""
    return float(row["completed_at"] or row["enqueued_at"] or 0.0)


def _bound_of(row: dict[str, Any]) -> Bound:
    return (math.floor(_score(row) * 1000), 0), row["job_id"]


def _in_window(row: dict[str, Any], since: float | None, until: float | None) -> bool:
    score = _score(row)
    return (since is None or score >= since) and (until is None or score <= until)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def encode_cursor(bound: Bound) -> str:
    (ms, seq), job_id = bound
    return base64.urlsafe_b64encode(f"{ms}-{seq} {job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Bound | None:
    """The (position, job id) a cursor names; ValueError naming the cursor when it is not one."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        entry_id, job_id = text.split(" ", 1)
        return _position(entry_id), job_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"cursor {cursor!r} is not one that `jobs` printed") from None
