"""Every image reference of the stack, read from the one place they are pinned:
platform/images/kustomization.yaml (a kustomize Component both Kubernetes overlays include).

`STACK_IMAGE_MIRROR=host[:port][/path]` points every third-party reference at a mirror registry
(the registry host of the reference, if any, is replaced; the digest stays, so the mirror must hold
the same image). The project's own images are `airflow-on-k8s/<target>:<tag>`, one target each of
platform/images/Dockerfile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from stackcontract.errors import ConfigError

IMAGES_FILE = Path("platform/images/kustomization.yaml")
DOCKERFILE = Path("platform/images/Dockerfile")
STAND_INS_DOCKERFILE = Path("platform/images/stand-ins.Dockerfile")
PROJECT_REPOSITORY = "airflow-on-k8s/"
# in the order of their stages in the Dockerfile: the classic builder builds every stage above a
# target, so building in this order times each image by what it adds
PROJECT_TARGETS = ("model-server", "mlflow", "airflow")
MIRROR_VARIABLE = "STACK_IMAGE_MIRROR"


class ImageReferenceError(ConfigError):
    """platform/images/kustomization.yaml is malformed or lacks an image; the message says which."""


@dataclass(frozen=True)
class PinnedImage:
    """One `images:` entry: a name pinned to a tag and a digest."""

    name: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}@{self.digest}"

    def through(self, mirror: str | None) -> str:
        """The reference, pulled through `mirror` when one is set."""
        if not mirror:
            return self.reference
        first, _, rest = self.name.partition("/")
        path = (
            rest if rest and ("." in first or ":" in first or first == "localhost") else self.name
        )
        return f"{mirror.rstrip('/')}/{path}:{self.tag}@{self.digest}"


def load_pinned(repo_root: Path) -> dict[str, PinnedImage]:
    """Every pinned image by name (`postgres`, `prom/prometheus`, `python`, ...)."""
    path = repo_root / IMAGES_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ImageReferenceError(f"{path} does not exist.") from None
    pinned: dict[str, PinnedImage] = {}
    for index, entry in enumerate(document.get("images") or []):
        name, tag, digest = entry.get("name"), entry.get("newTag"), entry.get("digest")
        if not (name and tag and str(digest).startswith("sha256:")):
            raise ImageReferenceError(
                f"{path}: images[{index}] needs name, newTag and digest: sha256:<hex> (got {entry})."
            )
        pinned[str(name)] = PinnedImage(str(name), str(tag), str(digest))
    return pinned


def mirror_from_env() -> str | None:
    return os.environ.get(MIRROR_VARIABLE) or None


def third_party(repo_root: Path, name: str, *, mirror: str | None = None) -> str:
    """The reference to pull for third-party image `name` (through the mirror, if any)."""
    pinned = load_pinned(repo_root)
    if name not in pinned:
        raise ImageReferenceError(
            f"No image {name!r} in {repo_root / IMAGES_FILE} (pinned: {', '.join(sorted(pinned))})."
        )
    return pinned[name].through(mirror if mirror is not None else mirror_from_env())


def project_image(target: str, tag: str = "dev") -> str:
    """`airflow-on-k8s/<target>:<tag>`, the name the overlays and Compose use."""
    if target not in PROJECT_TARGETS:
        raise ImageReferenceError(
            f"No image target {target!r} in {DOCKERFILE} (targets: {', '.join(PROJECT_TARGETS)})."
        )
    return f"{PROJECT_REPOSITORY}{target}:{tag}"


def target_of(reference: str) -> str:
    """The Dockerfile target of a project image reference (`airflow-on-k8s/mlflow:dev` -> mlflow)."""
    if not reference.startswith(PROJECT_REPOSITORY):
        raise ImageReferenceError(f"{reference} is not a project image ({PROJECT_REPOSITORY}...).")
    name = reference.removeprefix(PROJECT_REPOSITORY).split("@", 1)[0].split(":", 1)[0]
    if name not in PROJECT_TARGETS:
        raise ImageReferenceError(
            f"{reference}: no target {name!r} in {DOCKERFILE} (targets: {', '.join(PROJECT_TARGETS)})."
        )
    return name
