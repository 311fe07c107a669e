"""Serving benchmark (a script, not a test): our model server vs `mlflow models serve`.

Trains a champion on the committed dataset into a throwaway MLflow store, serves that same
`models:/<name>@champion` with both servers, drives both with the same Locust profile
(locustfile_serving_bench.py, single-row requests, closed loop) in one run, and prints throughput
and latency percentiles side by side, plus the in-process predict cost per row (the floor).

    .venv/bin/python tests/load/bench_serving.py [--users 8] [--duration 30s]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from mlpipe.config import compute_threads, load_settings
from mlpipe.pipeline import run_training, training_frame
from mlpipe.registry import load_alias
from stackctl.loadtest import LOAD_DIR, Profile, Summary, run_profile

DATASET = LOAD_DIR.parents[1] / "ai-analysis" / "data" / "diamonds.csv.gz"
console = Console()


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


def predict_floor(model_name: str) -> tuple[float, float]:
    """In-process cost: median ms of a 1-row predict, and ms per row of a 1,000-row predict."""
    settings = load_settings()
    predictor, _ = load_alias(settings, "champion")
    frame = training_frame(settings, csv=DATASET).drop(columns=["price"])
    one, thousand = frame.iloc[:1], frame.iloc[:1000]
    singles = []
    with compute_threads():  # the same single OpenMP thread the servers get
        for _ in range(300):
            started = time.perf_counter()
            predictor.predict(one)
            singles.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for _ in range(5):
            predictor.predict(thousand)
        per_row = (time.perf_counter() - started) * 1000 / 5 / 1000
    return statistics.median(singles), per_row


def bench_profile(name: str, users: int, duration: str) -> Profile:
    # SLO fields are required by the model but not gated here: this is a measurement.
    return Profile(name=name, locustfile="locustfile_serving_bench.py", target="model_server_url",
                   users=users, spawn_rate=users, duration=duration, max_error_rate=0,
                   p95_ms=1e9, p99_ms=1e9, min_rps=0)  # fmt: skip


def print_table(results: dict[str, Summary], floor: tuple[float, float], users: int) -> None:
    table = Table(title=f"Single-row predictions, {users} closed-loop users, same model")
    for column in ("server", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, s in results.items():
        table.add_row(name, f"{s.rps:.0f}", f"{s.p50_ms:.0f}", f"{s.p95_ms:.0f}",
                      f"{s.p99_ms:.0f}", f"{s.error_rate:.2%}")  # fmt: skip
    console.print(table)
    ours, theirs = results["mlpipe.serve"], results["mlflow models serve"]
    if theirs.rps:
        console.print(f"Throughput ratio (ours / MLflow's): {ours.rps / theirs.rps:.2f}x")
    console.print(
        f"In-process floor: {floor[0]:.2f} ms per 1-row predict, "
        f"{floor[1] * 1000:.1f} us per row in a 1,000-row batch"
    )


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
    results: dict[str, Summary] = {}
    for label, api, port, ready, command in servers:
        url = f"http://127.0.0.1:{port}"
        with serving(label, command, url + ready, workdir / f"{api}.log", env):
            profile = bench_profile(f"bench-{api}", args.users, args.duration)
            results[label] = run_profile(profile, url, args.out, {"BENCH_FORMAT": api})
    print_table(results, predict_floor(settings.model_name), args.users)
    console.print(f"Locust reports: {args.out}; server logs and MLflow store: {workdir}")


if __name__ == "__main__":
    main()
