"""Diamonds data: parsing, validation, cleaning, dated batches and the S3 ingest stage.

Public API (stable):

- ``clean_batch(data: bytes, previous=None, batch=None) -> CleaningResult``: parse raw CSV bytes
  (gzip detected by magic bytes) and split them into typed clean rows and quarantined rows, each with
  a reason. Raises ``MissingColumnsError`` (listing the missing columns) when required columns are absent.
- ``clean_frame(frame, previous=None, batch=None) -> CleaningResult``: the same on a DataFrame.
- ``CleaningResult`` (``clean``, ``quarantine``, ``report``) and ``CleaningReport`` (pydantic: counts
  per reason, quarantined row numbers; ``row`` is the 0-based data row, header excluded).
- ``validated_schema()`` / ``validate_clean(frame)``: the pandera schema every validated frame obeys.
- ``load_batch(uri, storage=None) -> pd.DataFrame``: a batch file as read, typed by pandas.
- ``split_batches(frame, ...)``, ``write_batches(frame, out_dir, ...)``, ``batch_name(day)``.
- ``seed_landing(settings, batches_dir=None, storage=None) -> SeedResult``
- ``ingest_raw(settings, batch, storage=None) -> str``: landing -> raw, write-once; the same name
  with other bytes raises ``BatchConflictError`` and changes nothing.
- ``ingest_next_batch(settings, batch=None, storage=None) -> IngestResult | None`` (None: nothing
  pending). Raises ``MissingColumnsError`` / ``QuarantineThresholdError`` without touching
  ``validated/``; the batch's quarantine CSV and report then describe the rejection, unless the
  batch was validated before, in which case its earlier outputs are kept as they were.
- ``pending_batches(settings, storage=None) -> list[str]``, ``load_validated(settings, storage=None)``.

S3 layout (bucket ``S3_BUCKET``, prefixes from stack.env; ``<stem>`` = batch name without ``.csv.gz``):
``landing/<batch>`` (seeded) -> ``raw/<batch>`` (byte copy, written once: raw is the record of what
was ingested) -> ``validated/<stem>.parquet`` + ``quarantine/<stem>.csv`` +
``quarantine/<stem>.report.json`` (written last: it records which raw bytes, by sha256, the outputs
come from). Everything is computed and checked before the first write, so a failing run changes
no earlier output. A rejected batch gets the quarantine files (the report carries ``error``) and
no ``validated/`` object; it stays in ``raw/``, so the next run moves on to the following batch. A
corrected file goes to landing under a new batch name (the error suggests one).

Cleaning rules (first matching reason wins, checked in this order, see DATA.md):
``malformed_line`` (wrong field count), ``missing_value``, ``unparseable`` (non-numeric/non-finite
number, fractional price), ``invalid_category`` (not a ggplot2 level), ``impossible_value`` (carat,
price, depth, table, x, y or z <= 0), ``out_of_range`` (x/y/z > 30 mm, carat > 10, depth outside
40-80 %, table outside 40-100 %, price > 100,000 USD), ``inconsistent_dimensions`` (carat / (x*y*z)
outside 0.0045-0.0085 ct/mm^3: a round diamond weighs about 0.0061 ct per mm^3 of its bounding box),
``duplicate`` (identical to an earlier row of the batch), ``duplicate_of_validated`` (identical to a row
already validated).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlpipe.config import Settings, find_repo_root
from mlpipe.schema import (
    ALL_COLUMNS,
    CLARITY_LEVELS,
    COLOR_LEVELS,
    CUT_LEVELS,
    NUMERIC_FEATURES,
    ORDINAL_FEATURES,
    TARGET,
)
from mlpipe.storage import Storage, uri_name

if TYPE_CHECKING:
    import pandera.pandas as pa

# Column order of the committed dataset (ggplot2's order).
DATASET_COLUMNS: Final = (
    "carat",
    "cut",
    "color",
    "clarity",
    "depth",
    "table",
    "price",
    "x",
    "y",
    "z",
)
LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "cut": CUT_LEVELS,
    "color": COLOR_LEVELS,
    "clarity": CLARITY_LEVELS,
}
NUMERIC_COLUMNS: Final = (*NUMERIC_FEATURES, TARGET)
MISSING_TOKENS: Final = frozenset({"", "na", "nan", "null", "none", "n/a"})
R_INDEX_COLUMNS: Final = frozenset({"", "Unnamed: 0", "rownames"})

# Plausibility limits (see DATA.md for how they were chosen).
MAX_DIMENSION_MM: Final = 30.0
MAX_CARAT: Final = 10.0
DEPTH_RANGE: Final = (40.0, 80.0)
TABLE_RANGE: Final = (40.0, 100.0)
MAX_PRICE: Final = 100_000
DENSITY_RANGE: Final = (0.0045, 0.0085)  # carat per mm^3 of x*y*z

REASONS: Final = (
    "missing_columns",  # the header lacks a required column: every row of the batch
    "malformed_line",
    "missing_value",
    "unparseable",
    "invalid_category",
    "impossible_value",
    "out_of_range",
    "inconsistent_dimensions",
    "duplicate",
    "duplicate_of_validated",
)

BATCH_PREFIX: Final = "diamonds_"
BATCH_SUFFIX: Final = ".csv.gz"
BATCH_START: Final = date(2026, 1, 5)
BATCH_SEED: Final = 20260105
DEFAULT_BATCHES: Final = 8
FIRST_BATCH_FRACTION: Final = 0.4


class MissingColumnsError(ValueError):
    """The batch lacks required columns; nothing of it can be used."""

    def __init__(self, missing: Sequence[str], found: Sequence[str], source: str = "batch") -> None:
        self.missing = list(missing)
        super().__init__(
            f"{source} is missing required columns {self.missing} (found {list(found)}). "
            f"Fix: the header must contain {list(DATASET_COLUMNS)}."
        )


class BatchConflictError(ValueError):
    """A batch name was uploaded again with other bytes than the ones already ingested."""


class QuarantineThresholdError(ValueError):
    """Too large a share of the batch was quarantined to trust the rest."""


class QuarantinedRow(BaseModel):
    """One rejected row: 0-based data row number (header excluded), reason and detail."""

    row: int
    reason: str
    detail: str = ""


class CleaningReport(BaseModel):
    """What cleaning did to a batch: counts per reason and every quarantined row."""

    batch: str | None = None
    total_rows: int
    clean_rows: int
    quarantined_rows: int
    quarantine_fraction: float
    counts: dict[str, int] = Field(description="rows per quarantine reason (all reasons listed)")
    rows: list[QuarantinedRow] = Field(default_factory=list)
    extra_columns: list[str] = Field(default_factory=list)
    error: str | None = None
    raw_sha256: str | None = Field(default=None, description="sha256 of the raw bytes cleaned")


@dataclass(frozen=True)
class CleaningResult:
    """Typed clean rows, quarantined rows (raw values + ``row``/``reason``/``detail``), report."""

    clean: pd.DataFrame
    quarantine: pd.DataFrame
    report: CleaningReport


# -- parsing ---------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    # Undecodable bytes become U+FFFD, so the row is quarantined as unparseable instead of
    # the whole batch failing.
    return data.decode("utf-8-sig", errors="replace")


def _required_header(header: Sequence[str], source: str) -> tuple[list[str], list[str]]:
    names = [name.strip() for name in header]
    missing = [column for column in DATASET_COLUMNS if column not in names]
    if missing:
        raise MissingColumnsError(missing, names, source)
    extra = [n for n in names if n not in DATASET_COLUMNS and n not in R_INDEX_COLUMNS]
    return names, extra


def parse_batch(
    data: bytes, source: str = "batch"
) -> tuple[pd.DataFrame, list[QuarantinedRow], list[str]]:
    """Raw CSV bytes -> (string frame indexed by data row, malformed rows, extra column names)."""
    reader = csv.reader(io.StringIO(_decode(data)))
    try:
        header = next(reader)
    except StopIteration:
        raise MissingColumnsError(DATASET_COLUMNS, [], source) from None
    names, extra = _required_header(header, source)
    positions = {column: names.index(column) for column in DATASET_COLUMNS}
    records: list[list[str]] = []
    index: list[int] = []
    malformed: list[QuarantinedRow] = []
    for row_number, fields in enumerate(reader):
        if not fields:  # blank line: nothing to keep or lose
            continue
        if len(fields) != len(names):
            detail = f"expected {len(names)} fields, got {len(fields)}: {','.join(fields)[:200]}"
            malformed.append(QuarantinedRow(row=row_number, reason="malformed_line", detail=detail))
            continue
        records.append([fields[positions[column]] for column in DATASET_COLUMNS])
        index.append(row_number)
    frame = pd.DataFrame(records, columns=list(DATASET_COLUMNS), index=index, dtype=object)
    return frame, malformed, extra


# -- cleaning --------------------------------------------------------------------------------
def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every required column as stripped text; NaN/None become empty strings."""
    index = frame.index if frame.index.is_unique else pd.RangeIndex(len(frame))
    text = pd.DataFrame(index=index)
    for column in DATASET_COLUMNS:
        values = frame[column].astype(object)
        stripped = values.astype(str).str.strip().to_numpy(dtype=object)
        text[column] = np.where(values.isna().to_numpy(), "", stripped)
    return text


