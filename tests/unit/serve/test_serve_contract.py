"""The /predict contract: strict types, finite numbers, a body limit answered with 413, and an
OpenAPI document that resolves and describes every answer; then a bounded schemathesis run
against the app in process, which must find no 5xx and no answer that breaks the document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from serve_registry import Registry

from mlpipe.schema import FEATURE_COLUMNS
from mlpipe.serve import create_app


@pytest.fixture
def row(frame: pd.DataFrame) -> dict[str, Any]:
    return frame[list(FEATURE_COLUMNS)].iloc[0].to_dict()


@pytest.fixture
def client(champion_v1: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(champion_v1.settings(max_body_bytes=4096))) as test_client:
        yield test_client


def raw_row(row: dict[str, Any], carat: str) -> str:
    """One instance as JSON text with ``carat`` spliced in verbatim (NaN is not JSON)."""
    text = json.dumps({**row, "carat": "@@"})
    return '{"instances": [' + text.replace('"@@"', carat) + "]}"


@pytest.mark.parametrize(
    ("carat", "message"),
    [
        ("true", "Input should be a valid number"),
        ('"0.5"', "Input should be a valid number"),
        ("NaN", "Input should be a finite number"),
        ("Infinity", "Input should be a finite number"),
        ("-Infinity", "Input should be a finite number"),
    ],
)
def test_numbers_are_strict_and_finite(
    client: TestClient, row: dict[str, Any], carat: str, message: str
) -> None:
    response = client.post(
        "/predict", content=raw_row(row, carat), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert f"body.instances.0.carat: {message}" in response.json()["message"]


def test_an_integer_is_still_a_number(client: TestClient, row: dict[str, Any]) -> None:
    response = client.post("/predict", content=raw_row(row, "1"))
    assert response.status_code == 200, response.text


def test_a_body_over_the_limit_is_413_by_its_length(
    client: TestClient, row: dict[str, Any]
) -> None:
    body = json.dumps({"instances": [row] * 40})  # ~6 kB > 4096
    response = client.post("/predict", content=body)
    assert response.status_code == 413
    assert "MODEL_SERVER_MAX_BODY_BYTES" in response.json()["detail"]


def test_a_streamed_body_over_the_limit_is_413_without_a_length(
    client: TestClient, row: dict[str, Any]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/predict", content=chunks())
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}


def test_an_oversized_stream_is_not_read_to_its_end() -> None:
    """Reading stops at the first chunk past the limit (the test client buffers whole bodies,
    so this drives the reader with an endless ASGI stream)."""
    import anyio
    from starlette.requests import Request

    from mlpipe.serve import _body_within

    received: list[int] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b" " * 1024, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert anyio.run(_body_within, request, 4096) is None
    assert len(received) == 5


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_openapi_document_resolves_and_describes_every_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for ref in set(_refs(document)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, f"unresolvable {ref}"
    predict = document["paths"]["/predict"]["post"]
    assert {"200", "413", "422", "503"} <= set(predict["responses"])
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert all(kind.startswith("text/plain") for kind in metrics), metrics


@pytest.fixture
def served_app(champion_v1: Registry) -> FastAPI:
    """The app as deployed (default body limit: a MAX_BATCH_ROWS+1 batch still gets its 422),
    with the champion loaded (schemathesis calls it without running its lifespan)."""
    app = create_app(champion_v1.settings())
    app.state.watcher.refresh()
    return app


def test_fuzzed_requests_get_no_5xx_and_follow_the_document(served_app: FastAPI) -> None:
    """Every operation, positive and negative examples, checked against the document."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", served_app)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/reload":
            continue  # reloading is not input handling; test_serve covers it

        # Negative examples need something to break: only operations that take a body.
        modes = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if operation.body else [])]
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                case.call_and_validate()

            check()
            checked.append(f"{operation.method.upper()} {operation.path} {mode.value}")
    assert {"POST /predict positive", "POST /predict negative"} <= set(checked), checked


def test_serving_imports_neither_pandas_nor_scikit_learn() -> None:
    """The model-server image installs mlpipe without its `train` extra: the server and its
    loader must start without pandas, scikit-learn or the converter (a fresh interpreter)."""
    import subprocess
    import sys

    heavy = ("pandas", "sklearn", "scipy", "pyarrow", "skl2onnx", "onnx", "pandera", "skops")
    probe = (
        "import sys, mlpipe.serve, mlpipe.served; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"serving imports {done.stdout.strip()}"
