"""Dockerfiles of platform/images: our own rules always, hadolint when it is installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dockerfile_checks import check_dockerfile, copy_sources, stage_instructions, stages
from k8s_helpers import REPO

from stackctl.images import references, standins

IMAGES = REPO / "platform" / "images"
PROJECT = IMAGES / "Dockerfile"
STAND_INS = IMAGES / "stand-ins.Dockerfile"


def test_one_dockerfile_has_a_target_per_project_image() -> None:
    named = {stage.name for stage in stages(PROJECT.read_text(encoding="utf-8"))}
    assert set(references.PROJECT_TARGETS) <= named
    assert sorted(p.name for p in IMAGES.glob("**/*Dockerfile")) == [
        "Dockerfile",
        "stand-ins.Dockerfile",
    ]


def test_project_dockerfile_follows_our_rules() -> None:
    text = PROJECT.read_text(encoding="utf-8")
    assert check_dockerfile(text, "Dockerfile", targets=references.PROJECT_TARGETS) == []


def test_stand_ins_follow_our_rules_and_cover_the_recipes() -> None:
    text = STAND_INS.read_text(encoding="utf-8")
    targets = tuple(standins.STAND_IN_TARGETS.values())
    problems = check_dockerfile(
        text, "stand-ins", targets=targets, local_bases=(standins.DEBIAN_STAND_IN,)
    )
    assert problems == []


def test_the_base_is_the_one_pinned_in_the_images_component() -> None:
    (base,) = [s.image for s in stages(PROJECT.read_text(encoding="utf-8")) if s.name == "builder"]
    assert base == references.load_pinned(REPO)["python"].reference


def test_every_image_of_the_manifests_is_pinned_in_one_place(
    rendered: dict[str, list[dict[str, object]]],
) -> None:
    component = yaml.safe_load((IMAGES / "kustomization.yaml").read_text(encoding="utf-8"))
    assert component["kind"] == "Component"
    pinned = {p.reference for p in references.load_pinned(REPO).values()}
    from stackctl.k8s.images import images_in_manifests

    for overlay in ("kind", "eks"):
        third_party = [
            ref
            for ref in images_in_manifests(rendered[overlay])  # type: ignore[arg-type]
            if "airflow-on-k8s/" not in ref  # project images: tagged per overlay/release
        ]
        assert third_party, overlay
        assert set(third_party) <= pinned, overlay
    for path in (REPO / "platform" / "k8s").rglob("*.yaml"):
        assert not re.search(r"@sha256:[0-9a-f]{64}", path.read_text(encoding="utf-8")), (
            f"{path.relative_to(REPO)} pins an image itself: name it bare, pin it in "
            "platform/images/kustomization.yaml"
        )


@pytest.mark.parametrize("target", references.PROJECT_TARGETS)
def test_project_images_install_from_the_lockfile(target: str) -> None:
    text = PROJECT.read_text(encoding="utf-8")
    locked = " ".join(i.arguments for i in stage_instructions(text, "locked"))
    venv = " ".join(i.arguments for i in stage_instructions(text, f"{target}-venv"))
    assert "uv export --frozen" in locked, "the lock as committed, never re-resolved"
    assert f"-o /tmp/{target}.txt" in locked
    assert "--require-hashes" in venv
    assert f"/tmp/{target}.txt" in venv, "installed (or synced) from its own locked closure"
    final = stage_instructions(text, target)
    copies = [i.arguments for i in final if i.keyword == "COPY" and "--from=" in i.arguments]
    assert copies == [f"--from={target}-venv /opt/venv /opt/venv"], (
        "a final image takes only its venv from the build stages (no uv, no extra CA)"
    )


def test_the_extra_ca_is_trusted_by_build_stages_only() -> None:
    text = PROJECT.read_text(encoding="utf-8")
    for target in references.PROJECT_TARGETS:
        final = " ".join(i.arguments for i in stage_instructions(text, target))
        assert "build-ca" not in final, target
        assert "SSL_CERT_FILE" not in final, target
    builder = " ".join(i.arguments for i in stage_instructions(text, "builder"))
    assert "/tmp/build-ca" in builder
    assert "SSL_CERT_FILE" in builder


@pytest.mark.parametrize("dockerfile", [PROJECT, STAND_INS], ids=lambda p: p.name)
def test_copied_paths_exist_in_the_build_context(dockerfile: Path) -> None:
    missing = [
        s
        for s in copy_sources(dockerfile.read_text(encoding="utf-8"))
        if "*" not in s and not (REPO / s).exists()
    ]
    assert not missing, f"{dockerfile.name}: COPY of paths missing from the repository: {missing}"


def test_the_build_context_lets_through_what_the_images_copy() -> None:
    from docker.utils.build import exclude_paths

    from stackctl.images.build import dockerignore_patterns

    patterns = dockerignore_patterns(REPO)
    assert patterns[0] == "*", ".dockerignore is an allow-list"
    included = exclude_paths(str(REPO), patterns)
    for dockerfile in (PROJECT, STAND_INS):
        for source in copy_sources(dockerfile.read_text(encoding="utf-8")):
            source = source.rstrip("/")
            assert any(p == source or p.startswith(source + "/") for p in included), source
    assert not any(p.startswith((".git/", ".nox/", ".stack/", "tests/")) for p in included)


def test_the_airflow_image_checks_the_providers_the_manifests_configure() -> None:
    text = " ".join(i.arguments for i in stage_instructions(PROJECT.read_text(), "airflow"))
    for module in ("statsd", "psycopg2", "airflow.providers.amazon", "airflow.providers.cncf"):
        assert module in text, module


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
    two = "FROM python:3.11@sha256:" + "a" * 64 + " AS one\nUSER 1\nFROM one AS two\n"
    assert check_dockerfile(two, "t", targets=("one", "two", "three")) == [
        "t: no stage three",
        "t: stage two sets no USER (it would run as the base image's user)",
    ]
