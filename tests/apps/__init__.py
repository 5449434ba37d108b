"""Apps the tests run in real worker processes, and the ledger their jobs write facts to, so
tests read what the jobs saw instead of guessing from timing."""

import os

import redis

from upnext.store.connection import connect

_ledger: redis.Redis | None = None


def ledger() -> redis.Redis:
    """The jobs' client for the test server (UPNEXT_REDIS_URL), made once per process."""
    global _ledger
    if _ledger is None:
        client = connect(os.environ["UPNEXT_REDIS_URL"])  # yields under gevent; a client dropped here would
        # close its pool under a greenlet still using it, so the first one made is kept
        _ledger = _ledger or client
    return _ledger
