"""The least-privilege Redis ACL for upnext: the keys under its prefix, the pub/sub channels
under its prefix, and only the commands the library sends (its own calls and those inside its
Lua scripts, which Redis checks against the caller's ACL too). ``upnext-gevent acl`` prints it;
tests/test_acl.py runs every feature as a user made from it and checks that Redis denied nothing
else."""

from __future__ import annotations

from upnext.errors import ConfigError

# Sorted; each one is sent by upnext's Python code or its Lua scripts. Left out on purpose:
# CONFIG GET, which would reveal every setting, passwords included (without it the worker skips its
# maxmemory-policy check with a warning, maxmemory_policy_unknown); and CLIENT SETINFO, with which
# redis-py names its connections on Redis >= 7.2 and whose refusal it ignores (the rule would
# not parse on the Redis 6.2 and 7.0 that upnext supports).
COMMANDS = (
    "blpop",
    "client|id", "client|unblock",  # Redis Cluster: a worker ends its other blocking reads once one returns
    "del", "evalsha", "exists", "expire", "get",
    "hdel", "hexists", "hget", "hgetall", "hincrby", "hincrbyfloat", "hkeys", "hmget", "hset", "hstrlen",
    "info",  # INFO cluster: is this node part of a Redis Cluster?
    "lrange", "ltrim", "mget", "persist", "pexpire", "ping", "publish", "pubsub|numsub", "rpush",
    "sadd", "script|load", "select", "set", "smembers", "srem", "subscribe", "time", "ttl", "unsubscribe",
    "xack", "xadd", "xclaim", "xdel", "xgroup|create", "xgroup|delconsumer", "xinfo|consumers", "xinfo|groups",
    "xlen", "xpending", "xrange", "xread", "xreadgroup", "xrevrange", "xtrim",
    "zadd", "zcard", "zcount", "zrange", "zrangebyscore", "zrem", "zremrangebyscore", "zrevrange",
    "zrevrangebyscore", "zscore",
)


def rules(prefix: str = "upnext") -> list[str]:
    """The ACL rules: nothing but ``prefix``'s keys and channels, and ``COMMANDS``."""
    if not prefix or any(ch.isspace() or ch in "*?[]\\" for ch in prefix):
        raise ConfigError(f"prefix {prefix!r} cannot go into an ACL key pattern: use one without spaces or *?[]\\")
    return ["resetkeys", f"~{prefix}:*", "resetchannels", f"&{prefix}:*", "-@all", *(f"+{c}" for c in COMMANDS)]


def setuser_line(user: str, password: str, prefix: str = "upnext") -> str:
    """``ACL SETUSER`` for ``user`` (enabled, with ``password``), ready for redis-cli."""
    return " ".join(["ACL", "SETUSER", user, "on", f">{password}", *rules(prefix)])
