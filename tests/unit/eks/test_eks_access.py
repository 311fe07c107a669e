"""Credential and cluster-access checks: each missing piece is named with its fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from eks_fakes import FakeCluster

from stackctl.eks.access import (
    AccessError,
    Identity,
    check_aws_credentials,
    check_cluster_access,
    cluster_context,
    find_context,
)
from stackctl.eks.cluster import ClusterSpec

CLUSTER = ClusterSpec("mlops", "us-east-1", ())
ROLE_SESSION = "arn:aws:sts::111122223333:assumed-role/mlops-github-deploy/release-42"


def test_real_botocore_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mocks: botocore's own credential chain finds nothing and never touches the network."""
    empty = tmp_path / "empty"
    empty.write_text("")
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    with pytest.raises(AccessError, match=r"^No AWS credentials .*role-to-assume.*aws sso login"):
        check_aws_credentials("us-east-1", lambda *a, **kw: boto3.Session().client(*a, **kw))


class _Sts:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get_caller_identity(self) -> dict[str, Any]:
        if self.error:
            raise self.error
        return {"Arn": ROLE_SESSION, "Account": "111122223333"}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "GetCallerIdentity")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ExpiredToken", "session token has expired"),
        ("InvalidClientTokenId", "AWS rejected the credentials"),
    ],
)
def test_expired_and_rejected_tokens(code: str, message: str) -> None:
    with pytest.raises(AccessError, match=message):
        check_aws_credentials("us-east-1", lambda *_a, **_kw: _Sts(_client_error(code)))


def test_identity_names_the_role_an_access_entry_needs() -> None:
    identity = check_aws_credentials("us-east-1", lambda *_a, **_kw: _Sts())
    assert identity.principal_arn == "arn:aws:iam::111122223333:role/mlops-github-deploy"


def test_context_is_found_by_cluster_arn_or_eksctl_name() -> None:
    arn_style = {
        "current-context": "kind-x",
        "contexts": [
            {"name": "kind-x", "context": {"cluster": "kind-x"}},
            {"name": "prod", "context": {"cluster": "arn:aws:eks:us-east-1:1:cluster/mlops"}},
            {
                "name": "other-region",
                "context": {"cluster": "arn:aws:eks:eu-west-1:1:cluster/mlops"},
            },
        ],
    }
    assert cluster_context(arn_style, CLUSTER) == "prod"
    eksctl_style = {
        "contexts": [{"name": "me@mlops", "context": {"cluster": "mlops.us-east-1.eksctl.io"}}]
    }
    assert cluster_context(eksctl_style, CLUSTER) == "me@mlops"
    assert cluster_context({"contexts": []}, CLUSTER) is None


def test_missing_context_says_to_update_the_kubeconfig() -> None:
    cluster = FakeCluster()
    cluster.kubeconfig = lambda: {"contexts": []}  # type: ignore[method-assign]
    with pytest.raises(
        AccessError, match="aws eks update-kubeconfig --name mlops --region us-east-1"
    ):
        find_context("kubectl", cluster, CLUSTER, None)


def test_unknown_explicit_context() -> None:
    with pytest.raises(AccessError, match="no context named 'nope'"):
        find_context("kubectl", FakeCluster(), CLUSTER, "nope")


IDENTITY = Identity(ROLE_SESSION, "111122223333")


def test_access_granted() -> None:
    cluster = FakeCluster()
    check_cluster_access("kubectl", cluster, "eks", "mlops", IDENTITY, CLUSTER)
    assert all(call[:3] == ["kubectl", "--context", "eks"] for call in cluster.calls)
    assert ["auth", "can-i", "patch", "deployments.apps", "-n", "mlops"] in [
        c[3:] for c in cluster.calls
    ]


def test_no_access_entry_names_the_role_and_the_fix() -> None:
    cluster = FakeCluster(
        can_i=(1, "", "error: You must be logged in to the server (Unauthorized)\n")
    )
    with pytest.raises(AccessError) as caught:
        check_cluster_access("kubectl", cluster, "eks", "mlops", IDENTITY, CLUSTER)
    message = str(caught.value)
    assert "has no access entry" in message
    assert "arn:aws:iam::111122223333:role/mlops-github-deploy" in message
    assert "accessConfig.accessEntries" in message


def test_missing_permission_is_named() -> None:
    cluster = FakeCluster(can_i=(1, "no\n", ""))
    with pytest.raises(AccessError, match=r"may not patch deployments\.apps in namespace 'mlops'"):
        check_cluster_access("kubectl", cluster, "eks", "mlops", IDENTITY, CLUSTER)


def test_unreachable_api_server() -> None:
    cluster = FakeCluster(can_i=(1, "", "Unable to connect to the server: dial tcp: i/o timeout"))
    with pytest.raises(AccessError, match="Cannot reach the API server"):
        check_cluster_access("kubectl", cluster, "eks", "mlops", IDENTITY, CLUSTER)
