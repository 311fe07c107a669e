"""alerts.yaml is a valid Prometheus rule file whose alerts fire when (and only when) they should."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from stackobservability import OBSERVABILITY_DIR, dashboards, metric_catalog

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)
RULES = yaml.safe_load(metric_catalog.ALERTS_FILE.read_text())
ALERTS = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"]}


@needs_promtool
@pytest.mark.slow
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    """alerts.test.yaml feeds synthetic series and states which alerts fire (with what text)."""
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "alerts.test.yaml"],
        cwd=OBSERVABILITY_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rejects_a_broken_rule(tmp_path) -> None:
    """`promtool check rules` (the lint session runs it on alerts.yaml) bites: a rule with invalid
    PromQL fails it."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Broken\n"
        "        expr: sum(rate(model_server_requests_total[5m])\n"
    )
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_the_required_alerts_exist() -> None:
    required = {
        "ModelServerHighErrorRate",
        "ModelServerHighLatencyP99",
        "ModelServerNoChampion",
        "ModelServerDown",
        "FeatureDriftHigh",
        "ModelQualityDegraded",
        "MonitoringStale",
        "AirflowSchedulerHeartbeatMissing",
        "AirflowDagImportErrors",
        "AirflowTaskFailures",
    }
    assert required <= set(ALERTS), f"missing alerts: {sorted(required - set(ALERTS))}"


def test_every_alert_has_severity_and_text() -> None:
    for name, rule in ALERTS.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"].get("summary"), f"{name}: no summary"
        assert rule["annotations"].get("description"), f"{name}: no description"


def test_every_alert_has_a_promtool_unit_test() -> None:
    tests = yaml.safe_load((OBSERVABILITY_DIR / "alerts.test.yaml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    untested = set(ALERTS) - tested - {"ModelServerReloadFailures"}
    assert not untested, f"alerts without a promtool unit test: {sorted(untested)}"


def test_alert_thresholds_match_the_dashboards_and_monitoring() -> None:
    from mlpipe import monitoring

    assert f"> {monitoring.PSI_SIGNIFICANT}" in ALERTS["FeatureDriftHigh"]["expr"]
    assert f"> {monitoring.PSI_SIGNIFICANT}" in ALERTS["PredictionDriftHigh"]["expr"]
    assert f"< {dashboards.R2_MIN}" in ALERTS["ModelQualityDegraded"]["expr"]
    assert f"> {dashboards.ERROR_RATIO_MAX}" in ALERTS["ModelServerHighErrorRate"]["expr"]
    assert f"> {dashboards.P99_LATENCY_MAX_SECONDS}" in ALERTS["ModelServerHighLatencyP99"]["expr"]
