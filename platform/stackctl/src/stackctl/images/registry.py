"""A local OCI registry on 127.0.0.1 (Debian's `docker-registry`, the CNCF distribution
registry), and pushing the project images to a registry with the docker SDK, digests recorded in
the same image-digests file the EKS release uses (`stackctl.eks.digests.ImageDigests`).

An engine talks plain HTTP to a registry on a loopback address without any daemon setting, so a
push needs no TLS and no credentials here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from stackctl.eks.digests import ImageDigests
from stackctl.images.references import PROJECT_REPOSITORY

INSTALL_FIX = "`apt-get install docker-registry` (Debian/Ubuntu), or run any OCI registry"
START_SECONDS = 30.0


class RegistryError(RuntimeError):
    """The registry cannot start, or a push failed; the message says which and the fix."""


def answers_v2(address: str, *, get: Callable[..., httpx.Response] = httpx.get) -> bool:
    """Whether the registry at `address` (`host:port`) answers the distribution API's /v2/."""
    try:
        return get(f"http://{address}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def is_loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in {"127.0.0.1", "localhost", "[::1]"}


def local_registry(address: str, root: Path) -> LocalRegistry:
    """The registry to serve at `address` (`127.0.0.1:PORT`), or RegistryError saying why not."""
    port = address.rpartition(":")[2]
    if not is_loopback(address) or "/" in address or not port.isdigit():
        raise RegistryError(
            f"A local registry is served at 127.0.0.1:PORT or localhost:PORT, not {address!r}."
        )
    return LocalRegistry(root, int(port))


@dataclass
class LocalRegistry:
    """`docker-registry serve` with its storage, configuration and log under `root`."""

    root: Path
    port: int = 5001
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.address},
        }

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RegistryError(f"`docker-registry` is not on PATH. Fix: {INSTALL_FIX}.")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = (self.root / "registry.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RegistryError(
                    f"docker-registry exited with {self.process.returncode} at start (is port "
                    f"{self.port} taken?); see {self.root / 'registry.log'}."
                )
            if answers_v2(self.address):
                return
            time.sleep(0.3)
        self.stop()
        raise RegistryError(f"docker-registry did not answer /v2/ within {START_SECONDS:.0f}s.")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @contextmanager
    def running(self) -> Iterator[LocalRegistry]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def push(
    client: Any,
    references: Sequence[str],
    *,
    registry: str,
    tag: str,
    status: Callable[[str], None] = lambda _line: None,
) -> ImageDigests:
    """Tag each local image `airflow-on-k8s/<name>:...` as `<registry>/airflow-on-k8s/<name>:<tag>`,
    push it, and return the digest the registry reports for each."""
    pushed: dict[str, str] = {}
    for reference in references:
        name = reference.split("@", 1)[0].rsplit(":", 1)[0]
        if not name.startswith(PROJECT_REPOSITORY):
            raise RegistryError(f"{reference} is not a project image ({PROJECT_REPOSITORY}...).")
        repository = f"{registry.rstrip('/')}/{name}"
        client.images.get(reference).tag(repository, tag)
        digest = None
        for chunk in client.images.push(repository, tag, stream=True, decode=True):
            if "error" in chunk:
                raise RegistryError(f"Pushing {repository}:{tag} failed: {chunk['error']}")
            if chunk.get("status"):
                status(f"{name}: {chunk['status']}")
            digest = (chunk.get("aux") or {}).get("Digest") or digest
        if digest is None:
            raise RegistryError(f"Pushing {repository}:{tag}: the registry reported no digest.")
        pushed[name] = f"{repository}@{digest}"
    return ImageDigests(release=tag, images=pushed)
