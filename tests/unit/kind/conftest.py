"""Fixtures of the kind-backend unit tests (helpers live in kind_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kind_helpers import RecordingRunner, load_fixture


@pytest.fixture
def fixture() -> Callable[[str], Any]:
    return load_fixture


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()
