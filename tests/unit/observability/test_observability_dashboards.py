"""The committed dashboard JSON is exactly what dashboards.py generates, and is well formed."""

from __future__ import annotations

import json

import pytest

from stackobservability import dashboards, metric_catalog


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_committed_json_matches_the_code(name: str) -> None:
    committed = dashboards.dashboard_path(name)
    assert committed.exists(), f"{committed} is missing: run {dashboards.REGENERATE_COMMAND}"
    assert committed.read_text() == dashboards.render(dashboards.DASHBOARDS[name]), (
        f"{committed} differs from what dashboards.py generates (edited by hand, or the code "
        f"changed without regenerating): run {dashboards.REGENERATE_COMMAND} and commit the JSON"
    )


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(dashboards, "DASHBOARD_DIR", tmp_path)
    for name, spec in dashboards.DASHBOARDS.items():
        (tmp_path / f"{name}.json").write_text(dashboards.render(spec))
    assert dashboards.main(["--check"]) == 0
    stale = tmp_path / "model.json"
    stale.write_text(stale.read_text().replace("p99", "p98"))
    assert dashboards.main(["--check"]) == 1
    assert "model.json is stale: run stack-dashboards" in (capsys.readouterr().err)


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_dashboard_is_well_formed(name: str) -> None:
    model = json.loads(dashboards.dashboard_path(name).read_text())
    panels = list(metric_catalog.iter_panels(model["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids {ids}"
    assert model["uid"] == dashboards.DASHBOARDS[name].uid
    assert [v["name"] for v in model["templating"]["list"]] == ["datasource"]
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= dashboards.GRID_WIDTH, f"{panel['title']} overflows"
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"{name} / {panel['title']}: no query"
        assert panel.get("description"), f"{name} / {panel['title']}: say what the panel shows"


def test_dashboards_cover_the_required_figures() -> None:
    """The figures the issue asks for are all on a dashboard (by the metric that carries them)."""
    used = {
        name
        for ref in metric_catalog.committed_dashboard_queries()
        for name in metric_catalog.metric_names(ref.expr)
    }
    required = {
        # pipeline
        "airflow_dagrun_duration_seconds_bucket",
        "airflow_ti_failures_total",
        "airflow_scheduler_heartbeat_total",
        "airflow_dag_processing_import_errors",
        "airflow_dag_processing_last_run_seconds_ago",
        # model
        "model_server_requests_total",
        "model_server_request_duration_seconds_bucket",
        "model_server_invalid_payloads_total",
        "model_server_model_info",
        "model_server_model_reloads_total",
        "ml_monitoring_rmse",
        "ml_monitoring_mae",
        "ml_monitoring_r2",
        "ml_monitoring_feature_psi",
        "ml_monitoring_prediction_psi",
        "ml_monitoring_last_success_timestamp_seconds",
        # cluster
        "kube_pod_status_phase",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "node_cpu_seconds_total",
    }
    assert required <= used, f"not on any dashboard: {sorted(required - used)}"


def test_latency_panel_shows_p50_p95_p99_from_the_histogram() -> None:
    model = json.loads(dashboards.dashboard_path("model").read_text())
    latency = next(p for p in model["panels"] if p.get("title") == "Prediction latency")
    exprs = [target["expr"] for target in latency["targets"]]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(
            e.startswith(f"histogram_quantile({quantile},")
            and "model_server_request_duration_seconds_bucket" in e
            for e in exprs
        ), f"no p{quantile} query in {exprs}"


def test_psi_thresholds_match_mlpipe_monitoring() -> None:
    from mlpipe import monitoring

    assert dashboards.PSI_MODERATE == monitoring.PSI_MODERATE
    assert dashboards.PSI_SIGNIFICANT == monitoring.PSI_SIGNIFICANT
