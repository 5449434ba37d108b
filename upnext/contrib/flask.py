"""Flask: run a task inside the app's application context.

    from upnext.contrib.flask import with_app_context

    @worker.task
    @with_app_context(app)
    def send_welcome(user_id: int): ...   # current_app, db sessions, config all work here
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def with_app_context(app: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a task function so each run happens inside ``app.app_context()``."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run_in_context(*args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return fn(*args, **kwargs)
        return run_in_context
    return decorate
