"""Ingest never destroys data: raw is write-once, and a failing run leaves every earlier output as
it was. Each test compares the bytes of every key in the bucket before and after."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from ml_testdata import csv_bytes

from mlpipe import data
from mlpipe.config import Settings
from mlpipe.storage import Storage


def snapshot(settings: Settings, storage: Storage) -> dict[str, bytes]:
    """Every object of the bucket: key -> bytes."""
    prefix = f"s3://{settings.s3_bucket}/"
    return {uri.removeprefix(prefix): storage.read_bytes(uri) for uri in storage.list_uris(prefix)}


@pytest.fixture
def ingested(
    s3_settings: Settings, small_frame: pd.DataFrame, tmp_path: Path
) -> tuple[Storage, str]:
    """Two batches seeded and ingested (the first one validated)."""
    storage = Storage.from_settings(s3_settings)
    data.write_batches(small_frame.head(400)[list(data.DATASET_COLUMNS)], tmp_path, n_batches=2)
    data.seed_landing(s3_settings, tmp_path, storage)
    first = data.ingest_next_batch(s3_settings, storage=storage)
    assert first is not None
    assert data.ingest_next_batch(s3_settings, storage=storage) is not None
    return storage, first.batch


def landing(settings: Settings, batch: str) -> str:
    return settings.s3_uri(settings.s3_prefix_landing, batch)


def test_a_reupload_with_other_bytes_is_refused_and_changes_nothing(
    s3_settings: Settings, small_frame: pd.DataFrame, ingested: tuple[Storage, str]
) -> None:
    storage, batch = ingested
    other = csv_bytes(small_frame.iloc[1000:1100])
    storage.write_bytes(landing(s3_settings, batch), other)
    before = snapshot(s3_settings, storage)
    with pytest.raises(data.BatchConflictError) as caught:
        data.ingest_next_batch(s3_settings, batch=batch, storage=storage)
    assert snapshot(s3_settings, storage) == before  # byte for byte, every key
    message = str(caught.value)
    assert "write-once" in message
    assert "nothing was changed" in message
    assert "diamonds_" in message.split("e.g. ", 1)[1]  # a batch name not used yet
    suggested = message.split("e.g. ", 1)[1].split(")", 1)[0]
    assert suggested not in {key.rsplit("/", 1)[-1] for key in before}


def test_ingest_raw_alone_is_write_once(
    s3_settings: Settings, ingested: tuple[Storage, str]
) -> None:
    """The DAG's ingest task copies with the same function: same bytes pass, other bytes fail."""
    storage, batch = ingested
    before = snapshot(s3_settings, storage)
    assert data.ingest_raw(s3_settings, batch, storage).endswith(f"raw/{batch}")
    assert snapshot(s3_settings, storage) == before
    storage.write_bytes(landing(s3_settings, batch), b"carat,cut\n1,Ideal\n")
    changed = snapshot(s3_settings, storage)
    with pytest.raises(data.BatchConflictError):
        data.ingest_raw(s3_settings, batch, storage)
    assert snapshot(s3_settings, storage) == changed


def test_a_failing_rerun_keeps_the_earlier_outputs(
    s3_settings: Settings, ingested: tuple[Storage, str]
) -> None:
    """Same raw bytes, a stricter threshold: the re-run fails, validated rows, quarantine CSV and
    report of the earlier success are untouched (and still agree with each other)."""
    storage, batch = ingested
    before = snapshot(s3_settings, storage)
    strict = s3_settings.model_copy(update={"max_quarantine_fraction": -1.0})
    with pytest.raises(data.QuarantineThresholdError):
        data.ingest_next_batch(strict, batch=batch, storage=storage)
    assert snapshot(s3_settings, storage) == before
    stem = data.batch_stem(batch)
    report = storage.read_json(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, f"{stem}.report.json")
    )
    assert report["error"] is None
    validated = storage.read_parquet(data.validated_uri(s3_settings, batch))
    assert len(validated) == report["clean_rows"]


def test_a_successful_rerun_rewrites_the_same_outputs(
    s3_settings: Settings, ingested: tuple[Storage, str]
) -> None:
    storage, batch = ingested
    before = snapshot(s3_settings, storage)
    data.ingest_next_batch(s3_settings, batch=batch, storage=storage)
    assert snapshot(s3_settings, storage) == before


def test_the_report_names_the_raw_bytes_it_describes(
    s3_settings: Settings, ingested: tuple[Storage, str]
) -> None:
    import hashlib

    storage, batch = ingested
    stem = data.batch_stem(batch)
    report = storage.read_json(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, f"{stem}.report.json")
    )
    raw = storage.read_bytes(s3_settings.s3_uri(s3_settings.s3_prefix_raw, batch))
    assert report["raw_sha256"] == hashlib.sha256(raw).hexdigest()


def test_missing_columns_quarantine_every_row_and_the_report_agrees(
    s3_settings: Settings, small_frame: pd.DataFrame
) -> None:
    storage = Storage.from_settings(s3_settings)
    name = "diamonds_2026-03-02.csv.gz"
    columns = [c for c in data.DATASET_COLUMNS if c != "price"]
    storage.write_bytes(
        landing(s3_settings, name), csv_bytes(small_frame.head(500)[columns], columns=columns)
    )
    with pytest.raises(data.MissingColumnsError, match="price"):
        data.ingest_next_batch(s3_settings, storage=storage)
    stem = data.batch_stem(name)
    report = storage.read_json(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, f"{stem}.report.json")
    )
    quarantine = storage.read_csv(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, f"{stem}.csv")
    )
    assert report["total_rows"] == report["quarantined_rows"] == len(quarantine) == 500
    assert report["counts"]["missing_columns"] == 500
    assert set(quarantine["reason"]) == {"missing_columns"}
    assert not storage.exists(data.validated_uri(s3_settings, name))


@pytest.mark.parametrize(
    "name", ["diamonds.csv.gz", "diamonds_2026-13-01.csv.gz", "batch_2026-01-05.csv.gz"]
)
def test_a_name_off_the_naming_rule_says_so(
    s3_settings: Settings, small_frame: pd.DataFrame, name: str
) -> None:
    storage = Storage.from_settings(s3_settings)
    storage.write_bytes(landing(s3_settings, name), csv_bytes(small_frame.head(5)))
    with pytest.raises(
        data.BatchNameError, match="is not a batch name: it does not follow the naming rule"
    ):
        data.ingest_next_batch(s3_settings, batch=name, storage=storage)
    assert data.landing_batches(s3_settings, storage) == []  # never picked up by default either


def test_seeding_a_store_without_the_bucket_says_how_to_create_it(
    s3_settings: Settings, small_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mlpipe.cli import app
    from mlpipe.storage import MissingBucketError

    missing = s3_settings.model_copy(update={"s3_bucket": "no-such-bucket"})
    data.write_batches(small_frame.head(100)[list(data.DATASET_COLUMNS)], tmp_path, n_batches=1)
    with pytest.raises(
        MissingBucketError, match=r"'no-such-bucket' does not exist at http.*mb s3://"
    ):
        data.seed_landing(missing, tmp_path)
    env = {
        "S3_ENDPOINT_URL": str(s3_settings.s3_endpoint_url),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_BUCKET": "no-such-bucket",
    }
    result = CliRunner().invoke(app, ["seed-landing", "--batches-dir", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "NoSuchBucket" not in result.output
