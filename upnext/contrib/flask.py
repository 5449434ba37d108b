"""Flask: run a task inside the app's application context.

    from upnext.contrib.flask import with_app_context

    @worker.task
    @with_app_context(app)
    def send_welcome(user_id: int): ...   # current_app, db sessions, config all work here

``with_app_context`` takes the app in one of four forms:

- the Flask app itself: ``with_app_context(app)``;
- an app factory, a callable taking no arguments: ``with_app_context(create_app)``;
- an import string naming the app: ``with_app_context("shop.web:app")``;
- an import string naming a factory, called with no arguments: ``with_app_context("shop.web:create_app()")``.

A factory or a string is resolved on the task's first run, not at import (so the tasks module
need not import the app module, which often imports the tasks), and the app is kept: the
factory is called once per process.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Callable
from typing import Any

# "package.module:name" or "package.module:name()": a dotted module, a colon, an identifier.
_IMPORT_STRING = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<name>[A-Za-z_]\w*)(?P<call>\(\))?$")


def with_app_context(app: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a task function so each run happens inside ``app.app_context()``; ``app`` is an
    app, a zero-argument factory, or an import string (see the module docstring)."""
    source = _AppSource(app)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run_in_context(*args: Any, **kwargs: Any) -> Any:
            with source.app().app_context():
                return fn(*args, **kwargs)
        return run_in_context
    return decorate


def _is_app(value: Any) -> bool:
    # A Flask app is callable too (WSGI), so "callable" alone cannot tell an app from a factory.
    return hasattr(value, "app_context")


class _AppSource:
    """Where the app comes from; checked at decoration, resolved once on first use."""

    def __init__(self, given: Any):
        self._given = given
        self._app: Any = given if _is_app(given) else None
        self._lock = threading.Lock()
        self._target = _IMPORT_STRING.match(given) if isinstance(given, str) else None
        if isinstance(given, str):
            if self._target is None:
                raise ValueError(f"with_app_context({given!r}): expected 'package.module:app' or "
                                 "'package.module:create_app()'")
        elif self._app is None and not callable(given):
            raise TypeError(f"with_app_context({given!r}): expected a Flask app, a factory taking no "
                            "arguments, or an import string 'package.module:app'")

    def app(self) -> Any:
        if self._app is None:
            with self._lock:  # two first runs at once must not build two apps
                if self._app is None:
                    self._app = self._resolve()
        return self._app

    def _resolve(self) -> Any:
        given = self._given
        app = _import(given, self._target) if self._target is not None else given()
        if not _is_app(app):
            what = given if isinstance(given, str) else getattr(given, "__qualname__", repr(given))
            raise TypeError(f"with_app_context: {what} gave {app!r}, which is not a Flask app "
                            "(it has no app_context())")
        return app


def _import(target: str, found: re.Match[str]) -> Any:
    try:
        value = getattr(importlib.import_module(found["module"]), found["name"])
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"with_app_context({target!r}): cannot import it: {exc}") from exc
    return value() if found["call"] else value
