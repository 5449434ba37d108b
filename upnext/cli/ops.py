"""Operator subcommands: status, list, call, failed, retry, purge, cancel.

Each needs only the Redis URL (``--redis-url`` or UPNEXT_REDIS_URL) and prints a readable
table, or JSON with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from upnext import config
from upnext.cli.show import show
from upnext.cli.status import status
from upnext.errors import JobNotFound, TaskExecutionError
from upnext.future import Future
from upnext.job import check_function_name, dumps, function_of
from upnext.store.admin import Admin
from upnext.store.connection import connect
from upnext.store.queue import Queue
from upnext.store.records import NewJob
from upnext.task import build_job


def _connection(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(command)
    command = click.option("--prefix", default=None, help="Key prefix (default UPNEXT_PREFIX or 'upnext').")(command)
    return click.option("--redis-url", default=None, help="Redis URL (default UPNEXT_REDIS_URL).")(command)


def _queue(redis_url: str | None, prefix: str | None) -> Queue:
    settings = config.resolve(cli=config.parse_values({k: v for k, v in (("redis_url", redis_url),
                                                                         ("prefix", prefix)) if v}, "command line"),
                              env=config.from_env())
    return Queue(connect(settings.redis_url), settings.prefix, job_ttl_s=settings.job_ttl_seconds,
                 stream_maxlen=settings.stream_maxlen)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def ops() -> None:
    """Inspect and operate the queues (needs only the Redis URL)."""


ops.add_command(show)
ops.add_command(status)


@ops.command("list")
@_connection
def list_functions(redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Functions registered by workers, with their options."""
    functions = Admin(_queue(redis_url, prefix)).functions()
    if as_json:
        click.echo(json.dumps(functions, indent=2))
        return
    columns = ["kind", "retries", "timeout", "rate_limit", "max_concurrency", "executor"]
    click.echo(_table(["function", *columns], [[name, *(o.get(c) for c in columns)] for name, o in functions.items()])
               or "no functions registered")


@ops.command()
@click.argument("function")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--wait", "wait_s", type=float, default=None, is_flag=False, flag_value=60.0,
              help="Wait for the result (seconds, default 60 when given without a value).")
@_connection
def call(function: str, kwargs_json: str, wait_s: float | None, redis_url: str | None, prefix: str | None,
         as_json: bool) -> None:
    """Submit FUNCTION with --kwargs; print its job id (and its result with --wait)."""
    try:
        check_function_name(function)
        kwargs = json.loads(kwargs_json)
    except (ValueError, json.JSONDecodeError) as exc:
        raise click.BadParameter(str(exc)) from None
    if not isinstance(kwargs, dict):
        raise click.BadParameter(f"--kwargs must be a JSON object, got {kwargs_json!r}")
    queue = _queue(redis_url, prefix)
    if function not in Admin(queue).functions():
        raise click.ClickException(f"no worker has registered a function named {function!r} (see `list`)")
    new: NewJob = build_job(function, "[]", dumps(kwargs))
    future = Future(queue.enqueue(new), queue)
    out: dict[str, Any] = {"job_id": future.job_id}
    if wait_s is not None:
        try:
            result = future.result(wait_s)
            out.update(status=result.status, value=result.value)
        except TaskExecutionError as exc:
            out.update(status=exc.status, error=exc.error)
    click.echo(json.dumps(out) if as_json else "\n".join(f"{k}: {v}" for k, v in out.items()))


@ops.command()
@click.option("--function", default=None, help="Only this function.")
@click.option("--limit", default=50, show_default=True)
@_connection
def failed(function: str | None, limit: int, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Failed jobs, newest first, with their errors."""
    jobs = Admin(_queue(redis_url, prefix)).failed(function, limit)
    if as_json:
        click.echo(json.dumps(jobs, indent=2))
        return
    click.echo(_table(["job id", "attempts", "failed at", "error"],
                      [[j["job_id"], j["attempts"], _when(j["failed_at"]), j["error"][:80]] for j in jobs])
               or "no failed jobs")


@ops.command()
@click.argument("job_id")
@_connection
def retry(job_id: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Run a failed or cancelled job again, under the same id."""
    outcome = Admin(_queue(redis_url, prefix)).retry(_checked(job_id))
    _report({"job_id": job_id, "outcome": outcome}, as_json, ok=outcome == "queued")


@ops.command()
@click.argument("function")
@_connection
def purge(function: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Cancel every waiting (queued or scheduled) job of FUNCTION; running jobs are left alone."""
    count = Admin(_queue(redis_url, prefix)).purge(function)
    _report({"function": function, "cancelled": count}, as_json, ok=True)


@ops.command()
@click.argument("job_id")
@_connection
def cancel(job_id: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Cancel a job: a waiting one never runs, a running one is told (or its process killed)."""
    outcome, previous = _queue(redis_url, prefix).cancel(_checked(job_id))
    if outcome == "missing":
        raise click.ClickException(str(JobNotFound(job_id)))
    _report({"job_id": job_id, "outcome": outcome, "status_before": previous}, as_json, ok=outcome == "cancelled")


def _checked(job_id: str) -> str:
    try:
        function_of(job_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return job_id


def _report(out: dict[str, Any], as_json: bool, ok: bool) -> None:
    click.echo(json.dumps(out) if as_json else "  ".join(f"{k}: {v}" for k, v in out.items()))
    if not ok:
        raise SystemExit(1)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return ""
    cells = [[str("" if v is None else v) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def _when(instant: float) -> str:
    return datetime.fromtimestamp(instant, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
