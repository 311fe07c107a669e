"""Start processes in their own session and stop exactly those processes later.

Each process is a session (and process-group) leader, logs to its own file, and gets a pid file
that records its pid *and* start time, plus two marker variables in its environment that every
descendant inherits. `stop` only signals a pid whose start time still matches (so a reused pid is
never killed). It finds the descendants two ways: by session id (the kernel keeps a session's id
from being reused while any member lives, and members that changed process group or lost their
environment to setproctitle stay in it), and by the markers (those that called setsid). It scans
again until nothing is left, so a process started while the stack shuts down (Airflow's
LocalExecutor restarts its multiprocessing fork server, which forks a fresh worker) is stopped too.
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
# How often `stop` looks again for what is left (and for processes started meanwhile).
RESCAN_SECONDS = 0.2
SIGKILL_WAIT_SECONDS = 5.0


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
    outcome: str  # stopped | killed | not running | pid reused (left alone) | survived SIGKILL
    killed: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _same_start(proc: psutil.Process, record: ProcessRecord) -> bool:
    drift = abs(float(proc.create_time()) - record.create_time)
    return drift < CREATE_TIME_TOLERANCE_SECONDS


def _matches(proc: psutil.Process, record: ProcessRecord) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE and _same_start(proc, record)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def leader(record: ProcessRecord) -> psutil.Process | None:
    """The recorded process if it is still the one we started (same pid and start time)."""
    try:
        proc = psutil.Process(record.pid)
    except psutil.NoSuchProcess:
        return None
    return proc if _matches(proc, record) else None


def _pid_reused(record: ProcessRecord) -> bool:
    """True when the recorded pid now names another process (a zombie of ours is not reuse)."""
    try:
        return not _same_start(psutil.Process(record.pid), record)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


@dataclass(frozen=True)
class SeenProcess:
    """One live process as a scan saw it: its session id and stack markers."""

    proc: psutil.Process
    session: int
    instance: str | None
    name: str | None


def scan_processes() -> list[SeenProcess]:
    """Every live process but this one, with what `stop` needs to know whose it is."""
    seen: list[SeenProcess] = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            session = os.getsid(proc.pid)
        except (psutil.Error, OSError):
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):  # exited meanwhile, or a kernel thread
            env = {}
        seen.append(SeenProcess(proc, session, env.get(INSTANCE_ENV), env.get(PROCESS_ENV)))
    return seen


def marked_processes(
    record: ProcessRecord, seen: list[SeenProcess] | None = None
) -> list[psutil.Process]:
    """Live processes that inherited this record's markers (descendants that kept them)."""
    return [
        item.proc
        for item in (scan_processes() if seen is None else seen)
        if item.instance == record.instance and item.name == record.name
    ]


def stack_processes(
    record: ProcessRecord, seen: list[SeenProcess] | None = None
) -> list[psutil.Process]:
    """Everything `stop` must end for this record: its session and every marked process."""
    seen = scan_processes() if seen is None else seen
    # While any member of the session lives, the kernel does not hand its id to a new process:
    # so unless the pid names another process now, every process in that session is ours.
    session = [] if _pid_reused(record) else [i.proc for i in seen if i.session == record.pid]
    by_pid = {proc.pid: proc for proc in [*session, *marked_processes(record, seen)]}
    return list(by_pid.values())


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
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
        """Signal all `records` at once and wait for them together, signalling any process that
        joins them meanwhile; SIGKILL what is left after `grace`."""
        started = time.monotonic()
        reports: dict[str, StopReport] = {}
        pending: dict[str, ProcessRecord] = {}
        seen = scan_processes()
        for record in records:
            if stack_processes(record, seen):
                pending[record.name] = record
            else:
                reused = _pid_reused(record) and record.name not in self._children
                outcome = "pid reused (left alone)" if reused else "not running"
                reports[record.name] = StopReport(record.name, record.pid, outcome)
        signalled: dict[str, set[int]] = {name: set() for name in pending}
        killed: dict[str, set[int]] = {name: set() for name in pending}
        while pending:
            waiting: list[psutil.Process] = []
            elapsed = time.monotonic() - started
            seen = scan_processes()
            for name, record in list(pending.items()):
                procs = stack_processes(record, seen)
                if not procs or elapsed > grace + SIGKILL_WAIT_SECONDS:
                    outcome = "stopped" if not killed[name] else "killed"
                    if procs:
                        outcome = f"survived SIGKILL: {sorted(p.pid for p in procs)}"
                    reports[name] = StopReport(
                        name, record.pid, outcome, killed=sorted(killed[name]), seconds=elapsed
                    )
                    del pending[name]
                elif elapsed <= grace:
                    new = [proc for proc in procs if proc.pid not in signalled[name]]
                    _signal_all(new, record.stop_signal)
                    signalled[name].update(proc.pid for proc in new)
                else:
                    _signal_all(procs, signal.SIGKILL)
                    killed[name].update(proc.pid for proc in procs)
                waiting += procs
            if pending:
                psutil.wait_procs(waiting, timeout=RESCAN_SECONDS)
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
