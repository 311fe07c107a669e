"""Control-plane load profile, at a low rate: Airflow REST API v2 (list, read, a capped number of
triggers) and MLflow search. Hosts and credentials come from the environment the runner sets
from the backend's endpoints: AIRFLOW_URL, AIRFLOW_USERNAME, AIRFLOW_PASSWORD, MLFLOW_URL and
MLflow's basic-auth user, MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""

from __future__ import annotations

import base64
import os
import threading

from locust import FastHttpUser, between, task

# Triggering runs real training work; a load run may start at most this many DAG runs.
MAX_TRIGGERS = int(os.environ.get("LOAD_MAX_TRIGGERS", "1"))
TRIGGER_DAG = os.environ.get("LOAD_TRIGGER_DAG", "ml_monitoring")
MLFLOW_URL = os.environ.get("MLFLOW_URL", "").rstrip("/")
_triggers = {"count": 0}
_triggers_lock = threading.Lock()


def _claim_trigger() -> bool:
    with _triggers_lock:
        if _triggers["count"] >= MAX_TRIGGERS:
            return False
        _triggers["count"] += 1
        return True


class AirflowApiClient(FastHttpUser):
    """A dashboard-like client of the Airflow REST API v2 with token auth."""

    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        response = self.client.post(
            "/auth/token",
            json={
                "username": os.environ["AIRFLOW_USERNAME"],
                "password": os.environ["AIRFLOW_PASSWORD"],
            },
            name="airflow: token",
        )
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    @task(5)
    def list_dags(self) -> None:
        self.client.get("/api/v2/dags", headers=self.headers, name="airflow: list dags")

    @task(3)
    def list_runs(self) -> None:
        self.client.get(
            "/api/v2/dags/ml_training/dagRuns?limit=20&order_by=-logical_date",
            headers=self.headers,
            name="airflow: list runs",
        )

    @task(1)
    def trigger(self) -> None:
        if not _claim_trigger():
            return
        self.client.post(
            f"/api/v2/dags/{TRIGGER_DAG}/dagRuns",
            json={"logical_date": None},
            headers=self.headers,
            name="airflow: trigger",
        )


def mlflow_headers() -> dict[str, str]:
    """Basic auth for MLflow's auth app, when the stack runs it."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not user or not password:
        return {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class MlflowApiClient(FastHttpUser):
    """A client searching MLflow runs and registered models. Locust's --host (the profile's
    target, Airflow) applies to every user class, so MLflow is addressed by absolute URL."""

    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        self.headers = mlflow_headers()

    @task(2)
    def search_runs(self) -> None:
        self.client.post(
            f"{MLFLOW_URL}/api/2.0/mlflow/experiments/search",
            json={"max_results": 10},
            headers=self.headers,
            name="mlflow: search experiments",
        )

    @task(2)
    def search_models(self) -> None:
        self.client.get(
            f"{MLFLOW_URL}/api/2.0/mlflow/registered-models/search?max_results=10",
            headers=self.headers,
            name="mlflow: search models",
        )

    @task(1)
    def model_versions(self) -> None:
        self.client.get(
            f"{MLFLOW_URL}/api/2.0/mlflow/model-versions/search?max_results=20",
            headers=self.headers,
            name="mlflow: search versions",
        )
