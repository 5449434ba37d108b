"""A Redis Cluster of three masters on loopback: tasks, retries, a cron and an event fan-out
run through it, which proves every Lua script keeps to one hash slot."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

import upnext
from tests.workers import WorkerProcess, wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.connection import connect
from upnext.store.history import list_jobs
from upnext.store.jobdetail import read_detail
from upnext.store.overview import Overview
from upnext.store.queue import Queue
from upnext.store.records import Completion, NewJob, QueueBound
from upnext.task import build_job


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed for the Redis Cluster test")
    ports = _cluster_ports(3)
    procs = []
    for port in ports:
        workdir = tmp_path_factory.mktemp(f"cluster{port}")
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(workdir / "nodes.conf"), "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for port in ports:
        wait_for(lambda p=port: _pings(p), message=f"cluster node {port}")
    subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
    node = redis.Redis(port=ports[0], decode_responses=True)
    wait_for(lambda: node.cluster("info")["cluster_state"] == "ok", timeout=20, message="cluster_state ok")
    yield f"redis://127.0.0.1:{ports[0]}/0"
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster-bus port (port + 10000) is free too, so below 55536."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 45000)
        if port not in ports and all(_is_free(p) for p in (port, port + 10000)):
            ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


def test_tasks_retries_cron_and_events_run_on_a_redis_cluster(cluster_url, tmp_path: Path):
    client = connect(cluster_url)
    assert client.__class__.__name__ == "RedisCluster"
    client.flushall()
    env = {"UPNEXT_REDIS_URL": cluster_url}
    workers = [WorkerProcess(app, log_path=tmp_path / f"{i}.log", env=env)
               for i, app in enumerate(["tests.apps.jobs:worker", "tests.apps.flows:worker"])]
    try:
        for w in workers:
            w.wait_registered(client, count=2)
        submitter = upnext.Worker("web", redis_url=cluster_url)

        @submitter.task(name="add")
        def add(a: int, b: int) -> int: ...

        @submitter.task(name="fails_until")
        def fails_until(succeed_on: int) -> dict: ...

        assert add.wait(2, 3, wait_timeout=20).value == 5
        retried = fails_until.submit(3).result(timeout=30)
        assert retried.value == {"attempt": 3} and retried.attempts == 3
        futures = submitter.event("order.placed").send(order_id="c-1")
        outcomes = upnext.gather(*futures, return_exceptions=True, timeout=30)
        assert "confirmed c-1" in outcomes
        assert any(isinstance(o, upnext.TaskExecutionError) and "declined" in o.error for o in outcomes)
        wait_for(lambda: client.llen("ledger:every_second") >= 2, timeout=20, message="cron runs")
        runs = [json.loads(x) for x in client.lrange("ledger:every_second", 0, -1)]
        instants = [client.hget(keys.job("upnext", r["job_id"]), "cron_at") for r in runs]
        assert len(set(instants)) == len(instants)
        status = subprocess.run(["python3", "-m", "upnext.cli", "status", "--json", "--redis-url", cluster_url],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert len(json.loads(status.stdout)["workers"]) == 2
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            print(w.output())


def test_status_reads_and_prunes_worker_records_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    record = {"id": "w1", "concurrency": 1, "active": 1, "functions": ["fn"], "claim_timeout_ms": 30000}
    queue.registry.register("w1", json.dumps(record), 60, {"fn": json.dumps({"kind": "task"})})
    client.hset(keys.last_seen("upnext"), "gone", json.dumps({**record, "id": "gone", "heartbeat_at": 1.0}))
    queue.enqueue_many([build_job("fn", "[]", "{}") for _ in range(3)] + [build_job("fn", "[]", "{}", delay_s=60)])
    queue.take("gone", "gone", {"fn": 1})
    report = Overview(queue).read()
    assert [(w["id"], w["alive"]) for w in report["workers"]] == [("w1", True), ("gone", False)]
    assert [n["kind"] for n in report["notes"]] == ["all_slots_busy", "delayed", "awaiting_reclaim"]
    assert queue.registry.prune_workers(keep_dead_s=60) == []  # "gone" was never in the worker set
    assert not client.hexists(keys.last_seen("upnext"), "gone") and client.hexists(keys.last_seen("upnext"), "w1")


def test_purge_retry_annotate_sweep_and_a_tolerant_read_work_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    first = queue.enqueue(build_job("fn", "[]", "{}", key="order-1"))
    queue.enqueue_many([build_job("fn", "[]", "{}") for _ in range(2)])
    ((running, reply),) = queue.take("w1", "w1", {"fn": 1})
    assert running.job_id == first and reply[0] == "run"
    assert queue.annotate(first, lease=(running.entry_id, "w1"), progress=0.5)
    assert Admin(queue).purge("fn") == 2
    assert queue.settle("w1", [Completion(running, "failed", error="x", idem_key="order-1")]) == ["ok"]
    assert Admin(queue).retry(first) == "queued"
    assert queue.enqueue(build_job("fn", "[]", "{}", key="order-1")) == first
    assert queue.registry.sweep_consumers(["fn"], 0) == ["w1"]
    tolerant = queue.with_client(connect(cluster_url, tolerant=True))
    raw = redis.RedisCluster.from_url(cluster_url)
    raw.xadd(keys.stream("upnext", "fn"), {b"id": b"fn:\xff"})
    replies = [r[0] for _, r in tolerant.take("w2", "w2", {"fn": 10})]
    assert sorted(replies) == ["garbage", "run"]


def test_a_routing_group_cap_holds_and_a_dead_workers_group_lease_lapses_on_a_redis_cluster(cluster_url, tmp_path):
    client = connect(cluster_url)
    client.flushall()
    env = {"UPNEXT_REDIS_URL": cluster_url, "UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}
    workers = [WorkerProcess("tests.apps.limited:worker", "--concurrency", "10", log_path=tmp_path / f"{i}.log",
                             env=env) for i in range(2)]
    try:
        for w in workers:
            w.wait_registered(client, count=2)
        web = upnext.Worker("web", redis_url=cluster_url)
        summarize, translate, slow_hog, slow_other = (web.task(name=n)(lambda **_: None) for n in (
            "summarize", "translate", "slow_hog", "slow_other"))
        futures = [*upnext.submit_many(summarize, [{"i": i} for i in range(12)]),
                   *upnext.submit_many(translate, [{"i": i} for i in range(6)])]
        assert upnext.gather(*futures, timeout=60) == [*range(12), *range(6)]
        assert int(client.get("{track:llm}:max")) == 2 and int(client.get("{track:translate}:max")) == 1
        slow_hog.submit(seconds=60)
        wait_for(lambda: client.llen("starts:slow_hog") == 1, message="the hog holding the group's only lease")
        (hog_worker,) = [w for w in workers if w.pid == int(client.lindex("starts:slow_hog", 0))]
        for w in workers:  # nothing may reclaim the hog: only expiry can free the lease
            w.signal(9 if w is hog_worker else 15)
            w.wait()
        ((_, expires_ms),) = client.zrange(keys.group_leases("upnext", "slow"), 0, -1, withscores=True)
        workers.append(WorkerProcess("tests.apps.limited:other_worker", log_path=tmp_path / "other.log", env=env))
        other = slow_other.submit().result(timeout=30)
        assert other.started_at.timestamp() >= expires_ms / 1000
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            print(w.output())


def test_pause_and_resume_keep_each_call_in_one_slot_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    queue.registry.register("w1", json.dumps({"id": "w1", "functions": ["fn"]}), 60, {"fn": json.dumps({})})
    job_id = queue.enqueue(build_job("fn", "[]", "{}"))
    (delivery,) = queue.fetch("w1", ["fn"], 1, None)
    assert queue.pauses.pause("fn") and queue.pauses.paused() == {"fn"}
    assert queue.start("w1", "w1", [delivery]) == [["paused"]] and queue.take("w1", "w1", {"fn": 1}) == []
    assert queue.registry.cron_fire("fn", "", 1.0, "* * * * * *", []) is False
    assert Overview(queue).read()["functions"][0]["paused"] is True
    assert queue.pauses.resume("fn") and not queue.pauses.is_paused("fn")
    assert [(d.job_id, reply[0]) for d, reply in queue.take("w1", "w1", {"fn": 1})] == [(job_id, "run")]


def test_history_stats_and_every_jobs_query_work_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    assert client.keyslot(keys.ended("upnext", "fn")) != client.keyslot(keys.ended("upnext", "other"))
    root = queue.enqueue(build_job("other", "[]", "{}"))
    queue.enqueue_many([NewJob(new_job_id("fn"), "[]", "{}", key=f"k{i}", parent_id=root, root_id=root)
                        for i in range(4)])
    ended = []
    for i in range(4):
        ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
        status = "failed" if i == 1 else "complete"
        assert queue.settle("w1", [Completion(delivery, status, idem_key=f"k{i}", root_id=root, run_s=0.2)]) == ["ok"]
        ended.append(delivery.job_id)
    ((delivery, _),) = queue.take("w1", "w1", {"other": 1})
    queue.settle("w1", [Completion(delivery, "retry", delay_s=60, run_s=0.2)])
    assert queue.cancel(root)[0] == "cancelled"
    pages, cursor = [], None
    while True:
        rows, cursor = list_jobs(queue, ["fn", "other"], limit=2, cursor=cursor)
        pages += [r["job_id"] for r in rows]
        if cursor is None:
            break
    assert pages == [root, *ended[::-1]]
    assert [r["job_id"] for r in list_jobs(queue, ["fn", "other"], status="failed")[0]] == [ended[1]]
    assert [r["job_id"] for r in list_jobs(queue, ["fn", "other"], status="cancelled")[0]] == [root]
    assert [r["job_id"] for r in list_jobs(queue, ["fn", "other"], status="complete", limit=1)[0]] == [ended[3]]
    assert [r["job_id"] for r in list_jobs(queue, ["fn", "other"], key="k2")[0]] == [ended[2]]
    assert sorted(r["job_id"] for r in list_jobs(queue, ["fn", "other"], root_id=root)[0]) == sorted([root, *ended])
    total = client.hgetall(keys.stats_total("upnext", "fn"))
    assert (total["completed"], total["failed"], total["run_n"]) == ("3", "1", "4")
    other = client.hgetall(keys.stats_total("upnext", "other"))
    assert (other["retried"], other["cancelled"]) == ("1", "1")
    detail = read_detail(queue, root, functions=["fn", "other"])
    assert detail is not None and sorted(detail.to_dict()["children"]) == sorted(ended)


def test_cron_options_and_run_time_crons_on_a_redis_cluster(cluster_url, tmp_path: Path):
    """A cron with arguments and overlap=False, and a run-time cron added and removed by the CLI:
    the definitions hash, the cursors and cron_fire.lua each keep to their slots."""
    client = connect(cluster_url)
    client.flushall()
    env = {"UPNEXT_REDIS_URL": cluster_url}
    worker = WorkerProcess("tests.apps.crons:worker", log_path=tmp_path / "crons.log", env=env)
    cron = ["python3", "-m", "upnext.cli", "cron"]
    try:
        worker.wait_registered(client)
        added = subprocess.run([*cron, "add", "nightly", "* * * * * *", "report", "--args", '["eu"]', "--json",
                                "--redis-url", cluster_url], capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        wait_for(lambda: client.llen("ledger:report") >= 2, timeout=30, message="run-time cron runs")
        wait_for(lambda: client.llen("ledger:greets") >= 2, timeout=30, message="declared cron runs")
        runs = [json.loads(x) for x in client.lrange("ledger:report", 0, -1)]
        instants = [client.hget(keys.job("upnext", r["job_id"]), "cron_at") for r in runs]
        assert len(set(instants)) == len(instants) and {r["region"] for r in runs} == {"eu"}
        listed = subprocess.run([*cron, "list", "--json", "--redis-url", cluster_url], capture_output=True,
                                text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert {"nightly", "greets", "slow_report"} <= {row["cron"] for row in json.loads(listed.stdout)}
        removed = subprocess.run([*cron, "remove", "nightly", "--redis-url", cluster_url], capture_output=True,
                                 text=True, timeout=60)
        assert removed.returncode == 0, removed.stderr
        assert not client.exists(keys.cron("upnext", "report:nightly"))
    finally:
        worker.stop()
        print(worker.output())


def test_an_expired_job_ends_in_one_slot_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    job_id = queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}", key="once", expires_s=0.2))
    wait_for(lambda: queue.redis_time() > float(queue.fields(job_id, "expires_at")[0]), message="expiry passed")
    assert [(d.job_id, reply[0]) for d, reply in queue.take("w1", "w1", {"fn": 1})] == [(job_id, "expired")]
    assert queue.fields(job_id, "status", "failure_reason") == ["cancelled", "expired"]
    assert [r["job_id"] for r in list_jobs(queue, ["fn"], key="once")[0]] == [job_id]
    assert client.hget(keys.stats_total("upnext", "fn"), "cancelled") == "1"


def test_a_full_queue_refuses_in_one_slot_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    cap = QueueBound(max_queued=2)
    jobs = [NewJob(new_job_id("fn"), "[]", "{}", bound=cap, delay_s=60 * i) for i in range(2)]
    assert queue.enqueue_many([*jobs, NewJob(new_job_id("other"), "[]", "{}", bound=cap)])
    with pytest.raises(upnext.QueueFull, match="task 'fn' is full: 2 jobs queued"):
        queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}", bound=cap))
    ((delivery, reply),) = queue.take("w1", "w1", {"fn": 1})
    assert reply[0] == "run" and queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}", bound=cap))


def test_priorities_keep_every_stream_in_the_tasks_slot_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    assert len({client.keyslot(s) for s in keys.streams("upnext", "fn")}) == 1
    ids = {level: queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}", priority=level)) for level in ("low", "high")}
    ids["normal"] = queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}"))
    taken = queue.take("w1", "w1", {"fn": 3})
    assert [d.job_id for d, _ in taken] == [ids["high"], ids["normal"], ids["low"]]
    assert queue.settle("w1", [Completion(taken[0][0], "retry"), Completion(taken[1][0], "complete")]) == ["ok", "ok"]
    assert queue.release("w1", [taken[2][0]], started=True) == ["ok"]
    assert [d.job_id for d, _ in queue.take("w1", "w1", {"fn": 2})] == [ids["high"], ids["low"]]
    assert len(queue.reclaim("w2", "fn", 0, 5)) == 2 and Admin(queue).purge("fn") == 0
    queue.ensure_groups(["fn", "other"])
    assert queue.fetch("w1", ["fn", "other"], 1, None) == []


def _functions_on_every_node(client: redis.RedisCluster, per_node: int) -> list[str]:
    """Task names whose slots fall on each master, ``per_node`` of each, interleaved by node."""
    by_node: dict[str, list[str]] = {node.name: [] for node in client.get_primaries()}
    i = 0
    while any(len(names) < per_node for names in by_node.values()):
        name = f"spread{i}"
        names = by_node[client.get_node_from_key(keys.stream("upnext", name)).name]
        if len(names) < per_node:
            names.append(name)
        i += 1
    return [name for group in zip(*by_node.values()) for name in group]


def _per_node(client: redis.RedisCluster, section: str, read) -> dict[str, int]:
    return {node.name: read(client.get_redis_connection(node).info(section)) for node in client.get_primaries()}


def _reads(client: redis.RedisCluster) -> dict[str, int]:
    """Read events each master's event loop has processed: a pipeline written at once is one."""
    return _per_node(client, "stats", lambda info: info["total_reads_processed"])


