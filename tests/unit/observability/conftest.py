"""Fixtures of the observability tests: the platform/observability modules and the metric registry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

OBSERVABILITY_DIR = Path(__file__).resolve().parents[3] / "platform" / "observability"
# The generator and catalog are scripts next to the files they manage, not an installed package.
if str(OBSERVABILITY_DIR) not in sys.path:
    sys.path.insert(0, str(OBSERVABILITY_DIR))

import metric_catalog  # noqa: E402


@pytest.fixture(scope="session")
def registry() -> dict[str, dict[str, str]]:
    """Source -> {series: type} for every exporter of the stack (built from the real sources)."""
    return metric_catalog.build_registry()
