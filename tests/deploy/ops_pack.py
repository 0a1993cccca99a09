"""The ops pack's files as the tests read them: alert rules, dashboard, metric names.

A series name is what a PromQL expression names: ``reelpolicy_*`` (the services'
own metrics), ``http_*`` (prometheus-fastapi-instrumentator's), ``faststream_*``
(FastStream's Kafka middleware) and ``process_*`` (prometheus-client's process collector). :func:`exposed_names` says which of them a
``/metrics`` page offers, counting a family that has no sample yet (a labelled metric
nothing has set) by its HELP/TYPE lines.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
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


def settings_env(service_name: str) -> dict[str, bool]:
    """Env var name -> required, for every field of reelpolicy_<svc>.config.Settings."""
    module_name = f"reelpolicy_{service_name}.config"
    module = importlib.import_module(module_name)
    settings_cls = getattr(module, "Settings", None)
    assert settings_cls is not None, f"{module_name} has no Settings class"
    prefix = settings_cls.model_config.get("env_prefix", "") or ""
    names: dict[str, bool] = {}
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        names[(alias or prefix + field_name).upper()] = field.is_required()
    return names


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


EVENT_SERVICES = ("registry", "ingest", "rules", "notify")
"""The services on the event path: an outbox, consumers, Kafka."""
PORTAL = "portal"
SERVICES = (*EVENT_SERVICES, PORTAL)
"""Every scrape job the alert rules and the dashboard may select."""
PORTAL_SERIES = re.compile(r"(?:http|process|reelpolicy_task|reelpolicy_portal)_\w+")
"""The series the portal has: HTTP (prometheus-fastapi-instrumentator), its process, its
supervised background task and its own (sign-ins). Its /metrics lists the event path's
families too (unset, or an unlabelled gauge at 0: every process defines
reelpolicy_common.metrics'), so being listed there proves nothing for them: a query must
not select the portal for any other series."""


@dataclass(frozen=True)
class SeriesUse:
    """A series an expression names, and the services that must expose it: ``every``
    one of ``jobs`` (a dashboard row repeated per service), or at least one of them
    (an alert or panel selecting ``job="notify"``, ``job=~"a|b"``, or no job at all)."""

    name: str
    jobs: frozenset[str]
    every: bool
    where: str


_SELECTED = re.compile(r"(?P<name>\b[A-Za-z_:][\w:]*)\s*(?:\{(?P<labels>[^}]*)\})?")
_JOB = re.compile(r'\bjob\s*(?P<op>=~|=)\s*"(?P<value>[^"]*)"')


def _jobs(labels: str | None) -> frozenset[str]:
    match = _JOB.search(labels or "")
    if match is None:
        return frozenset(SERVICES)
    values = match["value"].split("|") if match["op"] == "=~" else [match["value"]]
    if values == ["$job"]:
        return frozenset(SERVICES)
    return frozenset(values)


def series_uses(expression: str, *, where: str) -> list[SeriesUse]:
    uses = []
    for match in _SELECTED.finditer(expression):
        if not SERIES_NAME.fullmatch(match["name"]):
            continue
        every = '"$job"' in (match["labels"] or "")
        uses.append(SeriesUse(match["name"], _jobs(match["labels"]), every, where))
    found = {use.name for use in uses}
    assert found == series_names(expression), (where, found, series_names(expression))
    return uses


def used_series() -> list[SeriesUse]:
    """Every series the alert rules and the dashboard use, with who must expose it."""
    uses: list[SeriesUse] = []
    for rule in alert_rules():
        uses += series_uses(rule["expr"], where=f"alert {rule['alert']}")
    for title, exprs in dashboard_queries(dashboard()).items():
        for expr in exprs:
            uses += series_uses(expr, where=f"panel {title!r}")
    return uses


def exposed_names(text: str) -> set[str]:
    """The series names a Prometheus text exposition offers (with or without samples)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names
