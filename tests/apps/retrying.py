"""Tasks for tests/test_retry_policy.py: each raises what it is told, so the tests can check which
exceptions are retried (retry_on, no_retry_on, Permanent, retryable = False, Retry) in a greenlet
and in a process-pool child, and where a retry is scheduled (jitter, retry_max_delay)."""

import upnext

worker = upnext.Worker("test-retrying", concurrency=10)


class GoneForGood(Exception):
    """Marks itself permanent: never retried, whatever the task's options."""

    retryable = False


def _raise(kind: str) -> None:
    ctx = upnext.get_current_context()
    if kind == "ok" or (kind.startswith("until") and ctx.attempt >= int(kind[len("until"):])):
        return
    errors = {"timeout": TimeoutError("upstream slow"), "reset": ConnectionResetError("peer reset"),
              "value": ValueError("bad input"), "unicode": UnicodeError("bad bytes"),
              "runtime": RuntimeError("flaky"), "marked": GoneForGood("account closed"),
              "permanent": upnext.Permanent(KeyError("gone"))}
    if kind.startswith("after"):
        raise upnext.Retry(after=float(kind[len("after"):]))
    raise errors.get(kind, RuntimeError(kind))


@worker.task(retries=2, retry_delay=0, retry_on=(TimeoutError, ConnectionError))
def only_network(kind: str) -> str:
    _raise(kind)
    return "done"


@worker.task(retries=2, retry_delay=0, no_retry_on=(ValueError,))
def never_value(kind: str) -> str:
    _raise(kind)
    return "done"


@worker.task(executor="process", retries=2, retry_delay=0, retry_on=(TimeoutError, ConnectionError))
def only_network_in_child(kind: str) -> str:
    _raise(kind)
    return "done"


@worker.task(retries=3, retry_delay=0)
def raises(kind: str) -> str:
    _raise(kind)
    return "done"


@worker.task(executor="process", retries=3, retry_delay=0)
def raises_in_child(kind: str) -> str:
    _raise(kind)
    return "done"


@worker.task(retries=0)
def asks_retry_without_retries() -> None:
    raise upnext.Retry(after=1)


@worker.task(executor="process", retries=0)
def asks_retry_without_retries_in_child() -> None:
    raise upnext.Retry(after=1)


@worker.task(retries=1, retry_delay=1000, retry_backoff=1)
def jittered() -> None:
    raise RuntimeError("down")


@worker.task(retries=1, retry_delay=1000, retry_backoff=1, retry_jitter=False, retry_max_delay=500)
def capped() -> None:
    raise RuntimeError("down")
