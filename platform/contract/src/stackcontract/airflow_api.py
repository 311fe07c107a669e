"""The one client of the Airflow 3 REST API v2 in the repo (stackctl, kind/eks diagnostics, the
integration and load tests): a JWT from `POST /auth/token` (simple auth manager), then
`Authorization: Bearer`, renewed once on 401."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FINISHED_STATES = frozenset({"success", "failed"})


class AirflowAPIError(RuntimeError):
    """The Airflow API answered with an error; the message carries method, path and response."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class DagRun:
    """A finished (or timed-out, or cancelled) DAG run and its task instances."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def task_states(self) -> dict[str, str]:
        return {task: str(info.get("state")) for task, info in self.tasks.items()}

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(task for task, state in self.task_states().items() if state == "failed")


class AirflowClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self._token: str | None = None
        # called with every run `wait_for_run` returns (the integration tier times them)
        self.run_observers: list[Callable[[DagRun], None]] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def _check(response: httpx.Response, *, decode: bool = True) -> Any:
        if response.status_code >= 400:
            raise AirflowAPIError(
                f"{response.request.method} {response.request.url.path} -> "
                f"{response.status_code}: {response.text[:500]}",
                response.status_code,
            )
        return response.json() if decode and response.content else None

    def token(self) -> str:
        """Log in (the only place in the repo that does)."""
        response = self.http.post(
            "/auth/token", json={"username": self.username, "password": self.password}
        )
        self._token = str(self._check(response)["access_token"])
        return self._token

    def send(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An authenticated call; logs in on first use and once more on 401 (expired token).
        Error statuses raise `AirflowAPIError`."""
        for attempt in range(2):
            token = self._token or self.token()
            response = self.http.request(
                method,
                path,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            self._check(response, decode=False)
            return response
        raise AirflowAPIError(f"{method} {path}: still 401 after a fresh token", 401)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """`send`, with the JSON body decoded (None for an empty one)."""
        response = self.send(method, path, **kwargs)
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        body = self._check(self.http.get("/api/v2/monitor/health"))
        assert isinstance(body, dict)
        return body

    def dag_ids(self) -> list[str]:
        body = self.request("GET", "/api/v2/dags", params={"limit": 100})
        return sorted(dag["dag_id"] for dag in body["dags"])

    def import_errors(self) -> list[dict[str, Any]]:
        errors = self.request("GET", "/api/v2/importErrors", params={"limit": 100})
        result: list[dict[str, Any]] = errors["import_errors"]
        return result

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause `dag_id` (a paused DAG's runs never start) and trigger a run; its run id."""
        self.unpause(dag_id)
        body = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
        )
        return str(body["dag_run_id"])

    def run_ids(self, dag_id: str, *, newest_first: bool = False, limit: int = 100) -> list[str]:
        """Run ids of a DAG, oldest first (or newest first)."""
        order = "-id" if newest_first else "id"
        body = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": limit, "order_by": order}
        )
        return [run["dag_run_id"] for run in body["dag_runs"]]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        on_poll: Callable[[DagRun], None] | None = None,
        interval: float = 2.0,
    ) -> DagRun:
        """Poll until the run finishes, `timeout` seconds pass (state "timeout") or `cancel` is
        set (state "cancelled")."""
        stop = cancel or threading.Event()
        started = time.monotonic()
        while True:
            run = DagRun(
                dag_id,
                run_id,
                self.run_state(dag_id, run_id),
                time.monotonic() - started,
                self.task_instances(dag_id, run_id),
            )
            if on_poll is not None:
                on_poll(run)
            if run.state in FINISHED_STATES or stop.is_set() or run.seconds >= timeout:
                break
            stop.wait(interval)
        if run.state not in FINISHED_STATES:
            run.state = "cancelled" if stop.is_set() else "timeout"
        for observer in self.run_observers:
            observer(run)
        return run

    def wait_for_dag(self, dag_id: str, *, timeout: float, interval: float = 2.0) -> None:
        """Until the dag-processor has parsed `dag_id` (the API answers 404 before)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request("GET", f"/api/v2/dags/{dag_id}")
                return
            except (AirflowAPIError, httpx.HTTPError) as error:
                if time.monotonic() >= deadline:
                    raise AirflowAPIError(
                        f"DAG {dag_id} did not appear within {timeout:.0f}s: {error}"
                    ) from error
            time.sleep(interval)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """A task attempt's log as text (Airflow 3 returns structured events as JSON)."""
        body = self.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        content = body.get("content", "") if isinstance(body, dict) else body
        if isinstance(content, str):
            return content
        lines = []
        for event in content or []:
            if isinstance(event, dict):
                text = str(event.get("event", ""))
                extra = {k: v for k, v in event.items() if k not in {"event", "timestamp"}}
                lines.append(f"{event.get('timestamp', '')} {text} {extra if extra else ''}")
            else:
                lines.append(str(event))
        return "\n".join(lines)

    def explain(self, run: DagRun, *, tail: int = 30) -> str:
        """Task states plus the log tails of the tasks that did not succeed, for failure messages."""
        lines = [f"{run.dag_id} run {run.run_id}: {run.state} after {run.seconds:.0f}s"]
        for task, info in sorted(run.tasks.items()):
            lines.append(f"  {task}: {info.get('state')} (try {info.get('try_number')})")
        for task, info in sorted(run.tasks.items()):
            if info.get("state") in {"success", "skipped", None}:
                continue
            try_number = int(info.get("try_number") or 1)
            try:
                text = self.task_log(run.dag_id, run.run_id, task, try_number)
            except (AirflowAPIError, httpx.HTTPError) as error:
                text = f"(could not fetch the log: {error})"
            last = "\n".join(text.splitlines()[-tail:])
            lines.append(f"--- {task} try {try_number}, last {tail} log lines ---\n{last}")
        return "\n".join(lines)
