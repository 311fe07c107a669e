"""Image-digest substitution into the eks overlay, and the digests file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eks_fakes import DIGEST_A, DIGEST_B, KUBECTL, REGISTRY, write_overlay

from stackctl.eks.digests import DigestsFileError, ImageDigests, split_pinned
from stackctl.eks.render import (
    RenderError,
    container_images,
    image_name,
    parse_objects,
    plan_table,
    render,
)
from stackctl.k8s.commands import run_command


def digests(**images: str) -> ImageDigests:
    return ImageDigests(release="v1.2.3", images=images)


def test_digests_replace_tags_in_every_container(tmp_path: Path) -> None:
    overlay = write_overlay(tmp_path / "overlay")
    pinned = digests(
        **{
            "airflow-on-k8s/model-server": f"{REGISTRY}/airflow-on-k8s/model-server@{DIGEST_A}",
            "airflow-on-k8s/airflow": f"{REGISTRY}/airflow-on-k8s/airflow@{DIGEST_B}",
        }
    )
    objects = parse_objects(render(overlay, pinned, kubectl=KUBECTL, runner=run_command))
    images = {image for obj in objects for image in container_images(obj)}
    assert images == {
        f"{REGISTRY}/airflow-on-k8s/model-server@{DIGEST_A}",
        f"{REGISTRY}/airflow-on-k8s/airflow@{DIGEST_B}",
        "busybox:1.37",  # third-party images are left as the overlay pins them
    }
    assert (overlay / "kustomization.yaml").read_text().count("images") == 0, "overlay untouched"


def test_without_digests_the_overlay_renders_as_is(tmp_path: Path) -> None:
    overlay = write_overlay(tmp_path / "overlay")
    objects = parse_objects(render(overlay, None, kubectl=KUBECTL, runner=run_command))
    assert "airflow-on-k8s/model-server:dev" in container_images(objects[2])


def test_a_digest_for_an_image_the_overlay_does_not_use_is_an_error(tmp_path: Path) -> None:
    overlay = write_overlay(tmp_path / "overlay")
    wrong = digests(**{"airflow-on-k8s/grafana": f"{REGISTRY}/airflow-on-k8s/grafana@{DIGEST_A}"})
    with pytest.raises(RenderError, match=r"does not use these images.*airflow-on-k8s/grafana"):
        render(overlay, wrong, kubectl=KUBECTL, runner=run_command)


def test_missing_overlay_is_named(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"has no kustomization\.yaml"):
        render(tmp_path / "nowhere", None, kubectl=KUBECTL, runner=run_command)


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("airflow-on-k8s/model-server:dev", "airflow-on-k8s/model-server"),
        ("localhost:5000/app:1.0", "localhost:5000/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        (f"postgres:17-alpine@{DIGEST_A}", "postgres"),
    ],
)
def test_image_name_strips_tag_and_digest(reference: str, name: str) -> None:
    assert image_name(reference) == name


def test_digests_file_round_trip(tmp_path: Path) -> None:
    pinned = digests(**{"airflow-on-k8s/mlflow": f"{REGISTRY}/airflow-on-k8s/mlflow@{DIGEST_A}"})
    pinned.dump(tmp_path / "d.json")
    assert ImageDigests.load(tmp_path / "d.json") == pinned
    assert pinned.kustomize_images() == [
        {
            "name": "airflow-on-k8s/mlflow",
            "newName": f"{REGISTRY}/airflow-on-k8s/mlflow",
            "digest": DIGEST_A,
        }
    ]


@pytest.mark.parametrize(
    "reference",
    [
        f"{REGISTRY}/airflow-on-k8s/mlflow:v1",  # a tag can be re-pushed
        f"{REGISTRY}/airflow-on-k8s/mlflow@sha256:abc",  # truncated digest
        f"{REGISTRY}/airflow-on-k8s/mlflow:v1@{DIGEST_A}",  # tag and digest: ambiguous
    ],
)
def test_digests_file_refuses_unpinned_references(tmp_path: Path, reference: str) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"release": "v1", "images": {"airflow-on-k8s/mlflow": reference}}))
    with pytest.raises(DigestsFileError, match="not pinned by digest"):
        ImageDigests.load(path)


def test_missing_digests_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DigestsFileError, match="nox -s push-images"):
        ImageDigests.load(tmp_path / "absent.json")


def test_split_pinned() -> None:
    assert split_pinned(f"{REGISTRY}/x@{DIGEST_B}") == (f"{REGISTRY}/x", DIGEST_B)


def test_plan_table_lists_every_object(tmp_path: Path) -> None:
    objects = parse_objects(
        render(write_overlay(tmp_path / "o"), None, kubectl=KUBECTL, runner=run_command)
    )
    table = plan_table(objects)
    assert table.row_count == 4
    assert [column.header for column in table.columns] == ["Kind", "Namespace", "Name", "Images"]
