"""The smoke subset of the integration suite, run against a fresh EKS release.

The selection is the list of pytest node ids in platform/eks/smoke-tests.txt (chosen by node id,
not by a marker, so the integration tests need no EKS-specific edits). Those tests talk to the stack
only over HTTP: the services are reached through `kubectl port-forward` on free local ports, and an
`endpoints.json` for them is handed to pytest with `--stack-endpoints`, as for the other backends.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl.eks.connect import (
    FORWARDED_SERVICES,
    ConnectError,
    eks_endpoints,
    port_forward,
    service_port,
    stack_config,
)
from stackctl.eks.deploy import SmokeFailure
from stackctl.eks.kubectl import Kubectl
from stackctl.eks.render import ObjectRef
from stackctl.k8s.commands import run_command

SMOKE_TESTS = Path("platform") / "eks" / "smoke-tests.txt"
SECRET_PREFIX = "stack-secrets"
SMOKE_TIMEOUT_SECONDS = 1800


class SmokeConfigError(ConnectError):
    """The smoke selection or the release's objects do not allow a smoke run."""


def smoke_selection(repo_root: Path) -> list[str]:
    """Node ids listed in the smoke file (blank lines and # comments ignored)."""
    path = repo_root / SMOKE_TESTS
    if not path.is_file():
        raise SmokeConfigError(
            f"{path} does not exist; it lists the smoke tests by pytest node id."
        )
    ids = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    selection = [node for node in ids if node]
    if not selection:
        raise SmokeConfigError(f"{path} lists no tests; add pytest node ids, one per line.")
    outside = [node for node in selection if not node.startswith("tests/integration/")]
    if outside:
        raise SmokeConfigError(f"{path}: smoke tests must be under tests/integration/: {outside}")
    return selection


def pytest_command(selection: Sequence[str], endpoints: Path, junit: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *selection,
        "--stack-endpoints",
        str(endpoints),
        f"--junitxml={junit}",
        "-p",
        "no:cacheprovider",
    ]


def secret_value(objects: Sequence[Mapping[str, Any]], namespace: str, key: str) -> str:
    """A value of the rendered `stack-secrets-<hash>` Secret (the one this release deploys)."""
    for obj in objects:
        ref = ObjectRef.of(obj)
        if (
            ref.kind == "Secret"
            and ref.namespace == namespace
            and ref.name.startswith(SECRET_PREFIX)
        ):
            encoded = (obj.get("data") or {}).get(key)
            if encoded is None:
                raise SmokeConfigError(f"Secret {ref} has no key {key}.")
            return base64.b64decode(encoded).decode()
    raise SmokeConfigError(f"The eks overlay renders no {SECRET_PREFIX} Secret in {namespace}.")


@dataclass(frozen=True)
class SmokeRun:
    """The smoke step of `deploy.apply_release`."""

    repo_root: Path
    kubectl_binary: str
    reports: Path
    region: str

    def __call__(self, context: str, namespace: str, objects: Sequence[Mapping[str, Any]]) -> None:
        selection = smoke_selection(self.repo_root)
        kubectl = Kubectl(self.kubectl_binary, run_command, context)
        self.reports.mkdir(parents=True, exist_ok=True)
        junit = self.reports / "smoke-junit.xml"
        with ExitStack() as stack:
            urls = {
                field: stack.enter_context(
                    port_forward(
                        kubectl, namespace, service, service_port(objects, service, namespace)
                    )
                )
                for service, field in FORWARDED_SERVICES.items()
            }
            endpoints = eks_endpoints(
                config=stack_config(objects, namespace),
                urls=urls,
                airflow_password=secret_value(objects, namespace, "AIRFLOW_ADMIN_PASSWORD"),
                region=self.region,
                reload_token=secret_value(objects, namespace, "MODEL_SERVER_RELOAD_TOKEN"),
                mlflow_user=(
                    secret_value(objects, namespace, "MLFLOW_TRACKING_USERNAME"),
                    secret_value(objects, namespace, "MLFLOW_TRACKING_PASSWORD"),
                ),
            )
            # The endpoints file holds credentials: a private temp dir, never reports/ (an artifact).
            private = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eks-smoke-")))
            endpoints.dump(private / "endpoints.json")
            command = pytest_command(selection, private / "endpoints.json", junit)
            try:
                result = subprocess.run(
                    command, cwd=self.repo_root, check=False, timeout=SMOKE_TIMEOUT_SECONDS
                )
            except subprocess.TimeoutExpired:
                raise SmokeFailure(
                    f"smoke tests ran past {SMOKE_TIMEOUT_SECONDS}s; see {junit}"
                ) from None
        if result.returncode != 0:
            raise SmokeFailure(
                f"smoke tests exited {result.returncode} ({' '.join(selection)}); see {junit}"
            )
