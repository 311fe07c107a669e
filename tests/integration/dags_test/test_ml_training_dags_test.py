"""`airflow dags test` of ml_training, then ml_monitoring, on a real SeaweedFS S3 + MLflow server.

Each DAG runs in one `airflow dags test` process, configured only the way a backend configures
Airflow (AIRFLOW_CONN_MLOPS_* and AIRFLOW_VAR_* environment variables), with a throw-away
AIRFLOW_HOME and SQLite metadata DB. No model server connection: notify_model_server must skip.
ml_monitoring then scores with the champion ml_training registered and pushes to a real Pushgateway.
Both runs happen in the background while the tier runs (dagstest_scenario.py); these tests check
what they left.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dagstest_scenario import Outcome
from dagstest_stack import PUSHGATEWAY_BINARY

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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


def test_dags_test_ml_training_ingests_trains_registers_and_promotes(scenario: Outcome) -> None:
    from mlflow import MlflowClient

    from mlpipe.config import load_settings

    mini_stack, trained = scenario.stack, scenario.trained
    assert trained.landing, "seed-landing uploaded no batch"
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
def test_dags_test_ml_monitoring_pushes_drift_metrics(scenario: Outcome) -> None:
    mini_stack, trained, metrics = scenario.stack, scenario.trained, scenario.monitoring_metrics
    assert metrics is not None, "the scenario ran ml_monitoring: the Pushgateway is installed"
    assert dag_run_states(trained.database, "ml_monitoring") == ["success"]
    assert set(task_states(trained.database, "ml_monitoring").values()) == {"success"}
    assert 'ml_monitoring_rmse{instance="",job="ml_monitoring",model_version="1"}' in metrics
    assert 'ml_monitoring_feature_psi{feature="carat",instance="",job="ml_monitoring"}' in metrics
    for name in ("prediction_psi", "rows_scored", "last_success_timestamp_seconds", "r2", "mae"):
        assert f"ml_monitoring_{name}" in metrics
    reports = mini_stack.s3().list_objects_v2(Bucket=mini_stack.bucket, Prefix="monitoring/v1/")
    newest = trained.landing[0].removesuffix(".csv.gz")  # the only validated batch so far
    assert [item["Key"] for item in reports.get("Contents", [])] == [f"monitoring/v1/{newest}.json"]
