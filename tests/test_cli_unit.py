"""The command and its supervisor, run for real in subprocesses, without Redis.

CLI: patch order, --check-config, --print-config precedence, clear errors, hooks and exit
codes. Supervisor: a small driver runs the real ``Supervisor`` with a fake child that records
its start, the TERMs it got and its stop, so signals, restarts and rolls are checked exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT, wait_for

GOOD_APP = "import upnext\nworker = upnext.Worker('t')\n"
NO_REDIS = {"UPNEXT_REDIS_URL": "redis://127.0.0.1:9/0"}  # never contacted by these tests
HERE = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}  # this checkout


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **NO_REDIS, **HERE, **(env or {})})


def printed_config(done: subprocess.CompletedProcess) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return dict(line.partition("  # ")[0].split(" = ", 1) for line in done.stdout.splitlines())


def test_importing_the_cli_loads_neither_click_nor_redis_nor_structlog():
    code = "import sys, upnext.cli.main; print(sorted(m for m in ('click', 'redis', 'structlog') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **HERE})
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("flags, patched", [((), "True"), (("--no-monkey-patch",), "False")])
def test_the_app_is_imported_after_monkey_patching_unless_told_not_to(tmp_path, flags, patched):
    (tmp_path / "app.py").write_text("import sys\nfrom gevent import monkey\nimport upnext\n"
                                     "print('socket_patched', monkey.is_module_patched('socket'), file=sys.stderr)\n"
                                     "worker = upnext.Worker('t')\n")
    done = cli("app", "--check-config", *flags, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"socket_patched {patched}" in done.stderr


@pytest.mark.parametrize("app", ["app", "app:worker", "app.py:worker"])
def test_check_config_accepts_a_good_app_in_each_form(tmp_path, app):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli(app, "--check-config", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "config ok\n"), done.stderr


def test_print_config_cli_beats_the_config_file(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t', concurrency=3)\n")
    (tmp_path / "upnext_gevent.conf.py").write_text("concurrency = 7\n")
    assert printed_config(cli("app", "--print-config", "--concurrency", "9", cwd=tmp_path))["concurrency"] == "9"


def test_print_config_the_config_file_beats_worker_arguments(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t', concurrency=3)\n")
    (tmp_path / "upnext_gevent.conf.py").write_text("concurrency = 7\n")
    assert printed_config(cli("app", "--print-config", cwd=tmp_path))["concurrency"] == "7"
    (tmp_path / "upnext_gevent.conf.py").rename(tmp_path / "other.conf.py")
    assert printed_config(cli("app", "--print-config", cwd=tmp_path))["concurrency"] == "3"
    assert printed_config(cli("app", "-c", "other.conf.py", "--print-config", cwd=tmp_path))["concurrency"] == "7"


def test_print_config_masks_the_redis_password(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--print-config", "--redis-url", "redis://app:hunter2@db:6379/0", cwd=tmp_path)
    assert printed_config(done)["redis_url"] == "'redis://app:***@db:6379/0'"
    assert "hunter2" not in done.stdout + done.stderr


def test_unknown_setting_in_the_config_file_fails_with_a_suggestion(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    (tmp_path / "upnext_gevent.conf.py").write_text("concurreny = 3\n")
    done = cli("app", "--check-config", cwd=tmp_path)
    assert done.returncode == 1
    assert "unknown setting 'concurreny'" in done.stderr and "did you mean 'concurrency'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("app, files, message", [
    ("no_such_module:worker", {}, "cannot import app module 'no_such_module'"),
    ("app:nope", {"app.py": GOOD_APP}, "'app' has no Worker named 'nope'"),
    ("app", {"app.py": "x = 1\n"}, "app module 'app' holds 0 Workers"),
    ("app", {"app.py": "import upnext\na = upnext.Worker('a')\nb = upnext.Worker('b')\n"},
     "app module 'app' holds 2 Workers; name one as app:ATTRIBUTE"),
    ("gone.py:worker", {}, "app file 'gone.py' does not exist"),
    ("app", {"app.py": "import not_installed_dependency\n"}, "No module named 'not_installed_dependency'"),
])
def test_a_bad_app_is_one_clear_line_naming_it(tmp_path, app, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = cli(app, "--check-config", cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_an_app_that_raises_at_import_shows_its_traceback_and_names_the_module(tmp_path):
    (tmp_path / "app.py").write_text("raise RuntimeError('boom at import')\n")
    done = cli("app", "--check-config", cwd=tmp_path)
    assert done.returncode == 1 and 'app.py", line 1' in done.stderr
    assert done.stderr.splitlines()[-1] == "Error: app module 'app' failed to import: RuntimeError: boom at import"


@pytest.mark.parametrize("conf, message", [
    (None, "config file 'missing.conf.py' does not exist"),
    ("raise ValueError('conf boom')\n", "failed to load: ValueError('conf boom')"),
    ("def post_job(ctx):\n    pass\n", "hook post_job in"),
    ("concurrency = 0\n", "concurrency (from config file"),
])
def test_a_bad_config_file_is_one_clear_line(tmp_path, conf, message):
    (tmp_path / "app.py").write_text(GOOD_APP)
    if conf is not None:
        (tmp_path / "missing.conf.py").write_text(conf)
    done = cli("app", "-c", "missing.conf.py", "--check-config", cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_bad_flag_values_are_usage_errors(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    assert cli("app", "--log-format", "xml", cwd=tmp_path).returncode == 2
    done = cli("app", "--concurrency", "0", "--check-config", cwd=tmp_path)
    assert done.returncode == 1 and "concurrency (from command line) must be >= 1" in done.stderr


def test_ops_subcommands_are_dispatched_without_an_app(tmp_path):
    done = cli("status", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "Usage: upnext-gevent status" in done.stdout, done.stderr


OPS = ["status", "list", "call", "failed", "retry", "purge", "cancel", "pause", "resume", "cron"]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_run_form_and_every_subcommand(tmp_path, flag):
    done = cli(flag, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "upnext-gevent [OPTIONS] APP" in done.stdout and "--health-file" in done.stdout
    commands = done.stdout.partition("Commands:")[2]
    assert set(OPS) <= {line.split()[0] for line in commands.splitlines() if line.startswith("  ")}, done.stdout


def test_version_prints_the_installed_distribution_version(tmp_path):
    import importlib.metadata

    done = cli("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"upnext-gevent {importlib.metadata.version('upnext-gevent')}\n")


def test_a_mistyped_subcommand_suggests_the_subcommand(tmp_path):
    done = cli("stauts", cwd=tmp_path)
    assert done.returncode == 2 and "did you mean the command 'stats' or 'status'?" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_module_named_like_a_subcommand_is_still_an_app(tmp_path):
    (tmp_path / "statu.py").write_text(GOOD_APP)
    assert cli("statu", "--check-config", cwd=tmp_path).stdout == "config ok\n"
    (tmp_path / "lists.py").write_text("import not_installed_dependency\n")
    done = cli("lists", "--check-config", cwd=tmp_path)  # found but broken: its own error, no suggestion
    assert done.returncode == 1 and "not_installed_dependency" in done.stderr and "did you mean" not in done.stderr


REDIS_DOWN = "redis://app:hunter2@127.0.0.1:9/0"


@pytest.mark.parametrize("args", [["status"], ["list"], ["call", "add", "--kwargs", "{}"], ["failed"],
                                  ["retry", "add:0000"], ["purge", "add"], ["cancel", "add:0000"], ["pause", "add"],
                                  ["resume", "add"], ["cron", "list"], ["cron", "remove", "nightly"]])
def test_every_ops_command_with_redis_down_is_one_line_naming_the_url_and_exits_1(tmp_path, args):
    done = cli(*args, cwd=tmp_path, env={"UPNEXT_REDIS_URL": REDIS_DOWN})
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "redis://app:***@127.0.0.1:9/0" in done.stderr and "hunter2" not in done.stderr


@pytest.mark.parametrize("env, flags, named", [
    ({"UPNEXT_REDIS_URL": "localhost:6393"}, [], "UPNEXT_REDIS_URL"),
    ({}, ["--redis-url", "http://u:hunter2@db:6379"], "redis_url (from command line)"),
    ({}, ["--redis-url", "redis://db:port/0"], "redis_url (from command line)"),
])
def test_check_config_refuses_a_redis_url_it_cannot_use(tmp_path, env, flags, named):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--check-config", *flags, cwd=tmp_path, env=env)
    assert done.returncode == 1 and named in done.stderr and "redis://, rediss:// or unix://" in done.stderr
    assert "hunter2" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("url", ["redis://db:6379/0", "rediss://:pw@db:6380/1?ssl_cert_reqs=none",
                                 "unix:///run/redis.sock?db=2", "REDIS://db"])
def test_check_config_accepts_each_supported_redis_url(tmp_path, url):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--check-config", "--redis-url", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_an_ops_command_with_a_bad_redis_url_is_one_line(tmp_path):
    done = cli("status", "--redis-url", "localhost:6393", cwd=tmp_path)
    assert done.returncode == 1 and "localhost:6393" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_health_file_is_a_flag(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--print-config", "--health-file", "/tmp/upnext.health", cwd=tmp_path)
    assert printed_config(done)["health_file"] == "'/tmp/upnext.health'"


def test_every_error_of_a_config_file_is_reported_and_a_helper_variable_is_told_the_underscore(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    (tmp_path / "upnext_gevent.conf.py").write_text(
        "my_const = 3\nconcurrency = 0\nlog_format = 'xml'\ntimeout = 5\n"
        "def post_job(ctx):\n    pass\ndef _helper():\n    pass\n_private = 1\nCONSTANT = 2\n")
    done = cli("app", "--check-config", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for expected in ("unknown setting 'my_const'", "'_my_const'", "concurrency (from config file",
                     "log_format (from config file", "unknown setting 'timeout'", "did you mean 'graceful_timeout'",
                     "'_timeout'", "hook post_job in"):
        assert expected in done.stderr, (expected, done.stderr)
    assert "_helper" not in done.stderr and "_private" not in done.stderr and "CONSTANT" not in done.stderr


def test_print_config_says_where_each_value_came_from(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t', concurrency=5)\n")
    (tmp_path / "upnext_gevent.conf.py").write_text("graceful_timeout = 7.5\n")
    done = cli("app", "--print-config", "--log-level", "debug", cwd=tmp_path,
               env={"UPNEXT_CONCURRENCY": "9", "UPNEXT_PREFIX": "mine"})
    lines = {line.split(" = ", 1)[0]: line for line in done.stdout.splitlines() if " = " in line}
    assert done.returncode == 0, done.stderr
    assert lines["concurrency"] == "concurrency = 5  # Worker(...), over env UPNEXT_CONCURRENCY (9)"
    assert lines["graceful_timeout"] == "graceful_timeout = 7.5  # config file upnext_gevent.conf.py"
    assert lines["log_level"] == "log_level = 'debug'  # flag --log-level"
    assert lines["prefix"] == "prefix = 'mine'  # env UPNEXT_PREFIX"
    assert lines["burst"] == "burst = False  # default"


HOOKS_CONF = """\
import os
def _note(text):
    with open(os.environ["HOOK_LOG"], "a") as f:
        f.write(text + "\\n")
