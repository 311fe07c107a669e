"""Fault injection (local and compose backends): a service dies mid-run and comes back; ml_training still
succeeds through its retries, with nothing duplicated and nothing lost."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from stack_clients import AirflowClient, listing
from stack_faults import ComposeFaults, LocalFaults
from stack_training import (
    CHAMPION,
    RUN_TIMEOUT_SECONDS,
    TRAINING_DAG,
    WEAK_PARAMS,
    TrainingRun,
    alias_version,
    say,
    wait_for_idle_dag,
)

from stackcontract.endpoints import Endpoints

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS = 3.0  # long enough for the running task to hit the dead service


@pytest.fixture(scope="session")
def faults(stack: Any) -> LocalFaults | ComposeFaults:
    """Skips (before any training is triggered) unless this session started a local or compose
    stack itself."""
    if stack.backend_name == "compose" and stack.backend is not None:
        return ComposeFaults(stack.backend)
    return LocalFaults(stack.local())


def wait_until_running(airflow: AirflowClient, run_id: str, task: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = airflow.task_instances(TRAINING_DAG, run_id).get(task, {}).get("state")
        if state == "running":
            return
        if state in {"success", "failed", "upstream_failed", "skipped"}:
            pytest.fail(f"task {task} was already {state} before the fault could be injected")
        time.sleep(0.5)
    pytest.fail(f"task {task} of {run_id} never started within {timeout:.0f}s")


def data_keys(s3: Any, bucket: str) -> dict[str, str]:
    """raw/ batches and validated/ parquet files (not the per-run claim files) -> ETag."""
    keys = {**listing(s3, bucket, "raw/"), **listing(s3, bucket, "validated/")}
    return {key: etag for key, etag in keys.items() if "/_" not in key}


# Each service dies while a task that needs it runs. One run takes both crashes: a run per
# fault would double the tier's time (restarting MLflow alone takes ~1-2 min on 2 busy cores).
FAULTS = (("s3", "validate"), ("mlflow", "train"))


def test_training_survives_killed_services(
    faults: LocalFaults | ComposeFaults,
    first_training: TrainingRun,
    airflow: AirflowClient,
    s3: Any,
    registry: Any,
    endpoints: Endpoints,
    request: pytest.FixtureRequest,
) -> None:
    wait_for_idle_dag(airflow)
    before = data_keys(s3, endpoints.s3_bucket)
    versions_before = {
        str(v.version) for v in registry.search_model_versions(f"name='{endpoints.model_name}'")
    }
    champion = alias_version(registry, endpoints.model_name, CHAMPION)

    run_id = airflow.trigger(TRAINING_DAG, {"model_params": WEAK_PARAMS})
    for component, during_task in FAULTS:
        wait_until_running(airflow, run_id, during_task, timeout=RUN_TIMEOUT_SECONDS)
        killed = faults.kill(component)
        time.sleep(OUTAGE_SECONDS)
        restart_seconds = faults.restart(component)
        say(
            request.config,
            f"killed {component} ({killed}) during {during_task}; "
            f"restarted in {restart_seconds:.0f}s",
        )
    run = airflow.wait_for_run(TRAINING_DAG, run_id, timeout=RUN_TIMEOUT_SECONDS)
    tries = {task: info.get("try_number") for task, info in run.tasks.items()}
    say(request.config, f"faulted run {run.state}; task tries {tries}")
    assert run.state == "success", airflow.explain(run)

    # Nothing lost: everything that existed is unchanged; nothing duplicated: one new batch.
    after = data_keys(s3, endpoints.s3_bucket)
    assert {key: after.get(key) for key in before} == before
    added = sorted(set(after) - set(before))
    assert len(added) == 2, f"expected one raw batch and its validated parquet, got {added}"
    raw_batch = next(key for key in added if key.startswith("raw/"))
    stem = raw_batch.removeprefix("raw/").removesuffix(".csv.gz")
    assert f"validated/{stem}.parquet" in added

    versions = registry.search_model_versions(f"name='{endpoints.model_name}'")
    new_versions = [v for v in versions if str(v.version) not in versions_before]
    assert len(new_versions) == 1, f"one new model version expected, got {new_versions}"
    identities = Counter(
        (v.tags.get("dataset_fingerprint"), v.tags.get("params_fingerprint")) for v in versions
    )
    assert all(count == 1 for count in identities.values()), f"duplicate versions: {identities}"
    experiment = registry.get_run(new_versions[0].run_id).info.experiment_id
    runs = registry.search_runs([experiment], filter_string=f"tags.airflow_run_id = '{run_id}'")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 1, f"MLflow runs for {run_id}: {[r.info.status for r in runs]}"
    assert alias_version(registry, endpoints.model_name, CHAMPION) == champion
