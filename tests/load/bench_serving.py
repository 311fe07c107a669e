"""Serving benchmark (a script, not a test): our model server, `mlflow models serve` and MLServer.

Trains a champion on the committed dataset into a throwaway MLflow store, serves that same
`models:/<name>@champion` with all three servers (MLServer as tests/load/mlserver/uv.lock pins
it, in a venv of its own, .nox/mlserver, synced on first use), drives each with the same Locust profile
(locustfile_serving_bench.py, closed loop: single rows, then 32-row batches) in one run, and prints throughput
and latency percentiles side by side, plus the in-process floors: the scikit-learn reference,
the compiled model (ONNX Runtime) and the server's whole single-row hot path.

    .venv/bin/python tests/load/bench_serving.py [--users 8] [--duration 30s]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from mlpipe.compiled import CompiledModel
from mlpipe.config import Settings, compute_threads, load_settings
from mlpipe.pipeline import run_training, training_frame
from mlpipe.registry import load_alias
from mlpipe.schema import PredictRequest, PredictResponse
from mlpipe.served import read_served_model
from stackctl.loadtest import LOAD_DIR, Profile, Summary, run_profile

DATASET = LOAD_DIR.parents[1] / "ai-analysis" / "data" / "diamonds.csv.gz"
console = Console(width=120)  # the tables are wider than a non-terminal default of 80


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    name: str, command: list[str], url: str, log: Path, env: dict[str, str]
) -> Iterator[None]:
    """Run a server until its readiness URL answers 200; stop it (and its children) afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{name} not ready at {url} within 120 s; see {log}")
        yield
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not gone within 15 s."""
    for signal, wait in ((15, 15.0), (9, None)):
        try:
            os.killpg(process.pid, signal)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class Floor:
    """In-process cost of one model: median us of a 1-row predict, us per row in a 1,000-row one."""

    single_us: float
    per_row_us: float


def timed_us(call: Callable[[], object], repeat: int) -> float:
    """Median microseconds of ``call``."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def predict_floors(settings: Settings) -> dict[str, Floor]:
    """The sklearn reference, the compiled model, and the server's whole hot path for one row
    (JSON body -> validated instances -> compiled prices -> JSON response)."""
    reference, info = load_alias(settings, "champion")
    uri = f"models:/{settings.model_name}/{info.version}"
    compiled = read_served_model(uri, tracking_uri=settings.mlflow_tracking_uri)
    if not isinstance(compiled, CompiledModel):
        raise SystemExit(f"{uri} has no compiled model that passed the parity gate")
    frame = training_frame(settings, csv=DATASET).drop(columns=["price"])
    one, thousand = frame.iloc[:1], frame.iloc[:1000]
    body = json.dumps({"instances": one.to_dict(orient="records")}).encode()
    rows = PredictRequest.model_validate_json(body).instances
    batch = PredictRequest.model_validate({"instances": thousand.to_dict(orient="records")})

    def hot_path() -> bytes:
        request = PredictRequest.model_validate_json(body)
        prices = compiled.predict_instances(request.instances)
        return (
            PredictResponse(predictions=prices.tolist(), model_name="m", model_version="1")
            .model_dump_json()
            .encode()
        )

    with compute_threads():  # the same single OpenMP thread the servers get
        return {
            "sklearn (reference)": Floor(
                timed_us(lambda: reference.predict(one), 300),
                timed_us(lambda: reference.predict(thousand), 5) / 1000,
            ),
            "compiled (ONNX Runtime)": Floor(
                timed_us(lambda: compiled.predict_instances(rows), 3000),
                timed_us(lambda: compiled.predict_instances(batch.instances), 50) / 1000,
            ),
            "server hot path (JSON in -> JSON out)": Floor(timed_us(hot_path, 3000), float("nan")),
        }


MLSERVER_PROJECT = LOAD_DIR / "mlserver"
MLSERVER_VENV = LOAD_DIR.parents[1] / ".nox" / "mlserver"
# The profiles every server gets: single-row requests, and 32-row batches.
PROFILE_ROWS = (1, 32)


