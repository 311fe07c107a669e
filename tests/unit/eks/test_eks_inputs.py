"""The eks overlay's deploy-time inputs: real values where known, samples only in a dry run, and
credentials never written into the checkout or into reports."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from eks_fakes import REPO, FakeCluster

from stackctl.eks.cluster import load_cluster_spec
from stackctl.eks.inputs import (
    DeployInputs,
    InputsError,
    eks_settings,
    live_secret_values,
    prepared_overlay,
    release_secrets,
)
from stackctl.eks.render import ObjectRef, parse_objects, redact_secrets, without_secrets

CLUSTER = load_cluster_spec(REPO)
EKS_OVERLAY = REPO / "platform" / "k8s" / "overlays" / "eks"


def test_apply_needs_every_setting() -> None:
    with pytest.raises(
        InputsError, match=r"DAGS_GIT_REPO \(from --dags-git-repo or \$DAGS_GIT_REPO\)"
    ):
        eks_settings(
            REPO,
            CLUSTER,
            account_id="111122223333",
            release="v1",
            dags_git_repo=None,
            ingress_host="mlops.example.com",
            dry_run=False,
        )


def test_apply_settings_are_the_real_ones() -> None:
    settings, notes = eks_settings(
        REPO,
        CLUSTER,
        account_id="111122223333",
        release="v1.4.0",
        dags_git_repo="https://github.com/acme/airflow-on-k8s.git",
        ingress_host="mlops.example.com",
        dry_run=False,
    )
    assert settings == {
        "IRSA_ROLE_ARN": "arn:aws:iam::111122223333:role/mlops-airflow",
        "IRSA_MLFLOW_ROLE_ARN": "arn:aws:iam::111122223333:role/mlops-mlflow",
        "DAGS_GIT_REPO": "https://github.com/acme/airflow-on-k8s.git",
        "DAGS_GIT_REF": "v1.4.0",
        "INGRESS_HOST": "mlops.example.com",
    }
    assert notes == []


def test_dry_run_fills_unknowns_with_samples_and_says_so() -> None:
    settings, notes = eks_settings(
        REPO,
        CLUSTER,
        account_id=None,
        release="v1",
        dags_git_repo=None,
        ingress_host=None,
        dry_run=True,
    )
    assert settings["DAGS_GIT_REF"] == "v1"
    assert settings["IRSA_ROLE_ARN"].startswith("arn:aws:iam::000000000000:")
    assert len(notes) == 4
    assert any(note.startswith("IRSA_ROLE_ARN is a sample value") for note in notes)


def _secret(name: str, created: str, password: str) -> dict[str, object]:
    return {
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "mlops", "creationTimestamp": created},
        "data": {"AIRFLOW_DB_PASSWORD": base64.b64encode(password.encode()).decode()},
    }


def test_the_newest_live_secret_is_reused() -> None:
    secrets = [
        _secret("stack-secrets-aaaa", "2026-01-01T00:00:00Z", "old"),
        _secret("stack-secrets-bbbb", "2026-02-01T00:00:00Z", "current"),
        _secret("grafana-token", "2026-03-01T00:00:00Z", "unrelated"),
    ]
    assert live_secret_values(secrets) == {"AIRFLOW_DB_PASSWORD": "current"}
    assert live_secret_values([]) is None


def test_a_release_keeps_every_live_credential_and_adds_the_new_keys() -> None:
    """A release that reads a key added since the last one (MLflow's user, say) must not deploy
    pods whose secretKeyRef is missing, nor rotate what the running stack uses."""
    live = {"AIRFLOW_DB_PASSWORD": "running", "MODEL_SERVER_RELOAD_TOKEN": "kept"}
    fresh = {
        "AIRFLOW_DB_PASSWORD": "new",
        "MODEL_SERVER_RELOAD_TOKEN": "new",
        "MLFLOW_TRACKING_PASSWORD": "generated",
    }
    secrets, added = release_secrets(live, fresh)
    assert secrets == {**live, "MLFLOW_TRACKING_PASSWORD": "generated"}
    assert added == ["MLFLOW_TRACKING_PASSWORD"]
    assert release_secrets(None, fresh) == (fresh, [])


def test_live_secrets_are_listed_through_kubectl() -> None:
    from stackctl.eks.kubectl import Kubectl

    cluster = FakeCluster()
    cluster.objects[ObjectRef("Secret", "mlops", "stack-secrets-x")] = _secret(
        "stack-secrets-x", "2026-01-01T00:00:00Z", "pw"
    )
    listed = Kubectl("kubectl", cluster, "eks").list("secrets", "mlops")
    assert live_secret_values(listed) == {"AIRFLOW_DB_PASSWORD": "pw"}


def test_inputs_are_written_to_a_copy_never_into_the_checkout(tmp_path: Path) -> None:
    inputs = DeployInputs({"secrets.env": {"A": "1"}, "eks.env": {"B": "2"}})
    copied = prepared_overlay(REPO, EKS_OVERLAY, inputs, tmp_path)
    assert copied == tmp_path / "platform" / "k8s" / "overlays" / "eks"
    assert (copied / "secrets.env").read_text() == "A=1\n"
    assert (copied / "secrets.env").stat().st_mode & 0o077 == 0, "owner-only"
    assert not (EKS_OVERLAY / "secrets.env").exists()
    assert not (tmp_path / "platform" / "stackctl").exists(), "only what overlays reference"


MANIFEST = """
apiVersion: v1
kind: Secret
metadata: {name: stack-secrets-x, namespace: mlops}
data: {AIRFLOW_DB_PASSWORD: cHc=}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: mlops}
data: {A: "1"}
"""


def test_reports_and_records_never_hold_secret_values() -> None:
    redacted = redact_secrets(MANIFEST)
    assert "cHc=" not in redacted
    assert "AIRFLOW_DB_PASSWORD: REDACTED" in redacted
    kept = parse_objects(without_secrets(MANIFEST))
    assert [ObjectRef.of(o) for o in kept] == [ObjectRef("ConfigMap", "mlops", "c")]
