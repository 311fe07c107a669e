"""The model server against a real registry: predictions, payload validation, readiness, reloads
and metrics, through FastAPI's TestClient (the app's lifespan runs: the champion is loaded)."""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_registry import (
    CHAMPION,
    MODEL_NAME,
    RELOAD_AUTH,
    RELOAD_TOKEN,
    Registry,
    register_version,
)

from mlpipe.compiled import PARITY_RTOL
from mlpipe.schema import FEATURE_COLUMNS, MAX_BATCH_ROWS
from mlpipe.serve import NO_CHAMPION_MESSAGE, create_app


def rows(frame: pd.DataFrame, count: int, start: int = 0) -> list[dict[str, Any]]:
    return frame[list(FEATURE_COLUMNS)].iloc[start : start + count].to_dict(orient="records")


def metric_value(text: str, sample: str) -> float:
    """Value of one exposition line, e.g. `model_server_predicted_rows_total`; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def client(champion_v1: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(champion_v1.settings())) as test_client:
        yield test_client


def test_predictions_equal_the_registered_models_own(
    client: TestClient, champion_v1: Registry, frame: pd.DataFrame
) -> None:
    instances = rows(frame, 25, start=100)
    response = client.post("/predict", json={"instances": instances})

    assert response.status_code == 200, response.text
    body = response.json()
    expected = champion_v1.predict_with_champion(pd.DataFrame(instances))
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9)
    assert body["model_name"] == MODEL_NAME
    assert body["model_version"] == champion_v1.versions[0]


def test_single_row_prediction_matches_and_batch_order_is_kept(
    client: TestClient, champion_v1: Registry, frame: pd.DataFrame
) -> None:
    instances = rows(frame, 3, start=7)
    batch = client.post("/predict", json={"instances": instances}).json()["predictions"]
    singles = [
        client.post("/predict", json={"instances": [row]}).json()["predictions"][0]
        for row in instances
    ]
    np.testing.assert_allclose(singles, batch, rtol=1e-9)


def _valid_row(frame: pd.DataFrame) -> dict[str, Any]:
    return rows(frame, 1)[0]


BAD_PAYLOADS: dict[str, tuple[Any, str]] = {
    # case: (body (str = raw bytes sent as JSON), text the error must name)
    "malformed json": ('{"instances": [', "json"),
    "not an object": ("[1, 2, 3]", "body"),
    "missing instances": ("{}", "instances"),
    "instances not a list": ({"instances": "all of them"}, "instances"),
    "empty instances": ({"instances": []}, "instances"),
    "unknown top-level field": ({"instances": None, "extra": 1}, "extra"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_request_shapes_get_422_naming_the_problem(client: TestClient, case: str) -> None:
    payload, named = BAD_PAYLOADS[case]
    content = payload if isinstance(payload, str) else json.dumps(payload)
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert named in response.text.lower()
    assert response.json()["hint"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("carat", "heavy"),  # wrong type
        ("carat", 0),  # out of range (gt=0)
        ("carat", 11.0),  # out of range (le=10)
        ("x", 0.0),  # a zero dimension
        ("cut", "Superb"),  # not an ordinal level
        ("color", 3),  # wrong type
        ("depth", None),  # null
        ("sparkle", 1.0),  # unknown field
    ],
)
def test_bad_instance_values_get_422_naming_the_field(
    client: TestClient, frame: pd.DataFrame, field: str, value: Any
) -> None:
    good = _valid_row(frame)
    bad = {**good, field: value}
    response = client.post("/predict", json={"instances": [good, bad]})

    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "instances", 1, field] in locations
    assert f"instances.1.{field}" in response.json()["message"]


def test_missing_field_gets_422_naming_it(client: TestClient, frame: pd.DataFrame) -> None:
    row = _valid_row(frame)
    del row["clarity"]
    response = client.post("/predict", json={"instances": [row]})
    assert response.status_code == 422
    assert ["body", "instances", 0, "clarity"] in [e["loc"] for e in response.json()["detail"]]


def test_more_than_max_batch_rows_gets_422_without_echoing_the_batch(
    client: TestClient, frame: pd.DataFrame
) -> None:
    instances = [_valid_row(frame)] * (MAX_BATCH_ROWS + 1)
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 422
    assert "instances" in response.json()["message"]
    assert str(MAX_BATCH_ROWS) in response.json()["message"]
    assert len(response.content) < 2000


def test_exactly_max_batch_rows_is_accepted(client: TestClient, frame: pd.DataFrame) -> None:
    instances = rows(frame, MAX_BATCH_ROWS)
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_BATCH_ROWS


@pytest.fixture
def compiled_champion(registry: Registry, frame: pd.DataFrame) -> Iterator[tuple[Registry, str]]:
    """`champion` on a version that passed the parity gate (its compiled model is served)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = register_version(registry.client, frame, max_iter=30, compiled=True)
    registry.point_champion_at(version)
    yield registry, version
    registry.point_champion_at(registry.versions[0])


