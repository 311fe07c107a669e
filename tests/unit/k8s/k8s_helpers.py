"""Shared helpers of the manifest tests: the render module, object lookup, schema validation."""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S_DIR = REPO / "platform" / "k8s"
VERSIONS_ENV = REPO / "platform" / "kind" / "versions.env"

# validate() re-reads and re-parses the (large) JSON schema files for every object: memoise the
# read-only loader, ~15x faster over a whole overlay.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of ``kind`` whose name is ``name`` or ``name`` plus kustomize's hash suffix."""
    for obj in objects:
        object_name = obj["metadata"]["name"]
        if obj["kind"] == kind and (object_name == name or object_name.rsplit("-", 1)[0] == name):
            return obj
    raise AssertionError(f"no {kind} named {name} in the rendered objects")


def kubernetes_version() -> str:
    """major.minor of the pinned kind node image (KIND_NODE_IMAGE=kindest/node:vX.Y.Z@...)."""
    text = VERSIONS_ENV.read_text(encoding="utf-8")
    match = re.search(r"^KIND_NODE_IMAGE=kindest/node:v(\d+\.\d+)\.\d+", text, re.MULTILINE)
    assert match, f"{VERSIONS_ENV}: no KIND_NODE_IMAGE=kindest/node:vX.Y.Z line"
    return match.group(1)


def schema_errors(objects: list[dict[str, Any]], version: str) -> list[str]:
    """Strict schema violations (unknown fields included), one line per problem."""
    errors = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message}")
    return errors


def render_task_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the scheduler's render-pod-template init container writes, done here in Python."""
    scheduler = find(objects, "Deployment", "airflow-scheduler")
    init = next(
        c
        for c in scheduler["spec"]["template"]["spec"]["initContainers"]
        if c["name"] == "render-pod-template"
    )
    env = {e["name"]: e["value"] for e in init["env"] if "value" in e}
    template = find(objects, "ConfigMap", "airflow-pod-template")["data"]["pod_template.yaml"]
    pod: dict[str, Any] = yaml.safe_load(string.Template(template).substitute(env))
    pod["metadata"]["namespace"] = scheduler["metadata"]["namespace"]
    return pod
