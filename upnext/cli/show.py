"""``upnext-gevent show JOB_ID``: one job's detail (status, arguments, result, error and traceback,
progress, logs, checkpoint, attempts, lineage), read from Redis alone, as text or ``--json``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from upnext.cli.common import connection_options, queue_for, utc_time
from upnext.cli.views import config_option, redactor
from upnext.errors import JobNotFound
from upnext.job import dumps, function_of
from upnext.store.jobdetail import HIDDEN, read_detail


@click.command()
@click.argument("job_id")
@connection_options
@config_option
def show(job_id: str, redis_url: str | None, prefix: str | None, as_json: bool, config_path: str | None) -> None:
    """Everything stored about JOB_ID: status, arguments, result, error, progress, logs, runs, lineage."""
    try:
        function_of(job_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="JOB_ID") from None
    redact = redactor(config_path)
    detail = read_detail(queue_for(redis_url, prefix), job_id)
    if detail is None:
        raise click.ClickException(str(JobNotFound(job_id)))
    view = redact(detail.to_dict())
    click.echo(json.dumps(view, indent=2, ensure_ascii=False) if as_json else as_text(view))


def as_text(view: dict[str, Any]) -> str:
    """The detail as aligned ``name  value`` lines, then the traceback, the runs, the children and
    the logs, indented. A field a redact hook removed prints as '-'."""
    view = {**_EMPTY_VIEW, **view}
    rows = [("job", view["job_id"]), ("function", view["function"]),
            ("status", view["status"] + (f" ({view['failure_reason']})" if view["failure_reason"] else "")),
            ("attempts", view["attempts"]), ("arguments", _call(view)),
            ("result", _result(view)),
            ("error", view["error"]), ("progress", _progress(view)),
            ("checkpoint", _checkpoint(view)), ("parent", view["parent_id"]),
            ("root", "itself" if view["root_id"] in (None, view["job_id"]) else view["root_id"]),
            ("key", view["key"]), ("worker", view["worker"]), ("priority", view["priority"]),
            *((name, _when(view[f"{name}_at"])) for name in ("enqueued", "expires", "started", "completed"))]
    lines = [f"{name:<11} {'-' if value is None or value == '' else value}" for name, value in rows]
    if view["traceback"]:
        lines += ["traceback", *_indented(view["traceback"].rstrip("\n").splitlines())]
    if view["runs"]:
        lines.append(f"runs ({len(view['runs'])})")
        lines += _indented(_run_line(run) for run in view["runs"])
    if view["children"]:
        lines.append(f"children ({len(view['children'])})")
        lines += _indented(view["children"])
    lines.append(f"logs ({len(view['logs'])})")
    lines += _indented(_log_line(entry) for entry in view["logs"])
    return "\n".join(lines)


_EMPTY_VIEW: dict[str, Any] = {
    "job_id": "-", "function": "-", "status": "-", "failure_reason": None, "attempts": None, "args": None,
    "kwargs": None, "result": None, "error": None, "progress": 0.0, "progress_message": "", "checkpoint": None,
    "checkpoint_at": None, "parent_id": None, "root_id": None, "key": None, "worker": None, "enqueued_at": None,
    "started_at": None, "completed_at": None, "expires_at": None, "priority": "normal", "traceback": None, "runs": [],
    "children": [], "logs": []}


def _run_line(run: dict[str, Any]) -> str:
    """``#2  retry  12:00:01 UTC -> 12:00:03 UTC (2.000s)  on worker-1  ValueError: ...``"""
    started, ended = run.get("started_at"), run.get("ended_at")
    took = f" ({ended - started:.3f}s)" if isinstance(started, float) and isinstance(ended, float) else ""
    parts = [f"#{run.get('attempt')}", str(run.get("outcome")), f"{_when(started)} -> {_when(ended) or 'now'}{took}"]
    if run.get("worker"):
        parts.append(f"on {run['worker']}")
    if run.get("error"):
        parts.append(str(run["error"]).splitlines()[0])
    return "  ".join(parts)


def _call(view: dict[str, Any]) -> str:
    if view["args"] == HIDDEN or view["kwargs"] == HIDDEN:
        return f"{view['function']}({HIDDEN})"
    args = view["args"] if isinstance(view["args"], list) else []
    kwargs = view["kwargs"] if isinstance(view["kwargs"], dict) else {}
    shown = [dumps(a) for a in args] + [f"{k}={dumps(v)}" for k, v in kwargs.items()]
    return f"{view['function']}({', '.join(shown)})"


def _result(view: dict[str, Any]) -> str | None:
    if view["status"] != "complete":
        return None
    return HIDDEN if view["result"] == HIDDEN else dumps(view["result"])


def _progress(view: dict[str, Any]) -> str:
    percent = f"{round(view['progress'] * 100, 1):g} %"
    return f"{percent}  {view['progress_message']}" if view["progress_message"] else percent


def _checkpoint(view: dict[str, Any]) -> str | None:
    if view["checkpoint"] is None:
        return None
    return f"{dumps(view['checkpoint'])}  (at {_when(view['checkpoint_at'])})"


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    rest = " ".join(f"{k}={dumps(v)}" for k, v in entry.items() if k not in ("at", "level", "message"))
    return " ".join(str(part) for part in (_when(entry.get("at")), entry.get("level", ""), entry.get("message", ""),
                                           rest) if part)


def _indented(lines: Any) -> list[str]:
    return [f"  {line}" for line in lines]


def _when(instant: float | None) -> str | None:
    if not isinstance(instant, (int, float)):
        return None
    return f"{utc_time(instant)} UTC"
