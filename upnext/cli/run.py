"""The worker command's options and what it does with them (imported after monkey-patching).

Exit codes: 0 stopped cleanly; 1 a bad setting, config file or app (an ``Error:`` line on
stderr; every error of a config file at once); 2 bad usage (a mistyped subcommand is told the
one it looks like); 3 the worker refused to start (e.g. an evicting Redis) -- a supervised
child exiting 3 stops the supervisor rather than being restarted in a loop. The operator
subcommands' codes are in ops.py (4: ``call --wait`` timed out).
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click
import gevent

from upnext import config, log
from upnext.cli.ops import ops
from upnext.cli.supervisor import EXIT_REFUSED, Supervisor
from upnext.errors import ConfigError
from upnext.runtime.serving import Runtime
from upnext.worker import Worker, load_worker

DEFAULT_CONFIG = "upnext_gevent.conf.py"


def _version() -> str:
    """The installed distribution's version (upnext.__version__ is read from the same metadata)."""
    try:
        return importlib.metadata.version("upnext-gevent")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a distribution)"


class RunCommand(click.Command):
    """The run form. Its help also lists the operator subcommands: ``main`` picks those out by
    name before click runs, so this is the help ``upnext-gevent --help`` prints."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_usage(ctx, formatter)
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, ops.commands[name].get_short_help_str(limit=200))
                                for name in ops.list_commands(ctx)])
        formatter.write_paragraph()
        formatter.write_text(f"'{ctx.command_path} COMMAND --help' describes a command.")


@click.command(cls=RunCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="upnext-gevent", message="%(prog)s %(version)s")
@click.argument("app")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help=f"Python config file (default ./{DEFAULT_CONFIG} when it exists).")
@click.option("--concurrency", type=int, help="Jobs executing at once per process.")
@click.option("--processes", type=int, help="Worker processes (pre-fork, supervised).")
@click.option("--redis-url", help="Redis URL.")
@click.option("--name", help="Worker name shown by status tools.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", type=click.Choice(["console", "json"]))
@click.option("--graceful-timeout", type=float, help="Seconds running jobs get to finish on TERM/INT.")
@click.option("--max-jobs-per-child", type=int, help="Recycle a process after this many jobs.")
@click.option("--max-memory-per-child", type=int, help="Recycle a process above this RSS (MB).")
@click.option("--only", metavar="F1,F2", help="Serve only these functions of the app.")
@click.option("--exclude", metavar="F1,F2", help="Serve every function of the app but these.")
@click.option("--burst", is_flag=True, default=None, help="Exit once the queues are empty.")
@click.option("--allow-eviction", is_flag=True, default=None, help="Start even if Redis may evict keys.")
@click.option("--health-file", type=click.Path(dir_okay=False), help="File rewritten at each heartbeat (for probes).")
@click.option("--check-config", is_flag=True, help="Validate settings and the app, then exit.")
@click.option("--print-config", is_flag=True, help="Print the resolved settings (secrets masked), then exit.")
@click.option("--no-monkey-patch", is_flag=True, help="Don't monkey-patch (you patched earlier yourself).")
def run_command(app: str, config_path: str | None, check_config: bool, print_config: bool,
                no_monkey_patch: bool, **flags: Any) -> None:
    """Run the upnext Worker found at APP (module:attribute, or a module holding one Worker)."""
    try:
        worker, settings = load(app, config_path, flags)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if print_config:
        for name, value in settings.masked().items():  # a valid config file, each line saying where from
            click.echo(f"{name} = {value!r}  # {settings.origin(name)}")
        return
    if check_config:
        try:
            worker.subset(settings.only, settings.exclude)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo("config ok")
        return
    sys.exit(serve(worker, settings, lambda: load(app, config_path, flags)[1]))


def load(app: str, config_path: str | None, flags: dict[str, Any]) -> tuple[Worker, config.Settings]:
    """Import the app and resolve its settings: CLI > config file > Worker(...) > env > defaults."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    file_values: dict[str, Any] = {}
    hooks: dict[str, Any] = {}
    path = config_path or (DEFAULT_CONFIG if os.path.isfile(DEFAULT_CONFIG) else None)
    if path:
        file_values, hooks = config.load_file(path)
    cli_values = config.parse_values({k: v for k, v in flags.items() if v is not None}, "command line")
    worker = import_app(app)
    settings = config.resolve(cli=cli_values, file=file_values, worker=worker.worker_args(),
                              env=config.from_env(), hooks=hooks, file_path=path)
    return worker, settings


def import_app(app: str) -> Worker:
    """The Worker at APP; a missing module or file is one line, an app that raises also shows where."""
    target = app.partition(":")[0]
    if target.endswith(".py") and not os.path.isfile(target):
        raise ConfigError(f"app file {target!r} does not exist")
    try:
        worker = load_worker(app)
    except ConfigError as exc:
        _suggest_command(target, exc)
        raise
    except Exception as exc:
        traceback.print_exc()
        raise ConfigError(f"app module {target!r} failed to import: {type(exc).__name__}: {exc}") from None
    worker.import_path = app  # process-pool children re-import the app from here
    return worker


def _suggest_command(target: str, exc: ConfigError) -> None:
    """``upnext-gevent stauts``: a word that is no module but nearly a command was meant as one."""
    missing = exc.__cause__
    if not (isinstance(missing, ModuleNotFoundError) and missing.name == target):
        return
    close = difflib.get_close_matches(target, list(ops.commands), n=2)  # stauts: stats or status
    if close:
        meant = " or ".join(repr(c) for c in close)
        raise click.UsageError(f"no command or app module named {target!r}; did you mean the command {meant}?")


def serve(worker: Worker, settings: config.Settings, reload: Callable[[], config.Settings]) -> int:
    """on_starting and when_ready run here, in the parent; then serve here or under a supervisor."""
    log.setup(settings.log_level, settings.log_format)
    call_hook(settings, "on_starting", settings)
    call_hook(settings, "when_ready", settings)
    if settings.processes > 1 or settings.max_jobs_per_child or settings.max_memory_per_child:
        return Supervisor(worker, settings, reload, functools.partial(serve_child, supervised=True)).run()
    return serve_child(worker, settings)


def serve_child(worker: Worker, settings: config.Settings, supervised: bool = False) -> int:
    """Serve in a worker process; post_fork runs first (in the only process without --processes)."""
    call_hook(settings, "post_fork", worker)
    return serve_here(worker, settings, supervised)


def serve_here(worker: Worker, settings: config.Settings, supervised: bool = False) -> int:
    """Serve in this process: the first TERM/INT drains gracefully, a second one stops at once.

    Under a supervisor every TERM/INT is the same graceful stop: a Ctrl-C or a SIGTERM to the
    whole group (or systemd's cgroup) reaches a child directly and again forwarded by the
    supervisor, and that is still one stop. Stopping at once is the supervisor's to decide (a
    second signal to it kills its children)."""
    seen: list[int] = []
    try:
        runtime = Runtime(worker, settings)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        call_hook(settings, "worker_exit", worker)
        return EXIT_REFUSED

    def on_signal(sig: int) -> None:
        seen.append(sig)
        if len(seen) == 1 or not supervised:
            runtime.stop(graceful=len(seen) == 1)

    handlers = [gevent.signal_handler(sig, on_signal, sig) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        return runtime.serve()
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_REFUSED
    finally:
        for handler in handlers:
            handler.cancel()
        call_hook(settings, "worker_exit", worker)


def call_hook(settings: config.Settings, name: str, *args: Any) -> None:
    hook = settings.hooks.get(name)
    if hook is not None:
        hook(*args)
