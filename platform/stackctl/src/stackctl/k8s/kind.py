"""kind cluster lifecycle through the kind CLI: config rendering, unique names, fingerprints,
create/delete/load/export-logs commands, and teardown that happens whatever happens.

Why the CLI and not pytest-kind-ng: that plugin downloads its own kind binary from GitHub at run
time (no such download here or in air-gapped CI), pins an old kind/kubectl, loads images with
`kind load docker-image` (which fails for multi-arch images with the containerd image store) and
reuses a cluster by name only. The CLI gives us the pinned version, `kind load image-archive`, and
fingerprint-checked reuse.

The cluster config is generated at run time (single source of truth): the committed
platform/kind/cluster.yaml holds the static part (nodes, kubeadm patches) and no port mappings;
`render_cluster_config` adds the pinned node image and one `extraPortMappings` entry per line of
the kind overlay's nodeports.env (KEY=NodePort, the Kubernetes engineer's contract), mapped to
KEY's host port in platform/config/ports.env (or its STACK_<KEY> override), after checking the
rendered Services really use those NodePorts.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from stackctl.k8s.commands import Runner

CLUSTER_PREFIX = "aok8s"
CLUSTER_CONFIG = Path("platform/kind/cluster.yaml")
NODE_PORTS_ENV = Path("platform/k8s/overlays/kind/nodeports.env")
FINGERPRINT_CONFIGMAP = "aok8s-fingerprint"
FINGERPRINT_NAMESPACE = "kube-system"


class KindConfigError(ValueError):
    """The kind config cannot be rendered from the manifests and ports.env."""


@dataclass(frozen=True)
class PortMapping:
    service: str
    port_key: str  # the ports.env key, e.g. MLFLOW_PORT
    node_port: int
    host_port: int


def new_cluster_name(prefix: str = CLUSTER_PREFIX) -> str:
    """A unique cluster name per run, e.g. `aok8s-3f9c2a1b` (kind names must be DNS labels)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kube_context(cluster: str) -> str:
    return f"kind-{cluster}"


def node_port_mappings(
    node_ports: Mapping[str, int],
    manifests: Sequence[Mapping[str, Any]],
    host_ports: Mapping[str, int],
) -> list[PortMapping]:
    """One mapping per entry of the overlay's nodeports.env (KEY -> NodePort), to KEY's host port
    in ports.env (or its STACK_<KEY> override), cross-checked against the rendered Services: every
    listed NodePort must exist, and every fixed NodePort of the overlay must be listed."""
    rendered: dict[int, str] = {}
    for doc in manifests:
        if doc.get("kind") != "Service" or doc.get("spec", {}).get("type") != "NodePort":
            continue
        for port in doc["spec"].get("ports") or []:
            if port.get("nodePort") is not None:  # unlisted ports get a random, unmapped NodePort
                rendered[int(port["nodePort"])] = str(doc.get("metadata", {}).get("name"))
    mappings: list[PortMapping] = []
    for key, node_port in node_ports.items():
        if key not in host_ports:
            raise KindConfigError(
                f"{NODE_PORTS_ENV} lists {key}, which is not a key of platform/config/ports.env."
            )
        if node_port not in rendered:
            raise KindConfigError(
                f"{NODE_PORTS_ENV} maps {key} to NodePort {node_port}, but no rendered Service of "
                "the kind overlay has that nodePort."
            )
        mappings.append(PortMapping(rendered[node_port], key, node_port, host_ports[key]))
    unlisted = sorted(set(rendered) - set(node_ports.values()))
    if unlisted:
        raise KindConfigError(
            f"NodePorts {unlisted} of the kind overlay are missing from {NODE_PORTS_ENV}: the host "
            "could not reach them."
        )
    hosts = [m.host_port for m in mappings]
    if len(hosts) != len(set(hosts)):
        raise KindConfigError(f"Two NodePorts map to the same host port: {sorted(hosts)}.")
    return sorted(mappings, key=lambda m: m.host_port)


def render_cluster_config(
    base_config: Mapping[str, Any], node_image: str, mappings: Sequence[PortMapping]
) -> dict[str, Any]:
    """The kind Cluster config: the committed base + pinned image + port mappings on the
    control-plane node (the one kind publishes ports from)."""
    if base_config.get("apiVersion") != "kind.x-k8s.io/v1alpha4" or base_config.get("kind") != (
        "Cluster"
    ):
        raise KindConfigError(
            "platform/kind/cluster.yaml must be a kind.x-k8s.io/v1alpha4 Cluster."
        )
    config = json.loads(json.dumps(base_config))  # deep copy of plain data
    nodes = config.get("nodes") or [{"role": "control-plane"}]
    for node in nodes:
        if "extraPortMappings" in node:
            raise KindConfigError(
                "platform/kind/cluster.yaml must not list extraPortMappings: they are generated "
                "from ports.env and the overlay's NodePorts."
            )
        node["image"] = node_image
    control_plane = next((n for n in nodes if n.get("role") == "control-plane"), None)
    if control_plane is None:
        raise KindConfigError("platform/kind/cluster.yaml needs a control-plane node.")
    control_plane["extraPortMappings"] = [
        {
            "containerPort": m.node_port,
            "hostPort": m.host_port,
            "listenAddress": "127.0.0.1",
            "protocol": "TCP",
        }
        for m in mappings
    ]
    config["nodes"] = nodes
    return dict(config)


