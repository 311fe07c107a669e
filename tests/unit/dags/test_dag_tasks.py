"""Task logic of ml_training / ml_monitoring against moto S3 and MLflow on SQLite.

Each test calls the @task functions of the parsed DAGs in graph order, the way a worker runs them,
passing XCom values by hand. One stack per module; the DAG runs are module fixtures chained in a
fixed order (first run -> re-run -> next batch -> weak model), so any selection of tests sees the
same story.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from dag_checks import ParseOutcome
from task_stack import (
    TaskStack,
    bad_batch_missing_price,
    bad_batch_mostly_garbage,
    batch_name,
    create_experiment,
    http_connection,
    moto_server,
    point_airflow_env_at,
    read_parquet,
    recording_server,
    run_task,
    s3_client,
    small_batches,
)

pytestmark = pytest.mark.slow

BUCKET = "mlops-task-tests"
WEAK_PARAMS = {"max_iter": 2, "learning_rate": 0.01, "early_stopping": False}
MISSING_PRICE = batch_name(date(2026, 3, 2))
MOSTLY_GARBAGE = batch_name(date(2026, 3, 9))


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, new_mlflow_db: Callable[[Path], str]
) -> Iterator[TaskStack]:
    mlflow_uri = new_mlflow_db(tmp_path_factory.mktemp("mlflow"))
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as monkeypatch:
        point_airflow_env_at(monkeypatch, endpoint, BUCKET, mlflow_uri)
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        stack = TaskStack(s3_endpoint=endpoint, bucket=BUCKET, mlflow_uri=mlflow_uri, s3=s3)
        for name, data in small_batches():
            stack.put_landing(name, data)
        create_experiment(mlflow_uri, BUCKET)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow/sklearn chatter, not ours
            yield stack


@pytest.fixture(scope="module")
def training(parsed_local: ParseOutcome) -> Any:
    return parsed_local.dags["ml_training"]


@pytest.fixture(scope="module")
def monitoring_dag(parsed_local: ParseOutcome) -> Any:
    return parsed_local.dags["ml_monitoring"]


def run_training(
    dag: Any, run_id: str, conf: dict[str, Any] | None = None, *, until: str = "promote"
) -> dict[str, Any]:
    """ingest -> ... -> `until`, feeding each task the previous one's XCom value."""
    params = {"batch": None, "model_params": {}, **(conf or {})}
    xcom: dict[str, Any] = {"ingest": run_task(dag, "ingest", params=params, run_id=run_id)}
    chain = [
        ("validate", "ingest", {}),
        ("build_features", "validate", {}),
        ("train", "build_features", {"params": params, "run_id": run_id}),
        ("evaluate", "train", {}),
        ("register", "evaluate", {}),
        ("promote", "register", {}),
    ]
    for task_id, upstream, context in chain:
        xcom[task_id] = run_task(dag, task_id, xcom[upstream], **context)
        if task_id == until:
            break
    return xcom


def versions(stack: TaskStack) -> list[str]:
    from mlpipe.config import load_settings

    name = load_settings().model_name
    return sorted(
        (str(mv.version) for mv in stack.mlflow().search_model_versions(f"name='{name}'")), key=int
    )


def alias(stack: TaskStack, which: str) -> str:
    from mlpipe.config import load_settings

    client = stack.mlflow()
    return str(client.get_model_version_by_alias(load_settings().model_name, which).version)


@dataclass
class Rerun:
    """The same DAG run executed twice: data objects and MLflow runs before and after."""

    xcom: dict[str, Any]
    objects_before: dict[str, bytes]
    objects_after: dict[str, bytes]
    mlflow_runs_before: int
    mlflow_runs_after: int


def data_objects(stack: TaskStack) -> dict[str, bytes]:
    return {k: stack.read(k) for k in stack.object_keys() if not k.startswith("mlflow")}


def mlflow_run_count(stack: TaskStack) -> int:
    return len(stack.mlflow().search_runs(experiment_ids=[_experiment_id(stack)]))


@pytest.fixture(scope="module")
def first_run(stack: TaskStack, training: Any) -> dict[str, Any]:
    return run_training(training, "scheduled__2026-01-05")


@pytest.fixture(scope="module")
def rerun(first_run: dict[str, Any], stack: TaskStack, training: Any) -> Rerun:
    objects, runs = data_objects(stack), mlflow_run_count(stack)
    xcom = run_training(training, "scheduled__2026-01-05")
    return Rerun(xcom, objects, data_objects(stack), runs, mlflow_run_count(stack))


@pytest.fixture(scope="module")
def second_run(rerun: Rerun, stack: TaskStack, training: Any) -> dict[str, Any]:
    return run_training(training, "scheduled__2026-01-12")


@pytest.fixture(scope="module")
def weak_run(second_run: dict[str, Any], stack: TaskStack, training: Any) -> dict[str, Any]:
    champion = alias(stack, "champion")
    batch = sorted(stack.landing)[1]  # same data as before, deliberately weak hyper-parameters
    xcom = run_training(training, "manual__weak", {"batch": batch, "model_params": WEAK_PARAMS})
    return {**xcom, "champion_before": champion}