def on_starting(config):
    _note(f"on_starting concurrency={config.concurrency} pid={os.getpid()}")
def when_ready(config):
    _note(f"when_ready pid={os.getpid()}")
def post_fork(worker):
    _note(f"post_fork {worker.name} pid={os.getpid()}")
def worker_exit(worker):
    _note(f"worker_exit {worker.name} pid={os.getpid()}")
"""


def test_a_worker_that_refuses_to_start_runs_the_hooks_and_exits_3(tmp_path):
    """A Worker with no tasks is refused by serve() before Redis is contacted."""
    (tmp_path / "app.py").write_text(GOOD_APP)
    (tmp_path / "upnext_gevent.conf.py").write_text(HOOKS_CONF)
    done = cli("app", "--concurrency", "4", cwd=tmp_path, env={"HOOK_LOG": str(tmp_path / "hooks")})
    assert done.returncode == 3 and "has no tasks to run" in done.stderr
    notes = [line.rsplit(" pid=", 1) for line in (tmp_path / "hooks").read_text().splitlines()]
    assert [n[0] for n in notes] == ["on_starting concurrency=4", "when_ready", "post_fork t", "worker_exit t"]
    assert len({n[1] for n in notes}) == 1  # one process


def test_supervised_children_that_refuse_to_start_stop_the_supervisor(tmp_path):
    (tmp_path / "app.py").write_text(GOOD_APP)
    (tmp_path / "upnext_gevent.conf.py").write_text(HOOKS_CONF)
    done = cli("app", "--processes", "2", "--log-format", "json", cwd=tmp_path,
               env={"HOOK_LOG": str(tmp_path / "hooks")}, timeout=30)
    assert done.returncode == 3, done.stderr
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.startswith("{")]
    assert "child_refused_to_start" in events and events.count("child_started") == 2
    notes = (tmp_path / "hooks").read_text()
    assert notes.count("post_fork t") == 2 and notes.count("on_starting") == 1


# -- the supervisor, driven with a fake child ------------------------------------------------

DRIVER = """\
import sys
from gevent import monkey
monkey.patch_all()
import json, os, signal
import gevent
from upnext import config, log
from upnext.cli.supervisor import Supervisor

