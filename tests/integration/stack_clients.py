"""Clients the integration tests use to talk to a stack, built only from its `Endpoints`:
Airflow REST API v2 (token auth), S3 (boto3), MLflow, Prometheus."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import httpx
from botocore.config import Config
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from stackctl.backend import Endpoints

T = TypeVar("T")
FINISHED = frozenset({"success", "failed"})


class AirflowError(RuntimeError):
    """The Airflow API answered with an error status."""


@dataclass
class DagRun:
    """A finished (or timed-out) DAG run and what its tasks did."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def task_states(self) -> dict[str, str]:
        return {task: str(info.get("state")) for task, info in self.tasks.items()}


class AirflowClient:
    """Airflow 3 REST API v2: a JWT from `POST /auth/token`, then `Authorization: Bearer`."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=30)
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    def _login(self) -> str:
        response = self.http.post(
            "/auth/token", json={"username": self.username, "password": self.password}
        )
        if response.status_code >= 400:
            raise AirflowError(f"POST /auth/token -> {response.status_code}: {response.text[:300]}")
        token = str(response.json()["access_token"])
        self._token = token
        return token

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        """An authenticated call; logs in on first use and once more on 401 (expired token)."""
        for attempt in range(2):
            token = self._token or self._login()
            response = self.http.request(
                method,
                path,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            if response.status_code >= 400:
                raise AirflowError(
                    f"{method} {path} -> {response.status_code}: {response.text[:500]}"
                )
            return response.json() if response.content else None
        raise AirflowError(f"{method} {path}: still 401 after a fresh token")

    def wait_for_dag(self, dag_id: str, *, timeout: float) -> None:
        """Until the DAG processor has parsed `dag_id` (the API answers 404 before)."""
        poll(
            lambda: self.request("GET", f"/api/v2/dags/{dag_id}"),
            timeout=timeout,
            what=f"DAG {dag_id} to appear in Airflow",
            retry_on=(AirflowError, httpx.HTTPError),
        )

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        body = self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
        )
        return str(body["dag_run_id"])

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
        on_poll: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> DagRun:
        """Poll until the run finishes or `timeout` passes (state "timeout" then)."""
        started = time.monotonic()
        state = "queued"
        while time.monotonic() - started < timeout:
            state = self.run_state(dag_id, run_id)
            if on_poll is not None:
                on_poll(self.task_instances(dag_id, run_id))
            if state in FINISHED:
                break
            time.sleep(2)
        else:
            state = "timeout"
        return DagRun(
            dag_id, run_id, state, time.monotonic() - started, self.task_instances(dag_id, run_id)
        )

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
            except (AirflowError, httpx.HTTPError) as error:
                text = f"(could not fetch the log: {error})"
            last = "\n".join(text.splitlines()[-tail:])
            lines.append(f"--- {task} try {try_number}, last {tail} log lines ---\n{last}")
        return "\n".join(lines)


def poll(
    call: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """`call()` until it stops raising one of `retry_on`, for at most `timeout` seconds."""
    retrying = retry(
        retry=retry_if_exception_type(retry_on),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        reraise=True,
    )
    try:
        return retrying(call)()
    except retry_on as error:
        raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}: {error}") from error


def s3_client(endpoints: Endpoints) -> Any:
    """boto3 S3 client for the stack's object store (path style; relaxed checksums off AWS)."""
    custom = "amazonaws.com" not in endpoints.s3_url
    config = Config(
        s3={"addressing_style": "path"} if custom else {},
        request_checksum_calculation="when_required" if custom else "when_supported",
        response_checksum_validation="when_required" if custom else "when_supported",
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoints.s3_url if custom else None,
        aws_access_key_id=endpoints.s3_access_key,
        aws_secret_access_key=endpoints.s3_secret_key.get_secret_value(),
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        config=config,
    )


def mlflow_environment(endpoints: Endpoints) -> dict[str, str]:
    """What MLflow's client needs to reach the tracking server and (if not proxied) S3."""
    return {
        "MLFLOW_TRACKING_URI": endpoints.mlflow_url,
        "MLFLOW_S3_ENDPOINT_URL": endpoints.s3_url,
        "AWS_ACCESS_KEY_ID": endpoints.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": endpoints.s3_secret_key.get_secret_value(),
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def listing(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """key -> ETag of everything under `prefix`."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def prometheus_query(url: str, query: str) -> list[dict[str, Any]]:
    """Instant query result vector (`/api/v1/query`)."""
    response = httpx.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
