"""Fixtures for the ml unit tests: settings, an in-process S3 (moto), a real MLflow store, data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from ml_testdata import DATASET, free_port, make_settings

from mlpipe import data
from mlpipe.config import Settings, s3_client


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An in-process moto S3 server on a free port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_settings(moto_endpoint: str) -> Settings:
    """Settings pointing at moto with a fresh bucket per test."""
    settings = make_settings(
        s3_endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        s3_bucket=f"test-{uuid.uuid4().hex[:12]}",
    )
    s3_client(settings).create_bucket(Bucket=settings.s3_bucket)
    return settings


@pytest.fixture
def mlflow_settings(tmp_path: Path, new_mlflow_db: Callable[[Path], str]) -> Settings:
    """Settings with a real MLflow tracking store (sqlite) and a local artifact root in tmp_path."""
    import mlflow

    settings = make_settings(mlflow_tracking_uri=new_mlflow_db(tmp_path))
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    client.create_experiment(
        settings.mlflow_experiment, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    return settings


@pytest.fixture(scope="session")
def dataset_bytes() -> bytes:
    """The committed full dataset, as bytes."""
    return DATASET.read_bytes()


@pytest.fixture(scope="session")
def full_cleaning(dataset_bytes: bytes) -> data.CleaningResult:
    """Cleaning of the full dataset (computed once)."""
    return data.clean_batch(dataset_bytes, batch=DATASET.name)


@pytest.fixture(scope="session")
def clean_frame(full_cleaning: data.CleaningResult) -> pd.DataFrame:
    """All clean rows of the full dataset."""
    return full_cleaning.clean


@pytest.fixture(scope="session")
def small_frame(clean_frame: pd.DataFrame) -> pd.DataFrame:
    """A fixed 6,000-row sample of the clean data for quick model tests."""
    return clean_frame.sample(6000, random_state=7).reset_index(drop=True)
