"""Runtime settings, built from the environment with defaults from ``platform/config/stack.env``.

Public API (stable, other engineers import it):

- ``Settings``: frozen pydantic model of every setting in the team contract.
- ``load_settings(env=None, config_dir=None) -> Settings``: environment wins over ``stack.env``.
  ``stack.env`` is found in ``config_dir``, else ``$STACK_CONFIG_DIR``, else by walking up from the
  working directory and from this package to ``platform/config/stack.env``. If no file is found (inside
  a container image) the environment alone must carry every required value; a missing one raises
  ``SettingsError`` naming the variable and the fix.
- ``find_repo_root() -> Path | None``: the monorepo root (``stackcontract.repo``), None in an image.
- ``s3_client(settings)``: a boto3 S3 client for the configured endpoint (path-style addressing and
  "when_required" checksums for non-AWS stores such as SeaweedFS and MinIO).
- ``compute_threads()``: context manager capping OpenMP/BLAS threads at ``$MLPIPE_THREADS`` (default
  1): gradient boosting with spinning OpenMP threads on a shared, oversubscribed 2-core machine was
  measured 20-80x slower than single-threaded.
- ``mlflow_env(settings) -> dict``: the S3 endpoint and credentials in the variables MLflow's
  artifact client reads (``MLFLOW_S3_ENDPOINT_URL``, ``AWS_*``), and the tracking server's user
  as its REST client reads it (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``).
- ``mlflow_environment(settings)``: context manager adding those to ``os.environ`` for the block
  only (variables already set win); ``export_mlflow_env(settings)`` adds them for good, for a
  process's entry point (the model server, an Airflow task). Never called at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from stackcontract import envfile, repo, s3
from stackcontract.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STACK_ENV_RELATIVE: Final = Path("platform/config/stack.env")
CHECKSUM_ENV: Final = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


class SettingsError(ConfigError):
    """A required setting is missing or malformed."""


def _optional(value: str | None) -> str | None:
    return value or None


class Settings(BaseModel):
    """Every runtime setting of the ML pipeline (names mirror the env vars, lower-cased)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    s3_region: str
    s3_bucket: str
    s3_prefix_landing: str
    s3_prefix_raw: str
    s3_prefix_validated: str
    s3_prefix_quarantine: str
    s3_prefix_features: str
    s3_prefix_monitoring: str
    mlflow_tracking_uri: str | None = None
    # The tracking server's basic-auth user (the stack's MLflow runs its auth app).
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password: SecretStr | None = None
    mlflow_s3_endpoint_url: str | None = None
    mlflow_experiment: str
    model_name: str
    champion_alias: str
    challenger_alias: str
    promotion_min_relative_improvement: Annotated[float, Field(ge=0, lt=1)]
    max_quarantine_fraction: Annotated[float, Field(ge=0, le=1)]
    model_server_url: str | None = None
    pushgateway_url: str | None = None

    @property
    def is_aws(self) -> bool:
        """True when talking to real AWS S3 (no custom endpoint)."""
        return self.s3_endpoint_url is None

    def s3_uri(self, prefix: str, name: str = "") -> str:
        """``s3://<bucket>/<prefix>/<name>`` (``name`` may be empty for the prefix itself)."""
        key = f"{prefix.strip('/')}/{name}" if name else f"{prefix.strip('/')}/"
        return f"s3://{self.s3_bucket}/{key}"


_OPTIONAL_KEYS: Final = frozenset(
    name.upper() for name, field in Settings.model_fields.items() if not field.is_required()
)


def find_repo_root(start: Path | None = None) -> Path | None:
    """The monorepo root (``stackcontract.repo``), or None inside an image."""
    return repo.locate_repo_root({}, start)


def find_stack_env(
    config_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """Locate stack.env: explicit dir, then ``$STACK_CONFIG_DIR``, then the repo; None if absent."""
    environ = os.environ if env is None else env
    explicit = config_dir or (
        Path(environ["STACK_CONFIG_DIR"]) if environ.get("STACK_CONFIG_DIR") else None
    )
    if explicit is not None:
        path = explicit / "stack.env"
        if not path.is_file():
            raise SettingsError(f"{path} does not exist (from STACK_CONFIG_DIR or config_dir).")
        return path
    root = find_repo_root()
    return root / STACK_ENV_RELATIVE if root is not None else None


def load_settings(env: Mapping[str, str] | None = None, config_dir: Path | None = None) -> Settings:
    """Build ``Settings`` from ``env`` (default ``os.environ``) over the defaults in stack.env."""
    environ = dict(os.environ if env is None else env)
    stack_env = find_stack_env(config_dir, environ)
    try:
        merged = envfile.parse_env_file(stack_env) if stack_env is not None else {}
    except envfile.EnvFileError as error:
        raise SettingsError(str(error)) from None
    merged.update(environ)
    values = {
        name: _optional(merged.get(name.upper()))
        if name.upper() in _OPTIONAL_KEYS
        else merged.get(name.upper())
        for name in Settings.model_fields
    }
    missing = sorted(
        name.upper()
        for name, field in Settings.model_fields.items()
        if field.is_required() and values[name] in (None, "")
    )
    if missing:
        where = str(stack_env) if stack_env else "no stack.env found (set STACK_CONFIG_DIR)"
        raise SettingsError(
            f"Missing required settings: {', '.join(missing)}. Set them in the environment "
            f"or in platform/config/stack.env ({where})."
        )
    try:
        return Settings.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        raise SettingsError(f"Invalid settings: {error}") from error


def s3_client(settings: Settings) -> S3Client:
    """A boto3 S3 client for ``settings`` (the contract's one factory: ``stackcontract.s3``)."""
    return s3.s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key=settings.aws_access_key_id,
        secret_key=settings.aws_secret_access_key,
    )


def mlflow_env(settings: Settings) -> dict[str, str]:
    """The S3 endpoint and credentials, named as MLflow's artifact store client reads them, and
    the tracking server's user, named as MLflow's REST client reads it."""
    values: dict[str, str] = {}
    if settings.mlflow_tracking_username and settings.mlflow_tracking_password:
        values["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_tracking_username
        values["MLFLOW_TRACKING_PASSWORD"] = settings.mlflow_tracking_password.get_secret_value()
    endpoint = settings.mlflow_s3_endpoint_url or settings.s3_endpoint_url
    if endpoint:
        values["MLFLOW_S3_ENDPOINT_URL"] = endpoint
        values |= CHECKSUM_ENV
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        values["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id
        values["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key
    values["AWS_DEFAULT_REGION"] = settings.s3_region
    return values


def export_mlflow_env(settings: Settings) -> None:
    """Add `mlflow_env` to the process environment for good (a process's entry point only)."""
    for key, value in mlflow_env(settings).items():
        os.environ.setdefault(key, value)


@contextmanager
def mlflow_environment(settings: Settings) -> Iterator[None]:
    """`mlflow_env` in the process environment for the block only; variables already set win
    and the ones added are removed afterwards."""
    added = {k: v for k, v in mlflow_env(settings).items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextmanager
def compute_threads() -> Iterator[int]:
    """Cap native thread pools (OpenMP, BLAS) at ``$MLPIPE_THREADS`` (default 1) for the block."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    raw = os.environ.get("MLPIPE_THREADS", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"MLPIPE_THREADS must be a positive integer, got {raw!r}.")
    with threadpool_limits(limits=int(raw)):
        yield int(raw)
