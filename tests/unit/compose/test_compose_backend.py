"""The Compose backend without an engine: credentials made once and kept private, the files the
compose file mounts, the endpoints it reports, the Compose binary it finds, and the errors it
gives when something is missing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from stackcontract.envfile import write_env_file
from stackcontract.settings import load_config
from stackctl.compose import ComposeBackend
from stackctl.compose.backend import ComposeBackendError
from stackctl.compose.tool import ComposeError, find_compose

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def backend(tmp_path: Path) -> ComposeBackend:
    return ComposeBackend(
        load_config({"STACK_REPO_ROOT": str(REPO)}), state_dir=tmp_path / "compose"
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_credentials_are_generated_once_and_private(backend: ComposeBackend) -> None:
    first = backend.secrets()
    assert mode(backend.secrets_file) == 0o600
    assert mode(backend.state_dir) == 0o700
    assert backend.secrets() == first, "kept: the volumes keep the passwords they were made with"
    other = ComposeBackend(backend.config, state_dir=backend.state_dir.parent / "other")
    assert other.secrets()["POSTGRES_PASSWORD"] != first["POSTGRES_PASSWORD"]
    # the keys of the Kubernetes Secret stack-secrets, plus the Pushgateway's basic auth
    for key in ("AIRFLOW_DB_PASSWORD", "AIRFLOW_CONN_MLOPS_S3", "SEAWEEDFS_JWT_KEY"):
        assert first[key]
    assert first["PUSHGATEWAY_PASSWORD"] not in first["AIRFLOW_API_SECRET_KEY"]
    mlflow = json.loads(first["AIRFLOW_CONN_MLOPS_MLFLOW"])
    assert (mlflow["host"], mlflow["port"]) == ("mlflow", 5000)
    assert (mlflow["login"], mlflow["password"]) == (
        first["MLFLOW_TRACKING_USERNAME"],
        first["MLFLOW_TRACKING_PASSWORD"],
    )


def test_a_credential_added_since_the_stack_was_made_is_generated_and_kept(
    backend: ComposeBackend,
) -> None:
    """A stack kept from an older stackctl lacks the newer keys: they are added, the rest kept."""
    first = backend.secrets()
    older = {key: value for key, value in first.items() if not key.startswith("MLFLOW_TRACKING")}
    write_env_file(backend.secrets_file, older)
    upgraded = backend.secrets()
    assert {key: upgraded[key] for key in older} == older
    assert upgraded["MLFLOW_TRACKING_USERNAME"] == "stack-admin"
    assert upgraded["MLFLOW_TRACKING_PASSWORD"] != first["MLFLOW_TRACKING_PASSWORD"]
    assert backend.secrets() == upgraded, "written back: the same on the next call"
    assert mode(backend.secrets_file) == 0o600


def test_mounted_credentials_are_readable_only_by_their_container_user(
    backend: ComposeBackend,
) -> None:
    compose = backend.compose({}, [])
    passwords = Path(compose.variables["STACK_AIRFLOW_PASSWORDS_FILE"])
    assert json.loads(passwords.read_text()) == {
        "admin": backend.secrets()["AIRFLOW_ADMIN_PASSWORD"]
    }
    password_file = Path(compose.variables["STACK_PUSHGATEWAY_PASSWORD_FILE"])
    if os.geteuid() == 0:
        assert (passwords.stat().st_uid, mode(passwords)) == (50000, 0o600)
        assert (password_file.stat().st_uid, mode(password_file)) == (65534, 0o600)
    web = Path(compose.variables["STACK_PUSHGATEWAY_WEB_CONFIG"]).read_text()
    assert "monitoring: $2" in web, "a bcrypt hash, not the password"
    assert backend.secrets()["PUSHGATEWAY_PASSWORD"] not in web
    scrape = Path(compose.variables["STACK_PROMETHEUS_CONFIG"]).read_text()
    assert "model-server:8000" in scrape
    assert "/run/secrets/pushgateway-password" in scrape
    assert "/run/secrets/mlflow-password" in scrape
    mlflow_password = Path(compose.variables["STACK_MLFLOW_PASSWORD_FILE"])
    assert mlflow_password.read_text() == backend.secrets()["MLFLOW_TRACKING_PASSWORD"]
    if os.geteuid() == 0:
        assert (mlflow_password.stat().st_uid, mode(mlflow_password)) == (65534, 0o600)
    variables = Path(compose.variables["STACK_AIRFLOW_VARIABLES_ENV"]).read_text()
    assert "AIRFLOW_VAR_S3_BUCKET=mlops" in variables


def test_the_compose_environment_carries_ports_and_no_bcrypt_base64(
    backend: ComposeBackend,
) -> None:
    compose = backend.compose({"AIRFLOW_IMAGE": "airflow-on-k8s/airflow:dev"}, ["grafana"])
    variables = compose.variables
    assert variables["MLFLOW_PORT"] == str(backend.config.ports.mlflow_port)
    assert variables["COMPOSE_PROFILES"] == "grafana"
    assert variables["AIRFLOW_STATSD_ON"] == "False"
    assert not any(key.endswith("_BASE64") for key in variables)
    assert compose.project == backend.project
    assert backend.project.startswith("airflow-on-k8s-")


def test_endpoints_are_the_published_ports_and_the_generated_credentials(
    backend: ComposeBackend,
) -> None:
    endpoints = backend._endpoints(profiles=[])
    values = backend.secrets()
    ports = backend.config.ports
    assert endpoints.backend == "compose"
    assert endpoints.mlflow_url == f"http://127.0.0.1:{ports.mlflow_port}"
    assert endpoints.s3_access_key == values["AWS_ACCESS_KEY_ID"]
    assert endpoints.airflow_password.get_secret_value() == values["AIRFLOW_ADMIN_PASSWORD"]
    assert endpoints.pushgateway_auth() == ("monitoring", values["PUSHGATEWAY_PASSWORD"])
    assert endpoints.grafana_url is None
    assert backend._endpoints(profiles=["grafana"]).grafana_url is not None


def test_a_project_per_state_folder(tmp_path: Path) -> None:
    config = load_config({"STACK_REPO_ROOT": str(REPO)})
    one = ComposeBackend(config, state_dir=tmp_path / "a")
    assert one.project == ComposeBackend(config, state_dir=tmp_path / "a").project
    assert one.project != ComposeBackend(config, state_dir=tmp_path / "b").project


def test_components_map_to_their_long_running_services(backend: ComposeBackend) -> None:
    assert backend.services_of("s3") == ("s3",)
    assert backend.services_of("airflow") == (
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    )
    assert backend.services_of("postgres") == ("postgres",)
    with pytest.raises(ComposeBackendError, match=r"no component 'redis' \(s3, mlflow, airflow"):
        backend.services_of("redis")


def test_compose_v1_or_none_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "docker-compose"
    old.write_text("#!/bin/sh\necho 1.29.2\n")
    old.chmod(0o755)
    monkeypatch.setenv("STACK_COMPOSE_BIN", str(old))
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker CLI plugin, no other docker-compose
    monkeypatch.setattr("importlib.util.find_spec", lambda _name: None)
    with pytest.raises(ComposeError) as refused:
        find_compose()
    message = str(refused.value)
    assert f"{old}: 1.29.2" in message
    assert "uv sync --group compose" in message


def test_the_locked_compose_binary_is_found() -> None:
    command = find_compose()
    assert Path(command[0]).name in {"docker-compose", "docker"}
