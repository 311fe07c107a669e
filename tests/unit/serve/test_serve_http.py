"""The served app over a real socket, and a hot path that never asks the registry. (Latency
figures come from the serving benchmark, tests/load/bench_serving.py, not from timed tests.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from serve_registry import Registry

from mlpipe.schema import FEATURE_COLUMNS
from mlpipe.serve import create_app

pytestmark = pytest.mark.slow


@pytest.fixture
def payload(frame: pd.DataFrame) -> dict[str, Any]:
    return {"instances": frame[list(FEATURE_COLUMNS)].iloc[:1].to_dict(orient="records")}


class CountingClient:
    """An MlflowClient that counts the registry calls made through it."""

    def __init__(self, uri: str) -> None:
        self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._client, name)


def test_predictions_never_ask_the_registry(champion_v1: Registry, payload: dict[str, Any]) -> None:
    """The champion is resolved at start-up and on reloads only, never per request."""
    client = CountingClient(champion_v1.uri)
    with TestClient(create_app(champion_v1.settings(), client=client)) as http:
        assert http.post("/predict", json=payload).status_code == 200
        before = list(client.calls)
        for _ in range(25):
            assert http.post("/predict", json=payload).status_code == 200
    assert before, "the start-up load went through the injected client"
    assert client.calls == before, f"per-request registry calls: {client.calls[len(before) :]}"


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


def test_the_app_answers_over_real_http(http_url: str, payload: dict[str, Any]) -> None:
    """uvicorn on a socket, a keep-alive client: the same answers as in process."""
    with httpx.Client(base_url=http_url) as client:
        for _ in range(3):  # the keep-alive connection is reused
            response = client.post("/predict", json=payload)
            assert response.status_code == 200, response.text
            assert len(response.json()["predictions"]) == 1
        assert client.get("/ready").status_code == 200
