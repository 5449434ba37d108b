"""Redis Sentinel: a client of the master that the sentinels of a ``redis+sentinel://`` URL name,
which asks them again whenever it reconnects (after a failover, the new master), and a "no
master" error that says, per sentinel, why."""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import parse_url
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool, SentinelManagedConnection

from upnext import config

SENTINEL_CONNECT_S = 2.0  # a dead sentinel is skipped after this long, so the next one is asked


class SentinelBlockingPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's sentinel pool (asks the sentinels for the master's address on each new
    connection, drops connections to a former master), blocking when full as ``connect``'s pools do."""


class MasterConnection(SentinelManagedConnection):
    """A connection to the master that asks the sentinels for its address on every reconnect.
    redis-py re-resolves only in ``connect()``, which its pool calls at checkout; a command on a
    connection held for good (``Queue.dedicated``: the fetch and flush loops) reconnects through
    ``connect_check_health`` instead, which would dial the dead master forever after a failover."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock is None:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class Sentinels(Sentinel):
    """redis-py's Sentinel, whose "no master" error names each sentinel and why it named none
    (redis-py's repeats each sentinel client's whole repr and hides a sentinel's refusal)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        reasons = []
        for i, sentinel in enumerate(self.sentinels):
            where = "{host}:{port}".format(**sentinel.connection_pool.connection_kwargs)
            try:
                masters: dict[str, dict[str, Any]] = sentinel.sentinel_masters()  # type: ignore[assignment]
                state = masters.get(service_name)
            except redis.RedisError as exc:  # down, or a sentinel password missing or wrong
                reasons.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            if state is None:
                reasons.append(f"{where}: monitors no master of that name")
            elif not self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                reasons.append(f"{where}: reports it {state['flags']}")
            else:
                self.sentinels[0], self.sentinels[i] = sentinel, self.sentinels[0]  # ask this one first next time
                return state["ip"], state["port"]
        raise MasterNotFoundError(f"no sentinel names an up master {service_name!r} ({'; '.join(reasons)})")


def sentinel_master(url: str, **pool_options: Any) -> redis.Redis:
    """A client of the master the sentinels of ``url`` name, re-resolved after a failover. The
    URL's user and password are the master's; ``sentinel_username``/``sentinel_password`` (query
    arguments) the sentinels', when they ask for one. ``pool_options`` go to the master's pool."""
    address = config.sentinel_address(url)
    options = parse_url(f"redis://localhost/{address.db}?{address.query}")  # type: ignore[no-untyped-call]
    options.pop("host", None)
    options.update(username=address.username, password=address.password)
    timeouts = {"socket_timeout": options.get("socket_timeout"),
                "socket_connect_timeout": options.get("socket_connect_timeout", SENTINEL_CONNECT_S)}
    sentinels = Sentinels(address.sentinels, sentinel_kwargs={**timeouts, **address.sentinel_auth},  # type: ignore[no-untyped-call]
                          **timeouts)
    master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        address.master, connection_pool_class=SentinelBlockingPool, connection_class=MasterConnection,
        **{**pool_options, **options})
    return master
