"""Tasks the ops CLI tests call by name: a signature to check `call --kwargs` against, a task
that fails with a long error, and a slow one."""

import time

import upnext

worker = upnext.Worker("test-cli")


@worker.task
def import_csv(rows: int, sep: str = ",", *, strict: bool = False) -> int:
    return rows


@worker.task
def takes_anything(**options: object) -> int:
    return len(options)


@worker.task
def fails(message: str) -> None:
    raise ValueError(message)


@worker.task
def sleeps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
