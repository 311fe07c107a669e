"""The local backend: every service a process on this machine, state under `.stack/local/`."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from stackcontract.endpoints import Endpoints
from stackcontract.services import Effective
from stackcontract.settings import Ports, StackConfig
from stackctl.local.components.airflow import Airflow
from stackctl.local.components.base import Component
from stackctl.local.components.mlflow import MLflowServer
from stackctl.local.components.model_server import ModelServer
from stackctl.local.components.monitoring import Prometheus, Pushgateway
from stackctl.local.components.s3 import MinIO, Provision, SeaweedFS
from stackctl.local.context import (
    AIRFLOW_USERNAME,
    Credentials,
    LocalOptions,
    RunContext,
    S3Flavor,
)
from stackctl.local.orchestrator import BringUpFailed, ComponentResult, Orchestrator
from stackctl.local.paths import StatePaths
from stackctl.local.ports import check_ports
from stackctl.local.supervisor import StopReport, Supervisor, leader, log_tail
from stackctl.local.training import (
    TrainingFailed,
    TrainingResult,
    champion_served,
    train_local_champion,
)
from stackctl.prometheus import PUSHGATEWAY_USER

# Which Endpoints field holds the URL of each component (for `status`).
URL_FIELDS = {
    "s3": "s3_url",
    "mlflow": "mlflow_url",
    "airflow": "airflow_url",
    "model-server": "model_server_url",
    "prometheus": "prometheus_url",
    "pushgateway": "pushgateway_url",
}
STOP_GRACE_SECONDS = 20.0  # weed's filer waits up to 15 s for its gRPC streams


class StackError(RuntimeError):
    """`up`/`down` cannot proceed; the message says why and what to do."""


@dataclass
class ProcessStatus:
    name: str
    component: str
    pid: int
    alive: bool
    url: str | None
    log: Path


@dataclass
class UpReport:
    endpoints: Endpoints
    results: list[ComponentResult]
    training: TrainingResult | None
    reused: bool = False


class LocalBackend:
    name = "local"

    def __init__(
        self,
        config: StackConfig,
        *,
        state_dir: Path | None = None,
        console: Console | None = None,
        options: Mapping[str, Any] | LocalOptions | None = None,
    ) -> None:
        self.config = config
        self.options = LocalOptions.from_choices(options)
        self.console = console or Console(stderr=True)
        self.state_dir = state_dir or config.state_dir / "local"
        self.paths = StatePaths(self.state_dir)
        self._up_phases: dict[str, float] = {}

    # -- Backend protocol -------------------------------------------------------------------
    def up(self) -> Endpoints:
        """Bring the stack up (see `up_report`) and print the time each component took."""
        try:
            report = self.up_report()
        except TrainingFailed as exc:
            raise StackError(f"First training run failed:\n{exc}") from None
        self._print_up_report(report)
        self._up_phases = {r.name: r.seconds for r in report.results if r.seconds is not None}
        if report.training is not None:
            self._up_phases["train"] = report.training.seconds
        return report.endpoints

    def up_phases(self) -> dict[str, float]:
        return dict(self._up_phases)

    def _print_up_report(self, report: UpReport) -> None:
        if report.results:
            table = Table(title="Bring-up time per component")
            for column in ("component", "state", "seconds", "detail"):
                table.add_column(column, justify="right" if column == "seconds" else "left")
            for result in report.results:
                seconds = f"{result.seconds:.1f}" if result.seconds is not None else "-"
                table.add_row(result.name, result.state, seconds, result.detail)
            if report.training is not None:
                table.add_row(
                    "train",
                    report.training.run.state,
                    f"{report.training.seconds:.1f}",
                    f"{report.training.run.run_id} -> champion v{report.training.model_version}",
                )
            self.console.print(table)
        self.console.print(
            f"Endpoints written to {self.paths.endpoints}; logs in {self.paths.logs}."
        )

    def endpoints(self) -> Endpoints:
        return Endpoints.load(self.paths.endpoints)

    def down(self, *, purge: bool = False) -> None:
        """Stop every recorded process (pid and start time verified) and report each."""
        reports, seconds = self.stop(purge=purge)
        self._print_stop_reports(reports)
        self.console.print(
            f"Stopped in {seconds:.1f}s." + (f" Deleted {self.paths.root}." if purge else "")
        )

    def _print_stop_reports(self, reports: list[StopReport]) -> None:
        if not reports:
            self.console.print("Nothing was running.")
            return
        table = Table(title="Stopped")
        for column in ("process", "pid", "outcome", "SIGKILLed pids", "seconds"):
            table.add_column(column)
        for report in reports:
            table.add_row(
                report.name,
                str(report.pid),
                report.outcome,
                ", ".join(map(str, report.killed)),
                f"{report.seconds:.1f}",
            )
        self.console.print(table)

    def collect_logs(self, dest: Path) -> Path:
        """Copy process logs and Airflow task logs under `dest`; return the index it writes."""
        dest.mkdir(parents=True, exist_ok=True)
        copied: list[Path] = []
        if self.paths.logs.is_dir():
            shutil.copytree(self.paths.logs, dest / "processes", dirs_exist_ok=True)
            copied += sorted((dest / "processes").glob("*.log"))
        task_logs = self.paths.airflow_home / "logs"
        if task_logs.is_dir():
            shutil.copytree(task_logs, dest / "airflow-tasks", dirs_exist_ok=True)
            copied += sorted((dest / "airflow-tasks").rglob("*.log"))
        index = dest / "index.md"
        lines = [
            "# Local stack logs",
            "",
            "| process | pid | alive | log |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {s.name} | {s.pid} | {'yes' if s.alive else 'no'} | {s.log.name} |"
            for s in self.status()
        ]
        lines += ["", "## Files", ""] + [f"- {path.relative_to(dest)}" for path in copied]
        index.write_text("\n".join(lines) + "\n")
        return index

    # -- local specifics --------------------------------------------------------------------
    def supervisor(self, instance: str = "") -> Supervisor:
        return Supervisor(self.paths.pids, instance)

    def components(self, ctx: RunContext) -> list[Component]:
        s3: Component = MinIO() if self.options.s3 is S3Flavor.minio else SeaweedFS()
        pushgateway = Pushgateway()
        with_pushgateway = pushgateway.skip_reason(ctx) is None
        return [
            s3,
            Provision(),
            MLflowServer(),
            ModelServer(),
            Airflow(with_pushgateway=with_pushgateway),
            pushgateway,
            Prometheus(with_pushgateway=with_pushgateway),
        ]

    def context(self) -> RunContext:
        self.paths.ensure()
        return RunContext(
            config=self.config,
            paths=self.paths,
            credentials=Credentials.load_or_create(self.paths.credentials),
            supervisor=self.supervisor(secrets.token_hex(8)),
            options=self.options,
        )

    def restart(self, component: str) -> float:
        """Start one component of the running stack again the way `up` does (after a crash) and
        wait until it is ready; the seconds it took."""
        started = time.monotonic()
        ctx = self.context()
        matches = [c for c in self.components(ctx) if c.name == component]
        if not matches:
            names = ", ".join(c.name for c in self.components(ctx))
            raise StackError(f"The local backend has no component {component!r} ({names}).")
        matches[0].bring_up(ctx, lambda _message: None)
        return time.monotonic() - started

    def effective_settings(self) -> dict[str, list[Effective]]:
        """Per declared service, what its processes would run with (nothing is started): the
        drift check compares this with platform/config/services.toml."""
        ctx = RunContext(
            config=self.config,
            paths=self.paths,
            credentials=Credentials.generate(),
            supervisor=self.supervisor(),
            options=self.options,
        )
        declared = ctx.services.services
        return {
            component.name: component.effective(ctx)
            for component in self.components(ctx)
            if component.name in declared
        }

    def running(self) -> list[ProcessStatus]:
        return [status for status in self.status() if status.alive]

    def up_report(self) -> UpReport:
        """Bring everything up (or reuse a healthy running stack) and, unless told not to, train
        a first champion when the model server has none."""
        reused = self._reuse_running()
        if reused is not None:
            self._adopt_running_ports()
        ctx = self.context()
        if reused is not None:
            endpoints, results = reused, []
        else:
            results = self._bring_up(ctx)
            endpoints = self._endpoints(ctx, results)
            endpoints.dump(self.paths.endpoints)
            self.paths.ports.write_text(self.config.ports.model_dump_json(indent=2) + "\n")
        training = None
        if self.options.train and champion_served(ctx.model_server_url):
            self.console.print("The model server already serves a champion: no training run.")
        elif self.options.train:
            try:
                training = train_local_champion(ctx, self.console)
            except KeyboardInterrupt:
                if reused is None:
                    self._abort(ctx, None)
                raise
        return UpReport(endpoints, results, training, reused=reused is not None)

    def _adopt_running_ports(self) -> None:
        """A reused stack keeps the ports it was started with, whatever this shell overrides."""
        if not self.paths.ports.is_file():
            return
        running = Ports.model_validate_json(self.paths.ports.read_text())
        if running != self.config.ports:
            self.console.print("[yellow]Using the ports the running stack was started with.")
            self.config = self.config.model_copy(update={"ports": running})

    def _bring_up(self, ctx: RunContext) -> list[ComponentResult]:
        components = self.components(ctx)
        problems = [p for c in components if (p := c.preflight(ctx)) is not None]
        if problems:
            raise StackError("\n".join(problems))
        active = [c for c in components if c.skip_reason(ctx) is None]
        check_ports(claim for component in active for claim in component.port_claims(ctx))
        try:
            return Orchestrator(ctx, components, self.console).run()
        except BringUpFailed as failed:
            self._abort(ctx, failed.error.component)
            raise StackError(str(failed.error)) from None
        except KeyboardInterrupt:
            self._abort(ctx, None)
            raise

    def _reuse_running(self) -> Endpoints | None:
        alive = self.running()
        if not alive:
            for stale in self.supervisor().records():  # pid files of processes long gone
                self.supervisor().pid_file(stale.name).unlink(missing_ok=True)
            return None
        dead = [s.name for s in self.status() if not s.alive]
        if dead or not self.paths.endpoints.is_file() or not self._answers():
            raise StackError(
                "A local stack is partly running ("
                + ", ".join(s.name for s in alive)
                + (f"; stopped: {', '.join(dead)}" if dead else "")
                + "). Run `stackctl down` first."
            )
        self.console.print("[green]A healthy local stack is already running: reusing it.")
        return self.endpoints()

    def _answers(self) -> bool:
        endpoints = Endpoints.load(self.paths.endpoints)
        urls = [f"{endpoints.mlflow_url}/health", f"{endpoints.model_server_url}/health"]
        urls.append(f"{endpoints.airflow_url}/api/v2/monitor/health")
        try:
            return all(httpx.get(url, timeout=5).status_code == 200 for url in urls)
        except httpx.HTTPError:
            return False

    def _abort(self, ctx: RunContext, failed_component: str | None) -> None:
        """Stop every process this `up` started and show the failing component's log tail."""
        reports = ctx.supervisor.stop_many(
            list(reversed(ctx.supervisor.records())), grace=STOP_GRACE_SECONDS
        )
        killed = [r for r in reports if r.outcome == "killed"]
        self.console.print(
            f"[yellow]Stopped {len(reports)} process(es) started by this run"
            + (f"; had to SIGKILL {', '.join(r.name for r in killed)}" if killed else "")
        )
        if failed_component is None:
            return
        logs = sorted(ctx.paths.logs.glob(f"{failed_component}*.log"))
        if failed_component == "provision":
            logs = sorted(ctx.paths.logs.glob("s3*.log"))
        for log in logs:
            self.console.rule(f"last lines of {log}")
            self.console.print(log_tail(log), markup=False, highlight=False)

    def _endpoints(self, ctx: RunContext, results: list[ComponentResult]) -> Endpoints:
        ready = {result.name for result in results if result.state == "ready"}
        return Endpoints(
            backend=self.name,
            s3_url=ctx.s3_url,
            s3_access_key=ctx.credentials.s3_access_key,
            s3_secret_key=ctx.credentials.s3_secret_key,
            s3_bucket=self.config.bucket,
            mlflow_url=ctx.mlflow_url,
            mlflow_username=ctx.mlflow_username,
            mlflow_password=ctx.credentials.mlflow_password,
            airflow_url=ctx.airflow_url,
            airflow_username=AIRFLOW_USERNAME,
            airflow_password=ctx.credentials.airflow_password,
            model_server_url=ctx.model_server_url,
            model_server_reload_token=ctx.credentials.model_server_reload_token,
            model_name=self.config.model_name,
            prometheus_url=ctx.prometheus_url if "prometheus" in ready else None,
            pushgateway_url=ctx.pushgateway_url if "pushgateway" in ready else None,
            pushgateway_username=PUSHGATEWAY_USER if "pushgateway" in ready else None,
            pushgateway_password=(
                ctx.credentials.pushgateway_password if "pushgateway" in ready else None
            ),
        )

    def status(self) -> list[ProcessStatus]:
        urls: dict[str, str | None] = {}
        if self.paths.endpoints.is_file():
            data = Endpoints.load(self.paths.endpoints).model_dump()
            urls = {component: data.get(field) for component, field in URL_FIELDS.items()}
        return [
            ProcessStatus(
                name=record.name,
                component=record.component,
                pid=record.pid,
                alive=leader(record) is not None,
                url=urls.get(record.component),
                log=record.log,
            )
            for record in self.supervisor().records()
        ]

    def stop(self, *, purge: bool = False) -> tuple[list[StopReport], float]:
        """Stop every process recorded under `.stack/local/pids`; `purge` deletes the state."""
        started = time.monotonic()
        reports = self.supervisor().stop_all(grace=STOP_GRACE_SECONDS)
        self.paths.endpoints.unlink(missing_ok=True)
        self.paths.ports.unlink(missing_ok=True)
        if purge and self.paths.root.exists():
            shutil.rmtree(self.paths.root)
        return reports, time.monotonic() - started
