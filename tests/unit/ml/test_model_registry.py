"""Registry and promotion gate against a real MLflow tracking store (sqlite + local artifacts)."""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
import pytest

from mlpipe import compiled, evaluate, pipeline, registry
from mlpipe.compiled import PARITY_RTOL, CompiledModel
from mlpipe.config import Settings
from mlpipe.features import feature_frame
from mlpipe.served import read_served_model
from mlpipe.train import TrainedModel, params_fingerprint, train_model

WEAK = {"max_iter": 3, "learning_rate": 0.05}  # deliberately bad: a few shallow steps
GOOD = {"max_iter": 40}  # clearly better than WEAK; few trees keep save and load quick


@pytest.fixture(scope="module")
def sample(small_frame: pd.DataFrame) -> pd.DataFrame:
    return small_frame.head(3000)


@pytest.fixture(scope="module")
def weak(sample: pd.DataFrame) -> TrainedModel:
    return train_model(sample, WEAK)


@pytest.fixture(scope="module")
def good(sample: pd.DataFrame) -> TrainedModel:
    return train_model(sample, GOOD)


def register(settings: Settings, trained: TrainedModel, **tags: str) -> registry.RegisteredVersion:
    evaluation = evaluate.evaluate(trained.model, trained.train, trained.test)
    return registry.log_and_register(settings, trained, evaluation, tags)


def challenge(
    settings: Settings, incumbent: TrainedModel, challenger: TrainedModel
) -> tuple[registry.RegisteredVersion, registry.RegisteredVersion, registry.PromotionDecision]:
    """Register and promote `incumbent`, then register `challenger` and put it through the gate
    (each model scored on its own held-out rows)."""
    first = register(settings, incumbent)
    registry.promote_if_better(settings, first.version, incumbent.test)
    second = register(settings, challenger)
    return first, second, registry.promote_if_better(settings, second.version, challenger.test)


def champion(settings: Settings) -> str | None:
    info = registry.alias_version(settings, settings.champion_alias)
    return info.version if info else None


def test_first_model_is_promoted(mlflow_settings: Settings, good: TrainedModel) -> None:
    assert champion(mlflow_settings) is None
    version = register(mlflow_settings, good)
    assert version.created
    assert registry.alias_version(
        mlflow_settings, mlflow_settings.challenger_alias
    ) == registry.VersionInfo(name=version.name, version=version.version, run_id=version.run_id)
    decision = registry.promote_if_better(mlflow_settings, version.version, good.test)
    assert decision.promoted
    assert decision.champion_version is None
    assert "no champion" in decision.reason
    assert champion(mlflow_settings) == version.version


def test_better_model_is_promoted(
    mlflow_settings: Settings, weak: TrainedModel, good: TrainedModel
) -> None:
    first, second, decision = challenge(mlflow_settings, weak, good)
    assert decision.promoted, decision.reason
    assert decision.champion_version == first.version
    assert decision.champion_rmse is not None
    assert decision.challenger_rmse < decision.champion_rmse
    assert champion(mlflow_settings) == second.version


def test_worse_model_is_never_promoted(
    mlflow_settings: Settings, weak: TrainedModel, good: TrainedModel
) -> None:
    first, second, decision = challenge(mlflow_settings, good, weak)
    assert not decision.promoted
    assert "not at least" in decision.reason
    assert champion(mlflow_settings) == first.version
    assert (
        registry.alias_version(mlflow_settings, mlflow_settings.challenger_alias).version
        == second.version
    )  # type: ignore[union-attr]


def test_champion_is_scored_on_the_challengers_held_out_rows(
    mlflow_settings: Settings, weak: TrainedModel, good: TrainedModel
) -> None:
    _, _, decision = challenge(mlflow_settings, weak, good)
    assert decision.champion_rmse == pytest.approx(evaluate.score(weak.model, good.test).rmse)
    assert decision.challenger_rmse == pytest.approx(evaluate.score(good.model, good.test).rmse)


def test_improvement_below_the_margin_is_not_enough(
    mlflow_settings: Settings, weak: TrainedModel, good: TrainedModel
) -> None:
    strict = mlflow_settings.model_copy(update={"promotion_min_relative_improvement": 0.99})
    first, _, decision = challenge(strict, weak, good)
    assert not decision.promoted
    assert champion(strict) == first.version


