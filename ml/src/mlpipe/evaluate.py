"""Held-out evaluation: RMSE, MAE, R^2, and a price-per-carat baseline to compare against.

Public API (stable):

- ``Predictor`` (from ``mlpipe.predictor``): the one model type (anything with a scikit-learn
  style ``predict``); the registry loads one, the model server serves one.
- ``Metrics`` (pydantic: rmse, mae, r2, n_rows) and ``regression_metrics(y_true, y_pred) -> Metrics``,
  the one implementation (monitoring uses it too). R^2 is 0.0 when the truth is constant (it is
  undefined there).
- ``score(model, frame) -> Metrics``: predictions of any fitted model on a frame with the target.
- ``PricePerCaratBaseline``: price = median(price / carat) of the training rows x carat.
- ``Evaluation`` (model, baseline, rmse_improvement) and ``evaluate(model, train, test)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

from mlpipe.config import compute_threads
from mlpipe.features import feature_frame
from mlpipe.predictor import Predictor
from mlpipe.schema import TARGET


class Metrics(BaseModel):
    """Regression metrics on one set of rows (prices in USD)."""

    rmse: float
    mae: float
    r2: float
    n_rows: int


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> Metrics:
    """RMSE, MAE and R^2 of ``y_pred`` against ``y_true``; R^2 is 0.0 for a constant truth."""
    truth = np.asarray(y_true, dtype=float).ravel()
    errors = np.asarray(y_pred, dtype=float).ravel() - truth if truth.size else truth
    if errors.shape != truth.shape or truth.size == 0:
        raise ValueError(f"need as many predictions as true values (>0), got {truth.size}")
    squared = float(np.sum(errors**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    return Metrics(
        rmse=math.sqrt(squared / truth.size),
        mae=float(np.mean(np.abs(errors))),
        r2=1.0 - squared / total if total > 0 else 0.0,
        n_rows=int(truth.size),
    )


def score(model: Predictor, frame: pd.DataFrame) -> Metrics:
    """Metrics of ``model`` on ``frame`` (features + ``price``)."""
    with compute_threads():
        predictions = model.predict(feature_frame(frame))
    return regression_metrics(frame[TARGET], predictions)


class PricePerCaratBaseline:
    """The jeweller's rule of thumb: a typical price per carat times the weight."""

    def __init__(self) -> None:
        self.price_per_carat_: float | None = None

    def fit(self, frame: pd.DataFrame) -> PricePerCaratBaseline:
        """Learn the median price per carat of ``frame``."""
        self.price_per_carat_ = float((frame[TARGET] / frame["carat"]).median())
        return self

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Predicted prices for the rows of ``X``."""
        if self.price_per_carat_ is None:
            raise RuntimeError("PricePerCaratBaseline.fit must be called before predict.")
        return np.asarray(X["carat"], dtype=float) * self.price_per_carat_


class Evaluation(BaseModel):
    """The model's and the baseline's held-out metrics."""

    model: Metrics
    baseline: Metrics

    @property
    def rmse_improvement(self) -> float:
        """Relative RMSE reduction of the model over the baseline (0.8 = 80 % lower)."""
        return 1 - self.model.rmse / self.baseline.rmse


def evaluate(model: Predictor, train: pd.DataFrame, test: pd.DataFrame) -> Evaluation:
    """Score ``model`` and a baseline fitted on ``train`` on the same held-out ``test`` rows."""
    baseline = PricePerCaratBaseline().fit(train)
    return Evaluation(model=score(model, test), baseline=score(baseline, test))
