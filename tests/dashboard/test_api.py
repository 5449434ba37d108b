"""Every ``/api/`` endpoint of the dashboard, in-process against the real redis-server and jobs a
real worker ran: shapes, filters, pagination, actions and their errors."""

from __future__ import annotations

from tests.apps import dashboarded
from tests.dashboard.conftest import csrf_of, post
from tests.workers import wait_for


def _failed(text: str = "boom"):
    future = dashboarded.fails.submit(text=text)
    wait_for(lambda: future.status() == "failed", timeout=20, message=f"{future.job_id} to fail")
    return future


def test_overview_lists_workers_functions_counts_and_charts(worker, client):
    dashboarded.echo.submit(value=1).result(timeout=20)
    _failed()
    body = wait_for(lambda: (b := client.get("/api/overview").json)["totals"]["failed"] == 1
                    and b["charts"] and b["charts"]["hour"]["failed"] == 1 and b, timeout=30,
                    message="the failed count and chart")
    assert body["live_workers"] == 1 and body["workers"][0]["alive"] is True
    rows = {f["function"]: f for f in body["functions"]}
    assert {"echo", "fails", "needs_fix", "steps", "nightly", "retries_later"} <= set(rows)
    assert rows["fails"]["failed"] == 1 and rows["echo"]["queued"] == 0
    hour = body["charts"]["hour"]
    assert hour["step_s"] == 60 and len(hour["rows"]) == 60
    assert hour["completed"] >= 1 and hour["failed"] == 1 and body["charts"]["quantiles"]["run_p50_s"] is not None
    assert body["charts"]["day"]["step_s"] == 3600


def test_functions_show_options_crons_and_last_run(worker, client):
    dashboarded.echo.submit(value=1).result(timeout=20)
    def listed():  # the worker writes the cron's cursor (its next run) once it leads it
        rows = {f["function"]: f for f in client.get("/api/functions").json["functions"]}
        return rows["nightly"]["schedule"] and rows["nightly"]["next_run_at"] and rows["echo"]["last_status"] and rows

    rows = wait_for(listed, timeout=20, message="the cron's schedule and next run, and echo's last run")
    assert rows["retries_later"]["options"]["retries"] == 2
    assert rows["nightly"]["kind"] == "cron" and rows["nightly"]["schedule"] == "0 3 * * *"
    assert rows["nightly"]["next_run_at"] is not None
    assert rows["echo"]["last_status"] == "complete" and rows["echo"]["last_ended_at"] > 0
    one = client.get("/api/functions/echo").json
    assert one["function"]["function"] == "echo" and one["recent"][0]["status"] == "complete"
    body = client.get("/api/functions").json
    assert {"event": "order.shipped", "handlers": ["notify_customer"]} in body["events"]
    assert [(c["cron"], c["source"], c["schedule"]) for c in body["crons"]] == [("nightly", "declared", "0 3 * * *")]
    missing = client.get("/api/functions/nosuch")
    assert missing.status_code == 404 and "'nosuch'" in missing.json["error"]


def test_jobs_filter_by_function_and_status_and_page_with_a_cursor(worker, client):
    for i in range(5):
        dashboarded.echo.submit(value=i).result(timeout=20)
    _failed()
    done = client.get("/api/jobs?function=echo&limit=2").json
    assert [j["function"] for j in done["jobs"]] == ["echo", "echo"] and done["next_cursor"]
    seen = [j["job_id"] for j in done["jobs"]]
    while done["next_cursor"]:
        done = client.get(f"/api/jobs?function=echo&limit=2&cursor={done['next_cursor']}").json
        seen += [j["job_id"] for j in done["jobs"]]
    assert len(seen) == len(set(seen)) == 5
    failed = client.get("/api/jobs?status=failed").json["jobs"]
    assert [j["function"] for j in failed] == ["fails"] and failed[0]["error"] == "ValueError: boom"
    assert client.get("/api/jobs?since=1h").json["jobs"]
    for bad, word in (("status=lost", "'lost'"), ("since=soon", "'soon'"), ("limit=0", "'0'"),
                      ("cursor=zz", "'zz'"), ("function=nosuch", "'nosuch'")):
        answer = client.get(f"/api/jobs?{bad}")
        assert answer.status_code in (400, 404) and word in answer.json["error"], bad


