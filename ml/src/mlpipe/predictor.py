"""The one model type: anything with a scikit-learn style ``predict`` (the reference estimator,
the compiled model). Its own module so that serving imports neither pandas nor scikit-learn."""

from __future__ import annotations

from typing import Any, Protocol


class Predictor(Protocol):
    """Anything with a scikit-learn style ``predict``."""

    def predict(self, X: Any) -> Any: ...
