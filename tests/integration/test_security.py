"""State-changing endpoints of a running stack refuse callers without credentials and accept the
ones the stack generated: the S3 API, Airflow's REST API, the model server's /reload, the
Pushgateway (basic auth locally), SeaweedFS's filer and volume ports (JWT) and Prometheus'
lifecycle API (off). MLflow is not protected yet (README, Security)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stackcontract.airflow_api import AirflowClient
from stackcontract.endpoints import Endpoints

PROBE_KEY = "security-probe/unsigned.txt"

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}],
    ids=["no token", "wrong token"],
)
def test_model_server_reload_refuses_callers_without_the_token(
    endpoints: Endpoints, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{endpoints.model_server_url}/reload", headers=headers, timeout=60)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_model_server_reload_accepts_the_stack_token(endpoints: Endpoints) -> None:
    response = httpx.post(
        f"{endpoints.model_server_url}/reload", headers=endpoints.reload_headers(), timeout=120
    )
    # 200 once a champion exists, 503 "no champion yet" before: either way the token was accepted.
    assert response.status_code in {200, 503}, response.text


@pytest.mark.parametrize("path", ["/-/reload", "/-/quit"])
def test_prometheus_lifecycle_api_is_off(endpoints: Endpoints, path: str) -> None:
    if endpoints.prometheus_url is None:
        pytest.skip(f"the {endpoints.backend} stack runs no Prometheus (prometheus_url is None)")
    response = httpx.post(f"{endpoints.prometheus_url}{path}", timeout=30)
    assert response.status_code == 403, response.text
    assert "Lifecycle API is not enabled" in response.text
    assert httpx.get(f"{endpoints.prometheus_url}/-/healthy", timeout=30).status_code == 200


def test_s3_refuses_an_unsigned_write_and_takes_a_signed_one(endpoints: Endpoints, s3: Any) -> None:
    url = f"{endpoints.s3_url}/{endpoints.s3_bucket}/{PROBE_KEY}"
    assert httpx.put(url, content=b"forged", timeout=30).status_code == 403
    assert httpx.delete(url, timeout=30).status_code == 403
    s3.put_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY, Body=b"signed")
    body = s3.get_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY)["Body"].read()
    s3.delete_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY)
    assert body == b"signed"


def test_airflow_refuses_a_tokenless_write_and_takes_an_authenticated_one(
    endpoints: Endpoints, airflow: AirflowClient
) -> None:
    variable = {"key": "security_probe", "value": "1"}
    url = f"{endpoints.airflow_url}/api/v2/variables"
    assert httpx.post(url, json=variable, timeout=30).status_code == 401
    client = airflow
    try:
        created = client.request("POST", "/api/v2/variables", json=variable)
        assert created["key"] == "security_probe"
    finally:
        client.send("DELETE", "/api/v2/variables/security_probe")


def test_pushgateway_refuses_unauthenticated_writes_and_takes_the_monitoring_job(
    endpoints: Endpoints,
) -> None:
    if endpoints.pushgateway_url is None:
        pytest.skip(f"the {endpoints.backend} stack runs no Pushgateway (pushgateway_url is None)")
    auth = endpoints.pushgateway_auth()
    if auth is None:
        pytest.skip(f"the {endpoints.backend} stack guards its Pushgateway with a NetworkPolicy")
    group = f"{endpoints.pushgateway_url}/metrics/job/security_probe"
    forged = b"ml_monitoring_rmse 0\n"
    assert httpx.put(group, content=forged, timeout=30).status_code == 401
    assert (
        httpx.delete(
            f"{endpoints.pushgateway_url}/metrics/job/ml_monitoring", timeout=30
        ).status_code
        == 401
    )
    assert (
        httpx.put(group, content=b"security_probe_pushed 1\n", auth=auth, timeout=30).status_code
        == 200
    )
    assert httpx.delete(group, auth=auth, timeout=30).status_code == 202


def test_seaweedfs_own_ports_refuse_unsigned_reads_and_writes(
    endpoints: Endpoints, s3: Any, stack: Any
) -> None:
    """Only the S3 API reaches the data: the filer and the volume server want a JWT signed with
    the stack's key, which no client outside the store has."""
    if endpoints.backend != "local" or stack.backend is None:
        pytest.skip(f"on {endpoints.backend} the filer and volume ports are not exposed at all")
    if stack.backend.options.s3 != "seaweedfs":
        pytest.skip(f"the stack runs {stack.backend.options.s3}, which has no filer or volume port")
    ports = stack.backend.config.ports  # the free ports this session's local stack runs on
    s3.put_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY, Body=b"signed")
    try:
        filer = f"http://127.0.0.1:{ports.seaweed_filer_port}/buckets/{endpoints.s3_bucket}"
        assert httpx.get(f"{filer}/{PROBE_KEY}", timeout=30).status_code == 401
        assert httpx.put(f"{filer}/forged.txt", content=b"x", timeout=30).status_code == 401
        assert httpx.delete(f"{filer}/{PROBE_KEY}", timeout=30).status_code == 401
        master = f"http://127.0.0.1:{ports.seaweed_master_port}"
        assigned = httpx.get(f"{master}/dir/assign", timeout=30).json()
        volume = f"http://{assigned['url']}/{assigned['fid']}"
        forged = httpx.post(volume, files={"file": ("forged", b"x")}, timeout=30)
        assert forged.status_code == 401
        body = s3.get_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY)["Body"].read()
        assert body == b"signed"  # the S3 API, signed, still reads and writes
    finally:
        s3.delete_object(Bucket=endpoints.s3_bucket, Key=PROBE_KEY)
