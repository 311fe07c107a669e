"""Image discovery, project builds (linux/amd64) and the third-party archive cache, with a fake
docker SDK client (nothing is pulled or built here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kind_helpers import DIGEST, FakeDocker

from stackctl.k8s import images


def _workload(kind: str, *images_: str, init: str | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images_)]
    }
    if init:
        pod["initContainers"] = [{"name": "init", "image": init}]
    spec: dict[str, Any] = {"template": {"spec": pod}}
    if kind == "CronJob":
        spec = {"jobTemplate": {"spec": spec}}
    return {"kind": kind, "metadata": {"name": kind.lower()}, "spec": spec}


def test_images_in_manifests_covers_every_workload_and_init_containers() -> None:
    docs = [
        _workload("Deployment", "airflow-on-k8s/mlflow:dev"),
        _workload("StatefulSet", f"postgres:17-alpine@{DIGEST}", init="busybox:1.37"),
        _workload("Job", "airflow-on-k8s/airflow:dev"),
        _workload("CronJob", "airflow-on-k8s/airflow:dev"),
        {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"image": "not/an-image"}},
    ]
    assert images.images_in_manifests(docs) == [
        "airflow-on-k8s/airflow:dev",
        "airflow-on-k8s/mlflow:dev",
        "busybox:1.37",
        f"postgres:17-alpine@{DIGEST}",
    ]
    assert images.is_project_image("airflow-on-k8s/mlflow:dev")
    assert not images.is_project_image("postgres:17")
    assert images.digest_of(f"postgres:17-alpine@{DIGEST}") == DIGEST
    assert images.digest_of("postgres:17") is None


def test_every_project_image_is_a_target_of_the_one_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(images.ImageError, match=r"platform/images/Dockerfile does not exist"):
        images.dockerfile_for(tmp_path, "airflow-on-k8s/airflow:dev")
    (tmp_path / "platform/images").mkdir(parents=True)
    (tmp_path / "platform/images/Dockerfile").write_text("FROM scratch\n")
    for name in ("airflow", "mlflow", "model-server"):
        path = images.dockerfile_for(tmp_path, f"airflow-on-k8s/{name}:dev")
        assert path == tmp_path / "platform/images/Dockerfile"
    with pytest.raises(images.ImageError, match=r"no target 'grafana'"):
        images.dockerfile_for(tmp_path, "airflow-on-k8s/grafana:dev")


def test_project_images_are_built_for_amd64_and_not_saved(tmp_path: Path) -> None:
    (tmp_path / "platform/images").mkdir(parents=True)
    (tmp_path / "platform/images/Dockerfile").write_text("FROM scratch\n")
    docker = FakeDocker()
    store = images.ImageStore(docker, tmp_path, tmp_path / "cache")
    (prepared,) = images.prepare_images(store, ["airflow-on-k8s/mlflow:dev"])
    (build,) = docker.images.built
    assert build["platform"] == "linux/amd64"
    assert build["path"] == str(tmp_path)
    assert build["dockerfile"] == "platform/images/Dockerfile"
    assert build["target"] == "mlflow"
    assert build["tag"] == "airflow-on-k8s/mlflow:dev"
    assert prepared.built
    assert prepared.digest == "sha256:" + "b1" * 32
    # no archive: project images reach the nodes through the cluster's registry, by digest
    assert prepared.archive is None
    assert docker.images.store["airflow-on-k8s/mlflow:dev"].saved_as == []


def test_third_party_images_are_pulled_once_and_cached_by_digest(tmp_path: Path) -> None:
    docker = FakeDocker()
    cache = tmp_path / "cache"
    store = images.ImageStore(docker, tmp_path, cache)
    pinned = f"postgres:17-alpine@{DIGEST}"
    archive, digest = store.third_party_archive(pinned)
    assert (archive, digest) == (cache / f"sha256-{'d4' * 32}.tar", DIGEST)
    assert docker.images.pulled == [(pinned, "linux/amd64")]
    again, _ = store.third_party_archive(pinned)
    assert again == archive
    assert len(docker.images.pulled) == 1  # second time: straight from the cache

    unpinned = "busybox:1.37"
    archive2, digest2 = store.third_party_archive(unpinned)
    assert digest2 == DIGEST  # resolved from RepoDigests
    assert json.loads((cache / "index.json").read_text())[unpinned] == DIGEST
    store.third_party_archive(unpinned)
    assert [ref for ref, _ in docker.images.pulled] == [pinned, unpinned]
    assert archive2.is_file()
    assert not list(cache.glob("*.partial"))
