"""The fetch loop's tick: which tasks to read, how many entries, and whether to take (fetch and
start in one call) or to wait until entries arrive. Spawned by loops.py like the other loops."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

import gevent

from upnext.store import depths, groups

if TYPE_CHECKING:
    from upnext.runtime.serving import Runtime
    from upnext.store.records import Delivery

FETCH_BLOCK_MS = 1000
PAUSED_WAIT_S = 0.1
PROBE_INTERVAL_S = 0.05
LENT_SLOTS_WAIT_S = 0.001
LENT_BLOCK_MS = 20  # see _block_ms
# A read that found a task's streams empty is trusted this long: the next blocking read needs no
# "unread?" check for it (the idle loop and a lone job's round trip cost no extra call). Past it,
# entries may have come into several priorities of the task, which a blocking read would return
# together (see fetch_tick).
EMPTY_TRUST_S = 0.02
# How long the fetch loop holds its next wait while jobs it started into an idle worker run
# (see _started): a job submitted meanwhile starts at most this much later.
LONE_HOLD_S = 0.001
# A task that had work this recently gets a take behind each wait of an idle worker (see _wake).
RECENT_S = 5.0
FUNCTION = attrgetter("function")


def fetch_tick(rt: Runtime) -> float:
    """Read only as many entries as there are free slots (and free concurrency leases of capped
    tasks), and start every one returned: fetch and start are one call (``Runtime.take``) while
    there is work. Once the streams were drained, a single Redis waits and takes in one round
    trip (``_wake``); Redis Cluster and tasks in routing groups block with XREADGROUP, then start
    (two calls; the streams are checked first: a take that read other tasks is no proof, and a
    read that returns entries of several priorities of a task would hand the extra ones back
    behind the others of their level).

    Reads go to the tasks whose streams had entries last time ("hot"), so one busy task among
    idle ones gets full batches; every PROBE_INTERVAL_S (and whenever none is hot) a read is
    shared over all the tasks in turn, so a task that just got work is not starved behind them.
    Paused tasks (``rt.paused``, read within LOAD_INTERVAL_S) are not read at all."""
    free = rt.free_slots()
    if free <= 0:
        if rt.slots.counter > 0:
            # Jobs are taking back the slots they lent while waiting: the semaphore is free, so
            # waiting on it would return at once and this loop would spin, never letting them run.
            return LENT_SLOTS_WAIT_S
        rt.slots.wait(timeout=1.0)
        return 0
    s = rt.settings
    want = min(free, s.batch_size, s.inbox_size)
    rt.functions = rt.functions[1:] + rt.functions[:1]
    serving = [f for f in rt.functions if f not in rt.paused]
    if not serving:
        return PAUSED_WAIT_S  # every task of this worker is paused: the heartbeat loop reads when that ends
    room = _lease_room(rt)
    candidates = [f for f in serving if room.get(f, want) > 0]
    if not candidates:
        return 0.05  # every task of this worker is at its max_concurrency: nothing to start
    if rt.drained and _wakes_in_one_trip(rt, candidates):
        return _wake(rt, candidates, want, room)
    now = time.monotonic()
    unsure = [f for f in candidates if now - rt.empty_at.get(f, -EMPTY_TRUST_S) > EMPTY_TRUST_S]
    unread = depths.unread(rt.fetch_queue, unsure) if rt.drained and unsure else []
    if rt.drained and not unread:
        # Nothing was left last time (Redis Cluster, routing groups): block until entries arrive,
        # then start them (two calls, but a lone job is not delayed by a take that would find nothing).
        count = 1 if len(candidates) > 1 else min(want, room.get(candidates[0], want))
        got = rt.fetch_queue.fetch(rt.worker_id, candidates, count, 100 if s.burst else FETCH_BLOCK_MS)
        _note_empty(rt, {f: count for f in candidates}, got)
        rt.dispatch(got, limit=want, queue=rt.fetch_queue)
        rt.drained = len(got) < count
    elif unread:
        # The last take read other tasks: take from these instead of a blocking read, which would
        # return an entry of each priority's stream and hand the extra ones back behind the rest.
        counts = _spread(want, unread, room)
        got = rt.take(counts)
        _note_empty(rt, counts, got)
        rt.drained = len(got) < want
        if not got:
            return PAUSED_WAIT_S  # refused (leases, a pause landing): do not spin
    else:
        hot = [f for f in candidates if f in rt.hot]
        now = time.monotonic()
        if not hot or now >= rt.probe_at:
            hot, rt.probe_at = candidates, now + PROBE_INTERVAL_S
        counts = _spread(want, hot, room)
        got = rt.take(counts)
        taken = _note_empty(rt, counts, got)
        # A task that filled its share may have more: give it what the others left.
        more = [f for f, n in counts.items() if taken[f] >= n]
        if got and len(got) < want and more and rt.free_slots() > 0:
            for function, n in taken.items():
                room[function] = room.get(function, want) - n
            counts = _spread(min(want - len(got), rt.free_slots()), more, room)
            extra = rt.take(counts)
            _note_empty(rt, counts, extra)
            got += extra
        rt.drained = len(got) < want
    _started(rt, got)
    return 0


def _wakes_in_one_trip(rt: Runtime, candidates: list[str]) -> bool:
    """Whether the drained worker's wait can be ``Runtime.wake_and_take``: on a single Redis, for
    tasks outside routing groups (whose take reserves group leases first, which a wait of a
    second must not hold)."""
    return not rt.fetch_queue.cluster and not any(f in rt.grouped for f in candidates)


def _wake(rt: Runtime, candidates: list[str], want: int, room: dict[str, int]) -> float:
    """Wait until a candidate has an entry no worker read, and take in the same round trip: a job
    of a task that had work within RECENT_S starts one round trip after its submit. Other tasks
    get no take behind the wait (an idle worker's waits would cost a script call per task): the
    wait names those it saw, and the next tick takes theirs."""
    now = time.monotonic()
    candidates.sort(key=lambda f: f not in rt.woke)  # those the last wait saw first, so they get counts
    recent = [f for f in candidates if now - rt.seen_at.get(f, -RECENT_S) < RECENT_S]
    counts = _spread(want, recent, room)
    cursors = dict(rt.cursors)
    got, rt.woke = rt.wake_and_take(candidates, counts, _block_ms(rt, counts))
    taken = _note_empty(rt, counts, got)
    # A task that filled its share may have more: the next tick takes without waiting.
    rt.drained = not [f for f, n in counts.items() if taken[f] >= n]
    rt.seen_at.update(dict.fromkeys(rt.woke, time.monotonic()))
    _started(rt, got, woke_idle=True)
    if rt.woke and not got and rt.cursors == cursors and rt.woke <= set(counts):
        return PAUSED_WAIT_S  # an unread entry no take would start (a pause landing): do not spin
    return 0


def _block_ms(rt: Runtime, counts: dict[str, int]) -> int:
    """How long a wait may block. Its takes hold their slots until it returns: while a job has lent
    its slot (waiting on another job), a short block, so the job gets its slot back at once."""
    if counts and rt.lent:
        return LENT_BLOCK_MS
    return 100 if rt.settings.burst else FETCH_BLOCK_MS


def _started(rt: Runtime, got: Sequence[Delivery], woke_idle: bool = False) -> None:
    rt.hot = set(map(FUNCTION, got))
    rt.seen_at.update(dict.fromkeys(rt.hot, time.monotonic()))
    if got:
        rt.stats.last_fetch_at = time.time()
        if woke_idle and len(rt.inflight) == len(got):
            # An idle worker woke for these jobs, which run alone. Hold the next wait until they
            # ended and their outcomes were written (the flusher sets rt.quiet), at most
            # LONE_HOLD_S: this one thread would otherwise build and send that call (~150 µs)
            # between a quick job's commands, and the job's end would wait for it. Never while
            # a backlog is taken (fetch_tick's takes): the slots would refill a batch at a time.
            rt.quiet.clear()
            rt.quiet.wait(LONE_HOLD_S)
        else:
            # Let the jobs just started send their first command before this loop's next call.
            gevent.sleep(0)


def _note_empty(rt: Runtime, asked: dict[str, int], got: Sequence[Delivery]) -> Counter[str]:
    """A task that returned fewer entries than asked had none left in any priority's stream.
    Returns how many of ``got`` each task has (counted in C: this runs for every batch taken)."""
    now = time.monotonic()
    taken = Counter(map(FUNCTION, got))
    for function, count in asked.items():
        if taken[function] < count:
            rt.empty_at[function] = now
    return taken


def _lease_room(rt: Runtime) -> dict[str, int]:
    """Free cluster-wide leases of this worker's capped tasks: their own max_concurrency, and
    their routing group's group_max_concurrency (shared with the group's other tasks)."""
    room: dict[str, int] = {}
    if rt.capped:
        held = rt.queue.lease_counts(list(rt.capped))
        room = {f: max(0, cap - n) for (f, cap), n in zip(rt.capped.items(), held)}
    free = groups.free(rt.queue, rt.limits)
    for function, limit in groups.grouped(rt.limits).items():
        room[function] = min(room.get(function, free[limit.group]), free[limit.group])
    return room


def _spread(want: int, functions: list[str], room: dict[str, int]) -> dict[str, int]:
    """Share ``want`` reads over ``functions`` in order, none above its lease room."""
    counts: dict[str, int] = {}
    left = want
    for i, function in enumerate(functions):
        if left <= 0:
            break
        share = min(max(1, left // (len(functions) - i)), room.get(function, left))
        if share > 0:
            counts[function] = share
            left -= share
    return counts
