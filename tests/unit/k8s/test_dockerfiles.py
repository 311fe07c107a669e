"""Dockerfiles of platform/images: our own rules always, hadolint when it is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from dockerfile_checks import check_dockerfile, copy_sources
from k8s_helpers import REPO

DOCKERFILES = sorted((REPO / "platform" / "images").glob("*/Dockerfile"))


def _id(path: Path) -> str:
    return path.parent.name


def test_every_project_image_has_a_dockerfile() -> None:
    assert {p.parent.name for p in DOCKERFILES} == {"airflow", "mlflow", "model-server"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_dockerfile_follows_our_rules(dockerfile: Path) -> None:
    problems = check_dockerfile(
        dockerfile.read_text(encoding="utf-8"), str(dockerfile.relative_to(REPO))
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_dockerfile_builds_from_the_lockfile(dockerfile: Path) -> None:
    text = dockerfile.read_text(encoding="utf-8")
    assert "uv.lock" in text, "install from uv.lock"
    assert "--frozen" in text, "uv export --frozen: the lock as committed, never re-resolved"
    assert "--require-hashes" in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_copied_paths_exist_in_the_build_context(dockerfile: Path) -> None:
    missing = [
        s
        for s in copy_sources(dockerfile.read_text(encoding="utf-8"))
        if "*" not in s and not (REPO / s).exists()
    ]
    assert not missing, (
        f"{dockerfile.parent.name}: COPY of paths missing from the repository: {missing}"
    )


def test_dockerignore_keeps_what_the_images_copy() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".git" in ignored
    assert ".venv" in ignored
    assert "!ai-analysis/data/batches" in ignored


def test_the_rules_bite() -> None:
    bad = "\n".join(
        [
            "ARG BASE=python:3.11-slim",
            "FROM ${BASE} AS build",
            "FROM ubuntu:latest",
            "COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/",
            "USER root",
        ]
    )
    problems = check_dockerfile(bad, "Dockerfile")
    assert (
        "Dockerfile:2: FROM python:3.11-slim is not pinned as name:tag@sha256:<digest>" in problems
    )
    assert "Dockerfile:3: FROM ubuntu:latest uses `latest` or no tag" in problems
    assert "Dockerfile:4: COPY --from=ghcr.io/astral-sh/uv:0.5 is not pinned" in problems
    assert "Dockerfile: the final stage runs as root" in problems
    good_stage_reference = "FROM python:3.11@sha256:" + "a" * 64 + " AS b\nFROM b\nUSER 10001\n"
    assert check_dockerfile(good_stage_reference, "ok") == []
    assert check_dockerfile("FROM python:3.11@sha256:" + "a" * 64, "x") == [
        "x: the final stage sets no USER (it would run as the base image's user)"
    ]
