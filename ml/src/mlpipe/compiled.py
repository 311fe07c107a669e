"""The champion compiled for serving: its tree ensemble as ONNX, run by ONNX Runtime.

The scikit-learn pipeline stays the reference. At registration its trees are converted
(skl2onnx) and both predict the held-out set; the compiled model is promotable only when no
price differs by more than ``PARITY_RTOL`` (the parity gate). Serving then needs neither pandas
nor scikit-learn: validated instances become one float32 matrix (the ordinal levels looked up,
the numbers copied) and a single ONNX Runtime call prices them.

Public API (stable):

- ``compile_model(model) -> bytes``: the fitted ``build_model()`` estimator's trees as ONNX.
- ``CompiledModel.from_bytes(onnx)``: ``predict(frame)`` (a ``Predictor``) and the hot path
  ``predict_instances(instances)``; both return prices in USD.
- ``check_parity(model, compiled, frame) -> ParityReport``: the gate's measurement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from mlpipe.schema import (
    ENCODED_FEATURES,
    NUMERIC_FEATURES,
    ORDINAL_FEATURES,
    ORDINAL_LEVELS,
    DiamondFeatures,
)

if TYPE_CHECKING:  # serving needs no pandas: frames come only from training and the gate
    import pandas as pd

# Where a run keeps its compiled model, and the run (and so version) tags that say how its
# parity gate went: "passed", "failed" or "unavailable" (it could not be compiled).
COMPILED_ARTIFACT: Final = "compiled/model.onnx"
TAG_COMPILED_PARITY: Final = "compiled_parity"
TAG_COMPILED_ERROR: Final = "compiled_max_relative_error"
# The largest relative price difference the gate accepts between the compiled model and the
# reference on any held-out row. Float32 sums of a few hundred leaf values differ by ~2e-6
# (measured on the committed dataset); a flipped split near a threshold moves a price by far more.
PARITY_RTOL: Final = 1e-4
INPUT_NAME: Final = "features"
# ai.onnx.ml 3: the TreeEnsembleRegressor every ONNX Runtime since 1.10 runs.
TARGET_OPSET: Final = {"": 17, "ai.onnx.ml": 3}
LEVEL_INDEX: Final = {
    column: {level: float(index) for index, level in enumerate(levels)}
    for column, levels in ORDINAL_LEVELS.items()
}
ORDINAL_LOOKUPS: Final = tuple((column, LEVEL_INDEX[column]) for column in ORDINAL_FEATURES)
UNKNOWN_LEVEL: Final = -1.0  # what the pipeline's OrdinalEncoder gives a level it never saw


class CompileError(RuntimeError):
    """The model is not the pipeline this module knows how to compile."""


class ParityReport(BaseModel):
    """The compiled model against the reference on the same rows."""

    rows: int
    max_relative_error: float
    tolerance: float = PARITY_RTOL

    @property
    def passed(self) -> bool:
        return self.rows > 0 and self.max_relative_error <= self.tolerance


@contextlib.contextmanager
def _integer_flags() -> Iterator[None]:
    """skl2onnx 1.20 hands the HistGradientBoosting converter's per-node missing-value flags to
    onnx as Python bools, which protobuf >= 6 refuses for an INTS attribute ("Expected an int,
    got a boolean"). For the conversion only, such lists are passed as the 0/1 they mean."""
    import onnx.helper

    make_attribute = onnx.helper.make_attribute

    def as_ints(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
            value = [int(v) for v in value]
        return make_attribute(key, value, *args, **kwargs)

    onnx.helper.make_attribute = as_ints
    try:
        yield
    finally:
        onnx.helper.make_attribute = make_attribute


def _trees(model: Any) -> Any:
    """The HistGradientBoostingRegressor inside ``build_model()``'s fitted estimator."""
    try:
        return model.regressor_.named_steps["trees"]
    except (AttributeError, KeyError) as exc:
        raise CompileError(
            "expected a fitted mlpipe.train.build_model() estimator (log-target pipeline with "
            f"a 'trees' step), got {type(model).__name__}"
        ) from exc


def compile_model(model: Any) -> bytes:
    """The fitted model's trees as ONNX; inputs are the encoded columns, outputs log-prices."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    columns = len(ENCODED_FEATURES)
    with _integer_flags():
        converted = convert_sklearn(
            _trees(model),
            initial_types=[(INPUT_NAME, FloatTensorType([None, columns]))],
            target_opset=TARGET_OPSET,
        )
    return bytes(converted.SerializeToString())


def encode_frame(frame: pd.DataFrame) -> npt.NDArray[np.float32]:
    """The encoded matrix of ``frame`` (what the pipeline's ColumnTransformer computes)."""
    ordinal = [
        frame[column].map(LEVEL_INDEX[column]).fillna(UNKNOWN_LEVEL).to_numpy(np.float32)
        for column in ORDINAL_FEATURES
    ]
    numeric = [frame[column].to_numpy(np.float32) for column in NUMERIC_FEATURES]
    return np.column_stack([*ordinal, *numeric]).astype(np.float32, copy=False)


def encode_instances(instances: Sequence[DiamondFeatures]) -> npt.NDArray[np.float32]:
    """The encoded matrix of validated instances, without pandas (the serving hot path). The
    schema admits only known levels, so every lookup succeeds."""
    rows = [
        [
            *(index[getattr(row, column)] for column, index in ORDINAL_LOOKUPS),
            *(getattr(row, column) for column in NUMERIC_FEATURES),
        ]
        for row in instances
    ]
    return np.asarray(rows, dtype=np.float32)


class CompiledModel:
    """An ONNX Runtime session over the compiled trees; prices are exp(log-price)."""

    def __init__(self, session: Any, onnx_bytes: bytes) -> None:
        self._session = session
        self.onnx_bytes = onnx_bytes

    @classmethod
    def from_bytes(cls, onnx_bytes: bytes) -> CompiledModel:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per call: requests are answered one at a time per worker, and spinning
        # pools on a shared 2-core host cost more than the trees (as with OpenMP in sklearn).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )
        return cls(session, onnx_bytes)

    def predict_matrix(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        (log_prices,) = self._session.run(None, {INPUT_NAME: matrix})
        return np.exp(np.asarray(log_prices, dtype=np.float64).ravel())

    def predict_instances(self, instances: Sequence[DiamondFeatures]) -> npt.NDArray[np.float64]:
        """Prices of validated instances: no frame, one ONNX Runtime call."""
        return self.predict_matrix(encode_instances(instances))

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Prices of a frame with the model's feature columns (the ``Predictor`` protocol)."""
        return self.predict_matrix(encode_frame(X))


def check_parity(model: Any, compiled: CompiledModel, frame: pd.DataFrame) -> ParityReport:
    """The largest relative difference between the compiled and the reference prices."""
    if len(frame) == 0:
        return ParityReport(rows=0, max_relative_error=float("inf"))
    reference = np.asarray(model.predict(frame), dtype=np.float64)
    candidate = compiled.predict(frame)
    relative = np.abs(candidate - reference) / np.maximum(np.abs(reference), 1e-12)
    return ParityReport(rows=len(frame), max_relative_error=float(relative.max()))