def test_the_compiled_champion_is_served_and_prices_like_the_reference(
    compiled_champion: tuple[Registry, str], frame: pd.DataFrame
) -> None:
    registry, version = compiled_champion
    with TestClient(create_app(registry.settings())) as client:
        assert client.get("/model").json()["runtime"] == "onnx"
        instances = rows(frame, 40, start=300)
        response = client.post("/predict", json={"instances": instances})
        single = client.post("/predict", json={"instances": instances[:1]})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == version
    expected = registry.predict_with_champion(pd.DataFrame(instances))
    np.testing.assert_allclose(response.json()["predictions"], expected, rtol=PARITY_RTOL)
    assert single.json()["predictions"] == response.json()["predictions"][:1]


def test_health_ready_and_model_with_a_champion(client: TestClient, champion_v1: Registry) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    model = client.get("/model").json()
    assert model["name"] == MODEL_NAME
    assert model["version"] == champion_v1.versions[0]
    run_id = champion_v1.client.get_model_version(MODEL_NAME, champion_v1.versions[0]).run_id
    assert model["run_id"] == run_id
    assert model["runtime"] == "sklearn", "registered without a compiled model: the reference"


def test_without_champion_ready_and_predict_answer_503_until_one_is_set(
    registry: Registry, frame: pd.DataFrame
) -> None:
    alias = "not-yet"  # an alias training has not set: same state as a fresh registry
    app = create_app(registry.settings(champion_alias=alias))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert NO_CHAMPION_MESSAGE in ready.text
        predict = client.post("/predict", json={"instances": rows(frame, 1)})
        assert predict.status_code == 503
        assert predict.json()["detail"] == NO_CHAMPION_MESSAGE
        assert client.post("/reload", headers=RELOAD_AUTH).status_code == 503
        # Payload validation still applies without a model.
        assert client.post("/predict", json={"instances": []}).status_code == 422

        registry.client.set_registered_model_alias(MODEL_NAME, alias, registry.versions[1])
        try:
            assert client.post("/reload", headers=RELOAD_AUTH).json() == {
                "model_version": registry.versions[1],
                "changed": True,
            }
            assert client.get("/ready").status_code == 200
            assert client.post("/predict", json={"instances": rows(frame, 1)}).status_code == 200
        finally:
            registry.client.delete_registered_model_alias(MODEL_NAME, alias)


def test_unknown_registered_model_is_no_champion_not_an_error(registry: Registry) -> None:
    with TestClient(create_app(registry.settings(model_name="never-trained"))) as client:
        assert client.get("/ready").status_code == 503
        metrics = client.get("/metrics").text
    assert metric_value(metrics, 'model_server_model_reloads_total{outcome="failure"}') == 0


def test_reload_swaps_only_when_the_alias_moves(
    client: TestClient, champion_v1: Registry, frame: pd.DataFrame
) -> None:
    first, second = champion_v1.versions
    assert client.post("/reload", headers=RELOAD_AUTH).json() == {
        "model_version": first,
        "changed": False,
    }

    champion_v1.point_champion_at(second)
    assert client.post("/reload", headers=RELOAD_AUTH).json() == {
        "model_version": second,
        "changed": True,
    }
    assert client.get("/model").json()["version"] == second
    instances = rows(frame, 10, start=50)
    served = client.post("/predict", json={"instances": instances}).json()
    assert served["model_version"] == second
    expected = champion_v1.predict_with_champion(pd.DataFrame(instances))
    np.testing.assert_allclose(served["predictions"], expected, rtol=1e-9)

    assert client.post("/reload", headers=RELOAD_AUTH).json() == {
        "model_version": second,
        "changed": False,
    }
    metrics = client.get("/metrics").text
    assert metric_value(metrics, 'model_server_model_reloads_total{outcome="success"}') == 2
    assert metric_value(metrics, 'model_server_model_reloads_total{outcome="unchanged"}') == 2
    info = f'model_server_model_info{{model_name="{MODEL_NAME}",model_version="{second}"'
    assert info in metrics
    assert f'model_version="{first}"' not in metrics  # the old version is no longer reported


