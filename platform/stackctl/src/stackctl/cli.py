"""`stackctl`: bring the stack up and down (local processes by default; kind; eks)."""

from __future__ import annotations

import importlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stackctl.backend import Backend, Endpoints
from stackctl.config import ConfigError, StackConfig, load_config
from stackctl.local import LocalBackend, LocalOptions, S3Flavor, StackError
from stackctl.local.backend import UpReport
from stackctl.local.ports import PortConflictError
from stackctl.local.supervisor import StopReport, log_tail
from stackctl.local.training import TrainingFailed

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
# Wide enough for URLs and secrets when output goes to a file or CI log.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
# Other backends live in modules written alongside this one; imported only when chosen.
REMOTE_BACKENDS = {
    "kind": ("stackctl.k8s.backend", "KindBackend"),
    "eks": ("stackctl.eks.backend", "EksBackend"),
}


class BackendName(StrEnum):
    local = "local"
    kind = "kind"
    eks = "eks"


def _config() -> StackConfig:
    try:
        return load_config()
    except ConfigError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def _remote_backend(name: BackendName, config: StackConfig) -> Backend:
    module_name, class_name = REMOTE_BACKENDS[name.value]
    try:
        module = importlib.import_module(module_name)
        backend_class: Any = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        console.print(
            f"[red]The {name.value} backend is not available in this checkout "
            f"({module_name}.{class_name}: {exc}). Use `--backend local`."
        )
        raise typer.Exit(2) from None
    backend: Backend = backend_class(config) if _takes_config(backend_class) else backend_class()
    return backend


def _remote(name: BackendName, action: str, **kwargs: Any) -> Any:
    """Run `action` on a non-local backend; its errors already say what failed and the fix."""
    backend = _remote_backend(name, _config())
    try:
        return getattr(backend, action)(**kwargs)
    except RuntimeError as exc:
        console.print(f"[red]{name.value} {action} failed: {exc}")
        raise typer.Exit(1) from None


def _takes_config(backend_class: Any) -> bool:
    import inspect

    try:
        parameters = inspect.signature(backend_class).parameters
    except (TypeError, ValueError):
        return False
    return "config" in parameters


def _local(s3: S3Flavor = S3Flavor.seaweedfs, train: bool = True, **options: Any) -> LocalBackend:
    return LocalBackend(_config(), LocalOptions(s3=s3, train=train, **options), console)


