"""Every overlay renders, and every rendered object validates strictly against the Kubernetes
schema of the version the kind node runs (platform/kind/versions.env)."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import kubernetes_validate
import pytest
from k8s_helpers import REPO, kubernetes_version, schema_errors

from stackctl.k8s import manifests

OVERLAYS = ("kind", "eks")


def test_every_overlay_directory_is_rendered(rendered: dict[str, list[dict[str, Any]]]) -> None:
    overlays = sorted(
        p.name for p in (REPO / "platform" / "k8s" / "overlays").iterdir() if p.is_dir()
    )
    assert set(overlays) <= set(rendered), f"overlays not rendered: {set(overlays) - set(rendered)}"
    assert set(OVERLAYS) <= set(overlays)


def test_schema_version_is_supported() -> None:
    version = kubernetes_version()
    assert version in {v.rsplit(".", 1)[0] for v in kubernetes_validate.utils.all_versions()}, (
        f"kubernetes-validate ships no schema for {version}; bump kubernetes-validate or the node image"
    )


@pytest.mark.parametrize("target", [*OVERLAYS, "s3-minio"])
def test_objects_validate_strictly(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    objects = rendered[target]
    assert objects, f"{target} rendered no objects"
    errors = schema_errors(objects, kubernetes_version())
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_unknown_fields(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = copy.deepcopy(next(o for o in rendered["kind"] if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # typo'd field
    errors = schema_errors([deployment], kubernetes_version())
    assert len(errors) == 1
    assert "livenesProbe" in errors[0], errors


def test_render_time_is_small(render_seconds: dict[str, float]) -> None:
    for target, seconds in sorted(render_seconds.items()):
        print(f"render {target}: {seconds:.2f} s")
    # generous bound: a render is normally ~1 s; 30 s means something is badly wrong
    assert max(render_seconds.values()) < 30


def test_render_writes_nothing_into_the_repository() -> None:
    overlays_dir = REPO / "platform" / "k8s"
    before = {p: p.stat().st_mtime_ns for p in overlays_dir.rglob("*") if p.is_file()}
    manifests.render_overlay("kind")
    after = {p: p.stat().st_mtime_ns for p in overlays_dir.rglob("*") if p.is_file()}
    assert after == before


def test_deploy_time_files_are_gitignored() -> None:
    paths = [f"platform/k8s/overlays/{o}/{n}" for o in OVERLAYS for n in ("secrets.env", "eks.env")]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(result.stdout.split()) == sorted(paths), (
        "secrets.env / eks.env must be gitignored"
    )
