"""Crons, events and workflows for the tests; jobs record what they saw in Redis."""

import json
import time

import upnext
from tests.apps import ledger

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("flows", concurrency=10)


def record(name: str, **fields) -> None:
    ctx = upnext.get_current_context()
    entry = {"job_id": ctx.job_id, "parent_id": ctx.parent_id, "root_id": ctx.root_id, "at": time.time(), **fields}
    ledger().rpush(f"ledger:{name}", json.dumps(entry))


@worker.cron("* * * * * *")
def every_second() -> None:
    record("every_second")


order_placed = worker.event("order.placed")


@order_placed.on
def send_confirmation(order_id: str, **kwargs) -> str:
    record("send_confirmation", order_id=order_id)
    return f"confirmed {order_id}"


@order_placed.on(retries=1, retry_delay=0.1)
def charge_card(order_id: str, **kwargs) -> str:
    record("charge_card", order_id=order_id)
    raise RuntimeError(f"card declined for {order_id}")


@worker.task
def square(x: int) -> int:
    counter = ledger()
    running = counter.incr("running:square")
    counter.eval("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
                 "redis.call('SET', KEYS[1], ARGV[1]) end", 1, "max:square", running)
    time.sleep(0.05)
    counter.decr("running:square")
    return x * x


@worker.task
def fail(message: str) -> None:
    raise ValueError(message)


@worker.task
def nap(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    return tag


@worker.task
def tree(depth: int, fanout: int) -> dict:
    """Submit ``fanout`` children a level down and wait for them: nested waits all the way."""
    record("tree", depth=depth)
    children = [tree.submit(depth - 1, fanout) for _ in range(fanout)] if depth > 0 else []
    return {"job": upnext.get_current_context().job_id, "children": upnext.gather(*children)}


@worker.task
def fan_out(n: int) -> list:
    return upnext.map_tasks(square, [{"x": i} for i in range(n)], concurrency=3)


@worker.task
def announce(order_id: str) -> list:
    return [f.job_id for f in order_placed.send(order_id=order_id)]
