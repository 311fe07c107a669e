"""The ``mlpipe`` CLI (typer CliRunner): each command calls the library functions the tests cover."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from ml_testdata import BATCHES_DIR, CONFIG_DIR, csv_bytes
from typer.testing import CliRunner

from mlpipe import data
from mlpipe.cli import app
from mlpipe.config import Settings

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the repo's stack.env; no MLflow, no ambient S3 endpoint."""
    monkeypatch.setenv("STACK_CONFIG_DIR", str(CONFIG_DIR))
    for key in ("MLFLOW_TRACKING_URI", "S3_ENDPOINT_URL", "S3_BUCKET"):
        monkeypatch.delenv(key, raising=False)


def test_validate_writes_outputs_and_never_touches_the_input(
    tmp_path: Path, small_frame: pd.DataFrame, cli_env: None
) -> None:
    frame = small_frame.head(30).astype(object)
    frame.loc[3, "x"] = "0"
    frame.loc[7, "cut"] = "Superb"
    source = tmp_path / "incoming.csv"
    source.write_bytes(csv_bytes(frame))
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    result = runner.invoke(app, ["validate", str(source), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    report = json.loads((tmp_path / "out" / "incoming.report.json").read_text())
    assert [(r["row"], r["reason"]) for r in report["rows"]] == [
        (3, "impossible_value"),
        (7, "invalid_category"),
    ]
    assert len(pd.read_csv(tmp_path / "out" / "incoming.clean.csv")) == 28
    assert len(pd.read_csv(tmp_path / "out" / "incoming.quarantine.csv")) == 2
    assert "impossible_value" in result.output


def test_validate_missing_columns_exits_nonzero_naming_them(tmp_path: Path, cli_env: None) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("carat,cut\n0.5,Ideal\n")
    result = runner.invoke(app, ["validate", str(source), "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "missing required columns" in result.output
    assert "price" in result.output


def test_split_batches_reproduces_the_committed_files(tmp_path: Path, cli_env: None) -> None:
    result = runner.invoke(app, ["split-batches", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for committed in sorted(BATCHES_DIR.glob("*.csv.gz")):
        assert (tmp_path / committed.name).read_bytes() == committed.read_bytes()


def test_train_on_a_local_csv_prints_metrics(
    tmp_path: Path, small_frame: pd.DataFrame, cli_env: None
) -> None:
    source = tmp_path / "train.csv"
    source.write_bytes(csv_bytes(small_frame.head(2000)))
    result = runner.invoke(app, ["train", "--csv", str(source), "--params", '{"max_iter": 40}'])
    assert result.exit_code == 0, result.output
    assert "RMSE" in result.output
    assert "baseline" in result.output
    assert "not registered" in result.output


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"max_iters": 3}', "Unknown model_params"),
        ("{oops", "not valid JSON"),
        ("[1]", "JSON object"),
    ],
)
def test_train_rejects_bad_params(
    tmp_path: Path, small_frame: pd.DataFrame, cli_env: None, params: str, message: str
) -> None:
    source = tmp_path / "train.csv"
    source.write_bytes(csv_bytes(small_frame.head(100)))
    result = runner.invoke(app, ["train", "--csv", str(source), "--params", params])
    assert result.exit_code == 1
    assert message in result.output


def test_seed_landing_and_ingest_against_s3(
    s3_settings: Settings,
    tmp_path: Path,
    small_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STACK_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("S3_ENDPOINT_URL", str(s3_settings.s3_endpoint_url))
    monkeypatch.setenv("S3_BUCKET", s3_settings.s3_bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    folder = tmp_path / "batches"
    data.write_batches(small_frame.head(300)[list(data.DATASET_COLUMNS)], folder, n_batches=2)
    seeded = runner.invoke(app, ["seed-landing", "--batches-dir", str(folder)])
    assert seeded.exit_code == 0, seeded.output
    assert "uploaded 2" in seeded.output
    assert (
        "unchanged 2" in runner.invoke(app, ["seed-landing", "--batches-dir", str(folder)]).output
    )
    for _ in range(2):
        ingested = runner.invoke(app, ["ingest"])
        assert ingested.exit_code == 0, ingested.output
        assert "validated ->" in ingested.output
    assert "nothing to ingest" in runner.invoke(app, ["ingest"]).output
    missing = runner.invoke(app, ["ingest", "--batch", "diamonds_1999-01-01.csv.gz"])
    assert missing.exit_code == 1
    assert "available" in missing.output


def test_promote_without_mlflow_is_a_clear_error(cli_env: None) -> None:
    result = runner.invoke(app, ["promote", "--version", "1"])
    assert result.exit_code == 1
    assert "MLFLOW_TRACKING_URI" in result.output


def test_missing_settings_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STACK_CONFIG_DIR", str(tmp_path))
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert "stack.env does not exist" in result.output
