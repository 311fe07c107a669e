"""A batch that is mostly garbage: quarantined with a row-level report, the run fails loudly at
`validate`, and nothing earlier (validated data, the champion) is touched."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from stack_clients import AirflowClient, listing
from stack_training import CHAMPION, TrainingRun, alias_version, refuse_on_release, run_dag

from mlpipe.data import clean_batch
from mlpipe.schema import ALL_COLUMNS
from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration

BAD_BATCH = "diamonds_2099-01-05.csv.gz"
ROWS, CORRUPTED = 200, 120  # 60 % bad: far above MAX_QUARANTINE_FRACTION (0.2)


def bad_batch(s3: Any, bucket: str) -> tuple[bytes, dict[int, str]]:
    """Clean rows of the newest landing batch (prices nudged so none duplicates validated data),
    every other one of the first CORRUPTED rows then given a zero dimension or an unknown cut."""
    newest = sorted(k for k in listing(s3, bucket, "landing/") if k.endswith(".csv.gz"))[-1]
    raw = s3.get_object(Bucket=bucket, Key=newest)["Body"].read()
    clean = clean_batch(raw).clean  # the batch's own natural defects would blur the expectation
    frame = clean[list(ALL_COLUMNS)].head(ROWS).reset_index(drop=True).astype({"cut": object})
    frame["price"] = frame["price"] + 1
    expected: dict[int, str] = {}
    for row in range(CORRUPTED):
        if row % 2 == 0:
            frame.loc[row, "x"] = 0.0
            expected[row] = "impossible_value"
        else:
            frame.loc[row, "cut"] = "Superb"
            expected[row] = "invalid_category"
    return gzip.compress(frame.to_csv(index=False).encode()), expected


def test_quarantined_batch_fails_loudly_and_corrupts_nothing(
    first_training: TrainingRun,
    airflow: AirflowClient,
    s3: Any,
    registry: Any,
    endpoints: Endpoints,
) -> None:
    refuse_on_release(endpoints, "will not upload a garbage batch")
    bucket = endpoints.s3_bucket
    payload, expected = bad_batch(s3, bucket)
    s3.put_object(Bucket=bucket, Key=f"landing/{BAD_BATCH}", Body=payload)
    validated_before = listing(s3, bucket, "validated/")
    champion_before = alias_version(registry, endpoints.model_name, CHAMPION)
    versions_before = len(registry.search_model_versions(f"name='{endpoints.model_name}'"))

    run = run_dag(airflow, {"batch": BAD_BATCH})

    states = run.task_states()
    assert run.state == "failed", airflow.explain(run)
    assert states.get("ingest") == "success", airflow.explain(run)
    assert states.get("validate") == "failed", airflow.explain(run)
    assert int(run.tasks["validate"].get("try_number") or 1) == 1, "bad data must not be retried"
    assert states.get("train") in {"upstream_failed", None}, airflow.explain(run)
    log = airflow.task_log(run.dag_id, run.run_id, "validate", 1)
    assert "MAX_QUARANTINE_FRACTION" in log, log[-2000:]

    stem = BAD_BATCH.removesuffix(".csv.gz")
    report = json.loads(
        s3.get_object(Bucket=bucket, Key=f"quarantine/{stem}.report.json")["Body"].read()
    )
    assert report["total_rows"] == ROWS
    assert report["quarantined_rows"] == CORRUPTED
    assert report["quarantine_fraction"] > 0.2
    assert "MAX_QUARANTINE_FRACTION" in (report.get("error") or "")
    reported = {entry["row"]: entry["reason"] for entry in report["rows"]}
    assert reported == expected
    assert f"quarantine/{stem}.csv" in listing(s3, bucket, "quarantine/")

    # The original is untouched (raw/ is a byte copy) and nothing earlier changed.
    landed = s3.get_object(Bucket=bucket, Key=f"landing/{BAD_BATCH}")["Body"].read()
    assert landed == payload
    assert s3.get_object(Bucket=bucket, Key=f"raw/{BAD_BATCH}")["Body"].read() == payload
    assert listing(s3, bucket, "validated/") == validated_before
    assert alias_version(registry, endpoints.model_name, CHAMPION) == champion_before
    assert len(registry.search_model_versions(f"name='{endpoints.model_name}'")) == versions_before
