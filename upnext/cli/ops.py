"""Operator subcommands: list, call, failed, retry, purge, cancel (status, show, pause, resume and the cron
group have modules of their own).

Each needs only the Redis URL (``--redis-url`` or UPNEXT_REDIS_URL) and prints a readable
table, or JSON with ``--json``.

Exit codes: 0 done (``call --wait``: the job completed); 1 the job failed or was cancelled, or
the command could not do what it was asked (Redis unreachable, a bad setting, an unknown
function or job, a retry or cancel refused), one ``Error:`` line on stderr; 2 bad usage (an
option, or ``--kwargs`` the function does not take); 4 ``call --wait`` timed out (the job goes
on; its id was printed first). 3 is the run form's "worker refused to start".
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from typing import Any

import click
import redis

from upnext import config
from upnext.cli.acl import acl
from upnext.cli.bulk import bulk_options, check_target, run_bulk
from upnext.cli.common import REDIS_URL, check_call, connection_options, queue_for, require_known, table, utc_time
from upnext.cli.cron import cron
from upnext.cli.dashboard import dashboard
from upnext.cli.jobs import jobs
from upnext.cli.metrics import metrics
from upnext.cli.pause import pause, resume
from upnext.cli.show import show
from upnext.cli.stats import stats
from upnext.cli.status import status
from upnext.errors import ConfigError, JobNotFound, QueueFull, TaskExecutionError
from upnext.future import Future
from upnext.job import check_function_name, dumps, function_of
from upnext.store.admin import Admin
from upnext.store.records import NewJob
from upnext.task import build_job

EXIT_FAILED = 1
EXIT_WAIT_TIMEOUT = 4


class OpsGroup(click.Group):
    """A bad setting or an unreachable Redis is one line naming it and exit 1, from every command
    (a traceback of redis-py's connection code says less than the URL it could not reach)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            url = config.mask_url(ctx.meta.get(REDIS_URL, "the Redis URL"))
            raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from None
        except redis.exceptions.NoPermissionError as exc:  # an ACL narrower than `upnext-gevent acl` prints
            url = config.mask_url(ctx.meta.get(REDIS_URL, "the Redis URL"))
            raise click.ClickException(f"Redis at {url} refused a command to this user: {exc} "
                                       "(`upnext-gevent acl` prints the rules upnext needs)") from None


@click.group(cls=OpsGroup, context_settings={"help_option_names": ["-h", "--help"]})
def ops() -> None:
    """Inspect and operate the queues (needs only the Redis URL)."""


ops.add_command(acl)
ops.add_command(jobs)
ops.add_command(show)
ops.add_command(status)
ops.add_command(stats)
ops.add_command(metrics)
ops.add_command(pause)
ops.add_command(resume)
ops.add_command(cron)
ops.add_command(dashboard)


@ops.command("list")
@connection_options
def list_functions(redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Functions registered by workers, with their options."""
    functions = Admin(queue_for(redis_url, prefix)).functions()
    if as_json:
        click.echo(json.dumps(functions, indent=2))
        return
    columns = ["kind", "retries", "timeout", "rate_limit", "max_concurrency", "executor"]
    click.echo(table(["function", *columns, "parameters"],
                      [[name, *(o.get(c) for c in columns), ", ".join(o.get("params") or [])]
                       for name, o in functions.items()])
               or "no functions registered")


@ops.command()
@click.argument("function")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--wait", "wait_s", type=float, default=None, is_flag=False, flag_value=60.0,
              help="Wait for the result (seconds, default 60 when given without a value).")
@connection_options
def call(function: str, kwargs_json: str, wait_s: float | None, redis_url: str | None, prefix: str | None,
         as_json: bool) -> None:
    """Submit FUNCTION with --kwargs; print its job id (and its result with --wait).

    Exit 0 when submitted (with --wait: completed), 1 failed or cancelled, 4 --wait timed out."""
    kwargs = _kwargs(function, kwargs_json)
    queue = queue_for(redis_url, prefix)
    options = Admin(queue).functions().get(function)
    if options is None:  # nothing would run it, and its parameters are unknown
        raise click.ClickException(f"no worker has registered a function named {function!r} (see `list`)")
    check_call(function, options.get("params"), kwargs)
    new: NewJob = build_job(function, "[]", dumps(kwargs))
    try:
        future = Future(queue.enqueue(new), queue)
    except QueueFull as exc:  # the cap its workers registered (max_queued)
        raise click.ClickException(str(exc)) from None
    out: dict[str, Any] = {"job_id": future.job_id}
    if not as_json:  # first, so a wait that times out still leaves the id on the screen
        click.echo(f"job_id: {future.job_id}")
    if wait_s is None:
        _emit(out, as_json)
        return
    try:
        result = future.result(wait_s)
        out.update(status=result.status, value=result.value)
    except TaskExecutionError as exc:
        out.update(status=exc.status, error=exc.error)
    except TimeoutError:
        out.update(status=future.status())
        _emit(out, as_json)
        click.echo(f"Error: job {future.job_id} did not finish within {wait_s:g}s (status: {out['status']}); "
                   "it was not cancelled", err=True)
        sys.exit(EXIT_WAIT_TIMEOUT)
    _emit(out, as_json)
    if out["status"] != "complete":
        sys.exit(EXIT_FAILED)


def _kwargs(function: str, kwargs_json: str) -> dict[str, Any]:
    try:
        check_function_name(function)
        kwargs = json.loads(kwargs_json)
    except (ValueError, json.JSONDecodeError) as exc:
        raise click.BadParameter(str(exc)) from None
    if not isinstance(kwargs, dict):
        raise click.BadParameter(f"--kwargs must be a JSON object, got {kwargs_json!r}")
    return kwargs


def _emit(out: dict[str, Any], as_json: bool) -> None:
    """One JSON object, or ``key: value`` lines after the job id (printed first, at submit)."""
    if as_json:
        click.echo(json.dumps(out))
        return
    for key, value in out.items():
        if key != "job_id":
            click.echo(f"{key}: {value}")


@ops.command()
@click.option("--function", default=None, help="Only this function.")
@click.option("--limit", default=50, show_default=True)
@connection_options
def failed(function: str | None, limit: int, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Failed jobs, newest first, each with its whole error (times in UTC)."""
    admin = Admin(queue_for(redis_url, prefix))
    if function is not None:
        require_known(admin.queue, function)
    jobs = admin.failed(function, limit)
    if as_json:
        click.echo(json.dumps(jobs, indent=2))
        return
    if not jobs:
        click.echo("no failed jobs")
        return
    header, *rows = table(["job id", "attempts", "failed at (UTC)"],
                           [[j["job_id"], j["attempts"], utc_time(j["failed_at"])] for j in jobs]).splitlines()
    click.echo(header)
    width = max(shutil.get_terminal_size((100, 24)).columns - 4, 40)
    for row, job in zip(rows, jobs):  # the error on its own lines: cut, it would lose what matters
        click.echo(row)
        for line in (job["error"] or "").splitlines():
            click.echo(textwrap.fill(line, width, initial_indent="    ", subsequent_indent="    ",
                                     break_long_words=False, break_on_hyphens=False))


@ops.command()
@click.argument("job_id", required=False)
@bulk_options
@connection_options
def retry(job_id: str | None, function: str | None, since: str | None, error_text: str | None, yes: bool,
          redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Run a failed or cancelled job again, under the same id; or with --function, every failed job
    of it that matches --since and --error (counted, and confirmed unless --yes)."""
    check_target(job_id, function, since, error_text)
    if function:
        run_bulk("retry", function, since, error_text, yes, redis_url, prefix, as_json)
        return
    assert job_id is not None
    outcome = Admin(queue_for(redis_url, prefix)).retry(_checked(job_id))
    _report({"job_id": job_id, "outcome": outcome}, as_json, ok=outcome == "queued")


@ops.command()
@click.argument("function")
@connection_options
def purge(function: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Cancel every waiting (queued or scheduled) job of FUNCTION; running jobs are left alone."""
    admin = Admin(queue_for(redis_url, prefix))
    require_known(admin.queue, function)
    count = admin.purge(function)
    _report({"function": function, "cancelled": count}, as_json, ok=True)


@ops.command()
@click.argument("job_id", required=False)
@bulk_options
@connection_options
def cancel(job_id: str | None, function: str | None, since: str | None, error_text: str | None, yes: bool,
           redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Cancel a job: a waiting one never runs, a running one is told (or its process killed); or
    with --function, every job of it waiting to be retried that matches --since and --error."""
    check_target(job_id, function, since, error_text)
    if function:
        run_bulk("cancel", function, since, error_text, yes, redis_url, prefix, as_json)
        return
    assert job_id is not None
    outcome, previous = queue_for(redis_url, prefix).cancel(_checked(job_id))
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


