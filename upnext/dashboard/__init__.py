"""The web dashboard (SPEC §10): ``make_app(...)`` returns a WSGI app with the pages, the JSON
API under ``/api/`` and ``/metrics``, served standalone by ``upnext-gevent dashboard`` or mounted
in a Flask or Django project behind its login. Needs the ``dashboard`` extra (Jinja2,
prometheus_client).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from upnext import config
from upnext.dashboard.app import Dashboard
from upnext.store.connection import connect
from upnext.store.queue import Queue

__all__ = ["Dashboard", "make_app"]


def make_app(redis_url: str | None = None, prefix: str | None = None, read_only: bool = False, *,
             auth: tuple[str, str] | None = None, secret: bytes | None = None,
             redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Dashboard:
    """The dashboard as a WSGI app. ``redis_url``/``prefix`` default to UPNEXT_REDIS_URL and
    UPNEXT_PREFIX; ``auth=(user, password)`` asks for HTTP Basic auth (a mounted app usually sits
    behind its host's login instead); ``secret`` signs the CSRF tokens (give the same one to
    every process that serves it; default: random per process); ``redact(view) -> view``
    rewrites every job view, as the CLI's hook does."""
    given = {k: v for k, v in (("redis_url", redis_url), ("prefix", prefix)) if v}
    settings = config.resolve(cli=config.parse_values(given, "make_app"), env=config.from_env())
    queue = Queue(connect(settings.redis_url), settings.prefix, job_ttl_s=settings.job_ttl_seconds,
                  stream_maxlen=settings.stream_maxlen, completed_ttl_s=settings.completed_ttl_seconds,
                  stats=settings.stats)
    return Dashboard(queue, read_only=read_only, auth=auth, secret=secret, redact=redact)
