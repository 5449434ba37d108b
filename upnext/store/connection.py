"""Redis connections: a plain client (TLS with ``rediss://``), a cluster client when the URL
points at a Redis Cluster node, a client of the master named by Sentinel, the pipeline stand-in
that Redis Cluster needs, and the shapes of the stream replies our clients parse."""

from __future__ import annotations

import ssl
from typing import Any, TypedDict
from urllib.parse import urlsplit

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from upnext import config
from upnext.errors import ConfigError
from upnext.store.scripts import Scripts
from upnext.store.sentinel import sentinel_master

MAX_CONNECTIONS = 1000
CONNECTION_WAIT_S = 30

# Replies as our clients (decode_responses=True, RESP2) parse them. redis-py types its replies for
# every client setting (bytes or str, RESP2 or RESP3), so the calls below cast them to these.
ReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]  # XREADGROUP >: (stream, [(entry id, fields)])
ClaimReply = list[tuple[str, dict[str, str] | None]]  # XCLAIM: (entry id, fields; None once deleted)


class PendingEntry(TypedDict):
    """One entry of XPENDING's extended form, as redis-py parses it."""

    message_id: str
    consumer: str
    time_since_delivered: int
    times_delivered: int


def connect(url: str, tolerant: bool = False) -> redis.Redis:
    """A client for ``url``; a Redis Cluster node is detected and gets a cluster client, a
    ``redis+sentinel://`` URL a client of the master the sentinels name. (If Redis is down at
    this point, the plain client is kept and retried by the caller; a TLS handshake that fails is
    a ConfigError: retrying would not change the certificates.)

    The pool blocks rather than fails when it is full: every greenlet with a command in flight
    holds a connection, and redis-py's default pool raises past 100 of them.

    ``tolerant``: replies are decoded with ``surrogateescape``, so bytes that are not UTF-8 (a
    stray write into a stream) reach the worker's loops as text they recognise as garbage and
    drop, never as a decoding error that stops the loop. Only the loops that read streams use it."""
    errors = "surrogateescape" if tolerant else "strict"
    if urlsplit(url).scheme.lower() == config.SENTINEL_SCHEME:
        return sentinel_master(url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S, decode_responses=True,
                               health_check_interval=30, encoding_errors=errors)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S,
                                                 decode_responses=True, health_check_interval=30,
                                                 encoding_errors=errors)
    client = redis.Redis(connection_pool=pool)
    try:
        clustered = client.info("cluster").get("cluster_enabled")
    except redis.ConnectionError as exc:
        refuse_tls_failure(url, exc)
        return client
    except redis.RedisError:
        return client
    if not clustered:
        return client
    pool.disconnect()
    return RedisCluster.from_url(url, decode_responses=True, encoding_errors=errors)  # type: ignore[return-value]


def refuse_tls_failure(url: str, exc: redis.ConnectionError) -> None:
    """A ConfigError naming the URL (password masked) and the cause when ``exc`` comes from the TLS
    setup (a certificate not trusted, a CA or key file missing): settings to fix, not an outage."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, (ssl.SSLError, FileNotFoundError)):
        raise ConfigError(f"cannot connect to Redis at {config.mask_url(url)}: TLS setup failed: "
                          f"{type(cause).__name__}: {cause}") from None


class ScriptPipeline(Pipeline):
    """A non-transactional pipeline that skips redis-py's SCRIPT EXISTS preflight (a round trip
    per execute) and instead re-runs, through their Script, the calls that met NOSCRIPT (after a
    Redis restart or SCRIPT FLUSH). A NOSCRIPT call did not run, so running it again is safe."""

    def __init__(self, client: redis.Redis):
        super().__init__(client.connection_pool, client.response_callbacks, transaction=False, shard_hint=None)

    def load_scripts(self) -> None:
        """Nothing up front: see execute."""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = [args for args, _ in self.command_stack]
        by_sha = {script.sha: script for script in self.scripts}
        results = super().execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError) and stack[i][0] == "EVALSHA":
                _, sha, numkeys, *rest = stack[i]
                results[i] = by_sha[sha](keys=rest[:int(numkeys)], args=rest[int(numkeys):])
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


class Sequential:
    """Pipeline stand-in for Redis Cluster, whose pipelines refuse EVALSHA: calls are recorded
    and run one by one on ``execute`` (scripts through their Script, which reloads on NOSCRIPT)."""

    def __init__(self, client: Any, scripts: Scripts):
        self._client = client
        self._scripts = {script.sha: script for script in vars(scripts).values()}
        self._calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

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
