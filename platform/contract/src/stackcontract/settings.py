"""Stack settings: `platform/config/stack.env` plus the ports of `ports.env`.

Every value comes from those files; a port is overridden with `STACK_<KEY>` in the environment
(e.g. `STACK_MLFLOW_PORT=5001`). Nothing here repeats a value of those files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackcontract.envfile import parse_env_file
from stackcontract.errors import ConfigError
from stackcontract.repo import CONFIG_DIR, find_repo_root

__all__ = ["ConfigError", "Ports", "StackConfig", "load_config"]

STACK_ENV = "stack.env"
PORTS_ENV = "ports.env"
PORT_OVERRIDE_PREFIX = "STACK_"


class Ports(BaseModel):
    """Host ports of every stack service (keys of ports.env, lower-cased)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    s3_port: int = Field(ge=1, le=65535)
    seaweed_master_port: int = Field(ge=1, le=65535)
    seaweed_volume_port: int = Field(ge=1, le=65535)
    seaweed_filer_port: int = Field(ge=1, le=65535)
    seaweed_master_grpc_port: int = Field(ge=1, le=65535)
    seaweed_volume_grpc_port: int = Field(ge=1, le=65535)
    seaweed_filer_grpc_port: int = Field(ge=1, le=65535)
    seaweed_s3_grpc_port: int = Field(ge=1, le=65535)
    seaweed_metrics_port: int = Field(ge=1, le=65535)
    minio_console_port: int = Field(ge=1, le=65535)
    mlflow_port: int = Field(ge=1, le=65535)
    airflow_api_port: int = Field(ge=1, le=65535)
    model_server_port: int = Field(ge=1, le=65535)
    prometheus_port: int = Field(ge=1, le=65535)
    pushgateway_port: int = Field(ge=1, le=65535)
    grafana_port: int = Field(ge=1, le=65535)

    @staticmethod
    def override_variable(field: str) -> str:
        """The environment variable that overrides a port, e.g. `STACK_MLFLOW_PORT`."""
        return PORT_OVERRIDE_PREFIX + field.upper()


class StackConfig(BaseModel):
    """The settings of platform/config/stack.env plus the (possibly overridden) ports."""

    model_config = ConfigDict(frozen=True)

    repo_root: Path
    settings: dict[str, str]
    ports: Ports

    def setting(self, key: str) -> str:
        """One key of stack.env, with a clear error when the file lacks it."""
        try:
            return self.settings[key]
        except KeyError:
            raise ConfigError(
                f"{key} is missing from {self.repo_root / CONFIG_DIR / STACK_ENV}; add `{key}=...`."
            ) from None

    @property
    def bucket(self) -> str:
        return self.setting("S3_BUCKET")

    @property
    def region(self) -> str:
        return self.setting("S3_REGION")

    @property
    def model_name(self) -> str:
        return self.setting("MODEL_NAME")

    @property
    def state_dir(self) -> Path:
        """Everything a running stack owns lives under `.stack/` (gitignored)."""
        return self.repo_root / ".stack"

    @property
    def dags_dir(self) -> Path:
        return self.repo_root / "airflow" / "dags"


def _ports_from(file_values: Mapping[str, str], env: Mapping[str, str], path: Path) -> Ports:
    raw = {key.lower(): value for key, value in file_values.items()}
    for field in Ports.model_fields:
        override = env.get(Ports.override_variable(field))
        if override:
            raw[field] = override
    try:
        return Ports.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{Ports.override_variable(str(err['loc'][0]))}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(
            f"Bad port configuration in {path} or the environment: {problems}"
        ) from None


def load_config(environ: Mapping[str, str] | None = None, start: Path | None = None) -> StackConfig:
    """Read stack.env and ports.env (the single source) and apply `STACK_<KEY>` port overrides."""
    env = os.environ if environ is None else environ
    root = find_repo_root(env, start)
    config_dir = root / CONFIG_DIR
    settings = parse_env_file(config_dir / STACK_ENV)
    port_values = parse_env_file(config_dir / PORTS_ENV)
    ports = _ports_from(port_values, env, config_dir / PORTS_ENV)
    return StackConfig(repo_root=root, settings=settings, ports=ports)
