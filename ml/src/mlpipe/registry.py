"""MLflow tracking and model registry: log, register (idempotently), alias, load, promote.

Public API (stable):

- ``SKOPS_TRUSTED_TYPES``: the only non-default types a fitted model needs to load with skops.
- ``mlflow_client(settings) -> MlflowClient`` (needs ``MLFLOW_TRACKING_URI``); changes no
  process-wide state. ``mlflow_session(settings)`` points MLflow's fluent API (runs, log_model,
  register_model) at the same server for one block and restores the previous state after.
- ``log_training_run(settings, trained, evaluation=None, tags=None) -> LoggedRun``: one MLflow run
  with params, metrics (fit_seconds, n_train, n_test and, given ``evaluation``, rmse, mae, r2,
  baseline_rmse, ...), tags (dataset_fingerprint, params_fingerprint, any ``tags`` such as
  airflow_run_id) and the model (skops, signature, input example); tags ``model_uri`` and, last,
  ``model_logged=true``.
- ``find_logged_run(settings, dataset_fingerprint, params_fingerprint) -> LoggedRun | None``: the
  earliest finished run with a fully logged model on the same data with the same params.
- ``log_evaluation(settings, run_id, evaluation) -> dict``: adds the held-out metrics to a run.
- ``register_run(settings, run_id) -> RegisteredVersion``: registers the run's model as
  ``MODEL_NAME`` (version tags = the run's own tags) and points ``@challenger`` at it. The same
  (dataset_fingerprint, params) returns the existing version (``created=False``) instead of
  registering a duplicate. The run must carry an ``rmse`` metric.
- ``log_and_register(settings, trained, evaluation, tags=None) -> RegisteredVersion``: both of the
  above; logs no new run when an identical version is registered already.
- ``alias_version(settings, alias) -> VersionInfo | None``: the version an alias points at.
- ``read_model(model_uri, tracking_uri=...) -> Predictor``: the one model loader (the model
  server uses it too): downloads a logged model (``models:/m-...``, ``models:/NAME/VERSION``) and
  loads it with skops using *our* trusted-type list (not the list stored inside the artifact,
  which whoever logged the model controls), so ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is not
  needed. ``load_model(settings, model_uri)`` is the same with the settings' server and S3.
- ``load_model_version(settings, version) -> Predictor``: the same for ``models:/NAME/VERSION``.
- ``load_alias(settings, alias) -> (Predictor, VersionInfo)``: the same for ``@alias``.
- ``promote_if_better(settings, challenger_version, test) -> PromotionDecision``: scores challenger
  and champion on the same held-out rows; moves ``@champion`` only when the challenger's RMSE is at
  least ``PROMOTION_MIN_RELATIVE_IMPROVEMENT`` lower (or when there is no champion yet).
Aliases only; stages are never used.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pydantic import BaseModel

from mlpipe.compiled import (
    COMPILED_ARTIFACT,
    PARITY_RTOL,
    TAG_COMPILED_ERROR,
    TAG_COMPILED_PARITY,
)
from mlpipe.config import Settings, mlflow_environment
from mlpipe.evaluate import Evaluation, score
from mlpipe.features import feature_frame
from mlpipe.predictor import Predictor
from mlpipe.train import TrainedModel, params_fingerprint

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# Found with skops.io.get_untrusted_types() on a fitted model (tests/unit/ml keeps this honest).
SKOPS_TRUSTED_TYPES: Final = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
TAG_DATASET: Final = "dataset_fingerprint"
TAG_PARAMS: Final = "params_fingerprint"
# MLflow 3 stores the model as a LoggedModel (models:/m-...), not under the run's artifacts.
MODEL_URI_TAG: Final = "model_uri"
# Set last on a run: only a run whose model is fully logged is ever reused.
MODEL_LOGGED_TAG: Final = "model_logged"
# Run tags that describe the run itself, so they are not copied onto a registered version.
_RUN_ONLY_TAGS: Final = frozenset({MODEL_URI_TAG, MODEL_LOGGED_TAG})
_MLFLOW_SYSTEM_TAG_PREFIX: Final = "mlflow."
MODEL_ARTIFACT: Final = "model"
INPUT_EXAMPLE_ROWS: Final = 5


class RegistryError(RuntimeError):
    """MLflow is not configured or the registry is not in the expected state."""


class VersionInfo(BaseModel):
    """The identity of one registered model version."""

    name: str
    version: str
    run_id: str | None


class LoggedRun(BaseModel):
    """A finished MLflow run and the URI of the model it logged."""

    run_id: str
    model_uri: str


class RegisteredVersion(VersionInfo):
    """Result of ``register_run``: ``created`` is False when an identical version existed."""

    created: bool
    rmse: float | None


class PromotionDecision(BaseModel):
    """Outcome of the promotion gate (RMSEs measured on the same held-out rows)."""

    promoted: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger_rmse: float
    champion_rmse: float | None
    min_relative_improvement: float


def _tracking_uri(settings: Settings) -> str:
    if not settings.mlflow_tracking_uri:
        raise RegistryError("MLFLOW_TRACKING_URI is not set; set it to the MLflow server URL.")
    return settings.mlflow_tracking_uri


def mlflow_client(settings: Settings) -> MlflowClient:
    """A tracking and registry client for ``MLFLOW_TRACKING_URI``; no global state changes."""
    import mlflow

    uri = _tracking_uri(settings)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def mlflow_session(settings: Settings) -> Iterator[MlflowClient]:
    """For MLflow calls that exist only in its fluent API (``start_run``, ``log_model``,
    ``register_model``): the settings' server as MLflow's tracking URI and their S3 endpoint and
    credentials in the environment, for the block only; the previous values come back after."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri  # MLflow's own scope

    client = mlflow_client(settings)
    # _use_tracking_uri restores MLflow's global but unsets $MLFLOW_TRACKING_URI when the global
    # was unset, even if the environment had it: put the variable back as it was too.
    variable = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with mlflow_environment(settings), _use_tracking_uri(_tracking_uri(settings)):
            yield client
    finally:
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable


def _experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name))


def _info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(name=mv.name, version=str(mv.version), run_id=mv.run_id)


def find_version(
    client: MlflowClient, name: str, fingerprint: str, params_fp: str
) -> ModelVersion | None:
    """An existing version of ``name`` trained on the same data with the same params."""
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.tags.get(TAG_DATASET) == fingerprint and mv.tags.get(TAG_PARAMS) == params_fp:
            return mv
    return None


def _pip_requirements() -> list[str]:
    # Explicit pins: MLflow's requirement inference imports the model in a subprocess (slow).
    return [
        f"{p}=={package_version(p)}" for p in ("scikit-learn", "skops", "numpy", "pandas", "scipy")
    ]


def training_metrics(trained: TrainedModel) -> dict[str, float]:
    """What the fit itself measured."""
    return {
        "fit_seconds": trained.fit_seconds,
        "n_train": float(len(trained.train)),
        "n_test": float(len(trained.test)),
    }


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float]:
    """Held-out metrics of the model and of the baseline."""
    return {
        "rmse": evaluation.model.rmse,
        "mae": evaluation.model.mae,
        "r2": evaluation.model.r2,
        "baseline_rmse": evaluation.baseline.rmse,
        "baseline_mae": evaluation.baseline.mae,
        "baseline_r2": evaluation.baseline.r2,
    }