def test_first_run_ingests_trains_registers_and_promotes(
    stack: TaskStack, first_run: dict[str, Any]
) -> None:
    xcom = first_run
    first = sorted(stack.landing)[0]
    stem = first.removesuffix(".csv.gz")
    assert xcom["ingest"] == {"batch": first, "raw_uri": f"s3://{BUCKET}/raw/{first}"}
    assert stack.read(f"raw/{first}") == stack.landing[first], "raw/ must be a byte copy"
    assert stack.read(f"landing/{first}") == stack.landing[first], "landing/ is never modified"
    assert f"validated/{stem}.parquet" in stack.object_keys("validated/")
    assert {f"quarantine/{stem}.csv", f"quarantine/{stem}.report.json"} <= set(stack.object_keys())
    assert xcom["validate"]["clean_rows"] > 1000

    features = xcom["build_features"]
    assert features["features_uri"].startswith(f"s3://{BUCKET}/features/training_")
    assert features["rows"] == xcom["validate"]["clean_rows"]

    run = stack.mlflow().get_run(xcom["train"])
    assert {"rmse", "mae", "r2", "baseline_rmse"} <= set(run.data.metrics)
    assert run.data.metrics["rmse"] < run.data.metrics["baseline_rmse"]
    assert run.data.tags["airflow_run_id"] == "scheduled__2026-01-05"
    assert run.data.tags["dataset_fingerprint"] == features["dataset_fingerprint"]
    assert xcom["register"]["created"] is True
    assert xcom["promote"]["promoted"] is True
    assert xcom["register"]["version"] == "1"


def test_notify_skips_cleanly_without_a_model_server_connection(
    stack: TaskStack, training: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="mlops_model_server"):
        run_task(training, "notify_model_server", {"champion_version": "1"})
    assert "not notifying any model server" in caplog.text


def test_rerunning_the_same_run_creates_no_duplicates(stack: TaskStack, rerun: Rerun) -> None:
    assert rerun.xcom["ingest"]["batch"] == sorted(stack.landing)[0], "a re-run keeps its batch"
    assert rerun.xcom["register"] == {**rerun.xcom["register"], "version": "1", "created": False}
    assert rerun.xcom["promote"]["promoted"] is False
    assert rerun.mlflow_runs_after == rerun.mlflow_runs_before, "training reused the MLflow run"
    assert rerun.objects_after.keys() == rerun.objects_before.keys(), "no new data objects"
    changed = [k for k in rerun.objects_before if rerun.objects_after[k] != rerun.objects_before[k]]
    assert changed == [], f"re-run rewrote data with different bytes: {changed}"


def _experiment_id(stack: TaskStack) -> str:
    from mlpipe.config import load_settings

    experiment = stack.mlflow().get_experiment_by_name(load_settings().mlflow_experiment)
    return str(experiment.experiment_id)


def test_a_new_run_takes_the_next_batch_and_trains_on_all_validated_data(
    stack: TaskStack, first_run: dict[str, Any], second_run: dict[str, Any]
) -> None:
    xcom = second_run
    assert xcom["ingest"]["batch"] == sorted(stack.landing)[1]
    rows = first_run["validate"]["clean_rows"] + xcom["validate"]["clean_rows"]
    assert xcom["build_features"]["rows"] == rows
    assert xcom["register"]["version"] == "2"
    assert xcom["promote"]["champion_version"] == ("2" if xcom["promote"]["promoted"] else "1")


def test_a_worse_model_is_registered_but_never_promoted(
    stack: TaskStack, weak_run: dict[str, Any]
) -> None:
    decision = weak_run["promote"]
    assert weak_run["register"]["version"] == "3"
    assert decision["promoted"] is False
    assert decision["challenger_rmse"] > decision["champion_rmse"]
    assert alias(stack, "champion") == weak_run["champion_before"]
    assert alias(stack, "challenger") == "3"
    assert versions(stack) == ["1", "2", "3"]


