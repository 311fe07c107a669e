"""A throw-away stack for running the DAG tasks' logic: moto S3 server + MLflow on SQLite.

The tasks read everything the way they do under Airflow: `AIRFLOW_CONN_MLOPS_S3` and
`AIRFLOW_VAR_*` from the environment (MLflow falls back to `MLFLOW_TRACKING_URI` because a SQLite
store cannot be written as an http connection).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ACCESS_KEY = "task-tests-key"
SECRET_KEY = "task-tests-secret"
SMALL_ROWS = 3000  # enough for a meaningful model, small enough to train in a second or two


@dataclass
class TaskStack:
    """Endpoints of the throw-away stack and handy clients."""

    s3_endpoint: str
    bucket: str
    mlflow_uri: str
    s3: Any
    landing: dict[str, bytes] = field(default_factory=dict)

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix` in the bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def put_landing(self, name: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"landing/{name}", Body=data)
        self.landing[name] = data

    def mlflow(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri)


def s3_client(endpoint: str) -> Any:
    from stackcontract.s3 import s3_client as contract_client

    return contract_client(
        endpoint_url=endpoint, region="us-east-1", access_key=ACCESS_KEY, secret_key=SECRET_KEY
    )


def small_batches() -> list[tuple[str, bytes]]:
    """Three dated batches (the first one bigger) cut from a sample of the committed dataset."""
    from mlpipe.data import csv_gz_bytes, load_dataset, split_batches

    sample = load_dataset().sample(SMALL_ROWS, random_state=7).reset_index(drop=True)
    return [
        (name, csv_gz_bytes(chunk))
        for name, chunk in split_batches(sample, n_batches=3, first_fraction=0.5)
    ]


def bad_batch_missing_price() -> bytes:
    from mlpipe.data import csv_gz_bytes, load_dataset

    return csv_gz_bytes(load_dataset().head(200).drop(columns=["price"]))


def bad_batch_mostly_garbage() -> bytes:
    """Half of the rows have an impossible zero carat: above MAX_QUARANTINE_FRACTION (20 %)."""
    from mlpipe.data import csv_gz_bytes, load_dataset

    frame = load_dataset().sample(400, random_state=3).reset_index(drop=True)
    frame.loc[frame.index % 2 == 0, "carat"] = 0.0
    return csv_gz_bytes(frame)


def batch_name(day: date) -> str:
    from mlpipe.data import batch_name as name

    return name(day)


@contextmanager
def moto_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def point_airflow_env_at(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str, mlflow_uri: str
) -> None:
    """The environment a backend gives Airflow, aimed at the throw-away stack."""
    connection = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_S3", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_VAR_S3_BUCKET", bucket)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    for name in ("AIRFLOW_CONN_MLOPS_MLFLOW", "AIRFLOW_CONN_MLOPS_MODEL_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_PUSHGATEWAY", raising=False)
    # mlpipe exports these with setdefault for MLflow's artifact client: pin them to this stack
    # (and let monkeypatch restore them) so no earlier test's endpoint leaks in.
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    for name in ("S3_ENDPOINT_URL", "S3_BUCKET", "PUSHGATEWAY_URL", "MODEL_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)


def create_experiment(mlflow_uri: str, bucket: str) -> None:
    """The experiment with artifacts in the (moto) bucket, as the real stack configures MLflow."""
    from mlflow import MlflowClient

    from mlpipe.config import load_settings

    name = load_settings().mlflow_experiment
    client = MlflowClient(tracking_uri=mlflow_uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=f"s3://{bucket}/mlflow-artifacts")


class RecordingHandler(BaseHTTPRequestHandler):
    """Answers POST /reload like the model server and PUT like a Pushgateway; records requests."""

    requests: list[tuple[str, str, bytes, str]]

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        authorization = self.headers.get("Authorization") or ""
        self.server.requests.append((self.command, self.path, body, authorization))  # type: ignore[attr-defined]
        body = json.dumps({"model_version": "1", "changed": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = _record
    do_PUT = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def recording_server() -> Iterator[tuple[str, list[tuple[str, str, bytes, str]]]]:
    """A server recording (method, path, body, Authorization header) of every request."""
    server = HTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def http_connection(url: str, password: str | None = None) -> str:
    """AIRFLOW_CONN_* JSON of an http service at `url` (http://host:port), with a password."""
    scheme, rest = url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    fields = {"conn_type": "http", "host": host, "port": int(port), "schema": scheme}
    return json.dumps(fields | ({"password": password} if password else {}))


def run_task(dag: Any, task_id: str, *args: Any, **context: Any) -> Any:
    """Call a @task's function as the worker would, with explicit context arguments."""
    function: Callable[..., Any] = dag.get_task(task_id).python_callable
    return function(*args, **context)


def read_parquet(stack: TaskStack, key: str) -> pd.DataFrame:
    import io

    return pd.read_parquet(io.BytesIO(stack.read(key)))


def workdir(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp
