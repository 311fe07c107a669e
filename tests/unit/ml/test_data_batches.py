"""Committed dated batches: reproducible from the dataset, and together exactly the dataset."""

from __future__ import annotations

import gzip
from datetime import date, timedelta

import pandas as pd
import pytest
from ml_testdata import BATCHES_DIR, DATASET

from mlpipe import data


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    return data.load_dataset(DATASET)


def test_dataset_has_the_original_columns(dataset: pd.DataFrame) -> None:
    assert list(dataset.columns) == list(data.DATASET_COLUMNS)
    assert len(dataset) == 53_940


def test_committed_batches_equal_what_split_batches_produces(dataset: pd.DataFrame) -> None:
    expected = {name: data.csv_gz_bytes(chunk) for name, chunk in data.split_batches(dataset)}
    committed = {p.name: p.read_bytes() for p in sorted(BATCHES_DIR.glob("*.csv.gz"))}
    assert committed.keys() == expected.keys()
    for name, payload in expected.items():
        assert committed[name] == payload, f"{name} differs: rerun `mlpipe split-batches`"


def test_batches_reproduce_the_dataset_exactly(dataset: pd.DataFrame) -> None:
    batches = [pd.read_csv(p) for p in sorted(BATCHES_DIR.glob("*.csv.gz"))]
    together = pd.concat(batches, ignore_index=True)
    columns = list(data.DATASET_COLUMNS)
    canonical = [f.sort_values(columns).reset_index(drop=True) for f in (together, dataset)]
    pd.testing.assert_frame_equal(*canonical)


def test_batch_names_sizes_and_gzip_header(dataset: pd.DataFrame) -> None:
    batches = data.split_batches(dataset)
    names = [name for name, _ in batches]
    assert names == [data.batch_name(date(2026, 1, 5) + timedelta(weeks=w)) for w in range(8)]
    sizes = [len(chunk) for _, chunk in batches]
    assert sizes[0] == round(0.4 * len(dataset))
    assert max(sizes[1:]) - min(sizes[1:]) <= 1
    payload = data.csv_gz_bytes(batches[1][1])
    assert payload[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0: reproducible bytes
    assert gzip.decompress(payload).startswith(b"carat,cut,color,clarity,depth,table,price,x,y,z\n")


def test_split_is_deterministic_and_seeded(dataset: pd.DataFrame) -> None:
    sample = dataset.head(500)
    once = data.split_batches(sample, n_batches=3)
    again = data.split_batches(sample, n_batches=3)
    other = data.split_batches(sample, n_batches=3, seed=1)
    assert all(a[1].equals(b[1]) for a, b in zip(once, again, strict=True))
    assert not once[0][1].equals(other[0][1])


@pytest.mark.parametrize(("n", "fraction"), [(0, 0.4), (3, 0.0), (3, 1.5)])
def test_bad_split_options_are_rejected(n: int, fraction: float) -> None:
    with pytest.raises(ValueError, match="n_batches"):
        data.batch_sizes(100, n, fraction)


def test_batch_stem() -> None:
    assert data.batch_stem("s3://b/landing/diamonds_2026-01-05.csv.gz") == "diamonds_2026-01-05"
    with pytest.raises(ValueError, match="not a batch name"):
        data.batch_stem("other.csv")
