"""Every backend runs each service as platform/config/services.toml declares it.

The local backend's processes (computed, not started), the containers of the rendered kind
and eks overlays and the services of the Compose file (as `docker compose config` resolves it)
are compared with the declaration; any difference that the declaration does not
list under `per_backend` fails, naming backend, service and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import find

from stackcontract.envfile import parse_env_file
from stackcontract.services import Effective, Services, drift, load_repo_services
from stackcontract.settings import load_config
from stackctl.compose import ComposeBackend
from stackctl.compose.effective import effective_settings as compose_settings
from stackctl.k8s.effective import effective_settings
from stackctl.local import LocalBackend

REPO = Path(__file__).resolve().parents[3]
CLUSTER_BACKENDS = ("kind", "eks")


@pytest.fixture(scope="module")
def services() -> Services:
    return load_repo_services(REPO)


def problems(services: Services, backend: str, effective: dict[str, list[Effective]]) -> list[str]:
    config = load_config({"STACK_REPO_ROOT": str(REPO)})
    ports = parse_env_file(REPO / "platform/config/ports.env")
    found = []
    for name, entries in effective.items():
        for entry in entries:
            found += drift(
                services,
                services[name],
                backend,
                entry,
                stack_settings=config.settings,
                ports=ports,
            )
    return found


def local_effective(tmp_path: Path) -> dict[str, list[Effective]]:
    config = load_config({"STACK_REPO_ROOT": str(REPO)})
    return LocalBackend(config, state_dir=tmp_path).effective_settings()


@pytest.fixture(scope="module")
def compose_rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker compose config` of platform/compose/compose.yaml, with throwaway credentials."""
    config = load_config({"STACK_REPO_ROOT": str(REPO)})
    backend = ComposeBackend(config, state_dir=tmp_path_factory.mktemp("compose"))
    return backend.rendered_config()


def test_every_declared_service_runs_on_every_backend(
    services: Services,
    rendered: dict[str, list[dict[str, Any]]],
    compose_rendered: dict[str, Any],
    tmp_path: Path,
) -> None:
    assert set(local_effective(tmp_path)) == set(services.services)
    assert set(compose_settings(services, compose_rendered)) == set(services.services)
    for backend in CLUSTER_BACKENDS:
        expected = {service.name for service in services.on(backend)}
        assert set(effective_settings(services, rendered[backend], backend)) == expected
    assert "s3" not in {service.name for service in services.on("eks")}


def test_local_processes_match_the_declaration(services: Services, tmp_path: Path) -> None:
    assert problems(services, "local", local_effective(tmp_path)) == []


@pytest.mark.parametrize("backend", CLUSTER_BACKENDS)
def test_cluster_containers_match_the_declaration(
    services: Services, rendered: dict[str, list[dict[str, Any]]], backend: str
) -> None:
    assert (
        problems(services, backend, effective_settings(services, rendered[backend], backend)) == []
    )


def test_compose_services_match_the_declaration(
    services: Services, compose_rendered: dict[str, Any]
) -> None:
    assert problems(services, "compose", compose_settings(services, compose_rendered)) == []


def test_a_planted_compose_difference_is_named(
    services: Services, compose_rendered: dict[str, Any]
) -> None:
    planted = copy.deepcopy(compose_rendered)
    planted["services"]["mlflow"]["environment"]["MLFLOW_WORKERS"] = "2"
    planted["services"]["airflow-scheduler"]["command"].append("--num-runs=5")
    planted["services"]["model-server"]["healthcheck"]["test"] = [
        "CMD",
        "python",
        "-c",
        "urlopen('http://127.0.0.1:8000/ready')",
    ]
    del planted["services"]["pushgateway"]
    assert problems(services, "compose", compose_settings(services, planted)) == [
        "compose/mlflow (mlflow): env MLFLOW_WORKERS='2', declared '1'",
        "compose/airflow (airflow-scheduler): flag --num-runs is passed but neither declared "
        "nor listed under per_backend",
        "compose/model-server (model-server): probed on ['/ready'], declared health /health",
        "compose/pushgateway (pushgateway): declared but not running on this backend (list it "
        "under absent_on, with why)",
    ]


def test_a_planted_env_difference_is_named(
    services: Services, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = copy.deepcopy(rendered["kind"])
    mlflow = find(objects, "Deployment", "mlflow")
    mlflow["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "MLFLOW_WORKERS", "value": "2"}
    )
    assert problems(services, "kind", effective_settings(services, objects, "kind")) == [
        "kind/mlflow (Deployment/mlflow:mlflow): env MLFLOW_WORKERS='2', declared '1'"
    ]


def test_a_planted_flag_and_an_undeclared_key_are_named(services: Services, tmp_path: Path) -> None:
    effective = local_effective(tmp_path)
    (s3,) = effective["s3"]
    s3.args = [
        a.replace("-master.volumeSizeLimitMB=256", "-master.volumeSizeLimitMB=1024")
        for a in s3.args
    ]
    (mlflow,) = effective["mlflow"]
    mlflow.env["MLFLOW_GUNICORN_OPTS"] = "--timeout 60"
    assert problems(services, "local", effective) == [
        "local/s3 (s3): flag -master.volumeSizeLimitMB='1024', declared '256'",
        "local/mlflow (mlflow): env MLFLOW_GUNICORN_OPTS is set but neither declared nor listed "
        "under per_backend",
    ]


def test_a_missing_workload_and_a_wrong_probe_are_named(
    services: Services, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = copy.deepcopy(rendered["eks"])
    model_server = find(objects, "Deployment", "model-server")
    container = model_server["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe in container:
            container[probe]["httpGet"]["path"] = "/ready"
    objects = [
        o for o in objects if o["metadata"]["name"] != "pushgateway" or o["kind"] != "Deployment"
    ]
    found = problems(services, "eks", effective_settings(services, objects, "eks"))
    assert (
        "eks/model-server (Deployment/model-server:model-server): probed on ['/ready'], declared health /health"
        in found
    )
    assert (
        "eks/pushgateway (Deployment/pushgateway:pushgateway): declared but not running on this "
        "backend (list it under absent_on, with why)" in found
    )
