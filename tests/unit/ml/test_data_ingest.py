"""S3 stages against moto: seed-landing, ingest (raw/validated/quarantine), load_validated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from ml_testdata import csv_bytes

from mlpipe import data
from mlpipe.config import Settings
from mlpipe.storage import Storage, uri_name


@pytest.fixture
def batches_dir(tmp_path: Path, small_frame: pd.DataFrame) -> Path:
    """Three small dated batches (600 rows, first 40 %) from the clean sample."""
    folder = tmp_path / "batches"
    data.write_batches(small_frame.head(600)[list(data.DATASET_COLUMNS)], folder, n_batches=3)
    return folder


def _keys(settings: Settings, storage: Storage) -> list[str]:
    return [
        u.split(f"s3://{settings.s3_bucket}/", 1)[1]
        for u in storage.list_uris(f"s3://{settings.s3_bucket}/")
    ]


def test_seed_landing_is_idempotent(s3_settings: Settings, batches_dir: Path) -> None:
    first = data.seed_landing(s3_settings, batches_dir)
    assert len(first.uploaded) == 3
    assert first.unchanged == []
    again = data.seed_landing(s3_settings, batches_dir)
    assert again.uploaded == []
    assert again.unchanged == first.uploaded


def test_seed_landing_without_batches_is_a_clear_error(
    s3_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="mlpipe split-batches"):
        data.seed_landing(s3_settings, tmp_path)


def test_ingest_oldest_first_then_nothing(s3_settings: Settings, batches_dir: Path) -> None:
    storage = Storage.from_settings(s3_settings)
    data.seed_landing(s3_settings, batches_dir, storage)
    names = sorted(p.name for p in batches_dir.iterdir())
    ingested = []
    while (result := data.ingest_next_batch(s3_settings, storage=storage)) is not None:
        ingested.append(result.batch)
        assert storage.read_bytes(result.raw_uri) == (batches_dir / result.batch).read_bytes()
        report = storage.read_json(result.report_uri)
        assert report["clean_rows"] == result.report.clean_rows
    assert ingested == names
    validated = data.load_validated(s3_settings, storage)
    assert len(validated) == 600
    data.validate_clean(validated)
    stems = [data.batch_stem(n) for n in names]
    assert sorted(_keys(s3_settings, storage)) == sorted(
        [f"landing/{n}" for n in names]
        + [f"raw/{n}" for n in names]
        + [f"validated/{s}.parquet" for s in stems]
        + [f"quarantine/{s}.csv" for s in stems]
        + [f"quarantine/{s}.report.json" for s in stems]
    )


def test_reingest_overwrites_the_same_keys(s3_settings: Settings, batches_dir: Path) -> None:
    storage = Storage.from_settings(s3_settings)
    data.seed_landing(s3_settings, batches_dir, storage)
    first = data.ingest_next_batch(s3_settings, storage=storage)
    assert first is not None
    keys = _keys(s3_settings, storage)
    again = data.ingest_next_batch(s3_settings, batch=first.batch, storage=storage)
    assert again is not None
    assert again.report == first.report  # its own rows are not "duplicates of validated"
    assert _keys(s3_settings, storage) == keys
    assert len(data.load_validated(s3_settings, storage)) == first.report.clean_rows


def test_unknown_batch_lists_the_available_ones(s3_settings: Settings, batches_dir: Path) -> None:
    data.seed_landing(s3_settings, batches_dir)
    with pytest.raises(FileNotFoundError, match="available"):
        data.ingest_next_batch(s3_settings, batch="diamonds_1999-01-01.csv.gz")


def _land(settings: Settings, name: str, payload: bytes) -> None:
    Storage.from_settings(settings).write_bytes(
        settings.s3_uri(settings.s3_prefix_landing, name), payload
    )


def test_batch_with_missing_columns_fails_and_writes_nothing_validated(
    s3_settings: Settings, small_frame: pd.DataFrame
) -> None:
    name = "diamonds_2026-03-02.csv.gz"
    _land(
        s3_settings,
        name,
        csv_bytes(
            small_frame.head(10).drop(columns=["price"]),
            columns=[c for c in data.DATASET_COLUMNS if c != "price"],
        ),
    )
    with pytest.raises(data.MissingColumnsError, match="price"):
        data.ingest_next_batch(s3_settings)
    storage = Storage.from_settings(s3_settings)
    assert not storage.exists(data.validated_uri(s3_settings, name))
    report = storage.read_json(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, "diamonds_2026-03-02.report.json")
    )
    assert "price" in report["error"]


def test_batch_over_quarantine_threshold_fails_loudly(
    s3_settings: Settings, small_frame: pd.DataFrame
) -> None:
    bad = small_frame.head(10).astype(object)
    bad.loc[:4, "x"] = "0"  # 5 of 10 rows impossible: 50 % > MAX_QUARANTINE_FRACTION
    name = "diamonds_2026-03-09.csv.gz"
    _land(s3_settings, name, csv_bytes(bad))
    with pytest.raises(data.QuarantineThresholdError, match="MAX_QUARANTINE_FRACTION"):
        data.ingest_next_batch(s3_settings)
    storage = Storage.from_settings(s3_settings)
    assert not storage.exists(data.validated_uri(s3_settings, name))
    quarantine = storage.read_csv(
        s3_settings.s3_uri(s3_settings.s3_prefix_quarantine, "diamonds_2026-03-09.csv")
    )
    assert sorted(quarantine["row"]) == [0, 1, 2, 3, 4]
    assert set(quarantine["reason"]) == {"impossible_value"}


def test_later_batches_are_deduplicated_against_validated(
    s3_settings: Settings, small_frame: pd.DataFrame
) -> None:
    rows = small_frame.head(20)
    _land(s3_settings, "diamonds_2026-01-05.csv.gz", csv_bytes(rows.head(10)))
    _land(s3_settings, "diamonds_2026-01-12.csv.gz", csv_bytes(rows.iloc[9:20]))  # row 9 repeats
    data.ingest_next_batch(s3_settings)
    second = data.ingest_next_batch(s3_settings)
    assert second is not None
    assert [(r.row, r.reason) for r in second.report.rows] == [(0, "duplicate_of_validated")]
    assert len(data.load_validated(s3_settings)) == 20
    assert data.pending_batches(s3_settings) == []
    assert [uri_name(n) for n in data.landing_batches(s3_settings)] == [
        "diamonds_2026-01-05.csv.gz",
        "diamonds_2026-01-12.csv.gz",
    ]


def test_load_validated_when_empty_has_the_schema_columns(s3_settings: Settings) -> None:
    frame = data.load_validated(s3_settings)
    assert frame.empty
    assert list(frame.columns) == list(data.ALL_COLUMNS)
