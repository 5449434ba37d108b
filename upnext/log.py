"""structlog setup for worker processes: console lines or one JSON object per line, on stderr.

Standard-library logging (redis, gevent, the user's own modules) goes through the same renderer
at the same level, so ``--log-format json`` never mixes in a plain-text line; its ``extra=``
fields are kept. Every line logged while a job runs (structlog or stdlib, in a greenlet or a
pool child) carries the job's job_id, function, attempt and worker. Called by the CLI, ``upnext.run``
and pool children; importing this module configures nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from upnext.context import current_or_none

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup(level: str = "info", fmt: str = "console") -> None:
    """Configure structlog and the root stdlib logger; ``level`` and ``fmt`` as validated by config."""
    number = LEVELS[level]
    shared: list[Any] = [structlog.contextvars.merge_contextvars, job_fields, structlog.processors.add_log_level,
                         structlog.processors.TimeStamper(fmt="iso")]
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    # ConsoleRenderer formats exceptions itself; JSON needs them rendered to a string first.
    finish = [structlog.processors.format_exc_info, renderer] if fmt == "json" else [renderer]
    structlog.configure(
        processors=[*shared, *finish],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),  # one write per line: processes don't interleave
        cache_logger_on_first_use=True,
    )
    _route_stdlib(number, shared, finish)


def job_fields(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Add the running job's fields to a line logged inside it. The job context is already a
    per-greenlet (and per-child) context variable, so this costs the job nothing until it logs."""
    ctx = current_or_none()
    if ctx is not None:
        event.setdefault("job_id", ctx.job_id)
        event.setdefault("function", ctx.function)
        event.setdefault("attempt", ctx.attempt)
        if ctx.worker:
            event.setdefault("worker", ctx.worker)
    return event


def _route_stdlib(number: int, shared: list[Any], finish: list[Any]) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        # ExtraAdder keeps the fields of ``log.info(..., extra={...})``.
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
