"""Images for the kind cluster: build the project's images (pushed to the cluster's local
registry, stackctl.k8s.kind_registry), cache third-party ones and load those into the nodes with
`kind load image-archive`.

- Project images are the `airflow-on-k8s/<name>:<tag>` references of the rendered overlay; each is
  the target `<name>` of platform/images/Dockerfile, built with the docker SDK for linux/amd64
  only, with the repository root as build context.
- Third-party images are pulled once (linux/amd64) and saved to a cache of archives named by
  digest (`~/.cache/airflow-on-k8s/kind-images/sha256-<hex>.tar`); a later run loads the archive
  without touching the registry.
- Archives, not `kind load docker-image`: the latter exports from the Docker image store and fails
  for multi-arch images with the containerd image store. Note kind's open issues #2394/#4028: an
  image referenced by digest may still be pulled by the node after loading; the readiness engine
  reports an ImagePull failure if that pull is impossible.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl.images.references import (
    DOCKERFILE,
    PROJECT_REPOSITORY,
    ImageReferenceError,
    target_of,
)

PLATFORM = "linux/amd64"
_WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod"}
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


class ImageError(RuntimeError):
    """An image cannot be built, pulled or saved; the message says which and why."""


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "airflow-on-k8s" / "kind-images"


def workload_containers(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The init and main containers of a workload manifest's pod (none for other kinds)."""
    kind = doc.get("kind")
    if kind == "CronJob":
        spec = doc.get("spec", {}).get("jobTemplate", {}).get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
    elif kind == "Pod":
        pod = doc.get("spec", {})
    elif kind in _WORKLOAD_KINDS:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    else:
        return []
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def images_in_manifests(manifests: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every container/init-container image referenced by the rendered workloads, sorted."""
    return sorted(
        {str(c["image"]) for doc in manifests for c in workload_containers(doc) if c.get("image")}
    )


def is_project_image(reference: str) -> bool:
    return reference.startswith(PROJECT_REPOSITORY)


def digest_of(reference: str) -> str | None:
    """The `sha256:...` a reference is pinned to, if any."""
    match = _DIGEST.search(reference)
    return match.group(1) if match else None


def dockerfile_for(repo_root: Path, reference: str) -> Path:
    """platform/images/Dockerfile, whose target `<name>` builds project image `reference`."""
    try:
        target_of(reference)
    except ImageReferenceError as error:
        raise ImageError(f"The overlay uses {reference}: {error}") from None
    path = repo_root / DOCKERFILE
    if not path.is_file():
        raise ImageError(f"The overlay uses {reference} but {DOCKERFILE} does not exist.")
    return path


def cache_archive_path(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{digest.replace(':', '-')}.tar"


def _write_chunks(chunks: Iterable[bytes], path: Path) -> None:
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    partial.replace(path)  # a crash never leaves a truncated archive under the final name


@dataclass
class ImageStore:
    """Builds, pulls and saves images through a docker SDK client (`docker.from_env()`)."""

    client: Any
    repo_root: Path
    cache_dir: Path

    def build(self, reference: str) -> str:
        """Build a project image for linux/amd64; returns its image id (sha256:...)."""
        from docker.errors import BuildError, DockerException

        dockerfile = dockerfile_for(self.repo_root, reference)
        try:
            image, _logs = self.client.images.build(
                path=str(self.repo_root),
                dockerfile=str(dockerfile.relative_to(self.repo_root)),
                target=target_of(reference),
                tag=reference,
                platform=PLATFORM,
                rm=True,
                pull=False,
            )
        except BuildError as exc:
            tail = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)
            raise ImageError(
                f"Building {reference} from {dockerfile} failed:\n{tail[-3000:]}"
            ) from exc
        except DockerException as exc:
            raise ImageError(f"Building {reference} failed: {exc}") from exc
        return str(image.id)

    def third_party_archive(self, reference: str) -> tuple[Path, str]:
        """The cached archive of a third-party image (pulled and saved on first use) and its
        digest. Unpinned references are resolved to a digest through the cache index."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        index_path = self.cache_dir / "index.json"
        index: dict[str, str] = json.loads(index_path.read_text()) if index_path.is_file() else {}
        digest = digest_of(reference) or index.get(reference)
        if digest and cache_archive_path(self.cache_dir, digest).is_file():
            return cache_archive_path(self.cache_dir, digest), digest
        from docker.errors import DockerException

        try:
            image = self.client.images.pull(reference, platform=PLATFORM)
        except DockerException as exc:
            raise ImageError(
                f"Pulling {reference} failed: {exc}. The first run needs registry access; later "
                f"runs use the cache in {self.cache_dir}."
            ) from exc
        digest = digest or _repo_digest(image.attrs, reference)
        archive = cache_archive_path(self.cache_dir, digest)
        name = reference.split("@", 1)[0]
        if name != reference:
            image.tag(*_split_tag(name))  # archives carry a tag; containerd keys on it
        _write_chunks(image.save(named=name), archive)
        index[reference] = digest
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return archive, digest


def _split_tag(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        return name, "latest"
    return repo, tag


def _repo_digest(attrs: Mapping[str, Any], reference: str) -> str:
    for repo_digest in attrs.get("RepoDigests") or []:
        if "@" in repo_digest:
            return str(repo_digest.split("@", 1)[1])
    # No registry digest (e.g. a local image): fall back to the image id, stable per content.
    image_id = str(attrs.get("Id") or hashlib.sha256(reference.encode()).hexdigest())
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


@dataclass(frozen=True)
class PreparedImage:
    reference: str
    archive: Path | None  # third-party images only: project images go through the registry
    digest: str  # image id for project images, registry digest for third-party ones
    built: bool


def prepare_images(store: ImageStore, references: Sequence[str]) -> Iterator[PreparedImage]:
    """Build project images (to be pushed); fetch third-party ones' archives from the cache."""
    for reference in references:
        if is_project_image(reference):
            yield PreparedImage(reference, None, store.build(reference), built=True)
        else:
            archive, digest = store.third_party_archive(reference)
            yield PreparedImage(reference, archive, digest, built=False)
