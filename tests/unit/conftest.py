"""Fixtures shared by the unit tests of several packages (ml, serve, dags)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite store (migrating one costs seconds; copying is instant)."""
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def new_mlflow_db(mlflow_template_db: Path) -> Callable[[Path], str]:
    """Copies the migrated store into a folder; the tracking URI of the copy."""

    def copy_into(folder: Path) -> str:
        database = folder / "mlflow.db"
        shutil.copyfile(mlflow_template_db, database)
        return f"sqlite:///{database}"

    return copy_into