def find_logged_run(settings: Settings, fingerprint: str, params_fp: str) -> LoggedRun | None:
    """The earliest finished run on the same data with the same params whose model is logged."""
    client = mlflow_client(settings)
    runs = client.search_runs(
        [_experiment_id(client, settings.mlflow_experiment)],
        filter_string=(
            f"tags.{TAG_DATASET} = '{fingerprint}' and tags.{TAG_PARAMS} = '{params_fp}' "
            f"and tags.{MODEL_LOGGED_TAG} = 'true' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    if not runs:
        return None
    return LoggedRun(run_id=runs[0].info.run_id, model_uri=runs[0].data.tags[MODEL_URI_TAG])


def log_training_run(
    settings: Settings,
    trained: TrainedModel,
    evaluation: Evaluation | None = None,
    tags: Mapping[str, str] | None = None,
) -> LoggedRun:
    """Log params, metrics, tags and the model as one MLflow run (``evaluation`` may come later)."""
    import mlflow
    from mlflow.models import infer_signature

    params_fp = params_fingerprint(trained.params)
    metrics = training_metrics(trained) | (evaluation_metrics(evaluation) if evaluation else {})
    example = feature_frame(trained.test).head(INPUT_EXAMPLE_ROWS)
    signature = infer_signature(example, trained.model.predict(example))
    with (
        mlflow_session(settings) as client,
        mlflow.start_run(experiment_id=_experiment_id(client, settings.mlflow_experiment)) as run,
    ):
        mlflow.log_params({**trained.params, TAG_PARAMS: params_fp})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({TAG_DATASET: trained.fingerprint, TAG_PARAMS: params_fp, **(tags or {})})
        info = mlflow.sklearn.log_model(
            trained.model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=_pip_requirements(),
        )
        mlflow.set_tags(_log_compiled(trained))
        mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
        mlflow.set_tag(MODEL_LOGGED_TAG, "true")
    return LoggedRun(run_id=run.info.run_id, model_uri=info.model_uri)


def _log_compiled(trained: TrainedModel) -> dict[str, str]:
    """Compile the model, run the parity gate on its held-out rows and log the ONNX file and the
    gate's report into the active run; the tags that record the outcome."""
    import mlflow

    from mlpipe.compiled import CompiledModel, check_parity, compile_model

    try:
        onnx_bytes = compile_model(trained.model)
        report = check_parity(
            trained.model, CompiledModel.from_bytes(onnx_bytes), feature_frame(trained.test)
        )
    except Exception as exc:  # any converter or runtime failure: not promotable, but logged
        mlflow.set_tag("compiled_error", f"{type(exc).__name__}: {exc}"[:500])
        return {TAG_COMPILED_PARITY: "unavailable"}
    with tempfile.TemporaryDirectory(prefix="mlpipe-compiled-") as folder:
        path = Path(folder) / Path(COMPILED_ARTIFACT).name
        path.write_bytes(onnx_bytes)
        mlflow.log_artifact(str(path), artifact_path=str(Path(COMPILED_ARTIFACT).parent))
    mlflow.log_dict(report.model_dump(), str(Path(COMPILED_ARTIFACT).parent / "parity.json"))
    return {
        TAG_COMPILED_PARITY: "passed" if report.passed else "failed",
        TAG_COMPILED_ERROR: f"{report.max_relative_error:.3g}",
    }


def log_evaluation(settings: Settings, run_id: str, evaluation: Evaluation) -> dict[str, float]:
    """Add the held-out metrics to the run ``run_id``; returns what was logged."""
    import mlflow

    metrics = evaluation_metrics(evaluation)
    with mlflow_session(settings), mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
    return metrics


def _version_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    """The run's own tags (fingerprints, airflow_run_id, ...): not MLflow's, not bookkeeping."""
    return {
        key: value
        for key, value in run_tags.items()
        if not key.startswith(_MLFLOW_SYSTEM_TAG_PREFIX) and key not in _RUN_ONLY_TAGS
    }


def _existing_as_challenger(
    client: MlflowClient, settings: Settings, existing: ModelVersion
) -> RegisteredVersion:
    client.set_registered_model_alias(
        settings.model_name, settings.challenger_alias, existing.version
    )
    run_rmse = client.get_run(existing.run_id).data.metrics.get("rmse") if existing.run_id else None
    return RegisteredVersion(**_info(existing).model_dump(), created=False, rmse=run_rmse)


def register_run(settings: Settings, run_id: str) -> RegisteredVersion:
    """Register the run's model (or find the identical version) and set ``@challenger`` on it."""
    import mlflow

    client = mlflow_client(settings)
    run = client.get_run(run_id)
    tags = run.data.tags
    if "rmse" not in run.data.metrics:
        raise RegistryError(f"run {run_id} has no rmse metric: evaluate it before registering")
    existing = find_version(client, settings.model_name, tags[TAG_DATASET], tags[TAG_PARAMS])
    if existing is not None:
        return _existing_as_challenger(client, settings, existing)
    with mlflow_session(settings):
        registered = mlflow.register_model(
            tags[MODEL_URI_TAG], settings.model_name, tags=_version_tags(tags)
        )
    client.set_registered_model_alias(
        settings.model_name, settings.challenger_alias, registered.version
    )
    return RegisteredVersion(
        name=settings.model_name,
        version=str(registered.version),
        run_id=run_id,
        created=True,
        rmse=run.data.metrics["rmse"],
    )


def log_and_register(
    settings: Settings,
    trained: TrainedModel,
    evaluation: Evaluation,
    tags: Mapping[str, str] | None = None,
) -> RegisteredVersion:
    """Log the run and model, register it (idempotently) and set ``@challenger`` on it."""
    client = mlflow_client(settings)
    params_fp = params_fingerprint(trained.params)
    existing = find_version(client, settings.model_name, trained.fingerprint, params_fp)
    if existing is not None:  # checked first so that no redundant run is logged
        return _existing_as_challenger(client, settings, existing)
    logged = log_training_run(settings, trained, evaluation, tags)
    return register_run(settings, logged.run_id)


def alias_version(settings: Settings, alias: str) -> VersionInfo | None:
    """The version ``@alias`` points at, or None (also when the model is not registered yet)."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        return _info(client.get_model_version_by_alias(settings.model_name, alias))
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def artifact_location(client: MlflowClient, model_uri: str) -> str:
    """Where the files of ``models:/NAME/VERSION`` or ``models:/m-ID`` are, asked of ``client``'s
    server. MLflow's own resolution of ``models:/`` reads the process-wide registry URI, whatever
    URI the caller passes, so it is done here instead."""
    path = model_uri.removeprefix("models:/")
    if path == model_uri:
        return model_uri  # already an artifact location (runs:/, mlflow-artifacts:/, s3://, ...)
    if path.startswith("m-") and "/" not in path:
        return str(client.get_logged_model(path).artifact_location)
    name, _, version = path.partition("/")
    if not version.isdigit():
        raise RegistryError(f"{model_uri}: expected models:/NAME/VERSION or models:/m-ID")
    return artifact_location(client, client.get_model_version_download_uri(name, version))


def read_model(model_uri: str, *, tracking_uri: str | None) -> Predictor:
    """Download the model at ``model_uri`` from the server at ``tracking_uri`` and load its
    estimator with skops and our trusted types (the sklearn flavour: ~10x less per-call overhead
    than pyfunc's schema enforcement). S3 credentials come from the environment."""
    import mlflow
    import mlflow.artifacts
    import skops.io

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = artifact_location(client, model_uri)
    with tempfile.TemporaryDirectory(prefix="mlpipe-model-") as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=folder, tracking_uri=tracking_uri
        )
        files = sorted(Path(local).rglob("*.skops"))
        if not files:
            raise RegistryError(
                f"{model_uri} has no .skops file: log models with serialization_format='skops'."
            )
        model: Predictor = skops.io.load(files[0], trusted=list(SKOPS_TRUSTED_TYPES))
    return model


def load_model(settings: Settings, model_uri: str) -> Predictor:
    """`read_model` from the settings' MLflow server, with their S3 endpoint and credentials."""
    with mlflow_environment(settings):
        return read_model(model_uri, tracking_uri=_tracking_uri(settings))


def load_model_version(settings: Settings, version: str) -> Predictor:
    """Download ``models:/MODEL_NAME/version`` and load it with skops and our trusted types."""
    return load_model(settings, f"models:/{settings.model_name}/{version}")


def load_alias(settings: Settings, alias: str) -> tuple[Predictor, VersionInfo]:
    """The model ``@alias`` points at, with its version info; RegistryError when unset."""
    info = alias_version(settings, alias)
    if info is None:
        raise RegistryError(
            f"{settings.model_name}@{alias} is not set; train and promote a model first."
        )
    return load_model_version(settings, info.version), info


def _decide(challenger_rmse: float, champion_rmse: float, margin: float) -> tuple[bool, str]:
    threshold = champion_rmse * (1 - margin)
    if challenger_rmse <= threshold:
        return True, (
            f"challenger RMSE {challenger_rmse:.2f} <= {threshold:.2f} "
            f"(champion {champion_rmse:.2f} minus {margin:.1%})"
        )
    return False, (
        f"challenger RMSE {challenger_rmse:.2f} is not at least {margin:.1%} below "
        f"champion RMSE {champion_rmse:.2f} (needed <= {threshold:.2f})"
    )


def _parity_refusal(version: ModelVersion) -> str | None:
    """Why ``version`` may not become champion under the parity gate (None: it may). A version
    registered before models were compiled has no gate tag; it is served by scikit-learn."""
    gate = version.tags.get(TAG_COMPILED_PARITY)
    if gate == "failed":
        error = version.tags.get(TAG_COMPILED_ERROR, "?")
        return (
            f"version {version.version} is not promotable: its compiled model failed the parity "
            f"gate (max relative error {error} > {PARITY_RTOL:g} on the held-out rows)"
        )
    if gate == "unavailable":
        return (
            f"version {version.version} is not promotable: its model could not be compiled "
            "(see the run's compiled_error tag)"
        )
    return None


def promote_if_better(
    settings: Settings, challenger_version: str, test: pd.DataFrame
) -> PromotionDecision:
    """Score challenger and champion on ``test``; move ``@champion`` only for a clear win."""
    client = mlflow_client(settings)
    margin = settings.promotion_min_relative_improvement
    challenger_rmse = score(load_model_version(settings, challenger_version), test).rmse
    champion = alias_version(settings, settings.champion_alias)
    champion_rmse: float | None = None
    refusal = _parity_refusal(
        client.get_model_version(settings.model_name, str(challenger_version))
    )
    if refusal is not None:
        promoted, reason = False, refusal
    elif champion is None:
        promoted, reason = True, "no champion yet: the first model becomes champion"
    elif champion.version == str(challenger_version):
        promoted, reason = False, f"version {challenger_version} is already the champion"
        champion_rmse = challenger_rmse
    else:
        champion_rmse = score(load_model_version(settings, champion.version), test).rmse
        promoted, reason = _decide(challenger_rmse, champion_rmse, margin)
    if promoted:
        client.set_registered_model_alias(
            settings.model_name, settings.champion_alias, str(challenger_version)
        )
    client.set_model_version_tag(settings.model_name, str(challenger_version), "promotion", reason)
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        challenger_version=str(challenger_version),
        champion_version=champion.version if champion else None,
        challenger_rmse=challenger_rmse,
        champion_rmse=champion_rmse,
        min_relative_improvement=margin,
    )


def run_tags(extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """String-valued tags (MLflow tags are strings)."""
    return {str(k): str(v) for k, v in (extra or {}).items()}
