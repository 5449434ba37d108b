"""A config file whose job hooks record themselves in Redis (used by test_cli)."""

from tests.apps import ledger as _ledger  # underscored: a helper, not a setting

concurrency = 4


def pre_job(ctx):
    _ledger().rpush("config_hooks", f"pre_job:{ctx.function}")


def post_job(ctx, result):
    _ledger().rpush("config_hooks", f"post_job:{ctx.function}:{result}")


def on_job_error(ctx, exc):
    _ledger().rpush("config_hooks", f"on_job_error:{ctx.function}:{exc}")
