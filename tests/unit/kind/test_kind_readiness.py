"""The readiness engine on recorded API objects: each failure class is classified with a helpful
diagnosis, rollouts/jobs are judged like `kubectl rollout status`, and stable-ready counting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stackctl.k8s.readiness import (
    ClusterSnapshot,
    DeployFailure,
    HttpCheck,
    ReadinessPolicy,
    StableReadyCounter,
    classify_pod,
    daemonset_status,
    deployment_status,
    evaluate,
    job_status,
    statefulset_status,
    wait_for_ready,
)
from stackctl.k8s.stages import Deadline

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
Fixture = Callable[[str], Any]


def _events(fixture: Fixture) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = fixture("events")["items"]
    return items


def test_running_ready_pod_has_no_problem(fixture: Fixture) -> None:
    assert classify_pod(fixture("pod_running_ready"), [], T0 + timedelta(minutes=5)) == []


@pytest.mark.parametrize("name", ["pod_image_pull_backoff", "pod_err_image_pull"])
def test_image_pull_failures_are_fatal_and_name_the_image(fixture: Fixture, name: str) -> None:
    (problem,) = classify_pod(fixture(name), [], T0)
    assert problem.kind == "ImagePull"
    assert problem.fatal
    pod = fixture(name)
    assert pod["status"]["containerStatuses"][0]["image"] in problem.message
    assert "kind load image-archive" in problem.hint


def test_crashloop_reports_last_exit_code_and_reason(fixture: Fixture) -> None:
    (problem,) = classify_pod(fixture("pod_crashloop"), [], T0)
    assert (problem.kind, problem.fatal, problem.container) == ("CrashLoopBackOff", True, "main")
    assert "restarted 5 times" in problem.message
    assert "exit code 1 (Error" in problem.message
    assert "--previous" in problem.hint


def test_first_crash_is_tolerated_until_the_restart_threshold(fixture: Fixture) -> None:
    (problem,) = classify_pod(fixture("pod_crashloop_first_restart"), [], T0)
    assert problem.kind == "CrashLoopBackOff"
    assert not problem.fatal
    strict = ReadinessPolicy(crashloop_restarts=1)
    assert classify_pod(fixture("pod_crashloop_first_restart"), [], T0, strict)[0].fatal


def test_init_container_crashloop_is_classified(fixture: Fixture) -> None:
    problems = classify_pod(fixture("pod_init_crashloop"), [], T0)
    assert [(p.kind, p.container, p.fatal) for p in problems] == [
        ("CrashLoopBackOff", "wait-for-db-migrations", True)
    ]
    assert "exit code 2" in problems[0].message


def test_oomkilled_names_the_memory_limit(fixture: Fixture) -> None:
    (problem,) = classify_pod(fixture("pod_oomkilled"), [], T0)
    assert (problem.kind, problem.fatal, problem.container) == ("OOMKilled", True, "scheduler")
    assert "512Mi" in problem.message
    assert "limits.memory" in problem.hint


def test_unschedulable_carries_the_scheduler_message_after_a_grace(fixture: Fixture) -> None:
    pod = fixture("pod_unschedulable")
    (early,) = classify_pod(pod, [], T0 + timedelta(seconds=5))
    assert early.kind == "Unschedulable"
    assert not early.fatal
    (late,) = classify_pod(pod, [], T0 + timedelta(seconds=45))
    assert late.fatal
    assert "1 Insufficient memory" in late.message
    assert "more CPU/memory" in late.hint


def test_container_creating_beyond_threshold_is_fatal_with_events(fixture: Fixture) -> None:
    pod = fixture("pod_stuck_creating")
    assert classify_pod(pod, _events(fixture), T0 + timedelta(seconds=30)) == []
    (problem,) = classify_pod(pod, _events(fixture), T0 + timedelta(seconds=90))
    assert (problem.kind, problem.fatal) == ("StuckCreating", True)
    assert 'secret "stack-secrets" not found' in problem.message
    assert "(x7)" in problem.message
    # Events about other objects stay out of this pod's diagnosis.
    assert "Insufficient memory" not in problem.message


def test_missing_secret_key_is_a_config_error(fixture: Fixture) -> None:
    (problem,) = classify_pod(fixture("pod_create_config_error"), [], T0)
    assert (problem.kind, problem.fatal) == ("CreateContainerConfigError", True)
    assert "AWS_SECRET_ACCESS_KEY" in problem.message


@pytest.mark.parametrize(
    ("name", "pending_fragment"),
    [
        ("deployment_rolled_out", None),
        ("deployment_unavailable", "0 of 1 updated replicas available"),
        ("deployment_generation_pending", "not yet observed"),
        ("deployment_old_replicas", "old replicas pending termination"),
    ],
)
def test_deployment_rollout_rules(
    fixture: Fixture, name: str, pending_fragment: str | None
) -> None:
    pending, problem = deployment_status(fixture(name))
    assert problem is None
    if pending_fragment is None:
        assert pending is None
    else:
        assert pending is not None
        assert pending_fragment in pending


def test_deployment_past_progress_deadline_is_fatal(fixture: Fixture) -> None:
    pending, problem = deployment_status(fixture("deployment_stalled"))
    assert pending is None
    assert problem is not None
    assert (problem.kind, problem.fatal) == ("RolloutStalled", True)
    assert "timed out progressing" in problem.message


def test_statefulset_and_daemonset_rules(fixture: Fixture) -> None:
    assert statefulset_status(fixture("statefulset_ready")) == (None, None)
    assert "0 of 1 replicas ready" in str(statefulset_status(fixture("statefulset_not_ready"))[0])
    assert "rolling update" in str(statefulset_status(fixture("statefulset_rolling"))[0])
    assert daemonset_status(fixture("daemonset_ready")) == (None, None)
    assert "0 of 1 pods available" in str(daemonset_status(fixture("daemonset_unavailable"))[0])


def test_jobs_complete_running_and_failed(fixture: Fixture) -> None:
    assert job_status(fixture("job_complete")) == (None, None)
    pending, problem = job_status(fixture("job_running"))
    assert problem is None
    assert "1 active" in str(pending)
    pending, problem = job_status(fixture("job_failed"))
    assert pending is None
    assert problem is not None
    assert (problem.kind, problem.fatal) == ("JobFailed", True)
    assert "BackoffLimitExceeded" in problem.message
    assert "backoffLimit 2" in problem.message


def test_evaluate_ignores_finished_job_pods_and_flags_missing_objects(fixture: Fixture) -> None:
    snapshot = ClusterSnapshot(
        pods=[fixture("pod_running_ready"), fixture("pod_job_succeeded")],
        deployments=[fixture("deployment_rolled_out")],
        jobs=[fixture("job_complete")],
    )
    result = evaluate(snapshot, T0, expected={"Deployment/mlflow", "Job/airflow-db-migrate"})
    assert result.ready
    assert result.ready_objects == ("Deployment/mlflow", "Job/airflow-db-migrate")
    assert len(result.signature) == 1

    missing = evaluate(snapshot, T0, expected={"Deployment/mlflow", "StatefulSet/seaweedfs"})
    assert missing.pending == ("StatefulSet/seaweedfs: not created yet",)
    assert not missing.ready


def test_stable_ready_needs_k_unchanged_polls() -> None:
    counter = StableReadyCounter(required=3)
    sig_a = (("uid-1", 0, True),)
    sig_restarted = (("uid-1", 1, True),)
    assert not counter.observe(True, sig_a)
    assert not counter.observe(True, sig_a)
    assert not counter.observe(True, sig_restarted)  # a restart between polls resets the count
    assert counter.count == 1
    assert not counter.observe(True, sig_restarted)
    assert counter.observe(True, sig_restarted)
    assert not counter.observe(False, sig_restarted)
    assert counter.count == 0


class ScriptedReader:
    """Returns one recorded snapshot per poll (the last one repeats)."""

    def __init__(self, snapshots: list[ClusterSnapshot]) -> None:
        self.snapshots = snapshots
        self.polls = 0

    def snapshot(self, namespace: str) -> ClusterSnapshot:
        assert namespace == "mlops"
        snap = self.snapshots[min(self.polls, len(self.snapshots) - 1)]
        self.polls += 1
        return snap


def _http(status: int) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda _req: httpx.Response(status)))


def _ready_snapshot(fixture: Fixture) -> ClusterSnapshot:
    return ClusterSnapshot(
        pods=[fixture("pod_running_ready")], deployments=[fixture("deployment_rolled_out")]
    )


def test_wait_for_ready_returns_after_stable_polls(fixture: Fixture) -> None:
    not_yet = ClusterSnapshot(
        pods=[fixture("pod_crashloop_first_restart")],
        deployments=[fixture("deployment_unavailable")],
    )
    reader = ScriptedReader([not_yet, _ready_snapshot(fixture)])
    sleeps: list[float] = []
    report = wait_for_ready(
        reader,
        "mlops",
        600.0,
        expected=["Deployment/mlflow"],
        http_checks=[HttpCheck("mlflow", "http://127.0.0.1:5000/health")],
        policy=ReadinessPolicy(stable_polls=3, poll_interval_seconds=0.5),
        http_client=_http(200),
        sleep=sleeps.append,
        now=lambda: T0,
    )
    assert report.polls == 4  # 1 not ready + 3 stable
    assert sleeps == [0.5, 0.5, 0.5]
    assert report.ready_objects == ("Deployment/mlflow",)
    assert [r.ok for r in report.http] == [True]


def test_wait_for_ready_fails_fast_with_diagnosis(fixture: Fixture) -> None:
    reader = ScriptedReader(
        [ClusterSnapshot(pods=[fixture("pod_crashloop")], jobs=[fixture("job_failed")])]
    )
    with pytest.raises(DeployFailure) as info:
        wait_for_ready(reader, "mlops", 600.0, sleep=lambda _s: None, now=lambda: T0)
    assert reader.polls == 1
    kinds = {p.kind for p in info.value.problems}
    assert kinds == {"CrashLoopBackOff", "JobFailed"}
    assert "Deploy failed (namespace mlops)" in info.value.diagnosis
    assert "exit code 1" in info.value.diagnosis


def test_wait_for_ready_times_out_listing_pending_and_failed_health(fixture: Fixture) -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    deadline = Deadline("wait", 10.0, 0.0, clock=lambda: clock[0])
    with pytest.raises(DeployFailure) as info:
        wait_for_ready(
            ScriptedReader([_ready_snapshot(fixture)]),
            "mlops",
            deadline,
            http_checks=[HttpCheck("mlflow", "http://127.0.0.1:5000/health")],
            policy=ReadinessPolicy(poll_interval_seconds=3.0),
            http_client=_http(503),
            sleep=sleep,
            now=lambda: T0,
        )
    assert "Not ready within the 10s deadline of stage 'wait'" in info.value.diagnosis
    assert "health check mlflow http://127.0.0.1:5000/health: HTTP 503" in info.value.diagnosis


def test_finished_pods_do_not_block_readiness(fixture: Fixture) -> None:
    worker = fixture("pod_job_succeeded")
    worker["metadata"].pop("ownerReferences")  # an Airflow task pod of an earlier run
    worker["status"]["phase"] = "Failed"
    evicted = fixture("pod_running_ready")
    evicted["metadata"]["uid"] = "evicted-uid"
    evicted["status"] = {"phase": "Failed", "reason": "Evicted", "message": "low on disk"}
    snapshot = ClusterSnapshot(
        pods=[fixture("pod_running_ready"), worker, evicted],
        deployments=[fixture("deployment_rolled_out")],
    )
    result = evaluate(snapshot, T0)
    assert result.ready
    assert [uid for uid, _, _ in result.signature] == ["a3f0c2d1-0001-4b8e-9f00-000000000001"]
    # Asked directly, the classifier still names what happened to a bare failed pod.
    (problem,) = classify_pod(evicted, [], T0)
    assert (problem.kind, problem.message) == ("PodFailed", "Evicted: low on disk")
