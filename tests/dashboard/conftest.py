"""Fixtures of the dashboard tests: the WSGI app in-process (a werkzeug test client keeps its
cookies, as a browser does) against the suite's real redis-server, beside a real worker."""

from __future__ import annotations

import re

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
