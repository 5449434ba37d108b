"""A config file whose job hooks record themselves in Redis (used by test_cli)."""

import os

import redis

concurrency = 4
_client = redis.Redis.from_url(os.environ["UPNEXT_REDIS_URL"], decode_responses=True)


def pre_job(ctx):
    _client.rpush("config_hooks", f"pre_job:{ctx.function}")


def post_job(ctx, result):
    _client.rpush("config_hooks", f"post_job:{ctx.function}:{result}")


def on_job_error(ctx, exc):
    _client.rpush("config_hooks", f"on_job_error:{ctx.function}:{exc}")
