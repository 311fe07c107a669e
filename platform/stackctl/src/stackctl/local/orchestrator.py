"""Bring components up in parallel as their dependencies allow, with a live progress display.

A failure anywhere (or Ctrl-C) cancels the others, stops every process started so far and shows
the log tail of the component that failed.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress, TaskID

from stackctl.local.components.base import Component
from stackctl.local.context import RunContext
from stackctl.local.readiness import Cancelled, StartupError
from stackctl.progress import progress_display


@dataclass
class ComponentResult:
    name: str
    state: str  # ready | skipped | failed | cancelled | not started
    seconds: float | None = None
    detail: str = ""


class BringUpFailed(RuntimeError):
    """A component failed to start; everything started has been stopped."""

    def __init__(self, error: StartupError, results: list[ComponentResult]) -> None:
        super().__init__(str(error))
        self.error = error
        self.results = results


class Orchestrator:
    def __init__(self, ctx: RunContext, components: list[Component], console: Console) -> None:
        self.ctx = ctx
        self.components = {component.name: component for component in components}
        self.console = console
        self.results = {name: ComponentResult(name, "not started") for name in self.components}

    def _run_one(self, component: Component, progress: Progress, task: TaskID) -> float:
        def status(text: str) -> None:
            progress.update(task, description=f"[dim]{text[:90]}")

        started = time.monotonic()
        progress.start_task(task)
        component.bring_up(self.ctx, status)
        return time.monotonic() - started

    def run(self) -> list[ComponentResult]:
        """Bring every component up; raise BringUpFailed (after cleanup) on the first failure."""
        pending = dict(self.components)
        ready: set[str] = set()
        futures: dict[Future[float], str] = {}
        failure: StartupError | None = None
        with (
            progress_display(self.console) as progress,
            ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="up") as pool,
        ):
            tasks = {
                name: progress.add_task("waiting", start=False, component=name) for name in pending
            }
            for name, component in list(pending.items()):
                if (reason := component.skip_reason(self.ctx)) is not None:
                    self.results[name] = ComponentResult(name, "skipped", detail=reason)
                    progress.update(tasks[name], description=f"[yellow]{reason}")
                    ready.add(name)
                    del pending[name]
            try:
                while pending or futures:
                    for name, component in list(pending.items()):
                        if failure is None and all(
                            dep in ready for dep in component.depends_on(self.ctx)
                        ):
                            del pending[name]
                            futures[
                                pool.submit(self._run_one, component, progress, tasks[name])
                            ] = name
                    if not futures:
                        break
                    done, _ = wait(list(futures), timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = futures.pop(future)
                        failure = self._settle(name, future, progress, tasks[name]) or failure
                        if self.results[name].state == "ready":
                            ready.add(name)
                    if failure is not None:
                        self.ctx.cancel.set()
                        pending.clear()
            except KeyboardInterrupt:
                self.ctx.cancel.set()
                for name in futures.values():
                    self.results[name] = ComponentResult(name, "cancelled")
                progress.stop()
                self.console.print("[yellow]Interrupted: stopping everything started so far...")
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        if failure is not None:
            raise BringUpFailed(failure, list(self.results.values()))
        return list(self.results.values())

    def _settle(
        self, name: str, future: Future[float], progress: Progress, task: TaskID
    ) -> StartupError | None:
        try:
            seconds = future.result()
        except Cancelled:
            self.results[name] = ComponentResult(name, "cancelled")
            progress.update(task, description="[yellow]cancelled")
            progress.stop_task(task)
            return None
        except StartupError as exc:
            self.results[name] = ComponentResult(name, "failed", detail=str(exc))
            progress.update(task, description=f"[red]failed: {str(exc)[:80]}")
            progress.stop_task(task)
            return exc
        except Exception as exc:  # a bug or an unexpected error: still stop cleanly
            error = StartupError(name, f"{name}: {type(exc).__name__}: {exc}")
            self.results[name] = ComponentResult(name, "failed", detail=str(error))
            progress.update(task, description=f"[red]failed: {str(error)[:80]}")
            progress.stop_task(task)
            return error
        self.results[name] = ComponentResult(name, "ready", seconds)
        progress.update(task, description=f"[green]ready in {seconds:.1f}s", completed=1, total=1)
        progress.stop_task(task)
        return None
