"""Fixtures for the stackctl unit tests: a throw-away repo root and free ports."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from stackctl_helpers import REPO_ROOT, free_port


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    """A checkout with only the real platform/config (env files and service declarations)."""
    shutil.copytree(REPO_ROOT / "platform" / "config", tmp_path / "repo" / "platform" / "config")
    (tmp_path / "repo" / "airflow" / "dags").mkdir(parents=True)
    return tmp_path / "repo"


@pytest.fixture
def port_factory() -> Callable[[], int]:
    return free_port
