"""The job record: statuses, job ids and the JSON codec. Pure: no Redis, no gevent.

A *task* is a registered function; a *job* is one run of it. Job ids carry their task's
name (``send_email:3f0c...``) so every key of a job can be derived from its id alone.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import os
from collections.abc import Callable
from typing import Any


class Status(enum.StrEnum):
    """A job's ``status`` field, as stored (``upnext.JobStatus``): members equal those strings."""

    QUEUED = "queued"
    ACTIVE = "active"
    RETRYING = "retrying"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


JobStatus = Status  # upstream's name, exported as upnext.JobStatus


class FailureReason(enum.StrEnum):
    """A failed or cancelled job's ``failure_reason`` field, as stored: members equal those strings."""

    TIMEOUT = "timeout"  # the job ran past its own timeout
    EXCEPTION = "exception"  # the job raised (or its result could not be stored)
    CANCELLED = "cancelled"  # cancelled by an operator or a Future.cancel()
    LOST = "lost"  # its worker (or process-pool child) died under it
    EXPIRED = "expired"  # not started before its ``expires`` (ends cancelled, never run)


class Priority(enum.StrEnum):
    """``task.options(priority=...)`` (``upnext.Priority``): served strictly, high before normal
    before low, FIFO within a level. Members equal the strings the option also accepts."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


TERMINAL = frozenset({Status.COMPLETE, Status.FAILED, Status.CANCELLED})
TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)

ID_SEPARATOR = ":"
FORBIDDEN_NAME_CHARS = frozenset("{}: \t\n")


def check_function_name(name: str) -> str:
    """Return ``name`` if it can be a task name (it becomes part of keys and job ids)."""
    if not name or any(ch in FORBIDDEN_NAME_CHARS for ch in name):
        raise ValueError(f"task name {name!r} must be non-empty and contain none of '{{', '}}', ':' or spaces")
    return name


def new_job_id(function: str) -> str:
    return f"{function}{ID_SEPARATOR}{os.urandom(10).hex()}"


def function_of(job_id: str) -> str:
    """The task name inside a job id; raises ValueError naming the id when it has none."""
    function, sep, rest = job_id.rpartition(ID_SEPARATOR)
    if not sep or not function or not rest:
        raise ValueError(f"job id {job_id!r} is not an upnext job id (expected '<function>:<hex>')")
    return function


def is_job_id_of(job_id: str, function: str) -> bool:
    """True when ``job_id`` is one ``new_job_id(function)`` makes (start.lua checks the same):
    anything else in a stream is garbage, whatever bytes it holds."""
    head, sep, rest = job_id.rpartition(ID_SEPARATOR)
    return bool(sep) and head == function and bool(rest) and all(ch in "0123456789abcdef" for ch in rest)


def printable(text: str) -> str:
    """``text`` safe to log or store: anything that is not valid UTF-8 (lone surrogates, the
    undecodable bytes of a tolerant read) shown as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps would build one a call


def dumps(value: Any) -> str:
    return "null" if value is None else _ENCODER.encode(value)  # None: most jobs' result


def loads(text: str | bytes | None) -> Any:
    return None if text is None or text == "" else json.loads(text)


def encode_call(fn: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """Check a call against ``fn``'s signature and JSON, return (args_json, kwargs_json).

    Raises TypeError naming the task and the offending argument before anything is written.
    """
    try:
        bound = _signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}(): {exc}") from None
    try:
        return (dumps(list(args)) if args else "[]"), (dumps(kwargs) if kwargs else "{}")
    except (TypeError, ValueError):
        pass
    for arg_name, value in bound.arguments.items():  # name the argument that does not encode
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}(): argument {arg_name!r} is not JSON-serializable: {exc}") from None
    raise TypeError(f"{name}(): arguments are not JSON-serializable")


@functools.lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)



def params_of(fn: Callable[..., Any]) -> list[str] | None:
    """``fn``'s parameters as workers register them, so the ops CLI can check a ``call`` the way
    ``submit`` checks it: Python's notation without annotations or default values, e.g.
    ``["rows", "sep=", "*", "strict="]`` for ``(rows, sep=",", *, strict=False)``; None for a
    callable without a signature (some builtins), which is then not checked."""
    P = inspect.Parameter
    try:
        params = list(_signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    tokens: list[str] = []
    for i, p in enumerate(params):
        if p.kind is P.KEYWORD_ONLY and (i == 0 or params[i - 1].kind not in (P.KEYWORD_ONLY, P.VAR_POSITIONAL)):
            tokens.append("*")
        prefix = "*" if p.kind is P.VAR_POSITIONAL else "**" if p.kind is P.VAR_KEYWORD else ""
        tokens.append(f"{prefix}{p.name}{'=' if p.default is not P.empty else ''}")
        if p.kind is P.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind is not P.POSITIONAL_ONLY):
            tokens.append("/")
    return tokens


def signature_from(params: list[str]) -> inspect.Signature:
    """The signature ``params_of`` described (defaults stand in as None); ValueError if malformed."""
    P = inspect.Parameter
    kind: inspect._ParameterKind = P.POSITIONAL_ONLY if "/" in params else P.POSITIONAL_OR_KEYWORD
    built = []
    for token in params:
        if token in ("/", "*"):
            kind = P.POSITIONAL_OR_KEYWORD if token == "/" else P.KEYWORD_ONLY
        elif token.startswith("**"):
            built.append(P(token[2:], P.VAR_KEYWORD))
        elif token.startswith("*"):
            built.append(P(token[1:], P.VAR_POSITIONAL))
            kind = P.KEYWORD_ONLY
        else:
            name, eq, _ = token.partition("=")
            built.append(P(name, kind, default=None if eq else P.empty))
    return inspect.Signature(built)
