"""The EKS cluster definition, platform/eks/cluster.yaml (an eksctl ClusterConfig).

It is the one place the cluster's name and region are written; `deploy-eks` reads them from here.
The file is a template over a few deployment-specific values (`${AWS_ACCOUNT_ID}`, `${S3_BUCKET}`)
and one value of platform/config/stack.env (`${MLFLOW_ARTIFACTS_PREFIX}`), which
`render_cluster_config` fills in strictly before the file is handed to `eksctl`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from stackcontract.envfile import parse_env_file
from stackcontract.repo import CONFIG_DIR
from stackcontract.settings import STACK_ENV

CLUSTER_FILE = Path("platform") / "eks" / "cluster.yaml"
TEMPLATE_VARIABLES = frozenset({"AWS_ACCOUNT_ID", "S3_BUCKET", "MLFLOW_ARTIFACTS_PREFIX"})
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# S3 bucket naming rules (lower-case letters, digits, dots, hyphens; 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ClusterConfigError(ValueError):
    """The cluster definition or a value rendered into it is wrong; the message says how to fix it."""


@dataclass(frozen=True)
class ClusterSpec:
    """What `deploy-eks` needs to know about the cluster."""

    name: str
    region: str
    deploy_role_arns: tuple[str, ...]
    # ServiceAccount name -> IAM role name (IRSA), from iam.serviceAccounts.
    irsa_roles: dict[str, str] = field(default_factory=dict)

    def irsa_role_arn(self, service_account: str, account_id: str) -> str:
        if service_account not in self.irsa_roles:
            raise ClusterConfigError(
                f"{CLUSTER_FILE} has no iam.serviceAccounts entry (with roleName) for "
                f"ServiceAccount {service_account!r}."
            )
        return f"arn:aws:iam::{account_id}:role/{self.irsa_roles[service_account]}"

    def update_kubeconfig_command(self) -> list[str]:
        """The AWS CLI command that writes a kubeconfig context for this cluster."""
        return ["aws", "eks", "update-kubeconfig", "--name", self.name, "--region", self.region]


def load_cluster_document(repo_root: Path) -> dict[str, Any]:
    path = repo_root / CLUSTER_FILE
    if not path.is_file():
        raise ClusterConfigError(f"{path} does not exist; it defines the EKS cluster (eksctl).")
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or document.get("kind") != "ClusterConfig":
        raise ClusterConfigError(f"{path} is not an eksctl ClusterConfig document.")
    return document


def load_cluster_spec(repo_root: Path) -> ClusterSpec:
    """Name, region and deploy-role access entries of the cluster."""
    document = load_cluster_document(repo_root)
    metadata = document.get("metadata") or {}
    name, region = metadata.get("name"), metadata.get("region")
    if not isinstance(name, str) or not isinstance(region, str):
        raise ClusterConfigError(
            f"{repo_root / CLUSTER_FILE}: metadata.name and metadata.region are required."
        )
    entries = (document.get("accessConfig") or {}).get("accessEntries") or []
    roles = {
        str(account["metadata"]["name"]): str(account["roleName"])
        for account in (document.get("iam") or {}).get("serviceAccounts") or []
        if "roleName" in account
    }
    return ClusterSpec(name, region, tuple(str(entry["principalARN"]) for entry in entries), roles)


def template_variables(text: str) -> set[str]:
    """The `${NAME}` variables a template uses."""
    return {
        match.group("named") or match.group("braced")
        for match in Template.pattern.finditer(text)
        if match.group("named") or match.group("braced")
    }


def render_cluster_config(repo_root: Path, *, account_id: str, bucket: str) -> str:
    """The ClusterConfig with its template variables filled in, ready for `eksctl create cluster -f -`.

    The bucket is an argument (a real AWS bucket name is globally unique, unlike the local one)."""
    if not _ACCOUNT_ID.match(account_id):
        raise ClusterConfigError(f"AWS account id {account_id!r} must be 12 digits.")
    if not _BUCKET.match(bucket):
        raise ClusterConfigError(f"S3 bucket name {bucket!r} is not a valid bucket name.")
    text = (repo_root / CLUSTER_FILE).read_text()
    unknown = template_variables(text) - TEMPLATE_VARIABLES
    if unknown:
        raise ClusterConfigError(
            f"{CLUSTER_FILE} uses unknown template variables {sorted(unknown)}; "
            f"only {sorted(TEMPLATE_VARIABLES)} are filled in."
        )
    settings = parse_env_file(repo_root / CONFIG_DIR / STACK_ENV)
    return Template(text).substitute(
        AWS_ACCOUNT_ID=account_id,
        S3_BUCKET=bucket,
        MLFLOW_ARTIFACTS_PREFIX=settings["MLFLOW_ARTIFACTS_PREFIX"],
    )
