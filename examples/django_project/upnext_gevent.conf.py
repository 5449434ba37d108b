# Worker settings for the Django example. Run from this directory:
#   upnext-gevent orders.tasks:worker
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

from upnext.contrib.django import post_fork, post_job, pre_job  # noqa: E402,F401  (hooks)

concurrency = 20
graceful_timeout = 20
