"""Names and defaults a user coming from the asyncio UpNext expects (SPEC §2b)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import upnext
from upnext import config
from upnext.context import JobContext

ROOT = Path(__file__).resolve().parents[1]
UPNEXT_ENV = re.compile(r"^UPNEXT_")


def test_the_defaults_are_the_seeds(monkeypatch):
    for name in [n for n in __import__("os").environ if UPNEXT_ENV.match(n)]:
        monkeypatch.delenv(name)
    seed = {"concurrency": 2, "batch_size": 4, "inbox_size": 4, "outbox_size": 10000, "flush_interval_ms": 5.0,
            "claim_timeout_ms": 30000, "job_ttl_seconds": 86400, "stream_maxlen": 0}
    assert {name: config.SETTINGS[name].default for name in seed} == seed
    settings = upnext.Worker("defaults").settings
    assert {name: settings[name] for name in seed} == seed


def test_context_is_the_job_context_class():
    assert upnext.Context is JobContext
    assert upnext.JobContext is JobContext


def test_job_status_members_equal_the_stored_status_strings():
    stored = {"queued", "active", "retrying", "complete", "failed", "cancelled"}
    assert {s.value for s in upnext.JobStatus} == stored
    assert all(isinstance(s, str) and s == s.value for s in upnext.JobStatus)
    assert upnext.JobStatus.COMPLETE == "complete" and upnext.JobStatus("failed") is upnext.JobStatus.FAILED


def test_failure_reason_members_equal_every_reason_the_code_writes():
    written = set()
    for path in [*(ROOT / "upnext").rglob("*.py"), *(ROOT / "upnext").rglob("*.lua")]:
        text = path.read_text()
        written |= set(re.findall(r"failure_reason=\"([a-z_]+)\"", text))  # Completion(...)
        written |= set(re.findall(r"'failure_reason', '([a-z_]+)'", text))  # Lua
        written |= set(re.findall(r"cancel_job\([^()]*(?:\([^()]*\)[^()]*)*, '([a-z_]+)',", text))  # Lua
        written |= set(re.findall(r"ChildFailed\([^()]*(?:\([^()]*\)[^()]*)*reason=\"([a-z_]+)\"", text))
        written |= set(re.findall(r"_Failure\([^()]*(?:\([^()]*\)[^()]*)*, \"([a-z]+)\"", text))
    assert written and written <= {r.value for r in upnext.FailureReason}
    assert {r.value for r in upnext.FailureReason} == {"timeout", "exception", "cancelled", "lost", "expired"}
    assert upnext.FailureReason.TIMEOUT == "timeout"


def test_version_is_the_packages():
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    assert upnext.__version__ == importlib.metadata.version("upnext-gevent") == declared


def test_task_execution_error_is_a_runtime_error():
    error = upnext.TaskExecutionError("t:00", "failed", "boom")
    assert isinstance(error, RuntimeError) and isinstance(error, upnext.UpnextError)
    assert issubclass(upnext.TaskTimeoutError, upnext.TaskExecutionError)
    with pytest.raises(RuntimeError, match="job t:00 failed: boom"):
        raise upnext.TaskTimeoutError("t:00", "failed", "boom")
