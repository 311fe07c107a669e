"""Realistic prediction payloads for the load tests, drawn from the committed dataset."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import gevent
import pandas as pd
from pydantic import ValidationError

from mlpipe.schema import FEATURE_COLUMNS, DiamondFeatures

DATASET = Path(__file__).resolve().parents[2] / "ai-analysis" / "data" / "diamonds.csv.gz"

# Each entry is a payload the server must reject with 422, and why.
MALFORMED_PAYLOADS: tuple[tuple[str, Any], ...] = (
    ("missing field", {"instances": [{"carat": 0.5, "cut": "Ideal"}]}),
    (
        "unknown cut",
        {
            "instances": [
                {
                    **dict.fromkeys(("carat", "depth", "table", "x", "y", "z"), 1.0),
                    "cut": "Superb",
                    "color": "E",
                    "clarity": "SI1",
                }
            ]
        },
    ),
    (
        "zero dimension",
        {
            "instances": [
                {
                    "carat": 0.3,
                    "cut": "Good",
                    "color": "E",
                    "clarity": "SI1",
                    "depth": 61.0,
                    "table": 55.0,
                    "x": 0.0,
                    "y": 4.3,
                    "z": 2.6,
                }
            ]
        },
    ),
    (
        "string for number",
        {
            "instances": [
                {
                    "carat": "heavy",
                    "cut": "Good",
                    "color": "E",
                    "clarity": "SI1",
                    "depth": 61.0,
                    "table": 55.0,
                    "x": 4.3,
                    "y": 4.3,
                    "z": 2.6,
                }
            ]
        },
    ),
    ("empty batch", {"instances": []}),
    ("not a list", {"instances": "all of them"}),
)


@functools.cache
def valid_rows(limit: int = 5000, seed: int = 7) -> tuple[dict[str, Any], ...]:
    """Up to `limit` dataset rows that the server's own schema accepts, in a fixed random order."""
    frame = pd.read_csv(DATASET, usecols=list(FEATURE_COLUMNS))
    sample = frame.sample(n=min(limit * 2, len(frame)), random_state=seed)
    rows: list[dict[str, Any]] = []
    for record in sample.to_dict(orient="records"):
        try:
            rows.append(DiamondFeatures.model_validate(record).model_dump())
        except ValidationError:
            continue  # the dataset's own defects (zero dimensions) are not valid requests
        if len(rows) == limit:
            break
    return tuple(rows)


def instances(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` valid diamonds picked at random from the dataset."""
    return rng.sample(valid_rows(), count)


def warm_up() -> None:
    """Read the dataset before users start (a Locust `init` listener): blocking I/O inside a task
    would stall every user."""
    valid_rows()
    # libev caches "now"; after a long blocking load it is stale, and Locust's --run-time timer
    # (scheduled from it) would fire seconds early.
    gevent.get_hub().loop.update_now()
