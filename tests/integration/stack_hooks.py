"""Hooks the integration tier's conftests share (added by tests/integration/conftest.py)."""

from __future__ import annotations

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_integration_stack_trained(config: pytest.Config) -> None:
    """The tier's stack has its first champion: its CPU-heavy start (bring-up, first training)
    is over, so work that merely shares the machine can begin (dags_test's scenario)."""
