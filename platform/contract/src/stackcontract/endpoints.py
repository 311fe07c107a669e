"""Where a running stack answers, and the credentials it generated: the only thing the
integration and load tests know of a stack, whatever backend brought it up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, SecretStr

from stackcontract.private import write_private

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from stackcontract.airflow_api import AirflowClient


class Endpoints(BaseModel):
    """Where a running stack answers, and the credentials it generated. Written to
    `<state dir>/endpoints.json` by `up`; read by the integration fixtures and the load tests."""

    model_config = ConfigDict(frozen=True)

    backend: str
    s3_url: str
    s3_access_key: str
    s3_secret_key: SecretStr
    s3_bucket: str
    mlflow_url: str
    # MLflow's basic-auth user (every route but /health needs one); None where it has none.
    mlflow_username: str | None = None
    mlflow_password: SecretStr | None = None
    airflow_url: str
    airflow_username: str
    airflow_password: SecretStr
    model_server_url: str
    # Bearer token of the model server's POST /reload; None where the backend does not know it.
    model_server_reload_token: SecretStr | None = None
    model_name: str
    prometheus_url: str | None = None
    pushgateway_url: str | None = None
    # Basic auth of the Pushgateway, where it has one (the local stack; a NetworkPolicy on a cluster).
    pushgateway_username: str | None = None
    pushgateway_password: SecretStr | None = None
    grafana_url: str | None = None

    def dump(self, path: Path) -> None:
        """Write the endpoints, every secret in clear, to a file only the owner can read."""
        data = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self.model_dump().items()
        }
        write_private(path, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        """Read endpoints written by `dump`, with a clear error when no stack has written them."""
        if not path.is_file():
            raise FileNotFoundError(
                f"No stack endpoints at {path}. Bring a stack up first (`nox -s up`) "
                "or point the tests at a running one with --stack-endpoints PATH."
            )
        return cls.model_validate_json(path.read_text())

    def pushgateway_auth(self) -> tuple[str, str] | None:
        """(user, password) for the Pushgateway, or None where it needs none."""
        if self.pushgateway_username is None or self.pushgateway_password is None:
            return None
        return self.pushgateway_username, self.pushgateway_password.get_secret_value()

    def mlflow_auth(self) -> tuple[str, str] | None:
        """(user, password) for MLflow's REST API, or None where it needs none."""
        if self.mlflow_username is None or self.mlflow_password is None:
            return None
        return self.mlflow_username, self.mlflow_password.get_secret_value()

    def mlflow_client_env(self) -> dict[str, str]:
        """The variables MLflow's own clients read their credentials from (none without auth)."""
        from stackcontract.mlflow_auth import client_env

        auth = self.mlflow_auth()
        return client_env(*auth) if auth is not None else {}

    def reload_headers(self) -> dict[str, str]:
        """The header an authorised caller of the model server's POST /reload sends."""
        if self.model_server_reload_token is None:
            raise LookupError(
                f"the {self.backend} stack's endpoints carry no model-server reload token: "
                "bring the stack up again with this version of stackctl"
            )
        return {"Authorization": f"Bearer {self.model_server_reload_token.get_secret_value()}"}

    def s3_client(self, region: str) -> S3Client:
        """A boto3 client for the stack's object store (see `stackcontract.s3`)."""
        from stackcontract.s3 import is_aws_endpoint, s3_client

        return s3_client(
            endpoint_url=None if is_aws_endpoint(self.s3_url) else self.s3_url,
            region=region,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key.get_secret_value(),
        )

    def airflow_client(self, *, timeout: float = 30.0) -> AirflowClient:
        """A logged-in-on-first-use client of the stack's Airflow REST API."""
        from stackcontract.airflow_api import AirflowClient

        return AirflowClient(
            self.airflow_url,
            self.airflow_username,
            self.airflow_password.get_secret_value(),
            timeout=timeout,
        )
