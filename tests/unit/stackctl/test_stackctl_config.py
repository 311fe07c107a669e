"""stackctl.config: the single source (platform/config/*.env) plus STACK_<KEY> port overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from stackctl_helpers import REPO_ROOT

from stackcontract.envfile import parse_env_file
from stackcontract.repo import find_repo_root
from stackcontract.settings import ConfigError, Ports, load_config


def test_reads_every_port_and_setting_from_the_repo_files() -> None:
    config = load_config(environ={"STACK_REPO_ROOT": str(REPO_ROOT)})
    ports_file = parse_env_file(REPO_ROOT / "platform/config/ports.env")
    stack_file = parse_env_file(REPO_ROOT / "platform/config/stack.env")
    assert config.settings == stack_file
    for key, value in ports_file.items():
        assert getattr(config.ports, key.lower()) == int(value)
    assert config.bucket == stack_file["S3_BUCKET"]
    assert config.model_name == stack_file["MODEL_NAME"]


def test_stack_port_override_wins_over_the_file(fake_repo: Path) -> None:
    config = load_config(environ={"STACK_REPO_ROOT": str(fake_repo), "STACK_MLFLOW_PORT": "5001"})
    assert config.ports.mlflow_port == 5001
    assert Ports.override_variable("mlflow_port") == "STACK_MLFLOW_PORT"


def test_bad_override_names_the_variable(fake_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"STACK_S3_PORT.*'eighty'"):
        load_config(environ={"STACK_REPO_ROOT": str(fake_repo), "STACK_S3_PORT": "eighty"})


def test_port_out_of_range_is_rejected(fake_repo: Path) -> None:
    with pytest.raises(ConfigError, match="STACK_MODEL_SERVER_PORT"):
        load_config(environ={"STACK_REPO_ROOT": str(fake_repo), "STACK_MODEL_SERVER_PORT": "70000"})


def test_repo_root_is_found_from_a_subfolder(fake_repo: Path) -> None:
    deep = fake_repo / "airflow" / "dags"
    assert find_repo_root(environ={}, start=deep) == fake_repo.resolve()


def test_wrong_explicit_repo_root_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STACK_REPO_ROOT"):
        find_repo_root(environ={"STACK_REPO_ROOT": str(tmp_path)})


def test_malformed_line_is_reported_with_its_number(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("# comment\nA=1\nnot a pair\n")
    with pytest.raises(ConfigError, match=r"x.env:3"):
        parse_env_file(env_file)


def test_missing_setting_names_the_file(fake_repo: Path) -> None:
    stack_env = fake_repo / "platform/config/stack.env"
    stack_env.write_text(
        "\n".join(line for line in stack_env.read_text().splitlines() if "S3_BUCKET" not in line)
    )
    config = load_config(environ={"STACK_REPO_ROOT": str(fake_repo)})
    with pytest.raises(ConfigError, match=r"S3_BUCKET is missing from .*stack.env"):
        _ = config.bucket