def test_unknown_model_params_fail_without_retry(stack: TaskStack, training: Any) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    features = {"features_uri": "unused", "dataset_fingerprint": "unused"}
    with pytest.raises(AirflowFailException, match=r"UnknownModelParamError.*no_such_param"):
        run_task(
            training,
            "train",
            features,
            params={"model_params": {"no_such_param": 1}},
            run_id="manual__typo",
        )


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        (MISSING_PRICE, bad_batch_missing_price(), r"MissingColumnsError.*'price'"),
        (MOSTLY_GARBAGE, bad_batch_mostly_garbage(), r"QuarantineThresholdError.*MAX_QUARANTINE"),
    ],
)
@pytest.mark.usefixtures("weak_run")  # after every training run: bad batches never get trained on
def test_a_bad_batch_fails_loudly_and_writes_nothing_to_validated(
    stack: TaskStack, training: Any, name: str, data: bytes, error: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    stack.put_landing(name, data)
    validated_before = stack.object_keys("validated/")
    champion = alias(stack, "champion")
    ingested = run_task(training, "ingest", params={"batch": name}, run_id=f"manual__{name}")
    with pytest.raises(AirflowFailException, match=error):
        run_task(training, "validate", ingested)
    stem = name.removesuffix(".csv.gz")
    assert stack.object_keys("validated/") == validated_before
    report = json.loads(stack.read(f"quarantine/{stem}.report.json"))
    assert report["error"], "the report says why the batch was rejected"
    assert stack.read(f"raw/{name}") == data, "the bad batch is kept byte for byte"
    assert alias(stack, "champion") == champion


@pytest.mark.usefixtures("weak_run")
def test_a_reuploaded_batch_is_refused_and_every_object_is_kept(
    stack: TaskStack, training: Any, first_run: dict[str, Any]
) -> None:
    """The data-loss finding: other bytes under an ingested batch's name, then a training run on
    it. The ingest task refuses, no retry is spent, and no object but the new upload changes."""
    from airflow.sdk.exceptions import AirflowFailException

    batch = first_run["ingest"]["batch"]
    stack.put_landing(batch, bad_batch_mostly_garbage())
    before = {key: stack.read(key) for key in stack.object_keys()}
    champion = alias(stack, "champion")
    with pytest.raises(AirflowFailException, match=r"BatchConflictError.*write-once"):
        run_task(training, "ingest", params={"batch": batch}, run_id=f"manual__again_{batch}")
    after = {key: stack.read(key) for key in stack.object_keys()}
    claims = {key for key in after if key not in before}
    assert all("/_airflow_runs/" in key for key in claims), claims  # only the run's claim
    assert {key: after[key] for key in before} == before
    assert alias(stack, "champion") == champion


def test_notify_posts_reload_to_a_configured_model_server(
    training: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server() as (url, requests):
        connection = http_connection(url, password="the-reload-token")
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MODEL_SERVER", connection)
        answer = run_task(training, "notify_model_server", {"champion_version": "2"})
    assert answer == {"model_version": "1", "changed": True}
    assert [(method, path, auth) for method, path, _, auth in requests] == [
        ("POST", "/reload", "Bearer the-reload-token")
    ]


def test_notify_fails_clearly_when_the_configured_server_is_down(
    training: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server() as (url, _):
        pass  # the port is closed again: nothing listens there now
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MODEL_SERVER", http_connection(url))
    with pytest.raises(RuntimeError, match=rf"model server at {url} did not reload"):
        run_task(training, "notify_model_server", {"champion_version": "2"})


@pytest.mark.usefixtures("weak_run")
def test_monitoring_scores_the_newest_batch_and_publishes(
    stack: TaskStack, monitoring_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = run_task(monitoring_dag, "select_batch")
    assert newest == f"s3://{BUCKET}/{stack.object_keys('validated/')[-1]}"
    scored = run_task(monitoring_dag, "score_batch", newest)
    report = json.loads(stack.read(scored["report_uri"].removeprefix(f"s3://{BUCKET}/")))
    assert scored["report_uri"].startswith(f"s3://{BUCKET}/monitoring/v{alias(stack, 'champion')}/")
    assert report["rows_scored"] == len(read_parquet(stack, stack.object_keys("validated/")[-1]))
    assert set(report["feature_psi"]) == {
        "carat",
        "cut",
        "color",
        "clarity",
        "depth",
        "table",
        "x",
        "y",
        "z",
    }
    assert report["quality"]["r2"] > 0.8
    assert report["reference"].startswith(f"s3://{BUCKET}/features/training_")

    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="mlops_pushgateway"):
        run_task(monitoring_dag, "publish_metrics", scored)
    with recording_server() as (url, requests):
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_PUSHGATEWAY", http_connection(url))
        run_task(monitoring_dag, "publish_metrics", scored)
    [(method, path, body, _)] = requests
    assert (method, path) == ("PUT", "/metrics/job/ml_monitoring")
    assert b"ml_monitoring_feature_psi" in body
    assert b"ml_monitoring_rmse" in body


def test_ingest_skips_when_no_batch_is_pending(
    stack: TaskStack, training: Any, monitoring_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    stack.s3.create_bucket(Bucket="mlops-task-tests-empty")
    monkeypatch.setenv("AIRFLOW_VAR_S3_BUCKET", "mlops-task-tests-empty")
    with pytest.raises(AirflowSkipException, match="pending"):
        run_task(training, "ingest", params={"batch": None}, run_id="scheduled__empty")
    with pytest.raises(AirflowSkipException, match="no validated batch"):
        run_task(monitoring_dag, "select_batch")


def test_settings_come_from_connections_and_variables(
    monkeypatch: pytest.MonkeyPatch, stack: TaskStack
) -> None:
    from mlops_common.settings import load_airflow_settings

    monkeypatch.setenv("AIRFLOW_VAR_MAX_QUARANTINE_FRACTION", "0.05")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", http_connection("http://127.0.0.1:5999"))
    settings = load_airflow_settings()
    assert settings.s3_bucket == BUCKET
    assert settings.s3_endpoint_url == stack.s3_endpoint
    assert settings.aws_access_key_id == "task-tests-key"
    assert settings.max_quarantine_fraction == 0.05
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5999"
    assert settings.pushgateway_url is None