def test_failed_reload_keeps_serving_the_loaded_model(
    champion_v1: Registry, frame: pd.DataFrame
) -> None:
    from mlpipe.serve import registry_loader

    load = registry_loader(champion_v1.uri)
    loads: list[str] = []

    def loader(uri: str) -> Any:
        loads.append(uri)
        if len(loads) > 1:
            raise OSError("artifact store unreachable")
        return load(uri)

    with TestClient(create_app(champion_v1.settings(), loader=loader)) as client:
        champion_v1.point_champion_at(champion_v1.versions[1])
        response = client.post("/reload", headers=RELOAD_AUTH)
        assert response.status_code == 503
        assert "artifact store unreachable" in response.text
        assert f"still serving version {champion_v1.versions[0]}" in response.text
        predict = client.post("/predict", json={"instances": rows(frame, 1)})
        assert predict.status_code == 200
        assert predict.json()["model_version"] == champion_v1.versions[0]
        metrics = client.get("/metrics").text
    assert metric_value(metrics, 'model_server_model_reloads_total{outcome="failure"}') == 1


def test_background_poll_follows_the_alias(champion_v1: Registry) -> None:
    settings = champion_v1.settings(reload_interval_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        assert client.get("/model").json()["version"] == champion_v1.versions[0]
        champion_v1.point_champion_at(champion_v1.versions[1])
        deadline = time.monotonic() + 20
        while client.get("/model").json()["version"] != champion_v1.versions[1]:
            assert time.monotonic() < deadline, "the poller never picked up the moved alias"
            time.sleep(0.1)


def test_predictions_never_fail_while_the_model_is_swapped(
    client: TestClient, champion_v1: Registry, frame: pd.DataFrame
) -> None:
    payload = {"instances": rows(frame, 5)}
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(client.post("/predict", json=payload).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        first, second = champion_v1.versions
        for version in (second, first, second, first):
            champion_v1.point_champion_at(version)
            assert client.post("/reload", headers=RELOAD_AUTH).json()["changed"] is True
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert statuses
    assert set(statuses) == {200}


def test_metrics_count_requests_rows_and_invalid_payloads(
    client: TestClient, frame: pd.DataFrame
) -> None:
    client.post("/predict", json={"instances": rows(frame, 4)})
    client.post("/predict", json={"instances": rows(frame, 1)})
    client.post("/predict", json={"instances": []})
    client.get("/no-such-page")
    text = client.get("/metrics").text

    predict_ok = 'model_server_requests_total{endpoint="/predict",method="POST",status="200"}'
    predict_bad = 'model_server_requests_total{endpoint="/predict",method="POST",status="422"}'
    assert metric_value(text, predict_ok) == 2
    assert metric_value(text, predict_bad) == 1
    assert (
        metric_value(
            text, 'model_server_requests_total{endpoint="other",method="GET",status="404"}'
        )
        == 1
    )
    assert metric_value(text, "model_server_predicted_rows_total") == 5
    assert metric_value(text, 'model_server_invalid_payloads_total{endpoint="/predict"}') == 1
    count = metric_value(text, 'model_server_request_duration_seconds_count{endpoint="/predict"}')
    assert count == 3
    assert re.search(
        r'model_server_request_duration_seconds_bucket\{endpoint="/predict",le="0.005"\}', text
    )
    assert f'model_server_model_info{{model_name="{MODEL_NAME}"' in text
    assert CHAMPION in client.get("/model").json()["alias"]


def test_the_app_finds_its_registry_without_the_process_wide_tracking_uri(
    champion_v1: Registry, frame: pd.DataFrame
) -> None:
    """The server carries its tracking URI itself: with MLflow's global pointed elsewhere it still
    loads and serves the champion, and leaves the global as it found it."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    elsewhere = "sqlite:////nonexistent/elsewhere.db"
    with _use_tracking_uri(elsewhere):
        with TestClient(create_app(champion_v1.settings())) as client:
            response = client.post("/predict", json={"instances": rows(frame, 2)})
        assert response.status_code == 200, response.text
        assert mlflow.get_tracking_uri() == elsewhere


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "needs the header 'Authorization: Bearer <MODEL_SERVER_RELOAD_TOKEN>'"),
        ({"Authorization": "Bearer wrong"}, 401, "needs the header"),
        ({"Authorization": f"Basic {RELOAD_TOKEN}"}, 401, "needs the header"),
    ],
    ids=["no header", "wrong token", "not a bearer token"],
)
def test_reload_refuses_callers_without_the_token(
    client: TestClient, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/reload", headers=headers)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert client.post("/reload", headers=RELOAD_AUTH).status_code == 200  # the token works


def test_reload_is_disabled_without_a_configured_token(champion_v1: Registry) -> None:
    with TestClient(create_app(champion_v1.settings(reload_token=None))) as client:
        for headers in ({}, RELOAD_AUTH):
            response = client.post("/reload", headers=headers)
            assert response.status_code == 403
            assert "no MODEL_SERVER_RELOAD_TOKEN configured" in response.json()["detail"]
        assert client.get("/ready").status_code == 200  # the start-up load needs no token
