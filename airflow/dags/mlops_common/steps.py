"""The logic behind each ml_training task: small functions over `mlpipe`, S3 URIs and MLflow ids.

Every step is idempotent: re-running it (a retry, a cleared task, a re-triggered run) converges to the
same objects in S3 and the same registered model version. Bad data and bad configuration raise
`AirflowFailException` (no retries: retrying cannot fix them); anything else (S3, MLflow or network
trouble) propagates and is retried with exponential backoff by the task's retry settings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_common.settings import (
    MODEL_SERVER_CONN_ID,
    get_connection,
    http_url,
    load_airflow_settings,
)

if TYPE_CHECKING:
    from mlpipe.config import Settings
    from mlpipe.storage import Storage

log = logging.getLogger(__name__)

RUN_CLAIMS_FOLDER = "_airflow_runs"
RELOAD_TIMEOUT_SECONDS = 60.0


def _data_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input, not a transient failure."""
    from mlpipe.data import (
        BatchConflictError,
        BatchNameError,
        MissingColumnsError,
        QuarantineThresholdError,
    )
    from mlpipe.train import EmptyTrainingDataError, UnknownModelParamError

    return (
        BatchConflictError,
        BatchNameError,
        MissingColumnsError,
        QuarantineThresholdError,
        EmptyTrainingDataError,
        UnknownModelParamError,
    )


@contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Turn bad-data/bad-conf errors into AirflowFailException so no retry is wasted on them."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except _data_errors() as error:
        raise AirflowFailException(f"{type(error).__name__}: {error}") from error


def _context() -> tuple[Settings, Storage]:
    from mlpipe.storage import Storage

    settings = load_airflow_settings()
    return settings, Storage.from_settings(settings)


def run_claim_uri(settings: Settings, run_id: str) -> str:
    """Where a DAG run records which batch it ingests, so a retry never picks a different one."""
    safe_run_id = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    return settings.s3_uri(settings.s3_prefix_raw, f"{RUN_CLAIMS_FOLDER}/{safe_run_id}.json")


