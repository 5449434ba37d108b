"""Import hygiene: `import upnext` never monkey-patches, and the CLI patches before redis loads."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_upnext_does_not_monkey_patch():
    out = run_python("import upnext, socket, gevent.monkey; upnext.Worker;"
                     "print(gevent.monkey.is_module_patched('socket'))")
    assert out == "False"


def test_cli_patches_before_redis_is_imported():
    out = run_python("import sys; import upnext.cli.main; print('redis' in sys.modules, 'structlog' in sys.modules,"
                     " 'click' in sys.modules)")
    assert out == "False False False"


def test_public_names_resolve():
    out = run_python("import upnext; print(all(getattr(upnext, n) for n in upnext.__all__))")
    assert out == "True"


def test_every_public_name_has_a_home():
    import upnext

    assert sorted(upnext.__all__) == sorted(upnext._HOMES)