def _numbers(text: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.to_numeric(text[c], errors="coerce") for c in NUMERIC_COLUMNS}, index=text.index
    ).astype(float)


def _reason_masks(text: pd.DataFrame, numbers: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(reason, boolean mask) pairs in priority order, before duplicate detection."""
    missing = text.apply(lambda col: col.str.lower().isin(MISSING_TOKENS)).any(axis=1)
    not_finite = numbers.isna().any(axis=1) | numbers.isin([np.inf, -np.inf]).any(axis=1)
    fractional_price = numbers[TARGET].notna() & (numbers[TARGET] % 1 != 0)
    invalid_category = pd.concat([~text[c].isin(LEVELS[c]) for c in ORDINAL_FEATURES], axis=1).any(
        axis=1
    )
    positive = ["carat", "depth", "table", "x", "y", "z", TARGET]
    impossible = (numbers[positive] <= 0).any(axis=1)
    out_of_range = (
        (numbers[["x", "y", "z"]] > MAX_DIMENSION_MM).any(axis=1)
        | (numbers["carat"] > MAX_CARAT)
        | ~numbers["depth"].between(*DEPTH_RANGE)
        | ~numbers["table"].between(*TABLE_RANGE)
        | (numbers[TARGET] > MAX_PRICE)
    )
    density = numbers["carat"] / (numbers["x"] * numbers["y"] * numbers["z"])
    inconsistent = ~density.between(*DENSITY_RANGE)
    return [
        ("missing_value", missing),
        ("unparseable", not_finite | fractional_price),
        ("invalid_category", invalid_category),
        ("impossible_value", impossible),
        ("out_of_range", out_of_range),
        ("inconsistent_dimensions", inconsistent),
    ]


def _typed(text: pd.DataFrame, numbers: pd.DataFrame) -> pd.DataFrame:
    typed = pd.DataFrame(index=text.index)
    for column in ALL_COLUMNS:
        if column in ORDINAL_FEATURES:
            typed[column] = text[column].astype(str)
        elif column == TARGET:
            typed[column] = numbers[column].astype("int64")
        else:
            typed[column] = numbers[column].astype("float64")
    return typed


def _details(reason: str, text: pd.DataFrame) -> pd.Series:
    if reason in {
        "missing_value",
        "unparseable",
        "invalid_category",
        "impossible_value",
        "out_of_range",
    }:
        return text.apply(lambda row: ", ".join(f"{c}={row[c]!r}" for c in DATASET_COLUMNS), axis=1)
    if reason == "inconsistent_dimensions":
        return text.apply(lambda r: f"carat={r['carat']} x={r['x']} y={r['y']} z={r['z']}", axis=1)
    return pd.Series("", index=text.index)


def _first_occurrence(typed: pd.DataFrame) -> pd.Series:
    """For every row, the row label of the first identical row (itself when unique)."""
    labels = pd.Series(typed.index, index=typed.index)
    return labels.groupby([typed[c] for c in typed.columns], sort=False).transform("min")


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(REASONS, 0)


def empty_validated_frame() -> pd.DataFrame:
    """A frame with the validated columns and dtypes and no rows."""
    dtypes = {
        c: (str if c in ORDINAL_FEATURES else "int64" if c == TARGET else "float64")
        for c in ALL_COLUMNS
    }
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})


def clean_frame(
    frame: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    batch: str | None = None,
    *,
    malformed: Sequence[QuarantinedRow] = (),
    extra_columns: Sequence[str] = (),
) -> CleaningResult:
    """Split ``frame`` into (clean, quarantine) with a reason per row; ``frame`` is not modified."""
    missing_columns = [c for c in DATASET_COLUMNS if c not in frame.columns]
    if missing_columns:
        raise MissingColumnsError(
            missing_columns, [str(c) for c in frame.columns], batch or "batch"
        )
    text = _as_text(frame)
    numbers = _numbers(text)
    reason = pd.Series("", index=text.index, dtype=object)
    details = pd.Series("", index=text.index, dtype=object)
    for name, mask in _reason_masks(text, numbers):
        new = mask & (reason == "")
        if new.any():
            reason[new] = name
            details[new] = _details(name, text[new])
    candidates = reason == ""
    typed = _typed(text[candidates], numbers[candidates])
    duplicate = typed.duplicated(keep="first")
    reason[duplicate[duplicate].index] = "duplicate"
    details[duplicate[duplicate].index] = _first_occurrence(typed)[duplicate].map(
        "identical to row {}".format
    )
    if previous is not None and len(previous):
        seen = pd.MultiIndex.from_frame(previous[list(ALL_COLUMNS)].astype(typed.dtypes.to_dict()))
        again = pd.MultiIndex.from_frame(typed).isin(seen) & ~duplicate.to_numpy()
        reason[typed.index[again]] = "duplicate_of_validated"
    clean = typed[reason[typed.index] == ""].reset_index(drop=True)
    quarantine = text[reason != ""].copy()
    quarantine.insert(0, "reason", reason[reason != ""])
    quarantine.insert(0, "row", quarantine.index)
    quarantine["detail"] = details[reason != ""]
    if malformed:
        bad = pd.DataFrame([row.model_dump() for row in malformed])
        quarantine = pd.concat([quarantine, bad], ignore_index=True)
    quarantine = quarantine.sort_values("row").reset_index(drop=True).fillna("")
    return CleaningResult(
        clean=clean,
        quarantine=quarantine,
        report=_report(quarantine, len(clean), batch, extra_columns),
    )


def _report(
    quarantine: pd.DataFrame, clean_rows: int, batch: str | None, extra: Sequence[str]
) -> CleaningReport:
    counts = _zero_counts()
    for name, count in quarantine["reason"].value_counts().items():
        counts[str(name)] = int(count)
    total = clean_rows + len(quarantine)
    rows = [
        QuarantinedRow(row=row, reason=reason, detail=detail)
        for row, reason, detail in zip(
            quarantine["row"].astype(int).tolist(),
            quarantine["reason"].astype(str).tolist(),
            quarantine["detail"].astype(str).tolist(),
            strict=True,
        )
    ]
    return CleaningReport(
        batch=batch,
        total_rows=total,
        clean_rows=clean_rows,
        quarantined_rows=len(quarantine),
        quarantine_fraction=len(quarantine) / total if total else 0.0,
        counts=counts,
        rows=rows,
        extra_columns=list(extra),
    )


def clean_batch(
    data: bytes, previous: pd.DataFrame | None = None, batch: str | None = None
) -> CleaningResult:
    """Parse raw CSV bytes (plain or gzip) and clean them (see module docstring for the rules)."""
    frame, malformed, extra = parse_batch(data, source=batch or "batch")
    return clean_frame(frame, previous, batch, malformed=malformed, extra_columns=extra)


@lru_cache(maxsize=1)
def validated_schema() -> pa.DataFrameSchema:
    """The pandera schema of validated data: columns, dtypes, ordinal levels and ranges."""
    import pandera.pandas as pa

    def mm() -> pa.Column:
        return pa.Column(float, [pa.Check.gt(0), pa.Check.le(MAX_DIMENSION_MM)])

    return pa.DataFrameSchema(
        {
            "carat": pa.Column(float, [pa.Check.gt(0), pa.Check.le(MAX_CARAT)]),
            "cut": pa.Column(str, pa.Check.isin(CUT_LEVELS)),
            "color": pa.Column(str, pa.Check.isin(COLOR_LEVELS)),
            "clarity": pa.Column(str, pa.Check.isin(CLARITY_LEVELS)),
            "depth": pa.Column(float, pa.Check.in_range(*DEPTH_RANGE)),
            "table": pa.Column(float, pa.Check.in_range(*TABLE_RANGE)),
            "x": mm(),
            "y": mm(),
            "z": mm(),
            TARGET: pa.Column("int64", [pa.Check.gt(0), pa.Check.le(MAX_PRICE)]),
        },
        strict=True,
        ordered=True,
        unique=list(ALL_COLUMNS),
    )


def validate_clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a clean frame against ``validated_schema()`` (all failures reported at once)."""
    validated: pd.DataFrame = validated_schema().validate(frame, lazy=True)
    return validated


def load_batch(uri: str | Path, storage: Storage | None = None) -> pd.DataFrame:
    """A batch file (local path or s3:// URI, gzip or plain) as pandas reads it, R index dropped."""
    frame = (storage or Storage()).read_csv(uri)
    index_columns = [c for c in frame.columns if str(c) in R_INDEX_COLUMNS]
    return frame.drop(columns=index_columns)


def load_dataset(path: Path | None = None) -> pd.DataFrame:
    """The committed full dataset (``ai-analysis/data/diamonds.csv.gz``)."""
    return load_batch(path or data_dir() / "diamonds.csv.gz")


def data_dir() -> Path:
    """``ai-analysis/data`` of the repo (or ``$MLPIPE_DATA_DIR``)."""
    if os.environ.get("MLPIPE_DATA_DIR"):
        return Path(os.environ["MLPIPE_DATA_DIR"])
    root = find_repo_root()
    if root is None:
        raise FileNotFoundError("Cannot find the repo's ai-analysis/data; set MLPIPE_DATA_DIR.")
    return root / "ai-analysis" / "data"


# -- batches ---------------------------------------------------------------------------------
def batch_name(day: date) -> str:
    """``diamonds_<YYYY-MM-DD>.csv.gz``."""
    return f"{BATCH_PREFIX}{day.isoformat()}{BATCH_SUFFIX}"


class BatchNameError(ValueError):
    """A name that does not follow the batch naming rule."""


def require_batch_name(name: str) -> str:
    """``name`` (or the last part of a URI) if it follows the rule ``diamonds_YYYY-MM-DD.csv.gz``,
    else ``BatchNameError`` saying so: objects with other names are never picked up as batches."""
    name = uri_name(name)
    day = name.removeprefix(BATCH_PREFIX).removesuffix(BATCH_SUFFIX)
    try:
        date.fromisoformat(day)
        valid = name == batch_name(date.fromisoformat(day))
    except ValueError:
        valid = False
    if not valid:
        raise BatchNameError(
            f"{name!r} is not a batch name: it does not follow the naming rule "
            f"{BATCH_PREFIX}YYYY-MM-DD{BATCH_SUFFIX} "
            f"(e.g. {batch_name(BATCH_START)!r}), so it is never ingested. Fix: rename the object."
        )
    return name


def batch_stem(name: str) -> str:
    """``diamonds_2026-01-05.csv.gz`` -> ``diamonds_2026-01-05`` (S3 keys of derived files)."""
    return require_batch_name(name)[: -len(BATCH_SUFFIX)]


def csv_gz_bytes(frame: pd.DataFrame) -> bytes:
    """Reproducible gzip CSV bytes (no index, ``\\n`` endings, mtime=0)."""
    text = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return gzip.compress(text, compresslevel=9, mtime=0)


def batch_sizes(total: int, n_batches: int, first_fraction: float) -> list[int]:
    """First batch ``round(total*first_fraction)`` rows, the rest split as evenly as possible."""
    if n_batches < 1 or not 0 < first_fraction <= 1:
        raise ValueError("n_batches must be >= 1 and first_fraction in (0, 1].")
    if n_batches == 1:
        return [total]
    first = round(total * first_fraction)
    rest, extra = divmod(total - first, n_batches - 1)
    return [first] + [rest + (1 if i < extra else 0) for i in range(n_batches - 1)]


def split_batches(
    frame: pd.DataFrame,
    n_batches: int = DEFAULT_BATCHES,
    first_fraction: float = FIRST_BATCH_FRACTION,
    seed: int = BATCH_SEED,
    start: date = BATCH_START,
) -> list[tuple[str, pd.DataFrame]]:
    """Shuffle with ``seed`` and cut into weekly batches named by date from ``start``."""
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    batches: list[tuple[str, pd.DataFrame]] = []
    offset = 0
    for week, size in enumerate(batch_sizes(len(frame), n_batches, first_fraction)):
        chunk = shuffled.iloc[offset : offset + size].reset_index(drop=True)
        batches.append((batch_name(start + timedelta(weeks=week)), chunk))
        offset += size
    return batches


def write_batches(frame: pd.DataFrame, out_dir: Path, **options: Any) -> list[Path]:
    """Write ``split_batches(frame, **options)`` to ``out_dir``; return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, chunk in split_batches(frame, **options):
        path = out_dir / name
        path.write_bytes(csv_gz_bytes(chunk))
        paths.append(path)
    return paths


# -- S3 stages -------------------------------------------------------------------------------
class SeedResult(BaseModel):
    """Batch names uploaded to landing/ and those already there with identical bytes."""

    uploaded: list[str]
    unchanged: list[str]


class IngestResult(BaseModel):
    """Where one ingested batch went and what cleaning did to it."""

    batch: str
    raw_uri: str
    validated_uri: str
    quarantine_uri: str
    report_uri: str
    report: CleaningReport


def _batch_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"{BATCH_PREFIX}*{BATCH_SUFFIX}") if p.is_file())


def seed_landing(
    settings: Settings, batches_dir: Path | None = None, storage: Storage | None = None
) -> SeedResult:
    """Upload the committed batch files to ``s3://BUCKET/landing/`` (idempotent)."""
    folder = batches_dir or data_dir() / "batches"
    files = _batch_files(folder)
    if not files:
        raise FileNotFoundError(
            f"No {BATCH_PREFIX}*{BATCH_SUFFIX} files in {folder}; run `mlpipe split-batches`."
        )
    storage = storage or Storage.from_settings(settings)
    storage.require_bucket(settings.s3_bucket)
    uploaded: list[str] = []
    unchanged: list[str] = []
    for path in files:
        target = settings.s3_uri(settings.s3_prefix_landing, path.name)
        (uploaded if storage.put_if_changed(target, path.read_bytes()) else unchanged).append(
            path.name
        )
    return SeedResult(uploaded=uploaded, unchanged=unchanged)


def _names(storage: Storage, prefix_uri: str, suffix: str) -> list[str]:
    return [uri_name(u) for u in storage.list_uris(prefix_uri, suffix)]


def landing_batches(settings: Settings, storage: Storage | None = None) -> list[str]:
    """Batch file names in landing/, oldest first."""
    storage = storage or Storage.from_settings(settings)
    names = _names(storage, settings.s3_uri(settings.s3_prefix_landing), BATCH_SUFFIX)
    return sorted(n for n in names if _is_batch_name(n))


def _is_batch_name(name: str) -> bool:
    try:
        require_batch_name(name)
    except BatchNameError:
        return False
    return True


def pending_batches(settings: Settings, storage: Storage | None = None) -> list[str]:
    """Landing batches not yet copied to raw/, oldest first."""
    storage = storage or Storage.from_settings(settings)
    done = set(_names(storage, settings.s3_uri(settings.s3_prefix_raw), BATCH_SUFFIX))
    return [name for name in landing_batches(settings, storage) if name not in done]


def validated_uri(settings: Settings, batch: str) -> str:
    """``s3://BUCKET/validated/<stem>.parquet``."""
    return settings.s3_uri(settings.s3_prefix_validated, f"{batch_stem(batch)}.parquet")


def load_validated(
    settings: Settings, storage: Storage | None = None, exclude: Iterable[str] = ()
) -> pd.DataFrame:
    """All validated batches (except ``exclude`` batch names), concatenated and deduplicated."""
    storage = storage or Storage.from_settings(settings)
    skipped = {f"{batch_stem(name)}.parquet" for name in exclude}
    uris = [
        u
        for u in storage.list_uris(settings.s3_uri(settings.s3_prefix_validated), ".parquet")
        if uri_name(u) not in skipped
    ]
    if not uris:
        return empty_validated_frame()
    frames = [storage.read_parquet(uri) for uri in uris]
    return pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unused_batch_name(settings: Settings, storage: Storage) -> str:
    """The day after the newest batch in landing/ or raw/: a name no batch has used."""
    names = landing_batches(settings, storage) + _names(
        storage, settings.s3_uri(settings.s3_prefix_raw), BATCH_SUFFIX
    )
    days = []
    for name in filter(_is_batch_name, names):
        days.append(date.fromisoformat(batch_stem(name).removeprefix(BATCH_PREFIX)))
    return batch_name(max(days, default=BATCH_START - timedelta(days=1)) + timedelta(days=1))


def ingest_raw(settings: Settings, batch: str, storage: Storage | None = None) -> str:
    """``landing/<batch>`` -> ``raw/<batch>``, written once: a re-run with the same bytes is a
    no-op; other bytes under an ingested name raise ``BatchConflictError`` and change nothing
    (raw, validated rows and reports stay as they were; the new upload stays in landing/)."""
    return _ingest_raw(settings, batch, storage or Storage.from_settings(settings))[0]


def _ingest_raw(settings: Settings, batch: str, storage: Storage) -> tuple[str, bytes]:
    """`ingest_raw`, also returning the raw bytes (so the caller need not download them again)."""
    landing = settings.s3_uri(settings.s3_prefix_landing, batch)
    raw = settings.s3_uri(settings.s3_prefix_raw, batch)
    data = storage.read_bytes(landing)
    if storage.exists(raw):
        kept = storage.read_bytes(raw)
        if kept != data:
            raise BatchConflictError(
                f"{landing} ({len(data)} bytes, sha256 {_sha256(data)[:12]}) differs from {raw} "
                f"ingested earlier ({len(kept)} bytes, sha256 {_sha256(kept)[:12]}). raw/ is "
                "write-once: nothing was changed, and the earlier data, its validated rows and "
                "its report are kept. Fix: upload the new data under a batch name not used yet "
                f"(e.g. {unused_batch_name(settings, storage)}); to go on with the earlier data, "
                f"put its bytes back in {landing}."
            )
        return raw, data
    storage.write_bytes(raw, data)
    return raw, data


def _unusable_batch(data: bytes, batch: str, error: MissingColumnsError) -> CleaningResult:
    """Every row of a batch that lacks required columns, quarantined as ``missing_columns``."""
    rows = list(csv.reader(io.StringIO(_decode(data))))
    header = [name.strip() for name in rows[0]] if rows else []
    body = [fields for fields in rows[1:] if fields]
    width = len(header)
    records = [(fields + [""] * width)[:width] for fields in body]
    quarantine = pd.DataFrame(records, columns=header, dtype=object)
    quarantine.insert(0, "row", range(len(body)))
    quarantine["reason"] = "missing_columns"
    quarantine["detail"] = f"missing {error.missing}"
    report = _report(quarantine, 0, batch, []).model_copy(update={"error": str(error)})
    return CleaningResult(clean=empty_validated_frame(), quarantine=quarantine, report=report)


def ingest_next_batch(
    settings: Settings, batch: str | None = None, storage: Storage | None = None
) -> IngestResult | None:
    """landing -> raw (write-once) -> validated parquet + quarantine CSV + report JSON.

    ``batch`` picks a landing file by name (re-running it rewrites the same outputs from the same
    raw bytes); by default the oldest landing batch not yet in raw/. Returns None when nothing is
    pending. Everything is computed and checked first; the outputs are then written quarantine,
    validated, report (the report last), so a failure before the writes changes nothing. A
    rejected batch (``MissingColumnsError``, ``QuarantineThresholdError``) gets its quarantine CSV
    and report, never a validated/ object, and a batch validated before keeps all its outputs.
    """
    storage = storage or Storage.from_settings(settings)
    available = landing_batches(settings, storage)
    if batch is None:
        pending = pending_batches(settings, storage)
        if not pending:
            return None
        batch = pending[0]
    else:
        require_batch_name(batch)
        if uri_name(batch) not in available:
            raise FileNotFoundError(
                f"Batch {uri_name(batch)!r} is not in "
                f"{settings.s3_uri(settings.s3_prefix_landing)}; available: {available}"
            )
    batch = uri_name(batch)
    stem = batch_stem(batch)
    raw, data = _ingest_raw(settings, batch, storage)
    validated = validated_uri(settings, batch)
    quarantine = settings.s3_uri(settings.s3_prefix_quarantine, f"{stem}.csv")
    report_uri = settings.s3_uri(settings.s3_prefix_quarantine, f"{stem}.report.json")
    rejection: ValueError | None = None
    try:
        result = clean_batch(data, load_validated(settings, storage, exclude=[batch]), batch)
    except MissingColumnsError as error:
        result, rejection = _unusable_batch(data, batch, error), error
    else:
        if result.report.quarantine_fraction > settings.max_quarantine_fraction:
            rejection = QuarantineThresholdError(
                f"{batch}: {result.report.quarantined_rows}/{result.report.total_rows} rows "
                f"({result.report.quarantine_fraction:.1%}) quarantined, above "
                f"MAX_QUARANTINE_FRACTION={settings.max_quarantine_fraction:.1%}; nothing "
                f"written to validated/. See {report_uri}."
            )
            result = CleaningResult(
                result.clean,
                result.quarantine,
                result.report.model_copy(update={"error": str(rejection)}),
            )
        else:
            validate_clean(result.clean)
    report = result.report.model_copy(update={"raw_sha256": _sha256(data)})
    if rejection is not None:
        if not storage.exists(validated):  # a batch validated before keeps its outputs
            storage.write_csv(quarantine, result.quarantine)
            storage.write_json(report_uri, report.model_dump())
        raise rejection
    storage.write_csv(quarantine, result.quarantine)
    storage.write_parquet(validated, result.clean)
    storage.write_json(report_uri, report.model_dump())
    return IngestResult(
        batch=batch,
        raw_uri=raw,
        validated_uri=validated,
        quarantine_uri=quarantine,
        report_uri=report_uri,
        report=report,
    )