def test_reregistration_is_idempotent(mlflow_settings: Settings, good: TrainedModel) -> None:
    first = register(mlflow_settings, good)
    again = register(mlflow_settings, good)
    assert not again.created
    assert again.version == first.version
    assert again.rmse == pytest.approx(first.rmse)
    client = registry.mlflow_client(mlflow_settings)
    assert len(client.search_model_versions(f"name='{mlflow_settings.model_name}'")) == 1
    decision = registry.promote_if_better(mlflow_settings, again.version, good.test)
    registry.promote_if_better(mlflow_settings, again.version, good.test)
    assert decision.promoted
    assert champion(mlflow_settings) == first.version


def test_logged_run_has_metrics_tags_signature_and_no_stages(
    mlflow_settings: Settings, good: TrainedModel
) -> None:
    version = register(mlflow_settings, good, airflow_run_id="manual__2026")
    client = registry.mlflow_client(mlflow_settings)
    run = client.get_run(version.run_id)
    assert {"rmse", "mae", "r2", "baseline_rmse"} <= run.data.metrics.keys()
    assert run.data.metrics["rmse"] < run.data.metrics["baseline_rmse"]
    assert run.data.tags[registry.TAG_DATASET] == good.fingerprint
    assert run.data.tags["airflow_run_id"] == "manual__2026"
    assert run.data.params["max_iter"] == str(GOOD["max_iter"])
    mv = client.get_model_version(mlflow_settings.model_name, version.version)
    assert mv.tags[registry.TAG_DATASET] == good.fingerprint
    assert mv.current_stage in {None, "None"}
    with registry.mlflow_session(mlflow_settings):  # get_model_info reads the global URI
        info = mlflow.models.get_model_info(
            f"models:/{mlflow_settings.model_name}/{version.version}"
        )
    assert [c.name for c in info.signature.inputs.inputs] == list(feature_frame(good.test).columns)
    assert info.flavors["sklearn"]["serialization_format"] == "skops"


def test_loaded_alias_predicts_like_the_trained_model(
    mlflow_settings: Settings, good: TrainedModel
) -> None:
    version = register(mlflow_settings, good)
    model, info = registry.load_alias(mlflow_settings, mlflow_settings.challenger_alias)
    assert info.version == version.version
    rows = feature_frame(good.test).head(50)
    np.testing.assert_allclose(model.predict(rows), good.model.predict(rows))


def test_loading_an_unset_alias_is_a_clear_error(mlflow_settings: Settings) -> None:
    with pytest.raises(registry.RegistryError, match="not set"):
        registry.load_alias(mlflow_settings, mlflow_settings.champion_alias)


def test_missing_tracking_uri_is_a_clear_error(mlflow_settings: Settings) -> None:
    unset = mlflow_settings.model_copy(update={"mlflow_tracking_uri": None})
    with pytest.raises(registry.RegistryError, match="MLFLOW_TRACKING_URI"):
        registry.mlflow_client(unset)


def test_pipeline_run_training_end_to_end(mlflow_settings: Settings, sample: pd.DataFrame) -> None:
    outcome = pipeline.run_training(
        mlflow_settings, {"max_iter": 60}, frame=sample, tags={"airflow_run_id": "r1"}
    )
    assert outcome.registered is not None
    assert outcome.decision is not None
    assert outcome.decision.promoted
    assert outcome.metrics.rmse < outcome.baseline.rmse
    weaker = pipeline.run_training(mlflow_settings, WEAK, frame=sample)
    assert weaker.decision is not None
    assert not weaker.decision.promoted
    assert champion(mlflow_settings) == outcome.registered.version


