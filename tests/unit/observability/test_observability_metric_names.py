"""Every PromQL expression of the dashboards and alert rules parses, and uses only metric names
that something in the stack really exports (see metric_catalog for where each source is read)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from stackobservability import EXPORTED_METRICS_DIR, dashboards, metric_catalog
from stackobservability.exposition import series_from_exposition

ALL_QUERIES = (
    metric_catalog.committed_dashboard_queries() + metric_catalog.committed_alert_queries()
)


def test_there_are_queries_to_check() -> None:
    assert len(metric_catalog.committed_dashboard_queries()) >= 40
    assert len(metric_catalog.committed_alert_queries()) >= 9


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.where for q in ALL_QUERIES])
def test_expression_parses(query: metric_catalog.QueryRef) -> None:
    try:
        names = metric_catalog.metric_names(query.expr)
    except ValueError as error:
        pytest.fail(f"{query.where}: invalid PromQL ({error}): {query.expr}")
    assert names, f"{query.where} selects no metric: {query.expr}"


def test_every_metric_used_is_exported(registry: dict[str, dict[str, str]]) -> None:
    problems = metric_catalog.unknown_metric_problems(ALL_QUERIES, registry)
    assert not problems, "\n".join(problems)


def test_a_misspelled_metric_in_a_dashboard_is_caught(registry: dict[str, dict[str, str]]) -> None:
    model = json.loads(dashboards.dashboard_path("model").read_text())
    broken = copy.deepcopy(model)
    panel = next(p for p in broken["panels"] if p.get("title") == "Rows priced")
    panel["targets"][0]["expr"] = "sum(rate(model_server_predicted_row_total[5m]))"

    problems = metric_catalog.unknown_metric_problems(
        metric_catalog.dashboard_queries("model.json", broken), registry
    )

    assert len(problems) == 1
    assert "dashboard model.json / panel 'Rows priced'" in problems[0]
    assert "'model_server_predicted_row_total'" in problems[0]
    assert "Did you mean model_server_predicted_rows_total" in problems[0]


def test_a_misspelled_metric_in_an_alert_rule_is_caught(
    registry: dict[str, dict[str, str]],
) -> None:
    rules = yaml.safe_load(metric_catalog.ALERTS_FILE.read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r["alert"] == "FeatureDriftHigh")
    rule["expr"] = "max by (feature) (ml_monitoring_features_psi) > 0.25"

    problems = metric_catalog.unknown_metric_problems(metric_catalog.alert_queries(rules), registry)

    assert problems == [
        "alerts.yaml / group ml-monitoring / rule FeatureDriftHigh uses unknown metric "
        "'ml_monitoring_features_psi': no source exports it (sources: airflow, kubernetes, ml_monitoring, "
        "mlflow, model-server, prometheus, pushgateway, seaweedfs). "
        "Did you mean ml_monitoring_feature_psi?"
    ]


def test_invalid_promql_is_reported() -> None:
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        metric_catalog.metric_names("sum(rate(model_server_requests_total[5m])")


def test_name_matchers_count_as_metric_names() -> None:
    assert metric_catalog.metric_names('{__name__="up", job="x"} or absent(foo)') == {"up", "foo"}


# --------------------------------------------------------------- the sources are the real ones


CONTRACT_MODEL_SERVER = {
    "model_server_requests_total": "counter",
    "model_server_request_duration_seconds_bucket": "histogram",
    "model_server_request_duration_seconds_sum": "histogram",
    "model_server_request_duration_seconds_count": "histogram",
    "model_server_predicted_rows_total": "counter",
    "model_server_invalid_payloads_total": "counter",
    "model_server_model_info": "gauge",
    "model_server_model_reloads_total": "counter",
}
CONTRACT_ML_MONITORING = {
    "ml_monitoring_rmse",
    "ml_monitoring_mae",
    "ml_monitoring_r2",
    "ml_monitoring_feature_psi",
    "ml_monitoring_prediction_psi",
    "ml_monitoring_rows_scored",
    "ml_monitoring_last_success_timestamp_seconds",
}


def test_model_server_registry_has_the_contract_names(registry: dict[str, dict[str, str]]) -> None:
    exported = registry["model-server"]
    for name, kind in CONTRACT_MODEL_SERVER.items():
        assert exported.get(name) == kind, f"mlpipe.serve does not export {name} as a {kind}"


def test_monitoring_registry_has_the_contract_names(registry: dict[str, dict[str, str]]) -> None:
    exported = registry["ml_monitoring"]
    assert set(exported) == CONTRACT_ML_MONITORING
    assert set(exported.values()) == {"gauge"}


def test_recorded_scrapes_are_present(registry: dict[str, dict[str, str]]) -> None:
    assert "mlflow_http_request_total" in registry["mlflow"]
    assert "SeaweedFS_s3_request_total" in registry["seaweedfs"]
    assert "push_time_seconds" in registry["pushgateway"]
    assert "container_cpu_usage_seconds_total" in registry["kubernetes"]
    for source in metric_catalog.RECORDED_SOURCES:
        header = (EXPORTED_METRICS_DIR / f"{source}.txt").read_text().splitlines()[0]
        assert header.startswith("#"), f"{source}.txt must say where its names come from"


def test_exposition_reader_expands_types_and_reads_samples() -> None:
    text = "\n".join(
        [
            "# TYPE a_total counter",
            "# TYPE lat_seconds histogram",
            "# TYPE q summary",
            'q{quantile="0.5"} 1',
            "loose_metric 3",
            'lat_seconds_bucket{le="+Inf"} 0',
        ]
    )
    assert series_from_exposition(text) == {
        "a_total": "counter",
        "lat_seconds_bucket": "histogram",
        "lat_seconds_sum": "histogram",
        "lat_seconds_count": "histogram",
        "q": "summary",
        "q_sum": "summary",
        "q_count": "summary",
        "loose_metric": "untyped",
    }
