"""A minimal real stack for `airflow dags test`: SeaweedFS S3 + MLflow server, on free ports.

Self-contained (it needs no backend and no `endpoints.json`): every process is started here in its
own process group, logs to a file under the test's temp folder, and is stopped at the end
(SIGTERM, a grace period, then SIGKILL of the whole group -- SeaweedFS takes ~15 s to stop by itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
ACCESS_KEY = "dagstest-access"
SECRET_KEY = "dagstest-secret-key"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (held open together so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Managed:
    """A started process group with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_grace_seconds: float

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> float:
        """SIGTERM the group, wait, SIGKILL what is left; return the seconds it took."""
        started = time.monotonic()
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.stop_grace_seconds)
        _signal_group(self.process.pid, signal.SIGKILL)  # children that outlived the leader
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        return time.monotonic() - started


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def start(
    name: str, command: list[str], log_dir: Path, env: dict[str, str], grace: float
) -> Managed:
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=log_dir,
        start_new_session=True,  # own process group: stop() reaches every child
    )
    handle.close()
    return Managed(name, process, log, grace)


def wait_until(
    what: Managed, ready: Callable[[], bool], timeout: float, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what.process.poll() is not None:
            pytest.fail(f"{what.name} exited with {what.process.returncode}:\n{what.tail()}")
        try:
            if ready():
                return
        except Exception:  # not up yet: connection refused, 503, ...
            pass
        time.sleep(interval)
    pytest.fail(f"{what.name} not ready after {timeout:.0f}s:\n{what.tail()}")


@dataclass
class MiniStack:
    """The endpoints of the started services."""

    s3_endpoint: str
    mlflow_url: str
    bucket: str
    work: Path

    def s3(self) -> Any:
        from stackcontract.s3 import s3_client

        return s3_client(
            endpoint_url=self.s3_endpoint,
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            max_attempts=1,
        )


def s3_answers(endpoint: str) -> Callable[[], bool]:
    def ready() -> bool:
        MiniStack(endpoint, "", "", Path()).s3().list_buckets()
        return True

    return ready


def http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        import httpx

        return httpx.get(url, timeout=2).status_code == 200

    return ready


def start_seaweedfs(work: Path, log_dir: Path) -> tuple[Managed, str]:
    """`weed server` with master, volume, filer and S3 on free ports, keys from an S3 config."""
    config = work / "s3-identities.json"
    identity = {
        "name": "dagstest",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
    }
    identity["actions"] = ["Admin", "Read", "List", "Tagging", "Write"]  # type: ignore[assignment]
    config.write_text(json.dumps({"identities": [identity]}))
    data = work / "seaweedfs"
    data.mkdir()
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    command = [
        str(BIN / "weed"),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",  # default 8181: would collide with another stack
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-volume.max=20",
        "-master.volumeSizeLimitMB=128",
        "-volume.preStopSeconds=0",
    ]
    process = start("seaweedfs", command, log_dir, dict(os.environ), grace=5.0)
    return process, f"http://127.0.0.1:{s3}"


def start_mlflow(work: Path, log_dir: Path, s3_endpoint: str, bucket: str) -> tuple[Managed, str]:
    """`mlflow server` on SQLite, proxying artifacts to s3://bucket/mlflow-artifacts."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{work / 'mlflow.db'}",
        "--artifacts-destination",
        f"s3://{bucket}/mlflow-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = start("mlflow", command, log_dir, env, grace=5.0)
    return process, f"http://127.0.0.1:{port}"


PUSHGATEWAY_BINARY = Path("/usr/bin/prometheus-pushgateway")


def start_pushgateway(work: Path, log_dir: Path) -> tuple[Managed, str]:
    """The Debian Pushgateway on a free port, persisting into the test's folder."""
    port = free_port()
    command = [
        str(PUSHGATEWAY_BINARY),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={work / 'pushgateway.data'}",
    ]
    process = start("pushgateway", command, log_dir, dict(os.environ), grace=5.0)
    return process, f"http://127.0.0.1:{port}"
