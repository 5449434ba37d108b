"""What a worker logs about the jobs it runs (SPEC §7), read from real worker processes: a failed
attempt's traceback, stdlib ``logging`` calls made inside jobs, and ``job_started`` at debug."""

from __future__ import annotations

import json
import re

import pytest

from tests.apps import logged
from tests.workers import WorkerProcess

APP = "tests.apps.logged:worker"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT")  # a console line starts with its ISO timestamp


def burst(tmp_path, *args: str) -> str:
    """Run the logged app's worker until its queues are empty; its output (stderr and stdout)."""
    proc = WorkerProcess(APP, "--burst", *args, log_path=tmp_path / "worker.log")
    try:
        assert proc.wait(60) == 0, proc.output()
    finally:
        proc.stop()
    return proc.output()


def json_lines(output: str) -> list[dict]:
    """Every line of a ``--log-format json`` worker's output, parsed: a line that is no JSON object fails."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def events(output: str, event: str) -> list[dict]:
    return [entry for entry in json_lines(output) if entry.get("event") == event]


def console_block(output: str, event: str) -> str:
    """The console line of the first ``event`` and the lines printed under it (a traceback)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if STAMP.match(line) and f" {event} " in line)
    end = next((i for i in range(start + 1, len(lines)) if STAMP.match(lines[i])), len(lines))
    return "\n".join(lines[start:end])


def test_a_failed_attempt_logs_its_traceback_as_a_json_field(redis_client, tmp_path):
    future = logged.imports_row.submit("x1")
    output = burst(tmp_path, "--log-format", "json")
    for event in ("job_retried", "job_failed"):
        [entry] = events(output, event)
        assert entry["job_id"] == future.job_id, entry
        assert entry["error"] == "ValueError: bad row 'x1'", entry
        assert entry["exception"].startswith("Traceback (most recent call last):"), entry
        assert "in _parse_row" in entry["exception"] and "ValueError: bad row 'x1'" in entry["exception"], entry


def test_a_failed_attempt_logs_its_traceback_under_the_console_line(redis_client, tmp_path):
    logged.imports_row.submit("x2")
    output = burst(tmp_path)
    for event in ("job_retried", "job_failed"):
        block = console_block(output, event)
        assert "Traceback (most recent call last):" in block, output
        assert "in _parse_row" in block and "ValueError: bad row 'x2'" in block, output


def test_stdlib_logging_in_concurrent_jobs_carries_each_jobs_fields_and_its_extra(redis_client, tmp_path):
    futures = {tag: logged.logs_while_another_runs.submit(tag, 2) for tag in ("a", "b")}
    output = burst(tmp_path, "--log-format", "json", "--concurrency", "2")
    lines = events(output, "row_imported")
    assert sorted((entry["tag"], entry["row"]) for entry in lines) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    workers = {entry["worker"] for entry in lines}
    for entry in lines:
        assert entry["job_id"] == futures[entry["tag"]].job_id, entry
        assert entry["function"] == "logs_while_another_runs" and entry["attempt"] == 1, entry
        assert entry["logger"] == "tests.logged" and entry["level"] == "info", entry
    assert len(workers) == 1 and workers != {""}, lines


def test_stdlib_logging_in_console_format_shows_the_job_id_and_extra(redis_client, tmp_path):
    future = logged.logs_while_another_runs.submit("c", 1)
    block = console_block(burst(tmp_path), "row_imported")
    assert f"job_id={future.job_id}" in block and "tag=c" in block and "row=1" in block, block


def test_stdlib_logging_in_a_pool_child_carries_the_jobs_fields(redis_client, tmp_path):
    future = logged.logs_in_a_child.submit("p")
    [entry] = events(burst(tmp_path, "--log-format", "json"), "row_imported")
    assert entry["job_id"] == future.job_id and entry["function"] == "logs_in_a_child", entry
    assert entry["tag"] == "p" and entry["attempt"] == 1 and entry["worker"], entry


@pytest.mark.parametrize("level", ["debug", "info"])
def test_job_started_is_logged_at_debug(redis_client, tmp_path, level):
    future = logged.quick.submit()
    output = burst(tmp_path, "--log-format", "json", "--log-level", level)
    started = events(output, "job_started")
    if level == "info":
        assert started == [], started
        return
    [entry] = started
    assert entry["job_id"] == future.job_id and entry["function"] == "quick" and entry["attempt"] == 1, entry
    assert entry["level"] == "debug" and entry["worker"], entry
    order = [e["event"] for e in json_lines(output) if e.get("job_id") == future.job_id]
    assert order.index("job_started") < order.index("job_completed"), order
