"""The worker command's options and what it does with them (imported after monkey-patching)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click
import gevent

from upnext import config, log
from upnext.errors import ConfigError
from upnext.worker import Worker, load_worker

DEFAULT_CONFIG = "upnext_gevent.conf.py"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--burst", is_flag=True, default=None, help="Exit once the queues are empty.")
@click.option("--allow-eviction", is_flag=True, default=None, help="Start even if Redis may evict keys.")
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
        for name, value in settings.masked().items():
            click.echo(f"{name} = {value!r}")
        return
    if check_config:
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
    worker = load_worker(app)
    worker.import_path = app
    settings = config.resolve(cli=cli_values, file=file_values, worker=worker.worker_args(),
                              env=config.from_env(), hooks=hooks)
    return worker, settings


def serve(worker: Worker, settings: config.Settings, reload: Callable[[], config.Settings]) -> int:
    log.setup(settings.log_level, settings.log_format)
    call_hook(settings, "on_starting", settings)
    if settings.processes > 1 or settings.max_jobs_per_child or settings.max_memory_per_child:
        from upnext.supervisor import Supervisor

        call_hook(settings, "when_ready", settings)
        return Supervisor(worker, settings, reload, serve_child).run()
    call_hook(settings, "when_ready", settings)
    return serve_child(worker, settings)


def serve_child(worker: Worker, settings: config.Settings) -> int:
    """Serve in a worker process; post_fork runs first (in the only process without --processes)."""
    call_hook(settings, "post_fork", worker)
    return serve_here(worker, settings)


def serve_here(worker: Worker, settings: config.Settings) -> int:
    """Serve in this process: first TERM/INT drains gracefully, a second one stops at once."""
    handlers = [gevent.signal_handler(sig, worker.stop) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        return worker.serve(settings)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        return 1
    finally:
        for handler in handlers:
            handler.cancel()
        call_hook(settings, "worker_exit", worker)


def call_hook(settings: config.Settings, name: str, *args: Any) -> None:
    hook = settings.hooks.get(name)
    if hook is not None:
        hook(*args)
