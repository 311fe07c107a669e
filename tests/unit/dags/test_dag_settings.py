"""mlops_common.settings: Airflow connections -> service URLs and mlpipe Settings (no stack needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

# `parsed_local` puts airflow/dags on sys.path exactly as the DAG processor does (bundle path).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("parsed_local")]


@pytest.mark.parametrize(
    ("host", "port", "schema", "url"),
    [
        ("127.0.0.1", 5000, "http", "http://127.0.0.1:5000"),
        ("mlflow.mlops.svc", None, None, "http://mlflow.mlops.svc"),
        ("https://models.example", 443, "https", "https://models.example:443"),
    ],
)
def test_http_url(host: str, port: int | None, schema: str | None, url: str) -> None:
    from mlops_common.settings import http_url

    assert http_url(SimpleNamespace(conn_id="c", host=host, port=port, schema=schema)) == url


def test_http_url_without_host_names_the_connection_and_the_fix() -> None:
    from mlops_common.settings import http_url

    with pytest.raises(ValueError, match=r"connection 'mlops_mlflow' has no host.*conn_type"):
        http_url(SimpleNamespace(conn_id="mlops_mlflow", host=None, port=None, schema=None))


def test_missing_optional_connections_leave_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops_common.settings import airflow_env, service_url

    for name in ("S3", "MLFLOW", "MODEL_SERVER", "PUSHGATEWAY"):
        monkeypatch.delenv(f"AIRFLOW_CONN_MLOPS_{name}", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_MODEL_NAME", "from-variable")
    assert service_url("mlops_model_server") is None
    assert airflow_env().get("MODEL_NAME") == "from-variable"
    assert "S3_ENDPOINT_URL" not in airflow_env()


def test_s3_connection_maps_to_endpoint_keys_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_common.settings import airflow_env

    connection = {
        "conn_type": "aws",
        "login": "AKIAEXAMPLE",
        "password": "secret-value",
        "extra": {"endpoint_url": "http://127.0.0.1:8333", "region_name": "eu-west-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_S3", json.dumps(connection))
    env = airflow_env()
    assert env["S3_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        "AKIAEXAMPLE",
        "secret-value",
    )
    assert env["S3_REGION"] == "eu-west-1"


def test_mlflow_connection_login_is_the_tracking_servers_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tasks' MLflow client authenticates with the connection's login and password."""
    from mlops_common.settings import airflow_env

    from mlpipe.config import load_settings, mlflow_env

    connection = {"conn_type": "http", "host": "mlflow", "port": 5000, "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps(connection))
    assert "MLFLOW_TRACKING_PASSWORD" not in airflow_env()

    connection |= {"login": "stack-admin", "password": "s3cret"}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_VAR_MLFLOW_TRACKING_PASSWORD", "from-a-variable")
    env = airflow_env()
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]) == (
        "stack-admin",
        "s3cret",
    )
    exported = mlflow_env(load_settings(env=env))
    assert exported["MLFLOW_TRACKING_USERNAME"] == "stack-admin"
    assert exported["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
