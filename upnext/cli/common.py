"""What every operator subcommand shares: the Redis options, the queue they resolve to, tables."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from upnext import config
from upnext.job import signature_from
from upnext.store.admin import Admin
from upnext.store.connection import connect
from upnext.store.queue import Queue

REDIS_URL = "upnext.redis_url"  # click context meta: the URL in use, for the unreachable-Redis line


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--redis-url``, ``--prefix`` and ``--json``: the only inputs an ops command needs."""
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(command)
    command = click.option("--prefix", default=None, help="Key prefix (default UPNEXT_PREFIX or 'upnext').")(command)
    return click.option("--redis-url", default=None, help="Redis URL (default UPNEXT_REDIS_URL).")(command)


def queue_for(redis_url: str | None, prefix: str | None) -> Queue:
    """The queue the options name (flags over UPNEXT_* env), remembered for the error line."""
    given = {k: v for k, v in (("redis_url", redis_url), ("prefix", prefix)) if v}
    settings = config.resolve(cli=config.parse_values(given, "command line"), env=config.from_env())
    click.get_current_context().meta[REDIS_URL] = settings.redis_url
    return Queue(connect(settings.redis_url), settings.prefix, job_ttl_s=settings.job_ttl_seconds,
                 stream_maxlen=settings.stream_maxlen, completed_ttl_s=settings.completed_ttl_seconds,
                 stats=settings.stats)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, or "" when there are no rows (the caller says what is empty)."""
    if not rows:
        return ""
    cells = [[str("" if v is None else v) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def require_known(queue: Queue, function: str) -> Queue:
    """The queue, once ``function`` is one it knows: registered by a worker, holding jobs, or
    paused (a paused one can always be resumed)."""
    if not (Admin(queue).is_known(function) or queue.pauses.is_paused(function)):
        raise click.ClickException(f"unknown function {function!r}: no worker registered it and it has no jobs "
                                   "(see `list`)")
    return queue


def utc_time(instant: float) -> str:
    """A unix time as ``2026-12-01 14:02:11`` (UTC: the views say so in a header or a suffix)."""
    return datetime.fromtimestamp(instant, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def check_call(function: str, params: list[str] | None, kwargs: dict[str, Any], args: Sequence[Any] = (),
               where: str = "") -> None:
    """Refuse what submit() would refuse, from the parameters the workers registered (a worker of
    an older version registered none: then the call is accepted and a bad one fails when it runs).
    ``where`` starts the message (``cron 'nightly'``) when the call is not the command's own."""
    if params is None:
        return
    try:
        signature = signature_from(params)
    except (TypeError, ValueError):
        return
    lead = f"{where}: " if where else ""
    unknown = [k for k in kwargs if k not in signature.parameters]
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        close = difflib.get_close_matches(unknown[0], signature.parameters, n=1)  # before bind's "missing"
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise click.BadParameter(f"{lead}{function}(): got an unexpected keyword argument {unknown[0]!r}{hint}",
                                 param_hint="--kwargs")
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        hint = "--args/--kwargs" if args else "--kwargs"
        raise click.BadParameter(f"{lead}{function}(): {exc}", param_hint=hint) from None
