"""Loads the Lua scripts in ``upnext/lua`` (each prefixed with ``_lib.lua``) for one client.

redis-py's ``register_script`` runs them by SHA and reloads them on NOSCRIPT.
"""

from __future__ import annotations

from pathlib import Path

import redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).with_name("lua")
NAMES = ("enqueue", "promote", "start", "finish", "retry", "release", "cancel", "annotate", "cron_fire", "lock",
         "requeue", "touch", "purge", "sweep", "group_lease", "pause", "resume", "ended_counts")


class Scripts:
    """One attribute per Lua file: ``scripts.finish(keys=..., args=..., client=pipe)``."""

    def __init__(self, client: redis.Redis):
        lib = (LUA_DIR / "_lib.lua").read_text()
        for name in NAMES:
            source = lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()
            setattr(self, name, client.register_script(source))

    enqueue: Script
    promote: Script
    start: Script
    finish: Script
    retry: Script
    release: Script
    cancel: Script
    annotate: Script
    cron_fire: Script
    lock: Script
    requeue: Script
    touch: Script
    purge: Script
    sweep: Script
    group_lease: Script
    pause: Script
    resume: Script
    ended_counts: Script