@app.command()
def up(
    backend: Annotated[BackendName, typer.Option(help="Where the stack runs.")] = BackendName.local,
    s3: Annotated[
        S3Flavor, typer.Option(help="Object store of the local backend.")
    ] = S3Flavor.seaweedfs,
    train: Annotated[
        bool,
        typer.Option("--train/--no-train", help="Trigger ml_training once and serve its champion."),
    ] = True,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the first training run.", min=30)
    ] = 1200.0,
    budget_scale: Annotated[
        float, typer.Option(help="Multiply every component's start-up time budget (slow machines).")
    ] = 1.0,
    mlflow_backend_store_uri: Annotated[
        str | None,
        typer.Option(help="MLflow store, e.g. postgresql://u:p@host/db (default SQLite)."),
    ] = None,
) -> None:
    """Bring the stack up, print its URLs and credentials, and train a first champion."""
    if backend is not BackendName.local:
        _print_endpoints(_remote(backend, "up"))
        return
    local = _local(
        s3,
        train,
        train_timeout=timeout,
        budget_scale=budget_scale,
        mlflow_backend_store_uri=mlflow_backend_store_uri,
    )
    try:
        report = local.up_report()
    except (StackError, PortConflictError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    except TrainingFailed as exc:
        console.print(f"[red]First training run failed:[/red]\n{exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; nothing started by this run is left running.")
        raise typer.Exit(130) from None
    _print_up_report(report, local)


def _print_up_report(report: UpReport, local: LocalBackend) -> None:
    if report.results:
        table = Table(title="Bring-up time per component")
        table.add_column("component")
        table.add_column("state")
        table.add_column("seconds", justify="right")
        table.add_column("detail")
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
        console.print(table)
    _print_endpoints(report.endpoints)
    console.print(f"Endpoints written to {local.paths.endpoints}; logs in {local.paths.logs}.")
    console.print("Stop everything with `stackctl down` (add --purge to delete the data).")


def _print_endpoints(endpoints: Endpoints) -> None:
    table = Table(title=f"Stack endpoints ({endpoints.backend})")
    table.add_column("service")
    table.add_column("url")
    table.add_column("credentials")
    table.add_row(
        "S3",
        endpoints.s3_url,
        f"access key {endpoints.s3_access_key} / secret {endpoints.s3_secret_key.get_secret_value()}"
        f" (bucket {endpoints.s3_bucket})",
    )
    table.add_row("MLflow", endpoints.mlflow_url, "")
    table.add_row(
        "Airflow",
        endpoints.airflow_url,
        f"{endpoints.airflow_username} / {endpoints.airflow_password.get_secret_value()}",
    )
    table.add_row("Model server", endpoints.model_server_url, f"model {endpoints.model_name}")
    for label, url in (
        ("Prometheus", endpoints.prometheus_url),
        ("Pushgateway", endpoints.pushgateway_url),
        ("Grafana", endpoints.grafana_url),
    ):
        if url:
            table.add_row(label, url, "")
    console.print(table)


@app.command()
def down(
    backend: Annotated[BackendName, typer.Option(help="Which stack to stop.")] = BackendName.local,
    purge: Annotated[bool, typer.Option(help="Also delete the stack's data and state.")] = False,
) -> None:
    """Stop every process `up` started (verified by pid and start time), nothing else."""
    if backend is not BackendName.local:
        _remote(backend, "down", purge=purge)
        return
    local = _local()
    reports, seconds = local.stop(purge=purge)
    _print_stop_reports(reports)
    console.print(
        f"Stopped in {seconds:.1f}s." + (f" Deleted {local.paths.root}." if purge else "")
    )


def _print_stop_reports(reports: list[StopReport]) -> None:
    if not reports:
        console.print("Nothing was running.")
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
    console.print(table)


@app.command()
def status() -> None:
    """Each process of the local stack: pid, alive, URL, log."""
    local = _local()
    processes = local.status()
    if not processes:
        console.print("No local stack (no pid files under .stack/local/pids).")
        return
    table = Table(title="Local stack")
    for column in ("process", "pid", "alive", "url", "log"):
        table.add_column(column)
    for process in processes:
        table.add_row(
            process.name,
            str(process.pid),
            "[green]yes" if process.alive else "[red]no",
            process.url or "",
            str(process.log),
        )
    console.print(table)
    if not all(process.alive for process in processes):
        raise typer.Exit(1)


@app.command()
def endpoints(
    backend: Annotated[BackendName, typer.Option(help="Which stack.")] = BackendName.local,
) -> None:
    """Print the running stack's endpoints (secrets included) as JSON."""
    found = _remote(backend, "endpoints") if backend is not BackendName.local else None
    try:
        found = found or _local().endpoints()
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    data = found.model_dump(mode="json")
    data["s3_secret_key"] = found.s3_secret_key.get_secret_value()
    data["airflow_password"] = found.airflow_password.get_secret_value()
    typer.echo(json.dumps(data, indent=2))


@app.command()
def logs(
    process: Annotated[
        str | None, typer.Argument(help="Process name, e.g. airflow-scheduler.")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines from the end.")] = 60,
    collect: Annotated[
        Path | None, typer.Option(help="Copy all logs (and Airflow task logs) into this folder.")
    ] = None,
) -> None:
    """Show the tail of one process log, list the logs, or collect them into a folder."""
    local = _local()
    if collect is not None:
        console.print(f"Logs collected; index: {local.collect_logs(collect)}")
        return
    available = sorted(local.paths.logs.glob("*.log")) if local.paths.logs.is_dir() else []
    if process is None:
        for path in available:
            typer.echo(f"{path.stem:<28} {path.stat().st_size:>10} bytes  {path}")
        if not available:
            console.print(f"No logs under {local.paths.logs}.")
        return
    path = local.paths.log(process)
    if not path.is_file():
        names = ", ".join(p.stem for p in available) or "none"
        console.print(f"[red]No log for {process!r}. Available: {names}")
        raise typer.Exit(1)
    typer.echo(log_tail(path, lines))


if __name__ == "__main__":
    app()
