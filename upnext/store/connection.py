"""Redis connections: a plain client (TLS with ``rediss://``), a cluster client when the URL
points at a Redis Cluster node, a client of the master named by Sentinel, the pipeline stand-in
that Redis Cluster needs (per node), and the shapes of the stream replies our clients parse."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import Any, TypedDict
from urllib.parse import urlsplit

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, NoScriptError, RedisClusterException, TryAgainError

from upnext import config
from upnext.errors import ConfigError
from upnext.store import keys
from upnext.store.records import Delivery
from upnext.store.scripts import Scripts
from upnext.store.sentinel import sentinel_master

MAX_CONNECTIONS = 1000
CONNECTION_WAIT_S = 30

# Replies as our clients (decode_responses=True, RESP2) parse them. redis-py types its replies for
# every client setting (bytes or str, RESP2 or RESP3), so the calls below cast them to these.
ReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]  # XREADGROUP >: (stream, [(entry id, fields)])
ClaimReply = list[tuple[str, dict[str, str] | None]]  # XCLAIM: (entry id, fields; None once deleted)


def deliveries_of(reply: ReadReply | None) -> list[Delivery]:
    """An XREADGROUP reply as deliveries, each naming its entry by its priority's token."""
    return [Delivery(_function_of_stream(stream), keys.entry_token(keys.level_of_stream(stream), entry_id),
                     fields.get("id", ""))
            for stream, entries in reply or () for entry_id, fields in entries]


def _function_of_stream(stream: str) -> str:
    return stream[stream.index("{") + 1: stream.rindex("}")]


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


class OwnConnectionPipeline(ScriptPipeline):
    """A ScriptPipeline on a single-connection client's own connection (``Queue.dedicated``): no
    pool checkout, whose readiness check costs several system calls, for the loop that owns it."""

    def __init__(self, client: redis.Redis):
        super().__init__(client)
        self._own = client

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.connection = self._own.connection
        return super().execute(raise_on_error)

    def reset(self) -> None:  # type: ignore[override]  # Pipeline.reset, not the RESET command
        self.connection = None  # the client's, held for good: not the pool's to take back
        super().reset()


# Pipeline methods whose first argument is their only key: NodePipelines sends them to that key's
# node. Any other command (several keys, or none) runs by itself through the cluster client.
KEYED = frozenset((
    "expire", "get", "hdel", "hget", "hgetall", "hincrby", "hkeys", "hmget", "hset", "lrange", "sadd", "set",
    "smembers", "srem", "xack", "xdel", "xinfo_groups", "xlen", "xpending", "xpending_range", "xrange",
    "xrevrange", "zadd", "zcard", "zcount", "zrange", "zrem", "zrevrange", "zscore",
))
ONE_KEY_WHEN_ALONE = frozenset(("delete", "exists", "unlink"))  # several keys: several slots, maybe
# Replies after which a call runs again by itself through the cluster client, which follows the
# slot to its new node (MOVED, ASK: resharding, failover) and loads a script Redis lost (NOSCRIPT).
# None of these calls ran, so running it again is safe.
RERUN = (NoScriptError, AskError, TryAgainError, ClusterDownError)


class NodeCall:
    """One recorded call: its packed command, the node of its key (None: run it by itself), and
    the same call through the cluster client, for the one-by-one path."""

    __slots__ = ("args", "options", "node", "alone")

    def __init__(self, args: tuple[Any, ...], options: dict[str, Any], node: Any, alone: Callable[[], Any]):
        self.args, self.options, self.node, self.alone = args, options, node, alone


