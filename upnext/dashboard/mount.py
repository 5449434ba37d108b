"""Mounting the dashboard inside a Django project, behind the project's own login: ``django_view``
turns the WSGI app into a Django view (Flask needs nothing: werkzeug's DispatcherMiddleware
mounts a WSGI app as it is). The dashboard keeps its own CSRF check, so the view is exempt from
Django's; wrap it in ``staff_member_required`` (or any decorator) to decide who may see it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from upnext.dashboard.app import Dashboard


def django_view(app: Dashboard) -> Callable[..., Any]:
    """A view for ``path("upnext/", view)`` and ``path("upnext/<path:path>", view)``: it answers
    below the URL it is routed at, with links and cookies scoped there."""
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def view(request: Any, path: str = "") -> Any:
        body = request.body  # read once here: Django may have consumed the stream
        mount = request.path[: len(request.path) - len(path)].rstrip("/")
        environ = {**request.environ, "SCRIPT_NAME": mount, "PATH_INFO": "/" + path,
                   "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started.update(status=int(status.split(" ", 1)[0]), headers=headers)

        content = b"".join(app(environ, start_response))
        response = HttpResponse(content, status=started["status"])
        for name, value in started["headers"]:
            if name.lower() == "set-cookie":
                response.cookies.load(value)  # Django sends its cookies from here, not from the headers
            elif name.lower() != "content-length":
                response[name] = value
        return response

    return view
