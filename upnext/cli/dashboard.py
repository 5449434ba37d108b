"""``upnext-gevent dashboard``: serve the dashboard (upnext/dashboard) with gevent's WSGI server,
one process for any number of open pages (the entry point has monkey-patched already).

Loopback by default; any other address needs ``--auth USER:PASSWORD`` (or
UPNEXT_DASHBOARD_AUTH) unless ``--no-auth`` says an open dashboard is meant: without either the
command refuses to start and says why.
"""

from __future__ import annotations

import ipaddress
import os

import click

from upnext.cli.common import queue_for
from upnext.cli.metrics import parse_bind
from upnext.cli.views import config_option, redactor

DEFAULT_BIND = "127.0.0.1:8080"
AUTH_ENV = "UPNEXT_DASHBOARD_AUTH"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _auth(bind: str, host: str, auth: str | None, no_auth: bool) -> tuple[str, str] | None:
    from upnext.dashboard.security import parse_auth

    auth = auth or os.environ.get(AUTH_ENV) or None
    if auth and no_auth:
        raise click.UsageError("--auth and --no-auth contradict each other: give one")
    if auth:
        try:
            return parse_auth(auth)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--auth") from None
    if not no_auth and not is_loopback(host):
        raise click.UsageError(f"--bind {bind} is not a loopback address: anyone who reaches it could retry, "
                               f"cancel and purge jobs. Give --auth USER:PASSWORD (or {AUTH_ENV}), or --no-auth "
                               "if something in front of it checks who comes in")
    return None


@click.command()
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="HOST:PORT to serve the dashboard on.")
@click.option("--redis-url", default=None, help="Redis URL (default UPNEXT_REDIS_URL).")
@click.option("--prefix", default=None, help="Key prefix (default UPNEXT_PREFIX or 'upnext').")
@click.option("--read-only", is_flag=True, help="No actions: no retry, cancel, purge, pause or resume.")
@click.option("--auth", default=None, help=f"USER:PASSWORD for HTTP Basic auth (default {AUTH_ENV}).")
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback --bind without auth (you protect it).")
@config_option
def dashboard(bind: str, redis_url: str | None, prefix: str | None, read_only: bool, auth: str | None,
              no_auth: bool, config_path: str | None) -> None:
    """Serve the web dashboard: pages, the JSON API under /api/ and /metrics."""
    host, port = parse_bind(bind)
    credentials = _auth(bind, host, auth, no_auth)
    from upnext.dashboard.app import Dashboard  # after the checks: it names the missing extra

    app = Dashboard(queue_for(redis_url, prefix), read_only=read_only, auth=credentials,
                    redact=redactor(config_path))
    from gevent.pywsgi import WSGIServer

    server = WSGIServer((host, port), app, log=None)
    try:
        server.start()  # binds now: a taken port is an error here, before we say we serve
    except OSError as exc:
        raise click.ClickException(f"cannot serve the dashboard on --bind {bind}: {exc}") from None
    mode = " (read-only)" if read_only else ""
    click.echo(f"serving the upnext dashboard{mode} on http://{bind}/", err=True)
    server.serve_forever()
