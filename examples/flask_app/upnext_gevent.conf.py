# Worker settings for the Flask example (a gunicorn-style Python file).
concurrency = 50
graceful_timeout = 20
log_format = "console"
