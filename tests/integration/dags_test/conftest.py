"""Fixtures of tests/integration/dags_test (the helpers live in dagstest_stack.py).

The stack here is private to these tests: it never uses the integration tier's `stack` fixture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagstest_stack import (
    Managed,
    MiniStack,
    http_ok,
    s3_answers,
    start_mlflow,
    start_seaweedfs,
    wait_until,
)
from stack_timings import tier_timings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """These tests start their own services and no backend: one tier (the local one) runs them."""
    backend = config.getoption("--backend")
    if backend == "local":
        return
    skip = pytest.mark.skip(
        reason=f"`airflow dags test` uses no backend: the local tier runs it (this run: {backend})"
    )
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def mini_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[MiniStack]:
    """SeaweedFS + MLflow with the bucket provisioned and landing/ seeded; stopped afterwards."""
    from mlpipe.config import load_settings

    work = tmp_path_factory.mktemp("dags-test")
    logs = work / "logs"
    logs.mkdir()
    bucket = load_settings().s3_bucket
    started: list[Managed] = []
    timings: dict[str, float] = {}
    try:
        clock = time.monotonic()
        weed, s3_endpoint = start_seaweedfs(work, logs)
        started.append(weed)
        wait_until(weed, s3_answers(s3_endpoint), timeout=120)
        stack = MiniStack(s3_endpoint, "", bucket, work, timings)
        stack.s3().create_bucket(Bucket=bucket)
        timings["seaweedfs_start"] = time.monotonic() - clock

        clock = time.monotonic()
        mlflow, mlflow_url = start_mlflow(work, logs, s3_endpoint, bucket)
        started.append(mlflow)
        wait_until(mlflow, http_ok(f"{mlflow_url}/health"), timeout=180)
        stack.mlflow_url = mlflow_url
        timings["mlflow_start"] = time.monotonic() - clock
        yield stack
    finally:
        for process in reversed(started):
            timings[f"{process.name}_stop"] = process.stop()
        for name, seconds in timings.items():
            tier_timings(request.config).phase(f"dags_test {name}", seconds)
        print(f"logs: {logs}")
