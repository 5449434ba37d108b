"""upnext-gevent: background jobs for gevent web apps. Public names only; never monkey-patches."""
