"""Diagnostics from recorded API objects: events sorted, describes of non-ready objects, current
and previous logs (init containers too), Airflow task logs via REST, kind logs, and index.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from kind_helpers import RecordingRunner, load_fixture, ok

from stackctl.k8s.commands import CommandFailedError
from stackctl.k8s.diagnostics import AirflowAccess, Collector, diagnostics_dir, format_events

BASE = ("kubectl", "--kubeconfig", "kc", "--context", "kind-aok8s-1")


def _objects() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            load_fixture("pod_running_ready"),
            load_fixture("pod_crashloop"),
            load_fixture("pod_init_crashloop"),
            load_fixture("deployment_rolled_out"),
            load_fixture("job_failed"),
        ],
    }


def _runner() -> RecordingRunner:
    events = load_fixture("events")
    return RecordingRunner(
        responses={
            (*BASE, "get", "events"): ok(json.dumps(events)),
            (*BASE, "get", "all,jobs,pvc,configmaps,secrets,networkpolicies"): ok("NAME READY\n"),
            (
                *BASE,
                "get",
                "pods,deployments.apps,statefulsets.apps,daemonsets.apps,jobs.batch",
            ): ok(json.dumps(_objects())),
            (*BASE, "describe"): ok("Name: something\nEvents: ...\n"),
            (*BASE, "logs"): ok("2026-11-25T10:03:11Z Traceback (most recent call last)\n"),
        }
    )


def _airflow(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/auth/token":
        assert json.loads(request.content) == {"username": "admin", "password": "pw"}
        return httpx.Response(201, json={"access_token": "tok"})
    assert request.headers["Authorization"] == "Bearer tok"
    if path == "/api/v2/dags":
        return httpx.Response(200, json={"dags": [{"dag_id": "ml_training"}], "total_entries": 1})
    if path == "/api/v2/dags/ml_training/dagRuns":
        return httpx.Response(
            200, json={"dag_runs": [{"dag_run_id": "manual__2026-11-25T10:00:00"}]}
        )
    if path.endswith("/taskInstances"):
        return httpx.Response(
            200, json={"task_instances": [{"task_id": "train", "try_number": 2, "state": "failed"}]}
        )
    if "/logs/" in path:
        return httpx.Response(200, text=f"log of try {path.rsplit('/', 1)[1]}\n")
    return httpx.Response(404)


def test_collector_writes_every_artifact_and_an_index(tmp_path: Path) -> None:
    runner = _runner()
    collector = Collector(
        runner=runner,
        kubectl="kubectl",
        kubeconfig=Path("kc"),
        context="kind-aok8s-1",
        namespace="mlops",
        kind="kind",
        cluster="aok8s-1",
        airflow=AirflowAccess("http://127.0.0.1:8080", "admin", "pw"),
        airflow_transport=httpx.MockTransport(_airflow),
    )
    dest = diagnostics_dir(tmp_path)
    index = collector.collect(dest)

    events = (dest / "events.txt").read_text().splitlines()
    assert [line.split()[0] for line in events] == sorted(line.split()[0] for line in events)
    assert "FailedMount" in (dest / "events.txt").read_text()

    problems = (dest / "problems.txt").read_text()
    assert "[CrashLoopBackOff] Pod/model-server-6f7b8c9d4-zx81m container main" in problems
    assert "[JobFailed] Job/airflow-db-migrate" in problems
    described = sorted(p.name for p in (dest / "describe").iterdir())
    assert "Pod-model-server-6f7b8c9d4-zx81m.txt" in described
    assert "Job-airflow-db-migrate.txt" in described
    assert "Pod-mlflow-7c9d5b8f6d-x7k2p.txt" not in described  # ready: not described

    logs = dest / "logs"
    assert (logs / "model-server-6f7b8c9d4-zx81m/main.previous.log").is_file()
    assert (logs / "airflow-api-server-84c6d9f5b7-1n1t0/wait-for-db-migrations.log").is_file()
    assert (
        logs / "airflow-api-server-84c6d9f5b7-1n1t0/wait-for-db-migrations.previous.log"
    ).is_file()
    assert not (logs / "mlflow-7c9d5b8f6d-x7k2p/main.previous.log").exists()  # never restarted
    previous = [c for c in runner.calls if "--previous" in c]
    assert len(previous) == 2

    task_logs = dest / "airflow-task-logs/ml_training/manual__2026-11-25T10_00_00/train"
    assert (task_logs / "attempt-1.log").read_text() == "log of try 1\n"
    assert (task_logs / "attempt-2.log").read_text() == "log of try 2\n"
    assert ["kind", "export", "logs", str(dest / "kind-logs"), "--name", "aok8s-1"] in runner.calls

    text = index.read_text()
    for artifact in ("events.txt", "problems.txt", "resources.txt", "kind-logs/",
                     "logs/model-server-6f7b8c9d4-zx81m/main.previous.log"):  # fmt: skip
        assert f"[{artifact}]" in text
    assert "Collectors that failed" not in text


def test_a_failing_collector_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    runner = _runner()
    runner.responses[(*BASE, "get", "events")] = CommandFailedError(["kubectl"], 1, "forbidden")
    collector = Collector(runner, "kubectl", Path("kc"), "kind-aok8s-1", "mlops")
    index = collector.collect(tmp_path / "d")
    text = index.read_text()
    assert "## Collectors that failed" in text
    assert "**events**: CommandFailedError" in text
    assert (tmp_path / "d/problems.txt").is_file()


def test_format_events_orders_by_time_and_shows_counts() -> None:
    lines = format_events(load_fixture("events")["items"]).splitlines()
    assert lines[0].startswith("2026-11-25T10:00:00Z  Normal  Scheduled")
    assert lines[-1].endswith("(x12)")
