"""State-changing endpoints of a running stack refuse callers without credentials and accept the
ones the stack generated: the S3 API, Airflow's REST API, the model server's /reload, the
Pushgateway (basic auth locally), SeaweedFS's filer and volume ports (JWT), Prometheus'
lifecycle API (off) and MLflow's REST API and artifact proxy (its basic-auth app)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stackcontract.airflow_api import AirflowClient
from stackcontract.endpoints import Endpoints

PROBE_KEY = "security-probe/unsigned.txt"
PROBE_EXPERIMENT = "security-probe"
PROBE_ALIAS = "security-probe"
# Callers MLflow's auth app must turn away: no credentials, and its user with a wrong password.
ANONYMOUS = pytest.mark.parametrize("who", ["no credentials", "wrong password"])

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


def mlflow_caller(endpoints: Endpoints, who: str) -> httpx.Client:
    """An HTTP client of the stack's MLflow as `who`: anonymous, a wrong password or its user."""
    auth = endpoints.mlflow_auth()
    if auth is None:
        pytest.fail(f"the {endpoints.backend} stack reports no MLflow user: its MLflow is open")
    credentials = {"no credentials": None, "wrong password": (auth[0], "not-the-password")}
    return httpx.Client(
        base_url=f"{endpoints.mlflow_url}/api/2.0", auth=credentials.get(who, auth), timeout=60
    )


@ANONYMOUS
def test_mlflow_refuses_experiment_writes_without_its_user(endpoints: Endpoints, who: str) -> None:
    with mlflow_caller(endpoints, who) as mlflow:
        created = mlflow.post("/mlflow/experiments/create", json={"name": PROBE_EXPERIMENT})
        assert created.status_code == 401, created.text
        listed = mlflow.post("/mlflow/experiments/search", json={"max_results": 1})
        assert listed.status_code == 401, listed.text  # reads need the user too
    assert httpx.get(f"{endpoints.mlflow_url}/health", timeout=30).status_code == 200


def test_mlflow_takes_experiment_writes_from_its_user(endpoints: Endpoints) -> None:
    with mlflow_caller(endpoints, "the stack's user") as mlflow:
        found = mlflow.get(
            "/mlflow/experiments/get-by-name", params={"experiment_name": PROBE_EXPERIMENT}
        )
        if found.status_code == 200:  # left by an earlier run on a kept stack
            experiment_id = found.json()["experiment"]["experiment_id"]
            mlflow.post("/mlflow/experiments/restore", json={"experiment_id": experiment_id})
        else:
            created = mlflow.post("/mlflow/experiments/create", json={"name": PROBE_EXPERIMENT})
            assert created.status_code == 200, created.text
            experiment_id = created.json()["experiment_id"]
        deleted = mlflow.post("/mlflow/experiments/delete", json={"experiment_id": experiment_id})
        assert deleted.status_code == 200, deleted.text


@ANONYMOUS
def test_mlflow_refuses_to_move_an_alias_without_its_user(
    endpoints: Endpoints, first_training: Any, registry: Any, who: str
) -> None:
    """Nobody without the user moves (or removes) @champion: the served model stays put."""
    alias = {"name": endpoints.model_name, "alias": "champion", "version": "1"}
    with mlflow_caller(endpoints, who) as mlflow:
        moved = mlflow.post("/mlflow/registered-models/alias", json=alias)
        assert moved.status_code == 401, moved.text
        removed = mlflow.request("DELETE", "/mlflow/registered-models/alias", json=alias)
        assert removed.status_code == 401, removed.text
    champion = registry.get_model_version_by_alias(endpoints.model_name, "champion")
    assert champion.version == str(first_training.version)


def test_mlflow_takes_an_alias_from_its_user(
    endpoints: Endpoints, first_training: Any, registry: Any
) -> None:
    alias = {
        "name": endpoints.model_name,
        "alias": PROBE_ALIAS,
        "version": str(first_training.version),
    }
    with mlflow_caller(endpoints, "the stack's user") as mlflow:
        assert mlflow.post("/mlflow/registered-models/alias", json=alias).status_code == 200
        probe = registry.get_model_version_by_alias(endpoints.model_name, PROBE_ALIAS)
        assert probe.version == str(first_training.version)
        removed = mlflow.request("DELETE", "/mlflow/registered-models/alias", json=alias)
        assert removed.status_code == 200, removed.text


@ANONYMOUS
def test_mlflow_artifact_proxy_refuses_writes_without_its_user(
    endpoints: Endpoints, who: str
) -> None:
    """The proxy writes into the bucket with the server's S3 keys: without the user, nothing."""
    with mlflow_caller(endpoints, who) as mlflow:
        path = f"/mlflow-artifacts/artifacts/{PROBE_KEY}"
        assert mlflow.put(path, content=b"forged").status_code == 401
        assert mlflow.delete(path).status_code == 401


def test_mlflow_artifact_proxy_takes_writes_from_its_user(endpoints: Endpoints, s3: Any) -> None:
    with mlflow_caller(endpoints, "the stack's user") as mlflow:
        path = f"/mlflow-artifacts/artifacts/{PROBE_KEY}"
        try:
            assert mlflow.put(path, content=b"through the proxy").status_code == 200
            assert mlflow.get(path).content == b"through the proxy"
        finally:
            assert mlflow.delete(path).status_code == 200
