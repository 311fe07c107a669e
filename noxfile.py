"""Nox sessions: lint and unit by default; the slow tiers (integration, load, kind, eks) are opt-in."""

from __future__ import annotations

import shutil

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "unit"]

PYTHON = "3.11"


def install(session: nox.Session, *, groups: tuple[str, ...], project: bool = True) -> None:
    """Install the locked dependencies of ``groups`` (and the workspace packages) into the session."""
    args = ["uv", "sync", "--locked", "--no-default-groups"]
    args += [f"--group={group}" for group in groups]
    if not project:
        args.append("--no-install-project")
        args.append("--no-install-workspace")
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


def require_tool(session: nox.Session, tool: str, *, fix: str) -> str:
    """Return the path of an external ``tool`` or stop the session with the exact fix."""
    path = shutil.which(tool)
    if path is None:
        session.error(f"`{tool}` is not on PATH. Fix: {fix}")
    return path


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint + format check, AIR rules on DAGs) and mypy --strict on ml/ and platform/."""
    install(session, groups=("lint", "airflow"))
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("ruff", "format", "--check", *(session.posargs or ["."]))
    session.run("mypy")


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tier: ml code/data/model tests, DAG integrity, manifests, dashboards, workflows."""
    install(session, groups=("test", "airflow", "k8s", "load"))
    session.run("pytest", "tests/unit", *session.posargs)
