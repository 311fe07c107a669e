"""Training: a log-price gradient-boosted tree model with a deterministic train/test split.

Public API (stable):

- ``DEFAULT_MODEL_PARAMS``: HistGradientBoostingRegressor hyper-parameters used unless overridden.
- ``resolve_model_params(overrides) -> dict``: defaults updated with ``overrides`` (dag-run conf
  ``model_params``); raises ``UnknownModelParamError`` naming unknown keys and listing valid ones.
- ``build_model(params=None)``: unfitted ``TransformedTargetRegressor`` (log price) around
  ``Pipeline(features -> HistGradientBoostingRegressor)``.
- ``split_train_test(frame, test_fraction=0.2, seed=42) -> (train, test)``: deterministic and
  row-order independent: a row's side is decided by a seeded hash of its feature values, so
  identical feature vectors never straddle the split and adding batches never moves old rows.
- ``dataset_fingerprint(frame) -> str``: sha256 of the rows (order independent).
- ``params_fingerprint(params) -> str``: sha256 of the canonical JSON of the params.
- ``train_model(frame, model_params=None) -> TrainedModel``: sort rows canonically, split, fit, time
  it; the same rows in any order give the same model.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from mlpipe.config import compute_threads
from mlpipe.features import build_preprocessor, encoded_feature_names, feature_frame
from mlpipe.schema import ALL_COLUMNS, FEATURE_COLUMNS, TARGET

# Domain prior: a better cut/colour/clarity or a heavier stone never lowers the price, all else equal.
# Costs ~1 % RMSE on the held-out set and makes the directional behaviour hold row by row.
MONOTONIC_INCREASING: Final = ("cut", "color", "clarity", "carat")
DEFAULT_MODEL_PARAMS: Final[dict[str, Any]] = {
    "monotonic_cst": [1 if name in MONOTONIC_INCREASING else 0 for name in encoded_feature_names()],
    "learning_rate": 0.1,
    "max_iter": 500,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
    "random_state": 42,
}
TEST_FRACTION: Final = 0.2
SPLIT_SEED: Final = 42
_HASH_BUCKETS: Final = 10_000


class UnknownModelParamError(ValueError):
    """``model_params`` named a hyper-parameter the estimator does not have."""


class EmptyTrainingDataError(ValueError):
    """There is nothing (or too little) to train on."""


def estimator_param_names() -> list[str]:
    """Hyper-parameter names accepted in ``model_params``."""
    return sorted(HistGradientBoostingRegressor().get_params())


def resolve_model_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``DEFAULT_MODEL_PARAMS`` updated with ``overrides`` after checking every name."""
    overrides = dict(overrides or {})
    valid = estimator_param_names()
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UnknownModelParamError(
            f"Unknown model_params {unknown} for HistGradientBoostingRegressor; valid names: {valid}."
        )
    return {**DEFAULT_MODEL_PARAMS, **overrides}


def build_model(params: Mapping[str, Any] | None = None) -> TransformedTargetRegressor:
    """Unfitted log-target model: preprocessing + gradient-boosted trees."""
    regressor = Pipeline(
        [
            ("features", build_preprocessor()),
            ("trees", HistGradientBoostingRegressor(**resolve_model_params(params))),
        ]
    )
    # exp(log(price)): predictions are always positive prices.
    return TransformedTargetRegressor(
        regressor=regressor, func=np.log, inverse_func=np.exp, check_inverse=False
    )


def split_train_test(
    frame: pd.DataFrame, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split by a seeded hash of the feature values (see module docstring)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    hashes = pd.util.hash_pandas_object(
        feature_frame(frame), index=False, hash_key=f"{seed:016d}"[-16:]
    )
    is_test = (hashes.to_numpy() % _HASH_BUCKETS) < round(test_fraction * _HASH_BUCKETS)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the rows in canonical (sorted) order, so row order does not matter."""
    canonical = frame[list(ALL_COLUMNS)].sort_values(list(ALL_COLUMNS)).reset_index(drop=True)
    return hashlib.sha256(canonical.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """sha256 of the params as canonical JSON."""
    return hashlib.sha256(
        json.dumps(dict(params), sort_keys=True, default=str).encode()
    ).hexdigest()


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model with the exact split and parameters it came from."""

    model: TransformedTargetRegressor
    params: dict[str, Any]
    train: pd.DataFrame
    test: pd.DataFrame
    fingerprint: str
    fit_seconds: float


MIN_TRAINING_ROWS: Final = 50


def fit_model(
    train: pd.DataFrame, params: Mapping[str, Any] | None = None
) -> TransformedTargetRegressor:
    """Fit ``build_model(params)`` on ``train``."""
    if len(train) < MIN_TRAINING_ROWS:
        raise EmptyTrainingDataError(
            f"Only {len(train)} training rows (need >= {MIN_TRAINING_ROWS}); ingest a batch first."
        )
    model = build_model(params)
    with compute_threads():
        model.fit(feature_frame(train), train[TARGET].to_numpy(dtype=float))
    return model


def train_model(
    frame: pd.DataFrame,
    model_params: Mapping[str, Any] | None = None,
    test_fraction: float = TEST_FRACTION,
    seed: int = SPLIT_SEED,
) -> TrainedModel:
    """Split ``frame`` deterministically and fit the model on the training side."""
    params = resolve_model_params(model_params)
    # Canonical row order: early stopping and binning sample by position, so the same rows in
    # another order (the same dataset fingerprint) must give the same model.
    canonical = frame.sort_values(list(ALL_COLUMNS), kind="stable").reset_index(drop=True)
    train, test = split_train_test(canonical, test_fraction, seed)
    started = time.perf_counter()
    model = fit_model(train, params)
    return TrainedModel(
        model=model,
        params=params,
        train=train,
        test=test,
        fingerprint=dataset_fingerprint(frame),
        fit_seconds=time.perf_counter() - started,
    )


__all__ = [
    "DEFAULT_MODEL_PARAMS",
    "FEATURE_COLUMNS",
    "EmptyTrainingDataError",
    "TrainedModel",
    "UnknownModelParamError",
    "build_model",
    "dataset_fingerprint",
    "estimator_param_names",
    "fit_model",
    "params_fingerprint",
    "resolve_model_params",
    "split_train_test",
    "train_model",
]
