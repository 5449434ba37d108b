#!/usr/bin/env bash
# Creates bench/.venv-peers with the peers that bench/run.py measures beside upnext-gevent.
# Needs a Python >= 3.12 (upnext 0.0.8 requires it): $PEERS_PYTHON, python3.12, or pyenv's 3.12.
set -euo pipefail
cd "$(dirname "$0")"
python="${PEERS_PYTHON:-$(command -v python3.12 || ls -d /root/.pyenv/versions/3.12*/bin/python 2>/dev/null | tail -1)}"
if [ -z "$python" ]; then
    echo "setup_peers.sh: no Python >= 3.12 found; set PEERS_PYTHON" >&2
    exit 1
fi
[ -x .venv-peers/bin/python ] || "$python" -m venv .venv-peers
.venv-peers/bin/pip install --quiet -r requirements-peers.txt
.venv-peers/bin/python -c "import celery, dramatiq, huey, rq, saq, upnext; print('peers ready')"
