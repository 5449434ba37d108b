"""Entry point of a process-pool child: import the app, then run jobs sent by the parent.

Protocol: one JSON request per line on the inherited socket; the child answers each with a
``TAKEN`` line before any code of the job runs (so the parent knows a child that dies before it
ran nothing and can hand the job to another), then one JSON reply line.
The child keeps no state between jobs except what the app's own modules keep.

A child follows its parent, not signals: it ignores SIGINT and SIGTERM (a Ctrl-C or a SIGTERM
to the whole process group or cgroup is for the worker, which lets the running job finish and
then stops its children itself), and it exits when its parent is gone: at the end of its
socket, or within PARENT_CHECK_S if the parent dies while a job runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

from upnext import log
from upnext.context import JobContext
from upnext.errors import Retry
from upnext.job import dumps

PARENT_CHECK_S = 1.0
TAKEN = b'{"taken": true}\n'


def run_request(worker: Any, request: dict[str, Any]) -> dict[str, Any]:
    task = worker.tasks[request["function"]]
    ctx = JobContext(job_id=request["job_id"], function=task.name,
                     function_name=getattr(task.fn, "__qualname__", task.name), attempt=request["attempt"],
                     max_attempts=request["max_attempts"], parent_id=request["parent_id"],
                     root_id=request["root_id"], last_checkpoint=request["checkpoint"], queue=worker.queue,
                     entry_id=request["entry_id"], worker=request["worker"])
    with ctx.activate():
        try:
            value = task.fn(*request["args"], **request["kwargs"])
        except Exception as exc:
            stored, retryable, after = task.judge(exc)  # here: the parent may not have the exception's class
            return {"ok": False, "error": f"{type(stored).__name__}: {stored}", "traceback": traceback.format_exc(),
                    "retryable": retryable, "retry_after": after, "retry_requested": isinstance(exc, Retry)}
        finally:
            ctx.flush_progress()
    try:
        result_json = dumps(value)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "retryable": False,
                "error": f"result of {task.name} (job {ctx.job_id}) is not JSON-serializable: {exc}"}
    too_large = ctx.result_over_cap(result_json)  # checked here, so it never crosses the socket
    if too_large:
        return {"ok": False, "retryable": False, "error": too_large}
    return {"ok": True, "result": result_json}


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_follow_parent, args=(os.getppid(),), name="follow_parent", daemon=True).start()
    spec = json.loads(os.environ["UPNEXT_CHILD_SPEC"])
    sys.path[:0] = [p for p in spec["sys_path"] if p not in sys.path]
    from upnext.worker import load_worker

    # As the worker logs (from the app's import on): stdlib logging calls in a job reach the
    # inherited stderr in the worker's format, with the job's fields.
    log.setup(spec["settings"]["log_level"], spec["settings"]["log_format"])
    worker = load_worker(spec["app"])
    worker.configure(spec["settings"])
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)  # the parent's end is a gevent (non-blocking) socket; ours must block
    rfile, wfile = sock.makefile("rb"), sock.makefile("wb")
    try:
        for line in rfile:
            wfile.write(TAKEN)
            wfile.flush()
            wfile.write(json.dumps(run_request(worker, json.loads(line))).encode() + b"\n")
            wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nobody is left to read a reply


def _follow_parent(parent_pid: int) -> None:
    """Exit once the worker that started us is gone (kill -9), even in the middle of a job:
    its job is reclaimed and run again elsewhere, and an orphan would only burn CPU."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


if __name__ == "__main__":
    main()
