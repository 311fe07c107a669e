"""ml_monitoring end to end: the champion scores the newest batch, the report lands in S3 and
the figures reach the Pushgateway (where the backend runs one) for Prometheus and Grafana."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stack_clients import DagRun

from mlpipe.monitoring import MonitoringReport
from mlpipe.schema import FEATURE_COLUMNS
from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration

CONTRACT_GAUGES = (
    "ml_monitoring_rmse",
    "ml_monitoring_mae",
    "ml_monitoring_r2",
    "ml_monitoring_feature_psi",
    "ml_monitoring_prediction_psi",
    "ml_monitoring_rows_scored",
    "ml_monitoring_last_success_timestamp_seconds",
)


def test_monitoring_report_is_written_to_s3(
    monitoring_run: DagRun, endpoints: Endpoints, s3: Any
) -> None:
    listing = s3.list_objects_v2(Bucket=endpoints.s3_bucket, Prefix="monitoring/")
    reports = [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".json")]
    assert reports, f"ml_monitoring run {monitoring_run.run_id} wrote no monitoring/*.json report"
    newest = max(listing["Contents"], key=lambda o: o["LastModified"])["Key"]
    report = MonitoringReport.model_validate_json(
        s3.get_object(Bucket=endpoints.s3_bucket, Key=newest)["Body"].read()
    )
    assert report.model_name == endpoints.model_name
    assert report.rows_scored > 0
    # The champion is a good model: on fresh data it must stay far above the weak model's R^2.
    assert report.quality.r2 > 0.9, f"{newest}: {report.quality}"
    assert set(report.feature_psi) == set(FEATURE_COLUMNS), f"{newest}: {report.feature_psi}"


def test_monitoring_figures_reach_the_pushgateway(
    monitoring_run: DagRun, endpoints: Endpoints
) -> None:
    if endpoints.pushgateway_url is None:
        pytest.skip(f"the {endpoints.backend} stack runs no Pushgateway (pushgateway_url is None)")
    url = f"{endpoints.pushgateway_url}/metrics"
    exposition = httpx.get(url, timeout=30, auth=endpoints.pushgateway_auth()).text
    missing = [name for name in CONTRACT_GAUGES if f"\n{name}{{" not in exposition]
    assert not missing, f"Pushgateway lacks {missing} after run {monitoring_run.run_id}"
