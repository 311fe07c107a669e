"""A real push to a local OCI registry (Debian's docker-registry on 127.0.0.1): the digest the
registry reports is recorded, and pulling by that digest gives back the very image pushed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from stackctl.eks.digests import ImageDigests, split_pinned
from stackctl.images import references
from stackctl.images.registry import LocalRegistry, RegistryError, push

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_push_records_the_digest_and_a_pull_by_digest_round_trips(
    docker_client: Any, tmp_path: Path
) -> None:
    image = references.project_image("model-server")
    try:
        original = docker_client.images.get(image)
    except Exception:
        pytest.skip(f"{image} is not built here: `stackctl images build model-server`")
    registry = LocalRegistry(tmp_path / "registry", free_port())
    try:
        registry.start()
    except RegistryError as error:
        pytest.skip(str(error))
    try:
        digests = push(docker_client, [image], registry=registry.address, tag="smoke")
        digests.dump(tmp_path / "digests.json")
        recorded = ImageDigests.load(tmp_path / "digests.json")
        pinned = recorded.images["airflow-on-k8s/model-server"]
        repository, digest = split_pinned(pinned)
        assert repository == f"{registry.address}/airflow-on-k8s/model-server"
        # forget the pushed tag locally, then fetch the image back by its digest alone
        docker_client.images.remove(f"{repository}:smoke")
        pulled = docker_client.images.pull(f"{repository}@{digest}")
        assert pulled.id == original.id, "the registry returned other bytes than were pushed"
        assert f"{repository}@{digest}" in pulled.attrs["RepoDigests"]
    finally:
        registry.stop()
        # untag what the test added (never the image itself: the stack runs it)
        for reference in docker_client.images.get(image).attrs.get("RepoDigests") or []:
            if reference.startswith(registry.address):
                docker_client.images.remove(reference)
