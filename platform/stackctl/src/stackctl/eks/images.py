"""Build the project's images, push them to ECR tagged with the release, and record their digests.

The images are the project images the eks overlay uses (`airflow-on-k8s/<name>:<tag>`), built
from the targets of platform/images/Dockerfile, as for kind and Compose (stackctl.images), with `docker buildx build --push`
for linux/amd64. The ECR repository is named like the image (`airflow-on-k8s/<name>`) and is
created on first use with immutable tags and scan-on-push. The digest comes from buildx's metadata
file, so the deploy pins exactly what was pushed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackctl.eks.digests import ImageDigests
from stackctl.eks.render import image_name
from stackctl.images.references import target_of
from stackctl.k8s.commands import Runner
from stackctl.k8s.images import PLATFORM, dockerfile_for, images_in_manifests, is_project_image

_RELEASE_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class PushError(RuntimeError):
    """An image could not be built, pushed or described; the message says which and why."""


def check_release_tag(tag: str) -> str:
    """A Docker tag: at most 128 of [A-Za-z0-9_.-], not starting with '.' or '-'."""
    if not tag or len(tag) > 128 or tag[0] in ".-" or not set(tag) <= _RELEASE_TAG_CHARS:
        raise PushError(
            f"Release tag {tag!r} cannot be a Docker tag (use letters, digits, '_', '.', '-'; "
            "at most 128; not starting with '.' or '-')."
        )
    return tag


def project_image_names(objects: Sequence[dict[str, Any]]) -> list[str]:
    """`airflow-on-k8s/<name>` of every project image the overlay deploys."""
    return sorted(
        {image_name(ref) for ref in images_in_manifests(objects) if is_project_image(ref)}
    )


def build_command(
    docker: str,
    *,
    repo_root: Path,
    dockerfile: Path,
    stage: str,
    target: str,
    metadata_file: Path,
) -> list[str]:
    """`docker buildx build --push` of Dockerfile `stage` (the image's target) as `target`."""
    return [
        docker,
        "buildx",
        "build",
        "--platform",
        PLATFORM,
        "--push",
        "--target",
        stage,
        "--tag",
        target,
        "--metadata-file",
        str(metadata_file),
        "--file",
        str(dockerfile),
        str(repo_root),
    ]


def digest_from_metadata(metadata_file: Path) -> str:
    metadata = json.loads(metadata_file.read_text())
    digest = metadata.get("containerimage.digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise PushError(f"buildx metadata {metadata_file} has no containerimage.digest: {metadata}")
    return digest


def ensure_repository(ecr: Any, name: str) -> None:
    """Create the ECR repository `name` if it does not exist (immutable tags, scan on push)."""
    try:
        ecr.describe_repositories(repositoryNames=[name])
    except ecr.exceptions.RepositoryNotFoundException:
        ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )


def push_images(
    *,
    repo_root: Path,
    objects: Sequence[dict[str, Any]],
    registry: str,
    tag: str,
    docker: str,
    runner: Runner,
    ecr: Any,
) -> ImageDigests:
    """Build and push every project image; return the digests of what was pushed."""
    check_release_tag(tag)
    names = project_image_names(objects)
    if not names:
        raise PushError("The eks overlay uses no airflow-on-k8s/* project image; nothing to push.")
    pushed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="stackctl-push-") as tmp:
        for name in names:
            ensure_repository(ecr, name)
            repository = f"{registry.rstrip('/')}/{name}"
            metadata = Path(tmp) / f"{name.replace('/', '_')}.json"
            runner(
                build_command(
                    docker,
                    repo_root=repo_root,
                    dockerfile=dockerfile_for(repo_root, name),
                    stage=target_of(name),
                    target=f"{repository}:{tag}",
                    metadata_file=metadata,
                ),
                timeout=3600,
            )
            pushed[name] = f"{repository}@{digest_from_metadata(metadata)}"
    return ImageDigests(release=tag, images=pushed)
