"""The training stages chained, for the CLI and the Airflow tasks (which may call them one by one).

Public API (stable):

- ``training_frame(settings, csv=None, storage=None) -> pd.DataFrame``: clean rows of a local CSV
  (cleaned with ``mlpipe.data``) or, without ``csv``, every validated batch in S3.
- ``train_and_register(settings, frame, model_params=None, tags=None) -> TrainingOutcome``:
  split, fit, evaluate against the baseline, and (when ``MLFLOW_TRACKING_URI`` is set) log and
  register the model as ``@challenger``.
- ``promote(settings, challenger_version, frame) -> PromotionDecision``: the promotion gate on the
  held-out side of ``frame`` (the same deterministic split used for training).
- ``run_training(settings, model_params=None, frame=None, tags=None, promote_model=True)``: all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from mlpipe.config import Settings
from mlpipe.data import clean_batch, load_validated
from mlpipe.evaluate import Metrics, evaluate
from mlpipe.registry import (
    PromotionDecision,
    RegisteredVersion,
    log_and_register,
    promote_if_better,
)
from mlpipe.storage import Storage
from mlpipe.train import EmptyTrainingDataError, split_train_test, train_model


class TrainingOutcome(BaseModel):
    """Everything one training run produced."""

    n_rows: int
    n_train: int
    n_test: int
    dataset_fingerprint: str
    params: dict[str, Any]
    fit_seconds: float
    metrics: Metrics
    baseline: Metrics
    registered: RegisteredVersion | None = None
    decision: PromotionDecision | None = None


def training_frame(
    settings: Settings, csv: Path | None = None, storage: Storage | None = None
) -> pd.DataFrame:
    """Clean training rows from a local CSV, or all validated batches in S3."""
    if csv is not None:
        return clean_batch(csv.read_bytes(), batch=csv.name).clean
    frame = load_validated(settings, storage)
    if frame.empty:
        raise EmptyTrainingDataError(
            f"No validated data under {settings.s3_uri(settings.s3_prefix_validated)}; "
            "run `mlpipe seed-landing` and `mlpipe ingest` first."
        )
    return frame


def train_and_register(
    settings: Settings,
    frame: pd.DataFrame,
    model_params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> TrainingOutcome:
    """Fit and evaluate; register as challenger when MLflow is configured."""
    trained = train_model(frame, model_params)
    evaluation = evaluate(trained.model, trained.train, trained.test)
    registered = (
        log_and_register(settings, trained, evaluation, tags)
        if settings.mlflow_tracking_uri
        else None
    )
    return TrainingOutcome(
        n_rows=len(frame),
        n_train=len(trained.train),
        n_test=len(trained.test),
        dataset_fingerprint=trained.fingerprint,
        params=trained.params,
        fit_seconds=trained.fit_seconds,
        metrics=evaluation.model,
        baseline=evaluation.baseline,
        registered=registered,
    )


def promote(settings: Settings, challenger_version: str, frame: pd.DataFrame) -> PromotionDecision:
    """Promotion gate on the held-out rows of ``frame``."""
    _, test = split_train_test(frame)
    return promote_if_better(settings, challenger_version, test)


def run_training(
    settings: Settings,
    model_params: Mapping[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
    tags: Mapping[str, str] | None = None,
    promote_model: bool = True,
) -> TrainingOutcome:
    """Train on ``frame`` (default: validated S3 data), register, and run the promotion gate."""
    data = training_frame(settings) if frame is None else frame
    outcome = train_and_register(settings, data, model_params, tags)
    if promote_model and outcome.registered is not None:
        outcome = outcome.model_copy(
            update={"decision": promote(settings, outcome.registered.version, data)}
        )
    return outcome
