"""``mlpipe`` command line: the same functions the tests and the Airflow tasks call.

Commands: split-batches, seed-landing, ingest, validate, train, promote (``serve`` lives in
``mlpipe.serve`` and is added by the model-server code). Errors exit non-zero with one clear line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from mlpipe import data, pipeline, registry
from mlpipe.config import Settings, SettingsError, load_settings
from mlpipe.train import EmptyTrainingDataError, UnknownModelParamError

# Failures a user can fix; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (
    SettingsError,
    data.MissingColumnsError,
    data.BatchConflictError,
    data.BatchNameError,
    data.QuarantineThresholdError,
    FileNotFoundError,
    UnknownModelParamError,
    EmptyTrainingDataError,
    registry.RegistryError,
)

app = typer.Typer(help="Diamond price ML pipeline.", no_args_is_help=True, add_completion=False)
console = Console()


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        _fail(str(error))


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _clear_errors() -> Iterator[None]:
    try:
        yield
    except EXPECTED_ERRORS as error:
        _fail(str(error))
    except (BotoCoreError, ClientError) as error:
        _fail(f"S3 request failed: {error}. Check S3_ENDPOINT_URL, the credentials and S3_BUCKET.")


def _report_table(report: data.CleaningReport) -> Table:
    table = Table(title=f"Cleaning report {report.batch or ''}".strip())
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for reason, count in report.counts.items():
        table.add_row(reason, str(count))
    table.add_row("[bold]clean[/]", str(report.clean_rows))
    table.add_row("[bold]total[/]", str(report.total_rows))
    return table


@app.command("split-batches")
def split_batches_command(
    source: Annotated[
        Path | None, typer.Option(help="Full dataset CSV (default: committed one).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Output folder (default: ai-analysis/data/batches).")
    ] = None,
    batches: Annotated[int, typer.Option(min=1)] = data.DEFAULT_BATCHES,
    first_fraction: Annotated[float, typer.Option(min=0.01, max=1.0)] = data.FIRST_BATCH_FRACTION,
    seed: int = data.BATCH_SEED,
) -> None:
    """Shuffle the dataset (fixed seed) into weekly dated batch files (reproducible bytes)."""
    frame = data.load_dataset(source)
    target = out_dir or data.data_dir() / "batches"
    paths = data.write_batches(
        frame, target, n_batches=batches, first_fraction=first_fraction, seed=seed
    )
    for path in paths:
        console.print(f"{path}")
    console.print(f"{len(paths)} batches, {len(frame)} rows -> {target}")


@app.command("seed-landing")
def seed_landing_command(
    batches_dir: Annotated[Path | None, typer.Option(help="Folder of batch files.")] = None,
) -> None:
    """Upload the committed batch files to s3://BUCKET/landing/ (idempotent)."""
    with _clear_errors():
        result = data.seed_landing(_settings(), batches_dir)
    console.print(f"uploaded {len(result.uploaded)}: {result.uploaded}")
    console.print(f"unchanged {len(result.unchanged)}")


@app.command("ingest")
def ingest_command(
    batch: Annotated[
        str | None, typer.Option(help="Landing file name; default: oldest pending.")
    ] = None,
) -> None:
    """Ingest one landing batch: raw copy, validated parquet, quarantine CSV and report."""
    with _clear_errors():
        result = data.ingest_next_batch(_settings(), batch)
    if result is None:
        console.print("nothing to ingest: every landing batch is already in raw/")
        return
    console.print(_report_table(result.report))
    console.print(f"validated -> {result.validated_uri}\nreport -> {result.report_uri}")


