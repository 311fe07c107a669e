"""ml_training runs as the integration tests drive them: trigger through the Airflow REST API,
wait, and read back where the run left the registry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from stack_clients import AirflowClient, DagRun

from stackcontract.endpoints import Endpoints

TRAINING_DAG = "ml_training"
RUN_TIMEOUT_SECONDS = 420.0
DAG_PARSE_TIMEOUT_SECONDS = 180.0
CHAMPION, CHALLENGER = "champion", "challenger"
# A deliberately weak model: held-out RMSE ~3900 USD against ~510 for the defaults.
WEAK_PARAMS: dict[str, Any] = {"max_iter": 3, "learning_rate": 0.05, "early_stopping": False}


# Backends whose stack is a release serving real traffic: tests that deliberately degrade the
# champion or upload garbage skip there.
RELEASED_BACKENDS = frozenset({"eks"})


def refuse_on_release(endpoints: Endpoints, what: str) -> None:
    if endpoints.backend in RELEASED_BACKENDS:
        pytest.skip(f"{what} on the released {endpoints.backend} stack: run it on local or kind")


def say(config: pytest.Config, message: str) -> None:
    """A line on the terminal even with output capture on (figures the tier reports)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(f"[integration] {message}")
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[integration] {message}")


@dataclass(frozen=True)
class TrainingRun:
    """One successful ml_training run and where it left the registry."""

    run: DagRun
    conf: dict[str, Any]
    version: str  # the version this run registered (or reused), i.e. @challenger after it
    champion_before: str | None
    champion_after: str | None

    @property
    def promoted(self) -> bool:
        return self.champion_after == self.version and self.champion_before != self.version


def alias_version(registry: Any, model_name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(registry.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def run_dag(
    airflow: AirflowClient,
    conf: dict[str, Any] | None = None,
    *,
    timeout: float = RUN_TIMEOUT_SECONDS,
    on_poll: Any = None,
) -> DagRun:
    """Trigger ml_training (after any run already in flight) and wait for it to finish."""
    airflow.wait_for_dag(TRAINING_DAG, timeout=DAG_PARSE_TIMEOUT_SECONDS)
    run_id = airflow.trigger(TRAINING_DAG, conf)
    return airflow.wait_for_run(TRAINING_DAG, run_id, timeout=timeout, on_poll=on_poll)


def wait_for_idle_dag(airflow: AirflowClient, *, timeout: float = RUN_TIMEOUT_SECONDS) -> None:
    """Let runs the tests did not trigger (the catch-up run an unpause schedules) finish first,
    so the registry state the tests reason about is settled."""
    deadline = time.monotonic() + timeout
    while True:
        body = airflow.request(
            "GET",
            f"/api/v2/dags/{TRAINING_DAG}/dagRuns",
            params={"state": ["queued", "running"], "limit": 50},
        )
        if not body["dag_runs"]:
            return
        assert time.monotonic() < deadline, f"ml_training runs still active: {body['dag_runs']}"
        time.sleep(3)


def settle(airflow: AirflowClient, *, catch_up_wait: float = 30.0) -> None:
    """ml_training parsed, unpaused, and idle. Unpausing makes the scheduler create a catch-up
    run for the latest @weekly interval (catchup=False still runs the last one): wait for it to
    appear and finish before the tests reason about the registry."""
    airflow.wait_for_dag(TRAINING_DAG, timeout=DAG_PARSE_TIMEOUT_SECONDS)
    if airflow.request("GET", f"/api/v2/dags/{TRAINING_DAG}")["is_paused"]:
        runs_before = dag_run_count(airflow)
        airflow.request("PATCH", f"/api/v2/dags/{TRAINING_DAG}", json={"is_paused": False})
        deadline = time.monotonic() + catch_up_wait
        while dag_run_count(airflow) == runs_before and time.monotonic() < deadline:
            time.sleep(1)
    wait_for_idle_dag(airflow)


def dag_run_count(airflow: AirflowClient) -> int:
    body = airflow.request("GET", f"/api/v2/dags/{TRAINING_DAG}/dagRuns", params={"limit": 1})
    return int(body["total_entries"])


def train(
    airflow: AirflowClient,
    registry: Any,
    endpoints: Endpoints,
    conf: dict[str, Any],
    config: pytest.Config,
) -> TrainingRun:
    """A successful ml_training run with `conf`, or a failure showing task states and logs."""
    settle(airflow)
    before = alias_version(registry, endpoints.model_name, CHAMPION)
    run = run_dag(airflow, conf)
    assert run.state == "success", airflow.explain(run)
    say(config, f"ml_training {conf or '{}'}: {run.state} in {run.seconds:.0f}s")
    version = alias_version(registry, endpoints.model_name, CHALLENGER)
    assert version is not None, f"run {run.run_id} succeeded but @{CHALLENGER} is not set"
    after = alias_version(registry, endpoints.model_name, CHAMPION)
    return TrainingRun(run, conf, version, before, after)


def registered_by(registry: Any, model_name: str, run_id: str) -> str | None:
    """The version whose `airflow_run_id` tag is `run_id` (None if that run reused a version)."""
    for version in registry.search_model_versions(f"name='{model_name}'"):
        if version.tags.get("airflow_run_id") == run_id:
            return str(version.version)
    return None


def existing_training(
    airflow: AirflowClient, registry: Any, endpoints: Endpoints
) -> TrainingRun | None:
    """The latest successful ml_training run, if it registered the version that is champion now
    (typically the catch-up run of a fresh stack): reusing it saves a training run."""
    body = airflow.request(
        "GET",
        f"/api/v2/dags/{TRAINING_DAG}/dagRuns",
        params={"state": ["success"], "order_by": "-end_date", "limit": 1},
    )
    champion = alias_version(registry, endpoints.model_name, CHAMPION)
    if not body["dag_runs"] or champion is None:
        return None
    latest = body["dag_runs"][0]
    run_id = str(latest["dag_run_id"])
    if registered_by(registry, endpoints.model_name, run_id) != champion:
        return None
    run = airflow.wait_for_run(TRAINING_DAG, run_id, timeout=30)
    return TrainingRun(run, dict(latest.get("conf") or {}), champion, None, champion)


MONITORING_DAG = "ml_monitoring"


def monitor(airflow: AirflowClient, config: pytest.Config) -> DagRun:
    """A successful ml_monitoring run (scores the newest validated batch with the champion), or
    a failure showing task states and logs."""
    airflow.wait_for_dag(MONITORING_DAG, timeout=DAG_PARSE_TIMEOUT_SECONDS)
    run_id = airflow.trigger(MONITORING_DAG)
    run = airflow.wait_for_run(MONITORING_DAG, run_id, timeout=RUN_TIMEOUT_SECONDS)
    assert run.state == "success", airflow.explain(run)
    say(config, f"ml_monitoring: {run.state} in {run.seconds:.0f}s")
    return run
