"""The compiled model (mlpipe.compiled): ONNX of the trees priced like the scikit-learn reference,
the same encoding as the pipeline's, and a parity gate that tells the two apart when they differ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpipe.compiled import (
    PARITY_RTOL,
    CompiledModel,
    CompileError,
    ParityReport,
    check_parity,
    compile_model,
    encode_frame,
    encode_instances,
)
from mlpipe.features import feature_frame
from mlpipe.schema import DiamondFeatures
from mlpipe.train import TrainedModel, train_model


@pytest.fixture(scope="module")
def trained(small_frame: pd.DataFrame) -> TrainedModel:
    return train_model(small_frame.head(3000), {"max_iter": 40})


@pytest.fixture(scope="module")
def compiled(trained: TrainedModel) -> CompiledModel:
    return CompiledModel.from_bytes(compile_model(trained.model))


def test_the_encoding_is_the_pipelines(trained: TrainedModel) -> None:
    rows = feature_frame(trained.test)
    preprocessor = trained.model.regressor_.named_steps["features"]
    expected = preprocessor.transform(rows).astype(np.float32)
    np.testing.assert_array_equal(encode_frame(rows), expected)
    instances = [DiamondFeatures.model_validate(r) for r in rows.head(20).to_dict("records")]
    np.testing.assert_array_equal(encode_instances(instances), expected[:20])


def test_compiled_prices_match_the_reference_within_the_gate(
    trained: TrainedModel, compiled: CompiledModel
) -> None:
    rows = feature_frame(trained.test)
    report = check_parity(trained.model, compiled, rows)
    assert report.passed, report
    assert report.rows == len(rows)
    instances = [DiamondFeatures.model_validate(r) for r in rows.head(5).to_dict("records")]
    np.testing.assert_allclose(
        compiled.predict_instances(instances), trained.model.predict(rows.head(5)), rtol=PARITY_RTOL
    )


def test_the_gate_fails_a_compiled_model_that_prices_differently(
    trained: TrainedModel, small_frame: pd.DataFrame
) -> None:
    """The gate in the other direction: trees of another model (a few shallow steps) are a valid
    ONNX file, but their prices are not the reference's."""
    other = train_model(small_frame.head(3000), {"max_iter": 3})
    impostor = CompiledModel.from_bytes(compile_model(other.model))
    report = check_parity(trained.model, impostor, feature_frame(trained.test))
    assert not report.passed
    assert report.max_relative_error > PARITY_RTOL


def test_an_empty_held_out_set_proves_nothing(
    trained: TrainedModel, compiled: CompiledModel
) -> None:
    assert not check_parity(trained.model, compiled, feature_frame(trained.test).head(0)).passed
    assert not ParityReport(rows=10, max_relative_error=float("nan")).passed


def test_only_the_projects_pipeline_compiles() -> None:
    with pytest.raises(CompileError, match="build_model"):
        compile_model(object())


def test_skl2onnx_still_needs_the_integer_flags_shim(trained: TrainedModel) -> None:
    """Canary: once skl2onnx passes its HistGradientBoosting flags as ints, this fails, and
    mlpipe.compiled._integer_flags can go."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    trees = trained.model.regressor_.named_steps["trees"]
    with pytest.raises(ValueError, match="Unable to create node 'TreeEnsembleRegressor'") as error:
        convert_sklearn(trees, initial_types=[("features", FloatTensorType([None, 9]))])
    assert "Expected an int, got a boolean" in str(error.value.__cause__ or error.value.__context__)
