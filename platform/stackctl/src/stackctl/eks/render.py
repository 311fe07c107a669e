"""Render the eks overlay with the released image digests, and describe what it would apply."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from stackctl.eks.digests import ImageDigests
from stackctl.eks.inputs import DeployInputs, prepared_overlay
from stackctl.k8s.commands import Runner

EKS_OVERLAY = Path("platform") / "k8s" / "overlays" / "eks"
# Kinds whose pod template carries containers, and where that template sits.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

Obj = dict[str, Any]


class RenderError(RuntimeError):
    """The overlay cannot be rendered, or does not match the image digests file."""


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Identifies one Kubernetes object of a rendered manifest."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        metadata = obj.get("metadata") or {}
        return cls(
            str(obj.get("kind")), str(metadata.get("namespace") or ""), str(metadata["name"])
        )

    def __str__(self) -> str:
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind}/{self.name}"
        )

    def kubectl_args(self) -> list[str]:
        return [self.kind.lower(), self.name, *(["-n", self.namespace] if self.namespace else [])]


def overlay_with_digests(overlay: Path, digests: ImageDigests, workdir: Path) -> Path:
    """A kustomization in `workdir` that layers the digests over `overlay` (left untouched)."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize refuses absolute paths to bases; a relative one works from any directory.
        "resources": [os.path.relpath(overlay.resolve(), workdir.resolve())],
        "images": digests.kustomize_images(),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return workdir


def render(
    overlay: Path,
    digests: ImageDigests | None,
    *,
    kubectl: str,
    runner: Runner,
    inputs: DeployInputs | None = None,
    repo_root: Path | None = None,
) -> str:
    """The overlay's manifests (a YAML stream), with every image in `digests` pinned.

    With `inputs`, the overlay is rendered from a temporary copy of `repo_root`/platform holding
    the deploy-time files, so the checkout never holds credentials."""
    if not (overlay / "kustomization.yaml").is_file():
        raise RenderError(
            f"{overlay} has no kustomization.yaml; the eks overlay must exist to deploy."
        )
    with tempfile.TemporaryDirectory(prefix="stackctl-eks-") as tmp:
        root = overlay
        if inputs is not None:
            if repo_root is None:
                raise ValueError("rendering with deploy-time inputs needs the repository root")
            root = prepared_overlay(repo_root, overlay, inputs, Path(tmp) / "copy")
        if digests is not None:
            root = overlay_with_digests(root, digests, Path(tmp) / "release")
        manifest = runner([kubectl, "kustomize", str(root)], timeout=120).stdout
    objects = parse_objects(manifest)
    if digests is not None:
        check_digests_applied(objects, digests)
    return manifest


def redact_secrets(manifest: str) -> str:
    """The manifest with every Secret value replaced, for files that end up in CI artifacts."""
    objects = parse_objects(manifest)
    for obj in objects:
        if obj.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if obj.get(key):
                    obj[key] = dict.fromkeys(obj[key], "REDACTED")
    return yaml.safe_dump_all(objects, sort_keys=False)


def without_secrets(manifest: str) -> str:
    """The manifest minus its Secrets (what a stored release record may keep)."""
    kept = [obj for obj in parse_objects(manifest) if obj.get("kind") != "Secret"]
    return yaml.safe_dump_all(kept, sort_keys=False)


def parse_objects(manifest: str) -> list[Obj]:
    return [
        doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict) and doc.get("kind")
    ]


def container_images(obj: Mapping[str, Any]) -> list[str]:
    """Images of every container and init container of a workload object."""
    spec: Any = obj
    for key in _POD_SPEC_PATHS.get(str(obj.get("kind")), ()):
        spec = (spec or {}).get(key)
    if not isinstance(spec, dict) or str(obj.get("kind")) not in _POD_SPEC_PATHS:
        return []
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return [str(container["image"]) for container in containers if "image" in container]


def image_name(reference: str) -> str:
    """`registry/repo:tag@sha256:...` -> `registry/repo` (the name kustomize `images:` matches)."""
    without_digest = reference.split("@", 1)[0]
    last_slash = without_digest.rfind("/")
    tag_colon = without_digest.rfind(":")
    return without_digest[:tag_colon] if tag_colon > last_slash else without_digest


def check_digests_applied(objects: Iterable[Mapping[str, Any]], digests: ImageDigests) -> None:
    """Every image of the digests file is used by the overlay and now pinned to its digest."""
    used = {image for obj in objects for image in container_images(obj)}
    missing = [
        f"{name} (expected {reference})"
        for name, reference in sorted(digests.images.items())
        if reference not in used
    ]
    if missing:
        raise RenderError(
            "The eks overlay does not use these images of the digests file: "
            + ", ".join(missing)
            + ". The digests file keys must be the image names the manifests use."
        )


def plan_table(objects: Sequence[Mapping[str, Any]]) -> Table:
    """What an apply would create or update: one row per object, images for workloads."""
    table = Table(title=f"{len(objects)} objects in the eks overlay")
    for column in ("Kind", "Namespace", "Name", "Images"):
        table.add_column(column)
    for obj in sorted(objects, key=ObjectRef.of):
        ref = ObjectRef.of(obj)
        table.add_row(ref.kind, ref.namespace or "-", ref.name, "\n".join(container_images(obj)))
    return table
