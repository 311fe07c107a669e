"""Single-row prediction latency, printed (not asserted beyond a generous bound): in process
(the served predictor, and the whole app through TestClient) and over real HTTP (uvicorn on a
free port, one keep-alive client)."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient
from serve_registry import Registry

from mlpipe.schema import FEATURE_COLUMNS, PredictRequest
from mlpipe.serve import create_app, instances_frame

pytestmark = pytest.mark.slow

WARMUP, SAMPLES = 30, 400


def percentiles(call: Callable[[], Any]) -> dict[str, float]:
    for _ in range(WARMUP):
        call()
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return {"p50_ms": cuts[49], "p99_ms": cuts[98]}


def report(label: str, figures: dict[str, float], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(
            f"\n[latency] {label}: p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
        )


@pytest.fixture
def payload(frame: pd.DataFrame) -> dict[str, Any]:
    return {"instances": frame[list(FEATURE_COLUMNS)].iloc[:1].to_dict(orient="records")}


@pytest.fixture
def http_url(champion_v1: Registry) -> Iterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port, stopped after the test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(champion_v1.settings()), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_single_row_latency_in_process(
    champion_v1: Registry, payload: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(create_app(champion_v1.settings())) as client:
        model = client.app.state.watcher.current  # type: ignore[attr-defined]
        request = PredictRequest.model_validate(payload)
        direct = percentiles(lambda: model.predict(instances_frame(request)))
        report("predictor only (frame + sklearn predict)", direct, capsys)
        through_app = percentiles(lambda: client.post("/predict", json=payload))
        report("whole app via TestClient", through_app, capsys)
    assert through_app["p50_ms"] < 250  # generous: catches a per-request registry call, not noise


def test_single_row_latency_over_http(
    http_url: str, payload: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=http_url) as client:
        assert client.post("/predict", json=payload).status_code == 200
        figures = percentiles(lambda: client.post("/predict", json=payload))
    report("over HTTP (uvicorn, keep-alive client)", figures, capsys)
    assert figures["p50_ms"] < 250
