"""Apps the tests run in real worker processes, and the ledger their jobs write facts to, so
tests read what the jobs saw instead of guessing from timing."""

import os

import redis

from upnext.store.connection import connect

_ledgers: dict[str, redis.Redis] = {}


def ledger(url_variable: str = "UPNEXT_REDIS_URL") -> redis.Redis:
    """The jobs' client for the server named by ``url_variable``, made once per process and
    variable (a Redis Cluster node gets a cluster client)."""
    if url_variable not in _ledgers:
        client = connect(os.environ[url_variable])  # yields under gevent; a client dropped here would
        # close its pool under a greenlet still using it, so the first one made is kept
        _ledgers.setdefault(url_variable, client)
    return _ledgers[url_variable]
