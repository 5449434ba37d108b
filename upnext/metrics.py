"""Prometheus metrics (SPEC §9), read from Redis at scrape time by a custom collector: nothing is
counted in this process, so any number of exporters (``upnext-gevent metrics``, the dashboard's
``/metrics``) agree, and a scrape costs three round trips whatever the number of jobs.

prometheus_client is an optional extra (``pip install 'upnext-gevent[metrics]'``), imported only
when a collector is built or collects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from upnext.errors import ConfigError
from upnext.store import keys
from upnext.store.queue import Queue
from upnext.store.scrape import FunctionGauges, read_scrape
from upnext.store.stats import COUNTERS, Histogram

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

DEPTH_STATES = ("queued", "active", "scheduled", "due", "failed")
METRIC_NAMES = ("upnext_jobs_total", "upnext_job_duration_seconds", "upnext_queue_wait_seconds",
                "upnext_queue_depth", "upnext_queue_oldest_age_seconds", "upnext_function_paused",
                "upnext_workers", "upnext_worker_slots")


def _prometheus() -> Any:
    try:
        import prometheus_client.core
    except ImportError:
        raise ConfigError("Prometheus metrics need prometheus_client: "
                          "pip install 'upnext-gevent[metrics]' (or pip install prometheus_client)") from None
    return prometheus_client.core


class UpnextCollector:
    """A prometheus_client collector (``collect()`` yields metric families) over one queue."""

    def __init__(self, queue: Queue):
        _prometheus()  # the missing extra is told when the exporter is built, not at the first scrape
        self.queue = queue

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read Redis (prometheus_client calls collect() otherwise)."""
        return []

    def collect(self) -> Iterator[Metric]:
        core = _prometheus()
        scrape = read_scrape(self.queue)
        yield from _function_families(core, scrape.functions)
        yield core.GaugeMetricFamily("upnext_workers", "Worker processes with a live heartbeat.", value=scrape.workers)
        slots = core.GaugeMetricFamily("upnext_worker_slots", "Job slots of the live workers.", labels=["state"])
        slots.add_metric(["busy"], scrape.slots_busy)
        slots.add_metric(["free"], scrape.slots_free)
        yield slots


def _function_families(core: Any, functions: list[FunctionGauges]) -> Iterator[Metric]:
    jobs = core.CounterMetricFamily("upnext_jobs", "Runs that ended, by outcome (retried: an attempt that will run "
                                    "again).", labels=["function", "status"])
    run = core.HistogramMetricFamily("upnext_job_duration_seconds", "Run time of runs that ended, any outcome.",
                                     labels=["function"])
    wait = core.HistogramMetricFamily("upnext_queue_wait_seconds", "Wait from enqueued (or due) to started.",
                                      labels=["function"])
    depth = core.GaugeMetricFamily("upnext_queue_depth", "Jobs by state: queued (in the stream, not started), "
                                   "active, scheduled (not yet due), due (scheduled, time come), failed.",
                                   labels=["function", "state"])
    oldest = core.GaugeMetricFamily("upnext_queue_oldest_age_seconds", "Age of the oldest job waiting to start "
                                    "(queued, or scheduled and due); 0 when none waits.", labels=["function"])
    paused = core.GaugeMetricFamily("upnext_function_paused", "1 while the function is paused.", labels=["function"])
    for g in functions:
        for status in COUNTERS:
            jobs.add_metric([g.function, status], g.total.counters[status])
        run.add_metric([g.function], _buckets(g.total.run), g.total.run.sum_s)
        wait.add_metric([g.function], _buckets(g.total.wait), g.total.wait.sum_s)
        for state in DEPTH_STATES:
            depth.add_metric([g.function, state], g.depth[state])
        oldest.add_metric([g.function], g.oldest_age_s)
        paused.add_metric([g.function], int(g.paused))
    yield from (jobs, run, wait, depth, oldest, paused)


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Cumulative buckets; +Inf is the count n (the per-bucket counts could trail it mid-write)."""
    out, seen = [], 0
    for bound, count in zip(keys.STAT_BUCKETS_S, histogram.counts):
        seen += count
        if not math.isinf(bound):
            out.append((_le(bound), float(seen)))
    out.append(("+Inf", float(histogram.n)))
    return out


def _le(bound: float) -> str:
    return repr(float(bound))


def registry_for(queue: Queue) -> CollectorRegistry:
    """A registry holding only our collector (no process metrics of the exporter itself)."""
    _prometheus()
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(UpnextCollector(queue))
    return registry
