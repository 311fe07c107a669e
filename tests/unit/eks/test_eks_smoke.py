"""The smoke selection and the pieces that point it at an EKS release."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path

import pytest
from eks_fakes import REPO, fake_port_forward_kubectl

from stackctl.eks.connect import ConnectError, forwarded_port, service_port, stack_config
from stackctl.eks.smoke import (
    SMOKE_TESTS,
    SmokeConfigError,
    pytest_command,
    secret_value,
    smoke_selection,
)

OBJECTS = [
    {
        "kind": "Service",
        "metadata": {"name": "model-server", "namespace": "mlops"},
        "spec": {"ports": [{"port": 8000}]},
    },
    {
        "kind": "ConfigMap",
        "metadata": {"name": "stack-config-8c7t", "namespace": "mlops"},
        "data": {"S3_BUCKET": "b"},
    },
    {
        "kind": "Secret",
        "metadata": {"name": "stack-secrets-h2k9", "namespace": "mlops"},
        "data": {
            "AIRFLOW_ADMIN_PASSWORD": base64.b64encode(b"s3cret").decode(),
            "MODEL_SERVER_RELOAD_TOKEN": base64.b64encode(b"t0ken").decode(),
            "MLFLOW_TRACKING_USERNAME": base64.b64encode(b"stack-admin").decode(),
            "MLFLOW_TRACKING_PASSWORD": base64.b64encode(b"mlfl0w").decode(),
        },
    },
]


@pytest.mark.slow
def test_every_smoke_test_still_exists() -> None:
    """A renamed or deleted integration test must not silently shrink the smoke run."""
    selection = smoke_selection(REPO)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *selection,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    for node in selection:
        assert any(line.startswith(node) for line in collected), f"{node} collects nothing"


def test_selection_file_rules(tmp_path: Path) -> None:
    path = tmp_path / SMOKE_TESTS
    path.parent.mkdir(parents=True)
    path.write_text("# only a comment\n\n")
    with pytest.raises(SmokeConfigError, match="lists no tests"):
        smoke_selection(tmp_path)
    path.write_text("tests/unit/test_x.py::test_y  # not an integration test\n")
    with pytest.raises(SmokeConfigError, match="must be under tests/integration/"):
        smoke_selection(tmp_path)
    path.write_text("tests/integration/test_a.py::test_b  # why\n")
    assert smoke_selection(tmp_path) == ["tests/integration/test_a.py::test_b"]


def test_pytest_command_points_the_suite_at_the_release(tmp_path: Path) -> None:
    command = pytest_command(["tests/integration/t.py::x"], tmp_path / "e.json", tmp_path / "j.xml")
    assert command[1:4] == ["-m", "pytest", "tests/integration/t.py::x"]
    assert ["--stack-endpoints", str(tmp_path / "e.json")] == command[4:6]
    assert f"--junitxml={tmp_path / 'j.xml'}" in command


def test_port_forward_output_is_parsed() -> None:
    stream = io.StringIO("Forwarding from 127.0.0.1:41234 -> 8000\n")
    assert forwarded_port(stream) == 41234
    with pytest.raises(ConnectError, match="did not start: error: services"):
        forwarded_port(io.StringIO('error: services "model-server" not found\n'))


def test_values_come_from_the_rendered_release() -> None:
    assert service_port(OBJECTS, "model-server", "mlops") == 8000
    assert stack_config(OBJECTS, "mlops") == {"S3_BUCKET": "b"}
    assert secret_value(OBJECTS, "mlops", "AIRFLOW_ADMIN_PASSWORD") == "s3cret"
    with pytest.raises(ConnectError, match="no Service mlops/mlflow"):
        service_port(OBJECTS, "mlflow", "mlops")
    with pytest.raises(SmokeConfigError, match="has no key GRAFANA"):
        secret_value(OBJECTS, "mlops", "GRAFANA_ADMIN_PASSWORD")


SMOKE_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--stack-endpoints")
"""

SMOKE_TEST = """
import json, pytest

def test_endpoints(request):
    data = json.load(open(request.config.getoption("--stack-endpoints")))
    assert data["backend"] == "eks"
    assert data["airflow_password"] == "s3cret"
    assert (data["mlflow_username"], data["mlflow_password"]) == ("stack-admin", "mlfl0w")
    assert data["model_server_url"].startswith("http://127.0.0.1:40")
    assert len({data["model_server_url"], data["mlflow_url"], data["airflow_url"]}) == 3
    assert data["s3_bucket"] == "b" and data["model_name"] == "m"
    assert data["s3_url"] == "https://s3.eu-west-1.amazonaws.com"
    if "{fail}" == "yes":
        pytest.fail("the release is broken")
"""


def smoke_repo(tmp_path: Path, *, fail: bool) -> Path:
    root = tmp_path / "repo"
    (root / "platform" / "eks").mkdir(parents=True)
    (root / "tests" / "integration").mkdir(parents=True)
    (root / SMOKE_TESTS).write_text("tests/integration/test_smoke.py::test_endpoints\n")
    (root / "tests" / "integration" / "conftest.py").write_text(SMOKE_CONFTEST)
    (root / "tests" / "integration" / "test_smoke.py").write_text(
        SMOKE_TEST.replace("{fail}", "yes" if fail else "no")
    )
    return root


def release_objects() -> list[dict[str, object]]:
    services = [
        {
            "kind": "Service",
            "metadata": {"name": name, "namespace": "mlops"},
            "spec": {"ports": [{"port": port}]},
        }
        for name, port in (("model-server", 8000), ("mlflow", 5000), ("airflow-api-server", 8080))
    ]
    config = {
        "kind": "ConfigMap",
        "metadata": {"name": "stack-config-x", "namespace": "mlops"},
        "data": {"S3_BUCKET": "b", "MODEL_NAME": "m"},
    }
    return [*services, config, OBJECTS[2]]


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
def test_smoke_run_forwards_services_and_runs_the_selection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    """SmokeRun end to end with a stand-in kubectl (prints the port-forward line, then idles)."""
    from stackctl.eks.deploy import SmokeFailure
    from stackctl.eks.smoke import SmokeRun

    kubectl = fake_port_forward_kubectl(tmp_path)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    run = SmokeRun(smoke_repo(tmp_path, fail=fail), str(kubectl), tmp_path / "reports", "eu-west-1")
    if fail:
        with pytest.raises(SmokeFailure, match="smoke tests exited 1"):
            run("eks", "mlops", release_objects())
    else:
        run("eks", "mlops", release_objects())
    assert (tmp_path / "reports" / "smoke-junit.xml").is_file()
    assert list((tmp_path / "reports").iterdir()) == [tmp_path / "reports" / "smoke-junit.xml"], (
        "no credentials (endpoints file) left in the reports"
    )
