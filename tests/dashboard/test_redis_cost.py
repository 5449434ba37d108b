"""The dashboard is gentle with the production Redis: the commands a page view or a live refresh
sends do not grow with the history (counted with INFO commandstats on the real server), and
viewers of the same page share one read (live.py)."""

from __future__ import annotations

import threading

from werkzeug.test import Client

from tests.apps import dashboarded
from tests.workers import wait_for
from upnext.dashboard import make_app
from upnext.dashboard.live import Snapshots

PAGES = ("charts", "/", "/functions", "/functions/echo", "/jobs", "/jobs?status=failed", "/failed", "/stuck",
         "/workers", "/api/overview", "/api/jobs?function=echo", "/api/failed", "/metrics")


def _commands(redis_client) -> int:
    stats = redis_client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))


def _cost(redis_client, redis_url, path: str) -> int:
    """The commands of one view by a new app (nothing cached) whose charts were read (they are
    counted apart: read in the background at most every 10 s, live.py)."""
    app = make_app(redis_url)
    app.charts()  # also loads the charts' Lua script: once per Redis, not per view
    if path == "charts":
        app.snapshots.clear()
        redis_client.config_resetstat()
        app.charts()
        return _commands(redis_client)
    redis_client.config_resetstat()
    assert Client(app).get(path).status_code == 200, path
    return _commands(redis_client)


def _run(count: int) -> None:
    echoes = [dashboarded.echo.submit(value=i) for i in range(count)]
    failures = [dashboarded.fails.submit(text=f"no {i}") for i in range(count)]
    wait_for(lambda: all(f.status() == "complete" for f in echoes) and all(f.status() == "failed" for f in failures),
             timeout=120, interval=0.2, message=f"{count} jobs of each to end")


def test_commands_per_page_view_do_not_grow_with_the_history(start_worker, redis_client, redis_url):
    worker = start_worker("tests.apps.dashboarded:worker")
    _run(60)
    worker.stop()  # its heartbeats would count too
    small = {path: _cost(redis_client, redis_url, path) for path in PAGES}
    worker = start_worker("tests.apps.dashboarded:worker")
    _run(600)
    worker.stop()
    large = {path: _cost(redis_client, redis_url, path) for path in PAGES}
    assert large == small
    functions = len(dashboarded.worker.tasks)  # the bound grows with them, never with the jobs
    # per function: the hour's minutes and the day's hours (read inside two Lua calls), two hours' histograms
    charts = functions * (60 + 24 + 2 + 2)
    assert small["charts"] <= charts + 10, small
    assert max(cost for path, cost in small.items() if path != "charts") <= 20 * functions + 60, small


def test_viewers_of_one_page_share_one_read(start_worker, redis_client, redis_url):
    start_worker("tests.apps.dashboarded:worker").stop()  # it registered its functions; its heartbeats would count
    client = Client(make_app(redis_url))
    client.application.charts()  # read: count only the page refreshes
    client.application.snapshots.clear(keep=("charts",))
    redis_client.config_resetstat()
    assert client.get("/api/overview").status_code == 200
    one = _commands(redis_client)
    client.application.snapshots.clear(keep=("charts",))
    redis_client.config_resetstat()
    for _ in range(10):  # ten open pages polling within the same second
        assert client.get("/api/overview").status_code == 200
    assert _commands(redis_client) == one


def test_concurrent_viewers_wait_for_the_one_read_in_flight():
    snapshots = Snapshots(max_age_s=60)
    loads: list[int] = []
    gate = threading.Event()

    def load() -> int:
        loads.append(1)
        gate.wait(5)
        return len(loads)

    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(snapshots.get("page", load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: loads, message="the first load")
    gate.set()
    for thread in threads:
        thread.join(5)
    assert loads == [1] and answers == [1] * 8


def test_a_stale_chart_is_shown_at_once_and_read_again_in_the_background():
    now = [0.0]
    snapshots = Snapshots(clock=lambda: now[0])
    values = iter(["first", "second"])
    assert snapshots.get_or_refresh("charts", lambda: next(values), max_age_s=10) == "first"
    now[0] = 11.0
    assert snapshots.get_or_refresh("charts", lambda: next(values), max_age_s=10) == "first"  # no wait
    wait_for(lambda: snapshots.get_or_refresh("charts", lambda: "third", max_age_s=100) == "second",
             message="the background refresh")


def test_the_first_overview_does_not_wait_for_the_charts():
    snapshots = Snapshots()
    gate = threading.Event()
    assert snapshots.get_or_refresh("charts", lambda: gate.wait(5) and "read", max_age_s=10, wait=False) is None
    gate.set()
    wait_for(lambda: snapshots.get_or_refresh("charts", lambda: "again", max_age_s=10, wait=False) == "read",
             message="the charts read in the background")
