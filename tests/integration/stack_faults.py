"""Fault injection: SIGKILL one service (the local backend's processes, found through its pid
records; the compose backend's containers) and bring it back up the way the backend's `up` does."""

from __future__ import annotations

import contextlib
from typing import Any

import psutil


class LocalFaults:
    """Kill and restart components of a running `stackctl.local.LocalBackend`."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def records(self, component: str) -> list[Any]:
        records = [r for r in self.backend.supervisor().records() if r.component == component]
        assert records, f"the local stack has no running {component!r} process"
        return records

    def processes(self, component: str) -> list[psutil.Process]:
        """Every live process of `component`: the recorded leaders' sessions and descendants."""
        from stackctl.local.supervisor import scan_processes, stack_processes

        seen = scan_processes()
        found = {
            proc.pid: proc
            for record in self.records(component)
            for proc in stack_processes(record, seen)
        }
        return list(found.values())

    def kill(self, component: str) -> list[int]:
        """SIGKILL (no clean shutdown: a crash) every process of `component`; their pids."""
        procs = self.processes(component)
        assert procs, f"{component} is not running"
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        _, alive = psutil.wait_procs(procs, timeout=10)
        assert not alive, f"{component} survived SIGKILL: {alive}"
        return sorted(proc.pid for proc in procs)

    def restart(self, component: str) -> float:
        """Start `component` again the way `up` does and wait until it is ready; seconds taken."""
        return float(self.backend.restart(component))


class ComposeFaults:
    """Kill and restart services of a running `stackctl.compose.ComposeBackend`."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def kill(self, component: str) -> list[str]:
        """SIGKILL the containers of `component`; their names."""
        return list(self.backend.kill(component))

    def restart(self, component: str) -> float:
        return float(self.backend.restart(component))