class NodePipelines:
    """Pipeline stand-in for Redis Cluster, whose pipelines refuse EVALSHA: each call goes to the
    node that owns its key's slot (every script call keeps to one slot; its first key names it),
    all nodes' calls are written first and their replies read after, so a batch costs one round
    trip however many tasks and nodes it spans. Replies come back in the caller's order.

    A call that meets MOVED/ASK/TRYAGAIN/CLUSTERDOWN or NOSCRIPT (it did not run) runs again by
    itself through the cluster client, which follows the slot and reloads the script. A node
    whose connection fails mid-batch has its calls whose replies were not read run again the same
    way, as redis-py's own cluster pipeline and client retry on a connection error: such a call
    may have run, so this is at least once. The worker's scripts (start, finish, retry, release,
    touch) are fenced by the entry id and consumer and refuse a repeat as stale; an enqueue
    repeated may write its jobs twice, as a submit the caller retries after an outage would."""

    def __init__(self, client: RedisCluster, scripts: Scripts):
        self._client: Any = client  # redis-py leaves the cluster and connection methods untyped
        self._scripts = {script.sha: script for script in vars(scripts).values()}
        self._calls: list[NodeCall] = []
        self._scratch: Pipeline | None = None

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> NodePipelines:
        script, keys, args = self._scripts[sha], keys_and_args[:numkeys], keys_and_args[numkeys:]
        node = self._node_of(keys[0]) if keys else None
        self._calls.append(NodeCall(("EVALSHA", sha, numkeys, *keys_and_args), {}, node,
                                    functools.partial(script, keys=keys, args=args, client=self._client)))
        return self

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def record(*args: Any, **kwargs: Any) -> NodePipelines:
            key = _key_of(name, args, kwargs)
            node = self._node_of(key) if key is not None else None
            packed: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
            if node is not None:
                scratch = self._scratch or self._client.get_redis_connection(node).pipeline(transaction=False)
                self._scratch = scratch
                getattr(scratch, name)(*args, **kwargs)
                packed = scratch.command_stack.pop()
            self._calls.append(NodeCall(packed[0], packed[1], node, functools.partial(method, *args, **kwargs)))
            return self
        return record

    def _node_of(self, key: Any) -> Any:
        try:
            return self._client.get_node_from_key(key)
        except RedisClusterException:  # the slot map is being refreshed: the cluster client finds it
            return None

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        calls, self._calls = self._calls, []
        results: list[Any] = [_UNREAD] * len(calls)
        routed: dict[str, list[int]] = {}
        for i, call in enumerate(calls):
            if call.node is not None:
                routed.setdefault(call.node.name, []).append(i)
                continue
            # A call that runs by itself goes after the calls before it and before those after
            # it: they may touch its keys (DEL then HSET of the same key, say).
            _send_and_read(self._client, calls, routed, results)
            routed = {}
            results[i] = _run_alone(call)
        _send_and_read(self._client, calls, routed, results)
        for i, result in enumerate(results):
            if result is _UNREAD or isinstance(result, RERUN):
                results[i] = _run_alone(calls[i])
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


_UNREAD = object()


def _run_alone(call: NodeCall) -> Any:
    """The call through the cluster client; a reply error as the result, like a pipeline's."""
    try:
        return call.alone()
    except redis.ResponseError as exc:
        return exc


def _key_of(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The key of a pipeline method call that has one (KEYED, or XREADGROUP's first stream: all
    the streams we read at once are one task's, one slot); None for any other."""
    if name == "xreadgroup":
        streams = kwargs.get("streams", args[2] if len(args) > 2 else None)
        return next(iter(streams)) if streams else None
    if name in KEYED or (name in ONE_KEY_WHEN_ALONE and len(args) == 1):
        return args[0] if args else kwargs.get("name")
    return None


def _send_and_read(client: Any, calls: list[NodeCall], by_node: dict[str, list[int]],
                   results: list[Any]) -> None:
    """Write each node's calls on one of its connections, then read every node's replies into
    ``results``; the calls of a node whose connection fails stay _UNREAD (their replies unread)."""
    sent = []
    for indexes in by_node.values():
        node_client: Any = client.get_redis_connection(calls[indexes[0]].node)
        try:
            connection: Any = node_client.connection_pool.get_connection()
        except (redis.ConnectionError, redis.TimeoutError):
            continue  # the node is down: its calls run alone, and the cluster client finds its successor
        sent.append((node_client, connection, indexes))
        try:
            connection.send_packed_command(connection.pack_commands([calls[i].args for i in indexes]))
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # its calls stay _UNREAD and run alone
            sent[-1] = (node_client, connection, [])
    done = 0
    try:
        for node_client, connection, indexes in sent:
            try:
                for i in indexes:
                    try:
                        results[i] = node_client.parse_response(connection, calls[i].args[0], **calls[i].options)
                    except redis.ResponseError as exc:
                        results[i] = exc
            except (redis.ConnectionError, redis.TimeoutError):
                connection.disconnect()
            node_client.connection_pool.release(connection)
            done += 1
    finally:
        for node_client, connection, _ in sent[done:]:  # interrupted: replies may still be on the way
            connection.disconnect()
            node_client.connection_pool.release(connection)
