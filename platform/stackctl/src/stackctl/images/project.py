"""Build the project's images, each a target of platform/images/Dockerfile, on the pinned
Python base or (no-registry mode) its stand-in, and record what each build took."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from stackctl.images import references
from stackctl.images.build import BuiltImage, build, docker_client, record
from stackctl.images.standins import ImageResolver

REPORTS = Path("reports/images")


def image_resolver(repo_root: Path, warn: Callable[[str], None]) -> ImageResolver:
    """The resolver of this checkout on the engine DOCKER_HOST names; build logs under
    reports/images; every no-registry notice goes to `warn`."""
    return ImageResolver(docker_client(), repo_root, repo_root / REPORTS, warn)


def build_project_images(
    resolver: ImageResolver,
    *,
    targets: Sequence[str] = references.PROJECT_TARGETS,
    tag: str = "dev",
    status: Callable[[str, str], None] = lambda _target, _line: None,
) -> list[BuiltImage]:
    """Build `targets` as `airflow-on-k8s/<target>:<tag>`; stand-ins built on the way are
    recorded with them in reports/images/builds.json."""
    base = resolver.resolve("python")
    built: list[BuiltImage] = []
    for target in targets:

        def step(line: str, target: str = target) -> None:
            status(target, line)

        built.append(
            build(
                resolver.client,
                resolver.repo_root,
                dockerfile=references.DOCKERFILE,
                target=target,
                reference=references.project_image(target, tag),
                buildargs={"PYTHON_IMAGE": base.reference},
                log_dir=resolver.log_dir,
                status=step,
            )
        )
    record([*resolver.built, *built], resolver.repo_root / REPORTS / "builds.json")
    return built
