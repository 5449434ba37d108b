"""Tasks the dashboard tests run on a real worker: ones that echo, fail with a given text, fail
until a flag is set (then a retry completes), report progress step by step on a gate, and a
cron, so every page has something to show."""

import upnext
from tests.apps import ledger

worker = upnext.Worker("test-dashboard", concurrency=8)
FIXED_FLAG = "dashboard:fixed"
GATE = "dashboard:gate"


@worker.task
def echo(value: object) -> object:
    return value


@worker.task
def fails(text: str) -> None:
    raise ValueError(text)


@worker.task(retries=2, retry_delay=3600, retry_jitter=False)
def retries_later(text: str) -> None:
    """Fails with ``text`` and waits an hour for its next attempt (a job the bulk cancel finds)."""
    raise TimeoutError(text)


@worker.task
def needs_fix() -> str:
    """Fails until the test sets FIXED_FLAG: then a retry completes."""
    if not ledger().get(FIXED_FLAG):
        raise RuntimeError("not fixed yet")
    return "fixed"


@worker.task
def steps(count: int) -> int:
    """Reports progress ``i/count`` after each item pushed to GATE, so a test sees it move."""
    ctx = upnext.get_current_context()
    for i in range(count):
        ledger().blpop([GATE], timeout=30)
        ctx.set_progress(i + 1, f"step {i + 1} of {count}", total=count)
        ctx.send_log("info", "stepped", step=i + 1)
    return count


@worker.cron("0 3 * * *")
def nightly() -> None:
    pass


@worker.task(hide_args=True)
def charges(card: str) -> str:
    """Its arguments and result never show (hide_args)."""
    return f"charged {card}"


order_shipped = worker.event("order.shipped")


@order_shipped.on
def notify_customer(order_id: str) -> str:
    return f"told the customer about {order_id}"
