"""push-images: what is built, how, where it is pushed, and the digests it records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from eks_fakes import DIGEST_A, REGISTRY, REPO

from stackctl.eks.images import PushError, check_release_tag, project_image_names, push_images
from stackctl.k8s.commands import CommandResult


def workload(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {"kind": "Deployment", "spec": {"template": {"spec": {"containers": containers}}}}


class FakeEcr:
    class exceptions:  # mirrors boto3 client.exceptions
        class RepositoryNotFoundException(Exception):
            pass

    def __init__(self, existing: set[str]) -> None:
        self.existing = set(existing)
        self.created: list[dict[str, Any]] = []

    def describe_repositories(self, repositoryNames: list[str]) -> None:
        if repositoryNames[0] not in self.existing:
            raise self.exceptions.RepositoryNotFoundException(repositoryNames[0])

    def create_repository(self, **kwargs: Any) -> None:
        self.created.append(kwargs)


class FakeBuildx:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, args: Sequence[str], **_: Any) -> CommandResult:
        args = list(args)
        self.commands.append(args)
        metadata = Path(args[args.index("--metadata-file") + 1])
        metadata.write_text(json.dumps({"containerimage.digest": DIGEST_A}))
        return CommandResult(args, 0, "", "")


def test_project_images_are_built_pushed_and_pinned() -> None:
    objects = [
        workload("airflow-on-k8s/airflow:dev", "postgres:17"),
        workload("airflow-on-k8s/model-server:dev", "airflow-on-k8s/airflow:dev"),
    ]
    assert project_image_names(objects) == ["airflow-on-k8s/airflow", "airflow-on-k8s/model-server"]
    ecr, buildx = FakeEcr({"airflow-on-k8s/airflow"}), FakeBuildx()
    digests = push_images(
        repo_root=REPO,
        objects=objects,
        registry=REGISTRY,
        tag="v1.2.0",
        docker="docker",
        runner=buildx,
        ecr=ecr,
    )
    assert digests.release == "v1.2.0"
    assert digests.images == {
        "airflow-on-k8s/airflow": f"{REGISTRY}/airflow-on-k8s/airflow@{DIGEST_A}",
        "airflow-on-k8s/model-server": f"{REGISTRY}/airflow-on-k8s/model-server@{DIGEST_A}",
    }
    assert [c["repositoryName"] for c in ecr.created] == ["airflow-on-k8s/model-server"]
    assert ecr.created[0]["imageTagMutability"] == "IMMUTABLE"
    first = buildx.commands[0]
    assert first[:9] == [
        "docker",
        "buildx",
        "build",
        "--platform",
        "linux/amd64",
        "--push",
        "--target",
        "airflow",
        "--tag",
    ]
    assert first[9] == f"{REGISTRY}/airflow-on-k8s/airflow:v1.2.0"
    assert first[first.index("--file") + 1] == str(REPO / "platform/images/Dockerfile")
    assert first[-1] == str(REPO), "the repository root is the build context"
    assert buildx.commands[1][7] == "model-server"


@pytest.mark.parametrize("tag", ["", "-v1", "v1 2", "v1;rm", "x" * 129])
def test_release_tags_that_cannot_be_docker_tags(tag: str) -> None:
    with pytest.raises(PushError, match="cannot be a Docker tag"):
        check_release_tag(tag)


def test_nothing_to_push_is_an_error() -> None:
    with pytest.raises(PushError, match="nothing to push"):
        push_images(
            repo_root=REPO,
            objects=[workload("postgres:17")],
            registry=REGISTRY,
            tag="v1",
            docker="docker",
            runner=FakeBuildx(),
            ecr=FakeEcr(set()),
        )
