"""Stage deadlines and reports/kind/durations.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.k8s.stages import Deadline, StageDeadlineExceededError, StageRecorder


def test_durations_json_records_each_stage_as_it_ends(tmp_path: Path) -> None:
    clock = [100.0]
    path = tmp_path / "reports/kind/durations.json"
    recorder = StageRecorder(path, deadlines={"create": 300, "wait": 5}, clock=lambda: clock[0])
    recorder.run_info = {"backend": "kind"}
    with recorder.stage("create") as deadline:
        clock[0] += 42.5
        assert deadline.remaining() == pytest.approx(257.5)
    first = json.loads(path.read_text())  # written before the next stage starts
    assert first["stages"][0]["stage"] == "create"

    def failing_wait() -> None:
        with recorder.stage("wait"):
            clock[0] += 1.25
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_wait()
    recorder.skip("load", "reused cluster")
    data = json.loads(path.read_text())
    assert data["backend"] == "kind"
    assert data["total_seconds"] == pytest.approx(43.75)
    rows = [
        (s["stage"], s["deadline_seconds"], s["duration_seconds"], s["outcome"])
        for s in data["stages"]
    ]
    assert rows == [
        ("create", 300, 42.5, "ok"),
        ("wait", 5, 1.25, "failed"),
        ("load", 600, 0.0, "skipped"),
    ]
    assert data["stages"][1]["error"] == "RuntimeError: boom"


def test_deadline_check_raises_once_expired() -> None:
    now = [0.0]
    deadline = Deadline("load", 10, 0.0, clock=lambda: now[0])
    deadline.check()
    now[0] = 10.5
    assert deadline.expired()
    with pytest.raises(StageDeadlineExceededError, match="'load' exceeded its deadline of 10s"):
        deadline.check()


def test_a_later_process_appends_to_the_same_run(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    up = StageRecorder(path, clock=lambda: 0.0)
    up.run_info = {"backend": "kind", "cluster": "aok8s-1"}
    with up.stage("create"):
        pass
    down = StageRecorder(path, clock=lambda: 0.0)
    down.resume(cluster="aok8s-1")
    with down.stage("delete"):
        pass
    assert [s["stage"] for s in json.loads(path.read_text())["stages"]] == ["create", "delete"]
    other = StageRecorder(path, clock=lambda: 0.0)
    other.resume(cluster="aok8s-2")  # another cluster's run: start afresh
    with other.stage("delete"):
        pass
    assert [s["stage"] for s in json.loads(path.read_text())["stages"]] == ["delete"]
