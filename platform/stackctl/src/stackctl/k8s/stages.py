"""Per-stage deadlines and durations: every stage of a kind run (preflight, render, build, create,
load, apply, wait, test, collect, delete) gets its own deadline, and its duration and outcome are
written to `reports/kind/durations.json` as soon as the stage ends (so a crashed run keeps them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], float]

DEFAULT_STAGE_DEADLINES: dict[str, float] = {
    "preflight": 60,
    "render": 180,
    "create": 300,
    "build": 1200,
    "push": 600,
    "load": 600,
    "apply": 180,
    "wait": 900,
    "test": 3600,
    "collect": 300,
    "delete": 180,
}


class StageDeadlineExceededError(TimeoutError):
    """A stage ran past its deadline."""


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time a stage must finish by."""

    stage: str
    seconds: float
    started: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def starting_now(cls, stage: str, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(stage, seconds, clock(), clock)

    def remaining(self) -> float:
        return max(0.0, self.started + self.seconds - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def check(self) -> None:
        if self.expired():
            raise StageDeadlineExceededError(
                f"Stage {self.stage!r} exceeded its deadline of {self.seconds:.0f}s."
            )


@dataclass
class StageRecord:
    stage: str
    deadline_seconds: float
    duration_seconds: float
    outcome: str  # "ok" | "failed" | "skipped"
    started_at: str
    error: str | None = None


@dataclass
class StageRecorder:
    """Times stages and rewrites `path` (durations.json) after each one."""

    path: Path
    deadlines: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STAGE_DEADLINES))
    clock: Clock = time.monotonic
    records: list[StageRecord] = field(default_factory=list)
    run_info: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[Deadline]:
        seconds = self.deadlines.get(name, DEFAULT_STAGE_DEADLINES.get(name, 600))
        deadline = Deadline.starting_now(name, seconds, self.clock)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            yield deadline
        except BaseException as exc:
            self._record(name, deadline, "failed", started_at, f"{type(exc).__name__}: {exc}")
            raise
        self._record(name, deadline, "ok", started_at, None)

    def resume(self, **match: str) -> None:
        """Continue the run already in `path` if its run info matches (e.g. `stackctl down` in a
        new process appends `delete` to the durations of the `up` that created the cluster)."""
        if not self.path.is_file():
            return
        data = json.loads(self.path.read_text())
        if all(data.get(key) == value for key, value in match.items()):
            self.run_info = {
                k: str(v) for k, v in data.items() if k not in ("stages", "total_seconds")
            }
            self.records = [StageRecord(**row) for row in data.get("stages", [])]

    def skip(self, name: str, reason: str) -> None:
        """Record a stage that did not run (e.g. create when a cluster was reused)."""
        seconds = self.deadlines.get(name, DEFAULT_STAGE_DEADLINES.get(name, 600))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.records.append(StageRecord(name, seconds, 0.0, "skipped", now, reason))
        self.write()

    def _record(
        self, name: str, deadline: Deadline, outcome: str, started_at: str, error: str | None
    ) -> None:
        duration = round(self.clock() - deadline.started, 3)
        self.records.append(
            StageRecord(name, deadline.seconds, duration, outcome, started_at, error)
        )
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        total = round(sum(r.duration_seconds for r in self.records), 3)
        payload = {
            **self.run_info,
            "total_seconds": total,
            "stages": [asdict(r) for r in self.records],
        }
        self.path.write_text(json.dumps(payload, indent=2) + "\n")
