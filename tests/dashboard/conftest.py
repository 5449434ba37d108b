"""Fixtures of the dashboard tests: the WSGI app in-process (a werkzeug test client keeps its
cookies, as a browser does) against the suite's real redis-server, beside a real worker."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from werkzeug.test import Client

from upnext.dashboard import make_app


@pytest.fixture
def worker(start_worker):
    return start_worker("tests.apps.dashboarded:worker")


@pytest.fixture
def client(redis_client, redis_url):
    return Client(make_app(redis_url))


def csrf_of(client: Client, path: str = "/") -> str:
    """The token a page carries (its meta tag), after the page set the cookie."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]


def post(client: Client, path: str, data: dict | None = None, token: str | None = None):
    headers = {"X-CSRF-Token": token} if token else {}
    return client.post(path, data=data or {}, headers=headers)


class DashboardProcess:
    """``upnext-gevent dashboard ...`` through the real CLI, on a free loopback port."""

    def __init__(self, redis_url: str, log_path, *args: str):
        import socket
        import subprocess
        import sys

        from tests.workers import ROOT

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "upnext.cli", "dashboard", "--bind",
                                      f"127.0.0.1:{self.port}", "--redis-url", redis_url, *args],
                                     cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_serving(self, timeout: float = 30.0) -> DashboardProcess:
        import urllib.error
        import urllib.request

        from tests.workers import wait_for

        def answers() -> bool:
            assert self.proc.poll() is None, f"dashboard exited:\n{self.log_path.read_text()}"
            try:
                urllib.request.urlopen(self.url + "/static/app.css", timeout=2).close()
            except urllib.error.HTTPError:
                return True  # it answered (401 under --auth)
            except OSError:
                return False
            return True

        wait_for(answers, timeout=timeout, interval=0.1, message=f"the dashboard on {self.url}")
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def start_dashboard(redis_client, redis_url, tmp_path):
    started: list[DashboardProcess] = []

    def start(*args: str) -> DashboardProcess:
        proc = DashboardProcess(redis_url, tmp_path / f"dashboard{len(started)}.log", *args)
        started.append(proc)
        return proc.wait_serving()

    yield start
    for proc in started:
        proc.stop()


CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """Headless Chromium through selenium, the driver given explicitly (Selenium Manager cannot
    download one here). Without chromium: a skip that says so, or a failure under CI."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        message = f"no {CHROMIUM} or {DRIVER} here (apt-get install chromium chromium-driver, as .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
