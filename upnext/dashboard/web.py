"""The little of HTTP the dashboard needs, on bare WSGI: a parsed request and a response. No
framework, so the app mounts under any WSGI host (Flask's DispatcherMiddleware, a Django view)
and runs on gevent's server alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

MAX_FORM_BYTES = 64 * 1024
REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


class Request:
    """One request: method, path (below the mount point), query, form and cookies."""

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.root = str(environ.get("SCRIPT_NAME", "")).rstrip("/")  # the mount point: links start there
        self.path = str(environ.get("PATH_INFO", "")) or "/"
        self.query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        cookies: SimpleCookie = SimpleCookie(str(environ.get("HTTP_COOKIE", "")))
        self.cookies = {name: morsel.value for name, morsel in cookies.items()}
        self._form: dict[str, str] | None = None

    def header(self, name: str) -> str:
        return str(self.environ.get("HTTP_" + name.upper().replace("-", "_"), ""))

    @property
    def form(self) -> dict[str, str]:
        """A urlencoded body (the forms and the script post that), read once, size-capped."""
        if self._form is None:
            try:
                length = min(int(self.environ.get("CONTENT_LENGTH") or 0), MAX_FORM_BYTES)
            except ValueError:
                length = 0
            body = self.environ["wsgi.input"].read(length) if length > 0 else b""
            self._form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return self._form

    def arg(self, name: str) -> str | None:
        """A value from the form (POST) or the query; None when absent or blank."""
        value = (self.form.get(name) if self.method == "POST" else None) or self.query.get(name)
        return value or None

    def wants_json(self) -> bool:
        return self.path.startswith("/api/") or "application/json" in self.header("Accept")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, start_response: Any) -> Iterable[bytes]:
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                   ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
                   ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"),
                   *self.headers]
        start_response(f"{self.status} {REASONS.get(self.status, 'Unknown')}", headers)
        return [self.body]


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, ensure_ascii=False, default=str).encode(),
                    "application/json; charset=utf-8", [("Cache-Control", "no-store")])


def error_response(request: Request, status: int, message: str) -> Response:
    """A JSON ``{"error": ...}`` for the API and the script, plain text for a browser page."""
    if request.wants_json():
        return json_response({"error": message}, status)
    return Response(status, message.encode(), "text/plain; charset=utf-8")


def redirect(location: str) -> Response:
    return Response(302, b"", "text/plain; charset=utf-8", [("Location", location)])


class HTTPError(Exception):
    """Raised by a handler: answered with ``status`` and ``message`` (which names what is wrong)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
