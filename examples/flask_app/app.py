"""A small Flask app: one view submits a job, another shows its status and progress.

    upnext-gevent -c examples/flask_app/upnext_gevent.conf.py examples.flask_app.tasks:worker
    flask --app examples.flask_app.app run
    curl -X POST 'localhost:5000/reports?rows=20'   ->  {"job_id": "build_report:..."}
    curl localhost:5000/jobs/<job_id>               ->  {"status": "complete", "value": {...}}
"""

from flask import Flask, jsonify, request

import upnext

app = Flask(__name__)
app.config["REPORT_TITLE"] = "Monthly report"


@app.post("/reports")
def start_report():
    from examples.flask_app.tasks import build_report

    future = build_report.submit(rows=int(request.args.get("rows", 20)))
    return jsonify(job_id=future.job_id), 202


@app.get("/jobs/<job_id>")
def job_status(job_id: str):
    from examples.flask_app.tasks import worker

    try:
        future = worker.future(job_id)
        status = future.status()
    except ValueError as exc:  # not shaped like a job id ('<function>:<hex>'); the message names it
        return jsonify(error=str(exc)), 404
    except upnext.JobNotFound:
        return jsonify(error=f"no job {job_id!r} (never submitted, or expired)"), 404
    fraction, message = future.progress()
    body = {"job_id": job_id, "status": status, "progress": fraction, "message": message}
    if status == "complete":
        body["value"] = future.value(timeout=0)
    elif status in ("failed", "cancelled"):
        try:
            future.result(timeout=0)
        except upnext.TaskExecutionError as exc:
            body["error"] = exc.error
    return jsonify(body)
