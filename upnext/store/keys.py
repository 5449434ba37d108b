"""Every Redis key upnext uses, as pure functions. Nothing here talks to Redis.

All keys of one task share the hash tag ``{task}`` so every Lua script stays in one
Redis Cluster slot. ``P`` is the prefix (default ``upnext``).

| key                          | type   | holds                                                   |
|------------------------------|--------|---------------------------------------------------------|
| P:{fn}:stream                | stream | one entry per runnable normal-priority job (field ``id``); group ``workers`` |
| P:{fn}:stream:<level>        | stream | the same for priority ``high`` / ``low``; entries named ``<level>/<id>`` |
| P:{fn}:scheduled             | zset   | delayed and retrying job ids, score = run-at (unix s)   |
| P:{fn}:job:<id>              | hash   | the job record; no TTL until it is terminal             |
| P:{fn}:logs:<id>             | list   | ``send_log`` entries (JSON), expire with the job        |
| P:{fn}:dedup:<key>           | string | id of the live job holding an idempotency key           |
| P:{fn}:done:<id>             | pubsub | channel told the terminal status, for waiters           |
| P:{_workers}:ids             | set    | ids of workers that registered (pruned when stale)      |
| P:{_workers}:<worker id>     | string | JSON heartbeat of one worker process, with a TTL        |
| P:{_workers}:last_seen       | hash   | worker id -> its latest heartbeat; kept after a crash until pruned |
| P:{fn}:failed                | zset   | failed job ids -> failed at; entries past job_ttl pruned |
| P:{fn}:leases                | zset   | max_concurrency leases: job id -> expiry (ms, server time) |
| P:{fn}:rate                  | hash   | rate-limit token bucket: tokens, ts                     |
| P:{group:<g>}:leases         | zset   | routing group <g>'s leases: job@entry -> expiry (ms); own slot |
| P:{fn}:cron                  | hash   | a cron's cursor: next_at, schedule, last_job, skipped, last_skipped_at |
| P:{fn}:cron_lock             | string | id of the worker firing this cron (expiring lock)       |
| P:{_crons}                   | hash   | run-time cron name -> JSON definition (function, schedule, tz, args, ...) |
| P:{fn}:cron:<name>           | hash   | run-time cron <name>'s cursor (as above, plus function) |
| P:{fn}:cron_lock:<name>      | string | id of the worker firing run-time cron <name> (expiring lock) |
| P:{_workers}:functions       | hash   | task name -> JSON options, written at worker start      |
| P:{_workers}:event:<name>    | set    | handler task names of event <name>, added at worker start |
| P:{_workers}:events          | set    | names of the events with registered handlers (for listings) |
| P:format                     | string | newest data format a worker ran here (``dataformat.py``) |
| P:{fn}:stats:m:<minute>      | hash   | counts and histograms of runs ended in that epoch minute (90000 s) |
| P:{fn}:stats:h:<hour>        | hash   | the same per epoch hour (31 days)                       |
| P:{fn}:stats:total           | hash   | the same since the start (no expiry)                    |
| P:{fn}:paused                | string | unix time the function was paused; absent = running     |
| P:{_paused}                  | set    | names of the paused functions                           |
| P:{fn}:ended                 | stream | an entry per job end (j: id without ``fn:``, s: status), trimmed at the TTL |
| P:{fn}:ended:key:<key>       | string | latest ended job id that held idempotency key <key>     |
| P:{fn}:tree:<root id>        | zset   | ended jobs of one workflow tree -> completed_at         |
| P:{fn}:attempts:<id>         | list   | one JSON entry per ended run of the job, expire with it |

A stats hash holds integer fields ``completed``, ``failed``, ``cancelled``, ``retried`` and two
histograms, ``run`` (run time of a run that ended) and ``wait`` (enqueued or due -> started):
``<h>_n``, ``<h>_sum`` (float seconds) and ``<h>_<i>``, the count of values whose first bound
>= value in ``STAT_BUCKETS_S`` is the i-th (per bucket, not cumulative). Missing fields read 0.
"""

from __future__ import annotations

from upnext.job import function_of

GROUP = "workers"
LEVELS = ("high", "normal", "low")  # priorities, in the order workers serve them (strictly)
NORMAL = "normal"

STAT_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, float("inf"),
)
STATS_MINUTE_TTL_S = 90000
STATS_HOUR_TTL_S = 31 * 24 * 3600


def stat_bucket(seconds: float) -> int:
    """Index of the first bound of ``STAT_BUCKETS_S`` that is >= ``seconds``."""
    for index, bound in enumerate(STAT_BUCKETS_S):
        if seconds <= bound:
            return index
    return len(STAT_BUCKETS_S) - 1


def tag(prefix: str, function: str) -> str:
    return f"{prefix}:{{{function}}}"


