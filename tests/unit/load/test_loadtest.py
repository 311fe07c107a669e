"""The SLO gate of `nox -s load`: profile parsing, percentile merging, verdicts, and one real
Locust run against a tiny local HTTP server so the report parsing is checked on real output."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from mlpipe.schema import PredictRequest
from stackcontract.endpoints import Endpoints
from stackctl.loadtest import (
    LOAD_DIR,
    Profile,
    load_profiles,
    percentile,
    run_profile,
    summarise,
    target_host,
)


def profile(**overrides: object) -> Profile:
    spec: dict[str, object] = {
        "name": "model-server", "locustfile": "locustfile_model_server.py",
        "target": "model_server_url", "users": 2, "spawn_rate": 2, "duration": "3s",
        "max_error_rate": 0.0, "p95_ms": 500, "p99_ms": 1000, "min_rps": 1,
    }  # fmt: skip
    spec.update(overrides)
    return Profile.model_validate(spec)


def entry(name: str, times: dict[int, int], failures: int = 0) -> dict[str, object]:
    return {
        "name": name,
        "num_requests": sum(times.values()),
        "num_failures": failures,
        "response_times": {str(k): v for k, v in times.items()},
    }


def test_committed_slo_file_parses_and_targets_real_endpoint_fields() -> None:
    profiles = load_profiles(LOAD_DIR / "slo.toml")
    assert {"model-server", "control-plane"} <= set(profiles)
    for p in profiles.values():
        assert p.target in Endpoints.model_fields
        assert (LOAD_DIR / p.locustfile).is_file()


def test_percentile_walks_the_histogram() -> None:
    histogram = Counter({10: 90, 50: 9, 400: 1})
    assert percentile(histogram, 0.50) == 10
    assert percentile(histogram, 0.95) == 50
    assert percentile(histogram, 0.999) == 400
    assert percentile(Counter(), 0.95) == 0


def test_malformed_requests_are_excluded_from_errors_and_latency() -> None:
    entries = [
        entry("predict: 1 row", {5: 100}),
        entry("malformed: empty batch", {2000: 10}),
        entry("Aggregated", {5: 100, 2000: 10}),
    ]
    summary = summarise(profile(), entries, elapsed_s=10)
    assert summary.passed, summary.violations
    assert (summary.requests, summary.malformed_requests, summary.p99_ms) == (100, 10, 5)
    assert summary.rps == pytest.approx(10)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([entry("predict", {5: 99}, failures=1)], "error rate"),
        ([entry("predict", {5: 90, 900: 10})], "p95"),
        ([entry("predict", {5: 98, 1500: 2})], "p99"),
        ([entry("predict", {5: 5})], "throughput"),
        (
            [entry("predict", {5: 100}), entry("malformed: x", {5: 3}, failures=3)],
            "not answered with 422",
        ),
        ([], "no requests"),
    ],
)
def test_each_missed_slo_is_named(entries: list[dict[str, object]], expected: str) -> None:
    summary = summarise(profile(), entries, elapsed_s=10)
    assert not summary.passed
    assert any(expected in v for v in summary.violations), summary.violations


class _FakeModelServer(BaseHTTPRequestHandler):
    """Validates like the model server (the same pydantic schema): 422 when invalid, else 200."""

    def do_POST(self) -> None:
        try:
            request = PredictRequest.model_validate_json(
                self.rfile.read(int(self.headers["Content-Length"]))
            )
        except ValidationError as error:
            status, payload = (
                422,
                json.dumps({"detail": error.errors(include_url=False)}, default=str),
            )
        else:
            status, payload = 200, json.dumps({"predictions": [1.0] * len(request.instances)})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeModelServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def endpoints_for(url: str) -> Endpoints:
    return Endpoints(
        backend="test", s3_url=url, s3_access_key="k", s3_secret_key=SecretStr("s"), s3_bucket="b",
        mlflow_url=url, airflow_url=url, airflow_username="u", airflow_password=SecretStr("p"),
        model_server_url=url, model_name="m",
    )  # fmt: skip


@pytest.mark.slow
def test_real_locust_run_is_summarised(fake_server: str, tmp_path: Path) -> None:
    summary = run_profile(profile(), fake_server, tmp_path)
    assert summary.requests > 0
    assert summary.malformed_requests > 0, "the profile must send malformed payloads"
    assert summary.passed, summary.violations
    assert (tmp_path / "model-server_stats.csv").is_file()
    assert (tmp_path / "model-server.html").is_file()
    assert json.loads((tmp_path / "model-server.summary.json").read_text())["requests"] > 0


@pytest.mark.slow
def test_impossible_slo_fails_on_a_real_run(fake_server: str, tmp_path: Path) -> None:
    summary = run_profile(profile(min_rps=1_000_000), fake_server, tmp_path)
    assert not summary.passed
    assert any("throughput" in v for v in summary.violations)


def test_target_host_comes_from_the_endpoints_and_a_missing_one_is_named() -> None:
    endpoints = endpoints_for("http://127.0.0.1:1")
    assert target_host(profile(), endpoints) == "http://127.0.0.1:1"
    with pytest.raises(ValueError, match="no 'prometheus_url' URL"):
        target_host(profile(target="prometheus_url"), endpoints)
