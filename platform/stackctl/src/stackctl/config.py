"""Stack configuration, read from the single source `platform/config/{stack,ports}.env`.

Every value comes from those files; a port is overridden with `STACK_<KEY>` in the environment
(e.g. `STACK_MLFLOW_PORT=5001`). Nothing here repeats a value of those files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_DIR = Path("platform") / "config"
STACK_ENV = "stack.env"
PORTS_ENV = "ports.env"
PORT_OVERRIDE_PREFIX = "STACK_"
REPO_ROOT_ENV = "STACK_REPO_ROOT"


class ConfigError(RuntimeError):
    """The stack configuration is missing or wrong; the message says how to fix it."""


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


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse a plain `KEY=value` file (no quotes, no interpolation), skipping comments."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=value, got {raw!r}.")
        values[key.strip()] = value.strip()
    return values


def _is_repo_root(path: Path) -> bool:
    return (path / CONFIG_DIR / PORTS_ENV).is_file() and (path / CONFIG_DIR / STACK_ENV).is_file()


def find_repo_root(environ: Mapping[str, str] | None = None, start: Path | None = None) -> Path:
    """The repository root: `STACK_REPO_ROOT`, else the first parent of the cwd (then of this
    file) that holds platform/config/{stack,ports}.env."""
    env = os.environ if environ is None else environ
    if explicit := env.get(REPO_ROOT_ENV):
        root = Path(explicit).expanduser().resolve()
        if not _is_repo_root(root):
            raise ConfigError(
                f"{REPO_ROOT_ENV}={explicit} has no {CONFIG_DIR}/{STACK_ENV} and {PORTS_ENV}; "
                "point it at the airflow-on-k8s checkout."
            )
        return root
    for origin in (start or Path.cwd(), Path(__file__)):
        for candidate in (origin.resolve(), *origin.resolve().parents):
            if _is_repo_root(candidate):
                return candidate
    raise ConfigError(
        f"Cannot find the repository root (a folder with {CONFIG_DIR}/{PORTS_ENV}). "
        f"Run from inside the checkout or set {REPO_ROOT_ENV}=/path/to/checkout."
    )


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
    ports = _ports_from(parse_env_file(config_dir / PORTS_ENV), env, config_dir / PORTS_ENV)
    return StackConfig(repo_root=root, settings=settings, ports=ports)
