"""Train/test split: no leakage, deterministic, independent of row order and of later batches."""

from __future__ import annotations

import pandas as pd

from mlpipe.schema import ALL_COLUMNS, FEATURE_COLUMNS
from mlpipe.train import dataset_fingerprint, split_train_test


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> set[tuple[object, ...]]:
    return set(frame[list(columns)].itertuples(index=False, name=None))


def test_no_identical_rows_or_feature_vectors_across_the_split(clean_frame: pd.DataFrame) -> None:
    train, test = split_train_test(clean_frame)
    assert not _rows(train, ALL_COLUMNS) & _rows(test, ALL_COLUMNS)
    assert not _rows(train, FEATURE_COLUMNS) & _rows(test, FEATURE_COLUMNS)
    assert len(train) + len(test) == len(clean_frame)
    assert 0.18 < len(test) / len(clean_frame) < 0.22


def test_split_does_not_depend_on_row_order(small_frame: pd.DataFrame) -> None:
    _, test = split_train_test(small_frame)
    _, shuffled_test = split_train_test(small_frame.sample(frac=1, random_state=3))
    assert _rows(test, ALL_COLUMNS) == _rows(shuffled_test, ALL_COLUMNS)


def test_new_rows_never_move_old_rows(clean_frame: pd.DataFrame) -> None:
    first, later = clean_frame.iloc[:20_000], clean_frame.iloc[20_000:]
    _, test_before = split_train_test(first)
    _, test_after = split_train_test(pd.concat([first, later]))
    assert _rows(test_before, ALL_COLUMNS) <= _rows(test_after, ALL_COLUMNS)


def test_seed_changes_the_split(small_frame: pd.DataFrame) -> None:
    _, a = split_train_test(small_frame, seed=1)
    _, b = split_train_test(small_frame, seed=2)
    assert _rows(a, ALL_COLUMNS) != _rows(b, ALL_COLUMNS)


def test_fingerprint_ignores_order_but_not_content(small_frame: pd.DataFrame) -> None:
    fingerprint = dataset_fingerprint(small_frame)
    assert dataset_fingerprint(small_frame.iloc[::-1]) == fingerprint
    changed = small_frame.copy()
    changed.loc[0, "price"] += 1
    assert dataset_fingerprint(changed) != fingerprint
