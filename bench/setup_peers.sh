#!/usr/bin/env bash
# Creates bench/.venv-peers with the peers that bench/run.py measures beside upnext-gevent.
# Needs a Python >= 3.12 (upnext 0.0.8 requires it): $PEERS_PYTHON, python3.13, python3.12, or
# pyenv's 3.12 or 3.13, the first of them that runs.
set -euo pipefail
cd "$(dirname "$0")"
python=""
for candidate in "${PEERS_PYTHON:-}" python3.13 python3.12 /root/.pyenv/versions/3.1[23]*/bin/python; do
    # pyenv's shims exist for versions that are not selected: check that the candidate runs
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
if [ -z "$python" ]; then
    echo "setup_peers.sh: no Python >= 3.12 found; set PEERS_PYTHON" >&2
    exit 1
fi
[ -x .venv-peers/bin/python ] || "$python" -m venv .venv-peers
.venv-peers/bin/pip install --quiet -r requirements-peers.txt
.venv-peers/bin/python -c "import celery, dramatiq, huey, rq, saq, upnext; print('peers ready')"