def test_job_detail_and_an_unknown_id_is_404_json_with_a_message(worker, client):
    future = _failed("<script>alert(1)</script>")
    view = client.get(f"/api/jobs/{future.job_id}").json
    assert view["kwargs"] == {"text": "<script>alert(1)</script>"} and view["status"] == "failed"
    assert view["runs"][0]["outcome"] == "failed" and "Traceback" in view["traceback"]
    missing = client.get("/api/jobs/echo:00ff")
    assert missing.status_code == 404
    assert missing.json == {"error": "job 'echo:00ff' not found (never submitted, or expired)"}
    garbage = client.get("/api/jobs/garbage")
    assert garbage.status_code == 404 and "'garbage'" in garbage.json["error"]


def test_failed_workers_stuck_search_and_stats(worker, client, redis_client):
    future = _failed("search me")
    keyed = dashboarded.echo.submit_idempotent("order-7", value=2)
    keyed.result(timeout=20)
    failed = client.get("/api/failed").json["jobs"]
    assert [j["job_id"] for j in failed] == [future.job_id] and failed[0]["error"] == "ValueError: search me"
    assert client.get("/api/failed?function=echo").json["jobs"] == []
    workers = client.get("/api/workers").json
    assert workers["live_workers"] == 1 and workers["workers"][0]["concurrency"] == 8
    client.post("/api/functions/echo/pause", headers={"X-CSRF-Token": csrf_of(client)})
    stuck = client.get("/api/stuck").json
    assert any(f["function"] == "echo" and f["paused"] and "paused" in f["note"] for f in stuck["functions"])
    assert [j["job_id"] for j in client.get(f"/api/search?q={future.job_id}").json["jobs"]] == [future.job_id]
    assert [j["job_id"] for j in client.get("/api/search?q=order-7").json["jobs"]] == [keyed.job_id]
    assert client.get("/api/search?q=nothing").json["jobs"] == []
    stats = client.get("/api/stats").json["charts"]
    assert stats["hour"]["failed"] == 1


def test_actions_retry_cancel_pause_resume_purge(worker, client, redis_client):
    token = csrf_of(client)
    future = dashboarded.needs_fix.submit()
    wait_for(lambda: future.status() == "failed", timeout=20, message="needs_fix to fail")
    redis_client.set(dashboarded.FIXED_FLAG, "1")
    assert post(client, f"/api/jobs/{future.job_id}/retry", token=token).json["outcome"] == "queued"
    assert future.result(timeout=20).value == "fixed"
    again = post(client, f"/api/jobs/{future.job_id}/retry", token=token)
    assert again.status_code == 409 and future.job_id in again.json["error"]

    assert post(client, "/api/functions/echo/pause", token=token).json == {"function": "echo", "paused": True,
                                                                           "changed": True}
    waiting = dashboarded.echo.submit(value=3)
    cancelled = post(client, f"/api/jobs/{waiting.job_id}/cancel", token=token).json
    assert cancelled["outcome"] == "cancelled" and waiting.status() == "cancelled"
    dashboarded.echo.submit(value=4)
    assert post(client, "/api/functions/echo/purge", token=token).json["cancelled"] == 1
    assert post(client, "/api/functions/echo/resume", token=token).json["changed"] is True
    assert dashboarded.echo.submit(value=5).result(timeout=20).value == 5
    assert post(client, "/api/functions/nosuch/pause", token=token).status_code == 404
    assert post(client, "/api/jobs/echo:00ff/cancel", token=token).status_code == 404


def test_actions_need_post_and_the_csrf_token(worker, client):
    token = csrf_of(client)
    future = _failed()
    assert client.get(f"/api/jobs/{future.job_id}/retry").status_code == 405
    refused = post(client, f"/api/jobs/{future.job_id}/retry")
    assert refused.status_code == 403 and "CSRF" in refused.json["error"]
    forged = post(client, f"/api/jobs/{future.job_id}/retry", token=token + "0")
    assert forged.status_code == 403
    assert future.status() == "failed"