events_path, conf_path = sys.argv[1], sys.argv[2]
mode = os.environ.get("FAKE_MODE", "serve")

def settings():
    values, hooks = config.load_file(conf_path)
    return config.resolve(file=values, hooks=hooks)

def record(**fields):
    with open(events_path, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), **fields}) + "\\n")

def serve_child(worker, s):
    terms = []
    gevent.signal_handler(signal.SIGTERM, terms.append, 1)
    record(event="start", index=os.environ["UPNEXT_WORKER_INDEX"], concurrency=s.concurrency)
    if mode == "refuse":
        return 3
    if mode in ("recycle", "burst"):
        gevent.sleep(0.2)
        return 0
    while not terms:
        gevent.sleep(0.02)
    gevent.sleep(float(os.environ.get("FAKE_DRAIN_S", "0.5")))
    record(event="stop", terms=len(terms))
    return 0

log.setup("info", "json")
sys.exit(Supervisor(None, settings(), settings, serve_child).run())
"""


class Driven:
    """The real Supervisor in a subprocess; its children's records and its JSON logs."""

    def __init__(self, tmp_path: Path, conf: str, **env: str):
        self.events = tmp_path / "events"
        self.conf = tmp_path / "conf.py"
        self.conf.write_text(conf)
        (tmp_path / "driver.py").write_text(DRIVER)
        self.log = open(tmp_path / "supervisor.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(self.events), str(self.conf)],
                                     cwd=ROOT, env={**os.environ, **NO_REDIS, **HERE, **env}, stderr=self.log)

    def records(self, event: str) -> list[dict]:
        if not self.events.exists():
            return []
        lines = self.events.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["event"] == event]

    def running(self) -> dict[int, dict]:
        stopped = {r["pid"] for r in self.records("stop")}
        return {r["pid"]: r for r in self.records("start") if r["pid"] not in stopped and _alive(r["pid"])}

    def logged(self, event: str) -> list[dict]:
        self.log.seek(0)
        lines = [json.loads(line) for line in self.log.read().splitlines() if line.startswith("{")]
        return [entry for entry in lines if entry["event"] == event]

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.running():
            os.kill(pid, signal.SIGKILL)
        self.log.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def supervise(tmp_path):
    started: list[Driven] = []

    def start(conf: str = "processes = 2\n", **env: str) -> Driven:
        started.append(Driven(tmp_path, conf, **env))
        return started[-1]

    yield start
    for driven in started:
        driven.close()


