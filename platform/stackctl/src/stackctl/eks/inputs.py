"""The eks overlay's deploy-time inputs, which are never committed: `eks.env` and `secrets.env`.

The Kubernetes engineer's `stackctl.k8s.manifests` defines them (keys, sample values, how fresh
credentials are made); this module supplies the real values and renders on a temporary copy of
platform/, so no credential is ever written into the checkout:

- `eks.env`: IRSA_ROLE_ARN and IRSA_MLFLOW_ROLE_ARN (the `airflow` and `mlflow` ServiceAccounts'
  roles of platform/eks/cluster.yaml in the caller's account), DAGS_GIT_REPO, DAGS_GIT_REF (the
  release tag), INGRESS_HOST.
- `secrets.env`: the values of the live `stack-secrets-*` Secret when the cluster has one (a deploy
  must never rotate the database passwords under a running stack), else fresh ones.

A dry run without credentials fills what it cannot know with the sample values and says so.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackcontract.envfile import write_env_file
from stackctl.eks.cluster import ClusterSpec
from stackctl.k8s import manifests

# eks.env key -> the ServiceAccount whose IRSA role (platform/eks/cluster.yaml) it names; the overlay
# annotates each account with its own key (each role trusts exactly one ServiceAccount).
IRSA_ROLE_KEYS = {"IRSA_ROLE_ARN": "airflow", "IRSA_MLFLOW_ROLE_ARN": "mlflow"}
SECRET_PREFIX = "stack-secrets"
# Environment variables that supply the settings a release cannot derive (set in the release
# workflow from the production environment's variables).
DAGS_GIT_REPO_ENV = "DAGS_GIT_REPO"
INGRESS_HOST_ENV = "EKS_INGRESS_HOST"
# What is copied to render: everything the overlays reference, not the Python packages or images.
_COPY_IGNORE = shutil.ignore_patterns("secrets.env", "eks.env", "__pycache__", "stackctl", "*.pem")


class InputsError(RuntimeError):
    """A deploy-time input is missing; the message names it and where it comes from."""


@dataclass(frozen=True)
class DeployInputs:
    """Files to write next to the overlay's kustomization.yaml before rendering."""

    files: dict[str, dict[str, str]]
    notes: tuple[str, ...] = field(default=())


def eks_settings(
    repo_root: Path,
    cluster: ClusterSpec,
    *,
    account_id: str | None,
    release: str | None,
    dags_git_repo: str | None,
    ingress_host: str | None,
    dry_run: bool,
) -> tuple[dict[str, str], list[str]]:
    """The eks.env values, and notes on the ones a dry run had to fill with samples."""
    role = {
        key: cluster.irsa_role_arn(account, account_id) if account_id else None
        for key, account in IRSA_ROLE_KEYS.items()
    }
    known = {
        **role,
        "DAGS_GIT_REPO": dags_git_repo,
        "DAGS_GIT_REF": release,
        "INGRESS_HOST": ingress_host,
    }
    sources = {
        **dict.fromkeys(IRSA_ROLE_KEYS, "the AWS account of the caller (needs credentials)"),
        "DAGS_GIT_REPO": f"--dags-git-repo or ${DAGS_GIT_REPO_ENV}",
        "DAGS_GIT_REF": "--release or the image digests file",
        "INGRESS_HOST": f"--ingress-host or ${INGRESS_HOST_ENV}",
    }
    missing = [key for key, value in known.items() if not value]
    if missing and not dry_run:
        raise InputsError(
            "Missing deploy settings: "
            + "; ".join(f"{key} (from {sources[key]})" for key in missing)
        )
    samples: Mapping[str, str] = manifests.EKS_SAMPLE_SETTINGS
    settings = {key: value or samples[key] for key, value in known.items()}
    notes = [
        f"{key} is a sample value ({settings[key]}); set it with {sources[key]}" for key in missing
    ]
    return settings, notes


def fresh_secrets(repo_root: Path) -> dict[str, str]:
    """New credentials for every key the manifests read (IRSA: no static S3 keys)."""
    values = manifests.dev_secrets(with_static_s3_keys=False, root=repo_root)
    return values


def release_secrets(
    live: Mapping[str, str] | None, fresh: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The Secret a release deploys, and the keys generated for it: every value the cluster has
    is kept (a redeploy never rotates a running stack's credentials); a key the release reads
    that the live Secret lacks (added since the last release) is taken from `fresh`."""
    if live is None:
        return dict(fresh), []
    return {**fresh, **live}, sorted(set(fresh) - set(live))


def live_secret_values(secrets: list[dict[str, Any]]) -> dict[str, str] | None:
    """The values of the newest `stack-secrets-<hash>` Secret, if the cluster has one."""
    ours = [s for s in secrets if str(s["metadata"]["name"]).startswith(SECRET_PREFIX)]
    if not ours:
        return None
    newest = max(ours, key=lambda s: str(s["metadata"].get("creationTimestamp", "")))
    return {
        key: base64.b64decode(value).decode() for key, value in (newest.get("data") or {}).items()
    }


def overlay_namespace(overlay: Path) -> str | None:
    """The `namespace:` the overlay's kustomization sets, if any."""
    document = yaml.safe_load((overlay / "kustomization.yaml").read_text()) or {}
    namespace = document.get("namespace")
    return str(namespace) if namespace else None


def prepared_overlay(repo_root: Path, overlay: Path, inputs: DeployInputs, workdir: Path) -> Path:
    """A copy of what the overlay references (platform/, or the overlay's parent for an overlay
    elsewhere) in `workdir`, with the inputs written next to the copied overlay."""
    platform = (repo_root / "platform").resolve()
    overlay = overlay.resolve()
    source = platform if overlay.is_relative_to(platform) else overlay.parent
    copy = workdir / source.name
    shutil.copytree(source, copy, ignore=_COPY_IGNORE)
    copied_overlay = copy / overlay.relative_to(source)
    for name, values in inputs.files.items():
        write_env_file(copied_overlay / name, values)
    return copied_overlay
