"""What every local component needs: config, state paths, generated credentials, options."""

from __future__ import annotations

import json
import secrets
import shutil
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from stackcontract import mlflow_auth
from stackcontract.private import write_private
from stackcontract.services import Services, load_repo_services
from stackcontract.settings import StackConfig
from stackctl.backend import options_from_choices
from stackctl.local.paths import StatePaths
from stackctl.local.supervisor import Supervisor

HOST = "127.0.0.1"
AIRFLOW_USERNAME = "admin"


class S3Flavor(StrEnum):
    seaweedfs = "seaweedfs"
    minio = "minio"


class Credentials(BaseModel):
    """Secrets generated on the first `up` and kept (0600) until `down --purge`."""

    model_config = ConfigDict(frozen=True)

    s3_access_key: str
    s3_secret_key: SecretStr
    airflow_password: SecretStr
    airflow_jwt_secret: SecretStr
    airflow_api_secret_key: SecretStr
    # The bearer token of the model server's POST /reload (Airflow's notify task sends it).
    model_server_reload_token: SecretStr
    # Basic-auth password of the Pushgateway (user PUSHGATEWAY_USER): the monitoring job pushes
    # with it and Prometheus scrapes with it.
    pushgateway_password: SecretStr
    # SeaweedFS' JWT signing key: with it, the filer's and volume servers' own HTTP ports refuse
    # unsigned reads and writes, so the bucket is reachable only through the S3 API.
    seaweedfs_jwt_key: SecretStr
    # The password of MLflow's admin (services/mlflow.env): every MLflow client of the stack uses it.
    mlflow_password: SecretStr
    # Signs the CSRF tokens of MLflow's auth app (the same key in every worker and restart).
    mlflow_flask_secret_key: SecretStr

    @classmethod
    def generate(cls) -> Credentials:
        alphabet = string.ascii_uppercase + string.digits
        return cls(
            s3_access_key="STACK" + "".join(secrets.choice(alphabet) for _ in range(15)),
            s3_secret_key=SecretStr(secrets.token_urlsafe(30)),
            airflow_password=SecretStr(secrets.token_urlsafe(12)),
            airflow_jwt_secret=SecretStr(secrets.token_urlsafe(32)),
            airflow_api_secret_key=SecretStr(secrets.token_urlsafe(32)),
            model_server_reload_token=SecretStr(secrets.token_urlsafe(32)),
            pushgateway_password=SecretStr(secrets.token_urlsafe(24)),
            seaweedfs_jwt_key=SecretStr(secrets.token_urlsafe(32)),
            mlflow_password=SecretStr(secrets.token_urlsafe(24)),
            mlflow_flask_secret_key=SecretStr(secrets.token_urlsafe(32)),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """The kept credentials; a secret added since they were written is generated and added
        (the others are never rotated under a running stack)."""
        kept = json.loads(path.read_text()) if path.is_file() else {}
        fresh = {
            key: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in cls.generate()
        }
        data = fresh | kept
        if data != kept:
            write_private(path, json.dumps(data, indent=2) + "\n")
        return cls.model_validate(data)


@dataclass(frozen=True)
class LocalOptions:
    """Choices made on the `stackctl up` command line."""

    s3: S3Flavor = S3Flavor.seaweedfs
    mlflow_backend_store_uri: str | None = None  # None: SQLite under .stack/local/data
    train: bool = True
    train_timeout: float = 1200.0
    budget_scale: float = 1.0

    def __post_init__(self) -> None:
        # Choices may arrive as plain strings (`options={"s3": "minio"}`).
        object.__setattr__(self, "s3", S3Flavor(self.s3))

    @classmethod
    def from_choices(cls, choices: Mapping[str, Any] | LocalOptions | None) -> LocalOptions:
        """Options from the `stackctl up` choices; an unknown one is an error naming it."""
        known = ", ".join(f.name for f in fields(cls))
        return options_from_choices(cls, choices, backend="local", hint=f"it has {known}")


@dataclass
class RunContext:
    """Shared by the components of one `up`."""

    config: StackConfig
    paths: StatePaths
    credentials: Credentials
    supervisor: Supervisor
    options: LocalOptions
    cancel: threading.Event = field(default_factory=threading.Event)

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}"

    @cached_property
    def services(self) -> Services:
        """The service declarations every component builds its processes from."""
        return load_repo_services(self.config.repo_root)

    @property
    def s3_url(self) -> str:
        return self.url(self.config.ports.s3_port)

    @property
    def mlflow_url(self) -> str:
        return self.url(self.config.ports.mlflow_port)

    @property
    def airflow_url(self) -> str:
        return self.url(self.config.ports.airflow_api_port)

    @property
    def model_server_url(self) -> str:
        return self.url(self.config.ports.model_server_port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.config.ports.prometheus_port)

    @property
    def pushgateway_url(self) -> str:
        return self.url(self.config.ports.pushgateway_port)

    def s3_env(self) -> dict[str, str]:
        """S3 client settings (boto3 / MLflow / mlpipe) for the stack's object store."""
        return {
            "AWS_ACCESS_KEY_ID": self.credentials.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.s3_secret_key.get_secret_value(),
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_REQUEST_CHECKSUM_CALCULATION": self.config.setting(
                "AWS_REQUEST_CHECKSUM_CALCULATION"
            ),
            "AWS_RESPONSE_CHECKSUM_VALIDATION": self.config.setting(
                "AWS_RESPONSE_CHECKSUM_VALIDATION"
            ),
            "S3_ENDPOINT_URL": self.s3_url,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
        }

    @property
    def mlflow_username(self) -> str:
        return mlflow_auth.admin_username(self.services)

    def mlflow_client_env(self) -> dict[str, str]:
        """The credentials an MLflow client of this stack sends (MLFLOW_TRACKING_USERNAME/...)."""
        password = self.credentials.mlflow_password.get_secret_value()
        return mlflow_auth.client_env(self.mlflow_username, password)

    def mlpipe_env(self, *, pushgateway: bool) -> dict[str, str]:
        """The `mlpipe.config` settings contract: stack.env keys plus where the services are."""
        env = {**self.config.settings, **self.s3_env()}
        env["MLFLOW_TRACKING_URI"] = self.mlflow_url
        env |= self.mlflow_client_env()
        env["MODEL_SERVER_URL"] = self.model_server_url
        if pushgateway:
            env["PUSHGATEWAY_URL"] = self.pushgateway_url
        return env


def which(tool: str, *extra_dirs: Path) -> str | None:
    """Find an executable on PATH or in `extra_dirs` (the venv's bin)."""
    found = shutil.which(tool)
    if found:
        return found
    for folder in extra_dirs:
        candidate = folder / tool
        if candidate.is_file():
            return str(candidate)
    return None
