"""The diamonds domain: column names, ordinal levels, and the prediction payload model.

Shared by data validation (`mlpipe.data`), feature building (`mlpipe.features`) and the model server
(`mlpipe.serve`), so the three can never disagree about what a diamond looks like.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# Ordinal levels, worst to best, as ggplot2 defines them.
CUT_LEVELS: Final = ("Fair", "Good", "Very Good", "Premium", "Ideal")
COLOR_LEVELS: Final = ("J", "I", "H", "G", "F", "E", "D")
CLARITY_LEVELS: Final = ("I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF")

NUMERIC_FEATURES: Final = ("carat", "depth", "table", "x", "y", "z")
ORDINAL_FEATURES: Final = ("cut", "color", "clarity")
ORDINAL_LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "cut": CUT_LEVELS,
    "color": COLOR_LEVELS,
    "clarity": CLARITY_LEVELS,
}
# The model's columns after preprocessing: the ordinal codes, then the numbers as they are.
ENCODED_FEATURES: Final = (*ORDINAL_FEATURES, *NUMERIC_FEATURES)
FEATURE_COLUMNS: Final = ("carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z")
TARGET: Final = "price"
ALL_COLUMNS: Final = (*FEATURE_COLUMNS, TARGET)

Cut = Literal["Fair", "Good", "Very Good", "Premium", "Ideal"]
Color = Literal["J", "I", "H", "G", "F", "E", "D"]
Clarity = Literal["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]


def _measure(*, le: float, description: str) -> object:
    # Finite numbers only: NaN would otherwise fail the bound with a message about the bound.
    return Field(gt=0, le=le, allow_inf_nan=False, description=description)


PositiveMm = Annotated[float, _measure(le=100, description="millimetres")]


class DiamondFeatures(BaseModel):
    """One diamond to price. Strict types: numbers must be JSON numbers (``true`` or ``"0.5"`` are
    refused, not coerced), finite, and within bounds that reject impossible stones."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    carat: Annotated[float, _measure(le=10, description="weight in carats")]
    cut: Cut
    color: Color
    clarity: Clarity
    depth: Annotated[float, _measure(le=100, description="total depth percentage")]
    table: Annotated[float, _measure(le=100, description="table width percentage")]
    x: PositiveMm
    y: PositiveMm
    z: PositiveMm


MAX_BATCH_ROWS: Final = 1000


class PredictRequest(BaseModel):
    """Body of `POST /predict`: between 1 and MAX_BATCH_ROWS diamonds."""

    model_config = ConfigDict(extra="forbid", strict=True)

    instances: Annotated[list[DiamondFeatures], Field(min_length=1, max_length=MAX_BATCH_ROWS)]


class PredictResponse(BaseModel):
    """Body of a successful `POST /predict`: one price (USD) per instance, in order."""

    predictions: list[float]
    model_name: str
    model_version: str
