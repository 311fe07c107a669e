"""Where the checkout is: the one repo-root finder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stackcontract.errors import ConfigError

CONFIG_DIR = Path("platform") / "config"
MARKERS = ("stack.env", "ports.env", "services.toml")
REPO_ROOT_ENV = "STACK_REPO_ROOT"


class RepoRootError(ConfigError):
    """No checkout was found; the message says how to point at one."""


def is_repo_root(path: Path) -> bool:
    """True for a folder holding the shared configuration (`platform/config/...`)."""
    return all((path / CONFIG_DIR / marker).is_file() for marker in MARKERS)


def find_repo_root(environ: Mapping[str, str] | None = None, start: Path | None = None) -> Path:
    """`$STACK_REPO_ROOT`, else the first parent of `start` (default: the working directory,
    then this file) holding platform/config; `RepoRootError` (with the fix) when there is none."""
    root = locate_repo_root(environ, start)
    if root is None:
        raise RepoRootError(
            f"Cannot find the repository root (a folder with {CONFIG_DIR}/ports.env). "
            f"Run from inside the checkout or set {REPO_ROOT_ENV}=/path/to/checkout."
        )
    return root


def locate_repo_root(
    environ: Mapping[str, str] | None = None, start: Path | None = None
) -> Path | None:
    """As `find_repo_root`, but None when no checkout is found (inside an image, where the
    environment carries the settings)."""
    env = os.environ if environ is None else environ
    if explicit := env.get(REPO_ROOT_ENV):
        root = Path(explicit).expanduser().resolve()
        if not is_repo_root(root):
            raise RepoRootError(
                f"{REPO_ROOT_ENV}={explicit} has no {CONFIG_DIR}/{{{','.join(MARKERS)}}}; "
                "point it at the airflow-on-k8s checkout."
            )
        return root
    origins = [start] if start is not None else [Path.cwd(), Path(__file__)]
    for origin in origins:
        resolved = origin.resolve()
        for candidate in (resolved, *resolved.parents):
            if is_repo_root(candidate):
                return candidate
    return None


def config_dir(root: Path) -> Path:
    return root / CONFIG_DIR