def test_a_batch_of_several_tasks_starts_and_settles_in_one_round_trip_per_node_on_a_redis_cluster(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    functions = _functions_on_every_node(client, per_node=3)
    queue.ensure_groups(functions)
    for script in (queue.scripts.start, queue.scripts.finish):
        client.script_load(script.script)  # on every master: no NOSCRIPT round below
    job_ids = queue.enqueue_many([build_job(f, "[]", "{}") for f in functions])
    idle = [_reads(client), _reads(client)]  # what reading the counters costs by itself
    cost = {name: idle[1][name] - idle[0][name] for name in idle[0]}
    before = _reads(client)
    taken = queue.take("w1", "w1", {f: 1 for f in functions})
    after = _reads(client)
    assert {name: after[name] - before[name] - cost[name] for name in before} == {name: 1 for name in before}
    assert sorted(d.job_id for d, reply in taken if reply[0] == "run") == sorted(job_ids)
    by_job = {d.job_id: d for d, _ in taken}
    statuses = ["failed" if i % 2 else "complete" for i in range(len(job_ids))]
    completions = [Completion(by_job[j], s, error="x" if s == "failed" else "") for j, s in zip(job_ids, statuses)]
    before = _reads(client)
    assert queue.settle("w1", completions) == ["ok"] * len(job_ids)
    after = _reads(client)
    assert {name: after[name] - before[name] - cost[name] for name in before} == {name: 1 for name in before}
    assert queue.statuses(job_ids) == statuses  # replies in the caller's order, across the nodes


def test_a_batch_follows_a_slot_moved_to_another_node_on_a_redis_cluster(cluster_url):
    """The client's slot map is stale once a slot moves (resharding, failover): the calls that
    meet MOVED run again one by one through the cluster client, which follows the slot."""
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    moved, stays = _functions_on_every_node(client, per_node=1)[:2]
    slot = client.keyslot(keys.stream("upnext", moved))
    source = client.get_node_from_key(keys.stream("upnext", moved))
    target = next(n for n in client.get_primaries() if n.name not in (source.name,))
    target_id = client.get_redis_connection(target).execute_command("CLUSTER MYID")
    queue.ensure_groups([stays])
    for node in [target, *(n for n in client.get_primaries() if n.name != target.name)]:
        client.get_redis_connection(node).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
    assert client.get_node_from_key(keys.stream("upnext", moved)).name == source.name  # stale, as after a move
    job_ids = queue.enqueue_many([build_job(moved, "[]", "{}"), build_job(stays, "[]", "{}")])
    queue.ensure_groups([moved])
    taken = queue.take("w1", "w1", {moved: 1, stays: 1})
    assert sorted(d.job_id for d, reply in taken if reply[0] == "run") == sorted(job_ids)
    assert client.get_redis_connection(target).exists(keys.stream("upnext", moved)) == 1


def _xreadgroups(client: redis.RedisCluster) -> int:
    counts = _per_node(client, "commandstats", lambda info: info.get("cmdstat_xreadgroup", {}).get("calls", 0))
    return sum(counts.values())


IDLE_WINDOW_S = 2.0


def test_an_idle_worker_with_several_tasks_blocks_on_their_streams_on_a_redis_cluster(cluster_url, tmp_path):
    """Not a poll every 50 ms: one blocking XREADGROUP per task and second (FETCH_BLOCK_MS), and a
    job submitted to the idle worker starts at once."""
    client = connect(cluster_url)
    client.flushall()
    worker = WorkerProcess("tests.apps.queueing:worker", log_path=tmp_path / "w.log",
                           env={"UPNEXT_REDIS_URL": cluster_url})
    try:
        worker.wait_registered(client)
        web = upnext.Worker("web", redis_url=cluster_url)
        noted = web.task(name="noted")(lambda tag: None)
        assert noted.wait("warm", wait_timeout=60).value == "warm"
        before = _xreadgroups(client)
        time.sleep(IDLE_WINDOW_S)  # the window measured, not a condition waited for
        reads = _xreadgroups(client) - before
        assert reads <= 4 * (IDLE_WINDOW_S + 2), f"{reads} XREADGROUP calls in {IDLE_WINDOW_S} s of 4 idle tasks"
        assert noted.submit("prompt").result(timeout=30).value == "prompt"
    finally:
        worker.stop()
        print(worker.output())


class Interrupted(Exception):
    """Raised in the main thread by a signal, as a kill interrupts the fetch loop's greenlet."""


def test_an_interrupted_blocking_read_leaves_no_read_behind_on_a_redis_cluster(cluster_url):
    """A blocking read of several tasks cut short by its caller must end every task's read before
    it returns: one left blocked would take the next job into this consumer's PEL, where nobody
    would start it (it would wait for the reclaimer)."""
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    first, second = _functions_on_every_node(client, per_node=1)[:2]
    queue.ensure_groups([first, second])

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            queue.fetch("w1", [first, second], 1, 5000)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    job_id = queue.enqueue(build_job(first, "[]", "{}"))
    assert [d.job_id for d in queue.fetch("w2", [first], 1, None)] == [job_id]


def test_a_blocking_read_of_several_tasks_makes_their_groups_and_returns_with_the_first_entries(cluster_url):
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    first, second = _functions_on_every_node(client, per_node=1)[:2]
    assert queue.fetch("w1", [first, second], 1, 10000) == []  # NOGROUP at once: the groups are made
    job_id = queue.enqueue(build_job(second, "[]", "{}"))
    began = time.monotonic()
    assert [d.job_id for d in queue.fetch("w1", [first, second], 1, 10000)] == [job_id]
    assert time.monotonic() - began < 5, "the other task's read was not cut short"
    assert client.xpending(keys.stream("upnext", second), keys.GROUP)["pending"] == 1
