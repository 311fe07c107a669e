"""Renders every overlay ONCE per test session (kubectl kustomize via platform/k8s/render.py)."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest
import yaml
from k8s_helpers import load_render_module

RENDER_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="session")
def render_module() -> ModuleType:
    return load_render_module()


@pytest.fixture(scope="session")
def rendered(render_module: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """target name (overlay or variant) -> its rendered objects."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for target in render_module.target_names():
        started = time.perf_counter()
        text = render_module.render_overlay(target)
        RENDER_SECONDS[target] = time.perf_counter() - started
        objects[target] = [o for o in yaml.safe_load_all(text) if o]
    return objects


@pytest.fixture(scope="session")
def render_seconds(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    return RENDER_SECONDS