def indexes(children: dict[int, dict]) -> list[str]:
    return sorted(c["index"] for c in children.values())


def test_children_are_numbered_and_a_killed_one_is_replaced_under_its_index(supervise):
    sup = supervise()
    wait_for(lambda: indexes(sup.running()) == ["0", "1"], message="two children numbered 0 and 1")
    victim, record = next(iter(sup.running().items()))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(sup.records("start")) == 3 and indexes(sup.running()) == ["0", "1"],
             message="a replacement child")
    assert sup.records("start")[-1]["index"] == record["index"]
    assert [(e["pid"], e["exit_code"]) for e in sup.logged("child_died")] == [(victim, -signal.SIGKILL)]


def test_ttou_sends_one_term_to_one_child_and_ttin_adds_one_back(supervise):
    sup = supervise(FAKE_DRAIN_S="1.0")
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    sup.signal(signal.SIGTTOU)
    wait_for(lambda: sup.records("stop"), message="one child retired")
    assert [r["terms"] for r in sup.records("stop")] == [1]  # its drain was not cut short by a second TERM
    assert indexes(sup.running()) == ["0"] and len(sup.records("start")) == 2
    sup.signal(signal.SIGTTOU)  # never below one child
    wait_for(lambda: len(sup.logged("processes_changed")) == 2, message="the second TTOU handled")
    assert sup.logged("processes_changed")[-1]["processes"] == 1
    sup.signal(signal.SIGTTIN)  # (pending signals are handled in signal-number order: don't send both at once)
    wait_for(lambda: indexes(sup.running()) == ["0", "1"], message="a child added back")
    assert len(sup.records("stop")) == 1


