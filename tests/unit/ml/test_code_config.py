"""mlpipe.config: defaults from stack.env, environment overrides, env-only fallback, S3 client."""

from __future__ import annotations

from pathlib import Path

import pytest
from ml_testdata import CONFIG_DIR, make_settings

from mlpipe import config
from mlpipe.config import SettingsError, load_settings
from stackcontract.envfile import parse_env_file as read_env_file

STACK_ENV = read_env_file(CONFIG_DIR / "stack.env")


def test_defaults_come_from_stack_env() -> None:
    settings = make_settings()
    assert settings.s3_bucket == STACK_ENV["S3_BUCKET"]
    assert settings.model_name == STACK_ENV["MODEL_NAME"]
    assert settings.champion_alias == STACK_ENV["CHAMPION_ALIAS"]
    assert settings.promotion_min_relative_improvement == float(
        STACK_ENV["PROMOTION_MIN_RELATIVE_IMPROVEMENT"]
    )
    assert settings.max_quarantine_fraction == float(STACK_ENV["MAX_QUARANTINE_FRACTION"])
    assert settings.s3_endpoint_url is None
    assert settings.is_aws


def test_environment_overrides_file() -> None:
    settings = make_settings(s3_bucket="other", max_quarantine_fraction="0.5", s3_endpoint_url="")
    assert settings.s3_bucket == "other"
    assert settings.max_quarantine_fraction == 0.5
    assert settings.s3_endpoint_url is None  # empty means real AWS


def test_stack_config_dir_env_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text(
        (CONFIG_DIR / "stack.env").read_text().replace("S3_BUCKET=", "S3_BUCKET=custom-")
    )
    settings = load_settings(env={"STACK_CONFIG_DIR": str(tmp_path)})
    assert settings.s3_bucket == f"custom-{STACK_ENV['S3_BUCKET']}"


def test_stack_config_dir_without_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"stack\.env does not exist"):
        load_settings(env={"STACK_CONFIG_DIR": str(tmp_path)})


def test_missing_file_falls_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "find_repo_root", lambda start=None: None)
    settings = load_settings(env=dict(STACK_ENV))
    assert settings.s3_bucket == STACK_ENV["S3_BUCKET"]


def test_missing_required_value_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "find_repo_root", lambda start=None: None)
    env = {k: v for k, v in STACK_ENV.items() if k not in {"S3_BUCKET", "MODEL_NAME"}}
    with pytest.raises(SettingsError, match=r"Missing required settings: MODEL_NAME, S3_BUCKET"):
        load_settings(env=env)


def test_invalid_value_is_rejected() -> None:
    with pytest.raises(SettingsError, match="max_quarantine_fraction"):
        make_settings(max_quarantine_fraction="2")


def test_malformed_env_file_line_is_reported(tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text("S3_BUCKET=x\nnot a setting\n")
    with pytest.raises(SettingsError, match=r"stack.env:2"):
        load_settings(env={}, config_dir=tmp_path)


def test_s3_client_for_custom_endpoint_uses_relaxed_checksums() -> None:
    client = config.s3_client(make_settings(s3_endpoint_url="http://127.0.0.1:1"))
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client.meta.config.request_checksum_calculation == "when_required"
    assert client.meta.config.response_checksum_validation == "when_required"
    assert client.meta.config.s3 == {"addressing_style": "path"}


def test_s3_uri_helper() -> None:
    settings = make_settings(s3_bucket="b")
    assert settings.s3_uri("landing", "x.csv.gz") == "s3://b/landing/x.csv.gz"
    assert settings.s3_uri("landing/") == "s3://b/landing/"


def test_export_mlflow_env_sets_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_S3_ENDPOINT_URL", "AWS_REQUEST_CHECKSUM_CALCULATION"):
        monkeypatch.delenv(key, raising=False)
    config.export_mlflow_env(make_settings(s3_endpoint_url="http://127.0.0.1:1"))
    import os

    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert os.environ["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"


def test_compute_threads_rejects_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_THREADS", "zero")
    with pytest.raises(SettingsError, match="MLPIPE_THREADS"), config.compute_threads():
        pass
