"""The ``pause FUNCTION`` and ``resume FUNCTION`` commands (store/pause.py does the work).

A paused function's jobs stay queued and submits are still accepted; within about a second no
worker starts another of them, and running ones finish. A paused cron keeps its schedule: on
resume the instants it missed follow its missed_run_policy. Both commands are idempotent
(exit 0 when there was nothing to change); an unknown function is an error naming it.
"""

from __future__ import annotations

import json

import click

from upnext.cli.common import connection_options, queue_for, require_known, utc_time


@click.command()
@click.argument("function")
@connection_options
def pause(function: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Stop workers starting FUNCTION's jobs (queued ones wait, running ones finish)."""
    queue = require_known(queue_for(redis_url, prefix), function)
    changed = queue.pauses.pause(function)
    paused_at = queue.pauses.paused_at(function)
    if as_json:
        click.echo(json.dumps({"function": function, "paused": True, "changed": changed, "paused_at": paused_at}))
    elif changed:
        click.echo(f"{function}: paused (queued jobs wait, running ones finish; `resume {function}` to go on)")
    else:
        click.echo(f"{function}: paused already, since {_when(paused_at)}")


@click.command()
@click.argument("function")
@connection_options
def resume(function: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Let workers start FUNCTION's jobs again (a cron's missed instants follow its missed_run_policy)."""
    queue = require_known(queue_for(redis_url, prefix), function)
    changed = queue.pauses.resume(function)
    if as_json:
        click.echo(json.dumps({"function": function, "paused": False, "changed": changed}))
    else:
        click.echo(f"{function}: {'resumed' if changed else 'not paused'}")


def _when(instant: float | None) -> str:
    if instant is None:  # resumed by someone else between the two reads
        return "a moment ago"
    return f"{utc_time(instant)} UTC"
