"""The dashboard mounted inside a Flask app (werkzeug's DispatcherMiddleware) and a Django project
(upnext.dashboard.mount.django_view behind staff_member_required), as the README shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from tests.apps import dashboarded
from tests.workers import ROOT, wait_for
from upnext.dashboard import make_app


def test_flask_dispatcher_middleware_mounts_it_under_a_prefix(worker, redis_url):
    future = dashboarded.fails.submit(text="mounted")
    wait_for(lambda: future.status() == "failed", timeout=20, message="the job to fail")
    app = Flask("host")
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/upnext": make_app(redis_url)})  # type: ignore[method-assign]
    client = Client(app)
    page = client.get("/upnext/failed")
    assert page.status_code == 200 and f'href="/upnext/jobs/{future.job_id}"' in page.text
    assert 'href="/upnext/static/app.css"' in page.text
    assert "Path=/upnext" in page.headers["Set-Cookie"]
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]
    assert client.post(f"/upnext/api/jobs/{future.job_id}/retry").status_code == 403
    done = client.post(f"/upnext/api/jobs/{future.job_id}/retry", headers={"X-CSRF-Token": token})
    assert done.status_code == 200 and done.json["outcome"] == "queued"
    assert client.get("/upnext/api/overview").json["live_workers"] == 1


DJANGO_SCRIPT = textwrap.dedent("""
    import json, re, sys
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
                        "django.contrib.admin", "django.contrib.messages"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth",
                                                       "django.contrib.messages.context_processors.messages",
                                                       "django.template.context_processors.request"]}}],
    )
    django.setup()
    from django.contrib.admin.views.decorators import staff_member_required
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.urls import path
    from upnext.dashboard import make_app
    from upnext.dashboard.mount import django_view

    dashboard = staff_member_required(django_view(make_app(sys.argv[1])), login_url="/login/")
    urlpatterns = [path("ops/upnext/", dashboard), path("ops/upnext/<path:path>", dashboard)]

    call_command("migrate", verbosity=0)
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    out = {"anonymous": client.get("/ops/upnext/").status_code}
    client.force_login(staff)
    page = client.get("/ops/upnext/failed")
    text = page.content.decode()
    token = re.search(r'name="csrf-token" content="([^"]+)"', text)[1]
    out.update(page=page.status_code, links="/ops/upnext/jobs/" + sys.argv[2] in text,
               no_token=client.post(f"/ops/upnext/api/jobs/{sys.argv[2]}/retry").status_code)
    done = client.post(f"/ops/upnext/api/jobs/{sys.argv[2]}/retry", HTTP_X_CSRF_TOKEN=token)
    out.update(retry=done.status_code, outcome=json.loads(done.content)["outcome"])
    print(json.dumps(out))
""")


def test_django_view_serves_it_behind_staff_login(worker, redis_url, tmp_path):
    future = dashboarded.fails.submit(text="mounted")
    wait_for(lambda: future.status() == "failed", timeout=20, message="the job to fail")
    script = tmp_path / "django_mount.py"
    script.write_text(DJANGO_SCRIPT)
    done = subprocess.run([sys.executable, str(script), redis_url, future.job_id], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out == {"anonymous": 302, "page": 200, "links": True, "no_token": 403, "retry": 200, "outcome": "queued"}