def stream(prefix: str, function: str, level: str = NORMAL) -> str:
    """The stream of one priority level: normal is the plain ``:stream`` (so older releases read it)."""
    return f"{tag(prefix, function)}:stream" + ("" if level == NORMAL else f":{level}")


def streams(prefix: str, function: str) -> list[str]:
    """The task's streams, highest priority first."""
    return [stream(prefix, function, level) for level in LEVELS]


def level_of_stream(name: str) -> str:
    head, _, last = name.rpartition(":")
    return last if last in LEVELS and head.endswith("}:stream") else NORMAL


def entry_token(level: str, entry_id: str) -> str:
    """How a delivery names its stream entry (its fencing token and a job's ``lease``): the entry
    id itself in the normal stream, ``<level>/<id>`` in another (``entry_of`` in _lib.lua reads it)."""
    return entry_id if level == NORMAL else f"{level}/{entry_id}"


def split_token(token: str) -> tuple[str, str]:
    """(level, entry id) of an ``entry_token``."""
    level, sep, entry_id = token.partition("/")
    return (level, entry_id) if sep else (NORMAL, token)


def scheduled(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:scheduled"


def job(prefix: str, job_id: str) -> str:
    return job_prefix(prefix, function_of(job_id)) + job_id


def job_prefix(prefix: str, function: str) -> str:
    """What start.lua puts before a job id to name its record (``job`` of that id)."""
    return f"{tag(prefix, function)}:job:"


def logs(prefix: str, job_id: str) -> str:
    return f"{tag(prefix, function_of(job_id))}:logs:{job_id}"


def done_channel(prefix: str, job_id: str) -> str:
    return f"{tag(prefix, function_of(job_id))}:done:{job_id}"


def notify(prefix: str, job_id: str) -> str:
    """The list a job's end is pushed onto when its submitter waits for it (``task.wait()``)."""
    return f"{tag(prefix, function_of(job_id))}:notify:{job_id}"


def dedup(prefix: str, function: str, key: str) -> str:
    return f"{tag(prefix, function)}:dedup:{key}"


def failed(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:failed"


def leases(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:leases"


def group_leases(prefix: str, group: str) -> str:
    """A routing group's leases, under the group's own hash tag: a task name has no ':', so this
    slot is never a task's; group_lease.lua is the only script that touches it."""
    return f"{tag(prefix, 'group:' + group)}:leases"


def rate(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:rate"


def cron(prefix: str, cron_id: str) -> str:
    """A cron's cursor. ``cron_id`` is a declared cron's function, or ``<function>:<name>`` for the
    run-time cron <name> (a task name has no ':'): its cursor is under its function's hash tag."""
    function, _, name = cron_id.partition(":")
    return f"{tag(prefix, function)}:cron" + (f":{name}" if name else "")


def runtime_crons(prefix: str) -> str:
    return tag(prefix, "_crons")


def event_handlers(prefix: str, event: str) -> str:
    return f"{tag(prefix, '_workers')}:event:{event}"


def event_names(prefix: str) -> str:
    return f"{tag(prefix, '_workers')}:events"


def cron_lock(prefix: str, cron_id: str) -> str:
    function, _, name = cron_id.partition(":")
    return f"{tag(prefix, function)}:cron_lock" + (f":{name}" if name else "")


def worker(prefix: str, worker_id: str) -> str:
    return f"{tag(prefix, '_workers')}:{worker_id}"


def last_seen(prefix: str) -> str:
    return f"{tag(prefix, '_workers')}:last_seen"


def worker_ids(prefix: str) -> str:
    return f"{tag(prefix, '_workers')}:ids"


def functions(prefix: str) -> str:
    return f"{tag(prefix, '_workers')}:functions"


def data_format(prefix: str) -> str:
    return f"{prefix}:format"


def stats_minute(prefix: str, function: str, minute: int) -> str:
    """Stats of the runs that ended in epoch minute ``minute`` (unix seconds // 60)."""
    return f"{tag(prefix, function)}:stats:m:{minute}"


def stats_hour(prefix: str, function: str, hour: int) -> str:
    """Stats of the runs that ended in epoch hour ``hour`` (unix seconds // 3600)."""
    return f"{tag(prefix, function)}:stats:h:{hour}"


def stats_total(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:stats:total"


def paused(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:paused"


def paused_set(prefix: str) -> str:
    return tag(prefix, "_paused")


def ended(prefix: str, function: str) -> str:
    return f"{tag(prefix, function)}:ended"


def ended_key(prefix: str, function: str, key: str) -> str:
    return f"{tag(prefix, function)}:ended:key:{key}"


def tree(prefix: str, function: str, root_id: str) -> str:
    return f"{tag(prefix, function)}:tree:{root_id}"


def attempts(prefix: str, job_id: str) -> str:
    return f"{tag(prefix, function_of(job_id))}:attempts:{job_id}"
