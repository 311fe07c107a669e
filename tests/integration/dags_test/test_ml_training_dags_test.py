"""`airflow dags test` of ml_training, then ml_monitoring, on a real SeaweedFS S3 + MLflow server.

Each DAG runs in one `airflow dags test` process, configured only the way a backend configures
Airflow (AIRFLOW_CONN_MLOPS_* and AIRFLOW_VAR_* environment variables), with a throw-away
AIRFLOW_HOME and SQLite metadata DB. No model server connection: notify_model_server must skip.
ml_monitoring then scores with the champion ml_training registered and pushes to a real Pushgateway.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagstest_stack import (
    ACCESS_KEY,
    BIN,
    PUSHGATEWAY_BINARY,
    REGION,
    REPO_ROOT,
    SECRET_KEY,
    MiniStack,
    http_ok,
    start_pushgateway,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTER_VARIABLES = ("AIRFLOW", "MLFLOW_", "S3_", "AWS_", "MODEL_SERVER_URL", "PUSHGATEWAY_URL")


def airflow_env(stack: MiniStack, home: Path) -> dict[str, str]:
    """Exactly what a backend hands Airflow, and nothing from the developer's own environment."""
    from mlpipe.config import STACK_ENV_RELATIVE
    from stackcontract.envfile import parse_env_file as read_env_file

    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_VARIABLES)}
    host, port = stack.mlflow_url.removeprefix("http://").split(":")
    s3 = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"endpoint_url": stack.s3_endpoint, "region_name": REGION},
    }
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW_CONN_MLOPS_S3": json.dumps(s3),
        "AIRFLOW_CONN_MLOPS_MLFLOW": json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        ),
    }
    for key, value in read_env_file(REPO_ROOT / STACK_ENV_RELATIVE).items():
        env[f"AIRFLOW_VAR_{key}"] = value
    return env


def seed_landing(stack: MiniStack) -> list[str]:
    """What every backend does after provisioning the bucket: `mlpipe seed-landing`."""
    from mlpipe.config import load_settings
    from mlpipe.data import seed_landing as seed

    settings = load_settings(
        env={
            "S3_ENDPOINT_URL": stack.s3_endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_BUCKET": stack.bucket,
        },
        config_dir=REPO_ROOT / "platform" / "config",
    )
    result = seed(settings)
    return sorted(result.uploaded + result.unchanged)


def run_airflow(args: list[str], env: dict[str, str], log: Path, timeout: float) -> float:
    """Run an `airflow` command; fail with the log tail if it fails; return its duration."""
    started = time.monotonic()
    with log.open("wb") as handle:
        result = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=env,
            cwd=log.parent,
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(
            f"`airflow {' '.join(args)}` exited {result.returncode} after {seconds:.0f}s:\n{tail}"
        )
    return seconds


def task_states(database: Path, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "select task_id, state from task_instance where dag_id = ?", (dag_id,)
        ).fetchall()
    return {task_id: state for task_id, state in rows}


def dag_run_states(database: Path, dag_id: str) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "select state from dag_run where dag_id = ?", (dag_id,)
        ).fetchall()
    return [state for (state,) in rows]


@dataclass
class AirflowRun:
    """The Airflow home and environment in which ml_training already ran once."""

    home: Path
    env: dict[str, str]
    landing: list[str]

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"


@pytest.fixture(scope="module")
def trained(mini_stack: MiniStack) -> AirflowRun:
    """Seed landing, migrate the Airflow DB, run `airflow dags test ml_training` (timed)."""
    landing = seed_landing(mini_stack)
    assert landing, "seed-landing uploaded no batch"
    home = mini_stack.work / "airflow-home"
    home.mkdir()
    env = airflow_env(mini_stack, home)
    logs = mini_stack.work / "logs"
    mini_stack.timings["airflow_db_migrate"] = run_airflow(
        ["db", "migrate"], env, logs / "airflow-db-migrate.log", timeout=600
    )
    mini_stack.timings["dags_test_ml_training"] = run_airflow(
        ["dags", "test", "ml_training"],
        env,
        logs / "airflow-dags-test-ml_training.log",
        timeout=1800,
    )
    return AirflowRun(home, env, landing)


