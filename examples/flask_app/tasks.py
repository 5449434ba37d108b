"""The Flask app's jobs. The web process imports this module to submit; the worker runs it."""

import time

from flask import current_app

import upnext
from upnext.contrib.flask import with_app_context

worker = upnext.Worker("flask-example", concurrency=50)


@worker.task(retries=2, timeout=60)
@with_app_context("examples.flask_app.app:app")  # imported on the first run: no import cycle
def build_report(rows: int) -> dict:
    ctx = upnext.get_current_context()
    for i in range(rows):
        time.sleep(0.01)  # stands for I/O; under gevent other jobs run meanwhile
        ctx.set_progress(i + 1, total=rows)
    return {"rows": rows, "title": current_app.config["REPORT_TITLE"]}
