"""The Airflow environment the local backend sets: the MLOPS_* connections and stack variables."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from stackcontract.settings import load_config
from stackctl.local.components.airflow import airflow_env, unhealthy
from stackctl.local.context import Credentials, LocalOptions, RunContext
from stackctl.local.paths import StatePaths
from stackctl.local.supervisor import Supervisor


def context(repo: Path) -> RunContext:
    config = load_config(environ={"STACK_REPO_ROOT": str(repo), "STACK_MLFLOW_PORT": "5055"})
    paths = StatePaths(repo / ".stack" / "local")
    return RunContext(
        config=config,
        paths=paths,
        credentials=Credentials.generate(),
        supervisor=Supervisor(paths.pids, "t"),
        options=LocalOptions(),
        cancel=threading.Event(),
    )


def test_connections_follow_the_contract(fake_repo: Path) -> None:
    ctx = context(fake_repo)
    env = airflow_env(ctx, pushgateway=True)
    s3 = json.loads(env["AIRFLOW_CONN_MLOPS_S3"])
    assert s3 == {
        "conn_type": "aws",
        "login": ctx.credentials.s3_access_key,
        "password": ctx.credentials.s3_secret_key.get_secret_value(),
        "extra": {"endpoint_url": ctx.s3_url, "region_name": ctx.config.region},
    }
    assert json.loads(env["AIRFLOW_CONN_MLOPS_MLFLOW"]) == {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": 5055,
        "schema": "http",
        # MLflow's auth app: the tasks log in as the stack's MLflow user
        "login": "stack-admin",
        "password": ctx.credentials.mlflow_password.get_secret_value(),
    }
    assert (
        json.loads(env["AIRFLOW_CONN_MLOPS_PUSHGATEWAY"])["port"]
        == ctx.config.ports.pushgateway_port
    )
    assert "AIRFLOW_CONN_MLOPS_PUSHGATEWAY" not in airflow_env(ctx, pushgateway=False)


def test_every_stack_setting_is_an_airflow_variable(fake_repo: Path) -> None:
    ctx = context(fake_repo)
    env = airflow_env(ctx, pushgateway=False)
    for key, value in ctx.config.settings.items():
        assert env[f"AIRFLOW_VAR_{key}"] == value


def test_airflow_points_at_the_repo_dags_and_its_own_api(fake_repo: Path) -> None:
    ctx = context(fake_repo)
    env = airflow_env(ctx, pushgateway=False)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(fake_repo / "airflow" / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{ctx.airflow_url}/execution/"
    assert env["AIRFLOW_HOME"].startswith(str(fake_repo / ".stack" / "local"))


def test_generated_credentials_differ_each_time() -> None:
    first, second = Credentials.generate(), Credentials.generate()
    assert first.s3_access_key != second.s3_access_key
    assert first.airflow_password != second.airflow_password


def test_credentials_are_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    created = Credentials.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Credentials.load_or_create(path) == created


def test_a_secret_added_later_is_generated_and_the_kept_ones_stay(tmp_path: Path) -> None:
    """A stack brought up before the reload token existed keeps its S3 keys and passwords."""
    path = tmp_path / "credentials.json"
    created = Credentials.load_or_create(path)
    old = json.loads(path.read_text())
    del old["model_server_reload_token"]
    path.write_text(json.dumps(old))
    again = Credentials.load_or_create(path)
    assert again.s3_secret_key == created.s3_secret_key
    assert again.airflow_password == created.airflow_password
    assert again.model_server_reload_token.get_secret_value()
    assert json.loads(path.read_text())["model_server_reload_token"] == (
        again.model_server_reload_token.get_secret_value()
    )
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_model_server_connection_carries_the_reload_token(fake_repo: Path) -> None:
    ctx = context(fake_repo)
    connection = json.loads(airflow_env(ctx, pushgateway=False)["AIRFLOW_CONN_MLOPS_MODEL_SERVER"])
    assert connection["password"] == ctx.credentials.model_server_reload_token.get_secret_value()


def test_health_lists_the_components_not_healthy() -> None:
    health = {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy"},
        "triggerer": {"status": "unhealthy"},
        "dag_processor": None,
    }
    assert unhealthy(health) == ["dag_processor", "triggerer"]
