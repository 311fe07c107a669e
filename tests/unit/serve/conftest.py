"""Fixtures for the model-server tests (helpers live in serve_registry.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from serve_registry import Registry, diamonds_slice, register_version


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return diamonds_slice()


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
    frame: pd.DataFrame,
    new_mlflow_db: Callable[[Path], str],
) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = new_mlflow_db(root)
    # The fixture's own fluent calls (set_experiment, log_model) need the global URI: set it for
    # this session only, leaving MLflow's global and $MLFLOW_TRACKING_URI as they were after.
    scope = _use_tracking_uri(uri)
    scope.__enter__()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # An explicit artifact location: the default (./mlruns) would litter the working tree.
    experiment = client.create_experiment(
        "serve-tests", artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = register_version(client, frame, max_iter=20)
        second = register_version(client, frame, max_iter=60)
    registry = Registry(uri=uri, client=client, versions=(first, second))
    registry.point_champion_at(first)
    yield registry
    scope.__exit__(None, None, None)


@pytest.fixture
def champion_v1(registry: Registry) -> Registry:
    """The registry with `champion` on version 1 (tests that move it get it reset)."""
    registry.point_champion_at(registry.versions[0])
    return registry
