"""The ``upnext-gevent`` command: monkey-patch first, then load settings and the app, then serve.

Nothing but the standard library and gevent.monkey is imported at module level: the patch
must happen before click, redis, structlog, the config file or the app are imported.
"""

from __future__ import annotations

import sys

OPS_COMMANDS = ("status", "list", "call", "failed", "retry", "purge", "cancel", "show")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if "--no-monkey-patch" not in args:
        from gevent import monkey

        monkey.patch_all()
    if args and args[0] in OPS_COMMANDS:
        from upnext.cli.ops import ops

        ops.main(args=args, prog_name="upnext-gevent")
        return
    from upnext.cli.run import run_command

    run_command.main(args=args, prog_name="upnext-gevent")


if __name__ == "__main__":
    main()
