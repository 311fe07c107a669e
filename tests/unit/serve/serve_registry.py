"""Helpers for the model-server tests: a real (tiny) registry, a SQLite MLflow store in a temp dir
holding two versions of the project's model (mlpipe.train.build_model, few trees) trained on a
slice of the committed dataset."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.models import infer_signature

from mlpipe.compiled import compile_model
from mlpipe.registry import TAG_COMPILED_PARITY
from mlpipe.schema import (
    FEATURE_COLUMNS,
    TARGET,
    DiamondFeatures,
)
from mlpipe.serve import ServeSettings
from mlpipe.train import build_model

DATASET = Path(__file__).resolve().parents[3] / "ai-analysis" / "data" / "diamonds.csv.gz"
MODEL_NAME = "diamond-price-test"
CHAMPION = "champion"
RELOAD_TOKEN = "reload-token-for-tests"
# The header an authorised caller of POST /reload sends.
RELOAD_AUTH = {"Authorization": f"Bearer {RELOAD_TOKEN}"}


@dataclass(frozen=True)
class Registry:
    """A temp MLflow store with two registered versions; `champion` starts on version 1."""

    uri: str
    client: MlflowClient
    versions: tuple[str, str]

    def settings(self, **overrides: Any) -> ServeSettings:
        values: dict[str, Any] = {
            "model_name": MODEL_NAME,
            "champion_alias": CHAMPION,
            "tracking_uri": self.uri,
            "reload_interval_seconds": 0,  # tests drive reloads explicitly unless they test polling
            "reload_token": RELOAD_TOKEN,
        }
        return ServeSettings(**(values | overrides))

    def point_champion_at(self, version: str) -> None:
        self.client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)

    def predict_with_champion(self, frame: pd.DataFrame) -> Any:
        """The registered model's own prediction, loaded independently of the server."""
        return mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@{CHAMPION}").predict(frame)


def diamonds_slice(rows: int = 2000) -> pd.DataFrame:
    """Valid rows (the server's schema accepts them) from the head of the committed dataset."""
    frame = pd.read_csv(DATASET, nrows=rows * 2)
    valid = [
        i
        for i, record in enumerate(frame[list(FEATURE_COLUMNS)].to_dict(orient="records"))
        if _is_valid(record)
    ]
    return frame.iloc[valid].head(rows).reset_index(drop=True)


def _is_valid(record: dict[str, Any]) -> bool:
    try:
        DiamondFeatures.model_validate(record)
    except ValueError:
        return False
    return True


def register_version(
    client: MlflowClient, frame: pd.DataFrame, max_iter: int, *, compiled: bool = False
) -> str:
    """Register a version; `compiled`: with its ONNX file and a passed parity gate, as
    mlpipe.registry logs them (without: a version from before models were compiled)."""
    features, target = frame[list(FEATURE_COLUMNS)], frame[TARGET]
    pipeline = build_model({"max_iter": max_iter, "early_stopping": False}).fit(features, target)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", max_iter)
        if compiled:
            with tempfile.TemporaryDirectory() as folder:
                onnx_file = Path(folder) / "model.onnx"
                onnx_file.write_bytes(compile_model(pipeline))
                mlflow.log_artifact(str(onnx_file), artifact_path="compiled")
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(features, pipeline.predict(features)),
            skops_trusted_types=trusted,
            # as mlpipe.registry logs them: MLflow would otherwise infer the requirements by
            # importing the model in a subprocess (seconds per model)
            pip_requirements=["scikit-learn", "skops", "pandas"],
            registered_model_name=MODEL_NAME,
        )
    version = str(client.search_model_versions(f"run_id='{run.info.run_id}'")[0].version)
    if compiled:
        client.set_model_version_tag(MODEL_NAME, version, TAG_COMPILED_PARITY, "passed")
    return version
