"""The kind cluster's local registry, the way kind documents it: what each node is told, the
KEP-1755 ConfigMap, the manifests' images pinned to the pushed digests, and the registry
container's life (created once, port clashes and foreign containers explained, purge)."""

from __future__ import annotations

import io
import tarfile
import tomllib
from typing import Any

import httpx
import pytest
import yaml
from kind_helpers import FakeDocker, registry_container

from stackctl.images.registry import RegistryError
from stackctl.k8s import kind_registry

ANSWERING = lambda _url, timeout: httpx.Response(200)  # noqa: E731
PINNED = {"airflow-on-k8s/mlflow:dev": "localhost:5001/airflow-on-k8s/mlflow@sha256:" + "e5" * 32}


def test_hosts_toml_sends_the_host_address_to_the_registry_on_the_kind_network() -> None:
    assert tomllib.loads(kind_registry.hosts_toml()) == {"host": {"http://kind-registry:5000": {}}}


def test_the_hosting_configmap_follows_kep_1755() -> None:
    doc = kind_registry.local_registry_hosting("localhost:5001")
    assert (doc["metadata"]["namespace"], doc["metadata"]["name"]) == (
        "kube-public",
        "local-registry-hosting",
    )
    hosting = yaml.safe_load(doc["data"]["localRegistryHosting.v1"])
    assert hosting == {"host": "localhost:5001", "help": kind_registry.DOCS}


def _pod(image: str, init: str = "busybox") -> dict[str, Any]:
    return {"initContainers": [{"image": init}], "containers": [{"image": image}]}


def test_pin_images_replaces_built_images_in_every_workload_kind_and_copies() -> None:
    docs = [
        {"kind": "Deployment", "spec": {"template": {"spec": _pod("airflow-on-k8s/mlflow:dev")}}},
        {
            "kind": "CronJob",
            "spec": {"jobTemplate": {"spec": {"template": {"spec": _pod("postgres:17")}}}},
        },
        {"kind": "Pod", "spec": _pod("x", init="airflow-on-k8s/mlflow:dev")},
        {"kind": "ConfigMap", "data": {"image": "airflow-on-k8s/mlflow:dev"}},
    ]
    pinned = kind_registry.pin_images(docs, PINNED)
    digest_ref = PINNED["airflow-on-k8s/mlflow:dev"]
    assert pinned[0]["spec"]["template"]["spec"]["containers"][0]["image"] == digest_ref
    cron = pinned[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["containers"][0]["image"] == "postgres:17"  # third-party: left as pinned upstream
    assert pinned[2]["spec"]["initContainers"][0]["image"] == digest_ref
    assert pinned[3]["data"]["image"] == "airflow-on-k8s/mlflow:dev"  # not a container
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "airflow-on-k8s/mlflow:dev"
    )


def test_the_host_port_override_must_be_a_port() -> None:
    assert kind_registry.host_port_from_env({}) == 5001
    assert kind_registry.host_port_from_env({"STACK_KIND_REGISTRY_PORT": "5555"}) == 5555
    with pytest.raises(RegistryError, match="STACK_KIND_REGISTRY_PORT='x' is not a port"):
        kind_registry.host_port_from_env({"STACK_KIND_REGISTRY_PORT": "x"})


def test_ensure_starts_the_registry_once_on_loopback_with_a_kept_volume() -> None:
    docker = FakeDocker()
    registry = kind_registry.KindRegistry(docker, "registry:3.0.0", get=ANSWERING)
    registry.ensure()
    registry.ensure()  # running already: left alone
    (run,) = docker.containers.runs
    assert run["image"] == "registry:3.0.0"
    assert run["restart_policy"] == {"Name": "always"}
    assert run["ports"] == {"5000/tcp": ("127.0.0.1", 5001)}
    assert run["volumes"] == {"kind-registry-data": {"bind": "/var/lib/registry", "mode": "rw"}}
    docker.containers.store["kind-registry"].status = "exited"
    registry.ensure()
    assert docker.containers.store["kind-registry"].status == "running"


def test_a_taken_port_says_how_to_choose_another() -> None:
    docker = FakeDocker()
    docker.containers.refuse_with = "Bind for 127.0.0.1:5001 failed: port is already allocated"
    registry = kind_registry.KindRegistry(docker, "registry:3.0.0", get=ANSWERING)
    with pytest.raises(
        RegistryError, match=r"127\.0\.0\.1:5001 .* is taken.*STACK_KIND_REGISTRY_PORT"
    ):
        registry.ensure()


def test_a_container_of_that_name_on_another_port_is_not_used() -> None:
    docker = FakeDocker()
    docker.containers.store["kind-registry"] = registry_container("kind-registry", 5999)
    registry = kind_registry.KindRegistry(docker, "registry:3.0.0", get=ANSWERING)
    with pytest.raises(RegistryError, match=r"publishes 5000 on \['5999'\], not 5001.*docker rm"):
        registry.ensure()


def test_a_registry_that_never_answers_reports_its_logs() -> None:
    def refusing(_url: str, timeout: float) -> httpx.Response:
        raise httpx.ConnectError("refused")

    registry = kind_registry.KindRegistry(FakeDocker(), "registry:3.0.0", get=refusing)
    with pytest.raises(
        RegistryError, match=r"(?s)did not answer .*/v2/ within 0s.*registry log line"
    ):
        registry.ensure(timeout=0)


def test_connect_joins_the_kind_network_once() -> None:
    docker = FakeDocker()
    registry = kind_registry.KindRegistry(docker, "registry:3.0.0", get=ANSWERING)
    with pytest.raises(RegistryError, match="not running"):
        registry.connect()
    registry.ensure()
    registry.connect()
    registry.connect()
    assert docker.networks.connects == [("kind", "kind-registry")]


def test_configure_node_writes_hosts_toml_into_containerds_directory() -> None:
    docker = FakeDocker()
    kind_registry.KindRegistry(docker, host_port=5002).configure_node("c-control-plane")
    node = docker.containers.store["c-control-plane"]
    assert node.execs == [["mkdir", "-p", "/etc/containerd/certs.d/localhost:5002"]]
    with tarfile.open(fileobj=io.BytesIO(node.archives[node.execs[0][-1]])) as archive:
        member = archive.extractfile("hosts.toml")
        assert member is not None
        assert member.read().decode() == kind_registry.hosts_toml()


def test_ensure_without_an_image_is_refused() -> None:
    with pytest.raises(RegistryError, match="needs the registry image"):
        kind_registry.KindRegistry(FakeDocker(), get=ANSWERING).ensure()
