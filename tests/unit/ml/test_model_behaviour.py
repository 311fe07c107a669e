"""Model behaviour on a quick subset: invariance, directional expectations, minimum functionality."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import skops.io

from mlpipe import data, evaluate, registry
from mlpipe.features import feature_frame
from mlpipe.schema import CLARITY_LEVELS, COLOR_LEVELS, CUT_LEVELS
from mlpipe.train import (
    TrainedModel,
    UnknownModelParamError,
    build_model,
    resolve_model_params,
    train_model,
)


@pytest.fixture(scope="module")
def trained(small_frame: pd.DataFrame) -> TrainedModel:
    return train_model(small_frame, {"max_iter": 200})


@pytest.fixture(scope="module")
def stones(trained: TrainedModel) -> pd.DataFrame:
    """Typical held-out stones to probe."""
    return feature_frame(trained.test).head(200).reset_index(drop=True)


def test_minimum_functionality(trained: TrainedModel) -> None:
    result = evaluate.evaluate(trained.model, trained.train, trained.test)
    print(f"\nquick model: {result.model}\nbaseline:    {result.baseline}")
    assert result.model.r2 >= 0.95
    assert result.model.rmse < 0.5 * result.baseline.rmse


def test_predictions_do_not_depend_on_row_order(
    trained: TrainedModel, stones: pd.DataFrame
) -> None:
    order = np.random.default_rng(0).permutation(len(stones))
    direct = trained.model.predict(stones)
    shuffled = trained.model.predict(stones.iloc[order])
    np.testing.assert_allclose(shuffled, direct[order])


def test_predictions_do_not_depend_on_column_order(
    trained: TrainedModel, stones: pd.DataFrame
) -> None:
    reversed_columns = stones[list(reversed(stones.columns))]
    np.testing.assert_allclose(
        trained.model.predict(reversed_columns), trained.model.predict(stones)
    )


def test_prices_are_positive(trained: TrainedModel, stones: pd.DataFrame) -> None:
    assert (trained.model.predict(stones) > 0).all()


def test_a_bigger_stone_costs_more(trained: TrainedModel, stones: pd.DataFrame) -> None:
    bigger = stones.copy()
    bigger["carat"] *= 1.5
    for column in ("x", "y", "z"):
        bigger[column] *= 1.5 ** (1 / 3)  # same shape, 1.5x the volume
    assert (trained.model.predict(bigger) > trained.model.predict(stones)).mean() > 0.95


@pytest.mark.parametrize(
    ("column", "levels"),
    [("clarity", CLARITY_LEVELS), ("color", COLOR_LEVELS), ("cut", CUT_LEVELS)],
)
def test_better_grade_never_costs_less(
    trained: TrainedModel, stones: pd.DataFrame, column: str, levels: tuple[str, ...]
) -> None:
    prices = [trained.model.predict(stones.assign(**{column: level})) for level in levels]
    for worse, better in itertools.pairwise(prices):
        assert (better >= worse - 1e-6).all()


def test_heavier_never_costs_less(trained: TrainedModel, stones: pd.DataFrame) -> None:
    heavier = stones.assign(carat=stones["carat"] + 0.1)
    assert (trained.model.predict(heavier) >= trained.model.predict(stones) - 1e-6).all()


def test_training_is_deterministic(small_frame: pd.DataFrame, stones: pd.DataFrame) -> None:
    sample = small_frame.head(1500)
    first = train_model(sample, {"max_iter": 30}).model.predict(stones)
    second = train_model(sample.iloc[::-1], {"max_iter": 30}).model.predict(stones)
    np.testing.assert_allclose(first, second, rtol=1e-6)


def test_unknown_model_params_are_named() -> None:
    with pytest.raises(UnknownModelParamError, match=r"\['max_iters'\].*valid names"):
        resolve_model_params({"max_iters": 3})


def test_overrides_reach_the_estimator() -> None:
    model = build_model({"max_iter": 7, "learning_rate": 0.3})
    trees = model.regressor.named_steps["trees"]
    assert (trees.max_iter, trees.learning_rate) == (7, 0.3)


def test_training_on_too_little_data_is_a_clear_error(small_frame: pd.DataFrame) -> None:
    from mlpipe.train import EmptyTrainingDataError

    with pytest.raises(EmptyTrainingDataError, match="ingest a batch"):
        train_model(data.empty_validated_frame())
    assert len(small_frame) > 0


def test_skops_needs_only_the_declared_trusted_types(
    trained: TrainedModel, stones: pd.DataFrame
) -> None:
    payload = skops.io.dumps(trained.model)
    assert set(skops.io.get_untrusted_types(data=payload)) <= set(registry.SKOPS_TRUSTED_TYPES)
    loaded = skops.io.loads(payload, trusted=registry.SKOPS_TRUSTED_TYPES)
    np.testing.assert_allclose(loaded.predict(stones), trained.model.predict(stones))
