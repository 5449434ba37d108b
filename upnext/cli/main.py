"""The ``upnext-gevent`` command: monkey-patch first, then load settings and the app, then serve.

Nothing but the standard library and gevent.monkey is imported at module level: the patch
must happen before click, redis, structlog, the config file or the app are imported.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if "--no-monkey-patch" not in args:
        from gevent import monkey

        monkey.patch_all()
    from upnext.cli.ops import ops  # after the patch: it imports redis

    if args and args[0] in ops.commands:  # every command registered on the group, wherever defined
        ops.main(args=args, prog_name="upnext-gevent")
        return
    from upnext.cli.run import run_command

    run_command.main(args=args, prog_name="upnext-gevent")


if __name__ == "__main__":
    main()
