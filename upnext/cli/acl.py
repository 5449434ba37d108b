"""The ``acl`` command: print the ``ACL SETUSER`` line of a least-privilege Redis user for a
prefix (store/acl.py holds the rules). It never connects: an admin runs the line with redis-cli."""

from __future__ import annotations

import click

from upnext import config
from upnext.errors import ConfigError
from upnext.store import acl as rules


@click.command("acl")
@click.option("--user", default="upnext", show_default=True, help="The Redis user to create or update.")
@click.option("--password", default="CHANGE-ME", show_default=True, help="Its password (placeholder by default).")
@click.option("--prefix", default=None, help="Key prefix (default UPNEXT_PREFIX or 'upnext').")
def acl(user: str, password: str, prefix: str | None) -> None:
    """Print the ACL SETUSER line of a Redis user that may touch only PREFIX's keys and channels,
    with only the commands upnext sends."""
    given = config.parse_values({"prefix": prefix}, "command line") if prefix else {}
    settings = config.resolve(cli=given, env=config.from_env())
    try:
        click.echo(rules.setuser_line(user, password, settings.prefix))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
