"""The ops pack's files as the tests read them: alert rules, dashboard, metric names.

A series name is what a PromQL expression names: ``reelpolicy_*`` (the services'
own metrics), ``http_*`` (prometheus-fastapi-instrumentator's), ``faststream_*``
(FastStream's Kafka middleware) and ``process_*`` (prometheus-client's process collector). :func:`exposed_names` says which of them a
``/metrics`` page offers, counting a family that has no sample yet (a labelled metric
nothing has set) by its HELP/TYPE lines.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
RUNBOOK = DEPLOY / "runbook.md"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "reelpolicy.json"

SERIES_NAME = re.compile(
    r"(?<![\w.\-])(?:reelpolicy|http|faststream|process)_[A-Za-z0-9_]*[A-Za-z0-9]"
)

# The series a family of each type shows, beyond the family's own name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}


PROMTOOL_MISSING = (
    "promtool is missing: install Debian's prometheus package"
    " (apt-get update && apt-get install -y --no-install-recommends prometheus);"
    " .ci/run does this when it is missing"
)


def promtool() -> str:
    """promtool's path; the calling test fails (never skips) without it."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(PROMTOOL_MISSING)
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def series_names(expression: str) -> set[str]:
    return set(SERIES_NAME.findall(expression))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(board: dict[str, Any]) -> dict[str, list[str]]:
    """Each panel's title -> the PromQL of its targets (rows, which query nothing, left out)."""
    return {
        panel["title"]: [target["expr"] for target in panel.get("targets", [])]
        for panel in panels(board)
        if panel.get("type") != "row"
    }


def used_series() -> dict[str, set[str]]:
    """Every series name the alert rules and the dashboard use -> where each is used."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in series_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for title, exprs in dashboard_queries(dashboard()).items():
        for expr in exprs:
            for name in series_names(expr):
                used.setdefault(name, set()).add(f"panel {title!r}")
    return used


def exposed_names(text: str) -> set[str]:
    """The series names a Prometheus text exposition offers (with or without samples)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names