def ingest(requested: str | None, run_id: str) -> dict[str, str]:
    """landing/<batch> -> raw/<batch> (write-once byte copy); batch = `requested` or the oldest
    pending one."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from mlpipe.data import ingest_raw, landing_batches, pending_batches, require_batch_name

    settings, storage = _context()
    claim = run_claim_uri(settings, run_id)
    if requested:
        with fail_fast_on_bad_input():
            batch = require_batch_name(requested)
        available = landing_batches(settings, storage)
        if batch not in available:
            raise AirflowFailException(
                f"batch {batch!r} is not in {settings.s3_uri(settings.s3_prefix_landing)}; "
                f"available: {available}. Fix the dag-run conf 'batch'."
            )
    elif storage.exists(claim):
        batch = str(storage.read_json(claim)["batch"])
        log.info("run %s already claimed batch %s; ingesting it again", run_id, batch)
    else:
        pending = pending_batches(settings, storage)
        if not pending:
            raise AirflowSkipException(
                f"no batch in {settings.s3_uri(settings.s3_prefix_landing)} is pending; "
                "nothing to train on (trigger with conf {'batch': ...} to retrain on a batch)."
            )
        batch = pending[0]
    storage.write_json(claim, {"batch": batch, "run_id": run_id})
    with fail_fast_on_bad_input():
        raw = ingest_raw(settings, batch, storage)
    log.info("ingested %s -> %s", batch, raw)
    return {"batch": batch, "raw_uri": raw}


def validate(batch: str) -> dict[str, Any]:
    """raw/<batch> -> validated/<stem>.parquet + quarantine/<stem>.csv and .report.json."""
    from mlpipe.data import ingest_next_batch

    settings, storage = _context()
    with fail_fast_on_bad_input():
        result = ingest_next_batch(settings, batch=batch, storage=storage)
    if result is None:  # only possible without an explicit batch
        raise RuntimeError(f"mlpipe.data.ingest_next_batch returned nothing for {batch!r}")
    report = result.report
    log.info(
        "%s: %d rows, %d clean, %d quarantined (%.1f%%) %s; report %s",
        batch,
        report.total_rows,
        report.clean_rows,
        report.quarantined_rows,
        100 * report.quarantine_fraction,
        {reason: count for reason, count in report.counts.items() if count},
        result.report_uri,
    )
    return {
        "batch": result.batch,
        "validated_uri": result.validated_uri,
        "quarantine_uri": result.quarantine_uri,
        "report_uri": result.report_uri,
        "clean_rows": report.clean_rows,
        "quarantined_rows": report.quarantined_rows,
    }


def features_uri(settings: Settings, fingerprint: str) -> str:
    """Content-addressed location of a training table."""
    return settings.s3_uri(settings.s3_prefix_features, f"training_{fingerprint[:16]}.parquet")


def build_features(batch: str) -> dict[str, Any]:
    """Every validated batch, deduplicated, as one model-ready table (written once per content)."""
    from mlpipe.data import load_validated
    from mlpipe.features import feature_frame
    from mlpipe.schema import TARGET
    from mlpipe.train import dataset_fingerprint

    settings, storage = _context()
    frame = load_validated(settings, storage)
    table = feature_frame(frame).assign(**{TARGET: frame[TARGET]})
    fingerprint = dataset_fingerprint(table)
    uri = features_uri(settings, fingerprint)
    if storage.exists(uri):
        log.info("features for fingerprint %s already at %s", fingerprint[:16], uri)
    else:
        storage.write_parquet(uri, table)
        log.info(
            "wrote %d rows (%d batches so far) to %s",
            len(table),
            _batch_count(settings, storage),
            uri,
        )
    return {
        "features_uri": uri,
        "dataset_fingerprint": fingerprint,
        "rows": len(table),
        "batch": batch,
    }


def _batch_count(settings: Settings, storage: Storage) -> int:
    return len(storage.list_uris(settings.s3_uri(settings.s3_prefix_validated), ".parquet"))


def train(features: Mapping[str, Any], model_params: Mapping[str, Any], airflow_run_id: str) -> str:
    """Fit on the features table and log run + model to MLflow; reuse an identical earlier run."""
    from dataclasses import replace

    from mlpipe.monitoring import FEATURES_URI_TAG
    from mlpipe.registry import find_logged_run, log_training_run
    from mlpipe.train import params_fingerprint, resolve_model_params, train_model

    settings, storage = _context()
    with fail_fast_on_bad_input():
        params = resolve_model_params(model_params)
    fingerprint = str(features["dataset_fingerprint"])
    existing = find_logged_run(settings, fingerprint, params_fingerprint(params))
    if existing is not None:
        log.info(
            "reusing MLflow run %s (same data %s and params)", existing.run_id, fingerprint[:16]
        )
        return existing.run_id
    table = storage.read_parquet(str(features["features_uri"]))
    with fail_fast_on_bad_input():
        trained = train_model(table, params)
    # Tag the run with the fingerprint build_features computed: the one the reuse lookup searches.
    trained = replace(trained, fingerprint=fingerprint)
    tags = {"airflow_run_id": airflow_run_id, FEATURES_URI_TAG: str(features["features_uri"])}
    logged = log_training_run(settings, trained, tags=tags)
    log.info(
        "trained on %d rows in %.1f s: MLflow run %s",
        len(table),
        trained.fit_seconds,
        logged.run_id,
    )
    return logged.run_id


def _test_split(storage: Storage, features_uri: str) -> tuple[Any, Any]:
    from mlpipe.train import split_train_test

    return split_train_test(storage.read_parquet(features_uri))


def _run_tags(settings: Settings, mlflow_run_id: str) -> dict[str, str]:
    from mlpipe.registry import mlflow_client

    return dict(mlflow_client(settings).get_run(mlflow_run_id).data.tags)


def evaluate(mlflow_run_id: str) -> dict[str, Any]:
    """Score the *logged* model (proves the artifact loads) and the baseline on held-out rows."""
    from mlpipe.evaluate import evaluate as evaluate_model
    from mlpipe.monitoring import FEATURES_URI_TAG
    from mlpipe.registry import MODEL_URI_TAG, load_model, log_evaluation

    settings, storage = _context()
    tags = _run_tags(settings, mlflow_run_id)
    features = tags[FEATURES_URI_TAG]
    train_rows, test_rows = _test_split(storage, features)
    model = load_model(settings, tags[MODEL_URI_TAG])
    evaluation = evaluate_model(model, train_rows, test_rows)
    metrics = log_evaluation(settings, mlflow_run_id, evaluation)
    log.info(
        "run %s: RMSE %.1f (baseline %.1f, %.0f%% better), MAE %.1f, R^2 %.4f",
        mlflow_run_id,
        evaluation.model.rmse,
        evaluation.baseline.rmse,
        100 * evaluation.rmse_improvement,
        evaluation.model.mae,
        evaluation.model.r2,
    )
    return {"mlflow_run_id": mlflow_run_id, "features_uri": features, **metrics}


def register(mlflow_run_id: str) -> dict[str, Any]:
    """Register the run's model as MODEL_NAME (or find the identical version) and set @challenger."""
    from mlpipe.monitoring import FEATURES_URI_TAG
    from mlpipe.registry import register_run

    settings, _ = _context()
    registered = register_run(settings, mlflow_run_id)
    if registered.created:
        log.info(
            "registered run %s as %s version %s",
            mlflow_run_id,
            settings.model_name,
            registered.version,
        )
    else:
        log.info(
            "identical model already registered as version %s; not registering again",
            registered.version,
        )
    return {
        "version": registered.version,
        "created": registered.created,
        "mlflow_run_id": mlflow_run_id,
        "features_uri": _run_tags(settings, mlflow_run_id)[FEATURES_URI_TAG],
    }


