"""The test jobs app in a worker whose clock runs two hours ahead of Redis's."""

import time

_real_time = time.time
time.time = lambda: _real_time() + 7200

from tests.apps.jobs import worker  # noqa: E402,F401
