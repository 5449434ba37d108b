"""The dashboard's WSGI app: routes, the security gate (auth, CSRF, read-only) and the answer of
each route (a page, its JSON under ``/api/``, an action, ``/metrics``, the two static files).
Routes call views.py and actions.py; they send no Redis command themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import structlog

from upnext.dashboard import actions, views
from upnext.dashboard.live import Snapshots
from upnext.dashboard.pages import Pages
from upnext.dashboard.security import BasicAuth, Csrf
from upnext.dashboard.web import HTTPError, Request, Response, error_response, json_response
from upnext.store.queue import Queue

log = structlog.get_logger("upnext.dashboard")
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
Handler = Callable[["Dashboard", Request, dict[str, str]], Any]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    page: str | None  # the template of a page; None: the handler answers JSON (or a Response)
    handler: Handler


def _route(path: str, page: str | None, handler: Handler) -> tuple[Route, ...]:
    """``/jobs/<job_id>`` as a page at that path and its JSON at ``/api`` + path (``/`` is /api/overview)."""
    regex = "^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) + "$"
    api = "^/api" + (re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) if path != "/" else "/overview") + "$"
    routes = [Route(re.compile(api), None, handler)]
    if page is not None:
        routes.append(Route(re.compile(regex), page, handler))
    return tuple(routes)


READS: tuple[Route, ...] = (  # answered from the snapshot shared by every viewer (Dashboard.shared)
    *_route("/", "overview.html", lambda d, r, a: {**views.overview(d.queue), **d.charts(wait=False)}),
    *_route("/functions", "functions.html", lambda d, r, a: views.functions(d.queue)),
    *_route("/functions/<name>", "function.html", lambda d, r, a: views.function(d.queue, a["name"])),
    *_route("/jobs", "jobs.html", lambda d, r, a: views.jobs(d.queue, r, d.redact)),
    *_route("/jobs/<job_id>", "job.html", lambda d, r, a: views.job(d.queue, a["job_id"], d.redact)),
    *_route("/failed", "failed.html", lambda d, r, a: views.failed(d.queue, r, d.redact)),
    *_route("/stuck", "stuck.html", lambda d, r, a: views.stuck(d.queue)),
    *_route("/workers", "workers.html", lambda d, r, a: views.workers(d.queue)),
    *_route("/search", "search.html", lambda d, r, a: views.search(d.queue, r, d.redact)),
    *_route("/stats", None, lambda d, r, a: d.charts()),
    *_route("/bulk/<action>", None, lambda d, r, a: actions.preview(d.queue, r, a["action"])),
)
WRITES: tuple[Route, ...] = (
    Route(re.compile(r"^/api/jobs/(?P<job_id>[^/]+)/(?P<action>retry|cancel)$"), None,
          lambda d, r, a: actions.job_action(d.queue, a["job_id"], a["action"])),
    Route(re.compile(r"^/api/functions/(?P<name>[^/]+)/(?P<action>pause|resume|purge)$"), None,
          lambda d, r, a: actions.function_action(d.queue, a["name"], a["action"])),
    Route(re.compile(r"^/api/bulk/(?P<action>retry|cancel)$"), None,
          lambda d, r, a: actions.bulk_apply(d.queue, r, a["action"])),
)


class Dashboard:
    """The WSGI app (``make_app`` builds it): call it with (environ, start_response)."""

    queue: Queue
    redact: Callable[[dict[str, Any]], dict[str, Any]]

    def __init__(self, queue: Queue, *, read_only: bool = False, auth: tuple[str, str] | None = None,
                 secret: bytes | None = None, redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 live_s: float = 1.0):
        self.queue = queue
        self.read_only = read_only
        self.auth = BasicAuth(*auth) if auth else None
        self.csrf = Csrf(secret)
        self.redact = redact or (lambda view: view)
        self.snapshots = Snapshots(live_s)
        self.pages = Pages()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.respond(request)
        except HTTPError as exc:
            response = error_response(request, exc.status, exc.message)
        except Exception as exc:  # a bug or Redis down: one page fails, the server goes on
            log.error("dashboard_request_failed", path=request.path, error=repr(exc), exc_info=True)
            response = error_response(request, 500, f"{request.path} failed: {exc!r}")
        return response(start_response)

    def respond(self, request: Request) -> Response:
        if self.auth is not None and not self.auth.allows(request):
            return Response(401, b"authentication required", "text/plain; charset=utf-8",
                            [("WWW-Authenticate", 'Basic realm="upnext dashboard", charset="UTF-8"')])
        if request.path.startswith("/static/"):
            return _static(request.path.removeprefix("/static/"))
        if request.path == "/metrics":
            return _metrics(self.queue)
        if request.method == "POST":
            return self._write(request)
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, f"{request.method} is not allowed on {request.path}")
        return self._read(request)

    def _read(self, request: Request) -> Response:
        for route in READS:
            found = route.pattern.match(request.path)
            if found:
                args = found.groupdict()
                value = self.shared(request, lambda: route.handler(self, request, args))  # noqa: B023
                if route.page is None:
                    return json_response(value)
                return self.pages.render(route.page, value, request, self)
        for route in WRITES:
            if route.pattern.match(request.path):
                raise HTTPError(405, f"{request.path} is an action: POST it (with the CSRF token)")
        raise HTTPError(404, f"no page or endpoint at {request.path}")

    def _write(self, request: Request) -> Response:
        for route in WRITES:
            found = route.pattern.match(request.path)
            if found:
                if self.read_only:
                    raise HTTPError(403, "the dashboard is read-only (--read-only): actions are off")
                if not self.csrf.allows(request):
                    raise HTTPError(403, "CSRF token missing or invalid: reload the page and try again")
                value = route.handler(self, request, found.groupdict())
                self.snapshots.clear(keep=("charts",))  # the charts lag by up to 10 s anyway
                log.info("dashboard_action", path=request.path)
                return json_response(value)
        raise HTTPError(405 if _is_read(request.path) else 404, f"POST is not allowed on {request.path}")

    def shared(self, request: Request, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A view's data from the snapshot every viewer of the same address shares (live.py)."""
        return dict(self.snapshots.get((request.path.removeprefix("/api").rstrip("/") or "/overview",
                                        tuple(sorted(request.query.items()))), load))

    def charts(self, wait: bool = True) -> dict[str, Any]:
        """The chart series change by the minute: read at most every 10 s for every viewer, in the
        background once there is a first value (live.Snapshots.get_or_refresh); the overview does
        not wait for the first either (``charts`` is None until it is read: the page says so)."""
        return {"charts": self.snapshots.get_or_refresh("charts", lambda: views.charts(self.queue), max_age_s=10.0,
                                                        wait=wait)}


def _is_read(path: str) -> bool:
    return any(route.pattern.match(path) for route in READS)


def _static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPError(404, f"no static file {name!r}")
    body = resources.files("upnext.dashboard").joinpath("static", name).read_bytes()
    return Response(200, body, STATIC[name], [("Cache-Control", "max-age=300")])


def _metrics(queue: Queue) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from upnext.metrics import registry_for

    return Response(200, generate_latest(registry_for(queue)), CONTENT_TYPE_LATEST)
