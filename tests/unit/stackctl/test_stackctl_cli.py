"""The `stackctl` CLI on a checkout without a running stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackctl.cli import app


@pytest.fixture
def runner(fake_repo: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STACK_REPO_ROOT", str(fake_repo))
    return CliRunner()


def test_status_without_a_stack_says_so(runner: CliRunner) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0
    assert "No local stack" in result.output


def test_endpoints_without_a_stack_explain_how_to_get_one(runner: CliRunner) -> None:
    result = runner.invoke(app, ["endpoints"])
    assert result.exit_code == 1
    assert "nox -s up" in result.output


def test_down_without_a_stack_stops_nothing(runner: CliRunner) -> None:
    result = runner.invoke(app, ["down"])
    assert result.exit_code == 0
    assert "Nothing was running" in result.output


def test_unknown_log_lists_the_available_ones(runner: CliRunner, fake_repo: Path) -> None:
    logs = fake_repo / ".stack" / "local" / "logs"
    logs.mkdir(parents=True)
    (logs / "mlflow.log").write_text("hello\n")
    result = runner.invoke(app, ["logs", "nope"])
    assert result.exit_code == 1
    assert "Available: mlflow" in result.output
    assert runner.invoke(app, ["logs", "mlflow"]).output.strip() == "hello"


def test_taken_port_fails_up_before_starting_anything(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("STACK_MLFLOW_PORT", str(port))
        result = runner.invoke(app, ["up", "--no-train"])
    assert result.exit_code == 1
    assert f"port {port} needed by mlflow" in result.output
    assert "STACK_MLFLOW_PORT=" in result.output


def test_minio_without_a_binary_is_a_clear_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `minio` anywhere
    result = runner.invoke(app, ["up", "--s3", "minio", "--no-train"])
    assert result.exit_code == 1
    assert "MinIO no longer distributes community binaries" in " ".join(result.output.split())
    assert "--s3 seaweedfs" in result.output
