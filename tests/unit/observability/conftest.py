"""Fixtures of the observability tests: the platform/observability modules and the metric registry."""

from __future__ import annotations

import pytest

from stackobservability import metric_catalog


@pytest.fixture(scope="session")
def registry() -> dict[str, dict[str, str]]:
    """Source -> {series: type} for every exporter of the stack (built from the real sources)."""
    return metric_catalog.build_registry()
