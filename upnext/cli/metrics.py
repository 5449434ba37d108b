"""``upnext-gevent metrics --bind 127.0.0.1:9808``: serve ``/metrics`` for Prometheus with gevent's
WSGI server (the entry point has monkey-patched already). Every scrape reads Redis afresh
(upnext/metrics.py); the process keeps no state, so it can run anywhere that reaches Redis.
"""

from __future__ import annotations

import click

from upnext.cli.common import queue_for
from upnext.metrics import registry_for

DEFAULT_BIND = "127.0.0.1:9808"


def parse_bind(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (e.g. {DEFAULT_BIND})", param_hint="--bind")
    return host.strip("[]") or "0.0.0.0", int(port)


@click.command()
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="HOST:PORT to serve /metrics on.")
@click.option("--prefix", default=None, help="Key prefix (default UPNEXT_PREFIX or 'upnext').")
@click.option("--redis-url", default=None, help="Redis URL (default UPNEXT_REDIS_URL).")
def metrics(bind: str, redis_url: str | None, prefix: str | None) -> None:
    """Serve Prometheus metrics (jobs, run time, queue depth and age, workers) on /metrics."""
    address = parse_bind(bind)
    registry = registry_for(queue_for(redis_url, prefix))  # first: it names the extra when it is missing
    from gevent.pywsgi import WSGIServer
    from prometheus_client import make_wsgi_app

    server = WSGIServer(address, make_wsgi_app(registry), log=None)
    try:
        server.start()  # binds now: a taken port is an error here, before we say we serve
    except OSError as exc:
        raise click.ClickException(f"cannot serve metrics on --bind {bind}: {exc}") from None
    click.echo(f"serving Prometheus metrics on http://{bind}/metrics", err=True)
    server.serve_forever()