def promote(registered: Mapping[str, Any]) -> dict[str, Any]:
    """The promotion gate: challenger vs champion on the same held-out rows; never a worse model."""
    from mlpipe.registry import promote_if_better

    settings, storage = _context()
    _, test_rows = _test_split(storage, str(registered["features_uri"]))
    decision = promote_if_better(settings, str(registered["version"]), test_rows)
    log.info("promotion of version %s: %s", registered["version"], decision.reason)
    champion = decision.challenger_version if decision.promoted else decision.champion_version
    return {**decision.model_dump(mode="json"), "champion_version": champion}


def notify_model_server(promotion: Mapping[str, Any]) -> dict[str, Any]:
    """POST {model server}/reload with the connection's password as the bearer token (the
    server's MODEL_SERVER_RELOAD_TOKEN); skip (with a log line) when no connection is configured."""
    import httpx
    from airflow.sdk.exceptions import AirflowSkipException

    connection = get_connection(MODEL_SERVER_CONN_ID)
    if connection is None:
        log.info(
            "no %r connection configured: not notifying any model server", MODEL_SERVER_CONN_ID
        )
        raise AirflowSkipException(f"connection {MODEL_SERVER_CONN_ID!r} is not configured")
    url = http_url(connection)
    token = connection.password or ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{url}/reload", headers=headers, timeout=RELOAD_TIMEOUT_SECONDS)
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        hint = "" if token else f" (connection {MODEL_SERVER_CONN_ID!r} has no password: the token)"
        raise RuntimeError(
            f"model server at {url} refused the reload ({error.response.status_code}: "
            f"{error.response.text[:300]}){hint}; champion is version "
            f"{promotion.get('champion_version')}."
        ) from error
    except httpx.HTTPError as error:
        raise RuntimeError(
            f"model server at {url} did not reload ({type(error).__name__}: {error}); "
            f"champion is version {promotion.get('champion_version')}. Is the server up?"
        ) from error
    answer: dict[str, Any] = response.json()
    log.info("model server %s reloaded: %s", url, answer)
    return answer
