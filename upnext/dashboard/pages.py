"""Server-rendered pages: Jinja2 templates (autoescape on for every template, so a value from a
job, say ``<script>``, shows as text), with the helpers they format values with. Jinja2 is the
``dashboard`` extra: imported when the first dashboard is built.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from upnext.dashboard.charts import bars, seconds
from upnext.dashboard.security import Csrf
from upnext.dashboard.web import Request, Response
from upnext.errors import ConfigError

if TYPE_CHECKING:
    from upnext.dashboard.app import Dashboard

NAV = (("", "Overview"), ("/functions", "Functions"), ("/jobs", "Jobs"), ("/failed", "Failed"),
       ("/stuck", "Stuck"), ("/workers", "Workers"))


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError:
        raise ConfigError("the dashboard needs Jinja2: pip install 'upnext-gevent[dashboard]'") from None
    return jinja2


class Pages:
    def __init__(self) -> None:
        jinja2 = _jinja()
        self.env = jinja2.Environment(loader=jinja2.PackageLoader("upnext.dashboard", "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(when=when, ago=ago, seconds=seconds, pretty=pretty, percent=percent, q=quoted,
                                code=code_spans)
        self.env.globals.update(bars=bars, nav=NAV)

    def render(self, template: str, data: dict[str, Any], request: Request, app: Dashboard) -> Response:
        token, new = app.csrf.token_for(request)
        html = self.env.get_template(template).render(
            data=data, root=request.root, path=request.path, csrf_token=token, read_only=app.read_only,
            query=request.query, now=time.time())
        headers = [Csrf.cookie_header(token, request.root or "/")] if new else []
        return Response(200, html.encode(), headers=headers + [("Cache-Control", "no-store")])


def code_spans(text: object) -> Any:
    """A note written for the terminal (``see `failed```) with its backquoted words as <code>,
    everything else escaped (markupsafe comes with Jinja2)."""
    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def quoted(value: object) -> str:
    """A URL part; ``:`` stays as it is (job ids carry one), everything else is quoted."""
    return quote(str(value), safe=":")


def when(instant: float | None) -> str:
    """``14:02:11`` today, ``2026-12-01 14:02`` otherwise (UTC, as the CLI prints)."""
    if not isinstance(instant, (int, float)):
        return "-"
    moment = datetime.fromtimestamp(instant, tz=UTC)
    today = datetime.now(tz=UTC).date() == moment.date()
    return moment.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")


def ago(instant: float | None) -> str:
    if not isinstance(instant, (int, float)):
        return "never"
    delta = time.time() - instant
    if delta < 0:
        return f"in {-delta:.0f} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= size:
            return f"{delta / size:.0f} {unit} ago"
    return f"{delta:.1f} s ago"


def pretty(value: Any) -> str:
    """JSON as the user submitted it, indented when it is a structure."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return json.dumps(value, ensure_ascii=False, default=str)


def percent(progress: float | None) -> str:
    return f"{round((progress or 0) * 100, 1):g} %"
