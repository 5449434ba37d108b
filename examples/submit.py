"""Submit jobs from a plain (non-gevent) process and wait for their results.

Needs a worker running: upnext-gevent examples.hello:worker
"""

from examples.hello import greet, slow_report


def main() -> None:
    print(greet.wait("world", wait_timeout=10).value)
    future = slow_report.submit(rows=50)
    print(future.job_id, future.result(timeout=30).value)


if __name__ == "__main__":
    main()
