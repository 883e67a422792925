"""Every series the alert rules and the Grafana dashboard query is one something exports and Prometheus scrapes.

A misspelt name, a counter without ``_total``, a histogram without ``_bucket`` or a label the code does not set is
not an error in PromQL: the query just returns nothing, the panel stays empty and the alert never fires.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.observability import Metrics
from serving.metrics import ServingMetrics
from tests.unit.deploy.common import ROOT

MONITORING = ROOT / "k8s" / "base" / "monitoring.yaml"
DASHBOARD = ROOT / "k8s" / "base" / "dashboards" / "xiaoke-overview.json"
_NAME = re.compile(r"(?<![\w:])((?:xiaoke|ray|kube)_[a-zA-Z0-9_]+)")
_SELECTOR = re.compile(r"(?<![\w:])((?:xiaoke|ray|kube)_[a-zA-Z0-9_]+)\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
# Labels Prometheus adds to every scraped series (ServiceMonitor target labels).
_TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "container", "endpoint"}
# Where the installed ray package registers the metrics queried here (names without the `ray_` prefix).
_RAY_SOURCES = ("serve/_private", "dashboard/modules/reporter")


def _exprs() -> list[str]:
    exprs = []
    for doc in yaml.safe_load_all(MONITORING.read_text(encoding="utf-8")):
        if doc and doc.get("kind") == "PrometheusRule":
            exprs += [str(r["expr"]) for g in doc["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 10
    return exprs


# Tags Ray adds to every application metric, and Serve to those recorded in a replica (ray.serve.metrics).
_RAY_TAGS = {
    "Component",
    "NodeAddress",
    "SessionName",
    "Version",
    "WorkerId",
    "deployment",
    "replica",
    "application",
}


def _series(registry: Any, prefix: str = "", extra: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Exposed series name -> label names, as prometheus_client writes them (``_total``, ``_bucket`` + ``le`` ...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    series: dict[str, set[str]] = {}
    for collector in registry._collector_to_names:  # noqa: SLF001 (label names are not public)
        labels = set(collector._labelnames) | extra  # noqa: SLF001
        for suffix in suffixes[collector._type]:  # noqa: SLF001
            series[prefix + collector._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())  # noqa: SLF001
    return series


def _api_series() -> dict[str, set[str]]:
    """The API's series, and the inference server's as Ray's metrics agent exports them (``ray_`` prefix, Ray's
    and Serve's tags; serving/metrics.py mirrors its registry there)."""
    serving = ServingMetrics(cluster=False).registry
    return _series(Metrics().registry) | _series(serving, "ray_", frozenset(_RAY_TAGS))


def test_api_series_in_rules_and_dashboard_are_exported_with_those_labels() -> None:
    exported = _api_series()
    problems = []
    for expr in _exprs():
        for name in set(_NAME.findall(expr)):
            if name.startswith(("xiaoke_", "ray_xiaoke_")) and name not in exported:
                problems.append(
                    f"{name} is exported by neither api/observability.py nor serving/metrics.py ({expr})"
                )
        for name, matchers in _SELECTOR.findall(expr):
            if name in exported:
                for label in _MATCHER_LABEL.findall(matchers):
                    if label not in exported[name] | _TARGET_LABELS:
                        problems.append(f"{name} has no label {label!r} ({expr})")
        for by in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            names = [n for n in _NAME.findall(expr) if n in exported]
            for label in (x.strip() for x in by.split(",") if x.strip()):
                if names and all(label not in exported[n] | _TARGET_LABELS for n in names):
                    problems.append(f"'by ({by})': no queried API series has {label!r} ({expr})")
    assert problems == []


def test_no_rule_or_panel_relies_on_the_unscraped_serving_registry() -> None:
    """``xiaoke_serving_*`` is the Serve ingress's own /metrics (port 8001, a random replica per request); what
    Prometheus scrapes (Ray's metrics port, 8080) has the same series as ``ray_xiaoke_serving_*``."""
    used = sorted({n for e in _exprs() for n in _NAME.findall(e) if n.startswith("xiaoke_serving_")})
    assert used == []


def test_ray_series_in_rules_and_dashboard_exist_in_the_pinned_ray() -> None:
    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        pytest.skip("ray not installed")
    pkg = Path(spec.origin).parent
    source = "\n".join(
        f.read_text(encoding="utf-8", errors="replace") for d in _RAY_SOURCES for f in (pkg / d).rglob("*.py")
    )
    missing = []
    ray_own = {
        n
        for e in _exprs()
        for n in _NAME.findall(e)
        if n.startswith("ray_") and not n.startswith("ray_xiaoke_")
    }
    for name in sorted(ray_own):
        base = re.sub(r"_(bucket|sum|count|total)$", "", name).removeprefix("ray_")
        if f'"{base}"' not in source:
            missing.append(name)
    assert missing == []
