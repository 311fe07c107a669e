"""Record the metric names that the stack's third-party exporters really export.

Starts MLflow (``mlflow server --expose-prometheus``), SeaweedFS (``weed server -metricsPort``) and the
Prometheus Pushgateway on loopback ports, sends each a little traffic so that request metrics exist,
scrapes ``/metrics``, and writes one ``<family> <type>`` line per metric family to
``platform/observability/exported-metrics/<exporter>.txt``. The dashboards and alert rules may
only use names found there (``tests/unit/observability`` checks it). Everything it starts is stopped.

Run:  stack-record-metrics [mlflow seaweedfs pushgateway]
(``--port-base`` picks the first of the ~12 consecutive loopback ports it uses; default 23100).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from stackobservability import EXPORTED_METRICS_DIR, OBSERVABILITY_DIR
from stackobservability.exposition import series_from_exposition, write_series_file

REPO_ROOT = OBSERVABILITY_DIR.parents[1]
VENV_BIN = Path(sys.executable).parent


def wait_for_http(url: str, *, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200 or fail with the process's state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before {url} came up"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s")


@contextlib.contextmanager
def running(
    args: list[str], *, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args`` in its own process group and always stop the whole group."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def write_fixture(exporter: str, exposition: str, *, how: str, drop_prefix: str = "") -> Path:
    """Write the series the ``exposition`` yields to the exporter's fixture, saying how it was made."""
    series = series_from_exposition(exposition)
    if drop_prefix:
        series = {name: kind for name, kind in series.items() if not name.startswith(drop_prefix)}
    path = EXPORTED_METRICS_DIR / f"{exporter}.txt"
    header = [
        f"Series exported by {exporter}, recorded from a real scrape of its /metrics.",
        f"Produced by: {how}",
        "Regenerate: stack-record-metrics",
        "Format: <series name> <type of its family>",
    ]
    write_series_file(path, series, header=header)
    return path


def record_mlflow(port: int, workdir: Path) -> Path:
    """MLflow tracking server with --expose-prometheus, after creating an experiment and a run."""
    prom_dir = workdir / "mlflow-prometheus"
    prom_dir.mkdir()
    args = [
        str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination", str(workdir / "mlflow-artifacts"),
        "--expose-prometheus", str(prom_dir), "--workers", "1",
    ]  # fmt: skip
    with running(args, log=workdir / "mlflow.log") as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", timeout_s=180, process=process)
        api = f"{base}/api/2.0/mlflow"
        experiment = httpx.post(f"{api}/experiments/create", json={"name": "record-metrics"}).json()
        httpx.post(f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]})
        httpx.get(f"{api}/experiments/get-by-name", params={"experiment_name": "nope"})
        exposition = httpx.get(f"{base}/metrics", timeout=10).text
    version = subprocess.run(
        [str(VENV_BIN / "mlflow"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    how = f"`mlflow server ... --expose-prometheus DIR` ({version}) after experiment/run calls"
    return write_fixture("mlflow", exposition, how=how)


def record_seaweedfs(port_base: int, workdir: Path) -> Path:
    """``weed server -s3 -metricsPort``, after an S3 bucket create, put and get."""
    master, volume, filer, s3, metrics = (port_base + offset for offset in range(5))
    data_dir = workdir / "seaweed"
    data_dir.mkdir()
    args = [
        str(VENV_BIN / "weed"), "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master + 5}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume + 5}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer + 5}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + 5}",
        f"-metricsPort={metrics}", "-volume.max=5",
    ]  # fmt: skip
    with running(args, log=workdir / "seaweed.log") as process:
        wait_for_http(f"http://127.0.0.1:{metrics}/metrics", timeout_s=60, process=process)
        _exercise_s3(f"http://127.0.0.1:{s3}")
        exposition = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
    version = subprocess.run(
        [str(VENV_BIN / "weed"), "version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    how = f"`weed server -filer -s3 -metricsPort=PORT` ({version}) after S3 create/put/get"
    return write_fixture("seaweedfs", exposition, how=how)


def _exercise_s3(endpoint: str) -> None:
    """Create a bucket, put and get an object, retrying while the volume server registers."""
    from stackcontract.s3 import s3_client

    s3 = s3_client(endpoint_url=endpoint, region="us-east-1", access_key="any", secret_key="any")
    deadline = time.monotonic() + 60
    while True:
        try:
            s3.create_bucket(Bucket="record-metrics")
            s3.put_object(Bucket="record-metrics", Key="probe.txt", Body=b"probe")
            s3.get_object(Bucket="record-metrics", Key="probe.txt")["Body"].read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def record_pushgateway(port: int, workdir: Path) -> Path:
    """Debian's prometheus-pushgateway after one push of a gauge (adds push_time_seconds etc.)."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        raise RuntimeError(
            "prometheus-pushgateway is not installed: apt-get install prometheus-pushgateway"
        )
    args = [binary, f"--web.listen-address=127.0.0.1:{port}"]
    with running(args, log=workdir / "pushgateway.log") as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/-/ready", timeout_s=30, process=process)
        body = "# TYPE record_probe gauge\nrecord_probe 1\n"
        httpx.put(f"{base}/metrics/job/record_metrics", content=body).raise_for_status()
        exposition = httpx.get(f"{base}/metrics", timeout=10).text
    answer = subprocess.run([binary, "--version"], capture_output=True, text=True)
    version = (answer.stdout or answer.stderr).splitlines()  # Go binaries print it to stderr
    how = f"`prometheus-pushgateway` ({version[0] if version else binary}) after one PUT"
    # record_probe is our own pushed probe, not a name the Pushgateway exports.
    return write_fixture("pushgateway", exposition, how=how, drop_prefix="record_probe")


def main() -> None:
    """Record every exporter (or the ones named) and print where each fixture went."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--port-base", type=int, default=23100)
    parser.add_argument("exporters", nargs="*", default=["pushgateway", "seaweedfs", "mlflow"])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="record-exporter-metrics-") as tmp:
        workdir = Path(tmp)
        for exporter in options.exporters:
            if exporter == "mlflow":
                path = record_mlflow(options.port_base, workdir)
            elif exporter == "seaweedfs":
                path = record_seaweedfs(options.port_base + 10, workdir)
            elif exporter == "pushgateway":
                path = record_pushgateway(options.port_base + 1, workdir)
            else:
                parser.error(f"unknown exporter {exporter!r}: use mlflow, seaweedfs or pushgateway")
            print(json.dumps({"exporter": exporter, "fixture": str(path.relative_to(REPO_ROOT))}))


if __name__ == "__main__":
    main()
