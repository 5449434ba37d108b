"""Redis connections: a plain client, or a cluster client when the URL points at a Redis
Cluster node, and the pipeline stand-in that Redis Cluster needs."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

from upnext.scripts import Scripts


def connect(url: str) -> redis.Redis:
    """A client for ``url``; a Redis Cluster node is detected and gets a cluster client. (If
    Redis is down at this point, the plain client is kept and retried by the caller.)"""
    client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
    try:
        clustered = client.info("cluster").get("cluster_enabled")
    except redis.RedisError:
        return client
    if not clustered:
        return client
    client.close()
    return RedisCluster.from_url(url, decode_responses=True)  # type: ignore[return-value]


class Sequential:
    """Pipeline stand-in for Redis Cluster, whose pipelines refuse EVALSHA: calls are recorded
    and run one by one on ``execute`` (scripts through their Script, which reloads on NOSCRIPT)."""

    def __init__(self, client: Any, scripts: Scripts):
        self._client = client
        self._scripts = {script.sha: script for script in vars(scripts).values()}
        self._calls: list[tuple[Any, tuple, dict]] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Sequential:
        script = self._scripts[sha]
        self._calls.append((script, (), {"keys": keys_and_args[:numkeys], "args": keys_and_args[numkeys:],
                                         "client": self._client}))
        return self

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def record(*args: Any, **kwargs: Any) -> Sequential:
            self._calls.append((method, args, kwargs))
            return self
        return record

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        results: list[Any] = []
        for method, args, kwargs in self._calls:
            try:
                results.append(method(*args, **kwargs))
            except redis.ResponseError as exc:
                if raise_on_error:
                    raise
                results.append(exc)
        self._calls = []
        return results
