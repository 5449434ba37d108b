"""The smallest useful app: two tasks on one worker.

Run a worker:   upnext-gevent examples.hello:worker
Submit a job:   python -m examples.submit
"""

import time

import upnext

worker = upnext.Worker("hello", concurrency=20)


@worker.task(retries=2, retry_delay=0.5, timeout=30)
def greet(name: str) -> str:
    ctx = upnext.get_current_context()
    ctx.log.info("greeting", name=name)
    return f"hello, {name}"


@worker.task(timeout=60)
def slow_report(rows: int) -> dict:
    ctx = upnext.get_current_context()
    for i in range(rows):
        time.sleep(0.01)  # stands for I/O: under gevent it yields to the other jobs
        ctx.set_progress(i + 1, total=rows)
    return {"rows": rows}
