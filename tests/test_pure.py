"""Pure modules, no Redis: job ids and call encoding, keys, task options, config loading."""

from __future__ import annotations

import pytest

from upnext import config
from upnext.errors import ConfigError
from upnext.job import encode_call, function_of, new_job_id
from upnext.store import keys
from upnext.task import TaskDef


def test_job_ids_carry_their_task_and_bad_ids_are_named():
    job_id = new_job_id("send_email")
    assert function_of(job_id) == "send_email"
    with pytest.raises(ValueError, match="'nonsense'"):
        function_of("nonsense")


def test_every_key_of_a_job_shares_its_task_hash_tag():
    job_id = new_job_id("f")
    for key in (keys.job("p", job_id), keys.logs("p", job_id), keys.stream("p", "f"), keys.scheduled("p", "f"),
                keys.dedup("p", "f", "k"), keys.done_channel("p", job_id)):
        assert key.startswith("p:{f}:")


def test_encode_call_names_the_task_and_the_argument():
    def f(a, b=1):
        return a

    assert encode_call(f, "f", (1,), {"b": 2}) == ("[1]", '{"b":2}')
    with pytest.raises(TypeError, match=r"f\(\): .*argument"):
        encode_call(f, "f", (), {"c": 1})
    with pytest.raises(TypeError, match="argument 'b' is not JSON-serializable"):
        encode_call(f, "f", (1,), {"b": {1, 2}})


def test_backoff_of_the_nth_retry():
    definition = TaskDef("t", lambda: None, retries=3, retry_delay=1.0, retry_backoff=2.0)
    assert [definition.retry_delay_s(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert definition.max_attempts == 4


@pytest.mark.parametrize("option, value", [("retries", -1), ("timeout", 0), ("retry_delay", "x"),
                                           ("executor", "fork")])
def test_bad_task_options_fail_at_decoration_naming_the_option(option, value):
    with pytest.raises(ValueError, match=f"task 't': {option}"):
        TaskDef("t", lambda: None, **{option: value})


def test_queue_env_variables_are_read_and_bad_values_name_the_variable():
    assert config.from_env({"UPNEXT_QUEUE_BATCH_SIZE": "8", "UPNEXT_QUEUE_FLUSH_INTERVAL_MS": "2.5"}) == {
        "batch_size": 8, "flush_interval_ms": 2.5}
    for name in config.QUEUE_FIELDS:
        with pytest.raises(ConfigError, match=f"UPNEXT_QUEUE_{name.upper()}"):
            config.from_env({f"UPNEXT_QUEUE_{name.upper()}": "-5"})


def test_worker_queue_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="WorkerQueueConfig.claim_timeout_ms"):
        config.WorkerQueueConfig(claim_timeout_ms=0)


def test_precedence_is_cli_then_file_then_worker_then_env_then_default():
    layers = {"env": {"concurrency": 1}, "worker": {"concurrency": 2}, "file": {"concurrency": 3},
              "cli": {"concurrency": 4}}
    assert config.resolve(**layers).concurrency == 4
    for dropped, expected in (("cli", 3), ("file", 2), ("worker", 1), ("env", config.SETTINGS["concurrency"].default)):
        layers.pop(dropped)
        assert config.resolve(**layers).concurrency == expected


def test_config_file_settings_hooks_and_suggestions(tmp_path):
    path = tmp_path / "conf.py"
    path.write_text("import os\nconcurrency = 5\ndef post_job(ctx, result):\n    pass\n")
    settings, hooks = config.load_file(str(path))
    assert settings == {"concurrency": 5} and set(hooks) == {"post_job"}
    path.write_text("graceful_timout = 3\n")
    with pytest.raises(ConfigError, match="did you mean 'graceful_timeout'"):
        config.load_file(str(path))
    path.write_text("def on_job_error(ctx):\n    pass\n")
    with pytest.raises(ConfigError, match="on_job_error .* 2 argument"):
        config.load_file(str(path))


def test_redis_password_is_masked():
    settings = config.resolve(cli={"redis_url": "redis://app:hunter2@db:6379/0"})
    assert settings.masked()["redis_url"] == "redis://app:***@db:6379/0"
