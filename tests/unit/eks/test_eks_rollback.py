"""Apply, wait, smoke, record; and the rollback to the last good release when any of it fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from eks_fakes import DIGEST_A, DIGEST_B, KUBECTL, REGISTRY, FakeCluster, write_overlay
from rich.console import Console

from stackctl.eks import release
from stackctl.eks.access import Identity
from stackctl.eks.cluster import ClusterSpec
from stackctl.eks.deploy import DeployError, SmokeFailure, Target, apply_release, dry_run
from stackctl.eks.digests import ImageDigests
from stackctl.eks.render import ObjectRef, container_images, parse_objects
from stackctl.k8s.readiness import DeployFailure

IDENTITY = Identity("arn:aws:sts::111122223333:assumed-role/mlops-github-deploy/s", "111122223333")
RECORD_REF = ObjectRef("ConfigMap", "mlops", release.RELEASE_CONFIGMAP)
MODEL_SERVER = ObjectRef("Deployment", "mlops", "model-server")


def target(
    tmp_path: Path, cluster: FakeCluster, tag: str, digest: str, *, extra: bool = False
) -> Target:
    overlay = write_overlay(tmp_path / f"overlay-{tag}", with_extra=extra)
    digests = ImageDigests(
        release=tag,
        images={"airflow-on-k8s/model-server": f"{REGISTRY}/airflow-on-k8s/model-server@{digest}"},
    )
    return Target(
        repo_root=tmp_path,
        overlay=overlay,
        cluster=ClusterSpec("mlops", "us-east-1", ()),
        digests=digests,
        reports=tmp_path / "reports",
        kubectl=KUBECTL,
        runner=cluster,
        console=Console(record=True, width=200),
    )


class Recorder:
    """A wait or smoke step that records its calls and fails on the calls listed in `fail_on`."""

    def __init__(self, error: Exception | None = None, fail_on: Sequence[int] = ()) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.error = error
        self.fail_on = set(fail_on)

    def __call__(self, *args: object) -> None:
        self.calls.append(tuple(str(a) for a in args))
        if len(self.calls) in self.fail_on and self.error is not None:
            raise self.error


def deploy(
    t: Target, wait: Recorder | None = None, smoke: Recorder | None = None
) -> release.ReleaseRecord:
    return apply_release(
        t, identity=IDENTITY, context="eks", wait=wait or Recorder(), smoke=smoke or Recorder()
    )


def live_image(cluster: FakeCluster) -> str:
    return container_images(cluster.objects[MODEL_SERVER])[-1]


def recorded_release(cluster: FakeCluster) -> str:
    return release.record_from_configmap(cluster.objects[RECORD_REF]).release


def test_successful_deploy_waits_smokes_and_records_the_release(tmp_path: Path) -> None:
    cluster, wait, smoke = FakeCluster(), Recorder(), Recorder()
    record = deploy(target(tmp_path, cluster, "v1", DIGEST_A), wait, smoke)
    assert record.release == "v1"
    assert live_image(cluster).endswith(DIGEST_A)
    assert wait.calls == [("eks", "mlops", "['Deployment/model-server', 'Job/migrate']")]
    assert [call[:2] for call in smoke.calls] == [("eks", "mlops")]
    assert "Deployment" in smoke.calls[0][2], "the smoke step gets the rendered objects"
    assert recorded_release(cluster) == "v1"
    # Jobs are immutable: deleted (and waited for) before every apply, then re-created.
    assert "delete job migrate -n mlops --ignore-not-found --wait=true" in cluster.deletes()
    assert (tmp_path / "reports" / "v1" / "manifest.yaml").is_file()


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        ("smoke", SmokeFailure("smoke tests exited 1")),
        ("wait", DeployFailure("Deploy failed: model-server CrashLoopBackOff")),
    ],
)
def test_failed_release_rolls_back_to_the_last_good_one(
    tmp_path: Path, failing: str, error: Exception
) -> None:
    cluster = FakeCluster()
    deploy(target(tmp_path, cluster, "v1", DIGEST_A))
    wait = Recorder(error, fail_on=[1] if failing == "wait" else [])
    smoke = Recorder(error, fail_on=[1] if failing == "smoke" else [])
    with pytest.raises(
        DeployError, match=r"(?s)Release v2 failed .*rolled back to v1, which is ready again"
    ):
        deploy(target(tmp_path, cluster, "v2", DIGEST_B, extra=True), wait, smoke)
    assert live_image(cluster).endswith(DIGEST_A), "the previous image is live again"
    assert recorded_release(cluster) == "v1", "the failed release is never recorded as good"
    assert ObjectRef("Service", "mlops", "extra") not in cluster.objects, "added object removed"
    assert ObjectRef("PersistentVolumeClaim", "mlops", "data") in cluster.objects, "data kept"
    assert len(wait.calls) == 2, "the rollback is waited for too"
    rollback_note = (tmp_path / "reports" / "v2" / "rollback.txt").read_text()
    assert "delete Service/mlops/extra" in rollback_note
    assert "keep PersistentVolumeClaim/mlops/data" in rollback_note


def test_failed_apply_rolls_back(tmp_path: Path) -> None:
    cluster = FakeCluster()
    deploy(target(tmp_path, cluster, "v1", DIGEST_A))
    cluster.fail_apply = lambda refs: ObjectRef("Service", "mlops", "extra") in refs
    with pytest.raises(DeployError, match=r"(?s)CommandFailedError.*rolled back to v1"):
        deploy(target(tmp_path, cluster, "v2", DIGEST_B, extra=True))
    assert live_image(cluster).endswith(DIGEST_A)


def test_first_release_failing_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    cluster = FakeCluster()
    smoke = Recorder(SmokeFailure("smoke tests exited 1"), fail_on=[1])
    with pytest.raises(DeployError, match="no earlier release was recorded"):
        deploy(target(tmp_path, cluster, "v1", DIGEST_A), smoke=smoke)
    assert RECORD_REF not in cluster.objects
    assert [d for d in cluster.deletes() if not d.startswith("delete job")] == []


def test_a_failing_rollback_is_reported_as_such(tmp_path: Path) -> None:
    cluster = FakeCluster()
    deploy(target(tmp_path, cluster, "v1", DIGEST_A))
    wait = Recorder(DeployFailure("ImagePullBackOff"), fail_on=[1, 2])
    with pytest.raises(DeployError, match="the rollback to v1 ALSO FAILED"):
        deploy(target(tmp_path, cluster, "v2", DIGEST_B), wait)


def test_release_record_round_trips_through_its_configmap() -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: mlops\n"
    record = release.new_record("v3", manifest)
    configmap = release.release_configmap(record, "mlops")
    assert configmap["metadata"] == {
        "name": release.RELEASE_CONFIGMAP,
        "namespace": "mlops",
        "labels": {"app.kubernetes.io/managed-by": "stackctl-eks"},
    }
    assert release.record_from_configmap(configmap) == record
    assert record.objects() == [ObjectRef("ConfigMap", "mlops", "a")]


def test_a_manifest_too_big_for_a_configmap_is_refused() -> None:
    huge = "".join(f"# {i:x} {hash(str(i))}\n" for i in range(200_000))
    with pytest.raises(release.ReleaseRecordError, match="over the 900000 a ConfigMap can keep"):
        release.release_configmap(release.new_record("v4", huge), "mlops")


def test_rollback_plan_never_deletes_data_or_shared_objects() -> None:
    previous = release.new_record(
        "v1", "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: mlops}\n"
    )
    failed = parse_objects(
        """
