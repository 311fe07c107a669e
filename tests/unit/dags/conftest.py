"""DAG-integrity fixtures: the DAG folder is parsed once per session (like the DAG processor)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dag_checks import DAGS_FOLDER, ParseOutcome, configure_airflow_home, parse_dag_folder


@pytest.fixture(scope="session", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away AIRFLOW_HOME, set before any test here imports Airflow."""
    return configure_airflow_home(tmp_path_factory.mktemp("airflow-home"))


@pytest.fixture(scope="session")
def parsed(airflow_home: Path) -> ParseOutcome:
    """`airflow/dags` parsed once, under the parse-time guards."""
    return parse_dag_folder(DAGS_FOLDER)
