"""Hub-blocking detection: gevent's monitor thread reports a greenlet that held the CPU
too long, and we log it with the job it was running, so users know to move that task to
``executor="process"``.
"""

from __future__ import annotations

import warnings
from typing import Any

import gevent
import gevent.events
import structlog

log = structlog.get_logger("upnext")


def watch_hub(max_blocking_s: float) -> None:
    """Start gevent's monitor thread for this process's hub and log blocking events."""
    # Its memory monitor needs psutil, which we don't depend on; we don't use that part.
    warnings.filterwarnings("ignore", message="Unable to monitor memory usage")
    gevent.config.max_blocking_time = max_blocking_s
    gevent.config.monitor_thread = True
    if _report not in gevent.events.subscribers:
        gevent.events.subscribers.append(_report)
    gevent.get_hub().start_periodic_monitoring_thread()


def _report(event: Any) -> None:
    if not isinstance(event, gevent.events.EventLoopBlocked):
        return
    name = getattr(event.greenlet, "name", "") or ""
    job_id = name[len("job:"):] if name.startswith("job:") else None
    log.warning("hub_blocked", job_id=job_id, greenlet=name or repr(event.greenlet),
                blocked_s=round(event.blocking_time, 3),
                advice="move CPU-bound work to executor='process'" if job_id else None)