def test_dags_test_ml_training_ingests_trains_registers_and_promotes(
    mini_stack: MiniStack, trained: AirflowRun
) -> None:
    from mlflow import MlflowClient

    from mlpipe.config import load_settings

    assert dag_run_states(trained.database, "ml_training") == ["success"]
    assert task_states(trained.database, "ml_training") == {
        "ingest": "success",
        "validate": "success",
        "build_features": "success",
        "train": "success",
        "evaluate": "success",
        "register": "success",
        "promote": "success",
        "notify_model_server": "skipped",  # no MLOPS_MODEL_SERVER connection configured
    }

    settings = load_settings()
    client = MlflowClient(tracking_uri=mini_stack.mlflow_url, registry_uri=mini_stack.mlflow_url)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    assert [str(v.version) for v in versions] == ["1"]
    champion = client.get_model_version_by_alias(settings.model_name, settings.champion_alias)
    assert str(champion.version) == "1"
    run: Any = client.get_run(champion.run_id)
    assert run.data.tags["airflow_run_id"].startswith("manual__")
    assert run.data.metrics["rmse"] < run.data.metrics["baseline_rmse"]

    s3 = mini_stack.s3()
    first = trained.landing[0]
    raw = s3.get_object(Bucket=mini_stack.bucket, Key=f"raw/{first}")["Body"].read()
    original = s3.get_object(Bucket=mini_stack.bucket, Key=f"landing/{first}")["Body"].read()
    assert raw == original
    stem = first.removesuffix(".csv.gz")
    s3.head_object(Bucket=mini_stack.bucket, Key=f"validated/{stem}.parquet")
    artifacts = s3.list_objects_v2(Bucket=mini_stack.bucket, Prefix="mlflow-artifacts/")
    assert artifacts.get("KeyCount", 0) > 0, "MLflow stored the model in the S3 bucket"


@pytest.mark.skipif(
    not PUSHGATEWAY_BINARY.exists(), reason=f"{PUSHGATEWAY_BINARY} not installed (Debian package)"
)
def test_dags_test_ml_monitoring_pushes_drift_metrics(
    mini_stack: MiniStack, trained: AirflowRun
) -> None:
    import httpx

    logs = mini_stack.work / "logs"
    pushgateway, url = start_pushgateway(mini_stack.work, logs)
    try:
        wait_until(pushgateway, http_ok(f"{url}/-/ready"), timeout=60)
        host, port = url.removeprefix("http://").split(":")
        env = trained.env | {
            "AIRFLOW_CONN_MLOPS_PUSHGATEWAY": json.dumps(
                {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
            )
        }
        mini_stack.timings["dags_test_ml_monitoring"] = run_airflow(
            ["dags", "test", "ml_monitoring"],
            env,
            logs / "airflow-dags-test-ml_monitoring.log",
            timeout=900,
        )
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        pushgateway.stop()

    assert dag_run_states(trained.database, "ml_monitoring") == ["success"]
    assert set(task_states(trained.database, "ml_monitoring").values()) == {"success"}
    assert 'ml_monitoring_rmse{instance="",job="ml_monitoring",model_version="1"}' in metrics
    assert 'ml_monitoring_feature_psi{feature="carat",instance="",job="ml_monitoring"}' in metrics
    for name in ("prediction_psi", "rows_scored", "last_success_timestamp_seconds", "r2", "mae"):
        assert f"ml_monitoring_{name}" in metrics
    reports = mini_stack.s3().list_objects_v2(Bucket=mini_stack.bucket, Prefix="monitoring/v1/")
    newest = trained.landing[0].removesuffix(".csv.gz")  # the only validated batch so far
    assert [item["Key"] for item in reports.get("Contents", [])] == [f"monitoring/v1/{newest}.json"]
