"""The Sentinel URL of SPEC §1 through ``--check-config`` (parsed, never contacted): accepted in
its documented forms, refused with the setting, the masked URL and what is wrong otherwise."""

from __future__ import annotations

import pytest

from tests.test_cli_unit import GOOD_APP, cli
from upnext.config import sentinel_address


@pytest.mark.parametrize("url", ["redis+sentinel://s1:26379/mymaster",
                                 "redis+sentinel://app:pw@s1:26379,s2:26380,[::1]:26381/mymaster/3",
                                 "redis+sentinel://s1:26379/mymaster/0?socket_timeout=2"])
def test_check_config_accepts_a_sentinel_url(tmp_path, url):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--check-config", "--redis-url", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("url, wrong", [
    ("redis+sentinel://app:hunter2@s1/mymaster", "sentinel 's1' is not host:port"),
    ("redis+sentinel://app:hunter2@s1:26379", "/MASTER_NAME or /MASTER_NAME/db"),
    ("redis+sentinel://app:hunter2@s1:26379/mymaster/zero", "/MASTER_NAME or /MASTER_NAME/db"),
])
def test_check_config_refuses_a_sentinel_url_naming_what_is_wrong(tmp_path, url, wrong):
    (tmp_path / "app.py").write_text(GOOD_APP)
    done = cli("app", "--check-config", "--redis-url", url, cwd=tmp_path)
    assert done.returncode == 1 and "redis_url" in done.stderr and wrong in done.stderr, done.stderr
    assert "hunter2" not in done.stderr and "app:***@" in done.stderr


def test_a_sentinel_url_parses_into_sentinels_master_db_and_the_masters_credentials():
    address = sentinel_address("redis+sentinel://app:p%40ss@s1:26379,[::1]:26380/my%20master/2?socket_timeout=2")
    assert address.sentinels == [("s1", 26379), ("::1", 26380)]
    assert (address.master, address.db, address.username, address.password) == ("my master", 2, "app", "p@ss")
    assert address.query == "socket_timeout=2"
