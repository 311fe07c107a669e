"""Serving benchmark profile: BENCH_ROWS rows per request (default 1), in the request format of
the server under test.

BENCH_FORMAT=ours     -> POST /predict      {"instances": [row]}        (mlpipe.serve)
BENCH_FORMAT=mlflow   -> POST /invocations  {"dataframe_records": [row]} (`mlflow models serve`)
BENCH_FORMAT=mlserver -> POST /v2/models/$BENCH_MODEL_NAME/infer, the V2 inference protocol with
                         one input per column and the pandas codec (MLServer's sklearn runtime)
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import FastHttpUser, events, task
from payloads import instances, warm_up

FORMAT = os.environ.get("BENCH_FORMAT", "ours")
MODEL_NAME = os.environ.get("BENCH_MODEL_NAME", "diamond-price")
ROWS = int(os.environ.get("BENCH_ROWS", "1"))
PATHS = {"ours": "/predict", "mlflow": "/invocations", "mlserver": f"/v2/models/{MODEL_NAME}/infer"}
if FORMAT not in PATHS:
    raise SystemExit(f"BENCH_FORMAT must be one of {sorted(PATHS)}, not {FORMAT!r}")


def v2_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows as a V2 inference request MLServer decodes into a DataFrame."""
    inputs = [
        {
            "name": column,
            "shape": [len(rows)],
            "datatype": "BYTES" if isinstance(value, str) else "FP64",
            "data": [row[column] for row in rows],
        }
        for column, value in rows[0].items()
    ]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def request_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if FORMAT == "mlserver":
        return v2_request(rows)
    return {"dataframe_records" if FORMAT == "mlflow" else "instances": rows}


@events.init.add_listener
def load_payloads(**_: Any) -> None:
    warm_up()


class SingleRowClient(FastHttpUser):
    """Closed-loop client: the next request leaves as soon as the previous one is answered."""

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def predict(self) -> None:
        body = request_body(instances(ROWS, self.rng))
        self.client.post(PATHS[FORMAT], json=body, name=f"predict: {ROWS} rows")
