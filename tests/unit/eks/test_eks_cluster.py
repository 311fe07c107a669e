"""platform/eks/cluster.yaml, checked offline for structure.

eksctl's own JSON schema is not available offline (eksctl generates it from its Go types and
publishes it only with its releases), so these are our structural checks of what the stack relies
on, plus drift checks against the Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_fakes import KUBECTL, REPO

from stackctl.eks.cluster import (
    TEMPLATE_VARIABLES,
    ClusterConfigError,
    load_cluster_document,
    load_cluster_spec,
    render_cluster_config,
    template_variables,
)
from stackctl.eks.inputs import DeployInputs, eks_settings, fresh_secrets
from stackctl.eks.render import parse_objects, render
from stackctl.k8s.commands import run_command

BASE = REPO / "platform" / "k8s" / "base"


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return load_cluster_document(REPO)


def rendered() -> dict[str, Any]:
    text = render_cluster_config(REPO, account_id="111122223333", bucket="example-mlops-bucket")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def test_is_an_eksctl_cluster_config(cluster: dict[str, Any]) -> None:
    assert cluster["apiVersion"] == "eksctl.io/v1alpha5"
    assert cluster["kind"] == "ClusterConfig"
    assert set(cluster["metadata"]) >= {"name", "region", "version"}
    assert isinstance(cluster["metadata"]["version"], str), "quote the version: 1.30 is not 1.3"


def test_spec_is_read_from_the_file() -> None:
    spec = load_cluster_spec(REPO)
    assert (spec.name, spec.region) == ("mlops", "us-east-1")
    assert spec.deploy_role_arns == ("arn:aws:iam::${AWS_ACCOUNT_ID}:role/mlops-github-deploy",)


def test_oidc_and_irsa_for_every_direct_s3_user(cluster: dict[str, Any]) -> None:
    assert cluster["iam"]["withOIDC"] is True
    accounts = {sa["metadata"]["name"]: sa for sa in cluster["iam"]["serviceAccounts"]}
    assert set(accounts) == {"airflow", "mlflow"}
    for name, account in accounts.items():
        assert account["roleOnly"] is True, f"{name}: the manifests own the ServiceAccount"
        assert account["roleName"] == f"mlops-{name}"
        actions = {
            action
            for statement in account["attachPolicy"]["Statement"]
            for action in statement["Action"]
        }
        assert "s3:GetObject" in actions, name
    mlflow_resources = {s["Resource"] for s in accounts["mlflow"]["attachPolicy"]["Statement"]}
    assert "arn:aws:s3:::${S3_BUCKET}/*" not in mlflow_resources, "mlflow: artifacts prefix only"


def test_irsa_service_accounts_exist_in_the_manifests(cluster: dict[str, Any]) -> None:
    """The IRSA roles are bound to these names/namespace: the manifests must use the same ones."""
    documents = [
        doc
        for path in BASE.rglob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    manifest_accounts = {
        doc["metadata"]["name"] for doc in documents if doc.get("kind") == "ServiceAccount"
    }
    namespaces = {doc["metadata"]["name"] for doc in documents if doc.get("kind") == "Namespace"}
    for account in cluster["iam"]["serviceAccounts"]:
        assert account["metadata"]["name"] in manifest_accounts
        assert account["metadata"]["namespace"] in namespaces


def test_rendered_irsa_accounts_carry_their_own_cluster_yaml_role(cluster: dict[str, Any]) -> None:
    """The eks overlay rendered with what `deploy-eks --apply` writes into eks.env: every
    ServiceAccount of iam.serviceAccounts (same name and namespace) is annotated with ITS role
    (an IRSA role trusts exactly one ServiceAccount), and no other account has a role."""
    spec = load_cluster_spec(REPO)
    settings, _ = eks_settings(
        REPO,
        spec,
        account_id="111122223333",
        release="v1.0.0",
        dags_git_repo="https://example.invalid/repo.git",
        ingress_host="mlops.example.invalid",
        dry_run=False,
    )
    inputs = DeployInputs({"eks.env": settings, "secrets.env": fresh_secrets(REPO)})
    overlay = REPO / "platform" / "k8s" / "overlays" / "eks"
    manifest = render(
        overlay, None, kubectl=KUBECTL, runner=run_command, inputs=inputs, repo_root=REPO
    )
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"]["annotations"].get(
            "eks.amazonaws.com/role-arn"
        )
        for o in parse_objects(manifest)
        if o["kind"] == "ServiceAccount" and (o["metadata"].get("annotations") or {})
    }
    expected = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]): spec.irsa_role_arn(
            sa["metadata"]["name"], "111122223333"
        )
        for sa in cluster["iam"]["serviceAccounts"]
    }
    assert {key: role for key, role in roles.items() if role} == expected


def test_irsa_role_of_the_airflow_account_is_what_deploy_eks_passes_in() -> None:
    spec = load_cluster_spec(REPO)
    assert spec.irsa_role_arn("airflow", "111122223333") == (
        "arn:aws:iam::111122223333:role/mlops-airflow"
    )
    with pytest.raises(ClusterConfigError, match=r"no iam\.serviceAccounts entry"):
        spec.irsa_role_arn("grafana", "111122223333")


def test_node_groups_for_workers_and_the_model_server(cluster: dict[str, Any]) -> None:
    groups = {group["name"]: group for group in cluster["managedNodeGroups"]}
    for name, workload in (("airflow-workers", "airflow-worker"), ("model-server", "model-server")):
        group = groups[name]
        assert group["labels"] == {"workload": workload}
        assert group["taints"] == [{"key": "workload", "value": workload, "effect": "NoSchedule"}]
        assert 1 <= group["minSize"] <= group["desiredCapacity"] <= group["maxSize"]
    assert groups["model-server"]["minSize"] >= 2, "two model-server nodes for availability"
    assert "taints" not in groups["platform"], "untainted nodes for everything else"


def test_ebs_csi_addon_for_gp3_volumes(cluster: dict[str, Any]) -> None:
    addons = {addon["name"]: addon for addon in cluster["addons"]}
    assert {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"} <= set(addons)
    assert addons["aws-ebs-csi-driver"]["wellKnownPolicies"] == {"ebsCSIController": True}


def test_github_deploy_role_has_an_access_entry(cluster: dict[str, Any]) -> None:
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    (entry,) = cluster["accessConfig"]["accessEntries"]
    assert entry["principalARN"].endswith(":role/mlops-github-deploy")
    assert entry["accessPolicies"][0]["policyARN"].startswith(
        "arn:aws:eks::aws:cluster-access-policy/"
    )


def test_rendering_fills_every_variable() -> None:
    text = render_cluster_config(REPO, account_id="111122223333", bucket="example-mlops-bucket")
    assert "${" not in text
    document = rendered()
    assert document["accessConfig"]["accessEntries"][0]["principalARN"] == (
        "arn:aws:iam::111122223333:role/mlops-github-deploy"
    )
    resources = {
        s["Resource"]
        for sa in document["iam"]["serviceAccounts"]
        for s in sa["attachPolicy"]["Statement"]
    }
    assert "arn:aws:s3:::example-mlops-bucket/mlflow-artifacts/*" in resources


def test_template_uses_only_known_variables() -> None:
    text = (REPO / "platform" / "eks" / "cluster.yaml").read_text()
    assert template_variables(text) == TEMPLATE_VARIABLES


@pytest.mark.parametrize(
    ("account", "bucket", "message"),
    [
        ("1234", "ok-bucket", "must be 12 digits"),
        ("111122223333", "Bad_Bucket", "not a valid bucket name"),
    ],
)
def test_rendering_refuses_bad_values(account: str, bucket: str, message: str) -> None:
    with pytest.raises(ClusterConfigError, match=message):
        render_cluster_config(REPO, account_id=account, bucket=bucket)


def test_rendering_refuses_unknown_variables(tmp_path: Path) -> None:
    (tmp_path / "platform" / "eks").mkdir(parents=True)
    (tmp_path / "platform" / "eks" / "cluster.yaml").write_text(
        "kind: ClusterConfig\nx: ${SURPRISE}\n"
    )
    with pytest.raises(ClusterConfigError, match=r"unknown template variables \['SURPRISE'\]"):
        render_cluster_config(tmp_path, account_id="111122223333", bucket="ok-bucket")
