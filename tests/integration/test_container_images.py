"""Container smoke tests of the project images (the targets of platform/images/Dockerfile): each
starts as the non-root uid its manifests set, on a read-only root filesystem, and answers the
probe path its Kubernetes manifests use. Needs a Docker engine and the built images (the compose
backend builds them; so does `stackctl images build`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from stackctl.images import references
from stackctl.k8s import manifests

pytestmark = pytest.mark.integration

# What each image needs to start alone (no stack around it): a throwaway SQLite store in /tmp.
SOLO = {
    "model-server": {
        "command": None,
        "environment": {
            "MODEL_STARTUP_WAIT_SECONDS": "0",
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
        },
    },
    "mlflow": {
        "command": [
            "server",
            "--host=0.0.0.0",
            "--port=5000",
            "--workers=1",
            "--backend-store-uri=sqlite:////tmp/mlflow.db",
            "--default-artifact-root=/tmp/artifacts",
        ],
        "environment": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    },
    "airflow": {
        "entrypoint": ["/bin/sh", "-c", "airflow db migrate >/dev/null && exec airflow api-server"],
        "command": None,
        "environment": {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////tmp/airflow.db",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/tmp/passwords.json",
            "AIRFLOW__API__WORKERS": "1",
        },
    },
}
START_SECONDS = 240


@pytest.fixture(scope="module")
def kind_workloads() -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(manifests.render_overlay("kind")) if o]


def manifest_contract(objects: list[dict[str, Any]], target: str) -> dict[str, Any]:
    """runAsUser, readOnlyRootFilesystem and the HTTP probe of the Deployment running `target`."""
    image = references.project_image(target)
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in pod["containers"]:
            probe = (container.get("readinessProbe") or container.get("startupProbe") or {}).get(
                "httpGet"
            )
            if container["image"] == image and probe:
                port = probe["port"]
                if isinstance(port, str):
                    port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
                return {
                    "uid": pod["securityContext"]["runAsUser"],
                    "read_only": container["securityContext"]["readOnlyRootFilesystem"],
                    "path": probe["path"],
                    "port": int(port),
                }
    raise AssertionError(f"no Deployment with an HTTP probe runs {image}")


@pytest.fixture(params=references.PROJECT_TARGETS)
def started(request: pytest.FixtureRequest, docker_client: Any) -> Iterator[tuple[str, Any]]:
    target = request.param
    image = references.project_image(target)
    try:
        docker_client.images.get(image)
    except Exception:
        pytest.skip(f"{image} is not built here: `stackctl images build {target}`")
    solo = SOLO[target]
    container = docker_client.containers.run(
        image,
        command=solo.get("command"),
        entrypoint=solo.get("entrypoint"),
        environment=solo["environment"],
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        detach=True,
    )
    try:
        yield target, container
    finally:
        container.remove(force=True)


def probe(container: Any, port: int, path: str) -> int | None:
    code = (
        "import urllib.request,sys\n"
        f"try: print(urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5).status)\n"
        "except urllib.error.HTTPError as e: print(e.code)\n"
        "except OSError: print(0)\n"
    )
    result = container.exec_run(["python", "-c", code])
    text = result.output.decode().strip()
    return int(text) if text.isdigit() and text != "0" else None


def test_image_runs_non_root_read_only_and_answers_its_probe(
    started: tuple[str, Any], kind_workloads: list[dict[str, Any]]
) -> None:
    target, container = started
    contract = manifest_contract(kind_workloads, target)
    assert contract["read_only"] is True
    uid = container.exec_run(["id", "-u"]).output.decode().strip()
    assert uid == str(contract["uid"]), (
        f"{target} runs as uid {uid}, its manifests say {contract['uid']}"
    )
    assert uid != "0"
    touched = container.exec_run(["touch", "/opt/written-at-runtime"])
    assert touched.exit_code != 0, f"{target}: the root filesystem is writable"
    assert b"Read-only file system" in touched.output
    deadline = time.monotonic() + START_SECONDS
    status = None
    while time.monotonic() < deadline:
        container.reload()
        assert container.status == "running", container.logs(tail=30).decode(errors="replace")
        status = probe(container, contract["port"], contract["path"])
        if status == 200:
            break
        time.sleep(2)
    assert status == 200, (
        f"{target}: {contract['path']} on port {contract['port']} answered {status} within "
        f"{START_SECONDS}s\n{container.logs(tail=30).decode(errors='replace')}"
    )
