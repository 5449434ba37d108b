"""``python -m upnext.cli``: the same as the ``upnext-gevent`` command."""

from upnext.cli.main import main

main()
