"""The model server of a running stack: it serves the registry's champion (same predictions as the
registered model's own predict), rejects bad payloads with 422, and Prometheus scrapes it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from stack_clients import poll, prometheus_query
from stack_training import CHAMPION, TrainingRun

from mlpipe.compiled import PARITY_RTOL
from mlpipe.schema import FEATURE_COLUMNS, DiamondFeatures
from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration

DATASET = Path(__file__).resolve().parents[2] / "ai-analysis" / "data" / "diamonds.csv.gz"


def valid_rows(count: int) -> list[dict[str, Any]]:
    """`count` dataset rows the server's schema accepts (the dataset has a few impossible ones)."""
    frame = pd.read_csv(DATASET, usecols=list(FEATURE_COLUMNS)).sample(n=count * 2, random_state=3)
    rows = []
    for record in frame.to_dict(orient="records"):
        try:
            rows.append(DiamondFeatures.model_validate(record).model_dump())
        except ValueError:
            continue
    return rows[:count]


def served_version(model_server: httpx.Client) -> str | None:
    response = model_server.get("/model")
    return str(response.json()["version"]) if response.status_code == 200 else None


def test_model_server_serves_the_champion_with_its_own_predictions(
    first_training: TrainingRun,
    registry: Any,
    endpoints: Endpoints,
    model_server: httpx.Client,
    mlflow_env: None,
) -> None:
    import mlflow

    champion = registry.get_model_version_by_alias(endpoints.model_name, CHAMPION)

    def serves_champion() -> None:
        # ml_training's notify task POSTs /reload; the server's own poll is the fallback.
        assert served_version(model_server) == str(champion.version)

    poll(serves_champion, timeout=90, what=f"the model server to serve v{champion.version}")
    assert model_server.get("/ready").status_code == 200
    model = model_server.get("/model").json()
    assert model["run_id"] == champion.run_id

    rows = valid_rows(64)
    response = model_server.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == str(champion.version)
    own = mlflow.pyfunc.load_model(f"models:/{endpoints.model_name}@{CHAMPION}")
    expected = own.predict(pd.DataFrame(rows, columns=list(FEATURE_COLUMNS)))
    # The server prices with the compiled model, which the parity gate held to the reference.
    assert model["runtime"] == "onnx", model
    np.testing.assert_allclose(body["predictions"], np.asarray(expected), rtol=PARITY_RTOL)
    assert all(math.isfinite(p) and p > 0 for p in body["predictions"])


BAD_PAYLOADS: dict[str, tuple[Any, str]] = {
    "wrong type": ({"carat": "heavy"}, "carat"),
    "out of range": ({"depth": 0}, "depth"),
    "unknown level": ({"cut": "Superb"}, "cut"),
    "unknown field": ({"sparkle": 1}, "sparkle"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_instances_get_422_naming_the_field(model_server: httpx.Client, case: str) -> None:
    change, field = BAD_PAYLOADS[case]
    row = {**valid_rows(1)[0], **change}
    response = model_server.post("/predict", json={"instances": [row]})
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("content", "named"),
    [('{"instances": [', "json"), ('{"instances": []}', "instances"), ("{}", "instances")],
    ids=["malformed json", "empty instances", "missing instances"],
)
def test_malformed_bodies_get_422(model_server: httpx.Client, content: str, named: str) -> None:
    response = model_server.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert named in response.text.lower()


def test_prometheus_scrapes_the_model_server(
    endpoints: Endpoints, model_server: httpx.Client
) -> None:
    if endpoints.prometheus_url is None:
        pytest.skip(f"the {endpoints.backend} stack reports no Prometheus")
    for _ in range(3):
        model_server.get("/health")
    sample = 'model_server_requests_total{endpoint="/health",method="GET",status="200"}'
    served = next(
        float(line.rsplit(" ", 1)[1])
        for line in model_server.get("/metrics").text.splitlines()
        if line.startswith(sample + " ")
    )
    prometheus = endpoints.prometheus_url

    def caught_up() -> float:
        query = 'sum(model_server_requests_total{endpoint="/health",status="200"})'
        result = prometheus_query(prometheus, query)
        assert result, "no model_server_requests_total series in Prometheus yet"
        scraped = float(result[0]["value"][1])
        assert scraped >= served, f"Prometheus has {scraped}, the server counted {served}"
        return scraped

    # One scrape interval (15 s locally) plus slack.
    poll(caught_up, timeout=90, what="Prometheus to scrape the model server's latest counts")
    up = prometheus_query(prometheus, "up")
    down = [s["metric"] for s in up if s["value"][1] != "1"]
    assert not down, f"scrape targets down: {down}"
