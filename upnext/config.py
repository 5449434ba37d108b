"""Settings: one declaration each, read from env, config file, Worker(...) and CLI flags.

Precedence lives in one function, ``resolve``: CLI flags > config file > Worker(...)
arguments > ``UPNEXT_*`` env > defaults. Pure: no Redis, no gevent.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from upnext.errors import ConfigError


def _positive_int(name: str, value: Any) -> int:
    number = _int(name, value)
    if number < 1:
        raise ConfigError(f"{name} must be >= 1, got {value!r}")
    return number


def _int(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _non_negative_int(name: str, value: Any) -> int:
    number = _int(name, value)
    if number < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return number


def _optional_positive_int(name: str, value: Any) -> int | None:
    return None if value is None or value == "" else _positive_int(name, value)


def _positive_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return number


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _optional_str(name: str, value: Any) -> str | None:
    return None if value is None or value == "" else _str(name, value)


def _names(name: str, value: Any) -> tuple[str, ...]:
    """Function names: ``"a,b"`` (a flag, an env var) or a list or tuple of strings (a config file)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{name} must be function names, comma-separated or a list of strings, got {value!r}")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


SENTINEL_SCHEME = "redis+sentinel"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)


def _redis_url(name: str, value: Any) -> str:
    """A URL redis-py can connect to (a Redis Cluster node's redis:// URL too: the cluster is
    detected), checked here so a typo fails --check-config instead of the worker's start."""
    url = _str(name, value)
    expected = f"{name} must be a redis://, rediss:// or unix:// URL (or redis+sentinel://)"
    if "://" not in url:  # 'host:port' or 'user:pw@host': mask it as the redis:// URL it was meant to be
        meant = mask_url(f"redis://{url}")
        raise ConfigError(f"{expected}, got {meant.removeprefix('redis://')!r} (did you mean {meant!r}?)")
    parts = urlsplit(url)
    if parts.scheme.lower() not in REDIS_SCHEMES:
        raise ConfigError(f"{expected}, got {mask_url(url)!r}")
    if parts.scheme.lower() == SENTINEL_SCHEME:
        sentinel_address(url, name)
        return url
    try:
        _ = parts.port  # urllib checks the port only when asked
    except ValueError:
        raise ConfigError(f"{expected}, got {mask_url(url)!r} whose port is not a number") from None
    return url


@dataclass(frozen=True)
class SentinelAddress:
    """A ``redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/db]`` URL, parsed.
    ``username``/``password`` are the master's; the sentinels' own, if they ask for one, come
    from the query arguments ``sentinel_username``/``sentinel_password``, kept apart in
    ``sentinel_auth``. ``query`` is the rest of the query string: options for the master's
    connections."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int
    username: str | None
    password: str | None
    query: str
    sentinel_auth: dict[str, str]


def sentinel_address(url: str, name: str = "redis_url") -> SentinelAddress:
    """``url`` parsed, or a ConfigError naming the setting, the (masked) URL and what is wrong.
    Parsed by hand: urllib's ``port`` refuses the comma-separated host list."""
    expected = f"{name} must look like redis+sentinel://host:port[,host:port...]/MASTER_NAME[/db]"
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = []
    for host in hosts.split(","):
        address, _, port = host.rpartition(":")
        if not address or not port.isdigit():
            raise ConfigError(f"{expected}, got {mask_url(url)!r} whose sentinel {host!r} is not host:port")
        sentinels.append((address.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"{expected}, got {mask_url(url)!r} (the path must be /MASTER_NAME or /MASTER_NAME/db)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    auth = {k.removeprefix("sentinel_"): v for k, v in query if k in ("sentinel_username", "sentinel_password")}
    rest = urlencode([(k, v) for k, v in query if k not in ("sentinel_username", "sentinel_password")])
    return SentinelAddress(sentinels, unquote(path[0]), int(path[1]) if len(path) == 2 else 0,
                           unquote(userinfo.partition(":")[0]) or None,
                           unquote(parts.password) if parts.password is not None else None, rest, auth)


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        text = str(value).lower()
        if text not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return text
    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str, Any], Any]
    doc: str
    secret: bool = False

    @property
    def env(self) -> str:
        queue = self.name in QUEUE_FIELDS
        return f"UPNEXT_{'QUEUE_' if queue else ''}{self.name.upper()}"


QUEUE_FIELDS = ("batch_size", "inbox_size", "outbox_size", "flush_interval_ms", "claim_timeout_ms",
                "job_ttl_seconds", "completed_ttl_seconds", "stream_maxlen")

SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("name", None, _optional_str, "worker name shown by status tools; generated if unset"),
    Setting("concurrency", 2, _positive_int, "jobs executing at once in one worker process"),
    Setting("sync_executor", "thread", _choice("thread", "process"), "default executor of tasks"),
    Setting("redis_url", "redis://localhost:6379/0", _redis_url, "Redis URL", secret=True),
    Setting("prefix", "upnext", _str, "prefix of every Redis key"),
    Setting("batch_size", 4, _positive_int, "most entries fetched and started per call (within free slots)"),
    Setting("inbox_size", 4, _positive_int, "most fetched jobs handed to the pool at once (>= batch_size)"),
    Setting("outbox_size", 10000, _positive_int, "completions waiting to be written before jobs block"),
    Setting("flush_interval_ms", 5.0, _positive_float, "longest a completion waits for its batch"),
    Setting("claim_timeout_ms", 30000, _positive_int, "idle time after which a dead worker's job is reclaimed"),
    Setting("job_ttl_seconds", 86400, _positive_int, "how long finished jobs and results are kept"),
    Setting("completed_ttl_seconds", None, _optional_positive_int,
            "how long completed jobs are kept (unset: job_ttl_seconds; failed and cancelled ones keep that)"),
    Setting("stats", True, _bool, "count runs per function and minute, and their run and wait times"),
    Setting("stream_maxlen", 0, _non_negative_int, "approximate cap of each stream (0: none)"),
    Setting("max_payload_bytes", 1048576, _positive_int, "largest encoded arguments a submit accepts"),
    Setting("max_result_bytes", 1048576, _positive_int, "largest encoded result a job may store (larger: it fails)"),
    Setting("max_checkpoint_bytes", 1048576, _positive_int, "largest encoded checkpoint (larger: ValueError)"),
    Setting("max_log_entry_bytes", 8192, _positive_int, "largest stored send_log entry (larger: cut, marked)"),
    Setting("max_log_entries", 1000, _positive_int, "send_log entries kept per job (the newest)"),
    Setting("max_deliveries", 5, _positive_int, "deliveries of one job that died with its worker before it fails"),
    Setting("process_pool_size", os.cpu_count() or 1, _positive_int, "child processes for executor='process'"),
    Setting("processes", 1, _positive_int, "worker processes, each with its own hub (pre-fork)"),
    Setting("graceful_timeout", 30.0, _positive_float, "seconds running jobs get to finish on TERM/INT"),
    Setting("max_jobs_per_child", 0, _non_negative_int, "recycle a worker process after this many jobs (0: never)"),
    Setting("max_memory_per_child", 0, _non_negative_int, "recycle a worker process above this RSS in MB (0: never)"),
    Setting("only", (), _names, "serve only these functions of the app (names, comma-separated)"),
    Setting("exclude", (), _names, "serve every function of the app but these (names, comma-separated)"),
    Setting("burst", False, _bool, "exit once the queues are empty"),
    Setting("allow_eviction", False, _bool, "start even if Redis may evict keys (maxmemory-policy)"),
    Setting("health_file", None, _optional_str, "file rewritten at each heartbeat: ok, or redis_full/redis_error: why"),
    Setting("hub_max_blocking_ms", 1000, _non_negative_int, "log a job that blocks the hub this long (0: off)"),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "log level"),
    Setting("log_format", "console", _choice("console", "json"), "log output format"),
)}

HOOK_ARITY = {"on_starting": 1, "when_ready": 1, "post_fork": 1, "worker_exit": 1,
              "pre_job": 1, "post_job": 2, "on_job_error": 2,
              "redact": 1}  # redact(view) -> view: what show and jobs print (given -c), not a worker hook


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one worker (attribute per entry of SETTINGS) plus hooks."""

    values: Mapping[str, Any]
    hooks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    origins: Mapping[str, tuple[tuple[str, Any], ...]] = field(default_factory=dict)
    """Per setting, the sources that gave it a value, winner first: (label, value)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def masked(self) -> dict[str, Any]:
        """Values for --print-config, with secrets (the password in redis_url) masked."""
        return {name: mask_url(value) if SETTINGS[name].secret else value for name, value in self.values.items()}

    def origin(self, name: str) -> str:
        """Where the value of ``name`` came from and which sources it beat, for --print-config
        (e.g. ``Worker(...), over env UPNEXT_CONCURRENCY (9)``)."""
        given = self.origins.get(name, ())
        if not given:
            return "default"
        (winner, _), *beaten = given
        shown = [f"{label} ({mask_url(value) if SETTINGS[name].secret else value!r})" for label, value in beaten]
        return f"{winner}, over {', '.join(shown)}" if shown else winner


SECRET_ARGUMENTS = ("password", "sentinel_password")


def mask_url(url: Any) -> Any:
    """Hide the password of a Redis URL, whether in the userinfo or a ``password=`` (or a Sentinel
    URL's ``sentinel_password=``) query argument."""
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        url = url.replace(parts.netloc, f"{userinfo.partition(':')[0]}:***@{host}", 1)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name in SECRET_ARGUMENTS for name, _ in query):
        masked = "&".join(f"{k}=***" if k in SECRET_ARGUMENTS else f"{k}={v}" for k, v in query)
        url = f"{url.partition('?')[0]}?{masked}"
    return url


@dataclass(frozen=True)
class WorkerQueueConfig:
    """Queue tuning for one worker; unset fields fall back to UPNEXT_QUEUE_* and then defaults."""

    batch_size: int | None = None
    inbox_size: int | None = None
    outbox_size: int | None = None
    flush_interval_ms: float | None = None
    claim_timeout_ms: int | None = None
    job_ttl_seconds: int | None = None
    completed_ttl_seconds: int | None = None
    stream_maxlen: int | None = None

    def __post_init__(self) -> None:
        for name, value in self.given().items():
            SETTINGS[name].parse(f"WorkerQueueConfig.{name}", value)

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