def mlserver_binary() -> tuple[Path | None, str]:
    """MLServer as tests/load/mlserver/uv.lock pins it, in a venv of its own (its pins conflict
    with Airflow's), synced with uv on first use and kept in step with the lock after. (None,
    why) where it cannot be had."""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv not on PATH (platform/bootstrap.sh installs it)"
    sync = [uv, "sync", "--locked", "--project", str(MLSERVER_PROJECT)]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(MLSERVER_VENV)}
    done = subprocess.run(sync, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"`{' '.join(sync)}` failed: {done.stderr.strip()[-300:]}"
    return MLSERVER_VENV / "bin" / "mlserver", ""


def mlserver_repository(workdir: Path, settings: Settings, ports: tuple[int, int, int]) -> Path:
    """A model repository for `mlserver start`: the champion's own estimator (the registry's
    skops file, loaded here) saved with joblib, the format MLServer's sklearn runtime reads."""
    import joblib

    reference, info = load_alias(settings, "champion")
    folder = workdir / "mlserver"
    model_dir = folder / settings.model_name
    model_dir.mkdir(parents=True)
    joblib.dump(reference, model_dir / "model.joblib")
    model_settings = {
        "name": settings.model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": info.version},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    http, grpc, metrics = ports
    server = {"http_port": http, "grpc_port": grpc, "metrics_port": metrics, "host": "127.0.0.1",
              # inference in the server process, like the other two: MLServer 1.7.1's worker
              # pool dies at start with the locked uvloop ("no current event loop")
              "parallel_workers": 0}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(server))
    return folder


def bench_profile(name: str, users: int, duration: str) -> Profile:
    # SLO fields are required by the model but not gated here: this is a measurement.
    return Profile(name=name, locustfile="locustfile_serving_bench.py", target="model_server_url",
                   users=users, spawn_rate=users, duration=duration, max_error_rate=0,
                   p95_ms=1e9, p99_ms=1e9, min_rps=0)  # fmt: skip


def print_table(
    results: dict[tuple[str, int], Summary], floors: dict[str, Floor], users: int
) -> None:
    table = Table(title=f"Predictions, {users} closed-loop users, the same registered version")
    columns = ("server", "rows/request", "req/s", "rows/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "server" else "right")
    for (name, rows), s in results.items():
        table.add_row(name, str(rows), f"{s.rps:.0f}", f"{s.rps * rows:.0f}", f"{s.p50_ms:.0f}",
                      f"{s.p95_ms:.0f}", f"{s.p99_ms:.0f}", f"{s.error_rate:.2%}")  # fmt: skip
    console.print(table)
    for (name, rows), other in results.items():
        ours = results[("mlpipe.serve", rows)]
        if name != "mlpipe.serve" and other.rps and other.p99_ms:
            throughput, p99 = ours.rps / other.rps, ours.p99_ms / other.p99_ms
            console.print(
                f"{rows}-row requests, ours / {name}: {throughput:.1f}x the throughput, "
                f"{p99:.2f}x the p99"
            )
    floor_table = Table(title="In-process floor (one thread)")
    for column in ("model", "1-row predict, us", "us per row of 1,000"):
        floor_table.add_column(column, justify="left" if column == "model" else "right")
    for name, floor in floors.items():
        floor_table.add_row(name, f"{floor.single_us:.1f}", f"{floor.per_row_us:.1f}")
    console.print(floor_table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--out", type=Path, default=LOAD_DIR.parents[1] / "reports" / "bench")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.chdir(workdir)  # MLflow's local artifact root (./mlruns) lands here
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    os.environ.pop("S3_ENDPOINT_URL", None)
    settings = load_settings()
    console.print(f"Training a champion into {workdir} ...")
    outcome = run_training(settings, frame=training_frame(settings, csv=DATASET))
    console.print(f"champion: {settings.model_name} {outcome.decision}")

    # `mlflow models serve` execs `uvicorn` by name: the venv's bin must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # One OpenMP thread per server, for both: spinning OpenMP workers on a busy 2-core machine
    # made a 1-row predict ~10x slower (measured), and both servers deserve the same setting.
    env = {**os.environ, "MODEL_NAME": settings.model_name, "PATH": path, "OMP_NUM_THREADS": "1"}
    ours_port, mlflow_port = free_port(), free_port()
    model_uri = f"models:/{settings.model_name}@champion"
    # (label, BENCH_FORMAT, port, readiness path, command): the same profile drives each in turn.
    servers = [
        ("mlpipe.serve", "ours", ours_port, "/ready",
         [sys.executable, "-m", "mlpipe.serve", "--port", str(ours_port), "--log-level", "warning"]),
        ("mlflow models serve", "mlflow", mlflow_port, "/ping",
         [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
          "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port)]),
    ]  # fmt: skip
    mlserver, why_not = mlserver_binary()
    if mlserver is not None:
        mlserver_port = free_port()
        repository = mlserver_repository(
            workdir, settings, (mlserver_port, free_port(), free_port())
        )
        ready = f"/v2/models/{settings.model_name}/ready"
        servers.append(("MLServer (sklearn runtime)", "mlserver", mlserver_port, ready,
                        [str(mlserver), "start", str(repository)]))  # fmt: skip
    results: dict[tuple[str, int], Summary] = {}
    for label, api, port, ready, command in servers:
        url = f"http://127.0.0.1:{port}"
        with serving(label, command, url + ready, workdir / f"{api}.log", env):
            for rows in PROFILE_ROWS:
                profile = bench_profile(f"bench-{api}-{rows}", args.users, args.duration)
                bench_env = {"BENCH_FORMAT": api, "BENCH_MODEL_NAME": settings.model_name,
                             "BENCH_ROWS": str(rows)}  # fmt: skip
                results[(label, rows)] = run_profile(profile, url, args.out, bench_env)
    print_table(results, predict_floors(settings), args.users)
    if mlserver is None:
        console.print(f"[yellow]MLServer not run: {why_not}")
    console.print(f"Locust reports: {args.out}; server logs and MLflow store: {workdir}")


if __name__ == "__main__":
    main()