def test_run_logged_in_steps_is_evaluated_then_registered_once(
    mlflow_settings: Settings, good: TrainedModel
) -> None:
    """The pieces the ml_training DAG calls one task at a time."""
    features = "s3://bucket/features/training_x.parquet"
    logged = registry.log_training_run(mlflow_settings, good, tags={"features_uri": features})
    params_fp = params_fingerprint(good.params)
    assert registry.find_logged_run(mlflow_settings, good.fingerprint, params_fp) == logged
    assert registry.find_logged_run(mlflow_settings, good.fingerprint, "other") is None
    with pytest.raises(registry.RegistryError, match="evaluate it before registering"):
        registry.register_run(mlflow_settings, logged.run_id)
    model = registry.load_model(mlflow_settings, logged.model_uri)
    evaluation = evaluate.evaluate(model, good.train, good.test)
    assert registry.log_evaluation(mlflow_settings, logged.run_id, evaluation)["rmse"] == (
        evaluation.model.rmse
    )
    version = registry.register_run(mlflow_settings, logged.run_id)
    assert version.created
    assert version.run_id == logged.run_id
    assert version.rmse == pytest.approx(evaluation.model.rmse)
    client = registry.mlflow_client(mlflow_settings)
    tags = client.get_model_version(mlflow_settings.model_name, version.version).tags
    assert float(tags.pop(registry.TAG_COMPILED_ERROR)) <= PARITY_RTOL
    assert tags == {
        registry.TAG_DATASET: good.fingerprint,
        registry.TAG_PARAMS: params_fp,
        "features_uri": features,
        registry.TAG_COMPILED_PARITY: "passed",
    }
    again = registry.register_run(mlflow_settings, logged.run_id)
    assert (again.created, again.version) == (False, version.version)
    assert champion(mlflow_settings) is None
    challenger = registry.alias_version(mlflow_settings, mlflow_settings.challenger_alias)
    assert challenger is not None
    assert challenger.version == version.version


def test_registry_calls_leave_no_process_wide_tracking_state(
    mlflow_settings: Settings, good: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A getter must not point the whole process at a server: the client carries the URI, and
    the fluent calls that need the global get it for their block only."""
    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////nonexistent/elsewhere.db")
    before = mlflow.get_tracking_uri()
    registry.mlflow_client(mlflow_settings)
    version = register(mlflow_settings, good)
    registry.load_model_version(mlflow_settings, version.version)
    assert mlflow.get_tracking_uri() == before != mlflow_settings.mlflow_tracking_uri
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////nonexistent/elsewhere.db"
    assert "MLFLOW_S3_ENDPOINT_URL" not in os.environ


def test_the_served_model_is_the_compiled_one_and_prices_like_the_reference(
    mlflow_settings: Settings, good: TrainedModel
) -> None:
    version = register(mlflow_settings, good)
    run = registry.mlflow_client(mlflow_settings).get_run(version.run_id)
    assert run.data.tags[registry.TAG_COMPILED_PARITY] == "passed"
    uri = f"models:/{mlflow_settings.model_name}/{version.version}"
    served = read_served_model(uri, tracking_uri=mlflow_settings.mlflow_tracking_uri)
    assert isinstance(served, CompiledModel)
    rows = feature_frame(good.test)
    np.testing.assert_allclose(served.predict(rows), good.model.predict(rows), rtol=PARITY_RTOL)


def test_a_version_whose_compiled_model_fails_the_gate_is_never_promoted(
    mlflow_settings: Settings,
    good: TrainedModel,
    weak: TrainedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gate's other direction, end to end: the logged ONNX file holds another model's trees
    (as a broken converter would produce), so parity fails and the version stays a challenger."""
    real_compile = compiled.compile_model
    monkeypatch.setattr(compiled, "compile_model", lambda model: real_compile(weak.model))
    version = register(mlflow_settings, good)
    tags = (
        registry.mlflow_client(mlflow_settings)
        .get_model_version(mlflow_settings.model_name, version.version)
        .tags
    )
    assert tags[registry.TAG_COMPILED_PARITY] == "failed"
    decision = registry.promote_if_better(mlflow_settings, version.version, good.test)
    assert not decision.promoted
    assert "failed the parity gate" in decision.reason
    assert champion(mlflow_settings) is None
    uri = f"models:/{mlflow_settings.model_name}/{version.version}"
    served = read_served_model(uri, tracking_uri=mlflow_settings.mlflow_tracking_uri)
    assert not isinstance(served, CompiledModel), "a failed compiled model is never loaded"


def test_a_model_that_cannot_be_compiled_is_logged_but_not_promotable(
    mlflow_settings: Settings, good: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model: object) -> bytes:
        raise compiled.CompileError("converter crashed")

    monkeypatch.setattr(compiled, "compile_model", broken)
    version = register(mlflow_settings, good)
    run = registry.mlflow_client(mlflow_settings).get_run(version.run_id)
    assert run.data.tags[registry.TAG_COMPILED_PARITY] == "unavailable"
    assert "converter crashed" in run.data.tags["compiled_error"]
    decision = registry.promote_if_better(mlflow_settings, version.version, good.test)
    assert not decision.promoted
    assert "could not be compiled" in decision.reason
