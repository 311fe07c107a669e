"""mlpipe.data cleaning: reasons and row numbers, schema, duplicates, the full dataset's defects."""

from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_testdata import csv_bytes

from mlpipe import data

GOOD = {
    "carat": 0.5,
    "cut": "Ideal",
    "color": "E",
    "clarity": "VS1",
    "depth": 61.5,
    "table": 55.0,
    "price": 1500,
    "x": 5.1,
    "y": 5.12,
    "z": 3.15,
}


def row(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


def malformed_batch() -> bytes:
    rows = [
        row(),  # 0 ok
        row(carat="abc"),  # 1 garbage number
        row(cut="Superb"),  # 2 unknown level
        row(x=0.0),  # 3 zero dimension
        row(y=58.9),  # 4 extreme outlier
        row(z=1.05),  # 5 inconsistent with carat
        row(),  # 6 duplicate of 0
        row(price=""),  # 7 missing
        row(carat=-1),  # 8 negative
        row(price=12.5),  # 9 fractional price
        row(carat=0.51),  # 10 ok
        row(depth="inf"),  # 11 not finite
    ]
    text = csv_bytes(rows).decode()
    return (text + "1,2,3\n").encode()  # 12 wrong field count


EXPECTED = {
    1: "unparseable",
    2: "invalid_category",
    3: "impossible_value",
    4: "out_of_range",
    5: "inconsistent_dimensions",
    6: "duplicate",
    7: "missing_value",
    8: "impossible_value",
    9: "unparseable",
    11: "unparseable",
    12: "malformed_line",
}


def test_malformed_batch_report_names_rows_and_reasons() -> None:
    result = data.clean_batch(malformed_batch(), batch="bad.csv")
    assert {r.row: r.reason for r in result.report.rows} == EXPECTED
    assert result.report.total_rows == 13
    assert result.report.clean_rows == 2
    assert result.report.counts["impossible_value"] == 2
    assert sum(result.report.counts.values()) == result.report.quarantined_rows == len(EXPECTED)
    assert list(result.quarantine["row"]) == sorted(EXPECTED)
    assert "identical to row 0" in result.quarantine.set_index("row").loc[6, "detail"]
    assert "carat='abc'" in result.quarantine.set_index("row").loc[1, "detail"]
    data.validate_clean(result.clean)


def test_quarantine_keeps_the_raw_values() -> None:
    result = data.clean_batch(malformed_batch())
    raw = result.quarantine.set_index("row")
    assert raw.loc[1, "carat"] == "abc"
    assert raw.loc[2, "cut"] == "Superb"
    assert raw.loc[12, "detail"].endswith("1,2,3")


def test_gzip_and_plain_give_the_same_result() -> None:
    plain = data.clean_batch(malformed_batch())
    zipped = data.clean_batch(gzip.compress(malformed_batch()))
    pd.testing.assert_frame_equal(plain.clean, zipped.clean)
    assert plain.report == zipped.report


def test_missing_columns_reject_the_whole_batch() -> None:
    payload = csv_bytes([row()], columns=["carat", "cut", "color", "depth", "table", "x", "y", "z"])
    with pytest.raises(data.MissingColumnsError, match=r"\['clarity', 'price'\]") as caught:
        data.clean_batch(payload)
    assert caught.value.missing == ["clarity", "price"]


def test_empty_file_is_missing_every_column() -> None:
    with pytest.raises(data.MissingColumnsError):
        data.clean_batch(b"")


def test_r_index_and_extra_columns() -> None:
    frame = pd.DataFrame([row(), row(carat=0.52)])
    frame.insert(0, "", ["1", "2"])
    frame["note"] = ["a", "b"]
    result = data.clean_batch(frame.to_csv(index=False).encode())
    assert result.report.clean_rows == 2
    assert result.report.extra_columns == ["note"]
    assert list(result.clean.columns) == list(data.ALL_COLUMNS)


def test_duplicates_against_previous_validated_rows() -> None:
    first = data.clean_batch(csv_bytes([row(), row(carat=0.51)]))
    second = data.clean_batch(csv_bytes([row(carat=0.51), row(carat=0.52)]), previous=first.clean)
    assert [(r.row, r.reason) for r in second.report.rows] == [(0, "duplicate_of_validated")]
    assert second.clean["carat"].tolist() == [0.52]


def test_clean_frame_does_not_modify_its_input() -> None:
    frame = pd.DataFrame([row(), row(x=0.0), row()])
    copy = frame.copy()
    data.clean_frame(frame)
    pd.testing.assert_frame_equal(frame, copy)


def test_schema_rejects_invalid_clean_frames() -> None:
    import pandera.errors

    good = data.clean_batch(csv_bytes([row()])).clean
    bad = good.assign(cut="Superb")
    with pytest.raises(pandera.errors.SchemaErrors, match="isin"):
        data.validate_clean(bad)
    with pytest.raises(pandera.errors.SchemaErrors):
        data.validate_clean(good.drop(columns="price"))


def test_full_dataset_defects(full_cleaning: data.CleaningResult) -> None:
    """The measured defects of ggplot2's diamonds (documented in ai-analysis/data/DATA.md)."""
    report = full_cleaning.report
    assert report.total_rows == 53_940
    assert report.counts == {
        **dict.fromkeys(data.REASONS, 0),
        "impossible_value": 20,
        "out_of_range": 3,
        "inconsistent_dimensions": 21,
        "duplicate": 143,
    }
    assert report.clean_rows == 53_940 - 187
    data.validate_clean(full_cleaning.clean)


def test_full_dataset_raw_defect_counts(dataset_bytes: bytes) -> None:
    """Figures quoted in DATA.md, measured on the raw file (before any cleaning)."""
    raw = pd.read_csv(io.BytesIO(dataset_bytes), compression="gzip")
    assert len(raw) == 53_940
    assert int(raw.duplicated().sum()) == 146
    assert int((raw[["x", "y", "z"]] == 0).any(axis=1).sum()) == 20
    assert sorted(raw["y"].nlargest(2)) == [31.8, 58.9]
    assert raw["z"].max() == 31.8


CELL = st.sampled_from(["", "x", "-1", "0", "1e400", "Ideal", "nan", "3.3", "9999", " 5 "])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 19), st.sampled_from(data.DATASET_COLUMNS), CELL), max_size=15
    )
)
def test_garbage_never_loses_rows_or_leaks_into_clean(cells: list[tuple[int, str, str]]) -> None:
    frame = pd.DataFrame([row(carat=round(0.3 + i / 100, 2)) for i in range(20)]).astype(object)
    for index, column, value in cells:
        frame.loc[index, column] = value
    result = data.clean_batch(frame.to_csv(index=False).encode())
    assert result.report.clean_rows + result.report.quarantined_rows == 20
    data.validate_clean(result.clean)
