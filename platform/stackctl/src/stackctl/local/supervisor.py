"""Start processes in their own session and stop exactly those processes later.

Each process is a session (and process-group) leader, logs to its own file, and gets a pid file
that records its pid *and* start time, plus two marker variables in its environment that every
descendant inherits. `stop` only signals a pid whose start time still matches (so a reused pid is
never killed), and finds descendants that left the group through the markers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

INSTANCE_ENV = "STACKCTL_INSTANCE"
PROCESS_ENV = "STACKCTL_PROCESS"
CREATE_TIME_TOLERANCE_SECONDS = 0.05


class ProcessRecord(BaseModel):
    """What the pid file of one started process says."""

    model_config = ConfigDict(frozen=True)

    name: str
    component: str
    pid: int
    create_time: float
    argv: list[str]
    log: Path
    instance: str
    stop_signal: int = int(signal.SIGTERM)


@dataclass
class StopReport:
    """How one process (and its group) ended."""

    name: str
    pid: int
    outcome: str  # stopped | killed | not running | pid reused (left alone)
    killed: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _matches(proc: psutil.Process, record: ProcessRecord) -> bool:
    try:
        alive: bool = proc.status() != psutil.STATUS_ZOMBIE
        drift = abs(float(proc.create_time()) - record.create_time)
        return alive and drift < CREATE_TIME_TOLERANCE_SECONDS
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def leader(record: ProcessRecord) -> psutil.Process | None:
    """The recorded process if it is still the one we started (same pid and start time)."""
    try:
        proc = psutil.Process(record.pid)
    except psutil.NoSuchProcess:
        return None
    return proc if _matches(proc, record) else None


def marked_processes(record: ProcessRecord) -> list[psutil.Process]:
    """Live processes that inherited this record's markers (the leader's descendants)."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            if (
                env.get(INSTANCE_ENV) == record.instance
                and env.get(PROCESS_ENV) == record.name
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def _signal_all(procs: Iterable[psutil.Process], record: ProcessRecord, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # The group id is the leader's pid: only signal it while the leader is verified ours.
        if leader(record) is not None:
            os.killpg(record.pid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.send_signal(sig)


class Supervisor:
    """Starts processes for one stack instance and stops them by pid file."""

    def __init__(self, pid_dir: Path, instance: str) -> None:
        self.pid_dir = pid_dir
        self.instance = instance
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def start(
        self,
        name: str,
        component: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> ProcessRecord:
        """Start `argv` in a new session, output appended to `log`, and write its pid file."""
        log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n==> {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, INSTANCE_ENV: self.instance, PROCESS_ENV: name},
                cwd=cwd,
                start_new_session=True,
            )
        self._children[name] = child
        try:
            create_time = psutil.Process(child.pid).create_time()
        except psutil.NoSuchProcess:  # exited at once; keep a record so the log is reported
            create_time = 0.0
        record = ProcessRecord(
            name=name,
            component=component,
            pid=child.pid,
            create_time=create_time,
            argv=list(argv),
            log=log,
            instance=self.instance,
            stop_signal=int(stop_signal),
        )
        self.pid_file(name).write_text(record.model_dump_json(indent=2) + "\n")
        return record

    def records(self) -> list[ProcessRecord]:
        """Every process this state folder says it started, oldest first."""
        if not self.pid_dir.is_dir():
            return []
        records = [
            ProcessRecord.model_validate_json(path.read_text())
            for path in sorted(self.pid_dir.glob("*.json"))
        ]
        return sorted(records, key=lambda record: record.create_time)

    def exit_code(self, record: ProcessRecord) -> int | None:
        """The exit code if the process ended (reaping it when we are its parent)."""
        child = self._children.get(record.name)
        if child is not None:
            return child.poll()
        return None if leader(record) is not None else -1

    def is_running(self, record: ProcessRecord) -> bool:
        child = self._children.get(record.name)
        if child is not None and child.poll() is not None:
            return False
        return leader(record) is not None

    def stop(self, record: ProcessRecord, *, grace: float = 15.0) -> StopReport:
        """Stop one process and everything it spawned; escalate to SIGKILL after `grace`."""
        return self.stop_many([record], grace=grace)[0]

    def stop_many(
        self, records: Sequence[ProcessRecord], *, grace: float = 15.0
    ) -> list[StopReport]:
        """Signal all `records` at once, wait for them together, then SIGKILL what is left."""
        started = time.monotonic()
        targets: dict[str, list[psutil.Process]] = {}
        reports: dict[str, StopReport] = {}
        for record in records:
            lead = leader(record)
            procs = marked_processes(record)
            if lead is not None and all(p.pid != lead.pid for p in procs):
                procs.append(lead)
            if lead is None and not procs:
                reused = psutil.pid_exists(record.pid) and record.name not in self._children
                outcome = "pid reused (left alone)" if reused else "not running"
                reports[record.name] = StopReport(record.name, record.pid, outcome)
                continue
            targets[record.name] = procs
            _signal_all(procs, record, record.stop_signal)
        by_name = {record.name: record for record in records}
        gone_at: dict[int, float] = {}

        def on_exit(proc: psutil.Process) -> None:
            gone_at[proc.pid] = time.monotonic()

        everything = [p for procs in targets.values() for p in procs]
        _, alive = psutil.wait_procs(everything, timeout=grace, callback=on_exit)
        survivors = {p.pid for p in alive}
        for name, procs in targets.items():
            left = [p for p in procs if p.pid in survivors]
            record = by_name[name]
            if left:
                _signal_all(left, record, signal.SIGKILL)
                psutil.wait_procs(left, timeout=5, callback=on_exit)
            ended = max((gone_at.get(p.pid, time.monotonic()) for p in procs), default=started)
            reports[name] = StopReport(
                name,
                record.pid,
                "killed" if left else "stopped",
                killed=sorted(p.pid for p in left),
                seconds=ended - started,
            )
        for record in records:
            child = self._children.pop(record.name, None)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=1)
            self.pid_file(record.name).unlink(missing_ok=True)
        return [reports[record.name] for record in records]

    def stop_all(self, *, grace: float = 15.0) -> list[StopReport]:
        """Stop every process recorded in the pid folder, newest first in the report."""
        return self.stop_many(list(reversed(self.records())), grace=grace)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
