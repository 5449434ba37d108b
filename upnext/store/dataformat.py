"""The version of the data format upnext keeps in Redis, and the rules for upgrading across it.

``FORMAT_VERSION`` counts the changes to what upnext stores (job records, stream entries, keys).
Each job record names the format that wrote it (field ``v``; a record without it is format 1),
and ``P:format`` holds the newest format any worker has run on this Redis: each worker raises it
to its own at start. Upgrade rules (the README's "Upgrading" section):

- A release reads the records of every older format (a field it added is absent from older
  records and means what the older release did, e.g. ``deliveries`` absent = 0).
- A format change is additive, so the previous release reads it too: workers and web processes
  of two consecutive releases may share one Redis, with jobs queued, running, scheduled and
  retrying; rolling back one release is safe.
- A worker refuses to start when Redis holds a format two or more ahead of its own: that data
  may mean something it cannot read. Upgrade it to a newer release.
"""

from __future__ import annotations

from pathlib import Path

import redis

from upnext.errors import ConfigError
from upnext.store import keys

FORMAT_VERSION = 2
# By the rule above, the next release's format is written to be readable by this one.
NEWEST_READABLE = FORMAT_VERSION + 1

_STAMP_LUA = (Path(__file__).with_name("lua") / "stamp_format.lua").read_text()


def stamp(client: redis.Redis, prefix: str) -> int:
    """Record this release's format in ``P:format`` (created, or raised when older) and return
    the format stored before (0 if none). Raise ConfigError when Redis holds a format this
    release cannot read, or a value that is not a format version, before anything is written."""
    key = keys.data_format(prefix)
    stored = client.register_script(_STAMP_LUA)(keys=[key], args=[FORMAT_VERSION])
    if stored is None:
        return 0
    text = stored.decode() if isinstance(stored, bytes) else str(stored)
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"Redis key {key!r} holds {text!r}, not a data format version: upnext stores a whole "
                          f"number there; delete the key or point this worker at the right Redis and prefix")
    version = int(text)
    if version > NEWEST_READABLE:
        raise ConfigError(f"Redis key {key!r} says the data there is format {version}, newer than this release of "
                          f"upnext-gevent reads (formats up to {NEWEST_READABLE}; it writes {FORMAT_VERSION}): "
                          f"upgrade upnext-gevent on this worker to the release the other workers run")
    return version