def _output_stem(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".gz", ".csv"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@app.command("validate")
def validate_command(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV (or .csv.gz) to check.")
    ],
    output_dir: Annotated[
        Path, typer.Option(help="Where clean/quarantine/report files go.")
    ] = Path("validation"),
) -> None:
    """Validate and clean a local file; the input is never modified."""
    with _clear_errors():
        result = data.clean_batch(path.read_bytes(), batch=path.name)
    stem = _output_stem(path)
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "clean": output_dir / f"{stem}.clean.csv",
        "quarantine": output_dir / f"{stem}.quarantine.csv",
        "report": output_dir / f"{stem}.report.json",
    }
    if path.resolve() in {p.resolve() for p in outputs.values()}:
        _fail(f"output would overwrite the input {path}; choose another --output-dir")
    result.clean.to_csv(outputs["clean"], index=False, lineterminator="\n")
    result.quarantine.to_csv(outputs["quarantine"], index=False, lineterminator="\n")
    outputs["report"].write_text(json.dumps(result.report.model_dump(), indent=2) + "\n")
    console.print(_report_table(result.report))
    for kind, out in outputs.items():
        console.print(f"{kind}: {out}")


def _metrics_table(outcome: Any) -> Table:
    table = Table(title=f"Held-out metrics ({outcome.n_test} rows, trained on {outcome.n_train})")
    for column in ("", "RMSE", "MAE", "R^2"):
        table.add_column(column, justify="right")
    for label, metrics in (
        ("model", outcome.metrics),
        ("baseline (price/carat)", outcome.baseline),
    ):
        table.add_row(label, f"{metrics.rmse:,.1f}", f"{metrics.mae:,.1f}", f"{metrics.r2:.4f}")
    return table


def _parse_params(params: str | None) -> dict[str, Any] | None:
    if params is None:
        return None
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as error:
        _fail(f"--params is not valid JSON ({error}); example: --params '{{\"max_iter\": 200}}'")
    if not isinstance(parsed, dict):
        _fail("--params must be a JSON object of hyper-parameters")
    return dict(parsed)


@app.command("train")
def train_command(
    csv: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Local CSV; default: validated S3 data."),
    ] = None,
    params: Annotated[
        str | None, typer.Option(help='Hyper-parameters as JSON, e.g. {"max_iter": 200}.')
    ] = None,
    promote: Annotated[bool, typer.Option(help="Run the promotion gate after registering.")] = True,
) -> None:
    """Train, evaluate against the baseline, and register in MLflow if MLFLOW_TRACKING_URI is set."""
    settings = _settings()
    model_params = _parse_params(params)
    with _clear_errors():
        frame = pipeline.training_frame(settings, csv)
        outcome = pipeline.run_training(settings, model_params, frame=frame, promote_model=promote)
    console.print(_metrics_table(outcome))
    console.print(
        f"fit time {outcome.fit_seconds:.1f}s, dataset {outcome.dataset_fingerprint[:12]}"
    )
    if outcome.registered is None:
        console.print("MLFLOW_TRACKING_URI not set: model not registered")
    else:
        state = "registered" if outcome.registered.created else "already registered"
        console.print(
            f"{state}: {outcome.registered.name} v{outcome.registered.version} (@{settings.challenger_alias})"
        )
    if outcome.decision is not None:
        console.print(
            f"promotion: {'promoted' if outcome.decision.promoted else 'kept champion'} - {outcome.decision.reason}"
        )


@app.command("promote")
def promote_command(
    version: Annotated[
        str | None, typer.Option(help="Version to consider; default: @challenger.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Local CSV for the held-out rows."),
    ] = None,
) -> None:
    """Promotion gate: move @champion to the challenger only if it is clearly better."""
    settings = _settings()
    with _clear_errors():
        registry.mlflow_client(settings)  # fail fast when MLflow is not configured
        if version is None:
            challenger = registry.alias_version(settings, settings.challenger_alias)
            if challenger is None:
                _fail(
                    f"{settings.model_name}@{settings.challenger_alias} is not set; run `mlpipe train` first"
                )
            version = challenger.version
        decision = pipeline.promote(settings, version, pipeline.training_frame(settings, csv))
    console.print_json(decision.model_dump_json())


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help="Default: $MODEL_SERVER_PORT, else platform/config/ports.env."),
    ] = None,
) -> None:
    """Serve models:/MODEL_NAME@champion over HTTP (FastAPI; /predict, /reload, /metrics)."""
    from mlpipe.serve import run

    run(host, port)


if __name__ == "__main__":
    app()
