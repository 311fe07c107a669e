"""Renders every overlay ONCE per test session (kubectl kustomize via stackctl.k8s.manifests)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from stackctl.k8s import manifests

RENDER_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """target name (overlay or variant) -> its rendered objects."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for target in manifests.target_names():
        started = time.perf_counter()
        text = manifests.render_overlay(target)
        RENDER_SECONDS[target] = time.perf_counter() - started
        objects[target] = [o for o in yaml.safe_load_all(text) if o]
    return objects


@pytest.fixture(scope="session")
def render_seconds(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    return RENDER_SECONDS