apiVersion: v1
kind: Service
metadata: {name: a, namespace: mlops}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b, namespace: mlops}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: c, namespace: mlops}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
"""
    )
    plan = release.plan_rollback(previous, failed)
    assert plan.delete == (ObjectRef("Deployment", "mlops", "b"),)
    assert plan.kept == (
        ObjectRef("Namespace", "", "other"),
        ObjectRef("PersistentVolumeClaim", "mlops", "c"),
    )
    assert (
        release.plan_rollback(None, failed).describe().startswith("No earlier release is recorded")
    )


def test_dry_run_diffs_against_a_reachable_cluster(tmp_path: Path) -> None:
    cluster = FakeCluster()
    t = target(tmp_path, cluster, "v1", DIGEST_A)
    dry_run(t)
    out = t.console.export_text()
    assert "kubectl diff against context eks:" in out
    assert "+  replicas: 2" in out
    diff_call = next(call for call in cluster.calls if "diff" in call)
    assert diff_call[:4] == [KUBECTL, "--context", "eks", "diff"]
    assert not [call for call in cluster.calls if "apply" in call], "a dry run never applies"


def test_dry_run_says_why_a_live_diff_failed(tmp_path: Path) -> None:
    cluster = FakeCluster(
        diff=(2, "", "error: You must be logged in to the server (Unauthorized)\n")
    )
    t = target(tmp_path, cluster, "v1", DIGEST_A)
    dry_run(t)
    assert (
        "No diff against a live cluster was possible: `kubectl diff` against context eks failed: "
        "error: You must be logged in to the server (Unauthorized)"
    ) in t.console.export_text()
