"""Tasks that return and raise whatever text they are given (as code points, so lone surrogates
can travel through JSON arguments), for the property-based test of bad data."""

import upnext

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("hostile", concurrency=10)


@worker.task
def echo(code_points: list[int]) -> str:
    return "".join(map(chr, code_points))


@worker.task
def shout(code_points: list[int]) -> None:
    raise ValueError("".join(map(chr, code_points)))


@worker.task
def ping(n: int) -> int:
    return n
