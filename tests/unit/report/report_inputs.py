"""Recorded tier outputs for the report tests, in the shapes the tiers write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCORECARD: dict[str, Any] = {
    "data_fingerprint": "f" * 64,
    "batches": ["diamonds_2026-01-05.csv.gz"],
    "total_rows": 53940,
    "quarantined_rows": 187,
    "quarantine_share": 187 / 53940,
    "quarantine_counts": {"duplicate": 37, "out_of_range": 3},
    "params_fingerprint": "p" * 64,
    "model": {"rmse": 511.1, "mae": 260.4, "r2": 0.9832, "n_rows": 10715},
    "baseline": {"rmse": 1500.0, "mae": 900.0, "r2": 0.8, "n_rows": 10715},
    "sample": [[500.0, 520.0], [2500.0, 2400.0], [9000.0, 9300.0]],
}
LOAD: dict[str, Any] = {
    "profile": "model-server", "requests": 8700, "failures": 0, "malformed_requests": 0,
    "malformed_failures": 0, "error_rate": 0.0, "rps": 290.0, "p50_ms": 1.0, "p95_ms": 2.0,
    "p99_ms": 3.0, "violations": [],
}  # fmt: skip
TIMINGS: dict[str, Any] = {
    "backend": "local",
    "session_seconds": 224.0,
    "phases": {"bring-up": 15.0, "bring-up s3": 4.0, "dags_test mlflow_start": 6.0},
    "dag_runs": [],
    "tests": {},
}
BUILDS: dict[str, Any] = {
    "airflow-on-k8s/model-server:dev": {
        "target": "model-server",
        "seconds": 47.7,
        "size_bytes": 476_609_688,
    }
}
PARSE: dict[str, Any] = {"files": {"ml_training.py": {"seconds": 0.021, "dags": 1, "tasks": 8}}}


def write_reports(root: Path, **changes: dict[str, Any]) -> Path:
    """A reports/ folder as the tiers leave it; `changes` patches one file's top-level keys
    (`scorecard`, `load`, `timings`, `builds`, `parse`)."""
    files = {
        "scorecard": ("model/scorecard.json", SCORECARD),
        "load": ("load/model-server.summary.json", LOAD),
        "timings": ("integration/local/timings.json", TIMINGS),
        "builds": ("images/builds.json", BUILDS),
        "parse": ("dags/parse.json", PARSE),
    }
    for key, (relative, content) in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**content, **changes.get(key, {})}))
    return root
