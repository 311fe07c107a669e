"""`python -m stackctl.eks deploy` end to end, offline: the dry run needs no credentials, and
`--apply` without credentials stops before touching anything, saying what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eks_fakes import DIGEST_A, ENV_BIN, REGISTRY, REPO, write_overlay

from stackctl.eks.digests import ImageDigests


def no_aws_env(tmp_path: Path) -> dict[str, str]:
    """The environment minus every AWS credential source, with an empty kubeconfig."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    empty = tmp_path / "empty"
    empty.write_text("")
    env |= {
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups (no network)
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "KUBECONFIG": str(empty),
        "PATH": f"{ENV_BIN}:{env.get('PATH', '')}",
        "COLUMNS": "200",
    }
    env.pop("AWS_PROFILE", None)
    return env


def write_digests(path: Path, release: str) -> Path:
    """A digests file for `release` pinning the model-server image."""
    ImageDigests(
        release=release,
        images={
            "airflow-on-k8s/model-server": f"{REGISTRY}/airflow-on-k8s/model-server@{DIGEST_A}"
        },
    ).dump(path)
    return path


def run_eks(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m stackctl.eks ARGS` from the repo root, without AWS credentials."""
    return subprocess.run(
        [sys.executable, "-m", "stackctl.eks", *args],
        cwd=REPO,
        env=no_aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_eks(tmp_path, "deploy", "--reports", str(tmp_path / "reports"), *args)


def test_dry_run_renders_and_prints_the_plan_without_credentials(tmp_path: Path) -> None:
    overlay = write_overlay(tmp_path / "overlay")
    digests = write_digests(tmp_path / "digests.json", "v9.9.9")
    result = run_cli(tmp_path, "--overlay", str(overlay), "--image-digests", str(digests))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "4 objects in the eks overlay" in out
    for expected in ("Deployment", "model-server", "Job", "migrate", "ConfigMap", "settings"):
        assert expected in out
    assert f"{REGISTRY}/airflow-on-k8s/model-server@{DIGEST_A}" in out
    assert (
        "No diff against a live cluster was possible: No kubeconfig context for EKS cluster" in out
    )
    assert "aws eks update-kubeconfig --name mlops --region us-east-1" in out
    manifest = (tmp_path / "reports" / "plan" / "manifest.yaml").read_text()
    assert f"@{DIGEST_A}" in manifest


def test_apply_without_credentials_fails_clearly_before_anything_else(tmp_path: Path) -> None:
    overlay = write_overlay(tmp_path / "overlay")
    digests = write_digests(tmp_path / "digests.json", "v9.9.9")
    result = run_cli(
        tmp_path, "--apply", "--overlay", str(overlay), "--image-digests", str(digests)
    )
    assert result.returncode == 1
    assert "No AWS credentials" in result.stdout
    assert "aws sso login" in result.stdout
    assert "role-to-assume" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "reports" / "v9.9.9").exists(), "nothing was rendered or applied"


def test_apply_needs_the_digests_of_the_pushed_images(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--apply", "--overlay", str(write_overlay(tmp_path / "o")))
    assert result.returncode == 1
    assert "--apply needs --image-digests FILE" in result.stdout


def test_release_must_match_the_digests_file(tmp_path: Path) -> None:
    digests = write_digests(tmp_path / "digests.json", "v1.0.0")
    result = run_cli(tmp_path, "--release", "v2.0.0", "--image-digests", str(digests))
    assert result.returncode == 1
    assert "--release v2.0.0 but the digests file is for v1.0.0" in result.stdout


def test_dry_run_of_the_real_eks_overlay(tmp_path: Path) -> None:
    """The committed eks overlay renders, and the plan lists the stack's workloads."""
    overlay = REPO / "platform" / "k8s" / "overlays" / "eks"
    if not (overlay / "kustomization.yaml").is_file():
        pytest.fail(f"{overlay} has no kustomization.yaml: the eks overlay is missing")
    result = run_cli(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model-server" in result.stdout
    assert "No diff against a live cluster was possible" in result.stdout
    assert "secrets.env: throwaway credentials (dry run)" in result.stdout
    manifest = (tmp_path / "reports" / "plan" / "manifest.yaml").read_text()
    assert "AIRFLOW_ADMIN_PASSWORD: REDACTED" in manifest, "no credential reaches the reports"


def test_push_images_without_credentials_stops_before_building(tmp_path: Path) -> None:
    result = run_eks(
        tmp_path,
        "push-images",
        "--registry",
        REGISTRY,
        "--tag",
        "v9.9.9",
        "--digests-file",
        str(tmp_path / "digests.json"),
        "--overlay",
        str(write_overlay(tmp_path / "overlay")),
    )
    assert result.returncode == 1
    assert "No AWS credentials" in result.stdout
    assert not (tmp_path / "digests.json").exists()
