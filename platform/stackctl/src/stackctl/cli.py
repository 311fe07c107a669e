"""`stackctl`: bring the stack up and down on a backend (local processes by default; compose; kind;
eks), and build the project's images.

Backends are loaded by name from the `stackctl.backends` entry points (`stackctl.backend`); the
commands below treat every backend the same. `status` and `logs` read the local stack's files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from stackcontract.endpoints import Endpoints
from stackcontract.settings import ConfigError, StackConfig, load_config
from stackctl.backend import Backend, BackendError, backend_names, load_backend
from stackctl.local import LocalBackend, S3Flavor
from stackctl.local.supervisor import log_tail

T = TypeVar("T")


app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
# Wide enough for URLs and secrets when output goes to a file or CI log.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
BACKEND_HELP = "Where the stack runs: one of the registered backends (local, compose, kind, eks)."


def _config() -> StackConfig:
    try:
        return load_config()
    except ConfigError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def _backend(name: str, **choices: Any) -> Backend:
    """The backend `name`, given the choices the user made (None: not given)."""
    options = {key: value for key, value in choices.items() if value is not None}
    try:
        return load_backend(name)(_config(), console=console, options=options)
    except (BackendError, ValueError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def _run(backend: Backend, action: Callable[[], T]) -> T:
    """Run a backend action; its errors already say what failed and the fix."""
    try:
        return action()
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    except RuntimeError as exc:
        console.print(f"[red]{backend.name}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; nothing started by this run is left running.")
        raise typer.Exit(130) from None


def _check_backend(name: str) -> str:
    if name not in (names := backend_names()):
        raise typer.BadParameter(f"{name!r} is not a registered backend ({', '.join(names)}).")
    return name


BackendOption = Annotated[str, typer.Option(help=BACKEND_HELP, callback=_check_backend)]


@app.command()
def up(
    backend: BackendOption = "local",
    s3: Annotated[
        S3Flavor | None, typer.Option(help="Object store of the local backend (default seaweedfs).")
    ] = None,
    train: Annotated[
        bool | None,
        typer.Option("--train/--no-train", help="Trigger ml_training once and serve its champion."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the first training run.", min=30)
    ] = None,
    budget_scale: Annotated[
        float | None,
        typer.Option(help="Multiply every component's start-up time budget (slow machines)."),
    ] = None,
    mlflow_backend_store_uri: Annotated[
        str | None,
        typer.Option(help="MLflow store, e.g. postgresql://u:p@host/db (default SQLite)."),
    ] = None,
) -> None:
    """Bring the stack up, print its URLs and credentials, and train a first champion."""
    stack = _backend(
        backend,
        s3=s3,
        train=train,
        train_timeout=timeout,
        budget_scale=budget_scale,
        mlflow_backend_store_uri=mlflow_backend_store_uri,
    )
    _print_endpoints(_run(stack, stack.up))
    console.print(
        f"Stop everything with `stackctl down --backend {backend}` (--purge: the data too)."
    )


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
    backend: BackendOption = "local",
    purge: Annotated[bool, typer.Option(help="Also delete the stack's data and state.")] = False,
) -> None:
    """Stop everything `up` started (the local backend verifies pid and start time)."""
    stack = _backend(backend)
    _run(stack, lambda: stack.down(purge=purge))


def _local() -> LocalBackend:
    """The local stack, for the commands that read its process files."""
    return LocalBackend(_config(), console=console)


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
def endpoints(backend: BackendOption = "local") -> None:
    """Print the running stack's endpoints (secrets included) as JSON."""
    stack = _backend(backend)
    found = _run(stack, stack.endpoints)
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


images_app = typer.Typer(
    help="The project's images (platform/images/Dockerfile).", no_args_is_help=True
)
app.add_typer(images_app, name="images")


@images_app.command("build")
def images_build(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Targets to build (default: all of them).")
    ] = None,
    tag: Annotated[str, typer.Option(help="Tag of airflow-on-k8s/<target>.")] = "dev",
) -> None:
    """Build the project's images (stand-in base where the pinned one cannot be pulled)."""
    from stackctl.images import references
    from stackctl.images.build import ImageBuildError
    from stackctl.images.project import REPORTS, build_project_images, image_resolver
    from stackctl.images.standins import ImageUnavailable

    root = _config().repo_root
    chosen = targets or list(references.PROJECT_TARGETS)
    try:
        for target in chosen:
            references.project_image(target, tag)  # an unknown target fails before building
        built = build_project_images(
            image_resolver(root, lambda text: console.print(f"[bold yellow]{text}")),
            targets=chosen,
            tag=tag,
            status=lambda t, line: console.print(f"[dim]{t}: {line}"),
        )
    except (ImageBuildError, ImageUnavailable, references.ImageReferenceError) as exc:
        console.print(f"[red]{exc}", highlight=False)
        raise typer.Exit(1) from None
    table = Table(title="Built images")
    for column in ("image", "seconds", "size MB", "base"):
        table.add_column(column)
    for image in built:
        table.add_row(
            image.reference, f"{image.seconds:.1f}", f"{image.size_bytes / 1e6:.0f}", image.base
        )
    console.print(table)
    console.print(f"Recorded in {root / REPORTS / 'builds.json'}; build logs next to it.")


@images_app.command("push")
def images_push(
    registry: Annotated[
        str, typer.Option(help="Registry to push to, e.g. 127.0.0.1:5001 (plain HTTP on loopback).")
    ],
    tag: Annotated[str, typer.Option(help="Tag to push the images under.")] = "dev",
    digests_file: Annotated[Path, typer.Option(help="Where to write the pushed digests.")] = Path(
        "reports/images/pushed-digests.json"
    ),
    serve: Annotated[
        bool,
        typer.Option(help="Run Debian's docker-registry on that loopback port for the push."),
    ] = False,
) -> None:
    """Build the project images and push them to a registry; record the digests it reports."""
    from contextlib import nullcontext

    from stackctl.eks.images import PushError, check_release_tag
    from stackctl.images import references
    from stackctl.images.build import ImageBuildError
    from stackctl.images.project import build_project_images, image_resolver
    from stackctl.images.registry import RegistryError, local_registry, push
    from stackctl.images.standins import ImageUnavailable

    root = _config().repo_root
    try:
        check_release_tag(tag)  # a bad tag fails before anything is built
        served = local_registry(registry, root / ".stack" / "registry") if serve else None
        resolver = image_resolver(root, lambda text: console.print(f"[bold yellow]{text}"))
        built = build_project_images(resolver)
        with served.running() if served else nullcontext():
            pushed = [image.reference for image in built]
            digests = push(resolver.client, pushed, registry=registry, tag=tag)
    except (
        ImageBuildError,
        ImageUnavailable,
        RegistryError,
        PushError,
        references.ImageReferenceError,
    ) as exc:
        console.print(f"[red]{exc}", highlight=False)
        raise typer.Exit(1) from None
    digests.dump(root / digests_file)
    for name, reference in sorted(digests.images.items()):
        console.print(f"{name} -> {reference}")
    console.print(f"Digests in {digests_file}.")


if __name__ == "__main__":
    app()
