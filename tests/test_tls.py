"""``rediss://`` end to end: a redis-server that speaks only TLS and asks clients for a
certificate, with a CA, server and client certificates made here by openssl. A worker through the
CLI (URL from the flag, then from a config file) runs a job submitted over TLS, ``status`` works,
and a CA that does not trust the server fails at once with the URL (password masked) and the cause."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

import upnext
from tests.conftest import free_port
from tests.workers import ROOT, WorkerProcess, stop_all, wait_for

PASSWORD = "s3cret-tls"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificate(name: str, signer: str, cwd: Path) -> None:
    """``name``.crt/.key signed by ``signer``.crt/.key, valid for 127.0.0.1 (the hostname check)."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=cwd)
    # the extensions Python >= 3.13's strict verification (VERIFY_X509_STRICT) asks of a leaf
    (cwd / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                     "authorityKeyIdentifier=keyid,issuer\nbasicConstraints=critical,CA:FALSE\n"
                                     "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                     "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{signer}.crt", "-CAkey", f"{signer}.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd)


def _authority(name: str, cwd: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=cwd)



def _tls_url(port: int, certs: Path, ca: str = "ca") -> str:
    return (f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={certs / f'{ca}.crt'}"
            f"&ssl_certfile={certs / 'client.crt'}&ssl_keyfile={certs / 'client.key'}")


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A redis-server with ``--port 0`` (no plaintext) and ``--tls-port``, requiring client
    certificates (tls-auth-clients defaults to yes) and a password. ``other-ca`` signed nothing."""
    if shutil.which("openssl") is None or shutil.which("redis-server") is None:
        pytest.fail("the TLS tests need openssl and redis-server (apt-get install openssl redis-server)", pytrace=False)
    certs = tmp_path / "certs"
    certs.mkdir()
    _authority("ca", certs)
    _authority("other-ca", certs)
    _certificate("server", "ca", certs)
    _certificate("client", "ca", certs)
    port = free_port()
    log = open(tmp_path / "redis-tls.log", "ab")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", PASSWORD,
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "ca.crt")], stdout=log, stderr=subprocess.STDOUT)
    server = SimpleNamespace(url=_tls_url(port, certs), wrong_ca_url=_tls_url(port, certs, "other-ca"), certs=certs)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        wait_for(lambda: proc.poll() is not None or _pings(client), timeout=20, message="the TLS redis-server")
        assert proc.poll() is None, (tmp_path / "redis-tls.log").read_text()
        server.client = client
        yield server
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        log.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def tls_workers(tls_redis: SimpleNamespace, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    stop_all(started)


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args, "--redis-url", url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _submit_over_tls(url: str) -> int:
    submitter = upnext.Worker("tls-submitter", redis_url=url)

    @submitter.task
    def add(a: int, b: int) -> int:  # the worker process runs tests.apps.jobs's add of this name
        raise AssertionError("runs in the worker process, never here")

    return int(add.submit(2, 3).value(timeout=60))


def test_worker_runs_a_job_submitted_over_tls_and_status_sees_it(tls_redis, tls_workers, tmp_path):
    tls_workers.append(WorkerProcess("tests.apps.jobs:worker", "--redis-url", tls_redis.url,
                                     log_path=tmp_path / "worker.log"))
    tls_workers[0].wait_registered(tls_redis.client, timeout=60)
    assert _submit_over_tls(tls_redis.url) == 5
    done = _cli("status", "--json", url=tls_redis.url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [w["pid"] for w in report["workers"]] == [tls_workers[0].pid]
    assert "add" in {f["function"] for f in report["functions"]}


def test_the_config_file_gives_the_tls_url(tls_redis, tls_workers, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(f"redis_url = {tls_redis.url!r}\n")
    tls_workers.append(WorkerProcess("tests.apps.jobs:worker", "-c", str(conf), log_path=tmp_path / "worker.log",
                                     env={"UPNEXT_REDIS_URL": "redis://127.0.0.1:1/0"}))
    tls_workers[0].wait_registered(tls_redis.client, timeout=60)
    assert _submit_over_tls(tls_redis.url) == 5


def test_a_wrong_ca_fails_at_once_naming_the_url_and_the_cause(tls_redis, tls_workers, tmp_path):
    done = _cli("status", url=tls_redis.wrong_ca_url)
    assert done.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr and "127.0.0.1" in done.stderr
    assert PASSWORD not in done.stderr and ":***@127.0.0.1" in done.stderr, done.stderr
    worker = WorkerProcess("tests.apps.jobs:worker", "--redis-url", tls_redis.wrong_ca_url,
                           log_path=tmp_path / "worker.log")
    tls_workers.append(worker)
    assert worker.wait(timeout=60) != 0  # refused, not retried forever as an outage would be
    assert "CERTIFICATE_VERIFY_FAILED" in worker.output() and ":***@127.0.0.1" in worker.output()
    assert PASSWORD not in worker.output()
    with pytest.raises(upnext.ConfigError, match=r"rediss://:\*\*\*@127\.0\.0\.1.*CERTIFICATE_VERIFY_FAILED"):
        _submit_over_tls(tls_redis.wrong_ca_url)


def test_a_missing_certificate_file_fails_at_once_naming_the_file(tls_redis):
    url = tls_redis.url.replace(str(tls_redis.certs / "ca.crt"), str(tls_redis.certs / "gone.crt"))
    with pytest.raises(upnext.ConfigError, match=r"rediss://:\*\*\*@127\.0\.0\.1.*TLS setup failed: FileNotFoundError"):
        _submit_over_tls(url)
