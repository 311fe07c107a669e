"""The few kubectl operations a deploy needs, against one context, through the commands seam."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackctl.eks.render import ObjectRef
from stackctl.k8s.commands import CommandResult, Runner

FIELD_MANAGER = "stackctl-eks"


@dataclass(frozen=True)
class Kubectl:
    binary: str
    runner: Runner
    context: str | None = None

    def _args(self, *args: str) -> list[str]:
        return [self.binary, *(["--context", self.context] if self.context else []), *args]

    def _with_file(self, manifest: str, *args: str, check: bool = True) -> CommandResult:
        with tempfile.TemporaryDirectory(prefix="stackctl-eks-") as tmp:
            path = Path(tmp) / "manifest.yaml"
            path.write_text(manifest)
            return self.runner(self._args(*args, "-f", str(path)), timeout=600, check=check)

    def apply(self, manifest: str) -> None:
        """Server-side apply; we own the fields we set, even if another manager touched them."""
        self._with_file(
            manifest,
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
        )

    def apply_object(self, obj: dict[str, Any]) -> None:
        self.apply(yaml.safe_dump(obj, sort_keys=False))

    def diff(self, manifest: str) -> CommandResult:
        """`kubectl diff`: exit 0 no changes, 1 changes, >1 error."""
        return self._with_file(
            manifest,
            "diff",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
            check=False,
        )

    def delete(self, ref: ObjectRef, *, wait: bool = False) -> None:
        self.runner(
            self._args(
                "delete", *ref.kubectl_args(), "--ignore-not-found", f"--wait={str(wait).lower()}"
            ),
            timeout=300,
        )

    def list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        result = self.runner(self._args("get", resource, "-n", namespace, "-o", "json"), timeout=60)
        items: list[dict[str, Any]] = json.loads(result.stdout).get("items", [])
        return items

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        result = self.runner(
            self._args("get", *ref.kubectl_args(), "-o", "json", "--ignore-not-found"), timeout=60
        )
        found: dict[str, Any] | None = json.loads(result.stdout) if result.stdout.strip() else None
        return found
