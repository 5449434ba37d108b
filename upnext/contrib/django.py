"""Django: database connections that jobs leave behind are closed, as a request would.

Use as hooks in the worker's config file (``upnext_gevent.conf.py``):

    from upnext.contrib.django import post_fork, pre_job, post_job   # noqa: F401

``post_fork`` calls ``django.setup()`` in each worker process before it serves; ``pre_job`` and
``post_job`` close stale or broken connections around every job (Django's request signals never
fire in a worker, so without this connections leak under gevent).
"""

from __future__ import annotations

from typing import Any


def post_fork(worker: Any) -> None:
    import django

    django.setup()


def pre_job(ctx: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()


def post_job(ctx: Any, result: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()
