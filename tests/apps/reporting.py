"""Tasks that report progress, logs and checkpoints, for tests/test_context.py and tests/test_show.py.
Called directly they run inline (no Redis); submitted they run on a worker."""

import upnext

worker = upnext.Worker("test-reporting")


@worker.task(retries=2)
def imports(rows: int) -> dict:
    """Reports each row as it goes, logs once and checkpoints; returns what its context saw."""
    ctx = upnext.get_current_context()
    for i in range(rows):
        ctx.set_progress(i + 1, "importing", total=rows)
    ctx.send_log("info", "imported", rows=rows)
    ctx.checkpoint({"done": rows})
    return {"job_id": ctx.job_id, "attempt": ctx.attempt, "max_attempts": ctx.max_attempts,
            "parent_id": ctx.parent_id, "root_id": ctx.root_id, "progress": list(ctx.progress or ()),
            "logs": [e["message"] for e in ctx.inline_logs], "checkpoint": ctx.last_checkpoint}


@worker.task
def counts_in_percent() -> list:
    """0, 1, 2, 3 as ints: each is a percentage."""
    ctx = upnext.get_current_context()
    seen = []
    for i in range(4):
        ctx.set_progress(i)
        seen.append((ctx.progress or (None,))[0])
    return seen


@worker.task
def calls_a_task_directly() -> dict:
    """A direct call inside a running job: the callee gets its own inline context."""
    ctx = upnext.get_current_context()
    ctx.set_progress(10, "outer")
    inner = imports(2)
    return {"outer": ctx.job_id, "outer_root": ctx.root_id, "inner": inner,
            "progress_after": list(ctx.progress or ())}


@worker.task(retries=1, retry_delay=3600, retry_jitter=False)  # the test must find it still waiting
def fails_at_97(fail: bool = True) -> str:
    """Reports 97 % and a message, then fails (its retry waits an hour: the test looks at it meanwhile)."""
    ctx = upnext.get_current_context()
    ctx.set_progress(97, "nearly there")
    if fail:
        raise ValueError(f"attempt {ctx.attempt} of {ctx.max_attempts} gives up at 97 %")
    return "done"


@worker.task
def fails_with_everything(order: str) -> None:
    """Leaves a trace of each kind (progress, log, checkpoint), then fails with a traceback."""
    ctx = upnext.get_current_context()
    ctx.set_progress(3, "checked 3 of 100", total=100)
    ctx.send_log("warning", "stock low", sku="A-1")
    ctx.checkpoint({"line": 3})
    raise LookupError(f"order {order} has no line 4")


@worker.task(hide_args=True)
def charges(card: str) -> dict:
    """Arguments and result no view may show (hide_args)."""
    return {"charged": card[-4:], "token": "tok-" + card}
