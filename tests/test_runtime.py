"""A worker's slot accounting inside one process, where the CLI cannot reach: the fetch loop
against jobs that lend their slot while they wait and then take it back."""

from __future__ import annotations

import gevent
import pytest

import upnext
from upnext import config
from upnext.runtime import fetching, loops
from upnext.runtime.serving import Runtime


@pytest.mark.timeout(10)
def test_the_fetch_loop_lets_a_job_take_back_the_slot_it_lent(redis_url):
    worker = upnext.Worker("lend", concurrency=1, redis_url=redis_url)

    @worker.task
    def parent() -> None:
        """Stands for a job that waits on a child."""

    rt = Runtime(worker, config.resolve(worker={"concurrency": 1, "redis_url": redis_url}))
    rt.slots.acquire()  # the parent job runs in the only slot
    take_back = rt.lend_slot()  # ... and lends it while it waits on its child
    rt.slots.acquire()  # the child runs in the lent slot
    waiting = gevent.spawn(take_back)
    gevent.sleep(0)  # the parent, its child done soon, is queued on the slot
    assert rt.wanted == 1
    fetcher = loops._spawn(rt, "fetch", lambda: fetching.fetch_tick(rt), until_stop=True)
    rt.slots.release()  # the child ends: the slot is free, but it is the parent's
    try:
        # A fetch loop spinning on the free semaphore would never let the parent run: only the
        # timeout mark's signal, raised inside that loop, would end it (and kill the loop).
        waiting.join(timeout=5)
        assert waiting.successful() and rt.wanted == 0 and rt.free_slots() == 0
        assert not fetcher.dead and rt.failed_loop is None
    finally:
        rt.stop()
        gevent.kill(fetcher)
