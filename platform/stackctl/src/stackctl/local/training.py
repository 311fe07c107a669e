"""Train a first champion through Airflow, then make the model server pick it up."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from stackcontract.airflow_api import AirflowClient, DagRun
from stackctl.local.components.airflow import client
from stackctl.local.context import RunContext
from stackctl.local.orchestrator import progress_display
from stackctl.local.supervisor import log_tail

TRAINING_DAG = "ml_training"
SCHEDULED_RUN_GRACE_SECONDS = 15.0


class TrainingFailed(RuntimeError):
    """The first training run did not produce a served champion; the stack stays up."""


@dataclass
class TrainingResult:
    run: DagRun
    model_version: str
    seconds: float


def failed_task_logs(ctx: RunContext, outcome: DagRun) -> list[Path]:
    """Log files of the failed tasks of a run (Airflow 3 layout under AIRFLOW_HOME/logs)."""
    base = ctx.paths.airflow_home / "logs" / f"dag_id={outcome.dag_id}" / f"run_id={outcome.run_id}"
    logs: list[Path] = []
    for task in outcome.failed_tasks:
        attempts = sorted((base / f"task_id={task}").glob("**/attempt=*.log"))
        logs.extend(attempts[-1:])
    return logs


def _wait_for_dag(ctx: RunContext, api: AirflowClient, budget: float) -> None:
    deadline = time.monotonic() + budget
    while TRAINING_DAG not in api.dag_ids():
        if time.monotonic() > deadline or ctx.cancel.is_set():
            raise TrainingFailed(
                f"DAG {TRAINING_DAG} is not in Airflow after {budget:.0f}s: is "
                f"{ctx.config.dags_dir}/ missing it? See {ctx.paths.log('airflow-dag-processor')}."
            )
        ctx.cancel.wait(2)


def _unpause_and_pick_run(ctx: RunContext, api: AirflowClient) -> str:
    """Unpause the DAG and follow the run the scheduler creates for its latest interval (a
    scheduled DAG with catchup=False gets one at once); trigger one only if none appears, so a
    fresh stack trains exactly once."""
    existing = set(api.run_ids(TRAINING_DAG))
    api.unpause(TRAINING_DAG)
    deadline = time.monotonic() + SCHEDULED_RUN_GRACE_SECONDS
    while time.monotonic() < deadline and not ctx.cancel.is_set():
        if new := [run for run in api.run_ids(TRAINING_DAG) if run not in existing]:
            return new[0]
        ctx.cancel.wait(1)
    return api.trigger(TRAINING_DAG)


def reload_model_server(ctx: RunContext) -> str:
    """POST /reload, then require /ready; the served version."""
    token = ctx.credentials.model_server_reload_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{ctx.model_server_url}/reload", headers=headers, timeout=120)
    if response.status_code != 200:
        raise TrainingFailed(
            f"POST {ctx.model_server_url}/reload -> {response.status_code}: {response.text[:300]}"
        )
    ready = httpx.get(f"{ctx.model_server_url}/ready", timeout=10)
    if ready.status_code != 200:
        raise TrainingFailed(
            f"model server still not ready after reload ({ready.status_code}: {ready.text[:200]}); "
            f"see {ctx.paths.log('model-server')}"
        )
    return str(response.json().get("model_version"))


def train_first_champion(ctx: RunContext, console: Console) -> TrainingResult:
    """Unpause and trigger ml_training once, wait for it, reload the model server."""
    started = time.monotonic()
    with client(ctx) as api, progress_display(console) as progress:
        task = progress.add_task("waiting for the DAG", component="train")
        _wait_for_dag(ctx, api, budget=120)
        run_id = _unpause_and_pick_run(ctx, api)

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
            TRAINING_DAG,
            run_id,
            timeout=ctx.options.train_timeout,
            cancel=ctx.cancel,
            on_poll=on_poll,
        )
        if outcome.state != "success":
            progress.update(task, description=f"[red]{TRAINING_DAG} {outcome.state}")
            raise TrainingFailed(_explain(ctx, outcome))
        progress.update(task, description="[dim]POST /reload on the model server")
        version = reload_model_server(ctx)
        progress.update(
            task, description=f"[green]champion v{version} served", completed=1, total=1
        )
    return TrainingResult(outcome, version, time.monotonic() - started)


def task_log_summary(path: Path, lines: int = 25) -> str:
    """The exceptions recorded in an Airflow 3 (JSON lines) task log, else its last lines."""
    errors: list[str] = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            continue
        for detail in entry.get("error_detail") or [] if isinstance(entry, dict) else []:
            frames = detail.get("frames") or []
            where = f" at {frames[-1]['filename']}:{frames[-1]['lineno']}" if frames else ""
            errors.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}{where}")
    return "\n".join(errors) if errors else log_tail(path, lines)


def _explain(ctx: RunContext, outcome: DagRun) -> str:
    lines = [
        f"{outcome.dag_id} run {outcome.run_id} ended {outcome.state} after {outcome.seconds:.0f}s"
        + (f"; failed tasks: {', '.join(outcome.failed_tasks)}" if outcome.failed_tasks else "")
    ]
    for path in failed_task_logs(ctx, outcome):
        lines.append(f"--- {path} ---\n{task_log_summary(path)}")
    lines.append(
        f"The stack stays up for debugging: {ctx.airflow_url} ; stop it with `stackctl down`."
    )
    return "\n".join(lines)