def parse_values(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate known settings from one source; unknown names fail with a suggestion."""
    parsed = {}
    for name, value in values.items():
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting {name!r} in {source}{_suggest(name)}")
        parsed[name] = SETTINGS[name].parse(f"{name} (from {source})", value)
    return parsed


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, [*SETTINGS, *HOOK_ARITY], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    return {s.name: s.parse(s.env, environ[s.env]) for s in SETTINGS.values() if environ.get(s.env, "") != ""}


def load_file(path: str) -> tuple[dict[str, Any], dict[str, Callable[..., Any]]]:
    """Execute a gunicorn-style config file; return (settings, hooks), both validated."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location("__upnext_config__", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"config file {path!r} failed to load: {exc!r}") from exc
    names = {k: v for k, v in vars(module).items()
             if not k.startswith("_") and k.islower() and not inspect.ismodule(v)}
    hooks = {k: names.pop(k) for k in list(names) if k in HOOK_ARITY}
    errors = [message for hook_name, hook in hooks.items() if (message := _hook_error(hook_name, hook, path))]
    errors += _misspelled_hooks(names, path)
    settings = _file_settings(names, path, errors)
    if len(errors) > 1:  # every mistake at once, not one per attempt
        raise ConfigError(f"config file {path!r} has {len(errors)} errors:\n  " + "\n  ".join(errors))
    if errors:
        raise ConfigError(errors[0])
    return settings, hooks


def _file_settings(names: Mapping[str, Any], path: str, errors: list[str]) -> dict[str, Any]:
    """The file's settings, parsed; what is wrong is appended to ``errors``."""
    settings: dict[str, Any] = {}
    for name, value in names.items():
        if _is_helper(value):  # misspelled hooks are functions too: _misspelled_hooks reports them
            continue
        if name not in SETTINGS:
            errors.append(f"unknown setting {name!r} in config file {path!r}{_suggest(name)} "
                          f"(a variable of your own: name it {'_' + name!r})")
            continue
        try:
            settings[name] = SETTINGS[name].parse(f"{name} (from config file {path!r})", value)
        except ConfigError as exc:
            errors.append(str(exc))
    return settings


def _misspelled_hook(name: str, value: Any) -> str | None:
    """A function named almost like a hook is a typo far more often than a helper: it would never run."""
    close = difflib.get_close_matches(name, HOOK_ARITY, n=1, cutoff=0.8)
    return close[0] if inspect.isfunction(value) and close else None


def _misspelled_hooks(names: Mapping[str, Any], path: str) -> list[str]:
    return [f"unknown hook {name!r} in config file {path!r}; did you mean {hook!r}? "
            "(name a helper function with a leading underscore)"
            for name, value in names.items() if (hook := _misspelled_hook(name, value))]


def _is_helper(value: Any) -> bool:
    """Functions and classes defined in a config file (helpers of hooks) are not settings."""
    return inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value)


def _hook_error(name: str, hook: Any, source: str) -> str | None:
    try:
        check_hook(name, hook, source)
    except ConfigError as exc:
        return str(exc)
    return None


def check_hook(name: str, hook: Any, source: str) -> None:
    if not callable(hook):
        raise ConfigError(f"hook {name} in {source} must be callable, got {hook!r}")
    try:
        inspect.signature(hook).bind(*range(HOOK_ARITY[name]))
    except TypeError:
        raise ConfigError(f"hook {name} in {source} must accept {HOOK_ARITY[name]} argument(s)") from None
    except ValueError:
        return


def resolve(*, cli: Mapping[str, Any] | None = None, file: Mapping[str, Any] | None = None,
            worker: Mapping[str, Any] | None = None, env: Mapping[str, Any] | None = None,
            hooks: Mapping[str, Callable[..., Any]] | None = None, file_path: str | None = None) -> Settings:
    """The one place precedence lives: CLI > config file > Worker(...) > env > defaults."""
    values = {name: s.default for name, s in SETTINGS.items()}
    origins: dict[str, list[tuple[str, Any]]] = {name: [] for name in SETTINGS}
    for layer, label in ((env, "env"), (worker, "Worker(...)"), (file, "config file"), (cli, "flag")):
        for name, value in (layer or {}).items():
            if value is not None:
                values[name] = value
                origins[name].insert(0, (_source(label, name, file_path), value))
    if values["inbox_size"] < values["batch_size"]:
        values["inbox_size"] = values["batch_size"]
        origins["inbox_size"].insert(0, ("raised to batch_size", values["batch_size"]))
    return Settings(values=values, hooks=dict(hooks or {}),
                    origins={name: tuple(given) for name, given in origins.items() if given})


def _source(label: str, name: str, file_path: str | None) -> str:
    if label == "env":
        return f"env {SETTINGS[name].env}"
    if label == "flag":
        return f"flag --{name.replace('_', '-')}"
    return f"{label} {file_path}" if label == "config file" and file_path else label
