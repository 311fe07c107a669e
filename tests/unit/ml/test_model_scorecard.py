"""The scorecard the report compares: batches cleaned in order (each against what was validated
before it), quarantine counted per reason, the model scored on the held-out rows; the data
fingerprint moves with any byte of any batch."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from ml_testdata import DATASET

from mlpipe import scorecard


def write_batches(folder: Path, frame: pd.DataFrame, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for number, size in enumerate(sizes):
        path = folder / f"diamonds_2026-01-{number + 1:02d}.csv.gz"
        path.write_bytes(
            gzip.compress(frame.iloc[start : start + size].to_csv(index=False).encode(), mtime=0)
        )
        paths.append(path)
        start += size
    return paths


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_csv(DATASET).sample(n=1200, random_state=7).reset_index(drop=True)


def test_scorecard_counts_quarantine_across_batches_and_scores_the_model(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    plain = scorecard.scorecard(write_batches(tmp_path / "plain", rows, [600, 600])[0].parent)
    frame = pd.concat([rows.iloc[:600], rows.iloc[:5], rows.iloc[600:]], ignore_index=True)
    frame.loc[10, "carat"] = -1.0  # impossible
    write_batches(tmp_path / "planted", frame, [600, 605])  # batch 2 repeats 5 validated rows
    card = scorecard.scorecard(tmp_path / "planted")
    assert card.total_rows == 1205
    duplicates = card.quarantine_counts["duplicate_of_validated"]
    assert duplicates - plain.quarantine_counts["duplicate_of_validated"] == 5
    assert card.quarantined_rows - plain.quarantined_rows == 6
    assert sum(card.quarantine_counts.values()) == card.quarantined_rows
    assert card.quarantine_share == pytest.approx(card.quarantined_rows / 1205)
    assert card.model.n_rows > 0
    assert card.model.rmse < card.baseline.rmse  # the model beats price-per-carat
    assert 0 < len(card.sample) <= scorecard.SAMPLE_POINTS


def test_the_fingerprint_follows_the_bytes(rows: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_batches(tmp_path, rows, [600, 600])
    before = scorecard.files_fingerprint(paths)
    paths[1].write_bytes(paths[1].read_bytes() + b"\n")
    assert scorecard.files_fingerprint(paths) != before


def test_a_folder_without_batches_says_so(tmp_path: Path) -> None:
    with pytest.raises(scorecard.BatchNotFoundError, match=r"No \*\.csv\.gz batch in"):
        scorecard.scorecard(tmp_path)
