"""The Grafana dashboard compose provisions (deploy/grafana/dashboards/reelpolicy.json).

It must parse, lay its panels out on Grafana's 24-column grid, show the golden signals
(rate, errors, latency, saturation, background tasks) of every service and the portal,
and the event path (outbox age and backlog, consumer lag, dead letters, deliveries), and
every query must be PromQL that
Prometheus accepts (promtool checks them as recording rules, with the dashboard's
variables filled in). That the series they name exist is
tests/deploy/test_metrics_exposed.py's part.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_pack import (
    PORTAL_SERIES,
    SERVICES,
    dashboard,
    dashboard_queries,
    panels,
    promtool,
    series_names,
)


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return dashboard()


def test_the_dashboard_is_laid_out_on_grafanas_grid(board: dict[str, Any]) -> None:
    assert board["uid"] == "reelpolicy"
    assert board["title"]
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "two panels share an id"
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"{panel['title']!r} says nothing of what it shows"
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']!r} queries nothing"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in targets), panel["title"]


def rows(board: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each row with the panels below it (up to the next row)."""
    grouped: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            grouped.append((panel, list(panel.get("panels", []))))
        else:
            assert grouped, f"{panel['title']!r} is above every row"
            grouped[-1][1].append(panel)
    return grouped


def exprs(panel_list: list[dict[str, Any]]) -> str:
    return "\n".join(target["expr"] for panel in panel_list for target in panel["targets"])


def test_each_service_and_the_portal_have_their_golden_signals(board: dict[str, Any]) -> None:
    """One row repeated per job, the portal's among them: so the row shows only what the
    portal has too (no outbox, no consumer: those are the event path's panels)."""
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "job"]
    assert tuple(variable["query"].split(",")) == SERVICES
    [(row, per_service)] = [(r, p) for r, p in rows(board) if r.get("repeat") == "job"]
    assert "$job" in row["title"]
    for panel in per_service:
        for target in panel["targets"]:
            assert 'job="$job"' in target["expr"], f"{panel['title']!r}: {target['expr']}"
    queries = exprs(per_service)
    not_the_portals = sorted(n for n in series_names(queries) if not PORTAL_SERIES.fullmatch(n))
    assert not not_the_portals, f"the portal has none of {not_the_portals}"
    assert "rate(http_requests_total" in queries  # rate
    assert re.search(r'http_requests_total\{[^}]*status="5xx"', queries)  # errors
    assert re.search(r"histogram_quantile\(0\.9\d?, .*http_request_duration\w*_bucket", queries)
    for saturation in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert saturation in queries  # saturation
    assert "reelpolicy_task_up" in queries  # background tasks


def test_the_event_path_is_shown(board: dict[str, Any]) -> None:
    names = {name for q in dashboard_queries(board).values() for e in q for name in series_names(e)}
    for series in (
        "reelpolicy_outbox_oldest_age_seconds",
        "reelpolicy_outbox_backlog",
        "reelpolicy_outbox_published_total",
        "reelpolicy_consumer_lag",
        "reelpolicy_consumer_messages_total",
        "reelpolicy_dead_letters_waiting",
        "reelpolicy_delivery_attempts_total",
        "reelpolicy_deliveries_pending",
        "reelpolicy_deliveries_overdue_seconds",
        "reelpolicy_task_up",
    ):
        assert series in names, series


def test_every_query_is_promql_prometheus_accepts(board: dict[str, Any], tmp_path: Path) -> None:
    rules = []
    for n, (title, queries) in enumerate(dashboard_queries(board).items()):
        for m, expr in enumerate(queries):
            filled = expr.replace("$__rate_interval", "1m").replace("$job", "rules")
            assert "$" not in filled, f"{title!r}: a variable the test does not fill: {expr}"
            rules.append({"record": f"dashboard:panel_{n}_{m}", "expr": filled})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
