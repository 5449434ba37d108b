"""tests.apps.jobs's worker with the fetch loop's hold after a lone job (fetching.LONE_HOLD_S)
raised from 1 ms to a minute, so a test sees when the next wait goes out without racing it."""

from tests.apps.jobs import worker
from upnext.runtime import fetching

fetching.LONE_HOLD_S = 60.0

__all__ = ["worker"]
