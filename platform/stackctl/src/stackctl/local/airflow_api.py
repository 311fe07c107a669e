"""A small client for the Airflow 3 REST API v2 (token auth from the simple auth manager)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

FINISHED_STATES = frozenset({"success", "failed"})


class AirflowAPIError(RuntimeError):
    """The Airflow API answered with an error; the message carries the response."""


@dataclass
class DagRunOutcome:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    failed_tasks: list[str]


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token: str | None = None

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise AirflowAPIError(
                f"{response.request.method} {response.request.url.path} -> "
                f"{response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    def token(self) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        token = self._check(response)["access_token"]
        assert isinstance(token, str)
        self._token = token
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated call; fetches a token first and renews it once on 401."""
        for attempt in range(2):
            token = self._token or self.token()
            response = httpx.request(
                method,
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
                **kwargs,
            )
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            return self._check(response)
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
        body = self._check(response)
        assert isinstance(body, dict)
        return body

    def dag_ids(self) -> list[str]:
        body = self.request("GET", "/api/v2/dags", params={"limit": 100})
        return sorted(dag["dag_id"] for dag in body["dags"])

    def import_errors(self) -> list[dict[str, Any]]:
        body = self.request("GET", "/api/v2/importErrors", params={"limit": 100})
        errors = body["import_errors"]
        assert isinstance(errors, list)
        return errors

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
        )
        run_id = body["dag_run_id"]
        assert isinstance(run_id, str)
        return run_id

    def run_ids(self, dag_id: str) -> list[str]:
        """Run ids of a DAG, oldest first."""
        body = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "id"}
        )
        return [run["dag_run_id"] for run in body["dag_runs"]]

    def run_state(self, dag_id: str, run_id: str) -> str:
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return str(body["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: str(ti["state"]) for ti in body["task_instances"]}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        budget: float,
        cancel: threading.Event,
        on_poll: Any = None,
        interval: float = 3.0,
    ) -> DagRunOutcome:
        """Poll a dag run until it finishes or `budget` seconds pass (state 'timeout')."""
        started = time.monotonic()
        state = "queued"
        while time.monotonic() - started < budget and not cancel.is_set():
            state = self.run_state(dag_id, run_id)
            if on_poll is not None:
                on_poll(state, self.task_states(dag_id, run_id))
            if state in FINISHED_STATES:
                break
            cancel.wait(interval)
        else:
            state = "cancelled" if cancel.is_set() else "timeout"
        failed = [
            task
            for task, task_state in self.task_states(dag_id, run_id).items()
            if task_state == "failed"
        ]
        return DagRunOutcome(dag_id, run_id, state, time.monotonic() - started, failed)
