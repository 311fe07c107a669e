"""Clients the integration tests use to talk to a stack, built only from its `Endpoints`:
Airflow REST API v2 and S3 (the contract's clients), MLflow, Prometheus."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from stackcontract.airflow_api import AirflowAPIError as AirflowError
from stackcontract.airflow_api import AirflowClient, DagRun
from stackcontract.endpoints import Endpoints

__all__ = ["AirflowClient", "AirflowError", "DagRun", "poll"]

T = TypeVar("T")


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
    """boto3 S3 client for the stack's object store (the contract's factory)."""
    return endpoints.s3_client(os.environ.get("S3_REGION", "us-east-1"))


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
        # Artifacts through the tracking server, not presigned S3 URLs: those name the object
        # store by its in-network address (http://s3:8333 on Compose and Kubernetes), which a
        # client on the host cannot resolve.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        # MLflow's auth app: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD
        **endpoints.mlflow_client_env(),
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