def fingerprint(
    kind_config: str, manifests: str, image_digests: Mapping[str, str], kind_version: str = ""
) -> str:
    """sha256 over everything that makes a cluster what it is: the rendered kind config, the
    rendered manifests and the image digests (order-independent for the images)."""
    payload = json.dumps(
        {
            "kind_version": kind_version,
            "kind_config": kind_config,
            "manifests": manifests,
            "images": dict(sorted(image_digests.items())),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def fingerprint_configmap(value: str, cluster: str) -> dict[str, Any]:
    """The ConfigMap that records a cluster's fingerprint (read back to decide on reuse)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": FINGERPRINT_CONFIGMAP,
            "namespace": FINGERPRINT_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "stackctl"},
        },
        "data": {"fingerprint": value, "cluster": cluster},
    }


@dataclass(frozen=True)
class KindCli:
    """kind commands (argv lists), built here and run through a Runner."""

    kind: str
    kubectl: str
    runner: Runner

    def create_args(
        self, name: str, config: Path, image: str, kubeconfig: Path, wait_seconds: int
    ) -> list[str]:
        return [
            self.kind, "create", "cluster", "--name", name, "--config", str(config),
            "--image", image, "--kubeconfig", str(kubeconfig), "--wait", f"{wait_seconds}s",
        ]  # fmt: skip

    def delete_args(self, name: str, kubeconfig: Path | None = None) -> list[str]:
        args = [self.kind, "delete", "cluster", "--name", name]
        return [*args, "--kubeconfig", str(kubeconfig)] if kubeconfig else args

    def load_archive_args(self, name: str, archive: Path) -> list[str]:
        return [self.kind, "load", "image-archive", str(archive), "--name", name]

    def export_logs_args(self, name: str, dest: Path) -> list[str]:
        return [self.kind, "export", "logs", str(dest), "--name", name]

    def nodes(self, name: str, timeout: float = 30) -> list[str]:
        """The node containers of cluster `name`."""
        out = self.runner([self.kind, "get", "nodes", "--name", name], timeout=timeout).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def clusters(self, timeout: float = 30) -> list[str]:
        out = self.runner([self.kind, "get", "clusters"], timeout=timeout).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def create(self, name: str, config: Path, image: str, kubeconfig: Path, timeout: float) -> None:
        wait = max(30, int(timeout) - 30)  # leave kind time to report before our deadline
        self.runner(self.create_args(name, config, image, kubeconfig, wait), timeout=timeout)

    def delete(self, name: str, kubeconfig: Path | None, timeout: float) -> None:
        self.runner(self.delete_args(name, kubeconfig), timeout=timeout)

    def load_archive(self, name: str, archive: Path, timeout: float) -> None:
        self.runner(self.load_archive_args(name, archive), timeout=timeout)

    def export_logs(self, name: str, dest: Path, timeout: float) -> None:
        self.runner(self.export_logs_args(name, dest), timeout=timeout)

    def read_fingerprint(self, name: str, kubeconfig: Path, timeout: float = 30) -> str | None:
        """The fingerprint stored on a cluster, or None if it has none or cannot be read."""
        result = self.runner(
            [
                self.kubectl, "--kubeconfig", str(kubeconfig), "--context", kube_context(name),
                "get", "configmap", FINGERPRINT_CONFIGMAP, "-n", FINGERPRINT_NAMESPACE,
                "-o", "jsonpath={.data.fingerprint}",
            ],
            timeout=timeout,
            check=False,
        )  # fmt: skip
        value = result.stdout.strip()
        return value if result.returncode == 0 and value else None

    def write_fingerprint(self, name: str, kubeconfig: Path, value: str, timeout: float) -> None:
        self.runner(
            [
                self.kubectl, "--kubeconfig", str(kubeconfig), "--context", kube_context(name),
                "apply", "--server-side", "--field-manager=stackctl", "-f", "-",
            ],
            timeout=timeout,
            input_text=yaml.safe_dump(fingerprint_configmap(value, name)),
        )  # fmt: skip

    def find_reusable(
        self, wanted: str, kubeconfig_for: Callable[[str], Path], prefix: str = CLUSTER_PREFIX
    ) -> str | None:
        """A running `<prefix>-*` cluster whose stored fingerprint equals `wanted`, if any."""
        for name in self.clusters():
            if not name.startswith(f"{prefix}-") or not kubeconfig_for(name).is_file():
                continue
            if self.read_fingerprint(name, kubeconfig_for(name)) == wanted:
                return name
        return None


class TerminationRequestedError(KeyboardInterrupt):
    """SIGTERM arrived; raised so the `finally` that deletes the cluster runs."""


@contextmanager
def teardown_on_signals() -> Iterator[None]:
    """Turn SIGTERM into an exception (SIGINT already is one) for the duration of the block, so
    `try/finally` cleanup runs when CI cancels a job; the previous handlers are restored after."""

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise TerminationRequestedError(f"received signal {signal.Signals(signum).name}")

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGTERM, _raise)
        signal.signal(signal.SIGINT, _raise)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
