"""Every dashboard panel whose metrics the stack's own services export shows data in the real
Prometheus of the running stack.

Which panels qualify is decided by platform/observability/metric_catalog (the model server, MLflow,
SeaweedFS, the Pushgateway and ml_monitoring's pushed gauges); Airflow (statsd-exporter, Kubernetes
only) and cluster panels are not expected on the local backend. Before querying, the test sends a
little traffic of each kind the panels count (valid and invalid predictions, MLflow and S3 calls) and
waits for Prometheus to scrape it. Queries go to the Prometheus HTTP API (`/api/v1/query`).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from stackcontract.endpoints import Endpoints
from stackobservability import metric_catalog

pytestmark = pytest.mark.integration

# Sources the stack exports on every backend (Airflow and Kubernetes exporters are k8s-only).
STACK_SOURCES = {
    "model-server",
    "mlflow",
    "seaweedfs",
    "pushgateway",
    "ml_monitoring",
    "prometheus",
}
# Prometheus scrapes every 15s; rate() over [5m] needs two samples after the traffic.
DATA_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 5.0
ONE_DIAMOND = {
    "carat": 0.7,
    "cut": "Ideal",
    "color": "G",
    "clarity": "VS2",
    "depth": 61.8,
    "table": 56.0,
    "x": 5.7,
    "y": 5.72,
    "z": 3.53,
}

CATALOG = metric_catalog.build_registry()
STACK_QUERIES = [
    query
    for query in metric_catalog.committed_dashboard_queries()
    if metric_catalog.sources_of(query.expr, CATALOG) <= STACK_SOURCES
]


def instant_query(prometheus: httpx.Client, expr: str) -> list[Any]:
    """The result of an instant query (empty list = no data); fails on a query error."""
    response = prometheus.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        pytest.fail(f"Prometheus rejected {expr!r}: HTTP {response.status_code} {body}")
    data = body["data"]
    if data["resultType"] in {"scalar", "string"}:
        return [data["result"]]
    return list(data["result"])


def wait_for_data(prometheus: httpx.Client, expr: str, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = instant_query(prometheus, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(POLL_SECONDS)


def wait_for_next_scrape(prometheus: httpx.Client, stamp: str, timeout: float) -> None:
    """Until the sample time `stamp` evaluates to moves on: one more scrape has landed (polled
    every second instead of sleeping a whole scrape interval)."""
    first = instant_query(prometheus, stamp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = instant_query(prometheus, stamp)
        if first and now and float(now[0]["value"][1]) > float(first[0]["value"][1]):
            return
        time.sleep(1.0)
    pytest.fail(f"Prometheus scraped no new sample of {stamp!r} within {timeout:.0f}s")


@pytest.fixture(scope="module")
def prometheus(endpoints: Endpoints) -> Any:
    if endpoints.prometheus_url is None:
        pytest.skip(f"the {endpoints.backend} stack runs no Prometheus (prometheus_url is None)")
    with httpx.Client(base_url=endpoints.prometheus_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def panel_traffic(
    prometheus: httpx.Client,
    endpoints: Endpoints,
    first_training: Any,
    monitoring_run: Any,
    s3: Any,
) -> None:
    """Traffic of every kind the panels count, then wait until Prometheus has scraped it."""
    with httpx.Client(base_url=endpoints.model_server_url, timeout=30) as server:
        # Pick up the champion first_training registered without waiting for the alias poll.
        assert server.post("/reload", headers=endpoints.reload_headers()).status_code == 200
        for _ in range(5):
            assert server.post("/predict", json={"instances": [ONE_DIAMOND]}).status_code == 200
        assert server.post("/predict", json={"instances": [{"carat": -1}]}).status_code == 422
    with httpx.Client(
        base_url=endpoints.mlflow_url, auth=endpoints.mlflow_auth(), timeout=30
    ) as mlflow:
        mlflow.get("/api/2.0/mlflow/experiments/search", params={"max_results": 5})
    s3.list_objects_v2(Bucket=endpoints.s3_bucket, MaxKeys=5)
    # Two scrapes after the traffic, so rate() and histogram_quantile() see it.
    series = 'model_server_invalid_payloads_total{endpoint="/predict"}'
    signal = f"sum({series})"
    assert wait_for_data(prometheus, signal, DATA_TIMEOUT_SECONDS), (
        f"Prometheus at {endpoints.prometheus_url} never scraped the model server's 422 counter: "
        "is the model-server job in its scrape config and up?"
    )
    # timestamp() of the raw series: of an aggregate it would be the query's own time
    wait_for_next_scrape(prometheus, f"max(timestamp({series}))", DATA_TIMEOUT_SECONDS)
    if endpoints.pushgateway_url is not None:
        # the monitoring run pushed its figures: wait until Prometheus has scraped them too
        # (the Pushgateway is scraped on its own schedule, not with the model server)
        pushed = "ml_monitoring_last_success_timestamp_seconds"
        assert wait_for_data(prometheus, pushed, DATA_TIMEOUT_SECONDS), (
            f"Prometheus never scraped {pushed} from the Pushgateway after ml_monitoring ran"
        )


def test_the_stack_panels_are_many() -> None:
    assert len(STACK_QUERIES) >= 15, [q.where for q in STACK_QUERIES]


@pytest.mark.parametrize("query", STACK_QUERIES, ids=[q.where for q in STACK_QUERIES])
def test_panel_shows_data(
    query: metric_catalog.QueryRef, prometheus: httpx.Client, panel_traffic: None
) -> None:
    sources = metric_catalog.sources_of(query.expr, CATALOG)
    if "seaweedfs" in sources and not instant_query(prometheus, 'up{job="s3"} == 1'):
        pytest.skip("the stack's S3 is not SeaweedFS with metrics (no up job=s3 target)")
    if "ml_monitoring" in sources and not instant_query(
        prometheus, "ml_monitoring_last_success_timestamp_seconds"
    ):
        pytest.skip("ml_monitoring has not pushed figures to this stack's Pushgateway yet")
    result = wait_for_data(prometheus, query.expr, DATA_TIMEOUT_SECONDS)
    assert result, (
        f"{query.where}: no data after {DATA_TIMEOUT_SECONDS:.0f}s for {query.expr!r} "
        f"(sources: {', '.join(sorted(sources))})"
    )
