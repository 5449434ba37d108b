"""The ``cron add|remove|list`` commands: run-time crons (store/crons.py), with the Redis URL only.

A run-time cron runs a task function the app declares, by name: ``add`` refuses a function no
worker has registered, naming it, and arguments that do not fit its registered signature.
Serving workers pick a new or removed schedule up within a tick or two, without a restart, and
fire it exactly once per instant like a declared ``@worker.cron``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from upnext.cli.common import check_call, connection_options, queue_for, table, utc_time
from upnext.cron import CronDef, MissedRunPolicy, Schedule
from upnext.errors import ConfigError
from upnext.job import dumps
from upnext.store.admin import Admin
from upnext.store.crons import RuntimeCrons, listing
from upnext.worker import check_cron_name


@click.group()
def cron() -> None:
    """Add, remove and list crons (run-time ones are stored in Redis)."""


@cron.command("add")
@click.argument("name")
@click.argument("schedule")
@click.argument("function")
@click.option("--tz", default=None, help="Time zone of the schedule (IANA name, default UTC).")
@click.option("--args", "args_json", default="[]", help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments, a JSON object.")
@click.option("--missed-run-policy", type=click.Choice([p.value for p in MissedRunPolicy]), default="latest_only")
@click.option("--max-catch-up-seconds", type=float, default=None)
@click.option("--overlap/--no-overlap", default=True, help="--no-overlap: skip an instant while the last run goes on.")
@connection_options
def add(name: str, schedule: str, function: str, tz: str | None, args_json: str, kwargs_json: str,
        missed_run_policy: str, max_catch_up_seconds: float | None, overlap: bool, redis_url: str | None,
        prefix: str | None, as_json: bool) -> None:
    """Run FUNCTION (a task the app declares) at each instant of SCHEDULE, as the cron NAME."""
    where = f"cron {check_cron_name(name)!r}"
    args, kwargs = _json(args_json, list, "--args"), _json(kwargs_json, dict, "--kwargs")
    queue = queue_for(redis_url, prefix)
    registered = Admin(queue).functions()
    if registered.get(name, {}).get("kind") == "cron":
        raise click.ClickException(f"{where}: a declared cron has that name (see `cron list`); choose another")
    options = registered.get(function)
    if options is None:
        raise click.ClickException(f"{where}: unknown function {function!r}: no worker registered it (a run-time "
                                   "cron runs a task the app declares; see `list`)")
    check_call(function, options.get("params"), kwargs, args, where)
    try:
        parsed = Schedule(schedule, tz)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(f"{where}: {exc}") from None
    definition = CronDef(parsed, MissedRunPolicy(missed_run_policy), max_catch_up_seconds, function, overlap,
                         dumps(args), dumps(kwargs))
    new = RuntimeCrons(queue).add(name, definition.record())
    if as_json:
        click.echo(json.dumps({"cron": name, "added": new, "replaced": not new, **definition.record()}))
    else:
        click.echo(f"cron {name}: {'added' if new else 'replaced'} ({function} at {parsed.spec!r})")


@cron.command("remove")
@click.argument("name")
@connection_options
def remove(name: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Remove the run-time cron NAME (declared crons live in the app's code)."""
    old = RuntimeCrons(queue_for(redis_url, prefix)).remove(check_cron_name(name))
    if as_json:
        click.echo(json.dumps({"cron": name, "removed": old is not None}))
    elif old is None:
        raise click.ClickException(f"no run-time cron named {name!r} (see `cron list`)")
    else:
        click.echo(f"cron {name}: removed")


@cron.command("list")
@connection_options
def list_crons(redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Every cron: declared ones (registered by workers) and run-time ones, with their cursors."""
    rows = listing(queue_for(redis_url, prefix))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no crons")
        return
    click.echo(table(["CRON", "SOURCE", "FUNCTION", "SCHEDULE", "NEXT (UTC)", "LAST JOB", "SKIPPED"],
                     [[r["cron"], r["source"], r["function"], r["schedule"],
                       utc_time(r["next_at"]) if r["next_at"] else "-", r["last_job"] or "-", r["skipped"]]
                      for r in rows]))


def _json(text: str, kind: type, option: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=option) from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"expected a JSON {'list' if kind is list else 'object'}", param_hint=option)
    return value
