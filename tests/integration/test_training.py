"""ml_training end to end through the Airflow REST API: MLflow run, registry aliases, and the
promotion gate (a deliberately weak model is never promoted, a clearly better one is)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from stack_training import WEAK_PARAMS, TrainingRun

from mlpipe.schema import FEATURE_COLUMNS
from mlpipe.train import DEFAULT_MODEL_PARAMS
from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration

EXPECTED_TASKS = {
    "ingest",
    "validate",
    "build_features",
    "train",
    "evaluate",
    "register",
    "promote",
    "notify_model_server",
}


def mlflow_run(registry: Any, endpoints: Endpoints, version: str) -> Any:
    model_version = registry.get_model_version(endpoints.model_name, version)
    assert model_version.run_id, f"version {version} has no run"
    return registry.get_run(model_version.run_id)


def test_training_run_succeeds_with_every_task(first_training: TrainingRun) -> None:
    states = first_training.run.task_states()
    assert set(states) >= EXPECTED_TASKS, f"tasks: {states}"
    not_ok = {task: s for task, s in states.items() if s not in {"success", "skipped"}}
    assert not not_ok, f"unexpected task states {not_ok}"


def test_mlflow_run_has_params_metrics_tags_and_model(
    first_training: TrainingRun, registry: Any, endpoints: Endpoints, mlflow_env: None
) -> None:
    import mlflow

    run = mlflow_run(registry, endpoints, first_training.version)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    expected = {**DEFAULT_MODEL_PARAMS, **first_training.conf.get("model_params", {})}
    assert {k: params.get(k) for k in expected} == {k: str(v) for k, v in expected.items()}
    for name in ("rmse", "mae", "r2", "baseline_rmse"):
        assert name in metrics, f"metric {name} missing from {sorted(metrics)}"
    assert 0 < metrics["rmse"] < metrics["baseline_rmse"], "the model must beat the baseline"
    assert 0.9 < metrics["r2"] <= 1
    assert re.fullmatch(r"[0-9a-f]{64}", tags.get("dataset_fingerprint", "")), tags
    assert tags.get("airflow_run_id") == first_training.run.run_id
    assert registry.get_experiment(run.info.experiment_id).name

    info = mlflow.models.get_model_info(f"models:/{endpoints.model_name}/{first_training.version}")
    assert {"sklearn", "python_function"} <= set(info.flavors)
    assert info.flavors["sklearn"].get("serialization_format") == "skops"
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(FEATURE_COLUMNS)


def test_first_registered_version_became_champion(
    first_training: TrainingRun, registry: Any, endpoints: Endpoints
) -> None:
    """Whatever ran first on this stack: the very first version was promoted (no incumbent)."""
    first = registry.get_model_version(endpoints.model_name, "1")
    assert "no champion" in first.tags.get("promotion", ""), first.tags


def test_weak_model_is_registered_but_never_promoted(
    weak_training: TrainingRun, registry: Any, endpoints: Endpoints
) -> None:
    assert weak_training.champion_before is not None
    assert weak_training.version != weak_training.champion_before
    assert not weak_training.promoted
    assert weak_training.champion_after == weak_training.champion_before
    weak_run = mlflow_run(registry, endpoints, weak_training.version)
    assert weak_run.data.params["max_iter"] == str(WEAK_PARAMS["max_iter"])
    reason = registry.get_model_version(endpoints.model_name, weak_training.version).tags
    assert "not" in reason.get("promotion", ""), f"gate reason: {reason.get('promotion')!r}"


def test_clearly_better_model_is_promoted(
    weak_training: TrainingRun, better_training: TrainingRun, registry: Any, endpoints: Endpoints
) -> None:
    assert better_training.champion_before == weak_training.version
    assert better_training.version != weak_training.version
    better = mlflow_run(registry, endpoints, better_training.version).data.metrics["rmse"]
    weak = mlflow_run(registry, endpoints, weak_training.version).data.metrics["rmse"]
    assert better < weak
    assert better_training.promoted, (
        f"v{better_training.version} (rmse {better:.0f}) was not promoted over "
        f"v{weak_training.version} (rmse {weak:.0f})"
    )
    reason = registry.get_model_version(endpoints.model_name, better_training.version).tags
    assert reason.get("promotion"), "the gate records its reason on the version"
