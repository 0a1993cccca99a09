"""The alert rules, checked and unit-tested by promtool (Debian's ``prometheus`` package).

``promtool check`` validates deploy/prometheus.yml and the rules it loads;
``promtool test rules`` runs deploy/prometheus/tests/*.yml, which must make every alert
fire in one case and stay quiet in another. Each alert carries what an operator needs
(summary, description, a severity, a runbook section that exists).
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml
from ops_pack import ALERTS, DEPLOY, RULE_TESTS, RUNBOOK, alert_rules, promtool

SEVERITIES = {"page", "ticket"}


@pytest.fixture(scope="module", name="promtool")
def promtool_path() -> str:
    return promtool()


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=DEPLOY, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_the_prometheus_config_and_its_rules_are_valid(promtool: str) -> None:
    output = run(promtool, "check", "config", "prometheus.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in output, output


def test_the_rules_pass_promtools_checks(promtool: str) -> None:
    run(promtool, "check", "rules", str(ALERTS))


def test_the_rule_unit_tests_pass(promtool: str) -> None:
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    output = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert output.count("SUCCESS") == len(RULE_TESTS), output


def rule_test_cases() -> list[dict[str, Any]]:
    cases = []
    for path in RULE_TESTS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert any(ALERTS.samefile(path.parent / f) for f in spec["rule_files"]), path
        for test in spec["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    cases = rule_test_cases()
    for rule in alert_rules():
        own = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case.get("exp_alerts") for case in own), f"{rule['alert']} never fires"
        assert any(not case.get("exp_alerts") for case in own), f"{rule['alert']} never quiet"
    named = {case["alertname"] for case in cases}
    assert named <= {rule["alert"] for rule in alert_rules()}, "a test names no rule"


def runbook_anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    fenced = False
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.*)", line)):
            slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_every_alert_says_what_it_means_and_where_its_runbook_is() -> None:
    anchors = runbook_anchors()
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "two alerts share a name"
    for rule in alert_rules():
        name, annotations = rule["alert"], rule.get("annotations", {})
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        assert annotations.get("summary", "").strip(), f"{name} has no summary"
        assert annotations.get("description", "").strip(), f"{name} has no description"
        path, _, anchor = annotations.get("runbook_url", "").partition("#")
        assert path == "deploy/runbook.md", f"{name}: runbook_url {annotations.get('runbook_url')}"
        assert anchor == name.lower(), f"{name}: its runbook section is #{name.lower()}"
        assert anchor in anchors, f"deploy/runbook.md has no section {name}"


def test_the_issue_s_signals_each_have_an_alert() -> None:
    """Issue 24: outbox age, consumer lag, DLQ records, quarantined outbox rows, webhook
    failure ratio and disabled endpoints, pending deliveries, task heartbeat, 5xx ratio."""
    exprs = " ".join(rule["expr"] for rule in alert_rules())
    for series in (
        "reelpolicy_outbox_oldest_age_seconds",
        "reelpolicy_consumer_lag",
        "reelpolicy_dead_letters_waiting",
        "reelpolicy_outbox_quarantine_rows",
        "reelpolicy_delivery_attempts_total",
        "reelpolicy_subscriptions_disabled",
        "reelpolicy_deliveries_overdue_seconds",
        "reelpolicy_task_heartbeat_timestamp_seconds",
        "reelpolicy_task_up",
        'status="5xx"',
    ):
        assert series in exprs, series