def test_hup_rolls_every_child_onto_the_new_config(supervise):
    sup = supervise("processes = 2\nconcurrency = 3\n")
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    old = set(sup.running())
    sup.conf.write_text("processes = 2\nconcurrency = 5\n")
    sup.signal(signal.SIGHUP)
    wait_for(lambda: old.isdisjoint(sup.running()) and len(sup.running()) == 2, timeout=20,
             message="two new children")
    assert {c["concurrency"] for c in sup.running().values()} == {5}
    assert indexes(sup.running()) == ["0", "1"]
    assert {r["pid"]: r["terms"] for r in sup.records("stop")} == {pid: 1 for pid in old}
    assert len(sup.records("start")) == 4  # the new children were not retired in turn


def test_a_bad_config_on_hup_keeps_the_children(supervise):
    sup = supervise()
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    sup.conf.write_text("concurreny = 5\n")
    sup.signal(signal.SIGHUP)
    wait_for(lambda: sup.logged("reload_failed"), message="the reload refused")
    assert "did you mean 'concurrency'" in sup.logged("reload_failed")[0]["error"]
    assert len(sup.records("start")) == 2 and not sup.records("stop")


def test_term_drains_each_child_once_then_exits_0(supervise):
    sup = supervise()
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    sup.signal(signal.SIGTERM)
    assert sup.wait() == 0
    assert [r["terms"] for r in sup.records("stop")] == [1, 1]


def test_a_second_term_kills_the_children_at_once(supervise):
    sup = supervise(FAKE_DRAIN_S="60")
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    children = set(sup.running())
    sup.signal(signal.SIGTERM)
    wait_for(lambda: sup.logged("child_retiring"), message="the graceful stop to begin")
    sup.signal(signal.SIGINT)
    assert sup.wait(10) == 0
    assert not sup.records("stop") and not any(_alive(pid) for pid in children)


def test_a_recycled_child_is_replaced(supervise):
    sup = supervise("processes = 1\n", FAKE_MODE="recycle")
    wait_for(lambda: len(sup.records("start")) >= 3, message="three generations of the child")
    assert {r["index"] for r in sup.records("start")} == {"0"}
    assert sup.logged("child_recycled") and not sup.logged("child_died")


def test_burst_children_that_finish_are_not_replaced(supervise):
    sup = supervise("processes = 2\nburst = True\n", FAKE_MODE="burst")
    assert sup.wait() == 0
    assert len(sup.records("start")) == 2 and len(sup.logged("child_finished")) == 2


def test_a_child_refusing_to_start_stops_the_supervisor_with_exit_3(supervise):
    sup = supervise(FAKE_MODE="refuse")
    assert sup.wait() == 3
    assert len(sup.records("start")) <= 2 and sup.logged("child_refused_to_start")


def test_children_of_a_killed_supervisor_drain_and_exit(supervise):
    sup = supervise()
    wait_for(lambda: len(sup.running()) == 2, message="two children")
    sup.proc.kill()
    sup.wait()
    wait_for(lambda: len(sup.records("stop")) == 2, timeout=10, message="the orphans to drain")
    assert [r["terms"] for r in sup.records("stop")] == [1, 1]
