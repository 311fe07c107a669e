"""DAG-integrity fixtures: the DAG folder is parsed once per session (like the DAG processor)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from dag_checks import (
    DAGS_FOLDER,
    EXECUTORS,
    ParseOutcome,
    configure_airflow_home,
    parse_dag_folder,
)


@pytest.fixture(scope="session", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away AIRFLOW_HOME, set before any test here imports Airflow."""
    return configure_airflow_home(tmp_path_factory.mktemp("airflow-home"))


@functools.cache
def _parsed(executor: str) -> ParseOutcome:
    return parse_dag_folder(DAGS_FOLDER, executor=executor)


@pytest.fixture(scope="session", params=EXECUTORS)
def parsed(request: pytest.FixtureRequest, airflow_home: Path) -> ParseOutcome:
    """`airflow/dags` parsed once per executor a backend runs, under the parse-time guards: every
    integrity test holds for the local/compose Airflow and for the kind/eks one."""
    return _parsed(request.param)


@pytest.fixture(scope="session")
def parsed_local(airflow_home: Path) -> ParseOutcome:
    """The LocalExecutor parse alone: what the task tests run in process."""
    return _parsed(EXECUTORS[0])
