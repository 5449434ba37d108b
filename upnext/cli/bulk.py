"""``retry`` and ``cancel`` by filter instead of by id: ``retry --function F --since 1h --error
TEXT`` retries every failed job of F that failed within the hour and whose error mentions TEXT;
``cancel --function F ...`` cancels the jobs of F waiting for their next attempt. Both print how
many jobs match and ask before acting (``--yes`` skips the question), through store/bulk.py, the
same calls the dashboard's bulk buttons make.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from upnext.cli.common import queue_for, require_known
from upnext.cli.jobs import parse_since
from upnext.store import bulk


def bulk_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options; JOB_ID or --function, not both."""
    command = click.option("--yes", "-y", is_flag=True, help="With --function: act without asking.")(command)
    command = click.option("--error", "error_text", default=None,
                           help="With --function: only jobs whose error contains this text (any case).")(command)
    command = click.option("--since", default=None, help="With --function: only jobs within this long ago "
                           "(90s, 15m, 1h, 7d).")(command)
    return click.option("--function", default=None, help="Act on every matching job of this function "
                        "instead of one JOB_ID.")(command)


def check_target(job_id: str | None, function: str | None, since: str | None, error_text: str | None) -> None:
    if job_id and (function or since or error_text):
        raise click.UsageError("give JOB_ID or --function (with --since/--error), not both")
    if not job_id and not function:
        raise click.UsageError("give JOB_ID, or --function to act on every job that matches a filter")
    if not function and (since or error_text):
        raise click.UsageError("--since and --error filter the jobs of a --function: give it too")


def run_bulk(action: str, function: str, since: str | None, error_text: str | None, yes: bool,
             redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Count the matches, ask (unless --yes), act, report; exit 1 when a matched job was refused."""
    queue = require_known(queue_for(redis_url, prefix), function)
    chosen = bulk.Filter(function, parse_since(since) if since else None, error_text)
    matched, more = bulk.match(queue, action, chosen)
    what = "failed" if action == "retry" else "waiting to be retried"
    if not matched:
        click.echo(json.dumps({"action": action, "matched": 0, "done": 0}) if as_json
                   else f"no {what} job of {function} matches")
        return
    count = f"{len(matched)}{'+' if more else ''}"
    if not yes and not click.confirm(f"{action} {count} {what} job(s) of {function}?", err=True):
        raise click.ClickException(f"nothing done ({action} of {count} job(s) not confirmed; --yes skips asking)")
    outcome = bulk.apply(queue, action, chosen)
    if as_json:
        click.echo(json.dumps(outcome.to_dict()))
    else:
        click.echo(f"{action}: {outcome.done} of {len(outcome.matched)} job(s) of {function}"
                   + (" (more match: run it again)" if outcome.more else ""))
        for job_id, why in outcome.refused.items():
            click.echo(f"  {job_id}: refused ({why})")
    if outcome.refused:
        raise SystemExit(1)
