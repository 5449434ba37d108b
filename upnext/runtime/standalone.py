"""``upnext.run(worker)``: serve a worker in this process until SIGINT/SIGTERM.

For scripts and notebooks; production runs use the CLI, which also monkey-patches first.
"""

from __future__ import annotations

import signal

from upnext import config
from upnext.runtime.serving import Runtime
from upnext.worker import Worker


def run(worker: Worker) -> int:
    """Serve ``worker`` here; the first SIGINT/SIGTERM drains gracefully, a second stops at once.

    Settings come from Worker(...) arguments and UPNEXT_* env. The caller is responsible for
    monkey-patching (``gevent.monkey.patch_all()``) before importing anything else.
    """
    import gevent

    from upnext import log

    settings = config.resolve(worker=worker.worker_args(), env=config.from_env())
    log.setup(settings.log_level, settings.log_format)
    runtime = Runtime(worker, settings)
    handlers = [gevent.signal_handler(sig, runtime.stop) for sig in (signal.SIGINT, signal.SIGTERM)]
    try:
        return runtime.serve()
    finally:
        for handler in handlers:
            handler.cancel()
