"""Train a first champion through Airflow, then make the model server pick it up: the same
steps on every backend that runs Airflow itself (local processes, Compose)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from rich.console import Console

from stackcontract.airflow_api import AirflowClient, DagRun
from stackctl.progress import progress_display

TRAINING_DAG = "ml_training"
SCHEDULED_RUN_GRACE_SECONDS = 15.0


class TrainingFailed(RuntimeError):
    """The first training run did not produce a served champion; the stack stays up."""


@dataclass
class TrainingResult:
    run: DagRun
    model_version: str
    seconds: float


@dataclass
class TrainingTarget:
    """What a first training run needs from a backend."""

    airflow: Callable[[], AirflowClient]
    model_server_url: str
    reload_token: str
    timeout: float
    # why a failed run failed (task log summaries), and where to look when the DAG is missing
    explain: Callable[[AirflowClient, DagRun], str]
    missing_dag_hint: str
    model_server_logs: str  # where the model server's log is, for a reload that fails
    cancel: threading.Event = field(default_factory=threading.Event)


def _wait_for_dag(target: TrainingTarget, api: AirflowClient, budget: float) -> None:
    deadline = time.monotonic() + budget
    while TRAINING_DAG not in api.dag_ids():
        if time.monotonic() > deadline or target.cancel.is_set():
            raise TrainingFailed(
                f"DAG {TRAINING_DAG} is not in Airflow after {budget:.0f}s: "
                f"{target.missing_dag_hint}"
            )
        target.cancel.wait(2)


def _unpause_and_pick_run(target: TrainingTarget, api: AirflowClient) -> str:
    """Unpause the DAG and follow the run the scheduler creates for its latest interval (a
    scheduled DAG with catchup=False gets one at once); trigger one only if none appears, so a
    fresh stack trains exactly once."""
    existing = set(api.run_ids(TRAINING_DAG))
    api.unpause(TRAINING_DAG)
    deadline = time.monotonic() + SCHEDULED_RUN_GRACE_SECONDS
    while time.monotonic() < deadline and not target.cancel.is_set():
        if new := [run for run in api.run_ids(TRAINING_DAG) if run not in existing]:
            return new[0]
        target.cancel.wait(1)
    return api.trigger(TRAINING_DAG)


def reload_model_server(model_server_url: str, token: str, *, logs: str) -> str:
    """POST /reload, then require /ready; the served version (`logs`: where to look if not)."""
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{model_server_url}/reload", headers=headers, timeout=120)
    if response.status_code != 200:
        raise TrainingFailed(
            f"POST {model_server_url}/reload -> {response.status_code}: {response.text[:300]}"
        )
    ready = httpx.get(f"{model_server_url}/ready", timeout=10)
    if ready.status_code != 200:
        raise TrainingFailed(
            f"model server still not ready after reload ({ready.status_code}: {ready.text[:200]}); "
            f"see {logs}"
        )
    return str(response.json().get("model_version"))


def champion_served(model_server_url: str) -> bool:
    try:
        return httpx.get(f"{model_server_url}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def train_first_champion(target: TrainingTarget, console: Console) -> TrainingResult:
    """Unpause and trigger ml_training once, wait for it, reload the model server."""
    started = time.monotonic()
    with target.airflow() as api, progress_display(console) as progress:
        task = progress.add_task("waiting for the DAG", component="train")
        _wait_for_dag(target, api, budget=120)
        run_id = _unpause_and_pick_run(target, api)

        def on_poll(run: DagRun) -> None:
            state, tasks = run.state, run.task_states()
            done = sum(1 for s in tasks.values() if s == "success")
            running = [t for t, s in tasks.items() if s == "running"]
            progress.update(
                task,
                description=f"[dim]{TRAINING_DAG} {state}: {done}/{len(tasks)} tasks done"
                + (f", running {', '.join(running)}" if running else ""),
            )

        outcome = api.wait_for_run(
            TRAINING_DAG, run_id, timeout=target.timeout, cancel=target.cancel, on_poll=on_poll
        )
        if outcome.state != "success":
            progress.update(task, description=f"[red]{TRAINING_DAG} {outcome.state}")
            raise TrainingFailed(target.explain(api, outcome))
        progress.update(task, description="[dim]POST /reload on the model server")
        version = reload_model_server(
            target.model_server_url, target.reload_token, logs=target.model_server_logs
        )
        progress.update(
            task, description=f"[green]champion v{version} served", completed=1, total=1
        )
    return TrainingResult(outcome, version, time.monotonic() - started)
