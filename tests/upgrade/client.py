"""A web process of any release, run with that release's python: submit jobs, or wait for them.

    python client.py APP submit '[{"task": "add", "args": [1, 2], "kwargs": {}, "delay": 0}]'
        prints the job ids (JSON list)
    python client.py APP wait TIMEOUT_S ID...
        prints {id: {"status", "value" or "error", "attempts", "logs"}} once every job ended or timed out

It uses only the public API every release has (``options().submit``, ``Future.result``, ``.logs``).
"""

import importlib
import json
import sys
import time
from types import ModuleType
from typing import Any

from upnext.errors import TaskExecutionError
from upnext.future import Future


def submit(module: ModuleType, specs: list[dict[str, Any]]) -> list[str]:
    """Submit each spec with the task handle of that name in the app module."""
    ids = []
    for spec in specs:
        options = getattr(module, spec["task"]).options(delay=spec.get("delay", 0))
        ids.append(options.submit(*spec.get("args", []), **spec.get("kwargs", {})).job_id)
    return ids


def wait(worker: Any, timeout_s: float, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Wait for each job in turn (one deadline for all), as a web process would."""
    deadline = time.monotonic() + timeout_s
    outcomes: dict[str, dict[str, Any]] = {}
    for job_id in ids:
        try:
            future = Future(job_id, worker.queue)
            result = future.result(max(0.1, deadline - time.monotonic()))
            outcomes[job_id] = {"status": result.status, "value": result.value, "attempts": result.attempts,
                                "logs": future.logs()}
        except TaskExecutionError as exc:
            outcomes[job_id] = {"status": exc.status, "error": exc.error, "attempts": exc.task_result.attempts}
        except TimeoutError as exc:
            outcomes[job_id] = {"status": "waiter_timed_out", "error": str(exc)}
    return outcomes


def main(argv: list[str]) -> None:
    module_name, _, worker_name = argv[1].partition(":")
    module = importlib.import_module(module_name)
    if argv[2] == "submit":
        print(json.dumps(submit(module, json.loads(argv[3]))))
    else:
        print(json.dumps(wait(getattr(module, worker_name), float(argv[3]), argv[4:])))


if __name__ == "__main__":
    main(sys.argv)
