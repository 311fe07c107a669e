"""A failed start (or a crash during readiness) leaves no process behind and shows the log."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from stackcontract.settings import load_config
from stackctl.local import LocalBackend, LocalOptions, StackError
from stackctl.local.components.base import Component, Status
from stackctl.local.context import RunContext

SLEEPER = [sys.executable, "-c", "import time; print('sleeping', flush=True); time.sleep(300)"]


class Sleeper(Component):
    """Starts a long sleeper; ready at once (or never, when `ready` is False)."""

    def __init__(self, name: str, *, ready: bool = True, depends_on: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.name = name
        self.needs = depends_on
        self.is_ready = ready

    def depends_on(self, ctx: RunContext) -> tuple[str, ...]:
        return self.needs

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        self.spawn(ctx, SLEEPER, env=dict(os.environ))
        self.wait(ctx, lambda: None if self.is_ready else "never", status, budget=120)


class Crasher(Component):
    """Starts a process that dies before it is ready."""

    name = "crasher"

    def depends_on(self, ctx: RunContext) -> tuple[str, ...]:
        return ("first",)

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        script = "import sys; print('boom: cannot open the database', flush=True); sys.exit(4)"
        self.spawn(ctx, [sys.executable, "-c", script], env=dict(os.environ))
        self.wait(ctx, lambda: "starting", status, budget=60)


class FakeBackend(LocalBackend):
    def components(self, ctx: RunContext) -> list[Component]:
        return [Sleeper("first"), Sleeper("slow", ready=False), Crasher()]


def test_failed_component_stops_everything_and_shows_its_log(fake_repo: Path) -> None:
    output = io.StringIO()
    backend = FakeBackend(
        load_config(environ={"STACK_REPO_ROOT": str(fake_repo)}),
        options=LocalOptions(train=False),
        console=Console(file=output, width=200),
    )
    with pytest.raises(StackError, match=r"crasher: process crasher .* exited with code 4"):
        backend.up_report()

    leftovers = [
        proc
        for proc in psutil.process_iter()
        if _instance_of(proc) is not None and "time.sleep(300)" in " ".join(proc.cmdline())
    ]
    assert leftovers == []
    assert list(backend.paths.pids.glob("*.json")) == []
    assert "boom: cannot open the database" in output.getvalue()
    assert "Stopped 3 process(es)" in output.getvalue()


def _instance_of(proc: psutil.Process) -> str | None:
    try:
        instance = proc.environ().get("STACKCTL_INSTANCE")
    except (psutil.Error, OSError):
        return None
    return str(instance) if instance is not None else None


def test_collect_logs_copies_process_and_task_logs_with_an_index(
    fake_repo: Path, tmp_path: Path
) -> None:
    backend = LocalBackend(load_config(environ={"STACK_REPO_ROOT": str(fake_repo)}))
    backend.paths.ensure()
    backend.paths.log("mlflow").write_text("mlflow says hi\n")
    task_log = backend.paths.airflow_home / "logs" / "dag_id=ml_training" / "attempt=1.log"
    task_log.parent.mkdir(parents=True)
    task_log.write_text("{}\n")

    index = backend.collect_logs(tmp_path / "collected")

    text = index.read_text()
    assert "processes/mlflow.log" in text
    assert "airflow-tasks/dag_id=ml_training/attempt=1.log" in text
    assert (tmp_path / "collected" / "processes" / "mlflow.log").read_text() == "mlflow says hi\n"
