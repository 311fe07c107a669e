"""Build the project's images (the targets of platform/images/Dockerfile) and the stand-ins with
the docker SDK, the classic builder, and a build context of exactly what .dockerignore lets
through, plus the machine's CA bundle as platform/images/build-ca/extra.pem for the build stages.

Every build is recorded (seconds, size, base) in reports/images/builds.json and its full output
kept in reports/images/<target>.log.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

BUILD_CA_IN_CONTEXT = "platform/images/build-ca/extra.pem"
BUILD_CA_VARIABLE = "STACK_BUILD_CA_FILE"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PLATFORM = "linux/amd64"
Status = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image did not build; the message names it, the failing step and the log file."""


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    target: str
    dockerfile: str
    image_id: str
    seconds: float
    size_bytes: int
    base: str


def docker_client() -> Any:
    """A docker SDK client for the engine DOCKER_HOST (or the default socket) names."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise ImageBuildError(
            "The docker SDK is not installed. Fix: `uv sync --group compose` (or run through "
            "`nox -s integration-compose`, which installs it)."
        ) from None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        raise ImageBuildError(
            f"No Docker engine answers ({error}). Fix: `platform/docker-engine.sh start` (root on "
            "Debian/Ubuntu), or start your Docker engine, or point DOCKER_HOST at one."
        ) from None
    return client


def extra_ca_file() -> Path | None:
    """The CA bundle the build stages trust besides their own: $STACK_BUILD_CA_FILE, else this
    machine's bundle (it holds a TLS-intercepting proxy's CA where there is one)."""
    configured = os.environ.get(BUILD_CA_VARIABLE)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ImageBuildError(f"{BUILD_CA_VARIABLE}={configured} is not a file.")
        return path
    return SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None


def dockerignore_patterns(repo_root: Path) -> list[str]:
    path = repo_root / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@contextmanager
def build_context(repo_root: Path, *, extra_ca: Path | None) -> Iterator[IO[bytes]]:
    """The repository as .dockerignore filters it, plus the extra CA, as a tar stream."""
    from docker.utils import tar

    with tempfile.TemporaryFile() as handle:
        tar(str(repo_root), exclude=dockerignore_patterns(repo_root), fileobj=handle)
        if extra_ca is not None:
            handle.seek(0)
            with tarfile.open(fileobj=handle, mode="a") as archive:
                data = extra_ca.read_bytes()
                info = tarfile.TarInfo(BUILD_CA_IN_CONTEXT)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                archive.addfile(info, io.BytesIO(data))
        handle.seek(0)
        yield handle


def build(
    client: Any,
    repo_root: Path,
    *,
    dockerfile: Path,
    target: str,
    reference: str,
    buildargs: Mapping[str, str],
    log_dir: Path,
    status: Status = lambda _line: None,
) -> BuiltImage:
    """Build one target; raise ImageBuildError with the failing step and the log's last lines."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{reference.rsplit('/', 1)[-1].replace(':', '_')}.log"
    started = time.monotonic()
    image_id: str | None = None
    step = ""
    tail: list[str] = []
    with build_context(repo_root, extra_ca=extra_ca_file()) as context, log_path.open("w") as log:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile.as_posix(),
            target=target,
            tag=reference,
            buildargs=dict(buildargs),
            platform=PLATFORM,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            text = str(chunk.get("stream") or chunk.get("status") or "")
            if text:
                log.write(text)
                tail = [*tail, *text.splitlines()][-30:]
                if text.startswith("Step "):
                    step = text.strip()
                    status(step)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            if "error" in chunk:
                log.write(str(chunk["error"]) + "\n")
                raise ImageBuildError(
                    f"Building {reference} (target {target} of {dockerfile}) failed at "
                    f"{step or 'the start'}: {chunk['error']}\nLast lines (full log {log_path}):\n"
                    + "\n".join(tail[-15:])
                )
    if image_id is None:
        raise ImageBuildError(
            f"Building {reference}: the engine reported no image id ({log_path})."
        )
    image = client.images.get(image_id)
    return BuiltImage(
        reference=reference,
        target=target,
        dockerfile=dockerfile.as_posix(),
        image_id=image_id,
        seconds=round(time.monotonic() - started, 1),
        size_bytes=int(image.attrs.get("Size") or 0),
        base=str(buildargs.get("PYTHON_IMAGE") or buildargs.get("DEBIAN_IMAGE") or ""),
    )


def record(builds: list[BuiltImage], path: Path) -> None:
    """Merge `builds` into the build record (one entry per reference, newest wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for built in builds:
        existing[built.reference] = asdict(built)
    path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
