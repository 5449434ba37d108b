"""upnext.config alone, no Redis, no gevent: env names and parsing, WorkerQueueConfig, config
files (unknown names, hooks), the precedence of the sources, and masking of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from upnext import config
from upnext.errors import ConfigError

QUEUE_VALUES = {"batch_size": ("8", 8), "inbox_size": ("16", 16), "outbox_size": ("500", 500),
                "flush_interval_ms": ("2.5", 2.5), "claim_timeout_ms": ("1000", 1000),
                "job_ttl_seconds": ("3600", 3600), "completed_ttl_seconds": ("600", 600),
                "stream_maxlen": ("0", 0)}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "upnext_gevent.conf.py"
    path.write_text(text)
    return str(path)


def test_the_queue_fields_are_exactly_the_documented_ones():
    assert set(config.QUEUE_FIELDS) == set(QUEUE_VALUES)


@pytest.mark.parametrize("field", sorted(QUEUE_VALUES))
def test_each_queue_env_variable_is_read_under_its_documented_name(field):
    text, expected = QUEUE_VALUES[field]
    variable = f"UPNEXT_QUEUE_{field.upper()}"
    assert config.SETTINGS[field].env == variable
    parsed = config.from_env({variable: text})
    assert parsed == {field: expected} and type(parsed[field]) is type(expected)


@pytest.mark.parametrize("field", sorted(QUEUE_VALUES))
@pytest.mark.parametrize("bad", ["many", "-5", "1.5x"])
def test_a_bad_queue_env_value_names_the_variable(field, bad):
    with pytest.raises(ConfigError, match=f"^UPNEXT_QUEUE_{field.upper()} must be .*{bad!r}"):
        config.from_env({f"UPNEXT_QUEUE_{field.upper()}": bad})


def test_only_stream_maxlen_accepts_zero():
    assert config.from_env({"UPNEXT_QUEUE_STREAM_MAXLEN": "0"}) == {"stream_maxlen": 0}
    with pytest.raises(ConfigError, match="UPNEXT_QUEUE_BATCH_SIZE must be >= 1"):
        config.from_env({"UPNEXT_QUEUE_BATCH_SIZE": "0"})


def test_other_settings_use_upnext_and_their_name():
    env = {"UPNEXT_CONCURRENCY": "50", "UPNEXT_REDIS_URL": "redis://r:1/2", "UPNEXT_BURST": "yes",
           "UPNEXT_LOG_FORMAT": "JSON", "UPNEXT_GRACEFUL_TIMEOUT": "12"}
    assert config.from_env(env) == {"concurrency": 50, "redis_url": "redis://r:1/2", "burst": True,
                                    "log_format": "json", "graceful_timeout": 12.0}


def test_empty_and_unrelated_env_variables_are_ignored():
    assert config.from_env({"UPNEXT_CONCURRENCY": "", "UPNEXT_BATCH_SIZE": "8", "PATH": "/bin"}) == {}


@pytest.mark.parametrize("variable, bad, message", [
    ("UPNEXT_BURST", "maybe", "must be true or false"),
    ("UPNEXT_LOG_LEVEL", "loud", "must be one of debug, info, warning, error"),
    ("UPNEXT_GRACEFUL_TIMEOUT", "0", "must be > 0"),
    ("UPNEXT_CONCURRENCY", "2.5", "must be an integer"),
])
def test_a_bad_env_value_of_any_setting_names_the_variable(variable, bad, message):
    with pytest.raises(ConfigError, match=f"^{variable} {message}"):
        config.from_env({variable: bad})


def test_worker_queue_config_keeps_only_the_fields_given():
    assert config.WorkerQueueConfig(batch_size=8, claim_timeout_ms=5000).given() == {
        "batch_size": 8, "claim_timeout_ms": 5000}


@pytest.mark.parametrize("field, bad", [("batch_size", 0), ("inbox_size", "x"), ("outbox_size", -1),
                                        ("flush_interval_ms", 0), ("claim_timeout_ms", 1.5),
                                        ("job_ttl_seconds", True), ("stream_maxlen", -1)])
def test_worker_queue_config_names_the_bad_field(field, bad):
    with pytest.raises(ConfigError, match=f"^WorkerQueueConfig.{field} must be"):
        config.WorkerQueueConfig(**{field: bad})


def test_a_config_file_sets_settings_and_hooks_and_skips_its_own_helpers(tmp_path):
    path = write(tmp_path, "import os\nfrom pathlib import Path\nMAX = 4\n_private = 'x'\n"
                           "concurrency = MAX * 2\nredis_url = 'redis://cfg:1/0'\nbatch_size = 16\n"
                           "def _note(text):\n    pass\n"
                           "def post_fork(worker):\n    _note('forked')\n"
                           "def on_job_error(ctx, exc):\n    pass\n")
    settings, hooks = config.load_file(path)
    assert settings == {"concurrency": 8, "redis_url": "redis://cfg:1/0", "batch_size": 16}
    assert set(hooks) == {"post_fork", "on_job_error"}


def test_an_unknown_name_in_a_config_file_names_it_and_suggests_the_closest_setting(tmp_path):
    path = write(tmp_path, "concurreny = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'concurreny' in config file '.*upnext_gevent\.conf\.py'"
                                          r"; did you mean 'concurrency'\?"):
        config.load_file(path)


def test_an_unknown_name_with_nothing_close_gets_no_suggestion_but_the_underscore_escape(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown setting 'zebra' in config file '[^']*' "
                                          r"\(a variable of your own: name it '_zebra'\)$"):
        config.load_file(write(tmp_path, "zebra = 1\n"))


def test_a_bad_value_in_a_config_file_names_the_setting_and_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^graceful_timeout \(from config file '.*'\) must be > 0"):
        config.load_file(write(tmp_path, "graceful_timeout = -1\n"))


@pytest.mark.parametrize("hook, params", [("on_starting", "config, extra"), ("post_job", "ctx"),
                                          ("on_job_error", ""), ("pre_job", "ctx, result")])
def test_a_hook_with_the_wrong_number_of_parameters_is_refused_naming_it(tmp_path, hook, params):
    path = write(tmp_path, f"def {hook}({params}):\n    pass\n")
    arity = config.HOOK_ARITY[hook]
    with pytest.raises(ConfigError, match=f"^hook {hook} in .* must accept {arity} argument"):
        config.load_file(path)


def test_hooks_with_defaults_or_varargs_are_accepted(tmp_path):
    path = write(tmp_path, "def post_job(ctx, result=None, extra=1):\n    pass\n"
                           "def on_starting(*args):\n    pass\n")
    assert set(config.load_file(path)[1]) == {"post_job", "on_starting"}


def test_a_hook_that_is_not_callable_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="^hook when_ready in .* must be callable"):
        config.load_file(write(tmp_path, "when_ready = 'soon'\n"))


def test_a_function_named_almost_like_a_hook_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown hook 'post_jbo' .*did you mean 'post_job'"):
        config.load_file(write(tmp_path, "def post_jbo(ctx, result):\n    pass\n"))


def test_a_config_file_that_raises_or_is_missing_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"failed to load: ZeroDivisionError"):
        config.load_file(write(tmp_path, "concurrency = 1 / 0\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_file(str(tmp_path / "nope.py"))


def test_cli_beats_the_config_file():
    assert config.resolve(cli={"concurrency": 9}, file={"concurrency": 7}).concurrency == 9


def test_the_config_file_beats_worker_arguments():
    assert config.resolve(file={"concurrency": 7}, worker={"concurrency": 3}).concurrency == 7


def test_worker_arguments_beat_env():
    assert config.resolve(worker={"concurrency": 3}, env={"concurrency": 20}).concurrency == 3


def test_env_beats_the_default():
    assert config.resolve(env={"concurrency": 20}).concurrency == 20
    assert config.resolve().concurrency == config.SETTINGS["concurrency"].default


def test_a_layer_only_overrides_what_it_sets():
    settings = config.resolve(cli={"concurrency": 9, "name": None}, file={"name": "from-file"},
                              env={"batch_size": 8})
    assert (settings.concurrency, settings.name, settings.batch_size) == (9, "from-file", 8)


def test_the_inbox_is_never_smaller_than_a_batch():
    assert config.resolve(cli={"batch_size": 64}).inbox_size == 64
    assert config.resolve(cli={"batch_size": 2, "inbox_size": 6}).inbox_size == 6


def test_settings_carry_hooks_and_refuse_unknown_attributes():
    settings = config.resolve(hooks={"post_fork": print})
    assert settings.hooks == {"post_fork": print}
    with pytest.raises(AttributeError):
        settings.concurreny  # noqa: B018


@pytest.mark.parametrize("url, shown", [
    ("redis://app:hunter2@db:6379/0", "redis://app:***@db:6379/0"),
    ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
    ("rediss://app:hun@ter2@db/0", "rediss://app:***@db/0"),
    ("redis://db:6379/0?password=hunter2&db=1", "redis://db:6379/0?password=***&db=1"),
    ("unix:///run/redis.sock?password=hunter2", "unix:///run/redis.sock?password=***"),
    ("redis://db:6379/0", "redis://db:6379/0"),
])
def test_print_config_masks_the_redis_password(url, shown):
    settings = config.resolve(cli={"redis_url": url}, file={"concurrency": 7})
    masked = settings.masked()
    assert masked["redis_url"] == shown and masked["concurrency"] == 7
    assert settings.redis_url == url  # masking is for display only
