"""Serving benchmark profile: single-row predictions, in the request format of the server under test.

BENCH_FORMAT=ours   -> POST /predict      {"instances": [row]}        (mlpipe.serve)
BENCH_FORMAT=mlflow -> POST /invocations  {"dataframe_records": [row]} (`mlflow models serve`)
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import FastHttpUser, events, task
from payloads import instances, warm_up

FORMAT = os.environ.get("BENCH_FORMAT", "ours")
PATHS = {"ours": "/predict", "mlflow": "/invocations"}
BODY_KEYS = {"ours": "instances", "mlflow": "dataframe_records"}
if FORMAT not in PATHS:
    raise SystemExit(f"BENCH_FORMAT must be one of {sorted(PATHS)}, not {FORMAT!r}")


@events.init.add_listener
def load_payloads(**_: Any) -> None:
    warm_up()


class SingleRowClient(FastHttpUser):
    """Closed-loop client: the next request leaves as soon as the previous one is answered."""

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def predict(self) -> None:
        body = {BODY_KEYS[FORMAT]: instances(1, self.rng)}
        self.client.post(PATHS[FORMAT], json=body, name="predict: 1 row")
