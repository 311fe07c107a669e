"""Where the integration tier's time goes, measured by the run itself.

Every test's setup/call/teardown, the stack's bring-up and tear-down, and every DAG run the
tests waited for, with each task's queue-to-start and run time (from the task instances Airflow
reports), go to `reports/integration/<backend>/timings.json`; a summary is printed at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stackcontract.airflow_api import DagRun

SLOWEST_SHOWN = 8
PLUGIN_NAME = "stack-timings"


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 2) if start and end else None


@dataclass(frozen=True)
class TaskTiming:
    task_id: str
    state: str
    scheduled_to_queued: float | None  # the scheduler's share
    queued_to_start: float | None  # the executor's share: a task process starting up
    run: float | None  # the task's own work, as Airflow measured it

    @classmethod
    def of(cls, task_id: str, instance: dict[str, Any]) -> TaskTiming:
        scheduled = _instant(instance.get("scheduled_when"))
        queued = _instant(instance.get("queued_when"))
        started = _instant(instance.get("start_date"))
        duration = instance.get("duration")
        return cls(
            task_id,
            str(instance.get("state")),
            _seconds(scheduled, queued),
            _seconds(queued, started),
            round(float(duration), 2) if duration is not None else None,
        )


@dataclass(frozen=True)
class RunTiming:
    dag_id: str
    run_id: str
    state: str
    waited: float  # from the first poll to the finished state, as the test saw it
    span: float | None  # first task scheduled to last task ended, as Airflow saw it
    tasks: list[TaskTiming]

    @classmethod
    def of(cls, run: DagRun) -> RunTiming:
        tasks = [TaskTiming.of(task, info) for task, info in sorted(run.tasks.items())]
        starts = [
            _instant(i.get("scheduled_when") or i.get("queued_when")) for i in run.tasks.values()
        ]
        ends = [_instant(i.get("end_date")) for i in run.tasks.values()]
        first = min((s for s in starts if s), default=None)
        last = max((e for e in ends if e), default=None)
        return cls(
            run.dag_id, run.run_id, run.state, round(run.seconds, 2), _seconds(first, last), tasks
        )

    def total(self, part: str) -> float:
        return round(sum(getattr(task, part) or 0.0 for task in self.tasks), 1)


@dataclass(eq=False)  # pluggy keeps plugins in sets
class TierTimings:
    """A pytest plugin: collects the figures and writes them when the session ends."""

    backend: str
    path: Path
    phases: dict[str, float] = field(default_factory=dict)
    tests: dict[str, dict[str, float | str]] = field(default_factory=dict)
    runs: list[RunTiming] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def register(self, config: pytest.Config) -> None:
        config.pluginmanager.register(self, PLUGIN_NAME)

    def phase(self, name: str, seconds: float) -> None:
        self.phases[name] = round(seconds, 1)

    def dag_run(self, run: DagRun) -> None:
        if run.run_id not in {known.run_id for known in self.runs}:  # a reused run counts once
            self.runs.append(RunTiming.of(run))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed"})
        entry[report.when] = round(report.duration, 2)
        if report.outcome != "passed":
            entry["outcome"] = report.outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "session_seconds": round(time.monotonic() - self.started, 1),
            "phases": self.phases,
            "dag_runs": [asdict(run) for run in self.runs],
            "tests": self.tests,
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.tests:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.as_json(), indent=2) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tests:
            return
        write = terminalreporter.write_line
        terminalreporter.section(f"integration timings ({self.backend}): {self.path}")
        session = time.monotonic() - self.started
        phases = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in self.phases.items())
        write(f"session {session:.0f}s: {phases or 'no stack phases'}")
        for run in self.runs:
            write(
                f"{run.dag_id} {run.run_id}: {run.state}, waited {run.waited:.0f}s; tasks queued "
                f"{run.total('queued_to_start'):.0f}s, ran {run.total('run'):.0f}s "
                f"(over {len(run.tasks)} tasks)"
            )
        by_total = sorted(
            self.tests.items(),
            key=lambda item: -sum(v for k, v in item[1].items() if isinstance(v, float)),
        )
        for nodeid, entry in by_total[:SLOWEST_SHOWN]:
            parts = " ".join(f"{k} {v:.0f}s" for k, v in entry.items() if isinstance(v, float))
            write(f"  {nodeid}: {parts}")


def tier_timings(config: pytest.Config) -> TierTimings:
    """The session's plugin (registered by tests/integration/conftest.py)."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(plugin, TierTimings), "tests/integration/conftest.py registers it"
    return plugin
