"""The ``upnext-gevent`` command. Imports nothing: ``cli.main`` must monkey-patch first."""
