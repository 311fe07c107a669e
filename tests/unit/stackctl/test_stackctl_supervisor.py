"""The process supervisor: `down` stops exactly what `up` started, children included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stackctl.local.supervisor import ProcessRecord, Supervisor, log_tail

# A parent that forks two sleeping children into its group and one that escapes with setsid.
FAMILY = "sleep 300 & sleep 300 & setsid sleep 300 & echo started; wait"


def family_pids(record: ProcessRecord) -> set[int]:
    """The leader and every descendant, waiting until the three sleeps exist."""
    deadline = time.monotonic() + 10
    while True:
        leader = psutil.Process(record.pid)
        pids = {leader.pid} | {child.pid for child in leader.children(recursive=True)}
        if len(pids) >= 4 or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def escaped_pid(instance: str) -> int:
    """The setsid child has left the group (and is no child of ours once reparented). Polled:
    until `setsid` has exec'd, the process still reads `setsid sleep 300`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            try:
                env = proc.environ()
                own_group = os.getpgid(proc.pid) == proc.pid
            except (psutil.Error, OSError):
                continue
            is_sleep = (proc.info["cmdline"] or [])[:2] == ["sleep", "300"]
            if env.get("STACKCTL_INSTANCE") == instance and own_group and is_sleep:
                return int(proc.pid)
        time.sleep(0.05)
    raise AssertionError("the setsid child was not found")


def test_down_from_a_new_supervisor_leaves_no_process(tmp_path: Path) -> None:
    up = Supervisor(tmp_path / "pids", instance="test-instance-a")
    record = up.start(
        "family", "dummy", ["sh", "-c", FAMILY], env=dict(os.environ), log=tmp_path / "family.log"
    )
    pids = family_pids(record)
    escaped = escaped_pid("test-instance-a")
    assert os.getpgid(record.pid) == record.pid  # its own process group / session
    assert len(pids) == 4

    # `stackctl down` runs in another process: it only has the pid files.
    down = Supervisor(tmp_path / "pids", instance="")
    [report] = down.stop_all(grace=5)

    assert report.outcome == "stopped"
    survivors = [
        pid
        for pid in [*pids, escaped]
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []
    assert not (tmp_path / "pids" / "family.json").exists()
    assert "started" in log_tail(tmp_path / "family.log").splitlines()  # output, not the header


def wait_for_trap(log: Path) -> None:
    """Wait for the line the shell prints once its trap is set. The log's first line is the
    supervisor's header, which quotes the command ("echo ready"): matching "ready" anywhere let
    SIGTERM land before the trap under load, and the shell then simply stopped."""
    deadline = time.monotonic() + 10
    while "ready" not in log_tail(log).splitlines() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ready" in log_tail(log).splitlines(), "the shell never set its trap"


def test_process_started_while_stopping_is_stopped_too(tmp_path: Path) -> None:
    """What Airflow's LocalExecutor does on SIGTERM with a fork server: a new process, without
    the markers (its environment rewritten), orphaned as its parent exits. It is in the session."""
    supervisor = Supervisor(tmp_path / "pids", instance="test-instance-d")
    late = "trap 'env -i sleep 300 & echo $! > late.pid; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    record = supervisor.start(
        "late",
        "dummy",
        ["sh", "-c", late],
        env=dict(os.environ),
        log=tmp_path / "l.log",
        cwd=tmp_path,
    )
    wait_for_trap(tmp_path / "l.log")

    report = Supervisor(tmp_path / "pids", instance="").stop_all(grace=2)[0]

    late_pid = int((tmp_path / "late.pid").read_text())
    # "killed" when SIGTERM reached the forked child before it dropped the shell's trap (the
    # trap swallows it, then the child execs sleep): stop SIGKILLs what outlives the grace.
    assert report.outcome in {"stopped", "killed"}
    alive = (
        psutil.pid_exists(late_pid) and psutil.Process(late_pid).status() != psutil.STATUS_ZOMBIE
    )
    assert not alive, f"the process started during stop ({late_pid}) is still running"
    assert not supervisor.is_running(record)


def test_process_ignoring_sigterm_is_killed_and_reported(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "pids", instance="test-instance-b")
    stubborn = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
    record = supervisor.start(
        "stubborn", "dummy", ["sh", "-c", stubborn], env=dict(os.environ), log=tmp_path / "s.log"
    )
    wait_for_trap(tmp_path / "s.log")

    report = supervisor.stop(record, grace=1)

    assert report.outcome == "killed"
    assert record.pid in report.killed
    assert not supervisor.is_running(record)


def test_reused_pid_is_left_alone(tmp_path: Path) -> None:
    """A pid file whose pid now belongs to another process (other start time) kills nothing."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        real_start = psutil.Process(bystander.pid).create_time()
        stale = ProcessRecord(
            name="old-mlflow",
            component="mlflow",
            pid=bystander.pid,
            create_time=real_start - 3600,  # the process we once started, an hour earlier
            argv=["mlflow", "server"],
            log=tmp_path / "old.log",
            instance="gone-instance",
        )
        pids = tmp_path / "pids"
        pids.mkdir()
        (pids / "old-mlflow.json").write_text(stale.model_dump_json())

        [report] = Supervisor(pids, instance="").stop_all(grace=1)

        assert report.outcome == "pid reused (left alone)"
        assert bystander.poll() is None  # still running
        assert not (pids / "old-mlflow.json").exists()  # the stale pid file is cleaned up
    finally:
        bystander.kill()
        bystander.wait()


def test_exited_process_is_not_running(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "pids", instance="test-instance-c")
    record = supervisor.start(
        "quick", "dummy", ["sh", "-c", "exit 3"], env=dict(os.environ), log=tmp_path / "q.log"
    )
    deadline = time.monotonic() + 10
    while supervisor.is_running(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.exit_code(record) == 3
    assert supervisor.stop(record).outcome == "not running"


@pytest.mark.parametrize("lines", [1, 5])
def test_log_tail_returns_the_last_lines(tmp_path: Path, lines: int) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert log_tail(log, lines).splitlines() == [f"line {n}" for n in range(100 - lines, 100)]
