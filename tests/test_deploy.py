"""deploy/: the Grafana dashboard, the alert rules, the scrape config and the Kubernetes recipe load,
and every metric they name is one upnext/metrics.py exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.workers import ROOT
from upnext.metrics import METRIC_NAMES

DEPLOY = ROOT / "deploy"
HISTOGRAMS = {"upnext_job_duration_seconds", "upnext_queue_wait_seconds"}
EXPOSED = set(METRIC_NAMES) | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bupnext_[a-z_]+\b", text))


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "upnext-gevent.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_parses_and_shows_every_metric_we_export():
    exprs = dashboard_exprs()
    used = metric_names("\n".join(exprs))
    assert used <= EXPOSED, used - EXPOSED
    shown = {name.removesuffix("_bucket") for name in used}
    assert shown >= set(METRIC_NAMES), set(METRIC_NAMES) - shown


def test_the_alert_rules_load_and_name_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    by_name = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(by_name) == {"UpnextOldestQueuedJobTooOld", "UpnextHighFailureRate", "UpnextNoLiveWorker"}
    for rule in by_name.values():
        used = metric_names(rule["expr"])
        assert used and used <= EXPOSED, (rule["alert"], used - EXPOSED)


def test_the_scrape_config_loads_the_rules_beside_it():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["127.0.0.1:9808"]
    assert all((DEPLOY / "prometheus" / f).is_file() for f in config["rule_files"])


def kubernetes() -> dict[str, dict]:
    docs = yaml.safe_load_all((DEPLOY / "kubernetes" / "upnext.yaml").read_text())
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_the_worker_gets_longer_than_its_graceful_timeout_and_a_liveness_probe_on_its_health_file():
    worker = kubernetes()["Deployment/upnext-worker"]["spec"]["template"]["spec"]
    [container] = worker["containers"]
    command = container["command"]
    graceful_s = float(command[command.index("--graceful-timeout") + 1])
    assert worker["terminationGracePeriodSeconds"] > graceful_s
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["UPNEXT_HEALTH_FILE"] in " ".join(container["livenessProbe"]["exec"]["command"])


def test_the_autoscaler_and_the_exporter_use_exported_metrics():
    docs = kubernetes()
    triggers = docs["ScaledObject/upnext-worker"]["spec"]["triggers"]
    used = metric_names("\n".join(t["metadata"]["query"] for t in triggers))
    assert {"upnext_queue_oldest_age_seconds", "upnext_queue_depth"} <= used <= EXPOSED
    exporter = docs["Deployment/upnext-metrics"]["spec"]["template"]["spec"]["containers"][0]
    assert exporter["command"][:2] == ["upnext-gevent", "metrics"]


def test_every_metric_named_anywhere_in_deploy_is_exported():
    for path in Path(DEPLOY).rglob("*"):
        if path.is_file():
            assert metric_names(path.read_text()) <= EXPOSED, path
