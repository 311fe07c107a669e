"""The pipeline's scorecard on fixed data, so that two versions of the code can be compared on the
same input (`nox -s report`): the committed batches are cleaned in order, as the DAG ingests them
(each against the rows validated before it), the model is trained with the default parameters on
the clean rows and scored on their deterministic held-out split.

    python -m mlpipe.scorecard --out reports/model/scorecard.json
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlpipe.config import compute_threads
from mlpipe.data import clean_batch, data_dir, empty_validated_frame
from mlpipe.evaluate import Metrics, evaluate
from mlpipe.features import feature_frame
from mlpipe.schema import TARGET
from mlpipe.train import params_fingerprint, train_model

SAMPLE_POINTS = 1500  # held-out (actual, predicted) pairs kept for the report's plot


class BatchNotFoundError(FileNotFoundError):
    """The folder holds no `*.csv.gz` batch."""


class Scorecard(BaseModel):
    """What the pipeline made of the fixed batches."""

    data_fingerprint: str  # sha256 over the batch files' names and bytes
    batches: list[str]
    total_rows: int
    quarantined_rows: int
    quarantine_share: float
    quarantine_counts: dict[str, int]
    params_fingerprint: str
    model: Metrics
    baseline: Metrics
    sample: list[tuple[float, float]]  # (actual, predicted) price, evenly spaced held-out rows


def batch_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.csv.gz"))
    if not files:
        raise BatchNotFoundError(f"No *.csv.gz batch in {folder}: pass --batches DIR.")
    return files


def files_fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def scorecard(folder: Path) -> Scorecard:
    """Clean every batch of `folder` in name order, train, and score on the held-out rows."""
    files = batch_files(folder)
    validated = empty_validated_frame()
    counts: dict[str, int] = {}
    total = quarantined = 0
    for path in files:
        result = clean_batch(path.read_bytes(), validated, path.name)
        validated = pd.concat([validated, result.clean], ignore_index=True)
        total += result.report.total_rows
        quarantined += result.report.quarantined_rows
        for reason, count in result.report.counts.items():
            counts[reason] = counts.get(reason, 0) + count
    trained = train_model(validated)
    evaluation = evaluate(trained.model, trained.train, trained.test)
    step = max(1, len(trained.test) // SAMPLE_POINTS)
    rows = trained.test.iloc[::step]
    with compute_threads():
        predicted = trained.model.predict(feature_frame(rows))
    actual = rows[TARGET].to_numpy(dtype=float)
    return Scorecard(
        data_fingerprint=files_fingerprint(files),
        batches=[path.name for path in files],
        total_rows=total,
        quarantined_rows=quarantined,
        quarantine_share=quarantined / total if total else 0.0,
        quarantine_counts=dict(sorted(counts.items())),
        params_fingerprint=params_fingerprint(trained.params),
        model=evaluation.model,
        baseline=evaluation.baseline,
        sample=[(float(a), float(p)) for a, p in zip(actual, np.asarray(predicted), strict=True)],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches", type=Path, default=None, help="default: ai-analysis/data/batches"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    card = scorecard(args.batches or data_dir() / "batches")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(card.model_dump_json(indent=2) + "\n")
    print(
        f"scorecard: RMSE {card.model.rmse:.1f} on {card.model.n_rows} held-out rows, "
        f"{card.quarantined_rows}/{card.total_rows} rows quarantined -> {args.out}"
    )


if __name__ == "__main__":
    main()