def test_bulk_retry_and_cancel_by_filter_preview_then_act(worker, client, redis_client):
    token = csrf_of(client)
    timeouts = [_failed(f"Timeout talking to bank {i}") for i in range(3)]
    other = _failed("card declined")
    preview = client.get("/api/bulk/retry?function=fails&error=timeout&since=1h").json
    assert preview["count"] == 3 and set(preview["sample"]) == {f.job_id for f in timeouts}
    done = post(client, "/api/bulk/retry", {"function": "fails", "error": "timeout", "since": "1h", "expect": "3"},
                token)
    assert done.json["done"] == 3 and done.json["matched"] == 3
    wait_for(lambda: all(f.status() == "failed" and len(client.get(f"/api/jobs/{f.job_id}").json["runs"]) == 2
                         for f in timeouts), timeout=20, message="the retried jobs to fail again")
    assert other.status() == "failed"

    later = [dashboarded.retries_later.submit(text=f"Timeout {i}") for i in range(2)]
    wait_for(lambda: all(f.status() == "retrying" for f in later), timeout=20, message="the jobs to wait for a retry")
    assert client.get("/api/bulk/cancel?function=retries_later&error=TIMEOUT").json["count"] == 2
    cancelled = post(client, "/api/bulk/cancel", {"function": "retries_later", "error": "timeout"}, token).json
    assert cancelled["done"] == 2 and all(f.status() == "cancelled" for f in later)
    assert client.get("/api/bulk/retry").status_code == 400
    assert client.get("/api/bulk/explode?function=fails").status_code == 404


def test_metrics_and_unknown_addresses(worker, client):
    dashboarded.echo.submit(value=1).result(timeout=20)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and 'upnext_jobs_total{function="echo",status="completed"} 1.0' in metrics.text
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and "/api/nothing" in missing.json["error"]
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_hidden_arguments_and_the_redact_hook_apply_to_every_view(worker, redis_url):
    from werkzeug.test import Client

    from upnext.dashboard import make_app

    secret = dashboarded.charges.submit(card="4111 1111 1111 1111")
    secret.result(timeout=20)
    failed = _failed("customer bob@example.com refused")
    client = Client(make_app(redis_url, redact=lambda view: {**view, "error": "[redacted]"} if view.get("error")
                             else view))
    view = client.get(f"/api/jobs/{secret.job_id}").json
    assert view["kwargs"] == "hidden" and view["result"] == "hidden"
    page = client.get(f"/jobs/{secret.job_id}").text
    assert "4111" not in page and "hidden" in page
    assert client.get(f"/api/jobs/{failed.job_id}").json["error"] == "[redacted]"
    assert [j["error"] for j in client.get("/api/failed").json["jobs"]] == ["[redacted]"]
    assert "bob@example.com" not in client.get("/failed").text


def test_functions_list_run_time_crons_and_the_page_shows_crons_and_events(worker, client):
    dashboarded.worker.add_cron("weekly_digest", "0 8 * * 1", "echo", kwargs={"value": "digest"})
    try:
        crons = {c["cron"]: c for c in client.get("/api/functions").json["crons"]}
        assert crons["weekly_digest"]["source"] == "run-time" and crons["weekly_digest"]["function"] == "echo"
        assert crons["weekly_digest"]["kwargs"] == {"value": "digest"}
        page = client.get("/functions").text
        assert 'data-cron="weekly_digest"' in page and 'data-event="order.shipped"' in page
        assert "notify_customer" in page
    finally:
        dashboarded.worker.remove_cron("weekly_digest")


def test_a_terminal_note_shows_its_backquoted_words_as_code_and_escapes_the_rest():
    from upnext.dashboard.pages import code_spans

    shown = str(code_spans("3 failed (see `failed`) <script>alert(1)</script> `<b>`"))
    assert shown == "3 failed (see <code>failed</code>) &lt;script&gt;alert(1)&lt;/script&gt; <code>&lt;b&gt;</code>"
