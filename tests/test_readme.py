"""Every ```python block of README.md runs as written: each in a fresh interpreter (gevent
monkey-patched, as the CLI does), against the test Redis under a prefix of its own, with every
``upnext.Worker`` the block creates served in the same process, so a block that submits and
waits gets its result as a reader who pasted it would.

A block that cannot run by itself (a fragment, a config file that needs a project around it) is
preceded in README.md by ``<!-- not-run: why -->``; its test is skipped with that reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.workers import ROOT

README = ROOT / "README.md"
BLOCK_TIMEOUT_S = 60
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$", re.DOTALL)

# Runs one block as __main__. Until the block ends, a greenlet serves each Worker that the block
# has made and given tasks by the time it first blocks (a submit, a wait): the first I/O hands
# the hub to that greenlet, which checks again every 20 ms.
RUNNER = """
import gevent.monkey
gevent.monkey.patch_all()

import os, sys, traceback
import gevent
import upnext
from upnext.worker import Worker

path = sys.argv[1]
namespace = {"__name__": "__main__", "__file__": path}
served = set()


def serve_workers():
    while True:
        for value in list(namespace.values()):
            if isinstance(value, Worker) and value.tasks and id(value) not in served:
                served.add(id(value))
                gevent.spawn(upnext.run, value)
        gevent.sleep(0.02)


gevent.spawn(serve_workers)
try:
    exec(compile(open(path).read(), path, "exec"), namespace)
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # the serving greenlets are not drained: the block's own waits are what it needs
"""


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    source: str
    not_run: str | None  # the marker's reason


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        marker = NOT_RUN.search(text[:match.start()].rstrip("\n").rsplit("\n\n", 1)[-1])
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match.group(1),
                            marker.group(1) if marker else None))
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_the_readme_has_python_blocks_and_the_marker_is_found():
    assert len(BLOCKS) >= 5
    sample = "text\n\n<!-- not-run: a fragment -->\n```python\nx\n```\n\n```python\ny\n```\n"
    assert [(b.source, b.not_run) for b in readme_blocks(sample)] == [("x\n", "a fragment"), ("y\n", None)]


def run_block(source: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    runner = tmp_path / "run_block.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "UPNEXT_PREFIX": f"readme-{uuid.uuid4().hex[:8]}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        return subprocess.run([sys.executable, str(runner), str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"{name}: the block ran over {BLOCK_TIMEOUT_S}s:\n{stderr}")


def test_the_runner_serves_the_blocks_workers_and_reports_a_failing_block(redis_client, tmp_path):
    serves = ("import upnext\nworker = upnext.Worker('w')\n\n@worker.task\ndef double(x: int) -> int:\n"
              "    return 2 * x\n\nassert double.submit(21).value(timeout=20) == 42\n")
    done = run_block(serves, tmp_path, "serves")
    assert done.returncode == 0, done.stderr
    fails = run_block(serves.replace("== 42", "== 43"), tmp_path, "fails")
    assert fails.returncode == 1 and "AssertionError" in fails.stderr, fails.stderr


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_readme_block_runs(block: Block, redis_client, tmp_path: Path):
    if block.not_run is not None:
        pytest.skip(f"README.md line {block.line}: not-run: {block.not_run}")
    done = run_block(block.source, tmp_path, f"readme_line{block.line}")
    assert done.returncode == 0, f"README.md line {block.line} failed:\n{block.source}\n{done.stderr[-4000:]}"
