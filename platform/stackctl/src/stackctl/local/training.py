"""The first training run of the local stack: `stackctl.training` with the local processes'
Airflow client and task-log files."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from stackcontract.airflow_api import AirflowClient, DagRun
from stackctl.local.components.airflow import client
from stackctl.local.context import RunContext
from stackctl.local.supervisor import log_tail
from stackctl.training import (
    TrainingFailed,
    TrainingResult,
    TrainingTarget,
    champion_served,
    train_first_champion,
)

__all__ = ["TrainingFailed", "TrainingResult", "champion_served", "train_local_champion"]


def failed_task_logs(ctx: RunContext, outcome: DagRun) -> list[Path]:
    """Log files of the failed tasks of a run (Airflow 3 layout under AIRFLOW_HOME/logs)."""
    base = ctx.paths.airflow_home / "logs" / f"dag_id={outcome.dag_id}" / f"run_id={outcome.run_id}"
    logs: list[Path] = []
    for task in outcome.failed_tasks:
        attempts = sorted((base / f"task_id={task}").glob("**/attempt=*.log"))
        logs.extend(attempts[-1:])
    return logs


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


def train_local_champion(ctx: RunContext, console: Console) -> TrainingResult:
    def explain(_api: AirflowClient, outcome: DagRun) -> str:
        return _explain(ctx, outcome)

    target = TrainingTarget(
        airflow=lambda: client(ctx),
        model_server_url=ctx.model_server_url,
        reload_token=ctx.credentials.model_server_reload_token.get_secret_value(),
        timeout=ctx.options.train_timeout,
        explain=explain,
        missing_dag_hint=(
            f"is {ctx.config.dags_dir}/ missing it? See {ctx.paths.log('airflow-dag-processor')}."
        ),
        model_server_logs=str(ctx.paths.log("model-server")),
        cancel=ctx.cancel,
    )
    return train_first_champion(target, console)
