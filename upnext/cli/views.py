"""What the CLI views (``show``, ``jobs``) share for privacy: the ``-c`` option naming the config
file whose ``redact(view) -> view`` hook rewrites every view before it is printed.

A task registered with ``hide_args=True`` already shows its arguments and result as hidden
(store/jobdetail.py); ``redact`` is for the rest (an email inside an error message, a field of a
result): it receives the view as a dict (what ``--json`` prints) and returns the dict to print.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from upnext import config

View = dict[str, Any]


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-c", "--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="Config file whose redact(view) hook rewrites what is printed.")(command)


def redactor(config_path: str | None) -> Callable[[View], View]:
    """The config file's ``redact`` hook, checked; the identity when there is no file or no hook."""
    if config_path is None:
        return lambda view: view
    _, hooks = config.load_file(config_path)
    hook = hooks.get("redact")
    if hook is None:
        return lambda view: view

    def redact(view: View) -> View:
        out = hook(dict(view))
        if not isinstance(out, dict):
            raise click.ClickException(f"redact in config file {config_path!r} must return a dict, "
                                       f"got {type(out).__name__}")
        return out
    return redact
