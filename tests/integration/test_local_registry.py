"""Real pushes to local OCI registries: Debian's docker-registry on 127.0.0.1 (`stackctl images
push --serve`), where the digest the registry reports is recorded and a pull by that digest gives
back the very image pushed; and the kind backend's registry container, served by digest to the
network the cluster's nodes would share with it."""

from __future__ import annotations

import socket
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from stackctl.eks.digests import ImageDigests, split_pinned
from stackctl.images import references
from stackctl.images.project import image_resolver
from stackctl.images.registry import LocalRegistry, RegistryError, push
from stackctl.k8s.kind_registry import KindRegistry

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


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


def test_the_kind_registry_serves_a_pushed_image_by_digest_to_its_network(
    docker_client: Any, tmp_path: Path
) -> None:
    """The kind backend's registry for real, minus the cluster kind cannot create here: started
    from the pinned image or its Debian stand-in, the model-server image pushed to it on the host
    port, and its manifest fetched by digest from another container on the registry's network at
    the address each node's hosts.toml names (http://<registry>:5000), as containerd would."""
    image = references.project_image("model-server")
    try:
        docker_client.images.get(image)
    except Exception:
        pytest.skip(f"{image} is not built here: `stackctl images build model-server`")
    suffix = tmp_path.name[-8:].replace("_", "-").lower()
    name, network_name = f"kind-registry-test-{suffix}", f"kind-test-{suffix}"
    resolver = image_resolver(REPO, warn=lambda _line: None)
    registry = KindRegistry(
        docker_client,
        resolver.resolve("registry").reference,
        name=name,
        host_port=free_port(),
        volume=f"{name}-data",
    )
    network = docker_client.networks.create(network_name)
    pushed_tag = f"{registry.address}/airflow-on-k8s/model-server:kind-test"
    try:
        registry.ensure()
        registry.connect(network_name)
        digests = push(docker_client, [image], registry=registry.address, tag="kind-test")
        repository, digest = split_pinned(digests.images["airflow-on-k8s/model-server"])
        assert repository == f"{registry.address}/airflow-on-k8s/model-server"
        node_side = f"http://{name}:5000/v2/airflow-on-k8s/model-server/manifests/{digest}"
        fetch = (
            "import urllib.request as u, sys; "
            f"r = u.urlopen(u.Request({node_side!r}, method='HEAD', headers={{'Accept': "
            "'application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json'}), timeout=10); "
            "print(r.status, r.headers['Docker-Content-Digest'])"
        )
        output = docker_client.containers.run(
            image, ["python", "-c", fetch], entrypoint=[], network=network_name, remove=True
        )
        assert output.decode().split() == ["200", digest]
    finally:
        registry.remove(volume=True)
        network.remove()
        with suppress(Exception):
            docker_client.images.remove(pushed_tag)
