"""The kind cluster's local registry, set up the way kind documents it
(https://kind.sigs.k8s.io/docs/user/local-registry/):

1. a registry container `kind-registry`, published on 127.0.0.1:5001 (restart always);
2. (the containerd `config_path` patch kind needed before v0.27: its node images have it now);
3. on every node, /etc/containerd/certs.d/localhost:5001/hosts.toml sending `localhost:5001` to
   `http://kind-registry:5000`, because localhost inside a node is the node itself;
4. the registry joined to the `kind` network, so the nodes resolve `kind-registry`;
5. the `local-registry-hosting` ConfigMap in kube-public (KEP-1755), so tools find it.

The project images are pushed to it and the manifests name them `localhost:5001/<name>@<digest>`:
a node pulls exactly the bytes built, by digest (`kind load` of a digest reference may pull
again: kind issues #2394, #4028). Where the pinned registry image cannot be pulled, the
stand-in from Debian's docker-registry runs instead (stackctl.images.standins).
"""

from __future__ import annotations

import copy
import io
import os
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from stackctl.images.registry import RegistryError, answers_v2
from stackctl.k8s.images import workload_containers

REGISTRY_NAME = "kind-registry"
CONTAINER_PORT = 5000
DEFAULT_HOST_PORT = 5001
PORT_VARIABLE = "STACK_KIND_REGISTRY_PORT"
KIND_NETWORK = "kind"
DATA_VOLUME = "kind-registry-data"
HOSTS_DIR = "/etc/containerd/certs.d"
HOSTING_NAMESPACE = "kube-public"
HOSTING_CONFIGMAP = "local-registry-hosting"
DOCS = "https://kind.sigs.k8s.io/docs/user/local-registry/"


def host_port_from_env(environ: Mapping[str, str] = os.environ) -> int:
    value = environ.get(PORT_VARIABLE, str(DEFAULT_HOST_PORT))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise RegistryError(f"{PORT_VARIABLE}={value!r} is not a port: set it to 1-65535.")
    return int(value)


def hosts_toml(name: str = REGISTRY_NAME, port: int = CONTAINER_PORT) -> str:
    """containerd's host configuration: pull `localhost:<host port>/...` from the registry's
    name on the kind network, over plain HTTP."""
    return f'[host."http://{name}:{port}"]\n'


def local_registry_hosting(address: str) -> dict[str, Any]:
    """The KEP-1755 ConfigMap that tells tools where the cluster's local registry is."""
    hosting = {"host": address, "help": DOCS}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": HOSTING_CONFIGMAP,
            "namespace": HOSTING_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "stackctl"},
        },
        "data": {"localRegistryHosting.v1": yaml.safe_dump(hosting, sort_keys=False)},
    }


def pin_images(
    docs: Sequence[Mapping[str, Any]], pinned: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The manifests with every container image in `pinned` (built reference -> pushed
    `registry/name@digest`) replaced; other images and the input are left as they are."""
    out = [copy.deepcopy(dict(doc)) for doc in docs]
    for doc in out:
        for container in workload_containers(doc):
            if container.get("image") in pinned:
                container["image"] = pinned[container["image"]]
    return out


def _single_file_tar(name: str, text: str) -> bytes:
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class KindRegistry:
    """The `kind-registry` container, driven through a docker SDK client."""

    client: Any
    image: str = ""  # what to run; only `ensure` needs it
    name: str = REGISTRY_NAME
    host_port: int = DEFAULT_HOST_PORT
    volume: str = DATA_VOLUME  # the pushed images, kept across clusters until `down --purge`
    get: Callable[..., httpx.Response] = httpx.get

    @property
    def address(self) -> str:
        """What images are pushed to from the host and named as in the manifests."""
        return f"localhost:{self.host_port}"

    def _container(self) -> Any | None:
        from docker.errors import NotFound

        try:
            return self.client.containers.get(self.name)
        except NotFound:
            return None

    def ensure(self, timeout: float = 60) -> None:
        """Start the registry unless it runs, and wait until it answers /v2/ on the host port."""
        from docker.errors import APIError

        container = self._container()
        try:
            if container is None:
                if not self.image:
                    raise RegistryError("KindRegistry.ensure needs the registry image to run.")
                container = self.client.containers.run(
                    self.image,
                    name=self.name,
                    detach=True,
                    restart_policy={"Name": "always"},
                    ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", self.host_port)},
                    volumes={self.volume: {"bind": "/var/lib/registry", "mode": "rw"}},
                    network="bridge",
                    labels={"app.kubernetes.io/managed-by": "stackctl"},
                )
            elif container.status != "running":
                container.start()
        except APIError as error:
            explanation = str(getattr(error, "explanation", None) or error)
            if "allocated" in explanation or "address already in use" in explanation:
                raise RegistryError(
                    f"Host port 127.0.0.1:{self.host_port} for the kind registry is taken. Fix: "
                    f"free it, or set {PORT_VARIABLE} to a free port."
                ) from error
            raise RegistryError(f"Starting the kind registry failed: {explanation}") from error
        self._check_published_port(container)
        self._wait(container, timeout)

    def _check_published_port(self, container: Any) -> None:
        container.reload()
        bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
        ports = {b.get("HostPort") for b in bindings.get(f"{CONTAINER_PORT}/tcp") or []}
        if str(self.host_port) not in ports:
            raise RegistryError(
                f"A container named {self.name} exists but publishes {CONTAINER_PORT} on "
                f"{sorted(p for p in ports if p) or 'no host port'}, not {self.host_port}. Fix: "
                f"`docker rm -f {self.name}` (stackctl starts its own), or set {PORT_VARIABLE}."
            )

    def _wait(self, container: Any, timeout: float) -> None:
        loopback = f"127.0.0.1:{self.host_port}"
        deadline = time.monotonic() + timeout
        while not answers_v2(loopback, get=self.get):  # asks at least once
            if time.monotonic() >= deadline:
                container.reload()
                logs = container.logs(tail=20).decode(errors="replace")
                raise RegistryError(
                    f"The kind registry ({self.name}, {container.status}) did not answer "
                    f"http://{loopback}/v2/ within {timeout:.0f}s. Its last log lines:\n{logs}"
                )
            time.sleep(0.3)

    def connect(self, network: str = KIND_NETWORK) -> None:
        """Join the cluster's network (once), so nodes resolve the registry by name."""
        container = self._container()
        if container is None:
            raise RegistryError(f"The kind registry {self.name} is not running: run ensure first.")
        container.reload()
        if network not in (container.attrs.get("NetworkSettings") or {}).get("Networks", {}):
            self.client.networks.get(network).connect(container)

    def configure_node(self, node: str) -> None:
        """Write hosts.toml into a node's containerd configuration directory (no restart needed:
        containerd reads the directory per pull)."""
        directory = f"{HOSTS_DIR}/{self.address}"
        container = self.client.containers.get(node)
        result = container.exec_run(["mkdir", "-p", directory])
        if result.exit_code != 0:
            raise RegistryError(
                f"Creating {directory} on node {node} failed: {result.output.decode().strip()}"
            )
        if not container.put_archive(directory, _single_file_tar("hosts.toml", hosts_toml())):
            raise RegistryError(f"Writing {directory}/hosts.toml on node {node} failed.")

    def remove(self, *, volume: bool) -> None:
        """Remove the registry container, and with `volume` the images it holds."""
        container = self._container()
        if container is not None:
            container.remove(force=True)
        if volume:
            from docker.errors import NotFound

            with suppress(NotFound):
                self.client.volumes.get(self.volume).remove(force=True)
