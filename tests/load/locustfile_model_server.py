"""Model server load profile: single and batch predictions plus a small share of malformed payloads.

Malformed requests are reported under names starting with "malformed:"; they pass only when the
server answers 422, and the SLO gate leaves them out of the error rate and latency figures.
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import FastHttpUser, between, events, task
from payloads import MALFORMED_PAYLOADS, instances, warm_up

BATCH_SIZE = int(os.environ.get("LOAD_BATCH_SIZE", "32"))


@events.init.add_listener
def load_payloads(**_: Any) -> None:
    warm_up()


class PredictionClient(FastHttpUser):
    """A client of `POST /predict` (host = the model server URL the backend reports)."""

    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task(16)
    def predict_single(self) -> None:
        self.client.post(
            "/predict", json={"instances": instances(1, self.rng)}, name="predict: 1 row"
        )

    @task(3)
    def predict_batch(self) -> None:
        self.client.post(
            "/predict",
            json={"instances": instances(BATCH_SIZE, self.rng)},
            name=f"predict: {BATCH_SIZE} rows",
        )

    @task(1)
    def predict_malformed(self) -> None:
        reason, payload = self.rng.choice(MALFORMED_PAYLOADS)
        with self.client.post(
            "/predict", json=payload, name=f"malformed: {reason}", catch_response=True
        ) as response:
            if response.status_code == 422:
                response.success()
            else:
                response.failure(f"expected 422 for {reason}, got {response.status_code}")
